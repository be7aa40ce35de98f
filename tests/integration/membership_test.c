// SPDX-License-Identifier: MIT
// membership_test.c: a 10-node cluster on loopback: convergence, three
// simultaneous crashes, rejoin, cluster-wide grep, hostile input.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"

static th_cluster cl;
static const char *survivors[] = {"coord", "standby", "worker1", "worker3",
    "worker4", "worker6", "worker8"};
static const char *victims[] = {"worker2", "worker5", "worker7"};

static int
setup(void **st)
{
	IDN_PASS(th_cluster_up(&cl, 10));
	return 0;
}

static int
teardown(void **st)
{
	th_cluster_down(&cl);
	return 0;
}

typedef struct {
	char addrs[3][64];
	int want_failed;
	uint64_t latest_ms; // latest wall time a survivor marked a failure
} fail_arg;

static bool
all_see_failures(void *arg)
{
	fail_arg *a = arg;
	uint64_t latest = 0;
	for (size_t i = 0; i < sizeof(survivors) / sizeof(*survivors); i++) {
		idn_member *m;
		size_t n;
		if (th_cluster_members(&cl, survivors[i], &m, &n) != IDN_OK) {
			return false;
		}
		int failed = 0;
		for (size_t j = 0; j < n; j++) {
			bool victim = false;
			for (int v = 0; v < 3; v++) {
				victim = victim ||
				    strcmp(m[j].addr, a->addrs[v]) == 0;
			}
			if (victim && m[j].state == IDN_MEMBER_FAILED) {
				failed++;
				latest = m[j].since_ms > latest ? m[j].since_ms :
				    latest;
			}
		}
		idn_free(m);
		if (failed != a->want_failed) {
			return false;
		}
	}
	a->latest_ms = latest;
	return true;
}

static void
test_converged(void **st)
{
	// setup waited until every node saw 10 alive; check roles too.
	idn_member *m;
	size_t n;
	IDN_PASS(th_cluster_members(&cl, "worker4", &m, &n));
	assert_int_equal(n, 10);
	int coord = 0, standby = 0, workers = 0;
	for (size_t i = 0; i < n; i++) {
		coord += strcmp(m[i].role, "coord") == 0;
		standby += strcmp(m[i].role, "standby") == 0;
		workers += strcmp(m[i].role, "worker") == 0;
		assert_int_equal(m[i].state, IDN_MEMBER_ALIVE);
	}
	idn_free(m);
	assert_int_equal(coord, 1);
	assert_int_equal(standby, 1);
	assert_int_equal(workers, 8);
}

static bool
spinners_done(void *arg)
{
	pid_t *spin = arg;
	for (int i = 0; i < 2; i++) {
		if (spin[i] > 0 && waitpid(spin[i], NULL, WNOHANG) == spin[i]) {
			spin[i] = 0;
		}
	}
	return spin[0] == 0 && spin[1] == 0;
}

static void
test_no_false_positive_under_load(void **st)
{
	// Both cores spin for 10 s; nobody may be declared failed.
	pid_t spin[2];
	for (int i = 0; i < 2; i++) {
		if ((spin[i] = fork()) == 0) {
			uint64_t end = th_now_ms() + 10000;
			volatile uint64_t x = 0;
			while (th_now_ms() < end) {
				x++;
			}
			_exit(0);
		}
		assert_true(spin[i] > 0);
	}
	assert_true(th_wait(spinners_done, spin, 30000));
	assert_int_equal(th_cluster_cli(&cl, NULL, "grep 'membership: "
	    "fail' >/dev/null 2>&1"), 1);
	for (int i = 0; i < 10; i++) {
		char name[8];
		snprintf(name, sizeof(name), "%d", i);
		assert_int_equal(th_cluster_count(&cl, name,
		    IDN_MEMBER_ALIVE), 10);
	}
}

static void
test_kill_three_then_rejoin(void **st)
{
	pid_t pids[3];
	for (int i = 0; i < 3; i++) {
		pids[i] = th_cluster_pid(&cl, victims[i]);
		assert_true(pids[i] > 0);
	}
	// The standby's event stream must report the three failures.
	idn_client *c;
	idn_events *ev;
	IDN_PASS(idn_client_open(th_cluster_addr(&cl, "standby"), cl.key,
	    &c));
	IDN_PASS(idn_events_open(c, &ev));
	// The subscription connects asynchronously: a join seen proves it.
	IDN_PASS(th_cluster_kill(&cl, "worker8"));
	IDN_PASS(th_cluster_restart(&cl, "worker8"));
	idn_event e;
	do {
		IDN_PASS(idn_events_next(ev, 10000, &e));
	} while (e.event != IDN_EV_JOIN);

	uint64_t killed_ms = idn_wall_ms();
	for (int i = 0; i < 3; i++) {
		assert_int_equal(kill(pids[i], SIGKILL), 0);
	}
	fail_arg a = {.want_failed = 3};
	for (int i = 0; i < 3; i++) {
		snprintf(a.addrs[i], sizeof(a.addrs[i]), "%s",
		    th_cluster_addr(&cl, victims[i]));
	}
	assert_true(th_wait(all_see_failures, &a, 10000));
	// since_ms is when each survivor itself marked the failure, so the
	// figure does not depend on how fast this test polls.
	uint64_t took = a.latest_ms - killed_ms;
	print_message("# every survivor saw 3 failures %llu ms after kill\n",
	    (unsigned long long) took);
	// The protocol's worst case (defaults of idn_node_opts_init): a
	// victim probed last in a round of the other 9 members, then the
	// direct and indirect timeouts and the suspicion, plus one second
	// for a loaded machine.
	const uint64_t period = 100, ping = 150, suspicion = 600;
	uint64_t bound = 9 * period + ping + 2 * ping + suspicion + 1000;
	if (took >= bound) {
		fail_msg("detection took %llu ms, bound %llu ms",
		    (unsigned long long) took, (unsigned long long) bound);
	}
	int fails = 0;
	while (fails < 3) {
		IDN_PASS(idn_events_next(ev, 10000, &e));
		fails += e.event == IDN_EV_FAIL &&
		    strcmp(e.member.role, "worker") == 0;
	}
	idn_events_close(ev);
	idn_client_close(c);

	// A restarted node is a new incarnation that everyone sees alive.
	IDN_PASS(th_cluster_restart(&cl, "worker5"));
	bool seen = false;
	uint64_t deadline = th_now_ms() + 10000;
	while (!seen && th_now_ms() < deadline) {
		seen = true;
		for (size_t i = 0; i < 7 && seen; i++) {
			seen = th_cluster_count(&cl, survivors[i],
			    IDN_MEMBER_ALIVE) == 8;
		}
		if (!seen) {
			usleep(50 * 1000);
		}
	}
	assert_true(seen);
	assert_int_equal(th_cluster_count(&cl, "worker5", IDN_MEMBER_ALIVE),
	    8);
}

static bool
left_everywhere(void *arg)
{
	const char *addr = arg;
	for (int i = 0; i < 7; i++) {
		idn_member *m;
		size_t n;
		bool left = false;
		if (th_cluster_members(&cl, survivors[i], &m, &n) != IDN_OK) {
			return false;
		}
		for (size_t j = 0; j < n; j++) {
			left = left || (strcmp(m[j].addr, addr) == 0 &&
			    m[j].state == IDN_MEMBER_LEFT);
		}
		idn_free(m);
		if (!left) {
			return false;
		}
	}
	return true;
}

static void
test_voluntary_leave(void **st)
{
	// SIGTERM: the node says goodbye; nobody has to detect a failure.
	char addr[64];
	snprintf(addr, sizeof(addr), "%s", th_cluster_addr(&cl, "worker5"));
	assert_int_equal(th_cluster_cli(&cl, NULL, "cluster stop worker5 "
	    ">/dev/null"), 0);
	assert_true(th_wait(left_everywhere, addr, 5000));
	IDN_PASS(th_cluster_restart(&cl, "worker5"));
}

static void
test_grep_across_nodes(void **st)
{
	// Exactly one node's log holds a unique line (appended to its file,
	// which is what grep reads).
	char tag[64], path[PATH_MAX + 32], *out = NULL;
	snprintf(tag, sizeof(tag), "probe-%d-%llu", (int) getpid(),
	    (unsigned long long) th_now_ms());
	snprintf(path, sizeof(path), "%s/worker6/node.log", cl.root);
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fprintf(f, "test line %s\n", tag);
	assert_int_equal(fclose(f), 0);

	assert_int_equal(th_cluster_cli(&cl, &out, "grep %s 2>/dev/null",
	    tag), 0);
	int lines = 0;
	const char *w6 = th_cluster_addr(&cl, "worker6");
	char prefix[80];
	snprintf(prefix, sizeof(prefix), "%s:", w6);
	for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
		assert_non_null(strstr(l, tag));
		assert_true(strncmp(l, prefix, strlen(prefix)) == 0);
		lines++;
	}
	free(out);
	assert_int_equal(lines, 1);
	// The JSON form names every node; the dead ones as unreachable.
	assert_int_equal(th_cluster_cli(&cl, &out, "grep %s --json", tag), 0);
	assert_non_null(strstr(out, "\"reachable\": false"));
	assert_non_null(strstr(out, "\"total\": 1}"));
	free(out);
	// Nothing matches: exit code 1, as grep(1).
	assert_int_equal(th_cluster_cli(&cl, NULL, "grep no-such-%s "
	    "2>/dev/null", tag), 1);
	// A bad regex is a usage error (2), not "no match" (1), nor a crash.
	assert_int_equal(th_cluster_cli(&cl, NULL, "grep '(' --regex "
	    "2>/dev/null"), 2);
	assert_true(th_cluster_count(&cl, "coord", IDN_MEMBER_ALIVE) >= 8);
}

static void
test_hostile_input(void **st)
{
	const char *addr = th_cluster_addr(&cl, "worker1");
	// A stranger with another key is dropped without an answer.
	uint8_t bad[IDN_KEY_BYTES];
	memset(bad, 7, sizeof(bad));
	idn_client *c;
	IDN_PASS(idn_client_open(addr, bad, &c));
	idn_client_set_timeout(c, 500);
	idn_member *m;
	size_t n;
	IDN_FAIL(idn_client_members(c, &m, &n), IDN_ETIMEDOUT);
	idn_client_close(c);
	// Raw garbage on the TCP port: the node survives.
	int port = atoi(strrchr(addr, ':') + 1);
	for (int round = 0; round < 20; round++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET,
		    .sin_port = htons((uint16_t) port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0) {
			uint8_t junk[512];
			for (size_t i = 0; i < sizeof(junk); i++) {
				junk[i] = (uint8_t) (rand() & 0xff);
			}
			// An SP header first sometimes, so nng reads frames.
			if (round % 2 == 0) {
				memcpy(junk, "\0SP\0\0\x30\0\0", 8);
			}
			ssize_t w = write(fd, junk, sizeof(junk));
			(void) w;
		}
		close(fd);
	}
	IDN_PASS(idn_client_open(addr, cl.key, &c));
	IDN_PASS(idn_client_members(c, &m, &n));
	idn_free(m);
	idn_client_close(c);
	// The forged request was logged as dropped.
	assert_int_equal(th_cluster_cli(&cl, NULL, "--node %s grep dropped "
	    ">/dev/null 2>&1", addr), 0);
}

static void
test_bad_flags(void **st)
{
	const char *bin = th_bin_dir();
	const char *dir = th_tmpdir();
	char key[PATH_MAX + 32], *out = NULL;
	snprintf(key, sizeof(key), "%s/cluster.key", cl.root);
	struct {
		const char *args;
		const char *msg;
	} cases[] = {
	    {"--bogus", "unknown"},
	    {"--data %s/d1 --key %s --listen nowhere", "bad --listen"},
	    {"--data %s/d2 --key %s --listen 127.0.0.1:0 --join 127.0.0.1:1",
	        "no introducer"},
	    {"--data /proc/idunno-%s --key %s", "not writable"},
	    {"--data %s/d3 --key /nonexistent/key%s", "key file"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char args[3 * PATH_MAX];
		snprintf(args, sizeof(args), cases[i].args, dir, key);
		int rv = th_sh(&out, "'%s/idunno-worker' %s 2>&1", bin,
		    args);
		assert_int_not_equal(rv, 0);
		if (strstr(out, cases[i].msg) == NULL) {
			fail_msg("'%s' said '%s', want '%s'", args, out,
			    cases[i].msg);
		}
		free(out);
	}
	assert_int_equal(th_cli(NULL, "--bogus 2>/dev/null"), 2);
	assert_int_equal(th_cli(NULL, "--root %s/none members "
	    "2>/dev/null", dir), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_converged),
	    cmocka_unit_test(test_no_false_positive_under_load),
	    cmocka_unit_test(test_hostile_input),
	    cmocka_unit_test(test_bad_flags),
	    cmocka_unit_test(test_kill_three_then_rejoin),
	    cmocka_unit_test(test_voluntary_leave),
	    cmocka_unit_test(test_grep_across_nodes),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
