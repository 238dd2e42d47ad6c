/*-------------------------------------------------------------------------
 *
 * version.c
 *	  Shared versions, the file table, manifest application, table cache.
 *
 * A version is an immutable list of SST files per level, allocated in the
 * shared heap and reference-counted.  Readers in any process pin the
 * current version (and the memtables) as a "view"; flush and compaction
 * build a new version from the current one plus a version edit, make the
 * edit durable in the manifest first, and only then install it.  A file is
 * deleted from disk when the last version listing it is released, so a
 * reader never loses a file it is reading, whichever process it runs in.
 *
 * File metadata lives in a fixed table in the region (one slot per live
 * file); boundary keys are copied into the shared heap.
 *
 * src/engine/version.c
 *-------------------------------------------------------------------------
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nokv/db_impl.h"
#include "nokv/file.h"
#include "nokv/status.h"
#include "nokv/vlog.h"

/* ---------- file table ---------- */

static int
file_slot_alloc(nokv_db *db, uint32_t *idx)
{
	nokv_region_hdr *hdr = db->hdr;
	int			rc = NOKV_OK;

	nokv_lock(&db->platform, NOKV_LOCK_FILES, true);
	if (hdr->file_free_head == 0)
		rc = NOKV_NO_SPACE;
	else
	{
		*idx = hdr->file_free_head - 1;
		hdr->file_free_head = nokv_file_slot(db, *idx)->next_free;
		hdr->live_files++;
	}
	nokv_unlock(&db->platform, NOKV_LOCK_FILES);
	return rc;
}

static void
file_slot_free(nokv_db *db, uint32_t idx)
{
	nokv_file_meta *f = nokv_file_slot(db, idx);

	nokv_heap_free(&db->ctx, f->smallest);
	nokv_heap_free(&db->ctx, f->largest);
	nokv_lock(&db->platform, NOKV_LOCK_FILES, true);
	memset(f, 0, sizeof(*f));
	f->next_free = db->hdr->file_free_head;
	db->hdr->file_free_head = idx + 1;
	db->hdr->live_files--;
	nokv_unlock(&db->platform, NOKV_LOCK_FILES);
}

void
nokv_file_table_format(nokv_db *db)
{
	int			n = db->hdr->opts.max_files;

	memset(nokv_ptr(&db->ctx, db->hdr->files), 0, sizeof(nokv_file_meta) * n);
	for (int i = n - 1; i >= 0; i--)
	{
		nokv_file_slot(db, i)->next_free = db->hdr->file_free_head;
		db->hdr->file_free_head = i + 1;
	}
	db->hdr->live_files = 0;
}

static nokv_off
heap_copy(nokv_db *db, const char *p, size_t n)
{
	nokv_off	off = nokv_heap_alloc(&db->ctx, n ? n : 1);

	if (off && n)
		memcpy(nokv_ptr(&db->ctx, off), p, n);
	return off;
}

/* create a file-table slot for a file described by the manifest */
static int
file_slot_create(nokv_db *db, const nokv_file_desc *d, uint32_t *idx, nokv_error *err)
{
	nokv_file_meta *f;
	nokv_off	smallest = heap_copy(db, d->smallest, d->smallest_len);
	nokv_off	largest = heap_copy(db, d->largest, d->largest_len);

	if (!smallest || !largest)
	{
		nokv_heap_free(&db->ctx, smallest);
		nokv_heap_free(&db->ctx, largest);
		return nokv_error_set(err, NOKV_NO_SPACE,
							  "shared heap exhausted storing file metadata; raise meta_heap_size");
	}
	if (file_slot_alloc(db, idx) != NOKV_OK)
	{
		nokv_heap_free(&db->ctx, smallest);
		nokv_heap_free(&db->ctx, largest);
		return nokv_error_set(err, NOKV_NO_SPACE,
							  "file table is full (%d files); raise max_files",
							  db->hdr->opts.max_files);
	}
	/* fill under FILES: other processes scan the table (table-cache sweeps) */
	nokv_lock(&db->platform, NOKV_LOCK_FILES, true);
	f = nokv_file_slot(db, *idx);
	f->number = d->number;
	f->size = d->size;
	f->entries = d->entries;
	f->deletions = d->deletions;
	f->range_deletions = d->range_deletions;
	f->min_version = d->min_version;
	f->max_version = d->max_version;
	f->level = d->level;
	f->smallest = smallest;
	f->smallest_len = (uint32_t) d->smallest_len;
	f->largest = largest;
	f->largest_len = (uint32_t) d->largest_len;
	atomic_store(&f->refs, 0);
	atomic_store(&f->being_compacted, 0);
	nokv_unlock(&db->platform, NOKV_LOCK_FILES);
	return NOKV_OK;
}

/* ---------- versions ---------- */

static void
version_free(nokv_db *db, nokv_version *v)
{
	for (int level = 0; level < NOKV_MAX_LEVELS; level++)
	{
		uint32_t   *idx = nokv_ptr(&db->ctx, v->files[level]);

		for (int i = 0; i < v->nfiles[level]; i++)
		{
			nokv_file_meta *f = nokv_file_slot(db, idx[i]);

			if (atomic_fetch_sub(&f->refs, 1) == 1)
			{
				/* no version lists it any more: the file is obsolete */
				char		path[NOKV_DIR_MAX + 32];

				snprintf(path, sizeof(path), NOKV_SST_FMT, db->hdr->dir,
						 (unsigned long long) f->number);
				if (unlink(path) != 0)
					nokv_log(&db->platform, 2, "could not remove obsolete file %s", path);
				if (db->hdr->cache)
					nokv_cache_erase_file(&db->ctx, db->hdr->cache, f->number);
				file_slot_free(db, idx[i]);
			}
		}
		nokv_heap_free(&db->ctx, v->files[level]);
	}
	nokv_heap_free(&db->ctx, nokv_offset(&db->ctx, v));
}

nokv_version *
nokv_version_current(nokv_db *db)
{
	nokv_version *v;

	nokv_lock(&db->platform, NOKV_LOCK_VERSION, false);
	v = nokv_ptr(&db->ctx, db->hdr->current);
	atomic_fetch_add(&v->refs, 1);
	nokv_unlock(&db->platform, NOKV_LOCK_VERSION);
	return v;
}

void
nokv_version_ref(nokv_db *db, nokv_version *v)
{
	(void) db;
	atomic_fetch_add(&v->refs, 1);
}

void
nokv_version_unref(nokv_db *db, nokv_version *v)
{
	if (v && atomic_fetch_sub(&v->refs, 1) == 1)
		version_free(db, v);
}

typedef struct level_builder
{
	uint32_t   *idx;
	int			n;
	int			cap;
} level_builder;

static void
lb_push(level_builder *lb, uint32_t idx)
{
	if (lb->n == lb->cap)
	{
		lb->cap = lb->cap ? lb->cap * 2 : 16;
		lb->idx = nokv_realloc(lb->idx, lb->cap * sizeof(uint32_t));
	}
	lb->idx[lb->n++] = idx;
}

/* qsort context is process-local; one sort at a time per process is enough */
static __thread nokv_db *sort_db;

static int
cmp_by_number(const void *a, const void *b)
{
	const nokv_file_meta *fa = nokv_file_slot(sort_db, *(const uint32_t *) a);
	const nokv_file_meta *fb = nokv_file_slot(sort_db, *(const uint32_t *) b);

	return fa->number < fb->number ? -1 : fa->number > fb->number;
}

static int
cmp_by_smallest(const void *a, const void *b)
{
	const nokv_file_meta *fa = nokv_file_slot(sort_db, *(const uint32_t *) a);
	const nokv_file_meta *fb = nokv_file_slot(sort_db, *(const uint32_t *) b);
	int			r = nokv_ikey_compare(nokv_file_smallest(sort_db, fa), fa->smallest_len,
									  nokv_file_smallest(sort_db, fb), fb->smallest_len);

	if (r == 0)
		r = fa->number < fb->number ? -1 : fa->number > fb->number;
	return r;
}

/*
 * Build a new version from base (may be NULL) plus edit.  New file slots
 * are created for added files; files carried over get an extra reference.
 */
static int
version_build(nokv_db *db, const nokv_version *base, const nokv_version_edit *edit,
			  nokv_version **out, nokv_error *err)
{
	level_builder lb[NOKV_MAX_LEVELS];
	nokv_off	voff;
	nokv_version *v;
	int			rc = NOKV_OK;
	uint32_t   *added = NULL;

	memset(lb, 0, sizeof(lb));
	for (int level = 0; base && level < NOKV_MAX_LEVELS; level++)
	{
		const uint32_t *idx = nokv_ptr(&db->ctx, base->files[level]);

		for (int i = 0; i < base->nfiles[level]; i++)
		{
			const nokv_file_meta *f = nokv_file_slot(db, idx[i]);
			bool		deleted = false;

			for (int d = 0; d < edit->n_deleted; d++)
				if (edit->deleted[d].number == f->number && edit->deleted[d].level == level)
				{
					deleted = true;
					break;
				}
			if (!deleted)
				lb_push(&lb[level], idx[i]);
		}
	}

	added = nokv_malloc((edit->n_added + 1) * sizeof(uint32_t));
	memset(added, 0xff, (edit->n_added + 1) * sizeof(uint32_t));
	for (int a = 0; a < edit->n_added; a++)
	{
		const nokv_file_desc *d = &edit->added[a];
		uint32_t	idx;

		if (d->level < 0 || d->level >= db->hdr->opts.num_levels)
		{
			rc = nokv_error_set(err, NOKV_CORRUPTION, "file %llu added at invalid level %d",
								(unsigned long long) d->number, d->level);
			goto fail;
		}

		/*
		 * A file moved between levels (trivial move) keeps its slot: it is
		 * deleted from its old level and added at the new one in one edit.
		 */
		idx = UINT32_MAX;
		for (int level = 0; base && level < NOKV_MAX_LEVELS && idx == UINT32_MAX; level++)
		{
			const uint32_t *bidx = nokv_ptr(&db->ctx, base->files[level]);

			for (int i = 0; i < base->nfiles[level]; i++)
				if (nokv_file_slot(db, bidx[i])->number == d->number)
				{
					idx = bidx[i];
					break;
				}
		}
		if (idx == UINT32_MAX)
		{
			rc = file_slot_create(db, d, &idx, err);
			if (rc != NOKV_OK)
				goto fail;
		}
		nokv_file_slot(db, idx)->level = d->level;
		added[a] = idx;
		lb_push(&lb[d->level], idx);
	}

	voff = nokv_heap_alloc(&db->ctx, sizeof(nokv_version));
	if (!voff)
	{
		rc = nokv_error_set(err, NOKV_NO_SPACE,
							"shared heap exhausted building a version; raise meta_heap_size");
		goto fail;
	}
	v = nokv_ptr(&db->ctx, voff);
	memset(v, 0, sizeof(*v));
	atomic_store(&v->refs, 1);
	v->id = ++db->hdr->next_version_id;
	sort_db = db;
	for (int level = 0; level < NOKV_MAX_LEVELS; level++)
	{
		if (lb[level].n == 0)
			continue;
		qsort(lb[level].idx, lb[level].n, sizeof(uint32_t),
			  level == 0 ? cmp_by_number : cmp_by_smallest);
		for (int i = 1; level > 0 && i < lb[level].n; i++)
		{
			const nokv_file_meta *a = nokv_file_slot(db, lb[level].idx[i - 1]);
			const nokv_file_meta *b = nokv_file_slot(db, lb[level].idx[i]);

			if (nokv_ikey_compare(nokv_file_largest(db, a), a->largest_len,
								  nokv_file_smallest(db, b), b->smallest_len) >= 0)
			{
				nokv_heap_free(&db->ctx, voff);
				for (int l = 0; l < level; l++)
					nokv_heap_free(&db->ctx, v->files[l]);
				rc = nokv_error_set(err, NOKV_CORRUPTION,
									"files %llu and %llu overlap in level %d",
									(unsigned long long) a->number,
									(unsigned long long) b->number, level);
				goto fail;
			}
		}
		v->files[level] = heap_copy(db, (const char *) lb[level].idx,
									lb[level].n * sizeof(uint32_t));
		if (!v->files[level])
		{
			for (int l = 0; l < level; l++)
				nokv_heap_free(&db->ctx, v->files[l]);
			nokv_heap_free(&db->ctx, voff);
			rc = nokv_error_set(err, NOKV_NO_SPACE,
								"shared heap exhausted building a version; raise meta_heap_size");
			goto fail;
		}
		v->nfiles[level] = lb[level].n;
	}
	/* every file listed gains a reference from the new version */
	for (int level = 0; level < NOKV_MAX_LEVELS; level++)
		for (int i = 0; i < lb[level].n; i++)
			atomic_fetch_add(&nokv_file_slot(db, lb[level].idx[i])->refs, 1);
	for (int level = 0; level < NOKV_MAX_LEVELS; level++)
		free(lb[level].idx);
	free(added);
	*out = v;
	return NOKV_OK;

fail:
	for (int a = 0; a < edit->n_added; a++)
		if (added && added[a] != UINT32_MAX &&
			atomic_load(&nokv_file_slot(db, added[a])->refs) == 0)
			file_slot_free(db, added[a]);
	for (int level = 0; level < NOKV_MAX_LEVELS; level++)
		free(lb[level].idx);
	free(added);
	return rc;
}

/* install v as current (VERSION held exclusively), dropping the old one */
static void
version_install(nokv_db *db, nokv_version *v)
{
	nokv_version *old = nokv_ptr(&db->ctx, db->hdr->current);

	db->hdr->current = nokv_offset(&db->ctx, v);
	atomic_store(&db->hdr->l0_files, v->nfiles[0]);
	if (old)
		nokv_version_unref(db, old);
}

/* used by recovery: install the version a manifest replay describes */
int
nokv_version_install_state(nokv_db *db, const nokv_manifest_state *st, nokv_error *err)
{
	nokv_version_edit e;
	nokv_version *v;
	int			rc;

	nokv_edit_init(&e);
	for (int level = 0; level < NOKV_MAX_LEVELS; level++)
		for (int i = 0; i < st->nfiles[level]; i++)
			nokv_edit_add_file(&e, &st->files[level][i]);
	rc = version_build(db, NULL, &e, &v, err);
	nokv_edit_free(&e);
	if (rc != NOKV_OK)
		return rc;
	nokv_lock(&db->platform, NOKV_LOCK_VERSION, true);
	version_install(db, v);
	nokv_unlock(&db->platform, NOKV_LOCK_VERSION);
	return NOKV_OK;
}

/* describe a version as a manifest state (for manifest rewrites) */
static void
version_to_state(nokv_db *db, const nokv_version *v, nokv_manifest_state *st)
{
	nokv_region_hdr *hdr = db->hdr;

	nokv_manifest_state_init(st);
	st->next_file_number = atomic_load(&hdr->next_file_number);
	st->last_version = atomic_load(&hdr->last_version);
	st->log_number = hdr->log_number;
	memcpy(st->ext_position, hdr->ext_flushed, sizeof(st->ext_position));
	for (int level = 0; level < NOKV_MAX_LEVELS; level++)
	{
		st->nfiles[level] = v->nfiles[level];
		st->capfiles[level] = v->nfiles[level];
		st->files[level] = v->nfiles[level]
			? nokv_calloc(v->nfiles[level], sizeof(nokv_file_desc)) : NULL;
		for (int i = 0; i < v->nfiles[level]; i++)
		{
			const nokv_file_meta *f = nokv_version_file(db, v, level, i);
			nokv_file_desc *d = &st->files[level][i];

			d->level = level;
			d->number = f->number;
			d->size = f->size;
			d->entries = f->entries;
			d->deletions = f->deletions;
			d->range_deletions = f->range_deletions;
			d->min_version = f->min_version;
			d->max_version = f->max_version;
			d->smallest = nokv_memdup(nokv_file_smallest(db, f), f->smallest_len);
			d->smallest_len = f->smallest_len;
			d->largest = nokv_memdup(nokv_file_largest(db, f), f->largest_len);
			d->largest_len = f->largest_len;
		}
	}
}

/* MANIFEST held: make sure this process's writer appends at the live end */
static int
manifest_writer_ready(nokv_db *db, nokv_error *err)
{
	nokv_region_hdr *hdr = db->hdr;

	if (db->manifest &&
		nokv_manifest_writer_number(db->manifest) == hdr->manifest_number &&
		nokv_manifest_writer_size(db->manifest) == hdr->manifest_size)
		return NOKV_OK;
	if (db->manifest)
		nokv_manifest_writer_close(db->manifest);
	db->manifest = NULL;
	return nokv_manifest_writer_open(hdr->dir, hdr->manifest_number, hdr->manifest_size,
									 &db->manifest, err);
}

/* MANIFEST held: write a fresh manifest holding the whole state */
static int
manifest_rewrite(nokv_db *db, nokv_error *err)
{
	nokv_region_hdr *hdr = db->hdr;
	nokv_manifest_state st;
	nokv_manifest_writer *w = NULL;
	nokv_version *v = nokv_version_current(db);
	uint64_t	old = hdr->manifest_number;
	uint64_t	number = nokv_new_file_number(db);
	int			rc;

	version_to_state(db, v, &st);
	nokv_version_unref(db, v);
	if (db->vlog)
		nokv_vlog_fill_state(db->vlog, &st);
	st.next_file_number = atomic_load(&hdr->next_file_number);
	rc = nokv_manifest_create(hdr->dir, number, &st, &w, err);
	nokv_manifest_state_free(&st);
	if (rc != NOKV_OK)
		return rc;
	if (db->manifest)
		nokv_manifest_writer_close(db->manifest);
	db->manifest = w;
	hdr->manifest_number = number;
	hdr->manifest_size = nokv_manifest_writer_size(w);
	if (old)
	{
		char		path[NOKV_DIR_MAX + 32];

		snprintf(path, sizeof(path), NOKV_MANIFEST_FMT, hdr->dir, (unsigned long long) old);
		unlink(path);
	}
	return NOKV_OK;
}

int
nokv_manifest_start(nokv_db *db, const nokv_manifest_state *recovered, nokv_error *err)
{
	nokv_region_hdr *hdr = db->hdr;
	int			rc;

	nokv_lock(&db->platform, NOKV_LOCK_MANIFEST, true);
	if (recovered && recovered->manifest_number && !recovered->torn_tail &&
		recovered->manifest_size < hdr->opts.manifest_rewrite_size)
	{
		hdr->manifest_number = recovered->manifest_number;
		hdr->manifest_size = recovered->manifest_size;
		rc = manifest_writer_ready(db, err);
	}
	else
	{
		/* new database, torn tail or an oversized log: start a fresh manifest */
		hdr->manifest_number = recovered ? recovered->manifest_number : 0;
		rc = manifest_rewrite(db, err);
	}
	nokv_unlock(&db->platform, NOKV_LOCK_MANIFEST);
	return rc;
}

int
nokv_log_and_apply(nokv_db *db, nokv_version_edit *edit, nokv_error *err)
{
	nokv_region_hdr *hdr = db->hdr;
	nokv_version *base;
	nokv_version *v;
	int			rc;

	nokv_lock(&db->platform, NOKV_LOCK_MANIFEST, true);
	if (!edit->has_next_file_number)
	{
		edit->has_next_file_number = true;
		edit->next_file_number = atomic_load(&hdr->next_file_number);
	}
	if (!edit->has_last_version)
	{
		edit->has_last_version = true;
		edit->last_version = atomic_load(&hdr->last_version);
	}
	if (!edit->has_log_number)
	{
		edit->has_log_number = true;
		edit->log_number = hdr->log_number;
	}

	/*
	 * Build the new version first: an edit the in-memory state cannot take
	 * (overlapping files, heap exhausted) must never become durable.
	 */
	base = nokv_version_current(db);
	rc = version_build(db, base, edit, &v, err);
	nokv_version_unref(db, base);
	if (rc != NOKV_OK)
	{
		nokv_unlock(&db->platform, NOKV_LOCK_MANIFEST);
		return rc;
	}

	rc = manifest_writer_ready(db, err);
	if (rc == NOKV_OK)
		rc = nokv_manifest_append(db->manifest, edit, err);
	if (rc != NOKV_OK)
	{
		/* the writer may be in an unknown state: reopen next time */
		if (db->manifest)
			nokv_manifest_writer_close(db->manifest);
		db->manifest = NULL;
		nokv_unlock(&db->platform, NOKV_LOCK_MANIFEST);
		nokv_version_unref(db, v);
		return rc;
	}
	hdr->manifest_size = nokv_manifest_writer_size(db->manifest);
	/* the value log learns what is durable: sizes, head, discard, deletions */
	if (db->vlog)
		nokv_vlog_edit_committed(db->vlog, edit);
	hdr->log_number = edit->log_number;
	for (int i = 0; i < edit->n_ext; i++)
		if (edit->ext[i].log_id < NOKV_MAX_EXTERNAL_LOGS &&
			edit->ext[i].position > hdr->ext_flushed[edit->ext[i].log_id])
			hdr->ext_flushed[edit->ext[i].log_id] = edit->ext[i].position;

	nokv_lock(&db->platform, NOKV_LOCK_VERSION, true);
	version_install(db, v);
	nokv_unlock(&db->platform, NOKV_LOCK_VERSION);

	if (hdr->manifest_size >= hdr->opts.manifest_rewrite_size)
	{
		nokv_error	rerr;

		if (manifest_rewrite(db, &rerr) != NOKV_OK)
			nokv_log(&db->platform, 2, "manifest rewrite failed (will retry): %s", rerr.msg);
	}
	nokv_unlock(&db->platform, NOKV_LOCK_MANIFEST);
	return NOKV_OK;
}

uint64_t
nokv_new_file_number(nokv_db *db)
{
	return atomic_fetch_add(&db->hdr->next_file_number, 1);
}

uint64_t
nokv_safe_point(nokv_db *db)
{
	nokv_region_hdr *hdr = db->hdr;
	_Atomic uint64_t *snaps = nokv_ptr(&db->ctx, hdr->snapshots);
	uint64_t	safe = atomic_load(&hdr->last_version);

	nokv_lock(&db->platform, NOKV_LOCK_SNAPSHOTS, false);
	for (int i = 0; i < hdr->opts.max_snapshots; i++)
	{
		uint64_t	s = atomic_load(&snaps[i]);

		if (s != 0 && s - 1 < safe)
			safe = s - 1;
	}
	nokv_unlock(&db->platform, NOKV_LOCK_SNAPSHOTS);
	return safe;
}

/* ---------- views ---------- */

void
nokv_view_acquire(nokv_db *db, nokv_view *view)
{
	nokv_region_hdr *hdr = db->hdr;

	view->nmem = 0;
	nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, false);
	for (int i = 0; i < hdr->opts.max_memtables; i++)
	{
		nokv_mt_slot *s = &hdr->slots[i];

		if (s->state == NOKV_MT_ACTIVE || s->state == NOKV_MT_IMMUTABLE ||
			s->state == NOKV_MT_FLUSHING)
		{
			atomic_fetch_add(&s->pins, 1);
			view->mem_gen[view->nmem] = s->gen;
			view->mem_slot[view->nmem++] = i;
		}
	}
	view->pinned = true;
	view->version = nokv_version_current(db);
	nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);

	/* newest first (insertion sort: at most NOKV_MAX_MEMTABLES) */
	for (int i = 1; i < view->nmem; i++)
	{
		int			x = view->mem_slot[i];
		int			j = i - 1;

		uint64_t	g = view->mem_gen[i];

		while (j >= 0 && hdr->slots[view->mem_slot[j]].seq < hdr->slots[x].seq)
		{
			view->mem_slot[j + 1] = view->mem_slot[j];
			view->mem_gen[j + 1] = view->mem_gen[j];
			j--;
		}
		view->mem_slot[j + 1] = x;
		view->mem_gen[j + 1] = g;
	}
}

void
nokv_view_unpin(nokv_db *db, nokv_view *view)
{
	bool		wake = false;

	if (!view->pinned)
		return;
	for (int i = 0; i < view->nmem; i++)
	{
		nokv_mt_slot *s = &db->hdr->slots[view->mem_slot[i]];

		if (atomic_fetch_sub(&s->pins, 1) == 1 && s->state == NOKV_MT_RETIRED)
			wake = true;
	}
	view->pinned = false;
	if (wake)
		nokv_cond_broadcast(&db->platform, NOKV_COND_STALL);
}

bool
nokv_view_repin(nokv_db *db, nokv_view *view)
{
	bool		same = true;

	if (view->pinned)
		return true;
	if (view->nmem == 0)
	{
		/* nothing to re-pin, no lock to take: the version reference stays */
		view->pinned = true;
		return true;
	}
	/* shared MEMTABLES: a slot cannot be reset between the check and the pin */
	nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, false);
	for (int i = 0; i < view->nmem && same; i++)
		same = db->hdr->slots[view->mem_slot[i]].gen == view->mem_gen[i];
	if (same)
	{
		for (int i = 0; i < view->nmem; i++)
			atomic_fetch_add(&db->hdr->slots[view->mem_slot[i]].pins, 1);
		view->pinned = true;
	}
	nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);
	return same;
}

/*
 * Drop memtable i from a pinned view: a reader that will never look at it
 * (no key of its bounds there) need not hold it back from being recycled,
 * nor pay for re-pinning it.
 */
void
nokv_view_drop_memtable(nokv_db *db, nokv_view *view, int i)
{
	nokv_mt_slot *s = &db->hdr->slots[view->mem_slot[i]];

	if (view->pinned && atomic_fetch_sub(&s->pins, 1) == 1 && s->state == NOKV_MT_RETIRED)
		nokv_cond_broadcast(&db->platform, NOKV_COND_STALL);
	for (int j = i + 1; j < view->nmem; j++)
	{
		view->mem_slot[j - 1] = view->mem_slot[j];
		view->mem_gen[j - 1] = view->mem_gen[j];
	}
	view->nmem--;
}

void
nokv_view_release(nokv_db *db, nokv_view *view)
{
	nokv_view_unpin(db, view);
	view->nmem = 0;
	nokv_version_unref(db, view->version);
	view->version = NULL;
}

/* ---------- per-process table cache ---------- */

typedef struct table_entry
{
	uint64_t	number;
	nokv_sst_reader *reader;
} table_entry;

struct nokv_table_cache
{
	pthread_mutex_t mutex;
	table_entry *entries;		/* open addressing, power-of-two capacity */
	int			cap;
	int			n;
};

nokv_table_cache *
nokv_table_cache_new(void)
{
	nokv_table_cache *tc = nokv_calloc(1, sizeof(*tc));

	pthread_mutex_init(&tc->mutex, NULL);
	tc->cap = 256;
	tc->entries = nokv_calloc(tc->cap, sizeof(table_entry));
	return tc;
}

void
nokv_table_cache_free(nokv_table_cache *tc)
{
	if (!tc)
		return;
	for (int i = 0; i < tc->cap; i++)
		if (tc->entries[i].reader)
			nokv_sst_close(tc->entries[i].reader);
	free(tc->entries);
	pthread_mutex_destroy(&tc->mutex);
	free(tc);
}

static inline uint32_t
tc_hash(uint64_t number)
{
	number ^= number >> 33;
	number *= 0xff51afd7ed558ccdULL;
	number ^= number >> 33;
	return (uint32_t) number;
}

static void
tc_insert(nokv_table_cache *tc, uint64_t number, nokv_sst_reader *r)
{
	uint32_t	mask = tc->cap - 1;
	uint32_t	i = tc_hash(number) & mask;

	while (tc->entries[i].reader)
		i = (i + 1) & mask;
	tc->entries[i].number = number;
	tc->entries[i].reader = r;
	tc->n++;
}

/*
 * Drop readers of files no version references any more.  Safe: a caller
 * using a reader holds a version that lists its file.
 */
static int
cmp_number(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a,
				y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

static void
tc_sweep(nokv_db *db, nokv_table_cache *tc)
{
	table_entry *old = tc->entries;
	int			oldcap = tc->cap;
	bool	   *live;
	int			nlive = 0;
	uint64_t   *numbers;
	int			nnumbers = 0;

	/* numbers of files some version still lists, sorted */
	numbers = nokv_malloc(sizeof(uint64_t) * (db->hdr->opts.max_files + 1));
	nokv_lock(&db->platform, NOKV_LOCK_FILES, false);
	for (int s = 0; s < db->hdr->opts.max_files; s++)
	{
		nokv_file_meta *f = nokv_file_slot(db, s);

		if (f->number != 0 && atomic_load(&f->refs) > 0)
			numbers[nnumbers++] = f->number;
	}
	nokv_unlock(&db->platform, NOKV_LOCK_FILES);
	if (nnumbers > 1)
		qsort(numbers, nnumbers, sizeof(uint64_t), cmp_number);

	live = nokv_calloc(oldcap, sizeof(bool));
	for (int i = 0; i < oldcap; i++)
	{
		if (!old[i].reader)
			continue;
		live[i] = nnumbers > 0 &&
			bsearch(&old[i].number, numbers, nnumbers, sizeof(uint64_t), cmp_number) != NULL;
		if (live[i])
			nlive++;
	}
	free(numbers);
	tc->cap = oldcap;
	while (tc->cap < nlive * 2 + 16)
		tc->cap *= 2;
	tc->entries = nokv_calloc(tc->cap, sizeof(table_entry));
	tc->n = 0;
	for (int i = 0; i < oldcap; i++)
	{
		if (!old[i].reader)
			continue;
		if (live[i])
			tc_insert(tc, old[i].number, old[i].reader);
		else
			nokv_sst_close(old[i].reader);
	}
	free(old);
	free(live);
}

int
nokv_table_get(nokv_db *db, const nokv_file_meta *f, nokv_sst_reader **r, nokv_error *err)
{
	nokv_table_cache *tc = db->tables;
	uint32_t	mask;
	uint32_t	i;
	int			rc;

	pthread_mutex_lock(&tc->mutex);
	mask = tc->cap - 1;
	for (i = tc_hash(f->number) & mask; tc->entries[i].reader; i = (i + 1) & mask)
		if (tc->entries[i].number == f->number)
		{
			*r = tc->entries[i].reader;
			pthread_mutex_unlock(&tc->mutex);
			return NOKV_OK;
		}
	rc = nokv_sst_open(&db->sst_env, db->hdr->dir, f->number, f->size, r, err);
	if (rc == NOKV_OK)
	{
		if (tc->n * 2 >= tc->cap)
		{
			tc_sweep(db, tc);
			if (tc->n * 2 >= tc->cap)
			{
				/* grow: every entry is live */
				table_entry *old = tc->entries;
				int			oldcap = tc->cap;

				tc->cap *= 2;
				tc->entries = nokv_calloc(tc->cap, sizeof(table_entry));
				tc->n = 0;
				for (int k = 0; k < oldcap; k++)
					if (old[k].reader)
						tc_insert(tc, old[k].number, old[k].reader);
				free(old);
			}
		}
		tc_insert(tc, f->number, *r);
	}
	pthread_mutex_unlock(&tc->mutex);
	return rc;
}

void
nokv_set_bg_error(nokv_db *db, const nokv_error *err)
{
	int			expected = 0;

	if (atomic_compare_exchange_strong(&db->hdr->bg_error, &expected, err ? err->code : NOKV_IO_ERROR))
	{
		snprintf(db->hdr->bg_error_msg, sizeof(db->hdr->bg_error_msg), "%s",
				 err ? err->msg : "background error");
		nokv_log(&db->platform, 3, "background error, writes are refused until reopen: %s",
				 db->hdr->bg_error_msg);
	}
	nokv_cond_broadcast(&db->platform, NOKV_COND_STALL);
}
