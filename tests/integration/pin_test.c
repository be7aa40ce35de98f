// SPDX-License-Identifier: MIT
// pin_test.c: `cluster up --pin` puts each worker's model on a CPU of its
// own: the executor thread runs only there, the node's other threads never
// do, a restarted worker is pinned again, and the pinned workers answer an
// inference job exactly once. Bad --model-cpu values are refused.
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/idunno.h>

#include "cluster.h"

#define FASHION "/usr/share/datasets/fashion-mnist"
#define QUERIES "pin/queries"
#define NQUERIES 1200

static th_cluster cl;
static idn_client *c;
static int ncpu; // CPUs this process may use

static int
put_blob(void *arg, const char *name, const void *data, size_t len)
{
	return idn_sdfs_put_buf(c, name, data, len, NULL);
}

static int
setup(void **st)
{
	cpu_set_t set;
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	ncpu = CPU_COUNT(&set);
	IDN_PASS(th_cluster_up_with(&cl, 4, "--pin"));
	IDN_PASS(th_cluster_client(&cl, "standby", 30000, &c));
	return 0;
}

static int
teardown(void **st)
{
	idn_client_close(c);
	th_cluster_down(&cl);
	return 0;
}

// A worker's model CPU per `cluster status --json`, or -1.
static int
model_cpu(const char *worker)
{
	char *out = NULL, key[64];
	assert_int_equal(th_cluster_cli(&cl, &out, "cluster status --json"),
	    0);
	snprintf(key, sizeof(key), "\"name\": \"%s\"", worker);
	const char *p = strstr(out, key);
	assert_non_null(p);
	const char *end = strchr(p, '}');
	const char *m = strstr(p, "\"model_cpu\": ");
	int cpu = m != NULL && m < end ? atoi(m + 13) : -1;
	free(out);
	return cpu;
}

// Whether cpu is in a Cpus_allowed_list such as "0-3,6".
static bool
list_has(const char *list, int cpu)
{
	for (const char *p = list; *p != '\0';) {
		char *end;
		long a = strtol(p, &end, 10), b = a;
		if (*end == '-') {
			b = strtol(end + 1, &end, 10);
		}
		if (cpu >= a && cpu <= b) {
			return true;
		}
		p = *end == ',' ? end + 1 : end + strlen(end);
	}
	return false;
}

typedef struct {
	pid_t pid;
	int cpu;
	int others;    // threads besides the executor
	int others_on; // of them allowed on cpu
	bool exec_only; // the executor is allowed on cpu alone
} placement;

static void
read_placement(placement *pl)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task", (int) pl->pid);
	DIR *d = opendir(path);
	assert_non_null(d);
	pl->others = pl->others_on = 0;
	pl->exec_only = false;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.') {
			continue;
		}
		char f[400], comm[32] = "", line[256], list[128] = "";
		snprintf(f, sizeof(f), "%s/%s/comm", path, e->d_name);
		FILE *fp = fopen(f, "re");
		if (fp == NULL) {
			continue; // a thread that just ended
		}
		if (fgets(comm, sizeof(comm), fp) != NULL) {
			comm[strcspn(comm, "\n")] = '\0';
		}
		fclose(fp);
		snprintf(f, sizeof(f), "%s/%s/status", path, e->d_name);
		if ((fp = fopen(f, "re")) == NULL) {
			continue;
		}
		while (fgets(line, sizeof(line), fp) != NULL) {
			sscanf(line, "Cpus_allowed_list: %127s", list);
		}
		fclose(fp);
		if (strcmp(comm, "idn-exec") == 0) {
			char want[16];
			snprintf(want, sizeof(want), "%d", pl->cpu);
			pl->exec_only = strcmp(list, want) == 0;
		} else {
			pl->others++;
			pl->others_on += list_has(list, pl->cpu);
		}
	}
	closedir(d);
}

static bool
pinned(void *arg)
{
	placement *pl = arg;
	read_placement(pl);
	return pl->exec_only;
}

// The worker's executor runs on its model CPU alone and no other thread
// of the node may run there.
static void
check_pinned(const char *worker)
{
	placement pl = {th_cluster_pid(&cl, worker), model_cpu(worker), 0,
	    0, false};
	assert_true(pl.pid > 0);
	if (ncpu < 2) {
		// One CPU: pinning would take it from the housekeeping.
		assert_int_equal(pl.cpu, -1);
		return;
	}
	assert_true(pl.cpu >= 0 && pl.cpu < CPU_SETSIZE);
	if (!th_wait(pinned, &pl, 20000)) {
		fail_msg("%s: the executor is not on CPU %d alone", worker,
		    pl.cpu);
	}
	assert_true(pl.others > 10);
	assert_int_equal(pl.others_on, 0);
}

static void
test_pinned_workers(void **st)
{
	check_pinned("worker1");
	check_pinned("worker2");
	if (ncpu >= 2) {
		// The last CPU first, then the one below it.
		assert_int_not_equal(model_cpu("worker1"),
		    model_cpu("worker2"));
	}
	int before = model_cpu("worker1");
	IDN_PASS(th_cluster_kill(&cl, "worker1"));
	IDN_PASS(th_cluster_restart(&cl, "worker1"));
	assert_int_equal(model_cpu("worker1"), before);
	check_pinned("worker1");
}

static void
test_pinned_job_exactly_once(void **st)
{
	IDN_PASS(idn_dataset_shards(FASHION "/t10k-images-idx3-ubyte.gz",
	    FASHION "/t10k-labels-idx1-ubyte.gz", QUERIES, 1000, put_blob,
	    NULL));
	const char desc[] = "backend = sim\ninput = 1x28x28\nclasses = 10\n"
	    "service_ms = 20\n";
	char *err = NULL;
	IDN_PASS(idn_model_store(c, "pinsim", desc, strlen(desc), NULL, 0,
	    &err));
	char *out = NULL;
	assert_int_equal(th_cluster_cli(&cl, &out, "--node %s infer start "
	    ">/dev/null && '%s/idunno' --root %s --node %s infer add pj "
	    "--model pinsim --queries " QUERIES " --batch 16 --rate 2000 "
	    "--limit %d 2>&1", th_cluster_addr(&cl, "standby"),
	    th_bin_dir(), cl.root, th_cluster_addr(&cl, "standby"),
	    NQUERIES), 0);
	free(out);
	IDN_PASS(idn_job_wait(c, "pj", 120000, NULL));
	void *text = NULL;
	size_t len = 0;
	IDN_PASS(idn_sdfs_get_buf(c, "results/pj/output", 0, &text, &len,
	    NULL));
	th_exactly_once(text, len, NQUERIES);
	idn_free(text);
}

static void
test_bad_model_cpu(void **st)
{
	const char *bin = th_bin_dir();
	const char *dir = th_tmpdir();
	struct {
		const char *prog, *arg, *msg;
	} cases[] = {
	    {"idunno-worker", "-1", "not a number"},
	    {"idunno-worker", "x", "not a number"},
	    {"idunno-worker", "1024", "not a number"},
	    {"idunno-worker", "1000", "not one this process may use"},
	    {"idunno-coord", "0", "unknown option '--model-cpu'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *out = NULL;
		int rv = th_sh(&out, "'%s/%s' --data %s/bad%zu --key "
		    "'%s/cluster.key' --model-cpu %s 2>&1", bin, cases[i].prog,
		    dir, i, cl.root, cases[i].arg);
		if (rv != 2 || strstr(out, cases[i].msg) == NULL) {
			fail_msg("%s --model-cpu %s: exit %d, '%s' (want 2 and "
			    "'%s')", cases[i].prog, cases[i].arg, rv, out,
			    cases[i].msg);
		}
		free(out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pinned_workers),
	    cmocka_unit_test(test_pinned_job_exactly_once),
	    cmocka_unit_test(test_bad_model_cpu),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
