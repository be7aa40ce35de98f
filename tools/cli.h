// SPDX-License-Identifier: MIT
// cli.h: the commands of the idunno client: the tables each module
// fills, and what a command's run gets: its options parsed, a node to
// talk to once it needs one.
#ifndef IDN_TOOLS_CLI_H
#define IDN_TOOLS_CLI_H

#include <idunno/client.h>

#include "tool.h"

typedef struct cli cli;

// One command. run gets argv[0] = the command's last word and the rest of
// the command line; it calls cli_parse before anything else, so that
// `idunno --commands` can run it only to list its options, and --help
// needs no cluster.
typedef struct cli_cmd {
	const char *name;       // "train add"
	const char *args;       // its synopsis: "JOB --model M [--json]"
	const char *about;      // what it does; lines split by '\n'
	int min_args, max_args; // as tool_cmd
	bool in_order;
	int (*run)(cli *x, int argc, char **argv);
} cli_cmd;

// The modules' tables, each ended by an entry without a name.
extern const cli_cmd cluster_cmds[];
extern const cli_cmd sdfs_cmds[];
extern const cli_cmd model_cmds[];
extern const cli_cmd sched_cmds[];

// The words of --optimizer and --schedule (train add, train local).
extern const tool_word cli_optimizers[];
extern const tool_word cli_schedules[];

// cli_parse is tool_parse for the running command: prints its usage for
// --help (then returns 0) and lists its options for --commands (0).
// Returns TOOL_RUN with the arguments in argv[*first..argc), else the
// exit code.
int cli_parse(cli *x, const tool_opt *opts, int argc, char **argv,
    int *first);
// cli_client connects to the --node, or a live node of the local cluster,
// on first use; NULL (reported on stderr: exit 1) when it cannot.
idn_client *cli_client(cli *x);
// cli_connect is cli_parse, then (to run) cli_client into *c.
int cli_connect(cli *x, const tool_opt *opts, int argc, char **argv,
    int *first, idn_client **c);
// The local cluster's root folder (--root, $IDUNNO_ROOT, ./idunno-cluster).
const char *cli_root(const cli *x);

#endif
