// SPDX-License-Identifier: MIT
// fair.c: the fair-time allocation. Three steps: water-filling gives each
// job its fair number of workers as a real number; whole workers are used
// when some rounding of those is within SCHED_FAIR_WHOLE_TOL of fair, else
// the fractions are packed onto a few time-shared workers (McNaughton's
// wrap-around); then the rows go to workers so that each stays on its job
// where it can. Against a previous allocation, hysteresis keeps it while it
// is nearly as fair as the new one.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "sched/fair.h"

#define EPS 1e-9

// Per job: workers' worth of rate (r), demand (d), fair target (w), and the
// target the ratio is measured against (t: w, or d when all are satisfied).
typedef struct {
	double r;
	double d;
	double w;
	double t;
	bool active;
} jplan;

typedef struct {
	size_t *whole;     // per job, whole workers
	sched_share *rows; // shared rows, each up to nj shares, row-major
	size_t *rown;      // shares per shared row
	size_t nrows;
	size_t nj;
} plan;

static bool
bad_num(double x)
{
	return isnan(x) || isinf(x);
}

static bool
prev_ok(const sched_alloc *prev)
{
	if (prev->nworkers > 0 &&
	    (prev->nshares == NULL || prev->shares == NULL)) {
		return false;
	}
	for (size_t i = 0; i < prev->nworkers; i++) {
		if (prev->nshares[i] > 0 && prev->shares[i] == NULL) {
			return false;
		}
		for (size_t k = 0; k < prev->nshares[i]; k++) {
			double sh = prev->shares[i][k].share;
			if (!(sh >= 0) || sh > 1 + 1e-6) {
				return false;
			}
		}
	}
	return true;
}

static int
check_args(const sched_fair_job *jobs, size_t njobs,
    const uint64_t *worker_keys, size_t nworkers, const sched_alloc *prev,
    double hysteresis, sched_alloc *out)
{
	if (out == NULL || (njobs > 0 && jobs == NULL) ||
	    (nworkers > 0 && worker_keys == NULL) || !(hysteresis >= 0) ||
	    isinf(hysteresis) || (prev != NULL && !prev_ok(prev))) {
		return IDN_EINVAL;
	}
	for (size_t i = 0; i < njobs; i++) {
		const sched_fair_job *j = &jobs[i];
		if (!(j->task_ms > 0) || bad_num(j->task_ms) ||
		    j->task_size == 0 || !(j->offered_qps >= 0) ||
		    bad_num(j->offered_qps) || !(j->backlog >= 0) ||
		    bad_num(j->backlog)) {
			return IDN_EINVAL;
		}
		for (size_t k = 0; k < i; k++) {
			if (jobs[k].id == j->id) {
				return IDN_EINVAL;
			}
		}
	}
	for (size_t i = 0; i < nworkers; i++) {
		for (size_t k = 0; k < i; k++) {
			if (worker_keys[k] == worker_keys[i]) {
				return IDN_EINVAL;
			}
		}
	}
	return IDN_OK;
}


static double
demand_qps(const sched_fair_job *j)
{
	return j->offered_qps + j->backlog * 1000.0 / SCHED_FAIR_DRAIN_MS;
}

static int
cmp_double_desc(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return (x < y) - (x > y);
}

// Water-filling: the level lambda (a query rate) with
// sum_j clamp(lambda / r_j, lo_j, hi_j) = W, where (phase 1, demand above
// W) lo = 0 and hi = d, or (phase 2, all demand met) lo = d and hi = inf.
// Solved exactly by walking the jobs' breakpoints in rate order.
static void
water_fill(jplan *p, size_t nj, double W)
{
	double dsum = 0;
	size_t na = 0;
	for (size_t i = 0; i < nj; i++) {
		if (p[i].active) {
			dsum += p[i].d;
			na++;
		}
	}
	bool phase1 = dsum >= W;
	double *cap = malloc(na * sizeof(double) * 2);
	size_t n = 0;
	// Breakpoint rates d_j * r_j, sorted: ascending for phase 1 (jobs
	// below the level are capped at their demand), descending for phase 2
	// (jobs above the level keep their demand).
	double inv = 0, left = W;
	for (size_t i = 0; i < nj; i++) {
		if (p[i].active) {
			if (cap != NULL) {
				cap[2 * n] = p[i].d * p[i].r;
				cap[2 * n + 1] = (double) i;
				n++;
			}
			inv += 1.0 / p[i].r;
		}
	}
	double lambda;
	if (cap == NULL) {
		lambda = W / inv; // out of memory: plain equal rates
	} else {
		qsort(cap, n, 2 * sizeof(double), cmp_double_desc);
		lambda = left / inv;
		if (phase1) {
			for (size_t k = n; k-- > 0;) {
				size_t i = (size_t) cap[2 * k + 1];
				if (cap[2 * k] > lambda) {
					break;
				}
				left -= p[i].d;
				inv -= 1.0 / p[i].r;
				lambda = --na > 0 ? left / inv : INFINITY;
			}
		} else {
			for (size_t k = 0; k < n; k++) {
				size_t i = (size_t) cap[2 * k + 1];
				if (cap[2 * k] <= lambda) {
					break;
				}
				left -= p[i].d;
				inv -= 1.0 / p[i].r;
				lambda = --na > 0 ? left / inv : 0;
			}
		}
	}
	free(cap);
	for (size_t i = 0; i < nj; i++) {
		if (!p[i].active) {
			continue;
		}
		double x = lambda / p[i].r;
		p[i].w = phase1 ? CORE_MIN(x, p[i].d) : CORE_MAX(x, p[i].d);
		p[i].t = phase1 ? p[i].w : p[i].d;
	}
}

// The ratio of an allocation giving job j x[j] workers: max/min over active
// jobs of min(x, d) / t (1 = fair; infinite when an active job gets none).
static double
ratio_of(const jplan *p, size_t nj, const double *x)
{
	double lo = INFINITY, hi = 0;
	for (size_t i = 0; i < nj; i++) {
		if (p[i].active) {
			double g = CORE_MIN(x[i], p[i].d) / p[i].t;
			lo = CORE_MIN(lo, g);
			hi = CORE_MAX(hi, g);
		}
	}
	if (hi == 0) {
		return 1; // no active job
	}
	return lo > 0 ? hi / lo : INFINITY;
}

// Whole workers for a minimum level rho: each job the fewest workers with
// min(n, d) / t >= rho, the rest one by one where they raise the maximum
// least. Returns false when that needs more than W workers.
static bool
whole_for(const jplan *p, size_t nj, size_t W, double rho, size_t *n,
    double *x)
{
	size_t used = 0;
	for (size_t i = 0; i < nj; i++) {
		n[i] = 0;
		if (p[i].active) {
			n[i] = (size_t) ceil(rho * p[i].t - EPS);
			n[i] = CORE_MAX(n[i], (size_t) 1);
		}
		used += n[i];
		x[i] = (double) n[i];
	}
	if (used > W) {
		return false;
	}
	for (; used < W; used++) {
		size_t best = nj;
		double bg = 0, bw = 0;
		for (size_t i = 0; i < nj; i++) {
			if (!p[i].active) {
				continue;
			}
			double g = CORE_MIN(x[i] + 1, p[i].d) / p[i].t;
			double fill = (x[i] + 1) / p[i].w;
			if (best == nj || g < bg - EPS ||
			    (g < bg + EPS && fill < bw)) {
				best = i;
				bg = g;
				bw = fill;
			}
		}
		if (best == nj) {
			break;
		}
		n[best]++;
		x[best] += 1;
	}
	return true;
}

// The best whole-worker allocation with its minimum level at least
// 1 / (1 + SCHED_FAIR_WHOLE_TOL); returns its ratio (INFINITY: none).
static double
best_whole(const jplan *p, size_t nj, size_t W, size_t *best)
{
	size_t *n = malloc(nj * sizeof(size_t));
	double *x = malloc(nj * sizeof(double));
	double bq = INFINITY;
	double floor_rho = 1.0 / (1.0 + SCHED_FAIR_WHOLE_TOL);
	if (n == NULL || x == NULL) {
		goto out;
	}
	// The realised minimum is some n / t_j in [floor_rho, 1], or 1.
	for (size_t i = 0; i <= nj; i++) {
		double lo = i < nj ? ceil(floor_rho * p[i].t - EPS) : 0;
		double hi = i < nj ? floor(p[i].t + EPS) : 1;
		if (i < nj && !p[i].active) {
			continue;
		}
		for (double k = i < nj ? CORE_MAX(lo, 1.0) : 0; k <= hi;
		    k += 1) {
			double rho = i < nj ? k / p[i].t :
			    (k == 0 ? floor_rho : 1.0);
			if (!whole_for(p, nj, W, CORE_MIN(rho, 1.0), n, x)) {
				continue;
			}
			double q = ratio_of(p, nj, x);
			if (q < bq - EPS) {
				bq = q;
				memcpy(best, n, nj * sizeof(size_t));
			}
		}
	}
out:
	free(n);
	free(x);
	return bq;
}

static size_t
job_index(const sched_fair_job *jobs, size_t nj, uint64_t id)
{
	size_t i = 0;
	while (i < nj && jobs[i].id != id) {
		i++;
	}
	return i;
}

static void
plan_free(plan *pl)
{
	free(pl->whole);
	free(pl->rows);
	free(pl->rown);
	memset(pl, 0, sizeof(*pl));
}

// Time-sharing: whole workers for the integer parts of w, the fractions
// packed in job order onto the remaining workers, each filled to 1 before
// the next (a job's fraction spans at most two workers).
static int
shared_plan(const sched_fair_job *jobs, const jplan *p, size_t nj, size_t W,
    plan *pl)
{
	size_t used = 0;
	for (size_t i = 0; i < nj; i++) {
		pl->whole[i] = 0;
		if (p[i].active) {
			pl->whole[i] = (size_t) floor(p[i].w + EPS);
		}
		used += pl->whole[i];
	}
	size_t K = used < W ? W - used : 0;
	if (K == 0) {
		return IDN_OK;
	}
	pl->rows = core_alloc(K * nj * sizeof(sched_share));
	pl->rown = core_alloc(K * sizeof(size_t));
	if (pl->rows == NULL || pl->rown == NULL) {
		return IDN_ENOMEM;
	}
	size_t r = 0;
	double room = 1;
	size_t last_job = nj;
	for (size_t i = 0; i < nj && r < K; i++) {
		if (!p[i].active) {
			continue;
		}
		double f = p[i].w - (double) pl->whole[i];
		last_job = i;
		while (f > EPS && r < K) {
			double take = CORE_MIN(f, room);
			sched_share *row = &pl->rows[r * nj];
			row[pl->rown[r]++] = (sched_share) {jobs[i].id, take};
			f -= take;
			room -= take;
			if (room <= EPS) {
				r++;
				room = 1;
			}
		}
	}
	// Rounding may leave the last row short: it still goes to the last
	// job rather than idle (work-conserving).
	for (; r < K && last_job < nj; r++) {
		sched_share *row = &pl->rows[r * nj];
		double sum = 0;
		for (size_t k = 0; k < pl->rown[r]; k++) {
			sum += row[k].share;
		}
		if (pl->rown[r] > 0 && row[pl->rown[r] - 1].job ==
		    jobs[last_job].id) {
			row[pl->rown[r] - 1].share += 1 - sum;
		} else {
			row[pl->rown[r]++] = (sched_share) {jobs[last_job].id,
			    1 - sum};
		}
		room = 1;
	}
	pl->nrows = K;
	return IDN_OK;
}

// The ratio a plan gets (x: scratch, one per job).
static double
plan_ratio(const sched_fair_job *jobs, const jplan *p, size_t nj,
    const plan *pl, double *x)
{
	for (size_t i = 0; i < nj; i++) {
		x[i] = (double) pl->whole[i];
	}
	for (size_t r = 0; r < pl->nrows; r++) {
		for (size_t k = 0; k < pl->rown[r]; k++) {
			sched_share s = pl->rows[r * nj + k];
			x[job_index(jobs, nj, s.job)] += s.share;
		}
	}
	return ratio_of(p, nj, x);
}

static int
cmp_share_desc(const void *a, const void *b)
{
	const sched_share *x = a, *y = b;
	if (x->share != y->share) {
		return (x->share < y->share) - (x->share > y->share);
	}
	return (x->job > y->job) - (x->job < y->job);
}

void
sched_alloc_free(sched_alloc *a)
{
	if (a == NULL) {
		return;
	}
	for (size_t i = 0; a->shares != NULL && i < a->nworkers; i++) {
		free(a->shares[i]);
	}
	free(a->shares);
	free(a->nshares);
	free(a->workers);
	memset(a, 0, sizeof(*a));
}

double
sched_alloc_job_workers(const sched_alloc *a, uint64_t job)
{
	double sum = 0;
	for (size_t i = 0; a != NULL && i < a->nworkers; i++) {
		for (size_t k = 0; k < a->nshares[i]; k++) {
			if (a->shares[i][k].job == job) {
				sum += a->shares[i][k].share;
			}
		}
	}
	return sum;
}

static int
set_row(sched_alloc *a, size_t i, const sched_share *s, size_t n)
{
	free(a->shares[i]);
	a->shares[i] = NULL;
	a->nshares[i] = 0;
	if (n == 0) {
		return IDN_OK;
	}
	if ((a->shares[i] = malloc(n * sizeof(sched_share))) == NULL) {
		return IDN_ENOMEM;
	}
	memcpy(a->shares[i], s, n * sizeof(sched_share));
	qsort(a->shares[i], n, sizeof(sched_share), cmp_share_desc);
	a->nshares[i] = n;
	return IDN_OK;
}

// prev's row for worker i, or -1.
static ptrdiff_t
prev_row(const sched_alloc *prev, const uint64_t *keys, size_t i)
{
	if (prev == NULL) {
		return -1;
	}
	if (prev->workers == NULL) {
		return i < prev->nworkers ? (ptrdiff_t) i : -1;
	}
	for (size_t k = 0; k < prev->nworkers; k++) {
		if (prev->workers[k] == keys[i]) {
			return (ptrdiff_t) k;
		}
	}
	return -1;
}

// Whether prev covers the same workers and the same active jobs; fills
// x[j] with the workers' worth prev gives job j.
static bool
prev_same(const sched_alloc *prev, const sched_fair_job *jobs,
    const jplan *p, size_t nj, const ptrdiff_t *prow, size_t W, double *x)
{
	if (prev->nworkers != W) {
		return false;
	}
	for (size_t i = 0; i < nj; i++) {
		x[i] = 0;
	}
	for (size_t i = 0; i < W; i++) {
		if (prow[i] < 0) {
			return false;
		}
		size_t r = (size_t) prow[i];
		for (size_t k = 0; k < prev->nshares[r]; k++) {
			size_t j = job_index(jobs, nj, prev->shares[r][k].job);
			if (j == nj || !p[j].active) {
				return false;
			}
			x[j] += prev->shares[r][k].share;
		}
	}
	for (size_t i = 0; i < nj; i++) {
		if (p[i].active && x[i] <= EPS) {
			return false;
		}
	}
	return true;
}

static bool
row_equal(const sched_share *a, size_t na, const sched_share *b, size_t nb)
{
	if (na != nb) {
		return false;
	}
	for (size_t i = 0; i < na; i++) {
		size_t k = 0;
		while (k < nb && b[k].job != a[i].job) {
			k++;
		}
		if (k == nb || fabs(b[k].share - a[i].share) > 1e-6) {
			return false;
		}
	}
	return true;
}

// The job prev gave worker row r most of its time, or nj.
static size_t
prev_main(const sched_alloc *prev, ptrdiff_t r, const sched_fair_job *jobs,
    size_t nj, bool whole_only)
{
	if (r < 0 || prev->nshares[r] == 0) {
		return nj;
	}
	const sched_share *s = prev->shares[r];
	size_t best = 0;
	for (size_t k = 1; k < prev->nshares[r]; k++) {
		if (s[k].share > s[best].share) {
			best = k;
		}
	}
	if (whole_only && (prev->nshares[r] != 1 || s[best].share < 1 - 1e-6)) {
		return nj;
	}
	return job_index(jobs, nj, s[best].job);
}

// How much of row b's time row a already gives the same jobs.
static double
overlap(const sched_share *a, size_t na, const sched_share *b, size_t nb)
{
	double o = 0;
	for (size_t k = 0; k < nb; k++) {
		for (size_t m = 0; m < na; m++) {
			if (a[m].job == b[k].job) {
				o += CORE_MIN(a[m].share, b[k].share);
			}
		}
	}
	return o;
}

// Gives the plan's rows to workers: first each worker whole on its old job
// while that job has whole workers left, then shared rows to the workers
// whose old rows overlap them most, then old main jobs, then the rest in
// order.
static int
place(const sched_fair_job *jobs, size_t nj, plan *pl, size_t W,
    const sched_alloc *prev, const ptrdiff_t *prow, sched_alloc *a)
{
	int rv = IDN_OK;
	bool *done = core_alloc(W * sizeof(bool));
	bool *row_done = core_alloc((pl->nrows + 1) * sizeof(bool));
	if (done == NULL || row_done == NULL) {
		rv = IDN_ENOMEM;
		goto out;
	}
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < W && rv == 0 && prev != NULL; i++) {
			if (done[i]) {
				continue;
			}
			size_t j = prev_main(prev, prow[i], jobs, nj,
			    pass == 0);
			if (j < nj && pl->whole[j] > 0) {
				sched_share s = {jobs[j].id, 1};
				rv = set_row(a, i, &s, 1);
				pl->whole[j]--;
				done[i] = true;
			}
		}
		if (pass == 1) {
			break;
		}
		for (size_t r = 0; r < pl->nrows && rv == 0 && prev != NULL;
		    r++) {
			const sched_share *row = &pl->rows[r * nj];
			size_t best = W;
			double bo = EPS;
			for (size_t i = 0; i < W; i++) {
				if (done[i] || prow[i] < 0) {
					continue;
				}
				double o = overlap(prev->shares[prow[i]],
				    prev->nshares[prow[i]], row, pl->rown[r]);
				if (o > bo) {
					best = i;
					bo = o;
				}
			}
			if (best < W) {
				rv = set_row(a, best, row, pl->rown[r]);
				done[best] = true;
				row_done[r] = true;
			}
		}
	}
	size_t i = 0;
	for (size_t r = 0; r < pl->nrows && rv == 0; r++) {
		if (row_done[r]) {
			continue;
		}
		while (i < W && done[i]) {
			i++;
		}
		if (i < W) {
			rv = set_row(a, i, &pl->rows[r * nj], pl->rown[r]);
			done[i] = true;
		}
	}
	for (size_t j = 0; j < nj && rv == 0; j++) {
		for (; pl->whole[j] > 0 && rv == 0; pl->whole[j]--) {
			while (i < W && done[i]) {
				i++;
			}
			if (i == W) {
				break;
			}
			sched_share s = {jobs[j].id, 1};
			rv = set_row(a, i, &s, 1);
			done[i] = true;
		}
	}
out:
	free(done);
	free(row_done);
	return rv;
}

int
sched_fair_assign(const sched_fair_job *jobs, size_t njobs,
    const uint64_t *worker_keys, size_t nworkers, const sched_alloc *prev,
    double hysteresis, sched_alloc *out)
{
	int rv = check_args(jobs, njobs, worker_keys, nworkers, prev,
	    hysteresis, out);
	if (rv != IDN_OK) {
		return rv;
	}
	sched_alloc a = {0};
	plan pl = {0};
	jplan *p = core_alloc((njobs + 1) * sizeof(jplan));
	double *x = core_alloc((njobs + 1) * sizeof(double));
	ptrdiff_t *prow = core_alloc((nworkers + 1) * sizeof(ptrdiff_t));
	a.nworkers = nworkers;
	a.workers = core_alloc((nworkers + 1) * sizeof(uint64_t));
	a.nshares = core_alloc((nworkers + 1) * sizeof(size_t));
	a.shares = core_alloc((nworkers + 1) * sizeof(sched_share *));
	pl.nj = njobs;
	pl.whole = core_alloc((njobs + 1) * sizeof(size_t));
	if (p == NULL || x == NULL || prow == NULL || a.workers == NULL ||
	    a.nshares == NULL || a.shares == NULL || pl.whole == NULL) {
		rv = IDN_ENOMEM;
		goto out;
	}
	if (nworkers > 0) {
		memcpy(a.workers, worker_keys, nworkers * sizeof(uint64_t));
	}
	for (size_t i = 0; i < nworkers; i++) {
		prow[i] = prev_row(prev, worker_keys, i);
	}
	bool any = false;
	for (size_t i = 0; i < njobs; i++) {
		const sched_fair_job *j = &jobs[i];
		p[i].r = (double) j->task_size * 1000.0 / j->task_ms;
		p[i].d = demand_qps(j) / p[i].r;
		p[i].active = p[i].d > EPS;
		any = any || p[i].active;
	}
	a.ratio = 1;
	if (any && nworkers > 0) {
		water_fill(p, njobs, (double) nworkers);
		a.ratio = best_whole(p, njobs, nworkers, pl.whole);
		if (a.ratio > 1 + SCHED_FAIR_WHOLE_TOL + EPS) {
			if ((rv = shared_plan(jobs, p, njobs, nworkers,
			         &pl)) != IDN_OK) {
				goto out;
			}
			a.ratio = plan_ratio(jobs, p, njobs, &pl, x);
		}
		if (prev != NULL &&
		    prev_same(prev, jobs, p, njobs, prow, nworkers, x)) {
			double qp = ratio_of(p, njobs, x);
			if (qp <= SCHED_FAIR_MAX_RATIO + EPS &&
			    qp <= a.ratio * (1 + hysteresis) + EPS) {
				for (size_t i = 0; i < nworkers && rv == 0;
				    i++) {
					size_t r = (size_t) prow[i];
					rv = set_row(&a, i, prev->shares[r],
					    prev->nshares[r]);
				}
				a.ratio = qp;
				a.kept = true;
				goto out;
			}
		}
	}
	rv = place(jobs, njobs, &pl, nworkers, prev, prow, &a);
	for (size_t i = 0; i < nworkers && rv == 0; i++) {
		if (prow[i] < 0 || !row_equal(a.shares[i], a.nshares[i],
		    prev->shares[prow[i]], prev->nshares[prow[i]])) {
			a.moved++;
		}
	}
out:
	free(p);
	free(x);
	free(prow);
	plan_free(&pl);
	if (rv != IDN_OK) {
		sched_alloc_free(&a);
		return rv;
	}
	*out = a;
	return IDN_OK;
}

bool
sched_fair_backlogged(const sched_alloc *a, const sched_fair_job *job)
{
	if (job == NULL || !(job->task_ms > 0)) {
		return false;
	}
	double r = sched_alloc_job_workers(a, job->id) * job->task_size * 1000.0 /
	    job->task_ms;
	double need = demand_qps(job);
	return need > 0 && r < need * 0.98;
}

int
sched_fair_pick(const sched_share *shares, size_t n, const double *served_ms,
    const bool *ready)
{
	if (shares == NULL || served_ms == NULL || ready == NULL) {
		return -1;
	}
	int best = -1;
	double bk = 0;
	for (size_t i = 0; i < n && i < (size_t) INT32_MAX; i++) {
		if (!ready[i]) {
			continue;
		}
		double k = shares[i].share > 0 ?
		    served_ms[i] / shares[i].share : INFINITY;
		if (best < 0 || k < bk) {
			best = (int) i;
			bk = k;
		}
	}
	return best;
}
