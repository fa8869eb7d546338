-- HOT updates (armdb_hot.c): an UPDATE that changes no indexed column adds
-- no index entry; index scans, bitmap scans, VACUUM, CREATE INDEX and
-- rewrites follow the chains.  Every query runs on an armdb table and on a
-- heap twin, and the answers are compared.
CREATE TABLE hot_a (id int PRIMARY KEY, k int, v text) USING armdb;
CREATE TABLE hot_h (id int PRIMARY KEY, k int, v text) USING heap;
CREATE INDEX hot_a_k ON hot_a (k);
CREATE INDEX hot_h_k ON hot_h (k);
INSERT INTO hot_a SELECT g, g % 10, 'v' || g FROM generate_series(1, 2000) g;
INSERT INTO hot_h SELECT * FROM hot_a;

-- the answers of both tables to a query over {t}, with every plan forced
CREATE FUNCTION hot_same(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	a text;
	h text;
	plans text[] := ARRAY['seq', 'index', 'bitmap'];
	p text;
BEGIN
	FOREACH p IN ARRAY plans LOOP
		PERFORM set_config('enable_seqscan', (p = 'seq')::text, true);
		PERFORM set_config('enable_indexscan', (p = 'index')::text, true);
		PERFORM set_config('enable_indexonlyscan', (p = 'index')::text, true);
		PERFORM set_config('enable_bitmapscan', (p = 'bitmap')::text, true);
		EXECUTE format('SELECT string_agg(r::text, %L ORDER BY r::text) FROM (%s) r',
					   ',', replace(q, '{t}', 'hot_a')) INTO a;
		EXECUTE format('SELECT string_agg(r::text, %L ORDER BY r::text) FROM (%s) r',
					   ',', replace(q, '{t}', 'hot_h')) INTO h;
		IF a IS DISTINCT FROM h THEN
			RETURN p || ' differs: ' || coalesce(a, 'null') || ' vs ' || coalesce(h, 'null');
		END IF;
	END LOOP;
	RETURN 'same';
END $$;

-- updates of a non-indexed column are HOT, of an indexed one are not
UPDATE hot_a SET v = v || 'a' WHERE id <= 300;
UPDATE hot_h SET v = v || 'a' WHERE id <= 300;
UPDATE hot_a SET v = v || 'b' WHERE id <= 100;
UPDATE hot_h SET v = v || 'b' WHERE id <= 100;
UPDATE hot_a SET k = k + 100 WHERE id BETWEEN 50 AND 60;
UPDATE hot_h SET k = k + 100 WHERE id BETWEEN 50 AND 60;
SELECT pg_stat_force_next_flush();
SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'hot_a';
SELECT hot_same('SELECT id, k, v FROM {t} WHERE id <= 120');
SELECT hot_same('SELECT id, k, v FROM {t} WHERE k IN (3, 107, 155)');
SELECT hot_same('SELECT count(*), sum(length(v)) FROM {t} WHERE k = 5');
-- a chain's newer versions are on other virtual pages; ctid names them
SELECT count(*) FROM hot_a WHERE ctid = (SELECT ctid FROM hot_a WHERE id = 1);

-- a rolled-back HOT update, then another
BEGIN;
UPDATE hot_a SET v = 'gone' WHERE id = 5;
ROLLBACK;
UPDATE hot_a SET v = v || 'c' WHERE id = 5;
UPDATE hot_h SET v = v || 'c' WHERE id = 5;
SELECT hot_same('SELECT id, v FROM {t} WHERE id BETWEEN 4 AND 6');

-- VACUUM prunes the chains: roots redirect to the versions left
VACUUM hot_a;
VACUUM hot_h;
SELECT hot_same('SELECT id, k, v FROM {t} WHERE id <= 120');
SELECT hot_same('SELECT id, k, v FROM {t} WHERE k IN (3, 107, 155)');
-- pages holding a redirect are never all-visible: index-only scans fetch
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FROM hot_a WHERE id BETWEEN 1 AND 400;
RESET enable_seqscan; RESET enable_bitmapscan;
UPDATE hot_a SET v = v || 'd' WHERE id <= 200;
UPDATE hot_h SET v = v || 'd' WHERE id <= 200;
VACUUM hot_a;
VACUUM hot_h;
SELECT hot_same('SELECT id, k, v FROM {t} WHERE id <= 250');
SELECT hot_same('SELECT id, v FROM {t} WHERE k >= 0 AND id % 7 = 0');

-- the end of a chain: DELETE, then VACUUM frees the root's slot
DELETE FROM hot_a WHERE id IN (1, 2, 3);
DELETE FROM hot_h WHERE id IN (1, 2, 3);
VACUUM hot_a;
VACUUM hot_h;
SELECT hot_same('SELECT id, v FROM {t} WHERE id <= 10');
INSERT INTO hot_a VALUES (1, 1, 'again');
INSERT INTO hot_h VALUES (1, 1, 'again');
SELECT hot_same('SELECT id, k, v FROM {t} WHERE id <= 10');

-- unique checks walk the chain: the key of a HOT-updated row is taken
INSERT INTO hot_a VALUES (5, 0, 'dup');
UPDATE hot_a SET v = v || 'e' WHERE id = 5;
INSERT INTO hot_a VALUES (5, 0, 'dup');
INSERT INTO hot_a VALUES (5, 0, 'dup') ON CONFLICT (id) DO UPDATE SET v = excluded.v;
INSERT INTO hot_h VALUES (5, 0, 'dup') ON CONFLICT (id) DO UPDATE SET v = excluded.v;
SELECT hot_same('SELECT id, k, v FROM {t} WHERE id = 5');

-- row locks through the index, then an update of the locked version
BEGIN;
SELECT id, v FROM hot_a WHERE id = 6 FOR UPDATE;
UPDATE hot_a SET v = v || 'f' WHERE id = 6;
COMMIT;
UPDATE hot_h SET v = v || 'f' WHERE id = 6;

-- a new index on a column HOT updates changed indexes each row under its
-- chain's root
UPDATE hot_a SET v = v || 'g' WHERE id BETWEEN 10 AND 30;
UPDATE hot_h SET v = v || 'g' WHERE id BETWEEN 10 AND 30;
CREATE INDEX hot_a_v ON hot_a (v);
CREATE INDEX hot_h_v ON hot_h (v);
SELECT hot_same('SELECT id, v FROM {t} WHERE v IN (''v10agdg'', ''v20abdg'', ''v30adg'', ''v5abcde'')');
SELECT hot_same('SELECT id, v FROM {t} WHERE v LIKE ''v1%g''');
-- and is indexed, so the next updates of v are not HOT
UPDATE hot_a SET v = v || 'h' WHERE id = 10;
SELECT pg_stat_force_next_flush();
SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'hot_a';
DROP INDEX hot_a_v;
DROP INDEX hot_h_v;
UPDATE hot_h SET v = v || 'h' WHERE id = 10;

-- CREATE INDEX CONCURRENTLY, and BRIN, whose build needs TIDs in order
UPDATE hot_a SET v = v || 'i' WHERE id % 3 = 0;
UPDATE hot_h SET v = v || 'i' WHERE id % 3 = 0;
CREATE INDEX CONCURRENTLY hot_a_vc ON hot_a (v);
CREATE INDEX CONCURRENTLY hot_h_vc ON hot_h (v);
SELECT hot_same('SELECT id, v FROM {t} WHERE v IN (''v9ai'', ''v300adi'', ''v1500i'')');
DROP INDEX hot_a_vc;
DROP INDEX hot_h_vc;
UPDATE hot_a SET v = v || 'j' WHERE id % 5 = 0;
UPDATE hot_h SET v = v || 'j' WHERE id % 5 = 0;
CREATE INDEX hot_a_brin ON hot_a USING brin (id) WITH (pages_per_range = 1);
CREATE INDEX hot_h_brin ON hot_h USING brin (id) WITH (pages_per_range = 1);
SET enable_indexscan = off; SET enable_seqscan = off;
SELECT count(*), sum(length(v)) FROM hot_a WHERE id BETWEEN 1 AND 1000;
SELECT count(*), sum(length(v)) FROM hot_h WHERE id BETWEEN 1 AND 1000;
RESET enable_indexscan; RESET enable_seqscan;
DROP INDEX hot_a_brin;
DROP INDEX hot_h_brin;

-- rewrites carry no chain over
VACUUM FULL hot_a;
SELECT hot_same('SELECT id, k, v FROM {t}');
UPDATE hot_a SET v = v || 'k' WHERE id <= 50;
UPDATE hot_h SET v = v || 'k' WHERE id <= 50;
CLUSTER hot_a USING hot_a_pkey;
SELECT hot_same('SELECT id, k, v FROM {t}');

-- armdb.hot_updates off: every update adds index entries
SET armdb.hot_updates = off;
SELECT pg_stat_force_next_flush();
SELECT n_tup_hot_upd AS before FROM pg_stat_user_tables WHERE relname = 'hot_a' \gset
UPDATE hot_a SET v = v || 'l' WHERE id <= 10;
SELECT pg_stat_force_next_flush();
SELECT n_tup_hot_upd - :before AS hot FROM pg_stat_user_tables WHERE relname = 'hot_a';
RESET armdb.hot_updates;
UPDATE hot_h SET v = v || 'l' WHERE id <= 10;
SELECT hot_same('SELECT id, k, v FROM {t} WHERE id <= 20');

-- a lossy bitmap (larger than work_mem) walks the chain of each root on
-- its pages and leaves their heap-only versions to them
CREATE TABLE hot_big (id int, n int, v int) USING armdb;
INSERT INTO hot_big SELECT g, g % 3, 0 FROM generate_series(1, 300000) g;
CREATE INDEX ON hot_big (n);
UPDATE hot_big SET v = v + 1 WHERE id % 97 = 0;
UPDATE hot_big SET v = v + 1 WHERE id % 194 = 0;
ANALYZE hot_big;
SET work_mem = '64kB';
SET max_parallel_workers_per_gather = 0;
SET enable_seqscan = off; SET enable_indexscan = off;
CREATE FUNCTION hot_lossy(query text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	plan json;
BEGIN
	EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON, TIMING OFF, SUMMARY OFF) ' || query
	INTO plan;
	RETURN (plan -> 0 -> 'Plan' -> 'Plans' -> 0 ->> 'Lossy Heap Blocks')::int > 0;
END $$;
SELECT hot_lossy('SELECT count(*) FROM hot_big WHERE n = 1');
SELECT count(*), sum(v), sum(id) FROM hot_big WHERE n = 1;
VACUUM hot_big;
UPDATE hot_big SET v = v + 1 WHERE id % 101 = 0;
SELECT count(*), sum(v), sum(id) FROM hot_big WHERE n = 1;
-- the same from a sequential scan
RESET enable_seqscan; SET enable_bitmapscan = off; RESET work_mem;
RESET max_parallel_workers_per_gather;
SELECT count(*), sum(v), sum(id) FROM hot_big WHERE n = 1;
RESET enable_indexscan; RESET enable_bitmapscan;
DROP TABLE hot_big;
DROP FUNCTION hot_lossy(text);

-- a table without indexes: nothing to gain, no HOT
CREATE TABLE hot_noidx (id int, v text) USING armdb;
INSERT INTO hot_noidx VALUES (1, 'a');
UPDATE hot_noidx SET v = 'b';
SELECT pg_stat_force_next_flush();
SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'hot_noidx';

DROP TABLE hot_a, hot_h, hot_noidx;
DROP FUNCTION hot_same(text);

-- a rolled-back transaction's two HOT updates of one row: VACUUM frees both
-- versions (the second follows the first, whose insert aborted)
CREATE TABLE hot_ab (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO hot_ab VALUES (1, 'a');
BEGIN;
UPDATE hot_ab SET v = 'b';
UPDATE hot_ab SET v = 'c';
ROLLBACK;
SELECT sum(live_versions) AS versions_before FROM armdb_shard_stats('hot_ab');
VACUUM hot_ab;
SELECT sum(live_versions) AS versions_after FROM armdb_shard_stats('hot_ab');
SELECT * FROM hot_ab;
UPDATE hot_ab SET v = 'd';
SET enable_seqscan = off;
SELECT * FROM hot_ab WHERE id = 1;
RESET enable_seqscan;
DROP TABLE hot_ab;

-- readers prune: an index fetch that walks past versions dead to everybody
-- prunes the chain (no VACUUM), as a sequential scan reading pages does
CREATE TABLE hot_op (id int PRIMARY KEY, n int) USING armdb;
INSERT INTO hot_op VALUES (1, 0), (2, 0);
-- (updates found by index fetches would prune as they go)
SET enable_indexscan = off; SET enable_bitmapscan = off;
UPDATE hot_op SET n = n + 1 WHERE id = 1;
UPDATE hot_op SET n = n + 1 WHERE id = 1;
UPDATE hot_op SET n = n + 1 WHERE id = 1;
UPDATE hot_op SET n = n + 1 WHERE id = 1;
UPDATE hot_op SET n = n + 1 WHERE id = 1;
UPDATE hot_op SET n = n + 1 WHERE id = 2;
UPDATE hot_op SET n = n + 1 WHERE id = 2;
RESET enable_indexscan; RESET enable_bitmapscan;
SELECT sum(live_versions) AS versions_before FROM armdb_shard_stats('hot_op');
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT n FROM hot_op WHERE id = 1;
SELECT sum(live_versions) AS versions_after_fetch FROM armdb_shard_stats('hot_op');
SELECT n FROM hot_op WHERE id = 1;
RESET enable_seqscan; RESET enable_bitmapscan;
SET armdb.debug_seqscan_pages = on;
SELECT id, n FROM hot_op ORDER BY id;
RESET armdb.debug_seqscan_pages;
SELECT sum(live_versions) AS versions_after_scan FROM armdb_shard_stats('hot_op');
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT id, n FROM hot_op WHERE id IN (1, 2) ORDER BY id;
RESET enable_seqscan; RESET enable_bitmapscan;
VACUUM hot_op;
SELECT id, n FROM hot_op ORDER BY id;
DROP TABLE hot_op;
