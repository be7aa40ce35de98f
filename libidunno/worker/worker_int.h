// SPDX-License-Identifier: MIT
// worker_int.h (private to worker/): the worker's state and the functions
// its files share, by file. The lease loop (one thread talks to the
// coordinator), the executor (one thread runs tasks in lease order:
// inputs and model), the writers (WRITERS threads put the batches'
// results into SDFS while the executor goes on with the next batch), a
// model loader and a shard prefetcher share a queue of leases not
// started, the running one, the results being written, and the reports
// not yet sent, under one lock. A batch is reported done only once its
// result is in SDFS. Calls go one way: worker.c (open, close) -> lease.c,
// exec.c, inputs.c; exec.c -> inputs.c, train.c; each -> common.c, which
// calls nothing of worker/.
#ifndef IDN_WORKER_WORKER_INT_H
#define IDN_WORKER_WORKER_INT_H

#include <pthread.h>

#include <idunno/catalog.h>
#include <idunno/model.h>

#include "record/record.h"
#include "worker/worker.h"

#define QUEUE_MAX 32        // leases held, not started (WORKER_HOLD_MS)
#define REPORTS_MAX 256
// Completions a coordinator acknowledged, kept RECENT_MS: a standby that
// promotes itself may lack the last ones its pulls had not reached yet,
// so they go again to the first coordinator of a newer epoch (which
// counts a batch once) instead of the batches running again.
#define RECENT_MAX 256
#define RECENT_MS 10000
#define MODELS_MAX 4
#define SETS_MAX 4
#define SHARDS_MAX 2

// Results written at once, and waiting to be (the executor waits when
// all slots are taken: the writes set the pace then).
#define WRITERS 4
#define WRITES_MAX 8

enum { SLOT_FREE, SLOT_QUEUED, SLOT_WRITING };

typedef struct {
	int state;
	uint64_t seq;           // FIFO order of the queued ones
	record_lease l;
	core_buf out;           // the batch's result lines
	record_done d;          // its report but for end_ms and rc
	uint64_t start;         // clock ms its write started
} write_slot;

typedef struct {
	char key[2 * RECORD_PATH_MAX];
	idn_model *m;
	idn_model_info info;
	uint64_t used;
} model_slot;

typedef struct {
	char prefix[RECORD_PATH_MAX];
	record_manifest man;
	uint64_t used;
} set_slot;

typedef struct {
	char name[RECORD_PATH_MAX + 16];
	void *blob;
	idn_dataset_shard s;
	uint64_t used;
} shard_slot;

struct worker {
	worker_host h;
	char self[96];
	char addr[RECORD_ADDR_MAX];
	pthread_mutex_t lock;
	core_logger lg;           // the node's, from h
	core_logq logq;           // lines logged under the lock
	// One condition per kind of waiter, so a wakeup reaches only the
	// thread it concerns (a broadcast to all cost hundreds of needless
	// wakeups a second, each a preemption of the model on a busy CPU).
	pthread_cond_t cv_loop;   // reports to send, fewer leases held
	pthread_cond_t cv_exec;   // new leases, a free write slot, a shard
	pthread_cond_t cv_write;  // a result queued
	pthread_cond_t cv_pf;     // a shard or a model to fetch
	bool stop;
	bool have_loop, have_exec;
	pthread_t loop, exec;
	record_lease queue[QUEUE_MAX];
	size_t nq;
	record_lease cur;
	bool running;
	bool abort_cur;
	uint64_t cur_start;       // clock ms the running task started
	double task_ms;           // moving mean of an inference task's time
	bool stuck_logged;
	bool released;            // the leases were given back
	record_done done[REPORTS_MAX];
	size_t ndone;
	struct {
		record_done d;
		uint64_t epoch;   // of the coordinator that acknowledged it
		uint64_t at;      // clock ms of the acknowledgement
	} recent[RECENT_MAX];
	size_t nrecent;           // oldest first
	record_progress prog[REPORTS_MAX];
	size_t nprog;
	char coord[IDN_ADDR_MAX];
	uint64_t epoch;
	write_slot wr[WRITES_MAX];
	uint64_t wr_seq;
	pthread_t writers[WRITERS];
	int nwriters;
	// The query shard the next task will need, fetched by its own thread
	// while the executor runs this one (a shard holds many batches).
	pthread_t pf;
	bool have_pf;
	char pf_want[RECORD_PATH_MAX + 16];   // requested, not yet started
	char pf_name[RECORD_PATH_MAX + 16];   // being fetched or fetched
	bool pf_busy;
	void *pf_blob;
	size_t pf_len;
	// A model the queue will need, loaded by its own thread while the
	// executor runs tasks whose model is loaded: a first ResNet-18 load
	// (45 MB from SDFS) took 4-9 s with 8 workers loading at once, and a
	// job's leases queued behind it waited that long.
	pthread_t ld;
	bool have_ld;
	record_spec ld_want;      // requested (ld_want.model[0]: none)
	char ld_key[2 * RECORD_PATH_MAX]; // being loaded or loaded
	char ld_failed[2 * RECORD_PATH_MAX]; // its last failure: not again
	bool ld_busy;
	idn_model *ld_m;          // loaded, for the executor to take
	// Executor only.
	model_slot models[MODELS_MAX];
	set_slot sets[SETS_MAX];
	shard_slot shards[SHARDS_MAX];
	uint64_t tick;
};

// ---- common.c: what every thread uses

// worker_log logs without the lock; with it held, lines are queued with
// core_logq_add(&w->logq, ...) and logged once it is let go (every unlock
// of w->lock is core_unlock_log).
#define worker_log(w, ...) core_logf(&(w)->lg, __VA_ARGS__)
// worker_wait_ms waits on cv (w->lock held) at most ms.
void worker_wait_ms(worker *w, pthread_cond_t *cv, int ms);

// ---- lease.c: the lease loop

void *worker_lease_main(void *arg);
// worker_abort_cur stops the running task (lock held).
void worker_abort_cur(worker *w);

// ---- inputs.c: models, query sets and shards (the executor's caches,
// filled ahead by the loader and the prefetcher threads)

void *worker_loader_main(void *arg);
void *worker_prefetch_main(void *arg);
// The cache key of spec s's model.
void worker_model_key(const record_spec *s, char *key, size_t cap);
model_slot *worker_cached_model(worker *w, const char *key);
// The model of s: cached, the loader's, or loaded now (*rc on NULL).
model_slot *worker_get_model(worker *w, const record_spec *s, int *rc);
// worker_adopt takes the loader's model into the cache (lock held on
// entry and exit; released meanwhile: the cache is the executor's).
void worker_adopt(worker *w);
set_slot *worker_get_set(worker *w, const char *prefix, int *rc);
const idn_dataset_shard *worker_get_shard(worker *w, const char *prefix,
    uint32_t k, int *rc);
// worker_prefetch asks the prefetcher for shard k of prefix unless it is
// cached or asked.
void worker_prefetch(worker *w, const char *prefix, uint32_t k);
// worker_inputs_free frees the caches (the threads stopped).
void worker_inputs_free(worker *w);

// ---- train.c

// worker_run_train runs the training task l, one rank of its job.
void worker_run_train(worker *w, const record_lease *l);

// ---- exec.c: the executor and the writers

void *worker_exec_main(void *arg);
void *worker_writer_main(void *arg);

#endif
