// SPDX-License-Identifier: MIT
// http.c: the HTTP server on nng's supplemental http: one tree handler
// at "/" for GET, the reply built by the caller's function.
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "net/http.h"
#include "net/net.h"

struct net_http {
	nng_http_server *srv;
	nng_http_handler *h;
	net_http_fn fn;
	void *arg;
	char addr[64];
};

static void
reply(nng_aio *aio, uint16_t status, const char *ctype, const void *body,
    size_t len)
{
	nng_http_res *res;
	int rv = nng_http_res_alloc(&res);
	if (rv != 0) {
		nng_aio_finish(aio, rv);
		return;
	}
	if ((rv = nng_http_res_set_status(res, status)) != 0 ||
	    (rv = nng_http_res_set_header(res, "Content-Type", ctype)) != 0 ||
	    (rv = nng_http_res_set_header(res, "Cache-Control",
	         "no-store")) != 0 ||
	    (rv = nng_http_res_copy_data(res, body, len)) != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static void
on_get(nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	net_http *s = nng_http_handler_get_data(h);
	char path[256];
	snprintf(path, sizeof(path), "%s", nng_http_req_get_uri(req));
	path[strcspn(path, "?#")] = '\0';
	core_buf body = {0};
	const char *ctype = "text/plain; charset=utf-8";
	int status = s->fn(s->arg, path, &body, &ctype);
	reply(aio, (uint16_t) status, ctype,
	    body.data ? (const void *) body.data : "",
	    body.len);
	core_buf_free(&body);
}

int
net_http_open(const char *addr, net_http_fn fn, void *arg, net_http **out)
{
	char url[128];
	if (fn == NULL || out == NULL ||
	    net_addr_to_url(addr, url, sizeof(url)) != IDN_OK) {
		return IDN_EINVAL;
	}
	// "tcp://h:p" -> "http://h:p"
	char hurl[136];
	snprintf(hurl, sizeof(hurl), "http://%s", url + strlen("tcp://"));
	net_http *s = core_alloc(sizeof(*s));
	if (s == NULL) {
		return IDN_ENOMEM;
	}
	s->fn = fn;
	s->arg = arg;
	nng_url *u = NULL;
	nng_sockaddr sa;
	int rv = nng_url_parse(&u, hurl);
	if (rv == 0 && (rv = nng_http_server_hold(&s->srv, u)) == 0 &&
	    (rv = nng_http_handler_alloc(&s->h, "/", on_get)) == 0 &&
	    (rv = nng_http_handler_set_tree(s->h)) == 0 &&
	    (rv = nng_http_handler_set_data(s->h, s, NULL)) == 0 &&
	    (rv = nng_http_server_add_handler(s->srv, s->h)) == 0) {
		s->h = NULL; // the server owns it now
		rv = nng_http_server_start(s->srv);
	}
	if (rv == 0) {
		rv = nng_http_server_get_addr(s->srv, &sa);
	}
	nng_url_free(u);
	if (rv != 0 || sa.s_family != NNG_AF_INET) {
		if (s->h != NULL) {
			nng_http_handler_free(s->h);
		}
		if (s->srv != NULL) {
			nng_http_server_release(s->srv);
		}
		free(s);
		return rv == 0 ? IDN_ENET : net_err_from_nng(rv);
	}
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &sa.s_in.sa_addr, ip, sizeof(ip));
	snprintf(s->addr, sizeof(s->addr), "%s:%u", ip,
	    (unsigned) ntohs(sa.s_in.sa_port));
	*out = s;
	return IDN_OK;
}

const char *
net_http_addr(const net_http *s)
{
	return s->addr;
}

void
net_http_close(net_http *s)
{
	if (s != NULL) {
		nng_http_server_stop(s->srv);
		nng_http_server_release(s->srv);
		free(s);
	}
}
