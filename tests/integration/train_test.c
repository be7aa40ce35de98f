// SPDX-License-Identifier: MIT
// train_test.c: data-parallel training jobs on a real 6-node cluster with
// LeNet-5 on Fashion-MNIST: refusals that leave nothing behind; a job
// asking for more workers than exist waits, saying so; 2 ranks against 1
// with the same global batch give the same loss curve; a rerun gives
// bit-identical weights; a rank SIGKILLed mid-run is replaced and the job
// resumes from its last checkpoint, ending as accurate as the same job
// without the kill; ResNet-18 learns on 2 workers; the coordinator
// SIGKILLed mid-training: the ranks train on and the standby finishes the
// bookkeeping.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <idunno/idunno.h>

#include "cluster.h"

#define WORKERS 4
#define DOOR "worker4"   // never killed: the tests' door to the cluster
#define COMMON "--epochs 2 --batch 64 --lr 0.02 --limit 1280"

static th_cluster cl;
static idn_client *c;

static int
setup(void **st)
{
	IDN_PASS(th_cluster_up(&cl, 2 + WORKERS));
	IDN_PASS(th_cluster_client(&cl, DOOR, 30000, &c));
	assert_int_equal(th_cluster_cli(&cl, NULL, "--node %s dataset import "
	    "fashion-mnist >/dev/null", th_cluster_addr(&cl, DOOR)), 0);
	// One model name a job: weights and checkpoints are per model.
	const char *names[] = {"lenA", "lenB", "lenC", "lenD", "lenE", "lenF"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(th_cluster_cli(&cl, NULL, "--node %s model put "
		    "%s %s/../models/lenet5.pt %s/../models/lenet5.desc "
		    ">/dev/null", th_cluster_addr(&cl, DOOR), names[i],
		    th_bin_dir(), th_bin_dir()), 0);
	}
	assert_int_equal(th_cluster_cli(&cl, NULL, "--node %s model put "
	    "resnet18 %s/../models/resnet18.pt %s/../models/resnet18.desc "
	    ">/dev/null", th_cluster_addr(&cl, DOOR), th_bin_dir(),
	    th_bin_dir()), 0);
	IDN_PASS(idn_phase_start(c, IDN_PHASE_TRAIN, NULL));
	return 0;
}

static int
teardown(void **st)
{
	idn_client_close(c);
	th_cluster_down(&cl);
	return 0;
}

static int
cli(char **out, const char *args)
{
	return th_cluster_cli(&cl, out, "--node %s %s 2>&1",
	    th_cluster_addr(&cl, DOOR), args);
}

// The job's entry of `jobs --json` (static buffer), "" if none.
static const char *
job_json(const char *job)
{
	static char entry[4096];
	char *json = NULL, key[96];
	entry[0] = '\0';
	if (idn_sched_jobs(c, &json) != IDN_OK) {
		return entry;
	}
	snprintf(key, sizeof(key), "{\"job\": \"%s\"", job);
	const char *p = strstr(json, key);
	if (p != NULL) {
		const char *e = strchr(p, '}');
		size_t n = e ? (size_t) (e - p + 1) : strlen(p);
		n = n < sizeof(entry) - 1 ? n : sizeof(entry) - 1;
		memcpy(entry, p, n);
		entry[n] = '\0';
	}
	idn_free(json);
	return entry;
}

static int
wait_done(const char *job)
{
	int state = -1;
	IDN_PASS(idn_job_wait(c, job, 180000, &state));
	return state;
}

// Each "epoch N/E train_loss X" of a model's metrics, into loss[N - 1].
static int
losses(const char *model, double *loss, int max)
{
	char name[96];
	snprintf(name, sizeof(name), "models/%s/metrics", model);
	char *m = th_sdfs_text(c, name);
	int n = 0;
	for (char *p = strstr(m, "epoch "); p != NULL && n < max;
	    p = strstr(p + 1, "\nepoch ")) {
		loss[n++] = th_num_after(p, "train_loss ");
	}
	free(m);
	return n;
}

static double
accuracy(const char *job)
{
	return th_num_after(job_json(job), "\"accuracy\": ");
}

// A refused command: exit 1, the message names want, and no such job.
static void
refused(const char *args, const char *want)
{
	char *out = NULL;
	int rc = cli(&out, args);
	if (rc != 1 || strstr(out, want) == NULL) {
		fail_msg("'%s': exit %d, output '%s' (want 1 and '%s')", args,
		    rc, out, want);
	}
	free(out);
	assert_string_equal(job_json("bad"), "");
}

static void
test_refusals(void **st)
{
	refused("train add bad --model lenA --workers 0", "workers must be");
	refused("train add bad --model lenA --workers 17", "workers must be");
	refused("train add bad --model lenA --wd -1", "weight decay");
	refused("train add bad --model lenA --momentum 1", "momentum");
	refused("train add bad --model lenA --workers 4 --batch 6",
	    "global batch");
	refused("train add bad --model lenA --from weights",
	    "no trained weights yet");
	refused("train add bad --model lenA --checkpoint-every 0",
	    "checkpoint interval");
	// Not a value the option has: a usage error, no call made.
	char *out = NULL;
	assert_int_equal(cli(&out, "train add bad --model lenA --from "
	    "scratch"), 2);
	assert_non_null(strstr(out, "--from: 'scratch'"));
	free(out);
	assert_string_equal(job_json("bad"), "");
}

static bool
waiting(void *arg)
{
	return strstr(job_json(arg), "\"waiting\": \"waiting for 9 workers") !=
	    NULL;
}

// More workers than the cluster has: queued, saying why; removed, nothing
// was written.
static void
test_more_workers_than_exist(void **st)
{
	char *out = NULL;
	assert_int_equal(cli(&out, "train add big --model lenD --workers 9 "
	    COMMON), 0);
	free(out);
	assert_true(th_wait(waiting, "big", 30000));
	assert_non_null(strstr(job_json("big"), "\"state\": \"queued\""));
	assert_int_equal(cli(&out, "train remove big"), 0);
	free(out);
	idn_sdfs_entry *e = NULL;
	size_t n = 0;
	IDN_PASS(idn_sdfs_ls_prefix(c, "models/lenD/", &e, &n));
	for (size_t i = 0; i < n; i++) {
		assert_null(strstr(e[i].name, "checkpoint"));
		assert_null(strstr(e[i].name, "weights"));
	}
	idn_free(e);
}

static bool
two_ranks(void *arg)
{
	const char *j = job_json(arg);
	const char *w = strstr(j, "\"workers\": [\"");
	return w != NULL && strchr(w + 13, ',') != NULL;
}

// 1 rank with the global batch against 2 ranks of half of it each: the
// same loss curve (LeNet-5 has no batch norm: only float summation order
// differs); both learn; `jobs` lists the 2 ranks' workers while it runs.
// A rerun of the 2-rank job gives bit-identical weights.
static void
test_two_ranks_as_one(void **st)
{
	char *out = NULL;
	assert_int_equal(cli(&out, "train add one --model lenA --workers 1 "
	    COMMON), 0);
	free(out);
	assert_int_equal(cli(&out, "train add two --model lenB --workers 2 "
	    COMMON), 0);
	free(out);
	assert_true(th_wait(two_ranks, "two", 60000));
	assert_int_equal(cli(&out, "assign --json"), 0);
	assert_non_null(strstr(out, "\"job\": \"two\", \"share\": 1.0000, "
	    "\"rank\": 1, \"world\": 2"));
	free(out);
	assert_int_equal(wait_done("one"), IDN_JOB_DONE);
	assert_int_equal(wait_done("two"), IDN_JOB_DONE);
	double l1[4], l2[4];
	assert_int_equal(losses("lenA", l1, 4), 2);
	assert_int_equal(losses("lenB", l2, 4), 2);
	for (int e = 0; e < 2; e++) {
		if (!(l1[e] > 0 && l2[e] > 0 && l2[e] / l1[e] < 1.001 &&
		    l1[e] / l2[e] < 1.001)) {
			fail_msg("epoch %d: train loss %.6f with 1 rank, %.6f "
			    "with 2", e + 1, l1[e], l2[e]);
		}
	}
	assert_true(l1[1] < l1[0]);
	// Well above chance (0.1) after 40 steps.
	if (!(accuracy("one") > 0.3 && accuracy("two") > 0.3)) {
		fail_msg("accuracy %.4f with 1 rank, %.4f with 2",
		    accuracy("one"), accuracy("two"));
	}

	// The same job again: the same bytes.
	assert_int_equal(cli(&out, "train add two-again --model lenB "
	    "--workers 2 " COMMON), 0);
	free(out);
	assert_int_equal(wait_done("two-again"), IDN_JOB_DONE);
	void *v1 = NULL, *v2 = NULL;
	size_t n1, n2;
	uint64_t newest;
	IDN_PASS(idn_sdfs_get_buf(c, "models/lenB/weights", 0, &v2, &n2,
	    &newest));
	assert_int_equal(newest, 2);
	IDN_PASS(idn_sdfs_get_buf(c, "models/lenB/weights", 1, &v1, &n1, NULL));
	assert_int_equal(n1, n2);
	assert_memory_equal(v1, v2, n1);
	idn_free(v1);
	idn_free(v2);
}

static bool
has_checkpoint(void *arg)
{
	void *m = NULL;
	size_t n;
	bool ok = idn_sdfs_get_buf(c, arg, 0, &m, &n, NULL) == IDN_OK;
	idn_free(m);
	return ok;
}

// The worker holding rank `rank` of job (its name "workerN"), or NULL.
static const char *
rank_worker(const char *job, int rank)
{
	static char name[16];
	char *out = NULL, key[128];
	if (cli(&out, "assign --json") != 0) {
		free(out);
		return NULL;
	}
	snprintf(key, sizeof(key), "\"job\": \"%s\", \"share\": 1.0000, "
	    "\"rank\": %d,", job, rank);
	const char *hit = strstr(out, key);
	const char *w = NULL;
	for (const char *p = out; hit && (p = strstr(p, "{\"worker\": \"")) &&
	    p < hit; p++) {
		w = p + 12;
	}
	name[0] = '\0';
	for (int i = 1; w != NULL && i <= WORKERS; i++) {
		const char *addr = th_cluster_addr(&cl, (snprintf(name,
		    sizeof(name), "worker%d", i), name));
		if (addr != NULL && strncmp(w, addr, strlen(addr)) == 0 &&
		    w[strlen(addr)] == ':') {
			free(out);
			return name;
		}
	}
	free(out);
	return NULL;
}

// The first log line matching the extended regex (static buffer), or "".
static const char *
log_line(const char *regex)
{
	static char line[1024];
	char *out = NULL;
	line[0] = '\0';
	// `grep` prints "NODE: LINE" on stdout (the counts on stderr).
	th_cluster_cli(&cl, &out, "--node %s grep --regex '%s' 2>/dev/null "
	    "| sed 's/^[^ ]*: //' | sort | head -1",
	    th_cluster_addr(&cl, DOOR), regex);
	if (out != NULL) {
		snprintf(line, sizeof(line), "%s", out);
		free(out);
	}
	return line;
}

// A rank SIGKILLed mid-run: the generation ends, a new one on a free
// worker resumes from the last checkpoint (not from the start) within
// 5 s of the kill, and the job ends as accurate as the same job without
// the kill, run beside it.
static void
test_rank_killed(void **st)
{
	char *out = NULL;
	const char *spec = "--workers 2 --epochs 3 --batch 64 --lr 0.02 "
	    "--limit 6400 --checkpoint-every 1";
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "train add victim --model lenC %s", spec);
	assert_int_equal(cli(&out, cmd), 0);
	free(out);
	assert_true(th_wait(has_checkpoint, "models/lenC/checkpoint.meta",
	    120000));
	const char *name = rank_worker("victim", 1);
	assert_non_null(name);
	if (strcmp(name, DOOR) == 0) {
		name = rank_worker("victim", 0); // the door stays up
	}
	assert_non_null(name);
	uint64_t kill_ms = idn_wall_ms(); // log lines carry wall time
	IDN_PASS(th_cluster_kill(&cl, name));
	// The reference: the same spec without a kill, after it.
	snprintf(cmd, sizeof(cmd), "train add calm --model lenE %s", spec);
	assert_int_equal(wait_done("victim"), IDN_JOB_DONE);
	assert_int_equal(cli(&out, cmd), 0);
	free(out);
	assert_int_equal(wait_done("calm"), IDN_JOB_DONE);
	const char *g = log_line("training victim: generation 2 on");
	assert_true(g[0] != '\0');
	const char *resumed = log_line("training victim rank 0 of [12] attempt "
	    "2: first step");
	assert_true(resumed[0] != '\0');
	uint64_t at = th_log_ms(resumed);
	if (at > kill_ms + 5000) {
		fail_msg("resumed %llu ms after the kill: %s",
		    (unsigned long long) (at - kill_ms), resumed);
	}
	// Not from the start: a later step, or a later epoch.
	assert_null(strstr(resumed, "first step 0 of epoch 1 "));
	double a = accuracy("victim"), b = accuracy("calm");
	if (!(a > 0.6 && a > b - 0.01)) {
		fail_msg("accuracy %.4f after the kill, %.4f without", a, b);
	}
	IDN_PASS(th_cluster_restart(&cl, name));
	IDN_PASS(th_cluster_wait_alive(&cl, 60000));
}

// ResNet-18 learns as a 2-worker job with periodic averaging (the demo's
// recipe, shortened): its loss falls and it ends well above chance.
static void
test_resnet_learns(void **st)
{
	char *out = NULL;
	assert_int_equal(cli(&out, "train add res --model resnet18 --workers 2 "
	    "--epochs 2 --batch 64 --lr 0.05 --limit 1536 --sync-every 4 "
	    "--wd 0.0005"), 0);
	free(out);
	assert_int_equal(wait_done("res"), IDN_JOB_DONE);
	double l[4];
	assert_int_equal(losses("resnet18", l, 4), 2);
	double a = accuracy("res");
	if (!(l[1] < l[0] && a > 0.3)) {
		fail_msg("train loss %.4f then %.4f, accuracy %.4f", l[0], l[1],
		    a);
	}
}

static bool
epoch_one(void *arg)
{
	return th_num_after(job_json(arg), "\"epoch\": ") >= 1;
}

// The coordinator SIGKILLed mid-training: the ranks are not disturbed (no
// second generation), the standby takes over and records the end.
static void
test_coordinator_killed(void **st)
{
	char *out = NULL;
	assert_int_equal(cli(&out, "train add steady --model lenF --workers 2 "
	    "--epochs 4 --batch 64 --lr 0.02 --limit 6400"), 0);
	free(out);
	assert_true(th_wait(epoch_one, "steady", 120000));
	IDN_PASS(th_cluster_kill(&cl, "coord"));
	assert_int_equal(wait_done("steady"), IDN_JOB_DONE);
	assert_true(accuracy("steady") > 0.6);
	assert_int_equal(th_num_after(job_json("steady"), "\"generation\": "), 1);
	assert_string_equal(log_line("training steady: generation 2"), "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_more_workers_than_exist),
	    cmocka_unit_test(test_two_ranks_as_one),
	    cmocka_unit_test(test_rank_killed),
	    cmocka_unit_test(test_resnet_learns),
	    cmocka_unit_test(test_coordinator_killed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
