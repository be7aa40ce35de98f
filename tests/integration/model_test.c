// SPDX-License-Identifier: MIT
// model_test.c: Fashion-MNIST into SDFS, a model stored after validation,
// training from SDFS data to SDFS weights, a run stopped after an epoch
// that resumes from its checkpoint, and bad input that must leave nothing
// behind.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/catalog.h>
#include <idunno/model.h>
#include <idunno/sdfs.h>

#include "cluster.h"

#define LIMIT 2000 // training images: 32 batches of 64 (the last of 16)

static th_cluster cl;
static idn_client *c;
static char models[4096];

static const char sim_desc[] = "backend = sim\ninput = 1x28x28\n"
    "classes = 10\nservice_ms = 0\n";

static int
setup(void **st)
{
	const char *b = getenv("IDUNNO_BUILD_DIR");
	snprintf(models, sizeof(models), "%s/models", b ? b : "build");
	IDN_PASS(th_cluster_up(&cl, 5));
	IDN_PASS(th_cluster_client(&cl, "worker1", 30000, &c));
	return 0;
}

static int
teardown(void **st)
{
	idn_client_close(c);
	th_cluster_down(&cl);
	return 0;
}

static bool
exists(const char *name)
{
	idn_sdfs_info *info = NULL;
	int rv = idn_sdfs_ls(c, name, &info);
	idn_free(info);
	return rv == IDN_OK;
}

static void
test_import_store_train(void **st)
{
	char *out = NULL;
	assert_int_equal(th_cluster_cli(&cl, &out, "--node %s dataset "
	    "import fashion-mnist", th_cluster_addr(&cl, "worker2")), 0);
	free(out);
	idn_dataset *test;
	IDN_PASS(idn_dataset_fetch(c, "datasets/fashion-mnist/test", 0, &test));
	assert_int_equal(test->n, 10000);
	assert_int_equal(test->height, 28);
	idn_dataset *train;
	IDN_PASS(idn_dataset_fetch(c, "datasets/fashion-mnist/train", 2500,
	    &train));
	assert_int_equal(train->n, 2500);
	// Disjoint sets: no test image equals one of these training images.
	for (size_t i = 0; i < 200; i++) {
		for (size_t j = 0; j < train->n; j++) {
			assert_true(memcmp(test->images + i * 784,
			    train->images + j * 784, 784) != 0);
		}
	}
	idn_dataset_free(train);

	assert_int_equal(th_cluster_cli(&cl, &out, "model put lenet "
	    "%s/lenet5.pt %s/lenet5.desc", models, models), 0);
	free(out);
	assert_true(exists("models/lenet/desc"));
	assert_int_equal(th_cluster_cli(&cl, &out, "train local lenet --epochs 2 "
	    "--limit 10000"), 0);
	// The last printed epoch line carries the test accuracy.
	char *acc = strstr(out, "epoch 2/2");
	acc = acc ? strstr(acc, "test accuracy ") : NULL;
	assert_non_null(acc);
	double pct = strtod(acc + 14, NULL);
	print_message("# lenet, 2 epochs on 10000 images: %.2f%%\n", pct);
	assert_true(pct > 60.0);
	free(out);
	void *metrics;
	size_t len;
	IDN_PASS(idn_sdfs_get_buf(c, "models/lenet/metrics", 0, &metrics, &len,
	    NULL));
	assert_non_null(strstr(metrics, "epoch 2/2"));
	idn_free(metrics);

	// The stored weights give the accuracy training reported.
	idn_model *m;
	char *err = NULL;
	IDN_PASS(idn_model_fetch(c, "lenet", true, &err, &m));
	double a;
	idn_model_data set = {test->images, test->labels, test->n};
	IDN_PASS(idn_model_evaluate(m, &set, &a, NULL));
	assert_true(a * 100 > pct - 0.01 && a * 100 < pct + 0.01);
	idn_model_close(m);
	idn_dataset_free(test);
}

static void
test_bad_models_write_nothing(void **st)
{
	char *err = NULL;
	uint8_t *desc, *model;
	size_t desc_len, model_len;
	char path[4200];
	snprintf(path, sizeof(path), "%s/lenet5.desc", models);
	IDN_PASS(th_read_file(path, 1 << 20, &desc, &desc_len));
	// Garbage bytes.
	IDN_FAIL(idn_model_store(c, "junk", (const char *) desc, desc_len,
	    "not a model", 11, &err), IDN_EMODEL);
	assert_non_null(err);
	idn_free(err);
	err = NULL;
	assert_false(exists("models/junk/model.pt"));
	assert_false(exists("models/junk/desc"));
	// A real model whose descriptor claims another input shape.
	snprintf(path, sizeof(path), "%s/lenet5.pt", models);
	IDN_PASS(th_read_file(path, 1 << 24, &model, &model_len));
	const char *wrong = "backend = torch\ninput = 3x32x32\nclasses = 10\n";
	assert_int_not_equal(idn_model_store(c, "wrong", wrong, strlen(wrong),
	    model, model_len, &err), IDN_OK);
	idn_free(err);
	err = NULL;
	assert_false(exists("models/wrong/desc"));
	// A name that is not one segment.
	IDN_FAIL(idn_model_store(c, "a/../b", (const char *) desc,
	    desc_len, model, model_len, &err), IDN_EINVAL);
	idn_free(err);
	free(model);
	free(desc);
	// Training a model that is not there, or on a set that is not.
	err = NULL;
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	IDN_FAIL(idn_catalog_train(c, "nosuch", "datasets/fashion-mnist", 10,
	    &o, &err), IDN_ENOENT);
	idn_free(err);
	assert_int_equal(th_cluster_cli(&cl, NULL, "train local lenet --data "
	    "datasets/none --limit 10 2>/dev/null"), 1);
	assert_int_equal(th_cluster_cli(&cl, NULL, "train local lenet --epochs "
	    "zero 2>/dev/null"), 2);
}

static void
test_truncated_dataset_writes_nothing(void **st)
{
	const char *dir = th_tmpdir();
	// Copy the label files and cut the training images short.
	assert_int_equal(th_sh(NULL, "cd /usr/share/datasets/"
	    "fashion-mnist && cp t10k-* train-labels-idx1-ubyte.gz '%s' && "
	    "head -c 100000 train-images-idx3-ubyte.gz > "
	    "'%s/train-images-idx3-ubyte.gz'", dir, dir), 0);
	assert_int_equal(th_cluster_cli(&cl, NULL, "dataset import "
	    "fashion-mnist --dir %s --prefix datasets/cut 2>/dev/null", dir),
	    1);
	assert_false(exists("datasets/cut/train/manifest"));
	assert_false(exists("datasets/cut/train/000000"));
}

typedef struct {
	unsigned n;
	uint32_t epochs[8];
	uint32_t stop_after; // return non-zero after this epoch, 0 never
} seen;

static int
on_epoch(void *arg, const idn_model_epoch *e)
{
	seen *s = arg;
	assert_true(s->n < 8);
	s->epochs[s->n++] = e->epoch;
	return e->epoch == s->stop_after;
}

static int
train(const char *model, const idn_model_train_opts *base, seen *s)
{
	idn_model_train_opts o = *base;
	o.on_epoch = on_epoch;
	o.arg = s;
	char *err = NULL;
	int rv = idn_catalog_train(c, model, "datasets/fashion-mnist", LIMIT, &o, &err);
	if (rv != IDN_OK && rv != IDN_ECLOSED) {
		print_message("# %s: %s: %s\n", model, idn_strerror(rv),
		    err ? err : "");
	}
	idn_free(err);
	return rv;
}

static char *
get_text(const char *name)
{
	void *data = NULL;
	size_t len;
	IDN_PASS(idn_sdfs_get_buf(c, name, 0, &data, &len, NULL));
	return data;
}

static unsigned
count_lines(const char *text, const char *prefix)
{
	unsigned n = 0;
	size_t pl = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n')) {
		p += *p == '\n';
		n += strncmp(p, prefix, pl) == 0;
	}
	return n;
}

// The sim backend's weights (its exported blob, 24 bytes) count the
// optimiser steps taken.
static uint64_t
sim_steps(const char *model)
{
	char name[128];
	void *w = NULL;
	size_t len;
	snprintf(name, sizeof(name), "models/%s/weights", model);
	IDN_PASS(idn_sdfs_get_buf(c, name, 0, &w, &len, NULL));
	assert_int_equal(len, 24);
	const uint8_t *b = w;
	uint64_t steps = 0;
	for (int i = 7; i >= 0; i--) { // little-endian u64 at offset 16
		steps = steps << 8 | b[16 + i];
	}
	idn_free(w);
	return steps;
}

// Stopped after epoch 1 of 3: the checkpoint says epoch 1, nothing is
// trained yet. Resumed: epochs 2 and 3 only, metrics for all three, the
// weights of 3 whole epochs, and the checkpoint gone.
static void
test_resume_sim(void **st)
{
	char *err = NULL;
	IDN_PASS(idn_model_store(c, "simnet", sim_desc, strlen(sim_desc), NULL,
	    0, &err));
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.epochs = 3;
	o.schedule = IDN_MODEL_LR_STEP;
	seen s = {.stop_after = 1};
	IDN_FAIL(train("simnet", &o, &s), IDN_ECLOSED);
	assert_int_equal(s.n, 1);
	char *meta = get_text("models/simnet/checkpoint.meta");
	assert_int_equal(strncmp(meta, "epoch 1\nepochs 3\n", 17), 0);
	assert_int_equal(count_lines(meta, "epoch 1/3 "), 1);
	idn_free(meta);
	assert_true(exists("models/simnet/checkpoint"));
	assert_false(exists("models/simnet/weights"));
	assert_false(exists("models/simnet/metrics"));

	seen r = {0};
	IDN_PASS(train("simnet", &o, &r));
	assert_int_equal(r.n, 2);
	assert_int_equal(r.epochs[0], 2);
	assert_int_equal(r.epochs[1], 3);
	char *metrics = get_text("models/simnet/metrics");
	assert_int_equal(count_lines(metrics, "epoch "), 3);
	assert_int_equal(count_lines(metrics, "epoch 1/3 "), 1);
	assert_int_equal(count_lines(metrics, "epoch 3/3 "), 1);
	// The step schedule went on: epoch 3 ran at lr * 0.5^2.
	assert_non_null(strstr(metrics, "epoch 3/3 train_loss"));
	assert_non_null(strstr(strstr(metrics, "epoch 3/3"), "lr 0.00250"));
	idn_free(metrics);
	assert_int_equal(sim_steps("simnet"), 3 * 32);
	assert_false(exists("models/simnet/checkpoint.meta"));

	// Finished runs leave no checkpoint: the same settings train afresh.
	seen again = {0};
	IDN_PASS(train("simnet", &o, &again));
	assert_int_equal(again.n, 3);
	assert_int_equal(sim_steps("simnet"), 3 * 32);
}

// A checkpoint of other settings is not resumed.
static void
test_other_settings_start_afresh(void **st)
{
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.epochs = 2;
	seen s = {.stop_after = 1};
	IDN_FAIL(train("simnet", &o, &s), IDN_ECLOSED);
	o.lr = 0.02;
	seen r = {0};
	IDN_PASS(train("simnet", &o, &r));
	assert_int_equal(r.n, 2);
	assert_int_equal(r.epochs[0], 1);
	assert_int_equal(sim_steps("simnet"), 2 * 32);
	// Bad input writes nothing.
	char *err = NULL;
	IDN_FAIL(idn_catalog_train(c, "simnet", "datasets/none", 10, &o, &err),
	    IDN_ENOENT);
	idn_free(err);
	err = NULL;
	IDN_FAIL(idn_catalog_train(c, "a/b", "datasets/fashion-mnist", 10, &o, &err),
	    IDN_EINVAL);
	idn_free(err);
	o.size = 0;
	IDN_FAIL(idn_catalog_train(c, "simnet", "datasets/fashion-mnist", 10, &o,
	    NULL), IDN_EINVAL);
	assert_false(exists("models/simnet/checkpoint.meta"));
}

// LeNet-5 on torch: 1 epoch of 2, stopped, resumed; the stored weights
// classify the test set as the last epoch reported.
static void
test_resume_lenet(void **st)
{
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.epochs = 2;
	seen s = {.stop_after = 1};
	IDN_FAIL(train("lenet", &o, &s), IDN_ECLOSED);
	seen r = {0};
	IDN_PASS(train("lenet", &o, &r));
	assert_int_equal(r.n, 1);
	assert_int_equal(r.epochs[0], 2);
	char *metrics = get_text("models/lenet/metrics");
	assert_int_equal(count_lines(metrics, "epoch "), 2);
	const char *acc = strstr(strstr(metrics, "epoch 2/2"),
	    "test_accuracy ");
	assert_non_null(acc);
	double want = strtod(acc + 14, NULL);
	idn_free(metrics);

	idn_model *m;
	idn_dataset *test;
	char *err = NULL;
	IDN_PASS(idn_model_fetch(c, "lenet", true, &err, &m));
	IDN_PASS(idn_dataset_fetch(c, "datasets/fashion-mnist/test", 0,
	    &test));
	idn_model_data set = {test->images, test->labels, test->n};
	double got;
	IDN_PASS(idn_model_evaluate(m, &set, &got, NULL));
	print_message("# lenet, 2 epochs on %d images, resumed after 1: "
	    "accuracy %.4f\n", LIMIT, got);
	assert_true(got > 0.2); // chance is 0.1
	assert_true(got > want - 0.0001 && got < want + 0.0001);
	idn_model_close(m);
	idn_dataset_free(test);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_import_store_train),
	    cmocka_unit_test(test_bad_models_write_nothing),
	    cmocka_unit_test(test_truncated_dataset_writes_nothing),
	    cmocka_unit_test(test_resume_sim),
	    cmocka_unit_test(test_other_settings_start_afresh),
	    cmocka_unit_test(test_resume_lenet),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
