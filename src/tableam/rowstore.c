/*-------------------------------------------------------------------------
 *
 * rowstore.c
 *	  Rows of nokv tables in the engine: keys, the metapage, row-id
 *	  allocation, reading a row's versions and deciding visibility.
 *
 * Row ids are never reused, not even across a crash: a backend takes row
 * ids from a per-table counter in shared memory, and before the counter
 * passes the high-water mark recorded in the metapage, the mark is raised
 * by a WAL-logged metapage write.  WAL is sequential, so a durable row (or
 * index entry naming its TID) implies a durable mark above its row id;
 * after a crash the counter restarts at the mark.
 *
 * Visibility follows heapam_visibility.c, with the markers playing the
 * part of xmax: the in-progress checks come before the commit log (heap's
 * race note), a transaction's own changes are judged by command id, and a
 * lock marker never hides a row.
 *
 * src/tableam/rowstore.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xloginsert.h"
#include "catalog/storage.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/bufmgr.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/smgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "rowstore.h"

#define META_MAGIC 0x6e6f6b76	/* "nokv" */
#define META_VERSION 1

/* row ids reserved by one metapage write */
#define ROWID_CHUNK 8192

#define ROWID_SLOTS 512
#define ROWID_PROBES 16
#define ROW_LOCK_STRIPES 128

typedef struct NokvMetaPage
{
	uint32		magic;
	uint32		version;
	uint64		tableid;
	uint64		rowid_hwm;		/* no row id at or above this was handed out */
} NokvMetaPage;

typedef struct RowidSlot
{
	RelFileNode node;			/* relNode == InvalidOid: free */
	uint64		next;
	uint64		hwm;
} RowidSlot;

typedef struct RowsShared
{
	RowidSlot	slots[ROWID_SLOTS];
	uint32		evict_hand;
} RowsShared;

/*
 * Row ids a backend takes at a time for short inserts.  Backends inserting
 * into one table at once then append to different ranges of its keys: with
 * ids handed out one by one they append at the same end of the memtable,
 * and every insert moved the cache lines of the other backend's last node,
 * of the allocation lock and of the table's slot between the CPUs (heap
 * backends likewise fill pages of their own).  Ids a backend never uses are
 * a gap, like a sequence's cache.
 *
 * A range is dropped when the engine replaces its memtable: otherwise the
 * rest of one backend's range, written into the new memtable, would lie
 * below ids another backend already wrote into the old one, the two
 * level-0 files would overlap, and compaction would rewrite them instead of
 * moving the table's new rows down (a tenth of the machine in a two-client
 * INSERT run).
 */
#define ROWID_LOCAL_CHUNK 64

/* per relation, in rd_amcache (lost on a relcache rebuild: a gap of ids) */
typedef struct RowsRelCache
{
	Oid			relnode;		/* the relfilenode it describes */
	uint64		tableid;
	uint64		local_next;		/* this backend's range of ids still unused */
	uint64		local_end;
	uint64		local_epoch;	/* nokv_memtable_epoch when it was taken */
} RowsRelCache;

static RowsShared *rows_shared = NULL;
static LWLockPadded *rows_locks = NULL;	/* [0] allocation, then stripes */

/* table ids: top-level full xid << 16 | tables created by it so far */
static FullTransactionId tableid_xact;
static uint32 tableid_count;

/* ---------- keys ---------- */

static inline void
put_be64(char *p, uint64 v)
{
	v = pg_hton64(v);
	memcpy(p, &v, sizeof(v));
}

static inline uint64
get_be64(const char *p)
{
	uint64		v;

	memcpy(&v, p, sizeof(v));
	return pg_ntoh64(v);
}

void
row_key(char *key, uint64 tableid, uint64 rowid)
{
	key[0] = NOKV_NS_ROWS;
	put_be64(key + 1, tableid);
	put_be64(key + 9, rowid);
}

uint64
row_key_rowid(const char *key)
{
	return get_be64(key + 9);
}

uint64
row_key_tableid(const char *key)
{
	return get_be64(key + 1);
}

/* ---------- shared memory ---------- */

void
rows_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(RowsShared)));
	RequestNamedLWLockTranche("nokv rows", 1 + ROW_LOCK_STRIPES);
}

void
rows_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	rows_shared = ShmemInitStruct("nokv rows", sizeof(RowsShared), &found);
	if (!found)
		memset(rows_shared, 0, sizeof(RowsShared));
	rows_locks = GetNamedLWLockTranche("nokv rows");
	LWLockRelease(AddinShmemInitLock);
}

void
rows_lock_row(uint64 tableid, uint64 rowid)
{
	uint64		h = hash_combine64(tableid, rowid * UINT64CONST(0x9E3779B97F4A7C15));

	LWLockAcquire(&rows_locks[1 + h % ROW_LOCK_STRIPES].lock, LW_EXCLUSIVE);
}

void
rows_unlock_row(uint64 tableid, uint64 rowid)
{
	uint64		h = hash_combine64(tableid, rowid * UINT64CONST(0x9E3779B97F4A7C15));

	LWLockRelease(&rows_locks[1 + h % ROW_LOCK_STRIPES].lock);
}

/* ---------- the metapage ---------- */

static void
read_meta(Relation rel, NokvMetaPage *meta)
{
	Buffer		buf;
	Page		page;

	if (RelationGetSmgr(rel) == NULL ||
		smgrnblocks(RelationGetSmgr(rel), MAIN_FORKNUM) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("nokv table \"%s\" has no metapage", RelationGetRelationName(rel))));
	buf = ReadBuffer(rel, 0);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	memcpy(meta, PageGetContents(page), sizeof(NokvMetaPage));
	UnlockReleaseBuffer(buf);
	if (meta->magic != META_MAGIC || meta->version != META_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("nokv table \"%s\" has a bad metapage", RelationGetRelationName(rel)),
				 errdetail("Magic %08x, version %u.", meta->magic, meta->version)));
}

static void
fill_meta_page(Page page, const NokvMetaPage *meta)
{
	PageInit(page, BLCKSZ, 0);
	memcpy(PageGetContents(page), meta, sizeof(NokvMetaPage));
	/* so that a compressed full-page image keeps the contents */
	((PageHeader) page)->pd_lower = (PageGetContents(page) - (char *) page) + sizeof(NokvMetaPage);
}

static void
write_meta_hwm(Relation rel, uint64 hwm)
{
	Buffer		buf = ReadBuffer(rel, 0);
	Page		page;
	NokvMetaPage meta;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	page = BufferGetPage(buf);
	memcpy(&meta, PageGetContents(page), sizeof(meta));
	meta.rowid_hwm = hwm;
	START_CRIT_SECTION();
	fill_meta_page(page, &meta);
	MarkBufferDirty(buf);
	log_newpage_buffer(buf, true);
	END_CRIT_SECTION();
	UnlockReleaseBuffer(buf);
}

static uint64
new_tableid(void)
{
	FullTransactionId top = GetTopFullTransactionId();

	if (!FullTransactionIdEquals(top, tableid_xact))
	{
		tableid_xact = top;
		tableid_count = 0;
	}
	if (tableid_count >= 0xffff)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many nokv tables created or truncated in one transaction"),
				 errhint("Split the work into several transactions.")));
	return (U64FromFullTransactionId(top) << 16) | tableid_count++;
}

/* ---------- the registry of each database's tables ---------- */

/*
 * The metapages of a database's tables go with the database, so DROP
 * DATABASE cannot read them: every table id is also registered in the
 * engine under its database, from its creation until its range is
 * reclaimed.  The registry is not transactional; an entry of a table whose
 * creation aborted is removed with its range (a stale one would only make
 * a dropped database reclaim an empty range).
 */
static void
registry_key(char *key, Oid dboid, uint64 tableid)
{
	key[0] = NOKV_NS_TABLES;
	key[1] = (char) (dboid >> 24);
	key[2] = (char) (dboid >> 16);
	key[3] = (char) (dboid >> 8);
	key[4] = (char) dboid;
	put_be64(key + 5, tableid);
}

/*
 * The batch the next writer gets.  COPY hands multi_insert about a thousand
 * rows at a time and INSERT comes one row at a time: a new batch would grow
 * (reallocate) its buffer again for every call.  Holding one spare keeps at
 * most SPARE_BATCH_MAX bytes per backend; a nested writer simply gets a
 * new batch.
 */
#define SPARE_BATCH_MAX (256 * 1024)
static nokv_batch *spare_batch = NULL;

/* write b to the engine (through PostgreSQL's WAL) and release it */
void
rows_write_batch(nokv_batch *b)
{
	(void) rows_write_batch_at(b, 0);
}

/*
 * The same for a batch of new rows whose ids rows_allocate took under
 * memtable epoch: if the engine replaced its memtable since, nothing is
 * written and false returned (b is released either way); the caller takes
 * new ids and writes the rows again.  Otherwise a row whose id was taken
 * before the switch would land in the new memtable below ids another
 * backend wrote into the old one (see ROWID_LOCAL_CHUNK).
 */
bool
rows_write_batch_at(nokv_batch *b, uint64 epoch)
{
	bool		written;

	PG_TRY();
	{
		written = nokv_xlog_write_epoch(nokv_engine(), b, false, epoch);
	}
	PG_CATCH();
	{
		nokv_batch_free(b);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (spare_batch == NULL && nokv_batch_size(b) <= SPARE_BATCH_MAX)
	{
		nokv_batch_clear(b);
		spare_batch = b;
	}
	else
		nokv_batch_free(b);
	return written;
}

nokv_batch *
rows_new_batch(void)
{
	nokv_batch *b = spare_batch;

	if (b != NULL)
	{
		spare_batch = NULL;
		return b;
	}
	b = nokv_batch_new();
	if (b == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	return b;
}

static void
registry_add(Oid dboid, uint64 tableid)
{
	char		key[REGISTRY_KEY_LEN];
	nokv_batch *b = rows_new_batch();

	registry_key(key, dboid, tableid);
	if (nokv_batch_put(b, ROW_CF, key, REGISTRY_KEY_LEN, "", 0) != NOKV_OK)
	{
		nokv_batch_free(b);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	rows_write_batch(b);
}

/*
 * The table ids registered for database dboid, up to max of them (all of
 * them when max is 0), palloc'd; *n is set to the count.
 */
static uint64 *
registry_list(Oid dboid, int max, int *n)
{
	nokv_read_options ro;
	char		lo[REGISTRY_KEY_LEN];
	char		hi[REGISTRY_KEY_LEN];
	nokv_iter  *it;
	nokv_error	err;
	int			rc;
	int			cap = 16;
	uint64	   *ids = palloc(sizeof(uint64) * cap);

	*n = 0;
	registry_key(lo, dboid, 0);
	registry_key(hi, dboid, 0);
	for (int i = 4; i >= 1; i--)	/* hi = the next database's first key */
		if (++hi[i] != 0)
			break;
	if (dboid == PG_UINT32_MAX)
		hi[0]++;
	nokv_read_options_init(&ro);
	ro.lower_bound = lo;
	ro.lower_len = REGISTRY_KEY_LEN;
	ro.upper_bound = hi;
	ro.upper_len = REGISTRY_KEY_LEN;
	it = nokv_iter_new(nokv_engine(), &ro, ROW_CF);
	if (it == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	for (nokv_iter_seek(it, lo, REGISTRY_KEY_LEN);
		 nokv_iter_valid(it) && (max == 0 || *n < max); nokv_iter_next(it))
	{
		size_t		klen;
		const char *k = nokv_iter_key(it, &klen);

		if (klen != REGISTRY_KEY_LEN)
			continue;
		if (*n == cap)
		{
			cap *= 2;
			ids = repalloc(ids, sizeof(uint64) * cap);
		}
		ids[(*n)++] = get_be64(k + 5);
	}
	rc = nokv_iter_status(it, &err);
	nokv_iter_free(it);
	if (rc != NOKV_OK)
		nokv_raise_engine_error(rc, &err, "scan");
	return ids;
}

bool
rows_database_has_tables(Oid dboid)
{
	int			n;

	pfree(registry_list(dboid, 1, &n));
	return n > 0;
}

void
rows_drop_database(Oid dboid)
{
	int			n;
	uint64	   *ids = registry_list(dboid, 0, &n);

	for (int i = 0; i < n; i++)
		rows_drop_range_of(dboid, ids[i]);
	pfree(ids);
}

uint64
rows_create_storage(const RelFileNode *rnode, char persistence)
{
	SMgrRelation srel;
	PGAlignedBlock block;
	NokvMetaPage meta = {
		.magic = META_MAGIC,
		.version = META_VERSION,
		.tableid = new_tableid(),
		.rowid_hwm = 0,
	};

	srel = RelationCreateStorage(*rnode, persistence, true);
	registry_add(rnode->dbNode, meta.tableid);
	fill_meta_page(block.data, &meta);
	log_newpage((RelFileNode *) rnode, MAIN_FORKNUM, 0, block.data, true);
	PageSetChecksumInplace(block.data, 0);
	smgrextend(srel, MAIN_FORKNUM, 0, block.data, true);
	/* written around shared buffers: make it durable before commit */
	smgrimmedsync(srel, MAIN_FORKNUM);
	return meta.tableid;
}

/* rel's cache entry, (re)loaded for its current relfilenode */
static RowsRelCache *
rows_cache(Relation rel)
{
	RowsRelCache *c = (RowsRelCache *) rel->rd_amcache;
	NokvMetaPage meta;

	if (c != NULL && c->relnode == rel->rd_node.relNode)
		return c;
	read_meta(rel, &meta);
	if (c == NULL)
	{
		c = MemoryContextAlloc(CacheMemoryContext, sizeof(RowsRelCache));
		rel->rd_amcache = c;
	}
	c->relnode = rel->rd_node.relNode;
	c->tableid = meta.tableid;
	c->local_next = c->local_end = 0;
	c->local_epoch = 0;
	return c;
}

uint64
rows_tableid(Relation rel)
{
	return rows_cache(rel)->tableid;
}

static uint64 rows_allocate_shared(Relation rel, int n);

/* the slot of rel, loaded from its metapage if needed; allocation lock held */
static RowidSlot *
rowid_slot(Relation rel)
{
	uint32		h = hash_bytes((const unsigned char *) &rel->rd_node, sizeof(RelFileNode));
	RowidSlot  *free_slot = NULL;
	RowidSlot  *s;
	NokvMetaPage meta;

	for (int i = 0; i < ROWID_PROBES; i++)
	{
		s = &rows_shared->slots[(h + i) % ROWID_SLOTS];
		if (RelFileNodeEquals(s->node, rel->rd_node))
			return s;
		if (free_slot == NULL && s->node.relNode == InvalidOid)
			free_slot = s;
	}
	/* evicting is safe: the metapage's mark covers every id handed out */
	if (free_slot == NULL)
		free_slot = &rows_shared->slots[(h + rows_shared->evict_hand++ % ROWID_PROBES) % ROWID_SLOTS];
	read_meta(rel, &meta);
	free_slot->node = rel->rd_node;
	free_slot->next = meta.rowid_hwm;
	free_slot->hwm = meta.rowid_hwm;
	return free_slot;
}

/*
 * n new row ids, consecutive.  Short inserts take them from the backend's
 * own range, refilled ROWID_LOCAL_CHUNK at a time; a longer request (a COPY
 * batch) takes exactly its ids from the table's shared counter.
 */
uint64
rows_allocate(Relation rel, int n)
{
	return rows_allocate_at(rel, n, NULL);
}

/* the same, also returning the memtable epoch the ids were taken under */
uint64
rows_allocate_at(Relation rel, int n, uint64 *epoch_out)
{
	RowsRelCache *c = rows_cache(rel);
	uint64		epoch = nokv_memtable_epoch(nokv_engine());
	uint64		first;

	if (epoch_out)
		*epoch_out = epoch;
	if (c->local_epoch == epoch && c->local_end - c->local_next >= (uint64) n)
	{
		first = c->local_next;
		c->local_next += n;
		return first;
	}
	if (n >= ROWID_LOCAL_CHUNK)
		return rows_allocate_shared(rel, n);
	first = rows_allocate_shared(rel, ROWID_LOCAL_CHUNK);
	c->local_next = first + n;
	c->local_end = first + ROWID_LOCAL_CHUNK;
	c->local_epoch = epoch;
	return first;
}

/* n ids from the table's shared counter, its metapage mark raised first if needed */
static uint64
rows_allocate_shared(Relation rel, int n)
{
	LWLock	   *lock = &rows_locks[0].lock;
	RowidSlot  *s;
	uint64		first;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	PG_TRY();
	{
		s = rowid_slot(rel);
		if (s->next + n > s->hwm)
		{
			uint64		hwm = s->next + n + Max(ROWID_CHUNK, s->next / 16);

			if (hwm > MAX_ROWID)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("nokv table \"%s\" has run out of row ids",
								RelationGetRelationName(rel)),
						 errhint("Copy the rows into a new table.")));
			write_meta_hwm(rel, hwm);
			s->hwm = hwm;
		}
		first = s->next;
		s->next += n;
	}
	PG_CATCH();
	{
		LWLockRelease(lock);
		PG_RE_THROW();
	}
	PG_END_TRY();
	LWLockRelease(lock);
	return first;
}

uint64
rows_high_water(Relation rel)
{
	LWLock	   *lock = &rows_locks[0].lock;
	uint64		next;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	PG_TRY();
	{
		next = rowid_slot(rel)->next;
	}
	PG_CATCH();
	{
		LWLockRelease(lock);
		PG_RE_THROW();
	}
	PG_END_TRY();
	LWLockRelease(lock);
	return next;
}

/* ---------- encoding ---------- */

void
row_encode_marker(StringInfo buf, uint8 flags, FullTransactionId fxid, CommandId cid,
				  uint8 mode, uint64 forward)
{
	char		hdr[NOKV_VH_SIZE];
	char		fw[8];

	nokv_vh_encode(hdr, flags, fxid, cid);
	appendBinaryStringInfo(buf, hdr, NOKV_VH_SIZE);
	if (flags & ROW_VH_LOCK)
		appendStringInfoChar(buf, (char) mode);
	else if (flags & ROW_VH_UPDATE)
	{
		put_be64(fw, forward);
		appendBinaryStringInfo(buf, fw, 8);
	}
}

void
row_encode_data(StringInfo buf, CommandId cid, MinimalTuple mt)
{
	char		hdr[NOKV_VH_SIZE];

	nokv_vh_encode(hdr, 0, GetCurrentFullTransactionId(), cid);
	appendBinaryStringInfo(buf, hdr, NOKV_VH_SIZE);
	appendBinaryStringInfo(buf, (char *) mt, mt->t_len);
}

/* put row key's data version (this transaction's) into b, without a copy of mt */
void
row_put_data(nokv_batch *b, const char *key, CommandId cid, MinimalTuple mt)
{
	char		hdr[NOKV_VH_SIZE];

	nokv_vh_encode(hdr, 0, GetCurrentFullTransactionId(), cid);
	if (nokv_batch_put2(b, ROW_CF, key, ROW_KEY_LEN, hdr, NOKV_VH_SIZE, (char *) mt,
						mt->t_len) != NOKV_OK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("nokv row of %u bytes is too large", mt->t_len)));
}

/*
 * Write the header of the MinimalTuple a formed heap tuple stores as
 * (offsetof(MinimalTupleData, t_bits) bytes at dst, which need not be
 * aligned): the MinimalTuple is the tuple's bytes from MINIMAL_TUPLE_OFFSET
 * on, with its length, zero padding, and only the infomask bits that
 * describe the data (a heap table's row carries hint bits).
 */
void
row_minimal_header(char *dst, HeapTuple tuple)
{
	uint32		len = tuple->t_len - MINIMAL_TUPLE_OFFSET;
	uint16		infomask2 = tuple->t_data->t_infomask2 & HEAP_NATTS_MASK;
	uint16		infomask = tuple->t_data->t_infomask & (HEAP_HASNULL | HEAP_HASVARWIDTH);

	StaticAssertStmt(MINIMAL_TUPLE_OFFSET + offsetof(MinimalTupleData, t_bits) ==
					 offsetof(HeapTupleHeaderData, t_bits),
					 "a minimal tuple is a heap tuple's tail");
	memcpy(dst + offsetof(MinimalTupleData, t_len), &len, sizeof(len));
	memset(dst + offsetof(MinimalTupleData, mt_padding), 0, MINIMAL_TUPLE_PADDING);
	memcpy(dst + offsetof(MinimalTupleData, t_infomask2), &infomask2, sizeof(infomask2));
	memcpy(dst + offsetof(MinimalTupleData, t_infomask), &infomask, sizeof(infomask));
	dst[offsetof(MinimalTupleData, t_hoff)] = (char) tuple->t_data->t_hoff;
}

/*
 * Put row key's data version from a formed heap tuple: the version header
 * vh (nokv_vh_encode, the same for every row a command writes) and the
 * tuple header written here, the rest straight from the tuple.
 */
void
row_put_formed(nokv_batch *b, const char *key, const char *vh, HeapTuple tuple)
{
	char		head[NOKV_VH_SIZE + offsetof(MinimalTupleData, t_bits)];
	size_t		body = offsetof(HeapTupleHeaderData, t_bits);

	memcpy(head, vh, NOKV_VH_SIZE);
	row_minimal_header(head + NOKV_VH_SIZE, tuple);
	if (nokv_batch_put2(b, ROW_CF, key, ROW_KEY_LEN, head, sizeof(head),
						(char *) tuple->t_data + body, tuple->t_len - body) != NOKV_OK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("nokv row of %u bytes is too large",
						(uint32) (tuple->t_len - MINIMAL_TUPLE_OFFSET))));
}

/* ---------- row state ---------- */

void
rowstate_init(RowState *rs, bool want_tuple)
{
	memset(rs, 0, sizeof(RowState));
	rs->want_tuple = want_tuple;
	rs->cxt = CurrentMemoryContext;
}

void
rowstate_reset(RowState *rs)
{
	if (rs->owned)
		pfree(rs->owned);
	rs->owned = NULL;
	rs->tuple = NULL;
	rs->tuple_len = 0;
	rs->found = false;
	rs->frozen = false;
	rs->xmin = InvalidTransactionId;
	rs->nmarkers = 0;
	rs->last_version = 0;
}

static void
add_marker(RowState *rs, const NokvVersionHeader *h, const char *payload, size_t plen)
{
	RowMarker  *m;

	if (rs->nmarkers == rs->maxmarkers)
	{
		rs->maxmarkers = rs->maxmarkers ? rs->maxmarkers * 2 : 8;
		rs->markers = rs->markers ?
			repalloc(rs->markers, sizeof(RowMarker) * rs->maxmarkers) :
			MemoryContextAlloc(rs->cxt, sizeof(RowMarker) * rs->maxmarkers);
	}
	m = &rs->markers[rs->nmarkers++];
	m->flags = h->flags;
	m->fxid = h->xmin;
	m->xid = XidFromFullTransactionId(h->xmin);
	m->cid = h->cmin;
	m->mode = (h->flags & ROW_VH_LOCK) && plen >= 1 ? (uint8) payload[0] : 0;
	m->forward = (h->flags & ROW_VH_UPDATE) && plen >= 8 ? get_be64(payload) : 0;
}

/* the data version, its header h already decoded from its vlen bytes */
static void
rowstate_set_decoded(RowState *rs, const NokvVersionHeader *h, size_t vlen)
{
	rs->found = true;
	rs->frozen = (h->flags & NOKV_VH_FROZEN) != 0;
	rs->xmin = rs->frozen ? FrozenTransactionId : XidFromFullTransactionId(h->xmin);
	rs->cmin = h->cmin;
	/* no copy: the caller points tuple at memory that outlives the hook */
	rs->tuple = NULL;
	rs->tuple_len = vlen - NOKV_VH_SIZE;
}

void
rowstate_set_data(RowState *rs, const char *value, size_t vlen)
{
	NokvVersionHeader h;

	if (nokv_vh_decode(value, vlen, &h))
		rowstate_set_decoded(rs, &h, vlen);
}

/*
 * Called by the engine for a key's versions, newest first: markers are
 * collected and skipped, the data version (the oldest) ends the walk.  A
 * new key, or a version not older than the last one seen (a new pass
 * over the same key), starts a new collection.
 */
bool
rowstate_collect(void *arg, int cf, const char *key, size_t klen,
				 uint64_t version, const char *value, size_t vlen)
{
	RowState   *rs = (RowState *) arg;
	NokvVersionHeader h;

	if (klen != ROW_KEY_LEN || !nokv_vh_decode(value, vlen, &h))
		return false;
	if (memcmp(rs->key, key, ROW_KEY_LEN) != 0 || version >= rs->last_version ||
		rs->found)
	{
		memcpy(rs->key, key, ROW_KEY_LEN);
		rs->nmarkers = 0;
		rs->found = false;
	}
	rs->last_version = version;
	if (h.flags & (NOKV_VH_DELETED | ROW_VH_LOCK))
	{
		add_marker(rs, &h, value + NOKV_VH_SIZE, vlen - NOKV_VH_SIZE);
		return false;
	}
	rowstate_set_decoded(rs, &h, vlen);
	return true;
}

bool
rowstate_read(nokv_db *db, uint64 tableid, uint64 rowid, RowState *rs)
{
	nokv_read_options ro;
	nokv_error	err;
	char		key[ROW_KEY_LEN];
	char	   *val = NULL;
	size_t		vlen;
	int			rc;

	rowstate_reset(rs);
	memset(rs->key, 0, ROW_KEY_LEN);
	row_key(key, tableid, rowid);
	nokv_read_options_init(&ro);
	ro.visible = rowstate_collect;
	ro.visible_arg = rs;
	ro.untracked = true;		/* a row's key names one version of it */
	rc = nokv_get(db, &ro, ROW_CF, key, ROW_KEY_LEN, &val, &vlen, &err);
	if (rc == NOKV_NOT_FOUND)
	{
		if (val)
			free(val);
		rs->found = false;
		return false;
	}
	if (rc != NOKV_OK)
	{
		if (val)
			free(val);
		nokv_raise_engine_error(rc, &err, "read");
	}
	/*
	 * The value the engine returned is the data version the hook accepted;
	 * keep it in palloc'd memory so that an error cannot leak it.
	 */
	if (rs->found && vlen >= NOKV_VH_SIZE && rs->want_tuple)
	{
		rs->owned = MemoryContextAlloc(rs->cxt, vlen - NOKV_VH_SIZE + 1);
		memcpy(rs->owned, val + NOKV_VH_SIZE, vlen - NOKV_VH_SIZE);
		rs->tuple = rs->owned;
		rs->tuple_len = vlen - NOKV_VH_SIZE;
	}
	if (val)
		free(val);
	return rs->found;
}

/* ---------- visibility ---------- */

static bool
xid_aborted(TransactionId xid)
{
	return !TransactionIdIsCurrentTransactionId(xid) &&
		!TransactionIdIsInProgress(xid) &&
		!TransactionIdDidCommit(xid);
}

RowMarker *
rowstate_mod_marker(RowState *rs)
{
	for (int i = 0; i < rs->nmarkers; i++)
	{
		RowMarker  *m = &rs->markers[i];

		if ((m->flags & ROW_VH_LOCK) || !(m->flags & NOKV_VH_DELETED))
			continue;
		if (xid_aborted(m->xid))
			continue;
		return m;
	}
	return NULL;
}

/*
 * The last xid found committed: what heap keeps in a tuple's hint bits.
 * The rows a scan meets mostly share a few xmins, and a committed xid is
 * neither the current transaction nor ever anything but committed, so only
 * the snapshot test remains for it.  (Like clog's own one-entry cache, it
 * would be stale only after 2^32 xids in one backend, and freezing sees to
 * it that no row keeps so old an xmin.)
 */
static TransactionId known_committed_xid = InvalidTransactionId;

/* did xid (command cid) commit before snapshot, or is it our earlier command */
static bool
xid_visible_mvcc(TransactionId xid, CommandId cid, Snapshot snapshot)
{
	if (xid == FrozenTransactionId)
		return true;
	if (xid == known_committed_xid)
		return !XidInMVCCSnapshot(xid, snapshot);
	if (TransactionIdIsCurrentTransactionId(xid))
		return cid < snapshot->curcid;
	if (XidInMVCCSnapshot(xid, snapshot))
		return false;
	if (!TransactionIdDidCommit(xid))
		return false;
	known_committed_xid = xid;
	return true;
}

static bool
xid_visible_self(TransactionId xid)
{
	if (xid == FrozenTransactionId || TransactionIdIsCurrentTransactionId(xid))
		return true;
	if (TransactionIdIsInProgress(xid))
		return false;
	return TransactionIdDidCommit(xid);
}

static bool
visible_mvcc(RowState *rs, Snapshot snapshot)
{
	if (!xid_visible_mvcc(rs->xmin, rs->cmin, snapshot))
		return false;
	for (int i = 0; i < rs->nmarkers; i++)
	{
		RowMarker  *m = &rs->markers[i];

		if (!(m->flags & ROW_VH_LOCK) && (m->flags & NOKV_VH_DELETED) &&
			xid_visible_mvcc(m->xid, m->cid, snapshot))
			return false;
	}
	return true;
}

static bool
visible_self(RowState *rs)
{
	if (!xid_visible_self(rs->xmin))
		return false;
	for (int i = 0; i < rs->nmarkers; i++)
	{
		RowMarker  *m = &rs->markers[i];

		if (!(m->flags & ROW_VH_LOCK) && (m->flags & NOKV_VH_DELETED) &&
			xid_visible_self(m->xid))
			return false;
	}
	return true;
}

/* heap's HeapTupleSatisfiesDirty: in-progress changes count, and are reported */
static bool
visible_dirty(RowState *rs, Snapshot snapshot)
{
	RowMarker  *m;

	snapshot->xmin = snapshot->xmax = InvalidTransactionId;
	snapshot->speculativeToken = 0;
	if (rs->xmin != FrozenTransactionId && !TransactionIdIsCurrentTransactionId(rs->xmin))
	{
		if (TransactionIdIsInProgress(rs->xmin))
			snapshot->xmin = rs->xmin;
		else if (!TransactionIdDidCommit(rs->xmin))
			return false;
	}
	m = rowstate_mod_marker(rs);
	if (m == NULL)
		return true;
	if (TransactionIdIsCurrentTransactionId(m->xid))
		return false;
	if (TransactionIdIsInProgress(m->xid))
	{
		snapshot->xmax = m->xid;
		return true;
	}
	return false;				/* committed delete */
}

/* SnapshotNonVacuumable: everything not yet dead to every snapshot */
static bool
visible_non_vacuumable(RowState *rs, Snapshot snapshot)
{
	RowMarker  *m;

	if (rs->xmin != FrozenTransactionId && xid_aborted(rs->xmin))
		return false;
	m = rowstate_mod_marker(rs);
	if (m == NULL || TransactionIdIsCurrentTransactionId(m->xid) ||
		TransactionIdIsInProgress(m->xid))
		return true;
	return !GlobalVisTestIsRemovableXid(snapshot->vistest, m->xid);
}

bool
rowstate_visible(RowState *rs, Snapshot snapshot)
{
	if (!rs->found)
		return false;
	switch (snapshot->snapshot_type)
	{
		case SNAPSHOT_MVCC:
			return visible_mvcc(rs, snapshot);
		case SNAPSHOT_SELF:
			return visible_self(rs);
		case SNAPSHOT_ANY:
		case SNAPSHOT_TOAST:
			return true;
		case SNAPSHOT_DIRTY:
			return visible_dirty(rs, snapshot);
		case SNAPSHOT_NON_VACUUMABLE:
			return visible_non_vacuumable(rs, snapshot);
		case SNAPSHOT_HISTORIC_MVCC:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("nokv tables cannot be read by logical decoding")));
	}
	return false;				/* keep compiler quiet */
}

/* heap's HeapTupleSatisfiesVacuum */
RowVacState
rowstate_vacuum(RowState *rs, TransactionId oldest_xmin)
{
	RowMarker  *m;

	if (!rs->found)
		return ROW_DEAD;
	m = rowstate_mod_marker(rs);
	if (rs->xmin != FrozenTransactionId)
	{
		if (TransactionIdIsCurrentTransactionId(rs->xmin) || TransactionIdIsInProgress(rs->xmin))
		{
			if (m != NULL && TransactionIdEquals(m->xid, rs->xmin))
				return ROW_DELETE_IN_PROGRESS;
			return ROW_INSERT_IN_PROGRESS;
		}
		if (!TransactionIdDidCommit(rs->xmin))
			return ROW_DEAD;
	}
	if (m == NULL)
		return ROW_LIVE;
	if (TransactionIdIsCurrentTransactionId(m->xid) || TransactionIdIsInProgress(m->xid))
		return ROW_DELETE_IN_PROGRESS;
	if (!TransactionIdDidCommit(m->xid))
		return ROW_LIVE;		/* aborted in between */
	if (TransactionIdPrecedes(m->xid, oldest_xmin))
		return ROW_DEAD;
	return ROW_RECENTLY_DEAD;
}

TransactionId
rowstate_oldest_xid(RowState *rs)
{
	TransactionId oldest = InvalidTransactionId;

	if (rs->found && TransactionIdIsNormal(rs->xmin))
		oldest = rs->xmin;
	for (int i = 0; i < rs->nmarkers; i++)
	{
		TransactionId x = rs->markers[i].xid;

		if (TransactionIdIsNormal(x) &&
			(!TransactionIdIsValid(oldest) || TransactionIdPrecedes(x, oldest)))
			oldest = x;
	}
	return oldest;
}

/* heap_tuple_from_minimal_tuple for unaligned bytes that may be corrupt */
HeapTuple
rowstate_tuple_copy(RowState *rs)
{
	uint32		mlen;
	HeapTuple	tup;

	if (rs->tuple == NULL || rs->tuple_len < SizeofMinimalTupleHeader)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("nokv row is missing or too short (%zu bytes)", rs->tuple_len)));
	memcpy(&mlen, rs->tuple, sizeof(uint32));	/* t_len comes first */
	if (mlen != rs->tuple_len)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("nokv row length %u does not match its %zu stored bytes",
						mlen, rs->tuple_len)));
	tup = (HeapTuple) palloc(HEAPTUPLESIZE + mlen + MINIMAL_TUPLE_OFFSET);
	tup->t_len = mlen + MINIMAL_TUPLE_OFFSET;
	ItemPointerSetInvalid(&tup->t_self);
	tup->t_tableOid = InvalidOid;
	tup->t_data = (HeapTupleHeader) ((char *) tup + HEAPTUPLESIZE);
	memcpy((char *) tup->t_data + MINIMAL_TUPLE_OFFSET, rs->tuple, mlen);
	memset(tup->t_data, 0, offsetof(HeapTupleHeaderData, t_infomask2));
	return tup;
}

HeapTuple
rowstate_heap_tuple(RowState *rs, Relation rel, uint64 rowid)
{
	HeapTuple	tup;
	RowMarker  *m;

	tup = rowstate_tuple_copy(rs);
	HeapTupleHeaderSetXmin(tup->t_data, rs->xmin);
	HeapTupleHeaderSetCmin(tup->t_data, rs->cmin);
	tup->t_data->t_infomask &= ~HEAP_XACT_MASK;
	tup->t_data->t_infomask |= HEAP_XMAX_INVALID;
	HeapTupleHeaderSetXmax(tup->t_data, InvalidTransactionId);
	m = rowstate_mod_marker(rs);
	if (m != NULL)
	{
		HeapTupleHeaderSetXmax(tup->t_data, m->xid);
		tup->t_data->t_infomask &= ~HEAP_XMAX_INVALID;
	}
	tid_from_rowid(&tup->t_self, rowid);
	tup->t_data->t_ctid = tup->t_self;
	tup->t_tableOid = RelationGetRelid(rel);
	return tup;
}

/* ---------- reclaiming space ---------- */

void
rows_drop_range(uint64 tableid)
{
	rows_drop_range_of(MyDatabaseId, tableid);
}

/* the rows of table tableid of database dboid, and its registry entry */
void
rows_drop_range_of(Oid dboid, uint64 tableid)
{
	nokv_batch *b = rows_new_batch();
	char		lo[ROW_KEY_LEN];
	char		hi[ROW_KEY_LEN];
	char		reg[REGISTRY_KEY_LEN];

	row_key(lo, tableid, 0);
	row_key(hi, tableid + 1, 0);
	registry_key(reg, dboid, tableid);
	if (nokv_batch_delete_range(b, ROW_CF, lo, ROW_KEY_LEN, hi, ROW_KEY_LEN) != NOKV_OK ||
		nokv_batch_delete(b, ROW_CF, reg, REGISTRY_KEY_LEN) != NOKV_OK)
	{
		nokv_batch_free(b);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	rows_write_batch(b);
}

/* ---------- iteration ---------- */

static void
rowiter_release(void *arg)
{
	RowIterGuard *g = (RowIterGuard *) arg;

	if (g->it)
		nokv_iter_free(g->it);
	g->it = NULL;
}

/*
 * The engine iterator pins memtables and SSTs: it must be freed even when
 * an error skips rowiter_end.  The guard that frees it with the current
 * memory context is allocated apart from the RowIter, which its owner may
 * free first.
 */
void
rowiter_begin(RowIter *ri, uint64 tableid, bool want_tuple)
{
	rowiter_begin_range(ri, tableid, 0, PG_UINT64_MAX, want_tuple);
}

/*
 * Row ids [lo, hi) only (hi PG_UINT64_MAX: to the end of the table): the
 * engine leaves out the memtables and tables that hold no key of the
 * range, so a narrow iterator is cheap to build and to seek.
 */
void
rowiter_begin_range(RowIter *ri, uint64 tableid, uint64 lo, uint64 hi, bool want_tuple)
{
	nokv_read_options ro;

	memset(ri, 0, sizeof(RowIter));
	ri->tableid = tableid;
	rowstate_init(&ri->rs, want_tuple);
	row_key(ri->lo, tableid, lo);
	if (hi == PG_UINT64_MAX)
		row_key(ri->hi, tableid + 1, 0);
	else
		row_key(ri->hi, tableid, hi);
	ri->pos = -1;

	nokv_read_options_init(&ro);
	ro.visible = rowstate_collect;
	ro.visible_arg = &ri->rs;
	ro.lower_bound = ri->lo;
	ro.lower_len = ROW_KEY_LEN;
	ro.upper_bound = ri->hi;
	ro.upper_len = ROW_KEY_LEN;
	ri->guard = palloc0(sizeof(RowIterGuard));
	ri->it = nokv_iter_new(nokv_engine(), &ro, ROW_CF);
	if (ri->it == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	ri->guard->it = ri->it;
	ri->guard->cb.func = rowiter_release;
	ri->guard->cb.arg = ri->guard;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &ri->guard->cb);
}

void
rowiter_seek(RowIter *ri, uint64 rowid)
{
	char		key[ROW_KEY_LEN];

	row_key(key, ri->tableid, rowid);
	nokv_iter_seek(ri->it, key, ROW_KEY_LEN);
	/* the next forward step takes the row the seek landed on */
	ri->pos = -2;
}

/* fill ri->rs for the row the engine iterator is on */
static void
rowiter_load(RowIter *ri, bool forward)
{
	size_t		klen;
	const char *key = nokv_iter_key(ri->it, &klen);

	ri->rowid = row_key_rowid(key);
	/* backward steps may show the hook a key's versions in any order */
	if (forward && memcmp(ri->rs.key, key, ROW_KEY_LEN) == 0 && ri->rs.found)
	{
		size_t		vlen;
		const char *v = nokv_iter_value(ri->it, &vlen);

		if (ri->rs.owned)
			pfree(ri->rs.owned);
		ri->rs.owned = NULL;
		ri->rs.tuple = vlen >= NOKV_VH_SIZE ? v + NOKV_VH_SIZE : NULL;
		ri->rs.tuple_len = vlen >= NOKV_VH_SIZE ? vlen - NOKV_VH_SIZE : 0;
		return;
	}
	/* the hook saw another key last: read this one on its own */
	(void) rowstate_read(nokv_engine(), ri->tableid, ri->rowid, &ri->rs);
}

bool
rowiter_step(RowIter *ri, ScanDirection dir)
{
	if (ri->it == NULL)
		return false;
	CHECK_FOR_INTERRUPTS();
	if (ScanDirectionIsBackward(dir))
	{
		if (ri->pos == 0 || ri->pos == -2)
			nokv_iter_prev(ri->it);
		else if (ri->pos == 1)
		{
			char		last[ROW_KEY_LEN];

			row_key(last, ri->tableid, PG_UINT64_MAX);
			nokv_iter_seek_for_prev(ri->it, last, ROW_KEY_LEN);
		}
		else
			return false;
	}
	else
	{
		if (ri->pos == -1)
			nokv_iter_seek(ri->it, ri->lo, ROW_KEY_LEN);
		else if (ri->pos == 0)
			nokv_iter_next(ri->it);
		else if (ri->pos == 1)
			return false;
		/* pos -2: a seek already positioned the iterator */
	}
	if (!nokv_iter_valid(ri->it))
	{
		nokv_error	err;
		int			rc = nokv_iter_status(ri->it, &err);

		if (rc != NOKV_OK)
			nokv_raise_engine_error(rc, &err, "scan");
		ri->pos = ScanDirectionIsBackward(dir) ? -1 : 1;
		return false;
	}
	ri->pos = 0;
	rowiter_load(ri, !ScanDirectionIsBackward(dir));
	return true;
}

void
rowiter_end(RowIter *ri)
{
	if (ri->guard)
		rowiter_release(ri->guard);
	ri->it = NULL;
	rowstate_reset(&ri->rs);
}
