# Encryption at rest (storage/cipher.h): encrypted armdb tables round-trip;
# none of a set of marker strings written into them is found in plaintext
# in the data directory's armdb files or in pg_wal, while the markers of an
# unencrypted twin are (the search works); logical decoding decrypts; a
# wrong or missing key is an ERROR naming the setting; a flipped byte in a
# value, a tag or a header (with its CRC mended, as a forger would) is
# ERRCODE_DATA_CORRUPTED naming file and offset; a standby, a restored base
# backup and crash recovery read encrypted tables; a new key encrypts new
# writes, a merge and VACUUM FULL re-encrypt old data, and the old key can
# then be retired.
use strict;
use warnings;
use File::Copy;
use File::Find;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use ArmdbTest;

my $key_a = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
my $key_b = 'a5a5a5a5b6b6b6b6c7c7c7c7d8d8d8d8e9e9e9e9fafafafa0b0b0b0b1c1c1c1c';
my $key_c = '0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000';

my $keydir = PostgreSQL::Test::Utils::tempdir();
my $keyfile = "$keydir/armdb.keys";
sub write_keys
{
	open(my $fh, '>', $keyfile) or die "open $keyfile: $!";
	print $fh "# armdb keys: the first encrypts new data\n";
	print $fh "$_\n" for @_;
	close($fh);
}
write_keys($key_a);

my $node = PostgreSQL::Test::Cluster->new('encryption');
$node->init(allows_streaming => 'logical');
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
armdb.encryption_key_command = 'cat $keyfile'
autovacuum = off
max_wal_senders = 4
# the worker stays asleep until the rotation's test of it wakes it (a
# reload), so that it merges nothing the steps before check by hand
armdb.compaction_naptime = 3600
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
SELECT 'init' FROM pg_create_logical_replication_slot('enc_slot', 'test_decoding');
CREATE TABLE enc (id int PRIMARY KEY, v text) USING armdb;
SET armdb.encrypt_new_tables = off;
CREATE TABLE plain (id int PRIMARY KEY, v text) USING armdb;
});

my $id_a = $node->safe_psql('postgres',
	"SELECT key_id FROM armdb_encryption_keys() WHERE current");
like($id_a, qr/^[0-9a-f]{8}$/, 'the server holds the key, known by its id');
unlike(slurp_file($node->logfile), qr/$key_a/, 'the key never reaches the log');

# rows of every kind: inserted singly and in bulk, updated, deleted, long
$node->safe_psql('postgres', q{
INSERT INTO enc SELECT g, 'ENCMARKER_' || g || repeat('e', g % 50) FROM generate_series(1, 2000) g;
INSERT INTO plain SELECT g, 'PLAINMARKER_' || g FROM generate_series(1, 2000) g;
INSERT INTO enc VALUES (5001, 'ENCMARKER_single');
UPDATE enc SET v = v || '_ENCMARKER_updated' WHERE id % 10 = 0;
DELETE FROM enc WHERE id % 7 = 0;
INSERT INTO enc VALUES (6000, 'ENCMARKER_long' || repeat(md5('x'), 3000));
});
my $expect;
is($node->safe_psql('postgres', "SELECT armdb_relation_encryption('enc')"),
	"(t,{$id_a})", 'the table is encrypted under the current key');
is($node->safe_psql('postgres', "SELECT armdb_relation_encryption('plain')"),
	'(f,{})', 'its twin, created with armdb.encrypt_new_tables off, is not');
is($node->safe_psql('postgres', "SELECT v FROM enc WHERE id = 5001"),
	'ENCMARKER_single', 'an encrypted row reads back by index');
is($node->safe_psql('postgres', "SELECT count(*) FROM enc WHERE v LIKE '%_updated'"),
	'172', 'and by sequential scan');

# logical decoding decrypts for the output plugin
my $decoded = $node->safe_psql('postgres',
	"SELECT string_agg(data, E'\\n') FROM pg_logical_slot_get_changes('enc_slot', NULL, NULL)");
like($decoded, qr/table public\.enc: INSERT: id\[integer\]:5001 v\[text\]:'ENCMARKER_single'/,
	'decoding shows the encrypted table\'s inserts');
like($decoded, qr/table public\.enc: DELETE: id\[integer\]:7\b/, 'and its deletes');

# the search: files under armdb/ and pg_wal
sub files_with
{
	my ($marker) = @_;
	my @hits;
	find(
		sub {
			return unless -f $_;
			open(my $fh, '<', $_) or return;
			binmode $fh;
			local $/;
			my $bytes = <$fh>;
			close($fh);
			push @hits, $File::Find::name if index($bytes, $marker) >= 0;
		},
		$node->data_dir . '/armdb', $node->data_dir . '/pg_wal');
	return @hits;
}
$node->safe_psql('postgres', 'CHECKPOINT');
ok(scalar(files_with('PLAINMARKER_')) > 0,
	'the unencrypted twin\'s markers are found: the search works');
is(join(' ', files_with('ENCMARKER')), '',
	'no marker of the encrypted table is in armdb files or WAL in plaintext');

# --- crash recovery, a standby, a restored base backup ---
my $at_backup = $node->safe_psql('postgres', "SELECT count(*) FROM enc");
$node->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('encryption_standby');
$standby->init_from_backup($node, 'b1', has_streaming => 1);
$standby->start;
my $restored = PostgreSQL::Test::Cluster->new('encryption_restored');
$restored->init_from_backup($node, 'b1');
$restored->start;

$node->safe_psql('postgres', q{
INSERT INTO enc SELECT g, 'ENCMARKER_after_' || g FROM generate_series(10001, 10500) g;
});
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', "SELECT count(*) FROM enc"), $at_backup + 500,
	'after a crash every committed row is back');
$node->safe_psql('postgres', "INSERT INTO enc VALUES (20000, 'ENCMARKER_after_crash')");
$expect = $node->safe_psql('postgres',
	"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM enc");
$node->wait_for_catchup($standby, 'replay', $node->lsn('insert'));
is($standby->safe_psql('postgres',
		"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM enc"),
	$expect, 'a standby with the key reads the encrypted table');
is($restored->safe_psql('postgres', "SELECT count(*) FROM enc"), $at_backup,
	'so does a server restored from a base backup');
$restored->stop;

# --- rotation: a new key encrypts new writes, merges re-encrypt ---
# (enc_idle takes no writes after the rotation: its active file is closed
# by compaction to be re-encrypted; one shard, so that the row written
# after goes to the file that closing started)
# (database rot: a table with next to no dead bytes, in more files under
# the old key than the worker merges in a round -- four merges of four
# files a shard: rotation alone stays work for it until none is left)
$node->safe_psql('postgres', 'CREATE DATABASE rot');
$node->append_conf('postgresql.conf', "armdb.max_file_size = '64kB'");
$node->reload;
$node->safe_psql('rot', q{
CREATE EXTENSION armdb;
SET armdb.shards = 1;
CREATE TABLE rot_t (id int, v text) USING armdb;
INSERT INTO rot_t SELECT g, 'ENCMARKER_rot_' || g || repeat('r', 60)
	FROM generate_series(1, 15000) g;
});
$node->append_conf('postgresql.conf', "armdb.max_file_size = '1GB'");
$node->reload;
cmp_ok($node->safe_psql('rot', "SELECT count(*) FROM armdb_file_stats('rot_t')"),
	'>', 20, 'rot_t fills more files than a round of the worker merges');
my $rot_expect = $node->safe_psql('rot',
	"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM rot_t");
$node->safe_psql('postgres', q{
SET armdb.shards = 1;
CREATE TABLE enc_idle (id int, v text) USING armdb;
INSERT INTO enc_idle SELECT g, 'ENCMARKER_idle_' || g FROM generate_series(1, 500) g;
});
my $idle_expect = $node->safe_psql('postgres',
	"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM enc_idle");
# the standby first: it replays merges, which encrypt under the new key
write_keys($key_b, $key_a);
$standby->restart;
$node->restart;
my $id_b = $node->safe_psql('postgres',
	"SELECT key_id FROM armdb_encryption_keys() WHERE current");
isnt($id_b, $id_a, 'the new key is current');
$node->safe_psql('postgres', q{
INSERT INTO enc SELECT g, 'ENCMARKER_rotated_' || g FROM generate_series(30001, 30300) g;
DELETE FROM enc WHERE id BETWEEN 1 AND 600;
VACUUM enc;
});
my $keys = $node->safe_psql('postgres', "SELECT key_ids FROM armdb_relation_encryption('enc')");
ok($keys =~ /$id_a/ && $keys =~ /$id_b/, 'after rotation the table\'s files need both keys');
is($node->safe_psql('postgres', "SELECT files_in > 0 FROM armdb_compact('enc')"), 't',
	'a merge ran');
$expect = $node->safe_psql('postgres',
	"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM enc");
$node->wait_for_catchup($standby, 'replay', $node->lsn('insert'));
is($standby->safe_psql('postgres',
		"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM enc"),
	$expect, 'the standby replays the merge that re-encrypted files');
is($node->safe_psql('postgres', "SELECT armdb_relation_encryption('enc_idle')"),
	"(t,{$id_a})", 'a table not written since the rotation needs the old key');
my $idle_from = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
$node->safe_psql('postgres', "SELECT armdb_compact('enc_idle')");
is($node->safe_psql('postgres', "SELECT armdb_relation_encryption('enc_idle')"),
	"(t,{$id_b})", 'armdb_compact() closes and merges its active file: the new key only');
# the file it closed is merged away at once: no hint file is built for it
# (a whole read of the file, on the primary and on every standby)
my $idle_node = $node->safe_psql('postgres', "SELECT pg_relation_filenode('enc_idle')");
is($node->safe_psql('postgres', qq{
CREATE EXTENSION IF NOT EXISTS pg_walinspect;
SELECT string_agg(DISTINCT record_type, ',' ORDER BY record_type)
FROM pg_get_wal_records_info('$idle_from', pg_current_wal_insert_lsn())
WHERE resource_manager = 'armdb' AND description LIKE '%/$idle_node %'
  AND record_type IN ('HINT', 'MERGE')}),
	'MERGE', 'the merge is logged, and no hint file of the file it closed');
is($node->safe_psql('postgres',
		"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM enc_idle"),
	$idle_expect, 'and its rows read back');
$node->safe_psql('postgres', "INSERT INTO enc_idle VALUES (501, 'ENCMARKER_idle_501')");
$node->wait_for_catchup($standby, 'replay', $node->lsn('insert'));
is($standby->safe_psql('postgres', "SELECT count(*) FROM enc_idle"),
	'501', 'the standby reads it after the merge and a new file');
# the worker, woken with a short nap, re-encrypts rot_t without being asked
# (it compacts the tables with a key directory: a read loads rot_t's)
is($node->safe_psql('rot',
		"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM rot_t"),
	$rot_expect, 'rot_t reads after the rotation');
is($node->safe_psql('rot', "SELECT armdb_relation_encryption('rot_t')"),
	"(t,{$id_a})", 'a table with no dead byte, unwritten since the rotation, needs the old key');
$node->append_conf('postgresql.conf', 'armdb.compaction_naptime = 1');
$node->reload;
ok($node->poll_query_until('rot',
		"SELECT armdb_relation_encryption('rot_t')::text = '(t,{$id_b})'"),
	'the compaction worker alone re-encrypts it under the new key');
is($node->safe_psql('rot',
		"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM rot_t"),
	$rot_expect, 'and its rows read back');
$node->wait_for_catchup($standby, 'replay', $node->lsn('insert'));
is($standby->safe_psql('rot',
		"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM rot_t"),
	$rot_expect, 'on the standby too');
$node->safe_psql('postgres', 'DROP DATABASE rot');
$node->append_conf('postgresql.conf', 'armdb.compaction_naptime = 3600');
$node->reload;
$node->safe_psql('postgres', 'VACUUM FULL enc');
is($node->safe_psql('postgres', "SELECT armdb_relation_encryption('enc')"),
	"(t,{$id_b})", 'VACUUM FULL re-encrypts everything under the new key');
write_keys($key_b);
$node->restart;
is($node->safe_psql('postgres',
		"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM enc"),
	$expect, 'the old key retired, the table reads');
$node->wait_for_catchup($standby, 'replay', $node->lsn('insert'));
is($standby->safe_psql('postgres',
		"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM enc"),
	$expect, 'and so does the standby after the rewrite');
is(join(' ', files_with('ENCMARKER')), '',
	'still no marker in plaintext after merges and rewrites');

# --- a wrong key, no key ---
write_keys($key_c);
$node->restart;
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*), max(v) FROM enc');
isnt($ret, 0, 'a wrong key fails');
like($err, qr/encryption key $id_b is needed by data file \d+(?: of "[^"]+")?, and the server was not given it/,
	'naming the key');
like($err, qr/armdb\.encryption_key_command/, 'and the setting');
($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM plain');
is($out, '2000', 'an unencrypted table still reads');
($ret, $out, $err) = $node->psql('postgres', "INSERT INTO enc VALUES (1, 'x')");
like($err, qr/armdb\.encryption_key_command/, 'writing is refused too');
$node->append_conf('postgresql.conf', "armdb.encryption_key_command = 'false'");
$node->restart;
like(slurp_file($node->logfile), qr/armdb\.encryption_key_command failed/,
	'a failing key command is logged');
($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM enc');
like($err, qr/the server has no encryption key/, 'no key: a clear error');
($ret, $out, $err) = $node->psql('postgres', 'CREATE TABLE t2 (a int) USING armdb');
like($err, qr/cannot create an encrypted table/,
	'and no table is created unencrypted by mistake');
$node->append_conf('postgresql.conf', "armdb.encryption_key_command = 'cat $keyfile'");
write_keys($key_b);
$node->restart;

# --- tampering: a byte of a value, of a tag, of a header, CRC mended ---
my @crc_table;
for my $i (0 .. 255)
{
	my $c = $i;
	$c = ($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1) for 1 .. 8;
	$crc_table[$i] = $c;
}
sub crc32c
{
	my $crc = 0xFFFFFFFF;
	$crc = $crc_table[($crc ^ $_) & 0xFF] ^ ($crc >> 8) for unpack('C*', $_[0]);
	return $crc ^ 0xFFFFFFFF;
}
$node->safe_psql('postgres', "CHECKPOINT");
my $shard_file = (sort { -s $b <=> -s $a } glob($node->data_dir . '/armdb/*/*/*/*.data'))[0];
$node->stop;
open(my $fh, '<', $shard_file) or die;
binmode $fh;
my $image = do { local $/; <$fh> };
close($fh);
# the encrypted versions: [offset, header size, value length]
my @entries;
for (my $off = 64; $off + 16 <= length($image);)
{
	my ($crc, $vlen, $gsn_lo, $gsn_hi) = unpack('V V V V', substr($image, $off, 16));
	last if $crc == 0 && $vlen == 0 && $gsn_lo == 0 && $gsn_hi == 0;
	my $hsize = ($gsn_hi & (1 << 25)) ? 32 : 48;
	push @entries, [ $off, $hsize, $vlen ] if $gsn_hi & (1 << 24);
	$off += $hsize + $vlen;
}
ok(scalar(@entries) > 30, 'the file holds encrypted versions');
# (flag: the ENCRYPTED bit of the gsn taken off, the value left as it is)
for my $case (['value', 5], ['tag', -1], ['header', 20], ['flag', 15])
{
	my ($what, $at) = @$case;
	my ($off, $hsize, $vlen) = @{ $entries[10] };
	my $pos = $what eq 'header' || $what eq 'flag' ? $off + $at
	  : $what eq 'tag' ? $off + $hsize + $vlen - 1 : $off + $hsize + $at;
	my $forged = $image;
	substr($forged, $pos, 1) =
	  chr(ord(substr($forged, $pos, 1)) ^ ($what eq 'flag' ? 0x01 : 0x10));
	substr($forged, $off, 4) =
	  pack('V', crc32c(substr($forged, $off + 4, $hsize - 4 + $vlen)));
	open($fh, '+<', $shard_file) or die;
	binmode $fh;
	print $fh $forged;
	close($fh);
	$node->start;
	($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*), max(v) FROM enc');
	like($err, qr/failed authentication|a version of an encrypted table that is not encrypted|is not sealed, but its file is authenticated/,
		"a forged $what fails authentication");
	like($err, qr/offset $off of data file/, "naming file and offset ($what)");
	$node->stop;
	open($fh, '+<', $shard_file) or die;
	binmode $fh;
	print $fh $image;
	close($fh);
}
$node->start;
is($node->safe_psql('postgres',
		"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM enc"),
	$expect, 'the file mended, the table reads again');

# --- what a load takes is authenticated too: a load reads headers without
# values, so a tombstone or a hint record forged under a mended CRC would
# hide rows without failing any tag (storage/cipher.h) ---
$node->append_conf('postgresql.conf', "armdb.max_file_size = '64kB'");
$node->reload;
$node->safe_psql('postgres', q{
SET armdb.shards = 1;
CREATE TABLE enc_t (id int, v text) USING armdb;
INSERT INTO enc_t SELECT g, 'a row of t ' || g FROM generate_series(1, 12000) g;
DELETE FROM enc_t WHERE id % 100 = 0;
CHECKPOINT;
});
$node->append_conf('postgresql.conf', "armdb.max_file_size = '1GB'");
$node->reload;
# past the durable LSN, or the start's replay from it would rewrite the
# forged bytes from WAL (armdb_durable.c) before any load reads them
my $t_lsn = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
$node->safe_psql('postgres', 'SELECT pg_switch_wal()');
ok($node->poll_query_until('postgres',
		"SELECT durable_lsn >= '$t_lsn' FROM armdb_wal_status()"),
	'the files are durable past the entries to forge');
my $t_expect = $node->safe_psql('postgres',
	"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM enc_t");
my $dir_t = $node->data_dir . "/armdb/"
  . $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = current_database()")
  . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filenode('enc_t')") . '/0';
my @t_data = sort glob("$dir_t/*.data");
my @t_hints = sort glob("$dir_t/*.hint");
ok(scalar(@t_hints) >= 1, 'the table has sealed files with hint files');
$node->stop;
# (large enough for an image, keydir/image.c, were it not encrypted)
ok(!-e "$dir_t/../keydir.image",
	'a clean shutdown saves no key directory image of an encrypted table');

# the entries of a data file image: [offset, header size, value length, gsn high word]
sub entries_of
{
	my ($img) = @_;
	my @list;
	for (my $off = 64; $off + 16 <= length($img);)
	{
		my ($crc, $vlen, $gsn_lo, $gsn_hi) = unpack('V V V V', substr($img, $off, 16));
		last if $crc == 0 && $vlen == 0 && $gsn_lo == 0 && $gsn_hi == 0;
		my $hsize = ($gsn_hi & (1 << 25)) ? 32 : 48;
		push @list, [ $off, $hsize, $vlen, $gsn_hi ];
		$off += $hsize + $vlen;
	}
	return @list;
}
my $t_file = $t_data[-1];
my $t_image = slurp_file($t_file);
my @tombstones = grep { $_->[3] & (1 << 31) } entries_of($t_image);
ok(scalar(@tombstones) >= 1, 'the active file holds the tombstones');
ok(!(grep { !($_->[3] & (1 << 24)) || $_->[2] != 16 } @tombstones),
	'every tombstone is sealed: its value is its tag alone');
{
	# a tombstone's xid changed, its CRC mended
	my ($off, $hsize, $vlen) = @{ $tombstones[0] };
	my $forged = $t_image;
	substr($forged, $off + 16, 1) = chr(ord(substr($forged, $off + 16, 1)) ^ 0x01);
	substr($forged, $off, 4) =
	  pack('V', crc32c(substr($forged, $off + 4, $hsize - 4 + $vlen)));
	open($fh, '+<', $t_file) or die;
	binmode $fh;
	print $fh $forged;
	close($fh);
	$node->start;
	($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM enc_t');
	like($err, qr/failed authentication/, 'a forged tombstone fails its load');
	like($err, qr/offset $off of data file/, 'naming file and offset (tombstone)');
	is($err =~ /ERROR/ && $err =~ /armdb/ ? 1 : 0, 1, 'as an ERROR');
	$node->stop;
	open($fh, '+<', $t_file) or die;
	binmode $fh;
	print $fh $t_image;
	close($fh);
}
{
	# a hint record's xid changed, the hint's CRC mended: the hint's MAC
	# fails, so the load scans the data file instead, and loses nothing
	my $hint = $t_hints[0];
	my $h_image = slurp_file($hint);
	my ($magic, $version, $flags) = unpack('V v v', substr($h_image, 0, 8));
	is($flags & 1, 1, 'a hint file of an encrypted table carries a MAC');
	my $forged = $h_image;
	substr($forged, 32 + 48 * 3 + 8, 1) =
	  chr(ord(substr($forged, 32 + 48 * 3 + 8, 1)) ^ 0x01);
	substr($forged, length($forged) - 8, 4) =
	  pack('V', crc32c(substr($forged, 0, length($forged) - 8)));
	open($fh, '+<', $hint) or die;
	binmode $fh;
	print $fh $forged;
	close($fh);
	my $log_at = -s $node->logfile;
	$node->start;
	is($node->safe_psql('postgres',
			"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM enc_t"),
		$t_expect, 'a forged hint record is not taken: the data file is read');
	like(substr(slurp_file($node->logfile), $log_at),
		qr/ignored 1 damaged hint files/, 'and the hint is reported');
	$node->stop;
	open($fh, '>', $hint) or die;
	binmode $fh;
	print $fh $h_image;
	close($fh);
}
$node->start;
is($node->safe_psql('postgres',
		"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM enc_t"),
	$t_expect, 'the files mended, the table reads again');
# merges of authenticated files: updated rows (whose old versions a merge
# may keep only as endings, sealed anew), deleted ones, every file merged
my ($c_ret, $c_out, $c_err) = $node->psql('postgres', q{
UPDATE enc_t SET v = v || ' updated' WHERE id % 3 = 0;
DELETE FROM enc_t WHERE id % 7 = 0;
VACUUM enc_t;
SELECT sum(merges) > 0 FROM (SELECT merges FROM armdb_compact('enc_t')
	UNION ALL SELECT merges FROM armdb_compact('enc_t')) c;
});
is($c_out, 't', 'the updated table is merged');
unlike($c_err, qr/WARNING|ERROR/, 'without a warning');
$t_expect = $node->safe_psql('postgres',
	"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM enc_t");
is($t_expect, $node->safe_psql('postgres', q{
SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM (
	SELECT g AS id, 'a row of t ' || g || CASE WHEN g % 3 = 0 THEN ' updated' ELSE '' END AS v
	FROM generate_series(1, 12000) g WHERE g % 100 <> 0 AND g % 7 <> 0) x}),
	'every row as written after the merges');
$node->restart;
is($node->safe_psql('postgres',
		"SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM enc_t"),
	$t_expect, 'and after a restart, loaded from the merged files');

# --- a data file put in another encrypted table's place: each table's
# files' keys have its storage id in them ---
$node->safe_psql('postgres', q{
SET armdb.shards = 1;
CREATE TABLE enc_a (id int, v text) USING armdb;
CREATE TABLE enc_b (id int, v text) USING armdb;
INSERT INTO enc_a SELECT g, 'a row of a ' || g FROM generate_series(1, 50) g;
INSERT INTO enc_b SELECT g, 'a row of b ' || g FROM generate_series(1, 50) g;
CHECKPOINT;
});
my $db_oid = $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = current_database()");
my ($dir_a, $dir_b) = map {
	$node->data_dir . "/armdb/$db_oid/"
	  . $node->safe_psql('postgres', "SELECT pg_relation_filenode('$_')") . '/0'
} qw(enc_a enc_b);
my %in_b = map { (m{([^/]+)$})[0] => 1 } glob("$dir_b/*.data");
my @same = grep { $in_b{$_} } map { (m{([^/]+)$})[0] } glob("$dir_a/*.data");
ok(scalar(@same) >= 1, "the two tables have a data file of the same number (@same)");
$node->stop;
my $b_image = slurp_file("$dir_b/$same[0]");
copy("$dir_a/$same[0]", "$dir_b/$same[0]") or die "copy: $!";
$node->start;
($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*), max(v) FROM enc_b');
like($err, qr/failed authentication/,
	"another table's data file fails authentication in enc_b");
unlike($out, qr/a row of a/, "and none of its rows is returned");
$node->stop;
open($fh, '>', "$dir_b/$same[0]") or die;
binmode $fh;
print $fh $b_image;
close($fh);
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*), max(v) FROM enc_b'),
	'50|a row of b 9', 'its own file back, enc_b reads again');

# meta files of an older build (version 1, before storage ids): an
# unencrypted table with rows, and an encrypted one written after, whose
# files' keys then leave the storage id out
$node->safe_psql('postgres',
	'CREATE TABLE enc_old (id int PRIMARY KEY, v text) USING armdb');
my $plain_rows = $node->safe_psql('postgres', 'SELECT count(*), max(v) FROM plain');
my %meta_of = map {
	$_ => $node->data_dir . "/armdb/$db_oid/"
	  . $node->safe_psql('postgres', "SELECT pg_relation_filenode('$_')")
	  . '/armdb.meta'
} qw(plain enc_old);
$node->stop;
foreach my $path (values %meta_of)
{
	my $meta = slurp_file($path);
	is(length($meta), 52, 'a meta file of this build is 52 bytes');
	my $v1 = substr($meta, 0, 4) . pack('V', 1) . substr($meta, 8, 24);
	$v1 .= pack('V', crc32c($v1));
	open($fh, '>', $path) or die;
	binmode $fh;
	print $fh $v1;
	close($fh);
}
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*), max(v) FROM plain'),
	$plain_rows, 'a version 1 meta file reads');
$node->safe_psql('postgres', q{
INSERT INTO enc_old SELECT g, 'ENCMARKER_old_' || g FROM generate_series(1, 300) g;
UPDATE enc_old SET v = v || '_u' WHERE id % 3 = 0;
});
is($node->safe_psql('postgres', "SELECT armdb_relation_encryption('enc_old')"),
	"(t,{$id_b})", 'a table of version 1 meta is encrypted');
$node->restart;
is($node->safe_psql('postgres',
		"SELECT count(*), count(*) FILTER (WHERE v LIKE '%_u') FROM enc_old"),
	'300|100', 'and reads back after a restart, without a storage id');

$standby->stop;
$node->stop;
done_testing();
