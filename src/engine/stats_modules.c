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
#include "nokv/vlog.h"

static void
row(nokv_stat_fn fn, void *arg, const char *name, double v, const char *unit, const char *desc)
{
	nokv_stat	s = {.name = name, .value = v, .unit = unit, .description = desc};

	fn(arg, &s);
}

void
nokv_vlog_emit_stats(nokv_db *db, nokv_stat_fn fn, void *arg)
{
	nokv_vlog_stats st;

	nokv_vlog_get_stats(&db->ctx, db->hdr->vlog, &st);
	row(fn, arg, "value_log.threshold", (double) db->hdr->opts.vlog_threshold, "bytes",
		"values at least this large are stored in the value log (0 = never)");
	row(fn, arg, "value_log.segments", (double) st.segments, "count", "value-log segments");
	row(fn, arg, "value_log.bytes", (double) st.bytes, "bytes", "bytes in value-log segments");
	row(fn, arg, "value_log.discard_bytes", (double) st.discard_bytes, "bytes",
		"segment bytes no pointer references any more (exact)");
	row(fn, arg, "value_log.discard_ratio", st.discard_ratio, "ratio", "discard bytes / segment bytes");
	row(fn, arg, "value_log.pending_deletes", (double) st.pending_delete, "count",
		"retired segments waiting for readers of old versions");
	row(fn, arg, "value_log.head.segment", (double) st.head.segment, "count", "active segment");
	row(fn, arg, "value_log.head.offset", (double) st.head.offset, "bytes", "bytes in the active segment");
	row(fn, arg, "value_log.durable_head.offset", (double) st.durable.offset, "bytes",
		"active-segment bytes made durable");
	row(fn, arg, "value_log.appends", (double) st.appends, "count", "records appended");
	row(fn, arg, "value_log.append_bytes", (double) st.append_bytes, "bytes", "record bytes appended");
	row(fn, arg, "value_log.reads", (double) st.reads, "count", "values read through pointers");
	row(fn, arg, "value_log.read_errors", (double) st.read_errors, "count", "pointer reads that failed");
	row(fn, arg, "value_log.syncs", (double) st.syncs, "count", "value-log fdatasync calls");
	row(fn, arg, "value_log.segments_created", (double) st.segments_created, "count", "segments created");
	row(fn, arg, "value_log.segments_deleted", (double) st.segments_deleted, "count", "segments deleted");
	row(fn, arg, "value_log.gc.gc_runs", (double) atomic_load(&db->hdr->stats.vlog_gc_runs), "count",
		"segments collected by GC");
}

void
nokv_txn_emit_stats(nokv_db *db, nokv_stat_fn fn, void *arg)
{
	nokv_txn_emit_stat_rows(db, fn, arg);
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
