// SPDX-License-Identifier: MIT
// pubsub.c: a publisher of events on its own address, and a subscriber
// to every message of one publisher.
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdlib.h>

#include "net/net_int.h"

struct net_pub {
	nng_socket sock;
	char addr[64];
};

int
net_pub_open(const char *addr, net_pub **out)
{
	net_pub *p = core_alloc(sizeof(*p));
	if (p == NULL) {
		return IDN_ENOMEM;
	}
	int rv = nng_pub0_open(&p->sock);
	if (rv != 0) {
		free(p);
		return net_err_from_nng(rv);
	}
	rv = net_listen_on(p->sock, addr, p->addr, sizeof(p->addr));
	if (rv != 0) {
		nng_close(p->sock);
		free(p);
		return rv;
	}
	*out = p;
	return IDN_OK;
}

const char *
net_pub_addr(const net_pub *p)
{
	return p->addr;
}

int
net_pub_send(net_pub *p, const void *data, size_t len)
{
	return net_err_from_nng(nng_send(p->sock, (void *) data, len, 0));
}

void
net_pub_close(net_pub *p)
{
	if (p != NULL) {
		net_close_bounded(p->sock);
		free(p);
	}
}

struct net_sub {
	nng_socket sock;
};

int
net_sub_open(const char *addr, net_sub **out)
{
	char url[128];
	int rv = net_addr_to_url(addr, url, sizeof(url));
	if (rv != IDN_OK) {
		return rv;
	}
	net_sub *s = core_alloc(sizeof(*s));
	if (s == NULL) {
		return IDN_ENOMEM;
	}
	if ((rv = nng_sub0_open(&s->sock)) != 0 ||
	    (rv = nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0 ||
	    (rv = nng_dial(s->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		nng_close(s->sock);
		free(s);
		return net_err_from_nng(rv);
	}
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, NET_DEFAULT_MAX_MSG);
	*out = s;
	return IDN_OK;
}

int
net_sub_recv(net_sub *s, idn_duration timeout_ms, core_buf *out)
{
	nng_msg *m;
	nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, timeout_ms);
	int rv = nng_recvmsg(s->sock, &m, 0);
	if (rv != 0) {
		return net_err_from_nng(rv);
	}
	rv = core_buf_append(out, nng_msg_body(m), nng_msg_len(m));
	nng_msg_free(m);
	return rv;
}

void
net_sub_close(net_sub *s)
{
	if (s != NULL) {
		net_close_bounded(s->sock);
		free(s);
	}
}
