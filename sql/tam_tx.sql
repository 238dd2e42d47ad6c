--
-- nokv table access method: transactions
--
\set VERBOSITY terse
CREATE TABLE tam_t (id int PRIMARY KEY, v int) USING nokv;
CREATE TABLE tam_h (id int PRIMARY KEY, v int);
INSERT INTO tam_t VALUES (1, 10), (2, 20);
-- heap and nokv commit and roll back together
BEGIN;
INSERT INTO tam_t VALUES (3, 30);
INSERT INTO tam_h VALUES (3, 30);
ROLLBACK;
SELECT (SELECT count(*) FROM tam_t) AS nokv, (SELECT count(*) FROM tam_h) AS heap;
-- savepoints
BEGIN;
UPDATE tam_t SET v = v + 1 WHERE id = 1;
SAVEPOINT a;
DELETE FROM tam_t WHERE id = 2;
INSERT INTO tam_t VALUES (4, 40);
SELECT * FROM tam_t ORDER BY id;
ROLLBACK TO a;
SELECT * FROM tam_t ORDER BY id;
SAVEPOINT b;
UPDATE tam_t SET v = 0;
RELEASE b;
COMMIT;
SELECT * FROM tam_t ORDER BY id;
-- a statement does not see its own changes (Halloween protection)
INSERT INTO tam_t SELECT id + 100, v FROM tam_t;
SELECT count(*) FROM tam_t;
UPDATE tam_t SET v = v + 1;
SELECT sum(v) FROM tam_t;
-- a row joined twice by one UPDATE changes once, as in heap
UPDATE tam_t SET v = tam_t.v + s.x FROM (VALUES (1, 1), (1, 2)) s(id, x) WHERE tam_t.id = s.id;
SELECT v FROM tam_t WHERE id = 1;
-- row locks of one transaction
BEGIN;
SELECT id FROM tam_t WHERE id = 1 FOR UPDATE;
SELECT id FROM tam_t WHERE id = 1 FOR SHARE;
SELECT id FROM tam_t WHERE id = 2 FOR KEY SHARE;
SELECT id FROM tam_t WHERE id = 2 FOR NO KEY UPDATE NOWAIT;
SELECT id FROM tam_t WHERE id <= 2 ORDER BY id FOR UPDATE SKIP LOCKED;
UPDATE tam_t SET v = -1 WHERE id = 1;
COMMIT;
SELECT * FROM tam_t WHERE id <= 2 ORDER BY id;
-- REPEATABLE READ and SERIALIZABLE snapshots
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM tam_t;
INSERT INTO tam_t VALUES (500, 5);
SELECT count(*) FROM tam_t;
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT sum(v) FROM tam_t;
UPDATE tam_t SET v = 1 WHERE id = 500;
COMMIT;
-- PREPARE TRANSACTION after writing nokv rows is refused
BEGIN;
INSERT INTO tam_t VALUES (600, 6);
PREPARE TRANSACTION 'tam_p';
SELECT count(*) FROM tam_t WHERE id = 600;
DROP TABLE tam_t, tam_h;
