
# Copyright (c) 2026, armdb developers
#
# Hot-standby reads under load: pgbench TPC-B on armdb tables on the
# primary, with autovacuum, the compaction worker merging every second and
# more merges asked for by the test,
# while sessions on the standby read the four tables again and again.  In
# any one snapshot the balances of accounts, tellers and branches each add
# up to the deltas in the history; a read may be canceled by a recovery
# conflict, but must never see anything else.  At the end both nodes hold
# the same rows.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $primary = PostgreSQL::Test::Cluster->new('hsb_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
default_table_access_method = armdb
armdb.max_file_size = '64kB'
armdb.compaction = on
armdb.compaction_naptime = '1s'
armdb.compaction_threshold = 0.1
autovacuum_naptime = '1s'
autovacuum_vacuum_threshold = 50
autovacuum_vacuum_scale_factor = 0.05
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION armdb');
$primary->command_ok(
	[ 'pgbench', '-i', '-s', '1', '-q', '--no-vacuum', $primary->connstr('postgres') ],
	'pgbench tables made on armdb');
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('hsb_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', qq{
max_standby_streaming_delay = '10s'
});
$standby->start;
$primary->wait_for_catchup($standby);

my $consistent = q{
SELECT (SELECT coalesce(sum(delta), 0) FROM pgbench_history) || ' '
    || (SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts) || ' '
    || (SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers) || ' '
    || (SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches) || ' '
    || (SELECT count(*) FROM pgbench_accounts)};

my $bench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', '25', $primary->connstr('postgres') ],
	'>', \my $bench_out, '2>', \my $bench_err);

# readers: one statement (one snapshot) each, by sequential scans, then by
# index scans where the planner can
my ($reads, $canceled, $bad) = (0, 0, 0);
my $until = time() + 22;
while (time() < $until)
{
	foreach my $setting ('enable_indexscan = off', 'enable_seqscan = off')
	{
		my ($ret, $out, $err) = $standby->psql('postgres',
			"SET $setting; SET enable_bitmapscan = off; $consistent");
		if ($ret != 0)
		{
			if ($err =~ /conflict with recovery/) { $canceled++; next; }
			diag("read failed: $err");
			$bad++;
			next;
		}
		my ($h, $a, $t, $b, $n) = split / /, $out;
		if ($h ne $a || $h ne $t || $h ne $b || $n != 100000)
		{
			diag("inconsistent read: $out");
			$bad++;
		}
		$reads++;
	}
	# and merges on the primary, besides the worker's
	$primary->psql('postgres',
		"VACUUM pgbench_accounts; SELECT armdb_compact('pgbench_accounts')")
	  if $reads % 4 == 0;
}
$bench->finish;
like($bench_out, qr/number of transactions actually processed: [1-9]/,
	'pgbench ran on the primary');
cmp_ok($reads, '>=', 4, "the standby answered $reads reads ($canceled canceled by recovery conflicts)");
is($bad, 0, 'every read saw balances that add up, 100000 accounts');

my $stats = $primary->safe_psql('postgres', 'SELECT runs, files_merged FROM armdb_compaction_stats()');
my ($runs, $merged) = split /\|/, $stats;
cmp_ok($merged, '>', 0, "the compaction worker merged files meanwhile ($merged in $runs runs)");

$primary->wait_for_catchup($standby);
foreach my $t (qw(pgbench_accounts pgbench_tellers pgbench_branches pgbench_history))
{
	my $q = "SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY t::text)) FROM $t t";
	next if is($standby->safe_psql('postgres', $q), $primary->safe_psql('postgres', $q),
		"after catch-up, $t is the same on both");
	# which side lost or kept what: count by sequential and by index scans
	foreach my $node ($standby, $primary)
	{
		diag($node->name . ": $t: " . join(', ', map {
			$node->safe_psql('postgres',
				"SET enable_seqscan = $_; SET enable_bitmapscan = off; SELECT count(*) FROM $t")
		} qw(on off)));
	}
}
unlike(slurp_file($standby->logfile),
	qr/could not replay a merge|stopped keeping the key directory|PANIC|TRAP/,
	'no failed merge replay, stale keydir or crash on the standby');
$standby->stop;
$primary->stop;
done_testing();
