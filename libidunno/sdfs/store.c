// SPDX-License-Identifier: MIT
// store.c: a node's replica store on local disk: versions of files, each
// with its metadata and per-chunk checksums; opening, listing, reading,
// checking and dropping them (wtx.c writes them).
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

#include "sdfs/store_int.h"

#define META_MAX_BYTES (16u << 20)

char *
sdfs_store_dir(sdfs_store *st, const char *name)
{
	char key[33];
	sdfs_name_key(name, key);
	return core_asprintf("%s/%s", st->files, key);
}

char *
sdfs_store_path(sdfs_store *st, const char *name, uint64_t ver,
    const char *ext)
{
	char key[33];
	sdfs_name_key(name, key);
	return core_asprintf("%s/%s/%020" PRIu64 ".%s", st->files, key, ver,
	    ext);
}

// A name's folder is found by a 128-bit hash of the name: the name it
// holds is compared too, so two names that collide never share versions.
// A folder without its name file yet holds no version either.
bool
sdfs_store_holds(const char *dir, const char *name)
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

// Every cached version's data file still has its size.
static bool
sizes_ok(sdfs_store *st, const char *name, const sdfs_vmeta *v, size_t n)
{
	bool ok = true;
	for (size_t i = 0; i < n && ok; i++) {
		char *dp = v[i].tomb ? NULL :
		    sdfs_store_path(st, name, v[i].ver, "data");
		struct stat sb;
		ok = v[i].tomb || (dp != NULL && stat(dp, &sb) == 0 &&
		    (uint64_t) sb.st_size == v[i].size);
		free(dp);
	}
	return ok;
}

// Folder key's listing from the cache (for name; NULL: any, and then
// *name_out gets the name): trusted within the trust time, else checked
// against the folder (*sb, its stat, kept for sdfs_cache_put) and the data
// files' sizes. False: read it from disk (*exists: the folder is there).
static bool
cached(sdfs_store *st, const char *key, const char *dir, const char *name,
    char **name_out, sdfs_vmeta **v, size_t *n, struct stat *sb,
    bool *exists)
{
	*exists = true;
	if (sdfs_cache_get(st->cache, key, NULL, name, name_out, v, n)) {
		return true;
	}
	if (stat(dir, sb) != 0) {
		*exists = false;
		sdfs_cache_drop(st->cache, key);
		return false;
	}
	if (!sdfs_cache_get(st->cache, key, sb, name, name_out, v, n)) {
		return false;
	}
	if (sizes_ok(st, name ? name : *name_out, *v, *n)) {
		sdfs_cache_checked(st->cache, key);
		return true;
	}
	free(*v); // a data file changed size: read it all again
	*v = NULL;
	*n = 0;
	if (name_out != NULL) {
		free(*name_out);
		*name_out = NULL;
	}
	sdfs_cache_drop(st->cache, key);
	return false;
}

static bool
is_names_dir(sdfs_store *st, const char *name)
{
	char *dir = sdfs_store_dir(st, name);
	bool ok = dir != NULL && sdfs_store_holds(dir, name);
	free(dir);
	return ok;
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
		sdfs_cache_close(st->cache);
		pthread_mutex_destroy(&st->lock);
		free(st->files);
		free(st->tmp);
		free(st);
	}
}

int
sdfs_store_open(const char *root, const core_logger *lg, uint64_t trust_ms,
    sdfs_store **out)
{
	sdfs_store *st = core_alloc(sizeof(*st));
	if (st == NULL) {
		return IDN_ENOMEM;
	}
	pthread_mutex_init(&st->lock, NULL);
	st->lg = lg;
	st->files = core_asprintf("%s/files", root);
	st->tmp = core_asprintf("%s/tmp", root);
	int rv = st->files && st->tmp ? IDN_OK : IDN_ENOMEM;
	if (rv == IDN_OK) {
		rv = sdfs_cache_open(sdfs_limit(trust_ms, CACHE_TRUST_MS),
		    &st->cache);
	}
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

int
sdfs_store_read_meta(const char *path, sdfs_vmeta *m, bool with_csums)
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

void
sdfs_store_forget(sdfs_store *st, const char *name)
{
	char key[33];
	sdfs_name_key(name, key);
	sdfs_cache_drop(st->cache, key);
}

void
sdfs_store_drop_locked(sdfs_store *st, const char *name, uint64_t ver)
{
	sdfs_store_forget(st, name);
	char *data = sdfs_store_path(st, name, ver, "data");
	char *meta = sdfs_store_path(st, name, ver, "meta");
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
	sdfs_store_forget(st, name);
	for (size_t i = 0; i < CORE_ARRAY_LEN(ext); i++) {
		char *p = sdfs_store_path(st, name, ver, ext[i]);
		char *q = p ? core_asprintf("%s.bad", p) : NULL;
		if (q != NULL && rename(p, q) != 0 && errno != ENOENT) {
			unlink(p); // cannot keep it aside: never serve it
		}
		free(p);
		free(q);
	}
}

// Lists versions (unlocked read of the folder; metas are immutable).
// A meta that does not parse, or data whose length is not the meta's, is
// a damaged copy: it is quarantined, so anti-entropy pulls a good one.
// `locked`: the caller holds st->lock (commit's retention), which the drop
// needs and must not take again.
int
sdfs_store_list_versions(sdfs_store *st, const char *name, bool locked,
    sdfs_vmeta **out, size_t *n)
{
	char *dir = sdfs_store_dir(st, name);
	if (dir == NULL) {
		return IDN_ENOMEM;
	}
	*out = NULL;
	*n = 0;
	char key[33];
	struct stat sb;
	bool exists;
	sdfs_name_key(name, key);
	uint32_t gen = sdfs_cache_gen(st->cache, key);
	if (cached(st, key, dir, name, NULL, out, n, &sb, &exists) ||
	    !exists) {
		free(dir);
		return IDN_OK;
	}
	DIR *d = opendir(dir);
	if (d == NULL || !sdfs_store_holds(dir, name)) {
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
		char *dp = sdfs_store_path(st, name, ver, "data");
		sdfs_vmeta m;
		struct stat sb;
		int mrv = mp && dp ? sdfs_store_read_meta(mp, &m, false) :
		    IDN_ENOMEM;
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
				core_lock(&st->lock);
			}
			quarantine_locked(st, name, ver);
			if (!locked) {
				core_unlock(&st->lock);
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
	sdfs_cache_put(st->cache, key, gen, &sb, name, v, count);
	*out = v;
	*n = count;
	return IDN_OK;
}

int
sdfs_store_versions(sdfs_store *st, const char *name, sdfs_vmeta **out,
    size_t *n)
{
	return sdfs_store_list_versions(st, name, false, out, n);
}

int
sdfs_store_meta(sdfs_store *st, const char *name, uint64_t ver,
    sdfs_vmeta *out)
{
	char *mp = sdfs_store_path(st, name, ver, "meta");
	if (mp == NULL) {
		return IDN_ENOMEM;
	}
	if (!is_names_dir(st, name)) {
		free(mp);
		return IDN_ENOENT;
	}
	int rv = sdfs_store_read_meta(mp, out, true);
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
	char *dp = sdfs_store_path(st, name, m->ver, "data");
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
	core_lock(&st->lock);
	sdfs_store_drop_locked(st, name, ver);
	core_unlock(&st->lock);
	return IDN_OK;
}

int
sdfs_store_quarantine(sdfs_store *st, const char *name, uint64_t ver)
{
	if (!is_names_dir(st, name)) {
		return IDN_OK;
	}
	core_lock(&st->lock);
	quarantine_locked(st, name, ver);
	core_unlock(&st->lock);
	return IDN_OK;
}

int
sdfs_store_drop_name(sdfs_store *st, const char *name)
{
	char *dir = sdfs_store_dir(st, name);
	if (dir == NULL) {
		return IDN_ENOMEM;
	}
	if (!sdfs_store_holds(dir, name)) {
		free(dir);
		return IDN_OK;
	}
	core_lock(&st->lock);
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
	core_unlock(&st->lock);
	sdfs_store_forget(st, name);
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
		if ((!hit && sdfs_store_list_versions(st, name, false, &vs,
		                 &nv) != IDN_OK) ||
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