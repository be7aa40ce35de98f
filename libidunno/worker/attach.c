// SPDX-License-Identifier: MIT
// attach.c: the worker's coupling to its node: the node's log and a client
// to the node itself.
#include <stdlib.h>

#include "node/node.h"
#include "worker/worker.h"

struct worker_role {
	idn_client *client;
	worker *w;
};

static void
log_line(void *arg, int level, const char *line)
{
	idn_node_logf(arg, level, "%s", line);
}

int
worker_attach(idn_node *n, worker_role **out)
{
	worker_role *r = idn_alloc(sizeof(*r));
	if (r == NULL) {
		return IDN_ENOMEM;
	}
	int rv = idn_client_open(idn_node_addr(n), node_key(n), &r->client);
	if (rv == IDN_OK) {
		idn_client_set_timeout(r->client, 10000);
		worker_host h = {r->client, idn_node_id(n), log_line, n};
		rv = worker_open(&h, &r->w);
	}
	if (rv != IDN_OK) {
		worker_detach(r);
		return rv;
	}
	*out = r;
	return IDN_OK;
}

void
worker_detach(worker_role *r)
{
	if (r != NULL) {
		worker_close(r->w);
		idn_client_close(r->client);
		free(r);
	}
}
