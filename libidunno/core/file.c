// SPDX-License-Identifier: MIT
// file.c: small whole-file reads, atomic writes, mkdir -p.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

int
core_file_read(const char *path, size_t max_bytes, core_buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return core_err_from_errno(errno);
	}
	uint8_t tmp[8192];
	int rv = IDN_OK;
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			rv = core_err_from_errno(errno);
			break;
		}
		if (n == 0) {
			break;
		}
		if (out->len + (size_t) n > max_bytes) {
			rv = IDN_ETOOBIG;
			break;
		}
		if ((rv = core_buf_append(out, tmp, (size_t) n)) != IDN_OK) {
			break;
		}
	}
	close(fd);
	return rv;
}

int
core_write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return core_err_from_errno(errno);
		}
		p += n;
		len -= (size_t) n;
	}
	return IDN_OK;
}

int
core_read_full(int fd, void *buf, size_t cap, int64_t off, size_t *got)
{
	uint8_t *out = buf;
	size_t done = 0;
	while (done < cap) {
		ssize_t n = off < 0 ? read(fd, out + done, cap - done) :
		    pread(fd, out + done, cap - done, (off_t) off + (off_t) done);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return core_err_from_errno(errno);
		}
		if (n == 0) {
			break;
		}
		done += (size_t) n;
	}
	*got = done;
	return IDN_OK;
}

int
core_file_write_atomic(const char *path, const void *data, size_t len)
{
	char *tmp = core_asprintf("%s.tmp.%d", path, (int) getpid());
	if (tmp == NULL) {
		return IDN_ENOMEM;
	}
	int rv = IDN_OK;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rv = core_err_from_errno(errno);
		free(tmp);
		return rv;
	}
	rv = core_write_all(fd, data, len);
	if (rv == IDN_OK && fsync(fd) != 0) {
		rv = core_err_from_errno(errno);
	}
	close(fd);
	if (rv == IDN_OK && rename(tmp, path) != 0) {
		rv = core_err_from_errno(errno);
	}
	if (rv != IDN_OK) {
		unlink(tmp);
	}
	free(tmp);
	return rv;
}

int
core_mkdir_p(const char *path)
{
	char *p = core_strdup(path);
	if (p == NULL) {
		return IDN_ENOMEM;
	}
	int rv = IDN_OK;
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0700) != 0 && errno != EEXIST) {
				rv = core_err_from_errno(errno);
				break;
			}
			*s = c;
			if (c == '\0') {
				break;
			}
		}
	}
	free(p);
	if (rv == IDN_OK && access(path, W_OK) != 0) {
		rv = core_err_from_errno(errno);
	}
	return rv;
}
