# A damaged entry in a file that compaction merges (design §5, §5a): the
# merge checks every entry's CRC, and a mismatch undoes it -- outputs
# removed, inputs untouched byte for byte, every row still there -- with a
# WARNING (XX001) naming the file and the offset, counted in
# armdb_compaction_stats().  The damage itself stays where it is: after a
# restart, what loading the table says of it, and salvaging.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use ArmdbTest;

my $node = PostgreSQL::Test::Cluster->new('compaction_corrupt');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
armdb.max_file_size = '64kB'
armdb.compaction = off
# salvaging is a session's choice for the load it makes: no loader first
armdb.load_workers = 0
});
$node->start;

# 3000 rows, one shard; the first 100 rows (the start of file 1) and every
# tenth row are updated, so file 1 begins with dead versions and the files
# of the inserts all have dead bytes
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
SET armdb.shards = 1;
CREATE TABLE c (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO c SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 3000) g;
UPDATE c SET v = 'new ' || v WHERE id <= 100 OR id % 10 = 0;
VACUUM c;
});

my $dboid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'");
my $filenode = $node->safe_psql('postgres', "SELECT pg_relation_filenode('c')");
my $shard_dir = $node->data_dir . "/armdb/$dboid/$filenode/0";

my $fingerprint = q{SELECT count(*) || ' ' || sum(id) || ' ' ||
	md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM c};
my $by_index = q{SET enable_seqscan = off; SET enable_bitmapscan = off;
	SELECT count(*) || ' ' || sum(id) || ' ' ||
	md5(string_agg(id || ':' || v, ',')) FROM (SELECT id, v FROM c WHERE id > 0 ORDER BY id) s};
my $rows = $node->safe_psql('postgres', $fingerprint);
like($rows, qr/^3000 4501500 /, 'the table holds its rows');
is($node->safe_psql('postgres', $by_index), $rows, 'by the index too');

# the oldest immutable file with dead bytes: the first of the merge
my $victim = $node->safe_psql('postgres', q{
SELECT file_id FROM armdb_file_stats('c')
WHERE NOT active AND dead_bytes > 0 ORDER BY min_gsn LIMIT 1});
is($victim, '1', 'file 1 would be merged first');
cmp_ok($node->safe_psql('postgres', q{
SELECT count(*) FROM armdb_file_stats('c') WHERE NOT active AND dead_bytes > 0}),
	'>', 4, 'more files would be merged');
my $file = sprintf("%s/%06d.data", $shard_dir, $victim);
ok(-f $file, "the data file $file is there");

sub dir_files
{
	opendir(my $d, $shard_dir) or die "opendir $shard_dir: $!";
	my @f = sort grep { !/^\./ } readdir($d);
	closedir($d);
	return join(' ', @f);
}

# --- a byte flipped inside the second entry of file 1 (a dead version:
# rows 1-100 were updated), while the server runs ---
my $at = 64 + 100;
# the second entry starts after the file header (64 bytes) and the slot
# reservation, a header without value (48 bytes: it names its run of
# pages, first slot to last; 16 more in an encrypted table, its tag)
my $second = do {
	my ($crc, $vlen, $gsn_lo, $gsn_hi) = unpack('V V V V', substr(slurp_file($file), 64, 16));
	64 + (($gsn_hi & (1 << 25)) ? 32 : 48) + $vlen;
};
flip_byte($file, $at);
my $damaged_md5 = file_md5($file);
my $files_before = dir_files();

my ($ret, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSELECT merges, files_in FROM armdb_compact('c')");
is($ret, 0, 'armdb_compact() returns');
is($out, '0|0', 'having merged nothing');
like($err, qr/WARNING:\s+XX001: armdb: compaction of shard 0 of "c" was undone/,
	'with a WARNING, SQLSTATE XX001');
like($err, qr/offset \d+ of data file 000001 in "\Q$shard_dir\E"/,
	'naming the file and the offset');
like($err, qr/nothing was lost/, 'saying nothing was lost');

my $stats = $node->safe_psql('postgres', q{
SELECT runs, failures, crc_errors, last_error FROM armdb_compaction_stats()});
my ($runs, $failures, $crc, $last_error) = split /\|/, $stats, 4;
is($crc, '1', 'crc_errors = 1');
is($failures, '1', 'failures = 1');
is($runs, '0', 'no run counted as done');
like($last_error, qr/data file 000001 in "\Q$shard_dir\E"/,
	'last_error names the file');

is(file_md5($file), $damaged_md5, 'the damaged file is unchanged, byte for byte');
is(dir_files(), $files_before, 'no file added or removed');
unlike(dir_files(), qr/\.(tmp|merge)\b/, 'no .tmp output, no manifest left');

# every live row is still there: the index finds each one
is($node->safe_psql('postgres', $by_index), $rows,
	'every row is still there (index scan)');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM armdb_file_stats('c') WHERE NOT active AND dead_bytes > 0}) > 4,
	1, 'the files with dead bytes are all still there');

# a sequential scan reads every entry of every file, the dead one too: it
# cannot tell a damaged entry's row, so it fails as loading a damaged file
# does, naming the file and the offset
sub seq_scan_error
{
	my ($r, $o, $e) = $node->psql('postgres',
		"\\set VERBOSITY verbose\n$fingerprint", @_);
	return ($r, $e);
}
($ret, $err) = seq_scan_error();
isnt($ret, 0, 'a sequential scan meets the damaged entry');
like($err, qr/ERROR:\s+XX001: .*data file "\Q$shard_dir\E\/000001\.data" is corrupted at offset \d+/,
	'with XX001 naming the file and the offset');

# --- a clean restart: the table loads from the hint files (the merge's
# failure kept the shutdown from saving its key directory), which do not
# read the entries' values, so the load does not meet the damage; index
# scans work, a sequential scan and a merge meet it again ---
$node->restart;
is($node->safe_psql('postgres', $by_index), $rows,
	'after a restart the table loads, every row found by the index');
($ret, $err) = seq_scan_error();
like($err, qr/ERROR:\s+XX001: .*data file "\Q$shard_dir\E\/000001\.data" is corrupted at offset \d+/,
	'after a restart a sequential scan still fails with XX001, naming file and offset');
($ret, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSELECT merges FROM armdb_compact('c')");
is($out, '0', 'after a restart the merge is undone again');
like($err, qr/WARNING:\s+XX001: .*data file 000001/, 'with the same WARNING');
is($node->safe_psql('postgres', 'SELECT crc_errors FROM armdb_compaction_stats()'),
	'1', 'counted since the restart');
is(file_md5($file), $damaged_md5, 'the damaged file is still unchanged');

# Salvaging is armdb.skip_damaged_entries at load.  It reads the data files
# themselves even where hint files exist (a hint says where entries are, not
# whether they are intact), so it meets the damage and steps over it.
$node->restart;
($ret, $out, $err) = $node->psql('postgres',
	"SET armdb.skip_damaged_entries = on; $fingerprint");
is($ret, 0, 'with a hint file beside the damaged file, the salvaging load succeeds');
like($err, qr/WARNING:.*skipped \d+ damaged bytes in 1 data files.*first in "\Q$file\E" at offset $second/s,
	'warning about the damaged bytes, naming the file and the offset');
is($out, $rows, 'salvaging makes the sequential scan work, and no row is lost');

# Without the hint file the load reads the data file too, and the salvage
# keeps every good entry: the damaged one was a dead version, so no row is
# lost
$node->stop;
unlink(sprintf("%s/%06d.hint", $shard_dir, $victim)) or die "unlink: $!";
$node->start;
($ret, $out, $err) = $node->psql('postgres',
	"SET armdb.skip_damaged_entries = on; $fingerprint");
is($ret, 0, 'with its hint file removed, the salvaging load succeeds');
like($err, qr/WARNING:.*skipped \d+ damaged bytes in 1 data files.*first in "\Q$file\E" at offset $second/s,
	'warning about the damaged bytes of file 1');
is($out, $rows, 'and no row is lost');
is($node->safe_psql('postgres', $fingerprint), $rows,
	'sequential scans work after the salvage');

# the salvaged file (gaps) is not merged; the others are
($ret, $out, $err) = $node->psql('postgres',
	"SELECT merges > 0, files_in FROM armdb_compact('c')");
is($err, '', 'compaction after the salvage: no warning');
like($out, qr/^t\|\d+$/, 'it merges the other files');
ok(-f $file, 'the salvaged file is kept as it is');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM armdb_file_stats('c')
WHERE NOT active AND dead_bytes > 0 AND file_id <> 1}), '0',
	'no other file with dead bytes is left');
is($node->safe_psql('postgres', $fingerprint), $rows,
	'every row is there after the merge (sequential scan)');
is($node->safe_psql('postgres', $by_index), $rows,
	'every row is there after the merge (index scan)');
$node->restart;
is($node->safe_psql('postgres', $fingerprint), $rows,
	'and after a restart');

$node->stop;
done_testing();
