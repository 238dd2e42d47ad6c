/*-------------------------------------------------------------------------
 *
 * sst_builder.c
 *	  Writes a sorted string table from entries given in key order.
 *
 * Entries go into a data block until it reaches the target size; the block
 * is then framed (LZ4 when that saves at least an eighth, type byte, masked
 * CRC32C) into a 256 KiB write buffer and indexed by its last key.
 *
 * The index and the bloom filter are partitioned (format version 2): once
 * the index entries of the current partition reach the block size, the
 * partition's index block and the bloom filter of the lookup keys its data
 * blocks hold are framed into memory, and the partition is named in the
 * top-level index by its last key.  So every block a reader caches is about
 * one block in size, however large the table: one index or filter block
 * per table would be hundreds of KiB, too big to share a buddy-allocated
 * cache with data blocks.  finish writes the filter partitions, the index
 * partitions, the range-tombstone, properties and top-level index blocks
 * and the footer, and makes the file durable under its final name: the
 * table is written as
 * NNNNNN.sst.tmp, fdatasync'ed, renamed to NNNNNN.sst and the directory is
 * fsync'ed, so after a crash the final name either does not exist or holds
 * a complete table.
 *
 * Any error makes the builder sticky-failed: later calls return the first
 * error, and finish removes the temporary file.
 *
 * src/engine/sst_builder.c
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nokv/block.h"
#include "nokv/bloom.h"
#include "nokv/file.h"
#include "nokv/sst.h"
#include "nokv/vlog.h"
#include "nokv/status.h"

#define WRITE_BUFFER_SIZE	(256 * 1024)

/* the value record of a put is its payload plus a few bytes of flags/TTL */
#define MAX_VALUE_RECORD	((size_t) NOKV_MAX_VALUE_SIZE + 64)

/* keeps block_size + one maximal entry below NOKV_BLOCK_MAX_SIZE */
#define MAX_BLOCK_SIZE		((size_t) 256 << 20)

/* a finished partition; offsets relative to its buffer */
typedef struct sst_partition
{
	size_t		key_off;
	size_t		key_len;
	nokv_block_handle filter;	/* size 0: no filter */
	nokv_block_handle index;
} sst_partition;

struct nokv_sst_builder
{
	char	   *dir;
	char	   *path;			/* final name */
	char	   *tmp_path;
	int			fd;
	nokv_sst_options opts;

	int			status;			/* first error (sticky) */
	nokv_error	error;

	nokv_buf	out;			/* framed blocks not yet written */
	uint64_t	file_off;		/* bytes written + buffered */

	nokv_block_builder data;
	nokv_block_builder index;	/* the current index partition */
	nokv_block_builder top;		/* partition last key -> index, filter handles */
	nokv_bloom_builder bloom;	/* the current partition's lookup keys */
	bool		part_fresh;		/* nothing added since the last partition cut */

	/* finished partitions, framed, until finish knows where they go */
	nokv_buf	filter_parts;
	nokv_buf	index_parts;
	nokv_buf	part_keys;		/* their last keys, concatenated */
	sst_partition *parts;
	int			nparts;
	int			parts_cap;

	nokv_buf	first_key;
	nokv_buf	last_key;
	nokv_buf	scratch;

	nokv_range_tombstone *tombs;	/* start/end malloc'ed */
	int			ntombs;
	int			tombs_cap;

	nokv_sst_props props;		/* counters only; keys computed at finish */
};

static int
fail(nokv_sst_builder *b, nokv_error *err)
{
	if (err)
		*err = b->error;
	return b->status;
}

static int
set_failed(nokv_sst_builder *b, nokv_error *err)
{
	b->status = b->error.code != NOKV_OK ? b->error.code : NOKV_IO_ERROR;
	return fail(b, err);
}

nokv_sst_builder *
nokv_sst_builder_new(const char *dir, uint64_t file_number,
					 const nokv_sst_options *opts, nokv_error *err)
{
	nokv_sst_builder *b;
	size_t		plen = strlen(dir) + 32;

	if (opts->block_size == 0 || opts->block_size > MAX_BLOCK_SIZE ||
		opts->restart_interval <= 0 || opts->bloom_bits_per_key < 0)
	{
		nokv_error_set(err, NOKV_INVALID_ARGUMENT,
					   "bad sst options: block_size %zu, restart_interval %d, bloom_bits_per_key %d",
					   opts->block_size, opts->restart_interval,
					   opts->bloom_bits_per_key);
		return NULL;
	}

	b = nokv_calloc(1, sizeof(*b));
	b->opts = *opts;
	b->dir = nokv_memdup(dir, strlen(dir) + 1);
	b->path = nokv_malloc(plen);
	snprintf(b->path, plen, NOKV_SST_FMT, dir, (unsigned long long) file_number);
	b->tmp_path = nokv_malloc(plen + strlen(NOKV_TMP_SUFFIX));
	snprintf(b->tmp_path, plen + strlen(NOKV_TMP_SUFFIX), "%s%s", b->path,
			 NOKV_TMP_SUFFIX);

	b->fd = open(b->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (b->fd < 0)
	{
		nokv_error_errno(err, "could not create %s", b->tmp_path);
		free(b->dir);
		free(b->path);
		free(b->tmp_path);
		free(b);
		return NULL;
	}

	nokv_block_builder_init(&b->data, opts->restart_interval);
	/* every index entry is a restart point: seeks binary-search all of them */
	nokv_block_builder_init(&b->index, 1);
	nokv_block_builder_init(&b->top, 1);
	nokv_bloom_builder_init(&b->bloom, opts->bloom_bits_per_key);
	b->part_fresh = true;
	b->props.min_version = UINT64_MAX;
	nokv_error_clear(&b->error);
	return b;
}

static void
builder_free(nokv_sst_builder *b)
{
	if (b->fd >= 0)
		close(b->fd);
	nokv_buf_free(&b->out);
	nokv_block_builder_free(&b->data);
	nokv_block_builder_free(&b->index);
	nokv_block_builder_free(&b->top);
	nokv_bloom_builder_free(&b->bloom);
	nokv_buf_free(&b->filter_parts);
	nokv_buf_free(&b->index_parts);
	nokv_buf_free(&b->part_keys);
	free(b->parts);
	nokv_buf_free(&b->first_key);
	nokv_buf_free(&b->last_key);
	nokv_buf_free(&b->scratch);
	for (int i = 0; i < b->ntombs; i++)
	{
		free((char *) b->tombs[i].start);
		free((char *) b->tombs[i].end);
	}
	free(b->tombs);
	free(b->props.vlog_segs);
	free(b->dir);
	free(b->path);
	free(b->tmp_path);
	free(b);
}

void
nokv_sst_builder_abandon(nokv_sst_builder *b)
{
	if (b == NULL)
		return;
	if (b->fd >= 0)
	{
		close(b->fd);
		b->fd = -1;
	}
	unlink(b->tmp_path);
	builder_free(b);
}

/* write the buffer out once it is big enough (or always, when forced) */
static int
flush_out(nokv_sst_builder *b, bool force)
{
	if (b->out.len == 0 || (!force && b->out.len < WRITE_BUFFER_SIZE))
		return NOKV_OK;
	if (nokv_write_full(b->fd, b->out.data, b->out.len, b->tmp_path,
						&b->error) != NOKV_OK)
		return set_failed(b, NULL);
	nokv_buf_reset(&b->out);
	/* do not let one huge block pin a huge buffer for the rest of the file */
	if (b->out.cap > 4 * WRITE_BUFFER_SIZE)
		nokv_buf_free(&b->out);
	return NOKV_OK;
}

/* frame contents into the output; returns its handle */
static nokv_block_handle
emit_block(nokv_sst_builder *b, const char *contents, size_t len, bool compress)
{
	nokv_block_handle h;
	size_t		before = b->out.len;

	h.offset = b->file_off;
	h.size = nokv_block_frame(&b->out, contents, len, compress);
	b->file_off += b->out.len - before;
	return h;
}

/*
 * Close the current index partition: frame its filter and index blocks
 * into the partition buffers and remember its last key.
 */
static void
cut_partition(nokv_sst_builder *b)
{
	sst_partition *p;
	const char *contents;
	const char *last;
	size_t		len,
				last_len,
				before;

	if (nokv_block_builder_empty(&b->index))
		return;
	if (b->nparts == b->parts_cap)
	{
		b->parts_cap = b->parts_cap ? b->parts_cap * 2 : 16;
		b->parts = nokv_realloc(b->parts, sizeof(*b->parts) * b->parts_cap);
	}
	p = &b->parts[b->nparts++];
	memset(p, 0, sizeof(*p));
	if (b->opts.bloom_bits_per_key > 0 && b->bloom.n > 0)
	{
		nokv_buf_reset(&b->scratch);
		nokv_bloom_builder_finish(&b->bloom, &b->scratch);
		before = b->filter_parts.len;
		p->filter.offset = before;
		p->filter.size = nokv_block_frame(&b->filter_parts, b->scratch.data,
										  b->scratch.len, false);
	}
	b->bloom.n = 0;
	last = nokv_block_builder_last_key(&b->index, &last_len);
	p->key_off = b->part_keys.len;
	p->key_len = last_len;
	nokv_buf_append(&b->part_keys, last, last_len);
	contents = nokv_block_builder_finish(&b->index, &len);
	p->index.offset = b->index_parts.len;
	p->index.size = nokv_block_frame(&b->index_parts, contents, len, b->opts.compression);
	nokv_block_builder_reset(&b->index);
	b->part_fresh = true;
}

static int
flush_data_block(nokv_sst_builder *b)
{
	const char *contents;
	const char *last;
	size_t		len,
				last_len;
	nokv_block_handle h;
	char		enc[NOKV_BLOCK_HANDLE_MAX_SIZE];
	char	   *end;

	if (nokv_block_builder_empty(&b->data))
		return NOKV_OK;
	contents = nokv_block_builder_finish(&b->data, &len);
	h = emit_block(b, contents, len, b->opts.compression);
	last = nokv_block_builder_last_key(&b->data, &last_len);
	end = nokv_block_handle_encode(enc, &h);
	nokv_block_builder_add(&b->index, last, last_len, enc, end - enc);
	nokv_block_builder_reset(&b->data);
	b->props.data_blocks++;
	if (nokv_block_builder_size(&b->index) >= b->opts.block_size)
		cut_partition(b);
	return flush_out(b, false);
}

static void
note_version(nokv_sst_builder *b, uint64_t v)
{
	if (v < b->props.min_version)
		b->props.min_version = v;
	if (v > b->props.max_version)
		b->props.max_version = v;
}

int
nokv_sst_builder_add(nokv_sst_builder *b, const char *ikey, size_t klen,
					 const char *value, size_t vlen, nokv_error *err)
{
	nokv_ikey_view v;

	if (b->status != NOKV_OK)
		return fail(b, err);
	if (!nokv_ikey_parse(ikey, klen, &v) ||
		v.ukey_len > NOKV_MAX_KEY_SIZE ||
		(v.kind != NOKV_KIND_PUT && v.kind != NOKV_KIND_DELETE))
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "bad internal key of %zu bytes for %s", klen,
							  b->tmp_path);
	if (vlen > MAX_VALUE_RECORD)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "value of %zu bytes too large for %s", vlen,
							  b->tmp_path);

	if (b->props.entries == 0)
		nokv_buf_append(&b->first_key, ikey, klen);
	else
	{
		if (nokv_ikey_compare(b->last_key.data, b->last_key.len, ikey, klen) >= 0)
			return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
								  "keys not strictly increasing at entry %llu of %s",
								  (unsigned long long) b->props.entries,
								  b->tmp_path);
	}

	/*
	 * Cut the block before an entry would take it past block_size (at
	 * worst: no shared prefix, three 5-byte varints, a restart slot), so
	 * that a cached block fits the power-of-two heap block its size was
	 * chosen for.  A block always holds at least one entry.  (Before the
	 * filter below: the cut may start a new partition.)
	 */
	if (!nokv_block_builder_empty(&b->data) &&
		nokv_block_builder_size(&b->data) + klen + vlen + 19 > b->opts.block_size &&
		flush_data_block(b) != NOKV_OK)
		return fail(b, err);

	/*
	 * One filter entry per lookup key and partition, not per version: a
	 * key whose versions continue into a new partition goes into its
	 * filter too, since a lookup may land there.
	 */
	if (b->opts.bloom_bits_per_key > 0 &&
		(b->part_fresh || b->props.entries == 0 ||
		 nokv_lkey_compare(b->last_key.data, b->last_key.len - NOKV_IKEY_TRAILER,
						   v.lkey, v.lkey_len) != 0))
		nokv_bloom_builder_add(&b->bloom, v.lkey, v.lkey_len);
	b->part_fresh = false;

	nokv_buf_reset(&b->last_key);
	nokv_buf_append(&b->last_key, ikey, klen);

	b->props.entries++;
	if (v.kind == NOKV_KIND_DELETE)
		b->props.deletions++;
	b->props.raw_key_bytes += klen;
	b->props.raw_value_bytes += vlen;
	if (vlen > 0 && (value[0] & NOKV_VF_VPTR))
	{
		nokv_value_view vv;
		nokv_vptr	p;

		/* remember which value-log segments this table points into */
		if (nokv_value_decode(value, vlen, &vv) &&
			nokv_vptr_decode(vv.payload, vv.payload_len, &p))
			nokv_sst_props_note_segment(&b->props, p.segment);
	}
	if (v.cf < NOKV_CF_COUNT)
	{
		b->props.cf_entries[v.cf]++;
		b->props.cf_key_bytes[v.cf] += klen;
		b->props.cf_value_bytes[v.cf] += vlen;
	}
	note_version(b, v.version);

	nokv_block_builder_add(&b->data, ikey, klen, value, vlen);
	return NOKV_OK;
}

int
nokv_sst_builder_add_range_tombstone(nokv_sst_builder *b,
									 const nokv_range_tombstone *t,
									 nokv_error *err)
{
	int			c;
	nokv_range_tombstone *copy;

	if (b->status != NOKV_OK)
		return fail(b, err);
	if (t->cf < 0 || t->cf > 255 || t->start_len > NOKV_MAX_KEY_SIZE ||
		t->end_len > NOKV_MAX_KEY_SIZE)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "bad range tombstone for %s", b->tmp_path);
	c = nokv_lkey_compare(t->start, t->start_len, t->end, t->end_len);
	if (c > 0)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "range tombstone start after end for %s",
							  b->tmp_path);
	if (c == 0)
		return NOKV_OK;			/* [k, k) deletes nothing */

	if (b->ntombs == b->tombs_cap)
	{
		b->tombs_cap = b->tombs_cap ? b->tombs_cap * 2 : 8;
		b->tombs = nokv_realloc(b->tombs, sizeof(*b->tombs) * b->tombs_cap);
	}
	copy = &b->tombs[b->ntombs++];
	*copy = *t;
	copy->start = nokv_memdup(t->start, t->start_len);
	copy->end = nokv_memdup(t->end, t->end_len);
	note_version(b, t->version);
	return NOKV_OK;
}

uint64_t
nokv_sst_builder_estimated_size(const nokv_sst_builder *b)
{
	return b->file_off +
		(nokv_block_builder_empty(&b->data) ? 0 : nokv_block_builder_size(&b->data));
}

uint64_t
nokv_sst_builder_entries(const nokv_sst_builder *b)
{
	return b->props.entries + (uint64_t) b->ntombs;
}

static int
tomb_cmp(const void *a, const void *b)
{
	return nokv_sst_tombstone_compare(a, b);
}

/* replace *key with k if k sorts before (want < 0) or after (want > 0) it */
static void
widen(nokv_buf *key, const char *k, size_t klen, int want)
{
	int			c;

	if (key->len == 0)
		c = want;
	else
		c = nokv_ikey_compare(k, klen, key->data, key->len);
	if ((want < 0 && c < 0) || (want > 0 && c > 0))
	{
		nokv_buf_reset(key);
		nokv_buf_append(key, k, klen);
	}
}

/* smallest/largest internal keys, widened for tombstones as sst.h says */
static void
compute_bounds(nokv_sst_builder *b, nokv_buf *smallest, nokv_buf *largest)
{
	if (b->props.entries > 0)
	{
		nokv_buf_append(smallest, b->first_key.data, b->first_key.len);
		nokv_buf_append(largest, b->last_key.data, b->last_key.len);
	}
	for (int i = 0; i < b->ntombs; i++)
	{
		const nokv_range_tombstone *t = &b->tombs[i];
		size_t		n;

		n = nokv_ikey_size(t->start_len);
		nokv_buf_reset(&b->scratch);
		nokv_buf_reserve(&b->scratch, n);
		nokv_ikey_encode(b->scratch.data, t->cf, t->start, t->start_len,
						 t->version, NOKV_KIND_RANGE_DELETE);
		widen(smallest, b->scratch.data, n, -1);

		n = nokv_ikey_size(t->end_len);
		nokv_buf_reset(&b->scratch);
		nokv_buf_reserve(&b->scratch, n);
		nokv_ikey_encode(b->scratch.data, t->cf, t->end, t->end_len,
						 NOKV_VERSION_MAX, NOKV_KIND_SEEK);
		widen(largest, b->scratch.data, n, +1);
	}
}

int
nokv_sst_builder_finish(nokv_sst_builder *b, nokv_sst_props *props, nokv_error *err)
{
	nokv_sst_footer f;
	nokv_buf	smallest = {0};
	nokv_buf	largest = {0};
	nokv_block_handle h;
	const char *contents;
	size_t		len;
	char		footer[NOKV_SST_FOOTER_SIZE];
	int			rc;

	if (b->status != NOKV_OK)
		goto failed;
	if (flush_data_block(b) != NOKV_OK)
		goto failed;

	cut_partition(b);

	memset(&f, 0, sizeof(f));
	f.version = NOKV_SST_FORMAT_VERSION;
	f.meta_offset = b->file_off;

	/*
	 * The partitions: every filter partition, then every index partition,
	 * and the top-level index naming each by its last key.
	 */
	if ((uint64_t) b->filter_parts.len + b->index_parts.len > UINT32_MAX)
	{
		nokv_error_set(&b->error, NOKV_INVALID_ARGUMENT,
					   "index and filter partitions too large for %s", b->tmp_path);
		b->status = NOKV_INVALID_ARGUMENT;
		goto failed;
	}
	f.filter_size = (uint32_t) (b->filter_parts.len + b->index_parts.len);
	nokv_buf_append(&b->out, b->filter_parts.data, b->filter_parts.len);
	nokv_buf_append(&b->out, b->index_parts.data, b->index_parts.len);
	b->file_off += f.filter_size;
	for (int i = 0; i < b->nparts; i++)
	{
		sst_partition *p = &b->parts[i];
		char		enc[2 * NOKV_BLOCK_HANDLE_MAX_SIZE];
		char	   *end;

		if (p->filter.size)
			p->filter.offset += f.meta_offset;
		p->index.offset += f.meta_offset + b->filter_parts.len;
		end = nokv_block_handle_encode(enc, &p->index);
		end = nokv_block_handle_encode(end, &p->filter);
		nokv_block_builder_add(&b->top, b->part_keys.data + p->key_off, p->key_len,
							   enc, end - enc);
	}
	if (flush_out(b, false) != NOKV_OK)
		goto failed;

	if (b->ntombs > 0)
	{
		qsort(b->tombs, b->ntombs, sizeof(*b->tombs), tomb_cmp);
		nokv_buf_reset(&b->scratch);
		nokv_sst_rangedel_encode(&b->scratch, b->tombs, b->ntombs);
		if (b->scratch.len > NOKV_BLOCK_MAX_SIZE)
		{
			nokv_error_set(&b->error, NOKV_INVALID_ARGUMENT,
						   "range tombstones too large for %s", b->tmp_path);
			b->status = NOKV_INVALID_ARGUMENT;
			goto failed;
		}
		h = emit_block(b, b->scratch.data, b->scratch.len, false);
		f.rangedel_size = (uint32_t) h.size;
	}

	if (b->props.min_version > b->props.max_version)
		b->props.min_version = b->props.max_version = 0;	/* empty table */
	b->props.range_deletions = (uint64_t) b->ntombs;
	compute_bounds(b, &smallest, &largest);
	b->props.smallest = smallest.data;
	b->props.smallest_len = smallest.len;
	b->props.largest = largest.data;
	b->props.largest_len = largest.len;
	nokv_buf_reset(&b->scratch);
	nokv_sst_props_encode(&b->scratch, &b->props);
	h = emit_block(b, b->scratch.data, b->scratch.len, false);
	f.props_size = (uint32_t) h.size;

	contents = nokv_block_builder_finish(&b->top, &len);
	if (len > NOKV_BLOCK_MAX_SIZE)
	{
		nokv_error_set(&b->error, NOKV_INVALID_ARGUMENT,
					   "top-level index block too large for %s", b->tmp_path);
		b->status = NOKV_INVALID_ARGUMENT;
		goto failed;
	}
	h = emit_block(b, contents, len, b->opts.compression);
	f.index_size = (uint32_t) h.size;

	nokv_sst_footer_encode(footer, &f);
	nokv_buf_append(&b->out, footer, sizeof(footer));
	b->file_off += sizeof(footer);

	if (flush_out(b, true) != NOKV_OK)
		goto failed;
	if (nokv_fdatasync(b->fd, b->tmp_path, &b->error) != NOKV_OK)
		goto io_failed;
	if (close(b->fd) != 0)
	{
		b->fd = -1;
		nokv_error_errno(&b->error, "could not close %s", b->tmp_path);
		goto io_failed;
	}
	b->fd = -1;
	if (rename(b->tmp_path, b->path) != 0)
	{
		nokv_error_errno(&b->error, "could not rename %s to %s", b->tmp_path,
						 b->path);
		goto io_failed;
	}
	if (nokv_fsync_dir(b->dir, &b->error) != NOKV_OK)
	{
		/* the name may not be durable: do not leave a table nobody owns */
		unlink(b->path);
		goto io_failed;
	}

	if (props)
	{
		*props = b->props;
		props->file_size = b->file_off;
		props->vlog_segs = b->props.n_vlog_segs
			? (uint64_t *) nokv_memdup(b->props.vlog_segs, sizeof(uint64_t) * b->props.n_vlog_segs) : NULL;
		props->cap_vlog_segs = props->n_vlog_segs;
		props->smallest = smallest.len ? nokv_memdup(smallest.data, smallest.len) : NULL;
		props->largest = largest.len ? nokv_memdup(largest.data, largest.len) : NULL;
	}
	nokv_buf_free(&smallest);
	nokv_buf_free(&largest);
	builder_free(b);
	return NOKV_OK;

io_failed:
	set_failed(b, NULL);
failed:
	rc = fail(b, err);
	nokv_buf_free(&smallest);
	nokv_buf_free(&largest);
	nokv_sst_builder_abandon(b);
	return rc;
}
