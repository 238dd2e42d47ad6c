
-- ---------------------------------------------------------------------
-- The table access method: CREATE TABLE ... USING nokv
-- ---------------------------------------------------------------------

CREATE FUNCTION nokv_tableam_handler(internal)
RETURNS table_am_handler
AS 'MODULE_PATHNAME', 'nokv_tableam_handler'
LANGUAGE C STRICT;

CREATE ACCESS METHOD nokv TYPE TABLE HANDLER nokv_tableam_handler;

COMMENT ON ACCESS METHOD nokv IS 'rows stored in the nokv LSM engine';

CREATE FUNCTION nokv_table_size(regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'nokv_table_size'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION nokv_table_size(regclass) IS
'engine bytes of a nokv table in SSTs (compressed, as on disk); pg_relation_size shows only its metapage';
