// SPDX-License-Identifier: MIT
// desc.c: the model descriptor, a strict "key = value" text format.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "model/model.h"

enum {
	KEY_NAME,
	KEY_BACKEND,
	KEY_INPUT,
	KEY_CLASSES,
	KEY_CLASS_NAMES,
	KEY_MEAN,
	KEY_STD,
	KEY_SERVICE_MS,
	KEY_SERVICE_PER_QUERY_US,
	KEY_LOAD_MS,
	KEY_COUNT,
};

static const char *const keys[KEY_COUNT] = {
	"name", "backend", "input", "classes", "class_names", "mean", "std",
	"service_ms", "service_per_query_us", "load_ms",
};

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

// trim returns s without leading and trailing blanks, as a new string.
static char *
trim(const char *s, size_t n)
{
	while (n > 0 && is_space(*s)) {
		s++;
		n--;
	}
	while (n > 0 && is_space(s[n - 1])) {
		n--;
	}
	return core_strndup(s, n);
}

static int
parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	if (*s < '0' || *s > '9') {
		return IDN_EINVAL;
	}
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi) {
		return IDN_EINVAL;
	}
	*out = (uint32_t) v;
	return IDN_OK;
}

// parse_floats reads 1..max comma-separated finite floats.
static int
parse_floats(const char *s, float *out, uint32_t max, uint32_t *count)
{
	uint32_t n = 0;
	for (;;) {
		while (is_space(*s)) {
			s++;
		}
		if (n == max || *s == '\0') {
			return IDN_EINVAL;
		}
		errno = 0;
		char *end;
		float v = strtof(s, &end);
		if (end == s || errno != 0 || !isfinite(v)) {
			return IDN_EINVAL;
		}
		out[n++] = v;
		s = end;
		while (is_space(*s)) {
			s++;
		}
		if (*s == '\0') {
			break;
		}
		if (*s++ != ',') {
			return IDN_EINVAL;
		}
	}
	*count = n;
	return IDN_OK;
}

static int
parse_input(const char *s, model_desc *d)
{
	uint32_t v[3];
	for (int i = 0; i < 3; i++) {
		char *end;
		if (*s < '0' || *s > '9') {
			return IDN_EINVAL;
		}
		errno = 0;
		unsigned long x = strtoul(s, &end, 10);
		if (errno != 0 || x < 1 || x > MODEL_MAX_DIM) {
			return IDN_EINVAL;
		}
		v[i] = (uint32_t) x;
		s = end;
		if (i < 2 && *s++ != 'x') {
			return IDN_EINVAL;
		}
	}
	if (*s != '\0' || v[0] > IDN_MODEL_MAX_CHANNELS ||
	    (uint64_t) v[0] * v[1] * v[2] > MODEL_MAX_INPUT_BYTES) {
		return IDN_EINVAL;
	}
	d->channels = v[0];
	d->height = v[1];
	d->width = v[2];
	return IDN_OK;
}

// parse_names splits a comma-separated list of non-empty trimmed names.
static int
parse_names(const char *s, char ***out, uint32_t *count)
{
	uint32_t n = 1;
	for (const char *p = s; *p; p++) {
		n += *p == ',';
	}
	if (n > MODEL_MAX_CLASSES) {
		return IDN_EINVAL;
	}
	char **names = core_alloc(n * sizeof(char *));
	if (names == NULL) {
		return IDN_ENOMEM;
	}
	int rv = IDN_OK;
	for (uint32_t i = 0; i < n; i++) {
		const char *e = strchr(s, ',');
		size_t len = e ? (size_t) (e - s) : strlen(s);
		if ((names[i] = trim(s, len)) == NULL) {
			rv = IDN_ENOMEM;
			break;
		}
		if (names[i][0] == '\0' || strlen(names[i]) > MODEL_MAX_NAME) {
			rv = IDN_EINVAL;
			break;
		}
		s = e ? e + 1 : s + len;
	}
	if (rv != IDN_OK) {
		for (uint32_t i = 0; i < n; i++) {
			free(names[i]);
		}
		free(names);
		return rv;
	}
	*out = names;
	*count = n;
	return IDN_OK;
}

static bool
valid_backend(const char *s)
{
	return strcmp(s, "torch") == 0 || strcmp(s, "sim") == 0;
}

// set_key applies one key's value; *why explains an IDN_EINVAL.
static int
set_key(model_desc *d, int key, const char *v, char ***names,
    uint32_t *nnames, float *mean, uint32_t *nmean, float *std,
    uint32_t *nstd, const char **why)
{
	int rv;
	switch (key) {
	case KEY_NAME:
		*why = "name must be 1 to 255 bytes";
		if (v[0] == '\0' || strlen(v) > MODEL_MAX_NAME) {
			return IDN_EINVAL;
		}
		free(d->name);
		return (d->name = core_strdup(v)) ? IDN_OK : IDN_ENOMEM;
	case KEY_BACKEND:
		*why = "backend must be torch or sim";
		if (!valid_backend(v)) {
			return IDN_EINVAL;
		}
		return (d->backend = core_strdup(v)) ? IDN_OK : IDN_ENOMEM;
	case KEY_INPUT:
		*why = "input must be CxHxW, C in 1..4, H and W in 1..4096";
		return parse_input(v, d);
	case KEY_CLASSES:
		*why = "classes must be an integer in 1..100000";
		return parse_u32(v, 1, MODEL_MAX_CLASSES, &d->classes);
	case KEY_CLASS_NAMES:
		*why = "class_names must be non-empty, comma-separated names";
		rv = parse_names(v, names, nnames);
		return rv;
	case KEY_MEAN:
		*why = "mean must be 1 or C comma-separated numbers";
		return parse_floats(v, mean, IDN_MODEL_MAX_CHANNELS, nmean);
	case KEY_STD:
		*why = "std must be 1 or C comma-separated numbers";
		return parse_floats(v, std, IDN_MODEL_MAX_CHANNELS, nstd);
	case KEY_SERVICE_MS:
		*why = "service_ms must be an integer in 0..600000";
		return parse_u32(v, 0, MODEL_MAX_SERVICE_MS, &d->service_ms);
	case KEY_SERVICE_PER_QUERY_US:
		*why = "service_per_query_us must be an integer in 0..10000000";
		return parse_u32(v, 0, 10000000, &d->service_per_query_us);
	case KEY_LOAD_MS:
		*why = "load_ms must be an integer in 0..600000";
		return parse_u32(v, 0, MODEL_MAX_SERVICE_MS, &d->load_ms);
	}
	return IDN_EINVAL;
}

// check_whole validates what needs several keys together.
static int
check_whole(model_desc *d, const bool *seen, char **names, uint32_t nnames,
    const float *mean, uint32_t nmean, const float *std, uint32_t nstd,
    char **err)
{
	static const int required[] = {KEY_BACKEND, KEY_INPUT, KEY_CLASSES};
	for (size_t i = 0; i < CORE_ARRAY_LEN(required); i++) {
		if (!seen[required[i]]) {
			*err = core_asprintf("missing key %s",
			    keys[required[i]]);
			return IDN_EINVAL;
		}
	}
	bool sim = strcmp(d->backend, "sim") == 0;
	if (!sim && (seen[KEY_SERVICE_MS] || seen[KEY_SERVICE_PER_QUERY_US] ||
	    seen[KEY_LOAD_MS])) {
		*err = core_strdup("service_ms, service_per_query_us and load_ms "
		    "are for backend = sim only");
		return IDN_EINVAL;
	}
	if (names != NULL && nnames != d->classes) {
		*err = core_asprintf("class_names has %u names, classes = %u",
		    nnames, d->classes);
		return IDN_EINVAL;
	}
	if ((nmean != 0 && nmean != 1 && nmean != d->channels) ||
	    (nstd != 0 && nstd != 1 && nstd != d->channels)) {
		*err = core_asprintf("mean and std need 1 or %u values",
		    d->channels);
		return IDN_EINVAL;
	}
	for (uint32_t c = 0; c < d->channels; c++) {
		d->mean[c] = nmean == 0 ? 0.0f : mean[nmean == 1 ? 0 : c];
		d->std[c] = nstd == 0 ? 1.0f : std[nstd == 1 ? 0 : c];
		if (!(d->std[c] > 0.0f)) {
			*err = core_strdup("std must be > 0");
			return IDN_EINVAL;
		}
	}
	return IDN_OK;
}

static int
default_names(model_desc *d)
{
	d->class_names = core_alloc(d->classes * sizeof(char *));
	if (d->class_names == NULL) {
		return IDN_ENOMEM;
	}
	for (uint32_t i = 0; i < d->classes; i++) {
		if ((d->class_names[i] = core_asprintf("%u", i)) == NULL) {
			return IDN_ENOMEM;
		}
	}
	return IDN_OK;
}

static void
free_names(char **names, uint32_t n)
{
	if (names != NULL) {
		for (uint32_t i = 0; i < n; i++) {
			free(names[i]);
		}
		free(names);
	}
}

int
model_desc_parse(const char *text, size_t len, model_desc *d, char **err)
{
	memset(d, 0, sizeof(*d));
	*err = NULL;
	if (text == NULL || len > MODEL_DESC_MAX_BYTES) {
		*err = core_strdup("descriptor missing or larger than 64 KiB");
		return IDN_EINVAL;
	}
	if (memchr(text, '\0', len) != NULL) {
		*err = core_strdup("descriptor contains a NUL byte");
		return IDN_EINVAL;
	}
	bool seen[KEY_COUNT] = {false};
	char **names = NULL;
	uint32_t nnames = 0, nmean = 0, nstd = 0;
	float mean[IDN_MODEL_MAX_CHANNELS], std[IDN_MODEL_MAX_CHANNELS];
	int rv = IDN_OK;
	unsigned line = 0;
	const char *p = text, *end = text + len;
	while (rv == IDN_OK && p < end) {
		line++;
		const char *nl = memchr(p, '\n', (size_t) (end - p));
		const char *eol = nl ? nl : end;
		char *l = trim(p, (size_t) (eol - p));
		p = nl ? nl + 1 : end;
		if (l == NULL) {
			rv = IDN_ENOMEM;
			break;
		}
		if (l[0] == '\0' || l[0] == '#') {
			free(l);
			continue;
		}
		char *eq = strchr(l, '=');
		char *k = eq ? trim(l, (size_t) (eq - l)) : NULL;
		char *v = eq ? trim(eq + 1, strlen(eq + 1)) : NULL;
		int key = KEY_COUNT;
		for (int i = 0; k != NULL && i < KEY_COUNT; i++) {
			if (strcmp(k, keys[i]) == 0) {
				key = i;
			}
		}
		const char *why = NULL;
		if (eq == NULL) {
			*err = core_asprintf("line %u: expected key = value",
			    line);
			rv = IDN_EINVAL;
		} else if (k == NULL || v == NULL) {
			rv = IDN_ENOMEM;
		} else if (key == KEY_COUNT) {
			*err = core_asprintf("line %u: unknown key '%s'", line,
			    k);
			rv = IDN_EINVAL;
		} else if (seen[key]) {
			*err = core_asprintf("line %u: duplicate key %s", line,
			    k);
			rv = IDN_EINVAL;
		} else {
			seen[key] = true;
			rv = set_key(d, key, v, &names, &nnames, mean, &nmean,
			    std, &nstd, &why);
			if (rv == IDN_EINVAL) {
				*err = core_asprintf("line %u: %s (got '%s')",
				    line, why, v);
			}
		}
		free(k);
		free(v);
		free(l);
	}
	if (rv == IDN_OK) {
		rv = check_whole(d, seen, names, nnames, mean, nmean, std,
		    nstd, err);
	}
	if (rv == IDN_OK && d->name == NULL) {
		rv = (d->name = core_strdup("")) ? IDN_OK : IDN_ENOMEM;
	}
	if (rv == IDN_OK && names != NULL) {
		d->class_names = names;
		names = NULL;
	} else if (rv == IDN_OK) {
		rv = default_names(d);
	}
	free_names(names, nnames);
	if (rv != IDN_OK) {
		if (rv == IDN_ENOMEM) {
			free(*err);
			*err = NULL;
		}
		model_desc_free(d);
	}
	return rv;
}

void
model_desc_free(model_desc *d)
{
	if (d == NULL) {
		return;
	}
	free_names(d->class_names, d->classes);
	free(d->name);
	free(d->backend);
	memset(d, 0, sizeof(*d));
}
