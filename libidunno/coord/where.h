// SPDX-License-Identifier: MIT
// where.h (private to coord/): where the coordinators are, asked of the
// membership and over RPC: the active one (highest epoch), how large the
// cluster is and how much of it answers (the majority rule), and one
// request fanned out to chosen members.
#ifndef IDN_COORD_WHERE_H
#define IDN_COORD_WHERE_H

#include "coord/coord.h"
#include "membership/membership.h"
#include "rpc/rpc.h"

// One request to the members `pick` chooses (of the live and suspected),
// all at once; the replies stay in the fan until coord_fan_free.
typedef struct coord_fan {
	idn_member *m;  // every member the view holds
	size_t nm;
	const char **addrs;
	int *rvs;
	wire_doc **docs;
	wire_env *envs;
	size_t n;
} coord_fan;
int coord_fan_out(rpc *rp, membership *ms, bool (*pick)(const idn_member *,
    const void *), const void *arg, const char *type, idn_duration tmo,
    coord_fan *f);
void coord_fan_free(coord_fan *f);
// A `pick` of the workers.
bool coord_is_worker(const idn_member *m, const void *arg);

// Coordinator nodes and workers in the view (alive or suspected).
size_t coord_cluster_size(membership *ms);
// How many of the cluster's coordinator nodes and workers answer node
// `self` now (itself included; the silent `leader` counted, not asked):
// *reached of *size.
void coord_reach(rpc *rp, membership *ms, const char *self,
    const char *leader, size_t *reached, size_t *size);

// What the members said when asked the newest epoch they know.
typedef struct coord_epochs {
	uint64_t newest;  // the newest of their answers
	size_t answered;  // how many answered
	size_t standbys;  // the other coordinator nodes that are a standby
} coord_epochs;
// Asks the other coordinator node(s) in the view, and unless one says it
// is a standby (then nobody can hold a newer epoch than the one it
// gave), every worker in the view.
void coord_newest_epoch(rpc *rp, membership *ms, const char *self,
    coord_epochs *out);

typedef struct coord_found {
	char id[IDN_ID_MAX];
	char addr[IDN_ADDR_MAX];
	uint64_t epoch;
	bool any;              // a coordinator or standby is alive
	bool followed;         // a standby holds a copy of a live ledger
} coord_found;
// coord_find_active asks every live coordinator and standby but `skip`
// (may be NULL) who is active; the highest epoch wins. IDN_ENOENT when
// none is.
int coord_find_active(rpc *rp, membership *ms, const char *skip,
    coord_found *f);

#endif
