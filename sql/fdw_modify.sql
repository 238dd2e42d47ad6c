--
-- fdw_modify: INSERT, UPDATE, DELETE, batch insert and TRUNCATE through
-- nokv_fdw, transactional like the SQL functions
--
CREATE EXTENSION IF NOT EXISTS nokv;
CREATE SERVER fdw_mod_srv FOREIGN DATA WRAPPER nokv_fdw;
CREATE FOREIGN TABLE km (key text COLLATE "C", value text, expires_at timestamptz)
  SERVER fdw_mod_srv OPTIONS (key_prefix 'fm:');

-- INSERT ... RETURNING
INSERT INTO km (key, value) VALUES ('a', 'one'), ('b', 'two') RETURNING key, value, expires_at;
-- a duplicate key is a unique violation, like a primary key
\set VERBOSITY default
INSERT INTO km (key, value) VALUES ('a', 'again');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- also within one statement
INSERT INTO km (key, value) VALUES ('c', 'x'), ('c', 'y');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT key, value FROM km;
-- ON CONFLICT DO NOTHING skips existing keys
INSERT INTO km (key, value) VALUES ('a', 'skipped'), ('c', 'three') ON CONFLICT DO NOTHING
RETURNING key, value;
SELECT key, value FROM km;

-- UPDATE of the value; of the key (delete + insert)
UPDATE km SET value = value || '!' WHERE key = 'a' RETURNING key, value;
UPDATE km SET key = 'd' WHERE key = 'c' RETURNING key, value;
SELECT nokv_get('fm:c') IS NULL AS old_key_gone, nokv_get('fm:d') AS new_key;
-- onto an existing key: unique violation
UPDATE km SET key = 'a' WHERE key = 'b';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- UPDATE over a range, and of nothing
UPDATE km SET value = upper(value) WHERE key >= 'b' RETURNING key, value;
UPDATE km SET value = 'none' WHERE key = 'zzz';
SELECT key, value FROM km;

-- DELETE ... RETURNING
DELETE FROM km WHERE key = 'd' RETURNING key, value;
DELETE FROM km WHERE key = 'd';
SELECT key, value FROM km;

-- expires_at: written as the key's TTL; NULL means none
INSERT INTO km VALUES ('t', 'ttl', now() + interval '1 day');
SELECT key, expires_at > now() + interval '23 hours' AS expires_tomorrow FROM km WHERE key = 't';
UPDATE km SET expires_at = NULL WHERE key = 't';
SELECT key, expires_at FROM km WHERE key = 't';
-- updating only expires_at keeps the value
UPDATE km SET expires_at = now() + interval '1 hour' WHERE key = 't' RETURNING key, value;
SELECT nokv_get('fm:t');
-- a key whose expiry has passed reads as absent and may be inserted again
SELECT nokv_put('fm:gone', 'short', interval '1 millisecond');
SELECT pg_sleep(0.01);
SELECT count(*) FROM km WHERE key = 'gone';
INSERT INTO km (key, value) VALUES ('gone', 'back') RETURNING key, value;

-- transactions: ROLLBACK undoes FDW writes
BEGIN;
INSERT INTO km (key, value) VALUES ('r1', 'rolled back');
UPDATE km SET value = 'changed' WHERE key = 'a';
DELETE FROM km WHERE key = 'b';
SELECT key, value FROM km WHERE key IN ('a', 'b', 'r1');
ROLLBACK;
SELECT key, value FROM km WHERE key IN ('a', 'b', 'r1');
-- savepoints
BEGIN;
INSERT INTO km (key, value) VALUES ('s1', 'kept');
SAVEPOINT sp;
INSERT INTO km (key, value) VALUES ('s2', 'undone');
DELETE FROM km WHERE key = 'a';
ROLLBACK TO SAVEPOINT sp;
INSERT INTO km (key, value) VALUES ('s3', 'kept too');
COMMIT;
SELECT key, value FROM km WHERE key ^@ 's' OR key = 'a';
-- a failed statement inside a savepoint leaves the rest of the transaction
BEGIN;
SAVEPOINT sp;
INSERT INTO km (key, value) VALUES ('s4', 'x'), ('s1', 'duplicate');
ROLLBACK TO SAVEPOINT sp;
SELECT count(*) FROM km WHERE key = 's4';
COMMIT;
-- FDW and SQL functions in one transaction see each other's writes
BEGIN;
SELECT nokv_put('fm:mixed', 'from sql');
UPDATE km SET value = 'from fdw' WHERE key = 'mixed' RETURNING key, value;
SELECT nokv_get('fm:mixed');
ROLLBACK;
SELECT nokv_get('fm:mixed') IS NULL AS rolled_back;

-- batch insert (batch_size option); COPY goes through the same path
CREATE FOREIGN TABLE kbatch (key text COLLATE "C", value text) SERVER fdw_mod_srv
  OPTIONS (key_prefix 'fm:batch:', batch_size '50');
INSERT INTO kbatch SELECT 'b' || lpad(i::text, 4, '0'), 'v' || i FROM generate_series(1, 1000) i;
SELECT count(*), min(key), max(key) FROM kbatch;
INSERT INTO kbatch SELECT 'b' || lpad(i::text, 4, '0'), 'again' FROM generate_series(990, 1010) i
  ON CONFLICT DO NOTHING;
SELECT count(*) FROM kbatch WHERE value = 'again';
INSERT INTO kbatch SELECT 'c' || i, 'v' FROM generate_series(1, 100) i UNION ALL SELECT 'b0001', 'dup';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM kbatch WHERE key ^@ 'c';
ALTER FOREIGN TABLE kbatch OPTIONS (SET batch_size '7');
COPY kbatch FROM stdin;
copy1	first
copy2	second
\.
SELECT * FROM kbatch WHERE key ^@ 'copy';

-- TRUNCATE deletes every live key the table covers, and rolls back
BEGIN;
TRUNCATE kbatch;
SELECT count(*) FROM kbatch;
ROLLBACK;
SELECT count(*) FROM kbatch;
TRUNCATE kbatch;
SELECT count(*) FROM kbatch;
-- km (prefix 'fm:') still has its keys outside 'fm:batch:'
SELECT count(*) > 0 AS km_keys_left FROM km;
TRUNCATE km;
SELECT count(*) FROM km;
SELECT count(*) FROM nokv_scan('fm:', 'fm;');

DROP FOREIGN TABLE km, kbatch;
DROP SERVER fdw_mod_srv;
