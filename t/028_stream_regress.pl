# armdb's regression tests run on a primary while a streaming standby made
# from its base backup replays them, as PostgreSQL's own
# 027_stream_regress.pl does for the core suite (issue 13).  The standby is
# restarted in the middle of the stream; after catch-up it is promoted and
# pg_dump of both nodes must be identical, armdb tables' rows included.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('sr_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', qq(
shared_preload_libraries = 'armdb'
max_prepared_transactions = 5
synchronize_seqscans = off
));
$primary->start;
# the standby's own slot keeps the WAL it has not replayed while it restarts
$primary->safe_psql('postgres',
	"SELECT pg_create_physical_replication_slot('sr_standby')");
$primary->backup('sr_base');
my $standby = PostgreSQL::Test::Cluster->new('sr_standby');
$standby->init_from_backup($primary, 'sr_base', has_streaming => 1);
$standby->append_conf('postgresql.conf', "primary_slot_name = 'sr_standby'");
$standby->start;

# the Makefile's REGRESS list, run from the source tree
my $tree = $ENV{TESTDIR} // '.';
my ($regress) = slurp_file("$tree/Makefile") =~ /^REGRESS\s*=\s*(.+)$/m;
my @tests = split ' ', $regress;
ok(@tests >= 3, 'armdb\'s regression tests: ' . join(' ', @tests));
my $outputdir = $PostgreSQL::Test::Utils::tmp_check . '/sr_regress';
mkdir $outputdir;

my ($out, $err) = ('', '');
my $run = IPC::Run::start(
	[
		$ENV{PG_REGRESS}, '--bindir=',
		'--host=' . $primary->host, '--port=' . $primary->port,
		"--inputdir=$tree", "--outputdir=$outputdir",
		'--dbname=regression', @tests
	],
	'>', \$out, '2>', \$err);

# the standby restarts while the tests write
sleep(2);
$standby->restart;
ok($run->finish, 'the regression tests pass on the primary')
  or diag("$out\n$err\n" . (-e "$outputdir/regression.diffs"
	  ? slurp_file("$outputdir/regression.diffs") : ''));

# the regression tests drop their tables; leave some behind for the dumps
$primary->safe_psql('regression', q{
CREATE TABLE kept (id int PRIMARY KEY, v text, n numeric) USING armdb;
INSERT INTO kept SELECT g, md5(g::text), g * 1.5 FROM generate_series(1, 20000) g;
UPDATE kept SET v = 'updated' WHERE id % 7 = 0;
DELETE FROM kept WHERE id % 11 = 0;
CREATE INDEX ON kept (v);
CREATE TABLE kept_wide (id int, doc jsonb, t text) USING armdb;
INSERT INTO kept_wide SELECT g, jsonb_build_object('k', g, 'tags', ARRAY[g % 5, g % 3]),
	repeat('wide ', 500 + g % 100) FROM generate_series(1, 300) g;
CREATE TABLE kept_truncated (id int) USING armdb;
INSERT INTO kept_truncated SELECT generate_series(1, 1000);
TRUNCATE kept_truncated;
INSERT INTO kept_truncated SELECT generate_series(1, 10);
VACUUM kept;
SELECT merges FROM armdb_compact('kept');
});

# sequences to their next value, as 027_stream_regress.pl does: a standby
# replays their prefetched values
$primary->safe_psql('regression',
	'SELECT setval(seqrelid, nextval(seqrelid)) FROM pg_sequence');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

# pg_dump of a node's regression database into $outputdir/$name.dump
sub dump_db
{
	my ($node, $name, $what) = @_;
	command_ok(
		[
			'pg_dump', '-f', "$outputdir/$name.dump", '--no-sync', '--restrict-key=test',
			'--no-unlogged-table-data', '-d', $node->connstr('regression')
		],
		$what);
}

dump_db($primary, 'primary', 'dump the primary');

# the hot standby reads the same (every keydir loaded during recovery) ...
dump_db($standby, 'hot', 'dump the hot standby');
command_ok([ 'diff', "$outputdir/primary.dump", "$outputdir/hot.dump" ],
	'the primary and the hot standby dump the same');

# ... and after more changes, which replay applies to the loaded keydirs
$primary->safe_psql('regression', q{
UPDATE kept SET v = v || ' again' WHERE id % 5 = 0;
DELETE FROM kept WHERE id % 13 = 0;
INSERT INTO kept SELECT g, 'more ' || g FROM generate_series(100001, 101000) g;
UPDATE kept_wide SET t = t || 'x' WHERE id % 4 = 0;
VACUUM kept;
SELECT merges FROM armdb_compact('kept');
DELETE FROM kept_wide WHERE id % 9 = 0;
});
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
dump_db($primary, 'primary', 'dump the primary again');
dump_db($standby, 'hot', 'dump the hot standby again');
command_ok([ 'diff', "$outputdir/primary.dump", "$outputdir/hot.dump" ],
	'the primary and the hot standby still dump the same');

my $primary_kept =
  $primary->safe_psql('regression', 'SELECT count(*), sum(id) FROM kept');
$primary->stop;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'the standby was not promoted';
dump_db($standby, 'standby', 'dump the promoted standby');
my $armdb_rows = $standby->safe_psql('regression', q{
SELECT count(*) FROM pg_class c JOIN pg_am a ON a.oid = c.relam
WHERE a.amname = 'armdb' AND c.relkind = 'r'});
ok($armdb_rows >= 3, "the dumps hold $armdb_rows armdb tables");
is($standby->safe_psql('regression', 'SELECT count(*), sum(id) FROM kept'),
	$primary_kept, 'the promoted standby reads the rows the primary had');
command_ok([ 'diff', "$outputdir/primary.dump", "$outputdir/standby.dump" ],
	'the primary and the promoted standby dump the same');

$standby->stop;
done_testing();
