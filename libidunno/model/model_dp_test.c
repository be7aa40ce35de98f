// SPDX-License-Identifier: MIT
// model_dp_test.c: data-parallel training with a sync every step: ranks on
// threads summing through a hook, rank 0's control word, the options'
// checks, a start mid-epoch.
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model_test.h"

int
sum_hook(void *arg, int kind, float *buf, size_t n)
{
	rank_hook *h = arg;
	allreduce *a = h->ar;
	a->slot[h->rank] = buf;
	a->n[h->rank] = n;
	a->kind[h->rank] = kind;
	a->calls[h->rank]++;
	a->averages[h->rank] += kind == IDN_MODEL_SYNC_AVERAGE;
	a->shares[h->rank] = buf[n - 3];
	pthread_barrier_wait(&a->bar);
	if (h->rank == 0) {
		a->bad = a->bad || (kind != IDN_MODEL_SYNC_STEP &&
		    kind != IDN_MODEL_SYNC_AVERAGE);
		for (unsigned r = 1; r < a->world; r++) {
			a->bad = a->bad || a->n[r] != n || a->kind[r] != kind;
		}
		if (!a->bad && a->cap < n) {
			free(a->sum);
			a->sum = malloc(n * sizeof(float));
			a->cap = n;
		}
		for (size_t i = 0; i < n && !a->bad; i++) {
			float v = 0.0f;
			for (unsigned r = 0; r < a->world; r++) {
				v += a->slot[r][i];
			}
			a->sum[i] = v;
		}
		if (!a->bad && kind == IDN_MODEL_SYNC_STEP) {
			a->labels += a->sum[1];
		}
	}
	pthread_barrier_wait(&a->bar);
	bool bad = a->bad;
	if (!bad) {
		memcpy(buf, a->sum, n * sizeof(float));
	}
	pthread_barrier_wait(&a->bar);
	return bad ? IDN_EPROTO : 0;
}

// same_hook is the allreduce of a world of one: the buffer stays.
int
same_hook(void *arg, int kind, float *buf, size_t n)
{
	(*(unsigned *) arg)++;
	return 0;
}

void *
run_rank(void *arg)
{
	rank_run *r = arg;
	r->rv = idn_model_train(r->m, &r->o, &r->train, NULL);
	return NULL;
}

// train_ranks trains world ranks on threads, opts as given but for rank,
// world, the hook and what run[r] sets (arg, state); run[r].m must be
// loaded.
void
train_ranks(rank_run *run, unsigned world, allreduce *a,
    const idn_model_train_opts *o, const idn_model_data *train)
{
	pthread_t th[4];
	a->world = world;
	assert_int_equal(pthread_barrier_init(&a->bar, NULL, world), 0);
	for (unsigned r = 0; r < world; r++) {
		run[r].o = *o;
		run[r].o.rank = r;
		run[r].o.world = world;
		run[r].o.on_sync = sum_hook;
		run[r].hook = (rank_hook){a, r};
		run[r].o.sync_arg = &run[r].hook;
		if (run[r].arg != NULL) {
			run[r].o.step_arg = run[r].o.control_arg =
			    run[r].o.arg = run[r].arg;
		}
		if (run[r].state != NULL) {
			run[r].o.resume_state = run[r].state;
			run[r].o.resume_state_len = run[r].state_len;
		}
		run[r].train = *train;
		assert_int_equal(pthread_create(&th[r], NULL, run_rank,
		    &run[r]), 0);
	}
	for (unsigned r = 0; r < world; r++) {
		pthread_join(th[r], NULL);
	}
	pthread_barrier_destroy(&a->bar);
}

float *
weights(idn_model *m, size_t *n)
{
	float *w = NULL;
	IDN_PASS(model_weights(m, &w, n));
	return w;
}

// max_diff is max |a - b| over n floats, relative to max |b|.
double
max_diff(const float *a, const float *b, size_t n)
{
	double d = 0.0, big = 0.0;
	for (size_t i = 0; i < n; i++) {
		d = fmax(d, fabs((double) a[i] - b[i]));
		big = fmax(big, fabs((double) b[i]));
	}
	return d / big;
}

// Two ranks with global batch 32 (shares of 16) train to the same bits,
// and to the weights of one rank with the whole batch but for float
// rounding; one rank with a hook that sums nothing matches no hook.
void
test_dp_two_ranks(void **st)
{
	IDN_SKIP_IF(!have_fashion(), "no Fashion-MNIST in " FASHION);
	idn_model *one = load_torch("lenet5");
	IDN_SKIP_IF(one == NULL, "IDUNNO_BUILD_DIR not set");
	idn_dataset *te = fashion("t10k");
	idn_model_data train = {te->images + 2000 * IMG, te->labels + 2000,
	    250}; // 7 batches of 32 and one of 26 (13 + 13)
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.batch_size = 32;
	o.lr = 0.05;
	size_t n, n0;
	float *w0 = weights(one, &n0);
	IDN_PASS(idn_model_train(one, &o, &train, NULL));
	float *w1 = weights(one, &n);

	rank_run run[2] = {{.m = load_torch("lenet5")},
	    {.m = load_torch("lenet5")}};
	allreduce a = {0};
	train_ranks(run, 2, &a, &o, &train);
	IDN_PASS(run[0].rv);
	IDN_PASS(run[1].rv);
	assert_int_equal(a.calls[0], 8);
	assert_int_equal(a.calls[1], 8);
	assert_true(a.shares[0] == 13.0f && a.shares[1] == 13.0f);
	float *wa = weights(run[0].m, &n);
	float *wb = weights(run[1].m, &n);
	assert_memory_equal(wa, wb, n * sizeof(float));

	unsigned calls = 0;
	idn_model *hooked = load_torch("lenet5");
	o.on_sync = same_hook;
	o.sync_arg = &calls;
	IDN_PASS(idn_model_train(hooked, &o, &train, NULL));
	assert_int_equal(calls, 8);
	float *wh = weights(hooked, &n);
	double moved = max_diff(w0, w1, n), two = max_diff(wa, w1, n),
	    hook = max_diff(wh, w1, n);
	print_message("# lenet5 %zu weights, 8 steps moved them by %.3g: "
	    "2 ranks vs 1 differ by %.3g, 1 rank with a hook by %.3g "
	    "(relative)\n", n, moved, two, hook);
	assert_true(moved > 1e-3);
	assert_true(two < 1e-4);
	assert_true(hook < 1e-5);
	free(w0);
	free(w1);
	free(wa);
	free(wb);
	free(wh);
	free(a.sum);
	idn_model_close(one);
	idn_model_close(hooked);
	idn_model_close(run[0].m);
	idn_model_close(run[1].m);
	idn_dataset_free(te);
}

uint32_t
on_control(void *arg)
{
	control_seen *c = arg;
	c->wrong_rank = c->wrong_rank || c->rank != 0;
	unsigned i = c->controls++;
	return i == 2 ? 0x12345u : i == 7 ? 99u : 0u;
}

int
control_step(void *arg, const idn_model_step *s)
{
	control_seen *c = arg;
	if (c->n < 16) {
		c->epoch[c->n] = s->epoch;
		c->step[c->n] = s->step;
		c->control[c->n] = s->control;
		c->loss[c->n] = s->loss;
	}
	c->n++;
	return s->control == 99;
}

// Rank 0's control word reaches both ranks' on_step at the same step, and
// a stop it asks for stops both there. The sim syncs a tiny buffer.
void
test_dp_control(void **st)
{
	static uint8_t x[40 * IMG];
	uint8_t y[40];
	double labels = 0;
	for (int i = 0; i < 40; i++) {
		y[i] = (uint8_t) (i % 10);
		labels += y[i];
	}
	idn_model_data train = {.images = x, .labels = y, .n = 40};
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.epochs = 3;
	o.batch_size = 8; // 5 steps an epoch
	o.step_control = on_control;
	o.on_step = control_step;
	rank_run run[2] = {{.m = load_sim(sim_desc)}, {.m = load_sim(sim_desc)}};
	control_seen seen[2] = {{.rank = 0}, {.rank = 1}};
	allreduce a = {0};
	// The options are copied per rank; each gets its own arguments.
	pthread_t th[2];
	a.world = 2;
	assert_int_equal(pthread_barrier_init(&a.bar, NULL, 2), 0);
	for (unsigned r = 0; r < 2; r++) {
		run[r].o = o;
		run[r].o.rank = r;
		run[r].o.world = 2;
		run[r].o.on_sync = sum_hook;
		run[r].hook = (rank_hook){&a, r};
		run[r].o.sync_arg = &run[r].hook;
		run[r].o.control_arg = &seen[r];
		run[r].o.step_arg = &seen[r];
		run[r].train = train;
		assert_int_equal(pthread_create(&th[r], NULL, run_rank,
		    &run[r]), 0);
	}
	for (unsigned r = 0; r < 2; r++) {
		pthread_join(th[r], NULL);
	}
	pthread_barrier_destroy(&a.bar);
	IDN_FAIL(run[0].rv, IDN_ECLOSED);
	IDN_FAIL(run[1].rv, IDN_ECLOSED);
	assert_false(seen[0].wrong_rank || seen[1].wrong_rank);
	assert_int_equal(seen[0].controls, 8);
	assert_int_equal(seen[1].controls, 0);
	// Stopped after the 8th step (epoch 2, step 2) on both ranks.
	assert_int_equal(seen[0].n, 8);
	assert_int_equal(seen[1].n, 8);
	assert_memory_equal(seen[0].control, seen[1].control,
	    8 * sizeof(uint32_t));
	assert_memory_equal(seen[0].step, seen[1].step, 8 * sizeof(uint64_t));
	assert_memory_equal(seen[0].loss, seen[1].loss, 8 * sizeof(double));
	assert_int_equal(seen[0].control[2], 0x12345);
	assert_int_equal(seen[0].control[3], 0);
	assert_int_equal(seen[0].epoch[7], 2);
	assert_int_equal(seen[0].step[7], 2);
	assert_true(fabs(seen[0].loss[0] - log(10.0)) < 1e-6);
	// Each step's shares (4 + 4) made the global batch, and the epoch's
	// steps visited each label once: 5 steps of epoch 1, 3 of epoch 2.
	assert_int_equal(a.calls[0], 8);
	assert_true(a.shares[0] == 4.0f && a.shares[1] == 4.0f);
	assert_int_equal(a.n[0], 3 + IDN_MODEL_SYNC_TRAILER);
	assert_true(a.labels >= labels && a.labels < 2 * labels);
	free(a.sum);
	idn_model_close(run[0].m);
	idn_model_close(run[1].m);
}

static int
fail_hook(void *arg, int kind, float *buf, size_t n)
{
	return IDN_ENET;
}

// Data-parallel options are checked up front with a clear message; a hook's
// error, or a hook that does not sum, stops training.
void
test_dp_bad_opts(void **st)
{
	idn_model *m = load_sim(sim_desc);
	static uint8_t x[16 * IMG];
	uint8_t y[16] = {0};
	idn_model_data set = {.images = x, .labels = y, .n = 16};
	unsigned calls = 0;
	static const struct {
		uint32_t rank, world, batch;
		const char *why;
	} bad[] = {
		{0, 0, 8, "world"},
		{2, 2, 8, "rank"},
		{5, 4, 8, "rank"},
		{0, 4, 3, "batch_size"},
		{0, 4, 7, "batch_size"}, // shares of 1 image
	};
	for (size_t i = 0; i < CORE_ARRAY_LEN(bad); i++) {
		idn_model_train_opts o;
		idn_model_train_opts_init(&o);
		o.rank = bad[i].rank;
		o.world = bad[i].world;
		o.batch_size = bad[i].batch;
		o.on_sync = same_hook;
		o.sync_arg = &calls;
		IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
		if (strstr(idn_model_errmsg(m), bad[i].why) == NULL) {
			fail_msg("case %zu: '%s' does not say %s", i,
			    idn_model_errmsg(m), bad[i].why);
		}
	}
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.world = 2;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	assert_non_null(strstr(idn_model_errmsg(m), "on_sync"));
	o.on_sync = same_hook;
	o.sync_arg = &calls;
	o.first_step = 3; // 16 images in batches of 64: 0 steps... of 1
	o.batch_size = 8;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	assert_non_null(strstr(idn_model_errmsg(m), "first_step"));
	o.first_step = 0;
	o.resume_state = x;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	o.resume_state = NULL;
	assert_int_equal(calls, 0);
	// A rank alone with a hook that does not sum: its count is its share.
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EPROTO);
	assert_non_null(strstr(idn_model_errmsg(m), "out of step"));
	assert_int_equal(calls, 1);
	o.world = 1;
	o.on_sync = fail_hook;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_ENET);
	assert_non_null(strstr(idn_model_errmsg(m), "on_sync failed"));
	idn_model_close(m);
}

// first_step starts mid-epoch with the same order; first_step == steps
// only finishes the epoch (evaluation, on_epoch).
void
test_train_first_step(void **st)
{
	idn_model *m = load_sim(sim_desc);
	static uint8_t x[40 * IMG];
	uint8_t y[40] = {0};
	idn_model_data set = {.images = x, .labels = y, .n = 40};
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.epochs = 2;
	o.batch_size = 8;
	o.first_step = 3;
	o.on_step = control_step;
	o.step_control = on_control;
	control_seen c = {0};
	o.step_arg = o.control_arg = &c;
	o.on_progress = on_batch;
	progress_seen p = {.ordered = true, .last = 3};
	o.progress_arg = &p;
	IDN_PASS(idn_model_train(m, &o, &set, NULL));
	assert_true(p.ordered);
	assert_int_equal(p.last, 10);
	assert_int_equal(c.n, 7);
	assert_true(c.epoch[0] == 1 && c.step[0] == 3 && c.step[1] == 4);
	assert_true(c.epoch[2] == 2 && c.step[2] == 0 && c.step[6] == 4);
	// World 1 without a hook: rank 0's control word as is.
	assert_int_equal(c.control[2], 0x12345);
	o.first_step = 5;
	o.on_epoch = on_sched;
	sched_seen s = {0};
	o.arg = &s;
	memset(&c, 0, sizeof(c));
	o.on_progress = NULL;
	IDN_PASS(idn_model_train(m, &o, &set, NULL));
	assert_int_equal(s.calls, 2);
	assert_int_equal(c.n, 5);
	o.first_step = 6;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	idn_model_close(m);
}
