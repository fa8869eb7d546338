--
-- Reads through the page cache (armdb.cached_reads) that get an older image
-- of a block: armdb.debug_stale_cached_reads makes every cached read return
-- the second half of each 4 kB block as zeros, as an image cached before the
-- block's newer entries were written would.  Every reader must notice and
-- read the file again with O_DIRECT: sequential, parallel, index, bitmap
-- and TID range scans, fetches for UPDATE and DELETE, ANALYZE.  Results
-- are compared with a heap twin.
--
CREATE TABLE stale (id int PRIMARY KEY, v text, n int) USING armdb;
CREATE TABLE stale_heap (id int PRIMARY KEY, v text, n int);
CREATE INDEX stale_n ON stale (n);
CREATE INDEX stale_heap_n ON stale_heap (n);
-- rows of 40 to 300 bytes, and some of several blocks (not toasted: random)
INSERT INTO stale
SELECT g, repeat(md5(g::text), 1 + g % 9), g % 100 FROM generate_series(1, 20000) g;
INSERT INTO stale
SELECT g, (SELECT string_agg(md5((g * 1000 + i)::text), '') FROM generate_series(1, 200) i),
       g % 100
FROM generate_series(20001, 20040) g;
INSERT INTO stale_heap SELECT * FROM stale;
UPDATE stale SET n = n + 1 WHERE id % 10 = 0;
UPDATE stale_heap SET n = n + 1 WHERE id % 10 = 0;
DELETE FROM stale WHERE id % 13 = 0;
DELETE FROM stale_heap WHERE id % 13 = 0;

CREATE FUNCTION stale_digest(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
  EXECUTE 'SELECT count(*) || '' '' || md5(string_agg(id || '':'' || v || '':'' || n, '','' ORDER BY id)) FROM (' || q || ') s' INTO d;
  RETURN d;
END $$;
CREATE FUNCTION stale_same(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE a text; h text;
BEGIN
  a := stale_digest(q);
  h := stale_digest(replace(q, 'FROM stale ', 'FROM stale_heap '));
  RETURN CASE WHEN a = h THEN 'same ' || split_part(a, ' ', 1) || ' rows'
              ELSE 'DIFFERENT: ' || a || ' vs ' || h END;
END $$;

SET armdb.debug_stale_cached_reads = on;
-- a sequential scan
SET enable_indexscan = off; SET enable_bitmapscan = off;
SELECT stale_same('SELECT * FROM stale ');
SELECT stale_same('SELECT * FROM stale WHERE v LIKE ''%ab%''');
-- a parallel one
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
SELECT stale_same('SELECT * FROM stale WHERE n < 50');
RESET parallel_setup_cost; RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;
-- index fetches
SET enable_seqscan = off; SET enable_indexscan = on;
SELECT stale_same('SELECT * FROM stale WHERE id BETWEEN 100 AND 20040');
-- a bitmap heap scan
SET enable_indexscan = off; SET enable_bitmapscan = on;
SELECT stale_same('SELECT * FROM stale WHERE n IN (1, 2, 3, 50, 99, 100)');
-- ... of rows one or two to a page, which it reads ahead in batches
SELECT stale_same('SELECT * FROM stale WHERE n = 7');
RESET enable_seqscan; RESET enable_indexscan; RESET enable_bitmapscan;
-- a TID range scan, against the same scan with true images
SELECT count(*), sum(length(v)) FROM stale WHERE ctid < '(40,0)';
RESET armdb.debug_stale_cached_reads;
SELECT count(*), sum(length(v)) FROM stale WHERE ctid < '(40,0)';
SET armdb.debug_stale_cached_reads = on;
-- UPDATE and DELETE fetch the versions they replace
UPDATE stale SET v = v || 'x' WHERE id % 7 = 0;
UPDATE stale_heap SET v = v || 'x' WHERE id % 7 = 0;
DELETE FROM stale WHERE id % 11 = 0;
DELETE FROM stale_heap WHERE id % 11 = 0;
SELECT stale_same('SELECT * FROM stale ');
-- ANALYZE reads virtual pages in spans
ANALYZE stale;
SELECT reltuples FROM pg_class WHERE relname = 'stale';
RESET armdb.debug_stale_cached_reads;

-- only superusers may set it
CREATE ROLE stale_user;
SET ROLE stale_user;
SET armdb.debug_stale_cached_reads = on;
RESET ROLE;
DROP ROLE stale_user;
DROP TABLE stale, stale_heap;
DROP FUNCTION stale_digest(text), stale_same(text);
