/*-------------------------------------------------------------------------
 *
 * batch.c
 *	  Building and decoding write batches.
 *
 * Arguments are validated here, when the caller adds an entry, so that a
 * batch that reaches the write path can always be applied completely:
 * nothing fails half-way through a batch.
 *
 * src/engine/batch.c
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "nokv/batch.h"
#include "nokv/memtable.h"
#include "nokv/nokv.h"
#include "nokv/status.h"

nokv_batch *
nokv_batch_new(void)
{
	return nokv_calloc(1, sizeof(nokv_batch));
}

void
nokv_batch_free(nokv_batch *b)
{
	if (!b)
		return;
	nokv_buf_free(&b->rep);
	free(b);
}

void
nokv_batch_clear(nokv_batch *b)
{
	nokv_buf_reset(&b->rep);
	b->count = 0;
	b->user_bytes = 0;
	b->max_key = 0;
	b->mem_cost = 0;
	b->unsorted = false;
	b->has_range = false;
}

int
nokv_batch_key_order(bool range_a, int cf_a, const char *a, size_t alen,
					 bool range_b, int cf_b, const char *b, size_t blen)
{
	if (range_a != range_b)
		return range_a ? 1 : -1;
	if (cf_a != cf_b)
		return cf_a - cf_b;
	return nokv_lkey_compare(a, alen, b, blen);
}

/*
 * Record an entry just appended (its key starts at offset key_off): its
 * order against the entry before it, and the memtable space it can take.
 */
static void
batch_track(nokv_batch *b, int op, int cf, size_t key_off, size_t klen, size_t mem_len)
{
	bool		range = op == NOKV_KIND_RANGE_DELETE;

	if (b->count > 0 && !b->unsorted)
		b->unsorted = nokv_batch_key_order(b->last_range, b->last_cf, b->rep.data + b->last_key,
										   b->last_klen, range, cf, b->rep.data + key_off, klen) >= 0;
	b->has_range |= range;
	b->last_range = range;
	b->last_cf = cf;
	b->last_key = key_off;
	b->last_klen = klen;
	b->mem_cost += range ? nokv_memtable_tombstone_cost(1 + klen, mem_len)
		: nokv_memtable_entry_cost(nokv_ikey_size(klen), mem_len);
}

static void
batch_add(nokv_batch *b, int op, int cf, const void *key, size_t klen,
		  const void *val, size_t vlen, bool has_val)
{
	char		hdr[2] = {(char) op, (char) cf};

	size_t		key_off;

	b->last_op = b->rep.len;
	nokv_buf_append(&b->rep, hdr, 2);
	nokv_buf_append_varint32(&b->rep, (uint32_t) klen);
	key_off = b->rep.len;
	nokv_buf_append(&b->rep, key, klen);
	if (has_val)
		nokv_buf_append_lenprefixed(&b->rep, val, vlen);
	batch_track(b, op, cf, key_off, klen,
				op == NOKV_KIND_PUT ? vlen + nokv_value_header_size(0)
				: op == NOKV_KIND_RANGE_DELETE ? 1 + vlen : 0);
	b->count++;
	b->user_bytes += klen + vlen;
	if (klen > b->max_key)
		b->max_key = klen;
}

int
nokv_batch_put(nokv_batch *b, int cf, const void *key, size_t klen,
			   const void *val, size_t vlen)
{
	if (cf < 0 || cf >= NOKV_CF_COUNT || klen > NOKV_MAX_KEY_SIZE ||
		vlen > NOKV_MAX_VALUE_SIZE || (klen && !key) || (vlen && !val))
		return NOKV_INVALID_ARGUMENT;
	batch_add(b, NOKV_KIND_PUT, cf, key, klen, val, vlen, true);
	return NOKV_OK;
}

int
nokv_batch_put2(nokv_batch *b, int cf, const void *key, size_t klen,
				const void *v1, size_t l1, const void *v2, size_t l2)
{
	char		hdr[2] = {(char) NOKV_KIND_PUT, (char) cf};
	size_t		key_off;
	char	   *p;

	if (cf < 0 || cf >= NOKV_CF_COUNT || klen > NOKV_MAX_KEY_SIZE ||
		l1 > NOKV_MAX_VALUE_SIZE || l2 > NOKV_MAX_VALUE_SIZE - l1 ||
		(klen && !key) || (l1 && !v1) || (l2 && !v2))
		return NOKV_INVALID_ARGUMENT;
	/* one reservation for the whole entry: rows are added a thousand at a time */
	nokv_buf_reserve(&b->rep, 2 + 5 + klen + 5 + l1 + l2);
	b->last_op = b->rep.len;
	p = b->rep.data + b->rep.len;
	memcpy(p, hdr, 2);
	p = nokv_put_varint32(p + 2, (uint32_t) klen);
	key_off = (size_t) (p - b->rep.data);
	if (klen)
		memcpy(p, key, klen);
	p = nokv_put_varint32(p + klen, (uint32_t) (l1 + l2));
	if (l1)
		memcpy(p, v1, l1);
	if (l2)
		memcpy(p + l1, v2, l2);
	b->rep.len = (size_t) (p + l1 + l2 - b->rep.data);
	batch_track(b, NOKV_KIND_PUT, cf, key_off, klen, l1 + l2 + nokv_value_header_size(0));
	b->count++;
	b->user_bytes += klen + l1 + l2;
	if (klen > b->max_key)
		b->max_key = klen;
	return NOKV_OK;
}

int
nokv_batch_put_ttl(nokv_batch *b, int cf, const void *key, size_t klen,
				   const void *val, size_t vlen, uint64_t expires_at_ms)
{
	char		buf[NOKV_MAX_VARINT64];
	int			rc;

	if (expires_at_ms == 0)
		return nokv_batch_put(b, cf, key, klen, val, vlen);
	rc = nokv_batch_put(b, cf, key, klen, val, vlen);
	if (rc != NOKV_OK)
		return rc;
	/* flag the op byte written by nokv_batch_put and append the expiry */
	b->rep.data[b->last_op] |= (char) NOKV_BATCH_TTL;
	b->mem_cost -= nokv_memtable_entry_cost(nokv_ikey_size(klen), vlen + nokv_value_header_size(0));
	b->mem_cost += nokv_memtable_entry_cost(nokv_ikey_size(klen),
											vlen + nokv_value_header_size(expires_at_ms));
	nokv_buf_append(&b->rep, buf, nokv_put_varint64(buf, expires_at_ms) - buf);
	return NOKV_OK;
}

int
nokv_batch_delete(nokv_batch *b, int cf, const void *key, size_t klen)
{
	if (cf < 0 || cf >= NOKV_CF_COUNT || klen > NOKV_MAX_KEY_SIZE || (klen && !key))
		return NOKV_INVALID_ARGUMENT;
	batch_add(b, NOKV_KIND_DELETE, cf, key, klen, NULL, 0, false);
	return NOKV_OK;
}

int
nokv_batch_delete_range(nokv_batch *b, int cf, const void *start, size_t slen,
						const void *end, size_t elen)
{
	if (cf < 0 || cf >= NOKV_CF_COUNT || slen > NOKV_MAX_KEY_SIZE ||
		elen > NOKV_MAX_KEY_SIZE || (slen && !start) || (elen && !end))
		return NOKV_INVALID_ARGUMENT;
	/* an empty or inverted range deletes nothing */
	if (nokv_lkey_compare(start, slen, end, elen) >= 0)
		return NOKV_INVALID_ARGUMENT;
	batch_add(b, NOKV_KIND_RANGE_DELETE, cf, start, slen, end, elen, true);
	if (elen > b->max_key)
		b->max_key = elen;
	return NOKV_OK;
}

uint32_t
nokv_batch_count(const nokv_batch *b)
{
	return b->count;
}

size_t
nokv_batch_size(const nokv_batch *b)
{
	return b->rep.len;
}

const char *
nokv_batch_data(const nokv_batch *b, size_t *len)
{
	*len = b->rep.len;
	return b->rep.data ? b->rep.data : "";
}

int
nokv_batch_from_data(nokv_batch *b, const char *data, size_t len, nokv_error *err)
{
	const char *p = data;
	const char *end = len ? data + len : data;	/* data may be NULL when len is 0 */
	nokv_batch_entry e;
	int			r;

	nokv_batch_clear(b);
	while ((r = nokv_batch_next(&p, end, &e)) > 0)
	{
		/* re-add through the checking constructors: a log may be corrupt */
		if (e.op == NOKV_KIND_PUT)
			r = nokv_batch_put_ttl(b, e.cf, e.key, e.klen, e.val, e.vlen, e.expires_at_ms);
		else if (e.op == NOKV_KIND_DELETE)
			r = nokv_batch_delete(b, e.cf, e.key, e.klen);
		else
			r = nokv_batch_delete_range(b, e.cf, e.key, e.klen, e.val, e.vlen);
		if (r != NOKV_OK)
		{
			/* report before clearing: the count is the failing entry's index */
			r = nokv_error_set(err, NOKV_CORRUPTION,
							   "invalid entry %u in a logged write batch of %zu bytes",
							   b->count, len);
			nokv_batch_clear(b);
			return r;
		}
	}
	if (r < 0)
	{
		r = nokv_error_set(err, NOKV_CORRUPTION,
						   "malformed entry %u at offset %zu of a logged write batch of %zu bytes",
						   b->count, (size_t) (p - data), len);
		nokv_batch_clear(b);
		return r;
	}
	return NOKV_OK;
}

int
nokv_batch_next(const char **pp, const char *end, nokv_batch_entry *e)
{
	const char *p = *pp;
	uint32_t	len;

	if (p == end)
		return 0;
	bool		ttl;

	if (end - p < 2)
		return -1;
	e->op = (unsigned char) p[0];
	e->cf = (unsigned char) p[1];
	p += 2;
	ttl = (e->op & NOKV_BATCH_TTL) != 0;
	e->op &= ~NOKV_BATCH_TTL;
	e->expires_at_ms = 0;
	if (e->cf >= NOKV_CF_COUNT ||
		(e->op != NOKV_KIND_PUT && e->op != NOKV_KIND_DELETE && e->op != NOKV_KIND_RANGE_DELETE) ||
		(ttl && e->op != NOKV_KIND_PUT))
		return -1;
	p = nokv_get_varint32(p, end, &len);
	if (!p || len > (size_t) (end - p) || len > NOKV_MAX_KEY_SIZE)
		return -1;
	e->key = p;
	e->klen = len;
	p += len;
	e->val = NULL;
	e->vlen = 0;
	if (e->op != NOKV_KIND_DELETE)
	{
		p = nokv_get_varint32(p, end, &len);
		if (!p || len > (size_t) (end - p))
			return -1;
		e->val = p;
		e->vlen = len;
		p += len;
	}
	if (ttl)
	{
		p = nokv_get_varint64(p, end, &e->expires_at_ms);
		if (!p || e->expires_at_ms == 0)
			return -1;
	}
	*pp = p;
	return 1;
}
