// SPDX-License-Identifier: MIT
// worker.c: idunno-worker, a node that runs batches.
#include "tool.h"

int
main(int argc, char **argv)
{
	return tool_node_main("idunno-worker", "worker", argc, argv);
}
