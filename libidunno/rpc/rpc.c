// SPDX-License-Identifier: MIT
// rpc.c: a node's endpoint: the route table, serving, calls and fan-out.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"

#define MAX_ROUTES 64
#define TYPE_CAP 32
// Handlers may block on their own calls (SDFS forwards chunks): enough
// threads that a busy data plane still leaves some to answer pings.
#define RPC_THREADS 16
#define POOL_THREADS 8

typedef struct {
	char type[TYPE_CAP];
	rpc_handler_fn fn;
	void *arg;
} route;

struct rpc {
	const core_logger *lg;
	char self[IDN_ID_MAX];
	uint64_t start_ms;
	net_server *server;
	net_client *client;
	net_pool *pool;
	// Written only before serving starts, read-only after: no lock.
	route routes[MAX_ROUTES];
	int nroutes;
	bool serving;
};

static int
dispatch(void *arg, const wire_env *req, wire_wr *reply)
{
	rpc *r = arg;
	for (int i = 0; i < r->nroutes; i++) {
		if (strcmp(r->routes[i].type, req->type) == 0) {
			return r->routes[i].fn(r->routes[i].arg, req, reply);
		}
	}
	core_logf(r->lg, IDN_LOG_WARN, "net: unknown request type '%s' from %s",
	    req->type, req->from);
	return IDN_EPROTO;
}

void
rpc_counters(const rpc *r, net_counters *out)
{
	net_stats(r->server, r->client, out);
}

static int
on_stats(void *arg, const wire_env *req, wire_wr *reply)
{
	rpc *r = arg;
	net_counters c;
	net_stats(r->server, r->client, &c);
	wire_map(reply, 6);
	wire_kstr(reply, "id", r->self);
	wire_ku64(reply, "uptime_ms", idn_wall_ms() - r->start_ms);
	wire_ku64(reply, "msgs_in", c.msgs_in);
	wire_ku64(reply, "msgs_out", c.msgs_out);
	wire_ku64(reply, "bytes_in", c.bytes_in);
	wire_ku64(reply, "bytes_out", c.bytes_out);
	return IDN_OK;
}

int
rpc_open(const rpc_opts *o, rpc **out)
{
	rpc *r = core_alloc(sizeof(*r));
	if (r == NULL) {
		return IDN_ENOMEM;
	}
	r->lg = o->lg;
	r->start_ms = idn_wall_ms();
	int rv;
	if ((rv = net_server_open(o->listen, o->key, o->max_msg_bytes,
	         dispatch, r, o->lg, &r->server)) != IDN_OK ||
	    (rv = net_client_open(o->key, "", o->max_msg_bytes,
	         &r->client)) != IDN_OK ||
	    (rv = net_pool_open(r->client, POOL_THREADS, &r->pool)) !=
	        IDN_OK ||
	    (rv = rpc_route(r, "node.stats", on_stats, r)) != IDN_OK) {
		rpc_close(r);
		return rv;
	}
	*out = r;
	return IDN_OK;
}

const char *
rpc_addr(const rpc *r)
{
	return net_server_addr(r->server);
}

void
rpc_set_self(rpc *r, const char *id)
{
	snprintf(r->self, sizeof(r->self), "%s", id);
	net_client_set_self(r->client, id);
	net_server_set_self(r->server, id);
}

int
rpc_route(rpc *r, const char *type, rpc_handler_fn fn, void *arg)
{
	if (r->serving) {
		return IDN_EBUSY;
	}
	if (r->nroutes == MAX_ROUTES || strlen(type) >= TYPE_CAP) {
		return IDN_EINVAL;
	}
	route *h = &r->routes[r->nroutes++];
	snprintf(h->type, sizeof(h->type), "%s", type);
	h->fn = fn;
	h->arg = arg;
	return IDN_OK;
}

int
rpc_routes(rpc *r, const rpc_route_def *defs, size_t n, void *arg)
{
	int rv = IDN_OK;
	for (size_t i = 0; rv == IDN_OK && i < n; i++) {
		rv = rpc_route(r, defs[i].type, defs[i].fn, arg);
	}
	return rv;
}

int
rpc_unroute(rpc *r, const void *arg)
{
	if (r->serving) {
		return IDN_EBUSY;
	}
	int kept = 0;
	for (int i = 0; i < r->nroutes; i++) {
		if (r->routes[i].arg != arg) {
			r->routes[kept++] = r->routes[i];
		}
	}
	r->nroutes = kept;
	return IDN_OK;
}

const char *
rpc_route_name(const rpc *r, int i)
{
	return i >= 0 && i < r->nroutes ? r->routes[i].type : NULL;
}

net_client *
rpc_client(rpc *r)
{
	return r->client;
}

int
rpc_serve(rpc *r)
{
	r->serving = true;
	return net_server_start(r->server, RPC_THREADS);
}

void
rpc_stop(rpc *r)
{
	if (r != NULL) {
		net_server_close(r->server);
		r->server = NULL;
	}
}

void
rpc_close(rpc *r)
{
	if (r == NULL) {
		return;
	}
	rpc_stop(r);
	net_pool_close(r->pool);
	net_client_close(r->client);
	free(r);
}

int
rpc_call(rpc *r, const char *addr, const char *type, wire_wr *body,
    idn_duration timeout_ms, wire_doc **doc, wire_env *env)
{
	return net_call_wr(r->client, addr, type, body, timeout_ms, doc, env);
}

int
rpc_fanout(rpc *r, const char *const *addrs, size_t count, const char *type,
    wire_wr *body, idn_duration timeout_ms, int *rvs, wire_doc **docs,
    wire_env *envs)
{
	return net_pool_call_all_wr(r->pool, addrs, count, type, body,
	    timeout_ms, rvs, docs, envs);
}

int
rpc_pool_open(rpc *r, int nthreads, net_pool **out)
{
	return net_pool_open(r->client, nthreads, out);
}
