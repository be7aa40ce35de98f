// SPDX-License-Identifier: MIT
// sched_job_test.c: streaming statistics and the task/lease table (the
// jobs' arrivals, leases, expiry, exactly-once completion, restore).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sched/job.h"
#include "sched/stats.h"
#include "sched_test.h"

void
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
void
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

void
test_stats_rates(void **st)
{
	sched_stats *s;
	sched_summary m;
	IDN_PASS(sched_stats_new(&s));
	// A task of 4 queries every 100 ms from t = 0 to 19.9 s: 40 qps.
	for (uint64_t t = 0; t < 20000; t += 100) {
		sched_stats_add(s, 7, 4, t);
		if (t == 4900) {
			// Younger than 10 s: divided by the time so far.
			sched_stats_summary(s, 5000, &m);
			assert_true(fabs(m.rate_10s - 40) < 1e-9);
		}
	}
	// (9.95 s, 19.95 s] holds the tasks of 10.0 s to 19.9 s.
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

void
test_job_arrivals(void **st)
{
	sched_job *j;
	uint32_t b, att;
	IDN_PASS(sched_job_new(100, 10, 20, 1000, &j));
	assert_int_equal(sched_job_ntasks(j), 10);
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

void
test_job_partial_and_order(void **st)
{
	sched_job *j;
	uint32_t b, att, n;
	uint64_t first;
	IDN_PASS(sched_job_new(25, 10, 1000, 0, &j));
	assert_int_equal(sched_job_ntasks(j), 3);
	sched_job_task_range(j, 2, &first, &n);
	assert_int_equal(first, 20);
	assert_int_equal(n, 5);
	// The last, partial task is ready when query 24 arrived.
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

void
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
	// Completing a task nobody leased (a restored ledger) counts too.
	IDN_PASS(sched_job_complete(j, 1, 170));
	assert_true(sched_job_finished(j));
	IDN_FAIL(sched_job_lease(j, 1, 200, 50, &b, &att), IDN_ENOENT);
	sched_job_free(j);
}

void
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
	// The expired task goes before the new ones, with attempt 2.
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

void
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

void
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

void
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
	assert_int_equal(sched_job_expire(j, 5000), 1); // task 4
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

// Many tasks, leases, renewals and completions in a random order: every
// task ends done exactly once and the counters agree.
void
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

// Leases ahead of arrival: a task ready by ready_by_ms is leased; one
// that comes back before its arrival is pending but not ready until then,
// and only a call that reaches it leases it again.
void
test_job_lease_ahead(void **st)
{
	(void) st;
	sched_job *j;
	uint32_t b, att;
	// 10 queries/s, tasks of 5: task k ready at 1000 + (5k + 4) * 100.
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
	assert_false(sched_job_ready(j, 1399)); // task 0 was ahead too
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
