// SPDX-License-Identifier: MIT
// sdfs.c: SDFS inside a node: open (the parts' routes), start (the
// background threads), close, counters. The only file that calls every
// part; the parts call only the files below them.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdfs/server.h"

void
sdfs_close(sdfs *s)
{
	if (s == NULL) {
		return;
	}
	core_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->cv);
	core_unlock(&s->lock);
	if (s->ae_started) {
		pthread_join(s->ae_thread, NULL);
	}
	if (s->pull_started) {
		pthread_join(s->pull_thread, NULL);
	}
	// Commit threads notice stop within one retry of their wait.
	core_lock(&s->lock);
	while (s->commits > 0) {
		pthread_cond_wait(&s->cv, &s->lock);
	}
	core_unlock(&s->lock);
	while (s->puts != NULL) {
		put_sess *p = s->puts;
		s->puts = p->next;
		sdfs_sess_free(p);
	}
	while (s->rtxs != NULL) {
		rtx *t = s->rtxs;
		s->rtxs = t->next;
		sdfs_rtx_free(t);
	}
	while (s->resv != NULL) {
		resv *r = s->resv;
		s->resv = r->next;
		free(r->name);
		free(r);
	}
	for (size_t i = 0; i < UNPUT_MAX; i++) {
		free(s->unputs[i].name);
	}
	while (s->jobs != NULL) {
		pull_job *j = s->jobs;
		s->jobs = j->next;
		free(j->name);
		free(j);
	}
	sdfs_store_close(s->st);
	free(s->ae_cursor);
	free(s->scrub_name);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

// Each part registers its own routes.
static int (*const parts[])(sdfs *) = {sdfs_version_register,
    sdfs_put_register, sdfs_get_register, sdfs_list_register,
    sdfs_replica_register};

int
sdfs_open(const sdfs_opts *o, sdfs **out)
{
	sdfs *s = core_alloc(sizeof(*s));
	if (s == NULL) {
		return IDN_ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	core_cond_init(&s->cv);
	s->rpc = o->rpc;
	s->members = o->members;
	s->members_arg = o->members_arg;
	s->lg = o->lg;
	s->lim = (sdfs_limits){
	    .offers_per_call = sdfs_limit(o->lim.offers_per_call,
	        OFFERS_PER_CALL),
	    .puts_max = sdfs_limit(o->lim.puts_max, PUTS_MAX),
	    .list_page = sdfs_limit(o->lim.list_page, LIST_PAGE),
	    .session_idle_ms = sdfs_limit(o->lim.session_idle_ms,
	        SESSION_IDLE_MS),
	    .scrub_pass_ms = sdfs_limit(o->lim.scrub_pass_ms, SCRUB_PASS_MS),
	    .replicate_ms = sdfs_limit(o->lim.replicate_ms,
	        REPLICATE_DEADLINE_MS),
	};
	snprintf(s->self_addr, sizeof(s->self_addr), "%s", rpc_addr(o->rpc));
	char *root = core_asprintf("%s/sdfs", o->data_dir);
	int rv = root ? sdfs_store_open(root, s->lg, o->lim.cache_trust_ms,
	    &s->st) : IDN_ENOMEM;
	free(root);
	for (size_t i = 0; rv == IDN_OK && i < CORE_ARRAY_LEN(parts); i++) {
		rv = parts[i](s);
	}
	if (rv != IDN_OK) {
		rpc_unroute(s->rpc, s); // no route may outlive s
		sdfs_close(s);
		return rv;
	}
	*out = s;
	return IDN_OK;
}

int
sdfs_start(sdfs *s)
{
	if (pthread_create(&s->ae_thread, NULL, sdfs_ae_thread, s) != 0) {
		return IDN_ESYS;
	}
	s->ae_started = true;
	if (pthread_create(&s->pull_thread, NULL, sdfs_pull_thread, s) != 0) {
		return IDN_ESYS;
	}
	s->pull_started = true;
	return IDN_OK;
}

void
sdfs_counters_get(sdfs *s, sdfs_counters *out)
{
	*out = (sdfs_counters){atomic_load(&s->n_put), atomic_load(&s->n_get),
	    atomic_load(&s->n_pull), atomic_load(&s->n_repair),
	    atomic_load(&s->n_scrub_passes), atomic_load(&s->n_scrub_ms),
	    atomic_load(&s->last_scrub_ms)};
}
