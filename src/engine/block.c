/*-------------------------------------------------------------------------
 *
 * block.c
 *	  SST blocks: prefix-compressed entries with restart points, the
 *	  on-disk framing (type byte, LZ4, masked CRC32C) and block iterators.
 *
 * The entry layout is LevelDB's (see block.h and docs/sst.md).  Readers
 * never trust a length from disk: every varint and every key/value length
 * is checked against the end of the entry area before it is used, restart
 * offsets are checked when they are followed, and keys shorter than an
 * internal-key trailer are rejected, so a damaged block yields an invalid
 * iterator with corrupt set and never an out-of-bounds access.  The CRC
 * normally catches damage long before that; the checks exist for crafted
 * files and fuzzing.
 *
 * src/engine/block.c
 *-------------------------------------------------------------------------
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>

#include "nokv/block.h"
#include "nokv/status.h"

/* ---------- block handles ---------- */

char *
nokv_block_handle_encode(char *dst, const nokv_block_handle *h)
{
	dst = nokv_put_varint64(dst, h->offset);
	return nokv_put_varint64(dst, h->size);
}

const char *
nokv_block_handle_decode(const char *p, const char *limit, nokv_block_handle *h)
{
	p = nokv_get_varint64(p, limit, &h->offset);
	if (p == NULL)
		return NULL;
	return nokv_get_varint64(p, limit, &h->size);
}

/* ---------- building ---------- */

void
nokv_block_builder_init(nokv_block_builder *b, int restart_interval)
{
	memset(b, 0, sizeof(*b));
	b->restart_interval = restart_interval > 0 ? restart_interval : 1;
	b->restarts_cap = 16;
	b->restarts = nokv_malloc(sizeof(uint32_t) * b->restarts_cap);
	nokv_block_builder_reset(b);
}

void
nokv_block_builder_reset(nokv_block_builder *b)
{
	nokv_buf_reset(&b->buf);
	nokv_buf_reset(&b->last_key);
	b->restarts[0] = 0;
	b->num_restarts = 1;
	b->counter = 0;
	b->entries = 0;
	b->finished = false;
}

void
nokv_block_builder_free(nokv_block_builder *b)
{
	nokv_buf_free(&b->buf);
	nokv_buf_free(&b->last_key);
	free(b->restarts);
	b->restarts = NULL;
}

void
nokv_block_builder_add(nokv_block_builder *b, const char *key, size_t klen,
					   const char *value, size_t vlen)
{
	size_t		shared = 0;
	char	   *p;

	if (b->counter < b->restart_interval)
	{
		size_t		m = b->last_key.len < klen ? b->last_key.len : klen;

		while (shared < m && b->last_key.data[shared] == key[shared])
			shared++;
	}
	else
	{
		if (b->num_restarts == b->restarts_cap)
		{
			b->restarts_cap *= 2;
			b->restarts = nokv_realloc(b->restarts,
									   sizeof(uint32_t) * b->restarts_cap);
		}
		b->restarts[b->num_restarts++] = (uint32_t) b->buf.len;
		b->counter = 0;
	}

	nokv_buf_reserve(&b->buf, 15 + (klen - shared) + vlen);
	p = b->buf.data + b->buf.len;
	p = nokv_put_varint32(p, (uint32_t) shared);
	p = nokv_put_varint32(p, (uint32_t) (klen - shared));
	p = nokv_put_varint32(p, (uint32_t) vlen);
	memcpy(p, key + shared, klen - shared);
	p += klen - shared;
	if (vlen)
		memcpy(p, value, vlen);
	p += vlen;
	b->buf.len = p - b->buf.data;

	nokv_buf_reset(&b->last_key);
	nokv_buf_append(&b->last_key, key, klen);
	b->counter++;
	b->entries++;
}

const char *
nokv_block_builder_finish(nokv_block_builder *b, size_t *len)
{
	if (!b->finished)
	{
		nokv_buf_reserve(&b->buf, (size_t) b->num_restarts * 4 + 4);
		for (int i = 0; i < b->num_restarts; i++)
			nokv_buf_append_le32(&b->buf, b->restarts[i]);
		nokv_buf_append_le32(&b->buf, (uint32_t) b->num_restarts);
		b->finished = true;
	}
	*len = b->buf.len;
	return b->buf.data;
}

/* ---------- on-disk framing ---------- */

static uint32_t
block_crc(const char *payload, size_t size, char type)
{
	uint32_t	crc = nokv_crc32c(payload, size);

	return nokv_crc_mask(nokv_crc32c_extend(crc, &type, 1));
}

size_t
nokv_block_frame(nokv_buf *out, const char *contents, size_t len, bool compress)
{
	size_t		start = out->len;
	size_t		payload = len;
	char		type = NOKV_BLOCK_TYPE_RAW;

	/* LZ4 takes int sizes; blocks near that limit are not worth compressing */
	if (compress && len >= 64 && len <= (size_t) LZ4_MAX_INPUT_SIZE)
	{
		int			bound = LZ4_compressBound((int) len);
		char	   *p;
		int			clen;

		nokv_buf_reserve(out, 5 + (size_t) bound + NOKV_BLOCK_TRAILER_SIZE);
		p = nokv_put_varint32(out->data + start, (uint32_t) len);
		clen = LZ4_compress_default(contents, p, (int) len, bound);
		if (clen > 0 &&
			(size_t) (p - (out->data + start)) + (size_t) clen <= len - len / 8)
		{
			payload = (size_t) (p - (out->data + start)) + (size_t) clen;
			type = NOKV_BLOCK_TYPE_LZ4;
		}
	}

	nokv_buf_reserve(out, payload + NOKV_BLOCK_TRAILER_SIZE);
	if (type == NOKV_BLOCK_TYPE_RAW && len)
		memcpy(out->data + start, contents, len);
	out->data[start + payload] = type;
	nokv_put_le32(out->data + start + payload + 1,
				  block_crc(out->data + start, payload, type));
	out->len = start + payload + NOKV_BLOCK_TRAILER_SIZE;
	return payload;
}

int
nokv_block_unframe(const char *disk, size_t size,
				   const char **contents, size_t *len, char **owned,
				   const char *what, uint64_t offset, const char *path,
				   nokv_error *err)
{
	char		type = disk[size];
	uint32_t	stored = nokv_get_le32(disk + size + 1);
	const char *p;
	uint32_t	ulen;
	size_t		clen;
	char	   *buf;

	*owned = NULL;
	if (block_crc(disk, size, type) != stored)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "checksum mismatch in %s block at offset %llu of %s",
							  what, (unsigned long long) offset, path);

	switch ((unsigned char) type)
	{
		case NOKV_BLOCK_TYPE_RAW:
			if (size > NOKV_BLOCK_MAX_SIZE)
				break;
			*contents = disk;
			*len = size;
			return NOKV_OK;

		case NOKV_BLOCK_TYPE_LZ4:
			p = nokv_get_varint32(disk, disk + size, &ulen);
			if (p == NULL)
				break;
			clen = (size_t) (disk + size - p);

			/*
			 * LZ4 cannot expand more than 255:1, so a larger claim is damage;
			 * checking it first bounds the allocation.
			 */
			if (ulen > NOKV_BLOCK_MAX_SIZE || clen > (size_t) INT_MAX ||
				(uint64_t) ulen > (uint64_t) clen * 255 + 64)
				break;
			buf = nokv_malloc(ulen ? ulen : 1);
			if (LZ4_decompress_safe(p, buf, (int) clen, (int) ulen) != (int) ulen)
			{
				free(buf);
				break;
			}
			*owned = buf;
			*contents = buf;
			*len = ulen;
			return NOKV_OK;

		default:
			return nokv_error_set(err, NOKV_CORRUPTION,
								  "unknown block type %d in %s block at offset %llu of %s",
								  (unsigned char) type, what,
								  (unsigned long long) offset, path);
	}
	return nokv_error_set(err, NOKV_CORRUPTION,
						  "bad compressed payload in %s block at offset %llu of %s",
						  what, (unsigned long long) offset, path);
}

/* ---------- iteration ---------- */

void
nokv_block_iter_init(nokv_block_iter *it)
{
	it->data = NULL;
	it->restarts = 0;
	it->num_restarts = 0;
	it->current = 0;
	it->next_off = 0;
	it->restart_index = 0;
	it->corrupt = false;
	it->value = NULL;
	it->value_len = 0;
	it->key_len = 0;
	it->key_cap = NOKV_BLOCK_KEY_INLINE;
	it->key = it->key_inline;
}

void
nokv_block_iter_free(nokv_block_iter *it)
{
	if (it->key != it->key_inline)
		free(it->key);
	it->key = it->key_inline;
	it->key_cap = NOKV_BLOCK_KEY_INLINE;
	it->key_len = 0;
}

static void
mark_corrupt(nokv_block_iter *it)
{
	it->corrupt = true;
	it->current = it->restarts;
	it->next_off = it->restarts;
}

static inline void
mark_end(nokv_block_iter *it)
{
	it->current = it->restarts;
	it->next_off = it->restarts;
	it->restart_index = it->num_restarts;
}

bool
nokv_block_iter_set(nokv_block_iter *it, const char *data, size_t len)
{
	uint32_t	n;

	it->data = data;
	it->corrupt = false;
	it->key_len = 0;
	it->restart_index = 0;
	it->num_restarts = 0;
	it->restarts = 0;
	it->current = 0;
	it->next_off = 0;
	if (len < 4 || len > NOKV_BLOCK_MAX_SIZE)
	{
		it->corrupt = true;
		return false;
	}
	/* the first entries are read next: overlap their miss with the tail's */
	__builtin_prefetch(data);
	n = nokv_get_le32(data + len - 4);
	if (n > (len - 4) / 4 || (n == 0 && len != 4))
	{
		it->corrupt = true;
		return false;
	}
	it->num_restarts = n;
	it->restarts = (uint32_t) (len - 4 - (size_t) n * 4);
	it->current = it->restarts;
	it->next_off = it->restarts;
	return true;
}

static inline uint32_t
restart_point(const nokv_block_iter *it, uint32_t i)
{
	return nokv_get_le32(it->data + it->restarts + (size_t) i * 4);
}

/*
 * Decode the three varints of the entry at p; NULL if they or the key and
 * value lengths they announce run past limit.
 */
static inline const char *
decode_entry(const char *p, const char *limit, uint32_t *shared,
			 uint32_t *non_shared, uint32_t *value_len)
{
	if (limit - p < 3)
		return NULL;
	*shared = (unsigned char) p[0];
	*non_shared = (unsigned char) p[1];
	*value_len = (unsigned char) p[2];
	if ((*shared | *non_shared | *value_len) < 128)
		p += 3;
	else
	{
		if ((p = nokv_get_varint32(p, limit, shared)) == NULL ||
			(p = nokv_get_varint32(p, limit, non_shared)) == NULL ||
			(p = nokv_get_varint32(p, limit, value_len)) == NULL)
			return NULL;
	}
	if ((uint64_t) (limit - p) < (uint64_t) *non_shared + *value_len)
		return NULL;
	return p;
}

static bool
grow_key(nokv_block_iter *it, uint32_t need)
{
	uint32_t	cap = it->key_cap;
	char	   *nk;

	while (cap < need)
		cap = cap > UINT32_MAX / 2 ? need : cap * 2;
	if (it->key == it->key_inline)
	{
		nk = nokv_malloc(cap);
		memcpy(nk, it->key, it->key_len);
	}
	else
		nk = nokv_realloc(it->key, cap);
	it->key = nk;
	it->key_cap = cap;
	return true;
}

/* advance to the entry at next_off; false at the end or on corruption */
static bool
parse_next(nokv_block_iter *it)
{
	const char *limit = it->data + it->restarts;
	const char *p;
	uint32_t	shared,
				non_shared,
				value_len,
				new_len;

	it->current = it->next_off;
	if (it->current >= it->restarts)
	{
		mark_end(it);
		return false;
	}
	p = decode_entry(it->data + it->current, limit, &shared, &non_shared,
					 &value_len);
	if (p == NULL || shared > it->key_len)
	{
		mark_corrupt(it);
		return false;
	}
	new_len = shared + non_shared;
	if (new_len < shared || new_len < NOKV_IKEY_TRAILER + 1)
	{
		mark_corrupt(it);
		return false;
	}
	if (new_len > it->key_cap)
		grow_key(it, new_len);
	memcpy(it->key + shared, p, non_shared);
	it->key_len = new_len;
	it->value = p + non_shared;
	it->value_len = value_len;
	it->next_off = (uint32_t) (it->value + value_len - it->data);
	while (it->restart_index + 1 < it->num_restarts &&
		   restart_point(it, it->restart_index + 1) <= it->current)
		it->restart_index++;
	return true;
}

/* position before the entry at restart point i; false if it is bad */
static bool
seek_to_restart(nokv_block_iter *it, uint32_t i)
{
	uint32_t	off = restart_point(it, i);

	if (off >= it->restarts)
	{
		mark_corrupt(it);
		return false;
	}
	it->key_len = 0;
	it->restart_index = i;
	it->next_off = off;
	return true;
}

void
nokv_block_iter_seek_to_first(nokv_block_iter *it)
{
	if (it->corrupt || it->restarts == 0)
	{
		mark_end(it);
		return;
	}
	if (seek_to_restart(it, 0))
		parse_next(it);
}

void
nokv_block_iter_seek_to_last(nokv_block_iter *it)
{
	if (it->corrupt || it->restarts == 0)
	{
		mark_end(it);
		return;
	}
	if (!seek_to_restart(it, it->num_restarts - 1))
		return;
	while (parse_next(it) && it->next_off < it->restarts)
		;
}

void
nokv_block_iter_next(nokv_block_iter *it)
{
	if (nokv_block_iter_valid(it))
		parse_next(it);
}

void
nokv_block_iter_prev(nokv_block_iter *it)
{
	uint32_t	original = it->current;

	if (!nokv_block_iter_valid(it))
		return;

	/* back up to the restart point before the current entry */
	while (restart_point(it, it->restart_index) >= original)
	{
		if (it->restart_index == 0)
		{
			mark_end(it);
			return;
		}
		it->restart_index--;
	}
	if (!seek_to_restart(it, it->restart_index))
		return;
	/* and walk forward to the entry just before it */
	do
	{
		if (!parse_next(it))
			return;
	} while (it->next_off < original);
}

void
nokv_block_iter_seek(nokv_block_iter *it, const char *target, size_t tlen)
{
	const char *limit = it->data + it->restarts;
	uint32_t	left = 0,
				right;

	if (it->corrupt || it->restarts == 0)
	{
		mark_end(it);
		return;
	}

	/*
	 * Binary search for the last restart point whose key is < target;
	 * restart keys are stored whole, so they are compared in place.
	 */
	right = it->num_restarts - 1;
	while (left < right)
	{
		uint32_t	mid = left + (right - left + 1) / 2;
		uint32_t	off = restart_point(it, mid);
		uint32_t	shared,
					non_shared,
					value_len;
		const char *key;

		if (off >= it->restarts ||
			(key = decode_entry(it->data + off, limit, &shared, &non_shared,
								&value_len)) == NULL ||
			shared != 0 || non_shared < NOKV_IKEY_TRAILER + 1)
		{
			mark_corrupt(it);
			return;
		}
		if (nokv_ikey_compare(key, non_shared, target, tlen) < 0)
			left = mid;
		else
			right = mid - 1;
	}

	if (!seek_to_restart(it, left))
		return;
	while (parse_next(it))
	{
		if (nokv_ikey_compare(it->key, it->key_len, target, tlen) >= 0)
			return;
	}
}

bool
nokv_block_check(const char *data, size_t len)
{
	nokv_block_iter it;
	uint32_t	next_restart = 0;	/* index of the next restart to meet */
	bool		good = true;

	nokv_block_iter_init(&it);
	if (!nokv_block_iter_set(&it, data, len))
		return false;
	for (uint32_t i = 1; i < it.num_restarts; i++)
		if (restart_point(&it, i) <= restart_point(&it, i - 1))
			good = false;
	if (it.restarts == 0)
		good = good && (it.num_restarts == 0 || restart_point(&it, 0) == 0);
	for (nokv_block_iter_seek_to_first(&it); good && nokv_block_iter_valid(&it);
		 nokv_block_iter_next(&it))
	{
		if (next_restart < it.num_restarts &&
			restart_point(&it, next_restart) == it.current)
		{
			/* a restart entry stores its whole key */
			if ((unsigned char) data[it.current] != 0)
				good = false;
			next_restart++;
		}
		else if (next_restart < it.num_restarts &&
				 restart_point(&it, next_restart) < it.current)
			good = false;		/* points into the middle of an entry */
	}
	if (it.corrupt || (it.restarts > 0 && next_restart != it.num_restarts))
		good = false;
	nokv_block_iter_free(&it);
	return good;
}

/* ---------- table format: footer ---------- */

void
nokv_sst_footer_layout(nokv_sst_footer *f)
{
	uint64_t	off = f->meta_offset;

	f->filter.offset = off;
	f->filter.size = f->filter_size;
	if (f->version >= 2)
		off += f->filter_size;	/* blocks with their own trailers */
	else if (f->filter_size)
		off += (uint64_t) f->filter_size + NOKV_BLOCK_TRAILER_SIZE;
	f->rangedel.offset = off;
	f->rangedel.size = f->rangedel_size;
	if (f->rangedel_size)
		off += (uint64_t) f->rangedel_size + NOKV_BLOCK_TRAILER_SIZE;
	f->props.offset = off;
	f->props.size = f->props_size;
	off += (uint64_t) f->props_size + NOKV_BLOCK_TRAILER_SIZE;
	f->index.offset = off;
	f->index.size = f->index_size;
}

void
nokv_sst_footer_encode(char *dst, const nokv_sst_footer *f)
{
	nokv_put_le64(dst, f->meta_offset);
	nokv_put_le32(dst + 8, f->filter_size);
	nokv_put_le32(dst + 12, f->rangedel_size);
	nokv_put_le32(dst + 16, f->props_size);
	nokv_put_le32(dst + 20, f->index_size);
	nokv_put_le32(dst + 24, f->version ? f->version : NOKV_SST_FORMAT_VERSION);
	memset(dst + 28, 0, 8);
	nokv_put_le32(dst + 36, nokv_crc_mask(nokv_crc32c(dst, 36)));
	memcpy(dst + 40, NOKV_SST_MAGIC, 8);
}

int
nokv_sst_footer_decode(const char *src, uint64_t file_size, nokv_sst_footer *f,
					   const char *path, nokv_error *err)
{
	static const char zero[8] = {0};
	uint64_t	footer_off = file_size - NOKV_SST_FOOTER_SIZE;
	uint32_t	version;

	if (memcmp(src + 40, NOKV_SST_MAGIC, 8) != 0)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "bad magic in sst footer at offset %llu of %s",
							  (unsigned long long) footer_off, path);
	if (nokv_crc_mask(nokv_crc32c(src, 36)) != nokv_get_le32(src + 36))
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "checksum mismatch in sst footer at offset %llu of %s",
							  (unsigned long long) footer_off, path);
	version = nokv_get_le32(src + 24);
	if (version < 1 || version > NOKV_SST_FORMAT_VERSION)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "unsupported sst format version %u at offset %llu of %s",
							  version, (unsigned long long) (footer_off + 24), path);
	if (memcmp(src + 28, zero, 8) != 0)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "nonzero reserved bytes in sst footer at offset %llu of %s",
							  (unsigned long long) footer_off, path);

	f->version = version;
	f->meta_offset = nokv_get_le64(src);
	f->filter_size = nokv_get_le32(src + 8);
	f->rangedel_size = nokv_get_le32(src + 12);
	f->props_size = nokv_get_le32(src + 16);
	f->index_size = nokv_get_le32(src + 20);
	if (f->meta_offset > footer_off || f->props_size == 0 || f->index_size == 0)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "bad block layout in sst footer at offset %llu of %s",
							  (unsigned long long) footer_off, path);
	nokv_sst_footer_layout(f);
	/* sizes are 32-bit and meta_offset <= footer_off: no overflow here */
	if (f->index.offset + f->index.size + NOKV_BLOCK_TRAILER_SIZE != footer_off)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "meta blocks do not end at the footer (offset %llu) of %s",
							  (unsigned long long) footer_off, path);
	return NOKV_OK;
}

/* ---------- table format: properties ---------- */

static void
put_prop_u64(nokv_buf *out, int field, uint64_t v)
{
	nokv_buf_append_varint32(out, (uint32_t) field << 1);
	nokv_buf_append_varint64(out, v);
}

static void
put_prop_bytes(nokv_buf *out, int field, const char *p, size_t n)
{
	nokv_buf_append_varint32(out, ((uint32_t) field << 1) | 1);
	nokv_buf_append_lenprefixed(out, p, n);
}

void
nokv_sst_props_encode(nokv_buf *out, const nokv_sst_props *p)
{
	put_prop_u64(out, NOKV_PROP_ENTRIES, p->entries);
	put_prop_u64(out, NOKV_PROP_DELETIONS, p->deletions);
	put_prop_u64(out, NOKV_PROP_RANGE_DELETIONS, p->range_deletions);
	put_prop_u64(out, NOKV_PROP_RAW_KEY_BYTES, p->raw_key_bytes);
	put_prop_u64(out, NOKV_PROP_RAW_VALUE_BYTES, p->raw_value_bytes);
	put_prop_u64(out, NOKV_PROP_DATA_BLOCKS, p->data_blocks);
	put_prop_u64(out, NOKV_PROP_MIN_VERSION, p->min_version);
	put_prop_u64(out, NOKV_PROP_MAX_VERSION, p->max_version);
	for (int cf = 0; cf < NOKV_CF_COUNT; cf++)
	{
		if (p->cf_entries[cf] == 0)
			continue;
		put_prop_u64(out, NOKV_PROP_CF_ENTRIES + cf, p->cf_entries[cf]);
		put_prop_u64(out, NOKV_PROP_CF_KEY_BYTES + cf, p->cf_key_bytes[cf]);
		put_prop_u64(out, NOKV_PROP_CF_VALUE_BYTES + cf, p->cf_value_bytes[cf]);
	}
	if (p->vlog_max)
	{
		nokv_buf	segs = {0};
		uint64_t	prev = 0;

		put_prop_u64(out, NOKV_PROP_VLOG_MIN, p->vlog_min);
		put_prop_u64(out, NOKV_PROP_VLOG_MAX, p->vlog_max);
		nokv_buf_append_varint32(&segs, (uint32_t) p->n_vlog_segs);
		for (int i = 0; i < p->n_vlog_segs; i++)
		{
			nokv_buf_append_varint64(&segs, p->vlog_segs[i] - prev);
			prev = p->vlog_segs[i];
		}
		put_prop_bytes(out, NOKV_PROP_VLOG_SEGMENTS, segs.data, segs.len);
		nokv_buf_free(&segs);
	}
	if (p->smallest_len)
		put_prop_bytes(out, NOKV_PROP_SMALLEST, p->smallest, p->smallest_len);
	if (p->largest_len)
		put_prop_bytes(out, NOKV_PROP_LARGEST, p->largest, p->largest_len);
}

int
nokv_sst_props_decode(const char *data, size_t len, nokv_sst_props *p,
					  const char *path, uint64_t offset, nokv_error *err)
{
	const char *q = data;
	const char *limit = data + len;
	const char *why = NULL;

	p->entries = p->deletions = p->range_deletions = 0;
	p->raw_key_bytes = p->raw_value_bytes = p->data_blocks = 0;
	p->min_version = p->max_version = 0;
	p->smallest = p->largest = NULL;
	p->smallest_len = p->largest_len = 0;
	memset(p->cf_entries, 0, sizeof(p->cf_entries));
	memset(p->cf_key_bytes, 0, sizeof(p->cf_key_bytes));
	memset(p->cf_value_bytes, 0, sizeof(p->cf_value_bytes));
	p->vlog_min = p->vlog_max = 0;
	p->vlog_segs = NULL;
	p->n_vlog_segs = p->cap_vlog_segs = 0;

	while (q < limit && why == NULL)
	{
		uint32_t	tag;
		uint64_t	v = 0;
		uint32_t	n = 0;
		const char *bytes = NULL;

		if ((q = nokv_get_varint32(q, limit, &tag)) == NULL)
		{
			why = "bad tag";
			break;
		}
		if ((tag & 1) == 0)
		{
			if ((q = nokv_get_varint64(q, limit, &v)) == NULL)
				why = "bad integer";
		}
		else
		{
			if ((q = nokv_get_varint32(q, limit, &n)) == NULL ||
				(size_t) (limit - q) < n)
				why = "bad length";
			else
			{
				bytes = q;
				q += n;
			}
		}
		if (why)
			break;

		switch (tag)
		{
			case NOKV_PROP_ENTRIES << 1:
				p->entries = v;
				break;
			case NOKV_PROP_DELETIONS << 1:
				p->deletions = v;
				break;
			case NOKV_PROP_RANGE_DELETIONS << 1:
				p->range_deletions = v;
				break;
			case NOKV_PROP_RAW_KEY_BYTES << 1:
				p->raw_key_bytes = v;
				break;
			case NOKV_PROP_RAW_VALUE_BYTES << 1:
				p->raw_value_bytes = v;
				break;
			case NOKV_PROP_DATA_BLOCKS << 1:
				p->data_blocks = v;
				break;
			case NOKV_PROP_MIN_VERSION << 1:
				p->min_version = v;
				break;
			case NOKV_PROP_MAX_VERSION << 1:
				p->max_version = v;
				break;
			case (NOKV_PROP_SMALLEST << 1) | 1:
				free(p->smallest);
				p->smallest = nokv_memdup(bytes, n);
				p->smallest_len = n;
				break;
			case (NOKV_PROP_LARGEST << 1) | 1:
				free(p->largest);
				p->largest = nokv_memdup(bytes, n);
				p->largest_len = n;
				break;
			case NOKV_PROP_VLOG_MIN << 1:
				p->vlog_min = v;
				break;
			case NOKV_PROP_VLOG_MAX << 1:
				p->vlog_max = v;
				break;
			case (NOKV_PROP_VLOG_SEGMENTS << 1) | 1:
				{
					const char *sp = bytes;
					const char *se = bytes + n;
					uint32_t	count;
					uint64_t	prev = 0;

					free(p->vlog_segs);
					p->vlog_segs = NULL;
					p->n_vlog_segs = p->cap_vlog_segs = 0;
					if ((sp = nokv_get_varint32(sp, se, &count)) == NULL || count > n)
					{
						why = "bad value-log segment list";
						break;
					}
					p->vlog_segs = nokv_malloc(sizeof(uint64_t) * (count + 1));
					p->cap_vlog_segs = (int) count + 1;
					for (uint32_t i = 0; i < count; i++)
					{
						uint64_t	d;

						if ((sp = nokv_get_varint64(sp, se, &d)) == NULL || (i > 0 && d == 0) ||
							d > UINT64_MAX - prev)
						{
							why = "bad value-log segment list";
							break;
						}
						prev += d;
						p->vlog_segs[p->n_vlog_segs++] = prev;
					}
				}
				break;
			default:
				if ((tag & 1) == 0 && (tag >> 1) >= NOKV_PROP_CF_ENTRIES &&
					(tag >> 1) < NOKV_PROP_CF_VALUE_BYTES + NOKV_CF_COUNT)
				{
					uint32_t	t = tag >> 1;

					if (t < NOKV_PROP_CF_ENTRIES + NOKV_CF_COUNT)
						p->cf_entries[t - NOKV_PROP_CF_ENTRIES] = v;
					else if (t >= NOKV_PROP_CF_KEY_BYTES && t < NOKV_PROP_CF_KEY_BYTES + NOKV_CF_COUNT)
						p->cf_key_bytes[t - NOKV_PROP_CF_KEY_BYTES] = v;
					else if (t >= NOKV_PROP_CF_VALUE_BYTES)
						p->cf_value_bytes[t - NOKV_PROP_CF_VALUE_BYTES] = v;
				}
				break;			/* otherwise a field from a newer writer */
		}
	}

	if (why == NULL)
	{
		bool		has_keys = p->entries + p->range_deletions > 0;

		if (p->deletions > p->entries)
			why = "more deletions than entries";
		else if (has_keys != (p->smallest_len > 0) || has_keys != (p->largest_len > 0))
			why = "key range does not match the entry count";
		else if (has_keys &&
				 (p->smallest_len < NOKV_IKEY_TRAILER + 1 ||
				  p->largest_len < NOKV_IKEY_TRAILER + 1 ||
				  nokv_ikey_compare(p->smallest, p->smallest_len,
									p->largest, p->largest_len) > 0))
			why = "bad key range";
		else if (p->min_version > p->max_version)
			why = "bad version range";
	}
	if (why)
	{
		free(p->smallest);
		free(p->largest);
		p->smallest = p->largest = NULL;
		p->smallest_len = p->largest_len = 0;
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "malformed properties block at offset %llu of %s: %s",
							  (unsigned long long) offset, path, why);
	}
	return NOKV_OK;
}

/* ---------- table format: range tombstones ---------- */

int
nokv_sst_tombstone_compare(const nokv_range_tombstone *a,
						   const nokv_range_tombstone *b)
{
	int			r;

	if (a->cf != b->cf)
		return a->cf < b->cf ? -1 : 1;
	r = nokv_lkey_compare(a->start, a->start_len, b->start, b->start_len);
	if (r != 0)
		return r;
	r = nokv_lkey_compare(a->end, a->end_len, b->end, b->end_len);
	if (r != 0)
		return r;
	return a->version < b->version ? -1 : (a->version > b->version ? 1 : 0);
}

void
nokv_sst_rangedel_encode(nokv_buf *out, const nokv_range_tombstone *t, int n)
{
	nokv_buf_append_varint32(out, (uint32_t) n);
	for (int i = 0; i < n; i++)
	{
		char		cf = (char) t[i].cf;

		nokv_buf_append(out, &cf, 1);
		nokv_buf_append_varint32(out, (uint32_t) t[i].start_len);
		nokv_buf_append_varint32(out, (uint32_t) t[i].end_len);
		nokv_buf_append(out, t[i].start, t[i].start_len);
		nokv_buf_append(out, t[i].end, t[i].end_len);
		nokv_buf_append_le64(out, t[i].version);
	}
}

const char *
nokv_sst_rangedel_next(const char *p, const char *limit, nokv_range_tombstone *t)
{
	uint32_t	slen,
				elen;

	if (p >= limit)
		return NULL;
	t->cf = (unsigned char) *p++;
	if ((p = nokv_get_varint32(p, limit, &slen)) == NULL ||
		(p = nokv_get_varint32(p, limit, &elen)) == NULL ||
		(uint64_t) (limit - p) < (uint64_t) slen + elen + 8)
		return NULL;
	t->start = p;
	t->start_len = slen;
	t->end = p + slen;
	t->end_len = elen;
	p += (size_t) slen + elen;
	t->version = nokv_get_le64(p);
	return p + 8;
}

void
nokv_sst_props_note_segment(nokv_sst_props *p, uint64_t segment)
{
	int			lo = 0,
				hi = p->n_vlog_segs;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (p->vlog_segs[mid] < segment)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < p->n_vlog_segs && p->vlog_segs[lo] == segment)
		return;
	if (p->n_vlog_segs == p->cap_vlog_segs)
	{
		p->cap_vlog_segs = p->cap_vlog_segs ? p->cap_vlog_segs * 2 : 8;
		p->vlog_segs = nokv_realloc(p->vlog_segs, sizeof(uint64_t) * p->cap_vlog_segs);
	}
	memmove(p->vlog_segs + lo + 1, p->vlog_segs + lo, sizeof(uint64_t) * (p->n_vlog_segs - lo));
	p->vlog_segs[lo] = segment;
	p->n_vlog_segs++;
	if (p->vlog_min == 0 || segment < p->vlog_min)
		p->vlog_min = segment;
	if (segment > p->vlog_max)
		p->vlog_max = segment;
}

bool
nokv_sst_props_refs_segment(const nokv_sst_props *p, uint64_t segment)
{
	int			lo = 0,
				hi = p->n_vlog_segs;

	if (p->vlog_max == 0 || segment < p->vlog_min || segment > p->vlog_max)
		return false;
	if (p->n_vlog_segs == 0)
		return true;			/* range only (no list): assume it does */
	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (p->vlog_segs[mid] < segment)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < p->n_vlog_segs && p->vlog_segs[lo] == segment;
}
