// SPDX-License-Identifier: MIT
// change.h: the ledger's changes as the records its stream carries
// (docs/STANDBY.md), and a job's spec as the ledger stores it: bytes the
// ledger keeps without reading them.
#ifndef IDN_COORD_CHANGE_H
#define IDN_COORD_CHANGE_H

#include "ledger/ledger.h"
#include "record/record.h"
#include "wire/wire.h"

// coord_change_put writes c as the stream's record of it.
void coord_change_put(wire_wr *w, const ledger_change *c);
// coord_change_apply decodes one record and applies it to l. IDN_EPROTO
// bad record, IDN_EDB.
int coord_change_apply(ledger *l, const uint8_t *p, size_t len);
// coord_job_put records job s->job anew with its spec encoded.
int coord_job_put(ledger *l, const record_spec *s, int state,
    uint64_t start_ms);
// coord_job_spec decodes the spec of a job read back. IDN_EPROTO.
int coord_job_spec(const ledger_job *j, record_spec *s);

#endif
