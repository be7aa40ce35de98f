// SPDX-License-Identifier: MIT
// log_test.c: the node log rotates at its size and keeps N old files.
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "log/log.h"

static bool
exists(const char *dir, const char *name, off_t *size)
{
	char path[512];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (stat(path, &st) != 0) {
		return false;
	}
	*size = st.st_size;
	return true;
}

static void
no_line(void *arg, const char *line, size_t len)
{
}

static void
test_rotates_at_size(void **st)
{
	const char *dir = th_tmpdir();
	char path[512];
	snprintf(path, sizeof(path), "%s/node.log", dir);
	nlog *l;
	IDN_PASS(nlog_open(path, &l));
	nlog_set_rotate(l, 1000, 2);
	char event[64];
	for (int i = 0; i < 200; i++) { // about 13 kB of lines
		snprintf(event, sizeof(event), "event %03d", i);
		nlog_write(l, IDN_LOG_INFO, event);
	}
	off_t size = 0;
	assert_true(exists(dir, "node.log", &size));
	assert_true(size > 0 && size <= 1000);
	assert_true(exists(dir, "node.log.1", &size));
	assert_true(size > 0 && size <= 1000);
	assert_true(exists(dir, "node.log.2", &size));
	assert_false(exists(dir, "node.log.3", &size));
	// The newest line is in the current file.
	uint64_t count = 0;
	IDN_PASS(nlog_grep(path, "event 199", false, 10, no_line, NULL, &count));
	assert_int_equal(count, 1);
	nlog_close(l);
	// Reopened, it goes on from the size on disk.
	IDN_PASS(nlog_open(path, &l));
	nlog_set_rotate(l, 1000, 2);
	for (int i = 0; i < 30; i++) {
		nlog_write(l, IDN_LOG_INFO, "again");
	}
	assert_true(exists(dir, "node.log", &size));
	assert_true(size <= 1000);
	nlog_close(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rotates_at_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
