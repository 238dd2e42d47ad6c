/*-------------------------------------------------------------------------
 *
 * test_cache.c
 *	  Unit tests for the shared block cache.
 *
 * The cache lives in a malloc'ed region with the pthread platform and the
 * shared heap, as the engine sets it up.  Checked: the byte budget is never
 * exceeded, LRU eviction keeps recently used entries, pins prevent
 * eviction (and an insert fails rather than overshoot when everything is
 * pinned), erase_file drops a file's entries (pinned ones at their last
 * release), duplicates share one copy, heap exhaustion is survived, the
 * statistics add up, and four threads hammering a small cache see only
 * intact blocks and leave the heap as they found it.
 *
 * test/engine/test_cache.c
 *-------------------------------------------------------------------------
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/cache.h"
#include "nokv/platform.h"
#include "nokv/region.h"
#include "tap.h"

typedef struct region
{
	char	   *mem;
	nokv_platform plat;
	nokv_ctx	ctx;
	nokv_off	cache;
} region;

static void
region_init(region *r, size_t capacity, size_t heap_size)
{
	size_t		plat = NOKV_ALIGN(nokv_pthread_platform_size(), 64);
	size_t		cache = NOKV_ALIGN(nokv_cache_shared_size(), 64);
	size_t		heap = nokv_heap_header_size() + heap_size;
	/* slack in case the heap's total excludes its header */
	size_t		size = 64 + plat + cache + heap + nokv_heap_header_size() + 4096;

	r->mem = aligned_alloc(64, NOKV_ALIGN(size, 64));
	memset(r->mem, 0, size);
	nokv_pthread_platform_format(r->mem + 64);
	nokv_pthread_platform_bind(&r->plat, r->mem + 64);
	r->cache = 64 + plat;
	r->ctx.base = r->mem;
	r->ctx.plat = &r->plat;
	r->ctx.heap = r->cache + cache;
	nokv_heap_format(&r->ctx, r->ctx.heap, heap);
	nokv_cache_format(&r->ctx, r->cache, capacity);
}

static void
region_free(region *r)
{
	free(r->mem);
}

/* block contents derived from the key, so that readers can check them */
static void
fill(char *buf, size_t len, uint64_t file, uint64_t offset)
{
	uint64_t	x = file * 1000003 + offset;

	for (size_t i = 0; i < len; i++)
	{
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		buf[i] = (char) (x >> 56);
	}
}

static bool
intact(const nokv_cache_handle *h, size_t len, uint64_t file, uint64_t offset)
{
	char	   *want = malloc(len ? len : 1);
	bool		same;

	fill(want, len, file, offset);
	same = h->len == len && memcmp(h->data, want, len) == 0;
	free(want);
	return same;
}

static bool
put(region *r, uint64_t file, uint64_t offset, size_t len)
{
	char	   *buf = malloc(len ? len : 1);
	nokv_cache_handle h;
	bool		stored;

	fill(buf, len, file, offset);
	stored = nokv_cache_insert(&r->ctx, r->cache, file, offset, buf, len, &h);
	nokv_cache_release(&r->ctx, r->cache, &h);
	free(buf);
	return stored;
}

static bool
cached(region *r, uint64_t file, uint64_t offset)
{
	nokv_cache_handle h;
	bool		hit = nokv_cache_lookup(&r->ctx, r->cache, file, offset, &h);

	nokv_cache_release(&r->ctx, r->cache, &h);
	return hit;
}

static uint64_t
bytes_used(region *r)
{
	uint64_t	hits,
				misses,
				bytes,
				cap;

	nokv_cache_stats(&r->ctx, r->cache, &hits, &misses, &bytes, &cap);
	return bytes;
}

/* entries of 1000 bytes; each shard holds about four */
#define ENTRY	1000
#define CAP		(NOKV_CACHE_SHARDS * 4 * (ENTRY + 100))

static void
test_basic(void)
{
	region		r;
	nokv_cache_handle h;
	char		data[ENTRY];
	uint64_t	hits,
				misses,
				bytes,
				cap;

	region_init(&r, CAP, 4 << 20);
	ok(!nokv_cache_lookup(&r.ctx, r.cache, 1, 0, &h) && h.entry == 0 && h.data == NULL,
	   "empty cache misses");
	fill(data, ENTRY, 1, 0);
	ok(nokv_cache_insert(&r.ctx, r.cache, 1, 0, data, ENTRY, &h), "insert");
	ok(h.entry != 0 && h.len == ENTRY && intact(&h, ENTRY, 1, 0), "insert pins a copy");
	memset(data, 0, sizeof(data));
	ok(intact(&h, ENTRY, 1, 0), "the cache owns its copy");
	nokv_cache_release(&r.ctx, r.cache, &h);
	ok(h.entry == 0, "release clears the handle");
	nokv_cache_release(&r.ctx, r.cache, &h);	/* harmless */

	ok(nokv_cache_lookup(&r.ctx, r.cache, 1, 0, &h) && intact(&h, ENTRY, 1, 0), "hit");
	nokv_cache_release(&r.ctx, r.cache, &h);
	ok(!cached(&r, 2, 0) && !cached(&r, 1, 1), "other keys miss");

	/* a second insert of the same key shares the first copy */
	{
		nokv_cache_handle a,
					b;
		uint64_t	before = bytes_used(&r);

		fill(data, ENTRY, 1, 0);
		ok(nokv_cache_lookup(&r.ctx, r.cache, 1, 0, &a), "pin the entry");
		ok(nokv_cache_insert(&r.ctx, r.cache, 1, 0, data, ENTRY, &b), "insert duplicate");
		ok(a.entry == b.entry, "duplicate insert returns the existing entry");
		nokv_cache_release(&r.ctx, r.cache, &a);
		nokv_cache_release(&r.ctx, r.cache, &b);
		is_int(bytes_used(&r), before, "usage counted once");
	}

	nokv_cache_stats(&r.ctx, r.cache, &hits, &misses, &bytes, &cap);
	is_int(cap, CAP, "capacity reported");
	is_int(hits, 2, "hits counted");
	is_int(misses, 3, "misses counted");
	is_int(bytes, nokv_heap_block_size(ENTRY + 80),
		   "bytes are the heap block one entry and its header take");

	/* an entry larger than a shard's budget is refused */
	{
		char	   *big = calloc(1, CAP);

		ok(!nokv_cache_insert(&r.ctx, r.cache, 9, 9, big, CAP / 2, &h) && h.entry == 0,
		   "entry larger than a shard is refused");
		free(big);
	}
	ok(put(&r, 3, 0, 0) && cached(&r, 3, 0), "empty entries are fine");
	region_free(&r);

	/* no cache at all, and a zero budget */
	region_init(&r, 0, 1 << 20);
	ok(!nokv_cache_insert(&r.ctx, r.cache, 1, 0, data, 10, &h) && h.entry == 0,
	   "zero capacity stores nothing");
	ok(!nokv_cache_lookup(&r.ctx, r.cache, 1, 0, &h), "zero capacity misses");
	ok(!nokv_cache_insert(&r.ctx, 0, 1, 0, data, 10, &h) && !nokv_cache_lookup(&r.ctx, 0, 1, 0, &h),
	   "cache offset 0 means no cache");
	nokv_cache_erase_file(&r.ctx, 0, 1);
	nokv_cache_stats(&r.ctx, 0, &hits, &misses, &bytes, &cap);
	ok(hits == 0 && cap == 0, "stats of no cache");
	region_free(&r);
}

static void
test_budget_and_lru(void)
{
	region		r;
	int			over = 0;
	uint64_t	used0,
				used1,
				total;

	region_init(&r, CAP, 4 << 20);
	for (int i = 0; i < 2000; i++)
	{
		put(&r, 1, (uint64_t) i * 4096, ENTRY);
		if (bytes_used(&r) > CAP)
			over++;
	}
	is_int(over, 0, "usage never exceeds the capacity");
	ok(bytes_used(&r) > CAP / 2, "the cache fills up (%llu of %d bytes)",
	   (unsigned long long) bytes_used(&r), CAP);
	ok(cached(&r, 1, 1999 * 4096), "the newest entry is cached");
	{
		int			old = 0;

		for (int i = 0; i < 100; i++)
			old += cached(&r, 1, (uint64_t) i * 4096);
		is_int(old, 0, "the oldest entries were evicted");
	}

	/* keep touching one entry: it survives, its neighbour in age does not */
	put(&r, 2, 0, ENTRY);
	put(&r, 2, 1, ENTRY);
	for (int i = 0; i < 2000; i++)
	{
		put(&r, 3, (uint64_t) i, ENTRY);
		cached(&r, 2, 0);
	}
	ok(cached(&r, 2, 0), "a recently used entry survives");
	ok(!cached(&r, 2, 1), "an unused entry of the same age is evicted");

	/* erasing everything gives every byte back to the heap */
	nokv_heap_usage(&r.ctx, &used0, &total);
	nokv_cache_erase_file(&r.ctx, r.cache, 1);
	nokv_cache_erase_file(&r.ctx, r.cache, 2);
	nokv_cache_erase_file(&r.ctx, r.cache, 3);
	is_int(bytes_used(&r), 0, "erase_file of every file empties the cache");
	nokv_heap_usage(&r.ctx, &used1, &total);
	ok(used1 < used0, "erased entries return to the heap");
	region_free(&r);
}

static void
test_pins(void)
{
	region		r;
	nokv_cache_handle pinned[200];
	int			stored = 0,
				refused = 0,
				lost = 0;
	char		data[ENTRY];

	region_init(&r, CAP, 4 << 20);

	/* pin one entry and flood the cache: it stays */
	fill(data, ENTRY, 7, 7);
	ok(nokv_cache_insert(&r.ctx, r.cache, 7, 7, data, ENTRY, &pinned[0]), "insert pinned");
	for (int i = 0; i < 2000; i++)
		put(&r, 8, (uint64_t) i, ENTRY);
	ok(intact(&pinned[0], ENTRY, 7, 7), "pinned data intact under pressure");
	ok(cached(&r, 7, 7), "pinned entry not evicted");
	nokv_cache_release(&r.ctx, r.cache, &pinned[0]);
	for (int i = 0; i < 2000; i++)
		put(&r, 8, (uint64_t) i + 5000, ENTRY);
	ok(!cached(&r, 7, 7), "once released it can be evicted");

	/* pin far more than fits: inserts start failing instead of overshooting */
	for (int i = 0; i < 200; i++)
	{
		fill(data, ENTRY, 9, (uint64_t) i);
		if (nokv_cache_insert(&r.ctx, r.cache, 9, (uint64_t) i, data, ENTRY, &pinned[i]))
			stored++;
		else
		{
			refused++;
			if (pinned[i].entry != 0)
				lost++;
		}
	}
	ok(refused > 0 && stored > 0, "with everything pinned inserts fail (%d stored, %d refused)",
	   stored, refused);
	is_int(lost, 0, "a failed insert leaves the handle unpinned");
	ok(bytes_used(&r) <= CAP, "budget respected with everything pinned");
	for (int i = 0; i < 200; i++)
		if (pinned[i].entry && !intact(&pinned[i], ENTRY, 9, (uint64_t) i))
			lost++;
	is_int(lost, 0, "all pinned entries intact");

	/* erase a file while entries are pinned: gone from lookups, alive for pinners */
	nokv_cache_erase_file(&r.ctx, r.cache, 9);
	{
		int			visible = 0;

		for (int i = 0; i < 200; i++)
			visible += cached(&r, 9, (uint64_t) i);
		is_int(visible, 0, "erased file is no longer found");
	}
	is_int(bytes_used(&r), 0, "erased pinned entries no longer count");
	for (int i = 0; i < 200; i++)
		if (pinned[i].entry && !intact(&pinned[i], ENTRY, 9, (uint64_t) i))
			lost++;
	is_int(lost, 0, "pinned entries of an erased file stay readable");
	for (int i = 0; i < 200; i++)
		nokv_cache_release(&r.ctx, r.cache, &pinned[i]);
	ok(put(&r, 9, 0, ENTRY), "re-inserting after the erase works");
	region_free(&r);
}

static void
test_heap_exhaustion(void)
{
	region		r;
	int			stored = 0;
	uint64_t	used,
				total;

	/* a budget far above what the heap holds */
	region_init(&r, 64 << 20, 1 << 20);
	for (int i = 0; i < 2000; i++)
		stored += put(&r, 1, (uint64_t) i, 4000);
	ok(stored > 1000, "inserts keep succeeding by evicting when the heap is full (%d)",
	   stored);
	nokv_heap_usage(&r.ctx, &used, &total);
	ok(used <= total, "heap never overdrawn");
	ok(cached(&r, 1, 1999), "latest insert cached");
	region_free(&r);
}

/* ---------- concurrency ---------- */

typedef struct worker
{
	region	   *r;
	int			id;
	int			errors;
	int			hits;
} worker;

#define THREADS 4
#define OPS		40000

static void *
worker_main(void *arg)
{
	worker	   *w = arg;
	uint64_t	x = 0x9e3779b97f4a7c15ULL * (w->id + 1);
	char		buf[2048];

	for (int i = 0; i < OPS; i++)
	{
		uint64_t	file,
					offset;
		size_t		len;
		nokv_cache_handle h,
					h2;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		file = 1 + x % 5;
		offset = (x >> 8) % 300;
		len = 100 + (size_t) ((file * 7 + offset * 13) % 1900);

		if (nokv_cache_lookup(&w->r->ctx, w->r->cache, file, offset, &h))
		{
			w->hits++;
			if (!intact(&h, len, file, offset))
				w->errors++;
			/*
			 * A second pin while holding the first (another thread may have
			 * erased the entry and cached a new copy in between).
			 */
			if ((x & 15) == 0 &&
				nokv_cache_lookup(&w->r->ctx, w->r->cache, file, offset, &h2))
			{
				if (!intact(&h2, len, file, offset) || !intact(&h, len, file, offset))
					w->errors++;
				nokv_cache_release(&w->r->ctx, w->r->cache, &h2);
			}
			nokv_cache_release(&w->r->ctx, w->r->cache, &h);
		}
		else
		{
			fill(buf, len, file, offset);
			if (nokv_cache_insert(&w->r->ctx, w->r->cache, file, offset, buf, len, &h))
			{
				if (!intact(&h, len, file, offset))
					w->errors++;
				nokv_cache_release(&w->r->ctx, w->r->cache, &h);
			}
		}
		if ((x & 1023) == 7)
			nokv_cache_erase_file(&w->r->ctx, w->r->cache, file);
	}
	return NULL;
}

static void
test_threads(void)
{
	region		r;
	pthread_t	t[THREADS];
	worker		w[THREADS];
	int			errors = 0,
				hits = 0;
	uint64_t	used_before,
				used_after,
				total;

	region_init(&r, 1 << 20, 8 << 20);
	nokv_heap_usage(&r.ctx, &used_before, &total);
	for (int i = 0; i < THREADS; i++)
	{
		w[i] = (worker)
		{
			.r = &r,.id = i
		};
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < THREADS; i++)
	{
		pthread_join(t[i], NULL);
		errors += w[i].errors;
		hits += w[i].hits;
	}
	is_int(errors, 0, "%d threads saw only intact blocks", THREADS);
	ok(hits > OPS, "threads hit the cache (%d hits)", hits);
	ok(bytes_used(&r) <= (1 << 20), "budget respected after concurrent use");
	for (uint64_t f = 1; f <= 5; f++)
		nokv_cache_erase_file(&r.ctx, r.cache, f);
	is_int(bytes_used(&r), 0, "empty after erasing every file");
	nokv_heap_usage(&r.ctx, &used_after, &total);
	is_int(used_after, used_before, "no heap leaked by concurrent use");
	region_free(&r);
}

int
main(void)
{
	test_basic();
	test_budget_and_lru();
	test_pins();
	test_heap_exhaustion();
	test_threads();
	return tap_done();
}
