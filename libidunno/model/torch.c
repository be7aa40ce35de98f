// SPDX-License-Identifier: MIT
// torch.c: the torch backend as seen from C: the shim lives in its own
// module, loaded the first time a torch model is used, so programs that
// never run one (the CLI, sim workers) start in milliseconds and do not
// map libtorch's 160 MB.
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

#ifndef IDN_TORCH_MODULE_PATHS
#define IDN_TORCH_MODULE_PATHS "libidunno_torch.so"
#endif

static struct {
	pthread_once_t once;
	pthread_mutex_t lock; // guards threads, loaded
	void *handle;
	bool loaded;
	char why[512];
	int threads;
	__typeof__(shim_load) *load;
	__typeof__(shim_close) *close;
	__typeof__(shim_forward) *forward;
	__typeof__(shim_train_begin) *train_begin;
	__typeof__(shim_train_step) *train_step;
	__typeof__(shim_train_end) *train_end;
	__typeof__(shim_save) *save;
	__typeof__(shim_restore) *restore;
	__typeof__(shim_sync_len) *sync_len;
	__typeof__(shim_train_grad) *train_grad;
	__typeof__(shim_train_apply) *train_apply;
	__typeof__(shim_state_save) *state_save;
	__typeof__(shim_state_load) *state_load;
	__typeof__(shim_weights) *weights;
	__typeof__(shim_average) *average;
	__typeof__(shim_set_threads) *set_threads;
	__typeof__(shim_runtime) *runtime;
} t = {PTHREAD_ONCE_INIT, PTHREAD_MUTEX_INITIALIZER, .threads = 1};

static void *
sym(const char *name)
{
	void *p = t.handle ? dlsym(t.handle, name) : NULL;
	if (p == NULL && t.handle != NULL) {
		snprintf(t.why, sizeof(t.why), "torch module lacks %s", name);
		dlclose(t.handle);
		t.handle = NULL;
	}
	return p;
}

// beside_library writes "DIR/idunno/libidunno_torch.so" for the DIR this
// library was loaded from, so an installed copy finds its own module
// wherever its prefix is (a staged install, a moved tree). Empty when the
// library is linked statically into a program.
static void
beside_library(char *buf, size_t size)
{
	Dl_info info;
	buf[0] = '\0';
	// Any address inside the library will do: this file's state.
	if (dladdr(&t, &info) == 0 ||
	    info.dli_fname == NULL || strstr(info.dli_fname, ".so") == NULL) {
		return;
	}
	const char *slash = strrchr(info.dli_fname, '/');
	if (slash != NULL) {
		snprintf(buf, size, "%.*s/idunno/libidunno_torch.so",
		    (int) (slash - info.dli_fname), info.dli_fname);
	}
}

static void
open_module(void)
{
	// $IDUNNO_TORCH_MODULE, else the module beside this library, then
	// the build tree's, then the configured prefix's. RTLD_GLOBAL: the
	// shim finds OpenBLAS by name.
	const char *env = getenv("IDUNNO_TORCH_MODULE");
	char paths[4096], self[2048];
	beside_library(self, sizeof(self));
	if (env && *env) {
		snprintf(paths, sizeof(paths), "%s", env);
	} else {
		snprintf(paths, sizeof(paths), "%s%s%s", self,
		    self[0] ? ":" : "", IDN_TORCH_MODULE_PATHS);
	}
	char *save = NULL;
	for (char *p = strtok_r(paths, ":", &save); p && t.handle == NULL;
	     p = strtok_r(NULL, ":", &save)) {
		if ((t.handle = dlopen(p, RTLD_NOW | RTLD_GLOBAL)) == NULL) {
			snprintf(t.why, sizeof(t.why), "torch backend "
			    "unavailable: %s", dlerror());
		}
	}
	*(void **) &t.load = sym("shim_load");
	*(void **) &t.close = sym("shim_close");
	*(void **) &t.forward = sym("shim_forward");
	*(void **) &t.train_begin = sym("shim_train_begin");
	*(void **) &t.train_step = sym("shim_train_step");
	*(void **) &t.train_end = sym("shim_train_end");
	*(void **) &t.save = sym("shim_save");
	*(void **) &t.restore = sym("shim_restore");
	*(void **) &t.sync_len = sym("shim_sync_len");
	*(void **) &t.train_grad = sym("shim_train_grad");
	*(void **) &t.train_apply = sym("shim_train_apply");
	*(void **) &t.state_save = sym("shim_state_save");
	*(void **) &t.state_load = sym("shim_state_load");
	*(void **) &t.weights = sym("shim_weights");
	*(void **) &t.average = sym("shim_average");
	*(void **) &t.set_threads = sym("shim_set_threads");
	*(void **) &t.runtime = sym("shim_runtime");
	pthread_mutex_lock(&t.lock);
	if (t.handle != NULL) {
		t.set_threads(t.threads);
		t.loaded = true;
	}
	pthread_mutex_unlock(&t.lock);
}

static bool
ready(char **err)
{
	pthread_once(&t.once, open_module);
	if (t.handle == NULL && err != NULL && *err == NULL) {
		*err = strdup(t.why);
	}
	return t.handle != NULL;
}

static int
torch_load(const model_desc *d, const void *bytes, size_t len, void **impl,
    char **err)
{
	return ready(err) ? t.load(d, bytes, len, impl, err) : IDN_EMODEL;
}

// The rest run on a model the module loaded, so it is there.
static void
torch_close(void *impl)
{
	t.close(impl);
}

static int
torch_forward(void *impl, const uint8_t *x, size_t n, float *out,
    char **err)
{
	return t.forward(impl, x, n, out, err);
}

static int
torch_train_begin(void *impl, const idn_model_train_opts *o, char **err)
{
	return t.train_begin(impl, o, err);
}

static int
torch_train_step(void *impl, const uint8_t *x, const uint8_t *y, size_t n,
    double lr, double *loss, char **err)
{
	return t.train_step(impl, x, y, n, lr, loss, err);
}

static void
torch_train_end(void *impl)
{
	t.train_end(impl);
}

static int
torch_save(void *impl, void **out, size_t *len, char **err)
{
	return t.save(impl, out, len, err);
}

static int
torch_restore(void *impl, const void *data, size_t len, char **err)
{
	return t.restore(impl, data, len, err);
}

static int
torch_sync_len(void *impl, size_t *grads, size_t *buffers, char **err)
{
	return t.sync_len(impl, grads, buffers, err);
}

static int
torch_train_grad(void *impl, const uint8_t *x, const uint8_t *y, size_t n,
    float scale, float *buf, double *loss, char **err)
{
	return t.train_grad(impl, x, y, n, scale, buf, loss, err);
}

static int
torch_train_apply(void *impl, const float *buf, double count, double world,
    double lr, char **err)
{
	return t.train_apply(impl, buf, count, world, lr, err);
}

static int
torch_state_save(void *impl, size_t head, void **out, size_t *len,
    char **err)
{
	return t.state_save(impl, head, out, len, err);
}

static int
torch_state_load(void *impl, const void *data, size_t len, char **err)
{
	return t.state_load(impl, data, len, err);
}

static int
torch_weights(void *impl, float *out, size_t n, char **err)
{
	return t.weights(impl, out, n, err);
}

static int
torch_average(void *impl, const float *buf, size_t n, double world,
    char **err)
{
	return t.average(impl, buf, n, world, err);
}

const model_backend model_torch_backend = {
	.name = "torch",
	.load = torch_load,
	.close = torch_close,
	.forward = torch_forward,
	.train_begin = torch_train_begin,
	.train_step = torch_train_step,
	.train_end = torch_train_end,
	.save = torch_save,
	.restore = torch_restore,
	.sync_len = torch_sync_len,
	.train_grad = torch_train_grad,
	.train_apply = torch_train_apply,
	.state_save = torch_state_save,
	.state_load = torch_state_load,
	.weights = torch_weights,
	.average = torch_average,
};

int
model_torch_set_threads(int n)
{
	// Before the module is loaded the count waits for it; after, it
	// applies at once.
	pthread_mutex_lock(&t.lock);
	t.threads = n;
	int rv = t.loaded ? t.set_threads(n) : IDN_OK;
	pthread_mutex_unlock(&t.lock);
	return rv;
}

void
model_torch_runtime(char *buf, size_t size)
{
	if (ready(NULL)) {
		t.runtime(buf, size);
	} else {
		snprintf(buf, size, "%s", t.why);
	}
}
