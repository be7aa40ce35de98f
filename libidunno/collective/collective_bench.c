// SPDX-License-Identifier: MIT
// collective_bench.c: allreduce on loopback among 2 and 3 endpoints of
// one process (each rank on its own thread), for LeNet-5's gradients
// (61,706 floats) and ResNet-18's (11,689,512): the median time of one
// allreduce, its algorithm bandwidth (the buffer's bytes over that time)
// and its ratio to a memcpy of the same bytes measured in the same run,
// for the ring and the direct algorithm. It lives beside its code (it
// needs the library's internals) and is built as build/bench/allreduce.
//   allreduce [--csv FILE] [--rounds N] [--worlds 2,3] [--floats N,...]
//             [--algo ring|direct|both] [--chunk BYTES] [--senders N]
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "collective/collective.h"

#define MAXW 8
#define MAXN 8

static const char *prog = "allreduce";

static double
now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double) t.tv_sec * 1e3 + (double) t.tv_nsec / 1e6;
}

// CPU time of the whole process (every rank, its senders and its RPC
// threads): under a shared machine's load, wall time swings, this less.
static double
cpu_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double) t.tv_sec * 1e3 + (double) t.tv_nsec / 1e6;
}

typedef struct {
	coll_group *g;
	float *buf;
	size_t n;
	int rounds;
	pthread_barrier_t *bar;
	double *ms;  // per round
	double *cpu; // per round, process CPU time (rank 0 only)
	int rv;
	pthread_t t;
} rank;

static void *
rank_run(void *arg)
{
	rank *k = arg;
	// Every rank meets every round's barrier, even after an error.
	for (int i = 0; i < k->rounds; i++) {
		pthread_barrier_wait(k->bar);
		double c0 = k->cpu != NULL ? cpu_ms() : 0;
		if (k->rv == IDN_OK) {
			double t0 = now_ms();
			k->rv = coll_allreduce(k->g, k->buf, k->n, 60000);
			k->ms[i] = now_ms() - t0;
		}
		pthread_barrier_wait(k->bar);
		if (k->cpu != NULL) {
			k->cpu[i] = cpu_ms() - c0;
		}
	}
	return NULL;
}

// The median over rounds of the slowest rank's time; the first round
// (connections, page faults) is not counted.
static int
run(int w, coll_algo algo, size_t chunk, int senders, size_t n, int rounds,
    double *med_ms, double *min_ms, double *cpu_med_ms)
{
	uint8_t key[IDN_KEY_BYTES];
	wire_keygen(key);
	rpc *r[MAXW] = {0};
	coll *c[MAXW] = {0};
	coll_group *g[MAXW] = {0};
	rank k[MAXW];
	const char *addrs[MAXW];
	int rv = IDN_OK;
	coll_opts o;
	coll_opts_init(&o);
	o.algo = algo;
	o.chunk_bytes = chunk;
	o.senders = senders;
	memset(k, 0, sizeof(k));
	for (int i = 0; i < w && rv == IDN_OK; i++) {
		rpc_opts ro = {"127.0.0.1:0", key, NET_DEFAULT_MAX_MSG, NULL};
		if ((rv = rpc_open(&ro, &r[i])) == IDN_OK &&
		    (rv = coll_open(r[i], &o, &c[i])) == IDN_OK) {
			rv = rpc_serve(r[i]);
			addrs[i] = rpc_addr(r[i]);
		}
	}
	for (int i = 0; i < w && rv == IDN_OK; i++) {
		coll_group_opts go = {"bench", 1, (uint32_t) i, (uint32_t) w,
		    addrs};
		rv = coll_group_open(c[i], &go, &g[i]);
	}
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned) w);
	int started = 0;
	for (int i = 0; i < w && rv == IDN_OK; i++) {
		k[i].g = g[i];
		k[i].n = n;
		k[i].rounds = rounds + 1;
		k[i].bar = &bar;
		k[i].buf = malloc(sizeof(float) * (n + 1));
		k[i].ms = calloc((size_t) rounds + 1, sizeof(double));
		k[i].cpu = i == 0 ? calloc((size_t) rounds + 1,
		    sizeof(double)) : NULL;
		if (k[i].buf == NULL || k[i].ms == NULL ||
		    (i == 0 && k[i].cpu == NULL)) {
			rv = IDN_ENOMEM;
			break;
		}
		for (size_t j = 0; j < n; j++) {
			k[i].buf[j] = (float) ((j * 7 + (size_t) i) % 13) / 16;
		}
	}
	for (int i = 0; i < w && rv == IDN_OK; i++) {
		if (pthread_create(&k[i].t, NULL, rank_run, &k[i]) != 0) {
			rv = IDN_ESYS;
			break;
		}
		started++;
	}
	if (rv == IDN_OK) {
		for (int i = 0; i < started; i++) {
			pthread_join(k[i].t, NULL);
			rv = rv != IDN_OK ? rv : k[i].rv;
		}
	}
	if (rv == IDN_OK) {
		double *t = calloc((size_t) rounds, sizeof(double));
		for (int j = 0; t != NULL && j < rounds; j++) {
			for (int i = 0; i < w; i++) {
				t[j] = t[j] > k[i].ms[j + 1] ? t[j] :
				    k[i].ms[j + 1];
			}
		}
		if (t != NULL) {
			*min_ms = t[0];
			for (int j = 1; j < rounds; j++) {
				*min_ms = t[j] < *min_ms ? t[j] : *min_ms;
			}
			*med_ms = bench_median(t, rounds);
			*cpu_med_ms = bench_median(k[0].cpu + 1, rounds);
		}
		rv = t != NULL ? IDN_OK : IDN_ENOMEM;
		free(t);
	}
	pthread_barrier_destroy(&bar);
	for (int i = 0; i < w; i++) {
		coll_group_close(g[i]);
		rpc_stop(r[i]);
		coll_close(c[i]);
		rpc_close(r[i]);
		free(k[i].buf);
		free(k[i].ms);
		free(k[i].cpu);
	}
	return rv;
}

// The median time of a memcpy of n floats between two warm buffers.
static double
memcpy_ms(size_t n, int rounds)
{
	float *a = malloc(sizeof(float) * (n + 1));
	float *b = malloc(sizeof(float) * (n + 1));
	double *t = calloc((size_t) rounds, sizeof(double));
	double m = 0;
	if (a != NULL && b != NULL && t != NULL) {
		memset(a, 1, sizeof(float) * n);
		memset(b, 2, sizeof(float) * n);
		for (int j = 0; j < rounds; j++) {
			double t0 = now_ms();
			memcpy(b, a, sizeof(float) * n);
			__asm__ volatile("" : : "r"(b) : "memory");
			t[j] = now_ms() - t0;
		}
		m = bench_median(t, rounds);
	}
	free(a);
	free(b);
	free(t);
	return m;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: %s [--csv FILE] [--rounds N] [--worlds 2,3] "
	    "[--floats 61706,11689512]\n"
	    "       [--algo ring|direct|both] [--chunk BYTES] "
	    "[--senders N]\n", prog);
}

int
main(int argc, char **argv)
{
	const char *csv = NULL;
	long worlds[MAXW] = {2, 3}, floats[MAXN] = {61706, 11689512};
	int nw = 2, nf = 2, ch;
	long rounds = 0, chunk = 1 << 20, senders = 0;
	int algo_lo = COLL_ALGO_RING, algo_hi = COLL_ALGO_DIRECT;
	static const struct option opts[] = {
	    {"csv", required_argument, NULL, 'c'},
	    {"rounds", required_argument, NULL, 'r'},
	    {"worlds", required_argument, NULL, 'w'},
	    {"floats", required_argument, NULL, 'f'},
	    {"algo", required_argument, NULL, 'a'},
	    {"chunk", required_argument, NULL, 'k'},
	    {"senders", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	long one;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			if (bench_list(prog, "--rounds", optarg, 1, 1001, &rounds,
			        1) < 0) {
				return 2;
			}
			break;
		case 'w':
			if ((nw = bench_list(prog, "--worlds", optarg, 1, MAXW,
			         worlds, MAXW)) < 0) {
				return 2;
			}
			break;
		case 'f':
			if ((nf = bench_list(prog, "--floats", optarg, 0, 1L << 28,
			         floats, MAXN)) < 0) {
				return 2;
			}
			break;
		case 'a':
			if (strcmp(optarg, "ring") == 0) {
				algo_lo = algo_hi = COLL_ALGO_RING;
			} else if (strcmp(optarg, "direct") == 0) {
				algo_lo = algo_hi = COLL_ALGO_DIRECT;
			} else if (strcmp(optarg, "both") != 0) {
				usage(stderr);
				return 2;
			}
			break;
		case 'k':
			if (bench_list(prog, "--chunk", optarg, COLL_CHUNK_MIN,
			        COLL_CHUNK_MAX, &one, 1) < 0 || one % 4 != 0) {
				return 2;
			}
			chunk = one;
			break;
		case 's':
			if (bench_list(prog, "--senders", optarg, 1, 64, &senders,
			        1) < 0) {
				return 2;
			}
			break;
		default: {
			int rc = bench_opt(ch, &csv, usage);
			if (rc >= 0) {
				return rc;
			}
		}
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	coll_opts dflt;
	coll_opts_init(&dflt);
	if (senders == 0) {
		senders = dflt.senders;
	}
	FILE *out;
	if (bench_csv_open(prog, csv, "world,algo,floats,bytes,rounds,"
	        "median_ms,min_ms,cpu_ms,algbw_mbs,memcpy_ms,ratio,chunk_bytes,"
	        "senders", &out) != 0) {
		return 1;
	}
	printf("allreduce on loopback, one process, a thread per rank; chunk "
	    "%ld B, %ld senders\n", chunk, senders);
	printf("%-5s %-6s %10s %6s %10s %10s %10s %10s %9s %8s\n", "world",
	    "algo", "floats", "rounds", "median ms", "min ms", "cpu ms",
	    "algbw MB/s", "memcpy ms", "x memcpy");
	int status = 0;
	for (int a = algo_lo; a <= algo_hi; a++) {
		const char *an = a == COLL_ALGO_RING ? "ring" : "direct";
		for (int wi = 0; wi < nw; wi++) {
			for (int fi = 0; fi < nf; fi++) {
				size_t n = (size_t) floats[fi];
				int rr = rounds > 0 ? (int) rounds :
				    n >= (1u << 20) ? 9 : 41;
				double med = 0, mn = 0, cpu = 0;
				int rv = run((int) worlds[wi], (coll_algo) a,
				    (size_t) chunk, (int) senders, n, rr, &med,
				    &mn, &cpu);
				if (rv != IDN_OK) {
					fprintf(stderr, "%s: world %ld %s %zu: "
					    "%s\n", prog, worlds[wi], an, n,
					    idn_strerror(rv));
					status = 1;
					continue;
				}
				double mc = memcpy_ms(n, rr);
				double bw = med > 0 ? n * 4.0 / 1e6 /
				    (med / 1e3) : 0;
				double ratio = mc > 0 ? med / mc : 0;
				printf("%-5ld %-6s %10zu %6d %10.3f %10.3f "
				    "%10.3f %10.1f %9.4f %8.1f\n", worlds[wi],
				    an, n, rr, med, mn, cpu, bw, mc, ratio);
				fflush(stdout);
				bench_csv_row(out, "%ld,%s,%zu,%zu,%d,%.3f,"
				    "%.3f,%.3f,%.1f,%.4f,%.1f,%ld,%ld",
				    worlds[wi], an, n, n * 4, rr, med, mn, cpu,
				    bw, mc, ratio, chunk, senders);
			}
		}
	}
	if (bench_csv_close(prog, out) != 0) {
		status = 1;
	}
	return status;
}
