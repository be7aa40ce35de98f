// SPDX-License-Identifier: MIT
// sdfs_scale_test.c: more names than one anti-entropy batch. The batch is
// made small (IDUNNO_SDFS_OFFERS_PER_CALL) so that a few hundred names
// need several rounds: after a holder is killed, every name must get back
// to IDN_SDFS_REPLICAS live copies, not only those of the first batch.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/sdfs.h>

#include "cluster.h"

#define NODES 5
#define NAMES 600

static idn_tcluster cl;
static bool dead[NODES];

static int
setup(void **st)
{
	// Nodes inherit the environment of `idunno cluster up`.
	setenv("IDUNNO_SDFS_OFFERS_PER_CALL", "40", 1);
	IDN_PASS(idn_tcluster_up(&cl, NODES));
	return 0;
}

static int
teardown(void **st)
{
	idn_tcluster_down(&cl);
	return 0;
}

static int
client_of(int i, idn_client **out)
{
	char name[16];
	snprintf(name, sizeof(name), "%d", i);
	const char *addr = idn_tcluster_addr(&cl, name);
	if (addr == NULL) {
		return IDN_ENOENT;
	}
	int rv = idn_client_open(addr, cl.key, out);
	if (rv == IDN_OK) {
		idn_client_set_timeout(*out, 10000);
	}
	return rv;
}

typedef struct {
	int copies[NAMES];
	int full;     // names with exactly IDN_SDFS_REPLICAS live copies
	int fewest;
} census;

// Counts the live copies of every name from each live node's store.
static bool
count_copies(census *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < NODES; i++) {
		idn_client *cli;
		idn_sdfs_entry *e;
		size_t n;
		if (dead[i]) {
			continue;
		}
		if (client_of(i, &cli) != IDN_OK) {
			return false;
		}
		int rv = idn_sdfs_store(cli, &e, &n);
		idn_client_close(cli);
		if (rv != IDN_OK) {
			return false;
		}
		for (size_t k = 0; k < n; k++) {
			int idx;
			if (sscanf(e[k].name, "scale/%d", &idx) == 1 &&
			    idx >= 0 && idx < NAMES && !e[k].deleted) {
				c->copies[idx]++;
			}
		}
		idn_free(e);
	}
	c->fewest = IDN_SDFS_REPLICAS;
	for (int k = 0; k < NAMES; k++) {
		c->full += c->copies[k] == IDN_SDFS_REPLICAS;
		if (c->copies[k] < c->fewest) {
			c->fewest = c->copies[k];
		}
	}
	return true;
}

static bool
all_replicated(void *arg)
{
	census *c = arg;
	return count_copies(c) && c->full == NAMES;
}

static void
test_many_names_rereplicated(void **st)
{
	idn_client *cli[NODES];
	for (int i = 0; i < NODES; i++) {
		IDN_PASS(client_of(i, &cli[i]));
	}
	uint64_t t0 = idn_test_now_ms();
	for (int k = 0; k < NAMES; k++) {
		char name[32], data[32];
		snprintf(name, sizeof(name), "scale/%04d", k);
		int len = snprintf(data, sizeof(data), "contents %d", k);
		IDN_PASS(idn_sdfs_put_buf(cli[k % NODES], name, data,
		    (size_t) len, NULL));
	}
	fprintf(stderr, "# %d puts in %.1f s\n", NAMES,
	    (double) (idn_test_now_ms() - t0) / 1000.0);
	for (int i = 0; i < NODES; i++) {
		idn_client_close(cli[i]);
	}
	census *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	assert_true(count_copies(c));
	assert_int_equal(c->full, NAMES);
	// Kill a worker: it held about 4/5 of the names.
	assert_int_equal(idn_tcluster_kill(&cl, "worker3"), IDN_OK);
	dead[4] = true;
	t0 = idn_test_now_ms();
	if (!idn_test_wait(all_replicated, c, 90000)) {
		fail_msg("%d of %d names back to %d copies (fewest %d)",
		    c->full, NAMES, IDN_SDFS_REPLICAS, c->fewest);
	}
	fprintf(stderr, "# %d names back to %d copies after %.1f s\n", NAMES,
	    IDN_SDFS_REPLICAS, (double) (idn_test_now_ms() - t0) / 1000.0);
	free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_names_rereplicated),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
