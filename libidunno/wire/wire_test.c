// SPDX-License-Identifier: MIT
// wire_test.c: round trips of every message shape and malformed input.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "wire/wire.h"

static void
test_roundtrip_scalars(void **st)
{
	wire_wr *w;
	const uint8_t *p;
	size_t n;
	IDN_PASS(wire_wr_new(&w));
	wire_map(w, 6);
	wire_ku64(w, "u", UINT64_MAX);
	wire_ki64(w, "i", -42);
	wire_kf64(w, "f", 2.5);
	wire_kstr(w, "s", "hello");
	wire_kbin(w, "b", "\0\1\2", 3);
	wire_kbool(w, "t", true);
	IDN_PASS(wire_wr_bytes(w, &p, &n));
	wire_doc *d;
	IDN_PASS(wire_doc_parse(p, n, &d));
	const wire_val *r = wire_doc_root(d);
	uint64_t u;
	int64_t i;
	double f;
	bool b;
	char s[8];
	const uint8_t *bp;
	size_t bn;
	IDN_PASS(wire_get_u64(r, "u", &u));
	assert_true(u == UINT64_MAX);
	IDN_PASS(wire_get_i64(r, "i", &i));
	assert_int_equal(i, -42);
	IDN_PASS(wire_as_f64(wire_get(r, "f"), &f));
	assert_true(f == 2.5);
	IDN_PASS(wire_get_str(r, "s", s, sizeof(s)));
	assert_string_equal(s, "hello");
	IDN_PASS(wire_get_bin(r, "b", &bp, &bn));
	assert_int_equal(bn, 3);
	assert_memory_equal(bp, "\0\1\2", 3);
	IDN_PASS(wire_as_bool(wire_get(r, "t"), &b));
	assert_true(b);
	// Wrong types and missing keys are errors, not crashes.
	IDN_FAIL(wire_get_u64(r, "s", &u), IDN_EPROTO);
	IDN_FAIL(wire_get_u64(r, "i", &u), IDN_EPROTO);
	IDN_FAIL(wire_get_str(r, "missing", s, sizeof(s)), IDN_EPROTO);
	IDN_FAIL(wire_get_str(r, "s", s, 5), IDN_EPROTO); // too long
	wire_doc_free(d);
	wire_wr_free(w);
}

static void
test_envelope_and_mac(void **st)
{
	uint8_t key[WIRE_KEY_BYTES], other[WIRE_KEY_BYTES];
	wire_keygen(key);
	wire_keygen(other);
	core_buf env = {0}, frame = {0};
	wire_env h = {.type = "swim.ping", .from = "me", .to = "you",
	    .ts_ms = 7, .nonce = wire_nonce()};
	IDN_PASS(wire_env_write(&h, NULL, 0, &env));
	IDN_PASS(wire_seal(key, env.data, env.len, &frame));
	const uint8_t *p;
	size_t n;
	IDN_PASS(wire_open(key, frame.data, frame.len, &p, &n));
	wire_doc *d;
	wire_env e;
	IDN_PASS(wire_env_decode(p, n, &d, &e));
	assert_string_equal(e.type, "swim.ping");
	assert_string_equal(e.from, "me");
	assert_string_equal(e.to, "you");
	assert_true(e.ts_ms == 7 && e.nonce == h.nonce);
	wire_doc_free(d);
	// Another key, a flipped bit, a short frame: all refused.
	IDN_FAIL(wire_open(other, frame.data, frame.len, &p, &n), IDN_EAUTH);
	frame.data[frame.len - 1] ^= 1;
	IDN_FAIL(wire_open(key, frame.data, frame.len, &p, &n), IDN_EAUTH);
	IDN_FAIL(wire_open(key, frame.data, 10, &p, &n), IDN_EAUTH);
	IDN_FAIL(wire_open(key, NULL, 0, &p, &n), IDN_EAUTH);
	core_buf_free(&env);
	core_buf_free(&frame);
}

// Known answers, from the specifications rather than from this code: the
// MAC is HMAC-SHA-512-256 (the first 32 bytes of RFC 4231's HMAC-SHA-512,
// as Python's hmac computes it), the encoding MessagePack's.
static void
test_known_answers(void **st)
{
	static const uint8_t mac_want[32] = {0xcf, 0x76, 0x8c, 0x6f, 0xd3,
	    0xf0, 0x8f, 0x64, 0x0f, 0x77, 0x9d, 0xdb, 0xd9, 0xbc, 0x38, 0x42,
	    0xfe, 0x78, 0xa2, 0x61, 0xf1, 0x97, 0xda, 0x9c, 0x4a, 0x95, 0x85,
	    0x10, 0xac, 0x82, 0x26, 0xdb};
	uint8_t key[WIRE_KEY_BYTES];
	memset(key, 0x0b, sizeof(key));
	core_buf frame = {0};
	IDN_PASS(wire_seal(key, "Hi There", 8, &frame));
	assert_int_equal(frame.len, 32 + 8);
	assert_memory_equal(frame.data, mac_want, 32);
	assert_memory_equal(frame.data + 32, "Hi There", 8);
	core_buf_free(&frame);
	// {"a": 1, "b": "xy", "c": 2^40, "d": -1, "e": [true, nil]}
	static const uint8_t pack_want[] = {0x85, 0xa1, 'a', 0x01, 0xa1, 'b',
	    0xa2, 'x', 'y', 0xa1, 'c', 0xcf, 0, 0, 0x01, 0, 0, 0, 0, 0, 0xa1,
	    'd', 0xff, 0xa1, 'e', 0x92, 0xc3, 0xc0};
	wire_wr *w;
	const uint8_t *b;
	size_t n;
	IDN_PASS(wire_wr_new(&w));
	wire_map(w, 5);
	wire_ku64(w, "a", 1);
	wire_kstr(w, "b", "xy");
	wire_ku64(w, "c", 1ull << 40);
	wire_ki64(w, "d", -1);
	wire_str(w, "e");
	wire_arr(w, 2);
	wire_bool(w, true);
	wire_nil(w);
	IDN_PASS(wire_wr_bytes(w, &b, &n));
	assert_int_equal(n, sizeof(pack_want));
	assert_memory_equal(b, pack_want, n);
	wire_wr_free(w);
	// A whole frame: the envelope's field order and encoding, then its
	// MAC under the key of 32 0x0b bytes (both computed with Python's
	// hmac and the MessagePack specification).
	static const uint8_t env_want[] = {0x88, 0xa1, 't', 0xa1, 'a', 0xa1,
	    'v', 0x02, 0xa4, 'f', 'r', 'o', 'm', 0xa1, 'f', 0xa2, 't', 'o',
	    0xa1, 'd', 0xa2, 'r', 'c', 0x05, 0xa2, 't', 's', 0x01, 0xa1, 'n',
	    0x02, 0xa1, 'b', 0xc0};
	static const uint8_t env_mac[32] = {0xb4, 0x3d, 0x8d, 0xc7, 0x5b,
	    0xfc, 0x46, 0x92, 0x1e, 0x6b, 0x06, 0x3d, 0x85, 0xfb, 0x9e, 0x00,
	    0x47, 0xd6, 0x95, 0x64, 0xb4, 0x5b, 0xe3, 0x8b, 0x33, 0xb3, 0x76,
	    0x91, 0xa7, 0x57, 0x31, 0x5c};
	wire_env h = {.type = "a", .from = "f", .to = "d", .rc = 5,
	    .ts_ms = 1, .nonce = 2};
	core_buf env = {0};
	IDN_PASS(wire_env_write(&h, NULL, 0, &env));
	assert_int_equal(env.len, sizeof(env_want));
	assert_memory_equal(env.data, env_want, env.len);
	IDN_PASS(wire_seal(key, env.data, env.len, &frame));
	assert_memory_equal(frame.data, env_mac, 32);
	core_buf_free(&env);
	core_buf_free(&frame);
}

static void
test_malformed(void **st)
{
	static const struct {
		const char *bytes;
		size_t len;
	} bad[] = {
	    {"", 0},                            // empty
	    {"\xc1", 1},                        // never-used byte
	    {"\xdd\xff\xff\xff\xff", 5},        // array claims 4G items
	    {"\xdf\x7f\xff\xff\xff", 5},        // map claims 2G pairs
	    {"\xdb\xff\xff\xff\xff" "ab", 7},   // str longer than the input
	    {"\xc6\x00\x00\x10\x00", 5},        // bin longer than the input
	    {"\x92\x01", 2},                    // truncated array
	    {"\x81\xa1k", 3},                   // map key without a value
	    {"\x01\x02", 2},                    // trailing bytes
	    {"\xcf\x00\x00", 3},                // truncated uint64
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wire_doc *d = NULL;
		IDN_FAIL(wire_doc_parse(bad[i].bytes, bad[i].len, &d),
		    IDN_EPROTO);
		assert_null(d);
	}
	// Nesting deeper than the limit is refused.
	uint8_t deep[WIRE_MAX_DEPTH + 4];
	memset(deep, 0x91, sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = 0x01;
	wire_doc *d = NULL;
	IDN_FAIL(wire_doc_parse(deep, sizeof(deep), &d), IDN_EPROTO);
	// A valid map missing envelope fields is refused by the envelope.
	wire_env e;
	IDN_FAIL(wire_env_decode("\x80", 1, &d, &e), IDN_EPROTO);
}

static void
test_key_text(void **st)
{
	uint8_t key[WIRE_KEY_BYTES], back[WIRE_KEY_BYTES];
	char hex[65];
	wire_keygen(key);
	wire_key_format(key, hex);
	IDN_PASS(wire_key_parse(hex, strlen(hex), back));
	assert_memory_equal(key, back, sizeof(key));
	IDN_FAIL(wire_key_parse("abc", 3, back), IDN_EINVAL);
	hex[5] = 'z';
	IDN_FAIL(wire_key_parse(hex, 64, back), IDN_EINVAL);
}

// Replays the fuzz corpus (tests/corpus/wire/*) through the decoders.
static void
test_corpus(void **st)
{
	const char *src = getenv("IDUNNO_SOURCE_DIR");
	char *list = NULL;
	// meson always sets it; a skip() would count as a failure there.
	assert_non_null(src);
	assert_int_equal(idn_test_sh(&list, "ls '%s/tests/corpus/wire' "
	    "2>/dev/null", src), 0);
	int files = 0;
	for (char *name = strtok(list, "\n"); name; name = strtok(NULL, "\n")) {
		char *path;
		core_buf b = {0};
		assert_true(asprintf(&path, "%s/tests/corpus/wire/%s", src,
		    name) > 0);
		IDN_PASS(core_file_read(path, 1 << 20, &b));
		extern int wire_fuzz_one(const uint8_t *data, size_t len);
		wire_fuzz_one(b.data, b.len);
		core_buf_free(&b);
		free(path);
		files++;
	}
	free(list);
	assert_true(files > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_scalars),
	    cmocka_unit_test(test_envelope_and_mac),
	    cmocka_unit_test(test_known_answers),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_key_text),
	    cmocka_unit_test(test_corpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
