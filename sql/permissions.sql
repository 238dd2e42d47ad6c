-- Operations need superuser or nokv_admin; views need pg_monitor.
CREATE EXTENSION IF NOT EXISTS nokv;
\set VERBOSITY sqlstate

CREATE ROLE nokv_plain LOGIN;
CREATE ROLE nokv_monitor LOGIN IN ROLE pg_monitor;
CREATE ROLE nokv_operator LOGIN IN ROLE nokv_admin;

SET ROLE nokv_plain;
SELECT nokv_put('perm', 'ok');
SELECT nokv_get('perm');
SELECT nokv_flush();
SELECT nokv_compact();
SELECT nokv_vlog_gc();
SELECT count(*) FROM nokv_stats;
SELECT count(*) FROM nokv_workers;
RESET ROLE;

SET ROLE nokv_monitor;
SELECT count(*) > 0 AS sees_stats FROM nokv_stats;
SELECT count(*) AS levels FROM nokv_levels;
SELECT nokv_flush();
RESET ROLE;

SET ROLE nokv_operator;
SELECT nokv_flush();
SELECT nokv_compact('\x00'::bytea, '\xff'::bytea);
SELECT nokv_vlog_gc(0.9) >= 0 AS ran;
RESET ROLE;

SELECT has_function_privilege('public', 'nokv_flush()', 'EXECUTE') AS public_can_flush;
SELECT rolname FROM pg_roles WHERE rolname = 'nokv_admin';

-- a second CREATE EXTENSION (other database) must not fail on the existing role
DROP EXTENSION nokv;
CREATE EXTENSION nokv;
SELECT nokv_get('perm');

DROP ROLE nokv_plain, nokv_monitor, nokv_operator;
