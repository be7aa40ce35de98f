// SPDX-License-Identifier: MIT
// sched.c: the scheduler's benchmark. Part (e), the coordinator's own cost
// without RPC: lease + complete operations per second and p99 per operation
// on the pure batch/lease table, the fair allocation's time for 10 jobs on
// 100 workers, and the statistics' add and summary cost.
//   bench/sched [e]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "sched/fair.h"
#include "sched/job.h"
#include "sched/stats.h"

#define LEASE_MS 5000

static double
now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double) t.tv_sec * 1e6 + (double) t.tv_nsec / 1e3;
}

static void
summary(sched_stats *s, sched_summary *m)
{
	sched_stats_summary(s, 0, m);
}

// A coordinator's load: 16 workers each holding up to 4 leases, renewing
// them, completing them (some twice, as after a takeover), now and then a
// worker failing; time advances 1 ms per 20 operations so leases expire.
static int
bench_leases(void)
{
	enum { BATCHES = 1000000, WORKERS = 16, HOLD = 4 };
	sched_job *j;
	sched_stats *lat;
	int rv = sched_job_new(BATCHES, 1, 1e9, 0, &j);
	if (rv != IDN_OK || (rv = sched_stats_new(&lat)) != IDN_OK) {
		return rv;
	}
	uint32_t held[WORKERS][HOLD];
	size_t nheld[WORKERS] = {0};
	uint64_t now = 1000, ops = 0, again = 0;
	uint32_t x = 1;
	double t0 = now_us();
	while (!sched_job_finished(j)) {
		x = x * 1103515245u + 12345u;
		size_t w = (x >> 16) % WORKERS;
		double a = now_us();
		uint32_t b, att;
		if (nheld[w] < HOLD) {
			rv = sched_job_lease(j, w, now, LEASE_MS, &b, &att);
			if (rv == IDN_OK) {
				held[w][nheld[w]++] = b;
				again += att > 1;
			}
		} else {
			b = held[w][--nheld[w]];
			sched_job_complete(j, b, now);
			if ((x >> 8) % 64 == 0) {
				sched_job_renew(j, held[w][0], w, now,
				    LEASE_MS);
			}
			if ((x >> 4) % 4096 == 0) {
				sched_job_reclaim(j, w);
				nheld[w] = 0;
			}
		}
		sched_stats_add(lat, now_us() - a, 1, now);
		if (++ops % 20 == 0) {
			now++;
		}
		if (ops > 20 * (uint64_t) BATCHES) {
			break;
		}
	}
	double secs = (now_us() - t0) / 1e6;
	sched_summary m;
	summary(lat, &m);
	printf("(e) lease table: %llu batches, %llu lease/complete/renew ops "
	       "in %.2f s: %.0f ops/s (timing included), per op mean %.2f us, "
	       "p99 %.2f us; %llu leases reclaimed or expired\n",
	    (unsigned long long) sched_job_done_count(j),
	    (unsigned long long) ops, secs, (double) ops / secs, m.mean,
	    m.p99, (unsigned long long) again);
	printf("(e) goal >= 5000 ops/s, p99 < 5 ms (this part has no RPC): "
	       "%s\n", (double) ops / secs >= 5000 && m.p99 < 5000 ?
	    "met" : "NOT met");
	sched_stats_free(lat);
	sched_job_free(j);
	return IDN_OK;
}

static int
bench_alloc(void)
{
	enum { JOBS = 10, WORKERS = 100, ROUNDS = 2000 };
	sched_fair_job jobs[JOBS];
	uint64_t keys[WORKERS];
	for (size_t i = 0; i < WORKERS; i++) {
		keys[i] = 1000 + i;
	}
	for (size_t i = 0; i < JOBS; i++) {
		jobs[i] = (sched_fair_job) {.id = i + 1,
		    .task_ms = 20.0 + 31.0 * (double) i, .task_size = 32,
		    .offered_qps = 1e6, .backlog = 1e4};
	}
	jobs[3].offered_qps = 200; // one job below its share
	jobs[3].backlog = 0;
	sched_stats *fresh, *again;
	int rv = sched_stats_new(&fresh);
	if (rv != IDN_OK || (rv = sched_stats_new(&again)) != IDN_OK) {
		return rv;
	}
	sched_alloc prev = {0};
	size_t kept = 0, shared = 0, moved = 0;
	double ratio = 0;
	uint32_t x = 3;
	for (int r = 0; r < ROUNDS; r++) {
		sched_alloc a;
		double t = now_us();
		rv = sched_fair_assign(jobs, JOBS, keys, WORKERS, NULL, 0.05,
		    &a);
		sched_stats_add(fresh, now_us() - t, 1, 0);
		if (rv != IDN_OK) {
			return rv;
		}
		ratio = a.ratio;
		shared = 0;
		for (size_t i = 0; i < a.nworkers; i++) {
			shared += a.nshares[i] > 1;
		}
		sched_alloc_free(&a);
		// Re-runs on fresh measurements with 2% noise, against prev.
		for (size_t i = 0; i < JOBS; i++) {
			x = x * 1103515245u + 12345u;
			double base = 20.0 + 31.0 * (double) i;
			jobs[i].task_ms = base * (0.98 + 0.04 *
			    (double) (x >> 16) / 65536.0);
		}
		t = now_us();
		rv = sched_fair_assign(jobs, JOBS, keys, WORKERS,
		    r > 0 ? &prev : NULL, 0.05, &a);
		sched_stats_add(again, now_us() - t, 1, 0);
		if (rv != IDN_OK) {
			return rv;
		}
		kept += a.kept;
		moved += r > 0 ? a.moved : 0;
		sched_alloc_free(&prev);
		prev = a;
	}
	sched_summary f, g;
	summary(fresh, &f);
	summary(again, &g);
	printf("(e) allocation, %d jobs x %d workers: fresh mean %.1f us, "
	       "p99 %.1f us (predicted max/min %.4f, %zu workers shared); "
	       "with prev and 2%% noise: mean %.1f us, p99 %.1f us, kept "
	       "%zu of %d, %.2f workers changed per run\n", JOBS, WORKERS,
	    f.mean, f.p99, ratio, shared, g.mean, g.p99, kept, ROUNDS - 1,
	    (double) moved / (ROUNDS - 1));
	sched_alloc_free(&prev);
	sched_stats_free(fresh);
	sched_stats_free(again);
	return IDN_OK;
}

static int
bench_stats(void)
{
	enum { N = 1000000 };
	sched_stats *s;
	int rv = sched_stats_new(&s);
	if (rv != IDN_OK) {
		return rv;
	}
	uint32_t x = 5;
	double t = now_us();
	for (uint64_t i = 0; i < N; i++) {
		x = x * 1103515245u + 12345u;
		sched_stats_add(s, (double) (x >> 8) / 1000.0, 1, i / 100);
	}
	double add_us = (now_us() - t) / N;
	sched_summary m;
	t = now_us();
	summary(s, &m);
	double sum_ms = (now_us() - t) / 1000;
	printf("(e) statistics: add %.3f us per sample, summary of %d "
	       "samples %.1f ms\n", add_us, N, sum_ms);
	sched_stats_free(s);
	return IDN_OK;
}

int
main(int argc, char **argv)
{
	const char *part = argc > 1 ? argv[1] : "e";
	if (strchr(part, 'e') == NULL) {
		fprintf(stderr, "usage: sched [e]\n");
		return 2;
	}
	int rv;
	if ((rv = bench_leases()) != IDN_OK || (rv = bench_alloc()) != IDN_OK ||
	    (rv = bench_stats()) != IDN_OK) {
		fprintf(stderr, "sched bench: %s\n", idn_strerror(rv));
		return 1;
	}
	return 0;
}
