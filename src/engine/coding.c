/*-------------------------------------------------------------------------
 *
 * coding.c
 *	  Varints, CRC32C, hashing and the growable byte buffer.
 *
 * CRC32C uses the SSE4.2 crc32 instruction when the CPU has it (checked
 * once at run time) and a slicing-by-8 table otherwise; every checksum the
 * engine stores goes through here, so both paths must agree bit for bit
 * (test_coding checks them against each other).
 *
 * src/engine/coding.c
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/coding.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

/* ---------- varints ---------- */

char *
nokv_put_varint64(char *dst, uint64_t v)
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

int
nokv_varint_length(uint64_t v)
{
	int			len = 1;

	while (v >= 0x80)
	{
		v >>= 7;
		len++;
	}
	return len;
}

const char *
nokv_get_varint32_slow(const char *p, const char *limit, uint32_t *v)
{
	uint32_t	result = 0;

	for (int shift = 0; shift <= 28 && p < limit; shift += 7)
	{
		uint32_t	byte = (unsigned char) *p++;

		if (shift == 28 && byte > 0x0f)
			return NULL;		/* would overflow 32 bits */
		result |= (byte & 0x7f) << shift;
		if (!(byte & 0x80))
		{
			*v = result;
			return p;
		}
	}
	return NULL;
}

const char *
nokv_get_varint64(const char *p, const char *limit, uint64_t *v)
{
	uint64_t	result = 0;

	for (int shift = 0; shift <= 63 && p < limit; shift += 7)
	{
		uint64_t	byte = (unsigned char) *p++;

		if (shift == 63 && byte > 1)
			return NULL;
		result |= (byte & 0x7f) << shift;
		if (!(byte & 0x80))
		{
			*v = result;
			return p;
		}
	}
	return NULL;
}

/* ---------- CRC32C ---------- */

static uint32_t crc_table[8][256];
static int	crc_mode;			/* 0 = not initialised, 1 = table, 2 = sse4.2 */

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++)
	{
		uint32_t	c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];

#if defined(__x86_64__)
	{
		unsigned int eax,
					ebx,
					ecx,
					edx;

		if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_SSE4_2) &&
			getenv("NOKV_CRC_SOFTWARE") == NULL)
		{
			crc_mode = 2;
			return;
		}
	}
#endif
	crc_mode = 1;
}

static uint32_t
crc_table_extend(uint32_t crc, const unsigned char *p, size_t n)
{
	while (n >= 8)
	{
		uint32_t	lo = crc ^ ((uint32_t) p[0] | (uint32_t) p[1] << 8 |
								(uint32_t) p[2] << 16 | (uint32_t) p[3] << 24);
		uint32_t	hi = (uint32_t) p[4] | (uint32_t) p[5] << 8 |
			(uint32_t) p[6] << 16 | (uint32_t) p[7] << 24;

		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
			crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
			crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
			crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t
crc_hw_extend(uint32_t crc, const unsigned char *p, size_t n)
{
	uint64_t	c = crc;

	while (n >= 8)
	{
		uint64_t	w;

		memcpy(&w, p, 8);		/* x86 is little-endian, as the table path */
		c = _mm_crc32_u64(c, w);
		p += 8;
		n -= 8;
	}
	crc = (uint32_t) c;
	while (n--)
		crc = _mm_crc32_u8(crc, *p++);
	return crc;
}
#endif

uint32_t
nokv_crc32c_extend(uint32_t crc, const void *data, size_t n)
{
	const unsigned char *p = data;

	if (crc_mode == 0)
		crc_init();				/* idempotent: a race only repeats the work */
	crc = ~crc;
#if defined(__x86_64__)
	if (crc_mode == 2)
		return ~crc_hw_extend(crc, p, n);
#endif
	return ~crc_table_extend(crc, p, n);
}

/* exposed for test_coding: the portable path regardless of CPU */
uint32_t	nokv_crc32c_software(const void *data, size_t n);

uint32_t
nokv_crc32c_software(const void *data, size_t n)
{
	if (crc_mode == 0)
		crc_init();
	return ~crc_table_extend(~0u, data, n);
}

/* ---------- hashing ---------- */

uint32_t
nokv_hash32(const void *data, size_t n, uint32_t seed)
{
	const uint32_t m = 0xc6a4a793u;
	const unsigned char *p = data;
	const unsigned char *limit = p + n;
	uint32_t	h = seed ^ ((uint32_t) n * m);

	while (limit - p >= 4)
	{
		uint32_t	w = (uint32_t) p[0] | (uint32_t) p[1] << 8 |
			(uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;

		p += 4;
		h += w;
		h *= m;
		h ^= h >> 16;
	}
	switch (limit - p)
	{
		case 3:
			h += (uint32_t) p[2] << 16;
			/* fall through */
		case 2:
			h += (uint32_t) p[1] << 8;
			/* fall through */
		case 1:
			h += p[0];
			h *= m;
			h ^= h >> 24;
			break;
	}
	return h;
}

/*
 * MurmurHash64A: the 64-bit hash of bloom filters and hot-key tables (the
 * 32-bit hash above collides too often on keys that share long prefixes).
 */
uint64_t
nokv_hash64(const void *key, size_t len, uint64_t seed)
{
	const uint64_t m = 0xc6a4a7935bd1e995ULL;
	const int	r = 47;
	const unsigned char *data = (const unsigned char *) key;
	const unsigned char *end = data + (len & ~(size_t) 7);
	uint64_t	h = seed ^ ((uint64_t) len * m);

	while (data != end)
	{
		uint64_t	k = nokv_get_le64((const char *) data);

		k *= m;
		k ^= k >> r;
		k *= m;
		h ^= k;
		h *= m;
		data += 8;
	}
	switch (len & 7)
	{
		case 7:
			h ^= (uint64_t) data[6] << 48;
			/* fallthrough */
		case 6:
			h ^= (uint64_t) data[5] << 40;
			/* fallthrough */
		case 5:
			h ^= (uint64_t) data[4] << 32;
			/* fallthrough */
		case 4:
			h ^= (uint64_t) data[3] << 24;
			/* fallthrough */
		case 3:
			h ^= (uint64_t) data[2] << 16;
			/* fallthrough */
		case 2:
			h ^= (uint64_t) data[1] << 8;
			/* fallthrough */
		case 1:
			h ^= (uint64_t) data[0];
			h *= m;
	}
	h ^= h >> r;
	h *= m;
	h ^= h >> r;
	return h;
}

/* ---------- memory ---------- */

static void
oom(size_t n)
{
	fprintf(stderr, "nokv: out of memory allocating %zu bytes\n", n);
	abort();
}

void *
nokv_malloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (!p)
		oom(n);
	return p;
}

void *
nokv_calloc(size_t n, size_t sz)
{
	void	   *p = calloc(n ? n : 1, sz ? sz : 1);

	if (!p)
		oom(n * sz);
	return p;
}

void *
nokv_realloc(void *p, size_t n)
{
	void	   *q = realloc(p, n ? n : 1);

	if (!q)
		oom(n);
	return q;
}

char *
nokv_memdup(const void *p, size_t n)
{
	char	   *q = nokv_malloc(n + 1);

	if (n)
		memcpy(q, p, n);
	q[n] = '\0';
	return q;
}

/* ---------- nokv_buf ---------- */

void
nokv_buf_reserve(nokv_buf *b, size_t extra)
{
	size_t		need = b->len + extra;

	if (need <= b->cap)
		return;
	size_t		cap = b->cap ? b->cap : 64;

	while (cap < need)
		cap *= 2;
	b->data = nokv_realloc(b->data, cap);
	b->cap = cap;
}

void
nokv_buf_append(nokv_buf *b, const void *p, size_t n)
{
	nokv_buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

void
nokv_buf_append_varint32(nokv_buf *b, uint32_t v)
{
	nokv_buf_reserve(b, 5);
	b->len = nokv_put_varint32(b->data + b->len, v) - b->data;
}

void
nokv_buf_append_varint64(nokv_buf *b, uint64_t v)
{
	nokv_buf_reserve(b, NOKV_MAX_VARINT64);
	b->len = nokv_put_varint64(b->data + b->len, v) - b->data;
}

void
nokv_buf_append_le32(nokv_buf *b, uint32_t v)
{
	nokv_buf_reserve(b, 4);
	nokv_put_le32(b->data + b->len, v);
	b->len += 4;
}

void
nokv_buf_append_le64(nokv_buf *b, uint64_t v)
{
	nokv_buf_reserve(b, 8);
	nokv_put_le64(b->data + b->len, v);
	b->len += 8;
}

void
nokv_buf_append_lenprefixed(nokv_buf *b, const void *p, size_t n)
{
	nokv_buf_append_varint32(b, (uint32_t) n);
	nokv_buf_append(b, p, n);
}

void
nokv_buf_free(nokv_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
