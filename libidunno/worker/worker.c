// SPDX-License-Identifier: MIT
// worker.c: the lease loop (one thread talks to the coordinator), the
// executor (one thread runs tasks in lease order: inputs and model) and
// writers (WRITERS threads put the batches' results into SDFS while the
// executor goes on with the next batch). They share a queue of leases not
// started, the running one, the results being written, and the reports
// not yet sent. A batch is reported done only once its result is in SDFS.
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <idunno/catalog.h>
#include <idunno/model.h>
#include <idunno/sdfs.h>

#include "catalog/catalog.h"
#include "collective/collective.h"
#include "rpc/rpc.h"
#include "ledger/msg.h"
#include "worker/worker.h"

#define QUEUE_MAX 32        // leases held, not started (WORKER_HOLD_MS)
#define REPORTS_MAX 256
// Completions a coordinator acknowledged, kept RECENT_MS: a standby that
// promotes itself may lack the last ones its pulls had not reached yet,
// so they go again to the first coordinator of a newer epoch (which
// counts a batch once) instead of the batches running again.
#define RECENT_MAX 256
#define RECENT_MS 10000
#define MODELS_MAX 4
#define SETS_MAX 4
#define SHARDS_MAX 2
// An inference task running this long is taken as stuck (a call that
// never returns): the worker gives all its leases back at once and takes
// no more until the task ends, so its batches go to other workers.
#define TASK_STUCK_MS 10000
// Results written at once, and waiting to be (the executor waits when
// all slots are taken: the writes set the pace then).
#define WRITERS 4
#define WRITES_MAX 8

enum { SLOT_FREE, SLOT_QUEUED, SLOT_WRITING };

typedef struct {
	int state;
	uint64_t seq;           // FIFO order of the queued ones
	ledger_lease l;
	core_buf out;           // the batch's result lines
	ledger_done d;          // its report but for end_ms and rc
	uint64_t start;         // clock ms its write started
} write_slot;

typedef struct {
	char key[2 * LEDGER_PATH_MAX];
	idn_model *m;
	idn_model_info info;
	uint64_t used;
} model_slot;

typedef struct {
	char prefix[LEDGER_PATH_MAX];
	ledger_manifest man;
	uint64_t used;
} set_slot;

typedef struct {
	char name[LEDGER_PATH_MAX + 16];
	void *blob;
	idn_dataset_shard s;
	uint64_t used;
} shard_slot;

struct worker {
	worker_host h;
	char self[96];
	char addr[LEDGER_ADDR_MAX];
	pthread_mutex_t lock;
	// One condition per kind of waiter, so a wakeup reaches only the
	// thread it concerns (a broadcast to all cost hundreds of needless
	// wakeups a second, each a preemption of the model on a busy CPU).
	pthread_cond_t cv_loop;   // reports to send, fewer leases held
	pthread_cond_t cv_exec;   // new leases, a free write slot, a shard
	pthread_cond_t cv_write;  // a result queued
	pthread_cond_t cv_pf;     // a shard or a model to fetch
	bool stop;
	bool have_loop, have_exec;
	pthread_t loop, exec;
	ledger_lease queue[QUEUE_MAX];
	size_t nq;
	ledger_lease cur;
	bool running;
	bool abort_cur;
	uint64_t cur_start;       // clock ms the running task started
	double task_ms;           // moving mean of an inference task's time
	bool stuck_logged;
	bool released;            // the leases were given back
	ledger_done done[REPORTS_MAX];
	size_t ndone;
	struct {
		ledger_done d;
		uint64_t epoch;   // of the coordinator that acknowledged it
		uint64_t at;      // clock ms of the acknowledgement
	} recent[RECENT_MAX];
	size_t nrecent;           // oldest first
	ledger_progress prog[REPORTS_MAX];
	size_t nprog;
	char coord[IDN_ADDR_MAX];
	uint64_t epoch;
	write_slot wr[WRITES_MAX];
	uint64_t wr_seq;
	pthread_t writers[WRITERS];
	int nwriters;
	// The query shard the next task will need, fetched by its own thread
	// while the executor runs this one (a shard holds many batches).
	pthread_t pf;
	bool have_pf;
	char pf_want[LEDGER_PATH_MAX + 16];   // requested, not yet started
	char pf_name[LEDGER_PATH_MAX + 16];   // being fetched or fetched
	bool pf_busy;
	void *pf_blob;
	size_t pf_len;
	// A model the queue will need, loaded by its own thread while the
	// executor runs tasks whose model is loaded: a first ResNet-18 load
	// (45 MB from SDFS) took 4-9 s with 8 workers loading at once, and a
	// job's leases queued behind it waited that long.
	pthread_t ld;
	bool have_ld;
	ledger_spec ld_want;      // requested (ld_want.model[0]: none)
	char ld_key[2 * LEDGER_PATH_MAX]; // being loaded or loaded
	char ld_failed[2 * LEDGER_PATH_MAX]; // its last failure: not again
	bool ld_busy;
	idn_model *ld_m;          // loaded, for the executor to take
	// Executor only.
	model_slot models[MODELS_MAX];
	set_slot sets[SETS_MAX];
	shard_slot shards[SHARDS_MAX];
	uint64_t tick;
};

static void
wlog(worker *w, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
wlog(worker *w, int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (w->h.log != NULL) {
		w->h.log(w->h.log_arg, level, line);
	}
}

static void
wait_ms(worker *w, pthread_cond_t *cv, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long) ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(cv, &w->lock, &ts);
}

// ---- the lease loop

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
		pthread_mutex_lock(&w->lock);
		snprintf(w->coord, sizeof(w->coord), "%s", addr);
		w->epoch = epoch > w->epoch ? epoch : w->epoch;
		pthread_mutex_unlock(&w->lock);
	}
	return rv;
}

static bool
same_lease(const ledger_lease *l, const ledger_held *h)
{
	return strcmp(l->spec.job, h->job) == 0 && l->batch == h->batch &&
	    l->attempt == h->attempt;
}

static bool
has_train(worker *w)
{
	if (w->running && w->cur.spec.kind == LEDGER_TRAIN) {
		return true;
	}
	for (size_t i = 0; i < w->nq; i++) {
		if (w->queue[i].spec.kind == LEDGER_TRAIN) {
			return true;
		}
	}
	return false;
}

// A task stuck past TASK_STUCK_MS (running, or its result being
// written), or NULL (lock held).
static const ledger_lease *
stuck_task(worker *w, uint64_t now)
{
	const ledger_lease *st = w->running && w->cur.spec.kind == LEDGER_INFER &&
	    now > w->cur_start + TASK_STUCK_MS ? &w->cur : NULL;
	for (size_t i = 0; i < WRITES_MAX && st == NULL; i++) {
		st = w->wr[i].state == SLOT_WRITING &&
		    now > w->wr[i].start + TASK_STUCK_MS ? &w->wr[i].l : NULL;
	}
	return st;
}

static void
hold(ledger_held *h, size_t *n, const ledger_lease *l, bool running)
{
	h[*n] = (ledger_held){"", l->batch, l->attempt, running};
	snprintf(h[*n].job, sizeof(h[0].job), "%s", l->spec.job);
	(*n)++;
}

// What a lease call carries (lock held): the leases held (none when
// stuck: they are given up), the reports not yet acknowledged, then the
// recent ones acknowledged by an epoch older than `older` (a coordinator
// of a newer epoch may lack them).
typedef struct {
	ledger_held held[QUEUE_MAX + 1 + WRITES_MAX];
	ledger_done done[REPORTS_MAX + RECENT_MAX];
	ledger_lease_req r;
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
	b->r = (ledger_lease_req){.epoch = w->epoch, .done = b->done,
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
	const ledger_lease *st = stuck_task(w, now);
	bool stuck = st != NULL;
	if (!stuck) {
		w->stuck_logged = false; // a new episode logs and releases again
	}
	if (stuck && !w->stuck_logged) {
		w->stuck_logged = true;
		wlog(w, IDN_LOG_WARN, "worker: task %s/%u stuck for %d ms: its "
		    "leases are given up", st->spec.job, st->batch,
		    TASK_STUCK_MS);
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
		ledger_lease_req_put(*out, &b->r);
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
	pthread_mutex_lock(&w->lock);
	uint64_t now = idn_clock_ms();
	collect(w, now, stuck_task(w, now) != NULL, UINT64_MAX, b);
	ledger_lease_req_put(out, &b->r);
	pthread_mutex_unlock(&w->lock);
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
			continue; // a failure went back; the batch runs again
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

// got_ms: the wall clock when the reply arrived (each lease's lease_ms).
// Stops the running task (lock held): a training rank waiting for its
// peers in an allreduce returns at once.
static void
abort_cur(worker *w)
{
	w->abort_cur = true;
	if (w->running && w->cur.spec.kind == LEDGER_TRAIN &&
	    w->h.coll != NULL) {
		(void) coll_cancel(w->h.coll, w->cur.spec.job);
	}
}

static void
take_reply(worker *w, const ledger_lease_rep *rep, size_t nd, size_t np,
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
			abort_cur(w);
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

static void *
loop(void *arg)
{
	worker *w = arg;
	pthread_setname_np(pthread_self(), "idn-lease");
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		if (w->coord[0] == '\0') {
			pthread_mutex_unlock(&w->lock);
			int rv = resolve(w);
			pthread_mutex_lock(&w->lock);
			if (rv != IDN_OK) {
				wait_ms(w, &w->cv_loop, 100); // a takeover: ask again soon
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
			wait_ms(w, &w->cv_loop, WORKER_POLL_MS);
			continue;
		}
		pthread_mutex_unlock(&w->lock);
		wire_doc *d = NULL;
		wire_env e;
		ledger_lease_rep rep;
		int rv = rpc_client_call_at(w->h.lease ? w->h.lease : w->h.node,
		    coord, "sched.lease", body, &d, &e);
		uint64_t got_ms = idn_wall_ms();
		wire_wr_free(body);
		if (rv == IDN_OK) {
			rv = ledger_lease_rep_get(e.body, &rep);
		}
		wire_doc_free(d);
		pthread_mutex_lock(&w->lock);
		if (rv == IDN_OK && rep.epoch < w->epoch) {
			// A coordinator of an older epoch (fenced off): its
			// leases are not taken, the reports go to the new one.
			wlog(w, IDN_LOG_WARN, "worker: refused a reply of epoch "
			    "%llu (now %llu) from %s", (unsigned long long)
			    rep.epoch, (unsigned long long) w->epoch, coord);
			ledger_lease_rep_clear(&rep);
			rv = IDN_ESTALE;
		}
		if (rv != IDN_OK) {
			w->coord[0] = '\0'; // ask again who the coordinator is
			wait_ms(w, &w->cv_loop, 50);
			continue;
		}
		w->epoch = rep.epoch;
		w->released = w->stuck_logged;
		take_reply(w, &rep, nd, np, got_ms);
		size_t got = rep.n;
		ledger_lease_rep_clear(&rep);
		// Go again at once with reports to send or leases to take
		// while short of the next few tasks, else after the poll
		// period (renewals, new work, the deeper queue: the
		// coordinator deals leases ahead out over the workers' calls).
		bool more = got > 0 && want > got &&
		    w->nq + (w->running ? 1 : 0) < WORKER_PREFETCH + 1;
		if (w->ndone == 0 && w->nprog == 0 && !more) {
			wait_ms(w, &w->cv_loop, WORKER_POLL_MS);
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

// ---- the executor

static void
model_key(const ledger_spec *s, char *key, size_t cap)
{
	snprintf(key, cap, "%s|%s", s->model, s->weights);
}

// The model of spec s from SDFS (its description and weights), loaded.
static int
load_model(worker *w, const ledger_spec *s, idn_model **out)
{
	char dname[LEDGER_PATH_MAX];
	void *desc = NULL, *bytes = NULL;
	size_t dlen = 0, blen = 0;
	char *err = NULL;
	snprintf(dname, sizeof(dname), "models/%s/desc", s->model);
	int rc = idn_sdfs_get_buf(w->h.node, dname, 0, &desc, &dlen, NULL);
	if (rc == IDN_OK) {
		rc = idn_sdfs_get_buf(w->h.node, s->weights, 0, &bytes, &blen,
		    NULL);
	}
	if (rc == IDN_OK) {
		rc = idn_model_load(desc, dlen, bytes, blen, &err, out);
		if (rc != IDN_OK) {
			wlog(w, IDN_LOG_WARN, "worker: model %s (%s): %s",
			    s->model, s->weights, err ? err : "");
		}
	}
	idn_free(err);
	idn_free(desc);
	idn_free(bytes);
	return rc;
}

static model_slot *
cached_model(worker *w, const char *key)
{
	for (int i = 0; i < MODELS_MAX; i++) {
		if (w->models[i].m != NULL && strcmp(w->models[i].key, key) == 0) {
			return &w->models[i];
		}
	}
	return NULL;
}

// Puts m into the executor's cache in place of the least recently used.
static model_slot *
cache_model(worker *w, const char *key, idn_model *m)
{
	model_slot *lru = &w->models[0];
	for (int i = 1; i < MODELS_MAX; i++) {
		if (w->models[i].used < lru->used) {
			lru = &w->models[i];
		}
	}
	idn_model_close(lru->m);
	lru->m = m;
	snprintf(lru->key, sizeof(lru->key), "%s", key);
	idn_model_describe(m, &lru->info);
	lru->used = ++w->tick;
	return lru;
}

static model_slot *
get_model(worker *w, const ledger_spec *s, int *rc)
{
	char key[sizeof(w->models[0].key)];
	model_key(s, key, sizeof(key));
	model_slot *hit = cached_model(w, key);
	if (hit != NULL) {
		hit->used = ++w->tick;
		return hit;
	}
	// The loader's, when it has or is loading this one.
	idn_model *m = NULL;
	pthread_mutex_lock(&w->lock);
	while (w->ld_busy && strcmp(w->ld_key, key) == 0 && !w->stop) {
		wait_ms(w, &w->cv_exec, 100);
	}
	if (w->ld_m != NULL && strcmp(w->ld_key, key) == 0) {
		m = w->ld_m;
		w->ld_m = NULL;
		w->ld_key[0] = '\0';
	}
	pthread_mutex_unlock(&w->lock);
	*rc = m != NULL ? IDN_OK : load_model(w, s, &m);
	return *rc == IDN_OK ? cache_model(w, key, m) : NULL;
}

static void *
loader_main(void *arg)
{
	worker *w = arg;
	pthread_setname_np(pthread_self(), "idn-load");
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		if (w->ld_want.model[0] == '\0') {
			wait_ms(w, &w->cv_pf, 1000);
			continue;
		}
		if (w->ld_m != NULL) {
			wait_ms(w, &w->cv_pf, 100); // the executor takes it first
			continue;
		}
		ledger_spec want = w->ld_want;
		w->ld_want.model[0] = '\0';
		model_key(&want, w->ld_key, sizeof(w->ld_key));
		w->ld_busy = true;
		pthread_mutex_unlock(&w->lock);
		idn_model *m = NULL;
		if (load_model(w, &want, &m) != IDN_OK) {
			m = NULL; // the executor tries itself, and reports
		}
		pthread_mutex_lock(&w->lock);
		w->ld_busy = false;
		w->ld_m = m;
		if (m == NULL) {
			snprintf(w->ld_failed, sizeof(w->ld_failed), "%s",
			    w->ld_key);
			w->ld_key[0] = '\0';
		}
		pthread_cond_broadcast(&w->cv_exec);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

// Takes the loader's model into the cache (lock held on entry and exit;
// released meanwhile: the cache is the executor's).
static void
adopt(worker *w)
{
	if (w->ld_m == NULL) {
		return;
	}
	idn_model *m = w->ld_m;
	char key[sizeof(w->ld_key)];
	snprintf(key, sizeof(key), "%s", w->ld_key);
	w->ld_m = NULL;
	w->ld_key[0] = '\0';
	pthread_cond_broadcast(&w->cv_pf);
	pthread_mutex_unlock(&w->lock);
	cache_model(w, key, m);
	pthread_mutex_lock(&w->lock);
}

// Under the lock, after adopt(): the queue index to run next, among the
// leases whose queries all arrived (one leased ahead waits for its
// arrival; *next gets the first arrival to come). The first inference
// lease whose model is loaded; else one whose model the loader is not on,
// loaded in place (the executor is idle anyway; a failed load makes the
// task report why); else SIZE_MAX: wait for arrivals, the loader or new
// leases. The loader is asked for the first model not loaded, arrived or
// not. Leases are independent, so running a later one first loses
// nothing.
static size_t
next_task(worker *w, uint64_t now, uint64_t *next)
{
	char lkey[sizeof(w->ld_key)] = "";
	size_t pick = SIZE_MAX, own = SIZE_MAX;
	for (size_t i = 0; i < w->nq && pick == SIZE_MAX; i++) {
		const ledger_lease *l = &w->queue[i];
		bool arrived = l->ready_ms <= now;
		if (!arrived) {
			*next = CORE_MIN(*next, l->ready_ms);
		}
		if (l->spec.kind != LEDGER_INFER) {
			if (arrived) {
				return i; // training keeps its order
			}
			continue;
		}
		char key[sizeof(w->models[0].key)];
		model_key(&l->spec, key, sizeof(key));
		if (cached_model(w, key) != NULL) {
			pick = arrived ? i : pick;
			continue;
		}
		if (w->ld_busy) {
			snprintf(lkey, sizeof(lkey), "%s", w->ld_key);
		} else if (w->ld_want.model[0] != '\0') {
			model_key(&w->ld_want, lkey, sizeof(lkey));
		} else if (strcmp(w->ld_failed, key) != 0) {
			w->ld_want = l->spec;
			snprintf(lkey, sizeof(lkey), "%s", key);
			pthread_cond_broadcast(&w->cv_pf);
		}
		if (arrived && own == SIZE_MAX && strcmp(lkey, key) != 0) {
			own = i;
		}
	}
	return pick != SIZE_MAX ? pick : own;
}

static set_slot *
get_set(worker *w, const char *prefix, int *rc)
{
	set_slot *lru = &w->sets[0];
	for (int i = 0; i < SETS_MAX; i++) {
		if (w->sets[i].used && strcmp(w->sets[i].prefix, prefix) == 0) {
			w->sets[i].used = ++w->tick;
			return &w->sets[i];
		}
		if (w->sets[i].used < lru->used) {
			lru = &w->sets[i];
		}
	}
	char name[LEDGER_PATH_MAX + 16];
	void *text = NULL;
	size_t len = 0;
	snprintf(name, sizeof(name), "%s/manifest", prefix);
	*rc = idn_sdfs_get_buf(w->h.node, name, 0, &text, &len, NULL);
	if (*rc == IDN_OK) {
		*rc = ledger_manifest_parse(text, len, &lru->man);
	}
	idn_free(text);
	if (*rc != IDN_OK) {
		return NULL;
	}
	snprintf(lru->prefix, sizeof(lru->prefix), "%s", prefix);
	lru->used = ++w->tick;
	return lru;
}

static const idn_dataset_shard *
get_shard(worker *w, const char *prefix, uint32_t k, int *rc)
{
	char name[sizeof(w->shards[0].name)];
	*rc = idn_dataset_shard_name(prefix, k, name, sizeof(name));
	if (*rc != IDN_OK) {
		return NULL;
	}
	shard_slot *lru = &w->shards[0];
	for (int i = 0; i < SHARDS_MAX; i++) {
		if (w->shards[i].blob && strcmp(w->shards[i].name, name) == 0) {
			w->shards[i].used = ++w->tick;
			return &w->shards[i].s;
		}
		if (w->shards[i].used < lru->used) {
			lru = &w->shards[i];
		}
	}
	void *blob = NULL;
	size_t len = 0;
	idn_dataset_shard s;
	pthread_mutex_lock(&w->lock);
	while (w->pf_busy && strcmp(w->pf_name, name) == 0 && !w->stop) {
		wait_ms(w, &w->cv_exec, 100);
	}
	if (w->pf_blob != NULL && strcmp(w->pf_name, name) == 0) {
		blob = w->pf_blob;
		len = w->pf_len;
		w->pf_blob = NULL;
		w->pf_name[0] = '\0';
	}
	pthread_mutex_unlock(&w->lock);
	*rc = blob != NULL ? IDN_OK : idn_sdfs_get_buf(w->h.node, name, 0,
	    &blob, &len, NULL);
	if (*rc == IDN_OK) {
		*rc = idn_dataset_shard_decode(blob, len, &s);
	}
	if (*rc != IDN_OK) {
		idn_free(blob);
		return NULL;
	}
	idn_free(lru->blob);
	lru->blob = blob;
	lru->s = s;
	snprintf(lru->name, sizeof(lru->name), "%s", name);
	lru->used = ++w->tick;
	return &lru->s;
}

// Asks the prefetcher for shard k of prefix unless it is cached or asked.
static void
prefetch(worker *w, const char *prefix, uint32_t k)
{
	char name[sizeof(w->pf_want)];
	if (idn_dataset_shard_name(prefix, k, name, sizeof(name)) != IDN_OK) {
		return;
	}
	for (int i = 0; i < SHARDS_MAX; i++) {
		if (w->shards[i].blob && strcmp(w->shards[i].name, name) == 0) {
			return;
		}
	}
	pthread_mutex_lock(&w->lock);
	if (strcmp(w->pf_name, name) != 0) {
		snprintf(w->pf_want, sizeof(w->pf_want), "%s", name);
		pthread_cond_broadcast(&w->cv_pf);
	}
	pthread_mutex_unlock(&w->lock);
}

static void *
prefetch_main(void *arg)
{
	worker *w = arg;
	pthread_setname_np(pthread_self(), "idn-prefetch");
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		if (w->pf_want[0] == '\0') {
			wait_ms(w, &w->cv_pf, 1000);
			continue;
		}
		char name[sizeof(w->pf_want)];
		snprintf(name, sizeof(name), "%s", w->pf_want);
		w->pf_want[0] = '\0';
		idn_free(w->pf_blob);
		w->pf_blob = NULL;
		snprintf(w->pf_name, sizeof(w->pf_name), "%s", name);
		w->pf_busy = true;
		pthread_mutex_unlock(&w->lock);
		void *blob = NULL;
		size_t len = 0;
		if (idn_sdfs_get_buf(w->h.node, name, 0, &blob, &len, NULL) !=
		    IDN_OK) {
			blob = NULL; // the executor fetches it itself
		}
		pthread_mutex_lock(&w->lock);
		w->pf_busy = false;
		if (strcmp(w->pf_name, name) == 0 && blob != NULL) {
			w->pf_blob = blob;
			w->pf_len = len;
		} else {
			w->pf_name[0] = '\0';
			idn_free(blob);
		}
		pthread_cond_broadcast(&w->cv_exec);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

// Runs one inference batch: queries [first, first + count) of the set;
// *result gets the lines for results/JOB/batch-NNNNNN (a writer puts
// them); d->ms the model's time, d->model_start_ms and model_end_ms its
// wall clock at the first batch's start and the last one's end; *load_ms
// the time a model load took (not the task's time).
static int
run_batch(worker *w, const ledger_lease *l, ledger_done *d, double *load_ms,
    core_buf *result)
{
	int rv = IDN_OK;
	uint64_t tl = idn_clock_ms();
	model_slot *ms_ = get_model(w, &l->spec, &rv);
	*load_ms = (double) (idn_clock_ms() - tl);
	set_slot *set = ms_ ? get_set(w, l->spec.queries, &rv) : NULL;
	if (set == NULL) {
		return rv;
	}
	const ledger_manifest *man = &set->man;
	size_t chw = (size_t) man->c * man->h * man->w;
	// spec.limit is the job's resolved query count; past the set's size
	// the set is replayed: query q is image q mod count.
	if (l->count == 0 || l->spec.batch == 0 || man->count == 0 ||
	    man->shard_size == 0 || (l->spec.limit > 0 &&
	        l->first + l->count > l->spec.limit) ||
	    man->c != ms_->info.channels || man->h != ms_->info.height ||
	    man->w != ms_->info.width) {
		return IDN_EINVAL;
	}
	uint64_t end = man->count;
	uint8_t *images = core_alloc(l->count * chw);
	uint8_t *labels = core_alloc(l->count);
	uint32_t *cls = core_alloc(l->count * sizeof(*cls));
	float *scores = core_alloc(l->count * sizeof(*scores));
	if (!images || !labels || !cls || !scores) {
		rv = IDN_ENOMEM;
	}
	// A task may hold a group of batches: the model still runs each
	// batch of exactly spec.batch queries (only the set's last is short).
	// Each batch's inputs are gathered just before it runs, and the
	// first use of a shard asks for the next one, so its fetch overlaps
	// the model.
	uint32_t shard = UINT32_MAX;
	d->ms = 0;
	for (uint32_t i = 0; rv == IDN_OK && i < l->count; i += l->spec.batch) {
		uint32_t n = l->count - i < l->spec.batch ? l->count - i :
		    l->spec.batch;
		for (uint32_t k = i; rv == IDN_OK && k < i + n; k++) {
			uint64_t q = (l->first + k) % man->count;
			uint32_t sk = (uint32_t) (q / man->shard_size);
			const idn_dataset_shard *s = get_shard(w, l->spec.queries,
			    sk, &rv);
			if (s != NULL && (q < s->first ||
			        q - s->first >= s->count ||
			        s->channels != man->c)) {
				rv = IDN_ECORRUPT;
			}
			if (rv == IDN_OK) {
				memcpy(images + k * chw, s->images + (q - s->first) *
				    chw, chw);
				labels[k] = s->labels[q - s->first];
			}
			if (rv == IDN_OK && sk != shard) {
				shard = sk;
				uint64_t next = (uint64_t) (sk + 1) * man->shard_size;
				if (next < end || l->spec.limit > end) {
					prefetch(w, l->spec.queries, next < end ?
					    sk + 1 : 0);
				}
			}
		}
		uint64_t t0 = idn_clock_ms();
		if (i == 0) {
			d->model_start_ms = idn_wall_ms();
		}
		if (rv == IDN_OK) {
			rv = idn_model_infer(ms_->m, images + i * chw, n, n * chw,
			    cls + i, scores + i);
		}
		d->ms += (double) (idn_clock_ms() - t0);
		d->model_end_ms = idn_wall_ms();
	}
	core_buf out = {0};
	for (uint32_t i = 0; rv == IDN_OK && i < l->count; i++) {
		char line[96];
		int n = snprintf(line, sizeof(line), "%llu,%u,%.4f,%u\n",
		    (unsigned long long) (l->first + i), cls[i],
		    (double) scores[i], labels[i]);
		rv = core_buf_append(&out, line, (size_t) n);
	}
	if (rv != IDN_OK) {
		core_buf_free(&out);
	} else {
		*result = out;
	}
	free(images);
	free(labels);
	free(cls);
	free(scores);
	return rv;
}

// A rank waits this long for its peers' parts: longer than rank 0's
// checkpoint write and test-set evaluation; a dead peer ends the wait
// sooner (its endpoint refuses, or the coordinator drops the rank).
#define TRAIN_SYNC_TIMEOUT_MS 120000

typedef struct {
	worker *w;
	const ledger_lease *l;
	coll_group *g;
	bool stepped;     // on_step ran once (where the run started is logged)
} train_ctx;

static int
on_sync(void *arg, int kind, float *buf, size_t n)
{
	(void) kind;
	train_ctx *t = arg;
	return coll_allreduce(t->g, buf, n, TRAIN_SYNC_TIMEOUT_MS);
}

static int
on_step(void *arg, const idn_model_step *s)
{
	train_ctx *t = arg;
	if (!t->stepped) {
		t->stepped = true;
		wlog(t->w, IDN_LOG_INFO, "worker: training %s rank %u of %u "
		    "attempt %u: first step %llu of epoch %u (%llu steps an "
		    "epoch)", t->l->spec.job, t->l->batch, t->l->world,
		    t->l->attempt, (unsigned long long) s->step, s->epoch,
		    (unsigned long long) s->steps);
	}
	pthread_mutex_lock(&t->w->lock);
	bool stop = t->w->abort_cur || t->w->stop;
	pthread_mutex_unlock(&t->w->lock);
	return stop ? 1 : 0;
}

// Joins the lease's generation of ranks (l->batch of l->world, peers'
// addresses in l->peers); *g stays NULL for a single rank.
static int
join_ranks(worker *w, const ledger_lease *l, coll_group **g, char **err)
{
	*g = NULL;
	if (l->world <= 1) {
		return IDN_OK;
	}
	char peers[LEDGER_PEERS_MAX];
	const char *addrs[LEDGER_RANKS_MAX];
	uint32_t n = 0;
	snprintf(peers, sizeof(peers), "%s", l->peers);
	char *save = NULL;
	for (char *a = strtok_r(peers, " ", &save); a != NULL &&
	    n < LEDGER_RANKS_MAX; a = strtok_r(NULL, " ", &save)) {
		addrs[n++] = a;
	}
	int rv = w->h.coll == NULL || n != l->world ? IDN_EINVAL : IDN_OK;
	if (rv == IDN_OK) {
		coll_group_opts o = {l->spec.job, l->attempt, l->batch, l->world,
		    addrs};
		rv = coll_group_open(w->h.coll, &o, g);
	}
	if (rv != IDN_OK) {
		*err = core_asprintf("cannot join rank %u of %u, generation %u: "
		    "%s", l->batch, l->world, l->attempt, idn_strerror(rv));
	}
	return rv;
}

static int
on_epoch(void *arg, const idn_model_epoch *e)
{
	train_ctx *t = arg;
	worker *w = t->w;
	pthread_mutex_lock(&w->lock);
	if (w->nprog < REPORTS_MAX) {
		ledger_progress *p = &w->prog[w->nprog++];
		memset(p, 0, sizeof(*p));
		snprintf(p->job, sizeof(p->job), "%s", t->l->spec.job);
		p->attempt = t->l->attempt;
		p->epoch = e->epoch;
		p->loss = e->train_loss;
		p->acc = e->test_accuracy;
	}
	bool stop = w->abort_cur || w->stop;
	pthread_cond_broadcast(&w->cv_loop);
	pthread_mutex_unlock(&w->lock);
	wlog(w, IDN_LOG_INFO, "worker: training %s epoch %u/%u done, attempt "
	    "%u: loss %.4f accuracy %.4f", t->l->spec.job, e->epoch, e->epochs,
	    t->l->attempt, e->train_loss, e->test_accuracy);
	return stop ? 1 : 0;
}

// The training task, one rank of the job's generation: the catalog's
// trainer checkpoints to SDFS (rank 0) every checkpoint_s seconds and
// every epoch, and every rank resumes from the last checkpoint of a run
// of the same settings.
static void
run_train(worker *w, const ledger_lease *l)
{
	idn_model_train_opts o;
	ledger_spec_train_opts(&l->spec, &o);
	train_ctx t = {w, l, NULL, false};
	o.on_epoch = on_epoch;
	o.arg = &t;
	o.on_step = on_step;
	o.step_arg = &t;
	o.rank = l->batch;
	o.world = l->world ? l->world : 1;
	char *err = NULL;
	int rv = join_ranks(w, l, &t.g, &err);
	if (t.g != NULL) {
		o.on_sync = on_sync;
		o.sync_arg = &t;
	}
	if (rv == IDN_OK) {
		catalog_train_ext x = {l->spec.checkpoint_s,
		    l->spec.from == LEDGER_FROM_WEIGHTS};
		rv = catalog_train_run(w->h.node, l->spec.model, l->spec.data,
		    (size_t) l->spec.limit, &o, &x, &err);
	}
	coll_group_close(t.g);
	pthread_mutex_lock(&w->lock);
	bool aborted = w->abort_cur || w->stop;
	if (!aborted && w->nprog < REPORTS_MAX) {
		ledger_progress *p = &w->prog[w->nprog++];
		memset(p, 0, sizeof(*p));
		snprintf(p->job, sizeof(p->job), "%s", l->spec.job);
		p->attempt = l->attempt;
		p->done = true;
		p->rc = rv;
		snprintf(p->err, sizeof(p->err), "%s", rv == IDN_OK ? "" :
		    err ? err : idn_strerror(rv));
	}
	pthread_mutex_unlock(&w->lock);
	wlog(w, rv == IDN_OK ? IDN_LOG_INFO : IDN_LOG_WARN, "worker: training "
	    "%s %s%s%s", l->spec.job, aborted ? "stopped" : rv == IDN_OK ?
	    "finished" : "failed", err ? ": " : "", err ? err : "");
	idn_free(err);
}

// Queues the completion of a batch for the next lease call (lock held):
// d as the executor filled it, done now with rc.
static void
report(worker *w, const ledger_done *d, int rc)
{
	if (w->ndone < REPORTS_MAX) {
		ledger_done *r = &w->done[w->ndone++];
		*r = *d;
		r->end_ms = idn_wall_ms();
		r->rc = rc;
	}
	pthread_cond_broadcast(&w->cv_loop);
}

static write_slot *
free_slot(worker *w)
{
	for (size_t i = 0; i < WRITES_MAX; i++) {
		if (w->wr[i].state == SLOT_FREE) {
			return &w->wr[i];
		}
	}
	return NULL;
}

// A writer: puts the oldest queued result into SDFS, then reports the
// batch done (the report goes with the next lease call).
static void *
writer_main(void *arg)
{
	worker *w = arg;
	pthread_setname_np(pthread_self(), "idn-write");
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		write_slot *ws = NULL;
		for (size_t i = 0; i < WRITES_MAX; i++) {
			if (w->wr[i].state == SLOT_QUEUED &&
			    (ws == NULL || w->wr[i].seq < ws->seq)) {
				ws = &w->wr[i];
			}
		}
		if (ws == NULL) {
			wait_ms(w, &w->cv_write, 1000);
			continue;
		}
		ws->state = SLOT_WRITING;
		ws->start = idn_clock_ms();
		ledger_lease l = ws->l;
		ledger_done d = ws->d;
		core_buf out = ws->out;
		ws->out = (core_buf){0};
		pthread_mutex_unlock(&w->lock);
		char name[LEDGER_PATH_MAX];
		// Named by the task's first batch (its group's, when grouped).
		ledger_batch_name(name, sizeof(name), l.spec.job,
		    (uint32_t) (l.first / l.spec.batch));
		int rv = idn_sdfs_put_buf(w->h.node, name, out.data, out.len,
		    NULL);
		core_buf_free(&out);
		if (rv != IDN_OK) {
			wlog(w, IDN_LOG_WARN, "worker: %s/%u: writing the result: "
			    "%s", l.spec.job, l.batch, idn_strerror(rv));
		}
		pthread_mutex_lock(&w->lock);
		report(w, &d, rv);
		ws->state = SLOT_FREE;
		pthread_cond_signal(&w->cv_exec); // it may wait for a slot
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

// The executor alone on its CPU: housekeeping (lease calls, SDFS, the
// other nodes on the machine) wakes many times a second, and each wakeup
// on the model's CPU preempts it (12% of a LeNet-5 worker's rate on 2
// cores, bench/sched (a)). The host keeps its other threads off the CPU.
static void
pin_model_cpu(worker *w)
{
	int cpu = w->h.model_cpu;
	if (cpu < 0) {
		return;
	}
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET((size_t) cpu, &set);
	int rv = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (rv != 0) {
		wlog(w, IDN_LOG_WARN, "worker: the model cannot run on CPU %d "
		    "(%s): it runs on any", cpu, strerror(rv));
	} else {
		wlog(w, IDN_LOG_INFO, "worker: the model runs on CPU %d", cpu);
	}
}

static void *
exec_main(void *arg)
{
	worker *w = arg;
	pthread_setname_np(pthread_self(), "idn-exec");
	uint64_t last_end = 0;
	pin_model_cpu(w);
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		adopt(w);
		uint64_t now = idn_wall_ms(), next = UINT64_MAX;
		size_t k = next_task(w, now, &next);
		if (k == SIZE_MAX) {
			// Idle, or waiting for arrivals or a model: the next
			// task's time starts anew.
			last_end = 0;
			wait_ms(w, &w->cv_exec, next - now < 1000 ?
			    (int) (next - now) : 1000);
			continue;
		}
		w->cur = w->queue[k];
		memmove(&w->queue[k], &w->queue[k + 1],
		    (w->nq - k - 1) * sizeof(w->queue[0]));
		w->nq--;
		w->running = true;
		w->abort_cur = false;
		w->cur_start = idn_clock_ms();
		ledger_lease l = w->cur;
		pthread_mutex_unlock(&w->lock);
		if (l.spec.kind == LEDGER_TRAIN) {
			wlog(w, IDN_LOG_INFO, "worker: task started: training %s "
			    "model %s attempt %u rank %u of %u", l.spec.job,
			    l.spec.model, l.attempt, l.batch, l.world ? l.world : 1);
			run_train(w, &l);
			last_end = 0;
			pthread_mutex_lock(&w->lock);
		} else {
			wlog(w, IDN_LOG_INFO, "worker: task started: %s/%u "
			    "queries %llu..%llu attempt %u", l.spec.job, l.batch,
			    (unsigned long long) l.first,
			    (unsigned long long) (l.first + l.count - 1),
			    l.attempt);
			double load = 0;
			uint64_t t0 = last_end ? last_end : idn_clock_ms();
			core_buf out = {0};
			ledger_done d = {.batch = l.batch, .attempt = l.attempt,
			    .lease_ms = l.got_ms, .start_ms = idn_wall_ms()};
			snprintf(d.job, sizeof(d.job), "%s", l.spec.job);
			int rv = run_batch(w, &l, &d, &load, &out);
			if (rv != IDN_OK) {
				wlog(w, IDN_LOG_WARN, "worker: %s/%u failed: %s",
				    l.spec.job, l.batch, idn_strerror(rv));
			}
			pthread_mutex_lock(&w->lock);
			write_slot *ws = NULL;
			while (rv == IDN_OK && !w->stop &&
			    (ws = free_slot(w)) == NULL) {
				wait_ms(w, &w->cv_exec, 100); // all writes busy: they set the pace
			}
			// The worker's time this task took, with the hand-over
			// from the previous one when it went straight on, and
			// any wait for a free write slot; without a model load.
			last_end = idn_clock_ms();
			double busy = (double) (last_end - t0) - load;
			w->task_ms = w->task_ms > 0 ? 0.8 * w->task_ms + 0.2 * busy :
			    busy;
			d.busy_ms = busy;
			if (ws != NULL) {
				ws->state = SLOT_QUEUED;
				ws->seq = ++w->wr_seq;
				ws->l = l;
				ws->out = out;
				ws->d = d;
				pthread_cond_signal(&w->cv_write);
			} else if (rv != IDN_OK) {
				report(w, &d, rv);
			} else {
				core_buf_free(&out); // stopping: not written, not done
			}
		}
		w->running = false;
		pthread_cond_signal(&w->cv_loop); // fewer held: lease more
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

// Starts fn unless an earlier start failed (*rv); *have records it for
// worker_close.
static void
start(worker *w, pthread_t *t, bool *have, void *(*fn)(void *), int *rv)
{
	if (*rv == IDN_OK && pthread_create(t, NULL, fn, w) != 0) {
		*rv = IDN_ESYS;
	}
	*have = *rv == IDN_OK;
}

int
worker_open(const worker_host *h, worker **out)
{
	worker *w = core_alloc(sizeof(*w));
	if (w == NULL) {
		return IDN_ENOMEM;
	}
	w->h = *h;
	snprintf(w->self, sizeof(w->self), "%s", h->self_id);
	w->h.self_id = w->self;
	snprintf(w->addr, sizeof(w->addr), "%s", h->addr ? h->addr : "");
	w->h.addr = w->addr;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cv_loop, NULL);
	pthread_cond_init(&w->cv_exec, NULL);
	pthread_cond_init(&w->cv_write, NULL);
	pthread_cond_init(&w->cv_pf, NULL);
	int rv = IDN_OK;
	start(w, &w->loop, &w->have_loop, loop, &rv);
	start(w, &w->exec, &w->have_exec, exec_main, &rv);
	start(w, &w->pf, &w->have_pf, prefetch_main, &rv);
	start(w, &w->ld, &w->have_ld, loader_main, &rv);
	while (rv == IDN_OK && w->nwriters < WRITERS) {
		if (pthread_create(&w->writers[w->nwriters], NULL, writer_main,
		        w) != 0) {
			rv = IDN_ESYS;
		} else {
			w->nwriters++;
		}
	}
	if (rv != IDN_OK) {
		worker_close(w);
		return rv;
	}
	*out = w;
	return IDN_OK;
}

void
worker_close(worker *w)
{
	if (w == NULL) {
		return;
	}
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	if (w->running && w->cur.spec.kind == LEDGER_TRAIN) {
		abort_cur(w); // a rank waiting for its peers
	}
	pthread_cond_broadcast(&w->cv_loop);
	pthread_cond_broadcast(&w->cv_exec);
	pthread_cond_broadcast(&w->cv_write);
	pthread_cond_broadcast(&w->cv_pf);
	pthread_mutex_unlock(&w->lock);
	if (w->have_loop) {
		pthread_join(w->loop, NULL);
	}
	if (w->have_exec) {
		pthread_join(w->exec, NULL);
	}
	for (int i = 0; i < w->nwriters; i++) {
		pthread_join(w->writers[i], NULL);
	}
	if (w->have_pf) {
		pthread_join(w->pf, NULL);
	}
	if (w->have_ld) {
		pthread_join(w->ld, NULL);
	}
	idn_model_close(w->ld_m);
	idn_free(w->pf_blob);
	for (size_t i = 0; i < WRITES_MAX; i++) {
		core_buf_free(&w->wr[i].out);
	}
	for (int i = 0; i < MODELS_MAX; i++) {
		idn_model_close(w->models[i].m);
	}
	for (int i = 0; i < SHARDS_MAX; i++) {
		idn_free(w->shards[i].blob);
	}
	pthread_cond_destroy(&w->cv_loop);
	pthread_cond_destroy(&w->cv_exec);
	pthread_cond_destroy(&w->cv_write);
	pthread_cond_destroy(&w->cv_pf);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
