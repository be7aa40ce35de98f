// SPDX-License-Identifier: MIT
// catalog_test.c: training from SDFS data to SDFS weights on real nodes:
// a run stopped after an epoch resumes from its checkpoint and runs only
// the epochs left; metrics cover every epoch; other settings start afresh.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/catalog.h>
#include <idunno/model.h>
#include <idunno/sdfs.h>

#include "cluster.h"

#define FASHION "/usr/share/datasets/fashion-mnist"
#define LIMIT 2000 // training images: 32 batches of 64 (the last of 16)

static idn_tcluster cl;
static idn_client *c;

static const char sim_desc[] = "backend = sim\ninput = 1x28x28\n"
    "classes = 10\nservice_ms = 0\n";

static int
put_sdfs(void *arg, const char *name, const void *data, size_t len)
{
	return idn_sdfs_put_buf(arg, name, data, len, NULL);
}

// The cluster holds the 10,000 Fashion-MNIST test images as both the
// training and the test set of datasets/small (small and quick to store).
static int
setup(void **st)
{
	IDN_PASS(idn_tcluster_up(&cl, 4));
	IDN_PASS(idn_client_open(idn_tcluster_addr(&cl, "worker1"), cl.key,
	    &c));
	idn_client_set_timeout(c, 30000);
	const char *img = FASHION "/t10k-images-idx3-ubyte.gz";
	const char *lab = FASHION "/t10k-labels-idx1-ubyte.gz";
	IDN_PASS(idn_dataset_shards(img, lab, "datasets/small/train", 5000,
	    put_sdfs, c));
	IDN_PASS(idn_dataset_shards(img, lab, "datasets/small/test", 5000,
	    put_sdfs, c));
	char *err = NULL;
	IDN_PASS(idn_model_store(c, "simnet", sim_desc, strlen(sim_desc), NULL,
	    0, &err));
	return 0;
}

static int
teardown(void **st)
{
	idn_client_close(c);
	idn_tcluster_down(&cl);
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
	int rv = idn_catalog_train(c, model, "datasets/small", LIMIT, &o, &err);
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
	IDN_FAIL(idn_catalog_train(c, "a/b", "datasets/small", 10, &o, &err),
	    IDN_EINVAL);
	idn_free(err);
	o.size = 0;
	IDN_FAIL(idn_catalog_train(c, "simnet", "datasets/small", 10, &o,
	    NULL), IDN_EINVAL);
	assert_false(exists("models/simnet/checkpoint.meta"));
}

// LeNet-5 on torch: 1 epoch of 2, stopped, resumed; the stored weights
// classify the test set as the last epoch reported.
static void
test_resume_lenet(void **st)
{
	const char *b = getenv("IDUNNO_BUILD_DIR");
	b = b ? b : "build";
	assert_int_equal(idn_tcluster_cli(&cl, NULL, "model put lenet "
	    "%s/models/lenet5.pt %s/models/lenet5.desc", b, b), 0);
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
	IDN_PASS(idn_dataset_fetch(c, "datasets/small/test", 0, &test));
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
	    cmocka_unit_test(test_resume_sim),
	    cmocka_unit_test(test_other_settings_start_afresh),
	    cmocka_unit_test(test_resume_lenet),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
