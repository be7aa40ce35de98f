// SPDX-License-Identifier: MIT
// cluster.h: a real local cluster for integration tests: started with
// `idunno cluster up`, nodes killed by pid, always torn down.
#ifndef IDN_TESTS_CLUSTER_H
#define IDN_TESTS_CLUSTER_H

#include <limits.h>
#include <sys/types.h>

#include "harness.h"

typedef struct idn_tcluster {
	char root[PATH_MAX];
	int n;
	uint8_t key[IDN_KEY_BYTES];
} idn_tcluster;

// idn_tcluster_up starts n nodes (coord, standby, workers) in a fresh temp
// root and waits until every node sees all n alive. Teardown is also
// registered at exit, so a failed assertion still stops the processes.
int idn_tcluster_up(idn_tcluster *c, int n);
// The same with more `cluster up` arguments (e.g. "--pin").
int idn_tcluster_up_with(idn_tcluster *c, int n, const char *up_args);
void idn_tcluster_down(idn_tcluster *c);
// idn_tcluster_wait_alive waits up to timeout_ms until every node sees all
// n alive again (after restarts); IDN_ETIMEDOUT if they do not.
int idn_tcluster_wait_alive(idn_tcluster *c, int timeout_ms);
// Node by name ("coord", "standby", "worker3") or index ("0").
int idn_tcluster_kill(idn_tcluster *c, const char *node);
// idn_tcluster_restart restarts a node, retrying for up to 10 s while a
// just-killed process is still going away.
int idn_tcluster_restart(idn_tcluster *c, const char *node);
// The node's process id (from `cluster status`), or -1.
pid_t idn_tcluster_pid(idn_tcluster *c, const char *node);
// The node's address (static buffer) or NULL.
const char *idn_tcluster_addr(idn_tcluster *c, const char *node);
// The index (start order, as names "0", "1", ...) of the node at addr,
// or -1.
int idn_tcluster_index(idn_tcluster *c, const char *addr);
// A client of `node` with calls timing out after timeout_ms.
int idn_tcluster_client(idn_tcluster *c, const char *node, int timeout_ms,
    idn_client **out);
// The member list as `node` sees it (caller frees with idn_free).
int idn_tcluster_members(idn_tcluster *c, const char *node,
    idn_member **out, size_t *n);
// Counts members in `state` as seen by node; -1 if it does not answer.
int idn_tcluster_count(idn_tcluster *c, const char *node, int state);
// Runs `idunno --root ROOT ARGS`; as idn_test_cli.
int idn_tcluster_cli(idn_tcluster *c, char **out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
