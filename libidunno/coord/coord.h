// SPDX-License-Identifier: MIT
// coord.h: the coordinator role: phases, jobs, leases to workers, the
// fair-time allocation, statistics, result assembly, the ledger. It only
// schedules: workers read inputs and write results in SDFS themselves.
#ifndef IDN_COORD_COORD_H
#define IDN_COORD_COORD_H

#include <idunno/idunno.h>

#include "wire/wire.h"

#define COORD_EPOCH 1          // fixed until the standby exists
#define COORD_LEASE_MS 10000   // a lease not renewed for this long expires

typedef struct coord coord;

// What the coordinator needs from its node (coord/attach.c fills it).
typedef struct coord_host {
	idn_client *sdfs;      // a client to the node's SDFS (caller keeps)
	const char *data_dir;  // the ledger lives in <data_dir>/coord/
	const char *self_id;
	void (*log)(void *arg, int level, const char *line);
	void *log_arg;
} coord_host;

// coord_open restores from <data>/coord/ledger.db, else from the SDFS
// checkpoint, else starts empty, and starts its timer threads.
int coord_open(const coord_host *h, coord **out);
void coord_close(coord *c);

// coord_handle answers one scheduler request ("sched.lease", "sched.add",
// ...) on an RPC thread: writes the reply body, returns its code.
int coord_handle(coord *c, const char *type, const wire_val *body,
    wire_wr *reply);
// coord_member tells the coordinator of a membership event of a worker
// (alive: joined; failed or left: its leases are reclaimed at once).
void coord_member(coord *c, const char *id, const char *role, bool alive);



// The node coupling (coord/attach.c): coord_attach starts the coordinator
// role on a node (routes, membership watch, SDFS client); coord_detach
// stops it. sched_where_attach registers `sched.where` (every node).
typedef struct idn_node idn_node;
typedef struct coord_role coord_role;
int coord_attach(idn_node *n, coord_role **out);
void coord_detach(coord_role *r);
int sched_where_attach(idn_node *n);
#endif
