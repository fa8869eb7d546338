# Row locks of prepared transactions on armdb tables (issue 13): a
# transaction that locked rows -- SELECT ... FOR UPDATE / SHARE / KEY SHARE,
# a foreign key check, an UPDATE next to key-share lockers -- can PREPARE,
# and its locks hold, as heap's do, across a crash, a merge of the files
# that hold its lock entries, and a standby's promotion, until COMMIT or
# ROLLBACK PREPARED.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
max_prepared_transactions = 10
armdb.max_file_size = '64kB'
armdb.compaction = off
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
SET armdb.shards = 1;  -- one active file: later rows seal it for the merge
CREATE TABLE p (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO p SELECT g, 'orig' FROM generate_series(1, 20) g;
CREATE TABLE c (id int PRIMARY KEY, pid int REFERENCES p) USING armdb;
});
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;

# Does a writer meet a row lock on row id?  ($sql: what it tries)
sub blocked
{
	my ($n, $sql) = @_;
	my ($ret, $out, $err) =
	  $n->psql('postgres', "SET lock_timeout = '300ms'; $sql");
	return 1 if $err =~ /lock timeout|could not obtain lock/;
	die "unexpected: $err" if $ret != 0;
	return 0;
}

$node->safe_psql('postgres', q{
BEGIN; SELECT * FROM p WHERE id = 1 FOR UPDATE; PREPARE TRANSACTION 'upd';
BEGIN; SELECT * FROM p WHERE id = 2 FOR KEY SHARE; PREPARE TRANSACTION 'ks';
BEGIN; SELECT * FROM p WHERE id = 3 FOR SHARE; PREPARE TRANSACTION 'sh1';
BEGIN; SELECT * FROM p WHERE id = 3 FOR SHARE; PREPARE TRANSACTION 'sh2';
BEGIN; INSERT INTO c VALUES (1, 5); PREPARE TRANSACTION 'fk';
BEGIN; SELECT * FROM p WHERE id = 7 FOR KEY SHARE; PREPARE TRANSACTION 'ks7';
BEGIN; UPDATE p SET v = 'by upd7' WHERE id = 7; PREPARE TRANSACTION 'upd7';
BEGIN;
SAVEPOINT s; SELECT * FROM p WHERE id = 9 FOR UPDATE; RELEASE s;
SAVEPOINT t; SELECT * FROM p WHERE id = 10 FOR UPDATE; ROLLBACK TO t;
PREPARE TRANSACTION 'sub';
});
# an UPDATE carries the key-share lock of a prepared transaction (the
# foreign key check on 5) to its new version
$node->safe_psql('postgres', "UPDATE p SET v = 'moved' WHERE id = 5");

# a lock an UPDATE carried over before its locker prepared
my $bg = $node->background_psql('postgres');
$bg->query_safe('BEGIN');
$bg->query_safe('SELECT * FROM p WHERE id = 6 FOR KEY SHARE');
$node->safe_psql('postgres', "UPDATE p SET v = 'moved' WHERE id = 6");
$bg->query_safe("PREPARE TRANSACTION 'ks6'");
$bg->quit;

# what each lock must keep out, and what it must let in
my @checks = (
	[ 'FOR UPDATE keeps out an update', "UPDATE p SET v = 'x' WHERE id = 1", 1 ],
	[ '... and FOR KEY SHARE lockers', "SELECT * FROM p WHERE id = 1 FOR KEY SHARE", 1 ],
	[ 'FOR KEY SHARE keeps out a delete', "DELETE FROM p WHERE id = 2", 1 ],
	[ '... but lets a non-key update in', "SELECT * FROM p WHERE id = 2 FOR NO KEY UPDATE", 0 ],
	[ 'two FOR SHARE lockers keep out FOR UPDATE', "SELECT * FROM p WHERE id = 3 FOR UPDATE", 1 ],
	[ '... and let FOR SHARE in', "SELECT * FROM p WHERE id = 3 FOR SHARE", 0 ],
	[ 'a foreign key check keeps its parent row, updated since', "DELETE FROM p WHERE id = 5", 1 ],
	[ 'a lock taken before an update and prepared after it holds', "DELETE FROM p WHERE id = 6", 1 ],
	[ 'a prepared update next to a prepared key-share locker', "SELECT * FROM p WHERE id = 7 FOR KEY SHARE NOWAIT", 0 ],
	[ '... keeps out a delete', "DELETE FROM p WHERE id = 7", 1 ],
	[ 'a lock of a released savepoint holds', "UPDATE p SET v = 'x' WHERE id = 9", 1 ],
	[ 'a lock of a rolled-back savepoint does not', "SELECT * FROM p WHERE id = 10 FOR UPDATE NOWAIT", 0 ],
	[ 'an unlocked row is free', "SELECT * FROM p WHERE id = 11 FOR UPDATE NOWAIT", 0 ],
);
sub check_locks
{
	my ($n, $when) = @_;
	for my $c (@checks)
	{
		is(blocked($n, $c->[1]), $c->[2], "$c->[0] ($when)");
	}
}
my $rows = q{SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM p WHERE id <= 10};
my $before = $node->safe_psql('postgres', $rows);

check_locks($node, 'before a crash');
$node->stop('immediate');
$node->start;
check_locks($node, 'after a crash');
is($node->safe_psql('postgres', $rows), $before, 'the rows read the same');

# the lock entries sit in sealed files that a merge rewrites: they stay
# while their transactions run
$node->safe_psql('postgres', q{
INSERT INTO p SELECT g, repeat('f', 500) FROM generate_series(1000, 1400) g;
DELETE FROM p WHERE id >= 1000;
VACUUM p;
});
my $dir = $node->data_dir . '/armdb/'
  . $node->safe_psql('postgres',
	"SELECT oid FROM pg_database WHERE datname = 'postgres'")
  . '/' . $node->safe_psql('postgres', "SELECT pg_relation_filenode('p')");
my ($first) = sort glob("$dir/*/*.data");
# prepared since the start, not recovered: the merge does not wait for it
$node->safe_psql('postgres', q{
BEGIN; SELECT * FROM p WHERE id = 15 FOR UPDATE; PREPARE TRANSACTION 'fresh';
});
my $merged = $node->safe_psql('postgres', "SELECT files_in > 0 FROM armdb_compact('p')");
is($merged, 't', 'a merge rewrote the files');
ok(!-e $first, 'the file that held the lock entries was merged away');
$node->stop('immediate');
$node->start;
check_locks($node, 'after a merge and a crash');

# a standby that replayed all this, promoted, keeps the locks too
$node->wait_for_catchup($standby);
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'promotion';
check_locks($standby, 'on the promoted standby');
is($standby->safe_psql('postgres', $rows), $before, 'it reads the same rows');
$standby->safe_psql('postgres', "COMMIT PREPARED 'upd7'");
is(blocked($standby, "DELETE FROM p WHERE id = 7"), 1,
	'the committed update\'s new version keeps the key-share lock');
for my $g (qw(upd ks sh1 sh2 fk ks7 sub ks6 fresh))
{
	$standby->safe_psql('postgres', "COMMIT PREPARED '$g'");
}
is(blocked($standby, "UPDATE p SET v = 'free' WHERE id <= 10"), 0,
	'once they end, the rows are free');

# the same on the old primary: after COMMIT and ROLLBACK PREPARED, a crash
# brings no lock back
$node->safe_psql('postgres', "COMMIT PREPARED 'upd7'");
is(blocked($node, "DELETE FROM p WHERE id = 7"), 1,
	'the committed update keeps the key-share lock (primary)');
for my $g (qw(upd ks sh1 fk ks7 ks6))
{
	$node->safe_psql('postgres', "COMMIT PREPARED '$g'");
}
$node->safe_psql('postgres', "ROLLBACK PREPARED 'sh2'");
$node->safe_psql('postgres', "ROLLBACK PREPARED 'fresh'");
$node->safe_psql('postgres', "ROLLBACK PREPARED 'sub'");
$node->stop('immediate');
$node->start;
is(blocked($node, "UPDATE p SET v = 'free' WHERE id <= 10"), 0,
	'after a crash, ended transactions lock nothing');
is($node->safe_psql('postgres', 'SELECT count(*) FROM c'), '1',
	'the prepared foreign key insert committed');

# without max_prepared_transactions nothing is tracked, and nothing breaks
$node->append_conf('postgresql.conf', 'max_prepared_transactions = 0');
$node->restart;
is(blocked($node, "UPDATE p SET v = 'again' WHERE id <= 10"), 0,
	'row locks without two-phase commit work as before');

done_testing();
