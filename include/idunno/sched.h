// SPDX-License-Identifier: MIT
// sched.h: training and inference jobs run by the cluster's coordinator:
// phases, jobs, waiting, statistics and the fair-time assignment.
#ifndef IDUNNO_SCHED_H
#define IDUNNO_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <idunno/base.h>
#include <idunno/client.h>
#include <idunno/job.h>

#ifdef __cplusplus
extern "C" {
#endif

enum idn_phase { IDN_PHASE_IDLE, IDN_PHASE_TRAIN, IDN_PHASE_INFER };

// Static names: "idle", "train", "infer"; "queued", "running", ...
IDN_API const char *idn_phase_name(int phase);
IDN_API const char *idn_job_state_name(int state);

// An inference job. Strings are borrowed for the call.
typedef struct idn_infer_spec {
	uint32_t size;          // sizeof(idn_infer_spec), set by _init
	const char *job;        // name: [A-Za-z0-9_.-]{1,64}
	const char *model;      // models/<model>/...
	const char *queries;    // SDFS dataset prefix (datasets/fashion-mnist/test)
	const char *weights;    // NULL: models/<model>/weights when present,
	                        // else models/<model>/model.pt
	uint32_t batch;         // > 0
	double rate;            // offered queries per second, > 0
	uint64_t limit;         // queries: the set's first `limit`, 0 = all;
	                        // past its size the set is replayed
} idn_infer_spec;
IDN_API void idn_infer_spec_init(idn_infer_spec *s);

// A training job (idn_model_train_opts's settings). Strings borrowed.
typedef struct idn_train_spec {
	uint32_t size;
	const char *job;
	const char *model;
	const char *data;       // dataset root [datasets/fashion-mnist]
	uint32_t epochs, batch; // [1], [64]
	double lr;              // [0.01]
	int optimizer;          // enum idn_model_optimizer
	int schedule;           // enum idn_model_schedule
	uint64_t limit;         // first `limit` training images, 0 = all
	// Data-parallel: `workers` ranks train one model synchronously, each
	// step on its share of the global `batch` (docs/MODELS.md). [1]
	uint32_t workers;
	double momentum;        // SGD [0.9]
	double weight_decay;    // [0]
	int from;               // enum idn_train_from [IDN_TRAIN_FROM_MODEL]
	uint32_t checkpoint_s;  // training seconds between checkpoints [30]
	// Steps between the ranks' syncs: 1 sums the gradients every step
	// (exactly one process's training with the global batch); K > 1
	// trains locally and averages the weights every K steps (less
	// traffic; docs/MODELS.md). [1]
	uint32_t sync_every;
	// Data augmentation (idn_model_train_opts): IDN_MODEL_AUG_FLIP and a
	// random shift of up to crop_pad pixels. [0, 0]
	uint32_t augment;
	uint32_t crop_pad;
} idn_train_spec;
IDN_API void idn_train_spec_init(idn_train_spec *s);

// All of these find the coordinator through the client's node (any node
// answers with the coordinator it sees alive in the membership).
// IDN_EUNAVAIL: no coordinator reachable. A refusal comes back as its
// code (IDN_EINVAL, IDN_ENOENT, IDN_EEXIST, IDN_EBUSY) with the reason in
// *errmsg (may be NULL): memory the caller frees with idn_free().
IDN_API int idn_phase_start(idn_client *c, int phase, char **errmsg);
IDN_API int idn_phase_stop(idn_client *c, int phase, char **errmsg);
IDN_API int idn_job_add_infer(idn_client *c, const idn_infer_spec *s,
    char **errmsg);
IDN_API int idn_job_add_train(idn_client *c, const idn_train_spec *s,
    char **errmsg);
IDN_API int idn_job_remove(idn_client *c, const char *job, char **errmsg);

// The stable JSON documents (`idunno stats/jobs/assign --json`): *json
// returns memory the caller frees with idn_free(). job NULL: all jobs.
IDN_API int idn_sched_stats(idn_client *c, const char *job, char **json);
IDN_API int idn_sched_jobs(idn_client *c, char **json);
IDN_API int idn_sched_assign(idn_client *c, char **json);

// idn_sched_table is the same as a readable table: what is "stats",
// "jobs" or "assign"; job as for idn_sched_stats. *text as *json.
IDN_API int idn_sched_table(idn_client *c, const char *what,
    const char *job, char **text);

// idn_sched_doc_here asks the node the client was opened on instead of
// the active coordinator: a coordinator node answers from its own state,
// a standby from its replicated copy (read-only, up to ~250 ms behind);
// a node without a coordinator role has no such route (an error).
// text: the table, else the JSON.
IDN_API int idn_sched_doc_here(idn_client *c, const char *what,
    const char *job, bool text, char **out);

// idn_sched_where asks the client's node which node is the active
// coordinator (its membership view) and writes its "host:port" to addr.
// IDN_EUNAVAIL: none is alive; IDN_ETOOBIG: cap too small.
IDN_API int idn_sched_where(idn_client *c, char *addr, size_t cap);

// idn_sched_lease_probe makes one lease call as the workers do
// (docs/SCHED.md, "The lease call"), for benchmarks and checks of the
// coordinator: the stand-in worker named worker gives back every lease it
// holds, then asks for up to want batches of the running inference jobs;
// *got (may be NULL) gets how many it was given. coord is the
// coordinator's "host:port" (idn_sched_where), or NULL to ask the
// client's node first. The coordinator counts the stand-in as a live
// worker until it has been silent for a lease time (10 s), so its share
// of the allocation is missed by real workers meanwhile.
IDN_API int idn_sched_lease_probe(idn_client *c, const char *coord,
    const char *worker, uint32_t want, uint32_t *got);

// idn_job_wait polls until the job is DONE (IDN_OK), FAILED or REMOVED
// (IDN_EINVAL) or timeout_ms passes (IDN_ETIMEDOUT; <= 0 waits forever).
// *state (may be NULL) gets the last state seen. IDN_ENOENT: no such job.
// No coordinator reachable, or a node shedding load, is waited out.
IDN_API int idn_job_wait(idn_client *c, const char *job,
    idn_duration timeout_ms, int *state);

// idn_job_result writes the job's assembled output (results/JOB/output:
// `query,predicted,score,label` lines in query order) to the local path
// ("-" for stdout). IDN_ENOENT while the job has no output.
IDN_API int idn_job_result(idn_client *c, const char *job, const char *path);

#ifdef __cplusplus
}
#endif
#endif
