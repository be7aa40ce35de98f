// SPDX-License-Identifier: MIT
// train.c: trains an exported model on Fashion-MNIST from the IDX files
// and prints time per epoch and test accuracy per epoch.
//   bench/train [options] [MODEL]     (MODEL: lenet5, resnet18, alexnet)
// Options: --epochs N --lr X --batch N --opt sgd|adam --momentum X
// --wd X --sched const|step|cosine --step N --gamma X --train N --test N
// --seed N --models DIR --data DIR --threads N --save FILE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/model.h>

typedef struct {
	const char *model;
	const char *models_dir;
	const char *data_dir;
	const char *save;
	uint32_t train_n;
	uint32_t test_n;
	int threads;
	double best;
	double total_s;
} bench;

static int
on_epoch(void *arg, const idn_model_epoch *e)
{
	bench *b = arg;
	double s = (double) e->train_ms / 1e3;
	b->total_s += s;
	if (e->test_accuracy > b->best) {
		b->best = e->test_accuracy;
	}
	printf("%5u %10.5f %11.4f %10.4f %9.2f%% %9.1f %7.1f %8.0f\n",
	    e->epoch, e->lr, e->train_loss, e->test_loss,
	    100.0 * e->test_accuracy, s, (double) e->test_ms / 1e3,
	    (double) b->train_n / (s > 0 ? s : 1e-9));
	fflush(stdout);
	return 0;
}

static int
usage(void)
{
	fprintf(stderr, "usage: train [--epochs N] [--lr X] "
	    "[--batch N] [--opt sgd|adam] [--momentum X] [--wd X]\n"
	    "  [--sched const|step|cosine] [--step N] [--gamma X] "
	    "[--train N] [--test N] [--seed N]\n"
	    "  [--models DIR] [--data DIR] [--threads N] [--save FILE] "
	    "[MODEL]\n");
	return 2;
}

static int
parse_args(int argc, char **argv, bench *b, idn_model_train_opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (a[0] != '-') {
			b->model = a;
			continue;
		}
		if (v == NULL) {
			return usage();
		}
		i++;
		if (strcmp(a, "--epochs") == 0) {
			o->epochs = (uint32_t) atoi(v);
		} else if (strcmp(a, "--lr") == 0) {
			o->lr = atof(v);
		} else if (strcmp(a, "--batch") == 0) {
			o->batch_size = (uint32_t) atoi(v);
		} else if (strcmp(a, "--opt") == 0) {
			o->optimizer = strcmp(v, "adam") == 0 ? IDN_MODEL_ADAM :
			    strcmp(v, "sgd") == 0 ? IDN_MODEL_SGD : -1;
		} else if (strcmp(a, "--momentum") == 0) {
			o->momentum = atof(v);
		} else if (strcmp(a, "--wd") == 0) {
			o->weight_decay = atof(v);
		} else if (strcmp(a, "--sched") == 0) {
			o->schedule = strcmp(v, "const") == 0 ?
			    IDN_MODEL_LR_CONST : strcmp(v, "step") == 0 ?
			    IDN_MODEL_LR_STEP : strcmp(v, "cosine") == 0 ?
			    IDN_MODEL_LR_COSINE : -1;
		} else if (strcmp(a, "--step") == 0) {
			o->lr_step = (uint32_t) atoi(v);
		} else if (strcmp(a, "--gamma") == 0) {
			o->lr_gamma = atof(v);
		} else if (strcmp(a, "--train") == 0) {
			b->train_n = (uint32_t) atoi(v);
		} else if (strcmp(a, "--test") == 0) {
			b->test_n = (uint32_t) atoi(v);
		} else if (strcmp(a, "--seed") == 0) {
			o->seed = strtoull(v, NULL, 10);
		} else if (strcmp(a, "--models") == 0) {
			b->models_dir = v;
		} else if (strcmp(a, "--data") == 0) {
			b->data_dir = v;
		} else if (strcmp(a, "--threads") == 0) {
			b->threads = atoi(v);
		} else if (strcmp(a, "--save") == 0) {
			b->save = v;
		} else {
			return usage();
		}
	}
	return 0;
}

static idn_model *
load(const bench *b)
{
	char dp[4200], mp[4200];
	snprintf(dp, sizeof(dp), "%s/%s.desc", b->models_dir, b->model);
	snprintf(mp, sizeof(mp), "%s/%s.pt", b->models_dir, b->model);
	idn_model *m = NULL;
	char *err = NULL;
	int rv = idn_model_load_files(dp, mp, &err, &m);
	if (rv != IDN_OK) {
		fprintf(stderr, "%s: %s: %s\n", b->model, idn_strerror(rv),
		    err ? err : "");
	}
	idn_free(err);
	return m;
}

static int
load_set(const char *dir, const char *set, idn_dataset **d)
{
	char img[4200], lab[4200];
	snprintf(img, sizeof(img), "%s/%s-images-idx3-ubyte.gz", dir, set);
	snprintf(lab, sizeof(lab), "%s/%s-labels-idx1-ubyte.gz", dir, set);
	int rv = idn_dataset_load_idx(img, lab, d);
	if (rv != IDN_OK) {
		fprintf(stderr, "%s: %s\n", img, idn_strerror(rv));
	}
	return rv;
}

int
main(int argc, char **argv)
{
	const char *build = getenv("IDUNNO_BUILD_DIR");
	char models[4096];
	snprintf(models, sizeof(models), "%s/models", build ? build : "build");
	bench b = {.model = "lenet5", .models_dir = models,
	    .data_dir = "/usr/share/datasets/fashion-mnist", .threads = 1,
	    .best = 0.0};
	idn_model_train_opts o;
	idn_model_train_opts_init(&o);
	o.epochs = 3;
	if (parse_args(argc, argv, &b, &o) != 0) {
		return 2;
	}
	if (idn_model_set_threads(b.threads) != IDN_OK) {
		return usage();
	}
	idn_dataset *tr, *te;
	if (load_set(b.data_dir, "train", &tr) != IDN_OK ||
	    load_set(b.data_dir, "t10k", &te) != IDN_OK) {
		return 1;
	}
	idn_model *m = load(&b);
	if (m == NULL) {
		return 1;
	}
	b.train_n = b.train_n && b.train_n < tr->n ? b.train_n : tr->n;
	b.test_n = b.test_n && b.test_n < te->n ? b.test_n : te->n;
	idn_model_data train = {tr->images, tr->labels, b.train_n};
	idn_model_data test = {te->images, te->labels, b.test_n};
	o.on_epoch = on_epoch;
	o.arg = &b;

	char rt[512];
	idn_model_runtime(rt, sizeof(rt));
	static const char *const opt[] = {"sgd", "adam"};
	static const char *const sched[] = {"const", "step", "cosine"};
	int oi = o.optimizer == IDN_MODEL_ADAM;
	int si = o.schedule >= 0 && o.schedule <= 2 ? o.schedule : 0;
	printf("# %s: %u training, %u test images; %s lr %g momentum %g "
	    "wd %g batch %u, %s schedule (step %u, gamma %g), seed %llu\n"
	    "# %s\n", b.model, b.train_n, b.test_n, opt[oi], o.lr,
	    o.momentum, o.weight_decay, o.batch_size, sched[si], o.lr_step,
	    o.lr_gamma, (unsigned long long) o.seed, rt);
	printf("%5s %10s %11s %10s %10s %9s %7s %8s\n", "epoch", "lr",
	    "train_loss", "test_loss", "test_acc", "train_s", "test_s",
	    "img/s");
	int rv = idn_model_train(m, &o, &train, &test);
	if (rv != IDN_OK) {
		fprintf(stderr, "train: %s: %s\n", idn_strerror(rv),
		    idn_model_errmsg(m));
	} else {
		printf("# best test accuracy %.2f%%, %.1f s training\n",
		    100.0 * b.best, b.total_s);
	}
	if (rv == IDN_OK && b.save != NULL) {
		void *w = NULL;
		size_t len = 0;
		if ((rv = idn_model_export(m, &w, &len)) == IDN_OK) {
			FILE *f = fopen(b.save, "wb");
			if (f == NULL || fwrite(w, 1, len, f) != len) {
				rv = IDN_ESYS;
			}
			if (f != NULL && fclose(f) != 0) {
				rv = IDN_ESYS;
			}
		}
		idn_free(w);
		printf("# saved %s: %s\n", b.save, idn_strerror(rv));
	}
	idn_model_close(m);
	idn_dataset_free(tr);
	idn_dataset_free(te);
	return rv == IDN_OK ? 0 : 1;
}
