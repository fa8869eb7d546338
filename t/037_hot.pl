
# Copyright (c) 2026, armdb developers
#
# HOT chains across restarts, crashes, compaction and replay: the key
# directory is loaded again from the entries, which name each heap-only
# version's chain root, and the roots VACUUM had turned into redirects
# redirect again (keydir.c, rebuild_redirects); a prepared transaction's
# HOT update keeps its chain; a hot standby follows the primary's pruning.
# Every check reads the rows through the indexes and compares them with a
# sequential scan and with a heap twin.
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
max_prepared_transactions = 5
armdb.max_file_size = '64kB'
armdb.compaction = off
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE ha (id int PRIMARY KEY, k int, v text) USING armdb;
CREATE INDEX ha_k ON ha (k);
CREATE TABLE hh (id int PRIMARY KEY, k int, v text) USING heap;
INSERT INTO ha SELECT g, g % 20, 'v' || g FROM generate_series(1, 3000) g;
INSERT INTO hh SELECT * FROM ha;
});
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', qq{
max_standby_streaming_delay = '-1'
hot_standby_feedback = off
});
$standby->start;

# both tables the same way, on node
sub both
{
	my ($sql) = @_;
	(my $h = $sql) =~ s/\bha\b/hh/g;
	$node->safe_psql('postgres', $sql);
	$node->safe_psql('postgres', $h);
}

# the rows of ha through the primary key, through ha_k, and by a
# sequential scan, and hh's: all must agree
sub check
{
	my ($n, $what) = @_;
	my $q = q{SELECT count(*) || ':' || coalesce(md5(string_agg(id || '/' || k || '/' || v, ',' ORDER BY id)), '-') FROM %s WHERE %s};
	my $seq = $n->safe_psql('postgres',
		"SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off; "
		  . sprintf($q, 'ha', 'true'));
	my $pk = $n->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; "
		  . sprintf($q, 'ha', 'id BETWEEN 0 AND 100000'));
	my $bm = $n->safe_psql('postgres',
		"SET enable_seqscan = off; SET enable_indexscan = off; "
		  . sprintf($q, 'ha', 'k BETWEEN 0 AND 100000'));
	my $heap = $node->safe_psql('postgres', sprintf($q, 'hh', 'true'));
	is($pk, $seq, "$what: primary key index scan = sequential scan");
	is($bm, $seq, "$what: bitmap scan = sequential scan");
	is($seq, $heap, "$what: = heap");
}

# chains, pruned chains, chains pruned and grown again
both(q{UPDATE ha SET v = v || 'a' WHERE id <= 1000});
both(q{UPDATE ha SET v = v || 'b' WHERE id <= 500});
both(q{VACUUM ha});
both(q{UPDATE ha SET v = v || 'c' WHERE id <= 250});
both(q{UPDATE ha SET k = k + 100 WHERE id % 100 = 0});
both(q{DELETE FROM ha WHERE id % 250 = 1});
both(q{VACUUM ha});
both(q{UPDATE ha SET v = v || 'd' WHERE id % 7 = 0});
my $hot = $node->safe_psql('postgres',
	"SELECT pg_stat_force_next_flush(); SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'ha'");
cmp_ok($hot, '>', 1500, "updates of v were HOT ($hot)");
check($node, 'before restarts');

$node->wait_for_catchup($standby);
check($standby, 'hot standby, after replaying VACUUM\'s pruning');

# a prepared HOT update keeps its chain through restarts
$node->safe_psql('postgres', q{
BEGIN;
UPDATE ha SET v = v || 'p' WHERE id = 14;
PREPARE TRANSACTION 'hot';
});

$node->restart;
check($node, 'after a clean restart');
is($node->safe_psql('postgres', "SET enable_seqscan = off; SELECT v FROM ha WHERE id = 14"),
	'v14abcd', 'the prepared update is not visible');

$node->stop('immediate');
$node->start;
check($node, 'after a crash');
$node->safe_psql('postgres', "COMMIT PREPARED 'hot'");
$node->safe_psql('postgres', "UPDATE hh SET v = v || 'p' WHERE id = 14");
check($node, 'after COMMIT PREPARED');

# compaction drops the versions pruning passed over; the redirects come
# back from the entries left
both(q{UPDATE ha SET v = v || 'e' WHERE id <= 2000});
both(q{VACUUM ha});
$node->safe_psql('postgres', q{SELECT count(*) FROM armdb_compact('ha')});
check($node, 'after compaction');
$node->stop('immediate');
$node->start;
check($node, 'after compaction and a crash');

# VACUUM after the restart: chains that were loaded are pruned again
both(q{UPDATE ha SET v = v || 'f' WHERE id % 3 = 0});
both(q{VACUUM ha});
both(q{DELETE FROM ha WHERE id % 3 = 0});
both(q{VACUUM ha});
both(q{INSERT INTO ha SELECT g, g % 20, 'new' || g FROM generate_series(3001, 3600) g});
check($node, 'after pruning loaded chains and reusing their slots');

$node->wait_for_catchup($standby);
check($standby, 'hot standby at the end');
$standby->restart;
check($standby, 'hot standby after its restart');

done_testing();
