// SPDX-License-Identifier: MIT
// base.h: what every public header needs: export macro, version, error
// codes, the log hook.
#ifndef IDUNNO_BASE_H
#define IDUNNO_BASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(IDN_BUILDING)
#define IDN_API __attribute__((visibility("default")))
#else
#define IDN_API
#endif

#define IDN_VERSION_MAJOR 0
#define IDN_VERSION_MINOR 1
#define IDN_VERSION_PATCH 0

typedef int32_t idn_duration; // milliseconds

// Sizes of a member id ("host:port:start_ms") and an address, with the NUL.
#define IDN_ID_MAX 96
#define IDN_ADDR_MAX 64

// The one list of error codes: generates enum idn_err and idn_strerror().
#define IDN_ERRORS(X)                                                  \
	X(OK, "no error")                                              \
	X(ENOMEM, "out of memory")                                     \
	X(EINVAL, "invalid argument")                                  \
	X(ENOENT, "no such file or version")                           \
	X(EEXIST, "already exists")                                    \
	X(EBUSY, "busy")                                               \
	X(ETIMEDOUT, "timed out")                                      \
	X(ECLOSED, "object closed")                                    \
	X(EPROTO, "malformed message")                                 \
	X(EAUTH, "message authentication failed")                      \
	X(ECORRUPT, "checksum mismatch")                               \
	X(ESTALE, "stale version, epoch or lease")                     \
	X(EUNAVAIL, "unreachable node, too few replicas or no coordinator") \
	X(ENOTLEADER, "not the leader")                                \
	X(EMODEL, "model error")                                       \
	X(EDB, "database error")                                       \
	X(ENET, "network error")                                       \
	X(ESYS, "system error")                                        \
	X(ETOOBIG, "message or file too large")                        \
	X(EPERM, "permission denied")

enum idn_err {
#define IDN_ERR_ENUM(name, msg) IDN_##name,
	IDN_ERRORS(IDN_ERR_ENUM)
#undef IDN_ERR_ENUM
	IDN_ERR_COUNT
};

// idn_strerror returns a static English message for an idn_err code; never
// NULL, also for unknown codes.
IDN_API const char *idn_strerror(int err);

// idn_free frees memory the library returned to the caller.
IDN_API void idn_free(void *ptr);

// idn_clock_ms reads a monotonic clock; idn_wall_ms the milliseconds since
// the epoch. Both in ms, thread-safe.
IDN_API uint64_t idn_clock_ms(void);
IDN_API uint64_t idn_wall_ms(void);

// idn_json_string returns s as a JSON string: quoted, with " \ and control
// characters escaped, valid UTF-8 as it is and any other byte as \u00XX.
// Returns memory the caller frees with idn_free(); NULL on NULL or when
// out of memory.
IDN_API char *idn_json_string(const char *s);

// Log levels of the library's background work (gossip, re-replication).
enum idn_log_level {
	IDN_LOG_DEBUG,
	IDN_LOG_INFO,
	IDN_LOG_WARN,
	IDN_LOG_ERROR,
};

// idn_log_fn receives one log line (no newline). It may run on any library
// thread, with no library locks held; it must be thread-safe.
typedef void (*idn_log_fn)(void *arg, int level, const char *line);

// idn_progress_fn reports a long operation: done of total units (total 0:
// unknown). Each function taking one says what the unit is and on which
// thread it runs; it runs with no library locks held and never two at
// once for one operation; keep it short.
typedef void (*idn_progress_fn)(void *arg, uint64_t done, uint64_t total);

#ifdef __cplusplus
}
#endif


#endif
