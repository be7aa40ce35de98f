// SPDX-License-Identifier: MIT
// sdfs_msg.h: SDFS records on the wire and on disk: version metadata,
// listings, holders, and the anti-entropy "have"/"lack" lists. Message
// bodies are maps; docs/SDFS.md lists every type and its fields.
#ifndef IDN_WIRE_SDFS_MSG_H
#define IDN_WIRE_SDFS_MSG_H

#include <idunno/sdfs.h>

#include "wire/wire.h"

#define SDFS_CSUM_BYTES 16           // per-chunk BLAKE2b
#define SDFS_CHUNK_MAX (4u << 20)    // largest chunk size accepted
#define SDFS_LIST_MAX 100000         // most entries in one listing

// One version of a file as a replica holds it. csums (nchunks *
// SDFS_CSUM_BYTES bytes) is owned and may be NULL when not loaded.
typedef struct sdfs_vmeta {
	uint64_t ver;
	uint64_t size;
	uint64_t mtime_ms;
	uint32_t csize;
	uint32_t nchunks;
	bool tomb;
	uint8_t sum[IDN_SDFS_SUM_BYTES];
	uint8_t *csums;
} sdfs_vmeta;

// Number of chunks of a file of size bytes in chunks of csize (at most
// UINT32_MAX; a meta whose size needs more is refused on decoding).
uint32_t sdfs_nchunks(uint64_t size, uint32_t csize);

// The highest version number; the next after it is refused, not wrapped.
#define SDFS_VER_MAX (UINT64_MAX - 1)
// The version after max(newest, reserved): IDN_ETOOBIG past SDFS_VER_MAX.
int sdfs_next_version(uint64_t newest, uint64_t reserved, uint64_t *out);

// Writes m as a map {ver, size, mtime, csize, tomb, sum[, csums]}.
void sdfs_vmeta_put(wire_wr *w, const sdfs_vmeta *m, bool with_csums);
// Reads a map written by sdfs_vmeta_put into *m (csums allocated when
// with_csums). Checks csize, the sum length, and that csums has exactly
// one checksum per chunk. IDN_EPROTO otherwise.
int sdfs_vmeta_get(const wire_val *v, sdfs_vmeta *m, bool with_csums);
void sdfs_vmeta_clear(sdfs_vmeta *m);
void sdfs_vmeta_put_arr(wire_wr *w, const sdfs_vmeta *m, size_t n);
// Reads at most max metas (without csums) into a new array the caller
// frees with idn_free().
int sdfs_vmeta_get_arr(const wire_val *arr, size_t max, sdfs_vmeta **out,
    size_t *n);

// A name and what is known of it (store, ls-prefix, anti-entropy).
typedef struct sdfs_entry {
	char *name;       // owned
	uint64_t newest;  // newest version (a tombstone counts)
	uint64_t size;    // of the newest version
	uint32_t nvers;
	bool tomb;        // newest is a tombstone
} sdfs_entry;

void sdfs_entry_put_arr(wire_wr *w, const sdfs_entry *e, size_t n);
int sdfs_entry_get_arr(const wire_val *arr, size_t max, sdfs_entry **out,
    size_t *n);
void sdfs_entry_free_arr(sdfs_entry *e, size_t n);

// The holders of a name, as the ls reply carries them.
void sdfs_holder_put_arr(wire_wr *w, const idn_sdfs_holder *h, size_t n);
int sdfs_holder_get_arr(const wire_val *arr, size_t max,
    idn_sdfs_holder **out, size_t *n);

// Anti-entropy: a holder offers {name, vers: [ver...], tags: [tag...],
// mts: [mtime...]}; the replica answers the (name, ver) pairs it lacks,
// and those it holds with other bytes and whose copy wins (`lose`).
// tags and mts (parallel to vers, NULL when the sender left them out)
// say which bytes a version number stands for (sdfs_sum_tag).
typedef struct sdfs_offer {
	char *name;       // owned
	uint64_t *vers;   // owned, newest first
	size_t nvers;
	uint64_t *tags;   // owned, or NULL
	uint64_t *mts;    // owned, or NULL
} sdfs_offer;

// A version's bytes in 64 bits: the first 8 bytes of its sum, the low bit
// saying tombstone (an empty file and a tombstone share a sum).
uint64_t sdfs_sum_tag(const uint8_t sum[IDN_SDFS_SUM_BYTES], bool tomb);
// Two copies of one version number with different bytes: the first put
// (the earlier mtime, then the smaller tag) keeps the number, so every
// node picks the same winner. True if (mt_a, tag_a) wins over b.
bool sdfs_put_first(uint64_t mt_a, uint64_t tag_a, uint64_t mt_b,
    uint64_t tag_b);

void sdfs_offer_put_arr(wire_wr *w, const sdfs_offer *o, size_t n);
int sdfs_offer_get_arr(const wire_val *arr, size_t max, sdfs_offer **out,
    size_t *n);
void sdfs_offer_free_arr(sdfs_offer *o, size_t n);

#endif
