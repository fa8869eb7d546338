# armdb's WAL resource manager (issue 13, step 1): every entry of a
# permanent table and every storage operation is a WAL record that
# pg_walinspect can read; replay writes them into the files, so that a
# streaming standby holds armdb tables and, once promoted, serves exactly
# the primary's rows; crash recovery replays entries of transactions that
# did not commit without harm; reading armdb tables during recovery is
# refused with a clear error until replay keeps key directories current.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::MD5;
use FindBin;
use lib $FindBin::RealBin;
use ArmdbTest;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', qq(
shared_preload_libraries = 'armdb'
armdb.max_file_size = '64kB'
armdb.compaction = off
autovacuum = off
));
$primary->start;
$primary->safe_psql('postgres',
	'CREATE EXTENSION armdb; CREATE EXTENSION pg_walinspect');

# rows of every table, in a form two nodes can compare
sub fingerprint
{
	my ($node, $db, $table) = @_;
	return $node->safe_psql($db,
		"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '-') FROM $table t");
}

# --- 1. the records, as pg_walinspect shows them ---
my $start = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
$primary->safe_psql('postgres', q{
CREATE TABLE w (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO w SELECT g, 'row ' || g FROM generate_series(1, 3) g;
UPDATE w SET v = 'changed' WHERE id = 2;
DELETE FROM w WHERE id = 3;
CREATE TABLE gone (a int) USING armdb;
DROP TABLE gone;
CREATE TEMP TABLE tmp (a int) USING armdb;
INSERT INTO tmp VALUES (1);
CREATE UNLOGGED TABLE unl (a int) USING armdb;
INSERT INTO unl VALUES (1);
});
my $end = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
my $records = $primary->safe_psql('postgres', qq{
SELECT record_type || ' ' || description
FROM pg_get_wal_records_info('$start', '$end')
WHERE resource_manager = 'armdb'});
my $w_node = $primary->safe_psql('postgres', "SELECT pg_relation_filenode('w')");
my $unl_node = $primary->safe_psql('postgres', "SELECT pg_relation_filenode('unl')");
like($records, qr{^CREATE rel \d+/\d+/$w_node shards \d+ persistence p$}m,
	'the table\'s storage creation is logged');
is(scalar(() = $records =~ m{^APPEND rel \d+/$w_node .*; version of slot}mg), 4,
	'three inserted versions and the updated one are logged');
like($records, qr{^APPEND rel \d+/$w_node .*; version of slot \d+, xid \d+, gsn \d+, replaces slot \d+, value \d+ bytes$}m,
	'an update names the version it replaces');
like($records, qr{^APPEND rel \d+/$w_node .*; tombstone of slot \d+, xid \d+}m,
	'a delete logs a tombstone');
# (an encrypted table's valueless entries are sealed: 16 bytes of tag)
like($records, qr{^APPEND rel \d+/$w_node shard \d+ file 000001 offset 64 len (?:48|64); reservation of slots \d+ to \d+(?:, sealed)?$}m,
	'slot reservations are logged');
like($records, qr{^DROP rel \d+/\d+$}m, 'DROP TABLE logs the removal');
like($records, qr{^CREATE rel \d+/\d+/$unl_node shards \d+ persistence u$}m,
	'an unlogged table\'s storage creation is logged');
unlike($records, qr{^APPEND rel \d+/$unl_node }m,
	'an unlogged table\'s rows are not');
is(scalar(() = $records =~ m{^APPEND }mg), 6,
	'nothing else is appended to WAL (temporary tables log nothing)');

# --- 2. a streaming standby ---
$primary->safe_psql('postgres', q{
CREATE TABLE before_backup (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO before_backup SELECT g, repeat('b', g % 50) FROM generate_series(1, 2000) g;
});
$primary->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
$standby->start;

my $ts_dir = PostgreSQL::Test::Utils::tempdir();
my $copy_file = $primary->basedir . '/copy.data';
my $copy_start = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
$primary->safe_psql('postgres', qq{
UPDATE before_backup SET v = v || 'u' WHERE id % 3 = 0;
DELETE FROM before_backup WHERE id % 7 = 0;
CREATE TABLE after_backup (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO after_backup SELECT g, md5(g::text) || md5((-g)::text) FROM generate_series(1, 5000) g;
UPDATE after_backup SET v = 'again' WHERE id <= 1000;
CREATE TABLE copied (id int PRIMARY KEY, v text) USING armdb;
COPY (SELECT g, repeat(md5(g::text), 1 + g % 20) FROM generate_series(1, 20000) g)
  TO '$copy_file';
COPY copied FROM '$copy_file';
CREATE TABLE big_rows (id int, v text) USING armdb;
-- 96000 bytes of distinct digests: too wide for a WAL page, incompressible
INSERT INTO big_rows SELECT g, (SELECT string_agg(md5(g || ':' || i), '')
  FROM generate_series(1, 3000) i) FROM generate_series(1, 10) g;
CREATE TABLE truncated (a int) USING armdb;
INSERT INTO truncated SELECT generate_series(1, 100);
TRUNCATE truncated;
INSERT INTO truncated SELECT generate_series(1, 7);
CREATE TABLE dropped (a int) USING armdb;
INSERT INTO dropped SELECT generate_series(1, 100);
});
my $dropped_dir = $primary->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'") . '/'
  . $primary->safe_psql('postgres', "SELECT pg_relation_filenode('dropped')");
$primary->safe_psql('postgres', 'DROP TABLE dropped');
# COPY logs its entries in batches, several to a record
my $copy_node = $primary->safe_psql('postgres', "SELECT pg_relation_filenode('copied')");
my $batched = $primary->safe_psql('postgres', qq{
SELECT count(*), sum(substring(description from '; (\\d+) entries\$')::int)
FROM pg_get_wal_records_info('$copy_start', pg_current_wal_flush_lsn())
WHERE resource_manager = 'armdb' AND description LIKE 'rel %/$copy_node %'
  AND description LIKE '% entries'});
my ($nbatch, $nbatched) = split(/\|/, $batched);
cmp_ok($nbatch, '>', 0, "COPY's entries go into WAL in batches ($nbatch records)");
cmp_ok($nbatched, '>', 10000, "holding most of its 20000 rows ($nbatched)");
# a table created and emptied in place in one transaction
$primary->safe_psql('postgres', q{
BEGIN;
CREATE TABLE in_place (a int) USING armdb;
INSERT INTO in_place SELECT generate_series(1, 50);
TRUNCATE in_place;
INSERT INTO in_place SELECT generate_series(1, 5);
COMMIT;
});
# a table moved to another tablespace, then changed
$primary->safe_psql('postgres', qq{
CREATE TABLESPACE ts LOCATION '$ts_dir';
CREATE TABLE moved (id int, v text) USING armdb;
INSERT INTO moved SELECT g, 'm' || g FROM generate_series(1, 300) g;
ALTER TABLE moved SET TABLESPACE ts;
UPDATE moved SET v = 'moved' WHERE id <= 10;
});
# a database made from a template with armdb tables, one dropped
$primary->safe_psql('postgres', q{
CREATE DATABASE tmpl;
});
$primary->safe_psql('tmpl', q{
CREATE EXTENSION armdb;
CREATE TABLE t (a int) USING armdb;
INSERT INTO t SELECT generate_series(1, 40);
});
$primary->safe_psql('postgres', q{
CREATE DATABASE copy TEMPLATE tmpl;
CREATE DATABASE doomed TEMPLATE tmpl;
});
$primary->safe_psql('copy', 'INSERT INTO t SELECT generate_series(41, 60)');
my $doomed_oid = $primary->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'doomed'");
$primary->safe_psql('postgres', 'DROP DATABASE doomed');
# a transaction that rolls back
$primary->safe_psql('postgres', q{
BEGIN;
INSERT INTO after_backup SELECT g, 'rolled back' FROM generate_series(10001, 10100) g;
ROLLBACK;
});
# freezing: the standby records the same fates in hint files of its own
my $freeze_start = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
$primary->safe_psql('postgres', 'VACUUM FREEZE after_backup');
# (VACUUM commits without a commit record: have its WAL flushed)
$primary->safe_psql('postgres', 'CHECKPOINT');
like($primary->safe_psql('postgres', qq{
SELECT string_agg(record_type || ' ' || description, E'\n')
FROM pg_get_wal_records_info('$freeze_start', pg_current_wal_flush_lsn())
WHERE resource_manager = 'armdb'}), qr/^FREEZE rel \d+\/\d+ cutoff \d+$/m,
	'VACUUM FREEZE logs the fates\' cutoff');
# merges: without full page writes (and no backup running) the standby
# redoes each from its own copies of the inputs
$primary->safe_psql('postgres', q{
ALTER SYSTEM SET full_page_writes = off;
SELECT pg_reload_conf();
});
$primary->safe_psql('postgres', 'CHECKPOINT');	# the checkpointer reloaded
my $merge_start = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
$primary->safe_psql('postgres', q{
CREATE TABLE churn (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO churn SELECT g, md5(g::text) FROM generate_series(1, 3000) g;
UPDATE churn SET v = v || 'x';
UPDATE churn SET v = v || 'y' WHERE id % 2 = 0;
DELETE FROM churn WHERE id % 5 = 0;
VACUUM churn;
});
cmp_ok($primary->safe_psql('postgres', "SELECT merges FROM armdb_compact('churn')"),
	'>', 0, 'the primary merges churn\'s files');
is($primary->safe_psql('postgres', qq{
SELECT count(*) FROM pg_get_wal_records_info('$merge_start', pg_current_wal_flush_lsn())
WHERE resource_manager = 'armdb' AND record_type = 'MERGE_DATA'}), '0',
	'without full page writes, merges log no output bytes');
$primary->safe_psql('postgres', q{
ALTER SYSTEM RESET full_page_writes;
SELECT pg_reload_conf();
});
$primary->safe_psql('postgres', 'CHECKPOINT');
my $churn_dir = $primary->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'") . '/'
  . $primary->safe_psql('postgres', "SELECT pg_relation_filenode('churn')");
my $after_dir = $primary->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'") . '/'
  . $primary->safe_psql('postgres', "SELECT pg_relation_filenode('after_backup')");
$primary->wait_for_catchup($standby);

# (the files VACUUM FREEZE's seal started hold no entry: nothing to hint;
# their FILE records came with the seal)
my ($ndata, $nunhinted) = (0, 0);
foreach my $data (glob($standby->data_dir . "/armdb/$after_dir/*/*.data"))
{
	next unless data_file_entries($data);
	$ndata++;
	(my $hint = $data) =~ s/\.data$/.hint/;
	$nunhinted++ unless -f $hint;
}
# the hint files of sealed files: the standby builds its own
my $bb_dir = $primary->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'") . '/'
  . $primary->safe_psql('postgres', "SELECT pg_relation_filenode('big_rows')");
my ($nsealed, $nsealed_unhinted) = (0, 0);
foreach my $shard (glob($standby->data_dir . "/armdb/$bb_dir/*"))
{
	my @data = sort glob("$shard/*.data");
	pop @data;	# the newest one is still being written
	foreach my $d (@data)
	{
		$nsealed++;
		(my $h = $d) =~ s/\.data$/.hint/;
		$nsealed_unhinted++ unless -f $h;
	}
}
cmp_ok($nsealed, '>', 0, "big_rows has sealed files on the standby ($nsealed)");
is($nsealed_unhinted, 0, 'each with the hint file the standby built for it');

# the same data files on both, merge outputs byte for byte
sub data_files
{
	my ($node) = @_;
	my $base = $node->data_dir . "/armdb/$churn_dir/";
	return map { substr($_, length($base)) } sort glob("$base*/*.data");
}
sub merge_output_md5
{
	my ($node) = @_;
	my %md5;
	foreach my $f (glob($node->data_dir . "/armdb/$churn_dir/*/*.data"))
	{
		open(my $fh, '<:raw', $f) or die "$f: $!";
		my $image = do { local $/; <$fh> };
		close($fh);
		next unless unpack('v', substr($image, 10, 2)) & 1;	# merged flag
		(my $name = $f) =~ s{.*/(\d+/\d+\.data)$}{$1};
		$md5{$name} = Digest::MD5::md5_hex($image);
	}
	return join(' ', map { "$_=$md5{$_}" } sort keys %md5);
}
my @pfiles = data_files($primary);
is(join(' ', data_files($standby)), join(' ', @pfiles),
	'the standby has the same data files as the primary after the merges');
my $pmd5 = merge_output_md5($primary);
isnt($pmd5, '', 'the merges wrote outputs');
is(merge_output_md5($standby), $pmd5, 'and the standby wrote the same bytes');
unlike(slurp_file($standby->logfile), qr/could not replay a merge/,
	'without a warning');

cmp_ok($ndata, '>', 8, "the standby's copy of after_backup has several files per shard ($ndata)");
is($nunhinted, 0, 'after VACUUM FREEZE every one of them has a hint file on the standby');
unlike(slurp_file($standby->logfile), qr/could not freeze/,
	'and replay froze them without a warning');

# hot standby: the standby reads every table as the primary has it
my @tables = qw(w before_backup after_backup copied big_rows truncated in_place moved churn);
my %want;
$want{$_} = fingerprint($primary, 'postgres', $_) foreach @tables;
$want{copy} = fingerprint($primary, 'copy', 't');
$want{tmpl} = fingerprint($primary, 'tmpl', 't');
$primary->wait_for_catchup($standby);
foreach my $t (@tables)
{
	is(fingerprint($standby, 'postgres', $t), $want{$t},
		"hot standby: table $t reads as on the primary");
}
is(fingerprint($standby, 'copy', 't'), $want{copy},
	'hot standby: the copied database\'s table');

my $standby_base = $standby->data_dir . '/armdb';
ok(!-d "$standby_base/$dropped_dir", 'the dropped table\'s storage is gone on the standby');
ok(!-d "$standby_base/$doomed_oid", 'so is the dropped database\'s');

# the primary's rows, then the standby's once promoted (the keydirs loaded
# while it was a standby become writable)
$primary->stop;
$standby->promote;
foreach my $t (@tables)
{
	is(fingerprint($standby, 'postgres', $t), $want{$t},
		"promoted standby: table $t has the primary's rows");
}
is(fingerprint($standby, 'copy', 't'), $want{copy},
	'promoted standby: the copied database\'s table');
is(fingerprint($standby, 'tmpl', 't'), $want{tmpl},
	'promoted standby: the template\'s table');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM after_backup WHERE id > 10000'),
	'0', 'no row of the rolled-back transaction');

# the promoted standby writes on
$standby->safe_psql('postgres', q{
INSERT INTO after_backup SELECT g, 'new' FROM generate_series(20001, 20500) g;
UPDATE before_backup SET v = 'p' WHERE id = 1;
});
is($standby->safe_psql('postgres', 'SELECT count(*) FROM after_backup'), '5500',
	'the promoted standby takes new rows');
$standby->restart;
is($standby->safe_psql('postgres', "SELECT v FROM before_backup WHERE id = 1"), 'p',
	'and keeps them across a restart');
$standby->stop;

# --- 3. crash recovery replays entries of a transaction that did not commit ---
$primary->start;
$primary->safe_psql('postgres', 'CHECKPOINT');
my $open = $primary->background_psql('postgres');
$open->query_safe('BEGIN');
$open->query_safe(q{INSERT INTO after_backup SELECT g, 'open' FROM generate_series(30001, 30300) g});
$primary->safe_psql('postgres', q{
INSERT INTO after_backup SELECT g, 'committed' FROM generate_series(40001, 40010) g;
});
$primary->stop('immediate');
eval { $open->quit; };
$primary->start;
is($primary->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE v = 'committed'), count(*) FILTER (WHERE v = 'open')
FROM after_backup}), '10|0', 'after a crash: the committed rows, none of the open transaction');
$primary->safe_psql('postgres', q{
INSERT INTO after_backup SELECT g, 'later' FROM generate_series(50001, 50100) g;
});
$primary->restart;
is($primary->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE v = 'later'), count(*) FROM after_backup}), '100|5110',
	'rows appended after the replayed entries survive a restart');
$primary->stop;

done_testing();
