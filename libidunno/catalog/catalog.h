// SPDX-License-Identifier: MIT
// catalog.h: the catalog's internals shared by its files and its test:
// SDFS names of a model's files, the shard blob, the checkpoint's meta.
#ifndef IDN_CATALOG_CATALOG_H
#define IDN_CATALOG_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <idunno/catalog.h>

// catalog_path writes "models/NAME/FILE" into buf. IDN_EINVAL if name is
// not one path segment of at most 200 bytes or the result is no SDFS name.
int catalog_path(char *buf, size_t cap, const char *name, const char *file);

// catalog_set_err sets *errmsg (if errmsg is not NULL and *errmsg is still
// NULL) to fmt with what in it.
void catalog_set_err(char **errmsg, const char *fmt, const char *what);

// catalog_fetch loads NAME's descriptor with the bytes of its FILE
// ("model.pt" or "weights"); *version (may be NULL) gets that file's SDFS
// version. Errors and *errmsg as idn_model_fetch.
int catalog_fetch(idn_client *c, const char *name, const char *file,
    uint64_t *version, char **errmsg, idn_model **out);

// Shard blob layout: see docs/MODELS.md.
#define CATALOG_SHARD_MAGIC "IDNSHRD1"
#define CATALOG_SHARD_HEADER 40

// catalog_shard_encode builds one shard blob (malloc'd into *out).
int catalog_shard_encode(uint64_t first, uint32_t count, uint32_t channels,
    uint32_t height, uint32_t width, const uint8_t *labels,
    const uint8_t *images, uint8_t **out, size_t *len);

// catalog_import_dir is idn_dataset_import_mnist_progress with the blobs
// handed to put instead of SDFS.
int catalog_import_dir(const char *dir, const char *prefix,
    uint32_t shard_size, idn_dataset_put_fn put, void *arg,
    idn_progress_fn fn, void *fn_arg);

// A training checkpoint's meta (models/NAME/checkpoint.meta): the last
// finished epoch, the steps done since ("step S" when not 0), the run's settings as text ("epochs N\n" first, one
// "key value" line each), the checkpoint's SDFS version and the finished
// epochs' metric lines.
typedef struct catalog_meta {
	uint32_t epoch;
	uint64_t step;       // steps done of epoch + 1 (a mid-epoch checkpoint)
	char *settings;
	uint64_t checkpoint;
	char *metrics;
} catalog_meta;

// catalog_meta_settings describes a run: the options that shape the
// weights, the data, the limit and the model bytes' SDFS version.
// Returns malloc'd text, NULL without memory.
char *catalog_meta_settings(const idn_model_train_opts *o, const char *data,
    size_t limit, uint64_t model_version);

// catalog_meta_format returns the meta's text (malloc'd, NULL without
// memory); catalog_meta_parse reads it back into *m (strings malloc'd,
// freed by catalog_meta_clear). IDN_ECORRUPT if text is no meta.
char *catalog_meta_format(const catalog_meta *m);
int catalog_meta_parse(const char *text, catalog_meta *m);
void catalog_meta_clear(catalog_meta *m);

// catalog_ckpt: a run's checkpoint writer (ckpt.c). save hands over the
// state's bytes (freed with idn_free, also on error) and copies m's
// settings and metrics (IDN_ENOMEM). drain waits until every checkpoint
// handed over is stored or given up, and returns the last write's result
// (NULL: IDN_OK); close (NULL accepted) writes what waits and ends the
// writer.
typedef struct catalog_ckpt catalog_ckpt;
int catalog_ckpt_open(idn_client *c, const char *ckpt, const char *meta,
    catalog_ckpt **out);
int catalog_ckpt_save(catalog_ckpt *w, void *state, size_t len,
    const catalog_meta *m);
int catalog_ckpt_drain(catalog_ckpt *w);
void catalog_ckpt_close(catalog_ckpt *w);

// The cluster's training options beyond idn_catalog_train's: a checkpoint
// every checkpoint_s seconds of training (0: at epoch ends only), and the
// first weights from the model's trained weights (fine-tuning).
typedef struct catalog_train_ext {
	uint32_t checkpoint_s;
	bool from_weights;
} catalog_train_ext;

// catalog_train_run is idn_catalog_train with x; with o->world > 1 rank 0
// writes the checkpoints, the weights and the metrics, and only rank 0
// evaluates the test set after each epoch.
int catalog_train_run(idn_client *c, const char *name, const char *data,
    size_t limit, const idn_model_train_opts *o, const catalog_train_ext *x,
    char **errmsg);

#endif
