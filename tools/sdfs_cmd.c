// SPDX-License-Identifier: MIT
// sdfs_cmd.c: the SDFS verbs of the idunno client: put, get, delete, ls,
// store, get-versions, ls-prefix. One-line errors on stderr; exit code 0
// on success, 1 when the operation failed, 2 on a usage error.
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <idunno/idunno.h>
#include <idunno/sdfs.h>

#include "cli.h"
#include "progress.h"

// Flags of every verb; --version is get's.
typedef struct {
	bool json;
	bool quiet; // no progress line
	long version;
} args;

// Parses the verb's options (--json; put and get: --quiet; get:
// --version) and, unless c is NULL, connects. Returns TOOL_RUN (*c set),
// else the exit code.
static int
parse(cli *x, int argc, char **argv, args *a, int *first, idn_client **c)
{
	bool put = strcmp(argv[0], "put") == 0;
	bool get = strcmp(argv[0], "get") == 0;
	tool_opt opts[] = {TOOL_OPT_FLAG("json", &a->json), {0}, {0}, {0}};
	if (put || get) {
		opts[1] = (tool_opt) TOOL_OPT_FLAG("quiet", &a->quiet);
	}
	if (get) {
		opts[2] = (tool_opt) TOOL_OPT_LONG("version", &a->version, 1,
		    LONG_MAX);
	}
	memset(a, 0, sizeof(*a));
	return c != NULL ? cli_connect(x, opts, argc, argv, first, c) :
	    cli_parse(x, opts, argc, argv, first);
}

static int
bad_name(const char *verb, const char *name)
{
	const char *why = idn_sdfs_name_error(name);
	if (why == NULL) {
		return 0;
	}
	fprintf(stderr, "idunno %s: invalid SDFS name '%s': %s\n", verb,
	    name, why);
	return 1;
}

static int
op_error(const char *verb, const char *name, int rv)
{
	const char *what;
	switch (rv) {
	case IDN_ENOENT:
		what = "no such file (or version) in SDFS";
		break;
	case IDN_EUNAVAIL:
		what = "not enough replicas reachable; try again";
		break;
	case IDN_ECORRUPT:
		what = "every copy read was corrupt";
		break;
	case IDN_ETIMEDOUT:
		what = "no answer from the node (down, or wrong key?)";
		break;
	default:
		what = idn_strerror(rv);
	}
	fprintf(stderr, "idunno %s: '%s': %s\n", verb, name, what);
	return 1;
}

// Refuses a local destination that cannot be written, before any bytes
// move, with the system's reason.
// "-" means standard output; reports then go to stderr, not into the data.
static const char *
dest_path(const char *local, FILE **report)
{
	bool out = strcmp(local, "-") == 0 || strcmp(local, "/dev/stdout") == 0;
	*report = out ? stderr : stdout;
	return out ? "/dev/stdout" : local;
}

static int
check_dest(const char *verb, const char *path)
{
	struct stat sb;
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "idunno %s: cannot write '%s': is a "
		    "directory\n", verb, path);
		return 1;
	}
	if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
		// A device or pipe is written in place: it must be writable.
		if (access(path, W_OK) == 0) {
			return 0;
		}
		fprintf(stderr, "idunno %s: cannot write '%s': %s\n", verb,
		    path, strerror(errno));
		return 1;
	}
	char *copy = strdup(path);
	if (copy == NULL) {
		return 1;
	}
	const char *dir = dirname(copy);
	int rv = 0;
	errno = 0;
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) ||
	    access(dir, W_OK) != 0) {
		fprintf(stderr, "idunno %s: cannot write '%s': %s\n", verb,
		    path, errno ? strerror(errno) : "not a directory");
		rv = 1;
	}
	free(copy);
	return rv;
}

static void
print_time(FILE *f, uint64_t ms)
{
	time_t t = (time_t) (ms / 1000);
	struct tm tm;
	char buf[32];
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fputs(buf, f);
}

static int
cmd_put(cli *x, int argc, char **argv)
{
	args a;
	idn_client *c;
	int i, rv = parse(x, argc, argv, &a, &i, &c);
	if (rv != TOOL_RUN) {
		return rv;
	}
	const char *local = argv[i], *name = argv[i + 1];
	if (bad_name("put", name)) {
		return 1;
	}
	struct stat sb;
	errno = 0;
	if (stat(local, &sb) != 0 || access(local, R_OK) != 0) {
		fprintf(stderr, "idunno put: cannot read '%s': %s\n", local,
		    strerror(errno));
		return 1;
	}
	if (S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "idunno put: cannot read '%s': is a "
		    "directory\n", local);
		return 1;
	}
	uint64_t ver = 0;
	progress pr;
	progress_start(&pr, "bytes", a.quiet || a.json);
	if (pr.on) {
		idn_client_set_progress(c, progress_report, &pr);
	}
	rv = idn_sdfs_put_file(c, local, name, &ver);
	progress_end(&pr);
	if (rv != IDN_OK) {
		return op_error("put", name, rv);
	}
	if (a.json) {
		printf("{\"name\":");
		tool_json_str(stdout, name);
		printf(",\"version\":%" PRIu64 ",\"size\":%lld}\n", ver,
		    (long long) sb.st_size);
	} else {
		printf("put %s version %" PRIu64 " (%lld bytes)\n", name, ver,
		    (long long) sb.st_size);
	}
	return 0;
}

static int
cmd_get(cli *x, int argc, char **argv)
{
	args a;
	idn_client *c;
	int i, rv = parse(x, argc, argv, &a, &i, &c);
	if (rv != TOOL_RUN) {
		return rv;
	}
	FILE *report;
	const char *name = argv[i], *local = dest_path(argv[i + 1], &report);
	uint64_t want = (uint64_t) a.version; // 0: the newest
	if (bad_name("get", name) || check_dest("get", local)) {
		return 1;
	}
	uint64_t got = 0;
	progress pr;
	// Not while the file itself goes to stdout on the terminal.
	progress_start(&pr, "bytes", a.quiet || a.json || report == stderr);
	if (pr.on) {
		idn_client_set_progress(c, progress_report, &pr);
	}
	rv = idn_sdfs_get_file(c, name, want, local, &got);
	progress_end(&pr);
	if (rv != IDN_OK) {
		if (rv == IDN_EPERM) {
			fprintf(stderr, "idunno get: cannot write '%s': "
			    "permission denied\n", local);
			return 1;
		}
		return op_error("get", name, rv);
	}
	struct stat sb;
	long long size = stat(local, &sb) == 0 ? (long long) sb.st_size : -1;
	if (a.json) {
		fprintf(report, "{\"name\":");
		tool_json_str(report, name);
		fprintf(report, ",\"version\":%" PRIu64 ",\"size\":%lld,"
		    "\"local\":", got, size);
		tool_json_str(report, local);
		fprintf(report, "}\n");
	} else {
		fprintf(report, "got %s version %" PRIu64 " (%lld bytes) into "
		    "%s\n", name, got, size, local);
	}
	return 0;
}

static int
cmd_delete(cli *x, int argc, char **argv)
{
	args a;
	idn_client *c;
	int i, rv = parse(x, argc, argv, &a, &i, &c);
	if (rv != TOOL_RUN) {
		return rv;
	}
	if (bad_name("delete", argv[i])) {
		return 1;
	}
	if ((rv = idn_sdfs_delete(c, argv[i])) != IDN_OK) {
		return op_error("delete", argv[i], rv);
	}
	if (a.json) {
		printf("{\"name\":");
		tool_json_str(stdout, argv[i]);
		printf(",\"deleted\":true}\n");
	} else {
		printf("deleted %s\n", argv[i]);
	}
	return 0;
}

static int
cmd_ls(cli *x, int argc, char **argv)
{
	args a;
	idn_client *c;
	int i, rv = parse(x, argc, argv, &a, &i, &c);
	if (rv != TOOL_RUN) {
		return rv;
	}
	if (bad_name("ls", argv[i])) {
		return 1;
	}
	idn_sdfs_info *in;
	if ((rv = idn_sdfs_ls(c, argv[i], &in)) != IDN_OK) {
		return op_error("ls", argv[i], rv);
	}
	char hex[2 * IDN_SDFS_SUM_BYTES + 1];
	if (a.json) {
		printf("{\"name\":");
		tool_json_str(stdout, in->name);
		printf(",\"newest\":%" PRIu64 ",\"replicas_wanted\":%d,"
		       "\"replicas_have\":%d,\"under_replicated\":%s,"
		       "\"holders\":[", in->newest, in->replicas_wanted,
		    in->replicas_have, in->under_replicated ? "true" : "false");
		for (size_t i = 0; i < in->nholders; i++) {
			printf("%s{\"id\":", i ? "," : "");
			tool_json_str(stdout, in->holders[i].id);
			printf(",\"addr\":");
			tool_json_str(stdout, in->holders[i].addr);
			printf(",\"newest\":%" PRIu64 ",\"replica\":%s}",
			    in->holders[i].newest,
			    in->holders[i].replica ? "true" : "false");
		}
		printf("],\"versions\":[");
		for (size_t i = 0; i < in->nversions; i++) {
			idn_sdfs_sum_hex(in->versions[i].sum, hex);
			printf("%s{\"version\":%" PRIu64 ",\"size\":%" PRIu64
			       ",\"mtime_ms\":%" PRIu64 ",\"sum\":\"%s\"}",
			    i ? "," : "", in->versions[i].version,
			    in->versions[i].size_bytes,
			    in->versions[i].mtime_ms, hex);
		}
		printf("]}\n");
		idn_free(in);
		return 0;
	}
	printf("%s: newest version %" PRIu64 ", %d of %d replicas%s\n",
	    in->name, in->newest, in->replicas_have, in->replicas_wanted,
	    in->under_replicated ? " (UNDER-REPLICATED)" : "");
	printf("holders:\n");
	for (size_t i = 0; i < in->nholders; i++) {
		printf("  %-21s newest %-6" PRIu64 " %s  %s\n",
		    in->holders[i].addr, in->holders[i].newest,
		    in->holders[i].replica ? "replica" : "leaving",
		    in->holders[i].id);
	}
	printf("versions (newest first):\n");
	for (size_t i = 0; i < in->nversions; i++) {
		idn_sdfs_sum_hex(in->versions[i].sum, hex);
		printf("  %-6" PRIu64 " %12" PRIu64 " bytes  ",
		    in->versions[i].version, in->versions[i].size_bytes);
		print_time(stdout, in->versions[i].mtime_ms);
		printf("  blake2b %.16s\n", hex);
	}
	idn_free(in);
	return 0;
}

static void
print_entries(const idn_sdfs_entry *e, size_t n, bool json,
    const char *prefix, char (*miss)[IDN_ADDR_MAX], size_t nmiss)
{
	if (json) {
		printf("{");
		if (prefix != NULL) {
			printf("\"prefix\":");
			tool_json_str(stdout, prefix);
			printf(",\"unreachable\":[");
			for (size_t i = 0; i < nmiss; i++) {
				printf("%s", i ? "," : "");
				tool_json_str(stdout, miss[i]);
			}
			printf("],");
		}
		printf("\"files\":[");
		for (size_t i = 0; i < n; i++) {
			printf("%s{\"name\":", i ? "," : "");
			tool_json_str(stdout, e[i].name);
			printf(",\"newest\":%" PRIu64 ",\"size\":%" PRIu64
			       ",\"versions\":%u,\"deleted\":%s}",
			    e[i].newest, e[i].size_bytes, e[i].nversions,
			    e[i].deleted ? "true" : "false");
		}
		printf("]}\n");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (e[i].deleted) {
			printf("%s  (deleted at version %" PRIu64 ")\n",
			    e[i].name, e[i].newest);
		} else {
			printf("%s  version %" PRIu64 "  %" PRIu64 " bytes  "
			       "%u version%s\n", e[i].name, e[i].newest,
			    e[i].size_bytes, e[i].nversions,
			    e[i].nversions == 1 ? "" : "s");
		}
	}
	printf("%zu file%s\n", n, n == 1 ? "" : "s");
}

static int
cmd_store(cli *x, int argc, char **argv)
{
	args a;
	idn_client *c;
	int i, rv = parse(x, argc, argv, &a, &i, &c);
	if (rv != TOOL_RUN) {
		return rv;
	}
	idn_sdfs_entry *e;
	size_t n;
	if ((rv = idn_sdfs_store(c, &e, &n)) != IDN_OK) {
		fprintf(stderr, "idunno store: %s\n", idn_strerror(rv));
		return 1;
	}
	print_entries(e, n, a.json, NULL, NULL, 0);
	idn_free(e);
	return 0;
}

static int
cmd_ls_prefix(cli *x, int argc, char **argv)
{
	args a;
	idn_client *c;
	int i, rv = parse(x, argc, argv, &a, &i, &c);
	if (rv != TOOL_RUN) {
		return rv;
	}
	const char *prefix = i < argc ? argv[i] : "";
	idn_sdfs_entry *e;
	size_t n, nmiss;
	char miss[IDN_SDFS_MISSING_MAX][IDN_ADDR_MAX];
	if ((rv = idn_sdfs_ls_prefix_report(c, prefix, &e, &n, miss,
	         &nmiss)) != IDN_OK) {
		fprintf(stderr, "idunno ls-prefix: %s\n", idn_strerror(rv));
		return 1;
	}
	// Like grep: a node that did not answer is named, never skipped
	// silently (its files may be missing from the list).
	for (size_t i = 0; i < nmiss; i++) {
		fprintf(stderr, "idunno ls-prefix: node %s did not answer; its "
		    "files may be missing\n", miss[i]);
	}
	print_entries(e, n, a.json, prefix, miss, nmiss);
	idn_free(e);
	return 0;
}

static int
cmd_get_versions(cli *x, int argc, char **argv)
{
	args a;
	int i, rv = parse(x, argc, argv, &a, &i, NULL);
	if (rv != TOOL_RUN) {
		return rv;
	}
	FILE *report;
	const char *name = argv[i], *local = dest_path(argv[i + 2], &report);
	char *end;
	long n = strtol(argv[i + 1], &end, 10);
	if (*end != '\0' || n < 1 || n > 1000) {
		fprintf(stderr, "idunno get-versions: N must be 1..1000\n");
		return TOOL_USAGE;
	}
	idn_client *c = cli_client(x);
	if (c == NULL) {
		return TOOL_FAILED;
	}
	if (bad_name("get-versions", name) ||
	    check_dest("get-versions", local)) {
		return 1;
	}
	idn_sdfs_version *v = NULL;
	size_t nv = 0, count = 0;
	if ((rv = idn_sdfs_versions(c, name, (size_t) n, &v, &nv)) ==
	    IDN_OK) {
		rv = idn_sdfs_get_versions(c, name, (size_t) n, local, &count);
	}
	if (rv != IDN_OK) {
		idn_free(v);
		return op_error("get-versions", name, rv);
	}
	if (a.json) {
		fprintf(report, "{\"name\":");
		tool_json_str(report, name);
		fprintf(report, ",\"local\":");
		tool_json_str(report, local);
		fprintf(report, ",\"versions\":[");
		for (size_t i = 0; i < nv && i < count; i++) {
			fprintf(report, "%s{\"version\":%" PRIu64 ",\"size\":%"
			    PRIu64 "}", i ? "," : "", v[i].version,
			    v[i].size_bytes);
		}
		fprintf(report, "]}\n");
	} else {
		fprintf(report, "wrote %zu version%s of %s into %s:", count,
		    count == 1 ? "" : "s", name, local);
		for (size_t i = 0; i < nv && i < count; i++) {
			fprintf(report, " %" PRIu64, v[i].version);
		}
		fprintf(report, "\n");
	}
	idn_free(v);
	return 0;
}

const cli_cmd sdfs_cmds[] = {
	{"put", "LOCAL NAME [--json] [--quiet]", "store a local file as a new "
	    "version of NAME", 2, 2, false, cmd_put},
	{"get", "NAME LOCAL [--version V] [--json] [--quiet]", "fetch the "
	    "newest (or version V) into LOCAL (- is stdout)", 2, 2, false,
	    cmd_get},
	{"delete", "NAME [--json]", "delete NAME (all its versions)", 1, 1,
	    false, cmd_delete},
	{"ls", "NAME [--json]", "which nodes hold NAME, its versions, "
	    "replication", 1, 1, false, cmd_ls},
	{"store", "[--json]", "what the asked node holds", 0, 0, false,
	    cmd_store},
	{"get-versions", "NAME N LOCAL [--json]", "the N newest versions, "
	    "newest first, in one file,\neach after the line\n\"=== "
	    "idunno-sdfs NAME version V size S ===\"", 3, 3, false,
	    cmd_get_versions},
	{"ls-prefix", "[PREFIX] [--json]", "the cluster's files whose names "
	    "start with PREFIX", 0, 1, false, cmd_ls_prefix},
	{NULL, NULL, NULL, 0, 0, false, NULL},
};
