// SPDX-License-Identifier: MIT
// core.h: helpers every subsystem shares: errors, allocation, clock, strings.
#ifndef IDN_CORE_H
#define IDN_CORE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <idunno/base.h>

#define CORE_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CORE_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CORE_MAX(a, b) ((a) > (b) ? (a) : (b))

int core_err_from_errno(int e);

void *core_alloc(size_t size); // zeroed; NULL on failure
void *core_realloc(void *ptr, size_t size);
char *core_strdup(const char *s);
char *core_strndup(const char *s, size_t n);
char *core_asprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

// Little-endian integers in byte buffers (file and blob formats).
static inline void
core_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t) (v >> (8 * i));
	}
}

static inline uint64_t
core_get_le(const uint8_t *p, int nbytes)
{
	uint64_t v = 0;
	for (int i = nbytes - 1; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return v;
}

void core_sleep_ms(uint32_t ms);
uint32_t core_random(void);     // uniform, thread-safe, not for crypto

// A growable byte buffer.
typedef struct {
	uint8_t *data;
	size_t len;
	size_t cap;
} core_buf;

int core_buf_append(core_buf *b, const void *data, size_t len);
// core_buf_printf appends the formatted text, however long.
int core_buf_printf(core_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int core_buf_vprintf(core_buf *b, const char *fmt, va_list ap);
void core_buf_free(core_buf *b);

// The JSON writer (json.c): values appended to a buffer, never cut short.
// core_json_str writes s quoted: " \ and control characters escaped,
// valid UTF-8 as it is, a byte of invalid UTF-8 as \u00XX (its Latin-1
// reading), so the document always parses.
int core_json_str(core_buf *b, const char *s);
// core_json_num writes v in printf format fmt ("%.4f"), or null when v is
// not finite (JSON has no NaN or infinity).
int core_json_num(core_buf *b, const char *fmt, double v);

// core_write_all writes all n bytes (retrying short writes and EINTR);
// core_read_full reads until cap bytes or end of file, *got the count: at
// offset off (pread), or from the file position when off < 0.
int core_write_all(int fd, const void *data, size_t n);
int core_read_full(int fd, void *buf, size_t cap, int64_t off, size_t *got);

// File helpers: whole small files (key files, addresses) only.
int core_file_read(const char *path, size_t max_bytes, core_buf *out);
// Writes atomically: temp file, fsync, rename.
int core_file_write_atomic(const char *path, const void *data, size_t len);
int core_mkdir_p(const char *path);

// The library's main locks go through core_lock and core_unlock, which
// count those this thread holds: the logger asserts (debug builds) that it
// calls the host with none held, as base.h promises, and queued lines
// wait while another is held.
extern _Thread_local int core_locks_held;

static inline void
core_lock(pthread_mutex_t *m)
{
	pthread_mutex_lock(m);
	core_locks_held++;
}

static inline void
core_unlock(pthread_mutex_t *m)
{
	core_locks_held--;
	pthread_mutex_unlock(m);
}

// Timed waits run on the monotonic clock (idn_clock_ms), so a step of the
// wall clock neither stretches nor cuts short a timeout: every condition
// variable that is waited on with a timeout comes from core_cond_init.
int core_cond_init(pthread_cond_t *cv);
// core_cond_wait_until waits (m held) until cv is signalled or the
// idn_clock_ms() deadline; IDN_ETIMEDOUT once it has passed, else IDN_OK
// (a wake-up, maybe spurious). core_cond_wait_ms: for ms from now.
int core_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *m,
    uint64_t deadline_ms);
int core_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *m, int64_t ms);

// The one logger: formats a line and hands it to the host's hook, on the
// calling thread, which holds no library lock (asserted in debug builds).
typedef struct core_logger {
	idn_log_fn fn;
	void *arg;
	int min_level;
} core_logger;

void core_logf(const core_logger *lg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void core_vlogf(const core_logger *lg, int level, const char *fmt,
    va_list ap);

// Lines logged while a lock is held, emitted once it is released: add them
// with the lock held; every unlock of that lock is core_unlock_log. Any
// thread's unlock emits them, once it holds no other lock (core_lock).
typedef struct core_logq {
	const core_logger *lg;
	core_buf lines;        // per line: its level (one byte), text, NUL
} core_logq;

void core_logq_add(core_logq *q, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void core_logq_free(core_logq *q);
// core_unlock_log unlocks m (core_unlock), then emits q's lines, unless
// this thread holds another lock: then they wait for a later unlock.
void core_unlock_log(pthread_mutex_t *m, core_logq *q);
// core_cond_wait_log is core_cond_wait_until for the lock guarding q:
// with lines queued (and no other lock held), it emits them (m released
// meanwhile) and returns IDN_OK at once, as a spurious wake-up would, so
// no signal is missed.
int core_cond_wait_log(pthread_cond_t *cv, pthread_mutex_t *m, core_logq *q,
    uint64_t deadline_ms);

#endif
