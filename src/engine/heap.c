/*-------------------------------------------------------------------------
 *
 * heap.c
 *	  Buddy allocator for variable-size objects in the shared region.
 *
 * Versions, file boundary keys and block-cache entries are allocated here.
 * A buddy allocator is used because the block cache churns through blocks
 * of mixed sizes for as long as the server runs: freed neighbours coalesce,
 * so memory released by one size is available to another, and the heap
 * never needs compaction.  All links are offsets from the region base, so
 * every process can allocate and free no matter where it mapped the region.
 *
 * Every block starts with a 16-byte header (order and a magic word that
 * tells allocated from free), so the payload of each allocation is 16-byte
 * aligned.  Free blocks hold their list links right after the header.
 *
 * src/engine/heap.c
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/platform.h"
#include "nokv/region.h"

#define HEAP_MIN_ORDER	5		/* 32-byte blocks */
#define HEAP_MAX_ORDER	40
#define HEAP_BLOCK_HDR	16
#define MAGIC_USED		0x4e4b5655u /* "NKVU" */
#define MAGIC_FREE		0x4e4b5646u /* "NKVF" */

typedef struct heap_block
{
	uint32_t	magic;
	uint8_t		order;
	uint8_t		pad[3];
	uint64_t	reserved;
	/* free blocks only: */
	nokv_off	next;
	nokv_off	prev;
} heap_block;

typedef struct nokv_heap
{
	nokv_off	arena;			/* region offset of the first block */
	uint64_t	arena_size;
	uint64_t	used;			/* bytes in allocated blocks (block sizes) */
	nokv_off	free_list[HEAP_MAX_ORDER + 1];
} nokv_heap;

size_t
nokv_heap_header_size(void)
{
	return NOKV_ALIGN(sizeof(nokv_heap), 64);
}

static inline heap_block *
blk(nokv_ctx *ctx, nokv_off off)
{
	return (heap_block *) (ctx->base + off);
}

static void
list_push(nokv_ctx *ctx, nokv_heap *h, nokv_off off, int order)
{
	heap_block *b = blk(ctx, off);

	b->magic = MAGIC_FREE;
	b->order = (uint8_t) order;
	b->prev = 0;
	b->next = h->free_list[order];
	if (b->next)
		blk(ctx, b->next)->prev = off;
	h->free_list[order] = off;
}

static void
list_remove(nokv_ctx *ctx, nokv_heap *h, nokv_off off)
{
	heap_block *b = blk(ctx, off);

	if (b->prev)
		blk(ctx, b->prev)->next = b->next;
	else
		h->free_list[b->order] = b->next;
	if (b->next)
		blk(ctx, b->next)->prev = b->prev;
	b->next = b->prev = 0;
}

void
nokv_heap_format(nokv_ctx *ctx, nokv_off off, size_t total_size)
{
	nokv_heap  *h = (nokv_heap *) (ctx->base + off);
	uint64_t	start = NOKV_ALIGN(off + nokv_heap_header_size(), 64);
	uint64_t	size = off + total_size > start ? off + total_size - start : 0;
	uint64_t	pos = 0;

	memset(h, 0, sizeof(*h));
	h->arena = start;
	h->arena_size = size;

	/*
	 * Carve the arena into the largest blocks whose size divides their
	 * arena-relative offset, so buddy arithmetic (offset XOR size) holds.
	 */
	while (size - pos >= ((uint64_t) 1 << HEAP_MIN_ORDER))
	{
		int			order = HEAP_MAX_ORDER;

		while (order > HEAP_MIN_ORDER &&
			   (((uint64_t) 1 << order) > size - pos ||
				(pos & (((uint64_t) 1 << order) - 1)) != 0))
			order--;
		list_push(ctx, h, start + pos, order);
		pos += (uint64_t) 1 << order;
	}
}

static int
order_for(size_t size)
{
	uint64_t	need = (uint64_t) size + HEAP_BLOCK_HDR;
	int			order = HEAP_MIN_ORDER;

	while (order <= HEAP_MAX_ORDER && ((uint64_t) 1 << order) < need)
		order++;
	return order;
}

size_t
nokv_heap_block_size(size_t size)
{
	int			order = order_for(size);

	return order > HEAP_MAX_ORDER ? SIZE_MAX : (size_t) 1 << order;
}

nokv_off
nokv_heap_alloc(nokv_ctx *ctx, size_t size)
{
	nokv_heap  *h = (nokv_heap *) (ctx->base + ctx->heap);
	int			order = order_for(size);
	int			o;
	nokv_off	off;

	if (order > HEAP_MAX_ORDER)
		return 0;
	nokv_lock(ctx->plat, NOKV_LOCK_HEAP, true);
	for (o = order; o <= HEAP_MAX_ORDER && h->free_list[o] == 0; o++)
		;
	if (o > HEAP_MAX_ORDER)
	{
		nokv_unlock(ctx->plat, NOKV_LOCK_HEAP);
		return 0;
	}
	off = h->free_list[o];
	list_remove(ctx, h, off);
	/* split down to the wanted order, returning upper halves to the lists */
	while (o > order)
	{
		o--;
		list_push(ctx, h, off + ((uint64_t) 1 << o), o);
	}
	blk(ctx, off)->magic = MAGIC_USED;
	blk(ctx, off)->order = (uint8_t) order;
	h->used += (uint64_t) 1 << order;
	nokv_unlock(ctx->plat, NOKV_LOCK_HEAP);
	return off + HEAP_BLOCK_HDR;
}

void
nokv_heap_free(nokv_ctx *ctx, nokv_off payload)
{
	nokv_heap  *h = (nokv_heap *) (ctx->base + ctx->heap);
	nokv_off	off;
	int			order;

	if (payload == 0)
		return;
	off = payload - HEAP_BLOCK_HDR;
	nokv_lock(ctx->plat, NOKV_LOCK_HEAP, true);
	if (blk(ctx, off)->magic != MAGIC_USED)
	{
		nokv_unlock(ctx->plat, NOKV_LOCK_HEAP);
		fprintf(stderr, "nokv: heap free of a block that is not allocated (offset %llu)\n",
				(unsigned long long) payload);
		abort();
	}
	order = blk(ctx, off)->order;
	h->used -= (uint64_t) 1 << order;

	/* coalesce with free buddies of the same order */
	while (order < HEAP_MAX_ORDER)
	{
		uint64_t	rel = off - h->arena;
		uint64_t	buddy_rel = rel ^ ((uint64_t) 1 << order);
		nokv_off	buddy = h->arena + buddy_rel;
		heap_block *b;

		if (buddy_rel + ((uint64_t) 1 << order) > h->arena_size)
			break;
		b = blk(ctx, buddy);
		if (b->magic != MAGIC_FREE || b->order != order)
			break;
		list_remove(ctx, h, buddy);
		b->magic = 0;
		if (buddy < off)
			off = buddy;
		order++;
	}
	list_push(ctx, h, off, order);
	nokv_unlock(ctx->plat, NOKV_LOCK_HEAP);
}

void
nokv_heap_usage(nokv_ctx *ctx, uint64_t *used, uint64_t *total)
{
	nokv_heap  *h = (nokv_heap *) (ctx->base + ctx->heap);

	nokv_lock(ctx->plat, NOKV_LOCK_HEAP, false);
	*used = h->used;
	*total = h->arena_size;
	nokv_unlock(ctx->plat, NOKV_LOCK_HEAP);
}
