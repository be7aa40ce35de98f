// SPDX-License-Identifier: MIT
// sdfs.c: SDFS put and get throughput of a 200 MB file on a 10-node local
// cluster, as a ratio to `cp` of the same file on the same disk in the same
// run, and the time to restore 4 copies of 50 files after killing one
// replica holder.
// Usage: sdfs [REPS] [SIZE_MB]   (defaults 3 and 200)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <idunno/sdfs.h>

#include "cluster.h"

#define NODES 10
#define FILES 50

static idn_tcluster cl;
static const char *tmp;

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t) n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Seconds that a shell command takes; exits on failure.
static double
timed_sh(const char *what, const char *fmt, const char *a, const char *b)
{
	char *cmd;
	if (asprintf(&cmd, fmt, a, b) < 0) {
		exit(1);
	}
	uint64_t t0 = idn_test_now_ms();
	int rc = idn_test_sh(NULL, "%s", cmd);
	double s = (double) (idn_test_now_ms() - t0) / 1000.0;
	if (rc != 0) {
		fprintf(stderr, "sdfs bench: %s failed (exit %d): %s\n", what,
		    rc, cmd);
		idn_tcluster_down(&cl);
		exit(1);
	}
	free(cmd);
	return s;
}

static double
timed_cli(const char *what, const char *fmt, const char *a, const char *b)
{
	char *args;
	if (asprintf(&args, fmt, a, b) < 0) {
		exit(1);
	}
	uint64_t t0 = idn_test_now_ms();
	int rc = idn_tcluster_cli(&cl, NULL, "%s", args);
	double s = (double) (idn_test_now_ms() - t0) / 1000.0;
	if (rc != 0) {
		fprintf(stderr, "sdfs bench: %s failed (exit %d)\n", what, rc);
		idn_tcluster_down(&cl);
		exit(1);
	}
	free(args);
	return s;
}

// The node (by name) that holds the most of the FILES small files.
static void
busiest_holder(char *name, size_t cap, int *count)
{
	*count = -1;
	for (int i = 2; i < NODES; i++) { // workers only: keep coord up
		char node[16], *out = NULL;
		snprintf(node, sizeof(node), "worker%d", i - 1);
		const char *addr = idn_tcluster_addr(&cl, node);
		if (addr == NULL || idn_tcluster_cli(&cl, &out,
		                        "--node %s store --json", addr) != 0) {
			free(out);
			continue;
		}
		int n = 0;
		for (const char *p = out; (p = strstr(p, "\"bench/small/"));
		     p++) {
			n++;
		}
		if (n > *count) {
			*count = n;
			snprintf(name, cap, "%s", node);
		}
		free(out);
	}
}

int
main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 3;
	long mb = argc > 2 ? atol(argv[2]) : 200;
	if (reps < 1 || reps > 20 || mb < 1 || mb > 4096) {
		fprintf(stderr, "usage: sdfs [REPS 1..20] [SIZE_MB]\n");
		return 2;
	}
	tmp = idn_test_tmpdir();
	if (tmp == NULL || idn_tcluster_up(&cl, NODES) != IDN_OK) {
		fprintf(stderr, "sdfs bench: cannot start the cluster\n");
		return 1;
	}
	char src[4096], dst[4096], got[4096];
	snprintf(src, sizeof(src), "%s/src", tmp);
	snprintf(dst, sizeof(dst), "%s/cp", tmp);
	snprintf(got, sizeof(got), "%s/got", tmp);
	char sz[32];
	snprintf(sz, sizeof(sz), "%ld", mb);
	timed_sh("make input", "head -c %sM /dev/urandom > '%s'", sz, src);
	double cp[20], cps[20], put[20], get[20];
	for (int r = 0; r < reps; r++) {
		cp[r] = timed_sh("cp", "cp '%s' '%s'", src, dst);
		unlink(dst);
		cps[r] = timed_sh("cp+sync", "cp '%s' '%s' && sync", src,
		    dst);
		unlink(dst);
		put[r] = timed_cli("put", "put '%s' '%s'", src, "bench/big");
		get[r] = timed_cli("get", "get '%s' '%s'", "bench/big", got);
		if (idn_test_sh(NULL, "cmp -s '%s' '%s'", src, got) != 0) {
			fprintf(stderr, "sdfs bench: get returned other "
			    "bytes\n");
			idn_tcluster_down(&cl);
			return 1;
		}
		unlink(got);
	}
	double mcp = median(cp, reps), mcps = median(cps, reps);
	double mput = median(put, reps), mget = median(get, reps);
	double size = (double) mb * 1048576.0 / 1e6;
	printf("sdfs: %d-node local cluster, %ld MiB file, median of %d\n",
	    NODES, mb, reps);
	printf("  cp           %6.2f s  %7.1f MB/s\n", mcp, size / mcp);
	printf("  cp + fsync   %6.2f s  %7.1f MB/s\n", mcps, size / mcps);
	printf("  sdfs put     %6.2f s  %7.1f MB/s  = %.3f x cp, %.3f x "
	       "cp+fsync (4 replicas, each fsynced)\n", mput, size / mput,
	    mcp / mput, mcps / mput);
	printf("  sdfs get     %6.2f s  %7.1f MB/s  = %.3f x cp, %.3f x "
	       "cp+fsync\n", mget, size / mget, mcp / mget, mcps / mget);
	(void) idn_tcluster_cli(&cl, NULL, "delete bench/big");

	// Re-replication: 50 small files, kill the worker holding most.
	char small[4096];
	snprintf(small, sizeof(small), "%s/small", tmp);
	timed_sh("make small", "head -c 65536 /dev/urandom > '%s'%s", small,
	    "");
	for (int i = 0; i < FILES; i++) {
		char name[64];
		snprintf(name, sizeof(name), "bench/small/%02d", i);
		timed_cli("put small", "put '%s' '%s'", small, name);
	}
	char victim[16];
	int held;
	busiest_holder(victim, sizeof(victim), &held);
	const char *vaddr = idn_tcluster_addr(&cl, victim);
	char vcopy[64];
	snprintf(vcopy, sizeof(vcopy), "%s", vaddr ? vaddr : "?");
	if (idn_tcluster_kill(&cl, victim) != IDN_OK) {
		fprintf(stderr, "sdfs bench: cannot kill %s\n", victim);
		idn_tcluster_down(&cl);
		return 1;
	}
	// Poll through the C API (a CLI process per check would dominate).
	idn_client *c;
	if (idn_client_open(idn_tcluster_addr(&cl, "coord"), cl.key, &c)) {
		idn_tcluster_down(&cl);
		return 1;
	}
	uint64_t t0 = idn_test_now_ms();
	bool done[FILES] = {false};
	int left = FILES;
	while (left > 0 && idn_test_now_ms() - t0 < 300000) {
		for (int i = 0; i < FILES; i++) {
			char name[64];
			idn_sdfs_info *in;
			snprintf(name, sizeof(name), "bench/small/%02d", i);
			if (done[i] || idn_sdfs_ls(c, name, &in) != IDN_OK) {
				continue;
			}
			bool ok = in->replicas_have == 4;
			for (size_t h = 0; h < in->nholders; h++) {
				ok = ok && strcmp(in->holders[h].addr, vcopy);
			}
			idn_free(in);
			if (ok) {
				done[i] = true;
				left--;
			}
		}
		if (left > 0) {
			usleep(50 * 1000);
		}
	}
	double restore = (double) (idn_test_now_ms() - t0) / 1000.0;
	printf("  restore      %6.2f s  until all %d files had 4 live copies "
	       "after killing %s (held %d of them)%s\n", restore, FILES,
	    victim, held, left ? " [TIMED OUT]" : "");
	idn_client_close(c);
	idn_tcluster_down(&cl);
	return left ? 1 : 0;
}
