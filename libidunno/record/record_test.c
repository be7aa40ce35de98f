// SPDX-License-Identifier: MIT
// record_test.c: specs checked and carried (defaults for fields an older
// sender lacks), and the lease call's completions with and without the
// worker's marks.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#include "record/record.h"

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

static void
test_spec_check(void **st)
{
	(void) st;
	record_spec s;
	spec(&s, "j1");
	assert_null(record_spec_check(&s));
	s.batch = 0;
	assert_non_null(record_spec_check(&s));
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
	assert_null(record_spec_check(&s));
	s.batch = 1;
	assert_non_null(strstr(record_spec_check(&s), "2 or more"));
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
		const char *why = record_spec_check(&s);
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
	assert_non_null(strstr(record_spec_check(&s), "augmentation"));
	s.augment = IDN_MODEL_AUG_FLIP;
	s.crop_pad = 65;
	assert_non_null(strstr(record_spec_check(&s), "crop"));
	s.crop_pad = 2;
	assert_null(record_spec_check(&s));
	// They survive the wire; a spec without them (an older sender)
	// reads back with the defaults.
	wire_wr *w;
	IDN_PASS(wire_wr_new(&w));
	record_spec_put(w, &s);
	const uint8_t *data;
	size_t len;
	IDN_PASS(wire_wr_bytes(w, &data, &len));
	wire_doc *d;
	record_spec back;
	IDN_PASS(wire_doc_parse(data, len, &d));
	IDN_PASS(record_spec_get(wire_doc_root(d), &back));
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
	record_spec_put(w, &s); // an inference spec: no training fields
	IDN_PASS(wire_wr_bytes(w, &data, &len));
	IDN_PASS(wire_doc_parse(data, len, &d));
	IDN_PASS(record_spec_get(wire_doc_root(d), &back));
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
	record_spec s, back;
	spec(&s, "g");
	s.group = group;
	wire_wr *w;
	IDN_PASS(wire_wr_new(&w));
	record_spec_put(w, &s);
	const uint8_t *data;
	size_t len;
	IDN_PASS(wire_wr_bytes(w, &data, &len));
	wire_doc *d;
	IDN_PASS(wire_doc_parse(data, len, &d));
	IDN_PASS(record_spec_get(wire_doc_root(d), &back));
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
	assert_int_equal(group_round_trip(RECORD_GROUP_MAX), RECORD_GROUP_MAX);
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
decode_call(wire_wr *w, record_lease_req *r)
{
	const uint8_t *data;
	size_t len;
	wire_doc *d;
	IDN_PASS(wire_wr_bytes(w, &data, &len));
	IDN_PASS(wire_doc_parse(data, len, &d));
	int rv = record_lease_req_get(wire_doc_root(d), r);
	wire_doc_free(d);
	wire_wr_free(w);
	return rv;
}

// A completion carries the worker's wall-clock marks (lease, start, the
// model's span) through the lease call; a call without them (an older
// worker) reads as 0, a mark of the wrong type is a malformed call.
static void
test_done_marks(void **st)
{
	(void) st;
	record_done d = {.job = "a", .task = 4, .attempt = 2, .ms = 3.5,
	    .busy_ms = 4.5, .end_ms = 9000, .lease_ms = 8000,
	    .start_ms = 8100, .model_start_ms = 8200, .model_end_ms = 8300};
	record_lease_req r = {.worker = "w1", .epoch = 3, .want = 2,
	    .done = &d, .ndone = 1}, back;
	wire_wr *w;
	IDN_PASS(wire_wr_new(&w));
	record_lease_req_put(w, &r);
	IDN_PASS(decode_call(w, &back));
	assert_int_equal(back.ndone, 1);
	assert_string_equal(back.done[0].job, "a");
	assert_int_equal(back.done[0].end_ms, 9000);
	assert_int_equal(back.done[0].lease_ms, 8000);
	assert_int_equal(back.done[0].start_ms, 8100);
	assert_int_equal(back.done[0].model_start_ms, 8200);
	assert_int_equal(back.done[0].model_end_ms, 8300);
	record_lease_req_clear(&back);
	IDN_PASS(wire_wr_new(&w));
	old_call(w, NULL);
	IDN_PASS(decode_call(w, &back));
	assert_int_equal(back.ndone, 1);
	assert_int_equal(back.done[0].task, 4);
	assert_int_equal(back.done[0].end_ms, 9000);
	assert_int_equal(back.done[0].lease_ms, 0);
	assert_int_equal(back.done[0].start_ms, 0);
	assert_int_equal(back.done[0].model_start_ms, 0);
	assert_int_equal(back.done[0].model_end_ms, 0);
	record_lease_req_clear(&back);
	IDN_PASS(wire_wr_new(&w));
	old_call(w, "model_end_ms");
	IDN_FAIL(decode_call(w, &back), IDN_EPROTO);
	assert_null(back.done);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec_check),
	    cmocka_unit_test(test_spec_group),
	    cmocka_unit_test(test_done_marks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
