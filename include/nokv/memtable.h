/*-------------------------------------------------------------------------
 *
 * memtable.h
 *	  Arena + lock-free skiplist memtable living in the shared region.
 *
 * A memtable is a header followed by a fixed-size arena, both inside the
 * shared region; all links are 32-bit offsets relative to the arena start,
 * so any process can read it wherever the region is mapped.  Inserts from
 * several processes/threads proceed concurrently with compare-and-swap;
 * reads take no lock.  Range tombstones live in a second skiplist of the
 * same arena.  A memtable never frees individual entries: it is emptied as
 * a whole (nokv_memtable_reset) after its contents are flushed to an SST.
 *
 * Inserting an internal key that is already present is a no-op, which is
 * what makes re-applying a batch from an external log harmless.
 *
 * include/nokv/memtable.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_MEMTABLE_H
#define NOKV_MEMTABLE_H

#include "nokv/ikey.h"
#include "nokv/iter.h"
#include "nokv/region.h"

/* bytes of header before the arena */
size_t		nokv_memtable_header_size(void);

/* format an empty memtable at off whose arena has arena_size bytes (< 4 GiB) */
void		nokv_memtable_format(nokv_ctx *ctx, nokv_off off, size_t arena_size);

/* empty it for reuse; no reader or writer may be using it */
void		nokv_memtable_reset(nokv_ctx *ctx, nokv_off off);

/*
 * Upper bound of arena bytes one entry can consume (node with maximum
 * height, key, value, alignment).  The write path reserves this much before
 * inserting so that an insert never fails for lack of space.
 */
size_t		nokv_memtable_entry_cost(size_t ikey_len, size_t value_len);
size_t		nokv_memtable_tombstone_cost(size_t start_len, size_t end_len);

/*
 * Insert one entry (internal key + stored value record).  Safe to call
 * concurrently with other inserts and with readers.  Returns NOKV_OK, or
 * NOKV_NO_SPACE if the arena is exhausted (nothing inserted).
 */
int			nokv_memtable_add(nokv_ctx *ctx, nokv_off mt,
							  const char *ikey, size_t ikey_len,
							  const char *value, size_t value_len);

/*
 * Where the previous insert of a run went (its splice: the nodes before and
 * after it at every level).  Inserting keys in ascending order through one
 * hint (zeroed to start) starts the search at the lowest level whose splice
 * still brackets the new key, as RocksDB's splices do: a key just above the
 * previous one costs a comparison or two instead of a search from the head,
 * a key far above costs about what a search from the head does.  Any key
 * order stays correct.
 * A hint belongs to one memtable and must not outlive its contents (a
 * reset): the engine keeps one per handle and memtable generation.  The
 * stored value is v1 followed by v2 (a header and a payload need no
 * intermediate copy).
 *
 * Entries inserted through a hint are counted in it, not in the memtable's
 * entry count (a shared counter): nokv_memtable_hint_publish() adds them
 * there, and must be called at the end of a run, before the memtable can
 * be flushed or reset.
 */
#define NOKV_MT_HINT_LEVELS 20
typedef struct nokv_mt_hint
{
	const char *base;			/* the region and memtable it belongs to */
	nokv_off	mt;
	uint32_t	last;			/* the node last inserted (0: none) */
	uint32_t	prev[NOKV_MT_HINT_LEVELS];	/* its splice; prev 0: unknown */
	uint32_t	next[NOKV_MT_HINT_LEVELS];	/* next 0: the end of the list */
	uint32_t	unpublished;	/* entries inserted, not yet counted */
} nokv_mt_hint;

int			nokv_memtable_add_hinted(nokv_ctx *ctx, nokv_off mt,
									 const char *ikey, size_t ikey_len,
									 const char *v1, size_t l1,
									 const char *v2, size_t l2,
									 nokv_mt_hint *hint);

void		nokv_memtable_hint_publish(nokv_ctx *ctx, nokv_mt_hint *hint);

/*
 * A point entry given by the parts of its internal key, which is encoded
 * straight into its node; the stored value is v1 followed by v2.
 */
typedef struct nokv_mt_entry
{
	int			cf;
	int			kind;
	const char *ukey;
	size_t		ukey_len;
	uint64_t	version;
	const char *v1;
	size_t		l1;
	const char *v2;
	size_t		l2;
} nokv_mt_entry;

#define NOKV_MT_RUN_MAX 64

/*
 * Insert 1 to NOKV_MT_RUN_MAX point entries whose internal keys are strictly
 * ascending, and above the hint's previous run if the hint is to help.  The
 * nodes take one allocation and, when no key of the list falls between the
 * first and the last, are linked as one piece with one compare-and-swap per
 * level.  Any placement stays correct: entries among existing keys are
 * linked one by one, and a key already present is left out (as with
 * nokv_memtable_add_hinted, its node is wasted arena space).  Counted in
 * the hint like hinted inserts.  NOKV_NO_SPACE inserts nothing.
 */
int			nokv_memtable_add_run(nokv_ctx *ctx, nokv_off mt, const nokv_mt_entry *entries,
								  int n, nokv_mt_hint *hint);

#ifdef NOKV_CHECK_INVARIANTS
/*
 * Test seam (sanitizer build): called by a run insert right after the run
 * is linked at level 0 and before its higher levels, so that a test can
 * place keys inside the run's range in that window.
 */
extern void (*nokv_memtable_run_linked_hook) (void *arg);
extern void *nokv_memtable_run_linked_hook_arg;
#endif

int			nokv_memtable_add_range_tombstone(nokv_ctx *ctx, nokv_off mt,
											  const nokv_range_tombstone *t);

/*
 * Newest entry of lookup key lkey (cf + user key) with version <=
 * read_version.  Returns true if one exists, filling kind, version and
 * value (pointing into the arena: valid while the memtable is not reset).
 */
bool		nokv_memtable_get(nokv_ctx *ctx, nokv_off mt,
							  const char *lkey, size_t lkey_len,
							  uint64_t read_version,
							  int *kind, uint64_t *version,
							  const char **value, size_t *value_len);

/*
 * Highest version of a range tombstone in this memtable that covers
 * (cf, user key) and whose version <= read_version; 0 if none.
 */
uint64_t	nokv_memtable_max_covering_tombstone(nokv_ctx *ctx, nokv_off mt,
												 int cf, const char *ukey, size_t ukey_len,
												 uint64_t read_version);

/* iterator over point entries in internal-key order (forward and backward) */
nokv_iiter *nokv_memtable_iter_new(nokv_ctx *ctx, nokv_off mt);

/*
 * Copy out every range tombstone (in start-key order).  *out is one
 * malloc'ed block holding the array and the key bytes; free(*out).
 */
int			nokv_memtable_range_tombstones(nokv_ctx *ctx, nokv_off mt,
										   nokv_range_tombstone **out, int *n);

size_t		nokv_memtable_arena_used(nokv_ctx *ctx, nokv_off mt);
size_t		nokv_memtable_arena_size(nokv_ctx *ctx, nokv_off mt);
uint64_t	nokv_memtable_entries(nokv_ctx *ctx, nokv_off mt);
uint64_t	nokv_memtable_tombstones(nokv_ctx *ctx, nokv_off mt);

#endif							/* NOKV_MEMTABLE_H */
