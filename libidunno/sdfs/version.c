// SPDX-License-Identifier: MIT
// version.c: version ordering: a name's write set, the numbers its
// primary hands out (sdfs.ver) and the call that asks for one.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdfs/server.h"

static uint64_t
newest_local(sdfs *s, const char *name)
{
	sdfs_vmeta *v;
	size_t n;
	uint64_t newest = 0;
	if (sdfs_store_versions(s->st, name, &v, &n) == IDN_OK) {
		newest = n ? v[0].ver : 0;
		idn_free(v);
	}
	return newest;
}

// A member a write avoids when it can: suspected by membership (gossip
// knows within a few hundred ms of a death, before it is declared failed)
// or seen timing out here lately.
static bool
shunned(sdfs *s, const idn_member *m)
{
	return !sdfs_is_self(s, m->addr) && (m->state == IDN_MEMBER_SUSPECT ||
	    sdfs_peer_bad(s, m->addr));
}

// The name's write set: the first R members clockwise from the name that
// are not shunned, so that a replica that died but is still in the view
// is replaced by the next live member (where the name goes anyway once
// membership drops the dead one). Shunned members fill the set only when
// too few others are left. Without suspicions it is the replica set.
size_t
sdfs_write_set(sdfs *s, const view *v, const char *name,
    char addr[R][IDN_ADDR_MAX])
{
	size_t *idx = core_alloc(sizeof(*idx) * (v->n ? v->n : 1));
	if (idx == NULL) {
		return sdfs_view_replicas(v, name, addr);
	}
	size_t n, got = 0;
	sdfs_ring_lookup(v->ring, name, idx, v->n, &n);
	size_t want = CORE_MIN(n, (size_t) R);
	for (int pass = 0; pass < 2 && got < want; pass++) {
		for (size_t i = 0; i < n && got < want; i++) {
			const idn_member *m = &v->m[idx[i]];
			if (shunned(s, m) == (pass == 1)) {
				snprintf(addr[got++], IDN_ADDR_MAX, "%s",
				    m->addr);
			}
		}
	}
	free(idx);
	return got;
}

static int
on_ver(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	char addr[R][IDN_ADDR_MAX];
	const char *others[R];
	int rvs[R];
	sdfs_vmeta *vers[R];
	size_t nvers[R], no = 0;
	view v;
	int rv = sdfs_get_name(req->body, name);
	if (rv != IDN_OK || (rv = sdfs_view_get(s, &v)) != IDN_OK) {
		return rv;
	}
	// The write set: stand-ins for shunned replicas hold the puts made
	// while they stood in.
	size_t n = sdfs_write_set(s, &v, name, addr);
	sdfs_view_free(&v);
	for (size_t i = 0; i < n; i++) {
		if (!sdfs_is_self(s, addr[i])) {
			others[no++] = addr[i];
		}
	}
	// The newest version any replica holds: the primary may be new to
	// this name (it joined, or the old primary died). A replica that
	// does not answer soon is not waited for: a number it already holds
	// handed out again is a conflict the write sees (IDN_EEXIST) and
	// the client puts again under a fresh one.
	uint64_t newest = newest_local(s, name);
	if (no > 0 &&
	    sdfs_stat_many(s, name, others, no, ANSWER_MS, rvs, vers,
	    nvers) == IDN_OK) {
		for (size_t i = 0; i < no; i++) {
			if (nvers[i] > 0 && vers[i][0].ver > newest) {
				newest = vers[i][0].ver;
			}
			idn_free(vers[i]);
		}
	}
	uint64_t now = idn_clock_ms();
	core_lock(&s->lock);
	resv **pp = &s->resv, *r = NULL;
	while (*pp != NULL) {
		resv *e = *pp;
		if (strcmp(e->name, name) == 0) {
			r = e;
		} else if (s->nresv > RESV_MAX && now - e->ms > 600000) {
			*pp = e->next;
			free(e->name);
			free(e);
			s->nresv--;
			continue;
		}
		pp = &e->next;
	}
	if (r == NULL && (r = core_alloc(sizeof(*r))) != NULL &&
	    (r->name = core_strdup(name)) != NULL) {
		r->next = s->resv;
		s->resv = r;
		s->nresv++;
	} else if (r != NULL && r->name == NULL) {
		free(r);
		r = NULL;
	}
	uint64_t ver = 0;
	rv = r == NULL ? IDN_ENOMEM : sdfs_next_version(newest, r->ver, &ver);
	if (rv == IDN_OK) {
		r->ver = ver;
		r->ms = now;
	}
	core_unlock(&s->lock);
	if (rv != IDN_OK) {
		return rv;
	}
	wire_map(reply, 1);
	wire_ku64(reply, "ver", ver);
	return IDN_OK;
}

// Gets the next version from the name's primary: the first member of the
// write set that answers in time (a primary that died is passed over at
// once, as the next member orders once the dead one leaves the view).
// IDN_EBUSY: none answered; try again shortly.
int
sdfs_alloc_version(sdfs *s, const char *name, uint64_t *ver)
{
	view v;
	char addr[R][IDN_ADDR_MAX];
	int rv = sdfs_view_get(s, &v);
	if (rv != IDN_OK) {
		return rv;
	}
	size_t n = sdfs_write_set(s, &v, name, addr);
	sdfs_view_free(&v);
	wire_wr *w = sdfs_body_new();
	if (w == NULL) {
		return IDN_ENOMEM;
	}
	wire_map(w, 1);
	wire_kstr(w, "name", name);
	rv = IDN_EUNAVAIL;
	for (size_t i = 0; i < n; i++) {
		wire_doc *doc = NULL;
		wire_env env;
		// The primary answers after its own stats (ANSWER_MS).
		rv = sdfs_call(s, addr[i], "sdfs.ver", w, 2 * ANSWER_MS, &doc,
		    &env);
		if (rv == IDN_OK && wire_get_u64(env.body, "ver", ver)) {
			rv = IDN_EPROTO;
		}
		wire_doc_free(doc);
		if (rv != IDN_ETIMEDOUT && rv != IDN_ENET) {
			break;
		}
		rv = IDN_EBUSY;
	}
	wire_wr_free(w);
	return rv;
}

int
sdfs_version_register(sdfs *s)
{
	return rpc_route(s->rpc, "sdfs.ver", on_ver, s);
}
