// SPDX-License-Identifier: MIT
// sim.c: the "sim" backend: sleeps a configured service time per batch and
// answers deterministically from each query's bytes.
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "model/model.h"

#define SIM_MAGIC "IDNSIM01"
#define SIM_BLOB_BYTES 24 // magic, classes, C*H*W, steps trained (u64)
// A data-parallel step syncs 2 "gradients" (1 and the share's mean label,
// times the share) and 1 "buffer" (the steps taken), and model averaging
// 2 zero "parameters" and the steps: tiny buffers, so cluster tests with
// sim models still exercise the communication path.
#define SIM_GRADS 2
#define SIM_BUFFERS 1

typedef struct sim {
	uint32_t classes;
	size_t in_bytes;
	uint32_t service_ms;
	uint32_t per_query_us;
	uint64_t steps; // optimiser steps "taken"; exported as the weights
} sim;

// sim_sleep sleeps until t + us on the monotonic clock, so the
// service time is never shorter than configured, even across signals.
static void
sim_sleep(struct timespec t, uint64_t us)
{
	if (us == 0) {
		return;
	}
	t.tv_sec += (time_t) (us / 1000000);
	t.tv_nsec += (long) (us % 1000000) * 1000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) ==
	    EINTR) {
	}
}

static struct timespec
sim_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t;
}

static uint64_t
service_us(const sim *s, size_t n)
{
	return (uint64_t) s->service_ms * 1000 + (uint64_t) s->per_query_us * n;
}

// FNV-1a then a splitmix64 finaliser, so that nearby inputs spread.
static uint64_t
sim_hash(const uint8_t *q, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h = (h ^ q[i]) * 0x100000001b3ull;
	}
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

void
model_sim_logits(const uint8_t *q, size_t len, uint32_t k, float *out)
{
	uint64_t h = sim_hash(q, len);
	uint32_t cls = (uint32_t) (h % k);
	double p = 0.5 + 0.5 * (double) ((h >> 40) & 0xffff) / 65536.0;
	for (uint32_t i = 0; i < k; i++) {
		out[i] = 0.0f;
	}
	// With the other k-1 logits at 0, softmax(top) = p for this logit.
	if (k > 1) {
		out[cls] = (float) log(p * (double) (k - 1) / (1.0 - p));
	}
}

static int
sim_load(const model_desc *d, const void *bytes, size_t len, void **impl,
    char **err)
{
	sim *s = core_alloc(sizeof(*s));
	if (s == NULL) {
		return IDN_ENOMEM;
	}
	s->classes = d->classes;
	s->in_bytes = (size_t) d->channels * d->height * d->width;
	s->service_ms = d->service_ms;
	s->per_query_us = d->service_per_query_us;
	if (d->load_ms > 0) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		sim_sleep(t, (uint64_t) d->load_ms * 1000);
	}
	*impl = s;
	return IDN_OK;
}

static void
sim_close(void *impl)
{
	free(impl);
}

static int
sim_forward(void *impl, const uint8_t *x, size_t n, float *out, char **err)
{
	sim *s = impl;
	// The hashing counts towards the service time.
	struct timespec t0 = sim_now();
	for (size_t i = 0; i < n; i++) {
		model_sim_logits(x + i * s->in_bytes, s->in_bytes, s->classes,
		    out + i * s->classes);
	}
	sim_sleep(t0, service_us(s, n));
	return IDN_OK;
}

static int
sim_train_begin(void *impl, const idn_model_train_opts *o, char **err)
{
	return IDN_OK;
}

static int
sim_train_step(void *impl, const uint8_t *x, const uint8_t *y, size_t n,
    double lr, double *loss, char **err)
{
	sim *s = impl;
	sim_sleep(sim_now(), service_us(s, n));
	s->steps++;
	*loss = log((double) s->classes);
	return IDN_OK;
}

static int
sim_sync_len(void *impl, size_t *grads, size_t *buffers, char **err)
{
	*grads = SIM_GRADS;
	*buffers = SIM_BUFFERS;
	return IDN_OK;
}

static int
sim_train_grad(void *impl, const uint8_t *x, const uint8_t *y, size_t n,
    float scale, float *buf, double *loss, char **err)
{
	sim *s = impl;
	sim_sleep(sim_now(), service_us(s, n));
	double sum = 0.0;
	for (size_t i = 0; i < n; i++) {
		sum += y[i];
	}
	buf[0] = scale;
	buf[1] = scale * (float) (sum / (double) n);
	buf[2] = (float) s->steps;
	*loss = log((double) s->classes);
	return IDN_OK;
}

static int
sim_train_apply(void *impl, const float *buf, double count, double world,
    double lr, char **err)
{
	sim *s = impl;
	s->steps++;
	return IDN_OK;
}

static int
sim_weights(void *impl, float *out, size_t n, char **err)
{
	sim *s = impl;
	if (n != SIM_GRADS + SIM_BUFFERS) {
		return IDN_EINVAL;
	}
	out[0] = 0.0f;
	out[1] = 0.0f;
	out[2] = (float) s->steps;
	return IDN_OK;
}

// The averaged "weights" are the steps taken, the same on every rank
// that kept in step.
static int
sim_average(void *impl, const float *buf, size_t n, double world,
    char **err)
{
	sim *s = impl;
	if (n != SIM_GRADS + SIM_BUFFERS) {
		return IDN_EINVAL;
	}
	s->steps = (uint64_t) llround((double) buf[2] / world);
	return IDN_OK;
}

static void
sim_train_end(void *impl)
{
}

static int
sim_save(void *impl, void **out, size_t *len, char **err)
{
	sim *s = impl;
	uint8_t *b = malloc(SIM_BLOB_BYTES);
	if (b == NULL) {
		return IDN_ENOMEM;
	}
	memcpy(b, SIM_MAGIC, 8);
	core_put_le32(b + 8, s->classes);
	core_put_le32(b + 12, (uint32_t) s->in_bytes);
	core_put_le32(b + 16, (uint32_t) s->steps);
	core_put_le32(b + 20, (uint32_t) (s->steps >> 32));
	*out = b;
	*len = SIM_BLOB_BYTES;
	return IDN_OK;
}

static int
sim_restore(void *impl, const void *data, size_t len, char **err)
{
	sim *s = impl;
	const uint8_t *b = data;
	if (len != SIM_BLOB_BYTES || memcmp(b, SIM_MAGIC, 8) != 0) {
		*err = core_strdup("not sim weights");
		return IDN_EMODEL;
	}
	if (core_get_le(b + 8, 4) != s->classes ||
	    core_get_le(b + 12, 4) != s->in_bytes) {
		*err = core_strdup("sim weights are for another shape");
		return IDN_EMODEL;
	}
	s->steps = core_get_le(b + 16, 8);
	return IDN_OK;
}

static int
sim_state_save(void *impl, size_t head, void **out, size_t *len,
    char **err)
{
	void *w = NULL;
	size_t wlen = 0;
	int rv = sim_save(impl, &w, &wlen, err);
	uint8_t *b = rv == IDN_OK ? malloc(head + wlen) : NULL;
	if (b != NULL) {
		memcpy(b + head, w, wlen);
		*out = b;
		*len = head + wlen;
	}
	free(w);
	return rv != IDN_OK ? rv : b != NULL ? IDN_OK : IDN_ENOMEM;
}

const model_backend model_sim_backend = {
	.name = "sim",
	.load = sim_load,
	.close = sim_close,
	.forward = sim_forward,
	.train_begin = sim_train_begin,
	.train_step = sim_train_step,
	.train_end = sim_train_end,
	.save = sim_save,
	.restore = sim_restore,
	.sync_len = sim_sync_len,
	.train_grad = sim_train_grad,
	.train_apply = sim_train_apply,
	// The sim's weights are all its training state.
	.state_save = sim_state_save,
	.state_load = sim_restore,
	.weights = sim_weights,
	.average = sim_average,
};
