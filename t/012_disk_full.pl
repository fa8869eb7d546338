# A full disk fails writes with SQLSTATE 53100 (disk_full) and a hint, never
# reads, and loses nothing (design §5a).  armdb.data_directory is put on a
# small file system that the test fills up; scripts/test.sh mounts one
# (a loop-mounted ext4, or a size-limited tmpfs) and names it in
# ARMDB_TEST_SMALL_FS, writable by the user running the tests.
use strict;
use warnings;
use File::Path qw(rmtree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $fs = $ENV{ARMDB_TEST_SMALL_FS};
if (!defined $fs || !-d $fs || !-w $fs)
{
	plan skip_all =>
	  'ARMDB_TEST_SMALL_FS does not name a small writable file system (scripts/test.sh mounts one)';
}

my $dir = "$fs/armdb-" . $$;
my $filler = "$fs/filler-" . $$;
rmtree($dir);
unlink $filler;
# a test that died half-way must not leave the file system full
END { unlink $filler if defined $filler; }

my $node = PostgreSQL::Test::Cluster->new('disk_full');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
armdb.data_directory = '$dir'
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE f (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO f SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
});
my $check = q{SELECT count(*), sum(id) FROM f};
my $want = $node->safe_psql('postgres', $check);

# fill the file system to the last block
sub fill
{
	open(my $fh, '>', $filler) or die "open $filler: $!";
	binmode $fh;
	my $chunk = "\xAA" x 65536;
	while (syswrite($fh, $chunk)) { }
	my $small = "\xAA" x 512;
	while (syswrite($fh, $small)) { }
	close($fh);
}
fill();

# a write that needs space: a clean ERROR with the disk-full SQLSTATE
my ($ret, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nINSERT INTO f SELECT g, repeat(md5(g::text), 20) FROM generate_series(10001, 30000) g");
isnt($ret, 0, 'an insert into a full disk fails');
like($err, qr/ERROR:\s+53100/, 'with SQLSTATE 53100 (disk_full)');
like($err, qr/HINT:.*Free disk space.*armdb\.data_directory/s,
	'and a hint naming the setting');

# reads keep working: a sequential scan, an index scan, a fetch by TID
is($node->safe_psql('postgres', $check), $want,
	'a sequential scan works on a full disk');
is( $node->safe_psql(
		'postgres', 'SET enable_seqscan = off; SELECT count(*) FROM f WHERE id > 0'),
	(split(/\|/, $want))[0],
	'an index scan works on a full disk');
is($node->safe_psql('postgres', q{SELECT v FROM f WHERE id = 4242}),
	$node->safe_psql('postgres', q{SELECT md5('4242')}),
	'a row is read by key on a full disk');

# a small transaction that commits on a full disk fails too, and cleanly
($ret, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nINSERT INTO f VALUES (-1, 'x')");
my $held = $ret == 0;
if (!$held)
{
	like($err, qr/ERROR:\s+53100/, 'a small commit on a full disk fails with 53100');
}
else
{
	# its row is removed once there is room again: a DELETE needs room too
	pass('a small commit found room (the write buffer held it)');
}
my ($wcount, $wsum) = split(/\|/, $want);
is($node->safe_psql('postgres', $check),
	$held ? ($wcount + 1) . '|' . ($wsum - 1) : $want,
	'nothing else changed meanwhile');

# space returns: writes work again and nothing was lost
unlink $filler or die "unlink $filler: $!";
$node->safe_psql('postgres', 'DELETE FROM f WHERE id = -1') if $held;
$node->safe_psql('postgres',
	q{INSERT INTO f SELECT g, md5(g::text) FROM generate_series(5001, 6000) g});
my $after = $node->safe_psql('postgres', $check);
is($after, '6000|' . (6000 * 6001 / 2), 'writes work again once space is freed');

$node->restart;
is($node->safe_psql('postgres', $check), $after,
	'every committed row after a clean restart');
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', $check), $after,
	'every committed row after a crash');

$node->stop;
rmtree($dir);
done_testing();
