// SPDX-License-Identifier: MIT
// top.h: `idunno top`.
#ifndef IDN_TOOLS_TOP_H
#define IDN_TOOLS_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <idunno/base.h>

typedef struct top_opts {
	uint8_t key[IDN_KEY_BYTES];
	// Picks a live node to ask where the coordinator is (again after a
	// takeover): the --node address, or a live node of the local cluster.
	int (*pick_node)(void *arg, char *addr, size_t cap);
	void *pick_arg;
	bool once; // print one snapshot and exit (no screen, no keys)
} top_opts;

// top_run shows the live view until `q` (or one snapshot with once).
// Returns the exit code.
int top_run(const top_opts *o);

#endif
