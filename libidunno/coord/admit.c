// SPDX-License-Identifier: MIT
// admit.c: the requests that change the jobs or the phase (a phase
// started or stopped, a job added after its model and data are checked
// in SDFS, a job removed) and a job's state. A change is in the ledger
// when its handler returns IDN_OK, having written no reply: coord.c
// acknowledges it once the standby has it.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/sched.h>
#include <idunno/sdfs.h>

#include "coord/change.h"
#include "coord/coord_int.h"
#include "model/model.h"

#define LIMIT_MAX 100000000ULL // queries of one inference job
#define GROUP_TASK_MS 50.0     // an inference task's aimed-at length
#define GROUP_FILL_MS 100.0    // longest a group takes to arrive

int
coord_on_phase(coord *c, const wire_val *b, wire_wr *reply)
{
	uint64_t phase;
	bool start;
	if (wire_get_u64(b, "phase", &phase) ||
	    wire_as_bool(wire_get(b, "start"), &start) ||
	    (phase != IDN_PHASE_TRAIN && phase != IDN_PHASE_INFER)) {
		return IDN_EPROTO;
	}
	const char *name = idn_phase_name((int) phase);
	core_lock(&c->lock);
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
		coord_note(c, IDN_LOG_INFO, "coord: %s phase %s", name,
		    start ? "started" : "stopped");
		rv = rv == IDN_OK ? IDN_OK : coord_refuse(reply, rv,
		    "ledger: %s", idn_strerror(rv));
	}
	core_unlock_log(&c->lock, &c->logq);
	pthread_cond_broadcast(&c->cond);
	return rv;
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
choose_group(coord *c, const record_spec *s, double est)
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
	return g < 1 ? 1 : g > RECORD_GROUP_MAX ? RECORD_GROUP_MAX :
	    (uint32_t) g;
}

// Checks the model and the data a spec names (outside the lock: SDFS
// reads); fills the inference job's weights and total. IDN_OK or a
// refusal already written to reply.
static int
validate(coord *c, record_spec *s, uint64_t *total, double *est,
    wire_wr *reply)
{
	char name[RECORD_PATH_MAX + 32];
	void *desc = NULL, *man = NULL;
	size_t dlen, mlen;
	model_desc d;
	record_manifest m;
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
	if (rv == IDN_OK && record_manifest_parse(man, mlen, &m) != IDN_OK) {
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

int
coord_on_add(coord *c, const wire_val *b, wire_wr *reply)
{
	record_spec s;
	if (record_spec_get(wire_get(b, "spec"), &s) != IDN_OK) {
		return IDN_EPROTO;
	}
	const char *why = record_spec_check(&s);
	if (why != NULL) {
		return coord_refuse(reply, IDN_EINVAL, "%s", why);
	}
	int want = s.kind == IDN_JOB_INFER ? IDN_PHASE_INFER : IDN_PHASE_TRAIN;
	core_lock(&c->lock);
	int phase = c->phase;
	cjob *old = coord_find_job(c, s.job);
	bool dup = old != NULL && old->state != IDN_JOB_REMOVED;
	core_unlock_log(&c->lock, &c->logq);
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
	core_lock(&c->lock);
	old = coord_find_job(c, s.job);
	cjob *j = NULL;
	if (old != NULL && old->state != IDN_JOB_REMOVED) {
		rv = coord_refuse(reply, IDN_EEXIST, "job '%s' already exists", s.job);
	} else if (c->phase != want) {
		rv = coord_refuse(reply, IDN_EINVAL, "the phase changed; try again");
	} else if (old == NULL && c->njobs == MAX_JOBS) {
		rv = coord_refuse(reply, IDN_EBUSY, "too many jobs (%d)", MAX_JOBS);
	} else if ((rv = coord_job_new(c, &s, s.kind == IDN_JOB_INFER ?
	                IDN_JOB_RUNNING : IDN_JOB_QUEUED, now, total, &j)) !=
	    IDN_OK || (rv = coord_job_put(c->led, &s, j->state, now)) !=
	    IDN_OK) {
		rv = coord_refuse(reply, rv, "cannot record the job: %s",
		    idn_strerror(rv));
		coord_job_free(j);
	} else {
		if (est > 0) {
			j->task_ms = est * s.group;
		}
		if (old != NULL) {
			for (size_t i = 0; i < c->njobs; i++) {
				if (c->jobs[i] == old) {
					c->jobs[i] = j;
				}
			}
			coord_job_free(old);
		} else {
			c->jobs[c->njobs++] = j;
		}
		c->dirty = true;
		// A new job reaches the SDFS checkpoint at once: a coordinator
		// that loses its disk still knows every acknowledged job.
		c->want_checkpoint = true;
		if (s.kind == IDN_JOB_INFER) {
			coord_note(c, IDN_LOG_INFO, "coord: job received: %s "
			    "infer model %s queries %s (%llu) weights %s batch %u "
			    "rate %.1f group %u", s.job, s.model, s.queries,
			    (unsigned long long) total, s.weights, s.batch,
			    s.rate, s.group);
		} else {
			coord_note(c, IDN_LOG_INFO, "coord: job received: %s "
			    "train model %s data %s epochs %u batch %u lr %g", s.job,
			    s.model, s.data, s.epochs, s.batch, s.lr);
		}
	}
	core_unlock_log(&c->lock, &c->logq);
	pthread_cond_broadcast(&c->cond);
	return rv;
}

int
coord_on_remove(coord *c, const wire_val *b, wire_wr *reply)
{
	char name[RECORD_NAME_MAX + 1];
	if (wire_get_str(b, "job", name, sizeof(name)) != IDN_OK) {
		return coord_refuse(reply, IDN_EINVAL, "bad job name");
	}
	core_lock(&c->lock);
	cjob *j = coord_find_job(c, name);
	int rv;
	if (j == NULL || j->state == IDN_JOB_REMOVED) {
		rv = coord_refuse(reply, IDN_ENOENT, "no job '%s'", name);
	} else {
		j->state = IDN_JOB_REMOVED;
		coord_train_end(c, j, IDN_LOG_WARN, "the job was removed");
		rv = ledger_job_state(c->led, name, IDN_JOB_REMOVED, true,
		    j->accuracy, "removed");
		c->dirty = true;
		coord_note(c, IDN_LOG_INFO, "coord: job removed: %s", name);
		rv = rv == IDN_OK ? IDN_OK : coord_refuse(reply, rv,
		    "ledger: %s", idn_strerror(rv));
	}
	core_unlock_log(&c->lock, &c->logq);
	return rv;
}

int
coord_on_state(coord *c, const wire_val *b, wire_wr *reply)
{
	char name[RECORD_NAME_MAX + 1];
	if (wire_get_str(b, "job", name, sizeof(name)) != IDN_OK) {
		return coord_refuse(reply, IDN_EINVAL, "bad job name");
	}
	core_lock(&c->lock);
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
	core_unlock_log(&c->lock, &c->logq);
	return rv;
}
