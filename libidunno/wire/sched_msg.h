// SPDX-License-Identifier: MIT
// sched_msg.h: the scheduler's messages: job specs, the worker's lease
// call (completions, renewals, training progress) and its reply, and the
// dataset manifest. Every coordinator reply carries its epoch. Bodies are
// maps; docs/SCHED.md lists every type and its fields.
#ifndef IDN_WIRE_SCHED_MSG_H
#define IDN_WIRE_SCHED_MSG_H

#include <idunno/model.h>
#include <idunno/sched.h>

#include "wire/wire.h"

#define SCHED_JOB_MAX 64      // job and model names
#define SCHED_PATH_MAX 256    // SDFS names carried in specs
#define SCHED_LIST_MAX 4096   // most entries of one list in a message

// A job's spec as the coordinator keeps it (owned copies of the strings).
typedef struct sched_spec {
	int kind;                        // enum idn_job_kind
	char job[SCHED_JOB_MAX + 1];
	char model[SCHED_JOB_MAX + 1];
	char queries[SCHED_PATH_MAX];    // infer: dataset prefix
	char weights[SCHED_PATH_MAX];    // infer: resolved weights file
	char data[SCHED_PATH_MAX];       // train: dataset root
	uint32_t batch;
	double rate;                     // infer
	uint64_t limit;
	uint32_t epochs;                 // train
	double lr;
	int optimizer;
	int schedule;
} sched_spec;

// sched_job_name_ok: [A-Za-z0-9_.-]{1,64}.
bool sched_name_ok(const char *name);
void sched_spec_from_infer(sched_spec *s, const idn_infer_spec *in);
void sched_spec_from_train(sched_spec *s, const idn_train_spec *in);
// sched_spec_check returns NULL or a static reason the spec is refused
// (name, batch, rate, epochs, lr, optimizer, schedule).
const char *sched_spec_check(const sched_spec *s);
void sched_spec_put(wire_wr *w, const sched_spec *s);
int sched_spec_get(const wire_val *v, sched_spec *s);
// The training options of a train spec.
void sched_spec_train_opts(const sched_spec *s, idn_model_train_opts *o);

// A finished batch as the worker reports it.
typedef struct sched_done {
	char job[SCHED_JOB_MAX + 1];
	uint32_t batch;
	uint32_t attempt;
	double ms;          // service time on the worker (the model)
	double busy_ms;     // the whole task: inputs, model, result write
	uint64_t end_ms;    // wall clock when the result was in SDFS
	int rc;             // IDN_OK, else the batch failed on this worker
} sched_done;

// A lease the worker still holds (renewal).
typedef struct sched_held {
	char job[SCHED_JOB_MAX + 1];
	uint32_t batch;
	uint32_t attempt;
} sched_held;

// Training progress: one per epoch finished, and the end (done true).
typedef struct sched_progress {
	char job[SCHED_JOB_MAX + 1];
	uint32_t attempt;
	uint32_t epoch;
	double loss;
	double acc;
	bool done;
	int rc;                 // with done: IDN_OK or why it failed
	char err[200];
} sched_progress;

typedef struct sched_lease_req {
	char worker[96];
	uint64_t epoch;         // the coordinator epoch the worker knows
	uint32_t want;          // leases it can take now
	sched_done *done;
	size_t ndone;
	sched_held *held;
	size_t nheld;
	sched_progress *train;
	size_t ntrain;
} sched_lease_req;

// One lease. Infer: queries [first, first + count) of spec.queries.
// Train: the whole spec.
typedef struct sched_lease {
	sched_spec spec;
	uint32_t batch;
	uint32_t attempt;
	uint64_t first;
	uint32_t count;
	uint64_t expires_ms;    // wall clock
} sched_lease;

typedef struct sched_lease_rep {
	uint64_t epoch;
	sched_lease *leases;
	size_t n;
	// Leases the coordinator no longer counts as this worker's (job
	// removed, batch done elsewhere): the worker drops them.
	sched_held *drop;
	size_t ndrop;
} sched_lease_rep;

void sched_lease_req_put(wire_wr *w, const sched_lease_req *r);
// Allocates the lists (free with sched_lease_req_clear). IDN_EPROTO.
int sched_lease_req_get(const wire_val *v, sched_lease_req *r);
void sched_lease_req_clear(sched_lease_req *r);
void sched_lease_rep_put(wire_wr *w, const sched_lease_rep *r);
int sched_lease_rep_get(const wire_val *v, sched_lease_rep *r);
void sched_lease_rep_clear(sched_lease_rep *r);

// A dataset manifest ("count = N", "shard_size = S", "shards = K",
// "input = CxHxW"). IDN_ECORRUPT if a field is missing or out of range.
typedef struct sched_manifest {
	uint64_t count;
	uint32_t shard_size;
	uint32_t shards;
	uint32_t c, h, w;
} sched_manifest;
int sched_manifest_parse(const char *text, size_t len, sched_manifest *m);

// The name of batch k's result: results/JOB/batch-NNNNNN.
void sched_batch_name(char *buf, size_t cap, const char *job, uint32_t k);

#endif
