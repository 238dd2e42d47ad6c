-- The SQL key-value API: bytea and text, TTL, column families,
-- transactions, savepoints and large values.
CREATE EXTENSION IF NOT EXISTS nokv;

-- text round trip
SELECT nokv_put('apple', 'red');
SELECT nokv_get('apple');
SELECT nokv_get('missing') IS NULL AS missing_is_null;
SELECT nokv_put('apple', 'green');
SELECT nokv_get('apple');

-- bytea round trip, including zero bytes and the empty key and value
SELECT nokv_put('\x00ff00'::bytea, '\xdeadbeef'::bytea);
SELECT nokv_get('\x00ff00'::bytea);
SELECT nokv_put(''::bytea, ''::bytea);
SELECT nokv_get(''::bytea) = ''::bytea AS empty_value;
SELECT nokv_delete(''::bytea);

-- text and bytea name the same keys
SELECT nokv_get('apple'::bytea);
SELECT nokv_put('pear'::bytea, convert_to('yellow', 'UTF8'));
SELECT nokv_get('pear');

-- scans are ordered, bounded [start, stop), limited
SELECT count(nokv_put('k' || i, 'v' || i)) FROM generate_series(1, 9) i;
SELECT key, value FROM nokv_scan('k2', 'k5');
SELECT key, value FROM nokv_scan('k7', NULL);
SELECT key FROM nokv_scan('k', 'l', 3);
SELECT count(*) FROM nokv_scan(NULL::bytea, NULL);
SELECT count(*) FROM nokv_scan('k', 'l', 0);

-- delete reports whether there was a value
SELECT nokv_delete('k5');
SELECT nokv_delete('k5');
SELECT nokv_get('k5') IS NULL AS deleted;
SELECT key FROM nokv_scan('k4', 'k7');

-- column families are separate namespaces
SELECT nokv_put('shared', 'in default');
SELECT nokv_put('shared', 'in lock', cf => 'lock');
SELECT nokv_put('shared', 'in write', NULL, 'write');
SELECT nokv_get('shared'), nokv_get('shared', 'lock'), nokv_get('shared', cf => 'write');
SELECT key, value FROM nokv_scan(NULL::text, NULL, cf => 'lock');
SELECT nokv_delete('shared', 'lock');
SELECT nokv_get('shared', 'lock') IS NULL AS lock_gone, nokv_get('shared') AS default_kept;

-- TTL: expires_at is reported; an expired key is gone
SELECT nokv_put('session', 'token', interval '1 hour');
SELECT key, value, expires_at > now() + interval '59 minutes' AS about_an_hour
FROM nokv_scan('session', 'session~');
SELECT nokv_put('brief', 'x', interval '10 milliseconds');
SELECT pg_sleep(0.1);
SELECT nokv_get('brief') IS NULL AS expired;
SELECT count(*) FROM nokv_scan('brief', 'brief~');
-- a put without TTL clears the expiry
SELECT nokv_put('session', 'token2');
SELECT expires_at IS NULL AS no_expiry FROM nokv_scan('session', 'session~');

-- rollback undoes writes
BEGIN;
SELECT nokv_put('tx', 'inside');
SELECT nokv_get('tx');
SELECT nokv_delete('apple');
SELECT nokv_get('apple') IS NULL AS deleted_inside;
ROLLBACK;
SELECT nokv_get('tx') IS NULL AS rolled_back, nokv_get('apple') AS apple_back;

-- savepoints
BEGIN;
SELECT nokv_put('sp', 'one');
SAVEPOINT a;
SELECT nokv_put('sp', 'two');
SELECT nokv_put('sp_only_in_a', 'x');
SELECT nokv_get('sp');
ROLLBACK TO SAVEPOINT a;
SELECT nokv_get('sp'), nokv_get('sp_only_in_a') IS NULL AS gone;
SAVEPOINT b;
SELECT nokv_put('sp', 'three');
RELEASE SAVEPOINT b;
COMMIT;
SELECT nokv_get('sp');

-- a failed statement inside a transaction: its writes vanish with the subtransaction
BEGIN;
SELECT nokv_put('before_error', 'kept');
SAVEPOINT s;
SELECT nokv_put('in_error', 'lost'), 1/0;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT nokv_get('before_error'), nokv_get('in_error') IS NULL AS lost;

-- writes commit together with heap changes
CREATE TABLE heap_side (id int);
BEGIN;
INSERT INTO heap_side VALUES (1);
SELECT nokv_put('with_heap', '1');
COMMIT;
BEGIN;
INSERT INTO heap_side VALUES (2);
SELECT nokv_put('with_heap', '2');
ROLLBACK;
SELECT (SELECT max(id) FROM heap_side) AS heap, nokv_get('with_heap') AS nokv;

-- REPEATABLE READ keeps its snapshot for nokv reads too
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT nokv_get('apple');
SELECT nokv_put('rr_own', 'mine');
SELECT nokv_get('rr_own');
COMMIT;

-- large values (stored in the value log) round trip
SELECT nokv_put('big', repeat('x', 100000));
SELECT length(nokv_get('big')), md5(nokv_get('big')) = md5(repeat('x', 100000)) AS same;
SELECT nokv_put('bigbin', decode(repeat('00ff', 50000), 'hex'));
SELECT length(nokv_get('bigbin'::bytea));

-- many keys, then a flush: reads see the same data from SSTs
SELECT count(nokv_put('bulk' || lpad(i::text, 5, '0'), repeat('b', i % 300)))
FROM generate_series(1, 3000) i;
SELECT nokv_flush();
SELECT count(*), sum(length(value)) FROM nokv_scan('bulk', 'bulk~');
SELECT nokv_get('bulk00299') = repeat('b', 299) AS flushed_value;
SELECT nokv_compact();
SELECT count(*) FROM nokv_scan('bulk', 'bulk~');
SELECT nokv_get('apple'), nokv_get('sp'), nokv_get('\x00ff00'::bytea);

-- PREPARE TRANSACTION is refused once nokv data was written
BEGIN;
SELECT nokv_put('prepared', 'no');
PREPARE TRANSACTION 'nokv_tx';
SELECT nokv_get('prepared') IS NULL AS not_written;

