// SPDX-License-Identifier: MIT
// sdfs.c: SDFS put and get throughput of a 200 MB file on a 10-node local
// cluster, as a ratio to `cp` of the same file on the same disk in the same
// run, and the time to restore 4 copies of 50 files after killing one
// replica holder.
// Usage: sdfs [--sizes LIST] [--reps N] [--rerep LIST] [--csv FILE]
//             [REPS] [SIZE_MB]   (defaults 3 and 200)
// --sizes (MiB, "1,16,256,1024") and --reps are the long spellings of
// SIZE_MB and REPS; each size's file is made, measured and deleted (here
// and in SDFS) before the next. --rerep LIST runs the restore once per
// count of 64 KiB files (default 50), each in a folder of its own, the
// killed worker restarted and SDFS settled in between. A 0 in a list
// skips its part. --csv FILE writes one CSV, kind,size_mib,rep,seconds,
// mbps: per size and rep the rows cp, cp_fsync, put and get (mbps in MB/s
// of 10^6 bytes, as printed), and per restore a row rerep whose size_mib
// is the MiB of the files the killed worker held, rep the count of files,
// mbps 0 and seconds empty if it timed out.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <idunno/sdfs.h>

#include "bench.h"
#include "cluster.h"

#define NODES 10
#define SMALL_BYTES 65536
#define MAX_LIST 16

static th_cluster cl;
static const char *tmp;

// Monotonic seconds, to the microsecond: a 1 MiB cp takes a few ms.
static double
now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

// Seconds that a shell command takes; exits on failure.
static double
timed_sh(const char *what, const char *fmt, const char *a, const char *b)
{
	char *cmd;
	if (asprintf(&cmd, fmt, a, b) < 0) {
		exit(1);
	}
	double t0 = now_s();
	int rc = th_sh(NULL, "%s", cmd);
	double s = now_s() - t0;
	if (rc != 0) {
		fprintf(stderr, "sdfs bench: %s failed (exit %d): %s\n", what,
		    rc, cmd);
		th_cluster_down(&cl);
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
	double t0 = now_s();
	int rc = th_cluster_cli(&cl, NULL, "%s", args);
	double s = now_s() - t0;
	if (rc != 0) {
		fprintf(stderr, "sdfs bench: %s failed (exit %d)\n", what, rc);
		th_cluster_down(&cl);
		exit(1);
	}
	free(args);
	return s;
}

// One size: cp, cp + sync, put and get of a file of mb MiB, reps times,
// the medians printed and each measurement a CSV row. The files (here and
// in SDFS) are deleted afterwards, so sizes do not add up on the disk.
static int
put_get(long mb, int reps, FILE *csv)
{
	char src[4096], dst[4096], got[4096], sz[32];
	snprintf(src, sizeof(src), "%s/src", tmp);
	snprintf(dst, sizeof(dst), "%s/cp", tmp);
	snprintf(got, sizeof(got), "%s/got", tmp);
	snprintf(sz, sizeof(sz), "%ld", mb);
	timed_sh("make input", "head -c %sM /dev/urandom > '%s'", sz, src);
	double cp[20], cps[20], put[20], get[20];
	double size = (double) mb * 1048576.0 / 1e6; // MB
	for (int r = 0; r < reps; r++) {
		cp[r] = timed_sh("cp", "cp '%s' '%s'", src, dst);
		unlink(dst);
		cps[r] = timed_sh("cp+sync", "cp '%s' '%s' && sync", src,
		    dst);
		unlink(dst);
		put[r] = timed_cli("put", "put '%s' '%s'", src, "bench/big");
		get[r] = timed_cli("get", "get '%s' '%s'", "bench/big", got);
		if (th_sh(NULL, "cmp -s '%s' '%s'", src, got) != 0) {
			fprintf(stderr, "sdfs bench: get returned other "
			    "bytes\n");
			return -1;
		}
		unlink(got);
		const char *kind[4] = {"cp", "cp_fsync", "put", "get"};
		double secs[4] = {cp[r], cps[r], put[r], get[r]};
		for (int k = 0; k < 4; k++) {
			bench_csv_row(csv, "%s,%ld,%d,%.6f,%.3f", kind[k], mb,
			    r + 1, secs[k], size / secs[k]);
		}
	}
	unlink(src);
	(void) th_cluster_cli(&cl, NULL, "delete bench/big");
	double mcp = bench_median(cp, reps), mcps = bench_median(cps, reps);
	double mput = bench_median(put, reps), mget = bench_median(get, reps);
	printf("sdfs: %d-node local cluster, %ld MiB file, median of %d\n",
	    NODES, mb, reps);
	printf("  cp           %6.2f s  %7.1f MB/s\n", mcp, size / mcp);
	printf("  cp + fsync   %6.2f s  %7.1f MB/s\n", mcps, size / mcps);
	printf("  sdfs put     %6.2f s  %7.1f MB/s  = %.3f x cp, %.3f x "
	       "cp+fsync (4 replicas, each fsynced)\n", mput, size / mput,
	    mcp / mput, mcps / mput);
	printf("  sdfs get     %6.2f s  %7.1f MB/s  = %.3f x cp, %.3f x "
	       "cp+fsync\n", mget, size / mget, mcp / mget, mcps / mget);
	fflush(stdout);
	return 0;
}

static void
small_name(char *name, size_t cap, int run, int i)
{
	snprintf(name, cap, "bench/small%d/%04d", run, i);
}

// The worker (by name) that holds the most of run's small files, and how
// many; workers only, so that the coordinator stays up.
static int
busiest_holder(int run, char *name, size_t cap)
{
	char prefix[64];
	int most = -1;
	snprintf(prefix, sizeof(prefix), "bench/small%d/", run);
	for (int i = 1; i <= NODES - 2; i++) {
		char node[16];
		idn_client *w;
		idn_sdfs_entry *e;
		size_t n;
		snprintf(node, sizeof(node), "worker%d", i);
		if (th_cluster_client(&cl, node, 10000, &w) != IDN_OK) {
			continue;
		}
		int rv = idn_sdfs_store(w, &e, &n);
		idn_client_close(w);
		if (rv != IDN_OK) {
			continue;
		}
		int held = 0;
		for (size_t j = 0; j < n; j++) {
			held += !e[j].deleted &&
			    strncmp(e[j].name, prefix, strlen(prefix)) == 0;
		}
		idn_free(e);
		if (held > most) {
			most = held;
			snprintf(name, cap, "%s", node);
		}
	}
	return most;
}

// Re-replication: `files` small files in a folder of run's own, the worker
// holding most of them killed, and the time until each has 4 live copies
// again. The killed worker's name goes to victim. Returns 0, 1 if that
// took over 300 s, -1 if the run could not be set up.
static int
rerep(idn_client *c, const char *small, int run, int files, FILE *csv,
    char *victim, size_t cap)
{
	// Through the C API: a CLI process per file would dominate the set-up
	// of thousands.
	for (int i = 0; i < files; i++) {
		char name[64];
		small_name(name, sizeof(name), run, i);
		int rv = idn_sdfs_put_file(c, small, name, NULL);
		if (rv != IDN_OK) {
			fprintf(stderr, "sdfs bench: put %s: %s\n", name,
			    idn_strerror(rv));
			return -1;
		}
	}
	int held = busiest_holder(run, victim, cap);
	const char *vaddr = held < 0 ? NULL : th_cluster_addr(&cl, victim);
	char vcopy[64];
	snprintf(vcopy, sizeof(vcopy), "%s", vaddr ? vaddr : "?");
	if (vaddr == NULL || th_cluster_kill(&cl, victim) != IDN_OK) {
		fprintf(stderr, "sdfs bench: cannot kill %s\n", held < 0 ?
		    "a worker" : victim);
		return -1;
	}
	// Poll through the C API (a CLI process per check would dominate).
	double t0 = now_s();
	bool *done = calloc((size_t) files, sizeof(*done));
	int left = files;
	while (done != NULL && left > 0 && now_s() - t0 < 300) {
		for (int i = 0; i < files; i++) {
			char name[64];
			idn_sdfs_info *in;
			small_name(name, sizeof(name), run, i);
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
	free(done);
	double restore = now_s() - t0;
	printf("  restore      %6.2f s  until all %d files had 4 live copies "
	       "after killing %s (held %d of them)%s\n", restore, files,
	    victim, held, left ? " [TIMED OUT]" : "");
	fflush(stdout);
	char secs[32] = ""; // empty: timed out
	if (left == 0) {
		snprintf(secs, sizeof(secs), "%.3f", restore);
	}
	bench_csv_row(csv, "rerep,%.4f,%d,%s,0", held * (double) SMALL_BYTES /
	    1048576.0, files, secs);
	return left ? 1 : 0;
}

// Whether every small file of the runs before `runs` has exactly its 4
// copies, all on its replica set: after a restart the stand-ins have
// dropped the copies they held for the dead worker.
static bool
settled(idn_client *c, int runs, const long *files)
{
	for (int r = 0; r < runs; r++) {
		for (int i = 0; i < files[r]; i++) {
			char name[64];
			idn_sdfs_info *in;
			small_name(name, sizeof(name), r, i);
			if (idn_sdfs_ls(c, name, &in) != IDN_OK) {
				return false;
			}
			bool ok = in->replicas_have == 4 && in->nholders == 4;
			for (size_t h = 0; h < in->nholders; h++) {
				ok = ok && in->holders[h].replica;
			}
			idn_free(in);
			if (!ok) {
				return false;
			}
		}
	}
	return true;
}

// The last run's victim back, all members alive everywhere and SDFS
// settled, so that the next run measures its own restore only.
static void
recover(idn_client *c, const char *victim, int runs, const long *files)
{
	double t0 = now_s();
	if (th_cluster_restart(&cl, victim) != IDN_OK ||
	    th_cluster_wait_alive(&cl, 30000) != IDN_OK) {
		fprintf(stderr, "sdfs bench: %s did not rejoin\n", victim);
	}
	while (!settled(c, runs, files) && now_s() - t0 < 120) {
		usleep(200 * 1000);
	}
	if (now_s() - t0 >= 120) {
		fprintf(stderr, "sdfs bench: SDFS had not settled after 120 s; "
		    "the next restore may include its repair\n");
	}
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: sdfs [--sizes LIST] [--reps N] [--rerep LIST] "
	    "[--csv FILE]\n"
	    "            [REPS] [SIZE_MB]\n"
	    "SDFS put and get against cp, and re-replication, on a %d-node "
	    "local cluster.\n"
	    "  --sizes LIST  file sizes in MiB, 1..4096 (default 200), e.g. "
	    "1,16,256,1024\n"
	    "  --reps N      measurements per size, 1..20 (default 3)\n"
	    "  --rerep LIST  counts of 64 KiB files to restore after a kill, "
	    "1..10000\n"
	    "                (default 50)\n"
	    "  --csv FILE    write the raw rows: kind,size_mib,rep,seconds,mbps"
	    "\n"
	    "A list of 0 (--sizes 0, --rerep 0) skips its part.\n", NODES);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"sizes", required_argument, NULL, 's'},
	    {"reps", required_argument, NULL, 'r'},
	    {"rerep", required_argument, NULL, 'e'},
	    {"csv", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	long sizes[MAX_LIST] = {200}, files[MAX_LIST] = {50}, reps = 3;
	int nsizes = 1, nfiles = 1, ch;
	bool sizes_set = false, reps_set = false;
	const char *csv_path = NULL;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			sizes_set = true;
			nsizes = bench_list("sdfs", "--sizes", optarg, 0, 4096,
			    sizes, MAX_LIST);
			if (nsizes < 0) {
				return 2;
			}
			break;
		case 'r':
			reps_set = true;
			if ((reps = bench_long("sdfs", "--reps", optarg, 1,
			         20)) < 0) {
				return 2;
			}
			break;
		case 'e':
			nfiles = bench_list("sdfs", "--rerep", optarg, 0, 10000,
			    files, MAX_LIST);
			if (nfiles < 0) {
				return 2;
			}
			break;
		default:
			if ((ch = bench_opt(ch, &csv_path, usage)) >= 0) {
				return ch;
			}
		}
	}
	// REPS and SIZE_MB, the older spellings, may not contradict options.
	if ((optind < argc && reps_set) || (optind + 1 < argc && sizes_set)) {
		fprintf(stderr, "sdfs: give REPS or --reps, SIZE_MB or "
		    "--sizes, not both\n");
		return 2;
	}
	if (argc - optind > 2 ||
	    (optind < argc && (reps = bench_long("sdfs", "REPS",
	                           argv[optind], 1, 20)) < 0) ||
	    (optind + 1 < argc && (sizes[0] = bench_long("sdfs", "SIZE_MB",
	                               argv[optind + 1], 1, 4096)) < 0)) {
		usage(stderr);
		return 2;
	}
	FILE *csv;
	if (bench_csv_open("sdfs", csv_path, "kind,size_mib,rep,seconds,mbps",
	        &csv) != 0) {
		return 1;
	}
	tmp = th_tmpdir();
	if (tmp == NULL || th_cluster_up(&cl, NODES) != IDN_OK) {
		fprintf(stderr, "sdfs bench: cannot start the cluster\n");
		return 1;
	}
	for (int i = 0; i < nsizes; i++) {
		if (sizes[i] > 0 && put_get(sizes[i], (int) reps, csv) != 0) {
			th_cluster_down(&cl);
			return 1;
		}
	}

	// Polled and fed through the C API, on the coordinator (kept up).
	idn_client *c;
	if (th_cluster_client(&cl, "coord", 5000, &c) != IDN_OK) {
		th_cluster_down(&cl);
		return 1;
	}
	char small[4096], victim[16] = "", bytes[16];
	snprintf(small, sizeof(small), "%s/small", tmp);
	snprintf(bytes, sizeof(bytes), "%d", SMALL_BYTES);
	timed_sh("make small", "head -c %s /dev/urandom > '%s'", bytes, small);
	// Run r's files are files[r] once the 0s are left out of the list.
	int status = 0, runs = 0;
	for (int i = 0; i < nfiles; i++) {
		if (files[i] == 0) {
			continue;
		}
		if (runs > 0) {
			recover(c, victim, runs, files);
		}
		int rv = rerep(c, small, runs, (int) files[i], csv, victim,
		    sizeof(victim));
		files[runs++] = files[i];
		if (rv != 0) {
			status = 1;
		}
		if (rv < 0) {
			break;
		}
	}
	idn_client_close(c);
	th_cluster_down(&cl);
	int csv_rv = bench_csv_close("sdfs", csv);
	return status == 0 && csv_rv == 0 ? 0 : 1;
}
