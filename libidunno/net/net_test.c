// SPDX-License-Identifier: MIT
// net_test.c: the RPC endpoint in one process on loopback: calls, wrong
// keys, replays, addresses, and the replay filter itself.
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <string.h>

#include "harness.h"
#include "net/net.h"
#include "net/replay.h"

static int
echo(void *arg, const wire_env *req, wire_wr *reply)
{
	int *calls = arg;
	(*calls)++;
	wire_map(reply, 1);
	wire_kstr(reply, "type", req->type);
	return strcmp(req->type, "fail") == 0 ? IDN_ENOENT : IDN_OK;
}

static void
test_replay_filter(void **st)
{
	replay *r;
	IDN_PASS(replay_open(1000, &r));
	IDN_PASS(replay_check(r, 5000, 1, 5000));
	IDN_FAIL(replay_check(r, 5000, 1, 5100), IDN_EEXIST);
	IDN_PASS(replay_check(r, 5000, 2, 5100));
	IDN_FAIL(replay_check(r, 3000, 3, 5000), IDN_ESTALE);
	IDN_FAIL(replay_check(r, 7000, 4, 5000), IDN_ESTALE);
	// Far more requests than the ring holds: recent ones still caught.
	for (uint64_t i = 0; i < 200000; i++) {
		IDN_PASS(replay_check(r, 5000, 100 + i, 5000));
	}
	IDN_FAIL(replay_check(r, 5000, 100 + 199999, 5000), IDN_EEXIST);
	replay_close(r);
}

static void
test_addresses(void **st)
{
	char url[128];
	IDN_PASS(net_addr_to_url("127.0.0.1:0", url, sizeof(url)));
	assert_string_equal(url, "tcp://127.0.0.1:0");
	IDN_PASS(net_addr_to_url("localhost:65535", url, sizeof(url)));
	const char *bad[] = {"", ":1", "1.2.3.4", "1.2.3.4:", "1.2.3:5",
	    "1.2.3.256:5", "1.2.3.4:65536", "1.2.3.4:-1", "a.b.c.d:1",
	    "1.2.3.4:5x", "1..3.4:5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		IDN_FAIL(net_addr_to_url(bad[i], url, sizeof(url)),
		    IDN_EINVAL);
	}
}

static void
test_calls_keys_and_replays(void **st)
{
	uint8_t key[WIRE_KEY_BYTES], other[WIRE_KEY_BYTES];
	wire_keygen(key);
	wire_keygen(other);
	int calls = 0;
	net_server *s;
	IDN_PASS(net_server_open("127.0.0.1:0", key, 1 << 20, echo, &calls,
	    NULL, &s));
	IDN_PASS(net_server_start(s, 2));
	const char *addr = net_server_addr(s);

	net_client *c, *stranger;
	IDN_PASS(net_client_open(key, "me", 1 << 20, &c));
	IDN_PASS(net_client_open(other, "them", 1 << 20, &stranger));
	wire_doc *doc;
	wire_env env;
	char type[32];
	IDN_PASS(net_call(c, addr, "hello", NULL, 0, 5000, &doc, &env));
	IDN_PASS(wire_get_str(env.body, "type", type, sizeof(type)));
	assert_string_equal(type, "hello");
	wire_doc_free(doc);
	// The handler's code reaches the caller, with the reply.
	IDN_FAIL(net_call(c, addr, "fail", NULL, 0, 5000, &doc, &env),
	    IDN_ENOENT);
	assert_non_null(doc);
	wire_doc_free(doc);
	assert_int_equal(calls, 2);
	// Another key: no handler runs, no reply comes.
	IDN_FAIL(net_call(stranger, addr, "hello", NULL, 0, 300, &doc, &env),
	    IDN_ETIMEDOUT);
	assert_null(doc);
	assert_int_equal(calls, 2);
	// An oversized message is refused by configuration.
	static uint8_t big[2 << 20];
	IDN_FAIL(net_call(c, addr, "big", big, sizeof(big), 300, &doc, &env),
	    IDN_ETIMEDOUT);
	assert_int_equal(calls, 2);

	// The same authentic frame sent twice runs once.
	core_buf e = {0}, frame = {0};
	IDN_PASS(wire_env_encode("again", "me", 0, NULL, 0, &e));
	IDN_PASS(wire_seal(key, e.data, e.len, &frame));
	char url[128];
	IDN_PASS(net_addr_to_url(addr, url, sizeof(url)));
	// A context per send, closed after: closing a raw req socket with a
	// request still pending can block in nng 1.5.
	nng_socket req;
	assert_int_equal(nng_req0_open(&req), 0);
	assert_int_equal(nng_dial(req, url, NULL, 0), 0);
	nng_socket_set_ms(req, NNG_OPT_REQ_RESENDTIME, 60000);
	for (int i = 0; i < 2; i++) {
		nng_ctx ctx;
		nng_aio *aio;
		nng_msg *m;
		assert_int_equal(nng_ctx_open(&ctx, req), 0);
		assert_int_equal(nng_aio_alloc(&aio, NULL, NULL), 0);
		assert_int_equal(nng_msg_alloc(&m, 0), 0);
		assert_int_equal(nng_msg_append(m, frame.data, frame.len), 0);
		nng_aio_set_timeout(aio, 300);
		nng_aio_set_msg(aio, m);
		nng_ctx_send(ctx, aio);
		nng_aio_wait(aio);
		assert_int_equal(nng_aio_result(aio), 0);
		nng_ctx_recv(ctx, aio);
		nng_aio_wait(aio);
		assert_int_equal(nng_aio_result(aio), i == 0 ? 0 : NNG_ETIMEDOUT);
		if (i == 0) {
			nng_msg_free(nng_aio_get_msg(aio));
		}
		nng_aio_free(aio);
		nng_ctx_close(ctx);
	}
	assert_int_equal(calls, 3);
	// nng 1.5 can hang in nng_close after a broken pipe (nng issue #1543;
	// the oversized message above breaks one). The library bounds its
	// own closes; this raw socket is left to the process exit.
	(void) req;
	net_server_close(s);
	core_buf_free(&e);
	core_buf_free(&frame);
	net_client_close(c);
	net_client_close(stranger);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_replay_filter),
	    cmocka_unit_test(test_addresses),
	    cmocka_unit_test(test_calls_keys_and_replays),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
