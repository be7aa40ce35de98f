// SPDX-License-Identifier: MIT
// sdfs_test.c: names, ring placement, the local store (versions,
// checksums, corruption, tombstones, retention) and the SDFS records.
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "sdfs/sdfs_int.h"
#include "sdfs/server.h"

static void
test_names(void **st)
{
	static const char *good[] = {"a", "models/lenet.pt", "a/b/c",
	    "x..y", ".hidden", "a/.b", "with space", "ünïcode", "a-b_c.1"};
	static const char *bad[] = {"", "/abs", "..", ".", "a/../b",
	    "a/./b", "a//b", "a/", "../x", "x/..", "tab\there", "nl\n",
	    "del\x7f"};
	for (size_t i = 0; i < CORE_ARRAY_LEN(good); i++) {
		const char *why = idn_sdfs_name_error(good[i]);
		if (why != NULL) {
			fail_msg("'%s' refused: %s", good[i], why);
		}
	}
	for (size_t i = 0; i < CORE_ARRAY_LEN(bad); i++) {
		assert_non_null(idn_sdfs_name_error(bad[i]));
	}
	assert_non_null(idn_sdfs_name_error(NULL));
	char *lng = malloc(IDN_SDFS_NAME_MAX + 2);
	memset(lng, 'a', IDN_SDFS_NAME_MAX + 1);
	lng[IDN_SDFS_NAME_MAX + 1] = '\0';
	assert_non_null(idn_sdfs_name_error(lng));
	lng[IDN_SDFS_NAME_MAX] = '\0';
	assert_null(idn_sdfs_name_error(lng));
	free(lng);
	// Distinct names, distinct keys; keys are hex only (no escape).
	char k1[33], k2[33];
	sdfs_name_key("a/b", k1);
	sdfs_name_key("a/c", k2);
	assert_string_not_equal(k1, k2);
	assert_int_equal(strspn(k1, "0123456789abcdef"), 32);
}

static idn_member *
make_members(size_t n, uint64_t salt)
{
	idn_member *m = calloc(n, sizeof(*m));
	for (size_t i = 0; i < n; i++) {
		snprintf(m[i].addr, sizeof(m[i].addr), "127.0.0.1:%zu",
		    7000 + i);
		snprintf(m[i].id, sizeof(m[i].id), "%s:%" PRIu64, m[i].addr,
		    1700000000000 + salt + i);
	}
	return m;
}

// Name f's replica sets in both rings.
static void
lookup2(const sdfs_ring *r1, const sdfs_ring *r2, int f, size_t a[4],
    size_t *na, size_t b[4], size_t *nb)
{
	char name[32];
	snprintf(name, sizeof(name), "file%d", f);
	sdfs_ring_lookup(r1, name, a, 4, na);
	sdfs_ring_lookup(r2, name, b, 4, nb);
}

static void
test_ring(void **st)
{
	idn_member *m = make_members(10, 0);
	sdfs_ring *r1, *r2;
	IDN_PASS(sdfs_ring_build(m, 10, &r1));
	IDN_PASS(sdfs_ring_build(m, 10, &r2));
	size_t primary[10] = {0};
	for (int f = 0; f < 500; f++) {
		size_t a[4], b[4], na, nb;
		lookup2(r1, r2, f, a, &na, b, &nb);
		assert_int_equal(na, 4);
		assert_int_equal(nb, 4);
		assert_memory_equal(a, b, sizeof(a));
		for (int i = 0; i < 4; i++) {
			for (int j = i + 1; j < 4; j++) {
				assert_int_not_equal(a[i], a[j]);
			}
		}
		primary[a[0]]++;
	}
	// Every node is primary of a fair share (500 names, 10 nodes).
	for (int i = 0; i < 10; i++) {
		assert_true(primary[i] > 15 && primary[i] < 110);
	}
	sdfs_ring_free(r2);
	// Consistency: removing node 3 changes only sets that held it, and
	// the survivors keep their order.
	idn_member *less = calloc(9, sizeof(*less));
	memcpy(less, m, 3 * sizeof(*m));
	memcpy(less + 3, m + 4, 6 * sizeof(*m));
	IDN_PASS(sdfs_ring_build(less, 9, &r2));
	for (int f = 0; f < 500; f++) {
		size_t a[4], b[4], na, nb;
		lookup2(r1, r2, f, a, &na, b, &nb);
		size_t k = 0;
		for (size_t i = 0; i < 4; i++) {
			if (a[i] == 3) {
				continue;
			}
			const char *want = m[a[i]].id;
			assert_string_equal(less[b[k]].id, want);
			k++;
		}
	}
	sdfs_ring_free(r2);
	// A node restarted (a new id on the same address) keeps its names,
	// and its old incarnation, while still listed, adds no replica.
	idn_member *again = make_members(11, 500);
	again[10] = m[10 - 1];
	IDN_PASS(sdfs_ring_build(again, 11, &r2));
	for (int f = 0; f < 500; f++) {
		size_t a[4], b[4], na, nb;
		lookup2(r1, r2, f, a, &na, b, &nb);
		assert_int_equal(nb, 4);
		for (size_t i = 0; i < 4; i++) {
			assert_string_equal(again[b[i]].addr, m[a[i]].addr);
		}
	}
	sdfs_ring_free(r2);
	free(again);
	// Fewer than 4 nodes: every node, each once.
	IDN_PASS(sdfs_ring_build(m, 3, &r2));
	size_t a[4], na;
	sdfs_ring_lookup(r2, "x", a, 4, &na);
	assert_int_equal(na, 3);
	assert_true(a[0] != a[1] && a[1] != a[2] && a[0] != a[2]);
	sdfs_ring_free(r2);
	IDN_PASS(sdfs_ring_build(m, 0, &r2));
	sdfs_ring_lookup(r2, "x", a, 4, &na);
	assert_int_equal(na, 0);
	sdfs_ring_free(r2);
	sdfs_ring_free(r1);
	free(less);
	free(m);
}

// The file checksum computed the long way: BLAKE2b-256 over the chunks'
// BLAKE2b-128 checksums.
static void
file_sum(const uint8_t *data, size_t len, uint8_t out[IDN_SDFS_SUM_BYTES])
{
	uint32_t n = sdfs_nchunks(len, IDN_SDFS_CHUNK_BYTES);
	uint8_t *cs = calloc(n + 1, SDFS_CSUM_BYTES);
	for (uint32_t i = 0; i < n; i++) {
		size_t off = (size_t) i * IDN_SDFS_CHUNK_BYTES;
		sdfs_chunk_sum(data + off, CORE_MIN(IDN_SDFS_CHUNK_BYTES,
		    len - off), cs + (size_t) i * SDFS_CSUM_BYTES);
	}
	sdfs_hash h;
	sdfs_hash_init(&h);
	sdfs_hash_update(&h, cs, (size_t) n * SDFS_CSUM_BYTES);
	sdfs_hash_final(&h, out);
	free(cs);
}

// Writes a version of `len` pseudo-random bytes (seeded) in pieces of
// `piece` bytes; returns the commit result.
static int
put_version(sdfs_store *s, const char *name, uint64_t ver, size_t len,
    unsigned seed, size_t piece, uint8_t sum[IDN_SDFS_SUM_BYTES])
{
	uint8_t *data = malloc(len ? len : 1);
	srand(seed);
	for (size_t i = 0; i < len; i++) {
		data[i] = (uint8_t) rand();
	}
	sdfs_vmeta m = {.ver = ver, .size = len, .csize = IDN_SDFS_CHUNK_BYTES,
	    .mtime_ms = 1};
	file_sum(data, len, m.sum);
	if (sum != NULL) {
		memcpy(sum, m.sum, sizeof(m.sum));
	}
	sdfs_wtx *tx;
	int rv = sdfs_wtx_begin(s, name, ver, &tx);
	for (size_t off = 0; rv == IDN_OK && off < len; off += piece) {
		rv = sdfs_wtx_write(tx, off, data + off,
		    CORE_MIN(piece, len - off), NULL);
	}
	rv = rv == IDN_OK ? sdfs_wtx_commit(tx, &m) : rv;
	free(data);
	return rv;
}

static int
tombstone(sdfs_store *s, const char *name, uint64_t ver)
{
	sdfs_vmeta m = {.ver = ver, .tomb = true, .csize = 1 << 20};
	sdfs_file_sum(NULL, 0, m.sum);
	sdfs_wtx *tx;
	int rv = sdfs_wtx_begin(s, name, ver, &tx);
	return rv ? rv : sdfs_wtx_commit(tx, &m);
}

static char *
data_path(const char *root, const char *name, uint64_t ver)
{
	char key[33];
	sdfs_name_key(name, key);
	return core_asprintf("%s/files/%s/%020" PRIu64 ".data", root, key, ver);
}

static void
hex_equal(const uint8_t *got, size_t n, const char *want)
{
	char hex[2 * 64 + 1];
	assert_true(n <= 64);
	for (size_t i = 0; i < n; i++) {
		snprintf(hex + 2 * i, 3, "%02x", got[i]);
	}
	assert_string_equal(hex, want);
}

// Known answers for the checksums SDFS stores (BLAKE2b, computed with
// Python's hashlib, another implementation than the one under test).
static void
test_known_sums(void **st)
{
	uint8_t cs[2 * SDFS_CSUM_BYTES], sum[IDN_SDFS_SUM_BYTES];
	sdfs_chunk_sum("abc", 3, cs);
	hex_equal(cs, SDFS_CSUM_BYTES, "cf4ab791c62b8d2b2109c90275287816");
	sdfs_chunk_sum("de", 2, cs + SDFS_CSUM_BYTES);
	sdfs_file_sum(cs, 2, sum);
	hex_equal(sum, sizeof(sum), "587fab632d6ec53e4ac45c9f5fe0130c"
	    "9b8b9861182caa576b66771579323e21");
	sdfs_file_sum(NULL, 0, sum);
	hex_equal(sum, sizeof(sum), "0e5751c026e543b2e8ab2eb06099daa1"
	    "d1e5df47778f7787faab45cdf12fe3a8");
	sdfs_hash h;
	sdfs_hash_init(&h);
	sdfs_hash_update(&h, "a", 1);
	sdfs_hash_update(&h, "bc", 2);
	sdfs_hash_final(&h, sum);
	hex_equal(sum, sizeof(sum), "bddd813c634239723171ef3fee98579b"
	    "94964e3bb1cb3e427262c8c068d52319");
}

static void
test_store_versions(void **st)
{
	const char *root = th_tmpdir();
	sdfs_store *s;
	IDN_PASS(sdfs_store_open(root, NULL, 0, &s));
	size_t sizes[] = {0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1,
	    3 * (1 << 20) + 7};
	for (size_t i = 0; i < CORE_ARRAY_LEN(sizes); i++) {
		char name[32];
		uint8_t sum[IDN_SDFS_SUM_BYTES];
		snprintf(name, sizeof(name), "d/f%zu", i);
		// Odd write pieces: chunk sums must not depend on them.
		IDN_PASS(put_version(s, name, 1, sizes[i], (unsigned) i,
		    333333, sum));
		sdfs_vmeta m;
		IDN_PASS(sdfs_store_meta(s, name, 1, &m));
		assert_int_equal(m.size, sizes[i]);
		assert_memory_equal(m.sum, sum, sizeof(sum));
		assert_int_equal(m.nchunks,
		    (sizes[i] + (1 << 20) - 1) / (1 << 20));
		uint8_t *buf = malloc(1 << 20);
		uint8_t *all = malloc(sizes[i] + 1);
		size_t at = 0;
		for (uint32_t c = 0; c < m.nchunks; c++) {
			size_t len;
			IDN_PASS(sdfs_store_read_chunk(s, name, &m, c, buf,
			    &len));
			memcpy(all + at, buf, len);
			at += len;
		}
		assert_int_equal(at, sizes[i]);
		uint8_t got[IDN_SDFS_SUM_BYTES];
		file_sum(all, at, got);
		assert_memory_equal(got, sum, sizeof(sum));
		free(all);
		free(buf);
		sdfs_vmeta_clear(&m);
		IDN_PASS(sdfs_store_verify(s, name, 1));
	}
	// Versions come back newest first; retention keeps the newest 8.
	for (uint64_t v = 1; v <= 10; v++) {
		IDN_PASS(put_version(s, "many", v, 10, (unsigned) v, 4, NULL));
	}
	sdfs_vmeta *vs;
	size_t n;
	IDN_PASS(sdfs_store_versions(s, "many", &vs, &n));
	assert_int_equal(n, IDN_SDFS_KEEP_VERSIONS);
	assert_int_equal(vs[0].ver, 10);
	assert_int_equal(vs[n - 1].ver, 10 - IDN_SDFS_KEEP_VERSIONS + 1);
	idn_free(vs);
	// Same version again: same bytes fine, other bytes refused; a wrong
	// sum or size never commits.
	IDN_PASS(put_version(s, "many", 10, 10, 10, 4, NULL));
	IDN_FAIL(put_version(s, "many", 10, 10, 99, 4, NULL), IDN_EEXIST);
	sdfs_wtx *tx;
	sdfs_vmeta bad = {.ver = 11, .size = 3, .csize = 1 << 20};
	IDN_PASS(sdfs_wtx_begin(s, "many", 11, &tx));
	uint8_t cs[SDFS_CSUM_BYTES] = {0};
	IDN_FAIL(sdfs_wtx_write(tx, 0, "abc", 3, cs), IDN_ECORRUPT);
	sdfs_chunk_sum("abc", 3, cs);
	IDN_PASS(sdfs_wtx_write(tx, 0, "abc", 3, cs));
	IDN_PASS(sdfs_wtx_write(tx, 0, "abc", 3, cs)); // re-sent
	IDN_FAIL(sdfs_wtx_write(tx, 3, "abc", 3, NULL), IDN_EINVAL); // after
	IDN_FAIL(sdfs_wtx_write(tx, 7, "abc", 3, NULL), IDN_EINVAL); // a gap
	IDN_FAIL(sdfs_wtx_commit(tx, &bad), IDN_ECORRUPT);
	sdfs_vmeta m;
	IDN_FAIL(sdfs_store_meta(s, "many", 11, &m), IDN_ENOENT);
	// The listing.
	sdfs_entry *e;
	IDN_PASS(sdfs_store_list(s, "d/", &e, &n));
	assert_int_equal(n, CORE_ARRAY_LEN(sizes));
	assert_string_equal(e[0].name, "d/f0");
	sdfs_entry_free_arr(e, n);
	IDN_PASS(sdfs_store_list(s, "", &e, &n));
	assert_int_equal(n, CORE_ARRAY_LEN(sizes) + 1);
	sdfs_entry_free_arr(e, n);
	sdfs_store_close(s);
}

static void
test_store_corruption(void **st)
{
	const char *root = th_tmpdir();
	sdfs_store *s;
	IDN_PASS(sdfs_store_open(root, NULL, 0, &s));
	IDN_PASS(put_version(s, "c", 1, 3 << 20, 7, 1 << 20, NULL));
	// Flip one byte in the middle chunk: that chunk reads as corrupt,
	// the others still read.
	char *p = data_path(root, "c", 1);
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, (1 << 20) + 5), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, (1 << 20) + 5), 1);
	close(fd);
	sdfs_vmeta m;
	IDN_PASS(sdfs_store_meta(s, "c", 1, &m));
	uint8_t *buf = malloc(1 << 20);
	size_t len;
	IDN_PASS(sdfs_store_read_chunk(s, "c", &m, 0, buf, &len));
	IDN_FAIL(sdfs_store_read_chunk(s, "c", &m, 1, buf, &len),
	    IDN_ECORRUPT);
	IDN_PASS(sdfs_store_read_chunk(s, "c", &m, 2, buf, &len));
	IDN_FAIL(sdfs_store_verify(s, "c", 1), IDN_ECORRUPT);
	sdfs_vmeta_clear(&m);
	// Repair quarantines it: not listed, not destroyed, until a good
	// copy of the version is committed.
	char *bad = core_asprintf("%s.bad", p);
	IDN_PASS(sdfs_store_quarantine(s, "c", 1));
	sdfs_vmeta *vs;
	size_t n;
	IDN_PASS(sdfs_store_versions(s, "c", &vs, &n));
	assert_int_equal(n, 0);
	idn_free(vs);
	assert_int_not_equal(access(p, F_OK), 0);
	assert_int_equal(access(bad, F_OK), 0);
	IDN_PASS(put_version(s, "c", 1, 3 << 20, 7, 1 << 20, NULL));
	assert_int_not_equal(access(bad, F_OK), 0);
	// A truncated copy is found by listing and quarantined.
	assert_int_equal(truncate(p, 100), 0);
	IDN_PASS(sdfs_store_versions(s, "c", &vs, &n));
	assert_int_equal(n, 0);
	idn_free(vs);
	assert_int_not_equal(access(p, F_OK), 0);
	assert_int_equal(access(bad, F_OK), 0);
	free(bad);
	// A garbage meta is a damaged copy too, never a crash.
	IDN_PASS(put_version(s, "c", 2, 10, 1, 10, NULL));
	char key[33];
	sdfs_name_key("c", key);
	char *mp = core_asprintf("%s/files/%s/%020d.meta", root, key, 2);
	IDN_PASS(core_file_write_atomic(mp, "\xc1garbage", 8));
	IDN_PASS(sdfs_store_versions(s, "c", &vs, &n));
	assert_int_equal(n, 0);
	idn_free(vs);
	free(mp);
	free(p);
	free(buf);
	sdfs_store_close(s);
}

typedef struct {
	const char *root;
	const char *name;
} folder_arg;

// The name's folder last changed over 150 ms ago: its listing is cached.
static bool
folder_settled(void *arg)
{
	folder_arg *a = arg;
	char key[33];
	sdfs_name_key(a->name, key);
	char *dir = core_asprintf("%s/files/%s", a->root, key);
	struct stat sb;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	bool ok = stat(dir, &sb) == 0 && (now.tv_sec - sb.st_mtim.tv_sec) *
	    1000LL + (now.tv_nsec - sb.st_mtim.tv_nsec) / 1000000 > 150;
	free(dir);
	return ok;
}

static size_t
nversions(sdfs_store *s, const char *name, uint64_t *newest)
{
	sdfs_vmeta *vs;
	size_t n;
	IDN_PASS(sdfs_store_versions(s, name, &vs, &n));
	*newest = n > 0 ? vs[0].ver : 0;
	idn_free(vs);
	return n;
}

static bool
lc2_gone(void *arg)
{
	sdfs_entry *e;
	size_t n = 1;
	if (sdfs_store_list(arg, "lc2", &e, &n) == IDN_OK) {
		sdfs_entry_free_arr(e, n);
	}
	return n == 0;
}

// Listings come from memory once a folder settled: every change the store
// makes is seen at once; a copy truncated behind its back after the trust
// time (10 s; sdfs_limits.cache_trust_ms, 1 ms here), then quarantined.
static void
test_store_listing_cache(void **st)
{
	const char *root = th_tmpdir();
	sdfs_store *s;
	IDN_PASS(sdfs_store_open(root, NULL, 0, &s));
	folder_arg a = {root, "lc"};
	uint64_t newest;
	IDN_PASS(put_version(s, "lc", 1, 10, 1, 10, NULL));
	assert_true(th_wait(folder_settled, &a, 5000));
	assert_int_equal(nversions(s, "lc", &newest), 1);
	IDN_PASS(put_version(s, "lc", 2, 20, 2, 20, NULL));
	assert_int_equal(nversions(s, "lc", &newest), 2);
	assert_int_equal(newest, 2);
	assert_true(th_wait(folder_settled, &a, 5000));
	assert_int_equal(nversions(s, "lc", &newest), 2);
	IDN_PASS(sdfs_store_drop_version(s, "lc", 2));
	assert_int_equal(nversions(s, "lc", &newest), 1);
	assert_int_equal(newest, 1);
	assert_true(th_wait(folder_settled, &a, 5000));
	sdfs_entry *e;
	size_t n;
	IDN_PASS(sdfs_store_list(s, "", &e, &n));
	assert_int_equal(n, 1);
	assert_string_equal(e[0].name, "lc");
	assert_int_equal(e[0].newest, 1);
	sdfs_entry_free_arr(e, n);
	// Behind the store's back: the listing is trusted for 10 s...
	char *p = data_path(root, "lc", 1);
	assert_int_equal(truncate(p, 3), 0);
	assert_int_equal(nversions(s, "lc", &newest), 1);
	sdfs_store_close(s);
	// ...here 1 ms: then a truncated copy is found and quarantined.
	IDN_PASS(sdfs_store_open(root, NULL, 1, &s));
	folder_arg b = {root, "lc2"};
	IDN_PASS(put_version(s, "lc2", 1, 10, 4, 10, NULL));
	assert_true(th_wait(folder_settled, &b, 5000));
	assert_int_equal(nversions(s, "lc2", &newest), 1);
	char *p2 = data_path(root, "lc2", 1);
	assert_int_equal(truncate(p2, 3), 0);
	assert_true(th_wait(lc2_gone, s, 5000));
	free(p2);
	free(p);
	IDN_PASS(sdfs_store_drop_name(s, "lc"));
	sdfs_store_close(s);
}

static void
test_store_name_collision(void **st)
{
	const char *root = th_tmpdir();
	sdfs_store *s;
	IDN_PASS(sdfs_store_open(root, NULL, 0, &s));
	IDN_PASS(put_version(s, "col/a", 1, 10, 1, 10, NULL));
	// As if col/b hashed to col/a's folder and held it: col/a must not
	// see col/b's versions, write into them, or remove them.
	char key[33];
	sdfs_name_key("col/a", key);
	char *np = core_asprintf("%s/files/%s/name", root, key);
	IDN_PASS(core_file_write_atomic(np, "col/b", 5));
	sdfs_vmeta *vs, m;
	size_t n;
	IDN_PASS(sdfs_store_versions(s, "col/a", &vs, &n));
	assert_int_equal(n, 0);
	idn_free(vs);
	IDN_FAIL(sdfs_store_meta(s, "col/a", 1, &m), IDN_ENOENT);
	IDN_FAIL(put_version(s, "col/a", 2, 10, 2, 10, NULL), IDN_EEXIST);
	IDN_PASS(sdfs_store_drop_name(s, "col/a"));
	IDN_PASS(sdfs_store_drop_version(s, "col/a", 1));
	char *dp = data_path(root, "col/a", 1);
	assert_int_equal(access(dp, F_OK), 0);
	assert_int_equal(access(np, F_OK), 0);
	free(dp);
	free(np);
	sdfs_store_close(s);
}

typedef struct {
	sdfs_store *s;
	int rv;
	bool done;
	pthread_mutex_t lock;
} commit_arg;

static void *
commit_v3(void *arg)
{
	commit_arg *a = arg;
	int rv = put_version(a->s, "dmg", 3, 10, 3, 10, NULL);
	pthread_mutex_lock(&a->lock);
	a->rv = rv;
	a->done = true;
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static bool
commit_done(void *arg)
{
	commit_arg *a = arg;
	pthread_mutex_lock(&a->lock);
	bool done = a->done;
	pthread_mutex_unlock(&a->lock);
	return done;
}

// A commit keeps the newest versions; finding a damaged older copy while
// it does so must drop that copy, not wait for the lock commit holds.
static void
test_store_commit_over_damaged(void **st)
{
	const char *root = th_tmpdir();
	sdfs_store *s;
	IDN_PASS(sdfs_store_open(root, NULL, 0, &s));
	IDN_PASS(put_version(s, "dmg", 1, 10, 1, 10, NULL));
	IDN_PASS(put_version(s, "dmg", 2, 10, 2, 10, NULL));
	char *p = data_path(root, "dmg", 1);
	assert_int_equal(truncate(p, 3), 0);
	commit_arg a = {.s = s};
	pthread_mutex_init(&a.lock, NULL);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, commit_v3, &a), 0);
	if (!th_wait(commit_done, &a, 10000)) {
		// The thread is stuck on the store's lock: leave both.
		fail_msg("commit over a damaged older copy did not return "
		    "within 10 s");
	}
	pthread_join(t, NULL);
	IDN_PASS(a.rv);
	sdfs_vmeta *vs;
	size_t n;
	IDN_PASS(sdfs_store_versions(s, "dmg", &vs, &n));
	assert_int_equal(n, 2);
	assert_int_equal(vs[0].ver, 3);
	assert_int_equal(vs[1].ver, 2);
	idn_free(vs);
	assert_int_not_equal(access(p, F_OK), 0);
	free(p);
	pthread_mutex_destroy(&a.lock);
	sdfs_store_close(s);
}

static void
test_store_tombstone(void **st)
{
	const char *root = th_tmpdir();
	sdfs_store *s;
	IDN_PASS(sdfs_store_open(root, NULL, 0, &s));
	IDN_PASS(put_version(s, "t", 1, 100, 1, 100, NULL));
	IDN_PASS(put_version(s, "t", 2, 100, 2, 100, NULL));
	IDN_PASS(tombstone(s, "t", 3));
	sdfs_vmeta *vs;
	size_t n;
	IDN_PASS(sdfs_store_versions(s, "t", &vs, &n));
	assert_int_equal(n, 1); // older data goes with the delete
	assert_true(vs[0].tomb);
	assert_int_equal(vs[0].ver, 3);
	idn_free(vs);
	char *p = data_path(root, "t", 2);
	assert_int_not_equal(access(p, F_OK), 0);
	free(p);
	// A put after a delete is a new version above the tombstone.
	IDN_PASS(put_version(s, "t", 4, 5, 4, 5, NULL));
	IDN_PASS(sdfs_store_versions(s, "t", &vs, &n));
	assert_int_equal(n, 2);
	assert_int_equal(vs[0].ver, 4);
	assert_false(vs[0].tomb);
	idn_free(vs);
	sdfs_entry *e;
	IDN_PASS(sdfs_store_list(s, "", &e, &n));
	assert_int_equal(n, 1);
	assert_false(e[0].tomb);
	sdfs_entry_free_arr(e, n);
	IDN_PASS(sdfs_store_drop_name(s, "t"));
	IDN_PASS(sdfs_store_list(s, "", &e, &n));
	assert_int_equal(n, 0);
	sdfs_entry_free_arr(e, n);
	sdfs_store_close(s);
}

static void
test_store_reopen(void **st)
{
	const char *root = th_tmpdir();
	sdfs_store *s;
	IDN_PASS(sdfs_store_open(root, NULL, 0, &s));
	IDN_PASS(put_version(s, "r", 1, 10, 1, 10, NULL));
	// An unfinished write and an orphan data file (crash between the
	// renames) disappear at the next open; the committed one stays.
	sdfs_wtx *tx;
	IDN_PASS(sdfs_wtx_begin(s, "r", 2, &tx));
	IDN_PASS(sdfs_wtx_write(tx, 0, "half", 4, NULL));
	char *orphan = data_path(root, "r", 9);
	IDN_PASS(core_file_write_atomic(orphan, "zz", 2));
	sdfs_store_close(s);
	IDN_PASS(sdfs_store_open(root, NULL, 0, &s));
	char *tmp = core_asprintf("%s/tmp", root);
	char *cmd = core_asprintf("test -z \"$(ls -A '%s')\"", tmp);
	assert_int_equal(system(cmd), 0);
	assert_int_not_equal(access(orphan, F_OK), 0);
	sdfs_vmeta *vs;
	size_t n;
	IDN_PASS(sdfs_store_versions(s, "r", &vs, &n));
	assert_int_equal(n, 1);
	idn_free(vs);
	sdfs_wtx_abort(tx); // its temp is gone already; harmless
	free(cmd);
	free(tmp);
	free(orphan);
	sdfs_store_close(s);
}

static void
test_msg(void **st)
{
	wire_wr *w;
	wire_doc *d;
	uint8_t cs[2 * SDFS_CSUM_BYTES] = {1, 2, 3};
	sdfs_vmeta m = {.ver = 5, .size = (1 << 20) + 1, .csize = 1 << 20,
	    .mtime_ms = 42, .nchunks = 2, .csums = cs};
	m.sum[0] = 9;
	IDN_PASS(wire_wr_new(&w));
	sdfs_vmeta_put(w, &m, true);
	const uint8_t *p;
	size_t len;
	IDN_PASS(wire_wr_bytes(w, &p, &len));
	IDN_PASS(wire_doc_parse(p, len, &d));
	sdfs_vmeta back;
	IDN_PASS(sdfs_vmeta_get(wire_doc_root(d), &back, true));
	assert_int_equal(back.ver, 5);
	assert_int_equal(back.nchunks, 2);
	assert_memory_equal(back.csums, cs, sizeof(cs));
	assert_int_equal(back.sum[0], 9);
	sdfs_vmeta_clear(&back);
	wire_doc_free(d);
	wire_wr_free(w);
	// A meta whose checksum list does not match its size is refused.
	m.size = 5 << 20;
	IDN_PASS(wire_wr_new(&w));
	sdfs_vmeta_put(w, &m, true);
	IDN_PASS(wire_wr_bytes(w, &p, &len));
	IDN_PASS(wire_doc_parse(p, len, &d));
	IDN_FAIL(sdfs_vmeta_get(wire_doc_root(d), &back, true), IDN_EPROTO);
	wire_doc_free(d);
	wire_wr_free(w);
	// Offers round trip; a list longer than allowed is refused.
	uint64_t vers[] = {3, 2};
	sdfs_offer o = {.name = "a/b", .vers = vers, .nvers = 2};
	sdfs_offer *got;
	size_t n;
	IDN_PASS(wire_wr_new(&w));
	sdfs_offer_put_arr(w, &o, 1);
	IDN_PASS(wire_wr_bytes(w, &p, &len));
	IDN_PASS(wire_doc_parse(p, len, &d));
	IDN_PASS(sdfs_offer_get_arr(wire_doc_root(d), 10, &got, &n));
	assert_int_equal(n, 1);
	assert_string_equal(got[0].name, "a/b");
	assert_int_equal(got[0].vers[1], 2);
	assert_null(got[0].tags);
	sdfs_offer_free_arr(got, n);
	IDN_FAIL(sdfs_offer_get_arr(wire_doc_root(d), 0, &got, &n),
	    IDN_EPROTO);
	wire_doc_free(d);
	wire_wr_free(w);
	// With the bytes each number stands for.
	uint64_t tags[] = {10, 11}, mts[] = {5, 4};
	o.tags = tags;
	o.mts = mts;
	IDN_PASS(wire_wr_new(&w));
	sdfs_offer_put_arr(w, &o, 1);
	IDN_PASS(wire_wr_bytes(w, &p, &len));
	IDN_PASS(wire_doc_parse(p, len, &d));
	IDN_PASS(sdfs_offer_get_arr(wire_doc_root(d), 10, &got, &n));
	assert_int_equal(got[0].tags[1], 11);
	assert_int_equal(got[0].mts[0], 5);
	sdfs_offer_free_arr(got, n);
	wire_doc_free(d);
	wire_wr_free(w);
}

static void
test_no_wrap(void **st)
{
	// Chunk counts: exact at the edges, never wrapped near 2^64.
	assert_int_equal(sdfs_nchunks(0, 1 << 20), 0);
	assert_int_equal(sdfs_nchunks(1 << 20, 1 << 20), 1);
	assert_int_equal(sdfs_nchunks((1 << 20) + 1, 1 << 20), 2);
	assert_int_equal(sdfs_nchunks(UINT64_MAX, 1 << 20), UINT32_MAX);
	assert_int_equal(sdfs_nchunks(UINT64_MAX - 5, 1), UINT32_MAX);
	// Version numbers: the next one, and a clear error at the top.
	uint64_t v = 0;
	IDN_PASS(sdfs_next_version(5, 3, &v));
	assert_int_equal(v, 6);
	IDN_PASS(sdfs_next_version(0, SDFS_VER_MAX - 1, &v));
	assert_int_equal(v, SDFS_VER_MAX);
	IDN_FAIL(sdfs_next_version(SDFS_VER_MAX, 0, &v), IDN_ETOOBIG);
	IDN_FAIL(sdfs_next_version(0, UINT64_MAX, &v), IDN_ETOOBIG);
	// A meta claiming a size no chunk count covers is refused.
	sdfs_vmeta m = {.ver = 1, .size = UINT64_MAX, .csize = 1 << 20};
	sdfs_vmeta back;
	wire_wr *w;
	wire_doc *d;
	const uint8_t *p;
	size_t len;
	IDN_PASS(wire_wr_new(&w));
	sdfs_vmeta_put(w, &m, false);
	IDN_PASS(wire_wr_bytes(w, &p, &len));
	IDN_PASS(wire_doc_parse(p, len, &d));
	IDN_FAIL(sdfs_vmeta_get(wire_doc_root(d), &back, false), IDN_EPROTO);
	wire_doc_free(d);
	wire_wr_free(w);
}

static void
test_conflict_winner(void **st)
{
	// Tags: the sum's first 8 bytes, the low bit saying tombstone.
	uint8_t sum[IDN_SDFS_SUM_BYTES] = {0x01, 2, 3, 4, 5, 6, 7, 0x09};
	assert_int_equal(sdfs_sum_tag(sum, false), 0x0102030405060708u);
	assert_int_equal(sdfs_sum_tag(sum, true), 0x0102030405060709u);
	// An empty file and a tombstone are different bytes.
	uint8_t empty[IDN_SDFS_SUM_BYTES];
	sdfs_file_sum(NULL, 0, empty);
	assert_int_not_equal(sdfs_sum_tag(empty, false),
	    sdfs_sum_tag(empty, true));
	// The earlier put wins, then the smaller tag; both sides agree.
	assert_true(sdfs_put_first(1, 9, 2, 1));
	assert_false(sdfs_put_first(2, 1, 1, 9));
	assert_true(sdfs_put_first(5, 1, 5, 2));
	assert_false(sdfs_put_first(5, 2, 5, 1));
}

// A withdrawn version (a failed put taken back) is refused here when its
// commit arrives late, after the withdrawal; other bytes under the same
// number are not.
static void
test_unput_refuses_late_commit(void **st)
{
	sdfs s = {0};
	pthread_mutex_init(&s.lock, NULL);
	IDN_PASS(sdfs_store_open(th_tmpdir(), NULL, 0, &s.st));
	uint8_t a[100], b[200];
	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	sdfs_vmeta ma = {.ver = 2, .size = sizeof(a), .mtime_ms = 1,
	    .csize = IDN_SDFS_CHUNK_BYTES};
	sdfs_vmeta mb = ma;
	mb.size = sizeof(b);
	file_sum(a, sizeof(a), ma.sum);
	file_sum(b, sizeof(b), mb.sum);
	sdfs_vmeta m;
	// Withdrawn after its commit: dropped.
	IDN_PASS(sdfs_rep_begin(&s, "u/f", 2));
	IDN_PASS(sdfs_rep_chunk(&s, "u/f", 2, 0, a, sizeof(a), NULL));
	IDN_PASS(sdfs_rep_commit(&s, "u/f", &ma));
	IDN_PASS(sdfs_rep_unput(&s, "u/f", 2, ma.sum));
	assert_int_equal(sdfs_store_meta(s.st, "u/f", 2, &m), IDN_ENOENT);
	// The commit repeated, or its write open again and committed after
	// the withdrawal: refused, nothing held.
	assert_int_equal(sdfs_rep_commit(&s, "u/f", &ma), IDN_ENOENT);
	IDN_PASS(sdfs_rep_begin(&s, "u/f", 2));
	IDN_PASS(sdfs_rep_chunk(&s, "u/f", 2, 0, a, sizeof(a), NULL));
	assert_int_equal(sdfs_rep_commit(&s, "u/f", &ma), IDN_ENOENT);
	assert_int_equal(sdfs_store_meta(s.st, "u/f", 2, &m), IDN_ENOENT);
	// Another put's bytes under the number stay.
	IDN_PASS(sdfs_rep_begin(&s, "u/f", 2));
	IDN_PASS(sdfs_rep_chunk(&s, "u/f", 2, 0, b, sizeof(b), NULL));
	IDN_PASS(sdfs_rep_commit(&s, "u/f", &mb));
	IDN_PASS(sdfs_store_meta(s.st, "u/f", 2, &m));
	assert_memory_equal(m.sum, mb.sum, sizeof(m.sum));
	sdfs_vmeta_clear(&m);
	for (size_t i = 0; i < UNPUT_MAX; i++) {
		free(s.unputs[i].name);
	}
	sdfs_store_close(s.st);
	pthread_mutex_destroy(&s.lock);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_known_sums),
		cmocka_unit_test(test_store_versions),
		cmocka_unit_test(test_store_corruption),
		cmocka_unit_test(test_store_listing_cache),
		cmocka_unit_test(test_store_commit_over_damaged),
		cmocka_unit_test(test_store_tombstone),
		cmocka_unit_test(test_store_reopen),
		cmocka_unit_test(test_msg),
		cmocka_unit_test(test_conflict_winner),
		cmocka_unit_test(test_no_wrap),
		cmocka_unit_test(test_store_name_collision),
		cmocka_unit_test(test_unput_refuses_late_commit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
