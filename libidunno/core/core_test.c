// SPDX-License-Identifier: MIT
// core_test.c: the JSON writer, the growable buffer's printf, timed waits
// and the lines queued under a lock.
#include <string.h>

#include "core/core.h"
#include "harness.h"

static char *
json(const char *s)
{
	core_buf b = {0};
	IDN_PASS(core_json_str(&b, s));
	IDN_PASS(core_buf_append(&b, "", 1));
	return (char *) b.data;
}

static void
want_json(const char *s, const char *want)
{
	char *got = json(s);
	assert_string_equal(got, want);
	free(got);
}

static void
test_json_strings(void **st)
{
	want_json("", "\"\"");
	want_json("plain text", "\"plain text\"");
	want_json("a\"b\\c", "\"a\\\"b\\\\c\"");
	want_json("l1\nl2\r\t", "\"l1\\nl2\\r\\t\"");
	want_json("\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\"");
	// UTF-8 as it is; bytes that are not UTF-8 as their Latin-1 code.
	want_json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	    "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	want_json("\xe9t\xe9", "\"\\u00e9t\\u00e9\"");
	want_json("\xc0\xaf", "\"\\u00c0\\u00af\"");     // overlong '/'
	want_json("\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\""); // surrogate
	want_json("\xe2\x82", "\"\\u00e2\\u0082\"");     // cut short
	char *q = idn_json_string("x\"y");
	assert_string_equal(q, "\"x\\\"y\"");
	idn_free(q);
	assert_null(idn_json_string(NULL));
}

static void
test_json_numbers_and_long_text(void **st)
{
	core_buf b = {0};
	IDN_PASS(core_json_num(&b, "%.4f", 1.5));
	IDN_PASS(core_buf_append(&b, " ", 1));
	IDN_PASS(core_json_num(&b, "%.4f", 0.0 / 0.0));
	IDN_PASS(core_buf_append(&b, " ", 1));
	IDN_PASS(core_json_num(&b, "%.6g", 1.0 / 0.0));
	IDN_PASS(core_buf_append(&b, "", 1));
	assert_string_equal((char *) b.data, "1.5000 null null");
	core_buf_free(&b);
	// Nothing is cut short, however long.
	char big[5000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	IDN_PASS(core_buf_printf(&b, "<%s>%d", big, 7));
	assert_int_equal(b.len, sizeof(big) - 1 + 3);
	assert_memory_equal(b.data + b.len - 2, ">7", 2);
	core_buf_free(&b);
}

static void
test_timed_wait(void **st)
{
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv;
	IDN_PASS(core_cond_init(&cv));
	core_lock(&m);
	uint64_t t0 = idn_clock_ms();
	int rv;
	while ((rv = core_cond_wait_ms(&cv, &m, 50)) == IDN_OK &&
	    idn_clock_ms() < t0 + 50) {
	}
	assert_int_equal(rv, IDN_ETIMEDOUT);
	assert_true(idn_clock_ms() >= t0 + 50);
	IDN_FAIL(core_cond_wait_until(&cv, &m, t0), IDN_ETIMEDOUT);
	core_unlock(&m);
	pthread_cond_destroy(&cv);
}

typedef struct {
	char lines[256];
	int levels;
	int held; // locks held when the host saw a line
} seen;

static void
host(void *arg, int level, const char *line)
{
	seen *s = arg;
	strcat(s->lines, line);
	strcat(s->lines, "|");
	s->levels = s->levels * 10 + level;
	s->held += core_locks_held;
}

static void
test_lines_after_unlock(void **st)
{
	seen s = {0};
	core_logger lg = {host, &s, IDN_LOG_INFO};
	core_logq q = {&lg, {0}};
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	core_lock(&m);
	core_logq_add(&q, IDN_LOG_INFO, "one %d", 1);
	core_logq_add(&q, IDN_LOG_DEBUG, "below the level");
	core_logq_add(&q, IDN_LOG_WARN, "two");
	assert_string_equal(s.lines, "");
	core_unlock_log(&m, &q);
	assert_string_equal(s.lines, "one 1|two|");
	assert_int_equal(s.levels, IDN_LOG_INFO * 10 + IDN_LOG_WARN);
	assert_int_equal(s.held, 0);
	// A wait with lines queued emits them and returns at once.
	pthread_cond_t cv;
	IDN_PASS(core_cond_init(&cv));
	core_lock(&m);
	core_logq_add(&q, IDN_LOG_INFO, "three");
	IDN_PASS(core_cond_wait_log(&cv, &m, &q, idn_clock_ms() + 60000));
	assert_string_equal(s.lines, "one 1|two|three|");
	core_unlock_log(&m, &q);
	core_logf(&lg, IDN_LOG_ERROR, "four");
	assert_string_equal(s.lines, "one 1|two|three|four|");
	// With another lock held the lines wait for a later unlock.
	pthread_mutex_t outer = PTHREAD_MUTEX_INITIALIZER;
	core_lock(&outer);
	core_lock(&m);
	core_logq_add(&q, IDN_LOG_INFO, "five");
	core_unlock_log(&m, &q);
	assert_string_equal(s.lines, "one 1|two|three|four|");
	core_unlock(&outer);
	core_lock(&m);
	core_unlock_log(&m, &q);
	assert_string_equal(s.lines, "one 1|two|three|four|five|");
	assert_int_equal(s.held, 0);
	core_logq_free(&q);
	pthread_cond_destroy(&cv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_strings),
	    cmocka_unit_test(test_json_numbers_and_long_text),
	    cmocka_unit_test(test_timed_wait),
	    cmocka_unit_test(test_lines_after_unlock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
