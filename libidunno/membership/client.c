// SPDX-License-Identifier: MIT
// client.c: membership seen from a client handle: the member list and the
// event stream.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"
#include "membership/member_msg.h"

#define MEMBERS_MAX 4096

int
idn_client_members(idn_client *c, idn_member **out, size_t *count)
{
	if (c == NULL || out == NULL || count == NULL) {
		return IDN_EINVAL;
	}
	wire_doc *doc;
	wire_env env;
	int rv = rpc_client_call(c, "node.members", NULL, &doc, &env);
	if (rv == IDN_OK) {
		rv = member_msg_get_alloc(wire_get(env.body, "members"),
		    MEMBERS_MAX, out, count);
	}
	wire_doc_free(doc);
	return rv;
}

struct idn_events {
	net_sub *sub;
	uint8_t key[IDN_KEY_BYTES];
};

int
idn_events_open(idn_client *c, idn_events **out)
{
	if (c == NULL || out == NULL) {
		return IDN_EINVAL;
	}
	wire_doc *doc;
	wire_env env;
	char pub[IDN_ADDR_MAX];
	int rv = rpc_client_call(c, "node.members", NULL, &doc, &env);
	if (rv == IDN_OK) {
		rv = wire_get_str(env.body, "pub", pub, sizeof(pub));
	}
	wire_doc_free(doc);
	if (rv != IDN_OK) {
		return rv;
	}
	idn_events *e = core_alloc(sizeof(*e));
	if (e == NULL) {
		return IDN_ENOMEM;
	}
	memcpy(e->key, rpc_client_key(c), IDN_KEY_BYTES);
	if ((rv = net_sub_open(pub, &e->sub)) != IDN_OK) {
		free(e);
		return rv;
	}
	*out = e;
	return IDN_OK;
}

int
idn_events_next(idn_events *e, idn_duration timeout_ms, idn_event *ev)
{
	if (e == NULL || ev == NULL) {
		return IDN_EINVAL;
	}
	uint64_t deadline = idn_clock_ms() + (uint64_t) timeout_ms;
	for (;;) {
		uint64_t now = idn_clock_ms();
		if (now >= deadline) {
			return IDN_ETIMEDOUT;
		}
		core_buf b = {0};
		const uint8_t *p;
		size_t len;
		wire_doc *doc;
		int rv = net_sub_recv(e->sub, (idn_duration) (deadline - now),
		    &b);
		if (rv != IDN_OK) {
			core_buf_free(&b);
			return rv;
		}
		// Forged or malformed events are skipped, never returned.
		if (wire_open(e->key, b.data, b.len, &p, &len) == IDN_OK &&
		    wire_doc_parse(p, len, &doc) == IDN_OK) {
			memset(ev, 0, sizeof(*ev));
			ev->kind = IDN_EVENT_MEMBER;
			rv = member_msg_event_get(wire_doc_root(doc),
			    &ev->event, &ev->member);
			wire_doc_free(doc);
			if (rv == IDN_OK) {
				core_buf_free(&b);
				return IDN_OK;
			}
		}
		core_buf_free(&b);
	}
}

void
idn_events_close(idn_events *e)
{
	if (e != NULL) {
		net_sub_close(e->sub);
		free(e);
	}
}
