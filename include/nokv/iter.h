/*-------------------------------------------------------------------------
 *
 * iter.h
 *	  The internal iterator interface over (internal key, value record).
 *
 * Memtables, SST blocks, whole SSTs, level concatenations and the merging
 * iterator all implement this one vtable, so reads and compaction can
 * stack them freely.  Keys are internal keys (ikey.h); values are stored
 * value records.  Returned key/value pointers stay valid until the iterator
 * moves or is destroyed.  An iterator that hits an error becomes invalid and
 * reports the error from status().
 *
 * include/nokv/iter.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_ITER_H
#define NOKV_ITER_H

#include <stdbool.h>
#include <stddef.h>

#include "nokv/nokv.h"

typedef struct nokv_iiter nokv_iiter;

typedef struct nokv_iiter_ops
{
	bool		(*valid) (nokv_iiter *it);
	void		(*seek_to_first) (nokv_iiter *it);
	void		(*seek_to_last) (nokv_iiter *it);
	/* position at the first entry >= ikey */
	void		(*seek) (nokv_iiter *it, const char *ikey, size_t len);
	void		(*next) (nokv_iiter *it);
	void		(*prev) (nokv_iiter *it);
	const char *(*key) (nokv_iiter *it, size_t *len);
	const char *(*value) (nokv_iiter *it, size_t *len);
	/* NOKV_OK or the error that invalidated the iterator (copied to err) */
	int			(*status) (nokv_iiter *it, nokv_error *err);
	void		(*destroy) (nokv_iiter *it);
} nokv_iiter_ops;

/* concrete iterators embed this as their first member */
struct nokv_iiter
{
	const nokv_iiter_ops *ops;
};

static inline bool nokv_iiter_valid(nokv_iiter *it) { return it->ops->valid(it); }
static inline void nokv_iiter_seek_to_first(nokv_iiter *it) { it->ops->seek_to_first(it); }
static inline void nokv_iiter_seek_to_last(nokv_iiter *it) { it->ops->seek_to_last(it); }
static inline void nokv_iiter_seek(nokv_iiter *it, const char *k, size_t n) { it->ops->seek(it, k, n); }
static inline void nokv_iiter_next(nokv_iiter *it) { it->ops->next(it); }
static inline void nokv_iiter_prev(nokv_iiter *it) { it->ops->prev(it); }
static inline const char *nokv_iiter_key(nokv_iiter *it, size_t *n) { return it->ops->key(it, n); }
static inline const char *nokv_iiter_value(nokv_iiter *it, size_t *n) { return it->ops->value(it, n); }
static inline int nokv_iiter_status(nokv_iiter *it, nokv_error *err) { return it->ops->status(it, err); }
static inline void nokv_iiter_destroy(nokv_iiter *it) { if (it) it->ops->destroy(it); }

/* an iterator over nothing, optionally carrying an error */
nokv_iiter *nokv_empty_iter_new(const nokv_error *err);

/*
 * Merging iterator over n children (takes ownership of them).  Children
 * earlier in the array are newer: when two children hold the identical
 * internal key, the earlier child's entry is returned first and the later
 * one right after it (callers that de-duplicate keep the first).
 */
nokv_iiter *nokv_merge_iter_new(nokv_iiter **children, int n);

#endif							/* NOKV_ITER_H */
