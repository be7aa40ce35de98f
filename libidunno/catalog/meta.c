// SPDX-License-Identifier: MIT
// meta.c: a training run's checkpoint meta (models/M/checkpoint.meta):
// the settings that shape its weights, where the run is and which
// checkpoint version holds its state (docs/MODELS.md).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "core/core.h"

char *
catalog_meta_settings(const idn_model_train_opts *o, const char *data,
    size_t limit, uint64_t model_version)
{
	// The ranks' count is not part of it: a run goes on with fewer or
	// more ranks on the same global batch. "state 2": the checkpoint is
	// a training state (weights and optimiser), not weights alone.
	return core_asprintf("epochs %u\nbatch %u\noptimizer %d\nlr %.17g\n"
	    "momentum %.17g\nweight_decay %.17g\nschedule %d\nlr_step %u\n"
	    "lr_gamma %.17g\nseed %llu\ndata %s\nlimit %zu\n"
	    "model_version %llu\nstate 2\n", o->epochs, o->batch_size,
	    o->optimizer, o->lr, o->momentum, o->weight_decay, o->schedule,
	    o->lr_step, o->lr_gamma, (unsigned long long) o->seed, data, limit,
	    (unsigned long long) model_version);
}

char *
catalog_meta_format(const catalog_meta *m)
{
	char step[32] = "";
	if (m->step > 0) {
		snprintf(step, sizeof(step), "step %llu\n",
		    (unsigned long long) m->step);
	}
	return core_asprintf("epoch %u\n%s%scheckpoint %llu\nmetrics\n%s",
	    m->epoch, step, m->settings, (unsigned long long) m->checkpoint,
	    m->metrics ? m->metrics : "");
}

void
catalog_meta_clear(catalog_meta *m)
{
	free(m->settings);
	free(m->metrics);
	memset(m, 0, sizeof(*m));
}

int
catalog_meta_parse(const char *text, catalog_meta *m)
{
	memset(m, 0, sizeof(*m));
	char *end;
	if (text == NULL || strncmp(text, "epoch ", 6) != 0) {
		return IDN_ECORRUPT;
	}
	unsigned long e = strtoul(text + 6, &end, 10);
	const char *settings = end + 1;
	unsigned long long step = 0;
	if (*end == '\n' && strncmp(settings, "step ", 5) == 0) {
		step = strtoull(settings + 5, &end, 10);
		settings = end + 1;
		if (*end != '\n' || step == 0) {
			return IDN_ECORRUPT;
		}
	}
	const char *ck = strstr(text, "\ncheckpoint ");
	if (*end != '\n' || (e == 0 && step == 0) || e > UINT32_MAX ||
	    strncmp(settings, "epochs ", 7) != 0 || ck == NULL) {
		return IDN_ECORRUPT;
	}
	unsigned long long v = strtoull(ck + 12, &end, 10);
	if (strncmp(end, "\nmetrics\n", 9) != 0 || v == 0) {
		return IDN_ECORRUPT;
	}
	m->epoch = (uint32_t) e;
	m->step = step;
	m->checkpoint = v;
	m->settings = core_strndup(settings, (size_t) (ck + 1 - settings));
	m->metrics = core_strdup(end + 9);
	if (m->settings == NULL || m->metrics == NULL) {
		catalog_meta_clear(m);
		return IDN_ENOMEM;
	}
	return IDN_OK;
}
