// SPDX-License-Identifier: MIT
// wire_fuzz.c: one entry that pushes arbitrary bytes through every
// message decoder, for the libFuzzer target and the corpus regression test.
#include "fuzz.h"

#include "membership/member_msg.h"
#include "sdfs/sdfs_msg.h"
#include "wire/wire.h"

#define MAX_ITEMS 64

// Every typed decoder on one value; whatever they accept is freed again.
static void
decode_all(const wire_val *v)
{
	size_t n;
	idn_member *m;
	idn_member one;
	int ev;
	sdfs_vmeta meta;
	sdfs_vmeta *metas;
	sdfs_entry *e;
	idn_sdfs_holder *h;
	sdfs_offer *o;
	if (member_msg_get_alloc(v, MAX_ITEMS, &m, &n) == IDN_OK) {
		idn_free(m);
	}
	(void) member_msg_event_get(v, &ev, &one);
	if (sdfs_vmeta_get(v, &meta, true) == IDN_OK) {
		sdfs_vmeta_clear(&meta);
	}
	if (sdfs_vmeta_get_arr(v, MAX_ITEMS, &metas, &n) == IDN_OK) {
		idn_free(metas);
	}
	if (sdfs_entry_get_arr(v, MAX_ITEMS, &e, &n) == IDN_OK) {
		sdfs_entry_free_arr(e, n);
	}
	if (sdfs_holder_get_arr(v, MAX_ITEMS, &h, &n) == IDN_OK) {
		idn_free(h);
	}
	if (sdfs_offer_get_arr(v, MAX_ITEMS, &o, &n) == IDN_OK) {
		sdfs_offer_free_arr(o, n);
	}
}

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
		decode_all(env.body);
		wire_doc_free(d);
	}
	if (wire_doc_parse(data, len, &d) == IDN_OK) {
		// The root and each field of a map root: bodies carry their
		// records one level down ({"g": [...]}, {"meta": {...}}).
		const wire_val *root = wire_doc_root(d);
		decode_all(root);
		const wire_val *v;
		for (size_t i = 0; (v = wire_field(root, i)) != NULL; i++) {
			decode_all(v);
		}
		wire_doc_free(d);
	}
	return 0;
}
