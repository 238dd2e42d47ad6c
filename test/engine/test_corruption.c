/*-------------------------------------------------------------------------
 *
 * test_corruption.c
 *	  Damaged files are detected and reported, never returned as data.
 *
 * Each case builds an engine directory with known contents, closes it,
 * damages one file the way a disk or an operator might, reopens and reads
 * everything back.  The rule throughout: a read returns the right value or
 * an error (NOKV_CORRUPTION, or NOKV_IO_ERROR for a missing file); it never
 * returns a wrong value and never reports a key that exists as NOT_FOUND,
 * and an iterator never silently skips keys.
 *
 *	  (a) one byte flipped in a data block of an SST (at a third of the file)
 *	  (a2) the SST footer damaged; (a3) an SST truncated to half its size
 *	  (b) one byte flipped in the payload of a WAL record followed by more
 *		  records: open fails with NOKV_CORRUPTION naming the segment; the
 *		  same WAL with a torn tail (cut mid-record, or trailing zeros)
 *		  opens and keeps every complete record
 *	  (c) one byte flipped in a middle record of the manifest
 *	  (d) CURRENT naming a missing manifest, or garbage
 *	  (e) an SST the manifest lists deleted
 *
 * WAL and manifest offsets are found by walking the record framing of
 * include/nokv/logformat.h (16-byte file header, then CRC | length | type |
 * payload), so the damage always lands where the case intends.
 *
 * test/engine/test_corruption.c
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nokv/logformat.h"
#include "nokv/nokv.h"
#include "tap.h"
#include "testutil.h"

#define NKEYS		3000
#define VALUE_LEN	200

/* ---------- helpers ---------- */

static void
on_alarm(int sig)
{
	static const char msg[] = "Bail out! test_corruption timed out (a hang on damaged input?)\n";

	(void) sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(254);
	_exit(255);
}


static size_t
make_key(char *buf, size_t size, int i)
{
	return (size_t) snprintf(buf, size, "c%06d", i);
}

/* incompressible, so every byte of a data block is value bytes on disk */
static void
make_value(char *buf, int i)
{
	uint64_t	s = (uint64_t) i * 7919 + 17;

	for (int j = 0; j < VALUE_LEN; j += 8)
	{
		uint64_t	r = splitmix64(&s);

		memcpy(buf + j, &r, VALUE_LEN - j < 8 ? (size_t) (VALUE_LEN - j) : 8);
	}
}

static const char *
code_name(int rc)
{
	return nokv_code_name((nokv_code) (rc < 0 ? -rc : rc));
}

static void
base_options(nokv_options *o)
{
	nokv_options_init(o);
	o->memtable_size = 8 * 1024 * 1024;
	o->background_threads = false;
}

static nokv_db *
open_db(const nokv_options *o, const char *dir)
{
	nokv_db    *db = NULL;
	nokv_error	err;
	int			rc;

	memset(&err, 0, sizeof(err));
	rc = nokv_open(o, dir, &db, &err);
	if (rc != NOKV_OK)
	{
		tap_diag("nokv_open(%s): %s: %s", dir, code_name(rc), err.msg);
		return NULL;
	}
	return db;
}

static bool
write_keys(nokv_db *db, int from, int to)
{
	char		val[VALUE_LEN];

	for (int i = from; i < to; i++)
	{
		char		key[16];
		size_t		kl = make_key(key, sizeof(key), i);
		nokv_error	err;
		int			rc;

		make_value(val, i);
		memset(&err, 0, sizeof(err));
		rc = nokv_put(db, NOKV_CF_DEFAULT, key, kl, val, VALUE_LEN, &err);
		if (rc != NOKV_OK)
		{
			tap_diag("put %s: %s: %s", key, code_name(rc), err.msg);
			return false;
		}
	}
	return true;
}

static bool
read_file(const char *path, char **data, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	struct stat st;

	if (f == NULL || fstat(fileno(f), &st) != 0)
	{
		tap_diag("cannot read %s: %s", path, strerror(errno));
		if (f)
			fclose(f);
		return false;
	}
	*len = (size_t) st.st_size;
	*data = malloc(*len + 1);
	if (*len > 0 && fread(*data, 1, *len, f) != *len)
	{
		tap_diag("short read of %s", path);
		fclose(f);
		free(*data);
		return false;
	}
	fclose(f);
	return true;
}

static bool
write_file(const char *path, const char *data, size_t len)
{
	FILE	   *f = fopen(path, "wb");
	bool		good;

	if (f == NULL)
	{
		tap_diag("cannot write %s: %s", path, strerror(errno));
		return false;
	}
	good = fwrite(data, 1, len, f) == len;
	good = fclose(f) == 0 && good;
	return good;
}

static bool
flip_byte(const char *path, uint64_t offset)
{
	int			fd = open(path, O_RDWR);
	unsigned char c;
	bool		good = false;

	if (fd < 0)
		return false;
	if (pread(fd, &c, 1, (off_t) offset) == 1)
	{
		c ^= 0x5a;
		good = pwrite(fd, &c, 1, (off_t) offset) == 1;
	}
	close(fd);
	tap_diag("flipped the byte at offset %" PRIu64 " of %s", offset, path);
	return good;
}

static uint64_t
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t) st.st_size : 0;
}

/*
 * The file in dir with the given suffix and the largest size (by_size) or
 * the highest number (otherwise); name receives its path.
 */
static bool
pick_file(const char *dir, const char *suffix, bool by_size, char *path, size_t pathlen)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	uint64_t	best = 0;
	bool		found = false;

	if (d == NULL)
		return false;
	while ((e = readdir(d)) != NULL)
	{
		size_t		len = strlen(e->d_name);
		char		p[4200];
		uint64_t	key;

		if (len <= strlen(suffix) || strcmp(e->d_name + len - strlen(suffix), suffix) != 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		key = by_size ? file_size(p) : strtoull(e->d_name, NULL, 10);
		if (!by_size && file_size(p) <= NOKV_LOG_FILE_HEADER)
			continue;			/* an empty segment */
		if (!found || key > best)
		{
			best = key;
			found = true;
			snprintf(path, pathlen, "%s", p);
		}
	}
	closedir(d);
	return found;
}

static int
count_suffix(const char *dir, const char *suffix)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	int			n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
	{
		size_t		len = strlen(e->d_name);

		if (len > strlen(suffix) && strcmp(e->d_name + len - strlen(suffix), suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* offsets of the records of a logformat.h file (walks the framing) */
static int
log_records(const char *data, size_t len, uint64_t *offsets, uint32_t *lengths, int max)
{
	uint64_t	off = NOKV_LOG_FILE_HEADER;
	int			n = 0;

	while (off + NOKV_LOG_RECORD_HEADER <= len && n < max)
	{
		uint32_t	plen = nokv_get_le32(data + off + 4);

		if (plen == 0 && nokv_get_le32(data + off) == 0)
			break;				/* zero padding */
		if (off + NOKV_LOG_RECORD_HEADER + plen > len)
			break;
		offsets[n] = off;
		lengths[n] = plen;
		n++;
		off += NOKV_LOG_RECORD_HEADER + plen;
	}
	return n;
}

/*
 * Read every key back by a full scan and by gets.  Counts reads that gave
 * the right value, reported an error, returned a wrong value or said a key
 * is missing.  *scan_error is set if the scan ended in an error; the first
 * error message is kept.
 */
typedef struct readback
{
	int			correct;
	int			errors;
	int			wrong;
	int			missing;
	bool		scan_error;
	bool		scan_skipped;
	int			scanned;
	char		first_error[512];
} readback;

static void
note_error(readback *rb, int rc, const nokv_error *err, const char *what)
{
	rb->errors++;
	if (rb->first_error[0] == '\0')
		snprintf(rb->first_error, sizeof(rb->first_error), "%s: %s: %.400s", what, code_name(rc),
				 err->msg[0] ? err->msg : "(no message)");
}

static void
read_back(nokv_db *db, int nkeys, readback *rb)
{
	nokv_read_options ro;
	nokv_iter  *it;
	char		want[VALUE_LEN];
	nokv_error	err;
	int			next = 0;
	int			rc;

	memset(rb, 0, sizeof(*rb));
	nokv_read_options_init(&ro);
	it = nokv_iter_new(db, &ro, NOKV_CF_DEFAULT);
	if (it)
	{
		for (nokv_iter_seek_to_first(it); nokv_iter_valid(it); nokv_iter_next(it))
		{
			size_t		kl,
						vl;
			const char *k = nokv_iter_key(it, &kl);
			const char *v = nokv_iter_value(it, &vl);
			char		key[16];
			size_t		ekl = make_key(key, sizeof(key), next);

			if (next >= nkeys || kl != ekl || memcmp(k, key, kl) != 0)
			{
				/* a key out of order means keys were skipped (or invented) */
				rb->scan_skipped = true;
				tap_diag("  scan: got key '%.*s' where %s was expected", (int) (kl > 30 ? 30 : kl), k,
						 next < nkeys ? key : "the end");
				break;
			}
			make_value(want, next);
			if (vl != VALUE_LEN || memcmp(v, want, VALUE_LEN) != 0)
			{
				rb->wrong++;
				tap_diag("  scan: WRONG VALUE for %s (%zu bytes)", key, vl);
			}
			next++;
		}
		rb->scanned = next;
		memset(&err, 0, sizeof(err));
		rc = nokv_iter_status(it, &err);
		if (rc != NOKV_OK)
		{
			rb->scan_error = true;
			note_error(rb, rc, &err, "scan");
		}
		else if (next < nkeys && !rb->scan_skipped)
		{
			rb->scan_skipped = true;
			tap_diag("  scan ended after %d of %d keys with status OK (silent data loss)", next, nkeys);
		}
		nokv_iter_free(it);
	}
	else
		rb->scan_error = true;

	for (int i = 0; i < nkeys; i++)
	{
		char		key[16];
		size_t		kl = make_key(key, sizeof(key), i);
		char	   *val = NULL;
		size_t		vlen = 0;

		memset(&err, 0, sizeof(err));
		rc = nokv_get(db, &ro, NOKV_CF_DEFAULT, key, kl, &val, &vlen, &err);
		make_value(want, i);
		if (rc == NOKV_OK && vlen == VALUE_LEN && memcmp(val, want, VALUE_LEN) == 0)
			rb->correct++;
		else if (rc == NOKV_OK)
		{
			rb->wrong++;
			tap_diag("  get %s: WRONG VALUE (%zu bytes)", key, vlen);
		}
		else if (rc == NOKV_NOT_FOUND)
		{
			if (rb->missing++ == 0)
				tap_diag("  get %s: NOT_FOUND for a key that exists", key);
		}
		else
			note_error(rb, rc, &err, "get");
		free(val);
	}
	tap_diag("  read back: %d correct, %d errors, %d wrong, %d reported missing; scan %d keys%s",
			 rb->correct, rb->errors, rb->wrong, rb->missing, rb->scanned,
			 rb->scan_error ? " then an error" : "");
	if (rb->first_error[0])
		tap_diag("  first error: %s", rb->first_error);
}

/* build a directory with NKEYS keys, all flushed into SSTs */
static bool
build_flushed(const char *dir, const nokv_options *o)
{
	nokv_db    *db = open_db(o, dir);
	nokv_error	err;
	int			rc;

	if (db == NULL)
		return false;
	if (!write_keys(db, 0, NKEYS))
	{
		nokv_close(db);
		return false;
	}
	memset(&err, 0, sizeof(err));
	rc = nokv_compact_all(db, &err);
	nokv_close(db);
	if (rc != NOKV_OK)
		tap_diag("nokv_compact_all: %s: %s", code_name(rc), err.msg);
	return rc == NOKV_OK;
}

/*
 * Open a damaged directory and read everything.  Detection at open time is
 * fine; otherwise the reads must detect it.  want_code is the code an open
 * failure must have (0: any error).
 */
static void
expect_detected(const char *label, const char *dir, const nokv_options *o, const char *file,
				int want_code)
{
	nokv_db    *db = NULL;
	nokv_error	err;
	int			rc;
	readback	rb;

	memset(&err, 0, sizeof(err));
	rc = nokv_open(o, dir, &db, &err);
	if (rc != NOKV_OK)
	{
		tap_diag("  open failed: %s: %s", code_name(rc), err.msg);
		ok(want_code == 0 || rc == want_code, "%s: detected at open (%s)", label, code_name(rc));
		ok(err.msg[0] != '\0' && strstr(err.msg, base_name(file)) != NULL,
		   "%s: the message names %s", label, base_name(file));
		return;
	}
	read_back(db, NKEYS, &rb);
	nokv_close(db);
	is_int(rb.wrong, 0, "%s: no read returned a wrong value", label);
	is_int(rb.missing, 0, "%s: no existing key was reported NOT_FOUND", label);
	ok(!rb.scan_skipped, "%s: the scan skipped no key silently", label);
	ok(rb.errors > 0, "%s: the damage was reported (%d reads failed)", label, rb.errors);
	ok(rb.errors == 0 || strstr(rb.first_error, base_name(file)) != NULL,
	   "%s: the error names %s", label, base_name(file));
}

/* ---------- (a) SST damage ---------- */

static void
test_sst_damage(void)
{
	nokv_options o;

	base_options(&o);
	for (int variant = 0; variant < 3; variant++)
	{
		char	   *dir = tap_tmpdir("corrupt-sst");
		char		sst[4200];
		const char *label = variant == 0 ? "(a) SST data block byte flip" :
			variant == 1 ? "(a2) SST footer damaged" : "(a3) SST truncated to half";

		if (!ok(build_flushed(dir, &o), "%s: build a directory with %d keys in SSTs", label, NKEYS) ||
			!ok(pick_file(dir, ".sst", true, sst, sizeof(sst)), "%s: there is an SST", label))
		{
			tap_rmdir(dir);
			free(dir);
			continue;
		}
		tap_diag("%s: damaging %s (%" PRIu64 " bytes)", label, sst, file_size(sst));
		if (variant == 0)
			ok(flip_byte(sst, file_size(sst) / 3), "%s: flip a byte at size/3", label);
		else if (variant == 1)
		{
			uint64_t	size = file_size(sst);
			bool		good = true;

			for (uint64_t off = size - 8; off < size; off++)
				good = flip_byte(sst, off) && good;
			ok(good, "%s: flip the last 8 bytes", label);
		}
		else
			ok(truncate(sst, (off_t) (file_size(sst) / 2)) == 0, "%s: truncate", label);
		/* a truncated file may also surface as a short read (NOKV_IO_ERROR) */
		expect_detected(label, dir, &o, sst, variant == 2 ? 0 : NOKV_CORRUPTION);
		tap_rmdir(dir);
		free(dir);
	}
}

/* ---------- (b) WAL damage ---------- */

#define WAL_KEYS 50

static bool
build_wal_only(const char *dir, const nokv_options *o)
{
	nokv_db    *db = open_db(o, dir);
	bool		good;

	if (db == NULL)
		return false;
	good = write_keys(db, 0, WAL_KEYS);	/* one batch, one record each */
	nokv_close(db);
	return good;
}

/* copy the regular files of a (flat) engine directory */
static bool
copy_dir(const char *src, const char *dst)
{
	DIR		   *d = opendir(src);
	struct dirent *e;
	bool		good = true;

	if (d == NULL)
		return false;
	while ((e = readdir(d)) != NULL && good)
	{
		char		from[4200],
					to[4200];
		struct stat st;
		char	   *data;
		size_t		len;

		snprintf(from, sizeof(from), "%s/%s", src, e->d_name);
		snprintf(to, sizeof(to), "%s/%s", dst, e->d_name);
		if (stat(from, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		good = read_file(from, &data, &len);
		if (good)
		{
			good = write_file(to, data, len);
			free(data);
		}
	}
	closedir(d);
	return good;
}

typedef enum wal_damage
{
	WAL_FLIP_FIRST,				/* payload byte of the first record */
	WAL_FLIP_MIDDLE,			/* payload byte of a middle record */
	WAL_FLIP_LENGTH,			/* length field of a middle record */
	WAL_TORN,					/* last record cut in half */
	WAL_ZEROS					/* 4096 zero bytes appended */
} wal_damage;

/*
 * One WAL case on a fresh copy of the pristine directory, so that whatever
 * an earlier case's recovery did (truncating, flushing, deleting segments)
 * cannot influence it.
 */
static void
wal_case(const char *pristine, const char *walname, const char *orig, size_t orig_len,
		 const uint64_t *offs, const uint32_t *lens, int n, wal_damage kind)
{
	nokv_options o;
	char	   *dir = tap_tmpdir("corrupt-wal-case");
	char		wal[4200];
	nokv_db    *db = NULL;
	nokv_error	err;
	readback	rb;
	int			rc;

	base_options(&o);
	snprintf(wal, sizeof(wal), "%s/%.255s", dir, walname);
	if (!ok(copy_dir(pristine, dir), "(b) copy the pristine directory"))
		goto out;
	switch (kind)
	{
		case WAL_FLIP_FIRST:
			ok(flip_byte(wal, offs[0] + NOKV_LOG_RECORD_HEADER + lens[0] / 2),
			   "(b) flip a byte in the payload of the first record");
			break;
		case WAL_FLIP_MIDDLE:
			ok(flip_byte(wal, offs[n / 2] + NOKV_LOG_RECORD_HEADER + lens[n / 2] / 2),
			   "(b) flip a byte in the payload of record %d", n / 2);
			break;
		case WAL_FLIP_LENGTH:
			ok(flip_byte(wal, offs[n / 2] + 5), "(b) flip a byte of the length of record %d", n / 2);
			break;
		case WAL_TORN:
			ok(truncate(wal, (off_t) (offs[n - 1] + NOKV_LOG_RECORD_HEADER + lens[n - 1] / 2)) == 0,
			   "(b) cut the last record in half (torn tail)");
			break;
		case WAL_ZEROS:
			{
				char	   *padded = calloc(1, orig_len + 4096);

				memcpy(padded, orig, orig_len);
				ok(write_file(wal, padded, orig_len + 4096), "(b) append 4096 zero bytes");
				free(padded);
				break;
			}
	}

	memset(&err, 0, sizeof(err));
	rc = nokv_open(&o, dir, &db, &err);
	tap_diag("(b) open: %s%s%s", code_name(rc), err.msg[0] ? ": " : "", err.msg);
	switch (kind)
	{
		case WAL_FLIP_FIRST:
		case WAL_FLIP_MIDDLE:
			is_int(rc, NOKV_CORRUPTION, "(b) a damaged record followed by good ones: open fails with NOKV_CORRUPTION");
			ok(strstr(err.msg, walname) != NULL, "(b) the message names %s", walname);
			break;
		case WAL_FLIP_LENGTH:
			if (rc == NOKV_OK)
			{
				/* accepted only as a torn tail: everything before it intact */
				read_back(db, n / 2, &rb);
				ok(rb.wrong == 0 && rb.correct == n / 2,
				   "(b) a damaged length read as a torn tail keeps the records before it");
			}
			else
				is_int(rc, NOKV_CORRUPTION, "(b) a damaged length field is NOKV_CORRUPTION");
			break;
		case WAL_TORN:
			if (!ok(rc == NOKV_OK, "(b) a torn tail opens cleanly"))
				break;
			read_back(db, WAL_KEYS - 1, &rb);
			is_int(rb.correct, WAL_KEYS - 1, "(b) every record before the torn one is present");
			ok(rb.wrong == 0 && rb.errors == 0, "(b) without errors");
			{
				char		key[16];
				char	   *val = NULL;
				size_t		vlen;
				nokv_read_options ro;

				nokv_read_options_init(&ro);
				make_key(key, sizeof(key), WAL_KEYS - 1);
				memset(&err, 0, sizeof(err));
				rc = nokv_get(db, &ro, NOKV_CF_DEFAULT, key, strlen(key), &val, &vlen, &err);
				is_int(rc, NOKV_NOT_FOUND, "(b) the torn record's key is absent");
				free(val);
			}
			/* new writes must land after the last good record, not after the garbage */
			ok(write_keys(db, WAL_KEYS - 1, WAL_KEYS + 10), "(b) write more after the torn tail");
			nokv_close(db);
			db = open_db(&o, dir);
			if (ok(db != NULL, "(b) reopen after writing past a torn tail"))
			{
				read_back(db, WAL_KEYS + 10, &rb);
				ok(rb.correct == WAL_KEYS + 10 && rb.errors == 0 && rb.wrong == 0,
				   "(b) the new writes and the old ones are all there");
			}
			break;
		case WAL_ZEROS:
			if (!ok(rc == NOKV_OK, "(b) trailing zero bytes open cleanly (torn tail)"))
				break;
			read_back(db, WAL_KEYS, &rb);
			ok(rb.correct == WAL_KEYS && rb.errors == 0 && rb.wrong == 0,
			   "(b) every record before the zeros is intact");
			break;
	}
	if (db)
		nokv_close(db);
out:
	tap_rmdir(dir);
	free(dir);
}

static void
test_wal_damage(void)
{
	nokv_options o;
	char	   *pristine = tap_tmpdir("corrupt-wal");
	char		wal[4200];
	char	   *orig = NULL;
	size_t		orig_len = 0;
	uint64_t	offs[256];
	uint32_t	lens[256];
	int			n;

	base_options(&o);
	if (!ok(build_wal_only(pristine, &o), "(b) write %d keys that stay in the WAL", WAL_KEYS))
		goto out;
	ok(count_suffix(pristine, ".sst") == 0, "(b) nothing was flushed to an SST");
	if (!ok(pick_file(pristine, ".wal", false, wal, sizeof(wal)), "(b) there is a non-empty WAL segment") ||
		!read_file(wal, &orig, &orig_len))
		goto out;
	n = log_records(orig, orig_len, offs, lens, 256);
	tap_diag("(b) %s: %zu bytes, %d records", wal, orig_len, n);
	if (!ok(n >= WAL_KEYS, "(b) the segment holds one record per batch (%d)", n))
		goto out;
	for (int kind = WAL_FLIP_FIRST; kind <= WAL_ZEROS; kind++)
		wal_case(pristine, base_name(wal), orig, orig_len, offs, lens, n, (wal_damage) kind);
out:
	free(orig);
	tap_rmdir(pristine);
	free(pristine);
}

/* ---------- (c) manifest damage, (d) CURRENT ---------- */

static bool
read_current(const char *dir, char *name, size_t len)
{
	char		path[4200];
	char	   *data;
	size_t		dlen;

	snprintf(path, sizeof(path), "%s/CURRENT", dir);
	if (!read_file(path, &data, &dlen))
		return false;
	while (dlen > 0 && (data[dlen - 1] == '\n' || data[dlen - 1] == '\r'))
		dlen--;
	data[dlen] = '\0';
	snprintf(name, len, "%s", data);
	free(data);
	return strncmp(name, "MANIFEST-", 9) == 0;
}

static bool
build_several_flushes(const char *dir, const nokv_options *o, int flushes)
{
	nokv_db    *db = open_db(o, dir);
	nokv_error	err;
	bool		good = true;

	if (db == NULL)
		return false;
	for (int f = 0; f < flushes && good; f++)
	{
		int			rc;

		good = write_keys(db, f * (NKEYS / flushes), (f + 1) * (NKEYS / flushes));
		memset(&err, 0, sizeof(err));
		rc = good ? nokv_rotate_memtable(db, &err) : NOKV_OK;
		if (good && rc == NOKV_OK)
			rc = nokv_flush_one(db, &err) == 1 ? NOKV_OK : NOKV_IO_ERROR;
		if (rc != NOKV_OK)
		{
			tap_diag("flush %d: %s", f, err.msg);
			good = false;
		}
	}
	nokv_close(db);
	return good;
}

static void
test_manifest_damage(void)
{
	nokv_options o;
	char	   *dir = tap_tmpdir("corrupt-manifest");
	char		name[256],
				path[4200],
				curpath[4200];
	char	   *orig = NULL,
			   *cur_orig = NULL;
	size_t		orig_len = 0,
				cur_len = 0;
	uint64_t	offs[256];
	uint32_t	lens[256];
	int			n;
	nokv_db    *db;
	nokv_error	err;
	int			rc;

	base_options(&o);
	o.l0_compaction_trigger = 100;	/* keep the edits simple: flushes only */
	o.l0_slowdown_trigger = 200;
	o.l0_stop_trigger = 300;
	if (!ok(build_several_flushes(dir, &o, 6), "(c) six flushes, six manifest edits"))
		goto out;
	if (!ok(read_current(dir, name, sizeof(name)), "(c) CURRENT names a manifest (%s)", name))
		goto out;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(curpath, sizeof(curpath), "%s/CURRENT", dir);
	if (!read_file(path, &orig, &orig_len) || !read_file(curpath, &cur_orig, &cur_len))
		goto out;
	n = log_records(orig, orig_len, offs, lens, 256);
	tap_diag("(c) %s: %zu bytes, %d records", path, orig_len, n);
	if (!ok(n >= 3, "(c) the manifest holds several records (%d)", n))
		goto out;

	/* a flipped byte in the payload of a middle record */
	ok(flip_byte(path, offs[n / 2] + NOKV_LOG_RECORD_HEADER + lens[n / 2] / 2),
	   "(c) flip a byte in the payload of record %d of %d", n / 2, n);
	db = NULL;
	memset(&err, 0, sizeof(err));
	rc = nokv_open(&o, dir, &db, &err);
	is_int(rc, NOKV_CORRUPTION, "(c) open fails with NOKV_CORRUPTION (got %s)", code_name(rc));
	tap_diag("(c) message: %s", err.msg);
	ok(strstr(err.msg, name) != NULL, "(c) the message names %s", name);
	if (rc == NOKV_OK)
		nokv_close(db);

	/* the first record (the base state) damaged */
	ok(write_file(path, orig, orig_len), "(c) restore the manifest");
	ok(flip_byte(path, offs[0] + NOKV_LOG_RECORD_HEADER + lens[0] / 2),
	   "(c) flip a byte in the payload of the first record");
	db = NULL;
	memset(&err, 0, sizeof(err));
	rc = nokv_open(&o, dir, &db, &err);
	is_int(rc, NOKV_CORRUPTION, "(c) a damaged first record: NOKV_CORRUPTION (got %s)", code_name(rc));
	if (rc == NOKV_OK)
		nokv_close(db);

	/* the file header */
	ok(write_file(path, orig, orig_len), "(c) restore the manifest");
	ok(flip_byte(path, 2), "(c) damage the magic of the file header");
	db = NULL;
	memset(&err, 0, sizeof(err));
	rc = nokv_open(&o, dir, &db, &err);
	is_int(rc, NOKV_CORRUPTION, "(c) a bad magic: NOKV_CORRUPTION (got %s)", code_name(rc));
	if (rc == NOKV_OK)
		nokv_close(db);

	/* (d) CURRENT naming a manifest that does not exist, or garbage */
	ok(write_file(path, orig, orig_len), "(d) restore the manifest");
	{
		static const char *const bad_current[] = {
			"MANIFEST-999999\n", "garbage\n", "", "MANIFEST-\n",
		};

		for (size_t i = 0; i < sizeof(bad_current) / sizeof(bad_current[0]); i++)
		{
			ok(write_file(curpath, bad_current[i], strlen(bad_current[i])),
			   "(d) CURRENT := \"%.*s\"", (int) strcspn(bad_current[i], "\n"), bad_current[i]);
			db = NULL;
			memset(&err, 0, sizeof(err));
			rc = nokv_open(&o, dir, &db, &err);
			ok(rc != NOKV_OK, "(d) open fails (%s: %s)", code_name(rc), err.msg);
			is_int(rc, NOKV_CORRUPTION, "(d) with NOKV_CORRUPTION");
			if (rc == NOKV_OK)
				nokv_close(db);
		}
	}

	/* failed opens changed nothing: with the real CURRENT back, all is there */
	ok(write_file(curpath, cur_orig, cur_len), "(d) restore CURRENT");
	db = open_db(&o, dir);
	if (ok(db != NULL, "(c/d) the restored directory opens"))
	{
		readback	rb;

		read_back(db, NKEYS, &rb);
		ok(rb.correct == NKEYS && rb.errors == 0, "(c/d) failed opens did not damage anything");
		nokv_close(db);
	}
out:
	free(orig);
	free(cur_orig);
	tap_rmdir(dir);
	free(dir);
}

/* ---------- (e) a listed SST deleted ---------- */

static void
test_missing_sst(void)
{
	nokv_options o;
	char	   *dir = tap_tmpdir("corrupt-missing");
	char		sst[4200];
	int			nsst;

	base_options(&o);
	o.l0_compaction_trigger = 100;	/* six flushes, six L0 files */
	o.l0_slowdown_trigger = 200;
	o.l0_stop_trigger = 300;
	if (!ok(build_several_flushes(dir, &o, 6), "(e) build a directory with several SSTs"))
		goto out;
	nsst = count_suffix(dir, ".sst");
	tap_diag("(e) %d SST files", nsst);
	if (!ok(nsst >= 2 && pick_file(dir, ".sst", true, sst, sizeof(sst)), "(e) there are several SSTs"))
		goto out;
	ok(unlink(sst) == 0, "(e) delete %s", base_name(sst));
	expect_detected("(e) missing SST", dir, &o, sst, 0);
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
	test_sst_damage();
	test_wal_damage();
	test_manifest_damage();
	test_missing_sst();
	return tap_done();
}
