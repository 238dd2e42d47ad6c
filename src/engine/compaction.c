/*-------------------------------------------------------------------------
 *
 * compaction.c
 *	  Leveled compaction: level targets, scores, picking, and the merge job.
 *
 * Level sizes follow RocksDB's level_compaction_dynamic_level_bytes: the
 * bottom level's target is the size of the largest level (at least
 * max_bytes_for_level_base) and every level above it is level_size_multiplier
 * times smaller, down to the "base level", the deepest level whose target
 * does not exceed max_bytes_for_level_base.  Level 0 compacts into the base
 * level; levels above the base level get no target and receive nothing.  A
 * small database therefore has a single populated level at the bottom, and
 * write amplification stays near its theoretical minimum as it grows.
 *
 * A compaction job merges its input files (nokv_merge_iter_new over one SST
 * iterator per file) and, per lookup key, walks the versions newest to
 * oldest, dropping what no reader can ever see again: versions shadowed by
 * a newer version at or below the safe point, versions hidden by a range
 * tombstone at or below the safe point, and - in the bottom-most level for
 * the key - deletes and range tombstones themselves.  Survivors may pass a
 * user compaction filter.  Outputs are cut at target_file_size and where
 * the key's partition changes (options.sst_partition), but never between
 * two versions of one lookup key, and range tombstones are split at output
 * boundaries so output files of a level never overlap.
 *
 * Concurrency: picking happens under NOKV_LOCK_COMPACTION, which also
 * guards the being_compacted flags of file-table slots.  A picked job marks
 * all its inputs, drops the lock, does all I/O unlocked, installs its
 * result with nokv_log_and_apply (MANIFEST, VERSION) and finally unmarks
 * its inputs under the lock again.  Jobs on disjoint inputs run in parallel
 * from any number of threads or processes.  The key range a job covers is
 * "convex" in its output level (all output-level files overlapping it are
 * inputs), so concurrent jobs never produce overlapping files in a level.
 *
 * src/engine/compaction.c
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nokv/coding.h"
#include "nokv/db_impl.h"
#include "nokv/file.h"
#include "nokv/status.h"
#include "nokv/block.h"
#include "nokv/vlog.h"

/* roll an output when it overlaps this many target files of the next level */
#define GRANDPARENT_OVERLAP_FILES	10

/* how often (in entries) a running job checks for shutdown */
#define SHUTDOWN_CHECK_INTERVAL		4096

/* how long a manual compaction waits for busy inputs before re-checking */
#define BUSY_WAIT_MS				50

/* ---------- lookup-key ranges ---------- */

/*
 * A range of lookup keys (cf byte + user key).  The low end is inclusive;
 * the high end is inclusive unless hi_excl.  A file's range comes from its
 * smallest and largest internal keys; a largest key of the form
 * (K, NOKV_VERSION_MAX, NOKV_KIND_SEEK) is the exclusive end of a range
 * tombstone (sst.h) and holds nothing of K itself.  Pointers refer to file
 * metadata in the shared heap (valid while the version listing the file is
 * referenced) or to the caller's buffers.
 */
typedef struct lrange
{
	const char *lo;
	size_t		lo_len;
	const char *hi;
	size_t		hi_len;
	bool		hi_excl;
} lrange;

static inline size_t
lkey_len_of(size_t ikey_len)
{
	return ikey_len > NOKV_IKEY_TRAILER ? ikey_len - NOKV_IKEY_TRAILER : 0;
}

static inline bool
ikey_is_end_sentinel(const char *k, size_t len)
{
	return len > NOKV_IKEY_TRAILER &&
		nokv_ikey_version(k, len) == NOKV_VERSION_MAX &&
		nokv_ikey_kind(k, len) == NOKV_KIND_SEEK;
}

static lrange
file_lrange(nokv_db *db, const nokv_file_meta *f)
{
	const char *s = nokv_file_smallest(db, f);
	const char *l = nokv_file_largest(db, f);
	lrange		r;

	r.lo = s;
	r.lo_len = lkey_len_of(f->smallest_len);
	r.hi = l;
	r.hi_len = lkey_len_of(f->largest_len);
	r.hi_excl = ikey_is_end_sentinel(l, f->largest_len);
	return r;
}

/* does a range ending at (hi, excl) end before lookup key k? */
static inline bool
ends_before(const char *hi, size_t hi_len, bool excl, const char *k, size_t klen)
{
	int			c = nokv_lkey_compare(hi, hi_len, k, klen);

	return c < 0 || (c == 0 && excl);
}

static bool
lrange_overlaps(const lrange *a, const lrange *b)
{
	return !ends_before(a->hi, a->hi_len, a->hi_excl, b->lo, b->lo_len) &&
		!ends_before(b->hi, b->hi_len, b->hi_excl, a->lo, a->lo_len);
}

/* does range r hold lookup key k? */
static bool
lrange_contains(const lrange *r, const char *k, size_t klen)
{
	return nokv_lkey_compare(r->lo, r->lo_len, k, klen) <= 0 &&
		!ends_before(r->hi, r->hi_len, r->hi_excl, k, klen);
}

/* does range r overlap the half-open lookup-key range [s, e)? */
static bool
lrange_overlaps_halfopen(const lrange *r, const char *s, size_t slen,
						 const char *e, size_t elen)
{
	return !ends_before(r->hi, r->hi_len, r->hi_excl, s, slen) &&
		nokv_lkey_compare(r->lo, r->lo_len, e, elen) < 0;
}

static void
lrange_union(lrange *acc, const lrange *r)
{
	int			c;

	if (nokv_lkey_compare(r->lo, r->lo_len, acc->lo, acc->lo_len) < 0)
	{
		acc->lo = r->lo;
		acc->lo_len = r->lo_len;
	}
	c = nokv_lkey_compare(r->hi, r->hi_len, acc->hi, acc->hi_len);
	if (c > 0)
	{
		acc->hi = r->hi;
		acc->hi_len = r->hi_len;
		acc->hi_excl = r->hi_excl;
	}
	else if (c == 0)
		acc->hi_excl = acc->hi_excl && r->hi_excl;
}

/* ---------- levels ---------- */

static int
num_levels(nokv_db *db)
{
	int			n = db->hdr->opts.num_levels;

	return n < 1 ? 1 : (n > NOKV_MAX_LEVELS ? NOKV_MAX_LEVELS : n);
}

static uint64_t
level_bytes(nokv_db *db, const nokv_version *v, int level, bool free_only)
{
	uint64_t	bytes = 0;

	for (int i = 0; i < v->nfiles[level]; i++)
	{
		const nokv_file_meta *f = nokv_version_file(db, v, level, i);

		if (!free_only || !atomic_load(&f->being_compacted))
			bytes += f->size;
	}
	return bytes;
}

/* deepest level holding any file (0 if only level 0 or nothing) */
static int
deepest_nonempty(nokv_db *db, const nokv_version *v)
{
	for (int level = num_levels(db) - 1; level > 0; level--)
		if (v->nfiles[level] > 0)
			return level;
	return 0;
}

void
nokv_level_targets(nokv_db *db, const nokv_version *v, uint64_t *targets)
{
	int			last = num_levels(db) - 1;
	uint64_t	base_bytes = db->hdr->opts.max_bytes_for_level_base;
	uint64_t	mult = db->hdr->opts.level_size_multiplier > 1
		? (uint64_t) db->hdr->opts.level_size_multiplier : 1;
	uint64_t	candidate[NOKV_MAX_LEVELS] = {0};
	uint64_t	largest = 0;
	int			base = 1;

	for (int level = 0; level < NOKV_MAX_LEVELS; level++)
		targets[level] = 0;
	if (last < 1)
		return;
	if (base_bytes == 0)
		base_bytes = 1;

	for (int level = 1; level <= last; level++)
	{
		uint64_t	bytes = level_bytes(db, v, level, false);

		if (bytes > largest)
			largest = bytes;
	}

	/* the bottom level holds the most data; every level above is mult x smaller */
	candidate[last] = largest > base_bytes ? largest : base_bytes;
	for (int level = last - 1; level >= 1; level--)
		candidate[level] = candidate[level + 1] / mult;

	/* base level: the deepest one whose target fits max_bytes_for_level_base */
	for (int level = last; level >= 1; level--)
		if (candidate[level] <= base_bytes)
		{
			base = level;
			break;
		}
	for (int level = base; level <= last; level++)
		targets[level] = candidate[level] > 0 ? candidate[level] : 1;
}

double
nokv_level_score(nokv_db *db, const nokv_version *v, int level, const uint64_t *targets)
{
	int			last = num_levels(db) - 1;
	uint64_t	bytes;

	if (level < 0 || level >= last)
		return 0.0;				/* the bottom level is never compacted by score */
	if (level == 0)
	{
		int			trigger = db->hdr->opts.l0_compaction_trigger > 0
			? db->hdr->opts.l0_compaction_trigger : 1;
		int			files = 0;

		for (int i = 0; i < v->nfiles[0]; i++)
			if (!atomic_load(&nokv_version_file(db, v, 0, i)->being_compacted))
				files++;
		return (double) files / trigger;
	}
	bytes = level_bytes(db, v, level, true);
	if (targets[level] > 0)
		return (double) bytes / (double) targets[level];

	/*
	 * A level above the base level should be empty.  It holds data when the
	 * base level moved down (the database shrank); drain it.
	 */
	if (bytes == 0)
		return 0.0;
	return 1.0 + (double) bytes /
		(double) (db->hdr->opts.max_bytes_for_level_base ? db->hdr->opts.max_bytes_for_level_base : 1);
}

/*
 * Where data leaving a level goes: the next level that has a target or
 * holds data.  Levels skipped are empty, so no key's versions are
 * reordered.
 */
static int
output_level_for(nokv_db *db, const nokv_version *v, const uint64_t *targets, int level)
{
	int			last = num_levels(db) - 1;
	int			out = level + 1;

	while (out < last && targets[out] == 0 && v->nfiles[out] == 0)
		out++;
	return out;
}

/* ---------- compaction descriptions ---------- */

typedef struct file_list
{
	nokv_file_meta **f;
	int			n;
	int			cap;
} file_list;

static void
file_list_push(file_list *l, nokv_file_meta *f)
{
	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 8;
		l->f = nokv_realloc(l->f, sizeof(nokv_file_meta *) * (size_t) l->cap);
	}
	l->f[l->n++] = f;
}

static void
file_list_free(file_list *l)
{
	free(l->f);
	memset(l, 0, sizeof(*l));
}

static bool
file_list_has(const file_list *l, const nokv_file_meta *f)
{
	for (int i = 0; i < l->n; i++)
		if (l->f[i] == f)
			return true;
	return false;
}

static bool
file_list_busy(const file_list *l)
{
	for (int i = 0; i < l->n; i++)
		if (atomic_load(&l->f[i]->being_compacted))
			return true;
	return false;
}

typedef struct compaction
{
	nokv_version *v;			/* referenced; lists every input */
	int			level;			/* input level */
	int			output_level;	/* == level for an in-place rewrite */
	file_list	inputs;			/* at level; level 0 newest first */
	file_list	outputs_in;		/* overlapping files of output_level */
	bool		allow_trivial;
	bool		marked;
	uint64_t	relocate;		/* value-log segment to move values out of, 0 = none */
	/* results */
	bool		moved;			/* done as a trivial move */
	uint64_t   *out_numbers;	/* files written (malloc'ed) */
	int			nout;
} compaction;

static void
compaction_free_lists(compaction *c)
{
	file_list_free(&c->inputs);
	file_list_free(&c->outputs_in);
	free(c->out_numbers);
	c->out_numbers = NULL;
	c->nout = 0;
}

/* every file of level overlapping r, in level order */
static void
collect_overlapping(nokv_db *db, const nokv_version *v, int level, const lrange *r,
					file_list *out)
{
	for (int i = 0; i < v->nfiles[level]; i++)
	{
		nokv_file_meta *f = nokv_version_file(db, v, level, i);
		lrange		fr = file_lrange(db, f);

		if (lrange_overlaps(&fr, r))
			file_list_push(out, f);
	}
}

/*
 * Grow a set of level-0 files (and its range) until no other level-0 file
 * overlaps it: a key's versions in level 0 may be spread over several
 * files, and all of them must move together, or an older version could
 * end up above a newer one.
 */
static void
l0_closure(nokv_db *db, const nokv_version *v, file_list *set, lrange *range)
{
	bool		grew = true;

	while (grew)
	{
		grew = false;
		for (int i = 0; i < v->nfiles[0]; i++)
		{
			nokv_file_meta *f = nokv_version_file(db, v, 0, i);
			lrange		fr;

			if (file_list_has(set, f))
				continue;
			fr = file_lrange(db, f);
			if (lrange_overlaps(&fr, range))
			{
				file_list_push(set, f);
				lrange_union(range, &fr);
				grew = true;
			}
		}
	}
}

static int
cmp_file_number_desc(const void *a, const void *b)
{
	const nokv_file_meta *fa = *(nokv_file_meta *const *) a;
	const nokv_file_meta *fb = *(nokv_file_meta *const *) b;

	return fa->number > fb->number ? -1 : (fa->number < fb->number ? 1 : 0);
}

static lrange
list_range(nokv_db *db, const file_list *l)
{
	lrange		r = file_lrange(db, l->f[0]);

	for (int i = 1; i < l->n; i++)
	{
		lrange		fr = file_lrange(db, l->f[i]);

		lrange_union(&r, &fr);
	}
	return r;
}

/*
 * Level 0 -> base: the oldest free level-0 file plus every level-0 file
 * overlapping the growing range, plus the overlapping output-level files.
 * Fails (skipping level 0 this round) if any of them is busy.
 */
static bool
pick_level0(nokv_db *db, compaction *c, const uint64_t *targets)
{
	const nokv_version *v = c->v;
	nokv_file_meta *seed = NULL;
	lrange		range;

	for (int i = 0; i < v->nfiles[0] && !seed; i++)
	{
		nokv_file_meta *f = nokv_version_file(db, v, 0, i);

		if (!atomic_load(&f->being_compacted))
			seed = f;
	}
	if (!seed)
		return false;

	c->level = 0;
	c->output_level = output_level_for(db, v, targets, 0);
	file_list_push(&c->inputs, seed);
	range = file_lrange(db, seed);
	l0_closure(db, v, &c->inputs, &range);
	if (file_list_busy(&c->inputs))
		goto fail;
	collect_overlapping(db, v, c->output_level, &range, &c->outputs_in);
	if (file_list_busy(&c->outputs_in))
		goto fail;
	qsort(c->inputs.f, c->inputs.n, sizeof(nokv_file_meta *), cmp_file_number_desc);
	c->allow_trivial = true;
	return true;

fail:
	compaction_free_lists(c);
	return false;
}

/*
 * Level n -> next level: files are taken round-robin starting at the
 * position remembered in compact_pointer_seq[n].  The remembered value is
 * the position of the last file picked; that file leaves the level, so the
 * same position then holds its successor in key order.
 */
static bool
pick_level(nokv_db *db, compaction *c, int level, const uint64_t *targets, bool dry_run)
{
	const nokv_version *v = c->v;
	int			n = v->nfiles[level];
	uint64_t	start;

	if (n == 0)
		return false;
	start = db->hdr->compact_pointer_seq[level];
	if (start >= (uint64_t) n)
		start = 0;

	c->level = level;
	c->output_level = output_level_for(db, v, targets, level);
	for (int k = 0; k < n; k++)
	{
		int			i = (int) ((start + (uint64_t) k) % (uint64_t) n);
		nokv_file_meta *f = nokv_version_file(db, v, level, i);
		lrange		range;

		if (atomic_load(&f->being_compacted))
			continue;
		range = file_lrange(db, f);
		c->outputs_in.n = 0;
		collect_overlapping(db, v, c->output_level, &range, &c->outputs_in);
		if (file_list_busy(&c->outputs_in))
			continue;
		file_list_push(&c->inputs, f);
		c->allow_trivial = true;
		if (!dry_run)
			db->hdr->compact_pointer_seq[level] = (uint64_t) i;
		return true;
	}
	compaction_free_lists(c);
	return false;
}

/*
 * Choose the most urgent compaction whose inputs are free.  COMPACTION must
 * be held; c->v set.  Nothing is marked here.
 */
static bool
pick_compaction(nokv_db *db, compaction *c, bool dry_run)
{
	int			last = num_levels(db) - 1;
	uint64_t	targets[NOKV_MAX_LEVELS];
	double		score[NOKV_MAX_LEVELS];
	bool		tried[NOKV_MAX_LEVELS] = {false};

	if (last < 1)
		return false;
	nokv_level_targets(db, c->v, targets);
	for (int level = 0; level < last; level++)
		score[level] = nokv_level_score(db, c->v, level, targets);

	for (;;)
	{
		int			best = -1;

		for (int level = 0; level < last; level++)
			if (!tried[level] && score[level] >= 1.0 &&
				(best < 0 || score[level] > score[best]))
				best = level;
		if (best < 0)
			return false;
		tried[best] = true;
		if (best == 0 ? pick_level0(db, c, targets)
			: pick_level(db, c, best, targets, dry_run))
			return true;
	}
}

static void
compaction_mark(nokv_db *db, compaction *c, int value)
{
	for (int i = 0; i < c->inputs.n; i++)
		atomic_store(&c->inputs.f[i]->being_compacted, value);
	for (int i = 0; i < c->outputs_in.n; i++)
		atomic_store(&c->outputs_in.f[i]->being_compacted, value);
	if (value)
		db->hdr->compactions_running++;
	else
		db->hdr->compactions_running--;
	c->marked = value != 0;
}

/* unmark the inputs, wake waiters, drop the version (its I/O outside any lock) */
static void
compaction_release(nokv_db *db, compaction *c)
{
	if (c->marked)
	{
		nokv_lock(&db->platform, NOKV_LOCK_COMPACTION, true);
		compaction_mark(db, c, 0);
		nokv_unlock(&db->platform, NOKV_LOCK_COMPACTION);
		nokv_cond_broadcast(&db->platform, NOKV_COND_STALL);
	}
	compaction_free_lists(c);
	if (c->v)
		nokv_version_unref(db, c->v);
	c->v = NULL;
}

/* ---------- the job ---------- */

/* a range tombstone gathered from the inputs, on lookup keys */
typedef struct job_tombstone
{
	char	   *lstart;			/* cf byte + start */
	size_t		lstart_len;
	char	   *lend;			/* cf byte + end (exclusive) */
	size_t		lend_len;
	uint64_t	version;
	bool		keep;			/* written to the outputs */
} job_tombstone;

typedef struct job_output
{
	uint64_t	number;
	nokv_sst_props props;
} job_output;

typedef struct job
{
	nokv_db    *db;
	compaction *c;
	uint64_t	safe_point;
	uint64_t	target_file_size;
	uint64_t	max_grandparent_overlap;
	int			last_level;

	/* range tombstones of all inputs */
	job_tombstone *tombs;
	int			ntombs;
	int			cap_tombs;
	int		   *cover;			/* tombstones <= safe point, by start */
	int			ncover;
	int			cover_next;
	int		   *active;			/* of cover: started, not yet ended */
	int			nactive;

	/* bottom-most test: per deeper level, the first file not before the key */
	int			level_pos[NOKV_MAX_LEVELS];

	/* grandparent overlap of the open output */
	int			gp_pos;
	uint64_t	gp_overlap;
	bool		gp_seen;

	/* outputs */
	nokv_sst_builder *builder;
	uint64_t	builder_number;
	nokv_buf	lower;			/* first lookup key of the open output */
	bool		has_lower;		/* false for the first output: no lower bound */
	nokv_buf	last_lkey;		/* last lookup key written */
	bool		written_any;
	job_output *outs;
	int			nouts;
	int			cap_outs;
	bool		edit_attempted; /* the edit naming them may be durable */

	/* the filter's replacement value, re-wrapped as a value record */
	nokv_buf	filter_value;
	nokv_buf	filter_src;		/* a separated value read for the filter */
	nokv_buf	reloc_value;	/* a relocated entry's new pointer record */
	nokv_buf	reloc_src;
	bool		relocated;		/* values were appended to the value log */
	nokv_version_edit vedit;	/* the job's edit: discard, then files */
	uint64_t	now_ms;			/* TTL clock, read once per job */

	/* statistics */
	uint64_t	dropped;
	uint64_t	tombs_dropped;
	uint64_t	bytes_read;
	uint64_t	bytes_written;
} job;

static int
cmp_tombstone(const void *a, const void *b)
{
	const job_tombstone *x = a,
			   *y = b;
	int			c = nokv_lkey_compare(x->lstart, x->lstart_len, y->lstart, y->lstart_len);

	if (c == 0)
		c = nokv_lkey_compare(x->lend, x->lend_len, y->lend, y->lend_len);
	if (c == 0)
		c = x->version > y->version ? -1 : (x->version < y->version ? 1 : 0);
	return c;
}

static void
job_add_tombstones(job *j, const nokv_range_tombstone *ts, int n)
{
	for (int i = 0; i < n; i++)
	{
		const nokv_range_tombstone *t = &ts[i];
		job_tombstone *jt;

		if (nokv_lkey_compare(t->start, t->start_len, t->end, t->end_len) >= 0)
			continue;			/* deletes nothing */
		if (j->ntombs == j->cap_tombs)
		{
			j->cap_tombs = j->cap_tombs ? j->cap_tombs * 2 : 16;
			j->tombs = nokv_realloc(j->tombs, sizeof(job_tombstone) * (size_t) j->cap_tombs);
		}
		jt = &j->tombs[j->ntombs++];
		jt->lstart_len = t->start_len + 1;
		jt->lstart = nokv_malloc(jt->lstart_len);
		jt->lstart[0] = (char) t->cf;
		if (t->start_len)
			memcpy(jt->lstart + 1, t->start, t->start_len);
		jt->lend_len = t->end_len + 1;
		jt->lend = nokv_malloc(jt->lend_len);
		jt->lend[0] = (char) t->cf;
		if (t->end_len)
			memcpy(jt->lend + 1, t->end, t->end_len);
		jt->version = t->version;
		jt->keep = true;
	}
}

/* is no file of a level below the output level overlapping [s, e)? */
static bool
range_is_bottommost(job *j, const char *s, size_t slen, const char *e, size_t elen)
{
	nokv_db    *db = j->db;
	const nokv_version *v = j->c->v;

	for (int level = j->c->output_level + 1; level <= j->last_level; level++)
	{
		int			lo = 0,
					hi = v->nfiles[level];

		/* first file not ending before s (files of a level are sorted and disjoint) */
		while (lo < hi)
		{
			int			mid = (lo + hi) / 2;
			lrange		fr = file_lrange(db, nokv_version_file(db, v, level, mid));

			if (ends_before(fr.hi, fr.hi_len, fr.hi_excl, s, slen))
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < v->nfiles[level])
		{
			lrange		fr = file_lrange(db, nokv_version_file(db, v, level, lo));

			if (lrange_overlaps_halfopen(&fr, s, slen, e, elen))
				return false;
		}
	}
	return true;
}

/*
 * Sort and de-duplicate the tombstones, decide which are kept, and index
 * those at or below the safe point for the coverage sweep.
 */
static void
job_prepare_tombstones(job *j)
{
	int			n = 0;

	if (j->ntombs == 0)
		return;
	qsort(j->tombs, j->ntombs, sizeof(job_tombstone), cmp_tombstone);
	for (int i = 0; i < j->ntombs; i++)
	{
		job_tombstone *t = &j->tombs[i];

		if (n > 0 && cmp_tombstone(&j->tombs[n - 1], t) == 0)
		{
			free(t->lstart);
			free(t->lend);
			continue;
		}
		j->tombs[n++] = *t;
	}
	j->ntombs = n;

	j->cover = nokv_malloc(sizeof(int) * (size_t) n);
	j->active = nokv_malloc(sizeof(int) * (size_t) n);
	for (int i = 0; i < n; i++)
	{
		job_tombstone *t = &j->tombs[i];

		if (t->version > j->safe_point)
			continue;			/* a snapshot may still read below it */
		j->cover[j->ncover++] = i;	/* already in start order */
		if (range_is_bottommost(j, t->lstart, t->lstart_len, t->lend, t->lend_len))
		{
			t->keep = false;
			j->tombs_dropped++;
		}
	}
}

/*
 * Highest version of a tombstone at or below the safe point covering lkey.
 * Lookup keys arrive in increasing order, so tombstones enter and leave the
 * active set once.
 */
static uint64_t
job_cover_version(job *j, const char *lkey, size_t len)
{
	uint64_t	best = 0;
	int			k = 0;

	while (j->cover_next < j->ncover)
	{
		job_tombstone *t = &j->tombs[j->cover[j->cover_next]];

		if (nokv_lkey_compare(t->lstart, t->lstart_len, lkey, len) > 0)
			break;
		j->active[j->nactive++] = j->cover[j->cover_next++];
	}
	for (int i = 0; i < j->nactive; i++)
	{
		job_tombstone *t = &j->tombs[j->active[i]];

		if (nokv_lkey_compare(t->lend, t->lend_len, lkey, len) <= 0)
			continue;			/* ended before this key: gone for good */
		j->active[k++] = j->active[i];
		if (t->version > best)
			best = t->version;
	}
	j->nactive = k;
	return best;
}

/* does any level below the output level hold lkey's range? */
static bool
job_key_is_bottommost(job *j, const char *lkey, size_t len)
{
	nokv_db    *db = j->db;
	const nokv_version *v = j->c->v;

	for (int level = j->c->output_level + 1; level <= j->last_level; level++)
	{
		int			n = v->nfiles[level];

		while (j->level_pos[level] < n)
		{
			lrange		fr = file_lrange(db, nokv_version_file(db, v, level, j->level_pos[level]));

			if (!ends_before(fr.hi, fr.hi_len, fr.hi_excl, lkey, len))
			{
				if (lrange_contains(&fr, lkey, len))
					return false;
				break;
			}
			j->level_pos[level]++;
		}
	}
	return true;
}

/*
 * Should the output be cut before lkey because it already overlaps too
 * much of the level below the output level?  (Each output file then costs
 * a bounded amount when it is compacted further.)
 */
static bool
job_grandparent_stop(job *j, const char *lkey, size_t len)
{
	nokv_db    *db = j->db;
	const nokv_version *v = j->c->v;
	int			gp = j->c->output_level + 1;

	if (gp > j->last_level || j->max_grandparent_overlap == 0)
		return false;
	while (j->gp_pos < v->nfiles[gp])
	{
		const nokv_file_meta *f = nokv_version_file(db, v, gp, j->gp_pos);
		lrange		fr = file_lrange(db, f);

		if (!ends_before(fr.hi, fr.hi_len, fr.hi_excl, lkey, len))
			break;
		if (j->gp_seen)
			j->gp_overlap += f->size;
		j->gp_pos++;
	}
	j->gp_seen = true;
	if (j->gp_overlap > j->max_grandparent_overlap)
	{
		j->gp_overlap = 0;
		return true;
	}
	return false;
}

static void
job_unlink_output(job *j, uint64_t number)
{
	char		path[NOKV_DIR_MAX + 32];

	snprintf(path, sizeof(path), NOKV_SST_FMT, j->db->hdr->dir, (unsigned long long) number);
	if (unlink(path) != 0)
		nokv_log(&j->db->platform, 2, "could not remove abandoned compaction output %s", path);
}

static int
job_open_output(job *j, nokv_error *err)
{
	nokv_db    *db = j->db;

	j->builder_number = nokv_new_file_number(db);
	j->builder = nokv_sst_builder_new(db->hdr->dir, j->builder_number, &db->hdr->opts.sst, err);
	if (!j->builder)
		return err && err->code != NOKV_OK ? err->code : NOKV_IO_ERROR;
	j->gp_overlap = 0;
	return NOKV_OK;
}

static inline const char *
lkey_max(const char *a, size_t alen, const char *b, size_t blen, size_t *len)
{
	if (nokv_lkey_compare(a, alen, b, blen) >= 0)
	{
		*len = alen;
		return a;
	}
	*len = blen;
	return b;
}

static inline const char *
lkey_min(const char *a, size_t alen, const char *b, size_t blen, size_t *len)
{
	if (nokv_lkey_compare(a, alen, b, blen) <= 0)
	{
		*len = alen;
		return a;
	}
	*len = blen;
	return b;
}

/*
 * Finish the open output.  Its share of every kept range tombstone is
 * [max(start, lower), min(end, upper)), where lower is the output's first
 * lookup key (none for the first output) and upper the next output's first
 * lookup key (none for the last): the pieces partition each tombstone, and
 * the outputs' widened key ranges stay disjoint because a piece ending at
 * upper ends in an exclusive sentinel sorting before every entry of upper.
 */
static int
job_finish_output(job *j, const char *upper, size_t upper_len, nokv_error *err)
{
	nokv_sst_builder *b = j->builder;
	job_output *o;
	nokv_sst_props props;
	int			rc;

	for (int i = 0; i < j->ntombs; i++)
	{
		const job_tombstone *t = &j->tombs[i];
		const char *s = t->lstart,
				   *e = t->lend;
		size_t		slen = t->lstart_len,
					elen = t->lend_len;
		nokv_range_tombstone piece;

		if (!t->keep)
			continue;
		if (j->has_lower)
			s = lkey_max(s, slen, j->lower.data, j->lower.len, &slen);
		if (upper)
			e = lkey_min(e, elen, upper, upper_len, &elen);
		if (nokv_lkey_compare(s, slen, e, elen) >= 0 || s[0] != t->lstart[0] || e[0] != t->lstart[0])
			continue;
		piece.cf = (unsigned char) t->lstart[0];
		piece.start = s + 1;
		piece.start_len = slen - 1;
		piece.end = e + 1;
		piece.end_len = elen - 1;
		piece.version = t->version;
		rc = nokv_sst_builder_add_range_tombstone(b, &piece, err);
		if (rc != NOKV_OK)
			return rc;
	}

	j->builder = NULL;
	memset(&props, 0, sizeof(props));
	rc = nokv_sst_builder_finish(b, &props, err);	/* frees b, also on failure */
	if (rc != NOKV_OK)
		return rc;
	if (j->nouts == j->cap_outs)
	{
		j->cap_outs = j->cap_outs ? j->cap_outs * 2 : 4;
		j->outs = nokv_realloc(j->outs, sizeof(job_output) * (size_t) j->cap_outs);
	}
	o = &j->outs[j->nouts++];
	o->number = j->builder_number;
	o->props = props;
	j->bytes_written += props.file_size;

	nokv_buf_reset(&j->lower);
	if (upper)
	{
		nokv_buf_append(&j->lower, upper, upper_len);
		j->has_lower = true;
	}
	return NOKV_OK;
}

/* write one surviving entry, rolling to a new output at a lookup-key boundary */
/* partition of a lookup key (column family byte + user key): its prefix length */
static size_t
lkey_partition(nokv_db *db, const char *lkey, size_t lkey_len)
{
	size_t		n = db->sst_partition(db->sst_partition_arg, (unsigned char) lkey[0],
									  lkey + 1, lkey_len - 1);

	return n < lkey_len - 1 ? n : lkey_len - 1;
}

/* does lkey belong to another partition than the last key written? */
static bool
job_partition_changes(job *j, const char *lkey, size_t lkey_len)
{
	const char *last = j->last_lkey.data;
	size_t		last_len = j->last_lkey.len;
	size_t		a;

	if (!j->db->sst_partition || !j->written_any || last_len == 0 || lkey_len == 0)
		return false;
	if (last[0] != lkey[0])
		return true;
	a = lkey_partition(j->db, last, last_len);
	return a != lkey_partition(j->db, lkey, lkey_len) || memcmp(last + 1, lkey + 1, a) != 0;
}

static int
job_write(job *j, const char *ikey, size_t klen, const char *value, size_t vlen,
		  const char *lkey, size_t lkey_len, nokv_error *err)
{
	int			rc;

	if (!j->written_any ||
		nokv_lkey_compare(j->last_lkey.data, j->last_lkey.len, lkey, lkey_len) != 0)
	{
		bool		gp_stop = job_grandparent_stop(j, lkey, lkey_len);

		if (j->builder &&
			((j->target_file_size > 0 &&
			  nokv_sst_builder_estimated_size(j->builder) >= j->target_file_size) ||
			 gp_stop || job_partition_changes(j, lkey, lkey_len)))
		{
			rc = job_finish_output(j, lkey, lkey_len, err);
			if (rc != NOKV_OK)
				return rc;
		}
		nokv_buf_reset(&j->last_lkey);
		nokv_buf_append(&j->last_lkey, lkey, lkey_len);
	}
	if (!j->builder)
	{
		rc = job_open_output(j, err);
		if (rc != NOKV_OK)
			return rc;
	}
	j->written_any = true;
	return nokv_sst_builder_add(j->builder, ikey, klen, value, vlen, err);
}

static void
job_free(job *j)
{
	if (j->builder)
		nokv_sst_builder_abandon(j->builder);
	j->builder = NULL;
	for (int i = 0; i < j->ntombs; i++)
	{
		free(j->tombs[i].lstart);
		free(j->tombs[i].lend);
	}
	free(j->tombs);
	free(j->cover);
	free(j->active);
	for (int i = 0; i < j->nouts; i++)
		nokv_sst_props_free(&j->outs[i].props);
	free(j->outs);
	nokv_buf_free(&j->lower);
	nokv_buf_free(&j->last_lkey);
	nokv_buf_free(&j->filter_value);
	nokv_buf_free(&j->filter_src);
	nokv_buf_free(&j->reloc_value);
	nokv_buf_free(&j->reloc_src);
	nokv_edit_free(&j->vedit);
}

/*
 * A pointer record this job no longer writes (dropped, replaced or
 * relocated): its segment record is garbage now.  Counted exactly, and
 * persisted in the same manifest edit as the job's file changes.
 */
static void
job_discard(job *j, size_t klen, const char *value, size_t vlen)
{
	nokv_value_view vv;
	nokv_vptr	p;

	if (vlen > 0 && (value[0] & NOKV_VF_VPTR) && nokv_value_decode(value, vlen, &vv) &&
		nokv_vptr_decode(vv.payload, vv.payload_len, &p))
		nokv_edit_add_vlog_discard(&j->vedit, p.segment, nokv_vlog_record_size(klen, p.len));
}

/* GC: move a value out of the segment being collected into the active one */
static int
job_relocate(job *j, const nokv_ikey_view *kv, const char *key, size_t klen,
			 const char **value, size_t *vlen, nokv_error *err)
{
	nokv_value_view vv;
	nokv_vptr	p;
	nokv_vptr	np;
	int			rc;

	if (j->c->relocate == 0 || *vlen == 0 || !((*value)[0] & NOKV_VF_VPTR) ||
		!nokv_value_decode(*value, *vlen, &vv) || !nokv_vptr_decode(vv.payload, vv.payload_len, &p) ||
		p.segment != j->c->relocate)
		return NOKV_OK;
	rc = nokv_vlog_read(j->db->vlog, &p, key, klen, &j->reloc_src, err);
	if (rc != NOKV_OK)
		return rc;
	rc = nokv_vlog_append(j->db->vlog, key, klen, j->reloc_src.data ? j->reloc_src.data : "",
						  j->reloc_src.len, &np, err);
	if (rc != NOKV_OK)
		return rc;
	(void) kv;
	nokv_buf_reset(&j->reloc_value);
	nokv_vptr_value_record(&j->reloc_value, vv.flags, vv.expires_at_ms, &np);
	*value = j->reloc_value.data;
	*vlen = j->reloc_value.len;
	j->relocated = true;
	return NOKV_OK;
}

/* has this put's TTL passed (by the job's clock)? */
static bool
job_expired(job *j, const char *value, size_t vlen)
{
	nokv_value_view vv;

	return nokv_value_decode(value, vlen, &vv) && nokv_value_expired(&vv, j->now_ms);
}

/*
 * Ask the compaction filter about a surviving put at or below the safe
 * point.  Returns NOKV_OK and sets *decision (and the value for CHANGE).
 */
static int
job_filter(job *j, const nokv_ikey_view *kv, bool bottommost,
		   const char **value, size_t *vlen, nokv_filter_decision *decision,
		   nokv_error *err)
{
	nokv_filter_entry e;
	const char *nv = NULL;
	size_t		nl = 0;
	nokv_value_view vv;

	/* the filter sees the user's value, never the stored record */
	if (!nokv_value_decode(*value, *vlen, &vv))
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "malformed value record of %zu bytes in compaction input", *vlen);
	if (vv.flags & NOKV_VF_VPTR)
	{
		int			rc = nokv_resolve_value(j->db, kv->cf, kv->ukey, kv->ukey_len, kv->version,
											&vv, &j->filter_src, err);

		if (rc != NOKV_OK)
			return rc;
		vv.payload = j->filter_src.data ? j->filter_src.data : "";
		vv.payload_len = j->filter_src.len;
	}
	e.cf = kv->cf;
	e.key = kv->ukey;
	e.key_len = kv->ukey_len;
	e.version = kv->version;
	e.kind = kv->kind;
	e.value = vv.payload;
	e.value_len = vv.payload_len;
	e.level = j->c->output_level;
	e.bottommost = bottommost;
	e.expires_at_ms = vv.expires_at_ms;
	e.expired = nokv_value_expired(&vv, j->now_ms);
	*decision = j->db->compaction_filter(j->db->compaction_filter_arg, &e, &nv, &nl);
	if (!j->db->hdr->opts.host_mvcc)
	{
		/* without host MVCC only the newest version is filtered: fold */
		if (*decision == NOKV_FILTER_KEEP_AS_BASE)
			*decision = NOKV_FILTER_KEEP;
		else if (*decision == NOKV_FILTER_CHANGE_AS_BASE)
			*decision = NOKV_FILTER_CHANGE;
		else if (*decision == NOKV_FILTER_DELETE_KEY)
			*decision = NOKV_FILTER_DROP;
	}
	switch (*decision)
	{
		case NOKV_FILTER_KEEP:
		case NOKV_FILTER_DROP:
		case NOKV_FILTER_KEEP_AS_BASE:
		case NOKV_FILTER_DELETE_KEY:
			break;
		case NOKV_FILTER_CHANGE:
		case NOKV_FILTER_CHANGE_AS_BASE:
			{
				char		hdr[1 + NOKV_MAX_VARINT64];
				size_t		hlen = nokv_value_header_encode(hdr, vv.flags & ~NOKV_VF_VPTR,
															vv.expires_at_ms);

				if (nl > 0 && nv == NULL)
					return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
										  "compaction filter changed a value to NULL with length %zu", nl);
				if (nl > NOKV_MAX_VALUE_SIZE)
					return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
										  "compaction filter returned a value of %zu bytes", nl);
				/* same record header (flags, expiry), new payload */
				nokv_buf_reset(&j->filter_value);
				nokv_buf_append(&j->filter_value, hdr, hlen);
				nokv_buf_append(&j->filter_value, nv, nl);
				*value = j->filter_value.data;
				*vlen = j->filter_value.len;
			}
			break;
		default:
			return nokv_error_set(err, NOKV_INVALID_ARGUMENT,
								  "compaction filter returned unknown decision %d", (int) *decision);
	}
	return NOKV_OK;
}

/* turn the put at *key into a tombstone of the same version (scratch holds it) */
static void
job_make_tombstone(nokv_buf *scratch, const char **key, size_t klen,
				   const char **value, size_t *vlen)
{
	nokv_buf_reset(scratch);
	nokv_buf_append(scratch, *key, klen);
	scratch->data[klen - 1] = (char) NOKV_KIND_DELETE;
	*key = scratch->data;
	*value = "";
	*vlen = 0;
}

/*
 * host_mvcc: one version at or below the safe point.  The host's filter
 * sees every put, newest first, and says which one is the key's base (the
 * oldest any reader can need); everything older than a base goes.  Engine
 * tombstones and range deletes keep their usual meaning.
 */
static int
job_host_mvcc(job *j, const nokv_ikey_view *kv, bool bottommost, uint64_t cover,
			  bool *base_seen, const char **key, size_t *klen, nokv_buf *scratch,
			  const char **value, size_t *vlen, bool *drop, nokv_error *err)
{
	nokv_filter_decision d = NOKV_FILTER_KEEP;
	int			rc;

	if (*base_seen || cover > kv->version)
	{
		*drop = true;			/* shadowed or range-deleted for every reader */
		return NOKV_OK;
	}
	if (kv->kind == NOKV_KIND_DELETE)
	{
		*base_seen = true;
		*drop = bottommost;
		return NOKV_OK;
	}
	if (!j->db->compaction_filter)
		return NOKV_OK;
	rc = job_filter(j, kv, bottommost, value, vlen, &d, err);
	if (rc != NOKV_OK)
		return rc;
	switch (d)
	{
		case NOKV_FILTER_DROP:
			*drop = true;		/* this version only (e.g. its writer aborted) */
			break;
		case NOKV_FILTER_KEEP_AS_BASE:
		case NOKV_FILTER_CHANGE_AS_BASE:
			*base_seen = true;
			break;
		case NOKV_FILTER_DELETE_KEY:
			*base_seen = true;
			if (bottommost)
				*drop = true;
			else
			{
				/* older versions may sit in deeper levels: keep them hidden */
				job_make_tombstone(scratch, key, *klen, value, vlen);
				j->dropped++;
			}
			break;
		default:
			break;
	}
	return NOKV_OK;
}

/*
 * Merge the inputs and write the outputs.  Per lookup key, versions arrive
 * newest first; with S the safe point:
 *	- every version > S is kept (a snapshot or a reader may need it);
 *	- the newest version <= S is kept unless a range tombstone in (v, S]
 *	  covers it, or it is a delete and no deeper level holds the key;
 *	- every older version is dropped: no reader can reach it any more.
 * A surviving put <= S then goes through the compaction filter.
 */
static int
job_run(job *j, nokv_iiter *it, nokv_error *err)
{
	nokv_buf	cur_lkey = {0};
	nokv_buf	prev_ikey = {0};
	nokv_buf	scratch = {0};
	bool		have_key = false;
	bool		seen_visible = false;	/* passed the newest version <= S */
	bool		bottommost = false;
	uint64_t	cover = 0;
	uint64_t	count = 0;
	int			rc = NOKV_OK;

	for (nokv_iiter_seek_to_first(it); nokv_iiter_valid(it); nokv_iiter_next(it))
	{
		size_t		klen,
					vlen;
		const char *key = nokv_iiter_key(it, &klen);
		const char *value = nokv_iiter_value(it, &vlen);
		const char *orig_value;
		size_t		orig_vlen;
		nokv_ikey_view kv;
		bool		drop = false;

		if (++count % SHUTDOWN_CHECK_INTERVAL == 0 && atomic_load(&j->db->hdr->shutting_down))
		{
			rc = nokv_error_set(err, NOKV_SHUTDOWN, "compaction interrupted by shutdown");
			goto done;
		}
		if (!nokv_ikey_parse(key, klen, &kv) ||
			(kv.kind != NOKV_KIND_PUT && kv.kind != NOKV_KIND_DELETE))
		{
			rc = nokv_error_set(err, NOKV_CORRUPTION,
								"malformed internal key of %zu bytes in compaction input", klen);
			goto done;
		}

		if (!have_key ||
			nokv_lkey_compare(cur_lkey.data, cur_lkey.len, kv.lkey, kv.lkey_len) != 0)
		{
			nokv_buf_reset(&cur_lkey);
			nokv_buf_append(&cur_lkey, kv.lkey, kv.lkey_len);
			have_key = true;
			seen_visible = false;
			bottommost = job_key_is_bottommost(j, kv.lkey, kv.lkey_len);
			cover = job_cover_version(j, kv.lkey, kv.lkey_len);
		}
		else if (prev_ikey.len == klen && memcmp(prev_ikey.data, key, klen) == 0)
		{
			/* the same entry in two inputs (e.g. a re-applied batch): keep the newest file's */
			j->dropped++;
			continue;
		}
		nokv_buf_reset(&prev_ikey);
		nokv_buf_append(&prev_ikey, key, klen);
		orig_value = value;
		orig_vlen = vlen;

		if (kv.version <= j->safe_point && j->db->hdr->opts.host_mvcc)
		{
			rc = job_host_mvcc(j, &kv, bottommost, cover, &seen_visible, &key, &klen,
							   &scratch, &value, &vlen, &drop, err);
			if (rc != NOKV_OK)
				goto done;
		}
		else if (kv.version <= j->safe_point)
		{
			if (seen_visible)
				drop = true;	/* shadowed for every reader */
			else
			{
				seen_visible = true;
				if (cover > kv.version)
					drop = true;	/* range-deleted for every reader */
				else if (kv.kind == NOKV_KIND_DELETE && bottommost)
					drop = true;	/* nothing below to hide */
				else if (kv.kind == NOKV_KIND_PUT && job_expired(j, value, vlen))
				{
					/* expired: deleted for every reader, whatever its snapshot */
					if (bottommost)
						drop = true;
					else
					{
						nokv_buf_reset(&scratch);
						nokv_buf_append(&scratch, key, klen);
						scratch.data[klen - 1] = (char) NOKV_KIND_DELETE;
						key = scratch.data;
						value = "";
						vlen = 0;
						j->dropped++;
					}
				}
				else if (kv.kind == NOKV_KIND_PUT && j->db->compaction_filter)
				{
					nokv_filter_decision d = NOKV_FILTER_KEEP;

					rc = job_filter(j, &kv, bottommost, &value, &vlen, &d, err);
					if (rc != NOKV_OK)
						goto done;
					if (d == NOKV_FILTER_DROP)
					{
						if (bottommost)
							drop = true;
						else
						{
							/*
							 * Older versions may sit in deeper levels: turn
							 * the put into a delete so they stay hidden.
							 */
							nokv_buf_reset(&scratch);
							nokv_buf_append(&scratch, key, klen);
							scratch.data[klen - 1] = (char) NOKV_KIND_DELETE;
							key = scratch.data;
							value = "";
							vlen = 0;
							j->dropped++;
						}
					}
				}
			}
		}
		if (!drop && kv.kind == NOKV_KIND_PUT && value == orig_value)
		{
			rc = job_relocate(j, &kv, key, klen, &value, &vlen, err);
			if (rc != NOKV_OK)
				goto done;
		}
		if (drop || value != orig_value)
			job_discard(j, klen, orig_value, orig_vlen);
		if (drop)
		{
			j->dropped++;
			continue;
		}
		rc = job_write(j, key, klen, value, vlen, kv.lkey, kv.lkey_len, err);
		if (rc != NOKV_OK)
			goto done;
	}
	rc = nokv_iiter_status(it, err);
	if (rc != NOKV_OK)
		goto done;

	if (j->builder)
		rc = job_finish_output(j, NULL, 0, err);
	else
	{
		bool		any_kept = false;

		for (int i = 0; i < j->ntombs && !any_kept; i++)
			any_kept = j->tombs[i].keep;
		if (any_kept)
		{
			/* no point entry survived but tombstones must: a file of just those */
			rc = job_open_output(j, err);
			if (rc == NOKV_OK)
				rc = job_finish_output(j, NULL, 0, err);
		}
	}

done:
	nokv_buf_free(&cur_lkey);
	nokv_buf_free(&prev_ikey);
	nokv_buf_free(&scratch);
	return rc;
}

static void
desc_from_meta(nokv_db *db, const nokv_file_meta *f, int level, nokv_file_desc *d)
{
	memset(d, 0, sizeof(*d));
	d->level = level;
	d->number = f->number;
	d->size = f->size;
	d->entries = f->entries;
	d->deletions = f->deletions;
	d->range_deletions = f->range_deletions;
	d->min_version = f->min_version;
	d->max_version = f->max_version;
	d->smallest = (char *) nokv_file_smallest(db, f);
	d->smallest_len = f->smallest_len;
	d->largest = (char *) nokv_file_largest(db, f);
	d->largest_len = f->largest_len;
}

/* bytes of the level below the output level that a file range overlaps */
static uint64_t
grandparent_bytes(nokv_db *db, const compaction *c, const lrange *r)
{
	int			gp = c->output_level + 1;
	uint64_t	bytes = 0;

	if (gp >= num_levels(db))
		return 0;
	for (int i = 0; i < c->v->nfiles[gp]; i++)
	{
		const nokv_file_meta *f = nokv_version_file(db, c->v, gp, i);
		lrange		fr = file_lrange(db, f);

		if (lrange_overlaps(&fr, r))
			bytes += f->size;
	}
	return bytes;
}

/* move one file down a level with a manifest edit; no data is rewritten */
static int
trivial_move(nokv_db *db, compaction *c, nokv_error *err)
{
	nokv_file_meta *f = c->inputs.f[0];
	nokv_version_edit edit;
	nokv_file_desc d;
	int			rc;

	nokv_edit_init(&edit);
	nokv_edit_delete_file(&edit, c->level, f->number);
	desc_from_meta(db, f, c->output_level, &d);
	nokv_edit_add_file(&edit, &d);
	rc = nokv_log_and_apply(db, &edit, err);
	nokv_edit_free(&edit);
	if (rc == NOKV_OK)
	{
		atomic_fetch_add(&db->hdr->stats.compactions, 1);
		nokv_log(&db->platform, 0, "moved file %llu from level %d to level %d",
				 (unsigned long long) f->number, c->level, c->output_level);
	}
	return rc;
}

/*
 * Run a picked (and marked) compaction.  Returns NOKV_OK or an error code.
 * A job that fails before its version edit removes every output it wrote;
 * if nokv_log_and_apply itself fails the outputs are left for recovery.
 */
static int	compaction_execute_job(nokv_db *db, compaction *c, nokv_error *err);

/* relocation may append to the value log until the version is installed */
static int
compaction_execute(nokv_db *db, compaction *c, nokv_error *err)
{
	int			rc;

	if (db->hdr->vlog == 0)
		return compaction_execute_job(db, c, err);
	nokv_vlog_appender_enter(&db->ctx, db->hdr->vlog);
	rc = compaction_execute_job(db, c, err);
	nokv_vlog_appender_leave(&db->ctx, db->hdr->vlog);
	return rc;
}

static int
compaction_execute_job(nokv_db *db, compaction *c, nokv_error *err)
{
	nokv_region_hdr *hdr = db->hdr;
	job			j;
	nokv_iiter **children;
	nokv_iiter *it = NULL;
	int			nchildren = 0;
	int			total = c->inputs.n + c->outputs_in.n;
	int			rc = NOKV_OK;

	if (c->allow_trivial && c->inputs.n == 1 && c->outputs_in.n == 0 &&
		c->output_level != c->level)
	{
		lrange		r = file_lrange(db, c->inputs.f[0]);
		uint64_t	limit = hdr->opts.target_file_size * GRANDPARENT_OVERLAP_FILES;

		if (limit == 0 || grandparent_bytes(db, c, &r) <= limit)
		{
			rc = trivial_move(db, c, err);
			c->moved = rc == NOKV_OK;
			return rc;
		}
	}

	memset(&j, 0, sizeof(j));
	nokv_edit_init(&j.vedit);
	j.db = db;
	j.c = c;
	j.safe_point = nokv_safe_point(db);
	j.now_ms = nokv_now_ms(db);
	j.target_file_size = hdr->opts.target_file_size;
	j.max_grandparent_overlap = hdr->opts.target_file_size * GRANDPARENT_OVERLAP_FILES;
	j.last_level = num_levels(db) - 1;

	/* newest first: level-0 inputs by descending number, then the output level */
	children = nokv_calloc(total + 1, sizeof(nokv_iiter *));
	for (int i = 0; i < total && rc == NOKV_OK; i++)
	{
		nokv_file_meta *f = i < c->inputs.n ? c->inputs.f[i] : c->outputs_in.f[i - c->inputs.n];
		nokv_sst_reader *r;
		nokv_range_tombstone *ts = NULL;
		int			nts = 0;

		rc = nokv_table_get(db, f, &r, err);
		if (rc != NOKV_OK)
			break;
		rc = nokv_sst_range_tombstones(r, &ts, &nts, err);
		if (rc != NOKV_OK)
			break;
		job_add_tombstones(&j, ts, nts);
		free(ts);
		children[nchildren++] = nokv_sst_iter_new(r);
		j.bytes_read += f->size;
	}
	if (rc != NOKV_OK)
	{
		for (int i = 0; i < nchildren; i++)
			nokv_iiter_destroy(children[i]);
		free(children);
		job_free(&j);
		return rc;
	}
	it = nokv_merge_iter_new(children, nchildren);
	free(children);

	job_prepare_tombstones(&j);
	rc = job_run(&j, it, err);
	nokv_iiter_destroy(it);

	/* relocated values must be durable before the tables pointing at them */
	if (rc == NOKV_OK && j.relocated)
		rc = nokv_vlog_sync(db->vlog, &j.vedit, NULL, err);
	if (rc == NOKV_OK)
	{
		nokv_version_edit *edit = &j.vedit;

		for (int i = 0; i < c->inputs.n; i++)
			nokv_edit_delete_file(edit, c->level, c->inputs.f[i]->number);
		for (int i = 0; i < c->outputs_in.n; i++)
			nokv_edit_delete_file(edit, c->output_level, c->outputs_in.f[i]->number);
		for (int i = 0; i < j.nouts; i++)
		{
			const nokv_sst_props *p = &j.outs[i].props;
			nokv_file_desc d = {
				.level = c->output_level,
				.number = j.outs[i].number,
				.size = p->file_size,
				.entries = p->entries,
				.deletions = p->deletions,
				.range_deletions = p->range_deletions,
				.min_version = p->min_version,
				.max_version = p->max_version,
				.smallest = p->smallest,
				.smallest_len = p->smallest_len,
				.largest = p->largest,
				.largest_len = p->largest_len,
			};

			nokv_edit_add_file(edit, &d);
		}
		rc = nokv_log_and_apply(db, edit, err);
		if (rc != NOKV_OK)
		{
			/*
			 * The edit may or may not have reached the manifest (a failed
			 * fdatasync, or a durable edit that could not be applied in
			 * memory), so the outputs may be named by it: leave them.
			 * Recovery deletes every SST the manifest does not list.
			 */
			j.edit_attempted = true;
		}
	}

	if (rc != NOKV_OK)
	{
		if (j.builder)
			nokv_sst_builder_abandon(j.builder);
		j.builder = NULL;
		/* the outputs of a job that failed before its edit belong to nobody */
		for (int i = 0; i < j.nouts && !j.edit_attempted; i++)
			job_unlink_output(&j, j.outs[i].number);
	}
	else
	{
		c->nout = j.nouts;
		c->out_numbers = nokv_malloc(sizeof(uint64_t) * (size_t) (j.nouts + 1));
		for (int i = 0; i < j.nouts; i++)
			c->out_numbers[i] = j.outs[i].number;
		atomic_fetch_add(&hdr->stats.compactions, 1);
		atomic_fetch_add(&hdr->stats.compaction_bytes_read, j.bytes_read);
		atomic_fetch_add(&hdr->stats.compaction_bytes_written, j.bytes_written);
		atomic_fetch_add(&hdr->stats.compaction_entries_dropped, j.dropped + j.tombs_dropped);
		nokv_log(&db->platform, 0,
				 "compacted %d file(s) at level %d and %d at level %d into %d file(s): "
				 "%llu bytes read, %llu written, %llu entries and %llu range tombstones dropped",
				 c->inputs.n, c->level, c->outputs_in.n, c->output_level, j.nouts,
				 (unsigned long long) j.bytes_read, (unsigned long long) j.bytes_written,
				 (unsigned long long) j.dropped, (unsigned long long) j.tombs_dropped);
	}
	job_free(&j);
	return rc;
}

/* ---------- entry points ---------- */

int
nokv_compaction_run_one(nokv_db *db, nokv_error *err)
{
	compaction	c;
	bool		picked;
	int			rc;

	if (atomic_load(&db->hdr->shutting_down) || num_levels(db) < 2)
		return 0;

	memset(&c, 0, sizeof(c));
	nokv_lock(&db->platform, NOKV_LOCK_COMPACTION, true);
	c.v = nokv_version_current(db);
	picked = pick_compaction(db, &c, false);
	if (picked)
		compaction_mark(db, &c, 1);
	nokv_unlock(&db->platform, NOKV_LOCK_COMPACTION);
	if (!picked)
	{
		compaction_release(db, &c);
		return 0;
	}

	rc = compaction_execute(db, &c, err);
	compaction_release(db, &c);
	if (rc == NOKV_SHUTDOWN)
		return 0;				/* abandoned cleanly; not a background error */
	return rc == NOKV_OK ? 1 : -rc;
}

bool
nokv_compaction_needed(nokv_db *db)
{
	compaction	c;
	bool		needed;

	if (num_levels(db) < 2)
		return false;
	memset(&c, 0, sizeof(c));
	nokv_lock(&db->platform, NOKV_LOCK_COMPACTION, true);
	c.v = nokv_version_current(db);
	needed = pick_compaction(db, &c, true);
	nokv_unlock(&db->platform, NOKV_LOCK_COMPACTION);
	compaction_release(db, &c);
	return needed;
}

/* ---------- manual compaction ---------- */

/*
 * A manual compaction moves the data of a key range down level by level and
 * finally rewrites it in place in the deepest level.  Every job it runs has
 * the shape of an automatic one - the level-0 overlap closure, or one file
 * of a level >= 1 plus the overlapping files of its output level, or one
 * file rewritten into its own level - because those shapes leave no gap
 * inside the key range they write that a concurrent job could fill: two
 * jobs writing one level always cover disjoint key ranges.
 */
typedef struct manual_state
{
	uint64_t	relocate;		/* value-log segment being collected, 0 = none */
	lrange		range;			/* [cf + start, cf + end) */
	int			merged_level;	/* deepest level merged into, -1 none */
	uint64_t   *merged;			/* files those merges wrote (already collected) */
	int			nmerged;
	int			cap_merged;
	nokv_buf	cursor;			/* high end of the last file processed */
	bool		has_cursor;
	bool		cursor_excl;
} manual_state;

typedef enum manual_pick
{
	MANUAL_NOTHING,				/* nothing (left) to do at this level */
	MANUAL_BUSY,				/* some input is being compacted: wait */
	MANUAL_PICKED
} manual_pick;

/* does a file start after the last file processed at this level? */
static bool
after_cursor(const manual_state *ms, const lrange *fr)
{
	int			c;

	if (!ms->has_cursor)
		return true;
	c = nokv_lkey_compare(fr->lo, fr->lo_len, ms->cursor.data, ms->cursor.len);
	return c > 0 || (c == 0 && ms->cursor_excl);
}

static bool
merged_by_us(const manual_state *ms, int level, uint64_t number)
{
	if (level != ms->merged_level)
		return false;
	for (int i = 0; i < ms->nmerged; i++)
		if (ms->merged[i] == number)
			return true;
	return false;
}

static void
note_merged(manual_state *ms, const compaction *c)
{
	if (ms->merged_level != c->output_level)
	{
		ms->merged_level = c->output_level;
		ms->nmerged = 0;
	}
	for (int i = 0; i < c->nout; i++)
	{
		if (ms->nmerged == ms->cap_merged)
		{
			ms->cap_merged = ms->cap_merged ? ms->cap_merged * 2 : 16;
			ms->merged = nokv_realloc(ms->merged, sizeof(uint64_t) * (size_t) ms->cap_merged);
		}
		ms->merged[ms->nmerged++] = c->out_numbers[i];
	}
}

/*
 * The next manual job at a level: level 0's overlap closure of the files
 * overlapping the range, or the first file of the level overlapping the
 * range past the cursor (in place: skipping files this compaction already
 * wrote by merging into the deepest level).  COMPACTION held; c->v set.
 */
static manual_pick
pick_manual(nokv_db *db, manual_state *ms, compaction *c, int level, bool in_place)
{
	const nokv_version *v = c->v;
	lrange		span;

	c->level = level;
	c->allow_trivial = !in_place;
	if (level == 0)
	{
		collect_overlapping(db, v, 0, &ms->range, &c->inputs);
		if (c->inputs.n == 0)
			return MANUAL_NOTHING;
		span = list_range(db, &c->inputs);
		l0_closure(db, v, &c->inputs, &span);
		qsort(c->inputs.f, c->inputs.n, sizeof(nokv_file_meta *), cmp_file_number_desc);
	}
	else
	{
		nokv_file_meta *pick = NULL;

		for (int i = 0; i < v->nfiles[level] && !pick; i++)
		{
			nokv_file_meta *f = nokv_version_file(db, v, level, i);
			lrange		fr = file_lrange(db, f);

			if (lrange_overlaps(&fr, &ms->range) && after_cursor(ms, &fr) &&
				!(in_place && merged_by_us(ms, level, f->number)))
				pick = f;
		}
		if (!pick)
			return MANUAL_NOTHING;
		file_list_push(&c->inputs, pick);
		span = file_lrange(db, pick);
	}

	if (in_place)
		c->output_level = level;
	else
	{
		uint64_t	targets[NOKV_MAX_LEVELS];

		nokv_level_targets(db, v, targets);
		c->output_level = output_level_for(db, v, targets, level);
		collect_overlapping(db, v, c->output_level, &span, &c->outputs_in);
	}
	if (file_list_busy(&c->inputs) || file_list_busy(&c->outputs_in))
		return MANUAL_BUSY;
	return MANUAL_PICKED;
}

/*
 * Run the manual jobs of one level, waiting while inputs are busy.  Returns
 * 1 if a compaction ran, 0 if there was nothing to do, or a negative code.
 */
static int
manual_level(nokv_db *db, manual_state *ms, int level, bool in_place, nokv_error *err)
{
	int			ran = 0;

	ms->has_cursor = false;
	for (;;)
	{
		compaction	c;
		manual_pick p;
		bool		into_deepest = false;
		int			rc;

		if (atomic_load(&db->hdr->shutting_down))
			return -nokv_error_set(err, NOKV_SHUTDOWN, "engine is shutting down");

		memset(&c, 0, sizeof(c));
		c.relocate = ms->relocate;
		nokv_lock(&db->platform, NOKV_LOCK_COMPACTION, true);
		c.v = nokv_version_current(db);
		p = pick_manual(db, ms, &c, level, in_place);
		if (p == MANUAL_PICKED)
		{
			into_deepest = !in_place && deepest_nonempty(db, c.v) <= c.output_level;
			compaction_mark(db, &c, 1);
		}
		else if (p == MANUAL_BUSY)
			nokv_cond_wait(&db->platform, NOKV_COND_STALL, NOKV_LOCK_COMPACTION, BUSY_WAIT_MS);
		nokv_unlock(&db->platform, NOKV_LOCK_COMPACTION);

		if (p != MANUAL_PICKED)
		{
			compaction_release(db, &c);
			if (p == MANUAL_BUSY)
				continue;
			return ran;
		}

		rc = compaction_execute(db, &c, err);
		if (rc == NOKV_OK)
		{
			lrange		fr = file_lrange(db, c.inputs.f[0]);

			ran = 1;
			if (into_deepest && !c.moved)
				note_merged(ms, &c);	/* garbage already dropped there */
			nokv_buf_reset(&ms->cursor);
			nokv_buf_append(&ms->cursor, fr.hi, fr.hi_len);
			ms->cursor_excl = fr.hi_excl;
			ms->has_cursor = true;
		}
		compaction_release(db, &c);
		if (rc != NOKV_OK)
			return -rc;
		if (level == 0)
			return ran;			/* the closure covered all of level 0 */
	}
}

static int
current_deepest(nokv_db *db)
{
	nokv_version *v = nokv_version_current(db);
	int			deepest = deepest_nonempty(db, v);

	nokv_version_unref(db, v);
	return deepest;
}

int
nokv_compaction_run_range(nokv_db *db, int cf, const void *start, size_t slen,
						  const void *end, size_t elen, nokv_error *err)
{
	int			last = num_levels(db) - 1;
	manual_state ms;
	char	   *lo;
	char	   *hi;
	int			deepest;
	bool		ran = false;
	int			rc = 0;

	if (cf < 0 || cf >= NOKV_CF_COUNT)
		return -nokv_error_set(err, NOKV_INVALID_ARGUMENT, "unknown column family %d", cf);
	if (last < 1)
		return 0;

	memset(&ms, 0, sizeof(ms));
	ms.merged_level = -1;

	/* [cf + start, cf + end); no end: up to the next column family */
	ms.range.lo_len = 1 + (start ? slen : 0);
	lo = nokv_malloc(ms.range.lo_len);
	lo[0] = (char) cf;
	if (ms.range.lo_len > 1)
		memcpy(lo + 1, start, slen);
	if (end)
	{
		ms.range.hi_len = 1 + elen;
		hi = nokv_malloc(ms.range.hi_len);
		hi[0] = (char) cf;
		if (elen)
			memcpy(hi + 1, end, elen);
	}
	else
	{
		ms.range.hi_len = 1;
		hi = nokv_malloc(1);
		hi[0] = (char) (cf + 1);
	}
	ms.range.lo = lo;
	ms.range.hi = hi;
	ms.range.hi_excl = true;
	if (nokv_lkey_compare(lo, ms.range.lo_len, hi, ms.range.hi_len) >= 0)
		goto out;				/* empty range */

	/* push the range down, level by level, to the deepest level holding data */
	for (int level = 0; level < last; level++)
	{
		if (level > 0 && level >= current_deepest(db))
			break;
		rc = manual_level(db, &ms, level, false, err);
		if (rc < 0)
			goto out;
		ran = ran || rc > 0;
	}

	/*
	 * Then rewrite the deepest level's files of the range in place, so
	 * deletes, tombstones and old versions are dropped - except the files a
	 * merge into that level just wrote, which had that done already.
	 */
	deepest = current_deepest(db);
	if (deepest > 0)
	{
		rc = manual_level(db, &ms, deepest, true, err);
		if (rc < 0)
			goto out;
		ran = ran || rc > 0;
	}
	rc = ran ? 1 : 0;

out:
	free(lo);
	free(hi);
	free(ms.merged);
	nokv_buf_free(&ms.cursor);
	return rc;
}

/* ---------- value-log garbage collection ---------- */

/* may file f hold pointers into segment? (its properties name the range) */
static bool
file_refs_segment(nokv_db *db, const nokv_file_meta *f, uint64_t segment)
{
	nokv_sst_reader *r;
	const nokv_sst_props *p;

	if (nokv_table_get(db, f, &r, NULL) != NOKV_OK)
		return true;			/* unknown: assume it does (never delete early) */
	p = nokv_sst_get_props(r);
	return nokv_sst_props_refs_segment(p, segment);
}

/* the first file of level referencing segment; *busy if only busy ones do */
static nokv_file_meta *
find_referencing(nokv_db *db, const nokv_version *v, int level, uint64_t segment, bool *busy)
{
	*busy = false;
	for (int i = 0; i < v->nfiles[level]; i++)
	{
		nokv_file_meta *f = nokv_version_file(db, v, level, i);

		if (!file_refs_segment(db, f, segment))
			continue;
		if (atomic_load(&f->being_compacted))
		{
			*busy = true;
			continue;
		}
		return f;
	}
	return NULL;
}

/*
 * Collect one segment: every table that may point into it is rewritten
 * with that segment's still-referenced values moved to the active segment
 * (level 0 through its usual closure into the next level, so level-0 age
 * order is kept; deeper levels one file at a time, in place).  The rewrite
 * is an ordinary compaction, so readers see the same data throughout and a
 * crash at any point leaves either the old tables or the new ones.  Then an
 * edit retires the segment; its file is unlinked once no live version
 * still lists a table pointing into it (nokv_vlog_sweep).
 */
int
nokv_compaction_gc_segment(nokv_db *db, uint64_t segment, nokv_error *err)
{
	int			last = num_levels(db) - 1;
	manual_state ms;
	char		hi = (char) NOKV_CF_COUNT;
	int			rc = 0;

	memset(&ms, 0, sizeof(ms));
	ms.merged_level = -1;
	ms.relocate = segment;
	ms.range.lo = "";
	ms.range.lo_len = 0;
	ms.range.hi = &hi;
	ms.range.hi_len = 1;
	ms.range.hi_excl = true;

	for (int round = 0;; round++)
	{
		nokv_version *v;

		/* every round rewrites a table that points into the segment; a table
		 * rewritten must stop doing so, so the rounds are bounded by the
		 * tables: far more rounds than that means something is wrong */
		if (round > 4 * db->hdr->opts.max_files + 100)
		{
			rc = -nokv_error_set(err, NOKV_CORRUPTION,
								 "value-log GC of segment %llu made no progress",
								 (unsigned long long) segment);
			break;
		}
		v = nokv_version_current(db);
		bool		l0 = false;
		bool		busy_any = false;
		int			level_pick = -1;
		nokv_file_meta *pick = NULL;

		for (int i = 0; i < v->nfiles[0] && !l0; i++)
			l0 = file_refs_segment(db, nokv_version_file(db, v, 0, i), segment);
		for (int level = 1; level <= last && !pick; level++)
		{
			bool		busy;

			pick = find_referencing(db, v, level, segment, &busy);
			if (pick)
				level_pick = level;
			busy_any |= busy;
		}
		nokv_version_unref(db, v);

		if (atomic_load(&db->hdr->shutting_down))
		{
			rc = -nokv_error_set(err, NOKV_SHUTDOWN, "engine is shutting down");
			break;
		}
		if (l0)
		{
			ms.has_cursor = false;
			rc = manual_level(db, &ms, 0, false, err);
			if (rc < 0)
				break;
			continue;
		}
		if (pick)
		{
			compaction	c;
			bool		ok_to_run;

			memset(&c, 0, sizeof(c));
			c.relocate = segment;
			nokv_lock(&db->platform, NOKV_LOCK_COMPACTION, true);
			c.v = nokv_version_current(db);
			/* still listed and free? (the version may have moved on) */
			ok_to_run = !atomic_load(&pick->being_compacted);
			if (ok_to_run)
			{
				ok_to_run = false;
				for (int i = 0; i < c.v->nfiles[level_pick]; i++)
					if (nokv_version_file(db, c.v, level_pick, i) == pick)
						ok_to_run = true;
			}
			if (ok_to_run)
			{
				c.level = c.output_level = level_pick;
				c.allow_trivial = false;
				file_list_push(&c.inputs, pick);
				compaction_mark(db, &c, 1);
			}
			nokv_unlock(&db->platform, NOKV_LOCK_COMPACTION);
			if (ok_to_run)
			{
				int			xrc = compaction_execute(db, &c, err);

				compaction_release(db, &c);
				if (xrc != NOKV_OK)
				{
					rc = -xrc;
					break;
				}
			}
			else
				compaction_release(db, &c);
			continue;
		}
		if (busy_any)
		{
			/* a compaction holds a referencing file: wait for it */
			nokv_lock(&db->platform, NOKV_LOCK_COMPACTION, true);
			nokv_cond_wait(&db->platform, NOKV_COND_STALL, NOKV_LOCK_COMPACTION, BUSY_WAIT_MS);
			nokv_unlock(&db->platform, NOKV_LOCK_COMPACTION);
			continue;
		}

		/* nothing in the current version points into the segment: retire it */
		{
			nokv_version_edit edit;

			nokv_edit_init(&edit);
			nokv_edit_delete_vlog_segment(&edit, segment);
			rc = nokv_log_and_apply(db, &edit, err);
			nokv_edit_free(&edit);
			rc = rc == NOKV_OK ? 1 : -rc;
		}
		break;
	}
	free(ms.merged);
	nokv_buf_free(&ms.cursor);
	return rc;
}

/*
 * Unlink retired segments that no table of any live version (a reader in
 * any process may still hold an old one) can point into.
 */
void
nokv_vlog_sweep(nokv_db *db)
{
	int			cap = nokv_vlog_list_segments(&db->ctx, db->hdr->vlog, NULL, 0);
	nokv_vlog_segment_info *info = nokv_malloc(sizeof(*info) * (size_t) (cap + 1));
	int			n = nokv_vlog_list_segments(&db->ctx, db->hdr->vlog, info, cap);

	/* segments created since the first call are not in the buffer */
	if (n > cap)
		n = cap;
	for (int i = 0; i < n; i++)
	{
		bool		referenced = false;

		/* only segments whose deletion the manifest already holds */
		if (!info[i].pending_delete || info[i].live || info[i].active)
			continue;
		for (int s = 0; s < db->hdr->opts.max_files && !referenced; s++)
		{
			nokv_file_meta *f = nokv_file_slot(db, s);

			if (f->number != 0 && atomic_load(&f->refs) > 0)
				referenced = file_refs_segment(db, f, info[i].number);
		}
		if (!referenced)
			nokv_vlog_delete_segment(db->vlog, info[i].number, NULL);
	}
	free(info);
}
