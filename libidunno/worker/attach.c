// SPDX-License-Identifier: MIT
// attach.c: the worker's coupling to its node: a client to the node itself
// (SDFS and sched.where) and the node's log.
#include <stdlib.h>

#include "worker/worker.h"

struct worker_role {
	idn_client *client;
	idn_client *lease;
	worker *w;
};

int
worker_role_start(const char *addr, const uint8_t *key, const char *id,
    int model_cpu, void (*log)(void *arg, int level, const char *line), void *log_arg,
    worker_role **out)
{
	worker_role *r = core_alloc(sizeof(*r));
	if (r == NULL) {
		return IDN_ENOMEM;
	}
	int rv = idn_client_open(addr, key, &r->client);
	if (rv == IDN_OK) {
		rv = idn_client_open(addr, key, &r->lease);
	}
	if (rv == IDN_OK) {
		idn_client_set_timeout(r->client, 10000);
		idn_client_set_timeout(r->lease, WORKER_LEASE_TIMEOUT_MS);
		worker_host h = {r->client, id, r->lease, model_cpu, log,
		    log_arg};
		rv = worker_open(&h, &r->w);
	}
	if (rv != IDN_OK) {
		worker_role_close(r);
		return rv;
	}
	*out = r;
	return IDN_OK;
}

void
worker_role_close(worker_role *r)
{
	if (r != NULL) {
		worker_close(r->w);
		idn_client_close(r->client);
		idn_client_close(r->lease);
		free(r);
	}
}
