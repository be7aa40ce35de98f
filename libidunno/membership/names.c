// SPDX-License-Identifier: MIT
// names.c: printable names of member states and events.
#include <idunno/membership.h>

#include "core/core.h"

const char *
idn_member_state_name(int state)
{
	static const char *const names[] = {"alive", "suspect", "failed",
	    "left"};
	return state >= 0 && state < (int) CORE_ARRAY_LEN(names) ?
	    names[state] : "unknown";
}

const char *
idn_member_event_name(int event)
{
	static const char *const names[] = {"join", "suspect", "alive",
	    "fail", "leave"};
	return event >= 0 && event < (int) CORE_ARRAY_LEN(names) ?
	    names[event] : "unknown";
}
