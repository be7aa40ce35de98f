// SPDX-License-Identifier: MIT
// lease.c: the lease call, the heart of the coordinator: a worker's
// completions and renewals are taken, its share of the jobs picked
// (deficit round robin over its allocation row), and batches leased
// ahead of their arrival; and what the membership says of workers.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <idunno/sched.h>

#include "coord/coord_int.h"

// With nothing ready, a worker is leased batches that arrive within this
// long, until its queue reaches as far, so the queue carries it through a
// coordinator's takeover (about 0.6 s) at the offered rate; it starts
// each on arrival.
#define AHEAD_MS 1000
#define AHEAD_CALL 2           // leases ahead of arrival given in one call
// Ready batches given in one call: a worker short of work calls again at
// once, so a burst (the arrivals of a takeover's gap) is dealt out over
// all the workers' calls; to the first callers alone it was 70 batches
// to 3 of 8 workers while the others idled for a second.
#define READY_CALL 8
#define FOREIGN_QUEUE 2        // queued leases of jobs not a worker's share

static double *
served(cworker *w, uint64_t job)
{
	for (int i = 0; i < MAX_JOBS; i++) {
		if (w->served_key[i] == job) {
			return &w->served_ms[i];
		}
	}
	for (int i = 0; i < MAX_JOBS; i++) {
		if (w->served_key[i] == 0) {
			w->served_key[i] = job;
			w->served_ms[i] = 0;
			return &w->served_ms[i];
		}
	}
	w->served_key[0] = job; // full: reuse a slot
	w->served_ms[0] = 0;
	return &w->served_ms[0];
}

static size_t
alloc_row(coord *c, uint64_t worker)
{
	for (size_t i = 0; c->have_alloc && i < c->alloc.nworkers; i++) {
		if (c->alloc.workers != NULL && c->alloc.workers[i] == worker) {
			return i;
		}
	}
	return SIZE_MAX;
}

// A lease of w goes back for others at once; the ledger says so (expiry
// 0), so a standby that takes over does not give it back to w.
static void
lease_back(coord *c, cjob *j, cworker *w, uint32_t task, uint32_t attempt,
    uint64_t now)
{
	sched_job_restore_lease(j->sj, task, w->key, attempt, now);
	sched_job_expire(j->sj, now);
	ledger_lease_put(c->led, j->spec.job, task, w->id, attempt, 0);
}

static void
complete(coord *c, cworker *w, const record_done *d, uint64_t now)
{
	cjob *j = coord_find_job(c, d->job);
	if (j == NULL || j->sj == NULL || j->state != IDN_JOB_RUNNING) {
		return;
	}
	if (d->rc != IDN_OK) {
		coord_note(c, IDN_LOG_WARN, "coord: batch %s/%u failed on %s: "
		    "%s", d->job, d->task, w->id, idn_strerror(d->rc));
		if (d->rc == IDN_EMODEL || d->rc == IDN_EINVAL ||
		    d->rc == IDN_ECORRUPT) {
			j->state = IDN_JOB_FAILED;
			snprintf(j->err, sizeof(j->err), "batch %u failed on %s:"
			    " %s", d->task, w->id, idn_strerror(d->rc));
			ledger_job_state(c->led, j->spec.job, j->state, true, -1,
			    j->err);
			c->dirty = true;
			return;
		}
		// Anything else (SDFS unavailable for a moment): the task goes
		// back at once instead of when its lease would expire.
		uint64_t holder, exp;
		uint32_t attempt;
		if (sched_job_lease_info(j->sj, d->task, &holder, &attempt,
		        &exp) && holder == w->key && attempt == d->attempt) {
			lease_back(c, j, w, d->task, attempt, now);
		}
		return;
	}
	if (sched_job_complete(j->sj, d->task, now) != IDN_OK) {
		return; // done already (by another attempt): exactly once
	}
	ledger_row row = {.task = d->task, .attempt = d->attempt,
	    .ms = d->ms, .end_ms = d->end_ms, .lease_ms = d->lease_ms,
	    .start_ms = d->start_ms, .model_start_ms = d->model_start_ms,
	    .model_end_ms = d->model_end_ms};
	snprintf(row.worker, sizeof(row.worker), "%s", w->id);
	ledger_task_done(c->led, d->job, &row);
	coord_job_measure(j, &row, now);
	// The allocator shares worker time, so it needs the whole task's
	// time (inputs, model, result write), not the model's alone.
	// The first measurements replace the starting estimate (the mean of
	// those so far), later ones move it by a fifth: a job of a few dozen
	// tasks (groups of G batches) otherwise ran most of its life on the
	// estimate, 3x too low for LeNet-5 on 8 busy workers in the demo, and
	// got 1.5-3.5x the other job's rate.
	double busy = d->busy_ms > d->ms ? d->busy_ms : d->ms;
	double a = j->nbusy < 4 ? 1.0 / (j->nbusy + 1) : 0.2;
	j->nbusy++;
	j->task_ms = (1 - a) * j->task_ms + a * (busy > 0 ? busy : 1);
	coord_note(c, IDN_LOG_INFO, "coord: batch completed: %s/%u by %s "
	    "attempt %u in %.1f ms", d->job, d->task, w->id, d->attempt,
	    d->ms);
	if (sched_job_finished(j->sj)) {
		c->dirty = true;
		pthread_cond_broadcast(&c->cond);
	}
}

// Whether the allocation gives worker w no share of job j but a share of
// another job that is backlogged (short of workers) with a task ready:
// then w's queued leases of j go back. Jobs that get all they ask for
// keep what they hold (no churn).
static bool
moved_off(coord *c, cworker *w, const cjob *j, uint64_t now)
{
	size_t row = alloc_row(c, w->key);
	bool other = false;
	for (size_t i = 0; row != SIZE_MAX && i < c->alloc.nshares[row]; i++) {
		const sched_share *sh = &c->alloc.shares[row][i];
		if (sh->job == j->key) {
			return false;
		}
		cjob *o = coord_job_by_key(c, sh->job);
		if (o != NULL && coord_infer_active(o) &&
		    sched_job_ready(o->sj, now)) {
			sched_fair_job fo = coord_fair_job(o, now);
			other = other || sched_fair_backlogged(&c->alloc, &fo);
		}
	}
	return other;
}

// Whether the worker's allocation row gained a job since its last call
// that has a task ready and of which it holds no lease: then its queued
// leases of other jobs go back and are leased again in pick order, so the
// new job's first batch runs after the task under way instead of behind
// the prefetched ones (a worker time-shared between an old and a new job
// keeps a share of the old one, so moved_off() does not apply).
static bool
gained_job(coord *c, cworker *w, const record_lease_req *r, uint64_t now)
{
	size_t row = alloc_row(c, w->key);
	size_t n = row == SIZE_MAX ? 0 : c->alloc.nshares[row];
	n = n > MAX_JOBS ? MAX_JOBS : n;
	bool gained = false;
	uint64_t was[MAX_JOBS];
	memcpy(was, w->row, sizeof(was));
	for (size_t i = 0; i < n; i++) {
		uint64_t k = c->alloc.shares[row][i].job;
		bool seen = false, held = false;
		for (size_t s = 0; s < w->nrow && !seen; s++) {
			seen = was[s] == k;
		}
		cjob *j = seen ? NULL : coord_job_by_key(c, k);
		for (size_t h = 0; j != NULL && h < r->nheld && !held; h++) {
			held = strcmp(r->held[h].job, j->spec.job) == 0;
		}
		gained = gained || (j != NULL && !held && coord_infer_active(j) &&
		    sched_job_ready(j->sj, now));
		w->row[i] = k;
	}
	w->nrow = n;
	// The first call to this coordinator (a new worker, or after a
	// takeover) only learns the row: its leases are not churned.
	gained = gained && w->row_set;
	w->row_set = true;
	return gained;
}

// The worker's first call to this coordinator (after a takeover or a
// restart): leases the ledger gave it that it does not hold (its report
// of the task went to a coordinator that stepped down, or the reply
// with the lease died with the old one) go back at once instead of after
// a lease time. A task done meanwhile counts once, and a rerun writes
// the same bytes.
static void
reconcile(coord *c, cworker *w, const record_lease_req *r, uint64_t now)
{
	w->reconciled = true;
	bool *mine = r->nheld ? core_alloc(r->nheld * sizeof(*mine)) : NULL;
	if (r->nheld > 0 && mine == NULL) {
		return; // they expire by time
	}
	for (size_t i = 0; i < r->nheld; i++) {
		cjob *j = coord_find_job(c, r->held[i].job);
		uint64_t holder, exp;
		uint32_t attempt;
		mine[i] = j != NULL && j->sj != NULL && sched_job_lease_info(j->sj,
		    r->held[i].task, &holder, &attempt, &exp) &&
		    holder == w->key;
	}
	size_t k = 0;
	for (size_t i = 0; i < c->njobs; i++) {
		k += c->jobs[i]->sj ? sched_job_reclaim(c->jobs[i]->sj, w->key) :
		    0;
	}
	for (size_t i = 0; i < r->nheld; i++) {
		cjob *j = mine[i] ? coord_find_job(c, r->held[i].job) : NULL;
		if (j != NULL) {
			sched_job_restore_lease(j->sj, r->held[i].task, w->key,
			    r->held[i].attempt, now + COORD_LEASE_MS);
			k -= k > 0;
		}
	}
	free(mine);
	if (k > 0) {
		coord_note(c, IDN_LOG_INFO, "coord: %zu leases of %s it does "
		    "not hold go back", k, w->id);
		c->dirty = true;
	}
}

// A worker's completions, and at its first call to this coordinator the
// leases it holds (lock held): from a lease call or a gather's answer.
static void
take_reports(coord *c, cworker *w, const record_lease_req *r, uint64_t now)
{
	for (size_t i = 0; i < r->ndone; i++) {
		complete(c, w, &r->done[i], now);
	}
	if (!w->reconciled) {
		reconcile(c, w, r, now);
	}
}

static void
renew(coord *c, cworker *w, const record_held *h, uint64_t now, bool requeue,
    record_held *drop, size_t *ndrop)
{
	cjob *j = coord_find_job(c, h->job);
	bool keep = false;
	if (j != NULL && j->spec.kind == IDN_JOB_INFER &&
	    j->state == IDN_JOB_RUNNING && c->phase == IDN_PHASE_INFER) {
		keep = sched_job_renew(j->sj, h->task, w->key, now,
		    COORD_LEASE_MS) == IDN_OK;
		if (keep && !h->running && (requeue || moved_off(c, w, j, now))) {
			// Not started, and the allocation moved this worker to
			// other work: the task goes back for the workers that
			// now serve its job.
			lease_back(c, j, w, h->task, h->attempt, now);
			keep = false;
		}
	} else if (j != NULL && j->spec.kind == IDN_JOB_TRAIN) {
		keep = coord_train_renew(c, w, h, now);
	}
	if (!keep && *ndrop < RECORD_LIST_MAX) {
		drop[(*ndrop)++] = *h;
	}
}

// Picks the job this worker serves next: its shares first (deficit
// round robin), else, with any, any active job with a task ready.
static cjob *
pick(coord *c, cworker *w, uint64_t now, bool any)
{
	size_t row = alloc_row(c, w->key);
	if (row != SIZE_MAX && c->alloc.nshares[row] > 0) {
		size_t n = c->alloc.nshares[row];
		double sv[MAX_JOBS];
		bool ready[MAX_JOBS];
		n = n > MAX_JOBS ? MAX_JOBS : n;
		const sched_share *sh = c->alloc.shares[row];
		double low = INFINITY;
		for (size_t i = 0; i < n; i++) {
			cjob *j = coord_job_by_key(c, sh[i].job);
			ready[i] = j != NULL && coord_infer_active(j) &&
			    sched_job_ready(j->sj, now);
			sv[i] = *served(w, sh[i].job);
			if (ready[i] && sv[i] / sh[i].share < low) {
				low = sv[i] / sh[i].share;
			}
		}
		// Served time counts from the least served ready job: the
		// gaps between jobs stay exact (halving them would favour the
		// job with the longer batches), and a job with nothing ready
		// banks no credit for later.
		for (size_t i = 0; isfinite(low) && i < n; i++) {
			double v = sv[i] / sh[i].share;
			sv[i] = (v < low ? 0 : v - low) * sh[i].share;
			*served(w, sh[i].job) = sv[i];
		}
		int k = sched_fair_pick(sh, n, sv, ready);
		if (k >= 0) {
			return coord_job_by_key(c, c->alloc.shares[row][k].job);
		}
	}
	if (!any) {
		return NULL;
	}
	cjob *best = NULL;
	uint64_t most = 0;
	for (size_t i = 0; i < c->njobs; i++) {
		cjob *j = c->jobs[i];
		if (coord_infer_active(j) && sched_job_ready(j->sj, now)) {
			uint64_t b = sched_job_backlog(j->sj, now);
			if (best == NULL || b > most) {
				best = j;
				most = b;
			}
		}
	}
	return best;
}

// When worker w would be through a queued lease h, given it is through
// the ones before it at free: it starts h on arrival, runs it for its
// job's measured batch time.
static double
queued_until(coord *c, const record_held *h, double free_at)
{
	cjob *j = coord_find_job(c, h->job);
	if (j == NULL || !coord_infer_active(j)) {
		return free_at;
	}
	double ready = (double) sched_job_ready_at(j->sj, h->task);
	return (ready > free_at ? ready : free_at) + j->task_ms;
}

// Leases up to want batches of the worker's shares: the ready ones
// first, READY_CALL a call at most; with none ready (or that many given),
// ones that arrive within AHEAD_MS, while the
// worker's queue (it is through it at free_at, wall ms) reaches less far,
// AHEAD_CALL a call, so the arrivals ahead are dealt out over the workers'
// calls instead of to the first caller. Batches of other jobs only while
// it has fewer than FOREIGN_QUEUE queued (queued holds how many): they go
// back once its shares have work again (moved_off).
static void
lease_infer(coord *c, cworker *w, uint32_t want, uint64_t now,
    double free_at, size_t queued, record_lease *out, size_t *n)
{
	size_t ahead = 0;
	while (*n < want) {
		cjob *j = *n < READY_CALL ? pick(c, w, now, false) : NULL;
		uint64_t by = now;
		if (j == NULL && ahead < AHEAD_CALL &&
		    free_at < (double) (now + AHEAD_MS)) {
			j = pick(c, w, now + AHEAD_MS, false);
			by = j != NULL ? sched_job_next_ready_ms(j->sj, now) : 0;
			ahead++;
		}
		if (j == NULL && queued + *n < FOREIGN_QUEUE) {
			j = pick(c, w, now, true);
			by = now;
		}
		if (j == NULL) {
			return;
		}
		uint32_t task, attempt;
		if (sched_job_lease_ahead(j->sj, w->key, now, by, COORD_LEASE_MS,
		        &task, &attempt) != IDN_OK) {
			return;
		}
		record_lease *l = &out[(*n)++];
		memset(l, 0, sizeof(*l));
		l->spec = j->spec;
		l->task = task;
		l->attempt = attempt;
		sched_job_task_range(j->sj, task, &l->first, &l->count);
		l->expires_ms = now + COORD_LEASE_MS;
		l->ready_ms = sched_job_ready_at(j->sj, task);
		double start = (double) l->ready_ms;
		free_at = (start > free_at ? start : free_at) + j->task_ms;
		*served(w, j->key) += j->task_ms;
		if (!c->leased_any) {
			c->leased_any = true;
			coord_note(c, IDN_LOG_INFO, "coord: first batch leased "
			    "in epoch %llu, %llu ms after the coordinator opened",
			    (unsigned long long) c->epoch, (unsigned long long)
			    (idn_clock_ms() - c->open_ms));
		}
		ledger_lease_put(c->led, j->spec.job, task, w->id, attempt,
		    l->expires_ms);
		coord_note(c, IDN_LOG_INFO, "coord: batch scheduled: %s/%u "
		    "(queries %llu..%llu) to %s attempt %u", j->spec.job, task,
		    (unsigned long long) l->first,
		    (unsigned long long) (l->first + l->count - 1), w->id,
		    attempt);
	}
}

static uint64_t
mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

int
coord_on_lease(coord *c, const wire_val *b, wire_wr *reply)
{
	uint64_t t0 = mono_us();
	record_lease_req r;
	int rv = record_lease_req_get(b, &r);
	if (rv != IDN_OK) {
		return rv;
	}
	if (r.epoch > c->epoch) {
		record_lease_req_clear(&r);
		if (c->h.newer != NULL) {
			c->h.newer(c->h.newer_arg, r.epoch);
		}
		return coord_refuse(reply, IDN_ESTALE, "epoch %llu is newer than mine",
		    (unsigned long long) r.epoch);
	}
	record_lease out[64];
	record_held *drop = r.nheld ? core_alloc(r.nheld * sizeof(*drop)) : NULL;
	size_t n = 0, ndrop = 0;
	uint64_t now = idn_wall_ms();
	core_lock(&c->lock);
	cworker *w = coord_find_worker(c, r.worker, true);
	if (w != NULL) {
		w->seen_ms = idn_clock_ms();
	}
	if (!coord_acting_locked(c)) {
		core_unlock_log(&c->lock, &c->logq);
		record_lease_req_clear(&r);
		free(drop);
		return coord_refuse(reply, IDN_EUNAVAIL, COORD_NO_MAJORITY);
	}
	// The call's ledger changes (completions, leases) commit together.
	ledger_begin(c->led);
	if (w != NULL && !w->alive) {
		w->alive = true;
		c->dirty = true;
	}
	if (w != NULL) {
		w->last_call_ms = now;
		if (r.addr[0] != '\0') {
			snprintf(w->addr, sizeof(w->addr), "%s", r.addr);
		}
	}
	if (w != NULL) {
		take_reports(c, w, &r, now);
	}
	if (w != NULL && r.release) {
		size_t k = 0;
		for (size_t i = 0; i < c->njobs; i++) {
			if (c->jobs[i]->sj != NULL) {
				k += sched_job_reclaim(c->jobs[i]->sj, w->key);
			}
		}
		if (k > 0) {
			coord_note(c, IDN_LOG_WARN, "coord: worker %s gave back "
			    "%zu leases", w->id, k);
			c->dirty = true;
		}
	}
	for (size_t i = 0; w != NULL && i < r.ntrain; i++) {
		coord_train_progress(c, w, &r.train[i]);
	}
	if (w != NULL && c->dirty) {
		coord_reassign(c, now);
	}
	bool requeue = w != NULL && c->phase == IDN_PHASE_INFER &&
	    gained_job(c, w, &r, now);
	uint32_t want = r.want;
	double free_at = (double) now;
	size_t queued = 0;
	for (size_t i = 0; w != NULL && drop != NULL && i < r.nheld; i++) {
		size_t before = ndrop;
		renew(c, w, &r.held[i], now, requeue, drop, &ndrop);
		// A queued lease taken back makes room for another.
		want += ndrop > before && !r.held[i].running;
		if (ndrop == before && !r.held[i].running) {
			free_at = queued_until(c, &r.held[i], free_at);
			queued++;
		}
	}
	want = want > 64 ? 64 : want;
	want = idn_clock_ms() < c->hold_until_ms ? 0 : want;
	if (w != NULL && c->phase == IDN_PHASE_INFER) {
		lease_infer(c, w, want, now, free_at, queued, out, &n);
	} else if (w != NULL && c->phase == IDN_PHASE_TRAIN && want > 0) {
		coord_train_lease(c, w, now, out, &n);
	}
	ledger_commit(c->led);
	core_unlock_log(&c->lock, &c->logq);
	record_lease_rep rep = {c->epoch, out, n, drop, ndrop};
	record_lease_rep_put(reply, &rep);
	idn_free(drop);
	record_lease_req_clear(&r);
	uint64_t us = mono_us() - t0;
	core_lock(&c->lock);
	c->lease_us[c->lease_ops % LEASE_RING] = us > UINT32_MAX ? UINT32_MAX :
	    (uint32_t) us;
	c->lease_ops++;
	core_unlock_log(&c->lock, &c->logq);
	return w != NULL ? IDN_OK : IDN_EBUSY;
}

void
coord_hold(coord *c, uint64_t until)
{
	core_lock(&c->lock);
	c->hold_until_ms = until;
	core_unlock_log(&c->lock, &c->logq);
}

void
coord_absorb(coord *c, const record_lease_req *r)
{
	uint64_t now = idn_wall_ms();
	core_lock(&c->lock);
	cworker *w = coord_find_worker(c, r->worker, true);
	ledger_begin(c->led);
	if (w != NULL) {
		take_reports(c, w, r, now);
	}
	ledger_commit(c->led);
	core_unlock_log(&c->lock, &c->logq);
}

// The worker is gone: its leases go back at once.
void
coord_worker_gone(coord *c, cworker *w, const char *why)
{
	w->alive = false;
	size_t n = 0;
	for (size_t i = 0; i < c->njobs; i++) {
		cjob *j = c->jobs[i];
		if (j->sj != NULL) {
			n += sched_job_reclaim(j->sj, w->key);
		}
	}
	n += coord_train_gone(c, w);
	coord_note(c, IDN_LOG_INFO, "coord: worker %s %s: %zu leases reclaimed",
	    w->id, why, n);
	c->dirty = true;
}

void
coord_forget_dead(coord *c)
{
	core_lock(&c->lock);
	for (size_t i = 0; i < c->nworkers; i++) {
		cworker *w = &c->workers[i];
		if (!w->member && !w->alive) {
			coord_worker_gone(c, w, "is not a live member at takeover");
		}
	}
	core_unlock_log(&c->lock, &c->logq);
}

void
coord_member(coord *c, const char *id, const char *role, bool alive)
{
	if (strcmp(role, "worker") != 0) {
		return;
	}
	core_lock(&c->lock);
	cworker *w = coord_find_worker(c, id, alive);
	if (w != NULL) {
		w->member = true;
	}
	if (w != NULL && !alive && w->alive &&
	    !coord_acting_locked(c)) {
		// Cut off: the others' failures are not acted on here (its
		// leases expire by time once the rule holds again).
		w->alive = false;
	} else if (w != NULL && !alive && w->alive) {
		coord_worker_gone(c, w, "failed");
	} else if (w != NULL && alive && !w->alive) {
		w->alive = true;
		c->dirty = true;
	}
	core_unlock_log(&c->lock, &c->logq);
}
