--
-- ANALYZE of armdb tables whose virtual pages reach past the first 1 GB
-- segment of their (empty) main fork: PostgreSQL's ANALYZE prefetches the
-- blocks it samples from the main fork, which md.c refuses beyond a short
-- first segment unless armdb turns prefetching off (armdb_scan.c)
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS armdb;
RESET client_min_messages;

-- block numbers are dense: a table reaches past RELSEG_SIZE (131072) at
-- 38 million rows; armdb.debug_first_page (test only) leaves blocks below
-- 131000 empty instead, so that 160000 rows reach block 131550
CREATE TABLE sparse_parent (id int, v int) PARTITION BY RANGE (id);
CREATE TABLE sparse_pages PARTITION OF sparse_parent
	FOR VALUES FROM (MINVALUE) TO (MAXVALUE) USING armdb;
SET armdb.debug_first_page = 131000;
INSERT INTO sparse_parent SELECT g, g % 10 FROM generate_series(1, 160000) g;
RESET armdb.debug_first_page;
SELECT max((ctid::text::point)[0]) > 131072 AS past_first_segment,
	pg_relation_size('sparse_pages') AS main_fork_bytes
FROM sparse_pages;

-- prefetching on, as by default
SET maintenance_io_concurrency = 10;
ANALYZE sparse_pages;
-- (only 550 of 131550 virtual pages hold rows, so the estimate varies
-- between runs)
SELECT relpages > 131072 AS relpages_past_first_segment,
	reltuples BETWEEN 80000 AND 320000 AS reltuples_close
FROM pg_class WHERE relname = 'sparse_pages';
SELECT attname, null_frac, n_distinct FROM pg_stats
WHERE tablename = 'sparse_pages' ORDER BY attname;

-- the setting is back once ANALYZE is done, also inside a transaction
SHOW maintenance_io_concurrency;
BEGIN;
ANALYZE sparse_pages;
SHOW maintenance_io_concurrency;
COMMIT;
SHOW maintenance_io_concurrency;

-- VACUUM ANALYZE, and the partitioned parent (its children are sampled
-- through acquire_inherited_sample_rows)
VACUUM ANALYZE sparse_pages;
ANALYZE sparse_parent;
SELECT tablename, attname, n_distinct FROM pg_stats
WHERE tablename IN ('sparse_parent', 'sparse_pages') AND attname = 'v'
ORDER BY tablename;
SHOW maintenance_io_concurrency;

-- a tablespace that sets maintenance_io_concurrency itself overrides the
-- setting: ANALYZE is refused with a hint, instead of failing in md.c
SET allow_in_place_tablespaces = on;
CREATE TABLESPACE regress_armdb_prefetch LOCATION '';
RESET allow_in_place_tablespaces;
ALTER TABLESPACE regress_armdb_prefetch SET (maintenance_io_concurrency = 5);
ALTER TABLE sparse_pages SET TABLESPACE regress_armdb_prefetch;
ANALYZE sparse_pages;
ALTER TABLESPACE regress_armdb_prefetch RESET (maintenance_io_concurrency);
ANALYZE sparse_pages;
ALTER TABLE sparse_pages SET TABLESPACE pg_default;
DROP TABLESPACE regress_armdb_prefetch;

-- the planner sees the table's virtual pages and ANALYZE's row count
EXPLAIN (COSTS OFF) SELECT * FROM sparse_pages WHERE id = 5;
SELECT count(*) FROM sparse_pages WHERE v = 3;

DROP TABLE sparse_parent;
RESET maintenance_io_concurrency;
