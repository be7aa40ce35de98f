// SPDX-License-Identifier: MIT
// membership.c: failure-detection time at 10 nodes over repeated kills,
// steady-state gossip cost per node, and false positives under full load.
// Usage: membership [--kills-at-once K] [--no-load] [--steady S] [--csv FILE]
//                   [KILLS] [LOAD_SECONDS]   (defaults 1, 20 and 60)
// Each of the KILLS rounds SIGKILLs K distinct workers at once (the
// coordinator and the standby stay up), waits until every surviving member
// has each marked failed, then restarts them. --no-load (or LOAD_SECONDS
// 0) skips the part under full load. --csv FILE writes one row per killed
// node per round: round,at_once,node,detect_ms,first_ms: the ms from its
// SIGKILL until every survivor, and until the first, had it failed (by
// the survivors' own times of the change).
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cluster.h"

#define NODES 10
#define WORKERS (NODES - 2)

static th_cluster cl;

// A node killed in a round, and when the survivors saw it failed.
typedef struct victim {
	char name[16];
	char addr[IDN_ADDR_MAX];
	char id[IDN_ID_MAX];
	uint64_t killed; // wall ms of the SIGKILL
	uint64_t first;  // earliest survivor's since_ms of its failure
	uint64_t last;   // latest one's, once every survivor has it; else 0
} victim;

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
	return x < y ? -1 : x > y;
}

static bool
is_victim(const char *addr, const victim *v, int k)
{
	for (int i = 0; i < k; i++) {
		if (strcmp(addr, v[i].addr) == 0) {
			return true;
		}
	}
	return false;
}

// Asks every survivor once for its view; a victim that all of them have
// failed gets first and last (their earliest and latest times of the
// change). Returns how many victims are now seen failed everywhere.
static int
poll_failed(victim *v, int k)
{
	int seen[WORKERS] = {0}, survivors = 0, done = 0;
	uint64_t lo[WORKERS], hi[WORKERS] = {0};
	for (int j = 0; j < k; j++) {
		lo[j] = UINT64_MAX;
	}
	for (int i = 0; i < NODES; i++) {
		char name[8];
		snprintf(name, sizeof(name), "%d", i);
		const char *addr = th_cluster_addr(&cl, name);
		if (addr == NULL || is_victim(addr, v, k)) {
			continue;
		}
		survivors++;
		idn_member *m;
		size_t n;
		if (th_cluster_members(&cl, name, &m, &n) != IDN_OK) {
			continue; // counts as not seen: polled again
		}
		for (size_t r = 0; r < n; r++) {
			for (int j = 0; j < k; j++) {
				if (strcmp(m[r].id, v[j].id) != 0 ||
				    m[r].state != IDN_MEMBER_FAILED) {
					continue;
				}
				seen[j]++;
				uint64_t t = m[r].since_ms;
				lo[j] = t < lo[j] ? t : lo[j];
				hi[j] = t > hi[j] ? t : hi[j];
			}
		}
		idn_free(m);
	}
	for (int j = 0; j < k; j++) {
		if (v[j].last == 0 && seen[j] == survivors) {
			v[j].first = lo[j];
			v[j].last = hi[j];
		}
		done += v[j].last != 0;
	}
	return done;
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
		if (idn_client_open(th_cluster_addr(&cl, name), cl.key, &c)) {
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
	th_cluster_cli(&cl, &out, "grep '%s' --json 2>/dev/null", pattern);
	char *t = out ? strstr(out, "\"total\": ") : NULL;
	uint64_t n = t ? strtoull(t + 9, NULL, 10) : 0;
	free(out);
	return n;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: membership [--kills-at-once K] [--no-load] [--steady S]\n"
	    "                  [--csv FILE]\n"
	    "                  [KILLS] [LOAD_SECONDS]\n"
	    "Failure detection, gossip cost and false positives on a %d-node "
	    "local cluster.\n"
	    "  KILLS               rounds of kills (default 20)\n"
	    "  LOAD_SECONDS        seconds under full load (default 60; 0 "
	    "skips it)\n"
	    "  --kills-at-once K   workers SIGKILLed together each round, "
	    "1..%d (default 1)\n"
	    "  --no-load           skip the part under full load\n"
	    "  --steady S          seconds of steady-state gossip measured "
	    "(default 10; 0 skips)\n"
	    "  --csv FILE          write the raw rows: round,at_once,node,"
	    "detect_ms,first_ms\n", NODES, WORKERS);
}

// Finds the victim's member id (as it sees itself) and pid; false if the
// node does not answer.
static bool
victim_init(victim *v, int worker)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "worker%d", worker);
	const char *addr = th_cluster_addr(&cl, v->name);
	idn_member *m;
	size_t n;
	if (addr == NULL ||
	    th_cluster_members(&cl, v->name, &m, &n) != IDN_OK) {
		return false;
	}
	snprintf(v->addr, sizeof(v->addr), "%s", addr);
	for (size_t j = 0; j < n; j++) {
		if (strcmp(m[j].addr, v->addr) == 0 &&
		    m[j].state == IDN_MEMBER_ALIVE) {
			snprintf(v->id, sizeof(v->id), "%s", m[j].id);
		}
	}
	idn_free(m);
	return v->id[0] != '\0';
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"kills-at-once", required_argument, NULL, 'k'},
	    {"no-load", no_argument, NULL, 'n'},
	    {"csv", required_argument, NULL, 'c'},
	    {"steady", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	long at_once = 1, kills = 20, load_s = 60, steady_s = 10;
	const char *csv_path = NULL;
	bool no_load = false;
	int ch;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'k':
			at_once = bench_long("membership", "--kills-at-once",
			    optarg, 1, WORKERS);
			if (at_once < 0) {
				return 2;
			}
			break;
		case 'n':
			no_load = true;
			break;
		case 's':
			steady_s = bench_long("membership", "--steady", optarg, 0,
			    3600);
			if (steady_s < 0) {
				return 2;
			}
			break;
		default:
			if ((ch = bench_opt(ch, &csv_path, usage)) >= 0) {
				return ch;
			}
		}
	}
	if (argc - optind > 2 ||
	    (optind < argc && (kills = bench_long("membership", "KILLS",
	                           argv[optind], 0, 10000)) < 0) ||
	    (optind + 1 < argc && (load_s = bench_long("membership",
	                               "LOAD_SECONDS", argv[optind + 1], 0,
	                               86400)) < 0)) {
		usage(stderr);
		return 2;
	}
	FILE *csv;
	if (bench_csv_open("membership", csv_path,
	        "round,at_once,node,detect_ms,first_ms", &csv) != 0) {
		return 1;
	}
	if (th_cluster_up(&cl, NODES) != IDN_OK) {
		fprintf(stderr, "membership: cluster did not start\n");
		return 1;
	}
	// Steady state: every node sends its probes and replies.
	if (steady_s > 0) {
		uint64_t m0, b0, m1, b1;
		uint64_t t0 = idn_wall_ms();
		stats(&m0, &b0);
		sleep((unsigned) steady_s);
		stats(&m1, &b1);
		double secs = (double) (idn_wall_ms() - t0) / 1000.0;
		printf("steady state, %d nodes: %.1f messages and %.0f bytes "
		    "sent per node per second\n", NODES,
		    (double) (m1 - m0) / secs / NODES,
		    (double) (b1 - b0) / secs / NODES);
	}

	int want = (int) (kills * at_once), done = 0;
	uint64_t *took = calloc((size_t) want + 1, sizeof(*took));
	for (int r = 0; r < kills && took != NULL; r++) {
		victim v[WORKERS];
		pid_t pid[WORKERS];
		int k = 0;
		// Distinct workers, rotating over all of them across rounds.
		for (; k < at_once; k++) {
			int w = 1 + (int) ((r * at_once + k) % WORKERS);
			if (!victim_init(&v[k], w)) {
				break;
			}
			// The pid comes from the CLI (which loads libtorch):
			// looked up before the clock starts.
			// -1 must never reach kill(): it means every process.
			if ((pid[k] = th_cluster_pid(&cl, v[k].name)) <= 0) {
				break;
			}
		}
		if (k < at_once) {
			fprintf(stderr, "membership: round %d: worker%d does "
			    "not answer\n", r + 1,
			    1 + (int) ((r * at_once + k) % WORKERS));
			break;
		}
		for (int j = 0; j < k; j++) {
			v[j].killed = idn_wall_ms();
			kill(pid[j], SIGKILL);
		}
		uint64_t deadline = th_now_ms() + 10000;
		int seen;
		while ((seen = poll_failed(v, k)) < k &&
		    th_now_ms() < deadline) {
			usleep(20 * 1000);
		}
		for (int j = 0; j < k; j++) {
			if (v[j].last == 0) {
				fprintf(stderr, "membership: round %d: %s not "
				    "detected\n", r + 1, v[j].name);
				continue;
			}
			// Clamped: a clock step must not read as 2^64 ms.
			uint64_t all = v[j].last > v[j].killed ?
			    v[j].last - v[j].killed : 0;
			uint64_t first = v[j].first > v[j].killed ?
			    v[j].first - v[j].killed : 0;
			took[done++] = all;
			bench_csv_row(csv, "%d,%ld,%s,%llu,%llu", r + 1,
			    at_once, v[j].name, (unsigned long long) all,
			    (unsigned long long) first);
		}
		if (seen < k) {
			break;
		}
		for (int j = 0; j < k; j++) {
			th_cluster_restart(&cl, v[j].name);
		}
		if (th_cluster_wait_alive(&cl, 10000) != IDN_OK) {
			fprintf(stderr, "membership: round %d: the killed "
			    "nodes did not rejoin\n", r + 1);
			break;
		}
	}
	if (done > 0) {
		qsort(took, (size_t) done, sizeof(*took), cmp_u64);
		printf("detection (SIGKILL -> failed at every live member), "
		    "%d kills", done);
		if (at_once > 1) {
			printf(" (%ld at once)", at_once);
		}
		printf(": median %llu ms, max %llu ms\n",
		    (unsigned long long) took[done / 2],
		    (unsigned long long) took[done - 1]);
	}
	free(took);
	int csv_rv = bench_csv_close("membership", csv);
	if (no_load || load_s == 0) {
		th_cluster_down(&cl);
		return done == want && csv_rv == 0 ? 0 : 1;
	}

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
	printf("under full load (2 spinning processes, %ld s): %llu false "
	    "failures, %llu suspicions (refuted)\n", load_s,
	    (unsigned long long) fail, (unsigned long long) sus);
	th_cluster_down(&cl);
	return fail == 0 && done == want && csv_rv == 0 ? 0 : 1;
}
