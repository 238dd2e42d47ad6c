/*-------------------------------------------------------------------------
 *
 * nokv_pg.h
 *	  Declarations shared by the modules of the nokv PostgreSQL extension.
 *
 * The extension is split by role: nokv.c (module entry, GUCs), runtime.c
 * (the engine in shared memory, the platform mapping, the engine's
 * lifecycle across crash restarts), xlog.c (the custom WAL resource
 * manager that is the engine's log), mvcc.c (PostgreSQL xids in engine
 * values: visibility, write conflicts, freezing), kv_funcs.c (the SQL
 * key-value API), views.c (observability SRFs) and
 * src/bgworkers/workers.c (flush, compaction and value-log GC workers).
 *
 * src/extension/nokv_pg.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_PG_H
#define NOKV_PG_H

#include "access/xlogdefs.h"
#include "access/xlogreader.h"
#include "lib/stringinfo.h"
#include "storage/condition_variable.h"
#include "storage/spin.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"

#include "nokv/nokv.h"
#include "nokv/platform.h"

/* ---------- configuration (nokv.c) ---------- */

extern char *nokv_data_directory;
extern int	nokv_memtable_size_kb;
extern int	nokv_max_memtables;
extern int	nokv_block_cache_size_kb;
extern int	nokv_vlog_threshold;
extern int	nokv_vlog_segment_size_mb;
extern double nokv_vlog_gc_discard_ratio;
extern int	nokv_vlog_gc_interval_ms;
extern bool nokv_compression;
extern int	nokv_compaction_workers;
extern int	nokv_hot_key_window_ms;
extern int	nokv_hot_key_top_n;
extern int	nokv_pg_sync_mode;
extern int	nokv_freeze_max_age;

typedef enum NokvSyncMode
{
	NOKV_PG_SYNC_INHERIT,			/* follow synchronous_commit */
	NOKV_PG_SYNC_ON,
	NOKV_PG_SYNC_OFF
} NokvPgSyncMode;

/* ---------- shared state and lifecycle (runtime.c) ---------- */

typedef enum NokvEngineState
{
	NOKV_ENGINE_EMPTY = 0,		/* shared memory fresh; files not read yet */
	NOKV_ENGINE_OPENING,		/* a process is reading the files */
	NOKV_ENGINE_REDO,			/* opened by crash recovery; redo applies */
	NOKV_ENGINE_READY,			/* backends may use it */
	NOKV_ENGINE_FAILED,			/* unusable until restart; see failure */
	NOKV_ENGINE_REFUSED			/* standby or archive recovery */
} NokvEngineState;

typedef enum NokvWorkerKind
{
	NOKV_WORKER_FLUSH = 0,
	NOKV_WORKER_COMPACTION,
	NOKV_WORKER_VLOG_GC
} NokvWorkerKind;

#define NOKV_MAX_COMPACTION_WORKERS 8
#define NOKV_MAX_WORKERS (2 + NOKV_MAX_COMPACTION_WORKERS)

typedef struct NokvWorkerSlot
{
	int			kind;			/* NokvWorkerKind */
	int			index;			/* among workers of its kind */
	int			pid;			/* 0 = not running */
	int			pgprocno;		/* for SetLatch */
	TimestampTz started_at;
	TimestampTz last_work_at;
	uint64		wakeups;
	uint64		work_done;		/* flushes, compactions or segments collected */
	uint64		errors;
	char		activity[32];	/* "idle", "flushing", ... */
	char		last_error[256];
} NokvWorkerSlot;

typedef struct NokvShared
{
	slock_t		mutex;			/* protects the fields below except conds */
	int			state;			/* NokvEngineState */
	char		failure[512];
	XLogRecPtr	slot_lsn;		/* restart_lsn the flush worker last set */
	XLogRecPtr	caught_up_to;	/* WAL read up to here when opening */
	uint64		records_replayed;	/* nokv records re-applied when opening */
	FullTransactionId unfrozen_since;	/* no unfrozen xid below this */
	NokvWorkerSlot workers[NOKV_MAX_WORKERS];
	ConditionVariable state_cv;
	ConditionVariable conds[NOKV_COND_COUNT];
	Size		region_size;
	Size		region_offset;	/* from the start of this struct */
} NokvShared;

extern NokvShared *nokv_shared;

extern void nokv_runtime_init(void);	/* _PG_init: hooks */
extern void nokv_engine_options(nokv_options *opts);
extern const char *nokv_engine_dir(void);

/* the engine handle of this process, waiting until the engine is ready */
extern nokv_db *nokv_engine(void);
/* the engine handle if the engine is open (any state past OPENING), else NULL */
extern nokv_db *nokv_engine_if_open(void);
extern NokvEngineState nokv_engine_state(void);
extern void nokv_engine_set_state(NokvEngineState state, const char *failure);

/* open the engine from its files (startup process or flush worker) */
extern bool nokv_engine_open(bool in_recovery);
/* bring a just-opened engine to READY (flush worker, after recovery) */
extern void nokv_engine_finish_startup(void);

extern void nokv_wake_workers(int kind);	/* -1: all */
extern void nokv_workers_register(void);	/* src/bgworkers/workers.c */
extern void nokv_raise_engine_error(int code, const nokv_error *err, const char *what);

/* ---------- the custom WAL resource manager (xlog.c) ---------- */

/* RM_EXPERIMENTAL_ID until nokv registers a permanent id */
#define NOKV_RMGR_ID 128
#define XLOG_NOKV_BATCH 0x00

extern void nokv_xlog_register(void);
/* append b to PostgreSQL's WAL and apply it (the engine's write path) */
extern void nokv_xlog_write(nokv_db *db, const nokv_batch *b);
extern void nokv_xlog_write_ext(nokv_db *db, const nokv_batch *b, bool hot);
extern bool nokv_xlog_write_epoch(nokv_db *db, const nokv_batch *b, bool hot, uint64 epoch);
/* re-apply the nokv records of WAL [from, to) to the engine */
extern uint64 nokv_xlog_replay_range(nokv_db *db, XLogRecPtr from, XLogRecPtr to,
									 TimeLineID tli, XLogRecPtr *end);

/* the WAL-retention slot and the marker file naming it */
#define NOKV_SLOT_NAME "nokv"
extern bool nokv_slot_check(XLogRecPtr *start, char *why, size_t whylen);
extern void nokv_slot_create(void);
extern void nokv_slot_advance(XLogRecPtr lsn);

/* ---------- xids in engine values (mvcc.c) ---------- */

/*
 * Every value the extension stores starts with this header (13 bytes,
 * little-endian): flags, the writing (sub)transaction's full xid and its
 * command id.  The user's bytes follow.
 */
#define NOKV_VH_SIZE 13
#define NOKV_VH_DELETED 0x01	/* a delete: the key has no value */
#define NOKV_VH_FROZEN 0x02		/* committed and visible to everyone */
#define NOKV_VH_LOCK_ONLY 0x04	/* a row lock (src/tableam), never a value */

typedef struct NokvVersionHeader
{
	uint8		flags;
	FullTransactionId xmin;
	CommandId	cmin;
} NokvVersionHeader;

extern void nokv_vh_encode(char *out, uint8 flags, FullTransactionId xmin, CommandId cmin);
extern bool nokv_vh_decode(const char *v, size_t len, NokvVersionHeader *h);

/* the visibility hook for reads under an MVCC snapshot */
extern bool nokv_mvcc_visible(void *arg, int cf, const char *key, size_t klen,
							  uint64_t version, const char *value, size_t vlen);

/* first write of the transaction: xid, PREPARE guard, sync mode */
extern void nokv_mvcc_begin_write(void);
/* the same without the SERIALIZABLE refusal (table rows support it) */
extern void nokv_mvcc_prepare_write(void);
/* serialize with other writers of (cf, key): wait for them, check isolation */
extern bool nokv_mvcc_lock_key(nokv_db *db, int cf, const char *key, size_t klen);
extern void nokv_mvcc_unlock_key(int cf, const char *key, size_t klen);
extern void nokv_mvcc_check_access(void);

extern nokv_filter_decision nokv_mvcc_compaction_filter(void *arg, const nokv_filter_entry *e,
														const char **new_value, size_t *new_len);
extern void nokv_mvcc_init(void);
/* this process's compactions freeze xids before limit too (Invalid: reset) */
extern void nokv_mvcc_set_freeze_limit(TransactionId limit);

/* ---------- key-value namespace (kv.c) ---------- */

/*
 * First byte of every engine key written by the SQL API, the FDW and the
 * gateway (the user's key follows); table rows use other first bytes.
 */
#define NOKV_NS_KV 0x00
/* table rows: NOKV_NS_ROWS | table id BE8 | row id BE8 (src/tableam/rowstore.h) */
#define NOKV_NS_ROWS 0x01
/* the registry of each database's table ids (src/tableam/rowstore.c) */
#define NOKV_NS_TABLES 0x02
#define NOKV_KV_MAX_KEY (NOKV_MAX_KEY_SIZE - 1)

/* column family by name; ERROR (22023) if unknown */
extern int	nokv_kv_cf(const char *name);
/* the engine key of a user key, palloc'd; ERROR (54000) if too long */
extern char *nokv_kv_key(const char *ukey, size_t ulen, size_t *klen);
/* ERROR (54000) unless a value of vlen bytes fits under an engine key of klen */
extern void nokv_kv_check_value_size(size_t klen, size_t vlen);
extern size_t nokv_kv_max_value_size(size_t klen);

/* expiries are milliseconds since the Unix epoch, 0 = none */
extern uint64 nokv_kv_now_ms(void);
extern TimestampTz nokv_kv_expiry_to_timestamptz(uint64 ms);
extern uint64 nokv_kv_timestamptz_to_expiry(TimestampTz t);
/* the active snapshot, or the transaction snapshot */
extern Snapshot nokv_kv_read_snapshot(void);

/*
 * Writes.  nokv_kv_lock serializes with the other writers of (cf, key):
 * it takes the key's lock, waits for an in-progress writer to finish and,
 * under REPEATABLE READ, fails with 40001 if a writer the snapshot cannot
 * see committed.  It returns whether the newest committed version is live
 * (not deleted, not expired); a snapshot taken after it sees that version.
 * Between lock and unlock the caller may read and write the key any
 * number of times (nokv_kv_write_locked: value NULL = delete).  Keys are
 * engine keys (nokv_kv_key).
 */
extern bool nokv_kv_lock(nokv_db *db, int cf, const char *key, size_t klen);
extern void nokv_kv_unlock(int cf, const char *key, size_t klen);
extern void nokv_kv_write_locked(nokv_db *db, int cf, const char *key, size_t klen,
								 const char *value, size_t vlen, uint64 expires_at);
extern void nokv_kv_put(nokv_db *db, int cf, const char *key, size_t klen,
						const char *value, size_t vlen, uint64 expires_at);
/* true if the key had a live value, now deleted */
extern bool nokv_kv_delete(nokv_db *db, int cf, const char *key, size_t klen);

/*
 * The value of (cf, key) visible to snap (NULL: the read snapshot),
 * palloc'd and NUL-terminated; NULL if none.  *expires_at if not NULL.
 */
extern char *nokv_kv_get(nokv_db *db, int cf, const char *key, size_t klen,
						 Snapshot snap, size_t *vlen, uint64 *expires_at);

/*
 * Iteration in key order over engine keys [lo, hi) (NULL: the namespace's
 * start / end) as of snap.  Entries carry user keys (namespace byte
 * stripped) and point into the iterator until the next call.  The engine
 * iterator is freed by nokv_kv_iter_end or when the memory context that
 * was current at begin is reset or deleted (so an ERROR leaks nothing).
 */
typedef struct NokvKvIter NokvKvIter;
typedef struct NokvKvEntry
{
	const char *key;
	size_t		key_len;
	const char *value;
	size_t		value_len;
	uint64		expires_at;
	uint64		version;		/* engine version (WAL end LSN) of this value */
} NokvKvEntry;

extern NokvKvIter *nokv_kv_iter_begin(nokv_db *db, int cf, const char *lo, size_t lolen,
									  const char *hi, size_t hilen, Snapshot snap);
extern void nokv_kv_iter_seek(NokvKvIter *ki, const char *key, size_t klen);
extern bool nokv_kv_iter_next(NokvKvIter *ki, NokvKvEntry *e);
extern void nokv_kv_iter_end(NokvKvIter *ki);

/*
 * The engine version of the newest committed (or own) version of (cf, key),
 * deletes and expired values included; 0 if none.  Unchanged exactly when
 * no write of the key committed in between (the gateway's WATCH).
 */
extern uint64 nokv_kv_newest_version(nokv_db *db, int cf, const char *key, size_t klen,
									 bool *live, uint64 *expires_at);

/*
 * The same without a copy: fn(arg, value, vlen, expires_at) gets the value
 * where the engine returned it, valid during the call only; false (fn not
 * called) if there is none.
 */
typedef void (*NokvKvValueFn) (void *arg, const char *value, size_t vlen, uint64 expires_at);
extern bool nokv_kv_get_with(nokv_db *db, int cf, const char *key, size_t klen,
							 Snapshot snap, NokvKvValueFn fn, void *arg);

/*
 * Batched writes.  A batch collects puts and deletes (value NULL) of keys
 * the caller has locked with nokv_kv_lock, each stamped with the current
 * (sub)transaction's xid and command id when added, and writes them as one
 * engine batch and one WAL record (nokv_kv_batch_write), so a run of
 * independent writes costs one record instead of one each.  The caller keeps
 * the keys locked until the batch is written, and must not read a key of the
 * batch before that: nothing in it is visible yet.  A later write of a key
 * already in the batch replaces the earlier one (one batch holds each key
 * once: all its entries share one engine version).  Keys and values are
 * copied.  nokv_kv_batch_fits says whether one more entry of that size still
 * fits in one engine batch (write the batch first if not).
 */
typedef struct NokvKvBatch NokvKvBatch;

extern NokvKvBatch *nokv_kv_batch_create(MemoryContext parent);
/*
 * The write of (cf, key) waiting in the batch, for the caller that holds
 * the key: false if none; *value NULL for a delete.  Valid until the next
 * put or write.
 */
extern bool nokv_kv_batch_get(NokvKvBatch *b, int cf, const char *key, size_t klen,
							  const char **value, size_t *vlen, uint64 *expires_at);
extern bool nokv_kv_batch_fits(NokvKvBatch *b, size_t klen, size_t vlen);
extern void nokv_kv_batch_put(NokvKvBatch *b, int cf, const char *key, size_t klen,
							  const char *value, size_t vlen, uint64 expires_at);
extern int	nokv_kv_batch_count(NokvKvBatch *b);
extern size_t nokv_kv_batch_bytes(NokvKvBatch *b);
/* append to the WAL and apply; the batch is empty afterwards, even on ERROR */
extern void nokv_kv_batch_write(nokv_db *db, NokvKvBatch *b);
/* forget the entries without writing them (after an abort) */
extern void nokv_kv_batch_reset(NokvKvBatch *b);

/* ---------- modules with their own directories ---------- */

/* src/gateway: the RESP gateway's settings and worker (called by _PG_init) */
extern void nokv_gateway_init(void);
/* src/gateway: the gateway's rows of the nokv_stats view */
typedef void (*NokvStatEmit) (void *arg, const nokv_stat *s);
extern void nokv_gateway_stats(NokvStatEmit emit, void *arg);
/* src/tableam: hooks of the table access method (called by _PG_init) */
extern void nokv_tableam_init(void);

#endif							/* NOKV_PG_H */
