// SPDX-License-Identifier: MIT
// dataset.c: datasets in SDFS: the shard blob, IDX files cut into shards,
// an MNIST-layout directory imported, a set read back.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <idunno/sdfs.h>

#include "catalog/catalog.h"
#include "core/core.h"
#include "model/model.h"

#define SHARD_MAX_NAME 1024

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
catalog_shard_encode(uint64_t first, uint32_t count, uint32_t channels,
    uint32_t height, uint32_t width, const uint8_t *labels,
    const uint8_t *images, uint8_t **out, size_t *len)
{
	size_t pix = (size_t) count * channels * height * width;
	size_t total = CATALOG_SHARD_HEADER + count + pix;
	uint8_t *b = malloc(total);
	if (b == NULL) {
		return IDN_ENOMEM;
	}
	memcpy(b, CATALOG_SHARD_MAGIC, 8);
	core_put_le32(b + 8, count);
	core_put_le32(b + 12, channels);
	core_put_le32(b + 16, height);
	core_put_le32(b + 20, width);
	core_put_le32(b + 24, (uint32_t) first);
	core_put_le32(b + 28, (uint32_t) (first >> 32));
	core_put_le32(b + 36, 0);
	memcpy(b + CATALOG_SHARD_HEADER, labels, count);
	memcpy(b + CATALOG_SHARD_HEADER + count, images, pix);
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
	if (len < CATALOG_SHARD_HEADER || memcmp(b, CATALOG_SHARD_MAGIC, 8) != 0 ||
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
	uint64_t want = CATALOG_SHARD_HEADER + (uint64_t) s.count * (1 +
	    (uint64_t) s.channels * s.height * s.width);
	if (want != len) {
		return IDN_ECORRUPT;
	}
	if (shard_crc(b, len) != core_get_le(b + 32, 4)) {
		return IDN_ECORRUPT;
	}
	s.labels = b + CATALOG_SHARD_HEADER;
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
put_manifest(const char *prefix, const idn_dataset *d, uint32_t shard_size,
    uint32_t shards, idn_dataset_put_fn put, void *arg)
{
	char name[SHARD_MAX_NAME];
	int n = snprintf(name, sizeof(name), "%s/manifest", prefix);
	if (n < 0 || (size_t) n >= sizeof(name)) {
		return IDN_ETOOBIG;
	}
	char *text = core_asprintf("count = %zu\nshard_size = %u\nshards = %u\n"
	    "input = %ux%ux%u\n", d->n, shard_size, shards, d->channels,
	    d->height, d->width);
	if (text == NULL) {
		return IDN_ENOMEM;
	}
	int rv = put(arg, name, text, strlen(text));
	free(text);
	return rv;
}

// Progress of an import: images stored of total.
typedef struct import_progress {
	idn_progress_fn fn;
	void *arg;
	uint64_t done;
	uint64_t total;
} import_progress;

static bool
shards_args_ok(const char *prefix, uint32_t shard_size,
    idn_dataset_put_fn put)
{
	return prefix != NULL && prefix[0] != '\0' &&
	    strlen(prefix) <= SHARD_MAX_NAME - 32 && shard_size > 0 &&
	    put != NULL;
}

// put_shards hands put() every shard of d, then its manifest; p (may be
// NULL) hears of each stored shard.
static int
put_shards(const idn_dataset *d, const char *prefix, uint32_t shard_size,
    idn_dataset_put_fn put, void *arg, import_progress *p)
{
	int rv = IDN_OK;
	size_t img = (size_t) d->channels * d->height * d->width;
	uint32_t shards = 0;
	for (size_t first = 0; rv == IDN_OK && first < d->n;
	    first += shard_size) {
		uint32_t count = (uint32_t) CORE_MIN(shard_size, d->n - first);
		char name[SHARD_MAX_NAME];
		uint8_t *blob = NULL;
		size_t len = 0;
		rv = idn_dataset_shard_name(prefix, shards, name,
		    sizeof(name));
		if (rv == IDN_OK) {
			rv = catalog_shard_encode(first, count, d->channels,
			    d->height, d->width, d->labels + first,
			    d->images + first * img, &blob, &len);
		}
		if (rv == IDN_OK) {
			rv = put(arg, name, blob, len);
		}
		if (rv == IDN_OK && p != NULL && p->fn != NULL) {
			p->done += count;
			p->fn(p->arg, p->done, p->total);
		}
		free(blob);
		shards++;
		if (d->n - first <= shard_size) {
			break;
		}
	}
	// The manifest goes last: its presence means every shard is stored.
	if (rv == IDN_OK) {
		rv = put_manifest(prefix, d, shard_size, shards, put, arg);
	}
	return rv;
}

int
idn_dataset_shards(const char *images_gz, const char *labels_gz,
    const char *prefix, uint32_t shard_size, idn_dataset_put_fn put,
    void *arg)
{
	if (images_gz == NULL || labels_gz == NULL ||
	    !shards_args_ok(prefix, shard_size, put)) {
		return IDN_EINVAL;
	}
	idn_dataset *d;
	int rv = idn_dataset_load_idx(images_gz, labels_gz, &d);
	if (rv == IDN_OK) {
		rv = put_shards(d, prefix, shard_size, put, arg, NULL);
		idn_dataset_free(d);
	}
	return rv;
}

int
catalog_import_dir(const char *dir, const char *prefix, uint32_t shard_size,
    idn_dataset_put_fn put, void *arg, idn_progress_fn fn, void *fn_arg)
{
	static const char *const sets[2][3] = {
		{"train", "train-images-idx3-ubyte.gz",
		    "train-labels-idx1-ubyte.gz"},
		{"test", "t10k-images-idx3-ubyte.gz",
		    "t10k-labels-idx1-ubyte.gz"},
	};
	if (dir == NULL || !shards_args_ok(prefix, shard_size, put)) {
		return IDN_EINVAL;
	}
	// Both sets are read first, so that progress knows the total.
	idn_dataset *d[2] = {NULL, NULL};
	import_progress p = {.fn = fn, .arg = fn_arg};
	int rv = IDN_OK;
	for (int i = 0; rv == IDN_OK && i < 2; i++) {
		char *img = core_asprintf("%s/%s", dir, sets[i][1]);
		char *lab = core_asprintf("%s/%s", dir, sets[i][2]);
		rv = img && lab ? idn_dataset_load_idx(img, lab, &d[i]) :
		    IDN_ENOMEM;
		p.total += rv == IDN_OK ? d[i]->n : 0;
		free(img);
		free(lab);
	}
	for (int i = 0; rv == IDN_OK && i < 2; i++) {
		char *pre = core_asprintf("%s/%s", prefix, sets[i][0]);
		rv = pre ? put_shards(d[i], pre, shard_size, put, arg, &p) :
		    IDN_ENOMEM;
		free(pre);
	}
	idn_dataset_free(d[0]);
	idn_dataset_free(d[1]);
	return rv;
}

static int
put_sdfs(void *arg, const char *name, const void *data, size_t len)
{
	return idn_sdfs_put_buf(arg, name, data, len, NULL);
}

int
idn_dataset_import_mnist(idn_client *c, const char *dir, const char *prefix,
    uint32_t shard_size)
{
	return idn_dataset_import_mnist_progress(c, dir, prefix, shard_size,
	    NULL, NULL);
}

int
idn_dataset_import_mnist_progress(idn_client *c, const char *dir,
    const char *prefix, uint32_t shard_size, idn_progress_fn fn, void *arg)
{
	return c == NULL ? IDN_EINVAL : catalog_import_dir(dir, prefix,
	    shard_size, put_sdfs, c, fn, arg);
}

// Reads "key = value" from a manifest; 0 if absent.
static uint64_t
manifest_u64(const char *text, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = text; p != NULL && *p; p = strchr(p, '\n')) {
		p += *p == '\n';
		if (strncmp(p, key, kl) == 0 && (p[kl] == ' ' || p[kl] == '=')) {
			const char *eq = strchr(p, '=');
			return eq ? strtoull(eq + 1, NULL, 10) : 0;
		}
	}
	return 0;
}

int
idn_dataset_fetch(idn_client *c, const char *prefix, size_t limit,
    idn_dataset **out)
{
	char name[512];
	void *man = NULL;
	size_t len;
	if (c == NULL || prefix == NULL || out == NULL ||
	    (size_t) snprintf(name, sizeof(name), "%s/manifest", prefix) >=
	        sizeof(name)) {
		return IDN_EINVAL;
	}
	int rv = idn_sdfs_get_buf(c, name, 0, &man, &len, NULL);
	if (rv != IDN_OK) {
		return rv;
	}
	uint64_t count = manifest_u64(man, "count");
	uint64_t shards = manifest_u64(man, "shards");
	idn_free(man);
	if (count == 0 || shards == 0 || shards > count) {
		return IDN_ECORRUPT;
	}
	size_t want = limit > 0 && limit < count ? limit : (size_t) count;
	idn_dataset *d = core_alloc(sizeof(*d));
	if (d == NULL || (d->labels = core_alloc(want)) == NULL) {
		idn_dataset_free(d);
		return IDN_ENOMEM;
	}
	size_t item = 0;
	for (uint32_t i = 0; rv == IDN_OK && i < shards && d->n < want; i++) {
		void *blob = NULL;
		idn_dataset_shard sh;
		rv = idn_dataset_shard_name(prefix, i, name, sizeof(name));
		if (rv == IDN_OK) {
			rv = idn_sdfs_get_buf(c, name, 0, &blob, &len, NULL);
		}
		if (rv == IDN_OK) {
			rv = idn_dataset_shard_decode(blob, len, &sh);
		}
		// Shards must tile the set in order, all of one shape.
		if (rv == IDN_OK && (sh.first != d->n || (i > 0 &&
		    (sh.channels != d->channels || sh.height != d->height ||
		     sh.width != d->width)))) {
			rv = IDN_ECORRUPT;
		}
		if (rv == IDN_OK && i == 0) {
			d->channels = sh.channels;
			d->height = sh.height;
			d->width = sh.width;
			item = (size_t) sh.channels * sh.height * sh.width;
			if ((d->images = core_alloc(want * item)) == NULL) {
				rv = IDN_ENOMEM;
			}
		}
		if (rv == IDN_OK) {
			size_t take = CORE_MIN((size_t) sh.count, want - d->n);
			memcpy(d->labels + d->n, sh.labels, take);
			memcpy(d->images + d->n * item, sh.images, take * item);
			d->n += take;
		}
		idn_free(blob);
	}
	if (rv == IDN_OK && d->n != want) {
		rv = IDN_ECORRUPT;
	}
	if (rv != IDN_OK) {
		idn_dataset_free(d);
		return rv;
	}
	*out = d;
	return IDN_OK;
}
