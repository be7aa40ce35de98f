// SPDX-License-Identifier: MIT
// model_test.c: descriptor, sim and torch backends, inference, IDX files;
// the helpers the other model_*_test.c files share, and main, which runs
// every file's tests.
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"

#include "model_test.h"

const char sim_desc[] = "backend = sim\ninput = 1x28x28\n"
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
bool
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
idn_model *
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

idn_model *
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

bool
have_fashion(void)
{
	return access(FASHION "/train-images-idx3-ubyte.gz", R_OK) == 0 &&
	    access(FASHION "/t10k-images-idx3-ubyte.gz", R_OK) == 0;
}

// fashion reads Fashion-MNIST's "train" or "t10k" set.
idn_dataset *
fashion(const char *set)
{
	char img[256], lab[256];
	idn_dataset *d = NULL;
	snprintf(img, sizeof(img), FASHION "/%s-images-idx3-ubyte.gz", set);
	snprintf(lab, sizeof(lab), FASHION "/%s-labels-idx1-ubyte.gz", set);
	IDN_PASS(idn_dataset_load_idx(img, lab, &d));
	return d;
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
