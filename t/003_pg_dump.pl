# pg_dump of a database with armdb tables restores into a fresh database
# with the same rows and the same access method (plain and custom format).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'armdb'");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql(
	'src', q{
CREATE EXTENSION armdb;
CREATE TABLE kv (id bigint PRIMARY KEY, doc jsonb, t text) USING armdb;
INSERT INTO kv SELECT g, jsonb_build_object('g', g), repeat('z', g % 50)
  FROM generate_series(1, 5000) g;
UPDATE kv SET t = 'updated' WHERE id % 7 = 0;
DELETE FROM kv WHERE id % 11 = 0;
CREATE INDEX kv_doc ON kv USING gin (doc);
SET default_table_access_method = armdb;
CREATE TABLE big (id int, v text);
INSERT INTO big VALUES (1, repeat('large value ', 200000));
RESET default_table_access_method;
CREATE TABLE plain (a int);
INSERT INTO plain VALUES (1), (2);
});

my $summary = q{
SELECT (SELECT count(*) || ' ' || sum(id) || ' ' ||
        md5(string_agg(id || doc::text || t, ',' ORDER BY id)) FROM kv),
       (SELECT md5(v) FROM big),
       (SELECT string_agg(c.relname || '=' || a.amname, ',' ORDER BY c.relname)
          FROM pg_class c JOIN pg_am a ON a.oid = c.relam
         WHERE c.relname IN ('kv', 'big', 'plain'))};
my $want = $node->safe_psql('src', $summary);
like($want, qr/big=armdb,kv=armdb,plain=heap/, 'source has armdb tables');

my $tmp = PostgreSQL::Test::Utils::tempdir();
for my $format ('p', 'c')
{
	my $db = "dst_$format";
	my $file = "$tmp/dump.$format";
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->command_ok(
		[ 'pg_dump', '-F', $format, '-f', $file, '-d', $node->connstr('src') ],
		"pg_dump -F $format");
	if ($format eq 'p')
	{
		$node->command_ok(
			[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $file, '-d',
				$node->connstr($db) ],
			'restore plain dump with psql');
	}
	else
	{
		$node->command_ok(
			[ 'pg_restore', '-d', $node->connstr($db), $file ],
			'pg_restore custom dump');
	}
	is($node->safe_psql($db, $summary), $want,
		"format $format: same rows and access methods after restore");
	is( $node->safe_psql(
			$db, "SET enable_seqscan = off; SELECT count(*) FROM kv WHERE doc @> '{\"g\": 42}'"),
		'1',
		"format $format: restored index works");
}

# and the restored tables survive a restart (rebuilt from their files)
$node->restart;
is($node->safe_psql('dst_c', $summary), $want, 'restored tables survive a restart');

done_testing();
