// SPDX-License-Identifier: MIT
// change.c: the ledger's changes as msgpack maps {op, job, ...}, the
// records the stream carries to a standby (change.h).
#include <stdio.h>
#include <string.h>

#include <idunno/job.h>

#include "coord/change.h"

static const char *const ops[] = {
	[LEDGER_SET] = "set", [LEDGER_TEXT] = "text", [LEDGER_JOB] = "job",
	[LEDGER_STATE] = "state", [LEDGER_FORGET] = "forget",
	[LEDGER_EPOCH] = "epoch", [LEDGER_DONE] = "done",
	[LEDGER_LEASE] = "lease",
};

// The worker's marks of a finished batch, absent from the records of
// coordinators from before them.
static const char *const marks[] = {"lease_ms", "start_ms",
    "model_start_ms", "model_end_ms"};
#define NMARKS CORE_ARRAY_LEN(marks)

void
coord_change_put(wire_wr *w, const ledger_change *c)
{
	const ledger_row *r = &c->row;
	static const uint32_t fields[] = {[LEDGER_SET] = 3, [LEDGER_TEXT] = 3,
	    [LEDGER_JOB] = 6, [LEDGER_STATE] = 5, [LEDGER_FORGET] = 2,
	    [LEDGER_EPOCH] = 5, [LEDGER_DONE] = 7 + NMARKS,
	    [LEDGER_LEASE] = 7};
	wire_map(w, fields[c->op]);
	wire_kstr(w, "op", ops[c->op]);
	wire_kstr(w, c->op == LEDGER_SET || c->op == LEDGER_TEXT ? "key" :
	    "job", c->key);
	switch (c->op) {
	case LEDGER_SET:
		wire_ku64(w, "value", c->value);
		break;
	case LEDGER_TEXT:
		wire_kbin(w, "text", c->data, c->len);
		break;
	case LEDGER_JOB:
		// The spec twice: as a map (checked by the receiver) and as
		// the bytes the ledger stores.
		wire_str(w, "spec");
		wire_raw(w, c->data, c->len);
		wire_ku64(w, "state", c->state);
		wire_ku64(w, "start_ms", c->start_ms);
		wire_kbin(w, "raw", c->data, c->len);
		break;
	case LEDGER_STATE:
		wire_ku64(w, "state", c->state);
		wire_kf64(w, "accuracy", c->accuracy);
		wire_kstr(w, "err", c->err);
		break;
	case LEDGER_EPOCH:
		wire_ku64(w, "epoch", c->epoch);
		wire_kf64(w, "loss", c->loss);
		wire_kf64(w, "acc", c->acc);
		break;
	case LEDGER_DONE:
	case LEDGER_LEASE:
		wire_ku64(w, "batch", r->task);
		wire_kstr(w, "worker", r->worker);
		wire_ku64(w, "attempt", r->attempt);
		wire_kf64(w, "ms", r->ms);
		wire_ku64(w, "t", r->end_ms);
		if (c->op == LEDGER_DONE) {
			const uint64_t m[NMARKS] = {r->lease_ms, r->start_ms,
			    r->model_start_ms, r->model_end_ms};
			for (size_t i = 0; i < NMARKS; i++) {
				wire_ku64(w, marks[i], m[i]);
			}
		}
		break;
	}
}

static int
get_f64(const wire_val *m, const char *k, double *out)
{
	return wire_as_f64(wire_get(m, k), out);
}

static int
get_u32(const wire_val *m, const char *k, uint32_t *out)
{
	uint64_t v;
	if (wire_get_u64(m, k, &v) != IDN_OK || v > UINT32_MAX) {
		return IDN_EPROTO;
	}
	*out = (uint32_t) v;
	return IDN_OK;
}

// A finished task's or a lease's row.
static int
row_get(const wire_val *v, int op, ledger_row *r)
{
	if (get_u32(v, "batch", &r->task) ||
	    wire_get_str(v, "worker", r->worker, sizeof(r->worker)) ||
	    get_u32(v, "attempt", &r->attempt) ||
	    wire_get_u64(v, "t", &r->end_ms)) {
		return IDN_EPROTO;
	}
	if (op == LEDGER_LEASE) {
		return IDN_OK;
	}
	uint64_t *m[NMARKS] = {&r->lease_ms, &r->start_ms, &r->model_start_ms,
	    &r->model_end_ms};
	for (size_t i = 0; i < NMARKS; i++) {
		if (wire_get(v, marks[i]) != NULL &&
		    wire_get_u64(v, marks[i], m[i]) != IDN_OK) {
			return IDN_EPROTO;
		}
	}
	return get_f64(v, "ms", &r->ms);
}

// Pointers in *c borrow from v.
static int
change_get(const wire_val *v, ledger_change *c)
{
	char op[16];
	const uint8_t *p = NULL;
	record_spec s;
	memset(c, 0, sizeof(*c));
	c->op = -1;
	if (wire_get_str(v, "op", op, sizeof(op)) != IDN_OK) {
		return IDN_EPROTO;
	}
	for (size_t i = 0; i < CORE_ARRAY_LEN(ops); i++) {
		c->op = strcmp(op, ops[i]) == 0 ? (int) i : c->op;
	}
	int rv = IDN_EPROTO;
	if (c->op == LEDGER_SET || c->op == LEDGER_TEXT) {
		rv = wire_get_str(v, "key", c->key, sizeof(c->key));
	} else if (c->op >= 0) {
		rv = wire_get_str(v, "job", c->key, sizeof(c->key));
	}
	if (rv != IDN_OK) {
		return IDN_EPROTO;
	}
	switch (c->op) {
	case LEDGER_SET:
		rv = wire_get_u64(v, "value", &c->value);
		break;
	case LEDGER_TEXT:
		rv = wire_get_bin(v, "text", &p, &c->len);
		break;
	case LEDGER_JOB:
		rv = record_spec_get(wire_get(v, "spec"), &s) ||
		    wire_get_u64(v, "state", &c->state) ||
		    wire_get_u64(v, "start_ms", &c->start_ms) ||
		    wire_get_bin(v, "raw", &p, &c->len);
		break;
	case LEDGER_STATE:
		rv = wire_get_u64(v, "state", &c->state) ||
		    get_f64(v, "accuracy", &c->accuracy) ||
		    wire_get_str(v, "err", c->err, sizeof(c->err));
		c->ended = c->state > IDN_JOB_RUNNING;
		break;
	case LEDGER_EPOCH:
		rv = wire_get_u64(v, "epoch", &c->epoch) ||
		    get_f64(v, "loss", &c->loss) || get_f64(v, "acc", &c->acc);
		break;
	case LEDGER_DONE:
	case LEDGER_LEASE:
		rv = row_get(v, c->op, &c->row);
		break;
	}
	c->data = p;
	return rv == IDN_OK ? IDN_OK : IDN_EPROTO;
}

int
coord_change_apply(ledger *l, const uint8_t *p, size_t len)
{
	wire_doc *doc;
	ledger_change c;
	int rv = wire_doc_parse(p, len, &doc);
	if (rv != IDN_OK) {
		return rv;
	}
	rv = change_get(wire_doc_root(doc), &c);
	rv = rv ? rv : ledger_apply(l, &c);
	wire_doc_free(doc);
	return rv;
}

int
coord_job_put(ledger *l, const record_spec *s, int state, uint64_t start_ms)
{
	wire_wr *w;
	const uint8_t *p;
	size_t n;
	int rv = wire_wr_new(&w);
	if (rv != IDN_OK) {
		return rv;
	}
	record_spec_put(w, s);
	rv = wire_wr_bytes(w, &p, &n);
	rv = rv ? rv : ledger_job_put(l, s->job, p, n, state, start_ms);
	wire_wr_free(w);
	return rv;
}

int
coord_job_spec(const ledger_job *j, record_spec *s)
{
	wire_doc *doc;
	if (j->spec == NULL ||
	    wire_doc_parse(j->spec, j->spec_len, &doc) != IDN_OK) {
		return IDN_EPROTO;
	}
	int rv = record_spec_get(wire_doc_root(doc), s);
	wire_doc_free(doc);
	return rv;
}
