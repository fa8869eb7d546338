# Base backups of armdb tables taken while they are written (issue 13): the
# copy of the data files plus the WAL from the backup's checkpoint must hold
# every entry, including entries of transactions still running when the
# backup started, which reach their files from the shards' buffers only
# because the flusher holds each checkpoint at its slot's lock until they
# are written (armdb_durable.c, the checkpoint gate).
#
# pgbench TPC-B runs on armdb tables while pg_basebackup -c fast -X stream
# copies the cluster, again and again.  Each backup, restored and started,
# must be consistent: every transaction is there whole or not at all, so
# the balances of accounts, tellers and branches each add up to the deltas
# in the history.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use ArmdbTest;

my $primary = PostgreSQL::Test::Cluster->new('bb_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', qq(
shared_preload_libraries = 'armdb'
default_table_access_method = armdb
armdb.max_file_size = '256kB'
autovacuum = off
));
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION armdb');
$primary->command_ok(
	[ 'pgbench', '-i', '-s', '1', '-q', '--no-vacuum', $primary->connstr('postgres') ],
	'pgbench tables made on armdb');
is( $primary->safe_psql(
		'postgres', q{
SELECT string_agg(DISTINCT a.amname, ',') FROM pg_class c JOIN pg_am a ON a.oid = c.relam
WHERE c.relname LIKE 'pgbench_%' AND c.relkind = 'r'}),
	'armdb', 'all four tables are armdb tables');

# pgbench in the background for the whole test
my ($stdout, $stderr) = ('', '');
my $bench = IPC::Run::start(
	[
		'pgbench', '-n', '-c', '4', '-j', '2', '-T', '600',
		$primary->connstr('postgres')
	],
	'>', \$stdout, '2>', \$stderr);
$primary->poll_query_until('postgres',
	'SELECT count(*) > 50 FROM pgbench_history')
  or die 'pgbench does not get going';

my $consistent = q{
SELECT (SELECT coalesce(sum(delta), 0) FROM pgbench_history) || ' '
    || (SELECT sum(abalance) FROM pgbench_accounts) || ' '
    || (SELECT sum(tbalance) FROM pgbench_tellers) || ' '
    || (SELECT sum(bbalance) FROM pgbench_branches)};

my $rounds = 4;
for my $i (1 .. $rounds)
{
	$primary->backup("busy_$i");
	my $restored = PostgreSQL::Test::Cluster->new("bb_restored_$i");
	$restored->init_from_backup($primary, "busy_$i");
	$restored->start;
	my ($history, $accounts, $tellers, $branches) =
	  split / /, $restored->safe_psql('postgres', $consistent);
	my $commits = $restored->safe_psql('postgres',
		'SELECT count(*) FROM pgbench_history');
	ok($commits > 0, "backup $i holds $commits pgbench transactions");
	is($accounts, $history, "backup $i: accounts add up to the history");
	is($tellers, $history, "backup $i: tellers add up to the history");
	is($branches, $history, "backup $i: branches add up to the history");
	$restored->stop;
	$restored->clean_node;
}

# --- a standby made from a busy backup, and a backup taken from it ---
$primary->backup('for_standby');
my $standby = PostgreSQL::Test::Cluster->new('bb_standby');
$standby->init_from_backup($primary, 'for_standby', has_streaming => 1);
$standby->start;
$primary->safe_psql('postgres', 'CHECKPOINT');
$primary->wait_for_catchup($standby);
$standby->backup('from_standby');
# the copy has the standby's standby.signal: start it as a server of its own
unlink($standby->backup_dir . '/from_standby/standby.signal');
my $cascade = PostgreSQL::Test::Cluster->new('bb_from_standby');
$cascade->init_from_backup($standby, 'from_standby');
$cascade->start;
$cascade->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'the restored copy stays in recovery';
{
	my ($history, $accounts, $tellers, $branches) =
	  split / /, $cascade->safe_psql('postgres', $consistent);
	ok( $cascade->safe_psql('postgres', 'SELECT count(*) FROM pgbench_history') > 0
		  && $accounts eq $history
		  && $tellers eq $history
		  && $branches eq $history,
		'a backup taken from the standby restores consistent tables');
}
$cascade->stop;
$cascade->clean_node;
$standby->stop;

# --- a transaction open across the backup's checkpoint ---
# Its entries sit in its shard's buffer: the flusher's rounds are a minute
# apart and an asynchronous commit leaves the write-out to them.  Only the
# gate writes them before the checkpoint completes; the commit comes while
# the backup copies, so the backup's WAL holds the commit record but not
# the APPEND records, which lie before the backup's start.
$primary->safe_psql('postgres', q{
CREATE TABLE spans (id int, v text);
ALTER SYSTEM SET armdb.flush_interval = '60s';
SELECT pg_reload_conf();
});
sleep(1);

sub spanning_backup
{
	my ($name, $what) = @_;
	backup_across_open_transaction($primary, $name, $what, 'spans',
		['--max-rate=4M']);
	my $restored = PostgreSQL::Test::Cluster->new("bb_$name");
	$restored->init_from_backup($primary, $name);
	$restored->start;
	is($restored->safe_psql('postgres', 'SELECT count(*) FROM spans'),
		'500', "$what: the rows of the transaction open at the backup's start are there");
	$restored->stop;
}
spanning_backup('spanning', 'WAL durability');

# the same with max_slot_wal_keep_size set: commits sync, and the slot,
# which then keeps no WAL, is still the checkpoint gate
$primary->safe_psql('postgres', q{
ALTER SYSTEM SET max_slot_wal_keep_size = '1GB';
ALTER SYSTEM SET armdb.flush_interval = '1s';
SELECT pg_reload_conf();
});
$primary->poll_query_until('postgres',
	"SELECT durability = 'commit' FROM armdb_wal_status()")
  or die 'commits do not sync';
$primary->safe_psql('postgres', q{
ALTER SYSTEM SET armdb.flush_interval = '60s';
SELECT pg_reload_conf();
});
sleep(2);
spanning_backup('spanning_gate', 'max_slot_wal_keep_size set');
$primary->safe_psql('postgres', q{
ALTER SYSTEM RESET max_slot_wal_keep_size;
SELECT pg_reload_conf();
});

$bench->kill_kill;
$bench->finish;

my ($history, $accounts, $tellers, $branches) =
  split / /, $primary->safe_psql('postgres', $consistent);
is($accounts, $history, 'the primary adds up too');
$primary->stop;
done_testing();
