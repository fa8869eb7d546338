--
-- Entries hold shortened tuple images (ARMDB_GSN_FLAG_SHORT_TUPLE: without
-- t_xmin, t_xmax, t_cid and t_ctid, which the version record holds), and
-- tables written before that hold whole ones: armdb.debug_full_tuple_images
-- writes the old kind.  Every kind of read must rebuild both, against a heap
-- twin: sequential, parallel, index, bitmap, TID and TID range scans,
-- system columns, NULL bitmaps, no columns, TOAST, ANALYZE, compaction.
--
CREATE TABLE fmt (id int PRIMARY KEY, a int, b text, c float8, d int8,
                  e text, f bool, g int2) USING armdb;
CREATE TABLE fmt_heap (id int PRIMARY KEY, a int, b text, c float8, d int8,
                       e text, f bool, g int2);
CREATE INDEX fmt_a ON fmt (a);
-- rows with NULLs in every column but the key, some of them TOASTed
CREATE FUNCTION fmt_rows(lo int, hi int) RETURNS SETOF fmt_heap LANGUAGE sql AS $$
SELECT g, g % 50, CASE WHEN g % 3 = 0 THEN NULL ELSE md5(g::text) END,
       CASE WHEN g % 5 = 0 THEN NULL ELSE g / 7.0 END, g * 1000003::int8,
       CASE WHEN g % 400 = 0 THEN repeat(md5(g::text), 300) END,
       CASE WHEN g % 7 = 0 THEN NULL ELSE g % 2 = 0 END, (g % 300)::int2
FROM generate_series(lo, hi) g
$$;
-- old images first, then new ones, then updates of each kind by the other
SET armdb.debug_full_tuple_images = on;
INSERT INTO fmt SELECT * FROM fmt_rows(1, 3000);
RESET armdb.debug_full_tuple_images;
INSERT INTO fmt SELECT * FROM fmt_rows(3001, 6000);
UPDATE fmt SET b = b || '!', g = NULL WHERE id % 10 = 1;
SET armdb.debug_full_tuple_images = on;
UPDATE fmt SET c = -c, d = NULL WHERE id % 10 = 2;
RESET armdb.debug_full_tuple_images;
DELETE FROM fmt WHERE id % 17 = 0;
INSERT INTO fmt_heap SELECT * FROM fmt;

CREATE FUNCTION fmt_digest(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
  EXECUTE 'SELECT count(*) || '' '' || md5(string_agg(s::text, '','' ORDER BY id)) FROM (' || q || ') s' INTO d;
  RETURN d;
END $$;
CREATE FUNCTION fmt_same(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE a text; h text;
BEGIN
  a := fmt_digest(q);
  h := fmt_digest(replace(q, 'FROM fmt ', 'FROM fmt_heap '));
  RETURN CASE WHEN a = h THEN 'same ' || split_part(a, ' ', 1) || ' rows'
              ELSE 'DIFFERENT: ' || a || ' vs ' || h END;
END $$;

-- sequential, parallel
SET enable_indexscan = off; SET enable_bitmapscan = off;
SELECT fmt_same('SELECT * FROM fmt ');
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
SELECT fmt_same('SELECT * FROM fmt WHERE a < 25');
RESET parallel_setup_cost; RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;
-- index and bitmap scans
SET enable_seqscan = off; SET enable_indexscan = on;
SELECT fmt_same('SELECT * FROM fmt WHERE id BETWEEN 2000 AND 4000');
SET enable_indexscan = off; SET enable_bitmapscan = on;
SELECT fmt_same('SELECT * FROM fmt WHERE a IN (1, 2, 11, 49)');
RESET enable_seqscan; RESET enable_indexscan; RESET enable_bitmapscan;
-- TID range scan over the whole table, and TID scans (fetch by TID)
SELECT fmt_same('SELECT * FROM fmt WHERE ctid >= ''(0,1)''');
SELECT count(*), sum(length(b)), sum(c), sum(d)
FROM fmt WHERE ctid = ANY (ARRAY(SELECT ctid FROM fmt WHERE id % 9 = 4));
SELECT count(*), sum(length(b)), sum(c), sum(d)
FROM fmt_heap WHERE id % 9 = 4;
-- system columns of both kinds: this transaction's rows and older ones
BEGIN;
SET LOCAL armdb.debug_full_tuple_images = on;
INSERT INTO fmt VALUES (10001, 1, 'full');
RESET armdb.debug_full_tuple_images;
INSERT INTO fmt VALUES (10002, 1, 'short');
SELECT id, b, xmin = txid_current()::text::xid AS own_xmin, cmin, xmax,
       ctid = (SELECT ctid FROM fmt f2 WHERE f2.id = fmt.id) AS ctid_ok
FROM fmt WHERE id > 10000 ORDER BY id;
SELECT id, b FROM fmt WHERE ctid = (SELECT ctid FROM fmt WHERE id = 10001)
UNION ALL
SELECT id, b FROM fmt WHERE ctid = (SELECT ctid FROM fmt WHERE id = 10002);
ROLLBACK;
SELECT count(*) FROM fmt WHERE xmin = xmin AND xmax = 0::text::xid AND id % 10 IN (1, 2);
-- a table without columns, whose images are shorter than what is left out
CREATE TABLE fmt_empty () USING armdb;
INSERT INTO fmt_empty DEFAULT VALUES;
SET armdb.debug_full_tuple_images = on;
INSERT INTO fmt_empty DEFAULT VALUES;
RESET armdb.debug_full_tuple_images;
SELECT count(*) FROM fmt_empty;
SELECT count(*) FROM fmt_empty WHERE ctid = ANY (ARRAY(SELECT ctid FROM fmt_empty));
DROP TABLE fmt_empty;
-- a shortened image is 18 bytes shorter on disk
-- bytes of the plain format: an encrypted version has a 16-byte tag more
-- (the suite also runs with armdb.encryption_key_command set)
SET armdb.encrypt_new_tables = off;
CREATE TABLE fmt_size (id int) USING armdb;
INSERT INTO fmt_size SELECT g FROM generate_series(1, 1000) g;
SELECT sum(live_bytes) AS short_bytes FROM armdb_shard_stats('fmt_size');
TRUNCATE fmt_size;
SET armdb.debug_full_tuple_images = on;
INSERT INTO fmt_size SELECT g FROM generate_series(1, 1000) g;
RESET armdb.debug_full_tuple_images;
SELECT sum(live_bytes) AS full_bytes FROM armdb_shard_stats('fmt_size');
DROP TABLE fmt_size;
RESET armdb.encrypt_new_tables;
-- ANALYZE, and a merge of files holding both kinds
ANALYZE fmt;
SELECT reltuples FROM pg_class WHERE relname = 'fmt';
SELECT 1 AS compacted FROM (SELECT count(*) FROM armdb_compact('fmt')) c;  -- (the worker may have merged first)
SELECT fmt_same('SELECT * FROM fmt ');
SET enable_seqscan = off;
SELECT fmt_same('SELECT * FROM fmt WHERE id > 0');
RESET enable_seqscan;
-- only superusers may set it
CREATE ROLE fmt_user;
SET ROLE fmt_user;
SET armdb.debug_full_tuple_images = on;
RESET ROLE;
DROP ROLE fmt_user;
DROP FUNCTION fmt_digest(text), fmt_same(text), fmt_rows(int, int);
DROP TABLE fmt, fmt_heap;
