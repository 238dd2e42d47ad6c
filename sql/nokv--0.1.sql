/* sql/nokv--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION nokv" to load this file. \quit

CREATE FUNCTION nokv_engine_version()
RETURNS text
AS 'MODULE_PATHNAME', 'nokv_engine_version'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION nokv_engine_version() IS
'version of the nokv engine core built into the extension module';

-- ---------------------------------------------------------------------
-- The key-value API.  Not STRICT: a NULL key or value is an error, not a
-- silent NULL result.  Writes are transactional (PARALLEL UNSAFE).
-- ---------------------------------------------------------------------

CREATE FUNCTION nokv_put(key bytea, value bytea, ttl interval DEFAULT NULL,
                         cf text DEFAULT 'default')
RETURNS void
AS 'MODULE_PATHNAME', 'nokv_sql_put'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION nokv_put(key text, value text, ttl interval DEFAULT NULL,
                         cf text DEFAULT 'default')
RETURNS void
AS 'MODULE_PATHNAME', 'nokv_sql_put'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION nokv_get(key bytea, cf text DEFAULT 'default')
RETURNS bytea
AS 'MODULE_PATHNAME', 'nokv_sql_get_bytea'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION nokv_get(key text, cf text DEFAULT 'default')
RETURNS text
AS 'MODULE_PATHNAME', 'nokv_sql_get_text'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION nokv_delete(key bytea, cf text DEFAULT 'default')
RETURNS boolean
AS 'MODULE_PATHNAME', 'nokv_sql_delete'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION nokv_delete(key text, cf text DEFAULT 'default')
RETURNS boolean
AS 'MODULE_PATHNAME', 'nokv_sql_delete'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION nokv_scan(start bytea, stop bytea, "limit" bigint DEFAULT NULL,
                          cf text DEFAULT 'default',
                          OUT key bytea, OUT value bytea, OUT expires_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'nokv_sql_scan_bytea'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION nokv_scan(start text, stop text, "limit" bigint DEFAULT NULL,
                          cf text DEFAULT 'default',
                          OUT key text, OUT value text, OUT expires_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'nokv_sql_scan_text'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION nokv_put(bytea, bytea, interval, text) IS
'store value under key (optionally expiring after ttl) in column family cf';
COMMENT ON FUNCTION nokv_put(text, text, interval, text) IS
'store value under key (optionally expiring after ttl) in column family cf';
COMMENT ON FUNCTION nokv_get(bytea, text) IS 'the value of key visible to this snapshot, or NULL';
COMMENT ON FUNCTION nokv_get(text, text) IS 'the value of key visible to this snapshot, or NULL';
COMMENT ON FUNCTION nokv_delete(bytea, text) IS 'delete key; true if it had a value';
COMMENT ON FUNCTION nokv_delete(text, text) IS 'delete key; true if it had a value';
COMMENT ON FUNCTION nokv_scan(bytea, bytea, bigint, text) IS
'keys in [start, stop) in key order (NULL bounds are open), at most limit rows';
COMMENT ON FUNCTION nokv_scan(text, text, bigint, text) IS
'keys in [start, stop) in key order (NULL bounds are open), at most limit rows';

-- ---------------------------------------------------------------------
-- Operations: superusers and members of nokv_admin only.
-- ---------------------------------------------------------------------

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nokv_admin') THEN
        CREATE ROLE nokv_admin NOLOGIN;
    END IF;
END
$$;

CREATE FUNCTION nokv_flush()
RETURNS void
AS 'MODULE_PATHNAME', 'nokv_sql_flush'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION nokv_compact(start bytea DEFAULT NULL, stop bytea DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'nokv_sql_compact'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION nokv_vlog_gc(ratio float8 DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'nokv_sql_vlog_gc'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION nokv_flush() IS 'write every memtable to an SST now';
COMMENT ON FUNCTION nokv_compact(bytea, bytea) IS
'compact the key range [start, stop) (everything when NULL) into the bottom level';
COMMENT ON FUNCTION nokv_vlog_gc(float8) IS
'collect value-log segments whose garbage share is at least ratio; returns how many';

REVOKE EXECUTE ON FUNCTION nokv_flush() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nokv_compact(bytea, bytea) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nokv_vlog_gc(float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nokv_flush() TO nokv_admin;
GRANT EXECUTE ON FUNCTION nokv_compact(bytea, bytea) TO nokv_admin;
GRANT EXECUTE ON FUNCTION nokv_vlog_gc(float8) TO nokv_admin;
