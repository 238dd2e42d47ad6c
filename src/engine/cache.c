/*-------------------------------------------------------------------------
 *
 * cache.c
 *	  The shared block cache: sharded, LRU, pinned entries in the shared heap.
 *
 * Everything lives in the region and is linked by nokv_off, so every
 * process attached to the region sees one cache.  The header (at the
 * offset the caller formats) holds NOKV_CACHE_SHARDS shards; shard i is
 * guarded by platform lock NOKV_LOCK_CACHE_0 + i and owns a chained hash
 * table (a bucket array allocated from the shared heap at format time,
 * sized from the capacity), a doubly linked recency list and 1/16th of the
 * byte budget.  An entry is one heap allocation: the header below followed
 * by the block bytes.
 *
 * Reference counting follows LevelDB: an entry in the table holds one
 * reference for the cache itself and one per pin.  Pins are taken under
 * the shard lock (that is what makes a found entry safe to pin), but they
 * are dropped with a single atomic decrement and no lock; whoever drops
 * the last reference frees the entry.  So a hit costs one lock round trip,
 * and a pinned entry that is erased or evicted stays valid until its last
 * release.
 *
 * Eviction is LRU with a second chance (CLOCK on a list): new entries go
 * to the head, a hit only sets the entry's referenced flag instead of
 * relinking it (which would dirty the neighbours' cache lines on every
 * read), and the evictor walks from the tail, moving referenced or pinned
 * entries back to the head (clearing the flag) and freeing the first
 * unreferenced, unpinned one.  The walk is bounded, so when everything is
 * pinned an insert fails rather than loop or overshoot the budget.  Usage
 * counts every entry in the table, pinned or not.
 *
 * Locking: every structural change happens under the shard lock; no I/O
 * and no other cache lock is taken while holding it.  The heap lock may be
 * taken under it (platform.h's order: CACHE_n -> HEAP), but the common
 * paths allocate before locking and free after unlocking.  Hit and miss
 * counters are per shard, updated under the shard lock with relaxed
 * atomics so that nokv_cache_stats can read them without locking.
 *
 * src/engine/cache.c
 *-------------------------------------------------------------------------
 */
#include <stdatomic.h>
#include <string.h>

#include "nokv/cache.h"
#include "nokv/platform.h"

typedef struct cache_entry
{
	uint64_t	file;
	uint64_t	offset;
	uint64_t	hash;
	uint64_t	len;
	uint64_t	charge;			/* bytes counted against the budget */
	nokv_off	hash_next;		/* bucket chain (also the free list) */
	nokv_off	lru_prev;		/* towards the head (most recent) */
	nokv_off	lru_next;
	_Atomic uint32_t refs;		/* 1 for the table while in it, +1 per pin */
	uint32_t	referenced;		/* hit since the evictor last passed */
	char		data[];
} cache_entry;

typedef struct cache_shard
{
	uint64_t	capacity;
	uint64_t	usage;
	uint64_t	entries;
	nokv_off	buckets;		/* nokv_off[num_buckets] in the shared heap */
	uint64_t	num_buckets;	/* a power of two, or 0 when disabled */
	nokv_off	lru_head;		/* most recently inserted / rescued */
	nokv_off	lru_tail;		/* where the evictor looks */
	_Atomic uint64_t hits;
	_Atomic uint64_t misses;
	/* keep shards on separate cache lines without demanding an alignment */
	char		pad[128 - 9 * 8];
} cache_shard;

_Static_assert(sizeof(cache_shard) == 128, "cache_shard must fill two cache lines");

typedef struct cache_header
{
	uint64_t	capacity;
	cache_shard shards[NOKV_CACHE_SHARDS];
} cache_header;

/* blocks are about this big; it sizes the hash tables */
#define EXPECTED_ENTRY_SIZE		4096
#define MIN_BUCKETS				16
#define MAX_BUCKETS				((uint64_t) 1 << 24)

size_t
nokv_cache_shared_size(void)
{
	return NOKV_ALIGN(sizeof(cache_header), 64);
}

static inline uint64_t
cache_hash(uint64_t file, uint64_t offset)
{
	uint64_t	h = file * 0x9e3779b97f4a7c15ULL ^ offset;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static inline int
shard_of(uint64_t hash)
{
	return (int) (hash >> 60) & (NOKV_CACHE_SHARDS - 1);
}

static inline cache_entry *
entry_at(nokv_ctx *ctx, nokv_off off)
{
	return (cache_entry *) nokv_ptr(ctx, off);
}

static inline void
count(_Atomic uint64_t *c)
{
	/* only ever written under the shard lock: no read-modify-write needed */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
						  memory_order_relaxed);
}

void
nokv_cache_format(nokv_ctx *ctx, nokv_off off, size_t capacity)
{
	cache_header *hdr = nokv_ptr(ctx, off);
	uint64_t	per_shard = capacity / NOKV_CACHE_SHARDS;
	uint64_t	want = MIN_BUCKETS;

	memset(hdr, 0, sizeof(*hdr));
	hdr->capacity = capacity;
	while (want < per_shard / EXPECTED_ENTRY_SIZE && want < MAX_BUCKETS)
		want <<= 1;

	for (int i = 0; i < NOKV_CACHE_SHARDS; i++)
	{
		cache_shard *s = &hdr->shards[i];
		uint64_t	nb = want;
		nokv_off	b = 0;

		atomic_init(&s->hits, 0);
		atomic_init(&s->misses, 0);
		if (per_shard == 0)
			continue;
		/* a smaller table still works when the heap is tight */
		while (nb >= MIN_BUCKETS &&
			   (b = nokv_heap_alloc(ctx, nb * sizeof(nokv_off))) == 0)
			nb >>= 1;
		if (b == 0)
			continue;			/* this shard stays disabled */
		memset(nokv_ptr(ctx, b), 0, nb * sizeof(nokv_off));
		s->buckets = b;
		s->num_buckets = nb;
		s->capacity = per_shard;
	}
}

static inline nokv_off *
bucket_of(nokv_ctx *ctx, cache_shard *s, uint64_t hash)
{
	return (nokv_off *) nokv_ptr(ctx, s->buckets) + (hash & (s->num_buckets - 1));
}

static cache_entry *
find(nokv_ctx *ctx, cache_shard *s, uint64_t hash, uint64_t file, uint64_t offset)
{
	nokv_off	off = *bucket_of(ctx, s, hash);

	while (off)
	{
		cache_entry *e = entry_at(ctx, off);

		if (e->hash == hash && e->file == file && e->offset == offset)
			return e;
		off = e->hash_next;
	}
	return NULL;
}

static void
lru_remove(nokv_ctx *ctx, cache_shard *s, cache_entry *e)
{
	if (e->lru_prev)
		entry_at(ctx, e->lru_prev)->lru_next = e->lru_next;
	else
		s->lru_head = e->lru_next;
	if (e->lru_next)
		entry_at(ctx, e->lru_next)->lru_prev = e->lru_prev;
	else
		s->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = 0;
}

static void
lru_push_head(nokv_ctx *ctx, cache_shard *s, cache_entry *e)
{
	nokv_off	off = nokv_offset(ctx, e);

	e->lru_prev = 0;
	e->lru_next = s->lru_head;
	if (s->lru_head)
		entry_at(ctx, s->lru_head)->lru_prev = off;
	else
		s->lru_tail = off;
	s->lru_head = off;
}

/*
 * Take e out of the table and the recency list and drop the table's
 * reference.  Returns true if that was the last reference (the caller
 * frees e after unlocking); otherwise the last release frees it.
 */
static bool
detach(nokv_ctx *ctx, cache_shard *s, cache_entry *e)
{
	nokv_off   *link = bucket_of(ctx, s, e->hash);
	nokv_off	off = nokv_offset(ctx, e);

	while (*link && *link != off)
		link = &entry_at(ctx, *link)->hash_next;
	if (*link)
		*link = e->hash_next;
	e->hash_next = 0;
	lru_remove(ctx, s, e);
	s->usage -= e->charge;
	s->entries--;
	return atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1;
}

static inline void
push_free(nokv_ctx *ctx, cache_entry *e, nokv_off *freelist)
{
	e->hash_next = *freelist;
	*freelist = nokv_offset(ctx, e);
}

/*
 * Evict one unpinned entry that has not been hit since the evictor last
 * passed it, onto *freelist (chained by hash_next, freed by the caller
 * after unlocking).  Entries passed over go back to the head; at most two
 * rounds are walked, so this fails when everything is pinned.
 */
static bool
evict_one(nokv_ctx *ctx, cache_shard *s, nokv_off *freelist)
{
	for (uint64_t walked = 0; s->lru_tail != 0 && walked <= 2 * s->entries; walked++)
	{
		cache_entry *e = entry_at(ctx, s->lru_tail);

		/*
		 * refs can only grow under the shard lock, which we hold, so an
		 * entry seen with just the table's reference stays unpinned.
		 */
		if (e->referenced ||
			atomic_load_explicit(&e->refs, memory_order_acquire) > 1)
		{
			e->referenced = 0;
			lru_remove(ctx, s, e);
			lru_push_head(ctx, s, e);
			continue;
		}
		if (detach(ctx, s, e))
			push_free(ctx, e, freelist);
		return true;
	}
	return false;
}

static void
free_list(nokv_ctx *ctx, nokv_off list)
{
	while (list)
	{
		nokv_off	next = entry_at(ctx, list)->hash_next;

		nokv_heap_free(ctx, list);
		list = next;
	}
}

static inline void
pin(cache_entry *e, nokv_ctx *ctx, nokv_cache_handle *h)
{
	atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
	e->referenced = 1;
	h->entry = nokv_offset(ctx, e);
	h->data = e->data;
	h->len = e->len;
}

static inline void
unpinned(nokv_cache_handle *h)
{
	h->entry = 0;
	h->data = NULL;
	h->len = 0;
}

bool
nokv_cache_lookup(nokv_ctx *ctx, nokv_off cache, uint64_t file, uint64_t offset,
				  nokv_cache_handle *h)
{
	cache_header *hdr;
	cache_shard *s;
	cache_entry *e;
	uint64_t	hash;
	int			si;

	unpinned(h);
	if (cache == 0)
		return false;
	hdr = nokv_ptr(ctx, cache);
	hash = cache_hash(file, offset);
	si = shard_of(hash);
	s = &hdr->shards[si];
	if (s->num_buckets == 0)
	{
		atomic_fetch_add_explicit(&s->misses, 1, memory_order_relaxed);
		return false;
	}

	nokv_lock(ctx->plat, NOKV_LOCK_CACHE_0 + si, true);
	e = find(ctx, s, hash, file, offset);
	if (e)
	{
		/* set the flag only when needed: a clean line stays shared */
		if (!e->referenced)
			e->referenced = 1;
		atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
		h->entry = nokv_offset(ctx, e);
		h->data = e->data;
		h->len = e->len;
		count(&s->hits);
	}
	else
		count(&s->misses);
	nokv_unlock(ctx->plat, NOKV_LOCK_CACHE_0 + si);
	return e != NULL;
}

bool
nokv_cache_insert(nokv_ctx *ctx, nokv_off cache, uint64_t file, uint64_t offset,
				  const char *data, size_t len, nokv_cache_handle *h)
{
	cache_header *hdr;
	cache_shard *s;
	cache_entry *e;
	cache_entry *existing;
	uint64_t	hash;
	/* the budget counts shared memory really taken, buddy rounding included */
	uint64_t	charge = nokv_heap_block_size(sizeof(cache_entry) + len);
	nokv_off	off;
	nokv_off	evicted = 0;
	nokv_off   *bucket;
	int			si;

	unpinned(h);
	if (cache == 0)
		return false;
	hdr = nokv_ptr(ctx, cache);
	hash = cache_hash(file, offset);
	si = shard_of(hash);
	s = &hdr->shards[si];
	if (s->num_buckets == 0 || charge > s->capacity)
		return false;

	/* allocate and copy outside the shard lock: the common case */
	off = nokv_heap_alloc(ctx, sizeof(cache_entry) + len);
	if (off && len)
		memcpy(entry_at(ctx, off)->data, data, len);

	nokv_lock(ctx->plat, NOKV_LOCK_CACHE_0 + si, true);

	/* another reader got here first: share its copy */
	existing = find(ctx, s, hash, file, offset);
	if (existing)
	{
		pin(existing, ctx, h);
		nokv_unlock(ctx->plat, NOKV_LOCK_CACHE_0 + si);
		if (off)
			nokv_heap_free(ctx, off);
		return true;
	}

	while (s->usage + charge > s->capacity && evict_one(ctx, s, &evicted))
		;
	if (s->usage + charge > s->capacity)
		goto fail;				/* the rest is pinned */

	/* heap exhausted: give back what this shard can and retry */
	while (off == 0)
	{
		if (!evict_one(ctx, s, &evicted))
			goto fail;
		free_list(ctx, evicted);
		evicted = 0;
		off = nokv_heap_alloc(ctx, sizeof(cache_entry) + len);
		if (off && len)
			memcpy(entry_at(ctx, off)->data, data, len);
	}

	e = entry_at(ctx, off);
	e->file = file;
	e->offset = offset;
	e->hash = hash;
	e->len = len;
	e->charge = charge;
	e->referenced = 0;
	atomic_init(&e->refs, 2);	/* the table's and the caller's */
	bucket = bucket_of(ctx, s, hash);
	e->hash_next = *bucket;
	*bucket = off;
	e->lru_prev = e->lru_next = 0;
	lru_push_head(ctx, s, e);
	s->usage += charge;
	s->entries++;
	h->entry = off;
	h->data = e->data;
	h->len = len;
	nokv_unlock(ctx->plat, NOKV_LOCK_CACHE_0 + si);
	free_list(ctx, evicted);
	return true;

fail:
	nokv_unlock(ctx->plat, NOKV_LOCK_CACHE_0 + si);
	free_list(ctx, evicted);
	if (off)
		nokv_heap_free(ctx, off);
	return false;
}

void
nokv_cache_release(nokv_ctx *ctx, nokv_off cache, nokv_cache_handle *h)
{
	cache_entry *e;

	(void) cache;
	if (h->entry == 0)
		return;
	e = entry_at(ctx, h->entry);
	/* no lock: only the last reference (a detached entry) needs work */
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
		nokv_heap_free(ctx, h->entry);
	unpinned(h);
}

void
nokv_cache_erase_file(nokv_ctx *ctx, nokv_off cache, uint64_t file)
{
	cache_header *hdr;

	if (cache == 0)
		return;
	hdr = nokv_ptr(ctx, cache);
	for (int si = 0; si < NOKV_CACHE_SHARDS; si++)
	{
		cache_shard *s = &hdr->shards[si];
		nokv_off	dead = 0;

		if (s->num_buckets == 0)
			continue;
		nokv_lock(ctx->plat, NOKV_LOCK_CACHE_0 + si, true);
		for (uint64_t b = 0; b < s->num_buckets && s->entries > 0; b++)
		{
			nokv_off	off = *((nokv_off *) nokv_ptr(ctx, s->buckets) + b);

			while (off)
			{
				cache_entry *e = entry_at(ctx, off);

				off = e->hash_next;
				/* pinned entries are freed by their last release */
				if (e->file == file && detach(ctx, s, e))
					push_free(ctx, e, &dead);
			}
		}
		nokv_unlock(ctx->plat, NOKV_LOCK_CACHE_0 + si);
		free_list(ctx, dead);
	}
}

void
nokv_cache_stats(nokv_ctx *ctx, nokv_off cache, uint64_t *hits, uint64_t *misses,
				 uint64_t *bytes, uint64_t *capacity)
{
	cache_header *hdr;
	uint64_t	h = 0,
				m = 0,
				b = 0;

	if (cache == 0)
	{
		*hits = *misses = *bytes = *capacity = 0;
		return;
	}
	hdr = nokv_ptr(ctx, cache);
	for (int si = 0; si < NOKV_CACHE_SHARDS; si++)
	{
		cache_shard *s = &hdr->shards[si];

		h += atomic_load_explicit(&s->hits, memory_order_relaxed);
		m += atomic_load_explicit(&s->misses, memory_order_relaxed);
		if (s->num_buckets)
		{
			nokv_lock(ctx->plat, NOKV_LOCK_CACHE_0 + si, true);
			b += s->usage;
			nokv_unlock(ctx->plat, NOKV_LOCK_CACHE_0 + si);
		}
	}
	*hits = h;
	*misses = m;
	*bytes = b;
	*capacity = hdr->capacity;
}
