// SPDX-License-Identifier: MIT
// log.c: formats library log events and hands them to the host's hook.
#include <stdio.h>

#include "core/core.h"

void
core_logf(const core_logger *lg, int level, const char *fmt, ...)
{
	if (lg == NULL || lg->fn == NULL || level < lg->min_level) {
		return;
	}
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	lg->fn(lg->arg, level, line);
}
