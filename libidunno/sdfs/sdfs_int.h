// SPDX-License-Identifier: MIT
// sdfs_int.h: private to libidunno/sdfs/: names, ring placement and the
// local replica store. Pure of networking, so unit tests reach them.
#ifndef IDN_SDFS_INT_H
#define IDN_SDFS_INT_H

#include <idunno/sdfs.h>

#include "core/core.h"
#include "sdfs/sdfs_msg.h"

// Names (name.c). sdfs_name_error returns NULL for a valid name, else a
// static reason; sdfs_name_key is the 32-hex-digit directory of a name.
const char *sdfs_name_error(const char *name);
void sdfs_name_key(const char *name, char key[33]);

// Ring placement (ring.c): consistent hashing with SDFS_VNODES tokens per
// member. Every node that sees the same members computes the same set.
#define SDFS_VNODES 32

typedef struct sdfs_ring sdfs_ring;

// Builds the ring of members[n] (the array is borrowed until free).
int sdfs_ring_build(const idn_member *members, size_t n, sdfs_ring **out);
void sdfs_ring_free(sdfs_ring *r);
// The first `want` distinct members clockwise from the name's position,
// as indexes into the members array; idx[0] is the primary. *count is
// CORE_MIN(want, n).
void sdfs_ring_lookup(const sdfs_ring *r, const char *name, size_t *idx,
    size_t want, size_t *count);

// Local store (store.c). Layout under root:
//   files/<key>/name                 the SDFS name
//   files/<key>/<ver:020>.data       committed bytes of a version
//   files/<key>/<ver:020>.meta       its sdfs_vmeta (commit marker)
//   files/<key>/<ver:020>.*.bad      a damaged copy, kept aside
//   tmp/                             writes in progress (cleared at open)
typedef struct sdfs_store sdfs_store;
typedef struct sdfs_wtx sdfs_wtx;

// trust_ms: how long a cached listing is used without a look at the disk
// (sdfs_limits.cache_trust_ms).
int sdfs_store_open(const char *root, const core_logger *lg,
    uint64_t trust_ms, sdfs_store **out);
void sdfs_store_close(sdfs_store *st);

// Versions of name held here, newest first, without csums (*out freed
// with idn_free; *n may be 0). IDN_OK with 0 versions if none.
int sdfs_store_versions(sdfs_store *st, const char *name, sdfs_vmeta **out,
    size_t *n);
// The meta of one version, with csums (sdfs_vmeta_clear it). IDN_ENOENT.
int sdfs_store_meta(sdfs_store *st, const char *name, uint64_t ver,
    sdfs_vmeta *out);
// Reads chunk idx of a version into buf (cap >= csize) and checks it
// against its checksum: IDN_ECORRUPT on a mismatch or short file.
int sdfs_store_read_chunk(sdfs_store *st, const char *name,
    const sdfs_vmeta *m, uint32_t idx, uint8_t *buf, size_t *len);
// Re-reads a whole version and checks every chunk and the file sum.
int sdfs_store_verify(sdfs_store *st, const char *name, uint64_t ver);
// Removes one version, or a whole name.
int sdfs_store_drop_version(sdfs_store *st, const char *name, uint64_t ver);
// Moves a damaged version aside (<ver>.meta.bad, .data.bad): no longer
// listed or served, removed when a good copy of it is committed here.
int sdfs_store_quarantine(sdfs_store *st, const char *name, uint64_t ver);
int sdfs_store_drop_name(sdfs_store *st, const char *name);
// Names held here starting with prefix, sorted by name.
int sdfs_store_list(sdfs_store *st, const char *prefix, sdfs_entry **out,
    size_t *n);

// Writing a version: begin, write the chunks in order (re-sending the last
// chunk is harmless), commit. Commit checks size and sum against *m,
// fsyncs, and renames into place; committing a version already held with
// the same sum is IDN_OK, with another sum IDN_EEXIST. A tombstone is a
// version with m->tomb and no data.
int sdfs_wtx_begin(sdfs_store *st, const char *name, uint64_t ver,
    sdfs_wtx **out);
// csum (may be NULL) is the sender's checksum of a whole chunk (or of the
// short last one) written at a chunk boundary: checked, IDN_ECORRUPT.
int sdfs_wtx_write(sdfs_wtx *tx, uint64_t off, const void *data,
    size_t len, const uint8_t *csum);
uint64_t sdfs_wtx_written(const sdfs_wtx *tx);
int sdfs_wtx_commit(sdfs_wtx *tx, const sdfs_vmeta *m); // frees tx
void sdfs_wtx_abort(sdfs_wtx *tx);                       // frees tx

// The checksums SDFS uses (BLAKE2b): of a chunk (128 bits), and of a
// whole file: BLAKE2b-256 over its chunks' checksums in order, so that
// every byte is hashed once on each node it passes through.
void sdfs_chunk_sum(const void *data, size_t len,
    uint8_t out[SDFS_CSUM_BYTES]);
void sdfs_file_sum(const uint8_t *csums, uint32_t nchunks,
    uint8_t out[IDN_SDFS_SUM_BYTES]);
typedef struct sdfs_hash {
	_Alignas(64) uint8_t opaque[384];
	size_t outlen;
} sdfs_hash;
void sdfs_hash_init(sdfs_hash *h); // IDN_SDFS_SUM_BYTES of output
void sdfs_hash_init_len(sdfs_hash *h, size_t outlen);
void sdfs_hash_update(sdfs_hash *h, const void *data, size_t len);
// Writes h's output length (as initialised) to out.
void sdfs_hash_final(sdfs_hash *h, uint8_t *out);

// A limit as set (sdfs_limits): dflt when set is 0 or above it, as a
// setting may only lower a built-in limit.
static inline uint64_t
sdfs_limit(uint64_t set, uint64_t dflt)
{
	return set > 0 && set < dflt ? set : dflt;
}

// A writer for a request or reply body; NULL when out of memory. Both the
// client side (api.c) and the node side use it.
static inline wire_wr *
sdfs_body_new(void)
{
	wire_wr *w = NULL;
	return wire_wr_new(&w) == IDN_OK ? w : NULL;
}

#endif
