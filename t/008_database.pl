# CREATE DATABASE ... TEMPLATE copies the template's armdb tables with their
# rows; the copy lives on its own; DROP DATABASE removes its armdb files at
# once (design §8: neither statement calls the table access method).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('database');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'armdb'");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE tmpl');
$node->safe_psql('tmpl', q{
CREATE EXTENSION armdb;
CREATE TABLE t (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO t SELECT g, 'template' FROM generate_series(1, 1000) g;
UPDATE t SET v = 'updated' WHERE id % 10 = 0;
DELETE FROM t WHERE id > 990;
});
my $check = q{SELECT count(*), sum(id), count(*) FILTER (WHERE v = 'updated') FROM t};
my $want = $node->safe_psql('tmpl', $check);

for my $strategy ('wal_log', 'file_copy')
{
	my $db = "copy_$strategy";
	$node->safe_psql('postgres',
		"CREATE DATABASE $db TEMPLATE tmpl STRATEGY $strategy");
	is($node->safe_psql($db, $check), $want,
		"$strategy: the copy has the template's rows");
	$node->safe_psql($db, "INSERT INTO t VALUES (5000, 'copy only'); DELETE FROM t WHERE id = 1");
	is($node->safe_psql('tmpl', $check), $want, "$strategy: the template is unchanged");
	is( $node->safe_psql(
			$db, "SET enable_seqscan = off; SELECT v FROM t WHERE id = 5000"),
		'copy only',
		"$strategy: the copy's index works");
}

$node->restart;
is($node->safe_psql('copy_wal_log', 'SELECT count(*) FROM t'),
	'990', 'the copy survives a restart with its own changes (+1 -1)');

my $oid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'copy_file_copy'");
ok(-d $node->data_dir . "/armdb/$oid", 'the copy has an armdb directory');
$node->safe_psql('postgres', 'DROP DATABASE copy_file_copy');
ok(!-e $node->data_dir . "/armdb/$oid",
	'DROP DATABASE removes its armdb directory at once');
is($node->safe_psql('tmpl', $check), $want, 'the template still has its rows');

done_testing();
