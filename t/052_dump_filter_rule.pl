# The plain-dump filter's rule has two implementations: src/dumpfilter.c
# (the extension's worker) and the awk program of scripts/adr-verify-backup
# (hosts without the extension).  t/fixtures/dump_filter_cases.txt holds the
# cases that define the rule; this test runs them against both: the C one
# through fuzz/dumpfilter_check.c, the awk one here, case by case.  No
# server is needed.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Utils;
use Test::More;

# prove runs from the source directory.
my $cases_file = 't/fixtures/dump_filter_cases.txt';
my $script = 'scripts/adr-verify-backup';

# The C implementation, with the dump cut into chunks of many sizes.
my ($stdout, $stderr) = run_command([ 'make', '-s', '-C', 'fuzz', 'dumpfilter-check' ]);
like($stdout, qr/^(\d+) passed, 0 failed$/m, 'src/dumpfilter.c passes every case');
unlike($stderr, qr/warning|error/i, 'dumpfilter.c compiles without warnings');

# The fixture's escapes, as fuzz/dumpfilter_check.c reads them.
sub expand
{
	my ($text) = @_;
	my $noeol = $text =~ s/\{noeol\}$//;
	$text =~ s/\{(cr|sp|tab|vt|ff)\}|\{(.)\*(\d+)\}/
	  defined $1 ? { cr => "\r", sp => ' ', tab => "\t", vt => "\x0b", ff => "\f" }->{$1} : $2 x $3/ge;
	return ($text, $noeol);
}

my @cases;
open(my $fh, '<', $cases_file) or die "$cases_file: $!";
while (my $line = <$fh>)
{
	chomp $line;
	next if $line eq '' || $line =~ /^#/;
	if ($line =~ /^=== (.*)$/)
	{
		push @cases,
		  { name => $1, input => '', want => '', n => 0, reject => 0,
			rules => { 'drop-line' => [], 'drop-prefix' => [], 'skip-copy' => [] } };
		next;
	}
	die "$cases_file:$.: outside a case" unless @cases;
	my $c = $cases[-1];
	if ($line =~ /^(drop-line|drop-prefix|skip-copy) (.*)$/)
	{
		push @{ $c->{rules}{$1} }, (expand($2))[0];
	}
	elsif ($line =~ /^([-+!])(?: (.*))?$/)
	{
		my ($mark, $text) = ($1, $2 // '');
		my ($bytes, $noeol) = expand($text);
		# the awk program ends the last line with a line end
		$c->{input} .= $bytes . ($noeol ? '' : "\n");
		$c->{n}++;
		$c->{want} .= "$bytes\n" if $mark eq '+';
		$c->{reject} = $c->{n} if $mark eq '!';
	}
	else
	{
		die "$cases_file:$.: not understood: $line";
	}
}
close($fh);
cmp_ok(scalar(@cases), '>=', 30, 'the fixture holds at least 30 cases');

# The awk implementation: the script's dump_filter function, sourced.
for my $c (@cases)
{
	my ($out, $err) = ('', '');
	my @rules = map { join('', map { "$_\n" } @{ $c->{rules}{$_} }) }
	  ('drop-line', 'drop-prefix', 'skip-copy');
	IPC::Run::run(
		[ 'bash', '-c', 'source "$1" && dump_filter "$2" "$3" "$4"', 'bash', $script, @rules ],
		'<', \$c->{input}, '>', \$out, '2>', \$err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	my $status = $? >> 8;
	if ($c->{reject})
	{
		is($status, 1, "awk: $c->{name}: rejected");
		like($err,
			qr/^rejected: line $c->{reject}: the dump connects to another database with \\connect /,
			"awk: $c->{name}: at line $c->{reject}");
	}
	else
	{
		is($status, 0, "awk: $c->{name}: passes") or diag($err);
	}
	ok($out eq $c->{want}, "awk: $c->{name}: the output")
	  or diag("got:\n" . substr($out, 0, 2000) . "\nwant:\n" . substr($c->{want}, 0, 2000));
}

done_testing();
