// SPDX-License-Identifier: MIT
// ckpt.c: a training run's checkpoint writer. A checkpoint is taken on the
// training thread (the state's bytes at one step) and stored by a thread
// of its own, so that training goes on while ResNet-18's ~90 MB of
// weights and optimiser state reach their replicas (a synchronous write
// cost every rank about 4 s each 30 s). The state goes in first, then the
// meta naming its version: a meta always points at a whole checkpoint.
// One checkpoint is written at a time; a newer one replaces one that has
// not begun (the older is of no use once a newer exists). A failed write
// is tried again, CKPT_RETRY_MS apart, unless a newer one has come: an
// SDFS busy with repairs on a loaded machine timed out a put in a report
// run, and since the meta still names the last whole checkpoint, a lost
// one only widens what a crash loses; it never stops training.
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/sdfs.h>

#include "catalog/catalog.h"
#include "core/core.h"

#define CKPT_TRIES 3
#define CKPT_RETRY_MS 2000

struct catalog_ckpt {
	idn_client *c;
	char *ckpt, *meta; // SDFS names
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	// Under lock: the checkpoint waiting to be written (state NULL:
	// none), whether one is being written, the last write's result,
	// stop.
	void *state;
	size_t len;
	catalog_meta next;
	bool busy, stop;
	int rv;
};

// Whether a failed write should be tried again (called with the lock
// held): not when a newer checkpoint waits or the run ends.
static bool
retry_wait(catalog_ckpt *w)
{
	uint64_t end = idn_clock_ms() + CKPT_RETRY_MS;
	while (w->state == NULL && !w->stop &&
	    core_cond_wait_until(&w->cv, &w->lock, end) == IDN_OK) {
	}
	return w->state == NULL && !w->stop;
}

static int
write_one(catalog_ckpt *w, void *state, size_t len, catalog_meta *m)
{
	int rv = idn_sdfs_put_buf(w->c, w->ckpt, state, len, &m->checkpoint);
	char *text = rv == IDN_OK ? catalog_meta_format(m) : NULL;
	if (rv == IDN_OK && text == NULL) {
		rv = IDN_ENOMEM;
	}
	if (rv == IDN_OK) {
		rv = idn_sdfs_put_buf(w->c, w->meta, text, strlen(text), NULL);
	}
	free(text);
	return rv;
}

static void *
writer(void *arg)
{
	catalog_ckpt *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->state == NULL && !w->stop) {
			pthread_cond_wait(&w->cv, &w->lock);
		}
		if (w->state == NULL) {
			break; // stopping, nothing left to write
		}
		void *state = w->state;
		size_t len = w->len;
		catalog_meta m = w->next;
		w->state = NULL;
		w->next = (catalog_meta){0};
		w->busy = true;
		int rv;
		for (int k = 1;; k++) {
			pthread_mutex_unlock(&w->lock);
			rv = write_one(w, state, len, &m);
			pthread_mutex_lock(&w->lock);
			if (rv == IDN_OK || k == CKPT_TRIES || !retry_wait(w)) {
				break;
			}
		}
		idn_free(state);
		catalog_meta_clear(&m);
		w->busy = false;
		w->rv = rv;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int
catalog_ckpt_open(idn_client *c, const char *ckpt, const char *meta,
    catalog_ckpt **out)
{
	catalog_ckpt *w = core_alloc(sizeof(*w));
	if (w == NULL) {
		return IDN_ENOMEM;
	}
	w->c = c;
	w->ckpt = core_strdup(ckpt);
	w->meta = core_strdup(meta);
	pthread_mutex_init(&w->lock, NULL);
	core_cond_init(&w->cv);
	int rv = w->ckpt == NULL || w->meta == NULL ? IDN_ENOMEM :
	    pthread_create(&w->thread, NULL, writer, w) != 0 ? IDN_ESYS :
	    IDN_OK;
	if (rv != IDN_OK) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->lock);
		free(w->ckpt);
		free(w->meta);
		free(w);
		return rv;
	}
	*out = w;
	return IDN_OK;
}

int
catalog_ckpt_save(catalog_ckpt *w, void *state, size_t len,
    const catalog_meta *m)
{
	catalog_meta copy = {.epoch = m->epoch, .step = m->step,
	    .settings = core_strdup(m->settings),
	    .metrics = core_strdup(m->metrics ? m->metrics : "")};
	if (copy.settings == NULL || copy.metrics == NULL) {
		catalog_meta_clear(&copy);
		idn_free(state);
		return IDN_ENOMEM;
	}
	pthread_mutex_lock(&w->lock);
	idn_free(w->state); // replaced before it began
	catalog_meta_clear(&w->next);
	w->state = state;
	w->len = len;
	w->next = copy;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->lock);
	return IDN_OK;
}

int
catalog_ckpt_drain(catalog_ckpt *w)
{
	if (w == NULL) {
		return IDN_OK;
	}
	pthread_mutex_lock(&w->lock);
	while (w->state != NULL || w->busy) {
		pthread_cond_wait(&w->cv, &w->lock);
	}
	int rv = w->rv;
	pthread_mutex_unlock(&w->lock);
	return rv;
}

void
catalog_ckpt_close(catalog_ckpt *w)
{
	if (w == NULL) {
		return;
	}
	pthread_mutex_lock(&w->lock);
	w->stop = true; // the writer writes what is waiting, then ends
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->lock);
	free(w->ckpt);
	free(w->meta);
	free(w);
}
