/*-------------------------------------------------------------------------
 *
 * nokv.h
 *	  Public API of the nokv storage engine (PostgreSQL-free core library).
 *
 * The engine keeps every piece of state that several processes must share
 * (memtables, the current version and its file list, counters, the block
 * cache, locks) inside one caller-provided memory region addressed by
 * offsets.  Everything per process (file descriptors, iterators, scratch
 * buffers) lives in a nokv_db handle.  Two ways to run it:
 *
 *	standalone	nokv_open(): the region is ordinary memory (or a shared
 *				mapping the caller passes in), locks are process-shared
 *				pthread objects and background work runs on threads.
 *	embedded	the host (the PostgreSQL extension) sizes the region with
 *				nokv_region_size(), formats it once with nokv_region_format()
 *				and attaches every process with nokv_attach(); locks and
 *				waits go through the host's nokv_platform, and the host
 *				calls nokv_flush_one() / nokv_compact_step() from its own
 *				workers.
 *
 * Durability modes: the engine's own WAL (standalone), or an external log
 * owned by the caller (PostgreSQL's WAL, later a Raft log).  In external
 * mode the caller stamps every batch with its log position and a version,
 * the engine writes no WAL, and applying the same batch twice is harmless.
 *
 * include/nokv/nokv.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_NOKV_H
#define NOKV_NOKV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NOKV_VERSION_STRING "0.1.0"

/* ---------- status ---------- */

typedef enum nokv_code
{
	NOKV_OK = 0,
	NOKV_NOT_FOUND,
	NOKV_CORRUPTION,			/* a checksum or format check failed */
	NOKV_IO_ERROR,				/* a system call failed */
	NOKV_INVALID_ARGUMENT,
	NOKV_NO_SPACE,				/* a fixed shared-memory budget is exhausted */
	NOKV_BUSY,					/* e.g. the directory is locked by another engine */
	NOKV_NOT_SUPPORTED,
	NOKV_CONFLICT,				/* optimistic transaction conflict (issue 3) */
	NOKV_SHUTDOWN,				/* the engine is closing */
	NOKV_EPOCH_CHANGED			/* the memtable a write expected was replaced
								 * (nokv_write_options.memtable_epoch) */
} nokv_code;

/*
 * Errors carry a code and a human-readable message that names the file and
 * offset involved where there is one.
 */
typedef struct nokv_error
{
	nokv_code	code;
	char		msg[512];
} nokv_error;

const char *nokv_code_name(nokv_code code);

/* ---------- column families ---------- */

typedef enum nokv_cf
{
	NOKV_CF_DEFAULT = 0,
	NOKV_CF_LOCK = 1,
	NOKV_CF_WRITE = 2,
	NOKV_CF_COUNT = 3
} nokv_cf;

/* returns -1 for an unknown name */
int			nokv_cf_from_name(const char *name);
const char *nokv_cf_name(int cf);

#define NOKV_MAX_KEY_SIZE	(64 * 1024 - 64)
#define NOKV_MAX_VALUE_SIZE (256u * 1024 * 1024)

/* ---------- platform interface (locks, waits, logging) ---------- */

/*
 * Lock and condition-variable ids are small integers defined by the engine
 * (see nokv_lock_id in include/nokv/platform.h); the host maps them onto its
 * own primitives (PostgreSQL: LWLocks of a named tranche and
 * ConditionVariables in shared memory).
 *
 * cond_wait is called with lock_id held exclusively; it releases the lock,
 * sleeps until a broadcast on cond_id or timeout_ms (<0: no timeout) and
 * re-acquires the lock before returning.  It may wake spuriously; callers
 * re-check their condition in a loop.  No wakeup may be lost between the
 * release and the sleep.
 */
typedef struct nokv_platform
{
	void	   *arg;
	void		(*lock_acquire) (void *arg, int lock_id, bool exclusive);
	void		(*lock_release) (void *arg, int lock_id);
	void		(*cond_wait) (void *arg, int cond_id, int lock_id, int timeout_ms);
	void		(*cond_broadcast) (void *arg, int cond_id);
	/* level: 0 debug, 1 info, 2 warning, 3 error */
	void		(*log) (void *arg, int level, const char *msg);
	/* optional: report entering (wait_event != 0) / leaving (0) a wait state */
	void		(*report_wait) (void *arg, int wait_event);
} nokv_platform;

/* wait events reported through report_wait */
#define NOKV_WAIT_WRITE_STALL		1	/* too many immutable memtables or L0 files */
#define NOKV_WAIT_WRITE_SLOWDOWN	2	/* deliberate delay before the stall point */
#define NOKV_WAIT_WAL_SYNC			3	/* waiting for the group-commit leader */
#define NOKV_WAIT_PUBLISH			4	/* waiting for earlier batches to publish */

/* ---------- options ---------- */

typedef enum nokv_sync_mode
{
	NOKV_SYNC_OFF = 0,			/* write(2) only; an OS crash may lose the tail */
	NOKV_SYNC_BATCH = 1			/* every batch is fdatasync'ed before it is acked */
} nokv_sync_mode;

/* compaction filter decision */
typedef enum nokv_filter_decision
{
	NOKV_FILTER_KEEP = 0,
	NOKV_FILTER_DROP = 1,		/* remove this version */
	NOKV_FILTER_CHANGE = 2,		/* replace the value with *new_value */
	/*
	 * host_mvcc only (elsewhere they mean KEEP, CHANGE and DROP): this
	 * version is the oldest any reader can still need, so every older
	 * version of the key goes; DELETE_KEY: it is a delete every reader
	 * sees, so it goes too (leaving a tombstone unless bottommost).
	 */
	NOKV_FILTER_KEEP_AS_BASE = 3,
	NOKV_FILTER_CHANGE_AS_BASE = 4,
	NOKV_FILTER_DELETE_KEY = 5
} nokv_filter_decision;

typedef struct nokv_filter_entry
{
	int			cf;
	const char *key;
	size_t		key_len;
	uint64_t	version;
	int			kind;			/* NOKV_KIND_* from ikey.h (put/delete) */
	const char *value;
	size_t		value_len;
	int			level;			/* output level of the compaction */
	bool		bottommost;
	uint64_t	expires_at_ms;	/* 0 = no TTL */
	bool		expired;		/* the TTL has passed (by the engine's clock) */
} nokv_filter_entry;

/*
 * Called by compaction for every put that survives version GC and that no
 * snapshot could still read an older state of (version at or below the
 * safe point).  With host_mvcc it is called for every put at or below the
 * safe point, newest version of each key first, and it alone decides what
 * is garbage.  key/value are the user's key and value, never internal
 * encodings.  When it returns NOKV_FILTER_CHANGE it sets *new_value /
 * *new_len to the replacement user value, in memory that stays valid until
 * the next call.
 */
typedef nokv_filter_decision (*nokv_compaction_filter_fn) (void *arg,
														   const nokv_filter_entry *e,
														   const char **new_value,
														   size_t *new_len);

typedef struct nokv_options
{
	/* memtables */
	size_t		memtable_size;		/* bytes per memtable arena (default 64 MiB) */
	int			max_memtables;		/* active + immutables (default 4) */

	/* WAL (own-log mode only) */
	bool		external_log;		/* caller owns the log; the engine writes no WAL */
	nokv_sync_mode sync_mode;		/* default NOKV_SYNC_OFF */
	size_t		wal_buffer_size;	/* shared WAL buffer (default 1 MiB) */

	/* SST */
	size_t		block_size;			/* target data-block size (default 4 KiB) */
	int			block_restart_interval; /* default 16 */
	int			bloom_bits_per_key; /* default 10; 0 disables */
	bool		compression;		/* LZ4 data blocks (default true) */
	size_t		target_file_size;	/* L1 file size (default 64 MiB) */

	/* levels and compaction */
	int			num_levels;			/* default 7 */
	size_t		max_bytes_for_level_base; /* default 256 MiB */
	int			level_size_multiplier;	/* default 10 */
	int			l0_compaction_trigger;	/* default 4 files */
	int			l0_slowdown_trigger;	/* default 20 files */
	int			l0_stop_trigger;	/* default 36 files */

	/* shared memory budgets */
	size_t		block_cache_size;	/* default 64 MiB */
	size_t		meta_heap_size;		/* versions, file metadata (default 16 MiB) */
	int			max_files;			/* live SST files (default 65536) */
	int			max_snapshots;		/* concurrently held snapshots (default 1024) */

	/* background work (standalone only) */
	bool		background_threads; /* default true: flush + compaction threads */
	int			compaction_threads; /* default 1 */

	/* manifest */
	size_t		manifest_rewrite_size;	/* rewrite when the log exceeds (default 64 MiB) */

	/* value log (values >= vlog_threshold are stored out of the LSM) */
	size_t		vlog_threshold;		/* default 1 KiB; 0 disables separation */
	size_t		vlog_segment_size;	/* default 256 MiB */
	double		vlog_gc_discard_ratio;	/* GC a segment above this garbage share (0.5) */
	int			max_vlog_segments;	/* live segments tracked in the region (4096) */

	/* transactions: recent commits kept for conflict detection */
	int			txn_conflict_slots; /* default 65536 */

	/* hot-key tracking */
	int			hot_capacity;		/* tracked keys per ring (default 4096); 0 = off */
	int			hot_window_ms;		/* sliding window (default 60000) */
	int			hot_window_slots;	/* sub-windows (default 6) */
	int			hot_topn;			/* default 16 */
	int			hot_write_limit;	/* writes per key per window; 0 = off (default) */

	/*
	 * The host keeps its own MVCC metadata in values (PostgreSQL: the
	 * writing xid) and decides through the compaction filter which versions
	 * are garbage: the engine then never drops a shadowed or expired put by
	 * itself (engine tombstones and range deletes still apply).
	 */
	bool		host_mvcc;

	/* time source in milliseconds since the epoch; NULL = CLOCK_REALTIME */
	uint64_t	(*clock_ms) (void *arg);
	void	   *clock_arg;

	/* per-process hooks (not stored in the region) */
	nokv_compaction_filter_fn compaction_filter;
	void	   *compaction_filter_arg;

	/*
	 * Optional: how many leading bytes of a key name the partition it
	 * belongs to (0: none).  A compaction never writes keys of two
	 * partitions (or two column families) into one output file, as
	 * RocksDB's SstPartitioner does.  Where each partition is a run of keys
	 * written in ascending order (a table's rows), a file never spans the
	 * gap where the next partition starts, so new keys appended to a
	 * partition overlap no file below and move down levels without being
	 * rewritten with the neighbour's data.  Every process must give the
	 * same function.
	 */
	size_t		(*sst_partition) (void *arg, int cf, const char *key, size_t klen);
	void	   *sst_partition_arg;

	/*
	 * External-log mode, optional: called before a memtable is written to
	 * an SST, once per log it holds entries of, with the highest position
	 * it holds; the host makes its log durable up to there (an SST must not
	 * outlive the log entries of its data).  Non-OK abandons the flush.
	 */
	int			(*before_flush) (void *arg, uint32_t log_id, uint64_t position,
								 nokv_error *err);
	void	   *before_flush_arg;
	const nokv_platform *platform;	/* NULL: built-in pthread platform */
} nokv_options;

void		nokv_options_init(nokv_options *opts);

/* ---------- opening ---------- */

typedef struct nokv_db nokv_db;

/*
 * Standalone: allocate the region (anonymous shared mapping), format it,
 * recover from dir and start background threads if asked.
 */
int			nokv_open(const nokv_options *opts, const char *dir,
					  nokv_db **dbp, nokv_error *err);

/*
 * Embedded / multi-process: size a region, format it (recovering from dir)
 * in one process, then attach each process.  region must stay mapped at
 * possibly different addresses in each process; nothing in it is a pointer.
 */
size_t		nokv_region_size(const nokv_options *opts);
int			nokv_region_format(void *region, size_t size, const nokv_options *opts,
							   const char *dir, nokv_error *err);
int			nokv_attach(void *region, const nokv_options *opts,
						nokv_db **dbp, nokv_error *err);

/*
 * Detach this process.  The last handle of a standalone engine (the one
 * nokv_open returned) also stops background threads, flushes the WAL buffer
 * and releases the region.  Memtables are not flushed: the WAL covers them.
 */
void		nokv_close(nokv_db *db);

/* ---------- writes ---------- */

typedef struct nokv_batch nokv_batch;

nokv_batch *nokv_batch_new(void);
void		nokv_batch_free(nokv_batch *b);
void		nokv_batch_clear(nokv_batch *b);
/* a put whose value is v1 followed by v2 (a header and a body, unjoined) */
int			nokv_batch_put2(nokv_batch *b, int cf, const void *key, size_t klen,
							const void *v1, size_t l1, const void *v2, size_t l2);
int			nokv_batch_put(nokv_batch *b, int cf, const void *key, size_t klen,
						   const void *val, size_t vlen);
/*
 * A put that expires at expires_at_ms (milliseconds since the epoch; 0 = no
 * expiry).  From that moment every reader treats the key as deleted, and
 * compaction removes it.
 */
int			nokv_batch_put_ttl(nokv_batch *b, int cf, const void *key, size_t klen,
							   const void *val, size_t vlen, uint64_t expires_at_ms);
int			nokv_batch_delete(nokv_batch *b, int cf, const void *key, size_t klen);
/* deletes [start, end) of one column family */
int			nokv_batch_delete_range(nokv_batch *b, int cf,
									const void *start, size_t slen,
									const void *end, size_t elen);
uint32_t	nokv_batch_count(const nokv_batch *b);
size_t		nokv_batch_size(const nokv_batch *b);

/*
 * The batch's encoded entries (what an external log stores) and the
 * reverse: rebuild a batch from those bytes, validating every entry.
 */
const char *nokv_batch_data(const nokv_batch *b, size_t *len);
int			nokv_batch_from_data(nokv_batch *b, const char *data, size_t len,
								 nokv_error *err);

typedef struct nokv_write_options
{
	bool		sync;			/* own-log mode: fdatasync before acking (also
								 * forced by NOKV_SYNC_BATCH) */
	/* external-log mode only: */
	uint32_t	log_id;			/* which external log (0..NOKV_MAX_EXTERNAL_LOGS-1) */
	uint64_t	log_position;	/* position of this batch in that log */
	uint64_t	version;		/* version of every entry in the batch (>0) */

	/*
	 * External-log mode, optional: called under the engine's write lock once
	 * there is room for the batch, to append it to the host's log.  It sets
	 * the batch's log position and version, which must exceed every earlier
	 * batch's, so versions follow log order (log_position and version above
	 * are then ignored).  A non-OK return refuses the write.
	 */
	int			(*log_append) (void *arg, const nokv_batch *b,
							   uint64_t *log_position, uint64_t *version,
							   nokv_error *err);
	void	   *log_append_arg;

	/*
	 * The host's log takes concurrent appends (PostgreSQL's WAL does):
	 * log_append is then called with the write lock held shared, so that
	 * writers append at once.  A version must then exceed every version of
	 * an append that finished before this one began; appends that overlap
	 * may finish in any order.  A memtable switch still waits for every
	 * append, so the appends into one memtable all lie below those into
	 * the next.  Writes with a pre-commit hook (transactions) take the
	 * write lock exclusively regardless.
	 */
	bool		log_append_concurrent;

	/*
	 * Keys not worth tracking as hot keys (for example keys written once
	 * each): the batch is not counted by hot-key tracking.
	 */
	bool		untracked;

	/*
	 * Optional: the nokv_memtable_epoch() the batch's keys were chosen
	 * under.  If the active memtable was replaced since (this write may be
	 * what replaces it), the write is refused with NOKV_EPOCH_CHANGED and
	 * nothing is written, so that the caller can choose keys anew.  0: any.
	 */
	uint64_t	memtable_epoch;
} nokv_write_options;

#define NOKV_MAX_EXTERNAL_LOGS 64

int			nokv_write(nokv_db *db, const nokv_write_options *wo,
					   const nokv_batch *b, nokv_error *err);

/* conveniences: one-entry batches */
int			nokv_put(nokv_db *db, int cf, const void *key, size_t klen,
					 const void *val, size_t vlen, nokv_error *err);
int			nokv_put_ttl(nokv_db *db, int cf, const void *key, size_t klen,
						 const void *val, size_t vlen, uint64_t expires_at_ms,
						 nokv_error *err);
int			nokv_delete(nokv_db *db, int cf, const void *key, size_t klen,
						nokv_error *err);

/* own-log mode: make everything written so far durable */
int			nokv_sync_wal(nokv_db *db, nokv_error *err);

/*
 * External-log mode: the position up to which the given log's data is in
 * SSTs whose manifest edit is durable (0 if none).  The host may recycle its
 * log below this point and must re-apply from here after a crash.
 */
uint64_t	nokv_external_log_flushed(nokv_db *db, uint32_t log_id);

/* ---------- reads ---------- */

typedef struct nokv_snapshot nokv_snapshot;

/* pin the current state; versions it can see survive compaction */
nokv_snapshot *nokv_snapshot_acquire(nokv_db *db, nokv_error *err);
void		nokv_snapshot_release(nokv_db *db, nokv_snapshot *snap);
uint64_t	nokv_snapshot_version(const nokv_snapshot *snap);
/* the last published version (own-log mode: the last sequence number) */
uint64_t	nokv_last_version(nokv_db *db);

/*
 * A number that changes whenever the active memtable is replaced.  A writer
 * handing out ascending keys in ranges (the table AM's row ids, per backend)
 * starts a fresh range when it changes, so that keys written into one
 * memtable do not reach below keys already written into the one before:
 * level-0 files that overlap are merged by compaction instead of moved down.
 */
uint64_t	nokv_memtable_epoch(nokv_db *db);

/*
 * Version-visibility hook: an upper layer that stores its own metadata with
 * each value (PostgreSQL: the writing transaction's xid) decides whether a
 * version is visible to this read.  Called for puts whose version is at or
 * below the read version; returning false skips that version and the read
 * considers older ones.  value is the user's value.
 */
typedef bool (*nokv_visible_fn) (void *arg, int cf, const char *key, size_t klen,
								 uint64_t version, const char *value, size_t vlen);

typedef struct nokv_read_options
{
	nokv_visible_fn visible;	/* NULL: every version at or below the read version */
	void	   *visible_arg;
	const nokv_snapshot *snapshot;	/* NULL: latest */
	uint64_t	version;		/* if >0 and no snapshot: read as of this version */
	bool		fill_cache;		/* default true (see nokv_read_options_init) */
	bool		untracked;		/* point reads: not counted by hot-key tracking */
	bool		verify_checksums;	/* always on for now; kept for API parity */
	/* iterators only: [lower, upper) bounds on user keys, NULL = unbounded */
	const void *lower_bound;
	size_t		lower_len;
	const void *upper_bound;
	size_t		upper_len;
} nokv_read_options;

void		nokv_read_options_init(nokv_read_options *ro);

/*
 * Point lookup.  On success *val is malloc'ed (caller frees), NUL-terminated
 * past its *vlen bytes.
 * Returns NOKV_NOT_FOUND when the key is absent or deleted.
 */
int			nokv_get(nokv_db *db, const nokv_read_options *ro, int cf,
					 const void *key, size_t klen,
					 char **val, size_t *vlen, nokv_error *err);
/* nokv_get that also reports the expiry (0 = none) */
int			nokv_get_ttl(nokv_db *db, const nokv_read_options *ro, int cf,
						 const void *key, size_t klen,
						 char **val, size_t *vlen, uint64_t *expires_at_ms,
						 nokv_error *err);

typedef struct nokv_iter nokv_iter;

/* iterates one column family in user-key order, newest visible version only */
nokv_iter  *nokv_iter_new(nokv_db *db, const nokv_read_options *ro, int cf);
void		nokv_iter_free(nokv_iter *it);
void		nokv_iter_seek_to_first(nokv_iter *it);
void		nokv_iter_seek_to_last(nokv_iter *it);
void		nokv_iter_seek(nokv_iter *it, const void *key, size_t klen);	/* first >= key */
void		nokv_iter_seek_for_prev(nokv_iter *it, const void *key, size_t klen); /* last <= key */
void		nokv_iter_next(nokv_iter *it);
void		nokv_iter_prev(nokv_iter *it);
bool		nokv_iter_valid(const nokv_iter *it);
const char *nokv_iter_key(const nokv_iter *it, size_t *klen);
const char *nokv_iter_value(const nokv_iter *it, size_t *vlen);
uint64_t	nokv_iter_version(const nokv_iter *it);
uint64_t	nokv_iter_expires_at(const nokv_iter *it);	/* 0 = no expiry */
/* NOKV_OK, or the error that made the iterator invalid */
int			nokv_iter_status(const nokv_iter *it, nokv_error *err);

/* ---------- hot keys ---------- */

#define NOKV_HOT_KEY_BYTES 64

typedef struct nokv_hot_key
{
	int			cf;
	char		key[NOKV_HOT_KEY_BYTES];	/* first bytes of the key */
	size_t		key_len;		/* bytes in key[] */
	bool		truncated;		/* the key is longer than key[] */
	uint64_t	count;			/* touches in the sliding window */
} nokv_hot_key;

/*
 * The hottest keys over the sliding window (hot_window_ms), hottest first:
 * reads (writes = false: successful point reads) or writes (every key
 * written).  Fills up to n entries and returns how many; 0 when tracking is
 * off (hot_capacity = 0).
 */
int			nokv_hot_keys(nokv_db *db, bool writes, nokv_hot_key *out, int n);

/* ---------- background work ---------- */

/*
 * Plain functions a thread or a PostgreSQL worker calls.  Each returns 1 if
 * it did work, 0 if there was none, or a negative value on error (err set).
 */
int			nokv_flush_one(nokv_db *db, nokv_error *err);
int			nokv_compact_step(nokv_db *db, nokv_error *err);
/* bitmask of NOKV_WORK_* that is pending */
#define NOKV_WORK_FLUSH		0x1
#define NOKV_WORK_COMPACT	0x2
int			nokv_pending_work(nokv_db *db);

/*
 * Value-log garbage collection: collect the segment with the highest
 * garbage share, if that share is at least ratio (<= 0: the configured
 * vlog_gc_discard_ratio).  Returns 1 if a segment was collected, 0 if none
 * qualified, or a negative code.  Background threads run it when idle.
 */
int			nokv_vlog_gc(nokv_db *db, double ratio, nokv_error *err);

/*
 * This process makes room itself (flushes, compacts) when a write would
 * stall, instead of waiting for background workers: for a host process
 * that replays its log before any worker runs.
 */
void		nokv_set_inline_background(nokv_db *db, bool on);

/*
 * Refuse new writes and wake every stalled writer with NOKV_SHUTDOWN (a
 * host calls this when its background workers stop for good).
 */
void		nokv_begin_shutdown(nokv_db *db);

/* switch the active memtable to immutable even if not full (e.g. nokv_flush()) */
int			nokv_rotate_memtable(nokv_db *db, nokv_error *err);
/*
 * Make the active memtable immutable and return once every memtable holding
 * data written so far is in an SST (whichever process flushes it).
 */
int			nokv_flush_all(nokv_db *db, nokv_error *err);
/* flush all memtables and compact until no level needs it; for tests/tools */
int			nokv_compact_all(nokv_db *db, nokv_error *err);
/* compact every file overlapping [start, end) of cf into the bottom level */
int			nokv_compact_range(nokv_db *db, int cf, const void *start, size_t slen,
							   const void *end, size_t elen, nokv_error *err);

/*
 * The SST bytes (compressed, as on disk) holding the keys [start, end) of
 * cf, estimated from the tables' indexes to a block; memtables are not
 * counted.  Like RocksDB's GetApproximateSizes.
 */
int			nokv_approximate_size(nokv_db *db, int cf, const void *start, size_t slen,
								  const void *end, size_t elen, uint64_t *bytes,
								  nokv_error *err);

/* ---------- statistics ---------- */

typedef struct nokv_level_stats
{
	int			files;
	uint64_t	bytes;
	uint64_t	entries;
	double		score;
} nokv_level_stats;

#define NOKV_MAX_LEVELS 7

typedef struct nokv_stats
{
	nokv_level_stats levels[NOKV_MAX_LEVELS];
	int			num_levels;
	uint64_t	last_version;
	int			memtables_immutable;
	uint64_t	memtable_bytes;		/* arena bytes in use, all memtables */
	bool		write_stalled;
	bool		write_slowed;
	uint64_t	stall_count;
	uint64_t	slowdown_count;
	uint64_t	flushes;
	uint64_t	flush_bytes;
	uint64_t	compactions;
	uint64_t	compaction_bytes_read;
	uint64_t	compaction_bytes_written;
	uint64_t	compaction_entries_dropped;
	uint64_t	user_bytes_written;	/* key+value bytes accepted by nokv_write */
	uint64_t	wal_bytes;
	uint64_t	wal_syncs;
	uint64_t	wal_sync_batches;	/* batches made durable by those syncs */
	uint64_t	wal_segments;
	uint64_t	vlog_bytes;			/* record bytes appended to the value log */
	uint64_t	block_cache_hits;
	uint64_t	block_cache_misses;
	uint64_t	block_cache_bytes;
	uint64_t	bloom_useful;		/* lookups a bloom filter answered "absent" */
	uint64_t	bloom_checked;
	uint64_t	gets;
	uint64_t	writes;
	uint64_t	live_sst_bytes;
	uint64_t	manifest_bytes;
	int			snapshots;
} nokv_stats;

void		nokv_get_stats(nokv_db *db, nokv_stats *st);

/*
 * Every figure as one row: a dotted name following NoKV's stats schema
 * where it has one (e.g. "compaction.runs", "lsm.levels.L0.tables",
 * "lsm.column_families.default.writes"), a value, a unit ("count",
 * "bytes", "ratio", "bool", "version", "ms") and a one-line description.
 * The strings are valid only during the callback.  Readable from any
 * process while writers run; docs/stats.md lists every row.
 */
typedef struct nokv_stat
{
	const char *name;
	double		value;
	const char *unit;
	const char *description;
} nokv_stat;

typedef void (*nokv_stat_fn) (void *arg, const nokv_stat *s);
void		nokv_stats_foreach(nokv_db *db, nokv_stat_fn fn, void *arg);

/*
 * write amplification = (wal + flush + compaction + value-log bytes written)
 * / user bytes
 */
double		nokv_write_amplification(const nokv_stats *st);

#ifdef __cplusplus
}
#endif

#include "nokv/txn.h"

#endif							/* NOKV_NOKV_H */
