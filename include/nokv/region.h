/*-------------------------------------------------------------------------
 *
 * region.h
 *	  Offsets into the shared region and the shared heap allocator.
 *
 * The region may be mapped at a different address in each process, so
 * shared structures refer to each other by nokv_off, a byte offset from the
 * region base (0 means "none").  A per-process nokv_ctx carries the base
 * address and the platform, and is what engine modules receive.
 *
 * The shared heap serves variable-size shared objects (versions, file
 * boundary keys, block-cache entries).  It is a fixed budget carved out of
 * the region at format time; allocation never grows the region, and running
 * out is an error (NOKV_NO_SPACE) rather than a crash.
 *
 * include/nokv/region.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_REGION_H
#define NOKV_REGION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/nokv.h"
#include "nokv/platform.h"

typedef uint64_t nokv_off;

#define NOKV_ALIGN(x, a)	(((x) + ((a) - 1)) & ~((size_t) (a) - 1))

/* per-process view of the region */
typedef struct nokv_ctx
{
	char	   *base;			/* where this process mapped the region */
	const nokv_platform *plat;
	nokv_off	heap;			/* offset of the nokv_heap header */
} nokv_ctx;

static inline void *
nokv_ptr(const nokv_ctx *ctx, nokv_off off)
{
	return off ? (void *) (ctx->base + off) : NULL;
}

static inline nokv_off
nokv_offset(const nokv_ctx *ctx, const void *p)
{
	return p ? (nokv_off) ((const char *) p - ctx->base) : 0;
}

/* ---------- shared heap ---------- */

/* bytes of header the heap needs in addition to its arena */
size_t		nokv_heap_header_size(void);

/* format a heap whose header is at off and whose arena follows it */
void		nokv_heap_format(nokv_ctx *ctx, nokv_off off, size_t total_size);

/*
 * Allocate size bytes (8-byte aligned) from the shared heap; takes
 * NOKV_LOCK_HEAP itself.  Returns 0 when the heap is exhausted.
 */
nokv_off	nokv_heap_alloc(nokv_ctx *ctx, size_t size);
void		nokv_heap_free(nokv_ctx *ctx, nokv_off off);
/* the bytes an allocation of size really takes (a power-of-two block) */
size_t		nokv_heap_block_size(size_t size);
/* bytes currently allocated / total arena bytes */
void		nokv_heap_usage(nokv_ctx *ctx, uint64_t *used, uint64_t *total);

#endif							/* NOKV_REGION_H */
