// SPDX-License-Identifier: MIT
// membership.c: failure-detection time at 10 nodes over repeated kills,
// steady-state gossip cost per node, and false positives under full load.
// Usage: membership [KILLS] [LOAD_SECONDS]   (defaults 20 and 60)
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"

#define NODES 10

static idn_tcluster cl;

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
	return x < y ? -1 : x > y;
}

static pid_t
pid_of(const char *name)
{
	char *out = NULL, n[32], role[16];
	int p;
	pid_t pid = -1;
	idn_tcluster_cli(&cl, &out, "cluster status");
	for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
		if (sscanf(l, "%31s %15s pid %d", n, role, &p) == 3 &&
		    strcmp(n, name) == 0) {
			pid = p;
		}
	}
	free(out);
	return pid;
}

// Latest time any live node marked `id` failed; 0 while one has not.
static uint64_t
failed_everywhere(const char *victim_id, const char *victim)
{
	uint64_t latest = 0;
	char vaddr[64];
	snprintf(vaddr, sizeof(vaddr), "%s", idn_tcluster_addr(&cl, victim));
	for (int i = 0; i < NODES; i++) {
		char name[8];
		snprintf(name, sizeof(name), "%d", i);
		const char *addr = idn_tcluster_addr(&cl, name);
		if (addr == NULL || strcmp(addr, vaddr) == 0) {
			continue;
		}
		idn_member *m;
		size_t n;
		if (idn_tcluster_members(&cl, name, &m, &n) != IDN_OK) {
			return 0;
		}
		bool seen = false;
		for (size_t j = 0; j < n; j++) {
			if (strcmp(m[j].id, victim_id) == 0 &&
			    m[j].state == IDN_MEMBER_FAILED) {
				seen = true;
				latest = m[j].since_ms > latest ? m[j].since_ms :
				    latest;
			}
		}
		idn_free(m);
		if (!seen) {
			return 0;
		}
	}
	return latest;
}

static bool
all_alive(void *arg)
{
	for (int i = 0; i < NODES; i++) {
		char name[8];
		snprintf(name, sizeof(name), "%d", i);
		if (idn_tcluster_count(&cl, name, IDN_MEMBER_ALIVE) != NODES) {
			return false;
		}
	}
	return true;
}

static int
stats(uint64_t *msgs, uint64_t *bytes)
{
	*msgs = *bytes = 0;
	for (int i = 0; i < NODES; i++) {
		char name[8];
		snprintf(name, sizeof(name), "%d", i);
		idn_client *c;
		idn_node_stats st;
		if (idn_client_open(idn_tcluster_addr(&cl, name), cl.key, &c)) {
			return -1;
		}
		int rv = idn_client_node_stats(c, NULL, &st);
		idn_client_close(c);
		if (rv != IDN_OK) {
			return -1;
		}
		*msgs += st.msgs_out;
		*bytes += st.bytes_out;
	}
	return 0;
}

static uint64_t
grep_count(const char *pattern)
{
	char *out = NULL;
	idn_tcluster_cli(&cl, &out, "grep '%s' --json 2>/dev/null", pattern);
	char *t = out ? strstr(out, "\"total\": ") : NULL;
	uint64_t n = t ? strtoull(t + 9, NULL, 10) : 0;
	free(out);
	return n;
}

int
main(int argc, char **argv)
{
	int kills = argc > 1 ? atoi(argv[1]) : 20;
	int load_s = argc > 2 ? atoi(argv[2]) : 60;
	if (idn_tcluster_up(&cl, NODES) != IDN_OK) {
		fprintf(stderr, "membership: cluster did not start\n");
		return 1;
	}
	// Steady state: every node sends its probes and replies.
	uint64_t m0, b0, m1, b1;
	uint64_t t0 = idn_wall_ms();
	stats(&m0, &b0);
	sleep(10);
	stats(&m1, &b1);
	double secs = (double) (idn_wall_ms() - t0) / 1000.0;
	printf("steady state, %d nodes: %.1f messages and %.0f bytes sent "
	    "per node per second\n", NODES,
	    (double) (m1 - m0) / secs / NODES, (double) (b1 - b0) / secs / NODES);

	uint64_t *took = calloc((size_t) kills, sizeof(*took));
	int done = 0;
	for (int k = 0; k < kills; k++) {
		char victim[16];
		snprintf(victim, sizeof(victim), "worker%d", 1 + k % (NODES - 2));
		idn_member *m;
		size_t n;
		char id[IDN_ID_MAX] = "";
		if (idn_tcluster_members(&cl, victim, &m, &n) != IDN_OK) {
			break;
		}
		for (size_t j = 0; j < n; j++) {
			if (strcmp(m[j].addr, idn_tcluster_addr(&cl, victim)) == 0 &&
			    m[j].state == IDN_MEMBER_ALIVE) {
				snprintf(id, sizeof(id), "%s", m[j].id);
			}
		}
		idn_free(m);
		// pid_of runs the CLI (which loads libtorch): before the clock.
		pid_t pid = pid_of(victim);
		uint64_t at = idn_wall_ms();
		kill(pid, SIGKILL);
		uint64_t seen = 0, deadline = idn_test_now_ms() + 10000;
		while ((seen = failed_everywhere(id, victim)) == 0 &&
		    idn_test_now_ms() < deadline) {
			usleep(20 * 1000);
		}
		if (seen == 0) {
			fprintf(stderr, "membership: kill %d not detected\n", k);
			break;
		}
		took[done++] = seen - at;
		idn_tcluster_restart(&cl, victim);
		if (!idn_test_wait(all_alive, NULL, 10000)) {
			fprintf(stderr, "membership: %s did not rejoin\n", victim);
			break;
		}
	}
	if (done > 0) {
		qsort(took, (size_t) done, sizeof(*took), cmp_u64);
		printf("detection (SIGKILL -> failed at every live member), "
		    "%d kills: median %llu ms, max %llu ms\n", done,
		    (unsigned long long) took[done / 2],
		    (unsigned long long) took[done - 1]);
	}
	free(took);

	// Full load: one spinning process per core for load_s seconds.
	uint64_t sus0 = grep_count("membership: suspect");
	uint64_t fail0 = grep_count("membership: fail");
	pid_t spin[2];
	for (int i = 0; i < 2; i++) {
		if ((spin[i] = fork()) == 0) {
			time_t end = time(NULL) + load_s;
			volatile uint64_t x = 0;
			while (time(NULL) < end) {
				x++;
			}
			_exit(0);
		}
	}
	for (int i = 0; i < 2; i++) {
		waitpid(spin[i], NULL, 0);
	}
	uint64_t sus = grep_count("membership: suspect") - sus0;
	uint64_t fail = grep_count("membership: fail") - fail0;
	printf("under full load (2 spinning processes, %d s): %llu false "
	    "failures, %llu suspicions (refuted)\n", load_s,
	    (unsigned long long) fail, (unsigned long long) sus);
	idn_tcluster_down(&cl);
	return fail == 0 ? 0 : 1;
}
