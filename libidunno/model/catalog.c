// SPDX-License-Identifier: MIT
// catalog.c: models and datasets in SDFS: store a model once it has been
// validated, load one back, read a sharded set, and train from SDFS data to
// SDFS weights.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/model.h>
#include <idunno/sdfs.h>

#include "core/core.h"

#define NAME_MAX_BYTES 200

static int
model_path(char *buf, size_t cap, const char *name, const char *file)
{
	if (name == NULL || *name == '\0' || strlen(name) > NAME_MAX_BYTES ||
	    strchr(name, '/') != NULL) {
		return IDN_EINVAL;
	}
	snprintf(buf, cap, "models/%s/%s", name, file);
	return idn_sdfs_name_error(buf) ? IDN_EINVAL : IDN_OK;
}

static void
set_err(char **errmsg, const char *fmt, const char *what)
{
	if (errmsg != NULL && *errmsg == NULL) {
		*errmsg = core_asprintf(fmt, what);
	}
}

int
idn_model_load_files(const char *desc_path, const char *model_path,
    char **errmsg, idn_model **out)
{
	core_buf desc = {0}, model = {0};
	if (desc_path == NULL || out == NULL) {
		return IDN_EINVAL;
	}
	int rv = core_file_read(desc_path, 1 << 20, &desc);
	if (rv != IDN_OK) {
		set_err(errmsg, "cannot read descriptor %s", desc_path);
	} else if (model_path != NULL &&
	    (rv = core_file_read(model_path, (size_t) 4 << 30, &model)) !=
	        IDN_OK) {
		set_err(errmsg, "cannot read model %s", model_path);
	} else {
		rv = idn_model_load((const char *) desc.data, desc.len,
		    model.data, model.len, errmsg, out);
	}
	core_buf_free(&desc);
	core_buf_free(&model);
	return rv;
}

int
idn_model_store(idn_client *c, const char *name, const char *desc,
    size_t desc_len, const void *model, size_t model_len, char **errmsg)
{
	char dpath[256], mpath[256];
	if (c == NULL || desc == NULL ||
	    model_path(dpath, sizeof(dpath), name, "desc") != IDN_OK ||
	    model_path(mpath, sizeof(mpath), name, "model.pt") != IDN_OK) {
		set_err(errmsg, "bad model name '%s' (want one segment)",
		    name ? name : "");
		return IDN_EINVAL;
	}
	// Load first: a model that does not load never reaches SDFS.
	idn_model *m;
	int rv = idn_model_load(desc, desc_len, model, model_len, errmsg, &m);
	if (rv != IDN_OK) {
		return rv;
	}
	idn_model_close(m);
	// The descriptor goes last: its presence means the model is whole.
	rv = idn_sdfs_put_buf(c, mpath, model ? model : "", model_len, NULL);
	if (rv == IDN_OK) {
		rv = idn_sdfs_put_buf(c, dpath, desc, desc_len, NULL);
	}
	if (rv != IDN_OK) {
		set_err(errmsg, "storing in SDFS failed: %s", idn_strerror(rv));
	}
	return rv;
}

int
idn_model_fetch(idn_client *c, const char *name, bool trained,
    char **errmsg, idn_model **out)
{
	char dpath[256], mpath[256];
	if (c == NULL || out == NULL ||
	    model_path(dpath, sizeof(dpath), name, "desc") != IDN_OK ||
	    model_path(mpath, sizeof(mpath), name,
	        trained ? "weights" : "model.pt") != IDN_OK) {
		set_err(errmsg, "bad model name '%s'", name ? name : "");
		return IDN_EINVAL;
	}
	void *desc = NULL, *bytes = NULL;
	size_t dlen, blen;
	int rv = idn_sdfs_get_buf(c, dpath, 0, &desc, &dlen, NULL);
	if (rv != IDN_OK) {
		set_err(errmsg, "no model '%s' in SDFS", name);
	} else if ((rv = idn_sdfs_get_buf(c, mpath, 0, &bytes, &blen, NULL)) !=
	    IDN_OK) {
		set_err(errmsg, trained ? "model '%s' has no trained weights" :
		    "model '%s' has no model bytes", name);
	} else {
		rv = idn_model_load(desc, dlen, bytes, blen, errmsg, out);
	}
	idn_free(desc);
	idn_free(bytes);
	return rv;
}

void
idn_dataset_free(idn_dataset *d)
{
	if (d != NULL) {
		idn_free(d->images);
		idn_free(d->labels);
		idn_free(d);
	}
}

// Reads "key = value" from a manifest; 0 if absent.
static uint64_t
manifest_u64(const char *text, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = text; p != NULL && *p; p = strchr(p, '\n')) {
		p += *p == '\n';
		if (strncmp(p, key, kl) == 0 && (p[kl] == ' ' || p[kl] == '=')) {
			const char *eq = strchr(p, '=');
			return eq ? strtoull(eq + 1, NULL, 10) : 0;
		}
	}
	return 0;
}

int
idn_dataset_fetch(idn_client *c, const char *prefix, size_t limit,
    idn_dataset **out)
{
	char name[512];
	void *man = NULL;
	size_t len;
	if (c == NULL || prefix == NULL || out == NULL ||
	    (size_t) snprintf(name, sizeof(name), "%s/manifest", prefix) >=
	        sizeof(name)) {
		return IDN_EINVAL;
	}
	int rv = idn_sdfs_get_buf(c, name, 0, &man, &len, NULL);
	if (rv != IDN_OK) {
		return rv;
	}
	uint64_t count = manifest_u64(man, "count");
	uint64_t shards = manifest_u64(man, "shards");
	idn_free(man);
	if (count == 0 || shards == 0 || shards > count) {
		return IDN_ECORRUPT;
	}
	size_t want = limit > 0 && limit < count ? limit : (size_t) count;
	idn_dataset *d = core_alloc(sizeof(*d));
	if (d == NULL || (d->labels = core_alloc(want)) == NULL) {
		idn_dataset_free(d);
		return IDN_ENOMEM;
	}
	size_t item = 0;
	for (uint32_t i = 0; rv == IDN_OK && i < shards && d->n < want; i++) {
		void *blob = NULL;
		idn_dataset_shard sh;
		rv = idn_dataset_shard_name(prefix, i, name, sizeof(name));
		if (rv == IDN_OK) {
			rv = idn_sdfs_get_buf(c, name, 0, &blob, &len, NULL);
		}
		if (rv == IDN_OK) {
			rv = idn_dataset_shard_decode(blob, len, &sh);
		}
		// Shards must tile the set in order, all of one shape.
		if (rv == IDN_OK && (sh.first != d->n || (i > 0 &&
		    (sh.channels != d->channels || sh.height != d->height ||
		     sh.width != d->width)))) {
			rv = IDN_ECORRUPT;
		}
		if (rv == IDN_OK && i == 0) {
			d->channels = sh.channels;
			d->height = sh.height;
			d->width = sh.width;
			item = (size_t) sh.channels * sh.height * sh.width;
			if ((d->images = core_alloc(want * item)) == NULL) {
				rv = IDN_ENOMEM;
			}
		}
		if (rv == IDN_OK) {
			size_t take = CORE_MIN((size_t) sh.count, want - d->n);
			memcpy(d->labels + d->n, sh.labels, take);
			memcpy(d->images + d->n * item, sh.images, take * item);
			d->n += take;
		}
		idn_free(blob);
	}
	if (rv == IDN_OK && d->n != want) {
		rv = IDN_ECORRUPT;
	}
	if (rv != IDN_OK) {
		idn_dataset_free(d);
		return rv;
	}
	*out = d;
	return IDN_OK;
}

typedef struct {
	core_buf metrics;
	const idn_model_train_opts *user;
} train_ctx;

static int
on_epoch(void *arg, const idn_model_epoch *e)
{
	train_ctx *t = arg;
	char line[256];
	int n = snprintf(line, sizeof(line),
	    "epoch %u/%u train_loss %.4f test_loss %.4f test_accuracy %.4f "
	    "lr %.5f train_ms %llu\n", e->epoch, e->epochs, e->train_loss,
	    e->test_loss, e->test_accuracy, e->lr,
	    (unsigned long long) e->train_ms);
	core_buf_append(&t->metrics, line, (size_t) n);
	return t->user->on_epoch ? t->user->on_epoch(t->user->arg, e) : 0;
}

int
idn_model_train_sdfs(idn_client *c, const char *name, const char *data,
    size_t limit, const idn_model_train_opts *o, char **errmsg)
{
	char wpath[256], mpath[256], sub[512];
	if (c == NULL || data == NULL || o == NULL ||
	    model_path(wpath, sizeof(wpath), name, "weights") != IDN_OK ||
	    model_path(mpath, sizeof(mpath), name, "metrics") != IDN_OK) {
		set_err(errmsg, "bad model name '%s'", name ? name : "");
		return IDN_EINVAL;
	}
	idn_model *m = NULL;
	idn_dataset *train = NULL, *test = NULL;
	int rv = idn_model_fetch(c, name, false, errmsg, &m);
	if (rv == IDN_OK) {
		snprintf(sub, sizeof(sub), "%s/train", data);
		if ((rv = idn_dataset_fetch(c, sub, limit, &train)) != IDN_OK) {
			set_err(errmsg, "cannot read training set %s", sub);
		}
	}
	if (rv == IDN_OK) {
		snprintf(sub, sizeof(sub), "%s/test", data);
		if ((rv = idn_dataset_fetch(c, sub, 0, &test)) != IDN_OK) {
			set_err(errmsg, "cannot read test set %s", sub);
		}
	}
	idn_model_info info;
	if (rv == IDN_OK && (idn_model_describe(m, &info) != IDN_OK ||
	    info.channels != train->channels || info.height != train->height ||
	    info.width != train->width)) {
		set_err(errmsg, "model '%s' does not take this data's images",
		    name);
		rv = IDN_EINVAL;
	}
	train_ctx t = {.user = o};
	if (rv == IDN_OK) {
		idn_model_train_opts opts = *o;
		opts.on_epoch = on_epoch;
		opts.arg = &t;
		idn_model_data tr = {train->images, train->labels, train->n};
		idn_model_data te = {test->images, test->labels, test->n};
		if ((rv = idn_model_train(m, &opts, &tr, &te)) != IDN_OK) {
			set_err(errmsg, "training failed: %s", idn_model_errmsg(m));
		}
	}
	void *weights = NULL;
	size_t wlen = 0;
	if (rv == IDN_OK && (rv = idn_model_export(m, &weights, &wlen)) ==
	    IDN_OK) {
		rv = idn_sdfs_put_buf(c, wpath, weights, wlen, NULL);
		if (rv == IDN_OK) {
			rv = idn_sdfs_put_buf(c, mpath, t.metrics.data,
			    t.metrics.len, NULL);
		}
		if (rv != IDN_OK) {
			set_err(errmsg, "storing weights failed: %s",
			    idn_strerror(rv));
		}
	}
	idn_free(weights);
	core_buf_free(&t.metrics);
	idn_dataset_free(train);
	idn_dataset_free(test);
	idn_model_close(m);
	return rv;
}
