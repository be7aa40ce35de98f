// SPDX-License-Identifier: MIT
// coll.c: the allreduce engine: groups, the running call of each, the
// mailbox of parked parts, the coll.part handler and the sender threads.
//
// One lock (c->lock) guards everything here. Lock order: c->lock only;
// no call into rpc is made with it held. The floats themselves are added
// or copied outside the lock: a receive slot is claimed (BUSY) under the
// lock first, so no two threads touch one region, and the region is the
// only one that phase touches (the layout's invariant). A call returns
// only once no thread reads (readers) or writes (appliers) its buffer.
#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collective/coll_int.h"

#define COLL_JOBS_MAX 4096 // generations remembered, one per job
#define PARK_OVERHEAD 128  // bytes a parked part costs beyond its floats
#define PARKED_MAX 4096    // parts parked at most (lists are scanned)
#define RETRY_MIN_MS 1     // first wait after IDN_EBUSY, doubling
#define RETRY_MAX_MS 100   // a 1 MiB part at most 10 times a second
#define WARN_EVERY_MS 10000

enum { SLOT_NONE, SLOT_PARKED, SLOT_BUSY, SLOT_DONE };
enum { G_OPEN, G_BROKEN, G_STALE, G_CANCELLED, G_CLOSED };

typedef struct op op;

// A part waiting for its call, or for its turn in the summation order.
typedef struct parked {
	struct parked *next;
	coll_part h; // h.data points at bytes
	uint8_t *bytes;
} parked;

// A part to send (and, after IDN_EBUSY, to send again at due_ms).
typedef struct send {
	struct send *next;
	op *op;
	char addr[IDN_ADDR_MAX];
	coll_part h;
	wire_wr *w; // encoded on the first attempt
	uint64_t due_ms;
	uint32_t backoff_ms;
} send;

// One running allreduce. refs: the call, and each queued or in-flight
// send; freed by the last.
struct op {
	coll_group *g;
	uint64_t seq;
	coll_shape s;
	uint32_t rank;
	float *buf;
	uint64_t deadline_ms;
	int rv;    // the first error
	bool over; // done or failed: no more applies, no more sends
	// A parked part showed that the ranks disagree: the call still sends
	// its first parts (so that the peers learn it too), then fails.
	int pending;
	uint64_t sends, sent, recvs, recvd;
	uint64_t posted; // sends queued so far
	uint64_t cmax;     // parts in the largest segment
	uint8_t *slot;     // per part received: SLOT_*
	uint32_t *next;    // direct: contributions added, per own chunk
	uint8_t *adding;   // direct: a contribution is being added
	int appliers;      // threads writing buf
	int readers;       // threads encoding from buf
	int refs;
};

struct coll_group {
	coll *c;
	coll_group *next;
	char job[COLL_JOB_MAX + 1];
	uint64_t gen;
	uint32_t rank;
	uint32_t world;
	char (*addrs)[IDN_ADDR_MAX];
	uint64_t seq; // of the running call, else of the next
	int state;    // G_*
	op *op;       // the running call's
	bool in_call;
};

typedef struct {
	char job[COLL_JOB_MAX + 1];
	uint64_t newest;
} job_rec;

struct coll {
	rpc *rpc;
	coll_opts o;
	pthread_mutex_t lock;
	pthread_cond_t cv;      // calls and closers wait here
	pthread_cond_t send_cv; // senders wait here
	bool closing;
	coll_group *groups;
	job_rec *jobs;
	size_t njobs;
	parked *parked;
	send *sq; // queue of sends, oldest first
	send *sq_tail;
	pthread_t *threads;
	int nthreads;
	int calls; // threads inside coll_allreduce
	coll_counters ctr;
	uint64_t warn_ms;
	uint64_t warn_n;
	// The host's logger runs with no lock held: a line is kept here
	// (the most severe of a turn) and logged once c->lock is let go.
	char line[256];
	int line_level; // -1: none
};

static void
timespec_at(uint64_t ms, struct timespec *ts)
{
	ts->tv_sec = (time_t) (ms / 1000);
	ts->tv_nsec = (long) (ms % 1000) * 1000000L;
}

// Waits on cv (monotonic clock) until deadline_ms; false once it passed.
static bool
wait_until(pthread_cond_t *cv, pthread_mutex_t *m, uint64_t deadline_ms)
{
	struct timespec ts;
	if (idn_clock_ms() >= deadline_ms) {
		return false;
	}
	timespec_at(deadline_ms, &ts);
	pthread_cond_timedwait(cv, m, &ts);
	return true;
}

static void
cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

static bool
log_wanted(const coll *c, int level)
{
	const core_logger *lg = c->o.lg;
	return lg != NULL && lg->fn != NULL && level >= lg->min_level &&
	    level > c->line_level;
}

// Keeps a line for unlock_log (c->lock held).
static void
defer_log(coll *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
defer_log(coll *c, int level, const char *fmt, ...)
{
	if (!log_wanted(c, level)) {
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->line, sizeof(c->line), fmt, ap);
	va_end(ap);
	c->line_level = level;
}

// Lets c->lock go, then logs the line kept meanwhile, if any.
static void
unlock_log(coll *c)
{
	char line[sizeof(c->line)];
	int level = c->line_level;
	if (level >= 0) {
		memcpy(line, c->line, sizeof(line));
		c->line_level = -1;
	}
	pthread_mutex_unlock(&c->lock);
	if (level >= 0) {
		core_logf(c->o.lg, level, "%s", line);
	}
}

// A refused part from an authenticated peer is a bug there: one line per
// WARN_EVERY_MS with the count, so a broken peer cannot flood the log.
static void
warn_refused(coll *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
warn_refused(coll *c, const char *fmt, ...)
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
	defer_log(c, IDN_LOG_WARN, "coll: refused a part: %s (%" PRIu64
	    " refused since the last such line)", why, c->warn_n);
	c->warn_n = 0;
	c->warn_ms = now;
}

static bool
op_complete(const op *o)
{
	return o->recvd == o->recvs && o->sent == o->sends;
}

static void
op_fail(coll *c, op *o, int rv)
{
	if (!o->over) {
		o->over = true;
		o->rv = rv;
		pthread_cond_broadcast(&c->cv);
	}
}

static void
op_unref(op *o)
{
	if (--o->refs == 0) {
		free(o->slot);
		free(o->next);
		free(o->adding);
		free(o);
	}
}

static uint64_t
op_slot(const op *o, const coll_part *p)
{
	if (o->s.algo == COLL_ALGO_RING) {
		return p->ph * o->cmax + p->ck;
	}
	return ((uint64_t) p->ph * o->s.world + p->src) * o->cmax + p->ck;
}

static bool
same_shape(const coll_shape *a, const coll_shape *b)
{
	return a->n == b->n && a->world == b->world && a->cf == b->cf &&
	    a->algo == b->algo;
}

static job_rec *
job_find(coll *c, const char *job)
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
static int
job_set(coll *c, const char *job, uint64_t gen)
{
	job_rec *j = job_find(c, job);
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

static void
parked_free(parked *pk)
{
	if (pk != NULL) {
		free(pk->bytes);
		free(pk);
	}
}

// Drops the parked parts of job's generation gen (of those below it when
// below is set) whose seq is at most max_seq.
static void
drop_parked(coll *c, const char *job, uint64_t gen, bool below,
    uint64_t max_seq)
{
	parked **pp = &c->parked;
	while (*pp != NULL) {
		parked *pk = *pp;
		bool hit = strcmp(pk->h.job, job) == 0 && pk->h.seq <= max_seq &&
		    (below ? pk->h.gen < gen : pk->h.gen == gen);
		if (hit) {
			parked_unlink(c, pk);
			parked_free(pk);
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
			warn_refused(c, "a second copy of part %s/%" PRIu64
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

static void
send_post(coll *c, op *o, uint32_t dst, uint32_t ph, uint64_t ck)
{
	send *s = core_alloc(sizeof(*s));
	if (s == NULL) {
		op_fail(c, o, IDN_ENOMEM);
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

// Sends every part of phase ph and chunk ck that this rank sends.
static void
send_phase(coll *c, op *o, uint32_t ph, uint64_t ck)
{
	uint64_t off, len;
	for (uint32_t k = 1; k < o->s.world; k++) {
		uint32_t dst = (o->rank + k) % o->s.world;
		if (coll_region(&o->s, o->rank, dst, ph, ck, &off, &len)) {
			send_post(c, o, dst, ph, ck);
		}
	}
}

// Direct, phase 0: the contribution to add next to own chunk ck, in the
// summation order rank+1, rank+2, ...
static uint32_t
next_src(const op *o, uint64_t ck)
{
	return (o->rank + 1 + o->next[ck]) % o->s.world;
}

static bool
in_order(const op *o, const coll_part *p)
{
	return o->s.algo != COLL_ALGO_DIRECT || p->ph != 0 ||
	    (!o->adding[p->ck] && next_src(o, p->ck) == p->src);
}

// Adds or copies p into the call's buffer, then sends what that enables,
// and goes on with parts parked behind it. Called and returns with
// c->lock held; drops it while touching the floats. pk: p is parked
// (and is freed here once used).
static void
apply(coll *c, op *o, const coll_part *p, parked *pk)
{
	coll_part h = *p;
	for (;;) {
		uint64_t slot = op_slot(o, &h);
		o->slot[slot] = SLOT_BUSY;
		if (o->s.algo == COLL_ALGO_DIRECT && h.ph == 0) {
			o->adding[h.ck] = 1;
		}
		if (pk != NULL) {
			parked_unlink(c, pk);
		}
		o->appliers++;
		pthread_mutex_unlock(&c->lock);
		if (coll_is_add(&o->s, h.ph)) {
			coll_add_le(o->buf + h.off, h.data, h.len);
		} else {
			coll_copy_le(o->buf + h.off, h.data, h.len);
		}
		pthread_mutex_lock(&c->lock);
		parked_free(pk);
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
				send_post(c, o, (o->rank + 1) % o->s.world,
				    h.ph + 1, h.ck);
			}
		} else if (h.ph == 0) {
			o->adding[h.ck] = 0;
			if (++o->next[h.ck] == o->s.world - 1) {
				send_phase(c, o, 1, h.ck);
			} else if ((pk = parked_find(c, o, 0,
			                next_src(o, h.ck), h.ck)) != NULL) {
				h = pk->h;
				continue;
			}
		}
		break;
	}
	if (op_complete(o)) {
		pthread_cond_broadcast(&c->cv);
	}
}

// A part for a running call: applied now, or parked until its turn.
static int
feed(coll *c, op *o, const coll_part *p)
{
	uint64_t slot = op_slot(o, p);
	if (o->slot[slot] != SLOT_NONE) {
		warn_refused(c, "a second copy of part %s/%" PRIu64 "/%" PRIu64
		    " phase %u chunk %" PRIu64, p->job, p->gen, p->seq, p->ph,
		    p->ck);
		return IDN_EEXIST;
	}
	if (!in_order(o, p)) {
		int rv = park(c, p);
		if (rv == IDN_OK) {
			o->slot[slot] = SLOT_PARKED;
		}
		return rv;
	}
	apply(c, o, p, NULL);
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
	job_rec *j = job_find(c, p->job);
	coll_group *g = group_find(c, p->job, p->gen);
	if ((j != NULL && p->gen < j->newest) ||
	    (g == NULL && j != NULL && p->gen == j->newest) ||
	    (g != NULL && g->state != G_OPEN)) {
		c->ctr.stale++;
		defer_log(c, IDN_LOG_DEBUG, "coll: dropped a part of %s "
		    "generation %" PRIu64 " from %s: generation over here",
		    p->job, p->gen, from);
		return IDN_ESTALE;
	}
	if (g == NULL) {
		// Not opened here yet: the sender asks again shortly.
		c->ctr.busy++;
		return IDN_EBUSY;
	}
	if (p->dst != g->rank || p->shape.world != g->world) {
		warn_refused(c, "%s generation %" PRIu64 " from %s: rank %u of "
		    "%u, here rank %u of %u", p->job, p->gen, from, p->dst,
		    p->shape.world, g->rank, g->world);
		return IDN_EINVAL;
	}
	op *o = g->op;
	uint64_t cur = o != NULL ? o->seq : g->seq;
	if (o != NULL && p->seq == o->seq) {
		if (o->pending != IDN_OK) {
			c->ctr.refused++;
			return o->pending;
		}
		if (!same_shape(&p->shape, &o->s)) {
			warn_refused(c, "%s generation %" PRIu64 " step %" PRIu64
			    " from %s: ranks disagree on n, algorithm or chunk "
			    "size", p->job, p->gen, p->seq, from);
			op_fail(c, o, IDN_EINVAL);
			return IDN_EINVAL;
		}
		return feed(c, o, p);
	}
	if ((o != NULL && p->seq == o->seq + 1) || (o == NULL && p->seq == cur)) {
		return park(c, p);
	}
	if (p->seq < cur) {
		c->ctr.stale++;
		defer_log(c, IDN_LOG_DEBUG, "coll: dropped a part of %s "
		    "generation %" PRIu64 " step %" PRIu64 " from %s: step over "
		    "here", p->job, p->gen, p->seq, from);
		return IDN_ESTALE;
	}
	warn_refused(c, "%s generation %" PRIu64 " step %" PRIu64 " from %s: "
	    "here at step %" PRIu64, p->job, p->gen, p->seq, from, cur);
	return IDN_EINVAL;
}

static int
on_part(void *arg, const wire_env *req, wire_wr *reply)
{
	coll *c = arg;
	coll_part p;
	(void) reply;
	int rv = coll_part_get(req->body, &p);
	pthread_mutex_lock(&c->lock);
	if (rv != IDN_OK) {
		warn_refused(c, "malformed, from %s", req->from);
	} else if (c->closing) {
		rv = IDN_ECLOSED;
	} else {
		rv = route(c, &p, req->from);
	}
	if (rv == IDN_OK) {
		c->ctr.parts_in++;
	}
	unlock_log(c);
	return rv;
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

static void
send_free(send *s)
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
			op_fail(c, o, rv);
			return false;
		}
		o->readers++;
		pthread_mutex_unlock(&c->lock);
		coll_part_put(s->w, &s->h, o->buf + s->h.off);
		pthread_mutex_lock(&c->lock);
		if (--o->readers == 0) {
			pthread_cond_broadcast(&c->cv);
		}
	}
	uint64_t now = idn_clock_ms();
	if (o->over) {
		return false;
	}
	if (now >= o->deadline_ms) {
		op_fail(c, o, IDN_ETIMEDOUT);
		return false;
	}
	idn_duration tmo = (idn_duration) CORE_MIN(o->deadline_ms - now,
	    (uint64_t) COLL_PART_TIMEOUT_MS);
	wire_doc *doc = NULL;
	wire_env env;
	pthread_mutex_unlock(&c->lock);
	int rv = rpc_call(c->rpc, s->addr, COLL_ROUTE, s->w, tmo, &doc, &env);
	wire_doc_free(doc);
	pthread_mutex_lock(&c->lock);
	if (rv == IDN_OK) {
		c->ctr.parts_out++;
		if (++o->sent == o->posted && o->pending != IDN_OK) {
			op_fail(c, o, o->pending);
		} else if (o->sent == o->sends && op_complete(o)) {
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
	op_fail(c, o, o->pending != IDN_OK ? o->pending : send_error(rv));
	return false;
}

static void *
sender(void *arg)
{
	coll *c = arg;
	pthread_mutex_lock(&c->lock);
	while (!c->closing) {
		uint64_t wake;
		send *s = sq_take_due(c, idn_clock_ms(), &wake);
		if (s == NULL) {
			if (wake == UINT64_MAX) {
				pthread_cond_wait(&c->send_cv, &c->lock);
			} else {
				wait_until(&c->send_cv, &c->lock, wake);
			}
			continue;
		}
		op *o = s->op;
		if (o->over || !send_one(c, s)) {
			send_free(s);
			op_unref(o);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

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
	c->line_level = -1;
	pthread_mutex_init(&c->lock, NULL);
	cond_init_mono(&c->cv);
	cond_init_mono(&c->send_cv);
	int rv = rpc_route(r, COLL_ROUTE, on_part, c);
	if (rv == IDN_OK && (c->threads = core_alloc(sizeof(pthread_t) *
	                         (size_t) o->senders)) == NULL) {
		rv = IDN_ENOMEM;
	}
	for (int i = 0; rv == IDN_OK && i < o->senders; i++) {
		if (pthread_create(&c->threads[i], NULL, sender, c) != 0) {
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
		op_fail(c, g->op, rv);
	}
	drop_parked(c, g->job, g->gen, false, UINT64_MAX);
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
	pthread_mutex_lock(&c->lock);
	c->closing = true;
	for (coll_group *g = c->groups; g != NULL; g = g->next) {
		group_end(c, g, G_CLOSED, IDN_ECLOSED);
	}
	pthread_cond_broadcast(&c->send_cv);
	while (c->calls > 0) {
		pthread_cond_wait(&c->cv, &c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < c->nthreads; i++) {
		pthread_join(c->threads[i], NULL);
	}
	// No thread left: what remains is only freed.
	while (c->sq != NULL) {
		send *s = c->sq;
		c->sq = s->next;
		op *o = s->op;
		send_free(s);
		op_unref(o);
	}
	while (c->parked != NULL) {
		parked *pk = c->parked;
		c->parked = pk->next;
		parked_free(pk);
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
	pthread_mutex_lock(&c->lock);
	job_rec *j = job_find(c, o->job);
	int rv = c->closing ? IDN_ECLOSED :
	    j != NULL && o->gen <= j->newest ? IDN_ESTALE : IDN_OK;
	if (rv == IDN_OK) {
		rv = job_set(c, o->job, o->gen);
	}
	if (rv == IDN_OK) {
		for (coll_group *h = c->groups; h != NULL; h = h->next) {
			if (strcmp(h->job, o->job) == 0) {
				group_end(c, h, G_STALE, IDN_ESTALE);
			}
		}
		drop_parked(c, o->job, o->gen, true, UINT64_MAX);
		g->next = c->groups;
		c->groups = g;
	}
	pthread_mutex_unlock(&c->lock);
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
	pthread_mutex_lock(&c->lock);
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
	pthread_mutex_unlock(&c->lock);
	group_free(g);
}

int
coll_cancel(coll *c, const char *job)
{
	if (c == NULL || !coll_job_ok(job)) {
		return IDN_EINVAL;
	}
	int rv = IDN_ENOENT;
	pthread_mutex_lock(&c->lock);
	for (coll_group *g = c->groups; g != NULL; g = g->next) {
		if (strcmp(g->job, job) == 0) {
			group_end(c, g, G_CANCELLED, IDN_ECLOSED);
			rv = IDN_OK;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return rv;
}

void
coll_get_counters(coll *c, coll_counters *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->ctr;
	pthread_mutex_unlock(&c->lock);
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
		op_unref(o);
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
		if (!same_shape(&pk->h.shape, &o->s)) {
			warn_refused(c, "%s generation %" PRIu64 " step %" PRIu64
			    ": ranks disagree on n, algorithm or chunk size",
			    g->job, g->gen, o->seq);
			o->pending = IDN_EINVAL;
			break;
		}
	}
	for (parked *pk = c->parked; pk != NULL && o->pending == IDN_OK;
	     pk = pk->next) {
		if (pk->h.seq == o->seq && pk->h.gen == g->gen &&
		    strcmp(pk->h.job, g->job) == 0) {
			o->slot[op_slot(o, &pk->h)] = SLOT_PARKED;
		}
	}
	if (o->s.algo == COLL_ALGO_RING) {
		for (uint64_t ck = 0; ck < coll_seg_parts(&o->s, o->rank);
		     ck++) {
			send_post(c, o, (o->rank + 1) % o->s.world, 0, ck);
		}
	} else {
		// Chunk by chunk over all peers, so every owner starts early.
		for (uint64_t ck = 0; ck < o->cmax; ck++) {
			send_phase(c, o, 0, ck);
		}
	}
	if (o->pending != IDN_OK) {
		if (o->posted == 0) {
			op_fail(c, o, o->pending);
		}
		return;
	}
	// apply drops the lock: rescan from the head after each.
	bool again = true;
	while (again && !o->over) {
		again = false;
		for (parked *pk = c->parked; pk != NULL; pk = pk->next) {
			if (pk->h.seq == o->seq && pk->h.gen == g->gen &&
			    strcmp(pk->h.job, g->job) == 0 &&
			    in_order(o, &pk->h)) {
				apply(c, o, &pk->h, pk);
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
	pthread_mutex_lock(&c->lock);
	int rv = c->closing ? IDN_ECLOSED : g->in_call ? IDN_EBUSY :
	    state_error(g->state);
	if (rv != IDN_OK || g->world == 1 || n == 0) {
		g->seq += rv == IDN_OK;
		pthread_mutex_unlock(&c->lock);
		return rv;
	}
	op *o;
	if ((rv = op_new(g, buf, n, deadline, &o)) != IDN_OK) {
		pthread_mutex_unlock(&c->lock);
		return rv;
	}
	g->op = o;
	g->in_call = true;
	c->calls++;
	op_start(c, o);
	while (!o->over && !op_complete(o)) {
		if (!wait_until(&c->cv, &c->lock, deadline)) {
			op_fail(c, o, IDN_ETIMEDOUT);
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
			send_free(s);
			op_unref(o);
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
		drop_parked(c, g->job, g->gen, false, o->seq);
	} else {
		if (g->state == G_OPEN) {
			g->state = G_BROKEN;
		}
		drop_parked(c, g->job, g->gen, false, UINT64_MAX);
	}
	g->in_call = false;
	c->calls--;
	pthread_cond_broadcast(&c->cv);
	op_unref(o);
	unlock_log(c);
	return rv;
}
