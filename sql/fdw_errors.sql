--
-- fdw_errors: bad options, bad columns, bad values; each error with its
-- SQLSTATE
--
CREATE EXTENSION IF NOT EXISTS nokv;
\set VERBOSITY default

-- options: the server is the local engine and takes no connection options
CREATE SERVER fdw_err_bad FOREIGN DATA WRAPPER nokv_fdw OPTIONS (host 'localhost');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE SERVER fdw_err_bad FOREIGN DATA WRAPPER nokv_fdw OPTIONS (batch_size '0');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE SERVER fdw_err_srv FOREIGN DATA WRAPPER nokv_fdw OPTIONS (batch_size '10');
ALTER FOREIGN DATA WRAPPER nokv_fdw OPTIONS (ADD debug 'on');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE USER MAPPING FOR CURRENT_USER SERVER fdw_err_srv OPTIONS (user 'x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE bad (key text, value text) SERVER fdw_err_srv
  OPTIONS (column_family 'nope');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE bad (key text, value text) SERVER fdw_err_srv
  OPTIONS (namespace 'x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE bad (key text, value text) SERVER fdw_err_srv
  OPTIONS (batch_size 'many');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE bad (key text, value text) SERVER fdw_err_srv
  OPTIONS (key_prefix 'a', key_prefix 'b');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE bad (key text OPTIONS (column_name 'k'), value text) SERVER fdw_err_srv;
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- columns are checked when a table is first used
CREATE FOREIGN TABLE bad_col (key text, value text, extra int) SERVER fdw_err_srv;
SELECT * FROM bad_col;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
INSERT INTO bad_col (key, value) VALUES ('a', 'b');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE bad_key (key int, value text) SERVER fdw_err_srv;
SELECT * FROM bad_key;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE bad_value (key text, value int) SERVER fdw_err_srv;
SELECT * FROM bad_value;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE bad_ttl (key text, value text, expires_at timestamp) SERVER fdw_err_srv;
SELECT * FROM bad_ttl;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE no_value (key text) SERVER fdw_err_srv;
SELECT * FROM no_value;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a dropped column does not count
ALTER FOREIGN TABLE bad_col DROP COLUMN extra;
SELECT * FROM bad_col WHERE key = 'fe:none';

-- values
CREATE FOREIGN TABLE ke (key text COLLATE "C", value text, expires_at timestamptz)
  SERVER fdw_err_srv OPTIONS (key_prefix 'fe:');
INSERT INTO ke (key, value) VALUES (NULL, 'v');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
INSERT INTO ke (key, value) VALUES ('k', NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
INSERT INTO ke (key) VALUES ('k');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
INSERT INTO ke (key, value) VALUES (repeat('k', 70000), 'v');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
INSERT INTO ke (key, value) VALUES ('big', repeat('v', 3 * 1024 * 1024));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
INSERT INTO ke VALUES ('past', 'v', now() - interval '1 second');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
INSERT INTO ke VALUES ('inf', 'v', 'infinity');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
INSERT INTO ke VALUES ('k', 'v');
UPDATE ke SET value = NULL WHERE key = 'k';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
UPDATE ke SET key = NULL WHERE key = 'k';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a key longer than any stored key finds nothing, in any condition
SELECT count(*) FROM ke WHERE key = repeat('k', 70000);
SELECT count(*) FROM ke WHERE key > repeat('k', 70000);
-- ON CONFLICT DO UPDATE is refused
INSERT INTO ke VALUES ('k', 'v') ON CONFLICT (key) DO UPDATE SET value = 'w';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
INSERT INTO ke VALUES ('k', 'v') ON CONFLICT DO UPDATE SET value = 'w';
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- bytes that are not text in the database encoding, read as text (22021)
SELECT nokv_put('fe:bin'::bytea, '\xff00'::bytea);
SELECT * FROM ke WHERE key = 'bin';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT nokv_put('\x66653ac3'::bytea, 'v'::bytea);
SELECT key FROM ke WHERE key > 'o';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT nokv_delete('\x66653ac3'::bytea);
-- read as bytea they are fine
CREATE FOREIGN TABLE ke_bytes (key bytea, value bytea) SERVER fdw_err_srv
  OPTIONS (key_prefix 'fe:');
SELECT * FROM ke_bytes WHERE key = 'bin'::bytea;
-- text that is not json, read as jsonb (22P02), never garbage
CREATE FOREIGN TABLE ke_json (key text, value jsonb) SERVER fdw_err_srv
  OPTIONS (key_prefix 'fe:');
SELECT nokv_put('fe:notjson', '{"a": ');
SELECT * FROM ke_json WHERE key = 'notjson';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM ke_json WHERE key = 'bin';
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- SERIALIZABLE and read-only transactions are refused like the SQL functions'
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT * FROM ke WHERE key = 'k';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN READ ONLY;
INSERT INTO ke VALUES ('ro', 'v');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;

-- the keys this suite wrote
SELECT key FROM ke_bytes;
TRUNCATE ke;
DROP FOREIGN TABLE bad_col, bad_key, bad_value, bad_ttl, no_value, ke, ke_bytes, ke_json;
DROP SERVER fdw_err_srv;
