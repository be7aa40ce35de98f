// SPDX-License-Identifier: MIT
// dash.c: the HTTP routes and the sampler. The sampler takes a
// coordinator snapshot and the membership once a second, keeps each job's
// rate and p95 latency for the charts and turns changes into events; the
// routes render from a fresh snapshot (metrics) or from what it kept.
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <idunno/sched.h>

#include "dash/dash.h"
#include "dash/page.h"
#include "net/http.h"
#include "rpc/rpc.h"
#include "sched/stats.h"

#define SAMPLE_MS 1000
#define HISTORY 300   // points per job: 5 minutes at one a second
#define MAX_SERIES 32
#define MAX_EVENTS 64
#define MAX_SEEN 256

typedef struct point {
	uint64_t t_ms;
	double rate_10s;
	double p95_ms;
} point;

typedef struct series {
	char job[64];
	int state;
	point p[HISTORY];
	size_t n, head; // ring: the oldest at head when full
} series;

typedef struct event {
	uint64_t t_ms;
	char text[200];
} event;

typedef struct seen_member {
	char id[IDN_ID_MAX];
	int state;
} seen_member;

struct dash {
	dash_opts o;
	char self_id[IDN_ID_MAX];
	char role[IDN_ROLE_MAX];
	net_http *http;
	pthread_t sampler;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	series s[MAX_SERIES];
	size_t ns;
	event ev[MAX_EVENTS];
	size_t nev, evhead;
	seen_member seen[MAX_SEEN];
	size_t nseen;
	uint64_t epoch;
	core_buf jobs_text; // the job table of the last sample (sampler only)
};

// Short names for core's JSON writer (and its printf), which nearly every
// line here uses.
#define bf core_buf_printf
#define bstr core_json_str

// A number with six significant digits, or null when not finite.
static void
bnum(core_buf *b, double v)
{
	core_json_num(b, "%.6g", v);
}

// A Prometheus label value: \ " and newlines escaped, other control
// characters left out (the exposition format has no escape for them).
static void
prom_str(core_buf *b, const char *s)
{
	core_buf_append(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			bf(b, "\\%c", *p);
		} else if (*p == '\n') {
			bf(b, "\\n");
		} else if (*p >= 0x20) {
			core_buf_append(b, p, 1);
		}
	}
	core_buf_append(b, "\"", 1);
}

// ---- /metrics

static const double bounds_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define NBOUNDS (sizeof(bounds_s) / sizeof(bounds_s[0]))

static void
head(core_buf *b, const char *name, const char *type, const char *help)
{
	bf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
hist(core_buf *b, const char *name, const char *job, const sched_stats *st)
{
	double bounds_ms[NBOUNDS];
	uint64_t le[NBOUNDS], count;
	double sum_ms;
	for (size_t k = 0; k < NBOUNDS; k++) {
		bounds_ms[k] = bounds_s[k] * 1000.0;
	}
	sched_stats_hist(st, bounds_ms, NBOUNDS, le, &count, &sum_ms);
	for (size_t k = 0; k < NBOUNDS; k++) {
		bf(b, "%s_bucket{job=", name);
		prom_str(b, job);
		bf(b, ",le=\"%g\"} %llu\n", bounds_s[k],
		    (unsigned long long) le[k]);
	}
	bf(b, "%s_bucket{job=", name);
	prom_str(b, job);
	bf(b, ",le=\"+Inf\"} %llu\n%s_sum{job=", (unsigned long long) count,
	    name);
	prom_str(b, job);
	bf(b, "} %.9g\n%s_count{job=", sum_ms / 1000.0, name);
	prom_str(b, job);
	bf(b, "} %llu\n", (unsigned long long) count);
}

static void
job_metric(core_buf *b, const char *name, const char *job, double v)
{
	bf(b, "%s{job=", name);
	prom_str(b, job);
	bf(b, "} %.9g\n", v);
}

void
dash_metrics(const coord_view *v, const idn_member *m, size_t nm,
    core_buf *b)
{
	if (v != NULL) {
		head(b, "idunno_coordinator_epoch", "gauge",
		    "Epoch of the coordinator serving these figures.");
		bf(b, "idunno_coordinator_epoch %llu\n",
		    (unsigned long long) v->epoch);
		head(b, "idunno_phase", "gauge",
		    "1 for the current phase (idle, train, infer).");
		for (int p = IDN_PHASE_IDLE; p <= IDN_PHASE_INFER; p++) {
			bf(b, "idunno_phase{phase=\"%s\"} %d\n",
			    idn_phase_name(p), p == v->phase);
		}
		head(b, "idunno_queries_total", "counter",
		    "Queries answered (result in SDFS), from the ledger.");
		for (size_t i = 0; i < v->njobs; i++) {
			if (v->jobs[i].kind == IDN_JOB_INFER) {
				job_metric(b, "idunno_queries_total",
				    v->jobs[i].job, (double) v->jobs[i].done);
			}
		}
		head(b, "idunno_job_queries", "gauge",
		    "Queries in the job's query set.");
		for (size_t i = 0; i < v->njobs; i++) {
			if (v->jobs[i].kind == IDN_JOB_INFER) {
				job_metric(b, "idunno_job_queries",
				    v->jobs[i].job, (double) v->jobs[i].total);
			}
		}
		head(b, "idunno_training_epochs_total", "counter",
		    "Training epochs finished and checkpointed.");
		for (size_t i = 0; i < v->njobs; i++) {
			if (v->jobs[i].kind == IDN_JOB_TRAIN) {
				job_metric(b, "idunno_training_epochs_total",
				    v->jobs[i].job, (double) v->jobs[i].done);
			}
		}
		head(b, "idunno_job_state", "gauge",
		    "1 for the job's state (queued, running, done, failed, "
		    "removed).");
		for (size_t i = 0; i < v->njobs; i++) {
			bf(b, "idunno_job_state{job=");
			prom_str(b, v->jobs[i].job);
			bf(b, ",state=\"%s\"} 1\n",
			    idn_job_state_name(v->jobs[i].state));
		}
		head(b, "idunno_job_accuracy_ratio", "gauge",
		    "Fraction of the job's predictions equal to their label.");
		for (size_t i = 0; i < v->njobs; i++) {
			if (v->jobs[i].accuracy >= 0) {
				job_metric(b, "idunno_job_accuracy_ratio",
				    v->jobs[i].job, v->jobs[i].accuracy);
			}
		}
		head(b, "idunno_job_workers", "gauge",
		    "Workers the fair allocation gives the job.");
		for (size_t i = 0; i < v->njobs; i++) {
			job_metric(b, "idunno_job_workers", v->jobs[i].job,
			    v->jobs[i].nworkers);
		}
		head(b, "idunno_fairness_ratio", "gauge",
		    "Max/min 10 s query rate of the backlogged inference "
		    "jobs (absent when none).");
		if (v->fairness > 0) {
			bf(b, "idunno_fairness_ratio %.9g\n", v->fairness);
		}
		head(b, "idunno_query_processing_seconds", "histogram",
		    "Per-query service time on the worker.");
		for (size_t i = 0; i < v->njobs; i++) {
			if (v->jobs[i].kind == IDN_JOB_INFER) {
				hist(b, "idunno_query_processing_seconds",
				    v->jobs[i].job, v->jobs[i].proc);
			}
		}
		head(b, "idunno_query_latency_seconds", "histogram",
		    "Per-query time from arrival to its result in SDFS.");
		for (size_t i = 0; i < v->njobs; i++) {
			if (v->jobs[i].kind == IDN_JOB_INFER) {
				hist(b, "idunno_query_latency_seconds",
				    v->jobs[i].job, v->jobs[i].lat);
			}
		}
		head(b, "idunno_leases_held", "gauge",
		    "Leases a live worker holds now.");
		for (size_t i = 0; i < v->nworkers; i++) {
			bf(b, "idunno_leases_held{node=");
			prom_str(b, v->workers[i]);
			bf(b, "} %u\n", v->leases[i]);
		}
	}
	if (m != NULL) {
		head(b, "idunno_member_state", "gauge",
		    "Membership state as this node sees it: 0 alive, "
		    "1 suspected, 2 failed, 3 left.");
		for (size_t i = 0; i < nm; i++) {
			bf(b, "idunno_member_state{node=");
			prom_str(b, m[i].id);
			bf(b, ",role=");
			prom_str(b, m[i].role);
			bf(b, "} %d\n", m[i].state);
		}
	}
}

// ---- the sampler

static void
add_event(dash *d, uint64_t now, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
add_event(dash *d, uint64_t now, const char *fmt, ...)
{
	event *e = &d->ev[(d->evhead + d->nev) % MAX_EVENTS];
	if (d->nev == MAX_EVENTS) {
		d->evhead = (d->evhead + 1) % MAX_EVENTS;
	} else {
		d->nev++;
	}
	e->t_ms = now;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
}

static series *
find_series(dash *d, const char *job, bool create)
{
	for (size_t i = 0; i < d->ns; i++) {
		if (strcmp(d->s[i].job, job) == 0) {
			return &d->s[i];
		}
	}
	if (!create) {
		return NULL;
	}
	if (d->ns == MAX_SERIES) {
		// Forget the oldest series.
		memmove(&d->s[0], &d->s[1], sizeof(d->s[0]) * (MAX_SERIES - 1));
		d->ns--;
	}
	series *s = &d->s[d->ns++];
	memset(s, 0, sizeof(*s));
	snprintf(s->job, sizeof(s->job), "%s", job);
	s->state = -1;
	return s;
}

static void
summary_text(core_buf *b, const sched_summary *x, int prec)
{
	bf(b, " %8.*f %7.*f %8.*f %8.*f %8.*f %8.*f", prec, x->mean, prec,
	    x->stddev, prec, x->median, prec, x->p90, prec, x->p95, prec,
	    x->p99);
}

// The terminal's job table (idunno top): one line per job, then each
// job's processing and latency percentiles.
static void
jobs_text(core_buf *b, const coord_view *v, uint64_t now)
{
	b->len = 0;
	bf(b, "phase %s, epoch %llu, fairness ", idn_phase_name(v->phase),
	    (unsigned long long) v->epoch);
	if (v->fairness > 0) {
		bf(b, "%.3f (max/min 10 s rate of backlogged jobs)\n\n",
		    v->fairness);
	} else {
		bf(b, "-\n\n");
	}
	bf(b, "%-14s %-5s %-8s %-10s %3s %15s %8s %8s %8s\n", "JOB", "PHASE",
	    "STATE", "MODEL", "WRK", "DONE/TOTAL", "RATE_10S", "RATE",
	    "ACCURACY");
	for (size_t i = 0; i < v->njobs; i++) {
		const coord_job_view *j = &v->jobs[i];
		sched_summary p;
		sched_stats_summary(j->proc, now, &p);
		char done[40], acc[16] = "-";
		snprintf(done, sizeof(done), "%llu/%llu",
		    (unsigned long long) j->done, (unsigned long long) j->total);
		if (j->accuracy >= 0) {
			snprintf(acc, sizeof(acc), "%.2f%%", 100 * j->accuracy);
		}
		bf(b, "%-14.14s %-5s %-8s %-10.10s %3u %15s %8.1f %8.1f %8s\n",
		    j->job, j->kind == IDN_JOB_INFER ? "infer" : "train",
		    idn_job_state_name(j->state), j->model, j->nworkers, done,
		    p.rate_10s, p.rate, acc);
	}
	bf(b, "\n%-14s %-10s %8s %7s %8s %8s %8s %8s\n", "JOB", "MS",
	    "MEAN", "STDDEV", "MEDIAN", "P90", "P95", "P99");
	for (size_t i = 0; i < v->njobs; i++) {
		const coord_job_view *j = &v->jobs[i];
		if (j->kind != IDN_JOB_INFER) {
			continue;
		}
		sched_summary p, l;
		sched_stats_summary(j->proc, now, &p);
		sched_stats_summary(j->lat, now, &l);
		bf(b, "%-14.14s %-10s", j->job, "processing");
		summary_text(b, &p, 2);
		bf(b, "\n%-14s %-10s", "", "latency");
		summary_text(b, &l, 1);
		bf(b, "\n");
	}
}

static void
on_sample(void *arg, const coord_view *v)
{
	dash *d = arg;
	uint64_t now = idn_wall_ms();
	core_lock(&d->lock);
	if (d->epoch != 0 && v->epoch != d->epoch) {
		add_event(d, now, "coordinator epoch %llu (takeover)",
		    (unsigned long long) v->epoch);
	}
	d->epoch = v->epoch;
	jobs_text(&d->jobs_text, v, now);
	for (size_t i = 0; i < v->njobs; i++) {
		const coord_job_view *j = &v->jobs[i];
		series *s = find_series(d, j->job, true);
		if (s->state < 0) {
			add_event(d, now, "job %s: %s job of %s, %s", j->job,
			    j->kind == IDN_JOB_INFER ? "inference" : "training",
			    j->model, idn_job_state_name(j->state));
		} else if (s->state != j->state) {
			add_event(d, now, "job %s %s", j->job,
			    idn_job_state_name(j->state));
		}
		s->state = j->state;
		if (j->kind != IDN_JOB_INFER) {
			continue;
		}
		sched_summary p, l;
		sched_stats_summary(j->proc, now, &p);
		sched_stats_summary(j->lat, now, &l);
		point *pt = &s->p[(s->head + s->n) % HISTORY];
		if (s->n == HISTORY) {
			s->head = (s->head + 1) % HISTORY;
		} else {
			s->n++;
		}
		*pt = (point){now, p.rate_10s, l.p95};
	}
	core_unlock(&d->lock);
}

static void
sample_members(dash *d)
{
	idn_member *m;
	size_t nm;
	if (membership_members(d->o.mship, false, &m, &nm) != IDN_OK) {
		return;
	}
	uint64_t now = idn_wall_ms();
	core_lock(&d->lock);
	bool first = d->nseen == 0;
	for (size_t i = 0; i < nm; i++) {
		seen_member *s = NULL;
		for (size_t k = 0; k < d->nseen && s == NULL; k++) {
			s = strcmp(d->seen[k].id, m[i].id) == 0 ? &d->seen[k] :
			    NULL;
		}
		if (s == NULL && d->nseen < MAX_SEEN) {
			s = &d->seen[d->nseen++];
			snprintf(s->id, sizeof(s->id), "%s", m[i].id);
			if (!first) {
				add_event(d, now, "%s %s joined", m[i].role,
				    m[i].id);
			}
			s->state = m[i].state;
		}
		if (s != NULL && s->state != m[i].state) {
			add_event(d, now, "%s %s %s", m[i].role, m[i].id,
			    m[i].state == IDN_MEMBER_SUSPECT ? "suspected" :
			    m[i].state == IDN_MEMBER_FAILED ? "failed" :
			    m[i].state == IDN_MEMBER_LEFT ? "left" : "alive");
			s->state = m[i].state;
		}
	}
	core_unlock(&d->lock);
	idn_free(m);
}

static void publish(dash *d);

static void *
sampler(void *arg)
{
	dash *d = arg;
	core_lock(&d->lock);
	while (!d->stop) {
		core_unlock(&d->lock);
		bool up = coord_role_view(d->o.coord, on_sample, d) == IDN_OK;
		sample_members(d);
		if (up) {
			publish(d);
		}
		core_lock(&d->lock);
		uint64_t end = idn_clock_ms() + SAMPLE_MS;
		while (!d->stop &&
		    core_cond_wait_until(&d->cond, &d->lock, end) == IDN_OK) {
		}
	}
	core_unlock(&d->lock);
	return NULL;
}

// ---- /api/state

static void
on_state_view(void *arg, const coord_view *v)
{
	core_buf *b = arg;
	bf(b, ", \"epoch\": %llu, \"stats\": %s, \"leases\": {",
	    (unsigned long long) v->epoch, v->stats_json);
	for (size_t i = 0; i < v->nworkers; i++) {
		bf(b, "%s", i ? ", " : "");
		bstr(b, v->workers[i]);
		bf(b, ": %u", v->leases[i]);
	}
	bf(b, "}");
}

static void
state_json(dash *d, core_buf *b)
{
	bf(b, "{\"node\": ");
	bstr(b, d->self_id);
	bf(b, ", \"role\": ");
	bstr(b, d->role);
	bf(b, ", \"now\": %llu", (unsigned long long) idn_wall_ms());
	if (coord_role_view(d->o.coord, on_state_view, b) != IDN_OK) {
		bf(b, ", \"stats\": null");
	}
	idn_member *m;
	size_t nm;
	bf(b, ", \"members\": [");
	if (membership_members(d->o.mship, false, &m, &nm) == IDN_OK) {
		for (size_t i = 0; i < nm; i++) {
			bf(b, "%s{\"id\": ", i ? ", " : "");
			bstr(b, m[i].id);
			bf(b, ", \"role\": ");
			bstr(b, m[i].role);
			bf(b, ", \"state\": \"%s\", \"since_ms\": %llu}",
			    idn_member_state_name(m[i].state),
			    (unsigned long long) m[i].since_ms);
		}
		idn_free(m);
	}
	core_lock(&d->lock);
	bf(b, "], \"history\": {");
	for (size_t i = 0; i < d->ns; i++) {
		series *s = &d->s[i];
		bf(b, "%s", i ? ", " : "");
		bstr(b, s->job);
		bf(b, ": [");
		for (size_t k = 0; k < s->n; k++) {
			point *p = &s->p[(s->head + k) % HISTORY];
			bf(b, "%s[%llu, ", k ? ", " : "",
			    (unsigned long long) p->t_ms);
			bnum(b, p->rate_10s);
			bf(b, ", ");
			bnum(b, p->p95_ms);
			bf(b, "]");
		}
		bf(b, "]");
	}
	bf(b, "}, \"events\": [");
	for (size_t k = d->nev; k > 0; k--) { // newest first
		event *e = &d->ev[(d->evhead + k - 1) % MAX_EVENTS];
		bf(b, "%s{\"t_ms\": %llu, \"text\": ", k < d->nev ? ", " : "",
		    (unsigned long long) e->t_ms);
		bstr(b, e->text);
		bf(b, "}");
	}
	core_unlock(&d->lock);
	bf(b, "]}\n");
}

// The whole screen of `idunno top`: the job tables, the nodes with the
// failed and suspected marked, the last events.
static void
top_text(dash *d, core_buf *b)
{
	char clock[16];
	time_t t = (time_t) (idn_wall_ms() / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
	bf(b, "IDunno  coordinator %s  %s\n", d->self_id, clock);
	core_buf_append(b, d->jobs_text.data, d->jobs_text.len);
	idn_member *m;
	size_t nm;
	if (membership_members(d->o.mship, false, &m, &nm) == IDN_OK) {
		size_t bad = 0;
		for (size_t i = 0; i < nm; i++) {
			bad += m[i].state != IDN_MEMBER_ALIVE;
		}
		bf(b, "\nNODES  %zu, %zu not alive\n", nm, bad);
		for (size_t i = 0; i < nm; i++) {
			bf(b, "  %-9s %-8s %s%s\n",
			    m[i].state == IDN_MEMBER_ALIVE ? "" :
			    m[i].state == IDN_MEMBER_SUSPECT ? "SUSPECTED" :
			    m[i].state == IDN_MEMBER_FAILED ? "FAILED" : "LEFT",
			    m[i].role, m[i].id,
			    strcmp(m[i].id, d->self_id) == 0 ? "  (this)" : "");
		}
		idn_free(m);
	}
	bf(b, "\nEVENTS\n");
	core_lock(&d->lock);
	for (size_t k = d->nev; k > 0 && d->nev - k < 8; k--) {
		event *e = &d->ev[(d->evhead + k - 1) % MAX_EVENTS];
		t = (time_t) (e->t_ms / 1000);
		localtime_r(&t, &tm);
		strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
		bf(b, "  %s  %s\n", clock, e->text);
	}
	core_unlock(&d->lock);
}

// ---- routes

static void
on_metrics_view(void *arg, const coord_view *v)
{
	dash_metrics(v, NULL, 0, arg);
}

// This process's counters: they start at 0 with the process, whose
// member id (start time included) labels them, so a restarted node is a
// new series and no series goes back.
static void
node_metrics(dash *d, core_buf *b)
{
	net_counters n = {0};
	sdfs_counters s = {0};
	if (d->o.rpc != NULL) {
		rpc_counters(d->o.rpc, &n);
	}
	if (d->o.sdfs != NULL) {
		sdfs_counters_get(d->o.sdfs, &s);
	}
	const struct {
		const char *name, *help;
		uint64_t v;
	} c[] = {
	    {"idunno_sdfs_put_bytes_total", "Bytes of SDFS puts this node "
	        "took in as primary.", s.bytes_put},
	    {"idunno_sdfs_get_bytes_total", "SDFS chunk bytes this node "
	        "served.", s.bytes_get},
	    {"idunno_sdfs_rereplications_total", "File versions this node "
	        "pulled from a peer to restore replicas.", s.rereplications},
	    {"idunno_sdfs_repairs_total", "Corrupt local copies quarantined "
	        "to be pulled again.", s.repairs},
	    {"idunno_sdfs_scrub_passes_total", "Full scrub passes over this "
	        "node's store.", s.scrub_passes},
	    {"idunno_sdfs_scrub_pass_milliseconds_total", "Time those passes "
	        "took.", s.scrub_ms},
	    {"idunno_rpc_rejected_messages_total", "Requests dropped: bad "
	        "MAC, replayed, stale or malformed.", n.rejected},
	    {"idunno_rpc_messages_received_total", "RPC messages received.",
	        n.msgs_in},
	    {"idunno_rpc_messages_sent_total", "RPC messages sent.",
	        n.msgs_out},
	    {"idunno_rpc_received_bytes_total", "RPC bytes received.",
	        n.bytes_in},
	    {"idunno_rpc_sent_bytes_total", "RPC bytes sent.", n.bytes_out},
	};
	for (size_t i = 0; i < CORE_ARRAY_LEN(c); i++) {
		head(b, c[i].name, "counter", c[i].help);
		bf(b, "%s{node=", c[i].name);
		prom_str(b, d->self_id);
		bf(b, "} %llu\n", (unsigned long long) c[i].v);
	}
}

static int
on_get(void *arg, const char *path, core_buf *body, const char **ctype)
{
	dash *d = arg;
	if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
		*ctype = "text/html; charset=utf-8";
		core_buf_append(body, dash_page_html,
		    strlen((const char *) dash_page_html));
		return 200;
	}
	if (strcmp(path, "/app.js") == 0) {
		*ctype = "text/javascript; charset=utf-8";
		core_buf_append(body, dash_page_js,
		    strlen((const char *) dash_page_js));
		return 200;
	}
	if (strcmp(path, "/api/state") == 0) {
		*ctype = "application/json";
		state_json(d, body);
		return 200;
	}
	if (strcmp(path, "/metrics") == 0) {
		*ctype = "text/plain; version=0.0.4; charset=utf-8";
		coord_role_view(d->o.coord, on_metrics_view, body);
		idn_member *m;
		size_t nm;
		if (membership_members(d->o.mship, false, &m, &nm) == IDN_OK) {
			dash_metrics(NULL, m, nm, body);
			idn_free(m);
		}
		node_metrics(d, body);
		return 200;
	}
	if (strcmp(path, "/healthz") == 0) {
		bf(body, "ok\n");
		return 200;
	}
	if (strcmp(path, "/readyz") == 0) {
		// Ready: the active coordinator has restored its ledger, or
		// the standby holds a view of its caught-up copy.
		if (d->o.coord != NULL &&
		    coord_role_view(d->o.coord, on_metrics_view, &(core_buf){0})
		    == IDN_OK) {
			bf(body, "ready\n");
			return 200;
		}
		bf(body, "not ready: %s\n", d->o.coord != NULL ?
		    "the coordinator is starting or catching up" :
		    "not a coordinator");
		return 503;
	}
	bf(body, "not found\n");
	return 404;
}

// The snapshot on the node's event stream, once a second, for
// `idunno top` (which follows it rather than polling every node).
static void
publish(dash *d)
{
	core_buf json = {0}, text = {0};
	state_json(d, &json);
	top_text(d, &text);
	if (core_buf_append(&json, "", 1) == IDN_OK &&
	    core_buf_append(&text, "", 1) == IDN_OK) {
		membership_publish_stats(d->o.mship, (const char *) json.data,
		    (const char *) text.data);
	}
	core_buf_free(&json);
	core_buf_free(&text);
}

int
dash_open(const dash_opts *o, dash **out)
{
	if (o == NULL || o->mship == NULL || out == NULL) {
		return IDN_EINVAL;
	}
	dash *d = core_alloc(sizeof(*d));
	if (d == NULL) {
		return IDN_ENOMEM;
	}
	d->o = *o;
	snprintf(d->self_id, sizeof(d->self_id), "%s", o->self_id);
	snprintf(d->role, sizeof(d->role), "%s", o->role);
	d->o.self_id = d->self_id;
	d->o.role = d->role;
	pthread_mutex_init(&d->lock, NULL);
	core_cond_init(&d->cond);
	int rv = pthread_create(&d->sampler, NULL, sampler, d) == 0 ?
	    IDN_OK : IDN_ESYS;
	d->started = rv == IDN_OK;
	if (rv == IDN_OK && o->addr != NULL) {
		rv = net_http_open(o->addr, on_get, d, &d->http);
	}
	if (rv != IDN_OK) {
		dash_close(d);
		return rv;
	}
	*out = d;
	return IDN_OK;
}

const char *
dash_addr(const dash *d)
{
	return d != NULL && d->http != NULL ? net_http_addr(d->http) : NULL;
}

void
dash_close(dash *d)
{
	if (d == NULL) {
		return;
	}
	net_http_close(d->http);
	core_lock(&d->lock);
	d->stop = true;
	pthread_cond_broadcast(&d->cond);
	core_unlock(&d->lock);
	if (d->started) {
		pthread_join(d->sampler, NULL);
	}
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	core_buf_free(&d->jobs_text);
	free(d);
}
