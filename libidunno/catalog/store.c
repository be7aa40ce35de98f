// SPDX-License-Identifier: MIT
// store.c: models in SDFS: store a model once it has been validated, load
// one back.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idunno/sdfs.h>

#include "catalog/catalog.h"
#include "core/core.h"

#define NAME_MAX_BYTES 200

int
catalog_path(char *buf, size_t cap, const char *name, const char *file)
{
	if (name == NULL || *name == '\0' || strlen(name) > NAME_MAX_BYTES ||
	    strchr(name, '/') != NULL) {
		return IDN_EINVAL;
	}
	snprintf(buf, cap, "models/%s/%s", name, file);
	return idn_sdfs_name_error(buf) ? IDN_EINVAL : IDN_OK;
}

void
catalog_set_err(char **errmsg, const char *fmt, const char *what)
{
	if (errmsg != NULL && *errmsg == NULL) {
		*errmsg = core_asprintf(fmt, what);
	}
}

int
idn_model_store(idn_client *c, const char *name, const char *desc,
    size_t desc_len, const void *model, size_t model_len, char **errmsg)
{
	char dpath[256], mpath[256];
	if (c == NULL || desc == NULL ||
	    catalog_path(dpath, sizeof(dpath), name, "desc") != IDN_OK ||
	    catalog_path(mpath, sizeof(mpath), name, "model.pt") != IDN_OK) {
		catalog_set_err(errmsg, "bad model name '%s' (want one segment)",
		    name ? name : "");
		return IDN_EINVAL;
	}
	// Load first: a model that does not load never reaches SDFS.
	idn_model *m;
	int rv = idn_model_load(desc, desc_len, model, model_len, errmsg, &m);
	if (rv != IDN_OK) {
		return rv;
	}
	idn_model_close(m);
	// The descriptor goes last: its presence means the model is whole.
	rv = idn_sdfs_put_buf(c, mpath, model ? model : "", model_len, NULL);
	if (rv == IDN_OK) {
		rv = idn_sdfs_put_buf(c, dpath, desc, desc_len, NULL);
	}
	if (rv != IDN_OK) {
		catalog_set_err(errmsg, "storing in SDFS failed: %s", idn_strerror(rv));
	}
	return rv;
}

int
catalog_fetch(idn_client *c, const char *name, const char *file,
    uint64_t *version, char **errmsg, idn_model **out)
{
	char dpath[256], mpath[256];
	bool trained = strcmp(file, "model.pt") != 0;
	if (c == NULL || out == NULL ||
	    catalog_path(dpath, sizeof(dpath), name, "desc") != IDN_OK ||
	    catalog_path(mpath, sizeof(mpath), name, file) != IDN_OK) {
		catalog_set_err(errmsg, "bad model name '%s'", name ? name : "");
		return IDN_EINVAL;
	}
	void *desc = NULL, *bytes = NULL;
	size_t dlen, blen;
	int rv = idn_sdfs_get_buf(c, dpath, 0, &desc, &dlen, NULL);
	if (rv != IDN_OK) {
		catalog_set_err(errmsg, "no model '%s' in SDFS", name);
	} else if ((rv = idn_sdfs_get_buf(c, mpath, 0, &bytes, &blen,
	    version)) != IDN_OK) {
		catalog_set_err(errmsg, trained ? "model '%s' has no trained weights" :
		    "model '%s' has no model bytes", name);
	} else {
		rv = idn_model_load(desc, dlen, bytes, blen, errmsg, out);
	}
	idn_free(desc);
	idn_free(bytes);
	return rv;
}

int
idn_model_fetch(idn_client *c, const char *name, bool trained,
    char **errmsg, idn_model **out)
{
	return catalog_fetch(c, name, trained ? "weights" : "model.pt", NULL,
	    errmsg, out);
}
