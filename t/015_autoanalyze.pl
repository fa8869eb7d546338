# Autovacuum's ANALYZE of an armdb table whose virtual pages reach past the
# first 1 GB segment of its empty main fork (issue 11, case 5).  PostgreSQL's
# acquire_sample_rows() prefetches sampled blocks from the main fork, and md.c
# refuses blocks past a short first segment; autovacuum calls analyze_rel()
# directly, so what keeps it from prefetching must not live in a
# ProcessUtility hook (armdb_analyze.c, armdb_analyze_avoid_prefetch).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('autoanalyze');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'armdb'
autovacuum = on
autovacuum_naptime = 1s
maintenance_io_concurrency = 10
log_autovacuum_min_duration = 0
});
$node->start;

# block numbers are dense: 38 million rows would reach past RELSEG_SIZE
# (131072 blocks of 8 kB); armdb.debug_first_page (test only) leaves the
# blocks below 131000 empty instead, and 160000 rows reach block 131550
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE sparse (id int, v int) USING armdb;
SET armdb.debug_first_page = 131000;
INSERT INTO sparse SELECT g, g % 10 FROM generate_series(1, 160000) g;
});
is( $node->safe_psql(
		'postgres', 'SELECT max((ctid::text::point)[0]) > 131072 FROM sparse'),
	't',
	'rows live on virtual pages past the main fork\'s first segment');

ok( $node->poll_query_until(
		'postgres', q{
SELECT last_autoanalyze IS NOT NULL FROM pg_stat_user_tables
WHERE relname = 'sparse'}),
	'autovacuum analyzed the table');
is( $node->safe_psql(
		'postgres', q{
SELECT string_agg(attname || '=' || n_distinct, ',' ORDER BY attname)
FROM pg_stats WHERE tablename = 'sparse'}),
	'id=-1,v=10',
	'its column statistics are there');
is( $node->safe_psql(
		'postgres', q{
SELECT relpages > 131072 AND reltuples > 0 FROM pg_class
WHERE relname = 'sparse'}),
	't', 'and pg_class has its size');

my $log = slurp_file($node->logfile);
unlike($log, qr/previous segment is only/,
	'no prefetch past the main fork\'s first segment was attempted');
like($log, qr/LOG:  automatic analyze of table "postgres\.public\.sparse"/,
	'the server log has the automatic analyze');

$node->stop;
done_testing();
