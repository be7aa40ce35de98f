// SPDX-License-Identifier: MIT
// stats.c: streaming statistics: Welford moments, exact percentiles from a
// sorted array of (value, count) plus an unsorted tail merged in batches,
// and a ring of 10 ms buckets for the 10 s rate.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "sched/stats.h"

#define WINDOW_MS 10000
#define BUCKET_MS 10
#define NBUCKETS (WINDOW_MS / BUCKET_MS)
#define TAIL_MIN 1024

typedef struct {
	double v;
	uint64_t n;
} vcount;

typedef struct {
	vcount *v;
	size_t len;
	size_t cap;
} vcarray;

struct sched_stats {
	uint64_t count;
	double mean;
	double m2; // sum of squared deviations (weighted Welford)
	uint64_t first_ms;
	uint64_t last_ms;
	vcarray sorted; // ascending, distinct values
	vcarray tail;   // unsorted, merged into sorted when it grows
	uint64_t bucket_id[NBUCKETS]; // which 10 ms bucket a slot holds, + 1
	uint64_t bucket_n[NBUCKETS];
};

int
sched_stats_new(sched_stats **out)
{
	if (out == NULL) {
		return IDN_EINVAL;
	}
	sched_stats *s = core_alloc(sizeof(*s));
	if (s == NULL) {
		return IDN_ENOMEM;
	}
	*out = s;
	return IDN_OK;
}

void
sched_stats_free(sched_stats *s)
{
	if (s != NULL) {
		free(s->sorted.v);
		free(s->tail.v);
		free(s);
	}
}

static int
vc_cmp(const void *a, const void *b)
{
	double x = ((const vcount *) a)->v;
	double y = ((const vcount *) b)->v;
	return (x > y) - (x < y);
}

static bool
vc_reserve(vcarray *a, size_t cap)
{
	if (cap <= a->cap) {
		return true;
	}
	size_t ncap = a->cap ? a->cap : 64;
	while (ncap < cap) {
		ncap *= 2;
	}
	vcount *v = core_realloc(a->v, ncap * sizeof(*v));
	if (v == NULL) {
		return false;
	}
	a->v = v;
	a->cap = ncap;
	return true;
}

// Merges the sorted, distinct runs a and b into out (len a + b at most).
static size_t
vc_merge(const vcount *a, size_t na, const vcount *b, size_t nb,
    vcount *out)
{
	size_t i = 0, k = 0, n = 0;
	while (i < na || k < nb) {
		vcount x;
		if (k == nb || (i < na && a[i].v <= b[k].v)) {
			x = a[i++];
		} else {
			x = b[k++];
		}
		if (n > 0 && out[n - 1].v == x.v) {
			out[n - 1].n += x.n;
		} else {
			out[n++] = x;
		}
	}
	return n;
}

// Sorts tail in place and folds equal values together; returns its length.
static size_t
vc_sort_distinct(vcount *t, size_t n)
{
	qsort(t, n, sizeof(*t), vc_cmp);
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m > 0 && t[m - 1].v == t[i].v) {
			t[m - 1].n += t[i].n;
		} else {
			t[m++] = t[i];
		}
	}
	return m;
}

static void
fold_tail(sched_stats *s)
{
	size_t nt = vc_sort_distinct(s->tail.v, s->tail.len);
	vcount *m = malloc((s->sorted.len + nt) * sizeof(*m));
	if (m == NULL) {
		s->tail.len = nt; // sorted and folded: smaller, try again later
		return;
	}
	size_t n = vc_merge(s->sorted.v, s->sorted.len, s->tail.v, nt, m);
	free(s->sorted.v);
	s->sorted.v = m;
	s->sorted.len = n;
	s->sorted.cap = s->sorted.len + nt;
	s->tail.len = 0;
}

void
sched_stats_add(sched_stats *s, double value, uint64_t count,
    uint64_t now_ms)
{
	if (s == NULL || count == 0 || isnan(value)) {
		return;
	}
	if (s->count == 0) {
		s->first_ms = now_ms;
		s->last_ms = now_ms;
	}
	s->first_ms = CORE_MIN(s->first_ms, now_ms);
	s->last_ms = CORE_MAX(s->last_ms, now_ms);
	uint64_t total = s->count + count;
	double delta = value - s->mean;
	s->mean += delta * (double) count / (double) total;
	s->m2 += delta * (value - s->mean) * (double) count;
	s->count = total;

	uint64_t b = now_ms / BUCKET_MS;
	size_t slot = (size_t) (b % NBUCKETS);
	if (s->bucket_id[slot] == b + 1) {
		s->bucket_n[slot] += count;
	} else if (s->bucket_id[slot] < b + 1) {
		s->bucket_id[slot] = b + 1;
		s->bucket_n[slot] = count;
	} // else: older than the slot's bucket, outside any current window

	if (s->tail.len == s->tail.cap &&
	    s->tail.len >= CORE_MAX((size_t) TAIL_MIN, s->sorted.len / 16)) {
		fold_tail(s);
	}
	if (vc_reserve(&s->tail, s->tail.len + 1)) {
		s->tail.v[s->tail.len++] = (vcount) {value, count};
	}
}

// Fills the values at the ascending 0-based ranks want[0..n) (of the
// multiset a + b, both sorted) into got.
static void
ranks(const vcount *a, size_t na, const vcount *b, size_t nb,
    const uint64_t *want, size_t n, double *got)
{
	size_t i = 0, k = 0, w = 0;
	uint64_t below = 0; // samples before the current element
	while (w < n && (i < na || k < nb)) {
		vcount x;
		if (k == nb || (i < na && a[i].v <= b[k].v)) {
			x = a[i++];
		} else {
			x = b[k++];
		}
		while (w < n && want[w] < below + x.n) {
			got[w++] = x.v;
		}
		below += x.n;
	}
}

void
sched_stats_summary(const sched_stats *s, uint64_t now_ms,
    sched_summary *out)
{
	if (out == NULL) {
		return;
	}
	memset(out, 0, sizeof(*out));
	if (s == NULL || s->count == 0) {
		return;
	}
	out->count = s->count;
	out->mean = s->mean;
	out->stddev = sqrt(CORE_MAX(0.0, s->m2 / (double) s->count));

	// The tail is sorted in a copy: the summary does not change s.
	vcount *t = NULL;
	size_t nt = 0;
	uint64_t have = 0;
	if (s->tail.len > 0) {
		t = malloc(s->tail.len * sizeof(*t));
		if (t != NULL) {
			memcpy(t, s->tail.v, s->tail.len * sizeof(*t));
			nt = vc_sort_distinct(t, s->tail.len);
		}
	}
	for (size_t i = 0; i < s->sorted.len; i++) {
		have += s->sorted.v[i].n;
	}
	for (size_t i = 0; i < nt; i++) {
		have += t[i].n;
	}
	if (have > 0) {
		static const double ps[] = {0.5, 0.9, 0.95, 0.99};
		uint64_t want[8];
		double frac[4], got[8] = {0};
		for (size_t p = 0; p < 4; p++) {
			double pos = ps[p] * (double) (have - 1);
			uint64_t lo = (uint64_t) floor(pos);
			want[2 * p] = lo;
			want[2 * p + 1] = CORE_MIN(lo + 1, have - 1);
			frac[p] = pos - (double) lo;
		}
		ranks(s->sorted.v, s->sorted.len, t, nt, want, 8, got);
		double *dst[] = {&out->median, &out->p90, &out->p95, &out->p99};
		for (size_t p = 0; p < 4; p++) {
			*dst[p] = got[2 * p] +
			    (got[2 * p + 1] - got[2 * p]) * frac[p];
		}
	}
	free(t);

	if (s->last_ms > s->first_ms) {
		out->rate = (double) s->count * 1000.0 /
		    (double) (s->last_ms - s->first_ms);
	}
	uint64_t nb = now_ms / BUCKET_MS;
	uint64_t in_window = 0;
	for (size_t i = 0; i < NBUCKETS; i++) {
		uint64_t b = s->bucket_id[i];
		if (b != 0 && b - 1 <= nb && nb - (b - 1) < NBUCKETS) {
			in_window += s->bucket_n[i];
		}
	}
	uint64_t age = now_ms > s->first_ms ? now_ms - s->first_ms : 0;
	uint64_t span = CORE_MIN((uint64_t) WINDOW_MS, CORE_MAX(age, 1000));
	out->rate_10s = (double) in_window * 1000.0 / (double) span;
}
