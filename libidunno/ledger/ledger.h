// SPDX-License-Identifier: MIT
// ledger.h: the coordinator's durable record (sqlite, WAL): jobs with their
// specs and states, finished batches, leases, training progress and a few
// settings (phase, epoch). Every change is one msgpack record applied by
// ledger_apply, which also hands it to the change stream: a standby that
// applies the same records keeps an identical copy. The only sqlite user.
#ifndef IDN_LEDGER_LEDGER_H
#define IDN_LEDGER_LEDGER_H

#include "record/record.h"

typedef struct ledger ledger;

// ledger_stream_fn receives each applied change (msgpack bytes, borrowed
// for the call) on the thread that made it, with the ledger's lock held:
// keep it short (queue the bytes).
typedef void (*ledger_stream_fn)(void *arg, const uint8_t *change,
    size_t len);

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

// ledger_apply applies one change record. IDN_EPROTO bad record, IDN_EDB.
int ledger_apply(ledger *l, const uint8_t *change, size_t len);

// ledger_begin .. ledger_commit makes the changes between them one
// sqlite transaction (one WAL commit instead of one per change); they
// nest. Changes are streamed as they are applied, as without.
int ledger_begin(ledger *l);
int ledger_commit(ledger *l);

// Changes, built as records and applied through ledger_apply.
int ledger_job_put(ledger *l, const record_spec *s, int state,
    uint64_t start_ms);
// accuracy < 0: unknown; err "" when none.
int ledger_job_state(ledger *l, const char *job, int state, double accuracy,
    const char *err);
int ledger_job_forget(ledger *l, const char *job);
// ledger_batch_done records batch d->batch of d->job done by worker: its
// attempt, ms, end_ms and the worker's marks (lease_ms .. model_end_ms);
// busy_ms and rc are not kept. The first completion of a batch counts.
int ledger_batch_done(ledger *l, const char *worker, const record_done *d);
// expires_ms 0: the lease was taken back (the batch is to be leased again).
int ledger_lease_put(ledger *l, const char *job, uint32_t batch,
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
	record_spec spec;
	int state;
	uint64_t start_ms;
	double accuracy;
	uint32_t epoch;        // training: last finished epoch
	double loss, acc;      // training: its figures
	char err[256];
} ledger_job;
typedef void (*ledger_job_fn)(void *arg, const ledger_job *j);
int ledger_jobs(ledger *l, ledger_job_fn fn, void *arg);
// d is borrowed for the call; busy_ms and rc are 0.
typedef void (*ledger_batch_fn)(void *arg, const char *worker,
    const record_done *d);
// ledger_batches calls fn for the finished batches of job (NULL: of every
// job), by job then batch, as ledger_batch_done recorded them (marks 0 in
// rows from before they were kept), or, with leases true, for the open
// leases (ms and marks 0, end_ms the expiry). IDN_EDB.
int ledger_batches(ledger *l, bool leases, const char *job,
    ledger_batch_fn fn, void *arg);

// ledger_image serialises the whole database (a checkpoint): returns
// memory the caller frees with idn_free().
int ledger_image(ledger *l, void **out, size_t *len);
// Counts changes applied since open (for "changed since the checkpoint").
uint64_t ledger_changes(ledger *l);

#endif
