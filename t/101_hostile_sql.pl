# The hostile-tenant suite, SQL paths: mallory owns a database (and so its
# public schema, where pg_stat_statements is installed), may create schemas
# in it and is a member of pg_monitor.  She plants overloads of the
# functions and operators adr_ops's SQL calls, each of which would make her
# a superuser if it ever ran as one, and fails statements that carry a
# secret.  Then the statement_snapshot task, adr_slow_queries() and
# adr_evidence_snapshot() run as superuser, and the health snapshot stores
# recent_errors: her code never runs, she gains nothing, and nothing that
# pg_monitor reads holds her statement's text.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('hostile_sql');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_stat_statements,adr_ops'
logging_collector = on
log_destination = 'stderr'
lc_messages = 'C'
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE ROLE mallory LOGIN IN ROLE pg_monitor;
    CREATE ROLE watcher LOGIN IN ROLE pg_monitor;
    CREATE DATABASE mdb OWNER mallory;
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;});
$node->safe_psql('mdb', q{
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;
    CREATE EXTENSION pg_stat_statements SCHEMA public;});

# What mallory's code does when it runs: count itself (a sequence is not
# rolled back with the statement that failed), then try to escalate.
$node->safe_psql('mdb', q{
    CREATE SEQUENCE public.mallory_ran;
    GRANT USAGE, UPDATE ON SEQUENCE public.mallory_ran TO PUBLIC;
    CREATE FUNCTION public.mallory_escalate() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM nextval('public.mallory_ran');
        BEGIN
            EXECUTE 'ALTER ROLE mallory SUPERUSER';
            EXECUTE 'GRANT pg_read_server_files, pg_execute_server_program TO mallory';
        EXCEPTION WHEN insufficient_privilege THEN NULL;
        END;
    END $$;
    GRANT EXECUTE ON FUNCTION public.mallory_escalate() TO PUBLIC;},
    extra_params => [ '-U', 'mallory' ]);

# usage: gained() -- "superuser|memberships|times her code ran"
sub gained
{
    return $node->safe_psql('mdb', q{
        SELECT r.rolsuper || '|' ||
               coalesce((SELECT string_agg(g.rolname, ',' ORDER BY g.rolname)
                           FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                          WHERE m.member = r.oid), '') || '|' ||
               (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.mallory_ran)
          FROM pg_roles r WHERE r.rolname = 'mallory'});
}

# usage: exercise($label) -- run as superuser (and as pg_monitor members)
# everything that reads pg_stat_statements; returns what each said.
sub exercise
{
    my ($label) = @_;
    my %said;
    $said{task} = $node->safe_psql('postgres',
        q{SELECT status || '|' || coalesce(detail, '') FROM adr_ops.adr_run_task('statement_snapshot', 'mdb')});
    my ($ret, $out, $err) = $node->psql('mdb', 'SELECT count(*) FROM adr_ops.adr_slow_queries(0, 100)');
    $said{slow} = $ret == 0 ? "rows $out" : $err;
    ($ret, $out, $err) = $node->psql('mdb',
        "SELECT count(*) FROM adr_ops.adr_slow_queries(0, 100, since => '1 hour')");
    $said{since} = $ret == 0 ? "rows $out" : $err;
    $node->safe_psql('mdb', qq{SELECT adr_ops.adr_evidence_snapshot('$label')});
    $said{evidence} = $node->safe_psql('mdb',
        qq{SELECT e.statements::text FROM adr_ops.evidence e WHERE e.label = '$label'});
    for my $role (qw(watcher mallory))
    {
        ($ret, $out, $err) = $node->psql('mdb', 'SELECT count(*) FROM adr_ops.adr_slow_queries(0, 100)',
            extra_params => [ '-U', $role ]);
        $said{$role} = $ret == 0 ? "rows $out" : $err;
    }
    return %said;
}

# ---------- 1. the overload of the report: pg_stat_statements(text) ----------

$node->safe_psql('mdb', q{
    CREATE FUNCTION public.pg_stat_statements(showtext text)
    RETURNS SETOF public.pg_stat_statements LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM public.mallory_escalate();
        RETURN QUERY SELECT * FROM public.pg_stat_statements;
    END $$;},
    extra_params => [ '-U', 'mallory' ]);

my %said = exercise('text overload');
like($said{task}, qr/^failed\|.*shares its name with a function that is not part of the extension/,
    'the snapshot task refuses to call pg_stat_statements next to an overload');
like($said{slow}, qr/ERROR:  function public\.pg_stat_statements\(boolean\) of extension pg_stat_statements shares its name/,
    'adr_slow_queries refuses, naming the function');
like($said{slow}, qr/DETAIL:  The other function is public\.pg_stat_statements\(text\), owned by mallory/,
    'and the overload and its owner');
like($said{since}, qr/shares its name|no statement snapshot/, 'adr_slow_queries(since) refuses too');
like($said{evidence}, qr/shares its name/, 'the evidence records why it has no statements');
like($said{$_}, qr/shares its name/, "adr_slow_queries as $_ (pg_monitor) refuses") for qw(watcher mallory);
is(gained(), 'false|pg_monitor|0', 'her text overload never ran and she gained nothing');

# ---------- every other overload and operator she can plant ----------

# Argument variants of pg_stat_statements, in public and in a schema of her
# own; an unknown-typed one PostgreSQL does not let her create.
my ($ret, $out, $err) = $node->psql('mdb', q{
    CREATE FUNCTION public.pg_stat_statements(showtext unknown)
    RETURNS SETOF public.pg_stat_statements LANGUAGE sql AS 'SELECT * FROM public.pg_stat_statements';},
    extra_params => [ '-U', 'mallory' ]);
isnt($ret, 0, 'a function taking unknown cannot be created') or diag $out;

$node->safe_psql('mdb', q{
    CREATE SCHEMA mallory;
    DO $plant$
    DECLARE
        sig text;
    BEGIN
        FOREACH sig IN ARRAY ARRAY[
            'public.pg_stat_statements(showtext varchar)',
            'public.pg_stat_statements(showtext name)',
            'public.pg_stat_statements(showtext "char")',
            'public.pg_stat_statements(showtext anyelement)',
            'public.pg_stat_statements(showtext boolean, extra integer DEFAULT 0)',
            'public.pg_stat_statements(VARIADIC showtext boolean[])',
            'public.pg_stat_statements()',
            'public.pg_stat_statements_info(showtext text)',
            'mallory.pg_stat_statements(showtext boolean)',
            'mallory.pg_stat_statements(showtext text)'] LOOP
            EXECUTE format($f$
                CREATE FUNCTION %s RETURNS SETOF public.pg_stat_statements LANGUAGE plpgsql AS $b$
                BEGIN
                    PERFORM public.mallory_escalate();
                    RETURN QUERY SELECT * FROM public.pg_stat_statements;
                END $b$$f$, sig);
        END LOOP;
    END
    $plant$;},
    extra_params => [ '-U', 'mallory' ]);

# Operators the queries over pg_stat_statements could pick, in public and
# in her schema, for the types of its columns and of adr_ops's tables.
$node->safe_psql('mdb', q{
    DO $plant$
    DECLARE
        op text;
        l text;
        r text;
        n integer := 0;
        nsp text;
    BEGIN
        FOREACH nsp IN ARRAY ARRAY['public', 'mallory'] LOOP
            FOREACH op IN ARRAY ARRAY['=', '<>', '<', '>', '<=', '>=', '+', '-', '*', '/'] LOOP
                FOREACH l IN ARRAY ARRAY['bigint', 'double precision', 'oid', 'integer', 'numeric',
                                         'boolean', 'timestamptz', 'text', 'name'] LOOP
                    FOREACH r IN ARRAY ARRAY[l, 'bigint', 'double precision', 'integer'] LOOP
                        CONTINUE WHEN op IN ('+', '-', '*', '/')
                                  AND l IN ('oid', 'boolean', 'timestamptz', 'text', 'name');
                        n := n + 1;
                        EXECUTE format('CREATE FUNCTION %I.mallory_op_%s(%s, %s) RETURNS %s LANGUAGE plpgsql AS '
                                       '$b$BEGIN PERFORM public.mallory_escalate(); RETURN NULL; END$b$',
                                       nsp, n, l, r,
                                       CASE WHEN op IN ('+', '-', '*', '/') THEN l ELSE 'boolean' END);
                        BEGIN
                            EXECUTE format('CREATE OPERATOR %I.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %I.mallory_op_%s)',
                                           nsp, op, l, r, nsp, n);
                        EXCEPTION WHEN duplicate_function THEN NULL;
                        END;
                    END LOOP;
                END LOOP;
            END LOOP;
        END LOOP;
    END
    $plant$;
    ALTER ROLE mallory SET search_path = mallory, public;},
    extra_params => [ '-U', 'mallory' ]);
ok( $node->safe_psql('mdb', q{
        SELECT count(*) > 100 FROM pg_operator o JOIN pg_roles r ON r.oid = o.oprowner
         WHERE r.rolname = 'mallory'}),
    'her operators are in place');

%said = exercise('every overload');
like($said{task}, qr/^failed\|.*shares its name/, 'the snapshot task still refuses');
like($said{slow}, qr/shares its name/, 'adr_slow_queries still refuses');
like($said{evidence}, qr/shares its name/, 'the evidence still says why');
is(gained(), 'false|pg_monitor|0', 'none of her overloads or operators ran and she gained nothing');

# Even if one is created between the check and the call (a race), the call
# names the extension's function with exactly typed arguments: an overload
# with a default or a VARIADIC one makes it fail or loses, never runs.
$node->psql('mdb', q{
    DO $$
    BEGIN
        EXECUTE 'SELECT count(*) FROM ' ||
                adr_ops._extension_call('public.pg_stat_statements(boolean)'::regprocedure, '{false}');
    EXCEPTION WHEN ambiguous_function THEN NULL;
    END $$;});
is(gained(), 'false|pg_monitor|0', 'the exactly typed call never reaches her overloads');

# ---------- she removes her overloads of pg_stat_statements ----------

$node->safe_psql('mdb', q{
    DO $$
    DECLARE
        f regprocedure;
    BEGIN
        FOR f IN SELECT p.oid FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
                  WHERE r.rolname = 'mallory' AND p.proname LIKE 'pg_stat_statements%' LOOP
            EXECUTE format('DROP FUNCTION %s', f);
        END LOOP;
    END $$;},
    extra_params => [ '-U', 'mallory' ]);
$node->safe_psql('mdb', q{SELECT 1 AS warm_up_the_counters});
%said = exercise('operators only');
like($said{task}, qr/^succeeded\|stored \d+ changed statement entries$/,
    'with her operators still there the snapshot task runs');
like($said{slow}, qr/^rows [1-9]/, 'adr_slow_queries reads the statements');
like($said{since}, qr/^rows \d+$/, 'adr_slow_queries(since) reads them against the snapshot');
like($said{evidence}, qr/^\[\{.*"queryid"/, 'the evidence holds the statements');
like($said{$_}, qr/^rows [1-9]/, "adr_slow_queries as $_ (pg_monitor) reads them") for qw(watcher mallory);
is(gained(), 'false|pg_monitor|0', 'her operators never ran and she gained nothing');

# An extension's function is taken by membership and ownership only.
($ret, $out, $err) = $node->psql('mdb',
    q{SELECT adr_ops._extension_function('pg_stat_statements', 'pg_stat_statements', '{text}')});
like($err, qr/ERROR:  extension pg_stat_statements has no function pg_stat_statements\(text\) owned by a superuser/,
    'a function of that name that is not a member is not found');

# ---------- 2. recent_errors copies no message text ----------

# Her failing statements carry a secret (the first in its text, the second
# in its message, the last error logged); the threshold makes the check alert.
$node->safe_psql('mdb', q{
    UPDATE adr_ops.health_thresholds SET warn = 0, crit = 1000 WHERE check_name = 'recent_errors'});
for my $i (1 .. 3)
{
    $node->psql('mdb', q{SELECT 1/0 AS "mallory-secret-7731"}, extra_params => [ '-U', 'mallory' ]);
    $node->psql('mdb', q{SELECT 'mallory-secret-7731'::int}, extra_params => [ '-U', 'mallory' ]);
}
ok( $node->poll_query_until('mdb', q{
        SELECT count(*) >= 3 FROM adr_ops.adr_log_lines(NULL, '{ERROR}')
         WHERE message LIKE '%mallory-secret-7731%'}),
    'her errors are in the server log, for those who may read it');
$node->safe_psql('mdb', 'SELECT adr_ops.adr_health_snapshot()');
like( $node->safe_psql('mdb', q{
        SELECT status || '|' || detail FROM adr_ops.health_history
         WHERE check_name = 'recent_errors' ORDER BY taken_at DESC LIMIT 1}),
    qr/^WARNING\|\d+ ERROR, \d+ FATAL, 0 PANIC in the last hour of the server log$/,
    'recent_errors is stored with counts');
is( $node->safe_psql('mdb', q{
        SELECT count(*) FROM adr_ops.alerts WHERE check_name = 'recent_errors' AND to_status = 'WARNING'}),
    '1', 'and raises an alert');
is( $node->safe_psql('mdb', q{
        SELECT count(*) FROM adr_ops.health_history h WHERE h::text LIKE '%secret%'},
        extra_params => [ '-U', 'watcher' ]),
    '0', 'no health_history row that pg_monitor reads holds her text');
is( $node->safe_psql('mdb', q{
        SELECT count(*) FROM adr_ops.alerts a WHERE a::text LIKE '%secret%'},
        extra_params => [ '-U', 'watcher' ]),
    '0', 'no alert holds it');
is( $node->safe_psql('mdb', q{
        SELECT count(*) FROM adr_ops.alerts a WHERE adr_ops._alert_payload(a) LIKE '%secret%'}),
    '0', 'no webhook payload holds it');
is( $node->safe_psql('mdb', q{
        SELECT count(*) FROM adr_ops.adr_health_check() c WHERE c::text LIKE '%secret%'}),
    '0', 'nor does the report a superuser reads');

# A task's run detail (task_runs, read by pg_monitor) names the object and
# the SQLSTATE of its error, not the message: an index expression that
# fails on a row would put the row's value there.  Her function fails only
# where her session's setting is missing, as in the task's worker.
$node->safe_psql('mdb', q{
    SET app.safe = 'on';
    CREATE FUNCTION public.leaky(t text) RETURNS integer LANGUAGE sql IMMUTABLE
        AS $$SELECT CASE WHEN current_setting('app.safe', true) = 'on' THEN 0 ELSE t::integer END$$;
    CREATE TABLE public.leaky_table (v text);
    INSERT INTO public.leaky_table SELECT 'row-secret-5520' FROM generate_series(1, 100);
    CREATE INDEX leaky_index ON public.leaky_table (public.leaky(v));},
    extra_params => [ '-U', 'mallory' ]);
my $run = $node->safe_psql('postgres', q{
    SELECT status || '|' || detail
      FROM adr_ops.adr_run_task('analyze', 'mdb', '{"tables": ["public.leaky_table"]}')});
like($run, qr/^failed\|analyzed none; failed: public\.leaky_table: error 22P02 \(its message is in the server log\)/,
    'a failed object is named with its SQLSTATE');
unlike($run, qr/secret/, 'the run detail holds no row data');

# Her code may choose the SQLSTATE of a lock or a timeout too: only the
# server's own messages about the command are copied, whatever the code.
$node->safe_psql('mdb', q{
    SET app.safe = 'on';
    CREATE FUNCTION public.loud(t text) RETURNS integer LANGUAGE plpgsql IMMUTABLE
        AS $$BEGIN IF current_setting('app.safe', true) = 'on' THEN RETURN 0; END IF;
                   RAISE EXCEPTION USING ERRCODE = '55P03', MESSAGE = 'lock secret ' || t; END$$;
    CREATE TABLE public.loud_table (v text);
    INSERT INTO public.loud_table SELECT 'row-secret-5521' FROM generate_series(1, 100);
    CREATE INDEX loud_index ON public.loud_table (public.loud(v));},
    extra_params => [ '-U', 'mallory' ]);
$run = $node->safe_psql('postgres', q{
    SELECT status || '|' || detail
      FROM adr_ops.adr_run_task('analyze', 'mdb', '{"tables": ["public.loud_table"]}')});
like($run, qr/^failed\|analyzed none; failed: public\.loud_table: error 55P03 \(its message is in the server log\)/,
    'a message raised with a lock SQLSTATE by the owner\'s code is not copied either');
is( $node->safe_psql('postgres', q{SELECT count(*) FROM adr_ops.task_runs r WHERE r::text LIKE '%secret%'},
        extra_params => [ '-U', 'watcher' ]),
    '0', 'no task run that pg_monitor reads holds it');
ok( $node->poll_query_until('mdb', q{
        SELECT count(*) > 0 FROM adr_ops.adr_log_lines(NULL, '{ERROR}')
         WHERE message LIKE '%row-secret-5520%'}),
    'the message is in the server log, for those who may read it');

is(gained(), 'false|pg_monitor|0', 'in the end mallory is what she was');

$node->stop;
done_testing();
