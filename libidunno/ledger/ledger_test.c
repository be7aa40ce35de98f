// SPDX-License-Identifier: MIT
// ledger_test.c: changes applied, read back after a reopen, streamed to a
// copy that ends identical, and a checkpoint image restored.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#include "ledger/ledger.h"
#include "record/record.h"

typedef struct {
	ledger *copy;
	int n;
} stream_ctx;

static void
to_copy(void *arg, const uint8_t *change, size_t len)
{
	stream_ctx *s = arg;
	s->n++;
	assert_int_equal(ledger_apply(s->copy, change, len), IDN_OK);
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
	s->rate = 12.5;
	s->limit = 100;
}

typedef struct {
	int jobs, batches;
	char names[4][70];
	int states[4];
	double ms;
} seen;

static void
on_job(void *arg, const ledger_job *j)
{
	seen *s = arg;
	snprintf(s->names[s->jobs], sizeof(s->names[0]), "%s", j->spec.job);
	s->states[s->jobs++] = j->state;
	assert_int_equal(j->spec.batch, 8);
	assert_true(j->spec.rate == 12.5);
}

static void
on_batch(void *arg, const char *worker, const record_done *d)
{
	seen *s = arg;
	s->batches++;
	s->ms += d->ms;
}

// A completion without the worker's marks.
static int
done(ledger *l, const char *job, uint32_t batch, const char *worker,
    uint32_t attempt, double ms, uint64_t end_ms)
{
	record_done d = {.batch = batch, .attempt = attempt, .ms = ms,
	    .end_ms = end_ms};
	snprintf(d.job, sizeof(d.job), "%s", job);
	return ledger_batch_done(l, worker, &d);
}

static void
check(ledger *l, int jobs, int batches, int leases)
{
	seen s = {0}, le = {0};
	assert_int_equal(ledger_jobs(l, on_job, &s), IDN_OK);
	assert_int_equal(ledger_batches(l, false, NULL, on_batch, &s), IDN_OK);
	assert_int_equal(ledger_batches(l, true, NULL, on_batch, &le), IDN_OK);
	assert_int_equal(s.jobs, jobs);
	assert_int_equal(s.batches, batches);
	assert_int_equal(le.batches, leases);
	if (jobs == 2) {
		assert_string_equal(s.names[0], "a");
		assert_int_equal(s.states[0], IDN_JOB_DONE);
		assert_string_equal(s.names[1], "b");
		assert_int_equal(s.states[1], IDN_JOB_RUNNING);
		assert_true(s.ms == 7.5);
	}
}

static void
test_changes_stream_and_checkpoint(void **st)
{
	const char *dir = idn_test_tmpdir();
	char path[4200], copy_path[4200], img_path[4200];
	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	snprintf(copy_path, sizeof(copy_path), "%s/copy.db", dir);
	snprintf(img_path, sizeof(img_path), "%s/img.db", dir);
	ledger *l, *copy;
	IDN_PASS(ledger_open(path, &l));
	IDN_PASS(ledger_open(copy_path, &copy));
	stream_ctx sc = {copy, 0};
	ledger_set_stream(l, to_copy, &sc);
	record_spec a, b;
	spec(&a, "a");
	spec(&b, "b");
	IDN_PASS(ledger_set(l, "epoch", 1));
	IDN_PASS(ledger_job_put(l, &a, IDN_JOB_RUNNING, 1000));
	IDN_PASS(ledger_job_put(l, &b, IDN_JOB_RUNNING, 1001));
	IDN_PASS(ledger_lease_put(l, "a", 0, "w1", 1, 5000));
	IDN_PASS(ledger_lease_put(l, "b", 3, "w2", 2, 5000));
	IDN_PASS(done(l, "a", 0, "w1", 1, 2.5, 1200));
	// A second completion of the same batch is ignored.
	IDN_PASS(done(l, "a", 0, "w3", 2, 9.0, 1300));
	IDN_PASS(done(l, "b", 1, "w2", 1, 5.0, 1400));
	IDN_PASS(ledger_job_state(l, "a", IDN_JOB_DONE, 0.5, ""));
	IDN_FAIL(ledger_apply(l, (const uint8_t *) "\x81\xa2op\xa3zzz", 8),
	    IDN_EPROTO);
	IDN_FAIL(ledger_apply(l, (const uint8_t *) "junk", 4), IDN_EPROTO);
	assert_int_equal(sc.n, 9);
	// The done job holds no lease; b's lease stays.
	check(l, 2, 2, 1);
	check(copy, 2, 2, 1);
	uint64_t v = 0;
	IDN_PASS(ledger_get(l, "epoch", &v));
	assert_int_equal(v, 1);
	IDN_FAIL(ledger_get(l, "nosuch", &v), IDN_ENOENT);

	// A checkpoint image opens as the same ledger.
	void *img;
	size_t len;
	IDN_PASS(ledger_image(l, &img, &len));
	ledger *r;
	IDN_PASS(ledger_open_image(img_path, img, len, &r));
	check(r, 2, 2, 1);
	ledger_close(r);
	IDN_FAIL(ledger_open_image(img_path, "not sqlite", 10, &r),
	    IDN_ECORRUPT);
	// A setting read from the image without opening it as a file (the
	// epoch of an SDFS checkpoint); a text setting streams too.
	v = 0;
	IDN_PASS(ledger_image_get(img, len, "epoch", &v));
	assert_int_equal(v, 1);
	IDN_FAIL(ledger_image_get(img, len, "nosuch", &v), IDN_ENOENT);
	IDN_FAIL(ledger_image_get("not sqlite", 10, "epoch", &v),
	    IDN_ECORRUPT);
	idn_free(img);
	char *text = NULL;
	IDN_PASS(ledger_set_text(l, "assign", "w1\ta 1.0000\n"));
	IDN_PASS(ledger_get_text(copy, "assign", &text));
	assert_string_equal(text, "w1\ta 1.0000\n");
	free(text);
	IDN_FAIL(ledger_get_text(copy, "epoch", &text), IDN_ENOENT);

	// Reopened from disk; a job forgotten leaves nothing of it.
	ledger_close(l);
	IDN_PASS(ledger_open(path, &l));
	check(l, 2, 2, 1);
	IDN_PASS(ledger_job_forget(l, "b"));
	seen s = {0};
	IDN_PASS(ledger_jobs(l, on_job, &s));
	assert_int_equal(s.jobs, 1);
	ledger_close(l);
	ledger_close(copy);
}

// A lease call's changes in one transaction: streamed as applied, read
// back inside it, on disk after the commit; nesting commits once. Many
// changes (past a WAL checkpoint) survive a reopen.
static void
test_transaction(void **st)
{
	const char *dir = idn_test_tmpdir();
	char path[4200], copy_path[4200];
	snprintf(path, sizeof(path), "%s/tx.db", dir);
	snprintf(copy_path, sizeof(copy_path), "%s/txcopy.db", dir);
	ledger *l, *copy;
	IDN_PASS(ledger_open(path, &l));
	IDN_PASS(ledger_open(copy_path, &copy));
	stream_ctx sc = {copy, 0};
	ledger_set_stream(l, to_copy, &sc);
	record_spec a;
	spec(&a, "a");
	IDN_PASS(ledger_job_put(l, &a, IDN_JOB_RUNNING, 1000));
	IDN_PASS(ledger_begin(l));
	IDN_PASS(ledger_begin(l));
	IDN_PASS(ledger_lease_put(l, "a", 1, "w1", 1, 5000));
	IDN_PASS(ledger_commit(l)); // inner: nothing committed yet
	IDN_PASS(done(l, "a", 0, "w1", 1, 2.5, 1200));
	assert_int_equal(sc.n, 3);
	check(l, 1, 1, 1);
	IDN_PASS(ledger_commit(l));
	IDN_PASS(ledger_commit(l)); // unmatched: no effect
	check(copy, 1, 1, 1);
	for (uint32_t k = 2; k < 3000; k++) {
		IDN_PASS(ledger_begin(l));
		IDN_PASS(done(l, "a", k, "w1", 1, 1.0, 1300 + k));
		IDN_PASS(ledger_commit(l));
	}
	ledger_close(l);
	IDN_PASS(ledger_open(path, &l));
	check(l, 1, 2999, 1);
	ledger_close(l);
	ledger_close(copy);
}

static void
on_marks(void *arg, const char *worker, const record_done *d)
{
	record_done *out = arg;
	assert_string_equal(d->job, "a"); // the other job's row is not read
	out[d->batch] = *d;
}

// A completion's wall-clock marks (lease, start, the model's span) are
// kept; a record without them (an older coordinator) reads as 0.
static void
test_done_marks(void **st)
{
	(void) st;
	record_done d = {.job = "a", .batch = 4, .attempt = 2, .ms = 3.5,
	    .busy_ms = 4.5, .end_ms = 9000, .lease_ms = 8000,
	    .start_ms = 8100, .model_start_ms = 8200, .model_end_ms = 8300};
	char path[4200];
	snprintf(path, sizeof(path), "%s/marks.db", idn_test_tmpdir());
	ledger *l;
	wire_wr *w;
	record_spec a, b;
	spec(&a, "a");
	spec(&b, "b");
	IDN_PASS(ledger_open(path, &l));
	IDN_PASS(ledger_job_put(l, &a, IDN_JOB_RUNNING, 1000));
	IDN_PASS(ledger_job_put(l, &b, IDN_JOB_RUNNING, 1000));
	IDN_PASS(ledger_batch_done(l, "w1", &d));
	IDN_PASS(done(l, "b", 4, "w2", 1, 1.0, 9100));
	// An older coordinator's record, streamed to this standby.
	IDN_PASS(wire_wr_new(&w));
	wire_map(w, 7);
	wire_kstr(w, "op", "done");
	wire_kstr(w, "job", "a");
	wire_ku64(w, "batch", 1);
	wire_kstr(w, "worker", "w3");
	wire_ku64(w, "attempt", 1);
	wire_kf64(w, "ms", 2.0);
	wire_ku64(w, "t", 9200);
	const uint8_t *rec;
	size_t len;
	IDN_PASS(wire_wr_bytes(w, &rec, &len));
	IDN_PASS(ledger_apply(l, rec, len));
	wire_wr_free(w);
	record_done rows[5] = {0};
	IDN_PASS(ledger_batches(l, false, "a", on_marks, rows));
	assert_int_equal(rows[4].attempt, 2);
	assert_true(rows[4].ms == 3.5);
	assert_int_equal(rows[4].end_ms, 9000);
	assert_int_equal(rows[4].lease_ms, 8000);
	assert_int_equal(rows[4].start_ms, 8100);
	assert_int_equal(rows[4].model_start_ms, 8200);
	assert_int_equal(rows[4].model_end_ms, 8300);
	assert_true(rows[4].busy_ms == 0);
	assert_int_equal(rows[1].end_ms, 9200);
	assert_int_equal(rows[1].lease_ms, 0);
	assert_int_equal(rows[1].model_end_ms, 0);
	ledger_close(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_changes_stream_and_checkpoint),
	    cmocka_unit_test(test_transaction),
	    cmocka_unit_test(test_done_marks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
