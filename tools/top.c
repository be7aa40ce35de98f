// SPDX-License-Identifier: MIT
// top.c: `idunno top`: a full-screen live view of the cluster from the
// coordinator's event stream (a snapshot a second), drawn with plain
// escape codes; follows a new coordinator when the stream goes quiet.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <idunno/idunno.h>

#include "top.h"

#define QUIET_MS 3000  // no snapshot for this long: find the coordinator
#define WAIT_MS 200    // one wait for an event; keys are read between

static struct termios saved;
static bool raw_on, screen_on;

static void
restore(void)
{
	if (screen_on) {
		// Cursor back, main screen back.
		fputs("\033[?25h\033[?1049l", stdout);
		fflush(stdout);
		screen_on = false;
	}
	if (raw_on) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
		raw_on = false;
	}
}

static void
on_signal(int sig)
{
	restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
enter_screen(void)
{
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
		struct termios t = saved;
		t.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
		t.c_cc[VMIN] = 0;
		t.c_cc[VTIME] = 0;
		raw_on = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
	}
	if (isatty(STDOUT_FILENO)) {
		// Alternate screen, cursor hidden.
		fputs("\033[?1049h\033[?25l", stdout);
		screen_on = true;
	}
	atexit(restore);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
}

// Draws text from the top left, each line cut to the terminal's width,
// then the status line.
static void
draw(const char *text, const char *status)
{
	struct winsize ws = {0};
	int cols = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ?
	    ws.ws_col : 200;
	int rows = ws.ws_row > 0 ? ws.ws_row : 1000;
	if (screen_on) {
		fputs("\033[H", stdout);
	}
	int row = 0;
	for (const char *p = text; *p != '\0' && row < rows - 2; row++) {
		size_t n = strcspn(p, "\n");
		fwrite(p, 1, n < (size_t) cols ? n : (size_t) cols, stdout);
		fputs(screen_on ? "\033[K\n" : "\n", stdout);
		p += n + (p[n] == '\n');
	}
	printf("\n%s%s\n", status, screen_on ? "\033[K\033[J" : "");
	fflush(stdout);
}

static bool
quit_key(void)
{
	struct pollfd p = {STDIN_FILENO, POLLIN, 0};
	char ch;
	while (raw_on && poll(&p, 1, 0) == 1 &&
	    read(STDIN_FILENO, &ch, 1) == 1) {
		if (ch == 'q' || ch == 'Q') {
			return true;
		}
	}
	return false;
}

// Subscribes to the coordinator's stream: asks the node where it is.
static int
follow(const top_opts *o, idn_client **cc, idn_events **ev, char *where,
    size_t cap)
{
	idn_client *base;
	char node[IDN_ADDR_MAX];
	int rv = o->pick_node(o->pick_arg, node, sizeof(node));
	if (rv != IDN_OK || (rv = idn_client_open(node, o->key, &base)) !=
	    IDN_OK) {
		return rv != IDN_OK ? rv : IDN_EUNAVAIL;
	}
	idn_client_set_timeout(base, 2000);
	rv = idn_sched_where(base, where, cap);
	idn_client_close(base);
	if (rv == IDN_OK && (rv = idn_client_open(where, o->key, cc)) ==
	    IDN_OK) {
		idn_client_set_timeout(*cc, 2000);
		if ((rv = idn_events_open(*cc, ev)) == IDN_OK) {
			idn_events_want_stats(*ev, true);
		} else {
			idn_client_close(*cc);
			*cc = NULL;
		}
	}
	return rv;
}

int
top_run(const top_opts *o)
{
	if (!o->once) {
		enter_screen();
	}
	idn_client *cc = NULL;
	idn_events *ev = NULL;
	char where[IDN_ADDR_MAX] = "";
	char status[256];
	uint64_t last = idn_clock_ms();
	uint64_t start = last;
	bool drawn = false;
	for (;;) {
		if (!o->once && quit_key()) {
			break;
		}
		if (ev == NULL) {
			int rv = follow(o, &cc, &ev, where, sizeof(where));
			if (rv != IDN_OK) {
				if (o->once && idn_clock_ms() - start > 10000) {
					fprintf(stderr, "idunno top: no "
					    "coordinator: %s\n",
					    idn_strerror(rv));
					return 1;
				}
				snprintf(status, sizeof(status), "looking for "
				    "the coordinator (%s)  q quits",
				    idn_strerror(rv));
				if (!o->once) {
					draw(drawn ? "" : "IDunno\n", status);
				}
				usleep(WAIT_MS * 1000);
				continue;
			}
			last = idn_clock_ms();
		}
		idn_event e;
		int rv = idn_events_next(ev, WAIT_MS, &e);
		if (rv == IDN_OK && e.kind == IDN_EVENT_STATS) {
			last = idn_clock_ms();
			snprintf(status, sizeof(status), "following the "
			    "coordinator at %s  q quits", where);
			draw(e.text, o->once ? "" : status);
			drawn = true;
			if (o->once) {
				break;
			}
		} else if (idn_clock_ms() - last > QUIET_MS) {
			// A takeover, or the coordinator is gone: ask again.
			idn_events_close(ev);
			idn_client_close(cc);
			ev = NULL;
			cc = NULL;
		}
	}
	idn_events_close(ev);
	idn_client_close(cc);
	restore();
	return 0;
}
