// SPDX-License-Identifier: MIT
// put.c: the front end's writes: streaming puts to the write set with the
// acknowledgement rule, and deletes (a tombstone put).
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdfs/server.h"

#define SUBSTITUTE_ROUNDS 2

typedef struct commit_arg {
	sdfs *s;
	put_sess *ps;
} commit_arg;

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

// Calls targets (at most R) in parallel with an idempotent request. A call
// that times out is sent again, with double the wait, while membership
// still lists its target and tmo lasts: a replica that died is given up
// once membership declares it failed, not after tmo, and a live but slow
// one still has all of tmo. busy_rv is the code a repeated request gets
// while the first one is still at work (0: none); it is waited out too.
static void
fan_watch(sdfs *s, const char *const *targets, size_t n, const char *type,
    wire_wr *w, idn_duration tmo, int busy_rv, int *rvs)
{
	uint64_t deadline = idn_clock_ms() + tmo;
	uint64_t slice = WATCH_SLICE_MS;
	const char *pend[R];
	size_t map[R], np = CORE_MIN(n, (size_t) R);
	for (size_t i = 0; i < np; i++) {
		pend[i] = targets[i];
		map[i] = i;
	}
	for (bool again = false; np > 0; again = true, slice *= 2) {
		uint64_t now = idn_clock_ms();
		if (again && now >= deadline) {
			break;
		}
		int prv[R];
		idn_duration t = (idn_duration) CORE_MIN(slice,
		    CORE_MAX(deadline - now, 1u));
		int rv = rpc_fanout(s->rpc, pend, np, type, w, t, prv, NULL,
		    NULL);
		size_t left = 0;
		for (size_t k = 0; k < np; k++) {
			int r = rv != IDN_OK ? rv : prv[k];
			rvs[map[k]] = r;
			bool wait = r == IDN_ETIMEDOUT ||
			    (again && busy_rv != 0 && r == busy_rv);
			if (wait && sdfs_still_alive(s, pend[k])) {
				pend[left] = pend[k];
				map[left++] = map[k];
			}
		}
		np = left;
	}
}

// Sends one request to the session's live remote replicas (those marked
// in only, when not NULL) in parallel and drops the ones that fail; local
// replica work is done by the caller.
static void
fan_replicas(sdfs *s, put_sess *ps, const bool *only, const char *type,
    wire_wr *w, idn_duration tmo, bool watch)
{
	const char *targets[R];
	size_t map[R], nt = 0;
	int rvs[R];
	for (size_t i = 0; i < ps->nrep; i++) {
		if (ps->live[i] && !sdfs_is_self(s, ps->addr[i]) &&
		    (only == NULL || only[i])) {
			map[nt] = i;
			targets[nt++] = ps->addr[i];
		}
	}
	if (nt == 0) {
		return;
	}
	int rv = IDN_OK;
	if (watch) {
		fan_watch(s, targets, nt, type, w, tmo, IDN_ENOENT, rvs);
	} else {
		rv = rpc_fanout(s->rpc, targets, nt, type, w, tmo, rvs, NULL,
		    NULL);
	}
	for (size_t k = 0; k < nt; k++) {
		int r = rv != IDN_OK ? rv : rvs[k];
		ps->conflict = ps->conflict || r == IDN_EEXIST;
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

// Opens the write on the session's replicas marked in todo: locally, or
// by r.begin; a replica that does not answer within ANSWER_MS leaves it.
// When none of them answered, this node is more likely slow (saturated)
// than they all dead: they are asked again with the patient timeout.
static void
begin_on(sdfs *s, put_sess *ps, const bool *todo, wire_wr *w)
{
	size_t me = self_index(s, ps);
	if (me < R && todo[me] &&
	    sdfs_rep_begin(s, ps->name, ps->ver) != IDN_OK) {
		ps->live[me] = false;
	}
	fan_replicas(s, ps, todo, "sdfs.r.begin", w, ANSWER_MS, false);
	bool again[R] = {false}, asked = false, answered = false;
	for (size_t i = 0; i < ps->nrep; i++) {
		if (todo[i] && i != me) {
			asked = true;
			answered = answered || ps->live[i];
			again[i] = true;
		}
	}
	if (asked && !answered) {
		for (size_t i = 0; i < ps->nrep; i++) {
			ps->live[i] = ps->live[i] || again[i];
		}
		fan_replicas(s, ps, again, "sdfs.r.begin", w, STAT_TIMEOUT_MS,
		    false);
	}
}

static bool
in_session(const put_sess *ps, const char *addr)
{
	for (size_t i = 0; i < ps->nrep; i++) {
		if (strcmp(ps->addr[i], addr) == 0) {
			return true;
		}
	}
	return false;
}

// Gives the places of replicas that left the write to the next members
// of the write set (which now skips those that timed out); todo marks the
// places that changed. False when none did.
static bool
substitute(sdfs *s, const view *v, put_sess *ps, bool *todo)
{
	char cand[R][IDN_ADDR_MAX];
	size_t nc = sdfs_write_set(s, v, ps->name, cand), k = 0;
	bool any = false;
	for (size_t i = 0; i < ps->nrep; i++) {
		todo[i] = false;
		if (ps->live[i]) {
			continue;
		}
		while (k < nc && in_session(ps, cand[k])) {
			k++;
		}
		if (k == nc) {
			continue;
		}
		core_logf(s->lg, IDN_LOG_INFO, "sdfs: '%s' version %" PRIu64
		    " goes to %s in place of %s", ps->name, ps->ver, cand[k],
		    ps->addr[i]);
		snprintf(ps->addr[i], IDN_ADDR_MAX, "%s", cand[k++]);
		ps->live[i] = todo[i] = any = true;
	}
	return any;
}

static int
sess_start(sdfs *s, const char *name, bool tomb, put_sess **out)
{
	uint64_t ver;
	view v;
	int rv = sdfs_alloc_version(s, name, &ver);
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
	bool todo[R];
	ps->nrep = sdfs_write_set(s, &v, name, ps->addr);
	for (size_t i = 0; i < ps->nrep; i++) {
		ps->live[i] = todo[i] = true;
	}
	if (!tomb) {
		wire_wr *w = sdfs_body_new();
		if (w == NULL) {
			sdfs_view_free(&v);
			sdfs_sess_free(ps);
			return IDN_ENOMEM;
		}
		wire_map(w, 2);
		wire_kstr(w, "name", name);
		wire_ku64(w, "ver", ver);
		begin_on(s, ps, todo, w);
		for (int k = 0; k < SUBSTITUTE_ROUNDS &&
		     substitute(s, &v, ps, todo); k++) {
			begin_on(s, ps, todo, w);
		}
		wire_wr_free(w);
	}
	sdfs_view_free(&v);
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
	// A place among the front's PUTS_MAX sessions is taken before the
	// session starts (it calls out), so concurrent begins cannot pass.
	size_t open = 0;
	core_lock(&s->lock);
	for (put_sess *p = s->puts; p != NULL; p = p->next) {
		open++;
	}
	if (rv == IDN_OK && open + s->opening >= s->lim.puts_max) {
		rv = IDN_EBUSY;
	}
	s->opening += rv == IDN_OK;
	core_unlock(&s->lock);
	if (rv != IDN_OK) {
		return rv;
	}
	rv = sess_start(s, name, false, &ps);
	core_lock(&s->lock);
	s->opening--;
	if (rv != IDN_OK) {
		core_unlock(&s->lock);
		return rv;
	}
	ps->sid = ++s->next_sid;
	ps->next = s->puts;
	s->puts = ps;
	core_unlock(&s->lock);
	wire_map(reply, 3);
	wire_ku64(reply, "sid", ps->sid);
	wire_ku64(reply, "ver", ps->ver);
	wire_ku64(reply, "csize", IDN_SDFS_CHUNK_BYTES);
	return IDN_OK;
}

static put_sess *
sess_take(sdfs *s, uint64_t sid, int state)
{
	core_lock(&s->lock);
	put_sess *ps = sess_find(s, sid);
	if (ps != NULL && ps->state == state) {
		sess_unlink(s, ps);
	} else {
		ps = NULL;
	}
	core_unlock(&s->lock);
	return ps;
}

static void
sess_put(sdfs *s, put_sess *ps)
{
	ps->last_ms = idn_clock_ms();
	core_lock(&s->lock);
	ps->next = s->puts;
	s->puts = ps;
	pthread_cond_broadcast(&s->cv);
	core_unlock(&s->lock);
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
	if (off / IDN_SDFS_CHUNK_BYTES >= UINT32_MAX - 1) {
		sess_put(s, ps);
		return IDN_ETOOBIG; // more chunks than a version can have
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
	fan_replicas(s, ps, NULL, "sdfs.r.chunk", w, (idn_duration) tmo,
	    false);
	wire_wr_free(w);
	ps->off += len;
	atomic_fetch_add(&s->n_put, len);
	int rv = any_live(ps) ? IDN_OK : IDN_EUNAVAIL;
	sess_put(s, ps);
	return rv;
}

// Has targets pull version ver of name from src, in parallel.
static void
remote_pulls(sdfs *s, const char *const *targets, size_t n, const char *name,
    uint64_t ver, char src[][IDN_ADDR_MAX], size_t nsrc, int *rvs)
{
	wire_wr *w = sdfs_body_new();
	if (w == NULL) {
		for (size_t i = 0; i < n; i++) {
			rvs[i] = IDN_ENOMEM;
		}
		return;
	}
	wire_map(w, 3);
	wire_kstr(w, "name", name);
	wire_ku64(w, "ver", ver);
	wire_str(w, "from");
	wire_arr(w, (uint32_t) nsrc);
	for (size_t i = 0; i < nsrc; i++) {
		wire_str(w, src[i]);
	}
	fan_watch(s, targets, n, "sdfs.r.pull", w, PULL_TIMEOUT_MS, 0, rvs);
	for (size_t i = 0; i < n; i++) {
		sdfs_peer_mark(s, targets[i], rvs[i]);
	}
	wire_wr_free(w);
}

// The acknowledgement rule: a version counts as written once every member
// of the name's current write set holds it: the replica set, where a
// member that timed out lately is replaced by the next member clockwise
// (never fewer members than the view allows: a member that timed out
// fills the set when no other is left, and is waited for). Replicas that
// left during the write are replaced by the set of the new membership,
// which pulls the version from those that have it. Anti-entropy moves
// a copy from a stand-in back to a replica that was only slow.
static int
ensure_replicated(sdfs *s, const char *name, uint64_t ver,
    char src[][IDN_ADDR_MAX], size_t *nsrc)
{
	uint64_t deadline = idn_clock_ms() + s->lim.replicate_ms;
	while (!s->stop) {
		view v;
		char want[R][IDN_ADDR_MAX];
		int rv = sdfs_view_get(s, &v);
		if (rv != IDN_OK) {
			return rv;
		}
		size_t n = sdfs_write_set(s, &v, name, want);
		sdfs_view_free(&v);
		size_t missing = 0, npull = 0;
		const char *pull[R];
		for (size_t i = 0; i < n; i++) {
			bool have = false;
			for (size_t k = 0; k < *nsrc; k++) {
				have = have || strcmp(src[k], want[i]) == 0;
			}
			if (have) {
				continue;
			}
			if (!sdfs_is_self(s, want[i])) {
				// Dead but not yet declared so: wait for the
				// view to replace it rather than block on it.
				if (sdfs_peer_bad(s, want[i]) ||
				    !sdfs_still_alive(s, want[i])) {
					missing++;
				} else {
					pull[npull++] = want[i];
				}
				continue;
			}
			rv = sdfs_pull_now(s, name, ver, src, *nsrc);
			if (rv == IDN_EEXIST) {
				return rv; // another put's bytes under ver
			}
			if (rv == IDN_OK && *nsrc < R) {
				snprintf(src[(*nsrc)++], IDN_ADDR_MAX, "%s",
				    want[i]);
			} else if (rv != IDN_OK) {
				missing++;
			}
		}
		int rvs[R];
		if (npull > 0) {
			remote_pulls(s, pull, npull, name, ver, src, *nsrc,
			    rvs);
		}
		for (size_t k = 0; k < npull; k++) {
			if (rvs[k] == IDN_EEXIST) {
				return rvs[k]; // another put's bytes under ver
			}
			if (rvs[k] == IDN_OK && *nsrc < R) {
				snprintf(src[(*nsrc)++], IDN_ADDR_MAX, "%s",
				    pull[k]);
			} else if (rvs[k] != IDN_OK) {
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

// The put is not acknowledged: either its version number was given to
// another put too (two nodes took themselves for the name's primary while
// membership changed) and some replica holds that put's bytes under it,
// or its replicas could not be completed. Its copies are withdrawn where
// they hold its bytes, on every replica it went to and every node that
// pulled it (held), also where its commit timed out (it may still land
// there: the replica then drops it again), so that the failed put is
// visible nowhere; the client may put again under a fresh number. Best
// effort, one round of STAT_TIMEOUT_MS.
static void
withdraw(sdfs *s, put_sess *ps, char held[][IDN_ADDR_MAX], size_t nheld,
    int why)
{
	const char *targets[2 * R];
	size_t nt = 0;
	bool local = false;
	for (size_t i = 0; i < ps->nrep + nheld; i++) {
		const char *a = i < ps->nrep ? ps->addr[i] : held[i - ps->nrep];
		bool dup = sdfs_is_self(s, a);
		local = local || dup;
		for (size_t k = 0; k < nt && !dup; k++) {
			dup = strcmp(targets[k], a) == 0;
		}
		if (!dup) {
			targets[nt++] = a;
		}
	}
	if (local) {
		sdfs_rep_unput(s, ps->name, ps->ver, ps->sum);
	}
	wire_wr *w = sdfs_body_new();
	if (w != NULL && nt > 0) {
		int rvs[2 * R];
		wire_map(w, 3);
		wire_kstr(w, "name", ps->name);
		wire_ku64(w, "ver", ps->ver);
		wire_kbin(w, "sum", ps->sum, sizeof(ps->sum));
		int rv = rpc_fanout(s->rpc, targets, nt, "sdfs.r.unput", w,
		    STAT_TIMEOUT_MS, rvs, NULL, NULL);
		for (size_t k = 0; k < nt; k++) {
			if ((rv ? rv : rvs[k]) != IDN_OK) {
				core_logf(s->lg, IDN_LOG_WARN, "sdfs: %s did "
				    "not withdraw '%s' version %" PRIu64 ": %s",
				    targets[k], ps->name, ps->ver,
				    idn_strerror(rv ? rv : rvs[k]));
			}
		}
	}
	wire_wr_free(w);
	core_logf(s->lg, IDN_LOG_WARN, "sdfs: %s of '%s' version %" PRIu64
	    " withdrawn: %s", ps->tomb ? "delete" : "put", ps->name, ps->ver,
	    why == IDN_EEXIST ? "a replica holds other bytes under that "
	    "number" : idn_strerror(why));
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
	if (me < R && ps->live[me]) {
		int r = sdfs_rep_commit(s, ps->name, &m);
		ps->live[me] = r == IDN_OK;
		ps->conflict = ps->conflict || r == IDN_EEXIST;
	}
	wire_wr *w = sdfs_body_new();
	if (w == NULL) {
		return IDN_ENOMEM;
	}
	wire_map(w, 2);
	wire_kstr(w, "name", ps->name);
	wire_str(w, "meta");
	sdfs_vmeta_put(w, &m, false);
	fan_replicas(s, ps, NULL, "sdfs.r.commit", w, COMMIT_TIMEOUT_MS, true);
	wire_wr_free(w);
	char held[R][IDN_ADDR_MAX];
	size_t nheld = 0;
	for (size_t i = 0; i < ps->nrep; i++) {
		if (ps->live[i]) {
			snprintf(held[nheld++], IDN_ADDR_MAX, "%s",
			    ps->addr[i]);
		}
	}
	int rv = ps->conflict ? IDN_EEXIST : nheld == 0 ? IDN_EUNAVAIL :
	    ensure_replicated(s, ps->name, ps->ver, held, &nheld);
	// A failed put is taken back, also where it committed.
	if (rv != IDN_OK && !s->stop) {
		withdraw(s, ps, held, nheld, rv);
	}
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
	core_lock(&s->lock);
	ps->result = rv;
	ps->state = DONE;
	ps->last_ms = idn_clock_ms();
	s->commits--;
	pthread_cond_broadcast(&s->cv);
	core_unlock(&s->lock);
	return NULL;
}

// Waits for a committing session's result up to wait_ms; IDN_EBUSY if it
// is not done yet (the client asks again with the same sid).
static int
wait_commit(sdfs *s, uint64_t sid, idn_duration wait_ms, uint64_t *ver)
{
	uint64_t end = idn_clock_ms() + (uint64_t) CORE_MAX(wait_ms, 0);
	core_lock(&s->lock);
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
		if (core_cond_wait_until(&s->cv, &s->lock, end) != IDN_OK) {
			break;
		}
	}
	core_unlock(&s->lock);
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
	core_lock(&s->lock);
	bool busy = s->commits >= COMMITS_MAX;
	ps->state = busy ? OPEN : COMMITTING;
	ps->next = s->puts;
	s->puts = ps;
	s->commits += !busy;
	core_unlock(&s->lock);
	if (busy) {
		free(ca);
		return IDN_EBUSY; // still open: the client asks again
	}
	if (pthread_create(&t, NULL, commit_thread, ca) != 0) {
		core_lock(&s->lock);
		sess_unlink(s, ps);
		s->commits--;
		core_unlock(&s->lock);
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
		if (rv == IDN_EBUSY) {
			core_sleep_ms(100); // the client asks again at once
			return rv;
		}
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
		fan_replicas(s, ps, NULL, "sdfs.r.abort", w, STAT_TIMEOUT_MS,
		    false);
		wire_wr_free(w);
	}
	sdfs_sess_free(ps);
	return IDN_OK;
}

static int
on_delete(void *arg, const wire_env *req, wire_wr *reply)
{
	sdfs *s = arg;
	char name[NAME_CAP];
	sdfs_gather g;
	put_sess *ps;
	int rv = sdfs_get_name(req->body, name);
	if (rv != IDN_OK || (rv = sdfs_gather_versions(s, name, false, &g))) {
		return rv;
	}
	const sdfs_vmeta *newest = sdfs_gather_newest(&g, 0);
	rv = newest == NULL || newest->tomb ? IDN_ENOENT : IDN_OK;
	sdfs_gather_free(&g);
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

int
sdfs_put_register(sdfs *s)
{
	static const rpc_route_def routes[] = {
		{"sdfs.put.begin", on_put_begin},
		{"sdfs.put.chunk", on_put_chunk},
		{"sdfs.put.commit", on_put_commit},
		{"sdfs.put.abort", on_put_abort},
		{"sdfs.delete", on_delete},
	};
	return rpc_routes(s->rpc, routes, CORE_ARRAY_LEN(routes), s);
}
