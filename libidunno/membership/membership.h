// SPDX-License-Identifier: MIT
// membership.h: a node's membership service: SWIM, the sorted member
// views, watchers, the published event stream and the node.members route.
#ifndef IDN_MEMBERSHIP_MEMBERSHIP_H
#define IDN_MEMBERSHIP_MEMBERSHIP_H

#include <idunno/client.h>
#include <idunno/membership.h>

#include "membership/swim.h"

typedef struct membership membership;

typedef struct {
	rpc *rpc;             // routes go on it; calls go through it
	const core_logger *lg; // kept; must outlive the membership
	const uint8_t *key;   // seals published events (IDN_KEY_BYTES)
	const idn_member *self;
	swim_opts swim;
} membership_opts;

// membership_open opens the event publisher (a free port on the
// endpoint's host) and SWIM, and registers the routes; call before the
// endpoint serves. membership_join then joins through the introducers.
int membership_open(const membership_opts *o, membership **out);
int membership_join(membership *m, const char *const *intro, size_t n);
int membership_leave(membership *m);
// membership_stop ends the protocol (no more events, no more calls);
// membership_members still answers until membership_close. The endpoint
// must have stopped serving first.
void membership_stop(membership *m);
void membership_close(membership *m);
// membership_members copies the view sorted by id (caller frees with
// idn_free); live_only keeps the alive and suspected members.
int membership_members(membership *m, bool live_only, idn_member **out,
    size_t *count);
// membership_watch adds a watcher until close. IDN_EBUSY when full.
int membership_watch(membership *m, idn_member_fn fn, void *arg);
const char *membership_pub_addr(const membership *m);
// membership_publish_stats publishes a stats snapshot on the same sealed
// stream ({stats: json, text}); subscribers that want only membership
// events skip it.
void membership_publish_stats(membership *m, const char *json,
    const char *text);

#endif
