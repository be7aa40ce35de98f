// SPDX-License-Identifier: MIT
// restore.c: a coordinator's start: its ledger (the local file, a
// standby's copy, or the SDFS checkpoint of the highest epoch), and the
// tables rebuilt from it: jobs, completions, open leases, the task-time
// estimates and the last allocation.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <idunno/sched.h>
#include <idunno/sdfs.h>

#include "coord/change.h"
#include "coord/coord_int.h"

typedef struct {
	coord *c;
	uint64_t now;
} restore_ctx;

static void
restore_task_ms(coord *c)
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
			j->task_ms = j->rec_ms = v;
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
		bool known = id && coord_find_worker(c, id, false) != NULL;
		cworker *w = id ? coord_find_worker(c, id, true) : NULL;
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

static void
restore_job(void *arg, const ledger_job *lj)
{
	restore_ctx *r = arg;
	coord *c = r->c;
	cjob *j;
	record_spec s;
	// An unreadable row is skipped, not fatal.
	if (c->njobs == MAX_JOBS || lj->state == IDN_JOB_REMOVED ||
	    coord_job_spec(lj, &s) != IDN_OK) {
		return;
	}
	// The total of an inference job was resolved at add time into limit.
	if (coord_job_new(c, &s, lj->state, lj->start_ms,
	        s.limit ? s.limit : 1, &j) != IDN_OK) {
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
restore_batch(void *arg, const char *job, const ledger_row *d)
{
	restore_ctx *r = arg;
	cjob *j = coord_find_job(r->c, job);
	if (j == NULL || j->sj == NULL) {
		return;
	}
	sched_job_restore_done(j->sj, d->task);
	coord_job_measure(j, d, d->end_ms);
}

static void
restore_lease(void *arg, const char *job, const ledger_row *d)
{
	restore_ctx *r = arg;
	const char *worker = d->worker;
	cjob *j = coord_find_job(r->c, job);
	uint32_t task = d->task, attempt = d->attempt;
	uint64_t expires = d->end_ms;
	if (j != NULL && j->spec.kind == IDN_JOB_TRAIN) {
		coord_train_restore(j, worker, task, attempt, expires, r->now);
		return;
	}
	if (j == NULL || j->sj == NULL || expires == 0) {
		return; // 0: taken back (lease_back), not leased again yet
	}
	bool known = coord_find_worker(r->c, worker, false) != NULL;
	cworker *w = coord_find_worker(r->c, worker, true);
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
	sched_job_restore_lease(j->sj, task, w->key, attempt,
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
		core_logf(&c->lg, IDN_LOG_INFO, "coord: restored the ledger "
		    "from the SDFS checkpoint (version %llu, epoch %llu: the "
		    "highest of %zu kept versions; %zu bytes)",
		    (unsigned long long) best_ver,
		    (unsigned long long) best_epoch, n, best_len);
	}
	idn_free(best);
}

int
coord_restore(coord *c)
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
		rv = ledger_tasks(c->led, false, NULL, restore_batch, &r);
	}
	if (rv == IDN_OK) {
		rv = ledger_tasks(c->led, true, NULL, restore_lease, &r);
	}
	uint64_t epoch = 1;
	ledger_get(c->led, "epoch", &epoch);
	c->epoch = c->h.epoch > epoch ? c->h.epoch : epoch;
	if (rv == IDN_OK && !c->h.passive) {
		rv = ledger_set(c->led, "epoch", c->epoch);
	}
	if (rv == IDN_OK) {
		restore_task_ms(c);
		restore_assign(c);
	}
	if (rv == IDN_OK && c->njobs > 0 && !c->h.passive) {
		core_logf(&c->lg, IDN_LOG_INFO, "coord: restored %zu jobs, "
		    "phase %s", c->njobs, idn_phase_name(c->phase));
	}
	return rv;
}
