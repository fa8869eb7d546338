# What a keydir load learns of a shard's files is what compaction's rule
# for endings relies on (src/compact/compact.c, rule (3)): the dead
# versions of every file, the active one included.  After a merge the
# active file is no longer the newest file (merge outputs take higher
# numbers); a load that recorded it twice, the second time empty, hid its
# dead versions, and a later merge could drop the endings that keep them
# dead -- a crash then brought old rows back.  Here: the active file's dead
# bytes survive a restart behind merge outputs, and after more merges and a
# crash every row is there once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('compaction_load');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
armdb.max_file_size = '64kB'
armdb.compaction = off
restart_after_crash = on
});
$node->start;

# one shard: rows, updates over several files, a merge whose outputs are
# numbered above the active file
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
SET armdb.shards = 1;
CREATE TABLE l (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO l SELECT g, repeat('a', 100) FROM generate_series(1, 3000) g;
UPDATE l SET v = repeat('b', 100);
VACUUM l;
SELECT armdb_compact('l');
});
my $active_q = q{SELECT file_id FROM armdb_file_stats('l') WHERE active};
my $active = $node->safe_psql('postgres', $active_q);
cmp_ok(
	$node->safe_psql('postgres',
		"SELECT max(file_id) FROM armdb_file_stats('l') WHERE merged"),
	'>', $active, 'merge outputs are numbered above the active file');

# versions in the active file that are dead when the table is next loaded:
# the last rows updated again, in place of a VACUUM, a restart.  As many
# as the active file has room for (a new version takes under 200 bytes),
# up to 100: their older versions are in it too, the last ones written.
my $room = $node->safe_psql('postgres',
	"SELECT 65536 - bytes FROM armdb_file_stats('l') WHERE active");
my $n = int($room / 200);
$n = 100 if $n > 100;
cmp_ok($n, '>=', 20, "the active file has room for $n new versions");
$node->safe_psql('postgres',
	"UPDATE l SET v = repeat('c', 100) WHERE id > 3000 - $n");
is($node->safe_psql('postgres', $active_q), $active,
	'the updates stayed in the active file');
$node->restart;
my ($dead, $records) = split(
	/\|/,
	$node->safe_psql(
		'postgres',
		"SELECT dead_bytes, (SELECT count(*) FROM armdb_file_stats('l') f2 WHERE f2.file_id = f.file_id)
		   FROM armdb_file_stats('l') f WHERE active"));
is($records, '1', 'the active file is listed once after the load');
cmp_ok($dead, '>', $n * 100,
	'the load counted the dead versions of the active file');

# merges that now may drop endings, and a crash: every row once
$node->safe_psql('postgres', q{
UPDATE l SET v = repeat('d', 100) WHERE id <= 1500;
VACUUM l;
SELECT armdb_compact('l');
});
my $want = q{SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || sum(length(v)) FROM l};
is($node->safe_psql('postgres', $want), '3000 3000 300000', 'rows before the crash');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', $want), '3000 3000 300000',
	'every row once after the crash (sequential scan)');
is( $node->safe_psql(
		'postgres', q{SET enable_seqscan = off;
SELECT count(*) FROM l WHERE id > 0 AND v = repeat('d', 100)}),
	'1500', 'the newest versions (index scan)');

done_testing();
