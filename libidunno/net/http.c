// SPDX-License-Identifier: MIT
// http.c: the HTTP server on nng's supplemental http: one tree handler
// at "/" for GET, the reply built by the caller's function.
//
// Closing: nng_http_server_stop waits for the handlers in flight only up
// to nng 1.6 (1.7 dropped the wait), and nng may call the handler after
// the server is stopped. So a gate of our own counts the calls inside the
// caller's function and turns calls away once closing, and the net_http
// lives until nng drops its last reference to the handler (its data
// destructor), not until close. (nng 1.5.2 sometimes keeps a reference
// when a connection closes as its request is dispatched: the handler,
// and this struct with it, then stays allocated; seen only when closing
// under load.)
#include <arpa/inet.h>
#include <pthread.h>
#include <stdbool.h>
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
	pthread_mutex_t lock;
	pthread_cond_t idle; // signalled when busy drops to 0
	int busy;            // calls inside fn
	bool closing;
};

// gone is the handler's data destructor: nng calls it once the handler
// is freed and no request holds it.
static void
gone(void *arg)
{
	net_http *s = arg;
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	free(s);
}

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
	    // nng cannot copy an empty body (no memory for 0 bytes).
	    (len > 0 && (rv = nng_http_res_copy_data(res, body, len)) != 0)) {
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
	pthread_mutex_lock(&s->lock);
	bool open = !s->closing;
	s->busy += open;
	pthread_mutex_unlock(&s->lock);
	int status = 503;
	if (open) {
		status = s->fn(s->arg, path, &body, &ctype);
		pthread_mutex_lock(&s->lock);
		if (--s->busy == 0) {
			pthread_cond_broadcast(&s->idle);
		}
		pthread_mutex_unlock(&s->lock);
	}
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
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	nng_url *u = NULL;
	nng_sockaddr sa;
	bool owned = false; // the handler (so gone()) owns s
	int rv = nng_url_parse(&u, hurl);
	if (rv == 0 && (rv = nng_http_server_hold(&s->srv, u)) == 0 &&
	    (rv = nng_http_handler_alloc(&s->h, "/", on_get)) == 0 &&
	    (rv = nng_http_handler_set_tree(s->h)) == 0 &&
	    (rv = nng_http_handler_set_data(s->h, s, gone)) == 0) {
		owned = true;
		if ((rv = nng_http_server_add_handler(s->srv, s->h)) == 0) {
			s->h = NULL; // the server owns it now
			rv = nng_http_server_start(s->srv);
		}
	}
	if (rv == 0) {
		rv = nng_http_server_get_addr(s->srv, &sa);
	}
	nng_url_free(u);
	if (rv != 0 || sa.s_family != NNG_AF_INET) {
		rv = rv == 0 ? IDN_ENET : net_err_from_nng(rv);
		nng_http_server *srv = s->srv;
		if (s->h != NULL) {
			nng_http_handler_free(s->h); // frees s if owned
		}
		if (!owned) {
			gone(s);
		}
		if (srv != NULL) {
			nng_http_server_release(srv);
		}
		return rv;
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
	if (s == NULL) {
		return;
	}
	pthread_mutex_lock(&s->lock);
	s->closing = true;
	while (s->busy > 0) {
		pthread_cond_wait(&s->idle, &s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	// From here fn is never called; s may be freed by gone() as soon as
	// the server lets go of the handler.
	nng_http_server *srv = s->srv;
	nng_http_server_stop(srv);
	nng_http_server_release(srv);
}
