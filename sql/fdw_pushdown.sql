--
-- fdw_pushdown: which key conditions nokv_fdw pushes down, and the plans
--
-- Keys carry the prefix 'fp:' (key_prefix), so only this suite's keys show.
CREATE EXTENSION IF NOT EXISTS nokv;
CREATE SERVER fdw_push_srv FOREIGN DATA WRAPPER nokv_fdw;
-- byte-ordered keys: COLLATE "C"
CREATE FOREIGN TABLE kc (key text COLLATE "C", value text) SERVER fdw_push_srv
  OPTIONS (key_prefix 'fp:');
-- the same keys under the database's default collation
CREATE FOREIGN TABLE kd (key text, value text) SERVER fdw_push_srv
  OPTIONS (key_prefix 'fp:');
CREATE FOREIGN TABLE kb (key bytea, value bytea) SERVER fdw_push_srv
  OPTIONS (key_prefix 'fp:');
INSERT INTO kc SELECT 'k' || lpad(i::text, 3, '0'), 'v' || i FROM generate_series(1, 500) i;
INSERT INTO kc VALUES ('x%y', 'percent'), ('x_y', 'underscore'), ('xay', 'plain');

-- full scan: rows in key order, ORDER BY key needs no Sort
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM kc ORDER BY key LIMIT 3;
SELECT * FROM kc ORDER BY key LIMIT 3;
-- descending order is sorted by the planner
EXPLAIN (COSTS OFF) SELECT * FROM kc ORDER BY key DESC LIMIT 3;
SELECT * FROM kc ORDER BY key DESC LIMIT 3;

-- point lookup: a constant, a parameter, a stable expression
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM kc WHERE key = 'k042';
SELECT * FROM kc WHERE key = 'k042';
SELECT * FROM kc WHERE 'k043' = key;
SELECT * FROM kc WHERE key = 'nope';
PREPARE pt(text) AS SELECT * FROM kc WHERE key = $1;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE pt('k007');
EXECUTE pt('k007');
EXECUTE pt(NULL);
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM kc WHERE key = lower('K044');
SELECT * FROM kc WHERE key = lower('K044');
-- a volatile expression is not pushed
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM kc WHERE key = 'k00' || (random() * 0)::int::text;
-- equality is pushed under the default collation too (it is deterministic)
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM kd WHERE key = 'k042';

-- IN lists and = ANY: several points, returned in key order without duplicates
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM kc WHERE key IN ('k300', 'k002', 'zzz', 'k002');
SELECT * FROM kc WHERE key IN ('k300', 'k002', 'zzz', 'k002');
SELECT * FROM kc WHERE key = ANY (ARRAY['k010', NULL, 'k009']);
PREPARE pa(text[]) AS SELECT key FROM kc WHERE key = ANY ($1);
EXECUTE pa(ARRAY['k499', 'k001']);
EXECUTE pa(NULL);
-- an equality beats a range; the range is then checked locally
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM kc WHERE key >= 'k100' AND key = 'k200';
SELECT * FROM kc WHERE key >= 'k300' AND key = 'k200';

-- ranges under COLLATE "C": pushed, in key order
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM kc WHERE key > 'k100' AND key <= 'k103';
SELECT * FROM kc WHERE key > 'k100' AND key <= 'k103';
SELECT * FROM kc WHERE key >= 'k100' AND key < 'k103';
SELECT key FROM kc WHERE key BETWEEN 'k497' AND 'k600';
SELECT key FROM kc WHERE 'k003' > key;
SELECT key FROM kc WHERE key > 'k9';
SELECT key FROM kc WHERE key > 'k200' AND key < 'k100';
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM kc WHERE key BETWEEN 'k100' AND 'k105' ORDER BY key;
-- a range with an explicit C collation on a default-collation column is pushed
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM kd WHERE key < 'k002' COLLATE "C";
SELECT * FROM kd WHERE key < 'k002' COLLATE "C";
-- the collation guard: under the default collation ranges are NOT pushed
-- (its order is not byte order), and ORDER BY key needs a Sort
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM kd WHERE key > 'k100' AND key <= 'k103' ORDER BY key;
SELECT * FROM kd WHERE key > 'k100' AND key <= 'k103' ORDER BY key;

-- LIKE 'prefix%' and ^@ (starts_with): the prefix's range, rechecked
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM kc WHERE key LIKE 'k49%';
SELECT * FROM kc WHERE key LIKE 'k49%';
SELECT * FROM kc WHERE key LIKE 'k49_';
SELECT * FROM kc WHERE key LIKE 'x\%%';
SELECT * FROM kc WHERE key LIKE 'x_y';
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM kd WHERE key ^@ 'k12';
SELECT * FROM kd WHERE key ^@ 'k12' ORDER BY key;
-- a pattern without a fixed prefix is not pushed
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM kc WHERE key LIKE '%9';
-- bytea keys: ranges and LIKE are pushed
EXPLAIN (VERBOSE, COSTS OFF) SELECT key FROM kb WHERE key >= 'k498'::bytea;
SELECT key FROM kb WHERE key >= 'k498'::bytea;
EXPLAIN (VERBOSE, COSTS OFF) SELECT key FROM kb WHERE key LIKE 'k00%'::bytea;
SELECT convert_from(key, 'UTF8') FROM kb WHERE key LIKE 'k00%'::bytea;

-- parameterized paths: a nested loop does one lookup per outer row
CREATE TABLE wanted (id text, note text);
INSERT INTO wanted VALUES ('k005', 'five'), ('k250', 'two-fifty'), ('missing', 'none');
ANALYZE wanted;
SET enable_hashjoin = off;
SET enable_mergejoin = off;
EXPLAIN (VERBOSE, COSTS OFF) SELECT w.note, kd.value FROM wanted w JOIN kd ON kd.key = w.id;
SELECT w.note, kd.value FROM wanted w JOIN kd ON kd.key = w.id ORDER BY w.note;
EXPLAIN (VERBOSE, COSTS OFF) SELECT w.note, kd.value FROM wanted w LEFT JOIN kd ON kd.key = w.id;
SELECT w.note, kd.value FROM wanted w LEFT JOIN kd ON kd.key = w.id ORDER BY w.note;
-- a lateral reference is a parameter too
SELECT w.id, k.value FROM wanted w, LATERAL (SELECT value FROM kc WHERE kc.key = w.id) k
ORDER BY w.id;
RESET enable_hashjoin;
RESET enable_mergejoin;
-- a subquery's result as the key
SELECT * FROM kc WHERE key = (SELECT min(id) FROM wanted);

-- estimates come from the engine's statistics, not a constant
CREATE FUNCTION plan_rows(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN ' || q LOOP
    RETURN (regexp_match(line, 'rows=(\d+)'))[1]::int;
  END LOOP;
END $$;
SELECT nokv_flush();
SELECT plan_rows('SELECT * FROM kc') >= 503 AS full_scan_counts_the_keys,
       plan_rows('SELECT * FROM kc WHERE key = ''k001''') AS point,
       plan_rows('SELECT * FROM kc WHERE key IN (''a'', ''b'', ''c'')') AS in_list;

TRUNCATE kc;
SELECT count(*) FROM kd;
DROP FUNCTION plan_rows(text);
DROP TABLE wanted;
DROP FOREIGN TABLE kc, kd, kb;
DROP SERVER fdw_push_srv;
