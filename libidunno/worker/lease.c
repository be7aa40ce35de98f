// SPDX-License-Identifier: MIT
// lease.c: the worker's lease loop, the one thread that talks to the
// coordinator: each call carries the leases held (renewals), the reports
// not yet acknowledged and the training progress, asks for enough leases
// to stay busy through a takeover, and takes the reply (new leases, the
// ones to drop). And worker.state, the same without asking.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collective/collective.h"
#include "rpc/rpc.h"
#include "worker/worker_int.h"

// An inference task running this long is taken as stuck (a call that
// never returns): the worker gives all its leases back at once and takes
// no more until the task ends, so its batches go to other workers.
#define TASK_STUCK_MS 10000

static int
resolve(worker *w)
{
	wire_doc *d = NULL;
	wire_env e;
	char addr[IDN_ADDR_MAX];
	uint64_t epoch = 0;
	int rv = rpc_client_call(w->h.node, "sched.where", NULL, &d, &e);
	if (rv == IDN_OK && (wire_get_str(e.body, "coord", addr, sizeof(addr)) ||
	    wire_get_u64(e.body, "epoch", &epoch))) {
		rv = IDN_EPROTO;
	}
	wire_doc_free(d);
	if (rv == IDN_OK) {
		core_lock(&w->lock);
		snprintf(w->coord, sizeof(w->coord), "%s", addr);
		w->epoch = epoch > w->epoch ? epoch : w->epoch;
		core_unlock_log(&w->lock, &w->logq);
	}
	return rv;
}

static bool
same_lease(const record_lease *l, const record_held *h)
{
	return strcmp(l->spec.job, h->job) == 0 && l->task == h->task &&
	    l->attempt == h->attempt;
}

static bool
has_train(worker *w)
{
	if (w->running && w->cur.spec.kind == IDN_JOB_TRAIN) {
		return true;
	}
	for (size_t i = 0; i < w->nq; i++) {
		if (w->queue[i].spec.kind == IDN_JOB_TRAIN) {
			return true;
		}
	}
	return false;
}

// A task stuck past TASK_STUCK_MS (running, or its result being
// written), or NULL (lock held).
static const record_lease *
stuck_task(worker *w, uint64_t now)
{
	const record_lease *st = w->running && w->cur.spec.kind == IDN_JOB_INFER &&
	    now > w->cur_start + TASK_STUCK_MS ? &w->cur : NULL;
	for (size_t i = 0; i < WRITES_MAX && st == NULL; i++) {
		st = w->wr[i].state == SLOT_WRITING &&
		    now > w->wr[i].start + TASK_STUCK_MS ? &w->wr[i].l : NULL;
	}
	return st;
}

static void
hold(record_held *h, size_t *n, const record_lease *l, bool running)
{
	h[*n] = (record_held){"", l->task, l->attempt, running};
	snprintf(h[*n].job, sizeof(h[0].job), "%s", l->spec.job);
	(*n)++;
}

// What a lease call carries (lock held): the leases held (none when
// stuck: they are given up), the reports not yet acknowledged, then the
// recent ones acknowledged by an epoch older than `older` (a coordinator
// of a newer epoch may lack them).
typedef struct {
	record_held held[QUEUE_MAX + 1 + WRITES_MAX];
	record_done done[REPORTS_MAX + RECENT_MAX];
	record_lease_req r;
} call_body;

static void
collect(worker *w, uint64_t now, bool stuck, uint64_t older, call_body *b)
{
	size_t nh = 0, n = w->ndone;
	for (size_t i = 0; i < WRITES_MAX && !stuck; i++) {
		if (w->wr[i].state != SLOT_FREE) {
			hold(b->held, &nh, &w->wr[i].l, true);
		}
	}
	for (size_t i = 0; i < w->nq && !stuck; i++) {
		hold(b->held, &nh, &w->queue[i], false);
	}
	if (w->running && !stuck) {
		hold(b->held, &nh, &w->cur, true);
	}
	memcpy(b->done, w->done, n * sizeof(*b->done));
	for (size_t i = 0; i < w->nrecent; i++) {
		if (w->recent[i].epoch < older &&
		    now < w->recent[i].at + RECENT_MS) {
			b->done[n++] = w->recent[i].d;
		}
	}
	b->r = (record_lease_req){.epoch = w->epoch, .done = b->done,
	    .ndone = n, .held = b->held, .nheld = nh, .train = w->prog,
	    .ntrain = w->nprog};
	snprintf(b->r.worker, sizeof(b->r.worker), "%s", w->self);
	snprintf(b->r.addr, sizeof(b->r.addr), "%s", w->addr);
}

// Builds the request under the lock; *nd/*np: reports included.
static int
build(worker *w, wire_wr **out, size_t *nd, size_t *np, uint32_t *want)
{
	uint64_t now = idn_clock_ms();
	const record_lease *st = stuck_task(w, now);
	bool stuck = st != NULL;
	if (!stuck) {
		w->stuck_logged = false; // a new episode logs and releases again
	}
	if (stuck && !w->stuck_logged) {
		w->stuck_logged = true;
		core_logq_add(&w->logq, IDN_LOG_WARN, "worker: task %s/%u "
		    "stuck for %d ms: its leases are given up", st->spec.job,
		    st->task, TASK_STUCK_MS);
	}
	// Enough to run WORKER_HOLD_MS by the tasks' measured time: the
	// leases carry it through a takeover of the coordinator.
	size_t busy = w->nq + (w->running ? 1 : 0);
	size_t depth = WORKER_PREFETCH + 1;
	if (w->task_ms > 0 && WORKER_HOLD_MS / w->task_ms > (double) depth) {
		double d = ceil(WORKER_HOLD_MS / w->task_ms);
		depth = d >= QUEUE_MAX ? QUEUE_MAX : (size_t) d;
	}
	*want = stuck || has_train(w) || busy >= depth ? 0 :
	    (uint32_t) (depth - busy);
	*nd = w->ndone;
	*np = w->nprog;
	call_body *b = core_alloc(sizeof(*b));
	int rv = b != NULL ? wire_wr_new(out) : IDN_ENOMEM;
	if (rv == IDN_OK) {
		collect(w, now, stuck, w->epoch, b);
		b->r.want = *want;
		b->r.release = stuck && !w->released;
		record_lease_req_put(*out, &b->r);
	}
	free(b);
	return rv;
}

int
worker_state(worker *w, wire_wr *out)
{
	call_body *b = core_alloc(sizeof(*b));
	if (b == NULL) {
		return IDN_ENOMEM;
	}
	core_lock(&w->lock);
	uint64_t now = idn_clock_ms();
	collect(w, now, stuck_task(w, now) != NULL, UINT64_MAX, b);
	record_lease_req_put(out, &b->r);
	core_unlock_log(&w->lock, &w->logq);
	free(b);
	return IDN_OK;
}

// The reply of epoch `epoch` acknowledged the first nd reports and every
// recent one of an older epoch (sent again with them).
static void
keep_acked(worker *w, uint64_t epoch, size_t nd)
{
	uint64_t now = idn_clock_ms();
	size_t k = 0;
	for (size_t i = 0; i < w->nrecent; i++) {
		if (now < w->recent[i].at + RECENT_MS) {
			w->recent[k] = w->recent[i];
			w->recent[k++].epoch = epoch;
		}
	}
	w->nrecent = k;
	for (size_t i = 0; i < nd; i++) {
		if (w->done[i].rc != IDN_OK) {
			continue; // a failure went back; the task runs again
		}
		if (w->nrecent == RECENT_MAX) {
			memmove(w->recent, w->recent + 1,
			    (RECENT_MAX - 1) * sizeof(w->recent[0]));
			w->nrecent--;
		}
		w->recent[w->nrecent].d = w->done[i];
		w->recent[w->nrecent].epoch = epoch;
		w->recent[w->nrecent++].at = now;
	}
}

// A training rank waiting for its peers in an allreduce returns at once.
void
worker_abort_cur(worker *w)
{
	w->abort_cur = true;
	if (w->running && w->cur.spec.kind == IDN_JOB_TRAIN &&
	    w->h.coll != NULL) {
		(void) coll_cancel(w->h.coll, w->cur.spec.job);
	}
}

// got_ms: the wall clock when the reply arrived (each lease's lease_ms).
static void
take_reply(worker *w, const record_lease_rep *rep, size_t nd, size_t np,
    uint64_t got_ms)
{
	keep_acked(w, rep->epoch, nd);
	memmove(w->done, w->done + nd, (w->ndone - nd) * sizeof(*w->done));
	w->ndone -= nd;
	memmove(w->prog, w->prog + np, (w->nprog - np) * sizeof(*w->prog));
	w->nprog -= np;
	for (size_t i = 0; i < rep->ndrop; i++) {
		for (size_t k = 0; k < w->nq; k++) {
			if (same_lease(&w->queue[k], &rep->drop[i])) {
				memmove(&w->queue[k], &w->queue[k + 1],
				    (w->nq - k - 1) * sizeof(w->queue[0]));
				w->nq--;
				break;
			}
		}
		if (w->running && same_lease(&w->cur, &rep->drop[i])) {
			worker_abort_cur(w);
		}
	}
	for (size_t i = 0; i < rep->n && w->nq < QUEUE_MAX; i++) {
		w->queue[w->nq] = rep->leases[i];
		w->queue[w->nq++].got_ms = got_ms;
	}
	if (rep->n > 0) {
		pthread_cond_broadcast(&w->cv_exec);
	}
}

void *
worker_lease_main(void *arg)
{
	worker *w = arg;
	pthread_setname_np(pthread_self(), "idn-lease");
	core_lock(&w->lock);
	while (!w->stop) {
		if (w->coord[0] == '\0') {
			core_unlock_log(&w->lock, &w->logq);
			int rv = resolve(w);
			core_lock(&w->lock);
			if (rv != IDN_OK) {
				// A takeover: ask again soon.
				worker_wait_ms(w, &w->cv_loop, 100);
				continue;
			}
		}
		wire_wr *body = NULL;
		size_t nd = 0, np = 0;
		uint32_t want = 0;
		char coord[IDN_ADDR_MAX];
		snprintf(coord, sizeof(coord), "%s", w->coord);
		if (build(w, &body, &nd, &np, &want) != IDN_OK) {
			wire_wr_free(body);
			worker_wait_ms(w, &w->cv_loop, WORKER_POLL_MS);
			continue;
		}
		core_unlock_log(&w->lock, &w->logq);
		wire_doc *d = NULL;
		wire_env e;
		record_lease_rep rep;
		int rv = rpc_client_call_at(w->h.lease ? w->h.lease : w->h.node,
		    coord, "sched.lease", body, &d, &e);
		uint64_t got_ms = idn_wall_ms();
		wire_wr_free(body);
		if (rv == IDN_OK) {
			rv = record_lease_rep_get(e.body, &rep);
		}
		wire_doc_free(d);
		core_lock(&w->lock);
		if (rv == IDN_OK && rep.epoch < w->epoch) {
			// A coordinator of an older epoch (fenced off): its
			// leases are not taken, the reports go to the new one.
			core_logq_add(&w->logq, IDN_LOG_WARN, "worker: refused "
			    "a reply of epoch %llu (now %llu) from %s",
			    (unsigned long long) rep.epoch,
			    (unsigned long long) w->epoch, coord);
			record_lease_rep_clear(&rep);
			rv = IDN_ESTALE;
		}
		if (rv != IDN_OK) {
			w->coord[0] = '\0'; // ask again who the coordinator is
			worker_wait_ms(w, &w->cv_loop, 50);
			continue;
		}
		w->epoch = rep.epoch;
		w->released = w->stuck_logged;
		take_reply(w, &rep, nd, np, got_ms);
		size_t got = rep.n;
		record_lease_rep_clear(&rep);
		// Go again at once with reports to send or leases to take
		// while short of the next few tasks, else after the poll
		// period (renewals, new work, the deeper queue: the
		// coordinator deals leases ahead out over the workers' calls).
		bool more = got > 0 && want > got &&
		    w->nq + (w->running ? 1 : 0) < WORKER_PREFETCH + 1;
		if (w->ndone == 0 && w->nprog == 0 && !more) {
			worker_wait_ms(w, &w->cv_loop, WORKER_POLL_MS);
		}
	}
	core_unlock_log(&w->lock, &w->logq);
	return NULL;
}
