# The hostile tenant: a role, mallory, owns a database (mallorydb, where the
# superuser installed adr_ops and pg_stat_statements) and may create in two
# schemas of the launcher's database (public, as on clusters upgraded from
# 14, and a schema of her own).  She plants, in every schema she can write,
# a look-alike of every function, aggregate, operator and catalog view that
# adr_ops's SQL and C name -- with the same arguments, with text, anyelement
# and variadic arguments, and with a type of hers that every common type
# casts to implicitly -- and tables whose triggers, CHECK constraints,
# defaults, domains, generated columns, index expressions and predicates,
# row-level security policies and extended statistics run her code.  That
# code records who ran it (the server log and a table of hers) and tries to
# become superuser, join the file-access roles, run a program, write and read
# a file.
#
# Then every privileged path of adr_ops runs there: each scheduler task in
# both databases through the launcher, a scheduled run, every function a
# superuser calls (her database's default search_path puts her schemas
# first), probes and the webhook against a hostile HTTP server, the backup
# verification of a dump of her database, with mallory in pg_monitor every
# function pg_monitor may call, and the install and update scripts in her
# database.  Nothing pg_monitor reads may hold a file's content or another
# session's log text.  After each path the suite asserts that mallory gained
# nothing: her code never ran as a privileged role -- a superuser, a role
# with an attribute (CREATEROLE, CREATEDB, BYPASSRLS, REPLICATION) or, other
# than mallory, a membership.  Runs as mallory herself (maintenance runs a
# table's code as its owner under a security-restricted operation) or as an
# unprivileged role (the backup verification's throwaway restore role) are
# expected and allowed.  Her role has no new attribute or membership, no
# file was written, no file was read.
#
# A new privileged path (a task, a SECURITY DEFINER function, a worker, a
# program the server spawns) gets its subtest here.
#
# Not plantable by an ordinary role, so not planted: functions taking
# "unknown" or VARIADIC "any" (only C functions can, and only a superuser
# creates those).
use strict;
use warnings FATAL => 'all';

use File::Basename;
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# A loopback HTTP server whose answers are hostile: a redirect to a file,
# a redirect out of the allowed hosts, a 64 MB body; it also takes the
# webhook's posts (t/fixtures/http_stub.pl).
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $stub_dir = "$tmp/stub";
mkdir $stub_dir;
my $stub_pid = fork;
die "fork: $!" unless defined $stub_pid;
if ($stub_pid == 0)
{
    exec($^X, dirname(__FILE__) . '/fixtures/http_stub.pl', $stub_dir, 0) or die "exec: $!";
}
END { kill 'TERM', -$stub_pid if $stub_pid; }

my $node = PostgreSQL::Test::Cluster->new('hostile');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_stat_statements,adr_ops'
adr_ops.database = 'postgres'
adr_ops.timezone = 'UTC'
max_worker_processes = 16
autovacuum = off
logging_collector = on
log_statement = none
log_rotation_size = 0
log_rotation_age = 0
});
$node->start;

my $pwned = "$tmp/pwned";     # where her code tries to write
make_path($pwned);
my $secret = "$tmp/secret.txt";    # what her code tries to read
PostgreSQL::Test::Utils::append_to_file($secret, "adr-secret-4a1d7c\n");

for (1 .. 100 * $PostgreSQL::Test::Utils::timeout_default)
{
    last if -s "$stub_dir/port";
    select(undef, undef, undef, 0.01);
}
die 'the HTTP stub did not start' unless -s "$stub_dir/port";
my $stub = 'http://127.0.0.1:' . (PostgreSQL::Test::Utils::slurp_file("$stub_dir/port") + 0);
$node->append_conf('postgresql.conf', "adr_ops.alert_webhook_url = '$stub/hook'");
$node->reload;

# The launcher's database, with a schema of hers and CREATE on public.
$node->safe_psql('postgres', q{
    CREATE ROLE mallory LOGIN;
    CREATE ROLE adr_victim LOGIN;
    CREATE EXTENSION adr_ops;
    CREATE EXTENSION pg_stat_statements;
    UPDATE adr_ops.schedules SET enabled = false;
    CREATE SCHEMA tenant AUTHORIZATION mallory;
    GRANT CREATE ON SCHEMA public TO mallory;
    CREATE DATABASE mallorydb OWNER mallory;});
# Her database: the superuser installs the extensions (public is hers: on
# PostgreSQL 15 the database owner owns it).
$node->safe_psql('mallorydb', q{
    CREATE EXTENSION adr_ops;
    CREATE EXTENSION pg_stat_statements;
    UPDATE adr_ops.schedules SET enabled = false;});
$node->safe_psql('mallorydb', 'CREATE SCHEMA mallory', extra_params => [ '-U', 'mallory' ]);
# amcheck, in a schema of the superuser's in each database: her look-alikes
# of its functions go in the schemas she can write.
$node->safe_psql($_, 'CREATE SCHEMA amcheck_ext; CREATE EXTENSION amcheck SCHEMA amcheck_ext')
  for ('postgres', 'mallorydb');

# Her own schema in each database: the recorder lives there.
my %own = (postgres => 'tenant', mallorydb => 'mallory');

# ---------------------------------------------------------------------------
# What adr_ops names: every identifier followed by "(" in its SQL and C, and
# every identifier (for relations).  Intersected with the catalogs below.
my $sources = '';
for my $f (glob('src/*.sql'), glob('src/*.c'),
    $node->config_data('--sharedir') . '/extension/adr_ops--1.1.sql')
{
    $sources .= PostgreSQL::Test::Utils::slurp_file($f) if -f $f;
}
my %called = map { lc($_) => 1 } ($sources =~ /\b([A-Za-z_][A-Za-z0-9_]*)\s*\(/g);
my %words = map { lc($_) => 1 } ($sources =~ /\b([A-Za-z_][A-Za-z0-9_]*)\b/g);
my $called = '{' . join(',', sort keys %called) . '}';
my $words = '{' . join(',', sort grep { /^pg_|^information_schema$/ } keys %words) . '}';
cmp_ok(scalar(keys %called), '>', 100, 'the sources name many functions (' . scalar(keys %called) . ')');

sub plant_sql
{
    my ($own) = @_;
    return qq{
SET client_min_messages = warning;
SET search_path = pg_catalog, pg_temp;
CREATE TABLE $own.executed (what text, cur_user name, sess_user name, cur_super boolean,
                            cur_privileged boolean, at timestamptz DEFAULT pg_catalog.clock_timestamp());
CREATE TABLE $own.loot (what text, data text);
GRANT USAGE ON SCHEMA $own TO PUBLIC;
GRANT INSERT ON $own.executed, $own.loot TO PUBLIC;

-- The recorder: logs who runs it (the log survives a rollback), stores it,
-- then tries everything.  Once per backend, what and role.
CREATE FUNCTION $own.mallory_hit(what text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS \$f\$
DECLARE
    k text := 'mallory.k' || md5(what || current_user || session_user);
    su boolean := (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user);
    -- A role with more than an unprivileged role has: an attribute, or
    -- (for a role other than mallory) a membership.
    priv boolean := EXISTS (SELECT FROM pg_roles r
                             WHERE r.rolname = current_user
                               AND (r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls
                                    OR r.rolreplication
                                    OR (r.rolname <> 'mallory'
                                        AND EXISTS (SELECT FROM pg_auth_members m WHERE m.member = r.oid))));
BEGIN
    IF current_setting(k, true) = '1' THEN RETURN true; END IF;
    PERFORM set_config(k, '1', false);
    RAISE LOG 'mallory_hit current_user=% session_user=% superuser=% privileged=% what=%',
        current_user, session_user, su, priv, what;
    BEGIN
        INSERT INTO $own.executed (what, cur_user, sess_user, cur_super, cur_privileged)
        VALUES (what, current_user, session_user, su, priv);
    EXCEPTION WHEN others THEN NULL; END;
    BEGIN EXECUTE 'ALTER ROLE mallory SUPERUSER CREATEROLE CREATEDB BYPASSRLS REPLICATION';
    EXCEPTION WHEN others THEN NULL; END;
    BEGIN EXECUTE 'GRANT pg_execute_server_program, pg_read_server_files, pg_write_server_files, pg_read_all_data TO mallory';
    EXCEPTION WHEN others THEN NULL; END;
    BEGIN EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'touch $pwned/program-' || md5(what));
    EXCEPTION WHEN others THEN NULL; END;
    BEGIN EXECUTE format('COPY (SELECT %L) TO %L', what, '$pwned/copy-' || md5(what));
    EXCEPTION WHEN others THEN NULL; END;
    BEGIN INSERT INTO $own.loot VALUES (what, pg_read_file('$secret'));
    EXCEPTION WHEN others THEN NULL; END;
    RETURN true;
END\$f\$;
GRANT EXECUTE ON FUNCTION $own.mallory_hit(text) TO PUBLIC;

-- A type every common type casts to implicitly: a look-alike taking it
-- beats a catalog function that needs an explicit cast.
CREATE TYPE $own.mallory_t AS (v text);
DO \$do\$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['text', 'name', 'numeric', 'integer', 'bigint', 'boolean', 'oid',
                             'timestamp with time zone', 'interval', 'jsonb', 'inet', 'cidr']
    LOOP
        EXECUTE format('CREATE FUNCTION $own.%I(%s) RETURNS $own.mallory_t LANGUAGE plpgsql AS %L',
                       'mallory_cast_' || replace(t, ' ', '_'), t,
                       format('BEGIN PERFORM $own.mallory_hit(%L); RETURN NULL; END', 'cast from ' || t));
        EXECUTE format('CREATE CAST (%s AS $own.mallory_t) WITH FUNCTION $own.%I(%s) AS IMPLICIT',
                       t, 'mallory_cast_' || replace(t, ' ', '_'), t);
    END LOOP;
END\$do\$;

CREATE FUNCTION $own.mallory_agg_step(state bigint) RETURNS bigint LANGUAGE plpgsql
    AS \$f\$BEGIN PERFORM $own.mallory_hit('aggregate count(*)'); RETURN state + 1; END\$f\$;
CREATE FUNCTION $own.mallory_agg_text(state text, v text) RETURNS text LANGUAGE plpgsql
    AS \$f\$BEGIN PERFORM $own.mallory_hit('aggregate (text)'); RETURN v; END\$f\$;
CREATE FUNCTION $own.mallory_agg_any(state anyelement, v anyelement) RETURNS anyelement LANGUAGE plpgsql
    AS \$f\$BEGIN PERFORM $own.mallory_hit('aggregate (anyelement)'); RETURN v; END\$f\$;
};
}

# Look-alikes in schema $s (hers) of every function, aggregate, operator and
# catalog view named by the sources.
sub overload_sql
{
    my ($own, $s) = @_;
    return qq{
SET client_min_messages = warning;
SET search_path = pg_catalog, pg_temp;
CREATE TEMP TABLE plant_called AS SELECT unnest('$called'::text[]) AS name;
CREATE TEMP TABLE plant_words AS SELECT unnest('$words'::text[]) AS name;
DO \$do\$
DECLARE
    r record;
    v text;
    ins text;
    outs text;
    nout int;
    result text;
    made int := 0;
    tried int := 0;
    n int;
BEGIN
    -- Aggregates first: a plain function look-alike would take the name.
    FOR r IN SELECT DISTINCT p.proname FROM pg_proc p
              WHERE p.prokind = 'a' AND p.pronamespace = 'pg_catalog'::regnamespace
                AND p.proname IN (SELECT name FROM plant_called)
    LOOP
        BEGIN
            tried := tried + 1;
            IF r.proname = 'count' THEN
                EXECUTE format('CREATE AGGREGATE %I.count(*) (SFUNC = $own.mallory_agg_step, STYPE = bigint, INITCOND = 0)', '$s');
                made := made + 1;
            END IF;
        EXCEPTION WHEN others THEN NULL; END;
        BEGIN
            EXECUTE format('CREATE AGGREGATE %I.%I(text) (SFUNC = $own.mallory_agg_text, STYPE = text)', '$s', r.proname);
            made := made + 1;
        EXCEPTION WHEN others THEN NULL; END;
        BEGIN
            EXECUTE format('CREATE AGGREGATE %I.%I(anyelement) (SFUNC = $own.mallory_agg_any, STYPE = anyelement)', '$s', r.proname);
            made := made + 1;
        EXCEPTION WHEN others THEN NULL; END;
    END LOOP;

    -- Functions: the catalog's, pg_stat_statements' and adr_ops's own.
    FOR r IN
        SELECT p.oid, p.proname, p.proretset, p.prorettype,
               coalesce(ARRAY(SELECT pg_catalog.format_type(t, NULL)
                                FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, o) ORDER BY o),
                        '{}') AS intypes,
               p.proargmodes, p.proargnames, p.proallargtypes
          FROM pg_proc p
         WHERE p.prokind IN ('f', 'w', 'a')
           AND ((p.proname IN (SELECT name FROM plant_called)
                 AND (p.pronamespace = 'pg_catalog'::regnamespace
                      OR EXISTS (SELECT FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                                    AND d.deptype = 'e' AND e.extname = 'adr_ops')))
                -- every function of the other extensions adr_ops calls,
                -- whether or not the sources spell its name
                OR EXISTS (SELECT FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                            WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
                              AND e.extname IN ('pg_stat_statements', 'amcheck')))
    LOOP
        SELECT string_agg(format('OUT %I %s', coalesce(nullif(r.proargnames[o], ''), 'o' || o),
                                 pg_catalog.format_type(r.proallargtypes[o], NULL)), ', ' ORDER BY o),
               count(*)
          INTO outs, nout
          FROM generate_subscripts(r.proargmodes, 1) o WHERE r.proargmodes[o] IN ('o', 't');
        result := CASE WHEN r.proretset THEN 'SETOF ' ELSE '' END
                  || CASE WHEN nout > 1 THEN 'record' ELSE pg_catalog.format_type(r.prorettype, NULL) END;
        n := cardinality(r.intypes);
        FOREACH v IN ARRAY ARRAY['twin', 'text', 'anyelement', 'variadic text', 'variadic any', 'cast']
        LOOP
            CONTINUE WHEN v <> 'twin' AND n = 0;
            ins := CASE v
                   WHEN 'twin' THEN array_to_string(r.intypes, ', ')
                   WHEN 'text' THEN array_to_string(array_fill('text'::text, ARRAY[n]), ', ')
                   WHEN 'anyelement' THEN array_to_string(array_fill('anyelement'::text, ARRAY[n]), ', ')
                   WHEN 'variadic text' THEN 'VARIADIC text[]'
                   WHEN 'variadic any' THEN 'VARIADIC anycompatiblearray'
                   ELSE array_to_string(array_fill('$own.mallory_t'::text, ARRAY[n]), ', ') END;
            tried := tried + 1;
            BEGIN
                EXECUTE format('CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE plpgsql AS %L',
                               '$s', r.proname, concat_ws(', ', nullif(ins, ''), outs), result,
                               format('BEGIN PERFORM $own.mallory_hit(%L); RETURN%s; END',
                                      format('%s.%s(%s)', '$s', r.proname, ins),
                                      CASE WHEN r.proretset OR nout > 0 THEN '' ELSE ' NULL' END));
                made := made + 1;
            EXCEPTION WHEN others THEN NULL; END;
        END LOOP;
    END LOOP;

    -- Operators: a twin of every catalog binary operator whose symbol the
    -- sources use (and the other common ones), and one on anyelement per
    -- symbol.
    FOR r IN
        SELECT o.oid, o.oprname, pg_catalog.format_type(o.oprleft, NULL) AS l,
               pg_catalog.format_type(o.oprright, NULL) AS rt, pg_catalog.format_type(o.oprresult, NULL) AS res
          FROM pg_operator o
         WHERE o.oprnamespace = 'pg_catalog'::regnamespace AND o.oprkind = 'b'
           AND o.oprname IN ('=', '<>', '<', '>', '<=', '>=', '+', '-', '*', '/', '%', '||', '~', '~*', '!~',
                             '~~', '!~~', '~~*', '\@>', '<\@', '&&', '<<', '>>', '<<=', '>>=', '->', '->>',
                             '#>', '#>>', '?', '?|', '?&', '^', '&', '|', '#')
        UNION ALL
        SELECT DISTINCT ON (o.oprname) 0, o.oprname, 'anyelement', 'anyelement',
               CASE WHEN o.oprresult = 'boolean'::regtype THEN 'boolean' ELSE 'anyelement' END
          FROM pg_operator o
         WHERE o.oprnamespace = 'pg_catalog'::regnamespace AND o.oprkind = 'b'
           AND o.oprname IN ('=', '<>', '<', '>', '<=', '>=', '+', '-', '*', '/', '||', '~', '~~', '\@>', '<\@', '&&')
    LOOP
        tried := tried + 1;
        BEGIN
            EXECUTE format('CREATE FUNCTION $own.%I(%s, %s) RETURNS %s LANGUAGE plpgsql AS %L',
                           format('mallory_op_%s_%s_%s', '$s', r.oid, md5(r.oprname)), r.l, r.rt, r.res,
                           format('BEGIN PERFORM $own.mallory_hit(%L); RETURN NULL; END',
                                  format('%s.operator %s(%s, %s)', '$s', r.oprname, r.l, r.rt)));
            EXECUTE format('CREATE OPERATOR %I.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = $own.%I)',
                           '$s', r.oprname, r.l, r.rt,
                           format('mallory_op_%s_%s_%s', '$s', r.oid, md5(r.oprname)));
            made := made + 1;
        EXCEPTION WHEN others THEN NULL; END;
    END LOOP;

    -- Views in front of every catalog relation the sources name.
    FOR r IN SELECT c.relname FROM pg_class c
              WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind IN ('r', 'v')
                AND c.relname IN (SELECT name FROM plant_words)
    LOOP
        tried := tried + 1;
        BEGIN
            EXECUTE format('CREATE VIEW %I.%I AS SELECT * FROM pg_catalog.%I WHERE $own.mallory_hit(%L)',
                           '$s', r.relname, r.relname, format('view %s.%s', '$s', r.relname));
            made := made + 1;
        EXCEPTION WHEN others THEN NULL; END;
    END LOOP;
    RAISE WARNING 'mallory planted % of % look-alikes in schema %', made, tried, '$s';
END\$do\$;
};
}

# Tables whose code is hers: run as a superuser, it escalates.
sub tables_sql
{
    my ($own, $rows) = @_;
    my $f = sub {
        my ($name, $args, $ret, $vol, $what, $value) = @_;
        return "CREATE FUNCTION $own.$name($args) RETURNS $ret LANGUAGE plpgsql $vol "
          . "AS \$f\$BEGIN PERFORM $own.mallory_hit('$what'); RETURN $value; END\$f\$;\n";
    };
    return qq{
SET client_min_messages = warning;
SET search_path = pg_catalog, pg_temp;
} . $f->('evil_default', '', 'integer', 'VOLATILE', 'column default', '1')
      . $f->('evil_check', 'x integer', 'boolean', 'IMMUTABLE', 'check constraint', 'true')
      . $f->('evil_domain', 'x integer', 'boolean', 'IMMUTABLE', 'domain check', 'true')
      . $f->('evil_generated', 'x integer', 'integer', 'IMMUTABLE', 'generated column', 'x')
      . $f->('evil_index', 'x integer', 'integer', 'IMMUTABLE', 'index expression', 'x')
      . $f->('evil_predicate', 'x integer', 'boolean', 'IMMUTABLE', 'index predicate', 'true')
      . $f->('evil_partial', 'x integer', 'boolean', 'IMMUTABLE', 'partial index predicate', 'true')
      . $f->('evil_statistics', 'x integer', 'integer', 'IMMUTABLE', 'statistics expression', 'x')
      . $f->('evil_policy', 'x integer', 'boolean', 'STABLE', 'row security policy', 'true')
      . $f->('evil_trigger', '', 'trigger', 'VOLATILE', 'trigger', 'coalesce(NEW, OLD)')
      . qq{
CREATE DOMAIN $own.evil_int AS integer CHECK ($own.evil_domain(VALUE));
CREATE TABLE $own.victim (
    id integer,
    x integer DEFAULT $own.evil_default(),
    d $own.evil_int DEFAULT 1,
    g integer GENERATED ALWAYS AS ($own.evil_generated(x)) STORED,
    pad text,
    CHECK ($own.evil_check(x)));
INSERT INTO $own.victim (id, x, pad) SELECT i, i, repeat('p', 60) FROM generate_series(1, $rows) i;
CREATE INDEX victim_expr ON $own.victim ($own.evil_index(x)) WHERE $own.evil_predicate(x);
CREATE INDEX victim_id ON $own.victim (id);
-- reindex estimates plain-column btree indexes only: this one it picks.
CREATE INDEX victim_partial ON $own.victim (id) WHERE $own.evil_partial(x);
CREATE STATISTICS $own.victim_stats ON ($own.evil_statistics(x)), id FROM $own.victim;
CREATE TRIGGER victim_row BEFORE INSERT OR UPDATE OR DELETE ON $own.victim
    FOR EACH ROW EXECUTE FUNCTION $own.evil_trigger();
CREATE TRIGGER victim_truncate BEFORE TRUNCATE ON $own.victim
    FOR EACH STATEMENT EXECUTE FUNCTION $own.evil_trigger();
ALTER TABLE $own.victim ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY victim_policy ON $own.victim USING ($own.evil_policy(x));
-- Dead tuples and a bloated index, so that every maintenance task picks it.
DELETE FROM $own.victim WHERE id % 3 <> 0;
UPDATE $own.victim SET pad = repeat('q', 60) WHERE id % 9 = 0;
};
}

for my $db ('mallorydb', 'postgres')
{
    my $own = $own{$db};
    my ($ret, $out, $err) = $node->psql($db, plant_sql($own) . tables_sql($own, 6000),
        extra_params => [ '-U', 'mallory', '-v', 'ON_ERROR_STOP=1' ]);
    is($ret, 0, "mallory planted her recorder and tables in $db") or diag $err;
    for my $s ('public', $own)
    {
        ($ret, $out, $err) = $node->psql($db, overload_sql($own, $s),
            extra_params => [ '-U', 'mallory', '-v', 'ON_ERROR_STOP=1' ]);
        is($ret, 0, "mallory planted look-alikes in $db.$s") or diag $err;
        my ($made) = $err =~ /mallory planted (\d+) of/;
        cmp_ok($made // 0, '>', 500, "$db.$s holds many look-alikes ($err)");
    }
}
# The look-alike that finding 1 is about is among them.
is( sq('mallorydb', q{
        SELECT count(*) FROM pg_proc WHERE proname = 'pg_stat_statements'
           AND pronamespace = 'public'::regnamespace AND proargtypes[0] = 'text'::regtype}),
    '1', 'public.pg_stat_statements(text) is planted in mallorydb');

# The look-alikes work: called the way an unwary query calls them, they run.
{
    my ($ret, $out, $err) = $node->psql('mallorydb',
        q{SET search_path = public, pg_catalog;
          SELECT pg_catalog.count(*) FROM public.pg_stat_statements('t');
          SELECT now(); SELECT 1 FROM pg_stat_activity LIMIT 1;},
        extra_params => [ '-U', 'mallory' ]);
    like( sq('mallorydb',
            q{SELECT string_agg(DISTINCT what, ' ') FROM mallory.executed WHERE cur_user = 'mallory'}),
        qr/public\.now\(\).*public\.pg_stat_statements\(text\).*view public\.pg_stat_activity/s,
        'a look-alike records its execution');
}

# ---------------------------------------------------------------------------
# The state that must not change.

# The harness's own queries pin search_path: with public first, an unwary
# query of the superuser's would run her look-alikes, and that would be the
# harness's fault, not adr_ops's.
sub sq
{
    my ($db, $sql, @rest) = @_;
    return $node->safe_psql($db, "SET search_path = pg_catalog, pg_temp;\n$sql", @rest);
}

my $state_sql = q{
    SELECT format('super=%s createrole=%s createdb=%s bypassrls=%s replication=%s member_of=%s',
                  r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls, r.rolreplication,
                  coalesce((SELECT string_agg(g.rolname, ',' ORDER BY g.rolname)
                              FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                             WHERE m.member = r.oid), ''))
      FROM pg_roles r WHERE r.rolname = 'mallory';};

my $expected_state = sq('postgres', $state_sql);
is( $expected_state,
    'super=f createrole=f createdb=f bypassrls=f replication=f member_of=',
    'mallory starts with nothing');

# The logging collector writes the log (adr_log_lines() and the health
# check's recent_errors read it): her code's executions are found there,
# those rolled back included.
my $logfile = $node->data_dir . '/' . sq('postgres', 'SELECT pg_current_logfile()');
my $log_offset = 0;

sub pwned_files
{
    opendir(my $dh, $pwned) or die "opendir $pwned: $!";
    my @f = grep { !/^\./ } readdir($dh);
    closedir($dh);
    return join(' ', sort @f);
}

# Her code's executions since the last check, from the server log.
sub new_hits
{
    my $log = PostgreSQL::Test::Utils::slurp_file($logfile, $log_offset);
    $log_offset = -s $logfile;
    my @hits;
    while ($log =~
        /mallory_hit current_user=(\w+) session_user=(\w+) superuser=(\w) privileged=(\w) what=(.*)/g)
    {
        push @hits, { cur => $1, sess => $2, super => $3, priv => $4, what => $5 };
    }
    return @hits;
}

# In one connection per database: the rows of her "executed" table written
# by a privileged role (taken out once seen), her loot (emptied), and, in the
# launcher's database, her role's state.
sub db_findings
{
    my ($db) = @_;
    my $own = $own{$db};
    my @out = split /\n/, sq($db, qq{
        WITH d AS (DELETE FROM $own.executed WHERE cur_super OR cur_privileged
                   RETURNING what, cur_user, sess_user)
        SELECT coalesce(string_agg(format('%s ran as %s (session %s, stored in $db)', what, cur_user, sess_user),
                                   ' / ' ORDER BY what), '') FROM d;
        WITH d AS (DELETE FROM $own.loot RETURNING 1) SELECT count(*) FROM d;
        } . ($db eq 'postgres' ? $state_sql : ''));
    return @out;
}

# Assert that the path just exercised gave mallory nothing, then put
# everything back so that the next path starts clean.
sub nothing_gained
{
    my ($path) = @_;
    my @hits = new_hits();
    my @bad = grep { $_->{super} ne 'f' || $_->{priv} ne 'f' } @hits;
    my @fine = grep { $_->{super} eq 'f' && $_->{priv} eq 'f' } @hits;
    my %seen;
    $seen{"$_->{what} as $_->{cur} (session $_->{sess})"}++ for @fine;
    note("$path: her code ran without privileges: "
          . join(', ', map { "$_ x$seen{$_}" } sort keys %seen))
      if @fine;
    my ($bad_m, $loot_m) = db_findings('mallorydb');
    my ($bad_p, $loot_p, $state) = db_findings('postgres');
    is(join(' / ', (map { "$_->{what} ran as $_->{cur} (session $_->{sess}, superuser $_->{super})" } @bad),
            grep { $_ ne '' } $bad_m, $bad_p),
        '', "$path: her code never ran as a privileged role");
    is($state, $expected_state, "$path: mallory has no new attribute or membership");
    is(pwned_files(), '', "$path: her code wrote no file and ran no program");
    is("$loot_m $loot_p", '0 0', "$path: her code read no file");

    # Put back what an escalation changed.
    if ($state ne $expected_state)
    {
        sq('postgres', q{
            ALTER ROLE mallory NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS NOREPLICATION;
            REVOKE pg_execute_server_program, pg_read_server_files, pg_write_server_files, pg_read_all_data
              FROM mallory;});
        sq('postgres', 'GRANT pg_monitor TO mallory') if $expected_state =~ /pg_monitor/;
    }
    unlink glob("$pwned/*");
    return join(', ', map { "$_->{what} as $_->{cur}" } @fine);
}

nothing_gained('planting');

# As the owner of her database she sets its default search_path: her
# schemas before pg_catalog, for every session there, the superuser's
# psql, the run workers and the backup worker included.
$node->safe_psql('mallorydb',
    'ALTER DATABASE mallorydb SET search_path = public, mallory, pg_catalog, pg_temp',
    extra_params => [ '-U', 'mallory' ]);

# ---------------------------------------------------------------------------
# The tasks, through the launcher, in her database and in the launcher's.

# Options that make each maintenance task pick every table of hers.
my %task_options = (
    analyze        => '{"mod_pct": 0}',
    vacuum_analyze => '{"dead_pct": 0}',
    reindex        => '{"bloat_pct": 0}',
    integrity_check => '{"heapallindexed": true}',);

sub run_task
{
    my ($task, $db) = @_;
    my $options = $task_options{$task} // '{}';
    # adr_run_task() waits for the run itself, except for reindex in the
    # caller's own database, which it refuses to wait for.
    my $wait = ($task eq 'reindex' && $db eq 'postgres') ? 'false' : 'true';
    my $id = sq('postgres', qq{
        SELECT id FROM adr_ops.adr_run_task('$task', '$db', '$options', wait => $wait)});
    $node->poll_query_until('postgres',
        "SELECT status OPERATOR(pg_catalog.<>) 'running' FROM adr_ops.task_runs WHERE id OPERATOR(pg_catalog.=) $id")
      or die "task $task in $db did not end";
    return sq('postgres',
        "SELECT concat_ws('|', status, objects, detail) FROM adr_ops.task_runs WHERE id = $id");
}

# The dump of her database that the backup verification restores: her
# CHECK constraint, default and index expression come with it (taken before the
# job below: a dump of a running job's events does not restore).
my $dump = "$tmp/mallorydb.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('mallorydb'), '-f', $dump ],
    'pg_dump of mallorydb');
$node->safe_psql('postgres', "ALTER SYSTEM SET adr_ops.backup_path = '$dump'");
$node->reload;

# A loopback probe and a job, so that http_probe and job_reaper have work.
for my $db (sort keys %own)
{
    $node->safe_psql($db, map { s/STUB/$stub/gr } q{
        INSERT INTO adr_ops.probes (name, url) VALUES ('hostile', 'http://127.0.0.1:1/'),
            ('to_file', 'STUB/to-file'), ('to_outside', 'STUB/to-outside'), ('huge', 'STUB/huge');
        SELECT adr_ops.adr_job_submit('hostile', '{"a": 1}');
        SELECT adr_ops.adr_job_claim('hostile', 'w');});
}


# A path known to be exploitable until a fix lands: task => "finding N:
# fixed in branch X", so that the suite stays green meanwhile.  Empty: the
# trust issue's findings are all fixed.
my %todo = ();

# The maintenance tasks reach her table's code (else the above proves
# little), run as her under a security-restricted operation.
my %reaches = (
    analyze        => qr/statistics expression as mallory/,
    vacuum_analyze => qr/statistics expression as mallory/,
    reindex        => qr/partial index predicate as mallory/,
    # heapallindexed evaluates her index's expression and predicate
    integrity_check => qr/index (expression|predicate) as mallory/,);

# alert_delivery last: it posts what the tasks before it could not.
my @tasks = split /\n/, sq('postgres',
    q{SELECT task FROM adr_ops.adr_tasks() ORDER BY task = 'alert_delivery', task});
cmp_ok(scalar(@tasks), '>=', 9, 'adr_tasks() lists the tasks (' . join(' ', @tasks) . ')');

for my $db ('mallorydb', 'postgres')
{
    for my $task (@tasks)
    {
        # The launcher's database restores the same dump through
        # adr_verify_backup() below: one restore fewer.
        next if $task eq 'verify_backup' && $db eq 'postgres';
        subtest "task $task in $db" => sub {
            # pg_stat_statements is in public, which she can write, in both
            # databases.
            local $TODO = $todo{$task};
            my $result = run_task($task, $db);
            note("$task in $db: $result");
            like($result, qr/^(succeeded|failed)\|/, "$task in $db ran");
            my $ran = nothing_gained("task $task in $db");
            like($ran, $reaches{$task}, "$task ran her table's code, as mallory")
              if $reaches{$task};
        };
    }
}

# The maintenance tasks did reach her tables (else the above proves little).
like( sq('postgres', q{
        SELECT string_agg(DISTINCT task, ' ') FROM adr_ops.task_runs
         WHERE database = 'mallorydb' AND detail LIKE '%victim%'}),
    qr/analyze.*reindex.*vacuum_analyze/, 'analyze, reindex and vacuum_analyze processed her table');

subtest 'a scheduled run through the launcher' => sub {
    $node->safe_psql('postgres', q{
        SELECT adr_ops.adr_schedule('hostile', '1 seconds', 'statement_snapshot', 'mallorydb');});
    ok( $node->poll_query_until('postgres', q{
            SELECT count(*) > 0 FROM adr_ops.task_runs r JOIN adr_ops.schedules s ON s.id = r.schedule_id
             WHERE s.name = 'hostile' AND r.status <> 'running'}),
        'the schedule ran');
    $node->safe_psql('postgres', q{SELECT adr_ops.adr_unschedule('hostile')});
    nothing_gained('scheduled statement_snapshot in mallorydb');
};

# ---------------------------------------------------------------------------
# Every function a superuser runs, with the default search_path ("$user",
# public): in mallorydb public is hers.  Written as an unwary DBA writes
# them, apart from the count() and the few operators around them (her
# database puts public before pg_catalog).  A new function that a
# superuser or a worker runs gets a line here (a task needs none: the task
# list comes from adr_tasks()); a path that is open until a fix lands gets
# a line in %call_todo.

my @calls = (
    [ 'the read-only reports: version, host readings, tasks, maintenance status, backup status, auth failures, lock waits, connections, backend memory', q{
        SELECT pg_catalog.count(*) FROM adr_ops.adr_version();
        SELECT pg_catalog.count(*) FROM adr_ops.adr_host_disk();
        SELECT pg_catalog.count(*) FROM adr_ops.adr_host_memory();
        SELECT pg_catalog.count(*) FROM adr_ops.adr_host_load();
        SELECT pg_catalog.count(*) FROM adr_ops.adr_tasks();
        SELECT adr_ops.adr_next_run('@daily');
        SELECT pg_catalog.count(*) FROM adr_ops.adr_maintenance_status();
        SELECT pg_catalog.count(*) FROM adr_ops.adr_backup_status();
        SELECT pg_catalog.count(*) FROM adr_ops.adr_auth_failures();
        SELECT pg_catalog.count(*) FROM adr_ops.adr_lock_waits();
        SELECT pg_catalog.count(*) FROM adr_ops.adr_connection_summary();
        SELECT pg_catalog.count(*) FROM adr_ops.adr_backend_memory()} ],
    [ 'adr_log_lines',      q{SELECT pg_catalog.count(*) FROM adr_ops.adr_log_lines(pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour', NULL)} ],
    [ 'adr_health_check',   'SELECT pg_catalog.count(*) FROM adr_ops.adr_health_check()' ],
    [ 'adr_health_snapshot', 'SELECT adr_ops.adr_health_snapshot()' ],
    [ 'job functions', q{
        SELECT adr_ops.adr_job_submit('hostile2', '{"b": 2}');
        SELECT (adr_ops.adr_job_claim('hostile2', 'w')).id;
        SELECT adr_ops.adr_job_heartbeat(pg_catalog.max(id)) FROM adr_ops.processing_jobs;
        SELECT adr_ops.adr_job_checkpoint(pg_catalog.max(id), 'one') FROM adr_ops.processing_jobs;
        SELECT (adr_ops.adr_job_fail(pg_catalog.max(id), 'x')).status FROM adr_ops.processing_jobs;
        SELECT (adr_ops.adr_job_restart(pg_catalog.max(id), false, true)).status FROM adr_ops.processing_jobs;
        SELECT (adr_ops.adr_job_claim('hostile2', 'w')).id;
        SELECT (adr_ops.adr_job_complete(pg_catalog.max(id))).status FROM adr_ops.processing_jobs;
        SELECT adr_ops.adr_job_submit('hostile3', '{}');
        SELECT (adr_ops.adr_job_cancel(pg_catalog.max(id))).status FROM adr_ops.processing_jobs;
        SELECT * FROM adr_ops.adr_job_reap();
        SELECT pg_catalog.count(*) FROM adr_ops.adr_pipeline_status();} ],
    [ 'adr_snapshot_statements', 'SELECT adr_ops.adr_snapshot_statements()' ],
    [ 'adr_slow_queries', q{SELECT pg_catalog.count(*) FROM adr_ops.adr_slow_queries(0, 100);
                            SELECT pg_catalog.count(*) FROM adr_ops.adr_slow_queries(0, 100, since => '1 hour')} ],
    [ 'adr_query_trend', q{SELECT pg_catalog.count(*) FROM adr_ops.adr_query_trend(1, '1 hour')} ],
    [ 'capacity: adr_capacity_snapshot, adr_capacity_forecast, adr_recovery_readiness', q{
        SELECT adr_ops.adr_capacity_snapshot();
        SELECT pg_catalog.count(*) FROM adr_ops.adr_capacity_forecast();
        SELECT pg_catalog.count(*) FROM adr_ops.adr_recovery_readiness()} ],
    [ 'adr_weekly_review and adr_weekly_review_markdown', q{
        SELECT pg_catalog.count(*) FROM adr_ops.adr_weekly_review();
        SELECT pg_catalog.length(adr_ops.adr_weekly_review_markdown())} ],
    [ 'adr_report_html', 'SELECT pg_catalog.length(adr_ops.adr_report_html())' ],
    [ 'slow log and plans: adr_slow_log, adr_slow_log_counts, adr_collect_plans, adr_query_plans, adr_plan_changes, adr_plan_findings, adr_explain', q{
        SELECT pg_catalog.count(*) FROM adr_ops.adr_slow_log(NULL);
        SELECT pg_catalog.count(*) FROM adr_ops.adr_slow_log_counts();
        SELECT adr_ops.adr_collect_plans();
        SELECT pg_catalog.count(*) FROM adr_ops.adr_query_plans(1);
        SELECT pg_catalog.count(*) FROM adr_ops.adr_plan_changes();
        SELECT pg_catalog.count(*) FROM adr_ops.adr_plan_findings('{"Plan": {"Node Type": "Seq Scan", "Schema": "OWN", "Relation Name": "victim", "Filter": "(a = 1)", "Plan Rows": 100000, "Actual Rows": 1, "Actual Loops": 1}}');
        SELECT (adr_ops.adr_explain('SELECT 1')).id} ],
    [ 'adr_index_advice', 'SELECT pg_catalog.count(*) FROM adr_ops.adr_index_advice()' ],
    [ 'adr_cache_stats',  'SELECT pg_catalog.count(*) FROM adr_ops.adr_cache_stats()' ],
    [ 'adr_bloat_report estimate', q{SELECT pg_catalog.count(*) FROM adr_ops.adr_bloat_report(0, 'estimate')} ],
    [ 'adr_bloat_report sample',   q{SELECT pg_catalog.count(*) FROM adr_ops.adr_bloat_report(0, 'sample')} ],
    [ 'adr_bloat_report exact',    q{SELECT pg_catalog.count(*) FROM adr_ops.adr_bloat_report(0, 'exact')} ],
    [ 'adr_bloat of her table', q{
        SELECT pg_catalog.count(*) FROM adr_ops.adr_bloat('OWN.victim', 'estimate');
        SELECT pg_catalog.count(*) FROM adr_ops.adr_bloat('OWN.victim', 'sample');
        SELECT pg_catalog.count(*) FROM adr_ops.adr_bloat('OWN.victim', 'exact');
        SELECT pg_catalog.count(*) FROM adr_ops.adr_bloat('OWN.victim_expr', 'exact')} ],
    [ 'adr_http_check and adr_http_metric', q{
        SELECT ok FROM adr_ops.adr_http_check('http://127.0.0.1:1/', 1000);
        SELECT ok FROM adr_ops.adr_http_check('STUB/to-file', 5000);
        SELECT ok FROM adr_ops.adr_http_check('STUB/to-outside', 5000);
        SELECT ok FROM adr_ops.adr_http_check('STUB/huge', 5000);
        DO $$BEGIN PERFORM adr_ops.adr_http_metric('STUB/to-file', 'up');
                   EXCEPTION WHEN others THEN NULL; END$$;
        DO $$BEGIN PERFORM adr_ops.adr_http_metric('http://127.0.0.1:1/', 'up');
                   EXCEPTION WHEN connection_failure THEN NULL; END$$} ],
    [ 'adr_access_review', 'SELECT pg_catalog.count(*) FROM adr_ops.adr_access_review()' ],
    [ 'adr_security_audit', 'SELECT pg_catalog.count(*) FROM adr_ops.adr_security_audit()' ],
    [ 'adr_evidence_snapshot', q{SELECT adr_ops.adr_evidence_snapshot('hostile')} ],
    [ 'adr_verify_integrity of her table and index, heapallindexed', q{
        SELECT pg_catalog.count(*) FROM adr_ops.adr_verify_integrity('OWN.victim', true);
        SELECT pg_catalog.count(*) FROM adr_ops.adr_verify_integrity('OWN.victim_expr', true)} ],
    [ 'adr_lock_role', q{SELECT adr_ops.adr_lock_role('adr_victim'); ALTER ROLE adr_victim LOGIN} ]);

# Only in the launcher's database.
my @launcher_calls = (
    [ 'adr_schedule and adr_unschedule', q{
        SELECT adr_ops.adr_schedule('hostile', '@daily', 'analyze', 'mallorydb');
        SELECT adr_ops.adr_unschedule('hostile')} ],
    [ 'adr_block_ip and adr_unblock_ip', q{
        SELECT adr_ops.adr_block_ip('192.0.2.0/24', 'hostile', interval '1 hour');
        SELECT pg_catalog.count(*) FROM adr_ops.blocked_clients;
        SELECT adr_ops.adr_unblock_ip('192.0.2.0/24')} ],
    [ 'adr_maintenance_mode', q{
        SELECT adr_ops.adr_maintenance_mode(true, 'hostile', false);
        SELECT adr_ops.adr_maintenance_mode(false)} ],
    [ 'adr_verify_backup of her dump', qq{SELECT status FROM adr_ops.adr_verify_backup('$dump')} ],);

# As %todo, for the calls above (by name).
my %call_todo = ();

# A refusal is a right answer too: with her look-alike beside
# pg_stat_statements' own function, adr_ops will not call either.
my $pgss_refused = qr/shares its name with a function that is not part of the extension/;
my %may_refuse = (
    'adr_snapshot_statements' => $pgss_refused,
    'adr_slow_queries'        => $pgss_refused,);

for my $db ('mallorydb', 'postgres')
{
    for my $call (@calls, $db eq 'postgres' ? @launcher_calls : ())
    {
        my ($name, $sql) = @$call;
        $sql =~ s/OWN/$own{$db}/g;
        $sql =~ s/STUB/$stub/g;
        subtest "$name in $db as superuser" => sub {
            local $TODO = $call_todo{$name};
            my ($ret, $out, $err) = $node->psql($db, $sql, extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
            ok($ret == 0 || ($may_refuse{$name} && $err =~ $may_refuse{$name}),
                $may_refuse{$name} ? "$name in $db ran or refused" : "$name in $db ran") or diag $err;
            nothing_gained("$name in $db");
        };
    }
}

# ---------------------------------------------------------------------------
# Data-quality checks: a check runs as the role that created it.  Mallory
# may define checks: on her own table (its code then runs as her), never on
# a table she cannot read, never a custom (SQL) one; the names she picks are
# quoted, her parameters are literals; her check on a table whose privilege
# she lost fails clearly and reads nothing.  Then the superuser, the
# validation and the quality_check task run them.
my $quality_add = 'adr_ops.adr_quality_check_add(text, regclass, text, jsonb, double precision, '
  . 'double precision, text, boolean, boolean)';
for my $db ('mallorydb', 'postgres')
{
    my $own = $own{$db};
    subtest "quality checks in $db: mallory's own, run as her" => sub {
        sq($db, qq{
            GRANT USAGE ON SCHEMA adr_ops TO mallory;
            GRANT EXECUTE ON FUNCTION $quality_add, adr_ops.adr_quality_check_drop(text),
                                      adr_ops.adr_dataset_validate(text, interval) TO mallory;
            CREATE SCHEMA adr_vault;
            GRANT USAGE ON SCHEMA adr_vault TO mallory;
            CREATE TABLE adr_vault.secret (id integer, secret text);
            INSERT INTO adr_vault.secret VALUES (1, 'adr-secret-4a1d7c');
            CREATE TABLE adr_vault.shared (id integer, v text);
            INSERT INTO adr_vault.shared VALUES (1, 'adr-secret-4a1d7c'), (2, 'adr-secret-4a1d7c');
            GRANT SELECT ON adr_vault.shared TO mallory;
            SELECT adr_ops.adr_quality_check_add('dba_rows', 'adr_vault.secret', 'row_count');});
        my ($ret, $out, $err) = $node->psql($db, qq{
            SET client_min_messages = warning;
            CREATE TABLE $own."we;ird""tab" ("co""l; DROP TABLE adr_vault.secret; --" text);
            INSERT INTO $own."we;ird""tab" VALUES ('a'), ('b');
            SELECT adr_ops.adr_quality_check_add('m_rows', '$own.victim', 'row_count', '{"min": 1}', dataset => 'm');
            SELECT adr_ops.adr_quality_check_add('m_range', '$own.victim', 'range',
                                                 '{"column": "d", "min": 5, "max": 100}', dataset => 'm');
            SELECT adr_ops.adr_quality_check_add('m_values', '$own.victim', 'accepted_values',
                '{"column": "pad", "values": ["a''); DROP TABLE adr_vault.secret; --"]}', dataset => 'm');
            SELECT adr_ops.adr_quality_check_add('m"; DROP TABLE adr_vault.secret; --', '$own."we;ird""tab"', 'regex',
                '{"column": "co\\"l; DROP TABLE adr_vault.secret; --", "pattern": "^[ab]\$|''; DROP TABLE adr_vault.secret; --"}', dataset => 'm');
            SELECT adr_ops.adr_quality_check_add('m_shared', 'adr_vault.shared', 'duplicate_count',
                                                 '{"column": "v"}', dataset => 'm');},
            extra_params => [ '-U', 'mallory', '-v', 'ON_ERROR_STOP=1' ]);
        is($ret, 0, "mallory defined checks on what she may read in $db") or diag $err;

        my @refused = (
            [ 'a check on a table she cannot read',
              q{SELECT adr_ops.adr_quality_check_add('m_secret', 'adr_vault.secret', 'null_fraction', '{"column": "secret"}')},
              qr/permission denied for relation adr_vault\.secret/ ],
            [ 'an orphan check against a table she cannot read',
              qq{SELECT adr_ops.adr_quality_check_add('m_ref', '$own.victim', 'referential',
                     '{"column": "id", "references": "adr_vault.secret", "referenced_columns": ["id"]}')},
              qr/permission denied for relation adr_vault\.secret/ ],
            [ 'a custom check', q{SELECT adr_ops.adr_quality_check_add('m_custom', NULL, 'custom',
                     '{"sql": "SELECT count(*) FROM adr_vault.secret"}')},
              qr/permission denied to create a custom quality check/ ],
            [ "dropping the superuser's check", q{SELECT adr_ops.adr_quality_check_drop('dba_rows')},
              qr/must be a member of role/ ],
            [ 'reading the samples', q{SELECT sample FROM adr_ops.quality_results},
              qr/permission denied/ ],
            [ 'writing a check directly', q{UPDATE adr_ops.quality_checks SET owner = 'postgres'},
              qr/permission denied/ ]);
        for my $r (@refused)
        {
            my ($what, $sql, $re) = @$r;
            ($ret, $out, $err) = $node->psql($db, $sql, extra_params => [ '-U', 'mallory' ]);
            like($err, $re, "$db: mallory is refused $what");
        }
        nothing_gained("quality check definitions in $db");

        # She loses what one of her checks reads.
        sq($db, 'REVOKE SELECT ON adr_vault.shared FROM mallory');
        ($ret, $out, $err) = $node->psql($db, q{SELECT pg_catalog.count(*) FROM adr_ops.adr_quality_run()},
            extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
        is($ret, 0, "adr_quality_run() as superuser in $db") or diag $err;
        is( sq($db, q{SELECT string_agg(check_name || ' ' || status, ', ' ORDER BY check_name)
                        FROM adr_ops.quality_results WHERE detail LIKE '%can no longer read%'}),
            'm_shared UNKNOWN', "$db: her check on a table she lost fails clearly");
        is( sq($db, q{SELECT count(*) FROM adr_ops.quality_results
                       WHERE sample::text LIKE '%adr-secret%' OR detail LIKE '%adr-secret%'}),
            '0', "$db: nothing read through a check that its owner could not read");
        is( sq($db, q{SELECT string_agg(check_name || ' ' || status, ', ' ORDER BY check_name COLLATE "C")
                        FROM adr_ops.quality_results WHERE check_name LIKE 'm%' AND status <> 'UNKNOWN'}),
            'm"; DROP TABLE adr_vault.secret; -- OK, m_range CRITICAL, m_rows OK, m_values CRITICAL',
            "$db: her checks ran, her quoting games measured as data");
        is(sq($db, q{SELECT count(*) FROM adr_vault.secret}), '1', "$db: the superuser's table is intact");
        my $ran = nothing_gained("adr_quality_run in $db");
        like($ran, qr/row security policy as mallory/, "$db: the scan ran her table's code, as mallory");

        ($ret, $out, $err) = $node->psql($db, q{SELECT verdict FROM adr_ops.adr_dataset_validate('m')},
            extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
        is($out, 'fail', "adr_dataset_validate as superuser in $db") or diag $err;
        ($ret, $out, $err) = $node->psql($db, q{SELECT verdict FROM adr_ops.adr_dataset_validate('m')},
            extra_params => [ '-U', 'mallory', '-v', 'ON_ERROR_STOP=1' ]);
        is($out, 'fail', "adr_dataset_validate as mallory in $db") or diag $err;
        nothing_gained("adr_dataset_validate in $db");

        my $result = run_task('quality_check', $db);
        like($result, qr/^succeeded\|/, "quality_check task in $db ran: $result");
        nothing_gained("task quality_check in $db with her checks");
        sq($db, q{DELETE FROM adr_ops.quality_checks; DROP SCHEMA adr_vault CASCADE;});
    };
}

# ---------------------------------------------------------------------------
# Mallory in pg_monitor: every function pg_monitor may call, called by her
# with her own search_path, then the superuser's health check again.

sq('postgres', 'GRANT pg_monitor TO mallory');
$expected_state = sq('postgres', $state_sql);
like($expected_state, qr/member_of=pg_monitor$/, 'mallory is in pg_monitor now');

for my $db ('mallorydb', 'postgres')
{
    subtest "every pg_monitor function in $db, as mallory" => sub {
        # Each called with NULLs for the arguments it has no default for.
        my @calls = split /\n/, sq($db, q{
            SELECT format('%s.%I(%s)', p.pronamespace::regnamespace, p.proname,
                          (SELECT coalesce(string_agg(format('NULL::%s', format_type(t, NULL)), ', ' ORDER BY o), '')
                             FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, o)
                            WHERE o <= p.pronargs - p.pronargdefaults))
              FROM pg_proc p
             WHERE p.pronamespace = 'adr_ops'::regnamespace AND p.prokind = 'f'
               AND has_function_privilege('pg_monitor', p.oid, 'EXECUTE')
               AND p.prorettype NOT IN ('trigger'::regtype, 'internal'::regtype)
             ORDER BY 1});
        cmp_ok(scalar(@calls), '>', 15, "pg_monitor may call " . scalar(@calls) . " functions in $db");
        my $sql = "SET search_path = public, $own{$db};\n";
        $sql .= "DO \$\$BEGIN PERFORM $_; EXCEPTION WHEN others THEN "
          . "RAISE WARNING '% failed: %', \$q\$$_\$q\$, SQLERRM; END\$\$;\n"
          for @calls;
        my ($ret, $out, $err) = $node->psql($db, $sql, extra_params => [ '-U', 'mallory' ]);
        is($ret, 0, "mallory called them in $db");
        note($err) if $err;
        nothing_gained("pg_monitor functions in $db as mallory");
    };
    subtest "the health check in $db as superuser, mallory in pg_monitor" => sub {
        my ($ret, $out, $err) = $node->psql($db, 'SELECT pg_catalog.count(*) FROM adr_ops.adr_health_check()');
        is($ret, 0, "the health check ran in $db") or diag $err;
        nothing_gained("health check in $db, mallory in pg_monitor");
    };
}

# Her index expression raises, during a verification, an error that looks
# like amcheck's (its SQLSTATE, an index and a block) and carries a marker:
# the result records only the SQLSTATE, and nothing pg_monitor reads, the
# health row included, holds her text.
subtest 'her index expression raises a look-alike of a corruption report' => sub {
    my ($ret, $out, $err) = $node->psql('mallorydb', q{
        SET search_path = pg_catalog, pg_temp;
        CREATE TABLE mallory.liar (x integer);
        CREATE TABLE mallory.flag (raise boolean);
        CREATE FUNCTION mallory.liar_key(x integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE
            AS $f$BEGIN
                 IF EXISTS (SELECT FROM mallory.flag) THEN
                     RAISE EXCEPTION USING ERRCODE = 'XX002',
                         MESSAGE = 'index "victim_id" contains unexpected zero page at block 7 adr-fake-77';
                 END IF;
                 RETURN x;
               END$f$;
        INSERT INTO mallory.liar SELECT pg_catalog.generate_series(1, 10);
        CREATE INDEX liar_idx ON mallory.liar (mallory.liar_key(x));
        INSERT INTO mallory.flag VALUES (true);},
        extra_params => [ '-U', 'mallory', '-v', 'ON_ERROR_STOP=1' ]);
    is($ret, 0, 'mallory made her liar') or diag $err;
    is( sq('mallorydb', q{
            SELECT status || '|' || detail FROM adr_ops.adr_verify_integrity('mallory.liar_idx', true)}),
        'error|error XX002 (its message is in the server log)',
        'the verification records her error by its SQLSTATE only');
    my $row = sq('mallorydb', q{
        SELECT status || '|' || detail FROM adr_ops.adr_health_check() WHERE check_name = 'data_integrity'});
    like($row, qr/^WARNING\|.*could not verify mallory\.liar_idx \(error XX002/, 'the health row: could not verify');
    unlike($row, qr/adr-fake-77|block 7/, 'the health row holds none of her text');
    is((pg_monitor_sees('mallorydb', 'adr-fake-77'))[0], '', 'no table or view that pg_monitor reads holds her text');
    nothing_gained('adr_verify_integrity of her liar');
};

# Her index expression raises a timeout's SQLSTATE (lock_not_available)
# with her own text: only the server's own timeouts keep their message.
subtest 'her index expression raises a look-alike of a lock timeout' => sub {
    my ($ret, $out, $err) = $node->psql('mallorydb', q{
        SET search_path = pg_catalog, pg_temp;
        CREATE TABLE mallory.waiter (x integer);
        CREATE FUNCTION mallory.waiter_key(x integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE
            AS $f$BEGIN
                 IF EXISTS (SELECT FROM mallory.flag) THEN
                     RAISE EXCEPTION USING ERRCODE = '55P03',
                         MESSAGE = 'table public.victim is corrupt adr-fake-78';
                 END IF;
                 RETURN x;
               END$f$;
        DELETE FROM mallory.flag;
        INSERT INTO mallory.waiter SELECT pg_catalog.generate_series(1, 10);
        CREATE INDEX waiter_idx ON mallory.waiter (mallory.waiter_key(x));
        INSERT INTO mallory.flag VALUES (true);},
        extra_params => [ '-U', 'mallory', '-v', 'ON_ERROR_STOP=1' ]);
    is($ret, 0, 'mallory made her waiter') or diag $err;
    is( sq('mallorydb', q{
            SELECT status || '|' || detail FROM adr_ops.adr_verify_integrity('mallory.waiter_idx', true)}),
        'error|error 55P03 (its message is in the server log)',
        'the verification records her timeout look-alike by its SQLSTATE only');
    is((pg_monitor_sees('mallorydb', 'adr-fake-78'))[0], '', 'no table or view that pg_monitor reads holds her text');
    nothing_gained('adr_verify_integrity of her timeout look-alike');
};

# What pg_monitor reads, and what the webhook received, hold no file's
# content: not the secret file her code tried to read, not /etc/passwd that
# the stub's redirect pointed at.
sub pg_monitor_sees
{
    my ($db, @needles) = @_;
    my $needles = join(',', map { "'$_'" } @needles);
    my %sees = map { split /\|/, $_, 2 } split /\n/, sq($db, qq{
        WITH t AS (
            SELECT c.oid::regclass::text AS rel,
                   query_to_xml(format('SELECT * FROM %s', c.oid::regclass), false, false, '')::text AS x
              FROM pg_class c
             WHERE c.relnamespace = 'adr_ops'::regnamespace AND c.relkind IN ('r', 'v')
               AND has_table_privilege('pg_monitor', c.oid, 'SELECT'))
        SELECT n.needle || '|' || coalesce(string_agg(t.rel, ' ' ORDER BY t.rel)
                                              FILTER (WHERE strpos(t.x, n.needle) > 0), '')
          FROM unnest(ARRAY[$needles]) n(needle) CROSS JOIN t
         GROUP BY n.needle});
    return map { $sees{$_} // '' } @needles;
}

my $hook_log = -f "$stub_dir/hook.log" ? PostgreSQL::Test::Utils::slurp_file("$stub_dir/hook.log") : '';
ok($hook_log ne '', 'the webhook received alerts');
my @needles = ('adr-secret-4a1d7c', 'root:x:0:0');
for my $db (sort keys %own)
{
    my @sees = pg_monitor_sees($db, @needles);
    is($sees[$_], '', "no table or view that pg_monitor reads in $db holds \"$needles[$_]\"") for 0 .. $#needles;
}
unlike($hook_log, qr/\Q$_\E/, "the webhook's posts hold no \"$_\"") for @needles;

# Another session's failing statement carries a secret into the server log;
# the health check must not copy its text where pg_monitor, and so mallory,
# reads it.
subtest 'log text stays out of what pg_monitor reads' => sub {
    my ($ret, $out, $err) = $node->psql('postgres', q{SELECT 'adr-logsecret-9f2e'::integer});
    like($err, qr/adr-logsecret-9f2e/, 'a statement failed with a secret in its message');
    for my $db (sort keys %own)
    {
        sq($db, 'SELECT adr_ops.adr_health_snapshot()');
        is((pg_monitor_sees($db, 'adr-logsecret-9f2e'))[0], '',
            "no table or view that pg_monitor reads in $db holds the failing statement's text");
    }
};

# ---------------------------------------------------------------------------
# The install and update scripts, run by the superuser in her database with
# her look-alikes in place (last: this drops adr_ops there).

subtest 'CREATE EXTENSION adr_ops and ALTER EXTENSION adr_ops UPDATE in her database' => sub {
    my ($ret, $out, $err) = $node->psql('mallorydb', q{
        DROP EXTENSION adr_ops CASCADE;
        CREATE EXTENSION adr_ops VERSION '1.0';
        ALTER EXTENSION adr_ops UPDATE;
        SELECT extversion FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'adr_ops';},
        extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
    is($ret, 0, 'the 1.0 install script and the update to 1.1 ran') or diag $err;
    like($out, qr/1\.1$/, 'adr_ops is at 1.1 in her database');
    nothing_gained('install and update scripts in mallorydb');
};

$node->stop;
done_testing();
