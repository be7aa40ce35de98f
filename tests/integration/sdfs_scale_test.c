// SPDX-License-Identifier: MIT
// sdfs_scale_test.c: more names than one anti-entropy batch. The batch is
// made small (IDUNNO_SDFS_OFFERS_PER_CALL) so that a few hundred names
// need several rounds: after a holder is killed, every name must get back
// to IDN_SDFS_REPLICAS live copies, not only those of the first batch.
// And a front answers "busy" past its limit of open puts
// (IDUNNO_SDFS_PUTS_MAX made 2) instead of opening more, and a client
// that dies mid-put leaves nothing behind once its session expires
// (IDUNNO_SDFS_SESSION_IDLE_MS made 8 s instead of 120).
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <idunno/sdfs.h>

#include "cluster.h"

#define NODES 5
#define NAMES 600

static th_cluster cl;
static bool dead[NODES];

static int
setup(void **st)
{
	// Nodes inherit the environment of `idunno cluster up`.
	setenv("IDUNNO_SDFS_OFFERS_PER_CALL", "40", 1);
	setenv("IDUNNO_SDFS_PUTS_MAX", "2", 1);
	setenv("IDUNNO_SDFS_SESSION_IDLE_MS", "8000", 1);
	setenv("IDUNNO_SDFS_LIST_PAGE", "50", 1);
	IDN_PASS(th_cluster_up(&cl, NODES));
	return 0;
}

static int
teardown(void **st)
{
	th_cluster_down(&cl);
	return 0;
}

static int
client_of(int i, idn_client **out)
{
	char name[16];
	snprintf(name, sizeof(name), "%d", i);
	const char *addr = th_cluster_addr(&cl, name);
	if (addr == NULL) {
		return IDN_ENOENT;
	}
	int rv = idn_client_open(addr, cl.key, out);
	if (rv == IDN_OK) {
		idn_client_set_timeout(*out, 10000);
	}
	return rv;
}

typedef struct {
	int copies[NAMES];
	int full;     // names with exactly IDN_SDFS_REPLICAS live copies
	int fewest;
} census;

// Counts the live copies of every name from each live node's store.
static bool
count_copies(census *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < NODES; i++) {
		idn_client *cli;
		idn_sdfs_entry *e;
		size_t n;
		if (dead[i]) {
			continue;
		}
		if (client_of(i, &cli) != IDN_OK) {
			return false;
		}
		int rv = idn_sdfs_store(cli, &e, &n);
		idn_client_close(cli);
		if (rv != IDN_OK) {
			return false;
		}
		for (size_t k = 0; k < n; k++) {
			int idx;
			if (sscanf(e[k].name, "scale/%d", &idx) == 1 &&
			    idx >= 0 && idx < NAMES && !e[k].deleted) {
				c->copies[idx]++;
			}
		}
		idn_free(e);
	}
	c->fewest = IDN_SDFS_REPLICAS;
	for (int k = 0; k < NAMES; k++) {
		c->full += c->copies[k] == IDN_SDFS_REPLICAS;
		if (c->copies[k] < c->fewest) {
			c->fewest = c->copies[k];
		}
	}
	return true;
}

static bool
all_replicated(void *arg)
{
	census *c = arg;
	return count_copies(c) && c->full == NAMES;
}

static void
test_many_names_rereplicated(void **st)
{
	idn_client *cli[NODES];
	for (int i = 0; i < NODES; i++) {
		IDN_PASS(client_of(i, &cli[i]));
	}
	uint64_t t0 = th_now_ms();
	for (int k = 0; k < NAMES; k++) {
		char name[32], data[32];
		snprintf(name, sizeof(name), "scale/%04d", k);
		int len = snprintf(data, sizeof(data), "contents %d", k);
		IDN_PASS(idn_sdfs_put_buf(cli[k % NODES], name, data,
		    (size_t) len, NULL));
	}
	fprintf(stderr, "# %d puts in %.1f s\n", NAMES,
	    (double) (th_now_ms() - t0) / 1000.0);
	for (int i = 0; i < NODES; i++) {
		idn_client_close(cli[i]);
	}
	census *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	assert_true(count_copies(c));
	assert_int_equal(c->full, NAMES);
	// Kill a worker: it held about 4/5 of the names.
	assert_int_equal(th_cluster_kill(&cl, "worker3"), IDN_OK);
	dead[4] = true;
	t0 = th_now_ms();
	if (!th_wait(all_replicated, c, 90000)) {
		fail_msg("%d of %d names back to %d copies (fewest %d)",
		    c->full, NAMES, IDN_SDFS_REPLICAS, c->fewest);
	}
	fprintf(stderr, "# %d names back to %d copies after %.1f s\n", NAMES,
	    IDN_SDFS_REPLICAS, (double) (th_now_ms() - t0) / 1000.0);
	free(c);
	// ls-prefix in pages of 50 (IDUNNO_SDFS_LIST_PAGE): every name once,
	// in order; a node that does not answer is named.
	idn_client *l;
	IDN_PASS(client_of(0, &l));
	idn_client_set_timeout(l, 20000);
	pid_t pid = th_cluster_pid(&cl, "worker1");
	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	idn_sdfs_entry *e;
	size_t n, nmiss;
	char miss[IDN_SDFS_MISSING_MAX][IDN_ADDR_MAX];
	int rv = idn_sdfs_ls_prefix_report(l, "scale/", &e, &n, miss, &nmiss);
	assert_int_equal(kill(pid, SIGCONT), 0);
	IDN_PASS(rv);
	assert_int_equal(n, NAMES);
	for (size_t i = 0; i < n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "scale/%04zu", i);
		assert_string_equal(e[i].name, want);
	}
	idn_free(e);
	assert_int_equal(nmiss, 1);
	assert_string_equal(miss[0], th_cluster_addr(&cl, "worker1"));
	idn_client_close(l);
}

typedef struct {
	char path[4096];
	char name[32];
	int rv;
} fifo_put;

static void *
put_from_fifo(void *argp)
{
	fifo_put *a = argp;
	idn_client *c;
	a->rv = client_of(0, &c);
	if (a->rv == IDN_OK) {
		idn_client_set_timeout(c, 20000);
		a->rv = idn_sdfs_put_file(c, a->path, a->name, NULL);
		idn_client_close(c);
	}
	return NULL;
}

// Temp files of replica writes in progress, over every node.
static int
temps(void)
{
	char *out = NULL;
	int n = -1;
	if (th_sh(&out, "ls '%s'/*/sdfs/tmp | grep -c '^w'", cl.root) >=
	    0 && out != NULL) {
		n = atoi(out);
	}
	free(out);
	return n;
}

static bool
two_open(void *arg)
{
	return temps() >= 2 * IDN_SDFS_REPLICAS;
}

static void
test_puts_bounded(void **st)
{
	enum { PUTS = 3 };
	fifo_put a[PUTS];
	pthread_t t[PUTS];
	int fd[PUTS];
	for (int i = 0; i < PUTS; i++) {
		snprintf(a[i].path, sizeof(a[i].path), "%s/b%d.fifo",
		    th_tmpdir(), i);
		snprintf(a[i].name, sizeof(a[i].name), "bound/%d", i);
		assert_int_equal(mkfifo(a[i].path, 0600), 0);
		assert_int_equal(pthread_create(&t[i], NULL, put_from_fifo,
		    &a[i]), 0);
		fd[i] = open(a[i].path, O_WRONLY);
		assert_true(fd[i] >= 0);
		assert_int_equal(write(fd[i], "first bytes", 11), 11);
	}
	// Two puts open their replica writes; the third is answered busy
	// and keeps asking: never 3 sessions' temp files at once.
	assert_true(th_wait(two_open, NULL, 20000));
	int most = 0;
	for (uint64_t end = th_now_ms() + 3000; th_now_ms() < end;) {
		int n = temps();
		most = n > most ? n : most;
	}
	fprintf(stderr, "# 3 puts held open through a front allowing 2: at "
	    "most %d replica temp files (2 puts: %d)\n", most,
	    2 * IDN_SDFS_REPLICAS);
	// Once the first ones finish, the third goes through.
	for (int i = 0; i < PUTS; i++) {
		close(fd[i]);
	}
	for (int i = 0; i < PUTS; i++) {
		pthread_join(t[i], NULL);
	}
	assert_int_equal(most, 2 * IDN_SDFS_REPLICAS);
	for (int i = 0; i < PUTS; i++) {
		IDN_PASS(a[i].rv);
	}
	idn_client *c;
	IDN_PASS(client_of(1, &c));
	for (int i = 0; i < PUTS; i++) {
		void *data;
		size_t len;
		IDN_PASS(idn_sdfs_get_buf(c, a[i].name, 0, &data, &len, NULL));
		assert_int_equal(len, 11);
		idn_free(data);
	}
	idn_client_close(c);
}

static bool
one_open(void *arg)
{
	return temps() >= IDN_SDFS_REPLICAS;
}

static bool
no_temps(void *arg)
{
	return temps() == 0;
}

// A client killed in the middle of a put: nothing of it becomes visible,
// the name takes a new put at once, and the replicas' temp files go when
// the session expires.
static void
test_client_dies_mid_put(void **st)
{
	char fifo[4096];
	snprintf(fifo, sizeof(fifo), "%s/die.fifo", th_tmpdir());
	assert_int_equal(mkfifo(fifo, 0600), 0);
	char bin[4096];
	snprintf(bin, sizeof(bin), "%s/idunno", th_bin_dir());
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(bin, bin, "--root", cl.root, "--node",
		    th_cluster_addr(&cl, "0"), "put", fifo, "die/f",
		    (char *) NULL);
		_exit(127);
	}
	int fd = open(fifo, O_WRONLY);
	assert_true(fd >= 0);
	static uint8_t chunk[(1 << 20) + 4096];
	memset(chunk, 'd', sizeof(chunk));
	assert_int_equal(write(fd, chunk, sizeof(chunk)), sizeof(chunk));
	// The put is under way on its replicas when the client dies.
	assert_true(th_wait(one_open, NULL, 20000));
	assert_int_equal(kill(pid, SIGKILL), 0);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(fd);
	idn_client *c;
	IDN_PASS(client_of(1, &c));
	idn_sdfs_info *info;
	IDN_FAIL(idn_sdfs_ls(c, "die/f", &info), IDN_ENOENT);
	IDN_PASS(idn_sdfs_put_buf(c, "die/f", "after", 5, NULL));
	void *data;
	size_t len;
	IDN_PASS(idn_sdfs_get_buf(c, "die/f", 0, &data, &len, NULL));
	assert_int_equal(len, 5);
	assert_memory_equal(data, "after", 5);
	idn_free(data);
	idn_client_close(c);
	uint64_t t0 = th_now_ms();
	if (!th_wait(no_temps, NULL, 30000)) {
		fail_msg("%d temp files left 30 s after the client died",
		    temps());
	}
	fprintf(stderr, "# a client killed mid-put: nothing visible, temp "
	    "files gone %.1f s later (sessions expire after 8 s idle)\n",
	    (double) (th_now_ms() - t0) / 1000.0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_puts_bounded),
		cmocka_unit_test(test_client_dies_mid_put),
		cmocka_unit_test(test_many_names_rereplicated),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
