// SPDX-License-Identifier: MIT
// model_cmd.c: the model and dataset verbs of the idunno client:
// dataset import, model put, train.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <idunno/catalog.h>
#include <idunno/model.h>
#include <idunno/sdfs.h>

#include "progress.h"
#include "tool.h"

// Where Debian's dataset-fashion-mnist package puts the files.
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

int model_cmd_main(idn_client *c, const char *verb, int argc, char **argv);
int model_export(int argc, char **argv);
const char *model_cmd_usage(void);

const char *
model_cmd_usage(void)
{
	return "  dataset import fashion-mnist [--dir DIR] [--prefix P] "
	       "[--shard-size N]\n"
	       "        [--quiet]\n"
	       "                         put the dataset into SDFS as shards "
	       "(default\n"
	       "                         DIR " FASHION_DIR ","
	       " P datasets/fashion-mnist)\n"
	       "  model export [--out DIR] [-- EXPORT-ARGS]\n"
	       "                         write TorchScript LeNet-5, ResNet-18 "
	       "and their\n"
	       "                         descriptors into DIR (default "
	       "./models) with\n"
	       "                         Debian's python3-torch\n"
	       "  model put NAME MODEL.pt DESC\n"
	       "                         validate a TorchScript model and its "
	       "descriptor,\n"
	       "                         then store them as models/NAME/ in "
	       "SDFS\n"
	       "  train local NAME [--data P] [--epochs N] [--lr X] [--batch N]\n"
	       "        [--optimizer sgd|adam] [--schedule const|step|cosine] "
	       "[--limit N]\n"
	       "        [--quiet]\n"
	       "                         train NAME on P/train, test on P/test "
	       "each epoch,\n"
	       "                         store models/NAME/weights and "
	       "metrics\n";
}

static int
dataset_import(idn_client *c, int argc, char **argv)
{
	const char *dir = FASHION_DIR, *prefix = "datasets/fashion-mnist";
	long shard = 1000;
	bool quiet = false;
	if (argc < 1 || strcmp(argv[0], "fashion-mnist") != 0) {
		fprintf(stderr, "idunno dataset: only 'import fashion-mnist' "
		    "is known\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quiet") == 0) {
			quiet = true;
		} else if (i + 1 >= argc) {
			goto usage;
		} else if (strcmp(argv[i], "--dir") == 0) {
			dir = argv[++i];
		} else if (strcmp(argv[i], "--prefix") == 0) {
			prefix = argv[++i];
		} else if (strcmp(argv[i], "--shard-size") == 0) {
			if ((shard = tool_parse_long("idunno", "--shard-size",
			         argv[++i], 1, 1000000)) < 0) {
				return 2;
			}
		} else {
			goto usage;
		}
	}
	if (idn_sdfs_name_error(prefix) != NULL) {
		fprintf(stderr, "idunno dataset: bad --prefix '%s': %s\n",
		    prefix, idn_sdfs_name_error(prefix));
		return 2;
	}
	progress pr;
	progress_start(&pr, "images", quiet);
	int rv = idn_dataset_import_mnist_progress(c, dir, prefix,
	    (uint32_t) shard, pr.on ? progress_report : NULL, &pr);
	progress_end(&pr);
	if (rv != IDN_OK) {
		fprintf(stderr, "idunno dataset import: %s (%s)\n",
		    idn_strerror(rv), dir);
		return 1;
	}
	printf("imported fashion-mnist into %s/train and %s/test\n", prefix,
	    prefix);
	return 0;
usage:
	fprintf(stderr, "idunno dataset import fashion-mnist [--dir DIR] "
	    "[--prefix P] [--shard-size N] [--quiet]\n");
	return 2;
}

// Runs models/export.py with Debian's python (the one with torch): the
// source tree's copy when built in place, else the installed one.
int
model_export(int argc, char **argv)
{
	const char *out = "models";
	int i = 1;
	if (i + 1 < argc && strcmp(argv[i], "--out") == 0) {
		out = argv[i + 1];
		i += 2;
	}
	if (i < argc && strcmp(argv[i], "--") == 0) {
		i++;
	} else if (i < argc) {
		fprintf(stderr, "idunno model export [--out DIR] [-- "
		    "EXPORT-ARGS]\n");
		return 2;
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
model_put(idn_client *c, int argc, char **argv)
{
	if (argc != 4 || strcmp(argv[0], "put") != 0) {
		fprintf(stderr, "idunno model put NAME MODEL.pt DESC\n");
		return 2;
	}
	uint8_t *model = NULL, *desc = NULL;
	size_t model_len = 0, desc_len = 0;
	char *err = NULL;
	int rv = tool_read_file(argv[2], (size_t) 4 << 30, &model, &model_len);
	if (rv == IDN_OK) {
		rv = tool_read_file(argv[3], 1 << 20, &desc, &desc_len);
	}
	if (rv != IDN_OK) {
		fprintf(stderr, "idunno model put: %s: %s\n", model ?
		    argv[3] : argv[2], idn_strerror(rv));
		free(model);
		return 1;
	}
	rv = idn_model_store(c, argv[1], (const char *) desc, desc_len, model,
	    model_len, &err);
	if (rv == IDN_OK) {
		printf("stored model %s (%zu bytes) as models/%s/\n", argv[1],
		    model_len, argv[1]);
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
train(idn_client *c, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"data", required_argument, NULL, 'd'},
	    {"epochs", required_argument, NULL, 'e'},
	    {"lr", required_argument, NULL, 'l'},
	    {"batch", required_argument, NULL, 'b'},
	    {"optimizer", required_argument, NULL, 'o'},
	    {"schedule", required_argument, NULL, 's'},
	    {"limit", required_argument, NULL, 'n'},
	    {"quiet", no_argument, NULL, 'q'},
	    {NULL, 0, NULL, 0},
	};
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.on_epoch = print_epoch;
	bool quiet = false;
	const char *data = "datasets/fashion-mnist";
	long v, limit = 0;
	int ch;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *end = NULL;
		switch (ch) {
		case 'd':
			data = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'e':
		case 'b':
		case 'n':
			if ((v = tool_parse_long("idunno", argv[optind - 1],
			         optarg, ch == 'n' ? 0 : 1, 100000000)) < 0) {
				return 2;
			}
			if (ch == 'e') {
				o.epochs = (uint32_t) v;
			} else if (ch == 'b') {
				o.batch_size = (uint32_t) v;
			} else {
				limit = v;
			}
			break;
		case 'l':
			o.lr = strtod(optarg, &end);
			if (*end != '\0' || !(o.lr > 0 && o.lr < 10)) {
				fprintf(stderr, "idunno train: --lr '%s' is "
				    "not in (0, 10)\n", optarg);
				return 2;
			}
			break;
		case 'o':
			if (strcmp(optarg, "sgd") != 0 &&
			    strcmp(optarg, "adam") != 0) {
				goto usage;
			}
			o.optimizer = strcmp(optarg, "adam") == 0 ?
			    IDN_MODEL_ADAM : IDN_MODEL_SGD;
			break;
		case 's':
			o.schedule = strcmp(optarg, "cosine") == 0 ?
			    IDN_MODEL_LR_COSINE : strcmp(optarg, "step") == 0 ?
			    IDN_MODEL_LR_STEP : strcmp(optarg, "const") == 0 ?
			    IDN_MODEL_LR_CONST : -1;
			if (o.schedule < 0) {
				goto usage;
			}
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1) {
		goto usage;
	}
	char *err = NULL;
	progress pr;
	progress_start(&pr, "batches", quiet);
	o.arg = &pr;
	if (pr.on) {
		o.on_progress = progress_report;
		o.progress_arg = &pr;
	}
	int rv = idn_catalog_train(c, argv[optind], data, (size_t) limit,
	    &o, &err);
	progress_end(&pr);
	if (rv != IDN_OK) {
		fprintf(stderr, "idunno train: %s: %s\n", idn_strerror(rv),
		    err ? err : "");
	} else {
		printf("stored models/%s/weights and models/%s/metrics\n",
		    argv[optind], argv[optind]);
	}
	idn_free(err);
	return rv == IDN_OK ? 0 : 1;
usage:
	fprintf(stderr, "idunno train local NAME [--data P] [--epochs N] [--lr X] "
	    "[--batch N] [--optimizer sgd|adam] [--schedule const|step|cosine]"
	    " [--limit N] [--quiet]\n");
	return 2;
}

int
model_cmd_main(idn_client *c, const char *verb, int argc, char **argv)
{
	if (strcmp(verb, "dataset") == 0) {
		if (argc < 1 || strcmp(argv[0], "import") != 0) {
			fprintf(stderr, "idunno dataset import fashion-mnist "
			    "...\n");
			return 2;
		}
		return dataset_import(c, argc - 1, argv + 1);
	}
	if (strcmp(verb, "model") == 0) {
		return model_put(c, argc, argv);
	}
	// train: getopt wants the verb in argv[0].
	return train(c, argc + 1, argv - 1);
}
