# The backup part of the hostile-tenant suite: the dumps are what the
# attacker controls.  mallory owns a database; its dumps try to become
# superuser while they are restored, to run programs, to need extensions
# the server lacks, to make the verification read files outside
# adr_ops.backup_directories, and to leak row data into what pg_monitor
# reads.  Each part asserts that mallory gained nothing.
use strict;
use warnings FATAL => 'all';

use File::Copy;
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('hostile_backup');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'adr_ops'
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;
    CREATE ROLE mallory LOGIN;
    CREATE DATABASE mallorydb OWNER mallory;
    CREATE ROLE watcher LOGIN IN ROLE pg_monitor;
    CREATE ROLE reader LOGIN IN ROLE pg_read_server_files, pg_execute_server_program;
    GRANT USAGE ON SCHEMA adr_ops TO reader;
    GRANT EXECUTE ON FUNCTION adr_ops.adr_verify_backup(text, interval, boolean) TO reader;});

my $dir = PostgreSQL::Test::Utils::tempdir;
my $marker = "$dir/pwned";

# What mallory builds in her own database: a function that tries to
# escalate whenever it runs, called by a CHECK constraint (evaluated for
# every restored row) and an index expression (evaluated when the index is
# built, as the table's owner), plus an extension in a schema of hers and
# one in public.  As mallory every attempt fails, quietly.
$node->safe_psql('mallorydb', qq{
    SET ROLE mallory;
    CREATE FUNCTION public.escalate(i int) RETURNS boolean LANGUAGE plpgsql AS \$f\$
    BEGIN
        BEGIN EXECUTE 'ALTER ROLE mallory SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
        BEGIN EXECUTE 'CREATE ROLE mallory_twin SUPERUSER LOGIN'; EXCEPTION WHEN OTHERS THEN NULL; END;
        BEGIN EXECUTE 'GRANT pg_execute_server_program TO mallory'; EXCEPTION WHEN OTHERS THEN NULL; END;
        BEGIN EXECUTE \$\$COPY (SELECT 1) TO PROGRAM 'touch $marker'\$\$; EXCEPTION WHEN OTHERS THEN NULL; END;
        RETURN true;
    END \$f\$;
    CREATE FUNCTION public.escalate_idx(i int) RETURNS int LANGUAGE sql IMMUTABLE
        AS \$f\$ SELECT CASE WHEN public.escalate(i) THEN i END \$f\$;
    CREATE TABLE datasets (id int CHECK (public.escalate(id)));
    INSERT INTO datasets SELECT generate_series(1, 10);
    CREATE INDEX ON datasets (public.escalate_idx(id));
    CREATE EXTENSION citext;
    CREATE SCHEMA ext;
    CREATE EXTENSION pgcrypto SCHEMA ext;
    CREATE TABLE users (name citext CHECK (length(ext.digest(name::text, 'sha256')) = 32));
    INSERT INTO users VALUES ('Alice'), ('Bob');});
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}), 'f',
    'mallory is not a superuser to begin with');

my $connstr = $node->connstr('mallorydb');
$node->command_ok([ 'pg_dump', '-d', $connstr, '-f', "$dir/mallory.sql" ], 'pg_dump plain');
$node->command_ok([ 'pg_dump', '-Fc', '-d', $connstr, '-f', "$dir/mallory.dump" ], 'pg_dump custom');
$node->command_ok([ 'pg_dump', '-Fd', '-d', $connstr, '-f', "$dir/mallory.dir" ], 'pg_dump directory');

sub verify
{
    my ($path, %opt) = @_;
    my ($ret, $out, $err) = $node->psql('postgres', qq{
        SELECT concat_ws('|', v.status, coalesce(v.format, ''), coalesce(v.tables_restored::text, ''),
                         coalesce(v.rows_counted::text, ''), array_to_string(v.failures, ' / '))
          FROM adr_ops.adr_verify_backup(\$adr\$$path\$adr\$) v},
        extra_params => [ '-U', $opt{user} // $node->safe_psql('postgres', 'SELECT current_user') ]);
    return $ret == 0 ? $out : "ERROR: $err";
}

sub mallory_gained_nothing
{
    my ($what) = @_;
    is($node->safe_psql('postgres', q{
            SELECT r.rolsuper::text || ' ' || (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid)
                   || ' ' || (SELECT count(*) FROM pg_roles WHERE rolname = 'mallory_twin')
              FROM pg_roles r WHERE r.rolname = 'mallory'}),
        'false 0 0', "$what: mallory is no superuser, a member of nothing, and made no role");
    ok(!-e $marker, "$what: no program of the dump ran");
}

# Finding 2: by default, with no setting made, the dump's code runs as a
# role with no privileges beyond its scratch database.
for my $f ('mallory.sql', 'mallory.dump', 'mallory.dir')
{
    is(verify("$dir/$f"), $f eq 'mallory.sql' ? 'passed|plain|2|12|' : $f eq 'mallory.dump' ? 'passed|custom|2|12|' : 'passed|directory|2|12|',
        "$f: restores with its extensions (one in a schema of its own)");
    like($node->safe_psql('postgres', q{SELECT detail FROM adr_ops.backup_verifications ORDER BY id DESC LIMIT 1}),
        qr/created extensions .*citext.*; restored as role adr_verify_\d+_\d+;/,
        "$f: the extensions were created first, then the restore ran as a role of its own");
    mallory_gained_nothing($f);
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_roles WHERE rolname LIKE 'adr\_verify\_%'}), '0',
    'the restore roles are dropped');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname LIKE 'adr\_verify\_%'}), '0',
    'the scratch databases are dropped');

# A dump that needs an extension the server does not have fails, with the
# reason, before anything of it runs.
{
    my $sql = slurp_file("$dir/mallory.sql");
    $sql =~ s/^(CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;)$/$1\nCREATE EXTENSION IF NOT EXISTS no_such_ext WITH SCHEMA public;/m
      or die 'no citext line';
    PostgreSQL::Test::Utils::append_to_file("$dir/needs_more.sql", $sql);
}
like(verify("$dir/needs_more.sql"),
    qr/^failed\|plain\|\|\|unsupported: the dump needs the extensions no_such_ext, which this server does not have/,
    'a dump needing an extension the server lacks fails with the reason');
mallory_gained_nothing('needs_more.sql');

# Finding 4: the restore's connection string is for superusers only and
# holds no password; the restore role's password is in no command line.
my ($ret, $out, $err) = $node->psql('postgres', 'SHOW adr_ops.verify_conninfo', extra_params => [ '-U', 'mallory' ]);
like($err, qr/must be superuser or have privileges of pg_read_all_settings/, 'SHOW adr_ops.verify_conninfo is refused to mallory');
($ret, $out, $err) = $node->psql('postgres', q{ALTER SYSTEM SET adr_ops.verify_conninfo = 'host=127.0.0.1 password=s3cret'});
like($err, qr/invalid value for parameter "adr_ops.verify_conninfo".*must not name "password"/s,
    'adr_ops.verify_conninfo refuses a password');
{
    my $slow = slurp_file("$dir/mallory.sql");
    $slow =~ s/^(\\unrestrict)/SELECT pg_catalog.pg_sleep(300);\n$1/m or die;
    PostgreSQL::Test::Utils::append_to_file("$dir/slow.sql", $slow);
}
my $slow_id = $node->safe_psql('postgres',
    qq{SELECT id FROM adr_ops.adr_verify_backup('$dir/slow.sql', wait => false)});
ok($node->poll_query_until('postgres', q{
        SELECT count(*) = 1 FROM pg_stat_activity
         WHERE datname LIKE 'adr\_verify\_%' AND query LIKE '%pg_sleep%'}),
    'a slow restore is running');
{
    my ($env_has, $argv_has) = (0, 0);
    opendir(my $proc, '/proc') or die;
    for my $pid (grep { /^\d+$/ } readdir $proc)
    {
        open(my $fh, '<', "/proc/$pid/cmdline") or next;
        local $/;
        my $cmd = <$fh> // '';
        close $fh;
        next unless $cmd =~ /^[^\0]*psql\0/ && $cmd =~ /adr_verify_/;
        $argv_has++ if $cmd =~ /password/i;
        open($fh, '<', "/proc/$pid/environ") or next;
        my $env = <$fh> // '';
        close $fh;
        $env_has++ if $env =~ /(?:^|\0)PGPASSWORD=[A-Za-z0-9]{32}\0/;
    }
    closedir $proc;
    is($env_has, 1, 'the restoring psql has the role\'s password in its environment');
    is($argv_has, 0, '... and no password in its command line');
}
$node->safe_psql('postgres', q{
    SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'adr_ops backup verification'});
ok($node->poll_query_until('postgres', q{
        SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'adr_ops backup verification'}),
    'the terminated worker is gone');
is(verify("$dir/mallory.dump"), 'passed|custom|2|12|', 'the next verification passes');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_roles WHERE rolname LIKE 'adr\_verify\_%'}), '0',
    'the restore role of the terminated verification was dropped');

# Finding 3: files outside adr_ops.backup_directories.  The secret looks
# like a digest, so that a verification that echoed a sidecar would show it.
my $secret = 'feedc0de' x 8;
PostgreSQL::Test::Utils::append_to_file("$dir/secret.txt", "$secret  not yours\n");
make_path("$dir/allowed/sub");
copy("$dir/mallory.dump", "$dir/allowed/ok.dump") or die;
symlink("$dir/secret.txt", "$dir/allowed/ok.dump.sha256") or die;
copy("$dir/mallory.dump", "$dir/allowed/sub/rel.dump") or die;
symlink('../ok.dump', "$dir/allowed/sub/inside.dump") or die;
symlink($dir, "$dir/allowed/up") or die;
system('cp', '-a', "$dir/mallory.dir", "$dir/allowed/dirdump") == 0 or die;
unlink("$dir/allowed/dirdump/toc.dat") or die;
symlink("$dir/mallory.dir/toc.dat", "$dir/allowed/dirdump/toc.dat") or die;
$node->safe_psql('postgres', qq{ALTER SYSTEM SET adr_ops.backup_directories = '$dir/allowed'});
$node->reload;
my $got = verify("$dir/allowed/ok.dump", user => 'reader');
like($got, qr/^failed\|custom\|\|\|checksum: ".*ok.dump.sha256" leads out of adr_ops.backup_directories/,
    'a sidecar that is a symlink out of the allowed directories is not read');
unlike($got, qr/$secret/, '... and the secret it points to is not in failures');
unlike($node->safe_psql('postgres', q{SELECT string_agg(array_to_string(failures, ' ') || coalesce(detail, ''), ' ') FROM adr_ops.backup_verifications}),
    qr/feedc0de/, 'no verification row holds the secret');
unlink("$dir/allowed/ok.dump.sha256");
PostgreSQL::Test::Utils::append_to_file("$dir/allowed/ok.dump.sha256", "not a digest: $secret\n");
$got = verify("$dir/allowed/ok.dump", user => 'reader');
like($got, qr/^failed\|custom\|\|\|checksum: ".*ok.dump.sha256" does not start with a SHA-256 digest/,
    'a sidecar that is no digest fails');
unlike($got, qr/feedc0de|not a digest/, '... without its content');
unlink("$dir/allowed/ok.dump.sha256");
like(verify("$dir/allowed/up/mallory.dump", user => 'reader'), qr/ERROR: .*is outside adr_ops.backup_directories/,
    'a symlinked directory that leads out is refused');
is(verify("$dir/allowed/sub/inside.dump", user => 'reader'), 'passed|custom|2|12|',
    'a relative symlink that stays inside is followed');
like(verify("$dir/allowed/dirdump", user => 'reader'), qr/^failed\|\|\|\|not a backup: directory/,
    'a directory dump whose toc.dat is a symlink out is not read through it');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET adr_ops.backup_directories});
$node->reload;

# Finding 5: a failing restore's messages, which carry row data, are not
# in what pg_monitor reads; they are in the server log.
{
    my $sql = slurp_file("$dir/mallory.sql");
    $sql =~ s/^(COPY public.users .*FROM stdin;\n)/${1}ROWSECRET-a-b-c\n/m or die 'no COPY users';
    $sql =~ s/^(CREATE TABLE public.users \(\n\s+name public.citext)/$1 NOT NULL UNIQUE/m or die 'no users';
    $sql =~ s/^(COPY public.users .*FROM stdin;\n)/${1}ROWSECRET-a-b-c\n/m or die;
    PostgreSQL::Test::Utils::append_to_file("$dir/leaky.sql", $sql);
}
my $log_offset = -s $node->logfile;
$got = verify("$dir/leaky.sql");
like($got, qr/^failed\|plain\|\|\|the restore with psql failed \(exit status 3, SQLSTATE 23505\); its messages are in the server log$/,
    'a restore that fails on a duplicate row gives its SQLSTATE');
unlike($got, qr/ROWSECRET/, '... not the row');
($ret, $out, $err) = $node->psql('postgres',
    q{SELECT string_agg(array_to_string(failures, ' ') || coalesce(detail, ''), ' ') FROM adr_ops.adr_backup_status()},
    extra_params => [ '-U', 'watcher' ]);
unlike($out, qr/ROWSECRET/, 'pg_monitor reads no row data in the verifications');
like(slurp_file($node->logfile, $log_offset), qr/adr_ops backup verification \d+: the restore with psql failed.*ROWSECRET/s,
    'the server log has the full messages');
mallory_gained_nothing('leaky.sql');

$node->stop;
done_testing();
