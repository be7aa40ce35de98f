// SPDX-License-Identifier: MIT
// coord_int.h (private to coord/): the coordinator's tables and the
// functions its files share, by file. One lock (coord.lock) guards all of
// it. Calls go one way: coord.c (dispatch, open, close) -> admit.c,
// lease.c, timers.c, restore.c, report.c; those -> train.c (and timers.c
// -> lease.c); all -> table.c, which calls nothing of coord/.
#ifndef IDN_COORD_COORD_INT_H
#define IDN_COORD_COORD_INT_H

#include <pthread.h>

#include "coord/coord.h"
#include "ledger/ledger.h"
#include "sched/fair.h"
#include "sched/job.h"
#include "sched/stats.h"

#define MAX_JOBS 64
#define MAX_WORKERS 256
#define LEASE_RING 4096

// A rank of a training job's generation (coord/train.c).
typedef struct crank {
	char worker[96];
	char addr[RECORD_ADDR_MAX];
	uint64_t expires;      // wall ms
	bool issued;           // its lease was sent
	bool finished;         // ended its last epoch (rank 0 then stores)
} crank;

typedef struct cjob {
	record_spec spec;
	int state;
	uint64_t key;         // the allocator's job key
	uint64_t start_ms;
	sched_job *sj;        // infer
	sched_stats *proc;    // per-query service time
	sched_stats *lat;     // per-query arrival -> result in SDFS
	double task_ms;       // moving mean of measured task service time
	uint32_t nbusy;       // measurements in it (the first ones weigh more)
	double rec_ms;        // task_ms and nbusy as last in the ledger
	uint32_t rec_busy;
	double accuracy;      // -1 unknown
	bool assembling;
	char err[256];
	// train: its generation of ranks (coord/train.c)
	uint32_t gen;          // the ranks' lease attempt, bumped per set
	uint32_t nranks;       // 0: no generation running
	crank ranks[RECORD_RANKS_MAX];
	bool trained;          // a generation ran: a later one may be smaller
	char wait[96];         // why a queued job waits ("" when it does not)
	uint32_t epoch;
	double loss, acc;
} cjob;

typedef struct cworker {
	char id[96];
	uint64_t key;
	bool alive;
	uint64_t seen_ms;      // clock ms of its last lease call
	uint64_t served_key[MAX_JOBS];
	double served_ms[MAX_JOBS];
	uint64_t row[MAX_JOBS];  // job keys of its allocation row, last call
	size_t nrow;
	bool row_set;            // row holds a call's (not after a takeover)
	bool reconciled;         // its first call to this coordinator came
	bool member;             // the membership reported it
	uint64_t last_call_ms;   // wall ms of its last lease call
	char addr[RECORD_ADDR_MAX]; // its node's RPC address, from its calls
} cworker;

struct coord {
	coord_host h;
	char self[96];
	ledger *led;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	core_logger lg;       // the host's, from h
	core_logq logq;       // lines logged under the lock (coord_note)
	bool stop;
	pthread_t ticker, slow;
	int phase;
	cjob *jobs[MAX_JOBS];
	size_t njobs;
	uint64_t next_key;
	cworker workers[MAX_WORKERS];
	size_t nworkers;
	sched_alloc alloc;
	bool have_alloc;
	bool dirty;           // reassign at the next tick
	bool want_checkpoint;
	uint64_t last_assign_ms;
	uint64_t hold_until_ms; // clock ms: no new leases before (coord_hold)
	uint64_t lease_ops;
	// The coordinator's own time of its last LEASE_RING lease calls (us,
	// from the request's decoding to its reply, lock waits included).
	uint32_t lease_us[LEASE_RING];
	uint64_t epoch;
	bool own_led;         // closes the ledger (a standby's view does not)
	bool leased_any;      // the first lease of this epoch was logged
	uint64_t open_ms;     // clock ms at open
	char standby[96];     // "" when no standby follows
	char *assign_rec;     // the allocation as last written to the ledger
	_Atomic bool superseded; // h.sync saw a newer coordinator
	bool fenced;          // not acting, whatever it hears (coord_fence)
	size_t quorum_need;   // the majority rule (coord_set_quorum)
	uint64_t quorum_window_ms, standby_seen_ms;
};

#define COORD_NO_MAJORITY "no majority of the cluster reachable; " \
    "coordinator changing, retry"
#define COORD_SUPERSEDED "a newer coordinator is active; coordinator " \
    "changing, retry"

// ---- table.c: the tables, the majority rule, replies (the lock held)

// The epoch replies carry: the answering coordinator's, set by
// coord_handle for the request on this thread.
extern _Thread_local uint64_t coord_reply_epoch;
// coord_refuse writes a refusal {epoch, err} and returns rv.
int coord_refuse(wire_wr *reply, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
// coord_note queues a line (the lock held), logged once it is let go:
// every unlock of coord.lock is core_unlock_log. Without the lock, log
// with core_logf(&c->lg, ...).
#define coord_note(c, ...) core_logq_add(&(c)->logq, __VA_ARGS__)
// Lookups take the tables read-only; the job found is the caller's to
// change when it holds the coordinator writable (as strchr does).
cjob *coord_find_job(const coord *c, const char *name);
cjob *coord_job_by_key(const coord *c, uint64_t key);
// coord_find_worker: worker `id`, else (create) a new one in a free slot.
cworker *coord_find_worker(coord *c, const char *id, bool create);
int coord_job_new(coord *c, const record_spec *s, int state,
    uint64_t start_ms, uint64_t total, cjob **out);
void coord_job_free(cjob *j);
void coord_job_measure(cjob *j, const ledger_row *d, uint64_t at);
uint32_t coord_unit(const cjob *j);
bool coord_infer_active(const cjob *j);
sched_fair_job coord_fair_job(const cjob *j, uint64_t now);
// The majority rule (coord_set_quorum) now; see coord_quorum.
bool coord_quorum_locked(const coord *c, size_t *heard, uint64_t *since_ms);
// Whether it acts now: the rule holds and it is not fenced.
bool coord_acting_locked(const coord *c);
// coord_reassign re-runs the allocation and records it in the ledger.
void coord_reassign(coord *c, uint64_t now);

// ---- train.c: training jobs' generations of ranks (the lock held)

// coord_train_job_of: the job in which worker `id` holds a rank (*rank).
cjob *coord_train_job_of(const coord *c, const char *id, int *rank);
// coord_train_lease: w's rank lease if it has one to receive, else a new
// generation of a job waiting for one, formed around w.
void coord_train_lease(coord *c, cworker *w, uint64_t now, record_lease *out,
    size_t *n);
// coord_train_renew: whether held lease h is w's rank of a running
// generation (then renewed); false: the worker drops it.
bool coord_train_renew(coord *c, cworker *w, const record_held *h,
    uint64_t now);
// coord_train_end ends j's generation (a rank lost, the job removed or
// done): its ranks' leases are dropped at their next call.
void coord_train_end(coord *c, cjob *j, int level, const char *why);
// coord_train_gone: w failed; returns the ranks it held (0 or 1).
size_t coord_train_gone(coord *c, cworker *w);
// coord_train_expire ends the generations with a rank not renewed.
void coord_train_expire(coord *c, uint64_t now);
// coord_train_progress takes a rank's epoch report or its end.
void coord_train_progress(coord *c, cworker *w, const record_progress *p);
// coord_train_restore takes a ledger lease row of training job j.
void coord_train_restore(cjob *j, const char *worker,
    uint32_t rank, uint32_t gen, uint64_t expires, uint64_t now);

// ---- restore.c

// coord_restore opens c's ledger (h.led, else <data>/coord/ledger.db,
// else the SDFS checkpoint) and rebuilds the tables from it.
int coord_restore(coord *c);

// ---- admit.c, lease.c: requests (each takes the lock)

int coord_on_phase(coord *c, const wire_val *b, wire_wr *reply);
int coord_on_add(coord *c, const wire_val *b, wire_wr *reply);
int coord_on_remove(coord *c, const wire_val *b, wire_wr *reply);
int coord_on_state(coord *c, const wire_val *b, wire_wr *reply);
int coord_on_lease(coord *c, const wire_val *b, wire_wr *reply);
// coord_worker_gone: w failed or went silent; its leases go back now
// (the lock held).
void coord_worker_gone(coord *c, cworker *w, const char *why);

// ---- timers.c

// coord_timers_start starts the ticker and the slow thread; IDN_ESYS.
// coord_timers_stop stops and joins those that started.
int coord_timers_start(coord *c);
void coord_timers_stop(coord *c);

// ---- report.c

// Read-only, with the lock held: c is const, and nothing of coord/ but
// table.c's and train.c's accessors is called.
enum { COORD_DOC_STATS, COORD_DOC_JOBS, COORD_DOC_ASSIGN };
// coord_report_doc appends document `doc`, as JSON or (text) a table, of
// job `only` (NULL: every job) to out.
void coord_report_doc(const coord *c, int doc, const char *only, bool text,
    core_buf *out);
// coord_report_view calls fn with a snapshot of c (coord_view_with).
// IDN_ENOMEM.
int coord_report_view(const coord *c, coord_view_fn fn, void *arg);

#endif
