// SPDX-License-Identifier: MIT
// replay.h: the replay filter of a node's RPC endpoint.
#ifndef IDN_NET_REPLAY_H
#define IDN_NET_REPLAY_H

#include <pthread.h>

#include "core/core.h"

typedef struct replay replay;

// replay_open remembers up to capacity requests (rounded up to a power of
// two): a sustained rate of capacity / window requests per second. The
// memory is zeroed lazily: what is touched grows with the traffic.
int replay_open(uint64_t window_ms, uint32_t capacity, replay **out);
void replay_close(replay *r);
// replay_check admits a request once: IDN_ESTALE if ts is outside the
// window around now, IDN_EEXIST if (ts, nonce) was already admitted,
// IDN_EBUSY if the filter is full of requests still inside the window (a
// live entry is never forgotten to make room: refusing is safe, admitting
// a replay is not).
int replay_check(replay *r, uint64_t ts_ms, uint64_t nonce, uint64_t now_ms);

#endif
