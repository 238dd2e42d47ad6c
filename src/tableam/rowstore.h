/*-------------------------------------------------------------------------
 *
 * rowstore.h
 *	  Rows of nokv tables in the engine: keys, versions, row state,
 *	  visibility, the metapage and row-id allocation.
 *
 * A nokv table is one engine key range.  Its metapage (block 0 of the
 * relation's main fork, written through PostgreSQL's buffer manager and
 * WAL) names the range (the table id) and the row-id high-water mark, so
 * CREATE, TRUNCATE, DROP and ALTER TABLE rewrites are transactional for
 * free: the table id travels with the relfilenode.
 *
 * Every row version has a row id of its own, never reused (heap without
 * HOT): an UPDATE writes the new version under a new row id.  The engine
 * key of a row is NOKV_NS_ROWS | table id (8 bytes, big-endian) | row id
 * (8 bytes, big-endian); its TID is (row id / 291, row id % 291 + 1).
 *
 * The engine versions of a row key are, oldest first: one data version
 * (the row, written by its inserter), then markers: a delete or update
 * marker (written by the deleter or updater; an update marker names the
 * new version's row id) and lock markers (SELECT ... FOR ...).  Each
 * carries the writing (sub)transaction's xid and command id in the
 * 13-byte header of mvcc.c, so an aborted marker simply does not count.
 *
 * src/tableam/rowstore.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_ROWSTORE_H
#define NOKV_ROWSTORE_H

#include "access/htup.h"
#include "access/tableam.h"
#include "access/sdir.h"
#include "nodes/lockoptions.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

#include "nokv_pg.h"

/* row keys: NOKV_NS_ROWS (nokv_pg.h) | table id BE8 | row id BE8 */
#define ROW_KEY_LEN 17
/* registry keys: NOKV_NS_TABLES | database oid BE4 | table id BE8 */
#define REGISTRY_KEY_LEN 13
#define ROW_CF 0				/* the engine's default column family */

/* row ids per virtual block: heap's MaxHeapTuplesPerPage */
#define ROWS_PER_BLOCK 291
#define MAX_ROWID ((uint64) MaxBlockNumber * ROWS_PER_BLOCK)

/* marker flags, beside mvcc.c's NOKV_VH_DELETED / NOKV_VH_FROZEN */
#define ROW_VH_LOCK NOKV_VH_LOCK_ONLY	/* lock marker; payload: mode */
#define ROW_VH_UPDATE 0x08		/* with DELETED: updated; payload: new row id */
#define ROW_VH_KEYMOD 0x10		/* with DELETED: the key columns changed */
#define ROW_VH_MOVED 0x20		/* with DELETED: moved to another partition */

typedef struct RowMarker
{
	uint8		flags;
	uint8		mode;			/* LockTupleMode of a lock marker */
	FullTransactionId fxid;
	TransactionId xid;
	CommandId	cid;
	uint64		forward;		/* update marker: the new version's row id */
} RowMarker;

/* everything the engine holds for one row id */
typedef struct RowState
{
	bool		found;			/* the data version exists */
	bool		frozen;
	TransactionId xmin;
	CommandId	cmin;
	const char *tuple;			/* MinimalTuple bytes (unaligned), if wanted: into
								 * owned, or into the engine iterator's current
								 * value (valid until it moves) */
	size_t		tuple_len;
	char	   *owned;			/* malloc'd value of a point read */
	int			nmarkers;		/* newest first */
	int			maxmarkers;
	RowMarker  *markers;

	/* collection state of the engine visibility hook */
	MemoryContext cxt;			/* tuple and markers (the hook may run anywhere) */
	bool		want_tuple;
	char		key[ROW_KEY_LEN];
	uint64		last_version;
} RowState;

/* what vacuum, analyze and index builds make of a row */
typedef enum RowVacState
{
	ROW_DEAD,
	ROW_LIVE,
	ROW_RECENTLY_DEAD,
	ROW_INSERT_IN_PROGRESS,
	ROW_DELETE_IN_PROGRESS
} RowVacState;

/* ---------- keys and TIDs ---------- */

static inline uint64
rowid_from_tid(ItemPointer tid)
{
	return (uint64) ItemPointerGetBlockNumberNoCheck(tid) * ROWS_PER_BLOCK +
		(ItemPointerGetOffsetNumberNoCheck(tid) - 1);
}

static inline void
tid_from_rowid(ItemPointer tid, uint64 rowid)
{
	ItemPointerSet(tid, (BlockNumber) (rowid / ROWS_PER_BLOCK),
				   (OffsetNumber) (rowid % ROWS_PER_BLOCK + 1));
}

static inline bool
tid_is_row(ItemPointer tid)
{
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);

	return off >= 1 && off <= ROWS_PER_BLOCK;
}

extern void row_key(char *key, uint64 tableid, uint64 rowid);
extern uint64 row_key_rowid(const char *key);
extern uint64 row_key_tableid(const char *key);

/* ---------- the table's metapage and row ids ---------- */

/* the table id of rel (cached in rd_amcache) */
extern uint64 rows_tableid(Relation rel);
/* allocate n consecutive row ids of rel */
extern uint64 rows_allocate(Relation rel, int n);
extern uint64 rows_allocate_at(Relation rel, int n, uint64 *epoch);
/* one past the highest row id rel may have used */
extern uint64 rows_high_water(Relation rel);
/* create the storage and metapage of a new relfilenode; its table id */
extern uint64 rows_create_storage(const RelFileNode *rnode, char persistence);
/* an empty engine batch (ERROR when out of memory) */
extern nokv_batch *rows_new_batch(void);
/* write b to the engine through PostgreSQL's WAL, and release it (also on error) */
extern void rows_write_batch(nokv_batch *b);
extern bool rows_write_batch_at(nokv_batch *b, uint64 epoch);
/* delete a table's rows (and its registry entry); of this database, or of dboid */
extern void rows_drop_range(uint64 tableid);
extern void rows_drop_range_of(Oid dboid, uint64 tableid);
/* does database dboid hold nokv tables?  drop the rows of all of them */
extern bool rows_database_has_tables(Oid dboid);
extern void rows_drop_database(Oid dboid);
extern void rows_shmem_request(void);
extern void rows_shmem_startup(void);

/* ---------- row state ---------- */

extern void rowstate_init(RowState *rs, bool want_tuple);
extern void rowstate_reset(RowState *rs);
/* the engine hook that collects a row's versions into a RowState */
extern bool rowstate_collect(void *arg, int cf, const char *key, size_t klen,
							 uint64_t version, const char *value, size_t vlen);
/* read row rowid of tableid; false if the engine has no data version */
extern bool rowstate_read(nokv_db *db, uint64 tableid, uint64 rowid, RowState *rs);
/* decode one data version's value into rs (iterator path) */
extern void rowstate_set_data(RowState *rs, const char *value, size_t vlen);

/* the newest modification (delete/update) marker that did not abort */
extern RowMarker *rowstate_mod_marker(RowState *rs);

extern bool rowstate_visible(RowState *rs, Snapshot snapshot);
extern RowVacState rowstate_vacuum(RowState *rs, TransactionId oldest_xmin);
/* the oldest unfrozen xid the row still carries (Invalid if none) */
extern TransactionId rowstate_oldest_xid(RowState *rs);

/* the row's tuple as a palloc'd HeapTuple (checked against corruption) */
extern HeapTuple rowstate_tuple_copy(RowState *rs);
/* a HeapTuple of the row for a slot (xmin, cmin, ctid and table oid set) */
extern HeapTuple rowstate_heap_tuple(RowState *rs, Relation rel, uint64 rowid);

/* ---------- iterating a table's rows in row-id order ---------- */

/* outlives the RowIter until its memory context goes (see rowiter_begin) */
typedef struct RowIterGuard
{
	nokv_iter  *it;				/* NULL once ended */
	MemoryContextCallback cb;
} RowIterGuard;

typedef struct RowIter
{
	nokv_iter  *it;				/* NULL once ended */
	RowIterGuard *guard;
	uint64		tableid;
	RowState	rs;				/* the current row */
	uint64		rowid;			/* the current row's id */
	int			pos;			/* -1 before the first, 0 on a row, 1 after */
	char		lo[ROW_KEY_LEN];
	char		hi[ROW_KEY_LEN];
} RowIter;

/* the engine iterator is freed with the current memory context at the latest */
extern void rowiter_begin(RowIter *ri, uint64 tableid, bool want_tuple);
extern void rowiter_begin_range(RowIter *ri, uint64 tableid, uint64 lo, uint64 hi,
								bool want_tuple);
/* position before the first row with id >= rowid (forward) */
extern void rowiter_seek(RowIter *ri, uint64 rowid);
/* the next row in direction dir (forward or backward); false at the end */
extern bool rowiter_step(RowIter *ri, ScanDirection dir);
extern void rowiter_end(RowIter *ri);

/* ---------- writes ---------- */

/* serialize marker writers of one row (striped LWLocks) */
extern void rows_lock_row(uint64 tableid, uint64 rowid);
extern void rows_unlock_row(uint64 tableid, uint64 rowid);

extern void row_encode_marker(StringInfo buf, uint8 flags, FullTransactionId fxid,
							  CommandId cid, uint8 mode, uint64 forward);
extern void row_encode_data(StringInfo buf, CommandId cid, MinimalTuple mt);
extern void row_put_data(nokv_batch *b, const char *key, CommandId cid, MinimalTuple mt);
extern void row_minimal_header(char *dst, HeapTuple tuple);
extern void row_put_formed(nokv_batch *b, const char *key, const char *vh, HeapTuple tuple);

#endif							/* NOKV_ROWSTORE_H */
