// SPDX-License-Identifier: MIT
// log.c: the per-node line log and its grep.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"

struct nlog {
	int fd;
	pthread_mutex_t lock;
	char id[IDN_ID_MAX];
	char *path;
	uint64_t size; // bytes in the current file (lock)
	uint64_t max_bytes;
	int keep;
};

int
nlog_open(const char *path, nlog **out)
{
	nlog *l = core_alloc(sizeof(*l));
	if (l == NULL || (l->path = core_strdup(path)) == NULL) {
		free(l);
		return IDN_ENOMEM;
	}
	l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (l->fd < 0) {
		int rv = core_err_from_errno(errno);
		free(l->path);
		free(l);
		return rv;
	}
	struct stat st;
	l->size = fstat(l->fd, &st) == 0 ? (uint64_t) st.st_size : 0;
	l->max_bytes = NLOG_MAX_BYTES;
	l->keep = NLOG_KEEP;
	pthread_mutex_init(&l->lock, NULL);
	snprintf(l->id, sizeof(l->id), "-");
	*out = l;
	return IDN_OK;
}

void
nlog_close(nlog *l)
{
	if (l != NULL) {
		close(l->fd);
		pthread_mutex_destroy(&l->lock);
		free(l->path);
		free(l);
	}
}

void
nlog_set_id(nlog *l, const char *node_id)
{
	pthread_mutex_lock(&l->lock);
	snprintf(l->id, sizeof(l->id), "%s", node_id);
	pthread_mutex_unlock(&l->lock);
}

void
nlog_set_rotate(nlog *l, uint64_t max_bytes, int keep)
{
	pthread_mutex_lock(&l->lock);
	l->max_bytes = max_bytes;
	l->keep = keep < 1 ? 1 : keep;
	pthread_mutex_unlock(&l->lock);
}

// Under l->lock: path.(keep-1) -> path.keep, ..., path -> path.1, and a
// new file. On any failure the log goes on in the file it has.
static void
rotate(nlog *l)
{
	size_t cap = strlen(l->path) + 16;
	char *from = core_alloc(cap), *to = core_alloc(cap);
	if (from == NULL || to == NULL) {
		free(from);
		free(to);
		return;
	}
	for (int i = l->keep - 1; i >= 1; i--) {
		snprintf(from, cap, "%s.%d", l->path, i);
		snprintf(to, cap, "%s.%d", l->path, i + 1);
		(void) rename(from, to); // may not exist yet
	}
	snprintf(to, cap, "%s.1", l->path);
	int fd = -1;
	if (rename(l->path, to) == 0) {
		fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
	}
	if (fd >= 0) {
		close(l->fd);
		l->fd = fd;
		l->size = 0;
	}
	free(from);
	free(to);
}

const char *
nlog_path(const nlog *l)
{
	return l->path;
}

void
nlog_write(nlog *l, int level, const char *event)
{
	static const char *const levels[] = {"DEBUG", "INFO", "WARN", "ERROR"};
	char line[1400];
	uint64_t ms = idn_wall_ms();
	time_t sec = (time_t) (ms / 1000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	char ts[32];
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	pthread_mutex_lock(&l->lock);
	int n = snprintf(line, sizeof(line), "%s.%03uZ %s %s %s\n", ts,
	    (unsigned) (ms % 1000), l->id,
	    levels[level < 0 || level > 3 ? 1 : level], event);
	if (n > (int) sizeof(line) - 1) {
		n = (int) sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	// Newlines inside an event would forge extra log lines.
	for (int i = 0; i < n - 1; i++) {
		if (line[i] == '\n' || line[i] == '\r') {
			line[i] = ' ';
		}
	}
	if (l->max_bytes > 0 && l->size > 0 &&
	    l->size + (uint64_t) n > l->max_bytes) {
		rotate(l);
	}
	ssize_t w = write(l->fd, line, (size_t) n);
	l->size += w > 0 ? (uint64_t) w : 0; // a full disk must not stop us
	pthread_mutex_unlock(&l->lock);
}

int
nlog_grep(const char *path, const char *pattern, bool regex,
    size_t max_lines, void (*fn)(void *arg, const char *line, size_t len),
    void *arg, uint64_t *count)
{
	regex_t re;
	if (regex && regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
		return IDN_EINVAL;
	}
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		if (regex) {
			regfree(&re);
		}
		return core_err_from_errno(errno);
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	*count = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		if (len > 0 && line[len - 1] == '\n') {
			line[--len] = '\0';
		}
		bool hit = regex ? regexec(&re, line, 0, NULL, 0) == 0 :
		    strstr(line, pattern) != NULL;
		if (hit && (*count)++ < max_lines) {
			fn(arg, line, (size_t) len);
		}
	}
	free(line);
	fclose(f);
	if (regex) {
		regfree(&re);
	}
	return IDN_OK;
}

#define GREP_MAX_LINES 20000

// Lines shown by one grep reply: at most GREP_MAX_LINES, and at most
// GREP_MAX_BYTES of them so the reply stays under the message limit.
#define GREP_MAX_BYTES (4u << 20)

typedef struct {
	wire_wr *w; // the lines, an array body written after the count
	size_t n;
	size_t bytes;
} grep_acc;

static void
grep_line(void *arg, const char *line, size_t len)
{
	grep_acc *a = arg;
	if (a->bytes + len <= GREP_MAX_BYTES) {
		wire_strn(a->w, line, len);
		a->n++;
		a->bytes += len;
	}
}

int
nlog_on_grep(void *arg, const wire_env *req, wire_wr *reply)
{
	nlog *l = arg;
	char pattern[512];
	bool regex = false;
	uint64_t count = 0;
	if (wire_get_str(req->body, "p", pattern, sizeof(pattern)) ||
	    wire_as_bool(wire_get(req->body, "re"), &regex)) {
		return IDN_EPROTO;
	}
	grep_acc acc = {0};
	int rv = wire_wr_new(&acc.w);
	if (rv == IDN_OK) {
		rv = nlog_grep(l->path, pattern, regex,
		    GREP_MAX_LINES, grep_line, &acc, &count);
	}
	const uint8_t *lines;
	size_t len;
	if (rv == IDN_OK && (rv = wire_wr_bytes(acc.w, &lines, &len)) ==
	    IDN_OK) {
		wire_map(reply, 3);
		wire_ku64(reply, "count", count);
		char id[IDN_ID_MAX];
		pthread_mutex_lock(&l->lock);
		snprintf(id, sizeof(id), "%s", l->id);
		pthread_mutex_unlock(&l->lock);
		wire_kstr(reply, "id", id);
		wire_str(reply, "lines");
		wire_arr(reply, (uint32_t) acc.n);
		wire_raw(reply, lines, len);
	}
	wire_wr_free(acc.w);
	return rv;
}
