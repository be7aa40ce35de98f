// SPDX-License-Identifier: MIT
// http.h: a small read-only HTTP server (nng's) for the dashboard and
// /metrics: every GET goes to one handler that fills the body.
#ifndef IDN_NET_HTTP_H
#define IDN_NET_HTTP_H

#include "core/core.h"

typedef struct net_http net_http;

// net_http_fn answers one GET of path (query string removed) on an nng
// thread with no net locks held: it appends the body to body, points
// *ctype at a static content type and returns the HTTP status (200, 404,
// 503...).
typedef int (*net_http_fn)(void *arg, const char *path, core_buf *body,
    const char **ctype);

// net_http_open serves GET on addr ("host:port", port 0 picks a free one).
// Other methods get 405. IDN_EINVAL bad address, IDN_ENET cannot bind.
int net_http_open(const char *addr, net_http_fn fn, void *arg,
    net_http **out);
// The bound address, "host:port", borrowed until close.
const char *net_http_addr(const net_http *h);
// net_http_close stops serving: it waits for the calls of fn in flight,
// and fn is never called after it returns (late requests get 503), so the
// caller may free arg. Not from inside fn. NULL ok.
void net_http_close(net_http *h);

#endif
