// SPDX-License-Identifier: MIT
// attach.c: the coordinator's coupling to its node: routes, membership
// events, the node's log, an SDFS client to the node itself; and the
// `sched.where` route every node answers from its membership view.
#include <stdlib.h>
#include <string.h>

#include "coord/coord.h"
#include "node/node.h"

struct coord_role {
	idn_node *node;
	idn_client *sdfs;
	coord *c;
};

static const char *const routes[] = {"sched.lease", "sched.add",
    "sched.remove", "sched.phase", "sched.state", "sched.stats",
    "sched.jobs", "sched.assign"};

static void
log_line(void *arg, int level, const char *line)
{
	idn_node_logf(arg, level, "%s", line);
}

static int
on_route(void *arg, const wire_env *req, wire_wr *reply)
{
	coord_role *r = arg;
	return coord_handle(r->c, req->type, req->body, reply);
}

static void
on_member(void *arg, const idn_member *m, int event)
{
	coord_role *r = arg;
	if (event == IDN_EV_JOIN || event == IDN_EV_FAIL ||
	    event == IDN_EV_LEAVE) {
		coord_member(r->c, m->id, m->role, event == IDN_EV_JOIN);
	}
}

int
coord_attach(idn_node *n, coord_role **out)
{
	coord_role *r = idn_alloc(sizeof(*r));
	if (r == NULL) {
		return IDN_ENOMEM;
	}
	r->node = n;
	int rv = idn_client_open(idn_node_addr(n), node_key(n), &r->sdfs);
	if (rv == IDN_OK) {
		idn_client_set_timeout(r->sdfs, 10000);
		coord_host h = {r->sdfs, node_data_dir(n), idn_node_id(n),
		    log_line, n};
		rv = coord_open(&h, &r->c);
	}
	for (size_t i = 0; rv == IDN_OK && i < IDN_ARRAY_LEN(routes); i++) {
		rv = node_handle(n, routes[i], on_route, r);
	}
	if (rv == IDN_OK) {
		rv = idn_node_watch(n, on_member, r);
	}
	idn_member *m = NULL;
	size_t count = 0;
	if (rv == IDN_OK && node_alive_members(n, &m, &count) == IDN_OK) {
		for (size_t i = 0; i < count; i++) {
			if (m[i].state == IDN_MEMBER_ALIVE) {
				coord_member(r->c, m[i].id, m[i].role, true);
			}
		}
		idn_free(m);
	}
	if (rv != IDN_OK) {
		coord_detach(r);
		return rv;
	}
	*out = r;
	return IDN_OK;
}

void
coord_detach(coord_role *r)
{
	if (r != NULL) {
		coord_close(r->c);
		idn_client_close(r->sdfs);
		free(r);
	}
}

static int
on_where(void *arg, const wire_env *req, wire_wr *reply)
{
	idn_node *n = arg;
	idn_member *m;
	size_t count;
	int rv = node_alive_members(n, &m, &count);
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
sched_where_attach(idn_node *n)
{
	return node_handle(n, "sched.where", on_where, n);
}
