-- Bitmap heap scans on armdb tables: a bitmap page is a virtual page of the
-- key directory (TID = slot / 291, slot % 291 + 1).  GIN, BRIN and btree
-- bitmaps, BitmapAnd/BitmapOr, lossy pages, parallel scans, and rows
-- updated, deleted or not yet written out; each query returns what the same
-- query returns on a heap twin.
SET armdb.shards = 1;
CREATE TABLE bm (id int PRIMARY KEY, n int, doc jsonb, t text) USING armdb;
CREATE TABLE bm_heap (id int PRIMARY KEY, n int, doc jsonb, t text) USING heap;
INSERT INTO bm SELECT g, g % 1000, jsonb_build_object('k', g % 100, 'g', g % 7),
	'word' || (g % 50) || ' other' || (g % 13)
FROM generate_series(1, 20000) g;
INSERT INTO bm_heap SELECT * FROM bm;
CREATE INDEX bm_doc ON bm USING gin (doc jsonb_path_ops);
CREATE INDEX bm_heap_doc ON bm_heap USING gin (doc jsonb_path_ops);
CREATE INDEX bm_fts ON bm USING gin (to_tsvector('simple', t));
CREATE INDEX bm_heap_fts ON bm_heap USING gin (to_tsvector('simple', t));
CREATE INDEX bm_brin ON bm USING brin (id) WITH (pages_per_range = 4);
CREATE INDEX bm_heap_brin ON bm_heap USING brin (id) WITH (pages_per_range = 4);
CREATE INDEX bm_n ON bm (n);
CREATE INDEX bm_heap_n ON bm_heap (n);
-- changes after the index builds: updated, deleted, and new rows
UPDATE bm SET t = 'changed', doc = doc || '{"u": 1}' WHERE id % 97 = 0;
UPDATE bm_heap SET t = 'changed', doc = doc || '{"u": 1}' WHERE id % 97 = 0;
DELETE FROM bm WHERE id % 89 = 0;
DELETE FROM bm_heap WHERE id % 89 = 0;
INSERT INTO bm SELECT g, g % 1000, jsonb_build_object('k', g % 100), 'late'
FROM generate_series(20001, 20500) g;
INSERT INTO bm_heap SELECT g, g % 1000, jsonb_build_object('k', g % 100), 'late'
FROM generate_series(20001, 20500) g;
RESET armdb.shards;
ANALYZE bm;
ANALYZE bm_heap;

SET enable_seqscan = off;
SET enable_indexscan = off;
SET enable_indexonlyscan = off;

-- the plans are bitmap heap scans
EXPLAIN (COSTS OFF) SELECT id FROM bm WHERE doc @> '{"k": 7}';
EXPLAIN (COSTS OFF) SELECT id FROM bm WHERE id BETWEEN 100 AND 300;
EXPLAIN (COSTS OFF) SELECT id FROM bm WHERE n = 5 OR n = 17;
EXPLAIN (COSTS OFF) SELECT id FROM bm WHERE n < 30 AND doc @> '{"g": 3}';

-- the same rows as heap, for each kind of bitmap
CREATE FUNCTION bm_check(cond text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	a text;
	h text;
	cnt bigint;
BEGIN
	EXECUTE format('SELECT string_agg(id || '':'' || t || '':'' || doc::text, '';'' ORDER BY id), count(*) FROM bm WHERE %s', cond)
	INTO a, cnt;
	EXECUTE format('SELECT string_agg(id || '':'' || t || '':'' || doc::text, '';'' ORDER BY id) FROM bm_heap WHERE %s', cond)
	INTO h;
	RETURN CASE WHEN a IS NOT DISTINCT FROM h THEN 'same: ' || cnt || ' rows'
		ELSE 'DIFFERENT' END;
END $$;
SELECT cond, bm_check(cond) FROM (VALUES
	('doc @> ''{"k": 7}'''),
	('doc @> ''{"u": 1}'''),
	('to_tsvector(''simple'', t) @@ to_tsquery(''simple'', ''word7 & other3'')'),
	('to_tsvector(''simple'', t) @@ to_tsquery(''simple'', ''changed | late'')'),
	('id BETWEEN 100 AND 300'),
	('id BETWEEN 19900 AND 20400'),
	('n = 5 OR n = 17'),
	('n < 30 AND doc @> ''{"g": 3}'''),
	('n IN (0, 89, 97, 500)')) v(cond);

-- read-ahead (a second iterator over the executor's bitmap reads the next
-- pages' entries at once): rescans, where each outer row of a nested loop
-- builds a new bitmap, the same rows as heap's
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SET enable_material = off;
EXPLAIN (COSTS OFF)
SELECT v.i, count(*) FROM (VALUES (1, 3), (2, 7)) v(i, k)
JOIN bm ON bm.doc @> jsonb_build_object('k', v.k) GROUP BY v.i;
CREATE FUNCTION bm_join(tab text) RETURNS TABLE (i int, c bigint, s bigint)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY EXECUTE format('SELECT v.i, count(*), sum(b.id)
		FROM (VALUES (1, 3), (2, 7), (3, 11), (4, 3), (5, 99), (6, 1000)) v(i, k)
		LEFT JOIN %I b ON b.doc @> jsonb_build_object(''k'', v.k)
		GROUP BY v.i', tab);
END $$;
SELECT a.i, a.c, a.s, a.c = h.c AND a.s IS NOT DISTINCT FROM h.s AS same
FROM bm_join('bm') a JOIN bm_join('bm_heap') h USING (i) ORDER BY a.i;
RESET enable_hashjoin;
RESET enable_mergejoin;
RESET enable_material;
-- count(*) over pages VACUUM found all-visible: the executor skips their
-- rows, and so does the read-ahead
VACUUM bm;
VACUUM bm_heap;
SELECT (SELECT count(*) FROM bm WHERE n < 300) AS armdb,
	(SELECT count(*) FROM bm_heap WHERE n < 300) AS heap;

-- lossy pages: a bitmap larger than work_mem keeps whole pages, and the
-- scan checks every version on them against the condition
CREATE FUNCTION bm_lossy(query text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	plan json;
BEGIN
	EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON, TIMING OFF, SUMMARY OFF) ' || query
	INTO plan;
	RETURN (plan -> 0 -> 'Plan' -> 'Plans' -> 0 ->> 'Lossy Heap Blocks')::int > 0;
END $$;
SET armdb.shards = 1;
CREATE TABLE bm_big (id int, n int) USING armdb;
INSERT INTO bm_big SELECT g, g % 3 FROM generate_series(1, 300000) g;
RESET armdb.shards;
CREATE INDEX ON bm_big (n);
ANALYZE bm_big;
SET work_mem = '64kB';
SET max_parallel_workers_per_gather = 0;
SELECT bm_lossy('SELECT count(*) FROM bm_big WHERE n = 1');
SELECT count(*), sum(id) FROM bm_big WHERE n = 1;
RESET work_mem;
SELECT count(*), sum(id) FROM bm_big WHERE n = 1;

-- parallel bitmap heap scans
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET min_parallel_index_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT count(*), sum(id) FROM bm_big WHERE n = 2;
SELECT count(*), sum(id) FROM bm_big WHERE n = 2;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET min_parallel_index_scan_size;

-- the executor prefetches the main fork's blocks of a bitmap's pages, which
-- fails past the fork's first segment (armdb leaves the fork empty); armdb
-- turns that prefetching off.  armdb.debug_first_page (test only) puts
-- 150,000 rows on pages past block 131072 (RELSEG_SIZE), as 38 million
-- rows would.
CREATE TABLE bm_wide (id int, n int) USING armdb;
SET armdb.debug_first_page = 131000;
INSERT INTO bm_wide SELECT g, g % 3 FROM generate_series(1, 150000) g;
RESET armdb.debug_first_page;
CREATE INDEX ON bm_wide (n);
ANALYZE bm_wide;
SET effective_io_concurrency = 16;
EXPLAIN (COSTS OFF) SELECT count(*), sum(id), max(ctid) FROM bm_wide WHERE n = 1;
SELECT count(*), sum(id), max(ctid) > '(131072,0)' AS past_first_segment
FROM bm_wide WHERE n = 1;
RESET effective_io_concurrency;
DROP TABLE bm_wide;

-- a transaction sees its own changes, and not those of others after its
-- snapshot
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM bm WHERE n = 5;
UPDATE bm SET n = 6 WHERE id = 5;
SELECT count(*) FROM bm WHERE n = 5;
SELECT id, n FROM bm WHERE n = 6 ORDER BY id LIMIT 3;
ROLLBACK;
SELECT count(*) FROM bm WHERE n = 5;

-- serializable transactions lock the rows they read as heap does
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT count(*) FROM bm WHERE n = 7;
SELECT locktype, count(*) FROM pg_locks
WHERE mode = 'SIReadLock' AND relation = 'bm'::regclass
GROUP BY locktype ORDER BY locktype;
COMMIT;

DROP FUNCTION bm_check(text);
DROP FUNCTION bm_lossy(text);
DROP TABLE bm, bm_heap, bm_big;
