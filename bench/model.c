// SPDX-License-Identifier: MIT
// model.c: raw backend inference throughput and median batch latency for
// the exported models at batch 1, 8 and 32, straight through the backend.
//   bench/model [MODELS_DIR] [SECONDS_PER_POINT]
// MODELS_DIR defaults to $IDUNNO_BUILD_DIR/models, then build/models.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <idunno/model.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define FASHION "/usr/share/datasets/fashion-mnist"
#define MAX_ITERS 5000

static double
now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return (x > y) - (x < y);
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
// batches) after 3 warm-up batches.
static int
bench_point(idn_model *m, const char *name, const uint8_t *x, size_t img,
    size_t b, double seconds)
{
	static double lat[MAX_ITERS];
	uint32_t cls[32];
	float score[32];
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
		const uint8_t *in = x + (n % 64) * img;
		double t0 = now_s();
		rv = idn_model_infer(m, in, b, b * img, cls, score);
		if (rv != IDN_OK) {
			return rv;
		}
		lat[n++] = now_s() - t0;
	}
	double total = now_s() - start;
	qsort(lat, n, sizeof(double), cmp_double);
	printf("%-10s %5zu %8zu %12.3f %12.3f %12.0f\n", name, b, n,
	    lat[n / 2] * 1e3, lat[(n * 99) / 100] * 1e3,
	    (double) (n * b) / total);
	return IDN_OK;
}

int
main(int argc, char **argv)
{
	const char *build = getenv("IDUNNO_BUILD_DIR");
	char models[4096];
	const char *dir = argc > 1 && argv[1][0] ? argv[1] : "build/models";
	if ((argc < 2 || !argv[1][0]) && build != NULL) {
		snprintf(models, sizeof(models), "%s/models", build);
		dir = models;
	}
	double seconds = argc > 2 ? atof(argv[2]) : 2.0;
	if (seconds <= 0) {
		seconds = 2.0;
	}
	char rt[512];
	idn_model_runtime(rt, sizeof(rt));
	printf("# backend inference, models from %s\n# %s\n", dir, rt);

	// Real test images if the dataset is there, else a fixed pattern.
	size_t img = 28 * 28;
	uint8_t *x = calloc(96, img);
	idn_dataset *te;
	if (idn_dataset_load_idx(FASHION "/t10k-images-idx3-ubyte.gz",
	    FASHION "/t10k-labels-idx1-ubyte.gz", &te) == IDN_OK) {
		memcpy(x, te->images, 96 * img);
		idn_dataset_free(te);
	} else {
		for (size_t i = 0; i < 96 * img; i++) {
			x[i] = (uint8_t) (i * 31 + 7);
		}
	}
	static const char *const names[] = {"lenet5", "resnet18", "alexnet"};
	static const size_t batches[] = {1, 8, 32};
	int status = 0;
	printf("%-10s %5s %8s %12s %12s %12s\n", "model", "batch", "batches",
	    "median_ms", "p99_ms", "images/s");
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		char pt[4200];
		snprintf(pt, sizeof(pt), "%s/%s.pt", dir, names[i]);
		bool optional = i == 2 && access(pt, R_OK) != 0;
		if (optional) {
			continue; // AlexNet is exported on request only
		}
		double load_s = 0.0;
		idn_model *m = load(dir, names[i], &load_s);
		if (m == NULL) {
			status = 1;
			continue;
		}
		printf("# %s loaded in %.3f s\n", names[i], load_s);
		for (size_t j = 0; j < ARRAY_LEN(batches); j++) {
			if (bench_point(m, names[i], x, img, batches[j],
			    seconds) != IDN_OK) {
				status = 1;
			}
		}
		idn_model_close(m);
	}
	free(x);
	return status;
}
