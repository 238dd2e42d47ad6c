/*-------------------------------------------------------------------------
 *
 * wal.h
 *	  The engine's own write-ahead log (standalone / own-log mode).
 *
 * Segments NNNNNN.wal use logformat.h framing; one record is one whole
 * write batch (type NOKV_WAL_BATCH), so a batch is crash-atomic.  Each
 * memtable has its own segment: rotating the memtable switches segments, and
 * a segment is deleted only after its memtable's SST and manifest edit are
 * durable.
 *
 * The shared part (in the region) holds an append buffer and positions;
 * positions (LSNs) are byte counts over all segments ever written, so they
 * only grow.  Appends are made under NOKV_LOCK_WRITE by the caller.
 * nokv_wal_sync implements group commit: one leader writes the buffer out
 * and fdatasyncs for everyone waiting; the others sleep on
 * NOKV_COND_WAL_SYNC.
 *
 * include/nokv/wal.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_WAL_H
#define NOKV_WAL_H

#include "nokv/logformat.h"
#include "nokv/region.h"

#define NOKV_WAL_BATCH 1		/* record type: an encoded write batch */

typedef struct nokv_wal_stats
{
	uint64_t	bytes;			/* record bytes appended */
	uint64_t	syncs;			/* fdatasync calls */
	uint64_t	synced_batches; /* appends made durable by those syncs */
	uint64_t	segments_created;
} nokv_wal_stats;

size_t		nokv_wal_shared_size(size_t buffer_size);
void		nokv_wal_format(nokv_ctx *ctx, nokv_off off, size_t buffer_size);

/* per-process handle: file descriptors of open segments */
typedef struct nokv_wal nokv_wal;

nokv_wal   *nokv_wal_attach(nokv_ctx *ctx, nokv_off off, const char *dir);
void		nokv_wal_detach(nokv_wal *w);

/*
 * Start writing segment `number` (creates it with its header, fsyncs the
 * directory).  Caller holds NOKV_LOCK_WRITE.  Any previous segment is
 * written out and fdatasynced first, so only the newest segment can ever
 * have a torn tail.
 */
int			nokv_wal_switch_segment(nokv_wal *w, uint64_t number, nokv_error *err);
uint64_t	nokv_wal_current_segment(nokv_wal *w);

/*
 * Append one record.  Caller holds NOKV_LOCK_WRITE.  *end_lsn receives the
 * LSN just past the record, to pass to nokv_wal_sync.
 */
int			nokv_wal_append(nokv_wal *w, const char *payload, size_t len,
							uint64_t *end_lsn, nokv_error *err);

/*
 * Make every record up to lsn durable (group commit).  Caller must NOT hold
 * NOKV_LOCK_WRITE (the leader takes it briefly to drain the buffer).
 */
int			nokv_wal_sync(nokv_wal *w, uint64_t lsn, nokv_error *err);

/*
 * Sync mode off: seal segments without fdatasync (the next sync covers
 * them).  Set once after formatting.  Recovery of such a log must be
 * point-in-time: an OS crash may leave any unsynced segment torn.
 */
void		nokv_wal_set_lazy_seal(nokv_ctx *ctx, nokv_off off, bool lazy);

/* write the buffer out without syncing (close, switch); caller holds WRITE */
int			nokv_wal_flush_buffer(nokv_wal *w, nokv_error *err);

void		nokv_wal_get_stats(nokv_wal *w, nokv_wal_stats *st);

/*
 * Replay one segment file, calling fn for each record in order.  Stops
 * cleanly at a torn tail if allow_torn_tail (the newest segment), otherwise
 * a torn tail is corruption.  fn returns NOKV_OK or an error code to stop.
 * *valid_end receives the offset after the last good record.
 */
typedef int (*nokv_wal_replay_fn) (void *arg, const char *payload, size_t len,
								   nokv_error *err);
int			nokv_wal_replay_segment(const char *dir, uint64_t number, bool allow_torn_tail,
									nokv_wal_replay_fn fn, void *arg,
									uint64_t *valid_end, nokv_error *err);

/* truncate a segment at offset (drop a torn tail before appending to it) */
int			nokv_wal_truncate_segment(const char *dir, uint64_t number, uint64_t offset,
									  nokv_error *err);

#endif							/* NOKV_WAL_H */
