// SPDX-License-Identifier: MIT
// record.c: encoding and checked decoding of the scheduler's records.
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/sdfs.h>

#include "record/record.h"

bool
record_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > RECORD_NAME_MAX || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char) name[i];
		if (!isalnum(ch) && ch != '_' && ch != '.' && ch != '-') {
			return false;
		}
	}
	return true;
}

const char *
record_spec_check(const record_spec *s)
{
	if (!record_name_ok(s->job)) {
		return "bad job name (want 1..64 of A-Z a-z 0-9 _ . -)";
	}
	if (!record_name_ok(s->model)) {
		return "bad model name (want 1..64 of A-Z a-z 0-9 _ . -)";
	}
	if (s->batch == 0 || s->batch > 1000000) {
		return "batch size must be in 1..1000000";
	}
	if (s->kind == IDN_JOB_INFER) {
		if (!(s->rate > 0) || s->rate > 1e7) {
			return "rate must be a number of queries per second > 0";
		}
		if (idn_sdfs_name_error(s->queries) != NULL) {
			return "bad query set name";
		}
		if (s->weights[0] != '\0' &&
		    idn_sdfs_name_error(s->weights) != NULL) {
			return "bad weights file name";
		}
		return NULL;
	}
	if (s->kind != IDN_JOB_TRAIN) {
		return "unknown job kind";
	}
	if (s->batch < 2) {
		return "a training batch must hold 2 or more images (BatchNorm "
		    "cannot train on one)";
	}
	if (s->epochs == 0 || s->epochs > 100000) {
		return "epochs must be in 1..100000";
	}
	if (!(s->lr > 0 && s->lr < 10)) {
		return "lr must be in (0, 10)";
	}
	if (s->optimizer != IDN_MODEL_SGD && s->optimizer != IDN_MODEL_ADAM) {
		return "unknown optimizer";
	}
	if (s->schedule < IDN_MODEL_LR_CONST ||
	    s->schedule > IDN_MODEL_LR_COSINE) {
		return "unknown schedule";
	}
	if (idn_sdfs_name_error(s->data) != NULL) {
		return "bad dataset name";
	}
	if (s->workers == 0 || s->workers > RECORD_RANKS_MAX) {
		return "workers must be in 1..16";
	}
	if (s->batch < 2 * s->workers) {
		return "the global batch must give every worker 2 or more images";
	}
	if (!(s->momentum >= 0 && s->momentum < 1)) {
		return "momentum must be in [0, 1)";
	}
	if (!(s->weight_decay >= 0 && s->weight_decay < 1)) {
		return "weight decay must be in [0, 1)";
	}
	if (s->from != IDN_TRAIN_FROM_MODEL && s->from != IDN_TRAIN_FROM_WEIGHTS) {
		return "from must be model or weights";
	}
	if (s->checkpoint_s == 0 || s->checkpoint_s > 86400) {
		return "checkpoint interval must be in 1..86400 s";
	}
	if (s->sync_every == 0 || s->sync_every > 1000) {
		return "sync-every must be in 1..1000 steps";
	}
	if ((s->augment & ~(uint32_t) IDN_MODEL_AUG_FLIP) != 0) {
		return "unknown augmentation";
	}
	if (s->crop_pad > 64) {
		return "crop padding must be in 0..64 pixels";
	}
	return NULL;
}

void
record_spec_put(wire_wr *w, const record_spec *s)
{
	bool train = s->kind == IDN_JOB_TRAIN;
	wire_map(w, train ? 22 : 14);
	wire_ku64(w, "kind", (uint64_t) s->kind);
	wire_kstr(w, "job", s->job);
	wire_kstr(w, "model", s->model);
	wire_kstr(w, "queries", s->queries);
	wire_kstr(w, "weights", s->weights);
	wire_kstr(w, "data", s->data);
	wire_ku64(w, "batch", s->batch);
	wire_kf64(w, "rate", s->rate);
	wire_ku64(w, "limit", s->limit);
	wire_ku64(w, "epochs", s->epochs);
	wire_kf64(w, "lr", s->lr);
	wire_ku64(w, "optimizer", (uint64_t) s->optimizer);
	wire_ku64(w, "schedule", (uint64_t) s->schedule);
	wire_ku64(w, "group", s->group ? s->group : 1);
	if (train) {
		wire_ku64(w, "workers", s->workers);
		wire_kf64(w, "momentum", s->momentum);
		wire_kf64(w, "wd", s->weight_decay);
		wire_ku64(w, "from", (uint64_t) s->from);
		wire_ku64(w, "ckpt_s", s->checkpoint_s);
		wire_ku64(w, "sync_every", s->sync_every);
		wire_ku64(w, "augment", s->augment);
		wire_ku64(w, "crop_pad", s->crop_pad);
	}
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

static int
get_f64(const wire_val *m, const char *k, double *out)
{
	return wire_as_f64(wire_get(m, k), out);
}

// A field added later: absent (an older sender) leaves *out 0.
static int
get_opt_u64(const wire_val *m, const char *k, uint64_t *out)
{
	*out = 0;
	return wire_get(m, k) == NULL ? IDN_OK : wire_get_u64(m, k, out);
}

// The training fields, absent in specs of older senders: defaults.
static int
spec_train_get(const wire_val *v, record_spec *s)
{
	uint32_t from = IDN_TRAIN_FROM_MODEL;
	s->workers = 1;
	s->momentum = 0.9;
	s->checkpoint_s = 30;
	s->sync_every = 1;
	if ((wire_get(v, "workers") && get_u32(v, "workers", &s->workers)) ||
	    (wire_get(v, "sync_every") &&
	    get_u32(v, "sync_every", &s->sync_every)) ||
	    (wire_get(v, "momentum") && get_f64(v, "momentum", &s->momentum)) ||
	    (wire_get(v, "wd") && get_f64(v, "wd", &s->weight_decay)) ||
	    (wire_get(v, "from") && get_u32(v, "from", &from)) || from > 16 ||
	    (wire_get(v, "ckpt_s") && get_u32(v, "ckpt_s", &s->checkpoint_s)) ||
	    (wire_get(v, "augment") && get_u32(v, "augment", &s->augment)) ||
	    (wire_get(v, "crop_pad") && get_u32(v, "crop_pad", &s->crop_pad))) {
		return IDN_EPROTO;
	}
	s->from = (int) from;
	return IDN_OK;
}

int
record_spec_get(const wire_val *v, record_spec *s)
{
	uint32_t kind, opt, sch;
	memset(s, 0, sizeof(*s));
	if (get_u32(v, "kind", &kind) || kind > IDN_JOB_INFER ||
	    wire_get_str(v, "job", s->job, sizeof(s->job)) ||
	    wire_get_str(v, "model", s->model, sizeof(s->model)) ||
	    wire_get_str(v, "queries", s->queries, sizeof(s->queries)) ||
	    wire_get_str(v, "weights", s->weights, sizeof(s->weights)) ||
	    wire_get_str(v, "data", s->data, sizeof(s->data)) ||
	    get_u32(v, "batch", &s->batch) ||
	    get_f64(v, "rate", &s->rate) ||
	    wire_get_u64(v, "limit", &s->limit) ||
	    get_u32(v, "epochs", &s->epochs) ||
	    get_f64(v, "lr", &s->lr) ||
	    get_u32(v, "optimizer", &opt) || opt > 16 ||
	    get_u32(v, "schedule", &sch) || sch > 16) {
		return IDN_EPROTO;
	}
	// Older specs have no group: one batch per task.
	if (wire_get(v, "group") == NULL) {
		s->group = 1;
	} else if (get_u32(v, "group", &s->group) || s->group == 0 ||
	    s->group > RECORD_GROUP_MAX) {
		return IDN_EPROTO;
	}
	s->kind = (int) kind;
	s->optimizer = (int) opt;
	s->schedule = (int) sch;
	return spec_train_get(v, s);
}

void
record_spec_train_opts(const record_spec *s, idn_model_train_opts *o)
{
	idn_model_train_opts_init(o);
	o->epochs = s->epochs;
	o->batch_size = s->batch;
	o->lr = s->lr;
	o->optimizer = s->optimizer;
	o->schedule = s->schedule;
	o->momentum = s->momentum;
	o->weight_decay = s->weight_decay;
	o->sync_every = s->sync_every;
	o->augment = s->augment;
	o->crop_pad = s->crop_pad;
}

static void
put_held(wire_wr *w, const record_held *h, size_t n)
{
	wire_arr(w, (uint32_t) n);
	for (size_t i = 0; i < n; i++) {
		wire_map(w, 4);
		wire_kstr(w, "job", h[i].job);
		wire_ku64(w, "batch", h[i].task);
		wire_ku64(w, "attempt", h[i].attempt);
		wire_kbool(w, "run", h[i].running);
	}
}

// Checks an array field and allocates n entries of size bytes.
static int
get_list(const wire_val *m, const char *k, size_t size, void **out,
    size_t *n)
{
	const wire_val *a = wire_get(m, k);
	if (wire_as_arr(a, n) != IDN_OK || *n > RECORD_LIST_MAX) {
		return IDN_EPROTO;
	}
	*out = *n ? core_alloc(*n * size) : NULL;
	return *n && *out == NULL ? IDN_ENOMEM : IDN_OK;
}

static int
get_held(const wire_val *m, const char *k, record_held **out, size_t *n)
{
	int rv = get_list(m, k, sizeof(**out), (void **) out, n);
	for (size_t i = 0; rv == IDN_OK && i < *n; i++) {
		const wire_val *e = wire_at(wire_get(m, k), i);
		record_held *h = &(*out)[i];
		// Without "run" (an older sender) a lease counts as started.
		const wire_val *run = wire_get(e, "run");
		h->running = true;
		if (wire_get_str(e, "job", h->job, sizeof(h->job)) ||
		    get_u32(e, "batch", &h->task) ||
		    get_u32(e, "attempt", &h->attempt) ||
		    (run != NULL && wire_as_bool(run, &h->running))) {
			rv = IDN_EPROTO;
		}
	}
	return rv;
}

void
record_lease_req_put(wire_wr *w, const record_lease_req *r)
{
	wire_map(w, 8);
	wire_kstr(w, "worker", r->worker);
	wire_kstr(w, "addr", r->addr);
	wire_kbool(w, "release", r->release);
	wire_ku64(w, "epoch", r->epoch);
	wire_ku64(w, "want", r->want);
	wire_str(w, "done");
	wire_arr(w, (uint32_t) r->ndone);
	for (size_t i = 0; i < r->ndone; i++) {
		const record_done *d = &r->done[i];
		wire_map(w, 11);
		wire_kstr(w, "job", d->job);
		wire_ku64(w, "batch", d->task);
		wire_ku64(w, "attempt", d->attempt);
		wire_kf64(w, "ms", d->ms);
		wire_kf64(w, "busy_ms", d->busy_ms);
		wire_ku64(w, "end_ms", d->end_ms);
		wire_ku64(w, "rc", (uint64_t) d->rc);
		wire_ku64(w, "lease_ms", d->lease_ms);
		wire_ku64(w, "start_ms", d->start_ms);
		wire_ku64(w, "model_start_ms", d->model_start_ms);
		wire_ku64(w, "model_end_ms", d->model_end_ms);
	}
	wire_str(w, "held");
	put_held(w, r->held, r->nheld);
	wire_str(w, "train");
	wire_arr(w, (uint32_t) r->ntrain);
	for (size_t i = 0; i < r->ntrain; i++) {
		const record_progress *p = &r->train[i];
		wire_map(w, 8);
		wire_kstr(w, "job", p->job);
		wire_ku64(w, "attempt", p->attempt);
		wire_ku64(w, "epoch", p->epoch);
		wire_kf64(w, "loss", p->loss);
		wire_kf64(w, "acc", p->acc);
		wire_kbool(w, "done", p->done);
		wire_ku64(w, "rc", (uint64_t) p->rc);
		wire_kstr(w, "err", p->err);
	}
}

int
record_lease_req_get(const wire_val *v, record_lease_req *r)
{
	uint32_t want = 0, rc = 0;
	memset(r, 0, sizeof(*r));
	int rv = wire_get_str(v, "worker", r->worker, sizeof(r->worker)) ||
	    wire_get_u64(v, "epoch", &r->epoch) ||
	    get_u32(v, "want", &want) || want > 64 ? IDN_EPROTO : IDN_OK;
	r->want = want;
	// Absent in older messages: nothing released.
	if (rv == IDN_OK && wire_get(v, "release") != NULL &&
	    wire_as_bool(wire_get(v, "release"), &r->release) != IDN_OK) {
		rv = IDN_EPROTO;
	}
	if (rv == IDN_OK && wire_get(v, "addr") != NULL &&
	    wire_get_str(v, "addr", r->addr, sizeof(r->addr)) != IDN_OK) {
		rv = IDN_EPROTO;
	}
	if (rv == IDN_OK) {
		rv = get_list(v, "done", sizeof(*r->done), (void **) &r->done,
		    &r->ndone);
	}
	for (size_t i = 0; rv == IDN_OK && i < r->ndone; i++) {
		const wire_val *e = wire_at(wire_get(v, "done"), i);
		record_done *d = &r->done[i];
		if (wire_get_str(e, "job", d->job, sizeof(d->job)) ||
		    get_u32(e, "batch", &d->task) ||
		    get_u32(e, "attempt", &d->attempt) ||
		    get_f64(e, "ms", &d->ms) ||
		    get_f64(e, "busy_ms", &d->busy_ms) ||
		    wire_get_u64(e, "end_ms", &d->end_ms) ||
		    get_u32(e, "rc", &rc) || rc >= IDN_ERR_COUNT ||
		    get_opt_u64(e, "lease_ms", &d->lease_ms) ||
		    get_opt_u64(e, "start_ms", &d->start_ms) ||
		    get_opt_u64(e, "model_start_ms", &d->model_start_ms) ||
		    get_opt_u64(e, "model_end_ms", &d->model_end_ms)) {
			rv = IDN_EPROTO;
		}
		d->rc = (int) rc;
	}
	if (rv == IDN_OK) {
		rv = get_held(v, "held", &r->held, &r->nheld);
	}
	if (rv == IDN_OK) {
		rv = get_list(v, "train", sizeof(*r->train),
		    (void **) &r->train, &r->ntrain);
	}
	for (size_t i = 0; rv == IDN_OK && i < r->ntrain; i++) {
		const wire_val *e = wire_at(wire_get(v, "train"), i);
		record_progress *p = &r->train[i];
		if (wire_get_str(e, "job", p->job, sizeof(p->job)) ||
		    get_u32(e, "attempt", &p->attempt) ||
		    get_u32(e, "epoch", &p->epoch) ||
		    get_f64(e, "loss", &p->loss) ||
		    get_f64(e, "acc", &p->acc) ||
		    wire_as_bool(wire_get(e, "done"), &p->done) ||
		    get_u32(e, "rc", &rc) || rc >= IDN_ERR_COUNT ||
		    wire_get_str(e, "err", p->err, sizeof(p->err))) {
			rv = IDN_EPROTO;
		}
		p->rc = (int) rc;
	}
	if (rv != IDN_OK) {
		record_lease_req_clear(r);
	}
	return rv;
}

void
record_lease_req_clear(record_lease_req *r)
{
	idn_free(r->done);
	idn_free(r->held);
	idn_free(r->train);
	r->done = NULL;
	r->held = NULL;
	r->train = NULL;
	r->ndone = r->nheld = r->ntrain = 0;
}

void
record_lease_rep_put(wire_wr *w, const record_lease_rep *r)
{
	wire_map(w, 3);
	wire_ku64(w, "epoch", r->epoch);
	wire_str(w, "leases");
	wire_arr(w, (uint32_t) r->n);
	for (size_t i = 0; i < r->n; i++) {
		const record_lease *l = &r->leases[i];
		bool train = l->spec.kind == IDN_JOB_TRAIN;
		wire_map(w, train ? 9 : 7);
		wire_str(w, "spec");
		record_spec_put(w, &l->spec);
		if (train) {
			wire_ku64(w, "world", l->world);
			wire_kstr(w, "peers", l->peers);
		}
		wire_ku64(w, "batch", l->task);
		wire_ku64(w, "attempt", l->attempt);
		wire_ku64(w, "first", l->first);
		wire_ku64(w, "count", l->count);
		wire_ku64(w, "expires_ms", l->expires_ms);
		wire_ku64(w, "ready_ms", l->ready_ms);
	}
	wire_str(w, "drop");
	put_held(w, r->drop, r->ndrop);
}

int
record_lease_rep_get(const wire_val *v, record_lease_rep *r)
{
	memset(r, 0, sizeof(*r));
	int rv = wire_get_u64(v, "epoch", &r->epoch);
	if (rv == IDN_OK) {
		rv = get_list(v, "leases", sizeof(*r->leases),
		    (void **) &r->leases, &r->n);
	}
	for (size_t i = 0; rv == IDN_OK && i < r->n; i++) {
		const wire_val *e = wire_at(wire_get(v, "leases"), i);
		record_lease *l = &r->leases[i];
		if (record_spec_get(wire_get(e, "spec"), &l->spec) ||
		    get_u32(e, "batch", &l->task) ||
		    get_u32(e, "attempt", &l->attempt) ||
		    wire_get_u64(e, "first", &l->first) ||
		    get_u32(e, "count", &l->count) ||
		    wire_get_u64(e, "expires_ms", &l->expires_ms) ||
		    (wire_get(e, "ready_ms") != NULL &&
		    wire_get_u64(e, "ready_ms", &l->ready_ms))) {
			rv = IDN_EPROTO;
		}
		l->world = 1;
		if (rv == IDN_OK && l->spec.kind == IDN_JOB_TRAIN &&
		    wire_get(e, "world") != NULL &&
		    (get_u32(e, "world", &l->world) || l->world == 0 ||
		    l->world > RECORD_RANKS_MAX || l->task >= l->world ||
		    wire_get_str(e, "peers", l->peers, sizeof(l->peers)))) {
			rv = IDN_EPROTO;
		}
	}
	if (rv == IDN_OK) {
		rv = get_held(v, "drop", &r->drop, &r->ndrop);
	}
	if (rv != IDN_OK) {
		record_lease_rep_clear(r);
		return IDN_EPROTO;
	}
	return IDN_OK;
}

void
record_lease_rep_clear(record_lease_rep *r)
{
	idn_free(r->leases);
	idn_free(r->drop);
	r->leases = NULL;
	r->drop = NULL;
	r->n = r->ndrop = 0;
}

// Reads "key = value" (a whole line); false if absent or not a number.
static bool
manifest_field(const char *text, size_t len, const char *key, char *val,
    size_t cap)
{
	size_t klen = strlen(key);
	const char *end = text + len;
	for (const char *p = text; p < end;) {
		const char *nl = memchr(p, '\n', (size_t) (end - p));
		const char *le = nl ? nl : end;
		if ((size_t) (le - p) > klen && strncmp(p, key, klen) == 0) {
			const char *q = p + klen;
			while (q < le && *q == ' ') {
				q++;
			}
			if (q < le && *q == '=') {
				q++;
				while (q < le && *q == ' ') {
					q++;
				}
				size_t n = (size_t) (le - q);
				if (n == 0 || n >= cap) {
					return false;
				}
				memcpy(val, q, n);
				val[n] = '\0';
				return true;
			}
		}
		p = le + 1;
	}
	return false;
}

int
record_manifest_parse(const char *text, size_t len, record_manifest *m)
{
	char v[64];
	unsigned long long count, size, shards;
	unsigned c, h, w;
	char extra;
	memset(m, 0, sizeof(*m));
	if (text == NULL ||
	    !manifest_field(text, len, "count", v, sizeof(v)) ||
	    sscanf(v, "%llu%c", &count, &extra) != 1 ||
	    !manifest_field(text, len, "shard_size", v, sizeof(v)) ||
	    sscanf(v, "%llu%c", &size, &extra) != 1 ||
	    !manifest_field(text, len, "shards", v, sizeof(v)) ||
	    sscanf(v, "%llu%c", &shards, &extra) != 1 ||
	    !manifest_field(text, len, "input", v, sizeof(v)) ||
	    sscanf(v, "%ux%ux%u%c", &c, &h, &w, &extra) != 3) {
		return IDN_ECORRUPT;
	}
	if (count == 0 || size == 0 || size > 100000000 || shards == 0 ||
	    shards > 1000000 || (count + size - 1) / size != shards ||
	    c == 0 || c > 4 || h == 0 || h > 4096 || w == 0 || w > 4096) {
		return IDN_ECORRUPT;
	}
	*m = (record_manifest){count, (uint32_t) size, (uint32_t) shards, c, h,
	    w};
	return IDN_OK;
}

void
record_result_name(char *buf, size_t cap, const char *job,
    uint32_t first_batch)
{
	snprintf(buf, cap, "results/%s/batch-%06u", job, first_batch);
}
