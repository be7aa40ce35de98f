// SPDX-License-Identifier: MIT
// net.c: nng req/rep and pub sockets; the only file that includes nng.
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/net.h"
#include "net/replay.h"

int
net_err_from_nng(int e)
{
	switch (e) {
	case 0:
		return IDN_OK;
	case NNG_ENOMEM:
		return IDN_ENOMEM;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
		return IDN_EINVAL;
	case NNG_ETIMEDOUT:
		return IDN_ETIMEDOUT;
	case NNG_ECLOSED:
	case NNG_ECANCELED:
		return IDN_ECLOSED;
	case NNG_EMSGSIZE:
		return IDN_ETOOBIG;
	case NNG_EPROTO:
		return IDN_EPROTO;
	default:
		return IDN_ENET;
	}
}

int
net_addr_to_url(const char *addr, char *url, size_t cap)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	if (colon == NULL || colon == addr || colon[1] == '\0') {
		return IDN_EINVAL;
	}
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 0 || port > 65535) {
		return IDN_EINVAL;
	}
	size_t hl = (size_t) (colon - addr);
	char host[64];
	if (hl >= sizeof(host)) {
		return IDN_EINVAL;
	}
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (strcmp(host, "localhost") != 0) {
		int parts = 0, val = -1;
		for (const char *p = host;; p++) {
			if (*p >= '0' && *p <= '9') {
				val = (val < 0 ? 0 : val * 10) + (*p - '0');
				if (val > 255) {
					return IDN_EINVAL;
				}
			} else if ((*p == '.' || *p == '\0') && val >= 0) {
				parts++;
				val = -1;
				if (*p == '\0') {
					break;
				}
			} else {
				return IDN_EINVAL;
			}
		}
		if (parts != 4) {
			return IDN_EINVAL;
		}
	}
	if ((size_t) snprintf(url, cap, "tcp://%s:%ld", host, port) >= cap) {
		return IDN_EINVAL;
	}
	return IDN_OK;
}

static int
listener_addr(nng_listener l, char *out, size_t cap)
{
	nng_sockaddr sa;
	int rv = nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa);
	if (rv != 0 || sa.s_family != NNG_AF_INET) {
		return IDN_ENET;
	}
	const uint8_t *a = (const uint8_t *) &sa.s_in.sa_addr;
	const uint8_t *p = (const uint8_t *) &sa.s_in.sa_port;
	snprintf(out, cap, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3],
	    (unsigned) (p[0] << 8 | p[1]));
	return IDN_OK;
}

static int
listen_on(nng_socket s, const char *addr, char *bound, size_t cap)
{
	char url[128];
	nng_listener l;
	int rv = net_addr_to_url(addr, url, sizeof(url));
	if (rv != IDN_OK) {
		return rv;
	}
	if ((rv = nng_listen(s, url, &l, 0)) != 0) {
		return rv == NNG_EADDRINVAL ? IDN_EINVAL : IDN_ENET;
	}
	return listener_addr(l, bound, cap);
}

// nng 1.5 can deadlock in nng_close after a peer broke a pipe in the
// middle of a message (nng issue #1543, fixed in 1.7). A close that has not
// returned within CLOSE_WAIT_MS is left to finish, or not, on its own
// thread, and the caller abandons what the socket's users still hold.
#define CLOSE_WAIT_MS 2000

typedef struct {
	nng_socket sock;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int refs; // the closing thread and the waiter
	bool done;
} closer;

static void
closer_unref(closer *c)
{
	pthread_mutex_lock(&c->lock);
	bool last = --c->refs == 0;
	pthread_mutex_unlock(&c->lock);
	if (last) {
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->cv);
		free(c);
	}
}

static void *
closer_run(void *arg)
{
	closer *c = arg;
	nng_close(c->sock);
	pthread_mutex_lock(&c->lock);
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->lock);
	closer_unref(c);
	return NULL;
}

static bool
close_bounded(nng_socket sock)
{
	closer *c = core_alloc(sizeof(*c));
	pthread_t t;
	if (c == NULL) {
		nng_close(sock);
		return true;
	}
	c->sock = sock;
	c->refs = 2;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&t, NULL, closer_run, c) != 0) {
		c->refs = 1;
		closer_unref(c);
		nng_close(sock);
		return true;
	}
	pthread_detach(t);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += CLOSE_WAIT_MS / 1000;
	pthread_mutex_lock(&c->lock);
	while (!c->done &&
	    pthread_cond_timedwait(&c->cv, &c->lock, &ts) == 0) {
	}
	bool done = c->done;
	pthread_mutex_unlock(&c->lock);
	closer_unref(c);
	return done;
}

// A server starts nthreads handler threads and grows while requests are
// in hand, so that NET_SPARE_THREADS always wait for the next request:
// a handler that blocks for seconds (a commit, a pull) never makes a
// ping wait behind it. At max_threads, data requests are answered
// IDN_EBUSY while fewer than NET_SPARE_THREADS wait; membership's
// (NET_CONTROL_PREFIX) are always served.
#define NET_SPARE_THREADS 4
// Requests older than this, or this far in the future, are refused; it
// bounds both clock skew between nodes and how long a replay is remembered.
#define REPLAY_WINDOW_MS 30000
// The replay filter holds the requests of one window at this sustained
// rate; above it requests are answered IDN_EBUSY (never admitted unseen).
#define REPLAY_RATE 8192
// Peers whose clock skew is logged by name, once each.
#define SKEW_PEERS 64
// The reply types of requests refused before any handler ran: the
// caller learns the destination's id, or stamps its request again.
#define TYPE_REDIRECT "net.redirect"
#define TYPE_STALE "net.stale"
#define NET_MAX_THREADS_PER 8 // max_threads = 8 * nthreads

struct net_server {
	nng_socket sock;
	uint8_t key[WIRE_KEY_BYTES];
	net_handler_fn fn;
	void *arg;
	const core_logger *lg;
	pthread_mutex_t tlock; // guards the thread fields below
	int nthreads;          // started: threads[0, nthreads)
	int max_threads;
	int idle; // waiting for a request
	bool closing;
	int in_serve;            // requests being served
	pthread_cond_t serve_cv; // signalled when in_serve drops to 0
	pthread_mutex_t loglock; // guards lg, which close may let go
	uint64_t drops;       // requests dropped since the last line logged
	uint64_t drop_log_ms; // when that line was logged (0: never)
	pthread_t *threads;
	char addr[64];
	char self[96];     // this node's id (under tlock); "" until named
	uint64_t start_ms; // wall clock when the endpoint opened
	net_counters ctr;
	replay *replay;
	char skewed[SKEW_PEERS][96]; // peers whose clock was logged (tlock)
	int nskewed;
};

static void
count(net_counters *c, bool in, size_t bytes)
{
	atomic_fetch_add(in ? &c->msgs_in : &c->msgs_out, 1);
	atomic_fetch_add(in ? &c->bytes_in : &c->bytes_out, bytes);
}

static nng_msg *
reply_msg(net_server *s, const wire_env *req, const char *type, int rc,
    wire_wr *body)
{
	const uint8_t *p = NULL;
	size_t n = 0;
	core_buf env = {0}, frame = {0};
	nng_msg *m = NULL;
	if (body != NULL && wire_wr_bytes(body, &p, &n) != IDN_OK) {
		rc = IDN_ENOMEM;
		n = 0;
	}
	wire_env h = {.rc = rc, .ts_ms = idn_wall_ms(), .nonce = req->nonce};
	snprintf(h.type, sizeof(h.type), "%s", type ? type : req->type);
	// No "to": the nonce binds a reply to its request and caller.
	// The caller learns our id from a reply; one that named us by it
	// already knows it.
	pthread_mutex_lock(&s->tlock);
	if (strcmp(req->to, s->self) != 0) {
		snprintf(h.from, sizeof(h.from), "%s", s->self);
	}
	pthread_mutex_unlock(&s->tlock);
	if (wire_env_write(&h, p, n, &env) == IDN_OK &&
	    wire_seal(s->key, env.data, env.len, &frame) == IDN_OK &&
	    nng_msg_alloc(&m, frame.len) == 0) {
		memcpy(nng_msg_body(m), frame.data, frame.len);
	}
	core_buf_free(&env);
	core_buf_free(&frame);
	return m;
}

static void *server_thread(void *argp);

static void
server_log(net_server *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Logs through the caller's logger while the endpoint still has it.
static void
server_log(net_server *s, int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&s->loglock);
	core_logf(s->lg, level, "%s", line);
	pthread_mutex_unlock(&s->loglock);
}

// A request is served (handler run, reply sent) only while the endpoint
// is open, and close waits for those being served before it closes the
// socket: nng 1.5 can crash in nng_ctx_send on a context that a
// concurrent nng_close freed, and a close that is abandoned (see
// CLOSE_WAIT_MS) must leave no handler running on freed memory.
static bool
serve_enter(net_server *s)
{
	pthread_mutex_lock(&s->tlock);
	bool open = !s->closing;
	s->in_serve += open;
	pthread_mutex_unlock(&s->tlock);
	return open;
}

static void
serve_leave(net_server *s)
{
	pthread_mutex_lock(&s->tlock);
	if (--s->in_serve == 0) {
		pthread_cond_broadcast(&s->serve_cv);
	}
	pthread_mutex_unlock(&s->tlock);
}

// Rejected requests are logged one line per DROP_LOG_MS with a count, so
// that strangers cannot fill the disk with WARN lines.
#define DROP_LOG_MS 10000

static void
log_drop(net_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
log_drop(net_server *s, const char *fmt, ...)
{
	uint64_t now = idn_clock_ms();
	atomic_fetch_add(&s->ctr.rejected, 1);
	pthread_mutex_lock(&s->tlock);
	uint64_t n = ++s->drops;
	bool due = s->drop_log_ms == 0 || now - s->drop_log_ms >= DROP_LOG_MS;
	if (due) {
		s->drops = 0;
		s->drop_log_ms = now;
	}
	pthread_mutex_unlock(&s->tlock);
	if (due) {
		char why[256];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
		server_log(s, IDN_LOG_WARN, "net: %s (%llu requests dropped "
		    "since the last such line)", why, (unsigned long long) n);
	}
}

// A thread took a request: start threads until NET_SPARE_THREADS wait
// again (up to max_threads). True while at least that many wait.
static bool
thread_busy(net_server *s)
{
	pthread_mutex_lock(&s->tlock);
	s->idle--;
	while (s->idle < NET_SPARE_THREADS && s->nthreads < s->max_threads &&
	    !s->closing && pthread_create(&s->threads[s->nthreads], NULL,
	                       server_thread, s) == 0) {
		s->nthreads++;
		s->idle++;
	}
	bool spare = s->idle >= NET_SPARE_THREADS;
	pthread_mutex_unlock(&s->tlock);
	return spare;
}

static void
thread_idle(net_server *s)
{
	pthread_mutex_lock(&s->tlock);
	s->idle++;
	pthread_mutex_unlock(&s->tlock);
}

// Splits "tcp://host:port" in place; host "localhost" reads 127.0.0.1.
static void
url_split(char *url, const char **host, const char **port)
{
	char *colon = strrchr(url, ':');
	*colon = '\0';
	*port = colon + 1;
	*host = strcmp(url + 6, "localhost") == 0 ? "127.0.0.1" : url + 6;
}

// Two addresses name the same endpoint ("localhost" is 127.0.0.1; an
// endpoint bound to 0.0.0.0 answers on every host address).
static bool
addr_same(const char *to, const char *bound)
{
	char a[128], b[128];
	const char *ha, *pa, *hb, *pb;
	if (net_addr_to_url(to, a, sizeof(a)) != IDN_OK ||
	    net_addr_to_url(bound, b, sizeof(b)) != IDN_OK) {
		return false;
	}
	url_split(a, &ha, &pa);
	url_split(b, &hb, &pb);
	return strcmp(pa, pb) == 0 &&
	    (strcmp(ha, hb) == 0 || strcmp(hb, "0.0.0.0") == 0);
}

// A clock beyond the window is an operator's problem: one clear line per
// peer (its requests are all refused until the clocks agree).
static void
log_skew(net_server *s, const wire_env *env, uint64_t now)
{
	bool known = false;
	pthread_mutex_lock(&s->tlock);
	for (int i = 0; i < s->nskewed && !known; i++) {
		known = strcmp(s->skewed[i], env->from) == 0;
	}
	bool room = !known && s->nskewed < SKEW_PEERS;
	if (room) {
		snprintf(s->skewed[s->nskewed++], sizeof(s->skewed[0]), "%s",
		    env->from);
	}
	pthread_mutex_unlock(&s->tlock);
	atomic_fetch_add(&s->ctr.rejected, 1);
	if (room) {
		server_log(s, IDN_LOG_ERROR, "net: the clock of %s is %+lld "
		    "ms off this node's, beyond the %d ms window: its requests "
		    "are refused until the clocks agree", env->from,
		    (long long) (env->ts_ms - now), REPLAY_WINDOW_MS);
	} else if (!known) {
		log_drop(s, "request from %s outside the time window",
		    env->from);
	}
}

typedef enum { ADMIT, DROP, REDIRECT, STALE, FULL } admission;

// Admits a request meant for this endpoint (its id, or its address and
// stamped after it started), inside the time window, not seen before.
static admission
admit(net_server *s, const wire_env *env)
{
	pthread_mutex_lock(&s->tlock);
	bool ours = s->self[0] != '\0' && strcmp(env->to, s->self) == 0;
	pthread_mutex_unlock(&s->tlock);
	char url[128];
	bool is_addr = net_addr_to_url(env->to, url, sizeof(url)) == IDN_OK;
	if (!ours && is_addr && !addr_same(env->to, s->addr)) {
		log_drop(s, "dropped request '%s' from %s meant for %s",
		    env->type, env->from, env->to);
		return DROP;
	}
	if (!ours && !is_addr) {
		// Another node's id, or an earlier incarnation of this one:
		// nothing runs; the caller learns our id and may ask again.
		return REDIRECT;
	}
	uint64_t now = idn_wall_ms();
	if (env->ts_ms + REPLAY_WINDOW_MS < now ||
	    env->ts_ms > now + REPLAY_WINDOW_MS) {
		log_skew(s, env, now);
		return STALE;
	}
	if (!ours && env->ts_ms < s->start_ms) {
		// Addressed by address only: a capture from before this
		// incarnation started must not run again.
		log_drop(s, "refused request '%s' from %s stamped before this "
		    "node started", env->type, env->from);
		return STALE;
	}
	switch (replay_check(s->replay, env->ts_ms, env->nonce, now)) {
	case IDN_OK:
		return ADMIT;
	case IDN_ESTALE: // the clock moved since
		return STALE;
	case IDN_EBUSY:
		log_drop(s, "replay filter full: request '%s' from %s refused",
		    env->type, env->from);
		return FULL;
	default:
		log_drop(s, "dropped replayed request '%s' from %s", env->type,
		    env->from);
		return DROP;
	}
}

// Answers one received request (m is consumed); NULL: no reply.
static nng_msg *
serve(net_server *s, nng_msg *m, bool spare)
{
	const uint8_t *payload;
	size_t plen;
	wire_doc *doc = NULL;
	wire_env env;
	int rv = wire_open(s->key, nng_msg_body(m), nng_msg_len(m), &payload,
	    &plen);
	if (rv != IDN_OK) {
		log_drop(s, "dropped %zu-byte request: %s", nng_msg_len(m),
		    idn_strerror(rv));
		nng_msg_free(m);
		return NULL; // no reply: a stranger learns nothing
	}
	rv = wire_env_decode(payload, plen, &doc, &env);
	nng_msg_free(m);
	admission a = rv == IDN_OK ? admit(s, &env) : ADMIT;
	if (rv != IDN_OK) {
		log_drop(s, "malformed authenticated request: %s",
		    idn_strerror(rv));
		memset(&env, 0, sizeof(env));
		strcpy(env.type, "?");
		m = reply_msg(s, &env, NULL, IDN_EPROTO, NULL);
	} else if (a == DROP) {
		m = NULL;
	} else if (a == REDIRECT || a == STALE) {
		m = reply_msg(s, &env, a == REDIRECT ? TYPE_REDIRECT :
		    TYPE_STALE, IDN_ESTALE, NULL);
	} else if (a == FULL || (!spare && strncmp(env.type,
	                NET_CONTROL_PREFIX, strlen(NET_CONTROL_PREFIX)) != 0)) {
		m = reply_msg(s, &env, NULL, IDN_EBUSY, NULL);
	} else {
		wire_wr *w = NULL;
		if (wire_wr_new(&w) == IDN_OK) {
			rv = s->fn(s->arg, &env, w);
		} else {
			rv = IDN_ENOMEM;
		}
		m = reply_msg(s, &env, NULL, rv, w);
		wire_wr_free(w);
	}
	wire_doc_free(doc);
	return m;
}

static void *
server_thread(void *argp)
{
	net_server *s = argp;
	nng_ctx ctx;
	nng_aio *aio;
	bool ok = nng_ctx_open(&ctx, s->sock) == 0;
	if (ok && nng_aio_alloc(&aio, NULL, NULL) != 0) {
		nng_ctx_close(ctx);
		ok = false;
	}
	if (!ok) {
		pthread_mutex_lock(&s->tlock);
		s->idle--; // no longer waiting, for good
		pthread_mutex_unlock(&s->tlock);
		return NULL;
	}
	for (;;) {
		nng_ctx_recv(ctx, aio);
		nng_aio_wait(aio);
		int rv = nng_aio_result(aio);
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
			break;
		}
		if (rv != 0) {
			continue;
		}
		nng_msg *m = nng_aio_get_msg(aio);
		if (!serve_enter(s)) {
			nng_msg_free(m); // closing: the next recv ends us
			continue;
		}
		count(&s->ctr, true, nng_msg_len(m));
		m = serve(s, m, thread_busy(s));
		if (m != NULL) {
			count(&s->ctr, false, nng_msg_len(m));
			nng_aio_set_msg(aio, m);
			nng_ctx_send(ctx, aio);
			nng_aio_wait(aio);
			if (nng_aio_result(aio) != 0) {
				nng_msg_free(nng_aio_get_msg(aio));
			}
		}
		thread_idle(s);
		serve_leave(s);
	}
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	return NULL;
}

void
net_server_close(net_server *s)
{
	if (s == NULL) {
		return;
	}
	pthread_mutex_lock(&s->tlock);
	s->closing = true; // no thread starts, no request is served after
	while (s->in_serve > 0) {
		pthread_cond_wait(&s->serve_cv, &s->tlock);
	}
	pthread_mutex_unlock(&s->tlock);
	if (!close_bounded(s->sock)) {
		// Its threads may still wait on the socket: leave them s (and
		// nothing else: no request is served any more, and the
		// caller's logger is let go).
		server_log(s, IDN_LOG_WARN, "net: endpoint %s did not close "
		    "within %d ms (nng 1.5); abandoned", s->addr, CLOSE_WAIT_MS);
		pthread_mutex_lock(&s->loglock);
		s->lg = NULL;
		pthread_mutex_unlock(&s->loglock);
		for (int i = 0; i < s->nthreads; i++) {
			pthread_detach(s->threads[i]);
		}
		return;
	}
	for (int i = 0; i < s->nthreads; i++) {
		pthread_join(s->threads[i], NULL);
	}
	free(s->threads);
	replay_close(s->replay);
	pthread_cond_destroy(&s->serve_cv);
	pthread_mutex_destroy(&s->loglock);
	pthread_mutex_destroy(&s->tlock);
	free(s);
}

int
net_server_open(const char *addr, const uint8_t key[WIRE_KEY_BYTES],
    size_t max_msg_bytes, net_handler_fn fn, void *arg, const core_logger *lg,
    net_server **out)
{
	net_server *s = core_alloc(sizeof(*s));
	if (s == NULL) {
		return IDN_ENOMEM;
	}
	memcpy(s->key, key, WIRE_KEY_BYTES);
	s->fn = fn;
	s->arg = arg;
	s->lg = lg;
	s->start_ms = idn_wall_ms();
	pthread_mutex_init(&s->tlock, NULL);
	pthread_mutex_init(&s->loglock, NULL);
	pthread_cond_init(&s->serve_cv, NULL);
	int rv = replay_open(REPLAY_WINDOW_MS,
	    REPLAY_RATE * (REPLAY_WINDOW_MS / 1000), &s->replay);
	if (rv != IDN_OK) {
		pthread_mutex_destroy(&s->tlock);
		free(s);
		return rv;
	}
	if ((rv = nng_rep0_open(&s->sock)) != 0) {
		replay_close(s->replay);
		pthread_mutex_destroy(&s->tlock);
		free(s);
		return net_err_from_nng(rv);
	}
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, max_msg_bytes);
	if ((rv = listen_on(s->sock, addr, s->addr, sizeof(s->addr))) !=
	    IDN_OK) {
		net_server_close(s);
		return rv;
	}
	*out = s;
	return IDN_OK;
}

int
net_server_start(net_server *s, int nthreads)
{
	if (s->threads != NULL || nthreads <= 0) {
		return IDN_EINVAL;
	}
	s->max_threads = nthreads * NET_MAX_THREADS_PER;
	if ((s->threads = core_alloc(sizeof(pthread_t) *
	                      (size_t) s->max_threads)) == NULL) {
		return IDN_ENOMEM;
	}
	int rv = IDN_OK;
	pthread_mutex_lock(&s->tlock);
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&s->threads[i], NULL, server_thread, s) !=
		    0) {
			rv = IDN_ESYS; // the close joins those started
			break;
		}
		s->nthreads++;
		s->idle++;
	}
	pthread_mutex_unlock(&s->tlock);
	return rv;
}

const char *
net_server_addr(const net_server *s)
{
	return s->addr;
}

void
net_server_set_self(net_server *s, const char *id)
{
	pthread_mutex_lock(&s->tlock);
	snprintf(s->self, sizeof(s->self), "%s", id);
	pthread_mutex_unlock(&s->tlock);
}


typedef struct peer {
	struct peer *next;
	char addr[64];
	char id[96]; // the node answering there, once a reply named it (lock)
	nng_socket sock;
} peer;

struct net_client {
	pthread_mutex_t lock;
	peer *peers;
	uint8_t key[WIRE_KEY_BYTES];
	char self[96];
	size_t max_msg;
	_Atomic int64_t skew_ms;
	net_counters ctr;
};

int
net_client_open(const uint8_t key[WIRE_KEY_BYTES], const char *self_id,
    size_t max_msg_bytes, net_client **out)
{
	net_client *c = core_alloc(sizeof(*c));
	if (c == NULL) {
		return IDN_ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	memcpy(c->key, key, WIRE_KEY_BYTES);
	snprintf(c->self, sizeof(c->self), "%s", self_id ? self_id : "");
	c->max_msg = max_msg_bytes;
	*out = c;
	return IDN_OK;
}

void
net_client_set_self(net_client *c, const char *self_id)
{
	snprintf(c->self, sizeof(c->self), "%s", self_id);
}

void
net_client_skew(net_client *c, int64_t ms)
{
	atomic_store(&c->skew_ms, ms);
}

void
net_client_close(net_client *c)
{
	if (c == NULL) {
		return;
	}
	for (peer *p = c->peers, *n; p != NULL; p = n) {
		n = p->next;
		close_bounded(p->sock);
		free(p);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static int
peer_socket(net_client *c, const char *addr, peer **out)
{
	char url[128];
	int rv = net_addr_to_url(addr, url, sizeof(url));
	if (rv != IDN_OK) {
		return rv;
	}
	pthread_mutex_lock(&c->lock);
	for (peer *p = c->peers; p != NULL; p = p->next) {
		if (strcmp(p->addr, addr) == 0) {
			*out = p;
			pthread_mutex_unlock(&c->lock);
			return IDN_OK;
		}
	}
	peer *p = core_alloc(sizeof(*p));
	if (p == NULL) {
		pthread_mutex_unlock(&c->lock);
		return IDN_ENOMEM;
	}
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	if ((rv = nng_req0_open(&p->sock)) != 0) {
		free(p);
		pthread_mutex_unlock(&c->lock);
		return net_err_from_nng(rv);
	}
	// Requests are never re-sent by nng: a handler runs at most once per
	// call, and callers decide about retries.
	nng_socket_set_ms(p->sock, NNG_OPT_REQ_RESENDTIME, 3600 * 1000);
	nng_socket_set_ms(p->sock, NNG_OPT_RECONNMINT, 20);
	nng_socket_set_ms(p->sock, NNG_OPT_RECONNMAXT, 500);
	nng_socket_set_size(p->sock, NNG_OPT_RECVMAXSZ, c->max_msg);
	// Non-blocking dial: an absent peer makes calls time out, and nng
	// keeps redialling in the background.
	nng_dial(p->sock, url, NULL, NNG_FLAG_NONBLOCK);
	p->next = c->peers;
	c->peers = p;
	*out = p;
	pthread_mutex_unlock(&c->lock);
	return IDN_OK;
}

// One request and its reply. *kind gets the reply's type when the
// endpoint refused the request before any handler ran (TYPE_REDIRECT,
// TYPE_STALE), else "".
static int
call_once(net_client *c, peer *p, const char *type, const void *body,
    size_t body_len, uint64_t deadline, wire_doc **doc, wire_env *reply,
    const char **kind)
{
	nng_ctx ctx;
	nng_aio *aio = NULL;
	nng_msg *m = NULL;
	core_buf env = {0}, frame = {0};
	wire_env h = {.ts_ms = idn_wall_ms() + (uint64_t) atomic_load(
	    &c->skew_ms), .nonce = wire_nonce()};
	snprintf(h.type, sizeof(h.type), "%s", type);
	snprintf(h.from, sizeof(h.from), "%s", c->self);
	pthread_mutex_lock(&c->lock);
	snprintf(h.to, sizeof(h.to), "%s", p->id[0] ? p->id : p->addr);
	pthread_mutex_unlock(&c->lock);
	*kind = "";
	int rv;
	if ((rv = wire_env_write(&h, body, body_len, &env)) ||
	    (rv = wire_seal(c->key, env.data, env.len, &frame))) {
		goto out;
	}
	if ((rv = nng_ctx_open(&ctx, p->sock)) != 0) {
		rv = net_err_from_nng(rv);
		goto out;
	}
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0 ||
	    (rv = nng_msg_alloc(&m, frame.len)) != 0) {
		rv = net_err_from_nng(rv);
		goto close;
	}
	memcpy(nng_msg_body(m), frame.data, frame.len);
	count(&c->ctr, false, frame.len);
	uint64_t now = idn_clock_ms();
	nng_aio_set_timeout(aio, now >= deadline ? 1 :
	    (nng_duration) (deadline - now));
	nng_aio_set_msg(aio, m);
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		nng_msg_free(m);
		rv = net_err_from_nng(rv);
		goto close;
	}
	now = idn_clock_ms();
	nng_aio_set_timeout(aio, now >= deadline ? 1 :
	    (nng_duration) (deadline - now));
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		rv = net_err_from_nng(rv);
		goto close;
	}
	m = nng_aio_get_msg(aio);
	count(&c->ctr, true, nng_msg_len(m));
	const uint8_t *payload;
	size_t plen;
	rv = wire_open(c->key, nng_msg_body(m), nng_msg_len(m), &payload,
	    &plen);
	if (rv == IDN_OK) {
		rv = wire_env_decode(payload, plen, doc, reply);
	}
	nng_msg_free(m);
	if (rv != IDN_OK) {
		goto close;
	}
	if (reply->nonce != h.nonce) {
		// Not the answer to this request (a recorded old one); only an
		// endpoint that could not read the request answers nonce 0.
		rv = reply->nonce == 0 && reply->rc == IDN_EPROTO ? IDN_EPROTO :
		    IDN_EAUTH;
		wire_doc_free(*doc);
		*doc = NULL;
		goto close;
	}
	if (strcmp(reply->type, TYPE_REDIRECT) == 0 ||
	    strcmp(reply->type, TYPE_STALE) == 0) {
		*kind = strcmp(reply->type, TYPE_STALE) == 0 ? TYPE_STALE :
		    TYPE_REDIRECT;
	} else if (strcmp(reply->type, type) != 0) {
		rv = IDN_EAUTH;
		wire_doc_free(*doc);
		*doc = NULL;
		goto close;
	}
	if (reply->from[0] != '\0') {
		pthread_mutex_lock(&c->lock);
		snprintf(p->id, sizeof(p->id), "%s", reply->from);
		pthread_mutex_unlock(&c->lock);
	}
	rv = reply->rc >= 0 && reply->rc < IDN_ERR_COUNT ? (int) reply->rc :
	    IDN_EPROTO;
close:
	nng_aio_free(aio);
	nng_ctx_close(ctx);
out:
	core_buf_free(&env);
	core_buf_free(&frame);
	return rv;
}

int
net_call(net_client *c, const char *addr, const char *type, const void *body,
    size_t body_len, idn_duration timeout_ms, wire_doc **doc,
    wire_env *reply)
{
	peer *p = NULL;
	*doc = NULL;
	int rv = peer_socket(c, addr, &p);
	uint64_t deadline = idn_clock_ms() + (uint64_t) timeout_ms;
	// A refusal before any handler ran is asked again once: with the
	// id the endpoint named (it restarted), or a fresh stamp (the first
	// was taken before the endpoint started).
	for (int attempt = 0; rv == IDN_OK && attempt < 2; attempt++) {
		const char *kind;
		rv = call_once(c, p, type, body, body_len, deadline, doc, reply,
		    &kind);
		if (kind[0] == '\0' || attempt == 1) {
			break;
		}
		wire_doc_free(*doc);
		*doc = NULL;
		rv = IDN_OK;
	}
	return rv;
}

int
net_call_wr(net_client *c, const char *addr, const char *type, wire_wr *body,
    idn_duration timeout_ms, wire_doc **doc, wire_env *reply)
{
	const uint8_t *p = NULL;
	size_t n = 0;
	if (body != NULL) {
		int rv = wire_wr_bytes(body, &p, &n);
		if (rv != IDN_OK) {
			*doc = NULL;
			return rv;
		}
	}
	return net_call(c, addr, type, p, n, timeout_ms, doc, reply);
}

struct net_pub {
	nng_socket sock;
	char addr[64];
};

int
net_pub_open(const char *addr, net_pub **out)
{
	net_pub *p = core_alloc(sizeof(*p));
	if (p == NULL) {
		return IDN_ENOMEM;
	}
	int rv = nng_pub0_open(&p->sock);
	if (rv != 0) {
		free(p);
		return net_err_from_nng(rv);
	}
	if ((rv = listen_on(p->sock, addr, p->addr, sizeof(p->addr))) != 0) {
		nng_close(p->sock);
		free(p);
		return rv;
	}
	*out = p;
	return IDN_OK;
}

const char *
net_pub_addr(const net_pub *p)
{
	return p->addr;
}

int
net_pub_send(net_pub *p, const void *data, size_t len)
{
	return net_err_from_nng(nng_send(p->sock, (void *) data, len, 0));
}

void
net_pub_close(net_pub *p)
{
	if (p != NULL) {
		close_bounded(p->sock);
		free(p);
	}
}

static void
add_counters(net_counters *sum, const net_counters *c)
{
	sum->msgs_in += atomic_load(&c->msgs_in);
	sum->msgs_out += atomic_load(&c->msgs_out);
	sum->bytes_in += atomic_load(&c->bytes_in);
	sum->bytes_out += atomic_load(&c->bytes_out);
	sum->rejected += atomic_load(&c->rejected);
}

void
net_stats(const net_server *s, const net_client *c, net_counters *sum)
{
	memset(sum, 0, sizeof(*sum));
	if (s != NULL) {
		add_counters(sum, &s->ctr);
	}
	if (c != NULL) {
		add_counters(sum, &c->ctr);
	}
}

struct net_sub {
	nng_socket sock;
};

int
net_sub_open(const char *addr, net_sub **out)
{
	char url[128];
	int rv = net_addr_to_url(addr, url, sizeof(url));
	if (rv != IDN_OK) {
		return rv;
	}
	net_sub *s = core_alloc(sizeof(*s));
	if (s == NULL) {
		return IDN_ENOMEM;
	}
	if ((rv = nng_sub0_open(&s->sock)) != 0 ||
	    (rv = nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0 ||
	    (rv = nng_dial(s->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		nng_close(s->sock);
		free(s);
		return net_err_from_nng(rv);
	}
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, NET_DEFAULT_MAX_MSG);
	*out = s;
	return IDN_OK;
}

int
net_sub_recv(net_sub *s, idn_duration timeout_ms, core_buf *out)
{
	nng_msg *m;
	nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, timeout_ms);
	int rv = nng_recvmsg(s->sock, &m, 0);
	if (rv != 0) {
		return net_err_from_nng(rv);
	}
	rv = core_buf_append(out, nng_msg_body(m), nng_msg_len(m));
	nng_msg_free(m);
	return rv;
}

void
net_sub_close(net_sub *s)
{
	if (s != NULL) {
		close_bounded(s->sock);
		free(s);
	}
}
