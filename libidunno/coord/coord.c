// SPDX-License-Identifier: MIT
// coord.c: the coordinator. One lock guards the job and worker tables;
// slow work (SDFS reads for validation, result assembly, checkpoints) runs
// outside it. Times are wall-clock ms, so arrivals, workers' completion
// times and a restored ledger share one clock.
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <idunno/sched.h>
#include <idunno/sdfs.h>

#include "coord/coord_int.h"
#include "model/model.h"

// The ledger stores kinds and states as the public enums' values.
_Static_assert((int) LEDGER_INFER == (int) IDN_JOB_INFER &&
    (int) LEDGER_TRAIN == (int) IDN_JOB_TRAIN &&
    (int) LEDGER_RUNNING == (int) IDN_JOB_RUNNING &&
    (int) LEDGER_REMOVED == (int) IDN_JOB_REMOVED &&
    (int) LEDGER_FROM_MODEL == (int) IDN_TRAIN_FROM_MODEL &&
    (int) LEDGER_FROM_WEIGHTS == (int) IDN_TRAIN_FROM_WEIGHTS,
    "ledger and public job enums differ");

#define LIMIT_MAX 100000000ULL // queries of one inference job
#define TICK_MS 100
#define REASSIGN_MS 1000
#define CHECKPOINT_MS 10000
#define HYSTERESIS 0.05
#define DEFAULT_BATCH_MS 100.0
#define GROUP_TASK_MS 50.0     // an inference task's aimed-at length
#define GROUP_FILL_MS 100.0    // longest a group takes to arrive
// With nothing ready, a worker is leased batches that arrive within this
// long, until its queue reaches as far, so the queue carries it through a
// coordinator's takeover (about 0.6 s) at the offered rate; it starts
// each on arrival.
#define AHEAD_MS 1000
#define AHEAD_CALL 2           // leases ahead of arrival given in one call
// Ready batches given in one call: a worker short of work calls again at
// once, so a burst (the arrivals of a takeover's gap) is dealt out over
// all the workers' calls; to the first callers alone it was 70 batches
// to 3 of 8 workers while the others idled for a second.
#define READY_CALL 8
#define FOREIGN_QUEUE 2        // queued leases of jobs not a worker's share

#define note coord_note

void
coord_note(coord *c, int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (c->h.log != NULL) {
		c->h.log(c->h.log_arg, level, line);
	}
}

cjob *
coord_find_job(coord *c, const char *name)
{
	for (size_t i = 0; i < c->njobs; i++) {
		if (strcmp(c->jobs[i]->spec.job, name) == 0) {
			return c->jobs[i];
		}
	}
	return NULL;
}

cjob *
coord_job_by_key(coord *c, uint64_t key)
{
	for (size_t i = 0; i < c->njobs; i++) {
		if (c->jobs[i]->key == key) {
			return c->jobs[i];
		}
	}
	return NULL;
}

static void
job_free(cjob *j)
{
	if (j != NULL) {
		sched_job_free(j->sj);
		sched_stats_free(j->proc);
		sched_stats_free(j->lat);
		free(j);
	}
}

static cworker *
find_worker(coord *c, const char *id, bool create)
{
	for (size_t i = 0; i < c->nworkers; i++) {
		if (strcmp(c->workers[i].id, id) == 0) {
			return &c->workers[i];
		}
	}
	if (!create) {
		return NULL;
	}
	// Reuse the slot of a worker long gone before growing: one whose
	// leases all expired (a worker restored from the ledger with open
	// leases, not alive until it calls, keeps its slot and key).
	cworker *w = NULL;
	uint64_t now = idn_wall_ms();
	for (size_t i = 0; i < c->nworkers && w == NULL; i++) {
		cworker *o = &c->workers[i];
		w = !o->alive && now >= o->last_call_ms + COORD_LEASE_MS ? o :
		    NULL;
	}
	if (w == NULL && c->nworkers < MAX_WORKERS) {
		w = &c->workers[c->nworkers++];
	}
	if (w != NULL) {
		memset(w, 0, sizeof(*w));
		snprintf(w->id, sizeof(w->id), "%s", id);
		w->key = ++c->next_key;
		w->alive = true;
		c->dirty = true;
	}
	return w;
}

void
coord_set_quorum(coord *c, size_t need, uint64_t window_ms,
    uint64_t standby_ms)
{
	pthread_mutex_lock(&c->lock);
	c->quorum_need = need;
	c->quorum_window_ms = window_ms;
	c->standby_seen_ms = standby_ms;
	pthread_mutex_unlock(&c->lock);
}

static int
by_time_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
	return x > y ? -1 : x < y;
}

// The majority rule (lock held): a coordinator cut off from most of the
// cluster stops acting before a standby on the other side can promote.
// *since_ms (may be NULL): when it last held, i.e. when the need-th most
// recent contact was window_ms old (clock ms; now while it holds).
static bool
quorum_locked(coord *c, size_t *heard, uint64_t *since_ms)
{
	uint64_t now = idn_clock_ms();
	uint64_t since = now > c->quorum_window_ms ?
	    now - c->quorum_window_ms : 0;
	uint64_t t[MAX_WORKERS + 2];
	size_t nt = 0, n = 0;
	t[nt++] = now; // itself
	t[nt++] = c->standby_seen_ms;
	for (size_t i = 0; i < c->nworkers; i++) {
		t[nt++] = c->workers[i].seen_ms;
	}
	for (size_t i = 0; i < nt; i++) {
		n += t[i] != 0 && t[i] >= since;
	}
	if (heard != NULL) {
		*heard = n;
	}
	bool ok = n >= c->quorum_need;
	if (since_ms != NULL) {
		*since_ms = now;
		if (!ok) {
			qsort(t, nt, sizeof(*t), by_time_desc);
			size_t k = c->quorum_need <= nt ? c->quorum_need : nt;
			*since_ms = k > 0 && t[k - 1] != 0 ?
			    t[k - 1] + c->quorum_window_ms : 0;
		}
	}
	return ok;
}

bool
coord_quorum(coord *c, size_t *heard, uint64_t *since_ms)
{
	pthread_mutex_lock(&c->lock);
	bool ok = quorum_locked(c, heard, since_ms);
	pthread_mutex_unlock(&c->lock);
	return ok;
}

static bool
quorum(coord *c)
{
	pthread_mutex_lock(&c->lock);
	bool ok = quorum_locked(c, NULL, NULL);
	pthread_mutex_unlock(&c->lock);
	return ok;
}

bool
coord_infer_active(const cjob *j)
{
	return j->spec.kind == IDN_JOB_INFER && j->state == IDN_JOB_RUNNING &&
	    !sched_job_finished(j->sj);
}

// The queries of one task: a group of batches (the last may be short).
uint32_t
coord_unit(const cjob *j)
{
	return j->spec.batch * (j->spec.group ? j->spec.group : 1);
}

// The allocator's view of a job.
sched_fair_job
coord_fair_job(const cjob *j, uint64_t now)
{
	return (sched_fair_job){j->key, j->batch_ms, coord_unit(j),
	    j->spec.rate, (double) sched_job_backlog(j->sj, now)};
}

static double *
served(cworker *w, uint64_t job)
{
	for (int i = 0; i < MAX_JOBS; i++) {
		if (w->served_key[i] == job) {
			return &w->served_ms[i];
		}
	}
	for (int i = 0; i < MAX_JOBS; i++) {
		if (w->served_key[i] == 0) {
			w->served_key[i] = job;
			w->served_ms[i] = 0;
			return &w->served_ms[i];
		}
	}
	w->served_key[0] = job; // full: reuse a slot
	w->served_ms[0] = 0;
	return &w->served_ms[0];
}

// The allocation as text, one line per worker: its id, then a tab and
// "job share" per share. The ledger keeps it (when it changed) so that a
// standby answers `assign` from its copy.
static void
record_assign(coord *c)
{
	core_buf b = {0};
	for (size_t r = 0; c->alloc.workers != NULL && r < c->alloc.nworkers;
	     r++) {
		cworker *w = NULL;
		for (size_t i = 0; i < c->nworkers && w == NULL; i++) {
			w = c->workers[i].key == c->alloc.workers[r] ?
			    &c->workers[i] : NULL;
		}
		char line[LEDGER_NAME_MAX + 32];
		core_buf_append(&b, w ? w->id : "?", strlen(w ? w->id : "?"));
		for (size_t k = 0; k < c->alloc.nshares[r]; k++) {
			const sched_share *sh = &c->alloc.shares[r][k];
			cjob *j = coord_job_by_key(c, sh->job);
			int n = snprintf(line, sizeof(line), "\t%s %.4f",
			    j ? j->spec.job : "?", sh->share);
			core_buf_append(&b, line, (size_t) n);
		}
		core_buf_append(&b, "\n", 2); // with the NUL
		b.len--;
	}
	const char *text = b.data ? (const char *) b.data : "";
	if (c->assign_rec == NULL || strcmp(c->assign_rec, text) != 0) {
		char *copy = core_strdup(text);
		if (copy != NULL && ledger_set_text(c->led, "assign", text) ==
		    IDN_OK) {
			free(c->assign_rec);
			c->assign_rec = copy;
		} else {
			free(copy);
		}
	}
	core_buf_free(&b);
}

// The jobs' task-time estimates go to the ledger with the allocation (when
// one moved by more than 2%): the allocation is computed from them, and a
// promoted standby that started over from the default estimate moved
// workers between jobs, dropping the leases they held.
static void
record_batch_ms(coord *c)
{
	bool moved = false;
	core_buf b = {0};
	for (size_t i = 0; i < c->njobs; i++) {
		cjob *j = c->jobs[i];
		moved = moved || fabs(j->batch_ms - j->rec_ms) >
		    0.02 * j->rec_ms || (j->nbusy >= 4) != (j->rec_busy >= 4);
		char line[LEDGER_NAME_MAX + 48];
		int n = snprintf(line, sizeof(line), "%s\t%.3f\t%u\n",
		    j->spec.job, j->batch_ms, j->nbusy);
		core_buf_append(&b, line, (size_t) n);
	}
	core_buf_append(&b, "", 1);
	if (moved && b.data != NULL &&
	    ledger_set_text(c->led, "batch_ms", (const char *) b.data) ==
	    IDN_OK) {
		for (size_t i = 0; i < c->njobs; i++) {
			c->jobs[i]->rec_ms = c->jobs[i]->batch_ms;
			c->jobs[i]->rec_busy = c->jobs[i]->nbusy;
		}
	}
	core_buf_free(&b);
}

static void
restore_batch_ms(coord *c)
{
	char *text = NULL, *save = NULL;
	if (ledger_get_text(c->led, "batch_ms", &text) != IDN_OK) {
		return;
	}
	for (char *line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *f = NULL, *job = strtok_r(line, "\t", &f);
		char *ms = strtok_r(NULL, "\t", &f), *nb = strtok_r(NULL, "\t", &f);
		cjob *j = job && ms && nb ? coord_find_job(c, job) : NULL;
		double v = j ? strtod(ms, NULL) : 0;
		if (j != NULL && v > 0 && v < 1e7) {
			j->batch_ms = j->rec_ms = v;
			j->nbusy = j->rec_busy = (uint32_t) strtoul(nb, NULL, 10);
		}
	}
	free(text);
}

// The last allocation from the ledger: a standby's view shows the
// active's, and a promoted standby resumes it (moving workers to other
// jobs at a takeover would drop the leases they hold), its workers live
// once the membership says so, as with restored leases.
static void
restore_assign(coord *c)
{
	char *text = NULL;
	if (ledger_get_text(c->led, "assign", &text) != IDN_OK) {
		return;
	}
	size_t rows = 0;
	for (const char *p = text; *p; p++) {
		rows += *p == '\n';
	}
	sched_alloc *a = &c->alloc;
	a->workers = core_alloc(sizeof(*a->workers) * (rows ? rows : 1));
	a->nshares = core_alloc(sizeof(*a->nshares) * (rows ? rows : 1));
	a->shares = core_alloc(sizeof(*a->shares) * (rows ? rows : 1));
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line != NULL &&
	     a->workers && a->nshares && a->shares && a->nworkers < rows;
	     line = strtok_r(NULL, "\n", &save)) {
		char *f = NULL, *id = strtok_r(line, "\t", &f);
		bool known = id && find_worker(c, id, false) != NULL;
		cworker *w = id ? find_worker(c, id, true) : NULL;
		if (w == NULL) {
			continue;
		}
		if (!known && !c->h.passive) {
			w->alive = false;
			w->last_call_ms = idn_wall_ms();
		}
		size_t r = a->nworkers++;
		a->workers[r] = w->key;
		a->nshares[r] = 0;
		a->shares[r] = core_alloc(sizeof(sched_share) * MAX_JOBS);
		for (char *t = strtok_r(NULL, "\t", &f); t != NULL &&
		     a->shares[r] != NULL && a->nshares[r] < MAX_JOBS;
		     t = strtok_r(NULL, "\t", &f)) {
			char *sp = strrchr(t, ' ');
			cjob *j = NULL;
			if (sp != NULL) {
				*sp = '\0';
				j = coord_find_job(c, t);
			}
			if (j != NULL) {
				a->shares[r][a->nshares[r]++] =
				    (sched_share){j->key, strtod(sp + 1, NULL)};
			}
		}
	}
	c->have_alloc = a->workers && a->nshares && a->shares;
	if (!c->have_alloc) {
		sched_alloc_free(a);
	}
	free(text);
}

// Re-runs the allocation over the active inference jobs and live workers.
static void
reassign(coord *c, uint64_t now)
{
	sched_fair_job fj[MAX_JOBS];
	uint64_t wk[MAX_WORKERS];
	size_t nj = 0, nw = 0;
	for (size_t i = 0; i < c->njobs; i++) {
		cjob *j = c->jobs[i];
		if (!coord_infer_active(j)) {
			continue;
		}
		fj[nj++] = coord_fair_job(j, now);
	}
	for (size_t i = 0; i < c->nworkers; i++) {
		if (c->workers[i].alive) {
			wk[nw++] = c->workers[i].key;
		}
	}
	if (nw == 0 && c->have_alloc) {
		return; // kept for the workers' return (a promotion's first tick)
	}
	sched_alloc out;
	if (sched_fair_assign(fj, nj, wk, nw, c->have_alloc ? &c->alloc : NULL,
	        HYSTERESIS, &out) != IDN_OK) {
		return;
	}
	if (c->have_alloc) {
		sched_alloc_free(&c->alloc);
	}
	c->alloc = out;
	c->have_alloc = true;
	c->dirty = false;
	c->last_assign_ms = now;
	record_assign(c);
	record_batch_ms(c);
}

static size_t
alloc_row(coord *c, uint64_t worker)
{
	for (size_t i = 0; c->have_alloc && i < c->alloc.nworkers; i++) {
		if (c->alloc.workers != NULL && c->alloc.workers[i] == worker) {
			return i;
		}
	}
	return SIZE_MAX;
}

static int
job_new(coord *c, const ledger_spec *s, int state, uint64_t start_ms,
    uint64_t total, cjob **out)
{
	cjob *j = core_alloc(sizeof(*j));
	if (j == NULL) {
		return IDN_ENOMEM;
	}
	j->spec = *s;
	j->state = state;
	j->start_ms = start_ms;
	j->key = ++c->next_key;
	j->accuracy = -1;
	j->batch_ms = DEFAULT_BATCH_MS;
	int rv = sched_stats_new(&j->proc);
	if (rv == IDN_OK) {
		rv = sched_stats_new(&j->lat);
	}
	if (rv == IDN_OK && s->kind == IDN_JOB_INFER) {
		rv = sched_job_new(total, coord_unit(j), s->rate, start_ms,
		    &j->sj);
	}
	if (rv != IDN_OK) {
		job_free(j);
		return rv;
	}
	*out = j;
	return IDN_OK;
}

// ---- restore from the ledger

typedef struct {
	coord *c;
	uint64_t now;
} restore_ctx;

static void
restore_job(void *arg, const ledger_job *lj)
{
	restore_ctx *r = arg;
	coord *c = r->c;
	cjob *j;
	uint64_t total = lj->spec.limit;
	if (c->njobs == MAX_JOBS || lj->state == IDN_JOB_REMOVED) {
		return;
	}
	// The total of an inference job was resolved at add time into limit.
	if (job_new(c, &lj->spec, lj->state, lj->start_ms, total ? total : 1,
	        &j) != IDN_OK) {
		return;
	}
	j->accuracy = lj->accuracy;
	j->epoch = lj->epoch;
	j->loss = lj->loss;
	j->acc = lj->acc;
	snprintf(j->err, sizeof(j->err), "%s", lj->err);
	c->jobs[c->njobs++] = j;
}

static void
restore_batch(void *arg, const char *worker, const ledger_done *d)
{
	restore_ctx *r = arg;
	cjob *j = coord_find_job(r->c, d->job);
	uint64_t end_ms = d->end_ms;
	if (j == NULL || j->sj == NULL) {
		return;
	}
	sched_job_restore_done(j->sj, d->batch);
	uint64_t first;
	uint32_t count;
	sched_job_batch_range(j->sj, d->batch, &first, &count);
	if (count > 0) {
		sched_stats_add(j->proc, d->ms / count, count, end_ms);
		for (uint32_t q = 0; q < count; q++) {
			uint64_t a = sched_job_arrival_ms(j->sj, first + q);
			sched_stats_add(j->lat, end_ms > a ? (double) (end_ms - a) :
			    0, 1, end_ms);
		}
	}
}

static void
restore_lease(void *arg, const char *worker, const ledger_done *d)
{
	restore_ctx *r = arg;
	cjob *j = coord_find_job(r->c, d->job);
	uint32_t batch = d->batch, attempt = d->attempt;
	uint64_t expires = d->end_ms;
	if (j != NULL && j->spec.kind == IDN_JOB_TRAIN) {
		coord_train_restore(j, worker, batch, attempt, expires, r->now);
		return;
	}
	if (j == NULL || j->sj == NULL || expires == 0) {
		return; // 0: taken back (lease_back), not leased again yet
	}
	bool known = find_worker(r->c, worker, false) != NULL;
	cworker *w = find_worker(r->c, worker, true);
	if (w == NULL) {
		return;
	}
	// Not a live worker until the membership says so (a dead one's
	// leases then expire); a live one renews them.
	if (!known) {
		w->alive = false;
		w->last_call_ms = r->now;
	}
	// Its holder has a fresh lease time to say it is alive.
	sched_job_restore_lease(j->sj, batch, w->key, attempt,
	    r->now + COORD_LEASE_MS);
}

// No local ledger: the SDFS checkpoint with the highest epoch, if any. A
// coordinator paused or cut off past its detection may still write its
// stale checkpoint once it resumes, before it steps down: a newer SDFS
// version with a lower epoch inside. So the kept versions are read and
// the highest epoch wins (the newest version among equals): a lower
// epoch never replaces a higher one.
static void
restore_checkpoint(coord *c, const char *path)
{
	idn_sdfs_version *v = NULL;
	size_t n = 0;
	void *best = NULL;
	size_t best_len = 0;
	uint64_t best_epoch = 0, best_ver = 0;
	if (idn_sdfs_versions(c->h.sdfs, "ledger/checkpoint",
	        IDN_SDFS_KEEP_VERSIONS, &v, &n) != IDN_OK) {
		return;
	}
	for (size_t i = 0; i < n; i++) {
		void *img = NULL;
		size_t len = 0;
		uint64_t epoch = 1;
		if (idn_sdfs_get_buf(c->h.sdfs, "ledger/checkpoint",
		        v[i].version, &img, &len, NULL) != IDN_OK ||
		    ledger_image_get(img, len, "epoch", &epoch) ==
		    IDN_ECORRUPT || (best != NULL && epoch <= best_epoch)) {
			idn_free(img);
			continue;
		}
		idn_free(best);
		best = img;
		best_len = len;
		best_epoch = epoch;
		best_ver = v[i].version;
	}
	idn_free(v);
	if (best != NULL &&
	    ledger_open_image(path, best, best_len, &c->led) == IDN_OK) {
		note(c, IDN_LOG_INFO, "coord: restored the ledger from the "
		    "SDFS checkpoint (version %llu, epoch %llu: the highest of "
		    "%zu kept versions; %zu bytes)",
		    (unsigned long long) best_ver,
		    (unsigned long long) best_epoch, n, best_len);
	}
	idn_free(best);
}

static int
open_ledger(coord *c)
{
	char *dir = core_asprintf("%s/coord", c->h.data_dir);
	char *path = core_asprintf("%s/coord/ledger.db", c->h.data_dir);
	int rv = dir && path ? core_mkdir_p(dir) : IDN_ENOMEM;
	c->led = c->h.led;
	bool fresh = rv == IDN_OK && c->led == NULL && access(path, F_OK) != 0;
	if (rv == IDN_OK && fresh) {
		restore_checkpoint(c, path);
	}
	if (rv == IDN_OK && c->led == NULL) {
		rv = ledger_open(path, &c->led);
	}
	free(dir);
	free(path);
	if (rv != IDN_OK) {
		return rv;
	}
	uint64_t phase = IDN_PHASE_IDLE;
	ledger_get(c->led, "phase", &phase);
	c->phase = phase <= IDN_PHASE_INFER ? (int) phase : IDN_PHASE_IDLE;
	restore_ctx r = {c, idn_wall_ms()};
	rv = ledger_jobs(c->led, restore_job, &r);
	if (rv == IDN_OK) {
		rv = ledger_batches(c->led, false, NULL, restore_batch, &r);
	}
	if (rv == IDN_OK) {
		rv = ledger_batches(c->led, true, NULL, restore_lease, &r);
	}
	uint64_t epoch = 1;
	ledger_get(c->led, "epoch", &epoch);
	c->epoch = c->h.epoch > epoch ? c->h.epoch : epoch;
	if (rv == IDN_OK && !c->h.passive) {
		rv = ledger_set(c->led, "epoch", c->epoch);
	}
	if (rv == IDN_OK) {
		restore_batch_ms(c);
		restore_assign(c);
	}
	if (rv == IDN_OK && c->njobs > 0 && !c->h.passive) {
		note(c, IDN_LOG_INFO, "coord: restored %zu jobs, phase %s",
		    c->njobs, idn_phase_name(c->phase));
	}
	return rv;
}

// ---- replies

int
coord_refuse(wire_wr *reply, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int
coord_refuse(wire_wr *reply, int rv, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	wire_map(reply, 2);
	wire_ku64(reply, "epoch", coord_reply_epoch);
	wire_kstr(reply, "err", msg);
	return rv;
}

static int
ok_reply(wire_wr *reply)
{
	wire_map(reply, 1);
	wire_ku64(reply, "epoch", coord_reply_epoch);
	return IDN_OK;
}

#define SUPERSEDED "a newer coordinator is active; coordinator changing, retry"

// A job added or removed or a phase change is acknowledged once the
// standby has it too. A standby that did not acknowledge may have promoted
// itself while this coordinator was paused or cut off: then the change
// stays in this ledger only, which the newer coordinator's replaces when
// this one steps down, and the client retries there.
static int
synced_reply(coord *c, wire_wr *reply)
{
	if (c->h.sync != NULL && c->h.sync(c->h.sync_arg) != IDN_OK) {
		c->superseded = true;
		note(c, IDN_LOG_WARN, "coord: epoch %llu: the standby did not "
		    "acknowledge and a newer coordinator is active: change "
		    "not acknowledged", (unsigned long long) c->epoch);
		return coord_refuse(reply, IDN_EUNAVAIL, SUPERSEDED);
	}
	return ok_reply(reply);
}

// ---- phases and jobs

static int
on_phase(coord *c, const wire_val *b, wire_wr *reply)
{
	uint64_t phase;
	bool start;
	if (wire_get_u64(b, "phase", &phase) ||
	    wire_as_bool(wire_get(b, "start"), &start) ||
	    (phase != IDN_PHASE_TRAIN && phase != IDN_PHASE_INFER)) {
		return IDN_EPROTO;
	}
	const char *name = idn_phase_name((int) phase);
	pthread_mutex_lock(&c->lock);
	int rv = IDN_OK;
	if (start && c->phase != IDN_PHASE_IDLE && c->phase != (int) phase) {
		rv = coord_refuse(reply, IDN_EBUSY, "the %s phase is running; stop it"
		    " first ('idunno %s stop')", idn_phase_name(c->phase),
		    idn_phase_name(c->phase));
	} else if (!start && c->phase != (int) phase) {
		rv = coord_refuse(reply, IDN_EINVAL, "the %s phase is not running",
		    name);
	} else {
		c->phase = start ? (int) phase : IDN_PHASE_IDLE;
		rv = ledger_set(c->led, "phase", (uint64_t) c->phase);
		c->dirty = true;
		c->want_checkpoint = true;
		note(c, IDN_LOG_INFO, "coord: %s phase %s", name,
		    start ? "started" : "stopped");
		rv = rv == IDN_OK ? IDN_OK : coord_refuse(reply, rv,
		    "ledger: %s", idn_strerror(rv));
	}
	pthread_mutex_unlock(&c->lock);
	pthread_cond_broadcast(&c->cond);
	return rv == IDN_OK ? synced_reply(c, reply) : rv;
}

// Reads a small SDFS file; IDN_ENOENT when absent.
static int
sdfs_text(coord *c, const char *name, void **data, size_t *len)
{
	return idn_sdfs_get_buf(c->h.sdfs, name, 0, data, len, NULL);
}

static bool
sdfs_exists(coord *c, const char *name)
{
	idn_sdfs_info *info = NULL;
	int rv = idn_sdfs_ls(c->h.sdfs, name, &info);
	idn_free(info);
	return rv == IDN_OK;
}

// The batches per task and result file of an inference job, fixed at
// admission (a task run twice must write the same bytes): enough to run
// about GROUP_TASK_MS per task, so one SDFS put serves many batches, but
// no more than arrive in GROUP_FILL_MS at the offered rate, so a group
// fills quickly; 1 at modest rates. A model without a service estimate
// (torch) is guessed from its weights file's size, fitted to LeNet-5 and
// ResNet-18 (BUILD-NOTES: 1.3 and 28 ms per batch of 32 on one thread).
static uint32_t
choose_group(coord *c, const ledger_spec *s, double est)
{
	double fill = floor(s->rate * GROUP_FILL_MS / 1000.0 / s->batch);
	if (fill < 2) {
		return 1;
	}
	if (!(est > 0)) {
		idn_sdfs_info *info = NULL;
		double mb = 100;   // unknown: assume a large model
		if (idn_sdfs_ls(c->h.sdfs, s->weights, &info) == IDN_OK &&
		    info->nversions > 0) {
			mb = (double) info->versions[0].size_bytes / 1e6;
		}
		idn_free(info);
		est = s->batch * (0.04 + 0.02 * mb);
	}
	double g = ceil(GROUP_TASK_MS / est);
	g = g < fill ? g : fill;
	return g < 1 ? 1 : g > LEDGER_GROUP_MAX ? LEDGER_GROUP_MAX :
	    (uint32_t) g;
}

// Checks the model and the data a spec names (outside the lock: SDFS
// reads); fills the inference job's weights and total. IDN_OK or a
// refusal already written to reply.
static int
validate(coord *c, ledger_spec *s, uint64_t *total, double *est,
    wire_wr *reply)
{
	char name[LEDGER_PATH_MAX + 32];
	void *desc = NULL, *man = NULL;
	size_t dlen, mlen;
	model_desc d;
	ledger_manifest m;
	char *err = NULL;
	snprintf(name, sizeof(name), "models/%s/desc", s->model);
	int rv = sdfs_text(c, name, &desc, &dlen);
	if (rv != IDN_OK) {
		return coord_refuse(reply, rv == IDN_ENOENT ? IDN_ENOENT : rv,
		    "unknown model '%s' (no %s in SDFS: %s)", s->model, name,
		    idn_strerror(rv));
	}
	rv = model_desc_parse(desc, dlen, &d, &err);
	idn_free(desc);
	if (rv != IDN_OK) {
		rv = coord_refuse(reply, IDN_EINVAL, "model '%s': bad descriptor: %s",
		    s->model, err ? err : idn_strerror(rv));
		free(err);
		return rv;
	}
	const char *set = s->kind == IDN_JOB_INFER ? s->queries : s->data;
	snprintf(name, sizeof(name), s->kind == IDN_JOB_INFER ?
	    "%s/manifest" : "%s/train/manifest", set);
	rv = sdfs_text(c, name, &man, &mlen);
	if (rv == IDN_OK && ledger_manifest_parse(man, mlen, &m) != IDN_OK) {
		rv = IDN_ECORRUPT;
	}
	idn_free(man);
	if (rv != IDN_OK) {
		model_desc_free(&d);
		return coord_refuse(reply, rv == IDN_ENOENT ? IDN_ENOENT : rv,
		    "no %s at '%s' (%s: %s)", s->kind == IDN_JOB_INFER ?
		    "query set" : "training set", set, name, idn_strerror(rv));
	}
	if (m.c != d.channels || m.h != d.height || m.w != d.width) {
		rv = coord_refuse(reply, IDN_EINVAL, "the %s's images are %ux%ux%u "
		    "but model '%s' takes %ux%ux%u", s->kind == IDN_JOB_INFER ?
		    "query set" : "training set", m.c, m.h, m.w, s->model,
		    d.channels, d.height, d.width);
		model_desc_free(&d);
		return rv;
	}
	// A first guess of the batch time until measurements come in.
	*est = d.service_ms > 0 ? d.service_ms +
	    s->batch * d.service_per_query_us / 1000.0 : 0;
	model_desc_free(&d);
	s->group = 1;
	if (s->kind == IDN_JOB_INFER) {
		if (s->weights[0] != '\0') {
			if (!sdfs_exists(c, s->weights)) {
				return coord_refuse(reply, IDN_ENOENT, "no weights file "
				    "'%s' in SDFS", s->weights);
			}
		} else {
			snprintf(s->weights, sizeof(s->weights),
			    "models/%s/weights", s->model);
			if (!sdfs_exists(c, s->weights)) {
				snprintf(s->weights, sizeof(s->weights),
				    "models/%s/model.pt", s->model);
			}
		}
		// A limit past the set's size replays it (a load generator's
		// long run from a fixed set).
		if (s->limit > LIMIT_MAX) {
			return coord_refuse(reply, IDN_EINVAL, "--limit %llu: at "
			    "most %llu queries", (unsigned long long) s->limit,
			    (unsigned long long) LIMIT_MAX);
		}
		*total = s->limit > 0 ? s->limit : m.count;
		s->limit = *total;
		s->group = choose_group(c, s, *est);
	} else if (s->from == IDN_TRAIN_FROM_WEIGHTS) {
		snprintf(name, sizeof(name), "models/%s/weights", s->model);
		if (!sdfs_exists(c, name)) {
			return coord_refuse(reply, IDN_ENOENT, "--from weights: "
			    "model '%s' has no trained weights yet (no %s in "
			    "SDFS); train it first or use --from model",
			    s->model, name);
		}
	}
	return IDN_OK;
}

static int
on_add(coord *c, const wire_val *b, wire_wr *reply)
{
	ledger_spec s;
	if (ledger_spec_get(wire_get(b, "spec"), &s) != IDN_OK) {
		return IDN_EPROTO;
	}
	const char *why = ledger_spec_check(&s);
	if (why != NULL) {
		return coord_refuse(reply, IDN_EINVAL, "%s", why);
	}
	int want = s.kind == IDN_JOB_INFER ? IDN_PHASE_INFER : IDN_PHASE_TRAIN;
	pthread_mutex_lock(&c->lock);
	int phase = c->phase;
	cjob *old = coord_find_job(c, s.job);
	bool dup = old != NULL && old->state != IDN_JOB_REMOVED;
	pthread_mutex_unlock(&c->lock);
	if (phase != want) {
		return coord_refuse(reply, IDN_EINVAL, "%s jobs are added in the %s "
		    "phase, and the cluster is in the %s phase (run 'idunno %s "
		    "start')", s.kind == IDN_JOB_INFER ? "inference" :
		    "training", idn_phase_name(want), idn_phase_name(phase),
		    idn_phase_name(want));
	}
	if (dup) {
		return coord_refuse(reply, IDN_EEXIST, "job '%s' already exists",
		    s.job);
	}
	uint64_t total = 0;
	double est = 0;
	int rv = validate(c, &s, &total, &est, reply);
	if (rv != IDN_OK) {
		return rv;
	}
	uint64_t now = idn_wall_ms();
	pthread_mutex_lock(&c->lock);
	old = coord_find_job(c, s.job);
	cjob *j = NULL;
	if (old != NULL && old->state != IDN_JOB_REMOVED) {
		rv = coord_refuse(reply, IDN_EEXIST, "job '%s' already exists", s.job);
	} else if (c->phase != want) {
		rv = coord_refuse(reply, IDN_EINVAL, "the phase changed; try again");
	} else if (old == NULL && c->njobs == MAX_JOBS) {
		rv = coord_refuse(reply, IDN_EBUSY, "too many jobs (%d)", MAX_JOBS);
	} else if ((rv = job_new(c, &s, s.kind == IDN_JOB_INFER ?
	                IDN_JOB_RUNNING : IDN_JOB_QUEUED, now, total, &j)) !=
	    IDN_OK || (rv = ledger_job_put(c->led, &s, j->state, now)) !=
	    IDN_OK) {
		rv = coord_refuse(reply, rv, "cannot record the job: %s",
		    idn_strerror(rv));
		job_free(j);
	} else {
		if (est > 0) {
			j->batch_ms = est * s.group;
		}
		if (old != NULL) {
			for (size_t i = 0; i < c->njobs; i++) {
				if (c->jobs[i] == old) {
					c->jobs[i] = j;
				}
			}
			job_free(old);
		} else {
			c->jobs[c->njobs++] = j;
		}
		c->dirty = true;
		// A new job reaches the SDFS checkpoint at once: a coordinator
		// that loses its disk still knows every acknowledged job.
		c->want_checkpoint = true;
		if (s.kind == IDN_JOB_INFER) {
			note(c, IDN_LOG_INFO, "coord: job received: %s infer "
			    "model %s queries %s (%llu) weights %s batch %u "
			    "rate %.1f group %u", s.job, s.model, s.queries,
			    (unsigned long long) total, s.weights, s.batch,
			    s.rate, s.group);
		} else {
			note(c, IDN_LOG_INFO, "coord: job received: %s train "
			    "model %s data %s epochs %u batch %u lr %g", s.job,
			    s.model, s.data, s.epochs, s.batch, s.lr);
		}
	}
	pthread_mutex_unlock(&c->lock);
	pthread_cond_broadcast(&c->cond);
	return rv == IDN_OK ? synced_reply(c, reply) : rv;
}

static int
on_remove(coord *c, const wire_val *b, wire_wr *reply)
{
	char name[LEDGER_NAME_MAX + 1];
	if (wire_get_str(b, "job", name, sizeof(name)) != IDN_OK) {
		return coord_refuse(reply, IDN_EINVAL, "bad job name");
	}
	pthread_mutex_lock(&c->lock);
	cjob *j = coord_find_job(c, name);
	int rv;
	if (j == NULL || j->state == IDN_JOB_REMOVED) {
		rv = coord_refuse(reply, IDN_ENOENT, "no job '%s'", name);
	} else {
		j->state = IDN_JOB_REMOVED;
		coord_train_end(c, j, IDN_LOG_WARN, "the job was removed");
		rv = ledger_job_state(c->led, name, IDN_JOB_REMOVED, j->accuracy,
		    "removed");
		c->dirty = true;
		note(c, IDN_LOG_INFO, "coord: job removed: %s", name);
		rv = rv == IDN_OK ? IDN_OK : coord_refuse(reply, rv,
		    "ledger: %s", idn_strerror(rv));
	}
	pthread_mutex_unlock(&c->lock);
	return rv == IDN_OK ? synced_reply(c, reply) : rv;
}

static int
on_state(coord *c, const wire_val *b, wire_wr *reply)
{
	char name[LEDGER_NAME_MAX + 1];
	if (wire_get_str(b, "job", name, sizeof(name)) != IDN_OK) {
		return coord_refuse(reply, IDN_EINVAL, "bad job name");
	}
	pthread_mutex_lock(&c->lock);
	cjob *j = coord_find_job(c, name);
	int rv = IDN_OK;
	if (j == NULL) {
		rv = coord_refuse(reply, IDN_ENOENT, "no job '%s'", name);
	} else {
		wire_map(reply, 4);
		wire_ku64(reply, "epoch", coord_reply_epoch);
		wire_ku64(reply, "state", (uint64_t) j->state);
		wire_kf64(reply, "accuracy", j->accuracy);
		wire_kstr(reply, "err", j->err);
	}
	pthread_mutex_unlock(&c->lock);
	return rv;
}

// ---- the lease call

// A lease of w goes back for others at once; the ledger says so (expiry
// 0), so a standby that takes over does not give it back to w.
static void
lease_back(coord *c, cjob *j, cworker *w, uint32_t batch, uint32_t attempt,
    uint64_t now)
{
	sched_job_restore_lease(j->sj, batch, w->key, attempt, now);
	sched_job_expire(j->sj, now);
	ledger_lease_put(c->led, j->spec.job, batch, w->id, attempt, 0);
}

static void
complete(coord *c, cworker *w, const ledger_done *d, uint64_t now)
{
	cjob *j = coord_find_job(c, d->job);
	if (j == NULL || j->sj == NULL || j->state != IDN_JOB_RUNNING) {
		return;
	}
	if (d->rc != IDN_OK) {
		note(c, IDN_LOG_WARN, "coord: batch %s/%u failed on %s: %s",
		    d->job, d->batch, w->id, idn_strerror(d->rc));
		if (d->rc == IDN_EMODEL || d->rc == IDN_EINVAL ||
		    d->rc == IDN_ECORRUPT) {
			j->state = IDN_JOB_FAILED;
			snprintf(j->err, sizeof(j->err), "batch %u failed on %s:"
			    " %s", d->batch, w->id, idn_strerror(d->rc));
			ledger_job_state(c->led, j->spec.job, j->state, -1,
			    j->err);
			c->dirty = true;
			return;
		}
		// Anything else (SDFS unavailable for a moment): the batch goes
		// back at once instead of when its lease would expire.
		uint64_t holder, exp;
		uint32_t attempt;
		if (sched_job_lease_info(j->sj, d->batch, &holder, &attempt,
		        &exp) && holder == w->key && attempt == d->attempt) {
			lease_back(c, j, w, d->batch, attempt, now);
		}
		return;
	}
	if (sched_job_complete(j->sj, d->batch, now) != IDN_OK) {
		return; // done already (by another attempt): exactly once
	}
	ledger_batch_done(c->led, w->id, d);
	uint64_t first;
	uint32_t count;
	sched_job_batch_range(j->sj, d->batch, &first, &count);
	if (count > 0) {
		sched_stats_add(j->proc, d->ms / count, count, now);
		for (uint32_t q = 0; q < count; q++) {
			uint64_t a = sched_job_arrival_ms(j->sj, first + q);
			sched_stats_add(j->lat, d->end_ms > a ?
			    (double) (d->end_ms - a) : 0, 1, now);
		}
	}
	// The allocator shares worker time, so it needs the whole task's
	// time (inputs, model, result write), not the model's alone.
	// The first measurements replace the starting estimate (the mean of
	// those so far), later ones move it by a fifth: a job of a few dozen
	// tasks (groups of G batches) otherwise ran most of its life on the
	// estimate, 3x too low for LeNet-5 on 8 busy workers in the demo, and
	// got 1.5-3.5x the other job's rate.
	double busy = d->busy_ms > d->ms ? d->busy_ms : d->ms;
	double a = j->nbusy < 4 ? 1.0 / (j->nbusy + 1) : 0.2;
	j->nbusy++;
	j->batch_ms = (1 - a) * j->batch_ms + a * (busy > 0 ? busy : 1);
	note(c, IDN_LOG_INFO, "coord: batch completed: %s/%u by %s attempt %u "
	    "in %.1f ms", d->job, d->batch, w->id, d->attempt, d->ms);
	if (sched_job_finished(j->sj)) {
		c->dirty = true;
		pthread_cond_broadcast(&c->cond);
	}
}

// Whether the allocation gives worker w no share of job j but a share of
// another job that is backlogged (short of workers) with a batch ready:
// then w's queued leases of j go back. Jobs that get all they ask for
// keep what they hold (no churn).
static bool
moved_off(coord *c, cworker *w, const cjob *j, uint64_t now)
{
	size_t row = alloc_row(c, w->key);
	bool other = false;
	for (size_t i = 0; row != SIZE_MAX && i < c->alloc.nshares[row]; i++) {
		const sched_share *sh = &c->alloc.shares[row][i];
		if (sh->job == j->key) {
			return false;
		}
		cjob *o = coord_job_by_key(c, sh->job);
		if (o != NULL && coord_infer_active(o) &&
		    sched_job_ready(o->sj, now)) {
			sched_fair_job fo = coord_fair_job(o, now);
			other = other || sched_fair_backlogged(&c->alloc, &fo);
		}
	}
	return other;
}

// Whether the worker's allocation row gained a job since its last call
// that has a batch ready and of which it holds no lease: then its queued
// leases of other jobs go back and are leased again in pick order, so the
// new job's first batch runs after the task under way instead of behind
// the prefetched ones (a worker time-shared between an old and a new job
// keeps a share of the old one, so moved_off() does not apply).
static bool
gained_job(coord *c, cworker *w, const ledger_lease_req *r, uint64_t now)
{
	size_t row = alloc_row(c, w->key);
	size_t n = row == SIZE_MAX ? 0 : c->alloc.nshares[row];
	n = n > MAX_JOBS ? MAX_JOBS : n;
	bool gained = false;
	uint64_t was[MAX_JOBS];
	memcpy(was, w->row, sizeof(was));
	for (size_t i = 0; i < n; i++) {
		uint64_t k = c->alloc.shares[row][i].job;
		bool seen = false, held = false;
		for (size_t s = 0; s < w->nrow && !seen; s++) {
			seen = was[s] == k;
		}
		cjob *j = seen ? NULL : coord_job_by_key(c, k);
		for (size_t h = 0; j != NULL && h < r->nheld && !held; h++) {
			held = strcmp(r->held[h].job, j->spec.job) == 0;
		}
		gained = gained || (j != NULL && !held && coord_infer_active(j) &&
		    sched_job_ready(j->sj, now));
		w->row[i] = k;
	}
	w->nrow = n;
	// The first call to this coordinator (a new worker, or after a
	// takeover) only learns the row: its leases are not churned.
	gained = gained && w->row_set;
	w->row_set = true;
	return gained;
}

// The worker's first call to this coordinator (after a takeover or a
// restart): leases the ledger gave it that it does not hold (its report
// of the batch went to a coordinator that stepped down, or the reply
// with the lease died with the old one) go back at once instead of after
// a lease time. A batch done meanwhile counts once, and a rerun writes
// the same bytes.
static void
reconcile(coord *c, cworker *w, const ledger_lease_req *r, uint64_t now)
{
	w->reconciled = true;
	bool *mine = r->nheld ? core_alloc(r->nheld * sizeof(*mine)) : NULL;
	if (r->nheld > 0 && mine == NULL) {
		return; // they expire by time
	}
	for (size_t i = 0; i < r->nheld; i++) {
		cjob *j = coord_find_job(c, r->held[i].job);
		uint64_t holder, exp;
		uint32_t attempt;
		mine[i] = j != NULL && j->sj != NULL && sched_job_lease_info(j->sj,
		    r->held[i].batch, &holder, &attempt, &exp) &&
		    holder == w->key;
	}
	size_t k = 0;
	for (size_t i = 0; i < c->njobs; i++) {
		k += c->jobs[i]->sj ? sched_job_reclaim(c->jobs[i]->sj, w->key) :
		    0;
	}
	for (size_t i = 0; i < r->nheld; i++) {
		cjob *j = mine[i] ? coord_find_job(c, r->held[i].job) : NULL;
		if (j != NULL) {
			sched_job_restore_lease(j->sj, r->held[i].batch, w->key,
			    r->held[i].attempt, now + COORD_LEASE_MS);
			k -= k > 0;
		}
	}
	free(mine);
	if (k > 0) {
		note(c, IDN_LOG_INFO, "coord: %zu leases of %s it does not hold "
		    "go back", k, w->id);
		c->dirty = true;
	}
}

// A worker's completions, and at its first call to this coordinator the
// leases it holds (lock held): from a lease call or a gather's answer.
static void
take_reports(coord *c, cworker *w, const ledger_lease_req *r, uint64_t now)
{
	for (size_t i = 0; i < r->ndone; i++) {
		complete(c, w, &r->done[i], now);
	}
	if (!w->reconciled) {
		reconcile(c, w, r, now);
	}
}

static void
renew(coord *c, cworker *w, const ledger_held *h, uint64_t now, bool requeue,
    ledger_held *drop, size_t *ndrop)
{
	cjob *j = coord_find_job(c, h->job);
	bool keep = false;
	if (j != NULL && j->spec.kind == IDN_JOB_INFER &&
	    j->state == IDN_JOB_RUNNING && c->phase == IDN_PHASE_INFER) {
		keep = sched_job_renew(j->sj, h->batch, w->key, now,
		    COORD_LEASE_MS) == IDN_OK;
		if (keep && !h->running && (requeue || moved_off(c, w, j, now))) {
			// Not started, and the allocation moved this worker to
			// other work: the batch goes back for the workers that
			// now serve its job.
			lease_back(c, j, w, h->batch, h->attempt, now);
			keep = false;
		}
	} else if (j != NULL && j->spec.kind == IDN_JOB_TRAIN) {
		keep = coord_train_renew(c, w, h, now);
	}
	if (!keep && *ndrop < LEDGER_LIST_MAX) {
		drop[(*ndrop)++] = *h;
	}
}

// Picks the job this worker serves next: its shares first (deficit
// round robin), else, with any, any active job with a batch ready.
static cjob *
pick(coord *c, cworker *w, uint64_t now, bool any)
{
	size_t row = alloc_row(c, w->key);
	if (row != SIZE_MAX && c->alloc.nshares[row] > 0) {
		size_t n = c->alloc.nshares[row];
		double sv[MAX_JOBS];
		bool ready[MAX_JOBS];
		n = n > MAX_JOBS ? MAX_JOBS : n;
		const sched_share *sh = c->alloc.shares[row];
		double low = INFINITY;
		for (size_t i = 0; i < n; i++) {
			cjob *j = coord_job_by_key(c, sh[i].job);
			ready[i] = j != NULL && coord_infer_active(j) &&
			    sched_job_ready(j->sj, now);
			sv[i] = *served(w, sh[i].job);
			if (ready[i] && sv[i] / sh[i].share < low) {
				low = sv[i] / sh[i].share;
			}
		}
		// Served time counts from the least served ready job: the
		// gaps between jobs stay exact (halving them would favour the
		// job with the longer batches), and a job with nothing ready
		// banks no credit for later.
		for (size_t i = 0; isfinite(low) && i < n; i++) {
			double v = sv[i] / sh[i].share;
			sv[i] = (v < low ? 0 : v - low) * sh[i].share;
			*served(w, sh[i].job) = sv[i];
		}
		int k = sched_fair_pick(sh, n, sv, ready);
		if (k >= 0) {
			return coord_job_by_key(c, c->alloc.shares[row][k].job);
		}
	}
	if (!any) {
		return NULL;
	}
	cjob *best = NULL;
	uint64_t most = 0;
	for (size_t i = 0; i < c->njobs; i++) {
		cjob *j = c->jobs[i];
		if (coord_infer_active(j) && sched_job_ready(j->sj, now)) {
			uint64_t b = sched_job_backlog(j->sj, now);
			if (best == NULL || b > most) {
				best = j;
				most = b;
			}
		}
	}
	return best;
}

// When worker w would be through a queued lease h, given it is through
// the ones before it at free: it starts h on arrival, runs it for its
// job's measured batch time.
static double
queued_until(coord *c, const ledger_held *h, double free_at)
{
	cjob *j = coord_find_job(c, h->job);
	if (j == NULL || !coord_infer_active(j)) {
		return free_at;
	}
	double ready = (double) sched_job_ready_at(j->sj, h->batch);
	return (ready > free_at ? ready : free_at) + j->batch_ms;
}

// Leases up to want batches of the worker's shares: the ready ones
// first, READY_CALL a call at most; with none ready (or that many given),
// ones that arrive within AHEAD_MS, while the
// worker's queue (it is through it at free_at, wall ms) reaches less far,
// AHEAD_CALL a call, so the arrivals ahead are dealt out over the workers'
// calls instead of to the first caller. Batches of other jobs only while
// it has fewer than FOREIGN_QUEUE queued (queued holds how many): they go
// back once its shares have work again (moved_off).
static void
lease_infer(coord *c, cworker *w, uint32_t want, uint64_t now,
    double free_at, size_t queued, ledger_lease *out, size_t *n)
{
	size_t ahead = 0;
	while (*n < want) {
		cjob *j = *n < READY_CALL ? pick(c, w, now, false) : NULL;
		uint64_t by = now;
		if (j == NULL && ahead < AHEAD_CALL &&
		    free_at < (double) (now + AHEAD_MS)) {
			j = pick(c, w, now + AHEAD_MS, false);
			by = j != NULL ? sched_job_next_ready_ms(j->sj, now) : 0;
			ahead++;
		}
		if (j == NULL && queued + *n < FOREIGN_QUEUE) {
			j = pick(c, w, now, true);
			by = now;
		}
		if (j == NULL) {
			return;
		}
		uint32_t batch, attempt;
		if (sched_job_lease_ahead(j->sj, w->key, now, by, COORD_LEASE_MS,
		        &batch, &attempt) != IDN_OK) {
			return;
		}
		ledger_lease *l = &out[(*n)++];
		memset(l, 0, sizeof(*l));
		l->spec = j->spec;
		l->batch = batch;
		l->attempt = attempt;
		sched_job_batch_range(j->sj, batch, &l->first, &l->count);
		l->expires_ms = now + COORD_LEASE_MS;
		l->ready_ms = sched_job_ready_at(j->sj, batch);
		double start = (double) l->ready_ms;
		free_at = (start > free_at ? start : free_at) + j->batch_ms;
		*served(w, j->key) += j->batch_ms;
		if (!c->leased_any) {
			c->leased_any = true;
			note(c, IDN_LOG_INFO, "coord: first batch leased in epoch "
			    "%llu, %llu ms after the coordinator opened",
			    (unsigned long long) c->epoch, (unsigned long long)
			    (idn_clock_ms() - c->open_ms));
		}
		ledger_lease_put(c->led, j->spec.job, batch, w->id, attempt,
		    l->expires_ms);
		note(c, IDN_LOG_INFO, "coord: batch scheduled: %s/%u (queries "
		    "%llu..%llu) to %s attempt %u", j->spec.job, batch,
		    (unsigned long long) l->first,
		    (unsigned long long) (l->first + l->count - 1), w->id,
		    attempt);
	}
}

static uint64_t
mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int
on_lease(coord *c, const wire_val *b, wire_wr *reply)
{
	uint64_t t0 = mono_us();
	ledger_lease_req r;
	int rv = ledger_lease_req_get(b, &r);
	if (rv != IDN_OK) {
		return rv;
	}
	if (r.epoch > c->epoch) {
		ledger_lease_req_clear(&r);
		if (c->h.newer != NULL) {
			c->h.newer(c->h.newer_arg, r.epoch);
		}
		return coord_refuse(reply, IDN_ESTALE, "epoch %llu is newer than mine",
		    (unsigned long long) r.epoch);
	}
	ledger_lease out[64];
	ledger_held *drop = r.nheld ? core_alloc(r.nheld * sizeof(*drop)) : NULL;
	size_t n = 0, ndrop = 0;
	uint64_t now = idn_wall_ms();
	pthread_mutex_lock(&c->lock);
	cworker *w = find_worker(c, r.worker, true);
	if (w != NULL) {
		w->seen_ms = idn_clock_ms();
	}
	if (!quorum_locked(c, NULL, NULL)) {
		pthread_mutex_unlock(&c->lock);
		ledger_lease_req_clear(&r);
		free(drop);
		return coord_refuse(reply, IDN_EUNAVAIL, "no majority of the "
		    "cluster reachable; coordinator changing, retry");
	}
	// The call's ledger changes (completions, leases) commit together.
	ledger_begin(c->led);
	if (w != NULL && !w->alive) {
		w->alive = true;
		c->dirty = true;
	}
	if (w != NULL) {
		w->last_call_ms = now;
		if (r.addr[0] != '\0') {
			snprintf(w->addr, sizeof(w->addr), "%s", r.addr);
		}
	}
	if (w != NULL) {
		take_reports(c, w, &r, now);
	}
	if (w != NULL && r.release) {
		size_t k = 0;
		for (size_t i = 0; i < c->njobs; i++) {
			if (c->jobs[i]->sj != NULL) {
				k += sched_job_reclaim(c->jobs[i]->sj, w->key);
			}
		}
		if (k > 0) {
			note(c, IDN_LOG_WARN, "coord: worker %s gave back %zu "
			    "leases", w->id, k);
			c->dirty = true;
		}
	}
	for (size_t i = 0; w != NULL && i < r.ntrain; i++) {
		coord_train_progress(c, w, &r.train[i]);
	}
	if (w != NULL && c->dirty) {
		reassign(c, now);
	}
	bool requeue = w != NULL && c->phase == IDN_PHASE_INFER &&
	    gained_job(c, w, &r, now);
	uint32_t want = r.want;
	double free_at = (double) now;
	size_t queued = 0;
	for (size_t i = 0; w != NULL && drop != NULL && i < r.nheld; i++) {
		size_t before = ndrop;
		renew(c, w, &r.held[i], now, requeue, drop, &ndrop);
		// A queued lease taken back makes room for another.
		want += ndrop > before && !r.held[i].running;
		if (ndrop == before && !r.held[i].running) {
			free_at = queued_until(c, &r.held[i], free_at);
			queued++;
		}
	}
	want = want > 64 ? 64 : want;
	want = idn_clock_ms() < c->hold_until_ms ? 0 : want;
	if (w != NULL && c->phase == IDN_PHASE_INFER) {
		lease_infer(c, w, want, now, free_at, queued, out, &n);
	} else if (w != NULL && c->phase == IDN_PHASE_TRAIN && want > 0) {
		coord_train_lease(c, w, now, out, &n);
	}
	ledger_commit(c->led);
	pthread_mutex_unlock(&c->lock);
	ledger_lease_rep rep = {c->epoch, out, n, drop, ndrop};
	ledger_lease_rep_put(reply, &rep);
	idn_free(drop);
	ledger_lease_req_clear(&r);
	uint64_t us = mono_us() - t0;
	pthread_mutex_lock(&c->lock);
	c->lease_us[c->lease_ops % LEASE_RING] = us > UINT32_MAX ? UINT32_MAX :
	    (uint32_t) us;
	c->lease_ops++;
	pthread_mutex_unlock(&c->lock);
	return w != NULL ? IDN_OK : IDN_EBUSY;
}

void
coord_hold(coord *c, uint64_t until)
{
	pthread_mutex_lock(&c->lock);
	c->hold_until_ms = until;
	pthread_mutex_unlock(&c->lock);
}

void
coord_absorb(coord *c, const ledger_lease_req *r)
{
	uint64_t now = idn_wall_ms();
	pthread_mutex_lock(&c->lock);
	cworker *w = find_worker(c, r->worker, true);
	ledger_begin(c->led);
	if (w != NULL) {
		take_reports(c, w, r, now);
	}
	ledger_commit(c->led);
	pthread_mutex_unlock(&c->lock);
}

_Thread_local uint64_t coord_reply_epoch;

void
coord_set_standby(coord *c, const char *id)
{
	pthread_mutex_lock(&c->lock);
	snprintf(c->standby, sizeof(c->standby), "%s", id ? id : "");
	pthread_mutex_unlock(&c->lock);
}

uint64_t
coord_epoch(const coord *c)
{
	return c->epoch;
}

ledger *
coord_ledger(coord *c)
{
	return c->led;
}

int
coord_handle(coord *c, const char *type, const wire_val *body,
    wire_wr *reply)
{
	coord_reply_epoch = c->epoch;
	if (!c->h.passive && (strcmp(type, "sched.add") == 0 ||
	        strcmp(type, "sched.remove") == 0 ||
	        strcmp(type, "sched.phase") == 0) && !quorum(c)) {
		return coord_refuse(reply, IDN_EUNAVAIL, "no majority of the "
		    "cluster reachable; coordinator changing, retry");
	}
	if (c->superseded && (strcmp(type, "sched.add") == 0 ||
	        strcmp(type, "sched.remove") == 0 ||
	        strcmp(type, "sched.phase") == 0)) {
		return coord_refuse(reply, IDN_EUNAVAIL, SUPERSEDED);
	}
	if (c->h.passive && strcmp(type, "sched.stats") != 0 &&
	    strcmp(type, "sched.jobs") != 0 && strcmp(type, "sched.assign") != 0 &&
	    strcmp(type, "sched.state") != 0) {
		return coord_refuse(reply, IDN_EUNAVAIL, "this is the standby "
		    "coordinator; coordinator changing, retry");
	}
	if (strcmp(type, "sched.lease") == 0) {
		return on_lease(c, body, reply);
	}
	if (strcmp(type, "sched.add") == 0) {
		return on_add(c, body, reply);
	}
	if (strcmp(type, "sched.remove") == 0) {
		return on_remove(c, body, reply);
	}
	if (strcmp(type, "sched.phase") == 0) {
		return on_phase(c, body, reply);
	}
	if (strcmp(type, "sched.state") == 0) {
		return on_state(c, body, reply);
	}
	if (strcmp(type, "sched.stats") == 0 || strcmp(type, "sched.jobs") == 0 ||
	    strcmp(type, "sched.assign") == 0) {
		return coord_report(c, type, body, reply);
	}
	return IDN_EPROTO;
}

// The worker is gone: its leases go back at once.
static void
worker_gone(coord *c, cworker *w, const char *why)
{
	w->alive = false;
	size_t n = 0;
	for (size_t i = 0; i < c->njobs; i++) {
		cjob *j = c->jobs[i];
		if (j->sj != NULL) {
			n += sched_job_reclaim(j->sj, w->key);
		}
	}
	n += coord_train_gone(c, w);
	note(c, IDN_LOG_INFO, "coord: worker %s %s: %zu leases reclaimed",
	    w->id, why, n);
	c->dirty = true;
}

void
coord_member(coord *c, const char *id, const char *role, bool alive)
{
	if (strcmp(role, "worker") != 0) {
		return;
	}
	pthread_mutex_lock(&c->lock);
	cworker *w = find_worker(c, id, alive);
	if (w != NULL) {
		w->member = true;
	}
	if (w != NULL && !alive && w->alive && !quorum_locked(c, NULL, NULL)) {
		// Cut off: the others' failures are not acted on here (its
		// leases expire by time once the rule holds again).
		w->alive = false;
	} else if (w != NULL && !alive && w->alive) {
		worker_gone(c, w, "failed");
	} else if (w != NULL && alive && !w->alive) {
		w->alive = true;
		c->dirty = true;
	}
	pthread_mutex_unlock(&c->lock);
}

// ---- timers: expiry and reallocation (fast), assembly and checkpoints
// (slow, SDFS I/O, outside the lock)

static void *
ticker(void *arg)
{
	coord *c = arg;
	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		uint64_t now = idn_wall_ms();
		bool acting = quorum_locked(c, NULL, NULL);
		for (size_t i = 0; acting && i < c->njobs; i++) {
			cjob *j = c->jobs[i];
			if (j->sj != NULL && j->state == IDN_JOB_RUNNING &&
			    sched_job_expire(j->sj, now) > 0) {
				c->dirty = true;
			}
		}
		if (acting) {
			coord_train_expire(c, now);
		}
		// A caller the membership never reported (a stand-in of
		// idn_sched_lease_probe) leaves the allocation when it goes
		// silent; members leave through the membership.
		for (size_t i = 0; acting && i < c->nworkers; i++) {
			cworker *w = &c->workers[i];
			if (w->alive && !w->member && w->last_call_ms != 0 &&
			    now >= w->last_call_ms + COORD_LEASE_MS) {
				worker_gone(c, w, "silent");
			}
		}
		if (acting &&
		    (c->dirty || now >= c->last_assign_ms + REASSIGN_MS)) {
			reassign(c, now);
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

// What the assembly needs of a finished job, copied under the lock.
typedef struct {
	char job[LEDGER_NAME_MAX + 1];
	uint32_t ntasks;
	uint32_t batch, group;
	uint64_t queries;
	uint64_t start_ms;
	double rate;
} finished;

typedef struct {
	const finished *f;
	core_buf *out;
	int rv;
} timing_ctx;

static void
timing_row(void *arg, const char *worker, const ledger_done *d)
{
	timing_ctx *t = arg;
	uint64_t unit = (uint64_t) t->f->batch * t->f->group;
	uint64_t first = d->batch * unit;
	if (t->rv != IDN_OK || first >= t->f->queries) {
		return;
	}
	uint64_t count = CORE_MIN(unit, t->f->queries - first);
	char line[320];
	int n = snprintf(line, sizeof(line), "%llu,%llu,%llu,%llu,%llu,%llu,"
	    "%llu,%llu,%s,%u\n", (unsigned long long) first,
	    (unsigned long long) count, (unsigned long long)
	    sched_arrival_ms(t->f->start_ms, t->f->rate, first + count - 1),
	    (unsigned long long) d->lease_ms, (unsigned long long) d->start_ms,
	    (unsigned long long) d->model_start_ms,
	    (unsigned long long) d->model_end_ms,
	    (unsigned long long) d->end_ms, worker, d->attempt);
	t->rv = n > 0 && (size_t) n < sizeof(line) ?
	    core_buf_append(t->out, line, (size_t) n) : IDN_EINVAL;
}

// results/JOB/timing: the job's tasks as the ledger recorded them (a
// standby's copy has the same rows), with the start and rate that give
// each query's arrival exactly (docs/SCHED.md).
static int
put_timing(coord *c, const finished *f)
{
	core_buf out = {0};
	char head[512], name[LEDGER_PATH_MAX];
	int n = snprintf(head, sizeof(head), "# job=%s start_ms=%llu "
	    "rate=%.17g queries=%llu batch=%u group=%u\nfirst,count,"
	    "arrival_ms,lease_ms,start_ms,model_start_ms,model_end_ms,"
	    "commit_ms,worker,attempt\n", f->job,
	    (unsigned long long) f->start_ms, f->rate,
	    (unsigned long long) f->queries, f->batch, f->group);
	timing_ctx t = {f, &out, core_buf_append(&out, head, (size_t) n)};
	int rv = t.rv;
	if (rv == IDN_OK) {
		rv = ledger_batches(c->led, false, f->job, timing_row, &t);
	}
	rv = rv ? rv : t.rv;
	snprintf(name, sizeof(name), "results/%s/timing", f->job);
	if (rv == IDN_OK) {
		rv = idn_sdfs_put_buf(c->h.sdfs, name, out.data, out.len, NULL);
	}
	core_buf_free(&out);
	return rv;
}

// Concatenates the job's batch results in order into results/JOB/output,
// counts the answers that match their label, and writes the job's
// timing beside it.
static int
assemble(coord *c, const finished *f, double *accuracy)
{
	const char *job = f->job;
	uint32_t nbatches = f->ntasks, group = f->group;
	core_buf out = {0};
	uint64_t labelled = 0, right = 0;
	int rv = IDN_OK;
	for (uint32_t k = 0; k < nbatches && rv == IDN_OK; k++) {
		char name[LEDGER_PATH_MAX];
		void *data = NULL;
		size_t len = 0;
		// A task's result is named by its first batch.
		ledger_batch_name(name, sizeof(name), job, k * group);
		rv = idn_sdfs_get_buf(c->h.sdfs, name, 0, &data, &len, NULL);
		if (rv == IDN_OK) {
			rv = core_buf_append(&out, data, len);
		}
		for (char *p = data; rv == IDN_OK && p && p < (char *) data + len;) {
			unsigned long long q;
			unsigned pred, label;
			float score;
			if (sscanf(p, "%llu,%u,%f,%u", &q, &pred, &score,
			        &label) == 4) {
				labelled++;
				right += pred == label;
			}
			char *nl = memchr(p, '\n', (size_t) ((char *) data + len - p));
			p = nl ? nl + 1 : (char *) data + len;
		}
		idn_free(data);
	}
	char name[LEDGER_PATH_MAX];
	snprintf(name, sizeof(name), "results/%s/output", job);
	if (rv == IDN_OK) {
		rv = idn_sdfs_put_buf(c->h.sdfs, name,
		    out.data ? (const void *) out.data : "", out.len, NULL);
	}
	core_buf_free(&out);
	if (rv == IDN_OK) {
		rv = put_timing(c, f);
	}
	*accuracy = labelled ? (double) right / (double) labelled : -1;
	return rv;
}

static void
checkpoint(coord *c)
{
	void *img;
	size_t len;
	if (ledger_image(c->led, &img, &len) == IDN_OK) {
		int rv = idn_sdfs_put_buf(c->h.sdfs, "ledger/checkpoint", img,
		    len, NULL);
		if (rv != IDN_OK) {
			note(c, IDN_LOG_WARN, "coord: ledger checkpoint: %s",
			    idn_strerror(rv));
		}
		idn_free(img);
	}
}

static void *
slow(void *arg)
{
	coord *c = arg;
	uint64_t last_ckpt = idn_clock_ms(), ckpt_changes = 0;
	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		cjob *todo = NULL;
		bool acting = quorum_locked(c, NULL, NULL);
		for (size_t i = 0; acting && todo == NULL && i < c->njobs;
		     i++) {
			cjob *j = c->jobs[i];
			if (j->sj != NULL && j->state == IDN_JOB_RUNNING &&
			    !j->assembling && sched_job_finished(j->sj)) {
				todo = j;
			}
		}
		if (todo != NULL) {
			finished f = {
				.ntasks = sched_job_nbatches(todo->sj),
				.batch = todo->spec.batch,
				.group = CORE_MAX(todo->spec.group, 1u),
				.queries = sched_job_total(todo->sj),
				.start_ms = todo->start_ms,
				.rate = todo->spec.rate,
			};
			snprintf(f.job, sizeof(f.job), "%s", todo->spec.job);
			const char *job = f.job;
			uint32_t nb = f.ntasks;
			todo->assembling = true;
			pthread_mutex_unlock(&c->lock);
			double acc = -1;
			int rv = assemble(c, &f, &acc);
			pthread_mutex_lock(&c->lock);
			cjob *j = coord_find_job(c, job);
			if (j == todo && rv == IDN_OK &&
			    j->state == IDN_JOB_RUNNING) {
				j->state = IDN_JOB_DONE;
				j->accuracy = acc;
				ledger_job_state(c->led, job, j->state, acc, "");
				c->want_checkpoint = true;
				c->dirty = true;
				note(c, IDN_LOG_INFO, "coord: job completed: %s, %u "
				    "batches, accuracy %.4f", job, nb, acc);
			} else if (j == todo && rv != IDN_OK) {
				note(c, IDN_LOG_WARN, "coord: assembling %s: %s; "
				    "retrying", job, idn_strerror(rv));
			}
			if (j == todo) {
				j->assembling = false;
			}
			continue;
		}
		uint64_t now = idn_clock_ms();
		uint64_t changes = ledger_changes(c->led);
		if (acting && (c->want_checkpoint ||
		        now >= last_ckpt + CHECKPOINT_MS) &&
		    changes != ckpt_changes) {
			c->want_checkpoint = false;
			last_ckpt = now;
			ckpt_changes = changes;
			pthread_mutex_unlock(&c->lock);
			checkpoint(c);
			pthread_mutex_lock(&c->lock);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int
coord_open(const coord_host *h, coord **out)
{
	coord *c = core_alloc(sizeof(*c));
	if (c == NULL) {
		return IDN_ENOMEM;
	}
	c->h = *h;
	snprintf(c->self, sizeof(c->self), "%s", h->self_id);
	c->h.self_id = c->self;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->dirty = true;
	c->own_led = !h->passive;
	c->open_ms = idn_clock_ms();
	int rv = open_ledger(c);
	if (rv == IDN_OK && h->stream != NULL) {
		ledger_set_stream(c->led, h->stream, h->stream_arg);
	}
	if (rv != IDN_OK || h->passive) {
		*out = rv == IDN_OK ? c : NULL;
		if (rv == IDN_OK) {
			return IDN_OK;
		}
		note(c, IDN_LOG_ERROR, "coord: cannot open the ledger: %s",
		    idn_strerror(rv));
		c->own_led = c->h.led == NULL;
		coord_close(c);
		return rv;
	}
	if (pthread_create(&c->ticker, NULL, ticker, c) != 0) {
		coord_close(c);
		return IDN_ESYS;
	}
	if (pthread_create(&c->slow, NULL, slow, c) != 0) {
		c->slow = c->ticker; // joined once below
		coord_close(c);
		return IDN_ESYS;
	}
	*out = c;
	return IDN_OK;
}

void
coord_close(coord *c)
{
	if (c == NULL) {
		return;
	}
	pthread_mutex_lock(&c->lock);
	bool running = c->ticker != 0;
	c->stop = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (running) {
		pthread_join(c->ticker, NULL);
		if (c->slow != c->ticker) {
			pthread_join(c->slow, NULL);
		}
	}
	for (size_t i = 0; i < c->njobs; i++) {
		job_free(c->jobs[i]);
	}
	if (c->have_alloc) {
		sched_alloc_free(&c->alloc);
	}
	free(c->assign_rec);
	if (c->own_led) {
		ledger_set_stream(c->led, NULL, NULL);
		ledger_close(c->led);
	}
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
