--
-- armdb tables: what this version supports, and what it refuses
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS armdb;
RESET client_min_messages;

-- basic insert and scan
CREATE TABLE t1 (a int, b text) USING armdb;
SELECT amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE relname = 't1';
SELECT * FROM t1;
INSERT INTO t1 VALUES (1, 'one'), (2, 'two'), (3, NULL);
INSERT INTO t1 SELECT g, 'row ' || g FROM generate_series(4, 10) g;
SELECT * FROM t1 ORDER BY a;
SELECT count(*), sum(a), count(b) FROM t1;
INSERT INTO t1 VALUES (11, 'eleven') RETURNING *;
INSERT INTO t1 SELECT a + 100, b FROM t1 WHERE a <= 2;
SELECT * FROM t1 WHERE a > 10 ORDER BY a;

-- rollback and savepoints
BEGIN;
INSERT INTO t1 VALUES (20, 'rolled back');
SELECT count(*) FROM t1 WHERE a = 20;
ROLLBACK;
SELECT count(*) FROM t1 WHERE a = 20;

BEGIN;
INSERT INTO t1 VALUES (30, 'kept 1');
SAVEPOINT s1;
INSERT INTO t1 VALUES (31, 'undone');
SELECT a, b FROM t1 WHERE a >= 30 ORDER BY a;
ROLLBACK TO SAVEPOINT s1;
SELECT a, b FROM t1 WHERE a >= 30 ORDER BY a;
SAVEPOINT s2;
INSERT INTO t1 VALUES (32, 'kept 2');
RELEASE SAVEPOINT s2;
SAVEPOINT s3;
INSERT INTO t1 VALUES (33, 'undone by error');
SELECT 1 / 0;
ROLLBACK TO SAVEPOINT s3;
SELECT a, b FROM t1 WHERE a >= 30 ORDER BY a;
COMMIT;
SELECT a, b FROM t1 WHERE a >= 30 ORDER BY a;

-- a failed statement leaves nothing behind
INSERT INTO t1 SELECT g, (10 / (g - 42))::text FROM generate_series(40, 45) g;
SELECT count(*) FROM t1 WHERE a BETWEEN 40 AND 45;

-- xmin is the inserting transaction
BEGIN;
INSERT INTO t1 VALUES (50, 'xmin');
SELECT xmin = txid_current()::text::xid AS own_xmin FROM t1 WHERE a = 50;
SELECT count(*) AS others FROM t1 WHERE xmin = txid_current()::text::xid AND a <> 50;
COMMIT;

-- COPY
CREATE TABLE tcopy (id int, name text, val numeric) USING armdb;
COPY tcopy FROM STDIN;
1	alpha	1.5
2	beta	\N
3	gamma	-3.25
\.
COPY tcopy (id, name) FROM STDIN WITH (FORMAT csv);
4,"delta, with comma"
5,
\.
SELECT * FROM tcopy ORDER BY id;
COPY tcopy TO STDOUT;
COPY (SELECT * FROM tcopy ORDER BY id) TO STDOUT WITH (FORMAT csv);
BEGIN;
COPY tcopy FROM STDIN;
6	rolled back	0
\.
ROLLBACK;
SELECT count(*) FROM tcopy;

-- many types and NULLs
CREATE TABLE ttypes (
	i int, bi bigint, si smallint, n numeric, f float8, r real, b bool,
	t text, vc varchar(10), c char(3), j jsonb, by bytea, ts timestamptz,
	d date, u uuid, ia int[], ta text[], iv interval, ip inet
) USING armdb;
INSERT INTO ttypes VALUES
	(1, 9223372036854775807, -32768, 12345678901234567890.123456789, 1.5e300, 3.25, true,
	 'text', 'varchar', 'abc', '{"a": [1, 2, {"b": null}]}', '\xdeadbeef',
	 '2024-02-29 12:34:56.789+00', '2000-01-01', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
	 '{1,2,NULL,4}', '{"x","y z",NULL}', '1 day 2 hours', '192.168.0.1/24'),
	(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL),
	(3, -1, 0, 'NaN', '-Infinity', 0, false, '', '', '', '[]', '\x', '-infinity',
	 'infinity', '00000000-0000-0000-0000-000000000000', '{}', '{}', '0', '::1');
SET timezone = 'UTC';
SELECT * FROM ttypes ORDER BY i;
RESET timezone;
SELECT i, num_nulls(bi, si, n, f, r, b, t, vc, c, j, by, ts, d, u, ia, ta, iv, ip)
FROM ttypes ORDER BY i;
SELECT j -> 'a' -> 2 ->> 'b' IS NULL AS jnull, ia[3] IS NULL AS anull, ia[4],
	length(by), ta[2]
FROM ttypes WHERE i = 1;

-- a row with many columns, NULLs scattered among them
CREATE TABLE twide USING armdb AS
SELECT g AS id, CASE WHEN g % 3 = 0 THEN NULL ELSE g END AS c1,
	CASE WHEN g % 5 = 0 THEN NULL ELSE 'v' || g END AS c2
FROM generate_series(1, 30) g;
SELECT count(*), count(c1), count(c2), sum(c1) FROM twide;

-- a large value: 1 MB of text, and a 3 MB one that compresses badly
CREATE TABLE tbig (id int, v text) USING armdb;
INSERT INTO tbig VALUES (1, repeat('armdb-', 174763));
INSERT INTO tbig SELECT 2, string_agg(md5(g::text), '') FROM generate_series(1, 100000) g;
SELECT id, length(v), md5(v) FROM tbig ORDER BY id;
SELECT md5(repeat('armdb-', 174763)) AS expect1,
	md5(string_agg(md5(g::text), '')) AS expect2 FROM generate_series(1, 100000) g;

-- TRUNCATE: rolled back keeps the rows, committed removes them
CREATE TABLE ttrunc (a int) USING armdb;
INSERT INTO ttrunc SELECT generate_series(1, 100);
BEGIN;
TRUNCATE ttrunc;
SELECT count(*) FROM ttrunc;
INSERT INTO ttrunc VALUES (1000);
SELECT * FROM ttrunc;
ROLLBACK;
SELECT count(*), sum(a) FROM ttrunc;
BEGIN;
SAVEPOINT s;
TRUNCATE ttrunc;
ROLLBACK TO SAVEPOINT s;
SELECT count(*) FROM ttrunc;
COMMIT;
TRUNCATE ttrunc;
SELECT count(*) FROM ttrunc;
INSERT INTO ttrunc VALUES (7);
SELECT * FROM ttrunc;
-- created and truncated in the same transaction
BEGIN;
CREATE TABLE ttrunc2 (a int) USING armdb;
INSERT INTO ttrunc2 VALUES (1);
TRUNCATE ttrunc2;
INSERT INTO ttrunc2 VALUES (2);
COMMIT;
SELECT * FROM ttrunc2;
DROP TABLE ttrunc2;

-- DROP: rolled back keeps the table readable
CREATE TABLE tdrop (a int) USING armdb;
INSERT INTO tdrop SELECT generate_series(1, 50);
BEGIN;
DROP TABLE tdrop;
ROLLBACK;
SELECT count(*), sum(a) FROM tdrop;
BEGIN;
SAVEPOINT s;
DROP TABLE tdrop;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT count(*) FROM tdrop;
INSERT INTO tdrop VALUES (51);
SELECT count(*) FROM tdrop;
DROP TABLE tdrop;
SELECT count(*) FROM tdrop;
-- created and dropped in one transaction, and created in a rolled back one
BEGIN;
CREATE TABLE tdrop2 (a int) USING armdb;
INSERT INTO tdrop2 VALUES (1);
DROP TABLE tdrop2;
COMMIT;
BEGIN;
CREATE TABLE tdrop3 (a int) USING armdb;
INSERT INTO tdrop3 VALUES (1);
ROLLBACK;
SELECT * FROM tdrop3;

-- ALTER TABLE rewrites
CREATE TABLE talter (a int, b text) USING armdb;
INSERT INTO talter SELECT g, 'b' || g FROM generate_series(1, 20) g;
ALTER TABLE talter ADD COLUMN c int DEFAULT 5;
ALTER TABLE talter ADD COLUMN d float8 DEFAULT random();
SELECT count(*), count(DISTINCT d) > 1 AS volatile, min(c), max(c),
	bool_and(d >= 0 AND d < 1) AS in_range FROM talter;
ALTER TABLE talter ALTER COLUMN a TYPE bigint;
ALTER TABLE talter ALTER COLUMN b TYPE varchar(10);
SELECT a, b, c FROM talter ORDER BY a LIMIT 3;
SELECT pg_typeof(a), pg_typeof(b) FROM talter LIMIT 1;
ALTER TABLE talter DROP COLUMN c;
ALTER TABLE talter ALTER COLUMN a TYPE text USING 'x' || a;
SELECT a, b FROM talter ORDER BY b LIMIT 3;
INSERT INTO talter (a, b) VALUES ('new', 'new');
SELECT count(*), count(d) FROM talter;
-- a rewrite rolled back
BEGIN;
ALTER TABLE talter ALTER COLUMN b TYPE text USING upper(b);
SELECT b FROM talter ORDER BY b LIMIT 1;
ROLLBACK;
SELECT b FROM talter ORDER BY b LIMIT 1;
SELECT count(*) FROM talter;

-- SET ACCESS METHOD both ways
CREATE TABLE tam (a int, b text);
INSERT INTO tam SELECT g, 'r' || g FROM generate_series(1, 1000) g;
ALTER TABLE tam SET ACCESS METHOD armdb;
SELECT amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE relname = 'tam';
SELECT count(*), sum(a), md5(string_agg(b, ',' ORDER BY a)) FROM tam;
INSERT INTO tam VALUES (1001, 'r1001');
ALTER TABLE tam SET ACCESS METHOD heap;
SELECT amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE relname = 'tam';
SELECT count(*), sum(a) FROM tam;
BEGIN;
ALTER TABLE tam SET ACCESS METHOD armdb;
INSERT INTO tam VALUES (1002, 'r1002');
ROLLBACK;
SELECT amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE relname = 'tam';
SELECT count(*), sum(a) FROM tam;
ALTER TABLE tam SET ACCESS METHOD armdb;
SELECT count(*), sum(a) FROM tam;
-- CREATE TABLE AS and default_table_access_method
SET default_table_access_method = armdb;
CREATE TABLE tctas AS SELECT * FROM tam WHERE a <= 10;
RESET default_table_access_method;
SELECT amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE relname = 'tctas';
SELECT count(*) FROM tctas;

-- SET TABLESPACE
ALTER TABLE tam SET TABLESPACE pg_default;
SELECT count(*), sum(a) FROM tam;

-- TEMP tables
CREATE TEMP TABLE ttemp (a int, b text) USING armdb;
INSERT INTO ttemp SELECT g, 't' || g FROM generate_series(1, 100) g;
BEGIN;
INSERT INTO ttemp VALUES (101, 'gone');
ROLLBACK;
SELECT count(*), max(a) FROM ttemp;
TRUNCATE ttemp;
INSERT INTO ttemp VALUES (1, 'after truncate');
SELECT * FROM ttemp;
CREATE TEMP TABLE ttemp2 (a int) USING armdb ON COMMIT DELETE ROWS;
BEGIN;
INSERT INTO ttemp2 VALUES (1), (2);
SELECT count(*) FROM ttemp2;
COMMIT;
SELECT count(*) FROM ttemp2;
-- this session's temporary armdb directories: ttemp's and ttemp2's
SELECT count(*) AS temp_dirs FROM pg_ls_dir('armdb/' ||
  (SELECT oid FROM pg_database WHERE datname = current_database())) d
  WHERE d LIKE 't%';
DROP TABLE ttemp, ttemp2;
-- removed at the end of the next transaction (the files of a dropped
-- temporary table go after the dropping transaction's own callbacks)
SELECT 1 AS next_transaction;
SELECT count(*) AS temp_dirs FROM pg_ls_dir('armdb/' ||
  (SELECT oid FROM pg_database WHERE datname = current_database())) d
  WHERE d LIKE 't%';

-- ANALYZE: exact row count for a 10000-row table
CREATE TABLE tstats (a int, b text) USING armdb;
SELECT reltuples FROM pg_class WHERE relname = 'tstats';
INSERT INTO tstats SELECT g, 'v' || (g % 10) FROM generate_series(1, 10000) g;
ANALYZE tstats;
SELECT reltuples FROM pg_class WHERE relname = 'tstats';
SELECT n_distinct, null_frac FROM pg_stats WHERE tablename = 'tstats' AND attname = 'b';
EXPLAIN (COSTS OFF) SELECT * FROM tstats WHERE a = 5;
SELECT * FROM tstats WHERE a = 5;
VACUUM tstats;
VACUUM (ANALYZE) tstats;
VACUUM (FREEZE) tstats;
SELECT reltuples FROM pg_class WHERE relname = 'tstats';
SELECT count(*) FROM tstats;

-- TABLESAMPLE
SELECT count(*) FROM tstats TABLESAMPLE SYSTEM (100);
SELECT count(*) FROM tstats TABLESAMPLE BERNOULLI (100);
SELECT count(*) FROM tstats TABLESAMPLE SYSTEM (0);
SELECT count(*) FROM tstats TABLESAMPLE BERNOULLI (0);
SELECT count(*) BETWEEN 1 AND 9999 AS some_rows FROM tstats TABLESAMPLE BERNOULLI (50) REPEATABLE (42);

-- parallel sequential scan
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT count(*) FROM tstats;
SELECT count(*), sum(a), count(DISTINCT a) FROM tstats;
EXPLAIN (COSTS OFF) SELECT a FROM tstats WHERE a % 1000 = 0;
SELECT a FROM tstats WHERE a % 1000 = 0 ORDER BY a;
-- a table written by one backend is in one shard: the participants share
-- its virtual pages; versions that updates and deletes ended, and rows of
-- this transaction still in the shard's write buffer, are judged as a
-- serial scan judges them
CREATE TABLE tpar (a int, b text) USING armdb;
INSERT INTO tpar SELECT g, repeat('p', g % 50) FROM generate_series(1, 20000) g;
UPDATE tpar SET b = 'updated' WHERE a % 7 = 0;
DELETE FROM tpar WHERE a % 11 = 0;
BEGIN;
INSERT INTO tpar SELECT g, 'mine' FROM generate_series(20001, 21000) g;
DELETE FROM tpar WHERE a % 13 = 0;
EXPLAIN (COSTS OFF) SELECT count(*), sum(a), count(b), sum(length(b)) FROM tpar;
SELECT count(*), sum(a), count(b), sum(length(b)) FROM tpar;
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT count(*), sum(a), count(b), sum(length(b)) FROM tpar;
COMMIT;
DROP TABLE tpar;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- AFTER INSERT row trigger sees NEW
CREATE TABLE ttrig (a int, b text) USING armdb;
CREATE TABLE ttrig_log (a int, b text, op text);
CREATE FUNCTION ttrig_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO ttrig_log VALUES (NEW.a, NEW.b, TG_OP);
	RAISE NOTICE 'trigger saw (%, %)', NEW.a, NEW.b;
	RETURN NULL;
END $$;
CREATE TRIGGER ttrig_after AFTER INSERT ON ttrig FOR EACH ROW EXECUTE FUNCTION ttrig_fn();
INSERT INTO ttrig VALUES (1, 'first'), (2, NULL);
COPY ttrig FROM STDIN;
3	copied
\.
SELECT * FROM ttrig_log ORDER BY a;
SELECT * FROM ttrig ORDER BY a;
-- a statement trigger and a transition table see the rows too
CREATE FUNCTION ttrig_stmt_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'statement inserted % rows', (SELECT count(*) FROM newrows);
	RETURN NULL;
END $$;
CREATE TRIGGER ttrig_stmt AFTER INSERT ON ttrig REFERENCING NEW TABLE AS newrows
	FOR EACH STATEMENT EXECUTE FUNCTION ttrig_stmt_fn();
INSERT INTO ttrig SELECT g, 'g' || g FROM generate_series(10, 12) g;

-- cursors: forward is fine
BEGIN;
DECLARE c CURSOR FOR SELECT a FROM t1 ORDER BY a;
FETCH 2 FROM c;
CLOSE c;
COMMIT;
DO $$
DECLARE
	c NO SCROLL CURSOR FOR SELECT a FROM tstats;
	r record;
	n int := 0;
	s bigint := 0;
BEGIN
	FOR r IN c LOOP
		n := n + 1;
		s := s + r.a;
	END LOOP;
	RAISE NOTICE 'the cursor read % rows, sum %', n, s;
END $$;

-- indexes: a smoke test (PRIMARY KEY, UNIQUE, index scans)
CREATE TABLE tidx (a int PRIMARY KEY, b text UNIQUE, c int) USING armdb;
INSERT INTO tidx SELECT g, 'b' || g, g % 7 FROM generate_series(1, 1000) g;
CREATE INDEX tidx_c ON tidx (c);
INSERT INTO tidx VALUES (1, 'dup', 0);
INSERT INTO tidx VALUES (1001, 'b5', 0);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM tidx WHERE a = 500;
SELECT * FROM tidx WHERE a = 500;
SELECT count(*), sum(a) FROM tidx WHERE c = 3;
RESET enable_seqscan;
SELECT count(*) FROM tidx;

-- UPDATE, DELETE and row locks
CREATE TABLE tdml (id int PRIMARY KEY, n int, v text) USING armdb;
INSERT INTO tdml SELECT g, 0, 'v' || g FROM generate_series(1, 100) g;
UPDATE tdml SET n = n + 1 WHERE id <= 10;
UPDATE tdml SET v = v || '!' WHERE id = 5 RETURNING *;
DELETE FROM tdml WHERE id > 90;
DELETE FROM tdml WHERE id = 50 RETURNING id, n;
SELECT count(*), sum(n), max(id) FROM tdml;
SELECT * FROM tdml WHERE id IN (1, 5, 50, 91) ORDER BY id;
-- the key moves: the old index entry no longer finds a row
UPDATE tdml SET id = 1000 WHERE id = 6;
SELECT id FROM tdml WHERE id IN (6, 1000) ORDER BY id;
UPDATE tdml SET id = 1 WHERE id = 7;
-- rolled back and partly rolled back changes
BEGIN;
UPDATE tdml SET n = 100 WHERE id = 1;
UPDATE tdml SET n = n + 1 WHERE id = 1;
SELECT n FROM tdml WHERE id = 1;
ROLLBACK;
BEGIN;
DELETE FROM tdml WHERE id = 2;
SAVEPOINT s1;
UPDATE tdml SET n = 7 WHERE id = 3;
DELETE FROM tdml WHERE id = 4;
ROLLBACK TO s1;
UPDATE tdml SET n = 8 WHERE id = 8;
COMMIT;
SELECT id, n FROM tdml WHERE id <= 8 ORDER BY id;
-- a row inserted and changed in one transaction (combo command ids)
BEGIN;
INSERT INTO tdml VALUES (200, 0, 'new');
UPDATE tdml SET n = 1 WHERE id = 200;
DECLARE cdml CURSOR FOR SELECT n FROM tdml WHERE id = 200;
UPDATE tdml SET n = 2 WHERE id = 200;
FETCH cdml;
SELECT n FROM tdml WHERE id = 200;
COMMIT;
SELECT * FROM tdml WHERE id = 200;
SELECT id FROM tdml WHERE id = 1 FOR UPDATE;
SELECT id FROM tdml WHERE id = 1 FOR NO KEY UPDATE;
SELECT id FROM tdml WHERE id = 1 FOR UPDATE NOWAIT;
-- an UPDATE that changes nothing still makes a new version
UPDATE tdml SET n = n WHERE id = 9;
SELECT id, n FROM tdml WHERE id = 9;
-- WHERE CURRENT OF follows the row through its own updates
BEGIN;
DECLARE ccur CURSOR FOR SELECT id, n FROM tdml WHERE id = 10 FOR UPDATE;
FETCH 1 FROM ccur;
UPDATE tdml SET n = n + 10 WHERE CURRENT OF ccur;
UPDATE tdml SET n = n + 10 WHERE CURRENT OF ccur RETURNING id, n;
DELETE FROM tdml WHERE CURRENT OF ccur RETURNING id, n;
COMMIT;
SELECT count(*) FROM tdml WHERE id = 10;
-- system columns of new rows, as heap_insert leaves them
BEGIN;
INSERT INTO tdml VALUES (300, 0, 'sys')
  RETURNING xmin = pg_current_xact_id()::xid AS xmin_ok, xmax, cmin;
UPDATE tdml SET n = 1 WHERE id = 300
  RETURNING xmin = pg_current_xact_id()::xid AS xmin_ok, xmax, cmin;
COMMIT;
-- ON CONFLICT touching one row twice in a command
INSERT INTO tdml VALUES (1, 0, 'a'), (1, 0, 'b') ON CONFLICT (id) DO UPDATE SET v = 'x';
INSERT INTO tdml VALUES (301, 0, 'a'), (301, 0, 'b') ON CONFLICT (id) DO UPDATE SET v = 'x';
VACUUM tdml;
SELECT count(*) FROM tdml;
DROP TABLE tdml;

-- row locks of every strength; foreign keys that reference armdb tables
SELECT * FROM t1 WHERE a = 1 FOR SHARE;
SELECT * FROM t1 WHERE a = 1 FOR KEY SHARE;
CREATE TABLE tparent (id int PRIMARY KEY, v text) USING armdb;
CREATE TABLE tchild (id int PRIMARY KEY,
  pid int REFERENCES tparent (id) ON DELETE CASCADE, w int) USING armdb;
INSERT INTO tparent SELECT g, 'p' || g FROM generate_series(1, 5) g;
INSERT INTO tchild VALUES (1, 1, 0), (2, 1, 0), (3, 2, 0);
INSERT INTO tchild VALUES (4, 99, 0);
UPDATE tparent SET v = 'changed' WHERE id = 1;
UPDATE tparent SET id = 10 WHERE id = 2;
UPDATE tparent SET id = 20 WHERE id = 5;
DELETE FROM tparent WHERE id = 1;
SELECT * FROM tchild ORDER BY id;
-- locks in subtransactions: upgraded, kept past a rolled-back change
BEGIN;
SELECT id FROM tparent WHERE id = 3 FOR KEY SHARE;
SAVEPOINT s1;
SELECT id FROM tparent WHERE id = 3 FOR SHARE;
SAVEPOINT s2;
UPDATE tparent SET v = 'sub' WHERE id = 3;
ROLLBACK TO s2;
DELETE FROM tparent WHERE id = 3;
ROLLBACK TO s1;
SELECT id, v FROM tparent WHERE id = 3 FOR UPDATE;
UPDATE tparent SET v = 'locked' WHERE id = 3;
COMMIT;
VACUUM tparent;
SELECT * FROM tparent ORDER BY id;
-- SCROLL cursors move both ways, as over a heap table with the same rows
CREATE TABLE tscroll (a int, b text) USING armdb;
CREATE TABLE tscroll_heap (a int, b text) USING heap;
INSERT INTO tscroll SELECT g, 'r' || g FROM generate_series(1, 2000) g;
INSERT INTO tscroll_heap SELECT * FROM tscroll;
DELETE FROM tscroll WHERE a % 7 = 0;
DELETE FROM tscroll_heap WHERE a % 7 = 0;
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT a FROM tscroll WHERE a > 1990 OR a < 4;
DECLARE h SCROLL CURSOR FOR SELECT a FROM tscroll_heap WHERE a > 1990 OR a < 4;
MOVE FORWARD 2 IN c;
FETCH BACKWARD 1 FROM c;
FETCH LAST FROM c;
FETCH PRIOR FROM c;
FETCH ABSOLUTE 3 FROM c;
FETCH RELATIVE 0 FROM c;
FETCH ABSOLUTE -2 FROM c;
FETCH FORWARD 5 FROM c;
FETCH BACKWARD ALL FROM c;
FETCH FIRST FROM c;
-- every position agrees with heap's
CREATE FUNCTION scroll_walk(cur refcursor) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r record;
  out text := '';
  steps int[] := ARRAY[3, -2, 4, -5, 6, -1, 9, -12, 20, -3];
  n int;
BEGIN
  MOVE ABSOLUTE 0 IN cur;
  FOREACH n IN ARRAY steps LOOP
    FETCH RELATIVE n FROM cur INTO r;
    out := out || coalesce(r.a::text, '-') || ' ';
  END LOOP;
  RETURN out;
END $$;
SELECT scroll_walk('c') = scroll_walk('h') AS same_as_heap, scroll_walk('c');
COMMIT;
-- FETCH LAST on a fresh cursor: to the end, then backwards
BEGIN;
DECLARE c2 SCROLL CURSOR FOR SELECT a FROM tscroll;
FETCH LAST FROM c2;
FETCH BACKWARD 2 FROM c2;
COMMIT;
DROP FUNCTION scroll_walk(refcursor);
DROP TABLE tscroll, tscroll_heap;
-- a heap table may reference an armdb table
CREATE TABLE tref (a int REFERENCES tidx (a));
INSERT INTO tref VALUES (1);
SELECT count(*) FROM tref;
DROP TABLE tref, tchild, tparent;
-- ON CONFLICT: a new key needs a speculative insertion; a conflicting one
-- is found before any insertion, and DO NOTHING then does nothing, as on heap
INSERT INTO tidx VALUES (2000, 'new', 0) ON CONFLICT (a) DO NOTHING;
INSERT INTO tidx VALUES (2000, 'new', 0) ON CONFLICT DO NOTHING;
INSERT INTO tidx VALUES (1, 'x', 0) ON CONFLICT (a) DO NOTHING;
INSERT INTO tidx VALUES (1, 'x', 0) ON CONFLICT (a) DO UPDATE SET b = 'y';
SELECT count(*), max(a) FROM tidx;
SELECT * FROM tidx WHERE a = 1;
-- without any unique index there is no arbiter: a plain INSERT, as on heap
INSERT INTO t1 VALUES (1, 'x') ON CONFLICT DO NOTHING;
-- CREATE INDEX CONCURRENTLY builds a valid index; VACUUM FULL and CLUSTER
-- rewrite the table (the checks below see the same rows)
CREATE INDEX CONCURRENTLY tidx_conc ON tidx (c);
SELECT indisvalid FROM pg_index WHERE indexrelid = 'tidx_conc'::regclass;
DROP INDEX tidx_conc;
VACUUM FULL t1;
VACUUM (FULL, ANALYZE) t1;
CLUSTER tidx USING tidx_pkey;
CREATE UNLOGGED TABLE tunlogged (a int) USING armdb;
ALTER TABLE t1 SET UNLOGGED;
-- nothing changed
SELECT count(*), sum(a) FROM t1;
SELECT count(*) FROM t1 WHERE a = 99;
SELECT count(*), sum(a), sum(c) FROM tidx;
SELECT relname FROM pg_class WHERE relname = 'tunlogged';
SELECT relpersistence FROM pg_class WHERE relname = 't1';
SELECT indexrelid::regclass::text AS index FROM pg_index WHERE indrelid = 'tidx'::regclass
ORDER BY 1;

-- UPDATE moving rows between partitions
CREATE TABLE tpart (k int, v text) PARTITION BY RANGE (k);
CREATE TABLE tpart1 PARTITION OF tpart FOR VALUES FROM (0) TO (100) USING armdb;
CREATE TABLE tpart2 PARTITION OF tpart FOR VALUES FROM (100) TO (200) USING armdb;
INSERT INTO tpart VALUES (1, 'a'), (2, 'b'), (150, 'c');
UPDATE tpart SET k = k + 100 WHERE k = 1 RETURNING tableoid::regclass, *;
SELECT tableoid::regclass, * FROM tpart ORDER BY k;
DROP TABLE tpart;
-- BRIN: built, and new ranges summarized
CREATE TABLE tbrin (id int, v int) USING armdb;
INSERT INTO tbrin SELECT g, g FROM generate_series(1, 3000) g;
CREATE INDEX tbrin_v ON tbrin USING brin (v) WITH (pages_per_range = 1);
INSERT INTO tbrin SELECT g, g FROM generate_series(3001, 6000) g;
SELECT brin_summarize_new_values('tbrin_v') > 0 AS summarized;
DROP TABLE tbrin;

-- clean up
DROP TABLE t1, tcopy, ttypes, twide, tbig, ttrunc, talter, tam, tctas, tstats,
	ttrig, ttrig_log, tidx, tunlogged;
DROP FUNCTION ttrig_fn(), ttrig_stmt_fn();
