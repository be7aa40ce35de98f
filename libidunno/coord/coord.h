// SPDX-License-Identifier: MIT
// coord.h: the coordinator role: phases, jobs, leases to workers, the
// fair-time allocation, statistics, result assembly, the ledger. It only
// schedules: workers read inputs and write results in SDFS themselves.
#ifndef IDN_COORD_COORD_H
#define IDN_COORD_COORD_H

#include <idunno/client.h>

#include "ledger/ledger.h"
#include "record/record.h"
#include "wire/wire.h"

#define COORD_LEASE_MS 10000   // a lease not renewed for this long expires

typedef struct coord coord;

// What the coordinator needs from its node (coord/attach.c fills it).
typedef struct coord_host {
	idn_client *sdfs;      // a client to the node's SDFS (caller keeps)
	const char *data_dir;  // the ledger lives in <data_dir>/coord/
	const char *self_id;
	void (*log)(void *arg, int level, const char *line);
	void *log_arg;
	// For the hot standby (coord/standby.c); all may be zero.
	ledger *led;           // an open ledger to use (a promoted standby's
	                       // replica), else <data_dir>/coord/ledger.db
	uint64_t epoch;        // at least this epoch (a promotion's new one)
	bool passive;          // a standby's read-only view: no timers, no
	                       // ledger writes, only stats/jobs/assign/state;
	                       // the view never closes led
	ledger_stream_fn stream; // every ledger change, for the replication
	void *stream_arg;
	// After a job is added or removed or the phase changes, before the
	// ack: waits (bounded) for the standby's copy. Not IDN_OK: a newer
	// coordinator is active; the client is told to retry and this one
	// takes no more such requests.
	int (*sync)(void *arg);
	void *sync_arg;
	void (*newer)(void *arg, uint64_t epoch); // a worker knows a newer
	void *newer_arg;                          // epoch: step down
} coord_host;

// coord_open restores from <data>/coord/ledger.db (or h->led), else from
// the SDFS checkpoint, else starts empty, and starts its timer threads.
int coord_open(const coord_host *h, coord **out);
void coord_close(coord *c);

// The scheduler's requests, one route each (coord.c): coord_handle
// answers them, the role registers each type on its node.
enum {
	// Changes the jobs or the phase: refused without the majority or once
	// a newer coordinator is active; acknowledged once the standby has it.
	COORD_ROUTE_CHANGES = 1,
	COORD_ROUTE_STANDBY = 2, // a standby's read-only view answers it
};
typedef struct coord_route {
	const char *type;    // "sched.lease", "sched.add", ...
	int flags;           // COORD_ROUTE_*
	int (*fn)(coord *c, const wire_val *body, wire_wr *reply);
} coord_route;
extern const coord_route coord_routes[];
extern const size_t coord_nroutes;
// coord_handle answers one request of coord_routes on an RPC thread:
// writes the reply body, returns its code.
int coord_handle(coord *c, const char *type, const wire_val *body,
    wire_wr *reply);
// coord_member tells the coordinator of a membership event of a worker
// (alive: joined; failed or left: its leases are reclaimed at once).
void coord_member(coord *c, const char *id, const char *role, bool alive);
// The standby that follows this coordinator ("" none), for `idunno jobs`.
void coord_set_standby(coord *c, const char *id);
// coord_hold: until clock ms `until`, lease calls are answered (reports,
// renewals) but given no new leases; 0 ends the hold.
void coord_hold(coord *c, uint64_t until);
// Right after a takeover (every live member fed to coord_member, the
// workers' state absorbed): a worker the ledger names that is not a live
// member died before this coordinator followed the membership (its
// failure went to the old one), so its leases go back now rather than
// expire COORD_LEASE_MS later.
void coord_forget_dead(coord *c);
// coord_absorb takes a worker's state (worker.state: its held leases and
// its recent reports) as its first lease call would, leasing nothing.
void coord_absorb(coord *c, const record_lease_req *r);
uint64_t coord_epoch(const coord *c);
ledger *coord_ledger(coord *c);
// The majority rule: the coordinator acts (leases, expires, reallocates,
// assembles, checkpoints, takes requests that change anything) only while
// it has heard, within window_ms, from `need` members: itself, the
// standby when its last pull was at standby_ms (clock ms; 0 none) or
// later, and each worker by its lease calls. need 0: no rule (default).
void coord_set_quorum(coord *c, size_t need, uint64_t window_ms,
    uint64_t standby_ms);
// Whether the rule holds now; *heard (may be NULL) gets the count, and
// *since_ms (may be NULL) the clock ms it last held (now while it holds;
// 0 never).
bool coord_quorum(coord *c, size_t *heard, uint64_t *since_ms);
// coord_fence(c, true): the coordinator does not act, whatever it hears,
// until coord_fence(c, false) (the role thread fences it when the rule
// stops holding and lifts that once it knows no newer epoch exists).
void coord_fence(coord *c, bool on);


// A snapshot for the dashboard and /metrics (coord/ renders no HTTP):
// everything is borrowed for the call of a coord_view_fn only.
typedef struct sched_stats sched_stats;
typedef struct coord_job_view {
	const char *job, *model;
	int kind, state;            // enum idn_job_kind, enum idn_job_state
	uint64_t done, total;       // queries (inference) or epochs (training)
	double accuracy;            // -1 unknown
	const sched_stats *proc;    // per-query processing ms (from the ledger)
	const sched_stats *lat;     // per-query latency ms (from the ledger)
	uint32_t nworkers;          // workers the allocation gives it
} coord_job_view;
typedef struct coord_view {
	int phase;                  // enum idn_phase
	uint64_t epoch;
	double fairness;            // as in `sched.stats`; 0 when none
	const char *stats_json;     // the `sched.stats` document
	size_t njobs;
	const coord_job_view *jobs;
	size_t nworkers;            // workers known alive, with leases held
	const char *const *workers;
	const uint32_t *leases;
} coord_view;
// coord_view_fn runs with the coordinator's tables locked: keep it short,
// call nothing of the coordinator's.
typedef void (*coord_view_fn)(void *arg, const coord_view *v);
// coord_view_with calls fn once with a snapshot. IDN_ENOMEM.
int coord_view_with(coord *c, coord_view_fn fn, void *arg);

// The node coupling (coord/attach.c). coord_role_open registers the
// scheduler routes on the node's endpoint (before it serves; they answer
// IDN_EUNAVAIL until started); coord_role_start, once the node has joined,
// starts the role: the active coordinator when no other is active (only a
// node not started as standby), else the standby of the active one, which
// promotes itself when that one fails (docs/STANDBY.md).
// coord_where_open registers `sched.where`, which every node answers: the
// active coordinator (highest epoch) among the live coordinator nodes.
typedef struct rpc rpc;
typedef struct membership membership;
typedef struct coord_node {
	rpc *rpc;
	membership *mship;
	const char *data_dir;
	const char *id;
	const char *addr;
	const uint8_t *key;    // the cluster key: a client to the node itself
	bool standby;          // started as standby: never active at start
	void (*log)(void *arg, int level, const char *line);
	void *log_arg;
} coord_node;
typedef struct coord_role coord_role;
int coord_role_open(const coord_node *n, coord_role **out);
int coord_role_start(coord_role *r);
void coord_role_close(coord_role *r);
// coord_role_view is coord_view_with on a started role; IDN_EUNAVAIL
// before coord_role_start (or on NULL).
int coord_role_view(coord_role *r, coord_view_fn fn, void *arg);
typedef struct coord_where coord_where;
int coord_where_open(rpc *r, membership *m, coord_where **out);
void coord_where_close(coord_where *w);

#endif
