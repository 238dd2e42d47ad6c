--
-- nokv table access method: VACUUM, ANALYZE, TABLESAMPLE, parallel scans
--
\set VERBOSITY terse
CREATE TABLE tam_v (id int PRIMARY KEY, v text) USING nokv WITH (autovacuum_enabled = off);
INSERT INTO tam_v SELECT g, md5(g::text) FROM generate_series(1, 3000) g;
-- ANALYZE samples virtual blocks and estimates well
ANALYZE tam_v;
SELECT reltuples, relpages FROM pg_class WHERE relname = 'tam_v';
EXPLAIN SELECT * FROM tam_v WHERE id < 100;
SELECT n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE relname = 'tam_v';
-- dead rows leave the indexes on VACUUM
DELETE FROM tam_v WHERE id % 3 = 0;
UPDATE tam_v SET v = 'updated' WHERE id % 3 = 1;
SELECT pg_stat_force_next_flush();
SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relname = 'tam_v';
VACUUM tam_v;
SELECT reltuples FROM pg_class WHERE relname = 'tam_v';
SELECT age(relfrozenxid) < 1000 AS frozenxid_recent FROM pg_class WHERE relname = 'tam_v';
SELECT count(*), count(*) FILTER (WHERE v = 'updated') FROM tam_v;
SET enable_seqscan = off;
SELECT count(*) FROM tam_v WHERE id > 0;
RESET enable_seqscan;
VACUUM (FREEZE) tam_v;
SELECT count(*) FROM tam_v;
SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'tam_v';
-- VACUUM VERBOSE reports the engine's figures (terse: the first line only)
VACUUM (VERBOSE, INDEX_CLEANUP off) tam_v;
-- TABLESAMPLE
SELECT count(*) FROM tam_v TABLESAMPLE SYSTEM (100);
SELECT count(*) BETWEEN 1 AND 2000 AS some FROM tam_v TABLESAMPLE BERNOULLI (20) REPEATABLE (7);
SELECT count(*) = (SELECT count(*) FROM tam_v TABLESAMPLE SYSTEM (30) REPEATABLE (3))
    FROM tam_v TABLESAMPLE SYSTEM (30) REPEATABLE (3);
-- parallel sequential scans
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT count(*), sum(id) FROM tam_v;
SELECT count(*), sum(id) FROM tam_v;
RESET ALL;
SELECT count(*), sum(id) FROM tam_v;
DROP TABLE tam_v;
