/*-------------------------------------------------------------------------
 *
 * sst.h
 *	  Sorted string tables: builder, reader, iterator.
 *
 * File layout (all integers little-endian; see docs/sst.md):
 *
 *	  data block*  filter block  range-tombstone block  properties block
 *	  index block  footer
 *
 * Data blocks hold prefix-compressed internal keys with restart points and
 * are LZ4-compressed when that saves space; every block carries a type
 * byte and a masked CRC32C.  The footer holds the handles of the meta
 * blocks, a format version and a magic number.  A builder writes
 * NNNNNN.sst.tmp, fsyncs it, renames it to NNNNNN.sst and fsyncs the
 * directory.
 *
 * Readers are per-process (they own a file descriptor); every block they
 * read goes through the shared block cache.
 *
 * include/nokv/sst.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_SST_H
#define NOKV_SST_H

#include "nokv/cache.h"
#include "nokv/ikey.h"
#include "nokv/iter.h"
#include "nokv/region.h"

typedef struct nokv_sst_options
{
	size_t		block_size;		/* target uncompressed data-block size */
	int			restart_interval;
	int			bloom_bits_per_key; /* 0 = no filter */
	bool		compression;	/* LZ4 */
} nokv_sst_options;

/* what a finished table contains; keys are malloc'ed copies */
typedef struct nokv_sst_props
{
	uint64_t	file_size;
	uint64_t	entries;		/* point entries, deletes included */
	uint64_t	deletions;
	uint64_t	range_deletions;
	uint64_t	raw_key_bytes;
	uint64_t	raw_value_bytes;
	uint64_t	data_blocks;
	uint64_t	min_version;
	uint64_t	max_version;
	/* per column family (files written before these existed report 0) */
	uint64_t	cf_entries[NOKV_CF_COUNT];
	uint64_t	cf_key_bytes[NOKV_CF_COUNT];
	uint64_t	cf_value_bytes[NOKV_CF_COUNT];
	/* value-log segments referenced: [vlog_min, vlog_max], 0/0 = none */
	uint64_t	vlog_min;
	uint64_t	vlog_max;
	/* exactly which segments, ascending (malloc'ed; GC needs the exact set) */
	uint64_t   *vlog_segs;
	int			n_vlog_segs;
	int			cap_vlog_segs;
	/*
	 * Smallest and largest internal keys, widened to cover range tombstones:
	 * a tombstone [s, e) at version v contributes (s, v, RANGE_DELETE) and
	 * (e, NOKV_VERSION_MAX, SEEK) - the latter sorts before every real
	 * entry of e, so a table never overlaps a neighbour starting at e.
	 */
	char	   *smallest;
	size_t		smallest_len;
	char	   *largest;
	size_t		largest_len;
} nokv_sst_props;

void		nokv_sst_props_free(nokv_sst_props *p);

typedef struct nokv_sst_builder nokv_sst_builder;

nokv_sst_builder *nokv_sst_builder_new(const char *dir, uint64_t file_number,
									   const nokv_sst_options *opts, nokv_error *err);
/* keys strictly increasing in nokv_ikey_compare order */
int			nokv_sst_builder_add(nokv_sst_builder *b, const char *ikey, size_t klen,
								 const char *value, size_t vlen, nokv_error *err);
/* any order; stored in the range-tombstone block */
int			nokv_sst_builder_add_range_tombstone(nokv_sst_builder *b,
												 const nokv_range_tombstone *t,
												 nokv_error *err);
uint64_t	nokv_sst_builder_estimated_size(const nokv_sst_builder *b);
uint64_t	nokv_sst_builder_entries(const nokv_sst_builder *b);	/* incl. tombstones */
/* write meta blocks and footer, fsync, rename, fsync dir; frees b */
int			nokv_sst_builder_finish(nokv_sst_builder *b, nokv_sst_props *props,
									nokv_error *err);
/* remove the temp file; frees b */
void		nokv_sst_builder_abandon(nokv_sst_builder *b);

/* counters a reader bumps (shared, atomics) */
typedef struct nokv_sst_counters
{
	_Atomic uint64_t bloom_checked;
	_Atomic uint64_t bloom_useful;
	_Atomic uint64_t blocks_read;	/* read from the file (cache misses) */
} nokv_sst_counters;

/* what a reader needs from its surroundings */
typedef struct nokv_sst_env
{
	nokv_ctx   *ctx;
	nokv_off	cache;			/* 0 = no block cache */
	nokv_sst_counters *counters;	/* may be NULL */
} nokv_sst_env;

typedef struct nokv_sst_reader nokv_sst_reader;

/* opens NNNNNN.sst and validates footer and meta blocks */
int			nokv_sst_open(const nokv_sst_env *env, const char *dir, uint64_t file_number,
						  uint64_t file_size, nokv_sst_reader **r, nokv_error *err);
/* open an arbitrary path (tools, fuzzing) */
int			nokv_sst_open_path(const nokv_sst_env *env, const char *path,
							   uint64_t file_number, nokv_sst_reader **r, nokv_error *err);
void		nokv_sst_close(nokv_sst_reader *r);

/*
 * Newest point entry of lkey (cf + user key) with version <= read_version.
 * Returns 1 and fills kind/version/value (the stored value record, copied
 * into *value), 0 if none (bloom says absent or not present), or a
 * negative nokv_code on error.
 */
int			nokv_sst_get(nokv_sst_reader *r, const char *lkey, size_t lkey_len,
						 uint64_t read_version, int *kind, uint64_t *version,
						 nokv_buf *value, nokv_error *err);

/* highest covering range-tombstone version <= read_version (0 if none) */
int			nokv_sst_max_covering_tombstone(nokv_sst_reader *r, int cf,
											const char *ukey, size_t ukey_len,
											uint64_t read_version, uint64_t *version,
											nokv_error *err);

/* all range tombstones: one malloc'ed block (array + key bytes); free(*out) */
int			nokv_sst_range_tombstones(nokv_sst_reader *r, nokv_range_tombstone **out,
									  int *n, nokv_error *err);

/*
 * The file offset where entries at or after internal key ikey begin (the
 * data block holding the first one; the end of the data when none).
 */
int			nokv_sst_approximate_offset(nokv_sst_reader *r, const char *ikey, size_t len,
										uint64_t *offset, nokv_error *err);

/* iterator over point entries; the reader must outlive it */
nokv_iiter *nokv_sst_iter_new(nokv_sst_reader *r);

/* properties as stored in the file (keys owned by the reader) */
const nokv_sst_props *nokv_sst_get_props(const nokv_sst_reader *r);

/* full verification: every block's checksum and key order (CLI, tests) */
int			nokv_sst_verify(nokv_sst_reader *r, nokv_error *err);

#endif							/* NOKV_SST_H */
