// SPDX-License-Identifier: MIT
// sdfs_race_test.c: one version number must never stand for two contents.
// The primary of a name (which hands out its version numbers) changes
// while a put is in flight: the put got version V from the old primary;
// the old primary of the name returns (paused, declared failed, resumed,
// so with the same id and place on the ring) and a second put gets its
// number from it. Both may not be acknowledged as V, and every version
// acknowledged reads back as the bytes its put sent. And a version number
// that already stands for two contents on different holders (as after a
// partition) converges to one content, the other kept as a new version.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <idunno/sdfs.h>

#include "cluster.h"

#define NODES 6
#define NAMES 24
#define FIRST_BYTES (3u << 19) // 1.5 MiB: more than one chunk
#define REST_BYTES (1u << 19)

static th_cluster cl;
static const char *names[NODES] = {"coord", "standby", "worker1",
    "worker2", "worker3", "worker4"};
static pid_t paused = -1;

static int
setup(void **st)
{
	IDN_PASS(th_cluster_up(&cl, NODES));
	return 0;
}

static int
teardown(void **st)
{
	if (paused > 0) {
		kill(paused, SIGCONT);
	}
	th_cluster_down(&cl);
	return 0;
}

static idn_client *
client(int i)
{
	idn_client *c;
	IDN_PASS(th_cluster_client(&cl, names[i], 10000, &c));
	return c;
}

typedef struct {
	int node;  // whose view
	int state; // of the paused node
	const char *addr;
} state_arg;

static bool
sees(void *argp)
{
	state_arg *a = argp;
	idn_member *m;
	size_t n;
	bool ok = false;
	if (th_cluster_members(&cl, names[a->node], &m, &n) != IDN_OK) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		ok = ok || (strcmp(m[i].addr, a->addr) == 0 &&
		    m[i].state == a->state);
	}
	idn_free(m);
	return ok;
}

static bool
all_see(int skip, const char *addr, int state)
{
	for (int i = 0; i < NODES; i++) {
		state_arg a = {i, state, addr};
		if (i != skip && !th_wait(sees, &a, 20000)) {
			return false;
		}
	}
	return true;
}

typedef struct {
	int front;
	const char *path;
	char name[32];
	int rv;
	uint64_t ver;
} put_arg;

static void *
fifo_put(void *argp)
{
	put_arg *a = argp;
	idn_client *c = client(a->front);
	a->rv = idn_sdfs_put_file(c, a->path, a->name, &a->ver);
	idn_client_close(c);
	return NULL;
}

static void
pattern(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++) {
		p[i] = (uint8_t) (seed + i * 7 + i / 251);
	}
}

static void
test_primary_handover_mid_put(void **st)
{
	// Learn each name's primary (the first holder, in ring order) and
	// pick a name whose primary is a worker.
	idn_client *c = client(0);
	int k = -1;
	char name[32];
	for (int i = 0; i < NAMES && k < 0; i++) {
		idn_sdfs_info *info;
		snprintf(name, sizeof(name), "race/%d", i);
		IDN_PASS(idn_sdfs_put_buf(c, name, "v1", 2, NULL));
		IDN_PASS(idn_sdfs_ls(c, name, &info));
		assert_true(info->nholders > 0);
		int p = th_cluster_index(&cl, info->holders[0].addr);
		k = p >= 2 ? p : -1;
		idn_free(info);
	}
	idn_client_close(c);
	assert_true(k >= 2);
	char kaddr[64];
	snprintf(kaddr, sizeof(kaddr), "%s", th_cluster_addr(&cl, names[k]));
	// Pause the primary until everyone declared it failed: the next
	// node of the ring hands out the name's versions now.
	paused = th_cluster_pid(&cl, names[k]);
	assert_true(paused > 0);
	assert_int_equal(kill(paused, SIGSTOP), 0);
	assert_true(all_see(k, kaddr, IDN_MEMBER_FAILED));
	// Put A: its version comes from the stand-in; its bytes stay
	// half-sent in a FIFO.
	put_arg a = {.front = 0};
	snprintf(a.name, sizeof(a.name), "%s", name);
	char *fifo = NULL;
	assert_true(asprintf(&fifo, "%s/a.fifo", th_tmpdir()) > 0);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	a.path = fifo;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, fifo_put, &a), 0);
	int fd = open(fifo, O_WRONLY);
	assert_true(fd >= 0);
	uint8_t *bytes = malloc(FIRST_BYTES + REST_BYTES);
	assert_non_null(bytes);
	pattern(bytes, FIRST_BYTES + REST_BYTES, 0xa);
	assert_int_equal(write(fd, bytes, FIRST_BYTES), FIRST_BYTES);
	// The old primary returns (same id, same place on the ring).
	assert_int_equal(kill(paused, SIGCONT), 0);
	paused = -1;
	assert_true(all_see(-1, kaddr, IDN_MEMBER_ALIVE));
	// Put B gets its version from the returned primary.
	uint8_t b_bytes[64];
	pattern(b_bytes, sizeof(b_bytes), 0xb);
	uint64_t b_ver;
	c = client(1);
	IDN_PASS(idn_sdfs_put_buf(c, name, b_bytes, sizeof(b_bytes), &b_ver));
	// Put A completes.
	assert_int_equal(write(fd, bytes + FIRST_BYTES, REST_BYTES),
	    REST_BYTES);
	close(fd);
	pthread_join(t, NULL);
	fprintf(stderr, "# put A: %s, version %llu; put B: version %llu\n",
	    idn_strerror(a.rv), (unsigned long long) a.ver,
	    (unsigned long long) b_ver);
	if (a.rv == IDN_OK && a.ver == b_ver) {
		fail_msg("puts A and B both acknowledged as version %llu",
		    (unsigned long long) b_ver);
	}
	// Every acknowledged version reads back as its bytes, from every
	// node.
	for (int i = 0; i < NODES; i++) {
		idn_client *r = client(i);
		void *data;
		size_t len;
		IDN_PASS(idn_sdfs_get_buf(r, name, b_ver, &data, &len, NULL));
		assert_int_equal(len, sizeof(b_bytes));
		assert_memory_equal(data, b_bytes, len);
		idn_free(data);
		if (a.rv == IDN_OK) {
			IDN_PASS(idn_sdfs_get_buf(r, name, a.ver, &data, &len,
			    NULL));
			assert_int_equal(len, FIRST_BYTES + REST_BYTES);
			assert_memory_equal(data, bytes, len);
			idn_free(data);
		}
		idn_client_close(r);
	}
	idn_client_close(c);
	free(bytes);
	free(fifo);
}

typedef struct {
	const char *name;
	int nodes[8];
	int n;
	uint64_t ver[2];
	const uint8_t *bytes[2];
	size_t len[2];
} reads_arg;

// Every listed node reads each version as its bytes (a get through a
// holder serves its own copy).
static bool
reads_back(void *argp)
{
	reads_arg *a = argp;
	bool ok = true;
	for (int i = 0; i < a->n && ok; i++) {
		idn_client *r = client(a->nodes[i]);
		for (int v = 0; v < 2 && ok; v++) {
			void *data = NULL;
			size_t len = 0;
			ok = idn_sdfs_get_buf(r, a->name, a->ver[v], &data, &len,
			    NULL) == IDN_OK && len == a->len[v] &&
			    memcmp(data, a->bytes[v], len) == 0;
			idn_free(data);
		}
		idn_client_close(r);
	}
	return ok;
}

// Copies the files of version 1 of SDFS name `from` over version 1 of
// `to` on node i (paused meanwhile): two holders of `to` then hold one
// version number with two contents, as two sides of a partition would
// after each took a put under the same number.
static void
swap_in(int i, const char *to, const char *from)
{
	pid_t pid = th_cluster_pid(&cl, names[i]);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	paused = pid;
	int rc = th_sh(NULL, "t=$(dirname \"$(grep -lx '%s' "
	    "'%s'/%s/sdfs/files/*/name)\") && f=$(dirname \"$(grep -lx '%s' "
	    "'%s'/*/sdfs/files/*/name | head -1)\") && v=%020d && "
	    "cp \"$f/$v.data\" \"$t/x.tmp\" && mv \"$t/x.tmp\" "
	    "\"$t/$v.data\" && cp \"$f/$v.meta\" \"$t/x.tmp\" && "
	    "mv \"$t/x.tmp\" \"$t/$v.meta\"", to, cl.root, names[i], from,
	    cl.root, 1);
	assert_int_equal(kill(pid, SIGCONT), 0);
	paused = -1;
	assert_int_equal(rc, 0);
}

static void
test_split_version_converges(void **st)
{
	// Version 1 of conf/f is B on two holders and C on the other two;
	// B was put first. Both must survive, the same everywhere: B keeps
	// version 1, C comes back as version 2.
	uint8_t b[100], c_bytes[200];
	pattern(b, sizeof(b), 0x3b);
	pattern(c_bytes, sizeof(c_bytes), 0x3c);
	idn_client *c = client(0);
	IDN_PASS(idn_sdfs_put_buf(c, "conf/f", b, sizeof(b), NULL));
	IDN_PASS(idn_sdfs_put_buf(c, "conf/g", c_bytes, sizeof(c_bytes),
	    NULL));
	idn_sdfs_info *info;
	IDN_PASS(idn_sdfs_ls(c, "conf/f", &info));
	assert_int_equal(info->nholders, 4);
	reads_arg a = {.name = "conf/f", .ver = {1, 2}, .bytes = {b, c_bytes},
	    .len = {sizeof(b), sizeof(c_bytes)}};
	for (size_t h = 0; h < info->nholders; h++) {
		a.nodes[a.n++] = th_cluster_index(&cl, info->holders[h].addr);
		assert_true(a.nodes[h] >= 0);
	}
	idn_free(info);
	swap_in(a.nodes[0], "conf/f", "conf/g");
	swap_in(a.nodes[1], "conf/f", "conf/g");
	uint64_t t0 = th_now_ms();
	if (!th_wait(reads_back, &a, 60000)) {
		fail_msg("version 1 of conf/f still has two contents, or C "
		    "was not kept as version 2");
	}
	fprintf(stderr, "# split version: one winner on every holder, the "
	    "other kept as version 2, after %.1f s\n",
	    (double) (th_now_ms() - t0) / 1000.0);
	// Every node agrees (a get through a non-holder reads replicas).
	for (int i = 0; i < NODES; i++) {
		a.nodes[0] = i;
		a.n = 1;
		assert_true(reads_back(&a));
	}
	idn_client_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_version_converges),
		cmocka_unit_test(test_primary_handover_mid_put),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
