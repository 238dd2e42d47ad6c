/*-------------------------------------------------------------------------
 *
 * tam_ddl.c
 *	  Storage of nokv tables: new relfilenodes, truncation, tablespace
 *	  moves, reclaiming the engine space of dropped tables, and sizes.
 *
 * A relfilenode of a nokv table is one metapage naming an engine key
 * range.  PostgreSQL's own pending-delete machinery makes creating and
 * dropping that file transactional; the engine range of a table whose
 * relfilenode goes away (DROP, TRUNCATE, a rewrite) is deleted when the
 * transaction commits, and the range of one created by a transaction that
 * aborts when it aborts.  A crash between the commit and that delete
 * leaves the range behind as garbage nobody can read: table ids are never
 * reused.
 *
 * Sizes are virtual: the main fork reports ceil(row-id high-water mark /
 * 291) blocks so that the planner, ANALYZE, parallel and sample scans see
 * a block space matching the TIDs; nokv_table_size() reports the engine
 * bytes.
 *
 * src/tableam/tam_ddl.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/multixact.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/storage.h"
#include "catalog/storage_xlog.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nokv/inspect.h"
#include "storage/bufmgr.h"
#include "storage/smgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "tam.h"

PG_FUNCTION_INFO_V1(nokv_table_size);

typedef struct PendingReclaim
{
	uint64		tableid;
	bool		at_commit;		/* else at abort */
	int			nest_level;
	struct PendingReclaim *next;
} PendingReclaim;

static PendingReclaim *pending = NULL;

static void
add_pending(uint64 tableid, bool at_commit)
{
	PendingReclaim *p = MemoryContextAlloc(TopMemoryContext, sizeof(PendingReclaim));

	p->tableid = tableid;
	p->at_commit = at_commit;
	p->nest_level = GetCurrentTransactionNestLevel();
	p->next = pending;
	pending = p;
}

void
tam_reclaim_at_commit(uint64 tableid)
{
	add_pending(tableid, true);
}

/*
 * After the commit record (or the abort): delete the ranges.  An error
 * here must not turn into an abort of a committed transaction, so it is
 * reported as a warning; the range then stays as unreadable garbage.
 */
static void
reclaim_xact_callback(XactEvent event, void *arg)
{
	bool		commit;

	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		commit = true;
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		commit = false;
	else
		return;
	while (pending != NULL)
	{
		PendingReclaim *p = pending;

		pending = p->next;
		if (p->at_commit == commit)
		{
			MemoryContext cxt = CurrentMemoryContext;

			PG_TRY();
			{
				rows_drop_range(p->tableid);
			}
			PG_CATCH();
			{
				ErrorData  *edata;

				MemoryContextSwitchTo(cxt);
				edata = CopyErrorData();
				FlushErrorState();
				ereport(WARNING,
						(errmsg("could not reclaim the engine space of nokv table %llx: %s",
								(unsigned long long) p->tableid, edata->message)));
				FreeErrorData(edata);
			}
			PG_END_TRY();
		}
		pfree(p);
	}
}

/* a subtransaction's drops are undone with it; its creations reclaimed */
static void
reclaim_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	PendingReclaim **link = &pending;
	int			level = GetCurrentTransactionNestLevel();

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	while (*link != NULL)
	{
		PendingReclaim *p = *link;

		if (p->nest_level >= level)
		{
			if (event == SUBXACT_EVENT_COMMIT_SUB)
				p->nest_level = level - 1;
			else if (p->at_commit)
			{
				/* the drop is rolled back: forget it */
				*link = p->next;
				pfree(p);
				continue;
			}
			else
				p->at_commit = true;	/* created then rolled back: reclaim */
		}
		link = &p->next;
	}
}

void
tam_ddl_init(void)
{
	RegisterXactCallback(reclaim_xact_callback, NULL);
	RegisterSubXactCallback(reclaim_subxact_callback, NULL);
}

/* ---------- relfilenodes ---------- */

void
tam_relation_set_new_filenode(Relation rel, const RelFileNode *newrnode, char persistence,
							  TransactionId *freezeXid, MultiXactId *minmulti)
{
	if (persistence != RELPERSISTENCE_PERMANENT)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("nokv tables cannot be %s",
						persistence == RELPERSISTENCE_TEMP ? "temporary" : "unlogged"),
				 errdetail("nokv rows are logged in PostgreSQL's WAL and shared by every session."),
				 errhint("Create the table without TEMPORARY or UNLOGGED, or with USING heap.")));

	/* TRUNCATE or a rewrite: the old range goes when this commits */
	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE &&
		RelationGetSmgr(rel) != NULL &&
		smgrexists(RelationGetSmgr(rel), MAIN_FORKNUM) &&
		smgrnblocks(RelationGetSmgr(rel), MAIN_FORKNUM) > 0)
		tam_reclaim_at_commit(rows_tableid(rel));

	/* if this transaction aborts, whatever it wrote there goes */
	add_pending(rows_create_storage(newrnode, persistence), false);
	*freezeXid = RecentXmin;
	*minmulti = GetOldestMultiXactId();
}

void
tam_relation_nontransactional_truncate(Relation rel)
{
	/* the table is new in this transaction: nobody else can see its rows */
	rows_drop_range(rows_tableid(rel));
}

void
tam_relation_copy_data(Relation rel, const RelFileNode *newrnode)
{
	SMgrRelation dstrel;

	/* the metapage names the rows; moving it moves the table */
	FlushRelationBuffers(rel);
	dstrel = RelationCreateStorage(*newrnode, rel->rd_rel->relpersistence, true);
	RelationCopyStorage(RelationGetSmgr(rel), dstrel, MAIN_FORKNUM,
						rel->rd_rel->relpersistence);
	RelationDropStorage(rel);
	smgrclose(dstrel);
}

void
tam_relation_copy_for_cluster(Relation OldTable, Relation NewTable, Relation OldIndex,
							  bool use_sort, TransactionId OldestXmin,
							  TransactionId *xid_cutoff, MultiXactId *multi_cutoff,
							  double *num_tuples, double *tups_vacuumed,
							  double *tups_recently_dead)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("VACUUM FULL and CLUSTER are not supported on nokv table \"%s\"",
					RelationGetRelationName(OldTable)),
			 errdetail("The engine keeps rows in row-id order and compacts them by itself."),
			 errhint("Use VACUUM, which removes dead rows from the indexes; compaction reclaims their space.")));
}

bool
tam_relation_needs_toast_table(Relation rel)
{
	/* large values go to the engine's value log */
	return false;
}

/* ---------- sizes ---------- */

uint64
tam_relation_size(Relation rel, ForkNumber forkNumber)
{
	uint64		size = 0;

	if (forkNumber == MAIN_FORKNUM || forkNumber == InvalidForkNumber)
	{
		uint64		rows = rows_high_water(rel);

		size += (rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK * (uint64) BLCKSZ;
	}
	if (forkNumber != MAIN_FORKNUM)
	{
		for (int i = MAIN_FORKNUM + 1; i <= MAX_FORKNUM; i++)
		{
			if ((forkNumber == InvalidForkNumber || forkNumber == i) &&
				smgrexists(RelationGetSmgr(rel), i))
				size += (uint64) smgrnblocks(RelationGetSmgr(rel), i) * BLCKSZ;
		}
	}
	return size;
}

/* heap's estimate, over virtual blocks of 291 row ids */
void
tam_relation_estimate_size(Relation rel, int32 *attr_widths, BlockNumber *pages,
						   double *tuples, double *allvisfrac)
{
	BlockNumber curpages = (BlockNumber) (tam_relation_size(rel, MAIN_FORKNUM) / BLCKSZ);
	BlockNumber relpages = (BlockNumber) rel->rd_rel->relpages;
	double		reltuples = (double) rel->rd_rel->reltuples;
	double		density;

	/* a never-vacuumed empty table may fill up soon: assume 10 blocks, as heap */
	if (curpages < 10 && reltuples < 0 && !rel->rd_rel->relhassubclass)
		curpages = 10;
	*pages = curpages;
	if (curpages == 0)
	{
		*tuples = 0;
		*allvisfrac = 0;
		return;
	}
	if (reltuples >= 0 && relpages > 0)
		density = reltuples / (double) relpages;
	else
		density = ROWS_PER_BLOCK;
	*tuples = floor(density * curpages + 0.5);
	/* no visibility map: index-only scans always check the row */
	*allvisfrac = 0;
}

/*
 * nokv_table_size(regclass) returns bigint: the engine bytes of the table
 * in SSTs (compressed, as on disk), estimated to a block from the SSTs'
 * indexes.  Rows still in memtables are not counted; nokv_flush() writes
 * them out.
 */
Datum
nokv_table_size(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel;
	nokv_error	err;
	char		lo[ROW_KEY_LEN];
	char		hi[ROW_KEY_LEN];
	int			rc;
	uint64_t	bytes = 0;
	uint64		tableid;

	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		PG_RETURN_NULL();
	if (!nokv_relation_is_nokv(rel))
	{
		char	   *name = pstrdup(RelationGetRelationName(rel));

		relation_close(rel, AccessShareLock);
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a nokv table", name),
				 errhint("Use pg_total_relation_size for other relations.")));
	}
	tableid = rows_tableid(rel);
	relation_close(rel, AccessShareLock);
	row_key(lo, tableid, 0);
	row_key(hi, tableid + 1, 0);
	rc = nokv_approximate_size(nokv_engine(), ROW_CF, lo, ROW_KEY_LEN, hi, ROW_KEY_LEN,
							   &bytes, &err);
	if (rc != NOKV_OK)
		nokv_raise_engine_error(rc, &err, "size estimate");
	PG_RETURN_INT64((int64) bytes);
}
