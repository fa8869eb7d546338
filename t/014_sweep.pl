# Nothing removes armdb storage before WAL redo has finished (design §5a):
# a new table's main fork file may be missing after a power loss and come
# back only through redo.  Leftovers of a crash are swept afterwards by the
# "armdb sweep" background workers, which decide from each database's
# pg_class, never from file presence, and never touch storage made since
# the server started.
use strict;
use warnings;
use File::Copy;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('sweep');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'armdb'\nmax_prepared_transactions = 5");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION armdb');
my $dboid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'");

sub armdb_dir
{
	my ($db, $table) = @_;
	my $filenode = $node->safe_psql($db, "SELECT pg_relation_filenode('$table')");
	my $oid = $node->safe_psql($db,
		'SELECT oid FROM pg_database WHERE datname = current_database()');
	return $node->data_dir . "/armdb/$oid/$filenode";
}

# kill -9 the postmaster and all its children, as a power cut would; run
# before_start while everything is down, then start again
sub crash_and_restart
{
	my (%opts) = @_;
	my ($pm) = split(/\n/, slurp_file($node->data_dir . '/postmaster.pid'));
	# The children die first, while the postmaster is stopped (it can
	# neither react nor start others): a backend that outlived the
	# postmaster would see it gone and exit with FATAL, aborting its
	# transaction -- and removing the storage it created, the very leftover
	# a crash is to leave here.
	kill 'STOP', $pm;
	my @children = grep { /^\d+$/ } split(/\s+/, `ps -o pid= --ppid $pm`);
	kill 9, @children;
	$node->kill9;
	for (1 .. $PostgreSQL::Test::Utils::timeout_default * 10)
	{
		last unless grep { kill(0, $_) } ($pm, @children);
		usleep(100_000);
	}
	$opts{before_start}->() if $opts{before_start};
	$node->start;
}

# wait for the sweep that ran after the latest start to report
sub wait_for_sweep
{
	my ($offset) = @_;
	$node->wait_for_log(qr/armdb sweep: finished/, $offset);
}

sub wait_until_gone
{
	my ($path) = @_;
	for (1 .. $PostgreSQL::Test::Utils::timeout_default * 10)
	{
		return 1 unless -e $path;
		usleep(100_000);
	}
	return 0;
}

# ---------------------------------------------------------------------------
# 1. A table created after the last checkpoint loses its (empty, not yet
#    fsynced) main fork file in a power cut: redo brings it back, and armdb
#    must not have removed the table's rows before that.
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', q{
CHECKPOINT;
CREATE TABLE t (id int) USING armdb;
INSERT INTO t SELECT generate_series(1, 1000);
});
my $t_dir = armdb_dir('postgres', 't');
my $t_main = $node->data_dir . '/'
  . $node->safe_psql('postgres', "SELECT pg_relation_filepath('t')");
ok(-d $t_dir && -e $t_main, 't has its armdb directory and main fork file');

my $offset = -s $node->logfile;
crash_and_restart(before_start => sub { unlink $t_main or die "unlink: $!"; });
ok(-e $t_main, 'redo brought the main fork file back');
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM t');
is($out, '1000', 'all rows of t are there after the power cut');
is($err, '', '... without an error');
wait_for_sweep($offset);
ok(-d $t_dir, 'the sweep after recovery keeps t');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), '1000',
	'... and its rows');

# ---------------------------------------------------------------------------
# 2. Real leftovers are still swept, after recovery: a table created in a
#    transaction that was open at the crash, and a dropped database's files.
#    A prepared transaction's changes to an armdb table's catalog row keep
#    the table.
# ---------------------------------------------------------------------------
my $open = $node->background_psql('postgres');
$open->query_safe('BEGIN');
$open->query_safe('CREATE TABLE crashed (a int) USING armdb');
$open->query_safe('INSERT INTO crashed SELECT generate_series(1, 100)');
my $crashed_dir = $node->data_dir . "/armdb/$dboid/"
  . $open->query_safe("SELECT pg_relation_filenode('crashed')");
chomp $crashed_dir;
ok(-d $crashed_dir, 'the uncommitted table has its armdb directory');

# a dropped database whose armdb files stayed behind: keep a copy of them,
# drop the database and put the copy back while the server is down (as a
# crash between the catalog change and armdb's removal would leave it)
$node->safe_psql('postgres', 'CREATE DATABASE gone');
$node->safe_psql('gone', q{
CREATE EXTENSION armdb;
CREATE TABLE g (a int) USING armdb;
INSERT INTO g SELECT generate_series(1, 100);
});
my $gone_oid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'gone'");
my $gone_dir = $node->data_dir . "/armdb/$gone_oid";
my $gone_copy = PostgreSQL::Test::Utils::tempdir() . '/gone';
system('cp', '-a', $gone_dir, $gone_copy) == 0 or die 'cp failed';
$node->safe_psql('postgres', 'DROP DATABASE gone');
ok(!-e $gone_dir, 'DROP DATABASE removed the armdb directory');

# a prepared transaction that changed t's catalog row and wrote rows
$node->safe_psql('postgres', q{
CREATE TABLE p (id int) USING armdb;
INSERT INTO p SELECT generate_series(1, 10);
BEGIN;
ALTER TABLE p ADD COLUMN note text;
INSERT INTO p SELECT g, 'prepared' FROM generate_series(11, 20) g;
PREPARE TRANSACTION 'px';
});
my $p_dir = armdb_dir('postgres', 'p');

$offset = -s $node->logfile;
crash_and_restart(
	before_start => sub {
		eval { $open->{run}->kill_kill; };
		system('cp', '-a', $gone_copy, $gone_dir) == 0 or die 'cp failed';
	});
ok(wait_until_gone($crashed_dir),
	'the directory of a table whose creator died in the crash is swept');
ok(wait_until_gone($gone_dir), "a dropped database's armdb directory is swept");
wait_for_sweep($offset);
# wait for the line itself rather than rely on the order of two processes'
# log lines (the worker logs a removal, the launcher that it finished)
ok( eval {
		$node->wait_for_log(qr/armdb sweep: removed "\Q$crashed_dir\E"/,
			$offset);
		1;
	},
	'the log names what was removed')
  or diag(slurp_file($node->logfile, $offset));
ok(-d $t_dir, 't is kept');
ok(-d $p_dir, 'the table a prepared transaction altered is kept');
$node->safe_psql('postgres', "COMMIT PREPARED 'px'");
is($node->safe_psql('postgres', "SELECT count(*), count(note) FROM p"),
	'20|10', 'COMMIT PREPARED after the crash sees all rows');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), '1000',
	't still has its rows');

# ---------------------------------------------------------------------------
# 3. Storage made after the start is never swept, committed or not, even
#    when it is made before the sweep looks at pg_class (armdb.sweep_delay
#    holds the sweep back so that it surely is).
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE TABLE trunc (a int) USING armdb;
INSERT INTO trunc SELECT generate_series(1, 50);
});
my $trunc_dir = armdb_dir('postgres', 'trunc');
$node->append_conf('postgresql.conf', "armdb.sweep_delay = '10s'");
$offset = -s $node->logfile;
crash_and_restart();
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'armdb sweep launcher'"
	),
	'1',
	'the sweep launcher shows in pg_stat_activity');
my $new_open = $node->background_psql('postgres');
$new_open->query_safe('BEGIN');
$new_open->query_safe('CREATE TABLE fresh_open (a int) USING armdb');
$new_open->query_safe('INSERT INTO fresh_open SELECT generate_series(1, 30)');
$new_open->query_safe('TRUNCATE trunc');
my $fresh_open_dir = $node->data_dir . "/armdb/$dboid/"
  . $new_open->query_safe("SELECT pg_relation_filenode('fresh_open')");
chomp $fresh_open_dir;
$node->safe_psql('postgres', q{
CREATE TABLE fresh (a int) USING armdb;
INSERT INTO fresh SELECT generate_series(1, 40);
});
ok(!$node->log_contains(qr/armdb sweep: finished/, $offset),
	'the tables were made before the sweep ran');
my $fresh_dir = armdb_dir('postgres', 'fresh');
wait_for_sweep($offset);
ok(-d $fresh_dir, 'a table created after the start is kept');
ok(-d $fresh_open_dir, '... also while its creating transaction is open');
ok(-d $trunc_dir, '... and a table an open transaction truncates');
$new_open->query_safe('ROLLBACK');
$new_open->quit;
is($node->safe_psql('postgres', 'SELECT count(*) FROM trunc'), '50',
	'the truncation rolled back');
is($node->safe_psql('postgres', 'SELECT count(*) FROM fresh'), '40',
	'the new table has its rows');

# ---------------------------------------------------------------------------
# 4. A database whose worker cannot be started keeps its directories: with
#    max_worker_processes taken by the two launchers there is no slot for a
#    sweep worker.  The next start sweeps them.
# ---------------------------------------------------------------------------
$node->append_conf('postgresql.conf',
	"armdb.sweep_delay = 0\nmax_worker_processes = 2");
$node->restart;
$open = $node->background_psql('postgres');
$open->query_safe('BEGIN');
$open->query_safe('CREATE TABLE crashed2 (a int) USING armdb');
$crashed_dir = $node->data_dir . "/armdb/$dboid/"
  . $open->query_safe("SELECT pg_relation_filenode('crashed2')");
chomp $crashed_dir;
$offset = -s $node->logfile;
crash_and_restart(before_start => sub { eval { $open->{run}->kill_kill; }; });
$node->wait_for_log(
	qr/armdb sweep: could not start a worker for database $dboid: no background worker slot is free/,
	$offset);
ok(-d $crashed_dir, 'without a worker slot the leftover stays')
  or diag("the directory was $crashed_dir; the server log since the crash:\n"
	  . slurp_file($node->logfile, $offset));
ok(-d $t_dir, '... and so does everything else');
$node->append_conf('postgresql.conf', 'max_worker_processes = 8');
$offset = -s $node->logfile;
$node->restart;
ok(wait_until_gone($crashed_dir), 'the next start sweeps it');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), '1000',
	't still has its rows');

$node->stop;
unlike(slurp_file($node->logfile), qr/PANIC|TRAP:|terminated by signal 11/,
	'no PANIC or crash anywhere in the log');

done_testing();
