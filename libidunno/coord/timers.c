// SPDX-License-Identifier: MIT
// timers.c: the coordinator's two threads of its own: the ticker (lease
// expiry, silent callers, reallocation) and the slow one, whose SDFS I/O
// runs outside the lock (a finished job's output assembled from its
// batches' results, the ledger checkpointed).
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <idunno/sched.h>
#include <idunno/sdfs.h>

#include "coord/coord_int.h"

#define TICK_MS 100
#define REASSIGN_MS 1000
#define CHECKPOINT_MS 10000

static void *
ticker(void *arg)
{
	coord *c = arg;
	core_lock(&c->lock);
	while (!c->stop) {
		uint64_t now = idn_wall_ms();
		bool acting = coord_acting_locked(c);
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
				coord_worker_gone(c, w, "silent");
			}
		}
		if (acting &&
		    (c->dirty || now >= c->last_assign_ms + REASSIGN_MS)) {
			coord_reassign(c, now);
		}
		core_cond_wait_log(&c->cond, &c->lock, &c->logq,
		    idn_clock_ms() + TICK_MS);
	}
	core_unlock_log(&c->lock, &c->logq);
	return NULL;
}

// What the assembly needs of a finished job, copied under the lock.
typedef struct {
	char job[RECORD_NAME_MAX + 1];
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
timing_row(void *arg, const char *job, const ledger_row *d)
{
	timing_ctx *t = arg;
	uint64_t unit = (uint64_t) t->f->batch * t->f->group;
	uint64_t first = d->task * unit;
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
	    (unsigned long long) d->end_ms, d->worker, d->attempt);
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
	char head[512], name[RECORD_PATH_MAX];
	int n = snprintf(head, sizeof(head), "# job=%s start_ms=%llu "
	    "rate=%.17g queries=%llu batch=%u group=%u\nfirst,count,"
	    "arrival_ms,lease_ms,start_ms,model_start_ms,model_end_ms,"
	    "commit_ms,worker,attempt\n", f->job,
	    (unsigned long long) f->start_ms, f->rate,
	    (unsigned long long) f->queries, f->batch, f->group);
	timing_ctx t = {f, &out, core_buf_append(&out, head, (size_t) n)};
	int rv = t.rv;
	if (rv == IDN_OK) {
		rv = ledger_tasks(c->led, false, f->job, timing_row, &t);
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
	uint32_t ntasks = f->ntasks, group = f->group;
	core_buf out = {0};
	uint64_t labelled = 0, right = 0;
	int rv = IDN_OK;
	for (uint32_t k = 0; k < ntasks && rv == IDN_OK; k++) {
		char name[RECORD_PATH_MAX];
		void *data = NULL;
		size_t len = 0;
		// A task's result is named by its first batch.
		record_result_name(name, sizeof(name), job, k * group);
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
	char name[RECORD_PATH_MAX];
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
			core_logf(&c->lg, IDN_LOG_WARN, "coord: ledger "
			    "checkpoint: %s", idn_strerror(rv));
		}
		idn_free(img);
	}
}

static void *
slow(void *arg)
{
	coord *c = arg;
	uint64_t last_ckpt = idn_clock_ms(), ckpt_changes = 0;
	core_lock(&c->lock);
	while (!c->stop) {
		cjob *todo = NULL;
		bool acting = coord_acting_locked(c);
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
				.ntasks = sched_job_ntasks(todo->sj),
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
			core_unlock_log(&c->lock, &c->logq);
			double acc = -1;
			int rv = assemble(c, &f, &acc);
			core_lock(&c->lock);
			cjob *j = coord_find_job(c, job);
			if (j == todo && rv == IDN_OK &&
			    j->state == IDN_JOB_RUNNING) {
				j->state = IDN_JOB_DONE;
				j->accuracy = acc;
				ledger_job_state(c->led, job, j->state, true, acc, "");
				c->want_checkpoint = true;
				c->dirty = true;
				coord_note(c, IDN_LOG_INFO, "coord: job completed: "
				    "%s, %u batches, accuracy %.4f", job, nb, acc);
			} else if (j == todo && rv != IDN_OK) {
				coord_note(c, IDN_LOG_WARN, "coord: assembling %s: "
				    "%s; retrying", job, idn_strerror(rv));
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
			core_unlock_log(&c->lock, &c->logq);
			checkpoint(c);
			core_lock(&c->lock);
			continue;
		}
		core_cond_wait_log(&c->cond, &c->lock, &c->logq,
		    idn_clock_ms() + 1000);
	}
	core_unlock_log(&c->lock, &c->logq);
	return NULL;
}

int
coord_timers_start(coord *c)
{
	if (pthread_create(&c->ticker, NULL, ticker, c) != 0) {
		return IDN_ESYS;
	}
	if (pthread_create(&c->slow, NULL, slow, c) != 0) {
		c->slow = c->ticker; // joined once by coord_timers_stop
		return IDN_ESYS;
	}
	return IDN_OK;
}

void
coord_timers_stop(coord *c)
{
	core_lock(&c->lock);
	bool running = c->ticker != 0;
	c->stop = true;
	pthread_cond_broadcast(&c->cond);
	core_unlock_log(&c->lock, &c->logq);
	if (running) {
		pthread_join(c->ticker, NULL);
		if (c->slow != c->ticker) {
			pthread_join(c->slow, NULL);
		}
	}
}
