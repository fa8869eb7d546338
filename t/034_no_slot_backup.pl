
# Copyright (c) 2026, armdb developers
#
# Base backups without armdb's checkpoint gate (max_replication_slots = 0:
# no slot, so the flusher cannot hold one).  Appenders then write their
# entries through to the data files, so a transaction open across the
# backup's checkpoint -- whose APPEND records lie before the backup's start
# point, and whose commit comes while the backup copies -- is whole in the
# restored backup.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('noslot');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
max_replication_slots = 0
armdb.flush_interval = '60s'
});
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE spans (id int, v text) USING armdb;
CREATE TABLE filler (id int, v text) USING armdb;
INSERT INTO filler SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;
});
my $spans_dir = $primary->data_dir . '/armdb/'
  . $primary->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'postgres'")
  . '/';
like($primary->safe_psql('postgres', 'SELECT durability FROM armdb_wal_status()'),
	qr/commit/, 'without a slot, commits sync');

for my $round (1 .. 3)
{
	my ($in, $out, $err) = ('', '', '');
	$primary->safe_psql('postgres', 'TRUNCATE spans');
	my $dir_now = $spans_dir
	  . $primary->safe_psql('postgres', "SELECT pg_relation_filenode('spans')");
	my $open = IPC::Run::start(
		[ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $primary->connstr('postgres') ],
		'<', \$in, '>', \$out, '2>', \$err);
	$in .= "SET synchronous_commit = off;\nBEGIN;\n"
	  . "INSERT INTO spans SELECT g, 'in flight ' || g FROM generate_series(1, 500) g;\n"
	  . "SELECT 'inserted';\n";
	$open->pump until $out =~ /inserted/;
	my $bytes = 0;
	$bytes += -s $_ for glob("$dir_now/*/*.data");
	cmp_ok($bytes, '>', 500 * 48,
		"round $round: the open transaction's entries are in the data files already");

	my $name = "spanning$round";
	my $dir = $primary->backup_dir . "/$name";
	my ($bb_out, $bb_err) = ('', '');
	my $bb = IPC::Run::start(
		[
			'pg_basebackup', '-D', $dir, '-c', 'fast', '-X', 'stream',
			'--no-slot', '--no-sync', '--max-rate=2M',
			'-d', $primary->connstr('postgres')
		],
		'>', \$bb_out, '2>', \$bb_err);
	ok( $primary->poll_query_until(
			'postgres', q{
SELECT count(*) > 0 FROM pg_stat_progress_basebackup
WHERE phase = 'streaming database files'}),
		"round $round: the backup is past its checkpoint");
	$in .= "COMMIT;\nSELECT 'committed';\n";
	$open->pump until $out =~ /committed/;
	$in .= "\\q\n";
	$open->finish;
	ok($bb->finish, "round $round: the backup finishes") or diag($bb_err);

	my $restored = PostgreSQL::Test::Cluster->new("restored$round");
	$restored->init_from_backup($primary, $name);
	$restored->start;
	is($restored->safe_psql('postgres', 'SELECT count(*) FROM spans'),
		'500', "round $round: the transaction open at the backup's start is whole");
	is($restored->safe_psql('postgres', 'SELECT count(*) FROM filler'),
		'20000', "round $round: and the other rows are there");
	$restored->stop;
	$restored->clean_node;
}
$primary->stop;

done_testing();
