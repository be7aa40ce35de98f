// SPDX-License-Identifier: MIT
// replay.h: the replay filter of a node's RPC endpoint.
#ifndef IDN_NET_REPLAY_H
#define IDN_NET_REPLAY_H

#include <pthread.h>

#include "core/core.h"

typedef struct replay replay;

int replay_open(uint64_t window_ms, replay **out);
void replay_close(replay *r);
// replay_check admits a request once: IDN_ESTALE if ts is outside the
// window around now, IDN_EEXIST if (ts, nonce) was already admitted.
int replay_check(replay *r, uint64_t ts_ms, uint64_t nonce, uint64_t now_ms);

#endif
