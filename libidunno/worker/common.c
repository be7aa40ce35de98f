// SPDX-License-Identifier: MIT
// common.c: what every thread of the worker uses: its log line and a
// timed wait on its condition. It calls nothing else of worker/.
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "worker/worker_int.h"

void
worker_log(worker *w, int level, const char *fmt, ...)
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

void
worker_wait_ms(worker *w, pthread_cond_t *cv, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long) ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(cv, &w->lock, &ts);
}
