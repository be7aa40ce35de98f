// SPDX-License-Identifier: MIT
// standby.h: ledger replication between the active coordinator and its hot
// standby. The active keeps its recent ledger changes in a ring (fed by the
// ledger's change stream) and answers `sched.repl` pulls: the changes after
// the standby's position, or the whole database image when the standby is
// new, behind the ring or of another generation. A pull waits up to
// REPL_WAIT_MS for a change, so an idle stream is a heartbeat; each pull
// acknowledges everything before its position.
#ifndef IDN_COORD_STANDBY_H
#define IDN_COORD_STANDBY_H

#include "coord/change.h"
#include "coord/coord.h"
#include "ledger/ledger.h"
#include "rpc/rpc.h"

#define REPL_WAIT_MS 50        // a pull with nothing new returns after this
#define REPL_SYNC_MS 500       // an acknowledged change waits this at most

// ---- the active side

typedef struct coord_repl coord_repl;
int coord_repl_new(coord_repl **out);
void coord_repl_free(coord_repl *r);
// A ledger_stream_fn: queues one change as its record.
void coord_repl_push(void *arg, const ledger_change *c);
// Waits until a standby that pulled recently acknowledged every change
// queued so far (at most REPL_SYNC_MS; not at all for one silent for a
// second). True when it did, or when no standby ever pulled from this
// coordinator (at once); false when one did but has not acknowledged:
// the caller makes sure no newer coordinator is active before acting.
bool coord_repl_sync(coord_repl *r);
// Answers one `sched.repl` pull {id, gen, from} with {epoch, gen, seq,
// image} or {epoch, gen, seq, changes: [bin]}.
int coord_repl_serve(coord_repl *r, ledger *led, uint64_t epoch,
    const wire_val *req, wire_wr *reply);
// The id of the standby that pulled in the last second, else false.
bool coord_repl_follower(coord_repl *r, char *id, size_t cap);

// ---- the standby side

typedef struct coord_replica coord_replica;
// path: the replica's sqlite file (replaced by the first image).
int coord_replica_open(const char *path, coord_replica **out);
void coord_replica_close(coord_replica *p);
// One pull from the active at addr. *changed: the replica changed.
int coord_replica_pull(coord_replica *p, rpc *r, const char *addr,
    const char *self_id, idn_duration timeout_ms, bool *changed,
    uint64_t *epoch);
// The replica's ledger (NULL before the first image), owned by p.
ledger *coord_replica_ledger(coord_replica *p);
// Hands the ledger over (a promotion); the replica starts empty again.
ledger *coord_replica_take(coord_replica *p);

#endif
