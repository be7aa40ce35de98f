// SPDX-License-Identifier: MIT
// model.h: models (load, describe, infer, train, export weights) behind one
// backend interface, and the Fashion-MNIST dataset shard layout in SDFS.
#ifndef IDUNNO_MODEL_H
#define IDUNNO_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <idunno/idunno.h>

#ifdef __cplusplus
extern "C" {
#endif

// A model is a descriptor (docs/MODELS.md: "backend = torch", "input =
// 1x28x28", "classes = 10", "mean", "std", ...) plus, for the torch
// backend, TorchScript bytes. Inputs are always raw uint8 images, N*C*H*W
// bytes in NCHW order; the backend scales them to [0, 1] and normalises
// them per channel with the descriptor's mean and std. A handle is used by
// one thread at a time; distinct handles may run on distinct threads.
typedef struct idn_model idn_model;

#define IDN_MODEL_MAX_CHANNELS 4

// What idn_model_describe reports. Strings are borrowed until
// idn_model_close.
typedef struct idn_model_info {
	const char *name;         // descriptor "name", "" if absent
	const char *backend;      // "torch" or "sim"
	uint32_t channels;        // C
	uint32_t height;          // H
	uint32_t width;           // W
	uint32_t classes;         // number of outputs
	const char *const *class_names; // classes entries
	float mean[IDN_MODEL_MAX_CHANNELS]; // per channel, on the [0,1] scale
	float std[IDN_MODEL_MAX_CHANNELS];
	idn_duration service_ms;  // sim backend: sleep per batch, else 0
	uint32_t service_per_query_us; // sim backend: extra sleep per query
} idn_model_info;

// idn_model_set_threads sets the process-wide number of intra-op threads of
// the torch backend (default 1); call it before the first idn_model_load.
// OpenBLAS always runs 1 thread unless the environment already sets
// OPENBLAS_NUM_THREADS (then that value stays). IDN_EINVAL if n < 1.
IDN_API int idn_model_set_threads(int n);

// idn_model_runtime writes one line describing the torch runtime: torch
// version, intra-op and inter-op threads, the BLAS library and its thread
// count, OPENBLAS_NUM_THREADS. For logs and benchmarks.
IDN_API void idn_model_runtime(char *buf, size_t size);

// idn_model_load parses the descriptor (desc, desc_len bytes of text), then
// loads the model bytes with the backend it names (TorchScript for torch;
// ignored by sim, may be NULL) and checks with one probe inference that
// the model takes C*H*W inputs and gives `classes` outputs. IDN_EINVAL bad
// argument or descriptor, IDN_EMODEL the backend refused the model,
// IDN_ENOMEM. Caller keeps desc and model. On failure, if errmsg is not
// NULL, *errmsg gets the reason: memory the caller frees with idn_free().
// *out is written only on success.
IDN_API int idn_model_load(const char *desc, size_t desc_len,
    const void *model, size_t model_len, char **errmsg, idn_model **out);

// idn_model_close frees the model; accepts NULL.
IDN_API void idn_model_close(idn_model *m);

// idn_model_errmsg returns the text of the last error on m (a C++
// exception's message, a validation failure), "" if none. Borrowed until
// the next call on m.
IDN_API const char *idn_model_errmsg(const idn_model *m);

// idn_model_describe fills *out. IDN_EINVAL if an argument is NULL.
IDN_API int idn_model_describe(const idn_model *m, idn_model_info *out);

// idn_model_infer classifies n images (len must be n*C*H*W bytes): for
// each, classes[i] gets the index of the largest output and scores[i] its
// softmax probability. The sim backend sleeps its service time. IDN_EINVAL
// n == 0 or wrong len, IDN_EMODEL the backend failed. Caller keeps all
// buffers; classes and scores have n entries.
IDN_API int idn_model_infer(idn_model *m, const uint8_t *images, size_t n,
    size_t len, uint32_t *classes, float *scores);

// idn_model_logits is idn_model_infer's raw form: out gets n*classes
// float32 outputs (row per image) before softmax. Same errors.
IDN_API int idn_model_logits(idn_model *m, const uint8_t *images, size_t n,
    size_t len, float *out);

// A labelled set of images in memory: n images of C*H*W bytes and n
// labels. Caller keeps both arrays.
typedef struct idn_model_data {
	const uint8_t *images;
	const uint8_t *labels;
	size_t n;
} idn_model_data;

// Report of one finished training epoch.
typedef struct idn_model_epoch {
	uint32_t epoch;          // 1-based
	uint32_t epochs;         // total planned
	double train_loss;       // mean cross entropy over the epoch
	double test_loss;        // -1 without a test set
	double test_accuracy;    // in [0, 1]; -1 without a test set
	double lr;               // learning rate used in this epoch
	uint64_t train_ms;       // time spent training this epoch
	uint64_t test_ms;        // time spent evaluating the test set
} idn_model_epoch;

// idn_model_epoch_fn is called after each epoch on the thread that called
// idn_model_train, with no library locks held. Return 0 to go on, non-zero
// to stop training after this epoch.
typedef int (*idn_model_epoch_fn)(void *arg, const idn_model_epoch *e);

enum idn_model_optimizer {
	IDN_MODEL_SGD,  // SGD with momentum (and optional weight decay)
	IDN_MODEL_ADAM,
};

enum idn_model_schedule {
	IDN_MODEL_LR_CONST,
	IDN_MODEL_LR_STEP,   // lr *= lr_gamma every lr_step epochs
	IDN_MODEL_LR_COSINE, // cosine from lr to 0 over the epochs
};

// Options of idn_model_train; idn_model_train_opts_init sets the defaults
// in brackets.
typedef struct idn_model_train_opts {
	uint32_t epochs;         // [1]
	uint32_t batch_size;     // [64]
	int optimizer;           // [IDN_MODEL_SGD]
	double lr;               // [0.01]
	double momentum;         // SGD only [0.9]
	double weight_decay;     // [0]
	int schedule;            // [IDN_MODEL_LR_CONST]
	uint32_t lr_step;        // epochs between steps [1]
	double lr_gamma;         // [0.5]
	uint64_t seed;           // shuffling order [1]
	idn_model_epoch_fn on_epoch; // may be NULL
	void *arg;
} idn_model_train_opts;

IDN_API void idn_model_train_opts_init(idn_model_train_opts *o);

// idn_model_train trains m in place: each epoch visits the training set in
// a seeded random order, then evaluates the test set (may be NULL) and
// calls o->on_epoch. Labels must be < classes. IDN_EINVAL bad options or
// data, IDN_EMODEL the backend failed (see idn_model_errmsg). The sim
// backend sleeps its service time per batch and learns nothing.
IDN_API int idn_model_train(idn_model *m, const idn_model_train_opts *o,
    const idn_model_data *train, const idn_model_data *test);

// idn_model_evaluate runs the set through the model (eval mode, batches of
// 256) and reports the fraction classified correctly and the mean cross
// entropy. Either out-pointer may be NULL. Errors as idn_model_infer.
IDN_API int idn_model_evaluate(idn_model *m, const idn_model_data *set,
    double *accuracy, double *loss);

// idn_model_export serialises the model's current weights. For torch the
// bytes are a whole TorchScript module, so they are also valid model bytes
// for idn_model_load with the same descriptor. Returns memory the caller
// frees with idn_free().
IDN_API int idn_model_export(idn_model *m, void **out, size_t *len);

// idn_model_import replaces m's weights with exported ones. IDN_EMODEL if
// the bytes do not parse or their parameters' names or shapes differ from
// m's; m is unchanged then. Caller keeps data.
IDN_API int idn_model_import(idn_model *m, const void *data, size_t len);

// Datasets in SDFS. A set (say Fashion-MNIST's training images) is stored as
// shards of at most shard_size queries, named "<prefix>/NNNNNN" (six
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

// idn_dataset_import_fashion_mnist imports dir's four Fashion-MNIST files
// as "<prefix>/train/..." (60,000 images) and "<prefix>/test/..." (10,000,
// the query set). dir NULL means /usr/share/datasets/fashion-mnist.
IDN_API int idn_dataset_import_fashion_mnist(const char *dir,
    const char *prefix, uint32_t shard_size, idn_dataset_put_fn put,
    void *arg);

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

// idn_model_load_files is idn_model_load with the descriptor and the model
// read from files (model_path may be NULL for the sim backend). The read's
// error (IDN_ENOENT, IDN_EPERM) or the load's; *errmsg as idn_model_load.
IDN_API int idn_model_load_files(const char *desc_path,
    const char *model_path, char **errmsg, idn_model **out);

// Models and datasets in SDFS (all need the sdfs of idn_client's cluster).
// A model NAME lives as "models/NAME/desc" and "models/NAME/model.pt";
// training adds "models/NAME/weights" (an exported module: valid model
// bytes with the same descriptor) and "models/NAME/metrics" (a line per
// epoch). Each write is a new SDFS version.

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

// A whole set read from SDFS into memory.
typedef struct idn_dataset {
	uint8_t *images; // n*C*H*W bytes
	uint8_t *labels; // n bytes
	size_t n;
	uint32_t channels;
	uint32_t height;
	uint32_t width;
} idn_dataset;

// idn_dataset_fetch reads the set stored under prefix (its manifest, then
// its shards in order; at most limit queries, 0 for all). IDN_ENOENT no
// manifest, IDN_ECORRUPT shards that do not tile the set. Free the result
// with idn_dataset_free.
IDN_API int idn_dataset_fetch(idn_client *c, const char *prefix,
    size_t limit, idn_dataset **out);
IDN_API void idn_dataset_free(idn_dataset *d);

// idn_model_train_sdfs trains model NAME on "<data>/train" (its first
// limit images, 0 for all), evaluating "<data>/test" after every epoch,
// then stores the weights and metrics in SDFS. o->on_epoch still runs.
IDN_API int idn_model_train_sdfs(idn_client *c, const char *name,
    const char *data, size_t limit, const idn_model_train_opts *o,
    char **errmsg);

#ifdef __cplusplus
}
#endif

#endif
