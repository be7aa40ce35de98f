// SPDX-License-Identifier: MIT
// model_cmd.c: the model and dataset verbs of the idunno client:
// dataset import, model export and put, train local.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <idunno/catalog.h>
#include <idunno/model.h>
#include <idunno/sdfs.h>

#include "cli.h"
#include "progress.h"

// Where Debian's dataset-fashion-mnist package puts the files.
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

const tool_word cli_optimizers[] = {{"sgd", IDN_MODEL_SGD},
    {"adam", IDN_MODEL_ADAM}, {NULL, 0}};
const tool_word cli_schedules[] = {{"constant", IDN_MODEL_LR_CONST},
    {"const", IDN_MODEL_LR_CONST}, {"step", IDN_MODEL_LR_STEP},
    {"cosine", IDN_MODEL_LR_COSINE}, {NULL, 0}};

static int
dataset_import(cli *x, int argc, char **argv)
{
	const char *dir = FASHION_DIR, *prefix = "datasets/fashion-mnist";
	long shard = 1000;
	bool quiet = false;
	const tool_opt opts[] = {
	    TOOL_OPT_STR("dir", &dir),
	    TOOL_OPT_STR("prefix", &prefix),
	    TOOL_OPT_LONG("shard-size", &shard, 1, 1000000),
	    TOOL_OPT_FLAG("quiet", &quiet),
	    {0},
	};
	int first, rv = cli_parse(x, opts, argc, argv, &first);
	if (rv != TOOL_RUN) {
		return rv;
	}
	if (strcmp(argv[first], "fashion-mnist") != 0) {
		fprintf(stderr, "idunno dataset import: only fashion-mnist is "
		    "known\n");
		return TOOL_USAGE;
	}
	if (idn_sdfs_name_error(prefix) != NULL) {
		fprintf(stderr, "idunno dataset import: bad --prefix '%s': "
		    "%s\n", prefix, idn_sdfs_name_error(prefix));
		return TOOL_USAGE;
	}
	idn_client *c = cli_client(x);
	if (c == NULL) {
		return TOOL_FAILED;
	}
	progress pr;
	progress_start(&pr, "images", quiet);
	rv = idn_dataset_import_mnist_progress(c, dir, prefix,
	    (uint32_t) shard, pr.on ? progress_report : NULL, &pr);
	progress_end(&pr);
	if (rv != IDN_OK) {
		fprintf(stderr, "idunno dataset import: %s (%s)\n",
		    idn_strerror(rv), dir);
		return TOOL_FAILED;
	}
	printf("imported fashion-mnist into %s/train and %s/test\n", prefix,
	    prefix);
	return 0;
}

// Runs models/export.py with Debian's python (the one with torch): the
// source tree's copy when built in place, else the installed one. Needs
// no cluster; what follows "--" goes to the script.
static int
model_export(cli *x, int argc, char **argv)
{
	const char *out = "models";
	const tool_opt opts[] = {TOOL_OPT_STR("out", &out), {0}};
	int i, rv = cli_parse(x, opts, argc, argv, &i);
	if (rv != TOOL_RUN) {
		return rv;
	}
	if (i < argc && strcmp(argv[i - 1], "--") != 0) {
		fprintf(stderr, "idunno model export: unexpected argument '%s' "
		    "(the script's go after --)\n", argv[i]);
		return TOOL_USAGE;
	}
	char scripts[] = IDN_EXPORT_SCRIPTS;
	const char *script = NULL;
	for (char *p = strtok(scripts, ":"); p && !script; p = strtok(NULL, ":")) {
		script = access(p, R_OK) == 0 ? p : NULL;
	}
	if (script == NULL || access("/usr/bin/python3", X_OK) != 0) {
		fprintf(stderr, "idunno model export: needs %s and "
		    "/usr/bin/python3 with python3-torch\n", IDN_EXPORT_SCRIPTS);
		return 1;
	}
	const char *args[64] = {"/usr/bin/python3", script, "--out", out};
	int k = 4;
	for (; i < argc && k < 63; i++) {
		args[k++] = argv[i];
	}
	args[k] = NULL;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		setenv("OPENBLAS_NUM_THREADS", "1", 0);
		execv(args[0], (char *const *) args);
		_exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0) {
		fprintf(stderr, "idunno model export: %s failed\n", script);
		return 1;
	}
	printf("exported models into %s\n", out);
	return 0;
}

static int
model_put(cli *x, int argc, char **argv)
{
	const tool_opt opts[] = {{0}};
	idn_client *c;
	int i, rv = cli_connect(x, opts, argc, argv, &i, &c);
	if (rv != TOOL_RUN) {
		return rv;
	}
	const char *name = argv[i], *pt = argv[i + 1], *desc_file = argv[i + 2];
	uint8_t *model = NULL, *desc = NULL;
	size_t model_len = 0, desc_len = 0;
	char *err = NULL;
	rv = tool_read_file(pt, (size_t) 4 << 30, &model, &model_len);
	if (rv == IDN_OK) {
		rv = tool_read_file(desc_file, 1 << 20, &desc, &desc_len);
	}
	if (rv != IDN_OK) {
		fprintf(stderr, "idunno model put: %s: %s\n", model ?
		    desc_file : pt, idn_strerror(rv));
		free(model);
		return 1;
	}
	rv = idn_model_store(c, name, (const char *) desc, desc_len, model,
	    model_len, &err);
	if (rv == IDN_OK) {
		printf("stored model %s (%zu bytes) as models/%s/\n", name,
		    model_len, name);
	} else {
		fprintf(stderr, "idunno model put: %s: %s\n", idn_strerror(rv),
		    err ? err : "");
	}
	idn_free(err);
	free(model);
	free(desc);
	return rv == IDN_OK ? 0 : 1;
}

static int
print_epoch(void *arg, const idn_model_epoch *e)
{
	progress_end(arg);
	printf("epoch %u/%u: train loss %.4f, test loss %.4f, test accuracy "
	    "%.2f%%, lr %.5f, %.1f s\n", e->epoch, e->epochs, e->train_loss,
	    e->test_loss, 100.0 * e->test_accuracy, e->lr,
	    (double) e->train_ms / 1000.0);
	fflush(stdout);
	return 0;
}

static int
train_local(cli *x, int argc, char **argv)
{
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.on_epoch = print_epoch;
	bool quiet = false;
	const char *data = "datasets/fashion-mnist";
	long epochs = o.epochs, batch = o.batch_size, limit = 0;
	const tool_opt opts[] = {
	    TOOL_OPT_STR("data", &data),
	    TOOL_OPT_LONG("epochs", &epochs, 1, 100000000),
	    TOOL_OPT_NUM("lr", &o.lr),
	    TOOL_OPT_LONG("batch", &batch, 1, 100000000),
	    TOOL_OPT_WORD("optimizer", &o.optimizer, cli_optimizers),
	    TOOL_OPT_WORD("schedule", &o.schedule, cli_schedules),
	    TOOL_OPT_LONG("limit", &limit, 0, 100000000),
	    TOOL_OPT_FLAG("quiet", &quiet),
	    {0},
	};
	int first, rv = cli_parse(x, opts, argc, argv, &first);
	if (rv != TOOL_RUN) {
		return rv;
	}
	if (!(o.lr > 0 && o.lr < 10)) {
		fprintf(stderr, "idunno train local: --lr: '%g' is not in (0, "
		    "10)\n", o.lr);
		return TOOL_USAGE;
	}
	idn_client *c = cli_client(x);
	if (c == NULL) {
		return TOOL_FAILED;
	}
	const char *name = argv[first];
	o.epochs = (uint32_t) epochs;
	o.batch_size = (uint32_t) batch;
	char *err = NULL;
	progress pr;
	progress_start(&pr, "batches", quiet);
	o.arg = &pr;
	if (pr.on) {
		o.on_progress = progress_report;
		o.progress_arg = &pr;
	}
	rv = idn_catalog_train(c, name, data, (size_t) limit, &o, &err);
	progress_end(&pr);
	if (rv != IDN_OK) {
		fprintf(stderr, "idunno train: %s: %s\n", idn_strerror(rv),
		    err ? err : "");
	} else {
		printf("stored models/%s/weights and models/%s/metrics\n",
		    name, name);
	}
	idn_free(err);
	return rv == IDN_OK ? 0 : TOOL_FAILED;
}

const cli_cmd model_cmds[] = {
	{"dataset import", "fashion-mnist [--dir DIR] [--prefix P] "
	    "[--shard-size N]\n        [--quiet]", "put the dataset into SDFS "
	    "as shards (default\nDIR " FASHION_DIR ", P "
	    "datasets/fashion-mnist)", 1, 1, false, dataset_import},
	{"model export", "[--out DIR] [-- EXPORT-ARGS]", "write TorchScript "
	    "LeNet-5, ResNet-18 and their\ndescriptors into DIR (default "
	    "./models) with\nDebian's python3-torch (needs no cluster)", 0, -1,
	    true, model_export},
	{"model put", "NAME MODEL.pt DESC", "validate a TorchScript model and "
	    "its descriptor,\nthen store them as models/NAME/ in SDFS", 3, 3,
	    false, model_put},
	{"train local", "NAME [--data P] [--epochs N] [--lr X] [--batch N]\n"
	    "        [--optimizer sgd|adam] [--schedule const|step|cosine] "
	    "[--limit N]\n        [--quiet]", "train NAME on P/train, test on "
	    "P/test each epoch,\nstore models/NAME/weights and metrics", 1, 1,
	    false, train_local},
	{NULL, NULL, NULL, 0, 0, false, NULL},
};
