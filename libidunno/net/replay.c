// SPDX-License-Identifier: MIT
// replay.c: refuses a request seen before, or one too old to remember.
// Every request carries (ts, nonce) under its MAC; we remember the ones of
// the last window in a ring (arrival order) indexed by a chained hash.
#include <stdlib.h>

#include "net/replay.h"

#define RING (1u << 16)
#define BUCKETS (1u << 17)

typedef struct {
	uint64_t key;
	uint64_t ts_ms;
	int32_t next; // next slot in the same bucket, -1 ends
} slot;

struct replay {
	pthread_mutex_t lock;
	uint64_t window_ms;
	slot ring[RING];
	uint32_t head; // next slot to fill (the oldest once full)
	uint32_t used;
	int32_t bucket[BUCKETS];
};

static uint32_t
hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (uint32_t) (k & (BUCKETS - 1));
}

int
replay_open(uint64_t window_ms, replay **out)
{
	replay *r = core_alloc(sizeof(*r));
	if (r == NULL) {
		return IDN_ENOMEM;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->window_ms = window_ms;
	for (uint32_t i = 0; i < BUCKETS; i++) {
		r->bucket[i] = -1;
	}
	*out = r;
	return IDN_OK;
}

void
replay_close(replay *r)
{
	if (r != NULL) {
		pthread_mutex_destroy(&r->lock);
		free(r);
	}
}

static void
unlink_slot(replay *r, int32_t idx)
{
	int32_t *p = &r->bucket[hash(r->ring[idx].key)];
	while (*p != -1 && *p != idx) {
		p = &r->ring[*p].next;
	}
	if (*p == idx) {
		*p = r->ring[idx].next;
	}
}

int
replay_check(replay *r, uint64_t ts_ms, uint64_t nonce, uint64_t now_ms)
{
	if (ts_ms + r->window_ms < now_ms || ts_ms > now_ms + r->window_ms) {
		return IDN_ESTALE;
	}
	uint64_t key = nonce ^ (ts_ms * 0x9e3779b97f4a7c15ULL);
	int rv = IDN_OK;
	pthread_mutex_lock(&r->lock);
	for (int32_t i = r->bucket[hash(key)]; i != -1; i = r->ring[i].next) {
		if (r->ring[i].key == key && r->ring[i].ts_ms == ts_ms) {
			rv = IDN_EEXIST;
			break;
		}
	}
	if (rv == IDN_OK) {
		// Overwrite the oldest slot; past the window it is forgotten
		// anyway, and under a flood the newest are what matter.
		int32_t idx = (int32_t) r->head;
		if (r->used == RING) {
			unlink_slot(r, idx);
		} else {
			r->used++;
		}
		r->ring[idx] = (slot){key, ts_ms, r->bucket[hash(key)]};
		r->bucket[hash(key)] = idx;
		r->head = (r->head + 1) & (RING - 1);
	}
	pthread_mutex_unlock(&r->lock);
	return rv;
}
