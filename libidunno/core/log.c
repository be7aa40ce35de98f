// SPDX-License-Identifier: MIT
// log.c: the library's one logger: formats lines and hands them to the
// host's hook with no library lock held, or queues them until the lock
// held is released.
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

static bool
wanted(const core_logger *lg, int level)
{
	return lg != NULL && lg->fn != NULL && level >= lg->min_level;
}

static void
emit(const core_logger *lg, int level, const char *line)
{
	// base.h: the hook runs with no library lock held.
	assert(core_locks_held == 0);
	lg->fn(lg->arg, level, line);
}

void
core_vlogf(const core_logger *lg, int level, const char *fmt, va_list ap)
{
	if (!wanted(lg, level)) {
		return;
	}
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	emit(lg, level, line);
}

void
core_logf(const core_logger *lg, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	core_vlogf(lg, level, fmt, ap);
	va_end(ap);
}

void
core_logq_add(core_logq *q, int level, const char *fmt, ...)
{
	if (!wanted(q->lg, level)) {
		return;
	}
	// A line that does not fit (out of memory) is dropped whole.
	size_t len = q->lines.len;
	uint8_t lv = (uint8_t) level;
	va_list ap;
	va_start(ap, fmt);
	if (core_buf_append(&q->lines, &lv, 1) != IDN_OK ||
	    core_buf_vprintf(&q->lines, fmt, ap) != IDN_OK ||
	    core_buf_append(&q->lines, "", 1) != IDN_OK) {
		q->lines.len = len;
	}
	va_end(ap);
}

void
core_logq_free(core_logq *q)
{
	core_buf_free(&q->lines);
}

void
core_unlock_log(pthread_mutex_t *m, core_logq *q)
{
	if (q->lines.len == 0 || core_locks_held > 1) {
		core_unlock(m);
		return;
	}
	// q belongs to what m guards: once m is released it may be closed.
	core_buf lines = q->lines;
	const core_logger *lg = q->lg;
	q->lines = (core_buf){0};
	core_unlock(m);
	for (size_t at = 0; at < lines.len;) {
		const char *line = (const char *) lines.data + at + 1;
		emit(lg, lines.data[at], line);
		at += strlen(line) + 2;
	}
	core_buf_free(&lines);
}

int
core_cond_wait_log(pthread_cond_t *cv, pthread_mutex_t *m, core_logq *q,
    uint64_t deadline_ms)
{
	if (q->lines.len == 0 || core_locks_held > 1) {
		return core_cond_wait_until(cv, m, deadline_ms);
	}
	core_unlock_log(m, q);
	core_lock(m);
	return IDN_OK;
}
