
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
use FindBin;
use lib $FindBin::RealBin;
use ArmdbTest;

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
	my $name = "spanning$round";
	backup_across_open_transaction(
		$primary, $name, "round $round", 'spans',
		[ '--no-slot', '--max-rate=2M' ],
		sub {
			my $dir = $spans_dir
			  . $primary->safe_psql('postgres',
				"SELECT pg_relation_filenode('spans')");
			my $bytes = 0;
			$bytes += -s $_ for glob("$dir/*/*.data");
			cmp_ok($bytes, '>', 500 * 48,
				"round $round: the open transaction's entries are in the data files already");
		});

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
