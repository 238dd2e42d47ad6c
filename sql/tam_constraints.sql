--
-- nokv table access method: constraints and triggers
--
\set VERBOSITY terse
CREATE TABLE tam_parent (id int PRIMARY KEY, name text NOT NULL) USING nokv;
CREATE TABLE tam_child (id int PRIMARY KEY,
    pid int REFERENCES tam_parent (id) ON UPDATE CASCADE ON DELETE CASCADE,
    qty int CHECK (qty > 0)) USING nokv;
INSERT INTO tam_parent SELECT g, 'p' || g FROM generate_series(1, 5) g;
INSERT INTO tam_child SELECT g, g % 5 + 1, g FROM generate_series(1, 20) g;
-- NOT NULL and CHECK
INSERT INTO tam_parent VALUES (9, NULL);
INSERT INTO tam_child VALUES (100, 1, 0);
-- foreign keys, both directions, with key changes
INSERT INTO tam_child VALUES (101, 42, 1);
UPDATE tam_child SET pid = 42 WHERE id = 1;
UPDATE tam_parent SET id = 50 WHERE id = 2;
SELECT pid, count(*) FROM tam_child GROUP BY pid ORDER BY pid;
DELETE FROM tam_parent WHERE id = 3;
SELECT pid, count(*) FROM tam_child GROUP BY pid ORDER BY pid;
-- a heap child of a nokv parent, and a nokv child of a heap parent
CREATE TABLE tam_heap_child (id int, pid int REFERENCES tam_parent (id));
INSERT INTO tam_heap_child VALUES (1, 50);
INSERT INTO tam_heap_child VALUES (2, 3);
DELETE FROM tam_parent WHERE id = 50;
CREATE TABLE tam_heap_parent (id int PRIMARY KEY);
CREATE TABLE tam_nokv_child (pid int REFERENCES tam_heap_parent ON UPDATE RESTRICT) USING nokv;
INSERT INTO tam_heap_parent VALUES (1), (2);
INSERT INTO tam_nokv_child VALUES (1);
UPDATE tam_heap_parent SET id = 3 WHERE id = 1;
UPDATE tam_heap_parent SET id = 4 WHERE id = 2;
-- non-key update of a referenced row leaves the references alone
UPDATE tam_parent SET name = 'renamed' WHERE id = 1;
SELECT count(*) FROM tam_child WHERE pid = 1;

-- row triggers see the right OLD and NEW
CREATE TABLE tam_log (op text, old_row text, new_row text);
CREATE FUNCTION tam_log_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tam_log VALUES (TG_WHEN || ' ' || TG_OP,
        CASE WHEN TG_OP <> 'INSERT' THEN OLD::text END,
        CASE WHEN TG_OP <> 'DELETE' THEN NEW::text END);
    IF TG_WHEN = 'BEFORE' AND TG_OP = 'INSERT' THEN
        NEW.name := NEW.name || ' (checked)';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER tam_before BEFORE INSERT OR UPDATE OR DELETE ON tam_parent
    FOR EACH ROW EXECUTE FUNCTION tam_log_row();
CREATE TRIGGER tam_after AFTER INSERT OR UPDATE OR DELETE ON tam_parent
    FOR EACH ROW EXECUTE FUNCTION tam_log_row();
INSERT INTO tam_parent VALUES (60, 'sixty');
UPDATE tam_parent SET id = 61, name = 'sixty-one' WHERE id = 60;
DELETE FROM tam_parent WHERE id = 61;
SELECT * FROM tam_log;
-- transition tables
CREATE FUNCTION tam_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'old: %, new: %',
        (SELECT string_agg(id::text, ',' ORDER BY id) FROM old_rows),
        (SELECT string_agg(id::text || '=' || qty, ',' ORDER BY id) FROM new_rows);
    RETURN NULL;
END $$;
CREATE TRIGGER tam_stmt AFTER UPDATE ON tam_child
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tam_transition();
UPDATE tam_child SET qty = qty * 10 WHERE id <= 4;

DROP TABLE tam_heap_child, tam_nokv_child, tam_heap_parent, tam_child, tam_parent, tam_log;
DROP FUNCTION tam_log_row(), tam_transition();
