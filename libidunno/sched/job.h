// SPDX-License-Identifier: MIT
// job.h: one inference job's queries and tasks (the units it leases) as a
// pure table: open-loop arrivals, leases with expiry, exactly-once
// completion, reclaim of a failed worker's leases, restore from the ledger.
// Time is passed in (ms); no I/O, no locks (the coordinator holds its own).
#ifndef IDN_SCHED_JOB_H
#define IDN_SCHED_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sched_job sched_job;

// sched_job_new: total queries (> 0), task size (> 0), offered rate
// (> 0 qps), start time. Query i arrives at start_ms + i * 1000 / rate_qps
// (rounded down to the ms). Task k holds queries
// [k*task_size, min(total, (k+1)*task_size)) and is ready once its last query
// arrived. IDN_EINVAL (also for more than UINT32_MAX - 1 tasks, or
// arrivals beyond 2^63 ms), IDN_ENOMEM. A table another process rebuilds
// from the ledger (a takeover) needs the same clock: use wall-clock ms.
int sched_job_new(uint64_t total, uint32_t task_size, double rate_qps,
    uint64_t start_ms, sched_job **out);
// sched_job_free accepts NULL.
void sched_job_free(sched_job *j);
uint32_t sched_job_ntasks(const sched_job *j);
uint64_t sched_job_total(const sched_job *j);
uint64_t sched_job_arrival_ms(const sched_job *j, uint64_t query);
// sched_arrival_ms: the same for a job of that start and rate, without
// its table (results/JOB/timing is written outside the coordinator's
// lock).
uint64_t sched_arrival_ms(uint64_t start_ms, double rate_qps,
    uint64_t query);
// sched_job_task_range: task's first query and how many it holds.
void sched_job_task_range(const sched_job *j, uint32_t task,
    uint64_t *first, uint32_t *count);
// sched_job_arrived: queries arrived by now_ms; sched_job_backlog: of
// those, queries whose task is not done yet.
uint64_t sched_job_arrived(const sched_job *j, uint64_t now_ms);
uint64_t sched_job_backlog(const sched_job *j, uint64_t now_ms);

// sched_job_lease leases the oldest task that is ready and neither done
// nor leased: expired and reclaimed tasks first (lowest index first),
// then the next new one. Lease times that passed by now_ms are expired
// first. attempt counts the leases of this task, from 1. IDN_ENOENT when
// none is ready; IDN_ENOMEM. O(log n) amortised.
int sched_job_lease(sched_job *j, uint64_t worker, uint64_t now_ms,
    uint64_t lease_ms, uint32_t *task, uint32_t *attempt);
// sched_job_lease_ahead: the same, but a task that is ready by
// ready_by_ms (>= now_ms) counts as ready: a lease ahead of the task's
// arrival, which its holder starts no earlier than sched_job_ready_at.
// Such a task, once pending again, is leased only by a call whose
// ready_by_ms reaches it.
int sched_job_lease_ahead(sched_job *j, uint64_t worker, uint64_t now_ms,
    uint64_t ready_by_ms, uint64_t lease_ms, uint32_t *task,
    uint32_t *attempt);
// sched_job_ready_at: when task is ready (its last query arrives);
// UINT64_MAX for no such task.
uint64_t sched_job_ready_at(const sched_job *j, uint32_t task);
// sched_job_renew extends a held lease to now_ms + lease_ms. IDN_ESTALE
// when the task is not leased to this worker any more (done, expired by
// now_ms, reclaimed, or leased to another); IDN_EINVAL: no such task;
// IDN_ENOMEM.
int sched_job_renew(sched_job *j, uint32_t task, uint64_t worker,
    uint64_t now_ms, uint64_t lease_ms);
// sched_job_complete records a completion. The first completion of a task
// (any attempt, any worker: a task run twice writes the same bytes)
// returns IDN_OK; later ones IDN_EEXIST (the caller ignores them: exactly
// once). IDN_EINVAL: no such task. O(1).
int sched_job_complete(sched_job *j, uint32_t task, uint64_t now_ms);
// sched_job_expire puts leases whose time passed (expires_ms <= now_ms)
// back to pending; returns how many.
size_t sched_job_expire(sched_job *j, uint64_t now_ms);
// sched_job_reclaim: a worker failed: its leases go back to pending at
// once (leased again before new tasks); returns how many.
size_t sched_job_reclaim(sched_job *j, uint64_t worker);
// sched_job_ready: a task is leasable at now_ms (a lease whose time passed
// counts once sched_job_expire or sched_job_lease ran).
bool sched_job_ready(const sched_job *j, uint64_t now_ms);
// sched_job_next_ready_ms: now_ms when a task is leasable now, else when
// the next one will be (by arrivals alone), UINT64_MAX when none will.
uint64_t sched_job_next_ready_ms(const sched_job *j, uint64_t now_ms);
uint32_t sched_job_done_count(const sched_job *j);   // tasks done
uint32_t sched_job_leased_count(const sched_job *j); // tasks leased now
bool sched_job_finished(const sched_job *j);         // all tasks done
// sched_job_lease_info: who holds task's lease (false when it is not
// leased now), its attempt and expiry.
bool sched_job_lease_info(const sched_job *j, uint32_t task,
    uint64_t *worker, uint32_t *attempt, uint64_t *expires_ms);

// For restoring from the ledger: mark a task done / leased without the
// checks (a task out of range is ignored; restore_done of a leased task
// ends its lease).
void sched_job_restore_done(sched_job *j, uint32_t task);
void sched_job_restore_lease(sched_job *j, uint32_t task, uint64_t worker,
    uint32_t attempt, uint64_t expires_ms);

#endif
