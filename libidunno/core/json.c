// SPDX-License-Identifier: MIT
// json.c: the JSON writer every document of the library (and, through
// idn_json_string, every tool) uses: strings escaped, numbers finite.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"

// The length of the valid UTF-8 sequence at p, 0 when it is not one:
// the second byte's range rules out overlong forms, surrogates and code
// points past U+10FFFF. Stops at a NUL, which is never a continuation.
static size_t
utf8_len(const unsigned char *p)
{
	unsigned c = p[0];
	if (c < 0xc2 || c > 0xf4) {
		return 0;
	}
	size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
	unsigned lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
	unsigned hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
	if (p[1] < lo || p[1] > hi) {
		return 0;
	}
	for (size_t i = 2; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			return 0;
		}
	}
	return n;
}

int
core_json_str(core_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *) s;
	int rv = core_buf_append(b, "\"", 1);
	while (rv == IDN_OK && *p != '\0') {
		// A run of bytes that stand for themselves.
		size_t n = 0;
		for (;;) {
			size_t u = p[n] >= 0x80 ? utf8_len(p + n) : 1;
			if (p[n] < 0x20 || p[n] == '"' || p[n] == '\\' ||
			    u == 0) {
				break;
			}
			n += u;
		}
		rv = core_buf_append(b, p, n);
		p += n;
		if (rv != IDN_OK || *p == '\0') {
			break;
		}
		const char *esc = *p == '"' ? "\\\"" : *p == '\\' ? "\\\\" :
		    *p == '\n' ? "\\n" : *p == '\r' ? "\\r" : *p == '\t' ?
		    "\\t" : NULL;
		rv = esc != NULL ? core_buf_append(b, esc, 2) :
		    core_buf_printf(b, "\\u%04x", *p);
		p++;
	}
	return rv == IDN_OK ? core_buf_append(b, "\"", 1) : rv;
}

int
core_json_num(core_buf *b, const char *fmt, double v)
{
	return isfinite(v) ? core_buf_printf(b, fmt, v) :
	    core_buf_append(b, "null", 4);
}

char *
idn_json_string(const char *s)
{
	core_buf b = {0};
	if (s == NULL || core_json_str(&b, s) != IDN_OK ||
	    core_buf_append(&b, "", 1) != IDN_OK) {
		core_buf_free(&b);
		return NULL;
	}
	return (char *) b.data;
}
