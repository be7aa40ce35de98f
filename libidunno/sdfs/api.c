// SPDX-License-Identifier: MIT
// api.c: the public SDFS operations over an idn_client: streaming put and
// get (one chunk in memory at a time), listings, and their retries.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rpc/rpc.h"
#include "sdfs/sdfs_int.h"

#define BEGIN_DEADLINE_MS 60000
#define COMMIT_DEADLINE_MS 600000
#define CHUNK_TRIES 4

static int
check_name(const char *name)
{
	return name == NULL || sdfs_name_error(name) ? IDN_EINVAL : IDN_OK;
}

// A source of bytes: a file descriptor, or memory.
typedef struct src {
	int fd;
	const uint8_t *buf;
	size_t len;
	size_t pos;
	uint64_t total; // for progress; 0 unknown (a pipe)
} src;

static int
src_read(src *s, uint8_t *out, size_t cap, size_t *got)
{
	if (s->fd < 0) {
		size_t n = CORE_MIN(cap, s->len - s->pos);
		memcpy(out, s->buf + s->pos, n);
		s->pos += n;
		*got = n;
		return IDN_OK;
	}
	return core_read_full(s->fd, out, cap, -1, got);
}

// Back to the first byte for another attempt; false for a pipe.
static bool
src_rewind(src *s)
{
	if (s->fd < 0) {
		s->pos = 0;
		return true;
	}
	return lseek(s->fd, 0, SEEK_SET) == 0;
}

static void
put_abort(idn_client *c, uint64_t sid)
{
	wire_wr *w = sdfs_body_new();
	wire_doc *doc = NULL;
	wire_env env;
	if (w != NULL) {
		wire_map(w, 1);
		wire_ku64(w, "sid", sid);
		(void) rpc_client_call(c, "sdfs.put.abort", w, &doc, &env);
		wire_doc_free(doc);
		wire_wr_free(w);
	}
}

// Retries on IDN_EBUSY (the node is working on it) until the deadline,
// and on IDN_ETIMEDOUT a few times only: a node that stopped answering
// is not waited for minutes.
static bool
retryable(int rv, int *timeouts)
{
	*timeouts = rv == IDN_ETIMEDOUT ? *timeouts + 1 : 0;
	return rv == IDN_EBUSY || (rv == IDN_ETIMEDOUT && *timeouts < 3);
}

static int
put_once(idn_client *c, const char *name, src *in, uint64_t *version)
{
	wire_wr *w = NULL;
	wire_doc *doc = NULL;
	wire_env env;
	uint64_t sid = 0, ver = 0, csize = 0;
	uint64_t tmo = (uint64_t) rpc_client_timeout(c);
	uint64_t deadline = idn_clock_ms() + BEGIN_DEADLINE_MS;
	int rv, timeouts = 0;
	// put.begin: the front asks the primary for a version; while a dead
	// primary is still in the membership view it answers IDN_EBUSY.
	for (;;) {
		if ((w = sdfs_body_new()) == NULL) {
			return IDN_ENOMEM;
		}
		wire_map(w, 1);
		wire_kstr(w, "name", name);
		rv = rpc_client_call(c, "sdfs.put.begin", w, &doc, &env);
		wire_wr_free(w);
		if (rv == IDN_OK &&
		    (wire_get_u64(env.body, "sid", &sid) != IDN_OK ||
		        wire_get_u64(env.body, "ver", &ver) != IDN_OK ||
		        wire_get_u64(env.body, "csize", &csize) != IDN_OK ||
		        csize != IDN_SDFS_CHUNK_BYTES)) {
			rv = IDN_EPROTO;
		}
		wire_doc_free(doc);
		if (!retryable(rv, &timeouts) || idn_clock_ms() > deadline) {
			break;
		}
		core_sleep_ms(200);
	}
	if (rv != IDN_OK) {
		return rv;
	}
	uint8_t *buf = malloc(csize);
	sdfs_hash h;
	uint64_t off = 0;
	sdfs_hash_init(&h);
	rv = buf ? IDN_OK : IDN_ENOMEM;
	while (rv == IDN_OK) {
		size_t n = 0;
		if ((rv = src_read(in, buf, csize, &n)) != IDN_OK || n == 0) {
			break;
		}
		uint8_t cs[SDFS_CSUM_BYTES];
		sdfs_chunk_sum(buf, n, cs);
		sdfs_hash_update(&h, cs, sizeof(cs));
		if ((w = sdfs_body_new()) == NULL) {
			rv = IDN_ENOMEM;
			break;
		}
		wire_map(w, 5);
		wire_ku64(w, "sid", sid);
		wire_ku64(w, "off", off);
		wire_kbin(w, "data", buf, n);
		wire_kbin(w, "csum", cs, sizeof(cs));
		wire_ku64(w, "tmo", tmo);
		rv = rpc_client_call(c, "sdfs.put.chunk", w, &doc, &env);
		wire_doc_free(doc);
		wire_wr_free(w);
		off += n;
		if (rv == IDN_OK) {
			rpc_client_progress(c, off, in->total);
		}
	}
	free(buf);
	if (rv != IDN_OK) {
		put_abort(c, sid);
		return rv;
	}
	uint8_t sum[IDN_SDFS_SUM_BYTES];
	sdfs_hash_final(&h, sum);
	// put.commit returns IDN_EBUSY while the replicas are still syncing;
	// asking again with the same sid waits for the same commit.
	deadline = idn_clock_ms() + COMMIT_DEADLINE_MS;
	timeouts = 0;
	for (;;) {
		if ((w = sdfs_body_new()) == NULL) {
			return IDN_ENOMEM;
		}
		wire_map(w, 4);
		wire_ku64(w, "sid", sid);
		wire_ku64(w, "size", off);
		wire_kbin(w, "sum", sum, sizeof(sum));
		wire_ku64(w, "tmo", tmo);
		rv = rpc_client_call(c, "sdfs.put.commit", w, &doc, &env);
		wire_wr_free(w);
		if (rv == IDN_OK && wire_get_u64(env.body, "ver", &ver)) {
			rv = IDN_EPROTO;
		}
		wire_doc_free(doc);
		if (!retryable(rv, &timeouts) || idn_clock_ms() > deadline) {
			break;
		}
	}
	if (rv == IDN_OK && version != NULL) {
		*version = ver;
	}
	return rv;
}

// IDN_EEXIST from a commit: the version number the primary gave was given
// to another put as well (the primary changed during the put), and this
// put's copies were withdrawn. Putting again takes a fresh number.
#define PUT_ATTEMPTS 4

static int
put_stream(idn_client *c, const char *name, src *in, uint64_t *version)
{
	int rv = put_once(c, name, in, version);
	for (int i = 1; rv == IDN_EEXIST && i < PUT_ATTEMPTS && src_rewind(in);
	     i++) {
		core_sleep_ms(100 + core_random() % 200);
		rv = put_once(c, name, in, version);
	}
	return rv;
}

int
idn_sdfs_put_file(idn_client *c, const char *path, const char *name,
    uint64_t *version)
{
	if (c == NULL || path == NULL || check_name(name) != IDN_OK) {
		return IDN_EINVAL;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return core_err_from_errno(errno);
	}
	struct stat sb;
	if (fstat(fd, &sb) != 0 || S_ISDIR(sb.st_mode)) {
		close(fd);
		return IDN_EINVAL;
	}
	src in = {.fd = fd,
	    .total = S_ISREG(sb.st_mode) ? (uint64_t) sb.st_size : 0};
	int rv = put_stream(c, name, &in, version);
	close(fd);
	return rv;
}

int
idn_sdfs_put_buf(idn_client *c, const char *name, const void *data,
    size_t len, uint64_t *version)
{
	if (c == NULL || (data == NULL && len > 0) ||
	    check_name(name) != IDN_OK) {
		return IDN_EINVAL;
	}
	src in = {.fd = -1, .buf = data, .len = len, .total = len};
	return put_stream(c, name, &in, version);
}

// A sink of bytes: a file descriptor, or a growing buffer.
typedef struct sink {
	int fd;
	core_buf *buf;
} sink;

static int
sink_write(sink *k, const uint8_t *p, size_t n)
{
	if (k->fd < 0) {
		return core_buf_append(k->buf, p, n);
	}
	return core_write_all(k->fd, p, n);
}

static int
get_open(idn_client *c, const char *name, uint64_t version, sdfs_vmeta *m)
{
	wire_wr *w = sdfs_body_new();
	wire_doc *doc = NULL;
	wire_env env;
	if (w == NULL) {
		return IDN_ENOMEM;
	}
	wire_map(w, 2);
	wire_kstr(w, "name", name);
	wire_ku64(w, "ver", version);
	int rv = rpc_client_call(c, "sdfs.get.open", w, &doc, &env);
	if (rv == IDN_OK && sdfs_vmeta_get(env.body, m, false) != IDN_OK) {
		rv = IDN_EPROTO;
	}
	wire_doc_free(doc);
	wire_wr_free(w);
	return rv;
}

// One chunk fetched and checked against the checksum that came with it.
static int
fetch_chunk(idn_client *c, const char *name, const sdfs_vmeta *m,
    uint32_t i, wire_doc **doc, const uint8_t **p,
    uint8_t cs[SDFS_CSUM_BYTES])
{
	uint64_t off = (uint64_t) i * m->csize;
	size_t want = (size_t) CORE_MIN((uint64_t) m->csize, m->size - off);
	int rv = IDN_OK;
	for (int t = 0; t < CHUNK_TRIES; t++) {
		wire_wr *w = sdfs_body_new();
		wire_env env;
		const uint8_t *sent;
		size_t n, cl;
		if (w == NULL) {
			return IDN_ENOMEM;
		}
		wire_map(w, 3);
		wire_kstr(w, "name", name);
		wire_ku64(w, "ver", m->ver);
		wire_ku64(w, "idx", i);
		rv = rpc_client_call(c, "sdfs.get.chunk", w, doc, &env);
		wire_wr_free(w);
		if (rv == IDN_OK &&
		    (wire_get_bin(env.body, "data", p, &n) ||
		        wire_get_bin(env.body, "csum", &sent, &cl) ||
		        cl != SDFS_CSUM_BYTES || n != want)) {
			rv = IDN_EPROTO;
		}
		if (rv == IDN_OK) {
			sdfs_chunk_sum(*p, n, cs);
			rv = memcmp(cs, sent, cl) ? IDN_ECORRUPT : IDN_OK;
		}
		if (rv == IDN_OK) {
			return IDN_OK;
		}
		wire_doc_free(*doc);
		*doc = NULL;
		if (rv != IDN_ETIMEDOUT && rv != IDN_EUNAVAIL &&
		    rv != IDN_ECORRUPT && rv != IDN_EPROTO) {
			break;
		}
		core_sleep_ms(100u << t);
	}
	return rv;
}

// Two fetchers (the caller and one thread) take chunks in turn, so the
// next chunk is on its way while one is being checked and written; at
// most two chunks are in memory. Bytes land at their offsets.
typedef struct getter {
	idn_client *c;
	const char *name;
	const sdfs_vmeta *m;
	sink *k;
	uint64_t base;       // the sink's position when the version starts
	uint8_t *csums;      // one per chunk, for the whole-version check
	pthread_mutex_t lock;
	uint32_t next;
	int rv;
	bool pipe;           // the sink cannot seek: chunks go out in order
	uint64_t done;       // bytes written, for progress
	pthread_mutex_t plock; // one progress report at a time
} getter;

static int
sink_put_at(getter *g, uint64_t off, const uint8_t *p, size_t n)
{
	if (g->k->fd < 0) {
		memcpy(g->k->buf->data + g->base + off, p, n);
		return IDN_OK;
	}
	while (n > 0) {
		ssize_t w = g->pipe ? write(g->k->fd, p, n) :
		    pwrite(g->k->fd, p, n, (off_t) (g->base + off));
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w < 0) {
			return core_err_from_errno(errno);
		}
		p += w;
		n -= (size_t) w;
		off += (uint64_t) w;
	}
	return IDN_OK;
}

static void *
getter_run(void *arg)
{
	getter *g = arg;
	for (;;) {
		core_lock(&g->lock);
		uint32_t i = g->next++;
		bool stop = g->rv != IDN_OK || i >= g->m->nchunks;
		core_unlock(&g->lock);
		if (stop) {
			return NULL;
		}
		wire_doc *doc = NULL;
		const uint8_t *p;
		uint8_t *cs = g->csums + (size_t) i * SDFS_CSUM_BYTES;
		uint64_t off = (uint64_t) i * g->m->csize;
		size_t n = (size_t) CORE_MIN((uint64_t) g->m->csize,
		    g->m->size - off);
		int rv = fetch_chunk(g->c, g->name, g->m, i, &doc, &p, cs);
		if (rv == IDN_OK) {
			rv = sink_put_at(g, off, p, n);
		}
		wire_doc_free(doc);
		if (rv == IDN_OK) {
			pthread_mutex_lock(&g->plock);
			g->done += n;
			rpc_client_progress(g->c, g->done, g->m->size);
			pthread_mutex_unlock(&g->plock);
		}
		if (rv != IDN_OK) {
			core_lock(&g->lock);
			g->rv = g->rv ? g->rv : rv;
			core_unlock(&g->lock);
			return NULL;
		}
	}
}

// Streams one version into k, checking every chunk and the whole sum.
static int
get_stream(idn_client *c, const char *name, const sdfs_vmeta *m, sink *k)
{
	getter g = {.c = c, .name = name, .m = m, .k = k};
	if (k->fd < 0) {
		if (m->size > SIZE_MAX - k->buf->len - 1) {
			return IDN_ETOOBIG;
		}
		size_t need = k->buf->len + (size_t) m->size + 1;
		if (need > k->buf->cap) {
			uint8_t *d = realloc(k->buf->data, need);
			if (d == NULL) {
				return IDN_ENOMEM;
			}
			k->buf->data = d;
			k->buf->cap = need;
		}
		g.base = k->buf->len;
	} else {
		off_t pos = lseek(k->fd, 0, SEEK_CUR);
		if (pos < 0 && errno != ESPIPE) {
			return core_err_from_errno(errno);
		}
		g.pipe = pos < 0;
		g.base = g.pipe ? 0 : (uint64_t) pos;
	}
	if ((g.csums = malloc((size_t) m->nchunks * SDFS_CSUM_BYTES + 1)) ==
	    NULL) {
		return IDN_ENOMEM;
	}
	pthread_mutex_init(&g.lock, NULL);
	pthread_mutex_init(&g.plock, NULL);
	pthread_t t;
	bool helper = m->nchunks > 1 && !g.pipe &&
	    pthread_create(&t, NULL, getter_run, &g) == 0;
	getter_run(&g);
	if (helper) {
		pthread_join(t, NULL);
	}
	pthread_mutex_destroy(&g.lock);
	pthread_mutex_destroy(&g.plock);
	int rv = g.rv;
	if (rv == IDN_OK) {
		uint8_t sum[IDN_SDFS_SUM_BYTES];
		sdfs_file_sum(g.csums, m->nchunks, sum);
		rv = memcmp(sum, m->sum, sizeof(sum)) ? IDN_ECORRUPT : IDN_OK;
	}
	free(g.csums);
	if (rv == IDN_OK && k->fd < 0) {
		k->buf->len += (size_t) m->size;
	} else if (rv == IDN_OK && !g.pipe &&
	    lseek(k->fd, (off_t) (g.base + m->size), SEEK_SET) < 0) {
		rv = core_err_from_errno(errno);
	}
	return rv;
}

// A temp file beside path (same file system, so rename is atomic). A
// path that is a symlink or not a regular file (a terminal, a pipe) is
// written in place: renaming over it would replace the link or the device
// itself; /dev/stdout is our own standard output. *tmp is NULL then.
static int
tmp_open(const char *path, char **tmp, int *fd)
{
	struct stat sb;
	if (strcmp(path, "/dev/stdout") == 0) {
		*tmp = NULL;
		*fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0);
		return *fd < 0 ? core_err_from_errno(errno) : IDN_OK;
	}
	if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
		*tmp = NULL;
		*fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
		return *fd < 0 ? core_err_from_errno(errno) : IDN_OK;
	}
	*tmp = core_asprintf("%s.idunno-part.%d.%08x", path, (int) getpid(),
	    core_random());
	if (*tmp == NULL) {
		return IDN_ENOMEM;
	}
	*fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (*fd < 0) {
		int rv = errno == EACCES || errno == EROFS ? IDN_EPERM :
		    core_err_from_errno(errno);
		free(*tmp);
		*tmp = NULL;
		return rv;
	}
	return IDN_OK;
}

static int
tmp_finish(int rv, const char *path, char *tmp, int fd)
{
	if (close(fd) != 0 && rv == IDN_OK) {
		rv = core_err_from_errno(errno);
	}
	if (tmp == NULL) {
		return rv;
	}
	if (rv == IDN_OK && rename(tmp, path) != 0) {
		rv = errno == EACCES ? IDN_EPERM : core_err_from_errno(errno);
	}
	if (rv != IDN_OK) {
		unlink(tmp);
	}
	free(tmp);
	return rv;
}

int
idn_sdfs_get_file(idn_client *c, const char *name, uint64_t version,
    const char *path, uint64_t *got)
{
	if (c == NULL || path == NULL || check_name(name) != IDN_OK) {
		return IDN_EINVAL;
	}
	struct stat sb;
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		return IDN_EINVAL;
	}
	char *tmp;
	int fd;
	int rv = tmp_open(path, &tmp, &fd);
	if (rv != IDN_OK) {
		return rv;
	}
	sdfs_vmeta m;
	rv = get_open(c, name, version, &m);
	if (rv == IDN_OK) {
		sink k = {.fd = fd};
		rv = get_stream(c, name, &m, &k);
	}
	rv = tmp_finish(rv, path, tmp, fd);
	if (rv == IDN_OK && got != NULL) {
		*got = m.ver;
	}
	return rv;
}

int
idn_sdfs_get_buf(idn_client *c, const char *name, uint64_t version,
    void **data, size_t *len, uint64_t *got)
{
	if (c == NULL || data == NULL || len == NULL ||
	    check_name(name) != IDN_OK) {
		return IDN_EINVAL;
	}
	sdfs_vmeta m;
	core_buf b = {0};
	int rv = get_open(c, name, version, &m);
	if (rv == IDN_OK && m.size > SIZE_MAX - 1) {
		rv = IDN_ETOOBIG;
	}
	if (rv == IDN_OK && (b.data = malloc((size_t) m.size + 1)) == NULL) {
		rv = IDN_ENOMEM;
	}
	if (rv == IDN_OK) {
		b.cap = (size_t) m.size + 1;
		sink k = {.fd = -1, .buf = &b};
		rv = get_stream(c, name, &m, &k);
	}
	if (rv == IDN_OK) {
		rv = core_buf_append(&b, "", 1);
	}
	if (rv != IDN_OK) {
		core_buf_free(&b);
		return rv;
	}
	*data = b.data;
	*len = b.len - 1;
	if (got != NULL) {
		*got = m.ver;
	}
	return IDN_OK;
}

int
idn_sdfs_delete(idn_client *c, const char *name)
{
	if (c == NULL || check_name(name) != IDN_OK) {
		return IDN_EINVAL;
	}
	uint64_t deadline = idn_clock_ms() + BEGIN_DEADLINE_MS;
	int rv, timeouts = 0;
	for (int tries = 0;; tries++) {
		wire_wr *w = sdfs_body_new();
		wire_doc *doc = NULL;
		wire_env env;
		if (w == NULL) {
			return IDN_ENOMEM;
		}
		wire_map(w, 1);
		wire_kstr(w, "name", name);
		rv = rpc_client_call(c, "sdfs.delete", w, &doc, &env);
		wire_doc_free(doc);
		wire_wr_free(w);
		// A retried delete may find its own tombstone in place.
		if (rv == IDN_ENOENT && tries > 0) {
			rv = IDN_OK;
		}
		if (!retryable(rv, &timeouts) || idn_clock_ms() > deadline) {
			break;
		}
		core_sleep_ms(200);
	}
	return rv;
}

int
idn_sdfs_ls(idn_client *c, const char *name, idn_sdfs_info **out)
{
	if (c == NULL || out == NULL || check_name(name) != IDN_OK) {
		return IDN_EINVAL;
	}
	wire_wr *w = sdfs_body_new();
	wire_doc *doc = NULL;
	wire_env env;
	idn_sdfs_holder *h = NULL;
	sdfs_vmeta *v = NULL;
	size_t nh = 0, nv = 0;
	uint64_t newest, want, have;
	if (w == NULL) {
		return IDN_ENOMEM;
	}
	wire_map(w, 1);
	wire_kstr(w, "name", name);
	int rv = rpc_client_call(c, "sdfs.ls", w, &doc, &env);
	wire_wr_free(w);
	if (rv == IDN_OK &&
	    (wire_get_u64(env.body, "newest", &newest) ||
	        wire_get_u64(env.body, "want", &want) ||
	        wire_get_u64(env.body, "have", &have) || want > 1000 ||
	        have > 1000 ||
	        sdfs_holder_get_arr(wire_get(env.body, "holders"), 100000,
	            &h, &nh) ||
	        sdfs_vmeta_get_arr(wire_get(env.body, "vers"), 100000, &v,
	            &nv))) {
		rv = IDN_EPROTO;
	}
	wire_doc_free(doc);
	idn_sdfs_info *info = NULL;
	if (rv == IDN_OK) {
		size_t sz = sizeof(*info) + nh * sizeof(*h) +
		    nv * sizeof(idn_sdfs_version) + strlen(name) + 1;
		if ((info = core_alloc(sz)) == NULL) {
			rv = IDN_ENOMEM;
		}
	}
	if (rv == IDN_OK) {
		uint8_t *p = (uint8_t *) (info + 1);
		info->holders = (idn_sdfs_holder *) p;
		memcpy(info->holders, h, nh * sizeof(*h));
		p += nh * sizeof(*h);
		info->versions = (idn_sdfs_version *) p;
		for (size_t i = 0; i < nv; i++) {
			info->versions[i].version = v[i].ver;
			info->versions[i].size_bytes = v[i].size;
			info->versions[i].mtime_ms = v[i].mtime_ms;
			memcpy(info->versions[i].sum, v[i].sum,
			    sizeof(v[i].sum));
		}
		p += nv * sizeof(idn_sdfs_version);
		memcpy(p, name, strlen(name) + 1);
		info->name = (const char *) p;
		info->nholders = nh;
		info->nversions = nv;
		info->newest = newest;
		info->replicas_wanted = (int) want;
		info->replicas_have = (int) have;
		info->under_replicated = have < want;
		*out = info;
	}
	free(h);
	free(v);
	return rv;
}

int
idn_sdfs_versions(idn_client *c, const char *name, size_t max,
    idn_sdfs_version **out, size_t *count)
{
	if (out == NULL || count == NULL) {
		return IDN_EINVAL;
	}
	idn_sdfs_info *info;
	int rv = idn_sdfs_ls(c, name, &info);
	if (rv != IDN_OK) {
		return rv;
	}
	size_t n = max ? CORE_MIN(max, info->nversions) : info->nversions;
	idn_sdfs_version *v = core_alloc(sizeof(*v) * (n ? n : 1));
	if (v == NULL) {
		idn_free(info);
		return IDN_ENOMEM;
	}
	memcpy(v, info->versions, sizeof(*v) * n);
	idn_free(info);
	*out = v;
	*count = n;
	return IDN_OK;
}

int
idn_sdfs_get_versions(idn_client *c, const char *name, size_t n,
    const char *path, size_t *count)
{
	if (c == NULL || path == NULL || n == 0 ||
	    check_name(name) != IDN_OK) {
		return IDN_EINVAL;
	}
	idn_sdfs_version *v;
	size_t nv;
	char *tmp;
	int fd;
	int rv = tmp_open(path, &tmp, &fd);
	if (rv != IDN_OK) {
		return rv;
	}
	if ((rv = idn_sdfs_versions(c, name, n, &v, &nv)) != IDN_OK) {
		return tmp_finish(rv, path, tmp, fd);
	}
	sink k = {.fd = fd};
	for (size_t i = 0; rv == IDN_OK && i < nv; i++) {
		sdfs_vmeta m;
		char head[IDN_SDFS_NAME_MAX + 128];
		int hl = snprintf(head, sizeof(head), "=== idunno-sdfs %s "
		    "version %" PRIu64 " size %" PRIu64 " ===\n", name,
		    v[i].version, v[i].size_bytes);
		rv = get_open(c, name, v[i].version, &m);
		if (rv == IDN_OK) {
			rv = sink_write(&k, (const uint8_t *) head,
			    (size_t) hl);
		}
		if (rv == IDN_OK) {
			rv = get_stream(c, name, &m, &k);
		}
		if (rv == IDN_OK) {
			rv = sink_write(&k, (const uint8_t *) "\n", 1);
		}
	}
	idn_free(v);
	rv = tmp_finish(rv, path, tmp, fd);
	if (rv == IDN_OK && count != NULL) {
		*count = nv;
	}
	return rv;
}

// Copies entries e[n] into one block the caller frees with idn_free().
static int
entries_block(const sdfs_entry *e, size_t n, idn_sdfs_entry **out)
{
	size_t sz = sizeof(idn_sdfs_entry) * (n ? n : 1);
	for (size_t i = 0; i < n; i++) {
		sz += strlen(e[i].name) + 1;
	}
	idn_sdfs_entry *r = core_alloc(sz);
	if (r == NULL) {
		return IDN_ENOMEM;
	}
	char *p = (char *) (r + (n ? n : 1));
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(e[i].name) + 1;
		memcpy(p, e[i].name, l);
		r[i].name = p;
		r[i].newest = e[i].newest;
		r[i].size_bytes = e[i].tomb ? 0 : e[i].size;
		r[i].nversions = e[i].nvers;
		r[i].deleted = e[i].tomb;
		p += l;
	}
	*out = r;
	return IDN_OK;
}

// The pages of a listing: while the node says more follow, asks for the
// names after the last one it sent. Nodes that did not answer any page
// are added to miss[*nmiss] (at most IDN_SDFS_MISSING_MAX).
static int
entries_call(idn_client *c, const char *type, const char *prefix,
    idn_sdfs_entry **out, size_t *count, char (*miss)[IDN_ADDR_MAX],
    size_t *nmiss)
{
	sdfs_entry *all = NULL;
	size_t n = 0;
	char after[IDN_SDFS_NAME_MAX + 1] = "";
	bool more = true;
	int rv = IDN_OK;
	for (size_t page = 0; rv == IDN_OK && more; page++) {
		wire_wr *w = sdfs_body_new();
		wire_doc *doc = NULL;
		wire_env env;
		sdfs_entry *e = NULL;
		size_t k = 0;
		if (w == NULL) {
			rv = IDN_ENOMEM;
			break;
		}
		wire_map(w, 2);
		wire_kstr(w, "prefix", prefix);
		wire_kstr(w, "after", after);
		rv = rpc_client_call(c, type, w, &doc, &env);
		wire_wr_free(w);
		more = false;
		if (rv == IDN_OK && sdfs_entry_get_arr(wire_get(env.body,
		                        "items"), SDFS_LIST_MAX, &e, &k)) {
			rv = IDN_EPROTO;
		}
		const wire_val *un = wire_get(env.body, "unreachable");
		size_t nu = 0;
		for (size_t i = 0; rv == IDN_OK && miss != NULL &&
		     wire_as_arr(un, &nu) == IDN_OK && i < nu; i++) {
			char a[IDN_ADDR_MAX];
			bool dup = wire_copy_str(wire_at(un, i), a, sizeof(a)) !=
			    IDN_OK;
			for (size_t j = 0; j < *nmiss; j++) {
				dup = dup || strcmp(miss[j], a) == 0;
			}
			if (!dup && *nmiss < IDN_SDFS_MISSING_MAX) {
				memcpy(miss[(*nmiss)++], a, sizeof(a));
			}
		}
		char next[IDN_SDFS_NAME_MAX + 1] = "";
		if (rv == IDN_OK &&
		    wire_as_bool(wire_get(env.body, "more"), &more) == IDN_OK &&
		    more && (wire_get_str(env.body, "next", next,
		                 sizeof(next)) != IDN_OK ||
		                strcmp(next, after) <= 0 || page > 1000000)) {
			rv = IDN_EPROTO; // a cursor that does not advance
		}
		wire_doc_free(doc);
		snprintf(after, sizeof(after), "%s", next);
		sdfs_entry *grown = rv == IDN_OK ? core_realloc(all,
		    sizeof(*all) * (n + k + 1)) : NULL;
		if (rv == IDN_OK && grown == NULL) {
			rv = IDN_ENOMEM;
		}
		if (rv == IDN_OK) {
			all = grown;
			memcpy(all + n, e, sizeof(*e) * k);
			n += k;
			free(e); // names moved into all
		} else {
			sdfs_entry_free_arr(e, k);
		}
	}
	if (rv == IDN_OK && (rv = entries_block(all, n, out)) == IDN_OK) {
		*count = n;
	}
	sdfs_entry_free_arr(all, n);
	return rv;
}

int
idn_sdfs_store(idn_client *c, idn_sdfs_entry **out, size_t *count)
{
	if (c == NULL || out == NULL || count == NULL) {
		return IDN_EINVAL;
	}
	return entries_call(c, "sdfs.store", "", out, count, NULL, NULL);
}

int
idn_sdfs_ls_prefix_report(idn_client *c, const char *prefix,
    idn_sdfs_entry **out, size_t *count,
    char (*missing)[IDN_ADDR_MAX], size_t *nmissing)
{
	if (c == NULL || out == NULL || count == NULL || prefix == NULL ||
	    strlen(prefix) > IDN_SDFS_NAME_MAX ||
	    (missing != NULL && nmissing == NULL)) {
		return IDN_EINVAL;
	}
	if (nmissing != NULL) {
		*nmissing = 0;
	}
	return entries_call(c, "sdfs.lsp", prefix, out, count, missing,
	    nmissing);
}

int
idn_sdfs_ls_prefix(idn_client *c, const char *prefix, idn_sdfs_entry **out,
    size_t *count)
{
	return idn_sdfs_ls_prefix_report(c, prefix, out, count, NULL, NULL);
}
