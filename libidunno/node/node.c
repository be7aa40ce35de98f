// SPDX-License-Identifier: MIT
// node.c: a node is a composition: its log, RPC endpoint, membership and
// SDFS, opened in that order, routes registered, then served and joined;
// closed in reverse.
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/node.h>

#include "coord/coord.h"
#include "dash/dash.h"
#include "log/log.h"
#include "node/node_int.h"
#include "membership/membership.h"
#include "sdfs/sdfs.h"
#include "worker/worker.h"

static const char *const role_names[] = {
	[IDN_ROLE_COORD] = "coord",
	[IDN_ROLE_STANDBY] = "standby",
	[IDN_ROLE_WORKER] = "worker",
};

struct idn_node {
	char id[IDN_ID_MAX];
	char addr[IDN_ADDR_MAX];
	int role;
	int model_cpu;
	char *data_dir;
	uint8_t key[IDN_KEY_BYTES];
	core_logger lg;
	idn_log_fn host_fn;
	void *host_arg;
	nlog *log;
	rpc *rpc;
	membership *mship;
	sdfs *sdfs;
	coord_role *coord;
	coord_where *where;
	worker_role *worker;
	dash *dash;
};

const char *
idn_role_name(int role)
{
	return role >= 0 && role < (int) CORE_ARRAY_LEN(role_names) ?
	    role_names[role] : NULL;
}

int
idn_role_parse(const char *name, int *role)
{
	for (int i = 0; name != NULL && i < (int) CORE_ARRAY_LEN(role_names);
	     i++) {
		if (strcmp(name, role_names[i]) == 0) {
			*role = i;
			return IDN_OK;
		}
	}
	return IDN_EINVAL;
}

void
idn_node_opts_init(idn_node_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->listen = "127.0.0.1:0";
	o->role = IDN_ROLE_WORKER;
	o->probe_interval_ms = 100;
	o->probe_timeout_ms = 150;
	o->suspect_timeout_ms = 600;
	o->indirect_probes = 3;
	o->join_timeout_ms = 5000;
	o->max_msg_bytes = NET_DEFAULT_MAX_MSG;
	o->model_cpu = -1;
}

static void
log_line(void *arg, int level, const char *line)
{
	idn_node *n = arg;
	if (n->log != NULL) {
		nlog_write(n->log, level, line);
	}
	if (n->host_fn != NULL) {
		n->host_fn(n->host_arg, level, line);
	}
}

void
idn_node_logf(idn_node *n, int level, const char *fmt, ...)
{
	// Every level, as the host asked for it.
	core_logger lg = {log_line, n, IDN_LOG_DEBUG};
	va_list ap;
	va_start(ap, fmt);
	core_vlogf(&lg, level, fmt, ap);
	va_end(ap);
}

const char *
idn_node_id(const idn_node *n)
{
	return n->id;
}

rpc *
node_rpc(idn_node *n)
{
	return n->rpc;
}

const char *
idn_node_addr(const idn_node *n)
{
	return n->addr;
}

const char *
idn_node_http_addr(const idn_node *n)
{
	return dash_addr(n->dash);
}

int
idn_node_members(idn_node *n, idn_member **out, size_t *count)
{
	if (n == NULL || out == NULL || count == NULL) {
		return IDN_EINVAL;
	}
	return membership_members(n->mship, false, out, count);
}

int
idn_node_watch(idn_node *n, idn_member_fn fn, void *arg)
{
	if (n == NULL || fn == NULL) {
		return IDN_EINVAL;
	}
	return membership_watch(n->mship, fn, arg);
}

static int
alive_members(void *arg, idn_member **out, size_t *count)
{
	return membership_members(arg, true, out, count);
}

static bool
valid_opts(const idn_node_opts *o)
{
	char url[128];
	if (idn_role_name(o->role) == NULL || o->data_dir == NULL ||
	    o->listen == NULL ||
	    o->probe_interval_ms <= 0 || o->probe_timeout_ms <= 0 ||
	    o->suspect_timeout_ms <= 0 || o->indirect_probes < 0 ||
	    o->max_msg_bytes < (2u << 20) || // an SDFS chunk must fit
	    o->model_cpu < -1 || o->model_cpu >= CPU_SETSIZE ||
	    o->sdfs_session_idle_ms < 0 || o->sdfs_scrub_pass_ms < 0 ||
	    o->sdfs_cache_trust_ms < 0 || o->sdfs_replicate_ms < 0 ||
	    (o->njoin > 0 && o->join == NULL) ||
	    net_addr_to_url(o->listen, url, sizeof(url)) != IDN_OK ||
	    (o->http != NULL &&
	        net_addr_to_url(o->http, url, sizeof(url)) != IDN_OK)) {
		return false;
	}
	for (size_t i = 0; i < o->njoin; i++) {
		if (net_addr_to_url(o->join[i], url, sizeof(url)) != IDN_OK) {
			return false;
		}
	}
	return true;
}

static int
open_log(idn_node *n, const idn_node_opts *o)
{
	if ((n->data_dir = core_strdup(o->data_dir)) == NULL) {
		return IDN_ENOMEM;
	}
	if (core_mkdir_p(n->data_dir) != IDN_OK) {
		return IDN_EPERM; // missing parent, read-only, not a folder
	}
	char *path = o->log_path ? core_strdup(o->log_path) :
	    core_asprintf("%s/node.log", n->data_dir);
	int rv = path ? nlog_open(path, &n->log) : IDN_ENOMEM;
	free(path);
	return rv;
}

// The endpoint binds first: the node's id is its bound address and start.
static int
open_rpc(idn_node *n, const idn_node_opts *o)
{
	rpc_opts ro = {o->listen, n->key, o->max_msg_bytes, &n->lg};
	int rv = rpc_open(&ro, &n->rpc);
	if (rv != IDN_OK) {
		return rv;
	}
	snprintf(n->addr, sizeof(n->addr), "%s", rpc_addr(n->rpc));
	snprintf(n->id, sizeof(n->id), "%s:%llu", n->addr,
	    (unsigned long long) idn_wall_ms());
	nlog_set_id(n->log, n->id);
	rpc_set_self(n->rpc, n->id);
	return rpc_route(n->rpc, "log.grep", nlog_on_grep, n->log);
}

static int
open_membership(idn_node *n, const idn_node_opts *o)
{
	idn_member self = {.state = IDN_MEMBER_ALIVE, .since_ms = idn_wall_ms()};
	snprintf(self.id, sizeof(self.id), "%s", n->id);
	snprintf(self.addr, sizeof(self.addr), "%s", n->addr);
	snprintf(self.role, sizeof(self.role), "%s", idn_role_name(n->role));
	membership_opts mo = {n->rpc, &n->lg, n->key, &self,
	    {o->probe_interval_ms, o->probe_timeout_ms, o->suspect_timeout_ms,
	        o->join_timeout_ms, o->indirect_probes}};
	return membership_open(&mo, &n->mship);
}

static int
open_sdfs(idn_node *n, const idn_node_opts *o)
{
	sdfs_opts so = {n->rpc, &n->lg, n->data_dir, alive_members, n->mship,
	    {o->sdfs_offers_per_call, o->sdfs_puts_max, o->sdfs_list_page,
	        (uint64_t) o->sdfs_session_idle_ms,
	        (uint64_t) o->sdfs_scrub_pass_ms,
	        (uint64_t) o->sdfs_cache_trust_ms,
	        (uint64_t) o->sdfs_replicate_ms}};
	return sdfs_open(&so, &n->sdfs);
}

// The scheduler's routes: sched.where on every node, the coordinator's
// on a coordinator (answering "starting" until start_role).
static int
open_role(idn_node *n)
{
	int rv = coord_where_open(n->rpc, n->mship, &n->where);
	if (rv == IDN_OK && (n->role == IDN_ROLE_COORD ||
	                        n->role == IDN_ROLE_STANDBY)) {
		coord_node cn = {n->rpc, n->mship, n->data_dir, n->id, n->addr,
		    n->key, n->role == IDN_ROLE_STANDBY, log_line, n};
		rv = coord_role_open(&cn, &n->coord);
	}
	if (rv == IDN_OK && n->role == IDN_ROLE_WORKER) {
		rv = worker_role_open(n->rpc, &n->worker);
	}
	return rv;
}

// Once joined: the coordinator restores its ledger, a worker starts its
// lease loop.
static int
start_role(idn_node *n)
{
	if (n->role == IDN_ROLE_COORD || n->role == IDN_ROLE_STANDBY) {
		return coord_role_start(n->coord);
	}
	if (n->role == IDN_ROLE_WORKER) {
		return worker_role_start(n->worker, n->addr, n->key, n->id,
		    n->model_cpu, log_line, n);
	}
	return IDN_OK;
}

// The dashboard: on the coordinator always (its snapshots feed `idunno
// top`), over HTTP when asked for; on the standby when asked for.
static int
open_dash(idn_node *n, const idn_node_opts *o)
{
	if (n->role == IDN_ROLE_WORKER ||
	    (o->http == NULL && n->role != IDN_ROLE_COORD)) {
		return IDN_OK;
	}
	dash_opts d = {o->http, n->id, idn_role_name(n->role), n->mship,
	    n->coord, n->rpc, n->sdfs};
	int rv = dash_open(&d, &n->dash);
	if (rv == IDN_OK && o->http != NULL) {
		core_logf(&n->lg, IDN_LOG_INFO, "node: dashboard on http://%s/",
		    dash_addr(n->dash));
	}
	return rv;
}

static int
join(idn_node *n, const idn_node_opts *o)
{
	core_logf(&n->lg, IDN_LOG_INFO, "node: started %s as %s, data %s",
	    n->id, idn_role_name(n->role), n->data_dir);
	int rv = membership_join(n->mship, o->join, o->njoin);
	if (rv != IDN_OK) {
		core_logf(&n->lg, IDN_LOG_ERROR,
		    "node: no introducer answered (%s)", idn_strerror(rv));
	}
	return rv;
}

static int
write_addr_file(idn_node *n)
{
	char *path = core_asprintf("%s/node.addr", n->data_dir);
	char *text = core_asprintf("%s\n%s\n%s\n%s\n%s\n", n->addr, n->id,
	    idn_role_name(n->role), membership_pub_addr(n->mship),
	    dash_addr(n->dash) != NULL ? dash_addr(n->dash) : "-");
	int rv = path && text ?
	    core_file_write_atomic(path, text, strlen(text)) : IDN_ENOMEM;
	free(path);
	free(text);
	return rv;
}

int
idn_node_open(const idn_node_opts *o, idn_node **out)
{
	idn_node_opts full;
	// A caller built before the SDFS limits gets their defaults.
	if (o == NULL || out == NULL || o->size > sizeof(full) ||
	    o->size < offsetof(idn_node_opts, sdfs_offers_per_call)) {
		return IDN_EINVAL;
	}
	idn_node_opts_init(&full);
	memcpy(&full, o, o->size);
	full.size = sizeof(full);
	o = &full;
	if (!valid_opts(o)) {
		return IDN_EINVAL;
	}
	idn_node *n = core_alloc(sizeof(*n));
	if (n == NULL) {
		return IDN_ENOMEM;
	}
	memcpy(n->key, o->key, IDN_KEY_BYTES);
	n->role = o->role;
	n->model_cpu = o->model_cpu;
	n->host_fn = o->log_fn;
	n->host_arg = o->log_arg;
	n->lg = (core_logger){log_line, n, IDN_LOG_INFO};
	// Every route is registered before the endpoint serves.
	int rv;
	if ((rv = open_log(n, o)) != IDN_OK ||
	    (rv = open_rpc(n, o)) != IDN_OK ||
	    (rv = open_membership(n, o)) != IDN_OK ||
	    (rv = open_sdfs(n, o)) != IDN_OK ||
	    (rv = open_role(n)) != IDN_OK ||
	    (rv = rpc_serve(n->rpc)) != IDN_OK ||
	    (rv = join(n, o)) != IDN_OK ||
	    (rv = sdfs_start(n->sdfs)) != IDN_OK ||
	    (rv = start_role(n)) != IDN_OK ||
	    (rv = open_dash(n, o)) != IDN_OK ||
	    (rv = write_addr_file(n)) != IDN_OK) {
		idn_node_close(n);
		return rv;
	}
	*out = n;
	return IDN_OK;
}

int
idn_node_leave(idn_node *n)
{
	if (n == NULL) {
		return IDN_EINVAL;
	}
	core_logf(&n->lg, IDN_LOG_INFO, "node: leaving the cluster");
	return membership_leave(n->mship);
}

void
idn_node_close(idn_node *n)
{
	if (n == NULL) {
		return;
	}
	// Reverse order: no more requests in, then the subsystems, then the
	// endpoint's client and pool they called through.
	dash_close(n->dash);
	rpc_stop(n->rpc);
	worker_role_close(n->worker);
	sdfs_close(n->sdfs);
	// Membership stops first (no more events reach the coordinator);
	// its view is freed only after the coordinator's thread, which
	// reads it, has ended.
	membership_stop(n->mship);
	coord_role_close(n->coord);
	coord_where_close(n->where);
	membership_close(n->mship);
	rpc_close(n->rpc);
	if (n->log != NULL && n->id[0] != '\0') {
		nlog_write(n->log, IDN_LOG_INFO, "node: stopped");
	}
	nlog_close(n->log);
	free(n->data_dir);
	free(n);
}
