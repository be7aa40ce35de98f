// SPDX-License-Identifier: MIT
// net.c: what the nng sockets share: nng's errors as ours, addresses,
// listening, a close bounded in time, traffic counters.
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"

int
net_err_from_nng(int e)
{
	switch (e) {
	case 0:
		return IDN_OK;
	case NNG_ENOMEM:
		return IDN_ENOMEM;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
		return IDN_EINVAL;
	case NNG_ETIMEDOUT:
		return IDN_ETIMEDOUT;
	case NNG_ECLOSED:
	case NNG_ECANCELED:
		return IDN_ECLOSED;
	case NNG_EMSGSIZE:
		return IDN_ETOOBIG;
	case NNG_EPROTO:
		return IDN_EPROTO;
	default:
		return IDN_ENET;
	}
}

int
net_addr_to_url(const char *addr, char *url, size_t cap)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	if (colon == NULL || colon == addr || colon[1] == '\0') {
		return IDN_EINVAL;
	}
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 0 || port > 65535) {
		return IDN_EINVAL;
	}
	size_t hl = (size_t) (colon - addr);
	char host[64];
	if (hl >= sizeof(host)) {
		return IDN_EINVAL;
	}
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (strcmp(host, "localhost") != 0) {
		int parts = 0, val = -1;
		for (const char *p = host;; p++) {
			if (*p >= '0' && *p <= '9') {
				val = (val < 0 ? 0 : val * 10) + (*p - '0');
				if (val > 255) {
					return IDN_EINVAL;
				}
			} else if ((*p == '.' || *p == '\0') && val >= 0) {
				parts++;
				val = -1;
				if (*p == '\0') {
					break;
				}
			} else {
				return IDN_EINVAL;
			}
		}
		if (parts != 4) {
			return IDN_EINVAL;
		}
	}
	if ((size_t) snprintf(url, cap, "tcp://%s:%ld", host, port) >= cap) {
		return IDN_EINVAL;
	}
	return IDN_OK;
}

static int
listener_addr(nng_listener l, char *out, size_t cap)
{
	nng_sockaddr sa;
	int rv = nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa);
	if (rv != 0 || sa.s_family != NNG_AF_INET) {
		return IDN_ENET;
	}
	const uint8_t *a = (const uint8_t *) &sa.s_in.sa_addr;
	const uint8_t *p = (const uint8_t *) &sa.s_in.sa_port;
	snprintf(out, cap, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3],
	    (unsigned) (p[0] << 8 | p[1]));
	return IDN_OK;
}

int
net_listen_on(nng_socket s, const char *addr, char *bound, size_t cap)
{
	char url[128];
	nng_listener l;
	int rv = net_addr_to_url(addr, url, sizeof(url));
	if (rv != IDN_OK) {
		return rv;
	}
	if ((rv = nng_listen(s, url, &l, 0)) != 0) {
		return rv == NNG_EADDRINVAL ? IDN_EINVAL : IDN_ENET;
	}
	return listener_addr(l, bound, cap);
}

typedef struct {
	nng_socket sock;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int refs; // the closing thread and the waiter
	bool done;
} closer;

static void
closer_unref(closer *c)
{
	pthread_mutex_lock(&c->lock);
	bool last = --c->refs == 0;
	pthread_mutex_unlock(&c->lock);
	if (last) {
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->cv);
		free(c);
	}
}

static void *
closer_run(void *arg)
{
	closer *c = arg;
	nng_close(c->sock);
	pthread_mutex_lock(&c->lock);
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->lock);
	closer_unref(c);
	return NULL;
}

bool
net_close_bounded(nng_socket sock)
{
	closer *c = core_alloc(sizeof(*c));
	pthread_t t;
	if (c == NULL) {
		nng_close(sock);
		return true;
	}
	c->sock = sock;
	c->refs = 2;
	pthread_mutex_init(&c->lock, NULL);
	core_cond_init(&c->cv);
	if (pthread_create(&t, NULL, closer_run, c) != 0) {
		c->refs = 1;
		closer_unref(c);
		nng_close(sock);
		return true;
	}
	pthread_detach(t);
	uint64_t end = idn_clock_ms() + NET_CLOSE_WAIT_MS;
	pthread_mutex_lock(&c->lock);
	while (!c->done &&
	    core_cond_wait_until(&c->cv, &c->lock, end) == IDN_OK) {
	}
	bool done = c->done;
	pthread_mutex_unlock(&c->lock);
	closer_unref(c);
	return done;
}

void
net_count(net_counters *c, bool in, size_t bytes)
{
	atomic_fetch_add(in ? &c->msgs_in : &c->msgs_out, 1);
	atomic_fetch_add(in ? &c->bytes_in : &c->bytes_out, bytes);
}

void
net_counters_add(net_counters *sum, const net_counters *c)
{
	sum->msgs_in += atomic_load(&c->msgs_in);
	sum->msgs_out += atomic_load(&c->msgs_out);
	sum->bytes_in += atomic_load(&c->bytes_in);
	sum->bytes_out += atomic_load(&c->bytes_out);
	sum->rejected += atomic_load(&c->rejected);
}
