/*-------------------------------------------------------------------------
 *
 * batch.h
 *	  Write-batch representation, shared by the write path and WAL replay.
 *
 * A batch is a byte string of entries
 *
 *		op (1) | cf (1) | varint32 key length | key | [varint32 length | value]
 *		[varint64 expiry in milliseconds, when op has NOKV_BATCH_TTL]
 *
 * where op is NOKV_KIND_PUT (value follows), NOKV_KIND_DELETE (no value)
 * or NOKV_KIND_RANGE_DELETE (the "value" is the exclusive end key).  A WAL
 * record is LE64 first version | LE32 count | batch bytes; entry i gets
 * version first + i, so a batch replays exactly as it was applied.
 *
 * include/nokv/batch.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_BATCH_H
#define NOKV_BATCH_H

#include "nokv/coding.h"
#include "nokv/ikey.h"

struct nokv_batch
{
	nokv_buf	rep;
	uint32_t	count;
	uint64_t	user_bytes;		/* key + value bytes, for statistics */
	size_t		max_key;		/* longest key or end key */
	size_t		last_op;		/* offset of the last entry's op byte */

	/*
	 * Kept up to date as entries are added, so the write path needs no pass
	 * over the batch for them: the memtable space the entries can take at
	 * most (nokv_memtable_entry_cost), and whether some entry is not above
	 * the one before it in (point before range, cf, key) order; a batch
	 * still in that order has no key twice.  last_key is an offset into rep.
	 * A batch whose bytes are borrowed (WAL replay) tracks none of this.
	 */
	size_t		mem_cost;
	bool		unsorted;
	bool		has_range;		/* some entry is a range delete */
	bool		last_range;
	int			last_cf;
	size_t		last_key;
	size_t		last_klen;
};

typedef struct nokv_batch_entry
{
	int			op;
	int			cf;
	const char *key;
	size_t		klen;
	const char *val;			/* value, or end key for range deletes */
	size_t		vlen;
	uint64_t	expires_at_ms;	/* puts with a TTL; 0 = none */
} nokv_batch_entry;

/* op byte flag: a varint64 expiry follows the value of a put */
#define NOKV_BATCH_TTL 0x80

#define NOKV_WAL_BATCH_HEADER 12

/*
 * Decode the entry at *p (advancing it).  Returns 1 on success, 0 at end,
 * -1 if the bytes are malformed.
 */
int			nokv_batch_next(const char **p, const char *end, nokv_batch_entry *e);

/* a varint of bytes known to be well-formed */
static inline const char *
nokv_batch_varint_valid(const char *p, uint64_t *v)
{
	const unsigned char *u = (const unsigned char *) p;
	uint64_t	r = 0;
	int			shift = 0;

	while (*u & 0x80)
	{
		r |= (uint64_t) (*u++ & 0x7f) << shift;
		shift += 7;
	}
	*v = r | ((uint64_t) *u << shift);
	return (const char *) u + 1;
}

/*
 * The entry at *p of a batch whose bytes are known to be well-formed: built
 * by this module's constructors, which check every entry as it is added, or
 * read from a log and already walked with nokv_batch_next.  The write path
 * decodes every entry once more to apply it, and needs none of the checks
 * again.
 */
static inline void
nokv_batch_next_valid(const char **pp, nokv_batch_entry *e)
{
	const char *p = *pp;
	int			op = (unsigned char) p[0];
	uint64_t	len;

	e->op = op & ~NOKV_BATCH_TTL;
	e->cf = (unsigned char) p[1];
	p = nokv_batch_varint_valid(p + 2, &len);
	e->key = p;
	e->klen = (size_t) len;
	p += len;
	e->val = NULL;
	e->vlen = 0;
	e->expires_at_ms = 0;
	if (e->op != NOKV_KIND_DELETE)
	{
		p = nokv_batch_varint_valid(p, &len);
		e->val = p;
		e->vlen = (size_t) len;
		p += len;
	}
	if (op & NOKV_BATCH_TTL)
		p = nokv_batch_varint_valid(p, &e->expires_at_ms);
	*pp = p;
}

/*
 * The order in which a batch counts as sorted (every point entry before
 * every range delete, then column family, then key): <0, 0 or >0.
 */
int			nokv_batch_key_order(bool range_a, int cf_a, const char *a, size_t alen,
								 bool range_b, int cf_b, const char *b, size_t blen);

#endif							/* NOKV_BATCH_H */
