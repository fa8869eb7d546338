--
-- armdb_compact(): merging a table's immutable files drops the dead
-- versions and keeps every row, its index entries and its scans as they
-- were (src/compact/compact.c, src/storage/merge.c)
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS armdb;
RESET client_min_messages;

-- Small data files, so that a few thousand rows fill many immutable ones,
-- and no background compaction racing the test.  Both can only change at a
-- reload; a backend sees a reload before its next command.
ALTER SYSTEM SET armdb.max_file_size = '64kB';
ALTER SYSTEM SET armdb.compaction = off;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SHOW armdb.max_file_size;
SHOW armdb.compaction;

-- what compaction had done before this test (the statistics are the
-- server's)
CREATE TEMP TABLE stats_before AS SELECT * FROM armdb_compaction_stats();

-- the rows of a table, order and content, in one value
CREATE FUNCTION cmp_fingerprint(tbl regclass,
	OUT nrows bigint, OUT total bigint, OUT digest text)
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('SELECT count(*), sum(n), md5(string_agg(id || '':'' || v || '':'' || n, '','' ORDER BY id)) FROM %s', tbl)
	INTO nrows, total, digest;
END
$$;

-- 5000 rows, each updated ten times, a tenth of them deleted: eleven
-- versions of each row, of which only the last is live
CREATE TABLE cmp (id int PRIMARY KEY, v text, n int) USING armdb;
INSERT INTO cmp SELECT g, md5(g::text), 0 FROM generate_series(1, 5000) g;
UPDATE cmp SET n = n + 1, v = md5(v);
UPDATE cmp SET n = n + 1, v = md5(v);
UPDATE cmp SET n = n + 1, v = md5(v);
UPDATE cmp SET n = n + 1, v = md5(v);
UPDATE cmp SET n = n + 1, v = md5(v);
UPDATE cmp SET n = n + 1, v = md5(v);
UPDATE cmp SET n = n + 1, v = md5(v);
UPDATE cmp SET n = n + 1, v = md5(v);
UPDATE cmp SET n = n + 1, v = md5(v);
UPDATE cmp SET n = n + id % 7, v = md5(v);
DELETE FROM cmp WHERE id % 10 = 3;

CREATE TEMP TABLE fp_before AS SELECT * FROM cmp_fingerprint('cmp');
SELECT nrows, total FROM fp_before;

-- the same rows, written once
CREATE TABLE cmp_fresh USING armdb AS SELECT * FROM cmp;
SELECT fp.digest = fp_before.digest AS same_rows
FROM cmp_fingerprint('cmp_fresh') fp, fp_before;

-- before VACUUM the old versions are still needed by nobody, but are not
-- counted as dead yet; VACUUM counts them
VACUUM cmp;
CREATE TEMP TABLE files_before AS SELECT * FROM armdb_file_stats('cmp');
SELECT count(*) > 20 AS many_files,
	   count(*) FILTER (WHERE NOT active AND dead_bytes > 0) > 20 AS many_with_dead_bytes,
	   sum(dead_bytes) > sum(bytes) / 2 AS mostly_dead,
	   count(*) FILTER (WHERE active) = 1 AS one_active,
	   bool_and(has_hint) FILTER (WHERE NOT active) AS sealed_have_hints,
	   bool_or(merged) AS any_merged
FROM files_before;
SELECT armdb_relation_size('cmp') > 3 * armdb_relation_size('cmp_fresh') AS bloated;

-- every immutable file with dead bytes is merged, in merges of at most four
-- files each; the active file is not touched
SELECT c.merges > 1 AS several_merges,
	   c.files_in = (SELECT count(*) FROM files_before WHERE NOT active AND dead_bytes > 0) AS all_inputs,
	   c.files_out BETWEEN 1 AND c.files_in / 2 AS fewer_outputs,
	   c.entries_kept >= (SELECT count(*) FROM cmp) - 600 AS live_kept,
	   c.bytes_after < c.bytes_before / 3 AS shrunk,
	   c.duration_ms >= 0 AS timed
FROM armdb_compact('cmp') c;

SELECT armdb_relation_size('cmp') <= 1.5 * armdb_relation_size('cmp_fresh') AS compact_size;

-- the files now: no immutable file with dead bytes, outputs flagged merged
-- and with hint files, inputs gone, the active file the same
SELECT count(*) FILTER (WHERE NOT active AND dead_bytes > 0) AS immutable_with_dead_bytes,
	   count(*) FILTER (WHERE merged) > 0 AS some_merged,
	   bool_and(has_hint) FILTER (WHERE merged) AS merged_have_hints,
	   bool_and(NOT active) FILTER (WHERE merged) AS merged_not_active,
	   bool_and(dead_bytes <= bytes) AS dead_within_size,
	   bool_and(min_gsn <= max_gsn) FILTER (WHERE merged) AS gsn_ranges
FROM armdb_file_stats('cmp');
SELECT count(*) AS inputs_left
FROM armdb_file_stats('cmp') f
JOIN files_before b USING (shard, file_id)
WHERE NOT b.active AND b.dead_bytes > 0;
SELECT f.file_id = b.file_id AS same_active_file
FROM armdb_file_stats('cmp') f, files_before b
WHERE f.active AND b.active;

-- the shards agree with the files; only the active file's dead bytes are
-- left
SELECT sum(s.files) = (SELECT count(*) FROM armdb_file_stats('cmp')) AS files_agree,
	   sum(s.total_bytes) = (SELECT sum(bytes) FROM armdb_file_stats('cmp')) AS bytes_agree,
	   sum(s.dead_bytes) = (SELECT sum(dead_bytes) FROM armdb_file_stats('cmp') WHERE active) AS dead_only_active,
	   sum(s.live_versions) = (SELECT count(*) FROM cmp) AS live_versions_are_rows,
	   sum(s.live_bytes) <= sum(s.total_bytes) AS live_within_total
FROM armdb_shard_stats('cmp') s;

-- the rows are the same, by a sequential scan and by the index
SELECT fp.nrows = b.nrows AS same_count, fp.total = b.total AS same_sum,
	   fp.digest = b.digest AS same_rows
FROM cmp_fingerprint('cmp') fp, fp_before b;

SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF)
SELECT count(*) FROM cmp WHERE id BETWEEN 1 AND 5000;
EXPLAIN (COSTS OFF)
SELECT id, v, n FROM cmp WHERE id BETWEEN 1 AND 5000;
SELECT count(*), sum(n),
	   md5(string_agg(id || ':' || v || ':' || n, ',')) = (SELECT digest FROM fp_before) AS same_rows
FROM (SELECT id, v, n FROM cmp WHERE id BETWEEN 1 AND 5000) s;
-- each row found by its key
SELECT count(*) AS found
FROM generate_series(1, 5000) g
WHERE EXISTS (SELECT 1 FROM cmp WHERE id = g);
RESET enable_seqscan;
RESET enable_bitmapscan;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF)
SELECT count(*) FROM cmp WHERE id BETWEEN 1 AND 5000;
SELECT count(*), sum(n) FROM cmp WHERE id BETWEEN 1 AND 5000;
RESET enable_indexscan;
RESET enable_bitmapscan;

-- what compaction counted
SELECT s.runs > b.runs AS ran,
	   s.failures = b.failures AS no_failures,
	   s.crc_errors = b.crc_errors AS no_crc_errors,
	   s.files_merged - b.files_merged =
		 (SELECT count(*) FROM files_before WHERE NOT active AND dead_bytes > 0) AS files_merged,
	   s.bytes_reclaimed > b.bytes_reclaimed AS reclaimed,
	   s.bytes_written > b.bytes_written AS written,
	   s.last_run IS NOT NULL AS last_run_set
FROM armdb_compaction_stats() s, stats_before b;

-- right after, there is nothing to merge
SELECT merges, files_in, files_out, entries_kept FROM armdb_compact('cmp');

-- the moved rows can be updated, deleted and compacted again
UPDATE cmp SET n = n + 1000 WHERE id <= 500;
DELETE FROM cmp WHERE id > 4500;
VACUUM cmp;
SELECT merges > 0 AS merged_again FROM armdb_compact('cmp');
SELECT count(*), sum(n) FROM cmp;
SELECT count(*) FILTER (WHERE NOT active AND dead_bytes > 0) AS immutable_with_dead_bytes
FROM armdb_file_stats('cmp');
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*), sum(n) FROM cmp WHERE id BETWEEN 1 AND 5000;
RESET enable_seqscan;
RESET enable_bitmapscan;

-- a table without dead bytes: nothing to do
SELECT merges, files_in FROM armdb_compact('cmp_fresh');

-- only armdb tables
CREATE TABLE cmp_heap (a int) USING heap;
SELECT * FROM armdb_compact('cmp_heap');
SELECT * FROM armdb_compact('cmp_pkey');
SELECT * FROM armdb_file_stats('cmp_heap');
SELECT * FROM armdb_compact(NULL);

DROP TABLE cmp, cmp_fresh, cmp_heap;
DROP FUNCTION cmp_fingerprint(regclass);

ALTER SYSTEM RESET armdb.max_file_size;
ALTER SYSTEM RESET armdb.compaction;
SELECT pg_reload_conf();
