/*-------------------------------------------------------------------------
 *
 * test_vlog_gc.c
 *	  The value log inside the engine: separation, reads, GC, crashes.
 *
 * Large values must read back identically through every path (memtable,
 * SST pointer, iterator both ways, after reopen); overwrites must show up
 * as exact discard bytes; GC must reclaim space without changing what any
 * reader sees, including a snapshot and an open iterator taken before it;
 * and a process SIGKILLed while writing large values or collecting must
 * lose no acknowledged value.
 *
 * test/engine/test_vlog_gc.c
 *-------------------------------------------------------------------------
 */
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nokv/nokv.h"
#include "tap.h"

#define VALUE_SIZE 3000

static void
small_options(nokv_options *o)
{
	nokv_options_init(o);
	o->memtable_size = 512 << 10;
	o->target_file_size = 256 << 10;
	o->max_bytes_for_level_base = 1 << 20;
	o->vlog_segment_size = 256 << 10;
	o->background_threads = false;
}

/* deterministic value for (key index, generation) */
static void
make_value(char *buf, int i, int gen)
{
	for (int k = 0; k < VALUE_SIZE; k++)
		buf[k] = (char) ('a' + (i * 7 + gen * 13 + k) % 26);
	snprintf(buf, 24, "v%06d-g%08d|", i, gen);
}

static bool
check(nokv_db *db, const nokv_read_options *ro, int i, int gen)
{
	char		key[32];
	char		want[VALUE_SIZE];
	char	   *v = NULL;
	size_t		n = 0;
	nokv_error	err = {0};
	int			rc;

	snprintf(key, sizeof(key), "key%06d", i);
	make_value(want, i, gen);
	rc = nokv_get(db, ro, 0, key, strlen(key), &v, &n, &err);
	if (rc != NOKV_OK || n != VALUE_SIZE || memcmp(v, want, n) != 0)
	{
		tap_diag("  %s gen %d: rc=%d (%s) len %zu", key, gen, rc, err.msg, n);
		free(v);
		return false;
	}
	free(v);
	return true;
}

typedef struct stat_find
{
	const char *name;
	double		value;
} stat_find;

static void
stat_cb(void *arg, const nokv_stat *s)
{
	stat_find  *f = arg;

	if (strcmp(s->name, f->name) == 0)
		f->value = s->value;
}

static double
stat_of(nokv_db *db, const char *name)
{
	stat_find	f = {name, -1};

	nokv_stats_foreach(db, stat_cb, &f);
	return f.value;
}

static int
count_vlog_files(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	int			n = 0;

	while (d && (e = readdir(d)) != NULL)
		n += strstr(e->d_name, ".vlog") != NULL;
	if (d)
		closedir(d);
	return n;
}

static void
test_separation_and_gc(void)
{
	char	   *dir = tap_tmpdir("vlog-gc");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	char		key[32];
	char		val[VALUE_SIZE];
	int			n = 300;
	bool		good = true;
	nokv_snapshot *snap;
	nokv_read_options snap_ro;
	nokv_iter  *it;
	int			files_before,
				files_after;
	double		bytes_before,
				bytes_after;

	small_options(&o);
	if (!ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "open (%s)", err.msg))
		return;
	for (int i = 0; i < n; i++)
	{
		snprintf(key, sizeof(key), "key%06d", i);
		make_value(val, i, 0);
		good &= nokv_put(db, 0, key, strlen(key), val, VALUE_SIZE, &err) == NOKV_OK;
	}
	nokv_put(db, 0, "small", 5, "tiny", 4, &err);
	ok(good, "%d large values written", n);
	for (int i = 0; i < n && good; i += 17)
		good &= check(db, NULL, i, 0);
	ok(good, "read back from the memtable");
	ok(nokv_compact_all(db, &err) == NOKV_OK, "flush + compact (%s)", err.msg);
	ok(stat_of(db, "value_log.appends") >= n, "values at or above the threshold went to the value log (%.0f appends)",
	   stat_of(db, "value_log.appends"));
	ok(count_vlog_files(dir) >= 1, "segment files exist");
	good = true;
	for (int i = 0; i < n && good; i++)
		good &= check(db, NULL, i, 0);
	ok(good, "every value reads back through its pointer");
	{
		char	   *v;
		size_t		vl;

		ok(nokv_get(db, NULL, 0, "small", 5, &v, &vl, &err) == NOKV_OK && vl == 4, "a small value stays inline");
		free(v);
	}
	{
		int			fwd = 0,
					bwd = 0;
		bool		vals = true;

		it = nokv_iter_new(db, NULL, 0);
		for (nokv_iter_seek_to_first(it); nokv_iter_valid(it); nokv_iter_next(it))
		{
			size_t		vl;

			nokv_iter_value(it, &vl);
			vals &= vl == VALUE_SIZE || vl == 4;
			fwd++;
		}
		for (nokv_iter_seek_to_last(it); nokv_iter_valid(it); nokv_iter_prev(it))
			bwd++;
		ok(fwd == n + 1 && bwd == n + 1 && vals && nokv_iter_status(it, NULL) == NOKV_OK,
		   "iterators resolve pointers both ways (%d/%d)", fwd, bwd);
		nokv_iter_free(it);
	}

	/* keep the old generation readable while it becomes garbage */
	snap = nokv_snapshot_acquire(db, &err);
	nokv_read_options_init(&snap_ro);
	snap_ro.snapshot = snap;

	for (int gen = 1; gen <= 3; gen++)
		for (int i = 0; i < n; i++)
		{
			snprintf(key, sizeof(key), "key%06d", i);
			make_value(val, i, gen);
			nokv_put(db, 0, key, strlen(key), val, VALUE_SIZE, &err);
		}
	ok(nokv_compact_all(db, &err) == NOKV_OK, "overwrite three times, compact");
	good = true;
	for (int i = 0; i < n && good; i += 7)
		good &= check(db, &snap_ro, i, 0);
	ok(good, "the snapshot still reads the first generation");

	nokv_snapshot_release(db, snap);
	ok(nokv_compact_range(db, 0, "", 0, "\xff", 1, &err) == NOKV_OK, "full compaction drops the old versions");
	ok(stat_of(db, "value_log.discard_bytes") > (double) n * VALUE_SIZE * 2,
	   "overwritten values are counted as discard exactly (%.0f bytes)", stat_of(db, "value_log.discard_bytes"));

	/* an iterator whose view lists tables pointing into soon-collected segments */
	it = nokv_iter_new(db, NULL, 0);
	nokv_iter_seek(it, "key000100", 9);
	files_before = count_vlog_files(dir);
	bytes_before = stat_of(db, "value_log.bytes");
	for (int round = 0; round < 50; round++)
	{
		int			rc = nokv_vlog_gc(db, 0.5, &err);

		if (rc <= 0)
		{
			if (rc < 0)
				tap_diag("gc: %s", err.msg);
			break;
		}
	}
	ok(stat_of(db, "value_log.gc.gc_runs") >= 1, "GC collected segments (%.0f)", stat_of(db, "value_log.gc.gc_runs"));
	{
		size_t		kl;
		const char *k;

		/* the iterator opened before GC is still positioned and readable */
		ok(nokv_iter_valid(it), "an iterator opened before GC is still valid");
		nokv_iter_next(it);
		k = nokv_iter_key(it, &kl);
		ok(nokv_iter_valid(it) && kl == 9 && memcmp(k, "key000101", 9) == 0 &&
		   nokv_iter_status(it, NULL) == NOKV_OK, "and keeps reading across GC");
		nokv_iter_free(it);
	}
	nokv_vlog_gc(db, 0.99, &err);	/* sweeps segments the iterator kept alive */
	files_after = count_vlog_files(dir);
	bytes_after = stat_of(db, "value_log.bytes");
	ok(files_after < files_before && bytes_after < bytes_before,
	   "space reclaimed: %d -> %d segment files, %.0f -> %.0f bytes",
	   files_before, files_after, bytes_before, bytes_after);
	ok(bytes_after < 1.5 * (double) n * (VALUE_SIZE + 40),
	   "value-log space amplification after GC is below 1.5 (%.2f)",
	   bytes_after / ((double) n * (VALUE_SIZE + 40)));
	good = true;
	for (int i = 0; i < n && good; i++)
		good &= check(db, NULL, i, 3);
	ok(good, "every value reads the newest generation after GC");
	nokv_close(db);

	ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "reopen after GC (%s)", err.msg);
	good = true;
	for (int i = 0; i < n && good; i++)
		good &= check(db, NULL, i, 3);
	ok(good, "and after reopen");
	nokv_close(db);
	tap_rmdir(dir);
	free(dir);
}

/* a child writes large values (synced) and collects; the parent kills it */
static void
crash_child(const char *dir, const char *acklog, int seed)
{
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	FILE	   *ack = fopen(acklog, "a");
	char		key[32];
	char		val[VALUE_SIZE];

	small_options(&o);
	o.background_threads = true;
	o.sync_mode = NOKV_SYNC_BATCH;
	if (nokv_open(&o, dir, &db, &err) != NOKV_OK)
		_exit(3);
	srand(seed);
	for (int op = 0;; op++)
	{
		int			i = rand() % 200;
		int			gen = seed * 1000000 + op;

		snprintf(key, sizeof(key), "key%06d", i);
		make_value(val, i, gen);
		if (nokv_put(db, 0, key, strlen(key), val, VALUE_SIZE, &err) != NOKV_OK)
			_exit(4);
		fprintf(ack, "%d %d\n", i, gen);
		fflush(ack);
		fdatasync(fileno(ack));
		if (op % 97 == 0)
			nokv_vlog_gc(db, 0.3, &err);
	}
}

static void
test_crash(void)
{
	char	   *dir = tap_tmpdir("vlog-crash");
	char		acklog[4200];
	int			latest[200];
	bool		all_good = true;

	snprintf(acklog, sizeof(acklog), "%s/../%s.ack", dir, strrchr(dir, '/') + 1);
	for (int i = 0; i < 200; i++)
		latest[i] = -1;
	for (int iter = 0; iter < 6; iter++)
	{
		pid_t		pid = fork();
		nokv_options o;
		nokv_db    *db;
		nokv_error	err = {0};
		FILE	   *ack;
		int			i,
					gen;

		if (pid == 0)
			crash_child(dir, acklog, iter + 1);
		usleep(150000 + (useconds_t) (iter * 70000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);

		ack = fopen(acklog, "r");
		while (ack && fscanf(ack, "%d %d", &i, &gen) == 2)
			if (i >= 0 && i < 200)
				latest[i] = gen;
		if (ack)
			fclose(ack);

		small_options(&o);
		if (nokv_open(&o, dir, &db, &err) != NOKV_OK)
		{
			tap_diag("reopen after kill %d: %s", iter, err.msg);
			all_good = false;
			break;
		}
		for (int k = 0; k < 200 && all_good; k++)
		{
			char		key[32];
			char	   *v = NULL;
			size_t		vl = 0;
			int			vi = -1,
						vg = -1;
			char		want[VALUE_SIZE];

			if (latest[k] < 0)
				continue;
			snprintf(key, sizeof(key), "key%06d", k);
			/* the newest acknowledged value, or the one write issued after it */
			if (nokv_get(db, NULL, 0, key, strlen(key), &v, &vl, &err) != NOKV_OK ||
				vl != VALUE_SIZE || sscanf(v, "v%06d-g%08d|", &vi, &vg) != 2 || vi != k ||
				vg < latest[k])
				all_good = false;
			else
			{
				make_value(want, k, vg);
				all_good = memcmp(v, want, VALUE_SIZE) == 0;
			}
			if (!all_good)
				tap_diag("  %s after kill %d: acked gen %d, read gen %d (%s)", key, iter, latest[k], vg, err.msg);
			free(v);
		}
		nokv_close(db);
		if (!all_good)
			break;
	}
	ok(all_good, "every acknowledged large value survives SIGKILL during writes, flushes and GC");
	unlink(acklog);
	tap_rmdir(dir);
	free(dir);
}

int
main(void)
{
	test_separation_and_gc();
	test_crash();
	return tap_done();
}
