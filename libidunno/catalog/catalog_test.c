// SPDX-License-Identifier: MIT
// catalog_test.c: dataset shards and their damage, an MNIST-layout
// directory imported, and the checkpoint meta. The SDFS side is tested
// with real nodes in tests/integration/model_test.c.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#include "catalog/catalog.h"
#include "core/core.h"

#define FASHION "/usr/share/datasets/fashion-mnist"
#define TEST_IMAGES FASHION "/t10k-images-idx3-ubyte.gz"
#define TEST_LABELS FASHION "/t10k-labels-idx1-ubyte.gz"

typedef struct {
	unsigned count;
	char names[8][64];
	core_buf blobs[8];
	int fail_at; // put returns IDN_ENET at this call, -1 never
} store;

static int
put(void *arg, const char *name, const void *data, size_t len)
{
	store *s = arg;
	if ((int) s->count == s->fail_at) {
		return IDN_ENET;
	}
	assert_true(s->count < 8);
	snprintf(s->names[s->count], sizeof(s->names[0]), "%s", name);
	memset(&s->blobs[s->count], 0, sizeof(core_buf));
	IDN_PASS(core_buf_append(&s->blobs[s->count], data, len));
	s->count++;
	return IDN_OK;
}

static void
store_free(store *s)
{
	for (unsigned i = 0; i < s->count; i++) {
		core_buf_free(&s->blobs[i]);
	}
}

// The 10,000 test images in shards of 4,000: three shards that tile the
// set, then the manifest; damage is refused; put's error stops the import.
static void
test_shards(void **st)
{
	// CI installs the dataset; it is the input of this test.
	assert_int_equal(access(TEST_IMAGES, R_OK), 0);
	idn_dataset *d;
	IDN_PASS(idn_dataset_load_idx(TEST_IMAGES, TEST_LABELS, &d));
	store s = {.fail_at = -1};
	IDN_PASS(idn_dataset_shards(TEST_IMAGES, TEST_LABELS,
	    "datasets/t/test", 4000, put, &s));
	assert_int_equal(s.count, 4);
	assert_string_equal(s.names[0], "datasets/t/test/000000");
	assert_string_equal(s.names[2], "datasets/t/test/000002");
	assert_string_equal(s.names[3], "datasets/t/test/manifest");
	assert_non_null(strstr((char *) s.blobs[3].data, "count = 10000\n"));
	assert_non_null(strstr((char *) s.blobs[3].data, "shards = 3\n"));
	assert_non_null(strstr((char *) s.blobs[3].data, "input = 1x28x28\n"));
	for (unsigned i = 0; i < 3; i++) {
		idn_dataset_shard sh;
		IDN_PASS(idn_dataset_shard_decode(s.blobs[i].data,
		    s.blobs[i].len, &sh));
		assert_int_equal(sh.first, i * 4000);
		assert_int_equal(sh.count, i < 2 ? 4000 : 2000);
		assert_int_equal(sh.channels, 1);
		assert_int_equal(sh.height, 28);
		assert_memory_equal(sh.labels, d->labels + sh.first, sh.count);
		assert_memory_equal(sh.images, d->images + sh.first * 784,
		    (size_t) sh.count * 784);
	}
	idn_dataset_free(d);
	// Damaged shards are refused.
	idn_dataset_shard sh;
	core_buf *b = &s.blobs[1];
	IDN_FAIL(idn_dataset_shard_decode(b->data, b->len - 1, &sh),
	    IDN_ECORRUPT);
	IDN_FAIL(idn_dataset_shard_decode(b->data, 12, &sh), IDN_ECORRUPT);
	b->data[b->len - 1] ^= 1;
	IDN_FAIL(idn_dataset_shard_decode(b->data, b->len, &sh),
	    IDN_ECORRUPT);
	b->data[b->len - 1] ^= 1;
	b->data[8] = 11; // count
	IDN_FAIL(idn_dataset_shard_decode(b->data, b->len, &sh),
	    IDN_ECORRUPT);
	IDN_FAIL(idn_dataset_shard_decode(NULL, 0, &sh), IDN_EINVAL);
	store_free(&s);

	store f = {.fail_at = 1};
	IDN_FAIL(idn_dataset_shards(TEST_IMAGES, TEST_LABELS, "p", 4000, put,
	    &f), IDN_ENET);
	assert_int_equal(f.count, 1);
	store_free(&f);
	f.count = 0;
	IDN_FAIL(idn_dataset_shards(TEST_IMAGES, TEST_LABELS, "p", 0, put, &f),
	    IDN_EINVAL);
	IDN_FAIL(idn_dataset_shards(TEST_IMAGES, TEST_LABELS, "", 10, put, &f),
	    IDN_EINVAL);
	IDN_FAIL(idn_dataset_shards(TEST_LABELS, TEST_LABELS, "p", 10, put,
	    &f), IDN_ECORRUPT);
	assert_int_equal(f.count, 0);
	char name[16];
	IDN_FAIL(idn_dataset_shard_name("datasets/x", 1, name, sizeof(name)),
	    IDN_ETOOBIG);
	IDN_PASS(idn_dataset_shard_name("d/x", 17, name, sizeof(name)));
	assert_string_equal(name, "d/x/000017");
}

typedef struct {
	unsigned shards[2];
	uint64_t next[2];
	unsigned manifests;
	unsigned reports;  // progress calls
	uint64_t done, total;
	bool in_step;      // each report follows its shard's put
} fashion_count;

static void
count_progress(void *arg, uint64_t done, uint64_t total)
{
	fashion_count *c = arg;
	c->in_step = c->in_step && total == 70000 &&
	    done == c->next[0] + c->next[1] && done > c->done;
	c->reports++;
	c->done = done;
	c->total = total;
}

static int
count_put(void *arg, const char *name, const void *data, size_t len)
{
	fashion_count *c = arg;
	int set = strstr(name, "/test/") != NULL;
	if (strstr(name, "/manifest") != NULL) {
		c->manifests++;
		return IDN_OK;
	}
	idn_dataset_shard sh;
	IDN_PASS(idn_dataset_shard_decode(data, len, &sh));
	// Shards come in order and cover their set without gaps.
	assert_int_equal(sh.first, c->next[set]);
	c->next[set] += sh.count;
	c->shards[set]++;
	return IDN_OK;
}

// The directory is an argument: the library knows no default.
static void
test_import_dir(void **st)
{
	fashion_count c;
	memset(&c, 0, sizeof(c));
	c.in_step = true;
	IDN_PASS(catalog_import_dir(FASHION, "datasets/fashion-mnist", 1000,
	    count_put, &c, count_progress, &c));
	// Progress: images stored of both sets' images, once a shard.
	assert_true(c.in_step);
	assert_int_equal(c.reports, 70);
	assert_int_equal(c.done, 70000);
	assert_int_equal(c.total, 70000);
	assert_int_equal(c.shards[0], 60);
	assert_int_equal(c.shards[1], 10);
	assert_int_equal(c.next[0], 60000);
	assert_int_equal(c.next[1], 10000);
	assert_int_equal(c.manifests, 2);
	IDN_FAIL(catalog_import_dir(th_tmpdir(), "d", 1000, count_put,
	    &c, NULL, NULL), IDN_ENOENT);
	IDN_FAIL(catalog_import_dir(NULL, "d", 1000, count_put, &c, NULL,
	    NULL), IDN_EINVAL);
	IDN_FAIL(catalog_import_dir(FASHION, "d", 0, count_put, &c, NULL,
	    NULL), IDN_EINVAL);
	IDN_FAIL(idn_dataset_import_mnist(NULL, FASHION, "d", 1000),
	    IDN_EINVAL);
}

// A meta reads back as written; a run with other settings differs in its
// settings text; damaged metas are refused.
static void
test_meta(void **st)
{
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.epochs = 3;
	o.lr = 0.1;
	char *s1 = catalog_meta_settings(&o, "datasets/f", 100, 7);
	assert_non_null(s1);
	assert_int_equal(strncmp(s1, "epochs 3\n", 9), 0);
	catalog_meta m = {.epoch = 2, .settings = s1, .checkpoint = 12,
	    .metrics = "epoch 1/3 x\nepoch 2/3 y\n"};
	char *text = catalog_meta_format(&m);
	assert_non_null(text);
	assert_int_equal(strncmp(text, "epoch 2\nepochs 3\n", 17), 0);
	catalog_meta back;
	IDN_PASS(catalog_meta_parse(text, &back));
	assert_int_equal(back.epoch, 2);
	assert_int_equal(back.checkpoint, 12);
	assert_string_equal(back.settings, s1);
	assert_string_equal(back.metrics, m.metrics);
	catalog_meta_clear(&back);

	// Any setting that shapes the weights changes the text.
	char *other[5];
	o.seed = 2;
	other[0] = catalog_meta_settings(&o, "datasets/f", 100, 7);
	o.seed = 1;
	other[1] = catalog_meta_settings(&o, "datasets/f", 100, 8);
	other[2] = catalog_meta_settings(&o, "datasets/g", 100, 7);
	other[3] = catalog_meta_settings(&o, "datasets/f", 0, 7);
	o.lr = 0.1000001;
	other[4] = catalog_meta_settings(&o, "datasets/f", 100, 7);
	for (int i = 0; i < 5; i++) {
		assert_non_null(other[i]);
		assert_string_not_equal(other[i], s1);
		free(other[i]);
	}

	const char *bad[] = {"", "epoch x\n", "epoch 0\nepochs 3\n",
	    "epoch 1\nepochs 3\n", "epoch 1\nepochs 3\ncheckpoint 5\n",
	    "epoch 1\nepochs 3\ncheckpoint 0\nmetrics\n",
	    "epoch 1\nlr 3\ncheckpoint 4\nmetrics\n"};
	for (size_t i = 0; i < CORE_ARRAY_LEN(bad); i++) {
		IDN_FAIL(catalog_meta_parse(bad[i], &back), IDN_ECORRUPT);
	}
	IDN_FAIL(catalog_meta_parse(NULL, &back), IDN_ECORRUPT);
	free(text);
	free(s1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shards),
		cmocka_unit_test(test_import_dir),
		cmocka_unit_test(test_meta),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
