/*-------------------------------------------------------------------------
 *
 * test_block.c
 *	  Unit tests for SST blocks: building, iteration, framing, table format.
 *
 * Key sets of several shapes (plain sequential keys, one user key with
 * hundreds of versions, empty user keys in several column families, keys
 * up to 60 KiB, random binary keys) are built into blocks with many
 * restart intervals and checked against a sorted array: full forward and
 * backward scans, exact seeks, seeks between keys, "newest visible
 * version" seeks, and mixed next/prev walks.  Framing is checked for both
 * block types and for corruption, and malformed blocks are fed to the
 * iterator to make sure it only ever reports corruption.
 *
 * test/engine/test_block.c
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>

#include "nokv/block.h"
#include "tap.h"

typedef struct kv
{
	char	   *key;
	size_t		klen;
	char	   *val;
	size_t		vlen;
} kv;

typedef struct kvset
{
	kv		   *e;
	int			n;
	int			cap;
} kvset;

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void
kv_add(kvset *s, int cf, const char *ukey, size_t ulen, uint64_t version,
	   int kind, size_t vlen)
{
	kv		   *e;

	if (s->n == s->cap)
	{
		s->cap = s->cap ? s->cap * 2 : 256;
		s->e = realloc(s->e, sizeof(kv) * s->cap);
	}
	e = &s->e[s->n++];
	e->klen = nokv_ikey_size(ulen);
	e->key = malloc(e->klen);
	nokv_ikey_encode(e->key, cf, ukey, ulen, version, kind);
	e->vlen = vlen;
	e->val = malloc(vlen ? vlen : 1);
	for (size_t i = 0; i < vlen; i++)
		e->val[i] = (char) ('a' + (version + i) % 26);
}

static int
kv_cmp(const void *a, const void *b)
{
	const kv   *x = a,
			   *y = b;

	return nokv_ikey_compare(x->key, x->klen, y->key, y->klen);
}

/* sort and drop duplicate internal keys */
static void
kv_sort(kvset *s)
{
	int			j = 0;

	qsort(s->e, s->n, sizeof(kv), kv_cmp);
	for (int i = 0; i < s->n; i++)
	{
		if (j > 0 && kv_cmp(&s->e[j - 1], &s->e[i]) == 0)
		{
			free(s->e[i].key);
			free(s->e[i].val);
			continue;
		}
		s->e[j++] = s->e[i];
	}
	s->n = j;
}

static void
kv_free(kvset *s)
{
	for (int i = 0; i < s->n; i++)
	{
		free(s->e[i].key);
		free(s->e[i].val);
	}
	free(s->e);
	memset(s, 0, sizeof(*s));
}

/* ---------- key shapes ---------- */

static void
shape_sequential(kvset *s)
{
	char		k[32];

	for (int i = 0; i < 2000; i++)
	{
		int			n = snprintf(k, sizeof(k), "key%06d", i);

		kv_add(s, 0, k, n, 100 + i, NOKV_KIND_PUT, (size_t) (i % 50));
	}
}

static void
shape_versions(kvset *s)
{
	/* one user key, many versions, puts and deletes, plus neighbours */
	for (int v = 1; v <= 600; v++)
		kv_add(s, 0, "hot", 3, (uint64_t) v * 3, v % 7 == 0 ? NOKV_KIND_DELETE : NOKV_KIND_PUT,
			   v % 7 == 0 ? 0 : 10);
	kv_add(s, 0, "ho", 2, 5, NOKV_KIND_PUT, 4);
	kv_add(s, 0, "hotter", 6, 5, NOKV_KIND_PUT, 4);
	kv_add(s, 0, "hot", 3, NOKV_VERSION_MAX - 1, NOKV_KIND_PUT, 1);
	kv_add(s, 0, "hot", 3, 0, NOKV_KIND_PUT, 1);
}

static void
shape_empty_keys(kvset *s)
{
	for (int cf = 0; cf < 3; cf++)
		for (int v = 1; v <= 40; v++)
		{
			kv_add(s, cf, "", 0, (uint64_t) v, NOKV_KIND_PUT, (size_t) v);
			kv_add(s, cf, "\0", 1, (uint64_t) v, NOKV_KIND_DELETE, 0);
			kv_add(s, cf, "\xff", 1, (uint64_t) v, NOKV_KIND_PUT, 3);
		}
}

static void
shape_big_keys(kvset *s)
{
	size_t		sizes[] = {200, 1000, 4095, 4096, 20000, 60 * 1024};
	char	   *buf = malloc(60 * 1024 + 1);

	for (int i = 0; i < (int) (sizeof(sizes) / sizeof(sizes[0])); i++)
	{
		/* long shared prefixes stress the key reconstruction */
		memset(buf, 'x', sizes[i]);
		buf[sizes[i] - 1] = (char) ('a' + i);
		kv_add(s, 1, buf, sizes[i], 7, NOKV_KIND_PUT, 100);
		kv_add(s, 1, buf, sizes[i], 6, NOKV_KIND_PUT, 5000);
		buf[sizes[i] / 2] = 'y';
		kv_add(s, 1, buf, sizes[i], 9, NOKV_KIND_DELETE, 0);
	}
	free(buf);
}

static void
shape_random(kvset *s)
{
	char		k[40];

	for (int i = 0; i < 3000; i++)
	{
		size_t		n = rnd() % 24;

		for (size_t j = 0; j < n; j++)
			k[j] = j < 3 ? "abc"[j] : (char) (rnd() % 4);
		kv_add(s, (int) (rnd() % 3), k, n, rnd() % 1000,
			   rnd() % 2 ? NOKV_KIND_PUT : NOKV_KIND_DELETE, rnd() % 64);
	}
}

/* ---------- checks ---------- */

static bool
same_entry(nokv_block_iter *it, const kv *e)
{
	size_t		klen,
				vlen;
	const char *k = nokv_block_iter_key(it, &klen);
	const char *v = nokv_block_iter_value(it, &vlen);

	return nokv_block_iter_valid(it) && klen == e->klen &&
		memcmp(k, e->key, klen) == 0 && vlen == e->vlen &&
		(vlen == 0 || memcmp(v, e->val, vlen) == 0);
}

/* first index i with e[i] >= key */
static int
lower_bound(const kvset *s, const char *key, size_t klen)
{
	int			lo = 0,
				hi = s->n;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (nokv_ikey_compare(s->e[mid].key, s->e[mid].klen, key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
check_block(const char *shape, const kvset *s, int interval)
{
	nokv_block_builder b;
	nokv_block_iter it;
	const char *data;
	size_t		len;
	int			i,
				bad;
	char	   *copy;

	nokv_block_builder_init(&b, interval);
	for (i = 0; i < s->n; i++)
		nokv_block_builder_add(&b, s->e[i].key, s->e[i].klen, s->e[i].val, s->e[i].vlen);
	data = nokv_block_builder_finish(&b, &len);
	/* iterate over a private copy so that ASan catches reads past the end */
	copy = malloc(len);
	memcpy(copy, data, len);

	nokv_block_iter_init(&it);
	ok(nokv_block_iter_set(&it, copy, len), "%s/%d: block accepted", shape, interval);
	ok(nokv_block_check(copy, len), "%s/%d: block passes the structural check", shape, interval);

	/* forward */
	bad = 0;
	nokv_block_iter_seek_to_first(&it);
	for (i = 0; i < s->n; i++, nokv_block_iter_next(&it))
		if (!same_entry(&it, &s->e[i]))
			bad++;
	ok(bad == 0 && !nokv_block_iter_valid(&it) && !it.corrupt,
	   "%s/%d: forward scan of %d entries", shape, interval, s->n);

	/* backward */
	bad = 0;
	nokv_block_iter_seek_to_last(&it);
	for (i = s->n - 1; i >= 0; i--, nokv_block_iter_prev(&it))
		if (!same_entry(&it, &s->e[i]))
			bad++;
	ok(bad == 0 && !nokv_block_iter_valid(&it) && !it.corrupt,
	   "%s/%d: backward scan", shape, interval);

	/* exact seeks, and seeks just after each key (its kind + 1) */
	bad = 0;
	for (i = 0; i < s->n; i++)
	{
		char	   *k = malloc(s->e[i].klen);
		int			want;

		nokv_block_iter_seek(&it, s->e[i].key, s->e[i].klen);
		if (!same_entry(&it, &s->e[i]))
			bad++;
		memcpy(k, s->e[i].key, s->e[i].klen);
		k[s->e[i].klen - 1] = NOKV_KIND_MAX + 1;
		want = lower_bound(s, k, s->e[i].klen);
		nokv_block_iter_seek(&it, k, s->e[i].klen);
		if (want == s->n ? nokv_block_iter_valid(&it) : !same_entry(&it, &s->e[want]))
			bad++;
		/* newest visible version at this entry's version */
		{
			nokv_ikey_view v = {0};

			nokv_ikey_parse(s->e[i].key, s->e[i].klen, &v);
			nokv_ikey_encode(k, v.cf, v.ukey, v.ukey_len, v.version, NOKV_KIND_SEEK);
			want = lower_bound(s, k, s->e[i].klen);
			nokv_block_iter_seek(&it, k, s->e[i].klen);
			if (!same_entry(&it, &s->e[want]))
				bad++;
		}
		free(k);
	}
	ok(bad == 0, "%s/%d: seeks (%d mismatches)", shape, interval, bad);

	/* seek before everything and after everything */
	{
		char		lo[10],
					hi[10 + 3];

		nokv_ikey_encode(lo, 0, "", 0, NOKV_VERSION_MAX, NOKV_KIND_SEEK);
		nokv_block_iter_seek(&it, lo, sizeof(lo));
		ok(same_entry(&it, &s->e[0]), "%s/%d: seek below first", shape, interval);
		nokv_ikey_encode(hi, 255, "\xff\xff\xff", 3, 0, NOKV_KIND_MAX);
		nokv_block_iter_seek(&it, hi, sizeof(hi));
		ok(!nokv_block_iter_valid(&it) && !it.corrupt, "%s/%d: seek past last",
		   shape, interval);
	}

	/* random walks mixing next and prev */
	bad = 0;
	for (int walk = 0; walk < 20; walk++)
	{
		int			pos = (int) (rnd() % s->n);

		nokv_block_iter_seek(&it, s->e[pos].key, s->e[pos].klen);
		for (int step = 0; step < 200; step++)
		{
			if (rnd() % 2)
			{
				nokv_block_iter_next(&it);
				pos++;
			}
			else
			{
				nokv_block_iter_prev(&it);
				pos--;
			}
			if (pos < 0 || pos >= s->n)
			{
				if (nokv_block_iter_valid(&it))
					bad++;
				break;
			}
			if (!same_entry(&it, &s->e[pos]))
			{
				bad++;
				break;
			}
		}
	}
	ok(bad == 0, "%s/%d: mixed next/prev walks", shape, interval);

	nokv_block_iter_free(&it);
	free(copy);
	nokv_block_builder_free(&b);
}

static void
test_shapes(void)
{
	struct
	{
		const char *name;
		void		(*fill) (kvset *);
	}			shapes[] = {
		{"sequential", shape_sequential},
		{"versions", shape_versions},
		{"empty-keys", shape_empty_keys},
		{"big-keys", shape_big_keys},
		{"random", shape_random},
	};
	int			intervals[] = {1, 2, 3, 7, 16, 128, 100000};

	for (int i = 0; i < (int) (sizeof(shapes) / sizeof(shapes[0])); i++)
	{
		kvset		s = {0};

		shapes[i].fill(&s);
		kv_sort(&s);
		for (int j = 0; j < (int) (sizeof(intervals) / sizeof(intervals[0])); j++)
			check_block(shapes[i].name, &s, intervals[j]);
		kv_free(&s);
	}
}

static void
test_builder_reset_and_single(void)
{
	nokv_block_builder b;
	nokv_block_iter it;
	const char *data;
	size_t		len;
	char		k[12];

	nokv_block_builder_init(&b, 16);
	ok(nokv_block_builder_empty(&b), "new builder is empty");
	data = nokv_block_builder_finish(&b, &len);
	is_int(len, 8, "empty block is one restart point and the count");

	nokv_block_iter_init(&it);
	ok(nokv_block_iter_set(&it, data, len), "empty block accepted");
	nokv_block_iter_seek_to_first(&it);
	ok(!nokv_block_iter_valid(&it) && !it.corrupt, "empty block has no entries");
	nokv_block_iter_seek_to_last(&it);
	ok(!nokv_block_iter_valid(&it), "empty block: seek_to_last invalid");

	nokv_block_builder_reset(&b);
	nokv_ikey_encode(k, 2, "ab", 2, 5, NOKV_KIND_PUT);
	nokv_block_builder_add(&b, k, sizeof(k), "v", 1);
	ok(!nokv_block_builder_empty(&b), "builder has an entry");
	data = nokv_block_builder_finish(&b, &len);
	ok(nokv_block_iter_set(&it, data, len), "one-entry block accepted");
	nokv_block_iter_seek_to_last(&it);
	ok(nokv_block_iter_valid(&it), "one-entry block: last is valid");
	nokv_block_iter_prev(&it);
	ok(!nokv_block_iter_valid(&it) && !it.corrupt, "prev from the only entry ends");
	nokv_block_iter_free(&it);
	nokv_block_builder_free(&b);
}

/* ---------- framing ---------- */

static void
test_framing(void)
{
	nokv_buf	out = {0};
	char	   *raw = malloc(8192);
	const char *contents;
	size_t		len,
				size;
	char	   *owned;
	nokv_error	err;
	int			rc;

	/* compressible */
	for (int i = 0; i < 8192; i++)
		raw[i] = (char) ("abcdefgh"[i % 8] + (i / 1024));
	size = nokv_block_frame(&out, raw, 8192, true);
	is_int(out.len, size + NOKV_BLOCK_TRAILER_SIZE, "framed size = payload + trailer");
	is_int((unsigned char) out.data[size], NOKV_BLOCK_TYPE_LZ4, "compressible block is lz4");
	ok(size < 8192 - 8192 / 8, "lz4 block saves at least an eighth");
	rc = nokv_block_unframe(out.data, size, &contents, &len, &owned, "data", 0, "x", &err);
	ok(rc == NOKV_OK && len == 8192 && memcmp(contents, raw, len) == 0 && owned == contents,
	   "lz4 block round trip");
	free(owned);

	/* same block with compression off */
	nokv_buf_reset(&out);
	size = nokv_block_frame(&out, raw, 8192, false);
	is_int((unsigned char) out.data[size], NOKV_BLOCK_TYPE_RAW, "compression off: raw");
	rc = nokv_block_unframe(out.data, size, &contents, &len, &owned, "data", 0, "x", &err);
	ok(rc == NOKV_OK && len == 8192 && contents == out.data && owned == NULL,
	   "raw block round trip points into the input");

	/* incompressible */
	for (int i = 0; i < 8192; i++)
		raw[i] = (char) rnd();
	nokv_buf_reset(&out);
	size = nokv_block_frame(&out, raw, 8192, true);
	is_int((unsigned char) out.data[size], NOKV_BLOCK_TYPE_RAW, "random block stays raw");
	is_int(size, 8192, "raw payload is the contents");

	/* tiny and empty blocks */
	nokv_buf_reset(&out);
	size = nokv_block_frame(&out, raw, 0, true);
	rc = nokv_block_unframe(out.data, size, &contents, &len, &owned, "data", 0, "x", &err);
	ok(rc == NOKV_OK && len == 0, "empty block round trip");

	/* every single-byte flip of a framed lz4 block is caught */
	{
		int			missed = 0;

		for (int i = 0; i < 8192; i++)
			raw[i] = (char) ("abcdefgh"[i % 8]);
		nokv_buf_reset(&out);
		size = nokv_block_frame(&out, raw, 8192, true);
		for (size_t i = 0; i < out.len; i++)
		{
			out.data[i] ^= 0x10;
			rc = nokv_block_unframe(out.data, size, &contents, &len, &owned,
									"data", 4096, "/x/000001.sst", &err);
			if (rc != NOKV_CORRUPTION)
				missed++;
			if (rc == NOKV_OK)
				free(owned);
			out.data[i] ^= 0x10;
		}
		is_int(missed, 0, "every byte flip in a framed block is detected");
		rc = nokv_block_unframe(out.data, size, &contents, &len, &owned,
								"data", 4096, "/x/000001.sst", &err);
		ok(rc == NOKV_OK, "unflipped block still fine");
		free(owned);
		out.data[3] ^= 1;
		nokv_block_unframe(out.data, size, &contents, &len, &owned, "data", 4096,
						   "/x/000001.sst", &err);
		is_str(err.msg, "checksum mismatch in data block at offset 4096 of /x/000001.sst",
			   "corruption message names block, offset and file");
	}

	/* valid checksums over bad contents: unknown type, bad lz4, lying length */
	{
		char		blk[64];
		size_t		n;
		char	   *p;
		uint32_t	crc;

#define SEAL(type_) do { \
			blk[n] = (char) (type_); \
			crc = nokv_crc32c_extend(nokv_crc32c(blk, n), blk + n, 1); \
			nokv_put_le32(blk + n + 1, nokv_crc_mask(crc)); \
		} while (0)

		memset(blk, 'q', sizeof(blk));
		n = 20;
		SEAL(7);
		rc = nokv_block_unframe(blk, n, &contents, &len, &owned, "index", 0, "x", &err);
		ok(rc == NOKV_CORRUPTION && strstr(err.msg, "unknown block type 7"),
		   "unknown block type is corruption");

		p = nokv_put_varint32(blk, 1000);
		memset(p, 0xee, 20);
		n = (size_t) (p - blk) + 20;
		SEAL(NOKV_BLOCK_TYPE_LZ4);
		rc = nokv_block_unframe(blk, n, &contents, &len, &owned, "data", 0, "x", &err);
		ok(rc == NOKV_CORRUPTION, "garbage lz4 payload is corruption");

		p = nokv_put_varint32(blk, 0x7fffffff);
		n = (size_t) (p - blk) + 4;
		SEAL(NOKV_BLOCK_TYPE_LZ4);
		rc = nokv_block_unframe(blk, n, &contents, &len, &owned, "data", 0, "x", &err);
		ok(rc == NOKV_CORRUPTION, "absurd uncompressed length is corruption");

		/* a real lz4 payload announcing one byte more than it holds */
		{
			char		src[200];
			char		dst[LZ4_COMPRESSBOUND(200)];
			int			c;

			memset(src, 'z', sizeof(src));
			c = LZ4_compress_default(src, dst, 200, sizeof(dst));
			p = nokv_put_varint32(blk, 201);
			if (c > 0 && (size_t) c + 5 + 5 <= sizeof(blk))
			{
				memcpy(p, dst, c);
				n = (size_t) (p - blk) + c;
				SEAL(NOKV_BLOCK_TYPE_LZ4);
				rc = nokv_block_unframe(blk, n, &contents, &len, &owned, "data", 0, "x", &err);
				ok(rc == NOKV_CORRUPTION, "lz4 length mismatch is corruption");
			}
			else
				ok(0, "could not build the lz4 length test");
		}
#undef SEAL
	}

	nokv_buf_free(&out);
	free(raw);
}

/* ---------- malformed blocks ---------- */

static void
test_malformed(void)
{
	nokv_block_iter it;
	char		blk[512];
	int			crashes_avoided = 0;

	nokv_block_iter_init(&it);

	ok(!nokv_block_iter_set(&it, blk, 3), "block shorter than the count is rejected");
	nokv_put_le32(blk + 60, 1000);
	ok(!nokv_block_iter_set(&it, blk, 64), "restart count beyond the block is rejected");
	nokv_block_iter_seek_to_first(&it);
	ok(!nokv_block_iter_valid(&it), "rejected block iterates nothing");

	/* entry whose value runs past the entries */
	{
		char	   *p = blk;

		p = nokv_put_varint32(p, 0);
		p = nokv_put_varint32(p, 10);
		p = nokv_put_varint32(p, 200);
		memset(p, 'k', 10);
		p += 10;
		nokv_put_le32(p, 0);
		nokv_put_le32(p + 4, 1);
		ok(nokv_block_iter_set(&it, blk, (size_t) (p + 8 - blk)), "header accepted");
		nokv_block_iter_seek_to_first(&it);
		ok(!nokv_block_iter_valid(&it) && it.corrupt, "overlong value is corruption");
	}

	/* key shorter than an internal-key trailer */
	{
		char	   *p = blk;

		p = nokv_put_varint32(p, 0);
		p = nokv_put_varint32(p, 4);
		p = nokv_put_varint32(p, 0);
		memcpy(p, "abcd", 4);
		p += 4;
		nokv_put_le32(p, 0);
		nokv_put_le32(p + 4, 1);
		nokv_block_iter_set(&it, blk, (size_t) (p + 8 - blk));
		nokv_block_iter_seek_to_first(&it);
		ok(!nokv_block_iter_valid(&it) && it.corrupt, "short key is corruption");
	}

	/* restart point past the entries */
	{
		char		k[12];
		char	   *p = blk;

		nokv_ikey_encode(k, 0, "ab", 2, 1, NOKV_KIND_PUT);
		p = nokv_put_varint32(p, 0);
		p = nokv_put_varint32(p, sizeof(k));
		p = nokv_put_varint32(p, 0);
		memcpy(p, k, sizeof(k));
		p += sizeof(k);
		nokv_put_le32(p, 0);
		nokv_put_le32(p + 4, 400);
		nokv_put_le32(p + 8, 2);
		nokv_block_iter_set(&it, blk, (size_t) (p + 12 - blk));
		nokv_block_iter_seek(&it, k, sizeof(k));
		ok(!nokv_block_iter_valid(&it) && it.corrupt, "bad restart offset is corruption");
		nokv_block_iter_set(&it, blk, (size_t) (p + 12 - blk));
		nokv_block_iter_seek_to_last(&it);
		ok(!nokv_block_iter_valid(&it) && it.corrupt, "bad last restart is corruption");
	}

	/* structural check: restart arrays that seeks would trip over */
	{
		nokv_block_builder b;
		const char *data;
		size_t		len;
		char	   *copy;
		char		k[14];

		nokv_block_builder_init(&b, 2);
		for (int i = 0; i < 6; i++)
		{
			char		u[4] = {'k', 'e', 'y', (char) ('a' + i)};

			nokv_ikey_encode(k, 0, u, 4, 1, NOKV_KIND_PUT);
			nokv_block_builder_add(&b, k, sizeof(k), "v", 1);
		}
		data = nokv_block_builder_finish(&b, &len);
		copy = malloc(len);
		memcpy(copy, data, len);
		ok(nokv_block_check(copy, len), "well-formed block passes the check");
		/* restarts are at entries 0, 2, 4: swap the last two */
		{
			uint32_t	r1 = nokv_get_le32(copy + len - 12),
						r2 = nokv_get_le32(copy + len - 8);

			nokv_put_le32(copy + len - 12, r2);
			nokv_put_le32(copy + len - 8, r1);
			ok(!nokv_block_check(copy, len), "unsorted restart array fails the check");
			nokv_put_le32(copy + len - 12, r1);
			nokv_put_le32(copy + len - 8, r2 + 1);
			ok(!nokv_block_check(copy, len), "restart into the middle of an entry fails");
			nokv_put_le32(copy + len - 8, r2 + 0);
			nokv_put_le32(copy + len - 12, 18);	/* entry 1: 3 + 14 + 1 bytes in */
			ok(!nokv_block_check(copy, len), "restart at a prefix-compressed entry fails");
			nokv_put_le32(copy + len - 12, r1);
			nokv_put_le32(copy + len - 16, 3);
			ok(!nokv_block_check(copy, len), "first restart not at 0 fails");
		}
		free(copy);
		nokv_block_builder_free(&b);
	}

	/* random garbage: only bounds matter here (ASan / UBSan watch) */
	for (int round = 0; round < 20000; round++)
	{
		size_t		n = 4 + rnd() % (sizeof(blk) - 4);
		char	   *copy;
		char		target[20];

		for (size_t i = 0; i < n; i++)
			blk[i] = (char) (rnd() % 4 == 0 ? rnd() % 3 : rnd());
		nokv_put_le32(blk + n - 4, (uint32_t) (rnd() % 6));
		copy = malloc(n);
		memcpy(copy, blk, n);
		nokv_block_iter_set(&it, copy, n);
		nokv_ikey_encode(target, 0, "abcdefghij", 10, rnd(), NOKV_KIND_PUT);
		switch (round % 3)
		{
			case 0:
				nokv_block_iter_seek_to_first(&it);
				for (int s = 0; s < 50 && nokv_block_iter_valid(&it); s++)
					nokv_block_iter_next(&it);
				break;
			case 1:
				nokv_block_iter_seek_to_last(&it);
				for (int s = 0; s < 50 && nokv_block_iter_valid(&it); s++)
					nokv_block_iter_prev(&it);
				break;
			default:
				nokv_block_iter_seek(&it, target, sizeof(target));
				for (int s = 0; s < 50 && nokv_block_iter_valid(&it); s++)
					(rnd() % 2) ? nokv_block_iter_next(&it) : nokv_block_iter_prev(&it);
				break;
		}
		free(copy);
		crashes_avoided++;
	}
	is_int(crashes_avoided, 20000, "random garbage blocks iterate safely");
	nokv_block_iter_free(&it);
}

/* ---------- table format helpers ---------- */

static void
test_handles_footer_props(void)
{
	char		buf[64];
	char	   *end;
	nokv_block_handle h = {.offset = 1234567890123ULL, .size = 4096},
				g;
	nokv_sst_footer f = {0},
				d;
	nokv_error	err;
	uint64_t	fsize;

	end = nokv_block_handle_encode(buf, &h);
	ok(nokv_block_handle_decode(buf, end, &g) == end && g.offset == h.offset &&
	   g.size == h.size, "block handle round trip");
	ok(nokv_block_handle_decode(buf, end - 1, &g) == NULL, "truncated handle rejected");

	f.version = 1;
	f.meta_offset = 10000;
	f.filter_size = 100;
	f.rangedel_size = 0;
	f.props_size = 50;
	f.index_size = 30;
	fsize = 10000 + 105 + 55 + 35 + NOKV_SST_FOOTER_SIZE;
	nokv_sst_footer_encode(buf, &f);
	ok(memcmp(buf + 40, "NOKVSST1", 8) == 0, "footer ends with the magic");
	is_int(nokv_sst_footer_decode(buf, fsize, &d, "f", &err), NOKV_OK, "footer decodes");
	ok(d.filter.offset == 10000 && d.rangedel.size == 0 && d.props.offset == 10105 &&
	   d.index.offset == 10160 && d.index.size == 30, "footer layout derived");
	is_int(nokv_sst_footer_decode(buf, fsize + 1, &d, "f", &err), NOKV_CORRUPTION,
		   "footer with a gap before it is corruption");
	is_int(d.version, 1, "version 1 decodes as version 1");

	/* version 2: the partition area carries its blocks' trailers itself */
	f.version = 2;
	fsize = 10000 + 100 + 55 + 35 + NOKV_SST_FOOTER_SIZE;
	nokv_sst_footer_encode(buf, &f);
	is_int(nokv_sst_footer_decode(buf, fsize, &d, "f", &err), NOKV_OK, "version 2 footer decodes");
	ok(d.version == 2 && d.filter.offset == 10000 && d.filter.size == 100 &&
	   d.props.offset == 10100 && d.index.offset == 10155, "version 2 layout derived");

	buf[24] = 3;
	is_int(nokv_sst_footer_decode(buf, fsize, &d, "f", &err), NOKV_CORRUPTION,
		   "changed version fails the footer checksum");
	nokv_put_le32(buf + 36, nokv_crc_mask(nokv_crc32c(buf, 36)));
	is_int(nokv_sst_footer_decode(buf, fsize, &d, "f", &err), NOKV_CORRUPTION,
		   "unsupported version is corruption");
	ok(strstr(err.msg, "version 3") != NULL, "message names the version");

	/* properties */
	{
		nokv_sst_props p = {0},
					q;
		nokv_buf	out = {0};
		char		lo[12],
					hi[12];

		nokv_ikey_encode(lo, 0, "aa", 2, 9, NOKV_KIND_PUT);
		nokv_ikey_encode(hi, 0, "zz", 2, 1, NOKV_KIND_DELETE);
		p.entries = 1000000;
		p.deletions = 12;
		p.range_deletions = 3;
		p.raw_key_bytes = 1ULL << 40;
		p.raw_value_bytes = 5;
		p.data_blocks = 77;
		p.min_version = 1;
		p.max_version = UINT64_MAX;
		p.smallest = lo;
		p.smallest_len = sizeof(lo);
		p.largest = hi;
		p.largest_len = sizeof(hi);
		nokv_sst_props_encode(&out, &p);
		/* an unknown field from the future is skipped */
		nokv_buf_append_varint32(&out, (99 << 1) | 1);
		nokv_buf_append_lenprefixed(&out, "future", 6);
		nokv_buf_append_varint32(&out, 98 << 1);
		nokv_buf_append_varint64(&out, 42);
		is_int(nokv_sst_props_decode(out.data, out.len, &q, "f", 0, &err), NOKV_OK,
			   "props decode");
		ok(q.entries == p.entries && q.deletions == 12 && q.range_deletions == 3 &&
		   q.raw_key_bytes == p.raw_key_bytes && q.raw_value_bytes == 5 &&
		   q.data_blocks == 77 && q.min_version == 1 && q.max_version == UINT64_MAX &&
		   q.smallest_len == sizeof(lo) && memcmp(q.smallest, lo, sizeof(lo)) == 0 &&
		   q.largest_len == sizeof(hi) && memcmp(q.largest, hi, sizeof(hi)) == 0,
		   "props round trip");
		nokv_sst_props_free(&q);

		is_int(nokv_sst_props_decode(out.data, out.len - 1, &q, "f", 0, &err),
			   NOKV_CORRUPTION, "truncated props are corruption");
		/* smallest > largest */
		nokv_buf_reset(&out);
		p.smallest = hi;
		p.largest = lo;
		nokv_sst_props_encode(&out, &p);
		is_int(nokv_sst_props_decode(out.data, out.len, &q, "f", 0, &err),
			   NOKV_CORRUPTION, "inverted key range is corruption");
		/* entries but no keys */
		nokv_buf_reset(&out);
		p.smallest_len = p.largest_len = 0;
		nokv_sst_props_encode(&out, &p);
		is_int(nokv_sst_props_decode(out.data, out.len, &q, "f", 0, &err),
			   NOKV_CORRUPTION, "missing key range is corruption");
		nokv_buf_free(&out);
	}

	/* range tombstones */
	{
		nokv_range_tombstone t[2] = {
			{.cf = 1, .start = "a", .start_len = 1, .end = "m", .end_len = 1, .version = 7},
			{.cf = 2, .start = "", .start_len = 0, .end = "zz", .end_len = 2, .version = UINT64_MAX},
		};
		nokv_range_tombstone r;
		nokv_buf	out = {0};
		const char *p;
		uint32_t	n;

		nokv_sst_rangedel_encode(&out, t, 2);
		p = nokv_get_varint32(out.data, out.data + out.len, &n);
		is_int(n, 2, "rangedel count");
		p = nokv_sst_rangedel_next(p, out.data + out.len, &r);
		ok(p && r.cf == 1 && r.start_len == 1 && r.start[0] == 'a' && r.end[0] == 'm' &&
		   r.version == 7, "first tombstone");
		p = nokv_sst_rangedel_next(p, out.data + out.len, &r);
		ok(p == out.data + out.len && r.cf == 2 && r.start_len == 0 && r.end_len == 2 &&
		   r.version == UINT64_MAX, "second tombstone");
		ok(nokv_sst_rangedel_next(out.data + 1, out.data + 10, &r) == NULL,
		   "truncated tombstone rejected");
		ok(nokv_sst_rangedel_next(p, out.data + out.len, &r) == NULL, "end of block");
		ok(nokv_sst_tombstone_compare(&t[0], &t[1]) < 0, "tombstones order by cf first");
		nokv_buf_free(&out);
	}
}

int
main(void)
{
	test_shapes();
	test_builder_reset_and_single();
	test_framing();
	test_malformed();
	test_handles_footer_props();
	return tap_done();
}
