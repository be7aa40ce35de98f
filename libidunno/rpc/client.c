// SPDX-License-Identifier: MIT
// client.c: the public client handle: one node's address, the key, the
// timeout; calls through it, and the log grep and stats requests.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"

#define GREP_LINES_MAX 20000

struct idn_client {
	net_client *net;
	uint8_t key[IDN_KEY_BYTES];
	char addr[IDN_ADDR_MAX];
	idn_duration timeout_ms;
	idn_progress_fn progress;
	void *progress_arg;
};

void
idn_client_set_progress(idn_client *c, idn_progress_fn fn, void *arg)
{
	if (c != NULL) {
		c->progress = fn;
		c->progress_arg = arg;
	}
}

void
rpc_client_progress(idn_client *c, uint64_t done, uint64_t total)
{
	if (c->progress != NULL) {
		c->progress(c->progress_arg, done, total);
	}
}

int
idn_client_open(const char *addr, const uint8_t key[IDN_KEY_BYTES],
    idn_client **out)
{
	char url[128];
	if (addr == NULL || key == NULL || out == NULL ||
	    net_addr_to_url(addr, url, sizeof(url)) != IDN_OK) {
		return IDN_EINVAL;
	}
	idn_client *c = core_alloc(sizeof(*c));
	if (c == NULL) {
		return IDN_ENOMEM;
	}
	int rv = net_client_open(key, "client", NET_DEFAULT_MAX_MSG, &c->net);
	if (rv != IDN_OK) {
		free(c);
		return rv;
	}
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	memcpy(c->key, key, IDN_KEY_BYTES);
	c->timeout_ms = 5000;
	*out = c;
	return IDN_OK;
}

void
idn_client_close(idn_client *c)
{
	if (c != NULL) {
		net_client_close(c->net);
		free(c);
	}
}

void
idn_client_set_timeout(idn_client *c, idn_duration ms)
{
	if (c != NULL && ms > 0) {
		c->timeout_ms = ms;
	}
}

const char *
rpc_client_addr(const idn_client *c)
{
	return c->addr;
}

idn_duration
rpc_client_timeout(const idn_client *c)
{
	return c->timeout_ms;
}

int
rpc_client_call_at(idn_client *c, const char *addr, const char *type,
    wire_wr *body, wire_doc **doc, wire_env *env)
{
	return net_call_wr(c->net, addr, type, body, c->timeout_ms, doc, env);
}

int
rpc_client_call(idn_client *c, const char *type, wire_wr *body, wire_doc **doc,
    wire_env *env)
{
	return rpc_client_call_at(c, c->addr, type, body, doc, env);
}

const uint8_t *
rpc_client_key(const idn_client *c)
{
	return c->key;
}

int
idn_client_grep(idn_client *c, const char *addr, const char *pattern,
    bool regex, char ***lines, size_t *nlines, uint64_t *count)
{
	if (c == NULL || pattern == NULL || lines == NULL || nlines == NULL ||
	    count == NULL) {
		return IDN_EINVAL;
	}
	wire_wr *w;
	wire_doc *doc = NULL;
	wire_env env;
	int rv = wire_wr_new(&w);
	if (rv != IDN_OK) {
		return rv;
	}
	wire_map(w, 2);
	wire_kstr(w, "p", pattern);
	wire_kbool(w, "re", regex);
	rv = rpc_client_call_at(c, addr ? addr : c->addr, "log.grep", w, &doc,
	    &env);
	wire_wr_free(w);
	const wire_val *arr = doc ? wire_get(env.body, "lines") : NULL;
	size_t n = 0, bytes = 0;
	if (rv == IDN_OK && (wire_get_u64(env.body, "count", count) ||
	                        wire_as_arr(arr, &n) || n > GREP_LINES_MAX)) {
		rv = IDN_EPROTO;
	}
	// One block: the pointers, then the NUL-terminated lines.
	for (size_t i = 0; rv == IDN_OK && i < n; i++) {
		const char *p;
		size_t len;
		if (wire_as_str(wire_at(arr, i), &p, &len) != IDN_OK) {
			rv = IDN_EPROTO;
		}
		bytes += len + 1;
	}
	char **out = NULL;
	if (rv == IDN_OK &&
	    (out = core_alloc(sizeof(char *) * (n + 1) + bytes)) == NULL) {
		rv = IDN_ENOMEM;
	}
	char *dst = out ? (char *) (out + n + 1) : NULL;
	for (size_t i = 0; rv == IDN_OK && i < n; i++) {
		const char *p;
		size_t len;
		(void) wire_as_str(wire_at(arr, i), &p, &len);
		memcpy(dst, p, len);
		dst[len] = '\0';
		out[i] = dst;
		dst += len + 1;
	}
	wire_doc_free(doc);
	if (rv == IDN_OK) {
		*lines = out;
		*nlines = n;
	}
	return rv;
}

int
idn_client_node_stats(idn_client *c, const char *addr, idn_node_stats *out)
{
	if (c == NULL || out == NULL) {
		return IDN_EINVAL;
	}
	wire_doc *doc = NULL;
	wire_env env;
	int rv = rpc_client_call_at(c, addr ? addr : c->addr, "node.stats",
	    NULL, &doc, &env);
	idn_node_stats st = {0};
	if (rv == IDN_OK &&
	    (wire_get_str(env.body, "id", st.id, sizeof(st.id)) ||
	        wire_get_u64(env.body, "uptime_ms", &st.uptime_ms) ||
	        wire_get_u64(env.body, "msgs_in", &st.msgs_in) ||
	        wire_get_u64(env.body, "msgs_out", &st.msgs_out) ||
	        wire_get_u64(env.body, "bytes_in", &st.bytes_in) ||
	        wire_get_u64(env.body, "bytes_out", &st.bytes_out))) {
		rv = IDN_EPROTO;
	}
	wire_doc_free(doc);
	if (rv == IDN_OK) {
		*out = st;
	}
	return rv;
}
