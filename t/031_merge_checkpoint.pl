
# Copyright (c) 2026, armdb developers
#
# A checkpoint requested between a merge's first and last WAL records, and
# a flusher round, then a crash before the merge commits (fault point
# checkpoint_mid_log).  The checkpoint cannot complete before the merge
# commits (DELAY_CHKPT_START), so no recovery starts among its records,
# and the durable LSN stayed below the first one, so armdb's own replay
# does not start there either: the merge is redone in full -- no "could
# not replay a merge" WARNING, no row lost or doubled, the inputs gone.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('merge_checkpoint');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
restart_after_crash = on
autovacuum = off
armdb.compaction = off
armdb.max_file_size = '2MB'
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE t (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 150000) g;
DELETE FROM t WHERE id % 10 = 0;
VACUUM t;
});
$node->poll_query_until('postgres',
	"SELECT durability = 'wal' FROM armdb_wal_status()")
  or die 'the flusher did not take its slot';

sub content
{
	my $sql = "SELECT count(*) || ':' || md5(string_agg(id || v, ',' ORDER BY id)) FROM t";
	return (
		$node->safe_psql('postgres', "SET enable_indexscan = off; $sql"),
		$node->safe_psql('postgres', "SET enable_seqscan = off; $sql"));
}

my $dir = $node->data_dir . '/armdb/'
  . $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'postgres'")
  . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filenode('t')");
my @before_files = sort glob("$dir/*/*.data");
my ($want, $want_idx) = content();
is($want_idx, $want, 'index and sequential scans agree before');

my $log_offset = -s $node->logfile;
my ($ret, $out, $err) = $node->psql('postgres', q{
SET armdb.debug_compaction_crash_at = 'checkpoint_mid_log';
SELECT armdb_compact('t');
});
isnt($ret, 0, 'armdb_compact() did not return');
$node->poll_query_until('postgres', 'SELECT 1', '1')
  or die 'the server did not come back';
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/a checkpoint in the middle of a merge's records.*checkpoint starting.*compaction fault point \d+ reached: killing/s,
	'a checkpoint started between the merge\'s records, then the merging backend was killed');
unlike($log, qr/a checkpoint in the middle of a merge's records.*checkpoint complete.*compaction fault point \d+ reached: killing/s,
	'the checkpoint waited for the merge to commit');
unlike($log, qr/could not replay a merge/, 'recovery redid the merge without a warning');

my ($got, $got_idx) = content();
is($got, $want, 'the same rows after recovery (sequential scan)');
is($got_idx, $want, 'and by the index');
my @after_files = sort glob("$dir/*/*.data");
my %after = map { $_ => 1 } @after_files;
my @gone = grep { !$after{$_} } @before_files;
cmp_ok(scalar(@gone), '>', 0, scalar(@gone) . ' merge inputs are gone: the merge was redone');
ok(!(grep { /\.(tmp|merge)$/ } glob("$dir/*/*")), 'no .tmp or manifest left');

$node->restart;
($got, $got_idx) = content();
is($got, $want, 'and after a clean restart');
$node->stop;

done_testing();
