/*-------------------------------------------------------------------------
 *
 * stats_modules.c
 *	  Statistics rows of the value log, transactions and hot-key tracking.
 *
 * Kept apart from stats.c so each module's rows sit next to each other;
 * the value-log and transaction rows are added as those modules are wired.
 *
 * src/engine/stats_modules.c
 *-------------------------------------------------------------------------
 */
#include <stdio.h>

#include "nokv/db_impl.h"
#include "nokv/hotring.h"

void
nokv_vlog_emit_stats(nokv_db *db, nokv_stat_fn fn, void *arg)
{
	(void) db;
	(void) fn;
	(void) arg;
}

void
nokv_txn_emit_stats(nokv_db *db, nokv_stat_fn fn, void *arg)
{
	(void) db;
	(void) fn;
	(void) arg;
}

static void
row(nokv_stat_fn fn, void *arg, const char *name, double v, const char *unit, const char *desc)
{
	nokv_stat	s = {.name = name, .value = v, .unit = unit, .description = desc};

	fn(arg, &s);
}

void
nokv_hotring_emit_stats(nokv_db *db, nokv_stat_fn fn, void *arg)
{
	static const char *ring_name[NOKV_HOT_RINGS] = {"read_ring", "write_ring"};

	row(fn, arg, "hot.enabled", db->hdr->hotring != 0, "bool", "hot-key tracking is on");
	if (!db->hdr->hotring)
		return;
	row(fn, arg, "hot.window_ms", db->hdr->opts.hot_window_ms, "ms", "sliding window of the hot-key counts");
	row(fn, arg, "hot.write_limit", db->hdr->opts.hot_write_limit, "count",
		"writes per key per window before NOKV_BUSY (0 = off)");
	for (int ring = 0; ring < NOKV_HOT_RINGS; ring++)
	{
		nokv_hotring_stats st;
		char		name[64];

		nokv_hotring_stats_get(&db->ctx, db->hdr->hotring, ring, &st);
#define HOT_ROW(field, unit, desc) \
		snprintf(name, sizeof(name), "hot.%s.%s", ring_name[ring], #field); \
		row(fn, arg, name, (double) st.field, unit, desc)
		HOT_ROW(touches, "count", "touches counted");
		HOT_ROW(inserts, "count", "keys that entered the table");
		HOT_ROW(evictions, "count", "cold keys replaced by new ones");
		HOT_ROW(entries, "count", "keys tracked now");
		HOT_ROW(capacity, "count", "keys the table can track");
		HOT_ROW(limited, "count", "writes refused by the per-key write limit");
		HOT_ROW(dropped, "count", "touches of untracked keys not admitted");
#undef HOT_ROW
	}
}
