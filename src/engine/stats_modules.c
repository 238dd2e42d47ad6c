/*-------------------------------------------------------------------------
 *
 * stats_modules.c
 *	  Statistics rows of the value log, transactions and hot-key tracking.
 *
 * Placeholders until those modules are wired in: they add no rows yet.
 *
 * src/engine/stats_modules.c
 *-------------------------------------------------------------------------
 */
#include "nokv/db_impl.h"

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

void
nokv_hotring_emit_stats(nokv_db *db, nokv_stat_fn fn, void *arg)
{
	(void) db;
	(void) fn;
	(void) arg;
}
