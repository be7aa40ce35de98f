// SPDX-License-Identifier: MIT
// engine.c: what the allreduce engine's files share: refusal warnings,
// and a call's reference count and failure.
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collective/engine.h"

#define WARN_EVERY_MS 10000

static bool
log_wanted(const coll *c, int level)
{
	const core_logger *lg = c->o.lg;
	return lg != NULL && lg->fn != NULL && level >= lg->min_level;
}

// A refused part from an authenticated peer is a bug there: one line per
// WARN_EVERY_MS with the count, so a broken peer cannot flood the log.
void
coll_warn_refused(coll *c, const char *fmt, ...)
{
	uint64_t now = idn_clock_ms();
	c->ctr.refused++;
	c->warn_n++;
	if ((c->warn_ms != 0 && now - c->warn_ms < WARN_EVERY_MS) ||
	    !log_wanted(c, IDN_LOG_WARN)) {
		return;
	}
	char why[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	core_logq_add(&c->logq, IDN_LOG_WARN, "coll: refused a part: %s "
	    "(%" PRIu64 " refused since the last such line)", why, c->warn_n);
	c->warn_n = 0;
	c->warn_ms = now;
}

bool
coll_op_complete(const op *o)
{
	return o->recvd == o->recvs && o->sent == o->sends;
}

void
coll_op_fail(coll *c, op *o, int rv)
{
	if (!o->over) {
		o->over = true;
		o->rv = rv;
		pthread_cond_broadcast(&c->cv);
	}
}

void
coll_op_unref(op *o)
{
	if (--o->refs == 0) {
		free(o->slot);
		free(o->next);
		free(o->adding);
		free(o);
	}
}

uint64_t
coll_op_slot(const op *o, const coll_part *p)
{
	if (o->s.algo == COLL_ALGO_RING) {
		return p->ph * o->cmax + p->ck;
	}
	return ((uint64_t) p->ph * o->s.world + p->src) * o->cmax + p->ck;
}

bool
coll_same_shape(const coll_shape *a, const coll_shape *b)
{
	return a->n == b->n && a->world == b->world && a->cf == b->cf &&
	    a->algo == b->algo;
}
