# Logical replication of armdb tables: a publisher's armdb tables reach a
# subscriber's heap tables and another's armdb tables -- the initial copy,
# then a pgbench workload of inserts, updates and deletes, a row filter
# and a column list, a REPLICA IDENTITY FULL table, streamed large
# transactions -- and after catch-up both sides hold the same rows.  A
# third subscribes to a FOR ALL TABLES publication with two_phase = true:
# a transaction prepared on the publisher is prepared there too.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $pub = PostgreSQL::Test::Cluster->new('publisher');
$pub->init(allows_streaming => 'logical');
$pub->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
logical_decoding_work_mem = '64kB'
max_wal_senders = 10
max_replication_slots = 10
max_prepared_transactions = 5
});
$pub->start;

my $sub = PostgreSQL::Test::Cluster->new('subscriber');
$sub->init;
$sub->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
max_logical_replication_workers = 8
max_worker_processes = 16
max_prepared_transactions = 5
});
$sub->start;

my $schema = q{
CREATE TABLE acct (id int PRIMARY KEY, balance int NOT NULL, filler text);
CREATE TABLE hist (id bigint PRIMARY KEY, acct int, delta int, at timestamptz);
CREATE TABLE full_t (k int, v text);
ALTER TABLE full_t REPLICA IDENTITY FULL;
CREATE TABLE filt (id int PRIMARY KEY, v text, secret text);
};

$pub->safe_psql('postgres', qq{
CREATE EXTENSION armdb;
SET default_table_access_method = armdb;
$schema
CREATE SEQUENCE hist_seq;
INSERT INTO acct SELECT g, 0, repeat('f', 50) FROM generate_series(1, 1000) g;
INSERT INTO full_t SELECT g % 10, 'v' || g FROM generate_series(1, 50) g;
INSERT INTO filt SELECT g, 'v' || g, 's' || g FROM generate_series(1, 100) g;
CREATE PUBLICATION pub FOR TABLE acct, hist, full_t;
CREATE PUBLICATION pub_filt FOR TABLE filt (id, v) WHERE (id % 2 = 0);
CREATE PUBLICATION pub_all FOR ALL TABLES;
});

my %am = (sub_heap => 'heap', sub_armdb => 'armdb');
my $connstr = $pub->connstr . ' dbname=postgres';
for my $db (sort keys %am)
{
	$sub->safe_psql('postgres', "CREATE DATABASE $db");
	$sub->safe_psql($db, qq{
CREATE EXTENSION armdb;
SET default_table_access_method = $am{$db};
$schema
CREATE SUBSCRIPTION $db CONNECTION '$connstr' PUBLICATION pub, pub_filt
	WITH (streaming = on);
});
}
$sub->safe_psql('postgres', 'CREATE DATABASE sub_all');
$sub->safe_psql('sub_all', qq{
CREATE EXTENSION armdb;
SET default_table_access_method = armdb;
$schema
CREATE SUBSCRIPTION sub_all CONNECTION '$connstr' PUBLICATION pub_all
	WITH (two_phase = true);
});
$sub->wait_for_subscription_sync($pub, $_, $_) for (sort(keys %am), 'sub_all');
$sub->poll_query_until('sub_all',
	q{SELECT subtwophasestate = 'e' FROM pg_subscription WHERE subname = 'sub_all'})
  or die 'two_phase was not enabled';
for my $db (sort keys %am)
{
	is($sub->safe_psql($db, 'SELECT count(*), sum(id) FROM acct'), '1000|500500',
		"$db: the initial copy");
	is($sub->safe_psql($db, q{SELECT amname FROM pg_class JOIN pg_am ON relam = pg_am.oid
		WHERE relname = 'acct'}), $am{$db}, "$db: into $am{$db} tables");
}

# a pgbench workload on the publisher's armdb tables
my $script = $pub->basedir . '/workload.sql';
open(my $fh, '>', $script) or die "open $script: $!";
print $fh q{
\set a random(1, 1200)
\set d random(-100, 100)
BEGIN;
UPDATE acct SET balance = balance + :d WHERE id = :a;
INSERT INTO hist VALUES (nextval('hist_seq'), :a, :d, now());
INSERT INTO acct VALUES (:a, :d, 'new') ON CONFLICT (id) DO UPDATE SET filler = 'upserted';
DELETE FROM hist WHERE id = (SELECT max(id) - 50 FROM hist);
UPDATE full_t SET v = v || '.' WHERE k = :a % 10;
UPDATE filt SET v = v || '+' WHERE id = :a % 100 + 1;
COMMIT;
};
close($fh);
$pub->command_ok(
	[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', '5', '-f', $script,
	  $pub->connstr('postgres') ],
	'pgbench ran on the publisher');

# one large transaction, streamed; a key change; deletes
$pub->safe_psql('postgres', q{
BEGIN;
INSERT INTO hist SELECT nextval('hist_seq'), g, 1, now() FROM generate_series(1, 5000) g;
UPDATE acct SET id = id + 10000 WHERE id BETWEEN 1 AND 10;
DELETE FROM acct WHERE id BETWEEN 11 AND 20;
DELETE FROM full_t WHERE k = 3;
COMMIT;
});

# a prepared transaction is prepared on the two_phase subscriber too
$pub->safe_psql('postgres', q{
BEGIN;
UPDATE acct SET balance = balance + 1000000 WHERE id = 500;
INSERT INTO hist VALUES (nextval('hist_seq'), 500, 1000000, now());
PREPARE TRANSACTION 'p1';
});
$pub->wait_for_catchup('sub_all');
is($sub->safe_psql('sub_all', 'SELECT count(*) FROM pg_prepared_xacts'), '1',
	'sub_all: the transaction is prepared there');
is($sub->safe_psql('sub_all', 'SELECT count(*) FROM acct WHERE balance >= 1000000'), '0',
	'sub_all: and not visible yet');
$pub->safe_psql('postgres', q{COMMIT PREPARED 'p1'});

$pub->wait_for_catchup($_) for (sort(keys %am), 'sub_all');
is($sub->safe_psql('sub_all', 'SELECT count(*) FROM pg_prepared_xacts'), '0',
	'sub_all: committed');

my %q = (
	acct => q{SELECT md5(string_agg(id || ':' || balance || ':' || filler, ',' ORDER BY id)) FROM acct},
	hist => q{SELECT md5(string_agg(id || ':' || acct || ':' || delta, ',' ORDER BY id)) FROM hist},
	full_t => q{SELECT md5(string_agg(k || ':' || v, ',' ORDER BY k, v)) FROM full_t},
);
for my $t (sort keys %q)
{
	my $want = $pub->safe_psql('postgres', $q{$t});
	is($sub->safe_psql($_, $q{$t}), $want, "$_: $t as on the publisher")
	  for (sort(keys %am), 'sub_all');
}
my $filt = $pub->safe_psql('postgres',
	q{SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM filt WHERE id % 2 = 0});
for my $db (sort keys %am)
{
	is($sub->safe_psql($db, q{SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM filt}),
		$filt, "$db: the row filter");
	is($sub->safe_psql($db, q{SELECT count(*) FROM filt WHERE secret IS NOT NULL}),
		'0', "$db: the column list");
}
is($sub->safe_psql('sub_all', q{SELECT md5(string_agg(id || ':' || v || ':' || secret, ',' ORDER BY id)) FROM filt}),
	$pub->safe_psql('postgres', q{SELECT md5(string_agg(id || ':' || v || ':' || secret, ',' ORDER BY id)) FROM filt}),
	'sub_all: every row and column of filt');
cmp_ok($pub->safe_psql('postgres', 'SELECT count(*) FROM hist'), '>', 5000,
	'the workload wrote');

$sub->stop;
$pub->stop;
done_testing();
