// SPDX-License-Identifier: MIT
// model_train_test.c: training one model: lr schedules, progress, early
// stop, LeNet-5 with SGD and Adam, export and import of weights, resuming
// from weights and from a training state.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model_test.h"

int
on_sched(void *arg, const idn_model_epoch *e)
{
	sched_seen *s = arg;
	if (s->calls < 4) {
		s->lr[s->calls] = e->lr;
		s->acc[s->calls] = e->test_accuracy;
	}
	s->calls++;
	return s->calls == s->stop_at;
}

void
on_batch(void *arg, uint64_t done, uint64_t total)
{
	progress_seen *p = arg;
	p->ordered = p->ordered && done == p->last + 1 &&
	    (p->calls == 0 || total == p->total);
	p->calls++;
	p->last = done;
	p->total = total;
}

// on_progress counts the run's batches: 11 images in batches of 4 are 3
// batches an epoch, 2 of 5 when the last batch of 1 is dropped; a resumed
// run starts at its first epoch's share.
void
test_train_progress(void **st)
{
	idn_model *m = load_sim(sim_desc);
	static uint8_t x[11 * IMG];
	uint8_t y[11] = {0};
	idn_model_data set = {.images = x, .labels = y, .n = 11};
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.epochs = 3;
	o.batch_size = 4;
	o.on_progress = on_batch;
	progress_seen p = {.ordered = true};
	o.progress_arg = &p;
	IDN_PASS(idn_model_train(m, &o, &set, NULL));
	assert_true(p.ordered);
	assert_int_equal(p.calls, 9);
	assert_int_equal(p.last, 9);
	assert_int_equal(p.total, 9);
	set.n = 9; // 4 + 4 + (1 dropped)
	o.first_epoch = 2;
	p = (progress_seen){.ordered = true, .last = 2};
	IDN_PASS(idn_model_train(m, &o, &set, NULL));
	assert_true(p.ordered);
	assert_int_equal(p.calls, 4);
	assert_int_equal(p.last, 6);
	assert_int_equal(p.total, 6);
	idn_model_close(m);
}

// The lr schedules, and a callback that stops training early.
void
test_train_schedule(void **st)
{
	idn_model *m = load_sim(sim_desc);
	static uint8_t x[6 * IMG];
	uint8_t y[6] = {1, 2, 3, 4, 5, 6};
	idn_model_data set = {.images = x, .labels = y, .n = 6};
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.epochs = 4;
	o.schedule = IDN_MODEL_LR_STEP;
	o.lr_step = 2;
	o.on_epoch = on_sched;
	sched_seen s = {0};
	o.arg = &s;
	IDN_PASS(idn_model_train(m, &o, &set, NULL));
	assert_int_equal(s.calls, 4);
	assert_true(s.lr[0] == 0.01 && s.lr[1] == 0.01);
	assert_true(s.lr[2] == 0.005 && s.lr[3] == 0.005);
	assert_true(s.acc[0] == -1.0); // no test set
	o.schedule = IDN_MODEL_LR_COSINE;
	memset(&s, 0, sizeof(s));
	s.stop_at = 3;
	IDN_PASS(idn_model_train(m, &o, &set, &set));
	assert_int_equal(s.calls, 3);
	assert_true(fabs(s.lr[0] - 0.01) < 1e-12);
	assert_true(fabs(s.lr[2] - 0.005) < 1e-12);
	assert_true(s.acc[0] >= 0.0 && s.acc[0] <= 1.0);

	// Resuming at epoch 3 runs epochs 3..4 with their own lr.
	o.schedule = IDN_MODEL_LR_STEP;
	o.first_epoch = 3;
	memset(&s, 0, sizeof(s));
	IDN_PASS(idn_model_train(m, &o, &set, NULL));
	assert_int_equal(s.calls, 2);
	assert_true(s.lr[0] == 0.005 && s.lr[1] == 0.005);
	o.first_epoch = 0;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	o.first_epoch = 5;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	// Options not set up by _init (size 0) or from a newer header.
	o.first_epoch = 1;
	o.size = 0;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	o.size = sizeof(o) + 8;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	// A batch of one would train nothing (BatchNorm): refused up front.
	o.size = sizeof(o);
	o.batch_size = 1;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	idn_model_close(m);
}

// same_predictions: the same class for every image, and logits equal but
// for float rounding (the same weights, the same kernels).
static void
same_predictions(const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t ca, cb;
		float sa, sb;
		model_softmax_top(a + i * 10, 10, &ca, &sa);
		model_softmax_top(b + i * 10, 10, &cb, &sb);
		assert_int_equal(ca, cb);
		for (int k = 0; k < 10; k++) {
			float d = a[i * 10 + k] - b[i * 10 + k];
			assert_true(fabsf(d) <= 1e-5f);
		}
	}
}

typedef struct {
	unsigned epochs;
	double loss[4];
	double acc[4];
} epochs_seen;

static int
on_epoch(void *arg, const idn_model_epoch *e)
{
	epochs_seen *s = arg;
	if (e->epoch <= 4) {
		s->loss[e->epoch - 1] = e->train_loss;
		s->acc[e->epoch - 1] = e->test_accuracy;
	}
	s->epochs++;
	return 0;
}

// Two short epochs of LeNet on 10,000 images: the loss falls and the test
// accuracy is far above chance (10%); exported weights predict the same.
void
test_torch_train_lenet(void **st)
{
	IDN_SKIP_IF(!have_fashion(), "no Fashion-MNIST in " FASHION);
	idn_model *m = load_torch("lenet5");
	IDN_SKIP_IF(m == NULL, "IDUNNO_BUILD_DIR not set");
	idn_dataset *tr = fashion("train"), *te = fashion("t10k");
	assert_int_equal(tr->n, 60000);
	assert_int_equal(te->n, 10000);
	idn_model_data train = {tr->images, tr->labels, 10000};
	idn_model_data test = {te->images, te->labels, 1000};

	double acc0, loss0, acc1, loss1;
	IDN_PASS(idn_model_evaluate(m, &test, &acc0, &loss0));
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.epochs = 2;
	epochs_seen seen = {0};
	o.on_epoch = on_epoch;
	o.arg = &seen;
	int rv = idn_model_train(m, &o, &train, &test);
	if (rv != IDN_OK) {
		fail_msg("train: %s: %s", idn_strerror(rv),
		    idn_model_errmsg(m));
	}
	assert_int_equal(seen.epochs, 2);
	IDN_PASS(idn_model_evaluate(m, &test, &acc1, &loss1));
	print_message("# lenet5 10000 images: loss %.3f -> %.3f, %.3f, "
	    "accuracy %.3f -> %.3f\n", loss0, seen.loss[0], seen.loss[1],
	    acc0, acc1);
	assert_true(seen.loss[1] < seen.loss[0]);
	assert_true(loss1 < loss0 - 0.5);
	assert_true(acc1 > 0.6);
	assert_true(fabs(seen.acc[1] - acc1) < 1e-9);

	// Export, then import into a fresh copy, and load the bytes as a
	// model: all three give the same logits.
	void *w = NULL;
	size_t wlen = 0;
	IDN_PASS(idn_model_export(m, &w, &wlen));
	idn_model *fresh = load_torch("lenet5");
	IDN_PASS(idn_model_import(fresh, w, wlen));
	core_buf desc;
	assert_true(models_file("lenet5.desc", &desc));
	idn_model *again = NULL;
	IDN_PASS(idn_model_load((char *) desc.data, desc.len, w, wlen, NULL,
	    &again));
	size_t n = 200;
	float *a = calloc(n * 10, sizeof(float));
	float *b = calloc(n * 10, sizeof(float));
	float *c = calloc(n * 10, sizeof(float));
	IDN_PASS(idn_model_logits(m, te->images, n, n * IMG, a));
	IDN_PASS(idn_model_logits(fresh, te->images, n, n * IMG, b));
	IDN_PASS(idn_model_logits(again, te->images, n, n * IMG, c));
	same_predictions(a, b, n);
	same_predictions(a, c, n);

	// Weights of another architecture are refused; the model is intact.
	core_buf rn;
	assert_true(models_file("resnet18.pt", &rn));
	IDN_FAIL(idn_model_import(fresh, rn.data, rn.len), IDN_EMODEL);
	assert_non_null(strstr(idn_model_errmsg(fresh), "do not match"));
	IDN_FAIL(idn_model_import(fresh, "garbage", 7), IDN_EMODEL);
	IDN_PASS(idn_model_logits(fresh, te->images, n, n * IMG, b));
	same_predictions(a, b, n);

	// Training checks its options and labels.
	o.lr = -1;
	IDN_FAIL(idn_model_train(m, &o, &train, NULL), IDN_EINVAL);
	o.lr = 0.01;
	o.optimizer = 7;
	IDN_FAIL(idn_model_train(m, &o, &train, NULL), IDN_EINVAL);

	free(a);
	free(b);
	free(c);
	idn_free(w);
	core_buf_free(&desc);
	core_buf_free(&rn);
	idn_model_close(again);
	idn_model_close(fresh);
	idn_model_close(m);
	idn_dataset_free(tr);
	idn_dataset_free(te);
}

static int
stop_now(void *arg, const idn_model_epoch *e)
{
	return 1;
}

// A run stopped after epoch 1 and resumed at epoch 2 from its exported
// weights ends with the weights of the uninterrupted run: each epoch's
// shuffle and lr depend only on the options and the epoch. Plain SGD, as
// momentum is optimiser state that a resume starts afresh.
void
test_torch_resume(void **st)
{
	IDN_SKIP_IF(!have_fashion(), "no Fashion-MNIST in " FASHION);
	idn_model *whole = load_torch("lenet5");
	IDN_SKIP_IF(whole == NULL, "IDUNNO_BUILD_DIR not set");
	idn_dataset *te = fashion("t10k");
	idn_model_data train = {te->images + 2000 * IMG, te->labels + 2000,
	    1000};
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.epochs = 2;
	o.momentum = 0.0;
	o.schedule = IDN_MODEL_LR_STEP;
	IDN_PASS(idn_model_train(whole, &o, &train, NULL));

	idn_model *first = load_torch("lenet5");
	o.on_epoch = stop_now;
	IDN_PASS(idn_model_train(first, &o, &train, NULL));
	void *w = NULL;
	size_t wlen = 0;
	IDN_PASS(idn_model_export(first, &w, &wlen));
	idn_model *resumed = load_torch("lenet5");
	IDN_PASS(idn_model_import(resumed, w, wlen));
	o.on_epoch = NULL;
	o.first_epoch = 2;
	IDN_PASS(idn_model_train(resumed, &o, &train, NULL));

	size_t n = 100;
	float *a = calloc(n * 10, sizeof(float));
	float *b = calloc(n * 10, sizeof(float));
	float *c = calloc(n * 10, sizeof(float));
	IDN_PASS(idn_model_logits(whole, te->images, n, n * IMG, a));
	IDN_PASS(idn_model_logits(resumed, te->images, n, n * IMG, b));
	IDN_PASS(idn_model_logits(first, te->images, n, n * IMG, c));
	double diff = 0.0, moved = 0.0;
	for (size_t i = 0; i < n * 10; i++) {
		diff = fmax(diff, fabs(a[i] - b[i]));
		moved = fmax(moved, fabs(a[i] - c[i]));
	}
	print_message("# resumed vs whole: max logit difference %g (epoch 2 "
	    "moved them by %g)\n", diff, moved);
	assert_true(diff < 1e-4);
	assert_true(moved > 1e-3);
	free(a);
	free(b);
	free(c);
	idn_free(w);
	idn_model_close(whole);
	idn_model_close(first);
	idn_model_close(resumed);
	idn_dataset_free(te);
}

// Adam with a step schedule also trains (one short epoch).
void
test_torch_train_adam(void **st)
{
	IDN_SKIP_IF(!have_fashion(), "no Fashion-MNIST in " FASHION);
	idn_model *m = load_torch("lenet5");
	IDN_SKIP_IF(m == NULL, "IDUNNO_BUILD_DIR not set");
	idn_dataset *te = fashion("t10k");
	// Train on test images 2000.. and evaluate on 0..999: disjoint.
	idn_model_data train = {te->images + 2000 * IMG, te->labels + 2000,
	    3000};
	idn_model_data test = {te->images, te->labels, 1000};
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.optimizer = IDN_MODEL_ADAM;
	o.lr = 0.002;
	o.schedule = IDN_MODEL_LR_STEP;
	double acc;
	IDN_PASS(idn_model_train(m, &o, &train, NULL));
	IDN_PASS(idn_model_evaluate(m, &test, &acc, NULL));
	print_message("# lenet5 adam 3000 images: accuracy %.3f\n", acc);
	assert_true(acc > 0.5);
	idn_model_close(m);
	idn_dataset_free(te);
}

// What a run saw, and where it stops to save its training state.
typedef struct {
	idn_model *m;
	uint32_t stop_epoch;   // stop after this step (0: never)
	uint64_t stop_step;
	uint32_t save_epoch;   // save in on_epoch after this epoch
	void *state;
	size_t state_len;
	double loss[4];
} resume_seen;

static int
resume_on_step(void *arg, const idn_model_step *s)
{
	resume_seen *r = arg;
	if (s->epoch != r->stop_epoch || s->step != r->stop_step) {
		return 0;
	}
	return idn_model_export_train_state(r->m, &r->state,
	    &r->state_len) == IDN_OK ? 1 : 2;
}

static int
resume_on_epoch(void *arg, const idn_model_epoch *e)
{
	resume_seen *r = arg;
	r->loss[e->epoch - 1] = e->train_loss;
	if (e->epoch == r->save_epoch) {
		IDN_PASS(idn_model_export_train_state(r->m, &r->state,
		    &r->state_len));
	}
	return 0;
}

// check_resume: a run stopped after step 3 of epoch 1 and resumed from
// its training state at step 4, and one resumed at epoch 2 from the state
// saved after epoch 1, end with the uninterrupted run's exact weights and
// epoch losses.
static void
check_resume(int optimizer, const idn_model_data *train)
{
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.epochs = 2;
	o.batch_size = 32;
	o.optimizer = optimizer;
	o.lr = optimizer == IDN_MODEL_ADAM ? 0.002 : 0.05;
	o.on_step = resume_on_step;
	o.on_epoch = resume_on_epoch;
	resume_seen whole = {.m = load_torch("lenet5"), .save_epoch = 1};
	o.step_arg = o.arg = &whole;
	IDN_PASS(idn_model_train(whole.m, &o, train, NULL));
	size_t n;
	float *w = weights(whole.m, &n);

	resume_seen cut = {.m = load_torch("lenet5"), .stop_epoch = 1,
	    .stop_step = 3};
	o.step_arg = o.arg = &cut;
	IDN_FAIL(idn_model_train(cut.m, &o, train, NULL), IDN_ECLOSED);
	assert_non_null(strstr(idn_model_errmsg(cut.m), "on_step"));
	assert_non_null(cut.state);

	struct {
		void *state;
		size_t len;
		uint32_t epoch;
		uint64_t step;
	} from[2] = {{cut.state, cut.state_len, 1, 4},
	    {whole.state, whole.state_len, 2, 0}};
	for (int i = 0; i < 2; i++) {
		resume_seen again = {.m = load_torch("lenet5")};
		o.step_arg = o.arg = &again;
		o.first_epoch = from[i].epoch;
		o.first_step = from[i].step;
		o.resume_state = from[i].state;
		o.resume_state_len = from[i].len;
		IDN_PASS(idn_model_train(again.m, &o, train, NULL));
		float *w2 = weights(again.m, &n);
		assert_memory_equal(w, w2, n * sizeof(float));
		for (uint32_t e = from[i].epoch; e <= 2; e++) {
			assert_true(again.loss[e - 1] == whole.loss[e - 1]);
		}
		free(w2);
		idn_model_close(again.m);
	}
	// The state fits this optimiser only.
	o.optimizer = optimizer == IDN_MODEL_ADAM ? IDN_MODEL_SGD :
	    IDN_MODEL_ADAM;
	IDN_FAIL(idn_model_train(cut.m, &o, train, NULL), IDN_EMODEL);
	assert_non_null(strstr(idn_model_errmsg(cut.m), "optimiser"));
	free(w);
	idn_free(whole.state);
	idn_free(cut.state);
	idn_model_close(whole.m);
	idn_model_close(cut.m);
}

void
test_dp_resume_state(void **st)
{
	IDN_SKIP_IF(!have_fashion(), "no Fashion-MNIST in " FASHION);
	idn_model *m = load_torch("lenet5");
	IDN_SKIP_IF(m == NULL, "IDUNNO_BUILD_DIR not set");
	idn_dataset *te = fashion("t10k");
	idn_model_data train = {te->images + 2000 * IMG, te->labels + 2000,
	    200}; // 6 batches of 32 and one of 8
	check_resume(IDN_MODEL_SGD, &train);
	check_resume(IDN_MODEL_ADAM, &train);

	// Not a training state; none outside training.
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.resume_state = "IDNTRST1 and then nothing";
	o.resume_state_len = 25;
	IDN_FAIL(idn_model_train(m, &o, &train, NULL), IDN_EMODEL);
	void *p;
	size_t len;
	IDN_FAIL(idn_model_export_train_state(m, &p, &len), IDN_EINVAL);
	idn_model_close(m);
	idn_dataset_free(te);
}
