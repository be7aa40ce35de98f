// SPDX-License-Identifier: MIT
// train.c: training from SDFS data to SDFS weights, with a checkpoint after
// every epoch so that a stopped or killed run resumes where it was.
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
	const idn_model_train_opts *user; // for on_epoch and arg
	char ckpt[PATH_BYTES];
	char meta[PATH_BYTES];
	char *settings;
	char *metrics;     // a line per finished epoch
	bool stopped;      // the caller's on_epoch stopped the run early
	int rv;            // a checkpoint's error, which stops the run
} run;

char *
catalog_meta_settings(const idn_model_train_opts *o, const char *data,
    size_t limit, uint64_t model_version)
{
	return core_asprintf("epochs %u\nbatch %u\noptimizer %d\nlr %.17g\n"
	    "momentum %.17g\nweight_decay %.17g\nschedule %d\nlr_step %u\n"
	    "lr_gamma %.17g\nseed %llu\ndata %s\nlimit %zu\n"
	    "model_version %llu\n", o->epochs, o->batch_size, o->optimizer,
	    o->lr, o->momentum, o->weight_decay, o->schedule, o->lr_step,
	    o->lr_gamma, (unsigned long long) o->seed, data, limit,
	    (unsigned long long) model_version);
}

char *
catalog_meta_format(const catalog_meta *m)
{
	return core_asprintf("epoch %u\n%scheckpoint %llu\nmetrics\n%s",
	    m->epoch, m->settings, (unsigned long long) m->checkpoint,
	    m->metrics ? m->metrics : "");
}

void
catalog_meta_clear(catalog_meta *m)
{
	free(m->settings);
	free(m->metrics);
	memset(m, 0, sizeof(*m));
}

int
catalog_meta_parse(const char *text, catalog_meta *m)
{
	memset(m, 0, sizeof(*m));
	char *end;
	if (text == NULL || strncmp(text, "epoch ", 6) != 0) {
		return IDN_ECORRUPT;
	}
	unsigned long e = strtoul(text + 6, &end, 10);
	const char *settings = end + 1;
	const char *ck = strstr(text, "\ncheckpoint ");
	if (*end != '\n' || e == 0 || e > UINT32_MAX ||
	    strncmp(settings, "epochs ", 7) != 0 || ck == NULL) {
		return IDN_ECORRUPT;
	}
	unsigned long long v = strtoull(ck + 12, &end, 10);
	if (strncmp(end, "\nmetrics\n", 9) != 0 || v == 0) {
		return IDN_ECORRUPT;
	}
	m->epoch = (uint32_t) e;
	m->checkpoint = v;
	m->settings = core_strndup(settings, (size_t) (ck + 1 - settings));
	m->metrics = core_strdup(end + 9);
	if (m->settings == NULL || m->metrics == NULL) {
		catalog_meta_clear(m);
		return IDN_ENOMEM;
	}
	return IDN_OK;
}

// save_checkpoint stores the weights after `epoch`, then the meta that
// names their version: a meta always points at a whole checkpoint.
static int
save_checkpoint(run *r, uint32_t epoch)
{
	void *w = NULL;
	size_t len;
	catalog_meta meta = {.epoch = epoch, .settings = r->settings,
	    .metrics = r->metrics};
	int rv = idn_model_export(r->m, &w, &len);
	if (rv == IDN_OK) {
		rv = idn_sdfs_put_buf(r->c, r->ckpt, w, len, &meta.checkpoint);
	}
	idn_free(w);
	char *text = rv == IDN_OK ? catalog_meta_format(&meta) : NULL;
	if (rv == IDN_OK && text == NULL) {
		rv = IDN_ENOMEM;
	}
	if (rv == IDN_OK) {
		rv = idn_sdfs_put_buf(r->c, r->meta, text, strlen(text), NULL);
	}
	free(text);
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
	if ((r->rv = save_checkpoint(r, e->epoch)) != IDN_OK) {
		return 1;
	}
	if (r->user->on_epoch != NULL &&
	    r->user->on_epoch(r->user->arg, e) != 0) {
		r->stopped = e->epoch < e->epochs;
		return 1;
	}
	return 0;
}

// resume loads the checkpoint of a run with r's settings, if there is
// one: *first gets the epoch to start at (1 without a checkpoint).
static int
resume(run *r, uint32_t *first)
{
	void *text = NULL, *w = NULL;
	size_t len;
	catalog_meta meta;
	*first = 1;
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
		        NULL) == IDN_OK &&
		    idn_model_import(r->m, w, len) == IDN_OK) {
			*first = meta.epoch + 1;
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
	char wpath[PATH_BYTES], mpath[PATH_BYTES];
	idn_model_train_opts opts;
	run r = {.c = c, .user = &opts};
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
	int rv = catalog_fetch(c, name, "model.pt", &version, errmsg, &r.m);
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
		r.settings = catalog_meta_settings(&opts, data, limit, version);
		r.metrics = core_strdup("");
		rv = r.settings && r.metrics ? IDN_OK : IDN_ENOMEM;
	}
	if (rv == IDN_OK && (rv = resume(&r, &opts.first_epoch)) != IDN_OK) {
		catalog_set_err(errmsg, "cannot read the checkpoint: %s",
		    idn_strerror(rv));
	}
	if (rv == IDN_OK && opts.first_epoch <= opts.epochs) {
		idn_model_train_opts run_opts = opts;
		run_opts.on_epoch = on_epoch;
		run_opts.arg = &r;
		idn_model_data tr = {train->images, train->labels, train->n};
		idn_model_data te = {test->images, test->labels, test->n};
		rv = idn_model_train(r.m, &run_opts, &tr, &te);
		if (rv != IDN_OK) {
			catalog_set_err(errmsg, "training failed: %s",
			    idn_model_errmsg(r.m));
		} else if ((rv = r.rv) != IDN_OK) {
			catalog_set_err(errmsg, "storing the checkpoint "
			    "failed: %s", idn_strerror(rv));
		} else if (r.stopped) {
			catalog_set_err(errmsg, "%s", "stopped before the last "
			    "epoch; the checkpoint stays");
			rv = IDN_ECLOSED;
		}
	}
	if (rv == IDN_OK) {
		rv = finish(&r, wpath, mpath, errmsg);
	}
	free(r.settings);
	free(r.metrics);
	idn_dataset_free(train);
	idn_dataset_free(test);
	idn_model_close(r.m);
	return rv;
}
