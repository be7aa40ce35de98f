// SPDX-License-Identifier: MIT
// train.c: the coordinator's side of training jobs. A job trains on a
// generation of ranks: `workers` workers (fewer after a failure when no
// replacement is free) that train one model synchronously and exchange
// gradients among themselves (worker/collective), never through the
// coordinator. The coordinator only picks the ranks, hands each its
// lease (rank, world, the peers' addresses) and, when a rank is lost,
// ends the generation: the survivors' leases are dropped, and a new
// generation resumes from the last checkpoint in SDFS. The lease's
// attempt is the generation, its task the rank. All with the lock held.
#include <stdio.h>
#include <string.h>

#include <idunno/sched.h>

#include "coord/coord_int.h"

static bool
active(const coord *c, const cjob *j)
{
	return j->spec.kind == IDN_JOB_TRAIN && c->phase == IDN_PHASE_TRAIN &&
	    (j->state == IDN_JOB_QUEUED || j->state == IDN_JOB_RUNNING);
}

// The rank worker `id` holds in j's generation, or -1.
static int
rank_of(const cjob *j, const char *id)
{
	for (uint32_t r = 0; r < j->nranks; r++) {
		if (strcmp(j->ranks[r].worker, id) == 0) {
			return (int) r;
		}
	}
	return -1;
}

cjob *
coord_train_job_of(const coord *c, const char *id, int *rank)
{
	for (size_t i = 0; i < c->njobs; i++) {
		int r = c->jobs[i]->spec.kind == IDN_JOB_TRAIN ?
		    rank_of(c->jobs[i], id) : -1;
		if (r >= 0) {
			if (rank != NULL) {
				*rank = r;
			}
			return c->jobs[i];
		}
	}
	return NULL;
}

void
coord_train_end(coord *c, cjob *j, int level, const char *why)
{
	if (j->nranks == 0) {
		return;
	}
	for (uint32_t r = 0; r < j->nranks; r++) {
		ledger_lease_put(c->led, j->spec.job, r, j->ranks[r].worker,
		    j->gen, 0);
	}
	coord_note(c, level, "coord: training %s: generation %u of %u ranks "
	    "ends: %s", j->spec.job, j->gen, j->nranks, why);
	j->nranks = 0;
	c->dirty = true;
}

// Workers free to take a rank now: alive, calling this coordinator
// lately with their address, holding no rank. The caller comes first.
static size_t
free_workers(coord *c, cworker *caller, uint64_t now, cworker **out,
    size_t cap)
{
	size_t n = 0;
	out[n++] = caller;
	for (size_t i = 0; i < c->nworkers && n < cap; i++) {
		cworker *w = &c->workers[i];
		if (w != caller && w->alive && w->addr[0] != '\0' &&
		    now < w->last_call_ms + COORD_LEASE_MS / 2 &&
		    coord_train_job_of(c, w->id, NULL) == NULL) {
			out[n++] = w;
		}
	}
	return n;
}

// Forms j's next generation around the calling worker: the job's
// `workers` ranks, or, once it has trained (a failure), as many as are
// free (its global batch is kept: each rank's share grows). A job never
// started waits for all it asked for.
static bool
form(coord *c, cjob *j, cworker *caller, uint64_t now)
{
	cworker *ws[RECORD_RANKS_MAX];
	size_t want = j->spec.workers;
	size_t n = free_workers(c, caller, now, ws, want);
	if (n < want && !j->trained) {
		snprintf(j->wait, sizeof(j->wait), "waiting for %zu workers "
		    "(%zu free)", want, n);
		return false;
	}
	j->wait[0] = '\0';
	j->gen++;
	j->nranks = (uint32_t) n;
	j->trained = true;
	for (size_t r = 0; r < n; r++) {
		crank *k = &j->ranks[r];
		snprintf(k->worker, sizeof(k->worker), "%s", ws[r]->id);
		snprintf(k->addr, sizeof(k->addr), "%s", ws[r]->addr);
		k->expires = now + COORD_LEASE_MS;
		k->issued = false;
		k->finished = false;
		ledger_lease_put(c->led, j->spec.job, (uint32_t) r, k->worker,
		    j->gen, k->expires);
	}
	if (j->state == IDN_JOB_QUEUED) {
		j->state = IDN_JOB_RUNNING;
		ledger_job_state(c->led, j->spec.job, j->state, false, -1, "");
	}
	coord_note(c, IDN_LOG_INFO, "coord: training %s: generation %u on %zu "
	    "workers (after epoch %u)", j->spec.job, j->gen, n, j->epoch);
	return true;
}

static void
issue(cjob *j, uint32_t r, uint64_t now, record_lease *l)
{
	memset(l, 0, sizeof(*l));
	l->spec = j->spec;
	l->task = r;
	l->attempt = j->gen;
	l->world = j->nranks;
	l->expires_ms = j->ranks[r].expires = now + COORD_LEASE_MS;
	j->ranks[r].issued = true;
	size_t off = 0;
	for (uint32_t i = 0; i < j->nranks; i++) {
		int k = snprintf(l->peers + off, sizeof(l->peers) - off, "%s%s",
		    i ? " " : "", j->ranks[i].addr);
		off += k > 0 ? (size_t) k : 0;
	}
}

void
coord_train_lease(coord *c, cworker *w, uint64_t now, record_lease *out,
    size_t *n)
{
	int r;
	cjob *j = coord_train_job_of(c, w->id, &r);
	if (j != NULL) {
		// One rank per worker; its lease goes out once (a lost reply
		// ends the generation by expiry).
		if (!j->ranks[r].issued) {
			issue(j, (uint32_t) r, now, &out[(*n)++]);
		}
		return;
	}
	if (w->addr[0] == '\0') {
		return; // an older worker cannot be reached by its peers
	}
	for (size_t i = 0; i < c->njobs; i++) {
		j = c->jobs[i];
		if (active(c, j) && j->nranks == 0 && form(c, j, w, now)) {
			issue(j, 0, now, &out[(*n)++]);
			return;
		}
	}
}

bool
coord_train_renew(coord *c, cworker *w, const record_held *h, uint64_t now)
{
	cjob *j = coord_find_job(c, h->job);
	int r = j != NULL && j->spec.kind == IDN_JOB_TRAIN ? rank_of(j, w->id) :
	    -1;
	if (r < 0 || (uint32_t) r != h->task || j->gen != h->attempt ||
	    !active(c, j)) {
		return false;
	}
	j->ranks[r].issued = true; // held: the reply reached it
	j->ranks[r].expires = now + COORD_LEASE_MS;
	return true;
}

size_t
coord_train_gone(coord *c, cworker *w)
{
	int r;
	cjob *j = coord_train_job_of(c, w->id, &r);
	if (j == NULL) {
		return 0;
	}
	char why[160];
	snprintf(why, sizeof(why), "rank %d (%s) failed", r, w->id);
	coord_train_end(c, j, IDN_LOG_WARN, why);
	return 1;
}

void
coord_train_expire(coord *c, uint64_t now)
{
	for (size_t i = 0; i < c->njobs; i++) {
		cjob *j = c->jobs[i];
		for (uint32_t r = 0; j->spec.kind == IDN_JOB_TRAIN &&
		    r < j->nranks; r++) {
			if (j->ranks[r].expires <= now && !j->ranks[r].finished) {
				char why[160];
				snprintf(why, sizeof(why), "the lease of rank %u "
				    "(%s) expired", r, j->ranks[r].worker);
				coord_train_end(c, j, IDN_LOG_WARN, why);
				break;
			}
		}
	}
}

// A rank that stopped because a peer or the network failed: the job goes
// on in a new generation. Anything else (the model, the data) fails it.
static bool
peer_failure(int rc)
{
	return rc == IDN_ENET || rc == IDN_ETIMEDOUT || rc == IDN_EUNAVAIL ||
	    rc == IDN_ECLOSED || rc == IDN_ESTALE;
}

void
coord_train_progress(coord *c, cworker *w, const record_progress *p)
{
	cjob *j = coord_find_job(c, p->job);
	if (j == NULL || j->spec.kind != IDN_JOB_TRAIN ||
	    (j->state != IDN_JOB_RUNNING && j->state != IDN_JOB_QUEUED)) {
		return;
	}
	// Rank 0 reports epochs (the others do not evaluate the test set).
	int r = rank_of(j, w->id);
	if (p->epoch > j->epoch && r == 0 && p->attempt == j->gen) {
		j->epoch = p->epoch;
		j->loss = p->loss;
		j->acc = p->acc;
		ledger_train_epoch(c->led, j->spec.job, p->epoch, p->loss, p->acc);
		coord_note(c, IDN_LOG_INFO, "coord: job %s epoch %u/%u on %s: "
		    "loss %.4f accuracy %.4f", j->spec.job, p->epoch,
		    j->spec.epochs, w->id, p->loss, p->acc);
	}
	if (!p->done || r < 0 || p->attempt != j->gen) {
		return; // an older generation's rank, or under way
	}
	if (p->rc == IDN_OK && r != 0) {
		// Its last epoch is done; rank 0's report ends the job once
		// the weights are stored.
		j->ranks[r].finished = true;
		return;
	}
	if (p->rc != IDN_OK && peer_failure(p->rc)) {
		char why[300];
		snprintf(why, sizeof(why), "rank %d stopped: %s", r, p->err);
		coord_train_end(c, j, IDN_LOG_WARN, why);
		return;
	}
	coord_train_end(c, j, p->rc == IDN_OK ? IDN_LOG_INFO : IDN_LOG_WARN,
	    p->rc == IDN_OK ? "the job is done" : p->err);
	j->state = p->rc == IDN_OK ? IDN_JOB_DONE : IDN_JOB_FAILED;
	j->accuracy = p->rc == IDN_OK ? j->acc : -1;
	snprintf(j->err, sizeof(j->err), "%s", p->err);
	ledger_job_state(c->led, j->spec.job, j->state, true, j->accuracy,
	    j->err);
	c->want_checkpoint = true;
	coord_note(c, IDN_LOG_INFO, "coord: job completed: %s %s%s%s",
	    j->spec.job, idn_job_state_name(j->state), j->err[0] ? ": " : "",
	    j->err);
}

void
coord_train_restore(cjob *j, const char *worker, uint32_t rank,
    uint32_t gen, uint64_t expires, uint64_t now)
{
	if (expires == 0 || rank >= RECORD_RANKS_MAX || gen < j->gen) {
		return; // ended, or an older generation's row
	}
	if (gen > j->gen) {
		j->gen = gen;
		j->nranks = 0;
		memset(j->ranks, 0, sizeof(j->ranks));
	}
	j->trained = true;
	crank *k = &j->ranks[rank];
	snprintf(k->worker, sizeof(k->worker), "%s", worker);
	// Its holder has a fresh lease time to say it is alive; the rank's
	// lease went out (the workers hold it), so it is not sent again.
	k->expires = now + COORD_LEASE_MS;
	k->issued = true;
	j->nranks = rank + 1 > j->nranks ? rank + 1 : j->nranks;
}
