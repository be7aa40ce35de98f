// SPDX-License-Identifier: MIT
// cluster.h: the local cluster under one root folder (idunno cluster ...).
#ifndef IDN_TOOLS_CLUSTER_H
#define IDN_TOOLS_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct {
	char name[32];  // coord, standby, worker1...
	char role[16];
	pid_t pid;
	char addr[64];
	unsigned long long start; // the process's start time (clock ticks
	                          // since boot), so a reused pid is not ours
	bool alive;
	int cpu;        // a worker's --model-cpu (cluster up --pin); -1: none
} cluster_node;

// Reads ROOT/cluster.state; *out is malloc'd. Returns 0 or -1 (no cluster).
int cluster_load(const char *root, cluster_node **out, int *n);
// Address of a live node, preferring the coordinator; -1 if none.
int cluster_pick_addr(const char *root, char *addr, size_t cap);
// Path of ROOT/cluster.key (static buffer).
const char *cluster_key_path(const char *root);

#endif
