
# Copyright (c) 2026, armdb developers
#
# Readers prune HOT chains (armdb_hot_prune_opt) while writers update the
# same rows through their indexes and VACUUM runs again and again: a
# pruning planned on a chain another pruner changed meanwhile must not be
# carried out (a slot freed by one pruning is soon used again by the next
# update, so the chain's root can look as it did), and VACUUM's plans must
# stay true until it carries them out.  Afterwards every row is found
# through each index as by a sequential scan, on the primary and on a hot
# standby that replayed every pruning, and after a crash.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
autovacuum = off
armdb.compaction = off
max_connections = 30
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE pr (id int PRIMARY KEY, w int, grp int, cnt int, pad text) USING armdb;
CREATE INDEX pr_w_grp ON pr (w, grp);
INSERT INTO pr SELECT g, g % 4, g % 50, 0, 'p' FROM generate_series(1, 100000) g;
});
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', qq{
max_standby_streaming_delay = '-1'
});
$standby->start;

# writers update a few rows again and again, each its own (so that each
# row's versions take turns in two slots of the writer's shard: the slot a
# pruning frees is the next update's), found through an index (whose
# fetches prune the chains they walk); readers walk chains by index and
# read pages by sequential scans; one client runs VACUUM over and over, and
# VACUUM plans the hot rows' chains (on the first page) long before it
# carries the plans out, after looking at the other 99,980 rows
my $dir = $node->basedir;
PostgreSQL::Test::Utils::append_to_file("$dir/update.sql", q{
\set id 1 + :client_id + 8 * random(0, 2)
SET enable_seqscan = off;
SET enable_bitmapscan = off;
UPDATE pr SET cnt = cnt + 1, pad = repeat('u', :id % 30) WHERE id = :id;
UPDATE pr SET cnt = cnt + 1 WHERE w = :id % 4 AND grp = :id % 50 AND id < 100;
});
PostgreSQL::Test::Utils::append_to_file("$dir/read.sql", q{
\set id random(1, 20)
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT cnt FROM pr WHERE id = :id;
SET enable_seqscan = on;
SET armdb.debug_seqscan_pages = on;
SELECT count(*) FROM pr WHERE id < 200 AND cnt >= 0;
});
PostgreSQL::Test::Utils::append_to_file("$dir/vacuum.sql", "VACUUM pr;\n");
command_ok(
	[ 'pgbench', '-n', '-T', '15', '-c', '6', '-j', '3',
		'-f', "$dir/update.sql\@6", '-f', "$dir/read.sql\@3",
		'-f', "$dir/vacuum.sql\@1", $node->connstr('postgres') ],
	'writers, readers and VACUUM ran together');

my $hot = $node->safe_psql('postgres',
	q{SELECT n_tup_hot_upd > 0 FROM pg_stat_user_tables WHERE relname = 'pr'});
is($hot, 't', 'the updates were HOT');

sub check
{
	my ($n, $what) = @_;
	my $q = q{SELECT count(*) || ':' || sum(cnt) || ':' || md5(string_agg(id || '/' || w || '/' || grp || '/' || cnt || '/' || pad, ',' ORDER BY id)) FROM pr WHERE %s};
	my $seq = $n->safe_psql('postgres',
		"SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off; "
		  . sprintf($q, 'id > 0 AND w >= 0'));
	my $pk = $n->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; "
		  . sprintf($q, 'id > 0'));
	my $wg = $n->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; "
		  . sprintf($q, 'w >= 0 AND grp >= 0'));
	my $bm = $n->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_indexscan = off; "
		  . sprintf($q, 'w >= 0 AND grp >= 0'));
	like($seq, qr/^100000:/, "$what: a sequential scan returns every row");
	is($pk, $seq, "$what: the primary key finds every row");
	is($wg, $seq, "$what: the (w, grp) index finds every row");
	is($bm, $seq, "$what: a bitmap scan finds every row");
}

check($node, 'after the race');
$node->safe_psql('postgres', 'VACUUM pr');
check($node, 'after a last VACUUM');
$node->wait_for_catchup($standby);
check($standby, 'on the hot standby');
$node->stop('immediate');
$node->start;
check($node, 'after a crash');

done_testing();
