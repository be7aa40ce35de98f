// SPDX-License-Identifier: MIT
// coll.c: the allreduce engine's top: open and close, groups, and each
// call from its start to its end (engine.h: the files under it, the lock).
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collective/engine.h"

void
coll_opts_init(coll_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->chunk_bytes = 1u << 20;
	o->mailbox_bytes = 256u << 20;
	o->senders = 3;
	o->algo = COLL_ALGO_AUTO;
}

int
coll_open(rpc *r, const coll_opts *o, coll **out)
{
	coll_opts d;
	if (o == NULL) {
		coll_opts_init(&d);
		o = &d;
	}
	if (r == NULL || out == NULL || o->chunk_bytes < COLL_CHUNK_MIN ||
	    o->chunk_bytes > COLL_CHUNK_MAX || o->chunk_bytes % 4 != 0 ||
	    o->senders < 1 || o->senders > 64 ||
	    o->mailbox_bytes < o->chunk_bytes + PARK_OVERHEAD ||
	    (unsigned) o->algo > COLL_ALGO_DIRECT) {
		return IDN_EINVAL;
	}
	coll *c = core_alloc(sizeof(*c));
	if (c == NULL) {
		return IDN_ENOMEM;
	}
	c->rpc = r;
	c->o = *o;
	c->logq.lg = o->lg;
	pthread_mutex_init(&c->lock, NULL);
	core_cond_init(&c->cv);
	core_cond_init(&c->send_cv);
	int rv = rpc_route(r, COLL_ROUTE, coll_on_part, c);
	if (rv == IDN_OK && (c->threads = core_alloc(sizeof(pthread_t) *
	                         (size_t) o->senders)) == NULL) {
		rv = IDN_ENOMEM;
	}
	for (int i = 0; rv == IDN_OK && i < o->senders; i++) {
		if (pthread_create(&c->threads[i], NULL, coll_sender, c) != 0) {
			rv = IDN_ESYS;
		} else {
			c->nthreads++;
		}
	}
	if (rv != IDN_OK) {
		rpc_unroute(r, c);
		coll_close(c);
		return rv;
	}
	*out = c;
	return IDN_OK;
}

// Ends a group's running call with rv and its later calls (state), and
// drops its parked parts (c->lock held).
static void
group_end(coll *c, coll_group *g, int state, int rv)
{
	if (g->state == G_OPEN || g->state == G_BROKEN) {
		g->state = state;
	}
	if (g->op != NULL) {
		coll_op_fail(c, g->op, rv);
	}
	coll_drop_parked(c, g->job, g->gen, false, UINT64_MAX);
}

static void
group_free(coll_group *g)
{
	if (g != NULL) {
		free(g->addrs);
		free(g);
	}
}

void
coll_close(coll *c)
{
	if (c == NULL) {
		return;
	}
	core_lock(&c->lock);
	c->closing = true;
	for (coll_group *g = c->groups; g != NULL; g = g->next) {
		group_end(c, g, G_CLOSED, IDN_ECLOSED);
	}
	pthread_cond_broadcast(&c->send_cv);
	while (c->calls > 0) {
		pthread_cond_wait(&c->cv, &c->lock);
	}
	core_unlock_log(&c->lock, &c->logq);
	for (int i = 0; i < c->nthreads; i++) {
		pthread_join(c->threads[i], NULL);
	}
	// No thread left: what remains is only freed.
	while (c->sq != NULL) {
		send *s = c->sq;
		c->sq = s->next;
		op *o = s->op;
		coll_send_free(s);
		coll_op_unref(o);
	}
	while (c->parked != NULL) {
		parked *pk = c->parked;
		c->parked = pk->next;
		coll_parked_free(pk);
	}
	while (c->groups != NULL) {
		coll_group *g = c->groups;
		c->groups = g->next;
		group_free(g);
	}
	free(c->jobs);
	free(c->threads);
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->send_cv);
	pthread_mutex_destroy(&c->lock);
	core_logq_free(&c->logq);
	free(c);
}

int
coll_group_open(coll *c, const coll_group_opts *o, coll_group **out)
{
	char url[128];
	if (c == NULL || o == NULL || out == NULL || !coll_job_ok(o->job) ||
	    o->world < 1 || o->world > COLL_WORLD_MAX ||
	    o->rank >= o->world || o->addrs == NULL) {
		return IDN_EINVAL;
	}
	for (uint32_t i = 0; i < o->world; i++) {
		if (o->addrs[i] == NULL ||
		    strlen(o->addrs[i]) >= IDN_ADDR_MAX ||
		    net_addr_to_url(o->addrs[i], url, sizeof(url)) != IDN_OK) {
			return IDN_EINVAL;
		}
	}
	coll_group *g = core_alloc(sizeof(*g));
	if (g == NULL || (g->addrs = core_alloc(sizeof(*g->addrs) *
	                      o->world)) == NULL) {
		free(g);
		return IDN_ENOMEM;
	}
	g->c = c;
	snprintf(g->job, sizeof(g->job), "%s", o->job);
	g->gen = o->gen;
	g->rank = o->rank;
	g->world = o->world;
	for (uint32_t i = 0; i < o->world; i++) {
		snprintf(g->addrs[i], IDN_ADDR_MAX, "%s", o->addrs[i]);
	}
	core_lock(&c->lock);
	job_rec *j = coll_job_find(c, o->job);
	int rv = c->closing ? IDN_ECLOSED :
	    j != NULL && o->gen <= j->newest ? IDN_ESTALE : IDN_OK;
	if (rv == IDN_OK) {
		rv = coll_job_set(c, o->job, o->gen);
	}
	if (rv == IDN_OK) {
		for (coll_group *h = c->groups; h != NULL; h = h->next) {
			if (strcmp(h->job, o->job) == 0) {
				group_end(c, h, G_STALE, IDN_ESTALE);
			}
		}
		coll_drop_parked(c, o->job, o->gen, true, UINT64_MAX);
		g->next = c->groups;
		c->groups = g;
	}
	core_unlock_log(&c->lock, &c->logq);
	if (rv != IDN_OK) {
		group_free(g);
		return rv;
	}
	*out = g;
	return IDN_OK;
}

void
coll_group_close(coll_group *g)
{
	if (g == NULL) {
		return;
	}
	coll *c = g->c;
	core_lock(&c->lock);
	group_end(c, g, G_CLOSED, IDN_ECLOSED);
	g->state = G_CLOSED;
	while (g->in_call) {
		pthread_cond_wait(&c->cv, &c->lock);
	}
	for (coll_group **pp = &c->groups; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	core_unlock_log(&c->lock, &c->logq);
	group_free(g);
}

int
coll_cancel(coll *c, const char *job)
{
	if (c == NULL || !coll_job_ok(job)) {
		return IDN_EINVAL;
	}
	int rv = IDN_ENOENT;
	core_lock(&c->lock);
	for (coll_group *g = c->groups; g != NULL; g = g->next) {
		if (strcmp(g->job, job) == 0) {
			group_end(c, g, G_CANCELLED, IDN_ECLOSED);
			rv = IDN_OK;
		}
	}
	core_unlock_log(&c->lock, &c->logq);
	return rv;
}

void
coll_get_counters(coll *c, coll_counters *out)
{
	core_lock(&c->lock);
	*out = c->ctr;
	core_unlock_log(&c->lock, &c->logq);
}

static int
state_error(int state)
{
	return state == G_OPEN ? IDN_OK :
	    state == G_BROKEN || state == G_STALE ? IDN_ESTALE : IDN_ECLOSED;
}

// A function of n alone, so that every rank picks the same.
static uint32_t
pick_algo(const coll_opts *o, uint64_t n)
{
	if (o->algo != COLL_ALGO_AUTO) {
		return o->algo;
	}
	return n * 4 <= COLL_ALGO_DIRECT_MAX_BYTES ? COLL_ALGO_DIRECT :
	                                             COLL_ALGO_RING;
}

static int
op_new(coll_group *g, float *buf, size_t n, uint64_t deadline_ms, op **out)
{
	op *o = core_alloc(sizeof(*o));
	if (o == NULL) {
		return IDN_ENOMEM;
	}
	o->g = g;
	o->seq = g->seq;
	o->rank = g->rank;
	o->buf = buf;
	o->deadline_ms = deadline_ms;
	o->s.n = n;
	o->s.world = g->world;
	o->s.cf = (uint32_t) (g->c->o.chunk_bytes / 4);
	o->s.algo = pick_algo(&g->c->o, n);
	o->cmax = coll_max_parts(&o->s);
	coll_counts(&o->s, o->rank, &o->sends, &o->recvs);
	uint64_t nslots = (uint64_t) coll_phases(&o->s) * o->cmax *
	    (o->s.algo == COLL_ALGO_DIRECT ? o->s.world : 1);
	o->slot = core_alloc(nslots + 1);
	o->next = core_alloc(sizeof(*o->next) * (o->cmax + 1));
	o->adding = core_alloc(o->cmax + 1);
	o->refs = 1;
	if (o->slot == NULL || o->next == NULL || o->adding == NULL) {
		coll_op_unref(o);
		return IDN_ENOMEM;
	}
	*out = o;
	return IDN_OK;
}

// Starts a call: claims the parts parked for it, sends what needs nothing
// received, and applies the parked parts whose turn it is (c->lock held).
static void
op_start(coll *c, op *o)
{
	coll_group *g = o->g;
	for (parked *pk = c->parked, *nx; pk != NULL; pk = nx) {
		nx = pk->next;
		if (pk->h.seq != o->seq || pk->h.gen != g->gen ||
		    strcmp(pk->h.job, g->job) != 0) {
			continue;
		}
		if (!coll_same_shape(&pk->h.shape, &o->s)) {
			coll_warn_refused(c, "%s generation %" PRIu64
			    " step %" PRIu64 ": ranks disagree on n, "
			    "algorithm or chunk size", g->job, g->gen, o->seq);
			o->pending = IDN_EINVAL;
			break;
		}
	}
	for (parked *pk = c->parked; pk != NULL && o->pending == IDN_OK;
	     pk = pk->next) {
		if (pk->h.seq == o->seq && pk->h.gen == g->gen &&
		    strcmp(pk->h.job, g->job) == 0) {
			o->slot[coll_op_slot(o, &pk->h)] = SLOT_PARKED;
		}
	}
	if (o->s.algo == COLL_ALGO_RING) {
		for (uint64_t ck = 0; ck < coll_seg_parts(&o->s, o->rank);
		     ck++) {
			coll_send_post(c, o, (o->rank + 1) % o->s.world, 0, ck);
		}
	} else {
		// Chunk by chunk over all peers, so every owner starts early.
		for (uint64_t ck = 0; ck < o->cmax; ck++) {
			coll_send_phase(c, o, 0, ck);
		}
	}
	if (o->pending != IDN_OK) {
		if (o->posted == 0) {
			coll_op_fail(c, o, o->pending);
		}
		return;
	}
	// coll_apply drops the lock: rescan from the head after each.
	bool again = true;
	while (again && !o->over) {
		again = false;
		for (parked *pk = c->parked; pk != NULL; pk = pk->next) {
			if (pk->h.seq == o->seq && pk->h.gen == g->gen &&
			    strcmp(pk->h.job, g->job) == 0 &&
			    coll_in_order(o, &pk->h)) {
				coll_apply(c, o, &pk->h, pk);
				again = true;
				break;
			}
		}
	}
}

int
coll_allreduce(coll_group *g, float *buf, size_t n, idn_duration timeout_ms)
{
	if (g == NULL || (buf == NULL && n > 0) || n > COLL_N_MAX ||
	    timeout_ms <= 0) {
		return IDN_EINVAL;
	}
	coll *c = g->c;
	uint64_t deadline = idn_clock_ms() + (uint64_t) timeout_ms;
	core_lock(&c->lock);
	int rv = c->closing ? IDN_ECLOSED : g->in_call ? IDN_EBUSY :
	    state_error(g->state);
	if (rv != IDN_OK || g->world == 1 || n == 0) {
		g->seq += rv == IDN_OK;
		core_unlock_log(&c->lock, &c->logq);
		return rv;
	}
	op *o;
	if ((rv = op_new(g, buf, n, deadline, &o)) != IDN_OK) {
		core_unlock_log(&c->lock, &c->logq);
		return rv;
	}
	g->op = o;
	g->in_call = true;
	c->calls++;
	op_start(c, o);
	while (!o->over && !coll_op_complete(o)) {
		if (idn_clock_ms() >= deadline) {
			coll_op_fail(c, o, IDN_ETIMEDOUT);
		} else {
			core_cond_wait_until(&c->cv, &c->lock, deadline);
		}
	}
	if (!o->over) {
		o->over = true; // complete
	}
	rv = o->rv;
	g->op = NULL;
	// Queued sends go; those being encoded or applied finish first.
	for (send **pp = &c->sq; *pp != NULL;) {
		send *s = *pp;
		if (s->op == o) {
			*pp = s->next;
			coll_send_free(s);
			coll_op_unref(o);
		} else {
			pp = &s->next;
		}
	}
	c->sq_tail = NULL;
	for (send *s = c->sq; s != NULL; s = s->next) {
		c->sq_tail = s;
	}
	while (o->appliers > 0 || o->readers > 0) {
		pthread_cond_wait(&c->cv, &c->lock);
	}
	if (rv == IDN_OK) {
		g->seq++;
		coll_drop_parked(c, g->job, g->gen, false, o->seq);
	} else {
		if (g->state == G_OPEN) {
			g->state = G_BROKEN;
		}
		coll_drop_parked(c, g->job, g->gen, false, UINT64_MAX);
	}
	g->in_call = false;
	c->calls--;
	pthread_cond_broadcast(&c->cv);
	coll_op_unref(o);
	core_unlock_log(&c->lock, &c->logq);
	return rv;
}
