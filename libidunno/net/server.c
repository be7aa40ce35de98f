// SPDX-License-Identifier: MIT
// server.c: a node's rep endpoint: handler threads that grow with the
// load, and admission of authenticated requests (destination, time
// window, replays) before any handler runs.
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/net_int.h"
#include "net/replay.h"

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
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&s->loglock);
	core_vlogf(s->lg, level, fmt, ap);
	pthread_mutex_unlock(&s->loglock);
	va_end(ap);
}

// A request is served (handler run, reply sent) only while the endpoint
// is open, and close waits for those being served before it closes the
// socket: nng 1.5 can crash in nng_ctx_send on a context that a
// concurrent nng_close freed, and a close that is abandoned (see
// NET_CLOSE_WAIT_MS) must leave no handler running on freed memory.
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
		m = reply_msg(s, &env, a == REDIRECT ? NET_TYPE_REDIRECT :
		    NET_TYPE_STALE, IDN_ESTALE, NULL);
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
		net_count(&s->ctr, true, nng_msg_len(m));
		m = serve(s, m, thread_busy(s));
		if (m != NULL) {
			net_count(&s->ctr, false, nng_msg_len(m));
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
	if (!net_close_bounded(s->sock)) {
		// Its threads may still wait on the socket: leave them s (and
		// nothing else: no request is served any more, and the
		// caller's logger is let go).
		server_log(s, IDN_LOG_WARN, "net: endpoint %s did not close "
		    "within %d ms (nng 1.5); abandoned", s->addr,
		    NET_CLOSE_WAIT_MS);
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
	if ((rv = net_listen_on(s->sock, addr, s->addr, sizeof(s->addr))) !=
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

void
net_server_counters(const net_server *s, net_counters *sum)
{
	if (s != NULL) {
		net_counters_add(sum, &s->ctr);
	}
}
