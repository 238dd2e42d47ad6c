/*-------------------------------------------------------------------------
 *
 * manifest.h
 *	  Version edits, the manifest log and CURRENT.
 *
 * The manifest MANIFEST-NNNNNN is a logformat.h log of version edits (one
 * record per edit, CRC'd).  CURRENT names the live manifest; it is replaced
 * atomically (temp file, fsync, rename, directory fsync).  On open the
 * edits are replayed into a nokv_manifest_state; a torn tail is tolerated,
 * mid-log corruption and a CURRENT naming a missing file are errors.  When
 * the log grows past a threshold the engine writes a new manifest holding
 * one snapshot edit of the whole state and swaps CURRENT.
 *
 * Edits are encoded as tagged fields (see docs/manifest.md), so new fields
 * can be added without breaking old files; unknown tags are corruption.
 *
 * Besides tables, counters and log positions, the manifest records the
 * value log (docs/vlog.md): its durable head, every segment with its
 * durable size, deleted segments, and per-segment discard increments that
 * compactions persist in the same edit as their file changes.
 *
 * include/nokv/manifest.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_MANIFEST_H
#define NOKV_MANIFEST_H

#include "nokv/coding.h"
#include "nokv/nokv.h"

/* one table as the manifest knows it; keys are malloc'ed internal keys */
typedef struct nokv_file_desc
{
	int			level;
	uint64_t	number;
	uint64_t	size;
	uint64_t	entries;
	uint64_t	deletions;
	uint64_t	range_deletions;
	uint64_t	min_version;
	uint64_t	max_version;
	char	   *smallest;
	size_t		smallest_len;
	char	   *largest;
	size_t		largest_len;
} nokv_file_desc;

typedef struct nokv_ext_position
{
	uint32_t	log_id;
	uint64_t	position;
} nokv_ext_position;

/* (value-log segment number, amount): a segment's size, or discarded bytes */
typedef struct nokv_vlog_amount
{
	uint64_t	number;
	uint64_t	amount;
} nokv_vlog_amount;

/* a value-log segment as the manifest state knows it */
typedef struct nokv_vlog_segment_desc
{
	uint64_t	number;
	uint64_t	size;			/* durable bytes, file header included */
	uint64_t	discard;		/* bytes of records no live pointer references */
} nokv_vlog_segment_desc;

typedef struct nokv_version_edit
{
	bool		has_next_file_number;
	uint64_t	next_file_number;
	bool		has_last_version;
	uint64_t	last_version;
	bool		has_log_number;
	uint64_t	log_number;		/* own WAL: oldest segment still needed */
	int			n_ext;
	nokv_ext_position ext[NOKV_MAX_EXTERNAL_LOGS];	/* flushed positions */
	int			n_deleted;
	int			cap_deleted;
	struct
	{
		int			level;
		uint64_t	number;
	}		   *deleted;
	int			n_added;
	int			cap_added;
	nokv_file_desc *added;

	/* value log (tags 7-10) */
	bool		has_vlog_head;
	uint64_t	vlog_head_segment;	/* durable head: segment number ... */
	uint64_t	vlog_head_offset;	/* ... and bytes in it */
	int			n_vlog_segments;
	int			cap_vlog_segments;
	nokv_vlog_amount *vlog_segments;	/* (number, durable size): add or grow */
	int			n_vlog_deleted;
	int			cap_vlog_deleted;
	uint64_t   *vlog_deleted;	/* segment numbers */
	int			n_vlog_discard;
	int			cap_vlog_discard;
	nokv_vlog_amount *vlog_discard; /* (number, bytes): discard increments */
} nokv_version_edit;

void		nokv_edit_init(nokv_version_edit *e);
void		nokv_edit_free(nokv_version_edit *e);
/* copies the keys */
void		nokv_edit_add_file(nokv_version_edit *e, const nokv_file_desc *f);
void		nokv_edit_delete_file(nokv_version_edit *e, int level, uint64_t number);
void		nokv_edit_set_ext_position(nokv_version_edit *e, uint32_t log_id, uint64_t pos);

/*
 * Value-log fields.  Each helper merges with what the edit already holds:
 * the head keeps the later position (by segment, then offset), a segment
 * keeps the larger size, a deletion is recorded once, discard increments
 * of one segment are summed (saturating).  Segment number 0 is invalid
 * (such an edit does not validate).
 */
void		nokv_edit_set_vlog_head(nokv_version_edit *e, uint64_t segment, uint64_t offset);
void		nokv_edit_add_vlog_segment(nokv_version_edit *e, uint64_t number, uint64_t size);
void		nokv_edit_delete_vlog_segment(nokv_version_edit *e, uint64_t number);
void		nokv_edit_add_vlog_discard(nokv_version_edit *e, uint64_t number, uint64_t bytes);
void		nokv_edit_encode(const nokv_version_edit *e, nokv_buf *out);
/* never reads outside [data, data+len); malformed input is NOKV_CORRUPTION */
int			nokv_edit_decode(const char *data, size_t len, nokv_version_edit *e,
							 nokv_error *err);

/* the state a manifest replays to */
typedef struct nokv_manifest_state
{
	uint64_t	next_file_number;
	uint64_t	last_version;
	uint64_t	log_number;
	uint64_t	ext_position[NOKV_MAX_EXTERNAL_LOGS];
	int			nfiles[NOKV_MAX_LEVELS];
	int			capfiles[NOKV_MAX_LEVELS];
	nokv_file_desc *files[NOKV_MAX_LEVELS]; /* level 0 in add order, others by smallest */
	uint64_t	vlog_head_segment;	/* 0 = the value log was never written */
	uint64_t	vlog_head_offset;
	int			n_vlog;
	int			cap_vlog;
	nokv_vlog_segment_desc *vlog;	/* live value-log segments, by number */
	uint64_t	manifest_number;	/* file replayed / written */
	uint64_t	manifest_size;	/* valid bytes in it */
	bool		torn_tail;		/* replay stopped at a torn tail */
} nokv_manifest_state;

void		nokv_manifest_state_init(nokv_manifest_state *st);
void		nokv_manifest_state_free(nokv_manifest_state *st);
/* apply an edit; deleting an unknown file or adding a duplicate is corruption */
int			nokv_manifest_state_apply(nokv_manifest_state *st, const nokv_version_edit *e,
									  nokv_error *err);
/* an edit that recreates st from nothing (for manifest rewrites) */
void		nokv_manifest_state_to_edit(const nokv_manifest_state *st, nokv_version_edit *e);
/* the state's entry for a value-log segment, or NULL */
const nokv_vlog_segment_desc *nokv_manifest_state_vlog(const nokv_manifest_state *st,
													   uint64_t number);

/*
 * Replay CURRENT's manifest into st.  NOKV_NOT_FOUND if the directory has no
 * CURRENT (a new database); NOKV_CORRUPTION on a bad CURRENT, a missing
 * manifest or mid-log corruption.  Never modifies any file.
 */
int			nokv_manifest_recover(const char *dir, nokv_manifest_state *st, nokv_error *err);

/* replay one manifest file (the CLI, fuzzing) */
int			nokv_manifest_replay_file(const char *path, nokv_manifest_state *st,
									  nokv_error *err);

/* writer for the live manifest (per process, used under NOKV_LOCK_MANIFEST) */
typedef struct nokv_manifest_writer nokv_manifest_writer;

/*
 * Write a new MANIFEST-number holding one snapshot edit of st (temp name,
 * fsync, rename), then point CURRENT at it atomically.  Returns a writer
 * positioned at its end.  Does not delete older manifests (the caller does,
 * after this returns).
 */
int			nokv_manifest_create(const char *dir, uint64_t number,
								 const nokv_manifest_state *st,
								 nokv_manifest_writer **w, nokv_error *err);

/* open the existing MANIFEST-number for appending at valid_size (truncating any torn tail) */
int			nokv_manifest_writer_open(const char *dir, uint64_t number, uint64_t valid_size,
									  nokv_manifest_writer **w, nokv_error *err);

/* append one edit; fdatasync before returning (the edit is durable) */
int			nokv_manifest_append(nokv_manifest_writer *w, const nokv_version_edit *e,
								 nokv_error *err);
uint64_t	nokv_manifest_writer_size(const nokv_manifest_writer *w);
uint64_t	nokv_manifest_writer_number(const nokv_manifest_writer *w);
void		nokv_manifest_writer_close(nokv_manifest_writer *w);

#endif							/* NOKV_MANIFEST_H */
