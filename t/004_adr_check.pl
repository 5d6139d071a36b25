# scripts/adr-check: the Nagios-style plugin over adr_health_check(), run
# against a real cluster.  Checks the exit code, the status line with its
# performance data, the long text output and the UNKNOWN paths.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# prove runs from the source directory.
my $script = 'scripts/adr-check';

# Runs the plugin; returns its exit code, stdout and stderr.
sub run_check
{
	my @args = @_;
	my ($stdout, $stderr) = ('', '');
	print('# Running: ' . join(' ', $script, @args) . "\n");
	# A plugin that hangs fails the test instead of stalling it.
	IPC::Run::run([ $script, @args ], '>', \$stdout, '2>', \$stderr,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	die 'adr-check exited with signal ' . ($? & 127) if $? & 127;
	return ($? >> 8, $stdout, $stderr);
}

my ($ret, $out, $err);

# Options that need no server.
($ret, $out, $err) = run_check('--help');
is($ret, 0, '--help exits 0');
like($out, qr/^Usage: adr-check \[OPTION\]\.\.\.$/m, '--help prints usage');
like($out, qr/^\s+-h, --host=HOST/m, '-h is the host option, as in psql');
is($err, '', '--help writes nothing to stderr');

($ret, $out, $err) = run_check('-?');
is($ret, 0, '-? exits 0');
like($out, qr/^Usage: adr-check/m, '-? prints usage');

my ($version) =
  slurp_file('adr_ops.control') =~ /^default_version\s*=\s*'([^']+)'/m;
($ret, $out, $err) = run_check('--version');
is($ret, 0, '--version exits 0');
is($out, "adr-check $version\n", '--version prints the control file version');

($ret, $out, $err) = run_check('--bogus');
is($ret, 3, 'a bad option exits 3');
is($out, '', 'a bad option prints nothing to stdout');
like($err, qr/unrecognized option '--bogus'/, 'a bad option is named');
like($err, qr/^Usage: adr-check/m, 'a bad option prints usage to stderr');

($ret, $out, $err) = run_check('--timeout', 'soon');
is($ret, 3, 'a bad timeout exits 3');
like($err, qr/invalid timeout 'soon'/, 'a bad timeout is named');

# Sourcing the script defines its functions and runs nothing.
($out, $err) = run_command(
	[
		'bash', '-c',
		'source "$1"; perf_label "$2"; printf "\n"; perf_label disk_data',
		'bash', $script, "x=y'z"
	]);
is($out, "'x_y''z'\ndisk_data",
	'sourcing runs nothing; labels are quoted as the plugin guideline says');
is($err, '', 'sourcing writes nothing to stderr');

# A node without the logging collector: recent_errors cannot be made.
my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'adr_ops'");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE noext');
$node->safe_psql('postgres', 'CREATE EXTENSION adr_ops');
$node->safe_psql('postgres', 'CREATE ROLE monitor_less LOGIN');

my @conn = ('-h', $node->host, '-p', $node->port, '-d', 'postgres');

# Lower is worse: the thresholds become "N:" ranges in the perfdata.
($ret, $out, $err) = run_check(@conn, '--check', 'memory');
like(
	$out,
	qr/^ADR_OPS \w+ - 1 checks: .* \| memory=\d+(\.\d+)?%;10:;5:;;\nmemory \w+ /,
	'lower-is-worse thresholds are perfdata ranges "N:"');

# Loosen every threshold: all checks that can be made are OK.
$node->safe_psql(
	'postgres', q{
UPDATE adr_ops.health_thresholds
   SET warn = CASE WHEN warn > crit THEN -1 ELSE 1e15 END,
       crit = CASE WHEN warn > crit THEN -2 ELSE 2e15 END});

($ret, $out, $err) = run_check(@conn, '--check', 'connections');
is($ret, 0, '--check connections exits 0');
like(
	$out,
	qr/^ADR_OPS OK - 1 checks: all OK \| connections=\d+(\.\d+)?%;1000000000000000;2000000000000000;;\n/,
	'--check connections: status line and perfdata');
like(
	$out,
	qr/\nconnections OK \d+ of \d+ connection slots for non-superusers in use\n\z/,
	'--check connections: long text line');
is($err, '', '--check connections writes nothing to stderr');

# Full run: everything OK but recent_errors, which is UNKNOWN.
my $nchecks = $node->safe_psql('postgres',
	'SELECT count(*) FROM adr_ops.adr_health_check()');
($ret, $out, $err) = run_check(@conn);
is($ret, 3, 'full run exits 3 when recent_errors is UNKNOWN');
my @lines = split /\n/, $out;
like(
	$lines[0],
	qr/^ADR_OPS UNKNOWN - $nchecks checks: recent_errors UNKNOWN \([^)|]+\) \| /,
	'full run: the problems list names recent_errors only');
like($lines[0], qr/ load=\d+(\.\d+)?;1000000000000000;2000000000000000;; /,
	'full run: a load/cpu reading has no unit of measurement');
like($lines[0], qr/ replication_slots=\d+B;/, 'full run: bytes are B');
like($lines[0], qr/ long_transactions=\d+s;/, 'full run: seconds are s');
unlike($lines[0], qr/recent_errors=/,
	'full run: no perfdata for a check without a value');
is(scalar(@lines), $nchecks + 1, 'full run: one long text line per check');
like($out, qr/^recent_errors UNKNOWN \S/m, 'full run: recent_errors line');
like($out, qr/^disk_data OK \S/m, 'full run: disk_data line');

# Thresholds make disk_data WARNING, then CRITICAL.
$node->safe_psql('postgres',
	"UPDATE adr_ops.health_thresholds SET warn = 0, crit = 1000 WHERE check_name = 'disk_data'"
);
($ret, $out, $err) = run_check(@conn, '--check', 'disk_data');
is($ret, 1, 'disk_data over warn exits 1');
like(
	$out,
	qr/^ADR_OPS WARNING - 1 checks: disk_data WARNING \(\d+(\.\d+)?%\) \| disk_data=\d+(\.\d+)?%;0;1000;;\ndisk_data WARNING /,
	'disk_data WARNING: status line, perfdata and long text');

$node->safe_psql('postgres',
	"UPDATE adr_ops.health_thresholds SET warn = 0, crit = 0.001 WHERE check_name = 'disk_data'"
);
($ret, $out, $err) = run_check(@conn, '--check', 'disk_data');
is($ret, 2, 'disk_data over crit exits 2');
like(
	$out,
	qr/^ADR_OPS CRITICAL - 1 checks: disk_data CRITICAL \(\d+(\.\d+)?%\) \| disk_data=\d+(\.\d+)?%;0;0\.001;;\n/,
	'disk_data CRITICAL: status line and perfdata');

# A CRITICAL check outranks an UNKNOWN one, and both are listed.
($ret, $out, $err) = run_check(@conn);
is($ret, 2, 'full run with a CRITICAL and an UNKNOWN check exits 2');
like(
	$out,
	qr/^ADR_OPS CRITICAL - $nchecks checks: disk_data CRITICAL \([\d.]+%\); recent_errors UNKNOWN \(/,
	'full run: the problems list names both, in check order');

# --check by base name selects every tablespace; an odd name is quoted.
my $tsdir = PostgreSQL::Test::Utils::tempdir();
$node->safe_psql('postgres',
	qq{CREATE TABLESPACE "o'fast disk" LOCATION '$tsdir'});
($ret, $out, $err) = run_check(@conn, '--check', 'disk_tablespace');
is($ret, 0, '--check disk_tablespace exits 0');
like(
	$out,
	qr/^ADR_OPS OK - 1 checks: all OK \| 'disk_tablespace:o''fast disk'=\d+(\.\d+)?%;1000000000000000;2000000000000000;;\ndisk_tablespace:o'fast disk OK /,
	'--check by base name finds the tablespace; its label is quoted');

($ret, $out, $err) =
  run_check(@conn, '--check', "disk_tablespace:o'fast disk");
is($ret, 0, '--check by full name with a quote in it exits 0');
like($out, qr/^ADR_OPS OK - 1 checks: all OK \| 'disk_tablespace:o''fast disk'=/,
	'--check by full name selects that check');

# UNKNOWN paths.
($ret, $out, $err) = run_check(@conn, '--check', 'no_such_check');
is($ret, 3, 'an unknown check name exits 3');
is($out, "ADR_OPS UNKNOWN - no check matched 'no_such_check'\n",
	'an unknown check name says nothing matched');

($ret, $out, $err) =
  run_check('-h', $node->host, '-p', $node->port, '-d', 'noext');
is($ret, 3, 'a database without the extension exits 3');
is( $out,
	qq{ADR_OPS UNKNOWN - extension adr_ops is not installed in database "noext"\n},
	'a database without the extension says so');

($ret, $out, $err) = run_check(@conn, '-U', 'monitor_less');
is($ret, 3, 'a role without pg_monitor exits 3');
is( $out,
	"ADR_OPS UNKNOWN - permission denied for schema adr_ops\n",
	'a role without pg_monitor gets the server error');

# A node that was never started: nothing listens on its port.
my $down = PostgreSQL::Test::Cluster->new('down');
($ret, $out, $err) =
  run_check('-h', $down->host, '-p', $down->port, '-d', 'postgres');
is($ret, 3, 'an unreachable server exits 3');
like(
	$out,
	qr/^ADR_OPS UNKNOWN - connection to server .* failed: [^\n]+\n\z/,
	'an unreachable server: the first line of the psql error');

# A session holding the thresholds table blocks the check: --timeout ends it.
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE adr_ops.health_thresholds');
($ret, $out, $err) = run_check(@conn, '--check', 'connections', '-t', '1');
is($ret, 3, 'a check that outlasts --timeout exits 3');
is($out, "ADR_OPS UNKNOWN - timed out after 1 s\n", 'the timeout is reported');
$locker->query_safe('ROLLBACK');
$locker->quit;

$node->stop;

done_testing();
