// SPDX-License-Identifier: MIT
// gather.c: what the cluster knows of a name: each asked node's versions,
// for gets, puts, listings and the replica side's conflict settling.
#include <stdlib.h>
#include <string.h>

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
