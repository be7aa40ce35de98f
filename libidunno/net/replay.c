// SPDX-License-Identifier: MIT
// replay.c: refuses a request seen before, or one too old to remember.
// Every request carries (ts, nonce) under its MAC; we remember the ones of
// the last window in a ring (arrival order) indexed by a chained hash.
// Indexes are stored plus one, so that calloc's zeroes mean "none" and
// untouched pages stay unallocated.
#include <stdlib.h>

#include "net/replay.h"

typedef struct {
	uint64_t key;
	uint64_t ts_ms;
	uint32_t next; // next slot + 1 in the same bucket, 0 ends
} slot;

struct replay {
	pthread_mutex_t lock;
	uint64_t window_ms;
	uint32_t mask; // ring size - 1; buckets: twice the ring
	uint32_t head; // next slot to fill (the oldest once full)
	uint32_t used;
	slot *ring;
	uint32_t *bucket; // slot + 1, 0: empty
};

static uint32_t
hash(const replay *r, uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (uint32_t) (k & ((uint64_t) r->mask * 2 + 1));
}

int
replay_open(uint64_t window_ms, uint32_t capacity, replay **out)
{
	uint32_t size = 16;
	while (size < capacity && size < (1u << 30)) {
		size <<= 1;
	}
	replay *r = core_alloc(sizeof(*r));
	if (r == NULL) {
		return IDN_ENOMEM;
	}
	r->ring = core_alloc(sizeof(slot) * size);
	r->bucket = core_alloc(sizeof(uint32_t) * 2 * (size_t) size);
	if (r->ring == NULL || r->bucket == NULL) {
		free(r->ring);
		free(r->bucket);
		free(r);
		return IDN_ENOMEM;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->window_ms = window_ms;
	r->mask = size - 1;
	*out = r;
	return IDN_OK;
}

void
replay_close(replay *r)
{
	if (r != NULL) {
		pthread_mutex_destroy(&r->lock);
		free(r->ring);
		free(r->bucket);
		free(r);
	}
}

static void
unlink_slot(replay *r, uint32_t idx)
{
	uint32_t *p = &r->bucket[hash(r, r->ring[idx].key)];
	while (*p != 0 && *p != idx + 1) {
		p = &r->ring[*p - 1].next;
	}
	if (*p == idx + 1) {
		*p = r->ring[idx].next;
	}
}

static bool
expired(const replay *r, uint64_t ts_ms, uint64_t now_ms)
{
	return ts_ms + r->window_ms < now_ms;
}

int
replay_check(replay *r, uint64_t ts_ms, uint64_t nonce, uint64_t now_ms)
{
	if (expired(r, ts_ms, now_ms) || ts_ms > now_ms + r->window_ms) {
		return IDN_ESTALE;
	}
	uint64_t key = nonce ^ (ts_ms * 0x9e3779b97f4a7c15ULL);
	uint32_t h = hash(r, key);
	int rv = IDN_OK;
	pthread_mutex_lock(&r->lock);
	for (uint32_t i = r->bucket[h]; i != 0; i = r->ring[i - 1].next) {
		if (r->ring[i - 1].key == key &&
		    r->ring[i - 1].ts_ms == ts_ms) {
			rv = IDN_EEXIST;
			break;
		}
	}
	uint32_t idx = r->head;
	if (rv == IDN_OK && r->used > r->mask) {
		// Full: the oldest arrival may go only once its timestamp
		// left the window (a replay of it is then refused as stale).
		if (expired(r, r->ring[idx].ts_ms, now_ms)) {
			unlink_slot(r, idx);
			r->used--;
		} else {
			rv = IDN_EBUSY;
		}
	}
	if (rv == IDN_OK) {
		r->used++;
		r->ring[idx] = (slot){key, ts_ms, r->bucket[h]};
		r->bucket[h] = idx + 1;
		r->head = (r->head + 1) & r->mask;
	}
	pthread_mutex_unlock(&r->lock);
	return rv;
}
