/*-------------------------------------------------------------------------
 *
 * fuzz_sst.c
 *	  libFuzzer target for the SST reader.
 *
 * The first input byte selects a mode, the rest is a table image that is
 * written to a scratch file and opened with nokv_sst_open_path (the real
 * file path, no in-memory shortcut):
 *
 *	bit 0	repair checksums first: the footer's CRC and magic, the trailer
 *			of every meta block the footer describes, and the trailer of
 *			every data block the (repaired) index points at.  Without this
 *			nearly every mutation dies at a checksum; with it mutations
 *			reach the block, index, filter, tombstone and property decoders.
 *	bit 1	read through a 1 MiB shared block cache (else no cache).
 *
 * The table is then used every way there is: forward and backward scans,
 * seeks, point lookups, tombstone queries and nokv_sst_verify.  Besides
 * memory safety (ASan/UBSan) the target checks that failures are only ever
 * NOKV_CORRUPTION, and that a table which passes verification finds every
 * entry its iterator returned.  After each input the reader is closed and
 * the file's cache entries erased, so the cache must end up empty.
 *
 * Seeds (test/fuzz/seeds/sst/) are small tables written by test_sst with
 * NOKV_SST_SEED_DIR set, prefixed with the mode byte.
 *
 * test/fuzz/fuzz_sst.c
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nokv/block.h"
#include "nokv/cache.h"
#include "nokv/platform.h"
#include "nokv/region.h"
#include "nokv/sst.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FILE_NUMBER		1
#define MAX_STEPS		20000
#define MAX_KEYS		32

static char *region_mem;
static nokv_platform plat;
static nokv_ctx ctx;
static nokv_off cache_off;
static char scratch_path[4096];
static int	scratch_fd = -1;

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_sst invariant violated: %s\n", what);
	abort();
}

static void
cleanup(void)
{
	if (scratch_fd >= 0)
	{
		close(scratch_fd);
		unlink(scratch_path);
		scratch_fd = -1;
	}
}

static void
setup(void)
{
	size_t		p = NOKV_ALIGN(nokv_pthread_platform_size(), 64);
	size_t		c = NOKV_ALIGN(nokv_cache_shared_size(), 64);
	size_t		heap = 8 << 20;
	const char *tmp = getenv("TMPDIR");

	region_mem = aligned_alloc(64, 64 + p + c + heap);
	memset(region_mem, 0, 64 + p + c + heap);
	nokv_pthread_platform_format(region_mem + 64);
	nokv_pthread_platform_bind(&plat, region_mem + 64);
	ctx.base = region_mem;
	ctx.plat = &plat;
	cache_off = 64 + p;
	ctx.heap = cache_off + c;
	nokv_heap_format(&ctx, ctx.heap, heap);
	nokv_cache_format(&ctx, cache_off, 1 << 20);

	snprintf(scratch_path, sizeof(scratch_path), "%s/nokv-fuzz-sst-XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
	scratch_fd = mkstemp(scratch_path);
	if (scratch_fd < 0)
		fail("cannot create the scratch file");
	atexit(cleanup);
}

static void
put_image(const char *img, size_t len)
{
	if (ftruncate(scratch_fd, 0) != 0 ||
		(len > 0 && pwrite(scratch_fd, img, len, 0) != (ssize_t) len))
		fail("cannot write the scratch file");
}

/* ---------- checksum repair ---------- */

static void
seal_block(char *img, uint64_t size, uint64_t offset, uint64_t payload)
{
	char	   *p;
	uint32_t	crc;

	if (offset > size || payload > size - offset ||
		size - offset - payload < NOKV_BLOCK_TRAILER_SIZE)
		return;
	p = img + offset;
	crc = nokv_crc32c_extend(nokv_crc32c(p, payload), p + payload, 1);
	nokv_put_le32(p + payload + 1, nokv_crc_mask(crc));
}

/* seal the blocks an index block names; partitions: also their filters */
static void
seal_named(char *img, size_t size, const nokv_sst_footer *f, uint64_t offset,
		   uint64_t payload, bool top)
{
	const char *contents;
	size_t		len;
	char	   *owned;
	nokv_block_iter it;

	seal_block(img, size, offset, payload);
	if (offset > size || payload > size - offset ||
		size - offset - payload < NOKV_BLOCK_TRAILER_SIZE ||
		nokv_block_unframe(img + offset, payload, &contents, &len, &owned,
						   "index", offset, "fuzz", NULL) != NOKV_OK)
		return;
	nokv_block_iter_init(&it);
	nokv_block_iter_set(&it, contents, len);
	nokv_block_iter_seek_to_first(&it);
	for (int n = 0; n < MAX_STEPS && nokv_block_iter_valid(&it); n++)
	{
		nokv_block_handle h,
					fh;
		size_t		vlen;
		const char *v = nokv_block_iter_value(&it, &vlen);
		const char *q = nokv_block_handle_decode(v, v + vlen, &h);

		if (top)
		{
			/* a partition: its filter, then its index and the data blocks */
			if (q != NULL && nokv_block_handle_decode(q, v + vlen, &fh) != NULL)
			{
				if (fh.size)
					seal_block(img, size, fh.offset, fh.size);
				seal_named(img, size, f, h.offset, h.size, false);
			}
		}
		else if (q != NULL &&
				 h.offset <= f->meta_offset && h.size <= f->meta_offset - h.offset &&
				 f->meta_offset - h.offset - h.size >= NOKV_BLOCK_TRAILER_SIZE)
			seal_block(img, size, h.offset, h.size);
		nokv_block_iter_next(&it);
	}
	nokv_block_iter_free(&it);
	free(owned);
}

static void
repair(char *img, size_t size)
{
	char	   *foot;
	nokv_sst_footer f;

	if (size < NOKV_SST_FOOTER_SIZE)
		return;
	foot = img + size - NOKV_SST_FOOTER_SIZE;
	memcpy(foot + 40, NOKV_SST_MAGIC, 8);
	nokv_put_le32(foot + 36, nokv_crc_mask(nokv_crc32c(foot, 36)));
	if (nokv_sst_footer_decode(foot, size, &f, "fuzz", NULL) != NOKV_OK)
		return;
	if (f.version < 2 && f.filter_size)
		seal_block(img, size, f.filter.offset, f.filter.size);
	if (f.rangedel_size)
		seal_block(img, size, f.rangedel.offset, f.rangedel.size);
	seal_block(img, size, f.props.offset, f.props.size);
	seal_named(img, size, &f, f.index.offset, f.index.size, f.version >= 2);
}

/* ---------- exercising a reader ---------- */

typedef struct seen
{
	char	   *key[MAX_KEYS];
	size_t		len[MAX_KEYS];
	int			n;
} seen;

static void
remember(seen *s, const char *k, size_t len)
{
	if (s->n < MAX_KEYS)
	{
		s->key[s->n] = malloc(len);
		memcpy(s->key[s->n], k, len);
		s->len[s->n++] = len;
	}
}

static void
check_status(int rc)
{
	if (rc != NOKV_OK && rc != NOKV_CORRUPTION)
		fail("an operation failed with a code other than corruption");
}

static int
scan(nokv_sst_reader *r, seen *s, bool forward, uint64_t *count)
{
	nokv_iiter *it = nokv_sst_iter_new(r);
	int			rc;
	uint64_t	n = 0;

	if (forward)
		nokv_iiter_seek_to_first(it);
	else
		nokv_iiter_seek_to_last(it);
	for (; n < MAX_STEPS && nokv_iiter_valid(it); n++)
	{
		size_t		klen,
					vlen;
		const char *k = nokv_iiter_key(it, &klen);
		const char *v = nokv_iiter_value(it, &vlen);

		if (klen < NOKV_IKEY_TRAILER + 1 || (vlen > 0 && v == NULL))
			fail("iterator returned a malformed key");
		if (s && (n < MAX_KEYS / 2 || n % 97 == 0))
			remember(s, k, klen);
		if (forward)
			nokv_iiter_next(it);
		else
			nokv_iiter_prev(it);
	}
	rc = nokv_iiter_status(it, NULL);
	check_status(rc);
	nokv_iiter_destroy(it);
	*count = n;
	return rc;
}

static void
exercise(nokv_sst_reader *r)
{
	seen		s = {0};
	uint64_t	fwd = 0,
				bwd = 0;
	int			scan_rc,
				verify_rc;
	nokv_buf	val = {0};
	nokv_range_tombstone *ts;
	int			nts;
	nokv_iiter *it;

	/*
	 * Damaged tables may iterate inconsistently; a verified one (keys in
	 * order, index consistent, counts match) must not.
	 */
	verify_rc = nokv_sst_verify(r, NULL);
	check_status(verify_rc);
	scan_rc = scan(r, &s, true, &fwd);
	if (scan(r, NULL, false, &bwd) == NOKV_OK && scan_rc == NOKV_OK &&
		verify_rc == NOKV_OK && fwd < MAX_STEPS && bwd != fwd)
		fail("forward and backward scans of a verified table disagree");

	/* seeks to seen keys, with a few steps each way */
	it = nokv_sst_iter_new(r);
	for (int i = 0; i < s.n; i++)
	{
		nokv_iiter_seek(it, s.key[i], s.len[i]);
		if (verify_rc == NOKV_OK && nokv_iiter_status(it, NULL) == NOKV_OK &&
			!nokv_iiter_valid(it))
			fail("seek in a verified table to a key it returned found nothing");
		nokv_iiter_next(it);
		nokv_iiter_prev(it);
		nokv_iiter_prev(it);
	}
	nokv_iiter_seek(it, "\0\0\0\0\0\0\0\0\0\0", 10);
	check_status(nokv_iiter_status(it, NULL));
	nokv_iiter_destroy(it);

	/* point lookups of the seen keys (and their neighbours' versions) */
	for (int i = 0; i < s.n; i++)
	{
		nokv_ikey_view v;
		int			kind;
		uint64_t	version;
		int			rc;

		if (!nokv_ikey_parse(s.key[i], s.len[i], &v))
			fail("seen key is not an internal key");
		rc = nokv_sst_get(r, v.lkey, v.lkey_len, v.version, &kind, &version, &val, NULL);
		if (rc < 0)
			check_status(-rc);
		/* a verified table must find what its iterator returned */
		else if (verify_rc == NOKV_OK && scan_rc == NOKV_OK &&
				 (rc != 1 || version != v.version || kind != v.kind))
			fail("verified table does not find an entry its iterator returned");
		rc = nokv_sst_get(r, v.lkey, v.lkey_len, NOKV_VERSION_MAX, &kind, &version, &val, NULL);
		if (rc < 0)
			check_status(-rc);
		rc = nokv_sst_get(r, v.lkey, v.lkey_len, 0, &kind, &version, &val, NULL);
		if (rc < 0)
			check_status(-rc);

		{
			uint64_t	t;

			check_status(nokv_sst_max_covering_tombstone(r, v.cf, v.ukey, v.ukey_len,
														 NOKV_VERSION_MAX, &t, NULL));
		}
	}
	{
		int			kind;
		uint64_t	version;
		int			rc = nokv_sst_get(r, "\0absent", 7, NOKV_VERSION_MAX, &kind, &version,
									  &val, NULL);

		if (rc < 0)
			check_status(-rc);
	}

	if (nokv_sst_range_tombstones(r, &ts, &nts, NULL) == NOKV_OK)
	{
		for (int i = 0; i < nts; i++)
		{
			uint64_t	t;

			if ((ts[i].start_len && ts[i].start == NULL) || (ts[i].end_len && ts[i].end == NULL))
				fail("malformed tombstone returned");
			check_status(nokv_sst_max_covering_tombstone(r, ts[i].cf, ts[i].start,
														 ts[i].start_len, ts[i].version,
														 &t, NULL));
		}
		free(ts);
	}

	for (int i = 0; i < s.n; i++)
		free(s.key[i]);
	nokv_buf_free(&val);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	nokv_sst_env env;
	nokv_sst_counters counters = {0};
	nokv_sst_reader *r;
	nokv_error	err;
	char	   *img;
	size_t		len;
	int			mode;
	int			rc;

	if (region_mem == NULL)
		setup();
	if (size < 1)
		return 0;
	mode = data[0];
	len = size - 1;
	img = malloc(len ? len : 1);
	if (len)
		memcpy(img, data + 1, len);
	if (mode & 1)
		repair(img, len);
	put_image(img, len);
	free(img);

	env.ctx = &ctx;
	env.cache = (mode & 2) ? cache_off : 0;
	env.counters = &counters;
	rc = nokv_sst_open_path(&env, scratch_path, FILE_NUMBER, &r, &err);
	if (rc != NOKV_OK)
	{
		if (rc != NOKV_CORRUPTION)
			fail("open failed with a code other than corruption");
		if (r != NULL)
			fail("failed open returned a reader");
		return 0;
	}
	exercise(r);
	nokv_sst_close(r);

	nokv_cache_erase_file(&ctx, cache_off, FILE_NUMBER);
	{
		uint64_t	hits,
					misses,
					bytes,
					cap;

		nokv_cache_stats(&ctx, cache_off, &hits, &misses, &bytes, &cap);
		if (bytes != 0)
			fail("cache not empty after erasing the table (a pin leaked)");
	}
	return 0;
}
