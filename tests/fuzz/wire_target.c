// SPDX-License-Identifier: MIT
// wire_target.c: libFuzzer entry for the wire decoders (built by
// scripts/fuzz-wire with clang). Its corpus, tests/corpus/wire, is replayed
// by wire_test.
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	return wire_fuzz_one(data, len);
}
