// SPDX-License-Identifier: MIT
// membership.c: SWIM wrapped for a node: sorted views, watchers, the
// sealed event stream and the node.members route.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membership/membership.h"
#include "membership/member_msg.h"

#define MAX_WATCHERS 16

struct membership {
	uint8_t key[IDN_KEY_BYTES];
	idn_member self;
	net_pub *pub;
	swim *swim;
	pthread_mutex_t lock; // guards nwatchers
	struct {
		idn_member_fn fn;
		void *arg;
	} watchers[MAX_WATCHERS];
	int nwatchers;
};

static int
by_id(const void *a, const void *b)
{
	return strcmp(((const idn_member *) a)->id,
	    ((const idn_member *) b)->id);
}

int
membership_members(membership *m, bool live_only, idn_member **out,
    size_t *count)
{
	int rv = swim_members(m->swim, live_only, out, count);
	if (rv == IDN_OK) {
		qsort(*out, *count, sizeof(**out), by_id);
	}
	return rv;
}

int
membership_watch(membership *m, idn_member_fn fn, void *arg)
{
	int rv = IDN_OK;
	core_lock(&m->lock);
	if (m->nwatchers == MAX_WATCHERS) {
		rv = IDN_EBUSY;
	} else {
		m->watchers[m->nwatchers].fn = fn;
		m->watchers[m->nwatchers].arg = arg;
		m->nwatchers++;
	}
	core_unlock(&m->lock);
	return rv;
}

const char *
membership_pub_addr(const membership *m)
{
	return net_pub_addr(m->pub);
}

// Publishes one message (w's bytes), sealed like every other message.
static void
publish_wr(membership *m, wire_wr *w)
{
	const uint8_t *p;
	size_t len;
	core_buf frame = {0};
	if (wire_wr_bytes(w, &p, &len) == IDN_OK &&
	    wire_seal(m->key, p, len, &frame) == IDN_OK) {
		net_pub_send(m->pub, frame.data, frame.len);
	}
	core_buf_free(&frame);
}

static void
publish(membership *m, const idn_member *who, int event)
{
	wire_wr *w;
	if (wire_wr_new(&w) == IDN_OK) {
		member_msg_event_put(w, event, who);
		publish_wr(m, w);
		wire_wr_free(w);
	}
}

void
membership_publish_stats(membership *m, const char *json, const char *text)
{
	wire_wr *w;
	if (wire_wr_new(&w) == IDN_OK) {
		wire_map(w, 2);
		wire_kstr(w, "stats", json);
		wire_kstr(w, "text", text);
		publish_wr(m, w);
		wire_wr_free(w);
	}
}

static void
on_event(void *arg, const idn_member *who, int event)
{
	membership *m = arg;
	publish(m, who, event);
	core_lock(&m->lock);
	int count = m->nwatchers;
	core_unlock(&m->lock);
	// Watchers are only appended, so the first `count` are stable.
	for (int i = 0; i < count; i++) {
		m->watchers[i].fn(m->watchers[i].arg, who, event);
	}
}

static int
on_members(void *arg, const wire_env *req, wire_wr *reply)
{
	membership *m = arg;
	idn_member *v;
	size_t count;
	int rv = membership_members(m, false, &v, &count);
	if (rv != IDN_OK) {
		return rv;
	}
	wire_map(reply, 4);
	wire_kstr(reply, "pub", net_pub_addr(m->pub));
	wire_kstr(reply, "self", m->self.id);
	wire_kstr(reply, "role", m->self.role);
	wire_str(reply, "members");
	member_msg_put(reply, v, count);
	free(v);
	return IDN_OK;
}

int
membership_open(const membership_opts *o, membership **out)
{
	membership *m = core_alloc(sizeof(*m));
	if (m == NULL) {
		return IDN_ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	memcpy(m->key, o->key, IDN_KEY_BYTES);
	m->self = *o->self;
	// Events go out on a free port of the endpoint's host.
	char pub_addr[IDN_ADDR_MAX];
	snprintf(pub_addr, sizeof(pub_addr), "%s", rpc_addr(o->rpc));
	strcpy(strrchr(pub_addr, ':'), ":0");
	int rv;
	if ((rv = net_pub_open(pub_addr, &m->pub)) != IDN_OK ||
	    (rv = swim_open(o->rpc, o->lg, o->self, &o->swim, on_event, m,
	         &m->swim)) != IDN_OK ||
	    (rv = rpc_route(o->rpc, "node.members", on_members, m)) !=
	        IDN_OK) {
		membership_close(m);
		return rv;
	}
	*out = m;
	return IDN_OK;
}

int
membership_join(membership *m, const char *const *intro, size_t n)
{
	return swim_join(m->swim, intro, n);
}

int
membership_leave(membership *m)
{
	return swim_leave(m->swim);
}

void
membership_stop(membership *m)
{
	if (m != NULL) {
		swim_stop(m->swim);
	}
}

void
membership_close(membership *m)
{
	if (m == NULL) {
		return;
	}
	swim_close(m->swim);
	net_pub_close(m->pub);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
