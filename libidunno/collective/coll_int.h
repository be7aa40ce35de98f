// SPDX-License-Identifier: MIT
// coll_int.h: private to collective/: the layout of a buffer into segments
// and parts, and the coll.part message.
#ifndef IDN_COLLECTIVE_COLL_INT_H
#define IDN_COLLECTIVE_COLL_INT_H

#include "collective/collective.h"

// How one allreduce cuts its buffer; every rank of a call must agree.
typedef struct {
	uint64_t n;     // floats
	uint32_t world; // ranks, >= 2
	uint32_t cf;    // floats per part, at most
	uint32_t algo;  // COLL_ALGO_RING or COLL_ALGO_DIRECT
} coll_shape;

// coll_seg_off: where segment k (0..world) starts; segment k is
// [off(k), off(k+1)).
uint64_t coll_seg_off(uint64_t n, uint32_t world, uint32_t k);
// coll_seg_parts: the parts of segment k (0 for an empty segment).
uint64_t coll_seg_parts(const coll_shape *s, uint32_t k);
// coll_max_parts: the parts of the largest segment.
uint64_t coll_max_parts(const coll_shape *s);
// coll_phases: ring 2(world-1), direct 2.
uint32_t coll_phases(const coll_shape *s);
// coll_region: the floats [*off, *off + *len) that part ck of phase ph
// from rank src to rank dst carries; false when there is no such part
// (wrong pair for the phase, chunk out of range).
bool coll_region(const coll_shape *s, uint32_t src, uint32_t dst,
    uint32_t ph, uint64_t ck, uint64_t *off, uint64_t *len);
// coll_is_add: whether a part of phase ph is added to the receiver's
// floats (reduce-scatter) rather than copied over them (all-gather).
bool coll_is_add(const coll_shape *s, uint32_t ph);
// coll_counts: how many parts rank sends and receives in one call.
void coll_counts(const coll_shape *s, uint32_t rank, uint64_t *sends,
    uint64_t *recvs);

// One part on the wire: the body of a COLL_ROUTE request, a map
// {job, gen, seq, algo, n, w, cf, src, dst, ph, ck, d}; d holds len
// float32 in little-endian byte order.
typedef struct {
	char job[COLL_JOB_MAX + 1];
	uint64_t gen;
	uint64_t seq;
	coll_shape shape;
	uint32_t src;
	uint32_t dst;
	uint32_t ph;
	uint64_t ck;
	uint64_t off; // the region, from coll_region (not on the wire)
	uint64_t len;
	const uint8_t *data; // len * 4 bytes, borrowed, maybe unaligned
} coll_part;

// coll_job_ok: a job name of 1..COLL_JOB_MAX of [A-Za-z0-9_.-].
bool coll_job_ok(const char *job);
// coll_part_put encodes p with its floats taken from data (len of them).
void coll_part_put(wire_wr *w, const coll_part *p, const float *data);
// coll_part_get decodes and checks a part: every field present and in
// range, the region exists and d holds exactly its floats. p->data is
// borrowed from body. IDN_EPROTO otherwise.
int coll_part_get(const wire_val *body, coll_part *p);

// coll_add_le: dst[i] = dst[i] + src[i]; coll_copy_le: dst[i] = src[i],
// src being n little-endian float32 at any alignment.
void coll_add_le(float *dst, const uint8_t *src, size_t n);
void coll_copy_le(float *dst, const uint8_t *src, size_t n);

#endif
