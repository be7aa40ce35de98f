// SPDX-License-Identifier: MIT
// model.h: the model subsystem's internals: descriptor, backend interface,
// the torch shim's C entry points, the sim backend, IDX files.
#ifndef IDN_MODEL_MODEL_H
#define IDN_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <idunno/model.h>

#ifdef __cplusplus
extern "C" {
#endif

// The smallest idn_model_train_opts.size accepted: the struct as of the
// first version with a size field. Later fields are appended after it.
#define MODEL_TRAIN_OPTS_MIN_SIZE                                         \
	(offsetof(idn_model_train_opts, first_epoch) + sizeof(uint32_t))

// model_train_opts_copy copies a caller's options into *out, with the
// defaults for fields beyond o->size. IDN_EINVAL if o is NULL or its size
// is not one this library knows (not set up by idn_model_train_opts_init).
int model_train_opts_copy(const idn_model_train_opts *o,
    idn_model_train_opts *out);

// Descriptor limits; the parser refuses anything beyond them.
#define MODEL_DESC_MAX_BYTES (64 * 1024)
#define MODEL_MAX_DIM 4096
#define MODEL_MAX_INPUT_BYTES (16u * 1024 * 1024) // C*H*W of one image
#define MODEL_MAX_CLASSES 100000
#define MODEL_MAX_NAME 255
#define MODEL_MAX_SERVICE_MS 600000

// A parsed descriptor (docs/MODELS.md).
typedef struct model_desc {
	char *name;        // "" if absent
	char *backend;     // "torch" or "sim"
	uint32_t channels;
	uint32_t height;
	uint32_t width;
	uint32_t classes;
	char **class_names; // classes entries, "0".."K-1" by default
	float mean[IDN_MODEL_MAX_CHANNELS];
	float std[IDN_MODEL_MAX_CHANNELS];
	uint32_t service_ms;
	uint32_t service_per_query_us;
	uint32_t load_ms; // sim: the load takes this long (a big model's)
} model_desc;

// model_desc_parse parses len bytes of descriptor text into *d (zeroed
// first). IDN_EINVAL with a "line N: ..." reason in *err (caller frees), or
// IDN_ENOMEM. On failure *d holds nothing to free.
int model_desc_parse(const char *text, size_t len, model_desc *d,
    char **err);
void model_desc_free(model_desc *d);

// The backend interface. `impl` is the backend's own state. Functions
// that fail return an idn_err code and may set *err (malloc'd text).
typedef struct model_backend {
	const char *name;
	int (*load)(const model_desc *d, const void *bytes, size_t len,
	    void **impl, char **err);
	void (*close)(void *impl);
	// out gets n*classes float32 logits.
	int (*forward)(void *impl, const uint8_t *x, size_t n, float *out,
	    char **err);
	int (*train_begin)(void *impl, const idn_model_train_opts *o,
	    char **err);
	// One optimiser step on n images; *loss gets the batch's mean loss.
	int (*train_step)(void *impl, const uint8_t *x, const uint8_t *y,
	    size_t n, double lr, double *loss, char **err);
	void (*train_end)(void *impl);
	int (*save)(void *impl, void **out, size_t *len, char **err);
	int (*restore)(void *impl, const void *data, size_t len, char **err);
	// Data-parallel steps, split around the sync. sync_len counts the
	// floats of the floating parameters (one gradient each) and buffers.
	// train_grad runs forward and backward on n images and writes the
	// gradients times scale, then the buffers, into buf. train_apply reads
	// buf back (gradients / count, buffers / world) and steps the
	// optimiser with lr.
	int (*sync_len)(void *impl, size_t *grads, size_t *buffers,
	    char **err);
	int (*train_grad)(void *impl, const uint8_t *x, const uint8_t *y,
	    size_t n, float scale, float *buf, double *loss, char **err);
	int (*train_apply)(void *impl, const float *buf, double count,
	    double world, double lr, char **err);
	// The training state (weights and optimiser state) while training.
	// state_save leaves `head` bytes at the start of *out for the
	// caller's header; *len counts them.
	int (*state_save)(void *impl, size_t head, void **out, size_t *len,
	    char **err);
	int (*state_load)(void *impl, const void *data, size_t len,
	    char **err);
	// weights writes the n floating parameters then buffers (sync_len's
	// grads + buffers) as float32: for tests, and model averaging packs
	// its sync buffer with it.
	int (*weights)(void *impl, float *out, size_t n, char **err);
	// average is weights' inverse for model averaging: buf holds n floats
	// in weights' layout summed over world ranks; each parameter and
	// buffer becomes its sum / world. Optimiser state is left alone.
	int (*average)(void *impl, const float *buf, size_t n, double world,
	    char **err);
} model_backend;

extern const model_backend model_torch_backend;
extern const model_backend model_sim_backend;

// The torch backend's process-wide settings (torch.c): applied when the
// module loads, or at once if it is loaded.
int model_torch_set_threads(int n);
void model_torch_runtime(char *buf, size_t size);

// The torch shim (shim.cpp), built as the module libidunno_torch.so that
// torch.c opens on first use: plain C entry points, no exception escapes.
int shim_load(const model_desc *d, const void *bytes, size_t len,
    void **impl, char **err);
void shim_close(void *impl);
int shim_forward(void *impl, const uint8_t *x, size_t n, float *out,
    char **err);
int shim_train_begin(void *impl, const idn_model_train_opts *o, char **err);
int shim_train_step(void *impl, const uint8_t *x, const uint8_t *y,
    size_t n, double lr, double *loss, char **err);
void shim_train_end(void *impl);
int shim_save(void *impl, void **out, size_t *len, char **err);
int shim_restore(void *impl, const void *data, size_t len, char **err);
int shim_sync_len(void *impl, size_t *grads, size_t *buffers, char **err);
int shim_train_grad(void *impl, const uint8_t *x, const uint8_t *y,
    size_t n, float scale, float *buf, double *loss, char **err);
int shim_train_apply(void *impl, const float *buf, double count,
    double world, double lr, char **err);
int shim_state_save(void *impl, size_t head, void **out, size_t *len,
    char **err);
int shim_state_load(void *impl, const void *data, size_t len, char **err);
int shim_weights(void *impl, float *out, size_t n, char **err);
int shim_average(void *impl, const float *buf, size_t n, double world,
    char **err);
int shim_set_threads(int n);
// shim_runtime writes one line: torch version, intra/inter-op threads,
// BLAS library and its thread count.
void shim_runtime(char *buf, size_t size);

// model_weights copies m's floating parameters then buffers as float32
// into *out (malloc'd, *n floats): tests compare weights with it.
int model_weights(idn_model *m, float **out, size_t *n);
// The training loop's generator (splitmix64).
uint64_t model_rand(uint64_t *s);
// model_augment mirrors and shifts training image x (C x H x W bytes) in
// place as o->augment and o->crop_pad ask, drawn from (o->seed, epoch,
// pos); tmp holds one image.
void model_augment(const model_desc *d, const idn_model_train_opts *o,
    uint32_t epoch, uint64_t pos, uint8_t *x, uint8_t *tmp);

// model_softmax_top finds the largest of k logits and its softmax
// probability. Every backend's answers go through it.
void model_softmax_top(const float *logits, uint32_t k, uint32_t *cls,
    float *score);

// model_sim_logits computes the sim backend's k logits for one query of
// len bytes: class hash % k gets the top logit, its softmax probability is
// in [0.5, 1). Tests use it with model_softmax_top to check any answer.
void model_sim_logits(const uint8_t *q, size_t len, uint32_t k, float *out);

#ifdef __cplusplus
}
#endif

#endif
