# Crash safety of armdb tables: acknowledged commits survive kill -9 of the
# postmaster and an immediate shutdown, rows of transactions that never
# committed do not come back, synchronous_commit = off keeps the atomicity
# invariant, and DROP TABLE removes the table's directory only at commit.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use ArmdbTest;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', qq(
shared_preload_libraries = 'armdb'
max_connections = 30
autovacuum = off
));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION armdb');
$node->safe_psql('postgres',
	'CREATE TABLE acked (w int, i int, pad text) USING armdb');
$node->safe_psql('postgres',
	'CREATE TABLE async (w int, i int, pad text) USING armdb');

my $tempdir = PostgreSQL::Test::Utils::tempdir();

# A writer is a psql process that runs single-row autocommit INSERTs and
# echoes "w i" after each one: psql runs \echo only once the INSERT has
# returned, so a line in the writer's output is an acknowledged commit.
# ON_ERROR_STOP makes it exit when the server goes away.
sub start_writer
{
	my ($table, $w, $n, $setting) = @_;
	my $script = "$tempdir/writer_${table}_$w.sql";
	my $out = "$tempdir/writer_${table}_$w.out";
	open(my $fh, '>', $script) or die "could not write $script: $!";
	print $fh "SET synchronous_commit = $setting;\n" if defined $setting;
	for my $i (1 .. $n)
	{
		print $fh
		  "INSERT INTO $table VALUES ($w, $i, repeat('p', ($w * 37 + $i) % 300));\n\\echo $w $i\n";
	}
	close($fh);
	my $h = start_psql_script($node, $script, $out);
	return { h => $h, out => $out, w => $w };
}

# the acknowledged i of a writer, from its output so far
sub acked_of
{
	my ($writer) = @_;
	my @acked;
	open(my $fh, '<', $writer->{out}) or return ();
	while (my $line = <$fh>)
	{
		# a line cut short by the reader racing the writer does not count
		next unless $line =~ /^(\d+) (\d+)\n\z/;
		push @acked, $2;
	}
	close($fh);
	return @acked;
}

sub finish_writers
{
	for my $writer (@_)
	{
		eval { $writer->{h}->finish; };
	}
}

# For writer $w of $table: the i present, in order, and how many are
# duplicated.
sub present_of
{
	my ($table, $w) = @_;
	my $rows = $node->safe_psql('postgres',
		"SELECT string_agg(i::text, ',' ORDER BY i) FROM $table WHERE w = $w");
	my $dups = $node->safe_psql('postgres',
		"SELECT count(*) FROM (SELECT i FROM $table WHERE w = $w GROUP BY i HAVING count(*) > 1) d"
	);
	return ([ $rows eq '' ? () : split(/,/, $rows) ], $dups);
}

# the present i must be exactly 1..k: committed in order, none lost in
# the middle, none twice
sub is_prefix
{
	my ($present) = @_;
	for my $idx (0 .. $#$present)
	{
		return 0 if $present->[$idx] != $idx + 1;
	}
	return 1;
}

sub count_rows
{
	my ($table, $where) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM $table" . (defined $where ? " WHERE $where" : ''));
}


# kill -9 the postmaster and, right after it, every one of its children, as
# a power cut would (with postmaster_only, the postmaster alone, as
# $node->kill9 does: its children then exit on their own); wait until they
# are all gone, since a new postmaster refuses to start while any of them
# is attached to the old shared memory, then start the server again
sub crash_and_restart
{
	my %opts = @_;
	my ($pm) = split(/\n/, slurp_file($node->data_dir . '/postmaster.pid'));
	my @children = grep { /^\d+$/ } split(/\s+/, `ps -o pid= --ppid $pm`);
	$node->kill9;
	kill 9, @children unless $opts{postmaster_only};
	$opts{before_start}->() if $opts{before_start};
	for (1 .. $PostgreSQL::Test::Utils::timeout_default * 10)
	{
		last unless grep { kill(0, $_) } ($pm, @children);
		usleep(100_000);
	}
	$node->start;
}

# ---------------------------------------------------------------------------
# 1. kill -9 of the postmaster while 4 writers commit
# ---------------------------------------------------------------------------

# Rows of transactions that are still open at the crash: a big one whose
# entries have certainly reached the data files, and one whose only insert
# is in a released savepoint.
my $open1 = $node->background_psql('postgres');
$open1->query_safe('BEGIN');
$open1->query_safe(
	"INSERT INTO acked SELECT 100, g, repeat('o', 200) FROM generate_series(1, 50000) g"
);
my $open2 = $node->background_psql('postgres');
$open2->query_safe('BEGIN');
$open2->query_safe('SAVEPOINT s');
$open2->query_safe(
	'INSERT INTO acked SELECT 102, g, NULL FROM generate_series(1, 10) g');
$open2->query_safe('RELEASE SAVEPOINT s');

# rolled back, with and without a savepoint
$node->safe_psql(
	'postgres', q{
BEGIN;
INSERT INTO acked SELECT 101, g, 'rolled back' FROM generate_series(1, 5000) g;
ROLLBACK;
});
# committed, with one savepoint rolled back
$node->safe_psql(
	'postgres', q{
BEGIN;
INSERT INTO acked VALUES (103, 1, 'kept');
SAVEPOINT s;
INSERT INTO acked SELECT 103, g, 'undone' FROM generate_series(2, 1000) g;
ROLLBACK TO SAVEPOINT s;
INSERT INTO acked VALUES (103, 3, 'kept');
SAVEPOINT s2;
INSERT INTO acked VALUES (103, 4, 'kept');
RELEASE SAVEPOINT s2;
COMMIT;
});

# the open transactions are visible to no one else
is(count_rows('acked', 'w IN (100, 102)'),
	'0', 'rows of open transactions are invisible to other sessions');

# a REPEATABLE READ snapshot taken now must not see what the writers commit
my $rr = $node->background_psql('postgres');
$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
my $rr_before = $rr->query_safe('SELECT count(*) FROM acked');
chomp $rr_before;

my @writers = map { start_writer('acked', $_, 200000) } (1 .. 4);
sleep 3;

my $rr_after = $rr->query_safe('SELECT count(*) FROM acked');
chomp $rr_after;
is($rr_after, $rr_before,
	'a REPEATABLE READ snapshot does not see rows committed after it');
my $rc_now = count_rows('acked', 'w BETWEEN 1 AND 4');
cmp_ok($rc_now, '>', 0,
	'a new READ COMMITTED statement sees the writers\' commits');

my $log_offset = -s $node->logfile;
crash_and_restart(
	before_start => sub {
		finish_writers(@writers);
		# the sessions lost their server; reap them quietly
		for my $s ($open1, $open2, $rr)
		{
			eval { $s->{run}->kill_kill; };
		}
	});

my $total_acked = 0;
for my $writer (@writers)
{
	my $w = $writer->{w};
	my @acked = acked_of($writer);
	$total_acked += @acked;
	my ($present, $dups) = present_of('acked', $w);
	is($dups, '0', "writer $w: no row is there twice");
	ok(is_prefix($present),
		"writer $w: the rows present are 1.." . scalar(@$present));
	# every acknowledged row is there; at most the one in flight at the
	# crash is there unacknowledged
	my $k = @$present;
	my $a = @acked;
	ok($k == $a || $k == $a + 1,
		"writer $w: all $a acknowledged rows are there ($k present)");
}
cmp_ok($total_acked, '>', 100, "the writers got through $total_acked commits");

is(count_rows('acked', 'w = 100'),
	'0', 'rows of a transaction open at the crash are gone');
is(count_rows('acked', 'w = 102'),
	'0', 'rows of a released savepoint of an open transaction are gone');
is(count_rows('acked', 'w = 101'), '0', 'rolled back rows are gone');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(i::text || pad, ',' ORDER BY i) FROM acked WHERE w = 103"
	),
	'1kept,3kept,4kept',
	'a committed transaction keeps exactly what its savepoints kept');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM acked WHERE w BETWEEN 1 AND 4 AND pad IS DISTINCT FROM repeat('p', (w * 37 + i) % 300)"
	),
	'0',
	'the recovered rows have their values');

my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/PANIC|TRAP:|Assert|terminated by signal 11|segmentation fault/i,
	'no PANIC, assertion failure or crash in the log after kill -9');

# the table takes new rows after recovery, and the restarted writer's rows
# come after the recovered ones
my ($before_max) = $node->safe_psql('postgres',
	'SELECT coalesce(max(i), 0) FROM acked WHERE w = 1');
$node->safe_psql('postgres',
	"INSERT INTO acked SELECT 1, g, repeat('p', (37 + g) % 300) FROM generate_series($before_max + 1, $before_max + 1000) g"
);
my ($present1, $dups1) = present_of('acked', 1);
ok(is_prefix($present1) && @$present1 == $before_max + 1000,
	'inserts after recovery add to the recovered rows')
  or diag("before: $before_max, after: " . scalar(@$present1)
	  . ", duplicates: $dups1");

# ---------------------------------------------------------------------------
# 2. immediate shutdown, then a clean restart
# ---------------------------------------------------------------------------
my $count_before = count_rows('acked');
my $sum_before = $node->safe_psql('postgres',
	'SELECT sum(w::bigint * 1000000 + i), md5(string_agg(pad, \',\' ORDER BY w, i)) FROM acked'
);
$node->stop('immediate');
$node->start;
is(count_rows('acked'), $count_before,
	'committed rows survive pg_ctl stop -m immediate');
is( $node->safe_psql(
		'postgres',
		'SELECT sum(w::bigint * 1000000 + i), md5(string_agg(pad, \',\' ORDER BY w, i)) FROM acked'
	),
	$sum_before,
	'... with their values');
$node->restart;
is(count_rows('acked'), $count_before,
	'committed rows survive a second, clean restart');
is( $node->safe_psql(
		'postgres',
		'SELECT sum(w::bigint * 1000000 + i), md5(string_agg(pad, \',\' ORDER BY w, i)) FROM acked'
	),
	$sum_before,
	'... with their values');
$node->restart;
is(count_rows('acked'), $count_before, 'and a third');

# ---------------------------------------------------------------------------
# 3. synchronous_commit = off
# ---------------------------------------------------------------------------
# A commit acknowledged with synchronous_commit = off may be lost in a crash,
# but only with every later commit of its session (the WAL is flushed in
# order), and once a later synchronous commit has flushed the WAL it may
# not be lost any more: armdb made its rows durable at pre-commit.
my @async = map { start_writer('async', $_, 200000, 'off') } (1 .. 4);
sleep 2;
my %guaranteed = map { $_->{w} => scalar(acked_of($_)) } @async;
# a synchronous commit flushes the WAL up to it, so every commit
# acknowledged before it started is durable
$node->safe_psql('postgres',
	'SET synchronous_commit = on; CREATE TABLE sync_marker (a int) USING armdb; INSERT INTO sync_marker VALUES (1)'
);
usleep(500_000);
$log_offset = -s $node->logfile;
crash_and_restart(before_start => sub { finish_writers(@async); });

my $async_total = 0;
for my $writer (@async)
{
	my $w = $writer->{w};
	my @acked = acked_of($writer);
	my ($present, $dups) = present_of('async', $w);
	$async_total += @$present;
	is($dups, '0', "synchronous_commit = off, writer $w: no row twice");
	ok(is_prefix($present),
		"synchronous_commit = off, writer $w: the rows present are 1.."
		  . scalar(@$present));
	cmp_ok(scalar(@$present), '>=', $guaranteed{$w},
		"synchronous_commit = off, writer $w: the $guaranteed{$w} rows committed before a synchronous commit are there"
	);
	cmp_ok(scalar(@$present), '<=', scalar(@acked) + 1,
		"synchronous_commit = off, writer $w: nothing beyond what was sent");
}
cmp_ok($async_total, '>', 100,
	"synchronous_commit = off: $async_total rows recovered");
is(count_rows('sync_marker'), '1', 'the synchronous commit survived');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM async WHERE pad IS DISTINCT FROM repeat('p', (w * 37 + i) % 300)"
	),
	'0',
	'synchronous_commit = off: the recovered rows have their values');
$log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/PANIC|TRAP:|Assert|terminated by signal 11|segmentation fault/i,
	'no PANIC, assertion failure or crash in the log after the second kill -9');

# ---------------------------------------------------------------------------
# 4. the transaction ids of transactions lost in a crash are used again
# ---------------------------------------------------------------------------
# armdb entries carry their xid.  A transaction that was open at a crash
# (or whose commit record did not reach the WAL) leaves entries in the data
# files; after the restart PostgreSQL may hand its xid to a new transaction,
# and when that one commits the old entries must not come to life.
$node->safe_psql('postgres',
	'CREATE TABLE ghost (i int, pad text) USING armdb');
my $ghost = $node->background_psql('postgres');
$ghost->query_safe('BEGIN');
my $ghost_xid = $ghost->query_safe('SELECT txid_current()');
chomp $ghost_xid;
# far more than a write buffer: most of it is in the data files
$ghost->query_safe(
	"INSERT INTO ghost SELECT g, repeat('g', 200) FROM generate_series(1, 100000) g"
);
crash_and_restart(before_start => sub { eval { $ghost->{run}->kill_kill; }; });
is(count_rows('ghost'), '0',
	'rows of a transaction open at the crash are gone');
# use transaction ids until the lost one has been handed out again
my $next = $node->safe_psql('postgres', 'SELECT txid_current()');
my $needed = $ghost_xid - $next + 3;
if ($needed > 0)
{
	$node->safe_psql('postgres', "SELECT txid_current();\n" x $needed);
}
cmp_ok($node->safe_psql('postgres', 'SELECT txid_current()'),
	'>', $ghost_xid, "transaction id $ghost_xid was used again");
is(count_rows('ghost'), '0',
	'... the lost rows stay gone after their xid committed again');
$node->restart;
is(count_rows('ghost'), '0', '... also after a restart');

# ---------------------------------------------------------------------------
# 5. DROP TABLE removes the directory at commit, keeps it on rollback
# ---------------------------------------------------------------------------
my $dboid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'");
$node->safe_psql('postgres',
	'CREATE TABLE dropme (a int) USING armdb; INSERT INTO dropme SELECT generate_series(1, 1000)'
);
my $filenode =
  $node->safe_psql('postgres', "SELECT pg_relation_filenode('dropme')");
my $dir = $node->data_dir . "/armdb/$dboid/$filenode";
ok(-d $dir, 'an armdb table has its directory under armdb/<dboid>/');

$node->safe_psql('postgres', 'BEGIN; DROP TABLE dropme; ROLLBACK');
ok(-d $dir, 'DROP TABLE rolled back keeps the directory');
is(count_rows('dropme'), '1000', '... and the rows');

# a DROP still open at a crash did not happen
my $dropper = $node->background_psql('postgres');
$dropper->query_safe('BEGIN');
$dropper->query_safe('DROP TABLE dropme');
ok(-d $dir, 'an uncommitted DROP TABLE keeps the directory');
# this time the postmaster alone, as $node->kill9 does
crash_and_restart(
	postmaster_only => 1,
	before_start => sub { eval { $dropper->{run}->kill_kill; }; });
ok(-d $dir, 'a DROP TABLE open at a crash keeps the directory');
is(count_rows('dropme'), '1000', '... and the rows');

$node->safe_psql('postgres', 'DROP TABLE dropme');
ok(!-e $dir, 'DROP TABLE removes the directory at commit');

# TRUNCATE: the old storage goes at commit, a new one takes its place
$node->safe_psql('postgres',
	'CREATE TABLE truncme (a int) USING armdb; INSERT INTO truncme SELECT generate_series(1, 100)'
);
my $old_filenode =
  $node->safe_psql('postgres', "SELECT pg_relation_filenode('truncme')");
my $old_dir = $node->data_dir . "/armdb/$dboid/$old_filenode";
ok(-d $old_dir, 'truncme has a directory');
$node->safe_psql('postgres', 'BEGIN; TRUNCATE truncme; ROLLBACK');
ok(-d $old_dir, 'TRUNCATE rolled back keeps the old directory');
$node->safe_psql('postgres', 'TRUNCATE truncme');
my $new_filenode =
  $node->safe_psql('postgres', "SELECT pg_relation_filenode('truncme')");
ok(!-e $old_dir, 'TRUNCATE removes the old directory at commit');
ok(-d $node->data_dir . "/armdb/$dboid/$new_filenode",
	'... and the new one is there');
$node->restart;
is(count_rows('truncme'), '0', 'a committed TRUNCATE survives a restart');

# a table created in a transaction that rolls back leaves no directory
my $before = join(',', sort glob($node->data_dir . "/armdb/$dboid/*"));
$node->safe_psql('postgres',
	'BEGIN; CREATE TABLE gone (a int) USING armdb; INSERT INTO gone VALUES (1); ROLLBACK'
);
my $after = join(',', sort glob($node->data_dir . "/armdb/$dboid/*"));
is($after, $before, 'CREATE TABLE rolled back leaves no directory');

$node->stop;
my $final_log = slurp_file($node->logfile);
unlike($final_log, qr/PANIC|TRAP:|terminated by signal 11/,
	'no PANIC or crash anywhere in the log');

done_testing();
