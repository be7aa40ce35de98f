// SPDX-License-Identifier: MIT
// node.h: a cluster node (membership, SDFS replica, roles); the client
// handle is in client.h.
#ifndef IDUNNO_NODE_H
#define IDUNNO_NODE_H

#include <stddef.h>
#include <stdint.h>

#include <idunno/base.h>
#include <idunno/client.h>
#include <idunno/membership.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct idn_node idn_node;

// Roles a node takes in the cluster.
enum idn_role {
	IDN_ROLE_COORD,
	IDN_ROLE_STANDBY,
	IDN_ROLE_WORKER,
};

// Options of idn_node_open. Strings are borrowed for the call only.
typedef struct idn_node_opts {
	size_t size;               // set by idn_node_opts_init; checked
	const char *listen;        // "host:port"; port 0 picks a free one
	const char *const *join;   // introducers ("host:port"), may be empty
	size_t njoin;
	int role;                  // enum idn_role
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
	// "host:port" of the read-only dashboard, /metrics, /healthz and
	// /readyz (port 0: a free one); NULL (default): none. Served by the
	// coordinator and the standby; workers ignore it.
	const char *http;
	// A worker's model runs on this CPU only (0-based), so the node's
	// other threads and the machine's other work do not preempt it: keep
	// them off it (idunno-worker --model-cpu does). -1 (default): any.
	int model_cpu;
	// SDFS limits, lowered so that tests reach them with a few requests
	// or seconds (idunno-coord and idunno-worker read them from the
	// IDUNNO_SDFS_* environment variables). 0 (default), or more than
	// the built-in value in brackets: the built-in value.
	size_t sdfs_offers_per_call; // anti-entropy offers per peer (2000)
	size_t sdfs_puts_max;        // puts a node fronts at once (256)
	size_t sdfs_list_page;       // names per ls-prefix page (1000)
	idn_duration sdfs_session_idle_ms; // abandoned writes expire (120 s)
	idn_duration sdfs_scrub_pass_ms;   // one scrub pass (10 min)
	idn_duration sdfs_cache_trust_ms;  // listings used unchecked (10 s)
	idn_duration sdfs_replicate_ms;    // a put waits for replicas (90 s)
} idn_node_opts;

// idn_node_opts_init fills LAN defaults: a worker, 100 ms protocol period,
// 150 ms ping timeout, 3 indirect probes, 600 ms suspicion, 5 s to join.
// Options not made by it are refused (IDN_EINVAL). Fields are added at
// the end: a caller built before some (a smaller size) gets their defaults.
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
// idn_node_http_addr: the bound dashboard address, or NULL without one.
IDN_API const char *idn_node_http_addr(const idn_node *n);

// idn_node_members returns this node's view of the membership (itself
// included) as an array the caller frees with idn_free().
IDN_API int idn_node_members(idn_node *n, struct idn_member **out,
    size_t *count);

// idn_node_watch adds a watcher; it stays until the node closes.
IDN_API int idn_node_watch(idn_node *n, idn_member_fn fn, void *arg);

// idn_node_logf writes one line to the node's log (and the host's hook).
IDN_API void idn_node_logf(idn_node *n, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// idn_role_name returns "coord", "standby" or "worker" (the name members
// carry), or NULL for an unknown role; idn_role_parse the reverse
// (IDN_EINVAL).
IDN_API const char *idn_role_name(int role);
IDN_API int idn_role_parse(const char *name, int *role);

#ifdef __cplusplus
}
#endif
#endif
