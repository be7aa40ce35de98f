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

// A frame of nonce 00 01 .. 0f with the given 16-byte tag over payload:
// wire_open must accept it as is and refuse it with any bit of the tag
// flipped.
static void
check_frame(const uint8_t *key, const uint8_t tag[16], const void *payload,
    size_t len)
{
	core_buf frame = {0};
	uint8_t nonce[16];
	for (int i = 0; i < 16; i++) {
		nonce[i] = (uint8_t) i;
	}
	IDN_PASS(core_buf_append(&frame, nonce, 16));
	IDN_PASS(core_buf_append(&frame, tag, 16));
	IDN_PASS(core_buf_append(&frame, payload, len));
	const uint8_t *p;
	size_t n;
	IDN_PASS(wire_open(key, frame.data, frame.len, &p, &n));
	assert_int_equal(n, len);
	assert_memory_equal(p, payload, len);
	for (int bit = 0; bit < 128; bit += 7) {
		frame.data[16 + bit / 8] ^= (uint8_t) (1u << (bit % 8));
		IDN_FAIL(wire_open(key, frame.data, frame.len, &p, &n),
		    IDN_EAUTH);
		frame.data[16 + bit / 8] ^= (uint8_t) (1u << (bit % 8));
	}
	core_buf_free(&frame);
}

// Known answers, from the specifications rather than from this code: the
// MAC is a 16-byte nonce, then Poly1305 (RFC 8439) of the payload under
// the key BLAKE2b(nonce, key = cluster key, 32 bytes) (RFC 7693), as
// Python's hashlib and cryptography compute them; the encoding
// MessagePack's.
static void
test_known_answers(void **st)
{
	static const uint8_t tag_want[16] = {0x6f, 0xae, 0x23, 0xd7, 0xbc,
	    0x86, 0x7c, 0xad, 0x40, 0xb0, 0x24, 0x0e, 0x87, 0xf5, 0x2f, 0x2b};
	uint8_t key[WIRE_KEY_BYTES];
	memset(key, 0x0b, sizeof(key));
	check_frame(key, tag_want, "Hi There", 8);
	// Two seals of the same payload differ (fresh nonces) and both open.
	core_buf f1 = {0}, f2 = {0};
	IDN_PASS(wire_seal(key, "Hi There", 8, &f1));
	IDN_PASS(wire_seal(key, "Hi There", 8, &f2));
	assert_int_equal(f1.len, 32 + 8);
	assert_memory_not_equal(f1.data, f2.data, 32);
	assert_memory_equal(f1.data + 32, "Hi There", 8);
	const uint8_t *p;
	size_t n;
	IDN_PASS(wire_open(key, f2.data, f2.len, &p, &n));
	core_buf_free(&f1);
	core_buf_free(&f2);
	// {"a": 1, "b": "xy", "c": 2^40, "d": -1, "e": [true, nil]}
	static const uint8_t pack_want[] = {0x85, 0xa1, 'a', 0x01, 0xa1, 'b',
	    0xa2, 'x', 'y', 0xa1, 'c', 0xcf, 0, 0, 0x01, 0, 0, 0, 0, 0, 0xa1,
	    'd', 0xff, 0xa1, 'e', 0x92, 0xc3, 0xc0};
	wire_wr *w;
	const uint8_t *b;
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
	// tag under the key of 32 0x0b bytes (computed with Python's hashlib
	// and cryptography, and the MessagePack specification).
	static const uint8_t env_want[] = {0x88, 0xa1, 't', 0xa1, 'a', 0xa1,
	    'v', 0x02, 0xa4, 'f', 'r', 'o', 'm', 0xa1, 'f', 0xa2, 't', 'o',
	    0xa1, 'd', 0xa2, 'r', 'c', 0x05, 0xa2, 't', 's', 0x01, 0xa1, 'n',
	    0x02, 0xa1, 'b', 0xc0};
	static const uint8_t env_tag[16] = {0x10, 0x39, 0xcf, 0x11, 0xc9,
	    0x68, 0xe8, 0xad, 0x2a, 0xa4, 0xcd, 0x64, 0xbb, 0x7f, 0xe4, 0x49};
	wire_env h = {.type = "a", .from = "f", .to = "d", .rc = 5,
	    .ts_ms = 1, .nonce = 2};
	core_buf env = {0};
	IDN_PASS(wire_env_write(&h, NULL, 0, &env));
	assert_int_equal(env.len, sizeof(env_want));
	assert_memory_equal(env.data, env_want, env.len);
	check_frame(key, env_tag, env.data, env.len);
	core_buf_free(&env);
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
	assert_int_equal(th_sh(&list, "ls '%s/tests/corpus/wire' "
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
