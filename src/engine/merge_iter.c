/*-------------------------------------------------------------------------
 *
 * merge_iter.c
 *	  Bidirectional merging iterator over internal iterators.
 *
 * The merge yields the entries of all children in one total order: by
 * internal key (nokv_ikey_compare), and among byte-identical internal keys
 * by child index, lower (newer) first.  Backward iteration yields exactly
 * the mirror image of that order (higher index first among equal keys), so
 * a forward and a backward traversal visit the same entries in reverse,
 * and next/prev may be freely interleaved.
 *
 * Because the order is total over (key, child index), switching direction
 * needs no special cases beyond LevelDB's MergingIterator: when turning
 * around at entry (K, c) every other child is re-seeked to K and then moved
 * to the nearest entry on the correct side of (K, c) - which for a child
 * holding K itself depends on whether its index is below or above c.
 *
 * With more than a handful of children (compactions merge tens of files)
 * the next child is found with a binary heap of child indexes ordered for
 * the current direction; with few children a linear scan is cheaper.  The
 * current key of every child is cached so that comparisons do not go
 * through the vtable.
 *
 * A child that becomes invalid is asked for its status; the first error
 * seen (scanning children in index order) is latched and makes the merge
 * invalid for good.
 *
 * src/engine/merge_iter.c
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "nokv/coding.h"
#include "nokv/ikey.h"
#include "nokv/iter.h"
#include "nokv/status.h"

/* above this many children the merge uses a heap instead of a scan */
#define MERGE_HEAP_THRESHOLD 4

typedef enum merge_direction
{
	MERGE_FORWARD,
	MERGE_REVERSE
} merge_direction;

typedef struct merge_child
{
	nokv_iiter *it;
	bool		valid;
	const char *key;			/* cached while valid */
	size_t		key_len;
} merge_child;

typedef struct merge_iter
{
	nokv_iiter	base;
	int			n;
	merge_child *children;
	int			current;		/* child index, -1 when invalid */
	merge_direction direction;
	bool		use_heap;
	int		   *heap;			/* child indexes of valid children */
	int			heap_len;
	bool		failed;			/* error latched in error */
	nokv_error	error;
} merge_iter;

/* ---------- per-child bookkeeping ---------- */

/*
 * Re-read a child's position after it moved.  Returns false if the child
 * failed (its error is latched in the merge).
 */
static bool
merge_refresh(merge_iter *mi, int i)
{
	merge_child *c = &mi->children[i];

	c->valid = nokv_iiter_valid(c->it);
	if (c->valid)
	{
		c->key = nokv_iiter_key(c->it, &c->key_len);
		return true;
	}
	c->key = NULL;
	c->key_len = 0;
	if (!mi->failed)
	{
		nokv_error	e;

		nokv_error_clear(&e);
		if (nokv_iiter_status(c->it, &e) != NOKV_OK)
		{
			if (e.code == NOKV_OK)	/* child returned a code but no message */
				nokv_error_set(&e, NOKV_CORRUPTION, "merge child %d failed", i);
			mi->error = e;
			mi->failed = true;
			return false;
		}
	}
	return !mi->failed;
}

/*
 * Order of two valid children in the current direction: true if child a
 * comes before child b.
 */
static inline bool
merge_before(const merge_iter *mi, int a, int b)
{
	const merge_child *ca = &mi->children[a];
	const merge_child *cb = &mi->children[b];
	int			c = nokv_ikey_compare(ca->key, ca->key_len, cb->key, cb->key_len);

	if (c == 0)
		c = a < b ? -1 : (a > b ? 1 : 0);
	return mi->direction == MERGE_FORWARD ? c < 0 : c > 0;
}

/* ---------- heap ---------- */

static void
heap_sift_down(merge_iter *mi, int pos)
{
	int		   *h = mi->heap;
	int			len = mi->heap_len;
	int			item = h[pos];

	for (;;)
	{
		int			child = 2 * pos + 1;

		if (child >= len)
			break;
		if (child + 1 < len && merge_before(mi, h[child + 1], h[child]))
			child++;
		if (!merge_before(mi, h[child], item))
			break;
		h[pos] = h[child];
		pos = child;
	}
	h[pos] = item;
}

/* choose the current child among all valid children (after bulk moves) */
static void
merge_find_current(merge_iter *mi)
{
	if (mi->failed)
	{
		mi->current = -1;
		return;
	}
	if (mi->use_heap)
	{
		mi->heap_len = 0;
		for (int i = 0; i < mi->n; i++)
			if (mi->children[i].valid)
				mi->heap[mi->heap_len++] = i;
		for (int pos = mi->heap_len / 2 - 1; pos >= 0; pos--)
			heap_sift_down(mi, pos);
		mi->current = mi->heap_len > 0 ? mi->heap[0] : -1;
	}
	else
	{
		int			best = -1;

		for (int i = 0; i < mi->n; i++)
			if (mi->children[i].valid && (best < 0 || merge_before(mi, i, best)))
				best = i;
		mi->current = best;
	}
}

/*
 * The current child moved by one step; restore the order.  With a heap the
 * current child is the root, so one sift (or a removal) suffices.
 */
static void
merge_after_step(merge_iter *mi)
{
	if (mi->failed)
	{
		mi->current = -1;
		return;
	}
	if (!mi->use_heap)
	{
		merge_find_current(mi);
		return;
	}
	if (!mi->children[mi->heap[0]].valid)
	{
		mi->heap[0] = mi->heap[--mi->heap_len];
		if (mi->heap_len == 0)
		{
			mi->current = -1;
			return;
		}
	}
	heap_sift_down(mi, 0);
	mi->current = mi->heap[0];
}

/* ---------- direction switches ---------- */

/*
 * Position every child but the current one (c, at key K) on its first entry
 * after (K, c) in forward order.  A child i < c holding K itself sorts
 * before (K, c) and must step past it; a child i > c holding K stays.
 */
static void
merge_switch_forward(merge_iter *mi)
{
	int			cur = mi->current;
	const char *k = mi->children[cur].key;
	size_t		klen = mi->children[cur].key_len;

	for (int i = 0; i < mi->n && !mi->failed; i++)
	{
		merge_child *c = &mi->children[i];

		if (i == cur)
			continue;
		nokv_iiter_seek(c->it, k, klen);
		if (!merge_refresh(mi, i))
			break;
		if (c->valid && i < cur &&
			nokv_ikey_compare(c->key, c->key_len, k, klen) == 0)
		{
			nokv_iiter_next(c->it);
			merge_refresh(mi, i);
		}
	}
	mi->direction = MERGE_FORWARD;
	merge_find_current(mi);
}

/*
 * Position every child but the current one (c, at key K) on its last entry
 * before (K, c) in forward order.  After seek(K) a child sits on its first
 * entry >= K; that entry is before (K, c) only if it is K itself and the
 * child's index is lower than c; otherwise step back (or go to the last
 * entry when the child has nothing >= K).
 */
static void
merge_switch_reverse(merge_iter *mi)
{
	int			cur = mi->current;
	const char *k = mi->children[cur].key;
	size_t		klen = mi->children[cur].key_len;

	for (int i = 0; i < mi->n && !mi->failed; i++)
	{
		merge_child *c = &mi->children[i];

		if (i == cur)
			continue;
		nokv_iiter_seek(c->it, k, klen);
		if (!merge_refresh(mi, i))
			break;
		if (c->valid)
		{
			if (i < cur && nokv_ikey_compare(c->key, c->key_len, k, klen) == 0)
				continue;
			nokv_iiter_prev(c->it);
		}
		else
			nokv_iiter_seek_to_last(c->it);
		merge_refresh(mi, i);
	}
	mi->direction = MERGE_REVERSE;
	merge_find_current(mi);
}

/* ---------- vtable ---------- */

static bool
merge_valid(nokv_iiter *it)
{
	merge_iter *mi = (merge_iter *) it;

	return !mi->failed && mi->current >= 0;
}

static void
merge_seek_to_first(nokv_iiter *it)
{
	merge_iter *mi = (merge_iter *) it;

	if (mi->failed)
		return;
	for (int i = 0; i < mi->n && !mi->failed; i++)
	{
		nokv_iiter_seek_to_first(mi->children[i].it);
		merge_refresh(mi, i);
	}
	mi->direction = MERGE_FORWARD;
	merge_find_current(mi);
}

static void
merge_seek_to_last(nokv_iiter *it)
{
	merge_iter *mi = (merge_iter *) it;

	if (mi->failed)
		return;
	for (int i = 0; i < mi->n && !mi->failed; i++)
	{
		nokv_iiter_seek_to_last(mi->children[i].it);
		merge_refresh(mi, i);
	}
	mi->direction = MERGE_REVERSE;
	merge_find_current(mi);
}

static void
merge_seek(nokv_iiter *it, const char *ikey, size_t len)
{
	merge_iter *mi = (merge_iter *) it;

	if (mi->failed)
		return;
	for (int i = 0; i < mi->n && !mi->failed; i++)
	{
		nokv_iiter_seek(mi->children[i].it, ikey, len);
		merge_refresh(mi, i);
	}
	mi->direction = MERGE_FORWARD;
	merge_find_current(mi);
}

static void
merge_next(nokv_iiter *it)
{
	merge_iter *mi = (merge_iter *) it;
	int			cur;

	if (!merge_valid(it))
		return;
	if (mi->direction != MERGE_FORWARD)
	{
		merge_switch_forward(mi);
		if (mi->failed)
		{
			mi->current = -1;
			return;
		}
	}
	cur = mi->current;
	nokv_iiter_next(mi->children[cur].it);
	merge_refresh(mi, cur);
	merge_after_step(mi);
}

static void
merge_prev(nokv_iiter *it)
{
	merge_iter *mi = (merge_iter *) it;
	int			cur;

	if (!merge_valid(it))
		return;
	if (mi->direction != MERGE_REVERSE)
	{
		merge_switch_reverse(mi);
		if (mi->failed)
		{
			mi->current = -1;
			return;
		}
	}
	cur = mi->current;
	nokv_iiter_prev(mi->children[cur].it);
	merge_refresh(mi, cur);
	merge_after_step(mi);
}

static const char *
merge_key(nokv_iiter *it, size_t *len)
{
	merge_iter *mi = (merge_iter *) it;

	if (!merge_valid(it))
	{
		*len = 0;
		return NULL;
	}
	*len = mi->children[mi->current].key_len;
	return mi->children[mi->current].key;
}

static const char *
merge_value(nokv_iiter *it, size_t *len)
{
	merge_iter *mi = (merge_iter *) it;

	if (!merge_valid(it))
	{
		*len = 0;
		return NULL;
	}
	return nokv_iiter_value(mi->children[mi->current].it, len);
}

static int
merge_status(nokv_iiter *it, nokv_error *err)
{
	merge_iter *mi = (merge_iter *) it;

	if (mi->failed)
	{
		if (err)
			*err = mi->error;
		return mi->error.code;
	}
	return NOKV_OK;
}

static void
merge_destroy(nokv_iiter *it)
{
	merge_iter *mi = (merge_iter *) it;

	for (int i = 0; i < mi->n; i++)
		nokv_iiter_destroy(mi->children[i].it);
	free(mi->children);
	free(mi->heap);
	free(mi);
}

static const nokv_iiter_ops merge_iter_ops = {
	.valid = merge_valid,
	.seek_to_first = merge_seek_to_first,
	.seek_to_last = merge_seek_to_last,
	.seek = merge_seek,
	.next = merge_next,
	.prev = merge_prev,
	.key = merge_key,
	.value = merge_value,
	.status = merge_status,
	.destroy = merge_destroy,
};

nokv_iiter *
nokv_merge_iter_new(nokv_iiter **children, int n)
{
	merge_iter *mi;

	if (n <= 0)
		return nokv_empty_iter_new(NULL);
	if (n == 1)
		return children[0];

	mi = nokv_calloc(1, sizeof(*mi));
	mi->base.ops = &merge_iter_ops;
	mi->n = n;
	mi->children = nokv_calloc(n, sizeof(merge_child));
	for (int i = 0; i < n; i++)
		mi->children[i].it = children[i];
	mi->current = -1;
	mi->direction = MERGE_FORWARD;
	mi->use_heap = n > MERGE_HEAP_THRESHOLD;
	if (mi->use_heap)
		mi->heap = nokv_calloc(n, sizeof(int));
	return &mi->base;
}

/* ---------- the empty iterator ---------- */

typedef struct empty_iter
{
	nokv_iiter	base;
	nokv_error	error;
} empty_iter;

static bool
empty_valid(nokv_iiter *it)
{
	(void) it;
	return false;
}

static void
empty_noop(nokv_iiter *it)
{
	(void) it;
}

static void
empty_seek(nokv_iiter *it, const char *ikey, size_t len)
{
	(void) it;
	(void) ikey;
	(void) len;
}

/* key and value of an iterator that is never valid */
static const char *
empty_slice(nokv_iiter *it, size_t *len)
{
	(void) it;
	*len = 0;
	return NULL;
}

static int
empty_status(nokv_iiter *it, nokv_error *err)
{
	empty_iter *ei = (empty_iter *) it;

	if (ei->error.code != NOKV_OK && err)
		*err = ei->error;
	return ei->error.code;
}

static void
empty_destroy(nokv_iiter *it)
{
	free(it);
}

static const nokv_iiter_ops empty_iter_ops = {
	.valid = empty_valid,
	.seek_to_first = empty_noop,
	.seek_to_last = empty_noop,
	.seek = empty_seek,
	.next = empty_noop,
	.prev = empty_noop,
	.key = empty_slice,
	.value = empty_slice,
	.status = empty_status,
	.destroy = empty_destroy,
};

nokv_iiter *
nokv_empty_iter_new(const nokv_error *err)
{
	empty_iter *ei = nokv_calloc(1, sizeof(*ei));

	ei->base.ops = &empty_iter_ops;
	nokv_error_clear(&ei->error);
	if (err && err->code != NOKV_OK)
		ei->error = *err;
	return &ei->base;
}
