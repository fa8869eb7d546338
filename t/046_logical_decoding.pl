# Logical decoding of armdb tables (armdb_logical.c): the same script run
# on heap tables in one database and on armdb tables in another decodes,
# through test_decoding, to the same text -- inserts (one row, many, COPY),
# updates with and without a change of the key, deletes, every replica
# identity, savepoints, INSERT ... ON CONFLICT, TRUNCATE, NULLs, long
# rows, two-phase transactions and streamed large ones.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('logical_decoding');
$node->init(allows_streaming => 'logical');
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
max_prepared_transactions = 5
logical_decoding_work_mem = '64kB'
autovacuum = off
});
$node->start;

my %am = (dec_heap => 'heap', dec_armdb => 'armdb');
for my $db (sort keys %am)
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
CREATE EXTENSION armdb;
SET default_table_access_method = $am{$db};
CREATE TABLE t (id int PRIMARY KEY, v text, n int);
CREATE TABLE full_t (id int, v text);
ALTER TABLE full_t REPLICA IDENTITY FULL;
CREATE TABLE nothing_t (id int, v text);
ALTER TABLE nothing_t REPLICA IDENTITY NOTHING;
CREATE TABLE idx_t (id int NOT NULL, k int NOT NULL, v text);
CREATE UNIQUE INDEX idx_t_k ON idx_t (k);
ALTER TABLE idx_t REPLICA IDENTITY USING INDEX idx_t_k;
CREATE TABLE nokey_t (id int, v text);
CREATE TABLE big_t (id int PRIMARY KEY, v text);
SELECT 'init' FROM pg_create_logical_replication_slot('s_$db', 'test_decoding');
SELECT 'init' FROM pg_create_logical_replication_slot('s2pc_$db', 'test_decoding', false, true);
});
}

# the script, run in both databases
my @script = (
	q{INSERT INTO t VALUES (1, 'one', 1)},
	q{INSERT INTO t VALUES (2, 'two', NULL), (3, NULL, 3), (4, 'four', 4)},
	q{INSERT INTO t SELECT g, 'many ' || g, g FROM generate_series(10, 20) g},
	qq{COPY t FROM STDIN;\n30\tthirty\t30\n31\t\\N\t31\n\\.\n},
	q{UPDATE t SET v = 'ONE' WHERE id = 1},
	q{UPDATE t SET id = 100 WHERE id = 2},
	q{UPDATE t SET n = n + 1 WHERE id BETWEEN 10 AND 12},
	q{DELETE FROM t WHERE id = 3},
	q{DELETE FROM t WHERE id BETWEEN 13 AND 15},
	q{BEGIN; INSERT INTO t VALUES (40, 'kept', 0); SAVEPOINT a;
	  INSERT INTO t VALUES (41, 'rolled back', 0); UPDATE t SET v = 'gone' WHERE id = 40;
	  ROLLBACK TO a; SAVEPOINT b; UPDATE t SET v = 'kept too' WHERE id = 40;
	  RELEASE b; COMMIT},
	q{BEGIN; INSERT INTO t VALUES (50, 'aborted', 0); ROLLBACK},
	q{INSERT INTO t VALUES (1, 'conflict', 0) ON CONFLICT DO NOTHING},
	q{INSERT INTO t VALUES (60, 'no conflict', 0) ON CONFLICT DO NOTHING},
	q{INSERT INTO t VALUES (1, 'upserted', 0) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v},
	q{INSERT INTO t VALUES (61, 'inserted', 0) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v},
	q{INSERT INTO full_t VALUES (1, 'a'), (2, 'b'), (3, NULL)},
	q{UPDATE full_t SET v = 'A' WHERE id = 1},
	q{DELETE FROM full_t WHERE id = 2},
	q{INSERT INTO nothing_t VALUES (1, 'a'), (2, 'b')},
	q{UPDATE nothing_t SET v = 'A' WHERE id = 1},
	q{DELETE FROM nothing_t WHERE id = 2},
	q{INSERT INTO idx_t VALUES (1, 10, 'a'), (2, 20, 'b')},
	q{UPDATE idx_t SET v = 'A' WHERE id = 1},
	q{UPDATE idx_t SET k = 21 WHERE id = 2},
	q{DELETE FROM idx_t WHERE id = 1},
	q{INSERT INTO nokey_t VALUES (1, 'a')},
	q{UPDATE nokey_t SET v = 'b'},
	q{DELETE FROM nokey_t},
	# a row of 160 kB that does not compress, and one that does
	q{INSERT INTO big_t SELECT 1, string_agg(md5(i::text), '') FROM generate_series(1, 5000) i},
	q{INSERT INTO big_t VALUES (2, repeat('x', 200000))},
	q{DELETE FROM big_t WHERE id = 1},
	q{TRUNCATE nokey_t},
	q{TRUNCATE full_t, nothing_t});

# what slot s_DB (or s2pc_DB) has to say, with options
sub changes
{
	my ($db, $slot, @options) = @_;
	my $opts = join('', map { ", '$_'" } ('include-xids', '0', 'skip-empty-xacts', '1', @options));

	return $node->safe_psql($db,
		"SELECT data FROM pg_logical_slot_get_changes('${slot}_$db', NULL, NULL$opts)");
}

my %out;
for my $db (sort keys %am)
{
	$node->safe_psql($db, $_) for @script;
	$out{$db} = changes($db, 's');
}
is($out{dec_armdb}, $out{dec_heap}, 'armdb decodes as heap does');
cmp_ok(scalar(split /\n/, $out{dec_armdb}), '>', 80, 'and there is a lot of it');
like($out{dec_armdb}, qr/table public\.t: UPDATE: old-key: id\[integer\]:2 new-tuple: id\[integer\]:100/,
	'an update of the key carries the old key');
like($out{dec_armdb}, qr/table public\.full_t: DELETE: id\[integer\]:2 v\[text\]:'b'/,
	'REPLICA IDENTITY FULL carries the old row');
unlike($out{dec_armdb}, qr/rolled back|aborted|'gone'/, 'nothing rolled back is decoded');
note "decoded:\n$out{dec_armdb}" if $out{dec_armdb} ne $out{dec_heap};

# the one difference: heap keeps a long value out of line and an UPDATE
# that leaves it unchanged does not log it; armdb's values are inline
$node->safe_psql($_, q{UPDATE big_t SET id = 3 WHERE id = 2}) for sort keys %am;
like(changes('dec_heap', 's'), qr/unchanged-toast-datum/,
	'heap logs an unchanged TOASTed value as unchanged');
my $whole = changes('dec_armdb', 's');
like($whole, qr/table public\.big_t: UPDATE: old-key: id\[integer\]:2 new-tuple: id\[integer\]:3 v\[text\]:'x+'/,
	'armdb logs the whole row');
ok(index($whole, 'x' x 200000) >= 0, 'all of it');

# two-phase: decoded at PREPARE, then COMMIT PREPARED
for my $db (sort keys %am)
{
	changes($db, 's2pc');
	$node->safe_psql($db, q{BEGIN; INSERT INTO t VALUES (70, 'prepared', 0);
		UPDATE t SET v = 'prepared too' WHERE id = 1; DELETE FROM t WHERE id = 4;
		PREPARE TRANSACTION 'p1'});
	$out{"prep_$db"} = changes($db, 's2pc');
	$node->safe_psql($db, q{COMMIT PREPARED 'p1'});
	$out{"commit_$db"} = changes($db, 's2pc');
}
is($out{prep_dec_armdb}, $out{prep_dec_heap}, 'a prepared transaction decodes as heap\'s');
like($out{prep_dec_armdb}, qr/PREPARE TRANSACTION 'p1'/, 'at its PREPARE');
is($out{commit_dec_armdb}, $out{commit_dec_heap}, 'and its COMMIT PREPARED');

# a transaction larger than logical_decoding_work_mem, streamed
for my $db (sort keys %am)
{
	changes($db, 's', 'stream-changes', '1');
	$node->safe_psql($db, q{BEGIN; INSERT INTO t SELECT g, repeat('s', 100), g
		FROM generate_series(1000, 3000) g; SAVEPOINT s1;
		DELETE FROM t WHERE id BETWEEN 1000 AND 1500; COMMIT});
	$out{"stream_$db"} = changes($db, 's', 'stream-changes', '1');
}
# (where a block ends depends on memory accounting: count the changes)
my %changes = map { $_ => scalar(() = $out{"stream_$_"} =~ /^streaming change/mg) } sort keys %am;
is($changes{dec_armdb}, $changes{dec_heap}, 'a streamed transaction has as many changes as heap\'s');
cmp_ok($changes{dec_armdb}, '>=', 2501, 'all of them');
like($out{stream_dec_armdb}, qr/opening a streamed block/, 'in streamed blocks');
like($out{stream_dec_armdb}, qr/committing streamed transaction/, 'then committed');

# after a crash, the slot decodes what follows
for my $db (sort keys %am)
{
	$node->safe_psql($db, q{INSERT INTO t VALUES (80, 'before the crash', 0)});
}
# (a slot's position is saved by checkpoints: a crash takes it back to
# the last one's, for heap as for armdb)
$node->safe_psql('postgres', 'CHECKPOINT');
$node->stop('immediate');
$node->start;
for my $db (sort keys %am)
{
	$node->safe_psql($db, q{UPDATE t SET v = 'after the crash' WHERE id = 80});
	$out{"crash_$db"} = changes($db, 's');
}
is($out{crash_dec_armdb}, $out{crash_dec_heap}, 'after a crash too');
like($out{crash_dec_armdb}, qr/after the crash/, 'with the change made after it');

# replication origins: changes a session makes under an origin (as an
# apply worker does) carry it, and an output plugin filtering by origin
# (test_decoding's only-local) leaves them out, as heap's
for my $db (sort keys %am)
{
	$node->safe_psql($db, qq{
SELECT pg_replication_origin_create('orig_$db');
SELECT pg_replication_origin_session_setup('orig_$db');
INSERT INTO t VALUES (300, 'from elsewhere', 3);
UPDATE t SET v = 'elsewhere too' WHERE id = 300;
BEGIN;
SELECT pg_replication_origin_xact_setup('0/AABBCC', now());
DELETE FROM t WHERE id = 300;
INSERT INTO t VALUES (302, 'from elsewhere', 3);
COMMIT;
SELECT pg_replication_origin_session_reset();
INSERT INTO t VALUES (301, 'local', 3);
});
	$out{"local_$db"} = changes($db, 's', 'only-local', '1');
	$out{"origin_$db"} = $node->safe_psql($db,
		"SELECT remote_lsn FROM pg_replication_origin_status s
		 JOIN pg_replication_origin o ON o.roident = s.local_id
		 WHERE o.roname = 'orig_$db'");
}
is($out{local_dec_armdb}, $out{local_dec_heap},
	'only-local decodes as heap does');
unlike($out{local_dec_armdb}, qr/elsewhere/, 'leaving out the changes made under an origin');
like($out{local_dec_armdb}, qr/id\[integer\]:301 v\[text\]:'local'/, 'keeping the local one');
is($out{origin_dec_armdb}, '0/AABBCC', 'the origin\'s progress is recorded');

# wal2json, an output plugin from outside PostgreSQL, sees them as well
# (a server that lists its trusted output plugins must name it)
my $trusted = $node->safe_psql('postgres',
	q{SELECT setting FROM pg_settings WHERE name = 'output_plugin_libraries'});
if ($trusted ne '' && $trusted !~ /wal2json/)
{
	$node->safe_psql('postgres',
		qq{ALTER SYSTEM SET output_plugin_libraries = $trusted, wal2json});
	$node->reload;
}
$node->safe_psql('dec_armdb',
	q{SELECT 'init' FROM pg_create_logical_replication_slot('w', 'wal2json')});
$node->safe_psql('dec_armdb', $_) for (
	q{INSERT INTO t VALUES (200, 'json', 2)},
	q{UPDATE t SET v = 'json too' WHERE id = 200},
	q{DELETE FROM t WHERE id = 200});
my $json = $node->safe_psql('dec_armdb', q{SELECT string_agg(data, E'\n')
	FROM pg_logical_slot_get_changes('w', NULL, NULL, 'format-version', '2')});
like($json,
	qr/\{"action":"I","schema":"public","table":"t","columns":\[\{"name":"id","type":"integer","value":200\},\{"name":"v","type":"text","value":"json"\},\{"name":"n","type":"integer","value":2\}\]\}/,
	'wal2json sees the insert');
like($json,
	qr/\{"action":"U","schema":"public","table":"t","columns":\[\{"name":"id","type":"integer","value":200\},\{"name":"v","type":"text","value":"json too"\}.*"identity":\[\{"name":"id","type":"integer","value":200\}\]\}/,
	'the update');
like($json,
	qr/\{"action":"D","schema":"public","table":"t","identity":\[\{"name":"id","type":"integer","value":200\}\]\}/,
	'and the delete, with its key');
note $json;

$node->stop;
done_testing();
