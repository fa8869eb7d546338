# The visibility map of armdb tables (armdb_vm.c) across crashes and on a
# hot standby: VACUUM's bits come back after a crash (XLOG_ARMDB_VM_SET
# replayed) and reach the standby, where index-only scans then fetch no
# row; the bits that DELETE, UPDATE and INSERT cleared stay cleared after
# an immediate stop before any checkpoint (XLOG_ARMDB_VM_CLEAR replayed),
# so no index-only scan returns a row a fetch would not, on the primary or
# the standby; pg_walinspect shows the records.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', qq(
shared_preload_libraries = 'armdb'
armdb.compaction = off
autovacuum = off
checkpoint_timeout = '1h'
));
$primary->start;
$primary->safe_psql('postgres',
	'CREATE EXTENSION armdb; CREATE EXTENSION pg_walinspect');
$primary->safe_psql('postgres', q{
CREATE TABLE t (id int PRIMARY KEY, k int) USING armdb;
CREATE INDEX t_k ON t (k);
INSERT INTO t SELECT g, g % 50 FROM generate_series(1, 5000) g;
});

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "max_standby_streaming_delay = '2s'");
$standby->start;

my $ios = 'SET enable_seqscan = off; SET enable_bitmapscan = off; ';

# heap fetches of an index-only scan of the query
sub fetches
{
	my ($node, $q) = @_;
	my $plan = $node->safe_psql('postgres',
		"$ios EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $q");
	return $plan =~ /Index Only Scan.*Heap Fetches: (\d+)/s ? $1 : "no index-only scan: $plan";
}

# what index-only scans return, and what a sequential scan does
sub ios_and_seq
{
	my ($node) = @_;
	my $q = 'SELECT count(*), sum(id) FROM t WHERE id > 0';
	my $k = 'SELECT count(*), sum(k) FROM t WHERE k >= 0';
	return (
		$node->safe_psql('postgres', "$ios $q") . ' / ' . $node->safe_psql('postgres', "$ios $k"),
		$node->safe_psql('postgres',
			"SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off; $q")
		  . ' / '
		  . $node->safe_psql('postgres',
			"SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off; $k"));
}

# The WAL written so far, once flushed: pg_walinspect reads no further
# (VACUUM's records have no commit to flush them; the WAL writer does).
sub wal_end
{
	my $lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
	$primary->poll_query_until('postgres',
		"SELECT pg_current_wal_flush_lsn() >= '$lsn'")
	  or die "WAL up to $lsn was not flushed";
	return $lsn;
}

# --- 1. VACUUM's bits: logged, replayed by the standby and after a crash ---
my $start = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
$primary->safe_psql('postgres', 'CHECKPOINT');
$primary->safe_psql('postgres', 'VACUUM t');
my $end = wal_end();
my $sets = $primary->safe_psql('postgres', qq{
SELECT count(*) FROM pg_get_wal_records_info('$start', '$end')
WHERE resource_manager = 'armdb' AND record_type = 'VM_SET'});
cmp_ok($sets, '>', 10, "VACUUM logged a VM_SET record per virtual page ($sets)");
is(fetches($primary, 'SELECT count(*) FROM t WHERE id > 0'), '0',
	'primary: an index-only scan fetches no row after VACUUM');
$primary->wait_for_catchup($standby);
is(fetches($standby, 'SELECT count(*) FROM t WHERE id > 0'), '0',
	'standby: the bits were replayed, no row fetched');

# the map's pages are not written before the crash: replay sets the bits
$primary->stop('immediate');
$primary->start;
is(fetches($primary, 'SELECT count(*) FROM t WHERE id > 0'), '0',
	'after a crash before any checkpoint, replay set the bits again');

# --- 2. changes clear bits, and a crash keeps them cleared ---
$primary->safe_psql('postgres', 'CHECKPOINT');	# the map's pages, set, on disk
$start = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
$primary->safe_psql('postgres', q{
DELETE FROM t WHERE id BETWEEN 100 AND 120;
UPDATE t SET k = -1 WHERE id = 1000;
UPDATE t SET id = id + 100000 WHERE id = 2000;
DELETE FROM t WHERE id = 3000;
INSERT INTO t VALUES (4000000, 7);
});
$end = wal_end();
my $clears = $primary->safe_psql('postgres', qq{
SELECT count(*) FROM pg_get_wal_records_info('$start', '$end')
WHERE resource_manager = 'armdb' AND record_type = 'VM_CLEAR'});
cmp_ok($clears, '>=', 3, "the changes logged VM_CLEAR records ($clears)");
my ($ios_rows, $seq_rows) = ios_and_seq($primary);
is($ios_rows, $seq_rows, "primary: index-only scans agree with a sequential scan ($seq_rows)");
$primary->wait_for_catchup($standby);
my ($s_ios, $s_seq) = ios_and_seq($standby);
is($s_ios, $s_seq, 'standby: index-only scans agree with a sequential scan');
is($s_seq, $seq_rows, 'standby: the same rows as the primary');

# cleared in memory only: the crash loses the map's dirty pages
$primary->stop('immediate');
$primary->start;
($ios_rows, $seq_rows) = ios_and_seq($primary);
is($ios_rows, $seq_rows,
	'after a crash before any checkpoint, index-only scans still agree with a sequential scan');
cmp_ok(fetches($primary, 'SELECT count(*) FROM t WHERE id > 0'), '>', 0,
	'... and fetch the rows of the changed pages');

# --- 3. VACUUM sets the changed pages again ---
# After the restart, the slots of the deleted rows and old versions (the
# load dropped them) and the slots reserved but never used are empty, and
# index entries may point at the former: VACUUM removes those entries and
# frees the slots (ARMDB_V2_ORPHAN), and then the pages are all-visible.
my $new_rows = 'SELECT count(*) FROM t WHERE id >= 100000';
cmp_ok(fetches($primary, $new_rows), '>', 0,
	'the new versions\' page is not all-visible before VACUUM');
$primary->safe_psql('postgres', 'VACUUM t');
is(fetches($primary, $new_rows), '0', 'primary: VACUUM set it again');
is(fetches($primary, 'SELECT count(*) FROM t WHERE id > 0'), '0',
	'primary: ... and the pages with rows deleted before the restart');
$primary->wait_for_catchup($standby);
is(fetches($standby, 'SELECT count(*) FROM t WHERE id > 0'), '0',
	'standby: ... replayed');
($s_ios, $s_seq) = ios_and_seq($standby);
is($s_ios, $s_seq, 'standby: and the answers still agree');

# --- 4. a standby snapshot older than rows VACUUM then finds all-visible ---
# VM_SET's cutoff (the newest xmin on the page, frozen in memory or not)
# cancels it, as heap's VISIBLE record does: its index-only scan never
# returns rows its snapshot does not see
my $rr = $standby->background_psql('postgres', on_error_stop => 0);
$rr->query_safe('SET enable_seqscan = off; SET enable_bitmapscan = off');
$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
my $seen = $rr->query_safe('SELECT count(*) FROM t WHERE id > 0');
$primary->safe_psql('postgres',
	'INSERT INTO t SELECT g, g % 50 FROM generate_series(5000001, 5001000) g');
$primary->safe_psql('postgres', 'VACUUM t');
$primary->wait_for_catchup($standby);
my $after = eval { $rr->query_safe('SELECT count(*) FROM t WHERE id > 0') };
ok(!defined $after || $after eq $seen,
	"standby: the old snapshot's index-only scan never sees the new rows (saw $seen, then "
	  . ($after // 'canceled') . ')');
like(slurp_file($standby->logfile), qr/conflict with recovery/,
	'standby: VM_SET resolved the recovery conflict with that snapshot');
eval { $rr->quit };
is(fetches($standby, 'SELECT count(*) FROM t WHERE id > 5000000'), '0',
	'standby: the new rows\' pages are all-visible');

# a promoted standby changes pages whose bits it replayed
$standby->promote;
$standby->safe_psql('postgres', 'DELETE FROM t WHERE id BETWEEN 500 AND 510');
($s_ios, $s_seq) = ios_and_seq($standby);
is($s_ios, $s_seq, 'promoted standby: a DELETE clears the bits it replayed');
$standby->stop('immediate');
$standby->start;
($s_ios, $s_seq) = ios_and_seq($standby);
is($s_ios, $s_seq, 'promoted standby: ... also after a crash');

my $log = slurp_file($primary->logfile) . slurp_file($standby->logfile);
unlike($log, qr/PANIC|TRAP:|terminated by signal/,
	'no PANIC, assertion failure or crash in the logs');

done_testing();
