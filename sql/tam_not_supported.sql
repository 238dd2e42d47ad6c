--
-- nokv table access method: what is refused, and with which SQLSTATE
--
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE TABLE tam_ns (id int PRIMARY KEY, v text) USING nokv;
INSERT INTO tam_ns VALUES (1, 'a');
\set VERBOSITY sqlstate
-- INSERT ... ON CONFLICT
INSERT INTO tam_ns VALUES (2, 'b') ON CONFLICT (id) DO UPDATE SET v = 'x';
INSERT INTO tam_ns VALUES (2, 'b') ON CONFLICT DO NOTHING;
-- VACUUM FULL and CLUSTER
VACUUM FULL tam_ns;
CLUSTER tam_ns USING tam_ns_pkey;
-- temporary and unlogged tables
CREATE TEMP TABLE tam_ns_temp (a int) USING nokv;
CREATE UNLOGGED TABLE tam_ns_unlogged (a int) USING nokv;
ALTER TABLE tam_ns SET UNLOGGED;
-- logical replication
CREATE PUBLICATION tam_pub FOR TABLE tam_ns;
CREATE PUBLICATION tam_pub_all FOR ALL TABLES;
CREATE PUBLICATION tam_pub_ok;
ALTER PUBLICATION tam_pub_ok ADD TABLE tam_ns;
DROP PUBLICATION tam_pub_ok;
\set VERBOSITY default
-- the messages and hints
INSERT INTO tam_ns VALUES (2, 'b') ON CONFLICT (id) DO UPDATE SET v = 'x';
VACUUM FULL tam_ns;
CREATE TEMP TABLE tam_ns_temp (a int) USING nokv;
CREATE PUBLICATION tam_pub FOR TABLE tam_ns;
SELECT * FROM tam_ns;
DROP TABLE tam_ns;
