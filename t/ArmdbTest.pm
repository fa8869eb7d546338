# Helpers the armdb TAP tests share (t/*.pl load it with
# "use FindBin; use lib $FindBin::RealBin; use ArmdbTest;").
package ArmdbTest;

use strict;
use warnings;
use Digest::MD5;
use Exporter 'import';
use IPC::Run;
use Test::More;

our @EXPORT = qw(file_md5 flip_byte remove_keydir_images start_psql_script
  backup_across_open_transaction data_file_entries);

# the MD5 of a file's bytes
sub file_md5
{
	my $path = shift;
	open(my $fh, '<', $path) or die "open $path: $!";
	binmode $fh;
	return Digest::MD5->new->addfile($fh)->hexdigest;
}

# xor one byte of a file
sub flip_byte
{
	my ($path, $at) = @_;
	open(my $fh, '+<', $path) or die "open $path: $!";
	binmode $fh;
	seek($fh, $at, 0);
	read($fh, my $b, 1);
	seek($fh, $at, 0);
	print $fh chr(ord($b) ^ 0x5a);
	close($fh);
}

# The entries of a data file (src/storage/format.h), in file order: a list
# of hashes with offset, header (its size), value_len, gsn (without flags)
# and flags (the gsn's top byte: 0x80 tombstone, 0x40 reservation, 0x08
# lock, 0x01 encrypted, ...).  Stops at the first all-zero header.
sub data_file_entries
{
	my $path = shift;
	open(my $fh, '<', $path) or die "open $path: $!";
	binmode $fh;
	my $bytes = do { local $/; <$fh> };
	close($fh);
	my @entries;
	for (my $off = 64; $off + 16 <= length($bytes);)
	{
		my ($crc, $vlen, $lo, $hi) = unpack('V V V V', substr($bytes, $off, 16));
		last if $crc == 0 && $vlen == 0 && $lo == 0 && $hi == 0;
		my $flags = $hi >> 24;
		my $header = ($flags & 0x02) ? 32 : 48;
		push @entries,
		  {
			offset => $off,
			header => $header,
			value_len => $vlen,
			gsn => ($hi & 0xFFFFFF) * 4294967296 + $lo,
			flags => $flags
		  };
		$off += $header + $vlen;
	}
	return @entries;
}

# Remove the key directory images a clean shutdown saved
# (src/keydir/image.c) from a stopped node, so that its next start reads
# the tables' files (hint files, data files) as it would after a crash.
# Returns how many there were.
sub remove_keydir_images
{
	my $node = shift;
	my @images = glob($node->data_dir . '/armdb/*/*/keydir.image');
	unlink(@images) == scalar(@images) or die "unlink: $!";
	return scalar(@images);
}

# Run psql on a script file against the node's postgres database, in the
# background, stopping at the first error; its output goes to $out and
# "$out.err".  Returns the IPC::Run handle.
sub start_psql_script
{
	my ($node, $script, $out) = @_;
	return IPC::Run::start(
		[
			$node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-f', $script
		],
		'<', \undef, '>', $out, '2>', "$out.err");
}

# Take base backup $name of $node (pg_basebackup -c fast -X stream, with
# the extra arguments in @$bb_args) while a transaction that inserted 500
# rows into $table stays open across the backup's checkpoint -- its
# entries' records lie before the backup's start point -- and commits while
# the backup copies the files; $after_insert, if given, runs once the rows
# are in.  The caller restores the backup and counts.
sub backup_across_open_transaction
{
	my ($node, $name, $what, $table, $bb_args, $after_insert) = @_;
	my ($in, $out, $err) = ('', '', '');

	$node->safe_psql('postgres', "TRUNCATE $table");
	my $open = IPC::Run::start(
		[ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres') ],
		'<', \$in, '>', \$out, '2>', \$err);
	$in .= "SET synchronous_commit = off;\nBEGIN;\n"
	  . "INSERT INTO $table SELECT g, 'in flight ' || g FROM generate_series(1, 500) g;\n"
	  . "SELECT 'inserted';\n";
	$open->pump until $out =~ /inserted/;
	$after_insert->() if $after_insert;

	my ($bb_out, $bb_err) = ('', '');
	my $bb = IPC::Run::start(
		[
			'pg_basebackup', '-D', $node->backup_dir . "/$name", '-c', 'fast',
			'-X', 'stream', '--no-sync', @$bb_args,
			'-d', $node->connstr('postgres')
		],
		'>', \$bb_out, '2>', \$bb_err);
	ok( $node->poll_query_until(
			'postgres', q{
SELECT count(*) > 0 FROM pg_stat_progress_basebackup
WHERE phase = 'streaming database files'}),
		"$what: the backup is past its checkpoint");
	$in .= "COMMIT;\nSELECT 'committed';\n";
	$open->pump until $out =~ /committed/;
	$in .= "\\q\n";
	$open->finish;
	ok($bb->finish, "$what: the backup finishes") or diag($bb_err);
}

1;
