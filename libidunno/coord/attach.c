// SPDX-License-Identifier: MIT
// attach.c: the coordinator's coupling to its node: routes on the node's
// endpoint, membership events, a client to the node itself for SDFS; and
// the `sched.where` route every node answers from its membership view.
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coord.h"
#include "membership/membership.h"
#include "rpc/rpc.h"

struct coord_role {
	coord_node n;
	char data_dir[1024];
	char id[IDN_ID_MAX];
	char addr[IDN_ADDR_MAX];
	uint8_t key[IDN_KEY_BYTES];
	idn_client *sdfs;
	coord *_Atomic c;     // NULL until started
};

static int
on_route(void *arg, const wire_env *req, wire_wr *reply)
{
	coord_role *r = arg;
	coord *c = atomic_load(&r->c);
	if (c == NULL) {
		wire_map(reply, 2);
		wire_ku64(reply, "epoch", COORD_EPOCH);
		wire_kstr(reply, "err", "the coordinator is starting; retry");
		return IDN_EUNAVAIL;
	}
	return coord_handle(c, req->type, req->body, reply);
}

static const rpc_route_def routes[] = {
    {"sched.lease", on_route}, {"sched.add", on_route},
    {"sched.remove", on_route}, {"sched.phase", on_route},
    {"sched.state", on_route}, {"sched.stats", on_route},
    {"sched.jobs", on_route}, {"sched.assign", on_route},
};

static void
on_member(void *arg, const idn_member *m, int event)
{
	coord_role *r = arg;
	coord *c = atomic_load(&r->c);
	if (c != NULL && (event == IDN_EV_JOIN || event == IDN_EV_FAIL ||
	                     event == IDN_EV_LEAVE)) {
		coord_member(c, m->id, m->role, event == IDN_EV_JOIN);
	}
}

int
coord_role_open(const coord_node *n, coord_role **out)
{
	coord_role *r = core_alloc(sizeof(*r));
	if (r == NULL) {
		return IDN_ENOMEM;
	}
	r->n = *n;
	snprintf(r->data_dir, sizeof(r->data_dir), "%s", n->data_dir);
	snprintf(r->id, sizeof(r->id), "%s", n->id);
	snprintf(r->addr, sizeof(r->addr), "%s", n->addr);
	memcpy(r->key, n->key, IDN_KEY_BYTES);
	int rv = rpc_routes(n->rpc, routes, CORE_ARRAY_LEN(routes), r);
	if (rv != IDN_OK) {
		free(r);
		return rv;
	}
	*out = r;
	return IDN_OK;
}

int
coord_role_start(coord_role *r)
{
	coord *c = NULL;
	int rv = idn_client_open(r->addr, r->key, &r->sdfs);
	if (rv == IDN_OK) {
		idn_client_set_timeout(r->sdfs, 10000);
		coord_host h = {r->sdfs, r->data_dir, r->id, r->n.log,
		    r->n.log_arg};
		rv = coord_open(&h, &c);
	}
	if (rv == IDN_OK) {
		atomic_store(&r->c, c);
		rv = membership_watch(r->n.mship, on_member, r);
	}
	idn_member *m = NULL;
	size_t count = 0;
	if (rv == IDN_OK &&
	    membership_members(r->n.mship, true, &m, &count) == IDN_OK) {
		for (size_t i = 0; i < count; i++) {
			if (m[i].state == IDN_MEMBER_ALIVE) {
				coord_member(c, m[i].id, m[i].role, true);
			}
		}
		idn_free(m);
	}
	return rv;
}

void
coord_role_close(coord_role *r)
{
	if (r != NULL) {
		coord *c = atomic_exchange(&r->c, NULL);
		coord_close(c);
		idn_client_close(r->sdfs);
		free(r);
	}
}

static int
on_where(void *arg, const wire_env *req, wire_wr *reply)
{
	idn_member *m;
	size_t count;
	int rv = membership_members(arg, true, &m, &count);
	if (rv != IDN_OK) {
		return rv;
	}
	const idn_member *found = NULL;
	for (size_t i = 0; i < count && found == NULL; i++) {
		if (strcmp(m[i].role, "coord") == 0 &&
		    m[i].state == IDN_MEMBER_ALIVE) {
			found = &m[i];
		}
	}
	if (found != NULL) {
		wire_map(reply, 3);
		wire_kstr(reply, "coord", found->addr);
		wire_kstr(reply, "id", found->id);
		wire_ku64(reply, "epoch", COORD_EPOCH);
	} else {
		wire_map(reply, 1);
		wire_kstr(reply, "err", "no coordinator is alive");
		rv = IDN_EUNAVAIL;
	}
	idn_free(m);
	return rv;
}

int
coord_where_route(rpc *r, membership *m)
{
	return rpc_route(r, "sched.where", on_where, m);
}
