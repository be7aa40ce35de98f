// SPDX-License-Identifier: MIT
// slow_load_test.c: one worker, two jobs. The first job's model takes
// seconds to load (a sim model with load_ms, as ResNet-18's 45 MB of
// weights did with 8 workers loading at once); the worker loads it in the
// background and runs the second job's batches meanwhile, so the second
// job finishes batches before the first job's model is even loaded. Both
// outputs are exact.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <idunno/idunno.h>

#include "cluster.h"

#define FASHION "/usr/share/datasets/fashion-mnist"
#define QUERIES "slow/queries"
#define LOAD_MS 6000
#define N 320

static th_cluster cl;
static idn_client *c;

static int
put_blob(void *arg, const char *name, const void *data, size_t len)
{
	return idn_sdfs_put_buf(c, name, data, len, NULL);
}

static void
put_sim(const char *name, int service_ms, int load_ms)
{
	char desc[256], *err = NULL;
	snprintf(desc, sizeof(desc), "backend = sim\ninput = 1x28x28\nclasses = "
	    "10\nservice_ms = %d\nload_ms = %d\n", service_ms, load_ms);
	IDN_PASS(idn_model_store(c, name, desc, strlen(desc), NULL, 0, &err));
}

static double
done_of(const char *job)
{
	char *json = NULL, key[96];
	IDN_PASS(idn_sched_stats(c, job, &json));
	snprintf(key, sizeof(key), "\"job\": \"%s\"", job);
	const char *p = strstr(json, key);
	const char *d = p ? strstr(p, "\"done\": ") : NULL;
	double v = d ? strtod(d + 8, NULL) : -1;
	idn_free(json);
	return v;
}

static void
add(const char *job, const char *model)
{
	char *out = NULL;
	int rc = th_cluster_cli(&cl, &out, "--node %s infer add %s --model "
	    "%s --queries " QUERIES " --batch 16 --rate 400 --limit %d 2>&1",
	    th_cluster_addr(&cl, "standby"), job, model, N);
	if (rc != 0) {
		fail_msg("infer add %s: exit %d: %s", job, rc, out);
	}
	free(out);
}

static void
check_output(const char *job)
{
	char name[96];
	void *text = NULL;
	size_t len = 0;
	snprintf(name, sizeof(name), "results/%s/output", job);
	IDN_PASS(idn_sdfs_get_buf(c, name, 0, &text, &len, NULL));
	th_exactly_once(text, len, N);
	idn_free(text);
}

static void
test_slow_load_holds_up_nothing(void **st)
{
	IDN_PASS(th_cluster_up(&cl, 3));
	IDN_PASS(th_cluster_client(&cl, "standby", 30000, &c));
	IDN_PASS(idn_dataset_shards(FASHION "/t10k-images-idx3-ubyte.gz",
	    FASHION "/t10k-labels-idx1-ubyte.gz", QUERIES, 1000, put_blob,
	    NULL));
	put_sim("heavy", 20, LOAD_MS); // the store validates: one load here
	put_sim("light", 20, 0);
	assert_int_equal(th_cluster_cli(&cl, NULL, "--node %s infer start "
	    ">/dev/null", th_cluster_addr(&cl, "standby")), 0);
	add("heavy-job", "heavy");
	// Once the worker holds heavy-job's leases (and loads its model).
	uint64_t deadline = th_now_ms() + 20000;
	for (;;) {
		char *json = NULL;
		IDN_PASS(idn_sched_stats(c, "heavy-job", &json));
		bool leased = strstr(json, "\"workers\": [\"") != NULL;
		idn_free(json);
		if (leased) {
			break;
		}
		assert_true(th_now_ms() < deadline);
		usleep(50 * 1000);
	}
	uint64_t t_light = th_now_ms();
	add("light-job", "light");
	// light-job's batches run while heavy's model loads: some are done
	// before heavy's first one.
	deadline = th_now_ms() + 60000;
	while (done_of("light-job") <= 0) {
		assert_true(th_now_ms() < deadline);
		usleep(50 * 1000);
	}
	double heavy = done_of("heavy-job");
	print_message("# light-job: first done %.0f ms after its add; "
	    "heavy-job done %.0f then\n",
	    (double) (th_now_ms() - t_light), heavy);
	assert_true(heavy == 0);
	IDN_PASS(idn_job_wait(c, "light-job", 120000, NULL));
	IDN_PASS(idn_job_wait(c, "heavy-job", 120000, NULL));
	check_output("light-job");
	check_output("heavy-job");
	idn_client_close(c);
	th_cluster_down(&cl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slow_load_holds_up_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
