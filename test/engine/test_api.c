/*-------------------------------------------------------------------------
 *
 * test_api.c
 *	  System test of the public API surface (include/nokv/nokv.h).
 *
 * Each section opens its own engine in a fresh scratch directory and checks
 * one part of the contract: option defaults, names and codes, opening and
 * directory locking, column families, key and value size limits, batches,
 * range deletes, iterators and bounds, snapshots and reads at a version,
 * version GC after a snapshot is released, persistence across reopen,
 * statistics, external-log mode and the compaction filter.  Sections that
 * do not need background threads turn them off, so what they observe does
 * not depend on timing.
 *
 * Only what nokv.h promises (or what its comments state plainly) is
 * asserted; where the header leaves a choice open the test accepts every
 * reasonable answer and prints what the engine did.
 *
 * test/engine/test_api.c
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nokv/ikey.h"
#include "nokv/nokv.h"
#include "tap.h"

#define NCF NOKV_CF_COUNT

/* ---------- helpers ---------- */

static void
on_alarm(int sig)
{
	static const char msg[] = "Bail out! test_api timed out (a hang?)\n";

	(void) sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(254);
	_exit(255);
}

static void
small_options(nokv_options *o)
{
	nokv_options_init(o);
	o->memtable_size = 1024 * 1024;
	o->target_file_size = 128 * 1024;
	o->max_bytes_for_level_base = 512 * 1024;
	o->block_size = 1024;
	o->l0_compaction_trigger = 2;
	o->block_cache_size = 4 * 1024 * 1024;
	o->background_threads = false;
}

static const char *
code_name(int rc)
{
	if (rc < 0)
		rc = -rc;
	return nokv_code_name((nokv_code) rc);
}

/* true if rc is OK; otherwise prints the error */
static bool
succeeded(int rc, const nokv_error *err, const char *what)
{
	if (rc == NOKV_OK)
		return true;
	tap_diag("%s failed: %s (%d): %s", what, code_name(rc), rc,
			 err && err->msg[0] ? err->msg : "(no message)");
	return false;
}

static nokv_db *
open_or_diag(const nokv_options *o, const char *dir)
{
	nokv_db    *db = NULL;
	nokv_error	err;
	int			rc;

	memset(&err, 0, sizeof(err));
	rc = nokv_open(o, dir, &db, &err);
	if (!succeeded(rc, &err, "nokv_open"))
		return NULL;
	return db;
}

static int
put_str(nokv_db *db, int cf, const char *k, const char *v)
{
	nokv_error	err;
	int			rc;

	memset(&err, 0, sizeof(err));
	rc = nokv_put(db, cf, k, strlen(k), v, strlen(v), &err);
	succeeded(rc, &err, "nokv_put");
	return rc;
}

static int
del_str(nokv_db *db, int cf, const char *k)
{
	nokv_error	err;
	int			rc;

	memset(&err, 0, sizeof(err));
	rc = nokv_delete(db, cf, k, strlen(k), &err);
	succeeded(rc, &err, "nokv_delete");
	return rc;
}

/*
 * Does cf:key read as want (NULL: absent)?  ro NULL reads the latest
 * state.  Prints what was found on a mismatch.
 */
static bool
reads_as(nokv_db *db, const nokv_read_options *ro_in, int cf, const char *k, size_t klen,
		 const char *want, size_t wlen)
{
	nokv_read_options ro;
	char	   *val = NULL;
	size_t		vlen = 0;
	nokv_error	err;
	int			rc;
	bool		good;

	if (ro_in)
		ro = *ro_in;
	else
		nokv_read_options_init(&ro);
	memset(&err, 0, sizeof(err));
	rc = nokv_get(db, &ro, cf, k, klen, &val, &vlen, &err);
	if (want == NULL)
		good = rc == NOKV_NOT_FOUND;
	else
		good = rc == NOKV_OK && vlen == wlen && (wlen == 0 || memcmp(val, want, wlen) == 0) &&
			val[vlen] == '\0';
	if (!good)
	{
		if (rc == NOKV_OK)
			tap_diag("  get cf=%d key '%.*s': got %zu bytes '%.*s', expected %s", cf,
					 (int) (klen > 60 ? 60 : klen), k, vlen, (int) (vlen > 60 ? 60 : vlen),
					 val ? val : "", want ? want : "absent");
		else
			tap_diag("  get cf=%d key '%.*s': %s (%s), expected %s", cf,
					 (int) (klen > 60 ? 60 : klen), k, code_name(rc), err.msg,
					 want ? "a value" : "absent");
	}
	free(val);
	return good;
}

static bool
reads_str(nokv_db *db, const nokv_read_options *ro, int cf, const char *k, const char *want)
{
	return reads_as(db, ro, cf, k, strlen(k), want, want ? strlen(want) : 0);
}

/*
 * "key=value,key=value," for everything an iterator over cf sees, with
 * optional bounds; NULL if the iterator reported an error.  Caller frees.
 */
static char *
dump_cf(nokv_db *db, const nokv_read_options *ro_in, int cf)
{
	nokv_read_options ro;
	nokv_iter  *it;
	size_t		cap = 256,
				len = 0;
	char	   *out = malloc(cap);
	nokv_error	err;
	int			rc;

	if (ro_in)
		ro = *ro_in;
	else
		nokv_read_options_init(&ro);
	out[0] = '\0';
	it = nokv_iter_new(db, &ro, cf);
	if (it == NULL)
	{
		tap_diag("  nokv_iter_new returned NULL");
		free(out);
		return NULL;
	}
	for (nokv_iter_seek_to_first(it); nokv_iter_valid(it); nokv_iter_next(it))
	{
		size_t		kl,
					vl;
		const char *k = nokv_iter_key(it, &kl);
		const char *v = nokv_iter_value(it, &vl);

		while (len + kl + vl + 3 >= cap)
		{
			cap *= 2;
			out = realloc(out, cap);
		}
		memcpy(out + len, k, kl);
		len += kl;
		out[len++] = '=';
		memcpy(out + len, v, vl);
		len += vl;
		out[len++] = ',';
		out[len] = '\0';
	}
	memset(&err, 0, sizeof(err));
	rc = nokv_iter_status(it, &err);
	nokv_iter_free(it);
	if (!succeeded(rc, &err, "iterator"))
	{
		free(out);
		return NULL;
	}
	return out;
}

/* every column family, "cf0:...|cf1:...|cf2:..." */
static char *
dump_all(nokv_db *db, const nokv_read_options *ro)
{
	char	   *parts[NCF];
	size_t		total = 16;
	char	   *out;

	for (int cf = 0; cf < NCF; cf++)
	{
		parts[cf] = dump_cf(db, ro, cf);
		total += (parts[cf] ? strlen(parts[cf]) : 8) + 8;
	}
	out = malloc(total);
	out[0] = '\0';
	for (int cf = 0; cf < NCF; cf++)
	{
		char		head[16];

		snprintf(head, sizeof(head), "%scf%d:", cf ? "|" : "", cf);
		strcat(out, head);
		strcat(out, parts[cf] ? parts[cf] : "(error)");
		free(parts[cf]);
	}
	return out;
}

static bool
dump_is(nokv_db *db, const nokv_read_options *ro, int cf, const char *want)
{
	char	   *got = dump_cf(db, ro, cf);
	bool		good = got && strcmp(got, want) == 0;

	if (!good)
		tap_diag("  scan of cf %d: got '%s', expected '%s'", cf, got ? got : "(error)", want);
	free(got);
	return good;
}

static bool
file_exists(const char *dir, const char *name)
{
	char		path[4200];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

/* number of directory entries whose name starts with prefix / ends with suffix */
static int
count_files(const char *dir, const char *prefix, const char *suffix)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	int			n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
	{
		size_t		len = strlen(e->d_name);

		if (prefix && strncmp(e->d_name, prefix, strlen(prefix)) != 0)
			continue;
		if (suffix && (len < strlen(suffix) ||
					   strcmp(e->d_name + len - strlen(suffix), suffix) != 0))
			continue;
		n++;
	}
	closedir(d);
	return n;
}

static uint64_t
total_entries(const nokv_stats *st)
{
	uint64_t	n = 0;

	for (int l = 0; l < NOKV_MAX_LEVELS; l++)
		n += st->levels[l].entries;
	return n;
}

static int
total_files(const nokv_stats *st)
{
	int			n = 0;

	for (int l = 0; l < NOKV_MAX_LEVELS; l++)
		n += st->levels[l].files;
	return n;
}

static bool
flush_everything(nokv_db *db)
{
	nokv_error	err;
	int			rc;

	memset(&err, 0, sizeof(err));
	rc = nokv_rotate_memtable(db, &err);
	if (!succeeded(rc, &err, "nokv_rotate_memtable"))
		return false;
	for (int i = 0; i < 64; i++)
	{
		rc = nokv_flush_one(db, &err);
		if (rc < 0)
		{
			succeeded(rc, &err, "nokv_flush_one");
			return false;
		}
		if (rc == 0)
			return true;
	}
	tap_diag("nokv_flush_one kept finding work");
	return false;
}

static bool
compact_all(nokv_db *db)
{
	nokv_error	err;

	memset(&err, 0, sizeof(err));
	return succeeded(nokv_compact_all(db, &err), &err, "nokv_compact_all");
}

/* compact the whole key space of cf into the bottom level */
static bool
compact_everything(nokv_db *db, int cf)
{
	nokv_error	err;
	char		hi[16];

	memset(hi, 0xff, sizeof(hi));
	memset(&err, 0, sizeof(err));
	return succeeded(nokv_compact_range(db, cf, "", 0, hi, sizeof(hi), &err), &err,
					 "nokv_compact_range");
}

/* ---------- options, names, codes ---------- */

static void
test_options_defaults(void)
{
	nokv_options o;
	nokv_read_options ro;

	memset(&o, 0x5a, sizeof(o));
	nokv_options_init(&o);
	is_int(o.memtable_size, 64 * 1024 * 1024, "default memtable_size is 64 MiB");
	is_int(o.max_memtables, 4, "default max_memtables is 4");
	ok(!o.external_log, "default is own-log mode");
	is_int(o.sync_mode, NOKV_SYNC_OFF, "default sync_mode is NOKV_SYNC_OFF");
	is_int(o.wal_buffer_size, 1024 * 1024, "default wal_buffer_size is 1 MiB");
	is_int(o.block_size, 4000, "default block_size: a cached block fills a 4 KiB heap block");
	is_int(o.block_restart_interval, 16, "default block_restart_interval is 16");
	is_int(o.bloom_bits_per_key, 10, "default bloom_bits_per_key is 10");
	ok(o.compression, "compression is on by default");
	is_int(o.target_file_size, 64 * 1024 * 1024, "default target_file_size is 64 MiB");
	is_int(o.num_levels, 7, "default num_levels is 7");
	is_int(o.max_bytes_for_level_base, 256 * 1024 * 1024, "default max_bytes_for_level_base is 256 MiB");
	is_int(o.level_size_multiplier, 10, "default level_size_multiplier is 10");
	is_int(o.l0_compaction_trigger, 4, "default l0_compaction_trigger is 4");
	is_int(o.l0_slowdown_trigger, 20, "default l0_slowdown_trigger is 20");
	is_int(o.l0_stop_trigger, 36, "default l0_stop_trigger is 36");
	is_int(o.block_cache_size, 64 * 1024 * 1024, "default block_cache_size is 64 MiB");
	is_int(o.meta_heap_size, 16 * 1024 * 1024, "default meta_heap_size is 16 MiB");
	is_int(o.max_files, 65536, "default max_files is 65536");
	is_int(o.max_snapshots, 1024, "default max_snapshots is 1024");
	ok(o.background_threads, "background threads are on by default");
	is_int(o.compaction_threads, 1, "default compaction_threads is 1");
	is_int(o.manifest_rewrite_size, 64 * 1024 * 1024, "default manifest_rewrite_size is 64 MiB");
	ok(o.compaction_filter == NULL && o.compaction_filter_arg == NULL && o.platform == NULL,
	   "hooks default to NULL (built-in platform, no filter)");

	memset(&ro, 0x5a, sizeof(ro));
	nokv_read_options_init(&ro);
	ok(ro.snapshot == NULL && ro.version == 0, "read options default to the latest state");
	ok(ro.fill_cache, "read options fill the cache by default");
	ok(ro.lower_bound == NULL && ro.upper_bound == NULL && ro.lower_len == 0 && ro.upper_len == 0,
	   "read options default to no bounds");
	ok(strlen(NOKV_VERSION_STRING) > 0, "NOKV_VERSION_STRING is %s", NOKV_VERSION_STRING);
	ok(nokv_region_size(&o) > 0, "nokv_region_size of the defaults is %zu bytes", nokv_region_size(&o));
}

static void
test_names_and_codes(void)
{
	static const char *names[] = {"default", "lock", "write"};
	bool		distinct = true;
	bool		nonempty = true;

	for (int cf = 0; cf < NCF; cf++)
	{
		is_int(nokv_cf_from_name(names[cf]), cf, "nokv_cf_from_name(\"%s\")", names[cf]);
		is_str(nokv_cf_name(cf), names[cf], "nokv_cf_name(%d)", cf);
	}
	is_int(nokv_cf_from_name("nonexistent"), -1, "nokv_cf_from_name of an unknown name is -1");
	is_int(nokv_cf_from_name(""), -1, "nokv_cf_from_name(\"\") is -1");

	for (int c = NOKV_OK; c <= NOKV_EPOCH_CHANGED; c++)
	{
		const char *n = nokv_code_name((nokv_code) c);

		if (n == NULL || n[0] == '\0')
			nonempty = false;
		for (int d = NOKV_OK; d < c && n; d++)
		{
			const char *m = nokv_code_name((nokv_code) d);

			if (m && strcmp(m, n) == 0)
				distinct = false;
		}
	}
	ok(nonempty, "nokv_code_name is non-empty for every code");
	ok(distinct, "nokv_code_name differs between codes");
	tap_diag("code names: %s %s %s %s %s %s %s %s %s %s %s",
			 nokv_code_name(NOKV_OK), nokv_code_name(NOKV_NOT_FOUND),
			 nokv_code_name(NOKV_CORRUPTION), nokv_code_name(NOKV_IO_ERROR),
			 nokv_code_name(NOKV_INVALID_ARGUMENT), nokv_code_name(NOKV_NO_SPACE),
			 nokv_code_name(NOKV_BUSY), nokv_code_name(NOKV_NOT_SUPPORTED),
			 nokv_code_name(NOKV_CONFLICT), nokv_code_name(NOKV_SHUTDOWN),
			 nokv_code_name(NOKV_EPOCH_CHANGED));
}

/* ---------- opening ---------- */

static void
test_open_and_lock(void)
{
	char	   *dir = tap_tmpdir("api-open");
	char		sub[4200];
	char		file[4200];
	nokv_options o;
	nokv_db    *db,
			   *db2 = NULL;
	nokv_error	err;
	int			rc;
	pid_t		pid;
	int			status;

	small_options(&o);
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "nokv_open on a fresh empty directory"))
		goto out;
	ok(file_exists(dir, "CURRENT"), "a fresh engine directory has CURRENT");
	ok(file_exists(dir, "LOCK"), "a fresh engine directory has LOCK");
	ok(count_files(dir, "MANIFEST-", NULL) >= 1, "a fresh engine directory has a MANIFEST-NNNNNN");
	is_int(nokv_last_version(db), 0, "a fresh engine's last version is 0");

	/* a second engine on the same directory, same process */
	memset(&err, 0, sizeof(err));
	rc = nokv_open(&o, dir, &db2, &err);
	is_int(rc, NOKV_BUSY, "a second nokv_open of an open directory fails with NOKV_BUSY");
	ok(err.msg[0] != '\0', "the NOKV_BUSY error has a message");
	tap_diag("busy message: %s", err.msg);
	if (rc == NOKV_OK)
		nokv_close(db2);

	/* ... and from another process */
	fflush(stdout);
	pid = fork();
	if (pid == 0)
	{
		nokv_db    *cdb = NULL;
		nokv_error	cerr;
		int			crc;

		memset(&cerr, 0, sizeof(cerr));
		crc = nokv_open(&o, dir, &cdb, &cerr);
		_exit(crc == NOKV_BUSY ? 0 : 10 + crc);
	}
	ok(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	   WEXITSTATUS(status) == 0,
	   "nokv_open from another process fails with NOKV_BUSY while the engine is open");

	ok(put_str(db, NOKV_CF_DEFAULT, "k", "v") == NOKV_OK, "a write after the failed opens");
	nokv_close(db);
	db = open_or_diag(&o, dir);
	ok(db != NULL, "the directory opens again after nokv_close");
	if (db)
	{
		ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "k", "v"), "and the data is there");
		nokv_close(db);
	}

	/* a directory that does not exist yet is created */
	snprintf(sub, sizeof(sub), "%s/new/engine", dir);
	db = open_or_diag(&o, sub);
	ok(db != NULL, "nokv_open creates a missing directory (%s)", sub);
	if (db)
	{
		ok(put_str(db, NOKV_CF_DEFAULT, "a", "b") == NOKV_OK, "and it works");
		nokv_close(db);
	}

	/* a path that is a regular file */
	snprintf(file, sizeof(file), "%s/plainfile", dir);
	{
		int			fd = open(file, O_CREAT | O_WRONLY, 0644);

		if (fd >= 0)
			close(fd);
	}
	db2 = NULL;
	memset(&err, 0, sizeof(err));
	rc = nokv_open(&o, file, &db2, &err);
	ok(rc != NOKV_OK, "nokv_open on a regular file fails (%s)", code_name(rc));
	ok(err.msg[0] != '\0', "with a message: %s", err.msg);
	if (rc == NOKV_OK && db2)
		nokv_close(db2);

out:
	tap_rmdir(dir);
	free(dir);
}

/* ---------- column families, keys, values ---------- */

static void
test_column_families(void)
{
	char	   *dir = tap_tmpdir("api-cf");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err;
	char	   *val = NULL;
	size_t		vlen = 0;
	nokv_read_options ro;
	int			rc;

	small_options(&o);
	nokv_read_options_init(&ro);
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "open for the column-family tests"))
		goto out;

	ok(put_str(db, NOKV_CF_DEFAULT, "same", "in-default") == NOKV_OK &&
	   put_str(db, NOKV_CF_LOCK, "same", "in-lock") == NOKV_OK &&
	   put_str(db, NOKV_CF_WRITE, "same", "in-write") == NOKV_OK,
	   "put the same key into the three column families");
	ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "same", "in-default") &&
	   reads_str(db, NULL, NOKV_CF_LOCK, "same", "in-lock") &&
	   reads_str(db, NULL, NOKV_CF_WRITE, "same", "in-write"),
	   "each column family has its own value");
	ok(put_str(db, NOKV_CF_LOCK, "only-lock", "x") == NOKV_OK &&
	   reads_str(db, NULL, NOKV_CF_DEFAULT, "only-lock", NULL) &&
	   reads_str(db, NULL, NOKV_CF_WRITE, "only-lock", NULL),
	   "a key written to one column family is absent from the others");
	ok(del_str(db, NOKV_CF_LOCK, "same") == NOKV_OK &&
	   reads_str(db, NULL, NOKV_CF_LOCK, "same", NULL) &&
	   reads_str(db, NULL, NOKV_CF_DEFAULT, "same", "in-default") &&
	   reads_str(db, NULL, NOKV_CF_WRITE, "same", "in-write"),
	   "a delete in one column family leaves the others alone");
	ok(dump_is(db, NULL, NOKV_CF_LOCK, "only-lock=x,"),
	   "an iterator over one column family sees only its keys");

	ok(put_str(db, NOKV_CF_DEFAULT, "same", "overwritten") == NOKV_OK &&
	   reads_str(db, NULL, NOKV_CF_DEFAULT, "same", "overwritten"),
	   "an overwrite returns the new value");
	ok(del_str(db, NOKV_CF_DEFAULT, "never-written") == NOKV_OK,
	   "deleting a key that does not exist succeeds");

	/* after flush + compaction the namespaces stay apart */
	ok(compact_all(db), "compact_all");
	ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "same", "overwritten") &&
	   reads_str(db, NULL, NOKV_CF_LOCK, "same", NULL) &&
	   reads_str(db, NULL, NOKV_CF_WRITE, "same", "in-write") &&
	   reads_str(db, NULL, NOKV_CF_LOCK, "only-lock", "x"),
	   "column families stay separate in SSTs");

	/* invalid column families */
	memset(&err, 0, sizeof(err));
	rc = nokv_put(db, NOKV_CF_COUNT, "k", 1, "v", 1, &err);
	is_int(rc, NOKV_INVALID_ARGUMENT, "nokv_put into cf %d is NOKV_INVALID_ARGUMENT", NOKV_CF_COUNT);
	memset(&err, 0, sizeof(err));
	rc = nokv_put(db, -1, "k", 1, "v", 1, &err);
	is_int(rc, NOKV_INVALID_ARGUMENT, "nokv_put into cf -1 is NOKV_INVALID_ARGUMENT");
	memset(&err, 0, sizeof(err));
	rc = nokv_get(db, &ro, NOKV_CF_COUNT, "k", 1, &val, &vlen, &err);
	is_int(rc, NOKV_INVALID_ARGUMENT, "nokv_get from cf %d is NOKV_INVALID_ARGUMENT", NOKV_CF_COUNT);
	if (rc == NOKV_OK)
		free(val);
	{
		nokv_iter  *it = nokv_iter_new(db, &ro, NOKV_CF_COUNT);
		bool		refused = it == NULL;

		if (it)
		{
			memset(&err, 0, sizeof(err));
			nokv_iter_seek_to_first(it);
			refused = !nokv_iter_valid(it) && nokv_iter_status(it, &err) != NOKV_OK;
			nokv_iter_free(it);
		}
		ok(refused, "nokv_iter_new on cf %d returns NULL or an iterator in error", NOKV_CF_COUNT);
	}
	{
		nokv_batch *b = nokv_batch_new();

		rc = nokv_batch_put(b, 7, "k", 1, "v", 1);
		if (rc == NOKV_OK)
		{
			nokv_write_options wo;

			memset(&wo, 0, sizeof(wo));
			memset(&err, 0, sizeof(err));
			rc = nokv_write(db, &wo, b, &err);
		}
		is_int(rc, NOKV_INVALID_ARGUMENT, "a batch entry for cf 7 is refused (at batch_put or write)");
		nokv_batch_free(b);
	}

	nokv_close(db);
out:
	tap_rmdir(dir);
	free(dir);
}

static void
test_key_value_limits(void)
{
	char	   *dir = tap_tmpdir("api-limits");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err;
	char	   *maxkey = malloc(NOKV_MAX_KEY_SIZE + 2);
	size_t		bigv_len = 4 * 1024 * 1024 + 123;
	char	   *bigv = malloc(bigv_len);
	int			rc;

	/* 'z' sorts after every other key of this section */
	memset(maxkey, 'z', NOKV_MAX_KEY_SIZE + 1);
	maxkey[NOKV_MAX_KEY_SIZE + 1] = '\0';
	for (size_t i = 0; i < bigv_len; i++)
		bigv[i] = (char) (i * 131 + (i >> 12));

	small_options(&o);
	o.memtable_size = 16 * 1024 * 1024;
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "open for the size-limit tests"))
		goto out;

	/* empty keys and empty values are ordinary */
	memset(&err, 0, sizeof(err));
	rc = nokv_put(db, NOKV_CF_DEFAULT, "", 0, "empty-key", 9, &err);
	ok(succeeded(rc, &err, "put of the empty key"), "the empty key can be written");
	ok(reads_as(db, NULL, NOKV_CF_DEFAULT, "", 0, "empty-key", 9), "the empty key reads back");
	memset(&err, 0, sizeof(err));
	rc = nokv_put(db, NOKV_CF_DEFAULT, "empty-value", 11, "", 0, &err);
	ok(succeeded(rc, &err, "put of an empty value"), "an empty value can be written");
	ok(reads_as(db, NULL, NOKV_CF_DEFAULT, "empty-value", 11, "", 0),
	   "an empty value reads back as a present, zero-length value (not NOT_FOUND)");
	ok(dump_is(db, NULL, NOKV_CF_DEFAULT, "=empty-key,empty-value=,"),
	   "the iterator shows the empty key first and the empty value");

	/* the largest key */
	memset(&err, 0, sizeof(err));
	rc = nokv_put(db, NOKV_CF_DEFAULT, maxkey, NOKV_MAX_KEY_SIZE, "max", 3, &err);
	ok(succeeded(rc, &err, "put of a NOKV_MAX_KEY_SIZE key"), "a key of NOKV_MAX_KEY_SIZE (%d) bytes is accepted",
	   NOKV_MAX_KEY_SIZE);
	ok(reads_as(db, NULL, NOKV_CF_DEFAULT, maxkey, NOKV_MAX_KEY_SIZE, "max", 3),
	   "the largest key reads back from the memtable");

	memset(&err, 0, sizeof(err));
	rc = nokv_put(db, NOKV_CF_DEFAULT, maxkey, NOKV_MAX_KEY_SIZE + 1, "x", 1, &err);
	is_int(rc, NOKV_INVALID_ARGUMENT, "nokv_put of a NOKV_MAX_KEY_SIZE + 1 key is NOKV_INVALID_ARGUMENT");
	ok(rc == NOKV_OK || err.msg[0] != '\0', "with a message: %s", err.msg);
	memset(&err, 0, sizeof(err));
	rc = nokv_delete(db, NOKV_CF_DEFAULT, maxkey, NOKV_MAX_KEY_SIZE + 1, &err);
	is_int(rc, NOKV_INVALID_ARGUMENT, "nokv_delete of a NOKV_MAX_KEY_SIZE + 1 key is NOKV_INVALID_ARGUMENT");
	{
		nokv_batch *b = nokv_batch_new();

		rc = nokv_batch_put(b, NOKV_CF_DEFAULT, maxkey, NOKV_MAX_KEY_SIZE + 1, "x", 1);
		if (rc == NOKV_OK)
		{
			nokv_write_options wo;

			memset(&wo, 0, sizeof(wo));
			memset(&err, 0, sizeof(err));
			rc = nokv_write(db, &wo, b, &err);
		}
		is_int(rc, NOKV_INVALID_ARGUMENT,
			   "a batch with a NOKV_MAX_KEY_SIZE + 1 key is refused (at batch_put or write)");
		nokv_batch_free(b);
	}
	ok(reads_as(db, NULL, NOKV_CF_DEFAULT, maxkey, NOKV_MAX_KEY_SIZE, "max", 3),
	   "the refused writes changed nothing");

	/* a value above NOKV_MAX_VALUE_SIZE: mapped but never touched */
	{
		size_t		huge = (size_t) NOKV_MAX_VALUE_SIZE + 1;
		void	   *m = mmap(NULL, huge, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (m != MAP_FAILED)
		{
			memset(&err, 0, sizeof(err));
			rc = nokv_put(db, NOKV_CF_DEFAULT, "huge", 4, m, huge, &err);
			is_int(rc, NOKV_INVALID_ARGUMENT,
				   "a value of NOKV_MAX_VALUE_SIZE + 1 bytes is NOKV_INVALID_ARGUMENT");
			munmap(m, huge);
		}
		else
			ok(false, "mmap for the oversized value failed");
	}

	/* a multi-MiB value, in the memtable, in an SST, after reopen */
	memset(&err, 0, sizeof(err));
	rc = nokv_put(db, NOKV_CF_WRITE, "big", 3, bigv, bigv_len, &err);
	ok(succeeded(rc, &err, "put of a 4 MiB value"), "a %zu-byte value is accepted", bigv_len);
	ok(reads_as(db, NULL, NOKV_CF_WRITE, "big", 3, bigv, bigv_len), "it reads back from the memtable");
	nokv_close(db);
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "reopen (WAL replay of the big value and the largest key)"))
		goto out;
	ok(reads_as(db, NULL, NOKV_CF_WRITE, "big", 3, bigv, bigv_len), "the big value survives WAL replay");
	ok(reads_as(db, NULL, NOKV_CF_DEFAULT, maxkey, NOKV_MAX_KEY_SIZE, "max", 3),
	   "the largest key survives WAL replay");
	ok(flush_everything(db), "flush to an SST");
	ok(reads_as(db, NULL, NOKV_CF_WRITE, "big", 3, bigv, bigv_len), "the big value reads back from an SST");
	ok(reads_as(db, NULL, NOKV_CF_DEFAULT, maxkey, NOKV_MAX_KEY_SIZE, "max", 3),
	   "the largest key reads back from an SST");
	ok(reads_as(db, NULL, NOKV_CF_DEFAULT, "", 0, "empty-key", 9) &&
	   reads_as(db, NULL, NOKV_CF_DEFAULT, "empty-value", 11, "", 0),
	   "the empty key and the empty value read back from an SST");
	ok(compact_all(db) && compact_everything(db, NOKV_CF_DEFAULT) &&
	   compact_everything(db, NOKV_CF_WRITE), "compact everything");
	ok(reads_as(db, NULL, NOKV_CF_WRITE, "big", 3, bigv, bigv_len) &&
	   reads_as(db, NULL, NOKV_CF_DEFAULT, maxkey, NOKV_MAX_KEY_SIZE, "max", 3) &&
	   reads_as(db, NULL, NOKV_CF_DEFAULT, "", 0, "empty-key", 9),
	   "big value, largest key and empty key survive compaction");
	{
		nokv_read_options ro;
		nokv_iter  *it;
		size_t		kl = 0;

		nokv_read_options_init(&ro);
		it = nokv_iter_new(db, &ro, NOKV_CF_DEFAULT);
		if (it)
		{
			nokv_iter_seek_to_last(it);
			if (nokv_iter_valid(it))
				nokv_iter_key(it, &kl);
			ok(kl == NOKV_MAX_KEY_SIZE, "seek_to_last lands on the largest key (%zu bytes)", kl);
			nokv_iter_seek(it, maxkey, NOKV_MAX_KEY_SIZE - 1);
			kl = 0;
			if (nokv_iter_valid(it))
				nokv_iter_key(it, &kl);
			ok(kl == NOKV_MAX_KEY_SIZE, "seek to its prefix lands on it");
			nokv_iter_free(it);
		}
		else
			ok(false, "nokv_iter_new");
	}
	nokv_close(db);
out:
	free(maxkey);
	free(bigv);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- batches ---------- */

static void
test_batches(void)
{
	char	   *dir = tap_tmpdir("api-batch");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err;
	nokv_batch *b = nokv_batch_new();
	nokv_write_options wo;
	size_t		empty_size,
				size1;
	uint64_t	v0;
	int			rc;

	memset(&wo, 0, sizeof(wo));
	small_options(&o);
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL && b != NULL, "open and nokv_batch_new for the batch tests"))
		goto out;

	is_int(nokv_batch_count(b), 0, "a new batch is empty");
	empty_size = nokv_batch_size(b);
	ok(nokv_batch_put(b, NOKV_CF_DEFAULT, "a", 1, "1", 1) == NOKV_OK, "batch_put");
	size1 = nokv_batch_size(b);
	ok(size1 > empty_size, "batch size grows with an entry (%zu -> %zu)", empty_size, size1);
	ok(nokv_batch_put(b, NOKV_CF_LOCK, "b", 1, "2", 1) == NOKV_OK &&
	   nokv_batch_delete(b, NOKV_CF_DEFAULT, "c", 1) == NOKV_OK &&
	   nokv_batch_delete_range(b, NOKV_CF_WRITE, "d", 1, "f", 1) == NOKV_OK,
	   "batch_put, batch_delete, batch_delete_range");
	is_int(nokv_batch_count(b), 4, "nokv_batch_count counts every entry, range deletes included");
	ok(nokv_batch_size(b) > size1, "batch size keeps growing");
	nokv_batch_clear(b);
	is_int(nokv_batch_count(b), 0, "nokv_batch_clear empties the batch");
	is_int(nokv_batch_size(b), empty_size, "and resets its size");

	/* one batch across column families, applied together */
	ok(put_str(db, NOKV_CF_DEFAULT, "c", "old") == NOKV_OK &&
	   put_str(db, NOKV_CF_WRITE, "d", "old") == NOKV_OK &&
	   put_str(db, NOKV_CF_WRITE, "e", "old") == NOKV_OK &&
	   put_str(db, NOKV_CF_WRITE, "f", "kept") == NOKV_OK, "setup writes");
	nokv_batch_put(b, NOKV_CF_DEFAULT, "a", 1, "1", 1);
	nokv_batch_put(b, NOKV_CF_LOCK, "b", 1, "2", 1);
	nokv_batch_delete(b, NOKV_CF_DEFAULT, "c", 1);
	nokv_batch_delete_range(b, NOKV_CF_WRITE, "d", 1, "f", 1);
	v0 = nokv_last_version(db);
	memset(&err, 0, sizeof(err));
	rc = nokv_write(db, &wo, b, &err);
	ok(succeeded(rc, &err, "nokv_write"), "a mixed batch is written");
	ok(nokv_last_version(db) > v0, "the last version advanced (%" PRIu64 " -> %" PRIu64 ")",
	   v0, nokv_last_version(db));
	ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "a", "1") &&
	   reads_str(db, NULL, NOKV_CF_LOCK, "b", "2") &&
	   reads_str(db, NULL, NOKV_CF_DEFAULT, "c", NULL) &&
	   reads_str(db, NULL, NOKV_CF_WRITE, "d", NULL) &&
	   reads_str(db, NULL, NOKV_CF_WRITE, "e", NULL) &&
	   reads_str(db, NULL, NOKV_CF_WRITE, "f", "kept"),
	   "every entry of the batch took effect");

	/* the batch can be written again after clear + refill; and reused */
	nokv_batch_clear(b);
	memset(&err, 0, sizeof(err));
	v0 = nokv_last_version(db);
	rc = nokv_write(db, &wo, b, &err);
	ok(rc == NOKV_OK || rc == NOKV_INVALID_ARGUMENT,
	   "writing an empty batch is harmless (%s)", code_name(rc));
	ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "a", "1"), "and changes nothing");

	/* a synced write */
	nokv_batch_put(b, NOKV_CF_DEFAULT, "synced", 6, "yes", 3);
	wo.sync = true;
	memset(&err, 0, sizeof(err));
	rc = nokv_write(db, &wo, b, &err);
	ok(succeeded(rc, &err, "synced nokv_write"), "a write with wo.sync = true");
	memset(&err, 0, sizeof(err));
	rc = nokv_sync_wal(db, &err);
	ok(succeeded(rc, &err, "nokv_sync_wal"), "nokv_sync_wal");
	{
		nokv_stats	st;

		nokv_get_stats(db, &st);
		ok(st.wal_syncs > 0, "the WAL was synced (%" PRIu64 " syncs)", st.wal_syncs);
	}
	nokv_close(db);
	db = open_or_diag(&o, dir);
	if (ok(db != NULL, "reopen"))
	{
		ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "synced", "yes") &&
		   reads_str(db, NULL, NOKV_CF_WRITE, "d", NULL) &&
		   reads_str(db, NULL, NOKV_CF_WRITE, "f", "kept") &&
		   reads_str(db, NULL, NOKV_CF_LOCK, "b", "2"),
		   "batches survive reopen");
		nokv_close(db);
	}
out:
	nokv_batch_free(b);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- range deletes ---------- */

static void
put_range(nokv_db *db, int cf, int from, int to, const char *tag)
{
	for (int i = from; i < to; i++)
	{
		char		k[16],
					v[32];

		snprintf(k, sizeof(k), "r%02d", i);
		snprintf(v, sizeof(v), "%s%02d", tag, i);
		put_str(db, cf, k, v);
	}
}

/* the keys r<from>..r<to-1> of cf that read as present, as "r03,r04," */
static char *
present_keys(nokv_db *db, int cf, int from, int to)
{
	char	   *out = calloc(1, (size_t) (to - from) * 5 + 1);
	nokv_read_options ro;

	nokv_read_options_init(&ro);
	for (int i = from; i < to; i++)
	{
		char		k[16];
		char	   *val = NULL;
		size_t		vlen;
		nokv_error	err;

		snprintf(k, sizeof(k), "r%02d", i);
		memset(&err, 0, sizeof(err));
		if (nokv_get(db, &ro, cf, k, strlen(k), &val, &vlen, &err) == NOKV_OK)
		{
			strcat(out, k);
			strcat(out, ",");
		}
		free(val);
	}
	return out;
}

static bool
present_is(nokv_db *db, int cf, const char *want)
{
	char	   *got = present_keys(db, cf, 0, 20);
	bool		good = strcmp(got, want) == 0;

	if (!good)
		tap_diag("  present keys of cf %d: '%s', expected '%s'", cf, got, want);
	free(got);
	return good;
}

static int
delete_range_str(nokv_db *db, int cf, const char *s, const char *e)
{
	nokv_batch *b = nokv_batch_new();
	nokv_write_options wo;
	nokv_error	err;
	int			rc;

	memset(&wo, 0, sizeof(wo));
	memset(&err, 0, sizeof(err));
	rc = nokv_batch_delete_range(b, cf, s, strlen(s), e, strlen(e));
	if (rc == NOKV_OK)
		rc = nokv_write(db, &wo, b, &err);
	nokv_batch_free(b);
	return rc;
}

static void
test_delete_range(void)
{
	char	   *dir = tap_tmpdir("api-range");
	nokv_options o;
	nokv_db    *db;
	int			rc;
	const char *all = "r00,r01,r02,r03,r04,r05,r06,r07,r08,r09,r10,r11,r12,r13,r14,r15,r16,r17,r18,r19,";
	const char *after1 = "r00,r01,r02,r03,r04,r10,r11,r12,r13,r14,r15,r16,r17,r18,r19,";

	small_options(&o);
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "open for the range-delete tests"))
		goto out;
	put_range(db, NOKV_CF_DEFAULT, 0, 20, "d");
	put_range(db, NOKV_CF_LOCK, 0, 20, "l");

	ok(delete_range_str(db, NOKV_CF_DEFAULT, "r05", "r10") == NOKV_OK, "delete_range [r05, r10) of cf default");
	ok(present_is(db, NOKV_CF_DEFAULT, after1), "r05..r09 are gone, r04 and r10 stay (end is exclusive)");
	ok(present_is(db, NOKV_CF_LOCK, all), "the same keys in cf lock are untouched");
	ok(dump_is(db, NULL, NOKV_CF_DEFAULT,
			   "r00=d00,r01=d01,r02=d02,r03=d03,r04=d04,r10=d10,r11=d11,r12=d12,r13=d13,"
			   "r14=d14,r15=d15,r16=d16,r17=d17,r18=d18,r19=d19,"),
	   "an iterator skips the deleted range");

	ok(put_str(db, NOKV_CF_DEFAULT, "r07", "again") == NOKV_OK &&
	   reads_str(db, NULL, NOKV_CF_DEFAULT, "r07", "again"),
	   "a put after the range delete is visible");

	/* empty and inverted ranges delete nothing */
	rc = delete_range_str(db, NOKV_CF_DEFAULT, "r12", "r12");
	ok(rc == NOKV_OK || rc == NOKV_INVALID_ARGUMENT, "an empty range [r12, r12): %s", code_name(rc));
	rc = delete_range_str(db, NOKV_CF_DEFAULT, "r15", "r13");
	ok(rc == NOKV_OK || rc == NOKV_INVALID_ARGUMENT, "an inverted range [r15, r13): %s", code_name(rc));
	ok(present_is(db, NOKV_CF_DEFAULT, "r00,r01,r02,r03,r04,r07,r10,r11,r12,r13,r14,r15,r16,r17,r18,r19,"),
	   "empty and inverted ranges delete nothing");

	/* tombstone in the memtable over data in SSTs, then everything compacted */
	ok(flush_everything(db), "flush");
	ok(delete_range_str(db, NOKV_CF_DEFAULT, "r14", "r17") == NOKV_OK, "delete_range [r14, r17) over SST data");
	ok(present_is(db, NOKV_CF_DEFAULT, "r00,r01,r02,r03,r04,r07,r10,r11,r12,r13,r17,r18,r19,"),
	   "a memtable tombstone hides keys in SSTs");
	ok(flush_everything(db), "flush the tombstone");
	ok(present_is(db, NOKV_CF_DEFAULT, "r00,r01,r02,r03,r04,r07,r10,r11,r12,r13,r17,r18,r19,"),
	   "an SST tombstone hides keys in an older SST");
	ok(put_str(db, NOKV_CF_DEFAULT, "r15", "new") == NOKV_OK, "rewrite r15 after the tombstone");
	ok(compact_all(db) && compact_everything(db, NOKV_CF_DEFAULT), "compact everything");
	ok(present_is(db, NOKV_CF_DEFAULT, "r00,r01,r02,r03,r04,r07,r10,r11,r12,r13,r15,r17,r18,r19,"),
	   "after compaction the ranges stay deleted and the newer put stays");
	ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "r15", "new") &&
	   reads_str(db, NULL, NOKV_CF_DEFAULT, "r07", "again"), "with the newer values");
	ok(present_is(db, NOKV_CF_LOCK, all), "cf lock still untouched");

	/* a range covering everything, including the empty key */
	ok(put_str(db, NOKV_CF_WRITE, "", "e") == NOKV_OK &&
	   put_str(db, NOKV_CF_WRITE, "zz", "z") == NOKV_OK, "write the empty key and 'zz' to cf write");
	{
		nokv_batch *b = nokv_batch_new();
		nokv_write_options wo;
		nokv_error	err;

		memset(&wo, 0, sizeof(wo));
		memset(&err, 0, sizeof(err));
		rc = nokv_batch_delete_range(b, NOKV_CF_WRITE, "", 0, "\xff\xff", 2);
		if (rc == NOKV_OK)
			rc = nokv_write(db, &wo, b, &err);
		nokv_batch_free(b);
		ok(rc == NOKV_OK, "delete_range [\"\", \\xff\\xff) of cf write");
	}
	ok(dump_is(db, NULL, NOKV_CF_WRITE, ""), "cf write is empty, the empty key included");

	nokv_close(db);
	db = open_or_diag(&o, dir);
	if (ok(db != NULL, "reopen"))
	{
		ok(present_is(db, NOKV_CF_DEFAULT, "r00,r01,r02,r03,r04,r07,r10,r11,r12,r13,r15,r17,r18,r19,") &&
		   dump_is(db, NULL, NOKV_CF_WRITE, ""),
		   "range deletes survive reopen (SST and WAL)");
		nokv_close(db);
	}
out:
	tap_rmdir(dir);
	free(dir);
}

/* ---------- iterators ---------- */

static bool
iter_at(nokv_iter *it, const char *want_key, const char *want_val, const char *what)
{
	size_t		kl,
				vl;
	const char *k,
			   *v;

	if (want_key == NULL)
	{
		nokv_error	err;
		int			rc;

		if (nokv_iter_valid(it))
		{
			k = nokv_iter_key(it, &kl);
			tap_diag("  %s: iterator at '%.*s', expected the end", what, (int) kl, k);
			return false;
		}
		memset(&err, 0, sizeof(err));
		rc = nokv_iter_status(it, &err);
		return succeeded(rc, &err, "nokv_iter_status");
	}
	if (!nokv_iter_valid(it))
	{
		tap_diag("  %s: iterator invalid, expected '%s'", what, want_key);
		return false;
	}
	k = nokv_iter_key(it, &kl);
	v = nokv_iter_value(it, &vl);
	if (kl != strlen(want_key) || memcmp(k, want_key, kl) != 0 ||
		(want_val && (vl != strlen(want_val) || memcmp(v, want_val, vl) != 0)))
	{
		tap_diag("  %s: iterator at '%.*s'='%.*s', expected '%s'='%s'", what, (int) kl, k,
				 (int) vl, v, want_key, want_val ? want_val : "*");
		return false;
	}
	return true;
}

static void
test_iterators(void)
{
	char	   *dir = tap_tmpdir("api-iter");
	nokv_options o;
	nokv_db    *db;
	nokv_read_options ro;
	nokv_iter  *it;

	small_options(&o);
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "open for the iterator tests"))
		goto out;

	/* layers: "a c e" compacted, "b d" in an L0 file, "c" rewritten and "e" deleted in memtables */
	put_str(db, NOKV_CF_DEFAULT, "a", "a1");
	put_str(db, NOKV_CF_DEFAULT, "c", "c1");
	put_str(db, NOKV_CF_DEFAULT, "e", "e1");
	put_str(db, NOKV_CF_DEFAULT, "x", "x1");
	ok(compact_all(db) && compact_everything(db, NOKV_CF_DEFAULT), "layer 1 compacted");
	put_str(db, NOKV_CF_DEFAULT, "b", "b2");
	put_str(db, NOKV_CF_DEFAULT, "d", "d2");
	ok(flush_everything(db), "layer 2 flushed");
	put_str(db, NOKV_CF_DEFAULT, "c", "c3");
	del_str(db, NOKV_CF_DEFAULT, "x");
	{
		nokv_error	err;

		memset(&err, 0, sizeof(err));
		ok(succeeded(nokv_rotate_memtable(db, &err), &err, "rotate"),
		   "layer 3 in an immutable memtable");
	}
	del_str(db, NOKV_CF_DEFAULT, "e");
	put_str(db, NOKV_CF_DEFAULT, "f", "f4");
	put_str(db, NOKV_CF_LOCK, "bb", "other-cf");

	nokv_read_options_init(&ro);
	it = nokv_iter_new(db, &ro, NOKV_CF_DEFAULT);
	if (!ok(it != NULL, "nokv_iter_new"))
		goto close;
	ok(dump_is(db, NULL, NOKV_CF_DEFAULT, "a=a1,b=b2,c=c3,d=d2,f=f4,"),
	   "a full scan merges every layer, newest value wins, deletes hidden");

	nokv_iter_seek_to_first(it);
	ok(iter_at(it, "a", "a1", "seek_to_first"), "seek_to_first");
	nokv_iter_next(it);
	nokv_iter_next(it);
	ok(iter_at(it, "c", "c3", "next x2"), "next, next -> c (newest value)");
	nokv_iter_prev(it);
	ok(iter_at(it, "b", "b2", "prev"), "prev turns around -> b");
	nokv_iter_next(it);
	ok(iter_at(it, "c", "c3", "next"), "next turns around again -> c");
	ok(nokv_iter_version(it) > 0 && nokv_iter_version(it) <= nokv_last_version(db),
	   "nokv_iter_version is within (0, last_version]");
	nokv_iter_seek_to_last(it);
	ok(iter_at(it, "f", "f4", "seek_to_last"), "seek_to_last -> f");
	nokv_iter_prev(it);
	ok(iter_at(it, "d", "d2", "prev from f"), "prev skips the deleted e -> d");
	nokv_iter_next(it);
	nokv_iter_next(it);
	ok(iter_at(it, NULL, NULL, "next past the end"), "next past the last key -> invalid, status OK");
	nokv_iter_seek(it, "bb", 2);
	ok(iter_at(it, "c", "c3", "seek(bb)"), "seek(bb) -> c (first >= bb)");
	nokv_iter_seek(it, "c", 1);
	ok(iter_at(it, "c", "c3", "seek(c)"), "seek(c) -> c (exact)");
	nokv_iter_seek(it, "e", 1);
	ok(iter_at(it, "f", "f4", "seek(e)"), "seek(e) skips the deleted e -> f");
	nokv_iter_seek(it, "g", 1);
	ok(iter_at(it, NULL, NULL, "seek(g)"), "seek past the last key -> invalid");
	nokv_iter_seek(it, "", 0);
	ok(iter_at(it, "a", "a1", "seek(\"\")"), "seek(\"\") -> first key");
	nokv_iter_seek_for_prev(it, "bb", 2);
	ok(iter_at(it, "b", "b2", "seek_for_prev(bb)"), "seek_for_prev(bb) -> b (last <= bb)");
	nokv_iter_seek_for_prev(it, "d", 1);
	ok(iter_at(it, "d", "d2", "seek_for_prev(d)"), "seek_for_prev(d) -> d (exact)");
	nokv_iter_seek_for_prev(it, "e", 1);
	ok(iter_at(it, "d", "d2", "seek_for_prev(e)"), "seek_for_prev(e) skips the deleted e -> d");
	nokv_iter_seek_for_prev(it, "0", 1);
	ok(iter_at(it, NULL, NULL, "seek_for_prev(0)"), "seek_for_prev before the first key -> invalid");
	nokv_iter_seek_for_prev(it, "zzz", 3);
	ok(iter_at(it, "f", "f4", "seek_for_prev(zzz)"), "seek_for_prev after the last key -> last key");
	nokv_iter_seek_to_first(it);
	nokv_iter_prev(it);
	ok(iter_at(it, NULL, NULL, "prev before the first"), "prev before the first key -> invalid");

	/* an iterator is a consistent view: later writes and compactions do not show */
	put_str(db, NOKV_CF_DEFAULT, "a", "changed");
	put_str(db, NOKV_CF_DEFAULT, "bb", "new");
	del_str(db, NOKV_CF_DEFAULT, "d");
	ok(compact_all(db) && compact_everything(db, NOKV_CF_DEFAULT), "writes and compactions while it is open");
	nokv_iter_seek_to_first(it);
	ok(iter_at(it, "a", "a1", "view: a"), "the open iterator still sees the old a");
	nokv_iter_seek(it, "b", 1);
	nokv_iter_next(it);
	ok(iter_at(it, "c", "c3", "view: after b"), "... does not see the new bb");
	nokv_iter_seek(it, "d", 1);
	ok(iter_at(it, "d", "d2", "view: d"), "... still sees the deleted d");
	nokv_iter_free(it);
	ok(dump_is(db, NULL, NOKV_CF_DEFAULT, "a=changed,b=b2,bb=new,c=c3,f=f4,"),
	   "a new iterator sees the new state");

	/* bounds [b, d) */
	nokv_read_options_init(&ro);
	ro.lower_bound = "b";
	ro.lower_len = 1;
	ro.upper_bound = "d";
	ro.upper_len = 1;
	put_str(db, NOKV_CF_DEFAULT, "d", "d5");
	it = nokv_iter_new(db, &ro, NOKV_CF_DEFAULT);
	if (ok(it != NULL, "iterator with bounds [b, d)"))
	{
		nokv_iter_seek_to_first(it);
		ok(iter_at(it, "b", "b2", "bounded seek_to_first"), "bounded seek_to_first -> b");
		nokv_iter_seek_to_last(it);
		ok(iter_at(it, "c", "c3", "bounded seek_to_last"), "bounded seek_to_last -> c (upper is exclusive)");
		nokv_iter_next(it);
		ok(iter_at(it, NULL, NULL, "next at upper bound"), "next stops at the upper bound");
		nokv_iter_seek(it, "a", 1);
		ok(iter_at(it, "b", "b2", "bounded seek(a)"), "seek below the lower bound -> first key in bounds");
		nokv_iter_seek(it, "d", 1);
		ok(iter_at(it, NULL, NULL, "bounded seek(d)"), "seek to the upper bound -> invalid");
		nokv_iter_seek_for_prev(it, "z", 1);
		ok(iter_at(it, "c", "c3", "bounded seek_for_prev(z)"), "seek_for_prev above the upper bound -> last key in bounds");
		nokv_iter_seek_for_prev(it, "a", 1);
		ok(iter_at(it, NULL, NULL, "bounded seek_for_prev(a)"), "seek_for_prev below the lower bound -> invalid");
		nokv_iter_seek_to_first(it);
		nokv_iter_prev(it);
		ok(iter_at(it, NULL, NULL, "prev at lower bound"), "prev stops at the lower bound");
		nokv_iter_free(it);
	}
	ro.lower_bound = NULL;
	ro.lower_len = 0;
	ro.upper_bound = "bb";
	ro.upper_len = 2;
	ok(dump_is(db, &ro, NOKV_CF_DEFAULT, "a=changed,b=b2,"), "an upper bound alone");
	ro.lower_bound = "bb";
	ro.lower_len = 2;
	ro.upper_bound = NULL;
	ro.upper_len = 0;
	ok(dump_is(db, &ro, NOKV_CF_DEFAULT, "bb=new,c=c3,d=d5,f=f4,"), "a lower bound alone");
	ro.lower_bound = "c";
	ro.lower_len = 1;
	ro.upper_bound = "c";
	ro.upper_len = 1;
	ok(dump_is(db, &ro, NOKV_CF_DEFAULT, ""), "equal bounds give an empty iteration");
	ok(dump_is(db, NULL, NOKV_CF_LOCK, "bb=other-cf,") && dump_is(db, NULL, NOKV_CF_WRITE, ""),
	   "other column families see only their own keys");

close:
	nokv_close(db);
out:
	tap_rmdir(dir);
	free(dir);
}

/* ---------- snapshots, versions, version GC ---------- */

static void
test_snapshots(void)
{
	char	   *dir = tap_tmpdir("api-snap");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err;
	nokv_snapshot *s1;
	nokv_read_options ro_s1,
				ro;
	uint64_t	v1,
				v2,
				prev;
	bool		mono = true;

	small_options(&o);
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "open for the snapshot tests"))
		goto out;

	/* nokv_last_version grows with every acknowledged write */
	prev = nokv_last_version(db);
	for (int i = 0; i < 50; i++)
	{
		char		k[16];
		uint64_t	v;

		snprintf(k, sizeof(k), "m%02d", i);
		put_str(db, i % NCF, k, "v");
		v = nokv_last_version(db);
		if (v <= prev)
			mono = false;
		prev = v;
	}
	ok(mono, "nokv_last_version increases with every write (now %" PRIu64 ")", prev);

	/* reads at a version */
	put_str(db, NOKV_CF_DEFAULT, "ver", "one");
	v1 = nokv_last_version(db);
	put_str(db, NOKV_CF_DEFAULT, "ver", "two");
	v2 = nokv_last_version(db);
	del_str(db, NOKV_CF_DEFAULT, "ver");
	nokv_read_options_init(&ro);
	ro.version = v1;
	ok(reads_str(db, &ro, NOKV_CF_DEFAULT, "ver", "one"), "a read at version %" PRIu64 " sees 'one'", v1);
	ro.version = v2;
	ok(reads_str(db, &ro, NOKV_CF_DEFAULT, "ver", "two"), "a read at version %" PRIu64 " sees 'two'", v2);
	ro.version = v1 - 1;
	ok(reads_str(db, &ro, NOKV_CF_DEFAULT, "ver", NULL), "a read just before the first write sees nothing");
	ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "ver", NULL), "the latest state has it deleted");
	ro.version = v1;
	ok(dump_is(db, &ro, NOKV_CF_DEFAULT,
			   "m00=v,m03=v,m06=v,m09=v,m12=v,m15=v,m18=v,m21=v,m24=v,m27=v,m30=v,m33=v,"
			   "m36=v,m39=v,m42=v,m45=v,m48=v,ver=one,"),
	   "an iterator at a version sees that version");

	/* a snapshot keeps its view through overwrites, deletes, flush and compaction */
	put_str(db, NOKV_CF_DEFAULT, "sa", "old-a");
	put_str(db, NOKV_CF_DEFAULT, "sb", "old-b");
	put_str(db, NOKV_CF_LOCK, "sc", "old-c");
	memset(&err, 0, sizeof(err));
	s1 = nokv_snapshot_acquire(db, &err);
	if (!ok(s1 != NULL, "nokv_snapshot_acquire"))
	{
		tap_diag("  %s", err.msg);
		goto close;
	}
	is_int(nokv_snapshot_version(s1), nokv_last_version(db),
		   "the snapshot's version is the last published version");
	nokv_read_options_init(&ro_s1);
	ro_s1.snapshot = s1;
	put_str(db, NOKV_CF_DEFAULT, "sa", "new-a");
	del_str(db, NOKV_CF_DEFAULT, "sb");
	del_str(db, NOKV_CF_LOCK, "sc");
	put_str(db, NOKV_CF_DEFAULT, "sd", "new-d");
	ok(delete_range_str(db, NOKV_CF_DEFAULT, "m", "n") == NOKV_OK, "delete_range over m*");
	ok(reads_str(db, &ro_s1, NOKV_CF_DEFAULT, "sa", "old-a") &&
	   reads_str(db, &ro_s1, NOKV_CF_DEFAULT, "sb", "old-b") &&
	   reads_str(db, &ro_s1, NOKV_CF_LOCK, "sc", "old-c") &&
	   reads_str(db, &ro_s1, NOKV_CF_DEFAULT, "sd", NULL) &&
	   reads_str(db, &ro_s1, NOKV_CF_DEFAULT, "m00", "v"),
	   "the snapshot sees the old state (memtable)");
	ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "sa", "new-a") &&
	   reads_str(db, NULL, NOKV_CF_DEFAULT, "sb", NULL) &&
	   reads_str(db, NULL, NOKV_CF_LOCK, "sc", NULL) &&
	   reads_str(db, NULL, NOKV_CF_DEFAULT, "m00", NULL),
	   "the latest state sees the new one");
	ok(flush_everything(db), "flush");
	ok(reads_str(db, &ro_s1, NOKV_CF_DEFAULT, "sa", "old-a") &&
	   reads_str(db, &ro_s1, NOKV_CF_DEFAULT, "sb", "old-b") &&
	   reads_str(db, &ro_s1, NOKV_CF_LOCK, "sc", "old-c") &&
	   reads_str(db, &ro_s1, NOKV_CF_DEFAULT, "m03", "v"),
	   "the snapshot sees the old state after a flush");
	ok(compact_all(db) && compact_everything(db, NOKV_CF_DEFAULT) &&
	   compact_everything(db, NOKV_CF_LOCK), "full compaction with the snapshot held");
	ok(reads_str(db, &ro_s1, NOKV_CF_DEFAULT, "sa", "old-a") &&
	   reads_str(db, &ro_s1, NOKV_CF_DEFAULT, "sb", "old-b") &&
	   reads_str(db, &ro_s1, NOKV_CF_LOCK, "sc", "old-c") &&
	   reads_str(db, &ro_s1, NOKV_CF_DEFAULT, "sd", NULL) &&
	   reads_str(db, &ro_s1, NOKV_CF_DEFAULT, "m06", "v"),
	   "the snapshot sees the old state after full compaction");
	ok(dump_is(db, &ro_s1, NOKV_CF_LOCK, "m01=v,m04=v,m07=v,m10=v,m13=v,m16=v,m19=v,m22=v,"
			   "m25=v,m28=v,m31=v,m34=v,m37=v,m40=v,m43=v,m46=v,m49=v,sc=old-c,"),
	   "an iterator on the snapshot sees the old state");
	ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "sa", "new-a") &&
	   reads_str(db, NULL, NOKV_CF_DEFAULT, "sd", "new-d") &&
	   reads_str(db, NULL, NOKV_CF_DEFAULT, "m06", NULL),
	   "and the latest state is unaffected");
	{
		nokv_stats	st;

		nokv_get_stats(db, &st);
		is_int(st.snapshots, 1, "stats count one live snapshot");
	}
	nokv_snapshot_release(db, s1);
	{
		nokv_stats	st;

		nokv_get_stats(db, &st);
		is_int(st.snapshots, 0, "and none after the release");
	}

close:
	nokv_close(db);
out:
	tap_rmdir(dir);
	free(dir);
}

/*
 * Version GC: a held snapshot pins old versions through compaction; after
 * it is released, compaction may drop them.  Counted through the level
 * statistics (entries in SSTs), which are exact after a full compaction.
 */
static void
test_version_gc(void)
{
	char	   *dir = tap_tmpdir("api-gc");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err;
	nokv_snapshot *s = NULL;
	nokv_read_options ro;
	nokv_stats	st;
	uint64_t	held_entries,
				after_entries,
				dropped_before;
	uint64_t	snap_version;
	const int	nkeys = 200;
	bool		good = true;

	small_options(&o);
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "open for the version-GC test"))
		goto out;
	for (int round = 0; round < 3; round++)
	{
		if (round == 1)
		{
			memset(&err, 0, sizeof(err));
			s = nokv_snapshot_acquire(db, &err);
			if (!ok(s != NULL, "snapshot after the first round of writes"))
				goto close;
		}
		for (int i = 0; i < nkeys; i++)
		{
			char		k[16],
						v[32];

			snprintf(k, sizeof(k), "gc%04d", i);
			snprintf(v, sizeof(v), "round%d-%04d", round, i);
			put_str(db, NOKV_CF_DEFAULT, k, v);
		}
		ok(flush_everything(db), "round %d flushed", round);
	}
	snap_version = nokv_snapshot_version(s);
	ok(compact_all(db) && compact_everything(db, NOKV_CF_DEFAULT), "full compaction with the snapshot held");
	nokv_get_stats(db, &st);
	held_entries = total_entries(&st);
	dropped_before = st.compaction_entries_dropped;
	ok(held_entries >= (uint64_t) nkeys * 2,
	   "with the snapshot held the SSTs keep at least two versions per key (%" PRIu64 " entries for %d keys)",
	   held_entries, nkeys);
	nokv_read_options_init(&ro);
	ro.snapshot = s;
	for (int i = 0; i < nkeys && good; i++)
	{
		char		k[16],
					v[32];

		snprintf(k, sizeof(k), "gc%04d", i);
		snprintf(v, sizeof(v), "round0-%04d", i);
		good = reads_str(db, &ro, NOKV_CF_DEFAULT, k, v);
	}
	ok(good, "the snapshot still reads the first round after compaction");

	nokv_snapshot_release(db, s);
	ok(compact_everything(db, NOKV_CF_DEFAULT), "full compaction after the release");
	nokv_get_stats(db, &st);
	after_entries = total_entries(&st);
	tap_diag("SST entries: %" PRIu64 " with the snapshot, %" PRIu64 " after release + compaction; "
			 "entries dropped by compaction: %" PRIu64 " -> %" PRIu64,
			 held_entries, after_entries, dropped_before, st.compaction_entries_dropped);
	ok(after_entries < held_entries, "releasing the snapshot lets compaction drop old versions");
	ok(st.compaction_entries_dropped > dropped_before, "compaction_entries_dropped grew");
	good = true;
	for (int i = 0; i < nkeys && good; i++)
	{
		char		k[16],
					v[32];

		snprintf(k, sizeof(k), "gc%04d", i);
		snprintf(v, sizeof(v), "round2-%04d", i);
		good = reads_str(db, NULL, NOKV_CF_DEFAULT, k, v);
	}
	ok(good, "the latest values are intact");
	{
		/* not a promise of the API: informational only */
		char	   *val = NULL;
		size_t		vlen = 0;
		int			rc;

		nokv_read_options_init(&ro);
		ro.version = snap_version;
		memset(&err, 0, sizeof(err));
		rc = nokv_get(db, &ro, NOKV_CF_DEFAULT, "gc0000", 6, &val, &vlen, &err);
		tap_diag("a read at the released snapshot's version %" PRIu64 " now gives %s%s%.*s",
				 snap_version, code_name(rc), rc == NOKV_OK ? ": " : "",
				 rc == NOKV_OK ? (int) vlen : 0, rc == NOKV_OK ? val : "");
		free(val);
	}
close:
	nokv_close(db);
out:
	tap_rmdir(dir);
	free(dir);
}

/* ---------- persistence ---------- */

static void
test_reopen(void)
{
	char	   *dir = tap_tmpdir("api-reopen");
	nokv_options o;
	nokv_db    *db;
	char	   *before = NULL,
			   *after;
	uint64_t	v_before;

	small_options(&o);
	o.memtable_size = 256 * 1024;
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "open for the reopen tests"))
		goto out;
	/* some data in SSTs, some only in the WAL */
	for (int i = 0; i < 3000; i++)
	{
		char		k[32],
					v[64];

		snprintf(k, sizeof(k), "p%05d", i);
		snprintf(v, sizeof(v), "value-%d-%0*d", i, i % 40, 7);
		put_str(db, i % NCF, k, v);
		if (i == 1500)
			compact_all(db);
		if (i % 7 == 3)
			del_str(db, (i - 3) % NCF, "p00000");
	}
	delete_range_str(db, NOKV_CF_LOCK, "p00100", "p00200");
	before = dump_all(db, NULL);
	v_before = nokv_last_version(db);
	nokv_close(db);

	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "reopen"))
		goto out;
	after = dump_all(db, NULL);
	ok(before && after && strcmp(before, after) == 0, "every column family reads the same after reopen (WAL + SST)");
	ok(nokv_last_version(db) >= v_before, "nokv_last_version does not go back (%" PRIu64 " -> %" PRIu64 ")",
	   v_before, nokv_last_version(db));
	free(after);
	put_str(db, NOKV_CF_DEFAULT, "after-reopen", "yes");
	ok(nokv_last_version(db) > v_before, "a write after reopen gets a newer version");
	ok(compact_all(db), "compact_all");
	free(before);
	before = dump_all(db, NULL);
	nokv_close(db);

	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "second reopen"))
		goto out;
	after = dump_all(db, NULL);
	ok(before && after && strcmp(before, after) == 0, "everything reads the same after compaction + reopen");
	free(after);
	nokv_close(db);

	/* reopen many times in a row without writing */
	for (int i = 0; i < 5; i++)
	{
		db = open_or_diag(&o, dir);
		if (db == NULL)
			break;
		nokv_close(db);
	}
	db = open_or_diag(&o, dir);
	if (ok(db != NULL, "five empty reopen cycles"))
	{
		after = dump_all(db, NULL);
		ok(before && after && strcmp(before, after) == 0, "state unchanged by empty reopen cycles");
		free(after);
		nokv_close(db);
	}
out:
	free(before);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- statistics and background-work entry points ---------- */

static void
test_stats(void)
{
	char	   *dir = tap_tmpdir("api-stats");
	nokv_options o;
	nokv_db    *db;
	nokv_stats	st;
	nokv_error	err;
	uint64_t	user_bytes = 0;
	const int	nkeys = 3000;
	int			rc;

	small_options(&o);
	o.memtable_size = 256 * 1024;
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "open for the statistics tests"))
		goto out;
	nokv_get_stats(db, &st);
	is_int(st.num_levels, o.num_levels, "num_levels matches the options");
	is_int(total_files(&st), 0, "a fresh engine has no SST");

	memset(&err, 0, sizeof(err));
	rc = nokv_flush_one(db, &err);
	is_int(rc, 0, "nokv_flush_one with nothing to flush returns 0");
	rc = nokv_compact_step(db, &err);
	is_int(rc, 0, "nokv_compact_step with nothing to compact returns 0");
	is_int(nokv_pending_work(db), 0, "no pending work in a fresh engine");

	/* even keys only, so odd keys fall inside the files' key ranges */
	for (int i = 0; i < nkeys; i++)
	{
		char		k[32],
					v[128];

		snprintf(k, sizeof(k), "key%06d", i * 2);
		snprintf(v, sizeof(v), "%0100d", i);
		put_str(db, NOKV_CF_DEFAULT, k, v);
		user_bytes += strlen(k) + strlen(v);
		nokv_get_stats(db, &st);
		if (st.memtables_immutable >= 2)
			flush_everything(db);
	}
	memset(&err, 0, sizeof(err));
	rc = nokv_rotate_memtable(db, &err);
	ok(succeeded(rc, &err, "nokv_rotate_memtable"), "rotate");
	ok((nokv_pending_work(db) & NOKV_WORK_FLUSH) != 0, "after a rotation a flush is pending");
	rc = nokv_flush_one(db, &err);
	is_int(rc, 1, "nokv_flush_one flushes it and returns 1");
	while ((rc = nokv_flush_one(db, &err)) == 1)
		;
	ok(rc == 0 && (nokv_pending_work(db) & NOKV_WORK_FLUSH) == 0, "then no flush is pending");

	ok(compact_all(db), "compact_all");
	nokv_get_stats(db, &st);
	ok(total_files(&st) > 0, "after compact_all the levels hold files (%d)", total_files(&st));
	ok(st.levels[0].files < o.l0_compaction_trigger,
	   "fewer L0 files than the trigger (%d < %d)", st.levels[0].files, o.l0_compaction_trigger);
	is_int(st.memtables_immutable, 0, "no immutable memtable after compact_all");
	is_int(total_entries(&st), nkeys, "the levels hold exactly one entry per key");
	is_int(nokv_pending_work(db) & NOKV_WORK_COMPACT, 0, "no compaction is pending");
	{
		uint64_t	bytes = 0;

		for (int l = 0; l < NOKV_MAX_LEVELS; l++)
		{
			bytes += st.levels[l].bytes;
			if (st.levels[l].files)
				tap_diag("L%d: %d files, %" PRIu64 " bytes, %" PRIu64 " entries, score %.2f", l,
						 st.levels[l].files, st.levels[l].bytes, st.levels[l].entries,
						 st.levels[l].score);
		}
		ok(bytes > 0 && st.live_sst_bytes > 0, "level bytes %" PRIu64 ", live SST bytes %" PRIu64,
		   bytes, st.live_sst_bytes);
	}
	ok(st.flushes > 0 && st.flush_bytes > 0, "flushes %" PRIu64 ", flush bytes %" PRIu64,
	   st.flushes, st.flush_bytes);
	ok(st.writes >= (uint64_t) nkeys, "writes %" PRIu64 " >= %d", st.writes, nkeys);
	ok(st.user_bytes_written >= user_bytes, "user bytes written %" PRIu64 " >= %" PRIu64,
	   st.user_bytes_written, user_bytes);
	ok(st.wal_bytes >= user_bytes, "WAL bytes %" PRIu64 " cover the user bytes", st.wal_bytes);
	ok(nokv_write_amplification(&st) >= 1.0, "write amplification %.2f >= 1",
	   nokv_write_amplification(&st));
	ok(st.manifest_bytes > 0, "manifest bytes %" PRIu64, st.manifest_bytes);
	is_int(st.last_version, nokv_last_version(db), "stats.last_version is nokv_last_version");
	ok(st.memtable_bytes < o.memtable_size * (uint64_t) o.max_memtables,
	   "memtable bytes %" PRIu64 " within the budget", st.memtable_bytes);
	ok(!st.write_stalled, "not stalled");

	/* repeated reads hit the block cache; absent keys are answered by blooms */
	{
		uint64_t	gets0 = st.gets,
					hits0 = st.block_cache_hits,
					bloom0 = st.bloom_checked,
					useful0 = st.bloom_useful;
		bool		good = true;

		for (int r = 0; r < 20; r++)
			good = good && reads_str(db, NULL, NOKV_CF_DEFAULT, "key000020",
									 "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000010");
		ok(good, "20 reads of one key");
		for (int i = 0; i < 200; i++)
		{
			char		k[32];

			snprintf(k, sizeof(k), "key%06d", i * 2 + 1);
			good = good && reads_str(db, NULL, NOKV_CF_DEFAULT, k, NULL);
		}
		ok(good, "200 reads of absent keys inside the key range");
		nokv_get_stats(db, &st);
		ok(st.gets >= gets0 + 220, "gets counted (%" PRIu64 " -> %" PRIu64 ")", gets0, st.gets);
		ok(st.block_cache_hits > hits0, "block cache hits after repeated reads (%" PRIu64 " -> %" PRIu64 ", misses %" PRIu64 ")",
		   hits0, st.block_cache_hits, st.block_cache_misses);
		ok(st.block_cache_bytes > 0, "the block cache holds %" PRIu64 " bytes", st.block_cache_bytes);
		ok(st.bloom_checked > bloom0 && st.bloom_useful > useful0,
		   "bloom filters consulted (%" PRIu64 ") and useful (%" PRIu64 ") for absent keys",
		   st.bloom_checked - bloom0, st.bloom_useful - useful0);
	}
	nokv_close(db);
out:
	tap_rmdir(dir);
	free(dir);
}

/* ---------- external-log mode ---------- */

typedef struct ext_batch
{
	uint32_t	log_id;
	uint64_t	position;
	uint64_t	version;
	const char *ops;			/* "+cf:key=value" / "-cf:key" / "~cf:start:end", ';' separated */
} ext_batch;

static const ext_batch ext_batches[] = {
	{0, 100, 1, "+0:a=a1;+0:b=b1;+0:c1=c1;+0:c2=c2;+1:x=x1"},
	{0, 200, 2, "+0:a=a2;-0:b;~0:c:d"},
	{0, 300, 3, "+0:e=e3;+2:w=w3"},
	{0, 400, 4, "+0:f=f4"},
	{1, 50, 5, "+0:g=g5"},
};

static int
ext_apply(nokv_db *db, const ext_batch *eb)
{
	nokv_batch *b = nokv_batch_new();
	nokv_write_options wo;
	nokv_error	err;
	char		buf[256];
	char	   *save = NULL;
	int			rc = NOKV_OK;

	snprintf(buf, sizeof(buf), "%s", eb->ops);
	for (char *op = strtok_r(buf, ";", &save); op && rc == NOKV_OK; op = strtok_r(NULL, ";", &save))
	{
		int			cf = op[1] - '0';
		char	   *k = op + 3;

		if (op[0] == '+')
		{
			char	   *eq = strchr(k, '=');

			*eq = '\0';
			rc = nokv_batch_put(b, cf, k, strlen(k), eq + 1, strlen(eq + 1));
		}
		else if (op[0] == '-')
			rc = nokv_batch_delete(b, cf, k, strlen(k));
		else
		{
			char	   *colon = strchr(k, ':');

			*colon = '\0';
			rc = nokv_batch_delete_range(b, cf, k, strlen(k), colon + 1, strlen(colon + 1));
		}
	}
	if (rc == NOKV_OK)
	{
		memset(&wo, 0, sizeof(wo));
		wo.log_id = eb->log_id;
		wo.log_position = eb->position;
		wo.version = eb->version;
		memset(&err, 0, sizeof(err));
		rc = nokv_write(db, &wo, b, &err);
		if (rc != NOKV_OK)
			tap_diag("external write (log %u position %" PRIu64 " version %" PRIu64 "): %s: %s",
					 eb->log_id, eb->position, eb->version, code_name(rc), err.msg);
	}
	nokv_batch_free(b);
	return rc;
}

static bool
state_is(nokv_db *db, const char *want)
{
	char	   *got = dump_all(db, NULL);
	bool		good = strcmp(got, want) == 0;

	if (!good)
		tap_diag("  state '%s', expected '%s'", got, want);
	free(got);
	return good;
}

/*
 * All entries of an external-log batch share its version, so a key may
 * appear only once in it.  The write path checks that only for batches not
 * built in key order.
 */
static void
test_external_log_batch_order(void)
{
	char	   *dir = tap_tmpdir("api-ext-order");
	nokv_options o;
	nokv_db    *db;
	ext_batch	eb;

	small_options(&o);
	o.external_log = true;
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "batch order: open in external-log mode"))
		goto out;
	eb = (ext_batch) {0, 100, 1, "+0:bad=v1;+0:m=m1;+0:bad=v2"};
	is_int(ext_apply(db, &eb), NOKV_INVALID_ARGUMENT, "batch order: a key twice in one batch is refused");
	eb = (ext_batch) {0, 100, 1, "+0:m=m1;+1:m=m1;+0:bad=v1;-0:m"};
	is_int(ext_apply(db, &eb), NOKV_INVALID_ARGUMENT,
		   "batch order: so are a put and a delete of one key with others between");
	ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "bad", NULL) && reads_str(db, NULL, NOKV_CF_DEFAULT, "m", NULL),
	   "batch order: refused batches wrote nothing");
	eb = (ext_batch) {0, 100, 1, "+1:z=z1;+0:y=y1;~0:q:r;+0:m=m1;~0:b:c"};
	is_int(ext_apply(db, &eb), NOKV_OK, "batch order: a batch out of key order without a key twice is applied");
	eb = (ext_batch) {0, 200, 2, "+0:a=a2;+0:b=b2;+1:a=a2;~0:x:y"};
	is_int(ext_apply(db, &eb), NOKV_OK, "batch order: an ascending batch is applied");
	ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "m", "m1") && reads_str(db, NULL, 1, "z", "z1") &&
	   reads_str(db, NULL, NOKV_CF_DEFAULT, "y", "y1") && reads_str(db, NULL, NOKV_CF_DEFAULT, "b", "b2") &&
	   reads_str(db, NULL, 1, "a", "a2"), "batch order: both batches are visible");
	nokv_close(db);
out:
	tap_rmdir(dir);
	free(dir);
}

/* the key "r<n>" and value "v<n>.<tag>" of entry i of the sequence from, from + step, ... */
typedef struct ascending_kv
{
	char		k[16];
	char		v[24];
} ascending_kv;

static ascending_kv
ascending_entry(int from, int step, int i, char tag)
{
	ascending_kv e;
	int			n = from + i * step;

	snprintf(e.k, sizeof(e.k), "r%06d", n);
	snprintf(e.v, sizeof(e.v), "v%d.%c", n, tag);
	return e;
}

/* put count entries of the sequence into b, ascending */
static void
put_ascending(nokv_batch *b, int from, int count, int step, char tag)
{
	for (int i = 0; i < count; i++)
	{
		ascending_kv e = ascending_entry(from, step, i, tag);

		if (nokv_batch_put(b, NOKV_CF_DEFAULT, e.k, strlen(e.k), e.v, strlen(e.v)) != NOKV_OK)
			tap_bail("nokv_batch_put failed");
	}
}

/* does key "r<n>" read "v<n>.<tag>" (tag 0: absent) for every n of the sequence? */
static bool
reads_ascending(nokv_db *db, const nokv_read_options *ro, int from, int count, int step, char tag)
{
	for (int i = 0; i < count; i++)
	{
		ascending_kv e = ascending_entry(from, step, i, tag);

		if (!reads_str(db, ro, NOKV_CF_DEFAULT, e.k, tag ? e.v : NULL))
			return false;
	}
	return true;
}

/*
 * Ascending batches of 8 or more entries go into the memtable as runs (the
 * memtable's own tests cover the run itself): a version per entry in
 * own-log mode, replayed from the WAL after a reopen, and one version per
 * batch in external-log mode, re-applied as an external log's replay does.
 */
static void
test_ascending_batches(void)
{
	char	   *dir = tap_tmpdir("api-runs");
	char	   *xdir = tap_tmpdir("api-runs-ext");
	nokv_options o;
	nokv_db    *db;
	nokv_batch *b = nokv_batch_new();
	nokv_error	err;
	nokv_write_options wo;
	nokv_read_options ro;
	uint64_t	first = 0;

	small_options(&o);
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "ascending batches: open"))
		goto out;
	put_ascending(b, 0, 300, 2, 'a');
	ok(nokv_write(db, NULL, b, &err) == NOKV_OK, "ascending batches: 300 puts in key order");
	nokv_batch_clear(b);
	put_ascending(b, 1, 300, 2, 'b');
	ok(nokv_write(db, NULL, b, &err) == NOKV_OK,
	   "ascending batches: 300 more, each between two of the first batch");
	nokv_batch_clear(b);
	put_ascending(b, 0, 100, 6, 'c');
	ok(nokv_write(db, NULL, b, &err) == NOKV_OK,
	   "ascending batches: 100 new versions of keys already there");
	first = nokv_last_version(db) - 99;
	ok(reads_ascending(db, NULL, 1, 300, 2, 'b') && reads_ascending(db, NULL, 0, 100, 6, 'c') &&
	   reads_ascending(db, NULL, 2, 100, 6, 'a') && reads_ascending(db, NULL, 4, 100, 6, 'a'),
	   "ascending batches: every key reads its newest value");
	nokv_read_options_init(&ro);
	ro.version = first + 49;
	ok(reads_ascending(db, &ro, 0, 50, 6, 'c') && reads_ascending(db, &ro, 300, 50, 6, 'a'),
	   "ascending batches: each entry has its own version (first 50 of the batch at first + 49)");
	nokv_close(db);
	db = open_or_diag(&o, dir);
	ok(db != NULL && reads_ascending(db, NULL, 1, 300, 2, 'b') && reads_ascending(db, NULL, 0, 100, 6, 'c') &&
	   reads_ascending(db, NULL, 2, 100, 6, 'a'),
	   "ascending batches: the same after a reopen (WAL replay)");
	if (db)
		nokv_close(db);

	o.external_log = true;
	db = open_or_diag(&o, xdir);
	if (!ok(db != NULL, "ascending batches: open in external-log mode"))
		goto out;
	memset(&wo, 0, sizeof(wo));
	nokv_batch_clear(b);
	put_ascending(b, 0, 200, 1, 'x');
	wo.log_position = 100;
	wo.version = 10;
	ok(nokv_write(db, &wo, b, &err) == NOKV_OK && nokv_write(db, &wo, b, &err) == NOKV_OK,
	   "ascending batches: an external-log batch of 200, applied twice (replay)");
	nokv_batch_clear(b);
	put_ascending(b, 100, 200, 1, 'y');
	wo.log_position = 200;
	wo.version = 20;
	ok(nokv_write(db, &wo, b, &err) == NOKV_OK, "ascending batches: a second one overlapping it");
	nokv_read_options_init(&ro);
	ro.version = 10;
	ok(reads_ascending(db, NULL, 0, 100, 1, 'x') && reads_ascending(db, NULL, 100, 200, 1, 'y') &&
	   reads_ascending(db, &ro, 0, 200, 1, 'x') && reads_ascending(db, &ro, 200, 100, 1, 0),
	   "ascending batches: one version per external batch, each key once");

	/* a write that expects a memtable epoch */
	{
		uint64_t	epoch = nokv_memtable_epoch(db);

		nokv_batch_clear(b);
		put_ascending(b, 1000, 10, 1, 'e');
		wo.log_position = 300;
		wo.version = 30;
		wo.memtable_epoch = epoch;
		ok(nokv_write(db, &wo, b, &err) == NOKV_OK && nokv_memtable_epoch(db) == epoch,
		   "memtable epoch: a write under the current epoch is applied, the epoch stays");
		ok(nokv_rotate_memtable(db, &err) == NOKV_OK && nokv_memtable_epoch(db) != epoch,
		   "memtable epoch: replacing the memtable changes it");
		nokv_batch_clear(b);
		put_ascending(b, 2000, 10, 1, 'e');
		wo.log_position = 400;
		wo.version = 40;
		is_int(nokv_write(db, &wo, b, &err), NOKV_EPOCH_CHANGED,
			   "memtable epoch: a write expecting the old epoch is refused");
		ok(reads_ascending(db, NULL, 1000, 10, 1, 'e') && reads_ascending(db, NULL, 2000, 10, 1, 0),
		   "memtable epoch: the refused batch wrote nothing");
		wo.memtable_epoch = nokv_memtable_epoch(db);
		ok(nokv_write(db, &wo, b, &err) == NOKV_OK && reads_ascending(db, NULL, 2000, 10, 1, 'e'),
		   "memtable epoch: the same batch under the new epoch is applied");
	}
	nokv_close(db);
out:
	nokv_batch_free(b);
	tap_rmdir(dir);
	tap_rmdir(xdir);
	free(dir);
	free(xdir);
}

static void
test_external_log(void)
{
	char	   *dir = tap_tmpdir("api-ext");
	nokv_options o;
	nokv_db    *db;
	nokv_stats	st;
	int			rc;
	const char *after3 = "cf0:a=a2,e=e3,|cf1:x=x1,|cf2:w=w3,";
	const char *after5 = "cf0:a=a2,e=e3,f=f4,g=g5,|cf1:x=x1,|cf2:w=w3,";

	small_options(&o);
	o.external_log = true;
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "open in external-log mode"))
		goto out;
	is_int(nokv_external_log_flushed(db, 0), 0, "nothing flushed in a fresh engine");

	ok(ext_apply(db, &ext_batches[0]) == NOKV_OK &&
	   ext_apply(db, &ext_batches[1]) == NOKV_OK &&
	   ext_apply(db, &ext_batches[2]) == NOKV_OK, "three stamped batches (log 0, positions 100..300, versions 1..3)");
	ok(state_is(db, after3), "they are visible");
	is_int(nokv_last_version(db), 3, "nokv_last_version is the highest stamped version");
	{
		nokv_read_options ro;

		nokv_read_options_init(&ro);
		ro.version = 1;
		ok(reads_str(db, &ro, NOKV_CF_DEFAULT, "a", "a1") &&
		   reads_str(db, &ro, NOKV_CF_DEFAULT, "b", "b1") &&
		   reads_str(db, &ro, NOKV_CF_DEFAULT, "c1", "c1"),
		   "a read at version 1 sees the first batch only");
	}

	/* applying the same batch again is harmless */
	ok(ext_apply(db, &ext_batches[2]) == NOKV_OK, "re-apply the newest batch");
	ok(state_is(db, after3), "state unchanged");
	ok(ext_apply(db, &ext_batches[1]) == NOKV_OK && ext_apply(db, &ext_batches[0]) == NOKV_OK,
	   "re-apply the two older batches (older versions than what is visible)");
	ok(state_is(db, after3), "state unchanged: newer versions still win");
	is_int(nokv_last_version(db), 3, "nokv_last_version unchanged by re-application");
	is_int(nokv_external_log_flushed(db, 0), 0, "nothing flushed yet: flushed position is 0");

	/* flush: the flushed position becomes the highest position in the memtable */
	ok(flush_everything(db), "rotate + flush");
	is_int(nokv_external_log_flushed(db, 0), 300, "after the flush, log 0 is flushed up to 300");
	is_int(nokv_external_log_flushed(db, 1), 0, "log 1 has no flushed position");
	ok(state_is(db, after3), "state unchanged by the flush");

	ok(ext_apply(db, &ext_batches[3]) == NOKV_OK && ext_apply(db, &ext_batches[4]) == NOKV_OK,
	   "two more batches (log 0 position 400, log 1 position 50), not flushed");
	ok(state_is(db, after5), "they are visible");
	is_int(nokv_external_log_flushed(db, 0), 300, "log 0 still flushed up to 300");
	nokv_get_stats(db, &st);
	is_int(st.wal_bytes, 0, "the engine wrote no WAL bytes");
	{
		char		wal[4200];

		snprintf(wal, sizeof(wal), "%s", dir);
		is_int(count_files(wal, NULL, ".wal"), 0, "there is no *.wal file in the directory");
	}

	/* invalid stamps */
	{
		ext_batch	bad = {0, 500, 0, "+0:bad=v0"};

		rc = ext_apply(db, &bad);
		is_int(rc, NOKV_INVALID_ARGUMENT, "version 0 is refused in external-log mode");
		bad.version = 6;
		bad.log_id = NOKV_MAX_EXTERNAL_LOGS;
		rc = ext_apply(db, &bad);
		is_int(rc, NOKV_INVALID_ARGUMENT, "log_id NOKV_MAX_EXTERNAL_LOGS is refused");
		ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "bad", NULL), "refused batches wrote nothing");

	}
	nokv_close(db);

	/* reopen: flushed data survives, the unflushed tail is the caller's to replay */
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "reopen in external-log mode"))
		goto out;
	{
		/*
		 * Unflushed batches are the caller's to replay (there is no WAL);
		 * an engine that flushed them at close would also be correct, as
		 * long as the flushed positions say so.
		 */
		char	   *got = dump_all(db, NULL);
		bool		tail_kept = strcmp(got, after5) == 0;

		ok(tail_kept || strcmp(got, after3) == 0,
		   "flushed batches survive the reopen (unflushed ones %s)",
		   tail_kept ? "were flushed at close" : "are gone: no WAL");
		if (!tail_kept && strcmp(got, after3) != 0)
			tap_diag("  state '%s', expected '%s'", got, after3);
		free(got);
		is_int(nokv_external_log_flushed(db, 0), tail_kept ? 400 : 300,
			   "the flushed position of log 0 persists");
		is_int(nokv_external_log_flushed(db, 1), tail_kept ? 50 : 0,
			   "and that of log 1");
	}
	ok(nokv_last_version(db) >= 3, "nokv_last_version after reopen is %" PRIu64 " (>= 3)",
	   nokv_last_version(db));

	/* the caller replays from its flushed position; replaying a flushed batch is harmless */
	ok(ext_apply(db, &ext_batches[2]) == NOKV_OK, "replay position 300 (already flushed)");
	ok(ext_apply(db, &ext_batches[3]) == NOKV_OK && ext_apply(db, &ext_batches[4]) == NOKV_OK,
	   "replay positions 400 (log 0) and 50 (log 1)");
	ok(state_is(db, after5), "state after replay");
	ok(ext_apply(db, &ext_batches[0]) == NOKV_OK, "re-apply the oldest batch over SST data");
	ok(state_is(db, after5), "state unchanged");
	ok(flush_everything(db), "flush");
	is_int(nokv_external_log_flushed(db, 0), 400, "log 0 flushed up to 400 (never goes back)");
	is_int(nokv_external_log_flushed(db, 1), 50, "log 1 flushed up to 50");
	ok(compact_all(db) && compact_everything(db, NOKV_CF_DEFAULT), "compact everything");
	ok(state_is(db, after5), "state unchanged by compaction");
	ok(ext_apply(db, &ext_batches[1]) == NOKV_OK && state_is(db, after5),
	   "re-applying an old batch after compaction is still harmless");
	nokv_close(db);

	db = open_or_diag(&o, dir);
	if (ok(db != NULL, "second reopen"))
	{
		ok(state_is(db, after5), "everything flushed survives");
		is_int(nokv_external_log_flushed(db, 0), 400, "log 0 position persists");
		is_int(nokv_external_log_flushed(db, 1), 50, "log 1 position persists");
		nokv_close(db);
	}
out:
	tap_rmdir(dir);
	free(dir);
}

/* ---------- compaction filter ---------- */

typedef struct filter_state
{
	int			calls;
	int			bad_entries;
	int			keep_seen;		/* entries of keep-1 with the user value "kept" */
} filter_state;

static nokv_filter_decision
test_filter(void *arg, const nokv_filter_entry *e, const char **new_value, size_t *new_len)
{
	filter_state *fs = arg;

	fs->calls++;
	if (e->cf < 0 || e->cf >= NCF || e->version == 0)
		fs->bad_entries++;
	if (e->kind != NOKV_KIND_PUT)
		return NOKV_FILTER_KEEP;
	/* the filter sees user keys and user values, not internal records */
	if (e->key_len == 6 && memcmp(e->key, "keep-1", 6) == 0 &&
		e->value_len == 4 && memcmp(e->value, "kept", 4) == 0)
		fs->keep_seen++;
	if (e->key_len >= 4 && memcmp(e->key, "tmp-", 4) == 0)
		return NOKV_FILTER_DROP;
	if (e->key_len >= 4 && memcmp(e->key, "chg-", 4) == 0)
	{
		*new_value = "changed";
		*new_len = 7;
		return NOKV_FILTER_CHANGE;
	}
	return NOKV_FILTER_KEEP;
}

static void
test_compaction_filter(void)
{
	char	   *dir = tap_tmpdir("api-filter");
	nokv_options o;
	nokv_db    *db;
	filter_state fs = {0, 0, 0};

	small_options(&o);
	o.compaction_filter = test_filter;
	o.compaction_filter_arg = &fs;
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "open with a compaction filter"))
		goto out;
	put_str(db, NOKV_CF_DEFAULT, "chg-1", "original");
	put_str(db, NOKV_CF_DEFAULT, "keep-1", "kept");
	put_str(db, NOKV_CF_DEFAULT, "tmp-1", "dropped");
	put_str(db, NOKV_CF_WRITE, "tmp-2", "dropped");
	ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "tmp-1", "dropped"), "before compaction the filter has no effect");
	ok(compact_all(db) && compact_everything(db, NOKV_CF_DEFAULT) &&
	   compact_everything(db, NOKV_CF_WRITE), "compact everything");
	ok(fs.calls > 0, "the filter was called (%d times)", fs.calls);
	is_int(fs.bad_entries, 0, "every filter entry had a valid cf and a version");
	ok(fs.keep_seen > 0, "the filter saw the user key 'keep-1' with its user value 'kept'");
	ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "tmp-1", NULL) &&
	   reads_str(db, NULL, NOKV_CF_WRITE, "tmp-2", NULL), "NOKV_FILTER_DROP removed the entries");
	ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "chg-1", "changed"), "NOKV_FILTER_CHANGE replaced the value");
	ok(reads_str(db, NULL, NOKV_CF_DEFAULT, "keep-1", "kept"), "NOKV_FILTER_KEEP kept the entry");
	nokv_close(db);
out:
	tap_rmdir(dir);
	free(dir);
}

/* ---------- approximate sizes ---------- */

static void
test_approximate_size(void)
{
	char	   *dir = tap_tmpdir("api-approx");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err;
	nokv_stats	st;
	uint64_t	all = 0,
				half = 0,
				none = 1,
				other = 1,
				sst_bytes = 0;
	char		val[200];

	small_options(&o);
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "open"))
		goto out;
	for (int i = 0; i < (int) sizeof(val); i++)
		val[i] = (char) ('a' + (i * 7919 + i / 13) % 26);
	for (int i = 0; i < 20000; i++)
	{
		char		key[16];

		snprintf(key, sizeof(key), "k%06d", i);
		val[0] = (char) i;
		nokv_put(db, NOKV_CF_DEFAULT, key, strlen(key), val, sizeof(val), &err);
	}
	put_str(db, NOKV_CF_WRITE, "k010000", "in another column family");
	ok(compact_all(db), "compact");
	nokv_get_stats(db, &st);
	for (int l = 0; l < NOKV_MAX_LEVELS; l++)
		sst_bytes += st.levels[l].bytes;
	ok(nokv_approximate_size(db, NOKV_CF_DEFAULT, "k", 1, "l", 1, &all, &err) == NOKV_OK &&
	   nokv_approximate_size(db, NOKV_CF_DEFAULT, "k000000", 7, "k010000", 7, &half, &err) == NOKV_OK &&
	   nokv_approximate_size(db, NOKV_CF_DEFAULT, "x", 1, "y", 1, &none, &err) == NOKV_OK &&
	   nokv_approximate_size(db, NOKV_CF_LOCK, "k", 1, "l", 1, &other, &err) == NOKV_OK,
	   "approximate sizes");
	ok(all > sst_bytes * 8 / 10 && all <= sst_bytes,
	   "the whole key range is most of the SST bytes (%llu of %llu)",
	   (unsigned long long) all, (unsigned long long) sst_bytes);
	ok(half > all * 4 / 10 && half < all * 6 / 10, "half the keys, about half the bytes (%llu of %llu)",
	   (unsigned long long) half, (unsigned long long) all);
	is_int(none, 0, "a range without keys has no bytes");
	is_int(other, 0, "nor has an empty column family");
	is_int(nokv_approximate_size(db, 7, "k", 1, "l", 1, &none, &err), NOKV_INVALID_ARGUMENT,
		   "an unknown column family is refused");
	nokv_close(db);
out:
	tap_rmdir(dir);
	free(dir);
}

/*
 * A bounded iterator leaves out (and unpins) memtables with no key in its
 * bounds.  Their range tombstones must still apply, and recycling those
 * memtables under the open iterator must not disturb it.
 */
static void
test_bounded_iterator_sources(void)
{
	char	   *dir = tap_tmpdir("api-bounded");
	nokv_options o;
	nokv_db    *db;
	nokv_read_options ro;
	nokv_iter  *it;
	nokv_error	err;
	int			steps = 0;
	bool		order = true;

	small_options(&o);
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "open for the bounded-source tests"))
		goto out;
	put_range(db, NOKV_CF_DEFAULT, 0, 20, "d");
	ok(flush_everything(db), "r00..r19 flushed to a table");
	/* the memtable: a point key above the bounds and a tombstone inside them */
	put_str(db, NOKV_CF_DEFAULT, "z", "outside");
	ok(delete_range_str(db, NOKV_CF_DEFAULT, "r05", "r08") == NOKV_OK, "delete_range [r05, r08) in the memtable");

	nokv_read_options_init(&ro);
	ro.lower_bound = "r";
	ro.lower_len = 1;
	ro.upper_bound = "s";
	ro.upper_len = 1;
	ok(dump_is(db, &ro, NOKV_CF_DEFAULT,
			   "r00=d00,r01=d01,r02=d02,r03=d03,r04=d04,r08=d08,r09=d09,r10=d10,r11=d11,"
			   "r12=d12,r13=d13,r14=d14,r15=d15,r16=d16,r17=d17,r18=d18,r19=d19,"),
	   "a memtable left out for its point keys still contributes its tombstone");

	it = nokv_iter_new(db, &ro, NOKV_CF_DEFAULT);
	if (!ok(it != NULL, "bounded iterator [r, s)"))
		goto close;
	nokv_iter_seek_to_first(it);
	ok(iter_at(it, "r00", "d00", "first"), "it starts at r00");
	/* recycle the memtables it left out, and write inside its bounds */
	put_str(db, NOKV_CF_DEFAULT, "r02", "new");
	ok(flush_everything(db), "rotate and flush under it");
	put_str(db, NOKV_CF_DEFAULT, "r03", "newer");
	ok(flush_everything(db), "and again");
	for (nokv_iter_next(it); nokv_iter_valid(it); nokv_iter_next(it))
	{
		size_t		kl,
					vl;
		const char *k = nokv_iter_key(it, &kl);
		const char *v = nokv_iter_value(it, &vl);

		steps++;
		order &= kl == 3 && vl == 3 && k[0] == 'r' && v[0] == 'd' && memcmp(k + 1, v + 1, 2) == 0 &&
			!(memcmp(k, "r05", 3) >= 0 && memcmp(k, "r08", 3) < 0);
	}
	ok(nokv_iter_status(it, &err) == NOKV_OK, "no error after the recycling");
	is_int(steps, 16, "the open iterator saw the rest of its view, without the deleted range");
	ok(order, "... with the old values, in order");
	nokv_iter_free(it);
	ok(dump_is(db, &ro, NOKV_CF_DEFAULT,
			   "r00=d00,r01=d01,r02=new,r03=newer,r04=d04,r08=d08,r09=d09,r10=d10,r11=d11,"
			   "r12=d12,r13=d13,r14=d14,r15=d15,r16=d16,r17=d17,r18=d18,r19=d19,"),
	   "a new iterator sees the new values");
close:
	nokv_close(db);
out:
	tap_rmdir(dir);
	free(dir);
}

/* dump of cf default within [lo, hi) (hi NULL: no upper bound) is want */
static bool
bounded_dump_is(nokv_db *db, const char *lo, const char *hi, const char *want)
{
	nokv_read_options ro;

	nokv_read_options_init(&ro);
	ro.lower_bound = lo;
	ro.lower_len = strlen(lo);
	ro.upper_bound = hi;
	ro.upper_len = hi ? strlen(hi) : 0;
	return dump_is(db, &ro, NOKV_CF_DEFAULT, want);
}

/*
 * An iterator keeps only the range tombstones that reach into its bounds;
 * those that touch a bound from outside, or overlap it, are what the
 * choice gets wrong if it is off by one.
 */
static void
test_tombstones_at_bounds(void)
{
	char	   *dir = tap_tmpdir("api-tomb-bounds");
	nokv_options o;
	nokv_db    *db;

	small_options(&o);
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "open for the tombstone-bounds tests"))
		goto out;
	put_range(db, NOKV_CF_DEFAULT, 0, 20, "d");
	ok(delete_range_str(db, NOKV_CF_DEFAULT, "r05", "r08") == NOKV_OK &&
	   delete_range_str(db, NOKV_CF_DEFAULT, "t", "u") == NOKV_OK,
	   "delete_range [r05, r08) and [t, u) in the memtable");
	for (int flushed = 0; flushed < 2; flushed++)
	{
		const char *where = flushed ? "in an SST" : "in the memtable";

		ok(bounded_dump_is(db, "r08", "s",
						   "r08=d08,r09=d09,r10=d10,r11=d11,r12=d12,r13=d13,r14=d14,r15=d15,"
						   "r16=d16,r17=d17,r18=d18,r19=d19,"),
		   "bounds starting at the tombstone's end see every key (%s)", where);
		ok(bounded_dump_is(db, "r", "r05", "r00=d00,r01=d01,r02=d02,r03=d03,r04=d04,"),
		   "bounds ending at the tombstone's start see every key (%s)", where);
		ok(bounded_dump_is(db, "r07", "r09", "r08=d08,"),
		   "a tombstone over the lower bound hides r07 (%s)", where);
		ok(bounded_dump_is(db, "r04", "r06", "r04=d04,"),
		   "a tombstone over the upper bound hides r05 (%s)", where);
		ok(bounded_dump_is(db, "r06", "r07", ""),
		   "a tombstone around the bounds hides all (%s)", where);
		ok(bounded_dump_is(db, "r06", NULL,
						   "r08=d08,r09=d09,r10=d10,r11=d11,r12=d12,r13=d13,r14=d14,r15=d15,"
						   "r16=d16,r17=d17,r18=d18,r19=d19,"),
		   "without an upper bound the tombstone still hides r06 and r07 (%s)", where);
		if (!flushed)
			ok(flush_everything(db), "flush the tombstones");
	}
	nokv_close(db);
out:
	tap_rmdir(dir);
	free(dir);
}

/*
 * An iterator unpins memtables between calls, so a flushed memtable can be
 * recycled while the caller still holds the value of the entry it stands
 * on: that value must not point into the memtable.
 */
static void
test_iterator_value_outlives_memtable(void)
{
	char	   *dir = tap_tmpdir("api-recycle");
	nokv_options o;
	nokv_db    *db;
	nokv_iter  *it;
	nokv_error	err;
	const char *v;
	size_t		vlen;
	char		filler[512];

	small_options(&o);
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "open for the recycling test"))
		goto out;
	put_str(db, NOKV_CF_DEFAULT, "a", "the value of a, in a memtable");
	it = nokv_iter_new(db, NULL, NOKV_CF_DEFAULT);
	if (!ok(it != NULL, "iterator"))
		goto close;
	nokv_iter_seek_to_first(it);
	ok(iter_at(it, "a", "the value of a, in a memtable", "on a"), "the iterator stands on a");
	/* flush it, then cycle every memtable slot with other data */
	memset(filler, 'x', sizeof(filler));
	ok(flush_everything(db), "a flushed");
	for (int round = 0; round < 2 * o.max_memtables; round++)
	{
		for (int i = 0; i < 1500; i++)
		{
			char		k[32];

			snprintf(k, sizeof(k), "z%02d-%05d", round, i);
			nokv_put(db, NOKV_CF_DEFAULT, k, strlen(k), filler, sizeof(filler), &err);
		}
		flush_everything(db);
	}
	v = nokv_iter_value(it, &vlen);
	ok(vlen == strlen("the value of a, in a memtable") && memcmp(v, "the value of a, in a memtable", vlen) == 0,
	   "its value is intact after the memtable was recycled");
	nokv_iter_free(it);
close:
	nokv_close(db);
out:
	tap_rmdir(dir);
	free(dir);
}

/* ---------- background threads ---------- */

static void
test_background_threads(void)
{
	char	   *dir = tap_tmpdir("api-bg");
	nokv_options o;
	nokv_db    *db;
	nokv_stats	st;
	bool		good = true;

	small_options(&o);
	o.memtable_size = 128 * 1024;
	o.background_threads = true;
	db = open_or_diag(&o, dir);
	if (!ok(db != NULL, "open with background threads"))
		goto out;
	for (int i = 0; i < 20000 && good; i++)
	{
		char		k[32],
					v[64];

		snprintf(k, sizeof(k), "bg%06d", (i * 7919) % 20000);
		snprintf(v, sizeof(v), "v%06d-%040d", i, i);
		good = put_str(db, NOKV_CF_DEFAULT, k, v) == NOKV_OK;
	}
	ok(good, "20000 writes with background flushes and compactions");
	for (int i = 0; i < 20000 && good; i += 97)
	{
		char		k[32],
					v[64];
		int			j = (int) (((long) i * 7919) % 20000);

		snprintf(k, sizeof(k), "bg%06d", j);
		snprintf(v, sizeof(v), "v%06d-%040d", i, i);
		good = reads_str(db, NULL, NOKV_CF_DEFAULT, k, v);
	}
	ok(good, "reads while background work runs");
	nokv_get_stats(db, &st);
	ok(st.flushes > 0, "background threads flushed (%" PRIu64 " flushes, %" PRIu64 " compactions)",
	   st.flushes, st.compactions);
	nokv_close(db);
	db = open_or_diag(&o, dir);
	if (ok(db != NULL, "reopen"))
	{
		good = true;
		for (int i = 0; i < 20000 && good; i += 101)
		{
			char		key[32],
						v[64];
			int			j = (int) (((long) i * 7919) % 20000);

			snprintf(key, sizeof(key), "bg%06d", j);
			snprintf(v, sizeof(v), "v%06d-%040d", i, i);
			good = reads_str(db, NULL, NOKV_CF_DEFAULT, key, v);
		}
		ok(good, "data written with background threads survives reopen");
		nokv_close(db);
	}
out:
	tap_rmdir(dir);
	free(dir);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	alarm(600);

	test_options_defaults();
	test_names_and_codes();
	test_open_and_lock();
	test_column_families();
	test_key_value_limits();
	test_batches();
	test_delete_range();
	test_tombstones_at_bounds();
	test_iterators();
	test_snapshots();
	test_version_gc();
	test_reopen();
	test_stats();
	test_external_log();
	test_external_log_batch_order();
	test_ascending_batches();
	test_compaction_filter();
	test_approximate_size();
	test_bounded_iterator_sources();
	test_iterator_value_outlives_memtable();
	test_background_threads();
	return tap_done();
}
