// SPDX-License-Identifier: MIT
// node.c: a node's wiring: log, RPC endpoint and dispatch, the pool,
// membership, and the subsystems every node carries.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coord.h"
#include "log/log.h"
#include "membership/swim.h"
#include "node/node.h"
#include "sdfs/sdfs.h"
#include "wire/member_msg.h"
#include "worker/worker.h"

#define MAX_HANDLERS 64
#define MAX_WATCHERS 16
// Handlers may block on their own calls (SDFS forwards chunks): enough
// threads that a busy data plane still leaves some to answer pings.
#define RPC_THREADS 16
#define POOL_THREADS 8
#define GREP_MAX_LINES 20000

typedef struct {
	char type[32];
	node_handler_fn fn;
	void *arg;
} handler;

struct idn_node {
	char id[IDN_ID_MAX];
	char addr[IDN_ADDR_MAX];
	char role[IDN_ROLE_MAX];
	char *data_dir;
	uint64_t start_ms;
	uint8_t key[IDN_KEY_BYTES];
	idn_logger lg;
	idn_log_fn host_fn;
	void *host_arg;
	nlog *log;
	net_server *server;
	net_pub *pub;
	net_client *client;
	net_pool *pool;
	swim *swim;
	sdfs *sdfs;
	coord_role *coord;
	worker_role *worker;
	pthread_mutex_t lock; // guards handlers, watchers
	handler handlers[MAX_HANDLERS];
	int nhandlers;
	struct {
		idn_member_fn fn;
		void *arg;
	} watchers[MAX_WATCHERS];
	int nwatchers;
};

void
idn_node_opts_init(idn_node_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->listen = "127.0.0.1:0";
	o->role = "worker";
	o->probe_interval_ms = 100;
	o->probe_timeout_ms = 150;
	o->suspect_timeout_ms = 600;
	o->indirect_probes = 3;
	o->join_timeout_ms = 5000;
	o->max_msg_bytes = NET_DEFAULT_MAX_MSG;
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
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_line(n, level, line);
}

int
node_handle(idn_node *n, const char *type, node_handler_fn fn, void *arg)
{
	int rv = IDN_OK;
	pthread_mutex_lock(&n->lock);
	if (n->nhandlers == MAX_HANDLERS || strlen(type) >= 32) {
		rv = IDN_EINVAL;
	} else {
		handler *h = &n->handlers[n->nhandlers++];
		snprintf(h->type, sizeof(h->type), "%s", type);
		h->fn = fn;
		h->arg = arg;
	}
	pthread_mutex_unlock(&n->lock);
	return rv;
}

static int
dispatch(void *arg, const wire_env *req, wire_wr *reply)
{
	idn_node *n = arg;
	node_handler_fn fn = NULL;
	void *harg = NULL;
	pthread_mutex_lock(&n->lock);
	for (int i = 0; i < n->nhandlers; i++) {
		if (strcmp(n->handlers[i].type, req->type) == 0) {
			fn = n->handlers[i].fn;
			harg = n->handlers[i].arg;
			break;
		}
	}
	pthread_mutex_unlock(&n->lock);
	if (fn == NULL) {
		idn_logf(&n->lg, IDN_LOG_WARN, "net: unknown request type '%s'"
		    " from %s", req->type, req->from);
		return IDN_EPROTO;
	}
	return fn(harg, req, reply);
}

net_client *
node_client(idn_node *n)
{
	return n->client;
}

const idn_logger *
node_logger(idn_node *n)
{
	return &n->lg;
}

const char *
node_data_dir(const idn_node *n)
{
	return n->data_dir;
}

const uint8_t *
node_key(const idn_node *n)
{
	return n->key;
}

const char *
node_role(const idn_node *n)
{
	return n->role;
}

const char *
idn_node_id(const idn_node *n)
{
	return n->id;
}

const char *
idn_node_addr(const idn_node *n)
{
	return n->addr;
}

static int
by_id(const void *a, const void *b)
{
	return strcmp(((const idn_member *) a)->id,
	    ((const idn_member *) b)->id);
}

int
node_alive_members(idn_node *n, idn_member **out, size_t *count)
{
	int rv = swim_members(n->swim, true, out, count);
	if (rv == IDN_OK) {
		qsort(*out, *count, sizeof(**out), by_id);
	}
	return rv;
}

int
idn_node_members(idn_node *n, idn_member **out, size_t *count)
{
	if (n == NULL || out == NULL || count == NULL) {
		return IDN_EINVAL;
	}
	int rv = swim_members(n->swim, false, out, count);
	if (rv == IDN_OK) {
		qsort(*out, *count, sizeof(**out), by_id);
	}
	return rv;
}

int
idn_node_watch(idn_node *n, idn_member_fn fn, void *arg)
{
	if (n == NULL || fn == NULL) {
		return IDN_EINVAL;
	}
	int rv = IDN_OK;
	pthread_mutex_lock(&n->lock);
	if (n->nwatchers == MAX_WATCHERS) {
		rv = IDN_EBUSY;
	} else {
		n->watchers[n->nwatchers].fn = fn;
		n->watchers[n->nwatchers].arg = arg;
		n->nwatchers++;
	}
	pthread_mutex_unlock(&n->lock);
	return rv;
}

// Publishes one membership event, sealed like every other message.
static void
publish(idn_node *n, const idn_member *m, int event)
{
	wire_wr *w;
	const uint8_t *p;
	size_t len;
	idn_buf frame = {0};
	if (n->pub == NULL || wire_wr_new(&w) != IDN_OK) {
		return;
	}
	member_msg_event_put(w, event, m);
	if (wire_wr_bytes(w, &p, &len) == IDN_OK &&
	    wire_seal(n->key, p, len, &frame) == IDN_OK) {
		net_pub_send(n->pub, frame.data, frame.len);
	}
	idn_buf_free(&frame);
	wire_wr_free(w);
}

static void
on_member_event(void *arg, const idn_member *m, int event)
{
	idn_node *n = arg;
	publish(n, m, event);
	pthread_mutex_lock(&n->lock);
	int count = n->nwatchers;
	pthread_mutex_unlock(&n->lock);
	// Watchers are only appended, so the first `count` are stable.
	for (int i = 0; i < count; i++) {
		n->watchers[i].fn(n->watchers[i].arg, m, event);
	}
}

int
node_fanout(idn_node *n, const char *const *addrs, size_t count,
    const char *type, wire_wr *body, idn_duration timeout_ms, int *rvs,
    wire_doc **docs, wire_env *envs)
{
	return net_pool_call_all_wr(n->pool, addrs, count, type, body,
	    timeout_ms, rvs, docs, envs);
}

static int
on_members(void *arg, const wire_env *req, wire_wr *reply)
{
	idn_node *n = arg;
	idn_member *m;
	size_t count;
	int rv = idn_node_members(n, &m, &count);
	if (rv != IDN_OK) {
		return rv;
	}
	wire_map(reply, 4);
	wire_kstr(reply, "pub", n->pub ? net_pub_addr(n->pub) : "");
	wire_kstr(reply, "self", n->id);
	wire_kstr(reply, "role", n->role);
	wire_str(reply, "members");
	member_msg_put(reply, m, count);
	free(m);
	return IDN_OK;
}

static int
on_stats(void *arg, const wire_env *req, wire_wr *reply)
{
	idn_node *n = arg;
	net_counters c;
	net_stats(n->server, n->client, &c);
	wire_map(reply, 6);
	wire_kstr(reply, "id", n->id);
	wire_ku64(reply, "uptime_ms", idn_wall_ms() - n->start_ms);
	wire_ku64(reply, "msgs_in", c.msgs_in);
	wire_ku64(reply, "msgs_out", c.msgs_out);
	wire_ku64(reply, "bytes_in", c.bytes_in);
	wire_ku64(reply, "bytes_out", c.bytes_out);
	return IDN_OK;
}

// Lines shown by one grep reply: at most GREP_MAX_LINES, and at most
// GREP_MAX_BYTES of them so the reply stays under the message limit.
#define GREP_MAX_BYTES (4u << 20)

typedef struct {
	wire_wr *w; // the lines, an array body written after the count
	size_t n;
	size_t bytes;
} grep_acc;

static void
grep_line(void *arg, const char *line, size_t len)
{
	grep_acc *a = arg;
	if (a->bytes + len <= GREP_MAX_BYTES) {
		wire_strn(a->w, line, len);
		a->n++;
		a->bytes += len;
	}
}

static int
on_grep(void *arg, const wire_env *req, wire_wr *reply)
{
	idn_node *n = arg;
	char pattern[512];
	bool regex = false;
	uint64_t count = 0;
	if (wire_get_str(req->body, "p", pattern, sizeof(pattern)) ||
	    wire_as_bool(wire_get(req->body, "re"), &regex)) {
		return IDN_EPROTO;
	}
	grep_acc acc = {0};
	int rv = wire_wr_new(&acc.w);
	if (rv == IDN_OK) {
		rv = nlog_grep(nlog_path(n->log), pattern, regex,
		    GREP_MAX_LINES, grep_line, &acc, &count);
	}
	const uint8_t *lines;
	size_t len;
	if (rv == IDN_OK && (rv = wire_wr_bytes(acc.w, &lines, &len)) ==
	    IDN_OK) {
		wire_map(reply, 3);
		wire_ku64(reply, "count", count);
		wire_kstr(reply, "id", n->id);
		wire_str(reply, "lines");
		wire_arr(reply, (uint32_t) acc.n);
		wire_raw(reply, lines, len);
	}
	wire_wr_free(acc.w);
	return rv;
}

static int
write_addr_file(idn_node *n)
{
	char *path = idn_asprintf("%s/node.addr", n->data_dir);
	char *text = idn_asprintf("%s\n%s\n%s\n%s\n", n->addr, n->id, n->role,
	    net_pub_addr(n->pub));
	int rv = path && text ?
	    idn_file_write_atomic(path, text, strlen(text)) : IDN_ENOMEM;
	free(path);
	free(text);
	return rv;
}

static bool
valid_role(const char *r)
{
	return r != NULL && (strcmp(r, "coord") == 0 ||
	    strcmp(r, "standby") == 0 || strcmp(r, "worker") == 0);
}

int
idn_node_open(const idn_node_opts *o, idn_node **out)
{
	if (o == NULL || out == NULL || !valid_role(o->role) ||
	    o->data_dir == NULL || o->listen == NULL ||
	    o->probe_interval_ms <= 0 || o->probe_timeout_ms <= 0 ||
	    o->suspect_timeout_ms <= 0 || o->indirect_probes < 0 ||
	    o->max_msg_bytes < (2u << 20) || // an SDFS chunk must fit
	    (o->njoin > 0 && o->join == NULL)) {
		return IDN_EINVAL;
	}
	char url[128];
	if (net_addr_to_url(o->listen, url, sizeof(url)) != IDN_OK) {
		return IDN_EINVAL;
	}
	for (size_t i = 0; i < o->njoin; i++) {
		if (net_addr_to_url(o->join[i], url, sizeof(url)) != IDN_OK) {
			return IDN_EINVAL;
		}
	}
	idn_node *n = idn_alloc(sizeof(*n));
	if (n == NULL) {
		return IDN_ENOMEM;
	}
	pthread_mutex_init(&n->lock, NULL);
	memcpy(n->key, o->key, IDN_KEY_BYTES);
	snprintf(n->role, sizeof(n->role), "%s", o->role);
	n->host_fn = o->log_fn;
	n->host_arg = o->log_arg;
	n->lg = (idn_logger){log_line, n, IDN_LOG_INFO};
	int rv = (n->data_dir = idn_strdup(o->data_dir)) ? IDN_OK : IDN_ENOMEM;
	char *log_path = NULL;
	if (rv == IDN_OK && idn_mkdir_p(n->data_dir) != IDN_OK) {
		rv = IDN_EPERM; // missing parent, read-only, not a folder
	}
	if (rv == IDN_OK) {
		log_path = o->log_path ? idn_strdup(o->log_path) :
		    idn_asprintf("%s/node.log", n->data_dir);
		rv = log_path ? nlog_open(log_path, &n->log) : IDN_ENOMEM;
		free(log_path);
	}
	if (rv == IDN_OK) {
		rv = net_server_open(o->listen, n->key, o->max_msg_bytes,
		    RPC_THREADS, dispatch, n, &n->lg, &n->server);
	}
	uint64_t start_ms = n->start_ms = idn_wall_ms();
	if (rv == IDN_OK) {
		// Events go out on a free port of the same host.
		char pub_addr[IDN_ADDR_MAX];
		snprintf(pub_addr, sizeof(pub_addr), "%s",
		    net_server_addr(n->server));
		strcpy(strrchr(pub_addr, ':'), ":0");
		rv = net_pub_open(pub_addr, &n->pub);
	}
	if (rv == IDN_OK) {
		snprintf(n->addr, sizeof(n->addr), "%s",
		    net_server_addr(n->server));
		snprintf(n->id, sizeof(n->id), "%s:%llu", n->addr,
		    (unsigned long long) start_ms);
		nlog_set_id(n->log, n->id);
		rv = net_client_open(n->key, n->id, o->max_msg_bytes,
		    &n->client);
	}
	if (rv == IDN_OK) {
		rv = net_pool_open(n->client, POOL_THREADS, &n->pool);
	}
	if (rv == IDN_OK) {
		idn_member self = {.state = IDN_MEMBER_ALIVE,
		    .since_ms = start_ms};
		snprintf(self.id, sizeof(self.id), "%s", n->id);
		snprintf(self.addr, sizeof(self.addr), "%s", n->addr);
		snprintf(self.role, sizeof(self.role), "%s", n->role);
		swim_opts so = {o->probe_interval_ms, o->probe_timeout_ms,
		    o->suspect_timeout_ms, o->join_timeout_ms,
		    o->indirect_probes};
		rv = swim_open(n, &self, &so, on_member_event, n, &n->swim);
	}
	if (rv == IDN_OK) {
		rv = node_handle(n, "node.members", on_members, n);
	}
	if (rv == IDN_OK) {
		rv = node_handle(n, "log.grep", on_grep, n);
	}
	if (rv == IDN_OK) {
		rv = node_handle(n, "node.stats", on_stats, n);
	}
	if (rv == IDN_OK) {
		idn_logf(&n->lg, IDN_LOG_INFO, "node: started %s as %s, data %s",
		    n->id, n->role, n->data_dir);
		rv = swim_join(n->swim, o->join, o->njoin);
		if (rv != IDN_OK) {
			idn_logf(&n->lg, IDN_LOG_ERROR,
			    "node: no introducer answered (%s)",
			    idn_strerror(rv));
		}
	}
	if (rv == IDN_OK) {
		rv = sdfs_attach(n, &n->sdfs);
	}
	if (rv == IDN_OK) {
		rv = sched_where_attach(n);
	}
	if (rv == IDN_OK && strcmp(n->role, "coord") == 0) {
		rv = coord_attach(n, &n->coord);
	}
	if (rv == IDN_OK && strcmp(n->role, "worker") == 0) {
		rv = worker_attach(n, &n->worker);
	}
	if (rv == IDN_OK) {
		rv = write_addr_file(n);
	}
	if (rv != IDN_OK) {
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
	idn_logf(&n->lg, IDN_LOG_INFO, "node: leaving the cluster");
	return swim_leave(n->swim);
}

void
idn_node_close(idn_node *n)
{
	if (n == NULL) {
		return;
	}
	// Order: no more requests in, then the subsystems, then the sockets
	// they used.
	net_server_close(n->server);
	worker_detach(n->worker);
	sdfs_detach(n->sdfs);
	swim_close(n->swim);
	// After membership: no more events reach the coordinator.
	coord_detach(n->coord);
	net_pool_close(n->pool);
	net_client_close(n->client);
	net_pub_close(n->pub);
	if (n->log != NULL && n->id[0] != '\0') {
		nlog_write(n->log, IDN_LOG_INFO, "node: stopped");
	}
	nlog_close(n->log);
	pthread_mutex_destroy(&n->lock);
	free(n->data_dir);
	free(n);
}

int
idn_key_load(const char *path, uint8_t key[IDN_KEY_BYTES])
{
	idn_buf b = {0};
	if (path == NULL || key == NULL) {
		return IDN_EINVAL;
	}
	int rv = idn_file_read(path, 256, &b);
	if (rv == IDN_OK) {
		rv = wire_key_parse((const char *) b.data, b.len, key);
	}
	idn_buf_free(&b);
	return rv == IDN_ETOOBIG ? IDN_EINVAL : rv;
}

int
idn_key_create(const char *path, uint8_t key[IDN_KEY_BYTES])
{
	char hex[2 * IDN_KEY_BYTES + 2];
	if (path == NULL || key == NULL) {
		return IDN_EINVAL;
	}
	wire_keygen(key);
	wire_key_format(key, hex);
	strcat(hex, "\n");
	return idn_file_write_atomic(path, hex, strlen(hex));
}
