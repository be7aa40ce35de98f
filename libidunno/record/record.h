// SPDX-License-Identifier: MIT
// record.h: the scheduler's records, which the ledger stores and the
// coordinator and workers exchange: job specs, the worker's lease call
// (completions, renewals, training progress) and its reply, and the
// dataset manifest. Bodies are maps; docs/SCHED.md lists every type and
// its fields.
#ifndef IDN_RECORD_RECORD_H
#define IDN_RECORD_RECORD_H

#include <idunno/job.h>
#include <idunno/model.h>

#include "wire/wire.h"

#define RECORD_NAME_MAX 64      // job and model names
#define RECORD_PATH_MAX 256    // SDFS names carried in specs
#define RECORD_LIST_MAX 4096   // most entries of one list in a message
#define RECORD_GROUP_MAX 256   // most batches in one task and result file
#define RECORD_RANKS_MAX 16    // most workers of one training job
#define RECORD_ADDR_MAX 64     // a node's RPC address "host:port"
#define RECORD_PEERS_MAX (RECORD_RANKS_MAX * RECORD_ADDR_MAX)

// A job's spec as the coordinator keeps it (owned copies of the strings).
typedef struct record_spec {
	int kind;                        // enum idn_job_kind
	char job[RECORD_NAME_MAX + 1];
	char model[RECORD_NAME_MAX + 1];
	char queries[RECORD_PATH_MAX];    // infer: dataset prefix
	char weights[RECORD_PATH_MAX];    // infer: resolved weights file
	char data[RECORD_PATH_MAX];       // train: dataset root
	uint32_t batch;
	double rate;                     // infer
	uint64_t limit;
	uint32_t epochs;                 // train
	double lr;
	int optimizer;
	int schedule;
	// infer: batches per task and result file (results are grouped as
	// batches [kG, (k+1)G)), fixed by the coordinator at admission; 1 in
	// specs that lack it.
	uint32_t group;
	// train (absent in older specs: the defaults in brackets)
	uint32_t workers;                // ranks training together [1]
	double momentum;                 // SGD [0.9]
	double weight_decay;             // [0]
	int from;                        // enum idn_train_from [model]
	uint32_t checkpoint_s;           // seconds between checkpoints [30]
	uint32_t sync_every;             // steps between the ranks' syncs [1]
	uint32_t augment;                // IDN_MODEL_AUG_* bits [0]
	uint32_t crop_pad;               // random shift in pixels [0]
} record_spec;

// record_name_ok: [A-Za-z0-9_.-]{1,64}.
bool record_name_ok(const char *name);
// record_spec_check returns NULL or a static reason the spec is refused
// (name, batch, rate, epochs, lr, optimizer, schedule, workers, momentum,
// weight decay, from, checkpoint interval).
const char *record_spec_check(const record_spec *s);
void record_spec_put(wire_wr *w, const record_spec *s);
int record_spec_get(const wire_val *v, record_spec *s);
// The training options of a train spec.
void record_spec_train_opts(const record_spec *s, idn_model_train_opts *o);

// A finished task as the worker reports it (wire key "batch": the task).
typedef struct record_done {
	char job[RECORD_NAME_MAX + 1];
	uint32_t task;
	uint32_t attempt;
	double ms;          // service time on the worker (the model)
	double busy_ms;     // the whole task: inputs, model, result write
	uint64_t end_ms;    // wall clock when the result was in SDFS
	int rc;             // IDN_OK, else the task failed on this worker
	// The worker's wall clock at the task's steps, kept for
	// results/JOB/timing; 0 when unknown (a sender without them).
	uint64_t lease_ms;         // the reply with its lease arrived
	uint64_t start_ms;         // the executor started it
	uint64_t model_start_ms;   // the model began its first batch
	uint64_t model_end_ms;     // and ended its last
} record_done;

// A lease the worker still holds (renewal).
typedef struct record_held {
	char job[RECORD_NAME_MAX + 1];
	uint32_t task;
	uint32_t attempt;
	bool running;      // started (a queued lease may be taken back)
} record_held;

// Training progress: one per epoch finished, and the end (done true).
typedef struct record_progress {
	char job[RECORD_NAME_MAX + 1];
	uint32_t attempt;
	uint32_t epoch;
	double loss;
	double acc;
	bool done;
	int rc;                 // with done: IDN_OK or why it failed
	char err[200];
} record_progress;

typedef struct record_lease_req {
	char worker[96];
	char addr[RECORD_ADDR_MAX]; // its node's RPC address ("" if unsent)
	uint64_t epoch;         // the coordinator epoch the worker knows
	uint32_t want;          // leases it can take now
	bool release;           // give every lease back (a task is stuck)
	record_done *done;
	size_t ndone;
	record_held *held;
	size_t nheld;
	record_progress *train;
	size_t ntrain;
} record_lease_req;

// One lease of task `task` (wire key "batch"). Infer: queries [first,
// first + count) of spec.queries. Train: rank `task` of `world` ranks in generation `attempt` (bumped
// whenever the set of ranks changes), the ranks' RPC addresses in rank
// order, space separated, in `peers`.
typedef struct record_lease {
	record_spec spec;
	uint32_t task;
	uint32_t attempt;
	uint64_t first;
	uint32_t count;
	uint64_t expires_ms;    // wall clock
	uint64_t ready_ms;      // infer: wall clock its last query arrives
	                        // (leased ahead: not started before; 0 in
	                        // replies that lack it)
	uint64_t got_ms;        // the worker's own, not sent: wall clock
	                        // the reply arrived (record_done.lease_ms)
	uint32_t world;         // train: ranks in the generation
	char peers[RECORD_PEERS_MAX];
} record_lease;

typedef struct record_lease_rep {
	uint64_t epoch;
	record_lease *leases;
	size_t n;
	// Leases the coordinator no longer counts as this worker's (job
	// removed, task done elsewhere): the worker drops them.
	record_held *drop;
	size_t ndrop;
} record_lease_rep;

void record_lease_req_put(wire_wr *w, const record_lease_req *r);
// Allocates the lists (free with record_lease_req_clear). IDN_EPROTO.
int record_lease_req_get(const wire_val *v, record_lease_req *r);
void record_lease_req_clear(record_lease_req *r);
void record_lease_rep_put(wire_wr *w, const record_lease_rep *r);
int record_lease_rep_get(const wire_val *v, record_lease_rep *r);
void record_lease_rep_clear(record_lease_rep *r);

// A dataset manifest ("count = N", "shard_size = S", "shards = K",
// "input = CxHxW"). IDN_ECORRUPT if a field is missing or out of range.
typedef struct record_manifest {
	uint64_t count;
	uint32_t shard_size;
	uint32_t shards;
	uint32_t c, h, w;
} record_manifest;
int record_manifest_parse(const char *text, size_t len, record_manifest *m);

// The name of a task's result, by the index of its first batch (of
// spec.batch queries): results/JOB/batch-NNNNNN.
void record_result_name(char *buf, size_t cap, const char *job,
    uint32_t first_batch);

#endif
