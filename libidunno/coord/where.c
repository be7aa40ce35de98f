// SPDX-License-Identifier: MIT
// where.c: where the coordinators are (see where.h), and `sched.where`,
// which every node answers from it.
#include <stdlib.h>
#include <string.h>

#include "coord/where.h"

#define ROLE_CALL_MS 100       // sched.role: a coordinator answers at once
#define EPOCH_CALL_MS 500      // a loaded worker may take a moment


void
coord_fan_free(coord_fan *f)
{
	for (size_t i = 0; f->docs != NULL && i < f->n; i++) {
		wire_doc_free(f->docs[i]);
	}
	free(f->addrs);
	free(f->rvs);
	free(f->docs);
	free(f->envs);
	idn_free(f->m);
	memset(f, 0, sizeof(*f));
}

int
coord_fan_out(rpc *rp, membership *ms, bool (*pick)(const idn_member *,
    const void *), const void *arg, const char *type, idn_duration tmo,
    coord_fan *f)
{
	memset(f, 0, sizeof(*f));
	int rv = membership_members(ms, true, &f->m, &f->nm);
	if (rv != IDN_OK) {
		return rv;
	}
	size_t count = f->nm;
	f->addrs = core_alloc((count + 1) * sizeof(*f->addrs));
	f->rvs = core_alloc((count + 1) * sizeof(*f->rvs));
	f->docs = core_alloc((count + 1) * sizeof(*f->docs));
	f->envs = core_alloc((count + 1) * sizeof(*f->envs));
	if (!f->addrs || !f->rvs || !f->docs || !f->envs) {
		return IDN_ENOMEM; // f->m kept: the caller may count members
	}
	for (size_t i = 0; i < count; i++) {
		if (pick(&f->m[i], arg)) {
			f->addrs[f->n++] = f->m[i].addr;
		}
	}
	return f->n > 0 ? rpc_fanout(rp, f->addrs, f->n, type, NULL, tmo,
	    f->rvs, f->docs, f->envs) : IDN_OK;
}

static bool
is_coord_node(const idn_member *m)
{
	return strcmp(m->role, "coord") == 0 || strcmp(m->role, "standby") == 0;
}

bool
coord_is_worker(const idn_member *m, const void *arg)
{
	(void) arg;
	return strcmp(m->role, "worker") == 0;
}

// A coordinator node or a worker (what the majority rule counts).
static bool
counts(const idn_member *m)
{
	return is_coord_node(m) || coord_is_worker(m, NULL);
}

size_t
coord_cluster_size(membership *ms)
{
	idn_member *m = NULL;
	size_t count = 0, n = 0;
	if (membership_members(ms, true, &m, &count) != IDN_OK) {
		return 0;
	}
	for (size_t i = 0; i < count; i++) {
		n += counts(&m[i]);
	}
	idn_free(m);
	return n;
}

typedef struct {
	const char *self, *leader;
} reach_arg;

static bool
pick_reach(const idn_member *m, const void *arg)
{
	const reach_arg *r = arg;
	return counts(m) && strcmp(m->id, r->self) != 0 &&
	    strcmp(m->id, r->leader) != 0;
}

// Any answer to `node.stats` (every node has it) within ROLE_CALL_MS
// counts.
void
coord_reach(rpc *rp, membership *ms, const char *self, const char *leader,
    size_t *reached, size_t *size)
{
	*reached = 1;
	*size = 1;
	coord_fan f;
	reach_arg ra = {self, leader};
	int rv = coord_fan_out(rp, ms, pick_reach, &ra, "node.stats",
	    ROLE_CALL_MS, &f);
	for (size_t i = 0; i < f.nm; i++) { // counted even when calls failed
		*size += counts(&f.m[i]) && strcmp(f.m[i].id, self) != 0;
	}
	if (rv == IDN_OK) {
		for (size_t i = 0; i < f.n; i++) {
			*reached += f.rvs[i] != IDN_ETIMEDOUT &&
			    f.rvs[i] != IDN_ENET && f.rvs[i] != IDN_ECLOSED;
		}
	}
	coord_fan_free(&f);
}

static bool
pick_other_coord(const idn_member *m, const void *self)
{
	return is_coord_node(m) && strcmp(m->id, (const char *) self) != 0;
}

// Adds the fan-out's answers that carry an epoch; *standbys (may be
// NULL) counts those that say they are a standby.
static void
count_epochs(const coord_fan *f, uint64_t *newest, size_t *answered,
    size_t *standbys)
{
	for (size_t i = 0; i < f->n; i++) {
		uint64_t e = 0;
		char state[16] = "";
		if (f->rvs[i] != IDN_OK ||
		    wire_get_u64(f->envs[i].body, "epoch", &e) != IDN_OK) {
			continue;
		}
		*newest = e > *newest ? e : *newest;
		(*answered)++;
		if (standbys != NULL && wire_get_str(f->envs[i].body, "state",
		        state, sizeof(state)) == IDN_OK &&
		    strcmp(state, "standby") == 0) {
			(*standbys)++;
		}
	}
}

void
coord_newest_epoch(rpc *rp, membership *ms, const char *self,
    coord_epochs *out)
{
	memset(out, 0, sizeof(*out));
	coord_fan f;
	// A coordinator node's role and a worker's state both carry the
	// newest epoch it knows. The other coordinator node first: only it
	// can have promoted, so its word alone may do.
	if (coord_fan_out(rp, ms, pick_other_coord, self, "sched.role",
	        EPOCH_CALL_MS, &f) == IDN_OK) {
		count_epochs(&f, &out->newest, &out->answered,
		    &out->standbys);
	}
	coord_fan_free(&f);
	if (out->standbys > 0) {
		return;
	}
	if (coord_fan_out(rp, ms, coord_is_worker, NULL, "worker.state",
	        EPOCH_CALL_MS, &f) == IDN_OK) {
		count_epochs(&f, &out->newest, &out->answered, NULL);
	}
	coord_fan_free(&f);
}

static bool
pick_coord(const idn_member *m, const void *skip)
{
	return is_coord_node(m) && m->state == IDN_MEMBER_ALIVE &&
	    (skip == NULL || strcmp(m->id, skip) != 0);
}

int
coord_find_active(rpc *rp, membership *ms, const char *skip,
    coord_found *f)
{
	memset(f, 0, sizeof(*f));
	coord_fan a;
	int rv = coord_fan_out(rp, ms, pick_coord, skip, "sched.role",
	    ROLE_CALL_MS, &a);
	f->any = a.n > 0;
	bool got = false;
	for (size_t i = 0; rv == IDN_OK && i < a.n; i++) {
		char state[16] = "";
		uint64_t epoch = 0;
		bool followed = false;
		const wire_val *b = a.envs[i].body;
		if (a.rvs[i] != IDN_OK ||
		    wire_get_str(b, "state", state, sizeof(state)) != IDN_OK) {
			continue;
		}
		wire_get_u64(b, "epoch", &epoch);
		wire_as_bool(wire_get(b, "followed"), &followed);
		f->followed |= followed;
		if (strcmp(state, "active") == 0 && (!got || epoch > f->epoch)) {
			got = true;
			f->epoch = epoch;
			wire_get_str(b, "id", f->id, sizeof(f->id));
			wire_get_str(b, "addr", f->addr, sizeof(f->addr));
		}
	}
	coord_fan_free(&a);
	return rv != IDN_OK ? rv : got ? IDN_OK : IDN_ENOENT;
}

struct coord_where {
	rpc *rpc;
	membership *mship;
};

static int
on_where(void *arg, const wire_env *req, wire_wr *reply)
{
	(void) req;
	coord_where *w = arg;
	coord_found f;
	int rv = coord_find_active(w->rpc, w->mship, NULL, &f);
	if (rv == IDN_OK) {
		wire_map(reply, 3);
		wire_kstr(reply, "coord", f.addr);
		wire_kstr(reply, "id", f.id);
		wire_ku64(reply, "epoch", f.epoch);
	} else {
		wire_map(reply, 1);
		wire_kstr(reply, "err", f.any ? "coordinator changing, retry" :
		    "no coordinator is alive");
		rv = IDN_EUNAVAIL;
	}
	return rv;
}

int
coord_where_open(rpc *r, membership *m, coord_where **out)
{
	coord_where *w = core_alloc(sizeof(*w));
	if (w == NULL) {
		return IDN_ENOMEM;
	}
	w->rpc = r;
	w->mship = m;
	int rv = rpc_route(r, "sched.where", on_where, w);
	if (rv != IDN_OK) {
		free(w);
		return rv;
	}
	*out = w;
	return IDN_OK;
}

void
coord_where_close(coord_where *w)
{
	free(w);
}
