# A clean shutdown saves the key directories of large tables
# (keydir.image, src/keydir/image.c), and their next load restores them
# instead of reading their files: the same versions, TIDs, running
# (prepared) changes, free slots and file statistics.  An image is used
# once, only after a clean shutdown, and only if the files are still the
# ones it was taken from; a damaged or stale image is logged and the files
# are loaded instead.
use strict;
use warnings;
use File::Copy;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib $FindBin::RealBin;
use ArmdbTest;

my $node = PostgreSQL::Test::Cluster->new('keydir_image');
$node->init(allows_streaming => 1);
# (an encrypted table has no image, storage/cipher.h: when the encrypted
# run sets a key command, this test's tables are made unencrypted)
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
max_prepared_transactions = 5
autovacuum = off
armdb.encrypt_new_tables = off
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE t (id int PRIMARY KEY, k int, v text) USING armdb;
CREATE INDEX t_k ON t (k);
INSERT INTO t SELECT g, g % 100, 'row ' || g FROM generate_series(1, 30000) g;
UPDATE t SET v = v || ' hot' WHERE id % 7 = 0;
UPDATE t SET k = k + 1000 WHERE id % 11 = 0;
DELETE FROM t WHERE id % 13 = 0;
VACUUM t;
INSERT INTO t SELECT g, g % 100, 'again ' || g FROM generate_series(30001, 30500) g;
DELETE FROM t WHERE id % 17 = 0;
-- rows of 64 kB or more: their lengths are in their pages' side arrays
INSERT INTO t SELECT g, g % 100,
	(SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 5000) i)
FROM generate_series(30501, 30503) g;
CREATE TABLE small (id int) USING armdb;
INSERT INTO small VALUES (1), (2);
});
# a prepared transaction's update and row lock outlive the restart
$node->safe_psql('postgres', q{
BEGIN;
UPDATE t SET v = 'prepared' WHERE id = 1;
SELECT * FROM t WHERE id = 2 FOR UPDATE;
PREPARE TRANSACTION 'p1';
});

my $rows = q{SELECT md5(string_agg(ctid::text || xmin || '/' || xmax || id || k || v, ',' ORDER BY id)) FROM t};
my $by_index = q{SET enable_seqscan = off; SELECT count(*), sum(id) FROM t WHERE k >= 1000};
my $state = q{SELECT versions, pages FROM armdb_memory_tables WHERE relation = 't'::regclass};
my $before_rows = $node->safe_psql('postgres', $rows);
my $before_index = $node->safe_psql('postgres', $by_index);
my $before_state = $node->safe_psql('postgres', $state);

my $dir = $node->data_dir . '/armdb/'
  . $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = current_database()})
  . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filenode('t')});
my $small_dir = $node->data_dir . '/armdb/'
  . $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = current_database()})
  . '/' . $node->safe_psql('postgres', q{SELECT pg_relation_filenode('small')});

$node->stop('fast');
ok(-f "$dir/keydir.image", 'a clean shutdown saved the large table\'s key directory');
ok(!-f "$small_dir/keydir.image", 'but not the small table\'s');
like(slurp_file($node->logfile),
	qr/armdb: saved the key directories of 1 tables \(\d+ MB\) in \d+ ms/,
	'and said so');
copy("$dir/keydir.image", "$dir/../image.saved") or die "copy: $!";

my $log_pos = -s $node->logfile;
$node->start;
$node->poll_query_until('postgres',
	q{SELECT loaded FROM armdb_memory_tables WHERE relation = 't'::regclass})
  or die 'the table was not loaded';
like(substr(slurp_file($node->logfile), $log_pos),
	qr/loaded the key directory of relation \d+\/\d+ from its image in \d+ ms: \d+ row versions/,
	'the next start restored it from the image');
ok(!-f "$dir/keydir.image", 'which was used up');
is($node->safe_psql('postgres', $rows), $before_rows,
	'every version is where it was, with its xmin and xmax');
is($node->safe_psql('postgres', $by_index), $before_index, 'the indexes find them');
is($node->safe_psql('postgres', $state), $before_state, 'the statistics match');
is($node->safe_psql('postgres', 'SELECT count(*) FROM small'), '2',
	'the small table loaded from its files');

# the prepared transaction still holds its row lock, and still commits
my ($ret, $out, $err) = $node->psql('postgres',
	q{SET lock_timeout = '100ms'; UPDATE t SET v = 'blocked' WHERE id = 2});
like($err, qr/lock timeout/, 'the prepared transaction still locks its row');
$node->safe_psql('postgres', q{COMMIT PREPARED 'p1'});
is($node->safe_psql('postgres', q{SELECT v FROM t WHERE id = 1}), 'prepared',
	'and its update commits');

# writing goes on, the freed slots are handed out again, VACUUM works
$node->safe_psql('postgres', q{
INSERT INTO t SELECT g, g % 100, 'after ' || g FROM generate_series(40001, 41000) g;
UPDATE t SET v = 'updated after' WHERE id % 19 = 0;
DELETE FROM t WHERE id % 23 = 0;
VACUUM t;
INSERT INTO t SELECT g, g % 100, 'late ' || g FROM generate_series(50001, 50500) g;
});
my $expected = $node->safe_psql('postgres',
	q{SELECT count(*), sum(id), sum(length(v)) FROM t});
is($node->safe_psql('postgres',
	q{SET enable_seqscan = off; SELECT count(*), sum(id), sum(length(v)) FROM t WHERE id > 0}),
	$expected, 'index and sequential scans agree after new writes');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM (SELECT ctid FROM t GROUP BY ctid HAVING count(*) > 1) d}),
	'0', 'no TID is used twice');

# after a crash nothing is saved and the files are read
$node->stop('immediate');
ok(!-f "$dir/keydir.image", 'a crash saves no image');
$node->start;
is($node->safe_psql('postgres', q{SELECT count(*), sum(id), sum(length(v)) FROM t}),
	$expected, 'the rows are there after the crash');

# start the node, then check that the image was not used: the rows are
# there all the same, and the log says why
sub start_without_image
{
	my ($what, $why) = @_;
	my $pos = -s $node->logfile;

	$node->start;
	is($node->safe_psql('postgres', q{SELECT count(*), sum(id), sum(length(v)) FROM t}),
		$expected, "$what is not used");
	like(substr(slurp_file($node->logfile), $pos),
		qr/did not use the key directory image of relation \d+\/\d+: $why/,
		'and the log says why');
}

# an image an earlier shutdown saved is not used, whatever its files
$node->stop('fast');
ok(-f "$dir/keydir.image", 'the next clean shutdown saved it again');
copy("$dir/../image.saved", "$dir/keydir.image") or die "copy: $!";
start_without_image('an image of an earlier shutdown',
	'it was not saved by the clean shutdown this start follows');
ok(!-f "$dir/keydir.image", 'it was removed');

# nor one whose token is gone (a base backup copies images, not the token,
# which the start before it used up)
$node->stop('fast');
my $token = $node->data_dir . '/armdb/images.token';
ok(-f $token, 'the shutdown wrote its token');
unlink($token) or die "unlink: $!";
start_without_image('an image without its token',
	'it was not saved by the clean shutdown this start follows');

# nor one of files that changed since it was written
$node->stop('fast');
my ($active) = sort { -s $b <=> -s $a } glob("$dir/*/*.data");
open(my $fh, '>>', $active) or die "open $active: $!";
print $fh "\0" x 8192;
close($fh);
start_without_image('an image of files that have changed',
	'the files have changed since it was written');

# a damaged image is not used
$node->stop('fast');
flip_byte("$dir/keydir.image", int((-s "$dir/keydir.image") / 2));
start_without_image('a damaged image', 'its checksum does not match');

# an image is only used after a clean shutdown: a crash before the first
# load leaves it unused (and removed by that load)
$node->stop('fast');
ok(-f "$dir/keydir.image", 'saved once more');
$node->append_conf('postgresql.conf', 'armdb.load_workers = 0');
$node->start;
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', q{SELECT count(*), sum(id), sum(length(v)) FROM t}),
	$expected, 'after a crash the files are loaded');
ok(!-f "$dir/keydir.image", 'and the image is gone');

# a SIGTERM that is not a shutdown saves nothing and stops nothing
my $few = $node->safe_psql('postgres', q{SELECT count(*) FROM t WHERE id < 100});
my $launcher = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'armdb sweep launcher'});
ok($launcher =~ /^\d+$/, 'the sweep launcher runs');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($launcher)");
$node->poll_query_until('postgres',
	qq{SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $launcher})
  or die 'the launcher did not exit';
is($node->safe_psql('postgres', q{SELECT count(*) FROM t WHERE id < 100}), $few,
	'armdb tables stay usable');
ok(!-f "$dir/keydir.image", 'and no image was written');

# (the launcher comes back 10 s later; only it saves images)
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity
	  WHERE backend_type = 'armdb sweep launcher' AND query LIKE 'swept and loaded%'})
  or die 'the launcher did not come back';

# damage in a data file behind an image: found by the first read that
# meets it, with the file and offset; the next clean shutdown saves no
# image, so the next start's load reads the files and reports it in full
$node->stop('fast');
ok(-f "$dir/keydir.image", 'an image of the intact table');
my ($data) = sort glob("$dir/*/*.data");
flip_byte($data, int((-s $data) / 2));
$node->start;
($ret, $out, $err) = $node->psql('postgres',
	q{\set VERBOSITY verbose
SELECT count(*), sum(length(v)) FROM t});
like($err, qr/XX001/, 'a read finds the damage: ERRCODE_DATA_CORRUPTED');
like($err, qr/data file "[^"]+\.data" is corrupted at offset \d+/,
	'naming the file and the offset');
like($err, qr/armdb\.skip_damaged_entries/, 'with the way out in the hint');
$node->stop('fast');
ok(!-f "$dir/keydir.image", 'a keydir with damage found is not saved');
$node->start;
($ret, $out, $err) = $node->psql('postgres', q{SELECT count(*) FROM t});
like($err, qr/is corrupted at offset \d+/, 'the next load reads the files and finds it');

$node->stop;
done_testing();
