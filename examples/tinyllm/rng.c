/* rng.c: the small deterministic random number generator of the engine. */
#include "tinyllm.h"

/*
 * Advances a splitmix64 state and returns the next 64 random bits. The
 * generator is tiny, has a 2^64 period and gives the same stream on every
 * platform, which is all the weight generator and the sampler need.
 */
uint64_t
rng_next(uint64_t *state)
{
	uint64_t z;

	z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Returns a float uniformly distributed in [0, 1). */
float
rng_uniform(uint64_t *state)
{
	return (float)(rng_next(state) >> 40) * (1.0f / 16777216.0f);
}

/*
 * Derives the starting state of an independent stream from a seed and a
 * stream number, so each weight tensor and each request has its own
 * reproducible sequence whatever order they are drawn in.
 */
uint64_t
rng_seed(uint64_t seed, uint64_t stream)
{
	uint64_t s;

	s = seed ^ (stream * 0xd1b54a32d192ed03ULL);
	rng_next(&s);
	return rng_next(&s);
}
