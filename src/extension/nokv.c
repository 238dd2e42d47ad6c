/*-------------------------------------------------------------------------
 *
 * nokv.c
 *	  Entry point of the nokv PostgreSQL extension.
 *
 * For now the module only exposes the version of the engine core it was
 * built with.  The runtime (shared memory, background workers, the table
 * access method, the FDW and the SQL views) arrives in later issues.
 *
 * This is the only part of the tree that includes postgres.h; the engine
 * core in src/engine is PostgreSQL-free and is linked in as a static
 * library (see Makefile and mk/engine.mk).
 *
 * src/extension/nokv.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "nokv/nokv.h"

PG_MODULE_MAGIC;

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
