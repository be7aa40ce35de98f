// SPDX-License-Identifier: MIT
// rpc.h: a node's RPC endpoint (routes registered before it serves, calls,
// fan-out, a pool) and the call side of the public client handle.
#ifndef IDN_RPC_RPC_H
#define IDN_RPC_RPC_H

#include <idunno/client.h>

#include "net/net.h"

typedef struct rpc rpc;

// rpc_handler_fn answers one request of a registered type on an RPC
// thread (several run at once; no rpc locks held). It writes its reply
// body to reply and returns the code the caller sees.
typedef net_handler_fn rpc_handler_fn;

typedef struct {
	const char *listen;  // "host:port"; port 0 picks a free one
	const uint8_t *key;  // IDN_KEY_BYTES, copied
	size_t max_msg_bytes;
	const core_logger *lg; // kept; must outlive the endpoint
} rpc_opts;

// rpc_open binds the endpoint and opens its client and pool; requests wait
// until rpc_serve. IDN_EINVAL bad address, IDN_ENET cannot listen.
int rpc_open(const rpc_opts *o, rpc **out);
// The bound address, "127.0.0.1:port", borrowed until close.
const char *rpc_addr(const rpc *r);
// rpc_set_self names this node in its outgoing calls and node.stats;
// call before rpc_serve and before any call.
void rpc_set_self(rpc *r, const char *id);
// rpc_route registers the handler of message type `type` (a prefix such
// as "sdfs." groups a subsystem's messages). IDN_EBUSY once serving, so
// a peer never sees "unknown request type" for a route that will exist.
int rpc_route(rpc *r, const char *type, rpc_handler_fn fn, void *arg);
// rpc_routes registers a table of routes, all with the same arg.
typedef struct {
	const char *type;
	rpc_handler_fn fn;
} rpc_route_def;
int rpc_routes(rpc *r, const rpc_route_def *defs, size_t n, void *arg);
// rpc_unroute removes every route registered with arg (a subsystem that
// failed to open frees arg next). IDN_EBUSY once serving.
int rpc_unroute(rpc *r, const void *arg);
// rpc_route_name: the type of the i-th route, NULL past the last.
const char *rpc_route_name(const rpc *r, int i);
// rpc_client: the endpoint's client (its calls name this node).
net_client *rpc_client(rpc *r);
// rpc_serve freezes the routes and starts answering.
int rpc_serve(rpc *r);
// rpc_stop stops answering (no handler runs after it returns); the calls
// still work until rpc_close. rpc_close accepts NULL.
void rpc_stop(rpc *r);
// rpc_counters: the endpoint's traffic counters (server and client).
void rpc_counters(const rpc *r, net_counters *out);
void rpc_close(rpc *r);

// rpc_call: net_call_wr through the endpoint's client.
int rpc_call(rpc *r, const char *addr, const char *type, wire_wr *body,
    idn_duration timeout_ms, wire_doc **doc, wire_env *env);
// rpc_fanout sends the same request to many addresses at once on the
// pool's threads and waits for all replies (or timeouts). rvs[i] receives
// each call's result; docs/envs (optional, may be NULL) receive the
// replies, which the caller frees with wire_doc_free.
int rpc_fanout(rpc *r, const char *const *addrs, size_t count,
    const char *type, wire_wr *body, idn_duration timeout_ms, int *rvs,
    wire_doc **docs, wire_env *envs);
// rpc_pool_open opens a separate pool on the endpoint's client (so one
// subsystem's traffic cannot starve another's); close it with
// net_pool_close before rpc_close.
int rpc_pool_open(rpc *r, int nthreads, net_pool **out);

// The client handle's call side (rpc/client.c).
int rpc_client_call(idn_client *c, const char *type, wire_wr *body,
    wire_doc **doc, wire_env *env);
int rpc_client_call_at(idn_client *c, const char *addr, const char *type,
    wire_wr *body, wire_doc **doc, wire_env *env);
const char *rpc_client_addr(const idn_client *c);
idn_duration rpc_client_timeout(const idn_client *c);
const uint8_t *rpc_client_key(const idn_client *c);
// rpc_client_progress tells the client's progress hook (if any).
void rpc_client_progress(idn_client *c, uint64_t done, uint64_t total);

#endif
