// SPDX-License-Identifier: MIT
// sched_test.h: the tests of sched_job_test.c, which sched_test.c's main
// runs with its own.
#ifndef IDN_SCHED_TEST_H
#define IDN_SCHED_TEST_H

void test_stats_known(void **st);
void test_stats_many(void **st);
void test_stats_rates(void **st);
void test_job_arrivals(void **st);
void test_job_partial_and_order(void **st);
void test_job_exactly_once(void **st);
void test_job_expiry(void **st);
void test_job_renew(void **st);
void test_job_reclaim(void **st);
void test_job_restore(void **st);
void test_job_churn(void **st);
void test_job_lease_ahead(void **st);

#endif
