// SPDX-License-Identifier: MIT
// model_test.c: Fashion-MNIST into SDFS, a model stored after validation,
// training from SDFS data to SDFS weights, and bad input that must leave
// nothing behind.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/model.h>
#include <idunno/sdfs.h>

#include "cluster.h"

static idn_tcluster cl;
static idn_client *c;
static char models[4096];

static int
setup(void **st)
{
	const char *b = getenv("IDUNNO_BUILD_DIR");
	snprintf(models, sizeof(models), "%s/models", b ? b : "build");
	IDN_PASS(idn_tcluster_up(&cl, 5));
	IDN_PASS(idn_client_open(idn_tcluster_addr(&cl, "worker1"), cl.key,
	    &c));
	idn_client_set_timeout(c, 30000);
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

static void
test_import_store_train(void **st)
{
	char *out = NULL;
	assert_int_equal(idn_tcluster_cli(&cl, &out, "--node %s dataset "
	    "import fashion-mnist", idn_tcluster_addr(&cl, "worker2")), 0);
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

	assert_int_equal(idn_tcluster_cli(&cl, &out, "model put lenet "
	    "%s/lenet5.pt %s/lenet5.desc", models, models), 0);
	free(out);
	assert_true(exists("models/lenet/desc"));
	assert_int_equal(idn_tcluster_cli(&cl, &out, "train lenet --epochs 2 "
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
	IDN_PASS(idn_test_read_file(path, 1 << 20, &desc, &desc_len));
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
	IDN_PASS(idn_test_read_file(path, 1 << 24, &model, &model_len));
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
	IDN_FAIL(idn_model_train_sdfs(c, "nosuch", "datasets/fashion-mnist", 10,
	    &o, &err), IDN_ENOENT);
	idn_free(err);
	assert_int_equal(idn_tcluster_cli(&cl, NULL, "train lenet --data "
	    "datasets/none --limit 10 2>/dev/null"), 1);
	assert_int_equal(idn_tcluster_cli(&cl, NULL, "train lenet --epochs "
	    "zero 2>/dev/null"), 2);
}

static void
test_truncated_dataset_writes_nothing(void **st)
{
	const char *dir = idn_test_tmpdir();
	// Copy the label files and cut the training images short.
	assert_int_equal(idn_test_sh(NULL, "cd /usr/share/datasets/"
	    "fashion-mnist && cp t10k-* train-labels-idx1-ubyte.gz '%s' && "
	    "head -c 100000 train-images-idx3-ubyte.gz > "
	    "'%s/train-images-idx3-ubyte.gz'", dir, dir), 0);
	assert_int_equal(idn_tcluster_cli(&cl, NULL, "dataset import "
	    "fashion-mnist --dir %s --prefix datasets/cut 2>/dev/null", dir),
	    1);
	assert_false(exists("datasets/cut/train/manifest"));
	assert_false(exists("datasets/cut/train/000000"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_import_store_train),
	    cmocka_unit_test(test_bad_models_write_nothing),
	    cmocka_unit_test(test_truncated_dataset_writes_nothing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
