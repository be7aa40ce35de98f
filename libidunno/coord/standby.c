// SPDX-License-Identifier: MIT
// standby.c: ledger replication (see standby.h). Ledger records are
// idempotent in order (upserts, deletes, "insert or ignore"), so an image
// taken a little after its position is safe: the changes after the
// position are applied again on top of it.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coord/standby.h"

#define RING 8192              // changes kept for a standby that lags
#define PULL_MAX 512           // changes per reply
#define FOLLOWER_MS 1000       // a standby silent this long is gone

typedef struct {
	uint8_t *data;
	size_t len;
} change;

struct coord_repl {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t gen;
	uint64_t seq;          // changes queued so far (the last one's seq)
	uint64_t acked;        // the standby has every change <= acked
	uint64_t pulled_ms;    // clock ms of the last pull
	char follower[96];
	change ring[RING];     // seq s at ring[s % RING]
};

int
coord_repl_new(coord_repl **out)
{
	coord_repl *r = core_alloc(sizeof(*r));
	if (r == NULL) {
		return IDN_ENOMEM;
	}
	pthread_mutex_init(&r->lock, NULL);
	core_cond_init(&r->cond);
	// A new generation per active coordinator: a standby positioned in
	// another one's stream starts over from an image.
	r->gen = (idn_wall_ms() << 20) ^ ((uint64_t) getpid() << 4) ^
	    core_random();
	*out = r;
	return IDN_OK;
}

void
coord_repl_free(coord_repl *r)
{
	if (r == NULL) {
		return;
	}
	for (size_t i = 0; i < RING; i++) {
		free(r->ring[i].data);
	}
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

void
coord_repl_push(void *arg, const ledger_change *lc)
{
	coord_repl *r = arg;
	wire_wr *w = NULL;
	const uint8_t *data = NULL;
	size_t len = 0;
	uint8_t *copy = NULL;
	if (wire_wr_new(&w) == IDN_OK) {
		coord_change_put(w, lc);
		if (wire_wr_bytes(w, &data, &len) == IDN_OK &&
		    (copy = malloc(len ? len : 1)) != NULL) {
			memcpy(copy, data, len);
		}
	}
	wire_wr_free(w);
	pthread_mutex_lock(&r->lock);
	r->seq++;
	change *c = &r->ring[r->seq % RING];
	free(c->data);
	// Out of memory: the slot stays empty and a standby that needs it
	// gets an image instead.
	c->data = copy;
	c->len = copy ? len : 0;
	pthread_mutex_unlock(&r->lock);
	pthread_cond_broadcast(&r->cond);
}

bool
coord_repl_sync(coord_repl *r)
{
	pthread_mutex_lock(&r->lock);
	uint64_t want = r->seq, end = idn_clock_ms() + REPL_SYNC_MS;
	while (r->acked < want && r->follower[0] != '\0' &&
	    idn_clock_ms() < r->pulled_ms + FOLLOWER_MS &&
	    idn_clock_ms() < end) {
		core_cond_wait_ms(&r->cond, &r->lock, 10);
	}
	// A standby that stopped pulling, however long ago, may have
	// stopped because it promoted itself (this coordinator was paused or
	// cut off): the caller asks it.
	bool ok = r->acked >= want || r->follower[0] == '\0';
	pthread_mutex_unlock(&r->lock);
	return ok;
}

bool
coord_repl_follower(coord_repl *r, char *id, size_t cap)
{
	pthread_mutex_lock(&r->lock);
	bool on = r->follower[0] != '\0' &&
	    idn_clock_ms() < r->pulled_ms + FOLLOWER_MS;
	snprintf(id, cap, "%s", on ? r->follower : "");
	pthread_mutex_unlock(&r->lock);
	return on;
}

int
coord_repl_serve(coord_repl *r, ledger *led, uint64_t epoch,
    const wire_val *req, wire_wr *reply)
{
	char id[96];
	uint64_t gen = 0, from = 0;
	if (wire_get_str(req, "id", id, sizeof(id)) != IDN_OK ||
	    wire_get_u64(req, "gen", &gen) != IDN_OK ||
	    wire_get_u64(req, "from", &from) != IDN_OK) {
		return IDN_EPROTO;
	}
	pthread_mutex_lock(&r->lock);
	bool ok = gen == r->gen && from >= 1 && from <= r->seq + 1 &&
	    r->seq + 1 - from < RING;
	r->pulled_ms = idn_clock_ms();
	snprintf(r->follower, sizeof(r->follower), "%s", id);
	if (ok) {
		r->acked = from - 1 > r->acked ? from - 1 : r->acked;
		pthread_cond_broadcast(&r->cond);
		uint64_t end = idn_clock_ms() + REPL_WAIT_MS;
		while (r->seq < from &&
		    core_cond_wait_until(&r->cond, &r->lock, end) == IDN_OK) {
		}
	}
	for (uint64_t s = from; ok && s <= r->seq && s < from + PULL_MAX; s++) {
		ok = r->ring[s % RING].data != NULL;
	}
	uint64_t seq = r->seq;
	if (ok) {
		uint64_t last = seq < from + PULL_MAX ? seq : from + PULL_MAX - 1;
		wire_map(reply, 4);
		wire_ku64(reply, "epoch", epoch);
		wire_ku64(reply, "gen", r->gen);
		wire_ku64(reply, "seq", last);
		wire_str(reply, "changes");
		wire_arr(reply, (uint32_t) (last + 1 - from));
		for (uint64_t s = from; s <= last; s++) {
			wire_bin(reply, r->ring[s % RING].data, r->ring[s % RING].len);
		}
		pthread_mutex_unlock(&r->lock);
		return IDN_OK;
	}
	gen = r->gen;
	pthread_mutex_unlock(&r->lock);
	// Every change <= seq is in the database already (the stream runs
	// after the write): the image holds at least those.
	void *img = NULL;
	size_t len = 0;
	int rv = ledger_image(led, &img, &len);
	if (rv != IDN_OK) {
		return rv;
	}
	wire_map(reply, 4);
	wire_ku64(reply, "epoch", epoch);
	wire_ku64(reply, "gen", gen);
	wire_ku64(reply, "seq", seq);
	wire_kbin(reply, "image", img, len);
	idn_free(img);
	return IDN_OK;
}

// ---- the standby side

struct coord_replica {
	char path[1024];
	ledger *led;
	uint64_t gen, seq;
};

int
coord_replica_open(const char *path, coord_replica **out)
{
	coord_replica *p = core_alloc(sizeof(*p));
	if (p == NULL) {
		return IDN_ENOMEM;
	}
	snprintf(p->path, sizeof(p->path), "%s", path);
	*out = p;
	return IDN_OK;
}

void
coord_replica_close(coord_replica *p)
{
	if (p != NULL) {
		ledger_close(p->led);
		free(p);
	}
}

ledger *
coord_replica_ledger(coord_replica *p)
{
	return p->led;
}

ledger *
coord_replica_take(coord_replica *p)
{
	ledger *l = p->led;
	p->led = NULL;
	p->gen = p->seq = 0;
	return l;
}

int
coord_replica_pull(coord_replica *p, rpc *r, const char *addr,
    const char *self_id, idn_duration timeout_ms, bool *changed,
    uint64_t *epoch)
{
	wire_wr *body = NULL;
	wire_doc *d = NULL;
	wire_env e;
	*changed = false;
	int rv = wire_wr_new(&body);
	if (rv != IDN_OK) {
		return rv;
	}
	wire_map(body, 3);
	wire_kstr(body, "id", self_id);
	wire_ku64(body, "gen", p->led != NULL ? p->gen : 0);
	wire_ku64(body, "from", p->seq + 1);
	rv = rpc_call(r, addr, "sched.repl", body, timeout_ms, &d, &e);
	wire_wr_free(body);
	uint64_t gen = 0, seq = 0;
	if (rv == IDN_OK && (wire_get_u64(e.body, "gen", &gen) ||
	                        wire_get_u64(e.body, "seq", &seq) ||
	                        wire_get_u64(e.body, "epoch", epoch))) {
		rv = IDN_EPROTO;
	}
	const uint8_t *img;
	size_t len, n = 0;
	if (rv == IDN_OK && wire_get_bin(e.body, "image", &img, &len) ==
	    IDN_OK) {
		ledger_close(p->led);
		p->led = NULL;
		rv = ledger_open_image(p->path, img, len, &p->led);
		p->gen = rv == IDN_OK ? gen : 0;
		p->seq = rv == IDN_OK ? seq : 0;
		*changed = rv == IDN_OK;
	} else if (rv == IDN_OK) {
		const wire_val *ch = wire_get(e.body, "changes");
		rv = p->led != NULL && gen == p->gen && wire_as_arr(ch, &n) ==
		    IDN_OK ? IDN_OK : IDN_EPROTO;
		for (size_t i = 0; rv == IDN_OK && i < n; i++) {
			rv = wire_as_bin(wire_at(ch, i), &img, &len);
			rv = rv ? rv : coord_change_apply(p->led, img, len);
			p->seq += rv == IDN_OK;
		}
		*changed = n > 0;
		if (rv != IDN_OK) {
			p->gen = 0; // start over from an image
		}
	}
	wire_doc_free(d);
	return rv;
}
