// SPDX-License-Identifier: MIT
// progress.h: one self-rewriting progress line on a terminal (done/total,
// rate, ETA); silent when stderr is not a terminal or when quiet.
#ifndef IDN_TOOLS_PROGRESS_H
#define IDN_TOOLS_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct progress {
	bool on;
	const char *what;   // "queries", "bytes"...
	uint64_t start_ms;
	uint64_t first_done;
	uint64_t last_draw_ms;
} progress;

// progress_start: on only when stderr is a terminal and not quiet.
void progress_start(progress *p, const char *what, bool quiet);
// progress_update redraws at most 4 times a second (force: now).
void progress_update(progress *p, uint64_t done, uint64_t total, bool force);
// progress_report is progress_update as an idn_progress_fn (arg: the
// progress), for the library's progress hooks.
void progress_report(void *arg, uint64_t done, uint64_t total);
// progress_end clears the line; a later update draws it again (so a
// caller clears it before printing a line of its own).
void progress_end(progress *p);

#endif
