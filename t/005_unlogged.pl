# Unlogged armdb tables: kept across a clean restart, empty (and usable)
# after a crash, as heap's unlogged tables are.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('unlogged');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'armdb'");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE UNLOGGED TABLE u (id int PRIMARY KEY, v text) USING armdb;
CREATE TABLE l (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO u SELECT g, 'u' FROM generate_series(1, 1000) g;
INSERT INTO l SELECT g, 'l' FROM generate_series(1, 1000) g;
});
is($node->safe_psql('postgres', "SELECT relpersistence FROM pg_class WHERE relname = 'u'"),
	'u', 'the table is unlogged');

$node->restart;
is($node->safe_psql('postgres', 'SELECT count(*) FROM u'), '1000',
	'an unlogged table keeps its rows across a clean restart');

$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*) FROM u'), '0',
	'an unlogged table is empty after a crash');
is($node->safe_psql('postgres', 'SELECT count(*) FROM l'), '1000',
	'a logged table keeps its rows');
$node->safe_psql('postgres', "INSERT INTO u VALUES (1, 'again')");
is( $node->safe_psql(
		'postgres', 'SET enable_seqscan = off; SELECT v FROM u WHERE id = 1'),
	'again',
	'the emptied unlogged table and its index work');
like(slurp_file($node->logfile), qr/emptying unlogged table storage/,
	'the log says so');

# SET LOGGED / SET UNLOGGED rewrite the table
$node->safe_psql('postgres', 'ALTER TABLE u SET LOGGED');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*) FROM u'), '1',
	'after SET LOGGED the rows survive a crash');

done_testing();
