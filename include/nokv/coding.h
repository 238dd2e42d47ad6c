/*-------------------------------------------------------------------------
 *
 * coding.h
 *	  Fixed-endianness integer encodings, varints and CRC32C.
 *
 * Every on-disk format of the engine is little-endian except where a format
 * needs byte-wise ordering (internal-key trailers are big-endian so that
 * memcmp orders them).  Nothing is ever written in host order.
 *
 * include/nokv/coding.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_CODING_H
#define NOKV_CODING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void
nokv_put_le32(char *p, uint32_t v)
{
	unsigned char *u = (unsigned char *) p;

	u[0] = v;
	u[1] = v >> 8;
	u[2] = v >> 16;
	u[3] = v >> 24;
}

static inline uint32_t
nokv_get_le32(const char *p)
{
	const unsigned char *u = (const unsigned char *) p;

	return (uint32_t) u[0] | ((uint32_t) u[1] << 8) |
		((uint32_t) u[2] << 16) | ((uint32_t) u[3] << 24);
}

static inline void
nokv_put_le64(char *p, uint64_t v)
{
	nokv_put_le32(p, (uint32_t) v);
	nokv_put_le32(p + 4, (uint32_t) (v >> 32));
}

static inline uint64_t
nokv_get_le64(const char *p)
{
	return (uint64_t) nokv_get_le32(p) | ((uint64_t) nokv_get_le32(p + 4) << 32);
}

/*
 * Big-endian 64-bit values sit in every internal key's trailer, so they are
 * read on each key comparison: one load or store and a byte swap, not the
 * byte loop GCC keeps as written.
 */
static inline uint64_t
nokv_be64_swap(uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return v;
#else
	return __builtin_bswap64(v);
#endif
}

static inline void
nokv_put_be64(char *p, uint64_t v)
{
	v = nokv_be64_swap(v);
	memcpy(p, &v, sizeof(v));
}

static inline uint64_t
nokv_get_be64(const char *p)
{
	uint64_t	v;

	memcpy(&v, p, sizeof(v));
	return nokv_be64_swap(v);
}

/* LEB128-style unsigned varints: at most 5 bytes for 32 bits, 10 for 64 */
#define NOKV_MAX_VARINT64 10

/* inline: every batch entry writes two */
static inline char *
nokv_put_varint32(char *dst, uint32_t v)
{
	unsigned char *p = (unsigned char *) dst;

	while (v >= 0x80)
	{
		*p++ = (unsigned char) (v | 0x80);
		v >>= 7;
	}
	*p++ = (unsigned char) v;
	return (char *) p;
}

char	   *nokv_put_varint64(char *dst, uint64_t v);
int			nokv_varint_length(uint64_t v);

/*
 * Decoders return a pointer just past the varint, or NULL if the input ends
 * (limit) or the varint is malformed.  They never read at or past limit.
 */
const char *nokv_get_varint32_slow(const char *p, const char *limit, uint32_t *v);

/* most lengths in keys, blocks and batches fit one or two bytes: decode those inline */
static inline const char *
nokv_get_varint32(const char *p, const char *limit, uint32_t *v)
{
	const unsigned char *u = (const unsigned char *) p;

	if (p < limit && !(u[0] & 0x80))
	{
		*v = u[0];
		return p + 1;
	}
	if (limit - p >= 2 && !(u[1] & 0x80))
	{
		*v = (uint32_t) (u[0] & 0x7f) | ((uint32_t) u[1] << 7);
		return p + 2;
	}
	return nokv_get_varint32_slow(p, limit, v);
}

const char *nokv_get_varint64(const char *p, const char *limit, uint64_t *v);

/* CRC-32C (Castagnoli); hardware-accelerated where the CPU has SSE4.2 */
uint32_t	nokv_crc32c_extend(uint32_t crc, const void *data, size_t n);

static inline uint32_t
nokv_crc32c(const void *data, size_t n)
{
	return nokv_crc32c_extend(0, data, n);
}

/*
 * Stored CRCs are masked (as in LevelDB) so that a CRC of data that itself
 * embeds CRCs does not degenerate.
 */
#define NOKV_CRC_MASK_DELTA 0xa282ead8u

static inline uint32_t
nokv_crc_mask(uint32_t crc)
{
	return ((crc >> 15) | (crc << 17)) + NOKV_CRC_MASK_DELTA;
}

static inline uint32_t
nokv_crc_unmask(uint32_t masked)
{
	uint32_t	rot = masked - NOKV_CRC_MASK_DELTA;

	return (rot >> 17) | (rot << 15);
}

/* 32-bit hash for cache sharding (LevelDB's murmur-like) */
uint32_t	nokv_hash32(const void *data, size_t n, uint32_t seed);
/* 64-bit MurmurHash64A (bloom filters, hot-key tables) */
uint64_t	nokv_hash64(const void *data, size_t n, uint64_t seed);

/* ---------- growable byte buffer (per-process scratch) ---------- */

typedef struct nokv_buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} nokv_buf;

void		nokv_buf_reserve(nokv_buf *b, size_t extra);	/* aborts on OOM */
void		nokv_buf_append(nokv_buf *b, const void *p, size_t n);
void		nokv_buf_append_varint32(nokv_buf *b, uint32_t v);
void		nokv_buf_append_varint64(nokv_buf *b, uint64_t v);
void		nokv_buf_append_le32(nokv_buf *b, uint32_t v);
void		nokv_buf_append_le64(nokv_buf *b, uint64_t v);
/* varint32 length followed by the bytes */
void		nokv_buf_append_lenprefixed(nokv_buf *b, const void *p, size_t n);
void		nokv_buf_free(nokv_buf *b);

static inline void
nokv_buf_reset(nokv_buf *b)
{
	b->len = 0;
}

/* malloc wrappers that abort with a message on OOM (engine-internal only) */
void	   *nokv_malloc(size_t n);
void	   *nokv_calloc(size_t n, size_t sz);
void	   *nokv_realloc(void *p, size_t n);
char	   *nokv_memdup(const void *p, size_t n);

#endif							/* NOKV_CODING_H */
