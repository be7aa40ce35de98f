// SPDX-License-Identifier: MIT
// clock.c: monotonic and wall clocks, sleeping, a cheap shared PRNG.
#include <pthread.h>
#include <time.h>

#include "core/core.h"

uint64_t
idn_clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

uint64_t
idn_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

void
core_sleep_ms(uint32_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
	    .tv_nsec = (long) (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0) {
	}
}

static pthread_mutex_t rng_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t rng_state;

uint32_t
core_random(void)
{
	// xorshift64*, seeded lazily from the clock; only for probe order
	// and jitter, never for keys.
	pthread_mutex_lock(&rng_lock);
	if (rng_state == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		rng_state = ((uint64_t) ts.tv_nsec << 20) ^
		    (uint64_t) ts.tv_sec ^ (uint64_t) (uintptr_t) &ts;
		rng_state |= 1;
	}
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	uint32_t r = (uint32_t) ((rng_state * 2685821657736338717ULL) >> 32);
	pthread_mutex_unlock(&rng_lock);
	return r;
}
