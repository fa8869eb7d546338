# VACUUM freezes armdb tables for real (design §4 and §8): relfrozenxid
# advances only as far as the files have the fates of their xids recorded
# (hint files), and recovery then needs no clog for those xids.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('freeze');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'armdb'\nvacuum_freeze_min_age = 0\nautovacuum = off");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE f (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO f SELECT g, 'v' FROM generate_series(1, 5000) g;
UPDATE f SET v = 'updated' WHERE id % 3 = 0;
DELETE FROM f WHERE id % 7 = 0;
BEGIN; INSERT INTO f VALUES (-1, 'rolled back'); ROLLBACK;
});
my $check = q{SELECT count(*), sum(id), count(*) FILTER (WHERE v = 'updated') FROM f};
my $want = $node->safe_psql('postgres', $check);
my $age = q{SELECT age(relfrozenxid) FROM pg_class WHERE relname = 'f'};

# All of f's entries are still in the shards' active files (no file is
# closed yet), and the oldest of them is the INSERT's.  A plain VACUUM
# leaves the active files open, so their fates stay in clog: relfrozenxid
# must move up from the creating transaction's horizon to exactly the
# INSERT's xid -- not short of it (the VACUUM did nothing: relfrozenxid
# would never advance and anti-wraparound vacuums would never end) and not
# past it (recovery would then need clog for xids older than relfrozenxid,
# which the clog truncation after datfrozenxid advances may have removed).
my $insert_xid = $node->safe_psql('postgres', 'SELECT xmin FROM f WHERE id = 1');
my $relfrozen_vs_insert = qq{SELECT age(relfrozenxid), age('$insert_xid'::xid)
  FROM pg_class WHERE relname = 'f'};
my ($created_age, $insert_age) =
  split /\|/, $node->safe_psql('postgres', $relfrozen_vs_insert);
cmp_ok($created_age, '>', $insert_age,
	'relfrozenxid starts older than the first entry (the creating horizon)');
$node->safe_psql('postgres', 'SELECT txid_current()') for 1 .. 5;

$node->safe_psql('postgres', 'VACUUM f');
my ($frozen_age, $oldest_age) =
  split /\|/, $node->safe_psql('postgres', $relfrozen_vs_insert);
cmp_ok($frozen_age, '<=', $oldest_age,
	'a plain VACUUM advances relfrozenxid up to the oldest xid of the active files');
cmp_ok($frozen_age, '>=', $oldest_age,
	'but not past it: the active files still need clog for that xid');

$node->safe_psql('postgres', 'VACUUM FREEZE f');
is($node->safe_psql('postgres', $age), '0',
	'VACUUM FREEZE closes the active files and freezes everything');
is($node->safe_psql('postgres', $check), $want, 'rows unchanged by freezing');

# more work after freezing, then a crash: hinted (frozen) files and new ones
$node->safe_psql('postgres', q{
INSERT INTO f SELECT g, 'later' FROM generate_series(10001, 11000) g;
UPDATE f SET v = 'updated' WHERE id = 1;
});
$want = $node->safe_psql('postgres', $check);
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', $check), $want,
	'rows recovered from frozen hint files and newer entries');
is( $node->safe_psql(
		'postgres', "SET enable_seqscan = off; SELECT count(*) FROM f WHERE id > -10"),
	(split(/\|/, $want))[0],
	'the index agrees');

# the whole database: datfrozenxid follows
$node->safe_psql('postgres', 'VACUUM FREEZE');
cmp_ok(
	$node->safe_psql('postgres',
		"SELECT age(datfrozenxid) FROM pg_database WHERE datname = 'postgres'"),
	'<', 10, 'datfrozenxid advances with armdb tables in the database');
$node->restart;
is($node->safe_psql('postgres', $check), $want, 'and survives a restart');

done_testing();
