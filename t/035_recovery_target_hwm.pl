
# Copyright (c) 2026, armdb developers
#
# A standby's replay writes entries into armdb's data files as it goes.
# Restarted after a crash with a recovery target before what it had
# replayed, its files hold entries of transactions past the target, whose
# ids the promoted server could hand out again: the end of recovery is
# refused (FATAL naming the position), as PostgreSQL refuses a stop point
# before its minimum recovery point.  Without the target it starts and
# promotes, and reads what the primary had.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'armdb'");
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE t (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO t SELECT g, 'first' FROM generate_series(1, 1000) g;
});
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

my $before = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
$primary->safe_psql('postgres',
	"INSERT INTO t SELECT g, 'later' FROM generate_series(1001, 3000) g");
$primary->wait_for_catchup($standby);
$standby->stop('immediate');

# to an earlier point: refused, with the position to use
$standby->append_conf('postgresql.conf', qq{
recovery_target_lsn = '$before'
recovery_target_action = 'promote'
});
my $log_offset = -s $standby->logfile;
# The postmaster runs in the foreground until it exits by itself.  Not
# pg_ctl start: it returns as soon as the hot standby accepts reads, before
# the end of recovery, and the postmaster can then exit before the test
# framework reads its pid file (which bails out the whole run).
my $exited = IPC::Run::run(
	[ 'postgres', '-D', $standby->data_dir ],
	'<', \undef,
	'>>', $standby->logfile,
	'2>>', $standby->logfile,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
ok(!$exited, 'the server stops by itself');
my $log = slurp_file($standby->logfile, $log_offset);
like($log, qr/shutting down due to startup process failure/,
	'... because its startup process failed');
like($log,
	qr/armdb: recovery ended at .*, but before a restart replay had already written armdb data files up to/,
	'ending recovery before what replay had written is refused');
like($log, qr/HINT:  Set the recovery target at or after/, '... with a hint');
unlike($log, qr/database system is ready to accept connections/,
	'and the server does not start writing');

# without the target it starts, catches up and promotes
$standby->append_conf('postgresql.conf', "recovery_target_lsn = ''");
$standby->start;
$primary->wait_for_catchup($standby);
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'promotion';
is($standby->safe_psql('postgres', "SELECT count(*), count(*) FILTER (WHERE v = 'later') FROM t"),
	'3000|2000', 'without it, the standby starts and promotes with every row');
ok(!-e $standby->data_dir . '/armdb/replay_hwm', 'and the bound is gone');
$standby->safe_psql('postgres', "INSERT INTO t VALUES (5000, 'promoted')");
is($standby->safe_psql('postgres', 'SELECT count(*) FROM t'), '3001', 'and it writes');

done_testing();
