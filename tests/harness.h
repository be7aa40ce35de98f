// SPDX-License-Identifier: MIT
// harness.h: what every test uses: result assertions, temp folders,
// deadlines, and running the idunno tools. Helpers are th_ (test
// harness): idn_ names the public API only.
#ifndef IDN_TESTS_HARNESS_H
#define IDN_TESTS_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <idunno/idunno.h>

// IDN_PASS asserts IDN_OK and prints the error's text when it is not.
#define IDN_PASS(expr)                                                   \
	do {                                                             \
		int rv_ = (expr);                                        \
		if (rv_ != IDN_OK) {                                     \
			fail_msg("%s: %s (%d)", #expr, idn_strerror(rv_), \
			    rv_);                                        \
		}                                                        \
	} while (0)

// IDN_FAIL asserts one exact error code.
#define IDN_FAIL(expr, code)                                             \
	do {                                                             \
		int rv_ = (expr);                                        \
		if (rv_ != (code)) {                                     \
			fail_msg("%s: got %s, want %s", #expr,            \
			    idn_strerror(rv_), idn_strerror(code));       \
		}                                                        \
	} while (0)

// IDN_SKIP_IF ends a test as skipped when cond holds: it prints
// "# skipped: why", which scripts/tally.py counts as a skip, not a pass
// (cmocka 1.1.5's own skip reads as a failure to meson 1.0). Where every
// input must exist (IDUNNO_NO_SKIP set, as on CI) a skip is a failure.
#define IDN_SKIP_IF(cond, why)                                           \
	do {                                                             \
		if (cond) {                                              \
			if (getenv("IDUNNO_NO_SKIP") != NULL) {          \
				fail_msg("skipped, but IDUNNO_NO_SKIP is " \
				    "set: %s", why);                     \
			}                                                \
			print_message("# skipped: %s\n", why);           \
			return;                                          \
		}                                                        \
	} while (0)

// th_tmpdir makes a fresh folder under $TMPDIR (static string,
// removed at exit).
const char *th_tmpdir(void);
// th_at_death registers a shell command (printf-style) that runs
// once this test process is gone, however it ended, even by SIGKILL:
// stopping nodes, removing temp data. Commands run last first.
void th_at_death(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
// th_port returns a free TCP port on 127.0.0.1.
int th_port(void);
uint64_t th_now_ms(void);
// th_log_ms: the wall-clock ms a node log line begins with, 0 if
// it has no time.
uint64_t th_log_ms(const char *line);
// Polls cond(arg) every 20 ms until it is true or timeout_ms passes.
bool th_wait(bool (*cond)(void *arg), void *arg, int timeout_ms);

// Runs `idunno` (from $IDUNNO_BIN_DIR) with the given arguments; captures
// stdout into *out (caller frees; may be NULL) and returns the exit code.
int th_cli(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
// Runs a shell command line; same capture and exit code.
int th_sh(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
// The same with a va_list, after a fixed prefix (not formatted).
int th_vrun(char **out, const char *prefix, const char *fmt,
    va_list ap);
// The built tools: $IDUNNO_BIN_DIR, else ../tools beside this executable's
// folder (build/tests/x -> build/tools), so a run from anywhere finds them.
const char *th_bin_dir(void);
// Asserts that text (a job's output, one line per query) holds queries
// 0..n-1, each once, in order.
void th_exactly_once(const char *text, size_t len, unsigned n);
// Asserts that SDFS file `name` can be read through c and returns its
// newest version as a NUL-terminated string (caller frees with free()).
char *th_sdfs_text(idn_client *c, const char *name);
// th_num_after: the number that follows key in text (a JSON
// document, a log line), or -1 when text is NULL, key is absent or its
// value is null.
double th_num_after(const char *text, const char *key);
// Reads a whole file of at most max_bytes (caller frees *data with free()).
int th_read_file(const char *path, size_t max_bytes, uint8_t **data,
    size_t *len);

#endif
