/*-------------------------------------------------------------------------
 *
 * runtime.c
 *	  The engine in PostgreSQL shared memory: sizing, the platform mapping
 *	  (LWLocks, condition variables, logging, wait events) and the engine's
 *	  lifecycle across server starts and crash restarts.
 *
 * The engine's shared region is one block of the main shared memory
 * segment, sized from the settings once at start (shmem_request_hook), so
 * memory does not grow with the number of backends.  Every process maps it
 * at the same address but the engine addresses it by offsets anyway.  The
 * engine's lock ids map onto a named LWLock tranche and its condition ids
 * onto ConditionVariables in NokvShared.
 *
 * Lifecycle.  After every (re)initialisation of shared memory the engine
 * is EMPTY: nothing has read its files.  If PostgreSQL performs crash
 * recovery, the startup process opens the engine from its files in the
 * resource manager's startup callback, re-applies the WAL its SSTs do not
 * cover up to the redo point, and redo applies the rest (state REDO).
 * Otherwise the flush worker opens it once recovery has finished.  Either
 * way the flush worker then checks the WAL-retention slot and declares
 * the engine READY.  Backends that arrive before that wait on state_cv,
 * interruptibly.  A failure (for example data restored from a base backup
 * without its WAL) leaves the engine FAILED with a message every access
 * reports, rather than serving inconsistent data.
 *
 * src/extension/runtime.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/elog.h"
#include "utils/wait_event.h"

#include "nokv_pg.h"
#include "nokv/platform.h"

#define NOKV_TRANCHE "nokv"
#define REGION_ALIGN 4096

NokvShared *nokv_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static LWLockPadded *engine_locks = NULL;
static nokv_db *my_db = NULL;
static nokv_platform pg_platform;
static char engine_dir[MAXPGPATH];

/* ---------- the platform: engine locks and waits on PostgreSQL's ---------- */

static void
pg_lock_acquire(void *arg, int lock_id, bool exclusive)
{
	LWLockAcquire(&engine_locks[lock_id].lock, exclusive ? LW_EXCLUSIVE : LW_SHARED);
}

static void
pg_lock_release(void *arg, int lock_id)
{
	LWLockRelease(&engine_locks[lock_id].lock);
}

/*
 * Preparing to sleep before releasing the lock means a broadcast between
 * the release and the sleep is not lost.  The sleep is interruptible: the
 * engine only waits here at points where it holds nothing else (a stalled
 * writer), so a cancel leaves it consistent.
 */
static void
pg_cond_wait(void *arg, int cond_id, int lock_id, int timeout_ms)
{
	ConditionVariable *cv = &nokv_shared->conds[cond_id];

	ConditionVariablePrepareToSleep(cv);
	LWLockRelease(&engine_locks[lock_id].lock);
	(void) ConditionVariableTimedSleep(cv, timeout_ms < 0 ? -1 : timeout_ms, PG_WAIT_EXTENSION);
	ConditionVariableCancelSleep();
	LWLockAcquire(&engine_locks[lock_id].lock, LW_EXCLUSIVE);
}

static void
pg_cond_broadcast(void *arg, int cond_id)
{
	ConditionVariableBroadcast(&nokv_shared->conds[cond_id]);
	if (cond_id == NOKV_COND_BGWORK)
		nokv_wake_workers(-1);
}

/* engine log lines: never ERROR, the engine may hold locks */
static void
pg_log(void *arg, int level, const char *msg)
{
	switch (level)
	{
		case 0:
			elog(DEBUG1, "nokv: %s", msg);
			break;
		case 1:
			elog(LOG, "nokv: %s", msg);
			break;
		default:
			ereport(level >= 3 ? LOG : WARNING,
					(errmsg("nokv engine: %s", msg)));
			break;
	}
}

static void
pg_report_wait(void *arg, int wait_event)
{
	if (wait_event)
		pgstat_report_wait_start(PG_WAIT_EXTENSION);
	else
		pgstat_report_wait_end();
}

/*
 * Before a memtable becomes an SST, the WAL of its records must be on disk:
 * otherwise a crash could lose the records (and the transaction's xid,
 * which a new transaction could then reuse) while the SST keeps the data.
 * position is the end LSN of the memtable's newest record, a valid flush
 * target.  During recovery the WAL being replayed is already on disk.
 */
static int
pg_before_flush(void *arg, uint32_t log_id, uint64_t position, nokv_error *err)
{
	if (log_id == 0 && !RecoveryInProgress())
		XLogFlush((XLogRecPtr) position);
	return NOKV_OK;
}

/* ---------- settings -> engine options ---------- */

const char *
nokv_engine_dir(void)
{
	if (engine_dir[0] == '\0')
	{
		if (nokv_data_directory && nokv_data_directory[0])
			strlcpy(engine_dir, nokv_data_directory, sizeof(engine_dir));
		else
			snprintf(engine_dir, sizeof(engine_dir), "%s/nokv", DataDir);
	}
	return engine_dir;
}

/*
 * Partitions of the engine's key space for compaction outputs: each table's
 * rows (namespace byte and table id), and each other namespace as a whole.
 * A table's new rows get row ids above its highest, so with no output file
 * spanning into the next table they overlap no file of the levels below
 * and move down without rewriting older rows.
 */
static size_t
sst_partition(void *arg, int cf, const char *key, size_t klen)
{
	if (klen >= 9 && key[0] == NOKV_NS_ROWS)
		return 9;
	return klen > 0 ? 1 : 0;
}

void
nokv_engine_options(nokv_options *opts)
{
	nokv_options_init(opts);
	opts->memtable_size = (size_t) nokv_memtable_size_kb * 1024;
	opts->max_memtables = nokv_max_memtables;
	opts->external_log = true;
	opts->host_mvcc = true;
	opts->block_cache_size = (size_t) nokv_block_cache_size_kb * 1024;
	opts->compression = nokv_compression;

	/*
	 * A table's rows are read one at a time by row id, and a point read
	 * scans its data block forward from the restart point before the key:
	 * every 4th entry instead of every 16th cuts that scan to about two
	 * entries, for a few per cent more block bytes before compression.
	 */
	opts->block_restart_interval = 4;
	opts->vlog_threshold = (size_t) nokv_vlog_threshold;
	opts->vlog_segment_size = (size_t) nokv_vlog_segment_size_mb * 1024 * 1024;
	opts->vlog_gc_discard_ratio = nokv_vlog_gc_discard_ratio;
	opts->hot_window_ms = nokv_hot_key_window_ms;
	opts->hot_topn = nokv_hot_key_top_n > 0 ? nokv_hot_key_top_n : 1;
	if (nokv_hot_key_top_n == 0)
		opts->hot_capacity = 0;
	opts->background_threads = false;
	opts->compaction_threads = 0;
	opts->compaction_filter = nokv_mvcc_compaction_filter;
	opts->compaction_filter_arg = NULL;
	opts->sst_partition = sst_partition;
	opts->sst_partition_arg = NULL;
	opts->before_flush = pg_before_flush;
	opts->before_flush_arg = NULL;
	opts->platform = &pg_platform;
}

/* ---------- shared memory ---------- */

static Size
nokv_shmem_size(void)
{
	nokv_options opts;

	nokv_engine_options(&opts);
	return add_size(TYPEALIGN(REGION_ALIGN, sizeof(NokvShared)) + REGION_ALIGN,
					nokv_region_size(&opts));
}

static void
nokv_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(nokv_shmem_size());
	RequestNamedLWLockTranche(NOKV_TRANCHE, NOKV_LOCK_COUNT);
}

/*
 * Runs in the postmaster at start and after every crash restart (found is
 * then false again): everything the engine had in memory is gone, so the
 * state goes back to EMPTY and the files are read again before any use.
 */
static void
nokv_shmem_startup(void)
{
	bool		found;
	nokv_options opts;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	nokv_shared = ShmemInitStruct("nokv", nokv_shmem_size(), &found);
	if (!found)
	{
		char	   *base = (char *) nokv_shared;
		char	   *region;

		memset(nokv_shared, 0, sizeof(NokvShared));
		SpinLockInit(&nokv_shared->mutex);
		nokv_shared->state = NOKV_ENGINE_EMPTY;
		ConditionVariableInit(&nokv_shared->state_cv);
		for (int i = 0; i < NOKV_COND_COUNT; i++)
			ConditionVariableInit(&nokv_shared->conds[i]);
		region = (char *) TYPEALIGN(REGION_ALIGN, base + sizeof(NokvShared));
		nokv_shared->region_offset = region - base;
		nokv_engine_options(&opts);
		nokv_shared->region_size = nokv_region_size(&opts);
	}
	LWLockRelease(AddinShmemInitLock);
	engine_locks = GetNamedLWLockTranche(NOKV_TRANCHE);
}

void
nokv_runtime_init(void)
{
	pg_platform = (nokv_platform) {
		.arg = NULL,
		.lock_acquire = pg_lock_acquire,
		.lock_release = pg_lock_release,
		.cond_wait = pg_cond_wait,
		.cond_broadcast = pg_cond_broadcast,
		.log = pg_log,
		.report_wait = pg_report_wait,
	};
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = nokv_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = nokv_shmem_startup;
}

/* ---------- state ---------- */

/*
 * Read without the mutex: every engine call asks, and a spinlock taken by
 * every backend on every call moves its cache line between the CPUs.  The
 * state is one aligned enum written under the mutex (whose release orders
 * the set-up before it); the barrier orders our reads of that set-up after
 * this load.
 */
NokvEngineState
nokv_engine_state(void)
{
	NokvEngineState s = *(volatile NokvEngineState *) &nokv_shared->state;

	pg_read_barrier();
	return s;
}

void
nokv_engine_set_state(NokvEngineState state, const char *failure)
{
	SpinLockAcquire(&nokv_shared->mutex);
	nokv_shared->state = state;
	if (failure)
		strlcpy(nokv_shared->failure, failure, sizeof(nokv_shared->failure));
	SpinLockRelease(&nokv_shared->mutex);
	ConditionVariableBroadcast(&nokv_shared->state_cv);
	if (state == NOKV_ENGINE_FAILED)
		ereport(LOG, (errmsg("nokv engine is unusable until restart: %s", failure)));
}

static void
detach_at_exit(int code, Datum arg)
{
	if (my_db)
		nokv_close(my_db);
	my_db = NULL;
}

static nokv_db *
attach_engine(void)
{
	nokv_options opts;
	nokv_error	err;

	if (my_db)
		return my_db;
	nokv_engine_options(&opts);
	if (nokv_attach((char *) nokv_shared + nokv_shared->region_offset, &opts, &my_db, &err) != NOKV_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not attach to the nokv engine: %s", err.msg)));
	on_shmem_exit(detach_at_exit, 0);
	return my_db;
}

nokv_db *
nokv_engine_if_open(void)
{
	NokvEngineState s = nokv_engine_state();

	if (s == NOKV_ENGINE_REDO || s == NOKV_ENGINE_READY)
		return attach_engine();
	return NULL;
}

/*
 * The engine for a backend: on a standby it is refused; right after a
 * start or crash restart wait (interruptibly) until the flush worker has
 * opened it.
 */
nokv_db *
nokv_engine(void)
{
	if (my_db && nokv_engine_state() == NOKV_ENGINE_READY)
		return my_db;
	if (nokv_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("nokv is not loaded"),
				 errhint("Add nokv to shared_preload_libraries in postgresql.conf and restart the server.")));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("nokv data is not available during recovery or on a standby"),
				 errhint("nokv data is not replicated physically; query the primary.")));

	ConditionVariablePrepareToSleep(&nokv_shared->state_cv);
	for (;;)
	{
		NokvEngineState s = nokv_engine_state();

		if (s == NOKV_ENGINE_READY)
			break;
		if (s == NOKV_ENGINE_FAILED || s == NOKV_ENGINE_REFUSED)
		{
			char		failure[512];

			ConditionVariableCancelSleep();
			SpinLockAcquire(&nokv_shared->mutex);
			strlcpy(failure, nokv_shared->failure, sizeof(failure));
			SpinLockRelease(&nokv_shared->mutex);
			ereport(ERROR,
					(errcode(s == NOKV_ENGINE_REFUSED ? ERRCODE_FEATURE_NOT_SUPPORTED
							 : ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("nokv engine is not available"),
					 errdetail("%s", failure),
					 errhint("See the server log; docs/recovery.md explains each case.")));
		}
		/* woken by the flush worker; the timeout only re-checks */
		ConditionVariableTimedSleep(&nokv_shared->state_cv, 1000, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	return attach_engine();
}

void
nokv_raise_engine_error(int code, const nokv_error *err, const char *what)
{
	int			sqlstate;

	switch (code)
	{
		case NOKV_CORRUPTION:
			sqlstate = ERRCODE_DATA_CORRUPTED;
			break;
		case NOKV_IO_ERROR:
			sqlstate = ERRCODE_IO_ERROR;
			break;
		case NOKV_INVALID_ARGUMENT:
			sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
			break;
		case NOKV_NO_SPACE:
			sqlstate = ERRCODE_OUT_OF_MEMORY;
			break;
		case NOKV_BUSY:
			sqlstate = ERRCODE_OBJECT_IN_USE;
			break;
		case NOKV_NOT_SUPPORTED:
			sqlstate = ERRCODE_FEATURE_NOT_SUPPORTED;
			break;
		case NOKV_SHUTDOWN:
			sqlstate = ERRCODE_ADMIN_SHUTDOWN;
			break;
		default:
			sqlstate = ERRCODE_INTERNAL_ERROR;
			break;
	}
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("nokv %s failed: %s", what, err && err->msg[0] ? err->msg : nokv_code_name(code))));
}

/* ---------- opening the engine from its files ---------- */

/*
 * Read the engine's files into the fresh region and re-apply the WAL its
 * SSTs do not cover: up to the redo point when called by the startup
 * process (redo does the rest), else up to the end of WAL.  Returns false
 * (state FAILED or REFUSED) when the engine must not be used.
 */
bool
nokv_engine_open(bool in_recovery)
{
	nokv_options opts;
	nokv_error	err;
	nokv_db    *db;
	XLogRecPtr	start;
	XLogRecPtr	end;
	XLogRecPtr	reached = InvalidXLogRecPtr;
	TimeLineID	tli;
	char		why[400];
	uint64		n;
	int			rc;

	SpinLockAcquire(&nokv_shared->mutex);
	if (nokv_shared->state != NOKV_ENGINE_EMPTY)
	{
		SpinLockRelease(&nokv_shared->mutex);
		return nokv_shared->state == NOKV_ENGINE_REDO || nokv_shared->state == NOKV_ENGINE_READY;
	}
	nokv_shared->state = NOKV_ENGINE_OPENING;
	SpinLockRelease(&nokv_shared->mutex);

	nokv_engine_options(&opts);
	rc = nokv_region_format((char *) nokv_shared + nokv_shared->region_offset,
							nokv_shared->region_size, &opts, nokv_engine_dir(), &err);
	if (rc != NOKV_OK)
	{
		snprintf(why, sizeof(why), "could not open the engine in \"%s\": %s",
				 nokv_engine_dir(), err.msg);
		nokv_engine_set_state(NOKV_ENGINE_FAILED, why);
		return false;
	}
	db = attach_engine();

	if (!nokv_slot_check(&start, why, sizeof(why)))
	{
		nokv_engine_set_state(NOKV_ENGINE_FAILED, why);
		return false;
	}
	if (nokv_external_log_flushed(db, 0) > start)
		start = nokv_external_log_flushed(db, 0);

	if (in_recovery)
	{
		end = GetRedoRecPtr();
		(void) GetXLogReplayRecPtr(&tli);
	}
	else
	{
		end = GetFlushRecPtr(&tli);
	}
	/* nobody else makes room while we replay */
	nokv_set_inline_background(db, true);
	n = 0;
	if (!XLogRecPtrIsInvalid(start) && start < end)
	{
		MemoryContext cxt = CurrentMemoryContext;

		/*
		 * A WAL read error must not stop PostgreSQL's own recovery or leave
		 * the state OPENING: the engine alone becomes unusable.
		 */
		PG_TRY();
		{
			n = nokv_xlog_replay_range(db, start, end, tli, &reached);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			snprintf(why, sizeof(why), "could not re-apply the WAL from %X/%X: %s",
					 LSN_FORMAT_ARGS(start), edata->message);
			FreeErrorData(edata);
			nokv_engine_set_state(NOKV_ENGINE_FAILED, why);
			return false;
		}
		PG_END_TRY();
	}
	nokv_set_inline_background(db, in_recovery);
	if (nokv_engine_state() == NOKV_ENGINE_FAILED)
		return false;

	SpinLockAcquire(&nokv_shared->mutex);
	nokv_shared->caught_up_to = end;
	nokv_shared->records_replayed += n;
	SpinLockRelease(&nokv_shared->mutex);
	ereport(LOG,
			(errmsg("nokv engine opened from \"%s\": re-applied %llu WAL records from %X/%X to %X/%X",
					nokv_engine_dir(), (unsigned long long) n,
					LSN_FORMAT_ARGS(start), LSN_FORMAT_ARGS(end))));
	/* the slot must hold WAL before the first new record is written */
	if (!in_recovery)
		nokv_slot_create();
	nokv_engine_set_state(in_recovery ? NOKV_ENGINE_REDO : NOKV_ENGINE_READY, NULL);
	return true;
}

/*
 * After crash recovery the startup process left the engine in REDO; the
 * flush worker (recovery has finished) makes sure the slot exists and
 * opens it for backends.
 */
void
nokv_engine_finish_startup(void)
{
	NokvEngineState s = nokv_engine_state();

	if (s == NOKV_ENGINE_EMPTY)
		(void) nokv_engine_open(false);
	else if (s == NOKV_ENGINE_REDO)
	{
		nokv_set_inline_background(attach_engine(), false);
		nokv_slot_create();
		nokv_engine_set_state(NOKV_ENGINE_READY, NULL);
	}
}

void
nokv_wake_workers(int kind)
{
	if (nokv_shared == NULL)
		return;
	for (int i = 0; i < NOKV_MAX_WORKERS; i++)
	{
		NokvWorkerSlot *w = &nokv_shared->workers[i];

		if (w->pid != 0 && (kind < 0 || w->kind == kind))
			SetLatch(&ProcGlobal->allProcs[w->pgprocno].procLatch);
	}
}
