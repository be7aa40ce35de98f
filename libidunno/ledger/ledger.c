// SPDX-License-Identifier: MIT
// ledger.c: the sqlite ledger. The builders below fill a change and
// ledger_apply executes it, so the local write and the stream to a
// standby are the same change.
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger/ledger.h"

#define STMT_CACHE 24

struct ledger {
	sqlite3 *db;
	pthread_mutex_t lock;
	ledger_stream_fn stream;
	void *stream_arg;
	uint64_t changes;
	// Prepared statements by their SQL text, kept for the connection's
	// life: a lease call runs a few of them.
	sqlite3_stmt *stmt[STMT_CACHE];
	int tx_depth;         // ledger_begin nesting
	// WAL checkpoints run on a thread of their own with a second
	// connection (PASSIVE: writers go on meanwhile), so no change waits
	// for the checkpoint's fsyncs; the connection's own automatic ones
	// are off.
	sqlite3 *ckdb;
	pthread_t ckpt;
	bool have_ckpt, stop;
	pthread_cond_t cond;
	uint64_t ckpt_changes; // changes at the last checkpoint
};

#define CKPT_MS 1000
#define CKPT_CHANGES 2000   // or sooner after this many changes

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER);"
    "CREATE TABLE IF NOT EXISTS jobs(name TEXT PRIMARY KEY, spec BLOB,"
    " state INTEGER, start_ms INTEGER, accuracy REAL DEFAULT -1,"
    " epoch INTEGER DEFAULT 0, loss REAL DEFAULT 0, acc REAL DEFAULT 0,"
    " err TEXT DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS batches(job TEXT, batch INTEGER,"
    " worker TEXT, attempt INTEGER, ms REAL, end_ms INTEGER,"
    " lease_ms INTEGER DEFAULT 0, start_ms INTEGER DEFAULT 0,"
    " model_start_ms INTEGER DEFAULT 0, model_end_ms INTEGER DEFAULT 0,"
    " PRIMARY KEY(job, batch));"
    "CREATE TABLE IF NOT EXISTS leases(job TEXT, batch INTEGER,"
    " worker TEXT, attempt INTEGER, expires_ms INTEGER,"
    " PRIMARY KEY(job, batch));";

// The worker's marks of a finished task, columns of batches added after
// the table: a ledger from before (a local file, an SDFS checkpoint, a
// standby's image) gets them on open, 0 in its rows.
static const char *const marks[] = {"lease_ms", "start_ms",
    "model_start_ms", "model_end_ms"};
#define NMARKS (sizeof(marks) / sizeof(marks[0]))

static int
db_err(int rc)
{
	return rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW ?
	    IDN_OK : IDN_EDB;
}

static int
add_marks(sqlite3 *db)
{
	int rc = SQLITE_OK;
	for (size_t i = 0; rc == SQLITE_OK && i < NMARKS; i++) {
		char sql[128];
		sqlite3_stmt *st = NULL;
		snprintf(sql, sizeof(sql), "SELECT %s FROM batches", marks[i]);
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
			snprintf(sql, sizeof(sql), "ALTER TABLE batches ADD "
			    "COLUMN %s INTEGER DEFAULT 0", marks[i]);
			rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
		}
		sqlite3_finalize(st);
	}
	return rc;
}

static void *
ckpt_main(void *arg)
{
	ledger *l = arg;
	core_lock(&l->lock);
	while (!l->stop) {
		core_cond_wait_ms(&l->cond, &l->lock, CKPT_MS);
		if (l->stop || l->changes == l->ckpt_changes) {
			continue;
		}
		l->ckpt_changes = l->changes;
		core_unlock(&l->lock);
		(void) sqlite3_wal_checkpoint_v2(l->ckdb, "main",
		    SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		core_lock(&l->lock);
	}
	core_unlock(&l->lock);
	return NULL;
}

int
ledger_open(const char *path, ledger **out)
{
	ledger *l = core_alloc(sizeof(*l));
	if (l == NULL) {
		return IDN_ENOMEM;
	}
	pthread_mutex_init(&l->lock, NULL);
	core_cond_init(&l->cond);
	int rc = sqlite3_open_v2(path, &l->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(l->db, 2000);
		rc = sqlite3_exec(l->db, schema, NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK) {
		rc = add_marks(l->db);
	}
	if (rc == SQLITE_OK) {
		rc = sqlite3_open_v2(path, &l->ckdb, SQLITE_OPEN_READWRITE |
		    SQLITE_OPEN_FULLMUTEX, NULL);
	}
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(l->ckdb, 2000);
		rc = sqlite3_exec(l->db, "PRAGMA wal_autocheckpoint=0", NULL, NULL,
		    NULL);
	}
	if (rc == SQLITE_OK && pthread_create(&l->ckpt, NULL, ckpt_main, l) == 0) {
		l->have_ckpt = true;
	}
	if (rc != SQLITE_OK || !l->have_ckpt) {
		ledger_close(l);
		return IDN_EDB;
	}
	*out = l;
	return IDN_OK;
}

int
ledger_open_image(const char *path, const void *img, size_t len,
    ledger **out)
{
	static const char magic[] = "SQLite format 3";
	if (img == NULL || len < 100 || memcmp(img, magic, sizeof(magic)) != 0) {
		return IDN_ECORRUPT;
	}
	char *wal = core_asprintf("%s-wal", path);
	char *shm = core_asprintf("%s-shm", path);
	if (wal == NULL || shm == NULL) {
		free(wal);
		free(shm);
		return IDN_ENOMEM;
	}
	unlink(wal);
	unlink(shm);
	free(wal);
	free(shm);
	int rv = core_file_write_atomic(path, img, len);
	if (rv == IDN_OK) {
		rv = ledger_open(path, out);
	}
	if (rv == IDN_OK) {
		uint64_t v;
		if (ledger_get(*out, "epoch", &v) == IDN_EDB) {
			ledger_close(*out);
			rv = IDN_ECORRUPT;
		}
	}
	return rv == IDN_EDB ? IDN_ECORRUPT : rv;
}

// Steps the meta row of key: IDN_OK with *st on it, IDN_ENOENT (no such
// key) or IDN_EDB. The caller finalizes *st in every case.
static int
meta_row(sqlite3 *db, const char *key, sqlite3_stmt **st)
{
	*st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?", -1,
	    st, NULL) != SQLITE_OK) {
		return IDN_EDB;
	}
	sqlite3_bind_text(*st, 1, key, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(*st);
	return rc == SQLITE_ROW ? IDN_OK : rc == SQLITE_DONE ? IDN_ENOENT :
	    IDN_EDB;
}

int
ledger_image_get(const void *img, size_t len, const char *key,
    uint64_t *value)
{
	static const char magic[] = "SQLite format 3";
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	if (img == NULL || len < 100 ||
	    memcmp(img, magic, sizeof(magic)) != 0) {
		return IDN_ECORRUPT;
	}
	unsigned char *copy = sqlite3_malloc64(len);
	if (copy == NULL) {
		return IDN_ENOMEM;
	}
	memcpy(copy, img, len);
	// An image of a WAL database says so in bytes 18-19; an in-memory
	// database cannot use a WAL: read it as a rollback-journal one.
	if (copy[18] == 2 && copy[19] == 2) {
		copy[18] = copy[19] = 1;
	}
	int rv = IDN_ECORRUPT;
	if (sqlite3_open(":memory:", &db) != SQLITE_OK) {
		sqlite3_free(copy);
	} else if (sqlite3_deserialize(db, "main", copy, (sqlite3_int64) len,
	    (sqlite3_int64) len, SQLITE_DESERIALIZE_FREEONCLOSE |
	    SQLITE_DESERIALIZE_READONLY) != SQLITE_OK) {
		// sqlite freed copy
	} else if ((rv = meta_row(db, key, &st)) == IDN_OK) {
		*value = (uint64_t) sqlite3_column_int64(st, 0);
	} else if (rv == IDN_EDB) {
		rv = IDN_ECORRUPT;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rv;
}

void
ledger_close(ledger *l)
{
	if (l != NULL) {
		if (l->have_ckpt) {
			core_lock(&l->lock);
			l->stop = true;
			pthread_cond_broadcast(&l->cond);
			core_unlock(&l->lock);
			pthread_join(l->ckpt, NULL);
		}
		for (int i = 0; i < STMT_CACHE; i++) {
			sqlite3_finalize(l->stmt[i]);
		}
		sqlite3_close(l->ckdb);
		sqlite3_close(l->db);
		pthread_cond_destroy(&l->cond);
		pthread_mutex_destroy(&l->lock);
		free(l);
	}
}

void
ledger_set_stream(ledger *l, ledger_stream_fn fn, void *arg)
{
	core_lock(&l->lock);
	l->stream = fn;
	l->stream_arg = arg;
	core_unlock(&l->lock);
}

uint64_t
ledger_changes(ledger *l)
{
	core_lock(&l->lock);
	uint64_t n = l->changes;
	core_unlock(&l->lock);
	return n;
}

// The statement for sql, from the cache or newly prepared into it;
// *cached false (the cache is full): finalize it after.
static sqlite3_stmt *
stmt(ledger *l, const char *sql, bool *cached)
{
	int free_slot = -1;
	for (int i = 0; i < STMT_CACHE; i++) {
		if (l->stmt[i] != NULL && strcmp(sqlite3_sql(l->stmt[i]), sql) == 0) {
			*cached = true;
			return l->stmt[i];
		}
		free_slot = free_slot < 0 && l->stmt[i] == NULL ? i : free_slot;
	}
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(l->db, sql, -1, free_slot >= 0 ?
	        SQLITE_PREPARE_PERSISTENT : 0, &st, NULL) != SQLITE_OK) {
		return NULL;
	}
	*cached = free_slot >= 0;
	if (*cached) {
		l->stmt[free_slot] = st;
	}
	return st;
}

// Runs one statement with bound values: fmt has one letter per value:
// s string, i int64, d double, b blob (pointer then size_t).
static int
exec(ledger *l, const char *sql, const char *fmt, ...)
{
	bool cached;
	sqlite3_stmt *st = stmt(l, sql, &cached);
	if (st == NULL) {
		return IDN_EDB;
	}
	int rc;
	va_list ap;
	va_start(ap, fmt);
	for (int i = 0; fmt[i] != '\0'; i++) {
		if (fmt[i] == 's') {
			sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1,
			    SQLITE_TRANSIENT);
		} else if (fmt[i] == 'i') {
			sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
		} else if (fmt[i] == 'd') {
			sqlite3_bind_double(st, i + 1, va_arg(ap, double));
		} else {
			const void *p = va_arg(ap, const void *);
			size_t n = va_arg(ap, size_t);
			sqlite3_bind_blob(st, i + 1, p, (int) n,
			    SQLITE_TRANSIENT);
		}
	}
	va_end(ap);
	rc = sqlite3_step(st);
	if (cached) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	} else {
		sqlite3_finalize(st);
	}
	return db_err(rc);
}

int
ledger_begin(ledger *l)
{
	core_lock(&l->lock);
	int rv = l->tx_depth++ == 0 ? exec(l, "BEGIN", "") : IDN_OK;
	if (rv != IDN_OK) {
		l->tx_depth--;
	}
	core_unlock(&l->lock);
	return rv;
}

int
ledger_commit(ledger *l)
{
	core_lock(&l->lock);
	int rv = l->tx_depth > 0 && --l->tx_depth == 0 ?
	    exec(l, "COMMIT", "") : IDN_OK;
	core_unlock(&l->lock);
	return rv;
}

static int
apply_locked(ledger *l, const ledger_change *c)
{
	const char *job = c->key;
	const ledger_row *r = &c->row;
	int rv;
	switch (c->op) {
	case LEDGER_TEXT:
		return exec(l, "INSERT OR REPLACE INTO meta VALUES(?, ?)", "sb",
		    c->key, c->data, c->len);
	case LEDGER_SET:
		return exec(l, "INSERT OR REPLACE INTO meta VALUES(?, ?)", "si",
		    c->key, (int64_t) c->value);
	case LEDGER_JOB:
		rv = exec(l, "DELETE FROM batches WHERE job = ?", "s", job);
		if (rv == IDN_OK) {
			rv = exec(l, "DELETE FROM leases WHERE job = ?", "s", job);
		}
		return rv != IDN_OK ? rv : exec(l, "INSERT OR REPLACE INTO "
		    "jobs(name, spec, state, start_ms) VALUES(?, ?, ?, ?)",
		    "sbii", job, c->data, c->len, (int64_t) c->state,
		    (int64_t) c->start_ms);
	case LEDGER_STATE:
		rv = exec(l, "UPDATE jobs SET state = ?, accuracy = ?, "
		    "err = ? WHERE name = ?", "idss", (int64_t) c->state,
		    c->accuracy, c->err, job);
		return rv != IDN_OK || !c->ended ? rv :
		    exec(l, "DELETE FROM leases WHERE job = ?", "s", job);
	case LEDGER_FORGET:
		rv = exec(l, "DELETE FROM jobs WHERE name = ?", "s", job);
		rv = rv ? rv : exec(l, "DELETE FROM batches WHERE job = ?", "s",
		    job);
		return rv ? rv : exec(l, "DELETE FROM leases WHERE job = ?", "s",
		    job);
	case LEDGER_EPOCH:
		return exec(l, "UPDATE jobs SET epoch = ?, loss = ?, acc = ? "
		    "WHERE name = ?", "idds", (int64_t) c->epoch, c->loss, c->acc,
		    job);
	case LEDGER_DONE:
		rv = exec(l, "INSERT OR IGNORE INTO batches(job, batch, "
		    "worker, attempt, ms, end_ms, lease_ms, start_ms, "
		    "model_start_ms, model_end_ms) VALUES(?, ?, ?, ?, ?, ?, ?, "
		    "?, ?, ?)", "sisidiiiii", job, (int64_t) r->task, r->worker,
		    (int64_t) r->attempt, r->ms, (int64_t) r->end_ms,
		    (int64_t) r->lease_ms, (int64_t) r->start_ms,
		    (int64_t) r->model_start_ms, (int64_t) r->model_end_ms);
		return rv ? rv : exec(l, "DELETE FROM leases WHERE job = ? AND "
		    "batch = ?", "si", job, (int64_t) r->task);
	case LEDGER_LEASE:
		return exec(l, "INSERT OR REPLACE INTO leases VALUES(?, ?, ?, ?, "
		    "?)", "sisii", job, (int64_t) r->task, r->worker,
		    (int64_t) r->attempt, (int64_t) r->end_ms);
	}
	return IDN_EINVAL;
}

int
ledger_apply(ledger *l, const ledger_change *c)
{
	core_lock(&l->lock);
	int rv = apply_locked(l, c);
	if (rv == IDN_OK) {
		l->changes++;
		if (l->changes - l->ckpt_changes >= CKPT_CHANGES) {
			pthread_cond_signal(&l->cond);
		}
		if (l->stream != NULL) {
			l->stream(l->stream_arg, c);
		}
	}
	core_unlock(&l->lock);
	return rv;
}

// A change of op to job (or the setting key): the caller fills the rest.
static ledger_change
change(int op, const char *key)
{
	ledger_change c = {.op = op};
	snprintf(c.key, sizeof(c.key), "%s", key);
	return c;
}

int
ledger_job_put(ledger *l, const char *job, const void *spec, size_t len,
    int state, uint64_t start_ms)
{
	ledger_change c = change(LEDGER_JOB, job);
	c.data = spec;
	c.len = len;
	c.state = (uint64_t) state;
	c.start_ms = start_ms;
	return ledger_apply(l, &c);
}

int
ledger_job_state(ledger *l, const char *job, int state, bool ended,
    double accuracy, const char *err)
{
	ledger_change c = change(LEDGER_STATE, job);
	c.state = (uint64_t) state;
	c.ended = ended;
	c.accuracy = accuracy;
	snprintf(c.err, sizeof(c.err), "%s", err ? err : "");
	return ledger_apply(l, &c);
}

int
ledger_job_forget(ledger *l, const char *job)
{
	ledger_change c = change(LEDGER_FORGET, job);
	return ledger_apply(l, &c);
}

int
ledger_task_done(ledger *l, const char *job, const ledger_row *row)
{
	ledger_change c = change(LEDGER_DONE, job);
	c.row = *row;
	return ledger_apply(l, &c);
}

int
ledger_lease_put(ledger *l, const char *job, uint32_t task,
    const char *worker, uint32_t attempt, uint64_t expires_ms)
{
	ledger_change c = change(LEDGER_LEASE, job);
	c.row.task = task;
	c.row.attempt = attempt;
	c.row.end_ms = expires_ms;
	snprintf(c.row.worker, sizeof(c.row.worker), "%s", worker);
	return ledger_apply(l, &c);
}

int
ledger_train_epoch(ledger *l, const char *job, uint32_t epoch, double loss,
    double acc)
{
	ledger_change c = change(LEDGER_EPOCH, job);
	c.epoch = epoch;
	c.loss = loss;
	c.acc = acc;
	return ledger_apply(l, &c);
}

int
ledger_set(ledger *l, const char *key, uint64_t value)
{
	ledger_change c = change(LEDGER_SET, key);
	c.value = value;
	return ledger_apply(l, &c);
}

int
ledger_set_text(ledger *l, const char *key, const char *text)
{
	ledger_change c = change(LEDGER_TEXT, key);
	c.data = text;
	c.len = strlen(text);
	return ledger_apply(l, &c);
}

int
ledger_get_text(ledger *l, const char *key, char **text)
{
	sqlite3_stmt *st;
	*text = NULL;
	core_lock(&l->lock);
	int rv = meta_row(l->db, key, &st);
	if (rv == IDN_OK && sqlite3_column_type(st, 0) != SQLITE_BLOB) {
		rv = IDN_ENOENT; // a number, not a text setting
	} else if (rv == IDN_OK) {
		size_t n = (size_t) sqlite3_column_bytes(st, 0);
		const void *p = sqlite3_column_blob(st, 0);
		if ((*text = core_alloc(n + 1)) == NULL) {
			rv = IDN_ENOMEM;
		} else {
			memcpy(*text, p ? p : "", n);
			(*text)[n] = '\0';
		}
	}
	sqlite3_finalize(st);
	core_unlock(&l->lock);
	return rv;
}

int
ledger_get(ledger *l, const char *key, uint64_t *value)
{
	sqlite3_stmt *st;
	core_lock(&l->lock);
	int rv = meta_row(l->db, key, &st);
	if (rv == IDN_OK) {
		*value = (uint64_t) sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	core_unlock(&l->lock);
	return rv;
}

static const char *
col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *) t : "";
}

int
ledger_jobs(ledger *l, ledger_job_fn fn, void *arg)
{
	sqlite3_stmt *st;
	core_lock(&l->lock);
	int rv = sqlite3_prepare_v2(l->db, "SELECT name, spec, state, "
	    "start_ms, accuracy, epoch, loss, acc, err FROM jobs ORDER BY "
	    "rowid", -1, &st, NULL) == SQLITE_OK ? IDN_OK : IDN_EDB;
	int rc;
	while (rv == IDN_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		ledger_job j = {0};
		snprintf(j.name, sizeof(j.name), "%s", col_text(st, 0));
		j.spec = sqlite3_column_blob(st, 1);
		j.spec_len = (size_t) sqlite3_column_bytes(st, 1);
		j.state = sqlite3_column_int(st, 2);
		j.start_ms = (uint64_t) sqlite3_column_int64(st, 3);
		j.accuracy = sqlite3_column_double(st, 4);
		j.epoch = (uint32_t) sqlite3_column_int64(st, 5);
		j.loss = sqlite3_column_double(st, 6);
		j.acc = sqlite3_column_double(st, 7);
		snprintf(j.err, sizeof(j.err), "%s", col_text(st, 8));
		fn(arg, &j);
	}
	if (rv == IDN_OK) {
		sqlite3_finalize(st);
	}
	core_unlock(&l->lock);
	return rv;
}

int
ledger_tasks(ledger *l, bool leases, const char *job, ledger_task_fn fn,
    void *arg)
{
	char sql[320];
	sqlite3_stmt *st;
	snprintf(sql, sizeof(sql), "SELECT job, batch, worker, attempt, %s "
	    "FROM %s %s ORDER BY job, batch", leases ? "0, expires_ms, 0, 0, "
	    "0, 0" : "ms, end_ms, lease_ms, start_ms, model_start_ms, "
	    "model_end_ms", leases ? "leases" : "batches",
	    job ? "WHERE job = ?" : "");
	core_lock(&l->lock);
	int rv = sqlite3_prepare_v2(l->db, sql, -1, &st, NULL) == SQLITE_OK ?
	    IDN_OK : IDN_EDB;
	if (rv == IDN_OK && job != NULL) {
		sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
	}
	int rc = SQLITE_DONE;
	while (rv == IDN_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		ledger_row r = {
			.task = (uint32_t) sqlite3_column_int64(st, 1),
			.attempt = (uint32_t) sqlite3_column_int64(st, 3),
			.ms = sqlite3_column_double(st, 4),
		};
		uint64_t *t[] = {&r.end_ms, &r.lease_ms, &r.start_ms,
		    &r.model_start_ms, &r.model_end_ms};
		for (int i = 0; i < 5; i++) {
			*t[i] = (uint64_t) sqlite3_column_int64(st, 5 + i);
		}
		snprintf(r.worker, sizeof(r.worker), "%s", col_text(st, 2));
		fn(arg, col_text(st, 0), &r);
	}
	if (rv == IDN_OK) {
		rv = rc == SQLITE_DONE ? IDN_OK : IDN_EDB;
		sqlite3_finalize(st);
	}
	core_unlock(&l->lock);
	return rv;
}

int
ledger_image(ledger *l, void **out, size_t *len)
{
	sqlite3_int64 n = 0;
	core_lock(&l->lock);
	unsigned char *img = sqlite3_serialize(l->db, "main", &n, 0);
	core_unlock(&l->lock);
	if (img == NULL) {
		return IDN_EDB;
	}
	void *copy = core_alloc((size_t) n);
	if (copy != NULL) {
		memcpy(copy, img, (size_t) n);
	}
	sqlite3_free(img);
	if (copy == NULL) {
		return IDN_ENOMEM;
	}
	*out = copy;
	*len = (size_t) n;
	return IDN_OK;
}
