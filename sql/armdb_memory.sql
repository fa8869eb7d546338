--
-- Shared memory of small tables (issue 15): a table's key directory holds
-- what its rows use -- a page directory that grows with the table, and
-- write buffers that start at 16 kB and double as a shard's appends need,
-- up to armdb.write_buffer_size
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS armdb;
RESET client_min_messages;

-- 50 tables of one row each
DO $$
BEGIN
	FOR i IN 1..50 LOOP
		EXECUTE format('CREATE TABLE mem_small_%s (id int, v text) USING armdb', i);
		EXECUTE format('INSERT INTO mem_small_%s VALUES (%s, ''one row'')', i, i);
	END LOOP;
END $$;
-- each: a virtual page of 291 version records (9.3 kB), a 16 kB write
-- buffer, a page directory chunk and the shards' states
SELECT count(*) AS tables,
	max(armdb_keydir_size(c.oid)) < 40 * 1024 AS each_under_40kB,
	sum(armdb_keydir_size(c.oid)) < 50 * 40 * 1024 AS all_under_2MB
FROM pg_class c WHERE c.relname LIKE 'mem_small_%';
SELECT * FROM mem_small_1 UNION ALL SELECT * FROM mem_small_50;

-- a table written one row per transaction, each written out at its commit
-- (an unlogged table's are; a logged table's wait for the flusher, WAL
-- holding them): its buffer holds little that is not written out yet, and
-- stays at 16 kB (two pages of versions, the buffer, the rest: 43 kB)
CREATE UNLOGGED TABLE mem_commits (id int, v text) USING armdb;
DO $$
BEGIN
	FOR i IN 1..400 LOOP
		INSERT INTO mem_commits VALUES (i, repeat('c', 100));
		COMMIT;
	END LOOP;
END $$;
SELECT count(*), sum(id) FROM mem_commits;
SELECT armdb_keydir_size('mem_commits') < 48 * 1024 AS commits_small;

-- a table written in bulk: its shard's buffer grew to write_buffer_size
-- (128 kB), and every row reads back
CREATE TABLE mem_big (id int, v text) USING armdb;
CREATE TABLE mem_big_heap (id int, v text);
INSERT INTO mem_big SELECT g, repeat('x', g % 200) FROM generate_series(1, 100000) g;
INSERT INTO mem_big_heap SELECT * FROM mem_big;
SELECT max(keydir_bytes) >= 128 * 1024 AS buffer_grew
FROM armdb_shard_stats('mem_big');
SELECT count(*), sum(id), sum(length(v)) FROM mem_big;
SELECT count(*) FROM (SELECT * FROM mem_big EXCEPT SELECT * FROM mem_big_heap) d;
DO $$
BEGIN
	FOR i IN 1..50 LOOP
		EXECUTE format('DROP TABLE mem_small_%s', i);
	END LOOP;
END $$;
DROP TABLE mem_big, mem_big_heap, mem_commits;
