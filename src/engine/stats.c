/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Every engine figure as named rows (nokv_stats_foreach).
 *
 * The rows are what the PostgreSQL extension's nokv_stats view and the
 * offline CLI print, so names follow NoKV's stats schema where it has one
 * (flush.*, compaction.*, wal.*, write.*, cache.*, lsm.levels.*,
 * lsm.column_families.*, value_log.*, txn.*, hot.*).  Everything is read
 * from atomics or under short shared locks: a stats call never stops
 * writers.  Per-column-family entry and byte counts come from the SST
 * properties of the current version's files (opened through the
 * per-process table cache) plus the memtables' entry counts.
 *
 * src/engine/stats.c
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nokv/db_impl.h"
#include "nokv/status.h"

typedef struct emitter
{
	nokv_stat_fn fn;
	void	   *arg;
	char		name[128];
} emitter;

static void
emit(emitter *e, const char *name, double value, const char *unit, const char *desc)
{
	nokv_stat	s = {.name = name, .value = value, .unit = unit, .description = desc};

	e->fn(e->arg, &s);
}

static void
emitf(emitter *e, double value, const char *unit, const char *desc, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void
emitf(emitter *e, double value, const char *unit, const char *desc, const char *fmt, ...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(e->name, sizeof(e->name), fmt, ap);
	va_end(ap);
	emit(e, e->name, value, unit, desc);
}

/* per column family: live SST entries and bytes of the current version */
static void
cf_totals(nokv_db *db, uint64_t *entries, uint64_t *bytes)
{
	nokv_version *v = nokv_version_current(db);

	for (int level = 0; level < db->hdr->opts.num_levels; level++)
		for (int i = 0; i < v->nfiles[level]; i++)
		{
			nokv_sst_reader *r;
			const nokv_sst_props *p;

			if (nokv_table_get(db, nokv_version_file(db, v, level, i), &r, NULL) != NOKV_OK)
				continue;
			p = nokv_sst_get_props(r);
			for (int cf = 0; cf < NOKV_CF_COUNT; cf++)
			{
				entries[cf] += p->cf_entries[cf];
				bytes[cf] += p->cf_key_bytes[cf] + p->cf_value_bytes[cf];
			}
		}
	nokv_version_unref(db, v);
}

void
nokv_stats_foreach(nokv_db *db, nokv_stat_fn fn, void *arg)
{
	emitter		e = {.fn = fn, .arg = arg};
	nokv_stats	st;
	nokv_region_hdr *hdr = db->hdr;
	uint64_t	cf_entries[NOKV_CF_COUNT] = {0};
	uint64_t	cf_bytes[NOKV_CF_COUNT] = {0};
	uint64_t	entries = 0;
	double		max_score = 0;
	int			backlog = 0;
	int			running;
	int			flush_running = atomic_load(&hdr->flush_running);
	uint64_t	heap_used,
				heap_total;

	nokv_get_stats(db, &st);
	cf_totals(db, cf_entries, cf_bytes);
	for (int level = 0; level < st.num_levels; level++)
	{
		entries += st.levels[level].entries;
		if (st.levels[level].score > max_score)
			max_score = st.levels[level].score;
		if (st.levels[level].score >= 1.0)
			backlog++;
	}
	nokv_lock(&db->platform, NOKV_LOCK_COMPACTION, false);
	running = hdr->compactions_running;
	nokv_unlock(&db->platform, NOKV_LOCK_COMPACTION);
	nokv_heap_usage(&db->ctx, &heap_used, &heap_total);

	emit(&e, "entries", (double) entries, "count", "entries in SST files (all versions, deletes included)");
	emit(&e, "version.last", (double) st.last_version, "version", "last published version (the oracle's read timestamp)");
	emit(&e, "snapshots.active", st.snapshots, "count", "snapshots held (iterators hold one each)");

	emit(&e, "memtable.bytes", (double) st.memtable_bytes, "bytes", "arena bytes in use across live memtables");
	emit(&e, "memtable.immutable", st.memtables_immutable, "count", "memtables waiting for or under flush");
	emit(&e, "memtable.slots", hdr->opts.max_memtables, "count", "memtable slots in shared memory");
	emit(&e, "flush.pending", st.memtables_immutable, "count", "memtables queued for flush");
	emit(&e, "flush.active", flush_running, "bool", "a flush is running");
	emit(&e, "flush.completed", (double) st.flushes, "count", "memtables flushed to SSTs");
	emit(&e, "flush.bytes", (double) st.flush_bytes, "bytes", "SST bytes written by flushes");

	emit(&e, "write.batches_total", (double) nokv_hot_sum(&hdr->stats, offsetof(nokv_hot_counters, batches)), "count", "write batches applied");
	emit(&e, "write.entries_total", (double) st.writes, "count", "entries written (puts, deletes, range deletes)");
	emit(&e, "write.bytes_total", (double) st.user_bytes_written, "bytes", "key and value bytes accepted");
	emit(&e, "write.throttle_active", st.write_stalled, "bool", "writers are stalled (level 0 full or no free memtable)");
	emit(&e, "write.slowdown_active", st.write_slowed, "bool", "writers are delayed (level 0 above the slowdown trigger)");
	emit(&e, "write.stalls_total", (double) st.stall_count, "count", "times a writer stalled");
	emit(&e, "write.slowdowns_total", (double) st.slowdown_count, "count", "times a writer was delayed");
	emit(&e, "write.l0_slowdown_trigger", hdr->opts.l0_slowdown_trigger, "count", "level-0 files that start delaying writes");
	emit(&e, "write.l0_stop_trigger", hdr->opts.l0_stop_trigger, "count", "level-0 files that stall writes");

	emit(&e, "compaction.backlog", backlog, "count", "levels whose score is at least 1");
	emit(&e, "compaction.max_score", max_score, "ratio", "highest level score");
	emit(&e, "compaction.active", running, "count", "compactions running");
	emit(&e, "compaction.runs", (double) st.compactions, "count", "compactions completed (trivial moves included)");
	emit(&e, "compaction.bytes_read", (double) st.compaction_bytes_read, "bytes", "input bytes read by compactions");
	emit(&e, "compaction.bytes_written", (double) st.compaction_bytes_written, "bytes", "output bytes written by compactions");
	emit(&e, "compaction.entries_dropped", (double) st.compaction_entries_dropped, "count",
		 "versions, deletes and expired entries garbage-collected");
	emit(&e, "compaction.write_amplification", nokv_write_amplification(&st), "ratio",
		 "(wal + flush + compaction + value-log bytes written) / user bytes written");

	emit(&e, "wal.enabled", hdr->wal != 0, "bool", "the engine keeps its own WAL (false in external-log mode)");
	emit(&e, "wal.bytes", (double) st.wal_bytes, "bytes", "record bytes appended to the WAL");
	emit(&e, "wal.segments_created", (double) st.wal_segments, "count", "WAL segments created");
	emit(&e, "wal.syncs", (double) st.wal_syncs, "count", "WAL fdatasync calls");
	emit(&e, "wal.synced_batches", (double) st.wal_sync_batches, "count", "batches made durable by those syncs");
	emit(&e, "wal.avg_group_commit", st.wal_syncs ? (double) st.wal_sync_batches / (double) st.wal_syncs : 0.0,
		 "ratio", "batches per fdatasync (group-commit size)");
	emit(&e, "wal.log_number", (double) hdr->log_number, "count", "oldest WAL segment still needed");
	for (int l = 0; l < NOKV_MAX_EXTERNAL_LOGS; l++)
		if (hdr->ext_flushed[l])
			emitf(&e, (double) hdr->ext_flushed[l], "count",
				  "external log position whose data is durable in SSTs", "wal.external.%d.flushed", l);

	emit(&e, "manifest.bytes", (double) st.manifest_bytes, "bytes", "size of the live manifest");
	emit(&e, "manifest.number", (double) hdr->manifest_number, "count", "file number of the live manifest");

	emit(&e, "cache.block_hits", (double) st.block_cache_hits, "count", "block-cache hits");
	emit(&e, "cache.block_misses", (double) st.block_cache_misses, "count", "block-cache misses (file reads)");
	emit(&e, "cache.block_hit_rate",
		 st.block_cache_hits + st.block_cache_misses
		 ? (double) st.block_cache_hits / (double) (st.block_cache_hits + st.block_cache_misses) : 0.0,
		 "ratio", "hits / (hits + misses)");
	emit(&e, "cache.block_bytes", (double) st.block_cache_bytes, "bytes", "bytes cached");
	emit(&e, "cache.block_capacity", (double) hdr->opts.block_cache_size, "bytes", "block-cache budget");
	emit(&e, "cache.bloom_checked", (double) st.bloom_checked, "count", "bloom-filter checks");
	emit(&e, "cache.bloom_useful", (double) st.bloom_useful, "count", "checks that ruled a file out (no read)");
	emit(&e, "shm.heap_used", (double) heap_used, "bytes", "shared heap in use (versions, keys, cached blocks)");
	emit(&e, "shm.heap_size", (double) heap_total, "bytes", "shared heap size");
	emit(&e, "gets_total", (double) st.gets, "count", "point reads");

	for (int level = 0; level < st.num_levels; level++)
	{
		emitf(&e, st.levels[level].files, "count", "SST files in the level", "lsm.levels.L%d.tables", level);
		emitf(&e, (double) st.levels[level].bytes, "bytes", "SST bytes in the level", "lsm.levels.L%d.size_bytes", level);
		emitf(&e, (double) st.levels[level].entries, "count", "entries in the level", "lsm.levels.L%d.entries", level);
		emitf(&e, st.levels[level].score, "ratio", "compaction score (>= 1 needs compaction)", "lsm.levels.L%d.score", level);
	}
	emit(&e, "lsm.live_bytes", (double) st.live_sst_bytes, "bytes", "bytes in live SST files");

	for (int cf = 0; cf < NOKV_CF_COUNT; cf++)
	{
		const char *name = nokv_cf_name(cf);

		emitf(&e, (double) nokv_hot_sum(&hdr->stats, offsetof(nokv_hot_counters, cf_writes[cf])), "count", "entries written",
			  "lsm.column_families.%s.writes", name);
		emitf(&e, (double) nokv_hot_sum(&hdr->stats, offsetof(nokv_hot_counters, cf_reads[cf])), "count", "point reads",
			  "lsm.column_families.%s.reads", name);
		emitf(&e, (double) cf_entries[cf], "count", "entries in SST files", "lsm.column_families.%s.entries", name);
		emitf(&e, (double) cf_bytes[cf], "bytes", "key and value bytes in SST files (before compression)",
			  "lsm.column_families.%s.bytes", name);
	}

	nokv_vlog_emit_stats(db, fn, arg);
	nokv_txn_emit_stats(db, fn, arg);
	nokv_hotring_emit_stats(db, fn, arg);
}
