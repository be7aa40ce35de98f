// SPDX-License-Identifier: MIT
// core.h: helpers every subsystem shares: errors, allocation, clock, strings.
#ifndef IDN_CORE_H
#define IDN_CORE_H

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
void core_buf_free(core_buf *b);

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

// Library-internal logger: formats "event" lines and hands them to the host.
typedef struct core_logger {
	idn_log_fn fn;
	void *arg;
	int min_level;
} core_logger;

void core_logf(const core_logger *lg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
