// SPDX-License-Identifier: MIT
// net_test.c: the RPC endpoint in one process on loopback: calls, wrong
// keys, replays, addresses, and the replay filter itself.
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
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
	IDN_PASS(replay_open(1000, 1000, &r)); // rounded up to 1024
	IDN_PASS(replay_check(r, 5000, 1, 5000));
	IDN_FAIL(replay_check(r, 5000, 1, 5100), IDN_EEXIST);
	IDN_PASS(replay_check(r, 5000, 2, 5100));
	IDN_FAIL(replay_check(r, 3000, 3, 5000), IDN_ESTALE);
	IDN_FAIL(replay_check(r, 7000, 4, 5000), IDN_ESTALE);
	// A flood fills the filter, then is refused: the oldest requests of
	// the window are never forgotten to make room.
	int admitted = 2, busy = 0;
	for (uint64_t i = 0; i < 5000; i++) {
		int rv = replay_check(r, 5000, 100 + i, 5100);
		admitted += rv == IDN_OK;
		busy += rv == IDN_EBUSY;
	}
	assert_int_equal(admitted, 1024);
	assert_int_equal(busy, 5000 - 1022);
	IDN_FAIL(replay_check(r, 5000, 1, 5100), IDN_EEXIST);
	IDN_FAIL(replay_check(r, 5000, 2, 5100), IDN_EEXIST);
	IDN_FAIL(replay_check(r, 5000, 100, 5100), IDN_EEXIST);
	// Once they have left the window, their slots are reused.
	IDN_PASS(replay_check(r, 6500, 1, 6500));
	IDN_FAIL(replay_check(r, 6500, 1, 6500), IDN_EEXIST);
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
	net_counters ctr;
	net_stats(s, NULL, &ctr);
	assert_true(ctr.rejected >= 1); // counted for /metrics
	// An oversized message is refused by configuration.
	static uint8_t big[2 << 20];
	IDN_FAIL(net_call(c, addr, "big", big, sizeof(big), 300, &doc, &env),
	    IDN_ETIMEDOUT);
	assert_int_equal(calls, 2);

	// The same authentic frame sent twice runs once.
	core_buf e = {0}, frame = {0};
	wire_env h = {.type = "again", .from = "me", .ts_ms = idn_wall_ms(),
	    .nonce = wire_nonce()};
	snprintf(h.to, sizeof(h.to), "%s", addr);
	IDN_PASS(wire_env_write(&h, NULL, 0, &e));
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

// Handlers that block (a commit, a pull) hold their threads; a ping must
// still be answered at once, and data beyond the thread limit gets EBUSY.
static pthread_mutex_t block_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t block_cv = PTHREAD_COND_INITIALIZER;
static bool released;
static int blocked, returned;

static int
blocking(void *arg, const wire_env *req, wire_wr *reply)
{
	if (strcmp(req->type, "block") != 0) {
		return IDN_OK;
	}
	pthread_mutex_lock(&block_lock);
	blocked++;
	pthread_cond_broadcast(&block_cv);
	while (!released) {
		pthread_cond_wait(&block_cv, &block_lock);
	}
	pthread_mutex_unlock(&block_lock);
	return IDN_OK;
}

#define BLOCKERS 20

typedef struct {
	net_client *c;
	const char *addr;
	int rv;
} block_call;

static void *
call_block(void *argp)
{
	block_call *b = argp;
	wire_doc *doc = NULL;
	wire_env env;
	b->rv = net_call(b->c, b->addr, "block", NULL, 0, 20000, &doc, &env);
	wire_doc_free(doc);
	pthread_mutex_lock(&block_lock);
	returned++;
	pthread_mutex_unlock(&block_lock);
	return NULL;
}

// All 20 calls have arrived: want handlers block, the others were
// answered (on a loaded machine a caller thread can start late).
static bool
blockers_settled(void *arg)
{
	int *want = arg;
	pthread_mutex_lock(&block_lock);
	bool done = blocked >= *want && returned >= BLOCKERS - *want;
	pthread_mutex_unlock(&block_lock);
	return done;
}

static void
test_pings_never_wait(void **st)
{
	uint8_t key[WIRE_KEY_BYTES];
	wire_keygen(key);
	net_server *s;
	net_client *c;
	IDN_PASS(net_server_open("127.0.0.1:0", key, 1 << 20, blocking, NULL,
	    NULL, &s));
	IDN_PASS(net_server_start(s, 2)); // grows to 16 threads at most
	IDN_PASS(net_client_open(key, "me", 1 << 20, &c));
	const char *addr = net_server_addr(s);
	pthread_t t[BLOCKERS];
	block_call b[BLOCKERS];
	for (int i = 0; i < BLOCKERS; i++) {
		b[i] = (block_call){c, addr, -1};
		assert_int_equal(pthread_create(&t[i], NULL, call_block, &b[i]),
		    0);
	}
	// 16 threads, 4 kept waiting: 12 handlers block, the rest is busy.
	int want = 12;
	assert_true(th_wait(blockers_settled, &want, 10000));
	wire_doc *doc = NULL;
	wire_env env;
	uint64_t t0 = idn_clock_ms();
	IDN_PASS(net_call(c, addr, "swim.ping", NULL, 0, 1000, &doc, &env));
	wire_doc_free(doc);
	assert_true(idn_clock_ms() - t0 < 1000);
	IDN_FAIL(net_call(c, addr, "data", NULL, 0, 1000, &doc, &env),
	    IDN_EBUSY);
	wire_doc_free(doc);
	pthread_mutex_lock(&block_lock);
	released = true;
	pthread_cond_broadcast(&block_cv);
	pthread_mutex_unlock(&block_lock);
	int ok = 0, busy = 0;
	for (int i = 0; i < BLOCKERS; i++) {
		pthread_join(t[i], NULL);
		ok += b[i].rv == IDN_OK;
		busy += b[i].rv == IDN_EBUSY;
	}
	assert_int_equal(ok, 12);
	assert_int_equal(busy, BLOCKERS - 12);
	net_client_close(c);
	net_server_close(s);
}

static _Atomic int log_lines;

static void
count_line(void *arg, int level, const char *line)
{
	log_lines++;
}

static bool
all_in(void *arg)
{
	net_server *s = arg;
	net_counters n;
	net_stats(s, NULL, &n);
	return atomic_load(&n.msgs_in) >= 300;
}

// 300 frames with a bad MAC: one WARN line with a count, not 300.
static void
test_drops_rate_limited(void **st)
{
	uint8_t key[WIRE_KEY_BYTES];
	wire_keygen(key);
	core_logger lg = {count_line, NULL, IDN_LOG_DEBUG};
	net_server *s;
	int calls = 0;
	IDN_PASS(net_server_open("127.0.0.1:0", key, 1 << 20, echo, &calls,
	    &lg, &s));
	IDN_PASS(net_server_start(s, 2));
	char url[128];
	IDN_PASS(net_addr_to_url(net_server_addr(s), url, sizeof(url)));
	nng_socket req;
	assert_int_equal(nng_req0_open(&req), 0);
	assert_int_equal(nng_dial(req, url, NULL, 0), 0);
	uint8_t junk[64] = {1, 2, 3};
	for (int i = 0; i < 300; i++) {
		assert_int_equal(nng_send(req, junk, sizeof(junk), 0), 0);
	}
	assert_true(th_wait(all_in, s, 10000));
	assert_int_equal(calls, 0);
	assert_true(atomic_load(&log_lines) >= 1);
	assert_true(atomic_load(&log_lines) <= 2);
	(void) req; // left to the process exit, as above
	net_server_close(s);
}

// A request frame built by hand, field by field, as an on-path attacker
// or a buggy peer could: {"t","v","from","to","rc","ts","n","b"}.
static void
hand_frame(const uint8_t *key, const char *type, const char *from,
    const char *to, int rc, uint64_t ts, uint64_t nonce, core_buf *frame)
{
	wire_wr *w;
	const uint8_t *p;
	size_t n;
	IDN_PASS(wire_wr_new(&w));
	wire_map(w, 8);
	wire_kstr(w, "t", type);
	wire_ku64(w, "v", WIRE_VERSION);
	wire_kstr(w, "from", from);
	wire_kstr(w, "to", to);
	wire_ki64(w, "rc", rc);
	wire_ku64(w, "ts", ts);
	wire_ku64(w, "n", nonce);
	wire_str(w, "b");
	wire_nil(w);
	IDN_PASS(wire_wr_bytes(w, &p, &n));
	IDN_PASS(wire_seal(key, p, n, frame));
	wire_wr_free(w);
}

// Sends one raw frame on its own req socket and context; returns the
// nng result of the receive (0: a reply came, appended to reply).
static int
raw_send(const char *addr, const core_buf *frame, int wait_ms,
    core_buf *reply)
{
	char url[128];
	nng_socket req;
	nng_ctx ctx;
	nng_aio *aio;
	nng_msg *m;
	IDN_PASS(net_addr_to_url(addr, url, sizeof(url)));
	assert_int_equal(nng_req0_open(&req), 0);
	assert_int_equal(nng_dial(req, url, NULL, 0), 0);
	nng_socket_set_ms(req, NNG_OPT_REQ_RESENDTIME, 60000);
	assert_int_equal(nng_ctx_open(&ctx, req), 0);
	assert_int_equal(nng_aio_alloc(&aio, NULL, NULL), 0);
	assert_int_equal(nng_msg_alloc(&m, 0), 0);
	assert_int_equal(nng_msg_append(m, frame->data, frame->len), 0);
	nng_aio_set_timeout(aio, wait_ms);
	nng_aio_set_msg(aio, m);
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	assert_int_equal(nng_aio_result(aio), 0);
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	int rv = nng_aio_result(aio);
	if (rv == 0) {
		m = nng_aio_get_msg(aio);
		if (reply != NULL) {
			IDN_PASS(core_buf_append(reply, nng_msg_body(m),
			    nng_msg_len(m)));
		}
		nng_msg_free(m);
	}
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	// The socket is left to the process exit (see above).
	return rv;
}

static _Atomic int bind_lines;
static char bind_last[512];

static void
keep_line(void *arg, int level, const char *line)
{
	bind_lines++;
	snprintf(bind_last, sizeof(bind_last), "%s", line);
}

// A request is bound to where it goes: one captured for node A and sent
// to node B, or stamped before B started (a capture replayed across a
// restart), runs no handler. Clock skew is refused with a reply and
// logged once per peer.
static void
test_requests_bound_to_destination(void **st)
{
	uint8_t key[WIRE_KEY_BYTES];
	wire_keygen(key);
	core_logger lg = {keep_line, NULL, IDN_LOG_DEBUG};
	uint64_t before = idn_wall_ms() - 2000; // within the window
	int calls = 0;
	net_server *a, *b;
	IDN_PASS(net_server_open("127.0.0.1:0", key, 1 << 20, echo, &calls,
	    &lg, &a));
	IDN_PASS(net_server_open("127.0.0.1:0", key, 1 << 20, echo, &calls,
	    &lg, &b));
	IDN_PASS(net_server_start(a, 2));
	IDN_PASS(net_server_start(b, 2));
	const char *aa = net_server_addr(a), *ba = net_server_addr(b);
	core_buf f = {0};
	// For A, to A: runs.
	hand_frame(key, "hello", "peer", aa, 0, idn_wall_ms(), 11, &f);
	assert_int_equal(raw_send(aa, &f, 2000, NULL), 0);
	assert_int_equal(calls, 1);
	// The same capture, to B: refused, nothing runs.
	raw_send(ba, &f, 300, NULL);
	assert_int_equal(calls, 1);
	core_buf_free(&f);
	// Stamped before B started: refused.
	hand_frame(key, "hello", "peer", ba, 0, before, 12, &f);
	raw_send(ba, &f, 300, NULL);
	assert_int_equal(calls, 1);
	core_buf_free(&f);
	// A clock a minute off: refused with a reply (not a silent drop),
	// and one clear line per peer however many requests come.
	int lines0 = atomic_load(&bind_lines);
	for (int i = 0; i < 3; i++) {
		core_buf r = {0};
		hand_frame(key, "hello", "skewed", aa, 0,
		    idn_wall_ms() - 60000, 20 + (uint64_t) i, &f);
		assert_int_equal(raw_send(aa, &f, 2000, &r), 0);
		const uint8_t *p;
		size_t n;
		wire_doc *d;
		wire_env e;
		IDN_PASS(wire_open(key, r.data, r.len, &p, &n));
		IDN_PASS(wire_env_decode(p, n, &d, &e));
		assert_int_equal(e.rc, IDN_ESTALE);
		wire_doc_free(d);
		core_buf_free(&r);
		core_buf_free(&f);
	}
	assert_int_equal(calls, 1);
	assert_int_equal(atomic_load(&bind_lines) - lines0, 1);
	assert_non_null(strstr(bind_last, "clock"));
	assert_non_null(strstr(bind_last, "skewed"));
	net_server_close(a);
	net_server_close(b);
}

typedef struct {
	nng_socket rep;
	uint8_t key[WIRE_KEY_BYTES];
} fake_server;

// Answers one request with an authentic {rc: 0} that answers another
// request (a recorded old reply).
static void *
fake_serve(void *arg)
{
	fake_server *fs = arg;
	nng_msg *m;
	if (nng_recvmsg(fs->rep, &m, 0) != 0) {
		return NULL;
	}
	nng_msg_free(m);
	core_buf f = {0};
	hand_frame(fs->key, "commit", "node", "client", 0, idn_wall_ms(),
	    424242, &f);
	nng_send(fs->rep, f.data, f.len, 0);
	core_buf_free(&f);
	return NULL;
}

// A reply carries its request's nonce; an old {rc: 0} is refused.
static void
test_reply_matches_request(void **st)
{
	fake_server fs;
	wire_keygen(fs.key);
	int port = th_port();
	char addr[64], url[128];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	IDN_PASS(net_addr_to_url(addr, url, sizeof(url)));
	assert_int_equal(nng_rep0_open(&fs.rep), 0);
	assert_int_equal(nng_listen(fs.rep, url, NULL, 0), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, fake_serve, &fs), 0);
	net_client *c;
	IDN_PASS(net_client_open(fs.key, "client", 1 << 20, &c));
	wire_doc *doc = NULL;
	wire_env env;
	int rv = net_call(c, addr, "commit", NULL, 0, 3000, &doc, &env);
	wire_doc_free(doc);
	assert_int_not_equal(rv, IDN_OK);
	pthread_join(t, NULL);
	net_client_close(c);
	(void) fs.rep; // left to the process exit
}

static char seen_to[96];

static int
record_to(void *arg, const wire_env *req, wire_wr *reply)
{
	snprintf(seen_to, sizeof(seen_to), "%s", req->to);
	return IDN_OK;
}

// The first call names the destination by address; its reply names the
// node, and later calls carry that id. After the node changes its id (a
// restart at the same address), the old id is refused unrun and the
// caller, told the new one, asks again: the call still succeeds once.
static void
test_destination_id_learnt(void **st)
{
	uint8_t key[WIRE_KEY_BYTES];
	wire_keygen(key);
	net_server *s;
	net_client *c;
	IDN_PASS(net_server_open("127.0.0.1:0", key, 1 << 20, record_to, NULL,
	    NULL, &s));
	net_server_set_self(s, "node-1");
	IDN_PASS(net_server_start(s, 2));
	IDN_PASS(net_client_open(key, "me", 1 << 20, &c));
	const char *addr = net_server_addr(s);
	wire_doc *doc;
	wire_env env;
	IDN_PASS(net_call(c, addr, "x", NULL, 0, 5000, &doc, &env));
	assert_string_equal(seen_to, addr);
	assert_string_equal(env.from, "node-1");
	wire_doc_free(doc);
	IDN_PASS(net_call(c, addr, "x", NULL, 0, 5000, &doc, &env));
	assert_string_equal(seen_to, "node-1");
	assert_string_equal(env.from, ""); // known: not sent again
	wire_doc_free(doc);
	net_server_set_self(s, "node-2");
	IDN_PASS(net_call(c, addr, "x", NULL, 0, 5000, &doc, &env));
	assert_string_equal(seen_to, "node-2");
	wire_doc_free(doc);
	net_client_close(c);
	net_server_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_replay_filter),
	    cmocka_unit_test(test_addresses),
	    cmocka_unit_test(test_calls_keys_and_replays),
	    cmocka_unit_test(test_pings_never_wait),
	    cmocka_unit_test(test_drops_rate_limited),
	    cmocka_unit_test(test_requests_bound_to_destination),
	    cmocka_unit_test(test_reply_matches_request),
	    cmocka_unit_test(test_destination_id_learnt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
