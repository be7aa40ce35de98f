// SPDX-License-Identifier: MIT
// sdfs.h (internal): how a node carries SDFS: open (routes) before its
// endpoint serves, start once it has joined, close. Everything else about
// SDFS stays inside libidunno/sdfs/.
#ifndef IDN_SDFS_SDFS_H
#define IDN_SDFS_SDFS_H

#include <idunno/membership.h>

#include "rpc/rpc.h"

typedef struct sdfs sdfs;

// sdfs_members_fn fills *out (caller frees with idn_free) with the members
// alive or suspected (a suspect may still hold data), self included,
// sorted by id.
typedef int (*sdfs_members_fn)(void *arg, idn_member **out, size_t *count);

// Limits a node may lower, so that tests reach them with a few requests
// or seconds. 0, or more than the built-in value: the built-in value.
typedef struct {
	size_t offers_per_call;   // anti-entropy offers per peer and round
	size_t puts_max;          // put sessions a front runs at once
	size_t list_page;         // names per ls-prefix page
	uint64_t session_idle_ms; // an abandoned write expires
	uint64_t scrub_pass_ms;   // a scrub pass over the whole store
	uint64_t cache_trust_ms;  // a cached listing is used unchecked
	uint64_t replicate_ms;    // a put's commit waits for its replicas
} sdfs_limits;

typedef struct {
	rpc *rpc;             // routes go on it; calls go through it
	const core_logger *lg; // kept; must outlive the sdfs
	const char *data_dir; // the store lives in <data_dir>/sdfs/
	sdfs_members_fn members;
	void *members_arg;
	sdfs_limits lim;
} sdfs_opts;

// sdfs_open opens the replica store and registers the "sdfs.*" routes;
// call before the endpoint serves. *out is written only on success.
int sdfs_open(const sdfs_opts *o, sdfs **out);
// sdfs_start starts re-replication; call once membership has started.
int sdfs_start(sdfs *s);
// sdfs_close stops the background threads and frees s; accepts NULL.
// Call after the endpoint stopped serving (no handler runs) and before
// it closes (the threads may still be calling out).
void sdfs_close(sdfs *s);

// Counters since the node started.
typedef struct sdfs_counters {
	uint64_t bytes_put;      // bytes of puts this node took in as primary
	uint64_t bytes_get;      // chunk bytes this node served to gets
	uint64_t rereplications; // versions pulled from a peer
	uint64_t repairs;        // corrupt local copies quarantined, re-pulled
	uint64_t scrub_passes;   // full scrub passes over the store
	uint64_t scrub_ms;       // their total duration
	uint64_t scrub_last_ms;  // the last one's
} sdfs_counters;
void sdfs_counters_get(sdfs *s, sdfs_counters *out);

#endif
