// SPDX-License-Identifier: MIT
// node.h (internal): what subsystems living in a node use: RPC handler
// registration, the shared client, the membership view, the log, paths.
#ifndef IDN_NODE_NODE_H
#define IDN_NODE_NODE_H

#include <idunno/idunno.h>

#include "net/net.h"

// node_handler_fn answers one request of a registered type on an RPC
// thread (several run at once; no node locks held). It writes its reply
// body to reply and returns the code the caller sees.
typedef int (*node_handler_fn)(void *arg, const wire_env *req,
    wire_wr *reply);

// node_handle registers the handler for message type `type` (a prefix such
// as "sdfs." groups a subsystem's messages). Call during attach.
int node_handle(idn_node *n, const char *type, node_handler_fn fn, void *arg);

net_client *node_client(idn_node *n);
const idn_logger *node_logger(idn_node *n);
const char *node_data_dir(const idn_node *n);
const char *node_role(const idn_node *n);
// The cluster key, for a client of the node to itself.
const uint8_t *node_key(const idn_node *n);

// node_alive_members fills *out (caller frees with idn_free) with the
// members currently alive or suspected (a suspect may still hold data),
// self included, sorted by id.
int node_alive_members(idn_node *n, idn_member **out, size_t *count);

// node_fanout sends the same request to many addresses at once on the
// node's worker threads and waits for all replies (or timeouts). rvs[i]
// receives each call's result; docs/envs (optional, may be NULL) receive
// the replies, which the caller frees with wire_doc_free.
int node_fanout(idn_node *n, const char *const *addrs, size_t count,
    const char *type, wire_wr *body, idn_duration timeout_ms, int *rvs,
    wire_doc **docs, wire_env *envs);

#endif
