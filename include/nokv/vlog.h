/*-------------------------------------------------------------------------
 *
 * vlog.h
 *	  The value log: large values stored outside the LSM tree.
 *
 * Values are separated at flush time (BlobDB / Titan style), never at write
 * time: the WAL (or the host's log) carries whole values, so a commit stays
 * one fsync.  The flush appends every value whose payload is at least
 * vlog_threshold bytes to the active segment, makes the segments durable
 * (nokv_vlog_sync), writes the SST whose value records hold pointers
 * (NOKV_VF_VPTR) and then the manifest edit, which also carries the value
 * log's new durable head and segment sizes.  A value is therefore never
 * durable later than a record pointing at it.
 *
 * Segment files NNNNNN.vlog take their numbers from the engine's file
 * counter.  A segment is a 16-byte header
 *
 *		magic "NOKVVLG\0" | LE32 format version (1) | LE32 file number low bits
 *
 * followed by records
 *
 *		LE32 masked CRC32C of everything after it | LE32 key length |
 *		LE32 value length | internal key | value
 *
 * A value pointer is (segment, record offset, value length), stored as the
 * payload of a value record: varint64 segment, varint64 offset, varint32
 * length.  The record keeps the entry's internal key, so a reader can check
 * it found the right record and GC can check an entry is still live.
 *
 * Shared state (region, at hdr->vlog, NOKV_LOCK_VLOG): the active segment
 * and its head, the last durable head, and a table of max_vlog_segments
 * segment slots with sizes and exact discard bytes.  Per-process state (a
 * nokv_vlog_handle): the writer descriptor and a small cache of read
 * descriptors.  NOKV_LOCK_VLOG is a leaf lock: nothing else is acquired
 * while it is held, and it is held only for the short table updates and
 * around the pwrite of one append.
 *
 * docs/vlog.md has the design and the byte layouts.
 *
 * include/nokv/vlog.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_VLOG_H
#define NOKV_VLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nokv/coding.h"
#include "nokv/manifest.h"
#include "nokv/nokv.h"
#include "nokv/region.h"

#define NOKV_VLOG_FMT				"%s/%06llu.vlog"
#define NOKV_VLOG_SUFFIX			".vlog"
#define NOKV_VLOG_MAGIC				"NOKVVLG\0"
#define NOKV_VLOG_FORMAT_VERSION	1
#define NOKV_VLOG_HEADER_SIZE		16
#define NOKV_VLOG_RECORD_HEADER		12

/* record key lengths: an internal key of a user key of at most NOKV_MAX_KEY_SIZE */
#define NOKV_VLOG_MIN_KEY			(1 + 9)
#define NOKV_VLOG_MAX_KEY			(1 + NOKV_MAX_KEY_SIZE + 9)

/* ---------- value pointers ---------- */

typedef struct nokv_vptr
{
	uint64_t	segment;		/* segment file number (never 0) */
	uint64_t	offset;			/* record offset in it (>= the 16-byte header) */
	uint32_t	len;			/* value length */
} nokv_vptr;

/* varint64 + varint64 + varint32 */
#define NOKV_VPTR_MAX_ENCODED		25

/* writes at most NOKV_VPTR_MAX_ENCODED bytes to dst; returns the count */
size_t		nokv_vptr_encode(char *dst, const nokv_vptr *p);

/*
 * Strict: the pointer must use exactly len bytes, name a segment other
 * than 0, an offset past the segment header and a length of at most
 * NOKV_MAX_VALUE_SIZE.  Never reads outside [src, src+len).
 */
bool		nokv_vptr_decode(const char *src, size_t len, nokv_vptr *p);

/*
 * Append to out the value record that replaces a separated value: the
 * original flags plus NOKV_VF_VPTR, the expiry (varint64; NOKV_VF_TTL is
 * set exactly when expires_at_ms is not 0, as nokv_value_header_encode
 * does), then the encoded pointer.  nokv_value_decode (ikey.h) parses it
 * back; nokv_vptr_decode the payload.
 */
void		nokv_vptr_value_record(nokv_buf *out, int flags, uint64_t expires_at_ms,
								   const nokv_vptr *p);

/* bytes a record of this key and value occupies in a segment */
static inline uint64_t
nokv_vlog_record_size(size_t klen, size_t vlen)
{
	return (uint64_t) NOKV_VLOG_RECORD_HEADER + klen + vlen;
}

/* ---------- per-process handle ---------- */

typedef struct nokv_vlog_handle nokv_vlog_handle;

/* hands out a new file number (nokv_new_file_number) */
typedef uint64_t (*nokv_vlog_number_fn) (void *arg);

typedef struct nokv_vlog_head
{
	uint64_t	segment;		/* 0 = nothing written yet */
	uint64_t	offset;			/* bytes in that segment */
} nokv_vlog_head;

/*
 * Attach to the shared state at off (formatted by nokv_vlog_shared_format,
 * declared in db_impl.h).  ctx is copied; the platform it points to must
 * outlive the handle.  new_file_number is called (under NOKV_LOCK_VLOG) when
 * an append needs a new segment.  Never fails (aborts on OOM).
 */
nokv_vlog_handle *nokv_vlog_attach(const nokv_ctx *ctx, nokv_off off, const char *dir,
								   nokv_vlog_number_fn new_file_number, void *arg);
void		nokv_vlog_detach(nokv_vlog_handle *h);

/* ---------- writing (flush, compaction relocation) ---------- */

/*
 * Append one record (ikey, value) to the active segment under
 * NOKV_LOCK_VLOG, rolling to a new segment first when the record would
 * take the active one past vlog_segment_size (a record larger than that
 * gets a segment of its own).  *out receives the pointer.  The record is
 * not durable until nokv_vlog_sync.  On a failed write nothing is
 * recorded (the next append overwrites whatever part of it landed).
 * NOKV_NO_SPACE when every segment slot is in use.
 */
int			nokv_vlog_append(nokv_vlog_handle *h, const char *ikey, size_t klen,
							 const char *value, size_t vlen, nokv_vptr *out,
							 nokv_error *err);

/*
 * Make every record appended so far (by any process) durable: fdatasync
 * every segment written since it was last synced, and fsync the directory
 * if a segment was created.  *head (optional) receives the durable head.
 * If edit is not NULL, records in it what the manifest must learn: the
 * head (nokv_edit_set_vlog_head) and, for every segment whose durable size
 * the manifest does not have yet, nokv_edit_add_vlog_segment(number,
 * durable size).  Put that edit (the same one that adds the SST holding the
 * pointers) into the manifest, then call nokv_vlog_edit_committed.
 */
int			nokv_vlog_sync(nokv_vlog_handle *h, nokv_version_edit *edit,
						   nokv_vlog_head *head, nokv_error *err);

/*
 * Tell the value log that an edit is durable in the manifest (call it under
 * NOKV_LOCK_MANIFEST right after nokv_manifest_append succeeds, before any
 * manifest rewrite): recorded segment sizes and the manifest head advance,
 * discard increments are added to the segments' exact discard bytes, and
 * deleted segments become deletable (nokv_vlog_delete_segment).  Edits
 * without value-log fields are ignored.  Forgetting to call it is safe (the
 * next sync records the same sizes again) except that discard is then not
 * counted and deleted segments cannot be unlinked.
 */
void		nokv_vlog_edit_committed(nokv_vlog_handle *h, const nokv_version_edit *e);

/*
 * Fill st's value-log fields (head, segments, discard) with what the
 * manifest durably holds, for a manifest rewrite; st's previous value-log
 * fields are freed and replaced.
 */
void		nokv_vlog_fill_state(nokv_vlog_handle *h, nokv_manifest_state *st);

/* ---------- reading ---------- */

/*
 * Read the value p points at into value_out (its contents are replaced).
 * If ikey is given, the record must hold exactly that internal key and the
 * read is one preadv of header + key + value; otherwise the header is read
 * first.  The record's lengths must match, its CRC must verify: any
 * mismatch, a missing segment or a pointer past the end of the file is
 * NOKV_CORRUPTION naming the file and offset; wrong data is never returned.
 */
int			nokv_vlog_read(nokv_vlog_handle *h, const nokv_vptr *p,
						   const char *ikey, size_t klen, nokv_buf *value_out,
						   nokv_error *err);

/* ---------- iterating one segment (GC, the CLI, fuzzing) ---------- */

/*
 * Called for every record in order; key and value are valid only during
 * the call.  Return NOKV_OK to go on; any other value stops the iteration,
 * which then returns that value.
 */
typedef int (*nokv_vlog_record_fn) (void *arg, const char *ikey, size_t klen,
									const char *value, size_t vlen, uint64_t offset);

/*
 * Iterate the records of segment number in dir.  A bad header is
 * corruption.  A damaged or incomplete record is corruption naming file
 * and offset, unless active is true: the active segment may end in a
 * torn or unacknowledged tail, so iteration stops cleanly before the first
 * bad record.  *valid_end (optional) receives the offset just past the
 * last good record.
 */
int			nokv_vlog_segment_iter(const char *dir, uint64_t number, bool active,
								   nokv_vlog_record_fn fn, void *arg,
								   uint64_t *valid_end, nokv_error *err);

/* the same over an in-memory segment image (name is used in messages) */
int			nokv_vlog_iter_mem(const char *data, size_t len, const char *name,
							   uint64_t number, bool active,
							   nokv_vlog_record_fn fn, void *arg,
							   uint64_t *valid_end, nokv_error *err);

/* ---------- statistics, discard, GC, segment lifecycle ---------- */

typedef struct nokv_vlog_stats
{
	uint64_t	segments;		/* segments in the table (live + not yet recorded) */
	uint64_t	bytes;			/* their total size */
	uint64_t	discard_bytes;	/* exact bytes no pointer references */
	double		discard_ratio;	/* discard_bytes / record bytes (0 when empty) */
	uint64_t	pending_delete; /* segments marked obsolete, not yet deleted */
	nokv_vlog_head head;		/* active segment and its size */
	nokv_vlog_head durable;		/* last head made durable by a sync */
	nokv_vlog_head manifest;	/* head the manifest holds */
	uint64_t	appends;		/* counters since the region was formatted */
	uint64_t	append_bytes;	/* record bytes */
	uint64_t	reads;
	uint64_t	read_bytes;		/* value bytes */
	uint64_t	read_errors;	/* reads that failed (corruption, I/O) */
	uint64_t	syncs;
	uint64_t	segments_created;
	uint64_t	segments_deleted;
	uint64_t	orphans_deleted;	/* by recovery */
	uint64_t	trimmed_bytes;	/* torn tails cut by recovery */
} nokv_vlog_stats;

typedef struct nokv_vlog_segment_info
{
	uint64_t	number;
	uint64_t	size;
	uint64_t	discard;
	double		discard_ratio;
	bool		active;
	bool		live;			/* recorded in the manifest */
	bool		pending_delete; /* marked obsolete, or its deletion is committed (not live) */
} nokv_vlog_segment_info;

void		nokv_vlog_get_stats(const nokv_ctx *ctx, nokv_off off, nokv_vlog_stats *s);

/*
 * Copy up to max segment descriptions (by number) into out; returns how
 * many segments there are (may exceed max).
 */
int			nokv_vlog_list_segments(const nokv_ctx *ctx, nokv_off off,
									nokv_vlog_segment_info *out, int max);

/* discard / (size - header), clamped to [0, 1] */
double		nokv_vlog_discard_ratio(uint64_t size, uint64_t discard);

/*
 * The GC candidate: among segments recorded in the manifest that are not
 * active and not marked obsolete, the one with the highest discard ratio,
 * if that is >= ratio (ties: the older segment).  NOKV_OK with *segment
 * set, or NOKV_NOT_FOUND.
 */
/*
 * Bracket every flush or compaction (from before its first value-log append
 * to after its version is installed or abandoned): GC never picks a segment
 * such a job may have appended to.
 */
void		nokv_vlog_appender_enter(const nokv_ctx *ctx, nokv_off off);
void		nokv_vlog_appender_leave(const nokv_ctx *ctx, nokv_off off);
int			nokv_vlog_pick_gc(const nokv_ctx *ctx, nokv_off off, double ratio,
							  uint64_t *segment);

/*
 * Add bytes to a segment's in-memory discard count (unknown segments are
 * ignored).  nokv_vlog_edit_committed already does this for the increments
 * of a committed edit; call this only for increments persisted some other
 * way, or they are counted twice.
 */
void		nokv_vlog_add_discard(const nokv_ctx *ctx, nokv_off off, uint64_t segment,
								  uint64_t bytes);

/*
 * Mark a segment obsolete: no longer picked for GC, waiting for deletion.
 * NOKV_NOT_FOUND for an unknown segment, NOKV_INVALID_ARGUMENT for the
 * active one.
 */
int			nokv_vlog_mark_obsolete(const nokv_ctx *ctx, nokv_off off, uint64_t segment);

/*
 * Unlink a segment and free its slot.  Only after an edit deleting it
 * (nokv_edit_delete_vlog_segment) is durable and has been passed to
 * nokv_vlog_edit_committed, and only when no SST in any live version
 * references it; otherwise NOKV_INVALID_ARGUMENT (the active segment
 * never qualifies).  A missing file is not an error.
 */
int			nokv_vlog_delete_segment(nokv_vlog_handle *h, uint64_t segment,
									 nokv_error *err);

/* ---------- recovery ---------- */

/*
 * Rebuild the shared state from a replayed manifest before anyone appends:
 * every segment the manifest lists must exist with a valid header and at
 * least its recorded size (else NOKV_CORRUPTION); the head segment's tail
 * beyond the durable head is cut off (ftruncate + fdatasync: it was never
 * acknowledged); segment files the manifest does not list are deleted (a
 * flush or relocation that crashed before its edit); appends then resume
 * at the head.  NOKV_NO_SPACE if the manifest lists more segments than
 * max_vlog_segments.
 */
int			nokv_vlog_recover(nokv_vlog_handle *h, const nokv_manifest_state *st,
							  nokv_error *err);

/* parse a canonical segment file name ("%06llu.vlog") */
bool		nokv_vlog_parse_name(const char *name, uint64_t *number);

#endif							/* NOKV_VLOG_H */
