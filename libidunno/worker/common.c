// SPDX-License-Identifier: MIT
// common.c: what every thread of the worker uses: its log line and a
// timed wait on its condition. It calls nothing else of worker/.
#include <stdarg.h>
#include <stdio.h>

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
	core_cond_wait_ms(cv, &w->lock, ms);
}
