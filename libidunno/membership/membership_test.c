// SPDX-License-Identifier: MIT
// membership_test.c: the SWIM table's rules, without the network.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "membership/member_msg.h"
#include "membership/members.h"

static idn_member
mk(const char *addr, uint64_t start, int state, uint64_t inc)
{
	idn_member m = {.state = state, .incarnation = inc};
	snprintf(m.id, sizeof(m.id), "%s:%llu", addr, (unsigned long long) start);
	snprintf(m.addr, sizeof(m.addr), "%s", addr);
	snprintf(m.role, sizeof(m.role), "worker");
	return m;
}

static int
last_event(mtable *t)
{
	return t->nev ? t->ev[t->nev - 1].event : -1;
}

static void
test_join_and_suspect_refuted(void **st)
{
	mtable t;
	idn_member self = mk("127.0.0.1:1", 100, IDN_MEMBER_ALIVE, 0);
	idn_member b = mk("127.0.0.1:2", 100, IDN_MEMBER_ALIVE, 0);
	IDN_PASS(mtable_init(&t, &self, 1000));
	mtable_apply(&t, &b, 0);
	assert_int_equal(last_event(&t), IDN_EV_JOIN);
	mtable_suspect(&t, b.id, 10);
	assert_int_equal(mtable_find(&t, b.id)->m.state, IDN_MEMBER_SUSPECT);
	assert_int_equal(last_event(&t), IDN_EV_SUSPECT);
	// The same incarnation cannot refute; a higher one does.
	b.incarnation = 0;
	mtable_apply(&t, &b, 20);
	assert_int_equal(mtable_find(&t, b.id)->m.state, IDN_MEMBER_SUSPECT);
	b.incarnation = 1;
	mtable_apply(&t, &b, 30);
	assert_int_equal(mtable_find(&t, b.id)->m.state, IDN_MEMBER_ALIVE);
	assert_int_equal(last_event(&t), IDN_EV_ALIVE);
	// The refuted suspicion's deadline must not fire.
	mtable_tick(&t, 5000);
	assert_int_equal(mtable_find(&t, b.id)->m.state, IDN_MEMBER_ALIVE);
	mtable_fini(&t);
}

static void
test_suspect_then_fail(void **st)
{
	mtable t;
	idn_member self = mk("127.0.0.1:1", 100, IDN_MEMBER_ALIVE, 0);
	idn_member b = mk("127.0.0.1:2", 100, IDN_MEMBER_ALIVE, 3);
	IDN_PASS(mtable_init(&t, &self, 1000));
	mtable_apply(&t, &b, 0);
	// A gossiped suspicion at the current incarnation is taken.
	b.state = IDN_MEMBER_SUSPECT;
	mtable_apply(&t, &b, 100);
	mtable_tick(&t, 1099);
	assert_int_equal(mtable_find(&t, b.id)->m.state, IDN_MEMBER_SUSPECT);
	mtable_tick(&t, 1100);
	assert_int_equal(mtable_find(&t, b.id)->m.state, IDN_MEMBER_FAILED);
	assert_int_equal(last_event(&t), IDN_EV_FAIL);
	// Failed stays failed at the same incarnation; a member that
	// refuted its failure (alive at a higher one) rejoins.
	b.state = IDN_MEMBER_ALIVE;
	mtable_apply(&t, &b, 1200);
	assert_int_equal(mtable_find(&t, b.id)->m.state, IDN_MEMBER_FAILED);
	b.incarnation = 9;
	mtable_apply(&t, &b, 1300);
	assert_int_equal(mtable_find(&t, b.id)->m.state, IDN_MEMBER_ALIVE);
	assert_int_equal(mtable_find(&t, b.id)->m.incarnation, 9);
	assert_int_equal(last_event(&t), IDN_EV_JOIN);
	mtable_fini(&t);
}

static void
test_self_refutes(void **st)
{
	mtable t;
	idn_member self = mk("127.0.0.1:1", 100, IDN_MEMBER_ALIVE, 0);
	IDN_PASS(mtable_init(&t, &self, 1000));
	idn_member rumour = self;
	rumour.state = IDN_MEMBER_SUSPECT;
	rumour.incarnation = 4;
	mtable_apply(&t, &rumour, 0);
	assert_int_equal(mtable_self(&t)->state, IDN_MEMBER_ALIVE);
	assert_int_equal(mtable_self(&t)->incarnation, 5);
	// The refutation is owed to the cluster first.
	idn_member g[4];
	size_t n = mtable_gossip(&t, g, 4);
	assert_true(n >= 1);
	assert_string_equal(g[0].id, self.id);
	assert_int_equal(g[0].incarnation, 5);
	mtable_fini(&t);
}

static void
test_rejoin_new_incarnation(void **st)
{
	mtable t;
	idn_member self = mk("127.0.0.1:1", 100, IDN_MEMBER_ALIVE, 0);
	idn_member old = mk("127.0.0.1:2", 100, IDN_MEMBER_ALIVE, 0);
	idn_member fresh = mk("127.0.0.1:2", 200, IDN_MEMBER_ALIVE, 0);
	IDN_PASS(mtable_init(&t, &self, 1000));
	mtable_apply(&t, &old, 0);
	// The restarted process on the same address replaces the old one.
	mtable_apply(&t, &fresh, 10);
	assert_int_equal(mtable_find(&t, old.id)->m.state, IDN_MEMBER_FAILED);
	assert_int_equal(mtable_find(&t, fresh.id)->m.state, IDN_MEMBER_ALIVE);
	assert_int_equal(last_event(&t), IDN_EV_JOIN);
	// A late rumour of the old process does not revive it, nor does
	// one about an even older process displace the new one.
	mtable_apply(&t, &old, 20);
	assert_int_equal(mtable_find(&t, old.id)->m.state, IDN_MEMBER_FAILED);
	idn_member older = mk("127.0.0.1:2", 50, IDN_MEMBER_ALIVE, 0);
	mtable_apply(&t, &older, 30);
	assert_null(mtable_find(&t, older.id));
	assert_int_equal(mtable_find(&t, fresh.id)->m.state, IDN_MEMBER_ALIVE);
	// Tombstones go after their time.
	mtable_tick(&t, 10 + t.tombstone_ms);
	assert_null(mtable_find(&t, old.id));
	assert_non_null(mtable_find(&t, fresh.id));
	assert_string_equal(mtable_self(&t)->id, self.id);
	mtable_fini(&t);
}

// The merge rules, one case per line: what we hold (state, incarnation;
// -1: unknown), the gossip, and the result.
static void
test_merge_rules(void **st)
{
	enum { A = IDN_MEMBER_ALIVE, S = IDN_MEMBER_SUSPECT,
		F = IDN_MEMBER_FAILED, L = IDN_MEMBER_LEFT };
	static const struct {
		int have, have_inc;
		bool self;
		int u, u_inc;
		merge_action act;
		int st;
		uint64_t inc;
	} cases[] = {
	    {-1, 0, false, A, 3, MERGE_ADD, A, 3},
	    {-1, 0, false, S, 3, MERGE_ADD, S, 3},
	    {-1, 0, false, F, 3, MERGE_IGNORE, F, 3},
	    {-1, 0, false, L, 3, MERGE_IGNORE, L, 3},
	    {A, 2, false, A, 2, MERGE_IGNORE, A, 2},
	    {A, 2, false, A, 3, MERGE_NEWER, A, 3},
	    {A, 2, false, S, 1, MERGE_IGNORE, A, 2},
	    {A, 2, false, S, 2, MERGE_STATE, S, 2},
	    {S, 2, false, S, 2, MERGE_IGNORE, S, 2},
	    {S, 2, false, S, 3, MERGE_QUIET, S, 3},
	    {S, 2, false, A, 2, MERGE_IGNORE, S, 2},
	    {S, 2, false, A, 3, MERGE_STATE, A, 3},
	    // Second-hand failure: never taken as is.
	    {A, 2, false, F, 1, MERGE_IGNORE, A, 2},
	    {A, 2, false, F, 2, MERGE_STATE, S, 2},
	    {A, 2, false, F, 5, MERGE_STATE, S, 5},
	    {S, 2, false, F, 2, MERGE_IGNORE, S, 2},
	    // A failed member comes back only above its incarnation.
	    {F, 2, false, A, 2, MERGE_IGNORE, F, 2},
	    {F, 2, false, S, 3, MERGE_IGNORE, F, 2},
	    {F, 2, false, A, 3, MERGE_STATE, A, 3},
	    {F, 2, false, L, 2, MERGE_STATE, L, 2},
	    // Left is final; leaving is taken from any state.
	    {L, 2, false, A, 9, MERGE_IGNORE, L, 2},
	    {A, 2, false, L, 2, MERGE_STATE, L, 2},
	    {S, 2, false, L, 0, MERGE_STATE, L, 2},
	    // Ourselves: every rumour that we are not alive is refuted.
	    {A, 2, true, S, 2, MERGE_REFUTE, A, 3},
	    {A, 2, true, F, 2, MERGE_REFUTE, A, 3},
	    {A, 2, true, F, 7, MERGE_REFUTE, A, 8},
	    {A, 2, true, F, 1, MERGE_IGNORE, A, 2},
	    {A, 2, true, A, 5, MERGE_IGNORE, A, 2},
	    {L, 2, true, F, 2, MERGE_IGNORE, L, 2},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		idn_member have = mk("127.0.0.1:2", 100, cases[i].have,
		    (uint64_t) cases[i].have_inc);
		idn_member u = mk("127.0.0.1:2", 100, cases[i].u,
		    (uint64_t) cases[i].u_inc);
		idn_member out;
		merge_action act = mtable_merge(cases[i].have < 0 ? NULL :
		    &have, cases[i].self, &u, &out);
		if (act != cases[i].act || out.state != cases[i].st ||
		    out.incarnation != cases[i].inc) {
			fail_msg("case %zu: got action %d state %d inc %llu", i,
			    (int) act, out.state,
			    (unsigned long long) out.incarnation);
		}
	}
}

// A partition: the table marks b failed, then b refutes through a
// reconnect; second-hand verdicts about a member held alive only suspect.
static void
test_failed_member_returns(void **st)
{
	mtable t;
	idn_member self = mk("127.0.0.1:1", 100, IDN_MEMBER_ALIVE, 0);
	idn_member b = mk("127.0.0.1:2", 100, IDN_MEMBER_ALIVE, 0);
	idn_member c = mk("127.0.0.1:3", 100, IDN_MEMBER_ALIVE, 0);
	IDN_PASS(mtable_init(&t, &self, 1000));
	mtable_apply(&t, &b, 0);
	mtable_apply(&t, &c, 0);
	idn_member out;
	assert_false(mtable_reconnect_target(&t, &out));
	mtable_suspect(&t, b.id, 10);
	mtable_tick(&t, 2000);
	assert_int_equal(mtable_find(&t, b.id)->m.state, IDN_MEMBER_FAILED);
	// b is a reconnect target for far longer than a left member stays.
	assert_true(mtable_reconnect_target(&t, &out));
	assert_string_equal(out.id, b.id);
	mtable_tick(&t, 2000 + t.tombstone_ms);
	assert_non_null(mtable_find(&t, b.id));
	// Someone says c failed: c is only suspected, and its own refutation
	// saves it.
	idn_member verdict = c;
	verdict.state = IDN_MEMBER_FAILED;
	mtable_apply(&t, &verdict, 3000);
	assert_int_equal(mtable_find(&t, c.id)->m.state, IDN_MEMBER_SUSPECT);
	c.incarnation = 1;
	mtable_apply(&t, &c, 3100);
	assert_int_equal(mtable_find(&t, c.id)->m.state, IDN_MEMBER_ALIVE);
	// b answers a reconnect alive at a higher incarnation.
	b.incarnation = 1;
	mtable_apply(&t, &b, 3200);
	assert_int_equal(mtable_find(&t, b.id)->m.state, IDN_MEMBER_ALIVE);
	assert_false(mtable_reconnect_target(&t, &out));
	// A process replaced on its address is no reconnect target.
	idn_member fresh = mk("127.0.0.1:2", 200, IDN_MEMBER_ALIVE, 0);
	mtable_apply(&t, &fresh, 3300);
	assert_int_equal(mtable_find(&t, b.id)->m.state, IDN_MEMBER_FAILED);
	assert_false(mtable_reconnect_target(&t, &out));
	mtable_fini(&t);
}

// A second-hand verdict is checked: the member is failed here only with
// the incarnation that was checked (not after a refutation), and the
// earliest suspicion deadline is known so it can fail on time.
static void
test_checked_verdict(void **st)
{
	mtable t;
	idn_member self = mk("127.0.0.1:1", 100, IDN_MEMBER_ALIVE, 0);
	idn_member b = mk("127.0.0.1:2", 100, IDN_MEMBER_ALIVE, 0);
	IDN_PASS(mtable_init(&t, &self, 1000));
	mtable_apply(&t, &b, 0);
	assert_true(mtable_next_deadline(&t) == UINT64_MAX);
	idn_member verdict = b;
	verdict.state = IDN_MEMBER_FAILED;
	mtable_apply(&t, &verdict, 50);
	assert_int_equal(mtable_next_deadline(&t), 1050);
	idn_member checked = mtable_find(&t, b.id)->m;
	b.incarnation = 1; // it refuted before our ping timed out
	mtable_apply(&t, &b, 60);
	assert_false(mtable_fail(&t, &checked, 70));
	assert_int_equal(mtable_find(&t, b.id)->m.state, IDN_MEMBER_ALIVE);
	verdict.incarnation = 1;
	mtable_apply(&t, &verdict, 80);
	checked = mtable_find(&t, b.id)->m;
	assert_true(mtable_fail(&t, &checked, 90));
	assert_int_equal(mtable_find(&t, b.id)->m.state, IDN_MEMBER_FAILED);
	assert_int_equal(last_event(&t), IDN_EV_FAIL);
	assert_false(mtable_fail(&t, mtable_self(&t), 95));
	mtable_fini(&t);
}

static void
test_gossip_budget(void **st)
{
	mtable t;
	idn_member self = mk("127.0.0.1:1", 100, IDN_MEMBER_ALIVE, 0);
	IDN_PASS(mtable_init(&t, &self, 1000));
	for (int i = 2; i < 10; i++) {
		char addr[32];
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", i);
		idn_member m = mk(addr, 100, IDN_MEMBER_ALIVE, 0);
		mtable_apply(&t, &m, 0);
	}
	// Every fresh update is sent a bounded number of times, then only
	// the constant anti-entropy sample remains.
	idn_member g[16];
	size_t first = mtable_gossip(&t, g, 16);
	assert_true(first >= 9);
	for (int i = 0; i < 100; i++) {
		mtable_gossip(&t, g, 16);
	}
	assert_true(mtable_gossip(&t, g, 16) <= 2);
	mtable_fini(&t);
}

static void
test_roundtrip_members(void **st)
{
	idn_member in[3] = {
	    {"127.0.0.1:1:5", "127.0.0.1:1", "coord", IDN_MEMBER_ALIVE, 0, 9},
	    {"127.0.0.1:2:6", "127.0.0.1:2", "worker", IDN_MEMBER_SUSPECT, 7,
	        10},
	    {"127.0.0.1:3:7", "127.0.0.1:3", "worker", IDN_MEMBER_LEFT, 1, 11},
	};
	idn_member out[3];
	size_t n;
	wire_wr *w;
	const uint8_t *p;
	size_t len;
	wire_doc *d;
	IDN_PASS(wire_wr_new(&w));
	member_msg_put(w, in, 3);
	IDN_PASS(wire_wr_bytes(w, &p, &len));
	IDN_PASS(wire_doc_parse(p, len, &d));
	IDN_PASS(member_msg_get(wire_doc_root(d), out, 3, &n));
	assert_int_equal(n, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(in[i].id, out[i].id);
		assert_string_equal(in[i].addr, out[i].addr);
		assert_string_equal(in[i].role, out[i].role);
		assert_int_equal(in[i].state, out[i].state);
		assert_int_equal(in[i].incarnation, out[i].incarnation);
		assert_int_equal(in[i].since_ms, out[i].since_ms);
	}
	// More entries than the reader allows is refused.
	IDN_FAIL(member_msg_get(wire_doc_root(d), out, 2, &n), IDN_EPROTO);
	wire_doc_free(d);
	wire_wr_free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_members),
	    cmocka_unit_test(test_join_and_suspect_refuted),
	    cmocka_unit_test(test_suspect_then_fail),
	    cmocka_unit_test(test_self_refutes),
	    cmocka_unit_test(test_rejoin_new_incarnation),
	    cmocka_unit_test(test_merge_rules),
	    cmocka_unit_test(test_failed_member_returns),
	    cmocka_unit_test(test_checked_verdict),
	    cmocka_unit_test(test_gossip_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
