# Key directory images under load: pgbench's TPC-B runs on armdb tables,
# with autovacuum and compaction, and the server is shut down (fast) in the
# middle of it, three times.  Each start reads the tables back from the
# images the shutdown saved, and finds them consistent: balances that add
# up, every row through its index as by a sequential scan, no TID twice;
# and pgbench goes on from there.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('image_pgbench');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
default_table_access_method = armdb
armdb.max_file_size = '1MB'
armdb.compaction = on
armdb.compaction_naptime = '1s'
armdb.compaction_threshold = 0.1
autovacuum_naptime = '1s'
autovacuum_vacuum_threshold = 50
autovacuum_vacuum_scale_factor = 0.05
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION armdb');
$node->command_ok(
	[ 'pgbench', '-i', '-s', '2', '-q', '--no-vacuum', $node->connstr('postgres') ],
	'pgbench tables made on armdb');

my $consistent = q{
SELECT (SELECT coalesce(sum(delta), 0) FROM pgbench_history) = (SELECT sum(abalance) FROM pgbench_accounts)
   AND (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(tbalance) FROM pgbench_tellers)
   AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT sum(bbalance) FROM pgbench_branches)
   AND (SELECT count(*) FROM pgbench_accounts) = 200000};
my $by_seq = q{SET enable_indexscan = off; SET enable_bitmapscan = off;
SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE aid > 0};
my $by_index = q{SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE aid > 0};
my $dup_tids = q{SELECT count(*) FROM (SELECT ctid FROM pgbench_accounts
GROUP BY ctid HAVING count(*) > 1) d};

for my $round (1 .. 3)
{
	my $bench = IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', '60', $node->connstr('postgres') ],
		'>', \my $bench_out, '2>', \my $bench_err);
	sleep(4);
	my $log_pos = -s $node->logfile;
	$node->stop('fast');
	$bench->finish;
	like(substr(slurp_file($node->logfile), $log_pos),
		qr/armdb: saved the key directories of [1-9]\d* tables/,
		"round $round: the shutdown in the middle of pgbench saved key directories");

	$log_pos = -s $node->logfile;
	$node->start;
	is($node->safe_psql('postgres', $consistent), 't',
		"round $round: the balances add up after the restart");
	is($node->safe_psql('postgres', $by_index), $node->safe_psql('postgres', $by_seq),
		"round $round: the index finds every row a sequential scan finds");
	is($node->safe_psql('postgres', $dup_tids), '0', "round $round: no TID twice");
	like(substr(slurp_file($node->logfile), $log_pos),
		qr/loaded the key directory of relation \d+\/\d+ from its image/,
		"round $round: tables were read back from their images");
	unlike(substr(slurp_file($node->logfile), $log_pos),
		qr/PANIC|TRAP:|terminated by signal/, "round $round: no crash");
}

# and after a last round of pgbench and a crash, the files agree
$node->command_ok(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-t', '200', $node->connstr('postgres') ],
	'pgbench runs on the restored tables');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', $consistent), 't',
	'after a crash, read from the files, the balances add up');
is($node->safe_psql('postgres', $by_index), $node->safe_psql('postgres', $by_seq),
	'and the index agrees');

$node->stop;
done_testing();
