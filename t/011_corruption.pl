# Corruption is never silent and never cut away (design §5a): a damaged
# entry in a data file raises ERRCODE_DATA_CORRUPTED naming the file and the
# offset, and leaves every byte in place.  Only a torn last write after a
# crash -- bad bytes at the very end of the active file, nothing valid after
# them -- is cut.  Salvaging around damage is an explicit user action
# (armdb.skip_damaged_entries), keeps every good row, and sticks.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use ArmdbTest;

my $node = PostgreSQL::Test::Cluster->new('corruption');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'armdb'");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
SET armdb.shards = 1;
CREATE TABLE c (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO c SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 20000) g;
});

my $dboid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'");
my $filenode = $node->safe_psql('postgres', "SELECT pg_relation_filenode('c')");
my $shard = $node->data_dir . "/armdb/$dboid/$filenode/0";
my $file = "$shard/000001.data";
my $count = q{SELECT count(*) FROM c};

# SQLSTATE and message of a failing query
sub query_error
{
	my ($sql, @opts) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\n$sql", @opts);
	return ($ret, $err);
}

# --- one flipped byte a third into the active file, clean shutdown ---
$node->stop;
my $size = -s $file;
my $at = int($size / 3);
flip_byte($file, $at);
my $damaged_md5 = file_md5($file);
$node->start;

my ($ret, $err) = query_error($count);
isnt($ret, 0, 'reading a damaged table fails');
like($err, qr/XX001/, 'with ERRCODE_DATA_CORRUPTED');
like($err, qr/\Q$file\E/, 'naming the data file');
like($err, qr/corrupted at offset \d+/, 'and the offset');
like($err, qr/armdb\.skip_damaged_entries/, 'the hint says how to salvage');
is(file_md5($file), $damaged_md5, 'nothing was cut from the file');
is(-s $file, $size, 'the file keeps its size');
unlike(slurp_file($node->logfile), qr/cut a torn tail/,
	'no torn tail is cut after a clean shutdown');

# --- the same after a crash: valid entries follow, so still corruption ---
$node->stop('immediate');
$node->start;
($ret, $err) = query_error($count);
like($err, qr/XX001.*a valid entry follows at offset/s,
	'after a crash, damage followed by valid entries is corruption');
is(file_md5($file), $damaged_md5, 'still nothing cut');

# --- salvaging is explicit: a plain user cannot turn it on ---
$node->safe_psql('postgres', 'CREATE ROLE plain LOGIN');
($ret, $err) = query_error('SET armdb.skip_damaged_entries = on',
	extra_params => [ '-U', 'plain' ]);
like($err, qr/permission denied/, 'only a superuser may salvage');

# --- a superuser salvages: every good row is kept ---
my ($sret, $sout, $serr) = $node->psql('postgres',
	"SET armdb.skip_damaged_entries = on; $count");
is($sret, 0, 'salvaging loads the table');
like($serr, qr/WARNING:.*skipped \d+ damaged bytes in 1 data files/,
	'salvaging warns about what it skipped');
cmp_ok($sout, '>=', 19998, 'at most the damaged entry\'s rows are lost');
cmp_ok($sout, '<', 20000, 'the damaged row is not read back');
my $salvaged = $sout;

# salvaging sealed the damaged file and gave it a hint: it sticks
$node->restart;
is($node->safe_psql('postgres', $count), $salvaged,
	'after a restart the salvaged table loads without salvaging');
$node->safe_psql('postgres',
	'INSERT INTO c SELECT g, \'new\' FROM generate_series(30001, 30100) g');
is($node->safe_psql('postgres', $count), $salvaged + 100,
	'and takes new rows');
ok(-e "$shard/000001.hint", 'the salvaged file has a hint listing its good entries');

# --- a torn tail after a crash is still cut, and only that ---
$node->stop('immediate');
my @data = sort glob("$shard/*.data");
my $active = $data[-1];
my $active_size = -s $active;
open(my $fh, '>>', $active) or die "open $active: $!";
binmode $fh;
print $fh "\x13" x 3000;	# an unfinished write: garbage, nothing valid after
close($fh);
$node->start;
is($node->safe_psql('postgres', $count), $salvaged + 100,
	'a torn tail after a crash loses nothing committed');
like(slurp_file($node->logfile), qr/cut a torn tail of \d+ bytes/,
	'the torn tail is cut and logged');

# --- the same garbage after a clean shutdown is corruption ---
$node->stop;
$active_size = -s $active;
open($fh, '>>', $active) or die "open $active: $!";
binmode $fh;
print $fh "\x13" x 3000;
close($fh);
$node->start;
($ret, $err) = query_error($count);
like($err, qr/XX001/,
	'garbage at the end after a clean shutdown is corruption, not a torn tail');
is(-s $active, $active_size + 3000, 'and is not cut');

done_testing();
