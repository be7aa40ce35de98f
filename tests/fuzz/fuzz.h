// SPDX-License-Identifier: MIT
// fuzz.h: the fuzz entry points, shared by the libFuzzer targets
// (scripts/fuzz-wire) and the corpus replay in the unit tests. Not part of
// the shipped library.
#ifndef IDN_TESTS_FUZZ_H
#define IDN_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

// wire_fuzz_one pushes arbitrary bytes through every wire decoder and
// frees whatever they accept. Never fails; crashes are the finding.
int wire_fuzz_one(const uint8_t *data, size_t len);

#endif
