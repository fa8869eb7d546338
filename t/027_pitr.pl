# Point-in-time recovery of armdb tables (issue 13): a base backup plus
# archived WAL, replayed to a target between two known commits, holds
# exactly the first.  Targets by LSN, by transaction id and by time.
#
# Why nothing beyond the target can be in the files: the copy holds only
# entries whose records lie before the backup's end (an entry never reaches
# its file before WAL is flushed past its record), and PostgreSQL refuses a
# target before the backup's end; replay writes the rest up to the target.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('pitr');
$node->init(has_archiving => 1, allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', qq(
shared_preload_libraries = 'armdb'
armdb.max_file_size = '64kB'
autovacuum = off
));
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION armdb;
CREATE TABLE p (id int PRIMARY KEY, v text) USING armdb;
INSERT INTO p SELECT g, 'before the backup ' || g FROM generate_series(1, 1000) g;
});
$node->backup('pitr_base');

# three commits, each remembered by its end LSN, xid and time
my @marks;
for my $n (1 .. 3)
{
	my $xid = $node->safe_psql('postgres', qq{
BEGIN;
INSERT INTO p SELECT g, 'commit $n row ' || g FROM generate_series($n * 10000, $n * 10000 + 499) g;
UPDATE p SET v = 'changed by commit $n' WHERE id = $n;
DELETE FROM p WHERE id = 100 + $n;
SELECT pg_current_xact_id();
COMMIT;
});
	my $lsn = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
	my $time = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
	push @marks, { xid => $xid, lsn => $lsn, time => $time };
	# apart in time, so that a time target falls between two commits
	sleep(1);
}
my $last_segment = $node->safe_psql('postgres',
	'SELECT pg_walfile_name(pg_current_wal_lsn())');
$node->safe_psql('postgres', 'SELECT pg_switch_wal()');
$node->poll_query_until('postgres', qq{
SELECT last_archived_wal >= '$last_segment' FROM pg_stat_archiver})
  or die 'WAL not archived';

my $state = q{
SELECT count(*) || ' ' || count(*) FILTER (WHERE id >= 10000) || ' '
    || coalesce(string_agg(v, ',' ORDER BY id) FILTER (WHERE id <= 3), '') || ' '
    || count(*) FILTER (WHERE id BETWEEN 101 AND 103)
FROM p};

# the rows as of the end of commit $n
sub want
{
	my ($n) = @_;
	my @v = map { $_ <= $n ? "changed by commit $_" : "before the backup $_" }
	  (1 .. 3);
	return (1000 + 500 * $n - $n) . ' ' . (500 * $n) . ' ' . join(',', @v) . ' '
	  . (3 - $n);
}

my $i = 0;
for my $target (
	[ 'recovery_target_lsn', sub { "'$_[0]{lsn}'" }, 'LSN' ],
	[ 'recovery_target_xid', sub { "'$_[0]{xid}'" }, 'transaction id' ],
	[ 'recovery_target_time', sub { "'$_[0]{time}'" }, 'time' ])
{
	my ($guc, $value, $what) = @$target;
	for my $n (1, 2)
	{
		$i++;
		my $restored = PostgreSQL::Test::Cluster->new("pitr_$i");
		$restored->init_from_backup($node, 'pitr_base', has_restoring => 1);
		$restored->append_conf(
			'postgresql.conf', qq(
$guc = @{[ $value->($marks[ $n - 1 ]) ]}
recovery_target_action = 'promote'
# not into the primary's archive: a later restore would follow this
# node's new timeline
archive_mode = off
));
		$restored->start;
		$restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
		  or die 'recovery did not end';
		is($restored->safe_psql('postgres', $state),
			want($n), "recovery to the $what of commit $n: exactly commits 1 to $n");

		# the promoted node writes on, and nothing of the later commits
		# comes back
		$restored->safe_psql('postgres', q{
INSERT INTO p SELECT g, 'after promotion' FROM generate_series(50000, 50099) g;
});
		$restored->restart;
		is( $restored->safe_psql(
				'postgres',
				"SELECT count(*) FILTER (WHERE v = 'after promotion'), count(*) FROM p"),
			'100|' . (1100 + 500 * $n - $n),
			"... and after writes and a restart, no later row appears");
		$restored->stop;
		$restored->clean_node;
	}
}

$node->stop;
done_testing();
