/*-------------------------------------------------------------------------
 *
 * xlog.c
 *	  nokv's custom WAL resource manager: PostgreSQL's WAL is the engine's
 *	  log.
 *
 * Every engine write a backend makes is one WAL record of this resource
 * manager holding the engine's encoded write batch, and the record's end
 * LSN serves as the batch's engine version and log position.  It is
 * inserted under the engine's write lock held shared
 * (nokv_write_options.log_append_concurrent: XLogInsert takes concurrent
 * callers), so backends insert at once; a memtable switch takes the lock
 * exclusively, so the records in one memtable all lie below those in the
 * next, which is what a flushed memtable's covered LSN relies on.  The record carries the writing (sub)transaction's xid,
 * so the commit record's single WAL flush makes it durable, and replay
 * advances nextXid past it (no xid is reused after a crash).
 *
 * A memtable flushed to an SST records in the engine manifest the LSN it
 * covers (nokv_external_log_flushed).  WAL past that point must survive
 * checkpoints: a physical replication slot named "nokv" holds it, and the
 * flush worker advances the slot after each durable flush.  On start the
 * engine re-applies the records from that point (nokv_xlog_replay_range,
 * reading WAL files directly); in crash recovery the startup process does
 * so up to the redo point and redo applies the rest.  Records at or below
 * the covered LSN are skipped, and applying one twice changes nothing.
 *
 * A marker file in the engine directory names the cluster and says the slot
 * was created.  If the marker exists but the slot does not, the directory
 * was restored from a base backup (slots are not part of one) or the slot
 * was dropped: the WAL the engine needs is gone, so it refuses to serve.
 *
 * src/extension/xlog.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogreader.h"
#include "access/xlogrecovery.h"
#include "access/xlogutils.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "storage/fd.h"

#include "nokv_pg.h"

#define SLOT_MARKER "PG_WAL_SLOT"

/* ---------- writing ---------- */

static int
append_to_wal(void *arg, const nokv_batch *b, uint64_t *log_position, uint64_t *version,
			  nokv_error *err)
{
	size_t		len;
	const char *data = nokv_batch_data(b, &len);
	XLogRecPtr	lsn;

	XLogBeginInsert();
	XLogRegisterData((char *) data, (uint32) len);
	lsn = XLogInsert(NOKV_RMGR_ID, XLOG_NOKV_BATCH);
	*log_position = lsn;
	*version = lsn;
	return NOKV_OK;
}

void
nokv_xlog_write(nokv_db *db, const nokv_batch *b)
{
	nokv_xlog_write_ext(db, b, true);
}

/* hot: count the keys in hot-key tracking (table rows are not: each is written once) */
void
nokv_xlog_write_ext(nokv_db *db, const nokv_batch *b, bool hot)
{
	(void) nokv_xlog_write_epoch(db, b, hot, 0);
}

/*
 * The same, refused without writing anything (returns false) if the
 * engine's memtable was replaced since nokv_memtable_epoch() returned
 * epoch (0: never refused).
 */
bool
nokv_xlog_write_epoch(nokv_db *db, const nokv_batch *b, bool hot, uint64 epoch)
{
	nokv_write_options wo = {
		.log_id = 0,
		.log_append = append_to_wal,
		.log_append_concurrent = true,
		.untracked = !hot,
		.memtable_epoch = epoch,
	};
	nokv_error	err;
	int			rc;

	rc = nokv_write(db, &wo, b, &err);
	if (rc == NOKV_EPOCH_CHANGED && epoch != 0)
		return false;
	if (rc != NOKV_OK)
		nokv_raise_engine_error(rc, &err, "write");
	return true;
}

/* ---------- applying records (redo and start-up replay) ---------- */

static bool
apply_record(nokv_db *db, XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;
	XLogRecPtr	lsn = record->EndRecPtr;
	nokv_batch *b;
	nokv_write_options wo = {0};
	nokv_error	err;
	int			rc;

	if (info != XLOG_NOKV_BATCH)
	{
		nokv_engine_set_state(NOKV_ENGINE_FAILED,
							  psprintf("unknown nokv WAL record type %u at %X/%X",
									   info, LSN_FORMAT_ARGS(record->ReadRecPtr)));
		return false;
	}
	if (lsn <= nokv_external_log_flushed(db, 0))
		return true;			/* already in an SST */

	b = nokv_batch_new();
	rc = nokv_batch_from_data(b, XLogRecGetData(record), XLogRecGetDataLen(record), &err);
	if (rc == NOKV_OK)
	{
		wo.log_id = 0;
		wo.log_position = lsn;
		wo.version = lsn;
		rc = nokv_write(db, &wo, b, &err);
	}
	nokv_batch_free(b);
	if (rc != NOKV_OK)
	{
		/* never stop PostgreSQL's own recovery: the engine alone is unusable */
		nokv_engine_set_state(NOKV_ENGINE_FAILED,
							  psprintf("could not re-apply the nokv WAL record at %X/%X: %s",
									   LSN_FORMAT_ARGS(record->ReadRecPtr), err.msg));
		return false;
	}
	return true;
}

static void
nokv_rm_redo(XLogReaderState *record)
{
	nokv_db    *db;

	if (nokv_engine_state() != NOKV_ENGINE_REDO)
		return;					/* standby, archive recovery or failed */
	db = nokv_engine_if_open();
	if (db)
		(void) apply_record(db, record);
}

static void
nokv_rm_startup(void)
{
	if (StandbyMode || ArchiveRecoveryRequested)
	{
		nokv_engine_set_state(NOKV_ENGINE_REFUSED,
							  "nokv data is not replicated physically and cannot be restored by archive "
							  "recovery; it is unavailable on a standby or a server recovered from a "
							  "base backup");
		return;
	}
	(void) nokv_engine_open(true);
}

static void
nokv_rm_cleanup(void)
{
	if (nokv_engine_state() == NOKV_ENGINE_REDO)
		ereport(LOG, (errmsg("nokv redo done")));
}

static void
nokv_rm_desc(StringInfo buf, XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;

	if (info == XLOG_NOKV_BATCH)
	{
		nokv_batch *b = nokv_batch_new();
		nokv_error	err;

		if (nokv_batch_from_data(b, XLogRecGetData(record), XLogRecGetDataLen(record), &err) == NOKV_OK)
			appendStringInfo(buf, "entries %u, bytes %u", nokv_batch_count(b),
							 XLogRecGetDataLen(record));
		else
			appendStringInfo(buf, "malformed batch: %s", err.msg);
		nokv_batch_free(b);
	}
}

static const char *
nokv_rm_identify(uint8 info)
{
	if ((info & ~XLR_INFO_MASK) == XLOG_NOKV_BATCH)
		return "BATCH";
	return NULL;
}

static RmgrData nokv_rmgr = {
	.rm_name = "nokv",
	.rm_redo = nokv_rm_redo,
	.rm_desc = nokv_rm_desc,
	.rm_identify = nokv_rm_identify,
	.rm_startup = nokv_rm_startup,
	.rm_cleanup = nokv_rm_cleanup,
	.rm_mask = NULL,
	.rm_decode = NULL,
};

void
nokv_xlog_register(void)
{
	RegisterCustomRmgr(NOKV_RMGR_ID, &nokv_rmgr);
}

/* ---------- reading WAL files directly ---------- */

typedef struct ReplayReader
{
	XLogRecPtr	end;			/* read nothing at or past this */
	TimeLineID	tli;
} ReplayReader;

static int
replay_page_read(XLogReaderState *state, XLogRecPtr targetPagePtr, int reqLen,
				 XLogRecPtr targetRecPtr, char *readBuf)
{
	ReplayReader *rr = (ReplayReader *) state->private_data;
	WALReadError errinfo;
	int			count;

	if (targetPagePtr + XLOG_BLCKSZ <= rr->end)
		count = XLOG_BLCKSZ;
	else if (targetPagePtr + reqLen > rr->end)
		return -1;
	else
		count = rr->end - targetPagePtr;
	if (!WALRead(state, readBuf, targetPagePtr, XLOG_BLCKSZ, rr->tli, &errinfo))
		WALReadRaiseError(&errinfo);
	return count;
}

/*
 * Re-apply the nokv records that start in [from, to).  Returns how many
 * were applied; *end receives where reading stopped.
 */
uint64
nokv_xlog_replay_range(nokv_db *db, XLogRecPtr from, XLogRecPtr to, TimeLineID tli,
					   XLogRecPtr *end)
{
	ReplayReader rr = {.end = to,.tli = tli};
	XLogReaderState *reader;
	XLogRecord *rec;
	XLogRecPtr	first;
	char	   *errormsg = NULL;
	uint64		n = 0;

	reader = XLogReaderAllocate(wal_segment_size, NULL,
								XL_ROUTINE(.page_read = replay_page_read,
										   .segment_open = wal_segment_open,
										   .segment_close = wal_segment_close),
								&rr);
	if (reader == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed while allocating a WAL reading processor.")));
	first = XLogFindNextRecord(reader, from);
	*end = from;
	if (!XLogRecPtrIsInvalid(first))
	{
		while ((rec = XLogReadRecord(reader, &errormsg)) != NULL)
		{
			*end = reader->EndRecPtr;
			if (rec->xl_rmid != NOKV_RMGR_ID)
				continue;
			if (!apply_record(db, reader))
				break;
			n++;
		}
	}
	XLogReaderFree(reader);
	return n;
}

/* ---------- the WAL-retention slot ---------- */

static void
marker_path(char *path, size_t len)
{
	snprintf(path, len, "%s/%s", nokv_engine_dir(), SLOT_MARKER);
}

/*
 * Where re-applying WAL must start: the slot's restart_lsn, or Invalid for
 * an engine that never had a slot.  False (with the reason) when the
 * engine's WAL cannot be trusted to exist.
 */
bool
nokv_slot_check(XLogRecPtr *start, char *why, size_t whylen)
{
	char		path[MAXPGPATH];
	FILE	   *f;
	unsigned long long sysid = 0;
	ReplicationSlot *slot;

	*start = InvalidXLogRecPtr;
	marker_path(path, sizeof(path));
	f = AllocateFile(path, "r");
	if (f == NULL)
		return true;			/* a new engine: nothing to re-apply */
	if (fscanf(f, "system_identifier %llu", &sysid) != 1)
		sysid = 0;
	FreeFile(f);
	if (sysid != (unsigned long long) GetSystemIdentifier())
	{
		snprintf(why, whylen,
				 "the engine directory \"%s\" belongs to database system %llu, not to this one (%llu)",
				 nokv_engine_dir(), sysid, (unsigned long long) GetSystemIdentifier());
		return false;
	}
	slot = SearchNamedReplicationSlot(NOKV_SLOT_NAME, true);
	if (slot == NULL)
	{
		snprintf(why, whylen,
				 "the replication slot \"%s\" that keeps the engine's WAL is missing: the data "
				 "directory was restored from a base backup or the slot was dropped, so the WAL "
				 "the engine's SSTs do not cover may be gone",
				 NOKV_SLOT_NAME);
		return false;
	}
	SpinLockAcquire(&slot->mutex);
	*start = slot->data.restart_lsn;
	SpinLockRelease(&slot->mutex);
	return true;
}

static void
write_marker(void)
{
	char		path[MAXPGPATH];
	char		tmp[MAXPGPATH];
	char		buf[128];
	int			fd;
	int			len;

	marker_path(path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	len = snprintf(buf, sizeof(buf), "system_identifier %llu\nslot %s\n",
				   (unsigned long long) GetSystemIdentifier(), NOKV_SLOT_NAME);
	fd = OpenTransientFile(tmp, O_CREAT | O_WRONLY | O_TRUNC | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmp)));
	if (write(fd, buf, len) != len || pg_fsync(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
	CloseTransientFile(fd);
	durable_rename(tmp, path, ERROR);
}

/* make sure the slot exists (reserving WAL from now) and the marker names it */
void
nokv_slot_create(void)
{
	char		path[MAXPGPATH];
	struct stat st;

	if (SearchNamedReplicationSlot(NOKV_SLOT_NAME, true) == NULL)
	{
		ReplicationSlotCreate(NOKV_SLOT_NAME, false, RS_PERSISTENT, false);
		ReplicationSlotReserveWal();
		ReplicationSlotMarkDirty();
		ReplicationSlotSave();
		ReplicationSlotRelease();
		ReplicationSlotsComputeRequiredLSN();
		ereport(LOG,
				(errmsg("nokv created replication slot \"%s\" to keep the WAL its memtables need",
						NOKV_SLOT_NAME)));
	}
	marker_path(path, sizeof(path));
	if (stat(path, &st) != 0)
		write_marker();
}

/* after a durable flush: WAL before lsn is no longer needed by the engine */
void
nokv_slot_advance(XLogRecPtr lsn)
{
	ReplicationSlot *slot;
	XLogRecPtr	cur;

	if (XLogRecPtrIsInvalid(lsn))
		return;
	slot = SearchNamedReplicationSlot(NOKV_SLOT_NAME, true);
	if (slot == NULL)
	{
		ereport(WARNING,
				(errmsg("replication slot \"%s\" used by nokv was dropped; creating it again",
						NOKV_SLOT_NAME)));
		nokv_slot_create();
		return;
	}
	SpinLockAcquire(&slot->mutex);
	cur = slot->data.restart_lsn;
	SpinLockRelease(&slot->mutex);
	if (lsn <= cur)
		return;
	ReplicationSlotAcquire(NOKV_SLOT_NAME, true);
	SpinLockAcquire(&MyReplicationSlot->mutex);
	MyReplicationSlot->data.restart_lsn = lsn;
	SpinLockRelease(&MyReplicationSlot->mutex);
	ReplicationSlotMarkDirty();
	ReplicationSlotSave();
	ReplicationSlotRelease();
	ReplicationSlotsComputeRequiredLSN();
	SpinLockAcquire(&nokv_shared->mutex);
	nokv_shared->slot_lsn = lsn;
	SpinLockRelease(&nokv_shared->mutex);
}
