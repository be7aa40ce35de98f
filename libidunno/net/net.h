// SPDX-License-Identifier: MIT
// net.h: the nng glue: one authenticated RPC endpoint per node, a client
// that keeps one req socket per peer, and a pub socket for events.
#ifndef IDN_NET_H
#define IDN_NET_H

#include <stdatomic.h>
#include <string.h>

#include "wire/wire.h"

#define NET_DEFAULT_MAX_MSG (8u << 20) // chunks are 1 MiB; room to spare

// net_err_from_nng maps an nng error to an idn_err code.
int net_err_from_nng(int e);

// Parses "host:port" (IPv4 dotted quad or "localhost", port 0..65535)
// into an nng URL "tcp://host:port". IDN_EINVAL names nothing; callers
// print the address they were given.
int net_addr_to_url(const char *addr, char *url, size_t cap);

// A handler answers one request on a server thread (no net locks held).
// It writes its reply body (one msgpack object, or nothing) to reply and
// returns the code the caller sees.
typedef int (*net_handler_fn)(void *arg, const wire_env *req, wire_wr *reply);

typedef struct net_server net_server;
typedef struct net_client net_client;

// Traffic counters: messages and bytes in and out (frames, MAC included).
typedef struct {
	_Atomic uint64_t msgs_in;
	_Atomic uint64_t msgs_out;
	_Atomic uint64_t bytes_in;
	_Atomic uint64_t bytes_out;
	_Atomic uint64_t rejected; // requests dropped: bad MAC, replay, malformed
} net_counters;

// net_server_counters and net_client_counters add the counters of s or c
// (NULL: none) to *sum; net_stats sums both.
void net_server_counters(const net_server *s, net_counters *sum);
void net_client_counters(const net_client *c, net_counters *sum);
static inline void
net_stats(const net_server *s, const net_client *c, net_counters *sum)
{
	memset(sum, 0, sizeof(*sum));
	net_server_counters(s, sum);
	net_client_counters(c, sum);
}

// Request types that are served even when a server is at its thread limit
// (membership: a busy node must still answer pings).
#define NET_CONTROL_PREFIX "swim."

// net_server_open binds addr ("host:port"; port 0 picks a free one);
// requests wait until net_server_start runs nthreads concurrent handlers
// (fn) to start with; it grows up to 8 times that so that a few threads
// always wait for the next request, and then answers data requests
// IDN_EBUSY rather than queueing them. Frames without a valid MAC under
// key are dropped and logged.
// IDN_EINVAL bad address, IDN_ENET bind failure.
int net_server_open(const char *addr, const uint8_t key[WIRE_KEY_BYTES],
    size_t max_msg_bytes, net_handler_fn fn, void *arg, const core_logger *lg,
    net_server **out);
int net_server_start(net_server *s, int nthreads);
// The bound address, "127.0.0.1:port", borrowed until close.
const char *net_server_addr(const net_server *s);
// net_server_set_self names the node answering here (its replies' "from").
// Requests must be addressed to this id, or to the bound address and
// stamped after the endpoint opened; others run no handler (see wire.h).
void net_server_set_self(net_server *s, const char *id);
void net_server_close(net_server *s);

int net_client_open(const uint8_t key[WIRE_KEY_BYTES], const char *self_id,
    size_t max_msg_bytes, net_client **out);
void net_client_close(net_client *c);
// net_client_set_self names the sender of later calls; call before any.
void net_client_set_self(net_client *c, const char *self_id);
// net_client_skew stamps later requests ms off this host's clock (tests:
// a peer whose clock is wrong).
void net_client_skew(net_client *c, int64_t ms);
// net_call sends one request and waits for its reply up to timeout_ms.
// Returns a transport error (IDN_ETIMEDOUT, IDN_ENET, IDN_EAUTH,
// IDN_EPROTO) or the reply's code. On any reply (rc may be non-zero),
// *doc holds it and the caller frees it with wire_doc_free; otherwise
// *doc is NULL. A reply that does not carry this request's nonce and type
// is refused (IDN_EAUTH). The request is addressed to the node id learnt
// from the last reply from addr, else to addr; an endpoint that refuses
// it unrun (another incarnation, a stamp before it started) is asked once
// more. Thread-safe.
int net_call(net_client *c, const char *addr, const char *type,
    const void *body, size_t body_len, idn_duration timeout_ms,
    wire_doc **doc, wire_env *reply);
// net_call_wr is net_call with the body taken from a writer (or NULL).
int net_call_wr(net_client *c, const char *addr, const char *type,
    wire_wr *body, idn_duration timeout_ms, wire_doc **doc,
    wire_env *reply);

// Publisher of events (membership changes, stats) on its own address.
typedef struct net_pub net_pub;
int net_pub_open(const char *addr, net_pub **out);
const char *net_pub_addr(const net_pub *p);
int net_pub_send(net_pub *p, const void *data, size_t len);
void net_pub_close(net_pub *p);

// Subscriber to every message of one publisher.
typedef struct net_sub net_sub;
int net_sub_open(const char *addr, net_sub **out);
// Waits up to timeout_ms for one message (IDN_ETIMEDOUT); appends it to out.
int net_sub_recv(net_sub *s, idn_duration timeout_ms, core_buf *out);
void net_sub_close(net_sub *s);

// A pool of threads making calls for others (fan-out, pushes).
typedef struct net_pool net_pool;
int net_pool_open(net_client *c, int nthreads, net_pool **out);
// Drops pushes still queued and joins the threads.
void net_pool_close(net_pool *p);
// Makes count calls at once and waits for all; rvs[i] gets each result
// and, when docs is not NULL, docs[i]/envs[i] each reply (caller frees).
int net_pool_call_all(net_pool *p, const char *const *addrs, size_t count,
    const char *type, const void *body, size_t len, idn_duration timeout_ms,
    int *rvs, wire_doc **docs, wire_env *envs);
// Queues one call whose reply nobody waits for (body is copied).
int net_pool_post(net_pool *p, const char *addr, const char *type,
    const void *body, size_t len, idn_duration timeout_ms);
// The same with the body taken from a writer (or NULL). If the writer
// failed, every rvs[i] gets its error and docs[i] NULL.
int net_pool_call_all_wr(net_pool *p, const char *const *addrs, size_t count,
    const char *type, wire_wr *body, idn_duration timeout_ms, int *rvs,
    wire_doc **docs, wire_env *envs);
int net_pool_post_wr(net_pool *p, const char *addr, const char *type,
    wire_wr *body, idn_duration timeout_ms);

#endif
