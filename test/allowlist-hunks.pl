#!/usr/bin/perl
# allowlist-hunks.pl: the accepted differences of PostgreSQL's regression and
# isolation suites run with armdb as the default table access method, kept per
# test and per diff hunk, each hunk with a reason.  Called by
# allowlist-compare.sh (core-regress-check.sh, core-isolation-check.sh).
#
#   allowlist-hunks.pl compare NAME ALLOWDIR SUMMARY DIFFS
#	Every hunk of DIFFS (the runner's regression.diffs) must be one that
#	ALLOWDIR/<test>.diff accepts, and every test SUMMARY reports FAILED must
#	have a diff.  Prints each unexpected hunk, the accepted hunks this run did
#	not show (to prune; not an error) and the line
#	"NAME: F failed, A allowlisted, U unexpected; hunks: ...".
#	Exit 1 on an unexpected hunk or a group of hunks without a reason.
#   allowlist-hunks.pl update ALLOWDIR SUMMARY DIFFS [SUMMARY DIFFS ...]
#	Rewrite ALLOWDIR from one or more runs (several runs: every variant of a
#	nondeterministic difference is kept).  Hunks that were already accepted
#	keep their reason; new ones get "## TODO: ..." (compare fails until a
#	reason replaces it); accepted hunks the runs did not show are dropped,
#	except those of "flaky" groups.  Prints what changed.
#
# ALLOWDIR/<test>.diff (<test> as pg_regress names it, e.g. collate.icu.utf8):
#	# comment			free text, ignored
#	## reason			starts a group: the hunks after it, up to the
#					next "##", share this reason; a reason starting
#					with "flaky" marks hunks seen in some runs only
#	## TODO: ...			a hunk nobody has given a reason yet
#	@@ FILE:LINE			starts a hunk: FILE is the expected file it was
#					compared with (pg_regress picks among FILE.out,
#					FILE_1.out, ...), LINE its line in FILE when the
#					hunk was recorded (for the reader only)
#	" x", "-x", "+x", "\ x"	the hunk's lines as diff -U3 printed them
#
# Hunks are compared by expected file and lines only: "@@ -a,b +c,d @@"
# positions shift whenever an earlier hunk grows or shrinks, so they are not
# kept.  Trailing white space is not compared (nor stored: an empty line in a
# hunk is an empty context line), and the run's own directories in hunk lines
# read @RESULTS@ and @EXPECTED@; in ERROR, WARNING, DETAIL and NOTICE lines
# an OID of five digits or more after "operator", "function", "type",
# "relation", "index" or "constraint" reads @OID@ (the objects a test creates
# get other OIDs in every run).  A new wrong answer within three lines of an
# accepted difference merges with its hunk into one that is not accepted.
use strict;
use warnings;

sub rstrip { my $s = shift; $s =~ s/\s+$//; return $s; }

# Tests a runner's summary reports as failed: "test NAME ... FAILED",
# "     NAME ... FAILED" (parallel groups), isolation's "NAME ... FAILED".
sub failed_tests
{
	my ($summary) = @_;
	my %failed;
	open(my $fh, '<', $summary) or die "cannot read $summary: $!\n";
	while (<$fh>)
	{
		$failed{$2} = 1 if /^(test\s+|\s*)(\S+)\s+\.\.\.\s+FAILED/;
	}
	close $fh;
	return \%failed;
}

# The hunks of a regression.diffs, per test: [{file, line, key, text}].
sub parse_diffs
{
	my ($diffs) = @_;
	my %hunks;
	return \%hunks unless -e $diffs;
	open(my $fh, '<', $diffs) or die "cannot read $diffs: $!\n";
	my @lines = <$fh>;
	close $fh;
	chomp @lines;
	my ($test, $file, $expdir, $resdir);
	for (my $i = 0; $i < @lines; $i++)
	{
		my $l = $lines[$i];
		if ($l =~ m{^diff .* (\S+)/([^/\s]+) (\S+)/([^/\s]+)\.out$})
		{
			($expdir, $file, $resdir, $test) = ($1, $2, $3, $4);
			$i += 2;	# "--- expected", "+++ results"
			next;
		}
		next unless $l =~ /^@@ -(\d+)(?:,(\d+))? \+\d+(?:,(\d+))? @@/;
		die "$diffs: hunk outside a test's diff at line " . ($i + 1) . "\n"
		  unless defined $test;
		my ($line, $old, $new) = ($1, $2 // 1, $3 // 1);
		my @body;
		while (($old > 0 || $new > 0) && $i + 1 < @lines)
		{
			my $b = $lines[++$i];
			push @body, $b;
			my $c = substr($b, 0, 1);
			$old-- if $c eq ' ' || $c eq '-' || $b eq '';
			$new-- if $c eq ' ' || $c eq '+' || $b eq '';
		}
		# "\ No newline at end of file" follows the line it is about
		push @body, $lines[++$i] while $i + 1 < @lines && $lines[$i + 1] =~ /^\\/;
		for (@body)
		{
			$_ = rstrip($_);
			s/\Q$resdir\E/\@RESULTS\@/g;
			s/\Q$expdir\E/\@EXPECTED\@/g;
			# OIDs of objects a test creates differ between runs
			s/^([-+ ](?:ERROR|WARNING|DETAIL|NOTICE):.*\b(?:operator|function|type|relation|index|constraint)) \d{5,}\b/$1 \@OID\@/;
		}
		push @{ $hunks{$test} },
		  { file => $file, line => $line, text => join("\n", @body),
			key => "$file\n" . join("\n", @body) };
	}
	return \%hunks;
}

# ALLOWDIR/<test>.diff files: {test => [{reason, file, line, key, text}]}.
sub load_allow
{
	my ($dir) = @_;
	my %allow;
	for my $path (sort glob("$dir/*.diff"))
	{
		my ($test) = $path =~ m{([^/]+)\.diff$};
		open(my $fh, '<', $path) or die "cannot read $path: $!\n";
		my ($reason, $h);
		$allow{$test} = [];
		while (my $l = <$fh>)
		{
			chomp $l;
			$l = rstrip($l);
			if ($l =~ /^@@ (\S+?)(?::(\d+))?$/)
			{
				die "$path:$.: hunk before any \"## reason\" line\n"
				  unless defined $reason;
				$h = { reason => $reason, file => $1, line => $2 // 0, body => [] };
				push @{ $allow{$test} }, $h;
			}
			elsif ($l =~ /^##\s*(.*)$/)
			{
				($reason, $h) = ($1, undef);
			}
			elsif ($l =~ /^#/)
			{
				$h = undef;
			}
			elsif ($l =~ /^[-+ \\]/ || $l eq '')
			{
				die "$path:$.: line outside a hunk\n" unless $h;
				push @{ $h->{body} }, $l;
			}
			else
			{
				die "$path:$.: not a comment, reason, hunk header or hunk line\n";
			}
		}
		close $fh;
		for (@{ $allow{$test} })
		{
			$_->{text} = join("\n", @{ $_->{body} });
			$_->{key} = "$_->{file}\n$_->{text}";
		}
	}
	return \%allow;
}

sub print_hunk
{
	my ($h, $max) = @_;
	my @l = split /\n/, $h->{text};
	print "\t$_\n" for @l[0 .. ($#l < $max - 1 ? $#l : $max - 1)];
	print "\t... (" . (@l - $max) . " more lines)\n" if @l > $max;
}

sub compare
{
	my ($name, $dir, $summary, $diffs) = @_;
	my $failed = failed_tests($summary);
	my $run = parse_diffs($diffs);
	my $allow = load_allow($dir);
	my ($nunexpected_hunks, $naccepted, $nunseen, $nflaky_unseen, $bad) = (0, 0, 0, 0, 0);
	my %unexpected_test;

	for my $test (sort keys %$allow)
	{
		my %reasons = map { $_->{reason} => 1 } @{ $allow->{$test} };
		for (grep { /^TODO/i || $_ eq '' } sort keys %reasons)
		{
			print "NO REASON: $dir/$test.diff has hunks under \"## $_\"\n";
			$bad = 1;
		}
	}
	for my $test (sort keys %$failed)
	{
		next if $run->{$test};
		print "UNEXPECTED failure without a diff: $test\n";
		$unexpected_test{$test} = 1;
	}
	my %seen;
	for my $test (sort keys %$run)
	{
		my %accepted = map { $_->{key} => $_ } @{ $allow->{$test} // [] };
		for my $h (@{ $run->{$test} })
		{
			if ($accepted{ $h->{key} })
			{
				$seen{$test}{ $h->{key} } = 1;
				$naccepted++;
				next;
			}
			print "UNEXPECTED hunk in $test ($h->{file}, line $h->{line}):\n";
			print_hunk($h, 40);
			$nunexpected_hunks++;
			$unexpected_test{$test} = 1;
		}
	}
	for my $test (sort keys %$allow)
	{
		for my $h (@{ $allow->{$test} })
		{
			next if $seen{$test}{ $h->{key} };
			if ($h->{reason} =~ /^flaky/i)
			{
				$nflaky_unseen++;
				next;
			}
			print "not seen in this run (prune?): $test.diff hunk at $h->{file}:$h->{line}"
			  . " ($h->{reason})\n";
			$nunseen++;
		}
	}
	print "WARNING: server crash in $diffs\n"
	  if -e $diffs && system('grep', '-qE',
		'terminated by signal|server closed the connection', $diffs) == 0;
	my $nf = keys %$failed;
	my $nu = keys %unexpected_test;
	print "$name: $nf failed, " . ($nf - grep({ $failed->{$_} } keys %unexpected_test))
	  . " allowlisted, $nu unexpected; hunks: $naccepted accepted, $nunexpected_hunks unexpected,"
	  . " $nunseen accepted not seen, $nflaky_unseen flaky not seen\n";
	return ($nu == 0 && !$bad) ? 0 : 1;
}

sub update
{
	my ($dir, @runs) = @_;
	die "update: give SUMMARY DIFFS pairs\n" if !@runs || @runs % 2;
	my $allow = -d $dir ? load_allow($dir) : {};
	my $nruns = @runs / 2;
	my (%new, %count);
	while (my ($summary, $diffs) = splice(@runs, 0, 2))
	{
		my $failed = failed_tests($summary);
		my $run = parse_diffs($diffs);
		for my $test (sort keys %$failed)
		{
			die "update: $test failed without a diff in $diffs\n" unless $run->{$test};
		}
		for my $test (keys %$run)
		{
			for my $h (@{ $run->{$test} })
			{
				$new{$test}{ $h->{key} } //= $h;
				$count{$test}{ $h->{key} }++;
			}
		}
	}
	mkdir $dir unless -d $dir;
	my %tests = map { $_ => 1 } (keys %new, keys %$allow);
	for my $test (sort keys %tests)
	{
		my %old = map { $_->{key} => $_ } @{ $allow->{$test} // [] };
		my @hunks;
		my ($kept, $added, $dropped, $flaky) = (0, 0, 0, 0);
		for my $key (keys %{ $new{$test} // {} })
		{
			my $h = $new{$test}{$key};
			if ($old{$key})
			{
				$h->{reason} = $old{$key}{reason};
				$kept++;
				print "note: $test hunk at $h->{file}:$h->{line} seen in $count{$test}{$key}"
				  . " of $nruns runs; its reason does not start with \"flaky\"\n"
				  if $count{$test}{$key} < $nruns && $h->{reason} !~ /^flaky/i;
			}
			else
			{
				my $c = $count{$test}{$key};
				$h->{reason} = $c < $nruns
				  ? "TODO: reason (new; flaky? seen in $c of $nruns runs)"
				  : "TODO: reason (new)";
				$added++;
			}
			push @hunks, $h;
		}
		for my $key (keys %old)
		{
			next if $new{$test}{$key};
			if ($old{$key}{reason} =~ /^flaky/i)
			{
				push @hunks, $old{$key};
				$flaky++;
			}
			else
			{
				print "dropped (not seen): $test.diff hunk at $old{$key}{file}:$old{$key}{line}"
				  . " ($old{$key}{reason})\n";
				$dropped++;
			}
		}
		my $path = "$dir/$test.diff";
		if (!@hunks)
		{
			unlink $path;
			print "$test: no differences any more, $path removed\n";
			next;
		}
		@hunks = sort { $a->{file} cmp $b->{file} || $a->{line} <=> $b->{line} ||
			  $a->{key} cmp $b->{key} } @hunks;
		open(my $fh, '>', $path) or die "cannot write $path: $!\n";
		print $fh "# $test: differences accepted with armdb as the default table access method\n";
		print $fh "# (format and update: test/allowlist-hunks.pl)\n";
		my $reason = '';
		for my $h (@hunks)
		{
			print $fh "## $h->{reason}\n" if $h->{reason} ne $reason;
			$reason = $h->{reason};
			print $fh "@@ $h->{file}:$h->{line}\n$h->{text}\n";
		}
		close $fh;
		print "$test: $kept kept, $added new, $dropped dropped, $flaky flaky kept unseen\n"
		  if $added || $dropped || !$allow->{$test};
	}
	return 0;
}

my $mode = shift // '';
if ($mode eq 'compare' && @ARGV == 4)
{
	exit compare(@ARGV);
}
elsif ($mode eq 'update' && @ARGV >= 3)
{
	exit update(@ARGV);
}
die "usage: $0 compare NAME ALLOWDIR SUMMARY DIFFS\n"
  . "       $0 update ALLOWDIR SUMMARY DIFFS [SUMMARY DIFFS ...]\n";
