// SPDX-License-Identifier: MIT
// ledger_test.c: changes applied, read back after a reopen, streamed to a
// copy that ends identical, and a checkpoint image restored.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#include "ledger/ledger.h"

typedef struct {
	ledger *copy;
	int n;
} stream_ctx;

static void
to_copy(void *arg, const ledger_change *c)
{
	stream_ctx *s = arg;
	s->n++;
	assert_int_equal(ledger_apply(s->copy, c), IDN_OK);
}

// A job whose spec is "spec of JOB": the ledger keeps it as it is.
static int
job_put(ledger *l, const char *job, int state, uint64_t start_ms)
{
	char spec[80];
	snprintf(spec, sizeof(spec), "spec of %s", job);
	return ledger_job_put(l, job, spec, strlen(spec), state, start_ms);
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
	char spec[80];
	snprintf(s->names[s->jobs], sizeof(s->names[0]), "%s", j->name);
	s->states[s->jobs++] = j->state;
	snprintf(spec, sizeof(spec), "spec of %s", j->name);
	assert_int_equal(j->spec_len, strlen(spec));
	assert_memory_equal(j->spec, spec, j->spec_len);
}

static void
on_batch(void *arg, const char *job, const ledger_row *d)
{
	seen *s = arg;
	s->batches++;
	s->ms += d->ms;
}

// A completion without the worker's marks.
static int
done(ledger *l, const char *job, uint32_t task, const char *worker,
    uint32_t attempt, double ms, uint64_t end_ms)
{
	ledger_row r = {.task = task, .attempt = attempt, .ms = ms,
	    .end_ms = end_ms};
	snprintf(r.worker, sizeof(r.worker), "%s", worker);
	return ledger_task_done(l, job, &r);
}

static void
check(ledger *l, int jobs, int batches, int leases)
{
	seen s = {0}, le = {0};
	assert_int_equal(ledger_jobs(l, on_job, &s), IDN_OK);
	assert_int_equal(ledger_tasks(l, false, NULL, on_batch, &s), IDN_OK);
	assert_int_equal(ledger_tasks(l, true, NULL, on_batch, &le), IDN_OK);
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
	const char *dir = th_tmpdir();
	char path[4200], copy_path[4200], img_path[4200];
	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	snprintf(copy_path, sizeof(copy_path), "%s/copy.db", dir);
	snprintf(img_path, sizeof(img_path), "%s/img.db", dir);
	ledger *l, *copy;
	IDN_PASS(ledger_open(path, &l));
	IDN_PASS(ledger_open(copy_path, &copy));
	stream_ctx sc = {copy, 0};
	ledger_set_stream(l, to_copy, &sc);
	IDN_PASS(ledger_set(l, "epoch", 1));
	IDN_PASS(job_put(l, "a", IDN_JOB_RUNNING, 1000));
	IDN_PASS(job_put(l, "b", IDN_JOB_RUNNING, 1001));
	IDN_PASS(ledger_lease_put(l, "a", 0, "w1", 1, 5000));
	IDN_PASS(ledger_lease_put(l, "b", 3, "w2", 2, 5000));
	IDN_PASS(done(l, "a", 0, "w1", 1, 2.5, 1200));
	// A second completion of the same task is ignored.
	IDN_PASS(done(l, "a", 0, "w3", 2, 9.0, 1300));
	IDN_PASS(done(l, "b", 1, "w2", 1, 5.0, 1400));
	IDN_PASS(ledger_job_state(l, "a", IDN_JOB_DONE, true, 0.5, ""));
	ledger_change bad = {.op = -1};
	IDN_FAIL(ledger_apply(l, &bad), IDN_EINVAL);
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
	const char *dir = th_tmpdir();
	char path[4200], copy_path[4200];
	snprintf(path, sizeof(path), "%s/tx.db", dir);
	snprintf(copy_path, sizeof(copy_path), "%s/txcopy.db", dir);
	ledger *l, *copy;
	IDN_PASS(ledger_open(path, &l));
	IDN_PASS(ledger_open(copy_path, &copy));
	stream_ctx sc = {copy, 0};
	ledger_set_stream(l, to_copy, &sc);
	IDN_PASS(job_put(l, "a", IDN_JOB_RUNNING, 1000));
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
on_marks(void *arg, const char *job, const ledger_row *r)
{
	ledger_row *out = arg;
	assert_string_equal(job, "a"); // the other job's row is not read
	out[r->task] = *r;
}

// A completion's wall-clock marks (lease, start, the model's span) are
// kept; a row without them reads as 0.
static void
test_done_marks(void **st)
{
	(void) st;
	ledger_row r = {.worker = "w1", .task = 4, .attempt = 2, .ms = 3.5,
	    .end_ms = 9000, .lease_ms = 8000, .start_ms = 8100,
	    .model_start_ms = 8200, .model_end_ms = 8300};
	char path[4200];
	snprintf(path, sizeof(path), "%s/marks.db", th_tmpdir());
	ledger *l;
	IDN_PASS(ledger_open(path, &l));
	IDN_PASS(job_put(l, "a", IDN_JOB_RUNNING, 1000));
	IDN_PASS(job_put(l, "b", IDN_JOB_RUNNING, 1000));
	IDN_PASS(ledger_task_done(l, "a", &r));
	IDN_PASS(done(l, "a", 1, "w3", 1, 2.0, 9200));
	IDN_PASS(done(l, "b", 4, "w2", 1, 1.0, 9100));
	ledger_row rows[5] = {0};
	IDN_PASS(ledger_tasks(l, false, "a", on_marks, rows));
	assert_string_equal(rows[4].worker, "w1");
	assert_int_equal(rows[4].attempt, 2);
	assert_true(rows[4].ms == 3.5);
	assert_int_equal(rows[4].end_ms, 9000);
	assert_int_equal(rows[4].lease_ms, 8000);
	assert_int_equal(rows[4].start_ms, 8100);
	assert_int_equal(rows[4].model_start_ms, 8200);
	assert_int_equal(rows[4].model_end_ms, 8300);
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
