# Hint files: each data file a shard closes gets one; recovery reads them
# instead of scanning, and a damaged hint is ignored (logged) in favour of
# its data file, losing nothing.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib $FindBin::RealBin;
use ArmdbTest;

my $node = PostgreSQL::Test::Cluster->new('hints');
$node->init(allows_streaming => 1);
# the writing backends build hint files while the compaction worker is off
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'armdb'\narmdb.max_file_size = '1MB'\n"
	  . "armdb.compaction = off");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE h (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO h SELECT g, repeat('x', 100) FROM generate_series(1, 40000) g;
UPDATE h SET v = 'updated' WHERE id % 7 = 0;
DELETE FROM h WHERE id % 11 = 0;
});
my $want = $node->safe_psql('postgres',
	'SELECT count(*), sum(id), sum(length(v)) FROM h');

my $dboid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'");
my $filenode = $node->safe_psql('postgres', "SELECT pg_relation_filenode('h')");
my @data = glob($node->data_dir . "/armdb/$dboid/$filenode/*/*.data");
my @hints = glob($node->data_dir . "/armdb/$dboid/$filenode/*/*.hint");
cmp_ok(scalar(@data), '>', 3, 'the table spans several data files');
is(scalar(@hints), scalar(@data) - 1,
	'every closed data file has a hint file (the active one has none)');

# the key directory image a clean shutdown saves would be read instead
# (none for an encrypted table: an image is not authenticated)
my $encrypted = $node->safe_psql('postgres',
	"SELECT encrypted FROM armdb_relation_encryption('h')");
$node->stop;
is(remove_keydir_images($node), $encrypted eq 't' ? 0 : 1,
	'the shutdown saved the key directory, unless the table is encrypted');
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*), sum(id), sum(length(v)) FROM h'),
	$want, 'rows recovered through hint files');

# damage one hint: recovery scans its data file instead
$node->stop;
remove_keydir_images($node);
open(my $fh, '+<', $hints[0]) or die "open $hints[0]: $!";
binmode $fh;
seek($fh, 40, 0);
print $fh "\xff\xff\xff\xff";
close($fh);
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*), sum(id), sum(length(v)) FROM h'),
	$want, 'rows recovered with a damaged hint file');
is( $node->safe_psql(
		'postgres', 'SET enable_seqscan = off; SELECT count(*) FROM h WHERE id > 0'),
	(split(/\|/, $want))[0],
	'index scans agree');
like(slurp_file($node->logfile), qr/ignored 1 damaged hint files/,
	'the damaged hint is reported');

# Hint work queued for storage that is dropped before it is done (CLUSTER
# seals files of the new storage, TRUNCATE drops that storage) is dropped
# with it: the next insert has nothing to warn about.
my ($ret, $out, $err) = $node->psql('postgres', q{
CREATE INDEX h_id ON h (id);
CLUSTER h USING h_id;
TRUNCATE h;
INSERT INTO h VALUES (1, 'after truncate');
SELECT count(*) FROM h;
});
is($out, '1', 'CLUSTER, TRUNCATE, INSERT');
unlike($err, qr/WARNING/, 'no warning about hint files of dropped storage');

# armdb.max_file_size applies after a reload, not only after a restart
$node->append_conf('postgresql.conf', "armdb.max_file_size = '128kB'");
$node->reload;
$node->safe_psql('postgres',
	q{INSERT INTO h SELECT g, repeat('y', 100) FROM generate_series(2, 20001) g});
my @later = grep { -s $_ > 0 } glob($node->data_dir . "/armdb/$dboid/"
	  . $node->safe_psql('postgres', "SELECT pg_relation_filenode('h')")
	  . "/*/*.data");
my @sealed = grep { -e ($_ =~ s/\.data$/.hint/r) } @later;
cmp_ok(scalar(@sealed), '>', 5, 'the reloaded size closes files sooner');
my @big = grep { -s $_ > 128 * 1024 + 8192 } @sealed;
is(scalar(@big), 0, 'no closed file passes the reloaded armdb.max_file_size')
  or diag(join(' ', map { "$_: " . (-s $_) } @big));



# With the compaction worker running, it writes the hint files of the files
# writers seal, and the writers do not.
$node->append_conf('postgresql.conf',
	"armdb.compaction = on\narmdb.compaction_naptime = 1\n"
	  . "armdb.compaction_threshold = 1");
$node->reload;
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'armdb compaction launcher'")
  or die "no compaction launcher";
my $filenode2 = $node->safe_psql('postgres', "SELECT pg_relation_filenode('h')");
my @before = glob($node->data_dir . "/armdb/$dboid/$filenode2/*/*.data");
$node->safe_psql('postgres',
	q{INSERT INTO h SELECT g, repeat('z', 100) FROM generate_series(20002, 40001) g});
my @after = glob($node->data_dir . "/armdb/$dboid/$filenode2/*/*.data");
cmp_ok(scalar(@after), '>', scalar(@before) + 3, 'the insert sealed more files');
ok( $node->poll_query_until(
		'postgres',
		"SELECT bool_and(has_hint) FROM armdb_file_stats('h') WHERE NOT active"),
	'the compaction worker wrote the hint files of the sealed files');
$node->restart;
is($node->safe_psql('postgres', 'SELECT count(*) FROM h'), '40001',
	'rows recovered through the hint files the worker wrote');

done_testing();
