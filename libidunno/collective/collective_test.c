// SPDX-License-Identifier: MIT
// collective_test.c: allreduce among 1 to 4 endpoints of one process on
// loopback (each rank on its own thread): exact sums in the documented
// order and bit-identical ranks for both algorithms, steps that never
// mix, dead peers, stale generations, cancelled and superseded calls, and
// malformed parts.
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "collective/coll_int.h"
#include "harness.h"

#define MAXW 4
#define JOB "train-1"

static uint8_t key[IDN_KEY_BYTES];

typedef struct {
	rpc *r;
	coll *c;
	coll_group *g;
} node;

static void
nodes_open(node *nd, int w, const coll_opts *o)
{
	for (int i = 0; i < w; i++) {
		rpc_opts ro = {"127.0.0.1:0", key, NET_DEFAULT_MAX_MSG, NULL};
		char self[32];
		IDN_PASS(rpc_open(&ro, &nd[i].r));
		snprintf(self, sizeof(self), "rank%d", i);
		rpc_set_self(nd[i].r, self);
		IDN_PASS(coll_open(nd[i].r, o, &nd[i].c));
		IDN_PASS(rpc_serve(nd[i].r));
		nd[i].g = NULL;
	}
}

static void
groups_open(node *nd, int w, const char *job, uint64_t gen)
{
	const char *addrs[MAXW];
	for (int i = 0; i < w; i++) {
		addrs[i] = rpc_addr(nd[i].r);
	}
	for (int i = 0; i < w; i++) {
		coll_group_opts go = {job, gen, (uint32_t) i, (uint32_t) w,
		    addrs};
		coll_group_close(nd[i].g);
		nd[i].g = NULL;
		IDN_PASS(coll_group_open(nd[i].c, &go, &nd[i].g));
	}
}

static void
node_close(node *n)
{
	coll_group_close(n->g);
	n->g = NULL;
	rpc_stop(n->r);
	coll_close(n->c);
	rpc_close(n->r);
	n->c = NULL;
	n->r = NULL;
}

static void
nodes_close(node *nd, int w)
{
	for (int i = 0; i < w; i++) {
		node_close(&nd[i]);
	}
}

// One rank's call, on its own thread: cmocka asserts only on the main one.
typedef struct {
	coll_group *g;
	float *buf;
	size_t n;
	idn_duration timeout_ms;
	int delay_ms;
	int rv;
	uint64_t took_ms;
	pthread_t t;
} call;

static void *
call_run(void *arg)
{
	call *k = arg;
	if (k->delay_ms > 0) {
		core_sleep_ms((uint32_t) k->delay_ms);
	}
	uint64_t t0 = idn_clock_ms();
	k->rv = coll_allreduce(k->g, k->buf, k->n, k->timeout_ms);
	k->took_ms = idn_clock_ms() - t0;
	return NULL;
}

static void
call_start(call *k, coll_group *g, float *buf, size_t n, idn_duration tmo)
{
	k->g = g;
	k->buf = buf;
	k->n = n;
	k->timeout_ms = tmo;
	assert_int_equal(pthread_create(&k->t, NULL, call_run, k), 0);
}

static void
call_join(call *k)
{
	assert_int_equal(pthread_join(k->t, NULL), 0);
}

static uint32_t rng = 12345;

static float
rnd(void)
{
	rng = rng * 1664525u + 1013904223u;
	// Mixed magnitudes, so that the summation order shows in the bits.
	float m = (float) (rng >> 8) / (float) (1u << 24) - 0.5f;
	return ldexpf(m, (int) (rng % 16) - 4);
}

// The documented sum: element i of segment k is
// ((x_k + x_k+1) + ...) + x_k-1.
static void
reference(float *const *x, int w, size_t n, float *out)
{
	for (int k = 0; k < w; k++) {
		uint64_t a = coll_seg_off(n, (uint32_t) w, (uint32_t) k);
		uint64_t b = coll_seg_off(n, (uint32_t) w, (uint32_t) k + 1);
		for (uint64_t i = a; i < b; i++) {
			float s = x[k][i];
			for (int j = 1; j < w; j++) {
				s = s + x[(k + j) % w][i];
			}
			out[i] = s;
		}
	}
}

// Runs one allreduce of n random floats on every rank and checks every
// result against the reference, bit for bit (and against a sum in double,
// loosely, so that a wrong reference cannot pass).
static void
check_round(node *nd, int w, size_t n, int delay_rank, int delay_ms)
{
	float *x[MAXW], *y[MAXW];
	float *ref = malloc(sizeof(float) * (n + 1));
	assert_non_null(ref);
	for (int r = 0; r < w; r++) {
		x[r] = malloc(sizeof(float) * (n + 1));
		y[r] = malloc(sizeof(float) * (n + 1));
		assert_true(x[r] != NULL && y[r] != NULL);
		for (size_t i = 0; i < n; i++) {
			x[r][i] = rnd();
		}
		memcpy(y[r], x[r], sizeof(float) * n);
	}
	reference(x, w, n, ref);
	call k[MAXW];
	memset(k, 0, sizeof(k));
	for (int r = 0; r < w; r++) {
		k[r].delay_ms = r == delay_rank ? delay_ms : 0;
		call_start(&k[r], nd[r].g, y[r], n, 10000);
	}
	for (int r = 0; r < w; r++) {
		call_join(&k[r]);
	}
	for (int r = 0; r < w; r++) {
		if (k[r].rv != IDN_OK) {
			fail_msg("world %d n %zu rank %d: %s", w, n, r,
			    idn_strerror(k[r].rv));
		}
		if (n > 0 && memcmp(y[r], ref, sizeof(float) * n) != 0) {
			fail_msg("world %d n %zu rank %d differs from the "
			    "reference", w, n, r);
		}
	}
	for (size_t i = 0; i < n; i += 997) {
		double s = 0, sabs = 0;
		for (int r = 0; r < w; r++) {
			s += x[r][i];
			sabs += fabs(x[r][i]);
		}
		assert_true(fabs(s - ref[i]) <= 4.0 * w * FLT_EPSILON * sabs);
	}
	for (int r = 0; r < w; r++) {
		free(x[r]);
		free(y[r]);
	}
	free(ref);
}

static void
test_layout(void **st)
{
	const uint64_t ns[] = {0, 1, 7, 1000, 1025, 1000003};
	for (uint32_t algo = COLL_ALGO_RING; algo <= COLL_ALGO_DIRECT;
	     algo++) {
		for (uint32_t w = 2; w <= 5; w++) {
			for (size_t t = 0; t < CORE_ARRAY_LEN(ns); t++) {
				coll_shape s = {ns[t], w, 1024, algo};
				uint64_t sends = 0, recvs = 0, sd, rc, total = 0;
				for (uint32_t r = 0; r < w; r++) {
					coll_counts(&s, r, &sd, &rc);
					sends += sd;
					recvs += rc;
				}
				assert_int_equal(sends, recvs);
				// Every part lies inside the buffer; each segment's
				// parts tile it exactly once per phase and pair.
				for (uint32_t k = 0; k < w; k++) {
					total += coll_seg_off(s.n, w, k + 1) -
					    coll_seg_off(s.n, w, k);
				}
				assert_int_equal(total, s.n);
				uint64_t off, len;
				for (uint32_t ph = 0; ph < coll_phases(&s); ph++) {
					for (uint32_t a = 0; a < w; a++) {
						for (uint32_t b = 0; b < w; b++) {
							for (uint64_t ck = 0;
							     coll_region(&s, a, b,
							         ph, ck, &off, &len);
							     ck++) {
								assert_true(len >= 1);
								assert_true(len <= 1024);
								assert_true(off + len <= s.n);
							}
						}
					}
				}
			}
		}
	}
	coll_shape s = {10, 3, 1024, COLL_ALGO_RING};
	uint64_t off, len;
	assert_false(coll_region(&s, 0, 2, 0, 0, &off, &len)); // not next
	assert_false(coll_region(&s, 0, 1, 4, 0, &off, &len)); // phase
	assert_false(coll_region(&s, 0, 1, 0, 1, &off, &len)); // chunk
	assert_false(coll_region(&s, 3, 1, 0, 0, &off, &len)); // rank
	assert_true(coll_region(&s, 0, 1, 0, 0, &off, &len));
	assert_int_equal(off, 0);
	assert_int_equal(len, 3);
}

// Each algorithm (and AUTO's pick), 1 to 4 ranks, sizes 0, 1, 7 and
// 1,000,003 on one group (so each size also follows the previous step).
static void
test_sizes(void **st)
{
	const size_t ns[] = {0, 1, 7, 1000003};
	for (int algo = COLL_ALGO_AUTO; algo <= COLL_ALGO_DIRECT; algo++) {
		for (int w = 1; w <= MAXW; w++) {
			node nd[MAXW];
			coll_opts o;
			coll_opts_init(&o);
			o.algo = (coll_algo) algo;
			nodes_open(nd, w, &o);
			groups_open(nd, w, JOB, 1);
			for (size_t t = 0; t < CORE_ARRAY_LEN(ns); t++) {
				check_round(nd, w, ns[t], -1, 0);
			}
			coll_counters ct;
			coll_get_counters(nd[0].c, &ct);
			assert_int_equal(ct.refused, 0);
			assert_int_equal(ct.parked, 0);
			nodes_close(nd, w);
		}
	}
}

// Consecutive steps with small parts, a small mailbox and one rank late
// each time: its peers' next-step parts are parked or refused for now
// (IDN_EBUSY, sent again), and no step mixes with another.
static void
test_steps(void **st)
{
	for (int algo = COLL_ALGO_RING; algo <= COLL_ALGO_DIRECT; algo++) {
		node nd[3];
		coll_opts o;
		coll_opts_init(&o);
		o.algo = (coll_algo) algo;
		o.chunk_bytes = 4096;
		o.mailbox_bytes = 16 * 4096;
		nodes_open(nd, 3, &o);
		groups_open(nd, 3, JOB, 7);
		const size_t ns[] = {30011, 5, 30011, 65536, 1};
		for (size_t t = 0; t < CORE_ARRAY_LEN(ns); t++) {
			check_round(nd, 3, ns[t], (int) (t % 3),
			    t == 0 ? 200 : 30);
		}
		uint64_t retries = 0;
		for (int r = 0; r < 3; r++) {
			coll_counters ct;
			coll_get_counters(nd[r].c, &ct);
			assert_int_equal(ct.refused, 0);
			assert_int_equal(ct.parked, 0);
			assert_int_equal(ct.parked_bytes, 0);
			retries += ct.retries;
		}
		assert_true(retries > 0); // the small mailbox pushed back
		nodes_close(nd, 3);
	}
}

// A peer whose endpoint is closed, or one that never calls: the others
// fail within the timeout, and their group is done with (IDN_ESTALE).
static void
test_dead_peer(void **st)
{
	node nd[3];
	nodes_open(nd, 3, NULL);
	groups_open(nd, 3, JOB, 1);
	check_round(nd, 3, 1000, -1, 0);
	node_close(&nd[2]);
	float a[1000] = {0}, b[1000] = {0};
	call k[2];
	memset(k, 0, sizeof(k));
	call_start(&k[0], nd[0].g, a, 1000, 800);
	call_start(&k[1], nd[1].g, b, 1000, 800);
	call_join(&k[0]);
	call_join(&k[1]);
	for (int r = 0; r < 2; r++) {
		assert_true(k[r].rv == IDN_ETIMEDOUT || k[r].rv == IDN_ENET);
		assert_true(k[r].took_ms <= 800 + 500);
	}
	IDN_FAIL(coll_allreduce(nd[0].g, a, 1000, 800), IDN_ESTALE);
	// The next generation of the two that are left works.
	groups_open(nd, 2, JOB, 2);
	check_round(nd, 2, 1000, -1, 0);
	// A live peer that does not call: a timeout as well.
	memset(k, 0, sizeof(k));
	call_start(&k[0], nd[0].g, a, 1000, 300);
	call_join(&k[0]);
	IDN_FAIL(k[0].rv, IDN_ETIMEDOUT);
	assert_true(k[0].took_ms >= 290 && k[0].took_ms <= 800);
	nodes_close(nd, 2);
}

static void
part_hdr(coll_part *p, const char *job, uint64_t gen, uint64_t n)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->job, sizeof(p->job), "%s", job);
	p->gen = gen;
	p->shape = (coll_shape){n, 2, 1u << 18, COLL_ALGO_RING};
	p->src = 1;
	p->dst = 0;
	p->len = n / 2; // rank 1's segment, part 0, phase 0
}

// Sends a hand-made part from b to a; omit leaves one field out, dbytes
// is the length of d.
static int
send_raw(node *from, node *to, const coll_part *p, const char *omit,
    size_t dbytes)
{
	static const uint8_t zeros[64 << 10];
	wire_wr *w;
	IDN_PASS(wire_wr_new(&w));
	const char *keys[] = {"job", "gen", "seq", "algo", "n", "w", "cf",
	    "src", "dst", "ph", "ck", "d"};
	uint64_t vals[] = {0, p->gen, p->seq, p->shape.algo, p->shape.n,
	    p->shape.world, p->shape.cf, p->src, p->dst, p->ph, p->ck, 0};
	uint32_t nf = omit != NULL ? 11 : 12;
	wire_map(w, nf);
	for (int i = 0; i < 12; i++) {
		if (omit != NULL && strcmp(keys[i], omit) == 0) {
			continue;
		}
		if (i == 0) {
			wire_kstr(w, "job", p->job);
		} else if (i == 11) {
			wire_kbin(w, "d", zeros, dbytes);
		} else {
			wire_ku64(w, keys[i], vals[i]);
		}
	}
	wire_doc *doc = NULL;
	wire_env env;
	int rv = rpc_call(from->r, rpc_addr(to->r), COLL_ROUTE, w, 2000, &doc,
	    &env);
	wire_doc_free(doc);
	wire_wr_free(w);
	return rv;
}

// The most severe "coll:" line logged, and how many.
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_max = -1;
static int log_lines;
static int log_warn;

static void
log_fn(void *arg, int level, const char *line)
{
	(void) arg;
	pthread_mutex_lock(&log_lock);
	if (strncmp(line, "coll:", 5) == 0) {
		log_max = level > log_max ? level : log_max;
		log_lines++;
		log_warn += level == IDN_LOG_WARN;
	}
	pthread_mutex_unlock(&log_lock);
}

static const core_logger test_lg = {log_fn, NULL, IDN_LOG_DEBUG};

// Generations: old ones refused when opening and when their parts come
// in (dropped, not parked); a newer generation, cancel or close end a
// waiting call at once.
static void
test_generations(void **st)
{
	node nd[2];
	coll_opts o;
	coll_opts_init(&o);
	o.lg = &test_lg;
	nodes_open(nd, 2, &o);
	groups_open(nd, 2, JOB, 5);
	const char *addrs[] = {rpc_addr(nd[0].r), rpc_addr(nd[1].r)};
	coll_group_opts go = {JOB, 4, 0, 2, addrs};
	coll_group *g;
	IDN_FAIL(coll_group_open(nd[0].c, &go, &g), IDN_ESTALE);
	go.gen = 5;
	IDN_FAIL(coll_group_open(nd[0].c, &go, &g), IDN_ESTALE);

	coll_part p;
	part_hdr(&p, JOB, 4, 100);
	IDN_FAIL(send_raw(&nd[1], &nd[0], &p, NULL, 200), IDN_ESTALE);
	// Dropped quietly: one line, at debug level.
	assert_int_equal(log_lines, 1);
	assert_int_equal(log_max, IDN_LOG_DEBUG);
	p.gen = 9; // not opened here (yet): asked again later
	IDN_FAIL(send_raw(&nd[1], &nd[0], &p, NULL, 200), IDN_EBUSY);
	coll_counters ct;
	coll_get_counters(nd[0].c, &ct);
	assert_int_equal(ct.stale, 1);
	assert_int_equal(ct.parked, 0);
	assert_int_equal(ct.refused, 0);

	// Superseded while waiting (its peer never calls); a part of the
	// next step, parked meanwhile, is dropped with its generation.
	float buf[100] = {0};
	call k;
	memset(&k, 0, sizeof(k));
	call_start(&k, nd[0].g, buf, 100, 10000);
	core_sleep_ms(100);
	p.gen = 5;
	p.seq = 1;
	IDN_PASS(send_raw(&nd[1], &nd[0], &p, NULL, 200));
	coll_get_counters(nd[0].c, &ct);
	assert_int_equal(ct.parked, 1);
	go.gen = 6;
	IDN_PASS(coll_group_open(nd[0].c, &go, &g));
	call_join(&k);
	IDN_FAIL(k.rv, IDN_ESTALE);
	assert_true(k.took_ms < 1000);
	coll_get_counters(nd[0].c, &ct);
	assert_int_equal(ct.parked, 0);
	IDN_FAIL(coll_allreduce(nd[0].g, buf, 100, 1000), IDN_ESTALE);
	coll_group_close(nd[0].g);
	nd[0].g = g;

	// Cancelled while waiting.
	memset(&k, 0, sizeof(k));
	call_start(&k, nd[0].g, buf, 100, 10000);
	core_sleep_ms(100);
	IDN_PASS(coll_cancel(nd[0].c, JOB));
	IDN_FAIL(coll_cancel(nd[0].c, "no-such-job"), IDN_ENOENT);
	call_join(&k);
	IDN_FAIL(k.rv, IDN_ECLOSED);
	assert_true(k.took_ms < 1000);
	IDN_FAIL(coll_allreduce(nd[0].g, buf, 100, 1000), IDN_ECLOSED);

	// Closed while waiting.
	go.gen = 7;
	coll_group_close(nd[0].g);
	IDN_PASS(coll_group_open(nd[0].c, &go, &nd[0].g));
	memset(&k, 0, sizeof(k));
	call_start(&k, nd[0].g, buf, 100, 10000);
	core_sleep_ms(100);
	coll_group_close(nd[0].g);
	nd[0].g = NULL;
	call_join(&k);
	IDN_FAIL(k.rv, IDN_ECLOSED);
	assert_true(k.took_ms < 1000);

	// The coll closed while a call waits (after its endpoint stopped);
	// its peer has no such job, so its parts are being sent again.
	go.job = "other";
	go.rank = 1;
	IDN_PASS(coll_group_open(nd[1].c, &go, &nd[1].g));
	memset(&k, 0, sizeof(k));
	call_start(&k, nd[1].g, buf, 100, 10000);
	core_sleep_ms(100);
	rpc_stop(nd[1].r);
	coll_close(nd[1].c);
	nd[1].c = NULL;
	nd[1].g = NULL;
	call_join(&k);
	IDN_FAIL(k.rv, IDN_ECLOSED);
	rpc_close(nd[1].r);
	nd[1].r = NULL;
	node_close(&nd[0]);
	coll_close(NULL);
	coll_group_close(NULL);
}

// Malformed or inconsistent parts are refused with an error and change
// nothing; a real allreduce works afterwards.
static void
test_malformed(void **st)
{
	node nd[2];
	coll_opts o;
	coll_opts_init(&o);
	o.lg = &test_lg;
	nodes_open(nd, 2, &o);
	groups_open(nd, 2, JOB, 1);
	log_warn = 0;
	coll_part p;
	part_hdr(&p, JOB, 1, 100);
	const char *fields[] = {"job", "gen", "seq", "algo", "n", "w", "cf",
	    "src", "dst", "ph", "ck", "d"};
	for (size_t i = 0; i < CORE_ARRAY_LEN(fields); i++) {
		IDN_FAIL(send_raw(&nd[1], &nd[0], &p, fields[i], 200),
		    IDN_EPROTO);
	}
	IDN_FAIL(send_raw(&nd[1], &nd[0], &p, NULL, 196), IDN_EPROTO);
	IDN_FAIL(send_raw(&nd[1], &nd[0], &p, NULL, 204), IDN_EPROTO);
	IDN_FAIL(send_raw(&nd[1], &nd[0], &p, NULL, 0), IDN_EPROTO);
	struct {
		coll_part p;
	} bad[12];
	int nb = 0;
	bad[nb].p = p, bad[nb++].p.shape.n = (uint64_t) 1 << 40;
	bad[nb].p = p, bad[nb++].p.shape.world = 0;
	bad[nb].p = p, bad[nb++].p.shape.world = 100000;
	bad[nb].p = p, bad[nb++].p.shape.cf = 1;
	bad[nb].p = p, bad[nb++].p.shape.cf = 1u << 30;
	bad[nb].p = p, bad[nb++].p.shape.algo = 9;
	bad[nb].p = p, bad[nb++].p.src = 7;
	bad[nb].p = p, bad[nb++].p.ph = 2;
	bad[nb].p = p, bad[nb++].p.ck = UINT64_MAX;
	bad[nb].p = p, bad[nb++].p.dst = 1; // src 1 cannot send to itself
	bad[nb].p = p, strcpy(bad[nb++].p.job, "../etc");
	for (int i = 0; i < nb; i++) {
		IDN_FAIL(send_raw(&nd[1], &nd[0], &bad[i].p, NULL, 200),
		    IDN_EPROTO);
	}
	// Not a map at all, or no body.
	wire_wr *w;
	IDN_PASS(wire_wr_new(&w));
	wire_u64(w, 42);
	wire_doc *doc = NULL;
	wire_env env;
	IDN_FAIL(rpc_call(nd[1].r, rpc_addr(nd[0].r), COLL_ROUTE, w, 2000,
	    &doc, &env), IDN_EPROTO);
	wire_doc_free(doc);
	wire_wr_free(w);
	IDN_FAIL(rpc_call(nd[1].r, rpc_addr(nd[0].r), COLL_ROUTE, NULL, 2000,
	    &doc, &env), IDN_EPROTO);
	wire_doc_free(doc);
	// Well-formed but not for this rank: refused, not parked.
	coll_part q;
	part_hdr(&q, JOB, 1, 100);
	q.src = 0;
	q.dst = 1;
	IDN_FAIL(send_raw(&nd[1], &nd[0], &q, NULL, 200), IDN_EINVAL);
	// A step far ahead.
	q = p;
	q.seq = 5;
	IDN_FAIL(send_raw(&nd[1], &nd[0], &q, NULL, 200), IDN_EINVAL);
	coll_counters ct;
	coll_get_counters(nd[0].c, &ct);
	assert_int_equal(ct.parked, 0);
	assert_int_equal(ct.parts_in, 0);
	assert_true(ct.refused >= 12 + 3 + 11 + 2 + 2);
	assert_int_equal(log_warn, 1); // one line per 10 s, with a count
	check_round(nd, 2, 1000, -1, 0);

	// Ranks that disagree on n fail fast, on both sides.
	float a[100] = {0}, b[101] = {0};
	call k[2];
	memset(k, 0, sizeof(k));
	call_start(&k[0], nd[0].g, a, 100, 5000);
	call_start(&k[1], nd[1].g, b, 101, 5000);
	call_join(&k[0]);
	call_join(&k[1]);
	IDN_FAIL(k[0].rv, IDN_EINVAL);
	IDN_FAIL(k[1].rv, IDN_EINVAL);
	assert_true(k[0].took_ms < 2000 && k[1].took_ms < 2000);

	// Bad arguments.
	IDN_FAIL(coll_allreduce(NULL, a, 1, 100), IDN_EINVAL);
	IDN_FAIL(coll_allreduce(nd[0].g, NULL, 1, 100), IDN_EINVAL);
	IDN_FAIL(coll_allreduce(nd[0].g, a, 1, 0), IDN_EINVAL);
	const char *addrs[] = {rpc_addr(nd[0].r), "nowhere"};
	coll_group_opts go = {JOB, 9, 0, 2, addrs};
	coll_group *g;
	IDN_FAIL(coll_group_open(nd[0].c, &go, &g), IDN_EINVAL);
	go.addrs = (const char *const[]){rpc_addr(nd[0].r), rpc_addr(nd[1].r)};
	go.rank = 2;
	IDN_FAIL(coll_group_open(nd[0].c, &go, &g), IDN_EINVAL);
	go.rank = 0;
	go.job = "a/b";
	IDN_FAIL(coll_group_open(nd[0].c, &go, &g), IDN_EINVAL);
	coll_opts_init(&o);
	o.chunk_bytes = 100;
	coll *c;
	IDN_FAIL(coll_open(nd[0].r, &o, &c), IDN_EINVAL);
	coll_opts_init(&o);
	IDN_FAIL(coll_open(nd[0].r, &o, &c), IDN_EBUSY); // already serving
	nodes_close(nd, 2);
}

static int
setup(void **st)
{
	wire_keygen(key);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_layout),
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_steps),
	    cmocka_unit_test(test_dead_peer),
	    cmocka_unit_test(test_generations),
	    cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
