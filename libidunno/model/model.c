// SPDX-License-Identifier: MIT
// model.c: the public model API over the backends: argument checks, error
// text, softmax, the training loop (shuffle, lr schedule, evaluation).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model.h"

struct idn_model {
	model_desc desc;
	const model_backend *be;
	void *impl;
	size_t in_bytes; // C*H*W
	char *err;       // last error text, NULL if none
};


// Evaluation and inference go through the backend in chunks this large, so
// the logits buffer stays small for any set size.
#define EVAL_CHUNK 256

static void
set_err(idn_model *m, char *msg)
{
	free(m->err);
	m->err = msg;
}

static void
clear_err(idn_model *m)
{
	set_err(m, NULL);
}

// fail keeps msg (or, if NULL, the code's text) as m's last error.
static int
fail(idn_model *m, int rv, char *msg)
{
	if (msg == NULL) {
		msg = core_strdup(idn_strerror(rv));
	}
	set_err(m, msg);
	return rv;
}

int
idn_model_set_threads(int n)
{
	if (n < 1 || n > 1024) {
		return IDN_EINVAL;
	}
	return model_torch_set_threads(n);
}

void
idn_model_runtime(char *buf, size_t size)
{
	if (buf != NULL && size > 0) {
		model_torch_runtime(buf, size);
	}
}

int
idn_model_load(const char *desc, size_t desc_len, const void *model,
    size_t model_len, char **errmsg, idn_model **out)
{
	char *err = NULL;
	int rv = IDN_OK;
	idn_model *m = NULL;
	if (errmsg != NULL) {
		*errmsg = NULL;
	}
	if (desc == NULL || out == NULL || (model == NULL && model_len > 0)) {
		rv = IDN_EINVAL;
		err = core_strdup("NULL descriptor, out or model bytes");
		goto done;
	}
	if ((m = core_alloc(sizeof(*m))) == NULL) {
		rv = IDN_ENOMEM;
		goto done;
	}
	if ((rv = model_desc_parse(desc, desc_len, &m->desc, &err)) != 0) {
		goto done;
	}
	m->be = strcmp(m->desc.backend, "sim") == 0 ? &model_sim_backend :
	    &model_torch_backend;
	m->in_bytes = (size_t) m->desc.channels * m->desc.height *
	    m->desc.width;
	rv = m->be->load(&m->desc, model, model_len, &m->impl, &err);
done:
	if (rv != IDN_OK) {
		if (err == NULL) {
			err = core_strdup(idn_strerror(rv));
		}
		if (errmsg != NULL) {
			*errmsg = err;
		} else {
			free(err);
		}
		idn_model_close(m);
		return rv;
	}
	*out = m;
	return IDN_OK;
}

void
idn_model_close(idn_model *m)
{
	if (m == NULL) {
		return;
	}
	if (m->impl != NULL) {
		m->be->close(m->impl);
	}
	model_desc_free(&m->desc);
	free(m->err);
	free(m);
}

const char *
idn_model_errmsg(const idn_model *m)
{
	return m != NULL && m->err != NULL ? m->err : "";
}

int
idn_model_describe(const idn_model *m, idn_model_info *out)
{
	if (m == NULL || out == NULL) {
		return IDN_EINVAL;
	}
	memset(out, 0, sizeof(*out));
	out->name = m->desc.name;
	out->backend = m->be->name;
	out->channels = m->desc.channels;
	out->height = m->desc.height;
	out->width = m->desc.width;
	out->classes = m->desc.classes;
	out->class_names = (const char *const *) m->desc.class_names;
	memcpy(out->mean, m->desc.mean, sizeof(out->mean));
	memcpy(out->std, m->desc.std, sizeof(out->std));
	out->service_ms = (idn_duration) m->desc.service_ms;
	out->service_per_query_us = m->desc.service_per_query_us;
	return IDN_OK;
}

void
model_softmax_top(const float *logits, uint32_t k, uint32_t *cls,
    float *score)
{
	uint32_t best = 0;
	for (uint32_t i = 1; i < k; i++) {
		if (logits[i] > logits[best]) {
			best = i;
		}
	}
	// exp(l - max) keeps the sum in range for any logits.
	double sum = 0.0;
	for (uint32_t i = 0; i < k; i++) {
		sum += exp((double) logits[i] - (double) logits[best]);
	}
	*cls = best;
	*score = (float) (1.0 / sum);
}

static int
check_batch(idn_model *m, const uint8_t *images, size_t n, size_t len)
{
	if (images == NULL || n == 0) {
		return fail(m, IDN_EINVAL, core_strdup("empty batch"));
	}
	if (n > SIZE_MAX / m->in_bytes || len != n * m->in_bytes) {
		return fail(m, IDN_EINVAL, core_asprintf("batch of %zu images "
		    "needs %zu bytes (%ux%ux%u each), got %zu", n,
		    n <= SIZE_MAX / m->in_bytes ? n * m->in_bytes : 0,
		    m->desc.channels, m->desc.height, m->desc.width, len));
	}
	return IDN_OK;
}

static int
forward(idn_model *m, const uint8_t *x, size_t n, float *out)
{
	char *err = NULL;
	int rv = m->be->forward(m->impl, x, n, out, &err);
	return rv == IDN_OK ? IDN_OK : fail(m, rv, err);
}

int
idn_model_logits(idn_model *m, const uint8_t *images, size_t n, size_t len,
    float *out)
{
	if (m == NULL) {
		return IDN_EINVAL;
	}
	clear_err(m);
	if (out == NULL) {
		return fail(m, IDN_EINVAL, NULL);
	}
	int rv = check_batch(m, images, n, len);
	return rv != IDN_OK ? rv : forward(m, images, n, out);
}

int
idn_model_infer(idn_model *m, const uint8_t *images, size_t n, size_t len,
    uint32_t *classes, float *scores)
{
	if (m == NULL) {
		return IDN_EINVAL;
	}
	clear_err(m);
	if (classes == NULL || scores == NULL) {
		return fail(m, IDN_EINVAL, NULL);
	}
	int rv = check_batch(m, images, n, len);
	if (rv != IDN_OK) {
		return rv;
	}
	uint32_t k = m->desc.classes;
	if (n > SIZE_MAX / sizeof(float) / k) {
		return fail(m, IDN_ENOMEM, NULL);
	}
	float *logits = malloc(n * k * sizeof(float));
	if (logits == NULL) {
		return fail(m, IDN_ENOMEM, NULL);
	}
	// One backend call per batch: the sim's service time is per batch.
	if ((rv = forward(m, images, n, logits)) == IDN_OK) {
		for (size_t i = 0; i < n; i++) {
			model_softmax_top(logits + i * k, k, &classes[i],
			    &scores[i]);
		}
	}
	free(logits);
	return rv;
}

void
idn_model_train_opts_init(idn_model_train_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->epochs = 1;
	o->batch_size = 64;
	o->optimizer = IDN_MODEL_SGD;
	o->lr = 0.01;
	o->momentum = 0.9;
	o->weight_decay = 0.0;
	o->schedule = IDN_MODEL_LR_CONST;
	o->lr_step = 1;
	o->lr_gamma = 0.5;
	o->seed = 1;
	o->first_epoch = 1;
}

int
model_train_opts_copy(const idn_model_train_opts *o, idn_model_train_opts *out)
{
	idn_model_train_opts_init(out);
	if (o == NULL || o->size < MODEL_TRAIN_OPTS_MIN_SIZE ||
	    o->size > sizeof(*out)) {
		return IDN_EINVAL;
	}
	memcpy(out, o, o->size);
	out->size = sizeof(*out);
	return IDN_OK;
}

static int
check_data(idn_model *m, const idn_model_data *d, const char *what)
{
	if (d->images == NULL || d->labels == NULL || d->n == 0) {
		return fail(m, IDN_EINVAL, core_asprintf("%s set is empty",
		    what));
	}
	if (d->n > SIZE_MAX / m->in_bytes) {
		return fail(m, IDN_EINVAL, NULL);
	}
	for (size_t i = 0; i < d->n; i++) {
		if (d->labels[i] >= m->desc.classes) {
			return fail(m, IDN_EINVAL, core_asprintf("%s label %zu "
			    "is %u, classes = %u", what, i, d->labels[i],
			    m->desc.classes));
		}
	}
	return IDN_OK;
}

static int
check_opts(idn_model *m, const idn_model_train_opts *o)
{
	const char *why = NULL;
	if (o->epochs < 1 || o->epochs > 100000) {
		why = "epochs must be in 1..100000";
	} else if (o->batch_size < 2 || o->batch_size > 65536) {
		// BatchNorm cannot train on one image at a time.
		why = "batch_size must be in 2..65536";
	} else if (!(o->lr > 0.0 && o->lr < 1e6)) {
		why = "lr must be > 0";
	} else if (!(o->momentum >= 0.0 && o->momentum < 1.0)) {
		why = "momentum must be in [0, 1)";
	} else if (!(o->weight_decay >= 0.0 && o->weight_decay < 1.0)) {
		why = "weight_decay must be in [0, 1)";
	} else if (o->optimizer != IDN_MODEL_SGD &&
	    o->optimizer != IDN_MODEL_ADAM) {
		why = "unknown optimizer";
	} else if (o->schedule < IDN_MODEL_LR_CONST ||
	    o->schedule > IDN_MODEL_LR_COSINE) {
		why = "unknown lr schedule";
	} else if (o->lr_step < 1) {
		why = "lr_step must be >= 1";
	} else if (!(o->lr_gamma > 0.0 && o->lr_gamma <= 1.0)) {
		why = "lr_gamma must be in (0, 1]";
	} else if (o->first_epoch < 1 || o->first_epoch > o->epochs) {
		why = "first_epoch must be in 1..epochs";
	}
	return why ? fail(m, IDN_EINVAL, core_strdup(why)) : IDN_OK;
}

static double
epoch_lr(const idn_model_train_opts *o, uint32_t epoch)
{
	uint32_t e = epoch - 1;
	switch (o->schedule) {
	case IDN_MODEL_LR_STEP:
		return o->lr * pow(o->lr_gamma, (double) (e / o->lr_step));
	case IDN_MODEL_LR_COSINE:
		return o->lr * 0.5 * (1.0 + cos(M_PI * e / o->epochs));
	default:
		return o->lr;
	}
}

// splitmix64: the shuffle's generator, seeded by the options and the epoch,
// so a run is repeatable and a resumed run shuffles as the whole one did.
static uint64_t
next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

// shuffle puts epoch's order of the n training images into perm.
static void
shuffle(size_t *perm, size_t n, uint64_t seed, uint32_t epoch)
{
	uint64_t s = seed ^ ((uint64_t) epoch << 32);
	uint64_t rng = next_rand(&s);
	for (size_t i = 0; i < n; i++) {
		perm[i] = i;
	}
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t) (next_rand(&rng) % (i + 1));
		size_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
}

int
idn_model_evaluate(idn_model *m, const idn_model_data *set,
    double *accuracy, double *loss)
{
	if (m == NULL) {
		return IDN_EINVAL;
	}
	clear_err(m);
	if (set == NULL) {
		return fail(m, IDN_EINVAL, NULL);
	}
	int rv = check_data(m, set, "evaluation");
	if (rv != IDN_OK) {
		return rv;
	}
	uint32_t k = m->desc.classes;
	float *logits = malloc((size_t) EVAL_CHUNK * k * sizeof(float));
	if (logits == NULL) {
		return fail(m, IDN_ENOMEM, NULL);
	}
	size_t right = 0;
	double sum = 0.0;
	for (size_t i = 0; i < set->n && rv == IDN_OK; i += EVAL_CHUNK) {
		size_t b = CORE_MIN((size_t) EVAL_CHUNK, set->n - i);
		rv = forward(m, set->images + i * m->in_bytes, b, logits);
		for (size_t j = 0; j < b && rv == IDN_OK; j++) {
			const float *l = logits + j * k;
			uint32_t cls;
			float p;
			model_softmax_top(l, k, &cls, &p);
			right += cls == set->labels[i + j];
			// Cross entropy: logsumexp(l) - l[label].
			double s = 0.0;
			for (uint32_t c = 0; c < k; c++) {
				s += exp((double) l[c] - l[cls]);
			}
			sum += log(s) + l[cls] - l[set->labels[i + j]];
		}
	}
	free(logits);
	if (rv == IDN_OK) {
		if (accuracy != NULL) {
			*accuracy = (double) right / (double) set->n;
		}
		if (loss != NULL) {
			*loss = sum / (double) set->n;
		}
	}
	return rv;
}

// epoch_batches is the number of batches train_epoch runs on n images.
static uint64_t
epoch_batches(size_t n, uint32_t batch_size)
{
	// BatchNorm cannot train on one image: the loop stops at a last
	// batch of 1 unless the set is one image.
	return (n + batch_size - 1) / batch_size -
	    (n > 1 && n % batch_size == 1);
}

// train_epoch runs one pass over the shuffled set; *loss gets its mean.
// *done counts the run's batches for on_progress (of total).
static int
train_epoch(idn_model *m, const idn_model_train_opts *o,
    const idn_model_data *train, const size_t *perm, double lr,
    uint8_t *x, uint8_t *y, double *loss, uint64_t *done, uint64_t total)
{
	double sum = 0.0;
	size_t seen = 0;
	for (size_t i = 0; i < train->n; i += o->batch_size) {
		size_t b = CORE_MIN((size_t) o->batch_size, train->n - i);
		if (b == 1 && train->n > 1) {
			break;
		}
		for (size_t j = 0; j < b; j++) {
			size_t k = perm[i + j];
			memcpy(x + j * m->in_bytes,
			    train->images + k * m->in_bytes, m->in_bytes);
			y[j] = train->labels[k];
		}
		char *err = NULL;
		double l = 0.0;
		int rv = m->be->train_step(m->impl, x, y, b, lr, &l, &err);
		if (rv != IDN_OK) {
			return fail(m, rv, err);
		}
		sum += l * (double) b;
		seen += b;
		if (o->on_progress != NULL) {
			o->on_progress(o->progress_arg, ++*done, total);
		}
	}
	*loss = seen ? sum / (double) seen : 0.0;
	return IDN_OK;
}

int
idn_model_train(idn_model *m, const idn_model_train_opts *o,
    const idn_model_data *train, const idn_model_data *test)
{
	if (m == NULL) {
		return IDN_EINVAL;
	}
	clear_err(m);
	idn_model_train_opts opts;
	if (train == NULL || model_train_opts_copy(o, &opts) != IDN_OK) {
		return fail(m, IDN_EINVAL, core_strdup("NULL training set, or "
		    "options not set up by idn_model_train_opts_init"));
	}
	o = &opts;
	int rv;
	if ((rv = check_opts(m, o)) != IDN_OK ||
	    (rv = check_data(m, train, "training")) != IDN_OK ||
	    (test != NULL && (rv = check_data(m, test, "test")) != IDN_OK)) {
		return rv;
	}
	size_t *perm = malloc(train->n * sizeof(size_t));
	uint8_t *x = malloc((size_t) o->batch_size * m->in_bytes);
	uint8_t *y = malloc(o->batch_size);
	if (perm == NULL || x == NULL || y == NULL) {
		free(perm);
		free(x);
		free(y);
		return fail(m, IDN_ENOMEM, NULL);
	}
	char *err = NULL;
	if ((rv = m->be->train_begin(m->impl, o, &err)) != IDN_OK) {
		rv = fail(m, rv, err);
	}
	uint64_t per = epoch_batches(train->n, o->batch_size);
	uint64_t done = per * (o->first_epoch - 1);
	for (uint32_t e = o->first_epoch; rv == IDN_OK && e <= o->epochs; e++) {
		idn_model_epoch ep = {.epoch = e, .epochs = o->epochs,
		    .test_loss = -1.0, .test_accuracy = -1.0};
		ep.lr = epoch_lr(o, e);
		shuffle(perm, train->n, o->seed, e);
		uint64_t t0 = idn_clock_ms();
		rv = train_epoch(m, o, train, perm, ep.lr, x, y,
		    &ep.train_loss, &done, per * o->epochs);
		uint64_t t1 = idn_clock_ms();
		ep.train_ms = t1 - t0;
		if (rv == IDN_OK && test != NULL) {
			rv = idn_model_evaluate(m, test, &ep.test_accuracy,
			    &ep.test_loss);
			ep.test_ms = idn_clock_ms() - t1;
		}
		if (rv == IDN_OK && o->on_epoch != NULL &&
		    o->on_epoch(o->arg, &ep) != 0) {
			break;
		}
	}
	m->be->train_end(m->impl);
	free(perm);
	free(x);
	free(y);
	return rv;
}

int
idn_model_export(idn_model *m, void **out, size_t *len)
{
	if (m == NULL) {
		return IDN_EINVAL;
	}
	clear_err(m);
	if (out == NULL || len == NULL) {
		return fail(m, IDN_EINVAL, NULL);
	}
	char *err = NULL;
	int rv = m->be->save(m->impl, out, len, &err);
	return rv == IDN_OK ? IDN_OK : fail(m, rv, err);
}

int
idn_model_import(idn_model *m, const void *data, size_t len)
{
	if (m == NULL) {
		return IDN_EINVAL;
	}
	clear_err(m);
	if (data == NULL || len == 0) {
		return fail(m, IDN_EINVAL, core_strdup("no weights"));
	}
	char *err = NULL;
	int rv = m->be->restore(m->impl, data, len, &err);
	return rv == IDN_OK ? IDN_OK : fail(m, rv, err);
}

static void
read_err(char **errmsg, const char *what, const char *path)
{
	if (errmsg != NULL) {
		*errmsg = core_asprintf("cannot read %s %s", what, path);
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
		read_err(errmsg, "descriptor", desc_path);
	} else if (model_path != NULL &&
	    (rv = core_file_read(model_path, (size_t) 4 << 30, &model)) !=
	        IDN_OK) {
		read_err(errmsg, "model", model_path);
	} else {
		rv = idn_model_load((const char *) desc.data, desc.len,
		    model.data, model.len, errmsg, out);
	}
	core_buf_free(&desc);
	core_buf_free(&model);
	return rv;
}
