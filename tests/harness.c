// SPDX-License-Identifier: MIT
// harness.c: temp folders, ports, polling, and running the tools.
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static char tmpdirs[16][PATH_MAX];
static int ntmp;
static int reaper_fd = -1; // write end of the pipe to the reaper

// The reaper is a process of its own session: it outlives the test however
// the test ends (an assertion, a signal, meson's timeout, SIGKILL), and
// when the pipe from the test closes it runs the clean-up commands the test
// registered, last first. Commands come one per line.
static void
reaper_main(int fd)
{
	char *cmds[64];
	int n = 0;
	char line[2 * PATH_MAX];
	FILE *f = fdopen(fd, "r");
	setsid();
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (n < (int) (sizeof(cmds) / sizeof(cmds[0]))) {
			cmds[n++] = strdup(line);
		}
	}
	while (n-- > 0) {
		if (cmds[n] != NULL && system(cmds[n]) != 0) {
			fprintf(stderr, "clean-up failed: %s", cmds[n]);
		}
	}
	_exit(0);
}

void
th_at_death(const char *fmt, ...)
{
	if (reaper_fd < 0) {
		int fd[2];
		if (pipe2(fd, O_CLOEXEC) != 0) {
			return;
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(fd[1]);
			reaper_main(fd[0]);
		}
		close(fd[0]);
		if (pid < 0) {
			close(fd[1]);
			return;
		}
		reaper_fd = fd[1];
	}
	va_list ap;
	va_start(ap, fmt);
	vdprintf(reaper_fd, fmt, ap);
	va_end(ap);
	dprintf(reaper_fd, "\n");
}

static void
remove_tmpdirs(void)
{
	for (int i = 0; i < ntmp; i++) {
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%.4000s'", tmpdirs[i]);
		if (system(cmd) != 0) {
			fprintf(stderr, "could not remove %s\n", tmpdirs[i]);
		}
	}
}

const char *
th_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	if (ntmp == (int) (sizeof(tmpdirs) / sizeof(tmpdirs[0]))) {
		return NULL;
	}
	char *p = tmpdirs[ntmp];
	snprintf(p, PATH_MAX, "%.4000s/idn-test-XXXXXX",
	    base && *base ? base : "/tmp");
	if (mkdtemp(p) == NULL) {
		return NULL;
	}
	if (getenv("IDN_TEST_KEEP") == NULL) {
		if (ntmp == 0) {
			atexit(remove_tmpdirs);
		}
		th_at_death("rm -rf '%.4000s'", p);
	}
	ntmp++;
	return p;
}

int
th_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *) &sa, &len) == 0) {
		port = ntohs(sa.sin_port);
	}
	if (fd >= 0) {
		close(fd);
	}
	return port;
}

uint64_t
th_now_ms(void)
{
	return idn_clock_ms();
}

uint64_t
th_log_ms(const char *line)
{
	struct tm tm = {0};
	unsigned ms = 0;
	if (sscanf(line, "%d-%d-%dT%d:%d:%d.%uZ", &tm.tm_year, &tm.tm_mon,
	        &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
		return 0;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (uint64_t) timegm(&tm) * 1000 + ms;
}

bool
th_wait(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
	uint64_t deadline = th_now_ms() + (uint64_t) timeout_ms;
	for (;;) {
		if (cond(arg)) {
			return true;
		}
		if (th_now_ms() >= deadline) {
			return false;
		}
		usleep(20 * 1000);
	}
}

const char *
th_bin_dir(void)
{
	static char dir[PATH_MAX];
	const char *d = getenv("IDUNNO_BIN_DIR");
	if (d && *d) {
		return d;
	}
	ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 16);
	char *slash;
	if (n <= 0 || (dir[n] = '\0', slash = strrchr(dir, '/')) == NULL) {
		return "./tools";
	}
	strcpy(slash, "/../tools");
	return dir;
}

int
th_read_file(const char *path, size_t max_bytes, uint8_t **data,
    size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		return IDN_ENOENT;
	}
	int rv = fseek(f, 0, SEEK_END) == 0 ? IDN_OK : IDN_ESYS;
	long size = rv == IDN_OK ? ftell(f) : -1;
	uint8_t *buf = NULL;
	if (size < 0 || (size_t) size > max_bytes) {
		rv = size < 0 ? IDN_ESYS : IDN_ETOOBIG;
	} else if ((buf = malloc((size_t) size + 1)) == NULL) {
		rv = IDN_ENOMEM;
	} else if (fseek(f, 0, SEEK_SET) != 0 ||
	    fread(buf, 1, (size_t) size, f) != (size_t) size) {
		rv = IDN_ESYS;
	}
	fclose(f);
	if (rv != IDN_OK) {
		free(buf);
		return rv;
	}
	*data = buf;
	*len = (size_t) size;
	return IDN_OK;
}

static int
run(char **out, const char *cmd)
{
	FILE *p = popen(cmd, "r");
	if (p == NULL) {
		return -1;
	}
	char *buf = NULL;
	size_t len = 0, cap = 0;
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), p)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			char *q = realloc(buf, cap);
			if (q == NULL) {
				break;
			}
			buf = q;
		}
		memcpy(buf + len, tmp, n);
		len += n;
	}
	if (buf == NULL) {
		buf = calloc(1, 1);
	} else {
		buf[len] = '\0';
	}
	int st = pclose(p);
	if (out != NULL) {
		*out = buf;
	} else {
		free(buf);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
th_vrun(char **out, const char *prefix, const char *fmt, va_list ap)
{
	char *args, *cmd;
	if (vasprintf(&args, fmt, ap) < 0) {
		return -1;
	}
	int r = asprintf(&cmd, "%s%s", prefix, args);
	free(args);
	if (r < 0) {
		return -1;
	}
	int rv = run(out, cmd);
	free(cmd);
	return rv;
}

int
th_sh(char **out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rv = th_vrun(out, "", fmt, ap);
	va_end(ap);
	return rv;
}

int
th_cli(char **out, const char *fmt, ...)
{
	char prefix[4200];
	snprintf(prefix, sizeof(prefix), "'%.4000s/idunno' ", th_bin_dir());
	va_list ap;
	va_start(ap, fmt);
	int rv = th_vrun(out, prefix, fmt, ap);
	va_end(ap);
	return rv;
}

double
th_num_after(const char *text, const char *key)
{
	const char *p = text ? strstr(text, key) : NULL;
	if (p == NULL || strncmp(p + strlen(key), "null", 4) == 0) {
		return -1;
	}
	return strtod(p + strlen(key), NULL);
}

char *
th_sdfs_text(idn_client *c, const char *name)
{
	void *data = NULL;
	size_t len = 0;
	IDN_PASS(idn_sdfs_get_buf(c, name, 0, &data, &len, NULL));
	char *text = malloc(len + 1);
	assert_non_null(text);
	memcpy(text, data, len);
	text[len] = '\0';
	idn_free(data);
	return text;
}

void
th_exactly_once(const char *text, size_t len, unsigned n)
{
	unsigned next = 0;
	for (const char *p = text; p < text + len; next++) {
		assert_int_equal(strtoul(p, NULL, 10), next);
		const char *nl = memchr(p, '\n', (size_t) (text + len - p));
		assert_non_null(nl);
		p = nl + 1;
	}
	assert_int_equal(next, n);
}
