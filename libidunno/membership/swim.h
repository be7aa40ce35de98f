// SPDX-License-Identifier: MIT
// swim.h: the SWIM failure detector and gossip of one node.
#ifndef IDN_MEMBERSHIP_SWIM_H
#define IDN_MEMBERSHIP_SWIM_H

#include "membership/members.h"
#include "rpc/rpc.h"

typedef struct swim swim;

typedef struct {
	idn_duration period_ms;
	idn_duration ping_timeout_ms;
	idn_duration suspect_ms;
	idn_duration join_timeout_ms;
	int indirect;
} swim_opts;

// Event callback: serialized, called with no membership lock held.
typedef void (*swim_event_fn)(void *arg, const idn_member *m, int event);

// swim_open registers the swim.* routes on the endpoint (before it
// serves); swim_join then contacts the introducers (none: a new cluster)
// and starts probing. lg is kept and must outlive s.
int swim_open(rpc *r, const core_logger *lg, const idn_member *self,
    const swim_opts *o, swim_event_fn fn, void *arg, swim **out);
int swim_join(swim *s, const char *const *introducers, size_t n);
int swim_leave(swim *s);
// swim_stop ends the protocol's threads (no event is delivered after it
// returns); the view stays readable until swim_close.
void swim_stop(swim *s);
void swim_close(swim *s);
// swim_members copies the table; live_only keeps alive and suspect ones.
int swim_members(swim *s, bool live_only, idn_member **out, size_t *n);

#endif
