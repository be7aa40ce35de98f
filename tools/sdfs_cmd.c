// SPDX-License-Identifier: MIT
// sdfs_cmd.c: the SDFS verbs of the idunno client: put, get, delete, ls,
// store, get-versions, ls-prefix. One-line errors on stderr; exit code 0
// on success, 1 when the operation failed, 2 on a usage error.
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <idunno/idunno.h>
#include <idunno/sdfs.h>

#include "progress.h"
#include "tool.h"

int sdfs_cmd_main(idn_client *c, const char *verb, int argc, char **argv);
const char *sdfs_cmd_usage(void);

const char *
sdfs_cmd_usage(void)
{
	return "  put LOCAL NAME [--json] [--quiet]\n"
	       "                         store a local file as a new version "
	       "of NAME\n"
	       "  get NAME LOCAL [--version V] [--json] [--quiet]\n"
	       "                         fetch the newest (or version V) "
	       "into LOCAL (- is stdout)\n"
	       "  delete NAME [--json]   delete NAME (all its versions)\n"
	       "  ls NAME [--json]       which nodes hold NAME, its "
	       "versions, replication\n"
	       "  store [--json]         what the asked node holds\n"
	       "  get-versions NAME N LOCAL [--json]\n"
	       "                         the N newest versions, newest "
	       "first, in one file,\n"
	       "                         each after the line\n"
	       "                         \"=== idunno-sdfs NAME version V "
	       "size S ===\"\n"
	       "  ls-prefix [PREFIX] [--json]\n"
	       "                         the cluster's files whose names "
	       "start with PREFIX\n";
}

typedef struct {
	const char *verb;
	bool json;
	bool quiet; // no progress line
	const char *pos[4];
	int npos;
	const char *version;
} args;

static int
usage_error(const char *verb, const char *msg)
{
	fprintf(stderr, "idunno %s: %s (see idunno --help)\n", verb, msg);
	return 2;
}

static int
parse(const char *verb, int argc, char **argv, args *a, int want_min,
    int want_max)
{
	memset(a, 0, sizeof(*a));
	a->verb = verb;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			a->json = true;
		} else if (strcmp(argv[i], "--quiet") == 0) {
			a->quiet = true;
		} else if (strcmp(argv[i], "--version") == 0 &&
		    strcmp(verb, "get") == 0 && i + 1 < argc) {
			a->version = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1] == '-' &&
		    strcmp(argv[i], "--") != 0) {
			fprintf(stderr, "idunno %s: unknown option '%s'\n",
			    verb, argv[i]);
			return 2;
		} else if (a->npos == 4) {
			return usage_error(verb, "too many arguments");
		} else {
			a->pos[a->npos++] = argv[i];
		}
	}
	if (a->npos < want_min || a->npos > want_max) {
		return usage_error(verb, a->npos < want_min ?
		    "missing arguments" : "too many arguments");
	}
	return 0;
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
cmd_put(idn_client *c, int argc, char **argv)
{
	args a;
	int rv = parse("put", argc, argv, &a, 2, 2);
	if (rv != 0) {
		return rv;
	}
	const char *local = a.pos[0], *name = a.pos[1];
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
cmd_get(idn_client *c, int argc, char **argv)
{
	args a;
	int rv = parse("get", argc, argv, &a, 2, 2);
	if (rv != 0) {
		return rv;
	}
	FILE *report;
	const char *name = a.pos[0], *local = dest_path(a.pos[1], &report);
	uint64_t want = 0;
	if (a.version != NULL) {
		char *end;
		want = strtoull(a.version, &end, 10);
		if (*end != '\0' || want == 0) {
			return usage_error("get", "--version wants a version "
			    "number >= 1");
		}
	}
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
cmd_delete(idn_client *c, int argc, char **argv)
{
	args a;
	int rv = parse("delete", argc, argv, &a, 1, 1);
	if (rv != 0) {
		return rv;
	}
	if (bad_name("delete", a.pos[0])) {
		return 1;
	}
	if ((rv = idn_sdfs_delete(c, a.pos[0])) != IDN_OK) {
		return op_error("delete", a.pos[0], rv);
	}
	if (a.json) {
		printf("{\"name\":");
		tool_json_str(stdout, a.pos[0]);
		printf(",\"deleted\":true}\n");
	} else {
		printf("deleted %s\n", a.pos[0]);
	}
	return 0;
}

static int
cmd_ls(idn_client *c, int argc, char **argv)
{
	args a;
	int rv = parse("ls", argc, argv, &a, 1, 1);
	if (rv != 0) {
		return rv;
	}
	if (bad_name("ls", a.pos[0])) {
		return 1;
	}
	idn_sdfs_info *in;
	if ((rv = idn_sdfs_ls(c, a.pos[0], &in)) != IDN_OK) {
		return op_error("ls", a.pos[0], rv);
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
cmd_store(idn_client *c, int argc, char **argv)
{
	args a;
	int rv = parse("store", argc, argv, &a, 0, 0);
	if (rv != 0) {
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
cmd_ls_prefix(idn_client *c, int argc, char **argv)
{
	args a;
	int rv = parse("ls-prefix", argc, argv, &a, 0, 1);
	if (rv != 0) {
		return rv;
	}
	const char *prefix = a.npos ? a.pos[0] : "";
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
cmd_get_versions(idn_client *c, int argc, char **argv)
{
	args a;
	int rv = parse("get-versions", argc, argv, &a, 3, 3);
	if (rv != 0) {
		return rv;
	}
	FILE *report;
	const char *name = a.pos[0], *local = dest_path(a.pos[2], &report);
	char *end;
	long n = strtol(a.pos[1], &end, 10);
	if (*end != '\0' || n < 1 || n > 1000) {
		return usage_error("get-versions", "N must be 1..1000");
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

int
sdfs_cmd_main(idn_client *c, const char *verb, int argc, char **argv)
{
	static const struct {
		const char *verb;
		int (*fn)(idn_client *, int, char **);
	} cmds[] = {
		{"put", cmd_put},
		{"get", cmd_get},
		{"delete", cmd_delete},
		{"ls", cmd_ls},
		{"store", cmd_store},
		{"get-versions", cmd_get_versions},
		{"ls-prefix", cmd_ls_prefix},
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(verb, cmds[i].verb) == 0) {
			return cmds[i].fn(c, argc, argv);
		}
	}
	fprintf(stderr, "idunno: unknown SDFS command '%s'\n", verb);
	return 2;
}
