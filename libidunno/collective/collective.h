// SPDX-License-Identifier: MIT
// collective.h: allreduce (element-wise float32 sum) among the ranks of a
// data-parallel training job, over the nodes' RPC endpoints.
//
// Each node opens one coll on its endpoint before it serves (it registers
// the "coll.part" route). A worker's training thread opens a coll_group
// per generation of its job (the coordinator's rank assignment) and calls
// coll_allreduce once per step on its gradients, and at epoch ends on
// small buffers.
//
// Algorithm. A buffer of n floats is cut into world segments (segment k
// is [n*k/world, n*(k+1)/world)) and each segment into parts of at most
// chunk_bytes. The ring (reduce-scatter, then all-gather: 2(world-1)
// phases of n/world floats) forwards each part as soon as it has been
// added, so many parts are in flight at once (pipelining); each rank sends
// and receives 2(world-1)/world of the buffer, the least possible. The
// alternative measured against it, "direct" (every rank sends segment k
// to rank k, which adds the world-1 contributions and sends the sum back
// to all), moves the same bytes in 2 phases instead of 2(world-1).
//
// Measured on loopback (2 shared cores, collective_bench.c, built as
// bench/allreduce): for LeNet-5's and ResNet-18's gradients at 2 and 3
// ranks the two are equal within the run-to-run spread, in time and in
// CPU: they move the same bytes, and the per-message work below us (MAC,
// copies, TCP) is almost all of the CPU; our adds and copies are 2-4%.
// Direct is ahead only where the number of hops shows, buffers of up to
// about 128 KiB (at 4 ranks, 4 KiB: 1.9 ms against 2.8 ms). So the ring
// is kept for gradients: it talks to 2 peers whatever the world size and
// never parks, while direct parks the contributions that arrive out of
// summation order (one more copy, and mailbox memory that grows with the
// world). COLL_ALGO_AUTO takes direct for buffers of at most
// COLL_ALGO_DIRECT_MAX_BYTES (epoch-end losses and counters).
//
// Determinism. Element i of segment k is summed in one fixed order,
// ((x_k + x_k+1) + x_k+2) + ... + x_k-1 (ranks mod world), whatever the
// algorithm, chunk size or arrival order: the ring's chain for segment k
// starts at rank k, and "direct" applies contributions in that order,
// parking any that arrive early. The all-gather copies the owner's sum, so
// every rank ends with the same bits, and they depend only on the inputs,
// n and world.
//
// Timeouts. timeout_ms bounds a whole call, the wait for the slowest rank
// to reach it included: give it the transfer time (the buffer's bytes over
// what a rank moves per second; on loopback here 100-400 MB/s, so about
// 0.5 s for ResNet-18 at 3 ranks) plus the spread of step times between
// the ranks, with a margin: say 5 s for LeNet-5 and 30 s for ResNet-18. A
// generous timeout slows no recovery: a dead next hop fails the call
// after COLL_PART_TIMEOUT_MS anyway, and a dead predecessor's rank set is
// replaced by the coordinator's next generation, whose coll_group_open
// ends the waiting call at once (IDN_ESTALE).
//
// Copies, per part and hop: ours, the sender's writer (wire_bin) and one
// pass that adds or copies straight from the receiver's document into the
// caller's buffer while its call runs; below us, the envelope, the frame
// and the nng message on the way out (net/, wire/) and the document on
// the way in (wire_doc_parse), besides the kernel's. A part that arrives
// before its call starts (a peer a step ahead) or out of summation order
// is parked: one more copy. buf itself is never copied whole.

#ifndef IDN_COLLECTIVE_COLLECTIVE_H
#define IDN_COLLECTIVE_COLLECTIVE_H

#include "rpc/rpc.h"

typedef struct coll coll;
typedef struct coll_group coll_group;

#define COLL_ROUTE "coll.part"
#define COLL_JOB_MAX 64             // job names: [A-Za-z0-9_.-]{1,64}
#define COLL_WORLD_MAX 1024         // ranks in a group
#define COLL_N_MAX UINT32_MAX       // floats in one allreduce
#define COLL_CHUNK_MIN (4u << 10)   // chunk_bytes range
#define COLL_CHUNK_MAX (4u << 20)
// A hop that does not answer one part within this (or the call's
// deadline, if sooner) fails the call with IDN_ETIMEDOUT: a live peer
// answers a part in microseconds (it only adds or parks it).
#define COLL_PART_TIMEOUT_MS 5000

typedef enum {
	COLL_ALGO_AUTO = 0,
	COLL_ALGO_RING = 1, // wire values
	COLL_ALGO_DIRECT = 2,
} coll_algo;

// AUTO picks DIRECT for buffers of up to this many bytes, else the ring.
#define COLL_ALGO_DIRECT_MAX_BYTES (128u << 10)

typedef struct {
	size_t chunk_bytes;    // largest part's data; 1 MiB. Same on all ranks
	                       // and, with 1 KiB of headers, within the
	                       // endpoints' max_msg_bytes
	size_t mailbox_bytes;  // parked parts, at most; 256 MiB
	int senders;           // threads sending parts; 3
	coll_algo algo;        // same on all ranks; AUTO
	const core_logger *lg; // kept; may be NULL; must outlive the coll
} coll_opts;

// coll_opts_init fills o with the defaults.
void coll_opts_init(coll_opts *o);

// coll_open registers the COLL_ROUTE route on r (call before rpc_serve)
// and starts the sender threads; r is kept and must outlive the coll.
// IDN_EINVAL bad options, IDN_EBUSY r already serves, IDN_ENOMEM.
int coll_open(rpc *r, const coll_opts *o, coll **out);
// coll_close: call after rpc_stop(r) (no handler may run) and before
// rpc_close(r). Running calls return IDN_ECLOSED and close waits for them
// to leave; a group still open is closed (its handle is then invalid).
// Waits for parts in flight, at most COLL_PART_TIMEOUT_MS. Accepts NULL.
void coll_close(coll *c);

typedef struct {
	const char *job;          // the job's name; copied
	uint64_t gen;             // the generation of the rank assignment
	uint32_t rank;            // this node's rank, < world
	uint32_t world;           // ranks, 1..COLL_WORLD_MAX
	const char *const *addrs; // world RPC addresses in rank order; copied
} coll_group_opts;

// coll_group_open opens this node's membership of job's generation gen
// (*out until coll_group_close; thread-safe). Peers' parts for a group not
// open yet are refused for now and sent again (every 1 to 100 ms, until
// their call's deadline), so ranks may open in any order. A generation
// newer than any this node has seen for job supersedes the older groups:
// their running and later calls return IDN_ESTALE and their parked parts
// are dropped; parts of older generations are refused (IDN_ESTALE, logged
// at debug level). IDN_ESTALE gen is not newer than the newest opened
// here for job; IDN_EINVAL bad options; IDN_ENOMEM.
int coll_group_open(coll *c, const coll_group_opts *o, coll_group **out);
// coll_group_close ends the group: a call running on another thread
// returns IDN_ECLOSED, and close waits for it to return; parked parts are
// dropped. Accepts NULL.
void coll_group_close(coll_group *g);

// coll_allreduce replaces buf[0..n) with the element-wise sum of every
// rank's buf, bit-identical on all ranks; the caller keeps buf, which the
// library uses only until the call returns. Every rank of the group must
// call it with the same n, in the same order (each call takes the group's
// next sequence number, so consecutive calls never mix). It blocks the
// calling thread; one call at a time per group (IDN_EBUSY), calls of
// different groups may run at once. Returns within timeout_ms:
// IDN_ETIMEDOUT a peer is dead, slow or partitioned, IDN_ENET a peer's
// endpoint refused or closed the connection, IDN_ESTALE the group was
// superseded, IDN_ECLOSED it (or its job, or the coll) was closed or
// cancelled, IDN_EINVAL bad arguments or ranks that disagree on n, world,
// algorithm or chunk size, IDN_ETOOBIG chunk_bytes beyond a peer's
// max_msg_bytes, IDN_EPROTO a peer refused a part. After an
// error buf holds unspecified values and the group's later calls return
// IDN_ESTALE: the ranks no longer agree on the sequence number, so open
// the next generation. world == 1 and n == 0 return at once.
int coll_allreduce(coll_group *g, float *buf, size_t n,
    idn_duration timeout_ms);

// coll_cancel makes the running and later calls of every open group of job
// return IDN_ECLOSED and drops its parked parts (the job was removed);
// the groups must still be closed. Thread-safe; IDN_ENOENT no such group.
int coll_cancel(coll *c, const char *job);

// What the coll has seen, since open.
typedef struct {
	uint64_t parts_in;      // parts accepted (applied or parked)
	uint64_t parts_out;     // parts delivered
	uint64_t parked;        // parts parked now
	uint64_t parked_bytes;  // their bytes now
	uint64_t stale;         // parts of an old generation or step, dropped
	uint64_t refused;       // malformed or inconsistent parts, refused
	uint64_t busy;          // parts refused for now (no group yet, full)
	uint64_t retries;       // our parts sent again after IDN_EBUSY
} coll_counters;

// coll_get_counters copies the counters (thread-safe).
void coll_get_counters(coll *c, coll_counters *out);

#endif
