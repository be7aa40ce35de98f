// SPDX-License-Identifier: MIT
// dash_test.c: the Prometheus text of a snapshot (names, labels escaped,
// cumulative buckets in seconds) and the HTTP routes of a dashboard.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/sched.h>

#include "harness.h"
#include "dash/dash.h"
#include "sched/stats.h"

static bool
has_line(const core_buf *b, const char *line)
{
	char *text = strndup((const char *) b->data, b->len);
	bool found = false;
	for (char *p = text; p != NULL && !found;) {
		char *nl = strchr(p, '\n');
		if (nl != NULL) {
			*nl = '\0';
		}
		found = strcmp(p, line) == 0;
		p = nl != NULL ? nl + 1 : NULL;
	}
	free(text);
	return found;
}

static void
test_metrics_text(void **state)
{
	(void) state;
	sched_stats *proc, *lat;
	IDN_PASS(sched_stats_new(&proc));
	IDN_PASS(sched_stats_new(&lat));
	sched_stats_add(proc, 2.0, 30, 1000);     // 2 ms each
	sched_stats_add(proc, 20.0, 2, 1000);     // 20 ms
	sched_stats_add(lat, 300.0, 32, 1000);    // 0.3 s
	coord_job_view jobs[] = {
	    {"a\"b", "lenet", IDN_JOB_INFER, IDN_JOB_RUNNING, 32, 100, -1,
	        proc, lat, 2},
	    {"t", "lenet", IDN_JOB_TRAIN, IDN_JOB_DONE, 2, 2, 0.8, NULL, NULL,
	        0},
	};
	const char *workers[] = {"127.0.0.1:9:1"};
	uint32_t leases[] = {3};
	coord_view v = {IDN_PHASE_INFER, 1, 1.05, "{}", 2, jobs, 1, workers,
	    leases};
	idn_member m = {.id = "127.0.0.1:9:1", .role = "worker",
	    .state = IDN_MEMBER_FAILED};
	core_buf b = {0};
	dash_metrics(&v, &m, 1, &b);
	assert_true(has_line(&b, "# TYPE idunno_queries_total counter"));
	assert_true(has_line(&b, "idunno_queries_total{job=\"a\\\"b\"} 32"));
	assert_true(has_line(&b, "idunno_job_queries{job=\"a\\\"b\"} 100"));
	assert_true(has_line(&b, "idunno_training_epochs_total{job=\"t\"} 2"));
	assert_true(has_line(&b, "idunno_phase{phase=\"infer\"} 1"));
	assert_true(has_line(&b, "idunno_job_accuracy_ratio{job=\"t\"} 0.8"));
	assert_true(has_line(&b, "# TYPE idunno_query_processing_seconds "
	    "histogram"));
	assert_true(has_line(&b, "idunno_query_processing_seconds_bucket{"
	    "job=\"a\\\"b\",le=\"0.001\"} 0"));
	assert_true(has_line(&b, "idunno_query_processing_seconds_bucket{"
	    "job=\"a\\\"b\",le=\"0.0025\"} 30"));
	assert_true(has_line(&b, "idunno_query_processing_seconds_bucket{"
	    "job=\"a\\\"b\",le=\"0.025\"} 32"));
	assert_true(has_line(&b, "idunno_query_processing_seconds_bucket{"
	    "job=\"a\\\"b\",le=\"+Inf\"} 32"));
	assert_true(has_line(&b, "idunno_query_processing_seconds_sum{"
	    "job=\"a\\\"b\"} 0.1"));
	assert_true(has_line(&b, "idunno_query_latency_seconds_bucket{"
	    "job=\"a\\\"b\",le=\"0.25\"} 0"));
	assert_true(has_line(&b, "idunno_query_latency_seconds_bucket{"
	    "job=\"a\\\"b\",le=\"0.5\"} 32"));
	assert_true(has_line(&b, "idunno_leases_held{node=\"127.0.0.1:9:1\"} "
	    "3"));
	assert_true(has_line(&b, "idunno_member_state{node=\"127.0.0.1:9:1\","
	    "role=\"worker\"} 2"));
	core_buf_free(&b);
	sched_stats_free(proc);
	sched_stats_free(lat);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_metrics_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
