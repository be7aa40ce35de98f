// SPDX-License-Identifier: MIT
// member_msg.h: membership records on the wire (gossip, joins, listings).
#ifndef IDN_WIRE_MEMBER_MSG_H
#define IDN_WIRE_MEMBER_MSG_H

#include <idunno/membership.h>

#include "wire/wire.h"

// Writes n members as an array of maps {id, addr, role, st, inc, since}.
void member_msg_put(wire_wr *w, const idn_member *m, size_t n);
// Reads an array written by member_msg_put into out[max]. IDN_EPROTO on a
// bad field, a state out of range, or more than max entries.
int member_msg_get(const wire_val *arr, idn_member *out, size_t max,
    size_t *n);
// Same into a new array the caller frees (at most max entries).
int member_msg_get_alloc(const wire_val *arr, size_t max, idn_member **out,
    size_t *n);

// Membership events as published: {"k": "member", "ev": event, "m": member}.
void member_msg_event_put(wire_wr *w, int event, const idn_member *m);
int member_msg_event_get(const wire_val *v, int *event, idn_member *m);

#endif
