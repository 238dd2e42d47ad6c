/*-------------------------------------------------------------------------
 *
 * wal.c
 *	  The engine's own write-ahead log: shared append buffer, segments and
 *	  group commit.
 *
 * The shared state lives in the region so that every attached process sees
 * one log: the current segment, an append buffer, and positions measured in
 * LSNs.  An LSN counts every byte of every segment file this region has
 * written, segment headers included, starting at 0 when the region is
 * formatted; so within the current segment, file offset = LSN -
 * segment_start_lsn.  LSNs are not stored on disk and mean nothing across a
 * restart.
 *
 *	  appended_lsn	end of the last appended record (written + buffer fill)
 *	  written_lsn	bytes handed to pwrite(2)
 *	  synced_lsn	bytes known to be durable (fdatasync returned)
 *
 * Appends, buffer drains and segment switches happen under NOKV_LOCK_WRITE,
 * so record bytes reach the file in append order.  Syncs use group commit
 * under NOKV_LOCK_WAL_SYNC: one leader drains the buffer (briefly taking
 * WRITE), fdatasyncs without any lock held, publishes the new synced_lsn and
 * wakes the waiters, who by then are usually covered too.
 *
 * File descriptors are per process (nokv_wal).  A process reopens the
 * current segment lazily, under WRITE, when it notices the shared segment
 * number changed.  The sync leader fdatasyncs a dup() of that descriptor so a
 * concurrent segment switch in the same process may close the original.
 *
 * Waiters sleep with a timeout and take over if the leader's process has
 * died (kill(pid, 0) reports ESRCH), so a crashed leader cannot leave them
 * asleep forever.
 *
 * A failed fdatasync leaves the state of the page cache unknown (retrying
 * may report success for data that was dropped), so it marks the WAL failed
 * in shared memory: every later append, sync and switch returns an error
 * until the region is re-created and the log replayed from disk.  A failed
 * pwrite needs no such treatment: the buffer is kept and a retry rewrites
 * the same bytes at the same offset.
 *
 * src/engine/wal.c
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nokv/coding.h"
#include "nokv/file.h"
#include "nokv/platform.h"
#include "nokv/status.h"
#include "nokv/wal.h"

/* shared atomics must work between processes, so they must be lock-free */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "int atomics must be lock-free");

#define WAL_PATH_MAX 4200

/* how often group-commit waiters check that the leader is still alive */
#define WAL_SYNC_POLL_MS 200

typedef struct wal_shared
{
	uint64_t	buffer_size;	/* fixed at format */

	/* protected by NOKV_LOCK_WRITE */
	bool		lazy_seal;		/* sync mode off: do not fdatasync a segment when sealing it */
	uint64_t	unsynced_from;	/* lowest sealed segment not yet synced (lazy_seal), 0 = none */
	bool		has_segment;
	uint64_t	segment_start_lsn;	/* LSN of byte 0 of the current segment */
	uint64_t	written_lsn;
	uint64_t	fill;			/* bytes in the append buffer */

	/* written under WRITE, readable without a lock */
	_Atomic uint64_t segment;	/* current segment number */
	_Atomic uint64_t appended_lsn;
	_Atomic uint64_t appended_records;
	_Atomic int failed;			/* nonzero after an fdatasync failure */

	/* protected by NOKV_LOCK_WAL_SYNC */
	uint64_t	synced_lsn;
	uint64_t	synced_records; /* appended_records covered by synced_lsn */
	bool		sync_in_progress;
	pid_t		leader_pid;		/* process of the current sync leader */

	/* statistics */
	_Atomic uint64_t stat_bytes;
	_Atomic uint64_t stat_syncs;
	_Atomic uint64_t stat_synced_batches;
	_Atomic uint64_t stat_segments;
} wal_shared;

#define WAL_SHARED_HEADER NOKV_ALIGN(sizeof(wal_shared), 64)

struct nokv_wal
{
	nokv_ctx	ctx;
	wal_shared *sh;
	char	   *buffer;			/* the shared append buffer, in this mapping */
	char	   *dir;
	int			fd;				/* this process's fd for fd_segment, or -1 */
	uint64_t	fd_segment;
};

size_t
nokv_wal_shared_size(size_t buffer_size)
{
	return WAL_SHARED_HEADER + NOKV_ALIGN(buffer_size, 64);
}

void
nokv_wal_format(nokv_ctx *ctx, nokv_off off, size_t buffer_size)
{
	wal_shared *sh = (wal_shared *) (ctx->base + off);

	memset(sh, 0, sizeof(wal_shared));
	sh->buffer_size = buffer_size;
	atomic_init(&sh->segment, 0);
	atomic_init(&sh->appended_lsn, 0);
	atomic_init(&sh->appended_records, 0);
	atomic_init(&sh->failed, 0);
	atomic_init(&sh->stat_bytes, 0);
	atomic_init(&sh->stat_syncs, 0);
	atomic_init(&sh->stat_synced_batches, 0);
	atomic_init(&sh->stat_segments, 0);
}

nokv_wal *
nokv_wal_attach(nokv_ctx *ctx, nokv_off off, const char *dir)
{
	nokv_wal   *w = nokv_calloc(1, sizeof(nokv_wal));

	w->ctx = *ctx;
	w->sh = (wal_shared *) (ctx->base + off);
	w->buffer = (char *) w->sh + WAL_SHARED_HEADER;
	w->dir = nokv_memdup(dir, strlen(dir) + 1);
	w->fd = -1;
	return w;
}

void
nokv_wal_detach(nokv_wal *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->dir);
	free(w);
}

static void
segment_path(char *dst, const char *dir, uint64_t number)
{
	snprintf(dst, WAL_PATH_MAX, NOKV_WAL_FMT, dir, (unsigned long long) number);
}

/* the 9-byte record header for a NOKV_WAL_BATCH record */
static void
frame_header(char *dst, const char *payload, size_t len)
{
	unsigned char type = NOKV_WAL_BATCH;
	uint32_t	crc = nokv_crc32c(&type, 1);

	if (len > 0)
		crc = nokv_crc32c_extend(crc, payload, len);
	nokv_put_le32(dst, nokv_crc_mask(crc));
	nokv_put_le32(dst + 4, (uint32_t) len);
	dst[8] = (char) type;
}

static int
check_failed(nokv_wal *w, nokv_error *err)
{
	if (atomic_load(&w->sh->failed))
		return nokv_error_set(err, NOKV_IO_ERROR,
							  "wal in %s is unusable after an earlier fdatasync failure",
							  w->dir);
	return NOKV_OK;
}

/* make w->fd refer to the current segment; caller holds WRITE */
static int
ensure_fd(nokv_wal *w, nokv_error *err)
{
	uint64_t	seg = atomic_load(&w->sh->segment);
	char		path[WAL_PATH_MAX];

	if (w->fd >= 0 && w->fd_segment == seg)
		return NOKV_OK;
	if (w->fd >= 0)
		close(w->fd);
	segment_path(path, w->dir, seg);
	w->fd = open(path, O_WRONLY | O_CLOEXEC);
	if (w->fd < 0)
		return nokv_error_errno(err, "could not open wal segment %s", path);
	w->fd_segment = seg;
	return NOKV_OK;
}

/* pwrite the append buffer to the current segment; caller holds WRITE */
static int
drain_buffer(nokv_wal *w, nokv_error *err)
{
	wal_shared *sh = w->sh;
	char		path[WAL_PATH_MAX];
	int			rc;

	if (sh->fill == 0)
		return NOKV_OK;
	rc = ensure_fd(w, err);
	if (rc != NOKV_OK)
		return rc;
	segment_path(path, w->dir, w->fd_segment);
	rc = nokv_pwrite_full(w->fd, w->buffer, sh->fill,
						  sh->written_lsn - sh->segment_start_lsn, path, err);
	if (rc != NOKV_OK)
		return rc;
	sh->written_lsn += sh->fill;
	sh->fill = 0;
	return NOKV_OK;
}

/*
 * Record that everything up to lsn (covering `records` appends) is durable;
 * caller holds WAL_SYNC.  synced_batches counts every append once, when the
 * first sync covering it completes.
 */
static void
advance_synced(wal_shared *sh, uint64_t lsn, uint64_t records)
{
	if (lsn > sh->synced_lsn)
		sh->synced_lsn = lsn;
	if (records > sh->synced_records)
	{
		atomic_fetch_add(&sh->stat_synced_batches, records - sh->synced_records);
		sh->synced_records = records;
	}
}

static int
fdatasync_or_fail(nokv_wal *w, int fd, const char *path, nokv_error *err)
{
	int			rc = nokv_fdatasync(fd, path, err);

	if (rc != NOKV_OK)
		atomic_store(&w->sh->failed, 1);
	else
		atomic_fetch_add(&w->sh->stat_syncs, 1);
	return rc;
}

int
nokv_wal_append(nokv_wal *w, const char *payload, size_t len, uint64_t *end_lsn,
				nokv_error *err)
{
	wal_shared *sh = w->sh;
	size_t		framed = NOKV_LOG_RECORD_HEADER + len;
	int			rc;

	rc = check_failed(w, err);
	if (rc != NOKV_OK)
		return rc;
	if (!sh->has_segment)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "no wal segment to append to in %s", w->dir);
	if (len > NOKV_LOG_MAX_RECORD)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "wal record of %zu bytes exceeds the maximum of %u",
							  len, NOKV_LOG_MAX_RECORD);

	if (sh->fill + framed > sh->buffer_size)
	{
		rc = drain_buffer(w, err);
		if (rc != NOKV_OK)
			return rc;
	}

	if (framed > sh->buffer_size)
	{
		/* too big to buffer: the buffer is empty now, write it straight out */
		char		header[NOKV_LOG_RECORD_HEADER];
		char		path[WAL_PATH_MAX];
		uint64_t	off;

		rc = ensure_fd(w, err);
		if (rc != NOKV_OK)
			return rc;
		segment_path(path, w->dir, w->fd_segment);
		off = sh->written_lsn - sh->segment_start_lsn;
		frame_header(header, payload, len);
		rc = nokv_pwrite_full(w->fd, header, sizeof(header), off, path, err);
		if (rc == NOKV_OK && len > 0)
			rc = nokv_pwrite_full(w->fd, payload, len, off + sizeof(header), path, err);
		if (rc != NOKV_OK)
			return rc;
		sh->written_lsn += framed;
	}
	else
	{
		char	   *dst = w->buffer + sh->fill;

		frame_header(dst, payload, len);
		if (len > 0)
			memcpy(dst + NOKV_LOG_RECORD_HEADER, payload, len);
		sh->fill += framed;
	}

	atomic_store(&sh->appended_lsn, sh->written_lsn + sh->fill);
	atomic_fetch_add(&sh->appended_records, 1);
	atomic_fetch_add(&sh->stat_bytes, framed);
	if (end_lsn)
		*end_lsn = sh->written_lsn + sh->fill;
	return NOKV_OK;
}

int
nokv_wal_flush_buffer(nokv_wal *w, nokv_error *err)
{
	int			rc = check_failed(w, err);

	if (rc != NOKV_OK)
		return rc;
	return drain_buffer(w, err);
}

/*
 * The leader's part of a group commit: drain the buffer under WRITE, then
 * fdatasync with no lock held.  *target and *records receive what became
 * durable.
 */
static int
lead_sync(nokv_wal *w, uint64_t *target, uint64_t *records, nokv_error *err)
{
	const nokv_platform *plat = w->ctx.plat;
	wal_shared *sh = w->sh;
	char		path[WAL_PATH_MAX];
	int			fd;
	int			rc;
	uint64_t	unsynced_from;
	uint64_t	current;

	nokv_lock(plat, NOKV_LOCK_WRITE, true);
	rc = check_failed(w, err);
	if (rc == NOKV_OK)
		rc = drain_buffer(w, err);
	if (rc == NOKV_OK && sh->has_segment)
		rc = ensure_fd(w, err);
	if (rc != NOKV_OK || !sh->has_segment)
	{
		*target = sh->written_lsn;
		*records = atomic_load(&sh->appended_records);
		nokv_unlock(plat, NOKV_LOCK_WRITE);
		return rc;
	}
	*target = sh->written_lsn;
	*records = atomic_load(&sh->appended_records);
	unsynced_from = sh->unsynced_from;
	current = w->fd_segment;
	segment_path(path, w->dir, w->fd_segment);
	fd = fcntl(w->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		rc = nokv_error_errno(err, "could not duplicate the descriptor of %s", path);
	nokv_unlock(plat, NOKV_LOCK_WRITE);
	if (rc != NOKV_OK)
		return rc;

	/* segments sealed lazily (sync mode off) become durable with this sync */
	for (uint64_t seg = unsynced_from; rc == NOKV_OK && seg != 0 && seg < current; seg++)
	{
		char		old[WAL_PATH_MAX];
		int			ofd;

		segment_path(old, w->dir, seg);
		ofd = open(old, O_RDONLY | O_CLOEXEC);
		if (ofd < 0)
			continue;			/* not a segment, or flushed and deleted already */
		rc = fdatasync_or_fail(w, ofd, old, err);
		close(ofd);
	}
	if (rc == NOKV_OK)
		rc = fdatasync_or_fail(w, fd, path, err);
	close(fd);
	if (rc == NOKV_OK && unsynced_from != 0)
	{
		nokv_lock(plat, NOKV_LOCK_WRITE, true);
		if (sh->unsynced_from == unsynced_from)
			sh->unsynced_from = 0;
		nokv_unlock(plat, NOKV_LOCK_WRITE);
	}
	return rc;
}

void
nokv_wal_set_lazy_seal(nokv_ctx *ctx, nokv_off off, bool lazy)
{
	((wal_shared *) (ctx->base + off))->lazy_seal = lazy;
}

/*
 * A leader that died between claiming the sync and finishing it would leave
 * every waiter asleep forever; waiters poll for that.  Caller holds WAL_SYNC.
 */
static bool
leader_died(wal_shared *sh)
{
	return sh->leader_pid > 0 && kill(sh->leader_pid, 0) != 0 && errno == ESRCH;
}

int
nokv_wal_sync(nokv_wal *w, uint64_t lsn, nokv_error *err)
{
	const nokv_platform *plat = w->ctx.plat;
	wal_shared *sh = w->sh;
	uint64_t	appended = atomic_load(&sh->appended_lsn);
	bool		waiting = false;
	int			rc = NOKV_OK;

	/* nothing past the appended end can become durable: UINT64_MAX = "all" */
	if (lsn > appended)
		lsn = appended;

	nokv_lock(plat, NOKV_LOCK_WAL_SYNC, true);
	for (;;)
	{
		/* durable is durable, even if a later fdatasync failed */
		if (sh->synced_lsn >= lsn)
			break;
		rc = check_failed(w, err);
		if (rc != NOKV_OK)
			break;
		if (sh->sync_in_progress && leader_died(sh))
		{
			nokv_log(plat, 2, "wal sync leader process %d died; taking over",
					 (int) sh->leader_pid);
			sh->sync_in_progress = false;
		}
		if (!sh->sync_in_progress)
		{
			uint64_t	target = 0;
			uint64_t	records = 0;

			sh->sync_in_progress = true;
			sh->leader_pid = getpid();
			nokv_unlock(plat, NOKV_LOCK_WAL_SYNC);
			rc = lead_sync(w, &target, &records, err);
			nokv_lock(plat, NOKV_LOCK_WAL_SYNC, true);
			sh->sync_in_progress = false;
			if (rc == NOKV_OK)
				advance_synced(sh, target, records);
			/* on failure too: a waiter must take over or see the failure */
			nokv_cond_broadcast(plat, NOKV_COND_WAL_SYNC);
			if (rc != NOKV_OK)
				break;
			continue;
		}
		if (!waiting && plat->report_wait)
			plat->report_wait(plat->arg, NOKV_WAIT_WAL_SYNC);
		waiting = true;
		nokv_cond_wait(plat, NOKV_COND_WAL_SYNC, NOKV_LOCK_WAL_SYNC, WAL_SYNC_POLL_MS);
	}
	nokv_unlock(plat, NOKV_LOCK_WAL_SYNC);
	if (waiting && plat->report_wait)
		plat->report_wait(plat->arg, 0);
	return rc;
}

int
nokv_wal_switch_segment(nokv_wal *w, uint64_t number, nokv_error *err)
{
	const nokv_platform *plat = w->ctx.plat;
	wal_shared *sh = w->sh;
	char		path[WAL_PATH_MAX];
	char		header[NOKV_LOG_FILE_HEADER];
	int			fd;
	int			rc;

	rc = check_failed(w, err);
	if (rc != NOKV_OK)
		return rc;
	if (sh->has_segment && number == atomic_load(&sh->segment))
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							  "wal segment %llu is already the current segment",
							  (unsigned long long) number);

	/* seal the old segment: only the newest may ever have a torn tail */
	if (sh->has_segment)
	{
		uint64_t	synced;

		rc = drain_buffer(w, err);
		if (rc == NOKV_OK)
			rc = ensure_fd(w, err);
		if (rc != NOKV_OK)
			return rc;
		nokv_lock(plat, NOKV_LOCK_WAL_SYNC, true);
		synced = sh->synced_lsn;
		nokv_unlock(plat, NOKV_LOCK_WAL_SYNC);
		if (sh->lazy_seal && synced < sh->written_lsn)
		{
			/*
			 * Sync mode off: nobody waits for durability, so do not stall
			 * the writer on a 64 MiB fdatasync.  The next sync (an explicit
			 * one, or a synced write) covers this segment too; recovery in
			 * this mode is point-in-time (it stops at the first torn
			 * segment).
			 */
			if (sh->unsynced_from == 0)
				sh->unsynced_from = w->fd_segment;
		}
		else if (synced < sh->written_lsn)
		{
			segment_path(path, w->dir, w->fd_segment);
			rc = fdatasync_or_fail(w, w->fd, path, err);
			if (rc != NOKV_OK)
				return rc;
		}
		if (sh->unsynced_from == 0)
		{
			nokv_lock(plat, NOKV_LOCK_WAL_SYNC, true);
			advance_synced(sh, sh->written_lsn, atomic_load(&sh->appended_records));
			nokv_cond_broadcast(plat, NOKV_COND_WAL_SYNC);
			nokv_unlock(plat, NOKV_LOCK_WAL_SYNC);
		}
	}

	/* the new segment, with a durable header and directory entry */
	segment_path(path, w->dir, number);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return nokv_error_errno(err, "could not create wal segment %s", path);
	nokv_log_file_header(header, NOKV_WAL_MAGIC, number);
	rc = nokv_pwrite_full(fd, header, sizeof(header), 0, path, err);
	if (rc == NOKV_OK)
		rc = nokv_fdatasync(fd, path, err);
	if (rc == NOKV_OK)
		rc = nokv_fsync_dir(w->dir, err);
	if (rc != NOKV_OK)
	{
		/* the old segment stays current; leave no half-made file behind */
		close(fd);
		unlink(path);
		return rc;
	}

	sh->segment_start_lsn = sh->written_lsn;
	sh->written_lsn += NOKV_LOG_FILE_HEADER;
	sh->has_segment = true;
	atomic_store(&sh->segment, number);
	atomic_store(&sh->appended_lsn, sh->written_lsn);
	atomic_fetch_add(&sh->stat_segments, 1);
	nokv_lock(plat, NOKV_LOCK_WAL_SYNC, true);
	advance_synced(sh, sh->written_lsn, atomic_load(&sh->appended_records));
	nokv_unlock(plat, NOKV_LOCK_WAL_SYNC);

	if (w->fd >= 0)
		close(w->fd);
	w->fd = fd;
	w->fd_segment = number;
	return NOKV_OK;
}

uint64_t
nokv_wal_current_segment(nokv_wal *w)
{
	return atomic_load(&w->sh->segment);
}

void
nokv_wal_get_stats(nokv_wal *w, nokv_wal_stats *st)
{
	st->bytes = atomic_load(&w->sh->stat_bytes);
	st->syncs = atomic_load(&w->sh->stat_syncs);
	st->synced_batches = atomic_load(&w->sh->stat_synced_batches);
	st->segments_created = atomic_load(&w->sh->stat_segments);
}

/* ---------- recovery ---------- */

/* a segment's header must name the segment (catches renamed/copied files) */
static int
check_segment_number(const char *path, uint64_t number, nokv_error *err)
{
	char		header[NOKV_LOG_FILE_HEADER];
	struct stat st;
	int			fd;
	int			rc = NOKV_OK;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return nokv_error_errno(err, "could not open %s", path);
	if (fstat(fd, &st) != 0)
		rc = nokv_error_errno(err, "could not stat %s", path);
	else if (st.st_size >= NOKV_LOG_FILE_HEADER)
	{
		rc = nokv_pread_full(fd, header, sizeof(header), 0, path, err);
		if (rc == NOKV_OK && memcmp(header, NOKV_WAL_MAGIC, 8) == 0 &&
			nokv_get_le32(header + 12) != (uint32_t) number)
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"wal segment header at offset 12 of %s names file number %u",
								path, nokv_get_le32(header + 12));
	}
	close(fd);
	return rc;
}

int
nokv_wal_replay_segment(const char *dir, uint64_t number, bool allow_torn_tail,
						nokv_wal_replay_fn fn, void *arg,
						uint64_t *valid_end, nokv_error *err)
{
	char		path[WAL_PATH_MAX];
	nokv_log_reader *r;
	int			rc;

	if (valid_end)
		*valid_end = 0;
	segment_path(path, dir, number);
	rc = check_segment_number(path, number, err);
	if (rc != NOKV_OK)
		return rc;
	rc = nokv_log_reader_open(path, NOKV_WAL_MAGIC, &r, err);
	if (rc != NOKV_OK)
		return rc;

	for (;;)
	{
		uint64_t	start = nokv_log_valid_end(r);
		int			type;
		const char *payload;
		size_t		len;
		int			got = nokv_log_read(r, &type, &payload, &len, err);

		if (got == 0)
			break;
		if (got < 0)
		{
			rc = -got;
			break;
		}
		if (type != NOKV_WAL_BATCH)
		{
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"unexpected record type %d at offset %llu of %s",
								type, (unsigned long long) start, path);
			break;
		}
		rc = fn(arg, payload, len, err);
		if (rc != NOKV_OK)
		{
			/* report where the rejected record starts */
			if (valid_end)
				*valid_end = start;
			nokv_log_reader_close(r);
			return rc;
		}
	}

	if (rc == NOKV_OK && nokv_log_torn(r) && !allow_torn_tail)
		rc = nokv_error_set(err, NOKV_CORRUPTION,
							"torn tail at offset %llu of %s, which is not the newest wal segment",
							(unsigned long long) nokv_log_valid_end(r), path);
	if (valid_end)
		*valid_end = nokv_log_valid_end(r);
	nokv_log_reader_close(r);
	return rc;
}

int
nokv_wal_truncate_segment(const char *dir, uint64_t number, uint64_t offset,
						  nokv_error *err)
{
	char		path[WAL_PATH_MAX];
	struct stat st;
	int			fd;
	int			rc = NOKV_OK;

	segment_path(path, dir, number);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return nokv_error_errno(err, "could not open %s", path);
	if (fstat(fd, &st) != 0)
		rc = nokv_error_errno(err, "could not stat %s", path);
	else if (offset > (uint64_t) st.st_size)
		rc = nokv_error_set(err, NOKV_INVALID_ARGUMENT,
							"cannot truncate %s of %llu bytes at offset %llu",
							path, (unsigned long long) st.st_size,
							(unsigned long long) offset);
	else if (offset < NOKV_LOG_FILE_HEADER)
	{
		/* the header itself was torn: leave a valid empty segment */
		char		header[NOKV_LOG_FILE_HEADER];

		nokv_log_file_header(header, NOKV_WAL_MAGIC, number);
		if (ftruncate(fd, 0) != 0)
			rc = nokv_error_errno(err, "could not truncate %s", path);
		else
			rc = nokv_pwrite_full(fd, header, sizeof(header), 0, path, err);
	}
	else if (ftruncate(fd, (off_t) offset) != 0)
		rc = nokv_error_errno(err, "could not truncate %s at offset %llu",
							  path, (unsigned long long) offset);

	if (rc == NOKV_OK && fsync(fd) != 0)
		rc = nokv_error_errno(err, "could not fsync %s", path);
	close(fd);
	return rc;
}
