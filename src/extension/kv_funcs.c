/*-------------------------------------------------------------------------
 *
 * kv_funcs.c
 *	  The SQL key-value API: nokv_put, nokv_get, nokv_delete, nokv_scan and
 *	  the operations nokv_flush, nokv_compact and nokv_vlog_gc.
 *
 * Keys live in the engine's key-value namespace (kv.c), shared with the
 * foreign data wrapper and the RESP gateway, in one of the engine's column
 * families.  Every write is transactional (see mvcc.c): it is logged in PostgreSQL's WAL with the transaction's
 * xid and disappears on ROLLBACK.  The bytea and text variants share the
 * C functions; text results are checked against the database encoding
 * because a key or value may have been written as bytea.
 *
 * src/extension/kv_funcs.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/int.h"
#include "access/xlog.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "nokv_pg.h"

PG_FUNCTION_INFO_V1(nokv_sql_put);
PG_FUNCTION_INFO_V1(nokv_sql_get_bytea);
PG_FUNCTION_INFO_V1(nokv_sql_get_text);
PG_FUNCTION_INFO_V1(nokv_sql_delete);
PG_FUNCTION_INFO_V1(nokv_sql_scan_bytea);
PG_FUNCTION_INFO_V1(nokv_sql_scan_text);
PG_FUNCTION_INFO_V1(nokv_sql_flush);
PG_FUNCTION_INFO_V1(nokv_sql_compact);
PG_FUNCTION_INFO_V1(nokv_sql_vlog_gc);

/* beyond any timestamptz anyway; keeps days * USECS_PER_DAY in range */
#define MAX_TTL_DAYS ((int64) 100000000)

/* ---------- arguments ---------- */

static void
require_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

static int
cf_arg(FunctionCallInfo fcinfo, int n)
{
	require_arg(fcinfo, n, "column family");
	return nokv_kv_cf(text_to_cstring(PG_GETARG_TEXT_PP(n)));
}

static char *
key_arg(FunctionCallInfo fcinfo, int n, size_t *klen)
{
	struct varlena *k = PG_GETARG_VARLENA_PP(n);

	return nokv_kv_key(VARDATA_ANY(k), VARSIZE_ANY_EXHDR(k), klen);
}

static uint64
ttl_arg(FunctionCallInfo fcinfo, int n)
{
	Interval   *ttl;
	int64		ms;
	int64		us;
	int64		days;
	TimestampTz expires;

	if (PG_ARGISNULL(n))
		return 0;
	ttl = PG_GETARG_INTERVAL_P(n);
	/* months as 30 days, as interval comparison does */
	days = (int64) ttl->day + (int64) ttl->month * DAYS_PER_MONTH;
	if (days > MAX_TTL_DAYS || days < -MAX_TTL_DAYS ||
		pg_add_s64_overflow(ttl->time, days * USECS_PER_DAY, &us))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("ttl puts the expiry beyond the range of timestamp with time zone")));
	if (us <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl must be positive"),
				 errhint("Use nokv_delete to remove a key now.")));
	/* expiry has millisecond resolution: round up so a tiny ttl still expires later */
	ms = (us + 999) / 1000;
	if (pg_add_s64_overflow(GetCurrentTimestamp(), ms * 1000, &expires) ||
		!IS_VALID_TIMESTAMP(expires))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("ttl puts the expiry beyond the range of timestamp with time zone")));
	return nokv_kv_timestamptz_to_expiry(expires);
}

static void
check_text(const char *data, size_t len, const char *what)
{
	if (!pg_verifymbstr(data, (int) len, true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("nokv %s is not valid in the database encoding", what),
				 errhint("Read it with the bytea variant of the function.")));
}

static bytea *
make_bytea(const char *data, size_t len)
{
	bytea	   *result = (bytea *) palloc(VARHDRSZ + len);

	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), data, len);
	return result;
}

/* ---------- writes ---------- */

/*
 * nokv_put(key, value, ttl interval DEFAULT NULL, cf text DEFAULT 'default')
 */
Datum
nokv_sql_put(PG_FUNCTION_ARGS)
{
	struct varlena *val;
	char	   *key;
	size_t		klen;
	uint64		expires_at;
	int			cf;

	require_arg(fcinfo, 0, "key");
	require_arg(fcinfo, 1, "value");
	key = key_arg(fcinfo, 0, &klen);
	val = PG_GETARG_VARLENA_PP(1);
	expires_at = ttl_arg(fcinfo, 2);
	cf = cf_arg(fcinfo, 3);
	nokv_kv_put(nokv_engine(), cf, key, klen, VARDATA_ANY(val), VARSIZE_ANY_EXHDR(val),
				expires_at);
	PG_RETURN_VOID();
}

/*
 * nokv_delete(key, cf text DEFAULT 'default') returns boolean
 *
 * True if the key had a value, which is now deleted: the newest committed
 * one after waiting for a concurrent writer (READ COMMITTED), which under
 * REPEATABLE READ is the one the snapshot sees or a serialization error.
 */
Datum
nokv_sql_delete(PG_FUNCTION_ARGS)
{
	char	   *key;
	size_t		klen;
	int			cf;

	require_arg(fcinfo, 0, "key");
	key = key_arg(fcinfo, 0, &klen);
	cf = cf_arg(fcinfo, 1);
	PG_RETURN_BOOL(nokv_kv_delete(nokv_engine(), cf, key, klen));
}

/* ---------- reads ---------- */

static Datum
get_common(FunctionCallInfo fcinfo, bool as_text)
{
	char	   *key;
	char	   *val;
	size_t		klen;
	size_t		vlen = 0;
	int			cf;

	require_arg(fcinfo, 0, "key");
	key = key_arg(fcinfo, 0, &klen);
	cf = cf_arg(fcinfo, 1);
	val = nokv_kv_get(nokv_engine(), cf, key, klen, NULL, &vlen, NULL);
	if (val == NULL)
		PG_RETURN_NULL();
	if (as_text)
		check_text(val, vlen, "value");
	PG_RETURN_BYTEA_P(make_bytea(val, vlen));
}

/* nokv_get(key bytea, cf text DEFAULT 'default') returns bytea */
Datum
nokv_sql_get_bytea(PG_FUNCTION_ARGS)
{
	return get_common(fcinfo, false);
}

/* nokv_get(key text, cf text DEFAULT 'default') returns text */
Datum
nokv_sql_get_text(PG_FUNCTION_ARGS)
{
	return get_common(fcinfo, true);
}

/* ---------- scans ---------- */

static void
scan_common(FunctionCallInfo fcinfo, bool as_text)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	NokvKvIter *it;
	NokvKvEntry e;
	char	   *lo = NULL;
	char	   *hi = NULL;
	size_t		lolen = 0;
	size_t		hilen = 0;
	int64		limit = -1;
	int64		rows = 0;
	int			cf;

	if (!PG_ARGISNULL(0))
		lo = key_arg(fcinfo, 0, &lolen);
	if (!PG_ARGISNULL(1))
		hi = key_arg(fcinfo, 1, &hilen);
	if (!PG_ARGISNULL(2))
	{
		limit = PG_GETARG_INT64(2);
		if (limit < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_ROW_COUNT_IN_LIMIT_CLAUSE),
					 errmsg("limit must not be negative")));
	}
	cf = cf_arg(fcinfo, 3);
	nokv_mvcc_check_access();

	InitMaterializedSRF(fcinfo, 0);
	if (limit == 0)
		return;

	it = nokv_kv_iter_begin(nokv_engine(), cf, lo, lolen, hi, hilen, NULL);
	while (nokv_kv_iter_next(it, &e))
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (as_text)
		{
			check_text(e.key, e.key_len, "key");
			check_text(e.value, e.value_len, "value");
		}
		values[0] = PointerGetDatum(make_bytea(e.key, e.key_len));
		values[1] = PointerGetDatum(make_bytea(e.value, e.value_len));
		if (e.expires_at)
			values[2] = TimestampTzGetDatum(nokv_kv_expiry_to_timestamptz(e.expires_at));
		else
			nulls[2] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		if (limit > 0 && ++rows >= limit)
			break;
	}
	nokv_kv_iter_end(it);
}

/* nokv_scan(start, stop, limit bigint DEFAULT NULL, cf text DEFAULT 'default') */
Datum
nokv_sql_scan_bytea(PG_FUNCTION_ARGS)
{
	scan_common(fcinfo, false);
	return (Datum) 0;
}

Datum
nokv_sql_scan_text(PG_FUNCTION_ARGS)
{
	scan_common(fcinfo, true);
	return (Datum) 0;
}

/* ---------- operations ---------- */

/* nokv_flush(): write every memtable to an SST now */
Datum
nokv_sql_flush(PG_FUNCTION_ARGS)
{
	nokv_db    *db = nokv_engine();
	nokv_error	err;
	int			rc;

	/* the engine flushes the WAL of each memtable first (runtime.c) */
	rc = nokv_flush_all(db, &err);
	if (rc != NOKV_OK)
		nokv_raise_engine_error(rc, &err, "flush");
	nokv_wake_workers(NOKV_WORKER_FLUSH);
	PG_RETURN_VOID();
}

/*
 * nokv_compact(start bytea DEFAULT NULL, stop bytea DEFAULT NULL)
 *
 * Compact the key-value namespace range [start, stop) of every column
 * family into the bottom level (everything when both are NULL): old
 * versions go, and committed ones are frozen.
 */
Datum
nokv_sql_compact(PG_FUNCTION_ARGS)
{
	nokv_db    *db = nokv_engine();
	nokv_error	err;
	char	   *lo = NULL;
	char	   *hi = NULL;
	size_t		lolen = 0;
	size_t		hilen = 0;
	int			rc = NOKV_OK;

	if (!PG_ARGISNULL(0))
		lo = key_arg(fcinfo, 0, &lolen);
	if (!PG_ARGISNULL(1))
		hi = key_arg(fcinfo, 1, &hilen);
	for (int cf = 0; cf < NOKV_CF_COUNT && rc == NOKV_OK; cf++)
	{
		CHECK_FOR_INTERRUPTS();
		if (lo == NULL && hi == NULL)
			rc = nokv_compact_range(db, cf, NULL, 0, NULL, 0, &err);
		else
		{
			char		ns_lo = NOKV_NS_KV;
			char		ns_hi = NOKV_NS_KV + 1;

			rc = nokv_compact_range(db, cf, lo ? lo : &ns_lo, lo ? lolen : 1,
									hi ? hi : &ns_hi, hi ? hilen : 1, &err);
		}
	}
	if (rc != NOKV_OK)
		nokv_raise_engine_error(rc, &err, "compaction");
	nokv_wake_workers(NOKV_WORKER_FLUSH);
	PG_RETURN_VOID();
}

/*
 * nokv_vlog_gc(ratio float8 DEFAULT NULL) returns integer
 *
 * Collect every value-log segment whose garbage share is at least ratio
 * (NULL: nokv.vlog_gc_discard_ratio); returns how many were collected.
 */
Datum
nokv_sql_vlog_gc(PG_FUNCTION_ARGS)
{
	nokv_db    *db = nokv_engine();
	nokv_error	err;
	double		ratio = nokv_vlog_gc_discard_ratio;
	int			n = 0;
	int			rc;

	if (!PG_ARGISNULL(0))
	{
		ratio = PG_GETARG_FLOAT8(0);
		if (!(ratio > 0.0 && ratio <= 1.0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ratio must be greater than 0 and at most 1")));
	}
	while ((rc = nokv_vlog_gc(db, ratio, &err)) > 0)
	{
		CHECK_FOR_INTERRUPTS();
		n++;
	}
	if (rc < 0)
		nokv_raise_engine_error(-rc, &err, "value-log GC");
	PG_RETURN_INT32(n);
}
