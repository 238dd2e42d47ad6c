/*-------------------------------------------------------------------------
 *
 * workers.c
 *	  nokv's background workers: flush, compaction and value-log GC.
 *
 * Static workers registered at load, started once recovery has finished
 * and restarted a second after they exit abnormally (a crash restart
 * brings them back too).  Each sleeps on its latch; the engine sets it
 * when work appears (a memtable became immutable, a level needs
 * compaction), and a timeout re-checks anyway.  SIGTERM makes them exit
 * at the next safe point.  They connect to no database, only so that they
 * appear in pg_stat_activity with their bgw_type.
 *
 * The flush worker also owns the engine's start-up (runtime.c): it opens
 * the engine if crash recovery did not, and it advances the WAL-retention
 * slot after every durable flush.  Whoever flushes a memtable first
 * flushes PostgreSQL's WAL up to the memtable's newest record (the
 * engine's before_flush hook, runtime.c), so no SST ever holds data of a
 * transaction whose WAL a crash could still lose.
 *
 * src/bgworkers/workers.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "nokv_pg.h"

PGDLLEXPORT void nokv_worker_main(Datum main_arg);

static NokvWorkerSlot *my_slot = NULL;

static const char *const kind_names[] = {
	[NOKV_WORKER_FLUSH] = "flush",
	[NOKV_WORKER_COMPACTION] = "compaction",
	[NOKV_WORKER_VLOG_GC] = "vlog gc",
};

static int
slot_index(int kind, int index)
{
	switch (kind)
	{
		case NOKV_WORKER_FLUSH:
			return 0;
		case NOKV_WORKER_VLOG_GC:
			return 1;
		default:
			return 2 + index;
	}
}

static void
register_worker(int kind, int index)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 1;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "nokv");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "nokv_worker_main");
	if (kind == NOKV_WORKER_COMPACTION)
		snprintf(bgw.bgw_name, BGW_MAXLEN, "nokv compaction worker %d", index);
	else
		snprintf(bgw.bgw_name, BGW_MAXLEN, "nokv %s worker", kind_names[kind]);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "nokv %s", kind_names[kind]);
	bgw.bgw_main_arg = Int32GetDatum(kind << 8 | index);
	RegisterBackgroundWorker(&bgw);
}

void
nokv_workers_register(void)
{
	register_worker(NOKV_WORKER_FLUSH, 0);
	for (int i = 0; i < nokv_compaction_workers; i++)
		register_worker(NOKV_WORKER_COMPACTION, i);
	register_worker(NOKV_WORKER_VLOG_GC, 0);
}

/* ---------- bookkeeping shown by nokv_workers ---------- */

static void
set_activity(const char *activity)
{
	SpinLockAcquire(&nokv_shared->mutex);
	strlcpy(my_slot->activity, activity, sizeof(my_slot->activity));
	SpinLockRelease(&nokv_shared->mutex);
}

static void
note_work(int done, int rc, const nokv_error *err)
{
	SpinLockAcquire(&nokv_shared->mutex);
	my_slot->wakeups++;
	if (done > 0)
	{
		my_slot->work_done += done;
		my_slot->last_work_at = GetCurrentTimestamp();
	}
	if (rc != NOKV_OK)
	{
		my_slot->errors++;
		strlcpy(my_slot->last_error, err->msg, sizeof(my_slot->last_error));
	}
	strlcpy(my_slot->activity, "idle", sizeof(my_slot->activity));
	SpinLockRelease(&nokv_shared->mutex);
	if (rc != NOKV_OK)
		ereport(LOG,
				(errmsg("nokv %s worker: %s", kind_names[my_slot->kind], err->msg)));
}

static void
release_slot(int code, Datum arg)
{
	if (my_slot == NULL)
		return;
	SpinLockAcquire(&nokv_shared->mutex);
	my_slot->pid = 0;
	strlcpy(my_slot->activity, "stopped", sizeof(my_slot->activity));
	SpinLockRelease(&nokv_shared->mutex);
}

/* ---------- the work ---------- */

/* returns the number of flushes done (bounded, so signals are seen) */
static int
flush_work(nokv_db *db, nokv_error *err, int *rc)
{
	int			done = 0;

	*rc = NOKV_OK;
	while (done < 4 && (nokv_pending_work(db) & NOKV_WORK_FLUSH))
	{
		int			r;

		set_activity("flushing");
		r = nokv_flush_one(db, err);
		if (r < 0)
		{
			*rc = -r;
			break;
		}
		if (r == 0)
			break;
		done++;
	}
	nokv_slot_advance(nokv_external_log_flushed(db, 0));
	return done;
}

static int
compaction_work(nokv_db *db, nokv_error *err, int *rc)
{
	int			done = 0;

	*rc = NOKV_OK;
	while (done < 4 && (nokv_pending_work(db) & NOKV_WORK_COMPACT))
	{
		int			r;

		set_activity("compacting");
		r = nokv_compact_step(db, err);
		if (r < 0)
		{
			*rc = -r;
			break;
		}
		if (r == 0)
			break;
		done++;
		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			break;
	}
	return done;
}

/*
 * Compaction freezes what it rewrites; data that is never rewritten would
 * keep old xids forever.  Once the oldest possibly unfrozen xid is older
 * than nokv.freeze_max_age, rewrite everything into the bottom level.
 */
static int
freeze_sweep(nokv_db *db, nokv_error *err, int *rc)
{
	FullTransactionId next = ReadNextFullTransactionId();
	FullTransactionId since;
	TransactionId horizon;
	uint32		epoch;

	*rc = NOKV_OK;
	SpinLockAcquire(&nokv_shared->mutex);
	since = nokv_shared->unfrozen_since;
	SpinLockRelease(&nokv_shared->mutex);
	if (!FullTransactionIdIsValid(since))
	{
		/* nothing older than the cluster's oldest xid can be unfrozen */
		TransactionId oldest = ShmemVariableCache->oldestXid;

		epoch = EpochFromFullTransactionId(next);
		if (oldest > XidFromFullTransactionId(next))
			epoch--;
		since = FullTransactionIdFromEpochAndXid(epoch, oldest);
	}
	if (U64FromFullTransactionId(next) - U64FromFullTransactionId(since) <= (uint64) nokv_freeze_max_age)
	{
		SpinLockAcquire(&nokv_shared->mutex);
		nokv_shared->unfrozen_since = since;
		SpinLockRelease(&nokv_shared->mutex);
		return 0;
	}

	set_activity("freezing");
	/* the filter freezes below both the horizon and the freeze limit */
	horizon = GetOldestNonRemovableTransactionId(NULL);
	{
		TransactionId limit = XidFromFullTransactionId(next) - (TransactionId) (nokv_freeze_max_age / 2);

		if (TransactionIdIsNormal(limit) && TransactionIdPrecedes(limit, horizon))
			horizon = limit;
	}
	for (int cf = 0; cf < NOKV_CF_COUNT && *rc == NOKV_OK; cf++)
		*rc = nokv_compact_range(db, cf, NULL, 0, NULL, 0, err);
	if (*rc != NOKV_OK)
		return 0;
	epoch = EpochFromFullTransactionId(next);
	if (horizon > XidFromFullTransactionId(next))
		epoch--;
	SpinLockAcquire(&nokv_shared->mutex);
	nokv_shared->unfrozen_since = FullTransactionIdFromEpochAndXid(epoch, horizon);
	SpinLockRelease(&nokv_shared->mutex);
	ereport(LOG, (errmsg("nokv froze every version older than transaction %u", horizon)));
	return 1;
}

static int
vlog_gc_work(nokv_db *db, nokv_error *err, int *rc)
{
	int			done = 0;
	int			r;

	*rc = NOKV_OK;
	set_activity("collecting");
	while (done < 16 && (r = nokv_vlog_gc(db, nokv_vlog_gc_discard_ratio, err)) > 0)
	{
		done++;
		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			return done;
	}
	if (r < 0)
	{
		*rc = -r;
		return done;
	}
	return done + freeze_sweep(db, err, rc);
}

/* ---------- main loop ---------- */

void
nokv_worker_main(Datum main_arg)
{
	int			kind = DatumGetInt32(main_arg) >> 8;
	int			index = DatumGetInt32(main_arg) & 0xff;
	nokv_db    *db = NULL;
	MemoryContext work_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	my_slot = &nokv_shared->workers[slot_index(kind, index)];
	SpinLockAcquire(&nokv_shared->mutex);
	memset(my_slot, 0, sizeof(*my_slot));
	my_slot->kind = kind;
	my_slot->index = index;
	my_slot->pid = MyProcPid;
	my_slot->pgprocno = MyProc->pgprocno;
	my_slot->started_at = GetCurrentTimestamp();
	strlcpy(my_slot->activity, "starting", sizeof(my_slot->activity));
	SpinLockRelease(&nokv_shared->mutex);
	on_shmem_exit(release_slot, 0);

	work_cxt = AllocSetContextCreate(TopMemoryContext, "nokv worker", ALLOCSET_DEFAULT_SIZES);
	ereport(LOG, (errmsg("nokv %s worker started", kind_names[kind])));

	if (kind == NOKV_WORKER_FLUSH)
	{
		set_activity("opening");
		nokv_engine_finish_startup();
	}

	while (!ShutdownRequestPending)
	{
		NokvEngineState state = nokv_engine_state();
		nokv_error	err = {0};
		int			rc = NOKV_OK;
		int			done = 0;
		long		timeout = 1000;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (state == NOKV_ENGINE_READY)
		{
			if (db == NULL)
				db = nokv_engine_if_open();
			MemoryContextReset(work_cxt);
			switch (kind)
			{
				case NOKV_WORKER_FLUSH:
					done = flush_work(db, &err, &rc);
					break;
				case NOKV_WORKER_COMPACTION:
					done = compaction_work(db, &err, &rc);
					break;
				case NOKV_WORKER_VLOG_GC:
					done = vlog_gc_work(db, &err, &rc);
					timeout = nokv_vlog_gc_interval_ms;
					break;
			}
			note_work(done, rc, &err);
		}
		else
			set_activity(state == NOKV_ENGINE_FAILED ? "engine failed" : "waiting");

		/* more work may be pending: look again at once, unless it failed */
		if (done > 0 && rc == NOKV_OK && kind != NOKV_WORKER_VLOG_GC)
			continue;
		if (rc != NOKV_OK)
		{
			/* back off: wake-ups from stalled writers must not make a busy loop */
			(void) WaitLatch(NULL, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000, PG_WAIT_EXTENSION);
			continue;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	ereport(LOG, (errmsg("nokv %s worker stopping", kind_names[kind])));
	/* exit code 1: if only this worker was told to stop, it comes back */
	proc_exit(1);
}
