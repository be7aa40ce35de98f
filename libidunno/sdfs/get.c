// SPDX-License-Identifier: MIT
// get.c: the front end's reads: what the cluster knows of a name, and gets
// that survive dead and corrupt replicas.
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sdfs/server.h"

void
sdfs_gather_free(sdfs_gather *g)
{
	for (size_t i = 0; i < g->n; i++) {
		idn_free(g->vers[i]);
	}
	free(g->who);
	free(g->replica);
	free(g->rvs);
	free(g->vers);
	free(g->nvers);
	memset(g, 0, sizeof(*g));
}

// Stats name on its replica set, or on every live node when all_nodes or
// when no replica has it (a file can sit outside its set after churn).
int
sdfs_gather_versions(sdfs *s, const char *name, bool all_nodes,
    sdfs_gather *g)
{
	view v;
	char addr[R][IDN_ADDR_MAX];
	memset(g, 0, sizeof(*g));
	int rv = sdfs_view_get(s, &v);
	if (rv != IDN_OK) {
		return rv;
	}
	size_t nr = sdfs_view_replicas(&v, name, addr);
	g->who = core_alloc(sizeof(idn_member) * v.n);
	g->replica = core_alloc(sizeof(bool) * v.n);
	g->rvs = core_alloc(sizeof(int) * v.n);
	g->vers = core_alloc(sizeof(sdfs_vmeta *) * v.n);
	g->nvers = core_alloc(sizeof(size_t) * v.n);
	const char **targets = core_alloc(sizeof(char *) * v.n);
	if (!g->who || !g->replica || !g->rvs || !g->vers || !g->nvers ||
	    !targets) {
		free(targets);
		sdfs_view_free(&v);
		sdfs_gather_free(g);
		return IDN_ENOMEM;
	}
	// Replicas first, in ring order, then the others.
	for (size_t k = 0; k < nr; k++) {
		for (size_t i = 0; i < v.n; i++) {
			if (strcmp(addr[k], v.m[i].addr) == 0) {
				g->who[g->n] = v.m[i];
				g->replica[g->n++] = true;
			}
		}
	}
	size_t nrep = g->n;
	for (size_t i = 0; i < v.n; i++) {
		bool rep = false;
		for (size_t k = 0; k < nr; k++) {
			rep = rep || strcmp(addr[k], v.m[i].addr) == 0;
		}
		if (!rep) {
			g->who[g->n] = v.m[i];
			g->replica[g->n++] = false;
		}
	}
	for (size_t i = 0; i < g->n; i++) {
		targets[i] = g->who[i].addr;
	}
	rv = sdfs_stat_many(s, name, targets, nrep, STAT_TIMEOUT_MS, g->rvs,
	    g->vers, g->nvers);
	bool found = false;
	for (size_t i = 0; rv == IDN_OK && i < nrep; i++) {
		found = found || g->nvers[i] > 0;
	}
	if (rv == IDN_OK && (all_nodes || !found) && g->n > nrep) {
		rv = sdfs_stat_many(s, name, targets + nrep, g->n - nrep,
		    STAT_TIMEOUT_MS, g->rvs + nrep, g->vers + nrep,
		    g->nvers + nrep);
	} else {
		g->n = nrep;
	}
	free(targets);
	sdfs_view_free(&v);
	if (rv != IDN_OK) {
		sdfs_gather_free(g);
	}
	return rv;
}

// The newest version of name anyone answered with; *tomb if deleted.
const sdfs_vmeta *
sdfs_gather_newest(const sdfs_gather *g, uint64_t want)
{
	const sdfs_vmeta *best = NULL;
	for (size_t i = 0; i < g->n; i++) {
		for (size_t k = 0; g->rvs[i] == IDN_OK && k < g->nvers[i];
		     k++) {
			const sdfs_vmeta *m = &g->vers[i][k];
			if (want != 0 && m->ver != want) {
				continue;
			}
			if (best == NULL || m->ver > best->ver) {
				best = m;
			}
		}
	}
	return best;
}

static int
on_get_open(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	uint64_t want = 0;
	sdfs_gather g;
	int rv = sdfs_get_name(req->body, name);
	(void) wire_get_u64(req->body, "ver", &want);
	if (rv != IDN_OK || (rv = sdfs_gather_versions(s, name, false, &g))) {
		return rv;
	}
	const sdfs_vmeta *m = sdfs_gather_newest(&g, want);
	const sdfs_vmeta *newest = sdfs_gather_newest(&g, 0);
	if (m == NULL || m->tomb || (newest->tomb && newest->ver > m->ver)) {
		rv = IDN_ENOENT;
	} else {
		sdfs_vmeta_put(reply, m, false);
	}
	sdfs_gather_free(&g);
	return rv;
}

// Reads a chunk from this node if it holds the version intact, else from
// the replicas (reachable ones first), then from any live node.
static int
read_any(sdfs *s, const char *name, uint64_t ver, uint32_t idx,
    wire_wr *reply)
{
	uint8_t *buf = malloc(SDFS_CHUNK_MAX);
	uint8_t cs[SDFS_CSUM_BYTES];
	size_t len;
	if (buf == NULL) {
		return IDN_ENOMEM;
	}
	int rv = sdfs_local_read(s, name, ver, idx, buf, &len, cs);
	if (rv == IDN_OK) {
		wire_map(reply, 2);
		wire_kbin(reply, "data", buf, len);
		atomic_fetch_add(&s->n_get, len);
		wire_kbin(reply, "csum", cs, sizeof(cs));
		free(buf);
		return IDN_OK;
	}
	free(buf);
	view v;
	char addr[R][IDN_ADDR_MAX];
	if ((rv = sdfs_view_get(s, &v)) != IDN_OK) {
		return rv;
	}
	size_t nr = sdfs_view_replicas(&v, name, addr);
	size_t nc = 0;
	const char **cand = core_alloc(sizeof(char *) * (nr + v.n));
	if (cand == NULL) {
		sdfs_view_free(&v);
		return IDN_ENOMEM;
	}
	for (int good = 1; good >= 0; good--) {
		for (size_t i = 0; i < nr + v.n; i++) {
			const char *a = i < nr ? addr[i] : v.m[i - nr].addr;
			bool dup = sdfs_is_self(s, a);
			for (size_t k = 0; k < nc; k++) {
				dup = dup || strcmp(cand[k], a) == 0;
			}
			if (!dup && sdfs_peer_bad(s, a) != (good == 1)) {
				cand[nc++] = a;
			}
		}
	}
	rv = IDN_ENOENT;
	for (size_t i = 0; i < nc; i++) {
		wire_wr *w = sdfs_body_new();
		wire_doc *doc = NULL;
		wire_env env;
		const uint8_t *p, *c;
		size_t n, cl;
		if (w == NULL) {
			rv = IDN_ENOMEM;
			break;
		}
		wire_map(w, 3);
		wire_kstr(w, "name", name);
		wire_ku64(w, "ver", ver);
		wire_ku64(w, "idx", idx);
		int r = sdfs_call(s, cand[i], "sdfs.r.read", w, STAT_TIMEOUT_MS,
		    &doc, &env);
		wire_wr_free(w);
		if (r == IDN_OK &&
		    (wire_get_bin(env.body, "data", &p, &n) != IDN_OK ||
		        wire_get_bin(env.body, "csum", &c, &cl) != IDN_OK ||
		        cl != SDFS_CSUM_BYTES)) {
			r = IDN_EPROTO;
		}
		if (r == IDN_OK) {
			sdfs_chunk_sum(p, n, cs);
			r = memcmp(cs, c, cl) ? IDN_ECORRUPT : IDN_OK;
		}
		if (r == IDN_OK) {
			wire_map(reply, 2);
			wire_kbin(reply, "data", p, n);
			atomic_fetch_add(&s->n_get, n);
			wire_kbin(reply, "csum", c, cl);
		}
		wire_doc_free(doc);
		if (r == IDN_OK) {
			rv = IDN_OK;
			break;
		}
		// Remember the worst news: a corrupt copy beats "not here".
		if (r == IDN_ECORRUPT || rv == IDN_ENOENT) {
			rv = r == IDN_ENOENT || r == IDN_ECORRUPT ? r :
			    IDN_EUNAVAIL;
		}
	}
	free(cand);
	sdfs_view_free(&v);
	return rv;
}

static int
on_get_chunk(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	uint64_t ver, idx;
	int rv = sdfs_get_name(req->body, name);
	if (rv == IDN_OK && (wire_get_u64(req->body, "ver", &ver) ||
	                        wire_get_u64(req->body, "idx", &idx) ||
	                        idx > UINT32_MAX)) {
		rv = IDN_EPROTO;
	}
	return rv ? rv : read_any(s, name, ver, (uint32_t) idx, reply);
}

int
sdfs_get_register(sdfs *s)
{
	static const rpc_route_def routes[] = {
		{"sdfs.get.open", on_get_open},
		{"sdfs.get.chunk", on_get_chunk},
	};
	return rpc_routes(s->rpc, routes, CORE_ARRAY_LEN(routes), s);
}
