// SPDX-License-Identifier: MIT
// sdfs.h (internal): how a node carries SDFS: attach at open, detach at
// close. Everything else about SDFS stays inside libidunno/sdfs/.
#ifndef IDN_SDFS_SDFS_H
#define IDN_SDFS_SDFS_H

#include <idunno/idunno.h>

typedef struct sdfs sdfs;

// sdfs_attach opens the replica store under <data_dir>/sdfs/, registers
// the "sdfs.*" handlers and starts re-replication. Call after membership
// has started. *out is written only on success.
int sdfs_attach(idn_node *n, sdfs **out);
// sdfs_detach stops the background threads and frees s; accepts NULL.
// Call after the node's RPC endpoint closed (no handler runs) and before
// its pool and client close (the threads may still be calling out).
void sdfs_detach(sdfs *s);

#endif
