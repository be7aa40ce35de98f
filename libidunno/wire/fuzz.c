// SPDX-License-Identifier: MIT
// fuzz.c: one entry that pushes arbitrary bytes through every decoder, for
// the libFuzzer target and the corpus regression test.
#include "wire/member_msg.h"
#include "wire/wire.h"

int wire_fuzz_one(const uint8_t *data, size_t len);

int
wire_fuzz_one(const uint8_t *data, size_t len)
{
	static const uint8_t key[WIRE_KEY_BYTES] = {1};
	const uint8_t *p;
	size_t n;
	wire_doc *d;
	wire_env env;
	(void) wire_open(key, data, len, &p, &n);
	if (wire_env_decode(data, len, &d, &env) == IDN_OK) {
		idn_member m[16];
		size_t k;
		(void) member_msg_get(wire_get(env.body, "g"), m, 16, &k);
		wire_doc_free(d);
	}
	if (wire_doc_parse(data, len, &d) == IDN_OK) {
		idn_member *m;
		size_t k;
		if (member_msg_get_alloc(wire_doc_root(d), 64, &m, &k) ==
		    IDN_OK) {
			idn_free(m);
		}
		wire_doc_free(d);
	}
	return 0;
}
