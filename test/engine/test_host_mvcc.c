/*-------------------------------------------------------------------------
 *
 * test_host_mvcc.c
 *	  The engine features a host with its own log and its own MVCC relies
 *	  on: batch bytes, the log-append hook, host-driven garbage decisions,
 *	  visibility-aware expiry on reads, inline background work and shutdown.
 *
 * The PostgreSQL extension logs every batch in its own WAL (the bytes come
 * from nokv_batch_data and are replayed with nokv_batch_from_data), lets
 * the engine ask it for each batch's log position and version under the
 * engine's write lock (held shared: its WAL takes concurrent appends), stores the writing transaction's xid in every value
 * and decides in the compaction filter which versions are garbage.  Values
 * here carry a one-byte tag standing in for that metadata:
 *
 *	'A'	written by an aborted transaction: the filter says DROP (only this
 *		version goes) and the visibility hook hides it
 *	'C'	committed: KEEP
 *	'K'	committed, used for TTL puts: KEEP
 *	'B'	the oldest version any reader can need: KEEP_AS_BASE
 *	'X'	the same, frozen: CHANGE_AS_BASE to a value tagged 'B'
 *	'D'	a delete every reader sees: DELETE_KEY
 *
 * Every engine here runs without background threads and with a test clock,
 * so what each check observes does not depend on timing.  The only threads
 * are the concurrent writers of the log-append tests (with the memtable
 * checker of the concurrent-append one) and the stalled writer of the
 * shutdown test.
 *
 * test/engine/test_host_mvcc.c
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "nokv/ikey.h"
#include "nokv/inspect.h"
#include "nokv/nokv.h"
#include "nokv/status.h"
#include "tap.h"
#include "testutil.h"

/* ---------- shared helpers ---------- */

static _Atomic uint64_t fake_now = 1700000000000ULL;

static uint64_t
test_clock(void *arg)
{
	(void) arg;
	return atomic_load(&fake_now);
}

static void
on_alarm(int sig)
{
	static const char msg[] = "Bail out! test_host_mvcc timed out (a hang?)\n";

	(void) sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(254);
	_exit(255);
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* a copy of data in a buffer of exactly len bytes, so ASan sees over-reads */
static char *
exact_copy(const char *data, size_t len)
{
	char	   *p = malloc(len ? len : 1);

	if (!p)
		tap_bail("out of memory");
	if (len)
		memcpy(p, data, len);
	return p;
}

/* switch the active memtable and flush every immutable one */
static bool
flush_memtables(nokv_db *db)
{
	nokv_error	err = {0};
	int			rc = nokv_rotate_memtable(db, &err);

	if (rc != NOKV_OK)
	{
		tap_diag("rotate failed: %s", err.msg);
		return false;
	}
	while ((rc = nokv_flush_one(db, &err)) > 0)
		;
	if (rc < 0)
		tap_diag("flush failed: %s", err.msg);
	return rc == 0;
}

static uint64_t
total_entries(nokv_db *db)
{
	nokv_stats	st;
	uint64_t	n = 0;

	nokv_get_stats(db, &st);
	for (int l = 0; l < st.num_levels; l++)
		n += st.levels[l].entries;
	return n;
}

/* what a read of one key at one version found */
typedef struct found
{
	int			rc;				/* 1 found, 0 absent, -1 error */
	uint64_t	version;
	uint64_t	expires;
	size_t		len;
	char		value[1024];
} found;

/*
 * Read key as of version at (0 = latest) through an iterator bounded to
 * that key, which also reports the version read.
 */
static found
lookup(nokv_db *db, const char *key, uint64_t at, nokv_visible_fn vis, void *vis_arg)
{
	nokv_read_options ro;
	size_t		klen = strlen(key);
	char		upper[128];
	nokv_iter  *it;
	found		r;

	memset(&r, 0, sizeof(r));
	nokv_read_options_init(&ro);
	ro.version = at;
	ro.visible = vis;
	ro.visible_arg = vis_arg;
	memcpy(upper, key, klen);
	upper[klen] = '\0';
	ro.lower_bound = key;
	ro.lower_len = klen;
	ro.upper_bound = upper;
	ro.upper_len = klen + 1;
	it = nokv_iter_new(db, &ro, NOKV_CF_DEFAULT);
	nokv_iter_seek_to_first(it);
	if (nokv_iter_valid(it))
	{
		size_t		n;
		const char *v = nokv_iter_value(it, &n);

		r.rc = 1;
		r.version = nokv_iter_version(it);
		r.expires = nokv_iter_expires_at(it);
		r.len = n < sizeof(r.value) ? n : sizeof(r.value);
		memcpy(r.value, v, r.len);
	}
	else
		r.rc = nokv_iter_status(it, NULL) == NOKV_OK ? 0 : -1;
	nokv_iter_free(it);
	return r;
}

/*
 * At read version at, key shows version want_ver with value want (want
 * NULL: the key is absent).  The iterator and the point read must agree.
 */
static bool
shows(nokv_db *db, const char *key, uint64_t at, uint64_t want_ver, const char *want)
{
	found		r = lookup(db, key, at, NULL, NULL);
	nokv_read_options ro;
	nokv_error	err = {0};
	char	   *v = NULL;
	size_t		n = 0;
	int			rc;
	bool		good;

	nokv_read_options_init(&ro);
	ro.version = at;
	rc = nokv_get(db, &ro, NOKV_CF_DEFAULT, key, strlen(key), &v, &n, &err);
	if (want == NULL)
		good = r.rc == 0 && rc == NOKV_NOT_FOUND;
	else
		good = r.rc == 1 && r.version == want_ver && r.len == strlen(want) &&
			memcmp(r.value, want, r.len) == 0 &&
			rc == NOKV_OK && n == strlen(want) && memcmp(v, want, n) == 0;
	if (!good)
		tap_diag("  %s at %" PRIu64 ": iterator rc %d version %" PRIu64 " '%.*s', get rc %d '%.*s';"
				 " expected %s version %" PRIu64,
				 key, at, r.rc, r.version, (int) (r.len > 40 ? 40 : r.len), r.value, rc,
				 (int) (n > 40 ? 40 : n), v ? v : "", want ? want : "(absent)", want_ver);
	free(v);
	return good;
}

/* ---------- external-log writes with explicit versions ---------- */

static uint64_t next_version;	/* the last version handed out */
static int	write_failures;

static uint64_t
xwrite(nokv_db *db, nokv_batch *b)
{
	nokv_write_options wo = {0};
	nokv_error	err = {0};
	uint64_t	v = ++next_version;
	int			rc;

	wo.version = v;
	wo.log_position = v * 10;
	rc = nokv_write(db, &wo, b, &err);
	if (rc != NOKV_OK)
	{
		write_failures++;
		tap_diag("  write of version %" PRIu64 " failed: %s", v, err.msg);
	}
	nokv_batch_free(b);
	return v;
}

static uint64_t
xput_n(nokv_db *db, const char *key, const char *val, size_t vlen, uint64_t expires)
{
	nokv_batch *b = nokv_batch_new();

	if (nokv_batch_put_ttl(b, NOKV_CF_DEFAULT, key, strlen(key), val, vlen, expires) != NOKV_OK)
		write_failures++;
	return xwrite(db, b);
}

static uint64_t
xput(nokv_db *db, const char *key, const char *val)
{
	return xput_n(db, key, val, strlen(val), 0);
}

static uint64_t
xdel(nokv_db *db, const char *key)
{
	nokv_batch *b = nokv_batch_new();

	if (nokv_batch_delete(b, NOKV_CF_DEFAULT, key, strlen(key)) != NOKV_OK)
		write_failures++;
	return xwrite(db, b);
}

static uint64_t
xdelrange(nokv_db *db, const char *start, const char *end)
{
	nokv_batch *b = nokv_batch_new();

	if (nokv_batch_delete_range(b, NOKV_CF_DEFAULT, start, strlen(start), end, strlen(end)) != NOKV_OK)
		write_failures++;
	return xwrite(db, b);
}

/* ================= 1. batch bytes round trip ================= */

/* a fresh batch must be the exact fixed point of data -> from_data -> data */
static bool
reencodes(nokv_batch *b)
{
	size_t		len;
	const char *d = nokv_batch_data(b, &len);
	char	   *copy = exact_copy(d, len);
	nokv_batch *c = nokv_batch_new();
	size_t		len2;
	const char *d2;
	bool		same;

	same = nokv_batch_from_data(c, copy, len, NULL) == NOKV_OK &&
		nokv_batch_count(c) == nokv_batch_count(b);
	d2 = nokv_batch_data(c, &len2);
	same = same && len2 == len && memcmp(d2, copy, len) == 0;
	nokv_batch_free(c);
	free(copy);
	return same;
}

/* decode bytes into a non-empty batch; returns the code, checks the failure contract */
static int
decode_into(nokv_batch *c, const char *bytes, size_t len, bool *contract_ok)
{
	char	   *copy = exact_copy(bytes, len);
	nokv_error	err;
	int			rc;

	memset(&err, 0, sizeof(err));
	nokv_batch_put(c, NOKV_CF_DEFAULT, "stale", 5, "entry", 5);
	rc = nokv_batch_from_data(c, copy, len, &err);
	if (rc == NOKV_OK)
		*contract_ok = reencodes(c);
	else
		*contract_ok = rc == NOKV_CORRUPTION && err.code == NOKV_CORRUPTION && err.msg[0] != '\0' &&
			nokv_batch_count(c) == 0 && nokv_batch_size(c) == 0;
	free(copy);
	return rc;
}

static void
test_batch_bytes(void)
{
	char	   *dir = tap_tmpdir("hm-batch");
	nokv_batch *b = nokv_batch_new();
	nokv_batch *c = nokv_batch_new();
	size_t		bounds[16];
	int			nb = 0;
	size_t		len;
	const char *data;
	char	   *copy;
	char		bigval[3000];
	char		longkey[300];
	nokv_error	err;
	int			rc;
	uint64_t	seed = 0x6e6f6b76ULL;

	tap_diag("1. batch bytes: round trip, truncation, corruption");
	for (size_t i = 0; i < sizeof(bigval); i++)
		bigval[i] = (char) ('a' + i % 26);
	memset(longkey, 'L', sizeof(longkey));

	/* an empty batch: zero bytes, never a NULL pointer */
	data = nokv_batch_data(b, &len);
	ok(data != NULL && len == 0, "an empty batch has zero bytes and a non-NULL pointer");
	memset(&err, 0, sizeof(err));
	nokv_batch_put(c, 0, "x", 1, "y", 1);
	rc = nokv_batch_from_data(c, data, 0, &err);
	ok(rc == NOKV_OK && nokv_batch_count(c) == 0 && nokv_batch_size(c) == 0,
	   "zero bytes decode to an empty batch (replacing what was there)");
	nokv_batch_put(c, 0, "x", 1, "y", 1);
	rc = nokv_batch_from_data(c, NULL, 0, &err);
	ok(rc == NOKV_OK && nokv_batch_count(c) == 0, "NULL with length 0 decodes to an empty batch too");

	bounds[nb++] = 0;
	nokv_batch_put(b, NOKV_CF_DEFAULT, "alpha", 5, "one", 3);
	bounds[nb++] = nokv_batch_size(b);
	nokv_batch_put_ttl(b, NOKV_CF_DEFAULT, "beta", 4, "two", 3, 1700000123456ULL);
	bounds[nb++] = nokv_batch_size(b);
	nokv_batch_put(b, NOKV_CF_LOCK, "", 0, "", 0);
	bounds[nb++] = nokv_batch_size(b);
	nokv_batch_delete(b, NOKV_CF_WRITE, "gamma", 5);
	bounds[nb++] = nokv_batch_size(b);
	nokv_batch_delete_range(b, NOKV_CF_DEFAULT, "m", 1, "p", 1);
	bounds[nb++] = nokv_batch_size(b);
	nokv_batch_put_ttl(b, NOKV_CF_WRITE, "delta", 5, bigval, sizeof(bigval), 1ULL << 62);
	bounds[nb++] = nokv_batch_size(b);
	nokv_batch_put(b, NOKV_CF_DEFAULT, longkey, sizeof(longkey), "lk", 2);
	bounds[nb++] = nokv_batch_size(b);
	nokv_batch_delete(b, NOKV_CF_DEFAULT, "omega", 5);
	bounds[nb++] = nokv_batch_size(b);

	data = nokv_batch_data(b, &len);
	ok(len == nokv_batch_size(b) && len == bounds[nb - 1], "nokv_batch_data covers the whole batch (%zu bytes)", len);
	copy = exact_copy(data, len);
	memset(&err, 0, sizeof(err));
	nokv_batch_put(c, 0, "stale", 5, "entry", 5);
	rc = nokv_batch_from_data(c, copy, len, &err);
	{
		size_t		len2;
		const char *d2 = nokv_batch_data(c, &len2);

		ok(rc == NOKV_OK && nokv_batch_count(c) == nokv_batch_count(b) && len2 == len &&
		   memcmp(d2, data, len) == 0,
		   "from_data rebuilds the same batch: %u entries, identical bytes (%s)",
		   nokv_batch_count(c), err.msg);
	}
	ok(reencodes(c), "the rebuilt batch round-trips again");
	free(copy);

	/* the rebuilt batch means the same thing when applied */
	{
		nokv_options o;
		nokv_db    *db;
		char	   *v = NULL;
		size_t		n = 0;
		uint64_t	exp = 0;

		nokv_options_init(&o);
		o.memtable_size = 256 << 10;
		o.external_log = true;
		o.background_threads = false;
		o.clock_ms = test_clock;
		memset(&err, 0, sizeof(err));
		if (ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "open an external-log engine (%s)", err.msg))
		{
			next_version = 0;
			write_failures = 0;
			xput(db, "gamma", "g");		/* wrong cf: must survive */
			{
				nokv_batch *g = nokv_batch_new();

				nokv_batch_put(g, NOKV_CF_WRITE, "gamma", 5, "g", 1);
				xwrite(db, g);
			}
			xput(db, "n", "inside the range");
			xput(db, "p", "the range's end");
			xput(db, "omega", "deleted by the batch");
			{
				nokv_batch *copyb = nokv_batch_new();
				char	   *bytes = exact_copy(data, len);

				nokv_batch_from_data(copyb, bytes, len, NULL);
				free(bytes);
				xwrite(db, copyb);
			}
			is_int(write_failures, 0, "the rebuilt batch is accepted by nokv_write");

			ok(nokv_get_ttl(db, NULL, NOKV_CF_DEFAULT, "alpha", 5, &v, &n, &exp, &err) == NOKV_OK &&
			   n == 3 && memcmp(v, "one", 3) == 0 && exp == 0, "put without ttl applied");
			free(v);
			v = NULL;
			ok(nokv_get_ttl(db, NULL, NOKV_CF_DEFAULT, "beta", 4, &v, &n, &exp, &err) == NOKV_OK &&
			   n == 3 && memcmp(v, "two", 3) == 0 && exp == 1700000123456ULL,
			   "put with ttl applied with its expiry");
			free(v);
			v = NULL;
			ok(nokv_get(db, NULL, NOKV_CF_LOCK, "", 0, &v, &n, &err) == NOKV_OK && n == 0,
			   "empty key and empty value in another column family applied");
			free(v);
			v = NULL;
			ok(nokv_get(db, NULL, NOKV_CF_WRITE, "gamma", 5, &v, &n, &err) == NOKV_NOT_FOUND &&
			   nokv_get(db, NULL, NOKV_CF_DEFAULT, "gamma", 5, &v, &n, &err) == NOKV_OK,
			   "delete applied to its own column family only");
			free(v);
			v = NULL;
			ok(nokv_get(db, NULL, NOKV_CF_DEFAULT, "n", 1, &v, &n, &err) == NOKV_NOT_FOUND &&
			   nokv_get(db, NULL, NOKV_CF_DEFAULT, "p", 1, &v, &n, &err) == NOKV_OK,
			   "range delete [m, p) applied");
			free(v);
			v = NULL;
			ok(nokv_get_ttl(db, NULL, NOKV_CF_WRITE, "delta", 5, &v, &n, &exp, &err) == NOKV_OK &&
			   n == sizeof(bigval) && memcmp(v, bigval, n) == 0 && exp == (1ULL << 62),
			   "large value with a large expiry applied");
			free(v);
			v = NULL;
			ok(nokv_get(db, NULL, NOKV_CF_DEFAULT, longkey, sizeof(longkey), &v, &n, &err) == NOKV_OK &&
			   n == 2 && memcmp(v, "lk", 2) == 0, "300-byte key applied");
			free(v);
			v = NULL;
			ok(nokv_get(db, NULL, NOKV_CF_DEFAULT, "omega", 5, &v, &n, &err) == NOKV_NOT_FOUND,
			   "the batch's trailing delete applied");
			free(v);
			nokv_close(db);
		}
	}

	/* every prefix: a valid batch at entry boundaries, corruption elsewhere */
	{
		int			boundary_ok = 0,
					boundary_bad = 0,
					cut_ok = 0,
					cut_bad = 0;

		for (size_t cut = 0; cut < len; cut++)
		{
			char	   *t = exact_copy(data, cut);
			int			k = -1;

			for (int i = 0; i < nb; i++)
				if (bounds[i] == cut)
					k = i;
			memset(&err, 0, sizeof(err));
			nokv_batch_put(c, 0, "stale", 5, "entry", 5);
			rc = nokv_batch_from_data(c, t, cut, &err);
			if (k >= 0)
			{
				size_t		l2;
				const char *d2 = nokv_batch_data(c, &l2);

				if (rc == NOKV_OK && nokv_batch_count(c) == (uint32_t) k && l2 == cut &&
					memcmp(d2, data, cut) == 0)
					boundary_ok++;
				else
					boundary_bad++;
			}
			else if (rc == NOKV_CORRUPTION && err.code == NOKV_CORRUPTION && err.msg[0] &&
					 nokv_batch_count(c) == 0 && nokv_batch_size(c) == 0)
				cut_ok++;
			else
			{
				if (cut_bad++ < 3)
					tap_diag("  prefix of %zu bytes: rc %d, count %u", cut, rc, nokv_batch_count(c));
			}
			free(t);
		}
		ok(boundary_bad == 0 && boundary_ok == nb - 1,
		   "prefixes ending at an entry boundary decode to that many entries (%d)", boundary_ok);
		ok(cut_bad == 0 && cut_ok == (int) len - (nb - 1),
		   "every other prefix (%d) returns NOKV_CORRUPTION and leaves an empty batch", cut_ok);
	}

	/* every byte mutated several ways: a valid batch or corruption, nothing else */
	{
		static const int xors[] = {0x01, 0x02, 0x40, 0x80, 0xff};
		static const int sets[] = {0x00, 0x03, 0x7f, 0xff};
		int			bad = 0,
					rejected = 0,
					accepted = 0;
		char	   *m = exact_copy(data, len);

		for (size_t i = 0; i < len; i++)
		{
			for (int x = 0; x < (int) (sizeof(xors) / sizeof(xors[0])) + (int) (sizeof(sets) / sizeof(sets[0])); x++)
			{
				bool		contract;
				char		saved = m[i];

				if (x < (int) (sizeof(xors) / sizeof(xors[0])))
					m[i] = (char) (m[i] ^ xors[x]);
				else
					m[i] = (char) sets[x - (int) (sizeof(xors) / sizeof(xors[0]))];
				rc = decode_into(c, m, len, &contract);
				m[i] = saved;
				if (!contract)
				{
					if (bad++ < 3)
						tap_diag("  byte %zu mutation %d: rc %d breaks the contract", i, x, rc);
				}
				else if (rc == NOKV_OK)
					accepted++;
				else
					rejected++;
			}
		}
		free(m);
		ok(bad == 0 && rejected > 0,
		   "single-byte corruptions: %d rejected with an empty batch, %d still valid, 0 misbehaved",
		   rejected, accepted);
	}

	/* hand-made malformed entries */
	{
		static const struct
		{
			const char *what;
			const char *bytes;
			size_t		len;
		}			cases[] = {
			{"unknown op", "\x07\x00\x01k\x01v", 6},
			{"op 0 (seek kind)", "\x00\x00\x01k\x01v", 6},
			{"column family 3", "\x02\x03\x01k\x01v", 6},
			{"column family 255", "\x02\xff\x01k\x01v", 6},
			{"ttl flag on a delete", "\x81\x00\x01k\x05", 5},
			{"ttl flag on a range delete", "\x83\x00\x01k\x01z\x05", 7},
			{"ttl of zero", "\x82\x00\x01k\x01v\x00", 7},
			{"ttl varint cut", "\x82\x00\x01k\x01v\x80", 7},
			{"key length past the end", "\x02\x00\x05k\x01v", 6},
			{"key length varint cut", "\x02\x00\xff", 3},
			{"key length varint too long", "\x02\x00\xff\xff\xff\xff\xff\x01k", 9},
			{"value length past the end", "\x02\x00\x01k\x09v", 6},
			{"missing value", "\x02\x00\x01k", 4},
			{"range delete with start after end", "\x03\x00\x01z\x01" "a", 6},
			{"range delete with start equal to end", "\x03\x00\x01k\x01k", 6},
			{"one stray byte after an entry", "\x01\x00\x01k\x01", 5},
			{"a lone op byte", "\x02", 1},
		};

		for (int i = 0; i < (int) (sizeof(cases) / sizeof(cases[0])); i++)
		{
			bool		contract;

			rc = decode_into(c, cases[i].bytes, cases[i].len, &contract);
			ok(rc == NOKV_CORRUPTION && contract, "malformed batch rejected: %s", cases[i].what);
		}
	}

	/* a key longer than NOKV_MAX_KEY_SIZE, every byte present */
	{
		size_t		klen = NOKV_MAX_KEY_SIZE + 1;
		size_t		n = 0;
		char	   *big = malloc(klen + 16);
		size_t		v = klen;
		bool		contract;

		big[n++] = 0x01;		/* delete */
		big[n++] = 0x00;
		for (; v >= 0x80; v >>= 7)
			big[n++] = (char) (0x80 | (v & 0x7f));
		big[n++] = (char) v;
		memset(big + n, 'k', klen);
		n += klen;
		rc = decode_into(c, big, n, &contract);
		ok(rc == NOKV_CORRUPTION && contract, "a key of NOKV_MAX_KEY_SIZE + 1 bytes is rejected");
		free(big);
	}

	/* the message names the entry that failed */
	{
		nokv_batch *g = nokv_batch_new();
		char		buf[64];
		size_t		n;
		const char *d;

		nokv_batch_put(g, 0, "a", 1, "1", 1);
		nokv_batch_delete(g, 0, "b", 1);
		d = nokv_batch_data(g, &n);
		memcpy(buf, d, n);
		memcpy(buf + n, "\x03\x00\x01z\x01" "a", 6);
		memset(&err, 0, sizeof(err));
		rc = nokv_batch_from_data(c, buf, n + 6, &err);
		ok(rc == NOKV_CORRUPTION && strstr(err.msg, "entry 2") != NULL,
		   "the error names the failing entry's index (%s)", err.msg);
		{
			char		want[64];

			buf[n] = 0x02;		/* a lone op byte after two good entries */
			memset(&err, 0, sizeof(err));
			rc = nokv_batch_from_data(c, buf, n + 1, &err);
			snprintf(want, sizeof(want), "entry 2 at offset %zu", n);
			ok(rc == NOKV_CORRUPTION && strstr(err.msg, want) != NULL,
			   "a malformed entry is named by index and offset (%s)", err.msg);
		}
		nokv_batch_free(g);
	}

	/* random bytes, biased towards plausible headers */
	{
		int			bad = 0,
					valid = 0;
		int			rounds = scaled(20000);

		for (int r = 0; r < rounds; r++)
		{
			char		buf[48];
			size_t		n = rnd_below(&seed, sizeof(buf) + 1);
			bool		contract;

			for (size_t i = 0; i < n; i++)
				buf[i] = (char) (rnd_below(&seed, 4) == 0 ? rnd_below(&seed, 4) : rnd_below(&seed, 256));
			if (n >= 2 && rnd_below(&seed, 2))
			{
				buf[0] = (char) (1 + rnd_below(&seed, 3) + (rnd_below(&seed, 4) == 0 ? 0x80 : 0));
				buf[1] = (char) rnd_below(&seed, 3);
			}
			rc = decode_into(c, buf, n, &contract);
			if (!contract)
				bad++;
			else if (rc == NOKV_OK)
				valid++;
		}
		ok(bad == 0, "%d random byte strings: valid batches or NOKV_CORRUPTION, never anything else (%d valid)",
		   rounds, valid);
	}

	nokv_batch_free(b);
	nokv_batch_free(c);
	tap_rmdir(dir);
	free(dir);
}

/* ================= 2. external log: the log-append hook ================= */

typedef struct log_record
{
	uint32_t	log_id;
	uint64_t	position;
	uint64_t	version;
	char	   *bytes;
	size_t		len;
} log_record;

/* the host's log, as the hook sees it */
typedef struct host_log
{
	uint64_t	last_version;
	uint64_t	last_position;
	uint64_t	step;			/* version increment per append */
	bool		force;			/* return forced_version (a buggy host) */
	uint64_t	forced_version;
	int			fail_code;		/* nonzero: refuse the append */
	uint32_t	log_id;			/* recorded with each append */
	int			calls;
	bool		bytes_matched;
	const nokv_batch *expect;	/* the batch the caller passed */
	log_record	recs[64];
	int			nrecs;
} host_log;

static int
host_log_append(void *arg, const nokv_batch *b, uint64_t *position, uint64_t *version,
				nokv_error *err)
{
	host_log   *h = arg;
	size_t		len;
	const char *d = nokv_batch_data(b, &len);

	h->calls++;
	if (h->expect)
	{
		size_t		elen;
		const char *e = nokv_batch_data(h->expect, &elen);

		h->bytes_matched = b == h->expect && elen == len && memcmp(e, d, len) == 0;
	}
	if (h->fail_code)
		return nokv_error_set(err, (nokv_code) h->fail_code, "host log is full");
	if (h->force)
	{
		*version = h->forced_version;
		*position = h->last_position + 100;
		return NOKV_OK;
	}
	h->last_version += h->step ? h->step : 1;
	h->last_position += 100;
	*version = h->last_version;
	*position = h->last_position;
	if (h->nrecs < (int) (sizeof(h->recs) / sizeof(h->recs[0])))
	{
		log_record *r = &h->recs[h->nrecs++];

		r->log_id = h->log_id;
		r->position = *position;
		r->version = *version;
		r->bytes = exact_copy(d, len);
		r->len = len;
	}
	return NOKV_OK;
}

static int
hooked_write(nokv_db *db, host_log *h, nokv_batch *b, uint32_t log_id, uint64_t version,
			 uint64_t position, nokv_error *err)
{
	nokv_write_options wo = {0};

	wo.log_id = log_id;
	wo.version = version;
	wo.log_position = position;
	wo.log_append = host_log_append;
	wo.log_append_arg = h;
	h->expect = b;
	h->bytes_matched = false;
	h->log_id = log_id;
	memset(err, 0, sizeof(*err));
	return nokv_write(db, &wo, b, err);
}

static nokv_batch *
one_put(const char *key, const char *val)
{
	nokv_batch *b = nokv_batch_new();

	nokv_batch_put(b, NOKV_CF_DEFAULT, key, strlen(key), val, strlen(val));
	return b;
}

/* every key, value and version of cf 0 of two engines agree */
static bool
same_contents(nokv_db *a, nokv_db *b, int *count)
{
	nokv_iter  *ia = nokv_iter_new(a, NULL, NOKV_CF_DEFAULT);
	nokv_iter  *ib = nokv_iter_new(b, NULL, NOKV_CF_DEFAULT);
	bool		same = true;

	*count = 0;
	nokv_iter_seek_to_first(ia);
	nokv_iter_seek_to_first(ib);
	while (same && nokv_iter_valid(ia) && nokv_iter_valid(ib))
	{
		size_t		ka,
					kb,
					va,
					vb;
		const char *pka = nokv_iter_key(ia, &ka);
		const char *pkb = nokv_iter_key(ib, &kb);
		const char *pva = nokv_iter_value(ia, &va);
		const char *pvb = nokv_iter_value(ib, &vb);

		same = ka == kb && memcmp(pka, pkb, ka) == 0 && va == vb && memcmp(pva, pvb, va) == 0 &&
			nokv_iter_version(ia) == nokv_iter_version(ib) &&
			nokv_iter_expires_at(ia) == nokv_iter_expires_at(ib);
		(*count)++;
		nokv_iter_next(ia);
		nokv_iter_next(ib);
	}
	same = same && !nokv_iter_valid(ia) && !nokv_iter_valid(ib);
	nokv_iter_free(ia);
	nokv_iter_free(ib);
	return same;
}

static void
test_log_append(void)
{
	char	   *dir = tap_tmpdir("hm-log");
	char	   *dir2 = tap_tmpdir("hm-replay");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	host_log   *h = calloc(1, sizeof(host_log));
	nokv_batch *b;
	int			rc;
	uint64_t	last;

	tap_diag("2. external log: the log-append hook");
	nokv_options_init(&o);
	o.memtable_size = 256 << 10;
	o.external_log = true;
	o.background_threads = false;
	o.clock_ms = test_clock;
	if (!ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "open an external-log engine (%s)", err.msg))
		return;

	/* the hook alone sets version and position */
	h->last_version = 9;
	b = nokv_batch_new();
	nokv_batch_put(b, NOKV_CF_DEFAULT, "k1", 2, "v1", 2);
	nokv_batch_put(b, NOKV_CF_DEFAULT, "k2", 2, "v2", 2);
	nokv_batch_delete(b, NOKV_CF_DEFAULT, "k0", 2);
	rc = hooked_write(db, h, b, 0, 0, 0, &err);
	ok(rc == NOKV_OK && h->calls == 1, "a write with version 0 and a hook is accepted; the hook ran once (%s)", err.msg);
	ok(h->bytes_matched, "the hook got the caller's batch, bytes as nokv_batch_data shows them");
	nokv_batch_free(b);
	b = one_put("k3", "v3");
	rc = hooked_write(db, h, b, 0, 999999, 999999, &err);
	ok(rc == NOKV_OK && h->calls == 2, "a second write: the hook ran once more");
	nokv_batch_free(b);
	h->step = 9;
	b = nokv_batch_new();
	nokv_batch_put_ttl(b, NOKV_CF_DEFAULT, "k4", 2, "v4", 2, atomic_load(&fake_now) + 3600000);
	rc = hooked_write(db, h, b, 0, 0, 0, &err);
	ok(rc == NOKV_OK && h->calls == 3, "a third write, with a gap in versions");
	nokv_batch_free(b);
	h->step = 1;

	ok(lookup(db, "k1", 0, NULL, NULL).version == 10 && lookup(db, "k2", 0, NULL, NULL).version == 10,
	   "both puts of the first batch carry the hook's version 10");
	ok(lookup(db, "k3", 0, NULL, NULL).version == 11,
	   "the second batch has version 11, not the ignored wo.version 999999");
	ok(lookup(db, "k4", 0, NULL, NULL).version == 20, "the third batch has version 20");
	is_int(nokv_last_version(db), 20, "nokv_last_version follows the hook");
	ok(shows(db, "k1", 9, 0, NULL) && shows(db, "k1", 10, 10, "v1"),
	   "reads as of version 9 do not see the batch, as of 10 they do");

	/* versions that do not increase are refused, and nothing is applied */
	{
		static const uint64_t bad_versions[] = {20, 5, 0, UINT64_MAX};

		for (int i = 0; i < 4; i++)
		{
			int			calls = h->calls;

			h->force = true;
			h->forced_version = bad_versions[i];
			b = one_put("k5", "never");
			rc = hooked_write(db, h, b, 0, 0, 0, &err);
			nokv_batch_free(b);
			ok(rc == NOKV_INVALID_ARGUMENT && h->calls == calls + 1 &&
			   lookup(db, "k5", 0, NULL, NULL).rc == 0 && nokv_last_version(db) == 20,
			   "a hook version of %" PRIu64 " (last is 20) fails with NOKV_INVALID_ARGUMENT, nothing applied (%s)",
			   bad_versions[i], err.msg);
		}
		h->force = false;
	}

	/* a hook that fails refuses the write with its own error */
	h->fail_code = NOKV_IO_ERROR;
	b = one_put("k5", "never");
	rc = hooked_write(db, h, b, 0, 0, 0, &err);
	nokv_batch_free(b);
	ok(rc == NOKV_IO_ERROR && strstr(err.msg, "host log is full") != NULL &&
	   lookup(db, "k5", 0, NULL, NULL).rc == 0 && nokv_last_version(db) == 20,
	   "a failing hook refuses the write with its code and message (%s)", err.msg);
	h->fail_code = 0;

	/* a log id out of range is refused before the hook runs */
	{
		int			calls = h->calls;

		b = one_put("k5", "never");
		rc = hooked_write(db, h, b, NOKV_MAX_EXTERNAL_LOGS, 0, 0, &err);
		nokv_batch_free(b);
		ok(rc == NOKV_INVALID_ARGUMENT && h->calls == calls, "log id %d is refused without calling the hook",
		   NOKV_MAX_EXTERNAL_LOGS);
	}

	/* the engine still works, and the failed attempts used no version */
	b = one_put("k5", "v5");
	rc = hooked_write(db, h, b, 0, 0, 0, &err);
	nokv_batch_free(b);
	ok(rc == NOKV_OK && lookup(db, "k5", 0, NULL, NULL).version == 21,
	   "after the refusals a good write gets version 21 (%s)", err.msg);

	/* flushed positions follow the hook's positions */
	is_int(nokv_external_log_flushed(db, 0), 0, "nothing flushed yet: log 0 flushed position is 0");
	ok(flush_memtables(db), "rotate + flush");
	last = h->last_position;
	is_int(nokv_external_log_flushed(db, 0), last,
		   "after the flush, log 0 is flushed up to the last batch's position (%" PRIu64 ")", last);
	b = one_put("k6", "v6");
	hooked_write(db, h, b, 0, 0, 0, &err);
	nokv_batch_free(b);
	b = one_put("k7", "v7");
	hooked_write(db, h, b, 7, 0, 0, &err);
	nokv_batch_free(b);
	is_int(nokv_external_log_flushed(db, 0), last, "an unflushed batch does not move the flushed position");
	is_int(nokv_external_log_flushed(db, 7), 0, "log 7 has nothing flushed");
	ok(flush_memtables(db), "rotate + flush again");
	is_int(nokv_external_log_flushed(db, 0), last + 100, "log 0 is flushed up to %" PRIu64, last + 100);
	is_int(nokv_external_log_flushed(db, 7), last + 200, "log 7 is flushed up to %" PRIu64, last + 200);
	is_int(nokv_external_log_flushed(db, NOKV_MAX_EXTERNAL_LOGS), 0, "an unknown log id reports 0");

	/* the host's log replays into another engine as the same data */
	{
		nokv_db    *db2;
		int			n = 0;
		bool		replay_ok = true;

		memset(&err, 0, sizeof(err));
		if (ok(nokv_open(&o, dir2, &db2, &err) == NOKV_OK, "open a second engine to replay into"))
		{
			for (int i = 0; i < h->nrecs; i++)
			{
				nokv_batch *rb = nokv_batch_new();
				nokv_write_options wo = {0};

				wo.log_id = h->recs[i].log_id;
				wo.version = h->recs[i].version;
				wo.log_position = h->recs[i].position;
				replay_ok = replay_ok &&
					nokv_batch_from_data(rb, h->recs[i].bytes, h->recs[i].len, &err) == NOKV_OK &&
					nokv_write(db2, &wo, rb, &err) == NOKV_OK;
				nokv_batch_free(rb);
			}
			ok(replay_ok, "%d logged batches replay through nokv_batch_from_data (%s)", h->nrecs, err.msg);
			bool		same = same_contents(db, db2, &n);

			ok(same && n == 7,
			   "the replayed engine has the same keys, values, versions and expiries (%d keys)", n);
			nokv_close(db2);
		}
	}

	/* without a hook, an explicit older version (a replayed batch) is still fine */
	{
		nokv_write_options wo = {0};

		wo.version = 10;
		wo.log_position = 100;
		b = one_put("k1", "v1");
		memset(&err, 0, sizeof(err));
		rc = nokv_write(db, &wo, b, &err);
		nokv_batch_free(b);
		ok(rc == NOKV_OK && nokv_last_version(db) == h->last_version,
		   "re-applying an old batch without the hook is accepted and does not move the last version");
	}

	for (int i = 0; i < h->nrecs; i++)
		free(h->recs[i].bytes);
	free(h);
	nokv_close(db);
	tap_rmdir(dir);
	tap_rmdir(dir2);
	free(dir);
	free(dir2);
}

/* ----- concurrent writers, versions from a counter under the write lock ----- */

#define CONC_THREADS 4

typedef struct conc_shared
{
	nokv_db    *db;
	uint64_t	counter;		/* only touched inside the hook */
	_Atomic int inside;
	_Atomic int overlaps;
	uint64_t   *call_versions;	/* versions in call order */
	int			ncalls;
	int			cap;
	int			per_thread;
} conc_shared;

/*
 * One writer thread of the log-append tests: it writes per_thread keys
 * <prefix><id>-<i> through a hook whose shared state is log, and notes the
 * version each append got.
 */
typedef struct hook_writer
{
	nokv_db    *db;
	void	   *log;
	int			(*append) (void *arg, const nokv_batch *b, uint64_t *position,
						   uint64_t *version, nokv_error *err);
	bool		concurrent;		/* log_append_concurrent */
	char		prefix;
	int			id;
	int			per_thread;
	int			current;		/* the write in progress */
	uint64_t   *assigned;		/* per write, the version its append got */
	int			failures;
	pthread_t	tid;
} hook_writer;

static void *
hook_writer_main(void *arg)
{
	hook_writer *w = arg;
	nokv_batch *b = nokv_batch_new();

	for (int i = 0; i < w->per_thread; i++)
	{
		nokv_write_options wo = {0};
		nokv_error	err;
		char		key[32];
		char		val[64];

		snprintf(key, sizeof(key), "%c%d-%06d", w->prefix, w->id, i);
		snprintf(val, sizeof(val), "value of %s padded to some length", key);
		nokv_batch_clear(b);
		nokv_batch_put(b, NOKV_CF_DEFAULT, key, strlen(key), val, strlen(val));
		wo.log_append = w->append;
		wo.log_append_arg = w;
		wo.log_append_concurrent = w->concurrent;
		w->current = i;
		if (nokv_write(w->db, &wo, b, &err) != NOKV_OK && w->failures++ == 0)
			tap_diag("writer %d: %s", w->id, err.msg);
	}
	nokv_batch_free(b);
	return NULL;
}

static void
start_hook_writers(hook_writer *w, nokv_db *db, void *log,
				   int (*append) (void *, const nokv_batch *, uint64_t *, uint64_t *, nokv_error *),
				   bool concurrent, char prefix, int per_thread)
{
	for (int t = 0; t < CONC_THREADS; t++)
	{
		w[t] = (hook_writer) {
			.db = db, .log = log, .append = append, .concurrent = concurrent,
			.prefix = prefix, .id = t, .per_thread = per_thread,
			.assigned = calloc((size_t) per_thread, sizeof(uint64_t)),
		};
		pthread_create(&w[t].tid, NULL, hook_writer_main, &w[t]);
	}
}

/* waits for the writers; returns how many writes failed */
static int
join_hook_writers(hook_writer *w)
{
	int			failures = 0;

	for (int t = 0; t < CONC_THREADS; t++)
	{
		pthread_join(w[t].tid, NULL);
		failures += w[t].failures;
	}
	return failures;
}

/* every writer's keys read back, each with the version its append got */
static bool
hook_keys_read_back(nokv_db *db, const hook_writer *w, int *seen)
{
	nokv_iter  *it = nokv_iter_new(db, NULL, NOKV_CF_DEFAULT);
	char		format[16];
	bool		match = true;

	snprintf(format, sizeof(format), "%c%%d-%%d", w[0].prefix);
	*seen = 0;
	for (nokv_iter_seek_to_first(it); nokv_iter_valid(it); nokv_iter_next(it))
	{
		size_t		klen;
		const char *k = nokv_iter_key(it, &klen);
		char		kbuf[32];
		int			t,
					i;

		snprintf(kbuf, sizeof(kbuf), "%.*s", (int) klen, k);
		if (sscanf(kbuf, format, &t, &i) != 2 || t < 0 || t >= CONC_THREADS || i < 0 ||
			i >= w[0].per_thread || nokv_iter_version(it) != w[t].assigned[i])
			match = false;
		(*seen)++;
	}
	nokv_iter_free(it);
	return match;
}

static int
conc_append(void *arg, const nokv_batch *b, uint64_t *position, uint64_t *version, nokv_error *err)
{
	hook_writer *w = arg;
	conc_shared *sh = w->log;

	(void) b;
	(void) err;
	if (atomic_exchange(&sh->inside, 1) != 0)
		atomic_fetch_add(&sh->overlaps, 1);
	*version = ++sh->counter;
	*position = sh->counter * 10;
	if (sh->ncalls < sh->cap)
		sh->call_versions[sh->ncalls] = *version;
	sh->ncalls++;
	w->assigned[w->current] = *version;
	atomic_store(&sh->inside, 0);
	return NOKV_OK;
}

static void
test_log_append_concurrent(void)
{
	char	   *dir = tap_tmpdir("hm-conc");
	nokv_options o;
	nokv_error	err = {0};
	conc_shared sh;
	hook_writer w[CONC_THREADS];
	int			failures;
	bool		in_order = true;
	bool		thread_order = true;
	bool		read_back;
	int			seen = 0;
	bool		flushed_all;

	memset(&sh, 0, sizeof(sh));
	sh.per_thread = scaled(3000);
	nokv_options_init(&o);
	o.memtable_size = 256 << 10;	/* several rotations during the run */
	o.external_log = true;
	o.background_threads = false;
	o.clock_ms = test_clock;
	if (!ok(nokv_open(&o, dir, &sh.db, &err) == NOKV_OK, "open an engine for concurrent writers (%s)", err.msg))
		return;
	sh.cap = CONC_THREADS * sh.per_thread;
	sh.call_versions = calloc((size_t) sh.cap, sizeof(uint64_t));
	start_hook_writers(w, sh.db, &sh, conc_append, false, 't', sh.per_thread);
	failures = join_hook_writers(w);
	is_int(failures, 0, "%d threads x %d hooked writes all succeed", CONC_THREADS, sh.per_thread);
	is_int(atomic_load(&sh.overlaps), 0, "the hook never ran in two writers at once (it runs under the write lock)");
	is_int(sh.ncalls, CONC_THREADS * sh.per_thread, "the hook ran once per write");
	for (int i = 1; i < sh.ncalls && i < sh.cap; i++)
		if (sh.call_versions[i] <= sh.call_versions[i - 1])
			in_order = false;
	ok(in_order, "versions are strictly increasing in hook-call order");
	for (int t = 0; t < CONC_THREADS; t++)
		for (int i = 1; i < sh.per_thread; i++)
			if (w[t].assigned[i] <= w[t].assigned[i - 1])
				thread_order = false;
	ok(thread_order, "each thread's writes got increasing versions");
	is_int(nokv_last_version(sh.db), sh.counter, "nokv_last_version is the last version handed out");

	read_back = hook_keys_read_back(sh.db, w, &seen);
	ok(read_back && seen == CONC_THREADS * sh.per_thread,
	   "every key reads back with the version its hook call assigned (%d keys)", seen);
	flushed_all = flush_memtables(sh.db);
	ok(flushed_all && nokv_external_log_flushed(sh.db, 0) == sh.counter * 10,
	   "after flushing everything, log 0 is flushed up to the last position (%" PRIu64 ")",
	   nokv_external_log_flushed(sh.db, 0));

	for (int t = 0; t < CONC_THREADS; t++)
		free(w[t].assigned);
	free(sh.call_versions);
	nokv_close(sh.db);
	tap_rmdir(dir);
	free(dir);
}

/* ----- concurrent appends: the hook runs in several writers at once ----- */

typedef struct shared_log
{
	nokv_db    *db;
	_Atomic uint64_t counter;	/* the log's next version, taken atomically */
	_Atomic int inside;
	_Atomic int overlaps;
	log_record *recs;			/* the log, by version - 1 */
	int			per_thread;
	_Atomic bool done;			/* the writers have finished */
	int			checks;			/* pairs of memtables the checker compared */
	int			violations;
} shared_log;

static int
shared_append(void *arg, const nokv_batch *b, uint64_t *position, uint64_t *version,
			  nokv_error *err)
{
	hook_writer *w = arg;
	shared_log *sl = w->log;
	size_t		len;
	const char *d = nokv_batch_data(b, &len);
	log_record *r;
	uint64_t	v;

	(void) err;
	if (atomic_fetch_add(&sl->inside, 1) > 0)
		atomic_fetch_add(&sl->overlaps, 1);
	/* some appends take their place late, some finish late */
	if (w->current % 3 == 1)
		sched_yield();
	v = atomic_fetch_add(&sl->counter, 1) + 1;
	if (w->current % 3 == 2)
		sched_yield();
	r = &sl->recs[v - 1];
	r->log_id = 0;
	r->version = v;
	r->position = v * 10;
	r->bytes = exact_copy(d, len);
	r->len = len;
	w->assigned[w->current] = v;
	*version = v;
	*position = v * 10;
	atomic_fetch_sub(&sl->inside, 1);
	return NOKV_OK;
}

#define MEMTABLE_ROWS_MAX 64		/* above any max_memtables */

/*
 * Compare the memtables in memory, oldest first: every version in one must
 * lie below every version in the next (versions are positions here), or a
 * flush of the older could cover an append that went into the newer.
 */
static void
check_memtable_order(shared_log *sl)
{
	nokv_inspector *in;
	const nokv_memtable_info *m;
	nokv_error	err;
	int			n;
	const nokv_memtable_info *sorted[MEMTABLE_ROWS_MAX];

	if (nokv_inspect_live(sl->db, &in, &err) != NOKV_OK)
		return;
	n = nokv_inspect_memtables(in, &m);
	for (int i = 0; i < n && i < MEMTABLE_ROWS_MAX; i++)
	{
		int			j = i;

		while (j > 0 && sorted[j - 1]->seq > m[i].seq)
		{
			sorted[j] = sorted[j - 1];
			j--;
		}
		sorted[j] = &m[i];
	}
	for (int i = 1; i < n && i < MEMTABLE_ROWS_MAX; i++)
	{
		if (sorted[i - 1]->min_version == 0 || sorted[i]->min_version == 0)
			continue;
		sl->checks++;
		if (sorted[i - 1]->max_version >= sorted[i]->min_version && sl->violations++ == 0)
			tap_diag("memtable %" PRIu64 " holds version %" PRIu64 ", the next one %" PRIu64,
					 sorted[i - 1]->seq, sorted[i - 1]->max_version, sorted[i]->min_version);
	}
	nokv_inspect_free(in);
}

static void *
memtable_order_checker(void *arg)
{
	shared_log *sl = arg;

	while (!atomic_load(&sl->done))
		check_memtable_order(sl);
	return NULL;
}

static void
test_log_append_shared(void)
{
	char	   *dir = tap_tmpdir("hm-shared");
	nokv_options o;
	nokv_error	err = {0};
	shared_log	sl;
	hook_writer w[CONC_THREADS];
	pthread_t	checker;
	int			total;
	int			failures;
	int			seen = 0;
	int			replayed = 0;
	bool		replay_ok = true;
	bool		read_back;
	uint64_t	covered;

	tap_diag("2c. external log: concurrent appends (log_append_concurrent)");
	memset(&sl, 0, sizeof(sl));
	sl.per_thread = scaled(3000);
	total = CONC_THREADS * sl.per_thread;
	sl.recs = calloc((size_t) total, sizeof(log_record));
	nokv_options_init(&o);
	o.memtable_size = 64 << 10; /* many switches, and flushes by stalled writers */
	o.external_log = true;
	o.background_threads = false;
	o.clock_ms = test_clock;
	if (!ok(nokv_open(&o, dir, &sl.db, &err) == NOKV_OK, "open an engine for concurrent appends (%s)", err.msg))
		return;
	pthread_create(&checker, NULL, memtable_order_checker, &sl);
	start_hook_writers(w, sl.db, &sl, shared_append, true, 's', sl.per_thread);
	failures = join_hook_writers(w);
	atomic_store(&sl.done, true);
	pthread_join(checker, NULL);
	check_memtable_order(&sl);
	is_int(failures, 0, "%d threads x %d writes with concurrent appends all succeed", CONC_THREADS,
		   sl.per_thread);
	ok(atomic_load(&sl.overlaps) > 0, "the hook ran in two writers at once (%d times)",
	   atomic_load(&sl.overlaps));
	ok(sl.checks > 0 && sl.violations == 0,
	   "each memtable's versions lie below the next one's (%d pairs compared during the run)", sl.checks);
	is_int(nokv_last_version(sl.db), total, "nokv_last_version is the highest version handed out");
	read_back = hook_keys_read_back(sl.db, w, &seen);
	ok(read_back && seen == total,
	   "every key reads back with the version its append got (%d keys)", seen);

	/*
	 * A crash: the memtables are lost and the host replays its log past the
	 * position the engine's tables cover.  Were an append into a later
	 * memtable below a position a flushed one covers, its key would be lost.
	 */
	nokv_close(sl.db);
	if (ok(nokv_open(&o, dir, &sl.db, &err) == NOKV_OK, "reopen without the memtables (%s)", err.msg))
	{
		covered = nokv_external_log_flushed(sl.db, 0);
		ok(covered > 0 && covered < (uint64_t) total * 10,
		   "the tables cover part of the log: up to position %" PRIu64 " of %d", covered, total * 10);
		for (uint64_t v = covered / 10 + 1; v <= (uint64_t) total; v++)
		{
			nokv_batch *rb = nokv_batch_new();
			nokv_write_options wo = {0};
			const log_record *r = &sl.recs[v - 1];

			wo.version = r->version;
			wo.log_position = r->position;
			replay_ok = replay_ok && nokv_batch_from_data(rb, r->bytes, r->len, &err) == NOKV_OK &&
				nokv_write(sl.db, &wo, rb, &err) == NOKV_OK;
			nokv_batch_free(rb);
			replayed++;
		}
		ok(replay_ok && replayed > 0, "the %d batches past it replay (%s)", replayed, err.msg);
		read_back = hook_keys_read_back(sl.db, w, &seen);
	ok(read_back && seen == total,
		   "after the replay every key is back with its version (%d keys): no append went into a "
		   "memtable after one whose flush covered its position", seen);
		nokv_close(sl.db);
	}

	for (int t = 0; t < CONC_THREADS; t++)
		free(w[t].assigned);
	for (int i = 0; i < total; i++)
		free(sl.recs[i].bytes);
	free(sl.recs);
	tap_rmdir(dir);
	free(dir);
}

/* ================= 3. host_mvcc: the host decides what is garbage ================= */

#define MAX_CALLS 8192

typedef struct filter_call
{
	char		key[24];
	int			cf;
	uint64_t	version;
	int			kind;
	uint64_t	expires_at_ms;
	bool		expired;
	bool		bottommost;
	int			level;
	size_t		value_len;
	char		tag;
} filter_call;

typedef struct filter_log
{
	filter_call calls[MAX_CALLS];
	int			n;
	int			overflow;
	char		changed[2048];
} filter_log;

static filter_log flog;

static nokv_filter_decision
host_filter(void *arg, const nokv_filter_entry *e, const char **new_value, size_t *new_len)
{
	filter_log *fl = arg;
	char		tag = e->value_len ? e->value[0] : '\0';

	if (fl->n < MAX_CALLS)
	{
		filter_call *c = &fl->calls[fl->n++];

		snprintf(c->key, sizeof(c->key), "%.*s", (int) (e->key_len < 23 ? e->key_len : 23), e->key);
		c->cf = e->cf;
		c->version = e->version;
		c->kind = e->kind;
		c->expires_at_ms = e->expires_at_ms;
		c->expired = e->expired;
		c->bottommost = e->bottommost;
		c->level = e->level;
		c->value_len = e->value_len;
		c->tag = tag;
	}
	else
		fl->overflow++;

	switch (tag)
	{
		case 'A':
			return NOKV_FILTER_DROP;
		case 'B':
			return NOKV_FILTER_KEEP_AS_BASE;
		case 'X':
			{
				size_t		n = e->value_len < sizeof(fl->changed) ? e->value_len : sizeof(fl->changed);

				memcpy(fl->changed, e->value, n);
				fl->changed[0] = 'B';
				*new_value = fl->changed;
				*new_len = n;
				return NOKV_FILTER_CHANGE_AS_BASE;
			}
		case 'D':
			return NOKV_FILTER_DELETE_KEY;
		default:
			return NOKV_FILTER_KEEP;
	}
}

static void
flog_reset(void)
{
	flog.n = 0;
	flog.overflow = 0;
}

/* the versions the filter saw for key, in call order */
static int
calls_for(const char *key, uint64_t *out, int max, filter_call **first)
{
	int			n = 0;

	if (first)
		*first = NULL;
	for (int i = 0; i < flog.n; i++)
		if (strcmp(flog.calls[i].key, key) == 0)
		{
			if (first && !*first)
				*first = &flog.calls[i];
			if (n < max)
				out[n] = flog.calls[i].version;
			n++;
		}
	return n;
}

/* the filter saw exactly these versions of key, in this order */
static bool
called_with(const char *key, int n, ...)
{
	uint64_t	got[16];
	int			ngot = calls_for(key, got, 16, NULL);
	bool		same = ngot == n;
	va_list		ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++)
	{
		uint64_t	want = va_arg(ap, uint64_t);

		if (same && got[i] != want)
			same = false;
	}
	va_end(ap);
	if (!same)
	{
		char		buf[256];
		int			off = 0;

		for (int i = 0; i < ngot && i < 16 && off < 200; i++)
			off += snprintf(buf + off, sizeof(buf) - off, " %" PRIu64, got[i]);
		buf[off] = '\0';
		tap_diag("  filter calls for %s:%s (%d)", key, ngot ? buf : " none", ngot);
	}
	return same;
}

/* one key at a time in key order, each key's versions newest first */
static bool
calls_ordered(void)
{
	for (int i = 1; i < flog.n; i++)
	{
		int			c = strcmp(flog.calls[i - 1].key, flog.calls[i].key);

		if (c > 0 || (c == 0 && flog.calls[i - 1].version <= flog.calls[i].version))
		{
			tap_diag("  call %d (%s v%" PRIu64 ") after (%s v%" PRIu64 ")", i, flog.calls[i].key,
					 flog.calls[i].version, flog.calls[i - 1].key, flog.calls[i - 1].version);
			return false;
		}
	}
	return flog.overflow == 0;
}

static void
host_options(nokv_options *o)
{
	nokv_options_init(o);
	o->memtable_size = 256 << 10;
	o->external_log = true;
	o->host_mvcc = true;
	o->background_threads = false;
	o->compression = false;
	o->vlog_threshold = 256;
	o->clock_ms = test_clock;
	o->compaction_filter = host_filter;
	o->compaction_filter_arg = &flog;
}

/* visibility hook recording which versions of one key it was asked about */
typedef struct vis_probe
{
	const char *key;
	uint64_t	versions[16];
	char		tags[16];
	int			n;
} vis_probe;

static bool
probe_visible(void *arg, int cf, const char *key, size_t klen, uint64_t version,
			  const char *value, size_t vlen)
{
	vis_probe  *p = arg;

	(void) cf;
	if (klen == strlen(p->key) && memcmp(key, p->key, klen) == 0 && p->n < 16)
	{
		p->versions[p->n] = version;
		p->tags[p->n] = vlen ? value[0] : '\0';
		p->n++;
	}
	return true;
}

static void
test_host_mvcc_bottom(void)
{
	char	   *dir = tap_tmpdir("hm-mvcc");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	char		big1[402],
				big2[402],
				bigb[402];
	uint64_t	base[4],
				base2[4],
				bigv[3],
				chg[3],
				del[4],
				drop[4],
				keep[4],
				rng[3],
				tomb[3],
				ttl[3],
				ttl_live;
	uint64_t	ttl_expiry,
				live_expiry;
	bool		meta_ok = true;
	nokv_stats	st;
	int			rc;

	tap_diag("3. host_mvcc: filter decisions at the bottom level");
	host_options(&o);
	if (!ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "open a host_mvcc engine (%s)", err.msg))
		return;
	next_version = 0;
	write_failures = 0;
	memset(big1, 'c', 401);
	big1[0] = 'C';
	big1[401] = '\0';
	memset(big2, 'x', 401);
	big2[0] = 'X';
	big2[401] = '\0';
	memcpy(bigb, big2, sizeof(bigb));
	bigb[0] = 'B';
	ttl_expiry = atomic_load(&fake_now) + 1000;
	live_expiry = atomic_load(&fake_now) + 1000000000ULL;

	/* round 1, flushed to level 0 */
	base[1] = xput(db, "k_base", "C1");
	base2[1] = xput(db, "k_base2", "C1");
	bigv[1] = xput(db, "k_big", big1);
	chg[1] = xput(db, "k_chg", "C1");
	del[1] = xput(db, "k_del", "C1");
	drop[1] = xput(db, "k_drop", "C1");
	keep[1] = xput(db, "k_keep", "C1");
	rng[1] = xput(db, "k_rng", "C1");
	tomb[1] = xput(db, "k_tomb", "C1");
	ttl[1] = xput(db, "k_ttl", "C1");
	ttl_live = xput_n(db, "k_ttl_live", "K1", 2, live_expiry);
	flush_memtables(db);

	/* round 2, flushed too */
	base[2] = xput(db, "k_base", "B2");
	base2[2] = xput(db, "k_base2", "C2");
	bigv[2] = xput(db, "k_big", big2);
	chg[2] = xput(db, "k_chg", "X2");
	del[2] = xput(db, "k_del", "C2");
	drop[2] = xput(db, "k_drop", "C2");
	keep[2] = xput(db, "k_keep", "C2");
	rng[2] = xdelrange(db, "k_rng", "k_rnh");
	tomb[2] = xdel(db, "k_tomb");
	ttl[2] = xput_n(db, "k_ttl", "K2", 2, ttl_expiry);
	flush_memtables(db);

	/* round 3, left in the memtable (compaction flushes it) */
	base[3] = xput(db, "k_base", "C3");
	base2[3] = xput(db, "k_base2", "B3");
	del[3] = xput(db, "k_del", "D3");
	drop[3] = xput(db, "k_drop", "A3");
	keep[3] = xput(db, "k_keep", "C3");
	is_int(write_failures, 0, "three rounds of versioned writes");

	ok(shows(db, "k_drop", 0, drop[3], "A3") && shows(db, "k_keep", keep[1], keep[1], "C1") &&
	   shows(db, "k_ttl", 0, ttl[2], "K2"),
	   "before compaction every version is readable (the engine has no visibility rules of its own)");
	atomic_fetch_add(&fake_now, 2000);
	ok(shows(db, "k_ttl", 0, 0, NULL) && shows(db, "k_ttl", ttl[1], ttl[1], "C1"),
	   "once its ttl passed, the newest put of k_ttl deletes the key at the latest version only");

	flog_reset();
	rc = nokv_compact_range(db, NOKV_CF_DEFAULT, NULL, 0, NULL, 0, &err);
	ok(rc == NOKV_OK, "compact everything into the bottom level (%s)", err.msg);
	nokv_get_stats(db, &st);
	ok(st.levels[0].files == 0 && st.levels[st.num_levels - 1].files > 0,
	   "the data is in the bottom level L%d", st.num_levels - 1);

	/* what the filter saw */
	ok(calls_ordered(), "the filter saw keys in order, each key's versions newest first (%d calls)", flog.n);
	ok(called_with("k_drop", 3, drop[3], drop[2], drop[1]),
	   "DROP: the filter saw all three versions of k_drop (a dropped version is not a base)");
	ok(called_with("k_keep", 3, keep[3], keep[2], keep[1]),
	   "KEEP: every version of k_keep was offered (nothing shadowed is dropped by the engine)");
	ok(called_with("k_base", 2, base[3], base[2]), "KEEP_AS_BASE: the versions of k_base older than the base were not offered");
	ok(called_with("k_base2", 1, base2[3]), "KEEP_AS_BASE on the newest version: nothing older was offered");
	ok(called_with("k_chg", 1, chg[2]), "CHANGE_AS_BASE: nothing older than k_chg's base was offered");
	ok(called_with("k_del", 1, del[3]), "DELETE_KEY: nothing older than k_del's delete was offered");
	ok(called_with("k_ttl", 2, ttl[2], ttl[1]), "the expired put of k_ttl was offered, then its older version");
	ok(called_with("k_ttl_live", 1, ttl_live), "a live ttl put was offered");
	ok(called_with("k_tomb", 0) && called_with("k_rng", 0),
	   "puts under an engine tombstone or range delete were never offered");
	ok(called_with("k_big", 1, bigv[2]), "the separated value of k_big was offered once");
	for (int i = 0; i < flog.n; i++)
	{
		filter_call *c = &flog.calls[i];

		if (c->cf != NOKV_CF_DEFAULT || c->kind != NOKV_KIND_PUT || !c->bottommost ||
			c->level != st.num_levels - 1)
			meta_ok = false;
	}
	ok(meta_ok, "every call was a put of cf 0 with level L%d and bottommost set", st.num_levels - 1);
	{
		filter_call *c = NULL;
		uint64_t	v[4];

		calls_for("k_ttl", v, 4, &c);
		ok(c && c->version == ttl[2] && c->expires_at_ms == ttl_expiry && c->expired &&
		   c[1].version == ttl[1] && c[1].expires_at_ms == 0 && !c[1].expired,
		   "the filter entry carries expires_at_ms and expired for an expired ttl put, 0/false for a plain put");
		calls_for("k_ttl_live", v, 4, &c);
		ok(c && c->expires_at_ms == live_expiry && !c->expired,
		   "a live ttl put: expires_at_ms set, expired false");
		calls_for("k_big", v, 4, &c);
		ok(c && c->value_len == 401 && c->tag == 'X',
		   "the filter got the user's value from the value log (401 bytes), not a pointer");
	}

	/* what is left, as seen at every version written */
	ok(shows(db, "k_drop", 0, drop[2], "C2") && shows(db, "k_drop", drop[3], drop[2], "C2") &&
	   shows(db, "k_drop", drop[2], drop[2], "C2") && shows(db, "k_drop", drop[1], drop[1], "C1"),
	   "DROP removed only that version: the next older one is now the newest, the oldest is intact");
	ok(shows(db, "k_keep", 0, keep[3], "C3") && shows(db, "k_keep", keep[2], keep[2], "C2") &&
	   shows(db, "k_keep", keep[1], keep[1], "C1"), "KEEP kept every version of k_keep");
	ok(shows(db, "k_base", 0, base[3], "C3") && shows(db, "k_base", base[2], base[2], "B2") &&
	   shows(db, "k_base", base[1], 0, NULL),
	   "KEEP_AS_BASE kept the newer version and the base, removed the older one");
	ok(shows(db, "k_base2", 0, base2[3], "B3") && shows(db, "k_base2", base2[2], 0, NULL) &&
	   shows(db, "k_base2", base2[1], 0, NULL), "KEEP_AS_BASE on the newest version removed both older ones");
	ok(shows(db, "k_chg", 0, chg[2], "B2") && shows(db, "k_chg", chg[1], 0, NULL),
	   "CHANGE_AS_BASE replaced the value (X2 -> B2) at the same version and removed the older one");
	ok(shows(db, "k_big", 0, bigv[2], bigb) && shows(db, "k_big", bigv[1], 0, NULL),
	   "CHANGE_AS_BASE on a separated value replaced it too");
	ok(shows(db, "k_del", 0, 0, NULL) && shows(db, "k_del", del[2], 0, NULL) &&
	   shows(db, "k_del", del[1], 0, NULL), "DELETE_KEY at the bottom removed the key at every version");
	ok(shows(db, "k_tomb", 0, 0, NULL) && shows(db, "k_tomb", tomb[1], 0, NULL) &&
	   shows(db, "k_rng", 0, 0, NULL) && shows(db, "k_rng", rng[1], 0, NULL),
	   "engine tombstones and range deletes still remove what they cover");
	ok(shows(db, "k_ttl", 0, 0, NULL) && shows(db, "k_ttl", ttl[2], 0, NULL) &&
	   shows(db, "k_ttl", ttl[1], ttl[1], "C1"),
	   "the expired put the filter kept still deletes k_ttl (were it dropped, C1 would resurface)");
	ok(shows(db, "k_ttl_live", 0, ttl_live, "K1"), "the live ttl put is intact");
	{
		vis_probe	p = {.key = "k_ttl"};
		found		r = lookup(db, "k_ttl", 0, probe_visible, &p);

		ok(r.rc == 0 && p.n >= 1 && p.versions[0] == ttl[2] && p.tags[0] == 'K',
		   "a visibility hook is still asked about the expired version %" PRIu64 ": it is in the files",
		   ttl[2]);
	}
	/* k_drop 2, k_keep 3, k_base 2, k_base2 1, k_chg 1, k_big 1, k_ttl 2, k_ttl_live 1 */
	is_int(total_entries(db), 13, "exactly the 13 surviving versions are left in the files");

	/* versions above the safe point are not the filter's business */
	{
		uint64_t	s1 = xput(db, "k_snap", "C1");
		uint64_t	s2 = xput(db, "k_snap", "C2");
		nokv_snapshot *snap = nokv_snapshot_acquire(db, &err);
		uint64_t	s3 = xput(db, "k_snap", "A3");

		ok(snap && nokv_snapshot_version(snap) == s2, "a snapshot at version %" PRIu64, s2);
		flog_reset();
		rc = nokv_compact_range(db, NOKV_CF_DEFAULT, NULL, 0, NULL, 0, &err);
		ok(rc == NOKV_OK && called_with("k_snap", 2, s2, s1),
		   "with a snapshot held, the filter saw only the versions at or below it");
		ok(shows(db, "k_snap", 0, s3, "A3"), "the aborted version above the snapshot survived");
		nokv_snapshot_release(db, snap);
		flog_reset();
		rc = nokv_compact_range(db, NOKV_CF_DEFAULT, NULL, 0, NULL, 0, &err);
		ok(rc == NOKV_OK && called_with("k_snap", 3, s3, s2, s1),
		   "after the release, the next compaction offered all three");
		ok(shows(db, "k_snap", 0, s2, "C2") && shows(db, "k_snap", s1, s1, "C1"),
		   "and dropped the aborted one");
		ok(calls_ordered(), "an in-place rewrite of the bottom level also offers versions newest first");
	}
	is_int(write_failures, 0, "no write failed");
	nokv_close(db);
	tap_rmdir(dir);
	free(dir);
}

/*
 * DELETE_KEY, DROP and KEEP_AS_BASE when an older version of the key sits
 * in a deeper level than the compaction's output.  With num_levels 3 and a
 * bottom level larger than max_bytes_for_level_base, level 1 gets a target
 * size, so level 0 compacts into level 1 while level 2 holds the oldest
 * versions; two overlapping level-0 files keep it from being a trivial move.
 */
static void
test_host_mvcc_deeper(void)
{
	char	   *dir = tap_tmpdir("hm-deep");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	nokv_stats	st;
	char		key[16];
	char		val[64];
	uint64_t	d1,
				d3,
				p1,
				p2,
				p3,
				b1,
				b2,
				b3;
	bool		meta_ok = true;
	int			rc;

	tap_diag("3b. host_mvcc: filter decisions above a deeper level");
	host_options(&o);
	o.num_levels = 3;
	o.max_bytes_for_level_base = 4096;
	o.level_size_multiplier = 10;
	o.l0_compaction_trigger = 2;
	if (!ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "open a host_mvcc engine with 3 levels (%s)", err.msg))
		return;
	next_version = 0;
	write_failures = 0;

	/* the oldest versions, and enough data to make level 2 the big one */
	memset(val, 'f', 40);
	val[0] = 'C';
	val[40] = '\0';
	for (int i = 0; i < 150; i++)
	{
		snprintf(key, sizeof(key), "a%04d", i);
		xput(db, key, val);
		snprintf(key, sizeof(key), "z%04d", i);
		xput(db, key, val);
	}
	b1 = xput(db, "m_base", "C1");
	d1 = xput(db, "m_del", "C1");
	p1 = xput(db, "m_drop", "C1");
	flog_reset();
	rc = nokv_compact_range(db, NOKV_CF_DEFAULT, NULL, 0, NULL, 0, &err);
	nokv_get_stats(db, &st);
	ok(rc == NOKV_OK && st.levels[0].files == 0 && st.levels[1].files == 0 && st.levels[2].files > 0 &&
	   st.levels[2].entries == 303 && st.levels[2].bytes > 4096 * 2,
	   "303 versions in level 2 (%" PRIu64 " bytes), levels 0 and 1 empty", st.levels[2].bytes);

	/* two overlapping level-0 files of newer versions */
	b2 = xput(db, "m_base", "C2");
	xput(db, "m_del", "C2");
	p2 = xput(db, "m_drop", "C2");
	flush_memtables(db);
	b3 = xput(db, "m_base", "B3");
	d3 = xput(db, "m_del", "D3");
	p3 = xput(db, "m_drop", "A3");
	flush_memtables(db);
	nokv_get_stats(db, &st);
	ok(st.levels[0].files == 2, "two level-0 files");

	flog_reset();
	rc = nokv_compact_step(db, &err);
	nokv_get_stats(db, &st);
	ok(rc == 1 && st.levels[0].files == 0 && st.levels[1].files > 0 && st.levels[2].entries == 303,
	   "one compaction step merged level 0 into level 1, level 2 untouched (%s)", err.msg);
	for (int i = 0; i < flog.n; i++)
		if (flog.calls[i].bottommost || flog.calls[i].level != 1)
			meta_ok = false;
	ok(flog.n > 0 && meta_ok, "the filter was told level 1, not bottommost (%d calls)", flog.n);
	ok(calls_ordered() && called_with("m_base", 1, b3) && called_with("m_del", 1, d3) &&
	   called_with("m_drop", 2, p3, p2),
	   "offered: m_base's base only, m_del's delete only, m_drop's aborted and then its committed version");
	is_int(st.levels[1].entries, 3, "level 1 holds m_base's base, m_del's tombstone and m_drop's committed version");

	ok(shows(db, "m_del", 0, 0, NULL) && shows(db, "m_del", d3, 0, NULL),
	   "DELETE_KEY above a deeper level leaves the key deleted");
	ok(shows(db, "m_del", d1, d1, "C1"),
	   "the older version in level 2 still exists below the tombstone (only hidden)");
	ok(shows(db, "m_drop", 0, p2, "C2") && shows(db, "m_drop", p1, p1, "C1"),
	   "DROP above a deeper level removed only the aborted version (no tombstone)");
	ok(shows(db, "m_base", 0, b3, "B3") && shows(db, "m_base", b2, b1, "C1"),
	   "KEEP_AS_BASE removed v2 (compacted with it); v1 in level 2 was not an input and waits for the base");

	/* now down to the bottom: the tombstone meets the old version */
	flog_reset();
	rc = nokv_compact_range(db, NOKV_CF_DEFAULT, NULL, 0, NULL, 0, &err);
	nokv_get_stats(db, &st);
	ok(rc == NOKV_OK && st.levels[1].files == 0, "compact level 1 into the bottom level (%s)", err.msg);
	ok(called_with("m_del", 0) && called_with("m_base", 1, b3) && called_with("m_drop", 2, p2, p1),
	   "at the bottom the tombstone hides m_del's old version from the filter, m_base's base hides v1");
	ok(shows(db, "m_del", 0, 0, NULL) && shows(db, "m_del", d1, 0, NULL),
	   "at the bottom m_del is gone at every version");
	ok(shows(db, "m_base", b1, 0, NULL) && shows(db, "m_base", 0, b3, "B3"), "and m_base's v1 is gone");
	is_int(st.levels[2].entries, 300 + 1 + 2, "300 fillers + m_base's base + m_drop's two versions remain");
	is_int(write_failures, 0, "no write failed");
	nokv_close(db);
	tap_rmdir(dir);
	free(dir);
}

/* without host_mvcc the new decisions fold to KEEP / CHANGE / DROP of the newest version */
static void
test_filter_fold(void)
{
	char	   *dir = tap_tmpdir("hm-fold");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	uint64_t	k1,
				b1;
	int			rc;

	tap_diag("3c. the same filter without host_mvcc");
	host_options(&o);
	o.host_mvcc = false;
	if (!ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "open an engine without host_mvcc (%s)", err.msg))
		return;
	next_version = 0;
	write_failures = 0;
	k1 = xput(db, "keep", "C1");
	xput(db, "keep", "C2");
	xput(db, "keep", "C3");
	b1 = xput(db, "base", "C1");
	xput(db, "base", "B2");
	xput(db, "chg", "C1");
	xput(db, "chg", "X2");
	xput(db, "del", "C1");
	xput(db, "del", "D2");
	xput(db, "ttl", "C1");
	xput_n(db, "ttl", "K2", 2, atomic_load(&fake_now) + 10);
	atomic_fetch_add(&fake_now, 20);
	flog_reset();
	rc = nokv_compact_range(db, NOKV_CF_DEFAULT, NULL, 0, NULL, 0, &err);
	ok(rc == NOKV_OK, "compact (%s)", err.msg);
	ok(called_with("keep", 1, k1 + 2) && called_with("base", 1, b1 + 1) && called_with("chg", 1, b1 + 3) &&
	   called_with("del", 1, b1 + 5) && called_with("ttl", 0),
	   "only the newest version of each key is offered; an expired put is dropped by the engine unasked");
	ok(shows(db, "keep", k1, 0, NULL) && shows(db, "keep", 0, k1 + 2, "C3"),
	   "shadowed versions are dropped by the engine");
	ok(shows(db, "chg", 0, b1 + 3, "B2"), "CHANGE_AS_BASE folds to CHANGE");
	ok(shows(db, "del", 0, 0, NULL) && shows(db, "del", b1 + 4, 0, NULL), "DELETE_KEY folds to DROP");
	ok(shows(db, "base", 0, b1 + 1, "B2"), "KEEP_AS_BASE folds to KEEP");
	is_int(total_entries(db), 3, "one version each of keep, base and chg remains");
	nokv_close(db);
	tap_rmdir(dir);
	free(dir);
}

/* ================= 4. reads: visibility before expiry ================= */

/* hide versions written by aborted transactions */
static bool
hide_aborted(void *arg, int cf, const char *key, size_t klen, uint64_t version,
			 const char *value, size_t vlen)
{
	(void) arg;
	(void) cf;
	(void) key;
	(void) klen;
	(void) version;
	return !(vlen > 0 && value[0] == 'A');
}

/* the keys (and values) a scan sees, as "key=value " */
static void
scan(nokv_db *db, bool hook, bool backward, char *out, size_t cap)
{
	nokv_read_options ro;
	nokv_iter  *it;
	size_t		off = 0;

	nokv_read_options_init(&ro);
	if (hook)
		ro.visible = hide_aborted;
	it = nokv_iter_new(db, &ro, NOKV_CF_DEFAULT);
	out[0] = '\0';
	if (backward)
		nokv_iter_seek_to_last(it);
	else
		nokv_iter_seek_to_first(it);
	while (nokv_iter_valid(it) && off < cap - 64)
	{
		size_t		kl,
					vl;
		const char *k = nokv_iter_key(it, &kl);
		const char *v = nokv_iter_value(it, &vl);

		off += snprintf(out + off, cap - off, "%.*s=%.*s ", (int) kl, k, (int) vl, v);
		if (backward)
			nokv_iter_prev(it);
		else
			nokv_iter_next(it);
	}
	if (nokv_iter_status(it, NULL) != NOKV_OK)
		snprintf(out + off, cap - off, "ERROR");
	nokv_iter_free(it);
}

static bool
get_is(nokv_db *db, bool hook, const char *key, const char *want)
{
	nokv_read_options ro;
	nokv_error	err = {0};
	char	   *v = NULL;
	size_t		n = 0;
	int			rc;
	bool		good;

	nokv_read_options_init(&ro);
	if (hook)
		ro.visible = hide_aborted;
	rc = nokv_get(db, &ro, NOKV_CF_DEFAULT, key, strlen(key), &v, &n, &err);
	good = want ? (rc == NOKV_OK && n == strlen(want) && memcmp(v, want, n) == 0) : rc == NOKV_NOT_FOUND;
	if (!good)
		tap_diag("  get %s%s: rc %d '%.*s', expected %s", key, hook ? " (hook)" : "", rc, (int) n,
				 v ? v : "", want ? want : "(absent)");
	free(v);
	return good;
}

/* where a seek lands: "key" or "-" */
static void
seek_at(nokv_db *db, bool for_prev, const char *target, int moves, char *out)
{
	nokv_read_options ro;
	nokv_iter  *it;

	nokv_read_options_init(&ro);
	ro.visible = hide_aborted;
	it = nokv_iter_new(db, &ro, NOKV_CF_DEFAULT);
	if (for_prev)
		nokv_iter_seek_for_prev(it, target, strlen(target));
	else
		nokv_iter_seek(it, target, strlen(target));
	/* moves > 0: next that many times; < 0: prev */
	for (int i = 0; i < (moves < 0 ? -moves : moves) && nokv_iter_valid(it); i++)
	{
		if (moves < 0)
			nokv_iter_prev(it);
		else
			nokv_iter_next(it);
	}
	if (nokv_iter_valid(it))
	{
		size_t		kl;
		const char *k = nokv_iter_key(it, &kl);

		snprintf(out, 16, "%.*s", (int) kl, k);
	}
	else
		strcpy(out, "-");
	nokv_iter_free(it);
}

static void
check_reads(nokv_db *db, const char *state, uint64_t a_old)
{
	char		buf[512];
	char		where[16];
	found		r;

	scan(db, true, false, buf, sizeof(buf));
	is_str(buf, "a=Cold c=Cc f=Cold g=Cg1 ",
		   "%s: forward scan with the hook: invisible expired puts do not hide older versions", state);
	scan(db, true, true, buf, sizeof(buf));
	is_str(buf, "g=Cg1 f=Cold c=Cc a=Cold ", "%s: backward scan with the hook agrees", state);
	ok(get_is(db, true, "a", "Cold") && get_is(db, true, "b", NULL) && get_is(db, true, "c", "Cc") &&
	   get_is(db, true, "d", NULL) && get_is(db, true, "e", NULL) && get_is(db, true, "f", "Cold") &&
	   get_is(db, true, "g", "Cg1"), "%s: nokv_get with the hook agrees", state);
	r = lookup(db, "a", 0, hide_aborted, NULL);
	ok(r.rc == 1 && r.version == a_old && r.expires == 0,
	   "%s: the older version of a is read, with its own version and no expiry", state);

	seek_at(db, false, "b", 0, where);
	is_str(where, "c", "%s: seek(b) skips b (a visible expired put deletes it)", state);
	seek_at(db, true, "b", 0, where);
	is_str(where, "a", "%s: seek_for_prev(b) lands on a", state);
	seek_at(db, true, "e", 0, where);
	is_str(where, "c", "%s: seek_for_prev(e) skips d and e", state);
	seek_at(db, false, "c", -1, where);
	is_str(where, "a", "%s: seek(c) then prev lands on a", state);
	seek_at(db, true, "e", 1, where);
	is_str(where, "f", "%s: seek_for_prev(e) then next lands on f", state);

	scan(db, false, false, buf, sizeof(buf));
	is_str(buf, "c=Cc e=Anew f=Anew ", "%s: without the hook every expired newest put hides its key", state);
	scan(db, false, true, buf, sizeof(buf));
	is_str(buf, "f=Anew e=Anew c=Cc ", "%s: backward without the hook agrees", state);
	ok(get_is(db, false, "a", NULL) && get_is(db, false, "b", NULL) && get_is(db, false, "e", "Anew"),
	   "%s: nokv_get without the hook agrees", state);
}

static void
test_visibility_expiry(void)
{
	char	   *dir = tap_tmpdir("hm-vis");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	uint64_t	soon;
	uint64_t	a_old;

	tap_diag("4. reads: an invisible expired put does not hide older versions");
	nokv_options_init(&o);
	o.memtable_size = 256 << 10;
	o.background_threads = false;
	o.clock_ms = test_clock;
	if (!ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "open (%s)", err.msg))
		return;
	soon = atomic_load(&fake_now) + 100;

	/* older versions, flushed to a table */
	nokv_put(db, 0, "a", 1, "Cold", 4, &err);
	a_old = nokv_last_version(db);
	nokv_put(db, 0, "b", 1, "Cold", 4, &err);
	nokv_put(db, 0, "c", 1, "Cc", 2, &err);
	nokv_put_ttl(db, 0, "d", 1, "Adead", 5, soon, &err);
	nokv_put_ttl(db, 0, "e", 1, "Cexp", 4, soon, &err);
	nokv_put(db, 0, "f", 1, "Cold", 4, &err);
	nokv_put(db, 0, "g", 1, "Cg1", 3, &err);
	flush_memtables(db);

	/* newer versions in the memtable */
	nokv_put_ttl(db, 0, "a", 1, "Aexp", 4, soon, &err);	/* invisible, expired */
	nokv_put_ttl(db, 0, "b", 1, "Cexp", 4, soon, &err);	/* visible, expired */
	nokv_put(db, 0, "e", 1, "Anew", 4, &err);	/* invisible over a visible expired */
	nokv_put(db, 0, "f", 1, "Anew", 4, &err);	/* invisible, live */
	nokv_put_ttl(db, 0, "g", 1, "Aexp", 4, soon, &err);
	nokv_put_ttl(db, 0, "g", 1, "Aexp2", 5, soon, &err);	/* two invisible expired */
	atomic_fetch_add(&fake_now, 200);

	check_reads(db, "memtable over table", a_old);
	flush_memtables(db);
	check_reads(db, "two tables", a_old);
	nokv_close(db);
	tap_rmdir(dir);
	free(dir);
}

/* ================= 5. inline background work and shutdown ================= */

static void
inline_options(nokv_options *o)
{
	nokv_options_init(o);
	o->memtable_size = 64 << 10;
	o->max_memtables = 2;
	o->external_log = true;
	o->background_threads = false;
	o->compression = false;
	o->l0_compaction_trigger = 2;
	o->l0_slowdown_trigger = 4;
	o->l0_stop_trigger = 4;
	o->target_file_size = 64 << 10;
	o->max_bytes_for_level_base = 256 << 10;
	o->block_cache_size = 1 << 20;
	o->meta_heap_size = 1 << 20;
	o->max_files = 1024;
	o->txn_conflict_slots = 1024;
	o->hot_capacity = 0;
	o->clock_ms = test_clock;
}

typedef struct stall_writer
{
	nokv_db    *db;
	uint64_t	version;
	int			written;
	int			rc;
	nokv_error	err;
	pthread_t	tid;
} stall_writer;

static int
put_versioned(nokv_db *db, uint64_t version, nokv_error *err)
{
	nokv_write_options wo = {0};
	nokv_batch *b = nokv_batch_new();
	char		key[32];
	char		val[120];
	int			rc;

	snprintf(key, sizeof(key), "key%08" PRIu64, version);
	memset(val, 'v', sizeof(val));
	nokv_batch_put(b, NOKV_CF_DEFAULT, key, strlen(key), val, sizeof(val));
	wo.version = version;
	wo.log_position = version;
	rc = nokv_write(db, &wo, b, err);
	nokv_batch_free(b);
	return rc;
}

static void *
stall_main(void *arg)
{
	stall_writer *w = arg;

	/* no worker will ever flush: this ends in a stall */
	for (int i = 0; i < 1000000; i++)
	{
		memset(&w->err, 0, sizeof(w->err));
		w->rc = put_versioned(w->db, ++w->version, &w->err);
		if (w->rc != NOKV_OK)
			break;
		w->written++;
	}
	return NULL;
}

static void
test_inline_background(void)
{
	char	   *dir = tap_tmpdir("hm-inline");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	void	   *region;
	size_t		size;
	nokv_stats	st;
	int			nwrites = 4000;
	int			failed = 0;
	int			missing = 0;
	int			rc;

	tap_diag("5. inline background work on an attached handle, and shutdown");
	inline_options(&o);
	size = nokv_region_size(&o);
	region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		tap_bail("mmap of %zu bytes failed: %s", size, strerror(errno));
	rc = nokv_region_format(region, size, &o, dir, &err);
	if (!ok(rc == NOKV_OK, "format a %zu-byte region (%s)", size, err.msg))
		return;
	rc = nokv_attach(region, &o, &db, &err);
	if (!ok(rc == NOKV_OK, "attach (%s)", err.msg))
		return;

	nokv_set_inline_background(db, true);
	for (int i = 1; i <= nwrites; i++)
		if (put_versioned(db, (uint64_t) i, &err) != NOKV_OK)
		{
			if (failed++ < 3)
				tap_diag("  write %d failed: %s", i, err.msg);
		}
	nokv_get_stats(db, &st);
	is_int(failed, 0, "%d writes through 2 memtables of 64 KiB and no workers all succeed", nwrites);
	ok(st.stall_count > 0 && st.flushes > 0,
	   "writes stalled %" PRIu64 " times and flushed inline %" PRIu64 " times", st.stall_count, st.flushes);
	ok(st.compactions > 0 && st.levels[0].files < o.l0_stop_trigger,
	   "level 0 reaching its stop trigger compacted inline (%" PRIu64 " compactions, %d level-0 files)",
	   st.compactions, st.levels[0].files);
	for (int i = 1; i <= nwrites; i++)
	{
		char		key[32];
		char	   *v = NULL;
		size_t		n = 0;

		snprintf(key, sizeof(key), "key%08d", i);
		if (nokv_get(db, NULL, NOKV_CF_DEFAULT, key, strlen(key), &v, &n, &err) != NOKV_OK || n != 120)
			missing++;
		free(v);
	}
	is_int(missing, 0, "every key reads back");
	ok(!st.write_stalled, "no writer is left stalled");

	/* the same handle without inline work: a write stalls until shutdown */
	{
		stall_writer w;
		bool		stalled = false;

		memset(&w, 0, sizeof(w));
		w.db = db;
		w.version = (uint64_t) nwrites;
		nokv_set_inline_background(db, false);
		pthread_create(&w.tid, NULL, stall_main, &w);
		for (int i = 0; i < 5000 && !stalled; i++)
		{
			nokv_get_stats(db, &st);
			stalled = st.write_stalled;
			if (!stalled)
				sleep_ms(1);
		}
		ok(stalled, "with inline work off and no workers, a writer stalls");
		sleep_ms(20);
		nokv_begin_shutdown(db);
		pthread_join(w.tid, NULL);
		ok(w.rc == NOKV_SHUTDOWN && w.written > 0,
		   "nokv_begin_shutdown wakes the stalled writer with NOKV_SHUTDOWN after %d writes (%s)",
		   w.written, w.err.msg);
		memset(&err, 0, sizeof(err));
		rc = put_versioned(db, w.version + 1, &err);
		is_int(rc, NOKV_SHUTDOWN, "a new write after shutdown fails with NOKV_SHUTDOWN (%s)", err.msg);
		nokv_set_inline_background(db, true);
		rc = put_versioned(db, w.version + 2, &err);
		is_int(rc, NOKV_SHUTDOWN, "also with inline work on (%s)", err.msg);
	}
	nokv_close(db);
	munmap(region, size);
	tap_rmdir(dir);
	free(dir);

	/* a write that would not stall is refused too */
	dir = tap_tmpdir("hm-shut");
	inline_options(&o);
	size = nokv_region_size(&o);
	region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		tap_bail("mmap of %zu bytes failed: %s", size, strerror(errno));
	memset(&err, 0, sizeof(err));
	if (ok(nokv_region_format(region, size, &o, dir, &err) == NOKV_OK &&
		   nokv_attach(region, &o, &db, &err) == NOKV_OK, "a fresh region (%s)", err.msg))
	{
		rc = put_versioned(db, 1, &err);
		is_int(rc, NOKV_OK, "a write before shutdown succeeds");
		nokv_begin_shutdown(db);
		memset(&err, 0, sizeof(err));
		rc = put_versioned(db, 2, &err);
		is_int(rc, NOKV_SHUTDOWN, "after nokv_begin_shutdown a write with room fails with NOKV_SHUTDOWN (%s)",
			   err.msg);
		ok(lookup(db, "key00000002", 0, NULL, NULL).rc == 0 && nokv_last_version(db) == 1,
		   "and nothing of it was applied");
		nokv_close(db);
	}
	munmap(region, size);
	tap_rmdir(dir);
	free(dir);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	alarm(120);

	test_batch_bytes();
	test_log_append();
	test_log_append_concurrent();
	test_log_append_shared();
	test_host_mvcc_bottom();
	test_host_mvcc_deeper();
	test_filter_fold();
	test_visibility_expiry();
	test_inline_background();
	return tap_done();
}
