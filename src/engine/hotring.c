/*-------------------------------------------------------------------------
 *
 * hotring.c
 *	  Bounded-memory hot-key tracking in the shared region.
 *
 * Two rings (reads, writes) share one area.  A ring is an open-addressing
 * table of 64-bit key hashes (2 x capacity buckets rounded up to a power of
 * two, so the load never exceeds 50%) whose buckets point into a pool of
 * exactly `capacity` entries.  An entry holds the key's cf, its real length,
 * the first 64 bytes of the key (for display) and a ring of window slots;
 * each slot is one 64-bit word packing (epoch tag << 32 | count), so a touch
 * is a single CAS that either adds to the current sub-window or restarts a
 * stale one -- a reset can never tear against a concurrent add.
 *
 * A key lives somewhere within PROBE buckets of its home bucket; lookups
 * scan that whole window (the hashes are 8 to a cache line), so buckets
 * never have to be emptied and a key can replace any entry of its window.
 * When the pool is full, a missing key is admitted with probability
 * n / (4c + n), c being the smallest count in its window, and then replaces
 * that coldest entry: a key clearly hotter than its neighbours gets in
 * after a few touches and stays, while a stream of one-off keys takes the
 * lock for about one miss in five.
 *
 * Counting is lock-free.  Only installing a key takes NOKV_LOCK_HOTRING
 * (exclusive); top-N takes it shared so it sees stable keys.  Replacing an
 * entry that another process may be counting into uses a per-entry
 * `inflight` counter (Dekker style, all seq_cst): the toucher raises it and
 * then re-reads the bucket's hash; the installer first marks the bucket
 * BUSY and then waits for inflight to drop to zero.  Either the toucher
 * sees BUSY and backs off, or the installer sees the toucher and waits, so
 * a touch is never credited to the key that replaced its own.  A process
 * that dies between the two steps leaves inflight raised; the installer
 * gives up after a bounded wait, leaves the bucket BUSY (later installs may
 * reclaim it once inflight is zero) and drops the new key.
 *
 * docs/hotring.md has the byte layout and the error bounds.
 *
 * src/engine/hotring.c
 *-------------------------------------------------------------------------
 */
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/coding.h"
#include "nokv/db_impl.h"
#include "nokv/hotring.h"

#define HOT_AREA_MAGIC		0x484f5441u /* "HOTA" */
#define HOT_RING_MAGIC		0x484f5452u /* "HOTR" */
#define HOT_FORMAT_VERSION	1

#define HOT_PROBE			16		/* buckets a key may live in */
#define HOT_MAX_SLOTS		64
#define HOT_TOUCH_STRIPES	16

/* bucket hash values below TAG_FIRST are states, not keys */
#define TAG_EMPTY			0		/* never used */
#define TAG_BUSY			1		/* being (re)written, or abandoned */
#define TAG_FIRST			2

/* bounded wait for in-flight touches of an entry being replaced */
#define DRAIN_SPINS			64
#define DRAIN_YIELDS		2000

#define ADMIT_BIAS			4

#define HOT_SEED			0x5bd1e9955bd1e995ULL

typedef struct hot_area
{
	uint32_t	magic;
	uint32_t	version;
	uint64_t	ring_off[NOKV_HOT_RINGS];	/* from the area's start */
} hot_area;

typedef struct hot_stripe
{
	alignas(64) _Atomic uint64_t n;
} hot_stripe;

typedef struct hot_ring
{
	/* cache line 0: fixed at format time */
	alignas(64) uint32_t magic;
	uint32_t	capacity;		/* entries in the pool */
	uint32_t	nbuckets;		/* power of two, >= 2 x capacity */
	uint32_t	mask;
	uint32_t	window_slots;
	uint32_t	slot_ms;		/* width of one sub-window */
	uint32_t	probe;
	uint32_t	entry_stride;
	uint64_t	tags_off;		/* from the ring's start */
	uint64_t	index_off;
	uint64_t	entries_off;

	/* cache line 1: changed by installs and refusals */
	alignas(64) _Atomic uint64_t entries;	/* pool entries handed out */
	_Atomic uint64_t inserts;
	_Atomic uint64_t evictions;
	_Atomic uint64_t dropped;
	_Atomic uint64_t limited;

	/* touch counters, striped by key hash so touches do not share a line */
	hot_stripe	touches[HOT_TOUCH_STRIPES];
} hot_ring;

typedef struct hot_entry
{
	_Atomic uint32_t inflight;	/* touches between hash re-check and add */
	int32_t		cf;
	uint32_t	key_len;		/* real length, saturated at UINT32_MAX */
	uint32_t	reserved;
	char		key[NOKV_HOT_KEY_PREFIX];
	_Atomic uint64_t slots[];	/* window_slots x (tag << 32 | count) */
} hot_entry;

/* ---------- sizing ---------- */

static uint32_t
ring_window_slots(const nokv_shared_options *o)
{
	int			w = o->hot_window_slots;

	if (w < 1)
		w = 1;
	if (w > HOT_MAX_SLOTS)
		w = HOT_MAX_SLOTS;
	return (uint32_t) w;
}

static uint32_t
ring_capacity(const nokv_shared_options *o)
{
	return o->hot_capacity > 0 ? (uint32_t) o->hot_capacity : 0;
}

static uint32_t
ring_buckets(uint32_t capacity)
{
	uint64_t	nb = HOT_PROBE;

	while (nb < 2 * (uint64_t) capacity)
		nb <<= 1;
	return (uint32_t) nb;
}

static size_t
entry_stride(uint32_t window_slots)
{
	return NOKV_ALIGN(sizeof(hot_entry) + sizeof(uint64_t) * window_slots, 8);
}

static size_t
ring_size(uint32_t capacity, uint32_t window_slots)
{
	size_t		size = NOKV_ALIGN(sizeof(hot_ring), 64);
	size_t		nb;

	if (capacity == 0)
		return size;
	nb = ring_buckets(capacity);
	size += NOKV_ALIGN(nb * sizeof(uint64_t), 64);
	size += NOKV_ALIGN(nb * sizeof(uint32_t), 64);
	size += NOKV_ALIGN((size_t) capacity * entry_stride(window_slots), 64);
	return size;
}

size_t
nokv_hotring_shared_size(const nokv_shared_options *o)
{
	return NOKV_ALIGN(sizeof(hot_area), 64) +
		NOKV_HOT_RINGS * ring_size(ring_capacity(o), ring_window_slots(o));
}

void
nokv_hotring_shared_format(nokv_ctx *ctx, nokv_off off, const nokv_shared_options *o)
{
	char	   *base = nokv_ptr(ctx, off);
	hot_area   *area = (hot_area *) base;
	uint32_t	capacity = ring_capacity(o);
	uint32_t	window_slots = ring_window_slots(o);
	uint32_t	window_ms = o->hot_window_ms > 0 ? (uint32_t) o->hot_window_ms : 1;
	size_t		rsize = ring_size(capacity, window_slots);
	size_t		pos = NOKV_ALIGN(sizeof(hot_area), 64);

	if (base == NULL)
		return;
	memset(base, 0, nokv_hotring_shared_size(o));
	for (int r = 0; r < NOKV_HOT_RINGS; r++)
	{
		hot_ring   *ring = (hot_ring *) (base + pos);
		size_t		rpos = NOKV_ALIGN(sizeof(hot_ring), 64);

		ring->magic = HOT_RING_MAGIC;
		ring->capacity = capacity;
		ring->window_slots = window_slots;
		ring->slot_ms = window_ms / window_slots > 0 ? window_ms / window_slots : 1;
		ring->probe = HOT_PROBE;
		ring->entry_stride = (uint32_t) entry_stride(window_slots);
		if (capacity > 0)
		{
			ring->nbuckets = ring_buckets(capacity);
			ring->mask = ring->nbuckets - 1;
			ring->tags_off = rpos;
			rpos += NOKV_ALIGN((size_t) ring->nbuckets * sizeof(uint64_t), 64);
			ring->index_off = rpos;
			rpos += NOKV_ALIGN((size_t) ring->nbuckets * sizeof(uint32_t), 64);
			ring->entries_off = rpos;
		}
		area->ring_off[r] = pos;
		pos += rsize;
	}
	area->version = HOT_FORMAT_VERSION;
	area->magic = HOT_AREA_MAGIC;
}

/* ---------- access helpers ---------- */

static hot_ring *
get_ring(nokv_ctx *ctx, nokv_off off, int ring)
{
	hot_area   *area = nokv_ptr(ctx, off);
	hot_ring   *r;

	if (area == NULL || ring < 0 || ring >= NOKV_HOT_RINGS ||
		area->magic != HOT_AREA_MAGIC)
		return NULL;
	r = (hot_ring *) ((char *) area + area->ring_off[ring]);
	return r->magic == HOT_RING_MAGIC ? r : NULL;
}

static inline _Atomic uint64_t *
ring_tags(hot_ring *r)
{
	return (_Atomic uint64_t *) ((char *) r + r->tags_off);
}

static inline uint32_t *
ring_index(hot_ring *r)
{
	return (uint32_t *) ((char *) r + r->index_off);
}

static inline hot_entry *
ring_entry(hot_ring *r, uint32_t idx)
{
	return (hot_entry *) ((char *) r + r->entries_off + (size_t) idx * r->entry_stride);
}

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * MurmurHash64A (as in bloom.c) over the key, seeded by the cf, so the same
 * bytes in two column families are two keys.  Values below TAG_FIRST are
 * reserved for bucket states.
 */
static uint64_t
hot_hash(int cf, const char *key, size_t len)
{
	uint64_t	h = nokv_hash64(key, len,
									HOT_SEED ^ ((uint64_t) (uint32_t) cf * 0x9e3779b97f4a7c15ULL));

	return h < TAG_FIRST ? h + TAG_FIRST : h;
}

/* per-thread generator for admission decisions (splitmix64) */
static _Thread_local uint64_t rng_state;

static uint64_t
rng_next(uint64_t salt)
{
	uint64_t	z;

	if (rng_state == 0)
		rng_state = salt ^ (uint64_t) (uintptr_t) &rng_state;
	rng_state += 0x9e3779b97f4a7c15ULL;
	z = rng_state;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint32_t
saturate32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t) v;
}

/* ---------- the sliding window ---------- */

/*
 * Sub-window e lives in slot e % W tagged with the low 32 bits of e; a slot
 * counts for epoch e while its tag is one of e-W+1 .. e.
 */
static uint64_t
entry_count(const hot_ring *r, hot_entry *ent, uint64_t epoch)
{
	uint32_t	e32 = (uint32_t) epoch;
	uint64_t	sum = 0;

	for (uint32_t j = 0; j < r->window_slots; j++)
	{
		uint64_t	w = atomic_load_explicit(&ent->slots[j], memory_order_relaxed);
		uint32_t	age = e32 - (uint32_t) (w >> 32);

		if (age < r->window_slots)
			sum += (uint32_t) w;
	}
	return sum;
}

static void
entry_add(const hot_ring *r, hot_entry *ent, uint64_t epoch, uint32_t n)
{
	_Atomic uint64_t *slot = &ent->slots[epoch % r->window_slots];
	uint32_t	e32 = (uint32_t) epoch;
	uint64_t	old = atomic_load_explicit(slot, memory_order_relaxed);
	uint64_t	new;

	do
	{
		int32_t		ahead = (int32_t) ((uint32_t) (old >> 32) - e32);

		/*
		 * Add to the slot when it holds this epoch, or a newer one written
		 * by a process whose clock runs a whole window ahead (never wipe
		 * newer counts); restart it when it holds an older epoch or nothing.
		 */
		if (ahead >= 0 && (uint32_t) old != 0)
			new = (old & 0xffffffff00000000ULL) | saturate32((uint64_t) (uint32_t) old + n);
		else
			new = ((uint64_t) e32 << 32) | n;
	} while (!atomic_compare_exchange_weak_explicit(slot, &old, new,
													memory_order_relaxed,
													memory_order_relaxed));
}

static void
entry_install(const hot_ring *r, hot_entry *ent, int cf, const char *key, size_t klen,
			  uint64_t epoch, uint32_t n)
{
	size_t		keep = klen < NOKV_HOT_KEY_PREFIX ? klen : NOKV_HOT_KEY_PREFIX;

	ent->cf = cf;
	ent->key_len = saturate32(klen);
	memset(ent->key, 0, sizeof(ent->key));
	if (keep > 0)
		memcpy(ent->key, key, keep);
	for (uint32_t j = 0; j < r->window_slots; j++)
		atomic_store_explicit(&ent->slots[j], 0, memory_order_relaxed);
	entry_add(r, ent, epoch, n);
}

/* caller guarantees the entry cannot be rewritten meanwhile */
static bool
entry_matches(const hot_entry *ent, int cf, const char *key, size_t klen)
{
	size_t		keep = klen < NOKV_HOT_KEY_PREFIX ? klen : NOKV_HOT_KEY_PREFIX;

	return ent->cf == cf && ent->key_len == saturate32(klen) &&
		(keep == 0 || memcmp(ent->key, key, keep) == 0);
}

/* ---------- lookup ---------- */

/*
 * Find the key's entry without the lock.  On success the entry's inflight
 * count is raised; the caller drops it with entry_release.
 */
static hot_entry *
lookup_pinned(hot_ring *r, uint64_t h, int cf, const char *key, size_t klen)
{
	_Atomic uint64_t *tags = ring_tags(r);

	for (uint32_t i = 0; i < r->probe; i++)
	{
		uint32_t	b = (uint32_t) (h + i) & r->mask;
		hot_entry  *ent;

		if (atomic_load_explicit(&tags[b], memory_order_acquire) != h)
			continue;
		ent = ring_entry(r, ring_index(r)[b]);
		atomic_fetch_add(&ent->inflight, 1);
		if (atomic_load(&tags[b]) == h && entry_matches(ent, cf, key, klen))
			return ent;
		atomic_fetch_sub_explicit(&ent->inflight, 1, memory_order_release);
	}
	return NULL;
}

static inline void
entry_release(hot_entry *ent)
{
	atomic_fetch_sub_explicit(&ent->inflight, 1, memory_order_release);
}

/* smallest count among the key's window (lock-free estimate); false if none */
static bool
window_min_count(hot_ring *r, uint64_t h, uint64_t epoch, uint64_t *min)
{
	_Atomic uint64_t *tags = ring_tags(r);
	bool		found = false;

	*min = UINT64_MAX;
	for (uint32_t i = 0; i < r->probe; i++)
	{
		uint32_t	b = (uint32_t) (h + i) & r->mask;
		uint64_t	t = atomic_load_explicit(&tags[b], memory_order_acquire);
		hot_entry  *ent;
		uint64_t	c;

		if (t == TAG_EMPTY)
			continue;
		ent = ring_entry(r, ring_index(r)[b]);
		if (t == TAG_BUSY)
		{
			/* being replaced, or abandoned: free unless a dead toucher pins it */
			if (atomic_load_explicit(&ent->inflight, memory_order_relaxed) != 0)
				continue;
			c = 0;
		}
		else
			c = entry_count(r, ent, epoch);
		if (c < *min)
			*min = c;
		found = true;
	}
	return found;
}

/* ---------- installing a key (NOKV_LOCK_HOTRING exclusive) ---------- */

static uint64_t
install(nokv_ctx *ctx, hot_ring *r, uint64_t h, int cf, const char *key, size_t klen,
		uint64_t epoch, uint32_t n)
{
	_Atomic uint64_t *tags = ring_tags(r);
	uint32_t   *index = ring_index(r);
	int64_t		empty = -1;
	int64_t		victim = -1;
	uint64_t	victim_count = UINT64_MAX;
	uint64_t	used;
	hot_entry  *ent;
	uint64_t	result;

	if (atomic_load_explicit(&r->entries, memory_order_relaxed) >= r->capacity)
	{
		uint64_t	coldest;

		/* admit with probability n / (4 coldest + n), before taking the lock */
		if (!window_min_count(r, h, epoch, &coldest) ||
			(coldest > 0 && rng_next(h) % (ADMIT_BIAS * coldest + n) >= n))
		{
			atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
			return n;
		}
	}

	nokv_lock(ctx->plat, NOKV_LOCK_HOTRING, true);
	used = atomic_load_explicit(&r->entries, memory_order_relaxed);
	for (uint32_t i = 0; i < r->probe; i++)
	{
		uint32_t	b = (uint32_t) (h + i) & r->mask;
		uint64_t	t = atomic_load_explicit(&tags[b], memory_order_relaxed);
		uint64_t	c;

		if (t == TAG_EMPTY)
		{
			if (empty < 0)
				empty = b;
			continue;
		}
		ent = ring_entry(r, index[b]);
		if (t == h && entry_matches(ent, cf, key, klen))
		{
			/* installed by someone else since our lookup */
			entry_add(r, ent, epoch, n);
			result = entry_count(r, ent, epoch);
			nokv_unlock(ctx->plat, NOKV_LOCK_HOTRING);
			return result;
		}
		/*
		 * Under the lock a BUSY bucket is one an earlier install abandoned:
		 * the best victim once nobody counts into it, never waited on again
		 * while a (presumably dead) toucher still pins it.
		 */
		if (t == TAG_BUSY)
		{
			if (atomic_load(&ent->inflight) != 0)
				continue;
			c = 0;
		}
		else
			c = entry_count(r, ent, epoch);
		if (c < victim_count)
		{
			victim_count = c;
			victim = b;
		}
	}

	if (used < r->capacity && empty >= 0)
	{
		uint32_t	idx = (uint32_t) used;

		ent = ring_entry(r, idx);
		entry_install(r, ent, cf, key, klen, epoch, n);
		index[empty] = idx;
		atomic_store_explicit(&r->entries, used + 1, memory_order_relaxed);
		atomic_store_explicit(&tags[empty], h, memory_order_release);
		atomic_fetch_add_explicit(&r->inserts, 1, memory_order_relaxed);
		result = entry_count(r, ent, epoch);
		nokv_unlock(ctx->plat, NOKV_LOCK_HOTRING);
		return result;
	}
	if (victim < 0)
	{
		/* full, and nothing but never-used buckets around this key */
		atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
		nokv_unlock(ctx->plat, NOKV_LOCK_HOTRING);
		return n;
	}

	ent = ring_entry(r, index[victim]);
	if (atomic_load_explicit(&tags[victim], memory_order_relaxed) != TAG_BUSY)
	{
		atomic_store(&tags[victim], TAG_BUSY);
		atomic_fetch_add_explicit(&r->evictions, 1, memory_order_relaxed);
	}
	for (int spin = 0; atomic_load(&ent->inflight) != 0; spin++)
	{
		if (spin >= DRAIN_SPINS + DRAIN_YIELDS)
		{
			/* a toucher died or stalls mid-touch: leave the bucket BUSY */
			atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
			nokv_unlock(ctx->plat, NOKV_LOCK_HOTRING);
			return n;
		}
		if (spin < DRAIN_SPINS)
			cpu_relax();
		else
			sched_yield();
	}
	entry_install(r, ent, cf, key, klen, epoch, n);
	atomic_store_explicit(&tags[victim], h, memory_order_release);
	atomic_fetch_add_explicit(&r->inserts, 1, memory_order_relaxed);
	result = entry_count(r, ent, epoch);
	nokv_unlock(ctx->plat, NOKV_LOCK_HOTRING);
	return result;
}

/* ---------- public API ---------- */

uint64_t
nokv_hotring_touch(nokv_ctx *ctx, nokv_off off, int ring, int cf,
				   const char *key, size_t klen, uint64_t now_ms, uint32_t n)
{
	hot_ring   *r = get_ring(ctx, off, ring);
	uint64_t	h;
	uint64_t	epoch;
	hot_entry  *ent;

	if (r == NULL || r->capacity == 0)
		return 0;
	h = hot_hash(cf, key, klen);
	epoch = now_ms / r->slot_ms;
	if (n > 0)
		atomic_fetch_add_explicit(&r->touches[h % HOT_TOUCH_STRIPES].n, 1,
								  memory_order_relaxed);

	ent = lookup_pinned(r, h, cf, key, klen);
	if (ent != NULL)
	{
		uint64_t	count;

		if (n > 0)
			entry_add(r, ent, epoch, n);
		count = entry_count(r, ent, epoch);
		entry_release(ent);
		return count;
	}
	if (n == 0)
		return 0;
	return install(ctx, r, h, cf, key, klen, epoch, n);
}

bool
nokv_hotring_write_limited(nokv_ctx *ctx, nokv_off off, int cf,
						   const char *key, size_t klen, uint64_t now_ms,
						   uint32_t limit)
{
	hot_ring   *r;

	if (limit == 0)
		return false;
	if (nokv_hotring_touch(ctx, off, NOKV_HOT_WRITE, cf, key, klen, now_ms, 0) < limit)
		return false;
	r = get_ring(ctx, off, NOKV_HOT_WRITE);
	atomic_fetch_add_explicit(&r->limited, 1, memory_order_relaxed);
	return true;
}

void
nokv_hotring_stats_get(nokv_ctx *ctx, nokv_off off, int ring, nokv_hotring_stats *st)
{
	hot_ring   *r = get_ring(ctx, off, ring);

	memset(st, 0, sizeof(*st));
	if (r == NULL)
		return;
	for (int i = 0; i < HOT_TOUCH_STRIPES; i++)
		st->touches += atomic_load_explicit(&r->touches[i].n, memory_order_relaxed);
	st->inserts = atomic_load_explicit(&r->inserts, memory_order_relaxed);
	st->evictions = atomic_load_explicit(&r->evictions, memory_order_relaxed);
	st->entries = atomic_load_explicit(&r->entries, memory_order_relaxed);
	st->capacity = r->capacity;
	st->limited = atomic_load_explicit(&r->limited, memory_order_relaxed);
	st->dropped = atomic_load_explicit(&r->dropped, memory_order_relaxed);
}

/* ---------- top-N ---------- */

/* < 0 when a ranks before b: higher count, then cf, then key bytes */
static int
hotkey_cmp(const nokv_hotkey *a, const nokv_hotkey *b)
{
	size_t		la = a->key_len < NOKV_HOT_KEY_PREFIX ? a->key_len : NOKV_HOT_KEY_PREFIX;
	size_t		lb = b->key_len < NOKV_HOT_KEY_PREFIX ? b->key_len : NOKV_HOT_KEY_PREFIX;
	int			c;

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	if (a->cf != b->cf)
		return a->cf < b->cf ? -1 : 1;
	c = memcmp(a->key, b->key, la < lb ? la : lb);
	if (c != 0)
		return c;
	if (a->key_len != b->key_len)
		return a->key_len < b->key_len ? -1 : 1;
	return 0;
}

static int
hotkey_qsort_cmp(const void *a, const void *b)
{
	return hotkey_cmp(a, b);
}

/* heap with the lowest-ranked row at the root */
static void
heap_sift_down(nokv_hotkey *h, int size, int i)
{
	for (;;)
	{
		int			worst = i;
		int			l = 2 * i + 1;
		int			rr = l + 1;
		nokv_hotkey tmp;

		if (l < size && hotkey_cmp(&h[l], &h[worst]) > 0)
			worst = l;
		if (rr < size && hotkey_cmp(&h[rr], &h[worst]) > 0)
			worst = rr;
		if (worst == i)
			return;
		tmp = h[i];
		h[i] = h[worst];
		h[worst] = tmp;
		i = worst;
	}
}

static void
heap_sift_up(nokv_hotkey *h, int i)
{
	while (i > 0)
	{
		int			parent = (i - 1) / 2;
		nokv_hotkey tmp;

		if (hotkey_cmp(&h[i], &h[parent]) <= 0)
			return;
		tmp = h[i];
		h[i] = h[parent];
		h[parent] = tmp;
		i = parent;
	}
}

static void
row_from_entry(nokv_hotkey *row, const hot_entry *ent, uint64_t count)
{
	row->cf = ent->cf;
	memcpy(row->key, ent->key, sizeof(row->key));
	row->key_len = ent->key_len;
	row->truncated = ent->key_len > NOKV_HOT_KEY_PREFIX;
	row->count = count;
}

int
nokv_hotring_topn(nokv_ctx *ctx, nokv_off off, int ring, uint64_t now_ms,
				  nokv_hotkey *out, int n)
{
	hot_ring   *r = get_ring(ctx, off, ring);
	_Atomic uint64_t *tags;
	uint64_t	epoch;
	int			size = 0;

	if (r == NULL || r->capacity == 0 || out == NULL || n <= 0)
		return 0;
	tags = ring_tags(r);
	epoch = now_ms / r->slot_ms;

	/* shared: installs (which rewrite keys) wait, touches go on */
	nokv_lock(ctx->plat, NOKV_LOCK_HOTRING, false);
	for (uint32_t b = 0; b < r->nbuckets; b++)
	{
		uint64_t	t = atomic_load_explicit(&tags[b], memory_order_acquire);
		hot_entry  *ent;
		uint64_t	count;
		nokv_hotkey row;

		if (t < TAG_FIRST)
			continue;
		ent = ring_entry(r, ring_index(r)[b]);
		count = entry_count(r, ent, epoch);
		if (count == 0)
			continue;
		if (size < n)
		{
			row_from_entry(&out[size], ent, count);
			heap_sift_up(out, size);
			size++;
			continue;
		}
		if (count < out[0].count)
			continue;
		row_from_entry(&row, ent, count);
		if (hotkey_cmp(&row, &out[0]) < 0)
		{
			out[0] = row;
			heap_sift_down(out, size, 0);
		}
	}
	nokv_unlock(ctx->plat, NOKV_LOCK_HOTRING);

	qsort(out, (size_t) size, sizeof(nokv_hotkey), hotkey_qsort_cmp);
	return size;
}
