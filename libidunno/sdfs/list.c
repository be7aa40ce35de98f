// SPDX-License-Identifier: MIT
// list.c: the front end's listings: a name's versions and where they are
// (sdfs.ls), one node's store (sdfs.store) and names by prefix (sdfs.lsp).
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sdfs/server.h"

static int
on_ls(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	sdfs_gather g;
	int rv = sdfs_get_name(req->body, name);
	if (rv != IDN_OK || (rv = sdfs_gather_versions(s, name, true, &g))) {
		return rv;
	}
	const sdfs_vmeta *newest = sdfs_gather_newest(&g, 0);
	if (newest == NULL || newest->tomb) {
		sdfs_gather_free(&g);
		return IDN_ENOENT;
	}
	// Versions newer than the newest tombstone, each once, newest first.
	uint64_t tomb = 0;
	size_t total = 0;
	for (size_t i = 0; i < g.n; i++) {
		for (size_t k = 0; g.rvs[i] == IDN_OK && k < g.nvers[i]; k++) {
			if (g.vers[i][k].tomb && g.vers[i][k].ver > tomb) {
				tomb = g.vers[i][k].ver;
			}
			total++;
		}
	}
	sdfs_vmeta *vs = core_alloc(sizeof(*vs) * (total ? total : 1));
	idn_sdfs_holder *h = core_alloc(sizeof(*h) * (g.n ? g.n : 1));
	if (vs == NULL || h == NULL) {
		free(vs);
		free(h);
		sdfs_gather_free(&g);
		return IDN_ENOMEM;
	}
	size_t nv = 0, nh = 0, have = 0;
	for (size_t i = 0; i < g.n; i++) {
		if (g.rvs[i] != IDN_OK || g.nvers[i] == 0) {
			continue;
		}
		snprintf(h[nh].id, sizeof(h[nh].id), "%s", g.who[i].id);
		snprintf(h[nh].addr, sizeof(h[nh].addr), "%s", g.who[i].addr);
		h[nh].newest = g.vers[i][0].ver;
		h[nh].replica = g.replica[i];
		have += h[nh].newest == newest->ver;
		nh++;
		for (size_t k = 0; k < g.nvers[i]; k++) {
			const sdfs_vmeta *m = &g.vers[i][k];
			bool dup = m->tomb || m->ver <= tomb;
			for (size_t j = 0; j < nv; j++) {
				dup = dup || vs[j].ver == m->ver;
			}
			if (!dup) {
				size_t j = nv++;
				while (j > 0 && vs[j - 1].ver < m->ver) {
					vs[j] = vs[j - 1];
					j--;
				}
				vs[j] = *m;
				vs[j].csums = NULL;
			}
		}
	}
	wire_map(reply, 6);
	wire_kstr(reply, "name", name);
	wire_ku64(reply, "newest", newest->ver);
	wire_ku64(reply, "want", R);
	wire_ku64(reply, "have", have);
	wire_str(reply, "holders");
	sdfs_holder_put_arr(reply, h, nh);
	wire_str(reply, "vers");
	sdfs_vmeta_put_arr(reply, vs, nv);
	free(vs);
	free(h);
	sdfs_gather_free(&g);
	return IDN_OK;
}

static int
on_store(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	sdfs_entry *e;
	size_t n;
	int rv = sdfs_store_list(s->st, "", &e, &n);
	if (rv == IDN_OK) {
		wire_map(reply, 1);
		wire_str(reply, "items");
		sdfs_entry_put_arr(reply, e, n);
		sdfs_entry_free_arr(e, n);
	}
	return rv;
}

static int
by_entry_name(const void *a, const void *b)
{
	return strcmp(((const sdfs_entry *) a)->name,
	    ((const sdfs_entry *) b)->name);
}

// One page of the cluster's names by prefix: every live node lists its
// names after `after`, a page each; the page is the merge up to the
// first name where some node's page stopped (its later names are not
// known yet), one entry per name with the newest any node reports,
// deleted names left out. Nodes that did not answer are named.
static int
on_lsp(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char prefix[NAME_CAP], after[NAME_CAP] = "";
	view v;
	if (wire_get_str(req->body, "prefix", prefix, sizeof(prefix)) ||
	    (wire_get(req->body, "after") != NULL &&
	        wire_get_str(req->body, "after", after, sizeof(after)))) {
		return IDN_EPROTO;
	}
	uint64_t page = s->lim.list_page;
	int rv = sdfs_view_get(s, &v);
	if (rv != IDN_OK) {
		return rv;
	}
	const char **targets = core_alloc(sizeof(char *) * (v.n + 1));
	int *rvs = core_alloc(sizeof(int) * (v.n + 1));
	wire_doc **docs = core_alloc(sizeof(wire_doc *) * (v.n + 1));
	wire_env *envs = core_alloc(sizeof(wire_env) * (v.n + 1));
	wire_wr *w = sdfs_body_new();
	sdfs_entry *all = NULL;
	size_t nall = 0;
	const char *cut = NULL; // the smallest last name of a partial page
	rv = targets && rvs && docs && envs && w ? IDN_OK : IDN_ENOMEM;
	if (rv == IDN_OK) {
		for (size_t i = 0; i < v.n; i++) {
			targets[i] = v.m[i].addr;
		}
		wire_map(w, 3);
		wire_kstr(w, "prefix", prefix);
		wire_kstr(w, "after", after);
		wire_ku64(w, "limit", page);
		rv = rpc_fanout(s->rpc, targets, v.n, "sdfs.r.list", w,
		    STAT_TIMEOUT_MS, rvs, docs, envs);
	}
	for (size_t i = 0; rv == IDN_OK && i < v.n; i++) {
		sdfs_entry *e;
		size_t n;
		bool more = false;
		if (rvs[i] == IDN_OK &&
		    sdfs_entry_get_arr(wire_get(envs[i].body, "items"),
		        SDFS_LIST_MAX, &e, &n) != IDN_OK) {
			rvs[i] = IDN_EPROTO;
		}
		if (rvs[i] != IDN_OK) {
			continue;
		}
		(void) wire_as_bool(wire_get(envs[i].body, "more"), &more);
		sdfs_entry *grown = core_realloc(all,
		    sizeof(*all) * (nall + n + 1));
		if (grown == NULL) {
			sdfs_entry_free_arr(e, n);
			rv = IDN_ENOMEM;
			break;
		}
		all = grown;
		memcpy(all + nall, e, sizeof(*e) * n);
		if (more && n > 0 &&
		    (cut == NULL || strcmp(e[n - 1].name, cut) < 0)) {
			cut = all[nall + n - 1].name;
		}
		nall += n;
		free(e); // names moved into all
	}
	// Merge: one entry per name, the newest any node reports.
	size_t out = 0;
	bool more = cut != NULL;
	char next[NAME_CAP] = "";
	if (rv == IDN_OK && nall > 0) {
		char *cutname = cut != NULL ? core_strdup(cut) : NULL;
		qsort(all, nall, sizeof(*all), by_entry_name);
		for (size_t i = 0; i < nall; i++) {
			if (out > 0 &&
			    strcmp(all[out - 1].name, all[i].name) == 0) {
				sdfs_entry *d = &all[out - 1];
				if (all[i].newest > d->newest) {
					d->newest = all[i].newest;
					d->size = all[i].size;
					d->tomb = all[i].tomb;
				}
				d->nvers = CORE_MAX(d->nvers, all[i].nvers);
				free(all[i].name);
				continue;
			}
			all[out++] = all[i];
		}
		size_t keep = 0, live = 0;
		while (keep < out && (cutname == NULL ||
		                         strcmp(all[keep].name, cutname) <= 0)) {
			keep++;
		}
		if (keep > 0) {
			snprintf(next, sizeof(next), "%s", all[keep - 1].name);
		}
		for (size_t i = 0; i < out; i++) {
			if (all[i].tomb || i >= keep) {
				free(all[i].name);
			} else {
				all[live++] = all[i];
			}
		}
		out = live;
		free(cutname);
	}
	if (rv == IDN_OK) {
		size_t nmiss = 0;
		for (size_t i = 0; i < v.n; i++) {
			nmiss += rvs[i] != IDN_OK;
		}
		wire_map(reply, 4);
		wire_str(reply, "items");
		sdfs_entry_put_arr(reply, all, out);
		wire_kbool(reply, "more", more);
		wire_kstr(reply, "next", next);
		wire_str(reply, "unreachable");
		wire_arr(reply, (uint32_t) nmiss);
		for (size_t i = 0; i < v.n; i++) {
			if (rvs[i] != IDN_OK) {
				wire_str(reply, v.m[i].addr);
			}
		}
	}
	sdfs_entry_free_arr(all, rv == IDN_OK ? out : nall);
	for (size_t i = 0; docs != NULL && i < v.n; i++) {
		wire_doc_free(docs[i]);
	}
	wire_wr_free(w);
	free(targets);
	free(rvs);
	free(docs);
	free(envs);
	sdfs_view_free(&v);
	return rv;
}

int
sdfs_list_register(sdfs *s)
{
	static const rpc_route_def routes[] = {
		{"sdfs.ls", on_ls},
		{"sdfs.store", on_store},
		{"sdfs.lsp", on_lsp},
	};
	return rpc_routes(s->rpc, routes, CORE_ARRAY_LEN(routes), s);
}
