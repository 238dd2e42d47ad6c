/*-------------------------------------------------------------------------
 *
 * bloom.h
 *	  Whole-key bloom filters for SSTs (internal).
 *
 * One filter covers a whole table.  Keys are lookup keys (cf byte + user
 * key); the builder remembers one 64-bit hash per distinct key and lays out
 * the filter at finish:
 *
 *		line[num_lines] (64 bytes each)  k (1 byte)
 *
 * A key's hash picks one 64-byte line and its k probes are LevelDB-style
 * double hashing inside that line, so a lookup touches a single cache line
 * instead of k random ones.  See bloom.c and docs/sst.md for the exact bit
 * positions and for why the hash is not nokv_hash32.
 *
 * include/nokv/bloom.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_BLOOM_H
#define NOKV_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/coding.h"

#define NOKV_BLOOM_SEED		0xbc9f1d34u
#define NOKV_BLOOM_LINE		64		/* bytes per line */
#define NOKV_BLOOM_MAX_K	30

/* the filter hash of a lookup key (MurmurHash64A, little-endian loads) */
uint64_t	nokv_bloom_hash(const char *key, size_t len);

/* number of probes for a bits-per-key setting: bits * ln 2, clamped 1..30 */
int			nokv_bloom_num_probes(int bits_per_key);

typedef struct nokv_bloom_builder
{
	int			bits_per_key;
	uint64_t   *hashes;
	size_t		n;
	size_t		cap;
} nokv_bloom_builder;

void		nokv_bloom_builder_init(nokv_bloom_builder *b, int bits_per_key);
void		nokv_bloom_builder_add_hash(nokv_bloom_builder *b, uint64_t hash);

static inline void
nokv_bloom_builder_add(nokv_bloom_builder *b, const char *key, size_t len)
{
	nokv_bloom_builder_add_hash(b, nokv_bloom_hash(key, len));
}

/* append the filter for the keys added so far to out, then forget them */
void		nokv_bloom_builder_finish(nokv_bloom_builder *b, nokv_buf *out);
void		nokv_bloom_builder_free(nokv_bloom_builder *b);

/*
 * False only if the key with this hash is certainly not in the set.  A
 * malformed filter (wrong length, k out of range) answers true: it must
 * never hide a key; nokv_bloom_check reports it.
 */
bool		nokv_bloom_may_match(const char *filter, size_t len, uint64_t hash);

/* is the filter well-formed? */
bool		nokv_bloom_check(const char *filter, size_t len);

#endif							/* NOKV_BLOOM_H */
