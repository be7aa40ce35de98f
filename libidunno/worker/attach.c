// SPDX-License-Identifier: MIT
// attach.c: the worker's coupling to its node: a client to the node itself
// (SDFS and sched.where), the node's log, and the node's `worker.state`
// route (a coordinator that just became active asks it).
#include <pthread.h>
#include <stdlib.h>

#include "collective/collective.h"
#include "rpc/rpc.h"
#include "worker/worker.h"

struct worker_role {
	pthread_mutex_t lock;
	idn_client *client;
	idn_client *lease;
	coll *coll;  // the training ranks' allreduce
	worker *w; // once started
};

static int
on_state(void *arg, const wire_env *req, wire_wr *reply)
{
	(void) req;
	worker_role *r = arg;
	core_lock(&r->lock);
	int rv = r->w != NULL ? worker_state(r->w, reply) : IDN_EUNAVAIL;
	core_unlock(&r->lock);
	if (rv != IDN_OK) {
		wire_map(reply, 1);
		wire_kstr(reply, "err", "the worker has not started");
	}
	return rv;
}

int
worker_role_open(rpc *rpc, worker_role **out)
{
	worker_role *r = core_alloc(sizeof(*r));
	if (r == NULL) {
		return IDN_ENOMEM;
	}
	pthread_mutex_init(&r->lock, NULL);
	int rv = rpc_route(rpc, "worker.state", on_state, r);
	coll_opts co;
	coll_opts_init(&co);
	if (rv == IDN_OK) {
		rv = coll_open(rpc, &co, &r->coll);
	}
	if (rv != IDN_OK) {
		worker_role_close(r);
		return rv;
	}
	*out = r;
	return IDN_OK;
}

int
worker_role_start(worker_role *r, const char *addr, const uint8_t *key,
    const char *id, int model_cpu,
    void (*log)(void *arg, int level, const char *line), void *log_arg)
{
	int rv = idn_client_open(addr, key, &r->client);
	if (rv == IDN_OK) {
		rv = idn_client_open(addr, key, &r->lease);
	}
	worker *w = NULL;
	if (rv == IDN_OK) {
		idn_client_set_timeout(r->client, 10000);
		idn_client_set_timeout(r->lease, WORKER_LEASE_TIMEOUT_MS);
		worker_host h = {r->client, id, r->lease, model_cpu, addr,
		    r->coll, log, log_arg};
		rv = worker_open(&h, &w);
	}
	core_lock(&r->lock);
	r->w = w;
	core_unlock(&r->lock);
	return rv;
}

void
worker_role_close(worker_role *r)
{
	if (r != NULL) {
		core_lock(&r->lock);
		worker *w = r->w;
		r->w = NULL;
		core_unlock(&r->lock);
		worker_close(w);
		coll_close(r->coll);
		idn_client_close(r->client);
		idn_client_close(r->lease);
		pthread_mutex_destroy(&r->lock);
		free(r);
	}
}
