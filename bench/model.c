// SPDX-License-Identifier: MIT
// model.c: raw backend inference throughput and median batch latency for
// the exported models at batch 1, 8 and 32, straight through the backend
// (one intra-op thread, the library's default).
//   bench/model [--models LIST] [--batches LIST] [--csv FILE]
//               [MODELS_DIR] [SECONDS_PER_POINT]
// MODELS_DIR defaults to $IDUNNO_BUILD_DIR/models, then build/models;
// SECONDS_PER_POINT to 2. --models (default lenet5,resnet18,alexnet, the
// last only if exported) and --batches (default 1,8,32; at most 256)
// choose the points. --csv FILE writes one row per point: model,batch,
// seconds,batches,ms_per_batch,images_per_s: the timed loop's length and
// batches (after the warm-up), its mean ms per batch and images per second.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <idunno/model.h>

#include "bench.h"

#define FASHION "/usr/share/datasets/fashion-mnist"
#define MAX_ITERS 5000
#define MAX_BATCH 256
#define MAX_LIST 16
#define SPREAD 64 // batches start at one of this many images

static double
now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

static idn_model *
load(const char *dir, const char *name, double *load_s)
{
	char dp[4200], mp[4200];
	snprintf(dp, sizeof(dp), "%s/%s.desc", dir, name);
	snprintf(mp, sizeof(mp), "%s/%s.pt", dir, name);
	idn_model *m = NULL;
	char *err = NULL;
	double t0 = now_s();
	int rv = idn_model_load_files(dp, mp, &err, &m);
	*load_s = now_s() - t0;
	if (rv != IDN_OK) {
		fprintf(stderr, "%s: %s: %s\n", name, idn_strerror(rv),
		    err ? err : "");
	}
	idn_free(err);
	return m;
}

// bench_point runs batches of b images for about `seconds` (at least 10
// batches) after 3 warm-up batches; x holds SPREAD + b images.
static int
bench_point(idn_model *m, const char *name, const uint8_t *x, size_t img,
    size_t b, double seconds, FILE *csv)
{
	static double lat[MAX_ITERS];
	static uint32_t cls[MAX_BATCH];
	static float score[MAX_BATCH];
	int rv;
	for (int i = 0; i < 3; i++) {
		if ((rv = idn_model_infer(m, x, b, b * img, cls, score)) != 0) {
			fprintf(stderr, "%s: %s\n", name, idn_model_errmsg(m));
			return rv;
		}
	}
	size_t n = 0;
	double start = now_s();
	while (n < MAX_ITERS && (n < 10 || now_s() - start < seconds)) {
		// Vary the images so that no cache sees the same batch twice.
		const uint8_t *in = x + (n % SPREAD) * img;
		double t0 = now_s();
		rv = idn_model_infer(m, in, b, b * img, cls, score);
		if (rv != IDN_OK) {
			return rv;
		}
		lat[n++] = now_s() - t0;
	}
	double total = now_s() - start;
	qsort(lat, n, sizeof(double), bench_cmp_double);
	printf("%-10s %5zu %8zu %12.3f %12.3f %12.0f\n", name, b, n,
	    lat[n / 2] * 1e3, lat[(n * 99) / 100] * 1e3,
	    (double) (n * b) / total);
	bench_csv_row(csv, "%s,%zu,%.6f,%zu,%.6f,%.3f", name, b, total, n,
	    total * 1e3 / (double) n, (double) (n * b) / total);
	return IDN_OK;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: model [--models LIST] [--batches LIST] [--csv FILE]\n"
	    "             [MODELS_DIR] [SECONDS_PER_POINT]\n"
	    "Raw backend inference of the exported models, one thread.\n"
	    "  MODELS_DIR          default $IDUNNO_BUILD_DIR/models, then "
	    "build/models\n"
	    "  SECONDS_PER_POINT   timed seconds per model and batch (default "
	    "2)\n"
	    "  --models LIST       e.g. lenet5,resnet18 (default lenet5,"
	    "resnet18,alexnet;\n"
	    "                      alexnet only if exported)\n"
	    "  --batches LIST      batch sizes, 1..%d (default 1,8,32)\n"
	    "  --csv FILE          write the raw rows: model,batch,seconds,"
	    "batches,\n"
	    "                      ms_per_batch,images_per_s\n", MAX_BATCH);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"models", required_argument, NULL, 'm'},
	    {"batches", required_argument, NULL, 'b'},
	    {"csv", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	// AlexNet is exported on request only: skipped when absent, unless
	// asked for by name.
	const char *names[MAX_LIST] = {"lenet5", "resnet18", "alexnet"};
	long batches[MAX_LIST] = {1, 8, 32};
	int nnames = 3, nbatches = 3, ch;
	bool named = false;
	const char *csv_path = NULL;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			named = true;
			nnames = 0;
			for (char *t = strtok(optarg, ","); t != NULL;
			     t = strtok(NULL, ",")) {
				if (nnames == MAX_LIST) {
					fprintf(stderr, "model: --models: at "
					    "most %d\n", MAX_LIST);
					return 2;
				}
				names[nnames++] = t;
			}
			if (nnames == 0) {
				usage(stderr);
				return 2;
			}
			break;
		case 'b':
			nbatches = bench_list("model", "--batches", optarg, 1,
			    MAX_BATCH, batches, MAX_LIST);
			if (nbatches < 0) {
				return 2;
			}
			break;
		default:
			if ((ch = bench_opt(ch, &csv_path, usage)) >= 0) {
				return ch;
			}
		}
	}
	if (argc - optind > 2) {
		usage(stderr);
		return 2;
	}
	const char *build = getenv("IDUNNO_BUILD_DIR");
	char models[4096];
	const char *arg_dir = optind < argc ? argv[optind] : "";
	const char *dir = arg_dir[0] ? arg_dir : "build/models";
	if (!arg_dir[0] && build != NULL) {
		snprintf(models, sizeof(models), "%s/models", build);
		dir = models;
	}
	double seconds = optind + 1 < argc ? atof(argv[optind + 1]) : 2.0;
	if (seconds <= 0) {
		seconds = 2.0;
	}
	FILE *csv;
	if (bench_csv_open("model", csv_path, "model,batch,seconds,batches,"
	        "ms_per_batch,images_per_s", &csv) != 0) {
		return 1;
	}
	char rt[512];
	idn_model_runtime(rt, sizeof(rt));
	printf("# backend inference, models from %s\n# %s\n", dir, rt);

	// Real test images if the dataset is there, else a fixed pattern.
	size_t img = 28 * 28, nimg = SPREAD + MAX_BATCH;
	uint8_t *x = calloc(nimg, img);
	idn_dataset *te;
	if (x == NULL) {
		return 1;
	}
	if (idn_dataset_load_idx(FASHION "/t10k-images-idx3-ubyte.gz",
	    FASHION "/t10k-labels-idx1-ubyte.gz", &te) == IDN_OK) {
		memcpy(x, te->images, nimg * img);
		idn_dataset_free(te);
	} else {
		for (size_t i = 0; i < nimg * img; i++) {
			x[i] = (uint8_t) (i * 31 + 7);
		}
	}
	int status = 0;
	printf("%-10s %5s %8s %12s %12s %12s\n", "model", "batch", "batches",
	    "median_ms", "p99_ms", "images/s");
	for (int i = 0; i < nnames; i++) {
		char pt[4200];
		snprintf(pt, sizeof(pt), "%s/%s.pt", dir, names[i]);
		if (!named && strcmp(names[i], "alexnet") == 0 &&
		    access(pt, R_OK) != 0) {
			continue;
		}
		double load_s = 0.0;
		idn_model *m = load(dir, names[i], &load_s);
		if (m == NULL) {
			status = 1;
			continue;
		}
		printf("# %s loaded in %.3f s\n", names[i], load_s);
		for (int j = 0; j < nbatches; j++) {
			if (bench_point(m, names[i], x, img,
			        (size_t) batches[j], seconds, csv) != IDN_OK) {
				status = 1;
			}
		}
		idn_model_close(m);
	}
	free(x);
	if (bench_csv_close("model", csv) != 0) {
		status = 1;
	}
	return status;
}
