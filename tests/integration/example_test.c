// SPDX-License-Identifier: MIT
// example_test.c: examples/batch_submit against a local cluster: it puts
// the query set and a sim model, runs an inference job to the end, and
// prints every answer's accuracy line and the job's statistics.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

static void
test_batch_submit(void **st)
{
	th_cluster cl;
	IDN_PASS(th_cluster_up(&cl, 5));
	const char *b = getenv("IDUNNO_BUILD_DIR");
	char *out = NULL;
	int rv = th_sh(&out, "'%s/examples/batch_submit' %s "
	    "'%s/cluster.key' --job example --batch 16 --rate 400 "
	    "--limit 300 --timeout 240 2>&1", b ? b : "build",
	    th_cluster_addr(&cl, "worker2"), cl.root);
	if (rv != 0) {
		fail_msg("batch_submit exited %d:\n%s", rv, out ? out : "");
	}
	assert_non_null(strstr(out, "example done: 300 answers, accuracy "));
	assert_non_null(strstr(out, "\"jobs\""));
	free(out);
	// A second run finds the set and the model in place; a duplicate
	// job name is refused with exit code 1.
	rv = th_sh(&out, "'%s/examples/batch_submit' %s "
	    "'%s/cluster.key' --job example --limit 10 2>&1", b ? b : "build",
	    th_cluster_addr(&cl, "worker3"), cl.root);
	assert_int_equal(rv, 1);
	assert_null(strstr(out, "importing"));
	free(out);
	th_cluster_down(&cl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_batch_submit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
