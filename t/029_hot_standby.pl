
# Copyright (c) 2026, armdb developers
#
# Hot standby: sessions on a streaming standby read armdb tables while
# replay keeps their key directories current -- inserts, updates, deletes,
# rollbacks, VACUUM (with its recovery conflict), freezing, compaction,
# TRUNCATE and DROP -- with the snapshots heap gives them; then the standby
# is promoted and writes to the tables it read as a standby.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
autovacuum = off
armdb.max_file_size = '64kB'
armdb.compaction = off
});
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE hs (id int PRIMARY KEY, v text, n int) USING armdb;
CREATE INDEX hs_n ON hs (n);
INSERT INTO hs SELECT g, 'row ' || g, g % 50 FROM generate_series(1, 2000) g;
CREATE TABLE hs2 (id int, v text) USING armdb;
INSERT INTO hs2 SELECT g, 'two ' || g FROM generate_series(1, 100) g;
});
$primary->backup('b');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', qq{
max_standby_streaming_delay = '2s'
hot_standby_feedback = off
});
$standby->start;
$primary->wait_for_catchup($standby);

# the whole table, by a sequential scan and through each index
sub fingerprint
{
	my ($node, $table) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '-') FROM $table t");
}

sub by_index
{
	my ($node) = @_;
	return $node->safe_psql('postgres', q{
SET enable_seqscan = off;
SELECT count(*) || ':' || coalesce(sum(id), 0) || ':' || coalesce(md5(string_agg(v, ',' ORDER BY id)), '-') FROM hs WHERE id BETWEEN 1 AND 1000000;
SELECT count(*) || ':' || coalesce(sum(id), 0) FROM hs WHERE n = 7;
});
}

sub same_as_primary
{
	my ($what) = @_;
	$primary->wait_for_catchup($standby);
	is(fingerprint($standby, 'hs'), fingerprint($primary, 'hs'),
		"$what: the standby reads hs as the primary");
	is(by_index($standby), by_index($primary),
		"$what: and so do its index scans");
}

# the first reads load the keydirs while replay goes on
same_as_primary('loaded on the standby');
is(fingerprint($standby, 'hs2'), fingerprint($primary, 'hs2'),
	'hs2 too');

# replay keeps them current
$primary->safe_psql('postgres', q{
INSERT INTO hs SELECT g, 'new ' || g, g % 50 FROM generate_series(2001, 3000) g;
UPDATE hs SET v = v || ' upd', n = n + 1 WHERE id % 7 = 0;
DELETE FROM hs WHERE id % 11 = 0;
BEGIN; INSERT INTO hs VALUES (99999, 'rolled back', 1); ROLLBACK;
BEGIN;
INSERT INTO hs VALUES (100001, 'sub kept', 3);
SAVEPOINT s; INSERT INTO hs VALUES (100002, 'sub gone', 3); ROLLBACK TO s;
UPDATE hs SET v = 'in sub' WHERE id = 5;
COMMIT;
});
same_as_primary('after inserts, updates, deletes and a rollback');

# snapshots: a repeatable-read session keeps seeing what it saw
my $rr = $standby->background_psql('postgres');
$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
my $before = $rr->query_safe('SELECT count(*) FROM hs');
my $primary_before = $primary->safe_psql('postgres', 'SELECT count(*) FROM hs');
is($before, $primary_before, 'a repeatable-read session on the standby counts the rows');
$primary->safe_psql('postgres', q{
DELETE FROM hs WHERE id <= 300;
UPDATE hs SET v = 'later' WHERE id BETWEEN 301 AND 400;
INSERT INTO hs SELECT g, 'later ' || g, 1 FROM generate_series(3001, 3100) g;
});
$primary->wait_for_catchup($standby);
is($rr->query_safe('SELECT count(*) FROM hs'), $before,
	'after replayed deletes and inserts, it still counts the same');
is($rr->query_safe("SELECT count(*) FROM hs WHERE v = 'later'"), '0',
	'and sees no version its snapshot cannot');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM hs'),
	$primary->safe_psql('postgres', 'SELECT count(*) FROM hs'),
	'while a new session sees the primary\'s count');

# VACUUM removes versions that session can still see: a recovery conflict
# (max_standby_streaming_delay = 2s), as for heap
$primary->safe_psql('postgres', 'VACUUM hs');
$primary->wait_for_catchup($standby);
$rr->quit;
like(slurp_file($standby->logfile), qr/conflict with recovery/,
	'VACUUM\'s removals canceled the session that could still see them');
cmp_ok($standby->safe_psql('postgres',
		"SELECT confl_snapshot FROM pg_stat_database_conflicts WHERE datname = 'postgres'"),
	'>', 0, 'counted as a snapshot conflict');
same_as_primary('after VACUUM');

# slots freed by VACUUM are reused by new versions
$primary->safe_psql('postgres', q{
INSERT INTO hs SELECT g, 'reuse ' || g, g % 50 FROM generate_series(5001, 5600) g;
UPDATE hs SET n = n + 100 WHERE id BETWEEN 2500 AND 2600;
});
same_as_primary('after slots were reused');

# compaction: the standby redoes the merge and moves its locations
$primary->safe_psql('postgres', q{
DELETE FROM hs WHERE id % 3 = 0;
VACUUM hs;
});
$primary->wait_for_catchup($standby);

# two sessions in transactions: one has read hs (it may hold locations in
# the merge's inputs), the other only hs2
my $on_hs = $standby->background_psql('postgres', on_error_stop => 0);
$on_hs->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$on_hs->query_safe('SELECT count(*) FROM hs');
my $on_hs2 = $standby->background_psql('postgres');
$on_hs2->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
my $hs2_count = $on_hs2->query_safe('SELECT count(*) FROM hs2');
my $lock_conflicts = $standby->safe_psql('postgres',
	"SELECT confl_lock FROM pg_stat_database_conflicts WHERE datname = 'postgres'");

my $merged = $primary->safe_psql('postgres', 'SELECT merges FROM armdb_compact(\'hs\')');
cmp_ok($merged, '>', 0, "the primary merged files of hs ($merged merges)");
same_as_primary('after a compaction');
cmp_ok($standby->safe_psql('postgres',
		"SELECT confl_lock FROM pg_stat_database_conflicts WHERE datname = 'postgres'"),
	'>', $lock_conflicts,
	'the session holding hs was canceled before the merge removed its inputs (a lock conflict)');
is($on_hs2->query_safe('SELECT count(*) FROM hs2'), $hs2_count,
	'the session that read only hs2 goes on, with its snapshot');
$on_hs2->quit;
$on_hs->quit;
unlike(slurp_file($standby->logfile),
	qr/could not replay a merge|stopped keeping the key directory/,
	'replay kept the keydir current without a warning');

# freezing, then more changes
$primary->safe_psql('postgres', q{
VACUUM FREEZE hs;
UPDATE hs SET v = v || ' after freeze' WHERE id % 13 = 0;
});
same_as_primary('after VACUUM FREEZE');

# TRUNCATE and DROP of a table the standby has loaded
$primary->safe_psql('postgres', q{
TRUNCATE hs2;
INSERT INTO hs2 VALUES (1, 'after truncate');
});
$primary->wait_for_catchup($standby);
is(fingerprint($standby, 'hs2'), fingerprint($primary, 'hs2'),
	'after TRUNCATE the standby reads the new hs2');
$primary->safe_psql('postgres', 'DROP TABLE hs2');
$primary->wait_for_catchup($standby);
my ($ret, $out, $err) = $standby->psql('postgres', 'SELECT count(*) FROM hs2');
like($err, qr/does not exist/, 'a dropped table is gone on the standby');

# a restarted standby loads again and goes on
$standby->restart;
same_as_primary('after the standby restarted');
$primary->safe_psql('postgres', q{
UPDATE hs SET v = 'after restart' WHERE id BETWEEN 1000 AND 1100;
DELETE FROM hs WHERE id BETWEEN 1200 AND 1250;
});
same_as_primary('after changes replayed since the restart');

# a crash of the standby: its files may be ahead of where replay starts
# again; loads wait until replay has passed the position it recorded
ok(-f $standby->data_dir . '/armdb/replay_hwm',
	'replay records how far its files may be ahead');
$primary->safe_psql('postgres', q{
UPDATE hs SET v = 'before crash' WHERE id BETWEEN 1300 AND 1400;
VACUUM hs;
INSERT INTO hs SELECT g, 'reuse after vacuum ' || g, 1 FROM generate_series(7001, 7100) g;
});
$primary->wait_for_catchup($standby);
$standby->stop('immediate');
$standby->start;
same_as_primary('after a crash of the standby');

# pgbench on the primary while the standby reads
$primary->safe_psql('postgres', q{
CREATE TABLE acc (aid int PRIMARY KEY, abalance int) USING armdb;
INSERT INTO acc SELECT g, 0 FROM generate_series(1, 1000) g;
});
$primary->wait_for_catchup($standby);
$standby->safe_psql('postgres', 'SELECT count(*) FROM acc');
my $script = $primary->basedir . '/acc.sql';
open(my $fh, '>', $script) or die;
print $fh "\\set aid random(1, 1000)\n\\set delta random(-500, 500)\n";
print $fh "UPDATE acc SET abalance = abalance + :delta WHERE aid = :aid;\n";
close $fh;
my $bench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '4', '-T', '5', '-f', $script,
	  '-h', $primary->host, '-p', $primary->port, 'postgres' ],
	'>', \my $bench_out, '2>', \my $bench_err);
my $reads_ok = 1;
for (1 .. 20)
{
	my $r = $standby->safe_psql('postgres',
		'SELECT count(*) FROM acc WHERE abalance IS NOT NULL');
	$reads_ok = 0 unless $r eq '1000';
	usleep(200_000);
}
$bench->finish;
ok($reads_ok, 'every read on the standby during pgbench sees all 1000 accounts');
$primary->wait_for_catchup($standby);
is(fingerprint($standby, 'acc'), fingerprint($primary, 'acc'),
	'after pgbench the standby reads acc as the primary');
is($standby->safe_psql('postgres', 'SELECT sum(abalance) FROM acc'),
	$primary->safe_psql('postgres', 'SELECT sum(abalance) FROM acc'),
	'same sum of balances');

# promotion: the tables read as a standby take writes
my $want = fingerprint($primary, 'hs');
$primary->stop;
$standby->promote;
is(fingerprint($standby, 'hs'), $want, 'promoted: hs as the primary left it');
ok(!-e $standby->data_dir . '/armdb/replay_hwm',
	'promoted: nothing left to wait for');
$standby->safe_psql('postgres', q{
INSERT INTO hs SELECT g, 'promoted ' || g, 1 FROM generate_series(9001, 9500) g;
UPDATE hs SET v = 'promoted upd' WHERE id BETWEEN 2000 AND 2100;
DELETE FROM hs WHERE id BETWEEN 2101 AND 2200;
UPDATE acc SET abalance = 0;
});
my $after = fingerprint($standby, 'hs');
is($standby->safe_psql('postgres', "SELECT count(*) FROM hs WHERE v LIKE 'promoted%'"),
	$standby->safe_psql('postgres', "SELECT count(*) FROM hs WHERE id BETWEEN 9001 AND 9500 OR id BETWEEN 2000 AND 2100"),
	'promoted: the writes are there');
$standby->safe_psql('postgres', 'VACUUM hs');
my $cmp = $standby->safe_psql('postgres', 'SELECT merges FROM armdb_compact(\'hs\')');
is(fingerprint($standby, 'hs'), $after, 'promoted: VACUUM and compaction keep the rows');
$standby->restart;
is(fingerprint($standby, 'hs'), $after, 'promoted: and a restart');
is($standby->safe_psql('postgres', 'SELECT sum(abalance) FROM acc'), '0',
	'promoted: acc written');
$standby->stop;

done_testing();
