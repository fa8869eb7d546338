/* armdb--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION armdb" to load this file. \quit

CREATE FUNCTION armdb_tableam_handler(internal)
RETURNS table_am_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

COMMENT ON FUNCTION armdb_tableam_handler(internal) IS
  'table access method handler of armdb';

CREATE ACCESS METHOD armdb TYPE TABLE HANDLER armdb_tableam_handler;

COMMENT ON ACCESS METHOD armdb IS
  'bitcask storage: append-only data files, in-memory key directory, hint files, compaction';

CREATE FUNCTION armdb_relation_size(regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'armdb_relation_size_sql'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION armdb_relation_size(regclass) IS
  'bytes of an armdb table''s files (data, hint and meta files); pg_relation_size() sees only its empty main fork';

CREATE FUNCTION armdb_keydir_size(regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'armdb_keydir_size_sql'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION armdb_keydir_size(regclass) IS
  'bytes of shared memory (armdb.memory) an armdb table''s key directory and write buffers occupy';

CREATE FUNCTION armdb_compact(tbl regclass,
    OUT merges integer, OUT files_in integer, OUT files_out integer,
    OUT entries_kept bigint, OUT bytes_before bigint, OUT bytes_after bigint,
    OUT duration_ms double precision)
RETURNS record
AS 'MODULE_PATHNAME', 'armdb_compact_sql'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION armdb_compact(regclass) IS
  'merge every armdb data file of a table that holds dead bytes, now, and say what was done';

CREATE FUNCTION armdb_compaction_stats(
    OUT runs bigint, OUT failures bigint, OUT crc_errors bigint,
    OUT files_merged bigint, OUT files_written bigint,
    OUT entries_moved bigint, OUT bytes_read bigint, OUT bytes_written bigint,
    OUT bytes_reclaimed bigint, OUT last_duration_ms double precision,
    OUT last_run timestamptz, OUT last_error text,
    OUT last_error_time timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'armdb_compaction_stats_sql'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION armdb_compaction_stats() IS
  'what armdb compaction has done since the server started';

CREATE FUNCTION armdb_file_stats(tbl regclass,
    OUT shard integer, OUT file_id bigint, OUT bytes bigint,
    OUT dead_bytes bigint, OUT min_gsn bigint, OUT max_gsn bigint,
    OUT active boolean, OUT merged boolean, OUT has_hint boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'armdb_file_stats_sql'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION armdb_file_stats(regclass) IS
  'each data file of an armdb table: size, dead bytes, gsn range, state';

CREATE FUNCTION armdb_shard_stats(tbl regclass,
    OUT shard integer, OUT files integer, OUT total_bytes bigint,
    OUT live_bytes bigint, OUT dead_bytes bigint, OUT live_versions bigint,
    OUT keydir_bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'armdb_shard_stats_sql'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION armdb_shard_stats(regclass) IS
  'each shard of an armdb table: its files, total, live and dead bytes, live versions, key directory memory';

CREATE FUNCTION armdb_wal_status(
    OUT durability text, OUT durable_lsn pg_lsn, OUT commits_sync_because text)
RETURNS record
AS 'MODULE_PATHNAME', 'armdb_wal_status_sql'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION armdb_wal_status() IS
  'how armdb commits are made durable: "wal" (one WAL flush) or "commit" (data files synced, and why); the WAL position before which every data file is synced';

CREATE FUNCTION armdb_memory_tables(
    OUT database oid, OUT relid oid, OUT relfilenode oid, OUT temporary boolean,
    OUT loaded boolean, OUT shards integer, OUT versions bigint, OUT pages bigint,
    OUT page_bytes bigint, OUT buffer_bytes bigint, OUT other_bytes bigint,
    OUT total_bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'armdb_memory_tables_sql'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION armdb_memory_tables() IS
  'the shared memory (armdb.memory) of each armdb table''s key directory, in every database';

CREATE VIEW armdb_memory_tables AS
  SELECT m.database, d.datname AS database_name,
         CASE WHEN d.datname = current_database() THEN m.relid::regclass END
           AS relation,
         m.relid, m.relfilenode, m.temporary, m.loaded, m.shards, m.versions,
         m.pages, m.page_bytes, m.buffer_bytes, m.other_bytes, m.total_bytes
  FROM armdb_memory_tables() m
  LEFT JOIN pg_database d ON d.oid = m.database;

COMMENT ON VIEW armdb_memory_tables IS
  'the shared memory of each armdb table''s key directory: version pages, write buffers, the rest';

CREATE FUNCTION armdb_memory_total(
    OUT limit_bytes bigint, OUT initial_bytes bigint, OUT used_bytes bigint,
    OUT free_bytes bigint, OUT tables bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'armdb_memory_total_sql'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION armdb_memory_total() IS
  'all armdb key directories against armdb.memory';

CREATE VIEW armdb_memory AS SELECT * FROM armdb_memory_total();

COMMENT ON VIEW armdb_memory IS
  'all armdb key directories against armdb.memory: the limit, the part set aside at start, used, free, tables';

CREATE FUNCTION armdb_relation_encryption(tbl regclass,
    OUT encrypted boolean, OUT key_ids text[])
RETURNS record
AS 'MODULE_PATHNAME', 'armdb_relation_encryption_sql'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION armdb_relation_encryption(regclass) IS
  'whether an armdb table is encrypted, and the ids of the keys its data files need';

CREATE FUNCTION armdb_decrypted_cache(OUT size bigint, OUT hits bigint,
  OUT misses bigint, OUT stored bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'armdb_decrypted_cache_sql'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION armdb_decrypted_cache() IS
  'the decrypted cache of sequential scans of encrypted tables: its size in bytes, the chunks found there and not, the chunks kept';

CREATE FUNCTION armdb_encryption_keys(OUT key_id text, OUT current boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'armdb_encryption_keys_sql'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION armdb_encryption_keys() IS
  'the ids of the encryption keys the server holds; the current one encrypts new data';
