// SPDX-License-Identifier: MIT
// attach.c: the coordinator's coupling to its node, and its two roles. A
// node started as coordinator or standby runs one role thread: active (the
// coordinator, streaming its ledger changes to the standby) or standby
// (pulling them into its own ledger copy, answering the read-only
// commands from it, and promoting itself with a new epoch when the active
// one stops answering).
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coord.h"
#include "coord/standby.h"
#include "coord/where.h"

#define PULL_TIMEOUT_MS 150    // a pull waits REPL_WAIT_MS at most
#define SILENCE_MS 300         // no pull answered this long: ping, promote
#define VIEW_MS 250            // the standby's read-only view is this fresh
#define CHECK_MS 250           // the active looks for a newer epoch
// The majority rule: the active acts only while it heard (lease calls,
// the standby's pulls) from a majority of the cluster within FENCE_MS, so
// that one cut off stops before the standby, silent SILENCE_MS plus a
// failed ping, promotes on the other side. A new active has GRACE_MS to
// be found by the workers.
#define FENCE_MS 250
#define QUORUM_STEP_MS 50
#define GRACE_MS 3000
// A coordinator that becomes active asks the workers for their state this
// long (worker.state), leasing nothing meanwhile (coord_hold).
#define GATHER_MS 200

enum { ROLE_NONE, ROLE_ACTIVE, ROLE_STANDBY };

struct coord_role {
	coord_node n;
	char data_dir[1024];
	char id[IDN_ID_MAX];
	char addr[IDN_ADDR_MAX];
	uint8_t key[IDN_KEY_BYTES];
	idn_client *sdfs;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	core_logger lg;        // the node's
	core_logq logq;        // lines logged under the lock (rlog)
	coord *c;              // active: the coordinator; standby: its view
	int users;             // requests using c
	int state;
	coord_repl *repl;      // active: the change stream
	coord_replica *replica; // standby: the ledger copy
	bool stop, have_thread;
	pthread_t thread;
	char leader[IDN_ID_MAX];
	char leader_addr[IDN_ADDR_MAX];
	uint64_t epoch;        // the highest epoch seen
	bool followed;         // the replica is a live copy of the leader's
	bool leader_failed;    // membership declared the leader failed
	uint64_t newer;        // a worker knows this newer epoch
	bool stepped_down;     // a newer coordinator was seen: never activate
	                       // without promoting from a followed copy
	_Atomic uint64_t repl_ms; // active: the standby's last pull (clock ms)
	uint64_t active_ms;    // active since (clock ms)
	size_t cluster;        // active: the cluster's size for the majority
	bool cut_off;          // active: the majority rule does not hold
	bool no_majority;      // standby: not promoting, logged
};

// rlog queues a line (the lock held), logged once the lock is let go;
// without the lock: core_logf(&r->lg, ...).
#define rlog(r, ...) core_logq_add(&(r)->logq, __VA_ARGS__)

static void
wait_ms(coord_role *r, int ms)
{
	core_cond_wait_log(&r->cond, &r->lock, &r->logq, idn_clock_ms() + ms);
}

// Takes the current coordinator (or view) for one request.
static coord *
use(coord_role *r, int *state)
{
	core_lock(&r->lock);
	coord *c = r->c;
	*state = r->state;
	r->users += c != NULL;
	core_unlock_log(&r->lock, &r->logq);
	return c;
}

static void
unuse(coord_role *r, coord *c)
{
	if (c != NULL) {
		core_lock(&r->lock);
		if (--r->users == 0) {
			pthread_cond_broadcast(&r->cond);
		}
		core_unlock_log(&r->lock, &r->logq);
	}
}

// Replaces r->c (lock held); returns the old one once no request uses it.
static coord *
swap(coord_role *r, coord *c)
{
	coord *old = r->c;
	r->c = NULL;
	while (r->users > 0) {
		pthread_cond_wait(&r->cond, &r->lock);
	}
	r->c = c;
	return old;
}

static int
on_route(void *arg, const wire_env *req, wire_wr *reply)
{
	coord_role *r = arg;
	int state;
	coord *c = use(r, &state);
	int rv;
	if (c == NULL) {
		wire_map(reply, 2);
		wire_ku64(reply, "epoch", r->epoch);
		wire_kstr(reply, "err", "coordinator changing, retry");
		rv = IDN_EUNAVAIL;
	} else {
		rv = coord_handle(c, req->type, req->body, reply);
	}
	unuse(r, c);
	return rv;
}

static int
on_repl(void *arg, const wire_env *req, wire_wr *reply)
{
	coord_role *r = arg;
	int state;
	coord *c = use(r, &state);
	int rv = IDN_EUNAVAIL;
	if (c != NULL && state == ROLE_ACTIVE) {
		rv = coord_repl_serve(r->repl, coord_ledger(c), coord_epoch(c),
		    req->body, reply);
		atomic_store(&r->repl_ms, idn_clock_ms());
	} else {
		wire_map(reply, 1);
		wire_kstr(reply, "err", "not the active coordinator");
	}
	unuse(r, c);
	return rv;
}

static int
on_role(void *arg, const wire_env *req, wire_wr *reply)
{
	(void) req;
	coord_role *r = arg;
	core_lock(&r->lock);
	wire_map(reply, 5);
	wire_kstr(reply, "state", r->state == ROLE_ACTIVE ? "active" :
	    r->state == ROLE_STANDBY ? "standby" : "starting");
	wire_ku64(reply, "epoch", r->epoch);
	wire_kstr(reply, "id", r->id);
	wire_kstr(reply, "addr", r->addr);
	wire_kbool(reply, "followed", r->state == ROLE_STANDBY && r->followed);
	core_unlock_log(&r->lock, &r->logq);
	return IDN_OK;
}

// The role's own requests; the coordinator's (coord_routes) go to
// on_route.
static const rpc_route_def role_routes[] = {
    {"sched.repl", on_repl}, {"sched.role", on_role},
};

static void
on_member(void *arg, const idn_member *m, int event)
{
	coord_role *r = arg;
	int state;
	coord *c = use(r, &state);
	if (c != NULL && state == ROLE_ACTIVE && (event == IDN_EV_JOIN ||
	        event == IDN_EV_FAIL || event == IDN_EV_LEAVE)) {
		coord_member(c, m->id, m->role, event == IDN_EV_JOIN);
	}
	unuse(r, c);
	if (event == IDN_EV_FAIL || event == IDN_EV_LEAVE) {
		core_lock(&r->lock);
		if (r->state == ROLE_STANDBY && strcmp(m->id, r->leader) == 0) {
			r->leader_failed = true;
			pthread_cond_broadcast(&r->cond);
		}
		core_unlock_log(&r->lock, &r->logq);
	}
}

static void
on_newer(void *arg, uint64_t epoch)
{
	coord_role *r = arg;
	core_lock(&r->lock);
	if (epoch > r->newer) {
		r->newer = epoch;
		pthread_cond_broadcast(&r->cond);
	}
	core_unlock_log(&r->lock, &r->logq);
}

// The coordinator's sync hook: the standby has the change, or none ever
// followed, or no coordinator with a newer epoch answers. A standby that
// stopped acknowledging may have promoted itself while this one was
// paused or cut off: then this one steps down (the role thread, woken
// by on_newer) and the change is not acknowledged.
static int
on_sync(void *arg)
{
	coord_role *r = arg;
	core_lock(&r->lock);
	coord_repl *repl = r->repl;
	uint64_t epoch = r->epoch;
	core_unlock_log(&r->lock, &r->logq);
	// r->repl is freed only after the coordinator closed, which waits
	// for this request.
	if (repl == NULL || coord_repl_sync(repl)) {
		return IDN_OK;
	}
	coord_found f;
	if (coord_find_active(r->n.rpc, r->n.mship, r->id, &f) != IDN_OK ||
	    f.epoch <= epoch) {
		return IDN_OK; // the standby is gone: no standby mode
	}
	core_logf(&r->lg, IDN_LOG_WARN, "coord: the standby did not "
	    "acknowledge; %s is active with epoch %llu", f.id,
	    (unsigned long long) f.epoch);
	on_newer(r, f.epoch);
	return IDN_EUNAVAIL;
}

// ---- becoming active, stepping down

// Asks every live worker for the leases it holds and the completions it
// reported lately (worker.state, GATHER_MS) and counts them before any
// batch is leased in the new epoch: the ledger this coordinator opened
// may lack the last changes (a standby's copy lags its active under load),
// and a batch leased again before its worker's report arrived ran twice.
// Every worker alive or suspected is asked. Called with the lock held;
// drops it meanwhile.
static void
gather(coord_role *r)
{
	core_unlock_log(&r->lock, &r->logq);
	uint64_t t0 = idn_clock_ms();
	int state;
	coord *c = use(r, &state);
	coord_fan a = {0};
	size_t got = 0;
	if (c != NULL && state == ROLE_ACTIVE &&
	    coord_fan_out(r->n.rpc, r->n.mship, coord_is_worker, NULL,
	        "worker.state", GATHER_MS, &a) == IDN_OK) {
		for (size_t i = 0; i < a.n; i++) {
			record_lease_req q;
			if (a.rvs[i] == IDN_OK &&
			    record_lease_req_get(a.envs[i].body, &q) == IDN_OK) {
				coord_absorb(c, &q);
				record_lease_req_clear(&q);
				got++;
			}
		}
	}
	if (c != NULL) {
		coord_hold(c, 0);
		core_logf(&r->lg, IDN_LOG_INFO, "coord: %zu of %zu workers "
		    "reported their leases and completions in %llu ms", got,
		    a.n, (unsigned long long) (idn_clock_ms() - t0));
	}
	coord_fan_free(&a);
	unuse(r, c);
	core_lock(&r->lock);
}

static void
feed_members(coord_role *r, coord *c)
{
	idn_member *m = NULL;
	size_t count = 0;
	if (membership_members(r->n.mship, true, &m, &count) == IDN_OK) {
		// A suspect is alive until declared failed (its event then
		// comes to this coordinator).
		for (size_t i = 0; i < count; i++) {
			if (m[i].state == IDN_MEMBER_ALIVE ||
			    m[i].state == IDN_MEMBER_SUSPECT) {
				coord_member(c, m[i].id, m[i].role, true);
			}
		}
		idn_free(m);
	}
}

// Opens the coordinator on led (NULL: the local ledger or the SDFS
// checkpoint) with at least epoch and gathers the workers' state; lock
// held (dropped during the gather).
static int
activate(coord_role *r, ledger *led, uint64_t epoch)
{
	coord_repl *repl = NULL;
	coord *c = NULL;
	int rv = coord_repl_new(&repl);
	if (rv == IDN_OK) {
		coord_host h = {r->sdfs, r->data_dir, r->id, r->n.log,
		    r->n.log_arg, led, epoch, false, coord_repl_push, repl,
		    on_sync, r, on_newer, r};
		// Opened and closed without the role's lock: they log.
		core_unlock_log(&r->lock, &r->logq);
		rv = coord_open(&h, &c);
		core_lock(&r->lock);
	}
	if (rv != IDN_OK) {
		ledger_close(led);
		coord_repl_free(repl);
		return rv;
	}
	// No batch is leased before the workers said what they hold (gather,
	// below); the hold ends by itself should a step-down cut it short.
	coord_hold(c, idn_clock_ms() + 4 * GATHER_MS);
	coord *view = swap(r, c);
	core_unlock_log(&r->lock, &r->logq);
	coord_close(view);
	core_lock(&r->lock);
	r->repl = repl;
	r->state = ROLE_ACTIVE;
	r->epoch = coord_epoch(c);
	r->newer = 0;
	r->active_ms = idn_clock_ms();
	r->cluster = 0;
	r->cut_off = false;
	coord_replica_close(r->replica);
	r->replica = NULL;
	feed_members(r, c);
	gather(r);
	coord_forget_dead(c);
	return IDN_OK;
}

static int
follow_start(coord_role *r)
{
	char *path = core_asprintf("%s/coord/ledger.db", r->data_dir);
	char *dir = core_asprintf("%s/coord", r->data_dir);
	int rv = path && dir ? core_mkdir_p(dir) : IDN_ENOMEM;
	if (rv == IDN_OK) {
		rv = coord_replica_open(path, &r->replica);
	}
	free(path);
	free(dir);
	r->state = ROLE_STANDBY;
	r->followed = false;
	r->leader[0] = '\0';
	return rv;
}

// The active coordinator learnt of a newer epoch: it stops acting and
// follows the newer one (lock held).
static void
step_down(coord_role *r, uint64_t epoch)
{
	coord *c = swap(r, NULL);
	rlog(r, IDN_LOG_WARN, "coord: epoch %llu is newer than mine (%llu): "
	    "stepping down to standby", (unsigned long long) epoch,
	    (unsigned long long) coord_epoch(c));
	r->state = ROLE_NONE;
	r->stepped_down = true;
	core_unlock_log(&r->lock, &r->logq);
	coord_close(c);
	core_lock(&r->lock);
	coord_repl_free(r->repl);
	r->repl = NULL;
	r->epoch = epoch > r->epoch ? epoch : r->epoch;
	follow_start(r);
}

// ---- the role thread

static void
active_step(coord_role *r, uint64_t *last_check)
{
	char fol[IDN_ID_MAX];
	coord_repl_follower(r->repl, fol, sizeof(fol));
	coord_set_standby(r->c, fol);
	if (r->newer > r->epoch) {
		step_down(r, r->newer);
		return;
	}
	uint64_t now = idn_clock_ms();
	// The cluster's size follows membership while the rule holds; cut
	// off, it does not shrink as the others are declared failed. The
	// role's lock is not held meanwhile: the standby's pulls need it,
	// and the coordinator's lock may be busy. Only this thread swaps
	// r->c.
	coord *c = r->c;
	bool grace = now < r->active_ms + GRACE_MS;
	core_unlock_log(&r->lock, &r->logq);
	size_t size = coord_cluster_size(r->n.mship);
	core_lock(&r->lock);
	if (!r->cut_off || size > r->cluster) {
		r->cluster = size;
	}
	size_t need = grace ? 0 : r->cluster / 2 + 1, heard = 0;
	uint64_t since = 0;
	core_unlock_log(&r->lock, &r->logq);
	coord_set_quorum(c, need, FENCE_MS, atomic_load(&r->repl_ms));
	bool ok = coord_quorum(c, &heard, &since);
	coord_epochs said = {0};
	if (ok && r->cut_off) {
		// In touch with a majority again. While cut off, the standby may
		// have promoted itself: it acts again (it stays fenced) only once
		// the standby says it still is one, or a majority says it knows
		// no newer epoch.
		coord_newest_epoch(r->n.rpc, r->n.mship, r->id, &said);
		core_lock(&r->lock);
		if (said.newest > r->epoch) {
			step_down(r, said.newest);
			return;
		}
		core_unlock_log(&r->lock, &r->logq);
		ok = said.standbys > 0 || said.answered + 1 >= need;
	}
	core_lock(&r->lock);
	if (ok == r->cut_off) {
		r->cut_off = !ok;
		coord_fence(c, !ok);
		uint64_t ago = since != 0 && since <= now ? now - since : 0;
		if (ok) {
			rlog(r, IDN_LOG_INFO, "coord: epoch %llu: heard from "
			    "%zu of %zu members; %s: a majority again, acting",
			    (unsigned long long) r->epoch, heard, r->cluster,
			    said.standbys ? "the standby still is one" :
			    "they know no newer epoch");
		} else {
			rlog(r, IDN_LOG_WARN, "coord: epoch %llu: heard from "
			    "%zu of %zu members in %d ms: no majority, not "
			    "acting (since %llu ms ago)", (unsigned long long)
			    r->epoch, heard, r->cluster, FENCE_MS,
			    (unsigned long long) ago);
		}
	}
	if (now >= *last_check + CHECK_MS) {
		*last_check = now;
		coord_found f;
		core_unlock_log(&r->lock, &r->logq);
		int rv = coord_find_active(r->n.rpc, r->n.mship, r->id, &f);
		core_lock(&r->lock);
		if (rv == IDN_OK && f.epoch > r->epoch && r->state == ROLE_ACTIVE) {
			step_down(r, f.epoch);
			return;
		}
	}
	wait_ms(r, QUORUM_STEP_MS);
}

// Rebuilds the standby's read-only view from its replica (lock held).
static void
refresh_view(coord_role *r)
{
	ledger *l = coord_replica_ledger(r->replica);
	coord *v = NULL;
	coord_host h = {r->sdfs, r->data_dir, r->leader, r->n.log, r->n.log_arg,
	    l, 0, true, NULL, NULL, NULL, NULL, NULL, NULL};
	if (l == NULL) {
		return;
	}
	// Opened and closed without the lock: they log. Only this thread
	// changes the replica and r->c.
	core_unlock_log(&r->lock, &r->logq);
	int rv = coord_open(&h, &v);
	if (rv == IDN_OK) {
		coord_set_standby(v, r->id);
	}
	core_lock(&r->lock);
	coord *old = rv == IDN_OK ? swap(r, v) : NULL;
	core_unlock_log(&r->lock, &r->logq);
	coord_close(old);
	core_lock(&r->lock);
}

static void
promote(coord_role *r, uint64_t silent_ms)
{
	uint64_t t0 = idn_clock_ms();
	uint64_t epoch = r->epoch + 1;
	rlog(r, IDN_LOG_WARN, "coord: standby: coordinator %s failed "
	    "(detected: %llu ms without an answer%s); promoting with epoch %llu",
	    r->leader, (unsigned long long) silent_ms, r->leader_failed ?
	    ", membership declared it failed" : ", ping failed",
	    (unsigned long long) epoch);
	ledger *l = coord_replica_take(r->replica);
	int rv = activate(r, l, epoch);
	if (rv != IDN_OK) {
		rlog(r, IDN_LOG_ERROR, "coord: promotion failed: %s",
		    idn_strerror(rv));
		follow_start(r);
		return;
	}
	rlog(r, IDN_LOG_INFO, "coord: promoted: active in epoch %llu, ledger "
	    "reconciled in %llu ms (open leases renewed for their holders, "
	    "the workers' leases and finished batches taken)",
	    (unsigned long long) r->epoch, (unsigned long long)
	    (idn_clock_ms() - t0));
}

static void
standby_step(coord_role *r, uint64_t *last_ok, uint64_t *last_view)
{
	if (r->leader[0] == '\0') {
		coord_found f;
		core_unlock_log(&r->lock, &r->logq);
		int rv = coord_find_active(r->n.rpc, r->n.mship, r->id, &f);
		core_lock(&r->lock);
		if (rv == IDN_OK) {
			snprintf(r->leader, sizeof(r->leader), "%s", f.id);
			snprintf(r->leader_addr, sizeof(r->leader_addr), "%s",
			    f.addr);
			r->epoch = f.epoch > r->epoch ? f.epoch : r->epoch;
			r->leader_failed = false;
			*last_ok = idn_clock_ms();
			rlog(r, IDN_LOG_INFO, "coord: standby of %s (epoch %llu)",
			    f.id, (unsigned long long) f.epoch);
		} else if (!r->n.standby && !r->stepped_down && !f.followed) {
			// No coordinator, no standby with a live copy: the
			// first start (or everything restarted).
			rv = activate(r, NULL, r->epoch);
			rlog(r, rv == IDN_OK ? IDN_LOG_INFO : IDN_LOG_ERROR,
			    "coord: active in epoch %llu%s%s", (unsigned long long)
			    r->epoch, rv ? ": " : "", rv ? idn_strerror(rv) : "");
			if (rv != IDN_OK) {
				wait_ms(r, 500);
			}
		} else {
			wait_ms(r, 100);
		}
		return;
	}
	char addr[IDN_ADDR_MAX];
	snprintf(addr, sizeof(addr), "%s", r->leader_addr);
	bool changed = false;
	uint64_t epoch = 0;
	core_unlock_log(&r->lock, &r->logq);
	int rv = coord_replica_pull(r->replica, r->n.rpc, addr, r->id,
	    PULL_TIMEOUT_MS, &changed, &epoch);
	core_lock(&r->lock);
	uint64_t now = idn_clock_ms();
	if (rv == IDN_OK) {
		*last_ok = now;
		r->followed = true;
		r->epoch = epoch > r->epoch ? epoch : r->epoch;
		if ((changed || r->c == NULL) && now >= *last_view + VIEW_MS) {
			*last_view = now;
			refresh_view(r);
		}
		return;
	}
	if (!r->leader_failed && now < *last_ok + SILENCE_MS) {
		if (rv != IDN_ETIMEDOUT) {
			wait_ms(r, 20);
		}
		return;
	}
	// Silent for SILENCE_MS (or declared failed): is it still there?
	coord_found f;
	core_unlock_log(&r->lock, &r->logq);
	int frv = coord_find_active(r->n.rpc, r->n.mship, r->id, &f);
	core_lock(&r->lock);
	bool alive = frv == IDN_OK && strcmp(f.id, r->leader) == 0 &&
	    !r->leader_failed;
	if (frv == IDN_OK && !alive) {
		// Another coordinator is active (a newer epoch): follow it.
		r->leader[0] = '\0';
		r->followed = false;
		return;
	}
	if (alive || !r->followed) {
		if (!r->followed) {
			r->leader[0] = '\0';
		}
		return;
	}
	// Only a standby that reaches a majority promotes: one cut off from
	// the cluster waits (the active one may be fine).
	size_t reached = 0, size = 0;
	core_unlock_log(&r->lock, &r->logq);
	coord_reach(r->n.rpc, r->n.mship, r->id, r->leader, &reached, &size);
	core_lock(&r->lock);
	if (reached * 2 <= size) {
		if (!r->no_majority) {
			rlog(r, IDN_LOG_WARN, "coord: standby: coordinator %s "
			    "silent, but only %zu of %zu members reached: no "
			    "majority, not promoting", r->leader, reached, size);
		}
		r->no_majority = true;
		wait_ms(r, 50);
		return;
	}
	r->no_majority = false;
	promote(r, now - *last_ok);
}

static void *
role_main(void *arg)
{
	coord_role *r = arg;
	uint64_t last_ok = 0, last_view = 0, last_check = 0;
	core_lock(&r->lock);
	while (!r->stop) {
		if (r->state == ROLE_ACTIVE) {
			active_step(r, &last_check);
		} else {
			standby_step(r, &last_ok, &last_view);
		}
	}
	core_unlock_log(&r->lock, &r->logq);
	return NULL;
}

int
coord_role_open(const coord_node *n, coord_role **out)
{
	coord_role *r = core_alloc(sizeof(*r));
	if (r == NULL) {
		return IDN_ENOMEM;
	}
	r->n = *n;
	snprintf(r->data_dir, sizeof(r->data_dir), "%s", n->data_dir);
	snprintf(r->id, sizeof(r->id), "%s", n->id);
	snprintf(r->addr, sizeof(r->addr), "%s", n->addr);
	memcpy(r->key, n->key, IDN_KEY_BYTES);
	r->lg = (core_logger){n->log, n->log_arg, IDN_LOG_DEBUG};
	r->logq.lg = &r->lg;
	pthread_mutex_init(&r->lock, NULL);
	core_cond_init(&r->cond);
	int rv = IDN_OK;
	for (size_t i = 0; rv == IDN_OK && i < coord_nroutes; i++) {
		rv = rpc_route(n->rpc, coord_routes[i].type, on_route, r);
	}
	if (rv == IDN_OK) {
		rv = rpc_routes(n->rpc, role_routes,
		    CORE_ARRAY_LEN(role_routes), r);
	}
	if (rv != IDN_OK) {
		coord_role_close(r);
		return rv;
	}
	*out = r;
	return IDN_OK;
}

int
coord_role_start(coord_role *r)
{
	int rv = idn_client_open(r->addr, r->key, &r->sdfs);
	if (rv == IDN_OK) {
		idn_client_set_timeout(r->sdfs, 10000);
		core_lock(&r->lock);
		rv = follow_start(r);
		core_unlock_log(&r->lock, &r->logq);
	}
	if (rv == IDN_OK) {
		rv = membership_watch(r->n.mship, on_member, r);
	}
	if (rv == IDN_OK) {
		rv = pthread_create(&r->thread, NULL, role_main, r) ? IDN_ESYS :
		    IDN_OK;
		r->have_thread = rv == IDN_OK;
	}
	return rv;
}

void
coord_role_close(coord_role *r)
{
	if (r == NULL) {
		return;
	}
	core_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->cond);
	core_unlock_log(&r->lock, &r->logq);
	if (r->have_thread) {
		pthread_join(r->thread, NULL);
	}
	core_lock(&r->lock);
	coord *c = swap(r, NULL);
	core_unlock_log(&r->lock, &r->logq);
	coord_close(c);
	coord_repl_free(r->repl);
	coord_replica_close(r->replica);
	idn_client_close(r->sdfs);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	core_logq_free(&r->logq);
	free(r);
}

int
coord_role_view(coord_role *r, coord_view_fn fn, void *arg)
{
	coord *c = r != NULL ? atomic_load(&r->c) : NULL;
	return c != NULL ? coord_view_with(c, fn, arg) : IDN_EUNAVAIL;
}
