/*-------------------------------------------------------------------------
 *
 * block.h
 *	  SST blocks: building, on-disk framing and iteration (internal).
 *
 * A block's contents are a sequence of prefix-compressed entries followed
 * by a restart array (LevelDB layout):
 *
 *		entry*  LE32 restart[num_restarts]  LE32 num_restarts
 *		entry = varint32 shared | varint32 non_shared | varint32 value_len |
 *				key[shared..shared+non_shared) | value
 *
 * Every restart_interval-th entry is a restart point: it stores its whole
 * key (shared = 0) and its offset is listed in the restart array, so seeks
 * binary-search the restart points and then scan at most one interval.
 * Keys are internal keys ordered by nokv_ikey_compare; data blocks and the
 * index block both use this layout.
 *
 * On disk every block is framed as
 *
 *		payload | type (1 byte) | LE32 masked CRC32C(payload + type)
 *
 * where type 0 means the payload is the contents and type 1 means the
 * payload is varint32 uncompressed_length followed by an LZ4 block.  The
 * block handle (offset, size) names the payload; the 5-byte trailer
 * follows it.  See docs/sst.md.
 *
 * include/nokv/block.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_BLOCK_H
#define NOKV_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/coding.h"
#include "nokv/ikey.h"
#include "nokv/nokv.h"
#include "nokv/sst.h"

#define NOKV_BLOCK_TRAILER_SIZE	5
#define NOKV_BLOCK_TYPE_RAW		0
#define NOKV_BLOCK_TYPE_LZ4		1

/*
 * Largest block contents accepted by the framing code.  The builder never
 * produces more than block_size plus one maximal entry; the limit keeps
 * 32-bit offsets inside a block valid and bounds what a corrupt length
 * can make a reader allocate.
 */
#define NOKV_BLOCK_MAX_SIZE		((size_t) 1 << 30)

/* ---------- block handles ---------- */

typedef struct nokv_block_handle
{
	uint64_t	offset;			/* of the payload in the file */
	uint64_t	size;			/* payload bytes, without the trailer */
} nokv_block_handle;

#define NOKV_BLOCK_HANDLE_MAX_SIZE (2 * NOKV_MAX_VARINT64)

/* varint64 offset | varint64 size; returns the end of the encoding */
char	   *nokv_block_handle_encode(char *dst, const nokv_block_handle *h);
/* NULL if malformed */
const char *nokv_block_handle_decode(const char *p, const char *limit,
									 nokv_block_handle *h);

/* ---------- building ---------- */

typedef struct nokv_block_builder
{
	nokv_buf	buf;			/* entries so far (then the restart array) */
	uint32_t   *restarts;
	int			num_restarts;
	int			restarts_cap;
	int			restart_interval;
	int			counter;		/* entries since the last restart point */
	uint64_t	entries;
	nokv_buf	last_key;
	bool		finished;
} nokv_block_builder;

void		nokv_block_builder_init(nokv_block_builder *b, int restart_interval);
void		nokv_block_builder_reset(nokv_block_builder *b);
void		nokv_block_builder_free(nokv_block_builder *b);

/* keys must increase (the caller checks); no copy of value is kept */
void		nokv_block_builder_add(nokv_block_builder *b, const char *key, size_t klen,
								   const char *value, size_t vlen);

/* size of the contents if finished now */
static inline size_t
nokv_block_builder_size(const nokv_block_builder *b)
{
	return b->buf.len + (size_t) b->num_restarts * 4 + 4;
}

static inline bool
nokv_block_builder_empty(const nokv_block_builder *b)
{
	return b->entries == 0;
}

static inline const char *
nokv_block_builder_last_key(const nokv_block_builder *b, size_t *len)
{
	*len = b->last_key.len;
	return b->last_key.data;
}

/* append the restart array; the contents stay valid until the next reset */
const char *nokv_block_builder_finish(nokv_block_builder *b, size_t *len);

/* ---------- on-disk framing ---------- */

/*
 * Append the on-disk form of contents (payload + trailer) to out, LZ4-
 * compressing the payload when compress is set and that saves at least an
 * eighth.  Returns the payload size (what the block handle records).
 */
size_t		nokv_block_frame(nokv_buf *out, const char *contents, size_t len,
							 bool compress);

/*
 * Check the trailer of the on-disk block disk[0 .. size + 5) and yield its
 * contents: for raw blocks *contents points into disk and *owned is NULL;
 * for compressed blocks the contents are in *owned (malloc'ed, the caller
 * frees it).  Returns NOKV_CORRUPTION, naming what/offset/path, when the
 * checksum, type or compressed payload is bad.
 */
int			nokv_block_unframe(const char *disk, size_t size,
							   const char **contents, size_t *len, char **owned,
							   const char *what, uint64_t offset, const char *path,
							   nokv_error *err);

/* ---------- iteration ---------- */

#define NOKV_BLOCK_KEY_INLINE 128

/*
 * Iterator over the entries of one block.  It holds pointers into the
 * block, which must stay put while it is used; a grown key buffer survives
 * nokv_block_iter_set, so one iterator can walk many blocks without
 * allocating.  The struct must not be copied after nokv_block_iter_init.
 *
 * Every key decoded is checked to be an internal key (at least
 * NOKV_IKEY_TRAILER + 1 bytes) and every length against the block bounds;
 * a malformed block makes the iterator invalid with corrupt set.
 */
typedef struct nokv_block_iter
{
	const char *data;
	uint32_t	restarts;		/* offset of the restart array: end of entries */
	uint32_t	num_restarts;
	uint32_t	current;		/* offset of the current entry; >= restarts: invalid */
	uint32_t	next_off;		/* offset of the entry after it */
	uint32_t	restart_index;	/* restart interval holding current */
	bool		corrupt;
	const char *value;
	uint32_t	value_len;
	uint32_t	key_len;
	uint32_t	key_cap;
	char	   *key;			/* key_inline or a malloc'ed buffer */
	char		key_inline[NOKV_BLOCK_KEY_INLINE];
} nokv_block_iter;

void		nokv_block_iter_init(nokv_block_iter *it);
/* point the iterator at a block (unpositioned); false if the block is malformed */
bool		nokv_block_iter_set(nokv_block_iter *it, const char *data, size_t len);
void		nokv_block_iter_free(nokv_block_iter *it);

void		nokv_block_iter_seek_to_first(nokv_block_iter *it);
void		nokv_block_iter_seek_to_last(nokv_block_iter *it);
/* first entry whose key is >= target (an internal key) */
void		nokv_block_iter_seek(nokv_block_iter *it, const char *target, size_t tlen);
void		nokv_block_iter_next(nokv_block_iter *it);
void		nokv_block_iter_prev(nokv_block_iter *it);

/*
 * Full structural check of a block (nokv_sst_verify): every entry decodes,
 * the restart array is strictly increasing, starts at 0 and points only at
 * entries that store their whole key.  Key order is the caller's business.
 */
bool		nokv_block_check(const char *data, size_t len);

static inline bool
nokv_block_iter_valid(const nokv_block_iter *it)
{
	return it->current < it->restarts;
}

static inline const char *
nokv_block_iter_key(const nokv_block_iter *it, size_t *len)
{
	*len = it->key_len;
	return it->key;
}

static inline const char *
nokv_block_iter_value(const nokv_block_iter *it, size_t *len)
{
	*len = it->value_len;
	return it->value;
}

/* ---------- table format (shared by sst_builder.c and sst_reader.c) ---------- */

/*
 * The footer, the last 48 bytes of every SST:
 *
 *	  0	LE64 meta_offset	end of the data blocks = start of the meta area
 *	  8	LE32 filter_size		version 2: bytes of the partition area (filter
 *								partitions, then index partitions, each with
 *								its trailer); version 1: filter payload bytes
 *								(0 = no filter)
 *	 12	LE32 rangedel_size		range-tombstone payload bytes (0 = none)
 *	 16	LE32 props_size			properties payload bytes (> 0)
 *	 20	LE32 index_size			index payload bytes (> 0): version 2, the
 *								top-level index (partition last key -> index
 *								partition handle, filter partition handle);
 *								version 1, the one index block
 *	 24	LE32 format version		1 or 2 (written: 2)
 *	 28	8 bytes reserved		zero
 *	 36	LE32 masked CRC32C of bytes 0..35
 *	 40	8 bytes magic			"NOKVSST1"
 *
 * The meta area holds, in this order, the partition area (version 2) or the
 * filter block (version 1), the range-tombstone, properties and index
 * blocks, each present block followed by its 5-byte trailer, and the footer
 * follows the index block, so their offsets are implied by the sizes and
 * the decoder checks that they tile [meta_offset, file_size - 48) exactly.
 */
#define NOKV_SST_FOOTER_SIZE	48
#define NOKV_SST_FORMAT_VERSION 2
#define NOKV_SST_MAGIC			"NOKVSST1"

typedef struct nokv_sst_footer
{
	uint32_t	version;
	uint64_t	meta_offset;
	uint32_t	filter_size;
	uint32_t	rangedel_size;
	uint32_t	props_size;
	uint32_t	index_size;
	/* derived by nokv_sst_footer_decode */
	nokv_block_handle filter;	/* version 1: the filter (size 0: absent);
								 * version 2: the partition area (size = its
								 * bytes, trailers included) */
	nokv_block_handle rangedel; /* size 0: absent */
	nokv_block_handle props;
	nokv_block_handle index;
} nokv_sst_footer;

/* fills the derived handles from the sizes */
void		nokv_sst_footer_layout(nokv_sst_footer *f);
void		nokv_sst_footer_encode(char *dst, const nokv_sst_footer *f);
/* validates magic, version, checksum and the layout against file_size */
int			nokv_sst_footer_decode(const char *src, uint64_t file_size,
								   nokv_sst_footer *f, const char *path,
								   nokv_error *err);

/*
 * Properties block: a sequence of (varint32 tag, value); tag = field << 1 |
 * wire, wire 0 = varint64 value, wire 1 = varint32 length + bytes.
 * Unknown fields are skipped, so fields can be added without a new format
 * version.  file_size is not stored (the reader knows it).
 */
#define NOKV_PROP_ENTRIES			1
#define NOKV_PROP_DELETIONS			2
#define NOKV_PROP_RANGE_DELETIONS	3
#define NOKV_PROP_RAW_KEY_BYTES		4
#define NOKV_PROP_RAW_VALUE_BYTES	5
#define NOKV_PROP_DATA_BLOCKS		6
#define NOKV_PROP_MIN_VERSION		7
#define NOKV_PROP_MAX_VERSION		8
#define NOKV_PROP_SMALLEST			9
#define NOKV_PROP_LARGEST			10
/* add a referenced value-log segment to props (kept sorted, distinct) */
void		nokv_sst_props_note_segment(nokv_sst_props *p, uint64_t segment);
/* does the table reference this segment? */
bool		nokv_sst_props_refs_segment(const nokv_sst_props *p, uint64_t segment);

/* per column family, tag + cf: entries, key bytes, value bytes (optional) */
#define NOKV_PROP_CF_ENTRIES		16
#define NOKV_PROP_CF_KEY_BYTES		20
#define NOKV_PROP_CF_VALUE_BYTES	24
/* lowest and highest value-log segment the table's pointers name */
#define NOKV_PROP_VLOG_MIN			30
#define NOKV_PROP_VLOG_MAX			31
#define NOKV_PROP_VLOG_SEGMENTS		32	/* bytes: varint count, then ascending deltas */

void		nokv_sst_props_encode(nokv_buf *out, const nokv_sst_props *p);
/* fills *p (keys malloc'ed; file_size left alone); NOKV_CORRUPTION if malformed */
int			nokv_sst_props_decode(const char *data, size_t len, nokv_sst_props *p,
								  const char *path, uint64_t offset, nokv_error *err);

/*
 * Range-tombstone block: varint32 count, then per tombstone
 * cf (1 byte) | varint32 start_len | varint32 end_len | start | end |
 * LE64 version, sorted by (cf, start, end, version).
 */
void		nokv_sst_rangedel_encode(nokv_buf *out, const nokv_range_tombstone *t, int n);
/* decode the next tombstone (pointers into the block); NULL if malformed */
const char *nokv_sst_rangedel_next(const char *p, const char *limit,
								   nokv_range_tombstone *t);
/* order used in the block */
int			nokv_sst_tombstone_compare(const nokv_range_tombstone *a,
									   const nokv_range_tombstone *b);

#endif							/* NOKV_BLOCK_H */
