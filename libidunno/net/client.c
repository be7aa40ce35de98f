// SPDX-License-Identifier: MIT
// client.c: calls to other endpoints: one req socket per peer, each
// request sealed and its reply checked against it.
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"

typedef struct peer {
	struct peer *next;
	char addr[64];
	char id[96]; // the node answering there, once a reply named it (lock)
	nng_socket sock;
} peer;

struct net_client {
	pthread_mutex_t lock;
	peer *peers;
	uint8_t key[WIRE_KEY_BYTES];
	char self[96];
	size_t max_msg;
	_Atomic int64_t skew_ms;
	net_counters ctr;
};

int
net_client_open(const uint8_t key[WIRE_KEY_BYTES], const char *self_id,
    size_t max_msg_bytes, net_client **out)
{
	net_client *c = core_alloc(sizeof(*c));
	if (c == NULL) {
		return IDN_ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	memcpy(c->key, key, WIRE_KEY_BYTES);
	snprintf(c->self, sizeof(c->self), "%s", self_id ? self_id : "");
	c->max_msg = max_msg_bytes;
	*out = c;
	return IDN_OK;
}

void
net_client_set_self(net_client *c, const char *self_id)
{
	snprintf(c->self, sizeof(c->self), "%s", self_id);
}

void
net_client_skew(net_client *c, int64_t ms)
{
	atomic_store(&c->skew_ms, ms);
}

void
net_client_close(net_client *c)
{
	if (c == NULL) {
		return;
	}
	for (peer *p = c->peers, *n; p != NULL; p = n) {
		n = p->next;
		net_close_bounded(p->sock);
		free(p);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static int
peer_socket(net_client *c, const char *addr, peer **out)
{
	char url[128];
	int rv = net_addr_to_url(addr, url, sizeof(url));
	if (rv != IDN_OK) {
		return rv;
	}
	pthread_mutex_lock(&c->lock);
	for (peer *p = c->peers; p != NULL; p = p->next) {
		if (strcmp(p->addr, addr) == 0) {
			*out = p;
			pthread_mutex_unlock(&c->lock);
			return IDN_OK;
		}
	}
	peer *p = core_alloc(sizeof(*p));
	if (p == NULL) {
		pthread_mutex_unlock(&c->lock);
		return IDN_ENOMEM;
	}
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	if ((rv = nng_req0_open(&p->sock)) != 0) {
		free(p);
		pthread_mutex_unlock(&c->lock);
		return net_err_from_nng(rv);
	}
	// Requests are never re-sent by nng: a handler runs at most once per
	// call, and callers decide about retries.
	nng_socket_set_ms(p->sock, NNG_OPT_REQ_RESENDTIME, 3600 * 1000);
	nng_socket_set_ms(p->sock, NNG_OPT_RECONNMINT, 20);
	nng_socket_set_ms(p->sock, NNG_OPT_RECONNMAXT, 500);
	nng_socket_set_size(p->sock, NNG_OPT_RECVMAXSZ, c->max_msg);
	// Non-blocking dial: an absent peer makes calls time out, and nng
	// keeps redialling in the background.
	nng_dial(p->sock, url, NULL, NNG_FLAG_NONBLOCK);
	p->next = c->peers;
	c->peers = p;
	*out = p;
	pthread_mutex_unlock(&c->lock);
	return IDN_OK;
}

// One request and its reply. *kind gets the reply's type when the
// endpoint refused the request before any handler ran (NET_TYPE_REDIRECT,
// NET_TYPE_STALE), else "".
static int
call_once(net_client *c, peer *p, const char *type, const void *body,
    size_t body_len, uint64_t deadline, wire_doc **doc, wire_env *reply,
    const char **kind)
{
	nng_ctx ctx;
	nng_aio *aio = NULL;
	nng_msg *m = NULL;
	core_buf env = {0}, frame = {0};
	wire_env h = {.ts_ms = idn_wall_ms() + (uint64_t) atomic_load(
	    &c->skew_ms), .nonce = wire_nonce()};
	snprintf(h.type, sizeof(h.type), "%s", type);
	snprintf(h.from, sizeof(h.from), "%s", c->self);
	pthread_mutex_lock(&c->lock);
	snprintf(h.to, sizeof(h.to), "%s", p->id[0] ? p->id : p->addr);
	pthread_mutex_unlock(&c->lock);
	*kind = "";
	int rv;
	if ((rv = wire_env_write(&h, body, body_len, &env)) ||
	    (rv = wire_seal(c->key, env.data, env.len, &frame))) {
		goto out;
	}
	if ((rv = nng_ctx_open(&ctx, p->sock)) != 0) {
		rv = net_err_from_nng(rv);
		goto out;
	}
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0 ||
	    (rv = nng_msg_alloc(&m, frame.len)) != 0) {
		rv = net_err_from_nng(rv);
		goto close;
	}
	memcpy(nng_msg_body(m), frame.data, frame.len);
	net_count(&c->ctr, false, frame.len);
	uint64_t now = idn_clock_ms();
	nng_aio_set_timeout(aio, now >= deadline ? 1 :
	    (nng_duration) (deadline - now));
	nng_aio_set_msg(aio, m);
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		nng_msg_free(m);
		rv = net_err_from_nng(rv);
		goto close;
	}
	now = idn_clock_ms();
	nng_aio_set_timeout(aio, now >= deadline ? 1 :
	    (nng_duration) (deadline - now));
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		rv = net_err_from_nng(rv);
		goto close;
	}
	m = nng_aio_get_msg(aio);
	net_count(&c->ctr, true, nng_msg_len(m));
	const uint8_t *payload;
	size_t plen;
	rv = wire_open(c->key, nng_msg_body(m), nng_msg_len(m), &payload,
	    &plen);
	if (rv == IDN_OK) {
		rv = wire_env_decode(payload, plen, doc, reply);
	}
	nng_msg_free(m);
	if (rv != IDN_OK) {
		goto close;
	}
	if (reply->nonce != h.nonce) {
		// Not the answer to this request (a recorded old one); only an
		// endpoint that could not read the request answers nonce 0.
		rv = reply->nonce == 0 && reply->rc == IDN_EPROTO ? IDN_EPROTO :
		    IDN_EAUTH;
		wire_doc_free(*doc);
		*doc = NULL;
		goto close;
	}
	if (strcmp(reply->type, NET_TYPE_REDIRECT) == 0 ||
	    strcmp(reply->type, NET_TYPE_STALE) == 0) {
		*kind = strcmp(reply->type, NET_TYPE_STALE) == 0 ?
		    NET_TYPE_STALE : NET_TYPE_REDIRECT;
	} else if (strcmp(reply->type, type) != 0) {
		rv = IDN_EAUTH;
		wire_doc_free(*doc);
		*doc = NULL;
		goto close;
	}
	if (reply->from[0] != '\0') {
		pthread_mutex_lock(&c->lock);
		snprintf(p->id, sizeof(p->id), "%s", reply->from);
		pthread_mutex_unlock(&c->lock);
	}
	rv = reply->rc >= 0 && reply->rc < IDN_ERR_COUNT ? (int) reply->rc :
	    IDN_EPROTO;
close:
	nng_aio_free(aio);
	nng_ctx_close(ctx);
out:
	core_buf_free(&env);
	core_buf_free(&frame);
	return rv;
}

int
net_call(net_client *c, const char *addr, const char *type, const void *body,
    size_t body_len, idn_duration timeout_ms, wire_doc **doc,
    wire_env *reply)
{
	peer *p = NULL;
	*doc = NULL;
	int rv = peer_socket(c, addr, &p);
	uint64_t deadline = idn_clock_ms() + (uint64_t) timeout_ms;
	// A refusal before any handler ran is asked again once: with the
	// id the endpoint named (it restarted), or a fresh stamp (the first
	// was taken before the endpoint started).
	for (int attempt = 0; rv == IDN_OK && attempt < 2; attempt++) {
		const char *kind;
		rv = call_once(c, p, type, body, body_len, deadline, doc, reply,
		    &kind);
		if (kind[0] == '\0' || attempt == 1) {
			break;
		}
		wire_doc_free(*doc);
		*doc = NULL;
		rv = IDN_OK;
	}
	return rv;
}

int
net_call_wr(net_client *c, const char *addr, const char *type, wire_wr *body,
    idn_duration timeout_ms, wire_doc **doc, wire_env *reply)
{
	const uint8_t *p = NULL;
	size_t n = 0;
	if (body != NULL) {
		int rv = wire_wr_bytes(body, &p, &n);
		if (rv != IDN_OK) {
			*doc = NULL;
			return rv;
		}
	}
	return net_call(c, addr, type, p, n, timeout_ms, doc, reply);
}

void
net_client_counters(const net_client *c, net_counters *sum)
{
	if (c != NULL) {
		net_counters_add(sum, &c->ctr);
	}
}
