// SPDX-License-Identifier: MIT
// core.h: helpers every subsystem shares: errors, allocation, clock, strings.
#ifndef IDN_CORE_H
#define IDN_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <idunno/base.h>

#define IDN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define IDN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define IDN_MAX(a, b) ((a) > (b) ? (a) : (b))

int idn_err_from_errno(int e);
int idn_err_from_nng(int e);
int idn_err_from_sqlite(int e);

void *idn_alloc(size_t size); // zeroed; NULL on failure
void *idn_realloc(void *ptr, size_t size);
char *idn_strdup(const char *s);
char *idn_strndup(const char *s, size_t n);
char *idn_asprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

// Little-endian integers in byte buffers (file and blob formats).
static inline void
idn_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t) (v >> (8 * i));
	}
}

static inline uint64_t
idn_get_le(const uint8_t *p, int nbytes)
{
	uint64_t v = 0;
	for (int i = nbytes - 1; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return v;
}

uint64_t idn_clock_ms(void);   // monotonic
uint64_t idn_wall_ms(void);    // realtime, ms since the epoch
void idn_sleep_ms(uint32_t ms);
uint32_t idn_random(void);     // uniform, thread-safe, not for crypto

// A growable byte buffer.
typedef struct {
	uint8_t *data;
	size_t len;
	size_t cap;
} idn_buf;

int idn_buf_append(idn_buf *b, const void *data, size_t len);
void idn_buf_free(idn_buf *b);

// idn_write_all writes all n bytes (retrying short writes and EINTR);
// idn_read_full reads until cap bytes or end of file, *got the count: at
// offset off (pread), or from the file position when off < 0.
int idn_write_all(int fd, const void *data, size_t n);
int idn_read_full(int fd, void *buf, size_t cap, int64_t off, size_t *got);

// File helpers: whole small files (key files, addresses) only.
int idn_file_read(const char *path, size_t max_bytes, idn_buf *out);
// Writes atomically: temp file, fsync, rename.
int idn_file_write_atomic(const char *path, const void *data, size_t len);
int idn_mkdir_p(const char *path);

// Library-internal logger: formats "event" lines and hands them to the host.
typedef struct idn_logger {
	idn_log_fn fn;
	void *arg;
	int min_level;
} idn_logger;

void idn_logf(const idn_logger *lg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
