// SPDX-License-Identifier: MIT
// tool.h: what the three programs share: the command line, node start-up,
// JSON output.
#ifndef IDN_TOOLS_TOOL_H
#define IDN_TOOLS_TOOL_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <idunno/base.h>

// tool_node_main runs a node with the given default role until SIGTERM or
// SIGINT (then it leaves the cluster). Returns the process exit code.
int tool_node_main(const char *prog, const char *role, int argc,
    char **argv);

// Prints s as a JSON string (quoted, escaped: idn_json_string).
void tool_json_str(FILE *f, const char *s);

// Every tool's exit codes: 0 done, 1 the operation failed (a runtime
// error: cluster unreachable, file missing, a refusal), 2 a usage error
// (the command line). tool_parse also returns TOOL_RUN (parsed: go on)
// and TOOL_HELP (--help was given: print the usage, exit 0).
enum { TOOL_FAILED = 1, TOOL_USAGE = 2, TOOL_RUN = -1, TOOL_HELP = -2 };

// What an option's value is, and the type of tool_opt.out.
typedef enum {
	TOOL_FLAG, // bool: true when given; takes no value
	TOOL_STR,  // const char *
	TOOL_STRS, // tool_strs: one more string each time it is given
	TOOL_LONG, // long in min..max
	TOOL_NUM,  // double, finite
	TOOL_WORD, // int: the value of the word given, one of words
} tool_kind;

typedef struct tool_word {
	const char *word;
	int value;
} tool_word;

typedef struct tool_strs {
	const char **v;
	size_t n, cap;
} tool_strs;

// One option. A one-letter name is a short option (-n), longer ones are
// long (--name); a table ends with an entry whose name is NULL. Build
// entries with the TOOL_OPT_ macros, which check out's type.
typedef struct tool_opt {
	const char *name;
	tool_kind kind;
	void *out;
	long min, max;          // TOOL_LONG
	const tool_word *words; // TOOL_WORD, ended by a NULL word
} tool_opt;

// A p of another type than T * mismatches in the conditional: an error
// under -Werror.
#define TOOL_OUT_(T, p) ((void *) (1 ? (p) : (T *) NULL))
#define TOOL_OPT_FLAG(n, p) {(n), TOOL_FLAG, TOOL_OUT_(bool, p), 0, 0, NULL}
#define TOOL_OPT_STR(n, p)                                               \
	{(n), TOOL_STR, TOOL_OUT_(const char *, p), 0, 0, NULL}
#define TOOL_OPT_STRS(n, p)                                              \
	{(n), TOOL_STRS, TOOL_OUT_(tool_strs, p), 0, 0, NULL}
#define TOOL_OPT_LONG(n, p, lo, hi)                                      \
	{(n), TOOL_LONG, TOOL_OUT_(long, p), (lo), (hi), NULL}
#define TOOL_OPT_NUM(n, p) {(n), TOOL_NUM, TOOL_OUT_(double, p), 0, 0, NULL}
#define TOOL_OPT_WORD(n, p, w) {(n), TOOL_WORD, TOOL_OUT_(int, p), 0, 0, (w)}

// A command as tool_parse sees it.
typedef struct tool_cmd {
	const char *prog;       // names it in messages: "idunno train add"
	int min_args, max_args; // how many arguments it takes (max -1: any)
	bool in_order;          // options only before the first argument
} tool_cmd;

// tool_parse reads argv[1..argc) (argv[0] names the command) with
// getopt_long: options into opts' outs, anywhere among the arguments
// unless in_order, and "--" ends them. Leaves the arguments in
// argv[*first..argc) (argv may be reordered). Returns TOOL_RUN, TOOL_HELP
// (--help or -h), or TOOL_USAGE after one line on stderr: "unknown option
// '--x'", "option '--x' needs a value", a bad value naming its option, or
// too few or many arguments.
int tool_parse(const tool_cmd *c, const tool_opt *opts, int argc,
    char **argv, int *first);

// tool_list prints opts on one line, space-separated, as a completion
// needs them: --name (a flag), --name=STR, --name=INT, --name=NUM or
// --name=WORD|WORD (-n=INT for a short one).
void tool_list(FILE *f, const tool_opt *opts);

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
