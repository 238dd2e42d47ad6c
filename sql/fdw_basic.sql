--
-- fdw_basic: foreign tables over the key-value namespace (nokv_fdw)
--
-- Every table of this suite uses key_prefix 'fb:' so that it sees only its
-- own keys of the shared namespace.
CREATE EXTENSION IF NOT EXISTS nokv;

SELECT fdwname, fdwhandler::regproc, fdwvalidator::regproc
FROM pg_foreign_data_wrapper WHERE fdwname = 'nokv_fdw';

CREATE SERVER fdw_basic_srv FOREIGN DATA WRAPPER nokv_fdw;
CREATE FOREIGN TABLE kv_text (key text COLLATE "C", value text, expires_at timestamptz)
  SERVER fdw_basic_srv OPTIONS (key_prefix 'fb:');

-- an empty table
SELECT * FROM kv_text;

-- written through the FDW, read through the SQL functions
INSERT INTO kv_text (key, value) VALUES ('b', 'two'), ('a', 'one'), ('c', 'three');
SELECT nokv_get('fb:a') AS a, nokv_get('fb:b') AS b, nokv_get('fb:c') AS c;
SELECT key, value FROM nokv_scan('fb:', 'fb;');

-- written through the SQL functions, read through the FDW, in key order
SELECT nokv_put('fb:d', 'four');
SELECT nokv_put('fb:' || i, 'n' || i) FROM generate_series(1, 3) i;
SELECT key, value, expires_at IS NULL AS no_ttl FROM kv_text;

-- the key order is byte order: uppercase before lowercase, 'a' before 'a0'
SELECT nokv_put('fb:A', 'upper');
SELECT nokv_put('fb:a0', 'longer');
SELECT key FROM kv_text;

-- deleted through the SQL functions: gone from the table
SELECT nokv_delete('fb:A');
SELECT nokv_delete('fb:a0');
SELECT count(*) FROM kv_text;

-- a TTL set by nokv_put shows as expires_at
SELECT nokv_put('fb:ttl', 'soon', interval '1 hour');
SELECT key, expires_at > now() AND expires_at <= now() + interval '1 hour 1 minute' AS ttl_ok
FROM kv_text WHERE key = 'ttl';
SELECT nokv_delete('fb:ttl');

-- a table without expires_at; a table over another column family
CREATE FOREIGN TABLE kv_short (key text, value text) SERVER fdw_basic_srv
  OPTIONS (key_prefix 'fb:');
SELECT * FROM kv_short WHERE key = 'a';
CREATE FOREIGN TABLE kv_lock (key text, value text) SERVER fdw_basic_srv
  OPTIONS (column_family 'lock', key_prefix 'fb:');
INSERT INTO kv_lock VALUES ('a', 'in lock');
SELECT nokv_get('fb:a', 'lock') AS lock_cf, nokv_get('fb:a') AS default_cf;
SELECT * FROM kv_lock;
DELETE FROM kv_lock;

-- bytea keys and values
CREATE FOREIGN TABLE kv_bytes (key bytea, value bytea) SERVER fdw_basic_srv
  OPTIONS (key_prefix 'fb:');
INSERT INTO kv_bytes VALUES ('\x00ff'::bytea, '\xdeadbeef'::bytea);
SELECT * FROM kv_bytes WHERE key = '\x00ff'::bytea;
SELECT nokv_get('\x66623a00ff'::bytea) AS through_sql;
SELECT key FROM kv_bytes WHERE key < '\x01'::bytea;
DELETE FROM kv_bytes WHERE key = '\x00ff'::bytea;

-- jsonb values are stored as their text
CREATE FOREIGN TABLE kv_json (key text, value jsonb) SERVER fdw_basic_srv
  OPTIONS (key_prefix 'fb:json:');
INSERT INTO kv_json VALUES ('doc', '{"b": [1, 2], "a": {"x": null}}');
SELECT nokv_get('fb:json:doc');
SELECT nokv_put('fb:json:other', '{"n": 42}');
SELECT key, value, value -> 'n' AS n FROM kv_json;
SELECT value ->> 'n' FROM kv_json WHERE key = 'other';
DELETE FROM kv_json;

-- DELETE without a WHERE clause empties the table
SELECT count(*) FROM kv_text;
DELETE FROM kv_text;
SELECT count(*) FROM kv_text;

DROP FOREIGN TABLE kv_text, kv_short, kv_lock, kv_bytes, kv_json;
DROP SERVER fdw_basic_srv;
