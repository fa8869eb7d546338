# Helpers the armdb TAP tests share (t/*.pl load it with
# "use FindBin; use lib $FindBin::RealBin; use ArmdbTest;").
package ArmdbTest;

use strict;
use warnings;
use Digest::MD5;
use Exporter 'import';
use IPC::Run;

our @EXPORT = qw(file_md5 flip_byte start_psql_script);

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

1;
