--
-- armdb tables have the TOAST table heap would have -- empty, since armdb
-- stores values inline -- so that ALTER TABLE ... SET ACCESS METHOD heap
-- works for rows wider than a heap page (armdb_handler.c)
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS armdb;
RESET client_min_messages;

-- what a table's TOAST table looks like: its access method, and how many
-- values it holds
CREATE FUNCTION toast_of(rel regclass, OUT toast_am name, OUT toast_values bigint)
LANGUAGE plpgsql AS $$
DECLARE
	toast regclass;
BEGIN
	SELECT t.oid, am.amname INTO toast, toast_am
	FROM pg_class c
	JOIN pg_class t ON t.oid = c.reltoastrelid
	JOIN pg_am am ON am.oid = t.relam
	WHERE c.oid = rel;
	IF toast IS NOT NULL THEN
		EXECUTE format('SELECT count(DISTINCT chunk_id) FROM %s', toast)
		INTO toast_values;
	END IF;
END
$$;

-- as heap decides: variable-width columns get one, fixed-width ones none
CREATE TABLE narrow (a int, b float8) USING armdb;
SELECT * FROM toast_of('narrow');
DROP TABLE narrow;

-- wide incompressible values: 64000 and 1024000 bytes of md5 digests, which
-- pglz cannot compress, so heap must store them out of line
CREATE TABLE wide (id int PRIMARY KEY, v text, j jsonb) USING armdb;
SELECT * FROM toast_of('wide');
INSERT INTO wide SELECT 1, string_agg(md5(g::text), ''), NULL
FROM generate_series(1, 2000) g;
INSERT INTO wide SELECT 2, string_agg(md5(g::text), ''),
	jsonb_build_object('k', string_agg(md5((-g)::text), ''))
FROM generate_series(1, 32000) g;
INSERT INTO wide VALUES (3, 'short', '{}');
CREATE TEMP TABLE wide_want AS
	SELECT id, md5(v) AS v_md5, length(v) AS v_len, md5(j::text) AS j_md5
	FROM wide;
-- armdb kept the values inline: its TOAST table is still empty
SELECT id, pg_column_size(v) >= length(v) AS inline FROM wide ORDER BY id;
SELECT * FROM toast_of('wide');

-- armdb -> heap: the three wide values move out of line into the TOAST
-- table
ALTER TABLE wide SET ACCESS METHOD heap;
SELECT amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam
WHERE c.oid = 'wide'::regclass;
SELECT * FROM toast_of('wide');
SELECT count(*) AS differing FROM wide FULL JOIN wide_want w USING (id)
WHERE w.v_md5 IS DISTINCT FROM md5(wide.v) OR w.v_len IS DISTINCT FROM length(wide.v)
	OR w.j_md5 IS DISTINCT FROM md5(wide.j::text);
UPDATE wide SET v = v || 'x' WHERE id = 1;
UPDATE wide SET v = left(v, -1) WHERE id = 1;

-- heap -> armdb: detoasted on the way in, the heap TOAST data gone
ALTER TABLE wide SET ACCESS METHOD armdb;
SELECT * FROM toast_of('wide');
SELECT count(*) AS differing FROM wide FULL JOIN wide_want w USING (id)
WHERE w.v_md5 IS DISTINCT FROM md5(wide.v) OR w.v_len IS DISTINCT FROM length(wide.v)
	OR w.j_md5 IS DISTINCT FROM md5(wide.j::text);
SET enable_seqscan = off;
SELECT id, length(v) FROM wide WHERE id = 2;
RESET enable_seqscan;

-- and once more, after the maintenance commands that touch TOAST tables
VACUUM wide;
VACUUM FULL wide;
CLUSTER wide USING wide_pkey;
SELECT * FROM toast_of('wide');
ALTER TABLE wide SET ACCESS METHOD heap;
ALTER TABLE wide SET ACCESS METHOD armdb;
SELECT count(*) AS differing FROM wide FULL JOIN wide_want w USING (id)
WHERE w.v_md5 IS DISTINCT FROM md5(wide.v) OR w.v_len IS DISTINCT FROM length(wide.v)
	OR w.j_md5 IS DISTINCT FROM md5(wide.j::text);
TRUNCATE wide;
SELECT * FROM toast_of('wide');
INSERT INTO wide SELECT 1, string_agg(md5(g::text), '') FROM generate_series(1, 2000) g;
ALTER TABLE wide SET ACCESS METHOD heap;
SELECT md5(v) = (SELECT v_md5 FROM wide_want WHERE id = 1) AS same FROM wide;
DROP TABLE wide;

-- a table created before armdb tables had TOAST tables: simulated by
-- detaching its TOAST table (renamed, so that the name is free; it is
-- still dropped with the table).  The first ALTER TABLE gives it one.
CREATE TABLE wide_old (id int, v text) USING armdb;
UPDATE pg_class SET relname = relname || '_detached'
WHERE oid = (SELECT reltoastrelid FROM pg_class WHERE oid = 'wide_old'::regclass)
	OR oid = (SELECT indexrelid FROM pg_index i JOIN pg_class c
			  ON c.reltoastrelid = i.indrelid WHERE c.oid = 'wide_old'::regclass);
UPDATE pg_class SET reltoastrelid = 0 WHERE oid = 'wide_old'::regclass;
SELECT * FROM toast_of('wide_old');
INSERT INTO wide_old SELECT 1, string_agg(md5(g::text), '') FROM generate_series(1, 2000) g;
VACUUM FULL wide_old;
SELECT * FROM toast_of('wide_old');
ALTER TABLE wide_old SET ACCESS METHOD heap;
SELECT * FROM toast_of('wide_old');
SELECT md5(v) = (SELECT v_md5 FROM wide_want WHERE id = 1) AS same FROM wide_old;
ALTER TABLE wide_old SET ACCESS METHOD armdb;
SELECT md5(v) = (SELECT v_md5 FROM wide_want WHERE id = 1) AS same FROM wide_old;
DROP TABLE wide_old;
SELECT count(*) AS leftovers FROM pg_class WHERE relname LIKE 'pg_toast%detached';

-- partitions change access method one by one (PostgreSQL 15 refuses it
-- for the partitioned table itself)
CREATE TABLE wide_parted (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE wide_p1 PARTITION OF wide_parted FOR VALUES FROM (0) TO (10) USING armdb;
CREATE TABLE wide_p2 PARTITION OF wide_parted FOR VALUES FROM (10) TO (20) USING armdb;
INSERT INTO wide_parted SELECT i, string_agg(md5((g + i)::text), '')
FROM generate_series(1, 2000) g, (VALUES (1), (11)) AS ids(i) GROUP BY i;
CREATE TEMP TABLE parted_want AS SELECT id, md5(v) AS v_md5 FROM wide_parted;
ALTER TABLE wide_p1 SET ACCESS METHOD heap;
ALTER TABLE wide_p2 SET ACCESS METHOD heap;
SELECT c.relname, t.* FROM pg_class c, toast_of(c.oid) t
WHERE c.relname IN ('wide_p1', 'wide_p2') ORDER BY 1;
SELECT count(*) AS differing FROM wide_parted FULL JOIN parted_want w USING (id)
WHERE w.v_md5 IS DISTINCT FROM md5(wide_parted.v);
ALTER TABLE wide_p1 SET ACCESS METHOD armdb;
ALTER TABLE wide_p2 SET ACCESS METHOD armdb;
SELECT count(*) AS differing FROM wide_parted FULL JOIN parted_want w USING (id)
WHERE w.v_md5 IS DISTINCT FROM md5(wide_parted.v);
DROP TABLE wide_parted;

-- unlogged and temporary tables, and materialized views
CREATE UNLOGGED TABLE wide_unlogged USING armdb AS
	SELECT 1 AS id, string_agg(md5(g::text), '') AS v FROM generate_series(1, 2000) g;
CREATE TEMP TABLE wide_temp USING armdb AS SELECT * FROM wide_unlogged;
CREATE MATERIALIZED VIEW wide_mv USING armdb AS SELECT * FROM wide_unlogged;
ALTER TABLE wide_unlogged SET ACCESS METHOD heap;
ALTER TABLE wide_temp SET ACCESS METHOD heap;
ALTER MATERIALIZED VIEW wide_mv SET ACCESS METHOD heap;
SELECT md5(v) = (SELECT v_md5 FROM wide_want WHERE id = 1) AS same FROM wide_unlogged
UNION ALL
SELECT md5(v) = (SELECT v_md5 FROM wide_want WHERE id = 1) FROM wide_temp
UNION ALL
SELECT md5(v) = (SELECT v_md5 FROM wide_want WHERE id = 1) FROM wide_mv;
SELECT c.relname, c.relpersistence, t.relpersistence AS toast_persistence
FROM pg_class c JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.relname IN ('wide_unlogged', 'wide_temp', 'wide_mv') ORDER BY 1;
DROP MATERIALIZED VIEW wide_mv;
DROP TABLE wide_unlogged, wide_temp;
DROP FUNCTION toast_of(regclass);
