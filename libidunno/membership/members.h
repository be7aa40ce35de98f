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
	bool superseded;      // failed because a newer process took its address
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
	uint64_t tombstone_ms;   // how long left and superseded entries are kept
	uint64_t failed_keep_ms; // how long failed ones are (to reconnect)
	// events produced by the last calls, drained by the owner
	mevent *ev;
	size_t nev;
	size_t evcap;
} mtable;

int mtable_init(mtable *t, const idn_member *self, uint64_t suspect_ms);
void mtable_fini(mtable *t);
const idn_member *mtable_self(const mtable *t);
mentry *mtable_find(mtable *t, const char *id);

// What a gossiped record does to the one held.
typedef enum {
	MERGE_IGNORE, // stale, or no news
	MERGE_ADD,    // an unknown member: *out is u
	MERGE_NEWER,  // same state at a higher incarnation (gossiped on)
	MERGE_QUIET,  // a running suspicion at a higher incarnation
	MERGE_STATE,  // a change to out->state at out->incarnation
	MERGE_REFUTE, // about ourselves: raise ours to out->incarnation
} merge_action;

// mtable_merge decides how gossip record u merges into have (NULL: id
// unknown; self: it is our own record) and fills *out with the result.
// Pure. The rules (SWIM's, with Lifeguard's caution about verdicts):
// higher incarnation wins; suspect beats alive at equal incarnation; left
// is final; "failed" from someone else only makes a member we hold alive
// suspect, so our own timer decides and the member can refute; a failed
// member comes back when it is alive at a higher incarnation; any rumour
// that we are not alive is refuted one incarnation above it.
merge_action mtable_merge(const idn_member *have, bool self,
    const idn_member *u, idn_member *out);
// mtable_apply merges one gossiped record by mtable_merge. A new id on the
// address of an older id means that process restarted: the old id is
// failed at once, for good.
void mtable_apply(mtable *t, const idn_member *u, uint64_t now_ms);
// Local observations of the failure detector. mtable_fail fails m (a
// member someone else declared failed that did not answer our own ping)
// unless it refuted meanwhile (its incarnation changed); true if it did.
bool mtable_fail(mtable *t, const idn_member *m, uint64_t now_ms);
void mtable_suspect(mtable *t, const char *id, uint64_t now_ms);
void mtable_leave_self(mtable *t, uint64_t now_ms);
// mtable_tick fails suspects whose deadline passed and drops tombstones;
// mtable_next_deadline is the earliest suspicion deadline (UINT64_MAX:
// none).
uint64_t mtable_next_deadline(const mtable *t);
void mtable_tick(mtable *t, uint64_t now_ms);
// mtable_reconnect_target picks a random failed member that may only have
// been cut off (not replaced by a newer process): false if there is none.
bool mtable_reconnect_target(mtable *t, idn_member *out);
// mtable_gossip picks up to max records to piggyback: owed ones first,
// then random others (anti-entropy), decrementing what is owed.
size_t mtable_gossip(mtable *t, idn_member *out, size_t max);
// Retransmissions owed for a fresh update: 3 * ceil(log2(n + 1)).
uint32_t mtable_retransmits(const mtable *t);

#endif
