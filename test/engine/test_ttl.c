/*-------------------------------------------------------------------------
 *
 * test_ttl.c
 *	  TTL expiry and the read-visibility hook, with a controllable clock.
 *
 * The engine reads time through nokv_options.clock_ms, so the test moves
 * time forward explicitly and checks that expired entries vanish for point
 * reads and iterators at once, survive a reopen as long as they have not
 * expired, and are physically removed by compaction.
 *
 * test/engine/test_ttl.c
 *-------------------------------------------------------------------------
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/nokv.h"
#include "tap.h"

static uint64_t fake_now = 1700000000000ULL;

static uint64_t
test_clock(void *arg)
{
	(void) arg;
	return fake_now;
}

static void
ttl_options(nokv_options *o)
{
	nokv_options_init(o);
	o->memtable_size = 256 << 10;
	o->target_file_size = 64 << 10;
	o->max_bytes_for_level_base = 256 << 10;
	o->background_threads = false;
	o->clock_ms = test_clock;
}

static bool
present(nokv_db *db, const char *key, const char *want, uint64_t *expires)
{
	char	   *v = NULL;
	size_t		n = 0;
	nokv_error	err = {0};
	uint64_t	e = 0;
	int			rc = nokv_get_ttl(db, NULL, NOKV_CF_DEFAULT, key, strlen(key), &v, &n, &e, &err);
	bool		good;

	if (want == NULL)
	{
		free(v);
		if (rc != NOKV_NOT_FOUND)
			tap_diag("  %s: expected absent, got rc=%d", key, rc);
		return rc == NOKV_NOT_FOUND;
	}
	good = rc == NOKV_OK && n == strlen(want) && memcmp(v, want, n) == 0;
	if (!good)
		tap_diag("  %s: rc=%d (%s) value '%.*s', expected '%s'", key, rc, err.msg,
				 (int) n, v ? v : "", want);
	if (expires)
		*expires = e;
	free(v);
	return good;
}

static int
scan_count(nokv_db *db, bool backward)
{
	nokv_iter  *it = nokv_iter_new(db, NULL, NOKV_CF_DEFAULT);
	int			n = 0;

	if (backward)
		for (nokv_iter_seek_to_last(it); nokv_iter_valid(it); nokv_iter_prev(it))
			n++;
	else
		for (nokv_iter_seek_to_first(it); nokv_iter_valid(it); nokv_iter_next(it))
			n++;
	nokv_iter_free(it);
	return n;
}

static void
test_expiry(void)
{
	char	   *dir = tap_tmpdir("ttl");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	uint64_t	e = 0;
	char		key[32];
	nokv_stats	st;
	uint64_t	entries_before = 0,
				entries_after = 0;

	ttl_options(&o);
	if (!ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "open (%s)", err.msg))
		return;

	ok(nokv_put_ttl(db, 0, "short", 5, "s", 1, fake_now + 1000, &err) == NOKV_OK, "put with a 1 s ttl");
	ok(nokv_put_ttl(db, 0, "long", 4, "l", 1, fake_now + 3600000, &err) == NOKV_OK, "put with a 1 h ttl");
	ok(nokv_put(db, 0, "plain", 5, "p", 1, &err) == NOKV_OK, "put without ttl");
	ok(present(db, "short", "s", &e) && e == fake_now + 1000, "the ttl put is readable and reports its expiry");
	ok(present(db, "plain", "p", &e) && e == 0, "a plain put reports no expiry");
	is_int(scan_count(db, false), 3, "a scan sees all three before expiry");

	fake_now += 999;
	ok(present(db, "short", "s", NULL), "one millisecond before expiry it is still there");
	fake_now += 1;
	ok(present(db, "short", NULL, NULL), "at its expiry time it is gone for point reads");
	is_int(scan_count(db, false), 2, "and for forward scans");
	is_int(scan_count(db, true), 2, "and for backward scans");

	/* an expired newest version must hide older versions, like a delete */
	ok(nokv_put(db, 0, "layered", 7, "old", 3, &err) == NOKV_OK &&
	   nokv_put_ttl(db, 0, "layered", 7, "new", 3, fake_now + 10, &err) == NOKV_OK,
	   "an older plain version under a newer ttl version");
	ok(present(db, "layered", "new", NULL), "the newer version is read");
	fake_now += 10;
	ok(present(db, "layered", NULL, NULL), "after expiry the key is deleted, the old version does not resurface");

	/* persistence through the WAL and through SSTs */
	for (int i = 0; i < 2000; i++)
	{
		snprintf(key, sizeof(key), "bulk%05d", i);
		if (nokv_put_ttl(db, 0, key, strlen(key), "v", 1, fake_now + (i % 2 ? 500 : 100000), &err) != NOKV_OK)
			break;
	}
	nokv_close(db);
	ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "reopen (wal replay of ttl puts)");
	ok(present(db, "long", "l", &e) && e > fake_now, "a live ttl entry survives with its expiry");
	ok(present(db, "bulk00001", "v", NULL), "bulk entries survive");
	ok(nokv_compact_all(db, &err) == NOKV_OK, "flush + compact");
	nokv_get_stats(db, &st);
	for (int l = 0; l < st.num_levels; l++)
		entries_before += st.levels[l].entries;

	fake_now += 1000;
	ok(present(db, "bulk00001", NULL, NULL) && present(db, "bulk00002", "v", NULL),
	   "odd keys expired, even keys live");
	ok(nokv_compact_range(db, 0, "", 0, "\xff\xff\xff\xff", 4, &err) == NOKV_OK,
	   "full compaction after expiry (%s)", err.msg);
	nokv_get_stats(db, &st);
	for (int l = 0; l < st.num_levels; l++)
		entries_after += st.levels[l].entries;
	ok(entries_after + 900 <= entries_before,
	   "compaction removed the expired entries (%" PRIu64 " -> %" PRIu64 " entries)",
	   entries_before, entries_after);
	ok(present(db, "bulk00002", "v", NULL) && present(db, "bulk00003", NULL, NULL),
	   "reads agree after compaction");
	nokv_close(db);
	tap_rmdir(dir);
	free(dir);
}

/* visibility hook: hide values that start with "x" */
static bool
hide_x(void *arg, int cf, const char *key, size_t klen, uint64_t version,
	   const char *value, size_t vlen)
{
	int		   *calls = arg;

	(void) cf;
	(void) key;
	(void) klen;
	(void) version;
	(*calls)++;
	return !(vlen > 0 && value[0] == 'x');
}

static void
test_visibility_hook(void)
{
	char	   *dir = tap_tmpdir("vis");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	nokv_read_options ro;
	int			calls = 0;
	char	   *v = NULL;
	size_t		n;

	ttl_options(&o);
	if (!ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "open (%s)", err.msg))
		return;
	nokv_put(db, 0, "a", 1, "a1", 2, &err);
	nokv_put(db, 0, "a", 1, "x-a2", 4, &err);	/* newest version hidden by the hook */
	nokv_put(db, 0, "b", 1, "x-b1", 4, &err);	/* only version hidden */
	nokv_put(db, 0, "c", 1, "c1", 2, &err);

	nokv_read_options_init(&ro);
	ro.visible = hide_x;
	ro.visible_arg = &calls;
	ok(nokv_get(db, &ro, 0, "a", 1, &v, &n, &err) == NOKV_OK && n == 2 && memcmp(v, "a1", 2) == 0,
	   "a hidden newest version falls back to the older visible one");
	free(v);
	v = NULL;
	is_int(nokv_get(db, &ro, 0, "b", 1, &v, &n, &err), NOKV_NOT_FOUND, "a key with no visible version is absent");
	free(v);
	v = NULL;
	ok(nokv_get(db, NULL, 0, "b", 1, &v, &n, &err) == NOKV_OK, "without the hook it is there");
	free(v);
	ok(calls >= 2, "the hook was consulted (%d calls)", calls);

	for (int pass = 0; pass < 2; pass++)
	{
		nokv_iter  *it = nokv_iter_new(db, &ro, 0);
		char		seen[16] = "";
		size_t		k;

		if (pass == 0)
			for (nokv_iter_seek_to_first(it); nokv_iter_valid(it); nokv_iter_next(it))
				strncat(seen, nokv_iter_key(it, &k), 1);
		else
			for (nokv_iter_seek_to_last(it); nokv_iter_valid(it); nokv_iter_prev(it))
				strncat(seen, nokv_iter_key(it, &k), 1);
		is_str(seen, pass == 0 ? "ac" : "ca", "%s scan with the hook skips invisible versions",
			   pass == 0 ? "forward" : "backward");
		nokv_iter_free(it);
	}
	{
		nokv_iter  *it = nokv_iter_new(db, &ro, 0);
		size_t		vl;
		const char *val;

		nokv_iter_seek(it, "a", 1);
		val = nokv_iter_value(it, &vl);
		ok(nokv_iter_valid(it) && vl == 2 && memcmp(val, "a1", 2) == 0, "the iterator returns the visible version's value");
		nokv_iter_free(it);
	}
	nokv_close(db);
	tap_rmdir(dir);
	free(dir);
}

/*
 * Randomized: puts with random TTLs (some none, some large values that go
 * to the value log), deletes, clock jumps, flushes, compactions and
 * reopens, checked against a model of (value, expiry) per key.
 */
#define MODEL_KEYS 200

typedef struct model_entry
{
	bool		present;
	int			gen;
	uint64_t	expires;		/* 0 = never */
} model_entry;

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
model_value(char *buf, size_t *len, int key, int gen)
{
	/* every third generation is large, so some values live in the value log */
	*len = gen % 3 == 0 ? 1500 : 20;
	memset(buf, 'a' + (key + gen) % 26, *len);
	snprintf(buf, 20, "%d:%d|", key, gen);
}

static bool
model_agrees(nokv_db *db, const model_entry *m, const char *when)
{
	nokv_iter  *it;
	int			live = 0,
				seen = 0;

	for (int k = 0; k < MODEL_KEYS; k++)
	{
		char		key[16];
		char	   *v = NULL;
		size_t		n = 0;
		uint64_t	e = 0;
		nokv_error	err = {0};
		bool		want = m[k].present && (m[k].expires == 0 || m[k].expires > fake_now);
		int			rc;

		snprintf(key, sizeof(key), "m%04d", k);
		rc = nokv_get_ttl(db, NULL, 0, key, strlen(key), &v, &n, &e, &err);
		if (want)
		{
			char		exp[2000];
			size_t		elen;

			live++;
			model_value(exp, &elen, k, m[k].gen);
			if (rc != NOKV_OK || n != elen || memcmp(v, exp, n) != 0 || e != m[k].expires)
			{
				tap_diag("  %s: %s rc=%d len %zu/%zu expiry %" PRIu64 "/%" PRIu64, when, key, rc, n, elen,
						 e, m[k].expires);
				free(v);
				return false;
			}
		}
		else if (rc != NOKV_NOT_FOUND)
		{
			tap_diag("  %s: %s should be absent, rc=%d", when, key, rc);
			free(v);
			return false;
		}
		free(v);
	}
	it = nokv_iter_new(db, NULL, 0);
	for (nokv_iter_seek_to_first(it); nokv_iter_valid(it); nokv_iter_next(it))
		seen++;
	nokv_iter_free(it);
	if (seen != live)
		tap_diag("  %s: scan saw %d keys, model has %d", when, seen, live);
	return seen == live;
}

static void
test_random_ttl(void)
{
	char	   *dir = tap_tmpdir("ttl-model");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	model_entry m[MODEL_KEYS];
	uint64_t	seed = 0x9e3779b97f4a7c15ULL;
	bool		good = true;
	int			ops = 6000;
	int			op;

	memset(m, 0, sizeof(m));
	ttl_options(&o);
	o.memtable_size = 128 << 10;
	o.vlog_segment_size = 64 << 10;
	if (!ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "open (%s)", err.msg))
		return;
	for (op = 0; op < ops && good; op++)
	{
		uint64_t	c = rnd(&seed) % 100;
		int			k = (int) (rnd(&seed) % MODEL_KEYS);
		char		key[16];

		snprintf(key, sizeof(key), "m%04d", k);
		if (c < 55)
		{
			char		val[2000];
			size_t		vlen;
			int			gen = op + 1;
			uint64_t	ttl = rnd(&seed) % 3 == 0 ? 0 : 1 + rnd(&seed) % 5000;

			model_value(val, &vlen, k, gen);
			good = nokv_put_ttl(db, 0, key, strlen(key), val, vlen, ttl ? fake_now + ttl : 0, &err) == NOKV_OK;
			m[k] = (model_entry) {.present = true, .gen = gen, .expires = ttl ? fake_now + ttl : 0};
		}
		else if (c < 65)
		{
			good = nokv_delete(db, 0, key, strlen(key), &err) == NOKV_OK;
			m[k].present = false;
		}
		else if (c < 80)
			fake_now += rnd(&seed) % 1500;	/* time passes: entries expire */
		else if (c < 88)
			good = nokv_rotate_memtable(db, &err) == NOKV_OK && nokv_flush_one(db, &err) >= 0;
		else if (c < 95)
			good = nokv_compact_step(db, &err) >= 0 && nokv_vlog_gc(db, 0.1, &err) >= 0;
		else if (c < 97)
			good = nokv_compact_all(db, &err) == NOKV_OK;
		else if (c < 98)
		{
			nokv_close(db);
			good = nokv_open(&o, dir, &db, &err) == NOKV_OK;
		}
		else
			good = model_agrees(db, m, "random check");
		if (!good)
			tap_diag("  operation %d failed: %s", op, err.msg);
	}
	ok(good, "%d random ttl operations agree with the model", op);
	ok(good && model_agrees(db, m, "final"), "final full comparison");
	nokv_close(db);
	tap_rmdir(dir);
	free(dir);
}

int
main(void)
{
	test_expiry();
	test_visibility_hook();
	test_random_ttl();
	return tap_done();
}
