// SPDX-License-Identifier: MIT
// store_int.h: private to the local store's files: store.c (reading,
// listing, dropping versions), wtx.c (writing them) and cache.c (the
// listings kept in memory). wtx.c calls store.c, which calls cache.c.
#ifndef IDN_SDFS_STORE_INT_H
#define IDN_SDFS_STORE_INT_H

#include <pthread.h>
#include <sys/stat.h>

#include "sdfs/sdfs_int.h"

// How long a cached listing is used without a look at the disk.
#define CACHE_TRUST_MS 10000

// cache.c: each name folder's versions (metas without checksums) as last
// read, keyed by the folder's name key. Thread-safe.
typedef struct sdfs_cache sdfs_cache;

int sdfs_cache_open(uint64_t trust_ms, sdfs_cache **out);
void sdfs_cache_close(sdfs_cache *c);
// The folder's generation, read before a listing from disk: the listing
// is cached (sdfs_cache_put) only if no drop came between.
uint32_t sdfs_cache_gen(sdfs_cache *c, const char *key);
// Forgets a folder's listing (every change to the folder calls it).
void sdfs_cache_drop(sdfs_cache *c, const char *key);
// Folder key's versions if cached for name (NULL: any; *name_out, when
// given, gets a copy of it): with sb NULL, only when checked within the
// trust time; else when the folder is as sb describes it (the caller
// then checks the sizes and calls sdfs_cache_checked).
bool sdfs_cache_get(sdfs_cache *c, const char *key, const struct stat *sb,
    const char *name, char **name_out, sdfs_vmeta **v, size_t *n);
void sdfs_cache_checked(sdfs_cache *c, const char *key);
// Keeps a listing read from disk (*sb: the folder's stat before it),
// unless the folder changed too recently or since gen.
void sdfs_cache_put(sdfs_cache *c, const char *key, uint32_t gen,
    const struct stat *sb, const char *name, const sdfs_vmeta *v, size_t n);

struct sdfs_store {
	char *files;
	char *tmp;
	const core_logger *lg;
	sdfs_cache *cache;
	// Guards the shape of files/: directory creation, commit renames,
	// drops and retention. Chunk reads and temp-file writes run unlocked:
	// committed files never change, they are only replaced or removed.
	pthread_mutex_t lock;
	uint64_t seq;
};

// store.c, for wtx.c. A name's folder and a version's file (ext "data",
// "meta", ...); NULL when out of memory (caller frees).
char *sdfs_store_dir(sdfs_store *st, const char *name);
char *sdfs_store_path(sdfs_store *st, const char *name, uint64_t ver,
    const char *ext);
// Whether folder dir holds name (its name file says so).
bool sdfs_store_holds(const char *dir, const char *name);
// Reads a meta file: IDN_ECORRUPT when it does not parse.
int sdfs_store_read_meta(const char *path, sdfs_vmeta *m, bool with_csums);
// sdfs_store_versions; locked: the caller holds st->lock.
int sdfs_store_list_versions(sdfs_store *st, const char *name, bool locked,
    sdfs_vmeta **out, size_t *n);
// Drops name's cached listing.
void sdfs_store_forget(sdfs_store *st, const char *name);
// Removes a version (st->lock held): its meta first, then its data.
void sdfs_store_drop_locked(sdfs_store *st, const char *name, uint64_t ver);

#endif
