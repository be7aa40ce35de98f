// SPDX-License-Identifier: MIT
// load_test.c: membership while one node is saturated with data. Many
// clients put, get and list through one node for a bounded time; no node
// may be declared failed meanwhile, nor keep being suspected (a ping must
// never wait behind data), and every operation succeeds.
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <idunno/sdfs.h>

#include "cluster.h"

#define NODES 5
#define CLIENTS 64
#define LOAD_MS 20000
#define PUT_BYTES (256u << 10)
#define MAX_SUSPICIONS 20 // in LOAD_MS, across the cluster

static th_cluster cl;

static int
setup(void **st)
{
	IDN_PASS(th_cluster_up(&cl, NODES));
	return 0;
}

static int
teardown(void **st)
{
	th_cluster_down(&cl);
	return 0;
}

typedef struct {
	int id;
	uint64_t end_ms;
	const char *addr;
	_Atomic int *ops;
	_Atomic int *errors;
} load_arg;

static void *
load(void *argp)
{
	load_arg *a = argp;
	idn_client *c;
	char name[32];
	uint8_t *buf = malloc(PUT_BYTES);
	snprintf(name, sizeof(name), "load/%d", a->id);
	if (buf == NULL || idn_client_open(a->addr, cl.key, &c) != IDN_OK) {
		atomic_fetch_add(a->errors, 1);
		free(buf);
		return NULL;
	}
	memset(buf, a->id, PUT_BYTES);
	idn_client_set_timeout(c, 60000);
	for (int i = 0; th_now_ms() < a->end_ms; i++) {
		int rv;
		void *data;
		size_t len;
		idn_sdfs_entry *e;
		size_t n;
		switch (i % 3) {
		case 0:
			rv = idn_sdfs_put_buf(c, name, buf, PUT_BYTES, NULL);
			break;
		case 1:
			rv = idn_sdfs_get_buf(c, name, 0, &data, &len, NULL);
			if (rv == IDN_OK) {
				idn_free(data);
			}
			break;
		default:
			rv = idn_sdfs_ls_prefix(c, "", &e, &n);
			if (rv == IDN_OK) {
				idn_free(e);
			}
			break;
		}
		atomic_fetch_add(rv == IDN_OK ? a->ops : a->errors, 1);
	}
	idn_client_close(c);
	free(buf);
	return NULL;
}

static void
test_saturated_node_stays_alive(void **st)
{
	_Atomic int ops = 0, errors = 0;
	char addr[64];
	snprintf(addr, sizeof(addr), "%s", th_cluster_addr(&cl, "worker1"));
	pthread_t t[CLIENTS];
	load_arg a[CLIENTS];
	uint64_t end = th_now_ms() + LOAD_MS;
	for (int i = 0; i < CLIENTS; i++) {
		a[i] = (load_arg){i, end, addr, &ops, &errors};
		assert_int_equal(pthread_create(&t[i], NULL, load, &a[i]), 0);
	}
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(t[i], NULL);
	}
	fprintf(stderr, "# %d operations (%d failed) through one node in "
	    "%d s\n", atomic_load(&ops), atomic_load(&errors),
	    LOAD_MS / 1000);
	char *out = NULL;
	int rv = th_cluster_cli(&cl, &out, "grep 'membership: fail' "
	    "2>/dev/null");
	if (rv != 1) {
		fail_msg("false failures under load:\n%s", out ? out : "");
	}
	free(out);
	// Suspicions refuted at once are no failure, but hundreds of them
	// (one every few probes) mean pings waited behind data.
	out = NULL;
	rv = th_cluster_cli(&cl, &out, "grep 'membership: suspect' "
	    "2>/dev/null");
	int suspicions = 0;
	for (const char *p = out; p != NULL && (p = strchr(p, '\n'));
	     p++) {
		suspicions++;
	}
	free(out);
	fprintf(stderr, "# %d suspicions\n", suspicions);
	assert_true(suspicions <= MAX_SUSPICIONS);
	assert_int_equal(atomic_load(&errors), 0);
	for (int i = 0; i < NODES; i++) {
		char name[8];
		snprintf(name, sizeof(name), "%d", i);
		assert_int_equal(th_cluster_count(&cl, name,
		    IDN_MEMBER_ALIVE), NODES);
	}
	assert_true(atomic_load(&ops) > 0);
}

// SIGKILL is not instant: wait until `cluster status` says so.
static bool
worker3_dead(void *arg)
{
	char *out = NULL;
	bool dead = false;
	if (th_cluster_cli(&cl, &out, "cluster status") == 0) {
		const char *l = strstr(out, "worker3 ");
		const char *e = l ? strchr(l, '\n') : NULL;
		dead = l != NULL && e != NULL && (e - l < 5 ||
		    strncmp(e - 5, "alive", 5) != 0);
	}
	free(out);
	return dead;
}

// `cluster down` counts the nodes it stopped, not those it knows of, and
// refuses arguments it does not know.
static void
test_cluster_down_counts(void **st)
{
	char *out = NULL;
	assert_int_equal(th_cluster_cli(&cl, NULL, "cluster down --bogus "
	    "2>/dev/null"), 2);
	IDN_PASS(th_cluster_kill(&cl, "worker3"));
	assert_true(th_wait(worker3_dead, NULL, 5000));
	assert_int_equal(th_cluster_cli(&cl, &out, "cluster down"), 0);
	if (strstr(out, "stopped 4 nodes") == NULL) {
		fail_msg("cluster down said: %s", out);
	}
	free(out);
	assert_int_equal(th_cluster_cli(&cl, &out, "cluster down"), 0);
	assert_non_null(strstr(out, "stopped 0 nodes"));
	free(out);
}

// The start time of a process (field 22 of /proc/PID/stat).
static unsigned long long
start_of(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long t = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	assert_non_null(p);
	assert_int_equal(sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u "
	    "%*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &t), 1);
	return t;
}

static bool
exited(void *arg)
{
	pid_t *pid = arg;
	return waitpid(*pid, NULL, WNOHANG) == *pid;
}

// A recorded pid now held by another program whose name contains
// "idunno-" (pid reuse) is not ours: `cluster down` leaves it alone. The
// same pid with its own start time is stopped.
static void
test_cluster_down_spares_strangers(void **st)
{
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sleep", "idunno-stranger", "60", (char *) NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	usleep(100 * 1000); // until exec has renamed it; checked below
	char *out = NULL;
	assert_int_equal(th_sh(&out, "cat /proc/%d/cmdline",
	    (int) pid), 0);
	assert_non_null(strstr(out, "idunno-stranger"));
	free(out);
	const char *root = th_tmpdir();
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/cluster.state", root);
	for (int pass = 0; pass < 2; pass++) {
		FILE *f = fopen(path, "we");
		assert_non_null(f);
		fprintf(f, "worker1 worker %d 127.0.0.1:1 %llu\n", (int) pid,
		    start_of(pid) + (pass == 0 ? 1 : 0));
		fclose(f);
		assert_int_equal(th_cli(&out, "--root '%s' cluster down",
		    root), 0);
		if (pass == 0) {
			assert_non_null(strstr(out, "stopped 0 nodes"));
			assert_int_equal(kill(pid, 0), 0);
		} else {
			assert_non_null(strstr(out, "stopped 1 nodes"));
			assert_true(th_wait(exited, &pid, 5000));
		}
		free(out);
	}
}

// `cluster up` refuses a root that group or others may open, and a key it
// cannot use: it never replaces one (nodes may hold it still).
static void
test_cluster_up_key_checks(void **st)
{
	const char *dir = th_tmpdir();
	char root[PATH_MAX], key[PATH_MAX + 16];
	char *out = NULL;
	snprintf(root, sizeof(root), "%s/open", dir);
	assert_int_equal(mkdir(root, 0755), 0);
	assert_int_equal(chmod(root, 0755), 0);
	assert_int_equal(th_cli(&out, "--root '%s' cluster up -n 3 "
	    "2>&1", root), 1);
	assert_non_null(strstr(out, "chmod 700"));
	free(out);
	assert_int_equal(chmod(root, 0700), 0);
	snprintf(key, sizeof(key), "%s/cluster.key", root);
	FILE *f = fopen(key, "we");
	assert_non_null(f);
	fputs("not a key\n", f);
	fclose(f);
	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(th_cli(&out, "--root '%s' cluster up -n 3 "
	    "2>&1", root), 1);
	assert_non_null(strstr(out, "not 64 hex digits"));
	free(out);
	assert_int_equal(th_sh(&out, "cat '%s'", key), 0);
	assert_string_equal(out, "not a key\n");
	free(out);
	assert_int_equal(chmod(key, 0644), 0);
	assert_int_equal(th_cli(&out, "--root '%s' cluster up -n 3 "
	    "2>&1", root), 1);
	assert_non_null(strstr(out, "chmod 600"));
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_saturated_node_stays_alive),
		cmocka_unit_test(test_cluster_down_counts),
		cmocka_unit_test(test_cluster_down_spares_strangers),
		cmocka_unit_test(test_cluster_up_key_checks),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
