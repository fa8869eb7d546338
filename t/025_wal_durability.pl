# Durability from WAL (issue 13, step 2; design §4b item 4): a commit makes
# its armdb entries durable with its commit record alone.  The armdb flusher
# syncs the data files in the background, records the durable LSN in
# $PGDATA/armdb/wal_control and holds the replication slot "armdb" there,
# so that WAL from it is kept; a start replays armdb's records from it.
# Checked here:
#  - the slot exists, is held, and follows the durable LSN;
#  - rows whose entries never reached their files (asynchronous commits,
#    whose write-out is left to the flusher, with the flusher held back)
#    come back after a crash whose checkpoint is past their records (own
#    replay in rm_startup) and after a clean shutdown (replay at first use);
#  - commits sync their files, saying why, whenever the slot cannot keep
#    WAL: armdb.sync_at_commit, max_slot_wal_keep_size;
#  - a slot removed while the server was down comes back with a WARNING.
# Power loss (writes not fsynced thrown away) is t/018_power_loss.pl.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use ArmdbTest;

my $node = PostgreSQL::Test::Cluster->new('durable');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', qq(
shared_preload_libraries = 'armdb'
armdb.compaction = off
autovacuum = off
));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION armdb');

sub wait_durability
{
	my ($want) = @_;
	return $node->poll_query_until('postgres',
		"SELECT durability = '$want' FROM armdb_wal_status()");
}

# --- 1. the flusher, its slot and the durable LSN ---
ok(wait_durability('wal'), 'commits rely on WAL once the flusher runs');
is( $node->safe_psql(
		'postgres',
		"SELECT slot_type || ' ' || active || ' ' || (restart_lsn IS NOT NULL)
		 FROM pg_replication_slots WHERE slot_name = 'armdb'"),
	'physical true true',
	'the slot "armdb" is physical, held and keeps WAL');
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT pg_drop_replication_slot('armdb')");
like($err, qr/replication slot "armdb" is active/,
	'the slot cannot be dropped while the flusher holds it');

my $d0 = $node->safe_psql('postgres', 'SELECT durable_lsn FROM armdb_wal_status()');
$node->safe_psql('postgres', q{
CREATE TABLE big (id int PRIMARY KEY, pad text) USING armdb;
INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 100000) g;
});
ok( $node->poll_query_until(
		'postgres', "SELECT durable_lsn > '$d0' FROM armdb_wal_status()"),
	'the durable LSN moves once a WAL segment has gone by');
ok( $node->poll_query_until(
		'postgres', q{
SELECT s.restart_lsn = w.durable_lsn
FROM pg_replication_slots s, armdb_wal_status() w
WHERE s.slot_name = 'armdb'}),
	'the slot follows the durable LSN');

# --- 2. rows only in shard buffers come back ---
# Asynchronous commits leave their entries in the shards' buffers (their
# write-out would have to flush WAL); with the flusher's rounds a minute
# apart, nothing writes them before the crash or the shutdown.
$node->safe_psql('postgres', q{
CREATE TABLE t (id int PRIMARY KEY, v text) USING armdb;
ALTER SYSTEM SET armdb.flush_interval = '60s';
SELECT pg_reload_conf();
});
sleep(1);

sub async_rows
{
	my ($from, $to) = @_;
	my $sql = "SET synchronous_commit = off;\n";
	$sql .= "INSERT INTO t VALUES ($_, 'v$_');\n" for ($from .. $to);
	$node->safe_psql('postgres', $sql);
}

# a crash after a checkpoint past the rows' records: PostgreSQL's replay
# starts after them, armdb's own replay (rm_startup) brings them back
async_rows(1, 200);
$node->safe_psql('postgres', 'CHECKPOINT');
my $log_offset = -s $node->logfile;
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM t'),
	'200|20100', 'after a crash, every row is back');
ok( $node->log_contains(
		qr/armdb: replaying its WAL records from/, $log_offset),
	'the crash recovery replayed armdb records before its checkpoint');

# a clean shutdown: the buffers are gone, nothing is redone; the first use
# of armdb storage replays from the durable LSN
$node->safe_psql('postgres', q{
ALTER SYSTEM SET armdb.flush_interval = '60s';
SELECT pg_reload_conf();
});
async_rows(201, 300);
$log_offset = -s $node->logfile;
$node->stop('fast');
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM t'),
	'300|45150', 'after a clean shutdown, every row is back');
ok( $node->log_contains(
		qr/armdb: replaying its WAL records from/, $log_offset),
	'the first use after the start replayed armdb records');
is($node->safe_psql('postgres', q{SELECT v FROM t WHERE id = 250}),
	'v250', 'a replayed row reads back');

# --- 2a. a crashed server restarted as a standby (a failover's old primary)
# still replays from the durable LSN: only a start from a base backup skips it
$node->safe_psql('postgres', q{
ALTER SYSTEM SET armdb.flush_interval = '60s';
SELECT pg_reload_conf();
});
sleep(1);
async_rows(301, 350);
$node->safe_psql('postgres', 'CHECKPOINT');
$node->stop('immediate');
$node->set_standby_mode;
$log_offset = -s $node->logfile;
$node->start;
ok( $node->log_contains(
		qr/armdb: replaying its WAL records from/, $log_offset),
	'a standby start after a crash replays armdb records before its checkpoint');
$node->promote;
$node->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()');
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM t'),
	'350|61425', 'promoted, every row is back');
$node->safe_psql('postgres', 'DELETE FROM t WHERE id > 300');

# --- 2b. a damaged entry that replay covers is rewritten from WAL, loudly ---
# Synchronous commits write their entries to the files (unsynced) right
# after the commit record; with D held back, the next start replays them.
$node->safe_psql('postgres', q{
ALTER SYSTEM SET armdb.flush_interval = '60s';
SELECT pg_reload_conf();
});
sleep(1);
$node->safe_psql('postgres',
	"INSERT INTO t VALUES (0, 'marker-" . ('m' x 40) . "')");
my $relpath = $node->safe_psql('postgres', q{
SELECT oid FROM pg_database WHERE datname = 'postgres'}) . '/'
  . $node->safe_psql('postgres', "SELECT pg_relation_filenode('t')");
$node->stop('fast');
my ($damaged, $at);
for my $file (glob($node->data_dir . "/armdb/$relpath/*/*.data"))
{
	my $bytes = slurp_file($file);
	my $i = index($bytes, 'marker-mmmm');
	($damaged, $at) = ($file, $i + 10) if $i >= 0;
}
# encrypted (armdb.encryption_key_command set): the newest version entry
if (!defined $damaged)
{
	my $newest = -1;
	for my $file (glob($node->data_dir . "/armdb/$relpath/*/*.data"))
	{
		for my $e (data_file_entries($file))
		{
			next if ($e->{flags} & (0x80 | 0x40 | 0x08)) || $e->{gsn} <= $newest;
			$newest = $e->{gsn};
			($damaged, $at) = ($file, $e->{offset} + $e->{header} + 10);
		}
	}
}
ok(defined $damaged, 'the row\'s entry is in a data file');
flip_byte($damaged, $at);
$log_offset = -s $node->logfile;
$node->start;
is($node->safe_psql('postgres', 'SELECT v FROM t WHERE id = 0'),
	'marker-' . ('m' x 40), 'the damaged entry was rewritten from WAL');
ok( $node->log_contains(
		qr/WARNING:  armdb redo: data file ".*" held other bytes than WAL's entries at offset \d+; rewritten from WAL/,
		$log_offset),
	'... and the server log says so');
$node->safe_psql('postgres', 'DELETE FROM t WHERE id = 0');

# --- 3. when commits sync their data files ---
$node->safe_psql('postgres', q{
ALTER SYSTEM RESET armdb.flush_interval;
SELECT pg_reload_conf();
});
ok(wait_durability('wal'), 'back to one WAL flush per commit');
is( $node->safe_psql(
		'postgres', q{
SET armdb.sync_at_commit = on;
SELECT durability || ': ' || commits_sync_because FROM armdb_wal_status()}),
	'commit: armdb.sync_at_commit is on',
	'armdb.sync_at_commit makes commits sync, and says so');

$log_offset = -s $node->logfile;
$node->safe_psql('postgres', q{
ALTER SYSTEM SET max_slot_wal_keep_size = '1GB';
SELECT pg_reload_conf();
});
ok(wait_durability('commit'),
	'max_slot_wal_keep_size other than -1: commits sync');
like(
	$node->safe_psql(
		'postgres', 'SELECT commits_sync_because FROM armdb_wal_status()'),
	qr/max_slot_wal_keep_size/,
	'... and the reason names the setting');
ok( $node->wait_for_log(
		qr/WARNING:  armdb commits sync their data files: max_slot_wal_keep_size/,
		$log_offset),
	'... with a WARNING in the server log');
is($node->safe_psql('postgres',
		"SELECT active, restart_lsn IS NULL FROM pg_replication_slots WHERE slot_name = 'armdb'"),
	't|t', '... and the flusher holds its slot as the checkpoint gate only, keeping no WAL');
$node->safe_psql('postgres', 'INSERT INTO t VALUES (301, \'v301\')');
$node->safe_psql('postgres', q{
ALTER SYSTEM RESET max_slot_wal_keep_size;
SELECT pg_reload_conf();
});
ok(wait_durability('wal'), 'max_slot_wal_keep_size = -1 again: WAL again');
is($node->safe_psql('postgres',
		"SELECT active, restart_lsn IS NOT NULL FROM pg_replication_slots WHERE slot_name = 'armdb'"),
	't|t', '... the slot keeping WAL again');

# --- 4. a slot removed behind the server's back ---
$node->stop('fast');
File::Path::rmtree($node->data_dir . '/pg_replslot/armdb');
$log_offset = -s $node->logfile;
$node->start;
ok( $node->wait_for_log(
		qr/WARNING:  armdb's replication slot "armdb" was missing and has been created again/,
		$log_offset),
	'a missing slot is created again with a WARNING');
ok(wait_durability('wal'), 'and commits rely on WAL again');
is($node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM t'),
	'301|45451', 'no row was lost on the way');

$node->stop;
done_testing();
