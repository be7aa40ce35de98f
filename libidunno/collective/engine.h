// SPDX-License-Identifier: MIT
// engine.h: private to the allreduce engine's files: coll.c (groups and
// calls) on top, recv.c (the coll.part handler, the mailbox of parked
// parts), send.c (the sender threads), engine.c (what they all share).
// Each calls only the files after it in that list.
//
// One lock (c->lock) guards everything here. Lock order: c->lock only;
// no call into rpc is made with it held. The floats themselves are added
// or copied outside the lock: a receive slot is claimed (BUSY) under the
// lock first, so no two threads touch one region, and the region is the
// only one that phase touches (the layout's invariant). A call returns
// only once no thread reads (readers) or writes (appliers) its buffer.
#ifndef IDN_COLLECTIVE_ENGINE_H
#define IDN_COLLECTIVE_ENGINE_H

#include <pthread.h>

#include "collective/coll_int.h"

#define PARK_OVERHEAD 128  // bytes a parked part costs beyond its floats

enum { SLOT_NONE, SLOT_PARKED, SLOT_BUSY, SLOT_DONE };
enum { G_OPEN, G_BROKEN, G_STALE, G_CANCELLED, G_CLOSED };

typedef struct op op;

// A part waiting for its call, or for its turn in the summation order.
typedef struct parked {
	struct parked *next;
	coll_part h; // h.data points at bytes
	uint8_t *bytes;
} parked;

// A part to send (and, after IDN_EBUSY, to send again at due_ms).
typedef struct send {
	struct send *next;
	op *op;
	char addr[IDN_ADDR_MAX];
	coll_part h;
	wire_wr *w; // encoded on the first attempt
	uint64_t due_ms;
	uint32_t backoff_ms;
} send;

// One running allreduce. refs: the call, and each queued or in-flight
// send; freed by the last.
struct op {
	coll_group *g;
	uint64_t seq;
	coll_shape s;
	uint32_t rank;
	float *buf;
	uint64_t deadline_ms;
	int rv;    // the first error
	bool over; // done or failed: no more applies, no more sends
	// A parked part showed that the ranks disagree: the call still sends
	// its first parts (so that the peers learn it too), then fails.
	int pending;
	uint64_t sends, sent, recvs, recvd;
	uint64_t posted; // sends queued so far
	uint64_t cmax;     // parts in the largest segment
	uint8_t *slot;     // per part received: SLOT_*
	uint32_t *next;    // direct: contributions added, per own chunk
	uint8_t *adding;   // direct: a contribution is being added
	int appliers;      // threads writing buf
	int readers;       // threads encoding from buf
	int refs;
};

struct coll_group {
	coll *c;
	coll_group *next;
	char job[COLL_JOB_MAX + 1];
	uint64_t gen;
	uint32_t rank;
	uint32_t world;
	char (*addrs)[IDN_ADDR_MAX];
	uint64_t seq; // of the running call, else of the next
	int state;    // G_*
	op *op;       // the running call's
	bool in_call;
};

typedef struct {
	char job[COLL_JOB_MAX + 1];
	uint64_t newest;
} job_rec;

struct coll {
	rpc *rpc;
	coll_opts o;
	pthread_mutex_t lock;
	pthread_cond_t cv;      // calls and closers wait here
	pthread_cond_t send_cv; // senders wait here
	bool closing;
	coll_group *groups;
	job_rec *jobs;
	size_t njobs;
	parked *parked;
	send *sq; // queue of sends, oldest first
	send *sq_tail;
	pthread_t *threads;
	int nthreads;
	int calls; // threads inside coll_allreduce
	coll_counters ctr;
	uint64_t warn_ms;
	uint64_t warn_n;
	// The host's logger runs with no lock held: lines logged under
	// c->lock wait here until it is let go (core_unlock_log).
	core_logq logq;
};

// engine.c. Counts a refused part and logs why, at most one line per 10 s.
void coll_warn_refused(coll *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool coll_op_complete(const op *o);
// Ends the call with rv (its first error wins) and wakes its waiters.
void coll_op_fail(coll *c, op *o, int rv);
void coll_op_unref(op *o);
// The receive slot of part p in o->slot.
uint64_t coll_op_slot(const op *o, const coll_part *p);
bool coll_same_shape(const coll_shape *a, const coll_shape *b);

// send.c. coll_send_post queues part (dst, ph, ck) of the call for the
// sender threads (coll_sender, started by coll_open); coll_send_phase
// queues every part of phase ph and chunk ck that this rank sends.
void coll_send_post(coll *c, op *o, uint32_t dst, uint32_t ph, uint64_t ck);
void coll_send_phase(coll *c, op *o, uint32_t ph, uint64_t ck);
void coll_send_free(send *s);
void *coll_sender(void *arg);

// recv.c. The newest generation seen of each job (coll_job_set
// remembers one).
job_rec *coll_job_find(coll *c, const char *job);
int coll_job_set(coll *c, const char *job, uint64_t gen);
// Drops the parked parts of job's generation gen (of those below it when
// below is set) whose seq is at most max_seq.
void coll_drop_parked(coll *c, const char *job, uint64_t gen, bool below,
    uint64_t max_seq);
void coll_parked_free(parked *pk);
// Whether part p may be applied now (direct: its turn in the order).
bool coll_in_order(const op *o, const coll_part *p);
// Adds or copies p into the call's buffer, then sends what that enables,
// and goes on with parts parked behind it. Called and returns with
// c->lock held; drops it while touching the floats. pk: p is parked
// (and is freed here once used).
void coll_apply(coll *c, op *o, const coll_part *p, parked *pk);
// The COLL_ROUTE handler (arg: the coll).
int coll_on_part(void *arg, const wire_env *req, wire_wr *reply);

#endif
