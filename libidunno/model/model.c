// SPDX-License-Identifier: MIT
// model.c: the public model API over the backends: argument checks, error
// text, softmax, the training loop (shuffle, lr schedule, data-parallel
// shares and sync or periodic model averaging, evaluation, training
// state).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model.h"

typedef struct train_run train_run;

struct idn_model {
	model_desc desc;
	const model_backend *be;
	void *impl;
	size_t in_bytes; // C*H*W
	char *err;       // last error text, NULL if none
	train_run *run;  // while idn_model_train runs
};

// A training run in progress: the loop's buffers and its position, which
// idn_model_export_train_state records.
struct train_run {
	const idn_model_train_opts *o;
	const idn_model_data *train;
	size_t *perm;       // the epoch's order
	uint8_t *x, *y;     // this rank's share of a batch
	uint8_t *tmp;       // one image, for augment
	float *sync;        // on_sync's buffer; NULL without on_sync
	size_t ngrad, nbuf; // its gradient (or parameter) and buffer floats
	bool average;       // model averaging: world > 1, sync_every > 1
	bool local;         // in on_step after a local step (no sync)
	double since_loss;  // averaging: loss * b_r of the steps since the
	uint64_t since_b;   // last sync, their b_r and their global images
	uint64_t since_g;
	uint64_t steps;     // per epoch
	uint64_t progress;  // steps of the run so far, for on_progress
	uint32_t epoch;
	uint64_t done;      // steps done in this epoch
	double loss_sum;    // this epoch: each step's mean loss * images
	uint64_t loss_images;
};

// A training state blob: this header (little-endian), then the backend's
// state (torch: a pickled dict of weights and optimiser tensors).
#define STATE_MAGIC "IDNTRST1"
#define STATE_HEAD 48 // magic, epoch, 0, done, loss_images, loss_sum, len


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
	o->world = 1;
	o->sync_every = 1;
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
	} else if (o->world < 1 || o->world > 65536) {
		why = "world must be in 1..65536";
	} else if (o->rank >= o->world) {
		why = "rank must be < world";
	} else if (o->world > 1 && o->on_sync == NULL) {
		why = "world > 1 needs an on_sync hook";
	} else if (o->world > 1 && o->batch_size < 2 * (uint64_t) o->world) {
		// Each rank's share needs 2 images, as a batch does.
		why = "batch_size (the global batch) must be >= 2 * world";
	} else if ((o->resume_state == NULL) != (o->resume_state_len == 0)) {
		why = "resume_state and resume_state_len go together";
	} else if (o->sync_every < 1) {
		why = "sync_every must be >= 1 (1: sync every step)";
	} else if (o->world > 1 &&
	    (uint64_t) o->sync_every * o->batch_size > 1u << 24) {
		// The images counted between syncs travel as a float.
		why = "sync_every * batch_size must be <= 2^24";
	} else if ((o->augment & ~(uint32_t) IDN_MODEL_AUG_FLIP) != 0) {
		why = "unknown augment bits";
	} else if (o->crop_pad > m->desc.height / 2 ||
	    o->crop_pad > m->desc.width / 2) {
		why = "crop_pad must be at most half the image's height and "
		    "width";
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

// shuffle puts epoch's order of the n training images into perm.
static void
shuffle(size_t *perm, size_t n, uint64_t seed, uint32_t epoch)
{
	uint64_t s = seed ^ ((uint64_t) epoch << 32);
	uint64_t rng = model_rand(&s);
	for (size_t i = 0; i < n; i++) {
		perm[i] = i;
	}
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t) (model_rand(&rng) % (i + 1));
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

// epoch_steps is the number of steps of an epoch of n images in global
// batches of batch_size split over world ranks: the same on every rank.
static uint64_t
epoch_steps(size_t n, uint32_t batch_size, uint32_t world)
{
	// BatchNorm cannot train on one image: a last batch runs only if
	// each share gets 2 images, or if it is the whole set of 1 image.
	uint64_t rem = n % batch_size;
	return n / batch_size + (rem >= 2 * (uint64_t) world ||
	    (n == 1 && world == 1));
}

// share_start is where share r of a global batch of g images starts:
// contiguous shares whose sizes differ by at most 1.
static size_t
share_start(size_t g, uint32_t world, uint32_t r)
{
	return (size_t) ((uint64_t) g * r / world);
}

// sync_step computes this rank's gradients, sums them, the buffers and
// the trailer over the ranks through on_sync, then applies the mean
// gradient. *loss gets the global batch's mean loss, *ctl rank 0's
// control word.
static int
sync_step(idn_model *m, train_run *r, size_t g, size_t b, double lr,
    double *loss, uint32_t *ctl)
{
	const idn_model_train_opts *o = r->o;
	char *err = NULL;
	int rv = m->be->train_grad(m->impl, r->x, r->y, b, (float) b,
	    r->sync, loss, &err);
	if (rv != IDN_OK) {
		return fail(m, rv, err);
	}
	if (o->rank == 0 && o->step_control != NULL) {
		*ctl = o->step_control(o->control_arg);
	}
	float *t = r->sync + r->ngrad + r->nbuf;
	t[0] = (float) (*loss * (double) b);
	t[1] = (float) b;
	t[2] = (float) (*ctl & 0xffff);
	t[3] = (float) (*ctl >> 16);
	size_t n = r->ngrad + r->nbuf + IDN_MODEL_SYNC_TRAILER;
	if ((rv = o->on_sync(o->sync_arg, IDN_MODEL_SYNC_STEP, r->sync, n)) !=
	    0) {
		return fail(m, rv, core_asprintf("on_sync failed at step %llu "
		    "of epoch %u: %s", (unsigned long long) r->done,
		    r->epoch, idn_strerror(rv)));
	}
	// The sum counts the whole global batch and one control word, or the
	// ranks are out of step (or the hook does not sum).
	bool word = t[2] >= 0.0f && t[2] <= 65535.0f && t[2] == floorf(t[2]) &&
	    t[3] >= 0.0f && t[3] <= 65535.0f && t[3] == floorf(t[3]);
	if (t[1] != (float) g || !word) {
		return fail(m, IDN_EPROTO, core_asprintf("on_sync's sum counts "
		    "%g images and control %g, %g; the global batch has %zu "
		    "images (ranks out of step?)", t[1], t[2], t[3], g));
	}
	*loss = (double) t[0] / (double) g;
	*ctl = (uint32_t) t[2] | (uint32_t) t[3] << 16;
	rv = m->be->train_apply(m->impl, r->sync, (double) g,
	    (double) o->world, lr, &err);
	return rv == IDN_OK ? IDN_OK : fail(m, rv, err);
}

// local_step steps the optimiser on this rank's share alone (model
// averaging between syncs); *loss gets the share's mean loss. At a sync
// step (sync) it then averages the weights and buffers over the ranks:
// *loss becomes the mean loss since the last sync over all ranks, *ctl
// rank 0's control word, and the epoch's loss counts those steps.
static int
local_step(idn_model *m, train_run *r, size_t g, size_t b, double lr,
    bool sync, double *loss, uint32_t *ctl)
{
	const idn_model_train_opts *o = r->o;
	char *err = NULL;
	int rv = m->be->train_step(m->impl, r->x, r->y, b, lr, loss, &err);
	if (rv != IDN_OK) {
		return fail(m, rv, err);
	}
	r->since_loss += *loss * (double) b;
	r->since_b += b;
	r->since_g += g;
	if (!sync) {
		return IDN_OK;
	}
	size_t nw = r->ngrad + r->nbuf;
	if ((rv = m->be->weights(m->impl, r->sync, nw, &err)) != IDN_OK) {
		return fail(m, rv, err);
	}
	if (o->rank == 0 && o->step_control != NULL) {
		*ctl = o->step_control(o->control_arg);
	}
	float *t = r->sync + nw;
	t[0] = (float) r->since_loss;
	t[1] = (float) r->since_b;
	t[2] = (float) (*ctl & 0xffff);
	t[3] = (float) (*ctl >> 16);
	uint64_t want = r->since_g;
	r->since_loss = 0.0;
	r->since_b = r->since_g = 0;
	if ((rv = o->on_sync(o->sync_arg, IDN_MODEL_SYNC_AVERAGE, r->sync,
	    nw + IDN_MODEL_SYNC_TRAILER)) != 0) {
		return fail(m, rv, core_asprintf("on_sync (average) failed at "
		    "step %llu of epoch %u: %s", (unsigned long long) r->done,
		    r->epoch, idn_strerror(rv)));
	}
	bool word = t[2] >= 0.0f && t[2] <= 65535.0f && t[2] == floorf(t[2]) &&
	    t[3] >= 0.0f && t[3] <= 65535.0f && t[3] == floorf(t[3]);
	if (t[1] != (float) want || !word) {
		return fail(m, IDN_EPROTO, core_asprintf("on_sync's sum counts "
		    "%g images and control %g, %g; the global batches since "
		    "the last sync have %llu images (ranks out of step?)",
		    t[1], t[2], t[3], (unsigned long long) want));
	}
	*loss = (double) t[0] / (double) want;
	*ctl = (uint32_t) t[2] | (uint32_t) t[3] << 16;
	r->loss_sum += (double) t[0];
	r->loss_images += want;
	rv = m->be->average(m->impl, r->sync, nw, (double) o->world, &err);
	return rv == IDN_OK ? IDN_OK : fail(m, rv, err);
}

// is_sync_step: with model averaging, step k syncs every sync_every steps
// and at the epoch's end, so evaluation and on_epoch see one model.
static bool
is_sync_step(const train_run *r, uint64_t k)
{
	return (k + 1) % r->o->sync_every == 0 || k + 1 == r->steps;
}

// train_step runs step k of the epoch: this rank's share of global batch
// k, the optimiser step (through on_sync if set), then the callbacks.
static int
train_step(idn_model *m, train_run *r, uint64_t k, double lr)
{
	const idn_model_train_opts *o = r->o;
	const idn_model_data *d = r->train;
	size_t i = (size_t) k * o->batch_size;
	size_t g = CORE_MIN((size_t) o->batch_size, d->n - i);
	size_t lo = i + share_start(g, o->world, o->rank);
	size_t b = i + share_start(g, o->world, o->rank + 1) - lo;
	for (size_t j = 0; j < b; j++) {
		size_t p = r->perm[lo + j];
		memcpy(r->x + j * m->in_bytes, d->images + p * m->in_bytes,
		    m->in_bytes);
		r->y[j] = d->labels[p];
		if (o->augment != 0 || o->crop_pad != 0) {
			model_augment(&m->desc, o, r->epoch, lo + j,
			    r->x + j * m->in_bytes, r->tmp);
		}
	}
	double loss = 0.0;
	uint32_t ctl = 0;
	int rv;
	bool local = false;
	if (r->average) {
		bool sync = is_sync_step(r, k);
		if ((rv = local_step(m, r, g, b, lr, sync, &loss, &ctl)) !=
		    IDN_OK) {
			return rv;
		}
		local = !sync;
	} else if (r->sync != NULL) {
		if ((rv = sync_step(m, r, g, b, lr, &loss, &ctl)) != IDN_OK) {
			return rv;
		}
	} else {
		char *err = NULL;
		rv = m->be->train_step(m->impl, r->x, r->y, b, lr, &loss, &err);
		if (rv != IDN_OK) {
			return fail(m, rv, err);
		}
		if (o->step_control != NULL) {
			ctl = o->step_control(o->control_arg);
		}
	}
	if (!r->average) {
		r->loss_sum += loss * (double) g;
		r->loss_images += g;
	}
	r->done = k + 1;
	if (o->on_progress != NULL) {
		o->on_progress(o->progress_arg, ++r->progress,
		    r->steps * o->epochs);
	}
	if (o->on_step != NULL) {
		idn_model_step s = {.epoch = r->epoch, .epochs = o->epochs,
		    .step = k, .steps = r->steps, .images = (uint32_t) g,
		    .control = ctl, .loss = loss, .lr = lr};
		r->local = local;
		int stop = o->on_step(o->step_arg, &s);
		r->local = false;
		if (stop != 0) {
			return fail(m, IDN_ECLOSED, core_asprintf("stopped by "
			    "on_step after step %llu of epoch %u",
			    (unsigned long long) k, r->epoch));
		}
	}
	return IDN_OK;
}

static void
put_le64(uint8_t *p, uint64_t v)
{
	core_put_le32(p, (uint32_t) v);
	core_put_le32(p + 4, (uint32_t) (v >> 32));
}

// resume loads o->resume_state into the model and the optimiser. If it was
// saved where this run starts, the epoch's loss so far comes with it.
static int
resume(idn_model *m, train_run *r)
{
	const idn_model_train_opts *o = r->o;
	const uint8_t *b = o->resume_state;
	size_t len = o->resume_state_len;
	if (len < STATE_HEAD || memcmp(b, STATE_MAGIC, 8) != 0 ||
	    core_get_le(b + 40, 8) != len - STATE_HEAD) {
		return fail(m, IDN_EMODEL, core_strdup("resume_state is not a "
		    "training state (idn_model_export_train_state)"));
	}
	char *err = NULL;
	int rv = m->be->state_load(m->impl, b + STATE_HEAD, len - STATE_HEAD,
	    &err);
	if (rv != IDN_OK) {
		return fail(m, rv, err);
	}
	if (core_get_le(b + 8, 4) == o->first_epoch &&
	    core_get_le(b + 16, 8) == o->first_step) {
		uint64_t bits = core_get_le(b + 32, 8);
		memcpy(&r->loss_sum, &bits, sizeof(bits));
		r->loss_images = core_get_le(b + 24, 8);
	}
	return IDN_OK;
}

// train_setup checks what needs the data, allocates the run's buffers and
// starts the backend's training (with resume_state, if any).
static int
train_setup(idn_model *m, train_run *r)
{
	const idn_model_train_opts *o = r->o;
	r->steps = epoch_steps(r->train->n, o->batch_size, o->world);
	if (r->steps == 0) {
		return fail(m, IDN_EINVAL, core_asprintf("a training set of "
		    "%zu images has no batch for %u ranks", r->train->n,
		    o->world));
	}
	if (o->first_step > r->steps) {
		return fail(m, IDN_EINVAL, core_asprintf("first_step %llu is "
		    "beyond the epoch's %llu steps",
		    (unsigned long long) o->first_step,
		    (unsigned long long) r->steps));
	}
	// Between syncs the ranks' weights differ: a run resumes only where
	// they were last the same.
	r->average = o->world > 1 && o->sync_every > 1;
	if (r->average && o->first_step % o->sync_every != 0 &&
	    o->first_step != r->steps) {
		return fail(m, IDN_EINVAL, core_asprintf("first_step %llu is "
		    "not a sync boundary: with sync_every %u it must be a "
		    "multiple of %u or the epoch's %llu steps",
		    (unsigned long long) o->first_step, o->sync_every,
		    o->sync_every, (unsigned long long) r->steps));
	}
	// A share is at most ceil(batch / world) images.
	size_t share = (o->batch_size + o->world - 1) / o->world;
	r->perm = malloc(r->train->n * sizeof(size_t));
	r->x = malloc(share * m->in_bytes);
	r->y = malloc(share);
	r->tmp = malloc(m->in_bytes);
	if (r->perm == NULL || r->x == NULL || r->y == NULL || r->tmp == NULL) {
		return fail(m, IDN_ENOMEM, NULL);
	}
	char *err = NULL;
	int rv;
	if (o->on_sync != NULL) {
		if ((rv = m->be->sync_len(m->impl, &r->ngrad, &r->nbuf,
		    &err)) != IDN_OK) {
			return fail(m, rv, err);
		}
		size_t n = r->ngrad + r->nbuf + IDN_MODEL_SYNC_TRAILER;
		if (n > SIZE_MAX / sizeof(float) ||
		    (r->sync = malloc(n * sizeof(float))) == NULL) {
			return fail(m, IDN_ENOMEM, NULL);
		}
	}
	if ((rv = m->be->train_begin(m->impl, o, &err)) != IDN_OK) {
		return fail(m, rv, err);
	}
	if (o->resume_state != NULL && (rv = resume(m, r)) != IDN_OK) {
		m->be->train_end(m->impl);
		return rv;
	}
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
	if (m->run != NULL) {
		return fail(m, IDN_EBUSY, core_strdup("already training"));
	}
	o = &opts;
	int rv;
	if ((rv = check_opts(m, o)) != IDN_OK ||
	    (rv = check_data(m, train, "training")) != IDN_OK ||
	    (test != NULL && (rv = check_data(m, test, "test")) != IDN_OK)) {
		return rv;
	}
	train_run r = {.o = o, .train = train};
	if ((rv = train_setup(m, &r)) == IDN_OK) {
		m->run = &r;
		r.progress = r.steps * (o->first_epoch - 1) + o->first_step;
	}
	for (uint32_t e = o->first_epoch; rv == IDN_OK && e <= o->epochs; e++) {
		idn_model_epoch ep = {.epoch = e, .epochs = o->epochs,
		    .test_loss = -1.0, .test_accuracy = -1.0};
		ep.lr = epoch_lr(o, e);
		shuffle(r.perm, train->n, o->seed, e);
		uint64_t k = e == o->first_epoch ? o->first_step : 0;
		if (e != o->first_epoch) {
			r.loss_sum = 0.0;
			r.loss_images = 0;
		}
		r.epoch = e;
		r.done = k;
		uint64_t t0 = idn_clock_ms();
		for (; rv == IDN_OK && k < r.steps; k++) {
			rv = train_step(m, &r, k, ep.lr);
		}
		ep.train_loss = r.loss_images ?
		    r.loss_sum / (double) r.loss_images : 0.0;
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
	if (m->run != NULL) {
		m->be->train_end(m->impl);
		m->run = NULL;
	}
	free(r.perm);
	free(r.tmp);
	free(r.x);
	free(r.y);
	free(r.sync);
	return rv;
}

int
idn_model_export_train_state(idn_model *m, void **out, size_t *len)
{
	if (m == NULL) {
		return IDN_EINVAL;
	}
	clear_err(m);
	if (out == NULL || len == NULL) {
		return fail(m, IDN_EINVAL, NULL);
	}
	train_run *r = m->run;
	if (r == NULL) {
		return fail(m, IDN_EINVAL, core_strdup("no training in "
		    "progress: call it from on_step or on_epoch"));
	}
	if (r->local) {
		return fail(m, IDN_EINVAL, core_asprintf("step %llu of epoch "
		    "%u is local (sync_every %u): ranks' weights differ until "
		    "the next sync step", (unsigned long long) (r->done - 1),
		    r->epoch, r->o->sync_every));
	}
	void *p = NULL;
	size_t n = 0;
	char *err = NULL;
	int rv = m->be->state_save(m->impl, STATE_HEAD, &p, &n, &err);
	if (rv != IDN_OK) {
		return fail(m, rv, err);
	}
	uint8_t *b = p;
	uint64_t bits;
	memcpy(&bits, &r->loss_sum, sizeof(bits));
	memcpy(b, STATE_MAGIC, 8);
	core_put_le32(b + 8, r->epoch);
	core_put_le32(b + 12, 0);
	put_le64(b + 16, r->done);
	put_le64(b + 24, r->loss_images);
	put_le64(b + 32, bits);
	put_le64(b + 40, n - STATE_HEAD);
	*out = b;
	*len = n;
	return IDN_OK;
}

int
model_weights(idn_model *m, float **out, size_t *n)
{
	size_t g = 0, b = 0;
	char *err = NULL;
	int rv = m->be->sync_len(m->impl, &g, &b, &err);
	float *w = rv == IDN_OK ? malloc((g + b + 1) * sizeof(float)) : NULL;
	if (rv == IDN_OK && w == NULL) {
		rv = IDN_ENOMEM;
	}
	if (rv == IDN_OK) {
		rv = m->be->weights(m->impl, w, g + b, &err);
	}
	if (rv != IDN_OK) {
		free(w);
		return fail(m, rv, err);
	}
	*out = w;
	*n = g + b;
	return IDN_OK;
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
