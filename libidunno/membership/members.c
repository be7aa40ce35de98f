// SPDX-License-Identifier: MIT
// members.c: the SWIM membership table and its update rules.
#include <stdlib.h>
#include <string.h>

#include "membership/members.h"

static uint64_t
id_start_ms(const char *id)
{
	const char *c = strrchr(id, ':');
	return c ? strtoull(c + 1, NULL, 10) : 0;
}

static void
emit(mtable *t, const idn_member *m, int event)
{
	if (t->nev == t->evcap) {
		size_t cap = t->evcap ? t->evcap * 2 : 16;
		mevent *p = core_realloc(t->ev, cap * sizeof(*p));
		if (p == NULL) {
			return; // events are advisory; the table stays right
		}
		t->ev = p;
		t->evcap = cap;
	}
	t->ev[t->nev].m = *m;
	t->ev[t->nev].event = event;
	t->nev++;
}

uint32_t
mtable_retransmits(const mtable *t)
{
	uint32_t lg = 1;
	while ((1u << lg) < t->n + 1) {
		lg++;
	}
	return 3 * lg;
}

static void
changed(mtable *t, mentry *e, uint64_t now_ms)
{
	e->gossip_left = mtable_retransmits(t);
	e->m.since_ms = idn_wall_ms();
	if (e->m.state == IDN_MEMBER_SUSPECT) {
		e->deadline_ms = now_ms + t->suspect_ms;
	} else if (e->m.state == IDN_MEMBER_FAILED) {
		e->deadline_ms = now_ms + t->failed_keep_ms;
	} else if (e->m.state == IDN_MEMBER_LEFT) {
		e->deadline_ms = now_ms + t->tombstone_ms;
	}
}

static mentry *
add(mtable *t, const idn_member *m)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		mentry *p = core_realloc(t->v, cap * sizeof(*p));
		if (p == NULL) {
			return NULL;
		}
		t->v = p;
		t->cap = cap;
	}
	mentry *e = &t->v[t->n++];
	memset(e, 0, sizeof(*e));
	e->m = *m;
	return e;
}

int
mtable_init(mtable *t, const idn_member *self, uint64_t suspect_ms)
{
	memset(t, 0, sizeof(*t));
	t->suspect_ms = suspect_ms;
	t->tombstone_ms = 5 * 60 * 1000;
	t->failed_keep_ms = 60 * 60 * 1000;
	mentry *e = add(t, self);
	if (e == NULL) {
		return IDN_ENOMEM;
	}
	e->m.state = IDN_MEMBER_ALIVE;
	e->gossip_left = mtable_retransmits(t);
	t->self = 0;
	return IDN_OK;
}

void
mtable_fini(mtable *t)
{
	free(t->v);
	free(t->ev);
	memset(t, 0, sizeof(*t));
}

const idn_member *
mtable_self(const mtable *t)
{
	return &t->v[t->self].m;
}

mentry *
mtable_find(mtable *t, const char *id)
{
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->v[i].m.id, id) == 0) {
			return &t->v[i];
		}
	}
	return NULL;
}

static void
set_state(mtable *t, mentry *e, int state, uint64_t inc, uint64_t now_ms)
{
	static const int events[] = {IDN_EV_ALIVE, IDN_EV_SUSPECT,
	    IDN_EV_FAIL, IDN_EV_LEAVE};
	e->m.state = state;
	e->m.incarnation = inc;
	changed(t, e, now_ms);
	emit(t, &e->m, events[state]);
}

// A newer process on the same address proves the older one is gone.
static bool
supersede_same_addr(mtable *t, const idn_member *u, uint64_t now_ms)
{
	uint64_t start = id_start_ms(u->id);
	for (size_t i = 0; i < t->n; i++) {
		mentry *o = &t->v[i];
		if (strcmp(o->m.addr, u->addr) != 0 ||
		    strcmp(o->m.id, u->id) == 0 ||
		    o->m.state >= IDN_MEMBER_FAILED) {
			continue;
		}
		if (id_start_ms(o->m.id) > start || i == t->self) {
			return false; // u is the stale one
		}
		set_state(t, o, IDN_MEMBER_FAILED, o->m.incarnation, now_ms);
		o->superseded = true;
		o->deadline_ms = now_ms + t->tombstone_ms;
	}
	return true;
}

merge_action
mtable_merge(const idn_member *have, bool self, const idn_member *u,
    idn_member *out)
{
	if (have == NULL) {
		// Never heard of it and it is gone: nothing to do.
		*out = *u;
		return u->state >= IDN_MEMBER_FAILED ? MERGE_IGNORE : MERGE_ADD;
	}
	*out = *have;
	if (self) {
		// Only we may raise our incarnation: any rumour that we are
		// not alive, failed included, is refuted above its own.
		if (have->state == IDN_MEMBER_ALIVE &&
		    u->state != IDN_MEMBER_ALIVE &&
		    u->incarnation >= have->incarnation) {
			out->incarnation = u->incarnation + 1;
			return MERGE_REFUTE;
		}
		return MERGE_IGNORE;
	}
	if (have->state == IDN_MEMBER_LEFT) {
		return MERGE_IGNORE; // final for this id
	}
	if (u->state == IDN_MEMBER_LEFT) {
		out->state = IDN_MEMBER_LEFT; // only the member says so
		return MERGE_STATE;
	}
	if (have->state == IDN_MEMBER_FAILED) {
		// The member refuted its failure (a healed partition, a
		// pause): it is back under its new incarnation.
		if (u->state == IDN_MEMBER_ALIVE &&
		    u->incarnation > have->incarnation) {
			out->state = IDN_MEMBER_ALIVE;
			out->incarnation = u->incarnation;
			return MERGE_STATE;
		}
		return MERGE_IGNORE;
	}
	switch (u->state) {
	case IDN_MEMBER_ALIVE:
		if (u->incarnation <= have->incarnation) {
			return MERGE_IGNORE;
		}
		out->incarnation = u->incarnation;
		out->state = IDN_MEMBER_ALIVE;
		return have->state == IDN_MEMBER_SUSPECT ? MERGE_STATE :
		                                           MERGE_NEWER;
	case IDN_MEMBER_SUSPECT:
		if (u->incarnation < have->incarnation ||
		    (u->incarnation == have->incarnation &&
		        have->state == IDN_MEMBER_SUSPECT)) {
			return MERGE_IGNORE;
		}
		out->incarnation = u->incarnation;
		if (have->state == IDN_MEMBER_SUSPECT) {
			return MERGE_QUIET;
		}
		out->state = IDN_MEMBER_SUSPECT;
		return MERGE_STATE;
	default:
		// Someone else's verdict: never final here. A member we hold
		// alive is suspected (our own timer, and the member hears of
		// it and can refute); a suspicion already running goes on.
		if (u->incarnation < have->incarnation ||
		    have->state == IDN_MEMBER_SUSPECT) {
			return MERGE_IGNORE;
		}
		out->incarnation = u->incarnation;
		out->state = IDN_MEMBER_SUSPECT;
		return MERGE_STATE;
	}
}

void
mtable_apply(mtable *t, const idn_member *u, uint64_t now_ms)
{
	mentry *e = mtable_find(t, u->id);
	bool self = e == &t->v[t->self];
	idn_member m;
	switch (mtable_merge(e ? &e->m : NULL, self, u, &m)) {
	case MERGE_IGNORE:
		break;
	case MERGE_ADD:
		if (!supersede_same_addr(t, u, now_ms) ||
		    (e = add(t, u)) == NULL) {
			return;
		}
		changed(t, e, now_ms);
		emit(t, &e->m, IDN_EV_JOIN);
		if (u->state == IDN_MEMBER_SUSPECT) {
			emit(t, &e->m, IDN_EV_SUSPECT);
		}
		break;
	case MERGE_REFUTE:
	case MERGE_NEWER:
		e->m.incarnation = m.incarnation;
		changed(t, e, now_ms);
		break;
	case MERGE_QUIET:
		e->m.incarnation = m.incarnation;
		break;
	case MERGE_STATE:
		if (e->m.state == IDN_MEMBER_FAILED &&
		    m.state == IDN_MEMBER_ALIVE) {
			e->m.state = m.state;
			e->m.incarnation = m.incarnation;
			changed(t, e, now_ms);
			emit(t, &e->m, IDN_EV_JOIN);
		} else {
			set_state(t, e, m.state, m.incarnation, now_ms);
		}
		break;
	}
}

uint64_t
mtable_next_deadline(const mtable *t)
{
	uint64_t next = UINT64_MAX;
	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i].m.state == IDN_MEMBER_SUSPECT &&
		    t->v[i].deadline_ms < next) {
			next = t->v[i].deadline_ms;
		}
	}
	return next;
}

bool
mtable_fail(mtable *t, const idn_member *m, uint64_t now_ms)
{
	mentry *e = mtable_find(t, m->id);
	if (e == NULL || e == &t->v[t->self] ||
	    e->m.state > IDN_MEMBER_SUSPECT ||
	    e->m.incarnation != m->incarnation) {
		return false; // gone, or refuted meanwhile
	}
	set_state(t, e, IDN_MEMBER_FAILED, e->m.incarnation, now_ms);
	return true;
}

void
mtable_suspect(mtable *t, const char *id, uint64_t now_ms)
{
	mentry *e = mtable_find(t, id);
	if (e != NULL && e != &t->v[t->self] &&
	    e->m.state == IDN_MEMBER_ALIVE) {
		set_state(t, e, IDN_MEMBER_SUSPECT, e->m.incarnation, now_ms);
	}
}

void
mtable_leave_self(mtable *t, uint64_t now_ms)
{
	mentry *e = &t->v[t->self];
	e->m.state = IDN_MEMBER_LEFT;
	changed(t, e, now_ms);
}

void
mtable_tick(mtable *t, uint64_t now_ms)
{
	for (size_t i = 0; i < t->n;) {
		mentry *e = &t->v[i];
		if (i != t->self && e->m.state == IDN_MEMBER_SUSPECT &&
		    now_ms >= e->deadline_ms) {
			set_state(t, e, IDN_MEMBER_FAILED, e->m.incarnation,
			    now_ms);
		}
		if (i != t->self && e->m.state >= IDN_MEMBER_FAILED &&
		    now_ms >= e->deadline_ms) {
			// Drop the tombstone; keep the self index right.
			t->v[i] = t->v[t->n - 1];
			if (t->self == t->n - 1) {
				t->self = i;
			}
			t->n--;
			continue;
		}
		i++;
	}
}

static bool
reconnectable(const mentry *e)
{
	return e->m.state == IDN_MEMBER_FAILED && !e->superseded;
}

bool
mtable_reconnect_target(mtable *t, idn_member *out)
{
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++) {
		n += reconnectable(&t->v[i]);
	}
	size_t pick = n > 0 ? core_random() % n : 0;
	for (size_t i = 0; i < t->n; i++) {
		if (reconnectable(&t->v[i]) && pick-- == 0) {
			*out = t->v[i].m;
			return true;
		}
	}
	return false;
}

size_t
mtable_gossip(mtable *t, idn_member *out, size_t max)
{
	size_t k = 0;
	// Owed records, most owed first: a fresh update spreads fastest.
	while (k < max) {
		mentry *best = NULL;
		for (size_t i = 0; i < t->n; i++) {
			mentry *e = &t->v[i];
			bool taken = false;
			for (size_t j = 0; j < k && !taken; j++) {
				taken = strcmp(out[j].id, e->m.id) == 0;
			}
			if (!taken && e->gossip_left > 0 &&
			    (best == NULL || e->gossip_left > best->gossip_left)) {
				best = e;
			}
		}
		if (best == NULL) {
			break;
		}
		best->gossip_left--;
		out[k++] = best->m;
	}
	// Two random live records: anti-entropy for anything a member
	// missed, at a constant cost per message.
	for (int r = 0; r < 2 && k < max && t->n > 0; r++) {
		mentry *e = &t->v[core_random() % t->n];
		bool taken = false;
		for (size_t j = 0; j < k && !taken; j++) {
			taken = strcmp(out[j].id, e->m.id) == 0;
		}
		if (!taken && e->m.state <= IDN_MEMBER_SUSPECT) {
			out[k++] = e->m;
		}
	}
	return k;
}
