// SPDX-License-Identifier: MIT
// recv.c: the allreduce engine's receiving side: the coll.part handler,
// which routes each part to its group's running call, the mailbox of
// parts parked until their call or turn, and the generations of jobs.
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collective/engine.h"

#define COLL_JOBS_MAX 4096 // generations remembered, one per job
#define PARKED_MAX 4096    // parts parked at most (lists are scanned)

job_rec *
coll_job_find(coll *c, const char *job)
{
	for (size_t i = 0; i < c->njobs; i++) {
		if (strcmp(c->jobs[i].job, job) == 0) {
			return &c->jobs[i];
		}
	}
	return NULL;
}

static bool
job_has_group(coll *c, const char *job)
{
	for (coll_group *g = c->groups; g != NULL; g = g->next) {
		if (strcmp(g->job, job) == 0) {
			return true;
		}
	}
	return false;
}

// Remembers gen as job's newest; the table forgets, oldest first, jobs
// without an open group (their late parts then wait for IDN_EBUSY
// retries to run out instead of being refused as stale).
int
coll_job_set(coll *c, const char *job, uint64_t gen)
{
	job_rec *j = coll_job_find(c, job);
	if (j == NULL && c->njobs == COLL_JOBS_MAX) {
		for (size_t i = 0; i < c->njobs; i++) {
			if (!job_has_group(c, c->jobs[i].job)) {
				memmove(&c->jobs[i], &c->jobs[i + 1],
				    (c->njobs - i - 1) * sizeof(job_rec));
				c->njobs--;
				break;
			}
		}
	}
	if (j == NULL) {
		if (c->njobs == COLL_JOBS_MAX) {
			return IDN_EBUSY;
		}
		job_rec *nj = core_realloc(c->jobs,
		    (c->njobs + 1) * sizeof(job_rec));
		if (nj == NULL) {
			return IDN_ENOMEM;
		}
		c->jobs = nj;
		j = &c->jobs[c->njobs++];
		snprintf(j->job, sizeof(j->job), "%s", job);
	}
	j->newest = gen;
	return IDN_OK;
}

static void
parked_unlink(coll *c, parked *pk)
{
	for (parked **pp = &c->parked; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == pk) {
			*pp = pk->next;
			c->ctr.parked--;
			c->ctr.parked_bytes -= pk->h.len * 4 + PARK_OVERHEAD;
			return;
		}
	}
}

void
coll_parked_free(parked *pk)
{
	if (pk != NULL) {
		free(pk->bytes);
		free(pk);
	}
}

void
coll_drop_parked(coll *c, const char *job, uint64_t gen, bool below,
    uint64_t max_seq)
{
	parked **pp = &c->parked;
	while (*pp != NULL) {
		parked *pk = *pp;
		bool hit = strcmp(pk->h.job, job) == 0 && pk->h.seq <= max_seq &&
		    (below ? pk->h.gen < gen : pk->h.gen == gen);
		if (hit) {
			parked_unlink(c, pk);
			coll_parked_free(pk);
		} else {
			pp = &pk->next;
		}
	}
}

static parked *
parked_find(coll *c, const op *o, uint32_t ph, uint32_t src, uint64_t ck)
{
	for (parked *pk = c->parked; pk != NULL; pk = pk->next) {
		if (pk->h.seq == o->seq && pk->h.gen == o->g->gen &&
		    pk->h.ph == ph && pk->h.src == src && pk->h.ck == ck &&
		    strcmp(pk->h.job, o->g->job) == 0) {
			return pk;
		}
	}
	return NULL;
}

// Parks a copy of p (IDN_EBUSY when the mailbox is full, IDN_EEXIST for a
// second copy of a parked part).
static int
park(coll *c, const coll_part *p)
{
	uint64_t cost = p->len * 4 + PARK_OVERHEAD;
	for (parked *pk = c->parked; pk != NULL; pk = pk->next) {
		if (pk->h.gen == p->gen && pk->h.seq == p->seq &&
		    pk->h.ph == p->ph && pk->h.src == p->src &&
		    pk->h.ck == p->ck && strcmp(pk->h.job, p->job) == 0) {
			coll_warn_refused(c, "a second copy of part %s/%" PRIu64
			    "/%" PRIu64 " phase %u chunk %" PRIu64, p->job,
			    p->gen, p->seq, p->ph, p->ck);
			return IDN_EEXIST;
		}
	}
	if (c->ctr.parked_bytes + cost > c->o.mailbox_bytes ||
	    c->ctr.parked == PARKED_MAX) {
		c->ctr.busy++;
		return IDN_EBUSY;
	}
	parked *pk = core_alloc(sizeof(*pk));
	uint8_t *bytes = pk != NULL ? malloc(p->len * 4 + 1) : NULL;
	if (bytes == NULL) {
		free(pk);
		return IDN_ENOMEM;
	}
	memcpy(bytes, p->data, p->len * 4);
	pk->h = *p;
	pk->h.data = bytes;
	pk->bytes = bytes;
	// Appended, so that a call drains its parts in arrival order.
	parked **pp = &c->parked;
	while (*pp != NULL) {
		pp = &(*pp)->next;
	}
	*pp = pk;
	c->ctr.parked++;
	c->ctr.parked_bytes += cost;
	return IDN_OK;
}

// Direct, phase 0: the contribution to add next to own chunk ck, in the
// summation order rank+1, rank+2, ...
static uint32_t
next_src(const op *o, uint64_t ck)
{
	return (o->rank + 1 + o->next[ck]) % o->s.world;
}

bool
coll_in_order(const op *o, const coll_part *p)
{
	return o->s.algo != COLL_ALGO_DIRECT || p->ph != 0 ||
	    (!o->adding[p->ck] && next_src(o, p->ck) == p->src);
}

void
coll_apply(coll *c, op *o, const coll_part *p, parked *pk)
{
	coll_part h = *p;
	for (;;) {
		uint64_t slot = coll_op_slot(o, &h);
		o->slot[slot] = SLOT_BUSY;
		if (o->s.algo == COLL_ALGO_DIRECT && h.ph == 0) {
			o->adding[h.ck] = 1;
		}
		if (pk != NULL) {
			parked_unlink(c, pk);
		}
		o->appliers++;
		core_unlock_log(&c->lock, &c->logq);
		if (coll_is_add(&o->s, h.ph)) {
			coll_add_le(o->buf + h.off, h.data, h.len);
		} else {
			coll_copy_le(o->buf + h.off, h.data, h.len);
		}
		core_lock(&c->lock);
		coll_parked_free(pk);
		pk = NULL;
		o->slot[slot] = SLOT_DONE;
		o->recvd++;
		o->appliers--;
		if (o->over) {
			pthread_cond_broadcast(&c->cv);
			return;
		}
		if (o->s.algo == COLL_ALGO_RING) {
			// What arrived in phase p goes on in phase p + 1.
			if (h.ph + 1 < coll_phases(&o->s)) {
				coll_send_post(c, o, (o->rank + 1) % o->s.world,
				    h.ph + 1, h.ck);
			}
		} else if (h.ph == 0) {
			o->adding[h.ck] = 0;
			if (++o->next[h.ck] == o->s.world - 1) {
				coll_send_phase(c, o, 1, h.ck);
			} else if ((pk = parked_find(c, o, 0,
			                next_src(o, h.ck), h.ck)) != NULL) {
				h = pk->h;
				continue;
			}
		}
		break;
	}
	if (coll_op_complete(o)) {
		pthread_cond_broadcast(&c->cv);
	}
}

// A part for a running call: applied now, or parked until its turn.
static int
feed(coll *c, op *o, const coll_part *p)
{
	uint64_t slot = coll_op_slot(o, p);
	if (o->slot[slot] != SLOT_NONE) {
		coll_warn_refused(c, "a second copy of part %s/%" PRIu64
		    "/%" PRIu64 " phase %u chunk %" PRIu64, p->job, p->gen,
		    p->seq, p->ph, p->ck);
		return IDN_EEXIST;
	}
	if (!coll_in_order(o, p)) {
		int rv = park(c, p);
		if (rv == IDN_OK) {
			o->slot[slot] = SLOT_PARKED;
		}
		return rv;
	}
	coll_apply(c, o, p, NULL);
	return IDN_OK;
}

static coll_group *
group_find(coll *c, const char *job, uint64_t gen)
{
	for (coll_group *g = c->groups; g != NULL; g = g->next) {
		if (g->gen == gen && strcmp(g->job, job) == 0) {
			return g;
		}
	}
	return NULL;
}

// Routes one well-formed part (c->lock held).
static int
route(coll *c, const coll_part *p, const char *from)
{
	job_rec *j = coll_job_find(c, p->job);
	coll_group *g = group_find(c, p->job, p->gen);
	if ((j != NULL && p->gen < j->newest) ||
	    (g == NULL && j != NULL && p->gen == j->newest) ||
	    (g != NULL && g->state != G_OPEN)) {
		c->ctr.stale++;
		core_logq_add(&c->logq, IDN_LOG_DEBUG, "coll: dropped a part "
		    "of %s generation %" PRIu64 " from %s: generation over "
		    "here", p->job, p->gen, from);
		return IDN_ESTALE;
	}
	if (g == NULL) {
		// Not opened here yet: the sender asks again shortly.
		c->ctr.busy++;
		return IDN_EBUSY;
	}
	if (p->dst != g->rank || p->shape.world != g->world) {
		coll_warn_refused(c, "%s generation %" PRIu64 " from %s: rank "
		    "%u of %u, here rank %u of %u", p->job, p->gen, from,
		    p->dst, p->shape.world, g->rank, g->world);
		return IDN_EINVAL;
	}
	op *o = g->op;
	uint64_t cur = o != NULL ? o->seq : g->seq;
	if (o != NULL && p->seq == o->seq) {
		if (o->pending != IDN_OK) {
			c->ctr.refused++;
			return o->pending;
		}
		if (!coll_same_shape(&p->shape, &o->s)) {
			coll_warn_refused(c, "%s generation %" PRIu64
			    " step %" PRIu64 " from %s: ranks disagree on n, "
			    "algorithm or chunk size", p->job, p->gen, p->seq,
			    from);
			coll_op_fail(c, o, IDN_EINVAL);
			return IDN_EINVAL;
		}
		return feed(c, o, p);
	}
	if ((o != NULL && p->seq == o->seq + 1) || (o == NULL && p->seq == cur)) {
		return park(c, p);
	}
	if (p->seq < cur) {
		c->ctr.stale++;
		core_logq_add(&c->logq, IDN_LOG_DEBUG, "coll: dropped a part "
		    "of %s generation %" PRIu64 " step %" PRIu64 " from %s: "
		    "step over here", p->job, p->gen, p->seq, from);
		return IDN_ESTALE;
	}
	coll_warn_refused(c, "%s generation %" PRIu64 " step %" PRIu64
	    " from %s: here at step %" PRIu64, p->job, p->gen, p->seq, from,
	    cur);
	return IDN_EINVAL;
}

int
coll_on_part(void *arg, const wire_env *req, wire_wr *reply)
{
	coll *c = arg;
	coll_part p;
	(void) reply;
	int rv = coll_part_get(req->body, &p);
	core_lock(&c->lock);
	if (rv != IDN_OK) {
		coll_warn_refused(c, "malformed, from %s", req->from);
	} else if (c->closing) {
		rv = IDN_ECLOSED;
	} else {
		rv = route(c, &p, req->from);
	}
	if (rv == IDN_OK) {
		c->ctr.parts_in++;
	}
	core_unlock_log(&c->lock, &c->logq);
	return rv;
}
