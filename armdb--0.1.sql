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
