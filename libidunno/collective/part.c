// SPDX-License-Identifier: MIT
// part.c: the layout of an allreduce's buffer into segments and parts,
// and the coll.part message (pure functions, no I/O).
#include <stdlib.h>
#include <string.h>

#include "collective/coll_int.h"

uint64_t
coll_seg_off(uint64_t n, uint32_t world, uint32_t k)
{
	// n <= COLL_N_MAX and k <= COLL_WORLD_MAX: no overflow.
	return n * k / world;
}

uint64_t
coll_seg_parts(const coll_shape *s, uint32_t k)
{
	uint64_t len = coll_seg_off(s->n, s->world, k + 1) -
	    coll_seg_off(s->n, s->world, k);
	return len / s->cf + (len % s->cf != 0);
}

uint64_t
coll_max_parts(const coll_shape *s)
{
	uint64_t m = 0;
	for (uint32_t k = 0; k < s->world; k++) {
		m = CORE_MAX(m, coll_seg_parts(s, k));
	}
	return m;
}

uint32_t
coll_phases(const coll_shape *s)
{
	return s->algo == COLL_ALGO_RING ? 2 * (s->world - 1) : 2;
}

bool
coll_is_add(const coll_shape *s, uint32_t ph)
{
	return s->algo == COLL_ALGO_RING ? ph + 1 < s->world : ph == 0;
}

// The segment a part carries. Ring: in phase p rank src sends segment
// src - p to src + 1 (reduce-scatter for p < world - 1: after it, rank r
// holds the sum of segment r + 1; then all-gather). Direct: phase 0
// sends segment dst to its owner dst, phase 1 the owner's sum back.
static bool
part_seg(const coll_shape *s, uint32_t src, uint32_t dst, uint32_t ph,
    uint32_t *seg)
{
	uint32_t w = s->world;
	if (src >= w || dst >= w || src == dst || ph >= coll_phases(s)) {
		return false;
	}
	if (s->algo == COLL_ALGO_RING) {
		if (dst != (src + 1) % w) {
			return false;
		}
		*seg = (uint32_t) ((src + (uint64_t) w * 2 - ph) % w);
		return true;
	}
	*seg = ph == 0 ? dst : src;
	return true;
}

bool
coll_region(const coll_shape *s, uint32_t src, uint32_t dst, uint32_t ph,
    uint64_t ck, uint64_t *off, uint64_t *len)
{
	uint32_t seg;
	if (!part_seg(s, src, dst, ph, &seg) || ck >= coll_seg_parts(s, seg)) {
		return false;
	}
	uint64_t a = coll_seg_off(s->n, s->world, seg);
	uint64_t b = coll_seg_off(s->n, s->world, seg + 1);
	*off = a + ck * s->cf;
	*len = CORE_MIN((uint64_t) s->cf, b - *off);
	return true;
}

void
coll_counts(const coll_shape *s, uint32_t rank, uint64_t *sends,
    uint64_t *recvs)
{
	uint32_t w = s->world, seg;
	*sends = *recvs = 0;
	for (uint32_t ph = 0; ph < coll_phases(s); ph++) {
		// The ring's peers are the neighbours; direct's, everyone.
		for (uint32_t k = 1; k < w; k++) {
			if (s->algo == COLL_ALGO_RING && k > 1) {
				break;
			}
			if (part_seg(s, rank, (rank + k) % w, ph, &seg)) {
				*sends += coll_seg_parts(s, seg);
			}
			if (part_seg(s, (rank + w - k) % w, rank, ph, &seg)) {
				*recvs += coll_seg_parts(s, seg);
			}
		}
	}
}

bool
coll_job_ok(const char *job)
{
	size_t n = job != NULL ? strlen(job) : 0;
	if (n == 0 || n > COLL_JOB_MAX) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = job[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		        (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
		        ch == '-')) {
			return false;
		}
	}
	return true;
}

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define LE_HOST 1
#else
#define LE_HOST 0
#endif

static inline float
load_le(const uint8_t *p)
{
	uint32_t u;
	float f;
	memcpy(&u, p, 4);
	if (!LE_HOST) {
		u = __builtin_bswap32(u);
	}
	memcpy(&f, &u, 4);
	return f;
}

void
coll_add_le(float *dst, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dst[i] = dst[i] + load_le(src + 4 * i);
	}
}

void
coll_copy_le(float *dst, const uint8_t *src, size_t n)
{
	if (LE_HOST) {
		memcpy(dst, src, n * 4);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		dst[i] = load_le(src + 4 * i);
	}
}

void
coll_part_put(wire_wr *w, const coll_part *p, const float *data)
{
	wire_map(w, 12);
	wire_kstr(w, "job", p->job);
	wire_ku64(w, "gen", p->gen);
	wire_ku64(w, "seq", p->seq);
	wire_ku64(w, "algo", p->shape.algo);
	wire_ku64(w, "n", p->shape.n);
	wire_ku64(w, "w", p->shape.world);
	wire_ku64(w, "cf", p->shape.cf);
	wire_ku64(w, "src", p->src);
	wire_ku64(w, "dst", p->dst);
	wire_ku64(w, "ph", p->ph);
	wire_ku64(w, "ck", p->ck);
	if (LE_HOST) {
		wire_kbin(w, "d", data, p->len * 4);
		return;
	}
	// Big-endian hosts swap into a scratch copy first.
	uint32_t *tmp = core_alloc(p->len * 4 + 1);
	if (tmp == NULL) {
		wire_kbin(w, "d", NULL, SIZE_MAX); // a sticky error
		return;
	}
	for (uint64_t i = 0; i < p->len; i++) {
		uint32_t u;
		memcpy(&u, &data[i], 4);
		tmp[i] = __builtin_bswap32(u);
	}
	wire_kbin(w, "d", tmp, p->len * 4);
	free(tmp);
}

static int
get_u32(const wire_val *m, const char *k, uint64_t max, uint32_t *out)
{
	uint64_t v;
	if (wire_get_u64(m, k, &v) != IDN_OK || v > max) {
		return IDN_EPROTO;
	}
	*out = (uint32_t) v;
	return IDN_OK;
}

int
coll_part_get(const wire_val *body, coll_part *p)
{
	size_t dlen;
	memset(p, 0, sizeof(*p));
	if (wire_get_str(body, "job", p->job, sizeof(p->job)) != IDN_OK ||
	    !coll_job_ok(p->job) ||
	    wire_get_u64(body, "gen", &p->gen) != IDN_OK ||
	    wire_get_u64(body, "seq", &p->seq) != IDN_OK ||
	    get_u32(body, "algo", COLL_ALGO_DIRECT, &p->shape.algo) ||
	    p->shape.algo == COLL_ALGO_AUTO ||
	    wire_get_u64(body, "n", &p->shape.n) != IDN_OK ||
	    p->shape.n > COLL_N_MAX ||
	    get_u32(body, "w", COLL_WORLD_MAX, &p->shape.world) ||
	    p->shape.world < 2 ||
	    get_u32(body, "cf", COLL_CHUNK_MAX / 4, &p->shape.cf) ||
	    p->shape.cf < COLL_CHUNK_MIN / 4 ||
	    get_u32(body, "src", COLL_WORLD_MAX, &p->src) ||
	    get_u32(body, "dst", COLL_WORLD_MAX, &p->dst) ||
	    get_u32(body, "ph", 2 * COLL_WORLD_MAX, &p->ph) ||
	    wire_get_u64(body, "ck", &p->ck) != IDN_OK ||
	    wire_get_bin(body, "d", &p->data, &dlen) != IDN_OK ||
	    !coll_region(&p->shape, p->src, p->dst, p->ph, p->ck, &p->off,
	        &p->len) ||
	    dlen != p->len * 4) {
		return IDN_EPROTO;
	}
	return IDN_OK;
}
