--
-- version: the extension loads and reports its engine version
--
CREATE EXTENSION nokv;
SELECT nokv_engine_version() ~ '^\d+\.\d+\.\d+$';
