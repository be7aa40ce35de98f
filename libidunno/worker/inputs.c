// SPDX-License-Identifier: MIT
// inputs.c: what a task reads, cached for the executor: models (loaded
// ahead by the loader thread), query sets' manifests, and query shards
// (the next one fetched by the prefetcher thread while the model runs).
#include <stdio.h>
#include <string.h>

#include <idunno/sdfs.h>

#include "worker/worker_int.h"

void
worker_model_key(const record_spec *s, char *key, size_t cap)
{
	snprintf(key, cap, "%s|%s", s->model, s->weights);
}

// The model of spec s from SDFS (its description and weights), loaded.
static int
load_model(worker *w, const record_spec *s, idn_model **out)
{
	char dname[RECORD_PATH_MAX];
	void *desc = NULL, *bytes = NULL;
	size_t dlen = 0, blen = 0;
	char *err = NULL;
	snprintf(dname, sizeof(dname), "models/%s/desc", s->model);
	int rc = idn_sdfs_get_buf(w->h.node, dname, 0, &desc, &dlen, NULL);
	if (rc == IDN_OK) {
		rc = idn_sdfs_get_buf(w->h.node, s->weights, 0, &bytes, &blen,
		    NULL);
	}
	if (rc == IDN_OK) {
		rc = idn_model_load(desc, dlen, bytes, blen, &err, out);
		if (rc != IDN_OK) {
			worker_log(w, IDN_LOG_WARN, "worker: model %s (%s): %s",
			    s->model, s->weights, err ? err : "");
		}
	}
	idn_free(err);
	idn_free(desc);
	idn_free(bytes);
	return rc;
}

model_slot *
worker_cached_model(worker *w, const char *key)
{
	for (int i = 0; i < MODELS_MAX; i++) {
		if (w->models[i].m != NULL && strcmp(w->models[i].key, key) == 0) {
			return &w->models[i];
		}
	}
	return NULL;
}

// Puts m into the executor's cache in place of the least recently used.
static model_slot *
cache_model(worker *w, const char *key, idn_model *m)
{
	model_slot *lru = &w->models[0];
	for (int i = 1; i < MODELS_MAX; i++) {
		if (w->models[i].used < lru->used) {
			lru = &w->models[i];
		}
	}
	idn_model_close(lru->m);
	lru->m = m;
	snprintf(lru->key, sizeof(lru->key), "%s", key);
	idn_model_describe(m, &lru->info);
	lru->used = ++w->tick;
	return lru;
}

model_slot *
worker_get_model(worker *w, const record_spec *s, int *rc)
{
	char key[sizeof(w->models[0].key)];
	worker_model_key(s, key, sizeof(key));
	model_slot *hit = worker_cached_model(w, key);
	if (hit != NULL) {
		hit->used = ++w->tick;
		return hit;
	}
	// The loader's, when it has or is loading this one.
	idn_model *m = NULL;
	core_lock(&w->lock);
	while (w->ld_busy && strcmp(w->ld_key, key) == 0 && !w->stop) {
		worker_wait_ms(w, &w->cv_exec, 100);
	}
	if (w->ld_m != NULL && strcmp(w->ld_key, key) == 0) {
		m = w->ld_m;
		w->ld_m = NULL;
		w->ld_key[0] = '\0';
	}
	core_unlock_log(&w->lock, &w->logq);
	*rc = m != NULL ? IDN_OK : load_model(w, s, &m);
	return *rc == IDN_OK ? cache_model(w, key, m) : NULL;
}

void *
worker_loader_main(void *arg)
{
	worker *w = arg;
	pthread_setname_np(pthread_self(), "idn-load");
	core_lock(&w->lock);
	while (!w->stop) {
		if (w->ld_want.model[0] == '\0') {
			worker_wait_ms(w, &w->cv_pf, 1000);
			continue;
		}
		if (w->ld_m != NULL) {
			// The executor takes it first.
			worker_wait_ms(w, &w->cv_pf, 100);
			continue;
		}
		record_spec want = w->ld_want;
		w->ld_want.model[0] = '\0';
		worker_model_key(&want, w->ld_key, sizeof(w->ld_key));
		w->ld_busy = true;
		core_unlock_log(&w->lock, &w->logq);
		idn_model *m = NULL;
		if (load_model(w, &want, &m) != IDN_OK) {
			m = NULL; // the executor tries itself, and reports
		}
		core_lock(&w->lock);
		w->ld_busy = false;
		w->ld_m = m;
		if (m == NULL) {
			snprintf(w->ld_failed, sizeof(w->ld_failed), "%s",
			    w->ld_key);
			w->ld_key[0] = '\0';
		}
		pthread_cond_broadcast(&w->cv_exec);
	}
	core_unlock_log(&w->lock, &w->logq);
	return NULL;
}

void
worker_adopt(worker *w)
{
	if (w->ld_m == NULL) {
		return;
	}
	idn_model *m = w->ld_m;
	char key[sizeof(w->ld_key)];
	snprintf(key, sizeof(key), "%s", w->ld_key);
	w->ld_m = NULL;
	w->ld_key[0] = '\0';
	pthread_cond_broadcast(&w->cv_pf);
	core_unlock_log(&w->lock, &w->logq);
	cache_model(w, key, m);
	core_lock(&w->lock);
}

set_slot *
worker_get_set(worker *w, const char *prefix, int *rc)
{
	set_slot *lru = &w->sets[0];
	for (int i = 0; i < SETS_MAX; i++) {
		if (w->sets[i].used && strcmp(w->sets[i].prefix, prefix) == 0) {
			w->sets[i].used = ++w->tick;
			return &w->sets[i];
		}
		if (w->sets[i].used < lru->used) {
			lru = &w->sets[i];
		}
	}
	char name[RECORD_PATH_MAX + 16];
	void *text = NULL;
	size_t len = 0;
	snprintf(name, sizeof(name), "%s/manifest", prefix);
	*rc = idn_sdfs_get_buf(w->h.node, name, 0, &text, &len, NULL);
	if (*rc == IDN_OK) {
		*rc = record_manifest_parse(text, len, &lru->man);
	}
	idn_free(text);
	if (*rc != IDN_OK) {
		return NULL;
	}
	snprintf(lru->prefix, sizeof(lru->prefix), "%s", prefix);
	lru->used = ++w->tick;
	return lru;
}

const idn_dataset_shard *
worker_get_shard(worker *w, const char *prefix, uint32_t k, int *rc)
{
	char name[sizeof(w->shards[0].name)];
	*rc = idn_dataset_shard_name(prefix, k, name, sizeof(name));
	if (*rc != IDN_OK) {
		return NULL;
	}
	shard_slot *lru = &w->shards[0];
	for (int i = 0; i < SHARDS_MAX; i++) {
		if (w->shards[i].blob && strcmp(w->shards[i].name, name) == 0) {
			w->shards[i].used = ++w->tick;
			return &w->shards[i].s;
		}
		if (w->shards[i].used < lru->used) {
			lru = &w->shards[i];
		}
	}
	void *blob = NULL;
	size_t len = 0;
	idn_dataset_shard s;
	core_lock(&w->lock);
	while (w->pf_busy && strcmp(w->pf_name, name) == 0 && !w->stop) {
		worker_wait_ms(w, &w->cv_exec, 100);
	}
	if (w->pf_blob != NULL && strcmp(w->pf_name, name) == 0) {
		blob = w->pf_blob;
		len = w->pf_len;
		w->pf_blob = NULL;
		w->pf_name[0] = '\0';
	}
	core_unlock_log(&w->lock, &w->logq);
	*rc = blob != NULL ? IDN_OK : idn_sdfs_get_buf(w->h.node, name, 0,
	    &blob, &len, NULL);
	if (*rc == IDN_OK) {
		*rc = idn_dataset_shard_decode(blob, len, &s);
	}
	if (*rc != IDN_OK) {
		idn_free(blob);
		return NULL;
	}
	idn_free(lru->blob);
	lru->blob = blob;
	lru->s = s;
	snprintf(lru->name, sizeof(lru->name), "%s", name);
	lru->used = ++w->tick;
	return &lru->s;
}

void
worker_prefetch(worker *w, const char *prefix, uint32_t k)
{
	char name[sizeof(w->pf_want)];
	if (idn_dataset_shard_name(prefix, k, name, sizeof(name)) != IDN_OK) {
		return;
	}
	for (int i = 0; i < SHARDS_MAX; i++) {
		if (w->shards[i].blob && strcmp(w->shards[i].name, name) == 0) {
			return;
		}
	}
	core_lock(&w->lock);
	if (strcmp(w->pf_name, name) != 0) {
		snprintf(w->pf_want, sizeof(w->pf_want), "%s", name);
		pthread_cond_broadcast(&w->cv_pf);
	}
	core_unlock_log(&w->lock, &w->logq);
}

void *
worker_prefetch_main(void *arg)
{
	worker *w = arg;
	pthread_setname_np(pthread_self(), "idn-prefetch");
	core_lock(&w->lock);
	while (!w->stop) {
		if (w->pf_want[0] == '\0') {
			worker_wait_ms(w, &w->cv_pf, 1000);
			continue;
		}
		char name[sizeof(w->pf_want)];
		snprintf(name, sizeof(name), "%s", w->pf_want);
		w->pf_want[0] = '\0';
		idn_free(w->pf_blob);
		w->pf_blob = NULL;
		snprintf(w->pf_name, sizeof(w->pf_name), "%s", name);
		w->pf_busy = true;
		core_unlock_log(&w->lock, &w->logq);
		void *blob = NULL;
		size_t len = 0;
		if (idn_sdfs_get_buf(w->h.node, name, 0, &blob, &len, NULL) !=
		    IDN_OK) {
			blob = NULL; // the executor fetches it itself
		}
		core_lock(&w->lock);
		w->pf_busy = false;
		if (strcmp(w->pf_name, name) == 0 && blob != NULL) {
			w->pf_blob = blob;
			w->pf_len = len;
		} else {
			w->pf_name[0] = '\0';
			idn_free(blob);
		}
		pthread_cond_broadcast(&w->cv_exec);
	}
	core_unlock_log(&w->lock, &w->logq);
	return NULL;
}

void
worker_inputs_free(worker *w)
{
	idn_model_close(w->ld_m);
	idn_free(w->pf_blob);
	for (int i = 0; i < MODELS_MAX; i++) {
		idn_model_close(w->models[i].m);
	}
	for (int i = 0; i < SHARDS_MAX; i++) {
		idn_free(w->shards[i].blob);
	}
}
