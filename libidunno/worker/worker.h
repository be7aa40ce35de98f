// SPDX-License-Identifier: MIT
// worker.h: the worker role: a lease loop that asks the coordinator for
// batches (enough ahead to stay busy through a takeover), runs them
// (inputs from SDFS, the model, results to SDFS) and reports completions,
// renewals and training progress in its next lease call.
#ifndef IDN_WORKER_WORKER_H
#define IDN_WORKER_WORKER_H

#include <idunno/client.h>

#include "core/core.h"
#include "wire/wire.h"

#define WORKER_PREFETCH 2     // leases held beyond the one running, at
                              // least
#define WORKER_HOLD_MS 1500   // and as many as its measured task time
                              // needs to run this long without a
                              // coordinator (a takeover)
#define WORKER_POLL_MS 150    // lease call period when nothing happens
#define WORKER_LEASE_TIMEOUT_MS 500 // a lease call not answered by then:
                                    // ask again who the coordinator is

typedef struct worker worker;

// What the worker needs from its node (worker/attach.c fills it).
typedef struct worker_host {
	idn_client *node;      // a client to the node itself: SDFS and
	                       // sched.where (caller keeps)
	const char *self_id;
	idn_client *lease;     // for the lease calls, with a short timeout
	                       // (a dead coordinator is noticed fast); NULL:
	                       // node
	int model_cpu;         // the executor's CPU; -1: any
	const char *addr;      // the node's RPC address, for training peers
	struct coll *coll;     // the node's allreduce (training ranks); NULL:
	                       // single-rank training only
	void (*log)(void *arg, int level, const char *line);
	void *log_arg;
} worker_host;

int worker_open(const worker_host *h, worker **out);
void worker_close(worker *w);
// worker_state writes what the worker would send in a lease call to a
// coordinator of a newer epoch, asking for nothing: the leases it holds,
// its reports not yet acknowledged and those acknowledged in the last
// RECENT_MS (a record_lease_req).
int worker_state(worker *w, wire_wr *out);

// worker/attach.c: the role on a node: opened before the node serves (it
// routes `worker.state` on the node's endpoint), started once the node
// has joined with a client to the node itself (addr, key) and its log.
typedef struct worker_role worker_role;
struct rpc;
int worker_role_open(struct rpc *rpc, worker_role **out);
int worker_role_start(worker_role *r, const char *addr, const uint8_t *key,
    const char *id, int model_cpu,
    void (*log)(void *arg, int level, const char *line), void *log_arg);
void worker_role_close(worker_role *r);

#endif
