# An ERROR while armdb holds a file descriptor releases it: the storage
# layer opens files through PostgreSQL's fd.c (transient files are closed at
# (sub)transaction abort, data files are virtual descriptors), so a keydir
# load that runs out of armdb.memory, retried many times in one session,
# leaves the backend's descriptor count where it was.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('fd_leak');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
armdb.memory = '64MB'
# the loads under test are the queries' own, not the background loader's
armdb.load_workers = 0
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE a (id int) USING armdb;
CREATE TABLE b (id int) USING armdb;
INSERT INTO a SELECT g FROM generate_series(1, 250000) g;
INSERT INTO b SELECT g FROM generate_series(1, 250000) g;
});

# with less memory, a fits and then b cannot be loaded
$node->stop;
$node->append_conf('postgresql.conf', "armdb.memory = '8MB'");
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*) FROM a'), '250000',
	'the first table loads');
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM b');
like($err, qr/armdb key directory is full/,
	'the second one runs out of armdb.memory');

# the same failure twenty times in one session, inside subtransactions and
# at top level; the backend's descriptors must not grow
my $probe = q{SELECT count(*) FROM pg_ls_dir('/proc/self/fd')};
$out = $node->safe_psql('postgres', qq{
CREATE FUNCTION try_b(n int) RETURNS int LANGUAGE plpgsql AS \$\$
BEGIN
	FOR i IN 1..n LOOP
		BEGIN
			PERFORM count(*) FROM b;
		EXCEPTION WHEN configuration_limit_exceeded THEN
			NULL;
		END;
	END LOOP;
	RETURN (SELECT count(*) FROM pg_ls_dir('/proc/self/fd'));
END
\$\$;
DO \$\$
DECLARE
	before int;
	after int;
BEGIN
	-- a few rounds first, so that what the session caches anyway
	-- (catalogs, plans) is open before counting
	PERFORM try_b(20);
	before := try_b(20);
	after := try_b(20);
	RAISE NOTICE 'descriptors before % after %', before, after;
	IF after > before THEN
		RAISE EXCEPTION 'leaked % descriptors in 20 failed loads', after - before;
	END IF;
END
\$\$;
SELECT 'ok';
});
is($out, 'ok', 'failed keydir loads in subtransactions leak no descriptor');

# and at top level: each failure aborts the transaction itself
my ($r2, $o2, $e2) = $node->psql('postgres', "$probe;\n" .
	  "SELECT count(*) FROM b;\n" x 1 . "$probe;\n" .
	  "SELECT count(*) FROM b;\n" x 20 . "$probe;\n",
	on_error_stop => 0);
my @counts = split /\n/, $o2;
is(scalar(@counts), 3, 'three descriptor counts');
is($counts[2], $counts[1],
	'twenty failed loads at top level leak no descriptor')
  or diag("counts: @counts");

# freeing memory (a DROP) lets the table load: nothing was damaged
$node->safe_psql('postgres', 'DROP TABLE a');
is($node->safe_psql('postgres', 'SELECT count(*) FROM b'), '250000',
	'the table loads once memory is free');

done_testing();
