# pg_upgrade of a cluster with armdb tables, as the README says to do it:
# armdb in shared_preload_libraries of the new cluster, pg_upgrade, then
# the old cluster's armdb directory in place of the new one's before the new
# cluster starts (PostgreSQL 15 keeps relfilenodes and database OIDs, which
# name armdb's directories).
use strict;
use warnings;
use File::Path qw(rmtree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use PostgreSQL::Test::Utils;
use Test::More;

my $old = PostgreSQL::Test::Cluster->new('old');
$old->init;
$old->append_conf('postgresql.conf', "shared_preload_libraries = 'armdb'");
$old->start;
$old->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE t (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
UPDATE t SET v = 'changed' WHERE id % 10 = 0;
DELETE FROM t WHERE id % 7 = 0;
CREATE INDEX t_v ON t (v);
CREATE DATABASE other;
});
$old->safe_psql('other', q{
CREATE EXTENSION armdb;
CREATE TABLE o (a int) USING armdb;
INSERT INTO o SELECT generate_series(1, 300);
});
my $q_t = "SELECT count(*) || ':' || md5(string_agg(id || v, ',' ORDER BY id)) FROM t";
my $want_t = $old->safe_psql('postgres', $q_t);
my $want_idx = $old->safe_psql('postgres',
	"SET enable_seqscan = off; SELECT count(*) FROM t WHERE v = 'changed'");
my $want_o = $old->safe_psql('other', 'SELECT count(*), sum(a) FROM o');
$old->stop;

my $new = PostgreSQL::Test::Cluster->new('new');
$new->init;
$new->append_conf('postgresql.conf', "shared_preload_libraries = 'armdb'");

my $bindir = $new->config_data('--bindir');
my $workdir = PostgreSQL::Test::Utils::tempdir();
chdir $workdir or die "chdir $workdir: $!";
command_ok(
	[
		'pg_upgrade', '--no-sync',
		'-d', $old->data_dir, '-D', $new->data_dir,
		'-b', $bindir, '-B', $bindir,
		'-s', $new->host,
		'-p', $old->port, '-P', $new->port
	],
	'pg_upgrade of a cluster with armdb tables');

# the new cluster's armdb directory holds the empty storage the schema
# restore made under the same relfilenodes: the old one replaces it
rmtree($new->data_dir . '/armdb');
PostgreSQL::Test::RecursiveCopy::copypath($old->data_dir . '/armdb',
	$new->data_dir . '/armdb');
ok(-d $new->data_dir . '/armdb', 'the old armdb directory copied into the new cluster');

$new->start;
is($new->safe_psql('postgres', $q_t), $want_t, 'the upgraded table has every row');
is($new->safe_psql('postgres',
	"SET enable_seqscan = off; SELECT count(*) FROM t WHERE v = 'changed'"),
	$want_idx, 'its index finds them');
is($new->safe_psql('other', 'SELECT count(*), sum(a) FROM o'), $want_o,
	'so does the other database\'s table');
$new->safe_psql('postgres', "INSERT INTO t VALUES (100000, 'after')");
$new->restart;
is($new->safe_psql('postgres', 'SELECT v FROM t WHERE id = 100000'), 'after',
	'the upgraded cluster takes writes that survive a restart');
$new->stop;

done_testing();
