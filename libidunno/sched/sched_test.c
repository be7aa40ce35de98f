// SPDX-License-Identifier: MIT
// sched_test.c: the pure scheduler parts: fair-time allocation and the
// per-worker pick, streaming statistics, and the batch/lease table.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sched/fair.h"
#include "sched/job.h"
#include "sched/stats.h"

// A backlogged job: more demand than any worker count here can serve.
static sched_fair_job
busy(uint64_t id, double batch_ms, uint32_t batch)
{
	return (sched_fair_job) {.id = id, .batch_ms = batch_ms,
	    .batch = batch, .offered_qps = 1e6, .backlog = 1e5};
}

static double
rate(const sched_alloc *a, const sched_fair_job *j)
{
	return sched_alloc_job_workers(a, j->id) * j->batch * 1000.0 /
	    j->batch_ms;
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

	j[1].batch_ms = 400;
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
	j[2].batch_ms = 200;
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
	j[0].batch_ms = 102;
	j[1].batch_ms = 396;
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
	j[0].batch_ms = 200;
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
	e[1].batch_ms = 104;
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
	j[1].batch_ms = 0;
	IDN_FAIL(sched_fair_assign(j, 2, keys(2, 0), 2, NULL, 0.05, &a),
	    IDN_EINVAL);
	j[1].batch_ms = NAN;
	IDN_FAIL(sched_fair_assign(j, 2, keys(2, 0), 2, NULL, 0.05, &a),
	    IDN_EINVAL);
	j[1].batch_ms = 100;
	j[1].batch = 0;
	IDN_FAIL(sched_fair_assign(j, 2, keys(2, 0), 2, NULL, 0.05, &a),
	    IDN_EINVAL);
	j[1].batch = 1;
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
		per[i] = j[i].batch * 1000.0 / j[i].batch_ms;
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
				j[i].batch_ms *= 0.97 + 0.06 *
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
		free_at[w] += j[ji].batch_ms;
		served[w][k] += j[ji].batch_ms;
		done[ji] += j[ji].batch;
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

static void
test_stats_known(void **st)
{
	sched_stats *s;
	sched_summary m;
	IDN_PASS(sched_stats_new(&s));
	sched_stats_summary(s, 0, &m);
	assert_int_equal(m.count, 0);
	assert_true(m.median == 0 && m.rate == 0 && m.rate_10s == 0);
	// 1..100 in a scrambled order.
	for (int i = 0; i < 100; i++) {
		sched_stats_add(s, (double) ((i * 37) % 100 + 1), 1, 1000);
	}
	sched_stats_add(s, NAN, 1, 1000);
	sched_stats_add(s, 5, 0, 1000);
	sched_stats_summary(s, 1000, &m);
	assert_int_equal(m.count, 100);
	assert_true(fabs(m.mean - 50.5) < 1e-9);
	assert_true(fabs(m.stddev - 28.8660700477) < 1e-6);
	assert_true(fabs(m.median - 50.5) < 1e-9);
	assert_true(fabs(m.p90 - 90.1) < 1e-9);
	assert_true(fabs(m.p95 - 95.05) < 1e-9);
	assert_true(fabs(m.p99 - 99.01) < 1e-9);
	assert_true(m.rate == 0); // one instant
	sched_stats_free(s);

	// Counts: ten 1s and ten 5s.
	IDN_PASS(sched_stats_new(&s));
	sched_stats_add(s, 5, 10, 0);
	sched_stats_add(s, 1, 10, 0);
	sched_stats_summary(s, 0, &m);
	assert_int_equal(m.count, 20);
	assert_true(fabs(m.mean - 3) < 1e-12);
	assert_true(fabs(m.stddev - 2) < 1e-12);
	assert_true(fabs(m.median - 3) < 1e-12);
	assert_true(fabs(m.p99 - 5) < 1e-12);
	sched_stats_free(s);
	sched_stats_free(NULL);
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return (x > y) - (x < y);
}

static double
ref_pct(const double *v, size_t n, double p)
{
	double pos = p * (double) (n - 1);
	size_t lo = (size_t) floor(pos);
	size_t hi = lo + 1 < n ? lo + 1 : lo;
	return v[lo] + (v[hi] - v[lo]) * (pos - (double) lo);
}

// Enough samples to fold the unsorted tail many times; percentiles stay
// exact against a sorted copy, with summaries between the adds.
static void
test_stats_many(void **st)
{
	enum { N = 200000 };
	double *v = malloc(N * sizeof(double));
	assert_non_null(v);
	sched_stats *s;
	sched_summary m;
	IDN_PASS(sched_stats_new(&s));
	uint32_t x = 12345;
	for (size_t i = 0; i < N; i++) {
		x = x * 1103515245u + 12345u;
		v[i] = (double) (x >> 16) / 100.0; // many repeated values
		sched_stats_add(s, v[i], 1, i);
		if (i % 50000 == 0) {
			sched_stats_summary(s, i, &m);
			assert_int_equal(m.count, i + 1);
		}
	}
	sched_stats_summary(s, N, &m);
	qsort(v, N, sizeof(double), cmp_d);
	assert_int_equal(m.count, N);
	assert_true(m.median == ref_pct(v, N, 0.5));
	assert_true(m.p90 == ref_pct(v, N, 0.9));
	assert_true(m.p95 == ref_pct(v, N, 0.95));
	assert_true(m.p99 == ref_pct(v, N, 0.99));
	sched_stats_free(s);
	free(v);
}

static void
test_stats_rates(void **st)
{
	sched_stats *s;
	sched_summary m;
	IDN_PASS(sched_stats_new(&s));
	// A batch of 4 every 100 ms from t = 0 to 19.9 s: 40 qps.
	for (uint64_t t = 0; t < 20000; t += 100) {
		sched_stats_add(s, 7, 4, t);
		if (t == 4900) {
			// Younger than 10 s: divided by the time so far.
			sched_stats_summary(s, 5000, &m);
			assert_true(fabs(m.rate_10s - 40) < 1e-9);
		}
	}
	// (9.95 s, 19.95 s] holds the batches of 10.0 s to 19.9 s.
	sched_stats_summary(s, 19950, &m);
	assert_int_equal(m.count, 800);
	assert_true(fabs(m.rate - 800 * 1000.0 / 19900) < 1e-9);
	assert_true(fabs(m.rate_10s - 40) < 1e-9);
	// The job stops: the window empties over 10 s.
	sched_stats_summary(s, 25000, &m);
	assert_true(fabs(m.rate_10s - 20) < 0.5);
	sched_stats_summary(s, 30000, &m);
	assert_true(m.rate_10s == 0);
	assert_true(fabs(m.rate - 800 * 1000.0 / 19900) < 1e-9);
	sched_stats_free(s);
}

static void
test_job_arrivals(void **st)
{
	sched_job *j;
	uint32_t b, att;
	IDN_PASS(sched_job_new(100, 10, 20, 1000, &j));
	assert_int_equal(sched_job_nbatches(j), 10);
	assert_int_equal(sched_job_total(j), 100);
	assert_int_equal(sched_job_arrival_ms(j, 0), 1000);
	assert_int_equal(sched_job_arrival_ms(j, 19), 1950);
	assert_int_equal(sched_job_arrived(j, 999), 0);
	assert_int_equal(sched_job_arrived(j, 1000), 1);
	assert_int_equal(sched_job_arrived(j, 1949), 19);
	assert_int_equal(sched_job_arrived(j, 1950), 20);
	assert_int_equal(sched_job_arrived(j, 99999), 100);
	// Batch 0 is ready when query 9 arrived.
	assert_false(sched_job_ready(j, 1449));
	assert_int_equal(sched_job_next_ready_ms(j, 1000), 1450);
	IDN_FAIL(sched_job_lease(j, 1, 1449, 1000, &b, &att), IDN_ENOENT);
	assert_true(sched_job_ready(j, 1450));
	IDN_PASS(sched_job_lease(j, 1, 1450, 1000, &b, &att));
	assert_int_equal(b, 0);
	assert_int_equal(att, 1);
	IDN_FAIL(sched_job_lease(j, 1, 1500, 1000, &b, &att), IDN_ENOENT);
	assert_int_equal(sched_job_backlog(j, 1500), 11);
	IDN_PASS(sched_job_complete(j, 0, 1500));
	assert_int_equal(sched_job_backlog(j, 1500), 1);
	sched_job_free(j);

	// Fractional rates: 3 qps, query i at floor(i * 333.33) ms.
	IDN_PASS(sched_job_new(10, 1, 3, 0, &j));
	assert_int_equal(sched_job_arrival_ms(j, 1), 333);
	assert_int_equal(sched_job_arrival_ms(j, 3), 1000);
	assert_int_equal(sched_job_arrived(j, 333), 2);
	assert_int_equal(sched_job_arrived(j, 999), 3);
	assert_int_equal(sched_job_arrived(j, 1000), 4);
	sched_job_free(j);
	sched_job_free(NULL);

	IDN_FAIL(sched_job_new(0, 10, 20, 0, &j), IDN_EINVAL);
	IDN_FAIL(sched_job_new(10, 0, 20, 0, &j), IDN_EINVAL);
	IDN_FAIL(sched_job_new(10, 10, 0, 0, &j), IDN_EINVAL);
	IDN_FAIL(sched_job_new(10, 10, NAN, 0, &j), IDN_EINVAL);
	IDN_FAIL(sched_job_new(10, 10, 1e-300, 0, &j), IDN_EINVAL);
	IDN_FAIL(sched_job_new(10, 10, INFINITY, 0, &j), IDN_EINVAL);
	IDN_FAIL(sched_job_new(10, 10, 1, 0, NULL), IDN_EINVAL);
}

static void
test_job_partial_and_order(void **st)
{
	sched_job *j;
	uint32_t b, att, n;
	uint64_t first;
	IDN_PASS(sched_job_new(25, 10, 1000, 0, &j));
	assert_int_equal(sched_job_nbatches(j), 3);
	sched_job_batch_range(j, 2, &first, &n);
	assert_int_equal(first, 20);
	assert_int_equal(n, 5);
	// The last, partial batch is ready when query 24 arrived.
	for (uint32_t k = 0; k < 3; k++) {
		IDN_PASS(sched_job_lease(j, 1, 24, 1000, &b, &att));
		assert_int_equal(b, k);
	}
	IDN_FAIL(sched_job_lease(j, 1, 24, 1000, &b, &att), IDN_ENOENT);
	assert_int_equal(sched_job_leased_count(j), 3);
	IDN_PASS(sched_job_complete(j, 2, 30));
	IDN_PASS(sched_job_complete(j, 0, 30));
	assert_false(sched_job_finished(j));
	IDN_PASS(sched_job_complete(j, 1, 30));
	assert_true(sched_job_finished(j));
	assert_int_equal(sched_job_done_count(j), 3);
	assert_int_equal(sched_job_leased_count(j), 0);
	assert_int_equal(sched_job_next_ready_ms(j, 30), UINT64_MAX);
	assert_int_equal(sched_job_backlog(j, 30), 0);
	sched_job_free(j);
}

static void
test_job_exactly_once(void **st)
{
	sched_job *j;
	uint32_t b, att;
	IDN_PASS(sched_job_new(20, 10, 1000, 0, &j));
	IDN_PASS(sched_job_lease(j, 1, 100, 50, &b, &att));
	// Worker 1 is slow: its lease expires and worker 2 runs it again.
	IDN_PASS(sched_job_lease(j, 2, 150, 50, &b, &att));
	assert_int_equal(b, 0);
	assert_int_equal(att, 2);
	IDN_PASS(sched_job_complete(j, 0, 160));
	IDN_FAIL(sched_job_complete(j, 0, 170), IDN_EEXIST);
	IDN_FAIL(sched_job_complete(j, 0, 170), IDN_EEXIST);
	IDN_FAIL(sched_job_complete(j, 7, 170), IDN_EINVAL);
	// Completing a batch nobody leased (a restored ledger) counts too.
	IDN_PASS(sched_job_complete(j, 1, 170));
	assert_true(sched_job_finished(j));
	IDN_FAIL(sched_job_lease(j, 1, 200, 50, &b, &att), IDN_ENOENT);
	sched_job_free(j);
}

static void
test_job_expiry(void **st)
{
	sched_job *j;
	uint32_t b, att;
	IDN_PASS(sched_job_new(50, 10, 1000, 0, &j));
	IDN_PASS(sched_job_lease(j, 1, 100, 100, &b, &att)); // b0 until 200
	IDN_PASS(sched_job_lease(j, 1, 150, 100, &b, &att)); // b1 until 250
	assert_int_equal(sched_job_expire(j, 199), 0);
	assert_int_equal(sched_job_expire(j, 200), 1);
	assert_true(sched_job_ready(j, 200));
	// The expired batch goes before the new ones, with attempt 2.
	IDN_PASS(sched_job_lease(j, 3, 210, 100, &b, &att));
	assert_int_equal(b, 0);
	assert_int_equal(att, 2);
	uint64_t w, exp;
	uint32_t a2;
	assert_true(sched_job_lease_info(j, 0, &w, &a2, &exp));
	assert_int_equal(w, 3);
	assert_int_equal(a2, 2);
	assert_int_equal(exp, 310);
	// lease expires b1 itself.
	IDN_PASS(sched_job_lease(j, 3, 260, 100, &b, &att));
	assert_int_equal(b, 1);
	assert_int_equal(att, 2);
	IDN_PASS(sched_job_lease(j, 3, 260, 100, &b, &att));
	assert_int_equal(b, 2);
	assert_int_equal(att, 1);
	sched_job_free(j);
}

static void
test_job_renew(void **st)
{
	sched_job *j;
	uint32_t b, att;
	IDN_PASS(sched_job_new(30, 10, 1000, 0, &j));
	IDN_PASS(sched_job_lease(j, 1, 100, 100, &b, &att));
	IDN_FAIL(sched_job_renew(j, 0, 2, 150, 100), IDN_ESTALE);
	IDN_FAIL(sched_job_renew(j, 9, 1, 150, 100), IDN_EINVAL);
	IDN_FAIL(sched_job_renew(j, 1, 1, 150, 100), IDN_ESTALE);
	// Renewed many times: the old expiry passes harmlessly.
	for (uint64_t t = 150; t < 1150; t += 10) {
		IDN_PASS(sched_job_renew(j, 0, 1, t, 100));
	}
	assert_int_equal(sched_job_expire(j, 1200), 0);
	assert_true(sched_job_lease_info(j, 0, NULL, NULL, NULL));
	assert_int_equal(sched_job_expire(j, 1240), 1);
	IDN_FAIL(sched_job_renew(j, 0, 1, 1240, 100), IDN_ESTALE);
	// Renewing after the lease time passed, before anyone expired it.
	IDN_PASS(sched_job_lease(j, 2, 1300, 100, &b, &att));
	assert_int_equal(b, 0);
	IDN_FAIL(sched_job_renew(j, 0, 2, 1400, 100), IDN_ESTALE);
	assert_false(sched_job_lease_info(j, 0, NULL, NULL, NULL));
	IDN_PASS(sched_job_lease(j, 2, 1400, 100, &b, &att));
	assert_int_equal(b, 0);
	assert_int_equal(att, 3);
	IDN_PASS(sched_job_complete(j, 0, 1410));
	IDN_FAIL(sched_job_renew(j, 0, 2, 1420, 100), IDN_ESTALE);
	sched_job_free(j);
}

static void
test_job_reclaim(void **st)
{
	sched_job *j;
	uint32_t b, att;
	IDN_PASS(sched_job_new(60, 10, 1000, 0, &j));
	IDN_PASS(sched_job_lease(j, 7, 100, 10000, &b, &att)); // 0
	IDN_PASS(sched_job_lease(j, 7, 100, 10000, &b, &att)); // 1
	IDN_PASS(sched_job_lease(j, 8, 100, 10000, &b, &att)); // 2
	IDN_PASS(sched_job_renew(j, 1, 7, 110, 10000));
	IDN_PASS(sched_job_complete(j, 0, 120));
	assert_int_equal(sched_job_reclaim(j, 7), 1);
	assert_int_equal(sched_job_reclaim(j, 7), 0);
	assert_int_equal(sched_job_reclaim(j, 99), 0);
	IDN_FAIL(sched_job_renew(j, 1, 7, 130, 100), IDN_ESTALE);
	IDN_PASS(sched_job_lease(j, 8, 140, 10000, &b, &att));
	assert_int_equal(b, 1);
	assert_int_equal(att, 2);
	IDN_PASS(sched_job_lease(j, 8, 140, 10000, &b, &att));
	assert_int_equal(b, 3);
	assert_int_equal(sched_job_leased_count(j), 3);
	sched_job_free(j);
}

static void
test_job_restore(void **st)
{
	sched_job *j;
	uint32_t b, att;
	IDN_PASS(sched_job_new(50, 10, 1000, 0, &j));
	sched_job_restore_done(j, 0);
	sched_job_restore_done(j, 1);
	sched_job_restore_done(j, 1);
	sched_job_restore_done(j, 77);
	sched_job_restore_lease(j, 2, 5, 3, 5000);
	sched_job_restore_lease(j, 4, 5, 1, 5000);
	sched_job_restore_lease(j, 0, 5, 1, 5000); // done: ignored
	assert_int_equal(sched_job_done_count(j), 2);
	assert_int_equal(sched_job_leased_count(j), 2);
	IDN_PASS(sched_job_lease(j, 6, 100, 10000, &b, &att));
	assert_int_equal(b, 3);
	assert_int_equal(att, 1);
	IDN_FAIL(sched_job_lease(j, 6, 100, 10000, &b, &att), IDN_ENOENT);
	IDN_FAIL(sched_job_renew(j, 2, 6, 100, 10000), IDN_ESTALE);
	IDN_PASS(sched_job_renew(j, 2, 5, 100, 10000));
	// The restored leases expire like any other.
	assert_int_equal(sched_job_expire(j, 5000), 1); // batch 4
	IDN_PASS(sched_job_lease(j, 6, 5000, 1000, &b, &att));
	assert_int_equal(b, 4);
	assert_int_equal(att, 2);
	// A worker that held restored leases fails.
	assert_int_equal(sched_job_reclaim(j, 5), 1);
	IDN_PASS(sched_job_lease(j, 6, 5000, 1000, &b, &att));
	assert_int_equal(b, 2);
	assert_int_equal(att, 4);
	sched_job_free(j);
}

// Many batches, leases, renewals and completions in a random order: every
// batch ends done exactly once and the counters agree.
static void
test_job_churn(void **st)
{
	enum { NB = 20000 };
	sched_job *j;
	IDN_PASS(sched_job_new(NB * 4, 4, 1e6, 0, &j));
	uint32_t *held = malloc(4 * NB * sizeof(uint32_t));
	assert_non_null(held);
	size_t nheld = 0, ok = 0, again = 0;
	uint32_t x = 7;
	uint64_t now = 1000;
	for (int step = 0; step < 1000000 && !sched_job_finished(j); step++) {
		x = x * 1103515245u + 12345u;
		uint32_t r = x >> 16;
		uint32_t b, att;
		if (r % 2 == 0 && nheld < 4 * NB &&
		    sched_job_lease(j, r % 5, now, 50, &b, &att) == IDN_OK) {
			held[nheld++] = b;
		} else if (nheld > 0) {
			size_t k = r % nheld;
			int rv = sched_job_complete(j, held[k], now);
			assert_true(rv == IDN_OK || rv == IDN_EEXIST);
			ok += rv == IDN_OK;
			again += rv == IDN_EEXIST;
			held[k] = held[--nheld];
		}
		if (r % 211 == 0) {
			now += 20; // some leases expire and run twice
		}
		if (r % 1009 == 0) {
			sched_job_reclaim(j, r % 5);
		}
	}
	if (!sched_job_finished(j)) {
		fail_msg("done %u leased %u held %zu",
		    sched_job_done_count(j), sched_job_leased_count(j), nheld);
	}
	assert_int_equal(ok, NB);
	assert_true(again > 0);
	assert_int_equal(sched_job_done_count(j), NB);
	free(held);
	sched_job_free(j);
}

// Leases ahead of arrival: a batch ready by ready_by_ms is leased; one
// that comes back before its arrival is pending but not ready until then,
// and only a call that reaches it leases it again.
static void
test_job_lease_ahead(void **st)
{
	(void) st;
	sched_job *j;
	uint32_t b, att;
	// 10 queries/s, batches of 5: batch k ready at 1000 + (5k + 4) * 100.
	IDN_PASS(sched_job_new(20, 5, 10, 1000, &j));
	assert_int_equal(sched_job_ready_at(j, 0), 1400);
	assert_int_equal(sched_job_ready_at(j, 1), 1900);
	assert_int_equal(sched_job_ready_at(j, 4), UINT64_MAX);
	IDN_FAIL(sched_job_lease_ahead(j, 1, 1000, 1399, 5000, &b, &att),
	    IDN_ENOENT);
	IDN_PASS(sched_job_lease_ahead(j, 1, 1000, 1900, 5000, &b, &att));
	assert_int_equal(b, 0);
	IDN_PASS(sched_job_lease_ahead(j, 1, 1000, 1900, 5000, &b, &att));
	assert_int_equal(b, 1);
	IDN_FAIL(sched_job_lease_ahead(j, 1, 1000, 1900, 5000, &b, &att),
	    IDN_ENOENT);
	// A ready_by before now counts as now.
	IDN_FAIL(sched_job_lease_ahead(j, 2, 1000, 0, 5000, &b, &att),
	    IDN_ENOENT);
	// Batch 1 comes back (its holder failed) before it arrived.
	assert_int_equal(sched_job_reclaim(j, 1), 2);
	assert_false(sched_job_ready(j, 1399)); // batch 0 was ahead too
	assert_true(sched_job_ready(j, 1400));
	assert_int_equal(sched_job_next_ready_ms(j, 1000), 1400);
	IDN_FAIL(sched_job_lease(j, 2, 1300, 5000, &b, &att), IDN_ENOENT);
	IDN_PASS(sched_job_lease(j, 2, 1400, 5000, &b, &att));
	assert_int_equal(b, 0);
	assert_int_equal(att, 2);
	assert_false(sched_job_ready(j, 1899));
	assert_int_equal(sched_job_next_ready_ms(j, 1400), 1900);
	IDN_PASS(sched_job_lease_ahead(j, 2, 1400, 1900, 5000, &b, &att));
	assert_int_equal(b, 1);
	assert_int_equal(att, 2);
	// Done in time: exactly once as before.
	IDN_PASS(sched_job_complete(j, 1, 1950));
	IDN_FAIL(sched_job_complete(j, 1, 1960), IDN_EEXIST);
	sched_job_free(j);
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
