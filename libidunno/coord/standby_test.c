// SPDX-License-Identifier: MIT
// standby_test.c: the replication stream without a network: a new standby
// gets an image, then the changes after its position; a standby of another
// generation or ahead of the stream gets an image again; an idle pull waits
// REPL_WAIT_MS and returns nothing; sync returns true once the standby
// acknowledged, and at once without a standby; false after REPL_SYNC_MS
// when it did not, and at once when it stopped pulling. The records the
// stream carries, old ones included.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/standby.h"
#include "harness.h"

typedef struct {
	wire_wr *w;
	wire_doc *d;
	const wire_val *root;
} reply;

static void
pull(coord_repl *r, ledger *led, uint64_t gen, uint64_t from, reply *out)
{
	wire_wr *req = NULL;
	wire_doc *rd = NULL;
	const uint8_t *p;
	size_t n;
	IDN_PASS(wire_wr_new(&req));
	wire_map(req, 3);
	wire_kstr(req, "id", "standby1");
	wire_ku64(req, "gen", gen);
	wire_ku64(req, "from", from);
	IDN_PASS(wire_wr_bytes(req, &p, &n));
	IDN_PASS(wire_doc_parse(p, n, &rd));
	IDN_PASS(wire_wr_new(&out->w));
	IDN_PASS(coord_repl_serve(r, led, 7, wire_doc_root(rd), out->w));
	IDN_PASS(wire_wr_bytes(out->w, &p, &n));
	IDN_PASS(wire_doc_parse(p, n, &out->d));
	out->root = wire_doc_root(out->d);
	wire_doc_free(rd);
	wire_wr_free(req);
}

static void
reply_free(reply *r)
{
	wire_doc_free(r->d);
	wire_wr_free(r->w);
}

static uint64_t
u64(const reply *r, const char *key)
{
	uint64_t v = 0;
	IDN_PASS(wire_get_u64(r->root, key, &v));
	return v;
}

static void
spec(record_spec *s, const char *job)
{
	memset(s, 0, sizeof(*s));
	s->kind = IDN_JOB_INFER;
	snprintf(s->job, sizeof(s->job), "%s", job);
	snprintf(s->model, sizeof(s->model), "m");
	snprintf(s->queries, sizeof(s->queries), "datasets/x/test");
	snprintf(s->weights, sizeof(s->weights), "models/m/weights");
	s->batch = 8;
	s->rate = 10;
	s->limit = 80;
}

static void
count_batch(void *arg, const char *job, const ledger_row *d)
{
	(*(int *) arg)++;
}

// The worker's marks of a1 as the copy has them.
static void
marks_of_a1(void *arg, const char *job, const ledger_row *d)
{
	if (d->task == 1) {
		*(ledger_row *) arg = *d;
	}
}

static int
done(ledger *l, const char *job, uint32_t task, const char *worker,
    uint64_t end_ms)
{
	// lease_ms .. model_end_ms from end_ms, for the copy to show them.
	ledger_row r = {.task = task, .attempt = 1, .ms = 5,
	    .end_ms = end_ms, .lease_ms = end_ms - 40,
	    .start_ms = end_ms - 30, .model_start_ms = end_ms - 20,
	    .model_end_ms = end_ms - 10};
	snprintf(r.worker, sizeof(r.worker), "%s", worker);
	return ledger_task_done(l, job, &r);
}

static void
count_job(void *arg, const ledger_job *j)
{
	record_spec s;
	IDN_PASS(coord_job_spec(j, &s));
	assert_string_equal(s.job, j->name);
	assert_int_equal(s.batch, 8);
	(*(int *) arg)++;
}

// A change of no consequence, pushed as if applied.
static const ledger_change x = {.op = LEDGER_SET, .key = "x"};

static bool
follower_gone(void *arg)
{
	char id[96];
	return !coord_repl_follower(arg, id, sizeof(id));
}

static void
test_image_then_changes(void **st)
{
	const char *dir = th_tmpdir();
	char path[4200], copy_path[4200];
	snprintf(path, sizeof(path), "%s/active.db", dir);
	snprintf(copy_path, sizeof(copy_path), "%s/standby.db", dir);
	coord_repl *r;
	ledger *l, *copy = NULL;
	record_spec s;
	IDN_PASS(coord_repl_new(&r));
	IDN_PASS(ledger_open(path, &l));
	ledger_set_stream(l, coord_repl_push, r);
	spec(&s, "a");
	IDN_PASS(coord_job_put(l, &s, IDN_JOB_RUNNING, 1000));
	IDN_PASS(done(l, "a", 0, "w1", 2000));

	// A new standby: the image, at position 2.
	reply rep;
	pull(r, l, 0, 1, &rep);
	const uint8_t *img;
	size_t len;
	IDN_PASS(wire_get_bin(rep.root, "image", &img, &len));
	assert_int_equal(u64(&rep, "seq"), 2);
	assert_int_equal(u64(&rep, "epoch"), 7);
	uint64_t gen = u64(&rep, "gen");
	IDN_PASS(ledger_open_image(copy_path, img, len, &copy));
	reply_free(&rep);

	// Three more changes: exactly those come next.
	IDN_PASS(done(l, "a", 1, "w2", 2100));
	IDN_PASS(ledger_lease_put(l, "a", 2, "w1", 1, 9000));
	spec(&s, "b");
	IDN_PASS(coord_job_put(l, &s, IDN_JOB_RUNNING, 3000));
	pull(r, l, gen, 3, &rep);
	const wire_val *ch = wire_get(rep.root, "changes");
	size_t n = 0;
	IDN_PASS(wire_as_arr(ch, &n));
	assert_int_equal(n, 3);
	assert_int_equal(u64(&rep, "seq"), 5);
	for (size_t i = 0; i < n; i++) {
		IDN_PASS(wire_as_bin(wire_at(ch, i), &img, &len));
		IDN_PASS(coord_change_apply(copy, img, len));
	}
	reply_free(&rep);
	int jobs = 0, ndone = 0, leases = 0;
	IDN_PASS(ledger_jobs(copy, count_job, &jobs));
	IDN_PASS(ledger_tasks(copy, false, NULL, count_batch, &ndone));
	IDN_PASS(ledger_tasks(copy, true, NULL, count_batch, &leases));
	assert_int_equal(jobs, 2);
	assert_int_equal(ndone, 2);
	assert_int_equal(leases, 1);
	// A completion streamed to the standby keeps the worker's marks
	// (results/JOB/timing after a takeover).
	ledger_row a1 = {0};
	IDN_PASS(ledger_tasks(copy, false, "a", marks_of_a1, &a1));
	assert_string_equal(a1.worker, "w2");
	assert_int_equal(a1.end_ms, 2100);
	assert_int_equal(a1.lease_ms, 2060);
	assert_int_equal(a1.start_ms, 2070);
	assert_int_equal(a1.model_start_ms, 2080);
	assert_int_equal(a1.model_end_ms, 2090);

	// That pull acknowledged 1..2; sync waits for 3..5 until the next.
	char id[96];
	assert_true(coord_repl_follower(r, id, sizeof(id)));
	assert_string_equal(id, "standby1");
	uint64_t t0 = idn_clock_ms();
	assert_false(coord_repl_sync(r)); // not acknowledged: ask
	assert_true(idn_clock_ms() - t0 >= REPL_SYNC_MS - 10);
	pull(r, l, gen, 6, &rep); // idle: waits, returns nothing
	assert_true(idn_clock_ms() - t0 >= REPL_SYNC_MS + REPL_WAIT_MS - 10);
	IDN_PASS(wire_as_arr(wire_get(rep.root, "changes"), &n));
	assert_int_equal(n, 0);
	reply_free(&rep);
	t0 = idn_clock_ms();
	assert_true(coord_repl_sync(r));
	assert_true(idn_clock_ms() - t0 < REPL_SYNC_MS / 2);

	// A standby that stopped pulling (it may have promoted itself while
	// this coordinator was paused) is not waited for, but the change is
	// still not acknowledged: the caller asks it.
	coord_repl_push(r, &x);
	assert_true(th_wait(follower_gone, r, 5000));
	t0 = idn_clock_ms();
	assert_false(coord_repl_sync(r));
	assert_true(idn_clock_ms() - t0 < REPL_SYNC_MS / 2);

	// Another generation, or a position ahead of the stream: an image.
	pull(r, l, gen + 1, 6, &rep);
	assert_non_null(wire_get(rep.root, "image"));
	reply_free(&rep);
	pull(r, l, gen, 9, &rep);
	assert_non_null(wire_get(rep.root, "image"));
	reply_free(&rep);
	ledger_close(copy);
	ledger_set_stream(l, NULL, NULL);
	ledger_close(l);
	coord_repl_free(r);
}

static void
test_sync_without_standby(void **st)
{
	coord_repl *r;
	IDN_PASS(coord_repl_new(&r));
	coord_repl_push(r, &x);
	char id[96];
	assert_false(coord_repl_follower(r, id, sizeof(id)));
	uint64_t t0 = idn_clock_ms();
	assert_true(coord_repl_sync(r));
	assert_true(idn_clock_ms() - t0 < REPL_SYNC_MS / 2);
	coord_repl_free(r);
}

static int
apply_wr(ledger *l, wire_wr *w)
{
	const uint8_t *p;
	size_t len;
	IDN_PASS(wire_wr_bytes(w, &p, &len));
	int rv = coord_change_apply(l, p, len);
	wire_wr_free(w);
	return rv;
}

// Records as the stream carries them: an older coordinator's completion
// (without the worker's marks) reads as 0 marks, a final state ends the
// job's leases, a malformed record is refused.
static void
test_change_records(void **st)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/records.db", th_tmpdir());
	ledger *l;
	record_spec s;
	wire_wr *w;
	IDN_PASS(ledger_open(path, &l));
	spec(&s, "a");
	IDN_PASS(coord_job_put(l, &s, IDN_JOB_RUNNING, 1000));
	IDN_PASS(ledger_lease_put(l, "a", 2, "w1", 1, 9000));
	IDN_PASS(wire_wr_new(&w));
	wire_map(w, 7);
	wire_kstr(w, "op", "done");
	wire_kstr(w, "job", "a");
	wire_ku64(w, "batch", 1);
	wire_kstr(w, "worker", "w3");
	wire_ku64(w, "attempt", 1);
	wire_kf64(w, "ms", 2.0);
	wire_ku64(w, "t", 9200);
	IDN_PASS(apply_wr(l, w));
	ledger_row a1 = {0};
	IDN_PASS(ledger_tasks(l, false, "a", marks_of_a1, &a1));
	assert_string_equal(a1.worker, "w3");
	assert_int_equal(a1.end_ms, 9200);
	assert_int_equal(a1.lease_ms, 0);
	assert_int_equal(a1.model_end_ms, 0);
	IDN_PASS(wire_wr_new(&w));
	wire_map(w, 5);
	wire_kstr(w, "op", "state");
	wire_kstr(w, "job", "a");
	wire_ku64(w, "state", IDN_JOB_DONE);
	wire_kf64(w, "accuracy", 0.5);
	wire_kstr(w, "err", "");
	IDN_PASS(apply_wr(l, w));
	int leases = 0;
	IDN_PASS(ledger_tasks(l, true, NULL, count_batch, &leases));
	assert_int_equal(leases, 0);
	IDN_FAIL(coord_change_apply(l, (const uint8_t *) "\x81\xa2op\xa3zzz",
	    8), IDN_EPROTO);
	IDN_FAIL(coord_change_apply(l, (const uint8_t *) "junk", 4),
	    IDN_EPROTO);
	ledger_close(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_image_then_changes),
	    cmocka_unit_test(test_sync_without_standby),
	    cmocka_unit_test(test_change_records),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
