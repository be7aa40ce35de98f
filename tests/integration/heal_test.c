// SPDX-License-Identifier: MIT
// heal_test.c: membership after a node or a group stops answering and
// comes back, on a 10-node loopback cluster. SIGSTOP stands in for a
// network cut: a group paused longer than the suspicion timeout is
// declared failed by the others; when it resumes (the "heal"), every node
// must see all 10 alive again within 30 s, with no restart.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"

#define NODES 10
#define CUT 3

static th_cluster cl;
static const char *cut[CUT] = {"worker2", "worker5", "worker7"};
static pid_t cut_pid[CUT];

static int
setup(void **st)
{
	IDN_PASS(th_cluster_up(&cl, NODES));
	return 0;
}

static void
resume_all(void)
{
	for (int i = 0; i < CUT; i++) {
		if (cut_pid[i] > 0) {
			kill(cut_pid[i], SIGCONT);
		}
	}
}

static int
teardown(void **st)
{
	resume_all(); // a stopped node would not hear its SIGTERM
	th_cluster_down(&cl);
	return 0;
}

static bool
is_cut(const char *name)
{
	for (int i = 0; i < CUT; i++) {
		if (strcmp(name, cut[i]) == 0) {
			return true;
		}
	}
	return false;
}

typedef struct {
	int state;    // members in this state
	int want;     // at every node (but the paused ones if others_only)
	int worst;    // what the first node that disagreed reported
	char who[32]; // that node
	bool others_only;
} see_arg;

static bool
all_see(void *arg)
{
	see_arg *a = arg;
	static const char *names[NODES] = {"coord", "standby", "worker1",
	    "worker2", "worker3", "worker4", "worker5", "worker6", "worker7",
	    "worker8"};
	a->worst = NODES;
	for (int i = 0; i < NODES; i++) {
		if (a->others_only && is_cut(names[i])) {
			continue;
		}
		int k = th_cluster_count(&cl, names[i], a->state);
		if (k != a->want) {
			a->worst = k;
			snprintf(a->who, sizeof(a->who), "%s", names[i]);
			return false;
		}
	}
	return true;
}

static void
test_short_pause_refuted(void **st)
{
	// Paused for less than the suspicion timeout (600 ms): suspected
	// perhaps, refuted on resume, never declared failed.
	pid_t pid = th_cluster_pid(&cl, "worker4");
	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	usleep(300 * 1000); // the stimulus: half the suspicion timeout
	assert_int_equal(kill(pid, SIGCONT), 0);
	see_arg a = {.state = IDN_MEMBER_ALIVE, .want = NODES};
	assert_true(th_wait(all_see, &a, 10000));
	assert_int_equal(th_cluster_cli(&cl, NULL, "grep 'membership: "
	    "fail' >/dev/null 2>&1"), 1);
}

static void
test_paused_group_heals(void **st)
{
	for (int i = 0; i < CUT; i++) {
		cut_pid[i] = th_cluster_pid(&cl, cut[i]);
		assert_true(cut_pid[i] > 0);
	}
	for (int i = 0; i < CUT; i++) {
		assert_int_equal(kill(cut_pid[i], SIGSTOP), 0);
	}
	// The majority declares the paused group failed.
	see_arg a = {.state = IDN_MEMBER_FAILED, .want = CUT,
	    .others_only = true};
	if (!th_wait(all_see, &a, 20000)) {
		resume_all();
		fail_msg("%s saw %d failed, not %d, with 3 nodes paused",
		    a.who, a.worst, CUT);
	}
	// The cut lasts on (the stimulus, not a wait for a condition):
	// long enough that the failures are no longer gossiped.
	usleep(5000 * 1000);
	resume_all();
	uint64_t t0 = th_now_ms();
	see_arg b = {.state = IDN_MEMBER_ALIVE, .want = NODES};
	if (!th_wait(all_see, &b, 30000)) {
		fail_msg("30 s after the heal %s saw %d of %d alive", b.who,
		    b.worst, NODES);
	}
	fprintf(stderr, "# every node saw all %d alive %.1f s after the "
	    "heal\n", NODES, (double) (th_now_ms() - t0) / 1000.0);
	// No node restarted: the same processes came back.
	for (int i = 0; i < CUT; i++) {
		assert_int_equal(th_cluster_pid(&cl, cut[i]), cut_pid[i]);
		assert_int_equal(kill(cut_pid[i], 0), 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_pause_refuted),
		cmocka_unit_test(test_paused_group_heals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
