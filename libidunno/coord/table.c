// SPDX-License-Identifier: MIT
// table.c: the coordinator's tables (jobs, workers, the allocation) and
// what every part of it uses on them: lookups, the majority rule, the
// log, refusals. It calls nothing else of coord/, so the parts above it
// (train, restore, admit, lease, timers, report) only call down.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/sched.h>

#include "coord/coord_int.h"

#define HYSTERESIS 0.05
#define DEFAULT_TASK_MS 100.0

cjob *
coord_find_job(const coord *c, const char *name)
{
	for (size_t i = 0; i < c->njobs; i++) {
		if (strcmp(c->jobs[i]->spec.job, name) == 0) {
			return c->jobs[i];
		}
	}
	return NULL;
}

cjob *
coord_job_by_key(const coord *c, uint64_t key)
{
	for (size_t i = 0; i < c->njobs; i++) {
		if (c->jobs[i]->key == key) {
			return c->jobs[i];
		}
	}
	return NULL;
}

void
coord_job_free(cjob *j)
{
	if (j != NULL) {
		sched_job_free(j->sj);
		sched_stats_free(j->proc);
		sched_stats_free(j->lat);
		free(j);
	}
}

cworker *
coord_find_worker(coord *c, const char *id, bool create)
{
	for (size_t i = 0; i < c->nworkers; i++) {
		if (strcmp(c->workers[i].id, id) == 0) {
			return &c->workers[i];
		}
	}
	if (!create) {
		return NULL;
	}
	// Reuse the slot of a worker long gone before growing: one whose
	// leases all expired (a worker restored from the ledger with open
	// leases, not alive until it calls, keeps its slot and key).
	cworker *w = NULL;
	uint64_t now = idn_wall_ms();
	for (size_t i = 0; i < c->nworkers && w == NULL; i++) {
		cworker *o = &c->workers[i];
		w = !o->alive && now >= o->last_call_ms + COORD_LEASE_MS ? o :
		    NULL;
	}
	if (w == NULL && c->nworkers < MAX_WORKERS) {
		w = &c->workers[c->nworkers++];
	}
	if (w != NULL) {
		memset(w, 0, sizeof(*w));
		snprintf(w->id, sizeof(w->id), "%s", id);
		w->key = ++c->next_key;
		w->alive = true;
		c->dirty = true;
	}
	return w;
}

static int
by_time_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
	return x > y ? -1 : x < y;
}

// The majority rule (lock held): a coordinator cut off from most of the
// cluster stops acting before a standby on the other side can promote.
// *since_ms (may be NULL): when it last held, i.e. when the need-th most
// recent contact was window_ms old (clock ms; now while it holds).
bool
coord_quorum_locked(const coord *c, size_t *heard, uint64_t *since_ms)
{
	uint64_t now = idn_clock_ms();
	uint64_t since = now > c->quorum_window_ms ?
	    now - c->quorum_window_ms : 0;
	uint64_t t[MAX_WORKERS + 2];
	size_t nt = 0, n = 0;
	t[nt++] = now; // itself
	t[nt++] = c->standby_seen_ms;
	for (size_t i = 0; i < c->nworkers; i++) {
		t[nt++] = c->workers[i].seen_ms;
	}
	for (size_t i = 0; i < nt; i++) {
		n += t[i] != 0 && t[i] >= since;
	}
	if (heard != NULL) {
		*heard = n;
	}
	bool ok = n >= c->quorum_need;
	if (since_ms != NULL) {
		*since_ms = now;
		if (!ok) {
			qsort(t, nt, sizeof(*t), by_time_desc);
			size_t k = c->quorum_need <= nt ? c->quorum_need : nt;
			*since_ms = k > 0 && t[k - 1] != 0 ?
			    t[k - 1] + c->quorum_window_ms : 0;
		}
	}
	return ok;
}

bool
coord_acting_locked(const coord *c)
{
	return !c->fenced && coord_quorum_locked(c, NULL, NULL);
}

bool
coord_infer_active(const cjob *j)
{
	return j->spec.kind == IDN_JOB_INFER && j->state == IDN_JOB_RUNNING &&
	    !sched_job_finished(j->sj);
}

// The queries of one task: a group of batches (the last may be short).
uint32_t
coord_unit(const cjob *j)
{
	return j->spec.batch * (j->spec.group ? j->spec.group : 1);
}

// The allocator's view of a job.
sched_fair_job
coord_fair_job(const cjob *j, uint64_t now)
{
	return (sched_fair_job){j->key, j->task_ms, coord_unit(j),
	    j->spec.rate, (double) sched_job_backlog(j->sj, now)};
}

// A completion's measurements at clock `at`: each query's processing
// time (the task's model time shared out) and its latency (arrival to
// the result in SDFS).
void
coord_job_measure(cjob *j, const ledger_row *d, uint64_t at)
{
	uint64_t first;
	uint32_t count;
	sched_job_task_range(j->sj, d->task, &first, &count);
	if (count > 0) {
		sched_stats_add(j->proc, d->ms / count, count, at);
		for (uint32_t q = 0; q < count; q++) {
			uint64_t a = sched_job_arrival_ms(j->sj, first + q);
			sched_stats_add(j->lat, d->end_ms > a ?
			    (double) (d->end_ms - a) : 0, 1, at);
		}
	}
}

// The allocation as text, one line per worker: its id, then a tab and
// "job share" per share. The ledger keeps it (when it changed) so that a
// standby answers `assign` from its copy.
static void
record_assign(coord *c)
{
	core_buf b = {0};
	for (size_t r = 0; c->alloc.workers != NULL && r < c->alloc.nworkers;
	     r++) {
		cworker *w = NULL;
		for (size_t i = 0; i < c->nworkers && w == NULL; i++) {
			w = c->workers[i].key == c->alloc.workers[r] ?
			    &c->workers[i] : NULL;
		}
		char line[RECORD_NAME_MAX + 32];
		core_buf_append(&b, w ? w->id : "?", strlen(w ? w->id : "?"));
		for (size_t k = 0; k < c->alloc.nshares[r]; k++) {
			const sched_share *sh = &c->alloc.shares[r][k];
			cjob *j = coord_job_by_key(c, sh->job);
			int n = snprintf(line, sizeof(line), "\t%s %.4f",
			    j ? j->spec.job : "?", sh->share);
			core_buf_append(&b, line, (size_t) n);
		}
		core_buf_append(&b, "\n", 2); // with the NUL
		b.len--;
	}
	const char *text = b.data ? (const char *) b.data : "";
	if (c->assign_rec == NULL || strcmp(c->assign_rec, text) != 0) {
		char *copy = core_strdup(text);
		if (copy != NULL && ledger_set_text(c->led, "assign", text) ==
		    IDN_OK) {
			free(c->assign_rec);
			c->assign_rec = copy;
		} else {
			free(copy);
		}
	}
	core_buf_free(&b);
}

// The jobs' task-time estimates go to the ledger with the allocation (when
// one moved by more than 2%): the allocation is computed from them, and a
// promoted standby that started over from the default estimate moved
// workers between jobs, dropping the leases they held.
static void
record_task_ms(coord *c)
{
	bool moved = false;
	core_buf b = {0};
	for (size_t i = 0; i < c->njobs; i++) {
		cjob *j = c->jobs[i];
		moved = moved || fabs(j->task_ms - j->rec_ms) >
		    0.02 * j->rec_ms || (j->nbusy >= 4) != (j->rec_busy >= 4);
		char line[RECORD_NAME_MAX + 48];
		int n = snprintf(line, sizeof(line), "%s\t%.3f\t%u\n",
		    j->spec.job, j->task_ms, j->nbusy);
		core_buf_append(&b, line, (size_t) n);
	}
	core_buf_append(&b, "", 1);
	if (moved && b.data != NULL &&
	    ledger_set_text(c->led, "batch_ms", (const char *) b.data) ==
	    IDN_OK) {
		for (size_t i = 0; i < c->njobs; i++) {
			c->jobs[i]->rec_ms = c->jobs[i]->task_ms;
			c->jobs[i]->rec_busy = c->jobs[i]->nbusy;
		}
	}
	core_buf_free(&b);
}

// Re-runs the allocation over the active inference jobs and live workers.
void
coord_reassign(coord *c, uint64_t now)
{
	sched_fair_job fj[MAX_JOBS];
	uint64_t wk[MAX_WORKERS];
	size_t nj = 0, nw = 0;
	for (size_t i = 0; i < c->njobs; i++) {
		cjob *j = c->jobs[i];
		if (!coord_infer_active(j)) {
			continue;
		}
		fj[nj++] = coord_fair_job(j, now);
	}
	for (size_t i = 0; i < c->nworkers; i++) {
		if (c->workers[i].alive) {
			wk[nw++] = c->workers[i].key;
		}
	}
	if (nw == 0 && c->have_alloc) {
		// Kept for the workers' return (a promotion's first tick).
		return;
	}
	sched_alloc out;
	if (sched_fair_assign(fj, nj, wk, nw, c->have_alloc ? &c->alloc : NULL,
	        HYSTERESIS, &out) != IDN_OK) {
		return;
	}
	if (c->have_alloc) {
		sched_alloc_free(&c->alloc);
	}
	c->alloc = out;
	c->have_alloc = true;
	c->dirty = false;
	c->last_assign_ms = now;
	record_assign(c);
	record_task_ms(c);
}

int
coord_job_new(coord *c, const record_spec *s, int state, uint64_t start_ms,
    uint64_t total, cjob **out)
{
	cjob *j = core_alloc(sizeof(*j));
	if (j == NULL) {
		return IDN_ENOMEM;
	}
	j->spec = *s;
	j->state = state;
	j->start_ms = start_ms;
	j->key = ++c->next_key;
	j->accuracy = -1;
	j->task_ms = DEFAULT_TASK_MS;
	int rv = sched_stats_new(&j->proc);
	if (rv == IDN_OK) {
		rv = sched_stats_new(&j->lat);
	}
	if (rv == IDN_OK && s->kind == IDN_JOB_INFER) {
		rv = sched_job_new(total, coord_unit(j), s->rate, start_ms,
		    &j->sj);
	}
	if (rv != IDN_OK) {
		coord_job_free(j);
		return rv;
	}
	*out = j;
	return IDN_OK;
}

_Thread_local uint64_t coord_reply_epoch;

int
coord_refuse(wire_wr *reply, int rv, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	wire_map(reply, 2);
	wire_ku64(reply, "epoch", coord_reply_epoch);
	wire_kstr(reply, "err", msg);
	return rv;
}
