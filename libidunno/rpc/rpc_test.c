// SPDX-License-Identifier: MIT
// rpc_test.c: endpoints on loopback: routes frozen once serving, calls,
// fan-out, node.stats and log-free client requests.
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "rpc/rpc.h"

static int
echo(void *arg, const wire_env *req, wire_wr *reply)
{
	wire_map(reply, 1);
	wire_kstr(reply, "who", arg);
	return IDN_OK;
}

static rpc *
open_at(const uint8_t *key, const char *self)
{
	rpc_opts o = {"127.0.0.1:0", key, 1 << 20, NULL};
	rpc *r;
	IDN_PASS(rpc_open(&o, &r));
	rpc_set_self(r, self);
	return r;
}

static void
test_routes_calls_fanout(void **st)
{
	uint8_t key[IDN_KEY_BYTES];
	wire_keygen(key);
	rpc *a = open_at(key, "a"), *b = open_at(key, "b");
	IDN_PASS(rpc_route(a, "t.echo", echo, "a"));
	IDN_PASS(rpc_route(b, "t.echo", echo, "b"));
	IDN_FAIL(rpc_route(a, "a-type-name-far-longer-than-the-table-holds",
	    echo, "a"), IDN_EINVAL);
	// A subsystem that failed to open takes its routes back.
	IDN_PASS(rpc_route(a, "t.gone", echo, "gone"));
	IDN_PASS(rpc_unroute(a, "gone"));
	IDN_PASS(rpc_serve(a));
	IDN_PASS(rpc_serve(b));
	IDN_FAIL(rpc_unroute(a, "a"), IDN_EBUSY);
	// Frozen once serving: a late route is refused, not raced.
	IDN_FAIL(rpc_route(a, "t.late", echo, "a"), IDN_EBUSY);

	wire_doc *doc;
	wire_env env;
	char who[8];
	IDN_PASS(rpc_call(a, rpc_addr(b), "t.echo", NULL, 5000, &doc, &env));
	IDN_PASS(wire_get_str(env.body, "who", who, sizeof(who)));
	assert_string_equal(who, "b");
	wire_doc_free(doc);
	IDN_FAIL(rpc_call(a, rpc_addr(b), "t.late", NULL, 5000, &doc, &env),
	    IDN_EPROTO);
	wire_doc_free(doc);
	IDN_FAIL(rpc_call(b, rpc_addr(a), "t.gone", NULL, 5000, &doc, &env),
	    IDN_EPROTO);
	wire_doc_free(doc);

	const char *addrs[] = {rpc_addr(a), rpc_addr(b), "127.0.0.1:1"};
	int rvs[3];
	wire_doc *docs[3];
	wire_env envs[3];
	IDN_PASS(rpc_fanout(a, addrs, 3, "t.echo", NULL, 2000, rvs, docs,
	    envs));
	IDN_PASS(rvs[0]);
	IDN_PASS(rvs[1]);
	assert_int_not_equal(rvs[2], IDN_OK);
	IDN_PASS(wire_get_str(envs[1].body, "who", who, sizeof(who)));
	assert_string_equal(who, "b");
	for (int i = 0; i < 3; i++) {
		wire_doc_free(docs[i]);
	}

	// The public client: node.stats carries the endpoint's name.
	idn_client *c;
	idn_node_stats ns;
	IDN_PASS(idn_client_open(rpc_addr(b), key, &c));
	IDN_PASS(idn_client_node_stats(c, NULL, &ns));
	assert_string_equal(ns.id, "b");
	assert_true(ns.msgs_in >= 2);
	IDN_FAIL(idn_client_node_stats(NULL, NULL, &ns), IDN_EINVAL);
	idn_client_close(c);

	rpc_stop(a);
	rpc_close(a);
	rpc_close(b);
	rpc_close(NULL);
}

// Key files: created 0600 without following a planted link and never over
// an existing key; refused when group or others may read them.
static void
test_key_files(void **st)
{
	const char *dir = th_tmpdir();
	char path[512], tmp[600], victim[512];
	uint8_t key[IDN_KEY_BYTES], back[IDN_KEY_BYTES], other[IDN_KEY_BYTES];
	snprintf(path, sizeof(path), "%s/cluster.key", dir);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	IDN_PASS(idn_key_create(path, key));
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	IDN_PASS(idn_key_load(path, back));
	assert_memory_equal(key, back, sizeof(key));
	// An existing key is never replaced.
	IDN_FAIL(idn_key_create(path, other), IDN_EEXIST);
	IDN_PASS(idn_key_load(path, back));
	assert_memory_equal(key, back, sizeof(key));
	// Readable by others: refused, with its own code.
	assert_int_equal(chmod(path, 0640), 0);
	IDN_FAIL(idn_key_load(path, back), IDN_EPERM);
	assert_int_equal(chmod(path, 0600), 0);
	// A link planted where the temp file goes is not written through.
	FILE *f = fopen(victim, "we");
	assert_non_null(f);
	fputs("precious\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/new.key", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int) getpid());
	assert_int_equal(symlink(victim, tmp), 0);
	(void) idn_key_create(path, key);
	char *out = NULL;
	assert_int_equal(th_sh(&out, "cat '%s'", victim), 0);
	assert_string_equal(out, "precious\n");
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_routes_calls_fanout),
	    cmocka_unit_test(test_key_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
