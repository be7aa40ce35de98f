// SPDX-License-Identifier: MIT
// report.c: the coordinator's documents: `stats`, `jobs` and `assign` as
// stable JSON and as readable tables, and the dashboard's snapshot. It
// reads the tables through a const coordinator (the caller holds the
// lock) and the accessors of table.c and train.c; it changes nothing.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/sched.h>

#include "coord/coord_int.h"

// Short names for core's JSON writer, which nearly every line here uses.
#define jf core_buf_printf
#define jstr core_json_str

// A number with four decimals, or null when not finite.
static void
jnum(core_buf *b, double v)
{
	core_json_num(b, "%.4f", v);
}

static void
jsummary(core_buf *b, const sched_summary *s)
{
	jf(b, "{\"count\": %llu, \"mean\": ", (unsigned long long) s->count);
	jnum(b, s->mean);
	jf(b, ", \"stddev\": ");
	jnum(b, s->stddev);
	jf(b, ", \"median\": ");
	jnum(b, s->median);
	jf(b, ", \"p90\": ");
	jnum(b, s->p90);
	jf(b, ", \"p95\": ");
	jnum(b, s->p95);
	jf(b, ", \"p99\": ");
	jnum(b, s->p99);
	jf(b, "}");
}

static const char *
worker_id(const coord *c, uint64_t key)
{
	for (size_t i = 0; i < c->nworkers; i++) {
		if (c->workers[i].key == key) {
			return c->workers[i].id;
		}
	}
	return "?";
}

static uint64_t
job_done_queries(const cjob *j)
{
	if (j->sj == NULL) {
		return 0;
	}
	uint32_t nb = sched_job_ntasks(j->sj);
	uint64_t total = sched_job_total(j->sj);
	uint32_t done = sched_job_done_count(j->sj);
	// Only the last batch may be short; count it exactly when done.
	if (done == nb) {
		return total;
	}
	return (uint64_t) done * coord_unit(j);
}

static void
job_workers(const coord *c, const cjob *j, core_buf *b)
{
	bool first = true;
	jf(b, "[");
	for (size_t r = 0; c->have_alloc && r < c->alloc.nworkers; r++) {
		for (size_t k = 0; k < c->alloc.nshares[r]; k++) {
			if (c->alloc.shares[r][k].job == j->key &&
			    c->alloc.workers != NULL) {
				jf(b, "%s", first ? "" : ", ");
				jstr(b, worker_id(c, c->alloc.workers[r]));
				first = false;
			}
		}
	}
	for (uint32_t r = 0; r < j->nranks; r++) {
		jf(b, "%s", first ? "" : ", ");
		jstr(b, j->ranks[r].worker);
		first = false;
	}
	jf(b, "]");
}

// The workers serving j: its shares of the allocation and its ranks.
static uint32_t
job_nworkers(const coord *c, const cjob *j)
{
	uint32_t n = j->nranks;
	for (size_t r = 0; c->have_alloc && r < c->alloc.nworkers; r++) {
		for (size_t k = 0; k < c->alloc.nshares[r]; k++) {
			n += c->alloc.shares[r][k].job == j->key;
		}
	}
	return n;
}

// max/min rate_10s over the backlogged inference jobs (those the
// allocation gives less than they ask: a job offered less than its fair
// share is not compared); 0 unless two of them have a rate (one job alone
// is not "fair", it is only busy).
static double
fairness(const coord *c, uint64_t now)
{
	double lo = 0, hi = 0;
	bool any = false;
	int n = 0;
	for (size_t i = 0; i < c->njobs; i++) {
		const cjob *j = c->jobs[i];
		if (!coord_infer_active(j) || !c->have_alloc) {
			continue;
		}
		sched_fair_job fj = coord_fair_job(j, now);
		if (!sched_fair_backlogged(&c->alloc, &fj)) {
			continue;
		}
		sched_summary p;
		sched_stats_summary(j->proc, now, &p);
		lo = !any || p.rate_10s < lo ? p.rate_10s : lo;
		hi = !any || p.rate_10s > hi ? p.rate_10s : hi;
		any = true;
		n++;
	}
	return n >= 2 && lo > 0 ? hi / lo : 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
	return (x > y) - (x < y);
}

// The coordinator's own time per lease call over its last LEASE_RING
// calls: {"calls", "median", "p99", "max"} (ms), null before any.
static void
lease_times(const coord *c, core_buf *b)
{
	static uint32_t v[LEASE_RING]; // the lock is held: one user
	size_t n = c->lease_ops < LEASE_RING ? (size_t) c->lease_ops : LEASE_RING;
	if (n == 0) {
		jf(b, "null");
		return;
	}
	memcpy(v, c->lease_us, n * sizeof(v[0]));
	qsort(v, n, sizeof(v[0]), cmp_u32);
	jf(b, "{\"calls\": %zu, \"median\": %.3f, \"p99\": %.3f, "
	    "\"max\": %.3f}", n, v[n / 2] / 1000.0, v[n * 99 / 100] / 1000.0,
	    v[n - 1] / 1000.0);
}

static int
stats_json(const coord *c, const char *only, core_buf *b)
{
	uint64_t now = idn_wall_ms();
	bool first = true;
	jf(b, "{\"jobs\": [");
	for (size_t i = 0; i < c->njobs; i++) {
		const cjob *j = c->jobs[i];
		if (only != NULL && strcmp(only, j->spec.job) != 0) {
			continue;
		}
		sched_summary p, l;
		sched_stats_summary(j->proc, now, &p);
		sched_stats_summary(j->lat, now, &l);
		jf(b, "%s{\"job\": ", first ? "" : ", ");
		first = false;
		jstr(b, j->spec.job);
		jf(b, ", \"phase\": \"%s\", \"state\": \"%s\", \"model\": ",
		    j->spec.kind == IDN_JOB_INFER ? "infer" : "train",
		    idn_job_state_name(j->state));
		jstr(b, j->spec.model);
		jf(b, ", \"batch\": %u, \"offered_rate\": ", j->spec.batch);
		jnum(b, j->spec.kind == IDN_JOB_INFER ? j->spec.rate : 0);
		if (j->spec.kind == IDN_JOB_INFER) {
			jf(b, ", \"done\": %llu, \"total\": %llu, \"group\": %u",
			    (unsigned long long) job_done_queries(j),
			    (unsigned long long) sched_job_total(j->sj),
			    j->spec.group);
		} else {
			jf(b, ", \"done\": %u, \"total\": %u, \"epoch\": %u",
			    j->epoch, j->spec.epochs, j->epoch);
		}
		// Per batch of the spec, though a task runs a group of them.
		jf(b, ", \"batch_ms\": ");
		jnum(b, j->task_ms * j->spec.batch / coord_unit(j));
		jf(b, ", \"rate_10s\": ");
		jnum(b, p.rate_10s);
		jf(b, ", \"rate\": ");
		jnum(b, p.rate);
		jf(b, ", \"accuracy\": ");
		if (j->accuracy >= 0) {
			jnum(b, j->accuracy);
		} else {
			jf(b, "null");
		}
		jf(b, ", \"processing_ms\": ");
		jsummary(b, &p);
		jf(b, ", \"latency_ms\": ");
		jsummary(b, &l);
		jf(b, ", \"workers\": ");
		job_workers(c, j, b);
		if (j->err[0] != '\0') {
			jf(b, ", \"error\": ");
			jstr(b, j->err);
		}
		jf(b, "}");
	}
	double f = fairness(c, now);
	jf(b, "], \"fairness\": ");
	if (f > 0) {
		jnum(b, f);
	} else {
		jf(b, "null");
	}
	jf(b, ", \"phase\": \"%s\", \"epoch\": %llu, \"lease_ops\": %llu, "
	    "\"lease_call_ms\": ", idn_phase_name(c->phase),
	    (unsigned long long) c->epoch, (unsigned long long) c->lease_ops);
	lease_times(c, b);
	jf(b, "}");
	return IDN_OK;
}

static int
jobs_json(const coord *c, core_buf *b)
{
	jf(b, "{\"coordinator\": ");
	jstr(b, c->self);
	jf(b, ", \"epoch\": %llu, \"standby\": ", (unsigned long long) c->epoch);
	if (c->standby[0] != '\0') {
		jstr(b, c->standby);
	} else {
		jf(b, "null");
	}
	jf(b, ", \"phase\": \"%s\", \"jobs\": [", idn_phase_name(c->phase));
	for (size_t i = 0; i < c->njobs; i++) {
		const cjob *j = c->jobs[i];
		jf(b, "%s{\"job\": ", i ? ", " : "");
		jstr(b, j->spec.job);
		jf(b, ", \"phase\": \"%s\", \"state\": \"%s\", \"model\": ",
		    j->spec.kind == IDN_JOB_INFER ? "infer" : "train",
		    idn_job_state_name(j->state));
		jstr(b, j->spec.model);
		if (j->spec.kind == IDN_JOB_INFER) {
			jf(b, ", \"queries\": ");
			jstr(b, j->spec.queries);
			jf(b, ", \"weights\": ");
			jstr(b, j->spec.weights);
			jf(b, ", \"batch\": %u, \"offered_rate\": ", j->spec.batch);
			jnum(b, j->spec.rate);
			jf(b, ", \"done\": %llu, \"total\": %llu, \"group\": %u",
			    (unsigned long long) job_done_queries(j),
			    (unsigned long long) sched_job_total(j->sj),
			    j->spec.group);
		} else {
			jf(b, ", \"data\": ");
			jstr(b, j->spec.data);
			jf(b, ", \"batch\": %u, \"epoch\": %u, \"epochs\": %u, "
			    "\"loss\": ", j->spec.batch, j->epoch, j->spec.epochs);
			jnum(b, j->loss);
			jf(b, ", \"done\": %u, \"total\": %u, \"want_workers\": "
			    "%u, \"generation\": %u, \"waiting\": ", j->epoch,
			    j->spec.epochs, j->spec.workers, j->gen);
			jstr(b, j->state == IDN_JOB_QUEUED ? j->wait : "");
		}
		jf(b, ", \"accuracy\": ");
		if (j->accuracy >= 0) {
			jnum(b, j->accuracy);
		} else {
			jf(b, "null");
		}
		jf(b, ", \"workers\": ");
		job_workers(c, j, b);
		jf(b, ", \"error\": ");
		jstr(b, j->err);
		jf(b, "}");
	}
	jf(b, "]}");
	return IDN_OK;
}

// Workers holding a training rank that the inference allocation does not
// list (in the training phase: all of them), each with its rank.
static void
ranks_json(const coord *c, core_buf *b, bool first)
{
	for (size_t i = 0; i < c->njobs; i++) {
		const cjob *j = c->jobs[i];
		for (uint32_t r = 0; j->spec.kind == IDN_JOB_TRAIN &&
		    r < j->nranks; r++) {
			jf(b, "%s{\"worker\": ", first ? "" : ", ");
			jstr(b, j->ranks[r].worker);
			jf(b, ", \"jobs\": [{\"job\": ");
			jstr(b, j->spec.job);
			jf(b, ", \"share\": 1.0000, \"rank\": %u, \"world\": "
			    "%u, \"generation\": %u}]}", r, j->nranks, j->gen);
			first = false;
		}
	}
}

static int
assign_json(const coord *c, core_buf *b)
{
	jf(b, "{\"assignments\": [");
	size_t r = 0;
	for (; c->have_alloc && r < c->alloc.nworkers; r++) {
		jf(b, "%s{\"worker\": ", r ? ", " : "");
		jstr(b, c->alloc.workers ? worker_id(c, c->alloc.workers[r]) :
		    "?");
		jf(b, ", \"jobs\": [");
		for (size_t k = 0; k < c->alloc.nshares[r]; k++) {
			const cjob *j = coord_job_by_key(c, c->alloc.shares[r][k].job);
			jf(b, "%s{\"job\": ", k ? ", " : "");
			jstr(b, j ? j->spec.job : "?");
			jf(b, ", \"share\": %.4f}", c->alloc.shares[r][k].share);
		}
		jf(b, "]}");
	}
	ranks_json(c, b, r == 0);
	jf(b, "]}");
	return IDN_OK;
}

// The readable forms of the same documents.
static void
stats_text(const coord *c, const char *only, core_buf *b)
{
	uint64_t now = idn_wall_ms();
	jf(b, "%-14s %-6s %-8s %-10s %5s %13s %9s %9s %8s %9s %9s %9s %s\n",
	    "JOB", "PHASE", "STATE", "MODEL", "BATCH", "DONE/TOTAL",
	    "OFFERED", "RATE_10S", "ACCURACY", "PROC_MS", "LAT_P50",
	    "LAT_P99", "WORKERS");
	for (size_t i = 0; i < c->njobs; i++) {
		const cjob *j = c->jobs[i];
		if (only != NULL && strcmp(only, j->spec.job) != 0) {
			continue;
		}
		sched_summary p, l;
		sched_stats_summary(j->proc, now, &p);
		sched_stats_summary(j->lat, now, &l);
		char done[32], acc[16], nw[16];
		snprintf(done, sizeof(done), "%llu/%llu",
		    (unsigned long long) (j->sj ? job_done_queries(j) : j->epoch),
		    (unsigned long long) (j->sj ? sched_job_total(j->sj) :
		    j->spec.epochs));
		snprintf(acc, sizeof(acc), j->accuracy >= 0 ? "%.4f" : "-",
		    j->accuracy);
		snprintf(nw, sizeof(nw), "%u", job_nworkers(c, j));
		jf(b, "%-14.14s %-6s %-8s %-10.10s %5u %13s %9.1f %9.1f %8s "
		    "%9.2f %9.1f %9.1f %s\n", j->spec.job, j->spec.kind ==
		    IDN_JOB_INFER ? "infer" : "train",
		    idn_job_state_name(j->state), j->spec.model, j->spec.batch,
		    done, j->spec.kind == IDN_JOB_INFER ? j->spec.rate : 0,
		    p.rate_10s, acc, p.mean, l.median, l.p99, nw);
	}
}

static void
assign_text(const coord *c, core_buf *b)
{
	jf(b, "%-40s %s\n", "WORKER", "JOBS (share)");
	for (size_t r = 0; c->have_alloc && r < c->alloc.nworkers; r++) {
		jf(b, "%-40s", c->alloc.workers ? worker_id(c,
		    c->alloc.workers[r]) : "?");
		for (size_t k = 0; k < c->alloc.nshares[r]; k++) {
			const cjob *j = coord_job_by_key(c, c->alloc.shares[r][k].job);
			jf(b, " %s (%.2f)", j ? j->spec.job : "?",
			    c->alloc.shares[r][k].share);
		}
		jf(b, "\n");
	}
	for (size_t i = 0; i < c->njobs; i++) {
		const cjob *j = c->jobs[i];
		for (uint32_t r = 0; j->spec.kind == IDN_JOB_TRAIN &&
		    r < j->nranks; r++) {
			jf(b, "%-40s %s (training rank %u of %u)\n",
			    j->ranks[r].worker, j->spec.job, r, j->nranks);
		}
	}
}

void
coord_report_doc(const coord *c, int doc, const char *only, bool text,
    core_buf *out)
{
	if (doc == COORD_DOC_ASSIGN) {
		if (text) {
			assign_text(c, out);
		} else {
			assign_json(c, out);
		}
	} else if (text) {
		stats_text(c, only, out);
		if (doc == COORD_DOC_JOBS) {
			jf(out, "phase %s, coordinator %s (epoch %llu), ",
			    idn_phase_name(c->phase), c->self,
			    (unsigned long long) c->epoch);
			jf(out, c->standby[0] ? "standby %s\n" : "no standby: "
			    "the cluster runs without a standby%s\n", c->standby);
		} else {
			double f = fairness(c, idn_wall_ms());
			jf(out, f > 0 ? "fairness %.3f (max/min rate_10s of "
			    "backlogged jobs)\n" : "fairness -\n", f);
		}
	} else if (doc == COORD_DOC_STATS) {
		stats_json(c, only, out);
	} else {
		jobs_json(c, out);
	}
}

int
coord_report_view(const coord *c, coord_view_fn fn, void *arg)
{
	core_buf json = {0};
	coord_job_view jobs[MAX_JOBS];
	const char *wids[MAX_WORKERS];
	uint32_t leases[MAX_WORKERS] = {0};
	stats_json(c, NULL, &json);
	if (core_buf_append(&json, "", 1) != IDN_OK) {
		core_buf_free(&json);
		return IDN_ENOMEM;
	}
	coord_view v = {c->phase, c->epoch, fairness(c, idn_wall_ms()),
	    (const char *) json.data, c->njobs, jobs, 0, wids, leases};
	for (size_t i = 0; i < c->njobs; i++) {
		const cjob *j = c->jobs[i];
		bool infer = j->spec.kind == IDN_JOB_INFER;
		jobs[i] = (coord_job_view){j->spec.job, j->spec.model,
		    j->spec.kind, j->state,
		    infer ? job_done_queries(j) : j->epoch,
		    infer ? sched_job_total(j->sj) : j->spec.epochs,
		    j->accuracy, j->proc, j->lat, job_nworkers(c, j)};
	}
	for (size_t w = 0; w < c->nworkers; w++) {
		const cworker *cw = &c->workers[w];
		if (!cw->alive) {
			continue;
		}
		size_t k = v.nworkers++;
		wids[k] = cw->id;
		for (size_t i = 0; i < c->njobs; i++) {
			const cjob *j = c->jobs[i];
			uint32_t nb = j->sj ? sched_job_ntasks(j->sj) : 0;
			for (uint32_t b = 0; b < nb; b++) {
				uint64_t who, exp;
				uint32_t att;
				if (sched_job_lease_info(j->sj, b, &who, &att,
				        &exp) && who == cw->key) {
					leases[k]++;
				}
			}
		}
		leases[k] += coord_train_job_of(c, cw->id, NULL) != NULL;
	}
	fn(arg, &v);
	core_buf_free(&json);
	return IDN_OK;
}
