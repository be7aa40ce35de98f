// SPDX-License-Identifier: MIT
// train.c: the worker's side of a training task: one rank of the job's
// generation joins its peers (allreduce through collective/), trains
// through the catalog's trainer, and reports each epoch and its end with
// the next lease call.
#include <stdio.h>
#include <string.h>

#include "catalog/catalog.h"
#include "collective/collective.h"
#include "worker/worker_int.h"

// A rank waits this long for its peers' parts: longer than rank 0's
// checkpoint write and test-set evaluation; a dead peer ends the wait
// sooner (its endpoint refuses, or the coordinator drops the rank).
#define TRAIN_SYNC_TIMEOUT_MS 120000

typedef struct {
	worker *w;
	const record_lease *l;
	coll_group *g;
	bool stepped;     // on_step ran once (where the run started is logged)
} train_ctx;

static int
on_sync(void *arg, int kind, float *buf, size_t n)
{
	(void) kind;
	train_ctx *t = arg;
	return coll_allreduce(t->g, buf, n, TRAIN_SYNC_TIMEOUT_MS);
}

static int
on_step(void *arg, const idn_model_step *s)
{
	train_ctx *t = arg;
	if (!t->stepped) {
		t->stepped = true;
		worker_log(t->w, IDN_LOG_INFO, "worker: training %s rank %u of "
		    "%u attempt %u: first step %llu of epoch %u (%llu steps an "
		    "epoch)", t->l->spec.job, t->l->task, t->l->world,
		    t->l->attempt, (unsigned long long) s->step, s->epoch,
		    (unsigned long long) s->steps);
	}
	core_lock(&t->w->lock);
	bool stop = t->w->abort_cur || t->w->stop;
	core_unlock_log(&t->w->lock, &t->w->logq);
	return stop ? 1 : 0;
}

// Joins the lease's generation of ranks (l->task of l->world, peers'
// addresses in l->peers); *g stays NULL for a single rank.
static int
join_ranks(worker *w, const record_lease *l, coll_group **g, char **err)
{
	*g = NULL;
	if (l->world <= 1) {
		return IDN_OK;
	}
	char peers[RECORD_PEERS_MAX];
	const char *addrs[RECORD_RANKS_MAX];
	uint32_t n = 0;
	snprintf(peers, sizeof(peers), "%s", l->peers);
	char *save = NULL;
	for (char *a = strtok_r(peers, " ", &save); a != NULL &&
	    n < RECORD_RANKS_MAX; a = strtok_r(NULL, " ", &save)) {
		addrs[n++] = a;
	}
	int rv = w->h.coll == NULL || n != l->world ? IDN_EINVAL : IDN_OK;
	if (rv == IDN_OK) {
		coll_group_opts o = {l->spec.job, l->attempt, l->task, l->world,
		    addrs};
		rv = coll_group_open(w->h.coll, &o, g);
	}
	if (rv != IDN_OK) {
		*err = core_asprintf("cannot join rank %u of %u, generation %u: "
		    "%s", l->task, l->world, l->attempt, idn_strerror(rv));
	}
	return rv;
}

// A new progress report of lease l for the next lease call (lock held),
// NULL when they are REPORTS_MAX already.
static record_progress *
progress(worker *w, const record_lease *l)
{
	if (w->nprog == REPORTS_MAX) {
		return NULL;
	}
	record_progress *p = &w->prog[w->nprog++];
	memset(p, 0, sizeof(*p));
	snprintf(p->job, sizeof(p->job), "%s", l->spec.job);
	p->attempt = l->attempt;
	return p;
}

static int
on_epoch(void *arg, const idn_model_epoch *e)
{
	train_ctx *t = arg;
	worker *w = t->w;
	core_lock(&w->lock);
	record_progress *p = progress(w, t->l);
	if (p != NULL) {
		p->epoch = e->epoch;
		p->loss = e->train_loss;
		p->acc = e->test_accuracy;
	}
	bool stop = w->abort_cur || w->stop;
	pthread_cond_broadcast(&w->cv_loop);
	core_unlock_log(&w->lock, &w->logq);
	worker_log(w, IDN_LOG_INFO, "worker: training %s epoch %u/%u done, "
	    "attempt %u: loss %.4f accuracy %.4f", t->l->spec.job, e->epoch,
	    e->epochs, t->l->attempt, e->train_loss, e->test_accuracy);
	return stop ? 1 : 0;
}

// The training task, one rank of the job's generation: the catalog's
// trainer checkpoints to SDFS (rank 0) every checkpoint_s seconds and
// every epoch, and every rank resumes from the last checkpoint of a run
// of the same settings.
void
worker_run_train(worker *w, const record_lease *l)
{
	idn_model_train_opts o;
	record_spec_train_opts(&l->spec, &o);
	train_ctx t = {w, l, NULL, false};
	o.on_epoch = on_epoch;
	o.arg = &t;
	o.on_step = on_step;
	o.step_arg = &t;
	o.rank = l->task;
	o.world = l->world ? l->world : 1;
	char *err = NULL;
	int rv = join_ranks(w, l, &t.g, &err);
	if (t.g != NULL) {
		o.on_sync = on_sync;
		o.sync_arg = &t;
	}
	if (rv == IDN_OK) {
		catalog_train_ext x = {l->spec.checkpoint_s,
		    l->spec.from == IDN_TRAIN_FROM_WEIGHTS};
		rv = catalog_train_run(w->h.node, l->spec.model, l->spec.data,
		    (size_t) l->spec.limit, &o, &x, &err);
	}
	coll_group_close(t.g);
	core_lock(&w->lock);
	bool aborted = w->abort_cur || w->stop;
	record_progress *p = aborted ? NULL : progress(w, l);
	if (p != NULL) {
		p->done = true;
		p->rc = rv;
		snprintf(p->err, sizeof(p->err), "%s", rv == IDN_OK ? "" :
		    err ? err : idn_strerror(rv));
	}
	core_unlock_log(&w->lock, &w->logq);
	worker_log(w, rv == IDN_OK ? IDN_LOG_INFO : IDN_LOG_WARN, "worker: "
	    "training %s %s%s%s", l->spec.job, aborted ? "stopped" :
	    rv == IDN_OK ? "finished" : "failed", err ? ": " : "",
	    err ? err : "");
	idn_free(err);
}
