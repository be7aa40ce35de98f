// SPDX-License-Identifier: MIT
// train.c: training from SDFS data to SDFS weights, with a checkpoint after
// every epoch and every checkpoint_s seconds of training, so that a
// stopped or killed run resumes where it was: at the step, with its
// optimiser state. With several ranks (data-parallel) rank 0 alone
// writes checkpoints and the results; every rank resumes from the same
// checkpoint.
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/sdfs.h>

#include "catalog/catalog.h"
#include "core/core.h"
#include "model/model.h"

#define PATH_BYTES 256

typedef struct run {
	idn_client *c;
	idn_model *m;
	const idn_model_train_opts *user; // for on_epoch, on_step and arg
	const catalog_train_ext *x;
	char ckpt[PATH_BYTES];
	char meta[PATH_BYTES];
	char *settings;
	char *metrics;     // a line per finished epoch
	bool stopped;      // the caller's on_epoch stopped the run early
	int rv;            // taking a checkpoint failed: stops the run
	uint64_t last_ms;  // clock ms of the last checkpoint (rank 0)
	catalog_ckpt *wr;  // rank 0's checkpoint writer, from the first one
} run;

// save_checkpoint takes the training state after `step` steps of epoch
// `epoch` + 1 (0: at the end of `epoch`) and hands it to the run's writer
// (ckpt.c), which stores it while training goes on.
static int
save_checkpoint(run *r, uint32_t epoch, uint64_t step)
{
	void *w = NULL;
	size_t len;
	catalog_meta meta = {.epoch = epoch, .step = step,
	    .settings = r->settings, .metrics = r->metrics};
	r->last_ms = idn_clock_ms();
	int rv = r->wr != NULL ? IDN_OK : catalog_ckpt_open(r->c, r->ckpt,
	    r->meta, &r->wr);
	if (rv == IDN_OK &&
	    (rv = idn_model_export_train_state(r->m, &w, &len)) == IDN_OK) {
		rv = catalog_ckpt_save(r->wr, w, len, &meta);
	}
	return rv;
}

static int
on_epoch(void *arg, const idn_model_epoch *e)
{
	run *r = arg;
	char *m = core_asprintf("%sepoch %u/%u train_loss %.4f test_loss %.4f "
	    "test_accuracy %.4f lr %.5f train_ms %llu\n", r->metrics, e->epoch,
	    e->epochs, e->train_loss, e->test_loss, e->test_accuracy, e->lr,
	    (unsigned long long) e->train_ms);
	if (m == NULL) {
		r->rv = IDN_ENOMEM;
		return 1;
	}
	free(r->metrics);
	r->metrics = m;
	if (r->user->rank == 0 &&
	    (r->rv = save_checkpoint(r, e->epoch, 0)) != IDN_OK) {
		return 1;
	}
	if (r->user->on_epoch != NULL &&
	    r->user->on_epoch(r->user->arg, e) != 0) {
		r->stopped = e->epoch < e->epochs;
		return 1;
	}
	return 0;
}

// Rank 0's word each step: 1 asks every rank to checkpoint at this step
// (rank 0 writes it; all then agree on where the run is).
static uint32_t
step_control(void *arg)
{
	run *r = arg;
	uint64_t now = idn_clock_ms();
	if (r->last_ms == 0) {
		r->last_ms = now; // the interval counts from the first step
	}
	return r->x->checkpoint_s > 0 &&
	    now >= r->last_ms + r->x->checkpoint_s * 1000ull;
}

static int
on_step(void *arg, const idn_model_step *s)
{
	run *r = arg;
	if ((s->control & 1) && r->user->rank == 0 && s->step + 1 < s->steps &&
	    (r->rv = save_checkpoint(r, s->epoch - 1, s->step + 1)) != IDN_OK) {
		return 1;
	}
	return r->user->on_step != NULL ? r->user->on_step(r->user->step_arg,
	    s) : 0;
}

// resume loads the checkpoint of a run with r's settings, if there is
// one into o: the epoch and step to start at, the training state.
// *state: the state's bytes, freed by the caller with idn_free().
static int
resume(run *r, idn_model_train_opts *o, void **state)
{
	void *text = NULL, *w = NULL;
	size_t len;
	catalog_meta meta;
	o->first_epoch = 1;
	o->first_step = 0;
	int rv = idn_sdfs_get_buf(r->c, r->meta, 0, &text, &len, NULL);
	if (rv == IDN_ENOENT) {
		return IDN_OK;
	}
	// Another run's checkpoint (other settings, a damaged meta, a
	// version no longer kept) is not ours: start afresh.
	if (rv == IDN_OK && catalog_meta_parse(text, &meta) == IDN_OK) {
		if (strcmp(meta.settings, r->settings) == 0 &&
		    meta.epoch <= r->user->epochs &&
		    idn_sdfs_get_buf(r->c, r->ckpt, meta.checkpoint, &w, &len,
		        NULL) == IDN_OK) {
			o->first_epoch = meta.epoch + 1;
			o->first_step = meta.step;
			o->resume_state = w;
			o->resume_state_len = len;
			*state = w;
			w = NULL;
			free(r->metrics);
			r->metrics = meta.metrics;
			meta.metrics = NULL;
		}
		catalog_meta_clear(&meta);
	}
	idn_free(text);
	idn_free(w);
	return rv;
}

// finish stores the weights, then the metrics, then drops the checkpoint:
// it exists only while a run is unfinished.
static int
finish(run *r, const char *wpath, const char *mpath, char **errmsg)
{
	void *w = NULL;
	size_t len;
	int rv = idn_model_export(r->m, &w, &len);
	if (rv == IDN_OK) {
		rv = idn_sdfs_put_buf(r->c, wpath, w, len, NULL);
	}
	idn_free(w);
	if (rv == IDN_OK) {
		rv = idn_sdfs_put_buf(r->c, mpath, r->metrics,
		    strlen(r->metrics), NULL);
	}
	if (rv == IDN_OK && (rv = idn_sdfs_delete(r->c, r->meta)) ==
	    IDN_ENOENT) {
		rv = IDN_OK;
	}
	if (rv == IDN_OK) {
		(void) idn_sdfs_delete(r->c, r->ckpt);
	}
	if (rv != IDN_OK) {
		catalog_set_err(errmsg, "storing weights failed: %s",
		    idn_strerror(rv));
	}
	return rv;
}

// fetch_sets reads <data>/train (first limit images) and <data>/test.
static int
fetch_sets(idn_client *c, const char *data, size_t limit,
    idn_dataset **train, idn_dataset **test, char **errmsg)
{
	char *tr = core_asprintf("%s/train", data);
	char *te = core_asprintf("%s/test", data);
	int rv = tr && te ? IDN_OK : IDN_ENOMEM;
	if (rv == IDN_OK && (rv = idn_dataset_fetch(c, tr, limit, train)) !=
	    IDN_OK) {
		catalog_set_err(errmsg, "cannot read training set %s", tr);
	}
	if (rv == IDN_OK && (rv = idn_dataset_fetch(c, te, 0, test)) !=
	    IDN_OK) {
		catalog_set_err(errmsg, "cannot read test set %s", te);
	}
	free(tr);
	free(te);
	return rv;
}

int
idn_catalog_train(idn_client *c, const char *name, const char *data,
    size_t limit, const idn_model_train_opts *o, char **errmsg)
{
	catalog_train_ext x = {0};
	return catalog_train_run(c, name, data, limit, o, &x, errmsg);
}

int
catalog_train_run(idn_client *c, const char *name, const char *data,
    size_t limit, const idn_model_train_opts *o, const catalog_train_ext *x,
    char **errmsg)
{
	char wpath[PATH_BYTES], mpath[PATH_BYTES];
	idn_model_train_opts opts;
	run r = {.c = c, .user = &opts, .x = x};
	void *state = NULL;
	if (c == NULL || data == NULL || idn_sdfs_name_error(data) != NULL ||
	    catalog_path(wpath, sizeof(wpath), name, "weights") != IDN_OK ||
	    catalog_path(mpath, sizeof(mpath), name, "metrics") != IDN_OK ||
	    catalog_path(r.ckpt, sizeof(r.ckpt), name, "checkpoint") !=
	        IDN_OK ||
	    catalog_path(r.meta, sizeof(r.meta), name, "checkpoint.meta") !=
	        IDN_OK) {
		catalog_set_err(errmsg, "bad model name '%s' or data prefix",
		    name ? name : "");
		return IDN_EINVAL;
	}
	if (model_train_opts_copy(o, &opts) != IDN_OK) {
		catalog_set_err(errmsg, "%s", "options not set up by "
		    "idn_model_train_opts_init");
		return IDN_EINVAL;
	}
	idn_dataset *train = NULL, *test = NULL;
	uint64_t version = 0;
	// Fine-tuning starts from the trained weights; the settings name
	// which file and version, so a checkpoint of the other kind is not
	// resumed.
	const char *from = x->from_weights ? "weights" : "model.pt";
	int rv = catalog_fetch(c, name, from, &version, errmsg, &r.m);
	if (rv == IDN_OK) {
		rv = fetch_sets(c, data, limit, &train, &test, errmsg);
	}
	idn_model_info info;
	if (rv == IDN_OK && (idn_model_describe(r.m, &info) != IDN_OK ||
	    info.channels != train->channels || info.height != train->height ||
	    info.width != train->width)) {
		catalog_set_err(errmsg, "model '%s' does not take this data's "
		    "images", name);
		rv = IDN_EINVAL;
	}
	if (rv == IDN_OK) {
		char *s = catalog_meta_settings(&opts, data, limit, version);
		r.settings = s && x->from_weights ? core_asprintf("%sfrom "
		    "weights\n", s) : s;
		if (r.settings != s) {
			free(s);
		}
		r.metrics = core_strdup("");
		rv = r.settings && r.metrics ? IDN_OK : IDN_ENOMEM;
	}
	if (rv == IDN_OK && (rv = resume(&r, &opts, &state)) != IDN_OK) {
		catalog_set_err(errmsg, "cannot read the checkpoint: %s",
		    idn_strerror(rv));
	}
	if (rv == IDN_OK && opts.first_epoch <= opts.epochs) {
		idn_model_train_opts run_opts = opts;
		run_opts.on_epoch = on_epoch;
		run_opts.arg = &r;
		run_opts.on_step = on_step;
		run_opts.step_arg = &r;
		run_opts.step_control = step_control;
		run_opts.control_arg = &r;
		idn_model_data tr = {train->images, train->labels, train->n};
		idn_model_data te = {test->images, test->labels, test->n};
		// Rank 0 evaluates; the others wait for it in their next step's
		// sync, leaving it the CPU.
		rv = idn_model_train(r.m, &run_opts, &tr, opts.rank == 0 ? &te :
		    NULL);
		// Every checkpoint taken is stored before the run says where
		// it stopped (or finish drops them).
		int wrv = catalog_ckpt_drain(r.wr);
		catalog_ckpt_close(r.wr);
		if (r.rv != IDN_OK) {
			rv = r.rv;
			catalog_set_err(errmsg, "taking a checkpoint failed: "
			    "%s", idn_strerror(rv));
		} else if (rv != IDN_OK) {
			catalog_set_err(errmsg, "training failed: %s",
			    idn_model_errmsg(r.m));
		} else if (r.stopped) {
			catalog_set_err(errmsg, "stopped before the last "
			    "epoch; %s", wrv == IDN_OK ? "the checkpoint stays" :
			    "its last checkpoint was not stored, an earlier "
			    "one stays");
			rv = IDN_ECLOSED;
		}
	}
	if (rv == IDN_OK && opts.rank == 0) {
		rv = finish(&r, wpath, mpath, errmsg);
	}
	idn_free(state);
	free(r.settings);
	free(r.metrics);
	idn_dataset_free(train);
	idn_dataset_free(test);
	idn_model_close(r.m);
	return rv;
}
