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
