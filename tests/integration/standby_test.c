// SPDX-License-Identifier: MIT
// standby_test.c: the hot standby on a real 8-node cluster with a sim
// model: the coordinator SIGKILLed while two jobs run (both finish, outputs
// byte-identical to failure-free runs); then 3 workers killed at once under
// the promoted coordinator; then the old coordinator restarted (it becomes
// the standby) and the new active one killed: the third epoch finishes;
// then a coordinator paused (SIGSTOP) past its detection and resumed: it
// steps down, the outputs are still exact; then no coordinator at all for
// 0.8 s: the workers keep writing results; a standby whose copy lags when
// it promotes runs no batch done before again; the standby answers
// `assign` from its copy; a stale checkpoint written after a newer
// epoch's is not the one a coordinator without a ledger restores.
// The jobs that finish across the first takeover have complete timing
// files, the first coordinator's rows from the standby's copy.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <idunno/idunno.h>

#include "cluster.h"

#define QUERIES "datasets/fashion-mnist/test"
#define DOOR "worker6"   // never killed: the tests' door to the cluster

static th_cluster cl;
static idn_client *c;
static void *stale;          // a ledger checkpoint of epoch 1
static size_t stale_len;

static int
setup(void **st)
{
	IDN_PASS(th_cluster_up(&cl, 8));
	IDN_PASS(th_cluster_client(&cl, DOOR, 30000, &c));
	assert_int_equal(th_cluster_cli(&cl, NULL, "--node %s dataset import "
	    "fashion-mnist >/dev/null", th_cluster_addr(&cl, DOOR)), 0);
	const char *desc = "backend = sim\ninput = 1x28x28\nclasses = 10\n"
	    "service_ms = 40\n";
	char *err = NULL;
	IDN_PASS(idn_model_store(c, "quick", desc, strlen(desc), NULL, 0, &err));
	idn_free(err);
	IDN_PASS(idn_phase_start(c, IDN_PHASE_INFER, NULL));
	return 0;
}

static int
teardown(void **st)
{
	idn_free(stale);
	idn_client_close(c);
	th_cluster_down(&cl);
	return 0;
}

static double
num_after(const char *p, const char *key)
{
	const char *q = p ? strstr(p, key) : NULL;
	return q ? strtod(q + strlen(key), NULL) : -1;
}

static double
job_field(const char *json, const char *job, const char *field)
{
	char key[96];
	snprintf(key, sizeof(key), "\"job\": \"%s\"", job);
	const char *p = strstr(json, key);
	snprintf(key, sizeof(key), "\"%s\": ", field);
	return p ? num_after(p, key) : -1;
}

static void
add(const char *job, unsigned batch, unsigned limit)
{
	idn_infer_spec s;
	idn_infer_spec_init(&s);
	s.job = job;
	s.model = "quick";
	s.queries = QUERIES;
	s.batch = batch;
	s.rate = 300;
	s.limit = limit;
	char *err = NULL;
	int rv = idn_job_add_infer(c, &s, &err);
	if (rv != IDN_OK) {
		fail_msg("infer add %s: %s", job, err ? err : idn_strerror(rv));
	}
}

static void
add_pair(const char *a, const char *b)
{
	add(a, 16, 2400);
	add(b, 20, 2000);
}

// Waits until both jobs of a pair are well under way.
static void
wait_running(const char *a, const char *b)
{
	uint64_t deadline = th_now_ms() + 30000;
	for (;;) {
		char *json = NULL;
		IDN_PASS(idn_sched_stats(c, NULL, &json));
		double da = job_field(json, a, "done");
		double db = job_field(json, b, "done");
		idn_free(json);
		if (da >= 500 && db >= 400) {
			return;
		}
		assert_true(th_now_ms() < deadline);
		usleep(50 * 1000);
	}
}

typedef struct {
	uint64_t epoch;
} epoch_arg;

// The active coordinator's epoch reached e->epoch, per `idunno jobs`.
static bool
epoch_reached(void *arg)
{
	epoch_arg *e = arg;
	char *json = NULL;
	bool ok = idn_sched_jobs(c, &json) == IDN_OK &&
	    num_after(json, "\"epoch\": ") >= (double) e->epoch;
	idn_free(json);
	return ok;
}

// The standby of the active coordinator is the node `name`.
static bool
standby_is(void *arg)
{
	char *json = NULL, want[128];
	snprintf(want, sizeof(want), "\"standby\": \"%s:",
	    th_cluster_addr(&cl, arg));
	bool ok = idn_sched_jobs(c, &json) == IDN_OK &&
	    strstr(json, want) != NULL;
	idn_free(json);
	return ok;
}

static void *
output_of(const char *job, size_t *len)
{
	char name[96];
	void *data = NULL;
	snprintf(name, sizeof(name), "results/%s/output", job);
	IDN_PASS(idn_sdfs_get_buf(c, name, 0, &data, len, NULL));
	return data;
}

// Waits for both jobs and compares their outputs with the failure-free
// ka/kb: every query once, in order, the same bytes.
static void
finish_same(const char *a, const char *b, uint64_t since)
{
	IDN_PASS(idn_job_wait(c, a, 90000, NULL));
	IDN_PASS(idn_job_wait(c, b, 90000, NULL));
	print_message("# %s and %s finished %.1f s after the kill\n", a, b,
	    (double) (th_now_ms() - since) / 1000);
	const char *pairs[2][2] = {{"ka", a}, {"kb", b}};
	unsigned n[2] = {2400, 2000};
	for (int i = 0; i < 2; i++) {
		size_t l1, l2;
		char *ref = output_of(pairs[i][0], &l1);
		char *got = output_of(pairs[i][1], &l2);
		th_exactly_once(got, l2, n[i]);
		assert_int_equal(l1, l2);
		assert_memory_equal(ref, got, l1);
		idn_free(ref);
		idn_free(got);
	}
}

// Kills node `name` (the active coordinator) and waits for epoch `epoch`;
// prints the time until the new coordinator answered.
static uint64_t
kill_active(const char *name, uint64_t epoch)
{
	IDN_PASS(th_cluster_kill(&cl, name));
	uint64_t killed = th_now_ms();
	epoch_arg e = {epoch};
	assert_true(th_wait(epoch_reached, &e, 20000));
	print_message("# %s killed: epoch %llu answered %llu ms later\n", name,
	    (unsigned long long) epoch, (unsigned long long)
	    (th_now_ms() - killed));
	return killed;
}

static bool
have_checkpoint(void *arg)
{
	(void) arg;
	return idn_sdfs_get_buf(c, "ledger/checkpoint", 0, &stale, &stale_len,
	    NULL) == IDN_OK;
}

// The standby answers `assign` from its copy: the active's allocation,
// which gives the running jobs workers.
static bool
standby_assigns(void *arg)
{
	const char **jobs = arg;
	char *out = NULL;
	bool ok = th_cluster_cli(&cl, &out, "--node %s assign --here",
	    th_cluster_addr(&cl, "standby")) == 0 && out != NULL &&
	    strstr(out, jobs[0]) != NULL && strstr(out, jobs[1]) != NULL;
	free(out);
	return ok;
}

// results/JOB/timing of a job finished across a takeover: a row per task
// of the first coordinator's (from the standby's copy of its ledger) and
// of the second's, every query once, each with the worker's marks.
static void
timing_complete(const char *job, unsigned long long n)
{
	char name[96];
	snprintf(name, sizeof(name), "results/%s/timing", job);
	char *text = th_sdfs_text(c, name);
	unsigned long long queries, next = 0;
	int used = 0;
	assert_int_equal(sscanf(text, "# job=%*s start_ms=%*u rate=%*f "
	    "queries=%llu batch=%*u group=%*u\nfirst,%*[^\n]\n%n", &queries,
	    &used), 1);
	assert_int_equal(queries, n);
	assert_true(used > 0);
	for (char *p = text + used; *p != '\0';) {
		unsigned long long first, count, arrival, lease, begin, mstart,
		    mend, commit;
		assert_int_equal(sscanf(p, "%llu,%llu,%llu,%llu,%llu,%llu,%llu,"
		    "%llu,", &first, &count, &arrival, &lease, &begin, &mstart,
		    &mend, &commit), 8);
		assert_int_equal(first, next);
		next += count;
		if (!(arrival > 0 && lease > 0 && lease <= begin &&
		    begin <= mstart && mstart <= mend && mend <= commit)) {
			fail_msg("%s task at %llu: lease %llu start %llu model "
			    "%llu..%llu commit %llu", job, first, lease, begin,
			    mstart, mend, commit);
		}
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	assert_int_equal(next, n);
	free(text);
}

static void
test_coordinator_killed(void **st)
{
	// The failure-free runs.
	add_pair("ka", "kb");
	IDN_PASS(idn_job_wait(c, "ka", 90000, NULL));
	IDN_PASS(idn_job_wait(c, "kb", 90000, NULL));
	assert_true(th_wait(standby_is, "standby", 20000));
	// Epoch 1's checkpoint, for the stale write of the last test.
	assert_true(th_wait(have_checkpoint, NULL, 20000));
	add_pair("xa", "xb");
	wait_running("xa", "xb");
	const char *running[2] = {"xa", "xb"};
	assert_true(th_wait(standby_assigns, running, 10000));
	uint64_t killed = kill_active("coord", 2);
	finish_same("xa", "xb", killed);
	timing_complete("xa", 2400);
	timing_complete("xb", 2000);
	char *out = NULL;
	assert_int_equal(th_cluster_cli(&cl, &out, "--node %s grep "
	    "'first batch leased in epoch 2'", th_cluster_addr(&cl, DOOR)),
	    0);
	free(out);
	assert_int_equal(th_cluster_cli(&cl, &out, "--node %s grep "
	    "'promoting with epoch 2'", th_cluster_addr(&cl, DOOR)), 0);
	free(out);
	// No standby is left: `idunno jobs` says so.
	assert_int_equal(th_cluster_cli(&cl, &out, "--node %s jobs",
	    th_cluster_addr(&cl, DOOR)), 0);
	assert_non_null(strstr(out, "without a standby"));
	free(out);
}

static void
test_then_three_workers(void **st)
{
	add_pair("ya", "yb");
	wait_running("ya", "yb");
	assert_int_equal(th_cluster_cli(&cl, NULL, "cluster kill worker1 "
	    ">/dev/null & '%s/idunno' --root '%s' cluster kill worker2 "
	    ">/dev/null & '%s/idunno' --root '%s' cluster kill worker3 "
	    ">/dev/null; wait", th_bin_dir(), cl.root,
	    th_bin_dir(), cl.root), 0);
	finish_same("ya", "yb", th_now_ms());
}

static void
restart(const char *name)
{
	IDN_PASS(th_cluster_restart(&cl, name));
}

static void
test_third_epoch(void **st)
{
	restart("coord");
	// The old coordinator rejoins as the standby of the new one.
	assert_true(th_wait(standby_is, "coord", 30000));
	add_pair("za", "zb");
	wait_running("za", "zb");
	uint64_t killed = kill_active("standby", 3);
	finish_same("za", "zb", killed);
}

static pid_t
pid_of(const char *name)
{
	char *out = NULL, n[32], role[16];
	int p;
	pid_t pid = -1;
	th_cluster_cli(&cl, &out, "cluster status");
	for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
		if (sscanf(l, "%31s %15s pid %d", n, role, &p) == 3 &&
		    strcmp(n, name) == 0) {
			pid = p;
		}
	}
	free(out);
	return pid;
}

// A coordinator paused past its detection cannot act when it resumes: the
// standby took over with a newer epoch, workers refuse the old one's
// replies, and it steps down to become the new one's standby.
static void
test_paused_coordinator(void **st)
{
	restart("standby");
	assert_true(th_wait(standby_is, "standby", 30000));
	add_pair("pa", "pb");
	wait_running("pa", "pb");
	pid_t pid = pid_of("coord");
	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	uint64_t stopped = th_now_ms();
	epoch_arg e = {4};
	bool took = th_wait(epoch_reached, &e, 20000);
	assert_int_equal(kill(pid, SIGCONT), 0);
	assert_true(took);
	print_message("# coord paused: epoch 4 answered %llu ms later\n",
	    (unsigned long long) (th_now_ms() - stopped));
	finish_same("pa", "pb", stopped);
	assert_true(th_wait(standby_is, "coord", 30000));
	char *out = NULL;
	assert_int_equal(th_cluster_cli(&cl, &out, "--node %s grep "
	    "'stepping down'", th_cluster_addr(&cl, DOOR)), 0);
	free(out);
}

// Lines of the workers' logs with `what` (a task of the job started, a
// result of it written to SDFS) between wall ms t0 and t1.
static int
logged_between(const char *what, const char *job, uint64_t t0, uint64_t t1)
{
	char want[96];
	snprintf(want, sizeof(want), strcmp(what, "started") == 0 ?
	    "worker: task started: %s/" : "sdfs: put 'results/%s/batch-", job);
	int n = 0;
	for (int i = 1; i < 8; i++) { // the workers of 8 nodes
		char path[PATH_MAX + 64], line[1024];
		snprintf(path, sizeof(path), "%s/worker%d/node.log", cl.root, i);
		FILE *f = fopen(path, "r");
		while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
			uint64_t at = strstr(line, want) != NULL ?
			    th_log_ms(line) : 0;
			n += at >= t0 && at < t1;
		}
		if (f != NULL) {
			fclose(f);
		}
	}
	return n;
}

// Workers keep working without any coordinator: the standby paused, the
// active one killed, for GAP_MS; the workers run the leases they hold
// (leased ahead of the queries' arrival) and write their results, and
// the standby, resumed, takes over; outputs are exact.
#define GAP_MS 800
static bool
all_alive(void *arg)
{
	(void) arg;
	return th_cluster_count(&cl, DOOR, IDN_MEMBER_ALIVE) == 8;
}

static void
test_no_coordinator(void **st)
{
	// Now "standby" is active, "coord" its standby (the pause test); the
	// workers killed earlier come back, so SDFS has 6 of 8 nodes during
	// the gap.
	for (int i = 1; i <= 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "worker%d", i);
		restart(name);
	}
	assert_true(th_wait(all_alive, NULL, 30000));
	add_pair("ga", "gb");
	wait_running("ga", "gb");
	pid_t pid = pid_of("coord");
	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	uint64_t t0 = idn_wall_ms();
	int rv = th_cluster_kill(&cl, "standby");
	uint64_t t1 = idn_wall_ms();
	usleep(GAP_MS * 1000);
	uint64_t t2 = idn_wall_ms();
	assert_int_equal(kill(pid, SIGCONT), 0);
	IDN_PASS(rv);
	finish_same("ga", "gb", idn_clock_ms());
	// Both jobs offer 300 queries/s in batches of 16 and 20. The puts
	// lag the tasks: two of the 8 SDFS nodes do not answer.
	int ran = logged_between("started", "ga", t1, t2) +
	    logged_between("started", "gb", t1, t2);
	int wrote = logged_between("written", "ga", t1, t2) +
	    logged_between("written", "gb", t1, t2);
	double offered = (300.0 / 16 + 300.0 / 20) * (double) (t2 - t1) / 1000;
	print_message("# no coordinator for %llu ms: %d tasks started, %d "
	    "results written (%.0f batches arrived)\n", (unsigned long long)
	    (t2 - t0), ran, wrote, offered);
	assert_true(ran >= offered / 2);
	assert_true(wrote >= offered / 5);
	restart("standby");
	assert_true(th_wait(standby_is, "standby", 30000));
}

// Tasks of job started in the workers' logs after wall ms t0 whose batch
// the node `coord` had counted done (its log) before t0.
static int
reruns(const char *coord, const char *job, uint64_t t0)
{
	bool done[4096] = {false};
	char path[PATH_MAX + 64], line[1024], want[96];
	snprintf(path, sizeof(path), "%s/%s/node.log", cl.root, coord);
	snprintf(want, sizeof(want), "coord: batch completed: %s/", job);
	FILE *f = fopen(path, "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		const char *p = strstr(line, want);
		unsigned b = p ? (unsigned) atoi(p + strlen(want)) : 4096;
		if (b < 4096 && th_log_ms(line) < t0) {
			done[b] = true;
		}
	}
	if (f != NULL) {
		fclose(f);
	}
	int n = 0;
	snprintf(want, sizeof(want), "worker: task started: %s/", job);
	for (int i = 1; i < 8; i++) {
		snprintf(path, sizeof(path), "%s/worker%d/node.log", cl.root, i);
		f = fopen(path, "r");
		while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
			const char *p = strstr(line, want);
			unsigned b = p ? (unsigned) atoi(p + strlen(want)) : 4096;
			n += b < 4096 && done[b] && th_log_ms(line) >= t0;
		}
		if (f != NULL) {
			fclose(f);
		}
	}
	return n;
}

// A standby that promotes itself may lack the last changes its pulls had
// not reached: here it was paused for LAG_MS, then the active coordinator
// was killed and the standby resumed. The workers send the completions
// the old coordinator acknowledged again to the new epoch, so no batch
// done before the kill runs again (before: every batch done in the lag
// ran again, leased anew or given back as a lease its worker no longer
// held).
#define LAG_MS 1500
static void
test_lagging_standby(void **st)
{
	// "coord" is active, "standby" its standby (the last test).
	add_pair("la", "lb");
	wait_running("la", "lb");
	pid_t pid = pid_of("standby");
	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	usleep(LAG_MS * 1000);
	uint64_t t0 = idn_wall_ms();
	int rv = th_cluster_kill(&cl, "coord");
	assert_int_equal(kill(pid, SIGCONT), 0);
	IDN_PASS(rv);
	finish_same("la", "lb", idn_clock_ms());
	int n = reruns("coord", "la", t0) + reruns("coord", "lb", t0);
	print_message("# batches done before the kill that ran again: %d\n",
	    n);
	// A batch leased twice by the old coordinator (taken back from a
	// worker that had just started it) may still run on its second
	// holder: rare, so at most 2.
	assert_true(n <= 2);
	restart("coord");
	assert_true(th_wait(standby_is, "coord", 30000));
}

static bool
restored(void *arg)
{
	char *json = NULL;
	bool ok = idn_sched_jobs(c, &json) == IDN_OK &&
	    strstr(json, "\"pb\"") != NULL &&
	    num_after(json, "\"epoch\": ") >= *(double *) arg;
	idn_free(json);
	return ok;
}

// A coordinator that resumes after a newer epoch began may write its stale
// ledger checkpoint before it steps down: the newest SDFS version then has
// a lower epoch inside. Both coordinator nodes lost with their ledgers, the
// restarted one must restore the highest epoch's checkpoint, not the
// newest version.
static void
test_stale_checkpoint(void **st)
{
	char *json = NULL;
	IDN_PASS(idn_sched_jobs(c, &json));
	double epoch = num_after(json, "\"epoch\": ");
	idn_free(json);
	assert_true(epoch >= 4);
	IDN_PASS(idn_sdfs_put_buf(c, "ledger/checkpoint", stale, stale_len,
	    NULL));
	IDN_PASS(th_cluster_kill(&cl, "coord"));
	IDN_PASS(th_cluster_kill(&cl, "standby"));
	const char *names[2] = {"coord", "standby"};
	for (int i = 0; i < 2; i++) {
		const char *sfx[3] = {"", "-wal", "-shm"};
		for (int k = 0; k < 3; k++) {
			char path[PATH_MAX + 64];
			snprintf(path, sizeof(path), "%s/%s/coord/ledger.db%s",
			    cl.root, names[i], sfx[k]);
			unlink(path);
		}
	}
	restart("coord");
	bool ok = th_wait(restored, &epoch, 30000);
	if (!ok) {
		char cmd[PATH_MAX + 96];
		snprintf(cmd, sizeof(cmd), "grep 'coord: ' "
		    "'%s/coord/node.log' | tail -n 20 >&2", cl.root);
		assert_true(system(cmd) >= 0);
	}
	assert_true(ok);
	char *out = NULL;
	assert_int_equal(th_cluster_cli(&cl, &out, "--node %s grep "
	    "'restored the ledger from the SDFS checkpoint'",
	    th_cluster_addr(&cl, DOOR)), 0);
	print_message("# %s", out ? out : "");
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_coordinator_killed),
	    cmocka_unit_test(test_then_three_workers),
	    cmocka_unit_test(test_third_epoch),
	    cmocka_unit_test(test_paused_coordinator),
	    cmocka_unit_test(test_no_coordinator),
	    cmocka_unit_test(test_lagging_standby),
	    cmocka_unit_test(test_stale_checkpoint),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
