// SPDX-License-Identifier: MIT
// sched_test.c: the pure scheduler parts: fair-time allocation and the
// per-worker pick here, statistics and the batch/lease table in
// sched_job_test.c; main runs both files' tests.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sched/fair.h"
#include "sched_test.h"

// A backlogged job: more demand than any worker count here can serve.
static sched_fair_job
busy(uint64_t id, double task_ms, uint32_t batch)
{
	return (sched_fair_job) {.id = id, .task_ms = task_ms,
	    .task_size = batch, .offered_qps = 1e6, .backlog = 1e5};
}

static double
rate(const sched_alloc *a, const sched_fair_job *j)
{
	return sched_alloc_job_workers(a, j->id) * j->task_size * 1000.0 /
	    j->task_ms;
}

// max/min rate over the given jobs.
static double
rate_ratio(const sched_alloc *a, const sched_fair_job *jobs, size_t n)
{
	double lo = INFINITY, hi = 0;
	for (size_t i = 0; i < n; i++) {
		double r = rate(a, &jobs[i]);
		lo = fmin(lo, r);
		hi = fmax(hi, r);
	}
	return hi / lo;
}

// Every row sums to 1 (work-conserving, nothing over-booked) or, with no
// demand at all, is empty; returns how many rows are time-shared.
static size_t
check_rows(const sched_alloc *a, bool busy_all)
{
	size_t shared = 0;
	for (size_t i = 0; i < a->nworkers; i++) {
		double sum = 0;
		for (size_t k = 0; k < a->nshares[i]; k++) {
			assert_true(a->shares[i][k].share > 0);
			assert_true(a->shares[i][k].share <= 1 + 1e-9);
			if (k > 0) {
				assert_true(a->shares[i][k].share <=
				    a->shares[i][k - 1].share);
			}
			sum += a->shares[i][k].share;
		}
		if (busy_all) {
			assert_true(fabs(sum - 1) < 1e-6);
		} else {
			assert_true(sum < 1 + 1e-6);
		}
		shared += a->nshares[i] > 1;
	}
	return shared;
}

static uint64_t *
keys(size_t n, uint64_t base)
{
	static uint64_t k[256];
	for (size_t i = 0; i < n; i++) {
		k[i] = base + i;
	}
	return k;
}

static void
test_fair_equal_jobs_whole(void **st)
{
	sched_fair_job j[] = {busy(1, 100, 32), busy(2, 100, 32)};
	sched_alloc a;
	IDN_PASS(sched_fair_assign(j, 2, keys(8, 100), 8, NULL, 0.05, &a));
	assert_int_equal(a.nworkers, 8);
	assert_int_equal(a.workers[7], 107);
	assert_int_equal(check_rows(&a, true), 0);
	assert_true(fabs(sched_alloc_job_workers(&a, 1) - 4) < 1e-9);
	assert_true(fabs(a.ratio - 1) < 1e-9);
	assert_int_equal(a.moved, 8);
	assert_false(a.kept);
	sched_alloc_free(&a);
	assert_null(a.shares);
}

// Two jobs whose per-batch service times differ 4x on 8 workers: the slow
// one needs 6.4 workers for the same rate; whole workers give 25% off, so
// one worker is time-shared.
static void
test_fair_uneven_service(void **st)
{
	sched_fair_job j[] = {busy(1, 100, 32), busy(2, 400, 32)};
	sched_alloc a;
	IDN_PASS(sched_fair_assign(j, 2, keys(8, 0), 8, NULL, 0.05, &a));
	assert_int_equal(check_rows(&a, true), 1);
	assert_true(rate_ratio(&a, j, 2) < 1.001);
	assert_true(fabs(sched_alloc_job_workers(&a, 1) - 1.6) < 1e-6);
	assert_true(a.ratio < 1.001);
	sched_alloc_free(&a);

	// Different batch sizes count too: rate is per query.
	sched_fair_job k[] = {busy(1, 100, 16), busy(2, 100, 48)};
	IDN_PASS(sched_fair_assign(k, 2, keys(8, 0), 8, NULL, 0.05, &a));
	assert_int_equal(check_rows(&a, true), 0);
	assert_true(fabs(sched_alloc_job_workers(&a, 1) - 6) < 1e-9);
	assert_true(rate_ratio(&a, k, 2) < 1.001);
	sched_alloc_free(&a);
}

// A job offered less than its fair share gets what it needs (its rate plus
// draining its backlog) and the other gets every other minute of work.
static void
test_fair_below_share(void **st)
{
	// One worker serves 320 qps of either job.
	sched_fair_job j[] = {busy(1, 100, 32), busy(2, 100, 32)};
	j[0].offered_qps = 32; // 0.1 worker
	j[0].backlog = 0;
	sched_alloc a;
	IDN_PASS(sched_fair_assign(j, 2, keys(4, 0), 4, NULL, 0.05, &a));
	assert_int_equal(check_rows(&a, true), 1);
	assert_true(fabs(sched_alloc_job_workers(&a, 1) - 0.1) < 1e-6);
	assert_true(fabs(sched_alloc_job_workers(&a, 2) - 3.9) < 1e-6);
	assert_false(sched_fair_backlogged(&a, &j[0]));
	assert_true(sched_fair_backlogged(&a, &j[1]));
	sched_alloc_free(&a);

	// With a backlog of 640 queries it also gets 640 / 4 s = 160 qps.
	j[0].backlog = 640;
	IDN_PASS(sched_fair_assign(j, 2, keys(4, 0), 4, NULL, 0.05, &a));
	assert_true(fabs(sched_alloc_job_workers(&a, 1) - 0.6) < 1e-6);
	sched_alloc_free(&a);

	// Both below their share: each gets at least what it needs and the
	// spare workers are split at equal rates (work-conserving).
	j[1].offered_qps = 320;
	j[1].backlog = 0;
	j[0].backlog = 0;
	IDN_PASS(sched_fair_assign(j, 2, keys(4, 0), 4, NULL, 0.05, &a));
	assert_true(sched_alloc_job_workers(&a, 1) >= 1);
	assert_true(sched_alloc_job_workers(&a, 2) >= 1);
	check_rows(&a, true);
	assert_true(fabs(a.ratio - 1) < 1e-9);
	sched_alloc_free(&a);
}

static void
test_fair_one_worker_two_jobs(void **st)
{
	sched_fair_job j[] = {busy(1, 100, 32), busy(2, 100, 32)};
	sched_alloc a;
	IDN_PASS(sched_fair_assign(j, 2, keys(1, 0), 1, NULL, 0.05, &a));
	assert_int_equal(a.nshares[0], 2);
	assert_true(fabs(a.shares[0][0].share - 0.5) < 1e-9);
	assert_true(fabs(a.shares[0][1].share - 0.5) < 1e-9);
	sched_alloc_free(&a);

	j[1].task_ms = 400;
	IDN_PASS(sched_fair_assign(j, 2, keys(1, 0), 1, NULL, 0.05, &a));
	assert_int_equal(a.nshares[0], 2);
	assert_int_equal(a.shares[0][0].job, 2);
	assert_true(fabs(a.shares[0][0].share - 0.8) < 1e-9);
	assert_true(rate_ratio(&a, j, 2) < 1.001);
	sched_alloc_free(&a);
}

static void
test_fair_three_jobs_eight_workers(void **st)
{
	sched_fair_job j[] = {busy(1, 100, 32), busy(2, 100, 32),
	    busy(3, 100, 32)};
	sched_alloc a;
	IDN_PASS(sched_fair_assign(j, 3, keys(8, 0), 8, NULL, 0.05, &a));
	assert_true(check_rows(&a, true) <= 2);
	assert_true(rate_ratio(&a, j, 3) < 1.001);
	sched_alloc_free(&a);

	// Service times 1:1:2 divide 8 workers 2:2:4 exactly: no sharing.
	j[2].task_ms = 200;
	IDN_PASS(sched_fair_assign(j, 3, keys(8, 0), 8, NULL, 0.05, &a));
	assert_int_equal(check_rows(&a, true), 0);
	assert_true(fabs(sched_alloc_job_workers(&a, 3) - 4) < 1e-9);
	sched_alloc_free(&a);

	// 10 jobs on 100 workers with mixed times: within 5%, few shared.
	sched_fair_job m[10];
	for (size_t i = 0; i < 10; i++) {
		m[i] = busy(i + 1, 50.0 + 37.0 * (double) i, 32);
	}
	IDN_PASS(sched_fair_assign(m, 10, keys(100, 0), 100, NULL, 0.05,
	    &a));
	assert_true(check_rows(&a, true) <= 9);
	assert_true(rate_ratio(&a, m, 10) <= 1.05 + 1e-9);
	sched_alloc_free(&a);
}

static size_t
count_on(const sched_alloc *a, size_t row, uint64_t job)
{
	for (size_t k = 0; k < a->nshares[row]; k++) {
		if (a->shares[row][k].job == job) {
			return 1;
		}
	}
	return 0;
}

static void
test_fair_worker_loss_and_join(void **st)
{
	sched_fair_job j[] = {busy(1, 100, 32), busy(2, 100, 32)};
	uint64_t w[9] = {10, 11, 12, 13, 14, 15, 16, 17, 18};
	sched_alloc a, b, c;
	IDN_PASS(sched_fair_assign(j, 2, w, 8, NULL, 0.05, &a));

	// Worker 13 fails: the other seven keep their jobs but one, which
	// is shared between both to keep rates equal.
	uint64_t lost[7] = {10, 11, 12, 14, 15, 16, 17};
	IDN_PASS(sched_fair_assign(j, 2, lost, 7, &a, 0.05, &b));
	assert_int_equal(check_rows(&b, true), 1);
	assert_true(rate_ratio(&b, j, 2) < 1.001);
	assert_int_equal(b.moved, 1);
	for (size_t i = 0; i < 7; i++) {
		size_t old = i < 3 ? i : i + 1;
		assert_true(count_on(&b, i, a.shares[old][0].job));
	}

	// A new worker joins: it gets work, and only it and the shared one
	// change.
	uint64_t joined[8] = {10, 11, 12, 14, 15, 16, 17, 99};
	IDN_PASS(sched_fair_assign(j, 2, joined, 8, &b, 0.05, &c));
	assert_int_equal(check_rows(&c, true), 0);
	assert_int_equal(c.nshares[7], 1);
	assert_true(c.moved <= 2);
	assert_true(fabs(c.ratio - 1) < 1e-9);
	sched_alloc_free(&a);
	sched_alloc_free(&b);
	sched_alloc_free(&c);
}

static void
test_fair_hysteresis(void **st)
{
	sched_fair_job j[] = {busy(1, 100, 32), busy(2, 400, 32)};
	sched_alloc a, b, c;
	IDN_PASS(sched_fair_assign(j, 2, keys(8, 0), 8, NULL, 0.05, &a));

	// Measurement noise of a few percent moves nothing.
	j[0].task_ms = 102;
	j[1].task_ms = 396;
	IDN_PASS(sched_fair_assign(j, 2, keys(8, 0), 8, &a, 0.05, &b));
	assert_true(b.kept);
	assert_int_equal(b.moved, 0);
	for (size_t i = 0; i < 8; i++) {
		assert_int_equal(b.nshares[i], a.nshares[i]);
		assert_true(fabs(b.shares[i][0].share - a.shares[i][0].share) <
		    1e-12);
	}
	assert_true(b.ratio < 1.05);

	// The fast job becomes twice as slow: workers move and the rates are
	// equal again.
	j[0].task_ms = 200;
	IDN_PASS(sched_fair_assign(j, 2, keys(8, 0), 8, &b, 0.05, &c));
	assert_false(c.kept);
	assert_true(c.moved > 0);
	assert_true(rate_ratio(&c, j, 2) < 1.01);
	// ... and the workers dedicated to the slow job stayed.
	size_t stayed = 0;
	for (size_t i = 0; i < 8; i++) {
		stayed += b.nshares[i] == 1 && b.shares[i][0].job == 2 &&
		    c.nshares[i] == 1 && c.shares[i][0].job == 2;
	}
	assert_int_equal(stayed, 5);
	sched_alloc_free(&a);
	sched_alloc_free(&b);
	sched_alloc_free(&c);

	// Equal jobs on 4/4 whole workers: 4% noise keeps them.
	sched_fair_job e[] = {busy(1, 100, 32), busy(2, 100, 32)};
	IDN_PASS(sched_fair_assign(e, 2, keys(8, 0), 8, NULL, 0.05, &a));
	e[1].task_ms = 104;
	IDN_PASS(sched_fair_assign(e, 2, keys(8, 0), 8, &a, 0.05, &b));
	assert_true(b.kept);
	assert_int_equal(b.moved, 0);
	sched_alloc_free(&a);
	sched_alloc_free(&b);

	// A caller-built prev without worker keys matches by position.
	sched_share s0 = {1, 1}, s1 = {2, 1};
	sched_share *rows[2] = {&s0, &s1};
	size_t ns[2] = {1, 1};
	sched_alloc p = {.nworkers = 2, .nshares = ns, .shares = rows};
	IDN_PASS(sched_fair_assign(e, 2, keys(2, 0), 2, &p, 0.05, &a));
	assert_true(a.kept);
	assert_int_equal(a.shares[1][0].job, 2);
	sched_alloc_free(&a);
}

static void
test_fair_job_set_change(void **st)
{
	sched_fair_job j[] = {busy(1, 100, 32), busy(2, 100, 32),
	    busy(3, 100, 32)};
	sched_alloc a, b;
	IDN_PASS(sched_fair_assign(j, 2, keys(6, 0), 6, NULL, 0.05, &a));
	// A third job arrives: 2 each; four workers keep their jobs.
	IDN_PASS(sched_fair_assign(j, 3, keys(6, 0), 6, &a, 0.05, &b));
	assert_false(b.kept);
	assert_int_equal(b.moved, 2);
	assert_true(fabs(sched_alloc_job_workers(&b, 3) - 2) < 1e-9);
	sched_alloc_free(&a);
	// ... and leaves again: its workers go back, the others stay.
	IDN_PASS(sched_fair_assign(j, 2, keys(6, 0), 6, &b, 0.05, &a));
	assert_int_equal(a.moved, 2);
	assert_true(fabs(sched_alloc_job_workers(&a, 1) - 3) < 1e-9);
	sched_alloc_free(&a);
	sched_alloc_free(&b);
}

static void
test_fair_edges(void **st)
{
	sched_fair_job j[] = {busy(1, 100, 32), busy(2, 100, 32)};
	sched_alloc a;
	// No workers.
	IDN_PASS(sched_fair_assign(j, 2, NULL, 0, NULL, 0.05, &a));
	assert_int_equal(a.nworkers, 0);
	sched_alloc_free(&a);
	// No jobs: every worker idle.
	IDN_PASS(sched_fair_assign(NULL, 0, keys(3, 0), 3, NULL, 0.05, &a));
	assert_int_equal(a.nworkers, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(a.nshares[i], 0);
	}
	sched_alloc_free(&a);
	// A job with zero demand gets nothing; the other everything.
	j[0].offered_qps = 0;
	j[0].backlog = 0;
	IDN_PASS(sched_fair_assign(j, 2, keys(3, 0), 3, NULL, 0.05, &a));
	check_rows(&a, true);
	assert_true(sched_alloc_job_workers(&a, 1) == 0);
	assert_true(fabs(sched_alloc_job_workers(&a, 2) - 3) < 1e-9);
	sched_alloc_free(&a);
	// Only zero demand: idle.
	j[1] = j[0];
	j[1].id = 2;
	IDN_PASS(sched_fair_assign(j, 2, keys(3, 0), 3, NULL, 0.05, &a));
	check_rows(&a, false);
	assert_true(sched_alloc_job_workers(&a, 2) == 0);
	sched_alloc_free(&a);
	sched_alloc_free(NULL);
}

static void
test_fair_bad_input(void **st)
{
	sched_fair_job j[] = {busy(1, 100, 32), busy(1, 100, 32)};
	sched_alloc a;
	uint64_t dup[2] = {5, 5};
	IDN_FAIL(sched_fair_assign(j, 2, keys(2, 0), 2, NULL, 0.05, &a),
	    IDN_EINVAL);
	j[1].id = 2;
	IDN_FAIL(sched_fair_assign(j, 2, dup, 2, NULL, 0.05, &a), IDN_EINVAL);
	IDN_FAIL(sched_fair_assign(j, 2, keys(2, 0), 2, NULL, -1, &a),
	    IDN_EINVAL);
	IDN_FAIL(sched_fair_assign(j, 2, keys(2, 0), 2, NULL, 0.05, NULL),
	    IDN_EINVAL);
	IDN_FAIL(sched_fair_assign(NULL, 2, keys(2, 0), 2, NULL, 0.05, &a),
	    IDN_EINVAL);
	sched_alloc bad = {.nworkers = 2};
	IDN_FAIL(sched_fair_assign(j, 2, keys(2, 0), 2, &bad, 0.05, &a),
	    IDN_EINVAL);
	j[1].task_ms = 0;
	IDN_FAIL(sched_fair_assign(j, 2, keys(2, 0), 2, NULL, 0.05, &a),
	    IDN_EINVAL);
	j[1].task_ms = NAN;
	IDN_FAIL(sched_fair_assign(j, 2, keys(2, 0), 2, NULL, 0.05, &a),
	    IDN_EINVAL);
	j[1].task_ms = 100;
	j[1].task_size = 0;
	IDN_FAIL(sched_fair_assign(j, 2, keys(2, 0), 2, NULL, 0.05, &a),
	    IDN_EINVAL);
	j[1].task_size = 1;
	j[1].backlog = -1;
	IDN_FAIL(sched_fair_assign(j, 2, keys(2, 0), 2, NULL, 0.05, &a),
	    IDN_EINVAL);
	j[1].backlog = 0;
	j[1].offered_qps = INFINITY;
	IDN_FAIL(sched_fair_assign(j, 2, keys(2, 0), 2, NULL, 0.05, &a),
	    IDN_EINVAL);
}

// Max-min fairness checked against a plain bisection for the fair rates:
// every job with demand gets within 5% (the same factor for all) of its
// fair rate min(need, level), where level fills the workers.
static void
check_maxmin(const sched_alloc *a, const sched_fair_job *j, size_t nj)
{
	double need[8], per[8], top = 0, lo_l = 0, hi_l, W = 0;
	for (size_t i = 0; i < a->nworkers; i++) {
		W += 1;
	}
	for (size_t i = 0; i < nj; i++) {
		need[i] = j[i].offered_qps + j[i].backlog / 4.0;
		per[i] = j[i].task_size * 1000.0 / j[i].task_ms;
		top = fmax(top, need[i]);
	}
	hi_l = top;
	for (int it = 0; it < 200; it++) {
		double mid = (lo_l + hi_l) / 2, used = 0;
		for (size_t i = 0; i < nj; i++) {
			used += fmin(need[i], mid) / per[i];
		}
		*(used > W ? &hi_l : &lo_l) = mid;
	}
	double lo = INFINITY, hi = 0;
	for (size_t i = 0; i < nj; i++) {
		if (need[i] <= 0) {
			assert_true(rate(a, &j[i]) == 0);
			continue;
		}
		double fair = fmin(need[i], hi_l);
		double g = fmin(rate(a, &j[i]), need[i]) / fair;
		lo = fmin(lo, g);
		hi = fmax(hi, g);
	}
	if (hi > 0) {
		assert_true(hi <= lo * (1 + SCHED_FAIR_WHOLE_TOL) + 1e-6);
	}
}

// Random job mixes, worker counts and drifting measurements: every worker
// is busy, the predicted ratio is what the rates show, a fresh allocation is
// within 5% and a kept one within 10%; few workers are shared.
static void
test_fair_random(void **st)
{
	uint32_t x = 99;
	for (int round = 0; round < 300; round++) {
		sched_fair_job j[6];
		size_t nj = 1 + round % 6, nw = 1 + (size_t) (round * 7) % 40;
		for (size_t i = 0; i < nj; i++) {
			x = x * 1103515245u + 12345u;
			j[i] = busy(i + 1, 20 + (x >> 16) % 400,
			    1 + (x >> 8) % 64);
			if ((x >> 4) % 3 == 0) {
				j[i].offered_qps = (double) ((x >> 12) % 500);
				j[i].backlog = 0;
			}
		}
		sched_alloc a = {0}, b;
		bool have = false;
		for (int step = 0; step < 5; step++) {
			IDN_PASS(sched_fair_assign(j, nj, keys(nw, 0), nw,
			    have ? &a : NULL, 0.05, &b));
			check_rows(&b, true);
			assert_true(b.ratio <= (b.kept ? SCHED_FAIR_MAX_RATIO :
			    1 + SCHED_FAIR_WHOLE_TOL) + 1e-6);
			size_t shared = 0;
			for (size_t i = 0; i < nw; i++) {
				shared += b.nshares[i] > 1;
			}
			assert_true(shared < nj);
			if (!b.kept) {
				check_maxmin(&b, j, nj);
			}
			sched_alloc_free(&a);
			a = b;
			have = true;
			for (size_t i = 0; i < nj; i++) {
				x = x * 1103515245u + 12345u;
				j[i].task_ms *= 0.97 + 0.06 *
				    (double) (x >> 16) / 65536.0;
			}
		}
		sched_alloc_free(&a);
	}
}

// The allocation and the pick together, in simulated time: 8 workers serve
// two backlogged jobs whose batches take 100 and 400 ms; each worker picks
// among its shares by sched_fair_pick. After 30 s the query rates are
// within 2% of each other.
static void
test_fair_simulated(void **st)
{
	sched_fair_job j[] = {busy(1, 100, 32), busy(2, 400, 32)};
	sched_alloc a;
	IDN_PASS(sched_fair_assign(j, 2, keys(8, 0), 8, NULL, 0.05, &a));
	double free_at[8] = {0}, served[8][2] = {{0}}, done[2] = {0};
	bool ready[2] = {true, true};
	for (int step = 0; step < 100000; step++) {
		size_t w = 0;
		for (size_t i = 1; i < 8; i++) {
			w = free_at[i] < free_at[w] ? i : w;
		}
		if (free_at[w] >= 30000) {
			break;
		}
		int k = sched_fair_pick(a.shares[w], a.nshares[w], served[w],
		    ready);
		assert_true(k >= 0);
		size_t ji = a.shares[w][k].job == 1 ? 0 : 1;
		free_at[w] += j[ji].task_ms;
		served[w][k] += j[ji].task_ms;
		done[ji] += j[ji].task_size;
	}
	assert_true(fmax(done[0], done[1]) / fmin(done[0], done[1]) < 1.02);
	sched_alloc_free(&a);
}

static void
test_fair_pick(void **st)
{
	sched_share s[2] = {{1, 0.75}, {2, 0.25}};
	double served[2] = {0, 0};
	bool ready[2] = {true, true};
	for (int i = 0; i < 400; i++) {
		int k = sched_fair_pick(s, 2, served, ready);
		assert_true(k == 0 || k == 1);
		served[k] += k == 0 ? 10 : 30; // uneven batch times
	}
	assert_true(fabs(served[0] / served[1] - 3) < 0.1);
	// Work-conserving: a share with nothing ready is skipped.
	ready[0] = false;
	assert_int_equal(sched_fair_pick(s, 2, served, ready), 1);
	ready[1] = false;
	assert_int_equal(sched_fair_pick(s, 2, served, ready), -1);
	assert_int_equal(sched_fair_pick(NULL, 0, served, ready), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fair_equal_jobs_whole),
	    cmocka_unit_test(test_fair_uneven_service),
	    cmocka_unit_test(test_fair_below_share),
	    cmocka_unit_test(test_fair_one_worker_two_jobs),
	    cmocka_unit_test(test_fair_three_jobs_eight_workers),
	    cmocka_unit_test(test_fair_worker_loss_and_join),
	    cmocka_unit_test(test_fair_hysteresis),
	    cmocka_unit_test(test_fair_job_set_change),
	    cmocka_unit_test(test_fair_edges),
	    cmocka_unit_test(test_fair_bad_input),
	    cmocka_unit_test(test_fair_random),
	    cmocka_unit_test(test_fair_simulated),
	    cmocka_unit_test(test_fair_pick),
	    cmocka_unit_test(test_stats_known),
	    cmocka_unit_test(test_stats_many),
	    cmocka_unit_test(test_stats_rates),
	    cmocka_unit_test(test_job_arrivals),
	    cmocka_unit_test(test_job_partial_and_order),
	    cmocka_unit_test(test_job_exactly_once),
	    cmocka_unit_test(test_job_expiry),
	    cmocka_unit_test(test_job_renew),
	    cmocka_unit_test(test_job_reclaim),
	    cmocka_unit_test(test_job_restore),
	    cmocka_unit_test(test_job_churn),
	    cmocka_unit_test(test_job_lease_ahead),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
