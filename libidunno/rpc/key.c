// SPDX-License-Identifier: MIT
// key.c: the cluster key files.
#include <string.h>

#include "rpc/rpc.h"

int
idn_key_load(const char *path, uint8_t key[IDN_KEY_BYTES])
{
	core_buf b = {0};
	if (path == NULL || key == NULL) {
		return IDN_EINVAL;
	}
	int rv = core_file_read(path, 256, &b);
	if (rv == IDN_OK) {
		rv = wire_key_parse((const char *) b.data, b.len, key);
	}
	core_buf_free(&b);
	return rv == IDN_ETOOBIG ? IDN_EINVAL : rv;
}

int
idn_key_create(const char *path, uint8_t key[IDN_KEY_BYTES])
{
	char hex[2 * IDN_KEY_BYTES + 2];
	if (path == NULL || key == NULL) {
		return IDN_EINVAL;
	}
	wire_keygen(key);
	wire_key_format(key, hex);
	strcat(hex, "\n");
	return core_file_write_atomic(path, hex, strlen(hex));
}
