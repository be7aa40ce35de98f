// SPDX-License-Identifier: MIT
// repair.c: the background of a node's SDFS: anti-entropy rounds that
// bring every file back to IDN_SDFS_REPLICAS copies and drop copies that
// moved, the puller, the scrub, and expiry of abandoned writes.
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sdfs/server.h"

typedef struct batch {
	char addr[IDN_ADDR_MAX];
	sdfs_offer *items;
	size_t *names; // index into the local listing per item
	size_t n;
	size_t cap;
} batch;

// One anti-entropy round. Every holder of a name offers its versions to
// each member of the name's replica set, which pulls what it lacks. A
// holder outside the set drops its copy once every member of the set has
// answered that it lacks nothing.
static void
ae_round(sdfs *s)
{
	view v;
	sdfs_entry *e = NULL;
	size_t ne = 0;
	if (sdfs_view_get(s, &v) != IDN_OK) {
		return;
	}
	if (sdfs_store_list(s->st, "", &e, &ne) != IDN_OK) {
		sdfs_view_free(&v);
		return;
	}
	batch *b = core_alloc(sizeof(*b) * (v.n ? v.n : 1));
	size_t *need = core_alloc(sizeof(size_t) * (ne ? ne : 1));
	size_t *ok = core_alloc(sizeof(size_t) * (ne ? ne : 1));
	bool *mine = core_alloc(sizeof(bool) * (ne ? ne : 1));
	sdfs_vmeta **vers = core_alloc(sizeof(*vers) * (ne ? ne : 1));
	uint64_t **vv = core_alloc(sizeof(*vv) * (ne ? ne : 1));
	if (b == NULL || need == NULL || ok == NULL || mine == NULL ||
	    vers == NULL || vv == NULL) {
		goto out;
	}
	for (size_t i = 0; i < v.n; i++) {
		snprintf(b[i].addr, IDN_ADDR_MAX, "%s", v.m[i].addr);
	}
	for (size_t i = 0; i < ne; i++) {
		size_t idx[R], nr, nv;
		if (sdfs_store_versions(s->st, e[i].name, &vers[i], &nv) !=
		    IDN_OK || nv == 0) {
			idn_free(vers[i]);
			vers[i] = NULL;
			continue;
		}
		e[i].nvers = (uint32_t) nv;
		sdfs_ring_lookup(v.ring, e[i].name, idx, R, &nr);
		for (size_t k = 0; k < nr; k++) {
			batch *bb = &b[idx[k]];
			if (sdfs_is_self(s, bb->addr)) {
				mine[i] = true;
				continue;
			}
			need[i]++;
			if (bb->n == OFFERS_PER_CALL) {
				need[i] = SIZE_MAX / 2; // next round
				continue;
			}
			if (bb->n == bb->cap) {
				size_t cap = bb->cap ? 2 * bb->cap : 16;
				sdfs_offer *it = core_realloc(bb->items,
				    cap * sizeof(*it));
				size_t *nm = it ? core_realloc(bb->names,
				    cap * sizeof(*nm)) : NULL;
				if (it != NULL) {
					bb->items = it;
				}
				if (nm == NULL) {
					need[i] = SIZE_MAX / 2;
					continue;
				}
				bb->names = nm;
				bb->cap = cap;
			}
			sdfs_offer *o = &bb->items[bb->n];
			o->name = e[i].name;
			o->nvers = nv;
			o->vers = NULL;
			bb->names[bb->n++] = i;
		}
	}
	// Version numbers of the offers (shared by all batches).
	for (size_t i = 0; i < ne; i++) {
		size_t nv = vers[i] ? e[i].nvers : 0;
		vv[i] = vers[i] ? core_alloc(sizeof(uint64_t) * (nv + 1)) : NULL;
		for (size_t k = 0; vv[i] != NULL && k < nv; k++) {
			vv[i][k] = vers[i][k].ver;
		}
	}
	for (size_t p = 0; p < v.n; p++) {
		for (size_t q = 0; q < b[p].n; q++) {
			size_t i = b[p].names[q];
			b[p].items[q].vers = vv[i];
			b[p].items[q].nvers = vv[i] ? b[p].items[q].nvers : 0;
		}
	}
	for (size_t p = 0; p < v.n && !s->stop; p++) {
		// A round can outlive the view it started from: skip peers
		// that membership has since declared gone.
		if (b[p].n == 0 || sdfs_peer_bad(s, b[p].addr) ||
		    !sdfs_still_alive(s, b[p].addr)) {
			continue;
		}
		wire_wr *w = sdfs_body_new();
		wire_doc *doc = NULL;
		wire_env env;
		sdfs_offer *lack = NULL;
		size_t nl = 0;
		if (w == NULL) {
			break;
		}
		wire_map(w, 2);
		wire_kstr(w, "from", s->self_addr);
		wire_str(w, "items");
		sdfs_offer_put_arr(w, b[p].items, b[p].n);
		int rv = sdfs_call(s, b[p].addr, "sdfs.r.have", w,
		    STAT_TIMEOUT_MS, &doc, &env);
		wire_wr_free(w);
		if (rv == IDN_OK &&
		    sdfs_offer_get_arr(wire_get(env.body, "lack"),
		        OFFERS_PER_CALL, &lack, &nl) == IDN_OK) {
			for (size_t q = 0; q < b[p].n; q++) {
				bool lacks = false;
				for (size_t k = 0; k < nl; k++) {
					lacks = lacks || strcmp(lack[k].name,
					    b[p].items[q].name) == 0;
				}
				ok[b[p].names[q]] += !lacks;
			}
			sdfs_offer_free_arr(lack, nl);
		}
		wire_doc_free(doc);
	}
	for (size_t i = 0; i < ne && !s->stop; i++) {
		if (vers[i] != NULL && !mine[i] && need[i] > 0 &&
		    ok[i] == need[i]) {
			core_logf(s->lg, IDN_LOG_INFO, "sdfs: dropping '%s': "
			    "no longer a replica and all %zu replicas have it",
			    e[i].name, need[i]);
			sdfs_store_drop_name(s->st, e[i].name);
		}
	}
	// Scrub: re-check one small version per round, so a corrupt copy is
	// found even if nobody reads it.
	if (ne > 0) {
		size_t i = s->scrub_next++ % ne;
		if (vers[i] != NULL && !e[i].tomb) {
			const sdfs_vmeta *m = &vers[i][0];
			if (!m->tomb && m->size <= SCRUB_MAX_BYTES &&
			    sdfs_store_verify(s->st, e[i].name, m->ver) ==
			        IDN_ECORRUPT) {
				sdfs_repair(s, e[i].name, m->ver);
			}
		}
	}
out:
	for (size_t i = 0; e != NULL && i < ne; i++) {
		if (vers != NULL && vv != NULL) {
			free(vv[i]);
			idn_free(vers[i]);
		}
	}
	for (size_t p = 0; b != NULL && p < v.n; p++) {
		free(b[p].items);
		free(b[p].names);
	}
	free(b);
	free(need);
	free(ok);
	free(mine);
	free(vers);
	free(vv);
	sdfs_entry_free_arr(e, ne);
	sdfs_view_free(&v);
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
	rtx *dead_r = NULL;
	put_sess *dead_p = NULL;
	pthread_mutex_lock(&s->lock);
	for (rtx **pp = &s->rtxs; *pp != NULL;) {
		rtx *t = *pp;
		if (now - t->last_ms > SESSION_IDLE_MS) {
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
		    now - p->last_ms > SESSION_IDLE_MS) {
			*pp = p->next;
			p->next = dead_p;
			dead_p = p;
		} else {
			pp = &p->next;
		}
	}
	pthread_mutex_unlock(&s->lock);
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
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ns = (uint64_t) ts.tv_nsec + ms * 1000000u;
	ts.tv_sec += (time_t) (ns / 1000000000u);
	ts.tv_nsec = (long) (ns % 1000000000u);
	pthread_mutex_lock(&s->lock);
	if (!s->stop) {
		pthread_cond_timedwait(&s->cv, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
}

void *
sdfs_ae_thread(void *arg)
{
	sdfs *s = arg;
	uint64_t last_fp = 0, last_round = 0;
	while (!s->stop) {
		uint64_t fp = view_fingerprint(s);
		uint64_t now = idn_clock_ms();
		if (fp != last_fp || now - last_round >= AE_PERIOD_MS) {
			last_fp = fp;
			last_round = now;
			ae_round(s);
			expire(s);
		}
		wait_ms(s, AE_POLL_MS);
	}
	return NULL;
}

void *
sdfs_pull_thread(void *arg)
{
	sdfs *s = arg;
	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		pull_job *j = s->jobs;
		if (j == NULL) {
			pthread_cond_wait(&s->cv, &s->lock);
			continue;
		}
		s->jobs = j->next;
		pthread_mutex_unlock(&s->lock);
		int rv = sdfs_pull_now(s, j->name, j->ver, j->src, j->nsrc);
		if (rv != IDN_OK) {
			core_logf(s->lg, IDN_LOG_WARN, "sdfs: pull of '%s' "
			    "version %" PRIu64 " failed: %s", j->name, j->ver,
			    idn_strerror(rv));
		}
		free(j->name);
		free(j);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}
