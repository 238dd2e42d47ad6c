/* src/sql/00_core.sql: the engine, the key-value API, operations, views */

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

-- ---------------------------------------------------------------------
-- Observability views, readable by pg_monitor (and superusers).
-- ---------------------------------------------------------------------

CREATE FUNCTION nokv_stats_rows(OUT name text, OUT value float8, OUT unit text,
                                OUT description text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'nokv_stats_rows'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE FUNCTION nokv_hotkeys_rows(OUT kind text, OUT rank integer, OUT cf text,
                                  OUT key bytea, OUT truncated boolean, OUT count bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'nokv_hotkeys_rows'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE FUNCTION nokv_levels_rows(OUT level integer, OUT files integer, OUT bytes bigint,
                                 OUT entries bigint, OUT target_bytes bigint,
                                 OUT score float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'nokv_levels_rows'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE FUNCTION nokv_sstables_rows(OUT level integer, OUT file_number bigint,
                                   OUT size bigint, OUT entries bigint,
                                   OUT deletions bigint, OUT range_deletions bigint,
                                   OUT min_version pg_lsn, OUT max_version pg_lsn,
                                   OUT smallest_cf text, OUT smallest_key bytea,
                                   OUT largest_cf text, OUT largest_key bytea)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'nokv_sstables_rows'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE FUNCTION nokv_memtables_rows(OUT slot integer, OUT state text, OUT seq bigint,
                                    OUT bytes_used bigint, OUT capacity bigint,
                                    OUT entries bigint, OUT range_tombstones bigint,
                                    OUT min_version pg_lsn, OUT max_version pg_lsn,
                                    OUT pins integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'nokv_memtables_rows'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE FUNCTION nokv_manifest_rows(OUT manifest_number bigint, OUT manifest_size bigint,
                                   OUT next_file_number bigint, OUT last_version pg_lsn,
                                   OUT flushed_lsn pg_lsn, OUT live_files integer,
                                   OUT live_bytes bigint, OUT vlog_segments integer,
                                   OUT vlog_head_segment bigint,
                                   OUT vlog_head_offset bigint, OUT num_levels integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'nokv_manifest_rows'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE FUNCTION nokv_vlog_segments_rows(OUT segment bigint, OUT size bigint,
                                        OUT discard bigint, OUT discard_ratio float8,
                                        OUT is_head boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'nokv_vlog_segments_rows'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE FUNCTION nokv_workers_rows(OUT worker_type text, OUT worker_index integer,
                                  OUT pid integer, OUT activity text,
                                  OUT engine_state text, OUT started_at timestamptz,
                                  OUT last_work_at timestamptz, OUT wakeups bigint,
                                  OUT work_done bigint, OUT errors bigint,
                                  OUT last_error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'nokv_workers_rows'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE VIEW nokv_stats AS SELECT * FROM nokv_stats_rows();
CREATE VIEW nokv_hotkeys AS SELECT * FROM nokv_hotkeys_rows();
CREATE VIEW nokv_levels AS SELECT * FROM nokv_levels_rows();
CREATE VIEW nokv_sstables AS SELECT * FROM nokv_sstables_rows();
CREATE VIEW nokv_memtables AS SELECT * FROM nokv_memtables_rows();
CREATE VIEW nokv_manifest AS SELECT * FROM nokv_manifest_rows();
CREATE VIEW nokv_vlog_segments AS SELECT * FROM nokv_vlog_segments_rows();
CREATE VIEW nokv_workers AS SELECT * FROM nokv_workers_rows();

COMMENT ON VIEW nokv_stats IS 'every engine statistic: name, value, unit, description';
COMMENT ON VIEW nokv_hotkeys IS 'hottest keys read and written over the sliding window';
COMMENT ON VIEW nokv_levels IS 'LSM levels: files, bytes, entries, targets, compaction scores';
COMMENT ON VIEW nokv_sstables IS 'one row per live SST file';
COMMENT ON VIEW nokv_memtables IS 'memtables in shared memory';
COMMENT ON VIEW nokv_manifest IS 'the engine manifest: file numbers, versions, flushed WAL position';
COMMENT ON VIEW nokv_vlog_segments IS 'value-log segments and their garbage share';
COMMENT ON VIEW nokv_workers IS 'nokv background workers and the engine state';

DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['nokv_stats_rows()', 'nokv_hotkeys_rows()', 'nokv_levels_rows()',
                             'nokv_sstables_rows()', 'nokv_memtables_rows()',
                             'nokv_manifest_rows()', 'nokv_vlog_segments_rows()',
                             'nokv_workers_rows()']
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO pg_monitor', f);
    END LOOP;
END
$$;

REVOKE ALL ON nokv_stats, nokv_hotkeys, nokv_levels, nokv_sstables, nokv_memtables,
    nokv_manifest, nokv_vlog_segments, nokv_workers FROM PUBLIC;
GRANT SELECT ON nokv_stats, nokv_hotkeys, nokv_levels, nokv_sstables, nokv_memtables,
    nokv_manifest, nokv_vlog_segments, nokv_workers TO pg_monitor;
