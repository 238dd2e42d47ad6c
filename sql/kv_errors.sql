-- Bad input to the key-value API: each error with its SQLSTATE.
CREATE EXTENSION IF NOT EXISTS nokv;
\set VERBOSITY sqlstate

-- NULL keys and values (22004)
SELECT nokv_put(NULL::text, 'v');
SELECT nokv_put('k', NULL::text);
SELECT nokv_get(NULL::text);
SELECT nokv_delete(NULL::bytea);
SELECT nokv_put('k', 'v', NULL, NULL);

-- unknown column family (22023)
SELECT nokv_put('k', 'v', cf => 'nope');
SELECT nokv_get('k', 'nope');
SELECT * FROM nokv_scan('a', 'b', cf => 'nope');

-- zero and negative TTLs (22023)
SELECT nokv_put('k', 'v', interval '0 seconds');
SELECT nokv_put('k', 'v', interval '-1 hour');

-- an expiry beyond the timestamptz range (22008); a sub-millisecond ttl is rounded up, not refused
SELECT nokv_put('k', 'v', interval '1000000 years');
SELECT nokv_put('k', 'v', interval '178000000 years');
SELECT nokv_put('tiny_ttl', 'v', interval '1 microsecond');
SELECT nokv_delete('tiny_ttl'::text) IS NOT NULL AS handled;

-- oversized keys and values (54000)
SELECT nokv_put(repeat('k', 70000), 'v');
SELECT nokv_get(repeat('k', 70000));
SELECT nokv_put('k', repeat('v', 3 * 1024 * 1024));

-- negative scan limit (2201W)
SELECT * FROM nokv_scan('a', 'b', -1);

-- wrong types are refused by the parser (42883)
SELECT nokv_put(1, 2);
SELECT nokv_get(42);

-- a value written as bytea that is not valid text (22021)
SELECT nokv_put('notutf8'::bytea, '\xff'::bytea);
SELECT nokv_get('notutf8');
SELECT nokv_get('notutf8'::bytea);

-- bad GC ratio (22023)
SELECT nokv_vlog_gc(0);
SELECT nokv_vlog_gc(1.5);

-- SERIALIZABLE is refused, not silently downgraded (0A000)
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT nokv_get('k');
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT nokv_put('k', 'v');
ROLLBACK;

-- writes in a read-only transaction (25006)
BEGIN READ ONLY;
SELECT nokv_put('k', 'v');
ROLLBACK;

-- nothing above was written but the one invalid-text value
SELECT nokv_get('k') IS NULL AS nothing_written;
SELECT nokv_delete('notutf8'::bytea);
