// SPDX-License-Identifier: MIT
// store.c: a node's replica store on local disk: versions of files, each
// with its metadata and per-chunk checksums, written through a temp file,
// fsync and rename, so a crash never leaves a half-written version.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sdfs/sdfs_int.h"

#define META_MAX_BYTES (16u << 20)
#define CACHE_BUCKETS 4096
// A folder changed less than this long ago is not cached: a change in the
// same tick of the file system's clock would leave its mtime as it was.
#define CACHE_SETTLE_NS 100000000LL

// How long a cached listing is used without a look at the disk.
#define CACHE_TRUST_MS 10000

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

struct sdfs_store {
	char *files;
	char *tmp;
	const core_logger *lg;
	pthread_mutex_t clock; // the cache's, taken innermost
	centry *cache[CACHE_BUCKETS];
	// Bumped by every drop: a listing read from disk is cached only if
	// no change dropped its bucket meanwhile (it may predate the change).
	uint32_t cgen[CACHE_BUCKETS];
	uint64_t trust_ms; // CACHE_TRUST_MS, less in tests
	// Guards the shape of files/: directory creation, commit renames,
	// drops and retention. Chunk reads and temp-file writes run unlocked:
	// committed files never change, they are only replaced or removed.
	pthread_mutex_t lock;
	uint64_t seq;
};

struct sdfs_wtx {
	sdfs_store *st;
	char *name;
	uint64_t ver;
	int fd;
	char *path;
	uint64_t written;
	uint64_t last_off;
	uint32_t csize;
	sdfs_hash chunk;    // the chunk being filled, on the unaligned path
	uint32_t chunk_fill;
	bool short_done;    // a short (last) chunk was written
	core_buf csums;
};

static char *
name_dir(sdfs_store *st, const char *name)
{
	char key[33];
	sdfs_name_key(name, key);
	return core_asprintf("%s/%s", st->files, key);
}

static char *
ver_path(sdfs_store *st, const char *name, uint64_t ver, const char *ext)
{
	char key[33];
	sdfs_name_key(name, key);
	return core_asprintf("%s/%s/%020" PRIu64 ".%s", st->files, key, ver,
	    ext);
}

// A name's folder is found by a 128-bit hash of the name: the name it
// holds is compared too, so two names that collide never share versions.
// A folder without its name file yet holds no version either.
static bool
holds_name(const char *dir, const char *name)
{
	char *np = core_asprintf("%s/name", dir);
	core_buf b = {0};
	bool ok = np != NULL &&
	    core_file_read(np, IDN_SDFS_NAME_MAX, &b) == IDN_OK &&
	    b.len == strlen(name) && memcmp(b.data, name, b.len) == 0;
	core_buf_free(&b);
	free(np);
	return ok;
}

static size_t
cache_bucket(const char *key)
{
	return strtoul((char[9]){key[0], key[1], key[2], key[3], key[4],
	    key[5], key[6], key[7], 0}, NULL, 16) % CACHE_BUCKETS;
}

static uint32_t
cache_gen(sdfs_store *st, const char *key)
{
	pthread_mutex_lock(&st->clock);
	uint32_t g = st->cgen[cache_bucket(key)];
	pthread_mutex_unlock(&st->clock);
	return g;
}

static centry **
cache_slot(sdfs_store *st, const char *key)
{
	centry **pp = &st->cache[cache_bucket(key)];
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

static void
cache_drop(sdfs_store *st, const char *key)
{
	pthread_mutex_lock(&st->clock);
	st->cgen[cache_bucket(key)]++;
	centry **pp = cache_slot(st, key), *e = *pp;
	if (e != NULL) {
		*pp = e->next;
	}
	pthread_mutex_unlock(&st->clock);
	centry_free(e);
}

// Folder key's versions if cached for name (NULL: any; *name_out, when
// given, gets a copy of it): with sb NULL, only when checked within
// CACHE_TRUST_MS; else when the folder is as sb describes it (the caller
// then checks the sizes and calls cache_checked).
static bool
cache_get(sdfs_store *st, const char *key, const struct stat *sb,
    const char *name, char **name_out, sdfs_vmeta **v, size_t *n)
{
	pthread_mutex_lock(&st->clock);
	centry *e = *cache_slot(st, key);
	bool hit = e != NULL && (name == NULL || strcmp(e->name, name) == 0) &&
	    (sb == NULL ? idn_clock_ms() < e->checked_ms + st->trust_ms :
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
	pthread_mutex_unlock(&st->clock);
	if (!hit) {
		free(*v);
		*v = NULL;
	}
	return hit;
}

static void
cache_checked(sdfs_store *st, const char *key)
{
	pthread_mutex_lock(&st->clock);
	centry *e = *cache_slot(st, key);
	if (e != NULL) {
		e->checked_ms = idn_clock_ms();
	}
	pthread_mutex_unlock(&st->clock);
}

static void
cache_put(sdfs_store *st, const char *key, uint32_t gen,
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
	pthread_mutex_lock(&st->clock);
	centry **pp = cache_slot(st, key), *old = NULL;
	if (st->cgen[cache_bucket(key)] == gen) {
		old = *pp;
		e->next = old != NULL ? old->next : NULL;
		*pp = e;
		e = NULL;
	}
	pthread_mutex_unlock(&st->clock);
	centry_free(old);
	centry_free(e);
}

// Every cached version's data file still has its size.
static bool
sizes_ok(sdfs_store *st, const char *name, const sdfs_vmeta *v, size_t n)
{
	bool ok = true;
	for (size_t i = 0; i < n && ok; i++) {
		char *dp = v[i].tomb ? NULL : ver_path(st, name, v[i].ver, "data");
		struct stat sb;
		ok = v[i].tomb || (dp != NULL && stat(dp, &sb) == 0 &&
		    (uint64_t) sb.st_size == v[i].size);
		free(dp);
	}
	return ok;
}

// Folder key's listing from the cache (for name; NULL: any, and then
// *name_out gets the name): trusted within the trust time, else checked
// against the folder (*sb, its stat, kept for cache_put) and the data
// files' sizes. False: read it from disk (*exists: the folder is there).
static bool
cached(sdfs_store *st, const char *key, const char *dir, const char *name,
    char **name_out, sdfs_vmeta **v, size_t *n, struct stat *sb,
    bool *exists)
{
	*exists = true;
	if (cache_get(st, key, NULL, name, name_out, v, n)) {
		return true;
	}
	if (stat(dir, sb) != 0) {
		*exists = false;
		cache_drop(st, key);
		return false;
	}
	if (!cache_get(st, key, sb, name, name_out, v, n)) {
		return false;
	}
	if (sizes_ok(st, name ? name : *name_out, *v, *n)) {
		cache_checked(st, key);
		return true;
	}
	free(*v); // a data file changed size: read it all again
	*v = NULL;
	*n = 0;
	if (name_out != NULL) {
		free(*name_out);
		*name_out = NULL;
	}
	cache_drop(st, key);
	return false;
}

static bool
is_names_dir(sdfs_store *st, const char *name)
{
	char *dir = name_dir(st, name);
	bool ok = dir != NULL && holds_name(dir, name);
	free(dir);
	return ok;
}

static int
fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		return core_err_from_errno(errno);
	}
	int rv = fsync(fd) == 0 ? IDN_OK : core_err_from_errno(errno);
	close(fd);
	return rv;
}

// Writes path atomically: a temp beside it, fsync, rename. Called with the
// store lock held, so one temp name per path is enough.
static int
write_file_atomic(const char *path, const void *data, size_t len)
{
	char *tmp = core_asprintf("%s.tmp", path);
	if (tmp == NULL) {
		return IDN_ENOMEM;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rv = fd < 0 ? core_err_from_errno(errno) : IDN_OK;
	if (rv == IDN_OK) {
		rv = core_write_all(fd, data, len);
		if (rv == IDN_OK && fsync(fd) != 0) {
			rv = core_err_from_errno(errno);
		}
		close(fd);
	}
	if (rv == IDN_OK && rename(tmp, path) != 0) {
		rv = core_err_from_errno(errno);
	}
	if (rv != IDN_OK) {
		unlink(tmp);
	}
	free(tmp);
	return rv;
}

static void
clear_dir(const char *path, bool rm_self)
{
	DIR *d = opendir(path);
	if (d == NULL) {
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0) {
			continue;
		}
		char *p = core_asprintf("%s/%s", path, e->d_name);
		if (p != NULL) {
			unlink(p);
			free(p);
		}
	}
	closedir(d);
	if (rm_self) {
		rmdir(path);
	}
}

// Removes files of a name's folder that no commit vouches for: data
// without meta (a crash between the two renames), and stray temps.
static void
clean_name_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		const char *dot = strrchr(e->d_name, '.');
		char *p = NULL;
		if (dot != NULL && strcmp(dot, ".tmp") == 0) {
			p = core_asprintf("%s/%s", dir, e->d_name);
		} else if (dot != NULL && strcmp(dot, ".data") == 0) {
			char *meta = core_asprintf("%s/%.*s.meta", dir,
			    (int) (dot - e->d_name), e->d_name);
			if (meta != NULL && access(meta, F_OK) != 0) {
				p = core_asprintf("%s/%s", dir, e->d_name);
			}
			free(meta);
		}
		if (p != NULL) {
			unlink(p);
			free(p);
		}
	}
	closedir(d);
}

void
sdfs_store_close(sdfs_store *st)
{
	if (st != NULL) {
		for (size_t i = 0; i < CACHE_BUCKETS; i++) {
			while (st->cache[i] != NULL) {
				centry *e = st->cache[i];
				st->cache[i] = e->next;
				centry_free(e);
			}
		}
		pthread_mutex_destroy(&st->clock);
		pthread_mutex_destroy(&st->lock);
		free(st->files);
		free(st->tmp);
		free(st);
	}
}

int
sdfs_store_open(const char *root, const core_logger *lg, sdfs_store **out)
{
	sdfs_store *st = core_alloc(sizeof(*st));
	if (st == NULL) {
		return IDN_ENOMEM;
	}
	pthread_mutex_init(&st->lock, NULL);
	pthread_mutex_init(&st->clock, NULL);
	st->trust_ms = sdfs_limit("IDUNNO_SDFS_CACHE_TRUST_MS",
	    CACHE_TRUST_MS);
	st->lg = lg;
	st->files = core_asprintf("%s/files", root);
	st->tmp = core_asprintf("%s/tmp", root);
	int rv = st->files && st->tmp ? IDN_OK : IDN_ENOMEM;
	if (rv == IDN_OK && ((rv = core_mkdir_p(st->files)) != IDN_OK ||
	                        (rv = core_mkdir_p(st->tmp)) != IDN_OK)) {
		rv = rv == IDN_ENOENT ? IDN_EPERM : rv;
	}
	if (rv != IDN_OK) {
		sdfs_store_close(st);
		return rv;
	}
	clear_dir(st->tmp, false);
	DIR *d = opendir(st->files);
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.') {
			char *p = core_asprintf("%s/%s", st->files, e->d_name);
			if (p != NULL) {
				clean_name_dir(p);
			}
			free(p);
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	*out = st;
	return IDN_OK;
}

static int
read_meta(const char *path, sdfs_vmeta *m, bool with_csums)
{
	core_buf b = {0};
	wire_doc *doc = NULL;
	int rv = core_file_read(path, META_MAX_BYTES, &b);
	if (rv == IDN_OK) {
		rv = wire_doc_parse(b.data, b.len, &doc);
	}
	if (rv == IDN_OK) {
		rv = sdfs_vmeta_get(wire_doc_root(doc), m, with_csums);
		rv = rv == IDN_EPROTO ? IDN_ECORRUPT : rv;
	} else if (rv == IDN_EPROTO) {
		rv = IDN_ECORRUPT;
	}
	wire_doc_free(doc);
	core_buf_free(&b);
	return rv;
}

static int
by_ver_desc(const void *a, const void *b)
{
	const sdfs_vmeta *x = a, *y = b;
	return x->ver < y->ver ? 1 : x->ver > y->ver ? -1 : 0;
}

static void
forget(sdfs_store *st, const char *name)
{
	char key[33];
	sdfs_name_key(name, key);
	cache_drop(st, key);
}

static void
drop_locked(sdfs_store *st, const char *name, uint64_t ver)
{
	forget(st, name);
	char *data = ver_path(st, name, ver, "data");
	char *meta = ver_path(st, name, ver, "meta");
	if (meta != NULL) {
		unlink(meta); // the commit marker goes first
	}
	if (data != NULL) {
		unlink(data);
	}
	free(data);
	free(meta);
}

// A damaged copy is moved aside (<ver>.meta.bad, <ver>.data.bad), not
// removed: it may be the last copy, and a person can still read most of
// it. It is never served or offered; the commit of a good copy of the
// same version removes it.
static void
quarantine_locked(sdfs_store *st, const char *name, uint64_t ver)
{
	static const char *const ext[] = {"meta", "data"};
	forget(st, name);
	for (size_t i = 0; i < CORE_ARRAY_LEN(ext); i++) {
		char *p = ver_path(st, name, ver, ext[i]);
		char *q = p ? core_asprintf("%s.bad", p) : NULL;
		if (q != NULL && rename(p, q) != 0 && errno != ENOENT) {
			unlink(p); // cannot keep it aside: never serve it
		}
		free(p);
		free(q);
	}
}

static void
unquarantine_locked(sdfs_store *st, const char *name, uint64_t ver)
{
	static const char *const ext[] = {"meta.bad", "data.bad"};
	for (size_t i = 0; i < CORE_ARRAY_LEN(ext); i++) {
		char *p = ver_path(st, name, ver, ext[i]);
		if (p != NULL) {
			unlink(p);
		}
		free(p);
	}
}

// Lists versions (unlocked read of the folder; metas are immutable).
// A meta that does not parse, or data whose length is not the meta's, is
// a damaged copy: it is quarantined, so anti-entropy pulls a good one.
// `locked`: the caller holds st->lock (commit's retention), which the drop
// needs and must not take again.
static int
list_versions(sdfs_store *st, const char *name, bool locked,
    sdfs_vmeta **out, size_t *n)
{
	char *dir = name_dir(st, name);
	if (dir == NULL) {
		return IDN_ENOMEM;
	}
	*out = NULL;
	*n = 0;
	char key[33];
	struct stat sb;
	bool exists;
	sdfs_name_key(name, key);
	uint32_t gen = cache_gen(st, key);
	if (cached(st, key, dir, name, NULL, out, n, &sb, &exists) ||
	    !exists) {
		free(dir);
		return IDN_OK;
	}
	DIR *d = opendir(dir);
	if (d == NULL || !holds_name(dir, name)) {
		if (d != NULL) {
			closedir(d);
		}
		free(dir);
		return IDN_OK;
	}
	sdfs_vmeta *v = NULL;
	size_t count = 0, cap = 0;
	int rv = IDN_OK;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && rv == IDN_OK) {
		char *end;
		uint64_t ver = strtoull(e->d_name, &end, 10);
		if (strlen(e->d_name) != 25 || strcmp(end, ".meta") != 0 ||
		    ver == 0) {
			continue;
		}
		char *mp = core_asprintf("%s/%s", dir, e->d_name);
		char *dp = ver_path(st, name, ver, "data");
		sdfs_vmeta m;
		struct stat sb;
		int mrv = mp && dp ? read_meta(mp, &m, false) : IDN_ENOMEM;
		if (mrv == IDN_OK && m.ver == ver && !m.tomb &&
		    (stat(dp, &sb) != 0 || (uint64_t) sb.st_size != m.size)) {
			mrv = IDN_ECORRUPT;
		}
		if (mrv == IDN_OK && m.ver != ver) {
			mrv = IDN_ECORRUPT;
		}
		if (mrv == IDN_ECORRUPT) {
			core_logf(st->lg, IDN_LOG_WARN, "sdfs: damaged copy of "
			    "'%s' version %" PRIu64 " quarantined", name, ver);
			if (!locked) {
				pthread_mutex_lock(&st->lock);
			}
			quarantine_locked(st, name, ver);
			if (!locked) {
				pthread_mutex_unlock(&st->lock);
			}
		} else if (mrv == IDN_OK) {
			if (count == cap) {
				cap = cap ? 2 * cap : 8;
				sdfs_vmeta *nv = core_realloc(v,
				    cap * sizeof(*v));
				if (nv == NULL) {
					rv = IDN_ENOMEM;
				} else {
					v = nv;
				}
			}
			if (rv == IDN_OK) {
				v[count++] = m;
			}
		} else if (mrv != IDN_ENOENT) {
			rv = mrv; // a meta renamed away meanwhile is no error
		}
		free(mp);
		free(dp);
	}
	closedir(d);
	free(dir);
	if (rv != IDN_OK) {
		free(v);
		return rv;
	}
	if (count > 1) {
		qsort(v, count, sizeof(*v), by_ver_desc);
	}
	cache_put(st, key, gen, &sb, name, v, count);
	*out = v;
	*n = count;
	return IDN_OK;
}

int
sdfs_store_versions(sdfs_store *st, const char *name, sdfs_vmeta **out,
    size_t *n)
{
	return list_versions(st, name, false, out, n);
}

int
sdfs_store_meta(sdfs_store *st, const char *name, uint64_t ver,
    sdfs_vmeta *out)
{
	char *mp = ver_path(st, name, ver, "meta");
	if (mp == NULL) {
		return IDN_ENOMEM;
	}
	if (!is_names_dir(st, name)) {
		free(mp);
		return IDN_ENOENT;
	}
	int rv = read_meta(mp, out, true);
	free(mp);
	if (rv == IDN_OK && out->ver != ver) {
		sdfs_vmeta_clear(out);
		rv = IDN_ECORRUPT;
	}
	return rv;
}

int
sdfs_store_read_chunk(sdfs_store *st, const char *name, const sdfs_vmeta *m,
    uint32_t idx, uint8_t *buf, size_t *len)
{
	if (m->tomb || idx >= m->nchunks || m->csums == NULL) {
		return IDN_ENOENT;
	}
	char *dp = ver_path(st, name, m->ver, "data");
	if (dp == NULL) {
		return IDN_ENOMEM;
	}
	int fd = open(dp, O_RDONLY | O_CLOEXEC);
	free(dp);
	if (fd < 0) {
		return core_err_from_errno(errno);
	}
	uint64_t off = (uint64_t) idx * m->csize;
	size_t want = (size_t) CORE_MIN((uint64_t) m->csize, m->size - off);
	size_t got = 0;
	int rv = core_read_full(fd, buf, want, (int64_t) off, &got);
	close(fd);
	if (rv != IDN_OK) {
		return rv;
	}
	uint8_t cs[SDFS_CSUM_BYTES];
	sdfs_chunk_sum(buf, got, cs);
	if (got != want ||
	    memcmp(cs, m->csums + (size_t) idx * SDFS_CSUM_BYTES,
	        SDFS_CSUM_BYTES) != 0) {
		core_logf(st->lg, IDN_LOG_WARN, "sdfs: corrupt chunk %u of "
		    "'%s' version %" PRIu64, idx, name, m->ver);
		return IDN_ECORRUPT;
	}
	*len = got;
	return IDN_OK;
}

int
sdfs_store_verify(sdfs_store *st, const char *name, uint64_t ver)
{
	sdfs_vmeta m;
	int rv = sdfs_store_meta(st, name, ver, &m);
	if (rv != IDN_OK || m.tomb) {
		if (rv == IDN_OK) {
			sdfs_vmeta_clear(&m);
		}
		return rv;
	}
	uint8_t *buf = malloc(m.csize);
	rv = buf ? IDN_OK : IDN_ENOMEM;
	for (uint32_t i = 0; rv == IDN_OK && i < m.nchunks; i++) {
		size_t len;
		rv = sdfs_store_read_chunk(st, name, &m, i, buf, &len);
	}
	if (rv == IDN_OK) {
		uint8_t sum[IDN_SDFS_SUM_BYTES];
		sdfs_file_sum(m.csums, m.nchunks, sum);
		rv = memcmp(sum, m.sum, sizeof(sum)) ? IDN_ECORRUPT : IDN_OK;
	}
	free(buf);
	sdfs_vmeta_clear(&m);
	return rv;
}

int
sdfs_store_drop_version(sdfs_store *st, const char *name, uint64_t ver)
{
	if (!is_names_dir(st, name)) {
		return IDN_OK;
	}
	pthread_mutex_lock(&st->lock);
	drop_locked(st, name, ver);
	pthread_mutex_unlock(&st->lock);
	return IDN_OK;
}

int
sdfs_store_quarantine(sdfs_store *st, const char *name, uint64_t ver)
{
	if (!is_names_dir(st, name)) {
		return IDN_OK;
	}
	pthread_mutex_lock(&st->lock);
	quarantine_locked(st, name, ver);
	pthread_mutex_unlock(&st->lock);
	return IDN_OK;
}

int
sdfs_store_drop_name(sdfs_store *st, const char *name)
{
	char *dir = name_dir(st, name);
	if (dir == NULL) {
		return IDN_ENOMEM;
	}
	if (!holds_name(dir, name)) {
		free(dir);
		return IDN_OK;
	}
	pthread_mutex_lock(&st->lock);
	// Metas first, so a concurrent reader never sees a meta whose data
	// is gone for good.
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		const char *dot = strrchr(e->d_name, '.');
		if (dot != NULL && strcmp(dot, ".meta") == 0) {
			char *p = core_asprintf("%s/%s", dir, e->d_name);
			if (p != NULL) {
				unlink(p);
			}
			free(p);
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	clear_dir(dir, true);
	pthread_mutex_unlock(&st->lock);
	forget(st, name);
	free(dir);
	return IDN_OK;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(((const sdfs_entry *) a)->name,
	    ((const sdfs_entry *) b)->name);
}

int
sdfs_store_list(sdfs_store *st, const char *prefix, sdfs_entry **out,
    size_t *n)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	DIR *d = opendir(st->files);
	if (d == NULL) {
		return core_err_from_errno(errno);
	}
	sdfs_entry *v = NULL;
	size_t count = 0, cap = 0;
	int rv = IDN_OK;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && rv == IDN_OK) {
		if (e->d_name[0] == '.') {
			continue;
		}
		char *dp = core_asprintf("%s/%s", st->files, e->d_name);
		char *name = NULL;
		sdfs_vmeta *vs = NULL;
		size_t nv = 0;
		struct stat sb;
		bool exists;
		bool hit = dp != NULL && strlen(e->d_name) == 32 &&
		    cached(st, e->d_name, dp, NULL, &name, &vs, &nv, &sb,
		        &exists);
		free(dp);
		if (!hit) {
			char *np = core_asprintf("%s/%s/name", st->files,
			    e->d_name);
			core_buf nb = {0};
			if (np != NULL &&
			    core_file_read(np, IDN_SDFS_NAME_MAX, &nb) ==
			    IDN_OK) {
				name = core_strndup((const char *) nb.data,
				    nb.len);
			}
			free(np);
			core_buf_free(&nb);
		}
		if (name == NULL || sdfs_name_error(name) != NULL ||
		    strncmp(name, prefix ? prefix : "", plen) != 0) {
			free(name);
			free(vs);
			continue;
		}
		if ((!hit &&
		        list_versions(st, name, false, &vs, &nv) != IDN_OK) ||
		    nv == 0) {
			free(name);
			continue;
		}
		if (count == cap) {
			cap = cap ? 2 * cap : 16;
			sdfs_entry *ne = core_realloc(v, cap * sizeof(*v));
			if (ne == NULL) {
				free(name);
				free(vs);
				rv = IDN_ENOMEM;
				break;
			}
			v = ne;
		}
		v[count].name = name;
		v[count].newest = vs[0].ver;
		v[count].size = vs[0].size;
		v[count].nvers = (uint32_t) nv;
		v[count].tomb = vs[0].tomb;
		count++;
		free(vs);
	}
	closedir(d);
	if (rv != IDN_OK) {
		sdfs_entry_free_arr(v, count);
		return rv;
	}
	if (count > 1) {
		qsort(v, count, sizeof(*v), by_name);
	}
	*out = v;
	*n = count;
	return IDN_OK;
}

int
sdfs_wtx_begin(sdfs_store *st, const char *name, uint64_t ver,
    sdfs_wtx **out)
{
	sdfs_wtx *tx = core_alloc(sizeof(*tx));
	if (tx == NULL) {
		return IDN_ENOMEM;
	}
	pthread_mutex_lock(&st->lock);
	uint64_t seq = ++st->seq;
	pthread_mutex_unlock(&st->lock);
	tx->st = st;
	tx->ver = ver;
	tx->fd = -1;
	tx->csize = IDN_SDFS_CHUNK_BYTES;
	tx->last_off = UINT64_MAX;
	tx->name = core_strdup(name);
	tx->path = core_asprintf("%s/w%" PRIu64 ".%" PRIu64, st->tmp, seq, ver);
	if (tx->name == NULL || tx->path == NULL) {
		sdfs_wtx_abort(tx);
		return IDN_ENOMEM;
	}
	tx->fd = open(tx->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600);
	if (tx->fd < 0) {
		int rv = core_err_from_errno(errno);
		sdfs_wtx_abort(tx);
		return rv;
	}
	sdfs_hash_init_len(&tx->chunk, SDFS_CSUM_BYTES);
	*out = tx;
	return IDN_OK;
}

uint64_t
sdfs_wtx_written(const sdfs_wtx *tx)
{
	return tx->written;
}

static int
close_chunk(sdfs_wtx *tx)
{
	uint8_t cs[SDFS_CSUM_BYTES];
	sdfs_hash_final(&tx->chunk, cs);
	tx->chunk_fill = 0;
	sdfs_hash_init_len(&tx->chunk, SDFS_CSUM_BYTES);
	return core_buf_append(&tx->csums, cs, sizeof(cs));
}

int
sdfs_wtx_write(sdfs_wtx *tx, uint64_t off, const void *data, size_t len,
    const uint8_t *csum)
{
	if (off == tx->last_off && off + len == tx->written) {
		return IDN_OK; // the last write, sent again
	}
	if (off != tx->written || tx->short_done) {
		return IDN_EINVAL;
	}
	int rv;
	if (tx->chunk_fill == 0 && len <= tx->csize &&
	    (len == tx->csize || csum != NULL)) {
		// One whole chunk (or the short last one): hashed once, both
		// to check the sender's checksum and to keep it.
		uint8_t cs[SDFS_CSUM_BYTES];
		sdfs_chunk_sum(data, len, cs);
		if (csum != NULL && memcmp(cs, csum, sizeof(cs)) != 0) {
			return IDN_ECORRUPT;
		}
		if ((rv = core_write_all(tx->fd, data, len)) != IDN_OK ||
		    (rv = core_buf_append(&tx->csums, cs, sizeof(cs)))) {
			return rv;
		}
		tx->short_done = len < tx->csize;
	} else if (csum != NULL) {
		return IDN_EINVAL; // checked writes are whole chunks
	} else {
		if ((rv = core_write_all(tx->fd, data, len)) != IDN_OK) {
			return rv;
		}
		const uint8_t *p = data;
		size_t left = len;
		while (left > 0 && rv == IDN_OK) {
			size_t take = CORE_MIN(left,
			    (size_t) (tx->csize - tx->chunk_fill));
			sdfs_hash_update(&tx->chunk, p, take);
			tx->chunk_fill += (uint32_t) take;
			p += take;
			left -= take;
			if (tx->chunk_fill == tx->csize) {
				rv = close_chunk(tx);
			}
		}
	}
	tx->last_off = off;
	tx->written += len;
	return rv;
}

void
sdfs_wtx_abort(sdfs_wtx *tx)
{
	if (tx == NULL) {
		return;
	}
	if (tx->fd >= 0) {
		close(tx->fd);
	}
	if (tx->path != NULL) {
		unlink(tx->path);
	}
	free(tx->path);
	free(tx->name);
	core_buf_free(&tx->csums);
	free(tx);
}

// Keeps the IDN_SDFS_KEEP_VERSIONS newest versions, and nothing older
// than the newest tombstone but the tombstone itself.
static void
retain_locked(sdfs_store *st, const char *name)
{
	sdfs_vmeta *v;
	size_t n;
	if (list_versions(st, name, true, &v, &n) != IDN_OK) {
		return;
	}
	bool tomb_seen = false;
	for (size_t i = 0; i < n; i++) {
		if (i >= IDN_SDFS_KEEP_VERSIONS || tomb_seen) {
			drop_locked(st, name, v[i].ver);
		}
		tomb_seen = tomb_seen || v[i].tomb;
	}
	free(v);
}

int
sdfs_wtx_commit(sdfs_wtx *tx, const sdfs_vmeta *m)
{
	sdfs_store *st = tx->st;
	uint8_t sum[IDN_SDFS_SUM_BYTES];
	int rv = IDN_OK;
	if (tx->chunk_fill > 0 && (rv = close_chunk(tx)) != IDN_OK) {
		sdfs_wtx_abort(tx);
		return rv;
	}
	sdfs_file_sum(tx->csums.data, (uint32_t) (tx->csums.len /
	    SDFS_CSUM_BYTES), sum);
	if (m->size != tx->written || m->ver != tx->ver ||
	    (m->tomb && tx->written != 0)) {
		sdfs_wtx_abort(tx);
		return IDN_EINVAL;
	}
	if (memcmp(sum, m->sum, sizeof(sum)) != 0) {
		sdfs_wtx_abort(tx);
		return IDN_ECORRUPT;
	}
	if (fsync(tx->fd) != 0) {
		rv = core_err_from_errno(errno);
		sdfs_wtx_abort(tx);
		return rv;
	}
	close(tx->fd);
	tx->fd = -1;
	sdfs_vmeta meta = *m;
	meta.csize = tx->csize;
	meta.nchunks = sdfs_nchunks(meta.size, meta.csize);
	meta.csums = tx->csums.data;
	if ((size_t) meta.nchunks * SDFS_CSUM_BYTES != tx->csums.len) {
		sdfs_wtx_abort(tx);
		return IDN_EINVAL;
	}
	wire_wr *w = NULL;
	const uint8_t *mb;
	size_t ml;
	char *dir = name_dir(st, tx->name);
	char *np = dir ? core_asprintf("%s/name", dir) : NULL;
	char *dp = ver_path(st, tx->name, tx->ver, "data");
	char *mp = ver_path(st, tx->name, tx->ver, "meta");
	if (np == NULL || dp == NULL || mp == NULL ||
	    wire_wr_new(&w) != IDN_OK) {
		rv = IDN_ENOMEM;
		goto out;
	}
	sdfs_vmeta_put(w, &meta, true);
	if ((rv = wire_wr_bytes(w, &mb, &ml)) != IDN_OK) {
		goto out;
	}
	pthread_mutex_lock(&st->lock);
	if (access(np, F_OK) == 0 && !holds_name(dir, tx->name)) {
		core_logf(st->lg, IDN_LOG_WARN, "sdfs: '%s' shares its folder "
		    "key with another name; version %" PRIu64 " refused",
		    tx->name, tx->ver);
		rv = IDN_EEXIST;
		pthread_mutex_unlock(&st->lock);
		goto out;
	}
	sdfs_vmeta old;
	if (read_meta(mp, &old, false) == IDN_OK) {
		rv = memcmp(old.sum, meta.sum, sizeof(old.sum)) == 0 &&
		        old.tomb == meta.tomb ? IDN_OK : IDN_EEXIST;
		pthread_mutex_unlock(&st->lock);
		goto out;
	}
	if (mkdir(dir, 0700) == 0) {
		// A new name's folder: its entry in files/ must be durable
		// before the version in it is acknowledged.
		if ((rv = write_file_atomic(np, tx->name, strlen(tx->name))) ==
		    IDN_OK) {
			rv = fsync_dir(st->files);
		}
	} else if (errno != EEXIST) {
		rv = core_err_from_errno(errno);
	} else if (access(np, F_OK) != 0) {
		rv = write_file_atomic(np, tx->name, strlen(tx->name));
	}
	// Data first, then the meta that marks the version committed.
	if (rv == IDN_OK && !meta.tomb && rename(tx->path, dp) != 0) {
		rv = core_err_from_errno(errno);
	}
	if (rv == IDN_OK) {
		rv = write_file_atomic(mp, mb, ml);
	}
	if (rv == IDN_OK) {
		rv = fsync_dir(dir);
	}
	forget(st, tx->name);
	if (rv == IDN_OK) {
		unquarantine_locked(st, tx->name, tx->ver);
		retain_locked(st, tx->name);
	} else {
		drop_locked(st, tx->name, tx->ver);
	}
	pthread_mutex_unlock(&st->lock);
out:
	wire_wr_free(w);
	free(dir);
	free(np);
	free(dp);
	free(mp);
	sdfs_wtx_abort(tx);
	return rv;
}
