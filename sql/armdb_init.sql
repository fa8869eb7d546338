--
-- armdb: the extension, its access method and its settings
--
CREATE EXTENSION armdb;

SELECT amname, amtype, amhandler::regproc FROM pg_am WHERE amname = 'armdb';

SELECT obj_description(oid, 'pg_am') FROM pg_am WHERE amname = 'armdb';

-- every setting with its default, unit and when it can change
SELECT name, setting, unit, context, vartype, boot_val
FROM pg_settings WHERE name LIKE 'armdb.%' ORDER BY name;

SELECT enumvals FROM pg_settings WHERE name = 'armdb.io_method';

-- the armdb prefix is reserved: misspelt settings are caught
SET armdb.shard = 4;

-- ranges are enforced
SET armdb.shards = 0;
SET armdb.shards = 257;
SET armdb.shards = 16;
SHOW armdb.shards;
RESET armdb.shards;
SET armdb.io_method = 'sync';
SHOW armdb.io_method;
SET armdb.io_method = 'bogus';
RESET armdb.io_method;

-- settings fixed at server start cannot be changed in a session
SET armdb.memory = '64MB';
SET armdb.max_file_size = '1MB';

-- the table access method is not implemented yet: clear errors, no debris
CREATE TABLE kv (id bigint PRIMARY KEY, doc text) USING armdb;
SELECT count(*) FROM pg_class WHERE relname = 'kv';

SET default_table_access_method = armdb;
CREATE TABLE kv (id bigint);
CREATE TABLE kv_as AS SELECT 1 AS id;
RESET default_table_access_method;

CREATE TABLE h (id int);
INSERT INTO h VALUES (1), (2);
ALTER TABLE h SET ACCESS METHOD armdb;
SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.relname = 'h';
SELECT * FROM h ORDER BY id;
DROP TABLE h;

DROP EXTENSION armdb;
SELECT count(*) FROM pg_am WHERE amname = 'armdb';
CREATE EXTENSION armdb;
