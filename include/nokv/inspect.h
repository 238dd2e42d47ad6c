/*-------------------------------------------------------------------------
 *
 * inspect.h
 *	  Read-only inspection of an engine: SSTs, levels, value-log segments,
 *	  the manifest and memtables, live or offline.
 *
 * One set of row types, filled either from a live engine handle (a
 * snapshot taken under the engine's own short shared locks) or offline
 * from a data directory that is only ever read: the manifest is replayed
 * with nokv_manifest_recover(), every listed SST is opened read-only for
 * its properties and every listed value-log segment is stat'ed and its
 * header checked.  Nothing is ever created, written, renamed, truncated or
 * deleted and no lock file is touched.
 *
 * Both paths produce identical figures for the same on-disk state, i.e.
 * when no write, flush, compaction or value-log GC is in flight.  The
 * exceptions, by design:
 *
 *	- memtables exist only live (offline: no rows);
 *	- next_file_number and last_version are the engine's live counters
 *	  when live and the values the manifest last recorded when offline; they
 *	  agree once the last change was recorded by a manifest edit (after a
 *	  flush or compaction, not after plain writes that are still only in a
 *	  memtable and the WAL);
 *	- level targets and scores depend on the level options: live ones use
 *	  the engine's, offline ones those given to nokv_inspect_dir_opts()
 *	  (nokv_inspect_dir(): the defaults of nokv_options_init()).
 *
 * Every row array and every key is owned by the inspector and stays valid
 * until nokv_inspect_free().  The PostgreSQL views map one to one onto the
 * row types: nokv_sstables (nokv_sst_info), nokv_levels (nokv_level_info),
 * nokv_vlog_segments (nokv_vlog_seg_info), nokv_manifest (one
 * nokv_manifest_info), nokv_memtables (nokv_memtable_info, live only).
 *
 * include/nokv/inspect.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_INSPECT_H
#define NOKV_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/nokv.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nokv_inspector nokv_inspector;

/* one SST of the current version, in version order (level, then L0 by number, others by key) */
typedef struct nokv_sst_info
{
	int			level;
	uint64_t	number;
	uint64_t	size;			/* bytes (as recorded in the manifest; checked against the file) */
	uint64_t	entries;		/* point entries, deletes included */
	uint64_t	deletions;
	uint64_t	range_deletions;
	uint64_t	min_version;
	uint64_t	max_version;
	uint64_t	raw_key_bytes;	/* from the SST properties (before compression) */
	uint64_t	raw_value_bytes;
	/* boundaries: user key bytes, decoded from the internal keys */
	int			smallest_cf;
	const char *smallest_key;
	size_t		smallest_len;
	uint64_t	smallest_version;
	int			largest_cf;
	const char *largest_key;
	size_t		largest_len;
	uint64_t	largest_version;
} nokv_sst_info;

/* one row per level 0 .. num_levels-1 */
typedef struct nokv_level_info
{
	int			level;
	int			files;
	uint64_t	bytes;
	uint64_t	entries;
	uint64_t	target_bytes;	/* dynamic level target; 0 for L0 and levels above the base */
	double		score;			/* compaction score; >= 1 needs compaction */
} nokv_level_info;

/* one live value-log segment (recorded in the manifest), by number */
typedef struct nokv_vlog_seg_info
{
	uint64_t	number;
	uint64_t	size;			/* durable bytes the manifest records, header included */
	uint64_t	file_size;		/* stat(2) size of the file (0 if it vanished, live only) */
	uint64_t	discard;		/* bytes no live pointer references */
	double		discard_ratio;	/* discard / (size - header), in [0, 1] */
	bool		is_head;		/* the manifest's value-log head (where appends resume) */
} nokv_vlog_seg_info;

typedef struct nokv_manifest_info
{
	uint64_t	manifest_number;	/* MANIFEST-NNNNNN that CURRENT names */
	uint64_t	manifest_size;	/* valid bytes in it */
	uint64_t	next_file_number;
	uint64_t	last_version;
	uint64_t	log_number;		/* own WAL: oldest segment still needed */
	int			n_ext;			/* external logs with a flushed position */
	struct
	{
		uint32_t	log_id;
		uint64_t	position;
	}			ext[NOKV_MAX_EXTERNAL_LOGS];	/* by log_id */
	uint64_t	vlog_head_segment;	/* 0 = the value log was never written */
	uint64_t	vlog_head_offset;
	int			live_files;		/* SSTs in the current version */
	uint64_t	live_bytes;
	int			vlog_segments;	/* live value-log segments */
	int			num_levels;
	bool		torn_tail;		/* offline: replay stopped at a torn tail */
	bool		live;			/* taken from a running engine */
} nokv_manifest_info;

/* one non-free memtable slot (live only) */
typedef struct nokv_memtable_info
{
	int			slot;
	const char *state;			/* "active", "immutable", "flushing", "retired" */
	uint64_t	seq;			/* creation order (newer = larger) */
	uint64_t	bytes_used;		/* arena bytes in use */
	uint64_t	capacity;		/* arena size */
	uint64_t	entries;
	uint64_t	range_tombstones;
	uint64_t	min_version;	/* 0 when empty */
	uint64_t	max_version;
	uint64_t	wal_segment;	/* own-log mode: its WAL segment (0 otherwise) */
	uint64_t	log_position;	/* external-log mode: highest position applied, any log */
	int			pins;			/* readers inside a call using it */
} nokv_memtable_info;

/* per column family totals over the current version's SSTs */
typedef struct nokv_cf_info
{
	int			cf;
	const char *name;
	uint64_t	entries;
	uint64_t	key_bytes;		/* raw, before compression */
	uint64_t	value_bytes;
} nokv_cf_info;

/*
 * Snapshot of a live engine.  Takes MANIFEST (shared), inside it VERSION and
 * VLOG (shared) just long enough to copy the manifest figures, reference the
 * current version and copy the value-log table; then MEMTABLES (shared) to
 * copy the memtable slots.  SST properties are read through the per-process
 * table cache with only a version reference held.
 */
int			nokv_inspect_live(nokv_db *db, nokv_inspector **out, nokv_error *err);

/*
 * Offline and strictly read-only.  NOKV_NOT_FOUND when dir has no CURRENT,
 * NOKV_IO_ERROR when dir is missing or unreadable, NOKV_CORRUPTION for a
 * bad CURRENT or manifest, a listed SST or segment that is missing, has the
 * wrong size or a bad header/properties block (the message names the file
 * and, where there is one, the offset).
 */
int			nokv_inspect_dir(const char *dir, nokv_inspector **out, nokv_error *err);
/* the same, with the level options of opts (NULL: nokv_options_init defaults) */
int			nokv_inspect_dir_opts(const char *dir, const nokv_options *opts,
								  nokv_inspector **out, nokv_error *err);

void		nokv_inspect_free(nokv_inspector *in);

/* each returns the row count and points *rows at inspector-owned rows */
int			nokv_inspect_sstables(nokv_inspector *in, const nokv_sst_info **rows);
int			nokv_inspect_levels(nokv_inspector *in, const nokv_level_info **rows);
int			nokv_inspect_vlog_segments(nokv_inspector *in, const nokv_vlog_seg_info **rows);
int			nokv_inspect_memtables(nokv_inspector *in, const nokv_memtable_info **rows);
int			nokv_inspect_column_families(nokv_inspector *in, const nokv_cf_info **rows);
void		nokv_inspect_manifest(nokv_inspector *in, nokv_manifest_info *out);

/*
 * The statistics rows derivable from the snapshot, with the names, units
 * and descriptions nokv_stats_foreach() uses (docs/stats.md), plus a few
 * inspection-only rows (lsm.tables, lsm.levels.L<n>.target_bytes,
 * manifest.next_file_number, manifest.torn_tail).  This is what the
 * offline `nokv stats` prints.
 */
void		nokv_inspect_stats_foreach(nokv_inspector *in, nokv_stat_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif							/* NOKV_INSPECT_H */
