/*-------------------------------------------------------------------------
 *
 * hotring.h
 *	  Bounded-memory tracking of the hottest read and write keys.
 *
 * Two rings (reads, writes) live in one area of the shared region, so every
 * process attached to the region feeds, and queries, one view.  Each ring
 * tracks at most hot_capacity keys; a key's count is the number of touches
 * it received during the last hot_window_ms (a sliding window made of
 * hot_window_slots sub-windows).  The area's size depends only on
 * hot_capacity and hot_window_slots, never on the number of processes.
 *
 * Counting is lock-free (atomics on the key's entry); NOKV_LOCK_HOTRING is
 * taken exclusively only to insert or replace an entry and shared by
 * nokv_hotring_topn.  The lock is a leaf: callers may hold other engine
 * locks (e.g. NOKV_LOCK_WRITE) around these calls, but must not hold
 * NOKV_LOCK_HOTRING itself.
 *
 * Contract with the core (db.c):
 *	  - nokv_get touches NOKV_HOT_READ once per call (sampled iterator visits
 *		may touch it too);
 *	  - nokv_write touches NOKV_HOT_WRITE once per written key, after the
 *		batch committed, in own-log mode only;
 *	  - nokv_hotring_write_limited is asked, before a batch is committed,
 *		only for non-replicated writes (own-log mode) and only when
 *		hot_write_limit > 0; it is never applied in external-log mode, where
 *		a refused replicated write would make replicas diverge.
 *
 * See docs/hotring.md for the layout, the window algorithm, the eviction
 * policy and its error bounds.
 *
 * include/nokv/hotring.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_HOTRING_H
#define NOKV_HOTRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/region.h"

#define NOKV_HOT_READ			0
#define NOKV_HOT_WRITE			1
#define NOKV_HOT_RINGS			2

/* bytes of a key kept for display; longer keys are shown truncated */
#define NOKV_HOT_KEY_PREFIX		64

/* one row of a top-N answer */
typedef struct nokv_hotkey
{
	int			cf;
	char		key[NOKV_HOT_KEY_PREFIX];	/* first min(key_len, 64) bytes */
	size_t		key_len;		/* the key's real length */
	bool		truncated;		/* key_len > 64: key holds a prefix only */
	uint64_t	count;			/* touches in the current window */
} nokv_hotkey;

typedef struct nokv_hotring_stats
{
	uint64_t	touches;		/* touch calls (n > 0) */
	uint64_t	inserts;		/* keys installed (into a free or a reclaimed entry) */
	uint64_t	evictions;		/* installs that replaced a tracked key */
	uint64_t	entries;		/* entries in use (<= capacity) */
	uint64_t	capacity;		/* hot_capacity */
	uint64_t	limited;		/* writes refused by nokv_hotring_write_limited */
	uint64_t	dropped;		/* touches of untracked keys not admitted */
} nokv_hotring_stats;

/*
 * Add n touches of (cf, key) at time now_ms to a ring; returns the key's
 * count in the window after the touch.  An untracked key is inserted, or,
 * when the ring is full, admitted in place of the coldest key of its probe
 * window with probability n / (4 x that key's count + n) (always when that
 * count is 0); a key that is not admitted returns n and counts as dropped.  n == 0 only looks the key up (0 if untracked),
 * never inserts and is not counted as a touch.  off == 0 (tracking off) or
 * a bad ring returns 0.
 */
uint64_t	nokv_hotring_touch(nokv_ctx *ctx, nokv_off off, int ring, int cf,
							   const char *key, size_t klen, uint64_t now_ms,
							   uint32_t n);

/*
 * Fill out[0..n) with up to n keys of the ring with a non-zero count at
 * now_ms, hottest first (ties: cf, then key bytes, ascending); returns how
 * many were filled.  Takes NOKV_LOCK_HOTRING shared.
 */
int			nokv_hotring_topn(nokv_ctx *ctx, nokv_off off, int ring, uint64_t now_ms,
							  nokv_hotkey *out, int n);

/* counters of one ring (zeroes when off == 0 or the ring is bad) */
void		nokv_hotring_stats_get(nokv_ctx *ctx, nokv_off off, int ring,
								   nokv_hotring_stats *st);

/*
 * The per-key write limit: true (and one "limited" event counted on the
 * write ring) when the key already has limit or more writes in the current
 * window, i.e. one more would exceed limit.  limit == 0 never limits.  Only
 * looks the key up; the caller touches NOKV_HOT_WRITE after a write it let
 * through.  Untracked keys are never limited.
 */
bool		nokv_hotring_write_limited(nokv_ctx *ctx, nokv_off off, int cf,
									   const char *key, size_t klen, uint64_t now_ms,
									   uint32_t limit);

/* nokv_hotring_shared_size / nokv_hotring_shared_format: see db_impl.h */

#endif							/* NOKV_HOTRING_H */
