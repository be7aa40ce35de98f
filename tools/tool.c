// SPDX-License-Identifier: MIT
// tool.c: node start-up shared by idunno-coord and idunno-worker.
#include <errno.h>
#include <getopt.h>
#include <limits.h>
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
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p);
		} else if (*p < 0x20) {
			fprintf(f, "\\u%04x", *p);
		} else {
			fputc(*p, f);
		}
	}
	fputc('"', f);
}

long
tool_parse_long(const char *prog, const char *opt, const char *v, long min,
    long max)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno != 0 || *v == '\0' || *end != '\0' || n < min || n > max) {
		fprintf(stderr, "%s: %s: '%s' is not a number in %ld..%ld\n",
		    prog, opt, v, min, max);
		return -1;
	}
	return n;
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
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"join", required_argument, NULL, 'j'},
	    {"data", required_argument, NULL, 'd'},
	    {"log", required_argument, NULL, 'g'},
	    {"key", required_argument, NULL, 'k'},
	    {"standby", no_argument, NULL, 's'},
	    {"http", required_argument, NULL, 't'},
	    {"model-cpu", required_argument, NULL, 'm'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	idn_node_opts o;
	idn_node_opts_init(&o);
	sdfs_limits_from_env(&o);
	if (idn_role_parse(role, &o.role) != IDN_OK) {
		return 2;
	}
	const char *joins[64];
	const char *key_file = NULL;
	char http[128];
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			o.listen = optarg;
			break;
		case 'j':
			if (o.njoin == sizeof(joins) / sizeof(joins[0])) {
				fprintf(stderr, "%s: too many --join\n", prog);
				return 2;
			}
			joins[o.njoin++] = optarg;
			break;
		case 'd':
			o.data_dir = optarg;
			break;
		case 'g':
			o.log_path = optarg;
			break;
		case 'k':
			key_file = optarg;
			break;
		case 's':
			if (strcmp(role, "coord") != 0) {
				goto bad;
			}
			o.role = IDN_ROLE_STANDBY;
			break;
		case 't':
			if (strcmp(role, "coord") != 0) {
				fprintf(stderr, "%s: --http is served by the "
				    "coordinator and the standby only\n", prog);
				return 2;
			}
			// A bare port stays on loopback: other hosts only when
			// their address is given.
			if (strchr(optarg, ':') == NULL) {
				snprintf(http, sizeof(http), "127.0.0.1:%s",
				    optarg);
			} else {
				snprintf(http, sizeof(http), "%s", optarg);
			}
			o.http = http;
			break;
		case 'm':
			if (strcmp(role, "worker") != 0) {
				fprintf(stderr, "%s: --model-cpu is for workers "
				    "(the coordinator runs no model)\n", prog);
				return 2;
			}
			o.model_cpu = (int) tool_parse_long(prog, "--model-cpu",
			    optarg, 0, CPU_SETSIZE - 1);
			if (o.model_cpu < 0) {
				return 2;
			}
			break;
		case 'h':
			usage(stdout, prog, role);
			return 0;
		default:
		bad:
			fprintf(stderr, "%s: unknown or incomplete option '%s'"
			    " (see --help)\n", prog, argv[optind - 1]);
			return 2;
		}
	}
	o.join = joins;
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog,
		    argv[optind]);
		return 2;
	}
	if (o.data_dir == NULL || key_file == NULL) {
		fprintf(stderr, "%s: --data and --key are required (see "
		    "--help)\n", prog);
		return 2;
	}
	int rv = idn_key_load(key_file, o.key);
	if (rv != IDN_OK) {
		tool_key_error(prog, key_file, rv);
		return 1;
	}
	if (o.model_cpu >= 0 && keep_off_cpu(prog, o.model_cpu) != 0) {
		return 2;
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
