// SPDX-License-Identifier: MIT
// cache.c: the local store's listings of name folders, kept in memory.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sdfs/store_int.h"

#define CACHE_BUCKETS 4096
// A folder changed less than this long ago is not cached: a change in the
// same tick of the file system's clock would leave its mtime as it was.
#define CACHE_SETTLE_NS 100000000LL

// A name folder's versions (metas without checksums) as last read:
// anti-entropy lists every name every round, and reading each folder and
// meta again cost half of a busy worker's CPU. Every change the store
// makes drops the entry. Changes made behind its back (a copy truncated
// or a meta replaced on disk) are seen within CACHE_TRUST_MS: after that
// a listing checks the folder's mtime and inode and each data file's
// size again (and the scrub and every read check the bytes).
typedef struct centry {
	struct centry *next;
	char key[33];
	char *name;
	struct timespec mtime;
	ino_t ino;
	uint64_t checked_ms;
	sdfs_vmeta *v;
	size_t n;
} centry;

struct sdfs_cache {
	pthread_mutex_t lock; // taken innermost (inside the store's)
	centry *b[CACHE_BUCKETS];
	// Bumped by every drop: a listing read from disk is cached only if
	// no change dropped its bucket meanwhile (it may predate the change).
	uint32_t gen[CACHE_BUCKETS];
	uint64_t trust_ms;
};

static size_t
bucket(const char *key)
{
	return strtoul((char[9]){key[0], key[1], key[2], key[3], key[4],
	    key[5], key[6], key[7], 0}, NULL, 16) % CACHE_BUCKETS;
}

uint32_t
sdfs_cache_gen(sdfs_cache *c, const char *key)
{
	core_lock(&c->lock);
	uint32_t g = c->gen[bucket(key)];
	core_unlock(&c->lock);
	return g;
}

static centry **
slot(sdfs_cache *c, const char *key)
{
	centry **pp = &c->b[bucket(key)];
	while (*pp != NULL && strcmp((*pp)->key, key) != 0) {
		pp = &(*pp)->next;
	}
	return pp;
}

static void
centry_free(centry *e)
{
	if (e != NULL) {
		free(e->name);
		free(e->v);
		free(e);
	}
}

void
sdfs_cache_drop(sdfs_cache *c, const char *key)
{
	core_lock(&c->lock);
	c->gen[bucket(key)]++;
	centry **pp = slot(c, key), *e = *pp;
	if (e != NULL) {
		*pp = e->next;
	}
	core_unlock(&c->lock);
	centry_free(e);
}

bool
sdfs_cache_get(sdfs_cache *c, const char *key, const struct stat *sb,
    const char *name, char **name_out, sdfs_vmeta **v, size_t *n)
{
	core_lock(&c->lock);
	centry *e = *slot(c, key);
	bool hit = e != NULL && (name == NULL || strcmp(e->name, name) == 0) &&
	    (sb == NULL ? idn_clock_ms() < e->checked_ms + c->trust_ms :
	    e->ino == sb->st_ino && e->mtime.tv_sec == sb->st_mtim.tv_sec &&
	    e->mtime.tv_nsec == sb->st_mtim.tv_nsec);
	*v = NULL;
	if (hit && e->n > 0) {
		*v = core_alloc(e->n * sizeof(**v));
		hit = *v != NULL;
		if (hit) {
			memcpy(*v, e->v, e->n * sizeof(**v));
		}
	}
	if (hit && name_out != NULL) {
		hit = (*name_out = core_strdup(e->name)) != NULL;
	}
	*n = hit ? e->n : 0;
	core_unlock(&c->lock);
	if (!hit) {
		free(*v);
		*v = NULL;
	}
	return hit;
}

void
sdfs_cache_checked(sdfs_cache *c, const char *key)
{
	core_lock(&c->lock);
	centry *e = *slot(c, key);
	if (e != NULL) {
		e->checked_ms = idn_clock_ms();
	}
	core_unlock(&c->lock);
}

void
sdfs_cache_put(sdfs_cache *c, const char *key, uint32_t gen,
    const struct stat *sb, const char *name, const sdfs_vmeta *v, size_t n)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long long age = (long long) (now.tv_sec - sb->st_mtim.tv_sec) *
	    1000000000LL + (now.tv_nsec - sb->st_mtim.tv_nsec);
	if (age < CACHE_SETTLE_NS) {
		return;
	}
	centry *e = core_alloc(sizeof(*e));
	if (e == NULL || (e->name = core_strdup(name)) == NULL ||
	    (n > 0 && (e->v = core_alloc(n * sizeof(*v))) == NULL)) {
		centry_free(e);
		return;
	}
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->mtime = sb->st_mtim;
	e->ino = sb->st_ino;
	e->checked_ms = idn_clock_ms();
	e->n = n;
	if (n > 0) {
		memcpy(e->v, v, n * sizeof(*v));
	}
	core_lock(&c->lock);
	centry **pp = slot(c, key), *old = NULL;
	if (c->gen[bucket(key)] == gen) {
		old = *pp;
		e->next = old != NULL ? old->next : NULL;
		*pp = e;
		e = NULL;
	}
	core_unlock(&c->lock);
	centry_free(old);
	centry_free(e);
}
int
sdfs_cache_open(uint64_t trust_ms, sdfs_cache **out)
{
	sdfs_cache *c = core_alloc(sizeof(*c));
	if (c == NULL) {
		return IDN_ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->trust_ms = trust_ms;
	*out = c;
	return IDN_OK;
}

void
sdfs_cache_close(sdfs_cache *c)
{
	if (c == NULL) {
		return;
	}
	for (size_t i = 0; i < CACHE_BUCKETS; i++) {
		while (c->b[i] != NULL) {
			centry *e = c->b[i];
			c->b[i] = e->next;
			centry_free(e);
		}
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}
