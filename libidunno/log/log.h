// SPDX-License-Identifier: MIT
// log.h: a node's line log ("time node level event") and grep over it.
#ifndef IDN_LOG_LOG_H
#define IDN_LOG_LOG_H

#include "core/core.h"
#include "wire/wire.h"

typedef struct nlog nlog;

// nlog_open appends to path (created 0600). IDN_EPERM if not writable.
int nlog_open(const char *path, nlog **out);
void nlog_close(nlog *l);
// nlog_set_rotate: once the log would pass max_bytes it is renamed to
// path.1 (path.1 to path.2, ...; keep old files kept, the oldest
// removed) and a new one started. The defaults are NLOG_MAX_BYTES and
// NLOG_KEEP; max_bytes 0 never rotates.
#define NLOG_MAX_BYTES (64u << 20)
#define NLOG_KEEP 3
void nlog_set_rotate(nlog *l, uint64_t max_bytes, int keep);
void nlog_set_id(nlog *l, const char *node_id);
// Thread-safe; one line per call, written with one write(2).
void nlog_write(nlog *l, int level, const char *event);
const char *nlog_path(const nlog *l);

// nlog_grep scans the log for lines containing pattern (or matching the
// POSIX extended regex) and calls fn for each, at most max_lines; *count
// gets the total number of matches. IDN_EINVAL bad regex.
int nlog_grep(const char *path, const char *pattern, bool regex,
    size_t max_lines, void (*fn)(void *arg, const char *line, size_t len),
    void *arg, uint64_t *count);

// nlog_on_grep answers a "log.grep" request (an rpc handler; arg is the
// nlog): pattern "p", regex flag "re" -> "count", "id", "lines".
int nlog_on_grep(void *arg, const wire_env *req, wire_wr *reply);

#endif
