# Thousands of small armdb tables with the default settings (issue 15): a
# schema of 10,000 one-row tables and a table of 2,000 partitions are
# created, written and read; idle tables give their write buffers back, so
# that each holds about its one page of versions; every row is still there
# after a restart.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('many_tables');
$node->init(allows_streaming => 1);
# armdb's settings are the defaults.  PostgreSQL's lock table is not
# enough for a parallel query over 2,000 partitions (the leader and each
# worker lock every partition), whatever their access method: it is sized
# for 128 locks per transaction, as for heap partitions.
# (armdb.keydir_idle_timeout off: what an idle table holds is measured
# below; t/045 checks that small idle tables give it all back)
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
max_locks_per_transaction = 128
armdb.keydir_idle_timeout = 0
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE SCHEMA many;
CREATE PROCEDURE make_tables(n int) LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..n LOOP
		EXECUTE format('CREATE TABLE many.t%s (id int, v text) USING armdb', i);
		EXECUTE format('INSERT INTO many.t%s VALUES (%s, ''row %s'')', i, i, i);
		IF i % 250 = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
END $$;
-- commits every 1,000 tables: one transaction cannot lock them all
CREATE PROCEDURE count_tables(n int, INOUT total bigint) LANGUAGE plpgsql AS $$
DECLARE
	c bigint;
BEGIN
	total := 0;
	FOR i IN 1..n LOOP
		EXECUTE format('SELECT sum(id) FROM many.t%s WHERE v = ''row %s''', i, i)
			INTO c;
		total := total + c;
		IF i % 1000 = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
END $$;
});

$node->safe_psql('postgres', 'CALL make_tables(10000)');
is($node->safe_psql('postgres', 'CALL count_tables(10000, 0)'),
	'50005000', '10,000 one-row tables, each written and read back');

# 2,000 partitions (created 500 to a transaction, as the lock table
# allows), one row each, written by one statement
$node->safe_psql('postgres', q{
CREATE TABLE parts (id int, v text) PARTITION BY RANGE (id);
CREATE PROCEDURE make_parts() LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 0..1999 LOOP
		EXECUTE format('CREATE TABLE parts_%s PARTITION OF parts FOR VALUES FROM (%s) TO (%s) USING armdb',
					   i, i * 10, (i + 1) * 10);
		IF i % 500 = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
END $$;
CALL make_parts();
INSERT INTO parts SELECT g * 10 + 3, 'p' || g FROM generate_series(0, 1999) g;
});
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_class c JOIN pg_am a ON a.oid = c.relam
					  WHERE c.relname LIKE 'parts\_%' AND a.amname = 'armdb'}),
	'2000', 'the partitions are armdb tables');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*), sum(id), count(DISTINCT tableoid) FROM parts}),
	'2000|19996000|2000',
	'2,000 partitions, one row each');
$node->safe_psql('postgres', 'UPDATE parts SET id = id + 1');
is($node->safe_psql('postgres', 'SELECT sum(id) FROM parts WHERE id % 10 = 4'),
	'19998000', 'every partition updated');

is( $node->safe_psql(
		'postgres',
		q{SELECT tables >= 12000, used_bytes < limit_bytes FROM armdb_memory}),
	't|t', 'all of them within armdb.memory');

# idle for armdb.write_buffer_idle_timeout (10 s), their shards give the
# write buffers back: a one-row table then holds its page of versions
# (12 kB) and its states
$node->poll_query_until(
	'postgres', q{
SELECT sum(buffer_bytes) = 0 FROM armdb_memory_tables
WHERE database_name = 'postgres' AND relfilenode IN
	(SELECT relfilenode FROM pg_class WHERE relnamespace = 'many'::regnamespace)})
  or die 'idle tables kept their write buffers';
my $per_table = $node->safe_psql(
	'postgres', q{
SELECT avg(total_bytes)::int FROM armdb_memory_tables
WHERE database_name = 'postgres' AND relfilenode IN
	(SELECT relfilenode FROM pg_class WHERE relnamespace = 'many'::regnamespace)});
cmp_ok($per_table, '<', 16 * 1024, "an idle one-row table holds $per_table bytes");
note "an idle one-row table holds $per_table bytes of armdb.memory";

# written again after that: the buffer comes back with the file's last block
$node->safe_psql('postgres', q{
INSERT INTO many.t1 VALUES (100001, 'row 1');
INSERT INTO many.t2 VALUES (100002, 'row 2');
});
is( $node->safe_psql(
		'postgres', q{SELECT sum(id) FROM many.t1 UNION ALL
					  SELECT sum(id) FROM many.t2}),
	"100002\n100004", 'tables written again after their buffers went');

$node->restart;
is($node->safe_psql('postgres', 'CALL count_tables(10000, 0)'),
	'50205003', 'every row after a restart');
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM parts'),
	'2000|19998000', 'every partition after a restart');

$node->stop;
done_testing();
