// SPDX-License-Identifier: MIT
// member_msg.c: codec of membership records.
#include <stdlib.h>
#include <string.h>

#include "membership/member_msg.h"

void
member_msg_put(wire_wr *w, const idn_member *m, size_t n)
{
	wire_arr(w, (uint32_t) n);
	for (size_t i = 0; i < n; i++) {
		wire_map(w, 6);
		wire_kstr(w, "id", m[i].id);
		wire_kstr(w, "addr", m[i].addr);
		wire_kstr(w, "role", m[i].role);
		wire_ku64(w, "st", (uint64_t) m[i].state);
		wire_ku64(w, "inc", m[i].incarnation);
		wire_ku64(w, "since", m[i].since_ms);
	}
}

int
member_msg_get(const wire_val *arr, idn_member *out, size_t max, size_t *n)
{
	size_t len;
	if (wire_as_arr(arr, &len) != IDN_OK || len > max) {
		return IDN_EPROTO;
	}
	for (size_t i = 0; i < len; i++) {
		const wire_val *e = wire_at(arr, i);
		idn_member *m = &out[i];
		uint64_t st;
		if (wire_get_str(e, "id", m->id, sizeof(m->id)) ||
		    wire_get_str(e, "addr", m->addr, sizeof(m->addr)) ||
		    wire_get_str(e, "role", m->role, sizeof(m->role)) ||
		    wire_get_u64(e, "st", &st) || st > IDN_MEMBER_LEFT ||
		    wire_get_u64(e, "inc", &m->incarnation) ||
		    wire_get_u64(e, "since", &m->since_ms) ||
		    m->id[0] == '\0') {
			return IDN_EPROTO;
		}
		m->state = (int) st;
	}
	*n = len;
	return IDN_OK;
}

int
member_msg_get_alloc(const wire_val *arr, size_t max, idn_member **out,
    size_t *n)
{
	size_t len;
	if (wire_as_arr(arr, &len) != IDN_OK || len > max) {
		return IDN_EPROTO;
	}
	idn_member *m = core_alloc(sizeof(*m) * (len ? len : 1));
	if (m == NULL) {
		return IDN_ENOMEM;
	}
	int rv = member_msg_get(arr, m, len, n);
	if (rv != IDN_OK) {
		free(m);
		return rv;
	}
	*out = m;
	return IDN_OK;
}

void
member_msg_event_put(wire_wr *w, int event, const idn_member *m)
{
	wire_map(w, 3);
	wire_kstr(w, "k", "member");
	wire_ku64(w, "ev", (uint64_t) event);
	wire_str(w, "m");
	member_msg_put(w, m, 1);
}

int
member_msg_event_get(const wire_val *v, int *event, idn_member *m)
{
	char kind[16];
	uint64_t ev;
	size_t n;
	if (wire_get_str(v, "k", kind, sizeof(kind)) ||
	    strcmp(kind, "member") != 0 || wire_get_u64(v, "ev", &ev) ||
	    ev > IDN_EV_LEAVE ||
	    member_msg_get(wire_get(v, "m"), m, 1, &n) || n != 1) {
		return IDN_EPROTO;
	}
	*event = (int) ev;
	return IDN_OK;
}
