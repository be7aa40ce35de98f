// SPDX-License-Identifier: MIT
// job.c: the task and lease table of one inference job. Per task: a state
// and the current lease. Tasks never leased are taken in order from a
// cursor; expired and reclaimed ones wait in a min-heap by index; leases
// wait in a min-heap by expiry whose stale entries (renewed, completed,
// reclaimed) are skipped when they surface, so every operation is O(1) or
// O(log n) amortised.
#include <math.h>
#include <stdlib.h>

#include "core/core.h"
#include "sched/job.h"

enum { FRESH, LEASED, RETRY, DONE };

typedef struct {
	uint64_t expires_ms;
	uint32_t task;
} lease_ent;

struct sched_job {
	uint64_t total;
	uint32_t task_size; // queries per task
	uint32_t ntasks;
	double rate_qps;
	uint64_t start_ms;
	uint8_t *state;
	uint32_t *attempt;
	uint64_t *worker;
	uint64_t *expires_ms;
	uint32_t cursor; // the first FRESH task, or ntasks
	uint32_t ndone;
	uint32_t nleased;
	uint32_t nretry;
	uint64_t done_queries;
	bool scan; // a lease is missing from the heap (out of memory)
	uint32_t *retry; // min-heap of task indices (may hold stale ones)
	size_t nretry_heap;
	size_t retry_cap;
	lease_ent *leases; // min-heap by expiry (may hold stale entries)
	size_t nlease_heap;
	size_t lease_cap;
};

int
sched_job_new(uint64_t total, uint32_t task_size, double rate_qps,
    uint64_t start_ms, sched_job **out)
{
	if (out == NULL || total == 0 || task_size == 0 || !(rate_qps > 0) ||
	    isinf(rate_qps)) {
		return IDN_EINVAL;
	}
	uint64_t nb = (total - 1) / task_size + 1;
	// Every arrival time must fit in 63 bits of ms.
	if (nb >= UINT32_MAX || (double) start_ms + (double) total * 1000.0 /
	    rate_qps >= 9.0e18) {
		return IDN_EINVAL;
	}
	sched_job *j = core_alloc(sizeof(*j));
	if (j == NULL) {
		return IDN_ENOMEM;
	}
	j->total = total;
	j->task_size = task_size;
	j->ntasks = (uint32_t) nb;
	j->rate_qps = rate_qps;
	j->start_ms = start_ms;
	if ((j->state = core_alloc(nb)) == NULL ||
	    (j->attempt = core_alloc(nb * sizeof(uint32_t))) == NULL ||
	    (j->worker = core_alloc(nb * sizeof(uint64_t))) == NULL ||
	    (j->expires_ms = core_alloc(nb * sizeof(uint64_t))) == NULL) {
		sched_job_free(j);
		return IDN_ENOMEM;
	}
	*out = j;
	return IDN_OK;
}

void
sched_job_free(sched_job *j)
{
	if (j != NULL) {
		free(j->state);
		free(j->attempt);
		free(j->worker);
		free(j->expires_ms);
		free(j->retry);
		free(j->leases);
		free(j);
	}
}

uint32_t
sched_job_ntasks(const sched_job *j)
{
	return j->ntasks;
}

uint64_t
sched_job_total(const sched_job *j)
{
	return j->total;
}

uint64_t
sched_arrival_ms(uint64_t start_ms, double rate_qps, uint64_t query)
{
	return start_ms + (uint64_t) floor((double) query * 1000.0 / rate_qps);
}

uint64_t
sched_job_arrival_ms(const sched_job *j, uint64_t query)
{
	return sched_arrival_ms(j->start_ms, j->rate_qps, query);
}

void
sched_job_task_range(const sched_job *j, uint32_t task, uint64_t *first,
    uint32_t *count)
{
	uint64_t f = (uint64_t) task * j->task_size;
	uint64_t n = 0;
	if (f < j->total) {
		n = CORE_MIN((uint64_t) j->task_size, j->total - f);
	}
	if (first != NULL) {
		*first = f;
	}
	if (count != NULL) {
		*count = (uint32_t) n;
	}
}

uint64_t
sched_job_arrived(const sched_job *j, uint64_t now_ms)
{
	if (now_ms < j->start_ms) {
		return 0;
	}
	double est = floor((double) (now_ms - j->start_ms) * j->rate_qps /
	    1000.0) + 1.0;
	uint64_t k = est >= (double) j->total ? j->total : (uint64_t) est;
	// The estimate is off by at most one either way from rounding.
	while (k > 0 && sched_job_arrival_ms(j, k - 1) > now_ms) {
		k--;
	}
	while (k < j->total && sched_job_arrival_ms(j, k) <= now_ms) {
		k++;
	}
	return k;
}

uint64_t
sched_job_backlog(const sched_job *j, uint64_t now_ms)
{
	uint64_t a = sched_job_arrived(j, now_ms);
	return a > j->done_queries ? a - j->done_queries : 0;
}

static uint64_t
task_ready_ms(const sched_job *j, uint32_t task)
{
	uint64_t first;
	uint32_t count;
	sched_job_task_range(j, task, &first, &count);
	return sched_job_arrival_ms(j, first + count - 1);
}

static void
advance_cursor(sched_job *j)
{
	while (j->cursor < j->ntasks && j->state[j->cursor] != FRESH) {
		j->cursor++;
	}
}

static bool
grow(void **v, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap) {
		return true;
	}
	size_t ncap = *cap ? *cap * 2 : 64;
	void *p = core_realloc(*v, ncap * elem);
	if (p == NULL) {
		return false;
	}
	*v = p;
	*cap = ncap;
	return true;
}

static void
retry_push(sched_job *j, uint32_t task)
{
	if (!grow((void **) &j->retry, &j->retry_cap, j->nretry_heap + 1,
	        sizeof(uint32_t))) {
		return; // out of memory: found again by the slow path in lease
	}
	size_t i = j->nretry_heap++;
	while (i > 0 && j->retry[(i - 1) / 2] > task) {
		j->retry[i] = j->retry[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	j->retry[i] = task;
}

static void
retry_pop(sched_job *j)
{
	uint32_t last = j->retry[--j->nretry_heap];
	size_t n = j->nretry_heap, i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n) {
			break;
		}
		if (c + 1 < n && j->retry[c + 1] < j->retry[c]) {
			c++;
		}
		if (j->retry[c] >= last) {
			break;
		}
		j->retry[i] = j->retry[c];
		i = c;
	}
	if (n > 0) {
		j->retry[i] = last;
	}
}

static void
lease_sift_down(lease_ent *h, size_t n, size_t i)
{
	lease_ent x = h[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n) {
			break;
		}
		if (c + 1 < n && h[c + 1].expires_ms < h[c].expires_ms) {
			c++;
		}
		if (h[c].expires_ms >= x.expires_ms) {
			break;
		}
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
}

static bool
lease_live(const sched_job *j, lease_ent e)
{
	return j->state[e.task] == LEASED &&
	    j->expires_ms[e.task] == e.expires_ms;
}

// Drops stale entries when they outnumber the live leases, so the heap
// stays O(live leases) however often leases are renewed or completed.
static void
lease_compact(sched_job *j)
{
	size_t n = 0;
	for (size_t i = 0; i < j->nlease_heap; i++) {
		if (lease_live(j, j->leases[i])) {
			j->leases[n++] = j->leases[i];
		}
	}
	j->nlease_heap = n;
	for (size_t i = n / 2; i-- > 0;) {
		lease_sift_down(j->leases, n, i);
	}
}

// Makes room for one more lease entry.
static bool
lease_room(sched_job *j)
{
	if (j->nlease_heap >= 2 * (size_t) j->nleased + 64) {
		lease_compact(j);
	}
	return grow((void **) &j->leases, &j->lease_cap, j->nlease_heap + 1,
	    sizeof(lease_ent));
}

static void
lease_push(sched_job *j, uint32_t task)
{
	if (!lease_room(j)) {
		j->scan = true; // out of memory: expire and reclaim scan
		return;
	}
	lease_ent e = {j->expires_ms[task], task};
	size_t i = j->nlease_heap++;
	while (i > 0 && j->leases[(i - 1) / 2].expires_ms > e.expires_ms) {
		j->leases[i] = j->leases[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	j->leases[i] = e;
}

static void
lease_pop(sched_job *j)
{
	j->leases[0] = j->leases[--j->nlease_heap];
	if (j->nlease_heap > 0) {
		lease_sift_down(j->leases, j->nlease_heap, 0);
	}
}

// Moves a leased task back to pending (it goes before new tasks).
static void
to_retry(sched_job *j, uint32_t task)
{
	j->state[task] = RETRY;
	j->nleased--;
	j->nretry++;
	retry_push(j, task);
}

static void
leave_state(sched_job *j, uint32_t task)
{
	switch (j->state[task]) {
	case LEASED:
		j->nleased--;
		break;
	case RETRY:
		j->nretry--;
		break;
	case DONE: {
		uint32_t count;
		sched_job_task_range(j, task, NULL, &count);
		j->ndone--;
		j->done_queries -= count;
		break;
	}
	default:
		break;
	}
}

size_t
sched_job_expire(sched_job *j, uint64_t now_ms)
{
	size_t n = 0;
	while (j->nlease_heap > 0 && j->leases[0].expires_ms <= now_ms) {
		lease_ent e = j->leases[0];
		lease_pop(j);
		if (lease_live(j, e)) {
			to_retry(j, e.task);
			n++;
		}
	}
	if (j->scan) {
		for (uint32_t b = 0; b < j->ntasks; b++) {
			if (j->state[b] == LEASED &&
			    j->expires_ms[b] <= now_ms) {
				to_retry(j, b);
				n++;
			}
		}
	}
	return n;
}

size_t
sched_job_reclaim(sched_job *j, uint64_t worker)
{
	size_t n = 0;
	for (size_t i = 0; i < j->nlease_heap; i++) {
		lease_ent e = j->leases[i];
		if (lease_live(j, e) && j->worker[e.task] == worker) {
			to_retry(j, e.task);
			n++;
		}
	}
	if (j->scan) {
		for (uint32_t b = 0; b < j->ntasks; b++) {
			if (j->state[b] == LEASED && j->worker[b] == worker) {
				to_retry(j, b);
				n++;
			}
		}
	}
	return n;
}

// The lowest pending (expired or reclaimed) task, or ntasks.
static uint32_t
retry_top(sched_job *j)
{
	while (j->nretry_heap > 0 && j->state[j->retry[0]] != RETRY) {
		retry_pop(j);
	}
	if (j->nretry_heap > 0) {
		return j->retry[0];
	}
	if (j->nretry > 0) {
		// Only after an allocation failure in retry_push.
		for (uint32_t b = 0; b < j->ntasks; b++) {
			if (j->state[b] == RETRY) {
				return b;
			}
		}
	}
	return j->ntasks;
}

int
sched_job_lease(sched_job *j, uint64_t worker, uint64_t now_ms,
    uint64_t lease_ms, uint32_t *task, uint32_t *attempt)
{
	return sched_job_lease_ahead(j, worker, now_ms, now_ms, lease_ms, task,
	    attempt);
}

int
sched_job_lease_ahead(sched_job *j, uint64_t worker, uint64_t now_ms,
    uint64_t ready_by_ms, uint64_t lease_ms, uint32_t *task,
    uint32_t *attempt)
{
	if (j == NULL || task == NULL || attempt == NULL) {
		return IDN_EINVAL;
	}
	sched_job_expire(j, now_ms);
	if (!lease_room(j)) {
		return IDN_ENOMEM;
	}
	ready_by_ms = ready_by_ms > now_ms ? ready_by_ms : now_ms;
	uint32_t b = retry_top(j);
	if (b < j->ntasks && task_ready_ms(j, b) <= ready_by_ms) {
		if (j->nretry_heap > 0 && j->retry[0] == b) {
			retry_pop(j);
		}
		j->nretry--;
	} else if (j->cursor < j->ntasks &&
	    task_ready_ms(j, j->cursor) <= ready_by_ms) {
		b = j->cursor;
	} else {
		return IDN_ENOENT;
	}
	j->state[b] = LEASED;
	j->nleased++;
	j->attempt[b]++;
	j->worker[b] = worker;
	j->expires_ms[b] = now_ms + lease_ms;
	lease_push(j, b);
	advance_cursor(j);
	*task = b;
	*attempt = j->attempt[b];
	return IDN_OK;
}

int
sched_job_renew(sched_job *j, uint32_t task, uint64_t worker,
    uint64_t now_ms, uint64_t lease_ms)
{
	if (j == NULL || task >= j->ntasks) {
		return IDN_EINVAL;
	}
	if (j->state[task] != LEASED || j->worker[task] != worker) {
		return IDN_ESTALE;
	}
	if (j->expires_ms[task] <= now_ms) {
		to_retry(j, task);
		return IDN_ESTALE;
	}
	if (!lease_room(j)) {
		return IDN_ENOMEM;
	}
	j->expires_ms[task] = now_ms + lease_ms;
	lease_push(j, task);
	return IDN_OK;
}

int
sched_job_complete(sched_job *j, uint32_t task, uint64_t now_ms)
{
	if (j == NULL || task >= j->ntasks) {
		return IDN_EINVAL;
	}
	if (j->state[task] == DONE) {
		return IDN_EEXIST;
	}
	leave_state(j, task);
	j->state[task] = DONE;
	uint32_t count;
	sched_job_task_range(j, task, NULL, &count);
	j->ndone++;
	j->done_queries += count;
	advance_cursor(j);
	return IDN_OK;
}

// When the earliest pending (expired or reclaimed) task is ready: a
// task leased ahead of its arrival may come back before it. The heap's
// top is the lowest index, so the earliest; a stale top (left by a task
// done meanwhile) or no heap counts as ready (the lease finds out).
static uint64_t
retry_ready_ms(const sched_job *j)
{
	if (j->nretry == 0) {
		return UINT64_MAX;
	}
	if (j->nretry_heap == 0 || j->state[j->retry[0]] != RETRY) {
		return 0;
	}
	return task_ready_ms(j, j->retry[0]);
}

bool
sched_job_ready(const sched_job *j, uint64_t now_ms)
{
	return retry_ready_ms(j) <= now_ms || (j->cursor < j->ntasks &&
	    task_ready_ms(j, j->cursor) <= now_ms);
}

uint64_t
sched_job_next_ready_ms(const sched_job *j, uint64_t now_ms)
{
	if (sched_job_ready(j, now_ms)) {
		return now_ms;
	}
	uint64_t r = retry_ready_ms(j);
	uint64_t c = j->cursor < j->ntasks ? task_ready_ms(j, j->cursor) :
	    UINT64_MAX;
	return r < c ? r : c;
}

uint64_t
sched_job_ready_at(const sched_job *j, uint32_t task)
{
	return task < j->ntasks ? task_ready_ms(j, task) : UINT64_MAX;
}

uint32_t
sched_job_done_count(const sched_job *j)
{
	return j->ndone;
}

uint32_t
sched_job_leased_count(const sched_job *j)
{
	return j->nleased;
}

bool
sched_job_finished(const sched_job *j)
{
	return j->ndone == j->ntasks;
}

bool
sched_job_lease_info(const sched_job *j, uint32_t task, uint64_t *worker,
    uint32_t *attempt, uint64_t *expires_ms)
{
	if (j == NULL || task >= j->ntasks) {
		return false;
	}
	if (worker != NULL) {
		*worker = j->worker[task];
	}
	if (attempt != NULL) {
		*attempt = j->attempt[task];
	}
	if (expires_ms != NULL) {
		*expires_ms = j->expires_ms[task];
	}
	return j->state[task] == LEASED;
}

void
sched_job_restore_done(sched_job *j, uint32_t task)
{
	if (j == NULL || task >= j->ntasks || j->state[task] == DONE) {
		return;
	}
	sched_job_complete(j, task, 0);
}

void
sched_job_restore_lease(sched_job *j, uint32_t task, uint64_t worker,
    uint32_t attempt, uint64_t expires_ms)
{
	if (j == NULL || task >= j->ntasks || j->state[task] == DONE) {
		return;
	}
	leave_state(j, task);
	j->state[task] = LEASED;
	j->nleased++;
	j->worker[task] = worker;
	j->attempt[task] = attempt;
	j->expires_ms[task] = expires_ms;
	lease_push(j, task);
	advance_cursor(j);
}
