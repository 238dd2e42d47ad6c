/*-------------------------------------------------------------------------
 *
 * tam_maint.c
 *	  Maintenance paths of the nokv table access method: VACUUM, index
 *	  cleanup, ANALYZE, index builds and validation, TABLESAMPLE and
 *	  bitmap scans.
 *
 * VACUUM scans the table's key range, removes the TIDs of rows dead to
 * every snapshot from each index, then deletes those rows from the engine.
 * Because row ids are never reused, compaction may drop a dead row before
 * VACUUM has cleaned its index entries: such an entry just finds nothing.
 * Compaction is also the freezer; an aggressive VACUUM (or VACUUM FREEZE)
 * compacts the table's range with the vacuum's freeze limit first, and
 * relfrozenxid becomes the oldest xid still stored in the table's rows.
 *
 * ANALYZE, TABLESAMPLE and bitmap scans address virtual blocks of 291 row
 * ids (see rowstore.h), so PostgreSQL's block samplers work unchanged.
 *
 * src/tableam/tam_maint.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/multixact.h"
#include "access/transam.h"
#include "access/tsmapi.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "commands/dbcommands.h"
#include "commands/progress.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/tidbitmap.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_rusage.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplesort.h"

#include "tam.h"

/* ---------- index entry deletion (btree and hash) ---------- */

TransactionId
tam_index_delete_tuples(Relation rel, TM_IndexDeleteOp *delstate)
{
	RowState	rs;
	uint64		tableid;

	/* bottom-up deletion has budgets to honour; declining is always allowed */
	if (delstate->bottomup)
	{
		delstate->ndeltids = 0;
		return InvalidTransactionId;
	}
	tableid = rows_tableid(rel);
	rowstate_init(&rs, false);
	for (int i = 0; i < delstate->ndeltids; i++)
	{
		TM_IndexDelete *d = &delstate->deltids[i];
		TM_IndexStatus *st = &delstate->status[d->id];

		if (!tid_is_row(&d->tid))
			continue;
		(void) rowstate_read(nokv_engine(), tableid, rowid_from_tid(&d->tid), &rs);
		if (tam_row_dead_to_all(rel, &rs))
			st->knowndeletable = true;
	}
	rowstate_reset(&rs);
	/* no standby ever reads nokv rows: no conflict horizon to report */
	return InvalidTransactionId;
}

/* ---------- VACUUM ---------- */

typedef struct VacuumCounts
{
	double		scanned;
	double		live;
	double		recently_dead;
	double		removed;
	double		index_removed;
	TransactionId oldest_xid;	/* oldest unfrozen xid left in the rows */
} VacuumCounts;

static IndexVacuumInfo
index_vacuum_info(Relation index, bool estimated, double num_rows, int elevel,
				  BufferAccessStrategy bstrategy)
{
	IndexVacuumInfo ivinfo = {
		.index = index,
		.analyze_only = false,
		.report_progress = false,
		.estimated_count = estimated,
		.message_level = elevel,
		.num_heap_tuples = num_rows,
		.strategy = bstrategy,
	};

	return ivinfo;
}

static void
vacuum_indexes_and_purge(Relation rel, Relation *indrels, int nindexes,
						 IndexBulkDeleteResult **istats, VacDeadItems *dead,
						 uint64 tableid, double num_rows, int elevel,
						 BufferAccessStrategy bstrategy, VacuumCounts *counts)
{
	nokv_batch *b;

	if (dead->num_items == 0)
		return;
	for (int i = 0; i < nindexes; i++)
	{
		IndexVacuumInfo ivinfo = index_vacuum_info(indrels[i], true, num_rows, elevel, bstrategy);
		double		before = istats[i] ? istats[i]->tuples_removed : 0;

		istats[i] = vac_bulkdel_one_index(&ivinfo, istats[i], dead);
		counts->index_removed += istats[i]->tuples_removed - before;
	}

	/* the index entries are gone: now the rows */
	b = nokv_batch_new();
	if (b == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	PG_TRY();
	{
		for (int i = 0; i < dead->num_items; i++)
		{
			char		key[ROW_KEY_LEN];

			row_key(key, tableid, rowid_from_tid(&dead->items[i]));
			if (nokv_batch_delete(b, ROW_CF, key, ROW_KEY_LEN) != NOKV_OK)
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
			if (nokv_batch_count(b) >= 4096)
			{
				nokv_xlog_write_ext(nokv_engine(), b, false);
				nokv_batch_clear(b);
			}
		}
		if (nokv_batch_count(b) > 0)
			nokv_xlog_write_ext(nokv_engine(), b, false);
	}
	PG_FINALLY();
	{
		nokv_batch_free(b);
	}
	PG_END_TRY();
	counts->removed += dead->num_items;
	dead->num_items = 0;
}

/* compact the table's key range, freezing xids before freeze_limit */
static void
freeze_range(uint64 tableid, TransactionId freeze_limit)
{
	char		lo[ROW_KEY_LEN];
	char		hi[ROW_KEY_LEN];
	nokv_error	err;
	int			rc;

	row_key(lo, tableid, 0);
	row_key(hi, tableid + 1, 0);
	nokv_mvcc_set_freeze_limit(freeze_limit);
	PG_TRY();
	{
		rc = nokv_compact_range(nokv_engine(), ROW_CF, lo, ROW_KEY_LEN, hi, ROW_KEY_LEN, &err);
		if (rc != NOKV_OK)
			nokv_raise_engine_error(rc, &err, "compaction");
	}
	PG_FINALLY();
	{
		nokv_mvcc_set_freeze_limit(InvalidTransactionId);
	}
	PG_END_TRY();
}

void
tam_relation_vacuum(Relation rel, struct VacuumParams *params,
					BufferAccessStrategy bstrategy)
{
	TransactionId oldest_xmin;
	TransactionId freeze_limit;
	MultiXactId oldest_mxact;
	MultiXactId multi_cutoff;
	bool		aggressive;
	bool		verbose = (params->options & VACOPT_VERBOSE) != 0;
	int			elevel = verbose ? INFO : DEBUG2;
	Relation   *indrels;
	int			nindexes;
	IndexBulkDeleteResult **istats;
	VacDeadItems *dead;
	int			max_items;
	uint64		tableid = rows_tableid(rel);
	RowIter		ri;
	VacuumCounts counts = {0};
	TransactionId new_frozen;
	BlockNumber pages;
	bool		frozenxid_updated;
	bool		minmulti_updated;
	PGRUsage	ru0;

	pg_rusage_init(&ru0);
	aggressive = vacuum_set_xid_limits(rel, params->freeze_min_age, params->freeze_table_age,
									   params->multixact_freeze_min_age,
									   params->multixact_freeze_table_age,
									   &oldest_xmin, &oldest_mxact, &freeze_limit,
									   &multi_cutoff);
	if (aggressive || (params->options & VACOPT_FREEZE))
		freeze_range(tableid, freeze_limit);

	vac_open_indexes(rel, RowExclusiveLock, &nindexes, &indrels);
	if (params->index_cleanup == VACOPTVALUE_DISABLED)
		nindexes = 0;
	istats = palloc0(sizeof(IndexBulkDeleteResult *) * Max(nindexes, 1));
	max_items = (int) Min((int64) maintenance_work_mem * 1024 / sizeof(ItemPointerData),
						  (int64) (MaxAllocSize - offsetof(VacDeadItems, items)) / sizeof(ItemPointerData));
	max_items = Max(max_items, 1024);
	dead = palloc(vac_max_items_to_alloc_size(max_items));
	dead->max_items = max_items;
	dead->num_items = 0;

	rowiter_begin(&ri, tableid, false);
	while (rowiter_step(&ri, ForwardScanDirection))
	{
		TransactionId x;

		vacuum_delay_point();
		counts.scanned++;
		switch (rowstate_vacuum(&ri.rs, oldest_xmin))
		{
			case ROW_DEAD:
				tid_from_rowid(&dead->items[dead->num_items++], ri.rowid);
				if (dead->num_items >= dead->max_items)
					vacuum_indexes_and_purge(rel, indrels, nindexes, istats, dead, tableid,
											 counts.live, elevel, bstrategy, &counts);
				continue;
			case ROW_LIVE:
			case ROW_DELETE_IN_PROGRESS:
				counts.live++;
				break;
			case ROW_RECENTLY_DEAD:
				counts.recently_dead++;
				break;
			case ROW_INSERT_IN_PROGRESS:
				break;
		}
		x = rowstate_oldest_xid(&ri.rs);
		if (TransactionIdIsNormal(x) &&
			(!TransactionIdIsValid(counts.oldest_xid) || TransactionIdPrecedes(x, counts.oldest_xid)))
			counts.oldest_xid = x;
	}
	rowiter_end(&ri);
	vacuum_indexes_and_purge(rel, indrels, nindexes, istats, dead, tableid,
							 counts.live, elevel, bstrategy, &counts);

	for (int i = 0; i < nindexes; i++)
	{
		IndexVacuumInfo ivinfo = index_vacuum_info(indrels[i], false, counts.live, elevel, bstrategy);

		istats[i] = vac_cleanup_one_index(&ivinfo, istats[i]);
		if (istats[i] && !istats[i]->estimated_count)
			vac_update_relstats(indrels[i], istats[i]->num_pages, istats[i]->num_index_tuples,
								0, false, InvalidTransactionId, InvalidMultiXactId,
								NULL, NULL, false);
	}

	/* every xid left in the rows is at or after new_frozen */
	new_frozen = oldest_xmin;
	if (TransactionIdIsValid(counts.oldest_xid) && TransactionIdPrecedes(counts.oldest_xid, new_frozen))
		new_frozen = counts.oldest_xid;
	pages = (BlockNumber) (tam_relation_size(rel, MAIN_FORKNUM) / BLCKSZ);
	vac_update_relstats(rel, pages, counts.live, 0, nindexes > 0 || RelationGetForm(rel)->relhasindex,
						new_frozen, oldest_mxact, &frozenxid_updated, &minmulti_updated, false);
	pgstat_report_vacuum(RelationGetRelid(rel), rel->rd_rel->relisshared,
						 (PgStat_Counter) counts.live, (PgStat_Counter) counts.recently_dead);

	ereport(elevel,
			(errmsg("finished vacuuming nokv table \"%s.%s.%s\"",
					get_database_name(MyDatabaseId),
					get_namespace_name(RelationGetNamespace(rel)),
					RelationGetRelationName(rel)),
			 errdetail("rows: %.0f scanned, %.0f removed, %.0f dead but not yet removable, %.0f live\n"
					   "index entries removed: %.0f in %d indexes\n"
					   "row-id high-water mark: %llu (%u virtual blocks)\n"
					   "new relfrozenxid: %u%s, oldest xmin: %u%s\n"
					   "%s",
					   counts.scanned, counts.removed, counts.recently_dead, counts.live,
					   counts.index_removed, nindexes,
					   (unsigned long long) rows_high_water(rel), pages,
					   new_frozen, frozenxid_updated ? " (advanced)" : "",
					   oldest_xmin, aggressive ? ", aggressive: the table's range was compacted and frozen" : "",
					   pg_rusage_show(&ru0))));

	for (int i = 0; i < nindexes; i++)
		if (istats[i])
			pfree(istats[i]);
	vac_close_indexes(nindexes, indrels, NoLock);
	pfree(dead);
	pfree(istats);
}

/* ---------- ANALYZE ---------- */

bool
tam_scan_analyze_next_block(TableScanDesc sscan, BlockNumber blockno,
							BufferAccessStrategy bstrategy)
{
	NokvScanDesc scan = (NokvScanDesc) sscan;

	scan->block = blockno;
	scan->lo_rowid = (uint64) blockno * ROWS_PER_BLOCK;
	scan->hi_rowid = scan->lo_rowid + ROWS_PER_BLOCK;
	rowiter_seek(&scan->ri, scan->lo_rowid);
	return true;
}

/* heap's counting: live rows are sampled, dead ones counted */
bool
tam_scan_analyze_next_tuple(TableScanDesc sscan, TransactionId OldestXmin,
							double *liverows, double *deadrows, TupleTableSlot *slot)
{
	NokvScanDesc scan = (NokvScanDesc) sscan;
	Relation	rel = sscan->rs_rd;

	while (tam_next_row(scan, ForwardScanDirection))
	{
		RowState   *rs = &scan->ri.rs;
		bool		sample = false;

		switch (rowstate_vacuum(rs, OldestXmin))
		{
			case ROW_LIVE:
				sample = true;
				*liverows += 1;
				break;
			case ROW_DEAD:
			case ROW_RECENTLY_DEAD:
				*deadrows += 1;
				break;
			case ROW_INSERT_IN_PROGRESS:
				if (TransactionIdIsCurrentTransactionId(rs->xmin))
				{
					sample = true;
					*liverows += 1;
				}
				break;
			case ROW_DELETE_IN_PROGRESS:
				{
					RowMarker  *m = rowstate_mod_marker(rs);

					if (m && TransactionIdIsCurrentTransactionId(m->xid))
						*deadrows += 1;
					else
					{
						sample = true;
						*liverows += 1;
					}
				}
				break;
		}
		if (sample)
		{
			tam_store_row(rs, rel, scan->ri.rowid, slot);
			return true;
		}
	}
	ExecClearTuple(slot);
	return false;
}

/* ---------- index builds ---------- */

double
tam_index_build_range_scan(Relation table_rel, Relation index_rel,
						   struct IndexInfo *index_info, bool allow_sync,
						   bool anyvisible, bool progress,
						   BlockNumber start_blockno, BlockNumber numblocks,
						   IndexBuildCallback callback, void *callback_state,
						   TableScanDesc sscan)
{
	EState	   *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	TupleTableSlot *slot = table_slot_create(table_rel, NULL);
	ExprState  *predicate;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	Snapshot	snapshot;
	bool		need_unregister = false;
	bool		own_scan = (sscan == NULL);
	TransactionId oldest_xmin = InvalidTransactionId;
	NokvScanDesc scan;
	double		reltuples = 0;
	bool		checking_uniqueness = index_info->ii_Unique || index_info->ii_ExclusionOps != NULL;

	econtext->ecxt_scantuple = slot;
	predicate = ExecPrepareQual(index_info->ii_Predicate, estate);

	if (own_scan)
	{
		if (IsBootstrapProcessingMode() || index_info->ii_Concurrent)
		{
			snapshot = RegisterSnapshot(GetTransactionSnapshot());
			need_unregister = true;
		}
		else
		{
			snapshot = SnapshotAny;
			oldest_xmin = GetOldestNonRemovableTransactionId(table_rel);
		}
		sscan = table_beginscan_strat(table_rel, snapshot, 0, NULL, true, allow_sync);
	}
	else
	{
		snapshot = sscan->rs_snapshot;
		if (!IsMVCCSnapshot(snapshot))
			oldest_xmin = GetOldestNonRemovableTransactionId(table_rel);
	}
	scan = (NokvScanDesc) sscan;
	if (start_blockno != 0 || numblocks != InvalidBlockNumber)
	{
		scan->lo_rowid = (uint64) start_blockno * ROWS_PER_BLOCK;
		scan->hi_rowid = numblocks == InvalidBlockNumber ? PG_UINT64_MAX :
			scan->lo_rowid + (uint64) numblocks * ROWS_PER_BLOCK;
		rowiter_seek(&scan->ri, scan->lo_rowid);
	}

	while (tam_next_row(scan, ForwardScanDirection))
	{
		RowState   *rs = &scan->ri.rs;
		bool		index_it = true;
		bool		alive = true;

		CHECK_FOR_INTERRUPTS();
		if (IsMVCCSnapshot(snapshot))
		{
			if (!rowstate_visible(rs, snapshot))
				continue;
			reltuples++;
		}
		else
		{
			switch (rowstate_vacuum(rs, oldest_xmin))
			{
				case ROW_DEAD:
					index_it = false;
					break;
				case ROW_LIVE:
					reltuples++;
					break;
				case ROW_RECENTLY_DEAD:
					/* older snapshots may still use the index to find it */
					alive = false;
					break;
				case ROW_INSERT_IN_PROGRESS:
					if (!anyvisible && checking_uniqueness &&
						!TransactionIdIsCurrentTransactionId(rs->xmin))
					{
						XactLockTableWait(rs->xmin, table_rel, NULL, XLTW_InsertIndexUnique);
						(void) rowstate_read(nokv_engine(), scan->tableid, scan->ri.rowid, rs);
						if (rowstate_vacuum(rs, oldest_xmin) == ROW_DEAD)
						{
							index_it = false;
							break;
						}
					}
					reltuples++;
					break;
				case ROW_DELETE_IN_PROGRESS:
					{
						RowMarker  *m = rowstate_mod_marker(rs);

						if (m && TransactionIdIsCurrentTransactionId(m->xid))
							alive = false;
						else
						{
							if (!anyvisible && checking_uniqueness && m)
							{
								XactLockTableWait(m->xid, table_rel, NULL, XLTW_InsertIndexUnique);
								(void) rowstate_read(nokv_engine(), scan->tableid, scan->ri.rowid, rs);
								if (rowstate_vacuum(rs, oldest_xmin) != ROW_LIVE)
									alive = false;
							}
							if (alive)
								reltuples++;
						}
					}
					break;
			}
		}
		if (!index_it || !rs->found)
			continue;

		MemoryContextReset(econtext->ecxt_per_tuple_memory);
		tam_store_row(rs, table_rel, scan->ri.rowid, slot);
		if (predicate != NULL && !ExecQual(predicate, econtext))
			continue;
		FormIndexDatum(index_info, slot, estate, values, isnull);
		callback(index_rel, &slot->tts_tid, values, isnull, alive, callback_state);
	}

	/* as heap does, also a scan the caller began (parallel builds) */
	table_endscan(sscan);
	if (need_unregister)
		UnregisterSnapshot(snapshot);
	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);
	index_info->ii_ExpressionsState = NIL;
	index_info->ii_PredicateState = NULL;
	return reltuples;
}

/* CREATE INDEX CONCURRENTLY: add the rows the first pass missed */
void
tam_index_validate_scan(Relation table_rel, Relation index_rel,
						struct IndexInfo *index_info, Snapshot snapshot,
						struct ValidateIndexState *state)
{
	EState	   *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	TupleTableSlot *slot = table_slot_create(table_rel, NULL);
	ExprState  *predicate;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	TableScanDesc sscan;
	ItemPointerData decoded;
	ItemPointer indexcursor = NULL;
	bool		tuplesort_empty = false;

	econtext->ecxt_scantuple = slot;
	predicate = ExecPrepareQual(index_info->ii_Predicate, estate);
	/* rows come in row-id order, which is TID order, as the merge needs */
	sscan = table_beginscan_strat(table_rel, snapshot, 0, NULL, true, false);
	while (table_scan_getnextslot(sscan, ForwardScanDirection, slot))
	{
		ItemPointer tid = &slot->tts_tid;

		CHECK_FOR_INTERRUPTS();
		while (!tuplesort_empty && (indexcursor == NULL || ItemPointerCompare(indexcursor, tid) < 0))
		{
			Datum		ts_val;
			bool		ts_isnull;

			tuplesort_empty = !tuplesort_getdatum(state->tuplesort, true, &ts_val, &ts_isnull, NULL);
			if (!tuplesort_empty)
			{
				itemptr_decode(&decoded, DatumGetInt64(ts_val));
				indexcursor = &decoded;
			}
			else
				indexcursor = NULL;
		}
		if (!tuplesort_empty && indexcursor != NULL && ItemPointerEquals(indexcursor, tid))
			continue;
		MemoryContextReset(econtext->ecxt_per_tuple_memory);
		if (predicate != NULL && !ExecQual(predicate, econtext))
			continue;
		FormIndexDatum(index_info, slot, estate, values, isnull);
		index_insert(index_rel, values, isnull, tid, table_rel,
					 index_info->ii_Unique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
					 false, index_info);
		state->tups_inserted += 1;
	}
	table_endscan(sscan);
	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);
	index_info->ii_ExpressionsState = NIL;
	index_info->ii_PredicateState = NULL;
}

/* ---------- per-block batches (TABLESAMPLE, bitmap scans) ---------- */

static void
batch_reset(NokvScanDesc scan)
{
	if (scan->batchcxt == NULL)
	{
		scan->batchcxt = AllocSetContextCreate(CurrentMemoryContext, "nokv scan batch",
											   ALLOCSET_DEFAULT_SIZES);
		scan->batch = MemoryContextAlloc(scan->batchcxt, 1);	/* replaced below */
	}
	MemoryContextReset(scan->batchcxt);
	scan->batch = MemoryContextAlloc(scan->batchcxt, sizeof(HeapTuple) * ROWS_PER_BLOCK);
	scan->batch_off = MemoryContextAlloc(scan->batchcxt, sizeof(OffsetNumber) * ROWS_PER_BLOCK);
	scan->nbatch = 0;
	scan->ibatch = 0;
}

static void
batch_add(NokvScanDesc scan, RowState *rs, uint64 rowid)
{
	MemoryContext old = MemoryContextSwitchTo(scan->batchcxt);

	scan->batch[scan->nbatch] = rowstate_heap_tuple(rs, scan->base.rs_rd, rowid);
	scan->batch_off[scan->nbatch] = (OffsetNumber) (rowid % ROWS_PER_BLOCK + 1);
	scan->nbatch++;
	MemoryContextSwitchTo(old);
}

/* the visible rows of a block, all of them or those at offsets */
static void
load_block(NokvScanDesc scan, BlockNumber block, OffsetNumber *offsets, int noffsets)
{
	Relation	rel = scan->base.rs_rd;
	Snapshot	snapshot = scan->base.rs_snapshot;
	uint64		first = (uint64) block * ROWS_PER_BLOCK;

	batch_reset(scan);
	scan->block = block;
	if (offsets != NULL)
	{
		RowState	rs;

		rowstate_init(&rs, true);
		for (int i = 0; i < noffsets; i++)
		{
			uint64		rowid;
			bool		visible;

			if (offsets[i] < 1 || offsets[i] > ROWS_PER_BLOCK)
				continue;
			rowid = first + offsets[i] - 1;
			if (!rowstate_read(nokv_engine(), scan->tableid, rowid, &rs))
				continue;
			visible = rowstate_visible(&rs, snapshot);
			tam_conflict_out(rel, &rs, visible, snapshot);
			if (visible)
				batch_add(scan, &rs, rowid);
		}
		rowstate_reset(&rs);
		return;
	}
	scan->lo_rowid = first;
	scan->hi_rowid = first + ROWS_PER_BLOCK;
	rowiter_seek(&scan->ri, first);
	while (tam_next_row(scan, ForwardScanDirection))
	{
		bool		visible = rowstate_visible(&scan->ri.rs, snapshot);

		tam_conflict_out(rel, &scan->ri.rs, visible, snapshot);
		if (visible)
			batch_add(scan, &scan->ri.rs, scan->ri.rowid);
	}
}

static void
batch_store(NokvScanDesc scan, int i, TupleTableSlot *slot)
{
	ExecStoreHeapTuple(scan->batch[i], slot, false);
	slot->tts_tableOid = RelationGetRelid(scan->base.rs_rd);
	pgstat_count_heap_getnext(scan->base.rs_rd);
}

bool
tam_scan_bitmap_next_block(TableScanDesc sscan, struct TBMIterateResult *tbmres)
{
	NokvScanDesc scan = (NokvScanDesc) sscan;
	BlockNumber nblocks = (BlockNumber) (tam_relation_size(sscan->rs_rd, MAIN_FORKNUM) / BLCKSZ);

	if (tbmres->blockno >= nblocks)
		return false;
	if (tbmres->ntuples >= 0)
		load_block(scan, tbmres->blockno, tbmres->offsets, tbmres->ntuples);
	else
		load_block(scan, tbmres->blockno, NULL, 0);
	return scan->nbatch > 0;
}

bool
tam_scan_bitmap_next_tuple(TableScanDesc sscan, struct TBMIterateResult *tbmres,
						   TupleTableSlot *slot)
{
	NokvScanDesc scan = (NokvScanDesc) sscan;

	if (scan->ibatch >= scan->nbatch)
		return false;
	batch_store(scan, scan->ibatch++, slot);
	return true;
}

bool
tam_scan_sample_next_block(TableScanDesc sscan, struct SampleScanState *scanstate)
{
	NokvScanDesc scan = (NokvScanDesc) sscan;
	TsmRoutine *tsm = scanstate->tsmroutine;
	BlockNumber nblocks = (BlockNumber) (tam_relation_size(sscan->rs_rd, MAIN_FORKNUM) / BLCKSZ);
	BlockNumber block;

	if (tsm->NextSampleBlock)
		block = tsm->NextSampleBlock(scanstate, nblocks);
	else
	{
		block = scan->sample_next < nblocks ? scan->sample_next++ : InvalidBlockNumber;
		if (block == InvalidBlockNumber)
			scan->sample_next = 0;	/* for a rescan */
	}
	if (!BlockNumberIsValid(block))
		return false;
	load_block(scan, block, NULL, 0);
	return true;
}

bool
tam_scan_sample_next_tuple(TableScanDesc sscan, struct SampleScanState *scanstate,
						   TupleTableSlot *slot)
{
	NokvScanDesc scan = (NokvScanDesc) sscan;
	TsmRoutine *tsm = scanstate->tsmroutine;

	for (;;)
	{
		OffsetNumber off = tsm->NextSampleTuple(scanstate, scan->block, ROWS_PER_BLOCK);

		if (!OffsetNumberIsValid(off))
		{
			ExecClearTuple(slot);
			return false;
		}
		/* the batch is in offset order and the sampler asks in increasing order */
		while (scan->ibatch < scan->nbatch && scan->batch_off[scan->ibatch] < off)
			scan->ibatch++;
		if (scan->ibatch < scan->nbatch && scan->batch_off[scan->ibatch] == off)
		{
			batch_store(scan, scan->ibatch++, slot);
			return true;
		}
	}
}
