# Slot reuse invariant (design §2): after a restart no row slot that an
# index entry may still point at is handed to a new row, even when the
# rows that used it never reached the data files (rolled back, or still
# running at the crash).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('slots');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'armdb'");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE t (k int PRIMARY KEY, v text) USING armdb;
INSERT INTO t VALUES (1, 'committed');
BEGIN;
INSERT INTO t SELECT g, 'rolled back' FROM generate_series(100, 300) g;
ROLLBACK;
});

# a transaction still open when the server goes down
my $open = $node->background_psql('postgres');
$open->query_safe('BEGIN');
$open->query_safe("INSERT INTO t SELECT g, 'open at the crash' FROM generate_series(400, 600) g");
$node->stop('immediate');
$open->quit;
$node->start;

$node->safe_psql('postgres',
	"INSERT INTO t SELECT g, 'after restart' FROM generate_series(1000, 1500) g");
my $q = q{SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FILTER (WHERE k BETWEEN 100 AND 300),
       count(*) FILTER (WHERE k BETWEEN 400 AND 600),
       count(*) FILTER (WHERE k BETWEEN 1000 AND 1500),
       count(*) FILTER (WHERE v = 'after restart' AND k NOT BETWEEN 1000 AND 1500)
  FROM t WHERE k > 0};
is($node->safe_psql('postgres', $q), '0|0|501|0',
	'index entries of rows that never committed find nothing after a restart');

# every index entry leads to a row with its own key
is( $node->safe_psql(
		'postgres', q{SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FROM generate_series(1, 1600) g JOIN t ON t.k = g}),
	'502',
	'index lookups return the right rows');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), '502',
	'a sequential scan agrees');

my ($ret, $out, $err) = $node->psql('postgres',
	"INSERT INTO t VALUES (1, 'a'), (1, 'b') ON CONFLICT (k) DO UPDATE SET v = 'x'");
like($err, qr/cannot affect row a second time/,
	'ON CONFLICT reports the second touch, not a false duplicate');

# VACUUM frees the slots of dead versions (after deleting their index
# entries) and new rows reuse them; recovery must then tell the new
# occupant of a slot from the old, ended version.
$node->safe_psql('postgres', q{
CREATE TABLE r (k int PRIMARY KEY, n int) USING armdb;
CREATE INDEX r_n ON r (n);
INSERT INTO r SELECT g, g % 10 FROM generate_series(1, 5000) g;
UPDATE r SET n = n + 100 WHERE k % 2 = 0;
DELETE FROM r WHERE k % 5 = 0;
VACUUM r;
});
my $before = $node->safe_psql('postgres', 'SELECT armdb_keydir_size(\'r\')');
$node->safe_psql('postgres',
	'INSERT INTO r SELECT g, 7 FROM generate_series(10001, 12000) g');
is($node->safe_psql('postgres', 'SELECT armdb_keydir_size(\'r\')'), $before,
	'new rows reuse the slots VACUUM freed (the keydir did not grow)');
my $check = q{SELECT count(*), sum(k), sum(n) FROM r};
my $want = $node->safe_psql('postgres', $check);
is($want, '6000|32001000|234000', 'rows after VACUUM and reuse');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', $check), $want,
	'the same rows after a crash (sequential scan)');
is( $node->safe_psql(
		'postgres', "SET enable_seqscan = off; SET enable_bitmapscan = off; $check WHERE k > 0"),
	$want,
	'the same rows after a crash (index scan)');
is( $node->safe_psql(
		'postgres', 'SET enable_seqscan = off; SET enable_bitmapscan = off;
		 SELECT count(*) FROM r WHERE n >= 100'),
	$node->safe_psql('postgres', 'SELECT count(*) FROM r WHERE n >= 100'),
	'the secondary index agrees');

done_testing();
