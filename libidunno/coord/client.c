// SPDX-License-Identifier: MIT
// client.c: the public scheduler API (include/idunno/sched.h): find the
// coordinator through the client's node, then ask it.
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <idunno/sched.h>
#include <idunno/sdfs.h>

#include "rpc/rpc.h"
#include "record/record.h"

#define WAIT_POLL_MS 200
// A request during a coordinator takeover is retried for this long.
#define TAKEOVER_MS 5000
#define TAKEOVER_POLL_MS 50

const char *
idn_phase_name(int phase)
{
	return phase == IDN_PHASE_TRAIN ? "train" :
	    phase == IDN_PHASE_INFER ? "infer" : "idle";
}

const char *
idn_job_state_name(int state)
{
	static const char *const names[] = {"queued", "running", "done",
	    "failed", "removed"};
	return state >= 0 && state <= IDN_JOB_REMOVED ? names[state] : "?";
}

void
idn_infer_spec_init(idn_infer_spec *s)
{
	if (s != NULL) {
		memset(s, 0, sizeof(*s));
		s->size = sizeof(*s);
	}
}

void
idn_train_spec_init(idn_train_spec *s)
{
	if (s != NULL) {
		memset(s, 0, sizeof(*s));
		s->size = sizeof(*s);
		s->data = "datasets/fashion-mnist";
		s->epochs = 1;
		s->batch = 64;
		s->lr = 0.01;
		s->optimizer = IDN_MODEL_SGD;
		s->schedule = IDN_MODEL_LR_CONST;
		s->workers = 1;
		s->momentum = 0.9;
		s->from = IDN_TRAIN_FROM_MODEL;
		s->checkpoint_s = 30;
		s->sync_every = 1;
	}
}

static void
copy(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s ? s : "");
}

static void
spec_from_infer(record_spec *s, const idn_infer_spec *in)
{
	memset(s, 0, sizeof(*s));
	s->kind = IDN_JOB_INFER;
	copy(s->job, sizeof(s->job), in->job);
	copy(s->model, sizeof(s->model), in->model);
	copy(s->queries, sizeof(s->queries), in->queries);
	copy(s->weights, sizeof(s->weights), in->weights);
	s->batch = in->batch;
	s->rate = in->rate;
	s->limit = in->limit;
}

static void
spec_from_train(record_spec *s, const idn_train_spec *in)
{
	memset(s, 0, sizeof(*s));
	s->kind = IDN_JOB_TRAIN;
	copy(s->job, sizeof(s->job), in->job);
	copy(s->model, sizeof(s->model), in->model);
	copy(s->data, sizeof(s->data), in->data ? in->data :
	    "datasets/fashion-mnist");
	s->epochs = in->epochs;
	s->batch = in->batch;
	s->lr = in->lr;
	s->optimizer = in->optimizer;
	s->schedule = in->schedule;
	s->limit = in->limit;
	s->workers = in->workers;
	s->momentum = in->momentum;
	s->weight_decay = in->weight_decay;
	s->from = in->from;
	s->checkpoint_s = in->checkpoint_s;
	s->sync_every = in->sync_every;
	s->augment = in->augment;
	s->crop_pad = in->crop_pad;
}

static void
set_err(char **errmsg, const char *fmt, const char *a)
{
	if (errmsg != NULL) {
		*errmsg = core_asprintf(fmt, a);
	}
}

// Sends one request to the coordinator. On a refusal *errmsg gets the
// coordinator's reason; *doc/*env (optional) receive the reply. *retry:
// a takeover is under way (no coordinator active yet, or the one asked
// no longer answers), so the same request may succeed shortly.
static int
call_once(idn_client *c, const char *type, wire_wr *body, char **errmsg,
    wire_doc **doc, wire_env *env, bool *retry)
{
	wire_doc *d = NULL;
	wire_env e;
	char addr[IDN_ADDR_MAX];
	if (errmsg != NULL) {
		*errmsg = NULL;
	}
	int rv = rpc_client_call(c, "sched.where", NULL, &d, &e);
	if (rv == IDN_OK && wire_get_str(e.body, "coord", addr,
	                        sizeof(addr)) != IDN_OK) {
		rv = IDN_EPROTO;
	}
	char why[64] = "";
	if (rv == IDN_EUNAVAIL && d != NULL) {
		wire_get_str(e.body, "err", why, sizeof(why));
	}
	*retry = strstr(why, "changing") != NULL;
	wire_doc_free(d);
	d = NULL;
	if (rv != IDN_OK) {
		set_err(errmsg, "no coordinator reachable (%s)",
		    rv == IDN_EPROTO ? "the node does not know the scheduler" :
		    idn_strerror(rv == IDN_EUNAVAIL ? IDN_EUNAVAIL : rv));
		return rv == IDN_ETIMEDOUT || rv == IDN_ENET ||
		    rv == IDN_EPROTO ? IDN_EUNAVAIL : rv;
	}
	rv = rpc_client_call_at(c, addr, type, body, &d, &e);
	if (rv == IDN_ETIMEDOUT || rv == IDN_ENET) {
		set_err(errmsg, "coordinator %s did not answer", addr);
		wire_doc_free(d);
		*retry = true;
		return IDN_EUNAVAIL;
	}
	if (rv == IDN_EUNAVAIL && d != NULL) {
		why[0] = '\0';
		wire_get_str(e.body, "err", why, sizeof(why));
		*retry = strstr(why, "changing") != NULL;
	}
	if (rv != IDN_OK && d != NULL && errmsg != NULL) {
		char *m = NULL;
		if (wire_dup_str(wire_get(e.body, "err"), 1024, &m) == IDN_OK) {
			*errmsg = m;
		}
	}
	if (rv != IDN_OK && errmsg != NULL && *errmsg == NULL) {
		set_err(errmsg, "%s", idn_strerror(rv));
	}
	if (rv == IDN_OK && doc != NULL) {
		*doc = d;
		*env = e;
	} else {
		wire_doc_free(d);
	}
	return rv;
}

static int
coord_call(idn_client *c, const char *type, wire_wr *body, char **errmsg,
    wire_doc **doc, wire_env *env)
{
	uint64_t end = idn_clock_ms() + TAKEOVER_MS;
	for (;;) {
		bool retry = false;
		int rv = call_once(c, type, body, errmsg, doc, env, &retry);
		if (rv != IDN_EUNAVAIL || !retry || idn_clock_ms() >= end) {
			return rv;
		}
		if (errmsg != NULL) {
			idn_free(*errmsg);
			*errmsg = NULL;
		}
		struct timespec ts = {0, TAKEOVER_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static int
call_simple(idn_client *c, const char *type, wire_wr *w, char **errmsg)
{
	if (w == NULL) {
		return IDN_ENOMEM;
	}
	int rv = coord_call(c, type, w, errmsg, NULL, NULL);
	wire_wr_free(w);
	return rv;
}

static int
phase(idn_client *c, int ph, bool start, char **errmsg)
{
	wire_wr *w = NULL;
	if (c == NULL || (ph != IDN_PHASE_TRAIN && ph != IDN_PHASE_INFER)) {
		return IDN_EINVAL;
	}
	if (wire_wr_new(&w) == IDN_OK) {
		wire_map(w, 2);
		wire_ku64(w, "phase", (uint64_t) ph);
		wire_kbool(w, "start", start);
	}
	return call_simple(c, "sched.phase", w, errmsg);
}

int
idn_phase_start(idn_client *c, int ph, char **errmsg)
{
	return phase(c, ph, true, errmsg);
}

int
idn_phase_stop(idn_client *c, int ph, char **errmsg)
{
	return phase(c, ph, false, errmsg);
}

static int
add(idn_client *c, const record_spec *s, char **errmsg)
{
	const char *why = record_spec_check(s);
	if (why != NULL) {
		set_err(errmsg, "%s", why);
		return IDN_EINVAL;
	}
	wire_wr *w = NULL;
	if (wire_wr_new(&w) == IDN_OK) {
		wire_map(w, 1);
		wire_str(w, "spec");
		record_spec_put(w, s);
	}
	return call_simple(c, "sched.add", w, errmsg);
}

int
idn_job_add_infer(idn_client *c, const idn_infer_spec *in, char **errmsg)
{
	record_spec s;
	if (c == NULL || in == NULL || in->size != sizeof(*in)) {
		return IDN_EINVAL;
	}
	spec_from_infer(&s, in);
	if ((in->job && strlen(in->job) > RECORD_NAME_MAX) ||
	    (in->queries && strlen(in->queries) >= RECORD_PATH_MAX) ||
	    (in->weights && strlen(in->weights) >= RECORD_PATH_MAX)) {
		set_err(errmsg, "%s", "a name is too long");
		return IDN_EINVAL;
	}
	return add(c, &s, errmsg);
}

int
idn_job_add_train(idn_client *c, const idn_train_spec *in, char **errmsg)
{
	record_spec s;
	idn_train_spec full;
	// A caller built before the data-parallel fields gets their defaults.
	if (c == NULL || in == NULL || in->size > sizeof(*in) ||
	    in->size < offsetof(idn_train_spec, workers)) {
		return IDN_EINVAL;
	}
	idn_train_spec_init(&full);
	memcpy(&full, in, in->size);
	full.size = sizeof(full);
	in = &full;
	spec_from_train(&s, in);
	if ((in->job && strlen(in->job) > RECORD_NAME_MAX) ||
	    (in->data && strlen(in->data) >= RECORD_PATH_MAX)) {
		set_err(errmsg, "%s", "a name is too long");
		return IDN_EINVAL;
	}
	return add(c, &s, errmsg);
}

static wire_wr *
job_body(const char *job)
{
	wire_wr *w = NULL;
	if (wire_wr_new(&w) == IDN_OK) {
		wire_map(w, 1);
		wire_kstr(w, "job", job);
	}
	return w;
}

int
idn_job_remove(idn_client *c, const char *job, char **errmsg)
{
	if (c == NULL || !record_name_ok(job)) {
		set_err(errmsg, "bad job name '%s'", job ? job : "");
		return IDN_EINVAL;
	}
	return call_simple(c, "sched.remove", job_body(job), errmsg);
}

// here: ask the client's own node (its coordinator role: the active one,
// or a standby's read-only copy) instead of the active coordinator.
static int
get_doc(idn_client *c, const char *type, const char *job, bool text,
    bool here, char **out)
{
	wire_wr *w = NULL;
	wire_doc *d = NULL;
	wire_env e;
	if (c == NULL || out == NULL || (job != NULL && !record_name_ok(job))) {
		return IDN_EINVAL;
	}
	if (wire_wr_new(&w) != IDN_OK) {
		return IDN_ENOMEM;
	}
	wire_map(w, 2);
	wire_kstr(w, "job", job ? job : "");
	wire_kbool(w, "text", text);
	int rv = here ? rpc_client_call(c, type, w, &d, &e) :
	    coord_call(c, type, w, NULL, &d, &e);
	wire_wr_free(w);
	if (rv == IDN_OK) {
		rv = wire_dup_str(wire_get(e.body, "json"), 64u << 20, out);
	}
	wire_doc_free(d);
	return rv;
}

int
idn_sched_stats(idn_client *c, const char *job, char **json)
{
	return get_doc(c, "sched.stats", job, false, false, json);
}

int
idn_sched_jobs(idn_client *c, char **json)
{
	return get_doc(c, "sched.jobs", NULL, false, false, json);
}

int
idn_sched_assign(idn_client *c, char **json)
{
	return get_doc(c, "sched.assign", NULL, false, false, json);
}

static const char *
doc_type(const char *what)
{
	return what == NULL ? NULL :
	    strcmp(what, "stats") == 0 ? "sched.stats" :
	    strcmp(what, "jobs") == 0 ? "sched.jobs" :
	    strcmp(what, "assign") == 0 ? "sched.assign" : NULL;
}

int
idn_sched_table(idn_client *c, const char *what, const char *job,
    char **text)
{
	const char *type = doc_type(what);
	return type == NULL ? IDN_EINVAL : get_doc(c, type, job, true, false,
	    text);
}

int
idn_sched_doc_here(idn_client *c, const char *what, const char *job,
    bool text, char **out)
{
	const char *type = doc_type(what);
	return type == NULL ? IDN_EINVAL : get_doc(c, type, job, text, true,
	    out);
}

int
idn_job_wait(idn_client *c, const char *job, idn_duration timeout_ms,
    int *state)
{
	if (c == NULL || !record_name_ok(job)) {
		return IDN_EINVAL;
	}
	uint64_t deadline = idn_clock_ms() + (uint64_t) (timeout_ms > 0 ?
	    timeout_ms : 0);
	for (;;) {
		wire_doc *d = NULL;
		wire_env e;
		wire_wr *w = job_body(job);
		uint64_t st = 0;
		int rv = w ? coord_call(c, "sched.state", w, NULL, &d, &e) :
		    IDN_ENOMEM;
		wire_wr_free(w);
		if (rv == IDN_OK && wire_get_u64(e.body, "state", &st) != IDN_OK) {
			rv = IDN_EPROTO;
		}
		wire_doc_free(d);
		if (rv == IDN_OK && state != NULL) {
			*state = (int) st;
		}
		if (rv == IDN_OK && st == IDN_JOB_DONE) {
			return IDN_OK;
		}
		if (rv == IDN_OK && st >= IDN_JOB_FAILED) {
			return IDN_EINVAL;
		}
		// A coordinator that is briefly unreachable, or a node that
		// sheds a request under load (never admitted, so safe to
		// repeat), is waited for.
		if (rv != IDN_OK && rv != IDN_EUNAVAIL && rv != IDN_EBUSY) {
			return rv;
		}
		if (timeout_ms > 0 && idn_clock_ms() >= deadline) {
			return IDN_ETIMEDOUT;
		}
		core_sleep_ms(WAIT_POLL_MS);
	}
}

int
idn_job_result(idn_client *c, const char *job, const char *path)
{
	char name[RECORD_PATH_MAX];
	if (c == NULL || path == NULL || !record_name_ok(job)) {
		return IDN_EINVAL;
	}
	snprintf(name, sizeof(name), "results/%s/output", job);
	if (strcmp(path, "-") != 0) {
		return idn_sdfs_get_file(c, name, 0, path, NULL);
	}
	void *data;
	size_t len;
	int rv = idn_sdfs_get_buf(c, name, 0, &data, &len, NULL);
	if (rv == IDN_OK) {
		rv = fwrite(data, 1, len, stdout) == len ? IDN_OK : IDN_ESYS;
		idn_free(data);
	}
	return rv;
}

int
idn_sched_where(idn_client *c, char *addr, size_t cap)
{
	if (c == NULL || addr == NULL || cap == 0) {
		return IDN_EINVAL;
	}
	wire_doc *d = NULL;
	wire_env e;
	char got[IDN_ADDR_MAX];
	int rv = rpc_client_call(c, "sched.where", NULL, &d, &e);
	if (rv == IDN_OK) {
		rv = wire_get_str(e.body, "coord", got, sizeof(got));
	}
	wire_doc_free(d);
	if (rv == IDN_OK && strlen(got) >= cap) {
		rv = IDN_ETOOBIG;
	}
	if (rv == IDN_OK) {
		memcpy(addr, got, strlen(got) + 1);
	}
	return rv;
}

int
idn_sched_lease_probe(idn_client *c, const char *coord, const char *worker,
    uint32_t want, uint32_t *got)
{
	char addr[IDN_ADDR_MAX];
	if (c == NULL || worker == NULL || worker[0] == '\0' ||
	    strlen(worker) >= sizeof(((record_lease_req *) 0)->worker)) {
		return IDN_EINVAL;
	}
	int rv = coord != NULL ? IDN_OK : idn_sched_where(c, addr, sizeof(addr));
	if (rv != IDN_OK) {
		return rv;
	}
	record_lease_req r = {.want = want, .release = true};
	snprintf(r.worker, sizeof(r.worker), "%s", worker);
	wire_wr *w = NULL;
	if ((rv = wire_wr_new(&w)) != IDN_OK) {
		return rv;
	}
	record_lease_req_put(w, &r);
	wire_doc *d = NULL;
	wire_env e;
	record_lease_rep rep;
	rv = rpc_client_call_at(c, coord != NULL ? coord : addr, "sched.lease",
	    w, &d, &e);
	wire_wr_free(w);
	if (rv == IDN_OK) {
		rv = record_lease_rep_get(e.body, &rep);
	}
	wire_doc_free(d);
	if (rv == IDN_OK) {
		if (got != NULL) {
			*got = (uint32_t) rep.n;
		}
		record_lease_rep_clear(&rep);
	}
	return rv;
}
