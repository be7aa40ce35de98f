// SPDX-License-Identifier: MIT
// net_int.h: private to libidunno/net/: what its sockets share. net.c
// (errors, addresses, listening, bounded close, counters) is below
// server.c (the rep endpoint), client.c (req sockets per peer), pubsub.c
// and http.c, which call only it; pool.c calls the client.
#ifndef IDN_NET_INT_H
#define IDN_NET_INT_H

#include <nng/nng.h>

#include "net/net.h"

// The reply types of requests refused before any handler ran: the
// caller learns the destination's id, or stamps its request again.
#define NET_TYPE_REDIRECT "net.redirect"
#define NET_TYPE_STALE "net.stale"

// nng 1.5 can deadlock in nng_close after a peer broke a pipe in the
// middle of a message (nng issue #1543, fixed in 1.7). A close that has not
// returned within NET_CLOSE_WAIT_MS is left to finish, or not, on its own
// thread, and the caller abandons what the socket's users still hold.
#define NET_CLOSE_WAIT_MS 2000
// Closes sock; false when the close was abandoned (see above).
bool net_close_bounded(nng_socket sock);

// Listens on addr ("host:port"); bound gets the address bound.
int net_listen_on(nng_socket s, const char *addr, char *bound, size_t cap);

// Counts one message of bytes in or out.
void net_count(net_counters *c, bool in, size_t bytes);
// Adds c's counts to sum.
void net_counters_add(net_counters *sum, const net_counters *c);

#endif
