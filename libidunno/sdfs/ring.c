// SPDX-License-Identifier: MIT
// ring.c: consistent hashing of names onto members. Each member owns
// SDFS_VNODES tokens, the hash of "<addr>#<i>"; a name belongs to the first
// distinct members clockwise from the hash of the name. Adding or removing
// a member moves only the names next to its tokens. Tokens come from the
// address, not the id (which has the incarnation's start time in it): a
// node restarted on its address and data keeps its names, where new
// tokens moved a tenth of all copies on every restart. Two members of one
// address (a rejoin seen before the old incarnation left) share the
// first one's tokens.
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdfs/sdfs_int.h"

typedef struct {
	uint64_t pos;
	size_t member;
} token;

struct sdfs_ring {
	size_t nmembers;
	size_t ntokens;
	token *tokens;
};

static uint64_t
hash64(const void *p, size_t n)
{
	uint8_t h[16];
	uint64_t v = 0;
	crypto_generichash(h, sizeof(h), p, n, NULL, 0);
	for (int i = 0; i < 8; i++) {
		v = (v << 8) | h[i];
	}
	return v;
}

static int
by_pos(const void *a, const void *b)
{
	const token *x = a, *y = b;
	if (x->pos != y->pos) {
		return x->pos < y->pos ? -1 : 1;
	}
	// Equal positions (astronomically rare) are broken by member index;
	// the members array is sorted by id on every node, so this too is
	// the same everywhere.
	return x->member < y->member ? -1 : x->member > y->member;
}

int
sdfs_ring_build(const idn_member *members, size_t n, sdfs_ring **out)
{
	sdfs_ring *r = core_alloc(sizeof(*r));
	if (r == NULL) {
		return IDN_ENOMEM;
	}
	r->nmembers = n;
	r->ntokens = n * SDFS_VNODES;
	if ((r->tokens = core_alloc(sizeof(token) * r->ntokens)) == NULL) {
		free(r);
		return IDN_ENOMEM;
	}
	r->ntokens = 0;
	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		for (size_t k = 0; k < i && !dup; k++) {
			dup = strcmp(members[k].addr, members[i].addr) == 0;
		}
		for (int v = 0; v < SDFS_VNODES && !dup; v++) {
			char buf[IDN_ADDR_MAX + 16];
			int len = snprintf(buf, sizeof(buf), "%s#%d",
			    members[i].addr, v);
			token *t = &r->tokens[r->ntokens++];
			t->pos = hash64(buf, (size_t) len);
			t->member = i;
		}
	}
	qsort(r->tokens, r->ntokens, sizeof(token), by_pos);
	*out = r;
	return IDN_OK;
}

void
sdfs_ring_free(sdfs_ring *r)
{
	if (r != NULL) {
		free(r->tokens);
		free(r);
	}
}

void
sdfs_ring_lookup(const sdfs_ring *r, const char *name, size_t *idx,
    size_t want, size_t *count)
{
	size_t got = 0;
	want = CORE_MIN(want, r->nmembers);
	if (want == 0) {
		*count = 0;
		return;
	}
	uint64_t pos = hash64(name, strlen(name));
	// First token at or after pos (binary search), wrapping around.
	size_t lo = 0, hi = r->ntokens;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->tokens[mid].pos < pos) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	for (size_t k = 0; k < r->ntokens && got < want; k++) {
		size_t m = r->tokens[(lo + k) % r->ntokens].member;
		bool seen = false;
		for (size_t j = 0; j < got; j++) {
			seen = seen || idx[j] == m;
		}
		if (!seen) {
			idx[got++] = m;
		}
	}
	*count = got;
}
