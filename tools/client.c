// SPDX-License-Identifier: MIT
// client.c: idunno, the command line client: local cluster, membership,
// log grep, and the SDFS commands.
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/client.h>
#include <idunno/membership.h>

#include "cluster.h"
#include "tool.h"
#include "top.h"

int sdfs_cmd_main(idn_client *c, const char *verb, int argc, char **argv);
const char *sdfs_cmd_usage(void);
int model_cmd_main(idn_client *c, const char *verb, int argc, char **argv);
const char *model_cmd_usage(void);
int sched_cmd_main(idn_client *c, const char *verb, int argc, char **argv);
const char *sched_cmd_usage(void);
int model_export(int argc, char **argv);

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: idunno [--root DIR] [--node HOST:PORT] [--key FILE]\n"
	    "              [--timeout MS] COMMAND [ARGS]\n"
	    "Talks to an IDunno cluster. ROOT (default $IDUNNO_ROOT, else\n"
	    "./idunno-cluster) holds a local cluster and its key; --node "
	    "picks\nthe node to ask (default: a live node of the local "
	    "cluster).\n\nCommands:\n");
	cluster_usage(f);
	fprintf(f,
	    "  members [--json]       the membership as the node sees it\n"
	    "  grep PATTERN [--regex] [--json]\n"
	    "                         grep every live node's log; lines are "
	    "prefixed\n"
	    "                         by node id, with per-node counts\n"
	    "  events [--count N] [--timeout MS] [--json]\n"
	    "                         stream the node's membership events\n"
	    "  top [--once]           live view of jobs, nodes and events "
	    "from the\n"
	    "                         coordinator's stream; q quits (--once: "
	    "one\n"
	    "                         snapshot, printed)\n"
	    "SDFS (the replicated file system):\n%s"
	    "Models and data:\n%s"
	    "Jobs (training and inference on the cluster):\n%s",
	    sdfs_cmd_usage(), model_cmd_usage(), sched_cmd_usage());
}

typedef struct {
	const char *root;
	const char *node;
	const char *key_file;
	long timeout_ms;
	char addr[64];
	uint8_t key[IDN_KEY_BYTES];
	idn_client *c;
} ctx;

static int
connect_node(ctx *x)
{
	uint8_t *key = x->key;
	const char *kf = x->key_file ? x->key_file : cluster_key_path(x->root);
	int rv = idn_key_load(kf, key);
	if (rv != IDN_OK) {
		tool_key_error("idunno", kf, rv);
		return 1;
	}
	if (x->node != NULL) {
		snprintf(x->addr, sizeof(x->addr), "%s", x->node);
	} else if (cluster_pick_addr(x->root, x->addr, sizeof(x->addr)) != 0) {
		fprintf(stderr, "idunno: no live node in %s (start one with "
		    "'idunno cluster up -n N' or pass --node)\n", x->root);
		return 1;
	}
	if ((rv = idn_client_open(x->addr, key, &x->c)) != IDN_OK) {
		fprintf(stderr, "idunno: --node '%s': %s\n", x->addr,
		    rv == IDN_EINVAL ? "bad address (want IPv4:PORT)" :
		    idn_strerror(rv));
		return 1;
	}
	idn_client_set_timeout(x->c, (idn_duration) x->timeout_ms);
	return 0;
}

static int
fail(ctx *x, const char *what, int rv)
{
	fprintf(stderr, "idunno: %s: %s (node %s)\n", what,
	    rv == IDN_ETIMEDOUT ? "no answer (node down, or wrong key?)" :
	    idn_strerror(rv), x->addr);
	return 1;
}

static int
cmd_members(ctx *x, int argc, char **argv)
{
	bool json = argc == 1 && strcmp(argv[0], "--json") == 0;
	if (argc > 1 || (argc == 1 && !json)) {
		fprintf(stderr, "idunno: members [--json]\n");
		return 2;
	}
	idn_member *m;
	size_t n;
	int rv = idn_client_members(x->c, &m, &n);
	if (rv != IDN_OK) {
		return fail(x, "members", rv);
	}
	if (json) {
		printf("{\"members\": [");
	}
	for (size_t i = 0; i < n; i++) {
		if (json) {
			printf("%s{\"id\": ", i ? ", " : "");
			tool_json_str(stdout, m[i].id);
			printf(", \"addr\": ");
			tool_json_str(stdout, m[i].addr);
			printf(", \"role\": ");
			tool_json_str(stdout, m[i].role);
			printf(", \"state\": \"%s\", \"incarnation\": %llu}",
			    idn_member_state_name(m[i].state),
			    (unsigned long long) m[i].incarnation);
		} else {
			printf("%-36s %-22s %-8s %s\n", m[i].id, m[i].addr,
			    m[i].role, idn_member_state_name(m[i].state));
		}
	}
	if (json) {
		printf("]}\n");
	}
	idn_free(m);
	return 0;
}

static int
cmd_grep(ctx *x, int argc, char **argv)
{
	const char *pattern = NULL;
	bool regex = false, json = false;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--regex") == 0) {
			regex = true;
		} else if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (pattern == NULL) {
			pattern = argv[i];
		} else {
			fprintf(stderr, "idunno: grep PATTERN [--regex] "
			    "[--json]\n");
			return 2;
		}
	}
	if (pattern == NULL || strlen(pattern) >= 512) {
		fprintf(stderr, "idunno: grep needs a PATTERN (under 512 "
		    "bytes)\n");
		return 2;
	}
	idn_member *m;
	size_t n;
	int rv = idn_client_members(x->c, &m, &n);
	if (rv != IDN_OK) {
		return fail(x, "grep", rv);
	}
	int exit_code = 1; // grep's convention: 1 when nothing matched
	uint64_t total = 0;
	if (json) {
		printf("{\"nodes\": [");
	}
	int shown = 0;
	for (size_t i = 0; i < n; i++) {
		if (m[i].state == IDN_MEMBER_LEFT) {
			continue;
		}
		char **lines = NULL;
		size_t nl = 0;
		uint64_t count = 0;
		// A node known to have failed is reported, not asked.
		rv = m[i].state == IDN_MEMBER_FAILED ? IDN_EUNAVAIL :
		    idn_client_grep(x->c, m[i].addr, pattern, regex, &lines,
		        &nl, &count);
		if (json) {
			printf("%s{\"id\": ", shown++ ? ", " : "");
			tool_json_str(stdout, m[i].id);
			printf(", \"reachable\": %s, \"count\": %llu, "
			    "\"lines\": [", rv == IDN_OK ? "true" : "false",
			    (unsigned long long) count);
		}
		for (size_t j = 0; rv == IDN_OK && j < nl; j++) {
			if (json) {
				printf("%s", j ? ", " : "");
				tool_json_str(stdout, lines[j]);
			} else {
				printf("%s: %s\n", m[i].id, lines[j]);
			}
		}
		idn_free(lines);
		if (json) {
			printf("]}");
		} else if (rv == IDN_OK) {
			fprintf(stderr, "%s: %llu matches\n", m[i].id,
			    (unsigned long long) count);
		} else {
			fprintf(stderr, "%s: unreachable (%s)\n", m[i].id,
			    idn_strerror(rv));
		}
		total += count;
	}
	if (json) {
		printf("], \"total\": %llu}\n", (unsigned long long) total);
	}
	idn_free(m);
	if (total > 0) {
		exit_code = 0;
	}
	return exit_code;
}

static int
cmd_events(ctx *x, int argc, char **argv)
{
	long count = -1, timeout = -1;
	bool json = false;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			if ((count = tool_parse_long("idunno", "--count",
			         argv[++i], 1, 1000000000)) < 0) {
				return 2;
			}
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			if ((timeout = tool_parse_long("idunno", "--timeout",
			         argv[++i], 1, 86400000)) < 0) {
				return 2;
			}
		} else {
			fprintf(stderr, "idunno: events [--count N] "
			    "[--timeout MS] [--json]\n");
			return 2;
		}
	}
	idn_events *e;
	int rv = idn_events_open(x->c, &e);
	if (rv != IDN_OK) {
		return fail(x, "events", rv);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	long seen = 0;
	while (count < 0 || seen < count) {
		idn_event ev;
		// Without --timeout, wait forever, a minute at a time.
		rv = idn_events_next(e, timeout > 0 ? (idn_duration) timeout :
		    60000, &ev);
		if (rv == IDN_ETIMEDOUT && timeout < 0) {
			continue;
		}
		if (rv != IDN_OK) {
			break;
		}
		seen++;
		const char *name = idn_member_event_name(ev.event);
		if (json) {
			printf("{\"kind\": \"member\", \"event\": \"%s\", "
			    "\"id\": ", name);
			tool_json_str(stdout, ev.member.id);
			printf(", \"role\": ");
			tool_json_str(stdout, ev.member.role);
			printf("}\n");
		} else {
			printf("%-8s %s (%s)\n", name, ev.member.id,
			    ev.member.role);
		}
	}
	idn_events_close(e);
	if (rv == IDN_ETIMEDOUT) {
		return seen > 0 || count < 0 ? 0 : 1;
	}
	return rv == IDN_OK ? 0 : fail(x, "events", rv);
}

static int
pick_node(void *arg, char *addr, size_t cap)
{
	ctx *x = arg;
	if (x->node != NULL) {
		snprintf(addr, cap, "%s", x->node);
		return IDN_OK;
	}
	return cluster_pick_addr(x->root, addr, cap) == 0 ? IDN_OK :
	    IDN_EUNAVAIL;
}

static int
cmd_top(ctx *x, int argc, char **argv)
{
	top_opts o = {.pick_node = pick_node, .pick_arg = x};
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--once") == 0) {
			o.once = true;
		} else {
			fprintf(stderr, "idunno: top [--once]\n");
			return 2;
		}
	}
	memcpy(o.key, x->key, sizeof(o.key));
	return top_run(&o);
}

int
main(int argc, char **argv)
{
	ctx x = {.timeout_ms = 10000};
	char root[PATH_MAX];
	const char *env_root = getenv("IDUNNO_ROOT");
	snprintf(root, sizeof(root), "%s",
	    env_root && *env_root ? env_root : "idunno-cluster");
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *o = argv[i];
		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "idunno: unknown or incomplete option "
			    "'%s' (see --help)\n", o);
			return 2;
		}
		if (strcmp(o, "--root") == 0) {
			snprintf(root, sizeof(root), "%s", argv[++i]);
		} else if (strcmp(o, "--node") == 0) {
			x.node = argv[++i];
		} else if (strcmp(o, "--key") == 0) {
			x.key_file = argv[++i];
		} else if (strcmp(o, "--timeout") == 0) {
			if ((x.timeout_ms = tool_parse_long("idunno",
			         "--timeout", argv[++i], 1, 3600000)) < 0) {
				return 2;
			}
		} else {
			fprintf(stderr, "idunno: unknown option '%s' (see "
			    "--help)\n", o);
			return 2;
		}
	}
	x.root = root;
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[i++];
	int nargs = argc - i;
	char **args = argv + i;
	if (strcmp(cmd, "cluster") == 0) {
		return cluster_main(root, nargs, args);
	}
	if (strcmp(cmd, "model") == 0 && nargs > 0 &&
	    strcmp(args[0], "export") == 0) {
		return model_export(nargs, args); // needs no cluster
	}
	static const struct {
		const char *name;
		int (*fn)(ctx *, int, char **);
	} cmds[] = {{"members", cmd_members}, {"grep", cmd_grep},
	    {"events", cmd_events}, {"top", cmd_top}};
	static const char *const sdfs_verbs[] = {"put", "get", "delete", "ls",
	    "store", "get-versions", "ls-prefix"};
	int (*fn)(ctx *, int, char **) = NULL;
	static const char *const model_verbs[] = {"dataset", "model"};
	static const char *const sched_verbs[] = {"train", "infer", "jobs",
	    "wait", "result", "stats", "assign"};
	bool sdfs = false, model = false, sched = false;
	for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
		if (strcmp(cmd, cmds[k].name) == 0) {
			fn = cmds[k].fn;
		}
	}
	for (size_t k = 0; k < sizeof(sdfs_verbs) / sizeof(*sdfs_verbs); k++) {
		sdfs = sdfs || strcmp(cmd, sdfs_verbs[k]) == 0;
	}
	for (size_t k = 0; k < sizeof(model_verbs) / sizeof(*model_verbs);
	     k++) {
		model = model || strcmp(cmd, model_verbs[k]) == 0;
	}
	for (size_t k = 0; k < sizeof(sched_verbs) / sizeof(*sched_verbs);
	     k++) {
		sched = sched || strcmp(cmd, sched_verbs[k]) == 0;
	}
	// `train local NAME ...` trains in this process.
	bool local = strcmp(cmd, "train") == 0 && nargs > 0 &&
	    strcmp(args[0], "local") == 0;
	if (local) {
		sched = false;
		model = true;
		nargs--;
		args++;
	}
	if (fn == NULL && !sdfs && !model && !sched) {
		fprintf(stderr, "idunno: unknown command '%s' (see --help)\n",
		    cmd);
		return 2;
	}
	int rv = connect_node(&x);
	if (rv == 0) {
		rv = sdfs ? sdfs_cmd_main(x.c, cmd, nargs, args) :
		    model ? model_cmd_main(x.c, cmd, nargs, args) :
		    sched ? sched_cmd_main(x.c, cmd, nargs, args) :
		    fn(&x, nargs, args);
	}
	idn_client_close(x.c);
	return rv;
}
