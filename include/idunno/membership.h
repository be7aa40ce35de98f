// SPDX-License-Identifier: MIT
// membership.h: the cluster's members as one node sees them, and events.
#ifndef IDUNNO_MEMBERSHIP_H
#define IDUNNO_MEMBERSHIP_H

#include <stdint.h>

#include <idunno/base.h>
#include <idunno/client.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IDN_ROLE_MAX 16

enum idn_member_state {
	IDN_MEMBER_ALIVE,
	IDN_MEMBER_SUSPECT,
	IDN_MEMBER_FAILED,
	IDN_MEMBER_LEFT,
};

// A member: id is "host:port:start_ms", unique per process start, so a
// restarted node is a new member. incarnation is SWIM's refutation counter.
typedef struct idn_member {
	char id[IDN_ID_MAX];
	char addr[IDN_ADDR_MAX];
	char role[IDN_ROLE_MAX]; // "coord", "standby", "worker"
	int state;               // enum idn_member_state
	uint64_t incarnation;
	uint64_t since_ms;       // wall clock of the last state change seen
} idn_member;

enum idn_member_event {
	IDN_EV_JOIN,
	IDN_EV_SUSPECT,
	IDN_EV_ALIVE, // a suspicion was refuted
	IDN_EV_FAIL,
	IDN_EV_LEAVE,
};

// idn_member_fn reports one membership event. It runs on the node's
// membership thread with no library locks held; keep it short.
typedef void (*idn_member_fn)(void *arg, const struct idn_member *m,
    int event);
// idn_member_state_name and idn_member_event_name return static strings.
IDN_API const char *idn_member_state_name(int state);
IDN_API const char *idn_member_event_name(int event);

// idn_client_members asks the node for its membership view; the array is
// freed by the caller with idn_free().
IDN_API int idn_client_members(idn_client *c, struct idn_member **out,
    size_t *count);

// A subscription to a node's event stream (membership changes).
typedef struct idn_events idn_events;

enum idn_event_kind {
	IDN_EVENT_MEMBER, // a membership change
};

typedef struct idn_event {
	int kind;                 // enum idn_event_kind
	int event;                // enum idn_member_event
	struct idn_member member; // the member after the change
} idn_event;

// idn_events_open subscribes to the client's node. Events published
// before the subscription connects are not seen.
IDN_API int idn_events_open(idn_client *c, idn_events **out);
// idn_events_next waits up to timeout_ms for the next authentic event.
// IDN_ETIMEDOUT when none came.
IDN_API int idn_events_next(idn_events *e, idn_duration timeout_ms,
    idn_event *ev);
IDN_API void idn_events_close(idn_events *e);

#ifdef __cplusplus
}
#endif
#endif
