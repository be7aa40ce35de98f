// SPDX-License-Identifier: MIT
// sync.c: condition variables on the monotonic clock, their timed waits,
// and the count of locks each thread holds.
#include <errno.h>
#include <time.h>

#include "core/core.h"

_Thread_local int core_locks_held;

int
core_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	int rv = pthread_condattr_init(&a);
	if (rv == 0) {
		rv = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
		if (rv == 0) {
			rv = pthread_cond_init(cv, &a);
		}
		pthread_condattr_destroy(&a);
	}
	return rv == 0 ? IDN_OK : core_err_from_errno(rv);
}

int
core_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *m,
    uint64_t deadline_ms)
{
	if (idn_clock_ms() >= deadline_ms) {
		return IDN_ETIMEDOUT;
	}
	// idn_clock_ms reads CLOCK_MONOTONIC, the clock of cv.
	struct timespec ts = {.tv_sec = (time_t) (deadline_ms / 1000),
	    .tv_nsec = (long) (deadline_ms % 1000) * 1000000L};
	return pthread_cond_timedwait(cv, m, &ts) == ETIMEDOUT ?
	    IDN_ETIMEDOUT : IDN_OK;
}

int
core_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *m, int64_t ms)
{
	return core_cond_wait_until(cv, m, idn_clock_ms() +
	    (uint64_t) (ms > 0 ? ms : 0));
}
