# Compaction under churn and crashes: while the background worker merges
# the files of a table that four clients keep updating, the server is
# killed (kill -9 of every process, an immediate stop, kill -9 of the
# postmaster alone), three times.  After each restart every acknowledged
# transaction is there, completely (its updates and its log row), and no
# unacknowledged one is there except at most the one each client had in
# flight.  The worker did merge during each round, the table's disk use
# stays bounded, and the launcher comes back after each crash.
use strict;
use warnings;
use File::Find;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use ArmdbTest;
use Time::HiRes qw(usleep time);

my $nwriters = 4;
my $ngroups = 50;       # a transaction updates one group of its writer's rows
my $nrows = 5000;
my $round_secs = 10;

my $node = PostgreSQL::Test::Cluster->new('compaction_churn');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', qq(
shared_preload_libraries = 'armdb'
max_connections = 30
# dead bytes are counted by VACUUM: autovacuum keeps up with the churn
autovacuum = on
autovacuum_naptime = 1
autovacuum_vacuum_threshold = 1000
autovacuum_vacuum_scale_factor = 0
autovacuum_vacuum_insert_threshold = -1
log_autovacuum_min_duration = 0
armdb.max_file_size = '1MB'
armdb.compaction = on
armdb.compaction_naptime = 1
armdb.compaction_threshold = 0.2
));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION armdb');
# row id belongs to writer id % 4 + 1, in group (id / 4) % 50: 25 rows a
# group; pad is a function of (cnt, grp), so a row's value says whether
# cnt and pad come from the same version
$node->safe_psql(
	'postgres', qq{
CREATE TABLE t (id int PRIMARY KEY, w int NOT NULL, grp int NOT NULL,
                cnt int NOT NULL, pad text NOT NULL) USING armdb;
CREATE INDEX t_w_grp ON t (w, grp);
INSERT INTO t SELECT g, g % $nwriters + 1, (g / $nwriters) % $ngroups, 0,
                     repeat('a', 100 + 3 * ((g / $nwriters) % $ngroups))
  FROM generate_series(1, $nrows) g;
CREATE TABLE ack (w int NOT NULL, i int NOT NULL) USING armdb;
});
my $dboid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'");
my $dir = $node->data_dir . "/armdb/$dboid/"
  . $node->safe_psql('postgres', "SELECT pg_relation_filenode('t')");

my $tempdir = PostgreSQL::Test::Utils::tempdir();

# A writer is a psql process that runs transactions i = $from, $from + 1,
# ...: each adds 1 to cnt of the 25 rows of its group i % 50 (and rewrites
# their pad) and logs (w, i) in ack, then echoes "w i" once COMMIT has
# returned: a line in its output is an acknowledged commit.
sub start_writer
{
	my ($w, $from, $round) = @_;
	my $script = "$tempdir/writer_${round}_$w.sql";
	my $out = "$tempdir/writer_${round}_$w.out";
	open(my $fh, '>', $script) or die "could not write $script: $!";
	for my $i ($from .. $from + 20000)
	{
		my $g = $i % $ngroups;
		print $fh "BEGIN;\n"
		  . "UPDATE t SET cnt = cnt + 1, pad = repeat(chr(97 + (cnt + 1) % 26), 100 + 3 * grp) WHERE w = $w AND grp = $g;\n"
		  . "INSERT INTO ack VALUES ($w, $i);\n"
		  . "COMMIT;\n\\echo $w $i\n";
	}
	close($fh);
	my $h = start_psql_script($node, $script, $out);
	return { h => $h, out => $out, w => $w };
}

# the acknowledged i of a writer
sub acked_of
{
	my ($writer) = @_;
	my @acked;
	open(my $fh, '<', $writer->{out}) or return ();
	while (my $line = <$fh>)
	{
		next unless $line =~ /^(\d+) (\d+)\n\z/;
		push @acked, $2;
	}
	close($fh);
	return @acked;
}

sub files_of
{
	my ($top) = @_;
	my @files;
	find({ wanted => sub { push @files, $File::Find::name if -f $_ }, no_chdir => 1 },
		$top);
	return @files;
}

sub stats
{
	my $s = $node->safe_psql('postgres',
		'SELECT runs, files_merged, bytes_reclaimed, failures FROM armdb_compaction_stats()'
	);
	my %s;
	@s{qw(runs files_merged bytes_reclaimed failures)} = split(/\|/, $s);
	return \%s;
}

sub launcher_pid
{
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'armdb compaction launcher'"
	);
}

# Every i of writer w present in ack, and the rows of writer w whose cnt
# or pad is not what exactly the first k of its transactions make it.
sub check_writer
{
	my ($w, $acked, $prev) = @_;
	my $present = $node->safe_psql('postgres',
		"SELECT count(*), coalesce(min(i), 0), coalesce(max(i), 0), count(DISTINCT i) FROM ack WHERE w = $w"
	);
	my ($n, $min, $max, $distinct) = split(/\|/, $present);
	my $a = @$acked;
	my $a_max = $a ? $acked->[-1] : $prev;
	ok($n == $distinct && ($n == 0 || ($min == 1 && $max == $n)),
		"writer $w: the logged transactions are 1..$max, each once ($present)");
	ok($max == $a_max || $max == $a_max + 1,
		"writer $w: every acknowledged transaction is there (acknowledged up to $a_max, present up to $max)"
	);
	my $k = $max;
	my $q = qq{
SELECT count(*) FROM t WHERE w = $w AND (
  cnt <> $k / $ngroups + CASE WHEN grp BETWEEN 1 AND $k % $ngroups THEN 1 ELSE 0 END
  OR pad <> repeat(chr(97 + cnt % 26), 100 + 3 * grp))};
	is($node->safe_psql('postgres', $q), '0',
		"writer $w: its rows hold exactly the updates of its $k logged transactions (sequential scan)"
	)
	  or diag(
		$node->safe_psql(
			'postgres', qq{
SELECT id, grp, cnt, ctid, count(*) OVER (PARTITION BY id) AS copies
  FROM t WHERE w = $w ORDER BY id, cnt LIMIT 60}));
	is( $node->safe_psql('postgres',
			"SET enable_seqscan = off; SET enable_bitmapscan = off; $q"),
		'0',
		"writer $w: the same by the index on (w, grp)");
	return $k;
}

# the server's processes, postmaster first
sub server_pids
{
	my ($pm) = split(/\n/, slurp_file($node->data_dir . '/postmaster.pid'));
	return ($pm, grep { /^\d+$/ } split(/\s+/, `ps -o pid= --ppid $pm`));
}

my @crash = (
	[
		'kill -9 of every server process',
		sub {
			# stopped first, the postmaster forks no child (an autovacuum
			# worker, say) between the listing and the kill that would
			# then outlive it, attached to the shared memory
			my ($pm) = server_pids();
			kill 'STOP', $pm;
			my @pids = server_pids();
			kill 9, @pids[ 1 .. $#pids ];
			$node->kill9;
			return @pids;
		}
	],
	[
		'an immediate stop',
		sub { my @pids = server_pids(); $node->stop('immediate'); return @pids; }
	],
	[
		'kill -9 of the postmaster alone',
		sub { my @pids = server_pids(); $node->kill9; return @pids; }
	]);

my %last = map { $_ => 0 } (1 .. $nwriters);
my $fresh_size;
for my $round (1 .. 3)
{
	my ($how, $crash) = @{ $crash[ $round - 1 ] };

	my $launcher = launcher_pid();
	like($launcher, qr/^\d+$/, "round $round: the compaction launcher runs");
	my $size_start =
	  $node->safe_psql('postgres', "SELECT armdb_relation_size('t')");
	my $log_pos = -s $node->logfile;

	my @writers =
	  map { start_writer($_, $last{$_} + 1, $round) } (1 .. $nwriters);
	my $start = time;
	# The churn lasts $round_secs, and longer until the worker has merged
	# (within the usual timeout): how soon enough dead bytes gather in
	# sealed files depends on the machine's speed (a slow CI machine with
	# 2 cores filled too few 1MB files in 10s for a first merge), and the
	# check is that merges happen under churn, not how soon.
	my ($s, $max_size) = (undef, 0);
	while (1)
	{
		usleep(500_000);
		my $size =
		  $node->safe_psql('postgres', "SELECT armdb_relation_size('t')");
		$max_size = $size if $size > $max_size;
		$s = stats();
		last
		  if time - $start >= $round_secs
		  && ($s->{runs} > 0
			|| time - $start >= $PostgreSQL::Test::Utils::timeout_default);
	}
	my $secs = sprintf('%.0f', time - $start);
	my $worker = $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'armdb compaction worker'"
	);
	my @before = map { scalar(acked_of($_)) } @writers;

	my @pids = $crash->();
	for my $writer (@writers)
	{
		eval { $writer->{h}->finish; };
	}
	# a new postmaster refuses to start while an old child is attached to
	# the shared memory
	for (1 .. $PostgreSQL::Test::Utils::timeout_default * 10)
	{
		last unless grep { kill(0, $_) } @pids;
		usleep(100_000);
	}
	$node->start;

	cmp_ok($s->{runs}, '>', 0,
		"round $round: the worker merged during the churn ($s->{runs} merges in ${secs}s, $s->{files_merged} files, $s->{bytes_reclaimed} bytes reclaimed, $worker worker running)"
	);
	# A merge that finds a concurrent VACUUM freed versions whose endings
	# it dropped is undone, safely (compact.c, condition (3)): autovacuum
	# runs during the churn.  Any other failure is one.
	my @undone = (substr(slurp_file($node->logfile), $log_pos) =~
		  /compaction of shard \d+ of "t" was undone: ([^\n]*)/g);
	my $vacuum_races = grep { /a concurrent VACUUM freed versions/ } @undone;
	cmp_ok($s->{failures}, '<=', $vacuum_races,
		"round $round: no merge failed ($vacuum_races undone for a concurrent VACUUM)");

	my $total = 0;
	for my $writer (@writers)
	{
		my $w = $writer->{w};
		my @acked = acked_of($writer);
		my $err = slurp_file("$writer->{out}.err");
		unlike($err, qr/ERROR/,
			"round $round, writer $w: no statement failed before $how");
		cmp_ok(scalar(@acked), '>', 0, "round $round, writer $w: "
			  . scalar(@acked) . ' transactions acknowledged');
		$total += @acked;
		$last{$w} = check_writer($w, \@acked, $last{$w});
	}
	diag("round $round: $total transactions in ${secs}s, "
		  . "table $size_start bytes at the start, at most $max_size during the churn, "
		  . $node->safe_psql('postgres', "SELECT armdb_relation_size('t')")
		  . " after $how and recovery");

	# the launcher is back (and a new process)
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'armdb compaction launcher'",
			'1'),
		"round $round: the compaction launcher is back after $how");
	isnt(launcher_pid(), $launcher, "round $round: ... as a new process");

	# disk use stays bounded: compare with a fresh copy of the same rows
	$fresh_size //= do
	{
		$node->safe_psql('postgres',
			'CREATE TABLE fresh USING armdb AS SELECT * FROM t');
		$node->safe_psql('postgres', "SELECT armdb_relation_size('fresh')");
	};
	# Measured on 2 cores, loaded by other work: peaks of 14-55MB, 10-40
	# times a fresh copy (4 shards' active files of up to 1MB, merged
	# outputs holding kept endings, files waiting for VACUUM or the worker's
	# next round), the more the faster the clients and the slower the
	# worker; without compaction the table grows by 20-40MB a round, 95MB
	# by the third.  (The at-rest check below is the tight one.)  Those
	# figures are for about 8000 transactions a round; since commits cost
	# one WAL flush (issue 13) the clients do up to twice as many in the
	# same time, and the garbage between two of the worker's rounds grows
	# with them: the bound scales with the transactions done.
	# A round starts with what the previous one left (the worker had not
	# merged it all when the server was killed, and merges again after the
	# restart): the bound is on what the round added.
	my $scale = $total > 8000 ? $total / 8000 : 1;
	cmp_ok($max_size - $size_start, '<', 60 * $scale * $fresh_size,
		sprintf("round $round: the table grew by less than %.0f times a fresh copy during the churn of $total transactions ($size_start to at most $max_size vs $fresh_size bytes)", 60 * $scale)
	);
}

# with the worker off, a restart recovers whatever merge the last crash
# interrupted: nothing is left half done
$node->append_conf('postgresql.conf', 'armdb.compaction = off');
$node->restart;
my $total_rows = $node->safe_psql('postgres', 'SELECT count(*) FROM t');
is($total_rows, $nrows, 'all rows are there after the last restart');
for my $w (1 .. $nwriters)
{
	is( $node->safe_psql('postgres', "SELECT max(i) FROM ack WHERE w = $w"),
		$last{$w}, "writer $w: the same transactions after a clean restart");
}
is(join(' ', grep { /\.(tmp|merge)$/ } files_of($dir)),
	'', 'no .tmp or .merge file left in the table\'s directory');
my $final_size = $node->safe_psql('postgres', "SELECT armdb_relation_size('t')");
# at rest, compacted: the immutable files hold about the live rows (the
# shards' active files, up to 1MB each, are what the churn left growing)
$node->safe_psql('postgres', 'VACUUM t');
$node->safe_psql('postgres', "SELECT armdb_compact('t')") for 1 .. 2;
my ($compacted, $active) = split(
	/\|/,
	$node->safe_psql(
		'postgres', "SELECT armdb_relation_size('t'),
		 (SELECT coalesce(sum(bytes), 0) FROM armdb_file_stats('t') WHERE active)"
	));
cmp_ok($compacted - $active, '<', 1.5 * $fresh_size,
	"at rest, compacted, the table's immutable files are under 1.5 times a fresh copy ($final_size before, $compacted after, $active in active files, fresh $fresh_size bytes)"
);
is($node->safe_psql('postgres', 'SELECT count(*), sum(cnt) FROM t'),
	$node->safe_psql('postgres',
		'SET enable_seqscan = off; SELECT count(*), sum(cnt) FROM t WHERE id > 0'),
	'after the last compaction, sequential and index scans agree');

my $log = slurp_file($node->logfile);
unlike($log, qr/PANIC|TRAP:|terminated by signal (6|11)|compaction of .* failed|is corrupted/,
	'no PANIC, assertion failure, crash, failed merge or corruption error in the log');

done_testing();
