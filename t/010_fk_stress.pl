# Foreign keys to an armdb table under concurrent load: pgbench clients
# update referenced rows without touching the key (FOR NO KEY UPDATE, which
# foreign key checks do not wait for), insert referencing rows (FOR KEY
# SHARE on the referenced row, following its update chain), delete and
# re-insert referenced rows, and take FOR SHARE locks, all at once.
# Whatever interleaving happens, no referencing row may end up pointing at
# a missing referenced row, and every client must finish without errors
# other than the foreign key violations the scripts expect and catch.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('fk_stress');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', qq(
shared_preload_libraries = 'armdb'
max_connections = 30
));
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE parent (id int PRIMARY KEY, v int NOT NULL) USING armdb;
CREATE TABLE child (id bigserial PRIMARY KEY,
                    pid int NOT NULL REFERENCES parent (id)) USING armdb;
INSERT INTO parent SELECT g, 0 FROM generate_series(1, 20) g;
-- each catches the one error its race may legitimately produce
CREATE FUNCTION try_insert(p int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO child (pid) VALUES (p);
EXCEPTION WHEN foreign_key_violation THEN NULL;
END $$;
CREATE FUNCTION try_delete(p int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM child WHERE pid = p AND id % 3 = 0;
  DELETE FROM parent WHERE id = p;
EXCEPTION WHEN foreign_key_violation THEN NULL;
END $$;
});

my $tempdir = PostgreSQL::Test::Utils::tempdir();
my %scripts = (
	'update.sql' => "\\set p random(1, 20)\n"
	  . "UPDATE parent SET v = v + 1 WHERE id = :p;\n",
	'insert.sql' => "\\set p random(1, 20)\nSELECT try_insert(:p);\n",
	'delete.sql' => "\\set p random(1, 20)\n"
	  . "SELECT try_delete(:p);\n"
	  . "INSERT INTO parent VALUES (:p, 0) ON CONFLICT (id) DO NOTHING;\n",
	'share.sql' => "\\set p random(1, 20)\nBEGIN;\n"
	  . "SELECT id FROM parent WHERE id = :p FOR SHARE;\n"
	  . "UPDATE parent SET v = v + 1 WHERE id = :p;\nCOMMIT;\n",);
my @files;
for my $name (sort keys %scripts)
{
	open(my $fh, '>', "$tempdir/$name") or die "could not write $name: $!";
	print $fh $scripts{$name};
	close($fh);
	# weights: mostly updates and inserts, the races under test
	my $weight = { 'update.sql' => 4, 'insert.sql' => 4,
		'delete.sql' => 1, 'share.sql' => 1 }->{$name};
	push @files, '-f', "$tempdir/$name\@$weight";
}

my ($out, $err) = ('', '');
my $ok = IPC::Run::run(
	[
		$node->installed_command('pgbench'), '-n', '-c', '6', '-j', '2',
		'-T', '15', @files, '-d', $node->connstr('postgres')
	],
	'>', \$out, '2>', \$err);
ok($ok, 'pgbench clients finished without errors')
  or diag("stdout:\n$out\nstderr:\n$err");
like($out, qr/number of failed transactions: 0 /, 'no failed transactions');
my ($txns) = $out =~ /number of transactions actually processed: (\d+)/;
cmp_ok($txns // 0, '>', 100, 'the clients did real work');
note("pgbench: $txns transactions");

is( $node->safe_psql(
		'postgres',
		'SELECT count(*) FROM child c WHERE NOT EXISTS '
		  . '(SELECT 1 FROM parent p WHERE p.id = c.pid)'),
	'0',
	'no referencing row points at a missing referenced row');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM child'),
	'>', 0, 'referencing rows were inserted');

# VACUUM settles the MultiXacts the locks left, and the check still holds
$node->safe_psql('postgres', 'VACUUM parent, child');
is( $node->safe_psql(
		'postgres',
		'SELECT count(*) FROM child c WHERE NOT EXISTS '
		  . '(SELECT 1 FROM parent p WHERE p.id = c.pid)'),
	'0',
	'still consistent after VACUUM');
# and after a restart, from the files alone
$node->restart;
is( $node->safe_psql(
		'postgres',
		'SELECT count(*) FROM child c WHERE NOT EXISTS '
		  . '(SELECT 1 FROM parent p WHERE p.id = c.pid)'),
	'0',
	'still consistent after a restart');

$node->stop;
done_testing();
