// SPDX-License-Identifier: MIT
// fuzz_target.c: libFuzzer entry for the wire decoders (meson -Dfuzz=true
// with CC=clang). Its corpus, tests/corpus/wire, is replayed by wire_test.
#include <stddef.h>
#include <stdint.h>

int wire_fuzz_one(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	return wire_fuzz_one(data, len);
}
