# Loading armdb: refused with a hint without shared_preload_libraries,
# working with it; the armdb directory is created at server start.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('preload');
$node->init(allows_streaming => 1);
$node->start;

my ($ret, $stdout, $stderr) =
  $node->psql('postgres', 'CREATE EXTENSION armdb');
isnt($ret, 0, 'CREATE EXTENSION armdb fails without shared_preload_libraries');
like(
	$stderr,
	qr/armdb must be loaded via shared_preload_libraries/,
	'the error names the cause');
like(
	$stderr,
	qr/HINT:  Add armdb to shared_preload_libraries in postgresql.conf/,
	'the error carries a hint');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is still up');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_am WHERE amname = 'armdb'"),
	'0', 'nothing was created');

$node->append_conf('postgresql.conf', "shared_preload_libraries = 'armdb'");
$node->restart;
$node->safe_psql('postgres', 'CREATE EXTENSION armdb');
is( $node->safe_psql(
		'postgres', "SELECT amtype FROM pg_am WHERE amname = 'armdb'"),
	't',
	'with shared_preload_libraries the table access method exists');
ok(-d $node->data_dir . '/armdb', 'armdb directory created in PGDATA');

# armdb.data_directory moves the files elsewhere
my $elsewhere = PostgreSQL::Test::Utils::tempdir() . '/armdb-files';
$node->append_conf('postgresql.conf', "armdb.data_directory = '$elsewhere'");
$node->restart;
ok(-d $elsewhere, 'armdb.data_directory is created at start');

# an unusable directory stops the server with a clear message
$node->stop;
my $file = PostgreSQL::Test::Utils::tempdir() . '/not-a-dir';
open(my $fh, '>', $file) or die;
close($fh);
$node->append_conf('postgresql.conf', "armdb.data_directory = '$file/sub'");
my $started = $node->start(fail_ok => 1);
ok(!$started, 'server refuses to start when armdb.data_directory cannot be created');
like(
	slurp_file($node->logfile),
	qr/could not create directory ".*not-a-dir\/sub": Not a directory/,
	'the log says why');

done_testing();
