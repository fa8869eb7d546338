--
-- Index-only scans skip the row fetch on virtual pages VACUUM found
-- all-visible (the visibility map, armdb_vm.c); every change to a page
-- clears its bit first, so an index-only scan never returns what a fetch
-- would not.  Each query is checked against a sequential scan.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS armdb;
RESET client_min_messages;

CREATE TABLE vm (id int PRIMARY KEY, k int, pad text) USING armdb;
CREATE INDEX vm_k ON vm (k);
INSERT INTO vm SELECT g, g % 100, repeat('x', 20) FROM generate_series(1, 3000) g;

-- the rows an index-only scan fetched, NULL if the plan is not one
CREATE FUNCTION heap_fetches(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	line text;
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q
	LOOP
		IF line ~ 'Heap Fetches:' THEN
			RETURN substring(line FROM 'Heap Fetches: (\d+)')::int;
		END IF;
	END LOOP;
	RETURN NULL;
END
$$;

-- what the index-only scans return against a sequential scan: 0 rows
CREATE FUNCTION ios_vs_seqscan() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	SET LOCAL enable_seqscan = off;
	SET LOCAL enable_bitmapscan = off;
	CREATE TEMP TABLE ios_ids AS SELECT id FROM vm WHERE id < 100000;
	CREATE TEMP TABLE ios_ks AS SELECT k FROM vm WHERE k > -1000;
	SET LOCAL enable_seqscan = on;
	SET LOCAL enable_indexscan = off;
	SET LOCAL enable_indexonlyscan = off;
	SELECT count(*) INTO n FROM (
		(SELECT id FROM ios_ids EXCEPT ALL SELECT id FROM vm)
		UNION ALL (SELECT id FROM vm EXCEPT ALL SELECT id FROM ios_ids)
		UNION ALL (SELECT k FROM ios_ks EXCEPT ALL SELECT k FROM vm)
		UNION ALL (SELECT k FROM vm EXCEPT ALL SELECT k FROM ios_ks)) d;
	DROP TABLE ios_ids, ios_ks;
	RETURN n;
END
$$;

SET enable_seqscan = off;
SET enable_bitmapscan = off;

-- never vacuumed: every row is fetched
SELECT heap_fetches('SELECT count(*) FROM vm WHERE id < 1000');
SELECT relallvisible FROM pg_class WHERE relname = 'vm';

-- VACUUM sets the bits: no fetch, the same answers
VACUUM vm;
SELECT heap_fetches('SELECT count(*) FROM vm WHERE id < 1000');
SELECT heap_fetches('SELECT count(*) FROM vm WHERE k = 7');
SELECT relallvisible > 0 AS some_visible FROM pg_class WHERE relname = 'vm';
SELECT ios_vs_seqscan();
SELECT count(*), sum(id) FROM vm WHERE id < 1000;

-- a DELETE, an UPDATE of an indexed column and one of another column
-- clear their pages' bits: their rows are fetched again, and the deleted
-- and old versions are not returned
DELETE FROM vm WHERE id = 500;
UPDATE vm SET k = -1 WHERE id = 700;
UPDATE vm SET pad = 'y' WHERE id = 1500;
SELECT heap_fetches('SELECT count(*) FROM vm WHERE id < 1000') BETWEEN 1 AND 998
	AS some_fetched;
SELECT id FROM vm WHERE id BETWEEN 499 AND 501 ORDER BY id;
SELECT id FROM vm WHERE k = -1;
SELECT count(*) FROM vm WHERE k = 0;
SELECT ios_vs_seqscan();

-- a rolled back DELETE clears the bit too; the row stays
BEGIN;
DELETE FROM vm WHERE id = 10;
ROLLBACK;
SELECT id FROM vm WHERE id BETWEEN 9 AND 11 ORDER BY id;
SELECT ios_vs_seqscan();

-- VACUUM again: the dead versions' slots are freed and their pages set
VACUUM vm;
SELECT heap_fetches('SELECT count(*) FROM vm WHERE id < 1000');
SELECT ios_vs_seqscan();

-- new rows in the freed slots of an all-visible page clear it
CREATE TEMP TABLE freed AS SELECT ctid AS tid FROM vm WHERE id BETWEEN 1 AND 20;
DELETE FROM vm WHERE id BETWEEN 1 AND 20;
VACUUM vm;
SELECT heap_fetches('SELECT count(*) FROM vm WHERE id < 300');
INSERT INTO vm SELECT g, 4242, 'new' FROM generate_series(5001, 5020) g;
SELECT count(*) AS in_freed_slots FROM vm WHERE k = 4242 AND ctid IN (SELECT tid FROM freed);
SELECT heap_fetches('SELECT count(*) FROM vm WHERE k = 4242') AS fetched_new;
SELECT heap_fetches('SELECT count(*) FROM vm WHERE id < 300') AS fetched_page;
SELECT count(*) FROM vm WHERE k = 4242;
SELECT ios_vs_seqscan();

-- the planner knows: an index-only scan is cheap on a vacuumed table
RESET enable_seqscan;
RESET enable_bitmapscan;
VACUUM ANALYZE vm;
EXPLAIN (COSTS OFF) SELECT id FROM vm WHERE id < 100;

-- TRUNCATE starts over without bits
TRUNCATE vm;
INSERT INTO vm SELECT g, g % 100, 'again' FROM generate_series(1, 100) g;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT heap_fetches('SELECT count(*) FROM vm WHERE id < 1000');
SELECT ios_vs_seqscan();

DROP TABLE vm;
DROP FUNCTION heap_fetches(text);
DROP FUNCTION ios_vs_seqscan();
