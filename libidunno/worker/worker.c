// SPDX-License-Identifier: MIT
// worker.c: the worker's threads started and stopped (worker_int.h says
// what each does and what they share).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "worker/worker_int.h"

// Starts fn unless an earlier start failed (*rv); *have records it for
// worker_close.
static void
start(worker *w, pthread_t *t, bool *have, void *(*fn)(void *), int *rv)
{
	if (*rv == IDN_OK && pthread_create(t, NULL, fn, w) != 0) {
		*rv = IDN_ESYS;
	}
	*have = *rv == IDN_OK;
}

int
worker_open(const worker_host *h, worker **out)
{
	worker *w = core_alloc(sizeof(*w));
	if (w == NULL) {
		return IDN_ENOMEM;
	}
	w->h = *h;
	snprintf(w->self, sizeof(w->self), "%s", h->self_id);
	w->h.self_id = w->self;
	snprintf(w->addr, sizeof(w->addr), "%s", h->addr ? h->addr : "");
	w->h.addr = w->addr;
	w->lg = (core_logger){h->log, h->log_arg, IDN_LOG_DEBUG};
	w->logq.lg = &w->lg;
	pthread_mutex_init(&w->lock, NULL);
	core_cond_init(&w->cv_loop);
	core_cond_init(&w->cv_exec);
	core_cond_init(&w->cv_write);
	core_cond_init(&w->cv_pf);
	int rv = IDN_OK;
	start(w, &w->loop, &w->have_loop, worker_lease_main, &rv);
	start(w, &w->exec, &w->have_exec, worker_exec_main, &rv);
	start(w, &w->pf, &w->have_pf, worker_prefetch_main, &rv);
	start(w, &w->ld, &w->have_ld, worker_loader_main, &rv);
	while (rv == IDN_OK && w->nwriters < WRITERS) {
		if (pthread_create(&w->writers[w->nwriters], NULL,
		        worker_writer_main, w) != 0) {
			rv = IDN_ESYS;
		} else {
			w->nwriters++;
		}
	}
	if (rv != IDN_OK) {
		worker_close(w);
		return rv;
	}
	*out = w;
	return IDN_OK;
}

void
worker_close(worker *w)
{
	if (w == NULL) {
		return;
	}
	core_lock(&w->lock);
	w->stop = true;
	if (w->running && w->cur.spec.kind == IDN_JOB_TRAIN) {
		worker_abort_cur(w); // a rank waiting for its peers
	}
	pthread_cond_broadcast(&w->cv_loop);
	pthread_cond_broadcast(&w->cv_exec);
	pthread_cond_broadcast(&w->cv_write);
	pthread_cond_broadcast(&w->cv_pf);
	core_unlock_log(&w->lock, &w->logq);
	if (w->have_loop) {
		pthread_join(w->loop, NULL);
	}
	if (w->have_exec) {
		pthread_join(w->exec, NULL);
	}
	for (int i = 0; i < w->nwriters; i++) {
		pthread_join(w->writers[i], NULL);
	}
	if (w->have_pf) {
		pthread_join(w->pf, NULL);
	}
	if (w->have_ld) {
		pthread_join(w->ld, NULL);
	}
	worker_inputs_free(w);
	for (size_t i = 0; i < WRITES_MAX; i++) {
		core_buf_free(&w->wr[i].out);
	}
	pthread_cond_destroy(&w->cv_loop);
	pthread_cond_destroy(&w->cv_exec);
	pthread_cond_destroy(&w->cv_write);
	pthread_cond_destroy(&w->cv_pf);
	pthread_mutex_destroy(&w->lock);
	core_logq_free(&w->logq);
	free(w);
}
