/*-------------------------------------------------------------------------
 *
 * mvcc.c
 *	  PostgreSQL transaction ids in engine values: visibility, concurrent
 *	  writers, PREPARE, and freezing by compaction.
 *
 * Each engine version of a key carries a small header with the writing
 * (sub)transaction's full xid and command id (NokvVersionHeader); a delete
 * is a version with the DELETED flag.  A reader walks a key's versions
 * newest first and takes the first one its snapshot sees, exactly as heap
 * decides tuple visibility: own changes by command id, then the snapshot's
 * in-progress list, then the commit log.  So nokv and heap changes of one
 * transaction commit or vanish together, and ROLLBACK TO SAVEPOINT hides a
 * subtransaction's versions for free.
 *
 * Writers of one key serialize on a heavyweight lock of the key's hash
 * (an advisory-type lock tag whose fourth field is NOKV_KEY_LOCK_FIELD),
 * held only while they check the newest version and append theirs.  If
 * that version's writer is still running they release it and wait on its
 * xid with XactLockTableWait, so the deadlock detector sees the wait.
 * Afterwards READ COMMITTED proceeds; REPEATABLE READ fails with a
 * serialization error if the other writer committed a version its
 * snapshot cannot see.  SERIALIZABLE is refused: nokv takes no predicate
 * locks, and silently running it as REPEATABLE READ would be a lie.
 *
 * Compaction is the garbage collector and the freezer (the host_mvcc
 * compaction filter): a version whose writer committed before the oldest
 * xmin any snapshot may still have hides every older version, and once its
 * xid is older than nokv.freeze_max_age / 2 it is also marked FROZEN so the
 * commit log is never needed for it again; an aborted writer's version is
 * dropped.
 *
 * src/extension/mvcc.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/procarray.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

#include "nokv_pg.h"

#define NOKV_KEY_LOCK_FIELD 0x6e6b	/* "nk" */

static bool xact_wrote_nokv = false;

/* ---------- the version header ---------- */

/* little-endian on disk, whatever the host */
static inline uint64
vh_le64(uint64 v)
{
#ifdef WORDS_BIGENDIAN
	return pg_bswap64(v);
#else
	return v;
#endif
}

static inline uint32
vh_le32(uint32 v)
{
#ifdef WORDS_BIGENDIAN
	return pg_bswap32(v);
#else
	return v;
#endif
}

void
nokv_vh_encode(char *out, uint8 flags, FullTransactionId xmin, CommandId cmin)
{
	uint64		x = vh_le64(U64FromFullTransactionId(xmin));
	uint32		c = vh_le32(cmin);

	out[0] = (char) flags;
	memcpy(out + 1, &x, sizeof(x));
	memcpy(out + 9, &c, sizeof(c));
}

bool
nokv_vh_decode(const char *v, size_t len, NokvVersionHeader *h)
{
	uint64		x;
	uint32		c;

	if (len < NOKV_VH_SIZE)
		return false;
	h->flags = (uint8) v[0];
	memcpy(&x, v + 1, sizeof(x));
	memcpy(&c, v + 9, sizeof(c));
	h->xmin = FullTransactionIdFromU64(vh_le64(x));
	h->cmin = vh_le32(c);
	return true;
}

/* ---------- readers ---------- */

/*
 * Heap's HeapTupleSatisfiesMVCC for an xmin-only version: in-progress
 * checks come before the commit log, as heap's race note requires.
 */
bool
nokv_mvcc_visible(void *arg, int cf, const char *key, size_t klen,
				  uint64_t version, const char *value, size_t vlen)
{
	Snapshot	snapshot = (Snapshot) arg;
	NokvVersionHeader h;
	TransactionId xid;

	if (!nokv_vh_decode(value, vlen, &h))
		return false;			/* not ours: never visible */
	if (h.flags & NOKV_VH_FROZEN)
		return true;
	xid = XidFromFullTransactionId(h.xmin);
	if (TransactionIdIsCurrentTransactionId(xid))
		return h.cmin < snapshot->curcid;
	if (XidInMVCCSnapshot(xid, snapshot))
		return false;
	return TransactionIdDidCommit(xid);
}

/* ---------- writers ---------- */

typedef struct NewestWriter
{
	bool		found;
	bool		frozen;
	TransactionId xid;
} NewestWriter;

/* the newest version whose writer did not abort */
static bool
newest_not_aborted(void *arg, int cf, const char *key, size_t klen,
				   uint64_t version, const char *value, size_t vlen)
{
	NewestWriter *nw = (NewestWriter *) arg;
	NokvVersionHeader h;
	TransactionId xid;

	if (!nokv_vh_decode(value, vlen, &h))
		return false;
	if (h.flags & NOKV_VH_FROZEN)
	{
		nw->found = true;
		nw->frozen = true;
		return true;
	}
	xid = XidFromFullTransactionId(h.xmin);
	if (TransactionIdIsCurrentTransactionId(xid) || TransactionIdIsInProgress(xid) ||
		TransactionIdDidCommit(xid))
	{
		nw->found = true;
		nw->xid = xid;
		return true;
	}
	return false;
}

void
nokv_mvcc_check_access(void)
{
	if (IsolationIsSerializable())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("nokv does not support SERIALIZABLE transactions"),
				 errhint("Use REPEATABLE READ: concurrent updates of one key then fail with a serialization error.")));
}

void
nokv_mvcc_begin_write(void)
{
	nokv_mvcc_check_access();
	nokv_mvcc_prepare_write();
}

/*
 * What every nokv write needs first: an xid, a writable transaction, and
 * the PREPARE guard and sync mode armed.  Table rows take SERIALIZABLE's
 * predicate locks themselves (src/tableam), so this does not refuse it.
 */
void
nokv_mvcc_prepare_write(void)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot write nokv data during recovery")));
	PreventCommandIfReadOnly("nokv write");
	(void) GetCurrentTransactionId();
	if (!xact_wrote_nokv)
	{
		xact_wrote_nokv = true;
		if (nokv_pg_sync_mode != NOKV_PG_SYNC_INHERIT)
			(void) set_config_option("synchronous_commit",
									 nokv_pg_sync_mode == NOKV_PG_SYNC_ON ? "on" : "off",
									 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
									 true, 0, false);
	}
}

static void
key_lock_tag(LOCKTAG *tag, int cf, const char *key, size_t klen)
{
	uint64		h = hash_bytes_extended((const unsigned char *) key, (int) klen, (uint64) cf);

	SET_LOCKTAG_ADVISORY(*tag, 0, (uint32) (h >> 32), (uint32) h, NOKV_KEY_LOCK_FIELD);
}

/*
 * Returns holding the key's lock, once no other running transaction has
 * the newest version of the key and the isolation level allows writing;
 * true if that newest version is a live value (what a delete removes).
 */
bool
nokv_mvcc_lock_key(nokv_db *db, int cf, const char *key, size_t klen)
{
	LOCKTAG		tag;

	key_lock_tag(&tag, cf, key, klen);
	for (;;)
	{
		NewestWriter nw = {0};
		nokv_read_options ro;
		nokv_error	err;
		char	   *val = NULL;
		size_t		vlen;
		int			rc;
		bool		live;
		NokvVersionHeader h;

		(void) LockAcquire(&tag, ExclusiveLock, false, false);
		nokv_read_options_init(&ro);
		ro.visible = newest_not_aborted;
		ro.visible_arg = &nw;
		ro.fill_cache = true;
		rc = nokv_get(db, &ro, cf, key, klen, &val, &vlen, &err);
		live = rc == NOKV_OK && nokv_vh_decode(val, vlen, &h) && !(h.flags & NOKV_VH_DELETED);
		if (val)
			free(val);
		if (rc != NOKV_OK && rc != NOKV_NOT_FOUND)
		{
			LockRelease(&tag, ExclusiveLock, false);
			nokv_raise_engine_error(rc, &err, "read");
		}
		/*
		 * An expired newest version reads as NOT_FOUND but still names its
		 * writer in nw, which is what matters here.
		 */
		if (!nw.found || nw.frozen || TransactionIdIsCurrentTransactionId(nw.xid))
			return live;
		if (TransactionIdIsInProgress(nw.xid))
		{
			LockRelease(&tag, ExclusiveLock, false);
			XactLockTableWait(nw.xid, NULL, NULL, XLTW_None);
			continue;
		}
		if (IsolationUsesXactSnapshot() && TransactionIdDidCommit(nw.xid) &&
			XidInMVCCSnapshot(nw.xid, GetTransactionSnapshot()))
		{
			LockRelease(&tag, ExclusiveLock, false);
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update"),
					 errdetail("Transaction %u changed the nokv key after this transaction's snapshot was taken.",
							   nw.xid)));
		}
		return live;
	}
}

void
nokv_mvcc_unlock_key(int cf, const char *key, size_t klen)
{
	LOCKTAG		tag;

	key_lock_tag(&tag, cf, key, klen);
	LockRelease(&tag, ExclusiveLock, false);
}

/* ---------- transactions ---------- */

static void
nokv_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (xact_wrote_nokv)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has written nokv data"),
						 errhint("Commit or roll back the transaction instead.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			xact_wrote_nokv = false;
			break;
		default:
			break;
	}
}

void
nokv_mvcc_init(void)
{
	RegisterXactCallback(nokv_xact_callback, NULL);
}

/* ---------- compaction: freezing and dropping ---------- */

static TransactionId filter_horizon = InvalidTransactionId;
static TransactionId filter_freeze_limit = InvalidTransactionId;
static uint32 filter_calls = 0;
static char *filter_buf = NULL;
static size_t filter_buf_size = 0;

static TransactionId freeze_limit_override = InvalidTransactionId;

void
nokv_mvcc_set_freeze_limit(TransactionId limit)
{
	freeze_limit_override = limit;
	filter_horizon = InvalidTransactionId;	/* recompute the limits now */
}

/*
 * Called for every version, newest first per key.  Nothing is decided
 * during recovery: the commit log is not final until redo ends.
 */
nokv_filter_decision
nokv_mvcc_compaction_filter(void *arg, const nokv_filter_entry *e,
							const char **new_value, size_t *new_len)
{
	NokvVersionHeader h;
	TransactionId xid;
	bool		gone;

	if (RecoveryInProgress() || !nokv_vh_decode(e->value, e->value_len, &h))
		return NOKV_FILTER_KEEP;
	/* a row lock matters only while its transaction runs */
	if (h.flags & NOKV_VH_LOCK_ONLY)
	{
		xid = XidFromFullTransactionId(h.xmin);
		if (TransactionIdIsNormal(xid) && TransactionIdIsInProgress(xid))
			return NOKV_FILTER_KEEP;
		return NOKV_FILTER_DROP;
	}
	gone = (h.flags & NOKV_VH_DELETED) || e->expired;
	if (h.flags & NOKV_VH_FROZEN)
		return gone ? NOKV_FILTER_DELETE_KEY : NOKV_FILTER_KEEP_AS_BASE;

	if ((filter_calls++ & 1023) == 0 || !TransactionIdIsValid(filter_horizon))
	{
		TransactionId next = XidFromFullTransactionId(ReadNextFullTransactionId());

		filter_horizon = GetOldestNonRemovableTransactionId(NULL);
		/* like vacuum_freeze_min_age: rewriting young values has no benefit */
		filter_freeze_limit = next - (TransactionId) (nokv_freeze_max_age / 2);
		if (!TransactionIdIsNormal(filter_freeze_limit))
			filter_freeze_limit = FirstNormalTransactionId;
	}
	/* VACUUM of a nokv table freezes what its own freeze limit says */
	if (TransactionIdIsValid(freeze_limit_override) &&
		TransactionIdFollows(freeze_limit_override, filter_freeze_limit))
		filter_freeze_limit = freeze_limit_override;
	xid = XidFromFullTransactionId(h.xmin);
	if (!TransactionIdIsNormal(xid))
		return NOKV_FILTER_KEEP;
	if (!TransactionIdPrecedes(xid, filter_horizon))
	{
		/* aborted is final, whatever the horizon */
		if (!TransactionIdIsCurrentTransactionId(xid) && !TransactionIdIsInProgress(xid) &&
			!TransactionIdDidCommit(xid))
			return NOKV_FILTER_DROP;
		return NOKV_FILTER_KEEP;
	}
	if (!TransactionIdDidCommit(xid))
		return NOKV_FILTER_DROP;

	/* an asynchronous commit not yet flushed could still be lost: wait */
	if (XLogNeedsFlush(TransactionIdGetCommitLSN(xid)))
		return NOKV_FILTER_KEEP;
	if (gone)
		return NOKV_FILTER_DELETE_KEY;

	/*
	 * Visible to every snapshot: the base of its key.  Freezing rewrites the
	 * value (moving a value-log value back inline), so only xids old enough
	 * to matter for wraparound are frozen.
	 */
	if (!TransactionIdPrecedes(xid, filter_freeze_limit))
		return NOKV_FILTER_KEEP_AS_BASE;

	if (filter_buf_size < e->value_len)
	{
		filter_buf = filter_buf ? realloc(filter_buf, e->value_len) : malloc(e->value_len);
		if (filter_buf == NULL)
		{
			filter_buf_size = 0;
			return NOKV_FILTER_KEEP;
		}
		filter_buf_size = e->value_len;
	}
	memcpy(filter_buf, e->value, e->value_len);
	filter_buf[0] = (char) (h.flags | NOKV_VH_FROZEN);
	*new_value = filter_buf;
	*new_len = e->value_len;
	return NOKV_FILTER_CHANGE_AS_BASE;
}
