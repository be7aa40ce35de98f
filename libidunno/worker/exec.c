// SPDX-License-Identifier: MIT
// exec.c: the executor, one thread that runs the leased tasks in order
// (an inference batch: its inputs, the model; a training rank through
// train.c), and the writers that put the batches' results into SDFS and
// queue their reports for the lease loop.
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/sdfs.h>

#include "worker/worker_int.h"

// Under the lock, after worker_adopt(): the queue index to run next,
// among the leases whose queries all arrived (one leased ahead waits for
// its arrival; *next gets the first arrival to come). The first inference
// lease whose model is loaded; else one whose model the loader is not on,
// loaded in place (the executor is idle anyway; a failed load makes the
// task report why); else SIZE_MAX: wait for arrivals, the loader or new
// leases. The loader is asked for the first model not loaded, arrived or
// not. Leases are independent, so running a later one first loses
// nothing.
static size_t
next_task(worker *w, uint64_t now, uint64_t *next)
{
	char lkey[sizeof(w->ld_key)] = "";
	size_t pick = SIZE_MAX, own = SIZE_MAX;
	for (size_t i = 0; i < w->nq && pick == SIZE_MAX; i++) {
		const record_lease *l = &w->queue[i];
		bool arrived = l->ready_ms <= now;
		if (!arrived) {
			*next = CORE_MIN(*next, l->ready_ms);
		}
		if (l->spec.kind != IDN_JOB_INFER) {
			if (arrived) {
				return i; // training keeps its order
			}
			continue;
		}
		char key[sizeof(w->models[0].key)];
		worker_model_key(&l->spec, key, sizeof(key));
		if (worker_cached_model(w, key) != NULL) {
			pick = arrived ? i : pick;
			continue;
		}
		if (w->ld_busy) {
			snprintf(lkey, sizeof(lkey), "%s", w->ld_key);
		} else if (w->ld_want.model[0] != '\0') {
			worker_model_key(&w->ld_want, lkey, sizeof(lkey));
		} else if (strcmp(w->ld_failed, key) != 0) {
			w->ld_want = l->spec;
			snprintf(lkey, sizeof(lkey), "%s", key);
			pthread_cond_broadcast(&w->cv_pf);
		}
		if (arrived && own == SIZE_MAX && strcmp(lkey, key) != 0) {
			own = i;
		}
	}
	return pick != SIZE_MAX ? pick : own;
}

// Runs one inference batch: queries [first, first + count) of the set;
// *result gets the lines for results/JOB/batch-NNNNNN (a writer puts
// them); d->ms the model's time, d->model_start_ms and model_end_ms its
// wall clock at the first batch's start and the last one's end; *load_ms
// the time a model load took (not the task's time).
static int
run_batch(worker *w, const record_lease *l, record_done *d, double *load_ms,
    core_buf *result)
{
	int rv = IDN_OK;
	uint64_t tl = idn_clock_ms();
	model_slot *ms_ = worker_get_model(w, &l->spec, &rv);
	*load_ms = (double) (idn_clock_ms() - tl);
	set_slot *set = ms_ ? worker_get_set(w, l->spec.queries, &rv) : NULL;
	if (set == NULL) {
		return rv;
	}
	const record_manifest *man = &set->man;
	size_t chw = (size_t) man->c * man->h * man->w;
	// spec.limit is the job's resolved query count; past the set's size
	// the set is replayed: query q is image q mod count.
	if (l->count == 0 || l->spec.batch == 0 || man->count == 0 ||
	    man->shard_size == 0 || (l->spec.limit > 0 &&
	        l->first + l->count > l->spec.limit) ||
	    man->c != ms_->info.channels || man->h != ms_->info.height ||
	    man->w != ms_->info.width) {
		return IDN_EINVAL;
	}
	uint64_t end = man->count;
	uint8_t *images = core_alloc(l->count * chw);
	uint8_t *labels = core_alloc(l->count);
	uint32_t *cls = core_alloc(l->count * sizeof(*cls));
	float *scores = core_alloc(l->count * sizeof(*scores));
	if (!images || !labels || !cls || !scores) {
		rv = IDN_ENOMEM;
	}
	// A task may hold a group of batches: the model still runs each
	// batch of exactly spec.batch queries (only the set's last is short).
	// Each batch's inputs are gathered just before it runs, and the
	// first use of a shard asks for the next one, so its fetch overlaps
	// the model.
	uint32_t shard = UINT32_MAX;
	d->ms = 0;
	for (uint32_t i = 0; rv == IDN_OK && i < l->count; i += l->spec.batch) {
		uint32_t n = l->count - i < l->spec.batch ? l->count - i :
		    l->spec.batch;
		for (uint32_t k = i; rv == IDN_OK && k < i + n; k++) {
			uint64_t q = (l->first + k) % man->count;
			uint32_t sk = (uint32_t) (q / man->shard_size);
			const idn_dataset_shard *s = worker_get_shard(w,
			    l->spec.queries, sk, &rv);
			if (s != NULL && (q < s->first ||
			        q - s->first >= s->count ||
			        s->channels != man->c)) {
				rv = IDN_ECORRUPT;
			}
			if (rv == IDN_OK) {
				memcpy(images + k * chw, s->images + (q - s->first) *
				    chw, chw);
				labels[k] = s->labels[q - s->first];
			}
			if (rv == IDN_OK && sk != shard) {
				shard = sk;
				uint64_t next = (uint64_t) (sk + 1) * man->shard_size;
				if (next < end || l->spec.limit > end) {
					worker_prefetch(w, l->spec.queries,
					    next < end ? sk + 1 : 0);
				}
			}
		}
		uint64_t t0 = idn_clock_ms();
		if (i == 0) {
			d->model_start_ms = idn_wall_ms();
		}
		if (rv == IDN_OK) {
			rv = idn_model_infer(ms_->m, images + i * chw, n, n * chw,
			    cls + i, scores + i);
		}
		d->ms += (double) (idn_clock_ms() - t0);
		d->model_end_ms = idn_wall_ms();
	}
	core_buf out = {0};
	for (uint32_t i = 0; rv == IDN_OK && i < l->count; i++) {
		char line[96];
		int n = snprintf(line, sizeof(line), "%llu,%u,%.4f,%u\n",
		    (unsigned long long) (l->first + i), cls[i],
		    (double) scores[i], labels[i]);
		rv = core_buf_append(&out, line, (size_t) n);
	}
	if (rv != IDN_OK) {
		core_buf_free(&out);
	} else {
		*result = out;
	}
	free(images);
	free(labels);
	free(cls);
	free(scores);
	return rv;
}

// Queues the completion of a task for the next lease call (lock held):
// d as the executor filled it, done now with rc.
static void
report(worker *w, const record_done *d, int rc)
{
	if (w->ndone < REPORTS_MAX) {
		record_done *r = &w->done[w->ndone++];
		*r = *d;
		r->end_ms = idn_wall_ms();
		r->rc = rc;
	}
	pthread_cond_broadcast(&w->cv_loop);
}

static write_slot *
free_slot(worker *w)
{
	for (size_t i = 0; i < WRITES_MAX; i++) {
		if (w->wr[i].state == SLOT_FREE) {
			return &w->wr[i];
		}
	}
	return NULL;
}

// A writer: puts the oldest queued result into SDFS, then reports the
// task done (the report goes with the next lease call).
void *
worker_writer_main(void *arg)
{
	worker *w = arg;
	pthread_setname_np(pthread_self(), "idn-write");
	core_lock(&w->lock);
	while (!w->stop) {
		write_slot *ws = NULL;
		for (size_t i = 0; i < WRITES_MAX; i++) {
			if (w->wr[i].state == SLOT_QUEUED &&
			    (ws == NULL || w->wr[i].seq < ws->seq)) {
				ws = &w->wr[i];
			}
		}
		if (ws == NULL) {
			worker_wait_ms(w, &w->cv_write, 1000);
			continue;
		}
		ws->state = SLOT_WRITING;
		ws->start = idn_clock_ms();
		record_lease l = ws->l;
		record_done d = ws->d;
		core_buf out = ws->out;
		ws->out = (core_buf){0};
		core_unlock_log(&w->lock, &w->logq);
		char name[RECORD_PATH_MAX];
		// Named by the task's first batch (its group's, when grouped).
		record_result_name(name, sizeof(name), l.spec.job,
		    (uint32_t) (l.first / l.spec.batch));
		int rv = idn_sdfs_put_buf(w->h.node, name, out.data, out.len,
		    NULL);
		core_buf_free(&out);
		if (rv != IDN_OK) {
			worker_log(w, IDN_LOG_WARN, "worker: %s/%u: writing the "
			    "result: %s", l.spec.job, l.task, idn_strerror(rv));
		}
		core_lock(&w->lock);
		report(w, &d, rv);
		ws->state = SLOT_FREE;
		pthread_cond_signal(&w->cv_exec); // it may wait for a slot
	}
	core_unlock_log(&w->lock, &w->logq);
	return NULL;
}

// The executor alone on its CPU: housekeeping (lease calls, SDFS, the
// other nodes on the machine) wakes many times a second, and each wakeup
// on the model's CPU preempts it (12% of a LeNet-5 worker's rate on 2
// cores, bench/sched (a)). The host keeps its other threads off the CPU.
static void
pin_model_cpu(worker *w)
{
	int cpu = w->h.model_cpu;
	if (cpu < 0) {
		return;
	}
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET((size_t) cpu, &set);
	int rv = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (rv != 0) {
		worker_log(w, IDN_LOG_WARN, "worker: the model cannot run on "
		    "CPU %d (%s): it runs on any", cpu, strerror(rv));
	} else {
		worker_log(w, IDN_LOG_INFO, "worker: the model runs on CPU %d",
		    cpu);
	}
}

void *
worker_exec_main(void *arg)
{
	worker *w = arg;
	pthread_setname_np(pthread_self(), "idn-exec");
	uint64_t last_end = 0;
	pin_model_cpu(w);
	core_lock(&w->lock);
	while (!w->stop) {
		worker_adopt(w);
		uint64_t now = idn_wall_ms(), next = UINT64_MAX;
		size_t k = next_task(w, now, &next);
		if (k == SIZE_MAX) {
			// Idle, or waiting for arrivals or a model: the next
			// task's time starts anew.
			last_end = 0;
			worker_wait_ms(w, &w->cv_exec, next - now < 1000 ?
			    (int) (next - now) : 1000);
			continue;
		}
		w->cur = w->queue[k];
		memmove(&w->queue[k], &w->queue[k + 1],
		    (w->nq - k - 1) * sizeof(w->queue[0]));
		w->nq--;
		w->running = true;
		w->abort_cur = false;
		w->cur_start = idn_clock_ms();
		record_lease l = w->cur;
		core_unlock_log(&w->lock, &w->logq);
		if (l.spec.kind == IDN_JOB_TRAIN) {
			worker_log(w, IDN_LOG_INFO, "worker: task started: "
			    "training %s model %s attempt %u rank %u of %u",
			    l.spec.job, l.spec.model, l.attempt, l.task,
			    l.world ? l.world : 1);
			worker_run_train(w, &l);
			last_end = 0;
			core_lock(&w->lock);
		} else {
			worker_log(w, IDN_LOG_INFO, "worker: task started: %s/%u "
			    "queries %llu..%llu attempt %u", l.spec.job, l.task,
			    (unsigned long long) l.first,
			    (unsigned long long) (l.first + l.count - 1),
			    l.attempt);
			double load = 0;
			uint64_t t0 = last_end ? last_end : idn_clock_ms();
			core_buf out = {0};
			record_done d = {.task = l.task, .attempt = l.attempt,
			    .lease_ms = l.got_ms, .start_ms = idn_wall_ms()};
			snprintf(d.job, sizeof(d.job), "%s", l.spec.job);
			int rv = run_batch(w, &l, &d, &load, &out);
			if (rv != IDN_OK) {
				worker_log(w, IDN_LOG_WARN, "worker: %s/%u failed: "
				    "%s", l.spec.job, l.task, idn_strerror(rv));
			}
			core_lock(&w->lock);
			write_slot *ws = NULL;
			while (rv == IDN_OK && !w->stop &&
			    (ws = free_slot(w)) == NULL) {
				// All writes busy: they set the pace.
				worker_wait_ms(w, &w->cv_exec, 100);
			}
			// The worker's time this task took, with the hand-over
			// from the previous one when it went straight on, and
			// any wait for a free write slot; without a model load.
			last_end = idn_clock_ms();
			double busy = (double) (last_end - t0) - load;
			w->task_ms = w->task_ms > 0 ? 0.8 * w->task_ms + 0.2 * busy :
			    busy;
			d.busy_ms = busy;
			if (ws != NULL) {
				ws->state = SLOT_QUEUED;
				ws->seq = ++w->wr_seq;
				ws->l = l;
				ws->out = out;
				ws->d = d;
				pthread_cond_signal(&w->cv_write);
			} else if (rv != IDN_OK) {
				report(w, &d, rv);
			} else {
				core_buf_free(&out); // stopping: not written, not done
			}
		}
		w->running = false;
		pthread_cond_signal(&w->cv_loop); // fewer held: lease more
	}
	core_unlock_log(&w->lock, &w->logq);
	return NULL;
}
