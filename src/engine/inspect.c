/*-------------------------------------------------------------------------
 *
 * inspect.c
 *	  Snapshots of an engine's files and memtables, live or offline.
 *
 * Both entry points fill the same inspector: a private copy of every row,
 * so callers (the PostgreSQL views, the offline CLI) can take their time
 * formatting while the engine goes on.  The live path holds the engine's
 * locks only while copying: MANIFEST shared (every manifest edit and the
 * version it installs happen under MANIFEST exclusive, so the manifest
 * figures, the current version and the value-log table are copied as one
 * consistent state), inside it VERSION and VLOG shared through
 * nokv_version_current() and nokv_vlog_fill_state(), which is the order
 * nokv_log_and_apply() takes them in.  SST properties are then read with
 * only a version reference held (the files cannot be deleted meanwhile),
 * and the memtable slots are copied under MEMTABLES shared.
 *
 * The offline path replays the manifest (nokv_manifest_recover() never
 * modifies a file), opens each listed SST read-only for its properties
 * (which also checks its size and properties block) and stat()s each
 * listed value-log segment, reading its 16-byte header.  It never opens
 * anything for writing, so it is safe on a copy, a backup or a directory
 * whose engine is stopped.
 *
 * Rows are built by the same helpers on both paths (add_sst, the level
 * and statistics rows), so identical on-disk state yields identical
 * figures.  Level targets and scores use the engine's own functions live;
 * offline they are recomputed here with the same formula
 * (offline_targets / offline_score mirror nokv_level_targets and
 * nokv_level_score in compaction.c; test_inspect compares the two).
 *
 * src/engine/inspect.c
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nokv/db_impl.h"
#include "nokv/file.h"
#include "nokv/inspect.h"
#include "nokv/status.h"
#include "nokv/vlog.h"

typedef unsigned long long ull;

struct nokv_inspector
{
	bool		live;
	nokv_manifest_info manifest;
	int			nsst;
	int			capsst;
	nokv_sst_info *sst;
	char	  **keys;			/* 2 per sst row: smallest, largest (owned) */
	int			nlevels;
	nokv_level_info levels[NOKV_MAX_LEVELS];
	int			nvseg;
	nokv_vlog_seg_info *vseg;
	int			nmem;
	nokv_memtable_info mem[NOKV_MAX_MEMTABLES];
	nokv_cf_info cf[NOKV_CF_COUNT];
};

static nokv_inspector *
inspector_new(bool live)
{
	nokv_inspector *in = nokv_calloc(1, sizeof(*in));

	in->live = live;
	in->manifest.live = live;
	for (int cf = 0; cf < NOKV_CF_COUNT; cf++)
	{
		in->cf[cf].cf = cf;
		in->cf[cf].name = nokv_cf_name(cf);
	}
	return in;
}

void
nokv_inspect_free(nokv_inspector *in)
{
	if (!in)
		return;
	for (int i = 0; i < 2 * in->nsst; i++)
		free(in->keys[i]);
	free(in->keys);
	free(in->sst);
	free(in->vseg);
	free(in);
}

/* ---------- rows ---------- */

/* decode one boundary (internal key) into user-key fields; keeps a copy */
static void
set_boundary(nokv_inspector *in, int keyslot, const char *ikey, size_t len,
			 int *cf, const char **key, size_t *key_len, uint64_t *version)
{
	nokv_ikey_view v;

	if (ikey != NULL && nokv_ikey_parse(ikey, len, &v))
	{
		in->keys[keyslot] = nokv_memdup(v.ukey, v.ukey_len ? v.ukey_len : 1);
		*cf = v.cf;
		*key = in->keys[keyslot];
		*key_len = v.ukey_len;
		*version = v.version;
	}
	else
	{
		/* the manifest decoder rejects such keys; never trust it blindly */
		in->keys[keyslot] = nokv_memdup("", 1);
		*cf = -1;
		*key = in->keys[keyslot];
		*key_len = 0;
		*version = 0;
	}
}

/*
 * Append one SST row.  props may be NULL (then the raw byte counts and the
 * column-family totals are not known for this file).
 */
static void
add_sst(nokv_inspector *in, int level, uint64_t number, uint64_t size, uint64_t entries,
		uint64_t deletions, uint64_t range_deletions, uint64_t min_version,
		uint64_t max_version, const char *smallest, size_t smallest_len,
		const char *largest, size_t largest_len, const nokv_sst_props *props)
{
	nokv_sst_info *s;

	if (in->nsst == in->capsst)
	{
		in->capsst = in->capsst ? in->capsst * 2 : 64;
		in->sst = nokv_realloc(in->sst, sizeof(nokv_sst_info) * (size_t) in->capsst);
		in->keys = nokv_realloc(in->keys, sizeof(char *) * 2 * (size_t) in->capsst);
	}
	s = &in->sst[in->nsst];
	memset(s, 0, sizeof(*s));
	s->level = level;
	s->number = number;
	s->size = size;
	s->entries = entries;
	s->deletions = deletions;
	s->range_deletions = range_deletions;
	s->min_version = min_version;
	s->max_version = max_version;
	set_boundary(in, 2 * in->nsst, smallest, smallest_len,
				 &s->smallest_cf, &s->smallest_key, &s->smallest_len, &s->smallest_version);
	set_boundary(in, 2 * in->nsst + 1, largest, largest_len,
				 &s->largest_cf, &s->largest_key, &s->largest_len, &s->largest_version);
	if (props)
	{
		s->raw_key_bytes = props->raw_key_bytes;
		s->raw_value_bytes = props->raw_value_bytes;
		for (int cf = 0; cf < NOKV_CF_COUNT; cf++)
		{
			in->cf[cf].entries += props->cf_entries[cf];
			in->cf[cf].key_bytes += props->cf_key_bytes[cf];
			in->cf[cf].value_bytes += props->cf_value_bytes[cf];
		}
	}
	in->nsst++;

	in->manifest.live_files++;
	in->manifest.live_bytes += size;
}

/* per-level sums of the SST rows; targets and scores are filled by the caller */
static void
sum_levels(nokv_inspector *in, int num_levels)
{
	in->nlevels = num_levels;
	in->manifest.num_levels = num_levels;
	for (int level = 0; level < NOKV_MAX_LEVELS; level++)
	{
		memset(&in->levels[level], 0, sizeof(nokv_level_info));
		in->levels[level].level = level;
	}
	for (int i = 0; i < in->nsst; i++)
	{
		nokv_level_info *l = &in->levels[in->sst[i].level];

		l->files++;
		l->bytes += in->sst[i].size;
		l->entries += in->sst[i].entries;
	}
}

static void
add_vseg(nokv_inspector *in, const nokv_vlog_segment_desc *d, uint64_t head,
		 uint64_t file_size)
{
	nokv_vlog_seg_info *v = &in->vseg[in->nvseg++];

	v->number = d->number;
	v->size = d->size;
	v->file_size = file_size;
	v->discard = d->discard;
	v->discard_ratio = nokv_vlog_discard_ratio(d->size, d->discard);
	v->is_head = d->number == head;
	in->manifest.vlog_segments++;
}

static void
set_ext(nokv_inspector *in, const uint64_t *positions)
{
	in->manifest.n_ext = 0;
	for (int l = 0; l < NOKV_MAX_EXTERNAL_LOGS; l++)
		if (positions[l] != 0)
		{
			in->manifest.ext[in->manifest.n_ext].log_id = (uint32_t) l;
			in->manifest.ext[in->manifest.n_ext].position = positions[l];
			in->manifest.n_ext++;
		}
}

static int
clamp_levels(int n)
{
	return n < 1 ? 1 : (n > NOKV_MAX_LEVELS ? NOKV_MAX_LEVELS : n);
}

/* ---------- live ---------- */

static const char *
mt_state_name(int state)
{
	switch (state)
	{
		case NOKV_MT_FREE:
			return "free";
		case NOKV_MT_ACTIVE:
			return "active";
		case NOKV_MT_IMMUTABLE:
			return "immutable";
		case NOKV_MT_FLUSHING:
			return "flushing";
		case NOKV_MT_RETIRED:
			return "retired";
	}
	return "unknown";
}

static void
copy_memtables(nokv_db *db, nokv_inspector *in)
{
	nokv_region_hdr *hdr = db->hdr;
	int			nslots = hdr->opts.max_memtables;

	if (nslots > NOKV_MAX_MEMTABLES)
		nslots = NOKV_MAX_MEMTABLES;
	nokv_lock(&db->platform, NOKV_LOCK_MEMTABLES, false);
	for (int i = 0; i < nslots; i++)
	{
		nokv_mt_slot *s = &hdr->slots[i];
		int			state = atomic_load(&s->state);
		nokv_memtable_info *m;

		if (state == NOKV_MT_FREE)
			continue;
		m = &in->mem[in->nmem++];
		m->slot = i;
		m->state = mt_state_name(state);
		m->seq = s->seq;
		m->bytes_used = nokv_memtable_arena_used(&db->ctx, s->mt);
		m->capacity = nokv_memtable_arena_size(&db->ctx, s->mt);
		m->entries = nokv_memtable_entries(&db->ctx, s->mt);
		m->range_tombstones = nokv_memtable_tombstones(&db->ctx, s->mt);
		m->min_version = s->min_version;
		m->max_version = s->max_version;
		m->wal_segment = hdr->wal ? s->wal_segment : 0;
		for (int l = 0; l < NOKV_MAX_EXTERNAL_LOGS; l++)
			if ((s->ext_mask & (UINT64_C(1) << l)) && s->ext_position[l] > m->log_position)
				m->log_position = s->ext_position[l];
		m->pins = atomic_load(&s->pins);
	}
	nokv_unlock(&db->platform, NOKV_LOCK_MEMTABLES);
}

int
nokv_inspect_live(nokv_db *db, nokv_inspector **out, nokv_error *err)
{
	nokv_region_hdr *hdr = db->hdr;
	nokv_inspector *in = inspector_new(true);
	nokv_manifest_state vst;
	nokv_version *v;
	uint64_t	ext[NOKV_MAX_EXTERNAL_LOGS];
	uint64_t	targets[NOKV_MAX_LEVELS] = {0};
	int			num_levels = clamp_levels(hdr->opts.num_levels);
	int			rc = NOKV_OK;

	*out = NULL;
	nokv_error_clear(err);
	nokv_manifest_state_init(&vst);

	/* one consistent state: edits and installs happen under MANIFEST exclusive */
	nokv_lock(&db->platform, NOKV_LOCK_MANIFEST, false);
	in->manifest.manifest_number = hdr->manifest_number;
	in->manifest.manifest_size = hdr->manifest_size;
	in->manifest.log_number = hdr->log_number;
	memcpy(ext, hdr->ext_flushed, sizeof(ext));
	v = nokv_version_current(db);
	if (db->vlog)
		nokv_vlog_fill_state(db->vlog, &vst);
	in->manifest.next_file_number = atomic_load(&hdr->next_file_number);
	in->manifest.last_version = atomic_load(&hdr->last_version);
	nokv_unlock(&db->platform, NOKV_LOCK_MANIFEST);

	set_ext(in, ext);
	in->manifest.vlog_head_segment = vst.vlog_head_segment;
	in->manifest.vlog_head_offset = vst.vlog_head_offset;
	in->vseg = nokv_calloc((size_t) vst.n_vlog + 1, sizeof(nokv_vlog_seg_info));
	for (int i = 0; i < vst.n_vlog; i++)
	{
		char		path[NOKV_DIR_MAX + 32];
		struct stat sb;
		uint64_t	file_size = 0;

		/* a segment GC retires meanwhile may be gone: size 0, not an error */
		snprintf(path, sizeof(path), NOKV_VLOG_FMT, hdr->dir, (ull) vst.vlog[i].number);
		if (stat(path, &sb) == 0)
			file_size = (uint64_t) sb.st_size;
		add_vseg(in, &vst.vlog[i], vst.vlog_head_segment, file_size);
	}
	nokv_manifest_state_free(&vst);

	/* the version reference keeps every listed file on disk while we read it */
	for (int level = 0; level < NOKV_MAX_LEVELS && rc == NOKV_OK; level++)
		for (int i = 0; i < v->nfiles[level]; i++)
		{
			const nokv_file_meta *f = nokv_version_file(db, v, level, i);
			nokv_sst_reader *r;

			rc = nokv_table_get(db, f, &r, err);
			if (rc != NOKV_OK)
				break;
			add_sst(in, level, f->number, f->size, f->entries, f->deletions,
					f->range_deletions, f->min_version, f->max_version,
					nokv_file_smallest(db, f), f->smallest_len,
					nokv_file_largest(db, f), f->largest_len,
					nokv_sst_get_props(r));
			if (level + 1 > num_levels)
				num_levels = level + 1;
		}
	if (rc == NOKV_OK)
	{
		sum_levels(in, num_levels);
		nokv_level_targets(db, v, targets);
		for (int level = 0; level < num_levels; level++)
		{
			in->levels[level].target_bytes = targets[level];
			in->levels[level].score = nokv_level_score(db, v, level, targets);
		}
	}
	nokv_version_unref(db, v);
	if (rc != NOKV_OK)
	{
		nokv_inspect_free(in);
		return rc;
	}
	copy_memtables(db, in);
	*out = in;
	return NOKV_OK;
}

/* ---------- offline ---------- */

/* mirrors nokv_level_targets (compaction.c) over the inspector's rows */
static void
offline_targets(nokv_inspector *in, const nokv_options *o, uint64_t *targets)
{
	int			last = in->nlevels - 1;
	uint64_t	base_bytes = o->max_bytes_for_level_base;
	uint64_t	mult = o->level_size_multiplier > 1 ? (uint64_t) o->level_size_multiplier : 1;
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
		if (in->levels[level].bytes > largest)
			largest = in->levels[level].bytes;
	candidate[last] = largest > base_bytes ? largest : base_bytes;
	for (int level = last - 1; level >= 1; level--)
		candidate[level] = candidate[level + 1] / mult;
	for (int level = last; level >= 1; level--)
		if (candidate[level] <= base_bytes)
		{
			base = level;
			break;
		}
	for (int level = base; level <= last; level++)
		targets[level] = candidate[level] > 0 ? candidate[level] : 1;
}

/* mirrors nokv_level_score with no file being compacted */
static double
offline_score(nokv_inspector *in, const nokv_options *o, int level, const uint64_t *targets)
{
	int			last = in->nlevels - 1;
	uint64_t	bytes = in->levels[level].bytes;

	if (level < 0 || level >= last)
		return 0.0;
	if (level == 0)
		return (double) in->levels[0].files /
			(o->l0_compaction_trigger > 0 ? o->l0_compaction_trigger : 1);
	if (targets[level] > 0)
		return (double) bytes / (double) targets[level];
	if (bytes == 0)
		return 0.0;
	return 1.0 + (double) bytes /
		(double) (o->max_bytes_for_level_base ? o->max_bytes_for_level_base : 1);
}

/* version order: L0 by number, other levels by smallest internal key */
static int
cmp_desc_number(const void *a, const void *b)
{
	const nokv_file_desc *x = a;
	const nokv_file_desc *y = b;

	return x->number < y->number ? -1 : x->number > y->number;
}

static int
cmp_desc_smallest(const void *a, const void *b)
{
	const nokv_file_desc *x = a;
	const nokv_file_desc *y = b;
	int			r;

	/* keys shorter than a trailer never reach here: the manifest decoder rejects them */
	r = nokv_ikey_compare(x->smallest, x->smallest_len, y->smallest, y->smallest_len);
	if (r == 0)
		r = x->number < y->number ? -1 : x->number > y->number;
	return r;
}

/* stat a listed segment and check its header; never opens it for writing */
static int
check_segment(const char *dir, const nokv_vlog_segment_desc *d, uint64_t *file_size,
			  nokv_error *err)
{
	char		path[NOKV_DIR_MAX + 32];
	char		hdr[NOKV_VLOG_HEADER_SIZE];
	struct stat sb;
	int			fd;
	int			rc;

	snprintf(path, sizeof(path), NOKV_VLOG_FMT, dir, (ull) d->number);
	if (stat(path, &sb) != 0)
	{
		if (errno == ENOENT)
			return nokv_error_set(err, NOKV_CORRUPTION,
								  "value-log segment %s listed in the manifest is missing", path);
		return nokv_error_errno(err, "could not stat %s", path);
	}
	*file_size = (uint64_t) sb.st_size;
	if (!S_ISREG(sb.st_mode))
		return nokv_error_set(err, NOKV_CORRUPTION, "value-log segment %s is not a regular file",
							  path);
	if (*file_size < d->size)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "value-log segment %s is %llu bytes, shorter than the %llu the manifest records",
							  path, (ull) *file_size, (ull) d->size);
	if (*file_size < NOKV_VLOG_HEADER_SIZE)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "value-log segment %s is too short for its header (%llu bytes) at offset 0",
							  path, (ull) *file_size);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return nokv_error_errno(err, "could not open %s", path);
	rc = nokv_pread_full(fd, hdr, sizeof(hdr), 0, path, err);
	close(fd);
	if (rc != NOKV_OK)
		return rc;
	if (memcmp(hdr, NOKV_VLOG_MAGIC, 8) != 0)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "bad magic in value-log segment header at offset 0 of %s", path);
	if (nokv_get_le32(hdr + 8) != NOKV_VLOG_FORMAT_VERSION)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "unsupported format version %u in value-log segment header at offset 8 of %s",
							  nokv_get_le32(hdr + 8), path);
	if (nokv_get_le32(hdr + 12) != (uint32_t) d->number)
		return nokv_error_set(err, NOKV_CORRUPTION,
							  "value-log segment header at offset 12 of %s names file %u",
							  path, nokv_get_le32(hdr + 12));
	return NOKV_OK;
}

int
nokv_inspect_dir(const char *dir, nokv_inspector **out, nokv_error *err)
{
	return nokv_inspect_dir_opts(dir, NULL, out, err);
}

int
nokv_inspect_dir_opts(const char *dir, const nokv_options *opts, nokv_inspector **out,
					  nokv_error *err)
{
	nokv_options defaults;
	nokv_manifest_state st;
	nokv_inspector *in;
	nokv_sst_env env = {.ctx = NULL, .cache = 0, .counters = NULL};
	uint64_t	targets[NOKV_MAX_LEVELS];
	struct stat sb;
	int			num_levels;
	int			rc = NOKV_OK;

	*out = NULL;
	nokv_error_clear(err);
	if (opts == NULL)
	{
		nokv_options_init(&defaults);
		opts = &defaults;
	}
	if (dir == NULL || strlen(dir) >= NOKV_DIR_MAX - 32)
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "directory name is missing or too long");
	if (stat(dir, &sb) != 0)
		return nokv_error_errno(err, "could not access data directory %s", dir);
	if (!S_ISDIR(sb.st_mode))
		return nokv_error_set(err, NOKV_INVALID_ARGUMENT, "%s is not a directory", dir);

	nokv_manifest_state_init(&st);
	rc = nokv_manifest_recover(dir, &st, err);
	if (rc != NOKV_OK)
	{
		if (rc == NOKV_NOT_FOUND)
			nokv_error_set(err, NOKV_NOT_FOUND,
						   "%s holds no nokv database (no CURRENT file)", dir);
		nokv_manifest_state_free(&st);
		return rc;
	}

	in = inspector_new(false);
	in->manifest.manifest_number = st.manifest_number;
	in->manifest.manifest_size = st.manifest_size;
	in->manifest.next_file_number = st.next_file_number;
	in->manifest.last_version = st.last_version;
	in->manifest.log_number = st.log_number;
	in->manifest.torn_tail = st.torn_tail;
	set_ext(in, st.ext_position);
	in->manifest.vlog_head_segment = st.vlog_head_segment;
	in->manifest.vlog_head_offset = st.vlog_head_offset;

	num_levels = clamp_levels(opts->num_levels);
	for (int level = 0; level < NOKV_MAX_LEVELS && rc == NOKV_OK; level++)
	{
		if (st.nfiles[level] > 1)
			qsort(st.files[level], (size_t) st.nfiles[level], sizeof(nokv_file_desc),
				  level == 0 ? cmp_desc_number : cmp_desc_smallest);
		for (int i = 0; i < st.nfiles[level]; i++)
		{
			const nokv_file_desc *d = &st.files[level][i];
			nokv_sst_reader *r;

			/* read-only open: checks the size, footer and properties block */
			rc = nokv_sst_open(&env, dir, d->number, d->size, &r, err);
			if (rc != NOKV_OK)
				break;
			add_sst(in, level, d->number, d->size, d->entries, d->deletions,
					d->range_deletions, d->min_version, d->max_version,
					d->smallest, d->smallest_len, d->largest, d->largest_len,
					nokv_sst_get_props(r));
			nokv_sst_close(r);
			/* files below the configured levels still get their rows */
			if (level + 1 > num_levels)
				num_levels = level + 1;
		}
	}

	in->vseg = nokv_calloc((size_t) st.n_vlog + 1, sizeof(nokv_vlog_seg_info));
	for (int i = 0; i < st.n_vlog && rc == NOKV_OK; i++)
	{
		uint64_t	file_size = 0;

		rc = check_segment(dir, &st.vlog[i], &file_size, err);
		if (rc == NOKV_OK)
			add_vseg(in, &st.vlog[i], st.vlog_head_segment, file_size);
	}
	nokv_manifest_state_free(&st);
	if (rc != NOKV_OK)
	{
		nokv_inspect_free(in);
		return rc;
	}

	sum_levels(in, num_levels);
	offline_targets(in, opts, targets);
	for (int level = 0; level < num_levels; level++)
	{
		in->levels[level].target_bytes = targets[level];
		in->levels[level].score = offline_score(in, opts, level, targets);
	}
	*out = in;
	return NOKV_OK;
}

/* ---------- accessors ---------- */

int
nokv_inspect_sstables(nokv_inspector *in, const nokv_sst_info **rows)
{
	*rows = in->sst;
	return in->nsst;
}

int
nokv_inspect_levels(nokv_inspector *in, const nokv_level_info **rows)
{
	*rows = in->levels;
	return in->nlevels;
}

int
nokv_inspect_vlog_segments(nokv_inspector *in, const nokv_vlog_seg_info **rows)
{
	*rows = in->vseg;
	return in->nvseg;
}

int
nokv_inspect_memtables(nokv_inspector *in, const nokv_memtable_info **rows)
{
	*rows = in->mem;
	return in->nmem;
}

int
nokv_inspect_column_families(nokv_inspector *in, const nokv_cf_info **rows)
{
	*rows = in->cf;
	return NOKV_CF_COUNT;
}

void
nokv_inspect_manifest(nokv_inspector *in, nokv_manifest_info *out)
{
	*out = in->manifest;
}

/* ---------- statistics rows ---------- */

static void
row(nokv_stat_fn fn, void *arg, const char *name, double value, const char *unit,
	const char *desc)
{
	nokv_stat	s = {.name = name, .value = value, .unit = unit, .description = desc};

	fn(arg, &s);
}

void
nokv_inspect_stats_foreach(nokv_inspector *in, nokv_stat_fn fn, void *arg)
{
	const nokv_manifest_info *m = &in->manifest;
	char		name[128];
	uint64_t	entries = 0;
	uint64_t	vbytes = 0;
	uint64_t	vdiscard = 0;
	uint64_t	vrecords = 0;
	uint64_t	head_offset = 0;
	double		vratio;

	for (int level = 0; level < in->nlevels; level++)
		entries += in->levels[level].entries;
	for (int i = 0; i < in->nvseg; i++)
	{
		vbytes += in->vseg[i].size;
		vdiscard += in->vseg[i].discard;
		if (in->vseg[i].size > NOKV_VLOG_HEADER_SIZE)
			vrecords += in->vseg[i].size - NOKV_VLOG_HEADER_SIZE;
	}
	vratio = vrecords ? (double) vdiscard / (double) vrecords : 0.0;
	if (vratio > 1.0)
		vratio = 1.0;
	if (m->vlog_head_segment != 0)
		head_offset = m->vlog_head_offset;

	row(fn, arg, "entries", (double) entries, "count", "entries in SST files (all versions, deletes included)");
	row(fn, arg, "version.last", (double) m->last_version, "version",
		"last published version (the oracle's read timestamp)");
	row(fn, arg, "wal.log_number", (double) m->log_number, "count", "oldest WAL segment still needed");
	for (int i = 0; i < m->n_ext; i++)
	{
		snprintf(name, sizeof(name), "wal.external.%u.flushed", m->ext[i].log_id);
		row(fn, arg, name, (double) m->ext[i].position, "count",
			"external log position whose data is durable in SSTs");
	}
	row(fn, arg, "manifest.bytes", (double) m->manifest_size, "bytes", "size of the live manifest");
	row(fn, arg, "manifest.number", (double) m->manifest_number, "count", "file number of the live manifest");
	row(fn, arg, "manifest.next_file_number", (double) m->next_file_number, "count",
		"next file number to hand out");
	row(fn, arg, "manifest.torn_tail", m->torn_tail, "bool",
		"manifest replay stopped at a torn tail (the next open rewrites it)");

	for (int level = 0; level < in->nlevels; level++)
	{
		const nokv_level_info *l = &in->levels[level];

		snprintf(name, sizeof(name), "lsm.levels.L%d.tables", level);
		row(fn, arg, name, l->files, "count", "SST files in the level");
		snprintf(name, sizeof(name), "lsm.levels.L%d.size_bytes", level);
		row(fn, arg, name, (double) l->bytes, "bytes", "SST bytes in the level");
		snprintf(name, sizeof(name), "lsm.levels.L%d.entries", level);
		row(fn, arg, name, (double) l->entries, "count", "entries in the level");
		snprintf(name, sizeof(name), "lsm.levels.L%d.score", level);
		row(fn, arg, name, l->score, "ratio", "compaction score (>= 1 needs compaction)");
		snprintf(name, sizeof(name), "lsm.levels.L%d.target_bytes", level);
		row(fn, arg, name, (double) l->target_bytes, "bytes",
			"size target of the level (0: level 0 or above the base level)");
	}
	row(fn, arg, "lsm.live_bytes", (double) m->live_bytes, "bytes", "bytes in live SST files");
	row(fn, arg, "lsm.tables", m->live_files, "count", "SST files in all levels");

	for (int cf = 0; cf < NOKV_CF_COUNT; cf++)
	{
		snprintf(name, sizeof(name), "lsm.column_families.%s.entries", in->cf[cf].name);
		row(fn, arg, name, (double) in->cf[cf].entries, "count", "entries in SST files");
		snprintf(name, sizeof(name), "lsm.column_families.%s.bytes", in->cf[cf].name);
		row(fn, arg, name, (double) (in->cf[cf].key_bytes + in->cf[cf].value_bytes), "bytes",
			"key and value bytes in SST files (before compression)");
	}

	row(fn, arg, "value_log.segments", in->nvseg, "count", "value-log segments");
	row(fn, arg, "value_log.bytes", (double) vbytes, "bytes", "bytes in value-log segments");
	row(fn, arg, "value_log.discard_bytes", (double) vdiscard, "bytes",
		"segment bytes no pointer references any more (exact)");
	row(fn, arg, "value_log.discard_ratio", vratio, "ratio", "discard bytes / segment bytes");
	row(fn, arg, "value_log.head.segment", (double) m->vlog_head_segment, "count", "active segment");
	row(fn, arg, "value_log.head.offset", (double) head_offset, "bytes", "bytes in the active segment");
}
