// SPDX-License-Identifier: MIT
// client.h (internal): requests from an idn_client, for the tools and the
// subsystems' client-side code.
#ifndef IDN_NODE_CLIENT_H
#define IDN_NODE_CLIENT_H

#include "net/net.h"

// client_call sends a request to the client's node; client_call_at to any
// address. Same contract as net_call.
int client_call(idn_client *c, const char *type, wire_wr *body,
    wire_doc **doc, wire_env *env);
int client_call_at(idn_client *c, const char *addr, const char *type,
    wire_wr *body, wire_doc **doc, wire_env *env);
const char *client_addr(const idn_client *c);
idn_duration client_timeout(const idn_client *c);

#endif
