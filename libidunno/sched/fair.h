// SPDX-License-Identifier: MIT
// fair.h: the fair-time allocation of workers to inference jobs, as a pure
// function (no I/O, no clock, no locks): max-min fair query rates, whole
// workers where they are fair enough, else time-shared workers; hysteresis
// against a previous allocation; and the per-worker pick between its shares.
#ifndef IDN_SCHED_FAIR_H
#define IDN_SCHED_FAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Whole workers are used when their predicted max/min rate ratio is within
// 1 + SCHED_FAIR_WHOLE_TOL; otherwise workers are time-shared.
#define SCHED_FAIR_WHOLE_TOL 0.05
// A previous allocation is never kept when its predicted max/min rate ratio
// is worse than this (the 10% bound).
#define SCHED_FAIR_MAX_RATIO 1.10
// A job's backlog is counted as demand drained over this many ms.
#define SCHED_FAIR_DRAIN_MS 4000.0

typedef struct sched_fair_job {
	uint64_t id;        // caller's job key, unique
	double task_ms;     // measured mean service time of one task on one
	                    // worker (> 0; before any measurement the caller
	                    // passes an estimate)
	uint32_t task_size; // queries per task (> 0); never changed here
	double offered_qps; // arrival rate (>= 0)
	double backlog;     // queries arrived but not done (>= 0); demand:
	                    // offered_qps + backlog * 1000 / DRAIN_MS
} sched_fair_job;

typedef struct sched_share {
	uint64_t job;
	double share; // fraction of this worker's time, (0, 1]
} sched_share;

typedef struct sched_alloc { // one row per worker, in the order given
	size_t nworkers;
	uint64_t *workers;     // per row, the worker key (may be NULL in
	                       // a caller-built prev: rows match by position)
	size_t *nshares;       // per row
	sched_share **shares;  // per row, shares sum to <= 1, largest first
	double ratio;          // predicted max/min of the jobs' rate relative
	                       // to their fair rate (1 = exactly fair)
	size_t moved;          // rows that differ from prev (all when no prev)
	bool kept;             // prev was kept as it was (hysteresis)
} sched_alloc;

// sched_fair_assign splits nworkers workers (worker_keys, unique) between
// jobs (ids unique) so that backlogged jobs get equal query rates
// (rate_j = workers_j * task_size_j * 1000 / task_ms_j) and a job that needs
// less than its fair share gets what it needs, the rest going to the others
// (max-min fair, work-conserving: every worker gets work while any job has
// demand). Jobs with no demand get no workers. Whole workers where their
// ratio is within SCHED_FAIR_WHOLE_TOL, else a few workers time-shared.
// prev (may be NULL) is the previous allocation: it is kept as it is while
// the job and worker sets are the same and moving would not improve the
// ratio by more than the factor 1 + hysteresis (e.g. 0.05); when moving,
// workers stay on their jobs where the new allocation allows.
// IDN_EINVAL: bad arguments; IDN_ENOMEM. *out (caller keeps the struct)
// is written only on success; free it with sched_alloc_free.
int sched_fair_assign(const sched_fair_job *jobs, size_t njobs,
    const uint64_t *worker_keys, size_t nworkers, const sched_alloc *prev,
    double hysteresis, sched_alloc *out);
// sched_alloc_free frees what sched_fair_assign put in a and zeroes it.
void sched_alloc_free(sched_alloc *a);
// sched_alloc_job_workers returns how many workers' worth of time (sum of
// shares) job gets in a.
double sched_alloc_job_workers(const sched_alloc *a, uint64_t job);

// sched_fair_backlogged: whether a gives job less than its demand
// (offered rate plus draining its backlog, with 2% slack for measurement),
// i.e. whether it counts among the backlogged jobs whose rates should be
// equal (the fairness ratio is taken over those).
bool sched_fair_backlogged(const sched_alloc *a, const sched_fair_job *job);

// sched_fair_pick: which of a worker's shares it should serve next, given
// the time (ms) it served each so far (served_ms[i] for shares[i], over a
// recent window the caller keeps, so an idle job cannot bank credit for
// ever) and which have a task ready now (ready[i]). Picks the ready share
// furthest behind its share (least served_ms / share); a share that is not
// ready is skipped, so the worker stays busy (work-conserving). Returns the
// index into shares, or -1 when none is ready (the caller may then offer
// the worker any other job with a ready task).
int sched_fair_pick(const sched_share *shares, size_t n,
    const double *served_ms, const bool *ready);

#endif
