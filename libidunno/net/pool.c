// SPDX-License-Identifier: MIT
// pool.c: a few threads that make RPC calls on others' behalf: parallel
// fan-out (wait for all) and fire-and-forget pushes.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

typedef struct batch {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	size_t left;
} batch;

typedef struct job {
	struct job *next;
	char addr[64];
	char type[32];
	uint8_t *body;
	size_t len;
	idn_duration timeout_ms;
	batch *b; // NULL: fire and forget
	int *rv;
	wire_doc **doc;
	wire_env *env;
} job;

struct net_pool {
	net_client *c;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	job *head;
	job *tail;
	bool closing;
	int nthreads;
	pthread_t *threads;
};

static void
run(net_pool *p, job *j)
{
	wire_doc *doc = NULL;
	wire_env env;
	int rv = net_call(p->c, j->addr, j->type, j->body, j->len,
	    j->timeout_ms, &doc, &env);
	if (j->b == NULL) {
		wire_doc_free(doc);
		return;
	}
	*j->rv = rv;
	if (j->doc != NULL) {
		*j->doc = doc;
		*j->env = env;
	} else {
		wire_doc_free(doc);
	}
	pthread_mutex_lock(&j->b->lock);
	if (--j->b->left == 0) {
		pthread_cond_broadcast(&j->b->cv);
	}
	pthread_mutex_unlock(&j->b->lock);
}

static void *
worker(void *arg)
{
	net_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->head == NULL && !p->closing) {
			pthread_cond_wait(&p->cv, &p->lock);
		}
		if (p->head == NULL) {
			break;
		}
		job *j = p->head;
		p->head = j->next;
		if (p->head == NULL) {
			p->tail = NULL;
		}
		pthread_mutex_unlock(&p->lock);
		// A waited-for job belongs to its caller, who may free it as
		// soon as run() reports: decide before.
		bool pushed = j->b == NULL;
		run(p, j);
		if (pushed) {
			free(j->body);
			free(j);
		}
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int
net_pool_open(net_client *c, int nthreads, net_pool **out)
{
	net_pool *p = core_alloc(sizeof(*p));
	if (p == NULL || (p->threads = core_alloc(sizeof(pthread_t) *
	                      (size_t) nthreads)) == NULL) {
		free(p);
		return IDN_ENOMEM;
	}
	p->c = c;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
			net_pool_close(p);
			return IDN_ESYS;
		}
		p->nthreads++;
	}
	*out = p;
	return IDN_OK;
}

void
net_pool_close(net_pool *p)
{
	if (p == NULL) {
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->closing = true;
	// Pending pushes are dropped; waited-for batches never reach here
	// because their callers are gone before the node closes the pool.
	for (job *j = p->head, *n; j != NULL; j = n) {
		n = j->next;
		if (j->b == NULL) {
			free(j->body);
			free(j);
		}
	}
	p->head = p->tail = NULL;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthreads; i++) {
		pthread_join(p->threads[i], NULL);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cv);
	free(p->threads);
	free(p);
}

static void
enqueue(net_pool *p, job *j)
{
	pthread_mutex_lock(&p->lock);
	if (p->tail != NULL) {
		p->tail->next = j;
	} else {
		p->head = j;
	}
	p->tail = j;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->lock);
}

static void
fill(job *j, const char *addr, const char *type, idn_duration timeout_ms)
{
	snprintf(j->addr, sizeof(j->addr), "%s", addr);
	snprintf(j->type, sizeof(j->type), "%s", type);
	j->timeout_ms = timeout_ms;
}

int
net_pool_call_all(net_pool *p, const char *const *addrs, size_t count,
    const char *type, const void *body, size_t len, idn_duration timeout_ms,
    int *rvs, wire_doc **docs, wire_env *envs)
{
	if (count == 0) {
		return IDN_OK;
	}
	job *jobs = core_alloc(sizeof(*jobs) * count);
	if (jobs == NULL) {
		return IDN_ENOMEM;
	}
	batch b = {.left = count};
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cv, NULL);
	for (size_t i = 0; i < count; i++) {
		fill(&jobs[i], addrs[i], type, timeout_ms);
		jobs[i].body = (uint8_t *) body; // borrowed: we wait below
		jobs[i].len = len;
		jobs[i].b = &b;
		jobs[i].rv = &rvs[i];
		jobs[i].doc = docs ? &docs[i] : NULL;
		jobs[i].env = envs ? &envs[i] : NULL;
		enqueue(p, &jobs[i]);
	}
	pthread_mutex_lock(&b.lock);
	while (b.left > 0) {
		pthread_cond_wait(&b.cv, &b.lock);
	}
	pthread_mutex_unlock(&b.lock);
	pthread_mutex_destroy(&b.lock);
	pthread_cond_destroy(&b.cv);
	free(jobs);
	return IDN_OK;
}

int
net_pool_post(net_pool *p, const char *addr, const char *type,
    const void *body, size_t len, idn_duration timeout_ms)
{
	job *j = core_alloc(sizeof(*j));
	if (j == NULL || (len > 0 && (j->body = malloc(len)) == NULL)) {
		free(j);
		return IDN_ENOMEM;
	}
	fill(j, addr, type, timeout_ms);
	if (len > 0) {
		memcpy(j->body, body, len);
	}
	j->len = len;
	enqueue(p, j);
	return IDN_OK;
}

int
net_pool_call_all_wr(net_pool *p, const char *const *addrs, size_t count,
    const char *type, wire_wr *body, idn_duration timeout_ms, int *rvs,
    wire_doc **docs, wire_env *envs)
{
	const uint8_t *data = NULL;
	size_t len = 0;
	int rv = body != NULL ? wire_wr_bytes(body, &data, &len) : IDN_OK;
	if (rv != IDN_OK) {
		// Every call fails the same way; callers read rvs and docs.
		for (size_t i = 0; i < count; i++) {
			rvs[i] = rv;
			if (docs != NULL) {
				docs[i] = NULL;
			}
		}
		return rv;
	}
	return net_pool_call_all(p, addrs, count, type, data, len, timeout_ms,
	    rvs, docs, envs);
}

int
net_pool_post_wr(net_pool *p, const char *addr, const char *type,
    wire_wr *body, idn_duration timeout_ms)
{
	const uint8_t *data = NULL;
	size_t len = 0;
	int rv = body != NULL ? wire_wr_bytes(body, &data, &len) : IDN_OK;
	return rv ? rv : net_pool_post(p, addr, type, data, len, timeout_ms);
}
