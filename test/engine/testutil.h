/*-------------------------------------------------------------------------
 *
 * testutil.h
 *	  Helpers shared by the engine's system tests: a seeded PRNG and the
 *	  scaling of operation counts under sanitizers.
 *
 * Every randomized test is reproducible from its seed, so they all use the
 * same generator (splitmix64); counts shrink under AddressSanitizer (or
 * NOKV_ASAN=1) and grow or shrink with NOKV_TEST_SCALE.
 *
 * test/engine/testutil.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_TESTUTIL_H
#define NOKV_TESTUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifndef TEST_ASAN
#define TEST_ASAN 0
#endif

static inline uint64_t
splitmix64(uint64_t *s)
{
	uint64_t	z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint32_t
rnd_below(uint64_t *s, uint32_t n)
{
	return n ? (uint32_t) (splitmix64(s) % n) : 0;
}

static inline bool
under_asan(void)
{
	const char *e = getenv("NOKV_ASAN");

	return TEST_ASAN || (e && strcmp(e, "1") == 0);
}

/* NOKV_TEST_SCALE (default 1) */
static inline double
test_scale(void)
{
	const char *e = getenv("NOKV_TEST_SCALE");
	double		s = e && *e ? atof(e) : 1.0;

	return s > 0 ? s : 1.0;
}

/* an operation count scaled by NOKV_TEST_SCALE, halved under ASan, at least 1 */
static inline int
scaled(int n)
{
	double		v = n * test_scale() / (under_asan() ? 2.0 : 1.0);

	return v < 1 ? 1 : (int) v;
}

#endif							/* NOKV_TESTUTIL_H */
