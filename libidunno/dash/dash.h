// SPDX-License-Identifier: MIT
// dash.h: a node's read-only HTTP face: the dashboard page and its
// script, /api/state (what the page draws), /metrics (Prometheus text),
// /healthz and /readyz. It samples the coordinator once a second for the
// charts' history and the recent events. Control stays on the RPC path.
#ifndef IDN_DASH_DASH_H
#define IDN_DASH_DASH_H

#include "coord/coord.h"
#include "membership/membership.h"
#include "sdfs/sdfs.h"

typedef struct dash dash;

typedef struct dash_opts {
	const char *addr;       // "host:port" to serve on (port 0: a free
	                        // one); NULL: sample and publish only
	const char *self_id;
	const char *role;       // "coord", "standby", "worker"
	membership *mship;      // caller keeps; outlives the dash
	coord_role *coord;      // NULL on a node without the coordinator role
	rpc *rpc;               // the node's endpoint and store, for their
	sdfs *sdfs;             // counters (caller keeps; may be NULL)
} dash_opts;

// dash_open starts the sampler (which publishes a snapshot on the
// membership's event stream once a second where a coordinator runs) and
// serves HTTP when addr is set. IDN_EINVAL bad address, IDN_ENET cannot
// bind, IDN_ENOMEM.
int dash_open(const dash_opts *o, dash **out);
// The bound "host:port", borrowed until close; NULL without HTTP.
const char *dash_addr(const dash *d);
// dash_close stops serving and sampling; accepts NULL. Close it before the
// coordinator role and the membership.
void dash_close(dash *d);

// dash_metrics appends the Prometheus text of one coordinator snapshot
// (and the members, may be NULL) to out: exposed for the unit test.
void dash_metrics(const coord_view *v, const idn_member *m, size_t nm,
    core_buf *out);

#endif
