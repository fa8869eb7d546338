--
-- Wide rows are compressed as heap's TOAST compresses them, and stay inline
-- (compress_tuple, armdb_modify.c): the same columns, the same method, the
-- same compressed sizes as a heap twin, by every way in -- INSERT, COPY,
-- UPDATE, values out of line in a heap table, rewrites -- and every read
-- gives the same values back.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS armdb;
RESET client_min_messages;

-- one column of each storage and method; heap's twin has the same
CREATE TABLE cz (id int PRIMARY KEY, p text, l text COMPRESSION lz4,
                 m text, e text, pl text, j jsonb, n int) USING armdb;
ALTER TABLE cz ALTER m SET STORAGE MAIN, ALTER e SET STORAGE EXTERNAL,
	ALTER pl SET STORAGE PLAIN;
CREATE TABLE cz_heap (LIKE cz INCLUDING ALL) USING heap;

-- rows: narrow; one wide compressible value per column; two medium ones
-- that are wide only together; incompressible (md5 digests); NULLs beside
-- a wide value; a value that stays wide once compressed
CREATE FUNCTION cz_rows() RETURNS SETOF cz_heap LANGUAGE sql AS $$
SELECT 1, 'narrow', 'narrow', 'narrow', 'narrow', 'narrow', '{}'::jsonb, 1
UNION ALL SELECT 2, repeat('pglz ', 2000), NULL, NULL, NULL, NULL, NULL, 2
UNION ALL SELECT 3, NULL, repeat('lz4 ', 2000), NULL, NULL, NULL, NULL, 3
UNION ALL SELECT 4, NULL, NULL, repeat('main ', 2000), NULL, NULL, NULL, 4
UNION ALL SELECT 5, NULL, NULL, NULL, repeat('external ', 1000), NULL, NULL, 5
UNION ALL SELECT 6, NULL, NULL, NULL, NULL, repeat('plain ', 1000), NULL, 6
UNION ALL SELECT 7, NULL, NULL, NULL, NULL, NULL,
    (SELECT jsonb_object_agg('key' || g, repeat('v', 20)) FROM generate_series(1, 300) g), 7
UNION ALL SELECT 8, repeat('half ', 250), repeat('half ', 250), repeat('half ', 250),
    NULL, NULL, NULL, 8
UNION ALL SELECT 9, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 200) g),
    NULL, NULL, NULL, NULL, NULL, 9
UNION ALL SELECT 10, NULL, repeat('x', 3000), NULL, NULL, NULL, NULL, NULL
UNION ALL SELECT 11, NULL, (SELECT repeat(string_agg(md5(g::text), ''), 2) FROM generate_series(1, 200) g),
    NULL, NULL, NULL, NULL, 11
$$;

-- what each value of a table is: its method and its stored size (of
-- values under 2000 bytes: heap's size of a value it stores out of line
-- leaves out the 4-byte header armdb's inline value has)
CREATE FUNCTION cz_stored(rel regclass)
RETURNS TABLE (id int, col text, method text, stored int, md5 text)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY EXECUTE format($q$
		SELECT id, c.col, c.method,
		       CASE WHEN c.stored < 2000 THEN c.stored END, md5(c.v)
		FROM %s,
		LATERAL (VALUES
			('p', pg_column_compression(p), pg_column_size(p), p),
			('l', pg_column_compression(l), pg_column_size(l), l),
			('m', pg_column_compression(m), pg_column_size(m), m),
			('e', pg_column_compression(e), pg_column_size(e), e),
			('pl', pg_column_compression(pl), pg_column_size(pl), pl),
			('j', pg_column_compression(j), pg_column_size(j), j::text))
			AS c(col, method, stored, v)
		WHERE c.v IS NOT NULL$q$, rel);
END
$$;

-- the values armdb and heap store differently (none), and what they are
CREATE FUNCTION cz_differences(a regclass, b regclass) RETURNS bigint
LANGUAGE sql AS $$
SELECT count(*) FROM (
	(SELECT * FROM cz_stored(a) EXCEPT ALL SELECT * FROM cz_stored(b))
	UNION ALL
	(SELECT * FROM cz_stored(b) EXCEPT ALL SELECT * FROM cz_stored(a))) d
$$;

INSERT INTO cz SELECT * FROM cz_rows();
INSERT INTO cz_heap SELECT * FROM cz_rows();
SELECT cz_differences('cz', 'cz_heap');
SELECT id, col, method, pg_column_size(v) AS stored, length(v) AS length
FROM cz_stored('cz') s
JOIN LATERAL (SELECT CASE s.col WHEN 'p' THEN p WHEN 'l' THEN l WHEN 'm' THEN m
	WHEN 'e' THEN e WHEN 'pl' THEN pl END AS v FROM cz WHERE cz.id = s.id) v
	ON s.col <> 'j'
ORDER BY id, col;

-- reads: sequential scan, index scan, slices of compressed values
SELECT id, length(p), length(l), length(m), length(e), length(pl),
       length(j::text), substr(p, 4998, 6), substr(l, 7990, 8)
FROM cz ORDER BY id;
SET enable_seqscan = off;
SELECT id, md5(p), md5(l), md5(j::text) FROM cz WHERE id IN (2, 3, 7, 9);
RESET enable_seqscan;

-- an UPDATE of another column keeps the values compressed; one of the
-- value itself compresses it anew
UPDATE cz SET n = n + 100;
UPDATE cz_heap SET n = n + 100;
UPDATE cz SET p = p || 'more' WHERE id = 2;
UPDATE cz_heap SET p = p || 'more' WHERE id = 2;
UPDATE cz SET p = repeat('new ', 2000), e = NULL WHERE id = 1;
UPDATE cz_heap SET p = repeat('new ', 2000), e = NULL WHERE id = 1;
SELECT cz_differences('cz', 'cz_heap');

-- values stored out of line in heap's TOAST table (compressed or not) come
-- in as heap stored them
CREATE TABLE cz_from_heap (LIKE cz INCLUDING ALL) USING armdb;
INSERT INTO cz_from_heap SELECT * FROM cz_heap;
SELECT cz_differences('cz_from_heap', 'cz_heap');
SELECT id, col, method FROM cz_stored('cz_from_heap')
WHERE method IS NOT NULL ORDER BY id, col;

-- COPY (multi-insert), with the session's default method
SET default_toast_compression = lz4;
CREATE TABLE cz_copy (LIKE cz INCLUDING ALL) USING armdb;
CREATE TABLE cz_copy_heap (LIKE cz INCLUDING ALL) USING heap;
\copy (SELECT * FROM cz_rows()) TO '/tmp/armdb_compression.copy'
\copy cz_copy FROM '/tmp/armdb_compression.copy'
\copy cz_copy_heap FROM '/tmp/armdb_compression.copy'
\! rm -f /tmp/armdb_compression.copy
RESET default_toast_compression;
SELECT cz_differences('cz_copy', 'cz_copy_heap');
SELECT id, col, method FROM cz_stored('cz_copy')
WHERE method IS NOT NULL ORDER BY id, col;

-- toast_tuple_target: a row under it is left as it is, as on heap
CREATE TABLE cz_target (LIKE cz INCLUDING ALL) USING armdb
	WITH (toast_tuple_target = 8160);
CREATE TABLE cz_target_heap (LIKE cz INCLUDING ALL) USING heap
	WITH (toast_tuple_target = 8160);
INSERT INTO cz_target SELECT * FROM cz_rows() WHERE id IN (2, 8, 9);
INSERT INTO cz_target_heap SELECT * FROM cz_rows() WHERE id IN (2, 8, 9);
SELECT cz_differences('cz_target', 'cz_target_heap');
SELECT id, col, method FROM cz_stored('cz_target') ORDER BY id, col;

-- rewrites keep or redo the compression as heap's do
VACUUM FULL cz;
VACUUM FULL cz_heap;
SELECT cz_differences('cz', 'cz_heap');
CLUSTER cz USING cz_pkey;
SELECT cz_differences('cz', 'cz_heap');
ALTER TABLE cz ALTER COLUMN p SET COMPRESSION lz4;
ALTER TABLE cz_heap ALTER COLUMN p SET COMPRESSION lz4;
ALTER TABLE cz ALTER COLUMN n TYPE bigint;
ALTER TABLE cz_heap ALTER COLUMN n TYPE bigint;
SELECT cz_differences('cz', 'cz_heap');
SELECT id, col, method FROM cz_stored('cz') WHERE col = 'p' ORDER BY id;
ALTER TABLE cz SET ACCESS METHOD heap;
SELECT cz_differences('cz', 'cz_heap');
ALTER TABLE cz SET ACCESS METHOD armdb;
SELECT cz_differences('cz', 'cz_heap');
SELECT count(*) FROM cz JOIN cz_heap h USING (id)
WHERE (cz.*)::text IS DISTINCT FROM (h.*)::text;

-- bytes on disk: 2000 rows of 10 kB compressible text take a fraction
CREATE TABLE cz_size (id int, t text) USING armdb;
INSERT INTO cz_size SELECT g, repeat(g::text || ' words ', 1000)
FROM generate_series(1, 2000) g;
SELECT sum(length(t)) AS raw_bytes, armdb_relation_size('cz_size') < 1000000 AS small
FROM cz_size;

DROP FUNCTION cz_differences(regclass, regclass);
DROP FUNCTION cz_stored(regclass);
DROP FUNCTION cz_rows();
DROP TABLE cz, cz_heap, cz_from_heap, cz_copy, cz_copy_heap, cz_target,
	cz_target_heap, cz_size;
