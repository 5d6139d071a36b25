# adr_verify_backup() against real backups: each format passes; each bad
# input ends failed with its reason and leaves no scratch database behind;
# a malicious plain dump is stopped before its shell command runs; paths
# are confined; two verifications run at once; a fast shutdown during a
# restore is cleaned up at the next verification; the health check and the
# scheduler task see the verifications.
use strict;
use warnings FATAL => 'all';

use File::Copy;
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('verify');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'adr_ops'
adr_ops.timezone = 'UTC'
max_worker_processes = 16
});
$node->start;

# A reload reaches new sessions once the postmaster has processed it, which
# is not at once: wait until a new session sees the new configuration.
sub reload_settled
{
	my $before = $node->safe_psql('postgres', 'SELECT pg_conf_load_time()');
	$node->reload;
	$node->poll_query_until('postgres', "SELECT pg_conf_load_time() > '$before'")
	  or die 'the reload did not reach new sessions';
}
$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;});

# The source database: the runbook's datasets table and a second one.
$node->safe_psql('postgres', 'CREATE DATABASE source');
$node->safe_psql('source', q{
    CREATE TABLE datasets (id int PRIMARY KEY, name text);
    INSERT INTO datasets SELECT g, 'set ' || g FROM generate_series(1, 500) g;
    CREATE TABLE events (id bigint, payload text);
    INSERT INTO events SELECT g, repeat('x', 20) FROM generate_series(1, 2000) g;
    -- backslashes where psql reads them as text, for the plain-dump filter
    UPDATE events SET payload = 'back\slash \! not a command' WHERE id = 1;
    ALTER TABLE datasets ADD CONSTRAINT named CHECK (name ~ '^set \d+$');
    COMMENT ON TABLE events IS 'a \ in a comment, it''s quoted';
    CREATE FUNCTION shout(t text) RETURNS text LANGUAGE sql
        AS $body$ SELECT upper(t) || '\' || '\! not a command' $body$;});

my $dir = PostgreSQL::Test::Utils::tempdir;
# scratch databases are named adr_verify_<database OID>_<id>
my $dboid = $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'postgres'});
my $connstr = $node->connstr('source');
sub dump_as
{
    my ($file, @opts) = @_;
    $node->command_ok([ 'pg_dump', @opts, '-d', $connstr, '-f', "$dir/$file" ], "pg_dump $file");
}
dump_as('plain.sql');
dump_as('custom.dump', '-Fc');
dump_as('archive.tar', '-Ft');
dump_as('dirdump', '-Fd');
system('gzip', '-k', "$dir/plain.sql") == 0 or die 'gzip';
copy("$dir/plain.sql.gz", "$dir/plain-copy.gz") or die;
$node->command_ok([ 'pg_basebackup', '-d', $node->connstr('postgres'), '-D', "$dir/base", '-c', 'fast' ],
    'pg_basebackup');

sub verify
{
    my ($path, $extra) = @_;
    $extra //= '';
    my ($ret, $out, $err) = $node->psql('postgres', qq{
        SELECT concat_ws('|', v.status, coalesce(v.format, ''), coalesce(v.tables_restored::text, ''),
                         coalesce(v.rows_counted::text, ''), array_to_string(v.failures, ' / '))
          FROM adr_ops.adr_verify_backup(\$adr\$$path\$adr\$ $extra) v});
    return $ret == 0 ? $out : "ERROR: $err";
}

sub scratch_databases
{
    return $node->safe_psql('postgres',
        q{SELECT count(*) FROM pg_database WHERE datname LIKE 'adr\_verify\_%'});
}

# Each format passes, with the tables and rows of the source.
is(verify("$dir/plain.sql"),       'passed|plain|2|2500|',      'plain SQL dump passes');
is(verify("$dir/plain.sql.gz"),    'passed|plain.gz|2|2500|',   'gzip-compressed plain dump passes');
is(verify("$dir/plain-copy.gz"),   'passed|plain.gz|2|2500|',   'the format comes from the content, not the name');
is(verify("$dir/custom.dump"),     'passed|custom|2|2500|',     'custom-format dump passes');
is(verify("$dir/archive.tar"),     'passed|tar|2|2500|',        'tar-format dump passes');
is(verify("$dir/dirdump"),         'passed|directory|2|2500|',  'directory-format dump passes');
is(verify("$dir/base"),            'passed|basebackup|||',      'pg_basebackup directory with manifest passes pg_verifybackup');
is(scratch_databases(), '0', 'no scratch database is left after the passing runs');
like($node->safe_psql('postgres', q{SELECT detail FROM adr_ops.backup_verifications WHERE format = 'custom'}),
    qr/check datasets >= 1 rows: 500/, 'the runbook check on datasets ran');

# The checks table: a required table that is missing, and a row minimum.
$node->safe_psql('postgres', q{INSERT INTO adr_ops.backup_checks VALUES ('public.events', 5000, true), ('nosuch', 1, true)});
like(verify("$dir/custom.dump"),
    qr/^failed\|custom\|2\|2500\|check failed: table "nosuch" is not in the backup \/ check failed: table "public.events" has 2000 rows, fewer than 5000$/,
    'backup_checks: a missing required table and too few rows fail');
$node->safe_psql('postgres', q{DELETE FROM adr_ops.backup_checks WHERE table_name IN ('public.events', 'nosuch')});

# compare_to: a table of the live database missing from the backup.
$node->safe_psql('source', 'CREATE TABLE added_later (a int)');
$node->safe_psql('postgres', q{ALTER SYSTEM SET adr_ops.verify_compare_to = 'source'});
reload_settled();
like(verify("$dir/custom.dump"), qr/^failed\|custom\|.*missing table: public.added_later is in database "source" but not in the backup/,
    'compare_to: a table of the live database missing from the backup fails');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET adr_ops.verify_compare_to});
reload_settled();

# compare_to and backup_checks with a partitioned table: it is one table,
# counted with the rows of its partitions, on both sides.
$node->safe_psql('postgres', 'CREATE DATABASE parted');
$node->safe_psql('parted', q{
    CREATE TABLE datasets (id int);
    INSERT INTO datasets VALUES (1);
    CREATE TABLE measures (at date, v int) PARTITION BY RANGE (at);
    CREATE TABLE measures_2024 PARTITION OF measures FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    CREATE TABLE measures_2025 PARTITION OF measures FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    INSERT INTO measures SELECT date '2024-06-01' + g, g FROM generate_series(1, 400) g;
    -- COPY writes a carriage return as \r: a data row "\restrict abc"
    CREATE TABLE lookalike (t text);
    INSERT INTO lookalike VALUES (E'\restrict abc'), (E'\restrict abc\n');});
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('parted'), '-f', "$dir/parted.dump" ], 'pg_dump parted');
$node->command_ok([ 'pg_dump', '-d', $node->connstr('parted'), '-f', "$dir/parted.sql" ], 'pg_dump parted plain');
like(slurp_file("$dir/parted.sql"), qr/^\\restrict abc$/m, 'the plain dump has a COPY row that looks like \\restrict');
$node->safe_psql('postgres', q{ALTER SYSTEM SET adr_ops.verify_compare_to = 'parted'});
$node->safe_psql('postgres', q{INSERT INTO adr_ops.backup_checks VALUES ('measures', 400, true)});
reload_settled();
is(verify("$dir/parted.dump"), 'passed|custom|3|403|',
    'compare_to and backup_checks treat a partitioned table as one table with its partitions\' rows');
is(verify("$dir/parted.sql"), 'passed|plain|3|403|',
    'a COPY row that looks like \\restrict is restored, not removed or refused');
like($node->safe_psql('postgres', q{SELECT detail FROM adr_ops.backup_verifications ORDER BY id DESC LIMIT 1}),
    qr/check measures >= 400 rows: 400; every table of database "parted" is in the backup/,
    '... the check and the comparison held');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET adr_ops.verify_compare_to});
$node->safe_psql('postgres', q{DELETE FROM adr_ops.backup_checks WHERE table_name = 'measures'});
reload_settled();

# A .sha256 beside the file is verified.
my $sum = `sha256sum "$dir/custom.dump"`;
$sum =~ s/\s.*//s;
PostgreSQL::Test::Utils::append_to_file("$dir/custom.dump.sha256", "$sum  custom.dump\n");
is(verify("$dir/custom.dump"), 'passed|custom|2|2500|', 'a matching .sha256 passes');
like($node->safe_psql('postgres', q{SELECT detail FROM adr_ops.backup_verifications ORDER BY id DESC LIMIT 1}),
    qr/SHA-256 matches/, 'the checksum was verified');
copy("$dir/custom.dump", "$dir/bad.dump") or die;
PostgreSQL::Test::Utils::append_to_file("$dir/bad.dump.sha256", ('0' x 64) . "  bad.dump\n");
like(verify("$dir/bad.dump"), qr/^failed\|custom\|.*checksum mismatch/, 'a .sha256 that does not match fails');

# Bad inputs: each fails with its reason.
make_path("$dir/nomanifest");
PostgreSQL::Test::Utils::append_to_file("$dir/empty.sql", '');
PostgreSQL::Test::Utils::append_to_file("$dir/notes.txt", "just some notes\nnot a dump\n");
{
    open my $in, '<:raw', "$dir/plain.sql.gz" or die;
    local $/;
    my $gz = <$in>;
    close $in;
    open my $out, '>:raw', "$dir/truncated.sql.gz" or die;
    print $out substr($gz, 0, int(length($gz) / 2));
    close $out;
}
{
    my $sql = slurp_file("$dir/plain.sql");
    # the second COPY gets a row with an extra column: the restore fails halfway
    $sql =~ s/^(2000\t\S+)$/$1\textra/m or die 'no row 2000';
    PostgreSQL::Test::Utils::append_to_file("$dir/halfway.sql", $sql);
    my $evil = slurp_file("$dir/plain.sql");
    my $marker = "$dir/pwned";
    $evil =~ s/^(SET client_encoding[^\n]*\n)/$1\\! touch $marker\n/m or die;
    PostgreSQL::Test::Utils::append_to_file("$dir/evil.sql", $evil);
    my $evil2 = slurp_file("$dir/plain.sql");
    $evil2 =~ s/^(SET client_encoding[^\n]*\n)/$1SELECT 1 \\g |touch $marker\n/m or die;
    PostgreSQL::Test::Utils::append_to_file("$dir/evil2.sql", $evil2);
    my $evil4 = slurp_file("$dir/plain.sql");
    $evil4 =~ s/^(SET client_encoding[^\n]*\n)/$1SELECT E'it\\'s', \$x\$ \\ \$x\$; \\! touch $marker\n/m or die;
    PostgreSQL::Test::Utils::append_to_file("$dir/evil4.sql", $evil4);
    my $benign = slurp_file("$dir/plain.sql");
    $benign =~ s/^(SET client_encoding[^\n]*\n)/$1SELECT E'it\\'s \\! x', \$x\$ \\! y \$x\$, '\\' \/* \/* nested *\/ *\/;\n/m or die;
    PostgreSQL::Test::Utils::append_to_file("$dir/benign.sql", $benign);
    my $evil3 = slurp_file("$dir/plain.sql");
    $evil3 =~ s/^(\\restrict \S+)$/$1 `touch $marker`/m or die;
    PostgreSQL::Test::Utils::append_to_file("$dir/evil3.sql", $evil3);
    # ways around a filter that re-lexes psql by hand; psql's own \restrict
    # refuses the meta-command whatever the lexing
    my %bypass = (
        paren    => "SELECT (1;\nCOPY t FROM stdin;\n\\! touch $dir/pwned_paren\n",
        copyopt  => "CREATE TABLE t (a text);\nCOPY t FROM stdin (FORMAT text);\nx\n\\.\n\\! touch $dir/pwned_copyopt\n",
        numdollar => "SELECT 1\$a\$ \$a\$ \\! touch $dir/pwned_numdollar\n",
        numestr  => "SELECT 1E'\\' \\! touch $dir/pwned_numestr\n';\n",
        scs      => "SELECT set_config('standard_'||'conforming_strings', 'off', false);\nSELECT 'a\\'' \\! touch $dir/pwned_scs\n';\n",
        sjis     => "SET client_encoding = 'SJIS';\nSELECT E'\x95\\'; \\! touch $dir/pwned_sjis\n';\n");
    for my $case (sort keys %bypass)
    {
        my $sql = slurp_file("$dir/plain.sql");
        $sql =~ s/^(SET client_encoding[^\n]*\n)/$1$bypass{$case}/m or die;
        open my $fh, '>:raw', "$dir/bypass_$case.sql" or die;
        print $fh $sql;
        close $fh;
    }
    my $connect = slurp_file("$dir/plain.sql");
    $connect =~ s/^(SET client_encoding[^\n]*\n)/$1\\connect source\n/m or die;
    PostgreSQL::Test::Utils::append_to_file("$dir/connect.sql", $connect);
}
copy("$dir/plain.sql", "$dir/stale.sql") or die;
utime(time - 3 * 86400, time - 3 * 86400, "$dir/stale.sql");
copy("$dir/plain.sql", "$dir/unreadable.sql") or die;
chmod 0000, "$dir/unreadable.sql";
my $odd = "$dir/we ird; DROP DATABASE source; 'quoted' \"x\".sql";
copy("$dir/plain.sql", $odd) or die;
system('cp', '-a', "$dir/base", "$dir/base_bad") == 0 or die;
PostgreSQL::Test::Utils::append_to_file("$dir/base_bad/PG_VERSION", "tampered\n");

like(verify("$dir/missing.sql"), qr/^failed\|\|\|\|missing: ".*missing.sql" does not exist$/, 'missing file');
like(verify("$dir/nomanifest"), qr/^failed\|\|\|\|not a backup: directory .* has neither toc.dat .* nor backup_manifest/,
    'directory without a manifest');
like(verify("$dir/empty.sql"), qr/^failed\|\|\|\|empty: /, 'empty file');
like(verify("$dir/truncated.sql.gz"), qr/^failed\|plain.gz\|\|\|truncated: the compressed backup ends early/,
    'truncated gzip');
like(verify("$dir/notes.txt"), qr/^failed\|\|\|\|not a dump: /, 'a text file that is not a dump');
my $log_offset = -s $node->logfile;
like(verify("$dir/halfway.sql"), qr/^failed\|plain\|\|\|the restore with psql failed \(exit status 3, SQLSTATE 22P04\); its messages are in the server log$/,
    'a dump whose restore fails halfway: the SQLSTATE, not the message');
like(slurp_file($node->logfile, $log_offset), qr/the restore with psql failed \(exit status 3\)\n.*DETAIL: .*extra data after last expected column/,
    '... which is in the server log');
like(verify("$dir/stale.sql"), qr/^failed\|plain\|\|\|stale: /, 'a stale file');
like(verify("$dir/stale.sql", q{, max_age => '7 days'}), qr/^passed\|plain\|/, 'the same file within max_age passes');
SKIP:
{
    skip 'running as root: every file is readable', 1 if $> == 0;
    like(verify("$dir/unreadable.sql"), qr/^failed\|\|\|\|unreadable: could not open .*Permission denied/,
        'a file the server cannot read');
}
is(verify($odd), 'passed|plain|2|2500|', 'a path with spaces, quotes and semicolons');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'source'}), '1',
    '... and nothing in it was run');
$log_offset = -s $node->logfile;
like(verify("$dir/base_bad"), qr/^failed\|basebackup\|\|\|pg_verifybackup failed \(exit status 1\); its messages are in the server log$/,
    'a backup_manifest that does not match the files');
like(slurp_file($node->logfile, $log_offset), qr/pg_verifybackup failed \(exit status 1\)\n.*DETAIL: .*PG_VERSION/,
    '... whose file pg_verifybackup names in the server log');
like(verify("$dir/evil.sql"), qr/^failed\|plain\|\|\|rejected: the dump contains a psql meta-command \(line \d+\), which psql refused \(the restore runs under \\restrict\)$/,
    'a plain dump with \\! is rejected');
like(verify("$dir/evil2.sql"), qr/^failed\|plain\|\|\|rejected: the dump contains a psql meta-command \(line \d+\), which psql refused/,
    'a plain dump with \\g |program is rejected');
like(verify("$dir/evil3.sql"), qr/^failed\|plain\|\|\|rejected: /,
    'a \\restrict line with a backquoted argument is rejected');
like(verify("$dir/evil4.sql"), qr/^failed\|plain\|\|\|rejected: the dump contains a psql meta-command \(line \d+\), which psql refused/,
    'a meta-command after an E\'\' string with an escaped quote and a dollar-quoted backslash is rejected');
is(verify("$dir/benign.sql"), 'passed|plain|2|2500|',
    'backslashes inside strings, dollar quotes and comments are not meta-commands');
ok(!-e "$dir/pwned", 'no shell command of a dump ran');
for my $case (qw(paren copyopt numdollar numestr scs sjis))
{
    like(verify("$dir/bypass_$case.sql"), qr/^failed\|plain\|\|\|rejected: the dump contains a psql meta-command \(line \d+\), which psql refused/,
        "filter bypass $case: the verification fails");
    ok(!-e "$dir/pwned_$case", "filter bypass $case: its shell command did not run");
}
like(verify("$dir/connect.sql"),
    qr/^failed\|plain\|\|\|rejected: line \d+: the dump connects to another database with \\connect/,
    'a plain dump with \\connect is rejected, with the reason');
is(scratch_databases(), '0', 'no scratch database is left after the failures');

# The connection the programs use: when refused, the failure names pg_hba.
$node->safe_psql('postgres', q{ALTER SYSTEM SET adr_ops.verify_conninfo = 'host=127.0.0.1 port=1 connect_timeout=5'});
reload_settled();
like(verify("$dir/custom.dump"), qr/^failed\|custom\|.*could not connect to the scratch database as its restore role "adr_verify_\d+_\d+" \(with a password; pg_hba.conf must accept .*or set adr_ops.verify_conninfo\): .*connection to server/s,
    'a refused connection names the pg_hba line it needs');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET adr_ops.verify_conninfo});
reload_settled();
is(scratch_databases(), '0', 'the scratch database is dropped after a refused connection');

# Free space: a restore stops when the data directory's file system has
# less than adr_ops.verify_min_free_space free.
$node->safe_psql('postgres', q{ALTER SYSTEM SET adr_ops.verify_min_free_space = '2000TB'});
reload_settled();
like(verify("$dir/custom.dump"), qr/^failed\|custom\|\|\|disk space: \d+ MB are free on the file system of the data directory, less than adr_ops.verify_min_free_space \(2097152000 MB\); the restore was stopped$/,
    'a restore stops below adr_ops.verify_min_free_space');
like(verify("$dir/plain.sql.gz"), qr/^failed\|plain.gz\|\|\|disk space: /, '... also a plain one');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET adr_ops.verify_min_free_space});
reload_settled();
is(scratch_databases(), '0', 'the scratch database is dropped after the disk check stopped it');

# The restore runs as a role of its own that is neither superuser nor
# CREATEDB nor a member of anything: the dump's SQL has only its rights.
# adr_ops.verify_conninfo says where to connect; a user in it is ignored.
$node->command_ok([ 'pg_dump', '--no-owner', '--no-privileges', '-d', $connstr, '-f', "$dir/noowner.sql" ],
    'pg_dump --no-owner');
{
    my $sql = slurp_file("$dir/plain.sql");
    $sql =~ s/^(SET client_encoding[^\n]*\n)/$1COPY (SELECT 1) TO PROGRAM 'touch $dir\/pwned_program';\n/m or die;
    PostgreSQL::Test::Utils::append_to_file("$dir/program.sql", $sql);
    $sql = slurp_file("$dir/plain.sql");
    $sql =~ s/^(SET client_encoding[^\n]*\n)/$1DROP DATABASE source;\n/m or die;
    PostgreSQL::Test::Utils::append_to_file("$dir/dropdb.sql", $sql);
}
{
    my ($host, $port) = ($node->host, $node->port);
    $node->safe_psql('postgres', qq{ALTER SYSTEM SET adr_ops.verify_conninfo = 'host=$host port=$port user=restorer'});
    reload_settled();
}
is(verify("$dir/custom.dump"), 'passed|custom|2|2500|', 'a custom dump restores through adr_ops.verify_conninfo');
like($node->safe_psql('postgres', q{SELECT detail FROM adr_ops.backup_verifications ORDER BY id DESC LIMIT 1}),
    qr/adr_ops.verify_conninfo's user is ignored; restored as role adr_verify_\d+_\d+;/,
    '... as the role of the verification, not the user it names');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET adr_ops.verify_conninfo});
reload_settled();
is(verify("$dir/noowner.sql"), 'passed|plain|3|2500|', 'a plain dump without owners restores');
is(verify("$dir/plain.sql"), 'passed|plain|2|2500|', 'a plain dump with owners restores: its owner changes are skipped');
like(verify("$dir/program.sql"), qr/^failed\|plain\|\|\|the restore with psql failed \(exit status 3, SQLSTATE 42501\)/,
    'the restore role cannot COPY TO PROGRAM');
ok(!-e "$dir/pwned_program", '... and the program did not run');
like(verify("$dir/dropdb.sql"), qr/^failed\|plain\|\|\|the restore with psql failed \(exit status 3, SQLSTATE 42501\)/,
    'the restore role cannot drop a live database');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'source'}), '1',
    '... which still exists');
is(scratch_databases(), '0', 'the scratch databases are dropped');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_roles WHERE rolname LIKE 'adr\\_verify\\_%'}), '0',
    '... and their roles');

# The default connection rejected by pg_hba.conf: the failure names the
# line that would allow it.
{
    my $hba = $node->data_dir . '/pg_hba.conf';
    my $orig = slurp_file($hba);
    my $next = $node->safe_psql('postgres',
        q{SELECT last_value + 1 FROM adr_ops.backup_verifications_id_seq});
    open my $fh, '>', $hba or die;
    print $fh "local adr_verify_${dboid}_$next all reject\n" . $orig;
    close $fh;
    reload_settled();
    like(verify("$dir/custom.dump"),
        qr/^failed\|custom\|.*could not connect to the scratch database as its restore role "adr_verify_\d+_\d+" \(with a password; pg_hba.conf must accept .*\): .*pg_hba.conf rejects connection/s,
        'a connection pg_hba.conf rejects names the line it needs');
    open $fh, '>', $hba or die;
    print $fh $orig;
    close $fh;
    reload_settled();
    is(scratch_databases(), '0', 'the scratch database is dropped after a rejected connection');
}

# Privileges and confinement.
$node->safe_psql('postgres', q{
    CREATE ROLE nobody LOGIN;
    CREATE ROLE reader LOGIN;
    GRANT pg_read_server_files, pg_execute_server_program TO reader;
    GRANT USAGE ON SCHEMA adr_ops TO nobody, reader;
    GRANT EXECUTE ON FUNCTION adr_ops.adr_verify_backup(text, interval, boolean) TO nobody, reader;});
my ($ret, $out, $err) = $node->psql('postgres', qq{SELECT adr_ops.adr_verify_backup('$dir/plain.sql')},
    extra_params => [ '-U', 'nobody' ]);
like($err, qr/permission denied to verify backups/, 'a role without the file and program privileges is refused');
($ret, $out, $err) = $node->psql('postgres', qq{SELECT adr_ops.adr_verify_backup('$dir/plain.sql')},
    extra_params => [ '-U', 'reader' ]);
like($err, qr/permission denied to verify backups outside adr_ops.backup_directories/,
    'with adr_ops.backup_directories empty only superusers verify');
make_path("$dir/allowed");
copy("$dir/custom.dump", "$dir/allowed/ok.dump") or die;
symlink("$dir/custom.dump", "$dir/allowed/link.dump") or die;
$node->safe_psql('postgres', qq{ALTER SYSTEM SET adr_ops.backup_directories = '$dir/allowed'});
reload_settled();
($ret, $out, $err) = $node->psql('postgres',
    qq{SELECT status FROM adr_ops.adr_verify_backup('$dir/allowed/ok.dump')}, extra_params => [ '-U', 'reader' ]);
is($out, 'passed', 'a member of both roles verifies inside adr_ops.backup_directories');
($ret, $out, $err) = $node->psql('postgres',
    qq{SELECT status FROM adr_ops.adr_verify_backup('$dir/allowed/../custom.dump')}, extra_params => [ '-U', 'reader' ]);
like($err, qr/path ".*" is outside adr_ops.backup_directories/, '.. cannot leave the allowed directories');
($ret, $out, $err) = $node->psql('postgres',
    qq{SELECT status FROM adr_ops.adr_verify_backup('$dir/allowed/link.dump')}, extra_params => [ '-U', 'reader' ]);
like($err, qr/path ".*link.dump" is outside adr_ops.backup_directories/, 'a symlink cannot leave the allowed directories');
($ret, $out, $err) = $node->psql('postgres',
    qq{SET adr_ops.backup_directories = '/'}, extra_params => [ '-U', 'reader' ]);
like($err, qr/permission denied to set parameter "adr_ops.backup_directories"/, 'only superusers set the directories');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET adr_ops.backup_directories});
reload_settled();

# NULL path: adr_ops.backup_path, a glob whose newest match wins.
utime(time - 3600, time - 3600, "$dir/allowed/ok.dump");
like($node->safe_psql('postgres', qq{
        SET adr_ops.backup_path = '$dir/allowed/*.dump';
        SELECT path || ' ' || status FROM adr_ops.adr_verify_backup(NULL)}),
    qr{/allowed/link.dump passed$}, 'a NULL path verifies the newest match of adr_ops.backup_path');

# Two at once, without waiting: both pass, each drops only its own database.
my $two = $node->safe_psql('postgres', qq{
    SELECT string_agg(id::text, ',') FROM (
        SELECT (adr_ops.adr_verify_backup('$dir/custom.dump', wait => false)).id
        UNION ALL
        SELECT (adr_ops.adr_verify_backup('$dir/plain.sql.gz', wait => false)).id) s});
ok($node->poll_query_until('postgres', qq{
        SELECT count(*) = 2 FROM adr_ops.backup_verifications
         WHERE id IN ($two) AND status <> 'running'}), 'two verifications at once finish');
is($node->safe_psql('postgres', qq{
        SELECT string_agg(status || ' ' || rows_counted, ', ' ORDER BY id)
          FROM adr_ops.backup_verifications WHERE id IN ($two)}),
    'passed 2500, passed 2500', 'both pass');
is(scratch_databases(), '0', 'both scratch databases are gone');
is($node->safe_psql('postgres', qq{
        SELECT status FROM adr_ops.adr_backup_status() WHERE path = '$dir/custom.dump'}),
    'passed', 'adr_backup_status() shows the latest verification of a path');

# A database that adr_ops did not create is never dropped, even by its name.
$node->safe_psql('postgres', q{CREATE DATABASE adr_verify_999999});
$node->safe_psql('postgres', q{COMMENT ON DATABASE adr_verify_999999 IS 'mine'});

# The server stopped (fast) during a restore, then started again.
{
    my $slow = slurp_file("$dir/plain.sql");
    $slow =~ s/^(\\unrestrict)/SELECT pg_catalog.pg_sleep(300);\n$1/m or die;
    PostgreSQL::Test::Utils::append_to_file("$dir/slow.sql", $slow);
}
my $slow_id = $node->safe_psql('postgres',
    qq{SELECT id FROM adr_ops.adr_verify_backup('$dir/slow.sql', wait => false)});
ok($node->poll_query_until('postgres', qq{
        SELECT count(*) = 1 FROM pg_stat_activity
         WHERE datname = 'adr_verify_${dboid}_$slow_id' AND query LIKE '%pg_sleep%'}),
    'the slow restore is running');
$node->stop('fast');
$node->start;
is($node->safe_psql('postgres', qq{SELECT status FROM adr_ops.backup_verifications WHERE id = $slow_id}),
    'running', 'after the restart the row still says running');
is(verify("$dir/custom.dump"), 'passed|custom|2|2500|', 'the next verification passes');
is($node->safe_psql('postgres', qq{
        SELECT status || ': ' || array_to_string(failures, ' / ')
          FROM adr_ops.backup_verifications WHERE id = $slow_id}),
    'failed: interrupted: the server or the verification worker stopped during the verification',
    'the interrupted verification is marked failed: interrupted');
is($node->safe_psql('postgres', q{SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'adr\_verify\_%'}),
    'adr_verify_999999', 'its scratch database is dropped; the one adr_ops did not create is kept');

# SIGTERM during a restore: the worker stops at once and kills its program.
$slow_id = $node->safe_psql('postgres',
    qq{SELECT id FROM adr_ops.adr_verify_backup('$dir/slow.sql', wait => false)});
ok($node->poll_query_until('postgres', qq{
        SELECT count(*) = 1 FROM pg_stat_activity
         WHERE datname = 'adr_verify_${dboid}_$slow_id' AND query LIKE '%pg_sleep%'}),
    'another slow restore is running');
$node->safe_psql('postgres', q{
    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
     WHERE backend_type = 'adr_ops backup verification'});
ok($node->poll_query_until('postgres', q{
        SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'adr_ops backup verification'}),
    'the terminated worker is gone');
is(verify("$dir/plain.sql"), 'passed|plain|2|2500|', 'the next verification passes');
is(scratch_databases(), '1', 'the terminated one\'s scratch database was dropped');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM pg_stat_activity WHERE datname = 'adr_verify_${dboid}_$slow_id'}),
    '0', '... with the session its restore left behind');

# The health check sees the verifications.
like($node->safe_psql('postgres', q{
        SELECT status || ' ' || detail FROM adr_ops.adr_health_check() WHERE check_name = 'backup_verification'}),
    qr/^OK latest: .*plain.sql passed/, 'health: OK after a passed verification');
verify("$dir/empty.sql");
like($node->safe_psql('postgres', q{
        SELECT status || ' ' || detail FROM adr_ops.adr_health_check() WHERE check_name = 'backup_verification'}),
    qr/^CRITICAL latest: .*empty.sql failed .*: empty: /, 'health: CRITICAL when the latest failed');

# The scheduler task verifies adr_ops.backup_path.
$node->safe_psql('postgres', qq{ALTER SYSTEM SET adr_ops.backup_path = '$dir/custom.dump'});
reload_settled();
my $run = $node->safe_psql('postgres', q{SELECT id FROM adr_ops.adr_run_task('verify_backup')});
ok($node->poll_query_until('postgres', qq{SELECT status <> 'running' FROM adr_ops.task_runs WHERE id = $run}),
    'the verify_backup task runs');
like($node->safe_psql('postgres', qq{SELECT status || ' ' || detail FROM adr_ops.task_runs WHERE id = $run}),
    qr/^succeeded verification \d+ of .*custom.dump passed: 2 tables, 2500 rows$/, 'the task records the verification');
$node->safe_psql('postgres', qq{ALTER SYSTEM SET adr_ops.backup_path = '$dir/empty.sql'});
reload_settled();
$run = $node->safe_psql('postgres', q{SELECT id FROM adr_ops.adr_run_task('verify_backup')});
ok($node->poll_query_until('postgres', qq{SELECT status <> 'running' FROM adr_ops.task_runs WHERE id = $run}),
    'the failing verify_backup task runs');
like($node->safe_psql('postgres', qq{SELECT status || ' ' || detail FROM adr_ops.task_runs WHERE id = $run}),
    qr/^failed .*backup verification \d+ of .*empty.sql failed: empty: /, 'a failed verification fails the task');

is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname LIKE 'adr\_verify\_%'}), '1',
    'in the end only the database adr_ops did not create remains');
$node->stop;
done_testing();
