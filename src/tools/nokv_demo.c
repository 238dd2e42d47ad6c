/*-------------------------------------------------------------------------
 *
 * nokv_demo.c
 *	  A guided tour of the standalone nokv engine, run by
 *	  scripts/quickstart.sh.
 *
 * Opens an engine in a directory, writes 100,000 keys, reads some back,
 * deletes a range, scans a prefix, forces a flush and a full compaction,
 * prints the engine's statistics, then closes and reopens the directory and
 * checks that everything survived.  Every step is verified; the program
 * exits non-zero on the first surprise, so it doubles as a smoke test.
 *
 *	  usage: nokv-demo [--keep] [DIR]
 *
 * Without DIR a fresh directory is made under $TMPDIR (or /tmp) and removed
 * at the end unless --keep is given.
 *
 * src/tools/nokv_demo.c
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nokv/nokv.h"

#define DEMO_KEYS			100000
#define DEMO_READS			10000
#define DEMO_DEL_START		10000	/* keys [10000, 20000) are deleted */
#define DEMO_DEL_END		20000
#define DEMO_PREFIX			"user:00050"	/* keys 50000..50999 */
#define DEMO_PREFIX_KEYS	1000
#define DEMO_VALUE_PAD		64

static double start_time;

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
step(const char *fmt,...)
{
	va_list		ap;

	printf("\n[%6.2fs] ", now_seconds() - start_time);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void
die(const char *what, const nokv_error *err)
{
	if (err)
		fprintf(stderr, "nokv-demo: %s failed: %s: %s\n", what,
				nokv_code_name(err->code), err->msg);
	else
		fprintf(stderr, "nokv-demo: %s\n", what);
	exit(1);
}

static size_t
make_key(char *buf, size_t size, int i)
{
	return (size_t) snprintf(buf, size, "user:%08d", i);
}

static size_t
make_value(char *buf, size_t size, int i, int round)
{
	/* round distinguishes the first write of a key from its overwrite */
	return (size_t) snprintf(buf, size, "value-%08d-r%d-%.*s", i, round,
							 DEMO_VALUE_PAD,
							 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/");
}

static int
remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void) sb;
	(void) flag;
	(void) ftw;
	return remove(path);
}

static void
remove_tree(const char *dir)
{
	if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "nokv-demo: could not remove %s: %s\n", dir, strerror(errno));
}

static nokv_db *
open_engine(const char *dir)
{
	nokv_options opts;
	nokv_db    *db = NULL;
	nokv_error	err;

	nokv_options_init(&opts);
	/* small enough that 100k keys make several memtables and SSTs */
	opts.memtable_size = 4 * 1024 * 1024;
	opts.target_file_size = 2 * 1024 * 1024;
	opts.block_cache_size = 16 * 1024 * 1024;
	if (nokv_open(&opts, dir, &db, &err) != NOKV_OK)
		die("nokv_open", &err);
	return db;
}

/* look one key up; returns true if found and checks the value when found */
static bool
lookup(nokv_db *db, int i, int round)
{
	char		key[32];
	char		want[160];
	size_t		klen = make_key(key, sizeof(key), i);
	size_t		wlen = make_value(want, sizeof(want), i, round);
	char	   *val = NULL;
	size_t		vlen = 0;
	nokv_read_options ro;
	nokv_error	err;
	int			rc;

	nokv_read_options_init(&ro);
	rc = nokv_get(db, &ro, NOKV_CF_DEFAULT, key, klen, &val, &vlen, &err);
	if (rc == NOKV_NOT_FOUND)
		return false;
	if (rc != NOKV_OK)
		die("nokv_get", &err);
	if (vlen != wlen || memcmp(val, want, vlen) != 0)
	{
		fprintf(stderr, "nokv-demo: wrong value for %s: \"%.*s\"\n",
				key, (int) vlen, val);
		exit(1);
	}
	free(val);
	return true;
}

/* key i was overwritten in round 2 if it is a multiple of 10 */
static int
round_of(int i)
{
	return i % 10 == 0 ? 2 : 1;
}

static bool
deleted(int i)
{
	return i >= DEMO_DEL_START && i < DEMO_DEL_END;
}

static void
write_keys(nokv_db *db)
{
	nokv_batch *b = nokv_batch_new();
	nokv_write_options wo;
	nokv_error	err;
	char		key[32];
	char		val[160];
	double		t0 = now_seconds();
	int			i;

	if (b == NULL)
		die("could not allocate a batch", NULL);
	memset(&wo, 0, sizeof(wo));

	step("writing %d keys in batches of 100 (user:00000000 .. user:%08d)",
		 DEMO_KEYS, DEMO_KEYS - 1);
	for (i = 0; i < DEMO_KEYS; i++)
	{
		size_t		klen = make_key(key, sizeof(key), i);
		size_t		vlen = make_value(val, sizeof(val), i, 1);

		if (nokv_batch_put(b, NOKV_CF_DEFAULT, key, klen, val, vlen) != NOKV_OK)
			die("nokv_batch_put rejected an entry", NULL);
		if (nokv_batch_count(b) == 100 || i == DEMO_KEYS - 1)
		{
			if (nokv_write(db, &wo, b, &err) != NOKV_OK)
				die("nokv_write", &err);
			nokv_batch_clear(b);
		}
	}
	printf("  %d keys in %.2fs (%.0f keys/s)\n", DEMO_KEYS,
		   now_seconds() - t0, DEMO_KEYS / (now_seconds() - t0));

	step("overwriting every 10th key with nokv_put");
	for (i = 0; i < DEMO_KEYS; i += 10)
	{
		size_t		klen = make_key(key, sizeof(key), i);
		size_t		vlen = make_value(val, sizeof(val), i, 2);

		if (nokv_put(db, NOKV_CF_DEFAULT, key, klen, val, vlen, &err) != NOKV_OK)
			die("nokv_put", &err);
	}
	printf("  %d overwrites done\n", DEMO_KEYS / 10);
	nokv_batch_free(b);
}

static void
read_keys(nokv_db *db, const char *when, bool range_deleted)
{
	unsigned int seed = 12345;
	int			found = 0;
	int			absent = 0;
	int			n;

	step("reading %d random keys back (%s)", DEMO_READS, when);
	for (n = 0; n < DEMO_READS; n++)
	{
		int			i = (int) (rand_r(&seed) % DEMO_KEYS);
		bool		gone = range_deleted && deleted(i);
		bool		hit = lookup(db, i, round_of(i));

		if (hit && gone)
		{
			fprintf(stderr, "nokv-demo: deleted key user:%08d is visible\n", i);
			exit(1);
		}
		if (!hit && !gone)
		{
			fprintf(stderr, "nokv-demo: key user:%08d is missing\n", i);
			exit(1);
		}
		if (hit)
			found++;
		else
			absent++;
	}
	if (range_deleted)
		printf("  %d found with the expected value, %d absent as expected (deleted range)\n",
			   found, absent);
	else
		printf("  all %d found with the expected value\n", found);
}

static void
delete_range(nokv_db *db)
{
	nokv_batch *b = nokv_batch_new();
	nokv_write_options wo;
	nokv_error	err;
	char		start[32];
	char		end[32];
	size_t		slen = make_key(start, sizeof(start), DEMO_DEL_START);
	size_t		elen = make_key(end, sizeof(end), DEMO_DEL_END);

	step("deleting the range [%s, %s) with one range tombstone", start, end);
	memset(&wo, 0, sizeof(wo));
	if (b == NULL ||
		nokv_batch_delete_range(b, NOKV_CF_DEFAULT, start, slen, end, elen) != NOKV_OK)
		die("nokv_batch_delete_range rejected the range", NULL);
	if (nokv_write(db, &wo, b, &err) != NOKV_OK)
		die("nokv_write (delete range)", &err);
	nokv_batch_free(b);

	if (lookup(db, DEMO_DEL_START, round_of(DEMO_DEL_START)) ||
		lookup(db, DEMO_DEL_END - 1, round_of(DEMO_DEL_END - 1)))
		die("keys inside the deleted range are still visible", NULL);
	if (!lookup(db, DEMO_DEL_START - 1, round_of(DEMO_DEL_START - 1)) ||
		!lookup(db, DEMO_DEL_END, round_of(DEMO_DEL_END)))
		die("keys next to the deleted range are gone", NULL);
	printf("  user:%08d and user:%08d are gone, their neighbours are not\n",
		   DEMO_DEL_START, DEMO_DEL_END - 1);
}

/* count (and optionally show) the keys of one prefix with a bounded iterator */
static int
scan_prefix(nokv_db *db, const char *prefix, int show)
{
	nokv_read_options ro;
	nokv_iter  *it;
	nokv_error	err;
	char		upper[64];
	size_t		plen = strlen(prefix);
	int			count = 0;

	/* upper bound: the prefix with its last byte incremented */
	memcpy(upper, prefix, plen);
	upper[plen - 1]++;

	nokv_read_options_init(&ro);
	ro.lower_bound = prefix;
	ro.lower_len = plen;
	ro.upper_bound = upper;
	ro.upper_len = plen;

	it = nokv_iter_new(db, &ro, NOKV_CF_DEFAULT);
	if (it == NULL)
		die("nokv_iter_new returned NULL", NULL);
	for (nokv_iter_seek(it, prefix, plen); nokv_iter_valid(it); nokv_iter_next(it))
	{
		size_t		klen;
		size_t		vlen;
		const char *k = nokv_iter_key(it, &klen);
		const char *v = nokv_iter_value(it, &vlen);

		if (klen < plen || memcmp(k, prefix, plen) != 0)
			die("the iterator left the prefix", NULL);
		if (count < show)
			printf("  %.*s = %.*s... (version %" PRIu64 ")\n",
				   (int) klen, k, (int) (vlen < 20 ? vlen : 20), v,
				   nokv_iter_version(it));
		count++;
	}
	if (nokv_iter_status(it, &err) != NOKV_OK)
		die("iteration", &err);
	nokv_iter_free(it);
	return count;
}

/* count every live key with a full scan */
static int
count_all(nokv_db *db)
{
	nokv_read_options ro;
	nokv_iter  *it;
	nokv_error	err;
	int			count = 0;

	nokv_read_options_init(&ro);
	it = nokv_iter_new(db, &ro, NOKV_CF_DEFAULT);
	if (it == NULL)
		die("nokv_iter_new returned NULL", NULL);
	for (nokv_iter_seek_to_first(it); nokv_iter_valid(it); nokv_iter_next(it))
		count++;
	if (nokv_iter_status(it, &err) != NOKV_OK)
		die("iteration", &err);
	nokv_iter_free(it);
	return count;
}

static void
background_work(nokv_db *db)
{
	nokv_error	err;
	int			rc;
	int			flushed = 0;

	step("rotating the memtable and flushing it (nokv_rotate_memtable + nokv_flush_one)");
	if (nokv_rotate_memtable(db, &err) != NOKV_OK)
		die("nokv_rotate_memtable", &err);
	while ((rc = nokv_flush_one(db, &err)) > 0)
		flushed++;
	if (rc < 0)
		die("nokv_flush_one", &err);
	printf("  %d memtable(s) flushed here (background threads may have flushed others)\n",
		   flushed);

	step("compacting until no level needs it (nokv_compact_all)");
	if (nokv_compact_all(db, &err) != NOKV_OK)
		die("nokv_compact_all", &err);
	printf("  done\n");
}

static const char *
human_bytes(uint64_t bytes, char *buf, size_t size)
{
	if (bytes >= 1024 * 1024)
		snprintf(buf, size, "%.1f MiB", bytes / (1024.0 * 1024.0));
	else if (bytes >= 1024)
		snprintf(buf, size, "%.1f KiB", bytes / 1024.0);
	else
		snprintf(buf, size, "%" PRIu64 " B", bytes);
	return buf;
}

static double
ratio(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * part / whole : 0.0;
}

static void
print_stats(nokv_db *db)
{
	nokv_stats	st;
	char		b1[32];
	char		b2[32];
	char		b3[32];
	int			l;

	memset(&st, 0, sizeof(st));
	nokv_get_stats(db, &st);

	step("engine statistics (nokv_get_stats)");
	printf("  %-6s %6s %12s %10s %7s\n", "level", "files", "size", "entries", "score");
	for (l = 0; l < st.num_levels && l < NOKV_MAX_LEVELS; l++)
		printf("  L%-5d %6d %12s %10" PRIu64 " %7.2f\n", l,
			   st.levels[l].files, human_bytes(st.levels[l].bytes, b1, sizeof(b1)),
			   st.levels[l].entries, st.levels[l].score);
	printf("  memtables: %s in use, %d immutable\n",
		   human_bytes(st.memtable_bytes, b1, sizeof(b1)), st.memtables_immutable);
	printf("  writes: %" PRIu64 " batches, %s of user data, last version %" PRIu64 "\n",
		   st.writes, human_bytes(st.user_bytes_written, b1, sizeof(b1)),
		   st.last_version);
	printf("  WAL: %s in %" PRIu64 " segment(s), %" PRIu64 " sync(s)\n",
		   human_bytes(st.wal_bytes, b1, sizeof(b1)), st.wal_segments, st.wal_syncs);
	printf("  flushes: %" PRIu64 " (%s), compactions: %" PRIu64 " (read %s, wrote %s, dropped %" PRIu64 " entries)\n",
		   st.flushes, human_bytes(st.flush_bytes, b1, sizeof(b1)), st.compactions,
		   human_bytes(st.compaction_bytes_read, b2, sizeof(b2)),
		   human_bytes(st.compaction_bytes_written, b3, sizeof(b3)),
		   st.compaction_entries_dropped);
	printf("  write amplification: %.2fx\n", nokv_write_amplification(&st));
	printf("  block cache: %" PRIu64 " hits, %" PRIu64 " misses (%.1f%% hit rate), %s cached\n",
		   st.block_cache_hits, st.block_cache_misses,
		   ratio(st.block_cache_hits, st.block_cache_hits + st.block_cache_misses),
		   human_bytes(st.block_cache_bytes, b1, sizeof(b1)));
	printf("  bloom filters: %" PRIu64 " of %" PRIu64 " checks answered \"absent\" (%.1f%%)\n",
		   st.bloom_useful, st.bloom_checked, ratio(st.bloom_useful, st.bloom_checked));
	printf("  gets: %" PRIu64 ", live SST data: %s, manifest: %s, stalls: %" PRIu64 "\n",
		   st.gets, human_bytes(st.live_sst_bytes, b1, sizeof(b1)),
		   human_bytes(st.manifest_bytes, b2, sizeof(b2)), st.stall_count);
}

int
main(int argc, char **argv)
{
	const char *dir = NULL;
	char		tmpl[4096];
	bool		keep = false;
	bool		made_dir = false;
	nokv_db    *db;
	int			expected_live = DEMO_KEYS - (DEMO_DEL_END - DEMO_DEL_START);
	int			n;
	int			i;

	for (i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--keep") == 0)
			keep = true;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
		{
			printf("usage: %s [--keep] [DIR]\n", argv[0]);
			return 0;
		}
		else if (dir == NULL && argv[i][0] != '-')
			dir = argv[i];
		else
		{
			fprintf(stderr, "usage: %s [--keep] [DIR]\n", argv[0]);
			return 2;
		}
	}
	if (dir == NULL)
	{
		const char *base = getenv("TMPDIR");

		snprintf(tmpl, sizeof(tmpl), "%s/nokv-demo-XXXXXX",
				 base && *base ? base : "/tmp");
		if (mkdtemp(tmpl) == NULL)
		{
			fprintf(stderr, "nokv-demo: could not create a directory from %s: %s\n",
					tmpl, strerror(errno));
			return 1;
		}
		dir = tmpl;
		made_dir = true;
	}
	else if (mkdir(dir, 0700) != 0 && errno != EEXIST)
	{
		fprintf(stderr, "nokv-demo: could not create directory \"%s\": %s\n",
				dir, strerror(errno));
		return 1;
	}

	start_time = now_seconds();
	printf("nokv %s engine demo\n", NOKV_VERSION_STRING);
	printf("data directory: %s\n", dir);

	step("opening the engine (nokv_open, own WAL, background threads)");
	db = open_engine(dir);

	write_keys(db);
	read_keys(db, "memtables and whatever was flushed meanwhile", false);
	delete_range(db);

	step("scanning the prefix \"%s\" with a bounded iterator", DEMO_PREFIX);
	n = scan_prefix(db, DEMO_PREFIX, 3);
	printf("  %d keys under the prefix\n", n);
	if (n != DEMO_PREFIX_KEYS)
		die("wrong number of keys under the prefix", NULL);

	background_work(db);
	read_keys(db, "after flush and compaction: served from SSTs", true);
	print_stats(db);

	step("counting live keys, closing, reopening and counting again");
	n = count_all(db);
	printf("  before close: %d live keys (expected %d)\n", n, expected_live);
	if (n != expected_live)
		die("wrong number of live keys", NULL);
	nokv_close(db);

	db = open_engine(dir);
	n = count_all(db);
	printf("  after reopen: %d live keys\n", n);
	if (n != expected_live)
		die("data did not survive a reopen", NULL);
	read_keys(db, "after reopen", true);
	n = scan_prefix(db, DEMO_PREFIX, 0);
	if (n != DEMO_PREFIX_KEYS)
		die("the prefix lost keys across the reopen", NULL);
	nokv_close(db);

	step("all checks passed");
	if (made_dir && !keep)
		remove_tree(dir);
	else
		printf("data kept in %s\n", dir);
	return 0;
}
