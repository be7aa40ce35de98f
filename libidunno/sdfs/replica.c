// SPDX-License-Identifier: MIT
// replica.c: the replica side: writes in progress keyed by (name,
// version), commits, chunk reads that never return corrupt bytes, pulls
// of missing versions, repair of corrupt copies, and the anti-entropy
// offers a replica answers.
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sdfs/server.h"

rtx *
sdfs_rtx_take(sdfs *s, const char *name, uint64_t ver)
{
	core_lock(&s->lock);
	rtx **pp = &s->rtxs, *t = NULL;
	for (; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->ver == ver && strcmp((*pp)->name, name) == 0) {
			t = *pp;
			*pp = t->next;
			break;
		}
	}
	core_unlock(&s->lock);
	return t;
}

static void
rtx_put(sdfs *s, rtx *t)
{
	t->last_ms = idn_clock_ms();
	core_lock(&s->lock);
	t->next = s->rtxs;
	s->rtxs = t;
	core_unlock(&s->lock);
}

void
sdfs_rtx_free(rtx *t)
{
	if (t != NULL) {
		sdfs_wtx_abort(t->tx);
		free(t->name);
		free(t);
	}
}

int
sdfs_rep_begin(sdfs *s, const char *name, uint64_t ver)
{
	atomic_store(&s->fg_write_ms, idn_clock_ms());
	// A restarted write starts over.
	sdfs_rtx_free(sdfs_rtx_take(s, name, ver));
	size_t n = 0;
	core_lock(&s->lock);
	for (rtx *t = s->rtxs; t != NULL; t = t->next) {
		n++;
	}
	core_unlock(&s->lock);
	if (n >= RTX_MAX) {
		return IDN_EBUSY;
	}
	rtx *t = core_alloc(sizeof(*t));
	if (t == NULL || (t->name = core_strdup(name)) == NULL) {
		free(t);
		return IDN_ENOMEM;
	}
	t->ver = ver;
	int rv = sdfs_wtx_begin(s->st, name, ver, &t->tx);
	if (rv != IDN_OK) {
		sdfs_rtx_free(t);
		return rv;
	}
	rtx_put(s, t);
	return IDN_OK;
}

int
sdfs_rep_chunk(sdfs *s, const char *name, uint64_t ver, uint64_t off,
    const uint8_t *data, size_t len, const uint8_t *csum)
{
	rtx *t = sdfs_rtx_take(s, name, ver);
	if (t == NULL) {
		return IDN_ENOENT;
	}
	int rv = sdfs_wtx_write(t->tx, off, data, len, csum);
	if (rv != IDN_OK) {
		sdfs_rtx_free(t);
		return rv;
	}
	rtx_put(s, t);
	return IDN_OK;
}

static bool
unput_marked(sdfs *s, const char *name, const sdfs_vmeta *m)
{
	bool found = false;
	core_lock(&s->lock);
	for (size_t i = 0; i < UNPUT_MAX && !found; i++) {
		found = s->unputs[i].name != NULL &&
		    s->unputs[i].ver == m->ver &&
		    memcmp(s->unputs[i].sum, m->sum, IDN_SDFS_SUM_BYTES) == 0 &&
		    strcmp(s->unputs[i].name, name) == 0;
	}
	core_unlock(&s->lock);
	return found;
}

// A version just committed or pulled here that was withdrawn meanwhile
// (its r.unput overtook the commit, or a holder that was not reached
// offered it) is dropped again: IDN_ENOENT. sdfs_rep_unput marks before
// it looks, this looks after the commit, so one of them sees the other.
static int
unput_again(sdfs *s, const char *name, const sdfs_vmeta *m)
{
	if (!unput_marked(s, name, m)) {
		return IDN_OK;
	}
	core_logf(s->lg, IDN_LOG_WARN, "sdfs: '%s' version %" PRIu64
	    " was withdrawn: dropped again", name, m->ver);
	sdfs_store_drop_version(s->st, name, m->ver);
	return IDN_ENOENT;
}

int
sdfs_rep_commit(sdfs *s, const char *name, const sdfs_vmeta *m)
{
	rtx *t = sdfs_rtx_take(s, name, m->ver);
	int rv;
	if (t == NULL && m->tomb) {
		sdfs_wtx *tx;
		if ((rv = sdfs_wtx_begin(s->st, name, m->ver, &tx)) == IDN_OK) {
			rv = sdfs_wtx_commit(tx, m);
		}
	} else if (t == NULL) {
		// Already committed with the same bytes counts as success.
		sdfs_vmeta old;
		rv = sdfs_store_meta(s->st, name, m->ver, &old);
		if (rv == IDN_OK) {
			rv = memcmp(old.sum, m->sum, sizeof(old.sum)) ?
			    IDN_EEXIST : IDN_OK;
			sdfs_vmeta_clear(&old);
		}
	} else {
		rv = sdfs_wtx_commit(t->tx, m);
		t->tx = NULL;
		sdfs_rtx_free(t);
	}
	if (rv == IDN_OK) {
		rv = unput_again(s, name, m);
	}
	if (rv != IDN_OK) {
		core_logf(s->lg, IDN_LOG_WARN, "sdfs: commit of '%s' version %"
		    PRIu64 " failed: %s", name, m->ver, idn_strerror(rv));
	}
	return rv;
}

static int pull_copy(sdfs *s, const char *name, uint64_t ver,
    char src[][IDN_ADDR_MAX], size_t nsrc);

// Copies one version from the first source that has it intact. The same
// version pulled twice at once (anti-entropy and a write's completion)
// is copied once: the second caller waits for the first.
int
sdfs_pull_now(sdfs *s, const char *name, uint64_t ver, char src[][IDN_ADDR_MAX],
    size_t nsrc)
{
	pull_job self = {.ver = ver, .name = (char *) name};
	core_lock(&s->lock);
	for (;;) {
		bool busy = false;
		for (pull_job *j = s->inflight; j != NULL; j = j->next) {
			busy = busy || (j->ver == ver &&
			    strcmp(j->name, name) == 0);
		}
		if (!busy || s->stop) {
			break;
		}
		pthread_cond_wait(&s->cv, &s->lock);
	}
	self.next = s->inflight;
	s->inflight = &self;
	core_unlock(&s->lock);
	int rv = pull_copy(s, name, ver, src, nsrc);
	core_lock(&s->lock);
	for (pull_job **pp = &s->inflight; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == &self) {
			*pp = self.next;
			break;
		}
	}
	pthread_cond_broadcast(&s->cv);
	core_unlock(&s->lock);
	return rv;
}

// Asks addr for its meta of (name, ver).
static int
fetch_meta(sdfs *s, const char *addr, const char *name, uint64_t ver,
    bool with_csums, sdfs_vmeta *m)
{
	wire_wr *w = sdfs_body_new();
	wire_doc *doc = NULL;
	wire_env env;
	if (w == NULL) {
		return IDN_ENOMEM;
	}
	wire_map(w, 2);
	wire_kstr(w, "name", name);
	wire_ku64(w, "ver", ver);
	int rv = sdfs_call(s, addr, "sdfs.r.meta", w, STAT_TIMEOUT_MS, &doc,
	    &env);
	wire_wr_free(w);
	if (rv == IDN_OK) {
		rv = sdfs_vmeta_get(env.body, m, with_csums);
	}
	wire_doc_free(doc);
	if (rv == IDN_OK && m->ver != ver) {
		sdfs_vmeta_clear(m);
		rv = IDN_EPROTO;
	}
	return rv;
}

// The meta of (name, ver) from the first live source that has it.
static int
source_meta(sdfs *s, const char *name, uint64_t ver,
    char src[][IDN_ADDR_MAX], size_t nsrc, sdfs_vmeta *m)
{
	int rv = IDN_EUNAVAIL;
	for (size_t i = 0; i < nsrc && !s->stop; i++) {
		if (!sdfs_is_self(s, src[i]) && sdfs_still_alive(s, src[i]) &&
		    (rv = fetch_meta(s, src[i], name, ver, false, m)) ==
		        IDN_OK) {
			return IDN_OK;
		}
	}
	return rv;
}

static bool
same_bytes(const sdfs_vmeta *a, const sdfs_vmeta *b)
{
	return memcmp(a->sum, b->sum, sizeof(a->sum)) == 0 &&
	    a->tomb == b->tomb;
}

// A version already held counts as pulled only if it is the sources' one:
// the same number with another sum is a conflict (IDN_EEXIST), never
// "have". No source reachable: what is held stands.
static int
same_as_source(sdfs *s, const char *name, const sdfs_vmeta *have,
    char src[][IDN_ADDR_MAX], size_t nsrc)
{
	sdfs_vmeta m;
	if (source_meta(s, name, have->ver, src, nsrc, &m) != IDN_OK) {
		return IDN_OK;
	}
	bool same = same_bytes(&m, have);
	sdfs_vmeta_clear(&m);
	return same ? IDN_OK : IDN_EEXIST;
}

int
pull_copy(sdfs *s, const char *name, uint64_t ver, char src[][IDN_ADDR_MAX],
    size_t nsrc)
{
	sdfs_vmeta have;
	if (sdfs_store_meta(s->st, name, ver, &have) == IDN_OK) {
		int rv = same_as_source(s, name, &have, src, nsrc);
		sdfs_vmeta_clear(&have);
		return rv;
	}
	int rv = IDN_EUNAVAIL;
	for (size_t i = 0; i < nsrc && !s->stop; i++) {
		// A source that died since it offered is not waited for.
		if (sdfs_is_self(s, src[i]) || !sdfs_still_alive(s, src[i]) ||
		    (sdfs_peer_bad(s, src[i]) && i + 1 < nsrc)) {
			continue;
		}
		wire_doc *doc = NULL;
		wire_env env;
		sdfs_vmeta m = {0};
		sdfs_wtx *tx = NULL;
		rv = fetch_meta(s, src[i], name, ver, true, &m);
		if (rv == IDN_OK && unput_marked(s, name, &m)) {
			rv = IDN_ENOENT; // withdrawn here: not taken back
		}
		if (rv == IDN_OK) {
			rv = sdfs_wtx_begin(s->st, name, ver, &tx);
		}
		for (uint32_t c = 0; rv == IDN_OK && c < m.nchunks; c++) {
			if (s->stop) {
				rv = IDN_ECLOSED;
				break;
			}
			const uint8_t *p;
			size_t n;
			wire_wr *q = sdfs_body_new();
			if (q == NULL) {
				rv = IDN_ENOMEM;
				break;
			}
			wire_map(q, 3);
			wire_kstr(q, "name", name);
			wire_ku64(q, "ver", ver);
			wire_ku64(q, "idx", c);
			rv = sdfs_call(s, src[i], "sdfs.r.read", q,
			    READ_TIMEOUT_MS, &doc, &env);
			wire_wr_free(q);
			if (rv == IDN_OK &&
			    wire_get_bin(env.body, "data", &p, &n) != IDN_OK) {
				rv = IDN_EPROTO;
			}
			// The write checks the bytes against the meta.
			if (rv == IDN_OK) {
				rv = sdfs_wtx_write(tx, (uint64_t) c * m.csize,
				    p, n, m.csums + (size_t) c *
				    SDFS_CSUM_BYTES);
			}
			wire_doc_free(doc);
		}
		if (rv == IDN_OK) {
			rv = sdfs_wtx_commit(tx, &m);
			rv = rv ? rv : unput_again(s, name, &m);
		} else {
			sdfs_wtx_abort(tx);
		}
		sdfs_vmeta_clear(&m);
		if (rv == IDN_OK) {
			core_logf(s->lg, IDN_LOG_INFO, "sdfs: pulled '%s' "
			    "version %" PRIu64 " from %s", name, ver, src[i]);
			atomic_fetch_add(&s->n_pull, 1);
			return IDN_OK;
		}
	}
	return rv;
}

void
sdfs_pull_enqueue(sdfs *s, const char *name, uint64_t ver,
    char src[][IDN_ADDR_MAX], size_t nsrc, bool resolve)
{
	core_lock(&s->lock);
	pull_job *j = s->jobs, *last = NULL;
	for (; j != NULL; last = j, j = j->next) {
		if (j->ver == ver && strcmp(j->name, name) == 0) {
			break;
		}
	}
	if (j == NULL && (j = core_alloc(sizeof(*j))) != NULL) {
		if ((j->name = core_strdup(name)) == NULL) {
			free(j);
			j = NULL;
		} else {
			j->ver = ver;
			if (last != NULL) {
				last->next = j;
			} else {
				s->jobs = j;
			}
		}
	}
	if (j != NULL) {
		j->resolve = j->resolve || resolve;
	}
	for (size_t i = 0; j != NULL && i < nsrc && j->nsrc < R; i++) {
		bool dup = sdfs_is_self(s, src[i]);
		for (size_t k = 0; k < j->nsrc; k++) {
			dup = dup || strcmp(j->src[k], src[i]) == 0;
		}
		if (!dup) {
			snprintf(j->src[j->nsrc++], IDN_ADDR_MAX, "%s", src[i]);
		}
	}
	pthread_cond_broadcast(&s->cv);
	core_unlock(&s->lock);
}

// A copy found corrupt is moved aside at once (never served again, but
// not destroyed while it may be the last one) and pulled again from the
// other replicas, so it comes back without an operator.
void
sdfs_repair(sdfs *s, const char *name, uint64_t ver)
{
	view v;
	char addr[R][IDN_ADDR_MAX];
	core_logf(s->lg, IDN_LOG_WARN, "sdfs: corrupt copy of '%s' version %"
	    PRIu64 " quarantined; repairing from a replica", name, ver);
	sdfs_store_quarantine(s->st, name, ver);
	atomic_fetch_add(&s->n_repair, 1);
	if (sdfs_view_get(s, &v) == IDN_OK) {
		size_t n = sdfs_view_replicas(&v, name, addr);
		sdfs_pull_enqueue(s, name, ver, addr, n, false);
		sdfs_view_free(&v);
	}
}

// Reads chunk idx of a local version, checking it. NULL-safe meta cache:
// the meta is loaded per call (it is small, and versions never change).
int
sdfs_local_read(sdfs *s, const char *name, uint64_t ver, uint32_t idx,
    uint8_t *buf, size_t *len, uint8_t csum[SDFS_CSUM_BYTES])
{
	sdfs_vmeta m;
	int rv = sdfs_store_meta(s->st, name, ver, &m);
	if (rv == IDN_ECORRUPT) {
		sdfs_repair(s, name, ver);
		return rv;
	}
	if (rv != IDN_OK) {
		return rv == IDN_ECORRUPT ? rv : IDN_ENOENT;
	}
	rv = sdfs_store_read_chunk(s->st, name, &m, idx, buf, len);
	if (rv == IDN_OK) {
		memcpy(csum, m.csums + (size_t) idx * SDFS_CSUM_BYTES,
		    SDFS_CSUM_BYTES);
	}
	sdfs_vmeta_clear(&m);
	if (rv == IDN_ECORRUPT) {
		sdfs_repair(s, name, ver);
	}
	return rv;
}

static int
on_r_begin(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	uint64_t ver;
	int rv = sdfs_get_name(req->body, name);
	if (rv == IDN_OK && wire_get_u64(req->body, "ver", &ver) != IDN_OK) {
		rv = IDN_EPROTO;
	}
	return rv ? rv : sdfs_rep_begin(s, name, ver);
}

static int
on_r_chunk(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	uint64_t ver, off;
	const uint8_t *data, *cs;
	size_t len, csl;
	int rv = sdfs_get_name(req->body, name);
	if (rv == IDN_OK &&
	    (wire_get_u64(req->body, "ver", &ver) != IDN_OK ||
	        wire_get_u64(req->body, "off", &off) != IDN_OK ||
	        wire_get_bin(req->body, "data", &data, &len) != IDN_OK ||
	        wire_get_bin(req->body, "csum", &cs, &csl) != IDN_OK ||
	        csl != SDFS_CSUM_BYTES || len > SDFS_CHUNK_MAX)) {
		rv = IDN_EPROTO;
	}
	return rv ? rv : sdfs_rep_chunk(s, name, ver, off, data, len, cs);
}

static int
on_r_commit(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	sdfs_vmeta m;
	int rv = sdfs_get_name(req->body, name);
	if (rv == IDN_OK &&
	    sdfs_vmeta_get(wire_get(req->body, "meta"), &m, false) != IDN_OK) {
		rv = IDN_EPROTO;
	}
	return rv ? rv : sdfs_rep_commit(s, name, &m);
}

static int
on_r_abort(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	uint64_t ver;
	int rv = sdfs_get_name(req->body, name);
	if (rv == IDN_OK && wire_get_u64(req->body, "ver", &ver) != IDN_OK) {
		rv = IDN_EPROTO;
	}
	if (rv == IDN_OK) {
		sdfs_rtx_free(sdfs_rtx_take(s, name, ver));
	}
	return rv;
}

int
sdfs_rep_unput(sdfs *s, const char *name, uint64_t ver,
    const uint8_t sum[IDN_SDFS_SUM_BYTES])
{
	char *copy = core_strdup(name);
	if (copy == NULL) {
		return IDN_ENOMEM;
	}
	core_lock(&s->lock);
	size_t i = s->next_unput++ % UNPUT_MAX;
	free(s->unputs[i].name);
	s->unputs[i].name = copy;
	s->unputs[i].ver = ver;
	memcpy(s->unputs[i].sum, sum, IDN_SDFS_SUM_BYTES);
	core_unlock(&s->lock);
	sdfs_vmeta m;
	int rv = sdfs_store_meta(s->st, name, ver, &m);
	if (rv == IDN_ENOENT) {
		return IDN_OK;
	}
	if (rv == IDN_OK && memcmp(m.sum, sum, IDN_SDFS_SUM_BYTES) == 0) {
		core_logf(s->lg, IDN_LOG_WARN, "sdfs: '%s' version %" PRIu64
		    " withdrawn: its number was given to another put", name,
		    ver);
		rv = sdfs_store_drop_version(s->st, name, ver);
	}
	sdfs_vmeta_clear(&m);
	return rv;
}

static int
on_r_unput(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	uint64_t ver;
	const uint8_t *sum;
	size_t n;
	int rv = sdfs_get_name(req->body, name);
	if (rv == IDN_OK && (wire_get_u64(req->body, "ver", &ver) != IDN_OK ||
	                        wire_get_bin(req->body, "sum", &sum, &n) !=
	                            IDN_OK ||
	                        n != IDN_SDFS_SUM_BYTES)) {
		rv = IDN_EPROTO;
	}
	return rv == IDN_OK ? sdfs_rep_unput(s, name, ver, sum) : rv;
}

static int
on_r_stat(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	sdfs_vmeta *v;
	size_t n;
	int rv = sdfs_get_name(req->body, name);
	if (rv == IDN_OK &&
	    (rv = sdfs_store_versions(s->st, name, &v, &n)) == IDN_OK) {
		wire_map(reply, 1);
		wire_str(reply, "vers");
		sdfs_vmeta_put_arr(reply, v, n);
		idn_free(v);
	}
	return rv;
}

static int
on_r_meta(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	uint64_t ver;
	sdfs_vmeta m;
	int rv = sdfs_get_name(req->body, name);
	if (rv == IDN_OK && wire_get_u64(req->body, "ver", &ver) != IDN_OK) {
		rv = IDN_EPROTO;
	}
	if (rv == IDN_OK) {
		rv = sdfs_store_meta(s->st, name, ver, &m);
		if (rv == IDN_ECORRUPT) {
			sdfs_repair(s, name, ver);
		} else if (rv == IDN_OK) {
			sdfs_vmeta_put(reply, &m, true);
			sdfs_vmeta_clear(&m);
		} else {
			rv = IDN_ENOENT;
		}
	}
	return rv;
}

static int
on_r_read(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	uint64_t ver, idx;
	uint8_t cs[SDFS_CSUM_BYTES];
	int rv = sdfs_get_name(req->body, name);
	if (rv == IDN_OK && (wire_get_u64(req->body, "ver", &ver) ||
	                        wire_get_u64(req->body, "idx", &idx) ||
	                        idx > UINT32_MAX)) {
		rv = IDN_EPROTO;
	}
	uint8_t *buf = rv == IDN_OK ? malloc(SDFS_CHUNK_MAX) : NULL;
	size_t len = 0;
	if (rv == IDN_OK && buf == NULL) {
		rv = IDN_ENOMEM;
	}
	if (rv == IDN_OK) {
		rv = sdfs_local_read(s, name, ver, (uint32_t) idx, buf, &len,
		    cs);
	}
	if (rv == IDN_OK) {
		wire_map(reply, 2);
		wire_kbin(reply, "data", buf, len);
		wire_kbin(reply, "csum", cs, sizeof(cs));
	}
	free(buf);
	return rv;
}

static int
on_r_pull(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	char src[R][IDN_ADDR_MAX];
	uint64_t ver;
	size_t n = 0;
	const wire_val *from = wire_get(req->body, "from");
	int rv = sdfs_get_name(req->body, name);
	if (rv == IDN_OK && (wire_get_u64(req->body, "ver", &ver) != IDN_OK ||
	                        wire_as_arr(from, &n) != IDN_OK || n > R)) {
		rv = IDN_EPROTO;
	}
	for (size_t i = 0; rv == IDN_OK && i < n; i++) {
		rv = wire_copy_str(wire_at(from, i), src[i], IDN_ADDR_MAX);
	}
	return rv ? rv : sdfs_pull_now(s, name, ver, src, n);
}

// Which of the offered versions this replica should hold and lacks: the
// offered ones it does not have, newer than its newest tombstone, among
// the IDN_SDFS_KEEP_VERSIONS newest it would then hold.
static size_t
lacking(const sdfs_vmeta *have, size_t nh, const sdfs_offer *o,
    uint64_t *out)
{
	uint64_t tomb = 0;
	for (size_t i = 0; i < nh; i++) {
		if (have[i].tomb && have[i].ver > tomb) {
			tomb = have[i].ver;
		}
	}
	size_t n = 0;
	for (size_t i = 0; i < o->nvers; i++) {
		uint64_t v = o->vers[i];
		bool held = v <= tomb;
		size_t newer = 0;
		for (size_t k = 0; k < nh; k++) {
			held = held || have[k].ver == v;
			newer += have[k].ver > v;
		}
		for (size_t k = 0; k < o->nvers; k++) {
			bool dup = false;
			for (size_t j = 0; j < nh; j++) {
				dup = dup || have[j].ver == o->vers[k];
			}
			newer += !dup && o->vers[k] > v;
		}
		if (!held && newer < IDN_SDFS_KEEP_VERSIONS) {
			out[n++] = v;
		}
	}
	return n;
}

// Offered versions held here with other bytes: those whose offered copy
// was put first go to *theirs (this node renumbers its own and takes the
// offered one), the others to *ours (the offerer's copy loses).
static void
conflicts(const sdfs_vmeta *have, size_t nh, const sdfs_offer *o,
    uint64_t *theirs, size_t *nt, uint64_t *ours, size_t *no)
{
	*nt = *no = 0;
	for (size_t i = 0; o->tags != NULL && i < o->nvers; i++) {
		for (size_t k = 0; k < nh; k++) {
			uint64_t tag = sdfs_sum_tag(have[k].sum, have[k].tomb);
			if (have[k].ver != o->vers[i] || tag == o->tags[i]) {
				continue;
			}
			if (sdfs_put_first(o->mts[i], o->tags[i],
			        have[k].mtime_ms, tag)) {
				theirs[(*nt)++] = o->vers[i];
			} else {
				ours[(*no)++] = o->vers[i];
			}
		}
	}
}

// Appends (name, vers[n]) to list[*nl]; n == 0 adds nothing.
static int
list_add(sdfs_offer *list, size_t *nl, const char *name,
    const uint64_t *vers, size_t n)
{
	if (n == 0) {
		return IDN_OK;
	}
	sdfs_offer *e = &list[(*nl)++];
	e->vers = core_alloc(sizeof(uint64_t) * n);
	e->name = core_strdup(name);
	if (e->vers == NULL || e->name == NULL) {
		return IDN_ENOMEM;
	}
	memcpy(e->vers, vers, sizeof(uint64_t) * n);
	e->nvers = n;
	return IDN_OK;
}

static int
on_r_have(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char from[1][IDN_ADDR_MAX];
	sdfs_offer *o = NULL;
	size_t n = 0;
	int rv = IDN_OK;
	if (wire_get_str(req->body, "from", from[0], IDN_ADDR_MAX) != IDN_OK ||
	    sdfs_offer_get_arr(wire_get(req->body, "items"), OFFERS_PER_CALL,
	        &o, &n) != IDN_OK) {
		return IDN_EPROTO;
	}
	sdfs_offer *lack = core_alloc(sizeof(*lack) * (n ? n : 1));
	sdfs_offer *lose = core_alloc(sizeof(*lose) * (n ? n : 1));
	size_t nl = 0, nlose = 0;
	if (lack == NULL || lose == NULL) {
		free(lack);
		free(lose);
		sdfs_offer_free_arr(o, n);
		return IDN_ENOMEM;
	}
	for (size_t i = 0; i < n && rv == IDN_OK; i++) {
		sdfs_vmeta *have = NULL;
		size_t nh = 0, nt, no;
		enum { MAXV = 4 * IDN_SDFS_KEEP_VERSIONS };
		uint64_t want[2 * MAXV], ours[MAXV];
		if (sdfs_name_error(o[i].name) != NULL) {
			continue;
		}
		if ((rv = sdfs_store_versions(s->st, o[i].name, &have, &nh))) {
			break;
		}
		size_t nw = lacking(have, nh, &o[i], want);
		conflicts(have, nh, &o[i], want + nw, &nt, ours, &no);
		idn_free(have);
		for (size_t k = 0; k < nw + nt; k++) {
			sdfs_pull_enqueue(s, o[i].name, want[k], from, 1,
			    k >= nw);
		}
		rv = list_add(lack, &nl, o[i].name, want, nw + nt);
		if (rv == IDN_OK) {
			rv = list_add(lose, &nlose, o[i].name, ours, no);
		}
	}
	if (rv == IDN_OK) {
		wire_map(reply, 2);
		wire_str(reply, "lack");
		sdfs_offer_put_arr(reply, lack, nl);
		wire_str(reply, "lose");
		sdfs_offer_put_arr(reply, lose, nlose);
	}
	sdfs_offer_free_arr(lack, nl);
	sdfs_offer_free_arr(lose, nlose);
	sdfs_offer_free_arr(o, n);
	return rv;
}

// Copies this node's version m (with csums) of name to version nv here.
static int
copy_version(sdfs *s, const char *name, const sdfs_vmeta *m, uint64_t nv)
{
	sdfs_wtx *tx;
	int rv = sdfs_wtx_begin(s->st, name, nv, &tx);
	if (rv != IDN_OK) {
		return rv;
	}
	uint8_t *buf = m->nchunks > 0 ? malloc(m->csize) : NULL;
	if (m->nchunks > 0 && buf == NULL) {
		sdfs_wtx_abort(tx);
		return IDN_ENOMEM;
	}
	for (uint32_t c = 0; rv == IDN_OK && c < m->nchunks; c++) {
		size_t len;
		rv = sdfs_store_read_chunk(s->st, name, m, c, buf, &len);
		if (rv == IDN_OK) {
			rv = sdfs_wtx_write(tx, (uint64_t) c * m->csize, buf,
			    len, m->csums + (size_t) c * SDFS_CSUM_BYTES);
		}
	}
	free(buf);
	sdfs_vmeta to = *m;
	to.ver = nv;
	if (rv != IDN_OK) {
		sdfs_wtx_abort(tx);
		return rv;
	}
	return sdfs_wtx_commit(tx, &to);
}

// True if the cluster (the name's replica set, or this node) already holds
// m's put under another number: a resolve that ran before, here or on
// another holder of the same losing copy.
static bool
renumbered(sdfs *s, const char *name, const sdfs_vmeta *m)
{
	sdfs_gather g;
	sdfs_vmeta *mine = NULL;
	size_t nm = 0;
	bool found = false;
	if (sdfs_store_versions(s->st, name, &mine, &nm) == IDN_OK) {
		for (size_t k = 0; k < nm && !found; k++) {
			found = mine[k].ver != m->ver && same_bytes(&mine[k], m) &&
			    mine[k].mtime_ms == m->mtime_ms;
		}
		idn_free(mine);
	}
	if (found || sdfs_gather_versions(s, name, false, &g) != IDN_OK) {
		return found;
	}
	for (size_t i = 0; i < g.n && !found; i++) {
		for (size_t k = 0; g.rvs[i] == IDN_OK && k < g.nvers[i]; k++) {
			const sdfs_vmeta *v = &g.vers[i][k];
			found = found || (v->ver != m->ver &&
			    same_bytes(v, m) && v->mtime_ms == m->mtime_ms);
		}
	}
	sdfs_gather_free(&g);
	return found;
}

int
sdfs_resolve(sdfs *s, const char *name, uint64_t ver,
    char src[][IDN_ADDR_MAX], size_t nsrc)
{
	sdfs_vmeta mine, theirs;
	int rv = sdfs_store_meta(s->st, name, ver, &mine);
	if (rv == IDN_ENOENT) {
		return sdfs_pull_now(s, name, ver, src, nsrc);
	}
	if (rv != IDN_OK) {
		return rv;
	}
	if ((rv = source_meta(s, name, ver, src, nsrc, &theirs)) != IDN_OK) {
		sdfs_vmeta_clear(&mine);
		return rv;
	}
	uint64_t tm = sdfs_sum_tag(mine.sum, mine.tomb);
	uint64_t tt = sdfs_sum_tag(theirs.sum, theirs.tomb);
	bool keep = same_bytes(&mine, &theirs) ||
	    sdfs_put_first(mine.mtime_ms, tm, theirs.mtime_ms, tt);
	uint64_t now = idn_wall_ms(), nv = 0;
	// nv stays 0 when another holder of these bytes renumbered them.
	sdfs_vmeta_clear(&theirs);
	if (!keep && now - mine.mtime_ms < CONFLICT_SETTLE_MS) {
		rv = IDN_EBUSY; // a put may still be withdrawing it
	} else if (!keep && !renumbered(s, name, &mine) &&
	    (rv = sdfs_alloc_version(s, name, &nv)) == IDN_OK) {
		rv = copy_version(s, name, &mine, nv);
	}
	if (!keep && rv == IDN_OK) {
		core_logf(s->lg, IDN_LOG_WARN, "sdfs: '%s' version %" PRIu64
		    ": other bytes on %s were put first and keep the number; "
		    "this node's bytes are kept as version %" PRIu64, name, ver,
		    src[0], nv);
		sdfs_store_drop_version(s->st, name, ver);
		rv = sdfs_pull_now(s, name, ver, src, nsrc);
	}
	sdfs_vmeta_clear(&mine);
	return rv;
}

// This node's names starting with prefix, after `after` (optional), at
// most `limit` (optional) of them, and whether more follow.
static int
on_r_list(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char prefix[NAME_CAP], after[NAME_CAP] = "";
	uint64_t limit = SDFS_LIST_MAX;
	sdfs_entry *e;
	size_t n;
	if (wire_get_str(req->body, "prefix", prefix, sizeof(prefix)) ||
	    (wire_get(req->body, "after") != NULL &&
	        wire_get_str(req->body, "after", after, sizeof(after))) ||
	    (wire_get(req->body, "limit") != NULL &&
	        wire_get_u64(req->body, "limit", &limit))) {
		return IDN_EPROTO;
	}
	limit = CORE_MAX(CORE_MIN(limit, (uint64_t) SDFS_LIST_MAX), 1u);
	int rv = sdfs_store_list(s->st, prefix, &e, &n);
	if (rv == IDN_OK) {
		size_t from = 0;
		while (after[0] != '\0' && from < n &&
		    strcmp(e[from].name, after) <= 0) {
			from++;
		}
		size_t k = (size_t) CORE_MIN((uint64_t) (n - from), limit);
		wire_map(reply, 2);
		wire_str(reply, "items");
		sdfs_entry_put_arr(reply, e + from, k);
		wire_kbool(reply, "more", from + k < n);
		sdfs_entry_free_arr(e, n);
	}
	return rv;
}

int
sdfs_replica_register(sdfs *s)
{
	static const struct {
		const char *type;
		rpc_handler_fn fn;
	} handlers[] = {
		{"sdfs.r.begin", on_r_begin},
		{"sdfs.r.chunk", on_r_chunk},
		{"sdfs.r.commit", on_r_commit},
		{"sdfs.r.abort", on_r_abort},
		{"sdfs.r.unput", on_r_unput},
		{"sdfs.r.stat", on_r_stat},
		{"sdfs.r.meta", on_r_meta},
		{"sdfs.r.read", on_r_read},
		{"sdfs.r.pull", on_r_pull},
		{"sdfs.r.have", on_r_have},
		{"sdfs.r.list", on_r_list},
	};
	int rv = IDN_OK;
	for (size_t i = 0; rv == IDN_OK && i < CORE_ARRAY_LEN(handlers); i++) {
		rv = rpc_route(s->rpc, handlers[i].type, handlers[i].fn, s);
	}
	return rv;
}
