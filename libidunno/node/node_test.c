// SPDX-License-Identifier: MIT
// node_test.c: a whole node in this process: every handler refuses an
// authenticated but malformed request with a reply and the node stays up;
// stale and future stamps are refused; closing it under load many times
// never crashes; options from a caller built before the SDFS limits.
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "node/node_int.h"

static idn_node *
open_node(const char *dir, const uint8_t *key)
{
	idn_node_opts o;
	idn_node_opts_init(&o);
	o.role = IDN_ROLE_COORD;
	o.data_dir = dir;
	memcpy(o.key, key, IDN_KEY_BYTES);
	idn_node *n;
	IDN_PASS(idn_node_open(&o, &n));
	return n;
}

static bool
node_answers(net_client *c, const char *addr)
{
	wire_doc *doc = NULL;
	wire_env env;
	int rv = net_call(c, addr, "node.stats", NULL, 0, 5000, &doc, &env);
	wire_doc_free(doc);
	return rv == IDN_OK;
}

// Bodies that are valid msgpack but no handler's request: nothing, the
// wrong container, and the usual field names with the wrong types.
static void
malformed_body(int k, wire_wr *w)
{
	switch (k) {
	case 0:
		wire_nil(w);
		break;
	case 1:
		wire_arr(w, 2);
		wire_u64(w, 1);
		wire_str(w, "x");
		break;
	case 2:
		wire_map(w, 0);
		break;
	default:
		wire_map(w, 10);
		wire_ku64(w, "name", 7);
		wire_kstr(w, "v", "seven");
		wire_kstr(w, "version", "x");
		wire_ki64(w, "off", -1);
		wire_ku64(w, "data", 3);
		wire_kstr(w, "sess", "");
		wire_ku64(w, "job", UINT64_MAX);
		wire_kstr(w, "p", "");
		wire_kbool(w, "id", true);
		wire_ku64(w, "epoch", UINT64_MAX);
		break;
	}
}

#define BODIES 4

static void
test_malformed_to_every_handler(void **st)
{
	uint8_t key[IDN_KEY_BYTES];
	wire_keygen(key);
	const char *dir = th_tmpdir();
	idn_node *n = open_node(dir, key);
	rpc *r = node_rpc(n);
	net_client *c;
	IDN_PASS(net_client_open(key, "tester", NET_DEFAULT_MAX_MSG, &c));
	const char *addr = idn_node_addr(n);
	int routes = 0, refused = 0;
	const char *type;
	for (int i = 0; (type = rpc_route_name(r, i)) != NULL; i++) {
		routes++;
		for (int k = 0; k < BODIES; k++) {
			wire_wr *w;
			wire_doc *doc = NULL;
			wire_env env;
			IDN_PASS(wire_wr_new(&w));
			malformed_body(k, w);
			int rv = net_call_wr(c, addr, type, w, 10000, &doc,
			    &env);
			wire_wr_free(w);
			wire_doc_free(doc);
			if (rv == IDN_ETIMEDOUT || rv == IDN_ENET ||
			    rv == IDN_EAUTH || rv == IDN_ECLOSED) {
				fail_msg("%s with body %d: no reply (%s)", type,
				    k, idn_strerror(rv));
			}
			refused += rv != IDN_OK;
		}
		if (!node_answers(c, addr)) {
			fail_msg("the node stopped answering after %s", type);
		}
	}
	print_message("# %d routes, %d of %d malformed requests refused\n",
	    routes, refused, routes * BODIES);
	assert_true(routes >= 30);
	assert_true(refused >= routes); // each needs some field
	net_client_close(c);
	idn_node_close(n);
}

// A peer whose clock is a minute off, either way, is refused (with a
// reply) however authentic its requests are; one in step is served.
static void
test_stale_and_future_stamps(void **st)
{
	uint8_t key[IDN_KEY_BYTES];
	wire_keygen(key);
	idn_node *n = open_node(th_tmpdir(), key);
	net_client *c;
	IDN_PASS(net_client_open(key, "skewed", NET_DEFAULT_MAX_MSG, &c));
	const int64_t skews[] = {-60000, 60000, -31000, 31000};
	for (size_t i = 0; i < sizeof(skews) / sizeof(skews[0]); i++) {
		wire_doc *doc = NULL;
		wire_env env;
		net_client_skew(c, skews[i]);
		IDN_FAIL(net_call(c, idn_node_addr(n), "node.stats", NULL, 0,
		    5000, &doc, &env), IDN_ESTALE);
		wire_doc_free(doc);
	}
	net_client_skew(c, 2000); // within the window
	assert_true(node_answers(c, idn_node_addr(n)));
	net_client_close(c);
	idn_node_close(n);
}

typedef struct {
	uint8_t *key;
	char addr[64];
	_Atomic bool *stop;
	_Atomic int *calls;
} hammer_arg;

static void *
hammer(void *argp)
{
	hammer_arg *a = argp;
	static const char *const types[] = {"node.stats", "log.grep",
	    "sdfs.ls", "sdfs.store", "node.members", "sched.state",
	    "sdfs.put.begin", "swim.ping"};
	net_client *c;
	if (net_client_open(a->key, "hammer", NET_DEFAULT_MAX_MSG, &c) !=
	    IDN_OK) {
		return NULL;
	}
	uint64_t end = idn_clock_ms() + 60000;
	for (unsigned i = 0; !atomic_load(a->stop) && idn_clock_ms() < end;
	     i++) {
		wire_wr *w;
		wire_doc *doc = NULL;
		wire_env env;
		if (wire_wr_new(&w) != IDN_OK) {
			break;
		}
		malformed_body((int) (i % (BODIES + 1)), w);
		(void) net_call_wr(c, a->addr, types[i % 8], w, 1000, &doc,
		    &env);
		wire_wr_free(w);
		wire_doc_free(doc);
		atomic_fetch_add(a->calls, 1);
	}
	net_client_close(c);
	return NULL;
}

static bool
enough_calls(void *arg)
{
	return atomic_load((_Atomic int *) arg) >= 200;
}

#define ROUNDS 5
#define HAMMERS 6

// A node closed while clients keep calling it, again and again: no
// handler may outlive what it uses (run this under ASan by hand).
static void
test_close_under_load(void **st)
{
	uint8_t key[IDN_KEY_BYTES];
	wire_keygen(key);
	for (int round = 0; round < ROUNDS; round++) {
		char dir[512];
		snprintf(dir, sizeof(dir), "%s/r%d", th_tmpdir(), round);
		idn_node *n = open_node(dir, key);
		_Atomic bool stop = false;
		_Atomic int calls = 0;
		hammer_arg a = {key, "", &stop, &calls};
		snprintf(a.addr, sizeof(a.addr), "%s", idn_node_addr(n));
		pthread_t t[HAMMERS];
		for (int i = 0; i < HAMMERS; i++) {
			assert_int_equal(pthread_create(&t[i], NULL, hammer,
			    &a), 0);
		}
		assert_true(th_wait(enough_calls, &calls, 30000));
		uint64_t t0 = idn_clock_ms();
		idn_node_close(n);
		assert_true(idn_clock_ms() - t0 < 40000);
		atomic_store(&stop, true);
		for (int i = 0; i < HAMMERS; i++) {
			pthread_join(t[i], NULL);
		}
	}
}

// A caller built before the SDFS limits passes a smaller size: the
// fields past it are never read (their defaults apply); a size beyond
// the struct, or short of the fields it always had, is refused.
static void
test_opts_from_older_caller(void **st)
{
	uint8_t key[IDN_KEY_BYTES];
	wire_keygen(key);
	idn_node_opts o;
	idn_node *n;
	idn_node_opts_init(&o);
	o.data_dir = th_tmpdir();
	memcpy(o.key, key, IDN_KEY_BYTES);
	o.sdfs_session_idle_ms = -1; // refused when read
	IDN_FAIL(idn_node_open(&o, &n), IDN_EINVAL);
	o.size = sizeof(o) + 1;
	IDN_FAIL(idn_node_open(&o, &n), IDN_EINVAL);
	o.size = offsetof(idn_node_opts, sdfs_offers_per_call) - 1;
	IDN_FAIL(idn_node_open(&o, &n), IDN_EINVAL);
	o.size = offsetof(idn_node_opts, sdfs_offers_per_call);
	IDN_PASS(idn_node_open(&o, &n));
	idn_node_close(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_malformed_to_every_handler),
	    cmocka_unit_test(test_stale_and_future_stamps),
	    cmocka_unit_test(test_close_under_load),
	    cmocka_unit_test(test_opts_from_older_caller),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
