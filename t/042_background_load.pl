# After a start, armdb.load_workers workers per database load the key
# directories of its armdb tables in the background, largest first, until
# half of armdb.memory is used; the other tables are loaded by their first
# queries, as with armdb.load_workers = 0.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('background_load');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
armdb.memory_initial = '8MB'
armdb.memory = '64MB'
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE big1 (id int PRIMARY KEY, v text) USING armdb;
CREATE TABLE big2 (id int, v text) USING armdb;
CREATE TABLE big3 (id int, v text) USING armdb;
CREATE UNLOGGED TABLE unlogged1 (id int) USING armdb;
INSERT INTO big1 SELECT g, 'b1' FROM generate_series(1, 300000) g;
INSERT INTO big2 SELECT g, 'b2' FROM generate_series(1, 150000) g;
INSERT INTO big3 SELECT g, 'b3' FROM generate_series(1, 100000) g;
INSERT INTO unlogged1 SELECT g FROM generate_series(1, 1000) g;
DELETE FROM big2 WHERE id % 3 = 0;
ANALYZE;
});
$node->safe_psql('postgres', q{CREATE DATABASE other});
$node->safe_psql('other', q{
CREATE EXTENSION armdb;
CREATE TABLE o (id int) USING armdb;
INSERT INTO o SELECT g FROM generate_series(1, 5000) g;
});

my $loaded = q{SELECT string_agg(relation::text, ',' ORDER BY relation::text)
FROM armdb_memory_tables WHERE database_name = current_database() AND loaded};

# every table of both databases, without a query touching them
$node->restart;
$node->poll_query_until('postgres', $loaded, 'big1,big2,big3,unlogged1')
  or die 'the tables of postgres were not loaded';
$node->poll_query_until('other', $loaded, 'o')
  or die 'the table of other was not loaded';
ok(1, 'both databases\' tables were loaded in the background');
like(
	slurp_file($node->logfile),
	qr/armdb loader 1 of 2: loaded the key directories of \d+ tables of database \d+ in \d+ ms/,
	'the loaders said what they loaded');
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM big1'),
	'300000|45000150000', 'the loaded tables answer');
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM big2'),
	'100000|7500000000', 'all of them');
is($node->safe_psql('postgres', 'SELECT v FROM big1 WHERE id = 77777'),
	'b1', 'through their indexes too');

# armdb.load_workers = 0: nothing is loaded before its first query
$node->append_conf('postgresql.conf', 'armdb.load_workers = 0');
$node->restart;
sleep(2);
is($node->safe_psql('postgres', $loaded), '', 'with no loaders nothing is loaded');
is($node->safe_psql('postgres', 'SELECT count(*) FROM big3'),
	'100000', 'the first query loads its table');
is($node->safe_psql('postgres', $loaded), 'big3', 'and only that one');

# loaders stop at half of armdb.memory: with 12 MB, big1 (the largest, 6.6
# MB) is loaded, the others are left to their first queries
$node->append_conf('postgresql.conf', qq{
armdb.load_workers = 1
armdb.memory = '12MB'
});
$node->restart;
$node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM armdb_memory_tables WHERE loaded})
  or die 'nothing was loaded';
$node->wait_for_log(qr/armdb loader 1 of 1: loaded the key directories of \d+ tables of database \d+ .*\n.*stopped at half of armdb.memory/);
is($node->safe_psql('postgres', $loaded), 'big1',
	'the loader stopped at half of armdb.memory, after the largest table');
is($node->safe_psql('postgres', 'SELECT count(*) FROM big3'),
	'100000', 'a table it left is loaded by its first query');

# after a crash too
$node->append_conf('postgresql.conf', qq{
armdb.load_workers = 2
armdb.memory = '64MB'
});
$node->restart;
$node->safe_psql('postgres', 'INSERT INTO big3 VALUES (100001, \'after\')');
$node->stop('immediate');
$node->start;
$node->poll_query_until('postgres', $loaded, 'big1,big2,big3,unlogged1')
  or die 'the tables were not loaded after a crash';
is( $node->safe_psql(
		'postgres',
		'SELECT (SELECT count(*) FROM big3), (SELECT count(*) FROM unlogged1)'),
	'100001|0', 'after a crash: every committed row, the unlogged table emptied');

$node->stop;
done_testing();
