// SPDX-License-Identifier: MIT
// tool.h: what the three programs share: node start-up, JSON output.
#ifndef IDN_TOOLS_TOOL_H
#define IDN_TOOLS_TOOL_H

#include <sched.h>
#include <stdio.h>

#include <stddef.h>
#include <stdint.h>

#include <idunno/base.h>

// tool_node_main runs a node with the given default role until SIGTERM or
// SIGINT (then it leaves the cluster). Returns the process exit code.
int tool_node_main(const char *prog, const char *role, int argc,
    char **argv);

// Prints s as a JSON string (quoted, escaped).
void tool_json_str(FILE *f, const char *s);

// Parses a positive integer option value; prints an error and returns -1
// when it is not one.
long tool_parse_long(const char *prog, const char *opt, const char *v,
    long min, long max);

// Reads a whole file of at most max_bytes into *data (caller frees with
// free()). IDN_ENOENT, IDN_ETOOBIG, IDN_ESYS.
int tool_read_file(const char *path, size_t max_bytes, uint8_t **data,
    size_t *len);

// Clears the CPUs of off from this process's CPU mask (threads started
// later inherit it), as long as some CPU remains. -1 (errno) when the
// mask cannot be read.
int tool_cpus_off(const cpu_set_t *off);

// Prints why a key file was refused (idn_key_load/idn_key_create's code).
void tool_key_error(const char *prog, const char *path, int rv);

#endif
