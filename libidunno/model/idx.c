// SPDX-License-Identifier: MIT
// idx.c: gzipped IDX files (MNIST's format) and the dataset shard layout
// that stores them in SDFS.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/core.h"
#include "model/model.h"

#define IDX_MAX_COUNT 100000000u
#define IDX_MAX_BYTES (2u * 1024 * 1024 * 1024 - 1) // gzread's int limit
#define SHARD_MAX_NAME 1024
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

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

int
model_idx_read(const char *path, uint32_t magic, uint32_t dims[3],
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
model_dataset_load(const char *images_gz, const char *labels_gz,
    model_dataset *out)
{
	uint32_t di[3], dl[3];
	uint8_t *images = NULL, *labels = NULL;
	size_t ni, nl;
	int rv = model_idx_read(images_gz, 0x803, di, &images, &ni);
	if (rv == IDN_OK) {
		rv = model_idx_read(labels_gz, 0x801, dl, &labels, &nl);
	}
	if (rv == IDN_OK && dl[0] != di[0]) {
		rv = IDN_ECORRUPT;
	}
	if (rv != IDN_OK) {
		free(images);
		free(labels);
		return rv;
	}
	out->images = images;
	out->labels = labels;
	out->n = di[0];
	out->rows = di[1];
	out->cols = di[2];
	return IDN_OK;
}

void
model_dataset_free(model_dataset *d)
{
	if (d != NULL) {
		free(d->images);
		free(d->labels);
		memset(d, 0, sizeof(*d));
	}
}

// shard_crc is the CRC-32 of every byte of a shard but its CRC field
// (offsets 32..35), so the header is covered as well as the payload.
static uint32_t
shard_crc(const uint8_t *b, size_t len)
{
	uLong crc = crc32(0L, b, 32);
	// crc32 takes uInt lengths: feed it in pieces.
	for (size_t off = 36; off < len;) {
		uInt n = (uInt) CORE_MIN(len - off, (size_t) 1 << 30);
		crc = crc32(crc, b + off, n);
		off += n;
	}
	return (uint32_t) crc;
}

int
model_shard_encode(uint64_t first, uint32_t count, uint32_t channels,
    uint32_t height, uint32_t width, const uint8_t *labels,
    const uint8_t *images, uint8_t **out, size_t *len)
{
	size_t pix = (size_t) count * channels * height * width;
	size_t total = MODEL_SHARD_HEADER + count + pix;
	uint8_t *b = malloc(total);
	if (b == NULL) {
		return IDN_ENOMEM;
	}
	memcpy(b, MODEL_SHARD_MAGIC, 8);
	core_put_le32(b + 8, count);
	core_put_le32(b + 12, channels);
	core_put_le32(b + 16, height);
	core_put_le32(b + 20, width);
	core_put_le32(b + 24, (uint32_t) first);
	core_put_le32(b + 28, (uint32_t) (first >> 32));
	core_put_le32(b + 36, 0);
	memcpy(b + MODEL_SHARD_HEADER, labels, count);
	memcpy(b + MODEL_SHARD_HEADER + count, images, pix);
	core_put_le32(b + 32, shard_crc(b, total));
	*out = b;
	*len = total;
	return IDN_OK;
}

int
idn_dataset_shard_decode(const void *data, size_t len,
    idn_dataset_shard *out)
{
	const uint8_t *b = data;
	if (b == NULL || out == NULL) {
		return IDN_EINVAL;
	}
	if (len < MODEL_SHARD_HEADER || memcmp(b, MODEL_SHARD_MAGIC, 8) != 0 ||
	    core_get_le(b + 36, 4) != 0) {
		return IDN_ECORRUPT;
	}
	idn_dataset_shard s = {
		.count = (uint32_t) core_get_le(b + 8, 4),
		.channels = (uint32_t) core_get_le(b + 12, 4),
		.height = (uint32_t) core_get_le(b + 16, 4),
		.width = (uint32_t) core_get_le(b + 20, 4),
		.first = core_get_le(b + 24, 8),
	};
	if (s.count < 1 || s.channels < 1 ||
	    s.channels > IDN_MODEL_MAX_CHANNELS || s.height < 1 ||
	    s.height > MODEL_MAX_DIM || s.width < 1 ||
	    s.width > MODEL_MAX_DIM) {
		return IDN_ECORRUPT;
	}
	// Bounded above, so no overflow: count < 2^32, image < 2^26.
	uint64_t want = MODEL_SHARD_HEADER + (uint64_t) s.count * (1 +
	    (uint64_t) s.channels * s.height * s.width);
	if (want != len) {
		return IDN_ECORRUPT;
	}
	if (shard_crc(b, len) != core_get_le(b + 32, 4)) {
		return IDN_ECORRUPT;
	}
	s.labels = b + MODEL_SHARD_HEADER;
	s.images = s.labels + s.count;
	*out = s;
	return IDN_OK;
}

int
idn_dataset_shard_name(const char *prefix, uint32_t index, char *buf,
    size_t size)
{
	if (prefix == NULL || prefix[0] == '\0' || buf == NULL) {
		return IDN_EINVAL;
	}
	int n = snprintf(buf, size, "%s/%06u", prefix, index);
	return n < 0 || (size_t) n >= size ? IDN_ETOOBIG : IDN_OK;
}

static int
put_manifest(const char *prefix, const model_dataset *d, uint32_t shard_size,
    uint32_t shards, idn_dataset_put_fn put, void *arg)
{
	char name[SHARD_MAX_NAME];
	int n = snprintf(name, sizeof(name), "%s/manifest", prefix);
	if (n < 0 || (size_t) n >= sizeof(name)) {
		return IDN_ETOOBIG;
	}
	char *text = core_asprintf("count = %u\nshard_size = %u\nshards = %u\n"
	    "input = 1x%ux%u\n", d->n, shard_size, shards, d->rows, d->cols);
	if (text == NULL) {
		return IDN_ENOMEM;
	}
	int rv = put(arg, name, text, strlen(text));
	free(text);
	return rv;
}

int
idn_dataset_shards(const char *images_gz, const char *labels_gz,
    const char *prefix, uint32_t shard_size, idn_dataset_put_fn put,
    void *arg)
{
	if (images_gz == NULL || labels_gz == NULL || prefix == NULL ||
	    prefix[0] == '\0' || strlen(prefix) > SHARD_MAX_NAME - 32 ||
	    shard_size == 0 || put == NULL) {
		return IDN_EINVAL;
	}
	model_dataset d;
	int rv = model_dataset_load(images_gz, labels_gz, &d);
	if (rv != IDN_OK) {
		return rv;
	}
	size_t img = (size_t) d.rows * d.cols;
	uint32_t shards = 0;
	for (uint32_t first = 0; rv == IDN_OK && first < d.n;
	    first += shard_size) {
		uint32_t count = CORE_MIN(shard_size, d.n - first);
		char name[SHARD_MAX_NAME];
		uint8_t *blob = NULL;
		size_t len = 0;
		rv = idn_dataset_shard_name(prefix, shards, name,
		    sizeof(name));
		if (rv == IDN_OK) {
			rv = model_shard_encode(first, count, 1, d.rows,
			    d.cols, d.labels + first, d.images + first * img,
			    &blob, &len);
		}
		if (rv == IDN_OK) {
			rv = put(arg, name, blob, len);
		}
		free(blob);
		shards++;
		if (d.n - first <= shard_size) {
			break;
		}
	}
	// The manifest goes last: its presence means every shard is stored.
	if (rv == IDN_OK) {
		rv = put_manifest(prefix, &d, shard_size, shards, put, arg);
	}
	model_dataset_free(&d);
	return rv;
}

int
idn_dataset_import_fashion_mnist(const char *dir, const char *prefix,
    uint32_t shard_size, idn_dataset_put_fn put, void *arg)
{
	static const char *const sets[2][3] = {
		{"train", "train-images-idx3-ubyte.gz",
		    "train-labels-idx1-ubyte.gz"},
		{"test", "t10k-images-idx3-ubyte.gz",
		    "t10k-labels-idx1-ubyte.gz"},
	};
	if (prefix == NULL || prefix[0] == '\0') {
		return IDN_EINVAL;
	}
	if (dir == NULL) {
		dir = FASHION_DIR;
	}
	int rv = IDN_OK;
	for (int i = 0; rv == IDN_OK && i < 2; i++) {
		char *img = core_asprintf("%s/%s", dir, sets[i][1]);
		char *lab = core_asprintf("%s/%s", dir, sets[i][2]);
		char *pre = core_asprintf("%s/%s", prefix, sets[i][0]);
		rv = img && lab && pre ? idn_dataset_shards(img, lab, pre,
		    shard_size, put, arg) : IDN_ENOMEM;
		free(img);
		free(lab);
		free(pre);
	}
	return rv;
}
