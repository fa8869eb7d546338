--
-- armdb: the extension, its access method and its settings
--
CREATE EXTENSION armdb;

SELECT amname, amtype, amhandler::regproc FROM pg_am WHERE amname = 'armdb';

SELECT obj_description(oid, 'pg_am') FROM pg_am WHERE amname = 'armdb';

-- every setting with its default, unit and when it can change
SELECT name, setting, unit, context, vartype, boot_val
FROM pg_settings WHERE name LIKE 'armdb.%'
  AND name NOT IN ('armdb.memory', 'armdb.encryption_key_command')
ORDER BY name;
-- set or not (the suite runs both ways), never shown to ordinary users
SELECT name, unit, context, vartype, boot_val
FROM pg_settings WHERE name = 'armdb.encryption_key_command';

-- armdb.memory's default is sized from the machine: a quarter of its
-- memory, at least armdb.memory_initial
SELECT unit, context, vartype, boot_val::int >= 64 AS at_least_initial,
       boot_val::int <= 1024 * 1024 AS at_most_1tb
FROM pg_settings WHERE name = 'armdb.memory';

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

-- settings fixed at server start cannot be changed in a session, nor
-- those a reload changes
SET armdb.memory_initial = '128MB';
SET armdb.memory = '64MB';
SET armdb.max_file_size = '1MB';

-- the extension cannot be dropped while armdb tables use it
CREATE TABLE init_t (a int) USING armdb;
DROP EXTENSION armdb;
DROP TABLE init_t;

DROP EXTENSION armdb;
SELECT count(*) FROM pg_am WHERE amname = 'armdb';
CREATE EXTENSION armdb;
