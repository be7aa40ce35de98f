// SPDX-License-Identifier: MIT
// repair.c: the background of a node's SDFS: anti-entropy rounds that
// bring every file back to IDN_SDFS_REPLICAS copies and drop copies that
// moved, the puller, the scrub, and expiry of abandoned writes.
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdfs/server.h"

// What one round offers one peer: names (indexes into the round's
// listing) and their versions, in name order.
typedef struct batch {
	char addr[IDN_ADDR_MAX];
	sdfs_offer *items;
	size_t *names;
	size_t n;
	size_t cap;
} batch;

// A name of the round's slice: its local versions, and how many members
// of its replica set (other than this node) were offered it and answered
// that they lack nothing.
typedef struct ae_name {
	sdfs_vmeta *vers;
	uint64_t *vv; // version numbers of vers, as the offers carry them
	uint64_t *tags, *mts; // and their sdfs_sum_tag and mtimes
	size_t nv;
	size_t need;
	size_t ok;
	bool mine; // this node is in the name's replica set
} ae_name;

// A round covers the names after s->ae_cursor, in name order, until some
// peer's batch is full; the next round resumes there, and the round that
// reaches the last name wraps to the first. Every name is thus offered
// within ceil(names / batch) rounds however many names there are.
typedef struct ae_plan {
	view v;
	sdfs_entry *e; // every name held here, sorted
	size_t ne;
	size_t from, to; // the round's slice e[from, to)
	ae_name *an;     // per name of the slice
	batch *b;        // per member of v
} ae_plan;

static void
plan_free(ae_plan *p)
{
	for (size_t i = 0; p->an != NULL && i < p->to - p->from; i++) {
		idn_free(p->an[i].vers);
		free(p->an[i].vv);
		free(p->an[i].tags);
		free(p->an[i].mts);
	}
	for (size_t k = 0; p->b != NULL && k < p->v.n; k++) {
		free(p->b[k].items);
		free(p->b[k].names);
	}
	free(p->an);
	free(p->b);
	sdfs_entry_free_arr(p->e, p->ne);
	sdfs_view_free(&p->v);
}

static bool
batch_grow(batch *b)
{
	if (b->n < b->cap) {
		return true;
	}
	size_t cap = b->cap ? 2 * b->cap : 16;
	sdfs_offer *it = core_realloc(b->items, cap * sizeof(*it));
	if (it == NULL) {
		return false;
	}
	b->items = it;
	size_t *nm = core_realloc(b->names, cap * sizeof(*nm));
	if (nm == NULL) {
		return false;
	}
	b->names = nm;
	b->cap = cap;
	return true;
}

// The first name after the cursor (0 when there is none or it wrapped).
static size_t
cursor_start(sdfs *s, const sdfs_entry *e, size_t ne)
{
	size_t lo = 0, hi = ne;
	if (s->ae_cursor == NULL) {
		return 0;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(e[mid].name, s->ae_cursor) <= 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo < ne ? lo : 0;
}

// Adds name i of the listing to the batch of every other member of its
// replica set. False (nothing added) when one of those batches is full.
static bool
plan_add(sdfs *s, ae_plan *p, size_t i, size_t limit)
{
	ae_name *a = &p->an[i - p->from];
	size_t idx[R], nr;
	if (sdfs_store_versions(s->st, p->e[i].name, &a->vers, &a->nv) !=
	        IDN_OK || a->nv == 0 ||
	    (a->vv = core_alloc(sizeof(uint64_t) * a->nv)) == NULL ||
	    (a->tags = core_alloc(sizeof(uint64_t) * a->nv)) == NULL ||
	    (a->mts = core_alloc(sizeof(uint64_t) * a->nv)) == NULL) {
		idn_free(a->vers);
		free(a->vv);
		free(a->tags);
		*a = (ae_name){0};
		return true; // nothing to offer: skipped, not a full batch
	}
	for (size_t k = 0; k < a->nv; k++) {
		a->vv[k] = a->vers[k].ver;
		a->tags[k] = sdfs_sum_tag(a->vers[k].sum, a->vers[k].tomb);
		a->mts[k] = a->vers[k].mtime_ms;
	}
	sdfs_ring_lookup(p->v.ring, p->e[i].name, idx, R, &nr);
	for (size_t k = 0; k < nr; k++) {
		batch *b = &p->b[idx[k]];
		if (!sdfs_is_self(s, b->addr) && b->n >= limit) {
			return false;
		}
	}
	for (size_t k = 0; k < nr; k++) {
		batch *b = &p->b[idx[k]];
		if (sdfs_is_self(s, b->addr)) {
			a->mine = true;
			continue;
		}
		a->need++;
		if (!batch_grow(b)) {
			a->need = SIZE_MAX; // cannot be met: never dropped
			continue;
		}
		b->items[b->n] = (sdfs_offer){p->e[i].name, a->vv, a->nv,
		    a->tags, a->mts};
		b->names[b->n++] = i;
	}
	return true;
}

// Lists the names, takes the round's slice and builds each peer's batch.
static int
plan_build(sdfs *s, ae_plan *p)
{
	memset(p, 0, sizeof(*p));
	int rv = sdfs_view_get(s, &p->v);
	if (rv != IDN_OK) {
		return rv;
	}
	if ((rv = sdfs_store_list(s->st, "", &p->e, &p->ne)) != IDN_OK) {
		sdfs_view_free(&p->v);
		return rv;
	}
	p->from = p->to = cursor_start(s, p->e, p->ne);
	p->b = core_alloc(sizeof(*p->b) * (p->v.n ? p->v.n : 1));
	p->an = core_alloc(sizeof(*p->an) * (p->ne - p->from + 1));
	if (p->b == NULL || p->an == NULL) {
		plan_free(p);
		return IDN_ENOMEM;
	}
	for (size_t k = 0; k < p->v.n; k++) {
		snprintf(p->b[k].addr, IDN_ADDR_MAX, "%s", p->v.m[k].addr);
	}
	// Offers per peer and round: OFFERS_PER_CALL (the most a peer
	// accepts), fewer in tests.
	size_t limit = s->lim.offers_per_call;
	while (p->to < p->ne && plan_add(s, p, p->to, limit)) {
		p->to++;
	}
	if (p->to == p->from && p->to < p->ne) {
		p->to++; // a name whose own offers fill a batch: 1 per round
	}
	return IDN_OK;
}

static int
by_offer_name(const void *a, const void *b)
{
	return strcmp(((const sdfs_offer *) a)->name,
	    ((const sdfs_offer *) b)->name);
}

// Offers peer k its batch; the peer pulls what it lacks and says which
// names those were, and which versions it holds with other bytes that
// were put first (`lose`: this node settles them, sdfs_resolve). Every
// other offered name counts as held there.
static void
exchange(sdfs *s, ae_plan *p, size_t k)
{
	batch *b = &p->b[k];
	wire_wr *w = sdfs_body_new();
	wire_doc *doc = NULL;
	wire_env env;
	sdfs_offer *lack = NULL, *lose = NULL;
	size_t nl = 0, nlose = 0;
	if (w == NULL) {
		return;
	}
	wire_map(w, 2);
	wire_kstr(w, "from", s->self_addr);
	wire_str(w, "items");
	sdfs_offer_put_arr(w, b->items, b->n);
	int rv = sdfs_call(s, b->addr, "sdfs.r.have", w, STAT_TIMEOUT_MS,
	    &doc, &env);
	wire_wr_free(w);
	if (rv == IDN_OK && wire_get(env.body, "lose") != NULL &&
	    sdfs_offer_get_arr(wire_get(env.body, "lose"), OFFERS_PER_CALL,
	        &lose, &nlose) != IDN_OK) {
		rv = IDN_EPROTO;
	}
	if (rv == IDN_OK && sdfs_offer_get_arr(wire_get(env.body, "lack"),
	                        OFFERS_PER_CALL, &lack, &nl) == IDN_OK) {
		char src[1][IDN_ADDR_MAX];
		snprintf(src[0], IDN_ADDR_MAX, "%s", b->addr);
		for (size_t q = 0; q < nlose; q++) {
			for (size_t v = 0; v < lose[q].nvers; v++) {
				if (sdfs_name_error(lose[q].name) == NULL) {
					sdfs_pull_enqueue(s, lose[q].name,
					    lose[q].vers[v], src, 1, true);
				}
			}
		}
		if (nl > 1) {
			qsort(lack, nl, sizeof(*lack), by_offer_name);
		}
		if (nlose > 1) {
			qsort(lose, nlose, sizeof(*lose), by_offer_name);
		}
		for (size_t q = 0; q < b->n; q++) {
			bool lacks = (nl > 0 && bsearch(&b->items[q], lack, nl,
			    sizeof(*lack), by_offer_name) != NULL) ||
			    (nlose > 0 && bsearch(&b->items[q], lose, nlose,
			        sizeof(*lose), by_offer_name) != NULL);
			p->an[b->names[q] - p->from].ok += !lacks;
		}
		sdfs_offer_free_arr(lack, nl);
	}
	sdfs_offer_free_arr(lose, nlose);
	wire_doc_free(doc);
}

// A holder outside a name's replica set drops its copy once every member
// of the set has answered that it lacks nothing.
static void
drop_moved(sdfs *s, ae_plan *p)
{
	for (size_t i = p->from; i < p->to && !s->stop; i++) {
		ae_name *a = &p->an[i - p->from];
		if (a->vers != NULL && !a->mine && a->need > 0 &&
		    a->ok == a->need) {
			core_logf(s->lg, IDN_LOG_INFO, "sdfs: dropping '%s': "
			    "no longer a replica and all %zu replicas have it",
			    p->e[i].name, a->need);
			sdfs_store_drop_name(s->st, p->e[i].name);
		}
	}
}

// The scrub's bytes for this round: the larger of SCRUB_MIN_BYTES and
// the share of the store (estimated from each name's newest size) that
// ends a pass within pass_ms (SCRUB_PASS_MS).
static uint64_t
scrub_budget(const ae_plan *p, uint64_t pass_ms)
{
	uint64_t total = 0;
	for (size_t i = 0; i < p->ne; i++) {
		uint64_t b = p->e[i].size * p->e[i].nvers;
		total = UINT64_MAX - total < b ? UINT64_MAX : total + b;
	}
	uint64_t rounds = pass_ms / AE_PERIOD_MS;
	return CORE_MAX(total / CORE_MAX(rounds, 1u),
	    (uint64_t) SCRUB_MIN_BYTES);
}

static void
scrub_next_name(sdfs *s, const char *name)
{
	free(s->scrub_name);
	s->scrub_name = name != NULL ? core_strdup(name) : NULL;
	s->scrub_ver = UINT64_MAX;
	s->scrub_chunk = 0;
}

// Checks version m of name from chunk s->scrub_chunk on, up to *budget
// bytes; true when it reached the end (or found damage, repaired).
static bool
scrub_version(sdfs *s, const char *name, const sdfs_vmeta *m, uint8_t *buf,
    uint64_t *budget)
{
	int rv = IDN_OK;
	if (s->scrub_chunk == 0 && !m->tomb) {
		uint8_t sum[IDN_SDFS_SUM_BYTES];
		sdfs_file_sum(m->csums, m->nchunks, sum);
		rv = memcmp(sum, m->sum, sizeof(sum)) ? IDN_ECORRUPT : IDN_OK;
	}
	while (rv == IDN_OK && !m->tomb && s->scrub_chunk < m->nchunks &&
	    *budget > 0 && !s->stop) {
		size_t len = 0;
		rv = sdfs_store_read_chunk(s->st, name, m, s->scrub_chunk, buf,
		    &len);
		*budget -= CORE_MIN(*budget, (uint64_t) len + 1);
		s->scrub_bytes += len;
		s->scrub_chunk++;
	}
	if (rv == IDN_ECORRUPT) {
		sdfs_repair(s, name, m->ver);
	}
	return rv != IDN_OK || m->tomb || s->scrub_chunk >= m->nchunks;
}

static void
scrub_pass_done(sdfs *s)
{
	uint64_t now = idn_clock_ms(), ms = now - s->scrub_start_ms;
	uint64_t n = atomic_fetch_add(&s->n_scrub_passes, 1) + 1;
	atomic_fetch_add(&s->n_scrub_ms, ms);
	atomic_store(&s->last_scrub_ms, ms);
	if (ms > 60000 || n % 30 == 1) {
		core_logf(s->lg, IDN_LOG_INFO, "sdfs: scrub pass %" PRIu64
		    ": %" PRIu64 " versions, %" PRIu64 " bytes checked in "
		    "%.1f s", n, s->scrub_vers, s->scrub_bytes,
		    (double) ms / 1000.0);
	}
	scrub_next_name(s, NULL);
	s->scrub_start_ms = 0;
}

// Scrub: re-reads every version of every name held here, a bounded
// number of bytes per round, so corruption in a file nobody reads is found
// too; a pass starts at most every SCRUB_IDLE_MS.
static void
scrub(sdfs *s, ae_plan *p)
{
	uint64_t now = idn_clock_ms();
	if (s->scrub_start_ms == 0) {
		if (s->scrub_ready_ms > now) {
			return;
		}
		s->scrub_start_ms = now;
		s->scrub_bytes = s->scrub_vers = 0;
	}
	uint64_t budget = scrub_budget(p, s->lim.scrub_pass_ms);
	uint8_t *buf = malloc(SDFS_CHUNK_MAX);
	if (buf == NULL) {
		return;
	}
	while (budget > 0 && !s->stop) {
		// The scrub's name, or the one after it once its versions are
		// done (scrub_ver 0); names are sorted.
		size_t i = 0;
		while (s->scrub_name != NULL && i < p->ne &&
		    (strcmp(p->e[i].name, s->scrub_name) < 0 ||
		        (s->scrub_ver == 0 &&
		            strcmp(p->e[i].name, s->scrub_name) == 0))) {
			i++;
		}
		if (i >= p->ne) {
			scrub_pass_done(s);
			s->scrub_ready_ms = now + SCRUB_IDLE_MS;
			break;
		}
		const char *name = p->e[i].name;
		if (s->scrub_name == NULL || strcmp(name, s->scrub_name) != 0) {
			scrub_next_name(s, name);
		}
		sdfs_vmeta *vers = NULL, m;
		size_t nv = 0, k = 0;
		(void) sdfs_store_versions(s->st, name, &vers, &nv);
		while (k < nv && vers[k].ver > s->scrub_ver) {
			k++;
		}
		uint64_t ver = k < nv ? vers[k].ver : 0;
		idn_free(vers);
		budget -= CORE_MIN(budget, 4096u); // a listing costs too
		if (ver == 0) {
			s->scrub_ver = 0; // this name is done
			continue;
		}
		int rv = sdfs_store_meta(s->st, name, ver, &m);
		bool done = true;
		if (rv == IDN_ECORRUPT) {
			sdfs_repair(s, name, ver);
		} else if (rv == IDN_OK) {
			done = scrub_version(s, name, &m, buf, &budget);
			sdfs_vmeta_clear(&m);
		}
		if (done) {
			s->scrub_vers++;
			s->scrub_ver = ver - 1;
			s->scrub_chunk = 0;
		}
	}
	free(buf);
}

// One anti-entropy round. Every holder of a name offers its versions to
// each member of the name's replica set, which pulls what it lacks; copies
// that moved are dropped; part of the store is scrubbed. True when names remain
// after the round's slice (the next round should come soon).
static bool
ae_round(sdfs *s)
{
	ae_plan p;
	if (plan_build(s, &p) != IDN_OK) {
		return false;
	}
	for (size_t k = 0; k < p.v.n && !s->stop; k++) {
		// A round can outlive the view it started from: skip peers
		// that membership has since declared gone.
		if (p.b[k].n > 0 && !sdfs_peer_bad(s, p.b[k].addr) &&
		    sdfs_still_alive(s, p.b[k].addr)) {
			exchange(s, &p, k);
		}
	}
	drop_moved(s, &p);
	scrub(s, &p);
	bool more = p.to < p.ne;
	char *cur = more && p.to > 0 ? core_strdup(p.e[p.to - 1].name) : NULL;
	free(s->ae_cursor);
	s->ae_cursor = cur;
	plan_free(&p);
	return more && cur != NULL;
}

static uint64_t
view_fingerprint(sdfs *s)
{
	idn_member *m;
	size_t n;
	uint64_t h = 1469598103934665603u;
	if (s->members(s->members_arg, &m, &n) != IDN_OK) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		for (const char *p = m[i].id; *p; p++) {
			h = (h ^ (uint8_t) *p) * 1099511628211u;
		}
		h = (h ^ '|') * 1099511628211u;
	}
	idn_free(m);
	return h;
}

static void
expire(sdfs *s)
{
	uint64_t now = idn_clock_ms();
	// Shorter in tests that wait for it.
	uint64_t idle = s->lim.session_idle_ms;
	rtx *dead_r = NULL;
	put_sess *dead_p = NULL;
	core_lock(&s->lock);
	for (rtx **pp = &s->rtxs; *pp != NULL;) {
		rtx *t = *pp;
		if (now - t->last_ms > idle) {
			*pp = t->next;
			t->next = dead_r;
			dead_r = t;
		} else {
			pp = &t->next;
		}
	}
	for (put_sess **pp = &s->puts; *pp != NULL;) {
		put_sess *p = *pp;
		if (p->state != COMMITTING &&
		    now - p->last_ms > idle) {
			*pp = p->next;
			p->next = dead_p;
			dead_p = p;
		} else {
			pp = &p->next;
		}
	}
	core_unlock(&s->lock);
	while (dead_r != NULL) {
		rtx *t = dead_r;
		dead_r = t->next;
		sdfs_rtx_free(t);
	}
	while (dead_p != NULL) {
		put_sess *p = dead_p;
		dead_p = p->next;
		sdfs_sess_free(p);
	}
}

static void
wait_ms(sdfs *s, uint64_t ms)
{
	uint64_t end = idn_clock_ms() + ms;
	core_lock(&s->lock);
	if (!s->stop) {
		core_cond_wait_until(&s->cv, &s->lock, end);
	}
	core_unlock(&s->lock);
}

// Re-replication after a failure (every name the dead node held, on
// every node at once) must not starve the nodes' own work on a loaded
// machine: an anti-entropy round rests twice, a background pull four
// times as long as it worked (at most BG_REST_MAX_MS) before the next
// one, a view change included.
#define AE_IDLE 2
#define PULL_IDLE 4
#define BG_REST_MAX_MS 2000
// While puts are being written here (one began in the last FG_RECENT_MS),
// a pull also rests at least PULL_BUSY_REST_MS: a small file's pull takes
// a few ms, so resting 4 times as long still let every node pull 50-80
// copies a second after a failure, and their fsyncs stalled the cluster's
// result puts for one or two seconds (bench/failover). The window outlasts
// such a stall, so that the stall itself does not lift the limit. An idle
// cluster re-replicates at full pace.
#define PULL_BUSY_REST_MS 100
#define FG_RECENT_MS 3000

static uint64_t
rest_until(uint64_t start_ms, uint64_t idle)
{
	uint64_t now = idn_clock_ms();
	return now + CORE_MIN((now - start_ms) * idle,
	    (uint64_t) BG_REST_MAX_MS);
}

void *
sdfs_ae_thread(void *arg)
{
	sdfs *s = arg;
	uint64_t last_fp = 0, last_round = 0, rested = 0;
	bool more = false;
	while (!s->stop) {
		uint64_t fp = view_fingerprint(s);
		uint64_t now = idn_clock_ms();
		if (now >= rested && (fp != last_fp ||
		    now - last_round >= AE_PERIOD_MS || more)) {
			last_fp = fp;
			last_round = now;
			more = ae_round(s);
			expire(s);
			rested = rest_until(now, AE_IDLE);
		}
		wait_ms(s, AE_POLL_MS);
	}
	return NULL;
}

void *
sdfs_pull_thread(void *arg)
{
	sdfs *s = arg;
	core_lock(&s->lock);
	while (!s->stop) {
		pull_job *j = s->jobs;
		if (j == NULL) {
			pthread_cond_wait(&s->cv, &s->lock);
			continue;
		}
		s->jobs = j->next;
		core_unlock(&s->lock);
		uint64_t start = idn_clock_ms();
		int rv = j->resolve ? IDN_EEXIST :
		    sdfs_pull_now(s, j->name, j->ver, j->src, j->nsrc);
		if (rv == IDN_EEXIST) {
			// Held here with other bytes than the source's.
			rv = sdfs_resolve(s, j->name, j->ver, j->src, j->nsrc);
		}
		if (rv != IDN_OK) {
			core_logf(s->lg, IDN_LOG_WARN, "sdfs: pull of '%s' "
			    "version %" PRIu64 " failed: %s", j->name, j->ver,
			    idn_strerror(rv));
		}
		free(j->name);
		free(j);
		uint64_t until = rest_until(start, PULL_IDLE), now = idn_clock_ms();
		if (now < atomic_load(&s->fg_write_ms) + FG_RECENT_MS) {
			until = CORE_MAX(until, now + PULL_BUSY_REST_MS);
		}
		for (; !s->stop && (now = idn_clock_ms()) < until;) {
			wait_ms(s, until - now);
		}
		core_lock(&s->lock);
	}
	core_unlock(&s->lock);
	return NULL;
}
