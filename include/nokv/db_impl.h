/*-------------------------------------------------------------------------
 *
 * db_impl.h
 *	  The engine's shared state (in the region) and per-process handle.
 *
 * Region layout, in order, each part 64-byte aligned:
 *
 *	  nokv_region_hdr		options, counters, memtable slots, manifest state
 *	  platform storage		pthread primitives (standalone only)
 *	  file table			max_files nokv_file_meta slots
 *	  snapshot table		max_snapshots versions
 *	  WAL shared state		append buffer (own-log mode only)
 *	  block cache header
 *	  memtables				max_memtables x (header + memtable_size arena)
 *	  shared heap			versions, file keys, cached blocks
 *
 * The region's size depends only on the options, never on the number of
 * processes attached.
 *
 * Readers pin a "view": every live memtable slot (refcount) plus the
 * current version (refcount), taken atomically under MEMTABLES + VERSION
 * locks, so a flush that retires a memtable and installs the SST holding
 * its data can never make data disappear from a reader's view.
 *
 * include/nokv/db_impl.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_DB_IMPL_H
#define NOKV_DB_IMPL_H

#include <stdalign.h>
#include <stdatomic.h>

#include "nokv/cache.h"
#include "nokv/ikey.h"
#include "nokv/iter.h"
#include "nokv/manifest.h"
#include "nokv/memtable.h"
#include "nokv/nokv.h"
#include "nokv/platform.h"
#include "nokv/region.h"
#include "nokv/sst.h"
#include "nokv/wal.h"

#define NOKV_REGION_MAGIC		0x4e4f4b5652474e31ull	/* "NOKVRGN1" */
#define NOKV_REGION_VERSION		3
#define NOKV_MAX_MEMTABLES		16
#define NOKV_DIR_MAX			1024

/* ---------- memtable slots ---------- */

typedef enum nokv_mt_state
{
	NOKV_MT_FREE = 0,			/* empty, reusable */
	NOKV_MT_ACTIVE,				/* receiving writes */
	NOKV_MT_IMMUTABLE,			/* full, waiting for flush */
	NOKV_MT_FLUSHING,			/* a flush is writing its SST */
	NOKV_MT_RETIRED				/* flushed; reset once no reader pins it */
} nokv_mt_state;

typedef struct nokv_mt_slot
{
	/*
	 * Every writer touches a slot, from several processes at once, so its
	 * fields are grouped by who writes them and when, one cache line each:
	 * a line written on every write does not evict the fields every reader
	 * and writer only reads.
	 */

	/* read by every writer and reader; written when the slot changes state */
	nokv_off	mt;				/* memtable header offset */
	_Atomic int state;		/* nokv_mt_state; written under MEMTABLES */
	uint64_t	seq;			/* creation order (newer = larger) */
	uint64_t	wal_segment;	/* own-log mode: its WAL segment */
	uint64_t	gen;			/* bumped each time the slot is reset (MEMTABLES) */

	/* written by every writer, under WRITE */
	alignas(64) uint64_t min_version;
	uint64_t	max_version;
	uint64_t	ext_mask;		/* which logs have a position here */
	/* external-log mode: highest position per log applied to this memtable */
	uint64_t	ext_position[NOKV_MAX_EXTERNAL_LOGS];

	/* written by every writer after it releases WRITE */
	alignas(64) _Atomic uint64_t reserved;	/* worst-case arena bytes of inserts in flight */
	_Atomic int writers;		/* inserts in flight */

	/* written by every reader */
	alignas(64) _Atomic int pins;	/* readers inside a call using it */
} nokv_mt_slot;

/* ---------- files and versions ---------- */

typedef struct nokv_file_meta
{
	uint64_t	number;			/* 0 = free slot */
	uint64_t	size;
	uint64_t	entries;
	uint64_t	deletions;
	uint64_t	range_deletions;
	uint64_t	min_version;
	uint64_t	max_version;
	nokv_off	smallest;		/* heap copy of the smallest internal key */
	uint32_t	smallest_len;
	nokv_off	largest;
	uint32_t	largest_len;
	int			level;
	_Atomic int refs;			/* versions that list this file */
	_Atomic int being_compacted;	/* under COMPACTION */
	uint32_t	next_free;		/* free-list link (slot index + 1) */
} nokv_file_meta;

/*
 * An immutable list of files per level, in the shared heap.  Level 0 is
 * ordered oldest to newest (by file number); other levels by smallest key.
 * files[level] is a heap array of file-table slot indexes.
 */
typedef struct nokv_version
{
	_Atomic int refs;
	uint64_t	id;
	int			nfiles[NOKV_MAX_LEVELS];
	nokv_off	files[NOKV_MAX_LEVELS];
} nokv_version;

/* ---------- shared statistics (atomics; read without stopping writers) ---------- */

/*
 * The counters every read or write bumps, striped: processes reading or
 * writing at once would otherwise pass one cache line back and forth on
 * every call (and with it the flags every writer reads).  A handle bumps its own
 * stripe (nokv_db.stripe); readers add the stripes up (nokv_hot_sum).
 * 128 bytes each, so stripes never share a line.
 */
#define NOKV_STAT_STRIPES 16

typedef struct nokv_hot_counters
{
	_Atomic uint64_t gets;
	_Atomic uint64_t writes;
	_Atomic uint64_t batches;
	_Atomic uint64_t user_bytes_written;
	_Atomic uint64_t cf_reads[NOKV_CF_COUNT];
	_Atomic uint64_t cf_writes[NOKV_CF_COUNT];
	nokv_sst_counters sst;		/* bloom checks of this process's table readers */
	char		pad[128 - (4 + 2 * NOKV_CF_COUNT) * sizeof(uint64_t) - sizeof(nokv_sst_counters)];
} nokv_hot_counters;

_Static_assert(sizeof(nokv_hot_counters) == 128, "a stripe is two cache lines");

typedef struct nokv_shared_stats
{
	nokv_hot_counters hot[NOKV_STAT_STRIPES];
	_Atomic uint64_t flushes;
	_Atomic uint64_t flush_bytes;
	_Atomic uint64_t compactions;
	_Atomic uint64_t compaction_bytes_read;
	_Atomic uint64_t compaction_bytes_written;
	_Atomic uint64_t compaction_entries_dropped;
	_Atomic uint64_t stall_count;
	_Atomic uint64_t slowdown_count;
	_Atomic int write_stalled;
	_Atomic int write_slowed;
	_Atomic uint64_t vlog_gc_runs;
} nokv_shared_stats;

/* a striped counter's total, e.g. nokv_hot_sum(s, offsetof(nokv_hot_counters, gets)) */
static inline uint64_t
nokv_hot_sum(nokv_shared_stats *s, size_t field)
{
	uint64_t	total = 0;

	for (int i = 0; i < NOKV_STAT_STRIPES; i++)
		total += atomic_load_explicit((_Atomic uint64_t *) ((char *) &s->hot[i] + field),
									  memory_order_relaxed);
	return total;
}

/* the options that must be identical in every process */
typedef struct nokv_shared_options
{
	uint64_t	memtable_size;
	int			max_memtables;
	bool		external_log;
	bool		host_mvcc;
	int			sync_mode;
	uint64_t	wal_buffer_size;
	nokv_sst_options sst;
	uint64_t	target_file_size;
	int			num_levels;
	uint64_t	max_bytes_for_level_base;
	int			level_size_multiplier;
	int			l0_compaction_trigger;
	int			l0_slowdown_trigger;
	int			l0_stop_trigger;
	uint64_t	block_cache_size;
	uint64_t	meta_heap_size;
	int			max_files;
	int			max_snapshots;
	uint64_t	manifest_rewrite_size;
	uint64_t	vlog_threshold;
	uint64_t	vlog_segment_size;
	double		vlog_gc_discard_ratio;
	int			max_vlog_segments;
	int			txn_conflict_slots;
	int			hot_capacity;
	int			hot_window_ms;
	int			hot_window_slots;
	int			hot_topn;
	int			hot_write_limit;
} nokv_shared_options;

typedef struct nokv_region_hdr
{
	uint64_t	magic;
	uint32_t	format_version;
	uint64_t	region_size;
	char		dir[NOKV_DIR_MAX];
	nokv_shared_options opts;

	/* layout */
	nokv_off	platform_storage;	/* 0 when the host supplies the platform */
	nokv_off	heap;
	nokv_off	cache;
	nokv_off	wal;			/* 0 in external-log mode */
	nokv_off	files;			/* nokv_file_meta[max_files] */
	nokv_off	snapshots;		/* _Atomic uint64_t[max_snapshots], 0 = free */
	nokv_off	vlog;			/* value-log shared state (vlog.c) */
	nokv_off	txn;			/* conflict table (txn.c) */
	nokv_off	hotring;		/* hot-key rings (hotring.c), 0 = off */

	/* memtables: under MEMTABLES (state) and WRITE (active, reserved) */
	nokv_mt_slot slots[NOKV_MAX_MEMTABLES];
	alignas(64) int active_slot;
	uint64_t	next_slot_seq;

	/*
	 * versions: under WRITE (next_version), publish under WRITE; each on a
	 * line of its own, as both are written on every write
	 */
	alignas(64) uint64_t next_version;	/* next version to hand out */
	alignas(64) _Atomic uint64_t last_version;	/* highest published version */

	/* VERSION lock */
	alignas(64) nokv_off current;	/* current nokv_version */
	uint64_t	next_version_id;
	_Atomic int l0_files;		/* files in level 0 of the current version */

	/* FILES lock */
	uint32_t	file_free_head; /* slot index + 1, 0 = none */
	int			live_files;

	/* MANIFEST lock */
	_Atomic uint64_t next_file_number;
	uint64_t	manifest_number;
	uint64_t	manifest_size;
	uint64_t	log_number;		/* own WAL: oldest segment still needed */
	uint64_t	ext_flushed[NOKV_MAX_EXTERNAL_LOGS];	/* durable in SSTs */

	/* COMPACTION lock */
	uint64_t	compact_pointer_seq[NOKV_MAX_LEVELS];	/* round-robin hints */
	int			compactions_running;

	/* background work */
	_Atomic int flush_running;	/* one flush at a time keeps L0 in order */
	_Atomic int vlog_gc_running;	/* one value-log GC at a time: a segment is retired once */
	_Atomic int shutting_down;
	_Atomic int bg_error;		/* a background job failed; writes refused */
	char		bg_error_msg[512];

	nokv_shared_stats stats;
} nokv_region_hdr;

/* ---------- per-process handle ---------- */

typedef struct nokv_table_cache nokv_table_cache;

struct nokv_db
{
	nokv_ctx	ctx;
	nokv_region_hdr *hdr;
	nokv_platform platform;		/* copy of the host's or the built-in one */
	char		dir[NOKV_DIR_MAX];
	nokv_compaction_filter_fn compaction_filter;
	void	   *compaction_filter_arg;
	size_t		(*sst_partition) (void *arg, int cf, const char *key, size_t klen);
	void	   *sst_partition_arg;
	int			(*before_flush) (void *arg, uint32_t log_id, uint64_t position, nokv_error *err);
	void	   *before_flush_arg;
	uint64_t	(*clock_ms) (void *arg);
	void	   *clock_arg;
	struct nokv_vlog_handle *vlog;	/* per-process value-log files */
	bool		recovering;		/* this handle is replaying the WAL at format time */
	nokv_sst_env sst_env;
	nokv_table_cache *tables;	/* open SST readers (fds), per process */
	nokv_wal   *wal;			/* NULL in external-log mode */
	nokv_manifest_writer *manifest; /* opened lazily by the writing process */

	/*
	 * The splice of this handle's last memtable insert, reused by its next
	 * write when that goes to the same memtable (slot and generation):
	 * one backend's rows arrive in key order across statements too.
	 * Threads sharing a handle take it in turn; a busy hint is skipped.
	 */
	atomic_bool write_hint_busy;
	int			write_hint_slot;
	uint64_t	write_hint_gen;
	nokv_mt_hint write_hint;

	/* this handle's stripe of the shared hot counters (by process) */
	int			stripe;

	/* standalone only */
	bool		owns_region;
	bool		inline_background;	/* make room itself when a write stalls */
	void	   *region_mem;
	size_t		region_len;
	int			lock_fd;		/* flock on LOCK */
	int			nthreads;
	struct nokv_bg_thread *threads;
};

/* ---------- views (memtables + version) ---------- */

typedef struct nokv_view
{
	int			nmem;
	int			mem_slot[NOKV_MAX_MEMTABLES];	/* newest first */
	uint64_t	mem_gen[NOKV_MAX_MEMTABLES];
	bool		pinned;			/* memtable pins currently held */
	nokv_version *version;
} nokv_view;

/* take a view: memtables pinned, version referenced */
void		nokv_view_acquire(nokv_db *db, nokv_view *v);
/* drop memtable i (newest first) from the view, unpinning it */
void		nokv_view_drop_memtable(nokv_db *db, nokv_view *v, int i);
/* drop pins (if held) and the version reference */
void		nokv_view_release(nokv_db *db, nokv_view *v);

/*
 * Long-lived readers (iterators) hold memtable pins only while inside a
 * call: unpin between calls, re-pin at the next one.  Re-pinning fails
 * (returns false, nothing pinned) when a slot was recycled meanwhile; the
 * reader must then take a fresh view.
 */
void		nokv_view_unpin(nokv_db *db, nokv_view *v);
bool		nokv_view_repin(nokv_db *db, nokv_view *v);

/* ---------- versions and files (version.c) ---------- */

static inline nokv_file_meta *
nokv_file_slot(nokv_db *db, uint32_t idx)
{
	return &((nokv_file_meta *) nokv_ptr(&db->ctx, db->hdr->files))[idx];
}

static inline nokv_file_meta *
nokv_version_file(nokv_db *db, const nokv_version *v, int level, int i)
{
	uint32_t   *idx = nokv_ptr(&db->ctx, v->files[level]);

	return nokv_file_slot(db, idx[i]);
}

static inline const char *
nokv_file_smallest(nokv_db *db, const nokv_file_meta *f)
{
	return nokv_ptr(&db->ctx, f->smallest);
}

static inline const char *
nokv_file_largest(nokv_db *db, const nokv_file_meta *f)
{
	return nokv_ptr(&db->ctx, f->largest);
}

/* current version with a reference held; release with nokv_version_unref */
nokv_version *nokv_version_current(nokv_db *db);
void		nokv_version_ref(nokv_db *db, nokv_version *v);
void		nokv_version_unref(nokv_db *db, nokv_version *v);

/*
 * Make an edit durable in the manifest and install the resulting version as
 * current.  Fills in next_file_number / last_version / log_number / ext
 * positions from the region when the edit does not set them.  Caller must
 * not hold VERSION; takes MANIFEST then VERSION.  Rewrites the manifest when
 * it has grown past manifest_rewrite_size.
 */
int			nokv_log_and_apply(nokv_db *db, nokv_version_edit *edit, nokv_error *err);

/* allocate a new file number (never reused) */
uint64_t	nokv_new_file_number(nokv_db *db);

/* per-level size targets for the current options (dynamic level sizing) */
void		nokv_level_targets(nokv_db *db, const nokv_version *v, uint64_t *targets);

/* the version no snapshot needs anything older than (compaction safe point) */
uint64_t	nokv_safe_point(nokv_db *db);

/* open (per-process cached) SST reader; never close it yourself */
int			nokv_table_get(nokv_db *db, const nokv_file_meta *f,
						   nokv_sst_reader **r, nokv_error *err);

/* ---------- compaction (compaction.c) ---------- */

/* scores; a level needs compaction when its score >= 1 */
double		nokv_level_score(nokv_db *db, const nokv_version *v, int level,
							 const uint64_t *targets);
int			nokv_compaction_run_one(nokv_db *db, nokv_error *err);
int			nokv_compaction_run_range(nokv_db *db, int cf,
									  const void *start, size_t slen,
									  const void *end, size_t elen, nokv_error *err);
bool		nokv_compaction_needed(nokv_db *db);

/*
 * Fetch the value a value-log pointer record (vv, NOKV_VF_VPTR) names into
 * out, checking that the segment record belongs to (cf, ukey, version).
 */
int			nokv_resolve_value(nokv_db *db, int cf, const char *ukey, size_t ukey_len,
							   uint64_t version, nokv_value_view *vv, nokv_buf *out,
							   nokv_error *err);

/* relocate the live values of one value-log segment and retire it (compaction.c) */
int			nokv_compaction_gc_segment(nokv_db *db, uint64_t segment, nokv_error *err);
/* unlink retired segments no live version can still read */
void		nokv_vlog_sweep(nokv_db *db);

/* milliseconds since the epoch, from the options' clock if one is set */
uint64_t	nokv_now_ms(nokv_db *db);

/*
 * The write path with a hook: fn runs under NOKV_LOCK_WRITE after the
 * batch's first version is chosen and before anything is logged or
 * applied, so it is serialised with every other write.  A non-OK return
 * refuses the write (nothing happens).  *first_version (optional) receives
 * the version of the batch's first entry.
 */
typedef int (*nokv_precommit_fn) (void *arg, nokv_db *db, const nokv_batch *b,
								  uint64_t first_version, nokv_error *err);
int			nokv_write_ex(nokv_db *db, const nokv_write_options *wo, const nokv_batch *b,
						  nokv_precommit_fn fn, void *arg, uint64_t *first_version,
						  nokv_error *err);

/* shared-state sizing/formatting of the issue-3 modules */
size_t		nokv_vlog_shared_size(const nokv_shared_options *o);
void		nokv_vlog_shared_format(nokv_ctx *ctx, nokv_off off, const nokv_shared_options *o);
size_t		nokv_txn_shared_size(const nokv_shared_options *o);
void		nokv_txn_shared_format(nokv_ctx *ctx, nokv_off off, const nokv_shared_options *o);
size_t		nokv_hotring_shared_size(const nokv_shared_options *o);
void		nokv_hotring_shared_format(nokv_ctx *ctx, nokv_off off, const nokv_shared_options *o);

/* background-error latch: refuse writes after a failed flush/compaction */
void		nokv_set_bg_error(nokv_db *db, const nokv_error *err);

/*
 * Conflict detection sees every write: plain writes (no transaction) record
 * their keys too, under the write lock (txn.c).
 */
void		nokv_txn_record_batch(nokv_db *db, const nokv_batch *b, uint64_t first_version);
void		nokv_txn_emit_stat_rows(nokv_db *db, nokv_stat_fn fn, void *arg);

/* each module adds its rows to nokv_stats_foreach */
void		nokv_vlog_emit_stats(nokv_db *db, nokv_stat_fn fn, void *arg);
void		nokv_txn_emit_stats(nokv_db *db, nokv_stat_fn fn, void *arg);
void		nokv_hotring_emit_stats(nokv_db *db, nokv_stat_fn fn, void *arg);

/* ---------- internal to the core (version.c, db.c) ---------- */

void		nokv_file_table_format(nokv_db *db);
int			nokv_version_install_state(nokv_db *db, const nokv_manifest_state *st,
									   nokv_error *err);
int			nokv_manifest_start(nokv_db *db, const nokv_manifest_state *recovered,
								nokv_error *err);
nokv_table_cache *nokv_table_cache_new(void);
void		nokv_table_cache_free(nokv_table_cache *tc);

/* iterators over the view (db_iter.c) */
nokv_iiter *nokv_level_iter_new(nokv_db *db, nokv_version *v, int level);

#endif							/* NOKV_DB_IMPL_H */
