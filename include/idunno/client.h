// SPDX-License-Identifier: MIT
// client.h: a handle that talks to a cluster from outside it (log grep,
// stats; members and events in membership.h, files in sdfs.h), and the
// cluster key files.
#ifndef IDUNNO_CLIENT_H
#define IDUNNO_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <idunno/base.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IDN_KEY_BYTES 32

typedef struct idn_client idn_client;

// idn_key_load reads a key file (64 hex digits). IDN_ENOENT, IDN_EINVAL;
// IDN_EPERM if it is a link, another user's, or group or others may
// access it (mode & 077): whoever reads the key can forge any message.
IDN_API int idn_key_load(const char *path, uint8_t key[IDN_KEY_BYTES]);
// idn_key_create writes a new random key file (mode 0600); IDN_EEXIST if
// path exists (a key is never replaced). The temp file beside it is
// created exclusively, never through a link.
IDN_API int idn_key_create(const char *path, uint8_t key[IDN_KEY_BYTES]);

// idn_client_open makes a handle that sends requests to the node at addr
// ("host:port"), signed with key. It does not join the cluster.
IDN_API int idn_client_open(const char *addr,
    const uint8_t key[IDN_KEY_BYTES], idn_client **out);
IDN_API void idn_client_close(idn_client *c);
// idn_client_set_timeout sets the per-request timeout (default 5000 ms).
IDN_API void idn_client_set_timeout(idn_client *c, idn_duration ms);
// idn_client_grep greps the log of the node at addr (NULL: the client's
// node) for pattern (a POSIX extended regex when regex is true). *count
// gets the number of matching lines; *lines (freed by the caller with one
// idn_free()) the first *nlines of them, NUL-terminated. IDN_EINVAL bad
// pattern or regex.
IDN_API int idn_client_grep(idn_client *c, const char *addr,
    const char *pattern, bool regex, char ***lines, size_t *nlines,
    uint64_t *count);

// idn_client_set_progress makes the client's later SDFS puts and gets
// report their progress to fn (NULL: none) in bytes of the file, on the
// calling thread or, for a get, on the get's helper thread. Not
// thread-safe with calls in flight on the same client.
IDN_API void idn_client_set_progress(idn_client *c, idn_progress_fn fn,
    void *arg);

// A node's traffic counters since it started.
typedef struct idn_node_stats {
	char id[IDN_ID_MAX];
	uint64_t uptime_ms;
	uint64_t msgs_in;
	uint64_t msgs_out;
	uint64_t bytes_in;
	uint64_t bytes_out;
} idn_node_stats;

// idn_client_node_stats asks the node at addr (NULL: the client's node)
// for its counters.
IDN_API int idn_client_node_stats(idn_client *c, const char *addr,
    idn_node_stats *out);

#ifdef __cplusplus
}
#endif
#endif
