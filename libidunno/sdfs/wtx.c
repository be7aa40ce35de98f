// SPDX-License-Identifier: MIT
// wtx.c: writing a version into the local store: through a temp file,
// checksummed chunk by chunk, then fsync and rename, so that a crash never
// leaves a half-written version; retention of the newest versions.
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
unquarantine_locked(sdfs_store *st, const char *name, uint64_t ver)
{
	static const char *const ext[] = {"meta.bad", "data.bad"};
	for (size_t i = 0; i < CORE_ARRAY_LEN(ext); i++) {
		char *p = sdfs_store_path(st, name, ver, ext[i]);
		if (p != NULL) {
			unlink(p);
		}
		free(p);
	}
}

int
sdfs_wtx_begin(sdfs_store *st, const char *name, uint64_t ver,
    sdfs_wtx **out)
{
	sdfs_wtx *tx = core_alloc(sizeof(*tx));
	if (tx == NULL) {
		return IDN_ENOMEM;
	}
	core_lock(&st->lock);
	uint64_t seq = ++st->seq;
	core_unlock(&st->lock);
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
	if (sdfs_store_list_versions(st, name, true, &v, &n) != IDN_OK) {
		return;
	}
	bool tomb_seen = false;
	for (size_t i = 0; i < n; i++) {
		if (i >= IDN_SDFS_KEEP_VERSIONS || tomb_seen) {
			sdfs_store_drop_locked(st, name, v[i].ver);
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
	char *dir = sdfs_store_dir(st, tx->name);
	char *np = dir ? core_asprintf("%s/name", dir) : NULL;
	char *dp = sdfs_store_path(st, tx->name, tx->ver, "data");
	char *mp = sdfs_store_path(st, tx->name, tx->ver, "meta");
	if (np == NULL || dp == NULL || mp == NULL ||
	    wire_wr_new(&w) != IDN_OK) {
		rv = IDN_ENOMEM;
		goto out;
	}
	sdfs_vmeta_put(w, &meta, true);
	if ((rv = wire_wr_bytes(w, &mb, &ml)) != IDN_OK) {
		goto out;
	}
	core_lock(&st->lock);
	if (access(np, F_OK) == 0 && !sdfs_store_holds(dir, tx->name)) {
		core_logf(st->lg, IDN_LOG_WARN, "sdfs: '%s' shares its folder "
		    "key with another name; version %" PRIu64 " refused",
		    tx->name, tx->ver);
		rv = IDN_EEXIST;
		core_unlock(&st->lock);
		goto out;
	}
	sdfs_vmeta old;
	if (sdfs_store_read_meta(mp, &old, false) == IDN_OK) {
		rv = memcmp(old.sum, meta.sum, sizeof(old.sum)) == 0 &&
		        old.tomb == meta.tomb ? IDN_OK : IDN_EEXIST;
		core_unlock(&st->lock);
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
	sdfs_store_forget(st, tx->name);
	if (rv == IDN_OK) {
		unquarantine_locked(st, tx->name, tx->ver);
		retain_locked(st, tx->name);
	} else {
		sdfs_store_drop_locked(st, tx->name, tx->ver);
	}
	core_unlock(&st->lock);
out:
	wire_wr_free(w);
	free(dir);
	free(np);
	free(dp);
	free(mp);
	sdfs_wtx_abort(tx);
	return rv;
}
