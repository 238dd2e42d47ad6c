/* sql/nokv--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION nokv" to load this file. \quit

CREATE FUNCTION nokv_engine_version()
RETURNS text
AS 'MODULE_PATHNAME', 'nokv_engine_version'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION nokv_engine_version() IS
'version of the nokv engine core built into the extension module';
