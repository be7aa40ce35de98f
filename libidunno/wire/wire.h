// SPDX-License-Identifier: MIT
// wire.h: msgpack encoding and hostile-safe decoding, the MAC'd frame, and
// the envelope every message travels in. Pure functions, no I/O.
#ifndef IDN_WIRE_H
#define IDN_WIRE_H

#include "core/core.h"

#define WIRE_VERSION 2
#define WIRE_MAC_BYTES 32
#define WIRE_KEY_BYTES 32
#define WIRE_MAX_DEPTH 16

// Encoder. Errors are sticky: check wire_wr_finish's result once.
typedef struct wire_wr wire_wr;

int wire_wr_new(wire_wr **out);
void wire_wr_free(wire_wr *w);
void wire_map(wire_wr *w, uint32_t n);
void wire_arr(wire_wr *w, uint32_t n);
void wire_nil(wire_wr *w);
void wire_bool(wire_wr *w, bool v);
void wire_u64(wire_wr *w, uint64_t v);
void wire_i64(wire_wr *w, int64_t v);
void wire_f64(wire_wr *w, double v);
void wire_str(wire_wr *w, const char *s); // NULL encodes as ""
void wire_strn(wire_wr *w, const char *s, size_t n);
void wire_bin(wire_wr *w, const void *p, size_t n);
// Appends already-encoded msgpack bytes (a nested body).
void wire_raw(wire_wr *w, const void *p, size_t n);
// Keyed shorthands for map fields.
void wire_kstr(wire_wr *w, const char *k, const char *s);
void wire_ku64(wire_wr *w, const char *k, uint64_t v);
void wire_ki64(wire_wr *w, const char *k, int64_t v);
void wire_kf64(wire_wr *w, const char *k, double v);
void wire_kbin(wire_wr *w, const char *k, const void *p, size_t n);
void wire_kbool(wire_wr *w, const char *k, bool v);
// Finishes: returns the sticky error; *data/*len borrow the writer's bytes.
int wire_wr_bytes(wire_wr *w, const uint8_t **data, size_t *len);

// Decoder. A document owns its values; values are borrowed from it.
typedef struct wire_doc wire_doc;
typedef struct msgpack_object wire_val;

// Parses exactly one msgpack object spanning all of buf. Container counts
// are checked against the bytes left and nesting against WIRE_MAX_DEPTH
// before anything is allocated. IDN_EPROTO on anything malformed.
int wire_doc_parse(const void *buf, size_t len, wire_doc **out);
void wire_doc_free(wire_doc *d);
const wire_val *wire_doc_root(const wire_doc *d);

// Typed accessors: IDN_EPROTO if v is NULL or of another type.
const wire_val *wire_get(const wire_val *map, const char *key); // or NULL
int wire_as_u64(const wire_val *v, uint64_t *out);
int wire_as_i64(const wire_val *v, int64_t *out);
int wire_as_f64(const wire_val *v, double *out);
int wire_as_bool(const wire_val *v, bool *out);
int wire_as_str(const wire_val *v, const char **p, size_t *n);
int wire_as_bin(const wire_val *v, const uint8_t **p, size_t *n);
int wire_as_arr(const wire_val *v, size_t *n);
const wire_val *wire_at(const wire_val *arr, size_t i); // NULL if out of range
// The value of a map's i-th field; NULL if not a map or out of range.
const wire_val *wire_field(const wire_val *map, size_t i);
bool wire_is_nil(const wire_val *v);
// Copies a string field into a new NUL-terminated string; refuses embedded
// NULs and strings longer than max_len (IDN_EPROTO).
int wire_dup_str(const wire_val *v, size_t max_len, char **out);
// Copies a string field into dst[cap] (IDN_EPROTO if it does not fit).
int wire_copy_str(const wire_val *v, char *dst, size_t cap);
// Keyed shorthands: a missing key is IDN_EPROTO.
int wire_get_u64(const wire_val *m, const char *k, uint64_t *out);
int wire_get_i64(const wire_val *m, const char *k, int64_t *out);
int wire_get_str(const wire_val *m, const char *k, char *dst, size_t cap);
int wire_get_bin(const wire_val *m, const char *k, const uint8_t **p,
    size_t *n);

// Frames: MAC (a random 16-byte nonce and the Poly1305 tag of the payload
// under a key derived from the cluster key and the nonce, frame.c)
// followed by the payload.
// wire_open verifies and returns the payload slice (IDN_EAUTH on a bad or
// missing MAC).
int wire_seal(const uint8_t key[WIRE_KEY_BYTES], const void *payload,
    size_t len, core_buf *frame);
int wire_open(const uint8_t key[WIRE_KEY_BYTES], const void *frame,
    size_t len, const uint8_t **payload, size_t *plen);
void wire_keygen(uint8_t key[WIRE_KEY_BYTES]);
// Key files hold the key as 64 hex digits.
int wire_key_parse(const char *text, size_t len, uint8_t key[WIRE_KEY_BYTES]);
void wire_key_format(const uint8_t key[WIRE_KEY_BYTES], char hex[65]);

// The envelope: {"t": type, "v": version, "from": sender id, "to":
// destination, "rc": code, "ts": wall clock ms, "n": nonce, "b": body},
// all under the frame's MAC. A request carries rc 0, a fresh random
// nonce and as "to" the destination node's id, or its address
// ("host:port") until the caller has learnt the id; a receiver refuses
// one meant for another node or incarnation, one outside its time window
// and one it has seen (ts, n). A reply carries the handler's code, the
// request's nonce and type, the answering node's id as "from" (unless
// the request named it) and "to" empty; the caller refuses a reply that
// does not answer its request.
typedef struct {
	char type[32];
	uint64_t version;
	char from[96];
	char to[96];
	int64_t rc;
	uint64_t ts_ms;
	uint64_t nonce;
	const wire_val *body; // borrowed from the doc (ignored by the writer)
} wire_env;

// wire_env_write encodes the header h and the body (msgpack bytes, or
// nil when body_len is 0); deterministic, version WIRE_VERSION.
int wire_env_write(const wire_env *h, const void *body, size_t body_len,
    core_buf *out);
// wire_nonce: a random non-zero request nonce.
uint64_t wire_nonce(void);
int wire_env_decode(const void *buf, size_t len, wire_doc **doc,
    wire_env *env);

#endif
