# PREPARE TRANSACTION on armdb tables (design §8): a prepared transaction's
# changes survive a crash as uncommitted ones -- invisible, their rows still
# locked against writers -- until COMMIT PREPARED or ROLLBACK PREPARED.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('prepared');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'armdb'\nmax_prepared_transactions = 5");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE p (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO p SELECT g, 'orig' FROM generate_series(1, 10) g;
BEGIN;
INSERT INTO p VALUES (100, 'new');
UPDATE p SET v = 'changed' WHERE id = 1;
DELETE FROM p WHERE id = 2;
PREPARE TRANSACTION 'p1';
BEGIN;
INSERT INTO p VALUES (200, 'never');
DELETE FROM p WHERE id = 3;
PREPARE TRANSACTION 'p2';
});
my $state = q{SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM p};
my $orig = join(',', map { "$_:orig" } 1 .. 10);
is($node->safe_psql('postgres', $state), $orig, 'prepared changes are invisible');

$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', $state), $orig,
	'... and still invisible after a crash');
is( $node->safe_psql(
		'postgres', 'SET enable_seqscan = off; SELECT count(*) FROM p WHERE id > 0'),
	'10', 'index scans agree');
my ($ret, $out, $err) = $node->psql('postgres',
	"SET lock_timeout = '300ms'; UPDATE p SET v = 'x' WHERE id = 2");
like($err, qr/lock timeout/, 'a row the prepared transaction deleted is still locked');
($ret, $out, $err) = $node->psql('postgres',
	"SET lock_timeout = '300ms'; INSERT INTO p VALUES (100, 'dup')");
like($err, qr/lock timeout/, 'its inserted key still blocks a duplicate');

$node->safe_psql('postgres', "COMMIT PREPARED 'p1'");
my $after_p1 = '1:changed,3:orig,4:orig,5:orig,6:orig,7:orig,8:orig,9:orig,10:orig,100:new';
is($node->safe_psql('postgres', $state), $after_p1, 'COMMIT PREPARED applies them');
$node->safe_psql('postgres', "ROLLBACK PREPARED 'p2'");
is($node->safe_psql('postgres', $state), $after_p1, 'ROLLBACK PREPARED discards them');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', $state), $after_p1, 'both outcomes survive a crash');

# (row locks of prepared transactions: t/033_prepared_locks.pl)

# armdb DDL in prepared transactions, across a crash: storage is kept until
# COMMIT or ROLLBACK PREPARED says whether it goes
my $dboid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'");
sub storage_of
{
	my ($relnode) = @_;
	return $node->data_dir . "/armdb/$dboid/$relnode";
}
$node->safe_psql('postgres', q{
CREATE TABLE doomed (a int) USING armdb;
INSERT INTO doomed SELECT generate_series(1, 10);
CREATE TABLE emptied (a int) USING armdb;
INSERT INTO emptied SELECT generate_series(1, 10);
});
my $doomed = storage_of($node->safe_psql('postgres', "SELECT pg_relation_filenode('doomed')"));
my $emptied_old = storage_of($node->safe_psql('postgres', "SELECT pg_relation_filenode('emptied')"));
my ($made, $never) = map { storage_of($_) } split(/\n/, $node->safe_psql('postgres', q{
BEGIN;
CREATE TABLE made (a int PRIMARY KEY, v text) USING armdb;
INSERT INTO made SELECT g, 'm' || g FROM generate_series(1, 50) g;
DROP TABLE doomed;
TRUNCATE emptied;
INSERT INTO emptied VALUES (42);
SELECT pg_relation_filenode('made');
PREPARE TRANSACTION 'ddl1';
BEGIN;
CREATE TABLE never (a int) USING armdb;
INSERT INTO never SELECT generate_series(1, 5);
SELECT pg_relation_filenode('never');
PREPARE TRANSACTION 'ddl2';
}));
like($made, qr{/\d+/\d+$}, 'the created tables\' storage is known');
ok(-d $made && -d $never && -d $doomed && -d $emptied_old,
	'PREPARE keeps the storage of what the transactions created and dropped');
$node->stop('immediate');
$node->start;
ok(-d $made && -d $never && -d $doomed && -d $emptied_old,
	'so does recovery, and the sweep after it');
$node->safe_psql('postgres', "COMMIT PREPARED 'ddl1'");
is($node->safe_psql('postgres', 'SELECT count(*), sum(a) FROM made'), '50|1275',
	'COMMIT PREPARED: the created table has its rows');
is($node->safe_psql('postgres', 'SELECT a FROM emptied'), '42',
	'the table truncated in it has its new row only');
ok(!-d $doomed, 'the dropped table\'s storage is gone');
ok(!-d $emptied_old, 'so is the truncated table\'s old storage');
ok(-d $made, 'the created table\'s storage stays');
$node->safe_psql('postgres', "ROLLBACK PREPARED 'ddl2'");
ok(!-d $never, 'ROLLBACK PREPARED: the created table\'s storage is gone');
$node->restart;
is($node->safe_psql('postgres', 'SELECT count(*) FROM made'), '50',
	'after a restart the committed table reads the same');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_class WHERE relname IN ('never', 'doomed')"), '0',
	'and the catalogs agree');

done_testing();
