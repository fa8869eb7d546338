-- Serial sequential scans read a table's virtual pages instead of its files
-- when the files hold mostly versions no snapshot needs (armdb_seqscan.c,
-- choose_mode): a few live rows updated thousands of times.
-- (The DEBUG lines below are the only messages wanted: no statement log.)
SET log_statement = none;
SET log_min_duration_statement = -1;
CREATE TABLE sp (id int PRIMARY KEY, n int, v text) USING armdb;
CREATE TABLE sp_heap (id int PRIMARY KEY, n int, v text) USING heap;
INSERT INTO sp SELECT g, 0, repeat('x', 100) || g FROM generate_series(1, 40) g;
INSERT INTO sp_heap SELECT * FROM sp;
-- 12,000 updates: about 1.8 MB of versions for 40 rows
DO $$ BEGIN
	FOR i IN 1..300 LOOP
		UPDATE sp SET n = n + 1;
	END LOOP;
END $$;
UPDATE sp_heap SET n = n + 300;
VACUUM sp;
SELECT sum(bytes) > 1500000 AS big_files FROM armdb_file_stats('sp');

-- the scan says which way it reads
SET client_min_messages = debug1;
SELECT count(*), sum(n) FROM sp;
RESET client_min_messages;

-- the same rows as heap's, with and without the pages forced
SELECT (SELECT string_agg(r::text, ',' ORDER BY r::text) FROM sp r) =
	   (SELECT string_agg(r::text, ',' ORDER BY r::text) FROM sp_heap r) AS same;
SET armdb.debug_seqscan_pages = on;
SELECT (SELECT string_agg(r::text, ',' ORDER BY r::text) FROM sp r) =
	   (SELECT string_agg(r::text, ',' ORDER BY r::text) FROM sp_heap r) AS same_forced;
RESET armdb.debug_seqscan_pages;


-- backward and forward through a scroll cursor, in page mode
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT id, n FROM sp;
FETCH 3 FROM c;
FETCH BACKWARD 2 FROM c;
FETCH LAST FROM c;
FETCH BACKWARD 1 FROM c;
MOVE ABSOLUTE 0 FROM c;
FETCH FORWARD 2 FROM c;
CLOSE c;
COMMIT;

-- a rescan (the inner side of a nested loop) starts over
SET enable_hashjoin = off; SET enable_mergejoin = off;
SET enable_indexscan = off; SET enable_bitmapscan = off;
SET enable_material = off;
SELECT count(*) FROM (VALUES (1), (2), (3)) x(a) JOIN sp ON sp.id % 3 = x.a % 3;
RESET enable_hashjoin; RESET enable_mergejoin; RESET enable_indexscan;
RESET enable_bitmapscan; RESET enable_material;

-- rows written after the scan's snapshot are not seen; own rows are
BEGIN;
INSERT INTO sp VALUES (1000, 1, 'new');
UPDATE sp SET n = -1 WHERE id = 1;
DELETE FROM sp WHERE id = 2;
SELECT count(*), sum(n) FILTER (WHERE id = 1) AS n1, count(*) FILTER (WHERE id = 2) AS has2 FROM sp;
ROLLBACK;
SELECT count(*), sum(n) FROM sp;

-- a fresh table of live rows is read by its files
CREATE TABLE sp_live (id int, v text) USING armdb;
INSERT INTO sp_live SELECT g, repeat('y', 200) FROM generate_series(1, 20000) g;
SET client_min_messages = debug1;
SELECT count(*) FROM sp_live;
RESET client_min_messages;
DROP TABLE sp, sp_heap, sp_live;
