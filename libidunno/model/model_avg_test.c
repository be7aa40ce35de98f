// SPDX-License-Identifier: MIT
// model_avg_test.c: data-parallel training with model averaging every
// sync_every steps: its options, sim and LeNet-5 ranks, learning, and
// resuming from the ranks' training states.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model_test.h"

// Model averaging options: sync_every 0, a resume off a sync boundary and
// a count that could not travel as a float are refused; with world 1
// sync_every changes nothing.
void
test_dp_average_opts(void **st)
{
	idn_model *m = load_sim(sim_desc);
	static uint8_t x[40 * IMG];
	uint8_t y[40] = {0};
	idn_model_data set = {.images = x, .labels = y, .n = 40};
	unsigned calls = 0;
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	assert_int_equal(o.sync_every, 1);
	o.batch_size = 8; // 5 steps an epoch
	o.sync_every = 0;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	assert_non_null(strstr(idn_model_errmsg(m), "sync_every"));
	o.world = 2;
	o.on_sync = same_hook;
	o.sync_arg = &calls;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	assert_non_null(strstr(idn_model_errmsg(m), "sync_every"));
	o.sync_every = 1u << 22; // * 8 images between syncs > 2^24
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	assert_non_null(strstr(idn_model_errmsg(m), "2^24"));
	o.sync_every = 4;
	for (uint64_t k = 1; k < 4; k++) {
		o.first_step = k;
		IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
		assert_non_null(strstr(idn_model_errmsg(m), "sync boundary"));
	}
	assert_int_equal(calls, 0);
	// first_step 5 == steps only finishes the epoch; 4 is a boundary,
	// where this lone rank's hook, which does not sum, is caught.
	o.first_step = 5;
	IDN_PASS(idn_model_train(m, &o, &set, NULL));
	assert_int_equal(calls, 0);
	o.first_step = 4;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EPROTO);
	assert_non_null(strstr(idn_model_errmsg(m), "out of step"));
	assert_int_equal(calls, 1);
	// World 1: sync_every has no effect (a hook syncs every step, any
	// first_step is fine).
	o.world = 1;
	o.first_step = 3;
	calls = 0;
	IDN_PASS(idn_model_train(m, &o, &set, NULL));
	assert_int_equal(calls, 2);
	idn_model_close(m);
}

// Sim ranks with sync_every 2: the hook runs at sync steps only, with
// kind IDN_MODEL_SYNC_AVERAGE and a tiny buffer; rank 0's word is asked
// and delivered at sync steps only, and a stop it asks for stops both.
void
test_dp_average_sim(void **st)
{
	static uint8_t x[40 * IMG];
	uint8_t y[40];
	for (int i = 0; i < 40; i++) {
		y[i] = (uint8_t) (i % 10);
	}
	idn_model_data train = {.images = x, .labels = y, .n = 40};
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.epochs = 3;
	o.batch_size = 8;  // 5 steps an epoch: syncs after steps 1, 3, 4
	o.sync_every = 2;
	o.step_control = on_control;
	o.on_step = control_step;
	rank_run run[2] = {{.m = load_sim(sim_desc)},
	    {.m = load_sim(sim_desc)}};
	control_seen seen[2] = {{.rank = 0}, {.rank = 1}};
	run[0].arg = &seen[0];
	run[1].arg = &seen[1];
	allreduce a = {0};
	train_ranks(run, 2, &a, &o, &train);
	// The 8th word (99) came at the 8th sync: epoch 3, step 3.
	IDN_FAIL(run[0].rv, IDN_ECLOSED);
	IDN_FAIL(run[1].rv, IDN_ECLOSED);
	assert_false(a.bad);
	assert_false(seen[0].wrong_rank || seen[1].wrong_rank);
	assert_int_equal(seen[0].controls, 8);
	assert_int_equal(seen[1].controls, 0);
	assert_int_equal(a.calls[0], 8);
	assert_int_equal(a.averages[0], 8);
	assert_int_equal(a.averages[1], 8);
	assert_int_equal(a.n[0], 3 + IDN_MODEL_SYNC_TRAILER);
	// The last sync counted its 2 steps' shares of 4.
	assert_true(a.shares[0] == 8.0f && a.shares[1] == 8.0f);
	assert_int_equal(seen[0].n, 14);
	assert_int_equal(seen[1].n, 14);
	for (unsigned i = 0; i < 14; i++) {
		uint64_t k = seen[0].step[i];
		bool sync = k % 2 == 1 || k == 4;
		assert_true(seen[1].step[i] == k);
		assert_true(seen[0].control[i] == seen[1].control[i]);
		assert_true(sync || seen[0].control[i] == 0);
		assert_true(fabs(seen[0].loss[i] - log(10.0)) < 1e-6);
	}
	// The 3rd sync (epoch 1's last step) carried 0x12345.
	assert_int_equal(seen[0].epoch[4], 1);
	assert_int_equal(seen[0].step[4], 4);
	assert_int_equal(seen[0].control[4], 0x12345);
	assert_int_equal(seen[1].control[4], 0x12345);
	assert_int_equal(seen[0].epoch[13], 3);
	assert_int_equal(seen[0].step[13], 3);
	size_t n;
	float *w0 = weights(run[0].m, &n), *w1 = weights(run[1].m, &n);
	assert_memory_equal(w0, w1, n * sizeof(float));
	assert_true(w0[2] == 14.0f); // steps taken
	free(w0);
	free(w1);
	free(a.sum);
	idn_model_close(run[0].m);
	idn_model_close(run[1].m);
}

#define AVG_K 4
#define AVG_MAX 64

// What one LeNet rank saw with sync_every AVG_K: after every step a hash
// of its weights, its loss and control word; its training state saved
// where rank 0's word said 1. Filled on the rank's thread (no asserts
// there), checked after the join.
typedef struct {
	idn_model *m;
	unsigned n;                 // on_step calls
	uint64_t step[AVG_MAX];
	uint64_t hash[AVG_MAX];
	double loss[AVG_MAX];
	uint32_t control[AVG_MAX];
	unsigned controls;          // step_control calls
	unsigned save_call;         // the control call that returns 1
	unsigned local_exports;     // exports tried at local steps
	unsigned local_refused;     // ... refused with IDN_EINVAL
	int err;                    // a failed model_weights or export
	void *state;
	size_t state_len;
	float *state_w;             // the weights where the state was saved
	double epoch_loss[4];
} avg_seen;

static uint64_t
weights_hash(idn_model *m, int *err)
{
	float *w = NULL;
	size_t n = 0;
	int rv = model_weights(m, &w, &n);
	uint64_t h = 0xcbf29ce484222325ull;
	const uint8_t *p = (const uint8_t *) w;
	for (size_t i = 0; rv == IDN_OK && i < n * sizeof(float); i++) {
		h = (h ^ p[i]) * 0x100000001b3ull;
	}
	*err = *err ? *err : rv;
	free(w);
	return h;
}

static uint32_t
avg_control(void *arg)
{
	avg_seen *v = arg;
	return ++v->controls == v->save_call ? 1u : 0u;
}

static bool
avg_sync_step(uint64_t k, uint64_t steps)
{
	return (k + 1) % AVG_K == 0 || k + 1 == steps;
}

static int
avg_step(void *arg, const idn_model_step *s)
{
	avg_seen *v = arg;
	if (v->n < AVG_MAX) {
		v->step[v->n] = s->step;
		v->hash[v->n] = weights_hash(v->m, &v->err);
		v->loss[v->n] = s->loss;
		v->control[v->n] = s->control;
	}
	v->n++;
	void *p = NULL;
	size_t len;
	if (!avg_sync_step(s->step, s->steps)) {
		// Each rank's weights are its own here: no checkpoint.
		v->local_exports++;
		int rv = idn_model_export_train_state(v->m, &p, &len);
		v->local_refused += rv == IDN_EINVAL;
		idn_free(p);
	} else if ((s->control & 1) && v->state == NULL) {
		size_t n;
		int rv = idn_model_export_train_state(v->m, &v->state,
		    &v->state_len);
		if (rv == IDN_OK) {
			rv = model_weights(v->m, &v->state_w, &n);
		}
		v->err = v->err ? v->err : rv;
	}
	return 0;
}

static int
avg_epoch(void *arg, const idn_model_epoch *e)
{
	avg_seen *v = arg;
	if (e->epoch <= 4) {
		v->epoch_loss[e->epoch - 1] = e->train_loss;
	}
	return 0;
}

// avg_opts: 2 epochs of LeNet, global batch 32, sync_every AVG_K.
static void
avg_opts(idn_model_train_opts *o)
{
	idn_model_train_opts_init(o);
	o->epochs = 2;
	o->batch_size = 32;
	o->lr = 0.05;
	o->sync_every = AVG_K;
	o->step_control = avg_control;
	o->on_step = avg_step;
	o->on_epoch = avg_epoch;
}

// avg_ranks trains 2 fresh LeNet ranks on threads into seen[0..1] (their
// models stay there), from states[r] if states is not NULL.
static void
avg_ranks(avg_seen *seen, allreduce *a, const idn_model_train_opts *o,
    const idn_model_data *train, void *const *states, const size_t *lens)
{
	rank_run run[2] = {{0}};
	for (unsigned r = 0; r < 2; r++) {
		seen[r].m = run[r].m = load_torch("lenet5");
		run[r].arg = &seen[r];
		if (states != NULL) {
			run[r].state = states[r];
			run[r].state_len = lens[r];
		}
	}
	train_ranks(run, 2, a, o, train);
	for (unsigned r = 0; r < 2; r++) {
		if (run[r].rv != IDN_OK) {
			fail_msg("rank %u: %s: %s", r, idn_strerror(run[r].rv),
			    idn_model_errmsg(run[r].m));
		}
		IDN_PASS(seen[r].err);
	}
	assert_false(a->bad);
}

static void
avg_seen_free(avg_seen *v)
{
	idn_free(v->state);
	free(v->state_w);
	idn_model_close(v->m);
}

// Two LeNet ranks with sync_every 4: the hook runs at sync steps only
// (7 steps an epoch: after steps 3 and 6), both ranks hold bit-identical
// weights after every sync and different ones between, and the epoch's
// loss is the mean of the syncs' losses weighted by their images.
void
test_dp_average_ranks(void **st)
{
	IDN_SKIP_IF(!have_fashion(), "no Fashion-MNIST in " FASHION);
	core_buf probe;
	IDN_SKIP_IF(!models_file("lenet5.desc", &probe),
	    "IDUNNO_BUILD_DIR not set");
	core_buf_free(&probe);
	idn_dataset *te = fashion("t10k");
	idn_model_data train = {te->images + 2000 * IMG, te->labels + 2000,
	    200}; // 6 batches of 32 and one of 8 (4 + 4)
	idn_model_train_opts o;
	avg_opts(&o);
	avg_seen seen[2] = {{0}};
	allreduce a = {0};
	avg_ranks(seen, &a, &o, &train, NULL, NULL);
	// 7 steps an epoch: 7 / 4 syncs, +1 for the last group of 3.
	assert_int_equal(a.calls[0], 4);
	assert_int_equal(a.calls[1], 4);
	assert_int_equal(a.averages[0], 4);
	size_t n;
	float *w0 = weights(seen[0].m, &n), *w1 = weights(seen[1].m, &n);
	assert_int_equal(a.n[0], n + IDN_MODEL_SYNC_TRAILER);
	assert_memory_equal(w0, w1, n * sizeof(float));
	assert_int_equal(seen[0].controls, 4);
	assert_int_equal(seen[1].controls, 0);
	for (unsigned r = 0; r < 2; r++) {
		assert_int_equal(seen[r].n, 14);
		assert_int_equal(seen[r].local_exports, 10);
		assert_int_equal(seen[r].local_refused, 10);
	}
	for (unsigned i = 0; i < 14; i++) {
		assert_true(seen[0].step[i] == i % 7);
		if (avg_sync_step(i % 7, 7)) {
			assert_true(seen[0].hash[i] == seen[1].hash[i]);
			assert_true(seen[0].loss[i] == seen[1].loss[i]);
		} else {
			// Each rank stepped on its own share.
			assert_true(seen[0].hash[i] != seen[1].hash[i]);
			assert_true(seen[0].loss[i] != seen[1].loss[i]);
			assert_int_equal(seen[0].control[i], 0);
		}
	}
	for (unsigned e = 0; e < 2; e++) {
		// Syncs after 4 steps (128 images) and 3 (32 + 32 + 8).
		double want = (seen[0].loss[7 * e + 3] * 128 +
		    seen[0].loss[7 * e + 6] * 72) / 200;
		assert_true(seen[0].epoch_loss[e] == seen[1].epoch_loss[e]);
		assert_true(fabs(seen[0].epoch_loss[e] - want) < 1e-6 * want);
	}
	free(w0);
	free(w1);
	free(a.sum);
	avg_seen_free(&seen[0]);
	avg_seen_free(&seen[1]);
	idn_dataset_free(te);
}

// Two ranks with sync_every 4 still learn: after 2 epochs (24 syncs each)
// the epoch's loss is well below the first step's, the test accuracy far
// above chance, close to a sync at every step.
void
test_dp_average_learns(void **st)
{
	IDN_SKIP_IF(!have_fashion(), "no Fashion-MNIST in " FASHION);
	core_buf probe;
	IDN_SKIP_IF(!models_file("lenet5.desc", &probe),
	    "IDUNNO_BUILD_DIR not set");
	core_buf_free(&probe);
	idn_dataset *te = fashion("t10k");
	idn_model_data train = {te->images + 2000 * IMG, te->labels + 2000,
	    3000}; // 94 steps an epoch
	idn_model_data test = {te->images, te->labels, 1000};
	idn_model_train_opts o;
	avg_opts(&o);
	avg_seen seen[2] = {{0}}, every[2] = {{0}};
	allreduce a = {0}, b = {0};
	avg_ranks(seen, &a, &o, &train, NULL, NULL);
	assert_int_equal(a.averages[0], 48);
	o.sync_every = 1;
	avg_ranks(every, &b, &o, &train, NULL, NULL);
	assert_int_equal(b.averages[0], 0);
	double acc[3];
	IDN_PASS(idn_model_evaluate(seen[0].m, &test, &acc[0], NULL));
	IDN_PASS(idn_model_evaluate(seen[1].m, &test, &acc[1], NULL));
	IDN_PASS(idn_model_evaluate(every[0].m, &test, &acc[2], NULL));
	print_message("# lenet5 2 ranks, sync_every %d: first step's loss "
	    "%.3f, epochs %.3f, %.3f, test accuracy %.3f; sync_every 1: "
	    "%.3f, %.3f, %.3f\n", AVG_K, seen[0].loss[0],
	    seen[0].epoch_loss[0], seen[0].epoch_loss[1], acc[0],
	    every[0].epoch_loss[0], every[0].epoch_loss[1], acc[2]);
	assert_true(acc[0] == acc[1]);
	assert_true(seen[0].epoch_loss[1] < 0.5 * seen[0].loss[0]);
	assert_true(acc[0] > 0.6);
	free(a.sum);
	free(b.sum);
	for (unsigned r = 0; r < 2; r++) {
		avg_seen_free(&seen[r]);
		avg_seen_free(&every[r]);
	}
	idn_dataset_free(te);
}

// check_avg_resume: 2 ranks stopped after the sync at step 3 of epoch 1
// and resumed from the training states exported there, each rank from
// its own (own) or both from rank 0's, end with the weights and epoch
// losses of the uninterrupted run, bit for bit when the states hold the
// same optimiser state as the run had (own, or no momentum). *diff gets
// the weights' relative difference, *moved how far the resumed steps moved
// the uninterrupted run's.
static void
check_avg_resume(double momentum, bool own, const idn_model_data *train,
    double *diff, double *moved)
{
	idn_model_train_opts o;
	avg_opts(&o);
	o.momentum = momentum;
	avg_seen whole[2] = {{.save_call = 1}, {0}};
	allreduce a = {0};
	avg_ranks(whole, &a, &o, train, NULL, NULL);
	assert_non_null(whole[0].state);
	assert_non_null(whole[1].state);
	size_t n;
	float *w = weights(whole[0].m, &n);

	void *states[2] = {whole[0].state, whole[own ? 1 : 0].state};
	size_t lens[2] = {whole[0].state_len, whole[own ? 1 : 0].state_len};
	o.first_step = 4;
	avg_seen again[2] = {{0}};
	allreduce b = {0};
	avg_ranks(again, &b, &o, train, states, lens);
	assert_int_equal(b.averages[0], 3); // the rest of epoch 1, epoch 2
	float *w0 = weights(again[0].m, &n), *w1 = weights(again[1].m, &n);
	assert_memory_equal(w0, w1, n * sizeof(float));
	*diff = max_diff(w0, w, n);
	*moved = max_diff(whole[0].state_w, w, n);
	if (own || momentum == 0.0) {
		assert_memory_equal(w0, w, n * sizeof(float));
		for (unsigned e = 0; e < 2; e++) {
			assert_true(again[0].epoch_loss[e] ==
			    whole[0].epoch_loss[e]);
		}
	}
	free(w);
	free(w0);
	free(w1);
	free(a.sum);
	free(b.sum);
	for (unsigned r = 0; r < 2; r++) {
		avg_seen_free(&whole[r]);
		avg_seen_free(&again[r]);
	}
}

void
test_dp_average_resume(void **st)
{
	IDN_SKIP_IF(!have_fashion(), "no Fashion-MNIST in " FASHION);
	core_buf probe;
	IDN_SKIP_IF(!models_file("lenet5.desc", &probe),
	    "IDUNNO_BUILD_DIR not set");
	core_buf_free(&probe);
	idn_dataset *te = fashion("t10k");
	idn_model_data train = {te->images + 2000 * IMG, te->labels + 2000,
	    200};
	double d, moved;
	check_avg_resume(0.9, true, &train, &d, &moved);
	check_avg_resume(0.0, false, &train, &d, &moved);
	// Momentum is per rank: rank 1 resumed with rank 0's takes another
	// path.
	check_avg_resume(0.9, false, &train, &d, &moved);
	print_message("# sync_every %d, momentum 0.9: both ranks resumed from "
	    "rank 0's state end %.3g (relative) from the uninterrupted run, "
	    "whose last 10 steps moved the weights by %.3g\n", AVG_K, d,
	    moved);
	idn_dataset_free(te);
}
