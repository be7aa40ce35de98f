// SPDX-License-Identifier: MIT
// client.c: idunno, the command line client: its options, finding and
// running a command (the modules' tables), and the membership, log grep,
// events and top commands.
#include <limits.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/client.h>
#include <idunno/membership.h>

#include "cli.h"
#include "cluster.h"
#include "top.h"

#define ABOUT_COL 25 // where --help's descriptions of commands start

struct cli {
	const char *root;
	const char *node;
	const char *key_file;
	long timeout_ms;
	char addr[64];
	uint8_t key[IDN_KEY_BYTES];
	idn_client *c;
	const cli_cmd *cmd;  // the running command
	char prog[64];       // "idunno " and its name, for messages
	bool listing;        // --commands: list its options, run nothing
};

// Prints about's lines (split by '\n') from column indent, the first one
// after the col columns already on its line, or below them.
static void
print_about(FILE *f, const char *about, int col, int indent)
{
	for (const char *p = about; *p != '\0'; col = 0) {
		size_t n = strcspn(p, "\n");
		if (col >= indent - 1) {
			fputc('\n', f);
			col = 0;
		}
		fprintf(f, "%*s%.*s\n", indent - col, "", (int) n, p);
		p += n + (p[n] == '\n');
	}
}

// Prints "  NAME ARGS" and, from column ABOUT_COL, what it does.
static void
print_cmd(FILE *f, const cli_cmd *c)
{
	int col = fprintf(f, "  %s%s%s", c->name, *c->args ? " " : "",
	    c->args);
	const char *nl = strrchr(c->args, '\n');
	print_about(f, c->about, nl != NULL ? (int) strlen(nl + 1) : col,
	    ABOUT_COL);
}

int
cli_parse(cli *x, const tool_opt *opts, int argc, char **argv, int *first)
{
	if (x->listing) {
		if (opts[0].name != NULL) {
			putchar(' ');
			tool_list(stdout, opts);
		}
		return 0;
	}
	const cli_cmd *c = x->cmd;
	tool_cmd t = {x->prog, c->min_args, c->max_args, c->in_order};
	int rv = tool_parse(&t, opts, argc, argv, first);
	if (rv == TOOL_HELP) {
		printf("usage: %s%s%s\n", x->prog, *c->args ? " " : "",
		    c->args);
		print_about(stdout, c->about, 0, 2);
		return 0;
	}
	return rv;
}

int
cli_connect(cli *x, const tool_opt *opts, int argc, char **argv, int *first,
    idn_client **c)
{
	int rv = cli_parse(x, opts, argc, argv, first);
	if (rv == TOOL_RUN && (*c = cli_client(x)) == NULL) {
		rv = TOOL_FAILED;
	}
	return rv;
}

const char *
cli_root(const cli *x)
{
	return x->root;
}

idn_client *
cli_client(cli *x)
{
	if (x->c != NULL) {
		return x->c;
	}
	const char *kf = x->key_file ? x->key_file : cluster_key_path(x->root);
	int rv = idn_key_load(kf, x->key);
	if (rv != IDN_OK) {
		tool_key_error("idunno", kf, rv);
		return NULL;
	}
	if (x->node != NULL) {
		snprintf(x->addr, sizeof(x->addr), "%s", x->node);
	} else if (cluster_pick_addr(x->root, x->addr, sizeof(x->addr)) != 0) {
		fprintf(stderr, "idunno: no live node in %s (start one with "
		    "'idunno cluster up -n N' or pass --node)\n", x->root);
		return NULL;
	}
	if ((rv = idn_client_open(x->addr, x->key, &x->c)) != IDN_OK) {
		fprintf(stderr, "idunno: --node '%s': %s\n", x->addr,
		    rv == IDN_EINVAL ? "bad address (want IPv4:PORT)" :
		    idn_strerror(rv));
		return NULL;
	}
	idn_client_set_timeout(x->c, (idn_duration) x->timeout_ms);
	return x->c;
}

static int
fail(cli *x, const char *what, int rv)
{
	fprintf(stderr, "idunno: %s: %s (node %s)\n", what,
	    rv == IDN_ETIMEDOUT ? "no answer (node down, or wrong key?)" :
	    idn_strerror(rv), x->addr);
	return TOOL_FAILED;
}

static int
cmd_members(cli *x, int argc, char **argv)
{
	bool json = false;
	const tool_opt opts[] = {TOOL_OPT_FLAG("json", &json), {0}};
	idn_client *c;
	int first, rv = cli_connect(x, opts, argc, argv, &first, &c);
	if (rv != TOOL_RUN) {
		return rv;
	}
	idn_member *m;
	size_t n;
	if ((rv = idn_client_members(c, &m, &n)) != IDN_OK) {
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
cmd_grep(cli *x, int argc, char **argv)
{
	bool regex = false, json = false;
	const tool_opt opts[] = {TOOL_OPT_FLAG("regex", &regex),
	    TOOL_OPT_FLAG("json", &json), {0}};
	int first, rv = cli_parse(x, opts, argc, argv, &first);
	if (rv != TOOL_RUN) {
		return rv;
	}
	const char *pattern = argv[first];
	if (strlen(pattern) >= 512) {
		fprintf(stderr, "%s: PATTERN must be under 512 bytes\n",
		    x->prog);
		return TOOL_USAGE;
	}
	// A bad expression is a usage error (2, as grep(1)), not "no match".
	if (regex) {
		regex_t re;
		int e = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
		if (e != 0) {
			char why[128];
			regerror(e, &re, why, sizeof(why));
			fprintf(stderr, "%s: bad regular expression '%s': %s\n",
			    x->prog, pattern, why);
			return TOOL_USAGE;
		}
		regfree(&re);
	}
	idn_client *c = cli_client(x);
	if (c == NULL) {
		return TOOL_FAILED;
	}
	idn_member *m;
	size_t n;
	if ((rv = idn_client_members(c, &m, &n)) != IDN_OK) {
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
		    idn_client_grep(c, m[i].addr, pattern, regex, &lines,
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
cmd_events(cli *x, int argc, char **argv)
{
	long count = -1, timeout = -1;
	bool json = false;
	const tool_opt opts[] = {
	    TOOL_OPT_LONG("count", &count, 1, 1000000000),
	    TOOL_OPT_LONG("timeout", &timeout, 1, 86400000),
	    TOOL_OPT_FLAG("json", &json),
	    {0},
	};
	idn_client *c;
	int first, rv = cli_connect(x, opts, argc, argv, &first, &c);
	if (rv != TOOL_RUN) {
		return rv;
	}
	idn_events *e;
	if ((rv = idn_events_open(c, &e)) != IDN_OK) {
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
	cli *x = arg;
	if (x->node != NULL) {
		snprintf(addr, cap, "%s", x->node);
		return IDN_OK;
	}
	return cluster_pick_addr(x->root, addr, cap) == 0 ? IDN_OK :
	    IDN_EUNAVAIL;
}

static int
cmd_top(cli *x, int argc, char **argv)
{
	top_opts o = {.pick_node = pick_node, .pick_arg = x};
	const tool_opt opts[] = {TOOL_OPT_FLAG("once", &o.once), {0}};
	int first, rv = cli_parse(x, opts, argc, argv, &first);
	if (rv != TOOL_RUN) {
		return rv;
	}
	if (cli_client(x) == NULL) {
		return TOOL_FAILED;
	}
	memcpy(o.key, x->key, sizeof(o.key));
	return top_run(&o);
}

static const cli_cmd client_cmds[] = {
	{"members", "[--json]", "the membership as the node sees it", 0, 0,
	    false, cmd_members},
	{"grep", "PATTERN [--regex] [--json]", "grep every live node's log; "
	    "lines are prefixed\nby node id, with per-node counts; exit 1: "
	    "no match, 2: a bad PATTERN", 1, 1,
	    false, cmd_grep},
	{"events", "[--count N] [--timeout MS] [--json]", "stream the node's "
	    "membership events", 0, 0, false, cmd_events},
	{"top", "[--once]", "live view of jobs, nodes and events from the\n"
	    "coordinator's stream; q quits (--once: one\nsnapshot, printed)",
	    0, 0, false, cmd_top},
	{NULL, NULL, NULL, 0, 0, false, NULL},
};

// The sections of --help, in order.
static const struct {
	const char *title;
	const cli_cmd *cmds;
} sections[] = {
	{"Commands:\n", cluster_cmds},
	{"", client_cmds},
	{"SDFS (the replicated file system):\n", sdfs_cmds},
	{"Models and data:\n", model_cmds},
	{"Jobs (training and inference on the cluster):\n", sched_cmds},
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: idunno [--root DIR] [--node HOST:PORT] [--key FILE]\n"
	    "              [--timeout MS] COMMAND [ARGS]\n"
	    "       idunno --commands\n"
	    "Talks to an IDunno cluster. ROOT (default $IDUNNO_ROOT, else\n"
	    "./idunno-cluster) holds a local cluster and its key; --node "
	    "picks\nthe node to ask (default: a live node of the local "
	    "cluster).\n--commands lists every command and its options, "
	    "one a line.\nEvery command takes --help. Exit codes: 0 done, 1 "
	    "failed, 2 a usage error.\n\n");
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		fputs(sections[i].title, f);
		for (const cli_cmd *c = sections[i].cmds; c->name; c++) {
			print_cmd(f, c);
		}
	}
}

// The command named by w0 (and w1, for a group such as "train add");
// *group is set when w0 names a group.
static const cli_cmd *
find_cmd(const char *w0, const char *w1, bool *group)
{
	*group = false;
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		for (const cli_cmd *c = sections[i].cmds; c->name; c++) {
			size_t n = strcspn(c->name, " ");
			if (strncmp(c->name, w0, n) != 0 || w0[n] != '\0') {
				continue;
			}
			if (c->name[n] == '\0') {
				return c;
			}
			*group = true;
			if (w1 != NULL && strcmp(c->name + n + 1, w1) == 0) {
				return c;
			}
		}
	}
	return NULL;
}

// `idunno GROUP` with no known command after it: its commands' usage.
static int
group_usage(const char *group, const char *w1)
{
	bool help = w1 != NULL && (strcmp(w1, "--help") == 0 ||
	    strcmp(w1, "-h") == 0);
	if (w1 != NULL && !help) {
		fprintf(stderr, "idunno: unknown command '%s %s' (see idunno "
		    "%s --help)\n", group, w1, group);
		return TOOL_USAGE;
	}
	FILE *f = help ? stdout : stderr;
	fprintf(f, "usage: idunno %s COMMAND [ARGS]\n", group);
	size_t n = strlen(group);
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		for (const cli_cmd *c = sections[i].cmds; c->name; c++) {
			if (strncmp(c->name, group, n) == 0 &&
			    c->name[n] == ' ') {
				print_cmd(f, c);
			}
		}
	}
	return help ? 0 : TOOL_USAGE;
}

// Every command and its options, one a line.
static int
list_commands(cli *x)
{
	x->listing = true;
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		for (const cli_cmd *c = sections[i].cmds; c->name; c++) {
			const char *sp = strchr(c->name, ' ');
			char word[32];
			snprintf(word, sizeof(word), "%s", sp ? sp + 1 :
			    c->name);
			char *av[] = {word, NULL};
			x->cmd = c;
			printf("%s", c->name);
			c->run(x, 1, av);
			printf("\n");
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	cli x = {.timeout_ms = 10000};
	const char *root_opt = NULL;
	bool list = false;
	const tool_opt opts[] = {
	    TOOL_OPT_STR("root", &root_opt),
	    TOOL_OPT_STR("node", &x.node),
	    TOOL_OPT_STR("key", &x.key_file),
	    TOOL_OPT_LONG("timeout", &x.timeout_ms, 1, 3600000),
	    TOOL_OPT_FLAG("commands", &list),
	    {0},
	};
	// Options before the command are idunno's; those after, its own.
	tool_cmd t = {"idunno", 0, -1, true};
	int first, rv = tool_parse(&t, opts, argc, argv, &first);
	if (rv == TOOL_HELP) {
		usage(stdout);
		return 0;
	}
	if (rv != TOOL_RUN) {
		return rv;
	}
	char root[PATH_MAX];
	const char *env_root = getenv("IDUNNO_ROOT");
	snprintf(root, sizeof(root), "%s", root_opt ? root_opt :
	    env_root && *env_root ? env_root : "idunno-cluster");
	x.root = root;
	if (list) {
		return list_commands(&x);
	}
	if (first == argc) {
		usage(stderr);
		return TOOL_USAGE;
	}
	const char *w0 = argv[first], *w1 = first + 1 < argc ?
	    argv[first + 1] : NULL;
	bool group;
	const cli_cmd *c = find_cmd(w0, w1, &group);
	if (c == NULL) {
		if (group) {
			return group_usage(w0, w1);
		}
		fprintf(stderr, "idunno: unknown command '%s' (see idunno "
		    "--help)\n", w0);
		return TOOL_USAGE;
	}
	x.cmd = c;
	snprintf(x.prog, sizeof(x.prog), "idunno %s", c->name);
	first += strchr(c->name, ' ') != NULL;
	rv = c->run(&x, argc - first, argv + first);
	idn_client_close(x.c);
	return rv;
}
