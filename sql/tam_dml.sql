--
-- nokv table access method: rows in and out
--
\set VERBOSITY terse
CREATE TABLE tam_m (id int PRIMARY KEY, v text, n numeric) USING nokv;
INSERT INTO tam_m VALUES (1, 'a', 1.5) RETURNING *;
INSERT INTO tam_m VALUES (2, 'b', 2), (3, 'c', 3), (4, NULL, NULL) RETURNING id, ctid;
UPDATE tam_m SET v = v || '!' WHERE id IN (1, 2) RETURNING id, v, ctid;
DELETE FROM tam_m WHERE id = 3 RETURNING *;
SELECT ctid, * FROM tam_m ORDER BY id;
-- a new version gets a new ctid; the old one is gone for new snapshots
SELECT count(*) FROM tam_m WHERE ctid = '(0,1)';
UPDATE tam_m SET n = n + 1;
SELECT id, n FROM tam_m ORDER BY id;

-- system columns
SELECT tableoid::regclass, xmin = pg_current_xact_id()::xid AS mine FROM tam_m WHERE id = 1;
BEGIN;
INSERT INTO tam_m VALUES (10, 'x', 0);
SELECT xmin = pg_current_xact_id()::xid AS mine FROM tam_m WHERE id = 10;
COMMIT;

-- COPY in and out (multi_insert)
CREATE TABLE tam_copy (a int, b text, c float8) USING nokv;
COPY tam_copy FROM stdin;
1	one	1.5
2	two	2.5
3	\N	3.5
\.
COPY tam_copy TO stdout;
INSERT INTO tam_copy SELECT g, md5(g::text), g / 3.0 FROM generate_series(4, 5000) g;
SELECT count(*), sum(a), count(b), round(sum(c)) FROM tam_copy;
COPY (SELECT * FROM tam_copy WHERE a < 3 ORDER BY a) TO stdout;

-- wide rows and large values (value log, no TOAST)
CREATE TABLE tam_wide (id int, big text, bin bytea) USING nokv;
INSERT INTO tam_wide VALUES (1, repeat('nokv', 100000), decode(repeat('00ff', 5000), 'hex'));
INSERT INTO tam_wide SELECT g, repeat(chr(65 + g % 26), 3000 + g), NULL FROM generate_series(2, 50) g;
SELECT id, length(big), md5(big), length(bin) FROM tam_wide WHERE id IN (1, 2, 50) ORDER BY id;
UPDATE tam_wide SET big = big || 'x' WHERE id = 1;
SELECT length(big) FROM tam_wide WHERE id = 1;
-- values arriving as TOAST pointers from a heap table
CREATE TABLE tam_heapsrc (id int, big text);
ALTER TABLE tam_heapsrc ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO tam_heapsrc VALUES (1, repeat('toast', 20000));
INSERT INTO tam_wide SELECT 100, big, NULL FROM tam_heapsrc;
DROP TABLE tam_heapsrc;
SELECT length(big), md5(big) = md5(repeat('toast', 20000)) AS same FROM tam_wide WHERE id = 100;
-- a row too large for the engine
INSERT INTO tam_wide VALUES (999, repeat('x', 1), decode(repeat('ab', 3000000), 'hex'));

-- many columns, all kinds of types
CREATE TABLE tam_types (i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, nm numeric, b bool,
    t text, vc varchar(10), ch char(3), by bytea, d date, ts timestamptz, iv interval,
    u uuid, j jsonb, arr int[], js json, pt point) USING nokv;
INSERT INTO tam_types VALUES (1, 2, 3, 4.5, 6.5, 7.25, true, 'text', 'vc', 'ch', '\x0102',
    '2026-01-02', '2026-01-02 03:04:05+00', '1 day', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    '{"a": [1, 2]}', ARRAY[1, 2, 3], '{"b": 1}', '(1,2)');
INSERT INTO tam_types (i4) VALUES (NULL);
SELECT * FROM tam_types ORDER BY i4 NULLS LAST;

-- backward scans through a cursor
BEGIN;
DECLARE cur SCROLL CURSOR FOR SELECT id FROM tam_m;
FETCH 2 FROM cur;
FETCH BACKWARD 1 FROM cur;
FETCH LAST FROM cur;
FETCH BACKWARD 2 FROM cur;
FETCH ABSOLUTE 1 FROM cur;
COMMIT;

-- TID scans and TID range scans
CREATE TABLE tam_tid (a int) USING nokv;
INSERT INTO tam_tid SELECT generate_series(1, 700);
EXPLAIN (COSTS OFF) SELECT a FROM tam_tid WHERE ctid = '(1,1)';
SELECT a FROM tam_tid WHERE ctid = '(1,1)';
SELECT a FROM tam_tid WHERE ctid = '(0,0)';
SELECT a FROM tam_tid WHERE ctid = '(0,292)';
SELECT a FROM tam_tid WHERE ctid = '(99,1)';
EXPLAIN (COSTS OFF) SELECT count(*) FROM tam_tid WHERE ctid >= '(1,0)' AND ctid < '(2,0)';
SELECT count(*), min(a), max(a) FROM tam_tid WHERE ctid >= '(1,0)' AND ctid < '(2,0)';
SELECT count(*) FROM tam_tid WHERE ctid > '(2,100)';
SELECT count(*) FROM tam_tid WHERE ctid < '(0,5)';
SELECT count(*) FROM tam_tid WHERE ctid > '(5,0)';
SELECT count(*) FROM tam_tid WHERE ctid >= '(1,500)' AND ctid <= '(1,0)';
SELECT currtid2('tam_tid', '(0,1)');

DROP TABLE tam_m, tam_copy, tam_wide, tam_types, tam_tid;
