// SPDX-License-Identifier: MIT
// sdfs_msg.c: encoding and hostile-safe decoding of SDFS records.
#include <stdlib.h>
#include <string.h>

#include "sdfs/sdfs_msg.h"

uint32_t
sdfs_nchunks(uint64_t size, uint32_t csize)
{
	if (csize == 0) {
		return 0;
	}
	// Not (size + csize - 1) / csize: that wraps for sizes near 2^64.
	uint64_t n = size / csize + (size % csize != 0);
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t) n;
}

int
sdfs_next_version(uint64_t newest, uint64_t reserved, uint64_t *out)
{
	uint64_t top = newest > reserved ? newest : reserved;
	if (top >= SDFS_VER_MAX) {
		return IDN_ETOOBIG;
	}
	*out = top + 1;
	return IDN_OK;
}

void
sdfs_vmeta_put(wire_wr *w, const sdfs_vmeta *m, bool with_csums)
{
	bool cs = with_csums && (m->csums != NULL || m->nchunks == 0);
	wire_map(w, cs ? 7 : 6);
	wire_ku64(w, "ver", m->ver);
	wire_ku64(w, "size", m->size);
	wire_ku64(w, "mtime", m->mtime_ms);
	wire_ku64(w, "csize", m->csize);
	wire_kbool(w, "tomb", m->tomb);
	wire_kbin(w, "sum", m->sum, sizeof(m->sum));
	if (cs) {
		const uint8_t *cs = m->nchunks ? m->csums :
		    (const uint8_t *) "";
		wire_kbin(w, "csums", cs,
		    (size_t) m->nchunks * SDFS_CSUM_BYTES);
	}
}

int
sdfs_vmeta_get(const wire_val *v, sdfs_vmeta *m, bool with_csums)
{
	uint64_t csize;
	const uint8_t *p;
	size_t n;
	memset(m, 0, sizeof(*m));
	if (wire_get_u64(v, "ver", &m->ver) != IDN_OK ||
	    wire_get_u64(v, "size", &m->size) != IDN_OK ||
	    wire_get_u64(v, "mtime", &m->mtime_ms) != IDN_OK ||
	    wire_get_u64(v, "csize", &csize) != IDN_OK ||
	    wire_as_bool(wire_get(v, "tomb"), &m->tomb) != IDN_OK ||
	    wire_get_bin(v, "sum", &p, &n) != IDN_OK ||
	    n != sizeof(m->sum) || csize == 0 || csize > SDFS_CHUNK_MAX ||
	    m->ver == 0 || m->ver > SDFS_VER_MAX ||
	    (m->tomb && m->size != 0) ||
	    m->size / csize >= UINT32_MAX) {
		return IDN_EPROTO;
	}
	memcpy(m->sum, p, n);
	m->csize = (uint32_t) csize;
	m->nchunks = sdfs_nchunks(m->size, m->csize);
	if (!with_csums) {
		return IDN_OK;
	}
	if (wire_get_bin(v, "csums", &p, &n) != IDN_OK ||
	    n != (uint64_t) m->nchunks * SDFS_CSUM_BYTES) {
		return IDN_EPROTO;
	}
	if ((m->csums = malloc(n ? n : 1)) == NULL) {
		return IDN_ENOMEM;
	}
	memcpy(m->csums, p, n);
	return IDN_OK;
}

void
sdfs_vmeta_clear(sdfs_vmeta *m)
{
	free(m->csums);
	m->csums = NULL;
}

void
sdfs_vmeta_put_arr(wire_wr *w, const sdfs_vmeta *m, size_t n)
{
	wire_arr(w, (uint32_t) n);
	for (size_t i = 0; i < n; i++) {
		sdfs_vmeta_put(w, &m[i], false);
	}
}

int
sdfs_vmeta_get_arr(const wire_val *arr, size_t max, sdfs_vmeta **out,
    size_t *n)
{
	size_t count;
	if (wire_as_arr(arr, &count) != IDN_OK || count > max) {
		return IDN_EPROTO;
	}
	sdfs_vmeta *m = core_alloc(sizeof(*m) * count);
	if (m == NULL) {
		return IDN_ENOMEM;
	}
	for (size_t i = 0; i < count; i++) {
		if (sdfs_vmeta_get(wire_at(arr, i), &m[i], false) != IDN_OK) {
			free(m);
			return IDN_EPROTO;
		}
	}
	*out = m;
	*n = count;
	return IDN_OK;
}

void
sdfs_entry_put_arr(wire_wr *w, const sdfs_entry *e, size_t n)
{
	wire_arr(w, (uint32_t) n);
	for (size_t i = 0; i < n; i++) {
		wire_map(w, 5);
		wire_kstr(w, "name", e[i].name);
		wire_ku64(w, "newest", e[i].newest);
		wire_ku64(w, "size", e[i].size);
		wire_ku64(w, "nvers", e[i].nvers);
		wire_kbool(w, "tomb", e[i].tomb);
	}
}

void
sdfs_entry_free_arr(sdfs_entry *e, size_t n)
{
	for (size_t i = 0; e != NULL && i < n; i++) {
		free(e[i].name);
	}
	free(e);
}

int
sdfs_entry_get_arr(const wire_val *arr, size_t max, sdfs_entry **out,
    size_t *n)
{
	size_t count;
	if (wire_as_arr(arr, &count) != IDN_OK || count > max) {
		return IDN_EPROTO;
	}
	sdfs_entry *e = core_alloc(sizeof(*e) * count);
	if (e == NULL) {
		return IDN_ENOMEM;
	}
	int rv = IDN_OK;
	for (size_t i = 0; i < count && rv == IDN_OK; i++) {
		const wire_val *v = wire_at(arr, i);
		uint64_t nv;
		rv = wire_dup_str(wire_get(v, "name"), IDN_SDFS_NAME_MAX,
		    &e[i].name);
		if (rv == IDN_OK &&
		    (wire_get_u64(v, "newest", &e[i].newest) != IDN_OK ||
		        wire_get_u64(v, "size", &e[i].size) != IDN_OK ||
		        wire_get_u64(v, "nvers", &nv) != IDN_OK ||
		        nv > UINT32_MAX ||
		        wire_as_bool(wire_get(v, "tomb"), &e[i].tomb) !=
		            IDN_OK)) {
			rv = IDN_EPROTO;
		}
		e[i].nvers = (uint32_t) nv;
	}
	if (rv != IDN_OK) {
		sdfs_entry_free_arr(e, count);
		return rv;
	}
	*out = e;
	*n = count;
	return IDN_OK;
}

void
sdfs_holder_put_arr(wire_wr *w, const idn_sdfs_holder *h, size_t n)
{
	wire_arr(w, (uint32_t) n);
	for (size_t i = 0; i < n; i++) {
		wire_map(w, 4);
		wire_kstr(w, "id", h[i].id);
		wire_kstr(w, "addr", h[i].addr);
		wire_ku64(w, "newest", h[i].newest);
		wire_kbool(w, "replica", h[i].replica);
	}
}

int
sdfs_holder_get_arr(const wire_val *arr, size_t max, idn_sdfs_holder **out,
    size_t *n)
{
	size_t count;
	if (wire_as_arr(arr, &count) != IDN_OK || count > max) {
		return IDN_EPROTO;
	}
	idn_sdfs_holder *h = core_alloc(sizeof(*h) * count);
	if (h == NULL) {
		return IDN_ENOMEM;
	}
	for (size_t i = 0; i < count; i++) {
		const wire_val *v = wire_at(arr, i);
		if (wire_get_str(v, "id", h[i].id, sizeof(h[i].id)) ||
		    wire_get_str(v, "addr", h[i].addr, sizeof(h[i].addr)) ||
		    wire_get_u64(v, "newest", &h[i].newest) ||
		    wire_as_bool(wire_get(v, "replica"), &h[i].replica)) {
			free(h);
			return IDN_EPROTO;
		}
	}
	*out = h;
	*n = count;
	return IDN_OK;
}

void
sdfs_offer_put_arr(wire_wr *w, const sdfs_offer *o, size_t n)
{
	wire_arr(w, (uint32_t) n);
	for (size_t i = 0; i < n; i++) {
		bool sums = o[i].tags != NULL && o[i].mts != NULL;
		wire_map(w, sums ? 4 : 2);
		wire_kstr(w, "name", o[i].name);
		wire_str(w, "vers");
		wire_arr(w, (uint32_t) o[i].nvers);
		for (size_t j = 0; j < o[i].nvers; j++) {
			wire_u64(w, o[i].vers[j]);
		}
		if (sums) {
			wire_str(w, "tags");
			wire_arr(w, (uint32_t) o[i].nvers);
			for (size_t j = 0; j < o[i].nvers; j++) {
				wire_u64(w, o[i].tags[j]);
			}
			wire_str(w, "mts");
			wire_arr(w, (uint32_t) o[i].nvers);
			for (size_t j = 0; j < o[i].nvers; j++) {
				wire_u64(w, o[i].mts[j]);
			}
		}
	}
}

uint64_t
sdfs_sum_tag(const uint8_t sum[IDN_SDFS_SUM_BYTES], bool tomb)
{
	uint64_t t = 0;
	for (int i = 0; i < 8; i++) {
		t = t << 8 | sum[i];
	}
	return (t & ~(uint64_t) 1) | (tomb ? 1u : 0u);
}

bool
sdfs_put_first(uint64_t mt_a, uint64_t tag_a, uint64_t mt_b, uint64_t tag_b)
{
	return mt_a != mt_b ? mt_a < mt_b : tag_a < tag_b;
}

// Reads an optional array of exactly n u64 under key k into *out.
static int
get_u64s(const wire_val *v, const char *k, size_t n, uint64_t **out)
{
	const wire_val *a = wire_get(v, k);
	size_t na;
	*out = NULL;
	if (a == NULL) {
		return IDN_OK;
	}
	if (wire_as_arr(a, &na) != IDN_OK || na != n) {
		return IDN_EPROTO;
	}
	if ((*out = core_alloc(sizeof(uint64_t) * (n ? n : 1))) == NULL) {
		return IDN_ENOMEM;
	}
	int rv = IDN_OK;
	for (size_t j = 0; rv == IDN_OK && j < n; j++) {
		rv = wire_as_u64(wire_at(a, j), &(*out)[j]);
	}
	return rv;
}

void
sdfs_offer_free_arr(sdfs_offer *o, size_t n)
{
	for (size_t i = 0; o != NULL && i < n; i++) {
		free(o[i].name);
		free(o[i].vers);
		free(o[i].tags);
		free(o[i].mts);
	}
	free(o);
}

int
sdfs_offer_get_arr(const wire_val *arr, size_t max, sdfs_offer **out,
    size_t *n)
{
	size_t count;
	if (wire_as_arr(arr, &count) != IDN_OK || count > max) {
		return IDN_EPROTO;
	}
	sdfs_offer *o = core_alloc(sizeof(*o) * count);
	if (o == NULL) {
		return IDN_ENOMEM;
	}
	int rv = IDN_OK;
	for (size_t i = 0; i < count && rv == IDN_OK; i++) {
		const wire_val *v = wire_at(arr, i);
		const wire_val *vs = wire_get(v, "vers");
		size_t nv;
		rv = wire_dup_str(wire_get(v, "name"), IDN_SDFS_NAME_MAX,
		    &o[i].name);
		if (rv == IDN_OK && (wire_as_arr(vs, &nv) != IDN_OK ||
		                        nv > 4 * IDN_SDFS_KEEP_VERSIONS)) {
			rv = IDN_EPROTO;
		}
		if (rv == IDN_OK &&
		    (o[i].vers = core_alloc(sizeof(uint64_t) * nv)) == NULL) {
			rv = IDN_ENOMEM;
		}
		for (size_t j = 0; rv == IDN_OK && j < nv; j++) {
			rv = wire_as_u64(wire_at(vs, j), &o[i].vers[j]);
			o[i].nvers = j + 1;
		}
		if (rv == IDN_OK) {
			rv = get_u64s(v, "tags", nv, &o[i].tags);
		}
		if (rv == IDN_OK) {
			rv = get_u64s(v, "mts", nv, &o[i].mts);
		}
		if (rv == IDN_OK && (o[i].tags == NULL) != (o[i].mts == NULL)) {
			rv = IDN_EPROTO;
		}
	}
	if (rv != IDN_OK) {
		sdfs_offer_free_arr(o, count);
		return rv;
	}
	*out = o;
	*n = count;
	return IDN_OK;
}
