// SPDX-License-Identifier: MIT
// node_int.h: what the library's own tests reach inside a node.
#ifndef IDN_NODE_INT_H
#define IDN_NODE_INT_H

#include <idunno/node.h>

#include "rpc/rpc.h"

// node_rpc: the node's RPC endpoint (its routes, its client).
rpc *node_rpc(idn_node *n);

#endif
