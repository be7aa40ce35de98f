// SPDX-License-Identifier: MIT
// http_test.c: the HTTP server's routes and its close under load: once
// net_http_close returns, the handler is not running and never runs
// again, so the caller may free what it gave the handler.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"
#include "net/http.h"

#define MAGIC 0x1d07707eu

typedef struct served {
	atomic_uint magic;    // MAGIC while the owner lives, 0 once "freed"
	atomic_int inside;    // handler calls running now
	atomic_int calls;
	atomic_int late;      // calls that began or ended after close
	atomic_bool closed;
	uint32_t work_ms;
} served;

static int
handle(void *arg, const char *path, core_buf *body, const char **ctype)
{
	served *s = arg;
	atomic_fetch_add(&s->inside, 1);
	if (atomic_load(&s->closed) || atomic_load(&s->magic) != MAGIC) {
		atomic_fetch_add(&s->late, 1);
	}
	atomic_fetch_add(&s->calls, 1);
	if (strcmp(path, "/missing") == 0) {
		atomic_fetch_sub(&s->inside, 1);
		return 404;
	}
	if (s->work_ms > 0) {
		core_sleep_ms(s->work_ms); // the work a real page takes
	}
	*ctype = "text/plain";
	char text[300];
	int n = snprintf(text, sizeof(text), "hello %s", path);
	core_buf_append(body, text, (size_t) n);
	if (atomic_load(&s->closed) || atomic_load(&s->magic) != MAGIC) {
		atomic_fetch_add(&s->late, 1);
	}
	atomic_fetch_sub(&s->inside, 1);
	return 200;
}

// get sends one GET for path to addr and reads the whole answer into buf
// (NUL-terminated); -1 if the connection failed.
static int
get(const char *addr, const char *path, char *buf, size_t cap)
{
	char host[64];
	snprintf(host, sizeof(host), "%s", addr);
	char *colon = strrchr(host, ':');
	if (colon == NULL) {
		return -1;
	}
	*colon = '\0';
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t) atoi(colon + 1))};
	inet_pton(AF_INET, host, &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 5};
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
	        sizeof(tv)) != 0 ||
	    connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
		if (fd >= 0) {
			close(fd);
		}
		return -1;
	}
	char req[256];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n"
	    "Connection: close\r\n\r\n", path, addr);
	size_t got = 0;
	if (write(fd, req, (size_t) n) == n) {
		ssize_t r;
		while (got + 1 < cap &&
		    (r = read(fd, buf + got, cap - 1 - got)) > 0) {
			got += (size_t) r;
		}
	}
	buf[got] = '\0';
	close(fd);
	return 0;
}

static void
test_routes(void **st)
{
	(void) st;
	served s = {.magic = MAGIC};
	net_http *h;
	IDN_FAIL(net_http_open("nowhere", handle, &s, &h), IDN_EINVAL);
	IDN_FAIL(net_http_open("127.0.0.1:0", NULL, &s, &h), IDN_EINVAL);
	IDN_PASS(net_http_open("127.0.0.1:0", handle, &s, &h));
	char buf[4096];
	assert_int_equal(get(net_http_addr(h), "/a/b?x=1", buf, sizeof(buf)),
	    0);
	assert_non_null(strstr(buf, "HTTP/1.1 200"));
	assert_non_null(strstr(buf, "hello /a/b"));
	assert_int_equal(get(net_http_addr(h), "/missing", buf, sizeof(buf)),
	    0);
	if (strstr(buf, "HTTP/1.1 404") == NULL) {
		fail_msg("got: %s", buf);
	}
	net_http_close(h);
	net_http_close(NULL);
}

typedef struct client {
	pthread_t t;
	char addr[64];
	atomic_bool *stop;
	int answered;
} client;

static void *
client_run(void *arg)
{
	client *c = arg;
	char buf[1024];
	// Bounded: a few hundred requests at most, or until told to stop.
	for (int i = 0; i < 400 && !atomic_load(c->stop); i++) {
		if (get(c->addr, "/load", buf, sizeof(buf)) != 0 ||
		    strstr(buf, " 200 ") == NULL) {
			continue;
		}
		c->answered++;
	}
	return NULL;
}

// Closes the server while clients keep requests in flight, then poisons
// the handler's argument at once, as a node freeing its dashboard does.
static void
test_close_under_load(void **st)
{
	(void) st;
	enum { ROUNDS = 5, CLIENTS = 4 };
	int calls = 0;
	for (int round = 0; round < ROUNDS; round++) {
		served *s = calloc(1, sizeof(*s));
		assert_non_null(s);
		atomic_store(&s->magic, MAGIC);
		s->work_ms = 3;
		net_http *h;
		IDN_PASS(net_http_open("127.0.0.1:0", handle, s, &h));
		atomic_bool stop = false;
		client cl[CLIENTS];
		for (int i = 0; i < CLIENTS; i++) {
			cl[i] = (client){.stop = &stop};
			snprintf(cl[i].addr, sizeof(cl[i].addr), "%s",
			    net_http_addr(h));
			assert_int_equal(pthread_create(&cl[i].t, NULL,
			    client_run, &cl[i]), 0);
		}
		// Close while a call is inside the handler.
		uint64_t deadline = idn_clock_ms() + 10000;
		while (atomic_load(&s->inside) == 0 &&
		    idn_clock_ms() < deadline) {
			core_sleep_ms(1);
		}
		assert_true(atomic_load(&s->inside) > 0);
		net_http_close(h);
		atomic_store(&s->closed, true);
		assert_int_equal(atomic_load(&s->inside), 0);
		atomic_store(&s->magic, 0);
		// Clients still knocking must not reach the handler.
		core_sleep_ms(20);
		atomic_store(&stop, true);
		for (int i = 0; i < CLIENTS; i++) {
			pthread_join(cl[i].t, NULL);
		}
		assert_int_equal(atomic_load(&s->late), 0);
		assert_int_equal(atomic_load(&s->inside), 0);
		calls += atomic_load(&s->calls);
		free(s);
	}
	assert_true(calls >= ROUNDS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_routes),
	    cmocka_unit_test(test_close_under_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
