/*-------------------------------------------------------------------------
 *
 * cache.h
 *	  Shared block cache with a fixed byte budget.
 *
 * Data, index, filter and range-tombstone blocks of SSTs are cached here,
 * keyed by (file number, block offset), in the shared region so that every
 * process sees one cache and memory does not grow with processes.  The
 * cache is sharded (NOKV_CACHE_SHARDS shards, lock NOKV_LOCK_CACHE_0 + i),
 * LRU within a shard, and its entries are allocated from the shared heap.
 * A lookup pins the entry; pinned entries are never evicted.
 *
 * include/nokv/cache.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_CACHE_H
#define NOKV_CACHE_H

#include <stdbool.h>

#include "nokv/region.h"

typedef struct nokv_cache_handle
{
	nokv_off	entry;			/* 0 = not pinned */
	const char *data;			/* the cached bytes, valid while pinned */
	size_t		len;
} nokv_cache_handle;

size_t		nokv_cache_shared_size(void);	/* header in the region */
void		nokv_cache_format(nokv_ctx *ctx, nokv_off off, size_t capacity);

/* pins and returns true on a hit */
bool		nokv_cache_lookup(nokv_ctx *ctx, nokv_off cache,
							  uint64_t file, uint64_t offset, nokv_cache_handle *h);

/*
 * Copy data into the cache (evicting unpinned LRU entries to stay within the
 * budget) and pin it.  Returns false, leaving h unpinned, when the entry
 * cannot be stored (capacity 0, heap exhausted, all entries pinned); the
 * caller then keeps using its own copy.
 */
bool		nokv_cache_insert(nokv_ctx *ctx, nokv_off cache,
							  uint64_t file, uint64_t offset,
							  const char *data, size_t len, nokv_cache_handle *h);

void		nokv_cache_release(nokv_ctx *ctx, nokv_off cache, nokv_cache_handle *h);

/* drop every unpinned entry of a deleted file */
void		nokv_cache_erase_file(nokv_ctx *ctx, nokv_off cache, uint64_t file);

void		nokv_cache_stats(nokv_ctx *ctx, nokv_off cache,
							 uint64_t *hits, uint64_t *misses,
							 uint64_t *bytes, uint64_t *capacity);

#endif							/* NOKV_CACHE_H */
