# The key directories of small tables that no session uses are given back
# after armdb.keydir_idle_timeout (the flusher frees them), and loaded again
# from their files by their next use: nothing is lost, also across a
# crash.  A table somebody holds a lock on (an open transaction, a prepared
# one) keeps its key directory, and so does a large table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('keydir_evict');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
max_prepared_transactions = 5
armdb.keydir_idle_timeout = '2s'
armdb.write_buffer_idle_timeout = '1s'
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE SCHEMA s;
CREATE PROCEDURE mk() LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..50 LOOP
		EXECUTE format('CREATE TABLE s.t%s (id int PRIMARY KEY, v text) USING armdb', i);
		EXECUTE format('INSERT INTO s.t%s SELECT g, %L || g FROM generate_series(1, %s) g', i, 'row ', i * 10);
	END LOOP;
END $$;
CALL mk();
CREATE TABLE big (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO big SELECT g, 'big ' || g FROM generate_series(1, 20000) g;
CREATE TABLE held (id int) USING armdb;
INSERT INTO held VALUES (1);
CREATE TABLE prep (id int) USING armdb;
INSERT INTO prep VALUES (1);
});

my $in_s = q{SELECT count(*) FROM armdb_memory_tables m
	JOIN pg_class c ON c.relfilenode = m.relfilenode
	WHERE m.database_name = current_database() AND c.relnamespace = 's'::regnamespace};
my $sums = q{SELECT string_agg(n::text, ',' ORDER BY t) FROM (
	SELECT 1 AS t, (SELECT count(*) + sum(id) FROM s.t1) AS n
	UNION ALL SELECT 7, (SELECT count(*) + sum(id) FROM s.t7)
	UNION ALL SELECT 50, (SELECT count(*) + sum(id) FROM s.t50)) x};
my $expected = $node->safe_psql('postgres', $sums);
is($node->safe_psql('postgres', $in_s), '50', 'the 50 small tables have key directories');

# an open transaction holds its table; a prepared one too
my $open = $node->background_psql('postgres');
$open->query_safe('BEGIN; INSERT INTO held VALUES (2);');
$node->safe_psql('postgres', q{
BEGIN; UPDATE prep SET id = 10 WHERE id = 1; INSERT INTO prep VALUES (2);
PREPARE TRANSACTION 'p';
});
# a snapshot older than a delete: the table keeps its keydir while the
# snapshot lives (a reload would leave the deleted rows out)
my $rr = $node->background_psql('postgres');
$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM big;');
my $t3_before = $node->safe_psql('postgres', 'SELECT count(*) FROM s.t3');
$node->safe_psql('postgres', 'DELETE FROM s.t3 WHERE id > 10');
my $used_before = $node->safe_psql('postgres', 'SELECT used_bytes FROM armdb_memory');

my $t3_kept = q{SELECT string_agg(c.relname, ',') FROM armdb_memory_tables m
	JOIN pg_class c ON c.relfilenode = m.relfilenode
	WHERE m.database_name = current_database() AND c.relnamespace = 's'::regnamespace};
$node->poll_query_until('postgres', $t3_kept, 't3')
  or die 'the idle small tables kept their key directories';
ok(1, 'the idle small tables gave their key directories back, but for the one an old snapshot may need');
is($rr->query_safe('SELECT count(*) FROM s.t3'), $t3_before,
	'the old snapshot still sees the rows deleted after it');
$rr->query_safe('COMMIT');
$rr->quit;

my $kept = q{SELECT string_agg(relation::text, ',' ORDER BY relation::text) FROM armdb_memory_tables
	  WHERE database_name = current_database() AND relation::text IN ('big', 'held', 'prep')};
# (t3 keeps its keydir while the open transaction below, older than the
# DELETE, holds the horizon back)
# (a prepared transaction's lock keeps it too where GetLockConflicts()
# sees prepared transactions' locks, as 15.18 does: they keep the virtual
# transaction id of the session that prepared them; where it does not, the
# table loads again and finds the prepared changes, as after a restart)
like($node->safe_psql('postgres', $kept), qr/^big,held(,prep)?$/,
	'the large table and the open transaction\'s kept theirs');
cmp_ok($node->safe_psql('postgres', 'SELECT used_bytes FROM armdb_memory'), '<', $used_before,
	'armdb.memory in use went down');

# the prepared transaction's table, loaded again, still has its row locked
my ($ret, $out, $err) = $node->psql('postgres',
	q{SET lock_timeout = '200ms'; UPDATE prep SET id = 11 WHERE id = 1});
like($err, qr/lock timeout/, 'the prepared transaction\'s update still locks its row');
is($node->safe_psql('postgres', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM prep}),
	'1', 'and its changes are not seen yet');

# their next use loads them again, and everything is there
is($node->safe_psql('postgres', $sums), $expected, 'the small tables load again, whole');
is($node->safe_psql('postgres',
	q{SET enable_seqscan = off; SELECT v FROM s.t9 WHERE id = 77}), 'row 77',
	'through their indexes too');
$node->safe_psql('postgres', q{
UPDATE s.t5 SET v = 'changed' WHERE id <= 10;
DELETE FROM s.t6 WHERE id > 30;
VACUUM s.t5, s.t6;
INSERT INTO s.t6 VALUES (1000, 'after vacuum');
});
is($node->safe_psql('postgres',
	q{SELECT (SELECT count(*) FROM s.t5 WHERE v = 'changed') || '/' || (SELECT count(*) FROM s.t6)}),
	'10/31', 'and take updates, deletes, VACUUM and inserts');

$open->query_safe('COMMIT');
$open->quit;
$node->safe_psql('postgres', q{COMMIT PREPARED 'p'});
is($node->safe_psql('postgres', q{SELECT count(*) FROM held}) . '/'
	  . $node->safe_psql('postgres', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM prep}),
	'2/2,10', 'both transactions committed, the prepared one\'s update and insert with it');

# given back again, then a crash: nothing committed is lost
my $after = $node->safe_psql('postgres',
	q{SELECT (SELECT count(*) + sum(id) FROM s.t6) || '/' || (SELECT count(*) FROM s.t5 WHERE v = 'changed')});
$node->poll_query_until('postgres', $in_s, '0')
  or die 'the small tables were not given back again';
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', $sums), $expected, 'after a crash the rows are there');
is($node->safe_psql('postgres',
	q{SELECT (SELECT count(*) + sum(id) FROM s.t6) || '/' || (SELECT count(*) FROM s.t5 WHERE v = 'changed')}),
	$after, 'with the changes made after the first load');
unlike(slurp_file($node->logfile), qr/PANIC|TRAP:|terminated by signal (6|11)/,
	'nothing crashed but the crash asked for');

$node->stop;
done_testing();
