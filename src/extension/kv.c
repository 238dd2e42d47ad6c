/*-------------------------------------------------------------------------
 *
 * kv.c
 *	  The engine's key-value namespace as an internal C API: keys, TTLs,
 *	  transactional writes, snapshot reads and ordered iteration.
 *
 * Three surfaces share one namespace: the SQL functions (kv_funcs.c), the
 * foreign data wrapper (src/fdw) and the RESP gateway (src/gateway).  They
 * all go through this file so that a key written by one reads the same
 * through the others: the same namespace byte in front of the user's key,
 * the same version header in front of the value (mvcc.c), the same TTL
 * clock (milliseconds since the Unix epoch) and the same writer protocol
 * (lock the key, wait for concurrent writers, log the batch in PostgreSQL's
 * WAL under the current (sub)transaction's xid).  A caller holding several
 * keys' locks may collect their writes in a batch (NokvKvBatch) and log
 * them as one record.
 *
 * Everything here may ereport(ERROR); callers run inside a transaction.
 *
 * src/extension/kv.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/procarray.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "nokv_pg.h"

/* milliseconds between the Unix and PostgreSQL epochs */
#define EPOCH_SHIFT_MS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000)

/*
 * What the engine charges a memtable for an entry beyond its key and value
 * (internal key trailer, value header, skiplist node with its tower); a
 * batch may cost at most half a memtable.
 */
#define KV_ENTRY_OVERHEAD 512

struct NokvKvIter
{
	nokv_iter  *it;				/* NULL once ended */
	char	   *lo;				/* inclusive lower bound (engine key) */
	char	   *hi;				/* exclusive upper bound (engine key) */
	size_t		hilen;
	bool		started;
	MemoryContextCallback cb;
};

/* ---------- keys, column families, clocks ---------- */

int
nokv_kv_cf(const char *name)
{
	int			cf = nokv_cf_from_name(name);

	if (cf < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown column family \"%s\"", name),
				 errhint("The column families are default, lock and write.")));
	return cf;
}

char *
nokv_kv_key(const char *ukey, size_t ulen, size_t *klen)
{
	char	   *key;

	if (ulen > NOKV_KV_MAX_KEY)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("nokv key of %zu bytes exceeds the maximum of %d bytes",
						ulen, NOKV_KV_MAX_KEY)));
	key = palloc(ulen + 1);
	key[0] = NOKV_NS_KV;
	if (ulen)
		memcpy(key + 1, ukey, ulen);
	*klen = ulen + 1;
	return key;
}

void
nokv_kv_check_value_size(size_t klen, size_t vlen)
{
	size_t		limit = (size_t) nokv_memtable_size_kb * 1024 / 2;

	if (klen + vlen + NOKV_VH_SIZE + KV_ENTRY_OVERHEAD > limit || vlen > NOKV_MAX_VALUE_SIZE - NOKV_VH_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("nokv value of %zu bytes is too large", vlen),
				 errdetail("A key and value together must fit in half a memtable (nokv.memtable_size)."),
				 errhint("Raise nokv.memtable_size or split the value.")));
}

size_t
nokv_kv_max_value_size(size_t klen)
{
	size_t		limit = (size_t) nokv_memtable_size_kb * 1024 / 2;
	size_t		over = klen + NOKV_VH_SIZE + KV_ENTRY_OVERHEAD;

	if (over >= limit)
		return 0;
	return Min(limit - over, (size_t) NOKV_MAX_VALUE_SIZE - NOKV_VH_SIZE);
}

uint64
nokv_kv_now_ms(void)
{
	return (uint64) (GetCurrentTimestamp() / 1000 + EPOCH_SHIFT_MS);
}

TimestampTz
nokv_kv_expiry_to_timestamptz(uint64 ms)
{
	return ((int64) ms - EPOCH_SHIFT_MS) * 1000;
}

uint64
nokv_kv_timestamptz_to_expiry(TimestampTz t)
{
	int64		ms = t / 1000 + EPOCH_SHIFT_MS;

	/* an expiry at or before the epoch is already past: 1 ms, not "none" */
	return ms > 0 ? (uint64) ms : 1;
}

Snapshot
nokv_kv_read_snapshot(void)
{
	return ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
}

/* ---------- writes ---------- */

bool
nokv_kv_lock(nokv_db *db, int cf, const char *key, size_t klen)
{
	nokv_mvcc_begin_write();
	return nokv_mvcc_lock_key(db, cf, key, klen);
}

void
nokv_kv_unlock(int cf, const char *key, size_t klen)
{
	nokv_mvcc_unlock_key(cf, key, klen);
}

void
nokv_kv_write_locked(nokv_db *db, int cf, const char *key, size_t klen,
					 const char *value, size_t vlen, uint64 expires_at)
{
	nokv_batch *b;
	char	   *rec;
	int			rc;

	rec = palloc(NOKV_VH_SIZE + vlen);
	nokv_vh_encode(rec, value ? 0 : NOKV_VH_DELETED, GetCurrentFullTransactionId(),
				   GetCurrentCommandId(true));
	if (vlen)
		memcpy(rec + NOKV_VH_SIZE, value, vlen);
	b = nokv_batch_new();
	if (b == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	PG_TRY();
	{
		rc = nokv_batch_put_ttl(b, cf, key, klen, rec, NOKV_VH_SIZE + vlen, expires_at);
		if (rc != NOKV_OK)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("nokv value of %zu bytes is too large", vlen)));
		nokv_xlog_write(db, b);
	}
	PG_FINALLY();
	{
		nokv_batch_free(b);
	}
	PG_END_TRY();
	pfree(rec);
}

void
nokv_kv_put(nokv_db *db, int cf, const char *key, size_t klen,
			const char *value, size_t vlen, uint64 expires_at)
{
	Assert(value != NULL);
	nokv_kv_check_value_size(klen, vlen);
	(void) nokv_kv_lock(db, cf, key, klen);
	nokv_kv_write_locked(db, cf, key, klen, value, vlen, expires_at);
	nokv_kv_unlock(cf, key, klen);
}

bool
nokv_kv_delete(nokv_db *db, int cf, const char *key, size_t klen)
{
	bool		existed = nokv_kv_lock(db, cf, key, klen);

	if (existed)
		nokv_kv_write_locked(db, cf, key, klen, NULL, 0, 0);
	nokv_kv_unlock(cf, key, klen);
	return existed;
}

/* ---------- batched writes ---------- */

typedef struct KvBatchEntry
{
	int			cf;
	char	   *key;
	size_t		klen;
	char	   *rec;			/* version header and value */
	size_t		reclen;
	uint64		expires_at;
	uint32		hash;
} KvBatchEntry;

struct NokvKvBatch
{
	MemoryContext cxt;			/* entries, keys and values; reset by a write */
	KvBatchEntry *entries;
	int			count;
	int			cap;
	int		   *slots;			/* open addressing: entry index + 1, 0 empty */
	int			nslots;			/* a power of two, at least twice count */
	size_t		bytes;			/* keys and records */
	size_t		cost;			/* what the engine charges a memtable for them */
};

NokvKvBatch *
nokv_kv_batch_create(MemoryContext parent)
{
	NokvKvBatch *b = MemoryContextAllocZero(parent, sizeof(NokvKvBatch));

	b->cxt = AllocSetContextCreate(parent, "nokv kv batch", ALLOCSET_DEFAULT_SIZES);
	return b;
}

static uint32
batch_hash(int cf, const char *key, size_t klen)
{
	return (uint32) hash_bytes_extended((const unsigned char *) key, (int) klen, (uint64) cf);
}

/* the slot of (cf, key): its entry's, or the empty one where it would go */
static int
batch_slot(NokvKvBatch *b, int cf, const char *key, size_t klen, uint32 h)
{
	int			mask = b->nslots - 1;

	for (int i = h & mask;; i = (i + 1) & mask)
	{
		KvBatchEntry *e;

		if (b->slots[i] == 0)
			return i;
		e = &b->entries[b->slots[i] - 1];
		if (e->hash == h && e->cf == cf && e->klen == klen && memcmp(e->key, key, klen) == 0)
			return i;
	}
}

bool
nokv_kv_batch_get(NokvKvBatch *b, int cf, const char *key, size_t klen,
				  const char **value, size_t *vlen, uint64 *expires_at)
{
	KvBatchEntry *e;
	int			slot;

	if (b->count == 0)
		return false;
	slot = b->slots[batch_slot(b, cf, key, klen, batch_hash(cf, key, klen))];
	if (slot == 0)
		return false;
	e = &b->entries[slot - 1];
	if (e->rec[0] & NOKV_VH_DELETED)
	{
		*value = NULL;
		*vlen = 0;
		*expires_at = 0;
	}
	else
	{
		*value = e->rec + NOKV_VH_SIZE;
		*vlen = e->reclen - NOKV_VH_SIZE;
		*expires_at = e->expires_at;
	}
	return true;
}

bool
nokv_kv_batch_fits(NokvKvBatch *b, size_t klen, size_t vlen)
{
	size_t		limit = (size_t) nokv_memtable_size_kb * 1024 / 2;

	return b->cost + klen + vlen + NOKV_VH_SIZE + KV_ENTRY_OVERHEAD <= limit;
}

void
nokv_kv_batch_put(NokvKvBatch *b, int cf, const char *key, size_t klen,
				  const char *value, size_t vlen, uint64 expires_at)
{
	uint32		h = batch_hash(cf, key, klen);
	KvBatchEntry *e;
	char	   *rec;
	int			slot;

	if (b->count == 0 || b->count * 2 >= b->nslots)
	{
		int			nslots = Max(b->nslots * 2, 64);

		/* rehash into a table twice the size */
		b->slots = MemoryContextAllocZero(b->cxt, nslots * sizeof(int));
		b->nslots = nslots;
		for (int i = 0; i < b->count; i++)
		{
			KvBatchEntry *o = &b->entries[i];

			b->slots[batch_slot(b, o->cf, o->key, o->klen, o->hash)] = i + 1;
		}
	}
	rec = MemoryContextAllocHuge(b->cxt, NOKV_VH_SIZE + vlen);
	nokv_vh_encode(rec, value ? 0 : NOKV_VH_DELETED, GetCurrentFullTransactionId(),
				   GetCurrentCommandId(true));
	if (vlen)
		memcpy(rec + NOKV_VH_SIZE, value, vlen);

	slot = batch_slot(b, cf, key, klen, h);
	if (b->slots[slot] != 0)
	{
		/* the key again: nothing can have read the earlier write */
		e = &b->entries[b->slots[slot] - 1];
		b->bytes -= e->reclen;
		b->cost -= e->reclen;
		pfree(e->rec);
	}
	else
	{
		if (b->count >= b->cap)
		{
			int			cap = Max(b->cap * 2, 64);

			b->entries = b->entries ? repalloc_huge(b->entries, cap * sizeof(KvBatchEntry))
				: MemoryContextAllocHuge(b->cxt, cap * sizeof(KvBatchEntry));
			b->cap = cap;
		}
		e = &b->entries[b->count++];
		e->cf = cf;
		e->hash = h;
		e->key = MemoryContextAlloc(b->cxt, klen);
		memcpy(e->key, key, klen);
		e->klen = klen;
		b->slots[slot] = b->count;
		b->bytes += klen;
		b->cost += klen + KV_ENTRY_OVERHEAD;
	}
	e->rec = rec;
	e->reclen = NOKV_VH_SIZE + vlen;
	e->expires_at = expires_at;
	b->bytes += e->reclen;
	b->cost += e->reclen;
}

int
nokv_kv_batch_count(NokvKvBatch *b)
{
	return b->count;
}

size_t
nokv_kv_batch_bytes(NokvKvBatch *b)
{
	return b->bytes;
}

void
nokv_kv_batch_reset(NokvKvBatch *b)
{
	MemoryContextReset(b->cxt);
	b->entries = NULL;
	b->count = b->cap = 0;
	b->slots = NULL;
	b->nslots = 0;
	b->bytes = b->cost = 0;
}

void
nokv_kv_batch_write(nokv_db *db, NokvKvBatch *b)
{
	nokv_batch *eb;

	if (b->count == 0)
		return;
	eb = nokv_batch_new();
	if (eb == NULL)
	{
		nokv_kv_batch_reset(b);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	PG_TRY();
	{
		for (int i = 0; i < b->count; i++)
		{
			KvBatchEntry *e = &b->entries[i];

			if (nokv_batch_put_ttl(eb, e->cf, e->key, e->klen, e->rec, e->reclen,
								   e->expires_at) != NOKV_OK)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("nokv value of %zu bytes is too large", e->reclen - NOKV_VH_SIZE)));
		}
		nokv_xlog_write(db, eb);
	}
	PG_FINALLY();
	{
		nokv_batch_free(eb);
		nokv_kv_batch_reset(b);
	}
	PG_END_TRY();
}

/* ---------- reads ---------- */

/*
 * The engine's record of (cf, key) visible to snap: malloc'd (free() it),
 * the user's value at raw + NOKV_VH_SIZE; NULL if none.
 */
static char *
kv_get_raw(nokv_db *db, int cf, const char *key, size_t klen, Snapshot snap,
		   size_t *vlen, uint64 *expires_at)
{
	nokv_read_options ro;
	nokv_error	err;
	NokvVersionHeader h;
	char	   *raw = NULL;
	size_t		rawlen;
	uint64_t	exp = 0;
	int			rc;

	nokv_mvcc_check_access();
	nokv_read_options_init(&ro);
	ro.visible = nokv_mvcc_visible;
	ro.visible_arg = snap ? snap : nokv_kv_read_snapshot();
	rc = nokv_get_ttl(db, &ro, cf, key, klen, &raw, &rawlen, &exp, &err);
	if (rc == NOKV_NOT_FOUND)
		return NULL;
	if (rc != NOKV_OK)
		nokv_raise_engine_error(rc, &err, "read");
	if (!nokv_vh_decode(raw, rawlen, &h) || (h.flags & NOKV_VH_DELETED))
	{
		free(raw);
		return NULL;
	}
	*vlen = rawlen - NOKV_VH_SIZE;
	*expires_at = exp;
	return raw;
}

char *
nokv_kv_get(nokv_db *db, int cf, const char *key, size_t klen, Snapshot snap,
			size_t *vlen, uint64 *expires_at)
{
	char	   *raw;
	char	   *out;
	uint64		exp;

	raw = kv_get_raw(db, cf, key, klen, snap, vlen, &exp);
	if (raw == NULL)
		return NULL;
	out = palloc_extended(*vlen + 1, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	if (out == NULL)
	{
		free(raw);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	memcpy(out, raw + NOKV_VH_SIZE, *vlen);
	out[*vlen] = '\0';
	free(raw);
	if (expires_at)
		*expires_at = exp;
	return out;
}

bool
nokv_kv_get_with(nokv_db *db, int cf, const char *key, size_t klen, Snapshot snap,
				 NokvKvValueFn fn, void *arg)
{
	char	   *raw;
	size_t		vlen;
	uint64		exp;

	raw = kv_get_raw(db, cf, key, klen, snap, &vlen, &exp);
	if (raw == NULL)
		return false;
	PG_TRY();
	{
		fn(arg, raw + NOKV_VH_SIZE, vlen, exp);
	}
	PG_FINALLY();
	{
		free(raw);
	}
	PG_END_TRY();
	return true;
}

/* ---------- iteration ---------- */

static void
iter_release(void *arg)
{
	NokvKvIter *ki = (NokvKvIter *) arg;

	if (ki->it)
		nokv_iter_free(ki->it);
	ki->it = NULL;
}

NokvKvIter *
nokv_kv_iter_begin(nokv_db *db, int cf, const char *lo, size_t lolen,
				   const char *hi, size_t hilen, Snapshot snap)
{
	NokvKvIter *ki = palloc0(sizeof(NokvKvIter));
	nokv_read_options ro;
	static const char ns_lo = NOKV_NS_KV;
	static const char ns_hi = NOKV_NS_KV + 1;

	nokv_mvcc_check_access();
	if (lo == NULL)
	{
		lo = &ns_lo;
		lolen = 1;
	}
	if (hi == NULL)
	{
		hi = &ns_hi;
		hilen = 1;
	}
	/* the engine keeps pointers to the bounds */
	ki->lo = palloc(lolen);
	memcpy(ki->lo, lo, lolen);
	ki->hi = palloc(hilen);
	memcpy(ki->hi, hi, hilen);
	ki->hilen = hilen;

	nokv_read_options_init(&ro);
	ro.visible = nokv_mvcc_visible;
	ro.visible_arg = snap ? snap : nokv_kv_read_snapshot();
	ro.lower_bound = ki->lo;
	ro.lower_len = lolen;
	ro.upper_bound = ki->hi;
	ro.upper_len = hilen;
	ki->it = nokv_iter_new(db, &ro, cf);
	if (ki->it == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	/* an error or transaction end frees the engine iterator with the context */
	ki->cb.func = iter_release;
	ki->cb.arg = ki;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &ki->cb);
	nokv_iter_seek(ki->it, ki->lo, lolen);
	return ki;
}

void
nokv_kv_iter_seek(NokvKvIter *ki, const char *key, size_t klen)
{
	Assert(ki->it != NULL);
	nokv_iter_seek(ki->it, key, klen);
	ki->started = false;
}

bool
nokv_kv_iter_next(NokvKvIter *ki, NokvKvEntry *e)
{
	nokv_error	err;
	int			rc;

	if (ki->it == NULL)
		return false;
	for (;;)
	{
		size_t		klen;
		size_t		vlen;
		const char *k;
		const char *v;
		NokvVersionHeader h;

		if (ki->started)
			nokv_iter_next(ki->it);
		ki->started = true;
		CHECK_FOR_INTERRUPTS();
		if (!nokv_iter_valid(ki->it))
			break;
		k = nokv_iter_key(ki->it, &klen);
		v = nokv_iter_value(ki->it, &vlen);
		if (!nokv_vh_decode(v, vlen, &h) || (h.flags & NOKV_VH_DELETED))
			continue;
		e->key = k + 1;
		e->key_len = klen - 1;
		e->value = v + NOKV_VH_SIZE;
		e->value_len = vlen - NOKV_VH_SIZE;
		e->expires_at = nokv_iter_expires_at(ki->it);
		e->version = nokv_iter_version(ki->it);
		return true;
	}
	rc = nokv_iter_status(ki->it, &err);
	if (rc != NOKV_OK)
		nokv_raise_engine_error(rc, &err, "scan");
	return false;
}

void
nokv_kv_iter_end(NokvKvIter *ki)
{
	iter_release(ki);
}

/* ---------- versions (optimistic checks) ---------- */

typedef struct NewestCommitted
{
	bool		found;
	uint64		version;
} NewestCommitted;

/* the newest version whose writer committed or is this transaction */
static bool
newest_committed(void *arg, int cf, const char *key, size_t klen,
				 uint64_t version, const char *value, size_t vlen)
{
	NewestCommitted *nc = (NewestCommitted *) arg;
	NokvVersionHeader h;
	TransactionId xid;

	if (!nokv_vh_decode(value, vlen, &h))
		return false;
	xid = XidFromFullTransactionId(h.xmin);
	if (!(h.flags & NOKV_VH_FROZEN) && !TransactionIdIsCurrentTransactionId(xid))
	{
		/* in-progress checks come first, as in nokv_mvcc_visible */
		if (TransactionIdIsInProgress(xid) || !TransactionIdDidCommit(xid))
			return false;
	}
	nc->found = true;
	nc->version = version;
	return true;
}

/*
 * The engine version of the newest version of (cf, key) that committed or
 * that this transaction wrote, deletes and expired values included (they
 * are changes too); 0 if there is none.  *live says whether that version
 * is a value (not a delete), *expires_at gives its expiry.  Two calls
 * return the same version exactly when no write of the key committed in
 * between, which is what an optimistic check (the gateway's WATCH) needs.
 */
uint64
nokv_kv_newest_version(nokv_db *db, int cf, const char *key, size_t klen,
					   bool *live, uint64 *expires_at)
{
	nokv_read_options ro;
	nokv_error	err;
	NewestCommitted nc = {0};
	NokvVersionHeader h;
	char	   *raw = NULL;
	size_t		rawlen = 0;
	uint64_t	exp = 0;
	int			rc;

	nokv_read_options_init(&ro);
	ro.visible = newest_committed;
	ro.visible_arg = &nc;
	rc = nokv_get_ttl(db, &ro, cf, key, klen, &raw, &rawlen, &exp, &err);
	if (rc != NOKV_OK && rc != NOKV_NOT_FOUND)
		nokv_raise_engine_error(rc, &err, "read");
	*live = rc == NOKV_OK && nokv_vh_decode(raw, rawlen, &h) && !(h.flags & NOKV_VH_DELETED);
	*expires_at = rc == NOKV_OK ? exp : 0;
	if (raw)
		free(raw);
	return nc.found ? nc.version : 0;
}
