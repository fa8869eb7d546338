# The decrypted cache (vstore/decrypted.h): sequential scans of encrypted
# tables, serial and parallel, keep what they decrypt and read it back; the
# rows are always those of an unencrypted twin -- after updates and deletes
# appended to the active file, after a merge, after a restart, on a hot
# standby across the primary's merges, for a scan whose copy of the write
# buffer another scan imaged from the file since; a table larger than the
# cache is read from its files without filling it; a size of 0 turns it
# off; a byte changed in a file is found once the cache no longer holds
# its region.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::MD5 qw(md5_hex);
use FindBin;
use lib $FindBin::RealBin;
use ArmdbTest;

my $key = '5c1f0e3a9b7d24681357ace02468bdf19e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b';

my $node = PostgreSQL::Test::Cluster->new('decrypted');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
armdb.encryption_key_command = 'echo $key'
armdb.decrypted_cache_size = '64MB'
autovacuum = off
armdb.compaction_naptime = 3600
min_parallel_table_scan_size = 0
parallel_setup_cost = 0
parallel_tuple_cost = 0
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE enc (id int PRIMARY KEY, k int, v text) USING armdb;
SET armdb.encrypt_new_tables = off;
CREATE TABLE twin (id int PRIMARY KEY, k int, v text) USING armdb;
});
is($node->safe_psql('postgres',
		"SELECT encrypted FROM armdb_relation_encryption('enc')"),
	't', 'the table is encrypted');

# several regions (256 kB) of entries, in a few shards
$node->safe_psql('postgres', q{
INSERT INTO twin SELECT g, g % 97, repeat(md5(g::text), 1 + g % 3)
  FROM generate_series(1, 60000) g;
INSERT INTO enc SELECT * FROM twin;
});

sub counters
{
	my ($n) = @_;
	my ($hits, $misses, $stored) = split /\|/, $n->safe_psql('postgres',
		'SELECT hits, misses, stored FROM armdb_decrypted_cache()');
	return ($hits, $misses, $stored);
}

# one query: a parallel (or serial) scan's aggregate of every column
sub digest
{
	my ($n, $table, $parallel) = @_;
	my $workers = $parallel ? 2 : 0;
	return $n->safe_psql('postgres', qq{
SET max_parallel_workers_per_gather = $workers;
SELECT count(*), sum(k), sum(hashtext(v)::bigint), sum(id::bigint * length(v))
  FROM $table});
}

sub same_rows
{
	my ($n, $what) = @_;
	my $want = digest($n, 'twin', 0);
	is(digest($n, 'enc', 0), $want, "$what: a serial scan reads the rows");
	is(digest($n, 'enc', 1), $want, "$what: a parallel scan reads the rows");
}

my $size = $node->safe_psql('postgres', 'SELECT size FROM armdb_decrypted_cache()');
ok($size >= 60 * 1024 * 1024, "the cache has its size ($size bytes)");
my ($h0, $m0, $s0) = counters($node);
same_rows($node, 'first scans');
my ($h1, $m1, $s1) = counters($node);
cmp_ok($s1, '>', $s0, 'the first scans kept images of what they decrypted');
same_rows($node, 'scans again');
same_rows($node, 'and again');
my ($h2, $m2, $s2) = counters($node);
cmp_ok($h2 - $h1, '>', 10, 'later scans read the images');
cmp_ok($m2 - $m1, '<', ($h2 - $h1) / 4, '... and rarely miss');
my $plan = $node->safe_psql('postgres', q{
SET max_parallel_workers_per_gather = 2;
EXPLAIN SELECT sum(k) FROM enc});
like($plan, qr/Parallel Seq Scan/, 'the parallel scans are parallel');

# updates and deletes append to the active file, whose imaged part stays
$node->safe_psql('postgres', q{
UPDATE twin SET v = v || 'x', k = k + 1 WHERE id % 7 = 0;
UPDATE enc SET v = v || 'x', k = k + 1 WHERE id % 7 = 0;
DELETE FROM twin WHERE id % 11 = 0;
DELETE FROM enc WHERE id % 11 = 0;
INSERT INTO twin SELECT g, g, 'new ' || g FROM generate_series(60001, 61000) g;
INSERT INTO enc SELECT g, g, 'new ' || g FROM generate_series(60001, 61000) g;
});
same_rows($node, 'after updates, deletes and inserts');
same_rows($node, 'after updates, deletes and inserts, again');

# a merge: new files, new salts; the old files' images are never asked for
$node->safe_psql('postgres', q{
VACUUM enc;
VACUUM twin;
SELECT armdb_compact('enc');
SELECT armdb_compact('twin');
});
same_rows($node, 'after a merge');
same_rows($node, 'after a merge, again');

# a hot standby keeps its own images, across the primary's merges
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('decrypted_standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
same_rows($standby, 'standby');
same_rows($standby, 'standby, again');
$node->safe_psql('postgres', q{
UPDATE twin SET k = k + 2 WHERE id % 3 = 0;
UPDATE enc SET k = k + 2 WHERE id % 3 = 0;
VACUUM enc;
VACUUM twin;
SELECT armdb_compact('enc');
SELECT armdb_compact('twin');
});
$node->wait_for_catchup($standby);
same_rows($standby, 'standby after the primary merged');
same_rows($node, 'primary after its merge');
$standby->stop;

# a restart empties the cache: a byte changed in a file is found again
$node->restart;
my ($h3, $m3, $s3) = counters($node);
is("$h3|$s3", '0|0', 'a restart starts with an empty cache');
same_rows($node, 'after a restart');

# a scan's copy of the write buffer (the active file's newest entries,
# not yet written out when it started: here its own transaction's) is
# ciphertext, even where another scan imaged those bytes once written
$node->safe_psql('postgres', q{
CREATE TABLE race (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO race SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
});
$node->append_conf('postgresql.conf', 'armdb.flush_interval = 60000');
$node->reload;
sleep(1);
my $slow = $node->background_psql('postgres');
$slow->query_safe('SET max_parallel_workers_per_gather = 0');
$slow->query_safe('BEGIN');
$slow->query_safe(
	'INSERT INTO race SELECT g, md5(g::text) FROM generate_series(20001, 20500) g');
$slow->query_safe('DECLARE c CURSOR FOR SELECT id, v FROM race');
is($slow->query_safe('FETCH 1 FROM c'), "1|" . md5_hex('1'),
	'a scan started with its own rows in the write buffer');
# more entries after them in that file, then everything written out
$slow->query_safe(
	'INSERT INTO race SELECT g, md5(g::text) FROM generate_series(20501, 26000) g');
$node->append_conf('postgresql.conf', 'armdb.flush_interval = 10');
$node->reload;
sleep(1);
my ($hb, $mb, $sb) = counters($node);
is($node->safe_psql('postgres', q{
SET max_parallel_workers_per_gather = 0;
SELECT count(*) FROM race WHERE v = md5(id::text)}), '20000',
	'another scan reads the table (and images its files)');
my ($ha, $ma, $sa) = counters($node);
cmp_ok($sa, '>', $sb, '... keeping images');
my @rows = split /\n/, $slow->query_safe('FETCH ALL FROM c');
my @bad = grep { my ($id, $v) = split /\|/; $v ne md5_hex($id) } @rows;
is(scalar(@rows), 20499, 'the first scan goes on to its end');
is(scalar(@bad), 0, '... reading every row right, its copied ones too');
$slow->query_safe('COMMIT');
$slow->quit;

# the cache holds no byte across a restart: one changed while the server
# was down (CRC mended, as a forger would) fails the scans that read it
same_rows($node, 'the cache filled again');
my $dir = $node->data_dir . '/armdb/'
  . $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'")
  . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filenode('enc')");
my $file = (sort { -s $b <=> -s $a } glob("$dir/*/*.data"))[0];
$node->stop;
my @sealed = grep { ($_->{flags} & 0x01) && $_->{value_len} > 40 }
  ArmdbTest::data_file_entries($file);
cmp_ok(scalar(@sealed), '>', 100, 'the largest file holds encrypted versions');
my $victim = $sealed[ int(@sealed / 2) ];
my $at = $victim->{offset} + $victim->{header} + 3;
ArmdbTest::flip_byte($file, $at);
$node->start;
for my $parallel (0, 1)
{
	my $workers = $parallel ? 2 : 0;
	my ($ret, $out, $err) = $node->psql('postgres', qq{
SET max_parallel_workers_per_gather = $workers;
SELECT count(*), sum(hashtext(v)::bigint) FROM enc});
	like($err, qr/offset $victim->{offset}\b/,
		'a changed byte fails the ' . ($parallel ? 'parallel' : 'serial')
		  . ' scan after a restart, naming its offset');
}
$node->stop;
ArmdbTest::flip_byte($file, $at);
$node->start;
same_rows($node, 'the byte restored');

# a table larger than most of the cache is read without filling it
$node->append_conf('postgresql.conf', "armdb.decrypted_cache_size = '1MB'");
$node->restart;
my ($h4, $m4, $s4) = counters($node);
same_rows($node, 'a table larger than the cache');
my ($h5, $m5, $s5) = counters($node);
is($s5, $s4, 'a table larger than the cache keeps no images');

# size 0: no cache
$node->append_conf('postgresql.conf', "armdb.decrypted_cache_size = 0");
$node->restart;
is($node->safe_psql('postgres', 'SELECT size FROM armdb_decrypted_cache()'),
	'0', 'armdb.decrypted_cache_size = 0 turns the cache off');
same_rows($node, 'without a cache');

done_testing();
