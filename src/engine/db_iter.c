/*-------------------------------------------------------------------------
 *
 * db_iter.c
 *	  Level iterators and the user-facing iterator (nokv_iter).
 *
 * A user iterator pins a view (memtables + version) for its whole life and
 * merges one internal iterator per memtable, per level-0 file and per
 * deeper level (a level iterator opens its files lazily, so a scan of a
 * small range touches only the files it needs).  On top of the merged
 * stream it applies visibility: the newest version at or below the read
 * version wins, deletes and range tombstones hide keys, and bounds clip the
 * range.  The direction-switching logic follows LevelDB's DBIter: moving
 * forward the internal iterator sits on the current entry; moving backward
 * it sits just before the current key's entries, and the current key and
 * value are saved copies.
 *
 * src/engine/db_iter.c
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "nokv/db_impl.h"
#include "nokv/status.h"

/* ---------- level iterator ---------- */

typedef struct level_iter
{
	nokv_iiter	base;
	nokv_db    *db;
	nokv_version *v;			/* borrowed: the owner holds a reference */
	int			level;
	int			index;			/* current file, or -1 */
	nokv_iiter *child;
	nokv_error	err;
} level_iter;

static void
li_open(level_iter *li, int index)
{
	nokv_sst_reader *r;

	nokv_iiter_destroy(li->child);
	li->child = NULL;
	li->index = index;
	if (index < 0 || index >= li->v->nfiles[li->level])
	{
		li->index = -1;
		return;
	}
	if (nokv_table_get(li->db, nokv_version_file(li->db, li->v, li->level, index), &r,
					   &li->err) != NOKV_OK)
	{
		li->index = -1;
		return;
	}
	li->child = nokv_sst_iter_new(r);
}

static bool
li_child_failed(level_iter *li)
{
	if (li->child && nokv_iiter_status(li->child, &li->err) != NOKV_OK)
	{
		nokv_iiter_destroy(li->child);
		li->child = NULL;
		li->index = -1;
		return true;
	}
	return false;
}

static void
li_skip_forward(level_iter *li)
{
	while (li->child && !nokv_iiter_valid(li->child) && !li_child_failed(li))
	{
		if (li->index + 1 >= li->v->nfiles[li->level])
		{
			li_open(li, -1);
			return;
		}
		li_open(li, li->index + 1);
		if (li->child)
			nokv_iiter_seek_to_first(li->child);
	}
}

static void
li_skip_backward(level_iter *li)
{
	while (li->child && !nokv_iiter_valid(li->child) && !li_child_failed(li))
	{
		if (li->index == 0)
		{
			li_open(li, -1);
			return;
		}
		li_open(li, li->index - 1);
		if (li->child)
			nokv_iiter_seek_to_last(li->child);
	}
}

static bool
li_valid(nokv_iiter *it)
{
	level_iter *li = (level_iter *) it;

	return li->err.code == NOKV_OK && li->child && nokv_iiter_valid(li->child);
}

static void
li_seek_to_first(nokv_iiter *it)
{
	level_iter *li = (level_iter *) it;

	li_open(li, 0);
	if (li->child)
		nokv_iiter_seek_to_first(li->child);
	li_skip_forward(li);
}

static void
li_seek_to_last(nokv_iiter *it)
{
	level_iter *li = (level_iter *) it;

	li_open(li, li->v->nfiles[li->level] - 1);
	if (li->child)
		nokv_iiter_seek_to_last(li->child);
	li_skip_backward(li);
}

static void
li_seek(nokv_iiter *it, const char *k, size_t n)
{
	level_iter *li = (level_iter *) it;
	int			lo = 0,
				hi = li->v->nfiles[li->level];

	/* first file whose largest key >= k */
	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;
		nokv_file_meta *f = nokv_version_file(li->db, li->v, li->level, mid);

		if (nokv_ikey_compare(nokv_file_largest(li->db, f), f->largest_len, k, n) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	li_open(li, lo < li->v->nfiles[li->level] ? lo : -1);
	if (li->child)
		nokv_iiter_seek(li->child, k, n);
	li_skip_forward(li);
}

static void
li_next(nokv_iiter *it)
{
	level_iter *li = (level_iter *) it;

	nokv_iiter_next(li->child);
	li_skip_forward(li);
}

static void
li_prev(nokv_iiter *it)
{
	level_iter *li = (level_iter *) it;

	nokv_iiter_prev(li->child);
	li_skip_backward(li);
}

static const char *
li_key(nokv_iiter *it, size_t *n)
{
	return nokv_iiter_key(((level_iter *) it)->child, n);
}

static const char *
li_value(nokv_iiter *it, size_t *n)
{
	return nokv_iiter_value(((level_iter *) it)->child, n);
}

static int
li_status(nokv_iiter *it, nokv_error *err)
{
	level_iter *li = (level_iter *) it;

	if (li->err.code != NOKV_OK)
	{
		if (err)
			*err = li->err;
		return li->err.code;
	}
	if (li->child)
		return nokv_iiter_status(li->child, err);
	return NOKV_OK;
}

static void
li_destroy(nokv_iiter *it)
{
	level_iter *li = (level_iter *) it;

	nokv_iiter_destroy(li->child);
	free(li);
}

static const nokv_iiter_ops level_iter_ops = {
	.valid = li_valid,
	.seek_to_first = li_seek_to_first,
	.seek_to_last = li_seek_to_last,
	.seek = li_seek,
	.next = li_next,
	.prev = li_prev,
	.key = li_key,
	.value = li_value,
	.status = li_status,
	.destroy = li_destroy,
};

nokv_iiter *
nokv_level_iter_new(nokv_db *db, nokv_version *v, int level)
{
	level_iter *li = nokv_calloc(1, sizeof(*li));

	li->base.ops = &level_iter_ops;
	li->db = db;
	li->v = v;
	li->level = level;
	li->index = -1;
	return &li->base;
}

/* ---------- user iterator ---------- */

/*
 * Between calls an iterator holds its version reference and registered
 * snapshot but no memtable pins: memtable slots are a fixed pool, and an
 * idle cursor must not stop writers from recycling flushed memtables.  Each
 * call re-pins; if a slot was recycled meanwhile, the iterator takes a fresh
 * view at the same read version (its snapshot kept every version it can
 * see) and re-positions.  The current key and value are copied out at the
 * end of every call, so nothing returned to the caller points into shared
 * memory that could be recycled.
 */
struct nokv_iter
{
	nokv_db    *db;
	nokv_view	view;
	nokv_iiter *it;				/* merged internal iterator */
	uint64_t	rv;				/* read version */
	nokv_snapshot *own_snap;	/* registered when the caller gave none */
	int			cf;
	nokv_buf	lower;			/* lookup-key bounds: [lower, upper) */
	nokv_buf	upper;
	nokv_range_tombstone *tombs;
	int			ntombs;
	void	  **tomb_blocks;	/* malloc'ed blocks the tombstones live in */
	int			nblocks;

	bool		valid;
	bool		forward;
	bool		advanced;		/* forward: internal iterator already past cur */
	nokv_buf	saved_key;		/* skip key (forward) / candidate (reverse) */
	nokv_buf	saved_value;	/* candidate payload (reverse) */
	uint64_t	saved_version;

	/* the current entry, copied out for the caller */
	nokv_buf	cur_ikey;		/* forward only: where to re-position */
	nokv_buf	cur_key;		/* lookup key */
	/*
	 * The payload.  It points into the block the internal iterator is on
	 * (the iterator holds the block's cache pin until it moves), di->big
	 * or saved_value, all of which stay put until the next operation; a
	 * value in a memtable is copied to cur_copy, since memtables are
	 * pinned only inside a call and may be recycled after it.
	 */
	const char *cur_vdata;
	size_t		cur_vlen;
	nokv_buf	cur_copy;
	uint64_t	cur_version;
	uint64_t	cur_expires;
	uint64_t	saved_expires;

	nokv_buf	big;			/* a value read from the value log */
	nokv_visible_fn visible;	/* upper layer's visibility hook, or NULL */
	void	   *visible_arg;
	uint64_t	now_ms;			/* clock for TTL, read at most once per call
								 * (0: not yet) */

	nokv_error	err;
	nokv_buf	scratch;
};

static bool
covered(const nokv_iter *di, const char *lkey, size_t lkey_len, uint64_t version)
{
	for (int i = 0; i < di->ntombs; i++)
	{
		const nokv_range_tombstone *t = &di->tombs[i];

		if (t->version <= di->rv &&
			nokv_tombstone_covers(t, di->cf, lkey + 1, lkey_len - 1, version))
			return true;
	}
	return false;
}

/*
 * Can tombstone t, of the iterator's column family, delete a key within
 * the bounds [lower, upper)?  The bounds are lookup keys: the cf byte,
 * then the user key; an upper bound that is the next cf's byte alone
 * admits every key of this one.  Every step checks each tombstone kept,
 * so those of other tables (a TRUNCATE or DROP leaves one until
 * compaction removes it) are left out.
 */
static bool
tombstone_in_bounds(const nokv_iter *di, const nokv_range_tombstone *t)
{
	if (nokv_lkey_compare(t->end, t->end_len, di->lower.data + 1, di->lower.len - 1) <= 0)
		return false;
	if (di->upper.data[0] != (char) di->cf)
		return true;
	return nokv_lkey_compare(t->start, t->start_len, di->upper.data + 1, di->upper.len - 1) < 0;
}

static void
add_tombstones(nokv_iter *di, nokv_range_tombstone *ts, int n)
{
	if (!ts)
		return;
	di->tomb_blocks = nokv_realloc(di->tomb_blocks, (di->nblocks + 1) * sizeof(void *));
	di->tomb_blocks[di->nblocks++] = ts;
	for (int i = 0; i < n; i++)
	{
		if (ts[i].cf != di->cf || !tombstone_in_bounds(di, &ts[i]))
			continue;
		di->tombs = nokv_realloc(di->tombs, (di->ntombs + 1) * sizeof(nokv_range_tombstone));
		di->tombs[di->ntombs++] = ts[i];
	}
}

static bool
set_error(nokv_iter *di, const nokv_error *e)
{
	if (e && e->code != NOKV_OK && di->err.code == NOKV_OK)
		di->err = *e;
	di->valid = false;
	return false;
}

/* parse the internal iterator's current key, reporting malformed keys */
static bool
current(nokv_iter *di, nokv_ikey_view *kv)
{
	size_t		n;
	const char *k = nokv_iiter_key(di->it, &n);

	if (!nokv_ikey_parse(k, n, kv))
	{
		nokv_error	e;

		nokv_error_set(&e, NOKV_CORRUPTION, "malformed internal key of %zu bytes", n);
		return set_error(di, &e);
	}
	return true;
}

static bool
internal_ok(nokv_iter *di)
{
	if (nokv_iiter_valid(di->it))
		return true;
	{
		nokv_error	e = {0};

		if (nokv_iiter_status(di->it, &e) != NOKV_OK)
			set_error(di, &e);
	}
	return false;
}

static void
seek_internal(nokv_iter *di, const char *lkey, size_t lkey_len, uint64_t version, int kind)
{
	nokv_buf   *s = &di->scratch;

	nokv_buf_reset(s);
	nokv_buf_reserve(s, lkey_len + NOKV_IKEY_TRAILER);
	memcpy(s->data, lkey, lkey_len);
	nokv_put_be64(s->data + lkey_len, ~version);
	s->data[lkey_len + 8] = (char) kind;
	s->len = lkey_len + NOKV_IKEY_TRAILER;
	nokv_iiter_seek(di->it, s->data, s->len);
}

static bool
decode_value(nokv_iter *di, const char *v, size_t vlen, nokv_value_view *vv)
{
	if (nokv_value_decode(v, vlen, vv))
		return true;
	{
		nokv_error	e;

		nokv_error_set(&e, NOKV_CORRUPTION, "malformed value record of %zu bytes", vlen);
		set_error(di, &e);
	}
	return false;
}

/* has vv expired?  The clock is read only for values with a TTL */
static inline bool
expired(nokv_iter *di, const nokv_value_view *vv)
{
	if (vv->expires_at_ms == 0)
		return false;
	if (di->now_ms == 0)
		di->now_ms = nokv_now_ms(di->db);
	return nokv_value_expired(vv, di->now_ms);
}

/*
 * Replace a value-log pointer in vv by the value it names (read into
 * di->big); plain values are left as they are.
 */
static bool
resolve(nokv_iter *di, const nokv_ikey_view *kv, nokv_value_view *vv)
{
	/* an error holds a 512-byte message: not cleared for every plain value */
	nokv_error	e;

	if (!(vv->flags & NOKV_VF_VPTR))
		return true;
	e.code = NOKV_OK;
	e.msg[0] = '\0';
	if (nokv_resolve_value(di->db, kv->cf, kv->ukey, kv->ukey_len, kv->version, vv, &di->big, &e) != NOKV_OK)
		return set_error(di, &e);
	vv->payload = di->big.data ? di->big.data : "";
	vv->payload_len = di->big.len;
	return true;
}

/* does p point into one of the memtables of the iterator's view? */
static bool
in_view_memtable(nokv_iter *di, const char *p)
{
	for (int i = 0; i < di->view.nmem; i++)
	{
		nokv_off	mt = di->db->hdr->slots[di->view.mem_slot[i]].mt;
		const char *start = nokv_ptr(&di->db->ctx, mt);

		if (p >= start &&
			p < start + nokv_memtable_header_size() + nokv_memtable_arena_size(&di->db->ctx, mt))
			return true;
	}
	return false;
}

static void
find_next_user_entry(nokv_iter *di, bool skipping)
{
	while (internal_ok(di))
	{
		nokv_ikey_view kv;

		if (!current(di, &kv))
			return;
		if (nokv_lkey_compare(kv.lkey, kv.lkey_len, di->upper.data, di->upper.len) >= 0)
			break;
		if (kv.version <= di->rv)
		{
			bool		hidden = skipping &&
				nokv_lkey_compare(kv.lkey, kv.lkey_len, di->saved_key.data, di->saved_key.len) <= 0;

			if (!hidden)
			{
				size_t		vlen;
				const char *v = nokv_iiter_value(di->it, &vlen);
				nokv_value_view vv;
				bool		deleted = kv.kind == NOKV_KIND_DELETE ||
					(di->ntombs > 0 && covered(di, kv.lkey, kv.lkey_len, kv.version));

				bool		invisible = false;

				if (!deleted && kv.kind == NOKV_KIND_PUT)
				{
					if (!decode_value(di, v, vlen, &vv))
						return;
					if (!resolve(di, &kv, &vv))
						return;
					/* invisible to this reader: an older version may be visible */
					invisible = di->visible &&
						!di->visible(di->visible_arg, kv.cf, kv.ukey, kv.ukey_len, kv.version,
									 vv.payload, vv.payload_len);
					/* an expired put deletes the key for every reader that sees it */
					deleted = !invisible && expired(di, &vv);
				}
				if (deleted)
				{
					nokv_buf_reset(&di->saved_key);
					nokv_buf_append(&di->saved_key, kv.lkey, kv.lkey_len);
					skipping = true;
				}
				else if (invisible)
				{
				}
				else if (kv.kind == NOKV_KIND_PUT)
				{
					size_t		klen;
					const char *k = nokv_iiter_key(di->it, &klen);

					nokv_buf_reset(&di->cur_ikey);
					nokv_buf_append(&di->cur_ikey, k, klen);
					nokv_buf_reset(&di->cur_key);
					nokv_buf_append(&di->cur_key, kv.lkey, kv.lkey_len);
					di->cur_vdata = vv.payload;
					di->cur_vlen = vv.payload_len;
					if (in_view_memtable(di, vv.payload))
					{
						nokv_buf_reset(&di->cur_copy);
						nokv_buf_append(&di->cur_copy, vv.payload, vv.payload_len);
						di->cur_vdata = di->cur_copy.data;
					}
					di->cur_version = kv.version;
					di->cur_expires = vv.expires_at_ms;
					di->advanced = false;
					di->valid = true;
					return;
				}
			}
		}
		nokv_iiter_next(di->it);
	}
	di->valid = false;
}

static void
find_prev_user_entry(nokv_iter *di)
{
	int			kind = NOKV_KIND_DELETE;

	while (internal_ok(di))
	{
		nokv_ikey_view kv;

		if (!current(di, &kv))
			return;
		if (kv.version <= di->rv)
		{
			if (kind != NOKV_KIND_DELETE &&
				nokv_lkey_compare(kv.lkey, kv.lkey_len, di->saved_key.data, di->saved_key.len) < 0)
				break;			/* found the newest visible version of saved_key */
			if (kind == NOKV_KIND_DELETE &&
				nokv_lkey_compare(kv.lkey, kv.lkey_len, di->lower.data, di->lower.len) < 0)
				break;			/* below the range and nothing pending */
			{
				int			k = kv.kind;
				size_t		vlen;
				const char *v = nokv_iiter_value(di->it, &vlen);
				nokv_value_view vv;
				bool		skip = false;

				if (k == NOKV_KIND_PUT && covered(di, kv.lkey, kv.lkey_len, kv.version))
					k = NOKV_KIND_DELETE;
				if (k == NOKV_KIND_PUT)
				{
					if (!decode_value(di, v, vlen, &vv))
						return;
					if (!resolve(di, &kv, &vv))
						return;
					if (di->visible &&
						!di->visible(di->visible_arg, kv.cf, kv.ukey, kv.ukey_len, kv.version,
									 vv.payload, vv.payload_len))
						skip = true;	/* as if this version did not exist */
					else if (expired(di, &vv))
						k = NOKV_KIND_DELETE;
				}
				if (!skip)
				{
					kind = k;
					if (kind != NOKV_KIND_PUT)
					{
						kind = NOKV_KIND_DELETE;
						nokv_buf_reset(&di->saved_key);
						nokv_buf_reset(&di->saved_value);
					}
					else
					{
						nokv_buf_reset(&di->saved_key);
						nokv_buf_append(&di->saved_key, kv.lkey, kv.lkey_len);
						nokv_buf_reset(&di->saved_value);
						nokv_buf_append(&di->saved_value, vv.payload, vv.payload_len);
						di->saved_version = kv.version;
						di->saved_expires = vv.expires_at_ms;
					}
				}
			}
		}
		nokv_iiter_prev(di->it);
	}
	if (di->err.code != NOKV_OK || kind == NOKV_KIND_DELETE ||
		nokv_lkey_compare(di->saved_key.data, di->saved_key.len, di->lower.data, di->lower.len) < 0)
	{
		di->valid = false;
		di->forward = true;
		return;
	}
	nokv_buf_reset(&di->cur_key);
	nokv_buf_append(&di->cur_key, di->saved_key.data, di->saved_key.len);
	di->cur_vdata = di->saved_value.data;
	di->cur_vlen = di->saved_value.len;
	di->cur_version = di->saved_version;
	di->cur_expires = di->saved_expires;
	di->valid = true;
}

/*
 * Can a source whose lookup keys lie in [lo, hi] (inclusive) hold anything
 * within the iterator's bounds [lower, upper)?
 */
static bool
overlaps_bounds(nokv_iter *di, const char *lo, size_t lo_len, const char *hi, size_t hi_len)
{
	return nokv_lkey_compare(hi, hi_len, di->lower.data, di->lower.len) >= 0 &&
		nokv_lkey_compare(lo, lo_len, di->upper.data, di->upper.len) < 0;
}

static bool
file_overlaps_bounds(nokv_iter *di, const nokv_file_meta *f)
{
	return overlaps_bounds(di, nokv_file_smallest(di->db, f), f->smallest_len - NOKV_IKEY_TRAILER,
						   nokv_file_largest(di->db, f), f->largest_len - NOKV_IKEY_TRAILER);
}

/*
 * A memtable iterator, or NULL when none of its point entries is in
 * bounds.  (Keys point into the memtable's arena, which the view pins.)
 */
static nokv_iiter *
memtable_child(nokv_iter *di, nokv_off mt)
{
	nokv_iiter *it = nokv_memtable_iter_new(&di->db->ctx, mt);
	const char *first,
			   *last;
	size_t		first_len,
				last_len;

	nokv_iiter_seek_to_first(it);
	if (nokv_iiter_valid(it))
	{
		first = nokv_iiter_key(it, &first_len);
		nokv_iiter_seek_to_last(it);
		if (nokv_iiter_valid(it))
		{
			last = nokv_iiter_key(it, &last_len);
			if (overlaps_bounds(di, first, first_len - NOKV_IKEY_TRAILER,
								last, last_len - NOKV_IKEY_TRAILER))
				return it;
		}
	}
	nokv_iiter_destroy(it);
	return NULL;
}

/*
 * Merge every source of a fresh view into di->it and gather tombstones.
 * Sources whose keys all lie outside the iterator's bounds are left out
 * (their range tombstones, which may reach into the bounds, are kept): a
 * bounded iterator costs what the sources it can see cost.  Memtables left
 * out leave the view as well, so the iterator does not hold them back from
 * recycling and, when none is left, each call re-pins nothing.
 */
static void
iter_build(nokv_iter *di)
{
	nokv_db    *db = di->db;
	nokv_iiter **children;
	int			n = 0;
	nokv_version *v;

	nokv_view_acquire(db, &di->view);
	v = di->view.version;
	children = nokv_calloc(di->view.nmem + v->nfiles[0] + NOKV_MAX_LEVELS, sizeof(nokv_iiter *));
	for (int i = 0; i < di->view.nmem;)
	{
		nokv_off	mt = db->hdr->slots[di->view.mem_slot[i]].mt;
		nokv_range_tombstone *ts = NULL;
		int			nts = 0;

		nokv_iiter *child = memtable_child(di, mt);

		/* tombstones are copied out: they need no pin */
		if (nokv_memtable_tombstones(&db->ctx, mt) > 0 &&
			nokv_memtable_range_tombstones(&db->ctx, mt, &ts, &nts) == NOKV_OK)
			add_tombstones(di, ts, nts);
		if (child != NULL)
		{
			children[n++] = child;
			i++;
		}
		else
			nokv_view_drop_memtable(db, &di->view, i);
	}
	for (int level = 0; level < db->hdr->opts.num_levels && di->err.code == NOKV_OK; level++)
		for (int i = 0; i < v->nfiles[level]; i++)
		{
			nokv_file_meta *f = nokv_version_file(db, v, level, level == 0 ? v->nfiles[0] - 1 - i : i);
			nokv_sst_reader *r;

			/* the bounds of a file include its range tombstones */
			if (!file_overlaps_bounds(di, f))
				continue;
			if (level == 0)
			{
				if (nokv_table_get(db, f, &r, &di->err) != NOKV_OK)
					break;
				children[n++] = nokv_sst_iter_new(r);
			}
			if (f->range_deletions)
			{
				nokv_range_tombstone *ts = NULL;
				int			nts = 0;

				if (nokv_table_get(db, f, &r, &di->err) != NOKV_OK ||
					nokv_sst_range_tombstones(r, &ts, &nts, &di->err) != NOKV_OK)
					break;
				add_tombstones(di, ts, nts);
			}
		}
	for (int level = 1; level < db->hdr->opts.num_levels; level++)
	{
		int			nf = v->nfiles[level];

		/* files of a level are sorted and disjoint: check the level's span */
		if (nf > 0 &&
			overlaps_bounds(di,
							nokv_file_smallest(db, nokv_version_file(db, v, level, 0)),
							nokv_version_file(db, v, level, 0)->smallest_len - NOKV_IKEY_TRAILER,
							nokv_file_largest(db, nokv_version_file(db, v, level, nf - 1)),
							nokv_version_file(db, v, level, nf - 1)->largest_len - NOKV_IKEY_TRAILER))
			children[n++] = nokv_level_iter_new(db, v, level);
	}
	di->it = nokv_merge_iter_new(children, n);
	free(children);
}

static void
iter_teardown(nokv_iter *di)
{
	nokv_iiter_destroy(di->it);
	di->it = NULL;
	if (di->view.version)
		nokv_view_release(di->db, &di->view);
	for (int i = 0; i < di->nblocks; i++)
		free(di->tomb_blocks[i]);
	free(di->tomb_blocks);
	free(di->tombs);
	di->tomb_blocks = NULL;
	di->nblocks = 0;
	di->tombs = NULL;
	di->ntombs = 0;
}

/*
 * Start of every call: re-pin the memtables, or, if one was recycled, take
 * a fresh view and put the internal iterator back where the caller left
 * it.  Returns false if the iterator is unusable.
 */
static bool
op_begin(nokv_iter *di)
{
	if (di->err.code != NOKV_OK || !di->view.version)
		return false;
	di->now_ms = 0;
	if (nokv_view_repin(di->db, &di->view))
		return true;
	iter_teardown(di);
	iter_build(di);
	if (di->err.code != NOKV_OK)
	{
		di->valid = false;
		return false;
	}
	if (!di->valid)
		return true;			/* callers that need a position seek anyway */
	if (di->forward)
	{
		size_t		n;

		nokv_iiter_seek(di->it, di->cur_ikey.data, di->cur_ikey.len);
		/* the entry itself may be gone (compaction filter): then we are past it */
		di->advanced = !nokv_iiter_valid(di->it) ||
			nokv_ikey_compare(nokv_iiter_key(di->it, &n), n,
							  di->cur_ikey.data, di->cur_ikey.len) != 0;
	}
	else
	{
		/* back to "just before the current key's entries" */
		seek_internal(di, di->cur_key.data, di->cur_key.len, NOKV_VERSION_MAX, NOKV_KIND_SEEK);
		if (nokv_iiter_valid(di->it))
			nokv_iiter_prev(di->it);
		else if (nokv_iiter_status(di->it, NULL) == NOKV_OK)
			nokv_iiter_seek_to_last(di->it);
	}
	return true;
}

static void
op_end(nokv_iter *di)
{
	if (di->view.version)
		nokv_view_unpin(di->db, &di->view);
}

nokv_iter *
nokv_iter_new(nokv_db *db, const nokv_read_options *ro, int cf)
{
	nokv_iter  *di = nokv_calloc(1, sizeof(*di));
	char		c = (char) cf;

	di->db = db;
	di->cf = cf;
	di->forward = true;
	if (ro)
	{
		di->visible = ro->visible;
		di->visible_arg = ro->visible_arg;
	}
	if (cf < 0 || cf >= NOKV_CF_COUNT)
	{
		nokv_error_set(&di->err, NOKV_INVALID_ARGUMENT, "unknown column family %d", cf);
		return di;
	}
	if (ro && ro->snapshot)
		di->rv = nokv_snapshot_version(ro->snapshot);
	else if (ro && ro->version)
		di->rv = ro->version;
	else
	{
		/* pin what this iterator can see against compaction GC */
		di->own_snap = nokv_snapshot_acquire(db, &di->err);
		if (!di->own_snap)
			return di;
		di->rv = nokv_snapshot_version(di->own_snap);
	}

	nokv_buf_append(&di->lower, &c, 1);
	if (ro && ro->lower_bound)
		nokv_buf_append(&di->lower, ro->lower_bound, ro->lower_len);
	if (ro && ro->upper_bound)
	{
		nokv_buf_append(&di->upper, &c, 1);
		nokv_buf_append(&di->upper, ro->upper_bound, ro->upper_len);
	}
	else
	{
		char		next = (char) (cf + 1);

		nokv_buf_append(&di->upper, &next, 1);
	}
	iter_build(di);
	op_end(di);
	return di;
}

void
nokv_iter_free(nokv_iter *di)
{
	if (!di)
		return;
	iter_teardown(di);
	if (di->own_snap)
		nokv_snapshot_release(di->db, di->own_snap);
	nokv_buf_free(&di->lower);
	nokv_buf_free(&di->upper);
	nokv_buf_free(&di->saved_key);
	nokv_buf_free(&di->saved_value);
	nokv_buf_free(&di->cur_ikey);
	nokv_buf_free(&di->cur_key);
	nokv_buf_free(&di->cur_copy);
	nokv_buf_free(&di->scratch);
	nokv_buf_free(&di->big);
	free(di);
}

void
nokv_iter_seek_to_first(nokv_iter *di)
{
	di->valid = false;
	if (!op_begin(di))
		return;
	di->forward = true;
	nokv_buf_reset(&di->saved_key);
	seek_internal(di, di->lower.data, di->lower.len, NOKV_VERSION_MAX, NOKV_KIND_SEEK);
	find_next_user_entry(di, false);
	op_end(di);
}

void
nokv_iter_seek(nokv_iter *di, const void *key, size_t klen)
{
	nokv_buf	lk = {0};
	char		c = (char) di->cf;

	di->valid = false;
	if (!op_begin(di))
		return;
	nokv_buf_append(&lk, &c, 1);
	nokv_buf_append(&lk, key, klen);
	if (nokv_lkey_compare(lk.data, lk.len, di->lower.data, di->lower.len) < 0)
	{
		nokv_buf_reset(&lk);
		nokv_buf_append(&lk, di->lower.data, di->lower.len);
	}
	di->forward = true;
	nokv_buf_reset(&di->saved_key);
	seek_internal(di, lk.data, lk.len, di->rv, NOKV_KIND_SEEK);
	nokv_buf_free(&lk);
	find_next_user_entry(di, false);
	op_end(di);
}

/* position the internal iterator on the last entry at or before lkey's entries */
static void
seek_last_at_or_before(nokv_iter *di, const char *lkey, size_t lkey_len, bool inclusive)
{
	/* version 0 / kind 0xff sorts after every real version of lkey */
	if (inclusive)
		seek_internal(di, lkey, lkey_len, 0, 0xff);
	else
		seek_internal(di, lkey, lkey_len, NOKV_VERSION_MAX, NOKV_KIND_SEEK);
	if (nokv_iiter_valid(di->it))
		nokv_iiter_prev(di->it);
	else if (nokv_iiter_status(di->it, NULL) == NOKV_OK)
		nokv_iiter_seek_to_last(di->it);
}

void
nokv_iter_seek_to_last(nokv_iter *di)
{
	di->valid = false;
	if (!op_begin(di))
		return;
	di->forward = false;
	nokv_buf_reset(&di->saved_key);
	seek_last_at_or_before(di, di->upper.data, di->upper.len, false);
	find_prev_user_entry(di);
	op_end(di);
}

void
nokv_iter_seek_for_prev(nokv_iter *di, const void *key, size_t klen)
{
	nokv_buf	lk = {0};
	char		c = (char) di->cf;

	di->valid = false;
	if (!op_begin(di))
		return;
	nokv_buf_append(&lk, &c, 1);
	nokv_buf_append(&lk, key, klen);
	di->forward = false;
	nokv_buf_reset(&di->saved_key);
	if (nokv_lkey_compare(lk.data, lk.len, di->upper.data, di->upper.len) >= 0)
		seek_last_at_or_before(di, di->upper.data, di->upper.len, false);
	else
		seek_last_at_or_before(di, lk.data, lk.len, true);
	nokv_buf_free(&lk);
	find_prev_user_entry(di);
	op_end(di);
}

void
nokv_iter_next(nokv_iter *di)
{
	if (!di->valid)
		return;
	if (!op_begin(di))
	{
		di->valid = false;
		return;
	}
	if (!di->forward)
	{
		/* the internal iterator sits before this key's entries */
		di->forward = true;
		if (nokv_iiter_valid(di->it))
			nokv_iiter_next(di->it);
		else
			seek_internal(di, di->lower.data, di->lower.len, NOKV_VERSION_MAX, NOKV_KIND_SEEK);
	}
	else if (!di->advanced)
		nokv_iiter_next(di->it);
	/*
	 * The key just returned is the one to skip.  Take its buffer instead of
	 * copying it: cur_key is rewritten before it is read again, as the
	 * iterator is valid only once find_next_user_entry has set it.
	 */
	{
		nokv_buf	skip = di->cur_key;

		di->cur_key = di->saved_key;
		di->saved_key = skip;
	}
	find_next_user_entry(di, true);
	op_end(di);
}

void
nokv_iter_prev(nokv_iter *di)
{
	if (!di->valid)
		return;
	if (!op_begin(di))
	{
		di->valid = false;
		return;
	}
	if (di->forward)
	{
		/* back up to before the current key's entries, then scan backwards */
		seek_internal(di, di->cur_key.data, di->cur_key.len, NOKV_VERSION_MAX, NOKV_KIND_SEEK);
		if (nokv_iiter_valid(di->it))
			nokv_iiter_prev(di->it);
		else if (internal_ok(di) || di->err.code == NOKV_OK)
			nokv_iiter_seek_to_last(di->it);
		di->forward = false;
	}
	nokv_buf_reset(&di->saved_key);
	nokv_buf_append(&di->saved_key, di->cur_key.data, di->cur_key.len);
	find_prev_user_entry(di);
	op_end(di);
}

bool
nokv_iter_valid(const nokv_iter *di)
{
	return di->valid;
}

const char *
nokv_iter_key(const nokv_iter *di, size_t *klen)
{
	if (!di->valid)
	{
		*klen = 0;
		return NULL;
	}
	*klen = di->cur_key.len - 1;
	return di->cur_key.data + 1;
}

const char *
nokv_iter_value(const nokv_iter *di, size_t *vlen)
{
	if (!di->valid)
	{
		*vlen = 0;
		return NULL;
	}
	*vlen = di->cur_vlen;
	return di->cur_vdata ? di->cur_vdata : "";
}

uint64_t
nokv_iter_version(const nokv_iter *di)
{
	return di->valid ? di->cur_version : 0;
}

uint64_t
nokv_iter_expires_at(const nokv_iter *di)
{
	return di->valid ? di->cur_expires : 0;
}

int
nokv_iter_status(const nokv_iter *di, nokv_error *err)
{
	if (di->err.code != NOKV_OK)
	{
		if (err)
			*err = di->err;
		return di->err.code;
	}
	if (!di->it)
		return NOKV_OK;
	return nokv_iiter_status(di->it, err);
}
