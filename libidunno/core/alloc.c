// SPDX-License-Identifier: MIT
// alloc.c: allocation, strings and the growable buffer.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

void *
core_alloc(size_t size)
{
	return calloc(1, size ? size : 1);
}

void *
core_realloc(void *ptr, size_t size)
{
	return realloc(ptr, size ? size : 1);
}

void
idn_free(void *ptr)
{
	free(ptr);
}

char *
core_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

char *
core_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

char *
core_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		s = NULL;
	}
	va_end(ap);
	return s;
}

// Room for len more bytes.
static int
reserve(core_buf *b, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len) {
			cap *= 2;
		}
		uint8_t *p = realloc(b->data, cap);
		if (p == NULL) {
			return IDN_ENOMEM;
		}
		b->data = p;
		b->cap = cap;
	}
	return IDN_OK;
}

int
core_buf_append(core_buf *b, const void *data, size_t len)
{
	if (reserve(b, len) != IDN_OK) {
		return IDN_ENOMEM;
	}
	if (len > 0) {
		memcpy(b->data + b->len, data, len);
	}
	b->len += len;
	return IDN_OK;
}

int
core_buf_vprintf(core_buf *b, const char *fmt, va_list ap)
{
	char small[256];
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	int rv = IDN_OK;
	if (n < 0) {
		rv = IDN_EINVAL;
	} else if ((size_t) n < sizeof(small)) {
		rv = core_buf_append(b, small, (size_t) n);
	} else if ((rv = reserve(b, (size_t) n + 1)) == IDN_OK) {
		char *at = (char *) b->data + b->len;
		vsnprintf(at, (size_t) n + 1, fmt, again);
		b->len += (size_t) n;
	}
	va_end(again);
	return rv;
}

int
core_buf_printf(core_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rv = core_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rv;
}

void
core_buf_free(core_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
