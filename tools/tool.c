// SPDX-License-Identifier: MIT
// tool.c: the command line of every tool, and the node start-up that
// idunno-coord and idunno-worker share.
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <idunno/node.h>

#include "tool.h"

void
tool_json_str(FILE *f, const char *s)
{
	char *q = idn_json_string(s);
	fputs(q != NULL ? q : "null", f);
	idn_free(q);
}

#define OPTS_MAX 32
#define OPT_BASE 256 // getopt_long's val for opts[i]: above any letter

static const char *
dashes(const tool_opt *o)
{
	return o->name[1] == '\0' ? "-" : "--";
}

static int
bad_value(const tool_cmd *c, const tool_opt *o, const char *v,
    const char *what)
{
	fprintf(stderr, "%s: %s%s: '%s' is not %s\n", c->prog, dashes(o),
	    o->name, v, what);
	return TOOL_USAGE;
}

// Stores v, the value given for o; TOOL_USAGE (reported) when it is bad.
static int
set_value(const tool_cmd *c, const tool_opt *o, const char *v)
{
	char *end, what[256];
	errno = 0;
	switch (o->kind) {
	case TOOL_FLAG:
		*(bool *) o->out = true;
		break;
	case TOOL_STR:
		*(const char **) o->out = v;
		break;
	case TOOL_STRS: {
		tool_strs *l = o->out;
		if (l->n == l->cap) {
			fprintf(stderr, "%s: too many %s%s (at most %zu)\n",
			    c->prog, dashes(o), o->name, l->cap);
			return TOOL_USAGE;
		}
		l->v[l->n++] = v;
		break;
	}
	case TOOL_LONG: {
		long n = strtol(v, &end, 10);
		if (errno != 0 || *v == '\0' || *end != '\0' || n < o->min ||
		    n > o->max) {
			snprintf(what, sizeof(what), o->max == LONG_MAX ?
			    "a number >= %ld" : "a number in %ld..%ld", o->min,
			    o->max);
			return bad_value(c, o, v, what);
		}
		*(long *) o->out = n;
		break;
	}
	case TOOL_NUM: {
		double d = strtod(v, &end);
		if (errno != 0 || *v == '\0' || *end != '\0' || !isfinite(d)) {
			return bad_value(c, o, v, "a number");
		}
		*(double *) o->out = d;
		break;
	}
	case TOOL_WORD: {
		size_t len = (size_t) snprintf(what, sizeof(what), "one of ");
		for (const tool_word *w = o->words; w->word != NULL; w++) {
			if (strcmp(v, w->word) == 0) {
				*(int *) o->out = w->value;
				return TOOL_RUN;
			}
			if (len < sizeof(what)) {
				len += (size_t) snprintf(what + len,
				    sizeof(what) - len, "%s%s",
				    w == o->words ? "" : "|", w->word);
			}
		}
		return bad_value(c, o, v, what);
	}
	}
	return TOOL_RUN;
}

int
tool_parse(const tool_cmd *c, const tool_opt *opts, int argc, char **argv,
    int *first)
{
	struct option longs[OPTS_MAX + 2];
	// "+": stop at the first argument; ":": tell a missing value (':')
	// from an unknown option ('?'), and print nothing ourselves.
	char shorts[2 * OPTS_MAX + 4] = "";
	size_t ns = 0, nl = 0;
	if (c->in_order) {
		shorts[ns++] = '+';
	}
	shorts[ns++] = ':';
	shorts[ns++] = 'h';
	size_t n = 0;
	for (; opts[n].name != NULL; n++) {
		assert(n < OPTS_MAX);
		int has = opts[n].kind == TOOL_FLAG ? no_argument :
		    required_argument;
		if (opts[n].name[1] == '\0') {
			shorts[ns++] = opts[n].name[0];
			if (has == required_argument) {
				shorts[ns++] = ':';
			}
		} else {
			longs[nl++] = (struct option) {opts[n].name, has, NULL,
			    OPT_BASE + (int) n};
		}
	}
	shorts[ns] = '\0';
	longs[nl++] = (struct option) {"help", no_argument, NULL, 'h'};
	longs[nl] = (struct option) {NULL, 0, NULL, 0};
	optind = 0; // glibc: start afresh (each command parses its own argv)
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const tool_opt *o = NULL;
		if (ch >= OPT_BASE) {
			o = &opts[ch - OPT_BASE];
		} else {
			for (size_t i = 0; i < n && o == NULL; i++) {
				o = opts[i].name[0] == ch && opts[i].name[1] ==
				    '\0' ? &opts[i] : NULL;
			}
		}
		if (ch == 'h' && o == NULL) {
			return TOOL_HELP;
		}
		if (o != NULL) {
			int rv = set_value(c, o, optarg);
			if (rv != TOOL_RUN) {
				return rv;
			}
			continue;
		}
		// optopt: the option of a missing value, or a flag given a
		// value (its val), or an unknown letter; 0 for an unknown
		// long option, which is the last element read.
		const tool_opt *e = optopt >= OPT_BASE ?
		    &opts[optopt - OPT_BASE] : NULL;
		if (ch == ':') {
			fprintf(stderr, "%s: option '%s%s' needs a value (see "
			    "%s --help)\n", c->prog, e ? "--" : "-",
			    e ? e->name : (char[]) {(char) optopt, '\0'},
			    c->prog);
		} else if (e != NULL) {
			fprintf(stderr, "%s: option '--%s' takes no value\n",
			    c->prog, e->name);
		} else if (optopt != 0) {
			fprintf(stderr, "%s: unknown option '-%c' (see %s "
			    "--help)\n", c->prog, optopt, c->prog);
		} else {
			const char *a = argv[optind - 1];
			fprintf(stderr, "%s: unknown option '%.*s' (see %s "
			    "--help)\n", c->prog, (int) strcspn(a, "="), a,
			    c->prog);
		}
		return TOOL_USAGE;
	}
	int nargs = argc - optind;
	if (nargs < c->min_args) {
		fprintf(stderr, "%s: missing arguments (see %s --help)\n",
		    c->prog, c->prog);
		return TOOL_USAGE;
	}
	if (c->max_args >= 0 && nargs > c->max_args) {
		fprintf(stderr, "%s: unexpected argument '%s' (see %s "
		    "--help)\n", c->prog, argv[optind + c->max_args], c->prog);
		return TOOL_USAGE;
	}
	*first = optind;
	return TOOL_RUN;
}

void
tool_list(FILE *f, const tool_opt *opts)
{
	static const char *const kinds[] = {[TOOL_STR] = "STR",
	    [TOOL_STRS] = "STR", [TOOL_LONG] = "INT", [TOOL_NUM] = "NUM"};
	for (const tool_opt *o = opts; o->name != NULL; o++) {
		fprintf(f, "%s%s%s", o == opts ? "" : " ", dashes(o), o->name);
		if (o->kind == TOOL_WORD) {
			for (const tool_word *w = o->words; w->word; w++) {
				fprintf(f, "%c%s", w == o->words ? '=' : '|',
				    w->word);
			}
		} else if (o->kind != TOOL_FLAG) {
			fprintf(f, "=%s", kinds[o->kind]);
		}
	}
}

static void
usage(FILE *f, const char *prog, const char *role)
{
	fprintf(f,
	    "usage: %s --data DIR --key FILE [--listen HOST:PORT]\n"
	    "       [--join HOST:PORT]... [--log FILE]%s\n"
	    "Runs an IDunno %s node until SIGTERM or SIGINT.\n"
	    "  --listen HOST:PORT  RPC address (default 127.0.0.1:0: a free "
	    "port)\n"
	    "  --join HOST:PORT    introducer; repeat for several\n"
	    "  --data DIR          the node's folder (created; must be "
	    "writable)\n"
	    "  --log FILE          log file (default DIR/node.log)\n"
	    "  --key FILE          cluster key file (64 hex digits)\n"
	    "%s"
	    "The bound address and node id are written to DIR/node.addr.\n"
	    "Environment: SDFS limits that tests lower, to reach them in a few\n"
	    "requests or seconds (unset, 0 or above the default in brackets:\n"
	    "the default):\n"
	    "  IDUNNO_SDFS_OFFERS_PER_CALL N   "
	    "anti-entropy offers per peer (2000)\n"
	    "  IDUNNO_SDFS_PUTS_MAX N          "
	    "puts a node fronts at once (256)\n"
	    "  IDUNNO_SDFS_LIST_PAGE N         "
	    "names per ls-prefix page (1000)\n"
	    "  IDUNNO_SDFS_SESSION_IDLE_MS MS  "
	    "an abandoned write expires (120000)\n"
	    "  IDUNNO_SDFS_SCRUB_PASS_MS MS    "
	    "one scrub pass over the store (600000)\n"
	    "  IDUNNO_SDFS_CACHE_TRUST_MS MS   "
	    "listings used unchecked (10000)\n"
	    "  IDUNNO_SDFS_REPLICATE_MS MS     "
	    "a put waits for its replicas (90000)\n",
	    prog, strcmp(role, "coord") == 0 ? " [--standby] [--http ADDR]" :
	    " [--model-cpu N]", role, strcmp(role, "coord") == 0 ?
	    "  --standby           start as the hot standby coordinator\n"
	    "  --http [HOST:]PORT  serve the read-only dashboard, /metrics,\n"
	    "                      /healthz and /readyz (a bare port: on\n"
	    "                      127.0.0.1; port 0: a free one)\n" :
	    "  --model-cpu N       run the model on CPU N (0-based) and this\n"
	    "                      node's other threads on the other CPUs, so\n"
	    "                      housekeeping never preempts the model\n");
}

// A limit from the environment: a positive number (at most max), else 0:
// the library's built-in value.
static long
env_limit(const char *var, long max)
{
	const char *env = getenv(var);
	long n = env != NULL ? strtol(env, NULL, 10) : 0;
	return n > 0 ? (n < max ? n : max) : 0;
}

static void
sdfs_limits_from_env(idn_node_opts *o)
{
	o->sdfs_offers_per_call = (size_t) env_limit(
	    "IDUNNO_SDFS_OFFERS_PER_CALL", LONG_MAX);
	o->sdfs_puts_max = (size_t) env_limit("IDUNNO_SDFS_PUTS_MAX",
	    LONG_MAX);
	o->sdfs_list_page = (size_t) env_limit("IDUNNO_SDFS_LIST_PAGE",
	    LONG_MAX);
	o->sdfs_session_idle_ms = (idn_duration) env_limit(
	    "IDUNNO_SDFS_SESSION_IDLE_MS", INT32_MAX);
	o->sdfs_scrub_pass_ms = (idn_duration) env_limit(
	    "IDUNNO_SDFS_SCRUB_PASS_MS", INT32_MAX);
	o->sdfs_cache_trust_ms = (idn_duration) env_limit(
	    "IDUNNO_SDFS_CACHE_TRUST_MS", INT32_MAX);
	o->sdfs_replicate_ms = (idn_duration) env_limit(
	    "IDUNNO_SDFS_REPLICATE_MS", INT32_MAX);
}

// Before any thread starts: the node's threads inherit a mask without the
// model's CPU (the executor moves itself onto it).
static int
keep_off_cpu(const char *prog, int cpu)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) != 0) {
		fprintf(stderr, "%s: --model-cpu: %s\n", prog, strerror(errno));
		return -1;
	}
	if (!CPU_ISSET((size_t) cpu, &set)) {
		fprintf(stderr, "%s: --model-cpu: CPU %d is not one this process "
		    "may use (it may use CPUs", prog, cpu);
		for (int k = 0; k < CPU_SETSIZE; k++) {
			if (CPU_ISSET((size_t) k, &set)) {
				fprintf(stderr, " %d", k);
			}
		}
		fprintf(stderr, ")\n");
		return -1;
	}
	CPU_ZERO(&set);
	CPU_SET((size_t) cpu, &set);
	return tool_cpus_off(&set);
}

int
tool_cpus_off(const cpu_set_t *off)
{
	cpu_set_t m;
	if (sched_getaffinity(0, sizeof(m), &m) != 0) {
		return -1;
	}
	for (int k = 0; k < CPU_SETSIZE; k++) {
		if (CPU_ISSET((size_t) k, off)) {
			CPU_CLR((size_t) k, &m);
		}
	}
	if (CPU_COUNT(&m) > 0) {
		(void) sched_setaffinity(0, sizeof(m), &m);
	}
	return 0;
}

int
tool_node_main(const char *prog, const char *role, int argc, char **argv)
{
	idn_node_opts o;
	idn_node_opts_init(&o);
	sdfs_limits_from_env(&o);
	if (idn_role_parse(role, &o.role) != IDN_OK) {
		return TOOL_USAGE;
	}
	bool coord = strcmp(role, "coord") == 0, standby = false;
	const char *joins[64];
	tool_strs join = {joins, 0, sizeof(joins) / sizeof(joins[0])};
	const char *key_file = NULL, *http_arg = NULL;
	long cpu = -1;
	tool_opt opts[] = {
	    TOOL_OPT_STR("listen", &o.listen),
	    TOOL_OPT_STRS("join", &join),
	    TOOL_OPT_STR("data", &o.data_dir),
	    TOOL_OPT_STR("log", &o.log_path),
	    TOOL_OPT_STR("key", &key_file),
	    {0}, {0}, {0},
	};
	// The coordinator serves the dashboard; only a worker runs a model.
	size_t k = 5;
	if (coord) {
		opts[k++] = (tool_opt) TOOL_OPT_FLAG("standby", &standby);
		opts[k++] = (tool_opt) TOOL_OPT_STR("http", &http_arg);
	} else {
		opts[k++] = (tool_opt) TOOL_OPT_LONG("model-cpu", &cpu, 0,
		    CPU_SETSIZE - 1);
	}
	tool_cmd cmd = {prog, 0, 0, false};
	int first, rv = tool_parse(&cmd, opts, argc, argv, &first);
	if (rv == TOOL_HELP) {
		usage(stdout, prog, role);
		return 0;
	}
	if (rv != TOOL_RUN) {
		return rv;
	}
	o.role = standby ? IDN_ROLE_STANDBY : o.role;
	o.model_cpu = (int) cpu;
	// A bare port stays on loopback: other hosts only when their
	// address is given.
	char http[128];
	if (http_arg != NULL) {
		snprintf(http, sizeof(http), "%s%s", strchr(http_arg, ':') ?
		    "" : "127.0.0.1:", http_arg);
		o.http = http;
	}
	o.join = joins;
	o.njoin = join.n;
	if (o.data_dir == NULL || key_file == NULL) {
		fprintf(stderr, "%s: --data and --key are required (see %s "
		    "--help)\n", prog, prog);
		return TOOL_USAGE;
	}
	if ((rv = idn_key_load(key_file, o.key)) != IDN_OK) {
		tool_key_error(prog, key_file, rv);
		return TOOL_FAILED;
	}
	if (o.model_cpu >= 0 && keep_off_cpu(prog, o.model_cpu) != 0) {
		return TOOL_USAGE;
	}
	// Block the stop signals before any thread starts, so that only
	// sigwait below receives them.
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	idn_node *n;
	rv = idn_node_open(&o, &n);
	if (rv != IDN_OK) {
		const char *what = rv == IDN_EINVAL ? "bad --listen or --join "
		    "address (want IPv4:PORT)" :
		    rv == IDN_EPERM ? "data folder or log not writable" :
		    rv == IDN_ENET ? "cannot listen on that address" :
		    rv == IDN_EUNAVAIL ? "no introducer answered" :
		    idn_strerror(rv);
		fprintf(stderr, "%s: cannot start node: %s\n", prog, what);
		return 1;
	}
	int sig;
	sigwait(&set, &sig);
	idn_node_leave(n);
	idn_node_close(n);
	return 0;
}

int
tool_read_file(const char *path, size_t max_bytes, uint8_t **data,
    size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		return errno == ENOENT ? IDN_ENOENT : IDN_ESYS;
	}
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;
	int rv = IDN_OK;
	for (;;) {
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 1 << 16;
			uint8_t *nb = realloc(buf, ncap);
			if (nb == NULL) {
				rv = IDN_ENOMEM;
				break;
			}
			buf = nb;
			cap = ncap;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (n > max_bytes) {
			rv = IDN_ETOOBIG;
			break;
		}
		if (got == 0) {
			rv = ferror(f) ? IDN_ESYS : IDN_OK;
			break;
		}
	}
	fclose(f);
	if (rv != IDN_OK) {
		free(buf);
		return rv;
	}
	*data = buf;
	*len = n;
	return IDN_OK;
}

void
tool_key_error(const char *prog, const char *path, int rv)
{
	fprintf(stderr, "%s: key file '%s': %s\n", prog, path,
	    rv == IDN_EINVAL ? "not 64 hex digits" :
	    rv == IDN_EPERM ? "group or others may read it, or another user "
	                      "owns it, or it is a link (the key must be its "
	                      "owner's only: chmod 600 it)" :
	    rv == IDN_EEXIST ? "exists already (never replaced)" :
	    idn_strerror(rv));
}
