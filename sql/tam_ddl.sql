--
-- nokv table access method: creating, truncating, rewriting and dropping
--
\set VERBOSITY terse
CREATE TABLE tam_d1 (id int PRIMARY KEY, v text) USING nokv;
SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE relname = 'tam_d1';
INSERT INTO tam_d1 VALUES (1, 'one'), (2, 'two');
-- no TOAST table: large values go to the engine's value log
SELECT reltoastrelid = 0 AS no_toast FROM pg_class WHERE relname = 'tam_d1';

-- default_table_access_method
SET default_table_access_method = nokv;
CREATE TABLE tam_d2 (a int);
SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE relname = 'tam_d2';
RESET default_table_access_method;

-- CREATE TABLE AS, SELECT INTO, materialized views
CREATE TABLE tam_d3 USING nokv AS SELECT g AS a, g * 2 AS b FROM generate_series(1, 500) g;
SELECT count(*), sum(a), sum(b) FROM tam_d3;
CREATE MATERIALIZED VIEW tam_mv USING nokv AS SELECT a FROM tam_d3 WHERE a <= 10;
SELECT count(*) FROM tam_mv;
INSERT INTO tam_d3 VALUES (1000, 0);
REFRESH MATERIALIZED VIEW tam_mv;
SELECT count(*) FROM tam_mv;

-- TRUNCATE, also inside the creating transaction
TRUNCATE tam_d3;
SELECT count(*) FROM tam_d3;
INSERT INTO tam_d3 VALUES (1, 1);
SELECT * FROM tam_d3;
BEGIN;
CREATE TABLE tam_d4 (a int) USING nokv;
INSERT INTO tam_d4 VALUES (1), (2);
TRUNCATE tam_d4;
INSERT INTO tam_d4 VALUES (3);
SELECT * FROM tam_d4;
COMMIT;
SELECT * FROM tam_d4;
-- a rolled-back TRUNCATE keeps the rows
BEGIN;
TRUNCATE tam_d1;
SELECT count(*) FROM tam_d1;
ROLLBACK;
SELECT * FROM tam_d1 ORDER BY id;
-- a rolled-back CREATE leaves nothing
BEGIN;
CREATE TABLE tam_d5 (a int) USING nokv;
INSERT INTO tam_d5 VALUES (1);
ROLLBACK;
SELECT to_regclass('tam_d5');

-- ALTER TABLE SET ACCESS METHOD both ways, and rewrites
ALTER TABLE tam_d1 SET ACCESS METHOD heap;
SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE relname = 'tam_d1';
SELECT * FROM tam_d1 ORDER BY id;
ALTER TABLE tam_d1 SET ACCESS METHOD nokv;
SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE relname = 'tam_d1';
SELECT * FROM tam_d1 ORDER BY id;
ALTER TABLE tam_d1 ADD COLUMN n numeric DEFAULT 1.5;
ALTER TABLE tam_d1 ALTER COLUMN id TYPE bigint;
SELECT * FROM tam_d1 ORDER BY id;
INSERT INTO tam_d1 VALUES (1, 'dup');

-- partitions that are nokv tables, with row movement
CREATE TABLE tam_parted (k int, v text) PARTITION BY RANGE (k);
CREATE TABLE tam_part1 PARTITION OF tam_parted FOR VALUES FROM (0) TO (100) USING nokv;
CREATE TABLE tam_part2 PARTITION OF tam_parted FOR VALUES FROM (100) TO (200) USING nokv;
INSERT INTO tam_parted SELECT g, 'v' || g FROM generate_series(1, 199, 33) g;
SELECT tableoid::regclass, * FROM tam_parted ORDER BY k;
UPDATE tam_parted SET k = k + 100 WHERE k = 34;
SELECT tableoid::regclass, * FROM tam_parted ORDER BY k;

-- sizes: the planner sees virtual blocks of 291 row ids
CREATE TABLE tam_size (a int) USING nokv;
INSERT INTO tam_size SELECT generate_series(1, 1000);
SELECT pg_relation_size('tam_size') AS main_fork_bytes;
SELECT nokv_table_size('tam_size') >= 0 AS size_known;
SELECT nokv_table_size('tam_d3'::regclass) >= 0;
SELECT nokv_table_size('pg_class');

DROP TABLE tam_d1, tam_d2, tam_d4, tam_size;
DROP MATERIALIZED VIEW tam_mv;
DROP TABLE tam_d3;
DROP TABLE tam_parted;
