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
-- each: a virtual page of 291 version records (6.3 kB), a 16 kB write
-- buffer, a page directory chunk and the shards' states
SELECT count(*) AS tables,
	max(armdb_keydir_size(c.oid)) < 40 * 1024 AS each_under_40kB,
	sum(armdb_keydir_size(c.oid)) < 50 * 40 * 1024 AS all_under_2MB
FROM pg_class c WHERE c.relname LIKE 'mem_small_%';
SELECT * FROM mem_small_1 UNION ALL SELECT * FROM mem_small_50;
-- the statistics view says what each takes, as the DSA area counts it: a
-- page of its own (6,432 bytes, 6,552 as DSA rounds them) with its side
-- array of command ids and links (3,640: the row's insert was not the DO
-- block's first command), the buffer, and the rest (shard states, page
-- directory, file lists)
SELECT relation, temporary, loaded, shards, versions, pages, page_bytes,
	buffer_bytes, other_bytes < 8192 AS other_small,
	total_bytes = armdb_keydir_size(relation) AS same_as_keydir_size
FROM armdb_memory_tables
WHERE database_name = current_database() AND relation::text = 'mem_small_1';
-- once VACUUM sees the insert committed, nobody reads its command id again:
-- the side array goes
VACUUM mem_small_1;
SELECT pages, page_bytes FROM armdb_memory_tables
WHERE database_name = current_database() AND relation::text = 'mem_small_1';
SELECT ctid, * FROM mem_small_1;
-- a table never written holds only its states
CREATE TABLE mem_empty (id int) USING armdb;
SELECT count(*) FROM mem_empty;
SELECT versions, pages, page_bytes, buffer_bytes, total_bytes < 4096 AS under_4kB
FROM armdb_memory_tables
WHERE database_name = current_database() AND relation = 'mem_empty'::regclass;

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
-- pages past a table's first seven come from 44 kB blocks of seven: about
-- 22 bytes per version (a page of its own takes 22.5); one INSERT wrote
-- them, in its first command, so no page has a side array
SELECT versions, pages,
	page_bytes::numeric / versions BETWEEN 22 AND 23 AS page_bytes_per_version
FROM armdb_memory_tables
WHERE database_name = current_database() AND relation = 'mem_big'::regclass;

-- a row of 64 kB or more keeps its length in its page's side array, which
-- VACUUM then keeps; once that row is gone, VACUUM frees the side array
CREATE TABLE mem_long (id int, v text) USING armdb;
INSERT INTO mem_long
	SELECT 1, string_agg(md5(i::text), '') FROM generate_series(1, 5000) i;
INSERT INTO mem_long VALUES (2, 'short');
VACUUM mem_long;
SELECT pages, page_bytes FROM armdb_memory_tables
WHERE database_name = current_database() AND relation = 'mem_long'::regclass;
SELECT id, length(v), md5(v) = (SELECT md5(string_agg(md5(i::text), ''))
								FROM generate_series(1, 5000) i) AS same
FROM mem_long ORDER BY id;
UPDATE mem_long SET id = 3 WHERE id = 1;
SELECT id, length(v), ctid FROM mem_long ORDER BY id;
SELECT id, length(v) FROM mem_long WHERE ctid = '(0,1)';
DELETE FROM mem_long WHERE id = 3;
VACUUM mem_long;
SELECT pages, page_bytes FROM armdb_memory_tables
WHERE database_name = current_database() AND relation = 'mem_long'::regclass;
SELECT id, length(v) FROM mem_long ORDER BY id;

-- the total against armdb.memory (a reload changes it; see t/040)
SELECT limit_bytes = pg_size_bytes(current_setting('armdb.memory')) AS limit_is_setting,
	initial_bytes = pg_size_bytes(current_setting('armdb.memory_initial')) AS initial_is_setting,
	used_bytes >= (SELECT sum(total_bytes) FROM armdb_memory_tables
				   WHERE database_name = current_database()) AS used_counts_tables,
	free_bytes = limit_bytes - used_bytes AS free_is_rest,
	tables >= 54 AS tables_counted
FROM armdb_memory;
DO $$
BEGIN
	FOR i IN 1..50 LOOP
		EXECUTE format('DROP TABLE mem_small_%s', i);
	END LOOP;
END $$;
DROP TABLE mem_big, mem_big_heap, mem_commits, mem_empty, mem_long;
-- dropped tables give their memory back
SELECT count(*) FROM armdb_memory_tables
WHERE database_name = current_database() AND relation::text LIKE 'mem_%';
