# Power loss under concurrent writers: the whole data directory (WAL,
# PostgreSQL's files and armdb's) lives on lossyfs (test/lossyfs.c), a FUSE
# pass-through file system that, at a simulated power cut, throws away every
# write and truncation not fsynced since and, with strict_dirs, every new
# file or directory whose name was never made durable.  kill -9 alone (as
# t/002_crash.pl does) keeps all that the processes wrote, since the kernel
# still has it; this test checks that what armdb and PostgreSQL fsynced is
# enough: every acknowledged commit is there after the cut, and nothing of a
# transaction that did not commit comes back.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use ArmdbTest;
use File::Path qw(rmtree);
use Time::HiRes qw(usleep);

# ---------------------------------------------------------------------------
# What the test needs: lossyfs built (make test/lossyfs, from libfuse3-dev),
# fusermount3 (Debian's fuse3: it mounts for users who are not root), and a
# /dev/fuse this user may open (udev makes it 0666 on a usual Debian).
# ---------------------------------------------------------------------------
my $lossyfs = ($ENV{TESTDIR} // '.') . '/test/lossyfs';
if (!-x $lossyfs)
{
	plan skip_all =>
	  "$lossyfs is not built (make test/lossyfs; needs Debian's libfuse3-dev)";
}
if (system('fusermount3 -V >/dev/null 2>&1') != 0)
{
	plan skip_all => "fusermount3 is missing (Debian's fuse3)";
}
if (!-r '/dev/fuse' || !-w '/dev/fuse')
{
	plan skip_all =>
	  "/dev/fuse cannot be opened by this user (it should be mode 0666, as udev makes it)";
}

my $node = PostgreSQL::Test::Cluster->new('power_loss');
$node->init(allows_streaming => 1);
# the test node's default is fsync = off: a power loss would then lose
# PostgreSQL's own files, whatever armdb does
$node->append_conf(
	'postgresql.conf', qq(
fsync = on
shared_preload_libraries = 'armdb'
max_connections = 30
autovacuum = off
));

# The data directory moves to a backing directory; lossyfs mounts it back
# where it was.
my $pgdata = $node->data_dir;
my $backing = $node->basedir . '/backing';
rename($pgdata, $backing) or die "could not move $pgdata: $!";
mkdir($pgdata, 0700) or die "could not make $pgdata: $!";

my $tempdir = PostgreSQL::Test::Utils::tempdir();
my $mounted;				# the IPC::Run handle of the running lossyfs
my $fslog;					# its stderr of the current mount
my $mounts = 0;

# mount lossyfs on the data directory; $opts adds "strict_dirs"
sub mount_lossyfs
{
	my ($opts) = @_;
	$mounts++;
	$fslog = "$tempdir/lossyfs_$mounts.log";
	$mounted = IPC::Run::start(
		[
			$lossyfs, $backing, $pgdata, '-o',
			'auto_unmount' . (defined $opts ? ",$opts" : '')
		],
		'<', \undef, '>', $fslog, '2>&1');
	for (1 .. $PostgreSQL::Test::Utils::timeout_default * 10)
	{
		return if -e "$pgdata/PG_VERSION";
		usleep(100_000);
	}
	BAIL_OUT('lossyfs did not mount: ' . slurp_file($fslog));
}

# With $cut, have lossyfs roll the backing directory back to what a power
# loss would have left, and return its report; then unmount.
sub unmount_lossyfs
{
	my ($cut) = @_;
	my $report = '';
	if ($cut)
	{
		$mounted->signal('USR1');
		for (1 .. $PostgreSQL::Test::Utils::timeout_default * 10)
		{
			$report = slurp_file($fslog);
			last if $report =~ /lossyfs: power cut:/;
			usleep(100_000);
		}
		BAIL_OUT("lossyfs did not cut power: $report")
		  unless $report =~ /lossyfs: power cut:/;
	}
	# the kernel refuses while a process still has a file open: wait for
	# the last server process to go
	my $ok = 0;
	for (1 .. $PostgreSQL::Test::Utils::timeout_default * 10)
	{
		if (system('fusermount3', '-u', $pgdata) == 0)
		{
			$ok = 1;
			last;
		}
		usleep(100_000);
	}
	BAIL_OUT("could not unmount $pgdata") unless $ok;
	# lossyfs has nothing left to do; it does not always notice the
	# unmount at once
	$mounted->kill_kill(grace => 5);
	$mounted = undef;
	return $report;
}

END
{
	# leave no mount behind, whatever happened
	if ($mounted)
	{
		eval { $node->stop('immediate'); };
		system('fusermount3', '-u', '-z', $pgdata);
		eval { $mounted->kill_kill(grace => 5); };
	}
}

mount_lossyfs();
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION armdb');
$node->safe_psql('postgres',
	'CREATE TABLE acked (w int, i int, v int, pad text) USING armdb');
$node->safe_psql('postgres',
	'CREATE TABLE open_big (i int, pad text) USING armdb');


# A writer runs transactions of three statements; step $i inserts row $i,
# sets v of row $i-1 to $i, and deletes row $i-3 when $i-3 is a multiple of
# 4.  It echoes "w i" after each COMMIT: psql runs \echo only once COMMIT
# has returned, so a line in its output is an acknowledged commit.
sub start_writer
{
	my ($w, $n) = @_;
	my $script = "$tempdir/writer_$w.sql";
	my $out = "$tempdir/writer_$w.out";
	open(my $fh, '>', $script) or die "could not write $script: $!";
	for my $i (1 .. $n)
	{
		my $del = $i - 3;
		print $fh "BEGIN;\n"
		  . "INSERT INTO acked VALUES ($w, $i, 0, repeat('p', ($w * 37 + $i) % 300));\n"
		  . "UPDATE acked SET v = $i WHERE w = $w AND i = $i - 1;\n"
		  . ($del > 0 && $del % 4 == 0
			? "DELETE FROM acked WHERE w = $w AND i = $del;\n"
			: '')
		  . "COMMIT;\n\\echo $w $i\n";
	}
	close($fh);
	my $h = start_psql_script($node, $script, $out);
	return { h => $h, out => $out, w => $w };
}

# how many steps of a writer were acknowledged
sub acked_of
{
	my ($writer) = @_;
	my $n = 0;
	open(my $fh, '<', $writer->{out}) or return 0;
	while (my $line = <$fh>)
	{
		# a line cut short by the reader racing the writer does not count
		$n++ if $line =~ /^\d+ \d+\n\z/;
	}
	close($fh);
	return $n;
}

# the rows of writer $w once steps 1..$k committed, as "i:v,..."
sub expected_state
{
	my ($k) = @_;
	my @rows;
	for my $j (1 .. $k)
	{
		next if $j % 4 == 0 && $j + 3 <= $k;
		push @rows, "$j:" . ($j + 1 <= $k ? $j + 1 : 0);
	}
	return join(',', @rows);
}

sub state_of
{
	my ($w) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(string_agg(i || ':' || v, ',' ORDER BY i, v), '') FROM acked WHERE w = $w"
	);
}

# kill -9 the postmaster and every one of its children, as a power cut
# would, and wait until they are all gone
sub kill_server
{
	my ($pm) = split(/\n/, slurp_file("$pgdata/postmaster.pid"));
	my @children = grep { /^\d+$/ } split(/\s+/, `ps -o pid= --ppid $pm`);
	kill 9, $pm, @children;
	for (1 .. $PostgreSQL::Test::Utils::timeout_default * 10)
	{
		last unless grep { kill(0, $_) } ($pm, @children);
		usleep(100_000);
	}
	# the node must not try to stop a server that is gone (as kill9 does)
	$node->{_pid} = undef;
}

# The writers' steps must match what was acknowledged: each writer's rows
# are exactly the state after its k-th step, k being its acknowledged count
# or one more (the step in flight at the cut may have committed).
sub check_writers
{
	my ($label, $min_commits, @writers) = @_;
	my $total = 0;
	for my $writer (@writers)
	{
		my $w = $writer->{w};
		my $a = acked_of($writer);
		$total += $a;
		my $state = state_of($w);
		my $k;
		for my $cand ($a, $a + 1)
		{
			$k = $cand if $state eq expected_state($cand);
		}
		ok(defined $k,
			"$label, writer $w: the rows are those of its $a acknowledged commits"
			  . (defined $k && $k > $a ? ' and the one in flight' : ''))
		  or diag("got: $state\nexpected: " . expected_state($a));
	}
	cmp_ok($total, '>=', $min_commits,
		"$label: the writers got through $total commits");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM acked WHERE w < 100 AND pad IS DISTINCT FROM repeat('p', (w * 37 + i) % 300)"
		),
		'0',
		"$label: the recovered rows have their values");
	return $total;
}

# ---------------------------------------------------------------------------
# 1. a power cut while 4 writers commit
# ---------------------------------------------------------------------------

# An open transaction writes far more than a write buffer to a table of its
# own: no commit ever fsyncs those files, so the cut drops much of them.
my $open = $node->background_psql('postgres');
$open->query_safe('BEGIN');
$open->query_safe(
	"INSERT INTO open_big SELECT g, repeat('o', 200) FROM generate_series(1, 50000) g"
);
# rolled back, into the writers' table
$node->safe_psql(
	'postgres', q{
BEGIN;
INSERT INTO acked SELECT 101, g, 0, 'rolled back' FROM generate_series(1, 5000) g;
ROLLBACK;
});
# committed, with a savepoint rolled back
$node->safe_psql(
	'postgres', q{
BEGIN;
INSERT INTO acked VALUES (103, 1, 0, 'kept');
SAVEPOINT s;
INSERT INTO acked SELECT 103, g, 0, 'undone' FROM generate_series(2, 1000) g;
ROLLBACK TO SAVEPOINT s;
INSERT INTO acked VALUES (103, 3, 0, 'kept');
COMMIT;
});

my @writers = map { start_writer($_, 100000) } (1 .. 4);
sleep 3;
# an open transaction among the writers' rows too
my $open2 = $node->background_psql('postgres');
$open2->query_safe('BEGIN');
$open2->query_safe(
	"INSERT INTO acked SELECT 102, g, 0, repeat('u', 100) FROM generate_series(1, 2000) g"
);
usleep(500_000);

my $log_offset = -s $node->logfile;
kill_server();
for my $writer (@writers)
{
	eval { $writer->{h}->finish; };
}
for my $s ($open, $open2)
{
	eval { $s->{run}->kill_kill; };
}
my $report = unmount_lossyfs(1);
note($report);
my ($dropped_bytes, $dropped_pages) =
  $report =~ /(\d+) bytes of unsynced appends and (\d+) unsynced pages dropped/;
ok(defined $dropped_bytes && $dropped_bytes + $dropped_pages > 0,
	'the power cut dropped unsynced writes')
  or diag($report);

mount_lossyfs();
$node->start;

check_writers('after a power cut', 100, @writers);
is($node->safe_psql('postgres', 'SELECT count(*) FROM open_big'),
	'0', 'rows of a transaction open at the cut are gone');
is($node->safe_psql('postgres', 'SELECT count(*) FROM acked WHERE w = 102'),
	'0', '... also among committed rows');
is($node->safe_psql('postgres', 'SELECT count(*) FROM acked WHERE w = 101'),
	'0', 'rolled back rows are gone');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(i || pad, ',' ORDER BY i) FROM acked WHERE w = 103"),
	'1kept,3kept',
	'a committed transaction keeps exactly what its savepoints kept');

my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/PANIC|TRAP:|Assert|terminated by signal 11|segmentation fault/i,
	'no PANIC, assertion failure or crash in the log after the power cut');

# ---------------------------------------------------------------------------
# 2. a second cut, right after the recovery from the first: the rows
#    recovered and the new ones written since both survive
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'TRUNCATE acked');
$node->safe_psql('postgres',
	'CREATE TABLE late (w int, i int, v int, pad text) USING armdb');
my @late = map { start_writer($_, 100000) } (5 .. 6);
sleep 3;
kill_server();
for my $writer (@late)
{
	eval { $writer->{h}->finish; };
}
unmount_lossyfs(1);
mount_lossyfs();
$node->start;
check_writers('after a second power cut', 20, @late);
is($node->safe_psql('postgres', 'SELECT count(*) FROM late'),
	'0', 'a table created just before the cut is there, empty');

# ---------------------------------------------------------------------------
# 3. a clean shutdown, then a power cut: nothing is lost
# ---------------------------------------------------------------------------
my $sum_before = $node->safe_psql('postgres',
	"SELECT count(*), sum(w::bigint * 1000000 + i * 10 + v), md5(string_agg(pad, ',' ORDER BY w, i)) FROM acked"
);
$node->stop('fast');
unmount_lossyfs(1);
mount_lossyfs();
$node->start;
is( $node->safe_psql(
		'postgres',
		"SELECT count(*), sum(w::bigint * 1000000 + i * 10 + v), md5(string_agg(pad, ',' ORDER BY w, i)) FROM acked"
	),
	$sum_before,
	'a clean shutdown leaves nothing to a power cut');

# ---------------------------------------------------------------------------
# 4. POSIX's rules for new names: a file whose directory was never fsynced
#    may vanish.  PostgreSQL does not fsync a new relation's empty main fork
#    (WAL redo of its creation brings it back); armdb must not take its
#    absence before redo for a dropped table.
# ---------------------------------------------------------------------------
$node->stop('fast');
unmount_lossyfs(0);
mount_lossyfs('strict_dirs');
$node->start;
$node->safe_psql('postgres',
	"CREATE TABLE strict_t (i int) USING armdb; INSERT INTO strict_t SELECT generate_series(1, 1000)"
);
kill_server();
$report = unmount_lossyfs(1);
note($report);
mount_lossyfs();
$node->start;
{
	# issue 11 case 1: nothing removes armdb storage before redo has
	# recreated the main fork; the sweep after recovery keeps it
	my ($rc, $out, $err) =
	  $node->psql('postgres', 'SELECT count(*) FROM strict_t');
	is($out, '1000',
		'a table whose main fork vanished in the cut keeps its committed rows')
	  or diag($err);
}

$node->stop('fast');
unmount_lossyfs(0);

done_testing();
