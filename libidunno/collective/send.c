// SPDX-License-Identifier: MIT
// send.c: the allreduce engine's sending side: the queue of parts to
// send, the sender threads, and retries of parts a peer cannot take yet.
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collective/engine.h"

#define RETRY_MIN_MS 1     // first wait after IDN_EBUSY, doubling
#define RETRY_MAX_MS 100   // a 1 MiB part at most 10 times a second

void
coll_send_post(coll *c, op *o, uint32_t dst, uint32_t ph, uint64_t ck)
{
	send *s = core_alloc(sizeof(*s));
	if (s == NULL) {
		coll_op_fail(c, o, IDN_ENOMEM);
		return;
	}
	s->op = o;
	snprintf(s->addr, sizeof(s->addr), "%s", o->g->addrs[dst]);
	coll_part *h = &s->h;
	snprintf(h->job, sizeof(h->job), "%s", o->g->job);
	h->gen = o->g->gen;
	h->seq = o->seq;
	h->shape = o->s;
	h->src = o->rank;
	h->dst = dst;
	h->ph = ph;
	h->ck = ck;
	bool ok = coll_region(&o->s, o->rank, dst, ph, ck, &h->off, &h->len);
	assert(ok);
	(void) ok;
	s->backoff_ms = RETRY_MIN_MS;
	o->refs++;
	o->posted++;
	if (c->sq_tail != NULL) {
		c->sq_tail->next = s;
	} else {
		c->sq = s;
	}
	c->sq_tail = s;
	pthread_cond_signal(&c->send_cv);
}

void
coll_send_phase(coll *c, op *o, uint32_t ph, uint64_t ck)
{
	uint64_t off, len;
	for (uint32_t k = 1; k < o->s.world; k++) {
		uint32_t dst = (o->rank + k) % o->s.world;
		if (coll_region(&o->s, o->rank, dst, ph, ck, &off, &len)) {
			coll_send_post(c, o, dst, ph, ck);
		}
	}
}

// What a failed send makes of the call: the transport's view (the peer
// is silent or gone) or the peer's answer.
static int
send_error(int rv)
{
	switch (rv) {
	case IDN_ETIMEDOUT:
	case IDN_ESTALE:
	case IDN_EINVAL:
	case IDN_EPROTO:
	case IDN_ETOOBIG:
	case IDN_ENOMEM:
		return rv;
	case IDN_EEXIST:
		return IDN_EPROTO;
	default:
		return IDN_ENET;
	}
}

static send *
sq_take_due(coll *c, uint64_t now, uint64_t *wake_ms)
{
	*wake_ms = UINT64_MAX;
	send *prev = NULL;
	for (send *s = c->sq; s != NULL; prev = s, s = s->next) {
		if (s->due_ms <= now || s->op->over) {
			if (prev != NULL) {
				prev->next = s->next;
			} else {
				c->sq = s->next;
			}
			if (c->sq_tail == s) {
				c->sq_tail = prev;
			}
			s->next = NULL;
			return s;
		}
		*wake_ms = CORE_MIN(*wake_ms, s->due_ms);
	}
	return NULL;
}

static void
sq_push(coll *c, send *s)
{
	s->next = NULL;
	if (c->sq_tail != NULL) {
		c->sq_tail->next = s;
	} else {
		c->sq = s;
	}
	c->sq_tail = s;
}

void
coll_send_free(send *s)
{
	wire_wr_free(s->w);
	free(s);
}

// Sends one part (c->lock held on entry and return). True when s was
// queued again for a retry.
static bool
send_one(coll *c, send *s)
{
	op *o = s->op;
	if (s->w == NULL) {
		int rv = wire_wr_new(&s->w);
		if (rv != IDN_OK) {
			coll_op_fail(c, o, rv);
			return false;
		}
		o->readers++;
		core_unlock_log(&c->lock, &c->logq);
		coll_part_put(s->w, &s->h, o->buf + s->h.off);
		core_lock(&c->lock);
		if (--o->readers == 0) {
			pthread_cond_broadcast(&c->cv);
		}
	}
	uint64_t now = idn_clock_ms();
	if (o->over) {
		return false;
	}
	if (now >= o->deadline_ms) {
		coll_op_fail(c, o, IDN_ETIMEDOUT);
		return false;
	}
	idn_duration tmo = (idn_duration) CORE_MIN(o->deadline_ms - now,
	    (uint64_t) COLL_PART_TIMEOUT_MS);
	wire_doc *doc = NULL;
	wire_env env;
	core_unlock_log(&c->lock, &c->logq);
	int rv = rpc_call(c->rpc, s->addr, COLL_ROUTE, s->w, tmo, &doc, &env);
	wire_doc_free(doc);
	core_lock(&c->lock);
	if (rv == IDN_OK) {
		c->ctr.parts_out++;
		if (++o->sent == o->posted && o->pending != IDN_OK) {
			coll_op_fail(c, o, o->pending);
		} else if (o->sent == o->sends && coll_op_complete(o)) {
			pthread_cond_broadcast(&c->cv);
		}
		return false;
	}
	if (rv == IDN_EBUSY && !o->over && !c->closing) {
		c->ctr.retries++;
		s->due_ms = idn_clock_ms() + s->backoff_ms;
		s->backoff_ms = CORE_MIN(2 * s->backoff_ms, RETRY_MAX_MS);
		sq_push(c, s);
		return true;
	}
	coll_op_fail(c, o, o->pending != IDN_OK ? o->pending : send_error(rv));
	return false;
}

void *
coll_sender(void *arg)
{
	coll *c = arg;
	core_lock(&c->lock);
	while (!c->closing) {
		uint64_t wake;
		send *s = sq_take_due(c, idn_clock_ms(), &wake);
		if (s == NULL) {
			if (wake == UINT64_MAX) {
				pthread_cond_wait(&c->send_cv, &c->lock);
			} else {
				core_cond_wait_until(&c->send_cv, &c->lock,
				    wake);
			}
			continue;
		}
		op *o = s->op;
		if (o->over || !send_one(c, s)) {
			coll_send_free(s);
			coll_op_unref(o);
		}
	}
	core_unlock_log(&c->lock, &c->logq);
	return NULL;
}
