// SPDX-License-Identifier: MIT
// cluster.h: a real local cluster for integration tests: started with
// `idunno cluster up`, nodes killed by pid, always torn down.
#ifndef IDN_TESTS_CLUSTER_H
#define IDN_TESTS_CLUSTER_H

#include <limits.h>
#include <sys/types.h>

#include "harness.h"

typedef struct th_cluster {
	char root[PATH_MAX];
	int n;
	uint8_t key[IDN_KEY_BYTES];
} th_cluster;

// th_cluster_up starts n nodes (coord, standby, workers) in a fresh temp
// root and waits until every node sees all n alive. Teardown is also
// registered at exit, so a failed assertion still stops the processes.
int th_cluster_up(th_cluster *c, int n);
// The same with more `cluster up` arguments (e.g. "--pin").
int th_cluster_up_with(th_cluster *c, int n, const char *up_args);
void th_cluster_down(th_cluster *c);
// th_cluster_wait_alive waits up to timeout_ms until every node sees all
// n alive again (after restarts); IDN_ETIMEDOUT if they do not.
int th_cluster_wait_alive(th_cluster *c, int timeout_ms);
// Node by name ("coord", "standby", "worker3") or index ("0").
int th_cluster_kill(th_cluster *c, const char *node);
// th_cluster_restart restarts a node, retrying for up to 10 s while a
// just-killed process is still going away.
int th_cluster_restart(th_cluster *c, const char *node);
// The node's process id (from `cluster status`), or -1.
pid_t th_cluster_pid(th_cluster *c, const char *node);
// The node's address (static buffer) or NULL.
const char *th_cluster_addr(th_cluster *c, const char *node);
// The index (start order, as names "0", "1", ...) of the node at addr,
// or -1.
int th_cluster_index(th_cluster *c, const char *addr);
// A client of `node` with calls timing out after timeout_ms.
int th_cluster_client(th_cluster *c, const char *node, int timeout_ms,
    idn_client **out);
// The member list as `node` sees it (caller frees with idn_free).
int th_cluster_members(th_cluster *c, const char *node,
    idn_member **out, size_t *n);
// Counts members in `state` as seen by node; -1 if it does not answer.
int th_cluster_count(th_cluster *c, const char *node, int state);
// Runs `idunno --root ROOT ARGS`; as th_cli.
int th_cluster_cli(th_cluster *c, char **out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
