/*-------------------------------------------------------------------------
 *
 * kv_funcs.c
 *	  The SQL key-value API: nokv_put, nokv_get, nokv_delete, nokv_scan and
 *	  the operations nokv_flush, nokv_compact and nokv_vlog_gc.
 *
 * Keys live in the engine's key-value namespace (first key byte
 * NOKV_NS_KV), shared with the foreign data wrapper and the RESP gateway,
 * in one of the engine's column families.  Every write is transactional
 * (see mvcc.c): it is logged in PostgreSQL's WAL with the transaction's
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

#define MAX_USER_KEY (NOKV_MAX_KEY_SIZE - 1)

/* beyond any timestamptz anyway; keeps days * USECS_PER_DAY in range */
#define MAX_TTL_DAYS ((int64) 100000000)

/* milliseconds between the Unix and PostgreSQL epochs */
#define EPOCH_SHIFT_MS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000)

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
	char	   *name;
	int			cf;

	require_arg(fcinfo, n, "column family");
	name = text_to_cstring(PG_GETARG_TEXT_PP(n));
	cf = nokv_cf_from_name(name);
	if (cf < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown column family \"%s\"", name),
				 errhint("The column families are default, lock and write.")));
	return cf;
}

/* the engine key: namespace byte + the user's key */
static char *
engine_key(struct varlena *k, size_t *len)
{
	size_t		ulen = VARSIZE_ANY_EXHDR(k);
	char	   *key;

	if (ulen > MAX_USER_KEY)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("nokv key of %zu bytes exceeds the maximum of %d bytes", ulen, MAX_USER_KEY)));
	key = palloc(ulen + 1);
	key[0] = NOKV_NS_KV;
	memcpy(key + 1, VARDATA_ANY(k), ulen);
	*len = ulen + 1;
	return key;
}

static Snapshot
read_snapshot(void)
{
	return ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
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
	return (uint64) (expires / 1000 + EPOCH_SHIFT_MS);
}

static TimestampTz
expiry_to_timestamptz(uint64 ms)
{
	return ((int64) ms - EPOCH_SHIFT_MS) * 1000;
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

/* ---------- writes ---------- */

/* write one version of (cf, key): a value, or a delete when value is NULL */
static void
write_version(nokv_db *db, int cf, const char *key, size_t klen,
			  const char *value, size_t vlen, uint64 expires_at)
{
	nokv_batch *b;
	char	   *rec;
	int			rc;

	rec = palloc(NOKV_VH_SIZE + vlen);
	nokv_vh_encode(rec, value ? 0 : NOKV_VH_DELETED, GetCurrentFullTransactionId(),
				   GetCurrentCommandId(true));
	if (vlen)
		memcpy(rec + NOKV_VH_SIZE, value, vlen);
	b = nokv_batch_new();
	PG_TRY();
	{
		rc = nokv_batch_put_ttl(b, cf, key, klen, rec, NOKV_VH_SIZE + vlen, expires_at);
		if (rc != NOKV_OK)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("nokv value of %zu bytes is too large", vlen)));
		nokv_xlog_write(db, b);
	}
	PG_FINALLY();
	{
		nokv_batch_free(b);
	}
	PG_END_TRY();
	pfree(rec);
}

static void
check_value_size(size_t klen, size_t vlen)
{
	size_t		limit = (size_t) nokv_memtable_size_kb * 1024 / 2;

	if (klen + vlen + NOKV_VH_SIZE + 64 > limit || vlen > NOKV_MAX_VALUE_SIZE - NOKV_VH_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("nokv value of %zu bytes is too large", vlen),
				 errdetail("A key and value together must fit in half a memtable (nokv.memtable_size)."),
				 errhint("Raise nokv.memtable_size or split the value.")));
}

/*
 * nokv_put(key, value, ttl interval DEFAULT NULL, cf text DEFAULT 'default')
 */
Datum
nokv_sql_put(PG_FUNCTION_ARGS)
{
	nokv_db    *db;
	struct varlena *val;
	char	   *key;
	size_t		klen;
	uint64		expires_at;
	int			cf;

	require_arg(fcinfo, 0, "key");
	require_arg(fcinfo, 1, "value");
	key = engine_key(PG_GETARG_VARLENA_PP(0), &klen);
	val = PG_GETARG_VARLENA_PP(1);
	expires_at = ttl_arg(fcinfo, 2);
	cf = cf_arg(fcinfo, 3);
	check_value_size(klen, VARSIZE_ANY_EXHDR(val));

	db = nokv_engine();
	nokv_mvcc_begin_write();
	nokv_mvcc_lock_key(db, cf, key, klen);
	write_version(db, cf, key, klen, VARDATA_ANY(val), VARSIZE_ANY_EXHDR(val), expires_at);
	nokv_mvcc_unlock_key(cf, key, klen);
	PG_RETURN_VOID();
}

/* ---------- reads ---------- */

/* the value of (cf, key) the current snapshot sees, palloc'd; NULL if none */
static char *
read_value(nokv_db *db, int cf, const char *key, size_t klen, size_t *len)
{
	nokv_read_options ro;
	nokv_error	err;
	NokvVersionHeader h;
	char	   *raw = NULL;
	char	   *out;
	size_t		rawlen;
	int			rc;

	nokv_read_options_init(&ro);
	ro.visible = nokv_mvcc_visible;
	ro.visible_arg = read_snapshot();
	rc = nokv_get(db, &ro, cf, key, klen, &raw, &rawlen, &err);
	if (rc == NOKV_NOT_FOUND)
		return NULL;
	if (rc != NOKV_OK)
		nokv_raise_engine_error(rc, &err, "read");
	if (!nokv_vh_decode(raw, rawlen, &h) || (h.flags & NOKV_VH_DELETED))
	{
		free(raw);
		return NULL;
	}
	*len = rawlen - NOKV_VH_SIZE;
	out = palloc(*len + 1);
	memcpy(out, raw + NOKV_VH_SIZE, *len);
	free(raw);
	return out;
}

static Datum
get_common(FunctionCallInfo fcinfo, bool as_text)
{
	nokv_db    *db;
	char	   *key;
	char	   *val;
	size_t		klen;
	size_t		vlen = 0;
	int			cf;
	bytea	   *result;

	require_arg(fcinfo, 0, "key");
	key = engine_key(PG_GETARG_VARLENA_PP(0), &klen);
	cf = cf_arg(fcinfo, 1);
	nokv_mvcc_check_access();
	db = nokv_engine();
	val = read_value(db, cf, key, klen, &vlen);
	if (val == NULL)
		PG_RETURN_NULL();
	if (as_text)
		check_text(val, vlen, "value");
	result = (bytea *) palloc(VARHDRSZ + vlen);
	SET_VARSIZE(result, VARHDRSZ + vlen);
	memcpy(VARDATA(result), val, vlen);
	PG_RETURN_POINTER(result);
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
	nokv_db    *db;
	char	   *key;
	size_t		klen;
	int			cf;
	bool		existed;

	require_arg(fcinfo, 0, "key");
	key = engine_key(PG_GETARG_VARLENA_PP(0), &klen);
	cf = cf_arg(fcinfo, 1);
	db = nokv_engine();
	nokv_mvcc_begin_write();
	existed = nokv_mvcc_lock_key(db, cf, key, klen);
	if (existed)
		write_version(db, cf, key, klen, NULL, 0, 0);
	nokv_mvcc_unlock_key(cf, key, klen);
	PG_RETURN_BOOL(existed);
}

/* ---------- scans ---------- */

static void
scan_common(FunctionCallInfo fcinfo, bool as_text)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	nokv_db    *db;
	nokv_read_options ro;
	nokv_iter  *it;
	char	   *lo;
	char	   *hi;
	size_t		lolen;
	size_t		hilen;
	int64		limit = -1;
	int64		rows = 0;
	int			cf;

	if (!PG_ARGISNULL(0))
		lo = engine_key(PG_GETARG_VARLENA_PP(0), &lolen);
	else
	{
		lo = palloc(1);
		lo[0] = NOKV_NS_KV;
		lolen = 1;
	}
	if (!PG_ARGISNULL(1))
		hi = engine_key(PG_GETARG_VARLENA_PP(1), &hilen);
	else
	{
		hi = palloc(1);
		hi[0] = NOKV_NS_KV + 1;
		hilen = 1;
	}
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
	db = nokv_engine();

	InitMaterializedSRF(fcinfo, 0);
	if (limit == 0)
		return;

	nokv_read_options_init(&ro);
	ro.visible = nokv_mvcc_visible;
	ro.visible_arg = read_snapshot();
	ro.lower_bound = lo;
	ro.lower_len = lolen;
	ro.upper_bound = hi;
	ro.upper_len = hilen;
	it = nokv_iter_new(db, &ro, cf);
	if (it == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	PG_TRY();
	{
		nokv_error	err;
		int			rc;

		for (nokv_iter_seek(it, lo, lolen); nokv_iter_valid(it); nokv_iter_next(it))
		{
			size_t		klen;
			size_t		vlen;
			const char *k = nokv_iter_key(it, &klen);
			const char *v = nokv_iter_value(it, &vlen);
			uint64		expires = nokv_iter_expires_at(it);
			NokvVersionHeader h;
			Datum		values[3];
			bool		nulls[3] = {false, false, false};
			bytea	   *kd;
			bytea	   *vd;

			CHECK_FOR_INTERRUPTS();
			if (!nokv_vh_decode(v, vlen, &h) || (h.flags & NOKV_VH_DELETED))
				continue;
			k++;
			klen--;
			v += NOKV_VH_SIZE;
			vlen -= NOKV_VH_SIZE;
			if (as_text)
			{
				check_text(k, klen, "key");
				check_text(v, vlen, "value");
			}
			kd = (bytea *) palloc(VARHDRSZ + klen);
			SET_VARSIZE(kd, VARHDRSZ + klen);
			memcpy(VARDATA(kd), k, klen);
			vd = (bytea *) palloc(VARHDRSZ + vlen);
			SET_VARSIZE(vd, VARHDRSZ + vlen);
			memcpy(VARDATA(vd), v, vlen);
			values[0] = PointerGetDatum(kd);
			values[1] = PointerGetDatum(vd);
			if (expires)
				values[2] = TimestampTzGetDatum(expiry_to_timestamptz(expires));
			else
				nulls[2] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			if (limit > 0 && ++rows >= limit)
				break;
		}
		rc = nokv_iter_status(it, &err);
		if (rc != NOKV_OK)
			nokv_raise_engine_error(rc, &err, "scan");
	}
	PG_FINALLY();
	{
		nokv_iter_free(it);
	}
	PG_END_TRY();
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
		lo = engine_key(PG_GETARG_VARLENA_PP(0), &lolen);
	if (!PG_ARGISNULL(1))
		hi = engine_key(PG_GETARG_VARLENA_PP(1), &hilen);
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
