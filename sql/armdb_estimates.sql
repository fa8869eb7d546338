-- The planner's size of an armdb table: its rows, and the pages heap would
-- need for them (armdb_relation_estimate_size), so that plans are heap's.
CREATE FUNCTION plan_field(query text, field text) RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
	plan json;
BEGIN
	EXECUTE 'EXPLAIN (FORMAT JSON) ' || query INTO plan;
	RETURN (plan -> 0 -> 'Plan' ->> field)::numeric;
END $$;
CREATE FUNCTION plan_rows(query text) RETURNS numeric LANGUAGE sql
AS $$ SELECT plan_field(query, 'Plan Rows') $$;
CREATE FUNCTION seq_cost(query text) RETURNS numeric LANGUAGE sql
AS $$ SELECT plan_field(query, 'Total Cost') $$;

CREATE TABLE est_a (id int, v text) USING armdb;
CREATE TABLE est_h (id int, v text) USING heap;

-- never vacuumed nor analyzed: heap's guess from the column types, at least
-- 10 pages, and the same for armdb
SELECT plan_rows('SELECT * FROM est_a') AS armdb, plan_rows('SELECT * FROM est_h') AS heap;
INSERT INTO est_a SELECT g, repeat('x', 40) FROM generate_series(1, 5) g;
INSERT INTO est_h SELECT * FROM est_a;
SELECT plan_rows('SELECT * FROM est_a') AS armdb, plan_rows('SELECT * FROM est_h') AS heap;
INSERT INTO est_a SELECT g, repeat('x', 40) FROM generate_series(6, 20000) g;
INSERT INTO est_h SELECT * FROM est_a WHERE id > 5;
SELECT plan_rows('SELECT * FROM est_a') BETWEEN 15000 AND 25000 AS armdb_near,
	plan_rows('SELECT * FROM est_h') BETWEEN 15000 AND 25000 AS heap_near;

-- analyzed: the rows counted, and a sequential scan costs about what heap's
-- does (heap pays for the pages it has, armdb for those heap would need)
ANALYZE est_a;
ANALYZE est_h;
SELECT plan_rows('SELECT * FROM est_a') AS armdb, plan_rows('SELECT * FROM est_h') AS heap;
SELECT round(seq_cost('SELECT * FROM est_a') / seq_cost('SELECT * FROM est_h'), 1) AS cost_ratio;
DELETE FROM est_a WHERE id % 2 = 0;
DELETE FROM est_h WHERE id % 2 = 0;
VACUUM est_a;
VACUUM est_h;
SELECT plan_rows('SELECT * FROM est_a') AS armdb, plan_rows('SELECT * FROM est_h') AS heap;

-- a lower fillfactor spreads heap's rows over more pages, so scans cost more
CREATE TABLE est_ff (id int, v text) USING armdb WITH (fillfactor = 50);
INSERT INTO est_ff SELECT * FROM est_a;
ANALYZE est_ff;
SELECT seq_cost('SELECT * FROM est_ff') > seq_cost('SELECT * FROM est_a') AS costs_more;

-- an empty parent of an inheritance tree is believed empty, as heap's
CREATE TABLE est_parent (id int) USING armdb;
CREATE TABLE est_child () INHERITS (est_parent) USING armdb;
SELECT plan_rows('SELECT * FROM ONLY est_parent') AS armdb;

DROP TABLE est_a, est_h, est_ff, est_parent, est_child;
DROP FUNCTION plan_rows(text);
DROP FUNCTION seq_cost(text);
DROP FUNCTION plan_field(text, text);
