// SPDX-License-Identifier: MIT
// coord.c: the coordinator's face to its role (coord/attach.c): open and
// close, the requests' dispatch, the majority rule's settings. One lock
// guards the tables (coord_int.h); slow work (SDFS reads for validation,
// result assembly, checkpoints) runs outside it. Times are wall-clock
// ms, so arrivals, workers' completion times and a restored ledger share
// one clock.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/sched.h>

#include "coord/coord_int.h"

void
coord_set_quorum(coord *c, size_t need, uint64_t window_ms,
    uint64_t standby_ms)
{
	core_lock(&c->lock);
	c->quorum_need = need;
	c->quorum_window_ms = window_ms;
	c->standby_seen_ms = standby_ms;
	core_unlock_log(&c->lock, &c->logq);
}

bool
coord_quorum(coord *c, size_t *heard, uint64_t *since_ms)
{
	core_lock(&c->lock);
	bool ok = coord_quorum_locked(c, heard, since_ms);
	core_unlock_log(&c->lock, &c->logq);
	return ok;
}

void
coord_fence(coord *c, bool on)
{
	core_lock(&c->lock);
	c->fenced = on;
	core_unlock_log(&c->lock, &c->logq);
}

void
coord_set_standby(coord *c, const char *id)
{
	core_lock(&c->lock);
	snprintf(c->standby, sizeof(c->standby), "%s", id ? id : "");
	core_unlock_log(&c->lock, &c->logq);
}

uint64_t
coord_epoch(const coord *c)
{
	return c->epoch;
}

ledger *
coord_ledger(coord *c)
{
	return c->led;
}

// A document of the report (sched.stats, sched.jobs, sched.assign): it
// reads the tables under the lock; the reply is written outside it.
static int
report(coord *c, int doc, const wire_val *b, wire_wr *reply)
{
	char only[RECORD_NAME_MAX + 1] = "";
	bool text = false;
	core_buf out = {0};
	wire_get_str(b, "job", only, sizeof(only));
	wire_as_bool(wire_get(b, "text"), &text);
	core_lock(&c->lock);
	bool known = only[0] == '\0' || coord_find_job(c, only) != NULL;
	if (known) {
		coord_report_doc(c, doc, only[0] ? only : NULL, text, &out);
	}
	core_unlock_log(&c->lock, &c->logq);
	if (!known) {
		return coord_refuse(reply, IDN_ENOENT, "no job '%s'", only);
	}
	wire_map(reply, 2);
	wire_ku64(reply, "epoch", coord_reply_epoch);
	wire_str(reply, "json");
	wire_strn(reply, out.data ? (const char *) out.data : "", out.len);
	core_buf_free(&out);
	return IDN_OK;
}

int
coord_view_with(coord *c, coord_view_fn fn, void *arg)
{
	core_lock(&c->lock);
	int rv = coord_report_view(c, fn, arg);
	core_unlock_log(&c->lock, &c->logq);
	return rv;
}

static int
on_stats(coord *c, const wire_val *b, wire_wr *reply)
{
	return report(c, COORD_DOC_STATS, b, reply);
}

static int
on_jobs(coord *c, const wire_val *b, wire_wr *reply)
{
	return report(c, COORD_DOC_JOBS, b, reply);
}

static int
on_assign(coord *c, const wire_val *b, wire_wr *reply)
{
	return report(c, COORD_DOC_ASSIGN, b, reply);
}

const coord_route coord_routes[] = {
    {"sched.lease", 0, coord_on_lease},
    {"sched.add", COORD_ROUTE_CHANGES, coord_on_add},
    {"sched.remove", COORD_ROUTE_CHANGES, coord_on_remove},
    {"sched.phase", COORD_ROUTE_CHANGES, coord_on_phase},
    {"sched.state", COORD_ROUTE_STANDBY, coord_on_state},
    {"sched.stats", COORD_ROUTE_STANDBY, on_stats},
    {"sched.jobs", COORD_ROUTE_STANDBY, on_jobs},
    {"sched.assign", COORD_ROUTE_STANDBY, on_assign},
};
const size_t coord_nroutes = CORE_ARRAY_LEN(coord_routes);

static int
ok_reply(wire_wr *reply)
{
	wire_map(reply, 1);
	wire_ku64(reply, "epoch", coord_reply_epoch);
	return IDN_OK;
}

// A job added or removed or a phase change is acknowledged once the
// standby has it too. A standby that did not acknowledge may have promoted
// itself while this coordinator was paused or cut off: then the change
// stays in this ledger only, which the newer coordinator's replaces when
// this one steps down, and the client retries there.
static int
synced_reply(coord *c, wire_wr *reply)
{
	if (c->h.sync != NULL && c->h.sync(c->h.sync_arg) != IDN_OK) {
		c->superseded = true;
		core_logf(&c->lg, IDN_LOG_WARN, "coord: epoch %llu: the "
		    "standby did not acknowledge and a newer coordinator is "
		    "active: change not acknowledged",
		    (unsigned long long) c->epoch);
		return coord_refuse(reply, IDN_EUNAVAIL, COORD_SUPERSEDED);
	}
	return ok_reply(reply);
}

int
coord_handle(coord *c, const char *type, const wire_val *body,
    wire_wr *reply)
{
	coord_reply_epoch = c->epoch;
	const coord_route *rt = NULL;
	for (size_t i = 0; i < coord_nroutes && rt == NULL; i++) {
		rt = strcmp(coord_routes[i].type, type) == 0 ? &coord_routes[i] :
		    NULL;
	}
	int flags = rt != NULL ? rt->flags : 0;
	bool changes = (flags & COORD_ROUTE_CHANGES) != 0;
	if (!c->h.passive && changes) {
		core_lock(&c->lock);
		bool acting = coord_acting_locked(c);
		core_unlock_log(&c->lock, &c->logq);
		if (!acting) {
			return coord_refuse(reply, IDN_EUNAVAIL,
			    COORD_NO_MAJORITY);
		}
	}
	if (c->superseded && changes) {
		return coord_refuse(reply, IDN_EUNAVAIL, COORD_SUPERSEDED);
	}
	if (c->h.passive && (flags & COORD_ROUTE_STANDBY) == 0) {
		return coord_refuse(reply, IDN_EUNAVAIL, "this is the standby "
		    "coordinator; coordinator changing, retry");
	}
	if (rt == NULL) {
		return IDN_EPROTO;
	}
	int rv = rt->fn(c, body, reply);
	return rv == IDN_OK && changes ? synced_reply(c, reply) : rv;
}

int
coord_open(const coord_host *h, coord **out)
{
	coord *c = core_alloc(sizeof(*c));
	if (c == NULL) {
		return IDN_ENOMEM;
	}
	c->h = *h;
	snprintf(c->self, sizeof(c->self), "%s", h->self_id);
	c->h.self_id = c->self;
	c->lg = (core_logger){h->log, h->log_arg, IDN_LOG_DEBUG};
	c->logq.lg = &c->lg;
	pthread_mutex_init(&c->lock, NULL);
	core_cond_init(&c->cond);
	c->dirty = true;
	c->own_led = !h->passive;
	c->open_ms = idn_clock_ms();
	int rv = coord_restore(c);
	if (rv == IDN_OK && h->stream != NULL) {
		ledger_set_stream(c->led, h->stream, h->stream_arg);
	}
	if (rv != IDN_OK || h->passive) {
		*out = rv == IDN_OK ? c : NULL;
		if (rv == IDN_OK) {
			return IDN_OK;
		}
		core_logf(&c->lg, IDN_LOG_ERROR, "coord: cannot open the "
		    "ledger: %s", idn_strerror(rv));
		c->own_led = c->h.led == NULL;
		coord_close(c);
		return rv;
	}
	rv = coord_timers_start(c);
	if (rv != IDN_OK) {
		coord_close(c);
		return rv;
	}
	*out = c;
	return IDN_OK;
}

void
coord_close(coord *c)
{
	if (c == NULL) {
		return;
	}
	coord_timers_stop(c);
	for (size_t i = 0; i < c->njobs; i++) {
		coord_job_free(c->jobs[i]);
	}
	if (c->have_alloc) {
		sched_alloc_free(&c->alloc);
	}
	free(c->assign_rec);
	if (c->own_led) {
		ledger_set_stream(c->led, NULL, NULL);
		ledger_close(c->led);
	}
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	core_logq_free(&c->logq);
	free(c);
}
