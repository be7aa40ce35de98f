// SPDX-License-Identifier: MIT
// ledger_test.c: changes applied, read back after a reopen, streamed to a
// copy that ends identical, and a checkpoint image restored.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#include "ledger/ledger.h"
#include "ledger/msg.h"

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
spec(ledger_spec *s, const char *job)
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
on_batch(void *arg, const char *worker, const ledger_done *d)
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
	ledger_done d = {.batch = batch, .attempt = attempt, .ms = ms,
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
	ledger_spec a, b;
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

static void
test_spec_check(void **st)
{
	(void) st;
	ledger_spec s;
	spec(&s, "j1");
	assert_null(ledger_spec_check(&s));
	s.batch = 0;
	assert_non_null(ledger_spec_check(&s));
	// Training: a batch of one image trains nothing (BatchNorm).
	memset(&s, 0, sizeof(s));
	s.kind = IDN_JOB_TRAIN;
	snprintf(s.job, sizeof(s.job), "t1");
	snprintf(s.model, sizeof(s.model), "m");
	snprintf(s.data, sizeof(s.data), "datasets/x");
	s.epochs = 1;
	s.lr = 0.01;
	s.batch = 2;
	s.workers = 1;
	s.momentum = 0.9;
	s.checkpoint_s = 30;
	s.sync_every = 1;
	assert_null(ledger_spec_check(&s));
	s.batch = 1;
	assert_non_null(strstr(ledger_spec_check(&s), "2 or more"));
	// Data-parallel options: every refusal names its option.
	struct {
		uint32_t workers, batch, ckpt;
		double momentum, wd;
		int from;
		const char *why;
	} bad[] = {
		{0, 64, 30, 0.9, 0, 0, "workers"},
		{17, 64, 30, 0.9, 0, 0, "workers"},
		{4, 7, 30, 0.9, 0, 0, "global batch"},
		{1, 64, 30, 1.0, 0, 0, "momentum"},
		{1, 64, 30, 0.9, -1, 0, "weight decay"},
		{1, 64, 30, 0.9, 0, 2, "from"},
		{1, 64, 0, 0.9, 0, 0, "checkpoint"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s.workers = bad[i].workers;
		s.batch = bad[i].batch;
		s.checkpoint_s = bad[i].ckpt;
		s.momentum = bad[i].momentum;
		s.weight_decay = bad[i].wd;
		s.from = bad[i].from;
		const char *why = ledger_spec_check(&s);
		assert_non_null(why);
		assert_non_null(strstr(why, bad[i].why));
	}
	s.workers = 4;
	s.batch = 8;
	s.checkpoint_s = 5;
	s.momentum = 0;
	s.weight_decay = 5e-4;
	s.from = IDN_TRAIN_FROM_WEIGHTS;
	s.augment = 2;
	assert_non_null(strstr(ledger_spec_check(&s), "augmentation"));
	s.augment = IDN_MODEL_AUG_FLIP;
	s.crop_pad = 65;
	assert_non_null(strstr(ledger_spec_check(&s), "crop"));
	s.crop_pad = 2;
	assert_null(ledger_spec_check(&s));
	// They survive the wire; a spec without them (an older sender)
	// reads back with the defaults.
	wire_wr *w;
	IDN_PASS(wire_wr_new(&w));
	ledger_spec_put(w, &s);
	const uint8_t *data;
	size_t len;
	IDN_PASS(wire_wr_bytes(w, &data, &len));
	wire_doc *d;
	ledger_spec back;
	IDN_PASS(wire_doc_parse(data, len, &d));
	IDN_PASS(ledger_spec_get(wire_doc_root(d), &back));
	wire_doc_free(d);
	wire_wr_free(w);
	assert_int_equal(back.workers, 4);
	assert_int_equal(back.checkpoint_s, 5);
	assert_int_equal(back.from, IDN_TRAIN_FROM_WEIGHTS);
	assert_true(back.weight_decay == 5e-4 && back.momentum == 0);
	assert_int_equal(back.augment, IDN_MODEL_AUG_FLIP);
	assert_int_equal(back.crop_pad, 2);
	spec(&s, "old");
	IDN_PASS(wire_wr_new(&w));
	ledger_spec_put(w, &s); // an inference spec: no training fields
	IDN_PASS(wire_wr_bytes(w, &data, &len));
	IDN_PASS(wire_doc_parse(data, len, &d));
	IDN_PASS(ledger_spec_get(wire_doc_root(d), &back));
	wire_doc_free(d);
	wire_wr_free(w);
	assert_int_equal(back.workers, 1);
	assert_int_equal(back.checkpoint_s, 30);
	assert_int_equal(back.sync_every, 1);
	assert_int_equal(back.augment, 0);
	assert_int_equal(back.crop_pad, 0);
	assert_true(back.momentum == 0.9 && back.weight_decay == 0);
}

static uint32_t
group_round_trip(uint32_t group)
{
	ledger_spec s, back;
	spec(&s, "g");
	s.group = group;
	wire_wr *w;
	IDN_PASS(wire_wr_new(&w));
	ledger_spec_put(w, &s);
	const uint8_t *data;
	size_t len;
	IDN_PASS(wire_wr_bytes(w, &data, &len));
	wire_doc *d;
	IDN_PASS(wire_doc_parse(data, len, &d));
	IDN_PASS(ledger_spec_get(wire_doc_root(d), &back));
	wire_doc_free(d);
	wire_wr_free(w);
	assert_int_equal(back.batch, 8);
	return back.group;
}

// A spec carries its result group; an unset one (0) means 1.
static void
test_spec_group(void **st)
{
	(void) st;
	assert_int_equal(group_round_trip(9), 9);
	assert_int_equal(group_round_trip(0), 1);
	assert_int_equal(group_round_trip(LEDGER_GROUP_MAX), LEDGER_GROUP_MAX);
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
	ledger_spec a;
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

// Encodes a lease call whose one done entry has the fields of an older
// worker, and mark (when not NULL) with a value of the wrong type.
static void
old_call(wire_wr *w, const char *mark)
{
	wire_map(w, 6);
	wire_kstr(w, "worker", "w1");
	wire_ku64(w, "epoch", 3);
	wire_ku64(w, "want", 2);
	wire_str(w, "done");
	wire_arr(w, 1);
	wire_map(w, mark ? 8 : 7);
	wire_kstr(w, "job", "a");
	wire_ku64(w, "batch", 4);
	wire_ku64(w, "attempt", 2);
	wire_kf64(w, "ms", 3.5);
	wire_kf64(w, "busy_ms", 4.5);
	wire_ku64(w, "end_ms", 9000);
	wire_ku64(w, "rc", 0);
	if (mark != NULL) {
		wire_kstr(w, mark, "soon");
	}
	wire_str(w, "held");
	wire_arr(w, 0);
	wire_str(w, "train");
	wire_arr(w, 0);
}

static int
decode_call(wire_wr *w, ledger_lease_req *r)
{
	const uint8_t *data;
	size_t len;
	wire_doc *d;
	IDN_PASS(wire_wr_bytes(w, &data, &len));
	IDN_PASS(wire_doc_parse(data, len, &d));
	int rv = ledger_lease_req_get(wire_doc_root(d), r);
	wire_doc_free(d);
	wire_wr_free(w);
	return rv;
}

static void
on_marks(void *arg, const char *worker, const ledger_done *d)
{
	ledger_done *out = arg;
	assert_string_equal(d->job, "a"); // the other job's row is not read
	out[d->batch] = *d;
}

// A completion carries the worker's wall-clock marks (lease, start, the
// model's span) through the lease call and into the ledger; a call or
// a record without them (an older worker or coordinator) reads as 0, a
// mark of the wrong type is a malformed call.
static void
test_done_marks(void **st)
{
	(void) st;
	ledger_done d = {.job = "a", .batch = 4, .attempt = 2, .ms = 3.5,
	    .busy_ms = 4.5, .end_ms = 9000, .lease_ms = 8000,
	    .start_ms = 8100, .model_start_ms = 8200, .model_end_ms = 8300};
	ledger_lease_req r = {.worker = "w1", .epoch = 3, .want = 2,
	    .done = &d, .ndone = 1}, back;
	wire_wr *w;
	IDN_PASS(wire_wr_new(&w));
	ledger_lease_req_put(w, &r);
	IDN_PASS(decode_call(w, &back));
	assert_int_equal(back.ndone, 1);
	assert_string_equal(back.done[0].job, "a");
	assert_int_equal(back.done[0].end_ms, 9000);
	assert_int_equal(back.done[0].lease_ms, 8000);
	assert_int_equal(back.done[0].start_ms, 8100);
	assert_int_equal(back.done[0].model_start_ms, 8200);
	assert_int_equal(back.done[0].model_end_ms, 8300);
	ledger_lease_req_clear(&back);
	IDN_PASS(wire_wr_new(&w));
	old_call(w, NULL);
	IDN_PASS(decode_call(w, &back));
	assert_int_equal(back.ndone, 1);
	assert_int_equal(back.done[0].batch, 4);
	assert_int_equal(back.done[0].end_ms, 9000);
	assert_int_equal(back.done[0].lease_ms, 0);
	assert_int_equal(back.done[0].start_ms, 0);
	assert_int_equal(back.done[0].model_start_ms, 0);
	assert_int_equal(back.done[0].model_end_ms, 0);
	ledger_lease_req_clear(&back);
	IDN_PASS(wire_wr_new(&w));
	old_call(w, "model_end_ms");
	IDN_FAIL(decode_call(w, &back), IDN_EPROTO);
	assert_null(back.done);

	char path[4200];
	snprintf(path, sizeof(path), "%s/marks.db", idn_test_tmpdir());
	ledger *l;
	ledger_spec a, b;
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
	ledger_done rows[5] = {0};
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
	    cmocka_unit_test(test_spec_check),
	    cmocka_unit_test(test_spec_group),
	    cmocka_unit_test(test_transaction),
	    cmocka_unit_test(test_done_marks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
