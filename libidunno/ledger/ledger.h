// SPDX-License-Identifier: MIT
// ledger.h: the coordinator's durable record (sqlite, WAL): jobs with their
// specs and states, finished tasks, leases, training progress and a few
// settings (phase, epoch). Every change is one ledger_change applied by
// ledger_apply, which also hands it to the change stream: a standby that
// applies the same changes keeps an identical copy. The only sqlite user;
// it reads no spec (stored as the bytes it is given) and encodes nothing,
// so it needs no layer but core.
#ifndef IDN_LEDGER_LEDGER_H
#define IDN_LEDGER_LEDGER_H

#include "core/core.h"

#define LEDGER_KEY_MAX 64      // a job's name or a setting's key
#define LEDGER_WORKER_MAX 96   // a worker's id, its NUL included
#define LEDGER_ERR_MAX 256     // a job's error, its NUL included

typedef struct ledger ledger;

// A finished task (a row of `batches`) or an open lease (of `leases`: ms
// and the marks 0, end_ms its expiry).
typedef struct ledger_row {
	char worker[LEDGER_WORKER_MAX];
	uint32_t task;         // column `batch`
	uint32_t attempt;
	double ms;             // the model's time
	uint64_t end_ms;       // wall clock the result was in SDFS
	// The worker's wall clock when the lease arrived, the task started,
	// the model began and ended (0: unknown).
	uint64_t lease_ms, start_ms, model_start_ms, model_end_ms;
} ledger_row;

// What a change does; `key` names its job (set, text: the setting).
enum ledger_op {
	LEDGER_SET,     // the setting is value
	LEDGER_TEXT,    // the setting is the text data
	LEDGER_JOB,     // the job anew: spec (data), state, start_ms; no rows
	LEDGER_STATE,   // the job's state, accuracy, err; ended: no leases
	LEDGER_FORGET,  // the job and its rows are gone
	LEDGER_EPOCH,   // a training job's last epoch, loss, acc
	LEDGER_DONE,    // row finished (its first completion counts)
	LEDGER_LEASE,   // row leased until row.end_ms (0: taken back)
};

// One change. Pointers are borrowed for the call that takes it.
typedef struct ledger_change {
	int op;                          // enum ledger_op
	char key[LEDGER_KEY_MAX + 1];
	uint64_t value;                  // set
	const void *data;                // text: the text; job: its spec
	size_t len;
	uint64_t state;                  // job, state
	bool ended;                      // state: final (its leases go)
	uint64_t start_ms;               // job
	double accuracy;                 // state: < 0 unknown
	char err[LEDGER_ERR_MAX];        // state
	uint64_t epoch;                  // epoch
	double loss, acc;                // epoch
	ledger_row row;                  // done, lease
} ledger_change;

// ledger_stream_fn receives each applied change (borrowed for the call)
// on the thread that made it, with the ledger's lock held: keep it short
// (queue it).
typedef void (*ledger_stream_fn)(void *arg, const ledger_change *c);

// ledger_open opens or creates the database at path (its folder must
// exist). IDN_EDB if sqlite refuses it (not a database, unwritable).
int ledger_open(const char *path, ledger **out);
// ledger_open_image replaces the file at path with a database image (a
// checkpoint) and opens it. IDN_ECORRUPT if the image is no ledger.
int ledger_open_image(const char *path, const void *img, size_t len,
    ledger **out);
// ledger_image_get reads a setting from a database image without opening
// it as a file. IDN_ECORRUPT no ledger image, IDN_ENOENT no such key.
int ledger_image_get(const void *img, size_t len, const char *key,
    uint64_t *value);
void ledger_close(ledger *l);
void ledger_set_stream(ledger *l, ledger_stream_fn fn, void *arg);

// ledger_apply applies one change. IDN_EINVAL unknown op, IDN_EDB.
int ledger_apply(ledger *l, const ledger_change *c);

// ledger_begin .. ledger_commit makes the changes between them one
// sqlite transaction (one WAL commit instead of one per change); they
// nest. Changes are streamed as they are applied, as without.
int ledger_begin(ledger *l);
int ledger_commit(ledger *l);

// Changes, built and applied through ledger_apply. spec: the job's spec
// as its encoder wrote it (ledger_jobs hands it back), len bytes.
int ledger_job_put(ledger *l, const char *job, const void *spec, size_t len,
    int state, uint64_t start_ms);
// ended: the state is final (the job's leases go); accuracy < 0: unknown;
// err "" when none.
int ledger_job_state(ledger *l, const char *job, int state, bool ended,
    double accuracy, const char *err);
int ledger_job_forget(ledger *l, const char *job);
// ledger_task_done records row of job finished. The first completion
// of a task counts.
int ledger_task_done(ledger *l, const char *job, const ledger_row *row);
// expires_ms 0: the lease was taken back (the task is to be leased again).
int ledger_lease_put(ledger *l, const char *job, uint32_t task,
    const char *worker, uint32_t attempt, uint64_t expires_ms);
int ledger_train_epoch(ledger *l, const char *job, uint32_t epoch,
    double loss, double acc);
int ledger_set(ledger *l, const char *key, uint64_t value);
// A text setting (NUL-free), e.g. the last allocation for a standby.
int ledger_set_text(ledger *l, const char *key, const char *text);

// Reading back.
int ledger_get(ledger *l, const char *key, uint64_t *value); // IDN_ENOENT
// *text: memory freed with free(); IDN_ENOENT when none.
int ledger_get_text(ledger *l, const char *key, char **text);
typedef struct ledger_job {
	char name[LEDGER_KEY_MAX + 1];
	const void *spec;      // as ledger_job_put had it, borrowed
	size_t spec_len;
	int state;
	uint64_t start_ms;
	double accuracy;
	uint32_t epoch;        // training: last finished epoch
	double loss, acc;      // training: its figures
	char err[LEDGER_ERR_MAX];
} ledger_job;
typedef void (*ledger_job_fn)(void *arg, const ledger_job *j);
int ledger_jobs(ledger *l, ledger_job_fn fn, void *arg);
// row is borrowed for the call.
typedef void (*ledger_task_fn)(void *arg, const char *job,
    const ledger_row *row);
// ledger_tasks calls fn for the finished tasks of job (NULL: of every
// job), by job then task, as ledger_task_done recorded them (marks 0 in
// rows from before they were kept), or, with leases true, for the open
// leases. IDN_EDB.
int ledger_tasks(ledger *l, bool leases, const char *job,
    ledger_task_fn fn, void *arg);

// ledger_image serialises the whole database (a checkpoint): returns
// memory the caller frees with idn_free().
int ledger_image(ledger *l, void **out, size_t *len);
// Counts changes applied since open (for "changed since the checkpoint").
uint64_t ledger_changes(ledger *l);

#endif
