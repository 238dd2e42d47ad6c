--
-- nokv table access method: indexes
--
\set VERBOSITY terse
CREATE TABLE tam_i (id int PRIMARY KEY, code text UNIQUE, grp int, v text) USING nokv;
INSERT INTO tam_i SELECT g, 'c' || g, g % 10, md5(g::text) FROM generate_series(1, 2000) g;
CREATE INDEX tam_i_grp ON tam_i (grp);
CREATE INDEX tam_i_hash ON tam_i USING hash (v);
CREATE INDEX tam_i_partial ON tam_i (id) WHERE grp = 3;
CREATE INDEX tam_i_expr ON tam_i (lower(code));
ANALYZE tam_i;

SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM tam_i WHERE id = 42;
SELECT * FROM tam_i WHERE id = 42;
EXPLAIN (COSTS OFF) SELECT id FROM tam_i WHERE code = 'c77';
SELECT id FROM tam_i WHERE code = 'c77';
EXPLAIN (COSTS OFF) SELECT id FROM tam_i WHERE v = md5('5');
SELECT id FROM tam_i WHERE v = md5('5');
EXPLAIN (COSTS OFF) SELECT count(*) FROM tam_i WHERE grp = 3 AND id < 100;
SELECT count(*) FROM tam_i WHERE grp = 3 AND id < 100;
EXPLAIN (COSTS OFF) SELECT id FROM tam_i WHERE lower(code) = 'c1999';
SELECT id FROM tam_i WHERE lower(code) = 'c1999';

-- index-only scans are correct (no visibility map: every row is checked)
EXPLAIN (COSTS OFF) SELECT id FROM tam_i WHERE id BETWEEN 10 AND 14 ORDER BY id;
SELECT id FROM tam_i WHERE id BETWEEN 10 AND 14 ORDER BY id;
DELETE FROM tam_i WHERE id = 12;
UPDATE tam_i SET id = 1012 WHERE id = 13;
UPDATE tam_i SET id = 5013 WHERE id = 13;
SELECT id FROM tam_i WHERE id BETWEEN 10 AND 14 ORDER BY id;
SELECT id FROM tam_i WHERE id > 1010 AND id < 1014 ORDER BY id;

-- bitmap heap scans, BitmapAnd and BitmapOr
SET enable_indexscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM tam_i WHERE grp = 1 OR grp = 2;
SELECT count(*) FROM tam_i WHERE grp = 1 OR grp = 2;
EXPLAIN (COSTS OFF) SELECT count(*) FROM tam_i WHERE grp = 1 AND id < 500;
SELECT count(*) FROM tam_i WHERE grp = 1 AND id < 500;
RESET enable_indexscan;

-- GIN and BRIN (bitmap-only index methods)
CREATE TABLE tam_docs (id int, tags text[], ts int) USING nokv;
INSERT INTO tam_docs SELECT g, ARRAY['t' || (g % 7), 'u' || (g % 3)], g FROM generate_series(1, 3000) g;
CREATE INDEX tam_docs_gin ON tam_docs USING gin (tags);
CREATE INDEX tam_docs_brin ON tam_docs USING brin (ts) WITH (pages_per_range = 1);
EXPLAIN (COSTS OFF) SELECT count(*) FROM tam_docs WHERE tags @> ARRAY['t3'];
SELECT count(*) FROM tam_docs WHERE tags @> ARRAY['t3'];
EXPLAIN (COSTS OFF) SELECT count(*) FROM tam_docs WHERE ts BETWEEN 100 AND 200;
SELECT count(*) FROM tam_docs WHERE ts BETWEEN 100 AND 200;
RESET enable_seqscan;

-- unique checks see committed and own rows, not dead ones
INSERT INTO tam_i VALUES (42, 'dup', 0, '');
INSERT INTO tam_i VALUES (5000, 'c77', 0, '');
BEGIN;
DELETE FROM tam_i WHERE id = 42;
INSERT INTO tam_i VALUES (42, 'c42-again', 0, 'new');
SELECT id, code FROM tam_i WHERE id = 42;
ROLLBACK;
SELECT id, code FROM tam_i WHERE id = 42;
UPDATE tam_i SET code = 'c43' WHERE id = 42;

-- CREATE INDEX on a populated table, REINDEX, concurrent builds
CREATE UNIQUE INDEX tam_i_v ON tam_i (v);
CREATE UNIQUE INDEX tam_i_grp_u ON tam_i (grp);
REINDEX TABLE tam_i;
REINDEX INDEX tam_i_grp;
CREATE INDEX CONCURRENTLY tam_i_cc ON tam_i (grp, id);
REINDEX INDEX CONCURRENTLY tam_i_cc;
SET enable_seqscan = off;
SELECT count(*) FROM tam_i WHERE grp = 4 AND id > 1000;
RESET enable_seqscan;
SELECT count(*) FROM tam_i WHERE grp = 4 AND id > 1000;
SELECT indexrelid::regclass, indisvalid FROM pg_index WHERE indrelid = 'tam_i'::regclass ORDER BY indexrelid::regclass::text;

DROP TABLE tam_i, tam_docs;

-- index fetches step through nearby row ids with an engine iterator over a
-- window of them; rows updated (moved to new row ids far above) and rows
-- whose row ids go backwards in index order must all be found, and every
-- fetch that found nothing must have been dead
CREATE TABLE tam_win (id int PRIMARY KEY, k int NOT NULL, v text) USING nokv;
CREATE INDEX tam_win_k ON tam_win (k);
INSERT INTO tam_win SELECT g, (g * 7919) % 3000, 'v' || g FROM generate_series(1, 3000) g;
UPDATE tam_win SET v = v || '+' WHERE id % 3 = 0;
DELETE FROM tam_win WHERE id % 11 = 0;
INSERT INTO tam_win SELECT g, (g * 7919) % 3000, 'w' || g FROM generate_series(3001, 30000) g;
UPDATE tam_win SET v = v || '*' WHERE id % 7 = 0 AND id < 3000;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*), sum(id) FROM tam_win WHERE id BETWEEN 1 AND 3000;
SELECT count(*), sum(id), count(*) FILTER (WHERE v LIKE '%+%') FROM tam_win WHERE id BETWEEN 1 AND 3000;
SELECT count(*), sum(id) FROM tam_win WHERE k < 1500;
SELECT count(*), sum(id) FROM tam_win WHERE id BETWEEN 1 AND 3000;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT count(*), sum(id), count(*) FILTER (WHERE v LIKE '%+%') FROM tam_win WHERE id BETWEEN 1 AND 3000;
SELECT count(*), sum(id) FROM tam_win WHERE k < 1500;
DROP TABLE tam_win;
