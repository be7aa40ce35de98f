// SPDX-License-Identifier: MIT
// server.c: the mechanism every part of a node's SDFS shares: the
// membership view and ring, calls to peers with the unreachable-peer
// memory, request helpers.
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sdfs/server.h"

int
sdfs_view_get(sdfs *s, view *v)
{
	memset(v, 0, sizeof(*v));
	int rv = s->members(s->members_arg, &v->m, &v->n);
	if (rv == IDN_OK && (rv = sdfs_ring_build(v->m, v->n, &v->ring))) {
		idn_free(v->m);
		v->m = NULL;
	}
	return rv;
}

void
sdfs_view_free(view *v)
{
	sdfs_ring_free(v->ring);
	idn_free(v->m);
	memset(v, 0, sizeof(*v));
}

// The name's replica set: addresses in ring order, primary first.
size_t
sdfs_view_replicas(const view *v, const char *name, char addr[R][IDN_ADDR_MAX])
{
	size_t idx[R], n;
	sdfs_ring_lookup(v->ring, name, idx, R, &n);
	for (size_t i = 0; i < n; i++) {
		snprintf(addr[i], IDN_ADDR_MAX, "%s", v->m[idx[i]].addr);
	}
	return n;
}

bool
sdfs_is_self(sdfs *s, const char *addr)
{
	return strcmp(addr, s->self_addr) == 0;
}

bool
sdfs_peer_bad(sdfs *s, const char *addr)
{
	uint64_t now = idn_clock_ms();
	bool bad = false;
	core_lock(&s->lock);
	for (int i = 0; i < BAD_PEERS; i++) {
		if (s->bad[i].until_ms > now &&
		    strcmp(s->bad[i].addr, addr) == 0) {
			bad = true;
		}
	}
	core_unlock(&s->lock);
	return bad;
}

void
sdfs_peer_mark(sdfs *s, const char *addr, int rv)
{
	if (rv != IDN_ETIMEDOUT && rv != IDN_ENET && rv != IDN_ECLOSED) {
		return;
	}
	uint64_t now = idn_clock_ms();
	core_lock(&s->lock);
	int slot = 0;
	for (int i = 0; i < BAD_PEERS; i++) {
		if (strcmp(s->bad[i].addr, addr) == 0) {
			slot = i;
			break;
		}
		if (s->bad[i].until_ms < s->bad[slot].until_ms) {
			slot = i;
		}
	}
	snprintf(s->bad[slot].addr, IDN_ADDR_MAX, "%s", addr);
	s->bad[slot].until_ms = now + BAD_PEER_MS;
	core_unlock(&s->lock);
}

int
sdfs_call(sdfs *s, const char *addr, const char *type, wire_wr *body,
    idn_duration tmo, wire_doc **doc, wire_env *env)
{
	int rv = rpc_call(s->rpc, addr, type, body, tmo, doc,
	    env);
	sdfs_peer_mark(s, addr, rv);
	return rv;
}

int
sdfs_get_name(const wire_val *b, char *name)
{
	if (wire_get_str(b, "name", name, NAME_CAP) != IDN_OK) {
		return IDN_EPROTO;
	}
	return sdfs_name_error(name) ? IDN_EINVAL : IDN_OK;
}

bool
sdfs_still_alive(sdfs *s, const char *addr)
{
	idn_member *m;
	size_t n;
	bool alive = false;
	if (s->members(s->members_arg, &m, &n) != IDN_OK) {
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		alive = alive || strcmp(m[i].addr, addr) == 0;
	}
	idn_free(m);
	return alive;
}

int
sdfs_stat_many(sdfs *s, const char *name, const char *const *addrs, size_t n,
    idn_duration tmo, int *rvs, sdfs_vmeta **vers, size_t *nvers)
{
	wire_wr *w = sdfs_body_new();
	wire_doc **docs = core_alloc(sizeof(*docs) * (n ? n : 1));
	wire_env *envs = core_alloc(sizeof(*envs) * (n ? n : 1));
	int rv = w && docs && envs ? IDN_OK : IDN_ENOMEM;
	if (rv == IDN_OK) {
		wire_map(w, 1);
		wire_kstr(w, "name", name);
		rv = rpc_fanout(s->rpc, addrs, n, "sdfs.r.stat", w, tmo, rvs,
		    docs, envs);
	}
	for (size_t i = 0; i < n; i++) {
		vers[i] = NULL;
		nvers[i] = 0;
		if (rv != IDN_OK) {
			rvs[i] = rv;
			continue;
		}
		sdfs_peer_mark(s, addrs[i], rvs[i]);
		if (rvs[i] == IDN_OK &&
		    sdfs_vmeta_get_arr(wire_get(envs[i].body, "vers"),
		        4 * IDN_SDFS_KEEP_VERSIONS, &vers[i], &nvers[i])) {
			rvs[i] = IDN_EPROTO;
		}
		wire_doc_free(docs[i]);
	}
	wire_wr_free(w);
	free(docs);
	free(envs);
	return rv;
}
