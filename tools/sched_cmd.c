// SPDX-License-Identifier: MIT
// sched_cmd.c: the scheduler verbs of the idunno client: train and infer
// phases and jobs, jobs, wait, result, stats, assign.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/idunno.h>

#include "progress.h"
#include "tool.h"

int sched_cmd_main(idn_client *c, const char *verb, int argc, char **argv);
const char *sched_cmd_usage(void);

const char *
sched_cmd_usage(void)
{
	return "  train start|stop        start or stop the training phase\n"
	       "  train add JOB --model M [--data P] [--epochs N] [--batch B] "
	       "[--lr X]\n"
	       "        [--optimizer sgd|adam] [--schedule constant|step|cosine]"
	       " [--limit N]\n"
	       "        [--workers N] [--momentum X] [--wd X] "
	       "[--from model|weights]\n"
	       "        [--checkpoint-every S] [--sync-every K] "
	       "[--augment flip,crop=P]\n"
	       "                          a training job on N workers "
	       "(data-parallel, B the\n"
	       "                          global batch; defaults: 1 worker, "
	       "batch 64, lr 0.01,\n"
	       "                          momentum 0.9, wd 0, from model, "
	       "checkpoint every 30 s,\n"
	       "                          gradients summed every step; K > 1:"
	       " weights averaged\n"
	       "                          every K steps; --augment: each "
	       "training image\n"
	       "                          mirrored at random and shifted by "
	       "up to P pixels)\n"
	       "  train remove JOB\n"
	       "  train local NAME ...    train in this process (see "
	       "'train local --help')\n"
	       "  infer start|stop        start or stop the inference phase\n"
	       "  infer add JOB --model M --queries P --batch B --rate Q "
	       "[--weights F]\n"
	       "        [--limit N]       an inference job: Q queries/s of the"
	       " SDFS set P;\n"
	       "                          N queries (past the set's size it is"
	       " replayed)\n"
	       "  infer remove JOB\n"
	       "  jobs [--json]           every job, its state and accuracy\n"
	       "  wait JOB [--timeout S] [--quiet]\n"
	       "                          until the job finished (exit 0) or "
	       "failed (1);\n"
	       "                          progress on a terminal\n"
	       "  result JOB LOCAL        the job's output (LOCAL '-': "
	       "stdout)\n"
	       "  stats [JOB] [--json]    rates, processing and latency "
	       "statistics\n"
	       "  assign [--json]         which worker serves which job\n"
	       "  (jobs, stats, assign: --here asks the --node itself, e.g. "
	       "a standby's copy)\n";
}

static int
refused(const char *what, int rv, char *err)
{
	fprintf(stderr, "idunno %s: %s\n", what, err && *err ? err :
	    idn_strerror(rv));
	idn_free(err);
	return 1;
}

static bool
parse_double(const char *opt, const char *v, double *out)
{
	char *end;
	errno = 0;
	*out = strtod(v, &end);
	if (errno != 0 || *v == '\0' || *end != '\0') {
		fprintf(stderr, "idunno: %s: '%s' is not a number\n", opt, v);
		return false;
	}
	return true;
}

static int
phase_cmd(idn_client *c, int phase, const char *verb, const char *what)
{
	char *err = NULL;
	int rv = strcmp(verb, "start") == 0 ? idn_phase_start(c, phase, &err) :
	    idn_phase_stop(c, phase, &err);
	if (rv != IDN_OK) {
		char w[64];
		snprintf(w, sizeof(w), "%s %s", what, verb);
		return refused(w, rv, err);
	}
	printf("%s phase %s\n", what, strcmp(verb, "start") == 0 ? "started" :
	    "stopped");
	return 0;
}

// Options of `train add` and `infer add`; a value of each.
typedef struct {
	const char *model, *data, *queries, *weights, *optimizer, *schedule;
	const char *from, *augment;
	long epochs, batch, limit, workers, ckpt_s, sync_every;
	double lr, rate, momentum, wd;
} add_opts;

static int
parse_add(const char *what, int argc, char **argv, add_opts *o)
{
	for (int i = 2; i < argc; i++) {
		const char *k = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL) {
			fprintf(stderr, "idunno %s add: '%s' needs a value\n",
			    what, k);
			return 2;
		}
		i++;
		if (strcmp(k, "--model") == 0) {
			o->model = v;
		} else if (strcmp(k, "--data") == 0) {
			o->data = v;
		} else if (strcmp(k, "--queries") == 0) {
			o->queries = v;
		} else if (strcmp(k, "--weights") == 0) {
			o->weights = v;
		} else if (strcmp(k, "--optimizer") == 0) {
			o->optimizer = v;
		} else if (strcmp(k, "--schedule") == 0) {
			o->schedule = v;
		} else if (strcmp(k, "--from") == 0) {
			o->from = v;
		} else if (strcmp(k, "--augment") == 0) {
			o->augment = v;
		} else if (strcmp(k, "--epochs") == 0 || strcmp(k, "--batch") == 0 ||
		    strcmp(k, "--limit") == 0 || strcmp(k, "--workers") == 0 ||
		    strcmp(k, "--checkpoint-every") == 0 ||
		    strcmp(k, "--sync-every") == 0) {
			// Batch <= 0 is the coordinator's refusal to make, so
			// any integer passes here.
			char *end;
			errno = 0;
			long n = strtol(v, &end, 10);
			if (errno != 0 || *v == '\0' || *end != '\0') {
				fprintf(stderr, "idunno %s add: %s: '%s' is not "
				    "a whole number\n", what, k, v);
				return 1;
			}
			*(strcmp(k, "--epochs") == 0 ? &o->epochs :
			    strcmp(k, "--batch") == 0 ? &o->batch :
			    strcmp(k, "--workers") == 0 ? &o->workers :
			    strcmp(k, "--limit") == 0 ? &o->limit :
			    strcmp(k, "--sync-every") == 0 ? &o->sync_every :
			    &o->ckpt_s) = n;
		} else if (strcmp(k, "--lr") == 0 || strcmp(k, "--rate") == 0 ||
		    strcmp(k, "--momentum") == 0 || strcmp(k, "--wd") == 0) {
			if (!parse_double(k, v, strcmp(k, "--lr") == 0 ? &o->lr :
			        strcmp(k, "--rate") == 0 ? &o->rate :
			        strcmp(k, "--wd") == 0 ? &o->wd : &o->momentum)) {
				return 1;
			}
		} else {
			fprintf(stderr, "idunno %s add: unknown option '%s'\n",
			    what, k);
			return 2;
		}
	}
	return 0;
}

// parse_augment reads --augment's list: none, or flip and crop=P joined
// by commas.
static bool
parse_augment(const char *v, uint32_t *bits, uint32_t *pad)
{
	*bits = 0;
	*pad = 0;
	if (strcmp(v, "none") == 0) {
		return true;
	}
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", v);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t != NULL;
	    t = strtok_r(NULL, ",", &save)) {
		char *end;
		if (strcmp(t, "flip") == 0) {
			*bits |= IDN_MODEL_AUG_FLIP;
		} else if (strncmp(t, "crop=", 5) == 0 && t[5] != '\0' &&
		    strtoul(t + 5, &end, 10) <= 64 && *end == '\0') {
			*pad = (uint32_t) strtoul(t + 5, NULL, 10);
		} else {
			fprintf(stderr, "idunno train add: --augment: '%s' is not "
			    "flip, crop=P (0..64) or none\n", t);
			return false;
		}
	}
	return true;
}

static int
add_cmd(idn_client *c, bool infer, int argc, char **argv)
{
	const char *what = infer ? "infer" : "train";
	add_opts o = {.epochs = 1, .batch = infer ? 0 : 64, .lr = 0.01,
	    .workers = 1, .ckpt_s = 30, .sync_every = 1, .momentum = 0.9};
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "idunno %s add JOB --model M ... (see --help)\n",
		    what);
		return 2;
	}
	int rv = parse_add(what, argc, argv, &o);
	if (rv != 0) {
		return rv;
	}
	char *err = NULL;
	if (o.model == NULL || (infer && (o.queries == NULL || o.batch == 0 ||
	    o.rate == 0))) {
		fprintf(stderr, "idunno %s add: %s\n", what, infer ?
		    "--model, --queries, --batch and --rate are required" :
		    "--model is required");
		return 1;
	}
	if (o.batch <= 0 || o.batch > 1000000 || o.limit < 0 ||
	    o.epochs <= 0 || o.epochs > 100000) {
		fprintf(stderr, "idunno %s add: %s\n", what, o.batch <= 0 ?
		    "batch size must be > 0" : o.limit < 0 ?
		    "limit must be >= 0" : "out of range number");
		return 1;
	}
	// Ranges of the training options are the coordinator's to check
	// (one place for the CLI, the C API and the binding); here only
	// what does not fit the spec's types.
	if (o.workers <= 0 || o.workers > 1000000 || o.ckpt_s <= 0 ||
	    o.sync_every <= 0 || o.sync_every > 1000000 ||
	    o.ckpt_s > 1000000 || (o.from != NULL &&
	    strcmp(o.from, "model") != 0 && strcmp(o.from, "weights") != 0)) {
		fprintf(stderr, "idunno %s add: %s\n", what, o.workers <= 0 ?
		    "--workers must be >= 1" : o.ckpt_s <= 0 ?
		    "--checkpoint-every must be >= 1 (seconds)" :
		    o.sync_every <= 0 ? "--sync-every must be >= 1 (steps)" :
		    o.from != NULL && strcmp(o.from, "model") != 0 &&
		    strcmp(o.from, "weights") != 0 ?
		    "--from must be model or weights" : "out of range number");
		return 1;
	}
	if (infer) {
		idn_infer_spec s;
		idn_infer_spec_init(&s);
		s.job = argv[1];
		s.model = o.model;
		s.queries = o.queries;
		s.weights = o.weights;
		s.batch = (uint32_t) o.batch;
		s.rate = o.rate;
		s.limit = (uint64_t) o.limit;
		rv = idn_job_add_infer(c, &s, &err);
	} else {
		idn_train_spec s;
		idn_train_spec_init(&s);
		s.job = argv[1];
		s.model = o.model;
		s.data = o.data ? o.data : s.data;
		s.epochs = (uint32_t) o.epochs;
		s.batch = (uint32_t) o.batch;
		s.lr = o.lr;
		s.limit = (uint64_t) o.limit;
		s.workers = (uint32_t) o.workers;
		s.momentum = o.momentum;
		s.weight_decay = o.wd;
		s.checkpoint_s = (uint32_t) o.ckpt_s;
		s.sync_every = (uint32_t) o.sync_every;
		if (o.augment != NULL &&
		    !parse_augment(o.augment, &s.augment, &s.crop_pad)) {
			return 2;
		}
		s.from = o.from != NULL && strcmp(o.from, "weights") == 0 ?
		    IDN_TRAIN_FROM_WEIGHTS : IDN_TRAIN_FROM_MODEL;
		if (o.optimizer != NULL) {
			s.optimizer = strcmp(o.optimizer, "adam") == 0 ?
			    IDN_MODEL_ADAM : strcmp(o.optimizer, "sgd") == 0 ?
			    IDN_MODEL_SGD : -1;
		}
		if (o.schedule != NULL) {
			s.schedule = strcmp(o.schedule, "cosine") == 0 ?
			    IDN_MODEL_LR_COSINE : strcmp(o.schedule, "step") == 0 ?
			    IDN_MODEL_LR_STEP : strcmp(o.schedule, "const") == 0 ||
			    strcmp(o.schedule, "constant") == 0 ?
			    IDN_MODEL_LR_CONST : -1;
		}
		rv = idn_job_add_train(c, &s, &err);
	}
	if (rv != IDN_OK) {
		char w[32];
		snprintf(w, sizeof(w), "%s add", what);
		return refused(w, rv, err);
	}
	printf("added %s job %s\n", what, argv[1]);
	return 0;
}

static int
remove_cmd(idn_client *c, const char *what, int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "idunno %s remove JOB\n", what);
		return 2;
	}
	char *err = NULL;
	int rv = idn_job_remove(c, argv[1], &err);
	if (rv != IDN_OK) {
		return refused("remove", rv, err);
	}
	printf("removed job %s\n", argv[1]);
	return 0;
}

static int
doc_cmd(idn_client *c, const char *what, int argc, char **argv)
{
	bool json = false, here = false;
	const char *job = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--here") == 0) {
			here = true;
		} else if (job == NULL && argv[i][0] != '-' &&
		    strcmp(what, "stats") == 0) {
			job = argv[i];
		} else {
			fprintf(stderr, "idunno %s%s [--json] [--here]\n", what,
			    strcmp(what, "stats") == 0 ? " [JOB]" : "");
			return 2;
		}
	}
	char *out = NULL;
	int rv = here ? idn_sched_doc_here(c, what, job, !json, &out) :
	    !json ? idn_sched_table(c, what, job, &out) :
	    strcmp(what, "stats") == 0 ? idn_sched_stats(c, job, &out) :
	    strcmp(what, "jobs") == 0 ? idn_sched_jobs(c, &out) :
	    idn_sched_assign(c, &out);
	if (rv != IDN_OK) {
		fprintf(stderr, "idunno %s: %s\n", what, rv == IDN_EUNAVAIL ?
		    "no coordinator reachable" : rv == IDN_ENOENT ? "no such job" :
		    idn_strerror(rv));
		return 1;
	}
	printf("%s%s", out, json ? "\n" : "");
	idn_free(out);
	return 0;
}

// The number after "key": in a JSON document (the job's stats), or 0.
static uint64_t
json_u64(const char *json, const char *key)
{
	char k[64];
	snprintf(k, sizeof(k), "\"%s\": ", key);
	const char *p = json != NULL ? strstr(json, k) : NULL;
	return p != NULL ? strtoull(p + strlen(k), NULL, 10) : 0;
}

// Waits in steps of half a second to show the job's progress on a
// terminal.
static int
wait_progress(idn_client *c, const char *job, long timeout_s, bool quiet,
    int *state)
{
	progress pr;
	progress_start(&pr, "queries", quiet);
	uint64_t deadline = idn_clock_ms() + (uint64_t) timeout_s * 1000;
	int rv;
	for (;;) {
		char *json = NULL;
		if (pr.on && idn_sched_stats(c, job, &json) == IDN_OK) {
			progress_update(&pr, json_u64(json, "done"),
			    json_u64(json, "total"), true);
		}
		idn_free(json);
		idn_duration step = 500;
		if (timeout_s > 0) {
			uint64_t now = idn_clock_ms();
			if (now >= deadline) {
				rv = IDN_ETIMEDOUT;
				break;
			}
			step = (idn_duration) (deadline - now < 500 ? deadline - now : 500);
		}
		rv = idn_job_wait(c, job, step, state);
		if (rv != IDN_ETIMEDOUT) {
			break;
		}
	}
	progress_end(&pr);
	return rv;
}

static int
wait_cmd(idn_client *c, int argc, char **argv)
{
	long timeout = 0;
	bool quiet = false;
	const char *job = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			if ((timeout = tool_parse_long("idunno wait",
			         "--timeout", argv[++i], 1, 2000000)) < 0) {
				return 2;
			}
		} else if (strcmp(argv[i], "--quiet") == 0) {
			quiet = true;
		} else if (job == NULL && argv[i][0] != '-') {
			job = argv[i];
		} else {
			job = NULL;
			break;
		}
	}
	if (job == NULL) {
		fprintf(stderr, "idunno wait JOB [--timeout S] [--quiet]\n");
		return 2;
	}
	int state = -1;
	int rv = wait_progress(c, job, timeout, quiet, &state);
	if (rv == IDN_OK) {
		printf("job %s done\n", job);
		return 0;
	}
	fprintf(stderr, "idunno wait: job %s: %s\n", job,
	    rv == IDN_ETIMEDOUT ? "timed out" : rv == IDN_EINVAL ?
	    idn_job_state_name(state) : rv == IDN_ENOENT ? "no such job" :
	    rv == IDN_EUNAVAIL ? "no coordinator reachable" :
	    idn_strerror(rv));
	return 1;
}

static int
result_cmd(idn_client *c, int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "idunno result JOB LOCAL\n");
		return 2;
	}
	int rv = idn_job_result(c, argv[0], argv[1]);
	if (rv != IDN_OK) {
		fprintf(stderr, "idunno result: %s: %s\n", argv[0],
		    rv == IDN_ENOENT ? "no output (yet)" : idn_strerror(rv));
		return 1;
	}
	return 0;
}

int
sched_cmd_main(idn_client *c, const char *verb, int argc, char **argv)
{
	if (strcmp(verb, "train") == 0 || strcmp(verb, "infer") == 0) {
		bool infer = strcmp(verb, "infer") == 0;
		const char *sub = argc > 0 ? argv[0] : "";
		if (strcmp(sub, "start") == 0 || strcmp(sub, "stop") == 0) {
			return argc == 1 ? phase_cmd(c, infer ? IDN_PHASE_INFER :
			    IDN_PHASE_TRAIN, sub, verb) : 2;
		}
		if (strcmp(sub, "add") == 0) {
			return add_cmd(c, infer, argc, argv);
		}
		if (strcmp(sub, "remove") == 0) {
			return remove_cmd(c, verb, argc, argv);
		}
		fprintf(stderr, "idunno %s start|stop|add|remove%s (see "
		    "--help)\n", verb, infer ? "" : "|local");
		return 2;
	}
	if (strcmp(verb, "wait") == 0 && argc >= 1) {
		return wait_cmd(c, argc, argv);
	}
	if (strcmp(verb, "result") == 0) {
		return result_cmd(c, argc, argv);
	}
	if (strcmp(verb, "wait") == 0) {
		fprintf(stderr, "idunno wait JOB [--timeout S] [--quiet]\n");
		return 2;
	}
	return doc_cmd(c, verb, argc, argv);
}
