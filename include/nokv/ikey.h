/*-------------------------------------------------------------------------
 *
 * ikey.h
 *	  Internal keys, their ordering, and the stored value record.
 *
 * An internal key is
 *
 *		cf (1 byte) | user key | BE64(~version) | kind (1 byte)
 *
 * The first two parts together are the "lookup key" (lkey): column family
 * plus user key.  Internal keys order by lkey bytewise (shorter prefix
 * first), then by trailer bytes, i.e. newer versions first and, within one
 * version, by kind.  Everything that sorts internal keys (memtable, SST
 * blocks, index blocks, merging iterators, compaction) uses
 * nokv_ikey_compare and nothing else.
 *
 * A seek for "the newest version of K visible at version V" uses the key
 * (K, V, NOKV_KIND_SEEK): kind 0 sorts before every real entry of version V,
 * so the first entry at or after it is the newest one with version <= V.
 *
 * Range tombstones are not stored among point entries: memtables and SSTs
 * keep them in a separate structure (nokv_range_tombstone) and readers and
 * compaction consult both.
 *
 * include/nokv/ikey.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_IKEY_H
#define NOKV_IKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nokv/coding.h"

#define NOKV_IKEY_TRAILER	9	/* 8-byte inverted version + kind */

/* kinds; the numeric order is the order within one version */
#define NOKV_KIND_SEEK			0	/* never stored: lowest kind for seeks */
#define NOKV_KIND_DELETE		1
#define NOKV_KIND_PUT			2
#define NOKV_KIND_RANGE_DELETE	3	/* only inside range-tombstone structures */
#define NOKV_KIND_MAX			3

#define NOKV_VERSION_MAX	UINT64_MAX

/* parsed view of an internal key; pointers into the key */
typedef struct nokv_ikey_view
{
	const char *lkey;			/* cf byte + user key */
	size_t		lkey_len;
	int			cf;
	const char *ukey;			/* user key */
	size_t		ukey_len;
	uint64_t	version;
	int			kind;
} nokv_ikey_view;

static inline size_t
nokv_ikey_size(size_t ukey_len)
{
	return 1 + ukey_len + NOKV_IKEY_TRAILER;
}

/* writes the internal key into dst (nokv_ikey_size(ukey_len) bytes) */
static inline void
nokv_ikey_encode(char *dst, int cf, const void *ukey, size_t ukey_len,
				 uint64_t version, int kind)
{
	dst[0] = (char) cf;
	if (ukey_len)
		memcpy(dst + 1, ukey, ukey_len);
	nokv_put_be64(dst + 1 + ukey_len, ~version);
	dst[1 + ukey_len + 8] = (char) kind;
}

/* false if the buffer is too short to be an internal key */
static inline bool
nokv_ikey_parse(const char *k, size_t len, nokv_ikey_view *v)
{
	if (len < 1 + NOKV_IKEY_TRAILER)
		return false;
	v->lkey = k;
	v->lkey_len = len - NOKV_IKEY_TRAILER;
	v->cf = (unsigned char) k[0];
	v->ukey = k + 1;
	v->ukey_len = len - 1 - NOKV_IKEY_TRAILER;
	v->version = ~nokv_get_be64(k + len - NOKV_IKEY_TRAILER);
	v->kind = (unsigned char) k[len - 1];
	return true;
}

static inline uint64_t
nokv_ikey_version(const char *k, size_t len)
{
	return ~nokv_get_be64(k + len - NOKV_IKEY_TRAILER);
}

static inline int
nokv_ikey_kind(const char *k, size_t len)
{
	return (unsigned char) k[len - 1];
}

/* bytewise comparison of two lookup keys (cf + user key) */
static inline int
nokv_lkey_compare(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t		m = alen < blen ? alen : blen;
	int			r = m ? memcmp(a, b, m) : 0;

	if (r != 0)
		return r;
	return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

/*
 * The one ordering of internal keys.  Both keys must be at least
 * NOKV_IKEY_TRAILER + 1 bytes (callers validate data read from disk first).
 */
static inline int
nokv_ikey_compare(const char *a, size_t alen, const char *b, size_t blen)
{
	int			r = nokv_lkey_compare(a, alen - NOKV_IKEY_TRAILER,
									  b, blen - NOKV_IKEY_TRAILER);

	if (r != 0)
		return r;
	return memcmp(a + alen - NOKV_IKEY_TRAILER, b + blen - NOKV_IKEY_TRAILER,
				  NOKV_IKEY_TRAILER);
}

/* ---------- range tombstones ---------- */

/*
 * Deletes every entry of column family cf whose user key is in
 * [start, end) and whose version is lower than this tombstone's version.
 */
typedef struct nokv_range_tombstone
{
	int			cf;
	const char *start;
	size_t		start_len;
	const char *end;
	size_t		end_len;
	uint64_t	version;
} nokv_range_tombstone;

/* does tombstone t delete user key k of cf at version v? */
static inline bool
nokv_tombstone_covers(const nokv_range_tombstone *t, int cf,
					  const char *k, size_t klen, uint64_t v)
{
	return t->cf == cf && v < t->version &&
		nokv_lkey_compare(t->start, t->start_len, k, klen) <= 0 &&
		nokv_lkey_compare(k, klen, t->end, t->end_len) < 0;
}

/* ---------- stored value record ---------- */

/*
 * Values in memtables and SSTs are stored as a value record:
 *
 *		flags (1 byte) | [expires_at_ms varint64 if NOKV_VF_TTL] | payload
 *
 * NOKV_VF_TTL: the entry expires at expires_at_ms (milliseconds since the
 * epoch); from then on every reader treats it as deleted.  NOKV_VF_VPTR: the
 * payload is a value-log pointer (vlog.h), not the value.  Delete entries
 * have an empty value record (zero bytes).  Unknown flags are corruption.
 */
#define NOKV_VF_TTL		0x01
#define NOKV_VF_VPTR	0x02
#define NOKV_VF_KNOWN	(NOKV_VF_TTL | NOKV_VF_VPTR)

typedef struct nokv_value_view
{
	int			flags;
	uint64_t	expires_at_ms;	/* 0 = never */
	const char *payload;
	size_t		payload_len;
} nokv_value_view;

/* false if the record is malformed */
static inline bool
nokv_value_decode(const char *v, size_t len, nokv_value_view *out)
{
	const char *p;
	const char *end = v + len;

	if (len == 0)
		return false;
	out->flags = (unsigned char) v[0];
	out->expires_at_ms = 0;
	if ((out->flags & ~NOKV_VF_KNOWN) != 0)
		return false;
	p = v + 1;
	if (out->flags & NOKV_VF_TTL)
	{
		p = nokv_get_varint64(p, end, &out->expires_at_ms);
		if (!p || out->expires_at_ms == 0)
			return false;
	}
	out->payload = p;
	out->payload_len = (size_t) (end - p);
	return true;
}

/* bytes of the record header (flags + optional expiry) */
static inline size_t
nokv_value_header_size(uint64_t expires_at_ms)
{
	return 1 + (expires_at_ms ? (size_t) nokv_varint_length(expires_at_ms) : 0);
}

/* write a record header; returns the bytes written */
static inline size_t
nokv_value_header_encode(char *dst, int flags, uint64_t expires_at_ms)
{
	char	   *p = dst + 1;

	if (expires_at_ms)
		flags |= NOKV_VF_TTL;
	else
		flags &= ~NOKV_VF_TTL;
	dst[0] = (char) flags;
	if (expires_at_ms)
		p = nokv_put_varint64(p, expires_at_ms);
	return (size_t) (p - dst);
}

/* has a put with this record expired at now_ms? */
static inline bool
nokv_value_expired(const nokv_value_view *vv, uint64_t now_ms)
{
	return vv->expires_at_ms != 0 && vv->expires_at_ms <= now_ms;
}

#endif							/* NOKV_IKEY_H */
