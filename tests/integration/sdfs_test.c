// SPDX-License-Identifier: MIT
// sdfs_test.c: SDFS on a 10-node local cluster of real processes: round
// trips up to 200 MB, versions, concurrent writers, bad input, a corrupt
// replica, the coordinator down, a replica killed during a write, three
// replica holders killed at once, and fewer live nodes than replicas.
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <idunno/sdfs.h>

#include "cluster.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define NODES 10

static th_cluster cl;
static const char *tmp;
static const char *names[NODES] = {"coord", "standby", "worker1",
    "worker2", "worker3", "worker4", "worker5", "worker6", "worker7",
    "worker8"};
static bool dead[NODES];

static int
setup(void **st)
{
	tmp = th_tmpdir();
	// A scrub pass within 20 s (not 10 min) however the 200 MB round
	// trip's copies are placed; nodes inherit the environment.
	setenv("IDUNNO_SDFS_SCRUB_PASS_MS", "20000", 1);
	IDN_PASS(th_cluster_up(&cl, NODES));
	return 0;
}

static int
teardown(void **st)
{
	th_cluster_down(&cl);
	return 0;
}

// Writes size pseudo-random bytes (seeded) to path, 1 MiB at a time.
static void
make_file(const char *path, uint64_t size, uint32_t seed)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	uint32_t x = seed * 2654435761u + 1;
	static uint32_t buf[1 << 18];
	while (size > 0) {
		size_t n = size < sizeof(buf) ? (size_t) size : sizeof(buf);
		for (size_t i = 0; i < (n + 3) / 4; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			buf[i] = x;
		}
		assert_int_equal(fwrite(buf, 1, n, f), n);
		size -= n;
	}
	assert_int_equal(fclose(f), 0);
}

static bool
same_file(const char *a, const char *b)
{
	return th_sh(NULL, "cmp -s '%s' '%s'", a, b) == 0;
}

static char *
path_of(const char *leaf)
{
	static char p[8][PATH_MAX];
	static int next;
	char *s = p[next++ % 8];
	snprintf(s, PATH_MAX, "%s/%s", tmp, leaf);
	return s;
}

static int
alive_index(int skip)
{
	for (int i = 0; i < NODES; i++) {
		if (!dead[i] && i != skip) {
			return i;
		}
	}
	return -1;
}

static const char *
addr_of(int i)
{
	static char a[8][64];
	static int next;
	char *s = a[next++ % 8];
	const char *got = th_cluster_addr(&cl, names[i]);
	assert_non_null(got);
	snprintf(s, 64, "%s", got);
	return s;
}

// Runs an SDFS command through node i: `idunno --node ADDR ARGS`.
static int
sdfs(int i, char **out, const char *fmt, ...)
{
	char *args;
	va_list ap;
	va_start(ap, fmt);
	assert_true(vasprintf(&args, fmt, ap) >= 0);
	va_end(ap);
	char addr[64];
	snprintf(addr, sizeof(addr), "%.63s", addr_of(i));
	int rv = th_cluster_cli(&cl, out, "--node %s %s", addr, args);
	free(args);
	return rv;
}

static long long
json_num(const char *json, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = json ? strstr(json, pat) : NULL;
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

// The holder addresses of an `ls --json` reply.
static int
json_holders(const char *json, char addr[][64], int max)
{
	int n = 0;
	const char *p = json;
	while (p != NULL && n < max && (p = strstr(p, "\"addr\":\"")) != NULL) {
		p += 8;
		const char *e = strchr(p, '"');
		if (e == NULL) {
			break;
		}
		snprintf(addr[n++], 64, "%.*s", (int) (e - p), p);
	}
	return n;
}

static void
round_trip(int node, uint64_t size, const char *name)
{
	char *in = strdup(path_of("rt.in"));
	char *out = strdup(path_of("rt.out"));
	make_file(in, size, (uint32_t) size);
	assert_int_equal(sdfs(node, NULL, "put '%s' '%s'", in, name), 0);
	assert_int_equal(sdfs(alive_index(node), NULL, "get '%s' '%s'", name,
	    out), 0);
	if (!same_file(in, out)) {
		fail_msg("%s: %" PRIu64 " bytes differ after a round trip",
		    name, size);
	}
	unlink(in);
	unlink(out);
	free(in);
	free(out);
}

static void
test_round_trip(void **st)
{
	static const uint64_t sizes[] = {0, 1, (1 << 20) - 1, 1 << 20,
	    (1 << 20) + 1, 3 * (1 << 20) + 12345};
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		char name[64];
		snprintf(name, sizeof(name), "rt/size-%" PRIu64, sizes[i]);
		round_trip((int) i % NODES, sizes[i], name);
	}
	uint64_t t0 = th_now_ms();
	round_trip(2, 200u * 1000 * 1000, "rt/big-200MB");
	fprintf(stderr, "# 200 MB put + get: %.1f s\n",
	    (double) (th_now_ms() - t0) / 1000.0);
	// The same through the C API, from memory.
	idn_client *c;
	IDN_PASS(idn_client_open(addr_of(3), cl.key, &c));
	idn_client_set_timeout(c, 10000);
	size_t len = (1 << 20) + 777;
	uint8_t *data = malloc(len);
	for (size_t i = 0; i < len; i++) {
		data[i] = (uint8_t) (i * 31 + 7);
	}
	uint64_t ver = 0, got = 0;
	IDN_PASS(idn_sdfs_put_buf(c, "api/buf", data, len, &ver));
	assert_int_equal(ver, 1);
	void *back;
	size_t blen;
	IDN_PASS(idn_sdfs_get_buf(c, "api/buf", 0, &back, &blen, &got));
	assert_int_equal(blen, len);
	assert_int_equal(got, 1);
	assert_memory_equal(back, data, len);
	idn_free(back);
	IDN_FAIL(idn_sdfs_get_buf(c, "api/none", 0, &back, &blen, NULL),
	    IDN_ENOENT);
	IDN_FAIL(idn_sdfs_put_buf(c, "../x", data, 1, NULL), IDN_EINVAL);
	idn_sdfs_entry *e;
	size_t n;
	IDN_PASS(idn_sdfs_ls_prefix(c, "rt/", &e, &n));
	assert_int_equal(n, ARRAY_LEN(sizes) + 1);
	assert_string_equal(e[0].name, "rt/big-200MB");
	idn_free(e);
	// Deleting the big file keeps the later failure tests light.
	IDN_PASS(idn_sdfs_delete(c, "rt/big-200MB"));
	IDN_PASS(idn_sdfs_ls_prefix(c, "rt/", &e, &n));
	assert_int_equal(n, ARRAY_LEN(sizes));
	idn_free(e);
	free(data);
	idn_client_close(c);
}

static void
test_versions(void **st)
{
	char *in = strdup(path_of("v.in"));
	char *out = strdup(path_of("v.out"));
	for (int v = 1; v <= 5; v++) {
		FILE *f = fopen(in, "w");
		fprintf(f, "content of put %d\n", v);
		fclose(f);
		assert_int_equal(sdfs(v % NODES, NULL, "put '%s' vers/a", in),
		    0);
	}
	char *o = NULL;
	assert_int_equal(sdfs(0, &o, "get-versions vers/a 3 '%s'", out), 0);
	free(o);
	char *text = NULL;
	assert_int_equal(th_sh(&text, "cat '%s'", out), 0);
	const char *want =
	    "=== idunno-sdfs vers/a version 5 size 17 ===\n"
	    "content of put 5\n\n"
	    "=== idunno-sdfs vers/a version 4 size 17 ===\n"
	    "content of put 4\n\n"
	    "=== idunno-sdfs vers/a version 3 size 17 ===\n"
	    "content of put 3\n\n";
	assert_string_equal(text, want);
	free(text);
	// A version by number, and one that does not exist.
	assert_int_equal(sdfs(1, NULL, "get vers/a '%s' --version 2", out), 0);
	assert_int_equal(th_sh(&text, "cat '%s'", out), 0);
	assert_string_equal(text, "content of put 2\n");
	free(text);
	assert_int_not_equal(sdfs(1, NULL, "get vers/a '%s' --version 9",
	    out), 0);
	// Delete: gone for get and ls, and a later put starts above it.
	assert_int_equal(sdfs(2, NULL, "delete vers/a"), 0);
	assert_int_not_equal(sdfs(3, NULL, "get vers/a '%s'", out), 0);
	assert_int_not_equal(sdfs(3, NULL, "ls vers/a"), 0);
	assert_int_not_equal(sdfs(3, NULL, "delete vers/a"), 0);
	assert_int_equal(sdfs(4, NULL, "put '%s' vers/a", in), 0);
	assert_int_equal(sdfs(5, &o, "ls vers/a --json"), 0);
	assert_int_equal(json_num(o, "newest"), 7);
	free(o);
	free(in);
	free(out);
}

static void
test_concurrent_writers(void **st)
{
	// Two clients, through two different nodes, put 4 versions each to
	// the same name at the same time.
	const char *dir = path_of("cw");
	assert_int_equal(th_sh(NULL, "mkdir -p '%s'", dir), 0);
	for (int w = 0; w < 2; w++) {
		for (int i = 0; i < 4; i++) {
			char p[PATH_MAX];
			snprintf(p, sizeof(p), "%s/w%d-%d", dir, w, i);
			FILE *f = fopen(p, "w");
			fprintf(f, "writer %d put %d\n", w, i);
			fclose(f);
		}
	}
	int rc = th_sh(NULL,
	    "B='%s/idunno'; R='%s'; D='%s'; ok=0; "
	    "(for i in 0 1 2 3; do \"$B\" --root \"$R\" --node %s put "
	    "\"$D/w0-$i\" cw/x >/dev/null || exit 1; done) & A=$!; "
	    "(for i in 0 1 2 3; do \"$B\" --root \"$R\" --node %s put "
	    "\"$D/w1-$i\" cw/x >/dev/null || exit 1; done) & C=$!; "
	    "wait $A || ok=1; wait $C || ok=1; exit $ok",
	    th_bin_dir(), cl.root, dir, addr_of(2), addr_of(5));
	assert_int_equal(rc, 0);
	// Versions 1..8, totally ordered, and every put's bytes once.
	char *o = NULL;
	assert_int_equal(sdfs(0, &o, "ls cw/x --json"), 0);
	assert_int_equal(json_num(o, "newest"), 8);
	free(o);
	char *out = path_of("cw.out");
	assert_int_equal(sdfs(1, NULL, "get-versions cw/x 8 '%s'", out), 0);
	char *text = NULL;
	assert_int_equal(th_sh(&text, "cat '%s'", out), 0);
	for (int v = 8; v >= 1; v--) {
		char head[96];
		snprintf(head, sizeof(head), "=== idunno-sdfs cw/x version %d "
		    "size 15 ===\n", v);
		assert_non_null(strstr(text, head));
	}
	for (int w = 0; w < 2; w++) {
		int last = -1;
		for (int i = 0; i < 4; i++) {
			char line[64];
			snprintf(line, sizeof(line), "writer %d put %d\n", w,
			    i);
			const char *p = strstr(text, line);
			assert_non_null(p);
			assert_null(strstr(p + 1, line));
			// One writer's puts keep their order (newest first).
			int at = (int) (p - text);
			assert_true(last < 0 || at < last);
			last = at;
		}
	}
	free(text);
}

static void
test_bad_input(void **st)
{
	char *out = NULL;
	const char *in = path_of("bad.in");
	make_file(in, 100, 1);
	// Missing local file: non-zero, clear error, nothing stored.
	assert_int_not_equal(sdfs(0, &out, "put '%s/nope' bad/x 2>&1", tmp),
	    0);
	assert_non_null(strstr(out, "cannot read"));
	free(out);
	assert_int_not_equal(sdfs(0, NULL, "ls bad/x"), 0);
	// Invalid names, each refused with its reason.
	static const char *bad[] = {"''", "/abs", "a/../b", "..", "a//b",
	    "a/", "\"$(printf 'a\\001b')\"",
	    "\"$(head -c 1100 /dev/zero | tr '\\0' a)\""};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		out = NULL;
		int rc = sdfs(1, &out, "put '%s' %s 2>&1", in, bad[i]);
		if (rc == 0 || strstr(out, "invalid SDFS name") == NULL) {
			fail_msg("name %s: rc %d, output '%s'", bad[i], rc,
			    out);
		}
		free(out);
	}
	assert_int_not_equal(sdfs(1, NULL, "get ../etc/passwd '%s/p'", tmp),
	    0);
	assert_int_not_equal(access(path_of("p"), F_OK), 0);
	// Local destinations that cannot be written: nothing appears.
	assert_int_equal(sdfs(2, NULL, "put '%s' bad/ok", in), 0);
	out = NULL;
	assert_int_not_equal(sdfs(2, &out, "get bad/ok '%s/no/such/dir/f' "
	    "2>&1", tmp), 0);
	assert_non_null(strstr(out, "cannot write"));
	free(out);
	assert_int_not_equal(sdfs(2, NULL, "get bad/ok '%s'", tmp), 0);
	const char *ro = path_of("ro");
	assert_int_equal(th_sh(NULL, "mkdir -p '%s' && chmod 500 '%s'",
	    ro, ro), 0);
	if (geteuid() != 0) { // root writes anywhere
		assert_int_not_equal(sdfs(2, NULL, "get bad/ok '%s/f'", ro), 0);
	}
	// A missing SDFS name leaves no local file behind.
	const char *miss = path_of("missing.out");
	assert_int_not_equal(sdfs(3, NULL, "get bad/none '%s'", miss), 0);
	assert_int_not_equal(access(miss, F_OK), 0);
	assert_int_equal(th_sh(NULL, "ls -A '%s' | grep -c "
	    "idunno-part >/dev/null", tmp), 1);
	// Usage errors exit 2.
	assert_int_equal(sdfs(3, NULL, "get-versions bad/ok zero '%s'", miss),
	    2);
	assert_int_equal(sdfs(3, NULL, "put onlyone"), 2);
}

typedef struct {
	const char *path;
	const char *want;
} same_arg;

static bool
file_restored(void *arg)
{
	same_arg *a = arg;
	return access(a->path, F_OK) == 0 && same_file(a->path, a->want);
}

static void
test_corrupt_replica(void **st)
{
	char *in = strdup(path_of("cor.in"));
	char *out = strdup(path_of("cor.out"));
	make_file(in, 3 * (1 << 20) + 5, 99);
	assert_int_equal(sdfs(0, NULL, "put '%s' cor/f", in), 0);
	char *o = NULL;
	assert_int_equal(sdfs(0, &o, "ls cor/f --json"), 0);
	char h[8][64];
	assert_int_equal(json_holders(o, h, 8), 4);
	free(o);
	int victim = th_cluster_index(&cl, h[1]);
	assert_true(victim >= 0);
	// Find the version's data file on the victim by its size.
	char *p = NULL;
	assert_int_equal(th_sh(&p, "find '%s/%s/sdfs/files' -name "
	    "'*.data' -size %dc | head -1", cl.root, names[victim],
	    3 * (1 << 20) + 5), 0);
	p[strcspn(p, "\n")] = '\0';
	assert_true(p[0] != '\0');
	assert_int_equal(th_sh(NULL, "printf CORRUPT | dd of='%s' bs=1 "
	    "seek=1500000 conv=notrunc 2>/dev/null", p), 0);
	assert_false(same_file(p, in));
	// Read through the corrupt holder itself: it must notice, serve
	// good bytes from another replica, and repair its copy.
	assert_int_equal(sdfs(victim, NULL, "get cor/f '%s'", out), 0);
	assert_true(same_file(in, out));
	same_arg a = {p, in};
	if (!th_wait(file_restored, &a, 30000)) {
		fail_msg("corrupt replica %s not repaired", p);
	}
	free(p);
	free(in);
	free(out);
}

static bool
file_gone(void *arg)
{
	return access(arg, F_OK) != 0;
}

// The scrub checks every version, not only the newest: an older version
// corrupted on disk and never read is found, kept aside until a good copy
// is back, then replaced.
static void
test_scrub_older_version(void **st)
{
	char *in = strdup(path_of("scr.in"));
	int size = 2 * (1 << 20) + 3;
	make_file(in, size, 41);
	assert_int_equal(sdfs(0, NULL, "put '%s' scr/f", in), 0);
	const char *in2 = path_of("scr2.in");
	make_file(in2, 1000, 42);
	assert_int_equal(sdfs(0, NULL, "put '%s' scr/f", in2), 0);
	char *o = NULL;
	assert_int_equal(sdfs(0, &o, "ls scr/f --json"), 0);
	char h[8][64];
	assert_int_equal(json_holders(o, h, 8), 4);
	free(o);
	int victim = th_cluster_index(&cl, h[2]);
	assert_true(victim >= 0);
	char *p = NULL;
	assert_int_equal(th_sh(&p, "find '%s/%s/sdfs/files' -name "
	    "'*.data' -size %dc | head -1", cl.root, names[victim], size), 0);
	p[strcspn(p, "\n")] = '\0';
	assert_true(p[0] != '\0');
	assert_int_equal(th_sh(NULL, "printf CORRUPT | dd of='%s' bs=1 "
	    "seek=1200000 conv=notrunc 2>/dev/null", p), 0);
	assert_false(same_file(p, in));
	uint64_t t0 = th_now_ms();
	same_arg a = {p, in};
	if (!th_wait(file_restored, &a, 90000)) {
		fail_msg("corrupt older version %s not found by the scrub", p);
	}
	fprintf(stderr, "# older version corrupted on disk, never read: "
	    "repaired after %.1f s\n",
	    (double) (th_now_ms() - t0) / 1000.0);
	// The damaged copy was kept aside only until the good one was back.
	char *bad = NULL;
	assert_true(asprintf(&bad, "%s.bad", p) > 0);
	assert_true(th_wait(file_gone, bad, 10000));
	free(bad);
	free(p);
	free(in);
}

// Node i's store holds no live copy of del/f (none, or its tombstone).
static bool
store_forgot(void *arg)
{
	int i = *(int *) arg;
	char *o = NULL;
	bool ok = sdfs(i, &o, "store --json") == 0;
	const char *e = ok ? strstr(o, "\"name\":\"del/f\"") : NULL;
	const char *d = e != NULL ? strstr(e, "\"deleted\":") : NULL;
	ok = ok && (e == NULL || (d != NULL && strncmp(d + 10, "true", 4) ==
	    0));
	free(o);
	return ok;
}

// A delete while a holder is down; the holder returns with the old data:
// the tombstone wins, the file stays deleted everywhere.
static void
test_delete_while_holder_down(void **st)
{
	const char *in = path_of("del.in");
	const char *out = path_of("del.out");
	make_file(in, 5000, 5);
	int front = alive_index(-1);
	assert_int_equal(sdfs(front, NULL, "put '%s' del/f", in), 0);
	char *o = NULL;
	char h[8][64];
	assert_int_equal(sdfs(front, &o, "ls del/f --json"), 0);
	assert_int_equal(json_holders(o, h, 8), 4);
	free(o);
	int v = -1; // a worker holder, not the front
	for (int k = 3; k >= 0 && v < 0; k--) {
		int x = th_cluster_index(&cl, h[k]);
		v = x >= 2 && x != front ? x : -1;
	}
	assert_true(v >= 0);
	assert_int_equal(th_cluster_kill(&cl, names[v]), IDN_OK);
	assert_int_equal(sdfs(front, NULL, "delete del/f"), 0);
	IDN_PASS(th_cluster_restart(&cl, names[v]));
	// It has its old copy still, or has already taken the tombstone.
	assert_true(th_wait(store_forgot, &v, 60000));
	for (int i = 0; i < NODES; i++) {
		if (!dead[i]) {
			assert_int_not_equal(sdfs(i, NULL, "get del/f '%s'",
			    out), 0);
		}
	}
	assert_int_equal(sdfs(v, &o, "ls-prefix del/ --json"), 0);
	assert_null(strstr(o, "del/f"));
	free(o);
}

static void
test_coordinator_down(void **st)
{
	assert_int_equal(th_cluster_kill(&cl, "coord"), IDN_OK);
	dead[0] = true;
	char *in = strdup(path_of("cd.in"));
	char *out = strdup(path_of("cd.out"));
	make_file(in, (1 << 20) + 3, 5);
	for (int k = 0; k < 3; k++) {
		char name[32];
		snprintf(name, sizeof(name), "nocoord/%d", k);
		assert_int_equal(sdfs(1 + k, NULL, "put '%s' %s", in, name), 0);
		assert_int_equal(sdfs(4 + k, NULL, "get %s '%s'", name, out),
		    0);
		assert_true(same_file(in, out));
	}
	free(in);
	free(out);
}

typedef struct {
	int front;
	const char *name;
	char killed[3][64];
	int want;
} repl_arg;

// ls through the front shows `want` live holders of the newest version,
// none of them killed.
static bool
replicated(void *arg)
{
	repl_arg *a = arg;
	char *o = NULL;
	char h[16][64];
	if (sdfs(a->front, &o, "ls %s --json", a->name) != 0) {
		free(o);
		return false;
	}
	bool ok = json_num(o, "replicas_have") == a->want;
	int n = json_holders(o, h, 16);
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < 3; k++) {
			ok = ok && strcmp(h[i], a->killed[k]) != 0;
		}
	}
	free(o);
	return ok;
}

static void
test_replica_dies_mid_write(void **st)
{
	// The write's replica set is the name's: learn it with a small put,
	// then kill one replica (not the front) while a bigger put streams.
	char *in = strdup(path_of("mw.in"));
	char *out = strdup(path_of("mw.out"));
	make_file(in, 1000, 8);
	int front = alive_index(-1);
	assert_int_equal(sdfs(front, NULL, "put '%s' mw/f", in), 0);
	char *o = NULL;
	char h[8][64];
	assert_int_equal(sdfs(front, &o, "ls mw/f --json"), 0);
	assert_int_equal(json_holders(o, h, 8), 4);
	free(o);
	int victim = -1;
	for (int k = 0; k < 4 && victim < 0; k++) {
		int i = th_cluster_index(&cl, h[k]);
		victim = i != front ? i : -1;
	}
	assert_true(victim >= 0);
	make_file(in, 60u << 20, 9);
	// The put reads its bytes from a FIFO: once the first 30 MiB have
	// gone in (the put is streaming), the replica is killed, then the
	// rest follows. The kill lands mid-write for certain.
	char *fifo = strdup(path_of("mw.fifo"));
	assert_int_equal(mkfifo(fifo, 0600), 0);
	int rc = th_sh(NULL, "'%s/idunno' --root '%s' --node %s put "
	    "'%s' mw/f >/dev/null & P=$!; exec 3>'%s'; head -c 31457280 "
	    "'%s' >&3; '%s/idunno' --root '%s' cluster kill %s >/dev/null; "
	    "tail -c +31457281 '%s' >&3; exec 3>&-; wait $P",
	    th_bin_dir(), cl.root, addr_of(front), fifo, fifo, in,
	    th_bin_dir(), cl.root, names[victim], in);
	unlink(fifo);
	free(fifo);
	dead[victim] = true;
	assert_int_equal(rc, 0);
	assert_int_equal(sdfs(front, NULL, "get mw/f '%s'", out), 0);
	assert_true(same_file(in, out));
	// Acknowledged means 4 live copies: no waiting needed.
	assert_int_equal(sdfs(front, &o, "ls mw/f --json"), 0);
	assert_int_equal(json_num(o, "newest"), 2);
	free(o);
	repl_arg a = {.name = "mw/f", .want = 4, .front = front};
	snprintf(a.killed[0], 64, "%.63s", addr_of(victim));
	snprintf(a.killed[1], 64, "%.63s", addr_of(victim));
	snprintf(a.killed[2], 64, "%.63s", addr_of(victim));
	assert_true(replicated(&a));
	free(in);
	free(out);
}

// A holder dies in the middle of a get: the get goes on from another
// holder. The get writes to a pipe the test reads, so it is stalled
// mid-file, provably, when the holder is killed.
static void
test_holder_dies_mid_get(void **st)
{
	char *in = strdup(path_of("mg.in"));
	int size = 24 * (1 << 20) + 17;
	make_file(in, size, 77);
	int front = alive_index(-1);
	assert_int_equal(sdfs(front, NULL, "put '%s' mg/f", in), 0);
	char *o = NULL;
	char h[8][64];
	assert_int_equal(sdfs(front, &o, "ls mg/f --json"), 0);
	assert_int_equal(json_holders(o, h, 8), 4);
	free(o);
	// Through a node that holds no copy: it reads the replicas, the
	// first of the ring first.
	int via = -1;
	for (int i = 0; i < NODES && via < 0; i++) {
		bool holder = false;
		for (int k = 0; k < 4; k++) {
			holder = holder || strcmp(addr_of(i), h[k]) == 0;
		}
		via = !dead[i] && !holder ? i : -1;
	}
	assert_true(via >= 0);
	char *cmd = NULL;
	assert_true(asprintf(&cmd, "'%s/idunno' --root '%s' --node %s get "
	    "mg/f -", th_bin_dir(), cl.root, addr_of(via)) > 0);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	FILE *want = fopen(in, "rb");
	assert_non_null(want);
	static uint8_t a[1 << 16], b[1 << 16];
	size_t got = 0, n;
	bool same = true;
	while (got < (size_t) (4 << 20) && (n = fread(a, 1, sizeof(a), p)) > 0) {
		same = same && fread(b, 1, n, want) == n && !memcmp(a, b, n);
		got += n;
	}
	assert_int_equal(got, 4 << 20);
	int v = th_cluster_index(&cl, h[0]);
	assert_true(v >= 0);
	assert_int_equal(th_cluster_kill(&cl, names[v]), IDN_OK);
	dead[v] = true;
	while ((n = fread(a, 1, sizeof(a), p)) > 0) {
		same = same && fread(b, 1, n, want) == n && !memcmp(a, b, n);
		got += n;
	}
	fclose(want);
	int rc = pclose(p);
	fprintf(stderr, "# a holder killed %d MiB into a get: exit %d, %zu of "
	    "%d bytes, %s\n", 4, rc, got, size, same ? "identical" :
	    "different");
	assert_int_equal(rc, 0);
	assert_int_equal(got, (size_t) size);
	assert_true(same);
	free(cmd);
	free(in);
}

static void
test_kill_three_holders(void **st)
{
	char *in = strdup(path_of("k3.in"));
	char *out = strdup(path_of("k3.out"));
	make_file(in, 5 * (1 << 20) + 11, 3);
	int front = alive_index(-1);
	assert_int_equal(sdfs(front, NULL, "put '%s' k3/f", in), 0);
	char *o = NULL;
	char h[8][64];
	assert_int_equal(sdfs(front, &o, "ls k3/f --json"), 0);
	assert_int_equal(json_holders(o, h, 8), 4);
	free(o);
	// Read through a node that is not a holder, and kill 3 holders.
	repl_arg a = {.name = "k3/f", .want = 4, .front = -1};
	for (int i = 0; i < NODES; i++) {
		bool holder = false;
		for (int k = 0; k < 4; k++) {
			holder = holder || strcmp(addr_of(i), h[k]) == 0;
		}
		if (!dead[i] && !holder) {
			a.front = i;
		}
	}
	assert_true(a.front >= 0);
	for (int k = 0; k < 3; k++) {
		int v = th_cluster_index(&cl, h[k]);
		snprintf(a.killed[k], 64, "%.63s", h[k]);
		assert_int_equal(th_cluster_kill(&cl, names[v]), IDN_OK);
		dead[v] = true;
	}
	uint64_t t0 = th_now_ms();
	assert_int_equal(sdfs(a.front, NULL, "get k3/f '%s'", out), 0);
	assert_true(same_file(in, out));
	if (!th_wait(replicated, &a, 60000)) {
		fail_msg("k3/f did not get back to 4 live copies");
	}
	fprintf(stderr, "# 3 of 4 holders killed: 4 copies again after "
	    "%.1f s\n", (double) (th_now_ms() - t0) / 1000.0);
	assert_int_equal(sdfs(a.front, NULL, "get k3/f '%s'", out), 0);
	assert_true(same_file(in, out));
	// Fewer live nodes than replicas: a write goes to all of them and
	// ls calls it under-replicated.
	int alive = 0;
	for (int i = 0; i < NODES; i++) {
		alive += !dead[i];
	}
	for (; alive > 3; alive--) {
		int v = alive_index(a.front);
		assert_int_equal(th_cluster_kill(&cl, names[v]), IDN_OK);
		dead[v] = true;
	}
	repl_arg three = {.name = "k3/small", .want = 3, .front = a.front};
	make_file(in, 1000, 4);
	assert_int_equal(sdfs(a.front, NULL, "put '%s' k3/small", in), 0);
	assert_true(th_wait(replicated, &three, 30000));
	assert_int_equal(sdfs(a.front, &o, "ls k3/small --json"), 0);
	assert_non_null(strstr(o, "\"under_replicated\":true"));
	free(o);
	assert_int_equal(sdfs(a.front, &o, "ls k3/small"), 0);
	assert_non_null(strstr(o, "UNDER-REPLICATED"));
	free(o);
	free(in);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_concurrent_writers),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_corrupt_replica),
		cmocka_unit_test(test_scrub_older_version),
		cmocka_unit_test(test_delete_while_holder_down),
		cmocka_unit_test(test_coordinator_down),
		cmocka_unit_test(test_replica_dies_mid_write),
		cmocka_unit_test(test_holder_dies_mid_get),
		cmocka_unit_test(test_kill_three_holders),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
