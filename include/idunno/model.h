// SPDX-License-Identifier: MIT
// model.h: models (load, describe, infer, train, export weights) behind one
// backend interface, and labelled image sets in memory. Pure compute: models
// and datasets stored in SDFS are in idunno/catalog.h.
#ifndef IDUNNO_MODEL_H
#define IDUNNO_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <idunno/base.h>

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

// What idn_model_train reports after each optimiser step (on_step). With
// data-parallel training every rank gets the same values at the same step,
// except at the local steps between syncs of sync_every > 1 (there loss
// is this rank's share's and control is 0).
typedef struct idn_model_step {
	uint32_t epoch;   // 1-based
	uint32_t epochs;  // total planned
	uint64_t step;    // 0-based within the epoch
	uint64_t steps;   // steps per epoch, the same on every rank
	uint32_t images;  // images in this step's global batch
	uint32_t control; // rank 0's step_control value for this step
	double loss;      // mean cross entropy over the global batch (with
	                  // sync_every > 1: since the last sync, all ranks)
	double lr;        // learning rate of this step
} idn_model_step;

// idn_model_step_fn is called after each optimiser step on the thread that
// called idn_model_train, with no library locks held. Return 0 to go on,
// non-zero to stop training at once: idn_model_train then returns
// IDN_ECLOSED (the epoch is not finished, not evaluated, no on_epoch).
typedef int (*idn_model_step_fn)(void *arg, const idn_model_step *s);

// idn_model_control_fn is called once per step on rank 0 only, on the
// training thread with no library locks held, after the step's backward
// pass (before its sync; without on_sync, after the step): its value
// reaches every rank's on_step of that same step as
// idn_model_step.control (0 if there is no step_control). With
// sync_every > 1 and world > 1 it is called at sync steps only, after the
// local step and before the sync.
typedef uint32_t (*idn_model_control_fn)(void *arg);

// idn_model_sync_fn must replace buf[0..n) by its element-wise sum over
// all ranks (an allreduce); every rank calls it with the same kind and n
// at the same step. It runs on the training thread with no library locks
// held. A non-zero return stops training and idn_model_train returns that
// value (return an idn_err code, e.g. IDN_ENET or IDN_ETIMEDOUT); the
// model is then left mid-step, so restart from a saved train state.
typedef int (*idn_model_sync_fn)(void *arg, int kind, float *buf, size_t n);

// Kinds of idn_model_sync_fn buffers. IDN_MODEL_SYNC_STEP, once per step
// after the backward pass and before the optimiser step, holds:
//   the gradients of all floating parameters, in parameter order, each
//     multiplied by this rank's share of the global batch (b_r images);
//   all floating buffers (BatchNorm running mean and variance), as is;
//   IDN_MODEL_SYNC_TRAILER floats: loss * b_r, b_r, control & 0xffff,
//     control >> 16 (rank 0's step_control; 0 on other ranks).
// After the sum the library divides the gradients by the summed b (the
// global batch), the buffers by world, and steps the optimiser.
// IDN_MODEL_SYNC_AVERAGE (sync_every > 1), once per sync step after this
// rank's local optimiser step, holds:
//   all floating parameters (the weights), in parameter order;
//   all floating buffers, as for IDN_MODEL_SYNC_STEP;
//   IDN_MODEL_SYNC_TRAILER floats: the sums since the last sync of
//     loss * b_r and of b_r, control & 0xffff, control >> 16.
// After the sum parameters and buffers are divided by world (the same
// bits on every rank). Other kinds may be added; a hook that just sums
// works for all of them.
enum idn_model_sync_kind {
	IDN_MODEL_SYNC_STEP = 1,
	IDN_MODEL_SYNC_AVERAGE = 2,
};
#define IDN_MODEL_SYNC_TRAILER 4

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
// in brackets and `size`. Fields are only ever appended: a caller built
// against an older header passes its smaller size and gets the defaults
// for the newer fields.
typedef struct idn_model_train_opts {
	uint32_t size;           // sizeof(idn_model_train_opts), set by _init
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
	// Resuming: epochs before first_epoch count as done (the model holds
	// their weights). Epoch e's learning rate and shuffle depend only on
	// the options and e, so a resumed run visits the data as the
	// uninterrupted one would; optimiser state (momentum, Adam's moments)
	// starts afresh unless resume_state gives it. [1]
	uint32_t first_epoch;
	// Progress after each training batch, on the calling thread: batches
	// done of the run's total, epochs x batches per epoch (a resumed run
	// starts at its first epoch's share). [NULL]
	idn_progress_fn on_progress;
	void *progress_arg;
	// Data-parallel training over `world` processes (docs/MODELS.md):
	// batch_size is the global batch, split into world contiguous shares
	// of the same shuffled order, and this process trains on share
	// `rank`. world > 1 needs on_sync, and batch_size >= 2 * world (no
	// share of one image). [0, 1]
	uint32_t rank;
	uint32_t world;
	// Sums each step's gradients over the ranks (idn_model_sync_fn).
	// [NULL: with world 1, nothing is called]
	idn_model_sync_fn on_sync;
	void *sync_arg;
	// Rank 0's per-step word for all ranks (idn_model_control_fn). [NULL]
	idn_model_control_fn step_control;
	void *control_arg;
	// Called after each optimiser step (idn_model_step_fn). [NULL]
	idn_model_step_fn on_step;
	void *step_arg;
	// Resuming mid-epoch: first_epoch starts at this step (0-based, up to
	// the steps per epoch, which starts at its evaluation) with the same
	// shuffle, so the run visits exactly the batches the uninterrupted
	// run had left. [0]
	uint64_t first_step;
	// A blob from idn_model_export_train_state, loaded when training
	// starts: weights and optimiser state (momentum, Adam's moments and
	// step counts). Caller keeps. [NULL]
	const void *resume_state;
	size_t resume_state_len;
	// Periodic model averaging ("local SGD") with world > 1: steps are
	// local (each rank steps on its share's gradient, no hook call) and
	// every sync_every-th step of an epoch, and its last, averages the
	// weights and buffers over the ranks (IDN_MODEL_SYNC_AVERAGE).
	// Optimiser state stays per rank. first_step must then be a multiple
	// of sync_every or the steps per epoch. 1 is a sync every step
	// (IDN_MODEL_SYNC_STEP); with world 1 it has no effect. [1]
	uint32_t sync_every;
	// Data augmentation of each training image, drawn from (seed, epoch,
	// the image's place in the epoch's order), so it does not depend on
	// the ranks or a resume: IDN_MODEL_AUG_FLIP mirrors left-right with
	// probability 1/2; crop_pad > 0 takes a random H x W window of the
	// image padded by crop_pad zero pixels on each side (a shift of up to
	// crop_pad pixels). Test images are never changed. [0, 0]
	uint32_t augment;
	uint32_t crop_pad;
} idn_model_train_opts;

// idn_model_train_opts.augment bits.
enum { IDN_MODEL_AUG_FLIP = 1 };

IDN_API void idn_model_train_opts_init(idn_model_train_opts *o);

// idn_model_train trains m in place: epochs first_epoch..epochs each visit
// the training set in a random order seeded by (seed, epoch), then
// evaluate the test set (may be NULL) and call o->on_epoch. Labels must be
// < classes. IDN_EINVAL bad options (sync_every 0, first_step off a sync
// boundary) or data, IDN_EMODEL the backend failed or resume_state does
// not fit (see idn_model_errmsg), IDN_ECLOSED on_step stopped it, or
// on_sync's error. The sim backend sleeps its service time per batch and
// learns nothing.
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

// idn_model_export_train_state serialises what a resumed run needs: the
// weights, the optimiser state and the position (the epoch and the steps
// done in it, with its running loss, so a resumed epoch reports the same
// train_loss). Only from inside on_step or on_epoch, on the training
// thread, and with sync_every K > 1 (world > 1) only at a sync step, where
// (s->step + 1) % K == 0 or s->step + 1 == s->steps; IDN_EINVAL otherwise.
// Resume with first_epoch = s->epoch, first_step = s->step + 1 (from
// on_step) or first_epoch = e->epoch + 1 (from on_epoch) and
// resume_state. Returns memory the caller frees with idn_free().
IDN_API int idn_model_export_train_state(idn_model *m, void **out,
    size_t *len);

// idn_model_import replaces m's weights with exported ones. IDN_EMODEL if
// the bytes do not parse or their parameters' names or shapes differ from
// m's; m is unchanged then. Caller keeps data.
IDN_API int idn_model_import(idn_model *m, const void *data, size_t len);

// idn_model_load_files is idn_model_load with the descriptor and the model
// read from files (model_path may be NULL for the sim backend). The read's
// error (IDN_ENOENT, IDN_EPERM) or the load's; *errmsg as idn_model_load.
IDN_API int idn_model_load_files(const char *desc_path,
    const char *model_path, char **errmsg, idn_model **out);

// A labelled image set in memory: n images of C*H*W bytes (NCHW order)
// and n labels.
typedef struct idn_dataset {
	uint8_t *images; // n*C*H*W bytes
	uint8_t *labels; // n bytes
	size_t n;
	uint32_t channels;
	uint32_t height;
	uint32_t width;
} idn_dataset;

// idn_dataset_load_idx reads a gzipped IDX image file (magic 0x803, one
// channel) and its label file (0x801) and checks that the counts agree.
// IDN_ENOENT missing file, IDN_ECORRUPT bad or truncated file, IDN_ETOOBIG,
// IDN_ENOMEM. Free the result with idn_dataset_free.
IDN_API int idn_dataset_load_idx(const char *images_gz,
    const char *labels_gz, idn_dataset **out);

// idn_dataset_free frees a set from idn_dataset_load_idx or
// idn_dataset_fetch; accepts NULL.
IDN_API void idn_dataset_free(idn_dataset *d);

#ifdef __cplusplus
}
#endif

#endif
