/*-------------------------------------------------------------------------
 *
 * sst_reader.c
 *	  Reads sorted string tables: point lookups, iterators, verification.
 *
 * A reader is per process: it owns the file descriptor and keeps only the
 * footer and the decoded properties.  Every other block (index, filter,
 * range tombstones, data) is fetched through the shared block cache for
 * each operation, keyed by (file number, block offset), and pinned only
 * while it is in use: memory does not grow with the number of processes
 * and a cache hit costs a hash lookup under a shard lock.  What is cached
 * is the verified, uncompressed block contents, so a hit needs neither a
 * checksum nor a decompression.  Without a cache (env->cache == 0) each
 * use reads the block into a malloc'ed buffer.
 *
 * Reader state is immutable after open (reads use pread), so several
 * threads may share a reader; each iterator belongs to one thread.
 *
 * Point lookup (the readrandom hot path): bloom filter on the lookup key,
 * then a binary search of the index block for (lkey, read_version, SEEK),
 * then a seek in the one data block it names.  The target key is built on
 * the stack and the block iterators keep short keys inline, so a lookup
 * whose blocks are cached performs no allocation.
 *
 * src/engine/sst_reader.c
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nokv/block.h"
#include "nokv/bloom.h"
#include "nokv/file.h"
#include "nokv/sst.h"
#include "nokv/status.h"

struct nokv_sst_reader
{
	nokv_ctx   *ctx;
	nokv_off	cache;
	nokv_sst_counters *counters;
	int			fd;
	char	   *path;
	uint64_t	file_number;
	uint64_t	file_size;
	nokv_sst_footer footer;
	nokv_sst_props props;
};

/* a block in use: pinned in the cache, or owned */
typedef struct sst_block
{
	const char *data;
	size_t		len;
	nokv_cache_handle h;
	char	   *owned;			/* malloc'ed contents when not cached */
} sst_block;

static const char *const block_what[] = {"data", "index", "filter",
"range-tombstone", "properties", "top-level index"};

enum
{
	BK_DATA, BK_INDEX, BK_FILTER, BK_RANGEDEL, BK_PROPS, BK_TOP
};

/* one partition of the index: its index block and its filter */
typedef struct sst_part
{
	nokv_block_handle index;
	nokv_block_handle filter;	/* size 0: no filter */
} sst_part;

static inline void
bump(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* read and verify a block straight from the file */
static int
read_block(nokv_sst_reader *r, const nokv_block_handle *bh, int kind,
		   const char **contents, size_t *len, char **owned, nokv_error *err)
{
	char	   *disk;
	char	   *decompressed;
	int			rc;

	if (bh->size > NOKV_BLOCK_MAX_SIZE)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "%s block at offset %llu of %s is too large (%llu bytes)",
							  block_what[kind], (unsigned long long) bh->offset,
							  r->path, (unsigned long long) bh->size);
	disk = nokv_malloc(bh->size + NOKV_BLOCK_TRAILER_SIZE);
	rc = nokv_pread_full(r->fd, disk, bh->size + NOKV_BLOCK_TRAILER_SIZE,
						 bh->offset, r->path, err);
	if (rc == NOKV_OK)
		rc = nokv_block_unframe(disk, bh->size, contents, len, &decompressed,
								block_what[kind], bh->offset, r->path, err);
	if (rc != NOKV_OK)
	{
		free(disk);
		return rc;
	}
	if (r->counters)
		bump(&r->counters->blocks_read);
	if (decompressed)
	{
		free(disk);
		*owned = decompressed;
	}
	else
		*owned = disk;
	return NOKV_OK;
}

static int
block_get(nokv_sst_reader *r, const nokv_block_handle *bh, int kind,
		  bool use_cache, sst_block *b, nokv_error *err)
{
	const char *contents = NULL;
	size_t		len = 0;
	char	   *owned = NULL;
	int			rc;

	b->owned = NULL;
	b->h.entry = 0;
	use_cache = use_cache && r->cache != 0;
	if (use_cache &&
		nokv_cache_lookup(r->ctx, r->cache, r->file_number, bh->offset, &b->h))
	{
		b->data = b->h.data;
		b->len = b->h.len;
		return NOKV_OK;
	}

	rc = read_block(r, bh, kind, &contents, &len, &owned, err);
	if (rc != NOKV_OK)
		return rc;
	if (use_cache &&
		nokv_cache_insert(r->ctx, r->cache, r->file_number, bh->offset,
						  contents, len, &b->h))
	{
		free(owned);
		b->data = b->h.data;
		b->len = b->h.len;
		return NOKV_OK;
	}
	b->owned = owned;
	b->data = contents;
	b->len = len;
	return NOKV_OK;
}

static void
block_put(nokv_sst_reader *r, sst_block *b)
{
	if (b->h.entry)
		nokv_cache_release(r->ctx, r->cache, &b->h);
	free(b->owned);
	b->owned = NULL;
	b->data = NULL;
	b->len = 0;
}

/* a data-block handle from index block index_off must lie within the data area */
static int
check_data_handle(nokv_sst_reader *r, const char *v, size_t vlen,
				  nokv_block_handle *h, uint64_t index_off, nokv_error *err)
{
	if (nokv_block_handle_decode(v, v + vlen, h) == NULL ||
		h->size > NOKV_BLOCK_MAX_SIZE ||
		h->offset > r->footer.meta_offset ||
		h->size + NOKV_BLOCK_TRAILER_SIZE > r->footer.meta_offset - h->offset)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "bad block handle in index block at offset %llu of %s",
							  (unsigned long long) index_off, r->path);
	return NOKV_OK;
}

/* a partition's block must lie within the partition area */
static bool
part_handle_ok(nokv_sst_reader *r, const nokv_block_handle *h)
{
	uint64_t	start = r->footer.meta_offset;
	uint64_t	end = start + r->footer.filter_size;

	return h->size <= NOKV_BLOCK_MAX_SIZE && h->offset >= start && h->offset <= end &&
		h->size + NOKV_BLOCK_TRAILER_SIZE <= end - h->offset;
}

/* the partition a top-level index entry names */
static int
decode_part(nokv_sst_reader *r, const char *v, size_t vlen, sst_part *p, nokv_error *err)
{
	const char *end = v + vlen;
	const char *q = nokv_block_handle_decode(v, end, &p->index);

	if (q != NULL)
		q = nokv_block_handle_decode(q, end, &p->filter);
	if (q == NULL || q != end || !part_handle_ok(r, &p->index) ||
		(p->filter.size != 0 && !part_handle_ok(r, &p->filter)))
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "bad partition handle in top-level index block at offset %llu of %s",
							  (unsigned long long) r->footer.index.offset, r->path);
	return NOKV_OK;
}

/* format version 1: the whole table is one partition */
static void
single_part(nokv_sst_reader *r, sst_part *p)
{
	p->index = r->footer.index;
	p->filter = r->footer.filter;
}


static int
block_corrupt(nokv_sst_reader *r, int kind, uint64_t offset, nokv_error *err)
{
	return nokv_error_set(err, NOKV_CORRUPTION,
						  "malformed %s block at offset %llu of %s",
						  block_what[kind], (unsigned long long) offset, r->path);
}

/*
 * The partition that holds the first entry >= internal key target (its
 * last key is >= target).  *found is false when every entry is below it.
 * Returns NOKV_OK or an error code.
 */
static int
seek_part(nokv_sst_reader *r, const char *target, size_t tlen, sst_part *part,
		  bool *found, nokv_error *err)
{
	sst_block	blk;
	nokv_block_iter it;
	const char *v;
	size_t		vlen;
	int			rc;

	*found = true;
	if (r->footer.version < 2)
	{
		single_part(r, part);
		return NOKV_OK;
	}
	if ((rc = block_get(r, &r->footer.index, BK_TOP, true, &blk, err)) != NOKV_OK)
		return rc;
	nokv_block_iter_init(&it);
	nokv_block_iter_set(&it, blk.data, blk.len);
	nokv_block_iter_seek(&it, target, tlen);
	if (nokv_block_iter_valid(&it))
	{
		v = nokv_block_iter_value(&it, &vlen);
		rc = decode_part(r, v, vlen, part, err);
	}
	else
	{
		*found = false;
		if (it.corrupt)
			rc = block_corrupt(r, BK_TOP, r->footer.index.offset, err);
	}
	block_put(r, &blk);
	nokv_block_iter_free(&it);
	return rc;
}

/* ---------- open / close ---------- */

static int
open_fd(const nokv_sst_env *env, const char *path, int fd, uint64_t file_number,
		uint64_t expected_size, nokv_sst_reader **rp, nokv_error *err)
{
	nokv_sst_reader *r;
	struct stat st;
	char		footer[NOKV_SST_FOOTER_SIZE];
	const char *contents = NULL;
	size_t		len = 0;
	char	   *owned = NULL;
	int			rc;

	*rp = NULL;
	if (fstat(fd, &st) != 0)
	{
		rc = nokv_error_errno(err, "could not stat %s", path);
		close(fd);
		return rc;
	}

	r = nokv_calloc(1, sizeof(*r));
	r->ctx = env->ctx;
	r->cache = env->cache;
	r->counters = env->counters;
	r->fd = fd;
	r->path = nokv_memdup(path, strlen(path) + 1);
	r->file_number = file_number;
	r->file_size = (uint64_t) st.st_size;

	if (expected_size != 0 && expected_size != r->file_size)
	{
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"%s is %llu bytes, expected %llu", path,
							(unsigned long long) r->file_size,
							(unsigned long long) expected_size);
		goto fail;
	}
	if (r->file_size < NOKV_SST_FOOTER_SIZE)
	{
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"%s is too short for an sst (%llu bytes)", path,
							(unsigned long long) r->file_size);
		goto fail;
	}
	rc = nokv_pread_full(fd, footer, sizeof(footer),
						 r->file_size - NOKV_SST_FOOTER_SIZE, path, err);
	if (rc == NOKV_OK)
		rc = nokv_sst_footer_decode(footer, r->file_size, &r->footer, path, err);
	if (rc != NOKV_OK)
		goto fail;

	rc = read_block(r, &r->footer.props, BK_PROPS, &contents, &len, &owned, err);
	if (rc != NOKV_OK)
		goto fail;
	rc = nokv_sst_props_decode(contents, len, &r->props, path,
							   r->footer.props.offset, err);
	free(owned);
	if (rc != NOKV_OK)
		goto fail;
	r->props.file_size = r->file_size;
	if (r->props.range_deletions > 0 && r->footer.rangedel_size == 0)
	{
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"%s has %llu range tombstones but no range-tombstone block",
							path, (unsigned long long) r->props.range_deletions);
		goto fail;
	}
	*rp = r;
	return NOKV_OK;

fail:
	nokv_sst_close(r);
	return rc;
}

int
nokv_sst_open_path(const nokv_sst_env *env, const char *path, uint64_t file_number,
				   nokv_sst_reader **r, nokv_error *err)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);

	*r = NULL;
	if (fd < 0)
		return nokv_error_errno(err, "could not open %s", path);
	return open_fd(env, path, fd, file_number, 0, r, err);
}

int
nokv_sst_open(const nokv_sst_env *env, const char *dir, uint64_t file_number,
			  uint64_t file_size, nokv_sst_reader **r, nokv_error *err)
{
	char		path[4096];
	int			fd;

	*r = NULL;
	if ((size_t) snprintf(path, sizeof(path), NOKV_SST_FMT, dir,
						  (unsigned long long) file_number) >= sizeof(path))
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "sst directory name too long: %s", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return nokv_error_errno(err, "could not open %s", path);
	return open_fd(env, path, fd, file_number, file_size, r, err);
}

void
nokv_sst_close(nokv_sst_reader *r)
{
	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);
	nokv_sst_props_free(&r->props);
	free(r->path);
	free(r);
}

void
nokv_sst_props_free(nokv_sst_props *p)
{
	if (p == NULL)
		return;
	free(p->smallest);
	free(p->largest);
	free(p->vlog_segs);
	p->smallest = p->largest = NULL;
	p->smallest_len = p->largest_len = 0;
	p->vlog_segs = NULL;
	p->n_vlog_segs = p->cap_vlog_segs = 0;
}

const nokv_sst_props *
nokv_sst_get_props(const nokv_sst_reader *r)
{
	return &r->props;
}

/* ---------- point lookup ---------- */

#define TARGET_INLINE 256

int
nokv_sst_get(nokv_sst_reader *r, const char *lkey, size_t lkey_len,
			 uint64_t read_version, int *kind, uint64_t *version,
			 nokv_buf *value, nokv_error *err)
{
	char		target_inline[TARGET_INLINE];
	char	   *target = target_inline;
	size_t		tlen = lkey_len + NOKV_IKEY_TRAILER;
	sst_block	blk;
	nokv_block_iter it;
	nokv_block_handle h;
	sst_part	part;
	bool		found;
	const char *k,
			   *v;
	size_t		klen,
				vlen;
	int			rc;
	int			result = 0;

	if (lkey_len < 1)
		return -nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							   "empty lookup key for %s", r->path);

	if (tlen > TARGET_INLINE)
		target = nokv_malloc(tlen);
	memcpy(target, lkey, lkey_len);
	nokv_put_be64(target + lkey_len, ~read_version);
	target[lkey_len + 8] = NOKV_KIND_SEEK;

	nokv_block_iter_init(&it);

	/* top level: the first partition whose last key is >= target */
	rc = seek_part(r, target, tlen, &part, &found, err);
	if (rc != NOKV_OK || !found)
	{
		result = -rc;
		goto done;
	}

	if (part.filter.size)
	{
		bool		may;
		uint64_t	hash = nokv_bloom_hash(lkey, lkey_len);

		rc = block_get(r, &part.filter, BK_FILTER, true, &blk, err);
		if (rc != NOKV_OK)
		{
			result = -rc;
			goto done;
		}
		may = nokv_bloom_may_match(blk.data, blk.len, hash);
		block_put(r, &blk);
		if (r->counters)
		{
			bump(&r->counters->bloom_checked);
			if (!may)
				bump(&r->counters->bloom_useful);
		}
		if (!may)
			goto done;
	}

	/* index partition: the first block whose last key is >= target */
	rc = block_get(r, &part.index, BK_INDEX, true, &blk, err);
	if (rc != NOKV_OK)
	{
		result = -rc;
		goto done;
	}
	nokv_block_iter_set(&it, blk.data, blk.len);
	nokv_block_iter_seek(&it, target, tlen);
	if (!nokv_block_iter_valid(&it))
	{
		if (it.corrupt)
			result = -block_corrupt(r, BK_INDEX, part.index.offset, err);
		block_put(r, &blk);
		goto done;
	}
	v = nokv_block_iter_value(&it, &vlen);
	rc = check_data_handle(r, v, vlen, &h, part.index.offset, err);
	block_put(r, &blk);
	if (rc != NOKV_OK)
	{
		result = -rc;
		goto done;
	}

	/* data: the first entry >= target, if it is lkey's */
	rc = block_get(r, &h, BK_DATA, true, &blk, err);
	if (rc != NOKV_OK)
	{
		result = -rc;
		goto done;
	}
	nokv_block_iter_set(&it, blk.data, blk.len);
	nokv_block_iter_seek(&it, target, tlen);
	if (nokv_block_iter_valid(&it))
	{
		k = nokv_block_iter_key(&it, &klen);
		if (klen == tlen && memcmp(k, lkey, lkey_len) == 0)
		{
			int			kd = nokv_ikey_kind(k, klen);

			if (kd != NOKV_KIND_PUT && kd != NOKV_KIND_DELETE)
				result = -block_corrupt(r, BK_DATA, h.offset, err);
			else
			{
				v = nokv_block_iter_value(&it, &vlen);
				*kind = kd;
				*version = nokv_ikey_version(k, klen);
				nokv_buf_reset(value);
				nokv_buf_append(value, v, vlen);
				result = 1;
			}
		}
	}
	else if (it.corrupt)
		result = -block_corrupt(r, BK_DATA, h.offset, err);
	block_put(r, &blk);

done:
	nokv_block_iter_free(&it);
	if (target != target_inline)
		free(target);
	return result;
}

/* ---------- approximate offsets ---------- */

/*
 * Where in the file the entries at or after internal key ikey begin: the
 * offset of the data block holding the first such entry, or meta_offset
 * when there is none.  Two of these bound the bytes of a key range.
 */
int
nokv_sst_approximate_offset(nokv_sst_reader *r, const char *ikey, size_t len,
							uint64_t *offset, nokv_error *err)
{
	sst_block	blk;
	nokv_block_iter it;
	sst_part	part;
	nokv_block_handle h;
	const char *v;
	size_t		vlen;
	int			rc = NOKV_OK;

	bool		found;

	*offset = r->footer.meta_offset;
	nokv_block_iter_init(&it);
	rc = seek_part(r, ikey, len, &part, &found, err);
	if (rc != NOKV_OK || !found)
		goto done;
	if ((rc = block_get(r, &part.index, BK_INDEX, true, &blk, err)) != NOKV_OK)
		goto done;
	nokv_block_iter_set(&it, blk.data, blk.len);
	nokv_block_iter_seek(&it, ikey, len);
	if (nokv_block_iter_valid(&it))
	{
		v = nokv_block_iter_value(&it, &vlen);
		rc = check_data_handle(r, v, vlen, &h, part.index.offset, err);
		if (rc == NOKV_OK)
			*offset = h.offset;
	}
	else if (it.corrupt)
		rc = block_corrupt(r, BK_INDEX, part.index.offset, err);
	block_put(r, &blk);
done:
	nokv_block_iter_free(&it);
	return rc;
}

/* ---------- range tombstones ---------- */

static int
rangedel_corrupt(nokv_sst_reader *r, nokv_error *err)
{
	return block_corrupt(r, BK_RANGEDEL, r->footer.rangedel.offset, err);
}

int
nokv_sst_max_covering_tombstone(nokv_sst_reader *r, int cf,
								const char *ukey, size_t ukey_len,
								uint64_t read_version, uint64_t *version,
								nokv_error *err)
{
	sst_block	blk;
	const char *p,
			   *limit;
	uint32_t	n;
	uint64_t	best = 0;
	int			rc = NOKV_OK;

	*version = 0;
	if (r->footer.rangedel_size == 0)
		return NOKV_OK;
	rc = block_get(r, &r->footer.rangedel, BK_RANGEDEL, true, &blk, err);
	if (rc != NOKV_OK)
		return rc;
	limit = blk.data + blk.len;
	p = nokv_get_varint32(blk.data, limit, &n);
	if (p == NULL)
		rc = rangedel_corrupt(r, err);
	for (uint32_t i = 0; rc == NOKV_OK && i < n; i++)
	{
		nokv_range_tombstone t;

		if ((p = nokv_sst_rangedel_next(p, limit, &t)) == NULL)
		{
			rc = rangedel_corrupt(r, err);
			break;
		}
		/* sorted by (cf, start): nothing later can start at or before ukey */
		if (t.cf > cf ||
			(t.cf == cf && nokv_lkey_compare(t.start, t.start_len, ukey, ukey_len) > 0))
			break;
		if (t.cf == cf && t.version <= read_version && t.version > best &&
			nokv_lkey_compare(ukey, ukey_len, t.end, t.end_len) < 0)
			best = t.version;
	}
	block_put(r, &blk);
	if (rc == NOKV_OK)
		*version = best;
	return rc;
}

int
nokv_sst_range_tombstones(nokv_sst_reader *r, nokv_range_tombstone **out,
						  int *n, nokv_error *err)
{
	sst_block	blk;
	const char *p,
			   *limit;
	uint32_t	count;
	nokv_range_tombstone *arr = NULL;
	char	   *bytes;
	int			rc = NOKV_OK;

	*out = NULL;
	*n = 0;
	if (r->footer.rangedel_size == 0)
		return NOKV_OK;
	rc = block_get(r, &r->footer.rangedel, BK_RANGEDEL, true, &blk, err);
	if (rc != NOKV_OK)
		return rc;
	limit = blk.data + blk.len;
	p = nokv_get_varint32(blk.data, limit, &count);

	/*
	 * Every tombstone takes at least 11 bytes, so a count beyond that is
	 * damage; the key bytes all fit in the block, so one allocation of
	 * array + block size holds everything.
	 */
	if (p == NULL || count > blk.len / 11 || count > INT32_MAX)
		rc = rangedel_corrupt(r, err);
	else if (count > 0)
	{
		arr = nokv_malloc(sizeof(*arr) * count + blk.len);
		bytes = (char *) (arr + count);
		for (uint32_t i = 0; i < count; i++)
		{
			nokv_range_tombstone t;

			if ((p = nokv_sst_rangedel_next(p, limit, &t)) == NULL)
			{
				rc = rangedel_corrupt(r, err);
				break;
			}
			arr[i] = t;
			memcpy(bytes, t.start, t.start_len);
			arr[i].start = bytes;
			bytes += t.start_len;
			memcpy(bytes, t.end, t.end_len);
			arr[i].end = bytes;
			bytes += t.end_len;
		}
	}
	block_put(r, &blk);
	if (rc != NOKV_OK)
	{
		free(arr);
		return rc;
	}
	*out = arr;
	*n = (int) count;
	return NOKV_OK;
}

/* ---------- iterator ---------- */

/*
 * Three levels: the top-level index (format version 2) names index
 * partitions, an index partition names data blocks.  The top-level block,
 * the current index partition and the current data block stay pinned while
 * the iterator is on them.
 */
typedef struct sst_iter
{
	nokv_iiter	base;
	nokv_sst_reader *r;
	sst_block	top;			/* version 2: pinned once loaded */
	bool		top_loaded;
	nokv_block_iter top_it;
	sst_block	index;			/* the current index partition, pinned */
	bool		index_loaded;
	uint64_t	index_offset;
	nokv_block_iter index_it;
	sst_block	data;			/* the current data block, pinned */
	bool		data_loaded;
	uint64_t	data_offset;
	nokv_block_iter data_it;
	int			status;
	nokv_error	err;
} sst_iter;

static void
iter_fail(sst_iter *it)
{
	if (it->status == NOKV_OK)
		it->status = it->err.code != NOKV_OK ? it->err.code : NOKV_CORRUPTION;
	if (it->data_loaded)
	{
		block_put(it->r, &it->data);
		it->data_loaded = false;
	}
	nokv_block_iter_set(&it->data_it, NULL, 0);
	it->data_it.corrupt = false;
	nokv_block_iter_set(&it->index_it, NULL, 0);
	it->index_it.corrupt = false;
}

static bool
two_level(sst_iter *it)
{
	return it->r->footer.version >= 2;
}

static bool
load_top(sst_iter *it)
{
	if (it->status != NOKV_OK)
		return false;
	if (!two_level(it) || it->top_loaded)
		return true;
	if (block_get(it->r, &it->r->footer.index, BK_TOP, true, &it->top,
				  &it->err) != NOKV_OK)
	{
		iter_fail(it);
		return false;
	}
	it->top_loaded = true;
	if (!nokv_block_iter_set(&it->top_it, it->top.data, it->top.len))
	{
		block_corrupt(it->r, BK_TOP, it->r->footer.index.offset, &it->err);
		iter_fail(it);
		return false;
	}
	return true;
}

/*
 * Load the index partition the top-level iterator points at (version 1:
 * the one index block).  False, with the index iterator emptied, when the
 * top level is exhausted or on error.
 */
static bool
load_part(sst_iter *it)
{
	sst_part	part;

	if (it->status != NOKV_OK)
		return false;
	if (two_level(it))
	{
		const char *v;
		size_t		vlen;

		if (!nokv_block_iter_valid(&it->top_it))
		{
			if (it->top_it.corrupt)
			{
				block_corrupt(it->r, BK_TOP, it->r->footer.index.offset, &it->err);
				iter_fail(it);
				return false;
			}
			if (it->index_loaded)
			{
				block_put(it->r, &it->index);
				it->index_loaded = false;
			}
			nokv_block_iter_set(&it->index_it, NULL, 0);
			it->index_it.corrupt = false;
			return false;
		}
		v = nokv_block_iter_value(&it->top_it, &vlen);
		if (decode_part(it->r, v, vlen, &part, &it->err) != NOKV_OK)
		{
			iter_fail(it);
			return false;
		}
	}
	else
		single_part(it->r, &part);
	if (it->index_loaded && it->index_offset == part.index.offset)
		return true;
	if (it->index_loaded)
	{
		block_put(it->r, &it->index);
		it->index_loaded = false;
	}
	if (block_get(it->r, &part.index, BK_INDEX, true, &it->index, &it->err) != NOKV_OK)
	{
		iter_fail(it);
		return false;
	}
	it->index_loaded = true;
	it->index_offset = part.index.offset;
	if (!nokv_block_iter_set(&it->index_it, it->index.data, it->index.len))
	{
		block_corrupt(it->r, BK_INDEX, part.index.offset, &it->err);
		iter_fail(it);
		return false;
	}
	return true;
}

static bool
index_corrupt(sst_iter *it)
{
	if (!it->index_it.corrupt)
		return false;
	block_corrupt(it->r, BK_INDEX, it->index_offset, &it->err);
	iter_fail(it);
	return true;
}

/* past the end of a partition: on to the first entry of the next ones */
static void
index_skip_forward(sst_iter *it)
{
	while (it->status == NOKV_OK && !nokv_block_iter_valid(&it->index_it))
	{
		if (index_corrupt(it) || !two_level(it) || !nokv_block_iter_valid(&it->top_it))
			return;
		nokv_block_iter_next(&it->top_it);
		if (!load_part(it))
			return;
		nokv_block_iter_seek_to_first(&it->index_it);
	}
}

static void
index_skip_backward(sst_iter *it)
{
	while (it->status == NOKV_OK && !nokv_block_iter_valid(&it->index_it))
	{
		if (index_corrupt(it) || !two_level(it) || !nokv_block_iter_valid(&it->top_it))
			return;
		nokv_block_iter_prev(&it->top_it);
		if (!load_part(it))
			return;
		nokv_block_iter_seek_to_last(&it->index_it);
	}
}

/* position the index (both levels) at its first or last entry */
static void
index_seek_to_end(sst_iter *it, bool last)
{
	if (!load_top(it))
		return;
	if (two_level(it))
	{
		if (last)
			nokv_block_iter_seek_to_last(&it->top_it);
		else
			nokv_block_iter_seek_to_first(&it->top_it);
	}
	if (!load_part(it))
		return;
	if (last)
	{
		nokv_block_iter_seek_to_last(&it->index_it);
		index_skip_backward(it);
	}
	else
	{
		nokv_block_iter_seek_to_first(&it->index_it);
		index_skip_forward(it);
	}
}

/* position the index at its first entry >= ikey */
static void
index_seek(sst_iter *it, const char *ikey, size_t len)
{
	if (!load_top(it))
		return;
	if (two_level(it))
		nokv_block_iter_seek(&it->top_it, ikey, len);
	if (!load_part(it))
		return;
	nokv_block_iter_seek(&it->index_it, ikey, len);
	index_skip_forward(it);
}

/* load the data block the index iterator points at (if not loaded yet) */
static bool
load_data(sst_iter *it)
{
	nokv_block_handle h;
	const char *v;
	size_t		vlen;

	if (it->status != NOKV_OK)
		return false;
	if (!nokv_block_iter_valid(&it->index_it))
	{
		if (index_corrupt(it))
			return false;
		if (it->data_loaded)
		{
			block_put(it->r, &it->data);
			it->data_loaded = false;
		}
		nokv_block_iter_set(&it->data_it, NULL, 0);
		it->data_it.corrupt = false;
		return false;
	}
	v = nokv_block_iter_value(&it->index_it, &vlen);
	if (check_data_handle(it->r, v, vlen, &h, it->index_offset, &it->err) != NOKV_OK)
	{
		iter_fail(it);
		return false;
	}
	if (it->data_loaded && it->data_offset == h.offset)
		return true;
	if (it->data_loaded)
	{
		block_put(it->r, &it->data);
		it->data_loaded = false;
	}
	if (block_get(it->r, &h, BK_DATA, true, &it->data, &it->err) != NOKV_OK)
	{
		iter_fail(it);
		return false;
	}
	it->data_loaded = true;
	it->data_offset = h.offset;
	if (!nokv_block_iter_set(&it->data_it, it->data.data, it->data.len))
	{
		block_corrupt(it->r, BK_DATA, h.offset, &it->err);
		iter_fail(it);
		return false;
	}
	return true;
}

static bool
data_corrupt(sst_iter *it)
{
	if (!it->data_it.corrupt)
		return false;
	block_corrupt(it->r, BK_DATA, it->data_offset, &it->err);
	iter_fail(it);
	return true;
}

static void
skip_forward(sst_iter *it)
{
	while (it->status == NOKV_OK && !nokv_block_iter_valid(&it->data_it))
	{
		if (data_corrupt(it) || !nokv_block_iter_valid(&it->index_it))
			return;
		nokv_block_iter_next(&it->index_it);
		index_skip_forward(it);
		if (!load_data(it))
			return;
		nokv_block_iter_seek_to_first(&it->data_it);
	}
}

static void
skip_backward(sst_iter *it)
{
	while (it->status == NOKV_OK && !nokv_block_iter_valid(&it->data_it))
	{
		if (data_corrupt(it) || !nokv_block_iter_valid(&it->index_it))
			return;
		nokv_block_iter_prev(&it->index_it);
		index_skip_backward(it);
		if (!load_data(it))
			return;
		nokv_block_iter_seek_to_last(&it->data_it);
	}
}

static bool
sst_iter_valid(nokv_iiter *base)
{
	sst_iter   *it = (sst_iter *) base;

	return it->status == NOKV_OK && nokv_block_iter_valid(&it->data_it);
}

static void
sst_iter_seek_to_first(nokv_iiter *base)
{
	sst_iter   *it = (sst_iter *) base;

	index_seek_to_end(it, false);
	if (!load_data(it))
		return;
	nokv_block_iter_seek_to_first(&it->data_it);
	skip_forward(it);
}

static void
sst_iter_seek_to_last(nokv_iiter *base)
{
	sst_iter   *it = (sst_iter *) base;

	index_seek_to_end(it, true);
	if (!load_data(it))
		return;
	nokv_block_iter_seek_to_last(&it->data_it);
	skip_backward(it);
}

static void
sst_iter_seek(nokv_iiter *base, const char *ikey, size_t len)
{
	sst_iter   *it = (sst_iter *) base;

	if (len < NOKV_IKEY_TRAILER + 1)
	{
		nokv_error_set(&it->err, NOKV_INVALID_ARGUMENT,
					   "seek key of %zu bytes is not an internal key", len);
		iter_fail(it);
		return;
	}
	index_seek(it, ikey, len);
	if (!load_data(it))
		return;
	nokv_block_iter_seek(&it->data_it, ikey, len);
	skip_forward(it);
}

static void
sst_iter_next(nokv_iiter *base)
{
	sst_iter   *it = (sst_iter *) base;

	if (!sst_iter_valid(base))
		return;
	nokv_block_iter_next(&it->data_it);
	skip_forward(it);
}

static void
sst_iter_prev(nokv_iiter *base)
{
	sst_iter   *it = (sst_iter *) base;

	if (!sst_iter_valid(base))
		return;
	nokv_block_iter_prev(&it->data_it);
	skip_backward(it);
}

static const char *
sst_iter_key(nokv_iiter *base, size_t *len)
{
	return nokv_block_iter_key(&((sst_iter *) base)->data_it, len);
}

static const char *
sst_iter_value(nokv_iiter *base, size_t *len)
{
	return nokv_block_iter_value(&((sst_iter *) base)->data_it, len);
}

static int
sst_iter_status(nokv_iiter *base, nokv_error *err)
{
	sst_iter   *it = (sst_iter *) base;

	if (it->status != NOKV_OK && err)
		*err = it->err;
	return it->status;
}

static void
sst_iter_destroy(nokv_iiter *base)
{
	sst_iter   *it = (sst_iter *) base;

	if (it->data_loaded)
		block_put(it->r, &it->data);
	if (it->index_loaded)
		block_put(it->r, &it->index);
	if (it->top_loaded)
		block_put(it->r, &it->top);
	nokv_block_iter_free(&it->data_it);
	nokv_block_iter_free(&it->index_it);
	nokv_block_iter_free(&it->top_it);
	free(it);
}

static const nokv_iiter_ops sst_iter_ops = {
	.valid = sst_iter_valid,
	.seek_to_first = sst_iter_seek_to_first,
	.seek_to_last = sst_iter_seek_to_last,
	.seek = sst_iter_seek,
	.next = sst_iter_next,
	.prev = sst_iter_prev,
	.key = sst_iter_key,
	.value = sst_iter_value,
	.status = sst_iter_status,
	.destroy = sst_iter_destroy,
};

nokv_iiter *
nokv_sst_iter_new(nokv_sst_reader *r)
{
	sst_iter   *it = nokv_calloc(1, sizeof(*it));

	it->base.ops = &sst_iter_ops;
	it->r = r;
	nokv_block_iter_init(&it->top_it);
	nokv_block_iter_init(&it->index_it);
	nokv_block_iter_init(&it->data_it);
	nokv_error_clear(&it->err);
	return &it->base;
}

/* ---------- verification ---------- */

static int
verify_rangedel(nokv_sst_reader *r, nokv_error *err)
{
	const char *contents = NULL,
			   *p,
			   *limit;
	size_t		len = 0;
	char	   *owned = NULL;
	uint32_t	count;
	nokv_range_tombstone prev = {0};
	int			rc;

	if (r->footer.rangedel_size == 0)
		return NOKV_OK;
	rc = read_block(r, &r->footer.rangedel, BK_RANGEDEL, &contents, &len,
					&owned, err);
	if (rc != NOKV_OK)
		return rc;
	limit = contents + len;
	p = nokv_get_varint32(contents, limit, &count);
	if (p == NULL || count != r->props.range_deletions)
		rc = rangedel_corrupt(r, err);
	for (uint32_t i = 0; rc == NOKV_OK && i < count; i++)
	{
		nokv_range_tombstone t;

		if ((p = nokv_sst_rangedel_next(p, limit, &t)) == NULL ||
			nokv_lkey_compare(t.start, t.start_len, t.end, t.end_len) >= 0 ||
			(i > 0 && nokv_sst_tombstone_compare(&prev, &t) > 0))
			rc = rangedel_corrupt(r, err);
		prev = t;
	}
	if (rc == NOKV_OK && p != limit)
		rc = rangedel_corrupt(r, err);
	free(owned);
	return rc;
}

/* what nokv_sst_verify carries from one partition to the next */
typedef struct verify_state
{
	nokv_buf	prev;			/* the last entry's key */
	nokv_buf	index_key;		/* the last index key */
	nokv_buf	prev_index_key;
	uint64_t	expect_off;		/* where the next data block must start */
	uint64_t	entries;
	uint64_t	deletions;
	uint64_t	blocks;
} verify_state;

/* one index partition, its filter and every data block it names */
static int
verify_partition(nokv_sst_reader *r, const sst_part *part, verify_state *st,
				 nokv_error *err)
{
	const char *index_data;
	size_t		index_len;
	char	   *index_owned = NULL;
	const char *filter = NULL;
	size_t		filter_len = 0;
	char	   *filter_owned = NULL;
	nokv_block_iter ii,
				di;
	int			rc;

	nokv_block_iter_init(&ii);
	nokv_block_iter_init(&di);
	if (part->filter.size)
	{
		rc = read_block(r, &part->filter, BK_FILTER, &filter, &filter_len,
						&filter_owned, err);
		if (rc != NOKV_OK)
			return rc;
		if (!nokv_bloom_check(filter, filter_len))
		{
			rc = block_corrupt(r, BK_FILTER, part->filter.offset, err);
			goto done;
		}
	}
	rc = read_block(r, &part->index, BK_INDEX, &index_data, &index_len,
					&index_owned, err);
	if (rc != NOKV_OK)
		goto done;
	if (!nokv_block_check(index_data, index_len) ||
		!nokv_block_iter_set(&ii, index_data, index_len))
	{
		rc = block_corrupt(r, BK_INDEX, part->index.offset, err);
		goto done;
	}

	for (nokv_block_iter_seek_to_first(&ii); nokv_block_iter_valid(&ii);
		 nokv_block_iter_next(&ii))
	{
		nokv_block_handle h;
		const char *v,
				   *contents = NULL,
				   *k;
		size_t		vlen,
					len = 0,
					klen;
		char	   *owned = NULL;

		k = nokv_block_iter_key(&ii, &klen);
		if (st->index_key.len &&
			nokv_ikey_compare(st->index_key.data, st->index_key.len, k, klen) >= 0)
		{
			rc = block_corrupt(r, BK_INDEX, part->index.offset, err);
			goto done;
		}
		nokv_buf_reset(&st->prev_index_key);
		nokv_buf_append(&st->prev_index_key, st->index_key.data, st->index_key.len);
		nokv_buf_reset(&st->index_key);
		nokv_buf_append(&st->index_key, k, klen);

		v = nokv_block_iter_value(&ii, &vlen);
		if ((rc = check_data_handle(r, v, vlen, &h, part->index.offset, err)) != NOKV_OK)
			goto done;
		if (h.offset != st->expect_off)
		{
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"data block at offset %llu of %s does not follow the previous one (expected offset %llu)",
								(unsigned long long) h.offset, r->path,
								(unsigned long long) st->expect_off);
			goto done;
		}
		st->expect_off = h.offset + h.size + NOKV_BLOCK_TRAILER_SIZE;
		st->blocks++;

		if ((rc = read_block(r, &h, BK_DATA, &contents, &len, &owned, err)) != NOKV_OK)
			goto done;
		nokv_block_iter_set(&di, contents, len);
		nokv_block_iter_seek_to_first(&di);
		if (!nokv_block_iter_valid(&di) || !nokv_block_check(contents, len))
			rc = block_corrupt(r, BK_DATA, h.offset, err);	/* empty or bad */
		for (bool first = true; rc == NOKV_OK && nokv_block_iter_valid(&di);
			 nokv_block_iter_next(&di), first = false)
		{
			int			kind;

			k = nokv_block_iter_key(&di, &klen);
			kind = nokv_ikey_kind(k, klen);
			/* the previous index key must separate the blocks: seeks rely on it */
			if ((kind != NOKV_KIND_PUT && kind != NOKV_KIND_DELETE) ||
				(first && st->prev_index_key.len &&
				 nokv_ikey_compare(st->prev_index_key.data, st->prev_index_key.len, k, klen) >= 0) ||
				(st->prev.len && nokv_ikey_compare(st->prev.data, st->prev.len, k, klen) >= 0) ||
				(st->entries == 0 &&
				 (r->props.smallest_len == 0 ||
				  nokv_ikey_compare(r->props.smallest, r->props.smallest_len, k, klen) > 0)) ||
				(filter &&
				 !nokv_bloom_may_match(filter, filter_len,
									   nokv_bloom_hash(k, klen - NOKV_IKEY_TRAILER))))
			{
				rc = nokv_error_set(err, NOKV_CORRUPTION,
									"bad or out-of-order key at entry %llu in data block at offset %llu of %s",
									(unsigned long long) st->entries,
									(unsigned long long) h.offset, r->path);
				break;
			}
			st->entries++;
			if (kind == NOKV_KIND_DELETE)
				st->deletions++;
			nokv_buf_reset(&st->prev);
			nokv_buf_append(&st->prev, k, klen);
		}
		if (rc == NOKV_OK && di.corrupt)
			rc = block_corrupt(r, BK_DATA, h.offset, err);
		/*
		 * The index key is the block's last key.  (Any separator >= it
		 * would keep scans right, but a point lookup whose target falls
		 * between the last key and a larger separator would stop in this
		 * block and miss the next one's first entry.)
		 */
		if (rc == NOKV_OK &&
			(st->index_key.len != st->prev.len ||
			 memcmp(st->index_key.data, st->prev.data, st->prev.len) != 0))
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"index key is not the last key of data block at offset %llu of %s",
								(unsigned long long) h.offset, r->path);
		free(owned);
		if (rc != NOKV_OK)
			goto done;
	}
	if (ii.corrupt)
		rc = block_corrupt(r, BK_INDEX, part->index.offset, err);

done:
	nokv_block_iter_free(&ii);
	nokv_block_iter_free(&di);
	free(index_owned);
	free(filter_owned);
	return rc;
}

/*
 * Version 2: every partition in top-level order.  The filter partitions
 * must tile the start of the partition area and the index partitions the
 * rest, in the same order, and each top-level key must be its partition's
 * last index key.
 */
static int
verify_partitions(nokv_sst_reader *r, verify_state *st, nokv_error *err)
{
	const char *top_data;
	size_t		top_len;
	char	   *top_owned = NULL;
	nokv_block_iter ti;
	uint64_t	filter_off = r->footer.meta_offset;
	uint64_t	index_start = 0;
	uint64_t	index_off = 0;
	bool		first = true;
	int			rc;

	rc = read_block(r, &r->footer.index, BK_TOP, &top_data, &top_len, &top_owned, err);
	if (rc != NOKV_OK)
		return rc;
	nokv_block_iter_init(&ti);
	if (!nokv_block_check(top_data, top_len) ||
		!nokv_block_iter_set(&ti, top_data, top_len))
	{
		rc = block_corrupt(r, BK_TOP, r->footer.index.offset, err);
		goto done;
	}
	for (nokv_block_iter_seek_to_first(&ti); rc == NOKV_OK && nokv_block_iter_valid(&ti);
		 nokv_block_iter_next(&ti))
	{
		sst_part	part;
		size_t		klen,
					vlen;
		const char *k = nokv_block_iter_key(&ti, &klen);
		const char *v = nokv_block_iter_value(&ti, &vlen);

		if ((rc = decode_part(r, v, vlen, &part, err)) != NOKV_OK)
			break;
		if (first)
			index_start = index_off = part.index.offset;
		first = false;
		if ((part.filter.size && part.filter.offset != filter_off) ||
			part.index.offset != index_off)
		{
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"partition handles in top-level index block at offset %llu of %s do not tile the partition area",
								(unsigned long long) r->footer.index.offset, r->path);
			break;
		}
		if (part.filter.size)
			filter_off += part.filter.size + NOKV_BLOCK_TRAILER_SIZE;
		index_off += part.index.size + NOKV_BLOCK_TRAILER_SIZE;
		if ((rc = verify_partition(r, &part, st, err)) != NOKV_OK)
			break;
		if (st->index_key.len != klen || memcmp(st->index_key.data, k, klen) != 0)
			rc = block_corrupt(r, BK_TOP, r->footer.index.offset, err);
	}
	if (rc == NOKV_OK && ti.corrupt)
		rc = block_corrupt(r, BK_TOP, r->footer.index.offset, err);
	if (rc == NOKV_OK &&
		(first ? r->footer.filter_size != 0 :
		 (filter_off != index_start ||
		  index_off != r->footer.meta_offset + r->footer.filter_size)))
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"partition handles in top-level index block at offset %llu of %s do not tile the partition area",
							(unsigned long long) r->footer.index.offset, r->path);
done:
	nokv_block_iter_free(&ti);
	free(top_owned);
	return rc;
}

int
nokv_sst_verify(nokv_sst_reader *r, nokv_error *err)
{
	verify_state st = {0};
	int			rc;

	if ((rc = verify_rangedel(r, err)) != NOKV_OK)
		return rc;
	if (r->footer.version >= 2)
		rc = verify_partitions(r, &st, err);
	else
	{
		sst_part	part;

		single_part(r, &part);
		rc = verify_partition(r, &part, &st, err);
	}
	if (rc != NOKV_OK)
		goto done;
	if (st.expect_off != r->footer.meta_offset)
	{
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"data blocks end at offset %llu but meta blocks start at %llu in %s",
							(unsigned long long) st.expect_off,
							(unsigned long long) r->footer.meta_offset, r->path);
		goto done;
	}
	if (st.entries != r->props.entries || st.deletions != r->props.deletions ||
		st.blocks != r->props.data_blocks)
	{
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"properties of %s say %llu entries, %llu deletions, %llu blocks; found %llu, %llu, %llu",
							r->path, (unsigned long long) r->props.entries,
							(unsigned long long) r->props.deletions,
							(unsigned long long) r->props.data_blocks,
							(unsigned long long) st.entries,
							(unsigned long long) st.deletions,
							(unsigned long long) st.blocks);
		goto done;
	}
	/* the key range covers every entry (the first one was checked above) */
	if (st.entries > 0 &&
		nokv_ikey_compare(r->props.largest, r->props.largest_len, st.prev.data, st.prev.len) < 0)
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"largest key in properties of %s is below the last entry",
							r->path);

done:
	nokv_buf_free(&st.prev);
	nokv_buf_free(&st.index_key);
	nokv_buf_free(&st.prev_index_key);
	return rc;
}
