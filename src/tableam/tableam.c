/*-------------------------------------------------------------------------
 *
 * tableam.c
 *	  The nokv table access method: scans, index fetches, inserts,
 *	  updates, deletes and row locks.
 *
 * Rows live in the engine (rowstore.h); this file speaks the executor's
 * protocol, modelled on heapam_handler.c.  Every row version has its own
 * TID, so AFTER triggers refetching OLD and NEW by TID, unique checks and
 * EvalPlanQual's chain following work as on heap.  Concurrent writers of
 * a row are serialized by a striped LWLock held only while the row's
 * markers are read and the new marker appended; a writer that finds a
 * conflicting running transaction queues on the heavyweight tuple lock
 * (as heap does), waits for that transaction's xid and looks again, so
 * the deadlock detector sees every wait, heap rows and nokv rows alike.
 *
 * DDL-level callbacks are in tam_ddl.c; vacuum, analyze, index builds,
 * sampling and bitmap scans in tam_maint.c.
 *
 * src/tableam/tableam.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/predicate.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "tam.h"

PG_FUNCTION_INFO_V1(nokv_tableam_handler);

/* heap's tupleLockExtraInfo: the heavyweight lock queueing for each mode */
static const LOCKMODE tuple_hwlock[] = {
	[LockTupleKeyShare] = AccessShareLock,
	[LockTupleShare] = RowShareLock,
	[LockTupleNoKeyExclusive] = ExclusiveLock,
	[LockTupleExclusive] = AccessExclusiveLock,
};

/* ---------- slots ---------- */

static const TupleTableSlotOps *
nokv_slot_callbacks(Relation rel)
{
	/* a HeapTuple carries xmin for the triggers that read it */
	return &TTSOpsHeapTuple;
}

void
tam_store_row(RowState *rs, Relation rel, uint64 rowid, TupleTableSlot *slot)
{
	/* the slot frees the tuple: it must live as long as the slot may */
	MemoryContext old = MemoryContextSwitchTo(slot->tts_mcxt);
	HeapTuple	tup = rowstate_heap_tuple(rs, rel, rowid);

	MemoryContextSwitchTo(old);
	ExecStoreHeapTuple(tup, slot, true);
	slot->tts_tableOid = RelationGetRelid(rel);
}

/* ---------- SERIALIZABLE ---------- */

/* heap's HeapCheckForSerializableConflictOut */
void
tam_conflict_out(Relation rel, RowState *rs, bool visible, Snapshot snapshot)
{
	TransactionId xid;

	if (!CheckForSerializableConflictOutNeeded(rel, snapshot))
		return;
	if (visible)
	{
		RowMarker  *m = rowstate_mod_marker(rs);

		if (m == NULL)
			return;
		xid = m->xid;
	}
	else
	{
		if (rs->xmin == FrozenTransactionId)
			return;
		xid = rs->xmin;
		if (!TransactionIdIsInProgress(xid) && !TransactionIdDidCommit(xid))
			return;
	}
	if (TransactionIdIsCurrentTransactionId(xid))
		return;
	CheckForSerializableConflictOut(rel, xid, snapshot);
}

/* ---------- sequential and TID-range scans ---------- */

static NokvScanDesc
scan_begin_common(Relation rel, Snapshot snapshot, int nkeys,
				  ParallelTableScanDesc pscan, uint32 flags)
{
	NokvScanDesc scan = palloc0(sizeof(NokvScanDescData));

	RelationIncrementReferenceCount(rel);
	scan->base.rs_rd = rel;
	scan->base.rs_snapshot = snapshot;
	scan->base.rs_nkeys = nkeys;
	scan->base.rs_flags = flags;
	scan->base.rs_parallel = pscan;
	scan->tableid = rows_tableid(rel);
	scan->lo_rowid = 0;
	scan->hi_rowid = PG_UINT64_MAX;
	scan->block = InvalidBlockNumber;
	rowiter_begin(&scan->ri, scan->tableid, true);
	return scan;
}

static TableScanDesc
nokv_scan_begin(Relation rel, Snapshot snapshot, int nkeys, struct ScanKeyData *key,
				ParallelTableScanDesc pscan, uint32 flags)
{
	NokvScanDesc scan;

	if (nkeys > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("scan keys are not supported on nokv tables")));
	scan = scan_begin_common(rel, snapshot, nkeys, pscan, flags);
	if (pscan != NULL)
	{
		ParallelBlockTableScanDesc bpscan = (ParallelBlockTableScanDesc) pscan;

		scan->pworker = palloc0(sizeof(ParallelBlockTableScanWorkerData));
		table_block_parallelscan_startblock_init(rel, scan->pworker, bpscan);
	}
	if ((flags & SO_TYPE_SEQSCAN) && snapshot && IsMVCCSnapshot(snapshot))
		PredicateLockRelation(rel, snapshot);
	if (flags & SO_TYPE_SEQSCAN)
		pgstat_count_heap_scan(rel);
	return (TableScanDesc) scan;
}

static void
nokv_scan_end(TableScanDesc sscan)
{
	NokvScanDesc scan = (NokvScanDesc) sscan;

	rowiter_end(&scan->ri);
	if (scan->batchcxt)
		MemoryContextDelete(scan->batchcxt);
	if (sscan->rs_flags & SO_TEMP_SNAPSHOT)
		UnregisterSnapshot(sscan->rs_snapshot);
	RelationDecrementReferenceCount(sscan->rs_rd);
	pfree(scan);
}

static void
nokv_scan_rescan(TableScanDesc sscan, struct ScanKeyData *key, bool set_params,
				 bool allow_strat, bool allow_sync, bool allow_pagemode)
{
	NokvScanDesc scan = (NokvScanDesc) sscan;

	scan->ri.pos = -1;
	scan->block = InvalidBlockNumber;
	scan->nbatch = scan->ibatch = 0;
	if (sscan->rs_parallel != NULL)
		table_block_parallelscan_startblock_init(sscan->rs_rd, scan->pworker,
												 (ParallelBlockTableScanDesc) sscan->rs_parallel);
}

/* the next row of a parallel scan: blocks are claimed one at a time */
static bool
parallel_next_row(NokvScanDesc scan)
{
	ParallelBlockTableScanDesc bpscan = (ParallelBlockTableScanDesc) scan->base.rs_parallel;

	for (;;)
	{
		if (scan->block != InvalidBlockNumber &&
			rowiter_step(&scan->ri, ForwardScanDirection) &&
			scan->ri.rowid < (uint64) (scan->block + 1) * ROWS_PER_BLOCK)
			return true;
		scan->block = table_block_parallelscan_nextpage(scan->base.rs_rd, scan->pworker, bpscan);
		if (scan->block == InvalidBlockNumber)
			return false;
		rowiter_seek(&scan->ri, (uint64) scan->block * ROWS_PER_BLOCK);
	}
}

/* the next row in the scan's range, whatever its visibility */
bool
tam_next_row(NokvScanDesc scan, ScanDirection dir)
{
	for (;;)
	{
		if (scan->base.rs_parallel != NULL)
		{
			if (!parallel_next_row(scan))
				return false;
		}
		else if (!rowiter_step(&scan->ri, dir))
			return false;
		if (scan->ri.rowid < scan->lo_rowid)
		{
			if (ScanDirectionIsBackward(dir))
				return false;
			continue;
		}
		if (scan->ri.rowid >= scan->hi_rowid)
		{
			if (ScanDirectionIsBackward(dir))
				continue;
			return false;
		}
		return true;
	}
}

bool
tam_next_visible(NokvScanDesc scan, ScanDirection dir, TupleTableSlot *slot)
{
	Relation	rel = scan->base.rs_rd;
	Snapshot	snapshot = scan->base.rs_snapshot;

	while (tam_next_row(scan, dir))
	{
		bool		visible = rowstate_visible(&scan->ri.rs, snapshot);

		tam_conflict_out(rel, &scan->ri.rs, visible, snapshot);
		if (!visible)
			continue;
		tam_store_row(&scan->ri.rs, rel, scan->ri.rowid, slot);
		pgstat_count_heap_getnext(rel);
		return true;
	}
	ExecClearTuple(slot);
	return false;
}

static bool
nokv_scan_getnextslot(TableScanDesc sscan, ScanDirection direction, TupleTableSlot *slot)
{
	NokvScanDesc scan = (NokvScanDesc) sscan;

	/* a range scan starts at its lower bound, not the table's first row */
	if (scan->ri.pos == -1 && scan->lo_rowid > 0 && ScanDirectionIsForward(direction))
		rowiter_seek(&scan->ri, scan->lo_rowid);
	return tam_next_visible(scan, direction, slot);
}

static void
nokv_scan_set_tidrange(TableScanDesc sscan, ItemPointer mintid, ItemPointer maxtid)
{
	NokvScanDesc scan = (NokvScanDesc) sscan;
	uint64		lo = (uint64) ItemPointerGetBlockNumberNoCheck(mintid) * ROWS_PER_BLOCK;
	uint64		hi = (uint64) ItemPointerGetBlockNumberNoCheck(maxtid) * ROWS_PER_BLOCK;
	OffsetNumber loff = ItemPointerGetOffsetNumberNoCheck(mintid);
	OffsetNumber hoff = ItemPointerGetOffsetNumberNoCheck(maxtid);

	/* offsets outside a block's row ids clamp to its first or past its last */
	lo += loff < 1 ? 0 : Min(loff - 1, ROWS_PER_BLOCK);
	hi += hoff < 1 ? 0 : Min(hoff, ROWS_PER_BLOCK);
	scan->lo_rowid = lo;
	scan->hi_rowid = hi;
	scan->ri.pos = -1;
}

static bool
nokv_scan_getnextslot_tidrange(TableScanDesc sscan, ScanDirection direction,
							   TupleTableSlot *slot)
{
	return nokv_scan_getnextslot(sscan, direction, slot);
}

/* ---------- parallel scans: PostgreSQL's block-based helpers ---------- */

static Size
nokv_parallelscan_estimate(Relation rel)
{
	return table_block_parallelscan_estimate(rel);
}

static Size
nokv_parallelscan_initialize(Relation rel, ParallelTableScanDesc pscan)
{
	return table_block_parallelscan_initialize(rel, pscan);
}

static void
nokv_parallelscan_reinitialize(Relation rel, ParallelTableScanDesc pscan)
{
	table_block_parallelscan_reinitialize(rel, pscan);
}

/* ---------- index fetches ---------- */

/*
 * A fetch is a point read, through the engine's bloom filters.  But index
 * scans often fetch rows in rising row-id order (a range of a key that grew
 * with the table): once a fetch lands just above the previous one, an MVCC
 * fetch opens an engine iterator and from then on steps forward to nearby
 * row ids instead of looking each one up from scratch.  The iterator sees
 * the engine as of its creation, after the snapshot was taken, so it
 * misses nothing the snapshot could see.
 */
#define FETCH_STEP_LIMIT 16
/* the row ids an index-fetch iterator covers: a window, rebuilt past its end */
#define FETCH_WINDOW (64 * ROWS_PER_BLOCK)

typedef struct NokvIndexFetch
{
	IndexFetchTableData base;
	uint64		tableid;
	RowState	rs;
	bool		have_last;
	uint64		last_rowid;		/* the previous fetch's row id */
	bool		iter_open;
	uint64		iter_start;		/* the iterator's window of row ids */
	uint64		iter_end;		/* (exclusive) */
	RowIter		ri;
} NokvIndexFetch;

/* the next row id is a short step forward from the last one */
static inline bool
fetch_steps_forward(uint64 from, uint64 to)
{
	return to > from && to - from <= FETCH_STEP_LIMIT;
}

static IndexFetchTableData *
nokv_index_fetch_begin(Relation rel)
{
	NokvIndexFetch *f = palloc0(sizeof(NokvIndexFetch));

	f->base.rel = rel;
	f->tableid = rows_tableid(rel);
	rowstate_init(&f->rs, true);
	return &f->base;
}

static void
nokv_index_fetch_reset(IndexFetchTableData *scan)
{
}

static void
nokv_index_fetch_end(IndexFetchTableData *scan)
{
	NokvIndexFetch *f = (NokvIndexFetch *) scan;

	if (f->iter_open)
		rowiter_end(&f->ri);

	rowstate_reset(&f->rs);
	if (f->rs.markers)
		pfree(f->rs.markers);
	pfree(f);
}

/* nothing at this row id can ever be seen again */
bool
tam_row_dead_to_all(Relation rel, RowState *rs)
{
	RowMarker  *m;

	if (!rs->found)
		return true;
	if (rs->xmin != FrozenTransactionId && !TransactionIdIsCurrentTransactionId(rs->xmin) &&
		!TransactionIdIsInProgress(rs->xmin) && !TransactionIdDidCommit(rs->xmin))
		return true;
	m = rowstate_mod_marker(rs);
	if (m == NULL || TransactionIdIsCurrentTransactionId(m->xid) ||
		TransactionIdIsInProgress(m->xid) || !TransactionIdDidCommit(m->xid))
		return false;
	return GlobalVisTestIsRemovableXid(GlobalVisTestFor(rel), m->xid);
}

static bool
nokv_index_fetch_tuple(IndexFetchTableData *scan, ItemPointer tid, Snapshot snapshot,
					   TupleTableSlot *slot, bool *call_again, bool *all_dead)
{
	NokvIndexFetch *f = (NokvIndexFetch *) scan;
	Relation	rel = scan->rel;
	uint64		rowid;
	bool		visible;
	bool		found;
	RowState   *rs;

	*call_again = false;
	if (all_dead)
		*all_dead = false;
	if (!tid_is_row(tid))
		return false;
	rowid = rowid_from_tid(tid);
	if (snapshot->snapshot_type == SNAPSHOT_MVCC &&
		((f->iter_open && f->ri.pos == 0 && fetch_steps_forward(f->ri.rowid, rowid)) ||
		 (f->have_last && fetch_steps_forward(f->last_rowid, rowid))))
	{
		/* the iterator sees only its window: outside it, start another */
		if (f->iter_open && (rowid < f->iter_start || rowid >= f->iter_end))
		{
			rowiter_end(&f->ri);
			if (f->ri.rs.markers)
				pfree(f->ri.rs.markers);
			f->iter_open = false;
		}
		if (!f->iter_open)
		{
			f->iter_start = rowid;
			f->iter_end = rowid + FETCH_WINDOW;
			rowiter_begin_range(&f->ri, f->tableid, f->iter_start, f->iter_end, true);
			f->iter_open = true;
		}
		if (f->ri.pos != 0 || !fetch_steps_forward(f->ri.rowid, rowid))
			rowiter_seek(&f->ri, rowid);
		while ((f->ri.pos != 0 || f->ri.rowid < rowid) &&
			   rowiter_step(&f->ri, ForwardScanDirection))
		{
			if (f->ri.rowid >= rowid)
				break;
		}
		rs = &f->ri.rs;
		found = f->ri.pos == 0 && f->ri.rowid == rowid;
		/*
		 * Not there: make sure with a point read before the index entry
		 * may be reported dead (and killed).  Rare: only rows vacuum has
		 * not yet taken out of the index.
		 */
		if (!found)
		{
			rs = &f->rs;
			found = rowstate_read(nokv_engine(), f->tableid, rowid, rs);
		}
	}
	else
	{
		rs = &f->rs;
		found = rowstate_read(nokv_engine(), f->tableid, rowid, rs);
	}
	f->have_last = true;
	f->last_rowid = rowid;
	if (!found)
	{
		if (all_dead)
			*all_dead = true;
		return false;
	}
	visible = rowstate_visible(rs, snapshot);
	tam_conflict_out(rel, rs, visible, snapshot);
	if (!visible)
	{
		if (all_dead && IsMVCCSnapshot(snapshot))
			*all_dead = tam_row_dead_to_all(rel, rs);
		return false;
	}
	if (IsMVCCSnapshot(snapshot))
		PredicateLockTID(rel, tid, snapshot, rs->xmin);
	tam_store_row(rs, rel, rowid, slot);
	pgstat_count_heap_fetch(rel);
	return true;
}

/* ---------- non-modifying tuple callbacks ---------- */

static bool
nokv_tuple_fetch_row_version(Relation rel, ItemPointer tid, Snapshot snapshot,
							 TupleTableSlot *slot)
{
	RowState	rs;
	uint64		rowid;
	bool		visible;

	if (!tid_is_row(tid))
		return false;
	rowid = rowid_from_tid(tid);
	rowstate_init(&rs, true);
	if (!rowstate_read(nokv_engine(), rows_tableid(rel), rowid, &rs))
		return false;
	visible = rowstate_visible(&rs, snapshot);
	if (visible)
	{
		if (IsMVCCSnapshot(snapshot))
			PredicateLockTID(rel, tid, snapshot, rs.xmin);
		tam_store_row(&rs, rel, rowid, slot);
	}
	rowstate_reset(&rs);
	return visible;
}

static bool
nokv_tuple_tid_valid(TableScanDesc sscan, ItemPointer tid)
{
	return tid_is_row(tid) && rowid_from_tid(tid) < rows_high_water(sscan->rs_rd);
}

/* follow update markers to the newest version the scan's snapshot sees */
static void
nokv_tuple_get_latest_tid(TableScanDesc sscan, ItemPointer tid)
{
	NokvScanDesc scan = (NokvScanDesc) sscan;
	RowState	rs;
	uint64		rowid = rowid_from_tid(tid);

	rowstate_init(&rs, false);
	for (int hops = 0; hops < 1000000; hops++)
	{
		RowMarker  *m;

		if (!rowstate_read(nokv_engine(), scan->tableid, rowid, &rs))
			break;
		if (rowstate_visible(&rs, sscan->rs_snapshot))
			tid_from_rowid(tid, rowid);
		m = rowstate_mod_marker(&rs);
		if (m == NULL || !(m->flags & ROW_VH_UPDATE) ||
			(!TransactionIdIsCurrentTransactionId(m->xid) && !TransactionIdDidCommit(m->xid)))
			break;
		rowid = m->forward;
	}
	rowstate_reset(&rs);
}

static bool
nokv_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot, Snapshot snapshot)
{
	RowState	rs;
	bool		visible;

	if (!ItemPointerIsValid(&slot->tts_tid) || !tid_is_row(&slot->tts_tid))
		return false;
	rowstate_init(&rs, false);
	(void) rowstate_read(nokv_engine(), rows_tableid(rel), rowid_from_tid(&slot->tts_tid), &rs);
	visible = rowstate_visible(&rs, snapshot);
	rowstate_reset(&rs);
	return visible;
}

/* ---------- inserts ---------- */

/*
 * Inserts form each row in one buffer kept by the backend instead of a
 * palloc'd tuple per row: the batch copies the row anyway.  Rows longer
 * than the buffer are palloc'd.
 */
#define ROW_SCRATCH_SIZE 8192
static MinimalTuple row_scratch = NULL;

/* heap_form_minimal_tuple, into the scratch buffer when the row fits */
static MinimalTuple
form_minimal_tuple(TupleDesc desc, Datum *values, bool *isnull)
{
	MinimalTuple mt;
	bool		hasnull = false;
	Size		hoff;
	Size		data_len;
	Size		len;

	for (int i = 0; i < desc->natts && !hasnull; i++)
		hasnull = isnull[i];
	len = SizeofMinimalTupleHeader;
	if (hasnull)
		len += BITMAPLEN(desc->natts);
	hoff = len = MAXALIGN(len);
	data_len = heap_compute_data_size(desc, values, isnull);
	len += data_len;
	if (len > ROW_SCRATCH_SIZE || desc->natts > MaxTupleAttributeNumber)
		return heap_form_minimal_tuple(desc, values, isnull);
	if (row_scratch == NULL)
		row_scratch = MemoryContextAlloc(TopMemoryContext, ROW_SCRATCH_SIZE);
	mt = row_scratch;
	/* zeroed like palloc0: alignment padding must not carry old bytes */
	memset(mt, 0, len);
	mt->t_len = len;
	HeapTupleHeaderSetNatts(mt, desc->natts);
	mt->t_hoff = hoff + MINIMAL_TUPLE_OFFSET;
	heap_fill_tuple(desc, values, isnull, (char *) mt + hoff, data_len, &mt->t_infomask,
					hasnull ? mt->t_bits : NULL);
	return mt;
}

/*
 * The tuple the slot already holds formed, if it can be stored as it is:
 * COPY materializes every row it buffers and INSERT copies the plan's row
 * into the table's slot by forming one, so the row is usually formed once
 * before we see it.  A MinimalTuple is the same bytes from
 * MINIMAL_TUPLE_OFFSET on, so those go into the row as they are
 * (row_put_formed; minimal_from_formed where a copy is wanted) instead of
 * deforming the tuple and forming it again.  Not when it holds TOAST
 * pointers (form_row fetches them) or fewer attributes than the relation
 * (form_row fills in the missing ones).
 */
static HeapTuple
slot_formed_tuple(Relation rel, TupleTableSlot *slot)
{
	HeapTuple	tuple;

	if (!TTS_IS_HEAPTUPLE(slot) || TTS_EMPTY(slot))
		return NULL;
	tuple = ((HeapTupleTableSlot *) slot)->tuple;
	if (tuple == NULL || HeapTupleHasExternal(tuple) ||
		HeapTupleHeaderGetNatts(tuple->t_data) != RelationGetDescr(rel)->natts)
		return NULL;
	return tuple;
}

static MinimalTuple
minimal_from_formed(HeapTuple tuple, bool scratch)
{
	uint32		len = tuple->t_len - MINIMAL_TUPLE_OFFSET;
	MinimalTuple mt;

	if (scratch && len <= ROW_SCRATCH_SIZE)
	{
		if (row_scratch == NULL)
			row_scratch = MemoryContextAlloc(TopMemoryContext, ROW_SCRATCH_SIZE);
		mt = row_scratch;
	}
	else
		mt = palloc(len);
	row_minimal_header((char *) mt, tuple);
	memcpy(mt->t_bits, tuple->t_data->t_bits, len - offsetof(MinimalTupleData, t_bits));
	return mt;
}

static void
free_row(MinimalTuple mt)
{
	if (mt != row_scratch)
		pfree(mt);
}

/*
 * The row as a MinimalTuple, with values of other relations' TOAST fetched.
 * With scratch, it may be the backend's scratch buffer, valid until the
 * next call; free it with free_row.
 */
static MinimalTuple
form_row(Relation rel, TupleTableSlot *slot, bool scratch)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *values;
	bool	   *isnull;
	MinimalTuple mt;
	bool		external = false;
	HeapTuple	formed = slot_formed_tuple(rel, slot);

	if (formed != NULL)
	{
		mt = minimal_from_formed(formed, scratch);
		nokv_kv_check_value_size(ROW_KEY_LEN, mt->t_len + NOKV_VH_SIZE);
		return mt;
	}
	slot_getallattrs(slot);
	for (int i = 0; i < desc->natts && !external; i++)
		external = !slot->tts_isnull[i] && TupleDescAttr(desc, i)->attlen == -1 &&
			VARATT_IS_EXTERNAL(DatumGetPointer(slot->tts_values[i]));
	if (!external)
		mt = scratch ? form_minimal_tuple(desc, slot->tts_values, slot->tts_isnull)
			: heap_form_minimal_tuple(desc, slot->tts_values, slot->tts_isnull);
	else
	{
		values = palloc(sizeof(Datum) * desc->natts);
		isnull = palloc(sizeof(bool) * desc->natts);
		for (int i = 0; i < desc->natts; i++)
		{
			values[i] = slot->tts_values[i];
			isnull[i] = slot->tts_isnull[i];
			if (!isnull[i] && TupleDescAttr(desc, i)->attlen == -1 &&
				VARATT_IS_EXTERNAL(DatumGetPointer(values[i])))
				values[i] = PointerGetDatum(detoast_external_attr((struct varlena *)
																  DatumGetPointer(values[i])));
		}
		mt = heap_form_minimal_tuple(desc, values, isnull);
		pfree(values);
		pfree(isnull);
	}
	nokv_kv_check_value_size(ROW_KEY_LEN, mt->t_len + NOKV_VH_SIZE);
	return mt;
}

/*
 * put a new row: the slot's formed tuple as it is, or the row form_row made.
 * vh (the version header) and max_value (nokv_kv_max_value_size of a row
 * key) are worked out once per call of the AM, not once per row.
 */
static void
put_row(nokv_batch *b, const char *key, CommandId cid, const char *vh, size_t max_value,
		HeapTuple formed, MinimalTuple mt)
{
	if (formed != NULL)
	{
		size_t		vlen = formed->t_len - MINIMAL_TUPLE_OFFSET + NOKV_VH_SIZE;

		if (vlen > max_value)
			nokv_kv_check_value_size(ROW_KEY_LEN, vlen);	/* raises the error */
		row_put_formed(b, key, vh, formed);
	}
	else
		row_put_data(b, key, cid, mt);
}

static void
batch_put(nokv_batch *b, const char *key, StringInfo val)
{
	if (nokv_batch_put(b, ROW_CF, key, ROW_KEY_LEN, val->data, val->len) != NOKV_OK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("nokv row of %d bytes is too large", val->len)));
}

static void
nokv_tuple_insert(Relation rel, TupleTableSlot *slot, CommandId cid, int options,
				  struct BulkInsertStateData *bistate)
{
	uint64		tableid = rows_tableid(rel);
	MinimalTuple mt;
	char		key[ROW_KEY_LEN];
	uint64		rowid;
	nokv_batch *b;
	HeapTuple	formed;
	char		vh[NOKV_VH_SIZE];

	nokv_mvcc_prepare_write();
	formed = slot_formed_tuple(rel, slot);
	mt = formed ? NULL : form_row(rel, slot, true);
	CheckForSerializableConflictIn(rel, NULL, InvalidBlockNumber);
	nokv_vh_encode(vh, 0, GetCurrentFullTransactionId(), cid);

	/*
	 * The id is taken under the engine's current memtable; if the write
	 * finds that memtable replaced (another backend's write, or this one,
	 * filled it), the row goes in again under a new id (see
	 * rows_write_batch_at).
	 */
	for (;;)
	{
		uint64		epoch;

		rowid = rows_allocate_at(rel, 1, &epoch);
		row_key(key, tableid, rowid);
		b = rows_new_batch();
		PG_TRY();
		{
			put_row(b, key, cid, vh, nokv_kv_max_value_size(ROW_KEY_LEN), formed, mt);
		}
		PG_CATCH();
		{
			nokv_batch_free(b);
			PG_RE_THROW();
		}
		PG_END_TRY();
		if (rows_write_batch_at(b, epoch))
			break;
	}
	if (mt != NULL)
		free_row(mt);
	tid_from_rowid(&slot->tts_tid, rowid);
	slot->tts_tableOid = RelationGetRelid(rel);
	pgstat_count_heap_insert(rel, 1);
}

static void
nokv_multi_insert(Relation rel, TupleTableSlot **slots, int nslots, CommandId cid,
				  int options, struct BulkInsertStateData *bistate)
{
	uint64		tableid = rows_tableid(rel);
	size_t		limit = (size_t) nokv_memtable_size_kb * 1024 / 8;
	size_t		max_value = nokv_kv_max_value_size(ROW_KEY_LEN);
	size_t		batched = 0;	/* about the bytes of b */
	uint64		rowid;
	nokv_batch *volatile b;
	char		vh[NOKV_VH_SIZE];

	if (nslots <= 0)
		return;
	nokv_mvcc_prepare_write();
	CheckForSerializableConflictIn(rel, NULL, InvalidBlockNumber);
	nokv_vh_encode(vh, 0, GetCurrentFullTransactionId(), cid);
	rowid = rows_allocate(rel, nslots);
	b = rows_new_batch();
	PG_TRY();
	{
		for (int i = 0; i < nslots; i++)
		{
			HeapTuple	formed = slot_formed_tuple(rel, slots[i]);
			MinimalTuple mt = formed ? NULL : form_row(rel, slots[i], true);
			uint32		len = formed ? formed->t_len - MINIMAL_TUPLE_OFFSET : mt->t_len;
			char		key[ROW_KEY_LEN];

			row_key(key, tableid, rowid + i);
			/* keep each WAL record well inside a memtable */
			if (batched > 0 && batched + len > limit)
			{
				nokv_batch *full = b;

				b = NULL;
				rows_write_batch(full);
				b = rows_new_batch();
				batched = 0;
			}
			put_row(b, key, cid, vh, max_value, formed, mt);
			batched += ROW_KEY_LEN + NOKV_VH_SIZE + len;
			if (mt != NULL)
				free_row(mt);
			tid_from_rowid(&slots[i]->tts_tid, rowid + i);
			slots[i]->tts_tableOid = RelationGetRelid(rel);
		}
	}
	PG_CATCH();
	{
		if (b != NULL)
			nokv_batch_free(b);
		PG_RE_THROW();
	}
	PG_END_TRY();
	rows_write_batch(b);
	pgstat_count_heap_insert(rel, nslots);
}

static void
nokv_tuple_insert_speculative(Relation rel, TupleTableSlot *slot, CommandId cid,
							  int options, struct BulkInsertStateData *bistate,
							  uint32 specToken)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("INSERT ... ON CONFLICT is not supported on nokv table \"%s\"",
					RelationGetRelationName(rel)),
			 errhint("Check for the row first, or catch the unique violation.")));
}

static void
nokv_tuple_complete_speculative(Relation rel, TupleTableSlot *slot, uint32 specToken,
								bool succeeded)
{
	elog(ERROR, "nokv tables do not take speculative insertions");
}

static void
nokv_finish_bulk_insert(Relation rel, int options)
{
}

/* ---------- the writer protocol: deletes, updates and row locks ---------- */

static bool
modes_conflict(LockTupleMode held, LockTupleMode wanted)
{
	static const bool conflicts[4][4] = {
		/* KeyShare, Share, NoKeyExclusive, Exclusive */
		{false, false, false, true},
		{false, false, true, true},
		{false, true, true, true},
		{true, true, true, true},
	};

	return conflicts[held][wanted];
}

static LockTupleMode
marker_mode(const RowMarker *m)
{
	if (m->flags & ROW_VH_LOCK)
		return (LockTupleMode) m->mode;
	if ((m->flags & ROW_VH_UPDATE) && !(m->flags & ROW_VH_KEYMOD))
		return LockTupleNoKeyExclusive;
	return LockTupleExclusive;
}

static void
marker_ctid(const RowMarker *m, uint64 rowid, ItemPointer ctid)
{
	if (m->flags & ROW_VH_MOVED)
		ItemPointerSetMovedPartitions(ctid);
	else if (m->flags & ROW_VH_UPDATE)
		tid_from_rowid(ctid, m->forward);
	else
		tid_from_rowid(ctid, rowid);
}

typedef struct RowClaim
{
	Relation	rel;
	uint64		tableid;
	uint64		rowid;
	ItemPointerData tid;
	bool		have_tuple_lock;
	LockTupleMode tuple_lock_mode;
	bool		row_locked;		/* the row's stripe LWLock */
	RowMarker  *updater;		/* a running compatible updater (lock only) */
	bool		own_lock_enough;	/* we already hold at least the mode */
} RowClaim;

static void
claim_release(RowClaim *c)
{
	if (c->row_locked)
		rows_unlock_row(c->tableid, c->rowid);
	c->row_locked = false;
	if (c->have_tuple_lock)
		UnlockTuple(c->rel, &c->tid, tuple_hwlock[c->tuple_lock_mode]);
	c->have_tuple_lock = false;
}

/*
 * Find whether the current transaction may take row rowid in mode, waiting
 * for conflicting transactions as wait_policy says.  On TM_Ok the row's
 * stripe lock is held and rs holds the row's state; the caller appends its
 * marker and calls claim_release.  Other results have released everything
 * but the heavyweight tuple lock (claim_release frees that too).
 */
static TM_Result
claim_row(RowClaim *c, RowState *rs, CommandId cid, Snapshot crosscheck,
		  LockTupleMode mode, LockWaitPolicy wait_policy, bool lock_only,
		  TM_FailureData *tmfd)
{
	for (;;)
	{
		TransactionId wait_xid = InvalidTransactionId;
		LockTupleMode own_mode = LockTupleKeyShare;
		bool		own_lock = false;

		c->updater = NULL;
		rows_lock_row(c->tableid, c->rowid);
		c->row_locked = true;
		if (!rowstate_read(nokv_engine(), c->tableid, c->rowid, rs))
		{
			rows_unlock_row(c->tableid, c->rowid);
			c->row_locked = false;
			return TM_Invisible;
		}
		if (rs->xmin != FrozenTransactionId)
		{
			if (TransactionIdIsCurrentTransactionId(rs->xmin))
			{
				if (rs->cmin >= cid && !lock_only)
				{
					rows_unlock_row(c->tableid, c->rowid);
					c->row_locked = false;
					return TM_Invisible;	/* inserted by a later command */
				}
			}
			else if (TransactionIdIsInProgress(rs->xmin))
				wait_xid = rs->xmin;
			else if (!TransactionIdDidCommit(rs->xmin))
			{
				rows_unlock_row(c->tableid, c->rowid);
				c->row_locked = false;
				return TM_Invisible;
			}
		}
		for (int i = 0; i < rs->nmarkers && !TransactionIdIsValid(wait_xid); i++)
		{
			RowMarker  *m = &rs->markers[i];
			bool		mine = TransactionIdIsCurrentTransactionId(m->xid);
			bool		running = !mine && TransactionIdIsInProgress(m->xid);

			if (m->flags & ROW_VH_LOCK)
			{
				if (mine)
				{
					own_lock = true;
					if (m->mode > own_mode)
						own_mode = m->mode;
				}
				else if (running && modes_conflict(marker_mode(m), mode))
					wait_xid = m->xid;
				continue;
			}
			if (!mine && !running && !TransactionIdDidCommit(m->xid))
				continue;		/* aborted */
			if (mine)
			{
				if (m->cid >= cid)
				{
					tmfd->xmax = m->xid;
					tmfd->cmax = m->cid;
					marker_ctid(m, c->rowid, &tmfd->ctid);
					tmfd->traversed = false;
					rows_unlock_row(c->tableid, c->rowid);
					c->row_locked = false;
					return TM_SelfModified;
				}
				rows_unlock_row(c->tableid, c->rowid);
				c->row_locked = false;
				return TM_Invisible;
			}
			if (running)
			{
				if (modes_conflict(marker_mode(m), mode))
					wait_xid = m->xid;
				else
					c->updater = m;
				break;
			}
			/* committed */
			tmfd->xmax = m->xid;
			tmfd->cmax = InvalidCommandId;
			marker_ctid(m, c->rowid, &tmfd->ctid);
			rows_unlock_row(c->tableid, c->rowid);
			c->row_locked = false;
			return (m->flags & ROW_VH_UPDATE) || (m->flags & ROW_VH_MOVED) ?
				TM_Updated : TM_Deleted;
		}

		if (!TransactionIdIsValid(wait_xid))
		{
			if (crosscheck != InvalidSnapshot && !rowstate_visible(rs, crosscheck))
			{
				/* heap's RI crosscheck under REPEATABLE READ */
				tmfd->xmax = InvalidTransactionId;
				tmfd->cmax = InvalidCommandId;
				tmfd->ctid = c->tid;
				rows_unlock_row(c->tableid, c->rowid);
				c->row_locked = false;
				return TM_Updated;
			}
			c->own_lock_enough = own_lock && own_mode >= mode;
			return TM_Ok;
		}

		/* wait for wait_xid, queueing on the tuple lock first as heap does */
		rows_unlock_row(c->tableid, c->rowid);
		c->row_locked = false;
		tmfd->xmax = wait_xid;
		tmfd->cmax = InvalidCommandId;
		tmfd->ctid = c->tid;
		switch (wait_policy)
		{
			case LockWaitBlock:
				if (!c->have_tuple_lock)
				{
					LockTuple(c->rel, &c->tid, tuple_hwlock[mode]);
					c->have_tuple_lock = true;
					c->tuple_lock_mode = mode;
				}
				XactLockTableWait(wait_xid, c->rel, &c->tid,
								  lock_only ? XLTW_Lock : XLTW_Update);
				break;
			case LockWaitSkip:
				return TM_WouldBlock;
			case LockWaitError:
				if (!c->have_tuple_lock)
				{
					if (!ConditionalLockTuple(c->rel, &c->tid, tuple_hwlock[mode]))
						ereport(ERROR,
								(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
								 errmsg("could not obtain lock on row in relation \"%s\"",
										RelationGetRelationName(c->rel))));
					c->have_tuple_lock = true;
					c->tuple_lock_mode = mode;
				}
				if (!ConditionalXactLockTableWait(wait_xid))
					ereport(ERROR,
							(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
							 errmsg("could not obtain lock on row in relation \"%s\"",
									RelationGetRelationName(c->rel))));
				break;
		}
	}
}

static void
claim_init(RowClaim *c, Relation rel, ItemPointer tid)
{
	if (!tid_is_row(tid))
		elog(ERROR, "invalid nokv row TID (%u,%u)",
			 ItemPointerGetBlockNumberNoCheck(tid), ItemPointerGetOffsetNumberNoCheck(tid));
	memset(c, 0, sizeof(RowClaim));
	c->rel = rel;
	c->tableid = rows_tableid(rel);
	c->rowid = rowid_from_tid(tid);
	c->tid = *tid;
}

static TM_Result
nokv_tuple_delete(Relation rel, ItemPointer tid, CommandId cid, Snapshot snapshot,
				  Snapshot crosscheck, bool wait, TM_FailureData *tmfd, bool changingPart)
{
	RowClaim	c;
	RowState	rs;
	TM_Result	result;

	nokv_mvcc_prepare_write();
	claim_init(&c, rel, tid);
	rowstate_init(&rs, false);
	PG_TRY();
	{
		result = claim_row(&c, &rs, cid, crosscheck, LockTupleExclusive,
						   wait ? LockWaitBlock : LockWaitSkip, false, tmfd);
		if (result == TM_WouldBlock)
			result = TM_BeingModified;
		if (result == TM_Ok)
		{
			nokv_batch *b = rows_new_batch();
			StringInfoData val;
			char		key[ROW_KEY_LEN];

			CheckForSerializableConflictIn(rel, tid, ItemPointerGetBlockNumber(tid));
			initStringInfo(&val);
			row_encode_marker(&val, NOKV_VH_DELETED | (changingPart ? ROW_VH_MOVED : 0),
							  GetCurrentFullTransactionId(), cid, 0, 0);
			row_key(key, c.tableid, c.rowid);
			batch_put(b, key, &val);
			rows_write_batch(b);
			pfree(val.data);
			pgstat_count_heap_delete(rel);
		}
	}
	PG_FINALLY();
	{
		claim_release(&c);
	}
	PG_END_TRY();
	rowstate_reset(&rs);
	return result;
}

/* did any column of the table's keys (unique indexes, FKs) change */
static bool
key_columns_changed(Relation rel, RowState *old, TupleTableSlot *newslot)
{
	Bitmapset  *keys = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_KEY);
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	oldtup;
	int			attr = -1;
	bool		changed = false;

	if (keys == NULL)
		return false;
	oldtup = rowstate_tuple_copy(old);
	slot_getallattrs(newslot);
	while (!changed && (attr = bms_next_member(keys, attr)) >= 0)
	{
		AttrNumber attno = attr + FirstLowInvalidHeapAttributeNumber;
		Form_pg_attribute att;
		bool		oldnull;
		Datum		oldval;

		if (attno <= 0 || attno > desc->natts)
			continue;
		att = TupleDescAttr(desc, attno - 1);
		oldval = heap_getattr(oldtup, attno, desc, &oldnull);
		if (oldnull != newslot->tts_isnull[attno - 1])
			changed = true;
		else if (!oldnull &&
				 !datumIsEqual(oldval, newslot->tts_values[attno - 1], att->attbyval, att->attlen))
			changed = true;
	}
	heap_freetuple(oldtup);
	bms_free(keys);
	return changed;
}

static TM_Result
nokv_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot, CommandId cid,
				  Snapshot snapshot, Snapshot crosscheck, bool wait,
				  TM_FailureData *tmfd, LockTupleMode *lockmode, bool *update_indexes)
{
	RowClaim	c;
	RowState	rs;
	TM_Result	result;
	MinimalTuple mt;
	bool		keymod;

	nokv_mvcc_prepare_write();
	mt = form_row(rel, slot, false);
	claim_init(&c, rel, otid);
	rowstate_init(&rs, true);
	*update_indexes = false;
	PG_TRY();
	{
		/*
		 * A row id's data version never changes, so the claim's own read
		 * tells whether key columns change; only then is the stronger mode
		 * claimed, which waits for running key-share lockers too.
		 */
		*lockmode = LockTupleNoKeyExclusive;
		result = claim_row(&c, &rs, cid, crosscheck, *lockmode,
						   wait ? LockWaitBlock : LockWaitSkip, false, tmfd);
		keymod = result == TM_Ok && key_columns_changed(rel, &rs, slot);
		if (keymod)
		{
			*lockmode = LockTupleExclusive;
			rows_unlock_row(c.tableid, c.rowid);
			c.row_locked = false;
			result = claim_row(&c, &rs, cid, crosscheck, *lockmode,
							   wait ? LockWaitBlock : LockWaitSkip, false, tmfd);
		}
		if (result == TM_WouldBlock)
			result = TM_BeingModified;
		if (result == TM_Ok)
		{
			nokv_batch *b = rows_new_batch();
			StringInfoData val;
			char		key[ROW_KEY_LEN];
			uint64		newrow;
			FullTransactionId me = GetCurrentFullTransactionId();

			CheckForSerializableConflictIn(rel, otid, ItemPointerGetBlockNumber(otid));
			newrow = rows_allocate(rel, 1);
			initStringInfo(&val);
			row_encode_marker(&val, NOKV_VH_DELETED | ROW_VH_UPDATE | (keymod ? ROW_VH_KEYMOD : 0),
							  me, cid, 0, newrow);
			row_key(key, c.tableid, c.rowid);
			batch_put(b, key, &val);

			resetStringInfo(&val);
			row_encode_data(&val, cid, mt);
			row_key(key, c.tableid, newrow);
			batch_put(b, key, &val);

			rows_write_batch(b);

			/*
			 * Running key-share lockers (FK checks) keep their lock on the new
			 * version.  A batch holds one version per key, so the markers go
			 * in a second WAL record, after the new row.
			 */
			b = NULL;
			for (int i = 0; i < rs.nmarkers; i++)
			{
				RowMarker  *m = &rs.markers[i];

				if (!(m->flags & ROW_VH_LOCK) || TransactionIdIsCurrentTransactionId(m->xid) ||
					!TransactionIdIsInProgress(m->xid))
					continue;
				if (b != NULL)
				{
					rows_write_batch(b);
					b = NULL;
				}
				b = rows_new_batch();
				resetStringInfo(&val);
				row_encode_marker(&val, ROW_VH_LOCK, m->fxid, m->cid, m->mode, 0);
				batch_put(b, key, &val);
			}
			if (b != NULL)
				rows_write_batch(b);
			pfree(val.data);
			tid_from_rowid(&slot->tts_tid, newrow);
			slot->tts_tableOid = RelationGetRelid(rel);
			*update_indexes = true;
			pgstat_count_heap_update(rel, false);
		}
	}
	PG_FINALLY();
	{
		claim_release(&c);
	}
	PG_END_TRY();
	rowstate_reset(&rs);
	pfree(mt);
	return result;
}

/* lock row rowid in mode for a running updater's new version too */
static void
lock_forward(RowClaim *c, uint64 forward, CommandId cid, LockTupleMode mode)
{
	nokv_batch *b = rows_new_batch();
	StringInfoData val;
	char		key[ROW_KEY_LEN];

	initStringInfo(&val);
	row_encode_marker(&val, ROW_VH_LOCK, GetCurrentFullTransactionId(), cid, (uint8) mode, 0);
	row_key(key, c->tableid, forward);
	rows_lock_row(c->tableid, forward);
	PG_TRY();
	{
		batch_put(b, key, &val);
		rows_write_batch(b);
	}
	PG_FINALLY();
	{
		rows_unlock_row(c->tableid, forward);
	}
	PG_END_TRY();
	pfree(val.data);
}

static TM_Result
nokv_tuple_lock(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot,
				CommandId cid, LockTupleMode mode, LockWaitPolicy wait_policy,
				uint8 flags, TM_FailureData *tmfd)
{
	RowClaim	c;
	RowState	rs;
	TM_Result	result;

	tmfd->traversed = false;
	nokv_mvcc_prepare_write();
	rowstate_init(&rs, true);
	for (;;)
	{
		claim_init(&c, rel, tid);
		PG_TRY();
		{
			result = claim_row(&c, &rs, cid, InvalidSnapshot, mode, wait_policy, true, tmfd);
			if (result == TM_Ok)
			{
				if (!c.own_lock_enough)
				{
					nokv_batch *b = rows_new_batch();
					StringInfoData val;
					char		key[ROW_KEY_LEN];

					initStringInfo(&val);
					row_encode_marker(&val, ROW_VH_LOCK, GetCurrentFullTransactionId(), cid,
									  (uint8) mode, 0);
					row_key(key, c.tableid, c.rowid);
					batch_put(b, key, &val);
					rows_write_batch(b);
					pfree(val.data);
				}
				rows_unlock_row(c.tableid, c.rowid);
				c.row_locked = false;
				if (c.updater != NULL && (c.updater->flags & ROW_VH_UPDATE))
					lock_forward(&c, c.updater->forward, cid, mode);
				tam_store_row(&rs, rel, c.rowid, slot);
			}
		}
		PG_FINALLY();
		{
			claim_release(&c);
		}
		PG_END_TRY();

		/* READ COMMITTED: lock the newest version instead (EvalPlanQual) */
		if (result == TM_Updated && (flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION) &&
			!ItemPointerIndicatesMovedPartitions(&tmfd->ctid) &&
			!ItemPointerEquals(&tmfd->ctid, tid))
		{
			if (IsolationUsesXactSnapshot())
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent update")));
			*tid = tmfd->ctid;
			tmfd->traversed = true;
			continue;
		}
		break;
	}
	rowstate_reset(&rs);
	slot->tts_tableOid = RelationGetRelid(rel);
	return result;
}

/* ---------- the routine ---------- */

static const TableAmRoutine nokv_methods = {
	.type = T_TableAmRoutine,

	.slot_callbacks = nokv_slot_callbacks,

	.scan_begin = nokv_scan_begin,
	.scan_end = nokv_scan_end,
	.scan_rescan = nokv_scan_rescan,
	.scan_getnextslot = nokv_scan_getnextslot,

	.scan_set_tidrange = nokv_scan_set_tidrange,
	.scan_getnextslot_tidrange = nokv_scan_getnextslot_tidrange,

	.parallelscan_estimate = nokv_parallelscan_estimate,
	.parallelscan_initialize = nokv_parallelscan_initialize,
	.parallelscan_reinitialize = nokv_parallelscan_reinitialize,

	.index_fetch_begin = nokv_index_fetch_begin,
	.index_fetch_reset = nokv_index_fetch_reset,
	.index_fetch_end = nokv_index_fetch_end,
	.index_fetch_tuple = nokv_index_fetch_tuple,

	.tuple_insert = nokv_tuple_insert,
	.tuple_insert_speculative = nokv_tuple_insert_speculative,
	.tuple_complete_speculative = nokv_tuple_complete_speculative,
	.multi_insert = nokv_multi_insert,
	.tuple_delete = nokv_tuple_delete,
	.tuple_update = nokv_tuple_update,
	.tuple_lock = nokv_tuple_lock,
	.finish_bulk_insert = nokv_finish_bulk_insert,

	.tuple_fetch_row_version = nokv_tuple_fetch_row_version,
	.tuple_get_latest_tid = nokv_tuple_get_latest_tid,
	.tuple_tid_valid = nokv_tuple_tid_valid,
	.tuple_satisfies_snapshot = nokv_tuple_satisfies_snapshot,
	.index_delete_tuples = tam_index_delete_tuples,

	.relation_set_new_filenode = tam_relation_set_new_filenode,
	.relation_nontransactional_truncate = tam_relation_nontransactional_truncate,
	.relation_copy_data = tam_relation_copy_data,
	.relation_copy_for_cluster = tam_relation_copy_for_cluster,
	.relation_vacuum = tam_relation_vacuum,
	.scan_analyze_next_block = tam_scan_analyze_next_block,
	.scan_analyze_next_tuple = tam_scan_analyze_next_tuple,
	.index_build_range_scan = tam_index_build_range_scan,
	.index_validate_scan = tam_index_validate_scan,

	.relation_size = tam_relation_size,
	.relation_needs_toast_table = tam_relation_needs_toast_table,
	.relation_estimate_size = tam_relation_estimate_size,

	.scan_bitmap_next_block = tam_scan_bitmap_next_block,
	.scan_bitmap_next_tuple = tam_scan_bitmap_next_tuple,
	.scan_sample_next_block = tam_scan_sample_next_block,
	.scan_sample_next_tuple = tam_scan_sample_next_tuple,
};

bool
nokv_relation_is_nokv(Relation rel)
{
	return rel->rd_tableam == &nokv_methods;
}

Datum
nokv_tableam_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&nokv_methods);
}
