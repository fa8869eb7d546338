
# Copyright (c) 2026, armdb developers
#
# Dense block numbers (keydir.h): each shard claims runs of consecutive
# pages from its table's next page, so one writer fills blocks 0, 1, 2, ...
# and several writers leave at most one unfinished run each.  The runs are
# recorded in the shards' files (reservation entries), so the pages keep
# their shard and every row keeps its TID across a clean restart, a crash
# with a transaction in flight, compaction and replay on a standby; new rows
# never get a TID an index entry may still name.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use ArmdbTest;

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
autovacuum = off
armdb.max_file_size = '256kB'
armdb.compaction = off
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE SEQUENCE ds;
CREATE TABLE da (id bigint PRIMARY KEY, w int, v text) USING armdb;
CREATE INDEX da_w ON da (w);
});
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;

# one writer: 2000 rows on blocks 0 to 6, each full but the last
$node->safe_psql('postgres',
	"INSERT INTO da SELECT nextval('ds'), 0, 'one' FROM generate_series(1, 2000)");
is( $node->safe_psql('postgres',
		"SELECT max((ctid::text::point)[0]) || ' ' || count(DISTINCT (ctid::text::point)[0]) FROM da"),
	'6 7',
	'one writer fills blocks 0 to 6');

# four writers at once
my $script = $node->basedir . '/insert.sql';
PostgreSQL::Test::Utils::append_to_file($script,
	"INSERT INTO da SELECT nextval('ds'), :client_id + 1, repeat('x', 20) FROM generate_series(1, 10);\n");
command_ok(
	[ 'pgbench', '-n', '-c', '4', '-j', '4', '-t', '200', '-f', $script,
		$node->connstr('postgres') ],
	'four writers insert');

# the TID of every row, and the rows through each index and by a scan
sub tids
{
	my ($n) = @_;
	return $n->safe_psql('postgres',
		q{SELECT count(*) || ':' || count(DISTINCT ctid) || ':' || md5(string_agg(id || '@' || ctid, ',' ORDER BY id)) FROM da});
}

sub check
{
	my ($n, $what) = @_;
	my $q = q{SELECT count(*) || ':' || md5(string_agg(id || '/' || w || '/' || v, ',' ORDER BY id)) FROM da WHERE %s};
	my $seq = $n->safe_psql('postgres',
		"SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off; "
		  . sprintf($q, 'id > 0 AND w >= 0'));
	my $pk = $n->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; "
		  . sprintf($q, 'id > 0'));
	my $bw = $n->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_indexscan = off; "
		  . sprintf($q, 'w >= 0'));
	is($pk, $seq, "$what: the primary key finds every row");
	is($bw, $seq, "$what: a bitmap scan of da_w finds every row");
	my ($rows, $distinct) = split /:/, tids($n);
	is($distinct, $rows, "$what: no two rows share a TID");
	return $seq;
}

my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM da');
is($rows, '10000', 'all rows inserted');
# 8000 rows need 28 pages; each writer's shard claims runs of 1, 2, 4, ...
# pages, so at most about twice its share, plus one run in progress
my $maxblk = $node->safe_psql('postgres',
	'SELECT max((ctid::text::point)[0]) FROM da');
cmp_ok($maxblk, '<', 80, "four writers' rows stay on low blocks ($maxblk)");
my $rows_by_scan = check($node, 'after the writers');
my $tids = tids($node);

$node->restart;
is(tids($node), $tids, 'every row keeps its TID across a clean restart');
check($node, 'after a clean restart');

# new rows after a load from the files come on new pages, past every
# claimed one: the files cannot say which slots of a run were handed out.
# (A clean restart's key directory image can, and its runs go on: which of
# the two a restart gets depends on the image being there.)
$node->stop;
remove_keydir_images($node);
$node->start;
$node->safe_psql('postgres',
	"INSERT INTO da SELECT nextval('ds'), 9, 'after' FROM generate_series(1, 300)");
cmp_ok(
	$node->safe_psql('postgres',
		"SELECT min((ctid::text::point)[0]) FROM da WHERE w = 9"),
	'>', $maxblk, 'rows inserted after the restart take pages past the old ones');
$tids = tids($node);
check($node, 'after inserting past a restart');

# a crash with an insert in flight: its slots were handed out (the index
# has entries for them), and are never handed out again
my $open = $node->background_psql('postgres');
$open->query_safe(
	"BEGIN; INSERT INTO da SELECT nextval('ds'), 8, 'lost' FROM generate_series(1, 700)");
$node->stop('immediate');
$open->quit;
$node->start;
is(tids($node), $tids, 'every committed row keeps its TID across a crash');
check($node, 'after a crash');
$node->safe_psql('postgres',
	"INSERT INTO da SELECT nextval('ds'), 7, 'post-crash' FROM generate_series(1, 700)");
check($node, 'after inserting past a crash');

# deletes, VACUUM, a merge; slots VACUUM freed are handed out again by
# their page's shard (one session writes one shard)
$node->safe_psql('postgres', 'DELETE FROM da WHERE id % 3 = 0');
$node->safe_psql('postgres', 'VACUUM da');
$node->safe_psql('postgres', "SELECT armdb_compact('da')");
is( $node->safe_psql(
		'postgres', q{
INSERT INTO da SELECT nextval('ds'), 6, 'first' FROM generate_series(1, 600);
SELECT max((ctid::text::point)[0]) AS first_max FROM da WHERE v = 'first' \gset
DELETE FROM da WHERE v = 'first';
VACUUM da;
INSERT INTO da SELECT nextval('ds'), 6, 'reused' FROM generate_series(1, 600);
SELECT count(*) FROM da
WHERE v = 'reused' AND (ctid::text::point)[0] <= :first_max;
}),
	'600',
	'slots VACUUM freed are used again');
check($node, 'after reuse and a merge');
$tids = tids($node);
$node->restart;
is(tids($node), $tids, 'every row keeps its TID after a merge and a restart');
check($node, 'after a merge and a restart');

# the standby: the same TIDs, through replay and after its own restart
$node->wait_for_catchup($standby);
is(tids($standby), $tids, 'the standby has every row at the same TID');
check($standby, 'on the standby');
$standby->restart;
is(tids($standby), $tids, 'the standby keeps them across its restart');
$standby->promote;
$standby->safe_psql('postgres',
	"INSERT INTO da SELECT 1000000 + g, 5, 'promoted' FROM generate_series(1, 500) g");
check($standby, 'after promotion and new rows');

done_testing();
