/*-------------------------------------------------------------------------
 *
 * test_inspect.c
 *	  Inspection rows: live snapshots agree with the engine's statistics,
 *	  offline snapshots of the closed directory agree with the live ones,
 *	  and offline inspection never changes a file.
 *
 * test/engine/test_inspect.c
 *-------------------------------------------------------------------------
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nokv/coding.h"
#include "nokv/inspect.h"
#include "nokv/nokv.h"
#include "tap.h"

#define MAX_ROWS	512
#define MAX_FILES	1024

/* ---------- helpers ---------- */

typedef struct rows
{
	int			n;
	char		name[MAX_ROWS][96];
	char		unit[MAX_ROWS][16];
	double		value[MAX_ROWS];
} rows;

static void
collect(void *arg, const nokv_stat *s)
{
	rows	   *r = arg;

	if (r->n >= MAX_ROWS)
		return;
	snprintf(r->name[r->n], sizeof(r->name[0]), "%s", s->name);
	snprintf(r->unit[r->n], sizeof(r->unit[0]), "%s", s->unit);
	r->value[r->n++] = s->value;
}

static int
find_row(const rows *r, const char *name)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->name[i], name) == 0)
			return i;
	return -1;
}

/* one entry of a directory listing: name, size, mtime and a content checksum */
typedef struct listing
{
	int			n;
	char		name[MAX_FILES][256];
	long long	size[MAX_FILES];
	long long	mtime_ns[MAX_FILES];
	uint32_t	crc[MAX_FILES];
} listing;

static int
cmp_names(const void *a, const void *b)
{
	return strcmp((const char *) a, (const char *) b);
}

static uint32_t
file_crc(const char *path)
{
	char		buf[65536];
	uint32_t	crc = 0;
	int			fd = open(path, O_RDONLY);
	ssize_t		n;

	if (fd < 0)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		crc = nokv_crc32c_extend(crc, buf, (size_t) n);
	close(fd);
	return crc;
}

static void
list_dir(const char *dir, listing *l)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	char		names[MAX_FILES][256];
	int			n = 0;

	memset(l, 0, sizeof(*l));
	if (!d)
		return;
	while ((de = readdir(d)) != NULL && n < MAX_FILES)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			snprintf(names[n++], 256, "%s", de->d_name);
	closedir(d);
	qsort(names, n, 256, cmp_names);
	for (int i = 0; i < n; i++)
	{
		char		path[4200];
		struct stat sb;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		memcpy(l->name[i], names[i], 256);
		if (lstat(path, &sb) == 0)
		{
			l->size[i] = (long long) sb.st_size;
			l->mtime_ns[i] = (long long) sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
		}
		l->crc[i] = file_crc(path);
	}
	l->n = n;
}

static bool
listings_equal(const listing *a, const listing *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->name[i], b->name[i]) != 0 || a->size[i] != b->size[i] ||
			a->mtime_ns[i] != b->mtime_ns[i] || a->crc[i] != b->crc[i])
			return false;
	return true;
}

static void
run(const char *cmd)
{
	if (system(cmd) != 0)
		tap_bail("command failed: %s", cmd);
}

static char *
copy_dir(const char *src, const char *tag)
{
	char	   *dst = tap_tmpdir(tag);
	char		cmd[9000];

	snprintf(cmd, sizeof(cmd), "cp -a '%s'/. '%s'/", src, dst);
	run(cmd);
	return dst;
}

/* the first file in dir whose name ends in suffix (static buffer) */
static const char *
first_with_suffix(const char *dir, const char *suffix)
{
	static char path[4200];
	DIR		   *d = opendir(dir);
	struct dirent *de;
	size_t		sl = strlen(suffix);

	path[0] = '\0';
	if (!d)
		return path;
	while ((de = readdir(d)) != NULL)
	{
		size_t		nl = strlen(de->d_name);

		if (nl > sl && strcmp(de->d_name + nl - sl, suffix) == 0)
		{
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			break;
		}
	}
	closedir(d);
	return path;
}

static bool
same_key(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int
compare_ukeys(int acf, const char *a, size_t alen, int bcf, const char *b, size_t blen)
{
	size_t		m = alen < blen ? alen : blen;
	int			r;

	if (acf != bcf)
		return acf < bcf ? -1 : 1;
	r = m ? memcmp(a, b, m) : 0;
	if (r != 0)
		return r;
	return alen < blen ? -1 : alen > blen;
}

/* every figure of two inspectors, except the memtables and the live flag */
static void
compare_inspectors(nokv_inspector *a, nokv_inspector *b, const char *what)
{
	const nokv_sst_info *sa,
			   *sb;
	const nokv_level_info *la,
			   *lb;
	const nokv_vlog_seg_info *va,
			   *vb;
	const nokv_cf_info *ca,
			   *cb;
	nokv_manifest_info ma,
				mb;
	int			na,
				nb;
	int			bad = 0;
	rows	   *ra = calloc(1, sizeof(rows));
	rows	   *rb = calloc(1, sizeof(rows));

	na = nokv_inspect_sstables(a, &sa);
	nb = nokv_inspect_sstables(b, &sb);
	is_int(na, nb, "%s: same number of sstables (%d)", what, na);
	for (int i = 0; i < na && i < nb; i++)
	{
		const nokv_sst_info *x = &sa[i];
		const nokv_sst_info *y = &sb[i];

		if (x->level != y->level || x->number != y->number || x->size != y->size ||
			x->entries != y->entries || x->deletions != y->deletions ||
			x->range_deletions != y->range_deletions || x->min_version != y->min_version ||
			x->max_version != y->max_version || x->raw_key_bytes != y->raw_key_bytes ||
			x->raw_value_bytes != y->raw_value_bytes || x->smallest_cf != y->smallest_cf ||
			x->largest_cf != y->largest_cf || x->smallest_version != y->smallest_version ||
			x->largest_version != y->largest_version ||
			!same_key(x->smallest_key, x->smallest_len, y->smallest_key, y->smallest_len) ||
			!same_key(x->largest_key, x->largest_len, y->largest_key, y->largest_len))
		{
			tap_diag("  sstable row %d differs (file %llu vs %llu)", i,
					 (unsigned long long) x->number, (unsigned long long) y->number);
			bad++;
		}
	}
	is_int(bad, 0, "%s: sstable rows identical", what);

	na = nokv_inspect_levels(a, &la);
	nb = nokv_inspect_levels(b, &lb);
	is_int(na, nb, "%s: same number of levels", what);
	bad = 0;
	for (int i = 0; i < na && i < nb; i++)
		if (la[i].level != lb[i].level || la[i].files != lb[i].files ||
			la[i].bytes != lb[i].bytes || la[i].entries != lb[i].entries ||
			la[i].target_bytes != lb[i].target_bytes || la[i].score != lb[i].score)
		{
			tap_diag("  level %d: files %d/%d bytes %llu/%llu target %llu/%llu score %g/%g", i,
					 la[i].files, lb[i].files, (unsigned long long) la[i].bytes,
					 (unsigned long long) lb[i].bytes, (unsigned long long) la[i].target_bytes,
					 (unsigned long long) lb[i].target_bytes, la[i].score, lb[i].score);
			bad++;
		}
	is_int(bad, 0, "%s: level rows identical (targets and scores included)", what);

	na = nokv_inspect_vlog_segments(a, &va);
	nb = nokv_inspect_vlog_segments(b, &vb);
	is_int(na, nb, "%s: same number of value-log segments (%d)", what, na);
	bad = 0;
	for (int i = 0; i < na && i < nb; i++)
		if (va[i].number != vb[i].number || va[i].size != vb[i].size ||
			va[i].file_size != vb[i].file_size || va[i].discard != vb[i].discard ||
			va[i].discard_ratio != vb[i].discard_ratio || va[i].is_head != vb[i].is_head)
		{
			tap_diag("  segment %llu: size %llu/%llu file %llu/%llu discard %llu/%llu head %d/%d",
					 (unsigned long long) va[i].number, (unsigned long long) va[i].size,
					 (unsigned long long) vb[i].size, (unsigned long long) va[i].file_size,
					 (unsigned long long) vb[i].file_size, (unsigned long long) va[i].discard,
					 (unsigned long long) vb[i].discard, va[i].is_head, vb[i].is_head);
			bad++;
		}
	is_int(bad, 0, "%s: value-log segment rows identical", what);

	nokv_inspect_column_families(a, &ca);
	nokv_inspect_column_families(b, &cb);
	bad = 0;
	for (int cf = 0; cf < NOKV_CF_COUNT; cf++)
		if (ca[cf].entries != cb[cf].entries || ca[cf].key_bytes != cb[cf].key_bytes ||
			ca[cf].value_bytes != cb[cf].value_bytes || strcmp(ca[cf].name, cb[cf].name) != 0)
			bad++;
	is_int(bad, 0, "%s: column-family rows identical", what);

	nokv_inspect_manifest(a, &ma);
	nokv_inspect_manifest(b, &mb);
	bad = 0;
#define SAME(f) do { if (ma.f != mb.f) { tap_diag("  manifest." #f ": %llu vs %llu", \
		(unsigned long long) ma.f, (unsigned long long) mb.f); bad++; } } while (0)
	SAME(manifest_number);
	SAME(manifest_size);
	SAME(next_file_number);
	SAME(last_version);
	SAME(log_number);
	SAME(n_ext);
	SAME(vlog_head_segment);
	SAME(vlog_head_offset);
	SAME(live_files);
	SAME(live_bytes);
	SAME(vlog_segments);
	SAME(num_levels);
	SAME(torn_tail);
#undef SAME
	for (int i = 0; i < ma.n_ext && i < mb.n_ext; i++)
		if (ma.ext[i].log_id != mb.ext[i].log_id || ma.ext[i].position != mb.ext[i].position)
			bad++;
	is_int(bad, 0, "%s: manifest row identical", what);

	nokv_inspect_stats_foreach(a, collect, ra);
	nokv_inspect_stats_foreach(b, collect, rb);
	bad = ra->n != rb->n;
	for (int i = 0; i < ra->n && i < rb->n; i++)
		if (strcmp(ra->name[i], rb->name[i]) != 0 || ra->value[i] != rb->value[i])
		{
			tap_diag("  stat %s = %g vs %s = %g", ra->name[i], ra->value[i], rb->name[i], rb->value[i]);
			bad++;
		}
	is_int(bad, 0, "%s: statistics rows identical (%d rows)", what, ra->n);
	free(ra);
	free(rb);
}

static size_t
make_key(char *buf, int i)
{
	return (size_t) sprintf(buf, "key%06d", i);
}

static size_t
make_value(char *buf, int i, int round)
{
	/* every third value is small (stays in the LSM), others go to the value log */
	size_t		len = (i % 3 == 0) ? 20 : 100 + (size_t) (i % 50);

	for (size_t j = 0; j < len; j++)
		buf[j] = (char) ('a' + (i + j + (size_t) round) % 26);
	return len;
}

static void
small_options(nokv_options *o)
{
	nokv_options_init(o);
	o->memtable_size = 64 << 10;
	o->target_file_size = 8 << 10;
	o->max_bytes_for_level_base = 32 << 10;
	o->level_size_multiplier = 4;
	o->l0_compaction_trigger = 2;
	o->vlog_threshold = 64;
	o->vlog_segment_size = 64 << 10;
	o->background_threads = false;
	o->block_cache_size = 1 << 20;
	o->meta_heap_size = 4 << 20;
	o->max_files = 4096;
	o->hot_capacity = 0;
}

/* ---------- live vs engine statistics ---------- */

static void
check_live_against_stats(nokv_db *db, nokv_inspector *in)
{
	nokv_stats	st;
	const nokv_level_info *lv;
	const nokv_sst_info *ss;
	const nokv_vlog_seg_info *vs;
	const nokv_cf_info *cfs;
	nokv_manifest_info m;
	int			nlev = nokv_inspect_levels(in, &lv);
	int			nsst = nokv_inspect_sstables(in, &ss);
	int			nseg = nokv_inspect_vlog_segments(in, &vs);
	int			bad = 0;
	int			heads = 0;
	uint64_t	entries = 0,
				cf_entries = 0;
	rows	   *ri = calloc(1, sizeof(rows));
	rows	   *rs = calloc(1, sizeof(rows));
	int			compared = 0;

	nokv_get_stats(db, &st);
	nokv_inspect_manifest(in, &m);
	is_int(nlev, st.num_levels, "live: one level row per engine level");
	for (int l = 0; l < nlev && l < st.num_levels; l++)
		if (lv[l].files != st.levels[l].files || lv[l].bytes != st.levels[l].bytes ||
			lv[l].entries != st.levels[l].entries || lv[l].score != st.levels[l].score ||
			lv[l].level != l)
			bad++;
	is_int(bad, 0, "live: level files/bytes/entries/score match nokv_get_stats");
	ok(m.live, "live: the manifest row says live");
	is_int(m.live_bytes, st.live_sst_bytes, "live: live bytes match");
	is_int(m.manifest_size, st.manifest_bytes, "live: manifest size matches");
	is_int(m.last_version, st.last_version, "live: last version matches");

	bad = 0;
	for (int i = 0; i < nsst; i++)
	{
		entries += ss[i].entries;
		if (ss[i].level < 0 || ss[i].level >= nlev || ss[i].size == 0 ||
			ss[i].smallest_cf < 0 || ss[i].smallest_cf >= NOKV_CF_COUNT ||
			ss[i].largest_cf < 0 || ss[i].largest_cf >= NOKV_CF_COUNT ||
			ss[i].min_version > ss[i].max_version ||
			compare_ukeys(ss[i].smallest_cf, ss[i].smallest_key, ss[i].smallest_len,
						  ss[i].largest_cf, ss[i].largest_key, ss[i].largest_len) > 0)
			bad++;
		if (i > 0 && ss[i].level < ss[i - 1].level)
			bad++;
		if (i > 0 && ss[i].level == ss[i - 1].level && ss[i].level == 0 &&
			ss[i].number <= ss[i - 1].number)
			bad++;
		/* deeper levels: sorted and disjoint */
		if (i > 0 && ss[i].level == ss[i - 1].level && ss[i].level > 0 &&
			compare_ukeys(ss[i - 1].largest_cf, ss[i - 1].largest_key, ss[i - 1].largest_len,
						  ss[i].smallest_cf, ss[i].smallest_key, ss[i].smallest_len) > 0)
			bad++;
	}
	is_int(bad, 0, "live: sstable rows are sane and in version order");
	is_int(m.live_files, nsst, "live: manifest live_files counts the sstable rows");
	{
		uint64_t	want = 0;

		for (int l = 0; l < st.num_levels; l++)
			want += st.levels[l].entries;
		is_int(entries, want, "live: sstable entries sum to the level entries");
	}
	nokv_inspect_column_families(in, &cfs);
	for (int cf = 0; cf < NOKV_CF_COUNT; cf++)
		cf_entries += cfs[cf].entries;
	is_int(cf_entries, entries, "live: column-family entries sum to the sstable entries");

	for (int i = 0; i < nseg; i++)
	{
		heads += vs[i].is_head;
		if (vs[i].file_size < vs[i].size || (i > 0 && vs[i].number <= vs[i - 1].number) ||
			vs[i].discard_ratio < 0 || vs[i].discard_ratio > 1)
			bad++;
	}
	is_int(bad, 0, "live: value-log segment rows are sane");
	is_int(heads, m.vlog_head_segment ? 1 : 0, "live: exactly one head segment");
	is_int(m.vlog_segments, nseg, "live: manifest counts the segments");

	/* every row the inspector shares with nokv_stats_foreach has the same value */
	nokv_inspect_stats_foreach(in, collect, ri);
	nokv_stats_foreach(db, collect, rs);
	bad = 0;
	for (int i = 0; i < ri->n; i++)
	{
		int			j = find_row(rs, ri->name[i]);

		if (j < 0)
			continue;
		compared++;
		if (strcmp(ri->unit[i], rs->unit[j]) != 0 || ri->value[i] != rs->value[j])
		{
			tap_diag("  %s: inspector %g %s, stats %g %s", ri->name[i], ri->value[i], ri->unit[i],
					 rs->value[j], rs->unit[j]);
			bad++;
		}
	}
	ok(compared >= 40, "live: %d statistics rows shared with nokv_stats_foreach", compared);
	is_int(bad, 0, "live: shared statistics rows have the same values and units");
	bad = 0;
	for (int i = 0; i < ri->n; i++)
		for (int j = i + 1; j < ri->n; j++)
			bad += strcmp(ri->name[i], ri->name[j]) == 0;
	is_int(bad, 0, "live: statistics row names are unique");
	free(ri);
	free(rs);
}

/* ---------- concurrency: snapshots while the engine works ---------- */

typedef struct writer_arg
{
	nokv_db    *db;
	atomic_int	stop;
	int			errors;
} writer_arg;

static void *
writer_main(void *p)
{
	writer_arg *w = p;
	char		key[32],
				val[256];
	nokv_error	err;

	for (int i = 0; !atomic_load(&w->stop); i++)
	{
		size_t		kl = make_key(key, i % 4000);
		size_t		vl = make_value(val, i, i / 4000);

		if (nokv_put(w->db, i % 2 ? NOKV_CF_WRITE : NOKV_CF_DEFAULT, key, kl, val, vl, &err) != NOKV_OK)
			w->errors++;
	}
	return NULL;
}

static void
test_concurrent(void)
{
	char	   *dir = tap_tmpdir("inspect-conc");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	writer_arg	w = {0};
	pthread_t	tid;
	int			snaps = 0,
				bad = 0,
				failed = 0;

	small_options(&o);
	o.background_threads = true;
	if (!ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "concurrent: open (%s)", err.msg))
		return;
	w.db = db;
	pthread_create(&tid, NULL, writer_main, &w);
	for (int i = 0; i < 150; i++)
	{
		nokv_inspector *in;
		const nokv_level_info *lv;
		const nokv_sst_info *ss;
		nokv_manifest_info m;
		uint64_t	sum = 0;
		int			nl,
					ns,
					files = 0;

		if (nokv_inspect_live(db, &in, &err) != NOKV_OK)
		{
			failed++;
			continue;
		}
		snaps++;
		nl = nokv_inspect_levels(in, &lv);
		ns = nokv_inspect_sstables(in, &ss);
		nokv_inspect_manifest(in, &m);
		for (int l = 0; l < nl; l++)
		{
			files += lv[l].files;
			sum += lv[l].bytes;
		}
		if (files != ns || sum != m.live_bytes || m.live_files != ns)
			bad++;
		nokv_inspect_free(in);
		usleep(1000);
	}
	atomic_store(&w.stop, 1);
	pthread_join(tid, NULL);
	is_int(failed, 0, "concurrent: every live snapshot succeeds while writes, flushes and compactions run");
	is_int(bad, 0, "concurrent: each of %d snapshots is internally consistent", snaps);
	is_int(w.errors, 0, "concurrent: writers were not disturbed");
	nokv_close(db);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- external-log mode: flushed positions ---------- */

static void
test_external(void)
{
	char	   *dir = tap_tmpdir("inspect-ext");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	nokv_inspector *live = NULL,
			   *off = NULL;
	nokv_manifest_info m;
	nokv_batch *b = nokv_batch_new();

	small_options(&o);
	o.external_log = true;
	if (!ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "external: open (%s)", err.msg))
		return;
	for (int i = 1; i <= 300; i++)
	{
		nokv_write_options wo = {.log_id = (uint32_t) (i % 2 ? 0 : 5), .log_position = 1000 + (uint64_t) i,
		.version = (uint64_t) i};
		char		key[32],
					val[256];
		size_t		kl = make_key(key, i),
					vl = make_value(val, i, 0);

		nokv_batch_clear(b);
		nokv_batch_put(b, NOKV_CF_DEFAULT, key, kl, val, vl);
		if (nokv_write(db, &wo, b, &err) != NOKV_OK)
			tap_bail("external write failed: %s", err.msg);
	}
	{
		nokv_inspector *mt;
		const nokv_memtable_info *mr;
		int			n;
		bool		found = false;

		nokv_inspect_live(db, &mt, &err);
		n = nokv_inspect_memtables(mt, &mr);
		for (int i = 0; i < n; i++)
			if (strcmp(mr[i].state, "active") == 0)
				found = mr[i].log_position == 1300 && mr[i].wal_segment == 0 && mr[i].max_version == 300;
		ok(found, "external: the active memtable reports its highest log position and no WAL segment");
		nokv_inspect_free(mt);
	}
	ok(nokv_compact_all(db, &err) == NOKV_OK, "external: flush and compact (%s)", err.msg);
	ok(nokv_inspect_live(db, &live, &err) == NOKV_OK, "external: live snapshot");
	nokv_inspect_manifest(live, &m);
	ok(m.n_ext == 2 && m.ext[0].log_id == 0 && m.ext[0].position == 1299 &&
	   m.ext[1].log_id == 5 && m.ext[1].position == 1300,
	   "external: flushed positions per log (n_ext %d)", m.n_ext);
	nokv_close(db);
	ok(nokv_inspect_dir_opts(dir, &o, &off, &err) == NOKV_OK, "external: offline snapshot (%s)", err.msg);
	if (live && off)
		compare_inspectors(live, off, "external");
	nokv_inspect_free(live);
	nokv_inspect_free(off);
	nokv_batch_free(b);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- SST partitions ---------- */

/* keys "t<c>..." are partitioned by their first two bytes; others by none */
static size_t
two_byte_partition(void *arg, int cf, const char *key, size_t klen)
{
	(void) arg;
	(void) cf;
	return klen >= 2 && key[0] == 't' ? 2 : 0;
}

static size_t
part_key(char *buf, char table, int i)
{
	return (size_t) sprintf(buf, "t%c%06d", table, i);
}

/* no file below level 0 holds keys of two partitions, or of two column families */
static int
files_spanning_partitions(nokv_db *db, int *files)
{
	nokv_inspector *in = NULL;
	nokv_error	err = {0};
	const nokv_sst_info *ss;
	int			n,
				bad = 0;

	if (nokv_inspect_live(db, &in, &err) != NOKV_OK)
		tap_bail("inspect: %s", err.msg);
	n = nokv_inspect_sstables(in, &ss);
	*files = 0;
	for (int i = 0; i < n; i++)
	{
		size_t		a,
					b;

		if (ss[i].level == 0)
			continue;
		(*files)++;
		a = two_byte_partition(NULL, 0, ss[i].smallest_key, ss[i].smallest_len);
		b = two_byte_partition(NULL, 0, ss[i].largest_key, ss[i].largest_len);
		if (ss[i].smallest_cf != ss[i].largest_cf || a != b ||
			memcmp(ss[i].smallest_key, ss[i].largest_key, a) != 0)
			bad++;
	}
	nokv_inspect_free(in);
	return bad;
}

static void
test_partitions(void)
{
	char	   *dir = tap_tmpdir("inspect-part");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	nokv_stats	st;
	char		key[32],
				val[256];
	int			files,
				bad = 0;
	uint64_t	written;

	small_options(&o);
	o.target_file_size = 1 << 20;	/* large: only partitions cut files */
	o.sst_partition = two_byte_partition;
	if (!ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "partitions: open (%s)", err.msg))
		return;
	/* three tables and some other keys, interleaved */
	for (int i = 0; i < 3000; i++)
	{
		size_t		vl = make_value(val, i, 0);

		if (nokv_put(db, NOKV_CF_DEFAULT, key, part_key(key, 'a' + i % 3, i / 3), val, vl, &err) != NOKV_OK ||
			(i % 50 == 0 &&
			 nokv_put(db, NOKV_CF_DEFAULT, key, (size_t) sprintf(key, "u%05d", i), val, vl, &err) != NOKV_OK))
			tap_bail("partitions: put failed: %s", err.msg);
	}
	ok(nokv_compact_all(db, &err) == NOKV_OK, "partitions: flush and compact (%s)", err.msg);
	is_int(files_spanning_partitions(db, &files), 0,
		   "partitions: none of %d files holds keys of two partitions", files);
	ok(files >= 4, "partitions: one file per table and one for the other keys at least");

	/* rows appended above table a's highest key overlap no file of table b */
	nokv_get_stats(db, &st);
	written = st.compaction_bytes_written;
	for (int i = 1000; i < 1060; i++)
	{
		size_t		vl = make_value(val, i, 1);

		if (nokv_put(db, NOKV_CF_DEFAULT, key, part_key(key, 'a', i), val, vl, &err) != NOKV_OK)
			tap_bail("partitions: put failed: %s", err.msg);
	}
	ok(nokv_compact_range(db, NOKV_CF_DEFAULT, "ta001000", 8, "ta999999", 8, &err) == NOKV_OK,
	   "partitions: compact the appended rows to the bottom level (%s)", err.msg);
	nokv_get_stats(db, &st);
	is_int(files_spanning_partitions(db, &files), 0, "partitions: still none across partitions");
	ok(st.compaction_bytes_written - written < 32 * 1024,
	   "partitions: the appended rows moved down without rewriting the other tables (%llu bytes written)",
	   (unsigned long long) (st.compaction_bytes_written - written));
	for (int i = 0; i < 1060 && !bad; i++)
	{
		char	   *v = NULL;
		size_t		vl;

		bad = nokv_get(db, NULL, NOKV_CF_DEFAULT, key, part_key(key, 'a', i), &v, &vl, &err) != NOKV_OK;
		free(v);
	}
	ok(!bad, "partitions: every row of table a reads back");
	nokv_close(db);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- errors, all on copies of a good directory ---------- */

static void
expect_error(const char *dir, int code, const char *needle, const char *what)
{
	nokv_inspector *in = NULL;
	nokv_error	err = {0};
	int			rc = nokv_inspect_dir(dir, &in, &err);

	ok(rc == code && in == NULL && strstr(err.msg, needle) != NULL,
	   "%s: %s (%s)", what, nokv_code_name(rc), err.msg);
	nokv_inspect_free(in);
}

static void
corrupt_byte(const char *path, long off)
{
	int			fd = open(path, O_RDWR);
	unsigned char c;

	if (fd < 0 || pread(fd, &c, 1, off) != 1)
		tap_bail("cannot read %s", path);
	c ^= 0x5a;
	if (pwrite(fd, &c, 1, off) != 1)
		tap_bail("cannot write %s", path);
	close(fd);
}

static void
test_errors(const char *good)
{
	char	   *d;
	char		path[4200];
	char		missing[4200];

	snprintf(missing, sizeof(missing), "%s/does-not-exist", good);
	expect_error(missing, NOKV_IO_ERROR, "does-not-exist", "a missing directory");

	d = tap_tmpdir("inspect-empty");
	expect_error(d, NOKV_NOT_FOUND, "no CURRENT", "a directory without CURRENT");
	{
		listing		l;

		list_dir(d, &l);
		is_int(l.n, 0, "nothing was created in the empty directory");
	}
	tap_rmdir(d);
	free(d);

	d = copy_dir(good, "inspect-current");
	snprintf(path, sizeof(path), "%s/CURRENT", d);
	{
		FILE	   *f = fopen(path, "w");

		fputs("garbage\n", f);
		fclose(f);
	}
	expect_error(d, NOKV_CORRUPTION, "CURRENT", "a corrupt CURRENT");
	tap_rmdir(d);
	free(d);

	d = copy_dir(good, "inspect-manifest");
	{
		/* corrupt the first record of the manifest: mid-log corruption */
		DIR		   *dd = opendir(d);
		struct dirent *de;

		path[0] = '\0';
		while ((de = readdir(dd)) != NULL)
			if (strncmp(de->d_name, "MANIFEST-", 9) == 0)
				snprintf(path, sizeof(path), "%s/%s", d, de->d_name);
		closedir(dd);
		corrupt_byte(path, 40);
	}
	expect_error(d, NOKV_CORRUPTION, "MANIFEST-", "a corrupt manifest");
	tap_rmdir(d);
	free(d);

	d = copy_dir(good, "inspect-sst");
	snprintf(path, sizeof(path), "%s", first_with_suffix(d, ".sst"));
	unlink(path);
	expect_error(d, NOKV_IO_ERROR, ".sst", "a missing sst");
	tap_rmdir(d);
	free(d);

	d = copy_dir(good, "inspect-sst2");
	snprintf(path, sizeof(path), "%s", first_with_suffix(d, ".sst"));
	if (truncate(path, 100) != 0)
		tap_bail("truncate");
	expect_error(d, NOKV_CORRUPTION, ".sst", "a truncated sst");
	tap_rmdir(d);
	free(d);

	d = copy_dir(good, "inspect-vlog");
	snprintf(path, sizeof(path), "%s", first_with_suffix(d, ".vlog"));
	unlink(path);
	expect_error(d, NOKV_CORRUPTION, ".vlog", "a missing value-log segment");
	tap_rmdir(d);
	free(d);

	d = copy_dir(good, "inspect-vlog2");
	snprintf(path, sizeof(path), "%s", first_with_suffix(d, ".vlog"));
	corrupt_byte(path, 2);
	expect_error(d, NOKV_CORRUPTION, "offset 0", "a value-log segment with a bad header");
	tap_rmdir(d);
	free(d);

	d = copy_dir(good, "inspect-vlog3");
	snprintf(path, sizeof(path), "%s", first_with_suffix(d, ".vlog"));
	if (truncate(path, 20) != 0)
		tap_bail("truncate");
	expect_error(d, NOKV_CORRUPTION, "shorter than", "a truncated value-log segment");
	tap_rmdir(d);
	free(d);

	{
		nokv_inspector *in = NULL;
		nokv_error	err = {0};

		snprintf(path, sizeof(path), "%s/CURRENT", good);
		ok(nokv_inspect_dir(path, &in, &err) == NOKV_INVALID_ARGUMENT && in == NULL,
		   "a regular file is not a data directory (%s)", err.msg);
	}
}

/* ---------- main scenario ---------- */

int
main(void)
{
	char	   *dir = tap_tmpdir("inspect");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	nokv_inspector *live = NULL,
			   *off = NULL,
			   *defaults = NULL;
	char		key[64],
				val[256];
	listing    *before = calloc(1, sizeof(listing));
	listing    *after = calloc(1, sizeof(listing));

	small_options(&o);
	if (!ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "open (%s)", err.msg))
		return tap_done();

	/* three rounds of the same keys: older values become value-log garbage */
	for (int round = 0; round < 3; round++)
	{
		for (int i = 0; i < 3000; i++)
		{
			size_t		kl = make_key(key, i);
			size_t		vl = make_value(val, i, round);

			if (nokv_put(db, i % 5 == 0 ? NOKV_CF_WRITE : NOKV_CF_DEFAULT, key, kl, val, vl, &err) != NOKV_OK)
				tap_bail("put failed: %s", err.msg);
		}
		while (nokv_flush_one(db, &err) > 0)
			;
	}
	/* binary keys, deletes and a range delete */
	for (int i = 0; i < 50; i++)
	{
		char		bk[8] = {(char) 0xff, (char) i, 0, '\n', 'x', (char) 0x80, '\\', (char) i};

		nokv_put(db, NOKV_CF_WRITE, bk, sizeof(bk), "v", 1, &err);
		make_key(key, i);
		nokv_delete(db, NOKV_CF_DEFAULT, key, strlen(key), &err);
	}
	{
		nokv_batch *b = nokv_batch_new();

		nokv_batch_delete_range(b, NOKV_CF_DEFAULT, "key001000", 9, "key001100", 9);
		ok(nokv_write(db, NULL, b, &err) == NOKV_OK, "range delete (%s)", err.msg);
		nokv_batch_free(b);
	}
	ok(nokv_compact_all(db, &err) == NOKV_OK, "compact everything (%s)", err.msg);

	/* a few writes more, left in the memtable: memtable rows */
	for (int i = 0; i < 100; i++)
	{
		size_t		kl = make_key(key, 5000 + i);
		size_t		vl = make_value(val, i, 7);

		nokv_put(db, NOKV_CF_DEFAULT, key, kl, val, vl, &err);
	}
	{
		nokv_inspector *mt;
		const nokv_memtable_info *mr;
		int			n,
					active = 0;
		bool		good = true;

		ok(nokv_inspect_live(db, &mt, &err) == NOKV_OK, "live snapshot with a busy memtable");
		n = nokv_inspect_memtables(mt, &mr);
		for (int i = 0; i < n; i++)
		{
			if (strcmp(mr[i].state, "active") == 0)
			{
				active++;
				good &= mr[i].entries == 100 && mr[i].bytes_used > 0 &&
					mr[i].capacity == o.memtable_size && mr[i].min_version > 0 &&
					mr[i].max_version == mr[i].min_version + 99 && mr[i].wal_segment > 0 &&
					mr[i].log_position == 0 && mr[i].pins == 0;
			}
			good &= mr[i].bytes_used <= mr[i].capacity && mr[i].slot >= 0 &&
				mr[i].slot < o.max_memtables;
		}
		is_int(active, 1, "exactly one active memtable");
		ok(good, "memtable rows: entries, arena use, versions, WAL segment");
		nokv_inspect_free(mt);
	}
	/* flush it and add one L0 file so both L0 and deeper levels have rows */
	ok(nokv_rotate_memtable(db, &err) == NOKV_OK && nokv_flush_one(db, &err) == 1,
	   "flush the last memtable to level 0 (%s)", err.msg);

	ok(nokv_inspect_live(db, &live, &err) == NOKV_OK, "live snapshot (%s)", err.msg);
	if (!live)
		tap_bail("no live snapshot");
	check_live_against_stats(db, live);
	{
		const nokv_level_info *lv;
		const nokv_vlog_seg_info *vs;
		int			nl = nokv_inspect_levels(live, &lv);
		int			deep = 0;
		int			nseg = nokv_inspect_vlog_segments(live, &vs);
		uint64_t	discard = 0;

		for (int l = 1; l < nl; l++)
			deep += lv[l].files > 0;
		for (int l = 0; l < nl; l++)
			tap_diag("L%d: %d files, %llu bytes, target %llu, score %.3f", l, lv[l].files,
					 (unsigned long long) lv[l].bytes, (unsigned long long) lv[l].target_bytes,
					 lv[l].score);
		ok(lv[0].files >= 1 && deep >= 1, "data in level 0 and in deeper levels (L0 %d files)", lv[0].files);
		ok(nseg >= 2, "several value-log segments (%d)", nseg);
		for (int i = 0; i < nseg; i++)
			discard += vs[i].discard;
		ok(discard > 0, "compaction recorded value-log garbage (%llu bytes)", (unsigned long long) discard);
	}
	{
		const nokv_sst_info *ss;
		int			n = nokv_inspect_sstables(live, &ss);
		bool		binary = false;

		for (int i = 0; i < n; i++)
			if (ss[i].largest_cf == NOKV_CF_WRITE && ss[i].largest_len == 8 &&
				memcmp(ss[i].largest_key, "\xff\x31\0\nx\x80\\\x31", 8) == 0)
				binary = true;
		ok(binary, "binary user keys are decoded from the internal keys");
	}
	nokv_close(db);

	/* offline, with the same level options: every figure identical */
	list_dir(dir, before);
	ok(before->n >= 5, "the directory holds %d files", before->n);
	ok(nokv_inspect_dir_opts(dir, &o, &off, &err) == NOKV_OK, "offline snapshot (%s)", err.msg);
	if (off)
	{
		const nokv_memtable_info *mr;
		nokv_manifest_info m;

		compare_inspectors(live, off, "live vs offline");
		is_int(nokv_inspect_memtables(off, &mr), 0, "offline: no memtable rows");
		nokv_inspect_manifest(off, &m);
		ok(!m.live && !m.torn_tail, "offline: manifest row is not live, no torn tail");
	}

	/* offline with the default options: same files, default targets */
	ok(nokv_inspect_dir(dir, &defaults, &err) == NOKV_OK, "offline snapshot with default options");
	if (defaults)
	{
		const nokv_level_info *lv;
		const nokv_sst_info *a,
				   *b;
		int			nl = nokv_inspect_levels(defaults, &lv);

		is_int(nl, 7, "default options: seven levels");
		ok(lv[6].target_bytes == 256u << 20 && lv[0].target_bytes == 0,
		   "default options: the bottom target is max_bytes_for_level_base (%llu)",
		   (unsigned long long) lv[6].target_bytes);
		is_int(nokv_inspect_sstables(defaults, &a), nokv_inspect_sstables(off, &b),
			   "default options: the same sstables");
	}
	list_dir(dir, after);
	ok(listings_equal(before, after), "offline inspection changed no file (names, sizes, mtimes, contents)");

	/* the engine still opens the directory afterwards */
	ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "reopen after inspection (%s)", err.msg);
	if (db)
	{
		char	   *v = NULL;
		size_t		vl;

		make_key(key, 2999);
		ok(nokv_get(db, NULL, NOKV_CF_DEFAULT, key, strlen(key), &v, &vl, &err) == NOKV_OK,
		   "data readable after reopen");
		free(v);
		nokv_close(db);
	}

	test_errors(dir);
	test_external();
	test_partitions();
	test_concurrent();

	nokv_inspect_free(live);
	nokv_inspect_free(off);
	nokv_inspect_free(defaults);
	tap_rmdir(dir);
	free(dir);
	free(before);
	free(after);
	return tap_done();
}
