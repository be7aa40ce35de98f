// SPDX-License-Identifier: MIT
// sdfs.h: the replicated, versioned distributed file system, seen from a
// client handle (the `idunno` tool, or a job inside a node).
#ifndef IDUNNO_SDFS_H
#define IDUNNO_SDFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <idunno/base.h>
#include <idunno/membership.h>
#include <idunno/client.h>

#ifdef __cplusplus
extern "C" {
#endif

// Every function here may be called from several threads at once, on one
// client or on several; each call blocks until it is done.

// Every file is held by this many nodes (all live nodes when fewer).
#define IDN_SDFS_REPLICAS 4
// Longest SDFS name in bytes, without the NUL.
#define IDN_SDFS_NAME_MAX 1024
// Files move in chunks of this size; no node holds a whole file in memory.
#define IDN_SDFS_CHUNK_BYTES (1u << 20)
// Each replica keeps this many newest versions of a file.
#define IDN_SDFS_KEEP_VERSIONS 8
// Content checksum: BLAKE2b with this many bytes of output.
#define IDN_SDFS_SUM_BYTES 32

// A version of a file. Version numbers are assigned by the file's primary
// replica, start at 1 and grow with every put or delete of that name (a
// put that failed may leave a gap).
typedef struct idn_sdfs_version {
	uint64_t version;
	uint64_t size_bytes;
	uint64_t mtime_ms; // wall clock when the version was written
	uint8_t sum[IDN_SDFS_SUM_BYTES];
} idn_sdfs_version;

// A node that holds (some versions of) a file, as `ls` reports it.
typedef struct idn_sdfs_holder {
	char id[IDN_ID_MAX];
	char addr[IDN_ADDR_MAX];
	uint64_t newest;  // newest version it has committed (0: none)
	bool replica;     // in the file's current replica set
} idn_sdfs_holder;

// What `ls` knows about a name: holders, versions (newest first) and
// whether fewer than IDN_SDFS_REPLICAS live holders have the newest version.
typedef struct idn_sdfs_info {
	const char *name;
	uint64_t newest;
	size_t nholders;
	idn_sdfs_holder *holders;
	size_t nversions;
	idn_sdfs_version *versions;
	int replicas_wanted;  // IDN_SDFS_REPLICAS, or live nodes when fewer
	int replicas_have;    // live holders of the newest version
	bool under_replicated;
} idn_sdfs_info;

// One line of `store` or `ls-prefix`: a name and its newest version.
typedef struct idn_sdfs_entry {
	const char *name;
	uint64_t newest;
	uint64_t size_bytes;
	uint32_t nversions;   // versions held (store) or known (ls-prefix)
	bool deleted;         // newest is a delete (store only)
} idn_sdfs_entry;

// idn_sdfs_name_error returns NULL if name is a valid SDFS name, else a
// static English reason (empty, too long, absolute, "." or ".." segment,
// empty segment, control character). Valid names are relative paths of
// 1..IDN_SDFS_NAME_MAX bytes made of segments separated by '/'.
IDN_API const char *idn_sdfs_name_error(const char *name);

// idn_sdfs_put_file stores the local file at path under name as a new
// version, streamed in chunks. Returns once every replica has the bytes on
// disk. *version (may be NULL) receives the version number. IDN_EINVAL bad
// name, IDN_ENOENT / IDN_EPERM local file, IDN_EUNAVAIL replicas could not
// be reached, IDN_EEXIST the version number was also given to a concurrent
// put while the file's primary changed, and the source could not be read
// again to retry (a pipe). Caller keeps all arguments.
IDN_API int idn_sdfs_put_file(idn_client *c, const char *path,
    const char *name, uint64_t *version);
// idn_sdfs_put_buf is idn_sdfs_put_file with the bytes from memory.
IDN_API int idn_sdfs_put_buf(idn_client *c, const char *name,
    const void *data, size_t len, uint64_t *version);

// idn_sdfs_get_file writes version `version` of name (0: the newest) to the
// local path: a temp file beside it, checked against the file's checksum,
// then renamed, so a failed get leaves nothing at path. *got (may be NULL)
// receives the version read. IDN_ENOENT no such name or version (or
// deleted), IDN_ECORRUPT no intact replica, IDN_EPERM path not writable.
IDN_API int idn_sdfs_get_file(idn_client *c, const char *name,
    uint64_t version, const char *path, uint64_t *got);
// idn_sdfs_get_buf reads a version into memory: *data returns memory the
// caller frees with idn_free() (NUL-terminated for convenience, *len
// excludes the NUL). Written only on success.
IDN_API int idn_sdfs_get_buf(idn_client *c, const char *name,
    uint64_t version, void **data, size_t *len, uint64_t *got);

// idn_sdfs_delete removes name: a tombstone version that replicates like a
// write. IDN_ENOENT if there is no such file.
IDN_API int idn_sdfs_delete(idn_client *c, const char *name);

// idn_sdfs_ls tells which nodes hold name and its versions. *out returns
// memory the caller frees with idn_free() (one block). IDN_ENOENT.
IDN_API int idn_sdfs_ls(idn_client *c, const char *name,
    idn_sdfs_info **out);

// idn_sdfs_versions lists the versions of name, newest first, at most
// max (0: all kept). *out returns memory the caller frees with idn_free().
IDN_API int idn_sdfs_versions(idn_client *c, const char *name, size_t max,
    idn_sdfs_version **out, size_t *count);

// idn_sdfs_get_versions writes the newest n versions of name, newest
// first, to one local file. Each version is preceded by the line
// "=== idunno-sdfs NAME version V size S ===" and followed by a newline.
// *count (may be NULL) receives how many were written (fewer than n if
// fewer exist). Atomic like idn_sdfs_get_file.
IDN_API int idn_sdfs_get_versions(idn_client *c, const char *name,
    size_t n, const char *path, size_t *count);

// idn_sdfs_store lists what the client's node holds; idn_sdfs_ls_prefix
// lists the live files of the whole cluster whose names start with prefix
// ("" for all), sorted by name. *out returns memory the caller frees with
// idn_free() (one block).
IDN_API int idn_sdfs_store(idn_client *c, idn_sdfs_entry **out,
    size_t *count);
IDN_API int idn_sdfs_ls_prefix(idn_client *c, const char *prefix,
    idn_sdfs_entry **out, size_t *count);
// idn_sdfs_ls_prefix_report is idn_sdfs_ls_prefix that also says which
// nodes did not answer (their files may be missing from the listing): up
// to IDN_SDFS_MISSING_MAX addresses into missing, their number in
// *nmissing. Large listings come in pages (one message each).
#define IDN_SDFS_MISSING_MAX 64
IDN_API int idn_sdfs_ls_prefix_report(idn_client *c, const char *prefix,
    idn_sdfs_entry **out, size_t *count,
    char (*missing)[IDN_ADDR_MAX], size_t *nmissing);

// idn_sdfs_sum_hex formats a checksum as 64 hex digits and a NUL.
IDN_API void idn_sdfs_sum_hex(const uint8_t sum[IDN_SDFS_SUM_BYTES],
    char hex[2 * IDN_SDFS_SUM_BYTES + 1]);

#ifdef __cplusplus
}
#endif
#endif
