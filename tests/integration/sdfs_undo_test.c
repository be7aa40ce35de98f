// SPDX-License-Identifier: MIT
// sdfs_undo_test.c: a put that fails after some replicas committed it is
// taken back: its version is never visible through get, ls or the
// version list of any node, also after the failing replica recovers and
// anti-entropy has run.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <idunno/sdfs.h>

#include "cluster.h"

#define NODES 4 // every node is a replica of every name
#define NAME "undo/f"
#define ROUNDS_MS 8000 // four anti-entropy rounds

static th_cluster cl;
static const char *names[NODES] = {"coord", "standby", "worker1",
    "worker2"};
static bool broken;

// worker2 cannot write: its temp folder is replaced by a file (the test
// runs as root, so a mode would not stop it). Its r.begin and every pull
// fail at once, without a timeout, so the front's write set keeps it and
// the put fails after the shortened replication deadline, with the other
// three replicas committed.
static void
break_writes(bool on)
{
	assert_int_equal(th_sh(NULL, on ?
	    "cd '%s'/worker2/sdfs && mv tmp tmp.off && touch tmp" :
	    "cd '%s'/worker2/sdfs && rm tmp && mv tmp.off tmp", cl.root), 0);
	broken = on;
}

static int
setup(void **st)
{
	setenv("IDUNNO_SDFS_REPLICATE_MS", "1500", 1);
	IDN_PASS(th_cluster_up(&cl, NODES));
	return 0;
}

static int
teardown(void **st)
{
	if (broken) {
		break_writes(false);
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

// Through every node: version 1 is the newest, read as v1, and version 2
// is in no listing.
static void
only_v1(const uint8_t *v1, size_t len)
{
	for (int i = 0; i < NODES; i++) {
		idn_client *c = client(i);
		void *data = NULL;
		size_t n = 0;
		uint64_t ver = 0;
		IDN_PASS(idn_sdfs_get_buf(c, NAME, 0, &data, &n, &ver));
		assert_int_equal(ver, 1);
		assert_int_equal(n, len);
		assert_memory_equal(data, v1, len);
		idn_free(data);
		idn_sdfs_info *info;
		IDN_PASS(idn_sdfs_ls(c, NAME, &info));
		assert_int_equal(info->newest, 1);
		for (size_t h = 0; h < info->nholders; h++) {
			assert_int_equal(info->holders[h].newest, 1);
		}
		for (size_t k = 0; k < info->nversions; k++) {
			assert_int_not_equal(info->versions[k].version, 2);
		}
		idn_free(info);
		idn_sdfs_version *vs;
		size_t nv;
		IDN_PASS(idn_sdfs_versions(c, NAME, 0, &vs, &nv));
		for (size_t k = 0; k < nv; k++) {
			assert_int_not_equal(vs[k].version, 2);
		}
		idn_free(vs);
		idn_client_close(c);
	}
}

static void
test_failed_put_not_visible(void **st)
{
	uint8_t v1[100], v2[300];
	memset(v1, 0x11, sizeof(v1));
	memset(v2, 0x22, sizeof(v2));
	idn_client *c = client(0);
	uint64_t ver = 0;
	IDN_PASS(idn_sdfs_put_buf(c, NAME, v1, sizeof(v1), &ver));
	assert_int_equal(ver, 1);
	break_writes(true);
	uint64_t t0 = th_now_ms();
	int rv = idn_sdfs_put_buf(c, NAME, v2, sizeof(v2), &ver);
	fprintf(stderr, "# put with one replica unable to write: %s after "
	    "%.1f s\n", idn_strerror(rv),
	    (double) (th_now_ms() - t0) / 1000.0);
	assert_int_equal(rv, IDN_EUNAVAIL);
	only_v1(v1, sizeof(v1));
	// The replica recovers; anti-entropy must not bring version 2 back:
	// watched, not waited for, over four of its rounds.
	break_writes(false);
	uint64_t end = th_now_ms() + ROUNDS_MS;
	int checks = 0;
	for (; checks < 100 && th_now_ms() < end; checks++) {
		only_v1(v1, sizeof(v1));
		usleep(100000);
	}
	fprintf(stderr, "# version 1 still the newest everywhere: %d checks "
	    "over %.1f s\n", checks, (double) ROUNDS_MS / 1000.0);
	idn_client_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_put_not_visible),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
