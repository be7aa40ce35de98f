// SPDX-License-Identifier: MIT
// name.c: SDFS name validation, the name's on-disk key, the checksums.
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "sdfs/sdfs_int.h"

_Static_assert(sizeof(crypto_generichash_state) <= sizeof(sdfs_hash),
    "sdfs_hash too small");

const char *
sdfs_name_error(const char *name)
{
	if (name == NULL || name[0] == '\0') {
		return "empty name";
	}
	size_t len = strlen(name);
	if (len > IDN_SDFS_NAME_MAX) {
		return "name longer than 1024 bytes";
	}
	if (name[0] == '/') {
		return "absolute name (leading '/')";
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char) name[i];
		if (c < 0x20 || c == 0x7f) {
			return "control character in name";
		}
	}
	// Segment rules: no empty, "." or ".." segment (no "a//b", no
	// trailing '/').
	const char *seg = name;
	for (;;) {
		const char *end = strchr(seg, '/');
		size_t sl = end ? (size_t) (end - seg) : strlen(seg);
		if (sl == 0) {
			return "empty path segment in name";
		}
		if ((sl == 1 && seg[0] == '.') ||
		    (sl == 2 && seg[0] == '.' && seg[1] == '.')) {
			return "'.' or '..' segment in name";
		}
		if (end == NULL) {
			break;
		}
		seg = end + 1;
	}
	return NULL;
}

const char *
idn_sdfs_name_error(const char *name)
{
	return sdfs_name_error(name);
}

void
sdfs_name_key(const char *name, char key[33])
{
	uint8_t h[16];
	crypto_generichash(h, sizeof(h), (const uint8_t *) name, strlen(name),
	    NULL, 0);
	sodium_bin2hex(key, 33, h, sizeof(h));
}

void
sdfs_chunk_sum(const void *data, size_t len, uint8_t out[SDFS_CSUM_BYTES])
{
	crypto_generichash(out, SDFS_CSUM_BYTES, data, len, NULL, 0);
}

void
sdfs_file_sum(const uint8_t *csums, uint32_t nchunks,
    uint8_t out[IDN_SDFS_SUM_BYTES])
{
	crypto_generichash(out, IDN_SDFS_SUM_BYTES,
	    nchunks ? csums : (const uint8_t *) "",
	    (size_t) nchunks * SDFS_CSUM_BYTES, NULL, 0);
}

void
sdfs_hash_init_len(sdfs_hash *h, size_t outlen)
{
	h->outlen = outlen;
	crypto_generichash_init((crypto_generichash_state *) h->opaque, NULL, 0,
	    outlen);
}

void
sdfs_hash_init(sdfs_hash *h)
{
	sdfs_hash_init_len(h, IDN_SDFS_SUM_BYTES);
}

void
sdfs_hash_update(sdfs_hash *h, const void *data, size_t len)
{
	crypto_generichash_update((crypto_generichash_state *) h->opaque, data,
	    len);
}

void
sdfs_hash_final(sdfs_hash *h, uint8_t *out)
{
	crypto_generichash_final((crypto_generichash_state *) h->opaque, out,
	    h->outlen);
}

void
idn_sdfs_sum_hex(const uint8_t sum[IDN_SDFS_SUM_BYTES],
    char hex[2 * IDN_SDFS_SUM_BYTES + 1])
{
	sodium_bin2hex(hex, 2 * IDN_SDFS_SUM_BYTES + 1, sum,
	    IDN_SDFS_SUM_BYTES);
}
