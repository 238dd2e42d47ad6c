/*-------------------------------------------------------------------------
 *
 * test_stats.c
 *	  The statistics rows: names unique, units known, values consistent.
 *
 * test/engine/test_stats.c
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/nokv.h"
#include "tap.h"

#define MAX_ROWS 512

typedef struct rows
{
	int			n;
	char		name[MAX_ROWS][128];
	double		value[MAX_ROWS];
	int			bad_unit;
	int			no_desc;
} rows;

static void
collect(void *arg, const nokv_stat *s)
{
	rows	   *r = arg;
	static const char *units[] = {"count", "bytes", "ratio", "bool", "version", "ms", NULL};
	bool		known = false;

	if (r->n >= MAX_ROWS)
		return;
	for (int i = 0; units[i]; i++)
		known |= strcmp(units[i], s->unit) == 0;
	if (!known)
		r->bad_unit++;
	if (!s->description || !s->description[0])
		r->no_desc++;
	snprintf(r->name[r->n], sizeof(r->name[0]), "%s", s->name);
	r->value[r->n++] = s->value;
}

static double
find(const rows *r, const char *name)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->name[i], name) == 0)
			return r->value[i];
	tap_diag("  row %s missing", name);
	return -1;
}

int
main(void)
{
	char	   *dir = tap_tmpdir("stats");
	nokv_options o;
	nokv_db    *db;
	nokv_error	err = {0};
	rows	   *r = calloc(1, sizeof(rows));
	int			dups = 0;
	char		key[32];

	nokv_options_init(&o);
	o.memtable_size = 256 << 10;
	o.background_threads = false;
	if (!ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "open (%s)", err.msg))
		return tap_done();
	for (int i = 0; i < 3000; i++)
	{
		snprintf(key, sizeof(key), "k%05d", i);
		nokv_put(db, i % 3, key, strlen(key), "value", 5, &err);
	}
	for (int i = 0; i < 10; i++)
	{
		char	   *v;
		size_t		n;

		if (nokv_get(db, NULL, 1, "k00001", 6, &v, &n, &err) == NOKV_OK)
			free(v);
	}
	ok(nokv_compact_all(db, &err) == NOKV_OK, "compact");

	nokv_stats_foreach(db, collect, r);
	ok(r->n > 60, "many rows (%d)", r->n);
	for (int i = 0; i < r->n; i++)
		for (int j = i + 1; j < r->n; j++)
			dups += strcmp(r->name[i], r->name[j]) == 0;
	is_int(dups, 0, "row names are unique");
	is_int(r->bad_unit, 0, "every unit is one of the documented ones");
	is_int(r->no_desc, 0, "every row has a description");
	ok(find(r, "write.entries_total") == 3000, "write.entries_total counts every put");
	ok(find(r, "lsm.column_families.default.writes") == 1000 &&
	   find(r, "lsm.column_families.lock.writes") == 1000 &&
	   find(r, "lsm.column_families.write.writes") == 1000, "per-cf write counters");
	ok(find(r, "lsm.column_families.lock.reads") == 10, "per-cf read counter");
	ok(find(r, "lsm.column_families.default.entries") == 1000 &&
	   find(r, "lsm.column_families.write.entries") == 1000, "per-cf entries from SST properties");
	ok(find(r, "lsm.column_families.default.bytes") > 1000 * 6, "per-cf bytes");
	ok(find(r, "entries") == 3000, "entries in SSTs");
	ok(find(r, "flush.completed") >= 1 && find(r, "compaction.runs") >= 0, "flush and compaction rows");
	ok(find(r, "compaction.write_amplification") >= 1.0, "write amplification >= 1");
	ok(find(r, "wal.bytes") > 0 && find(r, "wal.enabled") == 1, "wal rows");
	ok(find(r, "lsm.levels.L0.tables") >= 0 && find(r, "lsm.levels.L6.score") >= 0, "per-level rows");
	ok(find(r, "version.last") == 3000, "last version");
	ok(find(r, "hot.enabled") == 1 && find(r, "hot.read_ring.touches") >= 10 &&
	   find(r, "hot.write_ring.touches") >= 3000, "hot-key ring rows");
	{
		nokv_hot_key hk[4];
		int			n = nokv_hot_keys(db, false, hk, 4);

		ok(n >= 1 && hk[0].cf == 1 && hk[0].key_len == 6 && memcmp(hk[0].key, "k00001", 6) == 0 &&
		   hk[0].count == 10, "the hottest read key is the one read ten times");
		ok(nokv_hot_keys(db, true, hk, 4) >= 1, "write hot keys are reported");
	}
	nokv_close(db);

	/* the optional per-key write limit */
	o.hot_write_limit = 5;
	if (ok(nokv_open(&o, dir, &db, &err) == NOKV_OK, "reopen with a write limit of 5"))
	{
		int			okays = 0,
					busy = 0;

		for (int i = 0; i < 20; i++)
		{
			int			rc = nokv_put(db, 0, "hot", 3, "v", 1, &err);

			okays += rc == NOKV_OK;
			busy += rc == NOKV_BUSY;
		}
		ok(okays >= 5 && okays <= 7 && busy == 20 - okays,
		   "writes past the limit are refused with NOKV_BUSY (%d ok, %d busy)", okays, busy);
		ok(nokv_put(db, 0, "cold", 4, "v", 1, &err) == NOKV_OK, "other keys are not limited");
		nokv_close(db);
	}
	o.hot_write_limit = 0;
	o.external_log = true;
	ok(nokv_open(&o, dir, &db, &err) == NOKV_INVALID_ARGUMENT && strstr(err.msg, "wal") != NULL,
	   "external-log mode refuses a directory with unflushed engine WAL (%s)", err.msg);

	tap_rmdir(dir);
	free(dir);
	free(r);
	return tap_done();
}
