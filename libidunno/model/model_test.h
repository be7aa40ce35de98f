// SPDX-License-Identifier: MIT
// model_test.h: what the model test's files share: loading models and
// Fashion-MNIST, the training callbacks' records, the ranks on threads;
// and each file's tests, which model_test.c's main runs.
#ifndef IDN_MODEL_TEST_H
#define IDN_MODEL_TEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "model/model.h"

#define FASHION "/usr/share/datasets/fashion-mnist"
#define IMG 784

// A sim model's descriptor: 1x28x28 in, 10 classes, no service time.
extern const char sim_desc[];

// models_file reads build/models/NAME, or returns false (test skips) when
// the runner did not say where the build is.
bool models_file(const char *name, core_buf *out);
// load_torch loads build/models/NAME.pt with NAME.desc (NULL: no build).
idn_model *load_torch(const char *name);
idn_model *load_sim(const char *desc);
bool have_fashion(void);
// fashion reads Fashion-MNIST's "train" or "t10k" set.
idn_dataset *fashion(const char *set);

typedef struct {
	unsigned calls;
	unsigned stop_at;
	double lr[4];
	double acc[4];
} sched_seen;

typedef struct {
	unsigned calls;
	uint64_t last, total;
	bool ordered; // each report one batch after the previous
} progress_seen;

// An allreduce between ranks on threads of this process, for the
// data-parallel tests (a test helper, not library code): each rank's hook
// leaves its buffer, rank 0 sums them in rank order, and every rank copies
// the one sum back, so all ranks get the same bits.
typedef struct {
	pthread_barrier_t bar;
	unsigned world;
	float *slot[4];
	size_t n[4];
	int kind[4];
	unsigned calls[4];
	unsigned averages[4]; // calls of kind IDN_MODEL_SYNC_AVERAGE
	float shares[4]; // the last step's b_r of each rank
	float *sum;
	size_t cap;
	bool bad;        // ranks disagreed on n or kind, or an unknown kind
	double labels;   // the summed sim "gradient" 1: labels of all steps
} allreduce;

typedef struct {
	allreduce *ar;
	unsigned rank;
} rank_hook;

typedef struct {
	idn_model *m;
	idn_model_train_opts o;
	idn_model_data train;
	rank_hook hook;
	void *arg;          // if set: this rank's step, control, epoch arg
	const void *state;  // if set: this rank's resume_state
	size_t state_len;
	int rv;
} rank_run;

// What each rank's on_step saw (sim, 2 ranks).
typedef struct {
	unsigned rank;
	unsigned n;
	uint32_t epoch[16];
	uint64_t step[16];
	uint32_t control[16];
	double loss[16];
	unsigned controls; // step_control calls
	bool wrong_rank;   // step_control called on a rank other than 0
} control_seen;
// Training callbacks (model_train_test.c): on_sched records sched_seen,
// on_batch progress_seen.
int on_sched(void *arg, const idn_model_epoch *e);
void on_batch(void *arg, uint64_t done, uint64_t total);

// Ranks on threads (model_dp_test.c). sum_hook is the allreduce of
// rank_hook's rank; same_hook that of a world of one (counts its calls in
// an unsigned).
int sum_hook(void *arg, int kind, float *buf, size_t n);
int same_hook(void *arg, int kind, float *buf, size_t n);
void *run_rank(void *arg);
void train_ranks(rank_run *run, unsigned world, allreduce *a,
    const idn_model_train_opts *o, const idn_model_data *train);
float *weights(idn_model *m, size_t *n);
double max_diff(const float *a, const float *b, size_t n);
// on_control and control_step record into control_seen; rank 0's 3rd
// word is 0x12345, its 8th 99, which stops training.
uint32_t on_control(void *arg);
int control_step(void *arg, const idn_model_step *s);

// model_train_test.c
void test_train_progress(void **st);
void test_train_schedule(void **st);
void test_torch_train_lenet(void **st);
void test_torch_resume(void **st);
void test_torch_train_adam(void **st);
void test_dp_resume_state(void **st);
// model_dp_test.c
void test_dp_two_ranks(void **st);
void test_dp_control(void **st);
void test_dp_bad_opts(void **st);
void test_train_first_step(void **st);
// model_avg_test.c
void test_dp_average_opts(void **st);
void test_dp_average_sim(void **st);
void test_dp_average_ranks(void **st);
void test_dp_average_learns(void **st);
void test_dp_average_resume(void **st);

#endif
