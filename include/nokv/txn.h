/*-------------------------------------------------------------------------
 *
 * txn.h
 *	  Transactions: snapshot isolation with optimistic conflict detection.
 *
 * Versions are the engine's timestamps.  In own-log mode the write path
 * hands out versions in commit order under the write lock, and the last
 * published version (nokv_last_version) is the read timestamp of a new
 * transaction; recovery restores it from the manifest and the WAL, so the
 * oracle never goes backwards across restarts.
 *
 * A transaction reads a snapshot taken at nokv_txn_begin (pinned against
 * compaction GC until it ends) and buffers its writes in private memory.
 * Reads see the transaction's own writes first.  nokv_txn_commit writes
 * the buffer as one atomic batch; before it is logged it checks, under the
 * engine's write lock, that no key the transaction read or wrote (and no
 * key range it scanned) was committed by anyone else after its read
 * version.  If one was, nothing is written and NOKV_CONFLICT is returned:
 * the caller retries with a new transaction.  The check may report a
 * conflict that did not happen (never the reverse); see docs/txn.md.
 *
 * Managed mode (databases opened with external_log): the caller chooses
 * the read version (nokv_txn_begin_at) and the commit version and log
 * position (nokv_txn_commit_at); there is no conflict detection.  The
 * distributed layer builds Percolator on top of it.
 *
 * A transaction and its iterators belong to one thread at a time.  Free
 * iterators before ending their transaction; an iterator still open when
 * its transaction ends becomes invalid (status NOKV_INVALID_ARGUMENT) and
 * must still be freed.
 *
 * include/nokv/txn.h
 *-------------------------------------------------------------------------
 */
#ifndef NOKV_TXN_H
#define NOKV_TXN_H

#include "nokv/nokv.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nokv_txn nokv_txn;
typedef struct nokv_txn_iter nokv_txn_iter;

typedef struct nokv_txn_options
{
	bool		read_only;		/* writes are refused */
	bool		detect_conflicts;	/* default true; false: last writer wins */
	bool		sync;			/* own-log mode: fdatasync the commit */
} nokv_txn_options;

void		nokv_txn_options_init(nokv_txn_options *o);

/*
 * Begin a transaction reading the last published version (own-log mode:
 * the oracle's read timestamp).  o may be NULL (defaults).  Returns NULL
 * with err set when no snapshot slot is free (NOKV_NO_SPACE).
 */
nokv_txn   *nokv_txn_begin(nokv_db *db, const nokv_txn_options *o, nokv_error *err);

/*
 * Managed mode: begin a transaction that reads as of read_version (> 0),
 * pinned against compaction GC.  In own-log mode read_version must not
 * exceed nokv_last_version().  Refused (NOKV_INVALID_ARGUMENT) when
 * read_version is below the current GC safe point: versions it would need
 * may already be gone.
 */
nokv_txn   *nokv_txn_begin_at(nokv_db *db, const nokv_txn_options *o,
							  uint64_t read_version, nokv_error *err);

/* the version this transaction reads at */
uint64_t	nokv_txn_read_version(const nokv_txn *t);

/* buffered writes; arguments are validated as by nokv_batch_* */
int			nokv_txn_put(nokv_txn *t, int cf, const void *key, size_t klen,
						 const void *val, size_t vlen, nokv_error *err);
/* a put that expires at expires_at_ms (0 = never), as nokv_batch_put_ttl */
int			nokv_txn_put_ttl(nokv_txn *t, int cf, const void *key, size_t klen,
							 const void *val, size_t vlen, uint64_t expires_at_ms,
							 nokv_error *err);
int			nokv_txn_delete(nokv_txn *t, int cf, const void *key, size_t klen,
							nokv_error *err);
/* deletes [start, end) of one column family */
int			nokv_txn_delete_range(nokv_txn *t, int cf, const void *start, size_t slen,
								  const void *end, size_t elen, nokv_error *err);

/* buffered writes: entries (range deletes included) and their key+value bytes */
uint32_t	nokv_txn_write_count(const nokv_txn *t);
size_t		nokv_txn_write_bytes(const nokv_txn *t);

/*
 * Point read through the transaction: its own writes first (puts, deletes,
 * range deletes), else its snapshot.  ro may be NULL; its snapshot and
 * version fields are ignored (the transaction's read version applies), its
 * visibility hook and fill_cache are honoured.  On success *val is
 * malloc'ed (caller frees).  NOKV_NOT_FOUND when absent or deleted.  A read
 * that reaches the snapshot is recorded for conflict detection.
 */
int			nokv_txn_get(nokv_txn *t, const nokv_read_options *ro, int cf,
						 const void *key, size_t klen,
						 char **val, size_t *vlen, nokv_error *err);

/*
 * Commit (own-log mode).  Returns NOKV_OK and sets *commit_version
 * (optional) to the version at which every write of the transaction is
 * visible (the read version for a transaction that wrote nothing), or
 * NOKV_CONFLICT with nothing written, or another error with nothing
 * written.  Always ends the transaction: t is freed.
 */
int			nokv_txn_commit(nokv_txn *t, uint64_t *commit_version, nokv_error *err);

/*
 * Managed-mode commit (external_log databases): every write gets
 * wo->version; wo->log_id / wo->log_position name the caller's log record,
 * as for nokv_write.  No conflict detection.  Always ends the transaction.
 */
int			nokv_txn_commit_at(nokv_txn *t, const nokv_write_options *wo,
							   nokv_error *err);

/* end without writing anything; releases the snapshot and frees t */
void		nokv_txn_discard(nokv_txn *t);

/* ---------- iterators over the transaction's view ---------- */

/*
 * Iterates one column family as the transaction sees it: its pending
 * writes merged over its snapshot.  ro may be NULL; bounds, visibility hook
 * and fill_cache are honoured, snapshot and version are ignored.  The key
 * range the iterator covers is recorded for conflict detection.  Never
 * NULL: errors show through nokv_txn_iter_status.
 */
nokv_txn_iter *nokv_txn_iter_new(nokv_txn *t, const nokv_read_options *ro, int cf);
void		nokv_txn_iter_free(nokv_txn_iter *it);
void		nokv_txn_iter_seek_to_first(nokv_txn_iter *it);
void		nokv_txn_iter_seek_to_last(nokv_txn_iter *it);
void		nokv_txn_iter_seek(nokv_txn_iter *it, const void *key, size_t klen);
void		nokv_txn_iter_seek_for_prev(nokv_txn_iter *it, const void *key, size_t klen);
void		nokv_txn_iter_next(nokv_txn_iter *it);
void		nokv_txn_iter_prev(nokv_txn_iter *it);
bool		nokv_txn_iter_valid(const nokv_txn_iter *it);
const char *nokv_txn_iter_key(const nokv_txn_iter *it, size_t *klen);
const char *nokv_txn_iter_value(const nokv_txn_iter *it, size_t *vlen);
/* the entry's committed version, 0 for the transaction's own writes */
uint64_t	nokv_txn_iter_version(const nokv_txn_iter *it);
int			nokv_txn_iter_status(const nokv_txn_iter *it, nokv_error *err);

/* ---------- statistics (shared by every process) ---------- */

typedef struct nokv_txn_stats
{
	uint64_t	started;
	uint64_t	active;			/* started and not yet ended */
	uint64_t	commits;		/* transactions that wrote and committed */
	uint64_t	read_only;		/* ended by commit without writing */
	uint64_t	conflicts;		/* commits refused with NOKV_CONFLICT */
	uint64_t	floor_conflicts;	/* of those: refused because history was evicted */
	uint64_t	discards;
	uint64_t	failed;			/* commits that failed with another error */
} nokv_txn_stats;

void		nokv_txn_get_stats(nokv_db *db, nokv_txn_stats *st);

#ifdef __cplusplus
}
#endif

#endif							/* NOKV_TXN_H */
