// SPDX-License-Identifier: MIT
// key.c: the cluster key files: private to their owner, created without
// following links and never over an existing key.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rpc/rpc.h"

int
idn_key_load(const char *path, uint8_t key[IDN_KEY_BYTES])
{
	char text[256];
	struct stat sb;
	if (path == NULL || key == NULL) {
		return IDN_EINVAL;
	}
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return errno == ELOOP ? IDN_EPERM : core_err_from_errno(errno);
	}
	// Group or others may read it, or another user owns it: whoever
	// could read it could forge any message of the cluster.
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    (sb.st_mode & 077) != 0 || sb.st_uid != geteuid()) {
		close(fd);
		return IDN_EPERM;
	}
	ssize_t n = read(fd, text, sizeof(text));
	close(fd);
	if (n < 0) {
		return core_err_from_errno(errno);
	}
	int rv = n == (ssize_t) sizeof(text) ? IDN_EINVAL :
	    wire_key_parse(text, (size_t) n, key);
	memset(text, 0, sizeof(text));
	return rv;
}

int
idn_key_create(const char *path, uint8_t key[IDN_KEY_BYTES])
{
	char hex[2 * IDN_KEY_BYTES + 2];
	if (path == NULL || key == NULL) {
		return IDN_EINVAL;
	}
	char *tmp = core_asprintf("%s.tmp.%d", path, (int) getpid());
	if (tmp == NULL) {
		return IDN_ENOMEM;
	}
	// O_EXCL|O_NOFOLLOW: a file or link planted at the temp name is
	// never written through; link() below never replaces a key.
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd < 0) {
		int rv = core_err_from_errno(errno);
		free(tmp);
		return rv;
	}
	wire_keygen(key);
	wire_key_format(key, hex);
	strcat(hex, "\n");
	int rv = core_write_all(fd, hex, strlen(hex));
	if (rv == IDN_OK && fsync(fd) != 0) {
		rv = core_err_from_errno(errno);
	}
	close(fd);
	if (rv == IDN_OK && link(tmp, path) != 0) {
		rv = core_err_from_errno(errno);
	}
	unlink(tmp);
	free(tmp);
	memset(hex, 0, sizeof(hex));
	return rv;
}
