// SPDX-License-Identifier: MIT
// get.c: the front end's reads: gets that survive dead and corrupt
// replicas.
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sdfs/server.h"

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
