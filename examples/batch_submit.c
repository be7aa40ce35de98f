// SPDX-License-Identifier: MIT
// batch_submit.c: a client of an IDunno cluster on the public API only. It
// puts the Fashion-MNIST query set into SDFS if it is missing (and a sim
// model if the model is missing), submits an inference job, waits for it,
// and prints the job's accuracy and statistics.
//   batch_submit NODE KEYFILE [--model M] [--job J] [--batch B]
//       [--rate Q] [--limit N] [--data ROOT] [--timeout S]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <idunno/idunno.h>
#include <idunno/sched.h>

typedef struct {
	const char *node;
	const char *key_file;
	const char *model;
	const char *data;
	char job[65];
	long batch;
	double rate;
	long limit;
	long timeout_s;
} args;

static int
usage(void)
{
	fprintf(stderr, "usage: batch_submit NODE KEYFILE [--model M] "
	    "[--job J] [--batch B] [--rate Q]\n"
	    "           [--limit N] [--data ROOT] [--timeout S]\n");
	return 2;
}

static int
parse(int argc, char **argv, args *a)
{
	*a = (args) {.model = "example-sim", .data = "datasets/fashion-mnist",
	    .batch = 32, .rate = 500, .limit = 2000, .timeout_s = 300};
	snprintf(a->job, sizeof(a->job), "batch-submit-%ld-%ld",
	    (long) time(NULL), (long) getpid());
	if (argc < 3) {
		return -1;
	}
	a->node = argv[1];
	a->key_file = argv[2];
	for (int i = 3; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;
		if (v == NULL) {
			return -1;
		} else if (strcmp(k, "--model") == 0) {
			a->model = v;
		} else if (strcmp(k, "--data") == 0) {
			a->data = v;
		} else if (strcmp(k, "--job") == 0) {
			snprintf(a->job, sizeof(a->job), "%s", v);
		} else if (strcmp(k, "--batch") == 0) {
			a->batch = strtol(v, &end, 10);
		} else if (strcmp(k, "--rate") == 0) {
			a->rate = strtod(v, &end);
		} else if (strcmp(k, "--limit") == 0) {
			a->limit = strtol(v, &end, 10);
		} else if (strcmp(k, "--timeout") == 0) {
			a->timeout_s = strtol(v, &end, 10);
		} else {
			return -1;
		}
		if (end != NULL && (*end != '\0' || end == v)) {
			return -1;
		}
	}
	// The coordinator checks the rest (batch, rate) and says why.
	return a->limit < 0 || a->timeout_s <= 0 ? -1 : 0;
}

static bool
exists(idn_client *c, const char *name)
{
	idn_sdfs_info *info = NULL;
	int rv = idn_sdfs_ls(c, name, &info);
	idn_free(info);
	return rv == IDN_OK;
}

static int
put_blob(void *arg, const char *name, const void *data, size_t len)
{
	return idn_sdfs_put_buf(arg, name, data, len, NULL);
}

// The query set, imported from the local Fashion-MNIST files if missing.
static int
ensure_queries(idn_client *c, const char *root)
{
	char manifest[512];
	snprintf(manifest, sizeof(manifest), "%s/test/manifest", root);
	if (exists(c, manifest)) {
		return IDN_OK;
	}
	printf("importing Fashion-MNIST into %s ...\n", root);
	int rv = idn_dataset_import_fashion_mnist(NULL, root, 1000, put_blob,
	    c);
	if (rv != IDN_OK) {
		fprintf(stderr, "batch_submit: import: %s\n", idn_strerror(rv));
	}
	return rv;
}

// A model that needs no torch: the sim backend answers from the image
// bytes alone after a fixed service time.
static int
ensure_model(idn_client *c, const char *model)
{
	char desc[512];
	snprintf(desc, sizeof(desc), "models/%s/desc", model);
	if (exists(c, desc)) {
		return IDN_OK;
	}
	static const char sim[] = "name = example sim model\n"
				  "backend = sim\n"
				  "input = 1x28x28\n"
				  "classes = 10\n"
				  "service_ms = 5\n"
				  "service_per_query_us = 100\n";
	char *err = NULL;
	int rv = idn_model_store(c, model, sim, sizeof(sim) - 1, NULL, 0,
	    &err);
	if (rv != IDN_OK) {
		fprintf(stderr, "batch_submit: store model %s: %s%s%s\n",
		    model, idn_strerror(rv), err ? ": " : "", err ? err : "");
	} else {
		printf("stored sim model %s\n", model);
	}
	idn_free(err);
	return rv;
}

// Accuracy from the job's output: lines `query,predicted,score,label`.
static int
accuracy(idn_client *c, const char *job, size_t *lines, size_t *labelled,
    size_t *right)
{
	char name[128];
	snprintf(name, sizeof(name), "results/%s/output", job);
	void *data;
	size_t len;
	int rv = idn_sdfs_get_buf(c, name, 0, &data, &len, NULL);
	if (rv != IDN_OK) {
		return rv;
	}
	*lines = *labelled = *right = 0;
	char *end = (char *) data + len;
	for (char *p = data, *nl; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t) (end - p))) == NULL) {
			break;
		}
		*nl = '\0';
		unsigned long long q;
		long pred;
		double score;
		char label[32] = "";
		int n = sscanf(p, "%llu,%ld,%lf,%31[^\n]", &q, &pred, &score,
		    label);
		(*lines)++;
		if (n == 4) {
			(*labelled)++;
			*right += strtol(label, NULL, 10) == pred;
		}
	}
	idn_free(data);
	return IDN_OK;
}

int
main(int argc, char **argv)
{
	args a;
	if (parse(argc, argv, &a) != 0) {
		return usage();
	}
	uint8_t key[IDN_KEY_BYTES];
	idn_client *c = NULL;
	char *err = NULL, *json = NULL;
	int rv, state = -1;
	if ((rv = idn_key_load(a.key_file, key)) != IDN_OK) {
		fprintf(stderr, "batch_submit: key %s: %s\n", a.key_file,
		    idn_strerror(rv));
		return 1;
	}
	if ((rv = idn_client_open(a.node, key, &c)) != IDN_OK) {
		fprintf(stderr, "batch_submit: node %s: %s\n", a.node,
		    idn_strerror(rv));
		return 1;
	}
	idn_client_set_timeout(c, 30000);
	char queries[512];
	snprintf(queries, sizeof(queries), "%s/test", a.data);
	if (ensure_queries(c, a.data) != IDN_OK ||
	    ensure_model(c, a.model) != IDN_OK) {
		goto fail;
	}

	idn_infer_spec s;
	idn_infer_spec_init(&s);
	s.job = a.job;
	s.model = a.model;
	s.queries = queries;
	s.batch = (uint32_t) a.batch;
	s.rate = a.rate;
	s.limit = (uint64_t) a.limit;
	if ((rv = idn_phase_start(c, IDN_PHASE_INFER, &err)) != IDN_OK ||
	    (rv = idn_job_add_infer(c, &s, &err)) != IDN_OK) {
		fprintf(stderr, "batch_submit: %s%s%s\n", idn_strerror(rv),
		    err ? ": " : "", err ? err : "");
		goto fail;
	}
	printf("submitted %s: model %s, %s, batch %ld, %.1f queries/s\n",
	    a.job, a.model, queries, a.batch, a.rate);
	rv = idn_job_wait(c, a.job, (idn_duration) (a.timeout_s * 1000),
	    &state);
	if (rv != IDN_OK) {
		fprintf(stderr, "batch_submit: %s: %s (state %s)\n", a.job,
		    idn_strerror(rv), state >= 0 ?
		    idn_job_state_name(state) : "unknown");
		goto fail;
	}

	size_t lines, labelled, right;
	if ((rv = accuracy(c, a.job, &lines, &labelled, &right)) != IDN_OK) {
		fprintf(stderr, "batch_submit: output: %s\n", idn_strerror(rv));
		goto fail;
	}
	printf("%s done: %zu answers", a.job, lines);
	if (labelled > 0) {
		printf(", accuracy %.4f (%zu of %zu)", (double) right /
		    (double) labelled, right, labelled);
	}
	printf("\n");
	if ((rv = idn_sched_stats(c, a.job, &json)) != IDN_OK) {
		fprintf(stderr, "batch_submit: stats: %s\n", idn_strerror(rv));
		goto fail;
	}
	printf("%s\n", json);
	idn_free(json);
	idn_client_close(c);
	return 0;
fail:
	idn_free(err);
	idn_client_close(c);
	return 1;
}
