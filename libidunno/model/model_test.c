// SPDX-License-Identifier: MIT
// model_test.c: descriptor, sim and torch backends, training, weights, IDX
// files.
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"

#include "core/core.h"
#include "model/model.h"

#define FASHION "/usr/share/datasets/fashion-mnist"
#define IMG 784

static const char sim_desc[] = "backend = sim\ninput = 1x28x28\n"
    "classes = 10\nservice_ms = 0\n";


static char tmpdir[64];

static void
cleanup_tmpdir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0) {
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
}

static const char *
tmp_path(const char *name)
{
	static char path[4][128];
	static int next;
	if (tmpdir[0] == '\0') {
		strcpy(tmpdir, "/tmp/idn_model_test.XXXXXX");
		assert_non_null(mkdtemp(tmpdir));
		atexit(cleanup_tmpdir);
	}
	char *p = path[next++ % 4];
	snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
	return p;
}

static uint64_t
now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t) t.tv_sec * 1000000 + (uint64_t) t.tv_nsec / 1000;
}

// models_file reads build/models/NAME, or returns false (test skips) when
// the runner did not say where the build is.
static bool
models_file(const char *name, core_buf *out)
{
	const char *dir = getenv("IDUNNO_BUILD_DIR");
	if (dir == NULL || dir[0] == '\0') {
		return false;
	}
	char *path = core_asprintf("%s/models/%s", dir, name);
	assert_non_null(path);
	memset(out, 0, sizeof(*out));
	int rv = core_file_read(path, (size_t) 1 << 30, out);
	if (rv != IDN_OK) {
		fail_msg("%s: %s (run ninja to export the models)", path,
		    idn_strerror(rv));
	}
	free(path);
	return true;
}

// load_torch loads build/models/NAME.pt with NAME.desc.
static idn_model *
load_torch(const char *name)
{
	char f[64];
	core_buf desc, pt;
	snprintf(f, sizeof(f), "%s.desc", name);
	if (!models_file(f, &desc)) {
		return NULL;
	}
	snprintf(f, sizeof(f), "%s.pt", name);
	assert_true(models_file(f, &pt));
	idn_model *m = NULL;
	char *err = NULL;
	int rv = idn_model_load((char *) desc.data, desc.len, pt.data, pt.len,
	    &err, &m);
	if (rv != IDN_OK) {
		fail_msg("load %s: %s: %s", name, idn_strerror(rv), err);
	}
	core_buf_free(&desc);
	core_buf_free(&pt);
	return m;
}

static idn_model *
load_sim(const char *desc)
{
	idn_model *m = NULL;
	char *err = NULL;
	int rv = idn_model_load(desc, strlen(desc), NULL, 0, &err, &m);
	if (rv != IDN_OK) {
		fail_msg("load sim: %s: %s", idn_strerror(rv), err);
	}
	return m;
}

static void
test_desc_parse(void **st)
{
	static const char text[] = "# comment\n\n name = lenet \n"
	    "backend=torch\r\ninput = 3x32x16\nclasses = 3\n"
	    "class_names = a b, c ,d\nmean = 0.5, 0.25, 0.125\nstd = 2";
	model_desc d;
	char *err = NULL;
	IDN_PASS(model_desc_parse(text, strlen(text), &d, &err));
	assert_string_equal(d.name, "lenet");
	assert_string_equal(d.backend, "torch");
	assert_int_equal(d.channels, 3);
	assert_int_equal(d.height, 32);
	assert_int_equal(d.width, 16);
	assert_int_equal(d.classes, 3);
	assert_string_equal(d.class_names[0], "a b");
	assert_string_equal(d.class_names[1], "c");
	assert_string_equal(d.class_names[2], "d");
	assert_true(d.mean[1] == 0.25f && d.mean[2] == 0.125f);
	assert_true(d.std[0] == 2.0f && d.std[2] == 2.0f);
	model_desc_free(&d);

	// Defaults: numbered class names, mean 0, std 1.
	IDN_PASS(model_desc_parse(sim_desc, strlen(sim_desc), &d, &err));
	assert_string_equal(d.class_names[9], "9");
	assert_string_equal(d.name, "");
	assert_true(d.mean[0] == 0.0f && d.std[0] == 1.0f);
	model_desc_free(&d);
}

static void
test_desc_bad(void **st)
{
	static const char *const bad[] = {
		"",
		"input = 1x28x28\nclasses = 10\n",
		"backend = sim\nclasses = 10\n",
		"backend = sim\ninput = 1x28x28\n",
		"backend = tensorflow\ninput = 1x28x28\nclasses = 10\n",
		"backend = sim\ninput = 1x28\nclasses = 10\n",
		"backend = sim\ninput = 0x28x28\nclasses = 10\n",
		"backend = sim\ninput = 5x28x28\nclasses = 10\n",
		"backend = sim\ninput = 1x28x28x\nclasses = 10\n",
		"backend = sim\ninput = 1x-28x28\nclasses = 10\n",
		"backend = sim\ninput = 1x28x28\nclasses = 0\n",
		"backend = sim\ninput = 1x28x28\nclasses = ten\n",
		"backend = sim\ninput = 1x28x28\nclasses = 10 \nfoo = 1\n",
		"backend = sim\ninput = 1x28x28\nclasses = 10\nclasses = 10\n",
		"backend = sim\ninput = 1x28x28\nclasses = 10\njunk\n",
		"backend = sim\ninput = 1x28x28\nclasses = 2\n"
		    "class_names = a, b, c\n",
		"backend = sim\ninput = 1x28x28\nclasses = 2\n"
		    "class_names = a,\n",
		"backend = sim\ninput = 1x28x28\nclasses = 2\nstd = 0\n",
		"backend = sim\ninput = 1x28x28\nclasses = 2\nstd = nan\n",
		"backend = sim\ninput = 1x28x28\nclasses = 2\nmean = 1, 2\n",
		"backend = sim\ninput = 1x28x28\nclasses = 2\nmean = 1,\n",
		"backend = sim\ninput = 1x28x28\nclasses = 2\n"
		    "service_ms = -1\n",
		"backend = torch\ninput = 1x28x28\nclasses = 2\n"
		    "service_ms = 5\n",
		"backend = torch\ninput = 1x28x28\nclasses = 2\n"
		    "load_ms = 5\n",
		"backend = sim\ninput = 1x28x28\nclasses = 2\n"
		    "load_ms = 600001\n",
		"backend = sim\ninput = 4096x4096x4096\nclasses = 2\n",
	};
	for (size_t i = 0; i < CORE_ARRAY_LEN(bad); i++) {
		idn_model *m = NULL;
		char *err = NULL;
		int rv = idn_model_load(bad[i], strlen(bad[i]), NULL, 0, &err,
		    &m);
		if (rv != IDN_EINVAL) {
			fail_msg("descriptor %zu: got %s", i, idn_strerror(rv));
		}
		assert_null(m);
		assert_non_null(err);
		assert_true(err[0] != '\0');
		idn_free(err);
	}
	// A NUL byte inside the text.
	static const char nul[] = "backend = sim\0\ninput = 1x28x28\n";
	idn_model *m = NULL;
	IDN_FAIL(idn_model_load(nul, sizeof(nul) - 1, NULL, 0, NULL, &m),
	    IDN_EINVAL);
	IDN_FAIL(idn_model_load(NULL, 0, NULL, 0, NULL, &m), IDN_EINVAL);
	IDN_FAIL(idn_model_load(sim_desc, strlen(sim_desc), NULL, 0, NULL,
	    NULL), IDN_EINVAL);
	assert_null(m);
	idn_model_close(NULL);
	assert_string_equal(idn_model_errmsg(NULL), "");
}

static void
fill_random(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t) (seed >> 16);
	}
}

static void
test_sim_deterministic(void **st)
{
	enum { N = 64 };
	static uint8_t x[N * IMG];
	fill_random(x, sizeof(x), 7);
	idn_model *a = load_sim(sim_desc);
	idn_model *b = load_sim(sim_desc);
	uint32_t ca[N], cb[N];
	float sa[N], sb[N];
	IDN_PASS(idn_model_infer(a, x, N, sizeof(x), ca, sa));
	IDN_PASS(idn_model_infer(b, x, N, sizeof(x), cb, sb));
	assert_memory_equal(ca, cb, sizeof(ca));
	assert_memory_equal(sa, sb, sizeof(sa));
	unsigned hist[10] = {0};
	for (int i = 0; i < N; i++) {
		// Anyone can check an answer from the query alone.
		float l[10];
		uint32_t c;
		float s;
		model_sim_logits(x + i * IMG, IMG, 10, l);
		model_softmax_top(l, 10, &c, &s);
		assert_int_equal(c, ca[i]);
		assert_true(s == sa[i]);
		assert_true(sa[i] >= 0.499f && sa[i] < 1.0f);
		hist[ca[i]]++;
	}
	// A single answer for each query, not one class for all.
	unsigned used = 0;
	for (int c = 0; c < 10; c++) {
		used += hist[c] > 0;
	}
	assert_true(used >= 5);
	// The same query alone gets the same answer as in the batch.
	IDN_PASS(idn_model_infer(a, x + 5 * IMG, 1, IMG, cb, sb));
	assert_int_equal(cb[0], ca[5]);
	assert_true(sb[0] == sa[5]);

	idn_model_info info;
	IDN_PASS(idn_model_describe(a, &info));
	assert_string_equal(info.backend, "sim");
	assert_int_equal(info.classes, 10);
	assert_int_equal(info.width, 28);
	idn_model_close(a);
	idn_model_close(b);
}

// The sim sleeps; on a loaded 2-core machine it may oversleep, never
// undersleep: check elapsed >= configured and < configured + 1.5 s.
static void
test_sim_service_time(void **st)
{
	static const char desc[] = "backend = sim\ninput = 1x28x28\n"
	    "classes = 10\nservice_ms = 25\nservice_per_query_us = 1000\n";
	static uint8_t x[8 * IMG];
	uint32_t c[8];
	float s[8];
	idn_model *m = load_sim(desc);
	for (int i = 0; i < 3; i++) {
		uint64_t t0 = now_us();
		IDN_PASS(idn_model_infer(m, x, 8, sizeof(x), c, s));
		uint64_t us = now_us() - t0;
		if (us < 33000 || us > 33000 + 1500000) {
			fail_msg("batch of 8 took %llu us, configured 33000",
			    (unsigned long long) us);
		}
	}
	idn_model_close(m);
}

static void
test_sim_weights(void **st)
{
	idn_model *m = load_sim(sim_desc);
	void *w = NULL;
	size_t len = 0;
	IDN_PASS(idn_model_export(m, &w, &len));
	IDN_PASS(idn_model_import(m, w, len));
	IDN_FAIL(idn_model_import(m, w, len - 1), IDN_EMODEL);
	assert_true(strlen(idn_model_errmsg(m)) > 0);
	IDN_FAIL(idn_model_import(m, NULL, 0), IDN_EINVAL);
	idn_free(w);

	// The sim "trains" (sleeps per batch) and checks its arguments.
	static uint8_t x[10 * IMG];
	uint8_t y[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
	idn_model_data set = {.images = x, .labels = y, .n = 10};
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.batch_size = 4;
	IDN_PASS(idn_model_train(m, &o, &set, &set));
	y[3] = 10;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	y[3] = 3;
	o.epochs = 0;
	IDN_FAIL(idn_model_train(m, &o, &set, NULL), IDN_EINVAL);
	assert_true(strlen(idn_model_errmsg(m)) > 0);
	idn_model_close(m);
}

typedef struct {
	unsigned calls;
	unsigned stop_at;
	double lr[4];
	double acc[4];
} sched_seen;

static int
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

typedef struct {
	unsigned calls;
	uint64_t last, total;
	bool ordered; // each report one batch after the previous
} progress_seen;

static void
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
static void
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
static void
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

static void
test_bad_batches(void **st)
{
	idn_model *m = load_sim(sim_desc);
	static uint8_t x[2 * IMG];
	uint32_t c[2];
	float s[2];
	IDN_FAIL(idn_model_infer(m, x, 0, 0, c, s), IDN_EINVAL);
	assert_true(strlen(idn_model_errmsg(m)) > 0);
	IDN_FAIL(idn_model_infer(m, NULL, 1, IMG, c, s), IDN_EINVAL);
	IDN_FAIL(idn_model_infer(m, x, 2, IMG, c, s), IDN_EINVAL);
	IDN_FAIL(idn_model_infer(m, x, 1, IMG + 1, c, s), IDN_EINVAL);
	IDN_FAIL(idn_model_infer(m, x, 1, IMG, NULL, s), IDN_EINVAL);
	IDN_FAIL(idn_model_infer(NULL, x, 1, IMG, c, s), IDN_EINVAL);
	IDN_FAIL(idn_model_infer(m, x, SIZE_MAX / 2, IMG, c, s), IDN_EINVAL);
	IDN_PASS(idn_model_infer(m, x, 2, sizeof(x), c, s));
	assert_string_equal(idn_model_errmsg(m), "");
	idn_model_close(m);
}

// The shim's logits must equal PyTorch's for the same model and inputs.
static void
check_reference(const char *name)
{
	idn_model *m = load_torch(name);
	IDN_SKIP_IF(m == NULL, "IDUNNO_BUILD_DIR not set");
	char f[64];
	core_buf in, out;
	snprintf(f, sizeof(f), "%s.ref.in", name);
	assert_true(models_file(f, &in));
	snprintf(f, sizeof(f), "%s.ref.out", name);
	assert_true(models_file(f, &out));
	size_t n = in.len / IMG;
	assert_int_equal(in.len, n * IMG);
	assert_int_equal(out.len, n * 10 * sizeof(float));
	float *got = calloc(n * 10, sizeof(float));
	float *want = calloc(n * 10, sizeof(float));
	memcpy(want, out.data, out.len); // little-endian, as is x86
	IDN_PASS(idn_model_logits(m, in.data, n, in.len, got));
	double worst = 0.0;
	for (size_t i = 0; i < n * 10; i++) {
		worst = fmax(worst, fabs((double) got[i] - want[i]));
	}
	if (!(worst <= 1e-4)) {
		fail_msg("%s: max |C - python| = %g", name, worst);
	}
	// Batches of one give the same answers as the whole batch.
	uint32_t c[16], c1;
	float s[16], s1;
	IDN_PASS(idn_model_infer(m, in.data, n, in.len, c, s));
	for (size_t i = 0; i < n; i++) {
		IDN_PASS(idn_model_infer(m, in.data + i * IMG, 1, IMG, &c1,
		    &s1));
		assert_int_equal(c1, c[i]);
		assert_true(fabsf(s1 - s[i]) < 1e-4f);
	}
	free(got);
	free(want);
	core_buf_free(&in);
	core_buf_free(&out);
	idn_model_close(m);
}

static void
test_torch_lenet_reference(void **st)
{
	check_reference("lenet5");
}

static void
test_torch_resnet_reference(void **st)
{
	check_reference("resnet18");
}

// AlexNet (228 MB) is exported on request only: checked when present.
static void
test_torch_alexnet_reference(void **st)
{
	const char *dir = getenv("IDUNNO_BUILD_DIR");
	char *path = core_asprintf("%s/models/alexnet.pt", dir ? dir : ".");
	bool have = dir != NULL && dir[0] && access(path, R_OK) == 0;
	free(path);
	IDN_SKIP_IF(!have, "alexnet.pt not exported (ninja models/alexnet.pt)");
	check_reference("alexnet");
}

static void
test_torch_bad_models(void **st)
{
	core_buf desc, pt;
	IDN_SKIP_IF(!models_file("lenet5.desc", &desc),
	    "IDUNNO_BUILD_DIR not set");
	assert_true(models_file("lenet5.pt", &pt));
	idn_model *m = NULL;
	char *err = NULL;
	uint8_t junk[4096];
	fill_random(junk, sizeof(junk), 3);
	IDN_FAIL(idn_model_load((char *) desc.data, desc.len, junk,
	    sizeof(junk), &err, &m), IDN_EMODEL);
	assert_non_null(err);
	assert_true(strlen(err) > 0);
	idn_free(err);
	// Truncated TorchScript.
	IDN_FAIL(idn_model_load((char *) desc.data, desc.len, pt.data,
	    pt.len / 2, &err, &m), IDN_EMODEL);
	idn_free(err);
	IDN_FAIL(idn_model_load((char *) desc.data, desc.len, NULL, 0, &err,
	    &m), IDN_EINVAL);
	idn_free(err);

	// Shapes the model cannot take: LeNet's classifier wants 28x28, and
	// it has 10 outputs.
	static const char *const wrong[] = {
		"backend = torch\ninput = 1x32x32\nclasses = 10\n",
		"backend = torch\ninput = 3x28x28\nclasses = 10\n",
		"backend = torch\ninput = 1x28x28\nclasses = 5\n",
	};
	for (size_t i = 0; i < CORE_ARRAY_LEN(wrong); i++) {
		err = NULL;
		IDN_FAIL(idn_model_load(wrong[i], strlen(wrong[i]), pt.data,
		    pt.len, &err, &m), IDN_EMODEL);
		assert_non_null(err);
		assert_non_null(strstr(err, "does not fit"));
		idn_free(err);
	}
	assert_null(m);
	core_buf_free(&desc);
	core_buf_free(&pt);
}

static bool
have_fashion(void)
{
	return access(FASHION "/train-images-idx3-ubyte.gz", R_OK) == 0 &&
	    access(FASHION "/t10k-images-idx3-ubyte.gz", R_OK) == 0;
}

// fashion reads Fashion-MNIST's "train" or "t10k" set.
static idn_dataset *
fashion(const char *set)
{
	char img[256], lab[256];
	idn_dataset *d = NULL;
	snprintf(img, sizeof(img), FASHION "/%s-images-idx3-ubyte.gz", set);
	snprintf(lab, sizeof(lab), FASHION "/%s-labels-idx1-ubyte.gz", set);
	IDN_PASS(idn_dataset_load_idx(img, lab, &d));
	return d;
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
static void
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
static void
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
static void
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

// An allreduce between ranks on threads of this process, for the
// data-parallel tests (a test helper, not library code): each rank's hook
// leaves its buffer, rank 0 sums them in rank order, and every rank copies
// the one sum back, so all ranks get the same bits.
typedef struct {
	pthread_barrier_t bar;
	unsigned world;
	float *slot[4];
	size_t n[4];
	int kind[4];
	unsigned calls[4];
	unsigned averages[4]; // calls of kind IDN_MODEL_SYNC_AVERAGE
	float shares[4]; // the last step's b_r of each rank
	float *sum;
	size_t cap;
	bool bad;        // ranks disagreed on n or kind, or an unknown kind
	double labels;   // the summed sim "gradient" 1: labels of all steps
} allreduce;

typedef struct {
	allreduce *ar;
	unsigned rank;
} rank_hook;

static int
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
static int
same_hook(void *arg, int kind, float *buf, size_t n)
{
	(*(unsigned *) arg)++;
	return 0;
}

typedef struct {
	idn_model *m;
	idn_model_train_opts o;
	idn_model_data train;
	rank_hook hook;
	void *arg;          // if set: this rank's step, control, epoch arg
	const void *state;  // if set: this rank's resume_state
	size_t state_len;
	int rv;
} rank_run;

static void *
run_rank(void *arg)
{
	rank_run *r = arg;
	r->rv = idn_model_train(r->m, &r->o, &r->train, NULL);
	return NULL;
}

// train_ranks trains world ranks on threads, opts as given but for rank,
// world, the hook and what run[r] sets (arg, state); run[r].m must be
// loaded.
static void
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

static float *
weights(idn_model *m, size_t *n)
{
	float *w = NULL;
	IDN_PASS(model_weights(m, &w, n));
	return w;
}

// max_diff is max |a - b| over n floats, relative to max |b|.
static double
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
static void
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

static void
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

// What each rank's on_step saw (sim, 2 ranks).
typedef struct {
	unsigned rank;
	unsigned n;
	uint32_t epoch[16];
	uint64_t step[16];
	uint32_t control[16];
	double loss[16];
	unsigned controls; // step_control calls
	bool wrong_rank;   // step_control called on a rank other than 0
} control_seen;

static uint32_t
on_control(void *arg)
{
	control_seen *c = arg;
	c->wrong_rank = c->wrong_rank || c->rank != 0;
	unsigned i = c->controls++;
	return i == 2 ? 0x12345u : i == 7 ? 99u : 0u;
}

static int
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
static void
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
static void
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
static void
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

// Model averaging options: sync_every 0, a resume off a sync boundary and
// a count that could not travel as a float are refused; with world 1
// sync_every changes nothing.
static void
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
static void
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
static void
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
static void
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

static void
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

// write_gz writes a gzipped file of the given bytes.
static void
write_gz(const char *path, const void *data, size_t len)
{
	gzFile f = gzopen(path, "wb");
	assert_non_null(f);
	if (len > 0) {
		assert_int_equal(gzwrite(f, data, (unsigned) len), (int) len);
	}
	assert_int_equal(gzclose(f), Z_OK);
}

static void
be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

// make_idx writes an n-image 28x28 IDX pair; image i is filled with i.
static void
make_idx(const char *img, const char *lab, uint32_t n, uint32_t claim)
{
	size_t len = 16 + (size_t) n * IMG;
	uint8_t *b = malloc(len);
	be32(b, 0x803);
	be32(b + 4, claim);
	be32(b + 8, 28);
	be32(b + 12, 28);
	for (uint32_t i = 0; i < n; i++) {
		memset(b + 16 + (size_t) i * IMG, (int) i, IMG);
	}
	write_gz(img, b, len);
	be32(b, 0x801);
	be32(b + 4, n);
	for (uint32_t i = 0; i < n; i++) {
		b[8 + i] = (uint8_t) (i % 10);
	}
	write_gz(lab, b, 8 + n);
	free(b);
}

static void
test_idx_files(void **st)
{
	const char *img = tmp_path("img.gz");
	const char *lab = tmp_path("lab.gz");
	idn_dataset *d;
	make_idx(img, lab, 25, 25);
	IDN_PASS(idn_dataset_load_idx(img, lab, &d));
	assert_int_equal(d->n, 25);
	assert_int_equal(d->height, 28);
	assert_int_equal(d->images[24 * IMG + 5], 24);
	assert_int_equal(d->labels[13], 3);
	idn_dataset_free(d);

	// The header claims 30 images, the file has 25: truncated.
	make_idx(img, lab, 25, 30);
	IDN_FAIL(idn_dataset_load_idx(img, lab, &d), IDN_ECORRUPT);
	// 26 images for 25 labels: the counts disagree.
	make_idx(img, lab, 26, 26);
	make_idx(tmp_path("x.gz"), lab, 25, 25);
	IDN_FAIL(idn_dataset_load_idx(img, lab, &d), IDN_ECORRUPT);
	// Labels where images belong: wrong magic.
	IDN_FAIL(idn_dataset_load_idx(lab, lab, &d), IDN_ECORRUPT);
	IDN_FAIL(idn_dataset_load_idx(tmp_path("none.gz"), lab, &d),
	    IDN_ENOENT);
	// Empty file, header only, zero count, absurd dims.
	write_gz(img, "", 0);
	IDN_FAIL(idn_dataset_load_idx(img, lab, &d), IDN_ECORRUPT);
	uint8_t h[16];
	be32(h, 0x803);
	be32(h + 4, 0);
	be32(h + 8, 28);
	be32(h + 12, 28);
	write_gz(img, h, 16);
	IDN_FAIL(idn_dataset_load_idx(img, lab, &d), IDN_ECORRUPT);
	be32(h + 4, 1);
	be32(h + 8, 0x7fffffff);
	write_gz(img, h, 16);
	IDN_FAIL(idn_dataset_load_idx(img, lab, &d), IDN_ECORRUPT);

	// A gzip stream cut short, and one with a flipped byte.
	make_idx(img, lab, 25, 25);
	core_buf gz = {0};
	IDN_PASS(core_file_read(img, 1 << 20, &gz));
	IDN_PASS(core_file_write_atomic(img, gz.data, gz.len - 20));
	IDN_FAIL(idn_dataset_load_idx(img, lab, &d), IDN_ECORRUPT);
	gz.data[gz.len - 6] ^= 0x55; // inside the CRC-32 / size trailer
	IDN_PASS(core_file_write_atomic(img, gz.data, gz.len));
	IDN_FAIL(idn_dataset_load_idx(img, lab, &d), IDN_ECORRUPT);
	// Trailing bytes after the last image.
	uint8_t *big = calloc(1, 16 + 2 * IMG + 1);
	be32(big, 0x803);
	be32(big + 4, 2);
	be32(big + 8, 28);
	be32(big + 12, 28);
	write_gz(img, big, 16 + 2 * IMG + 1);
	IDN_FAIL(idn_dataset_load_idx(img, lab, &d), IDN_ECORRUPT);
	free(big);
	core_buf_free(&gz);
}

static void
test_runtime(void **st)
{
	char buf[512];
	idn_model_runtime(buf, sizeof(buf));
	print_message("# %s\n", buf);
	assert_non_null(strstr(buf, "intra-op threads 1,"));
	IDN_FAIL(idn_model_set_threads(0), IDN_EINVAL);
	IDN_PASS(idn_model_set_threads(1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_desc_parse),
		cmocka_unit_test(test_desc_bad),
		cmocka_unit_test(test_sim_deterministic),
		cmocka_unit_test(test_sim_service_time),
		cmocka_unit_test(test_sim_weights),
		cmocka_unit_test(test_train_schedule),
		cmocka_unit_test(test_train_progress),
		cmocka_unit_test(test_bad_batches),
		cmocka_unit_test(test_runtime),
		cmocka_unit_test(test_torch_lenet_reference),
		cmocka_unit_test(test_torch_resnet_reference),
		cmocka_unit_test(test_torch_alexnet_reference),
		cmocka_unit_test(test_torch_bad_models),
		cmocka_unit_test(test_torch_train_lenet),
		cmocka_unit_test(test_torch_train_adam),
		cmocka_unit_test(test_torch_resume),
		cmocka_unit_test(test_train_first_step),
		cmocka_unit_test(test_dp_bad_opts),
		cmocka_unit_test(test_dp_control),
		cmocka_unit_test(test_dp_two_ranks),
		cmocka_unit_test(test_dp_resume_state),
		cmocka_unit_test(test_dp_average_opts),
		cmocka_unit_test(test_dp_average_sim),
		cmocka_unit_test(test_dp_average_ranks),
		cmocka_unit_test(test_dp_average_learns),
		cmocka_unit_test(test_dp_average_resume),
		cmocka_unit_test(test_idx_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
