// SPDX-License-Identifier: MIT
// coord.c: idunno-coord, a coordinator (or, with --standby, its standby).
#include "tool.h"

int
main(int argc, char **argv)
{
	return tool_node_main("idunno-coord", "coord", argc, argv);
}
