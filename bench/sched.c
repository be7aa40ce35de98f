// SPDX-License-Identifier: MIT
// sched.c: the scheduler on local clusters (coordinator, standby, 1 to 8
// workers), through the public API only. Each part prints its figure and,
// where there is one, a ratio measured in the same run:
//   (a) throughput of a backlogged LeNet-5 job (torch, batch 32) on 1
//       worker (the training images as queries) / the raw backend loop
//       over the test images in-process, with the worker's model on a CPU
//       of its own (`cluster up --pin`) and without;
//   (b) throughput of a backlogged sim job on 8, 4, 2, 1 workers / linear;
//   (c) `infer add` of a second job to its first finished query while a
//       backlogged job runs;
//   (d) max/min rate of two backlogged sim jobs 4x apart in service time,
//       and the time until they are within 10%;
//   (e) coordinator lease calls/s and p99 from 4 and 8 threads standing
//       in for workers, and the lease calls/s the workers made during (b) and (d)
//       (`lease_ops`).
// (b) and (a) start clusters of fewer workers, so they run last.
//   bench/sched [PARTS]   (letters a..e, as one word or several; all)
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <idunno/idunno.h>

#include "bench.h"
#include "cluster.h"

#define NODES 10
#define WORKERS (NODES - 2)
#define FASHION "/usr/share/datasets/fashion-mnist"
#define QUERIES "bench/fmnist/test"
#define NQUERIES 10000
#define QUERIES_A "bench/fmnist/train"
#define BACKLOG 1e6 // offered q/s: far above any capacity here
#define SIM_B_MS 100

static th_cluster cl;
static idn_client *c;
static int workers; // alive workers
static bool pinned; // the next cluster's workers: --pin
static int failed;  // parts that could not measure
static char models[4096]; // build/models
static bool have_lenet5;

static void store_lenet5(void);

static double
now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

static void
die(const char *what, int rv, char *err)
{
	fprintf(stderr, "sched bench: %s: %s%s%s\n", what, idn_strerror(rv),
	    err ? ": " : "", err ? err : "");
	idn_free(err);
	idn_client_close(c);
	th_cluster_down(&cl);
	exit(1);
}

// The number after key in text (after the job's entry when job is set),
// or -1 (absent or null).
static double
field(const char *json, const char *job, const char *key)
{
	char k[128];
	const char *p = json;
	if (job != NULL) {
		snprintf(k, sizeof(k), "\"job\": \"%s\"", job);
		if ((p = strstr(json, k)) == NULL) {
			return -1;
		}
	}
	snprintf(k, sizeof(k), "\"%s\": ", key);
	if ((p = strstr(p, k)) == NULL) {
		return -1;
	}
	p += strlen(k);
	return strncmp(p, "null", 4) == 0 ? -1 : strtod(p, NULL);
}

static char *
stats(void)
{
	char *json = NULL;
	int rv = idn_sched_stats(c, NULL, &json);
	if (rv != IDN_OK) {
		die("stats", rv, NULL);
	}
	return json;
}

static double
done_of(const char *job)
{
	char *json = stats();
	double d = field(json, job, "done");
	idn_free(json);
	return d;
}

static void
put_model(const char *name, const char *desc, const void *pt, size_t len)
{
	char *err = NULL;
	int rv = idn_model_store(c, name, desc, strlen(desc), pt, len, &err);
	if (rv != IDN_OK) {
		die(name, rv, err);
	}
	idn_free(err);
}

static void
put_sim(const char *name, int service_ms)
{
	char desc[160];
	snprintf(desc, sizeof(desc), "backend = sim\ninput = 1x28x28\n"
	    "classes = 10\nservice_ms = %d\n", service_ms);
	put_model(name, desc, NULL, 0);
}

static int
put_blob(void *arg, const char *name, const void *data, size_t len)
{
	(void) arg;
	return idn_sdfs_put_buf(c, name, data, len, NULL);
}

static void
add_job_on(const char *job, const char *model, uint32_t batch,
    uint64_t limit, const char *queries)
{
	idn_infer_spec s;
	idn_infer_spec_init(&s);
	s.job = job;
	s.model = model;
	s.queries = queries;
	s.batch = batch;
	s.rate = BACKLOG;
	s.limit = limit;
	char *err = NULL;
	int rv = idn_job_add_infer(c, &s, &err);
	if (rv != IDN_OK) {
		die(job, rv, err);
	}
}

static void
add_job(const char *job, const char *model, uint32_t batch, uint64_t limit)
{
	add_job_on(job, model, batch, limit, QUERIES);
}

static void
remove_job(const char *job)
{
	char *err = NULL;
	(void) idn_job_remove(c, job, &err); // a finished job may refuse
	idn_free(err);
}

// Throughput in queries/s of a backlogged job: done counted over a window
// that starts warm_s after its first finished batch and lasts window_s,
// or ends early before the job's last 10% (its tail is not backlogged).
// The window runs between two changes of the done count, seen by polling
// every 20 ms: done moves a task (G batches) at a time, and measuring
// between arbitrary polls erred by a poll period (200 ms were 16% of
// (a)'s window) plus a task. *lease_ops_s gets the coordinator's lease
// calls/s over the same window.
static double
throughput(const char *job, double warm_s, double window_s,
    double *lease_ops_s, double *got_window)
{
	double start = now_s(), first = -1, t0 = -1, d0 = 0, l0 = 0;
	double t = 0, d = 0, l = 0, prev = 0;
	double te = -1, de = 0, le = 0; // the last change in the window
	while ((t = now_s()) < start + 30 + warm_s + window_s) {
		char *json = stats();
		d = field(json, job, "done");
		double total = field(json, job, "total");
		l = field(json, NULL, "lease_ops");
		idn_free(json);
		bool changed = d != prev;
		prev = d;
		if (first < 0 && d > 0) {
			first = t;
		}
		if (changed && first >= 0 && t0 < 0 && t >= first + warm_s) {
			t0 = t;
			d0 = d;
			l0 = l;
		} else if (changed && t0 >= 0) {
			te = t;
			de = d;
			le = l;
		}
		if (t0 >= 0 && (t >= t0 + window_s || d >= 0.9 * total)) {
			break;
		}
		usleep(20 * 1000);
	}
	if (t0 < 0 || te <= t0 + 0.5) {
		char *json = stats(), *as = NULL;
		(void) idn_sched_assign(c, &as);
		fprintf(stderr, "sched bench: %s made no progress:\n%s\n%s\n",
		    job, json, as ? as : "");
		idn_free(json);
		idn_free(as);
		*lease_ops_s = *got_window = 0;
		return 0;
	}
	*lease_ops_s = (le - l0) / (te - t0);
	*got_window = te - t0;
	return (de - d0) / (te - t0);
}

// A fresh cluster of a coordinator, a standby and k workers with the query
// set, the sim models, LeNet-5 when with_lenet5, in the inference phase.
// Each worker count gets its own cluster: after SIGKILLs of workers the
// survivors did not progress (see docs/SCHED.md), and a fresh cluster
// measures the count alone.
static void
cluster_start(int k, bool with_lenet5)
{
	double t0 = now_s();
	if (th_cluster_up_with(&cl, k + 2, pinned ? "--pin" : "") !=
	    IDN_OK) {
		fprintf(stderr, "sched bench: cannot start the cluster\n");
		exit(1);
	}
	workers = k;
	int rv = idn_client_open(th_cluster_addr(&cl, "coord"), cl.key, &c);
	if (rv != IDN_OK) {
		die("client", rv, NULL);
	}
	idn_client_set_timeout(c, 30000);
	// Only the query set: the 10,000 test images in 10 shards.
	rv = idn_dataset_shards(FASHION "/t10k-images-idx3-ubyte.gz",
	    FASHION "/t10k-labels-idx1-ubyte.gz", QUERIES, 1000, put_blob,
	    NULL);
	if (rv != IDN_OK) {
		die("import the query set", rv, NULL);
	}
	put_sim("sim-20", 20);
	put_sim("sim-200", 200);
	put_sim("sim-800", 800);
	put_sim("sim-b", SIM_B_MS);
	have_lenet5 = false;
	if (with_lenet5) {
		store_lenet5();
	}
	char *err = NULL;
	if ((rv = idn_phase_start(c, IDN_PHASE_INFER, &err)) != IDN_OK) {
		die("infer start", rv, err);
	}
	printf("    [cluster: coordinator, standby, %d workers%s; ready in "
	       "%.1f s]\n", k, pinned ? " (--pin)" : "", now_s() - t0);
	fflush(stdout);
}

static void
store_lenet5(void)
{
	if (have_lenet5) {
		return;
	}
	char dp[4200], mp[4200];
	snprintf(dp, sizeof(dp), "%s/lenet5.desc", models);
	snprintf(mp, sizeof(mp), "%s/lenet5.pt", models);
	uint8_t *desc, *pt;
	size_t dlen, plen;
	if (th_read_file(dp, 1 << 16, &desc, &dlen) != IDN_OK ||
	    th_read_file(mp, 1 << 28, &pt, &plen) != IDN_OK) {
		die("read build/models/lenet5.*", IDN_ENOENT, NULL);
	}
	char *d = strndup((const char *) desc, dlen);
	put_model("lenet5", d, pt, plen);
	free(d);
	free(desc);
	free(pt);
	have_lenet5 = true;
}

static void
cluster_stop(void)
{
	idn_client_close(c);
	c = NULL;
	th_cluster_down(&cl);
}

static void
cluster_with(int k, bool with_lenet5)
{
	if (workers != k) {
		cluster_stop();
		cluster_start(k, with_lenet5);
	} else if (with_lenet5) {
		store_lenet5();
	}
}

// (b): the same backlogged sim job on 8, 4, 2 and 1 workers.
static double tput_b[4];
static const int workers_b[4] = {8, 4, 2, 1};
static double lease_ops_b8;

static void
part_b(void)
{
	printf("(b) scaling: sim %d ms per batch of 8, backlogged, "
	       "throughput over 8 s after 1.5 s\n", SIM_B_MS);
	for (int i = 0; i < 4; i++) {
		cluster_with(workers_b[i], false);
		char job[32];
		snprintf(job, sizeof(job), "b-%d", workers_b[i]);
		add_job(job, "sim-b", 8, 0);
		double lops, win;
		tput_b[i] = throughput(job, 1.5, 8, &lops, &win);
		char *json = stats();
		double bms = field(json, job, "batch_ms");
		idn_free(json);
		remove_job(job);
		if (i == 0) {
			lease_ops_b8 = lops;
		}
		printf("    %d workers: %7.1f q/s over %.1f s; worker time per "
		       "batch %.0f ms (sleep-only bound %.0f q/s)\n",
		    workers_b[i], tput_b[i], win, bms,
		    workers_b[i] * 8 * 1000.0 / SIM_B_MS);
	}
	double one = tput_b[3];
	if (one <= 0) {
		printf("    no throughput on 1 worker\n");
		failed++;
		return;
	}
	printf("  => vs linear (T(k) / (k * T(1))):");
	for (int i = 2; i >= 0; i--) {
		printf(" %d: %.3f", workers_b[i], tput_b[i] /
		    (workers_b[i] * one));
	}
	printf("   (goal >= 0.95)\n");
}

// (a): LeNet-5 batch 32 on the raw backend vs the cluster with 1 worker.
static double
raw_lenet5(const char *dir, const idn_dataset *te)
{
	char dp[4200], mp[4200];
	snprintf(dp, sizeof(dp), "%s/lenet5.desc", dir);
	snprintf(mp, sizeof(mp), "%s/lenet5.pt", dir);
	idn_model *m = NULL;
	char *err = NULL;
	int rv = idn_model_load_files(dp, mp, &err, &m);
	if (rv != IDN_OK) {
		die("load lenet5", rv, err);
	}
	size_t img = 28 * 28, n = 0;
	uint32_t cls[32];
	float score[32];
	double t0 = now_s();
	// Whole passes over the query set until 3 s have gone.
	do {
		for (size_t q = 0; q < te->n && rv == IDN_OK; q += 32) {
			size_t b = te->n - q < 32 ? te->n - q : 32;
			rv = idn_model_infer(m, te->images + q * img, b, b * img,
			    cls, score);
			n += b;
		}
	} while (rv == IDN_OK && now_s() - t0 < 3);
	double s = now_s() - t0;
	if (rv != IDN_OK) {
		die("infer", rv, NULL);
	}
	idn_model_close(m);
	return (double) n / s;
}

// One (a) run on a fresh 1-worker cluster, pinned (`cluster up --pin`:
// the worker's model on a CPU of its own) or not.
typedef struct {
	double qps, window, task_ms, model_ms, group, lease_ops;
} a_run;

static a_run
part_a_run(bool pin)
{
	a_run r = {0};
	pinned = pin;
	workers = -1; // a fresh cluster
	cluster_with(1, true);
	// The 60,000 training images as the queries: at the raw loop's rate
	// the 10,000 test images last about a second, too short a window
	// for a job whose tasks are groups of batches.
	int rv = idn_dataset_shards(FASHION "/train-images-idx3-ubyte.gz",
	    FASHION "/train-labels-idx1-ubyte.gz", QUERIES_A, 1000, put_blob,
	    NULL);
	if (rv != IDN_OK) {
		die("import the training set as queries", rv, NULL);
	}
	// Three jobs one after the other, each measured over its steady part
	// (after its first results, before its last 10%): done moves a task
	// of 35 batches at a time, so one job's 1.2-1.4 s window alone
	// scattered by +-5%.
	double q = 0, win = 0, lops = 0;
	for (int k = 0; k < 3; k++) {
		char job[32];
		snprintf(job, sizeof(job), "a-lenet5-%d", k);
		add_job_on(job, "lenet5", 32, 0, QUERIES_A);
		double w = 0, l = 0, t = throughput(job, 0.5, 8, &l, &w);
		q += t * w;
		lops += l * w;
		win += w;
		char *json = stats();
		r.task_ms = field(json, job, "batch_ms");
		r.group = field(json, job, "group");
		// processing_ms's mean: the first "mean" after the job's name
		r.model_ms = field(json, job, "mean") * 32;
		idn_free(json);
		remove_job(job);
		if (t <= 0) {
			failed++;
		}
	}
	r.qps = win > 0 ? q / win : 0;
	r.lease_ops = win > 0 ? lops / win : 0;
	r.window = win;
	return r;
}

static void
part_a(void)
{
	const char *dir = models;
	idn_dataset *te;
	int rv = idn_dataset_load_idx(FASHION "/t10k-images-idx3-ubyte.gz",
	    FASHION "/t10k-labels-idx1-ubyte.gz", &te);
	if (rv != IDN_OK) {
		die("load the query set", rv, NULL);
	}
	idn_model_set_threads(1);
	// The raw loop before and after the cluster's runs (the mean): the
	// machine's load swings between the two.
	double raw0 = raw_lenet5(dir, te);
	a_run free_ = part_a_run(false), pin = part_a_run(true);
	double raw1 = raw_lenet5(dir, te);
	double raw = (raw0 + raw1) / 2;
	idn_dataset_free(te);
	printf("(a) overhead: LeNet-5 batch 32, torch 1 thread\n"
	       "    raw idn_model_infer loop: %8.1f q/s (%.1f before, %.1f "
	       "after the cluster's runs)\n", raw, raw0, raw1);
	const a_run *runs[2] = {&free_, &pin};
	for (int i = 0; i < 2; i++) {
		const a_run *r = runs[i];
		printf("    cluster, 1 worker, %s:\n"
		       "        %8.1f q/s over %.1f s of 3 jobs (%.0f batches per "
		       "task and result file), %.0f lease calls/s\n"
		       "        worker time per batch %.2f ms, of which the model "
		       "%.2f ms\n"
		       "        ratio %.3f\n", i ? "its model on a CPU of its own "
		       "(cluster up --pin)" : "threads anywhere (no --pin)",
		    r->qps, r->window, r->group, r->lease_ops, r->task_ms,
		    r->model_ms, raw > 0 ? r->qps / raw : 0);
	}
	printf("  => ratio %.3f pinned, %.3f not (goal >= 0.95)\n",
	    raw > 0 ? pin.qps / raw : 0, raw > 0 ? free_.qps / raw : 0);
}

// (c): a second job's first finished query while a backlogged job runs.
static void
part_c(void)
{
	add_job("c-bg", "sim-200", 32, 0);
	while (done_of("c-bg") <= 0) {
		usleep(50 * 1000);
	}
	double lat[3], addt[3], arr[3];
	int n = 0;
	for (int i = 0; i < 3; i++) {
		char job[32];
		snprintf(job, sizeof(job), "c-%d", i);
		double t0 = now_s(), t = t0;
		add_job(job, "sim-20", 32, 64);
		double ta = now_s() - t0;
		while ((t = now_s()) < t0 + 10 && done_of(job) <= 0) {
			usleep(10 * 1000);
		}
		if (t < t0 + 10) {
			char *json = stats();
			const char *p;
			char key[64];
			snprintf(key, sizeof(key), "\"job\": \"%s\"", job);
			p = strstr(json, key);
			p = p ? strstr(p, "\"latency_ms\"") : NULL;
			arr[n] = p ? field(p, NULL, "mean") : -1;
			idn_free(json);
			addt[n] = ta;
			lat[n++] = t - t0;
		}
	}
	double bg = done_of("c-bg");
	remove_job("c-bg");
	printf("(c) infer add of a second job to its first finished query "
	       "(sim 20 ms, batch 32),\n    while a backlogged job runs on "
	       "%d workers (%.0f of %d done at the end):", workers, bg,
	    NQUERIES);
	double worst = 0;
	for (int i = 0; i < n; i++) {
		printf(" %.3f s", lat[i]);
		worst = lat[i] > worst ? lat[i] : worst;
	}
	printf("\n    of which the add call:");
	for (int i = 0; i < n; i++) {
		printf(" %.3f s", addt[i]);
	}
	printf("; queries' arrival to result in SDFS (mean):");
	for (int i = 0; i < n; i++) {
		printf(" %.0f ms", arr[i]);
	}
	printf("\n  => worst %.3f s of %d (goal < 0.5 s)\n", worst, n);
	if (n < 3) {
		failed++;
	}
}

// (d): two backlogged jobs whose batches cost 200 and 800 ms.
static double lease_ops_d;

static void
part_d(void)
{
	add_job("d-fast", "sim-200", 32, 0);
	add_job("d-slow", "sim-800", 32, 0);
	double start = now_s(), conv = -1, w0 = -1, fa0 = 0, fb0 = 0, l0 = 0;
	double fsum = 0, fworst = 0, t = 0, fa = 0, fb = 0, l = 0;
	int samples = 0;
	bool backlogged = true;
	while ((t = now_s()) < start + 40) {
		char *json = stats();
		double f = field(json, NULL, "fairness");
		fa = field(json, "d-fast", "done");
		fb = field(json, "d-slow", "done");
		l = field(json, NULL, "lease_ops");
		backlogged = backlogged && fa < NQUERIES && fb < NQUERIES;
		idn_free(json);
		if (conv < 0 && f > 0 && f <= 1.10) {
			conv = t - start;
		}
		// The window: 10 s, from 2 s after convergence (and after the
		// 10 s rate_10s window of stats is full of both jobs).
		if (conv >= 0 && w0 < 0 && t - start >= (conv + 2 > 10 ? conv + 2 : 10)) {
			w0 = t;
			fa0 = fa;
			fb0 = fb;
			l0 = l;
		}
		if (w0 >= 0 && f > 0) {
			fsum += f;
			fworst = f > fworst ? f : fworst;
			samples++;
		}
		if (w0 >= 0 && t >= w0 + 10) {
			break;
		}
		usleep(500 * 1000);
	}
	remove_job("d-fast");
	remove_job("d-slow");
	printf("(d) fairness: sim 200 and 800 ms per batch of 32, both "
	       "backlogged, %d workers\n", workers);
	if (w0 < 0 || t <= w0 + 1) {
		printf("    never within 10%% in 40 s\n");
		failed++;
		return;
	}
	double ra = (fa - fa0) / (t - w0), rb = (fb - fb0) / (t - w0);
	lease_ops_d = (l - l0) / (t - w0);
	double ratio = ra > rb ? ra / rb : rb / ra;
	printf("    within 10%% (stats fairness) %.1f s after the second add\n"
	       "    over the next %.1f s: %.1f and %.1f q/s; stats fairness "
	       "mean %.3f, max %.3f%s\n", conv, t - w0, ra, rb,
	    samples ? fsum / samples : 0, fworst,
	    backlogged ? "" : " [a job ran out of queries]");
	printf("  => max/min rate %.3f (goal <= 1.05), within 10%% after "
	       "%.1f s\n", ratio, conv);
}

// (e): lease calls, as the workers make them, from 4 and then 8 threads on
// a cluster of its own without workers (idn_sched_lease_probe: each call
// gives back the caller's leases and takes 2 new batches of a backlogged
// job), 4 s each.
#define E_THREADS_MAX 8
#define E_MAX 400000
#define E_WANT 2

typedef struct {
	idn_client *c;
	const char *coord;
	char worker[32];
	double until;
	double *lat;
	size_t cap, n;
	uint64_t leases;
	int errors;
} e_arg;

static void *
e_run(void *arg)
{
	e_arg *a = arg;
	while (a->n < a->cap && now_s() < a->until) {
		uint32_t got = 0;
		double t0 = now_s();
		int rv = idn_sched_lease_probe(a->c, a->coord, a->worker, E_WANT,
		    &got);
		a->lat[a->n++] = now_s() - t0;
		a->leases += got;
		a->errors += rv != IDN_OK;
	}
	(void) idn_sched_lease_probe(a->c, a->coord, a->worker, 0, NULL);
	return NULL;
}

static void
e_round(const char *coord, int threads)
{
	static double lat[E_MAX];
	e_arg a[E_THREADS_MAX];
	pthread_t th[E_THREADS_MAX];
	size_t cap = E_MAX / (size_t) threads;
	double t0 = now_s();
	for (int i = 0; i < threads; i++) {
		a[i] = (e_arg) {NULL, coord, "", t0 + 4, lat + i * cap, cap, 0,
		    0, 0};
		snprintf(a[i].worker, sizeof(a[i].worker), "bench-e%d", i);
		if (idn_client_open(coord, cl.key, &a[i].c) != IDN_OK) {
			die("client", IDN_ESYS, NULL);
		}
		pthread_create(&th[i], NULL, e_run, &a[i]);
	}
	size_t n = 0;
	uint64_t leases = 0;
	int errors = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		idn_client_close(a[i].c);
		memmove(lat + n, a[i].lat, a[i].n * sizeof(double));
		n += a[i].n;
		leases += a[i].leases;
		errors += a[i].errors;
	}
	double s = now_s() - t0;
	char *json = stats();
	const char *p = strstr(json, "\"lease_call_ms\"");
	double cmed = p ? field(p, NULL, "median") : -1;
	double cp99 = p ? field(p, NULL, "p99") : -1;
	double cmax = p ? field(p, NULL, "max") : -1;
	idn_free(json);
	qsort(lat, n, sizeof(double), bench_cmp_double);
	printf("    %d threads, %.1f s: %zu calls, %.2f leases per call, %d "
	       "errors\n", threads, s, n, n ? (double) leases / (double) n : 0,
	    errors);
	if (n == 0 || errors > 0) {
		failed++;
	}
	if (n == 0) {
		return;
	}
	printf("  => %.0f lease calls/s; call p50 %.2f ms, p99 %.2f ms "
	       "(goal >= 5,000/s, p99 < 5 ms)\n", (double) n / s,
	    lat[n / 2] * 1e3, lat[n * 99 / 100] * 1e3);
	printf("    the coordinator's own time per call (its last 4096, stats "
	       "lease_call_ms): median %.3f ms, p99 %.3f ms, max %.3f ms\n",
	    cmed, cp99, cmax);
}

static void
part_e(bool b_ran, bool d_ran)
{
	char coord[128];
	cluster_with(0, false);
	add_job("e-load", "sim-20", 8, 0);
	int rv = idn_sched_where(c, coord, sizeof(coord));
	if (rv != IDN_OK) {
		die("where", rv, NULL);
	}
	printf("(e) coordinator lease calls (sched.lease: give back, take %d) "
	       "from stand-in workers:\n", E_WANT);
	e_round(coord, 4);
	e_round(coord, 8);
	remove_job("e-load");
	if (b_ran) {
		printf("    lease calls the workers made (lease_ops): "
		       "%.0f/s with 8 workers in (b)\n", lease_ops_b8);
	}
	if (d_ran) {
		printf("    lease calls the workers made (lease_ops): "
		       "%.0f/s with 8 workers in (d)\n", lease_ops_d);
	}
}

int
main(int argc, char **argv)
{
	char parts[8] = "";
	for (int i = 1; i < argc; i++) {
		for (const char *p = argv[i]; *p; p++) {
			if (*p < 'a' || *p > 'e') {
				fprintf(stderr, "usage: sched [PARTS: letters "
				    "a..e; default all]\n");
				return 2;
			}
			if (strchr(parts, *p) == NULL) {
				parts[strlen(parts)] = *p;
			}
		}
	}
	if (parts[0] == '\0') {
		strcpy(parts, "abcde");
	}
	// Nodes inherit the environment: torch and BLAS at 1 thread, as the
	// raw loop here.
	setenv("OPENBLAS_NUM_THREADS", "1", 1);
	setenv("OMP_NUM_THREADS", "1", 1);
	const char *build = getenv("IDUNNO_BUILD_DIR");
	snprintf(models, sizeof(models), "%s/models", build ? build : "build");
	bool only_a = strcmp(parts, "a") == 0;
	double t_start = now_s();
	cluster_start(only_a ? 1 : WORKERS, strchr(parts, 'a') != NULL);
	printf("sched: parts %s\n", parts);
	fflush(stdout);
	if (strchr(parts, 'c') != NULL) {
		part_c();
		fflush(stdout);
	}
	if (strchr(parts, 'd') != NULL) {
		part_d();
		fflush(stdout);
	}
	bool b = strchr(parts, 'b') != NULL;
	if (b) {
		part_b();
		fflush(stdout);
	}
	if (strchr(parts, 'e') != NULL) {
		part_e(b, strchr(parts, 'd') != NULL);
		fflush(stdout);
	}
	if (strchr(parts, 'a') != NULL) {
		part_a();
	}
	cluster_stop();
	printf("sched: %.0f s in all\n", now_s() - t_start);
	return failed ? 1 : 0;
}
