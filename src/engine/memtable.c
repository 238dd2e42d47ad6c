/*-------------------------------------------------------------------------
 *
 * memtable.c
 *	  Arena + lock-free skiplist memtable living in the shared region.
 *
 * A memtable is a 128-byte header followed by a fixed arena.  Every node is
 * one bump allocation from the arena holding its header, its tower of next
 * links and then the key and value bytes inline, so an insert costs one
 * atomic fetch-add for space plus one compare-and-swap per level, and a
 * reader touching a node usually finds its key in the same cache line.  An
 * ascending run of entries costs one fetch-add and one compare-and-swap per
 * level for the whole run (nokv_memtable_add_run).
 *
 * Links are uint32 offsets from the arena start (0 = nil; the first 8 arena
 * bytes are never handed out), never pointers: the region may be mapped at
 * a different address in every process, and a fork()ed child, a second
 * mapping of the same memory or an unrelated process attaching later all
 * read the same list.  Lock-free 32/64-bit C11 atomics are address-free, so
 * the compare-and-swaps work across processes as they do across threads.
 *
 * The skiplist is the LevelDB/Badger design: a node is linked bottom-up,
 * each level with a release compare-and-swap on its predecessor's link, so
 * once a node is reachable at level i it is already fully linked at every
 * level below; readers follow links with acquire loads and never lock.
 * Nodes are never unlinked or freed individually; the whole memtable is
 * reset after its contents have been flushed.
 *
 * Two skiplists share the arena: point entries ordered by
 * nokv_ikey_compare, and range tombstones stored as the internal key
 * (cf, start, version, NOKV_KIND_RANGE_DELETE) with the end key as value,
 * ordered by that internal key and then by end key.
 *
 * src/engine/memtable.c
 *-------------------------------------------------------------------------
 */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "nokv/coding.h"
#include "nokv/memtable.h"
#include "nokv/status.h"

/*
 * Branching factor 1/2 and at most 20 levels.  The search remembers the
 * node that ended the walk on the level above and does not compare it
 * again on the level below; with that, a search costs about 1.5 log2(n)
 * key comparisons at p = 1/2, 1.7 log2(n) at p = 1/3 and 1.9 log2(n) at
 * p = 1/4, and every comparison of a node not in cache is a cache miss.
 * Measured on 400k random 16-byte keys with 100-byte values (min of 8
 * runs): insert 1250 / 1323 / 1506 ns and get 1497 / 1595 / 1883 ns for
 * p = 1/2, 1/3, 1/4; 24.7 vs 29.3 comparisons per insert for 1/2 vs 1/4.
 * The price is 2 links per node on average instead of 1.33, i.e. about
 * 3 bytes per entry (2% of a 150-byte entry).  20 levels keep searches
 * logarithmic up to 2^20 entries, more than a 64 MiB memtable holds; a
 * bigger one only adds a few hops on the (always cached) top level, while
 * a higher cap would raise the worst-case reservation of
 * nokv_memtable_entry_cost() by 4 bytes per level.
 */
#define MT_MAX_HEIGHT		20

#define MT_MAGIC			0x4d454d54u /* "MEMT" */
#define MT_HEADER_SIZE		128
#define MT_NODE_ALIGN		8

/* the two lists of one memtable */
#define MT_POINTS			0
#define MT_TOMBS			1

/*
 * Shared header.  The first cache line is read by every search and written
 * only when a list grows taller; the second takes the fetch-adds every
 * insert performs, so they do not bounce the line readers depend on.
 */
typedef struct mt_header
{
	uint32_t	magic;
	uint32_t	arena_size;
	_Atomic uint32_t height[2];	/* current height of each list */
	char		pad1[64 - 16];
	_Atomic uint64_t used;		/* bump offset; may exceed arena_size */
	_Atomic uint64_t entries;
	_Atomic uint64_t tombstones;
	char		pad2[64 - 24];
} mt_header;

_Static_assert(sizeof(mt_header) == MT_HEADER_SIZE, "memtable header size");

/*
 * A node: fixed part, tower of `height` links, key bytes, value bytes.
 * The fixed fields are written before the node is published and never
 * change afterwards.
 */
typedef struct mt_node
{
	uint32_t	key_len;
	uint32_t	value_len;
	uint32_t	height;
	_Atomic uint32_t next[];
} mt_node;

#define MT_NODE_FIXED		offsetof(mt_node, next)

static inline size_t
mt_node_size(size_t height, size_t key_len, size_t value_len)
{
	return NOKV_ALIGN(MT_NODE_FIXED + height * sizeof(uint32_t) +
					  key_len + value_len, MT_NODE_ALIGN);
}

/* the two head nodes sit at fixed offsets right after the nil bytes */
#define MT_HEAD_SIZE		NOKV_ALIGN(MT_NODE_FIXED + MT_MAX_HEIGHT * sizeof(uint32_t), MT_NODE_ALIGN)
#define MT_FIRST_OFFSET		MT_NODE_ALIGN
#define MT_HEAD(list)		((uint32_t) (MT_FIRST_OFFSET + (list) * MT_HEAD_SIZE))
#define MT_ARENA_MIN		(MT_FIRST_OFFSET + 2 * MT_HEAD_SIZE)

/* resolved per-call view: header and arena addresses in this process */
typedef struct mt_ref
{
	mt_header  *hdr;
	char	   *arena;
} mt_ref;

static inline mt_ref
mt_resolve(const nokv_ctx *ctx, nokv_off off)
{
	mt_ref		r;

	r.hdr = (mt_header *) (ctx->base + off);
	r.arena = ctx->base + off + MT_HEADER_SIZE;
	return r;
}

static inline mt_node *
mt_node_at(const char *arena, uint32_t off)
{
	return (mt_node *) (arena + off);
}

static inline char *
mt_node_key(const mt_node *n)
{
	return (char *) n + MT_NODE_FIXED + (size_t) n->height * sizeof(uint32_t);
}

static inline uint32_t
mt_load_next(const mt_node *n, int level)
{
	return atomic_load_explicit(&((mt_node *) n)->next[level], memory_order_acquire);
}

/*
 * The key being searched for.  For point entries only k is used; for
 * tombstones e is the end key, the tie-breaker between tombstones with the
 * same start and version (an absent e sorts first, which is what a seek
 * wants).  prefix caches the first 8 bytes of the lookup key as a
 * big-endian integer when the lookup key has at least 8 bytes.
 */
typedef struct mt_key
{
	const char *k;
	size_t		klen;
	const char *e;
	size_t		elen;
	bool		has_prefix;
	uint64_t	prefix;
} mt_key;

#define MT_PREFIX_MIN_KEY	(8 + NOKV_IKEY_TRAILER)

static inline uint64_t
mt_load_prefix(const char *p)
{
	uint64_t	v;

	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline mt_key
mt_key_make(const char *k, size_t klen, const char *e, size_t elen)
{
	mt_key		key = {.k = k, .klen = klen, .e = e, .elen = elen};

	if (klen >= MT_PREFIX_MIN_KEY)
	{
		key.has_prefix = true;
		key.prefix = mt_load_prefix(k);
	}
	return key;
}

/* a point node's own key, to search with (the key extension is not compared for points) */
static inline mt_key
mt_node_search_key(const char *arena, uint32_t off)
{
	const mt_node *n = mt_node_at(arena, off);

	return mt_key_make(mt_node_key(n), n->key_len, NULL, 0);
}

/*
 * Sign of (search key - node key), i.e. nokv_ikey_compare(key, node key),
 * then the end keys for tombstones.  When both lookup keys have at least 8
 * bytes, differing first 8 bytes decide the order exactly as memcmp would,
 * and comparing them as integers costs one load from the node instead of
 * a call to memcmp; random keys almost always differ there.
 */
static inline __attribute__((always_inline)) int
mt_compare(int list, const mt_key *key, const mt_node *n)
{
	const char *nk = mt_node_key(n);
	int			r;

	if (key->has_prefix && n->key_len >= MT_PREFIX_MIN_KEY)
	{
		uint64_t	np = mt_load_prefix(nk);

		if (key->prefix != np)
			return key->prefix < np ? -1 : 1;
	}
	r = nokv_ikey_compare(key->k, key->klen, nk, n->key_len);
	if (r != 0 || list == MT_POINTS)
		return r;
	return nokv_lkey_compare(key->e, key->elen, nk + n->key_len, n->value_len);
}

/*
 * Start fetching the node after n on this level while n's key is being
 * compared: a search moves right on most levels, so the miss on the next
 * node overlaps with the work on this one (n's line is needed for the
 * comparison anyway).
 */
static inline void
mt_prefetch_after(const char *arena, uint32_t n, int level)
{
	uint32_t	nn = atomic_load_explicit(&mt_node_at(arena, n)->next[level],
										  memory_order_relaxed);

	__builtin_prefetch(arena + nn);
}

/* ---------- per-thread random heights ---------- */

/*
 * xorshift64* state per thread.  A fork()ed child inherits its parent's
 * state, which would make sibling processes draw identical heights; the
 * atfork handler zeroes it in the child so the next draw reseeds from the
 * child's pid and clock.  Equal heights would only hurt balance, never
 * correctness.
 */
static __thread uint64_t mt_rng_state;
static pthread_once_t mt_atfork_once = PTHREAD_ONCE_INIT;

static void
mt_rng_forget(void)
{
	mt_rng_state = 0;
}

static void
mt_register_atfork(void)
{
	(void) pthread_atfork(NULL, NULL, mt_rng_forget);
}

static uint64_t
mt_splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static __attribute__((noinline)) uint64_t
mt_rng_seed(void)
{
	struct timespec ts;
	uint64_t	s;

	pthread_once(&mt_atfork_once, mt_register_atfork);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	s = mt_splitmix((uint64_t) getpid() << 32 ^ (uint64_t) (uintptr_t) &mt_rng_state);
	s = mt_splitmix(s ^ ((uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec));
	return s ? s : 0x2545f4914f6cdd1dull;
}

/* the next height from generator state *x (xorshift64*) */
static inline int
mt_next_height(uint64_t *x)
{
	uint64_t	r;
	int			h = 1;

	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	r = (*x * 0x2545f4914f6cdd1dull) >> 32;	/* the high bits are the good ones */
	/* each further level with probability 1/2: one random bit per level */
	while (h < MT_MAX_HEIGHT && (r & 1) == 0)
	{
		h++;
		r >>= 1;
	}
	return h;
}

static inline int
mt_random_height(void)
{
	uint64_t	x = mt_rng_state;
	int			h;

	if (x == 0)
		x = mt_rng_seed();
	h = mt_next_height(&x);
	mt_rng_state = x;
	return h;
}

/*
 * n heights at once: the thread-local state is read and written once (in a
 * shared library each access is a call to __tls_get_addr)
 */
static void
mt_random_heights(uint8_t *heights, int n)
{
	uint64_t	x = mt_rng_state;

	if (x == 0)
		x = mt_rng_seed();
	for (int i = 0; i < n; i++)
		heights[i] = (uint8_t) mt_next_height(&x);
	mt_rng_state = x;
}

/* ---------- arena ---------- */

/*
 * Reserve size bytes (a multiple of MT_NODE_ALIGN).  Relaxed ordering is
 * enough: nobody reads the node until the release compare-and-swap that
 * links it.  A failed reservation leaves the counter past the end, which
 * only wastes the tail; it never hands out bytes beyond arena_size.
 */
static inline uint32_t
mt_alloc(mt_header *hdr, size_t size)
{
	uint64_t	old;

	if (size > hdr->arena_size)
		return 0;
	old = atomic_fetch_add_explicit(&hdr->used, size, memory_order_relaxed);
	if (old + size > hdr->arena_size)
		return 0;
	return (uint32_t) old;
}

/*
 * A process touching a page of the shared region for the first time takes a
 * minor fault to map it in its own page tables: one per 4 KiB, about 25
 * entries.  The arena fills in order, so the insert whose node crosses into
 * the next MT_PREFAULT_CHUNK maps that chunk in one call instead.  Another
 * process writing there later still faults its own way in; where the call
 * is not available (before Linux 5.14) nothing changes.
 */
#define MT_PREFAULT_CHUNK	(256 * 1024)

static void
mt_prefault(mt_ref m, uint64_t from)
{
#ifdef MADV_POPULATE_WRITE
	long		page_size = sysconf(_SC_PAGESIZE);
	uintptr_t	start;
	uintptr_t	end;

	if (from >= m.hdr->arena_size || page_size <= 0)
		return;
	start = (uintptr_t) (m.arena + from) & ~(uintptr_t) (page_size - 1);
	end = (uintptr_t) (m.arena + (from + MT_PREFAULT_CHUNK < m.hdr->arena_size
								  ? from + MT_PREFAULT_CHUNK : m.hdr->arena_size));
	(void) madvise((void *) start, end - start, MADV_POPULATE_WRITE);
#else
	(void) m;
	(void) from;
#endif
}

/* ---------- skiplist ---------- */

/*
 * The arena bytes prefetched for the next nodes: MT_PREFETCH_SPAN bytes
 * starting MT_PREFETCH_DIST past a new node.  A batch is inserted in a
 * tight loop (a node every 60-100 ns), so the lines must be asked for
 * several nodes ahead to arrive in time; the span covers what one node
 * advances (about 170 bytes for a table row).
 */
#define MT_PREFETCH_DIST	1024
#define MT_PREFETCH_SPAN	256

/*
 * Fetch a line we are about to write, in exclusive state.  A plain
 * prefetch may bring it in shared (the flush worker read the previous
 * contents of a recycled memtable), and the store then still waits for
 * ownership.  GCC emits PREFETCHW only when told the CPU has it; x86
 * processors without it execute the encoding as a no-op.
 */
static inline void
mt_prefetch_write(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("prefetchw %0" : : "m"(*(const char *) p));
#else
	__builtin_prefetch(p, 1, 3);
#endif
}

/*
 * Find, at one level, the adjacent pair (prev, next) with prev < key <=
 * next, starting from before (which must be < key).  known_bigger is a node
 * already known to be > key (from the level above), which saves one
 * comparison per level.  Returns true if a node equal to key was found.
 */
static inline __attribute__((always_inline)) bool
mt_find_splice(const char *arena, int list, const mt_key *key,
			   uint32_t before, int level, uint32_t known_bigger,
			   uint32_t *prev, uint32_t *next)
{
	for (;;)
	{
		uint32_t	n = mt_load_next(mt_node_at(arena, before), level);
		int			c;

		if (n == 0 || n == known_bigger)
		{
			*prev = before;
			*next = n;
			return false;
		}
		mt_prefetch_after(arena, n, level);
		c = mt_compare(list, key, mt_node_at(arena, n));
		if (c == 0)
			return true;
		if (c < 0)
		{
			*prev = before;
			*next = n;
			return false;
		}
		before = n;
	}
}

/*
 * Find key's splice at every level below list_height into prev/next.
 * Returns true if a node equal to key is already in the list.
 *
 * With a hint, prev/next are the hint's own arrays: a level the hint
 * already brackets is neither copied nor rewritten, so an insert that
 * continues an ascending run stores little besides the node itself (every
 * store before the linking CAS must drain first).  A hint whose arrays were
 * partly overwritten by a search that did not end in an insert is marked
 * unusable (last = 0); the caller sets last again once its insert is done.
 */
static inline __attribute__((always_inline)) bool
mt_search(mt_ref m, int list, const mt_key *key, int list_height, nokv_mt_hint *hint,
		  uint32_t *prev, uint32_t *next)
{
	uint32_t	head = MT_HEAD(list);
	int			start_level = list_height;
	uint32_t	before;
	uint32_t	bigger;

	/*
	 * A hint is usable when the key sorts after the hint's last key: every
	 * prev of its splice is then before the key.  The lowest level whose
	 * next is after the key brackets it, and so does every level above
	 * (a higher level's next is a node of this level at or after this
	 * level's next); the search starts there.  Nodes linked meanwhile by
	 * others between a prev and its next are found by the linking CAS,
	 * which searches again from prev.  A level with prev 0 is one the list
	 * grew since the hint was taken: no node was there then.
	 */
	if (hint != NULL && hint->last != 0 &&
		mt_compare(list, key, mt_node_at(m.arena, hint->last)) > 0)
	{
		for (int i = 0; i < list_height && prev[i] != 0; i++)
			if (next[i] == 0 || mt_compare(list, key, mt_node_at(m.arena, next[i])) < 0)
			{
				start_level = i;
				break;
			}
		for (int i = start_level; i < list_height; i++)
			if (prev[i] == 0)
			{
				prev[i] = head;
				next[i] = 0;
			}
	}
	if (hint != NULL)
		hint->last = 0;			/* until the caller's insert completes */

	/* splice at every level below start_level, top-down */
	before = start_level < list_height ? prev[start_level] : head;
	bigger = start_level < list_height ? next[start_level] : 0;
	for (int i = start_level - 1; i >= 0; i--)
	{
		if (mt_find_splice(m.arena, list, key, before, i, bigger, &prev[i], &next[i]))
			return true;
		before = prev[i];
		bigger = next[i];
	}
	return false;
}

/* raise the list's height to at least height */
static inline void
mt_raise_height(mt_ref m, int list, int list_height, int height)
{
	uint32_t	cur = (uint32_t) list_height;

	/*
	 * Raised before any link: a reader that sees the new height before our
	 * links only finds nil at the head for those levels and descends.
	 */
	while ((uint32_t) height > cur &&
		   !atomic_compare_exchange_weak_explicit(&m.hdr->height[list], &cur,
												  (uint32_t) height,
												  memory_order_relaxed,
												  memory_order_relaxed))
		;
}

/*
 * Link node off (whose key is key) at one level between *prev and *next.
 * The release on the successful CAS publishes the node's contents and the
 * link just stored to any reader that acquires the pointer to it.
 *
 * If someone linked a node between prev and next meanwhile, search again
 * from prev, which is still smaller than our key (nodes never go away).
 * An equal key can only show up at level 0, when a concurrent insert of
 * the same key won the race: returns false, the node stays unlinked and is
 * wasted arena space.  At higher levels it is impossible: the only node
 * with our key is ours, and it is not yet linked there.
 */
static inline __attribute__((always_inline)) bool
mt_link_level(mt_ref m, int list, const mt_key *key, uint32_t off, int level,
			  uint32_t *prev, uint32_t *next)
{
	mt_node    *nd = mt_node_at(m.arena, off);

	for (;;)
	{
		uint32_t	expected = *next;

		atomic_store_explicit(&nd->next[level], *next, memory_order_relaxed);
		if (atomic_compare_exchange_strong_explicit(&mt_node_at(m.arena, *prev)->next[level],
													&expected, off,
													memory_order_release,
													memory_order_relaxed))
			return true;
		if (mt_find_splice(m.arena, list, key, *prev, level, 0, prev, next))
		{
			assert(level == 0);
			return false;
		}
	}
}

/*
 * Insert a node with the given key and value.  The search runs before the
 * allocation so that re-applying entries already present (replay of an
 * external log) consumes no arena space.
 */
_Static_assert(NOKV_MT_HINT_LEVELS == MT_MAX_HEIGHT, "a hint covers every level");

static inline __attribute__((always_inline)) int
mt_insert(mt_ref m, int list, const mt_key *key, const char *value, size_t value_len,
		  nokv_mt_hint *hint)
{
	uint32_t	local_prev[MT_MAX_HEIGHT];
	uint32_t	local_next[MT_MAX_HEIGHT];
	uint32_t   *prev = hint != NULL ? hint->prev : local_prev;
	uint32_t   *next = hint != NULL ? hint->next : local_next;
	uint32_t	head = MT_HEAD(list);
	int			list_height;
	int			height;
	uint32_t	off;
	size_t		node_size;
	mt_node    *nd;
	char	   *kp;

	if (key->klen + key->elen > UINT32_MAX || value_len > UINT32_MAX)
		return NOKV_NO_SPACE;

	height = mt_random_height();
	list_height = (int) atomic_load_explicit(&m.hdr->height[list], memory_order_relaxed);
	if (mt_search(m, list, key, list_height, hint, prev, next))
		return NOKV_OK;			/* an equal key: nothing to do */
	for (int i = list_height; i < height; i++)
	{
		prev[i] = head;
		next[i] = 0;
	}

	node_size = mt_node_size(height, key->klen + key->elen, value_len);
	off = mt_alloc(m.hdr, node_size);
	if (off == 0)
		return NOKV_NO_SPACE;
	nd = mt_node_at(m.arena, off);
	if (off / MT_PREFAULT_CHUNK != (off + node_size) / MT_PREFAULT_CHUNK)
		mt_prefault(m, off + node_size);

	/*
	 * The arena is filled in order: ask for the lines the next nodes will
	 * take now, so that writing them later does not stall the linking
	 * CAS, which waits for every store before it.
	 */
	for (size_t ahead = MT_PREFETCH_DIST; ahead < MT_PREFETCH_DIST + MT_PREFETCH_SPAN; ahead += 64)
		mt_prefetch_write((char *) nd + node_size + ahead);
	nd->key_len = (uint32_t) key->klen;
	nd->value_len = (uint32_t) (key->elen + value_len);
	nd->height = (uint32_t) height;
	kp = mt_node_key(nd);
	memcpy(kp, key->k, key->klen);
	if (key->elen == 1)
		kp[key->klen] = key->e[0];	/* a one-byte value header */
	else if (key->elen)
		memcpy(kp + key->klen, key->e, key->elen);
	if (value_len)
		memcpy(kp + key->klen + key->elen, value, value_len);

	mt_raise_height(m, list, list_height, height);

	/*
	 * Link bottom-up: level 0 is what makes the entry visible, higher
	 * levels are only shortcuts.
	 */
	for (int i = 0; i < height; i++)
		if (!mt_link_level(m, list, key, off, i, &prev[i], &next[i]))
			return NOKV_OK;

	if (hint != NULL)
		hint->unpublished++;
	else
		atomic_fetch_add_explicit(list == MT_POINTS ? &m.hdr->entries : &m.hdr->tombstones,
								  1, memory_order_relaxed);
	if (hint != NULL)
	{
		/*
		 * The new node is the predecessor on its own levels (its next there
		 * stays); the levels above keep the splice found.  Levels above both
		 * heights were never set and are still 0.
		 */
		for (int i = 0; i < height; i++)
			prev[i] = off;
		hint->last = off;
	}
	return NOKV_OK;
}

/*
 * Inserting an ascending run of point entries as one piece.
 *
 * The nodes are laid out back to back in one allocation and chained to each
 * other on every level before any of them is visible; if no node of the
 * list falls between the run's first and last keys, the run goes in with
 * one CAS per level, on the predecessor's link, exactly like a single node
 * whose tower is the run.  A per-node insert pays a fetch-add for space and
 * a CAS per level (two on average), and each of those locked instructions
 * waits for the node's stores to drain; here a run of 64 pays about eight.
 *
 * Readers see nothing of the run until the level-0 CAS publishes it whole
 * (its release covers every node's contents and the links within the run),
 * and a level above 0 only once its own CAS succeeds; a node becomes
 * reachable at a level only after it is reachable at every level below, as
 * with single inserts.
 *
 * Once level 0 is linked, another writer may insert a key between two run
 * nodes: at level 0 that is an ordinary insert after a run node; at a level
 * the run has not linked yet the writer links between the run's predecessor
 * and successor there, our CAS on that predecessor fails, and the search
 * again finds the foreign node inside the run's range.  The run cannot go
 * in as one piece at that level any more, so from that level up each node
 * is linked on its own (mt_link_level), its next link rewritten first.  The
 * same happens at level 0 when a node turned up inside the range before
 * the run was published (the run is then never visible as one piece) or
 * the first key is already present (replay of an external log).
 */
#ifdef NOKV_CHECK_INVARIANTS
void		(*nokv_memtable_run_linked_hook) (void *arg);
void	   *nokv_memtable_run_linked_hook_arg;
#endif

static int
mt_link_nodes_from(mt_ref m, int list, uint32_t off, int n, int from_level)
{
	int			list_height = (int) atomic_load_explicit(&m.hdr->height[list], memory_order_relaxed);
	uint32_t	at = off;
	int			linked = 0;

	for (int i = 0; i < n; i++)
	{
		mt_node    *nd = mt_node_at(m.arena, at);
		mt_key		key = mt_node_search_key(m.arena, at);
		int			height = (int) nd->height;
		uint32_t	prev[MT_MAX_HEIGHT];
		uint32_t	next[MT_MAX_HEIGHT];
		uint32_t	before = MT_HEAD(list);
		uint32_t	bigger = 0;
		bool		visible = from_level > 0;
		bool		present = false;

		/*
		 * A search from the head, down to from_level only: below it the node
		 * is already linked and would be found as an equal key.  The run's
		 * nodes may lie far apart (say an update's marker and its new row),
		 * so starting from the run's splice could walk a long way on a low
		 * level.
		 */
		for (int l = list_height - 1; l >= from_level; l--)
		{
			present = mt_find_splice(m.arena, list, &key, before, l, bigger, &prev[l], &next[l]);
			if (present)
				break;
			before = prev[l];
			bigger = next[l];
		}
		for (int l = from_level; l < height && !present; l++)
		{
			if (!mt_link_level(m, list, &key, at, l, &prev[l], &next[l]))
				break;			/* an equal key at level 0: this node stays out */
			if (l == 0)
				visible = true;
		}
		linked += visible;
		at += (uint32_t) mt_node_size(nd->height, nd->key_len, nd->value_len);
	}
	return linked;
}

static int
mt_insert_run(mt_ref m, const nokv_mt_entry *e, int n, nokv_mt_hint *hint)
{
	const int	list = MT_POINTS;
	uint32_t   *prev = hint->prev;
	uint32_t   *next = hint->next;
	uint8_t		heights[NOKV_MT_RUN_MAX];
	uint32_t	sizes[NOKV_MT_RUN_MAX];
	uint32_t	first_at[MT_MAX_HEIGHT];
	uint32_t	last_at[MT_MAX_HEIGHT];
	uint64_t	total = 0;
	int			run_height = 0;
	int			list_height;
	uint32_t	off;
	uint32_t	at;
	mt_key		first_key;
	mt_key		last_key;
	bool		found;
	int			linked;

	mt_random_heights(heights, n);
	for (int i = 0; i < n; i++)
	{
		size_t		klen = nokv_ikey_size(e[i].ukey_len);

		if (klen + e[i].l1 > UINT32_MAX || e[i].l2 > UINT32_MAX)
			return NOKV_NO_SPACE;
		if (heights[i] > run_height)
			run_height = heights[i];
		sizes[i] = (uint32_t) mt_node_size(heights[i], klen + e[i].l1, e[i].l2);
		total += sizes[i];
	}
	if (total > m.hdr->arena_size)
		return NOKV_NO_SPACE;
	off = mt_alloc(m.hdr, (size_t) total);
	if (off == 0)
		return NOKV_NO_SPACE;
	if (off / MT_PREFAULT_CHUNK != (off + total) / MT_PREFAULT_CHUNK)
		mt_prefault(m, (off + total) / MT_PREFAULT_CHUNK * MT_PREFAULT_CHUNK);

	/* build the nodes, each chained to the run's previous one on its levels */
	for (int l = 0; l < run_height; l++)
		first_at[l] = last_at[l] = 0;
	at = off;
	for (int i = 0; i < n; i++)
	{
		mt_node    *nd = mt_node_at(m.arena, at);
		size_t		klen = nokv_ikey_size(e[i].ukey_len);
		size_t		size = sizes[i];
		char	   *kp;

		for (size_t ahead = MT_PREFETCH_DIST; ahead < MT_PREFETCH_DIST + MT_PREFETCH_SPAN; ahead += 64)
			mt_prefetch_write((char *) nd + size + ahead);
		nd->key_len = (uint32_t) klen;
		nd->value_len = (uint32_t) (e[i].l1 + e[i].l2);
		nd->height = heights[i];
		kp = mt_node_key(nd);
		nokv_ikey_encode(kp, e[i].cf, e[i].ukey, e[i].ukey_len, e[i].version, e[i].kind);
		/* v1 is mostly a one-byte value header: no call to memcpy for it */
		if (e[i].l1 == 1)
			kp[klen] = e[i].v1[0];
		else if (e[i].l1)
			memcpy(kp + klen, e[i].v1, e[i].l1);
		if (e[i].l2)
			memcpy(kp + klen + e[i].l1, e[i].v2, e[i].l2);
		for (int l = 0; l < heights[i]; l++)
		{
			if (last_at[l] != 0)
				atomic_store_explicit(&mt_node_at(m.arena, last_at[l])->next[l], at,
									  memory_order_relaxed);
			else
				first_at[l] = at;
			last_at[l] = at;
		}
		at += (uint32_t) size;
	}
#ifdef NOKV_CHECK_INVARIANTS
	/* the caller's promise (the sanitizer build checks it) */
	for (uint32_t a = off, b; a != last_at[0]; a = b)
	{
		mt_node    *x = mt_node_at(m.arena, a);
		mt_node    *y = mt_node_at(m.arena, b = a + (uint32_t) mt_node_size(x->height, x->key_len, x->value_len));

		assert(nokv_ikey_compare(mt_node_key(x), x->key_len, mt_node_key(y), y->key_len) < 0);
	}
#endif

	first_key = mt_node_search_key(m.arena, off);
	last_key = mt_node_search_key(m.arena, last_at[0]);
	list_height = (int) atomic_load_explicit(&m.hdr->height[list], memory_order_relaxed);
	found = mt_search(m, list, &first_key, list_height, hint, prev, next);
	for (int l = found ? 0 : list_height; l < (list_height > run_height ? list_height : run_height); l++)
	{
		prev[l] = MT_HEAD(list);
		next[l] = 0;
	}
	mt_raise_height(m, list, list_height, run_height);
	if (found)
	{
		/* the first key is present: node by node, equal keys drop out */
		linked = mt_link_nodes_from(m, list, off, n, 0);
		hint->unpublished += (uint32_t) linked;
		return NOKV_OK;
	}

	for (int l = 0; l < run_height; l++)
	{
		mt_key		lo = l == 0 ? first_key : mt_node_search_key(m.arena, first_at[l]);
		mt_key		hi = l == 0 ? last_key : mt_node_search_key(m.arena, last_at[l]);

		for (;;)
		{
			uint32_t	expected = next[l];

			if (next[l] != 0 && mt_compare(list, &hi, mt_node_at(m.arena, next[l])) >= 0)
			{
				/* a node inside the run's range: node by node from here up */
				linked = mt_link_nodes_from(m, list, off, n, l);
				hint->unpublished += (uint32_t) linked;
				return NOKV_OK;
			}
			atomic_store_explicit(&mt_node_at(m.arena, last_at[l])->next[l], next[l],
								  memory_order_relaxed);
			if (atomic_compare_exchange_strong_explicit(&mt_node_at(m.arena, prev[l])->next[l],
														&expected, first_at[l],
														memory_order_release,
														memory_order_relaxed))
			{
#ifdef NOKV_CHECK_INVARIANTS
				if (l == 0 && nokv_memtable_run_linked_hook)
					nokv_memtable_run_linked_hook(nokv_memtable_run_linked_hook_arg);
#endif
				break;
			}
			found = mt_find_splice(m.arena, list, &lo, prev[l], l, 0, &prev[l], &next[l]);
			if (found)
			{
				/* a concurrent insert of the first key won (level 0 only) */
				assert(l == 0);
				linked = mt_link_nodes_from(m, list, off, n, 0);
				hint->unpublished += (uint32_t) linked;
				return NOKV_OK;
			}
		}
	}

	/* the run's last node at each of its levels is the hint's predecessor there */
	for (int l = 0; l < run_height; l++)
		prev[l] = last_at[l];
	hint->last = last_at[0];
	hint->unpublished += (uint32_t) n;
	return NOKV_OK;
}

/* first node >= key, or 0 */
static inline __attribute__((always_inline)) uint32_t
mt_find_ge(mt_ref m, int list, const mt_key *key)
{
	uint32_t	x = MT_HEAD(list);
	int			level = (int) atomic_load_explicit(&m.hdr->height[list], memory_order_relaxed) - 1;
	uint32_t	known_bigger = 0;

	if (level < 0)
		return 0;
	for (;;)
	{
		uint32_t	n = mt_load_next(mt_node_at(m.arena, x), level);

		if (n != 0 && n != known_bigger)
		{
			mt_prefetch_after(m.arena, n, level);
			if (mt_compare(list, key, mt_node_at(m.arena, n)) > 0)
			{
				x = n;
				continue;
			}
		}
		if (level == 0)
			return n;
		known_bigger = n;
		level--;
	}
}

/* last node < key, or 0 */
static uint32_t
mt_find_lt(mt_ref m, int list, const mt_key *key)
{
	uint32_t	x = MT_HEAD(list);
	int			level = (int) atomic_load_explicit(&m.hdr->height[list], memory_order_relaxed) - 1;
	uint32_t	known_bigger = 0;

	if (level < 0)
		return 0;
	for (;;)
	{
		uint32_t	n = mt_load_next(mt_node_at(m.arena, x), level);

		if (n != 0 && n != known_bigger &&
			mt_compare(list, key, mt_node_at(m.arena, n)) > 0)
		{
			x = n;
			continue;
		}
		if (level == 0)
			return x == MT_HEAD(list) ? 0 : x;
		known_bigger = n;
		level--;
	}
}

/* last node of the list, or 0 */
static uint32_t
mt_find_last(mt_ref m, int list)
{
	uint32_t	x = MT_HEAD(list);
	int			level = (int) atomic_load_explicit(&m.hdr->height[list], memory_order_relaxed) - 1;

	if (level < 0)
		return 0;
	for (;;)
	{
		uint32_t	n = mt_load_next(mt_node_at(m.arena, x), level);

		if (n != 0)
		{
			x = n;
			continue;
		}
		if (level == 0)
			return x == MT_HEAD(list) ? 0 : x;
		level--;
	}
}

/* ---------- format, sizing, counters ---------- */

size_t
nokv_memtable_header_size(void)
{
	return MT_HEADER_SIZE;
}

static void
mt_init(mt_header *hdr, uint32_t arena_size)
{
	char	   *arena = (char *) hdr + MT_HEADER_SIZE;

	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = MT_MAGIC;
	hdr->arena_size = arena_size;
	memset(arena, 0, MT_ARENA_MIN);
	for (int list = 0; list < 2; list++)
	{
		mt_node    *head = mt_node_at(arena, MT_HEAD(list));

		head->height = MT_MAX_HEIGHT;
		atomic_init(&hdr->height[list], 1);
		for (int i = 0; i < MT_MAX_HEIGHT; i++)
			atomic_init(&head->next[i], 0);
	}
	atomic_init(&hdr->used, MT_ARENA_MIN);
	atomic_init(&hdr->entries, 0);
	atomic_init(&hdr->tombstones, 0);
	/* the formatting process publishes the region by other means (fork, lock) */
	atomic_thread_fence(memory_order_release);
}

void
nokv_memtable_format(nokv_ctx *ctx, nokv_off off, size_t arena_size)
{
	assert(off % MT_NODE_ALIGN == 0);
	assert(arena_size >= MT_ARENA_MIN && arena_size <= UINT32_MAX);
	if (arena_size > UINT32_MAX)
		arena_size = UINT32_MAX & ~(size_t) (MT_NODE_ALIGN - 1);
	mt_init((mt_header *) (ctx->base + off), (uint32_t) arena_size);
}

void
nokv_memtable_reset(nokv_ctx *ctx, nokv_off off)
{
	mt_header  *hdr = (mt_header *) (ctx->base + off);

	assert(hdr->magic == MT_MAGIC);
	mt_init(hdr, hdr->arena_size);
}

size_t
nokv_memtable_entry_cost(size_t ikey_len, size_t value_len)
{
	return mt_node_size(MT_MAX_HEIGHT, ikey_len, value_len);
}

size_t
nokv_memtable_tombstone_cost(size_t start_len, size_t end_len)
{
	return mt_node_size(MT_MAX_HEIGHT, nokv_ikey_size(start_len), end_len);
}

size_t
nokv_memtable_arena_used(nokv_ctx *ctx, nokv_off mt)
{
	mt_ref		m = mt_resolve(ctx, mt);
	uint64_t	used = atomic_load_explicit(&m.hdr->used, memory_order_relaxed);

	return used < m.hdr->arena_size ? (size_t) used : m.hdr->arena_size;
}

size_t
nokv_memtable_arena_size(nokv_ctx *ctx, nokv_off mt)
{
	return mt_resolve(ctx, mt).hdr->arena_size;
}

uint64_t
nokv_memtable_entries(nokv_ctx *ctx, nokv_off mt)
{
	return atomic_load_explicit(&mt_resolve(ctx, mt).hdr->entries, memory_order_relaxed);
}

uint64_t
nokv_memtable_tombstones(nokv_ctx *ctx, nokv_off mt)
{
	return atomic_load_explicit(&mt_resolve(ctx, mt).hdr->tombstones, memory_order_relaxed);
}

/* ---------- point entries ---------- */

int
nokv_memtable_add(nokv_ctx *ctx, nokv_off mt,
				  const char *ikey, size_t ikey_len,
				  const char *value, size_t value_len)
{
	mt_key		key;

	if (ikey_len < 1 + NOKV_IKEY_TRAILER)
		return NOKV_INVALID_ARGUMENT;
	key = mt_key_make(ikey, ikey_len, NULL, 0);
	return mt_insert(mt_resolve(ctx, mt), MT_POINTS, &key, value, value_len, NULL);
}

/* a hint taken for another memtable (or mapping) starts over */
static inline void
mt_hint_attach(nokv_ctx *ctx, nokv_off mt, nokv_mt_hint *hint)
{
	if (hint->mt != mt || hint->base != ctx->base)
	{
		assert(hint->unpublished == 0);
		memset(hint, 0, sizeof(*hint));
		hint->base = ctx->base;
		hint->mt = mt;
	}
}

int
nokv_memtable_add_hinted(nokv_ctx *ctx, nokv_off mt,
						 const char *ikey, size_t ikey_len,
						 const char *v1, size_t l1,
						 const char *v2, size_t l2,
						 nokv_mt_hint *hint)
{
	mt_key		key;

	if (ikey_len < 1 + NOKV_IKEY_TRAILER)
		return NOKV_INVALID_ARGUMENT;
	mt_hint_attach(ctx, mt, hint);
	/* a point entry's key extension is not compared: it carries v1 */
	key = mt_key_make(ikey, ikey_len, v1, l1);
	return mt_insert(mt_resolve(ctx, mt), MT_POINTS, &key, v2, l2, hint);
}

int
nokv_memtable_add_run(nokv_ctx *ctx, nokv_off mt, const nokv_mt_entry *entries, int n,
					  nokv_mt_hint *hint)
{
	if (n < 1 || n > NOKV_MT_RUN_MAX)
		return NOKV_INVALID_ARGUMENT;
	mt_hint_attach(ctx, mt, hint);
	return mt_insert_run(mt_resolve(ctx, mt), entries, n, hint);
}

void
nokv_memtable_hint_publish(nokv_ctx *ctx, nokv_mt_hint *hint)
{
	if (hint->unpublished == 0)
		return;
	atomic_fetch_add_explicit(&mt_resolve(ctx, hint->mt).hdr->entries, hint->unpublished,
							  memory_order_relaxed);
	hint->unpublished = 0;
}

/* seek keys up to this size are built on the stack */
#define MT_STACK_KEY 512

bool
nokv_memtable_get(nokv_ctx *ctx, nokv_off mt,
				  const char *lkey, size_t lkey_len,
				  uint64_t read_version,
				  int *kind, uint64_t *version,
				  const char **value, size_t *value_len)
{
	mt_ref		m = mt_resolve(ctx, mt);
	char		stackbuf[MT_STACK_KEY];
	char	   *seek;
	mt_key		key;
	uint32_t	off;
	const mt_node *n;
	const char *nk;
	size_t		seek_len = lkey_len + NOKV_IKEY_TRAILER;

	if (lkey_len == 0)
		return false;
	seek = seek_len <= sizeof(stackbuf) ? stackbuf : nokv_malloc(seek_len);
	memcpy(seek, lkey, lkey_len);
	nokv_put_be64(seek + lkey_len, ~read_version);
	seek[lkey_len + 8] = (char) NOKV_KIND_SEEK;
	key = mt_key_make(seek, seek_len, NULL, 0);

	off = mt_find_ge(m, MT_POINTS, &key);
	if (seek != stackbuf)
		free(seek);
	if (off == 0)
		return false;

	n = mt_node_at(m.arena, off);
	nk = mt_node_key(n);
	if (n->key_len != seek_len || memcmp(nk, lkey, lkey_len) != 0)
		return false;
	*kind = nokv_ikey_kind(nk, n->key_len);
	*version = nokv_ikey_version(nk, n->key_len);
	*value = nk + n->key_len;
	*value_len = n->value_len;
	return true;
}

/* ---------- range tombstones ---------- */

int
nokv_memtable_add_range_tombstone(nokv_ctx *ctx, nokv_off mt,
								  const nokv_range_tombstone *t)
{
	char		stackbuf[MT_STACK_KEY];
	char	   *ik;
	mt_key		key;
	int			rc;
	size_t		klen = nokv_ikey_size(t->start_len);

	if (t->cf < 0 || t->cf > 255)
		return NOKV_INVALID_ARGUMENT;
	ik = klen <= sizeof(stackbuf) ? stackbuf : nokv_malloc(klen);
	nokv_ikey_encode(ik, t->cf, t->start, t->start_len, t->version,
					 NOKV_KIND_RANGE_DELETE);
	key = mt_key_make(ik, klen, t->end, t->end_len);
	rc = mt_insert(mt_resolve(ctx, mt), MT_TOMBS, &key, NULL, 0, NULL);
	if (ik != stackbuf)
		free(ik);
	return rc;
}

/* first tombstone node of column family cf, or 0 */
static uint32_t
mt_first_tombstone_of_cf(mt_ref m, int cf)
{
	char		seek[1 + NOKV_IKEY_TRAILER];
	mt_key		key;

	nokv_ikey_encode(seek, cf, NULL, 0, NOKV_VERSION_MAX, NOKV_KIND_SEEK);
	key = mt_key_make(seek, sizeof(seek), NULL, 0);
	return mt_find_ge(m, MT_TOMBS, &key);
}

uint64_t
nokv_memtable_max_covering_tombstone(nokv_ctx *ctx, nokv_off mt,
									 int cf, const char *ukey, size_t ukey_len,
									 uint64_t read_version)
{
	mt_ref		m = mt_resolve(ctx, mt);
	uint64_t	best = 0;

	if (atomic_load_explicit(&m.hdr->tombstones, memory_order_relaxed) == 0)
		return 0;

	/*
	 * Tombstones are sorted by start key, so only those starting at or
	 * before the key can cover it; that prefix is scanned in full because
	 * end keys are unordered.
	 */
	for (uint32_t off = mt_first_tombstone_of_cf(m, cf); off != 0;
		 off = mt_load_next(mt_node_at(m.arena, off), 0))
	{
		const mt_node *n = mt_node_at(m.arena, off);
		const char *nk = mt_node_key(n);
		size_t		start_len = n->key_len - 1 - NOKV_IKEY_TRAILER;
		uint64_t	v;

		if ((unsigned char) nk[0] != (unsigned) cf ||
			nokv_lkey_compare(nk + 1, start_len, ukey, ukey_len) > 0)
			break;
		v = nokv_ikey_version(nk, n->key_len);
		if (v <= read_version && v > best &&
			nokv_lkey_compare(ukey, ukey_len, nk + n->key_len, n->value_len) < 0)
			best = v;
	}
	return best;
}

int
nokv_memtable_range_tombstones(nokv_ctx *ctx, nokv_off mt,
							   nokv_range_tombstone **out, int *n)
{
	mt_ref		m = mt_resolve(ctx, mt);
	uint32_t	first = mt_load_next(mt_node_at(m.arena, MT_HEAD(MT_TOMBS)), 0);

	*out = NULL;
	*n = 0;

	/*
	 * Count, allocate, copy.  Tombstones added concurrently between the two
	 * passes would make the copy overflow the count; the list only grows,
	 * so an equal count on the second pass means the same set, and
	 * otherwise we start over.
	 */
	for (;;)
	{
		size_t		count = 0;
		size_t		bytes = 0;
		nokv_range_tombstone *arr;
		char	   *kb;
		size_t		i = 0;
		uint32_t	off;

		for (off = first; off != 0; off = mt_load_next(mt_node_at(m.arena, off), 0))
		{
			const mt_node *nd = mt_node_at(m.arena, off);

			count++;
			bytes += nd->key_len - 1 - NOKV_IKEY_TRAILER + nd->value_len;
		}
		if (count == 0)
			return NOKV_OK;
		if (count > INT32_MAX)
			return NOKV_NO_SPACE;

		arr = nokv_malloc(count * sizeof(*arr) + bytes);
		kb = (char *) (arr + count);
		for (off = first; off != 0 && i < count;
			 off = mt_load_next(mt_node_at(m.arena, off), 0), i++)
		{
			const mt_node *nd = mt_node_at(m.arena, off);
			const char *nk = mt_node_key(nd);
			size_t		start_len = nd->key_len - 1 - NOKV_IKEY_TRAILER;

			arr[i].cf = (unsigned char) nk[0];
			arr[i].version = nokv_ikey_version(nk, nd->key_len);
			arr[i].start = kb;
			arr[i].start_len = start_len;
			memcpy(kb, nk + 1, start_len);
			kb += start_len;
			arr[i].end = kb;
			arr[i].end_len = nd->value_len;
			memcpy(kb, nk + nd->key_len, nd->value_len);
			kb += nd->value_len;
		}
		if (off == 0 && i == count)
		{
			*out = arr;
			*n = (int) count;
			return NOKV_OK;
		}
		free(arr);
		first = mt_load_next(mt_node_at(m.arena, MT_HEAD(MT_TOMBS)), 0);
	}
}

/* ---------- iterator ---------- */

typedef struct mt_iter
{
	nokv_iiter	base;
	mt_ref		m;
	uint32_t	node;			/* current node, 0 = not valid */
	int			status;
} mt_iter;

static bool
mt_iter_valid(nokv_iiter *it)
{
	return ((mt_iter *) it)->node != 0;
}

static void
mt_iter_seek_to_first(nokv_iiter *it)
{
	mt_iter    *mi = (mt_iter *) it;

	mi->node = mt_load_next(mt_node_at(mi->m.arena, MT_HEAD(MT_POINTS)), 0);
}

static void
mt_iter_seek_to_last(nokv_iiter *it)
{
	mt_iter    *mi = (mt_iter *) it;

	mi->node = mt_find_last(mi->m, MT_POINTS);
}

static void
mt_iter_seek(nokv_iiter *it, const char *ikey, size_t len)
{
	mt_iter    *mi = (mt_iter *) it;
	mt_key		key;

	if (len < 1 + NOKV_IKEY_TRAILER)
	{
		/* not an internal key: nothing to compare it with */
		mi->node = 0;
		mi->status = NOKV_INVALID_ARGUMENT;
		return;
	}
	key = mt_key_make(ikey, len, NULL, 0);
	mi->node = mt_find_ge(mi->m, MT_POINTS, &key);
}

static void
mt_iter_next(nokv_iiter *it)
{
	mt_iter    *mi = (mt_iter *) it;

	assert(mi->node != 0);
	mi->node = mt_load_next(mt_node_at(mi->m.arena, mi->node), 0);
}

/*
 * No back links (they could not be maintained lock-free cheaply): search
 * for the last node before the current key, as LevelDB does.
 */
static void
mt_iter_prev(nokv_iiter *it)
{
	mt_iter    *mi = (mt_iter *) it;
	mt_key		key;

	assert(mi->node != 0);
	key = mt_node_search_key(mi->m.arena, mi->node);
	mi->node = mt_find_lt(mi->m, MT_POINTS, &key);
}

static const char *
mt_iter_key(nokv_iiter *it, size_t *len)
{
	mt_iter    *mi = (mt_iter *) it;
	const mt_node *n = mt_node_at(mi->m.arena, mi->node);

	assert(mi->node != 0);
	*len = n->key_len;
	return mt_node_key(n);
}

static const char *
mt_iter_value(nokv_iiter *it, size_t *len)
{
	mt_iter    *mi = (mt_iter *) it;
	const mt_node *n = mt_node_at(mi->m.arena, mi->node);

	assert(mi->node != 0);
	*len = n->value_len;
	return mt_node_key(n) + n->key_len;
}

static int
mt_iter_status(nokv_iiter *it, nokv_error *err)
{
	mt_iter    *mi = (mt_iter *) it;

	if (mi->status != NOKV_OK)
		return nokv_error_set(err, (nokv_code) mi->status,
							  "memtable seek key is shorter than an internal key");
	nokv_error_clear(err);
	return NOKV_OK;
}

static void
mt_iter_destroy(nokv_iiter *it)
{
	free(it);
}

static const nokv_iiter_ops mt_iter_ops = {
	.valid = mt_iter_valid,
	.seek_to_first = mt_iter_seek_to_first,
	.seek_to_last = mt_iter_seek_to_last,
	.seek = mt_iter_seek,
	.next = mt_iter_next,
	.prev = mt_iter_prev,
	.key = mt_iter_key,
	.value = mt_iter_value,
	.status = mt_iter_status,
	.destroy = mt_iter_destroy,
};

nokv_iiter *
nokv_memtable_iter_new(nokv_ctx *ctx, nokv_off mt)
{
	mt_iter    *mi = nokv_malloc(sizeof(*mi));

	mi->base.ops = &mt_iter_ops;
	mi->m = mt_resolve(ctx, mt);
	mi->node = 0;
	mi->status = NOKV_OK;
	assert(mi->m.hdr->magic == MT_MAGIC);
	return &mi->base;
}
