// SPDX-License-Identifier: MIT
// front.c: the front end any node runs for clients: version ordering at
// the primary, streaming puts to the replica set with the acknowledgement
// rule, gets that survive dead and corrupt replicas, deletes, listings.
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sdfs/server.h"

typedef struct commit_arg {
	sdfs *s;
	put_sess *ps;
} commit_arg;

// What the cluster knows of a name: each asked node's versions.
typedef struct gather {
	size_t n;
	idn_member *who;     // the nodes asked
	bool *replica;       // in the name's replica set
	int *rvs;
	sdfs_vmeta **vers;
	size_t *nvers;
} gather;

static uint64_t
newest_local(sdfs *s, const char *name)
{
	sdfs_vmeta *v;
	size_t n;
	uint64_t newest = 0;
	if (sdfs_store_versions(s->st, name, &v, &n) == IDN_OK) {
		newest = n ? v[0].ver : 0;
		idn_free(v);
	}
	return newest;
}

static int
on_ver(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	char addr[R][IDN_ADDR_MAX];
	const char *others[R];
	int rvs[R];
	sdfs_vmeta *vers[R];
	size_t nvers[R], no = 0;
	view v;
	int rv = sdfs_get_name(req->body, name);
	if (rv != IDN_OK || (rv = sdfs_view_get(s, &v)) != IDN_OK) {
		return rv;
	}
	size_t n = sdfs_view_replicas(&v, name, addr);
	sdfs_view_free(&v);
	for (size_t i = 0; i < n; i++) {
		if (!sdfs_is_self(s, addr[i])) {
			others[no++] = addr[i];
		}
	}
	// The newest version any replica holds: the primary may be new to
	// this name (it joined, or the old primary died).
	uint64_t newest = newest_local(s, name);
	if (no > 0 &&
	    sdfs_stat_many(s, name, others, no, rvs, vers, nvers) == IDN_OK) {
		for (size_t i = 0; i < no; i++) {
			if (nvers[i] > 0 && vers[i][0].ver > newest) {
				newest = vers[i][0].ver;
			}
			idn_free(vers[i]);
		}
	}
	uint64_t now = idn_clock_ms();
	pthread_mutex_lock(&s->lock);
	resv **pp = &s->resv, *r = NULL;
	while (*pp != NULL) {
		resv *e = *pp;
		if (strcmp(e->name, name) == 0) {
			r = e;
		} else if (s->nresv > RESV_MAX && now - e->ms > 600000) {
			*pp = e->next;
			free(e->name);
			free(e);
			s->nresv--;
			continue;
		}
		pp = &e->next;
	}
	if (r == NULL && (r = core_alloc(sizeof(*r))) != NULL &&
	    (r->name = core_strdup(name)) != NULL) {
		r->next = s->resv;
		s->resv = r;
		s->nresv++;
	} else if (r != NULL && r->name == NULL) {
		free(r);
		r = NULL;
	}
	uint64_t ver = CORE_MAX(newest, r ? r->ver : 0) + 1;
	if (r != NULL) {
		r->ver = ver;
		r->ms = now;
	}
	pthread_mutex_unlock(&s->lock);
	if (r == NULL) {
		return IDN_ENOMEM;
	}
	wire_map(reply, 1);
	wire_ku64(reply, "ver", ver);
	return IDN_OK;
}

// Gets the next version from the name's primary (the first replica that
// is not known to be unreachable). IDN_EBUSY: try again shortly.
static int
alloc_version(sdfs *s, const char *name, uint64_t *ver)
{
	view v;
	char addr[R][IDN_ADDR_MAX];
	int rv = sdfs_view_get(s, &v);
	if (rv != IDN_OK) {
		return rv;
	}
	size_t n = sdfs_view_replicas(&v, name, addr);
	sdfs_view_free(&v);
	rv = IDN_EUNAVAIL;
	for (size_t i = 0; i < n; i++) {
		if (sdfs_peer_bad(s, addr[i]) && i + 1 < n) {
			continue;
		}
		wire_wr *w = sdfs_body_new();
		wire_doc *doc = NULL;
		wire_env env;
		if (w == NULL) {
			return IDN_ENOMEM;
		}
		wire_map(w, 1);
		wire_kstr(w, "name", name);
		rv = sdfs_call(s, addr[i], "sdfs.ver", w, STAT_TIMEOUT_MS, &doc,
		    &env);
		wire_wr_free(w);
		if (rv == IDN_OK && wire_get_u64(env.body, "ver", ver)) {
			rv = IDN_EPROTO;
		}
		wire_doc_free(doc);
		if (rv == IDN_ETIMEDOUT || rv == IDN_ENET) {
			rv = IDN_EBUSY;
		}
		break;
	}
	return rv;
}

static put_sess *
sess_find(sdfs *s, uint64_t sid)
{
	for (put_sess *p = s->puts; p != NULL; p = p->next) {
		if (p->sid == sid) {
			return p;
		}
	}
	return NULL;
}

static void
sess_unlink(sdfs *s, put_sess *ps)
{
	for (put_sess **pp = &s->puts; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == ps) {
			*pp = ps->next;
			return;
		}
	}
}

void
sdfs_sess_free(put_sess *ps)
{
	if (ps != NULL) {
		free(ps->name);
		free(ps);
	}
}

// Sends one request to the session's live remote replicas in parallel
// and drops the ones that fail; local replica work is done by the caller.
static void
fan_replicas(sdfs *s, put_sess *ps, const char *type, wire_wr *w,
    idn_duration tmo)
{
	const char *targets[R];
	size_t map[R], nt = 0;
	int rvs[R];
	for (size_t i = 0; i < ps->nrep; i++) {
		if (ps->live[i] && !sdfs_is_self(s, ps->addr[i])) {
			map[nt] = i;
			targets[nt++] = ps->addr[i];
		}
	}
	if (nt == 0) {
		return;
	}
	int rv = rpc_fanout(s->rpc, targets, nt, type, w, tmo, rvs, NULL,
	    NULL);
	for (size_t k = 0; k < nt; k++) {
		int r = rv != IDN_OK ? rv : rvs[k];
		if (r != IDN_OK) {
			sdfs_peer_mark(s, targets[k], r);
			ps->live[map[k]] = false;
			core_logf(s->lg, IDN_LOG_WARN, "sdfs: replica %s left "
			    "the write of '%s' version %" PRIu64 " (%s: %s)",
			    targets[k], ps->name, ps->ver, type,
			    idn_strerror(r));
		}
	}
}

static bool
any_live(const put_sess *ps)
{
	for (size_t i = 0; i < ps->nrep; i++) {
		if (ps->live[i]) {
			return true;
		}
	}
	return false;
}

// Local replica work for the session: fn applied where self is a replica.
static size_t
self_index(sdfs *s, const put_sess *ps)
{
	for (size_t i = 0; i < ps->nrep; i++) {
		if (sdfs_is_self(s, ps->addr[i])) {
			return i;
		}
	}
	return R;
}

static int
sess_start(sdfs *s, const char *name, bool tomb, put_sess **out)
{
	uint64_t ver;
	view v;
	int rv = alloc_version(s, name, &ver);
	if (rv != IDN_OK) {
		return rv;
	}
	put_sess *ps = core_alloc(sizeof(*ps));
	if (ps == NULL || (ps->name = core_strdup(name)) == NULL) {
		free(ps);
		return IDN_ENOMEM;
	}
	ps->ver = ver;
	ps->tomb = tomb;
	if ((rv = sdfs_view_get(s, &v)) != IDN_OK) {
		sdfs_sess_free(ps);
		return rv;
	}
	ps->nrep = sdfs_view_replicas(&v, name, ps->addr);
	sdfs_view_free(&v);
	for (size_t i = 0; i < ps->nrep; i++) {
		ps->live[i] = true;
	}
	if (!tomb) {
		size_t me = self_index(s, ps);
		if (me < R && sdfs_rep_begin(s, name, ver) != IDN_OK) {
			ps->live[me] = false;
		}
		wire_wr *w = sdfs_body_new();
		if (w == NULL) {
			sdfs_sess_free(ps);
			return IDN_ENOMEM;
		}
		wire_map(w, 2);
		wire_kstr(w, "name", name);
		wire_ku64(w, "ver", ver);
		fan_replicas(s, ps, "sdfs.r.begin", w, STAT_TIMEOUT_MS);
		wire_wr_free(w);
	}
	if (!any_live(ps)) {
		sdfs_sess_free(ps);
		return IDN_EUNAVAIL;
	}
	ps->last_ms = idn_clock_ms();
	*out = ps;
	return IDN_OK;
}

static int
on_put_begin(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	put_sess *ps;
	int rv = sdfs_get_name(req->body, name);
	if (rv != IDN_OK || (rv = sess_start(s, name, false, &ps)) != IDN_OK) {
		return rv;
	}
	pthread_mutex_lock(&s->lock);
	ps->sid = ++s->next_sid;
	ps->next = s->puts;
	s->puts = ps;
	pthread_mutex_unlock(&s->lock);
	wire_map(reply, 3);
	wire_ku64(reply, "sid", ps->sid);
	wire_ku64(reply, "ver", ps->ver);
	wire_ku64(reply, "csize", IDN_SDFS_CHUNK_BYTES);
	return IDN_OK;
}

static put_sess *
sess_take(sdfs *s, uint64_t sid, int state)
{
	pthread_mutex_lock(&s->lock);
	put_sess *ps = sess_find(s, sid);
	if (ps != NULL && ps->state == state) {
		sess_unlink(s, ps);
	} else {
		ps = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	return ps;
}

static void
sess_put(sdfs *s, put_sess *ps)
{
	ps->last_ms = idn_clock_ms();
	pthread_mutex_lock(&s->lock);
	ps->next = s->puts;
	s->puts = ps;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->lock);
}

static int
on_put_chunk(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	uint64_t sid, off;
	const uint8_t *data, *cs;
	size_t len, csl;
	if (wire_get_u64(req->body, "sid", &sid) != IDN_OK ||
	    wire_get_u64(req->body, "off", &off) != IDN_OK ||
	    wire_get_bin(req->body, "data", &data, &len) != IDN_OK ||
	    wire_get_bin(req->body, "csum", &cs, &csl) != IDN_OK ||
	    csl != SDFS_CSUM_BYTES || len == 0 ||
	    len > IDN_SDFS_CHUNK_BYTES) {
		return IDN_EPROTO;
	}
	put_sess *ps = sess_take(s, sid, OPEN);
	if (ps == NULL) {
		return IDN_ENOENT;
	}
	if (off != ps->off) {
		sess_put(s, ps);
		return IDN_EINVAL;
	}
	// The client's chunk checksum travels on; every replica checks it
	// as it hashes the chunk for its own metadata.
	size_t me = self_index(s, ps);
	if (me < R && ps->live[me] &&
	    sdfs_rep_chunk(s, ps->name, ps->ver, off, data, len, cs)) {
		ps->live[me] = false;
	}
	wire_wr *w = sdfs_body_new();
	if (w == NULL) {
		sess_put(s, ps);
		return IDN_ENOMEM;
	}
	wire_map(w, 5);
	wire_kstr(w, "name", ps->name);
	wire_ku64(w, "ver", ps->ver);
	wire_ku64(w, "off", off);
	wire_kbin(w, "data", data, len);
	wire_kbin(w, "csum", cs, csl);
	// A replica that died mid-write must not make the client time out:
	// give up on it well within the client's own timeout.
	uint64_t tmo = 5000;
	(void) wire_get_u64(req->body, "tmo", &tmo);
	tmo = CORE_MIN(CORE_MAX(tmo * 3 / 5, 1000u), CHUNK_TIMEOUT_MS);
	fan_replicas(s, ps, "sdfs.r.chunk", w, (idn_duration) tmo);
	wire_wr_free(w);
	ps->off += len;
	int rv = any_live(ps) ? IDN_OK : IDN_EUNAVAIL;
	sess_put(s, ps);
	return rv;
}

static int
remote_pull(sdfs *s, const char *target, const char *name, uint64_t ver,
    char src[][IDN_ADDR_MAX], size_t nsrc)
{
	wire_wr *w = sdfs_body_new();
	wire_doc *doc = NULL;
	wire_env env;
	if (w == NULL) {
		return IDN_ENOMEM;
	}
	wire_map(w, 3);
	wire_kstr(w, "name", name);
	wire_ku64(w, "ver", ver);
	wire_str(w, "from");
	wire_arr(w, (uint32_t) nsrc);
	for (size_t i = 0; i < nsrc; i++) {
		wire_str(w, src[i]);
	}
	int rv = sdfs_call(s, target, "sdfs.r.pull", w, PULL_TIMEOUT_MS, &doc,
	    &env);
	wire_doc_free(doc);
	wire_wr_free(w);
	return rv;
}

// The acknowledgement rule: a version counts as written once every member
// of the name's current replica set holds it. Replicas that left during
// the write are replaced by the set of the new membership, which pulls
// the version from those that have it.
static int
ensure_replicated(sdfs *s, const char *name, uint64_t ver,
    char held[][IDN_ADDR_MAX], size_t nheld)
{
	uint64_t deadline = idn_clock_ms() + REPLICATE_DEADLINE_MS;
	char src[R][IDN_ADDR_MAX];
	size_t nsrc = 0;
	for (size_t i = 0; i < nheld && nsrc < R; i++) {
		snprintf(src[nsrc++], IDN_ADDR_MAX, "%s", held[i]);
	}
	while (!s->stop) {
		view v;
		char want[R][IDN_ADDR_MAX];
		int rv = sdfs_view_get(s, &v);
		if (rv != IDN_OK) {
			return rv;
		}
		size_t n = sdfs_view_replicas(&v, name, want);
		sdfs_view_free(&v);
		size_t missing = 0;
		for (size_t i = 0; i < n; i++) {
			bool have = false;
			for (size_t k = 0; k < nsrc; k++) {
				have = have || strcmp(src[k], want[i]) == 0;
			}
			if (have) {
				continue;
			}
			if (sdfs_is_self(s, want[i])) {
				rv = sdfs_pull_now(s, name, ver, src, nsrc);
			} else if (sdfs_peer_bad(s, want[i]) ||
			    !sdfs_still_alive(s, want[i])) {
				// Dead but not yet declared so: wait for the
				// view to replace it rather than block on it.
				rv = IDN_EUNAVAIL;
			} else {
				rv = remote_pull(s, want[i], name, ver, src,
				    nsrc);
			}
			if (rv == IDN_OK && nsrc < R) {
				snprintf(src[nsrc++], IDN_ADDR_MAX, "%s",
				    want[i]);
			} else if (rv != IDN_OK) {
				missing++;
			}
		}
		if (missing == 0) {
			return IDN_OK;
		}
		if (idn_clock_ms() > deadline) {
			return IDN_EUNAVAIL;
		}
		// A replica that died is still in the view until membership
		// declares it failed; wait for that.
		core_sleep_ms(250);
	}
	return IDN_ECLOSED;
}

// Commits a session on its live replicas, then completes the replica set.
static int
sess_commit(sdfs *s, put_sess *ps)
{
	sdfs_vmeta m = {.ver = ps->ver, .size = ps->size,
	    .mtime_ms = idn_wall_ms(), .csize = IDN_SDFS_CHUNK_BYTES,
	    .tomb = ps->tomb};
	memcpy(m.sum, ps->sum, sizeof(m.sum));
	size_t me = self_index(s, ps);
	if (me < R && ps->live[me] &&
	    sdfs_rep_commit(s, ps->name, &m) != IDN_OK) {
		ps->live[me] = false;
	}
	wire_wr *w = sdfs_body_new();
	if (w == NULL) {
		return IDN_ENOMEM;
	}
	wire_map(w, 2);
	wire_kstr(w, "name", ps->name);
	wire_str(w, "meta");
	sdfs_vmeta_put(w, &m, false);
	fan_replicas(s, ps, "sdfs.r.commit", w, COMMIT_TIMEOUT_MS);
	wire_wr_free(w);
	char held[R][IDN_ADDR_MAX];
	size_t nheld = 0;
	for (size_t i = 0; i < ps->nrep; i++) {
		if (ps->live[i]) {
			snprintf(held[nheld++], IDN_ADDR_MAX, "%s",
			    ps->addr[i]);
		}
	}
	if (nheld == 0) {
		return IDN_EUNAVAIL;
	}
	int rv = ensure_replicated(s, ps->name, ps->ver, held, nheld);
	core_logf(s->lg, rv ? IDN_LOG_WARN : IDN_LOG_INFO, "sdfs: %s '%s' "
	    "version %" PRIu64 " (%" PRIu64 " bytes): %s",
	    ps->tomb ? "delete" : "put", ps->name, ps->ver, ps->size,
	    idn_strerror(rv));
	return rv;
}

static void *
commit_thread(void *arg)
{
	commit_arg *ca = arg;
	sdfs *s = ca->s;
	put_sess *ps = ca->ps;
	free(ca);
	int rv = sess_commit(s, ps);
	pthread_mutex_lock(&s->lock);
	ps->result = rv;
	ps->state = DONE;
	ps->last_ms = idn_clock_ms();
	s->commits--;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

// Waits for a committing session's result up to wait_ms; IDN_EBUSY if it
// is not done yet (the client asks again with the same sid).
static int
wait_commit(sdfs *s, uint64_t sid, idn_duration wait_ms, uint64_t *ver)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ns = (uint64_t) ts.tv_nsec + (uint64_t) wait_ms * 1000000u;
	ts.tv_sec += (time_t) (ns / 1000000000u);
	ts.tv_nsec = (long) (ns % 1000000000u);
	pthread_mutex_lock(&s->lock);
	int rv = IDN_EBUSY;
	for (;;) {
		put_sess *ps = sess_find(s, sid);
		if (ps == NULL) {
			rv = IDN_ENOENT;
			break;
		}
		if (ps->state == DONE) {
			rv = ps->result;
			*ver = ps->ver;
			sess_unlink(s, ps);
			sdfs_sess_free(ps);
			break;
		}
		if (pthread_cond_timedwait(&s->cv, &s->lock, &ts) != 0) {
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rv;
}

static int
start_commit(sdfs *s, put_sess *ps)
{
	pthread_t t;
	commit_arg *ca = core_alloc(sizeof(*ca));
	if (ca == NULL) {
		return IDN_ENOMEM;
	}
	ca->s = s;
	ca->ps = ps;
	// The session stays listed while committing, so that the client's
	// repeated put.commit finds it; only the commit thread touches it.
	pthread_mutex_lock(&s->lock);
	ps->state = COMMITTING;
	ps->next = s->puts;
	s->puts = ps;
	s->commits++;
	pthread_mutex_unlock(&s->lock);
	if (pthread_create(&t, NULL, commit_thread, ca) != 0) {
		pthread_mutex_lock(&s->lock);
		sess_unlink(s, ps);
		s->commits--;
		pthread_mutex_unlock(&s->lock);
		free(ca);
		return IDN_ESYS;
	}
	pthread_detach(t);
	return IDN_OK;
}

static idn_duration
wait_budget(const wire_val *b)
{
	uint64_t tmo = 5000;
	(void) wire_get_u64(b, "tmo", &tmo);
	tmo = CORE_MAX(tmo / 2, 200u);
	return (idn_duration) CORE_MIN(tmo, 30000u);
}

static int
on_put_commit(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	uint64_t sid, size, ver = 0;
	const uint8_t *sum;
	size_t sl;
	if (wire_get_u64(req->body, "sid", &sid) != IDN_OK ||
	    wire_get_u64(req->body, "size", &size) != IDN_OK ||
	    wire_get_bin(req->body, "sum", &sum, &sl) != IDN_OK ||
	    sl != IDN_SDFS_SUM_BYTES) {
		return IDN_EPROTO;
	}
	put_sess *ps = sess_take(s, sid, OPEN);
	if (ps != NULL) {
		if (size != ps->off) {
			sess_put(s, ps);
			return IDN_EINVAL;
		}
		ps->size = size;
		memcpy(ps->sum, sum, sl);
		int rv = start_commit(s, ps);
		if (rv != IDN_OK) {
			sdfs_sess_free(ps);
			return rv;
		}
	}
	int rv = wait_commit(s, sid, wait_budget(req->body), &ver);
	if (rv == IDN_OK) {
		wire_map(reply, 1);
		wire_ku64(reply, "ver", ver);
	}
	return rv;
}

static int
on_put_abort(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	uint64_t sid;
	if (wire_get_u64(req->body, "sid", &sid) != IDN_OK) {
		return IDN_EPROTO;
	}
	put_sess *ps = sess_take(s, sid, OPEN);
	if (ps == NULL) {
		return IDN_ENOENT;
	}
	size_t me = self_index(s, ps);
	if (me < R) {
		sdfs_rtx_free(sdfs_rtx_take(s, ps->name, ps->ver));
	}
	wire_wr *w = sdfs_body_new();
	if (w != NULL) {
		wire_map(w, 2);
		wire_kstr(w, "name", ps->name);
		wire_ku64(w, "ver", ps->ver);
		fan_replicas(s, ps, "sdfs.r.abort", w, STAT_TIMEOUT_MS);
		wire_wr_free(w);
	}
	sdfs_sess_free(ps);
	return IDN_OK;
}

static void
gather_free(gather *g)
{
	for (size_t i = 0; i < g->n; i++) {
		idn_free(g->vers[i]);
	}
	free(g->who);
	free(g->replica);
	free(g->rvs);
	free(g->vers);
	free(g->nvers);
	memset(g, 0, sizeof(*g));
}

// Stats name on its replica set, or on every live node when all_nodes or
// when no replica has it (a file can sit outside its set after churn).
static int
gather_versions(sdfs *s, const char *name, bool all_nodes, gather *g)
{
	view v;
	char addr[R][IDN_ADDR_MAX];
	memset(g, 0, sizeof(*g));
	int rv = sdfs_view_get(s, &v);
	if (rv != IDN_OK) {
		return rv;
	}
	size_t nr = sdfs_view_replicas(&v, name, addr);
	g->who = core_alloc(sizeof(idn_member) * v.n);
	g->replica = core_alloc(sizeof(bool) * v.n);
	g->rvs = core_alloc(sizeof(int) * v.n);
	g->vers = core_alloc(sizeof(sdfs_vmeta *) * v.n);
	g->nvers = core_alloc(sizeof(size_t) * v.n);
	const char **targets = core_alloc(sizeof(char *) * v.n);
	if (!g->who || !g->replica || !g->rvs || !g->vers || !g->nvers ||
	    !targets) {
		free(targets);
		sdfs_view_free(&v);
		gather_free(g);
		return IDN_ENOMEM;
	}
	// Replicas first, in ring order, then the others.
	for (size_t k = 0; k < nr; k++) {
		for (size_t i = 0; i < v.n; i++) {
			if (strcmp(addr[k], v.m[i].addr) == 0) {
				g->who[g->n] = v.m[i];
				g->replica[g->n++] = true;
			}
		}
	}
	size_t nrep = g->n;
	for (size_t i = 0; i < v.n; i++) {
		bool rep = false;
		for (size_t k = 0; k < nr; k++) {
			rep = rep || strcmp(addr[k], v.m[i].addr) == 0;
		}
		if (!rep) {
			g->who[g->n] = v.m[i];
			g->replica[g->n++] = false;
		}
	}
	for (size_t i = 0; i < g->n; i++) {
		targets[i] = g->who[i].addr;
	}
	rv = sdfs_stat_many(s, name, targets, nrep, g->rvs, g->vers, g->nvers);
	bool found = false;
	for (size_t i = 0; rv == IDN_OK && i < nrep; i++) {
		found = found || g->nvers[i] > 0;
	}
	if (rv == IDN_OK && (all_nodes || !found) && g->n > nrep) {
		rv = sdfs_stat_many(s, name, targets + nrep, g->n - nrep,
		    g->rvs + nrep, g->vers + nrep, g->nvers + nrep);
	} else {
		g->n = nrep;
	}
	free(targets);
	sdfs_view_free(&v);
	if (rv != IDN_OK) {
		gather_free(g);
	}
	return rv;
}

// The newest version of name anyone answered with; *tomb if deleted.
static const sdfs_vmeta *
gather_newest(const gather *g, uint64_t want)
{
	const sdfs_vmeta *best = NULL;
	for (size_t i = 0; i < g->n; i++) {
		for (size_t k = 0; g->rvs[i] == IDN_OK && k < g->nvers[i];
		     k++) {
			const sdfs_vmeta *m = &g->vers[i][k];
			if (want != 0 && m->ver != want) {
				continue;
			}
			if (best == NULL || m->ver > best->ver) {
				best = m;
			}
		}
	}
	return best;
}

static int
on_get_open(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	uint64_t want = 0;
	gather g;
	int rv = sdfs_get_name(req->body, name);
	(void) wire_get_u64(req->body, "ver", &want);
	if (rv != IDN_OK || (rv = gather_versions(s, name, false, &g))) {
		return rv;
	}
	const sdfs_vmeta *m = gather_newest(&g, want);
	const sdfs_vmeta *newest = gather_newest(&g, 0);
	if (m == NULL || m->tomb || (newest->tomb && newest->ver > m->ver)) {
		rv = IDN_ENOENT;
	} else {
		sdfs_vmeta_put(reply, m, false);
	}
	gather_free(&g);
	return rv;
}

// Reads a chunk from this node if it holds the version intact, else from
// the replicas (reachable ones first), then from any live node.
static int
read_any(sdfs *s, const char *name, uint64_t ver, uint32_t idx,
    wire_wr *reply)
{
	uint8_t *buf = malloc(SDFS_CHUNK_MAX);
	uint8_t cs[SDFS_CSUM_BYTES];
	size_t len;
	if (buf == NULL) {
		return IDN_ENOMEM;
	}
	int rv = sdfs_local_read(s, name, ver, idx, buf, &len, cs);
	if (rv == IDN_OK) {
		wire_map(reply, 2);
		wire_kbin(reply, "data", buf, len);
		wire_kbin(reply, "csum", cs, sizeof(cs));
		free(buf);
		return IDN_OK;
	}
	free(buf);
	view v;
	char addr[R][IDN_ADDR_MAX];
	if ((rv = sdfs_view_get(s, &v)) != IDN_OK) {
		return rv;
	}
	size_t nr = sdfs_view_replicas(&v, name, addr);
	size_t nc = 0;
	const char **cand = core_alloc(sizeof(char *) * (nr + v.n));
	if (cand == NULL) {
		sdfs_view_free(&v);
		return IDN_ENOMEM;
	}
	for (int good = 1; good >= 0; good--) {
		for (size_t i = 0; i < nr + v.n; i++) {
			const char *a = i < nr ? addr[i] : v.m[i - nr].addr;
			bool dup = sdfs_is_self(s, a);
			for (size_t k = 0; k < nc; k++) {
				dup = dup || strcmp(cand[k], a) == 0;
			}
			if (!dup && sdfs_peer_bad(s, a) != (good == 1)) {
				cand[nc++] = a;
			}
		}
	}
	rv = IDN_ENOENT;
	for (size_t i = 0; i < nc; i++) {
		wire_wr *w = sdfs_body_new();
		wire_doc *doc = NULL;
		wire_env env;
		const uint8_t *p, *c;
		size_t n, cl;
		if (w == NULL) {
			rv = IDN_ENOMEM;
			break;
		}
		wire_map(w, 3);
		wire_kstr(w, "name", name);
		wire_ku64(w, "ver", ver);
		wire_ku64(w, "idx", idx);
		int r = sdfs_call(s, cand[i], "sdfs.r.read", w, STAT_TIMEOUT_MS,
		    &doc, &env);
		wire_wr_free(w);
		if (r == IDN_OK &&
		    (wire_get_bin(env.body, "data", &p, &n) != IDN_OK ||
		        wire_get_bin(env.body, "csum", &c, &cl) != IDN_OK ||
		        cl != SDFS_CSUM_BYTES)) {
			r = IDN_EPROTO;
		}
		if (r == IDN_OK) {
			sdfs_chunk_sum(p, n, cs);
			r = memcmp(cs, c, cl) ? IDN_ECORRUPT : IDN_OK;
		}
		if (r == IDN_OK) {
			wire_map(reply, 2);
			wire_kbin(reply, "data", p, n);
			wire_kbin(reply, "csum", c, cl);
		}
		wire_doc_free(doc);
		if (r == IDN_OK) {
			rv = IDN_OK;
			break;
		}
		// Remember the worst news: a corrupt copy beats "not here".
		if (r == IDN_ECORRUPT || rv == IDN_ENOENT) {
			rv = r == IDN_ENOENT || r == IDN_ECORRUPT ? r :
			    IDN_EUNAVAIL;
		}
	}
	free(cand);
	sdfs_view_free(&v);
	return rv;
}

static int
on_get_chunk(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	uint64_t ver, idx;
	int rv = sdfs_get_name(req->body, name);
	if (rv == IDN_OK && (wire_get_u64(req->body, "ver", &ver) ||
	                        wire_get_u64(req->body, "idx", &idx) ||
	                        idx > UINT32_MAX)) {
		rv = IDN_EPROTO;
	}
	return rv ? rv : read_any(s, name, ver, (uint32_t) idx, reply);
}

static int
on_delete(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	gather g;
	put_sess *ps;
	int rv = sdfs_get_name(req->body, name);
	if (rv != IDN_OK || (rv = gather_versions(s, name, false, &g))) {
		return rv;
	}
	const sdfs_vmeta *newest = gather_newest(&g, 0);
	rv = newest == NULL || newest->tomb ? IDN_ENOENT : IDN_OK;
	gather_free(&g);
	if (rv != IDN_OK || (rv = sess_start(s, name, true, &ps)) != IDN_OK) {
		return rv;
	}
	sdfs_file_sum(NULL, 0, ps->sum);
	rv = sess_commit(s, ps);
	if (rv == IDN_OK) {
		wire_map(reply, 1);
		wire_ku64(reply, "ver", ps->ver);
	}
	sdfs_sess_free(ps);
	return rv;
}

static int
on_ls(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	gather g;
	int rv = sdfs_get_name(req->body, name);
	if (rv != IDN_OK || (rv = gather_versions(s, name, true, &g))) {
		return rv;
	}
	const sdfs_vmeta *newest = gather_newest(&g, 0);
	if (newest == NULL || newest->tomb) {
		gather_free(&g);
		return IDN_ENOENT;
	}
	// Versions newer than the newest tombstone, each once, newest first.
	uint64_t tomb = 0;
	size_t total = 0;
	for (size_t i = 0; i < g.n; i++) {
		for (size_t k = 0; g.rvs[i] == IDN_OK && k < g.nvers[i]; k++) {
			if (g.vers[i][k].tomb && g.vers[i][k].ver > tomb) {
				tomb = g.vers[i][k].ver;
			}
			total++;
		}
	}
	sdfs_vmeta *vs = core_alloc(sizeof(*vs) * (total ? total : 1));
	idn_sdfs_holder *h = core_alloc(sizeof(*h) * (g.n ? g.n : 1));
	if (vs == NULL || h == NULL) {
		free(vs);
		free(h);
		gather_free(&g);
		return IDN_ENOMEM;
	}
	size_t nv = 0, nh = 0, have = 0;
	for (size_t i = 0; i < g.n; i++) {
		if (g.rvs[i] != IDN_OK || g.nvers[i] == 0) {
			continue;
		}
		snprintf(h[nh].id, sizeof(h[nh].id), "%s", g.who[i].id);
		snprintf(h[nh].addr, sizeof(h[nh].addr), "%s", g.who[i].addr);
		h[nh].newest = g.vers[i][0].ver;
		h[nh].replica = g.replica[i];
		have += h[nh].newest == newest->ver;
		nh++;
		for (size_t k = 0; k < g.nvers[i]; k++) {
			const sdfs_vmeta *m = &g.vers[i][k];
			bool dup = m->tomb || m->ver <= tomb;
			for (size_t j = 0; j < nv; j++) {
				dup = dup || vs[j].ver == m->ver;
			}
			if (!dup) {
				size_t j = nv++;
				while (j > 0 && vs[j - 1].ver < m->ver) {
					vs[j] = vs[j - 1];
					j--;
				}
				vs[j] = *m;
				vs[j].csums = NULL;
			}
		}
	}
	wire_map(reply, 6);
	wire_kstr(reply, "name", name);
	wire_ku64(reply, "newest", newest->ver);
	wire_ku64(reply, "want", R);
	wire_ku64(reply, "have", have);
	wire_str(reply, "holders");
	sdfs_holder_put_arr(reply, h, nh);
	wire_str(reply, "vers");
	sdfs_vmeta_put_arr(reply, vs, nv);
	free(vs);
	free(h);
	gather_free(&g);
	return IDN_OK;
}

static int
on_store(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	sdfs_entry *e;
	size_t n;
	int rv = sdfs_store_list(s->st, "", &e, &n);
	if (rv == IDN_OK) {
		wire_map(reply, 1);
		wire_str(reply, "items");
		sdfs_entry_put_arr(reply, e, n);
		sdfs_entry_free_arr(e, n);
	}
	return rv;
}

static int
by_entry_name(const void *a, const void *b)
{
	return strcmp(((const sdfs_entry *) a)->name,
	    ((const sdfs_entry *) b)->name);
}

static int
on_lsp(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char prefix[NAME_CAP];
	view v;
	if (wire_get_str(req->body, "prefix", prefix, sizeof(prefix))) {
		return IDN_EPROTO;
	}
	int rv = sdfs_view_get(s, &v);
	if (rv != IDN_OK) {
		return rv;
	}
	const char **targets = core_alloc(sizeof(char *) * v.n);
	int *rvs = core_alloc(sizeof(int) * v.n);
	wire_doc **docs = core_alloc(sizeof(wire_doc *) * v.n);
	wire_env *envs = core_alloc(sizeof(wire_env) * v.n);
	wire_wr *w = sdfs_body_new();
	sdfs_entry *all = NULL;
	size_t nall = 0;
	rv = targets && rvs && docs && envs && w ? IDN_OK : IDN_ENOMEM;
	if (rv == IDN_OK) {
		for (size_t i = 0; i < v.n; i++) {
			targets[i] = v.m[i].addr;
		}
		wire_map(w, 1);
		wire_kstr(w, "prefix", prefix);
		rv = rpc_fanout(s->rpc, targets, v.n, "sdfs.r.list", w,
		    STAT_TIMEOUT_MS, rvs, docs, envs);
	}
	for (size_t i = 0; rv == IDN_OK && i < v.n; i++) {
		sdfs_entry *e;
		size_t n;
		if (rvs[i] != IDN_OK ||
		    sdfs_entry_get_arr(wire_get(envs[i].body, "items"),
		        SDFS_LIST_MAX, &e, &n) != IDN_OK) {
			continue;
		}
		sdfs_entry *grown = core_realloc(all,
		    sizeof(*all) * (nall + n));
		if (grown == NULL) {
			sdfs_entry_free_arr(e, n);
			rv = IDN_ENOMEM;
			break;
		}
		all = grown;
		memcpy(all + nall, e, sizeof(*e) * n);
		nall += n;
		free(e); // names moved into all
	}
	for (size_t i = 0; docs != NULL && i < v.n; i++) {
		wire_doc_free(docs[i]);
	}
	// Merge: one entry per name, the newest any node reports.
	size_t out = 0;
	if (rv == IDN_OK && nall > 0) {
		qsort(all, nall, sizeof(*all), by_entry_name);
		for (size_t i = 0; i < nall; i++) {
			if (out > 0 &&
			    strcmp(all[out - 1].name, all[i].name) == 0) {
				sdfs_entry *d = &all[out - 1];
				if (all[i].newest > d->newest) {
					d->newest = all[i].newest;
					d->size = all[i].size;
					d->tomb = all[i].tomb;
				}
				d->nvers = CORE_MAX(d->nvers, all[i].nvers);
				free(all[i].name);
				continue;
			}
			all[out++] = all[i];
		}
		size_t live = 0;
		for (size_t i = 0; i < out; i++) {
			if (all[i].tomb) {
				free(all[i].name);
			} else {
				all[live++] = all[i];
			}
		}
		out = live;
	}
	if (rv == IDN_OK) {
		wire_map(reply, 1);
		wire_str(reply, "items");
		sdfs_entry_put_arr(reply, all, out);
	}
	sdfs_entry_free_arr(all, rv == IDN_OK ? out : nall);
	wire_wr_free(w);
	free(targets);
	free(rvs);
	free(docs);
	free(envs);
	sdfs_view_free(&v);
	return rv;
}

int
sdfs_front_register(sdfs *s)
{
	static const struct {
		const char *type;
		rpc_handler_fn fn;
	} handlers[] = {
		{"sdfs.put.begin", on_put_begin},
		{"sdfs.put.chunk", on_put_chunk},
		{"sdfs.put.commit", on_put_commit},
		{"sdfs.put.abort", on_put_abort},
		{"sdfs.delete", on_delete},
		{"sdfs.get.open", on_get_open},
		{"sdfs.get.chunk", on_get_chunk},
		{"sdfs.ls", on_ls},
		{"sdfs.store", on_store},
		{"sdfs.lsp", on_lsp},
		{"sdfs.ver", on_ver},
	};
	int rv = IDN_OK;
	for (size_t i = 0; rv == IDN_OK && i < CORE_ARRAY_LEN(handlers); i++) {
		rv = rpc_route(s->rpc, handlers[i].type, handlers[i].fn, s);
	}
	return rv;
}
