# armdb.memory is a limit the key directories grow up to, past the part set
# aside at start (armdb.memory_initial), into dynamic shared memory
# segments; a reload changes it without a restart.  Reaching it is an ERROR
# naming the setting that loses nothing, and the same statement succeeds
# once the limit is raised.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('memory_limit');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'armdb'
armdb.memory_initial = '8MB'
armdb.memory = '20MB'
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE m (id int) USING armdb;
});

# Set armdb.memory by ALTER SYSTEM and a reload, and wait until a new
# session sees it.
sub set_memory
{
	my $value = shift;
	$node->safe_psql('postgres', qq{ALTER SYSTEM SET armdb.memory = '$value'});
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	$node->poll_query_until('postgres', 'SHOW armdb.memory', $value)
	  or die "armdb.memory did not become $value";
}

sub rows
{
	return $node->safe_psql('postgres', 'SELECT count(*), sum(id) FROM m');
}

# 400,000 versions take about 9 MB: more than the 8 MB set aside at start
$node->safe_psql('postgres',
	'INSERT INTO m SELECT g FROM generate_series(1, 400000) g');
is( $node->safe_psql(
		'postgres',
		'SELECT used_bytes > initial_bytes, initial_bytes FROM armdb_memory'),
	't|8388608',
	'the key directory grew past armdb.memory_initial');
is(rows(), '400000|80000200000', 'every row reads back');

# 600,000 more do not fit in 20 MB
my ($ret, $out, $err) = $node->psql('postgres',
	'INSERT INTO m SELECT g FROM generate_series(400001, 1000000) g');
isnt($ret, 0, 'an insert past armdb.memory fails');
like($err, qr/ERROR:  armdb key directory is full/, 'with the error');
like(
	$err,
	qr/HINT:  Increase armdb.memory \(currently 20 MB\) and reload the server configuration/,
	'whose hint names the setting and says a reload applies it');
is(rows(), '400000|80000200000', 'the failed insert lost nothing');

# raised by a reload, the same insert succeeds in the running server
set_memory('64MB');
is($node->safe_psql('postgres', 'SELECT limit_bytes FROM armdb_memory'),
	64 * 1024 * 1024, 'the view shows the new limit');
$node->safe_psql('postgres',
	'INSERT INTO m SELECT g FROM generate_series(400001, 1000000) g');
is(rows(), '1000000|500000500000', 'after a reload the insert succeeds');

# lowered below what is used: nothing already stored is affected, and
# growth stops
set_memory('16MB');
($ret, $out, $err) = $node->psql('postgres',
	'INSERT INTO m SELECT g FROM generate_series(1000001, 2000000) g');
like($err, qr/armdb key directory is full/,
	'below what is used, the key directory cannot grow');
is(rows(), '1000000|500000500000', 'and every row reads back');
is( $node->safe_psql(
		'postgres',
		'SELECT count(*) FROM m WHERE id BETWEEN 1000 AND 1100'),
	'101', 'a filtered scan too');

# the rows survive a restart and a crash with the limit raised again
set_memory('64MB');
$node->restart;
is(rows(), '1000000|500000500000', 'every row after a restart');
$node->safe_psql('postgres', 'DELETE FROM m WHERE id % 2 = 0');
$node->stop('immediate');
$node->start;
is(rows(), '500000|250000000000', 'every row after a crash');

# a table dropped gives its memory back
my $before = $node->safe_psql('postgres', 'SELECT used_bytes FROM armdb_memory');
$node->safe_psql('postgres', 'DROP TABLE m');
my $after = $node->safe_psql('postgres', 'SELECT used_bytes FROM armdb_memory');
cmp_ok($after, '<', $before - 16 * 1024 * 1024,
	'a dropped table gives its memory back');
is($node->safe_psql('postgres', 'SELECT tables FROM armdb_memory'),
	'0', 'no key directory is left');

$node->stop;
done_testing();
