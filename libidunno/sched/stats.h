// SPDX-License-Identifier: MIT
// stats.h: streaming statistics of one measure of one job (e.g. per-query
// processing time): count, mean, stddev, exact percentiles, overall and
// 10 s rates. Pure: time is passed in; no locks (the owner locks).
#ifndef IDN_SCHED_STATS_H
#define IDN_SCHED_STATS_H

#include <stdint.h>

typedef struct sched_stats sched_stats;

// sched_stats_new makes an empty one. IDN_ENOMEM.
int sched_stats_new(sched_stats **out);
// sched_stats_free accepts NULL.
void sched_stats_free(sched_stats *s);
// sched_stats_add adds count samples of value (e.g. ms) observed at now_ms
// (monotonic or wall; the caller stays consistent). A batch of queries with
// the same value is one call. Amortised O(log n); cannot fail (out of
// memory keeps count, mean and rates but drops the sample from the
// percentiles). NaN values and count 0 are ignored.
void sched_stats_add(sched_stats *s, double value, uint64_t count,
    uint64_t now_ms);

typedef struct sched_summary {
	uint64_t count;
	double mean;
	double stddev; // population: divides by count
	// Exact percentiles, linearly interpolated between the two nearest
	// ranks (position p * (count - 1), as numpy's default): 1..100 gives
	// median 50.5, p90 90.1, p99 99.01.
	double median, p90, p95, p99;
	double rate;     // count / (last - first sample time) per second; 0
	                 // while all samples share one time
	double rate_10s; // samples in (now - 10 s, now] / 10 s, or / the time
	                 // since the first sample (at least 1 s) when younger
} sched_summary;

// sched_stats_summary fills *out (all zero when empty). O(n) at worst when
// many samples arrived since the last summary; meant for about once a
// second.
void sched_stats_summary(const sched_stats *s, uint64_t now_ms,
    sched_summary *out);

#endif
