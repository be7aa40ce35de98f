// SPDX-License-Identifier: MIT
// node.h: a cluster node (membership, SDFS replica, roles) and a client
// handle that talks to a cluster from outside it.
#ifndef IDUNNO_NODE_H
#define IDUNNO_NODE_H

#include <stddef.h>
#include <stdint.h>

#include <idunno/base.h>
#include <idunno/membership.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IDN_KEY_BYTES 32

typedef struct idn_node idn_node;
typedef struct idn_client idn_client;

// Options of idn_node_open. Strings are borrowed for the call only.
typedef struct idn_node_opts {
	const char *listen;        // "host:port"; port 0 picks a free one
	const char *const *join;   // introducers ("host:port"), may be empty
	size_t njoin;
	const char *role;          // "coord", "standby" or "worker"
	const char *data_dir;      // created if missing; must be writable
	const char *log_path;      // NULL: <data_dir>/node.log
	uint8_t key[IDN_KEY_BYTES]; // the cluster key
	idn_log_fn log_fn;         // optional copy of every log line
	void *log_arg;
	idn_duration probe_interval_ms; // SWIM protocol period
	idn_duration probe_timeout_ms;  // direct ping timeout
	idn_duration suspect_timeout_ms;
	int indirect_probes;            // k members asked to ping-req
	idn_duration join_timeout_ms;   // how long to try the introducers
	size_t max_msg_bytes; // larger messages are refused; 8 MiB, >= 2 MiB
} idn_node_opts;

// idn_node_opts_init fills LAN defaults: 100 ms protocol period, 150 ms
// ping timeout, 3 indirect probes, 600 ms suspicion, 5 s to join.
IDN_API void idn_node_opts_init(idn_node_opts *o);

// idn_node_open starts a node: log, RPC endpoint, membership (joining
// through the introducers) and the replica store. IDN_EINVAL bad option or
// address, IDN_EPERM data folder not writable, IDN_ENET cannot listen,
// IDN_EUNAVAIL no introducer answered. *out is written only on success.
IDN_API int idn_node_open(const idn_node_opts *o, idn_node **out);
// idn_node_leave tells the cluster this node leaves (voluntary leave).
IDN_API int idn_node_leave(idn_node *n);
// idn_node_close stops the node and frees it; accepts NULL.
IDN_API void idn_node_close(idn_node *n);
// Borrowed strings, valid until close.
IDN_API const char *idn_node_id(const idn_node *n);
IDN_API const char *idn_node_addr(const idn_node *n);

// idn_node_members returns this node's view of the membership (itself
// included) as an array the caller frees with idn_free().
IDN_API int idn_node_members(idn_node *n, struct idn_member **out,
    size_t *count);

// idn_member_fn reports one membership event. It runs on the node's
// membership thread with no library locks held; keep it short.
typedef void (*idn_member_fn)(void *arg, const struct idn_member *m,
    int event);
// idn_node_watch adds a watcher; it stays until the node closes.
IDN_API int idn_node_watch(idn_node *n, idn_member_fn fn, void *arg);

// idn_node_logf writes one line to the node's log (and the host's hook).
IDN_API void idn_node_logf(idn_node *n, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// idn_key_load reads a key file (64 hex digits). IDN_ENOENT, IDN_EINVAL.
IDN_API int idn_key_load(const char *path, uint8_t key[IDN_KEY_BYTES]);
// idn_key_create writes a new random key file (mode 0600).
IDN_API int idn_key_create(const char *path, uint8_t key[IDN_KEY_BYTES]);

// idn_client_open makes a handle that sends requests to the node at addr
// ("host:port"), signed with key. It does not join the cluster.
IDN_API int idn_client_open(const char *addr,
    const uint8_t key[IDN_KEY_BYTES], idn_client **out);
IDN_API void idn_client_close(idn_client *c);
// idn_client_set_timeout sets the per-request timeout (default 5000 ms).
IDN_API void idn_client_set_timeout(idn_client *c, idn_duration ms);
// idn_client_members asks the node for its membership view; the array is
// freed by the caller with idn_free().
IDN_API int idn_client_members(idn_client *c, struct idn_member **out,
    size_t *count);

// A subscription to a node's event stream (membership changes).
typedef struct idn_events idn_events;

typedef struct idn_event {
	char kind[16];            // "member"
	int event;                // enum idn_member_event
	struct idn_member member; // the member after the change
} idn_event;

// idn_events_open subscribes to the client's node. Events published
// before the subscription connects are not seen.
IDN_API int idn_events_open(idn_client *c, idn_events **out);
// idn_events_next waits up to timeout_ms for the next authentic event.
// IDN_ETIMEDOUT when none came.
IDN_API int idn_events_next(idn_events *e, idn_duration timeout_ms,
    idn_event *ev);
IDN_API void idn_events_close(idn_events *e);

#ifdef __cplusplus
}
#endif
#endif
