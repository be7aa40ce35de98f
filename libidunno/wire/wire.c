// SPDX-License-Identifier: MIT
// wire.c: the msgpack encoder/decoder and the structural pre-check that
// makes decoding hostile bytes safe. The only file with msgpack.h besides
// its siblings in this folder.
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "wire/wire.h"

struct wire_wr {
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int err;
};

int
wire_wr_new(wire_wr **out)
{
	wire_wr *w = core_alloc(sizeof(*w));
	if (w == NULL) {
		return IDN_ENOMEM;
	}
	msgpack_sbuffer_init(&w->sb);
	msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
	*out = w;
	return IDN_OK;
}

void
wire_wr_free(wire_wr *w)
{
	if (w != NULL) {
		msgpack_sbuffer_destroy(&w->sb);
		free(w);
	}
}

static void
check(wire_wr *w, int rv)
{
	if (rv != 0 && w->err == IDN_OK) {
		w->err = IDN_ENOMEM;
	}
}

void wire_map(wire_wr *w, uint32_t n) { check(w, msgpack_pack_map(&w->pk, n)); }
void wire_arr(wire_wr *w, uint32_t n) { check(w, msgpack_pack_array(&w->pk, n)); }
void wire_nil(wire_wr *w) { check(w, msgpack_pack_nil(&w->pk)); }
void wire_u64(wire_wr *w, uint64_t v) { check(w, msgpack_pack_uint64(&w->pk, v)); }
void wire_i64(wire_wr *w, int64_t v) { check(w, msgpack_pack_int64(&w->pk, v)); }
void wire_f64(wire_wr *w, double v) { check(w, msgpack_pack_double(&w->pk, v)); }

void
wire_bool(wire_wr *w, bool v)
{
	check(w, v ? msgpack_pack_true(&w->pk) : msgpack_pack_false(&w->pk));
}

void
wire_strn(wire_wr *w, const char *s, size_t n)
{
	if (n > UINT32_MAX) {
		w->err = IDN_ETOOBIG;
		return;
	}
	check(w, msgpack_pack_str(&w->pk, n));
	check(w, msgpack_pack_str_body(&w->pk, s, n));
}

void
wire_str(wire_wr *w, const char *s)
{
	s = s ? s : "";
	wire_strn(w, s, strlen(s));
}

void
wire_bin(wire_wr *w, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		w->err = IDN_ETOOBIG;
		return;
	}
	check(w, msgpack_pack_bin(&w->pk, n));
	check(w, msgpack_pack_bin_body(&w->pk, p, n));
}

void
wire_raw(wire_wr *w, const void *p, size_t n)
{
	check(w, msgpack_sbuffer_write(&w->sb, p, n));
}

void wire_kstr(wire_wr *w, const char *k, const char *s) { wire_str(w, k); wire_str(w, s); }
void wire_ku64(wire_wr *w, const char *k, uint64_t v) { wire_str(w, k); wire_u64(w, v); }
void wire_ki64(wire_wr *w, const char *k, int64_t v) { wire_str(w, k); wire_i64(w, v); }
void wire_kf64(wire_wr *w, const char *k, double v) { wire_str(w, k); wire_f64(w, v); }
void wire_kbool(wire_wr *w, const char *k, bool v) { wire_str(w, k); wire_bool(w, v); }

void
wire_kbin(wire_wr *w, const char *k, const void *p, size_t n)
{
	wire_str(w, k);
	wire_bin(w, p, n);
}

int
wire_wr_bytes(wire_wr *w, const uint8_t **data, size_t *len)
{
	*data = (const uint8_t *) w->sb.data;
	*len = w->sb.size;
	return w->err;
}

// Structural walk of msgpack bytes: every container's element count must be
// payable by the bytes left (each element takes at least one byte), so the
// unpacker never allocates for elements that are not there.
typedef struct {
	const uint8_t *p;
	size_t left;
} cursor;

static int
take(cursor *c, size_t n)
{
	if (n > c->left) {
		return IDN_EPROTO;
	}
	c->p += n;
	c->left -= n;
	return IDN_OK;
}

static int
be(cursor *c, size_t n, uint64_t *v)
{
	if (n > c->left) {
		return IDN_EPROTO;
	}
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		*v = (*v << 8) | c->p[i];
	}
	c->p += n;
	c->left -= n;
	return IDN_OK;
}

static int walk(cursor *c, int depth);

static int
walk_items(cursor *c, uint64_t n, int depth)
{
	if (n > c->left) {
		return IDN_EPROTO;
	}
	for (uint64_t i = 0; i < n; i++) {
		int rv = walk(c, depth + 1);
		if (rv != IDN_OK) {
			return rv;
		}
	}
	return IDN_OK;
}

static int
walk(cursor *c, int depth)
{
	uint64_t n;
	if (depth > WIRE_MAX_DEPTH || c->left == 0) {
		return IDN_EPROTO;
	}
	uint8_t b = *c->p;
	take(c, 1);
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
		return IDN_OK;
	}
	if ((b & 0xf0) == 0x80) {
		return walk_items(c, 2u * (b & 0x0f), depth);
	}
	if ((b & 0xf0) == 0x90) {
		return walk_items(c, b & 0x0f, depth);
	}
	if ((b & 0xe0) == 0xa0) {
		return take(c, b & 0x1f);
	}
	switch (b) {
	case 0xc4: case 0xd9:
		return be(c, 1, &n) || take(c, n);
	case 0xc5: case 0xda:
		return be(c, 2, &n) || take(c, n);
	case 0xc6: case 0xdb:
		return be(c, 4, &n) || take(c, n);
	case 0xc7:
		return be(c, 1, &n) || take(c, n + 1);
	case 0xc8:
		return be(c, 2, &n) || take(c, n + 1);
	case 0xc9:
		return be(c, 4, &n) || take(c, n + 1);
	case 0xcc: case 0xd0:
		return take(c, 1);
	case 0xcd: case 0xd1:
		return take(c, 2);
	case 0xca: case 0xce: case 0xd2:
		return take(c, 4);
	case 0xcb: case 0xcf: case 0xd3:
		return take(c, 8);
	case 0xd4:
		return take(c, 2);
	case 0xd5:
		return take(c, 3);
	case 0xd6:
		return take(c, 5);
	case 0xd7:
		return take(c, 9);
	case 0xd8:
		return take(c, 17);
	case 0xdc:
		return be(c, 2, &n) || walk_items(c, n, depth);
	case 0xdd:
		return be(c, 4, &n) || walk_items(c, n, depth);
	case 0xde:
		return be(c, 2, &n) || walk_items(c, 2 * n, depth);
	case 0xdf:
		return be(c, 4, &n) || walk_items(c, 2 * n, depth);
	default: // 0xc1 is never used
		return IDN_EPROTO;
	}
}

// msgpack-c's values point into the bytes they were parsed from, so a
// document keeps its own copy: callers may free their buffer at once.
struct wire_doc {
	msgpack_unpacked up;
	char *bytes;
};

int
wire_doc_parse(const void *buf, size_t len, wire_doc **out)
{
	cursor c = {buf, len};
	if (buf == NULL || walk(&c, 0) != IDN_OK || c.left != 0) {
		return IDN_EPROTO;
	}
	wire_doc *d = core_alloc(sizeof(*d));
	if (d == NULL) {
		return IDN_ENOMEM;
	}
	msgpack_unpacked_init(&d->up);
	if ((d->bytes = malloc(len)) == NULL) {
		wire_doc_free(d);
		return IDN_ENOMEM;
	}
	memcpy(d->bytes, buf, len);
	size_t off = 0;
	msgpack_unpack_return r =
	    msgpack_unpack_next(&d->up, d->bytes, len, &off);
	if (r != MSGPACK_UNPACK_SUCCESS || off != len) {
		wire_doc_free(d);
		return r == MSGPACK_UNPACK_NOMEM_ERROR ? IDN_ENOMEM : IDN_EPROTO;
	}
	*out = d;
	return IDN_OK;
}

void
wire_doc_free(wire_doc *d)
{
	if (d != NULL) {
		msgpack_unpacked_destroy(&d->up);
		free(d->bytes);
		free(d);
	}
}

const wire_val *
wire_doc_root(const wire_doc *d)
{
	return &d->up.data;
}

const wire_val *
wire_get(const wire_val *m, const char *key)
{
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP) {
		return NULL;
	}
	size_t kl = strlen(key);
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
		    memcmp(k->via.str.ptr, key, kl) == 0) {
			return &m->via.map.ptr[i].val;
		}
	}
	return NULL;
}

int
wire_as_u64(const wire_val *v, uint64_t *out)
{
	if (v == NULL || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		return IDN_EPROTO;
	}
	*out = v->via.u64;
	return IDN_OK;
}

int
wire_as_i64(const wire_val *v, int64_t *out)
{
	if (v != NULL && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = v->via.i64;
		return IDN_OK;
	}
	if (v != NULL && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    v->via.u64 <= INT64_MAX) {
		*out = (int64_t) v->via.u64;
		return IDN_OK;
	}
	return IDN_EPROTO;
}

int
wire_as_f64(const wire_val *v, double *out)
{
	int64_t i;
	if (v != NULL && (v->type == MSGPACK_OBJECT_FLOAT64 ||
	                     v->type == MSGPACK_OBJECT_FLOAT32)) {
		*out = v->via.f64;
		return IDN_OK;
	}
	if (wire_as_i64(v, &i) == IDN_OK) {
		*out = (double) i;
		return IDN_OK;
	}
	return IDN_EPROTO;
}

int
wire_as_bool(const wire_val *v, bool *out)
{
	if (v == NULL || v->type != MSGPACK_OBJECT_BOOLEAN) {
		return IDN_EPROTO;
	}
	*out = v->via.boolean;
	return IDN_OK;
}

int
wire_as_str(const wire_val *v, const char **p, size_t *n)
{
	if (v == NULL || v->type != MSGPACK_OBJECT_STR) {
		return IDN_EPROTO;
	}
	*p = v->via.str.ptr;
	*n = v->via.str.size;
	return IDN_OK;
}

int
wire_as_bin(const wire_val *v, const uint8_t **p, size_t *n)
{
	if (v == NULL || v->type != MSGPACK_OBJECT_BIN) {
		return IDN_EPROTO;
	}
	*p = (const uint8_t *) v->via.bin.ptr;
	*n = v->via.bin.size;
	return IDN_OK;
}

int
wire_as_arr(const wire_val *v, size_t *n)
{
	if (v == NULL || v->type != MSGPACK_OBJECT_ARRAY) {
		return IDN_EPROTO;
	}
	*n = v->via.array.size;
	return IDN_OK;
}

const wire_val *
wire_at(const wire_val *a, size_t i)
{
	if (a == NULL || a->type != MSGPACK_OBJECT_ARRAY ||
	    i >= a->via.array.size) {
		return NULL;
	}
	return &a->via.array.ptr[i];
}

const wire_val *
wire_field(const wire_val *m, size_t i)
{
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP || i >= m->via.map.size) {
		return NULL;
	}
	return &m->via.map.ptr[i].val;
}

bool
wire_is_nil(const wire_val *v)
{
	return v == NULL || v->type == MSGPACK_OBJECT_NIL;
}

int
wire_dup_str(const wire_val *v, size_t max_len, char **out)
{
	const char *p;
	size_t n;
	if (wire_as_str(v, &p, &n) != IDN_OK || n > max_len ||
	    memchr(p, '\0', n) != NULL) {
		return IDN_EPROTO;
	}
	char *s = core_strndup(p, n);
	if (s == NULL) {
		return IDN_ENOMEM;
	}
	*out = s;
	return IDN_OK;
}

int
wire_copy_str(const wire_val *v, char *dst, size_t cap)
{
	const char *p;
	size_t n;
	if (wire_as_str(v, &p, &n) != IDN_OK || n >= cap ||
	    memchr(p, '\0', n) != NULL) {
		return IDN_EPROTO;
	}
	memcpy(dst, p, n);
	dst[n] = '\0';
	return IDN_OK;
}

int
wire_get_u64(const wire_val *m, const char *k, uint64_t *out)
{
	return wire_as_u64(wire_get(m, k), out);
}

int
wire_get_i64(const wire_val *m, const char *k, int64_t *out)
{
	return wire_as_i64(wire_get(m, k), out);
}

int
wire_get_str(const wire_val *m, const char *k, char *dst, size_t cap)
{
	return wire_copy_str(wire_get(m, k), dst, cap);
}

int
wire_get_bin(const wire_val *m, const char *k, const uint8_t **p, size_t *n)
{
	return wire_as_bin(wire_get(m, k), p, n);
}
