/*-------------------------------------------------------------------------
 *
 * tam.h
 *	  Declarations shared by the files of the nokv table access method.
 *
 * tableam.c holds the routine table and the row-level callbacks,
 * tam_ddl.c storage and sizes, tam_maint.c vacuum, analyze, index builds,
 * sampling and bitmap scans, tam_hooks.c the refusals and space reclaim
 * around DDL.
 *
 * src/tableam/tam.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_TAM_H
#define NOKV_TAM_H

#include "access/relscan.h"
#include "access/tableam.h"
#include "commands/vacuum.h"
#include "nodes/execnodes.h"

#include "rowstore.h"

typedef struct NokvScanDescData
{
	TableScanDescData base;
	uint64		tableid;
	RowIter		ri;
	uint64		lo_rowid;		/* rows [lo_rowid, hi_rowid) only */
	uint64		hi_rowid;
	BlockNumber block;			/* parallel, analyze, sample, bitmap: current */
	ParallelBlockTableScanWorker pworker;

	/* analyze, sample and bitmap scans: the rows of the current block */
	HeapTuple  *batch;
	OffsetNumber *batch_off;
	int			nbatch;
	int			ibatch;
	BlockNumber sample_next;	/* sequential sampling position */
	MemoryContext batchcxt;		/* the batch's tuples */
} NokvScanDescData;

typedef NokvScanDescData *NokvScanDesc;

/* tableam.c */
extern void tam_store_row(RowState *rs, Relation rel, uint64 rowid, TupleTableSlot *slot);
extern void tam_conflict_out(Relation rel, RowState *rs, bool visible, Snapshot snapshot);
extern bool tam_next_row(NokvScanDesc scan, ScanDirection dir);
extern bool tam_row_dead_to_all(Relation rel, RowState *rs);
extern bool tam_next_visible(NokvScanDesc scan, ScanDirection dir, TupleTableSlot *slot);
extern bool nokv_relation_is_nokv(Relation rel);

/* tam_ddl.c */
extern void tam_relation_set_new_filenode(Relation rel, const RelFileNode *newrnode,
										  char persistence, TransactionId *freezeXid,
										  MultiXactId *minmulti);
extern void tam_relation_nontransactional_truncate(Relation rel);
extern void tam_relation_copy_data(Relation rel, const RelFileNode *newrnode);
extern void tam_relation_copy_for_cluster(Relation OldTable, Relation NewTable,
										  Relation OldIndex, bool use_sort,
										  TransactionId OldestXmin,
										  TransactionId *xid_cutoff,
										  MultiXactId *multi_cutoff,
										  double *num_tuples, double *tups_vacuumed,
										  double *tups_recently_dead);
extern uint64 tam_relation_size(Relation rel, ForkNumber forkNumber);
extern bool tam_relation_needs_toast_table(Relation rel);
extern void tam_relation_estimate_size(Relation rel, int32 *attr_widths,
									   BlockNumber *pages, double *tuples,
									   double *allvisfrac);
extern void tam_reclaim_at_commit(uint64 tableid);
extern void tam_ddl_init(void);

/* tam_maint.c */
extern TransactionId tam_index_delete_tuples(Relation rel, TM_IndexDeleteOp *delstate);
extern void tam_relation_vacuum(Relation rel, struct VacuumParams *params,
								BufferAccessStrategy bstrategy);
extern bool tam_scan_analyze_next_block(TableScanDesc scan, BlockNumber blockno,
										BufferAccessStrategy bstrategy);
extern bool tam_scan_analyze_next_tuple(TableScanDesc scan, TransactionId OldestXmin,
										double *liverows, double *deadrows,
										TupleTableSlot *slot);
extern double tam_index_build_range_scan(Relation table_rel, Relation index_rel,
										 struct IndexInfo *index_info, bool allow_sync,
										 bool anyvisible, bool progress,
										 BlockNumber start_blockno, BlockNumber numblocks,
										 IndexBuildCallback callback, void *callback_state,
										 TableScanDesc scan);
extern void tam_index_validate_scan(Relation table_rel, Relation index_rel,
									struct IndexInfo *index_info, Snapshot snapshot,
									struct ValidateIndexState *state);
extern bool tam_scan_bitmap_next_block(TableScanDesc scan, struct TBMIterateResult *tbmres);
extern bool tam_scan_bitmap_next_tuple(TableScanDesc scan, struct TBMIterateResult *tbmres,
									   TupleTableSlot *slot);
extern bool tam_scan_sample_next_block(TableScanDesc scan, struct SampleScanState *scanstate);
extern bool tam_scan_sample_next_tuple(TableScanDesc scan, struct SampleScanState *scanstate,
									   TupleTableSlot *slot);

#endif							/* NOKV_TAM_H */
