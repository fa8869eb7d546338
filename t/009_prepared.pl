# PREPARE TRANSACTION on armdb tables (design §8): a prepared transaction's
# changes survive a crash as uncommitted ones -- invisible, their rows still
# locked against writers -- until COMMIT PREPARED or ROLLBACK PREPARED.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('prepared');
$node->init;
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

# what a prepared transaction could not keep is refused
($ret, $out, $err) = $node->psql('postgres',
	"BEGIN; SELECT * FROM p WHERE id = 1 FOR UPDATE; PREPARE TRANSACTION 'p3'");
like($err, qr/cannot PREPARE a transaction that has locked rows of armdb tables/,
	'PREPARE after a row lock is refused');
($ret, $out, $err) = $node->psql('postgres',
	"BEGIN; CREATE TABLE q (a int) USING armdb; PREPARE TRANSACTION 'p4'");
like($err, qr/cannot PREPARE a transaction that has created or dropped armdb tables/,
	'PREPARE after armdb DDL is refused');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0',
	'nothing left prepared');

done_testing();
