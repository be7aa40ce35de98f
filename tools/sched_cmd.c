// SPDX-License-Identifier: MIT
// sched_cmd.c: the scheduler verbs of the idunno client: train and infer
// phases and jobs, jobs, wait, result, stats, assign.
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/idunno.h>

#include "cli.h"
#include "progress.h"

static int
refused(const char *what, int rv, char *err)
{
	fprintf(stderr, "idunno %s: %s\n", what, err && *err ? err :
	    idn_strerror(rv));
	idn_free(err);
	return 1;
}

// train|infer start|stop: argv[0] says which.
static int
phase_cmd(cli *x, int argc, char **argv, int phase, const char *what)
{
	const tool_opt opts[] = {{0}};
	idn_client *c;
	int first, rv = cli_connect(x, opts, argc, argv, &first, &c);
	if (rv != TOOL_RUN) {
		return rv;
	}
	const char *verb = argv[0];
	char *err = NULL;
	rv = strcmp(verb, "start") == 0 ? idn_phase_start(c, phase, &err) :
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

static int
train_phase(cli *x, int argc, char **argv)
{
	return phase_cmd(x, argc, argv, IDN_PHASE_TRAIN, "train");
}

static int
infer_phase(cli *x, int argc, char **argv)
{
	return phase_cmd(x, argc, argv, IDN_PHASE_INFER, "infer");
}

// Submits a job that add_train or add_infer parsed.
static int
add_job(cli *x, const char *what, const idn_train_spec *t,
    const idn_infer_spec *i)
{
	idn_client *c = cli_client(x);
	if (c == NULL) {
		return TOOL_FAILED;
	}
	char *err = NULL;
	int rv = t != NULL ? idn_job_add_train(c, t, &err) :
	    idn_job_add_infer(c, i, &err);
	if (rv != IDN_OK) {
		char w[32];
		snprintf(w, sizeof(w), "%s add", what);
		return refused(w, rv, err);
	}
	printf("added %s job %s\n", what, t != NULL ? t->job : i->job);
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

// A value here only has to fit the spec: the ranges are the
// coordinator's to check (one place for the CLI, the C API and the
// binding), and what it refuses exits 1 with its reason.
#define OPT_U32(n, p) TOOL_OPT_LONG(n, p, 0, UINT32_MAX)

static int
add_train(cli *x, int argc, char **argv)
{
	static const tool_word froms[] = {{"model", IDN_TRAIN_FROM_MODEL},
	    {"weights", IDN_TRAIN_FROM_WEIGHTS}, {NULL, 0}};
	idn_train_spec s;
	idn_train_spec_init(&s);
	long epochs = s.epochs, batch = s.batch, limit = 0;
	long workers = s.workers, ckpt = s.checkpoint_s, sync = s.sync_every;
	const char *augment = NULL;
	const tool_opt opts[] = {
	    TOOL_OPT_STR("model", &s.model),
	    TOOL_OPT_STR("data", &s.data),
	    OPT_U32("epochs", &epochs),
	    OPT_U32("batch", &batch),
	    TOOL_OPT_NUM("lr", &s.lr),
	    TOOL_OPT_WORD("optimizer", &s.optimizer, cli_optimizers),
	    TOOL_OPT_WORD("schedule", &s.schedule, cli_schedules),
	    TOOL_OPT_LONG("limit", &limit, 0, LONG_MAX),
	    OPT_U32("workers", &workers),
	    TOOL_OPT_NUM("momentum", &s.momentum),
	    TOOL_OPT_NUM("wd", &s.weight_decay),
	    TOOL_OPT_WORD("from", &s.from, froms),
	    OPT_U32("checkpoint-every", &ckpt),
	    OPT_U32("sync-every", &sync),
	    TOOL_OPT_STR("augment", &augment),
	    {0},
	};
	int first, rv = cli_parse(x, opts, argc, argv, &first);
	if (rv != TOOL_RUN) {
		return rv;
	}
	if (s.model == NULL) {
		fprintf(stderr, "idunno train add: --model is required\n");
		return TOOL_USAGE;
	}
	s.job = argv[first];
	s.epochs = (uint32_t) epochs;
	s.batch = (uint32_t) batch;
	s.limit = (uint64_t) limit;
	s.workers = (uint32_t) workers;
	s.checkpoint_s = (uint32_t) ckpt;
	s.sync_every = (uint32_t) sync;
	if (augment != NULL &&
	    !parse_augment(augment, &s.augment, &s.crop_pad)) {
		return TOOL_USAGE;
	}
	return add_job(x, "train", &s, NULL);
}

static int
add_infer(cli *x, int argc, char **argv)
{
	idn_infer_spec s;
	idn_infer_spec_init(&s);
	long batch = -1, limit = 0;
	double rate = NAN;
	const tool_opt opts[] = {
	    TOOL_OPT_STR("model", &s.model),
	    TOOL_OPT_STR("queries", &s.queries),
	    TOOL_OPT_STR("weights", &s.weights),
	    OPT_U32("batch", &batch),
	    TOOL_OPT_NUM("rate", &rate),
	    TOOL_OPT_LONG("limit", &limit, 0, LONG_MAX),
	    {0},
	};
	int first, rv = cli_parse(x, opts, argc, argv, &first);
	if (rv != TOOL_RUN) {
		return rv;
	}
	if (s.model == NULL || s.queries == NULL || batch < 0 || isnan(rate)) {
		fprintf(stderr, "idunno infer add: --model, --queries, --batch "
		    "and --rate are required\n");
		return TOOL_USAGE;
	}
	s.job = argv[first];
	s.batch = (uint32_t) batch;
	s.rate = rate;
	s.limit = (uint64_t) limit;
	return add_job(x, "infer", NULL, &s);
}

static int
remove_cmd(cli *x, int argc, char **argv)
{
	const tool_opt opts[] = {{0}};
	idn_client *c;
	int first, rv = cli_connect(x, opts, argc, argv, &first, &c);
	if (rv != TOOL_RUN) {
		return rv;
	}
	char *err = NULL;
	if ((rv = idn_job_remove(c, argv[first], &err)) != IDN_OK) {
		return refused("remove", rv, err);
	}
	printf("removed job %s\n", argv[first]);
	return 0;
}

// jobs, stats and assign: argv[0] says which.
static int
doc_cmd(cli *x, int argc, char **argv)
{
	bool json = false, here = false;
	const tool_opt opts[] = {TOOL_OPT_FLAG("json", &json),
	    TOOL_OPT_FLAG("here", &here), {0}};
	idn_client *c;
	int first, rv = cli_connect(x, opts, argc, argv, &first, &c);
	if (rv != TOOL_RUN) {
		return rv;
	}
	const char *what = argv[0], *job = first < argc ? argv[first] : NULL;
	char *out = NULL;
	rv = here ? idn_sched_doc_here(c, what, job, !json, &out) :
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
wait_cmd(cli *x, int argc, char **argv)
{
	long timeout = 0;
	bool quiet = false;
	const tool_opt opts[] = {
	    TOOL_OPT_LONG("timeout", &timeout, 1, 2000000),
	    TOOL_OPT_FLAG("quiet", &quiet),
	    {0},
	};
	idn_client *c;
	int first, rv = cli_connect(x, opts, argc, argv, &first, &c);
	if (rv != TOOL_RUN) {
		return rv;
	}
	const char *job = argv[first];
	int state = -1;
	rv = wait_progress(c, job, timeout, quiet, &state);
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
result_cmd(cli *x, int argc, char **argv)
{
	const tool_opt opts[] = {{0}};
	idn_client *c;
	int first, rv = cli_connect(x, opts, argc, argv, &first, &c);
	if (rv != TOOL_RUN) {
		return rv;
	}
	const char *job = argv[first], *local = argv[first + 1];
	if ((rv = idn_job_result(c, job, local)) != IDN_OK) {
		fprintf(stderr, "idunno result: %s: %s\n", job,
		    rv == IDN_ENOENT ? "no output (yet)" : idn_strerror(rv));
		return TOOL_FAILED;
	}
	return 0;
}

#define HERE "\n--here: ask the --node itself (e.g. a standby's copy)"

const cli_cmd sched_cmds[] = {
	{"train start", "", "start the training phase", 0, 0, false,
	    train_phase},
	{"train stop", "", "stop the training phase", 0, 0, false,
	    train_phase},
	{"train add", "JOB --model M [--data P] [--epochs N] [--batch B] "
	    "[--lr X]\n        [--optimizer sgd|adam] [--schedule "
	    "constant|step|cosine] [--limit N]\n        [--workers N] "
	    "[--momentum X] [--wd X] [--from model|weights]\n        "
	    "[--checkpoint-every S] [--sync-every K]\n        "
	    "[--augment flip,crop=P]",
	    "a training job on N workers (data-parallel, B the\nglobal batch; "
	    "defaults: 1 worker, batch 64, lr 0.01,\nmomentum 0.9, wd 0, from "
	    "model, checkpoint every 30 s,\ngradients summed every step; K > 1:"
	    " weights averaged\nevery K steps; --augment: each training image "
	    "mirrored\nat random and shifted by up to P pixels)", 1, 1, false,
	    add_train},
	{"train remove", "JOB", "remove a training job", 1, 1, false,
	    remove_cmd},
	{"infer start", "", "start the inference phase", 0, 0, false,
	    infer_phase},
	{"infer stop", "", "stop the inference phase", 0, 0, false,
	    infer_phase},
	{"infer add", "JOB --model M --queries P --batch B --rate Q "
	    "[--weights F]\n        [--limit N]", "an inference job: Q "
	    "queries/s of the SDFS set P;\nN queries (past the set's size it "
	    "is replayed)", 1, 1, false, add_infer},
	{"infer remove", "JOB", "remove an inference job", 1, 1, false,
	    remove_cmd},
	{"jobs", "[--json] [--here]", "every job, its state and accuracy" HERE,
	    0, 0, false, doc_cmd},
	{"wait", "JOB [--timeout S] [--quiet]", "until the job finished (exit "
	    "0) or failed (1);\nprogress on a terminal", 1, 1, false,
	    wait_cmd},
	{"result", "JOB LOCAL", "the job's output (LOCAL '-': stdout)", 2, 2,
	    false, result_cmd},
	{"stats", "[JOB] [--json] [--here]", "rates, processing and latency "
	    "statistics" HERE, 0, 1, false, doc_cmd},
	{"assign", "[--json] [--here]", "which worker serves which job" HERE,
	    0, 0, false, doc_cmd},
	{NULL, NULL, NULL, 0, 0, false, NULL},
};
