# scripts/adr-verify-backup: the runbook's verification from a host, run
# against a real cluster.  Checks exit codes and status lines for a passing
# dump of each kind, failing checks, bad inputs, a malicious plain dump,
# and that the scratch database is always dropped (also on a timeout).
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# prove runs from the source directory.
my $script = 'scripts/adr-verify-backup';

my $node = PostgreSQL::Test::Cluster->new('verify_script');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
    CREATE TABLE datasets (id int PRIMARY KEY);
    INSERT INTO datasets SELECT generate_series(1, 300);
    CREATE TABLE notes (t text);
    INSERT INTO notes VALUES ('a'), ('b');});
my $dir = PostgreSQL::Test::Utils::tempdir;
my $connstr = $node->connstr('postgres');
$node->command_ok([ 'pg_dump', '-d', $connstr, '-f', "$dir/plain.sql" ], 'pg_dump plain');
$node->command_ok([ 'pg_dump', '-Fc', '-d', $connstr, '-f', "$dir/custom.dump" ], 'pg_dump custom');
$node->command_ok([ 'pg_dump', '-Fd', '-d', $connstr, '-f', "$dir/dirdump" ], 'pg_dump directory');
system('gzip', '-k', "$dir/plain.sql") == 0 or die 'gzip';

sub run_script
{
    my @args = @_;
    my ($stdout, $stderr) = ('', '');
    print('# Running: ' . join(' ', $script, @args) . "\n");
    IPC::Run::run([ $script, '-h', $node->host, '-p', $node->port, @args ],
        '>', \$stdout, '2>', \$stderr, IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
    die "$script exited with signal " . ($? & 127) if $? & 127;
    return ($? >> 8, $stdout, $stderr);
}

sub scratch
{
    return $node->safe_psql('postgres',
        q{SELECT count(*) FROM pg_database WHERE datname LIKE 'adr\_verify\_%'});
}

my ($ret, $out, $err) = run_script('--help');
is($ret, 0, '--help exits 0');
like($out, qr/^Usage: adr-verify-backup \[OPTION\]\.\.\. BACKUP$/m, '--help prints usage');
($ret, $out, $err) = run_script('--bogus', "$dir/plain.sql");
is($ret, 3, 'a bad option exits UNKNOWN');
like($err, qr/unrecognized option --bogus/, '... and says why on stderr');
($ret, $out, $err) = run_script('--max-age', 'soon', "$dir/plain.sql");
is($ret, 3, 'a bad --max-age exits UNKNOWN');

for my $f ('plain.sql', 'plain.sql.gz', 'custom.dump', 'dirdump')
{
    ($ret, $out, $err) = run_script("$dir/$f");
    is($ret, 0, "$f passes");
    like($out, qr/^ADR_VERIFY_BACKUP OK - .*restored 2 tables, 302 rows; checks passed \| tables=2 rows=302 age=\d+s;;86400 duration=\d+s$/,
        "$f: one status line with perfdata");
}
is(scratch(), '0', 'no scratch database is left');

($ret, $out, $err) = run_script('--check', 'notes:5', '--check=datasets:300', "$dir/custom.dump");
is($ret, 2, 'a failing --check is CRITICAL');
like($out, qr/check failed: table notes has 2 rows, fewer than 5/, '... naming the table');
($ret, $out, $err) = run_script('--check', 'nosuch', "$dir/custom.dump");
like($out, qr/^ADR_VERIFY_BACKUP CRITICAL - .*table nosuch is not in the backup/, 'a missing table is CRITICAL');

($ret, $out, $err) = run_script("$dir/missing.dump");
is($ret, 2, 'a missing backup is CRITICAL');
like($out, qr/missing: /, '... saying so');
utime(time - 7200, time - 7200, "$dir/custom.dump");
($ret, $out, $err) = run_script('--max-age', '1', "$dir/custom.dump");
is($ret, 2, 'a backup older than --max-age is CRITICAL');
like($out, qr/stale: /, '... saying so');
($ret, $out, $err) = run_script('--max-age=3h', "$dir/custom.dump");
is($ret, 0, '... and passes with a larger --max-age');
PostgreSQL::Test::Utils::append_to_file("$dir/notes.txt", "not a dump\n");
($ret, $out, $err) = run_script("$dir/notes.txt");
like($out, qr/^ADR_VERIFY_BACKUP CRITICAL - not a dump: /, 'a text file that is not a dump is CRITICAL');

my $marker = "$dir/pwned";
my $evil = slurp_file("$dir/plain.sql");
$evil =~ s/^(SET client_encoding[^\n]*\n)/$1\\! touch $marker\n/m or die;
PostgreSQL::Test::Utils::append_to_file("$dir/evil.sql", $evil);
($ret, $out, $err) = run_script("$dir/evil.sql");
is($ret, 2, 'a plain dump with \\! is CRITICAL');
like($out, qr/backslash commands are restricted/, '... refused by psql under \\restrict');
ok(!-e $marker, 'its shell command did not run');
my $evil2 = slurp_file("$dir/plain.sql");
$evil2 =~ s/^(SET client_encoding[^\n]*\n)/$1SELECT 1\$a\$ \$a\$ \\! touch $marker\n/m or die;
PostgreSQL::Test::Utils::append_to_file("$dir/evil2.sql", $evil2);
($ret, $out, $err) = run_script("$dir/evil2.sql");
is($ret, 2, 'a meta-command in the middle of a line is CRITICAL');
like($out, qr/backslash commands are restricted/, '... refused by psql under \\restrict');
ok(!-e $marker, 'its shell command did not run');
my $connect = slurp_file("$dir/plain.sql");
$connect =~ s/^(SET client_encoding[^\n]*\n)/$1\\connect postgres\n/m or die;
PostgreSQL::Test::Utils::append_to_file("$dir/connect.sql", $connect);
($ret, $out, $err) = run_script("$dir/connect.sql");
is($ret, 2, 'a plain dump with \\connect is CRITICAL');
like($out, qr/rejected: line \d+: the dump connects to another database with \\connect/, '... saying why');

# A table name with the old field separator and a command substitution in
# an array subscript: bash must never do arithmetic on it.
$node->safe_psql('postgres', qq{CREATE DATABASE odd});
$node->safe_psql('odd', qq{
    CREATE TABLE datasets (id int);
    INSERT INTO datasets VALUES (1);
    CREATE TABLE "x\x1frows[\$(touch $marker)]" (a int);
    INSERT INTO "x\x1frows[\$(touch $marker)]" VALUES (1), (2);});
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('odd'), '-f', "$dir/odd.dump" ], 'pg_dump odd');
$node->command_ok([ 'pg_dump', '-d', $node->connstr('odd'), '-f', "$dir/odd.sql" ], 'pg_dump odd plain');
for my $f ('odd.dump', 'odd.sql')
{
    ($ret, $out, $err) = run_script("$dir/$f");
    is($ret, 0, "$f: a table with a hostile name passes");
    like($out, qr/restored 2 tables, 3 rows; checks passed/, "$f: ... counted right");
    ok(!-e $marker, "$f: the command in the table name did not run");
}

my $broken = slurp_file("$dir/plain.sql");
$broken =~ s/^(300)$/$1\textra/m or die;
PostgreSQL::Test::Utils::append_to_file("$dir/broken.sql", $broken);
($ret, $out, $err) = run_script("$dir/broken.sql");
is($ret, 2, 'a restore that fails halfway is CRITICAL');
like($out, qr/the restore of .* failed: .*extra data after last expected column/, '... with psql\'s error');
is(scratch(), '0', 'the scratch database is dropped after failures');

# The trap drops the scratch database when the timeout stops a restore.
my $slow = slurp_file("$dir/plain.sql");
$slow =~ s/^(\\unrestrict)/SELECT pg_catalog.pg_sleep(300);\n$1/m or die;
PostgreSQL::Test::Utils::append_to_file("$dir/slow.sql", $slow);
($ret, $out, $err) = run_script('-t', '3', "$dir/slow.sql");
is($ret, 3, 'a timeout is UNKNOWN');
like($out, qr/^ADR_VERIFY_BACKUP UNKNOWN - timed out or interrupted$/m, '... saying so');
is(scratch(), '0', 'the trap dropped the scratch database');

# The dump never runs as a superuser: a CHECK constraint that tries to
# escalate runs as the script's restore role; the dump's extension is
# created first; the role and the database are dropped.
$node->safe_psql('postgres', q{CREATE ROLE mallory LOGIN; CREATE DATABASE mallorydb OWNER mallory});
$node->safe_psql('mallorydb', q{
    SET ROLE mallory;
    CREATE FUNCTION public.escalate(i int) RETURNS boolean LANGUAGE plpgsql AS $f$
    BEGIN
        BEGIN EXECUTE 'ALTER ROLE mallory SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
        RETURN true;
    END $f$;
    CREATE TABLE datasets (id int CHECK (public.escalate(id)));
    INSERT INTO datasets VALUES (1);
    CREATE EXTENSION citext;
    CREATE TABLE names (n citext);
    INSERT INTO names VALUES ('a');});
$node->command_ok([ 'pg_dump', '-d', $node->connstr('mallorydb'), '-f', "$dir/mallory.sql" ], 'pg_dump mallory plain');
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('mallorydb'), '-f', "$dir/mallory.dump" ], 'pg_dump mallory custom');
for my $f ('mallory.sql', 'mallory.dump')
{
    ($ret, $out, $err) = run_script("$dir/$f");
    is($ret, 0, "$f: passes");
    like($out, qr/restored 2 tables, 2 rows; checks passed/, "$f: ... with its extension's table");
    is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}), 'f',
        "$f: mallory did not become a superuser");
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_roles WHERE rolname LIKE 'adr\_verify\_%'}), '0',
    'the restore roles are dropped');

# The extension's own verification works without shared_preload_libraries
# (a dynamic background worker), on the dumps the script verified.
$node->safe_psql('postgres', 'CREATE EXTENSION adr_ops');
is($node->safe_psql('postgres', qq{
        SELECT status || ' ' || tables_restored || ' ' || rows_counted
          FROM adr_ops.adr_verify_backup('$dir/dirdump')}),
    'passed 2 302', 'adr_verify_backup() works without preloading adr_ops');

$node->stop;
done_testing();
