// SPDX-License-Identifier: MIT
// progress.c: the progress line, on stderr so that piped output stays
// clean.
#include <stdio.h>
#include <unistd.h>

#include <idunno/base.h>

#include "progress.h"

void
progress_start(progress *p, const char *what, bool quiet)
{
	*p = (progress){.on = !quiet && isatty(STDERR_FILENO), .what = what,
	    .start_ms = idn_clock_ms(), .first_done = UINT64_MAX};
}

static void
human(char *buf, size_t cap, double v)
{
	const char *unit[] = {"", "k", "M", "G", "T"};
	int u = 0;
	while (v >= 1000 && u < 4) {
		v /= 1000;
		u++;
	}
	snprintf(buf, cap, u ? "%.1f%s" : "%.0f%s", v, unit[u]);
}

void
progress_update(progress *p, uint64_t done, uint64_t total, bool force)
{
	uint64_t now = idn_clock_ms();
	if (!p->on || (!force && now - p->last_draw_ms < 250)) {
		return;
	}
	p->last_draw_ms = now;
	if (p->first_done == UINT64_MAX) {
		p->first_done = done;
		p->start_ms = now;
	}
	double s = (double) (now - p->start_ms) / 1000.0;
	double rate = s > 0.5 ? (double) (done - p->first_done) / s : 0;
	char d[16], t[16], r[16], eta[32] = "-";
	human(d, sizeof(d), (double) done);
	human(t, sizeof(t), (double) total);
	human(r, sizeof(r), rate);
	if (rate > 0 && total > done) {
		unsigned left = (unsigned) ((double) (total - done) / rate);
		snprintf(eta, sizeof(eta), "%um%02us", left / 60, left % 60);
	}
	fprintf(stderr, "\r%s/%s %s (%.0f%%), %s/s, ETA %s\033[K", d, t,
	    p->what, total ? 100.0 * (double) done / (double) total : 0, r,
	    eta);
	fflush(stderr);
}

void
progress_report(void *arg, uint64_t done, uint64_t total)
{
	progress_update(arg, done, total, false);
}

void
progress_end(progress *p)
{
	if (p->on && p->first_done != UINT64_MAX) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
}
