/* src/sql/20_fdw.sql: the nokv foreign data wrapper (src/fdw, docs/fdw.md) */

CREATE FUNCTION nokv_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME', 'nokv_fdw_handler'
LANGUAGE C STRICT;

CREATE FUNCTION nokv_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME', 'nokv_fdw_validator'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER nokv_fdw
  HANDLER nokv_fdw_handler
  VALIDATOR nokv_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER nokv_fdw IS
'foreign tables over the nokv key-value namespace (the keys of nokv_put/nokv_get)';
