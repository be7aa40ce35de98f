// SPDX-License-Identifier: MIT
// swim.c: probing (direct, then indirect through k members), suspicion,
// refutation and piggybacked gossip over the node's RPC endpoint.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membership/swim.h"
#include "membership/member_msg.h"

#define GOSSIP_MAX 16
#define JOIN_MAX 4096
#define RECONNECT_PERIODS 10 // a failed member is pinged every 10 periods
#define CHECK_MAX 16

struct swim {
	rpc *rpc;
	const core_logger *lg;
	swim_opts o;
	pthread_mutex_t lock;    // guards t, order
	pthread_mutex_t deliver; // serializes event delivery
	pthread_cond_t cv;
	mtable t;
	char self_id[IDN_ID_MAX];
	char (*order)[IDN_ID_MAX]; // round-robin probe order
	size_t norder;
	size_t next;
	bool stop;
	bool running;
	pthread_t thread;
	pthread_t reconnect_thread; // started with thread
	bool reconnecting;
	// Members others declared failed that we still hold live: checked
	// with one direct ping on the reconnect thread (guarded by lock).
	idn_member check[CHECK_MAX];
	size_t ncheck;
	swim_event_fn fn;
	void *arg;
	// Its own threads: data-plane calls stuck on a dead peer must never
	// delay an indirect probe or a failure broadcast.
	net_pool *pool;
};

static void
deliver(swim *s)
{
	pthread_mutex_lock(&s->deliver);
	core_lock(&s->lock);
	mevent *ev = s->t.ev;
	size_t n = s->t.nev;
	s->t.ev = NULL;
	s->t.nev = s->t.evcap = 0;
	core_unlock(&s->lock);
	for (size_t i = 0; i < n; i++) {
		const idn_member *m = &ev[i].m;
		core_logf(s->lg,
		    ev[i].event == IDN_EV_FAIL ? IDN_LOG_WARN : IDN_LOG_INFO,
		    "membership: %s %s (%s, %s, incarnation %llu)",
		    idn_member_event_name(ev[i].event), m->id, m->addr,
		    m->role, (unsigned long long) m->incarnation);
		if (s->fn != NULL) {
			s->fn(s->arg, m, ev[i].event);
		}
	}
	free(ev);
	pthread_mutex_unlock(&s->deliver);
}

// Writes {g: gossip, ...extra} where extra fields come first. `about`
// (may be NULL) is a record the receiver must get in any case.
static void
put_gossip_locked(swim *s, wire_wr *w, const idn_member *about)
{
	idn_member g[GOSSIP_MAX];
	size_t n = mtable_gossip(&s->t, g, GOSSIP_MAX - (about != NULL));
	bool dup = false;
	for (size_t i = 0; about != NULL && i < n; i++) {
		dup = dup || strcmp(g[i].id, about->id) == 0;
	}
	if (about != NULL && !dup) {
		g[n++] = *about;
	}
	wire_str(w, "g");
	member_msg_put(w, g, n);
}

static int
make_msg_about(swim *s, wire_wr **out, uint32_t extra, const char *to,
    const char *addr, const idn_member *about)
{
	wire_wr *w;
	int rv = wire_wr_new(&w);
	if (rv != IDN_OK) {
		return rv;
	}
	wire_map(w, 1 + extra);
	if (to != NULL) {
		wire_kstr(w, "to", to);
	}
	if (addr != NULL) {
		wire_kstr(w, "addr", addr);
	}
	core_lock(&s->lock);
	put_gossip_locked(s, w, about);
	core_unlock(&s->lock);
	*out = w;
	return IDN_OK;
}

static int
make_msg(swim *s, wire_wr **out, uint32_t extra, const char *to,
    const char *addr)
{
	return make_msg_about(s, out, extra, to, addr, NULL);
}

static void broadcast(swim *s, bool wait);

// A verdict "failed" from someone else about a member we hold alive or
// suspect is not taken as is (mtable_merge suspects it): the reconnect
// thread pings it once, and only if it does not answer is it failed here.
static bool
queue_check_locked(swim *s, const idn_member *u)
{
	mentry *e = mtable_find(&s->t, u->id);
	if (u->state != IDN_MEMBER_FAILED || e == NULL ||
	    strcmp(u->id, s->self_id) == 0 ||
	    e->m.state > IDN_MEMBER_SUSPECT ||
	    e->m.incarnation > u->incarnation || s->ncheck == CHECK_MAX) {
		return false;
	}
	for (size_t i = 0; i < s->ncheck; i++) {
		if (strcmp(s->check[i].id, u->id) == 0) {
			return false;
		}
	}
	s->check[s->ncheck++] = e->m;
	return true;
}

static void
apply_gossip(swim *s, const wire_val *body)
{
	idn_member g[GOSSIP_MAX];
	size_t n = 0;
	const wire_val *arr = wire_get(body, "g");
	if (arr == NULL || member_msg_get(arr, g, GOSSIP_MAX, &n) != IDN_OK) {
		return;
	}
	uint64_t now = idn_clock_ms();
	core_lock(&s->lock);
	uint64_t inc = mtable_self(&s->t)->incarnation;
	bool declared = false;
	bool check = false;
	for (size_t i = 0; i < n; i++) {
		declared = declared || (strcmp(g[i].id, s->self_id) == 0 &&
		    g[i].state == IDN_MEMBER_FAILED);
		mtable_apply(&s->t, &g[i], now);
		check = queue_check_locked(s, &g[i]) || check;
	}
	if (check) {
		pthread_cond_broadcast(&s->cv);
	}
	uint64_t now_inc = mtable_self(&s->t)->incarnation;
	bool refuted = now_inc != inc;
	core_unlock(&s->lock);
	if (declared && refuted) {
		core_logf(s->lg, IDN_LOG_WARN, "membership: "
		    "peers declared this node failed; rejoining with "
		    "incarnation %llu", (unsigned long long) now_inc);
	}
	deliver(s);
	if (refuted) {
		// Everyone suspecting us must hear the refutation before their
		// suspicion times out, not a few gossip rounds later.
		broadcast(s, false);
	}
}

static void
reply_gossip(swim *s, wire_wr *reply)
{
	wire_map(reply, 1);
	core_lock(&s->lock);
	put_gossip_locked(s, reply, NULL);
	core_unlock(&s->lock);
}

static int
call(swim *s, const char *addr, const char *type, wire_wr *w,
    idn_duration timeout)
{
	wire_doc *doc = NULL;
	wire_env env;
	int rv = rpc_call(s->rpc, addr, type, w, timeout,
	    &doc, &env);
	if (doc != NULL) {
		apply_gossip(s, env.body);
		wire_doc_free(doc);
	}
	return rv;
}

static int
ping(swim *s, const char *addr, const char *id, idn_duration timeout)
{
	wire_wr *w;
	int rv = make_msg(s, &w, 1, id, NULL);
	if (rv == IDN_OK) {
		rv = call(s, addr, "swim.ping", w, timeout);
		wire_wr_free(w);
	}
	return rv;
}

static int
on_ping(void *arg, const wire_env *req, wire_wr *reply)
{
	swim *s = arg;
	char to[IDN_ID_MAX];
	apply_gossip(s, req->body);
	reply_gossip(s, reply);
	if (wire_get_str(req->body, "to", to, sizeof(to)) != IDN_OK) {
		return IDN_EPROTO;
	}
	// A ping for an earlier process on our address is not an ack.
	return strcmp(to, s->self_id) == 0 ? IDN_OK : IDN_ESTALE;
}

static int
on_pingreq(void *arg, const wire_env *req, wire_wr *reply)
{
	swim *s = arg;
	char to[IDN_ID_MAX], addr[IDN_ADDR_MAX];
	apply_gossip(s, req->body);
	if (wire_get_str(req->body, "to", to, sizeof(to)) ||
	    wire_get_str(req->body, "addr", addr, sizeof(addr))) {
		return IDN_EPROTO;
	}
	int rv = ping(s, addr, to, s->o.ping_timeout_ms);
	reply_gossip(s, reply);
	return rv;
}

static int
on_gossip(void *arg, const wire_env *req, wire_wr *reply)
{
	swim *s = arg;
	apply_gossip(s, req->body);
	reply_gossip(s, reply);
	return IDN_OK;
}

static int
on_join(void *arg, const wire_env *req, wire_wr *reply)
{
	swim *s = arg;
	apply_gossip(s, req->body);
	idn_member *m;
	size_t n;
	int rv = swim_members(s, true, &m, &n);
	if (rv != IDN_OK) {
		return rv;
	}
	wire_map(reply, 1);
	wire_str(reply, "g");
	member_msg_put(reply, m, n);
	free(m);
	return IDN_OK;
}

int
swim_members(swim *s, bool live_only, idn_member **out, size_t *count)
{
	core_lock(&s->lock);
	idn_member *m = core_alloc(sizeof(*m) * (s->t.n + 1));
	size_t k = 0;
	for (size_t i = 0; m != NULL && i < s->t.n; i++) {
		if (!live_only || s->t.v[i].m.state <= IDN_MEMBER_SUSPECT) {
			m[k++] = s->t.v[i].m;
		}
	}
	core_unlock(&s->lock);
	if (m == NULL) {
		return IDN_ENOMEM;
	}
	*out = m;
	*count = k;
	return IDN_OK;
}

// Tells every live member at once: used for fresh suspicions, failures
// and leaving, so that they do not wait for the next piggyback.
static void
broadcast(swim *s, bool wait)
{
	idn_member *m;
	size_t n;
	wire_wr *w;
	if (swim_members(s, true, &m, &n) != IDN_OK) {
		return;
	}
	if (make_msg(s, &w, 0, NULL, NULL) == IDN_OK) {
		const char **addrs = core_alloc(sizeof(char *) * (n + 1));
		size_t k = 0;
		for (size_t i = 0; addrs != NULL && i < n; i++) {
			if (strcmp(m[i].id, s->self_id) != 0) {
				if (!wait) {
					net_pool_post_wr(s->pool, m[i].addr,
					    "swim.gossip", w,
					    s->o.ping_timeout_ms);
				}
				addrs[k++] = m[i].addr;
			}
		}
		int *rvs = core_alloc(sizeof(int) * (k + 1));
		if (wait && rvs != NULL) {
			net_pool_call_all_wr(s->pool, addrs, k,
			    "swim.gossip", w, s->o.ping_timeout_ms, rvs, NULL,
			    NULL);
		}
		free(rvs);
		free(addrs);
		wire_wr_free(w);
	}
	free(m);
}

static bool
next_target(swim *s, idn_member *target)
{
	core_lock(&s->lock);
	for (int pass = 0; pass < 2; pass++) {
		while (s->next < s->norder) {
			mentry *e = mtable_find(&s->t, s->order[s->next++]);
			if (e != NULL && e->m.state <= IDN_MEMBER_SUSPECT) {
				*target = e->m;
				core_unlock(&s->lock);
				return true;
			}
		}
		// New round: every other live member once, shuffled.
		free(s->order);
		s->order = core_alloc(sizeof(*s->order) * (s->t.n + 1));
		s->norder = s->next = 0;
		for (size_t i = 0; s->order && i < s->t.n; i++) {
			const idn_member *m = &s->t.v[i].m;
			if (i != s->t.self && m->state <= IDN_MEMBER_SUSPECT) {
				size_t j = core_random() % (s->norder + 1);
				memcpy(s->order[s->norder], s->order[j],
				    IDN_ID_MAX);
				memcpy(s->order[j], m->id, IDN_ID_MAX);
				s->norder++;
			}
		}
	}
	core_unlock(&s->lock);
	return false;
}

static bool
probe_indirect(swim *s, const idn_member *target)
{
	idn_member *m;
	size_t n;
	if (s->o.indirect <= 0 || swim_members(s, true, &m, &n) != IDN_OK) {
		return false;
	}
	const char *addrs[16];
	size_t k = 0;
	// Pick k random helpers other than us and the target.
	for (size_t tries = 0; tries < 4 * n && k < (size_t) s->o.indirect &&
	     k < CORE_ARRAY_LEN(addrs); tries++) {
		idn_member *h = &m[core_random() % n];
		bool dup = strcmp(h->id, s->self_id) == 0 ||
		    strcmp(h->id, target->id) == 0 ||
		    h->state != IDN_MEMBER_ALIVE;
		for (size_t j = 0; j < k && !dup; j++) {
			dup = addrs[j] == h->addr;
		}
		if (!dup) {
			addrs[k++] = h->addr;
		}
	}
	bool acked = false;
	wire_wr *w;
	if (k > 0 && make_msg(s, &w, 2, target->id, target->addr) == IDN_OK) {
		int rvs[16];
		wire_doc *docs[16];
		wire_env envs[16];
		net_pool_call_all_wr(s->pool, addrs, k, "swim.pingreq", w,
		    2 * s->o.ping_timeout_ms, rvs, docs, envs);
		for (size_t i = 0; i < k; i++) {
			acked = acked || rvs[i] == IDN_OK;
			if (docs[i] != NULL) {
				apply_gossip(s, envs[i].body);
				wire_doc_free(docs[i]);
			}
		}
		wire_wr_free(w);
	}
	free(m);
	return acked;
}

// A failed member may only have been cut off: one of them is pinged now
// and then, telling it that it was declared failed. If it answers, it has
// refuted (its reply carries it alive at a higher incarnation) and it is
// back; after a partition heals, both sides find each other this way.
static void
reconnect(swim *s)
{
	idn_member target;
	wire_wr *w;
	core_lock(&s->lock);
	bool any = mtable_reconnect_target(&s->t, &target);
	core_unlock(&s->lock);
	if (any && make_msg_about(s, &w, 1, target.id, NULL, &target) ==
	               IDN_OK) {
		call(s, target.addr, "swim.ping", w, s->o.ping_timeout_ms);
		wire_wr_free(w);
	}
}

// Fails the suspects whose time is up (and tells everyone).
static void
tick(swim *s)
{
	uint64_t now = idn_clock_ms();
	core_lock(&s->lock);
	size_t before = s->t.nev;
	mtable_tick(&s->t, now);
	bool failed = s->t.nev > before;
	core_unlock(&s->lock);
	deliver(s);
	if (failed) {
		broadcast(s, false);
	}
}

static void
probe_once(swim *s)
{
	idn_member target;
	tick(s);
	if (!next_target(s, &target)) {
		return;
	}
	if (ping(s, target.addr, target.id, s->o.ping_timeout_ms) == IDN_OK ||
	    probe_indirect(s, &target)) {
		return;
	}
	core_lock(&s->lock);
	mtable_suspect(&s->t, target.id, idn_clock_ms());
	core_unlock(&s->lock);
	deliver(s);
	broadcast(s, false);
}

// Checks the members queued by queue_check_locked: one direct ping each.
static void
check_queued(swim *s)
{
	core_lock(&s->lock);
	idn_member m[CHECK_MAX];
	size_t n = s->ncheck;
	memcpy(m, s->check, n * sizeof(*m));
	s->ncheck = 0;
	core_unlock(&s->lock);
	bool failed = false;
	for (size_t i = 0; i < n && !s->stop; i++) {
		if (ping(s, m[i].addr, m[i].id, s->o.ping_timeout_ms) ==
		    IDN_OK) {
			continue; // reachable: it hears of the rumour and refutes
		}
		core_lock(&s->lock);
		failed = mtable_fail(&s->t, &m[i], idn_clock_ms()) || failed;
		core_unlock(&s->lock);
	}
	if (failed) {
		deliver(s);
		broadcast(s, false);
	}
}

// Waits on s->cv until end (idn_clock_ms) or stop; s->lock held.
static void
wait_until_locked(swim *s, uint64_t end)
{
	while (!s->stop &&
	    core_cond_wait_until(&s->cv, &s->lock, end) == IDN_OK) {
	}
}

static void *
probe_thread(void *arg)
{
	swim *s = arg;
	core_lock(&s->lock);
	while (!s->stop) {
		core_unlock(&s->lock);
		uint64_t start = idn_clock_ms();
		probe_once(s);
		core_lock(&s->lock);
		wait_until_locked(s, start + (uint64_t) s->o.period_ms);
	}
	core_unlock(&s->lock);
	return NULL;
}

// Its own thread: a ping to a member cut off waits for its timeout, and
// probing must not wait with it. It also checks second-hand failures.
static void *
reconnect_thread(void *arg)
{
	swim *s = arg;
	uint64_t next = idn_clock_ms();
	core_lock(&s->lock);
	while (!s->stop) {
		// Also wakes when a suspicion expires, so that it fails then
		// and not at the next protocol period.
		while (!s->stop && s->ncheck == 0 &&
		    core_cond_wait_until(&s->cv, &s->lock, CORE_MIN(next,
		        mtable_next_deadline(&s->t))) == IDN_OK) {
		}
		if (s->stop) {
			break;
		}
		core_unlock(&s->lock);
		tick(s);
		check_queued(s);
		if (idn_clock_ms() >= next) {
			reconnect(s);
			next = idn_clock_ms() +
			    RECONNECT_PERIODS * (uint64_t) s->o.period_ms;
		}
		core_lock(&s->lock);
	}
	core_unlock(&s->lock);
	return NULL;
}

int
swim_open(rpc *r, const core_logger *lg, const idn_member *self,
    const swim_opts *o, swim_event_fn fn, void *arg, swim **out)
{
	swim *s = core_alloc(sizeof(*s));
	if (s == NULL) {
		return IDN_ENOMEM;
	}
	s->rpc = r;
	s->lg = lg;
	s->o = *o;
	s->fn = fn;
	s->arg = arg;
	snprintf(s->self_id, sizeof(s->self_id), "%s", self->id);
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->deliver, NULL);
	core_cond_init(&s->cv);
	int rv = mtable_init(&s->t, self, (uint64_t) o->suspect_ms);
	if (rv == IDN_OK) {
		rv = rpc_pool_open(r, 4, &s->pool);
	}
	if (rv == IDN_OK) {
		rv = rpc_route(r, "swim.ping", on_ping, s);
	}
	if (rv == IDN_OK) {
		rv = rpc_route(r, "swim.pingreq", on_pingreq, s);
	}
	if (rv == IDN_OK) {
		rv = rpc_route(r, "swim.gossip", on_gossip, s);
	}
	if (rv == IDN_OK) {
		rv = rpc_route(r, "swim.join", on_join, s);
	}
	if (rv != IDN_OK) {
		swim_close(s);
		return rv;
	}
	*out = s;
	return IDN_OK;
}

int
swim_join(swim *s, const char *const *intro, size_t n)
{
	uint64_t deadline = idn_clock_ms() + (uint64_t) s->o.join_timeout_ms;
	int rv = n == 0 ? IDN_OK : IDN_EUNAVAIL;
	while (rv != IDN_OK && idn_clock_ms() < deadline) {
		for (size_t i = 0; i < n && rv != IDN_OK; i++) {
			wire_wr *w;
			wire_doc *doc = NULL;
			wire_env env;
			if ((rv = make_msg(s, &w, 0, NULL, NULL)) != IDN_OK) {
				return rv;
			}
			rv = rpc_call(s->rpc, intro[i],
			    "swim.join", w, 1000, &doc, &env);
			wire_wr_free(w);
			if (rv == IDN_OK) {
				idn_member *m;
				size_t k;
				rv = member_msg_get_alloc(wire_get(env.body, "g"),
				    JOIN_MAX, &m, &k);
				uint64_t now = idn_clock_ms();
				core_lock(&s->lock);
				for (size_t j = 0; rv == IDN_OK && j < k; j++) {
					mtable_apply(&s->t, &m[j], now);
				}
				core_unlock(&s->lock);
				if (rv == IDN_OK) {
					free(m);
				}
			} else if (rv == IDN_EINVAL) {
				return rv; // a malformed address stays so
			}
			wire_doc_free(doc);
		}
		if (rv != IDN_OK) {
			core_sleep_ms(200);
		}
	}
	if (rv != IDN_OK) {
		return rv == IDN_EPROTO ? rv : IDN_EUNAVAIL;
	}
	deliver(s);
	s->running = pthread_create(&s->thread, NULL, probe_thread, s) == 0;
	s->reconnecting = s->running && pthread_create(&s->reconnect_thread,
	    NULL, reconnect_thread, s) == 0;
	return s->reconnecting ? IDN_OK : IDN_ESYS;
}

int
swim_leave(swim *s)
{
	core_lock(&s->lock);
	mtable_leave_self(&s->t, idn_clock_ms());
	core_unlock(&s->lock);
	broadcast(s, true);
	return IDN_OK;
}

void
swim_stop(swim *s)
{
	if (s == NULL) {
		return;
	}
	core_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->cv);
	core_unlock(&s->lock);
	if (s->running) {
		pthread_join(s->thread, NULL);
		s->running = false;
	}
	if (s->reconnecting) {
		pthread_join(s->reconnect_thread, NULL);
		s->reconnecting = false;
	}
	net_pool_close(s->pool);
	s->pool = NULL;
}

void
swim_close(swim *s)
{
	if (s == NULL) {
		return;
	}
	swim_stop(s);
	mtable_fini(&s->t);
	free(s->order);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->deliver);
	pthread_cond_destroy(&s->cv);
	free(s);
}
