# Copyright (c) 2026, armdb developers
#
# A shard's active file started while a merge runs: the merge's later
# outputs take numbers above it, and every scan must still read it.  A
# slow merge (the cost delay) of a one-shard table keeps more than one
# output's worth of rows; while it copies, another session's inserts fill
# the active file and start a new one, whose number is below the outputs
# opened after it.  Sequential scans, index scans and the rows inserted
# must agree afterwards -- and after more merges, and after a restart.
#
# Then a file started by a seal (VACUUM FREEZE closes the active file)
# before its first entry, and a merge whose outputs take higher numbers
# before that entry: a standby must still create the file and replay its
# entries (its FILE record comes with the seal, not with the entry).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);
use FindBin;
use lib $FindBin::RealBin;
use ArmdbTest;

my $node = PostgreSQL::Test::Cluster->new('rot');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
armdb.max_file_size = '64kB'
armdb.compaction = off
armdb.compaction_cost_delay = '40ms'
armdb.compaction_cost_limit = 1
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
SET armdb.shards = 1;
CREATE TABLE t (id int PRIMARY KEY, pad text) USING armdb;
INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 3000) g;
DELETE FROM t WHERE id % 10 = 0;
VACUUM t;
});

my $counts = q{
SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off;
SELECT count(*), coalesce(sum(id), 0) FROM t;
RESET enable_indexscan; SET enable_seqscan = off;
SELECT count(*), coalesce(sum(id), 0) FROM t WHERE id > 0;
SET armdb.debug_seqscan_pages = on; RESET enable_seqscan; SET enable_indexscan = off;
SELECT count(*), coalesce(sum(id), 0) FROM t;
};

sub check_counts
{
	my ($n, $sum, $what) = @_;
	my @r = split /\n/, $node->safe_psql('postgres', $counts);
	is(join(', ', @r), join(', ', ("$n|$sum") x 3),
		"$what: sequential scan, index scan and page scan see all $n rows");
}

# the ids the table holds
my %ids = map { $_ => 1 } grep { $_ % 10 != 0 } 1 .. 3000;
sub expected
{
	my $sum = 0;
	$sum += $_ for keys %ids;
	return (scalar(keys %ids), $sum);
}
check_counts(expected(), 'before the merge');

my $next = 3001;
foreach my $round (1 .. 3)
{
	my $merge = IPC::Run::start(
		[ 'psql', '-X', '-A', '-t', '-d', $node->connstr('postgres'),
		  '-c', "SELECT files_out FROM armdb_compact('t')" ],
		'>', \my $merge_out, '2>', \my $merge_err);
	usleep(300_000);
	# more than a file's worth, one row a statement: the active file fills
	# and its successor starts while the merge copies
	my $last = $next + 799;
	$node->safe_psql('postgres', join('',
		map { "INSERT INTO t VALUES ($_, repeat('y', 100));\n" } $next .. $last));
	$ids{$_} = 1 for $next .. $last;
	$next = $last + 1;
	$merge->finish;
	chomp $merge_out;
	cmp_ok($merge_out, '>=', 2, "round $round: the merge wrote $merge_out outputs")
	  or diag($merge_err);
	check_counts(expected(), "round $round, after a merge beside a rotation");
	$node->safe_psql('postgres', "DELETE FROM t WHERE id % 7 = $round; VACUUM t");
	delete $ids{$_} for grep { $_ % 7 == $round } keys %ids;
	check_counts(expected(), "round $round, after DELETE and VACUUM");
}

$node->restart;
check_counts(expected(), 'after a restart');
$node->safe_psql('postgres', "SELECT armdb_compact('t')");
check_counts(expected(), 'after a last merge');

# a standby, then: rows deleted, the active file closed by VACUUM FREEZE,
# a merge (outputs numbered above the file the seal started), new rows
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('rot_standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;
$node->safe_psql('postgres', 'DELETE FROM t WHERE id % 5 = 0; VACUUM (FREEZE) t');
delete $ids{$_} for grep { $_ % 5 == 0 } keys %ids;
cmp_ok($node->safe_psql('postgres', "SELECT files_out FROM armdb_compact('t')"),
	'>=', 1, 'a merge after the seal');
$node->safe_psql('postgres', join('',
	map { "INSERT INTO t VALUES ($_, 'z');\n" } $next .. $next + 99));
$ids{$_} = 1 for $next .. $next + 99;
check_counts(expected(), 'rows written after a seal and a merge');
$node->wait_for_catchup($standby);
my ($n, $sum) = expected();
is($standby->safe_psql('postgres', 'SELECT count(*), sum(id) FROM t'),
	"$n|$sum", 'the standby replays them too');
$standby->promote;
is($standby->safe_psql('postgres', 'SELECT count(*), sum(id) FROM t'),
	"$n|$sum", 'and keeps them when promoted');
$standby->stop;

# a salvage at load (armdb.skip_damaged_entries) closes an active file with
# damage inside: the file it starts gets its FILE record at once, as any
# seal's, so that a standby creates it before its first entry (were a merge
# numbered above it to come first, replay would take it for merged away)
$node->backup('b2');
my $standby2 = PostgreSQL::Test::Cluster->new('salvage_standby');
$standby2->init_from_backup($node, 'b2', has_streaming => 1);
$standby2->start;
$node->wait_for_catchup($standby2);
my $dboid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'");
my $filenode = $node->safe_psql('postgres', "SELECT pg_relation_filenode('t')");
my $active_q = "SELECT file_id FROM armdb_file_stats('t') WHERE active";
my $active = $node->safe_psql('postgres', $active_q);
my $damaged = sprintf('%s/armdb/%s/%s/0/%06d.data',
	$node->data_dir, $dboid, $filenode, $active);
$node->stop;
ArmdbTest::flip_byte($damaged, int((-s $damaged) / 3));
$node->start;
$node->safe_psql('postgres',
	'SET armdb.skip_damaged_entries = on; SELECT count(*) FROM t');
my $started = $node->safe_psql('postgres', $active_q);
cmp_ok($started, '>', $active, 'the salvage closed the damaged active file');
$node->wait_for_catchup($standby2);
ok(-e sprintf('%s/armdb/%s/%s/0/%06d.data',
		$standby2->data_dir, $dboid, $filenode, $started),
	'the standby has the file the salvage started, before its first entry');
$node->safe_psql('postgres',
	'INSERT INTO t SELECT g, \'s\' FROM generate_series(2000001, 2000050) g');
$node->wait_for_catchup($standby2);
is($standby2->safe_psql('postgres',
		'SELECT count(*) FROM t WHERE id > 2000000'),
	'50', 'and replays the rows written to it');
$standby2->stop;
$node->stop;
done_testing();
