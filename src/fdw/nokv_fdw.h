/*-------------------------------------------------------------------------
 *
 * nokv_fdw.h
 *	  Declarations shared by the two halves of the nokv foreign data
 *	  wrapper: nokv_fdw.c (handler, options, planning, EXPLAIN) and
 *	  fdw_exec.c (scans, modifications, TRUNCATE).
 *
 * A nokv_fdw foreign table is a window on the engine's key-value namespace
 * (kv.c): one column family, optionally only the keys that start with a
 * key_prefix (which the table's key column does not show).  The columns
 * are key (text or bytea), value (bytea, text or jsonb) and optionally
 * expires_at (timestamptz).
 *
 * src/fdw/nokv_fdw.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_FDW_H
#define NOKV_FDW_H

#include "foreign/fdwapi.h"
#include "nodes/pg_list.h"
#include "utils/relcache.h"

/* what a foreign table is over, from its options and its server's */
typedef struct NokvFdwTable
{
	int			cf;				/* engine column family */
	char	   *cf_name;
	char	   *prefix;			/* key_prefix bytes, "" if none */
	int			prefix_len;
	int			batch_size;		/* rows per ExecForeignBatchInsert */
} NokvFdwTable;

/* where the nokv columns are (0 = absent) and their types */
typedef struct NokvFdwColumns
{
	AttrNumber	key_attno;
	AttrNumber	value_attno;
	AttrNumber	expires_attno;
	Oid			key_type;		/* BYTEAOID or TEXTOID */
	Oid			key_collation;
	Oid			value_type;		/* BYTEAOID, TEXTOID or JSONBOID */
} NokvFdwColumns;

/* how a scan reaches its keys */
typedef enum NokvScanKind
{
	NOKV_SCAN_FULL = 0,			/* every key of the table */
	NOKV_SCAN_RANGE,			/* the keys between bounds, in order */
	NOKV_SCAN_POINT				/* one or several keys looked up */
} NokvScanKind;

/* one pushed key condition; its clause is in fdw_exprs */
typedef enum NokvCondKind
{
	NOKV_COND_EQ = 0,			/* key = expr */
	NOKV_COND_IN,				/* key = ANY (array expr) */
	NOKV_COND_LT,				/* key < expr */
	NOKV_COND_LE,
	NOKV_COND_GT,
	NOKV_COND_GE,
	NOKV_COND_LIKE,				/* key LIKE pattern: its fixed prefix */
	NOKV_COND_PREFIX			/* key ^@ expr (starts_with) */
} NokvCondKind;

/*
 * ForeignScan.fdw_private: a list indexed by these.  fdw_exprs holds the
 * pushed clauses themselves (so EXPLAIN can show them); the executor
 * evaluates argument NokvScanCondArgs[i] of clause i.
 */
enum NokvScanPrivateIndex
{
	NokvScanKindIdx,			/* Integer: NokvScanKind */
	NokvScanCondKindsIdx,		/* IntList: NokvCondKind per clause */
	NokvScanCondArgsIdx,		/* IntList: which argument is the value */
	NokvScanCfIdx,				/* Integer: column family */
	NokvScanPrefixIdx			/* String: key_prefix */
};

/* nokv_fdw.c */
extern void nokv_fdw_table(Oid relid, NokvFdwTable *t);
extern void nokv_fdw_columns(Relation rel, NokvFdwColumns *cols);

/* fdw_exec.c: the executor callbacks */
extern void nokv_fdw_begin_scan(ForeignScanState *node, int eflags);
extern TupleTableSlot *nokv_fdw_iterate_scan(ForeignScanState *node);
extern void nokv_fdw_rescan(ForeignScanState *node);
extern void nokv_fdw_end_scan(ForeignScanState *node);

extern void nokv_fdw_add_update_targets(PlannerInfo *root, Index rtindex,
										RangeTblEntry *target_rte,
										Relation target_relation);
extern List *nokv_fdw_plan_modify(PlannerInfo *root, ModifyTable *plan,
								  Index resultRelation, int subplan_index);
extern void nokv_fdw_begin_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
								  List *fdw_private, int subplan_index, int eflags);
extern TupleTableSlot *nokv_fdw_exec_insert(EState *estate, ResultRelInfo *rinfo,
											TupleTableSlot *slot, TupleTableSlot *planSlot);
extern TupleTableSlot **nokv_fdw_exec_batch_insert(EState *estate, ResultRelInfo *rinfo,
												   TupleTableSlot **slots,
												   TupleTableSlot **planSlots,
												   int *numSlots);
extern int	nokv_fdw_batch_size(ResultRelInfo *rinfo);
extern TupleTableSlot *nokv_fdw_exec_update(EState *estate, ResultRelInfo *rinfo,
											TupleTableSlot *slot, TupleTableSlot *planSlot);
extern TupleTableSlot *nokv_fdw_exec_delete(EState *estate, ResultRelInfo *rinfo,
											TupleTableSlot *slot, TupleTableSlot *planSlot);
extern void nokv_fdw_end_modify(EState *estate, ResultRelInfo *rinfo);
extern void nokv_fdw_begin_insert(ModifyTableState *mtstate, ResultRelInfo *rinfo);
extern void nokv_fdw_end_insert(EState *estate, ResultRelInfo *rinfo);
extern int	nokv_fdw_updatable(Relation rel);
extern void nokv_fdw_truncate(List *rels, DropBehavior behavior, bool restart_seqs);

#endif							/* NOKV_FDW_H */
