// SPDX-License-Identifier: MIT
// idx.c: gzipped IDX files (MNIST's format) read into labelled image sets.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/core.h"
#include "model/model.h"

#define IDX_MAX_COUNT 100000000u
#define IDX_MAX_BYTES (2u * 1024 * 1024 * 1024 - 1) // gzread's int limit

static uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 |
	    (uint32_t) p[2] << 8 | p[3];
}

// gz_read_all reads exactly len bytes; a short read or a zlib error (bad
// deflate data, bad CRC) is corruption.
static int
gz_read_all(gzFile f, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		unsigned chunk = (unsigned) CORE_MIN(len, (size_t) 1 << 30);
		int n = gzread(f, p, chunk);
		if (n <= 0) {
			return IDN_ECORRUPT;
		}
		p += n;
		len -= (size_t) n;
	}
	return IDN_OK;
}

// idx_read reads one whole file with the given magic (0x801 labels: 1
// dim, 0x803 images: 3 dims) into *data (malloc'd) and its dims (dims[0]
// is the count). IDN_ENOENT, IDN_ECORRUPT (bad magic, dims, truncated,
// trailing data), IDN_ETOOBIG, IDN_ENOMEM.
static int
idx_read(const char *path, uint32_t magic, uint32_t dims[3],
    uint8_t **data, size_t *len)
{
	uint32_t ndims = magic & 0xff;
	if (path == NULL || (magic != 0x801 && magic != 0x803)) {
		return IDN_EINVAL;
	}
	errno = 0;
	gzFile f = gzopen(path, "rb");
	if (f == NULL) {
		return errno ? core_err_from_errno(errno) : IDN_ENOMEM;
	}
	uint8_t hdr[16];
	uint8_t *buf = NULL;
	size_t total = 1;
	int rv = gz_read_all(f, hdr, 4 + 4 * ndims);
	if (rv == IDN_OK && get_be32(hdr) != magic) {
		rv = IDN_ECORRUPT;
	}
	for (uint32_t i = 0; rv == IDN_OK && i < 3; i++) {
		dims[i] = i < ndims ? get_be32(hdr + 4 + 4 * i) : 1;
		uint32_t max = i == 0 ? IDX_MAX_COUNT : MODEL_MAX_DIM;
		if (dims[i] < 1 || dims[i] > max) {
			rv = IDN_ECORRUPT;
		}
		total *= dims[i];
	}
	if (rv == IDN_OK && total > IDX_MAX_BYTES) {
		rv = IDN_ETOOBIG;
	}
	if (rv == IDN_OK && (buf = malloc(total)) == NULL) {
		rv = IDN_ENOMEM;
	}
	if (rv == IDN_OK) {
		rv = gz_read_all(f, buf, total);
	}
	// Reading past the end checks the gzip trailer and finds extra bytes.
	uint8_t extra;
	if (rv == IDN_OK && gzread(f, &extra, 1) != 0) {
		rv = IDN_ECORRUPT;
	}
	gzclose(f);
	if (rv != IDN_OK) {
		free(buf);
		return rv;
	}
	*data = buf;
	*len = total;
	return IDN_OK;
}

int
idn_dataset_load_idx(const char *images_gz, const char *labels_gz,
    idn_dataset **out)
{
	uint32_t di[3], dl[3];
	idn_dataset *d = NULL;
	uint8_t *images = NULL, *labels = NULL;
	size_t ni, nl;
	int rv = idx_read(images_gz, 0x803, di, &images, &ni);
	if (rv == IDN_OK) {
		rv = idx_read(labels_gz, 0x801, dl, &labels, &nl);
	}
	if (rv == IDN_OK && dl[0] != di[0]) {
		rv = IDN_ECORRUPT;
	}
	if (rv == IDN_OK && (out == NULL ||
	    (d = core_alloc(sizeof(*d))) == NULL)) {
		rv = out == NULL ? IDN_EINVAL : IDN_ENOMEM;
	}
	if (rv != IDN_OK) {
		free(images);
		free(labels);
		return rv;
	}
	d->images = images;
	d->labels = labels;
	d->n = di[0];
	d->channels = 1;
	d->height = di[1];
	d->width = di[2];
	*out = d;
	return IDN_OK;
}

void
idn_dataset_free(idn_dataset *d)
{
	if (d != NULL) {
		free(d->images);
		free(d->labels);
		free(d);
	}
}

