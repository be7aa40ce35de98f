// SPDX-License-Identifier: MIT
// common.c: what every thread of the worker uses: a timed wait on its
// condition that logs the lines queued under the lock. It calls nothing
// else of worker/.
#include "worker/worker_int.h"

void
worker_wait_ms(worker *w, pthread_cond_t *cv, int ms)
{
	core_cond_wait_log(cv, &w->lock, &w->logq,
	    idn_clock_ms() + (uint64_t) ms);
}
