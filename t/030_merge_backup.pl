
# Copyright (c) 2026, armdb developers
#
# A merge that runs while a base backup copies the table: the copy may have
# listed the shard's directory before the merge's outputs existed and find
# its inputs gone when it gets to them, so that it holds neither.  The merge
# logs its outputs' bytes (XLOG_ARMDB_MERGE_DATA, as heap logs full pages
# while full_page_writes is on or a backup runs), and replay of the backup
# writes the outputs from WAL: the restored table holds every row.
use strict;
use warnings;
use File::Copy;
use File::Path qw(rmtree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
autovacuum = off
armdb.max_file_size = '64kB'
armdb.compaction = off
});
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE t (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO t SELECT g, repeat('v', 50) || g FROM generate_series(1, 20000) g;
DELETE FROM t WHERE id % 3 = 0;
UPDATE t SET v = 'changed ' || id WHERE id % 7 = 0;
VACUUM t;
});

my $rel_dir = $primary->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'") . '/'
  . $primary->safe_psql('postgres', "SELECT pg_relation_filenode('t')");

sub data_files
{
	my ($dir) = @_;
	return map { substr($_, length("$dir/armdb/$rel_dir/")) }
	  sort glob("$dir/armdb/$rel_dir/*/*.data");
}

sub fingerprint
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY id)) FROM t");
}

# the backup starts, and the copy lists (here: copies) the files
my $session = $primary->background_psql('postgres');
$session->query_safe("SELECT pg_backup_start('merge during copy', true)");
my $backup = $primary->backup_dir . '/during_merge';
PostgreSQL::Test::RecursiveCopy::copypath(
	$primary->data_dir, $backup,
	filterfn => sub {
		my $src = shift;
		return $src ne 'pg_wal' && $src ne 'postmaster.pid'
		  && $src ne 'postmaster.opts' && $src !~ m{^pg_replslot/};
	});
mkdir("$backup/pg_wal") or die;
my @before = data_files($primary->data_dir);

# the merge commits and removes its inputs before the copy gets to them
my $merges = $primary->safe_psql('postgres', "SELECT merges FROM armdb_compact('t')");
cmp_ok($merges, '>', 0, "the table was merged during the backup ($merges merges)");
my %after = map { $_ => 1 } data_files($primary->data_dir);
my @inputs = grep { !$after{$_} } @before;
cmp_ok(scalar(@inputs), '>', 0, scalar(@inputs) . ' input files were removed');
foreach my $input (@inputs)
{
	(my $hint = $input) =~ s/\.data$/.hint/;
	unlink("$backup/armdb/$rel_dir/$input") or die "$input: $!";
	unlink("$backup/armdb/$rel_dir/$hint");
}

# the outputs' bytes are in WAL
my $want = fingerprint($primary);
$primary->safe_psql('postgres', q{
CREATE EXTENSION pg_walinspect;
});
my $label = $session->query_safe(
	"SELECT labelfile FROM pg_backup_stop(false)");
$session->quit;
open(my $fh, '>', "$backup/backup_label") or die;
print $fh $label, "\n";
close $fh;
my $start_lsn = ($label =~ m{START WAL LOCATION: (\S+)})[0];
my $data_records = $primary->safe_psql('postgres', qq{
SELECT count(*) FROM pg_get_wal_records_info('$start_lsn', pg_current_wal_flush_lsn())
WHERE resource_manager = 'armdb' AND record_type = 'MERGE_DATA'});
cmp_ok($data_records, '>', 0, "the merge logged its outputs ($data_records MERGE_DATA records)");

# the WAL since the backup's start, as pg_basebackup -X would bring it
$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
foreach my $seg (glob($primary->data_dir . '/pg_wal/0*'))
{
	copy($seg, "$backup/pg_wal/") or die "$seg: $!";
}

my $restored = PostgreSQL::Test::Cluster->new('restored');
$restored->init_from_backup($primary, 'during_merge');
$restored->start;
is(fingerprint($restored), $want,
	'the restored table holds every row: replay wrote the outputs from WAL');
my @restored_files = data_files($restored->data_dir);
is(join(' ', @restored_files), join(' ', sort keys %after),
	'and has the primary\'s data files');
unlike(slurp_file($restored->logfile), qr/could not replay a merge|ends at .* before the entries/,
	'without a warning');
$restored->safe_psql('postgres', "INSERT INTO t VALUES (100000, 'restored')");
is($restored->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 100000'), '1',
	'and takes writes');
$restored->stop;

# with full_page_writes off and no backup running, merges log no data
$primary->append_conf('postgresql.conf', 'full_page_writes = off');
$primary->reload;
$primary->safe_psql('postgres', 'CHECKPOINT');	# the checkpointer has reloaded
$primary->safe_psql('postgres', q{
DELETE FROM t WHERE id % 5 = 0;
VACUUM t;
});
my $lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
$primary->safe_psql('postgres', "SELECT merges FROM armdb_compact('t')");
is($primary->safe_psql('postgres', qq{
SELECT count(*) FROM pg_get_wal_records_info('$lsn', pg_current_wal_flush_lsn())
WHERE resource_manager = 'armdb' AND record_type = 'MERGE_DATA'}), '0',
	'full_page_writes off: no MERGE_DATA');
$primary->stop;

done_testing();
