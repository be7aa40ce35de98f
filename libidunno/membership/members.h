// SPDX-License-Identifier: MIT
// members.h: SWIM's membership table as a pure state machine: applying
// updates, suspicion deadlines, and choosing what to piggyback. No I/O, no
// locks: swim.c owns both.
#ifndef IDN_MEMBERSHIP_MEMBERS_H
#define IDN_MEMBERSHIP_MEMBERS_H

#include <idunno/membership.h>

#include "core/core.h"

typedef struct {
	idn_member m;
	uint64_t deadline_ms; // suspicion expiry, or tombstone expiry
	uint32_t gossip_left; // piggyback retransmissions still owed
} mentry;

typedef struct {
	idn_member m;
	int event; // enum idn_member_event
} mevent;

typedef struct {
	mentry *v;
	size_t n;
	size_t cap;
	size_t self; // index of our own entry
	uint64_t suspect_ms;
	uint64_t tombstone_ms; // how long failed/left entries are kept
	// events produced by the last calls, drained by the owner
	mevent *ev;
	size_t nev;
	size_t evcap;
} mtable;

int mtable_init(mtable *t, const idn_member *self, uint64_t suspect_ms);
void mtable_fini(mtable *t);
const idn_member *mtable_self(const mtable *t);
mentry *mtable_find(mtable *t, const char *id);

// mtable_apply merges one gossiped record (SWIM's precedence rules:
// higher incarnation wins; suspect beats alive at equal incarnation;
// failed and left are final for an id). A suspicion of ourselves is
// refuted by raising our incarnation. A new id on the address of an older
// id means that process restarted: the old id is failed at once.
void mtable_apply(mtable *t, const idn_member *u, uint64_t now_ms);
// Local observations of the failure detector.
void mtable_suspect(mtable *t, const char *id, uint64_t now_ms);
void mtable_leave_self(mtable *t, uint64_t now_ms);
// mtable_tick fails suspects whose deadline passed and drops tombstones.
void mtable_tick(mtable *t, uint64_t now_ms);
// mtable_gossip picks up to max records to piggyback: owed ones first,
// then random others (anti-entropy), decrementing what is owed.
size_t mtable_gossip(mtable *t, idn_member *out, size_t max);
// Retransmissions owed for a fresh update: 3 * ceil(log2(n + 1)).
uint32_t mtable_retransmits(const mtable *t);

#endif
