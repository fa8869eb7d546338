# Compaction interrupted by a crash at each of its steps
# (armdb.debug_compaction_crash_at): the backend running armdb_compact()
# kills itself, the postmaster crash-restarts, and the table must read the
# same (sequential and index scans), with no .tmp or .merge file left once
# the shard has been recovered; a merge that committed is finished by
# recovery (its inputs are gone) -- by WAL replay, which finds the merge's
# record, before the table is loaded -- and one that did not is forgotten
# (the inputs are as they were).  A new armdb_compact() then succeeds, and a
# clean restart reads the same again.
use strict;
use warnings;
use File::Find;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('compaction_crash');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', qq(
shared_preload_libraries = 'armdb'
restart_after_crash = on
autovacuum = off
armdb.compaction = off
armdb.max_file_size = '64kB'
# the files are looked at as a crash left them, before a load recovers them
armdb.load_workers = 0
));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION armdb');
my $dboid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'");

my $content_sql = q{
SELECT count(*), md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM %s WHERE id > 0
};

# count and checksum of the table's rows, by a sequential scan and by an
# index scan (both must say the same)
sub content
{
	my ($table) = @_;
	my $sql = sprintf($content_sql, $table);
	my $seq = $node->safe_psql('postgres',
		"SET enable_indexscan = off; SET enable_bitmapscan = off; $sql");
	my $idx = $node->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; $sql");
	return ($seq, $idx);
}

# the table's files, relative to its directory, sorted
sub files_of
{
	my ($dir) = @_;
	my @files;
	find(
		{
			wanted => sub { push @files, $File::Find::name if -f $_ },
			no_chdir => 1
		},
		$dir);
	return sort map { substr($_, length($dir) + 1) } @files;
}

sub disk_bytes
{
	my ($dir) = @_;
	my $total = 0;
	$total += -s "$dir/$_" for files_of($dir);
	return $total;
}

# every .tmp and .merge file anywhere under $PGDATA/armdb
sub leftovers
{
	return grep { /\.(tmp|merge)$/ } files_of($node->data_dir . '/armdb');
}

my $n = 0;
for my $point (qw(after_copy after_log after_commit mid_swap after_swap after_finish))
{
	$n++;
	my $t = "t_$point";

	# ~1 MB of entries in 64kB files: every third row updated three times,
	# every tenth deleted, so the oldest files (the ones merged first) hold
	# live entries to move as well as dead ones
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE $t (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO $t SELECT g, repeat('a', 100) || g FROM generate_series(1, 3000) g;
UPDATE $t SET v = repeat('b', 100 + id % 7) WHERE id % 3 = 0;
UPDATE $t SET v = repeat('c', 90 + id % 13) || id WHERE id % 3 = 0;
UPDATE $t SET v = md5(id::text) || repeat('d', id % 50) WHERE id % 3 = 0;
DELETE FROM $t WHERE id % 10 = 0;
VACUUM $t;
});
	my $filenode =
	  $node->safe_psql('postgres', "SELECT pg_relation_filenode('$t')");
	my $dir = $node->data_dir . "/armdb/$dboid/$filenode";

	my ($want, $want_idx) = content($t);
	is($want_idx, $want, "$point: index and sequential scans agree before");
	like($want, qr/^2700\|/, "$point: 2700 rows before");
	my @before = files_of($dir);
	my $bytes_before = disk_bytes($dir);
	my $sql_size_before =
	  $node->safe_psql('postgres', "SELECT armdb_relation_size('$t')");
	is($sql_size_before, $bytes_before,
		"$point: armdb_relation_size says what is on disk");
	my $dead_before = $node->safe_psql('postgres',
		"SELECT sum(dead_bytes) FROM armdb_file_stats('$t') WHERE NOT active");
	cmp_ok($dead_before, '>', $bytes_before / 4,
		"$point: a good part of the closed files' bytes are dead ($dead_before of $bytes_before)"
	);

	# the crash
	my $log_offset = -s $node->logfile;
	my ($ret, $out, $err) = $node->psql(
		'postgres', qq{
SET armdb.debug_compaction_crash_at = '$point';
SELECT armdb_compact('$t');
});
	isnt($ret, 0, "$point: armdb_compact() did not return")
	  or diag("out: $out");
	like($err, qr/server closed the connection unexpectedly/,
		"$point: the connection was lost");
	$node->poll_query_until('postgres', 'SELECT 1', '1')
	  or die "the server did not come back after the crash at $point";
	my $log = slurp_file($node->logfile, $log_offset);
	like(
		$log,
		qr/compaction fault point \d+ reached.*terminated by signal 9.*all server processes terminated; reinitializing/s,
		"$point: the backend killed itself at the fault point and the server crash-restarted"
	);

	# The files as the crash left them, before anyone touched the table
	# (its shards are recovered when its keydir is loaded).
	my @crashed = files_of($dir);
	if ($point eq 'after_copy')
	{
		ok((grep { /\.tmp$/ } @crashed),
			"$point: the crash left the merge's .tmp outputs");
		ok(!(grep { /\.merge$/ } @crashed), "$point: and no manifest");
	}
	elsif ($point eq 'after_finish')
	{
		ok(!(grep { /\.(tmp|merge)$/ } @crashed),
			"$point: the merge was finished before the crash");
	}
	elsif ($point eq 'after_log')
	{
		# in WAL but not committed: replay redoes the merge from its inputs
		ok(!(grep { /\.(tmp|merge)$/ } @crashed),
			"$point: replay redid the merge from its record (no .tmp or manifest left)");
	}
	else
	{
		# the merge is in WAL (logged before its commit): crash recovery
		# replays it, which finishes it here, before the table is loaded
		ok(!(grep { /\.(tmp|merge)$/ } @crashed),
			"$point: replay finished the committed merge (no manifest left)");
	}

	my @got = content($t);
	is($got[0], $want, "$point: same rows after the crash (sequential scan)");
	is($got[1], $want, "$point: same rows after the crash (index scan)");
	is(join(' ', leftovers()), '', "$point: no .tmp or .merge file left");

	my @after = files_of($dir);
	my $bytes_after = disk_bytes($dir);
	my %after = map { $_ => 1 } @after;
	my @gone = grep { /\.data$/ && !$after{$_} } @before;
	if ($point eq 'after_copy')
	{
		is(join(' ', @after), join(' ', @before),
			"$point: the merge never committed: the table's files are as before");
		is($bytes_after, $bytes_before, "$point: and as large");
	}
	else
	{
		cmp_ok(scalar(@gone), '>', 0,
			"$point: the committed merge's inputs are gone (" . scalar(@gone) . ')');
		cmp_ok($bytes_after, '<', $bytes_before,
			"$point: the table is smaller ($bytes_before -> $bytes_after bytes)");
	}

	# the table takes writes after recovery, and they read back
	$node->safe_psql('postgres',
		"UPDATE $t SET v = v WHERE id % 5 = 1; DELETE FROM $t WHERE id = 100000");
	@got = content($t);
	is($got[0], $want, "$point: same rows after a write following recovery");

	# compaction works again and changes nothing visible
	my $r = $node->safe_psql('postgres',
		"SELECT merges, files_in, files_out, entries_kept FROM armdb_compact('$t')");
	my ($merges, $files_in, $files_out, $kept) = split(/\|/, $r);
	cmp_ok($merges, '>', 0, "$point: a new armdb_compact() merges ($r)");
	cmp_ok($kept, '>', 0, "$point: and moves live entries");
	@got = content($t);
	is($got[0], $want, "$point: same rows after a second compaction (sequential scan)");
	is($got[1], $want, "$point: same rows after a second compaction (index scan)");
	cmp_ok(disk_bytes($dir), '<', $bytes_before,
		"$point: smaller than before any compaction (" . disk_bytes($dir) . ' bytes)');
	is(join(' ', leftovers()), '', "$point: no .tmp or .merge file left after it");

	$node->restart;
	@got = content($t);
	is($got[0], $want, "$point: same rows after a clean restart (sequential scan)");
	is($got[1], $want, "$point: same rows after a clean restart (index scan)");
	is(join(' ', leftovers()), '', "$point: no .tmp or .merge file left after the restart");
}

my $log = slurp_file($node->logfile);
unlike($log, qr/PANIC|TRAP:|terminated by signal (6|11)/,
	'no PANIC, assertion failure or crash other than the fault points');
my @faults = ($log =~ /compaction fault point \d+ reached/g);
is(scalar(@faults), 6, 'each fault point was reached once');

done_testing();
