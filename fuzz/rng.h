// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rng.h: the seeded PRNG of sfork-fuzz and sfork-stress.
 *
 * xorshift64* with a splitmix64 mixer for seeding: small, fast and the same
 * on every machine, so that a seed printed by a failing run replays it.
 */
#ifndef SFORK_FUZZ_RNG_H
#define SFORK_FUZZ_RNG_H

#include <stdint.h>

static inline uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

struct rng {
	uint64_t s;
};

static inline void rng_init(struct rng *r, uint64_t seed, uint64_t stream)
{
	r->s = mix64(seed * 0x100000001b3ULL ^ mix64(stream + 1)) | 1;
}

static inline uint64_t rnd(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 2685821657736338717ULL;
}

static inline uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

#endif
