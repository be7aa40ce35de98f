// SPDX-License-Identifier: MIT
// client.c: a handle that talks to one node from outside the cluster.
#include <stdio.h>
#include <stdlib.h>

#include "node/client.h"
#include "wire/member_msg.h"

#define MEMBERS_MAX 4096

struct idn_client {
	net_client *net;
	char addr[IDN_ADDR_MAX];
	idn_duration timeout_ms;
};

int
idn_client_open(const char *addr, const uint8_t key[IDN_KEY_BYTES],
    idn_client **out)
{
	char url[128];
	if (addr == NULL || key == NULL || out == NULL ||
	    net_addr_to_url(addr, url, sizeof(url)) != IDN_OK) {
		return IDN_EINVAL;
	}
	idn_client *c = idn_alloc(sizeof(*c));
	if (c == NULL) {
		return IDN_ENOMEM;
	}
	int rv = net_client_open(key, "client", NET_DEFAULT_MAX_MSG, &c->net);
	if (rv != IDN_OK) {
		free(c);
		return rv;
	}
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->timeout_ms = 5000;
	*out = c;
	return IDN_OK;
}

void
idn_client_close(idn_client *c)
{
	if (c != NULL) {
		net_client_close(c->net);
		free(c);
	}
}

void
idn_client_set_timeout(idn_client *c, idn_duration ms)
{
	if (c != NULL && ms > 0) {
		c->timeout_ms = ms;
	}
}

const char *
client_addr(const idn_client *c)
{
	return c->addr;
}

idn_duration
client_timeout(const idn_client *c)
{
	return c->timeout_ms;
}

int
client_call_at(idn_client *c, const char *addr, const char *type,
    wire_wr *body, wire_doc **doc, wire_env *env)
{
	return net_call_wr(c->net, addr, type, body, c->timeout_ms, doc, env);
}

int
client_call(idn_client *c, const char *type, wire_wr *body, wire_doc **doc,
    wire_env *env)
{
	return client_call_at(c, c->addr, type, body, doc, env);
}

int
idn_client_members(idn_client *c, idn_member **out, size_t *count)
{
	if (c == NULL || out == NULL || count == NULL) {
		return IDN_EINVAL;
	}
	wire_doc *doc;
	wire_env env;
	int rv = client_call(c, "node.members", NULL, &doc, &env);
	if (rv == IDN_OK) {
		rv = member_msg_get_alloc(wire_get(env.body, "members"),
		    MEMBERS_MAX, out, count);
	}
	wire_doc_free(doc);
	return rv;
}
