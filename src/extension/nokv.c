/*-------------------------------------------------------------------------
 *
 * nokv.c
 *	  Entry point of the nokv PostgreSQL extension: loading and settings.
 *
 * nokv keeps its engine in shared memory and runs background workers, so
 * it must be loaded by the postmaster (shared_preload_libraries).  Loaded
 * any other way the module refuses, with a hint, instead of half-working.
 * The settings that size shared memory are fixed at server start; the
 * others take effect on reload or per session.
 *
 * This is the only part of the tree, with its sibling files, that
 * includes postgres.h; the engine core in src/engine is PostgreSQL-free
 * and is linked in as a static library (see Makefile and mk/engine.mk).
 *
 * src/extension/nokv.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "nokv_pg.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

char	   *nokv_data_directory = NULL;
int			nokv_memtable_size_kb = 32 * 1024;
int			nokv_max_memtables = 4;
int			nokv_block_cache_size_kb = 64 * 1024;
int			nokv_vlog_threshold = 1024;
int			nokv_vlog_segment_size_mb = 256;
double		nokv_vlog_gc_discard_ratio = 0.5;
int			nokv_vlog_gc_interval_ms = 10000;
bool		nokv_compression = true;
int			nokv_compaction_workers = 1;
int			nokv_hot_key_window_ms = 60000;
int			nokv_hot_key_top_n = 16;
int			nokv_pg_sync_mode = NOKV_PG_SYNC_INHERIT;
int			nokv_freeze_max_age = 100000000;

static const struct config_enum_entry sync_mode_options[] = {
	{"inherit", NOKV_PG_SYNC_INHERIT, false},
	{"on", NOKV_PG_SYNC_ON, false},
	{"off", NOKV_PG_SYNC_OFF, false},
	{NULL, 0, false}
};

static void
define_settings(void)
{
	DefineCustomStringVariable("nokv.data_directory",
							   "Directory of the nokv engine's files.",
							   "Empty means \"nokv\" inside the data directory.",
							   &nokv_data_directory, "",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.memtable_size",
							"Size of each memtable.",
							NULL, &nokv_memtable_size_kb, 32 * 1024, 256, 1024 * 1024,
							PGC_POSTMASTER, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.max_memtables",
							"Memtables in shared memory (the active one plus those awaiting flush).",
							NULL, &nokv_max_memtables, 4, 2, 16,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.block_cache_size",
							"Size of the shared block cache of SST data blocks.",
							NULL, &nokv_block_cache_size_kb, 64 * 1024, 0, 64 * 1024 * 1024,
							PGC_POSTMASTER, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.vlog_threshold",
							"Values at least this large are stored in the value log.",
							"0 keeps every value in the LSM tree.",
							&nokv_vlog_threshold, 1024, 0, 64 * 1024 * 1024,
							PGC_POSTMASTER, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.vlog_segment_size",
							"Size at which a value-log segment is closed.",
							NULL, &nokv_vlog_segment_size_mb, 256, 1, 4096,
							PGC_POSTMASTER, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomRealVariable("nokv.vlog_gc_discard_ratio",
							 "Garbage share above which a value-log segment is collected.",
							 NULL, &nokv_vlog_gc_discard_ratio, 0.5, 0.01, 1.0,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.vlog_gc_interval",
							"Time between value-log GC rounds of the GC worker.",
							NULL, &nokv_vlog_gc_interval_ms, 10000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomBoolVariable("nokv.compression",
							 "Compress SST data blocks with LZ4.",
							 NULL, &nokv_compression, true,
							 PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.compaction_workers",
							"Number of compaction background workers.",
							NULL, &nokv_compaction_workers, 1, 1, NOKV_MAX_COMPACTION_WORKERS,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.hot_key_window",
							"Sliding window over which hot keys are counted.",
							NULL, &nokv_hot_key_window_ms, 60000, 1000, 24 * 3600 * 1000,
							PGC_POSTMASTER, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.hot_key_top_n",
							"Number of hot keys nokv_hotkeys reports per kind.",
							NULL, &nokv_hot_key_top_n, 16, 0, 1024,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("nokv.sync_mode",
							 "Commit durability of transactions that write nokv data.",
							 "inherit follows synchronous_commit; on and off override it "
							 "for transactions that write nokv data.",
							 &nokv_pg_sync_mode, NOKV_PG_SYNC_INHERIT, sync_mode_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("nokv.freeze_max_age",
							"Transactions after which compaction rewrites all data to freeze old xids.",
							NULL, &nokv_freeze_max_age, 100000000, 10000, 1000000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
}

/*
 * Module load.  Everything here runs in the postmaster, before shared
 * memory exists.
 */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("nokv must be loaded via shared_preload_libraries"),
				 errhint("Add nokv to shared_preload_libraries in postgresql.conf and restart the server.")));

	/* the engine's log is PostgreSQL's WAL, kept by a replication slot */
	if (wal_level < WAL_LEVEL_REPLICA)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("nokv requires wal_level replica or logical"),
				 errhint("Set wal_level = replica in postgresql.conf.")));
	if (max_replication_slots < 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("nokv requires a free replication slot"),
				 errhint("Set max_replication_slots to at least 1.")));

	define_settings();
	nokv_xlog_register();
	nokv_mvcc_init();
	nokv_runtime_init();
	nokv_workers_register();
	nokv_tableam_init();
	nokv_gateway_init();

	/*
	 * Only after every module has defined its settings: reserving the prefix
	 * drops the placeholders of nokv.* settings not yet defined, which would
	 * lose their postgresql.conf values.
	 */
	MarkGUCPrefixReserved("nokv");
}

PG_FUNCTION_INFO_V1(nokv_engine_version);

/*
 * nokv_engine_version() returns text
 *
 * The version string of the engine core compiled into this module.
 */
Datum
nokv_engine_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(NOKV_VERSION_STRING));
}
