-- Every observability view answers and is consistent with the data.
CREATE EXTENSION IF NOT EXISTS nokv;

SELECT count(nokv_put('view' || i, repeat('v', 50))) FROM generate_series(1, 500) i;
SELECT count(nokv_put('viewbig' || i, repeat('w', 1000))) FROM generate_series(1, 20) i;
SELECT nokv_get('view7') IS NOT NULL AS read_once;
SELECT nokv_flush();

-- nokv_stats reads like `nokv stats`: one row per metric
SELECT count(*) > 50 AS many_rows, count(DISTINCT name) = count(*) AS unique_names
FROM nokv_stats;
SELECT name, unit FROM nokv_stats
WHERE name IN ('compaction.runs', 'lsm.levels.L0.tables')
ORDER BY name;
SELECT bool_and(description <> '') AS described FROM nokv_stats;

-- levels, sstables and the manifest agree
SELECT count(*) AS levels FROM nokv_levels;
SELECT (SELECT sum(files) FROM nokv_levels) = (SELECT count(*) FROM nokv_sstables) AS files_agree,
       (SELECT sum(bytes) FROM nokv_levels) = (SELECT sum(size) FROM nokv_sstables) AS bytes_agree,
       (SELECT live_files FROM nokv_manifest) = (SELECT count(*) FROM nokv_sstables) AS manifest_agrees;
SELECT count(*) > 0 AS has_sst, bool_and(min_version <= max_version) AS ordered_versions,
       bool_and(smallest_key <= largest_key) AS ordered_keys
FROM nokv_sstables;
SELECT flushed_lsn > '0/0' AS flushed, flushed_lsn <= pg_current_wal_insert_lsn() AS in_the_past
FROM nokv_manifest;

-- memtables: one active
SELECT count(*) FILTER (WHERE state = 'active') AS active FROM nokv_memtables;

-- the value log holds the large values
SELECT count(*) > 0 AS segments, bool_and(discard_ratio BETWEEN 0 AND 1) AS sane_ratio
FROM nokv_vlog_segments;

-- hot keys: the written keys show up (the namespace byte is stripped)
SELECT count(*) > 0 AS hot_writes FROM nokv_hotkeys WHERE kind = 'write';
SELECT bool_and(rank > 0 AND count > 0) AS ranked FROM nokv_hotkeys;

-- workers: one of each kind, running, engine ready
SELECT worker_type, activity IS NOT NULL AS has_activity, engine_state, pid IS NOT NULL AS running
FROM nokv_workers ORDER BY worker_type;
SELECT backend_type FROM pg_stat_activity WHERE backend_type LIKE 'nokv%' ORDER BY 1;
