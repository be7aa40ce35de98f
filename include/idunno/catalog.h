// SPDX-License-Identifier: MIT
// catalog.h: models and datasets stored in SDFS: a model validated before
// it is stored, fetched back, datasets as shards, and training from SDFS
// data to SDFS weights with a checkpoint after every epoch.
#ifndef IDUNNO_CATALOG_H
#define IDUNNO_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <idunno/base.h>
#include <idunno/client.h>
#include <idunno/model.h>

#ifdef __cplusplus
extern "C" {
#endif

// Models in SDFS. A model NAME (one path segment) lives as
// "models/NAME/desc" and "models/NAME/model.pt"; training adds
// "models/NAME/weights" (an exported module: valid model bytes with the
// same descriptor) and "models/NAME/metrics" (a line per epoch), and while
// it runs "models/NAME/checkpoint" and "models/NAME/checkpoint.meta". Each
// write is a new SDFS version. Every function here blocks; several may run
// at once on one client.

// idn_model_store loads the model first (as idn_model_load) and stores it
// only if that works: a wrong model never reaches SDFS. The descriptor is
// written last. IDN_EINVAL bad name (one path segment), the load's error,
// or the SDFS error. *errmsg as idn_model_load.
IDN_API int idn_model_store(idn_client *c, const char *name,
    const char *desc, size_t desc_len, const void *model, size_t model_len,
    char **errmsg);

// idn_model_fetch loads model NAME from SDFS: its trained weights when
// trained is true (IDN_ENOENT if never trained), else its model bytes.
IDN_API int idn_model_fetch(idn_client *c, const char *name, bool trained,
    char **errmsg, idn_model **out);

// Datasets in SDFS. A set (say Fashion-MNIST's training images) is stored
// as shards of at most shard_size queries, named "<prefix>/NNNNNN" (six
// digits, from 000000), followed by "<prefix>/manifest" (text: count,
// shard_size, shards, input). Each shard is self-describing: see
// docs/MODELS.md. The test set is the query set; the two sets never share
// an image.

// idn_dataset_put_fn stores one named blob; return IDN_OK or an error code,
// which stops the import. Runs on the caller's thread. data is borrowed
// for the call.
typedef int (*idn_dataset_put_fn)(void *arg, const char *name,
    const void *data, size_t len);

// idn_dataset_shards reads a gzipped IDX image file (magic 0x803) and its
// label file (0x801), checks that they agree, and hands put() every shard
// then the manifest. IDN_ENOENT missing file, IDN_ECORRUPT bad or
// truncated file, IDN_EINVAL bad argument (shard_size 0), or put's code.
IDN_API int idn_dataset_shards(const char *images_gz, const char *labels_gz,
    const char *prefix, uint32_t shard_size, idn_dataset_put_fn put,
    void *arg);

// idn_dataset_import_mnist stores a directory in MNIST's layout (the four
// files train-{images-idx3,labels-idx1}-ubyte.gz and t10k-..., as
// Fashion-MNIST ships them) as "<prefix>/train/..." and "<prefix>/test/..."
// (the query set). The manifest of each set is written after its shards.
// Errors as idn_dataset_shards, or the SDFS error; IDN_EINVAL NULL dir.
IDN_API int idn_dataset_import_mnist(idn_client *c, const char *dir,
    const char *prefix, uint32_t shard_size);
// idn_dataset_import_mnist_progress is idn_dataset_import_mnist reporting
// to fn (NULL: none) after each stored shard, on the calling thread: the
// images stored of both sets' images.
IDN_API int idn_dataset_import_mnist_progress(idn_client *c,
    const char *dir, const char *prefix, uint32_t shard_size,
    idn_progress_fn fn, void *arg);

// A decoded shard: pointers into the blob passed to idn_dataset_shard_decode
// (borrowed as long as the blob lives).
typedef struct idn_dataset_shard {
	uint64_t first;          // index of the first query in its set
	uint32_t count;
	uint32_t channels;
	uint32_t height;
	uint32_t width;
	const uint8_t *labels;   // count bytes
	const uint8_t *images;   // count*C*H*W bytes
} idn_dataset_shard;

// idn_dataset_shard_decode validates a shard blob (magic, sizes, CRC-32)
// and fills *out. IDN_ECORRUPT if it is malformed.
IDN_API int idn_dataset_shard_decode(const void *data, size_t len,
    idn_dataset_shard *out);

// idn_dataset_shard_name writes "<prefix>/NNNNNN" into buf. IDN_ETOOBIG if
// it does not fit in size bytes.
IDN_API int idn_dataset_shard_name(const char *prefix, uint32_t index,
    char *buf, size_t size);

// idn_dataset_fetch reads the set stored under prefix (its manifest, then
// its shards in order; at most limit queries, 0 for all). IDN_ENOENT no
// manifest, IDN_ECORRUPT shards that do not tile the set. Free the result
// with idn_dataset_free.
IDN_API int idn_dataset_fetch(idn_client *c, const char *prefix,
    size_t limit, idn_dataset **out);

// idn_catalog_train trains model NAME (its model bytes) on "<data>/train"
// (its first limit images, 0 for all), evaluating "<data>/test" after
// every epoch. After each finished epoch it writes the weights to
// "models/NAME/checkpoint", then "models/NAME/checkpoint.meta" (text:
// "epoch E", "epochs N", the settings, the checkpoint's SDFS version and
// the metric line of every finished epoch). If checkpoint.meta holds a
// run with the same settings (options, data, limit, model version), the
// run resumes after its epoch (o->first_epoch is ignored). At the end it
// writes "models/NAME/weights", then "models/NAME/metrics" (one line per
// epoch, those before a resume included), and deletes the checkpoint.
// o->on_epoch runs after each epoch, once its checkpoint is stored; if it
// returns non-zero the run stops there: IDN_ECLOSED, the checkpoint stays
// (a later call resumes) and no weights are written. IDN_EINVAL bad name
// or options, IDN_ENOENT no such model or set, the model's or SDFS's error.
// *errmsg (may be NULL) gets the reason: memory the caller frees with
// idn_free().
IDN_API int idn_catalog_train(idn_client *c, const char *name,
    const char *data, size_t limit, const idn_model_train_opts *o,
    char **errmsg);

#ifdef __cplusplus
}
#endif

#endif
