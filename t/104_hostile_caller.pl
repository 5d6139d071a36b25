# The hostile-tenant suite, its part for "the caller": adr_ops's functions
# that act for their caller (a quality check is owned by whoever defines
# it, adr_lock_role() refuses to lock a superuser unless the caller is one,
# job, schedule and security events name who made them) are SECURITY
# DEFINER, and the caller is not the role SET ROLE left: when a superuser
# calls a SECURITY DEFINER function of mallory's, her code runs as mallory
# and so must everything it asks of adr_ops.  Her functions try to define a
# custom quality check (SQL run as its owner) and to lock a superuser in the
# superuser's name, and to leave the superuser's name on a job, a schedule
# and a blocklist entry.
#
# Then a server without adr_ops in shared_preload_libraries: the library is
# loaded by the first call in a session, inside adr_ops's SECURITY DEFINER
# function, and the functions that called it are unknown in that
# transaction.  Where the caller grants power adr_ops refuses then, and
# works in the next transaction; where it is a label it names the role that
# SET ROLE left.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $setup = q{
    CREATE ROLE mallory LOGIN;
    CREATE ROLE adr_boss SUPERUSER LOGIN;
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;
    GRANT USAGE ON SCHEMA adr_ops TO mallory;
    GRANT EXECUTE ON FUNCTION
        adr_ops.adr_quality_check_add(text, regclass, text, jsonb, double precision,
                                      double precision, text, boolean, boolean),
        adr_ops.adr_job_submit(text, jsonb, integer), adr_ops.adr_job_claim(text, text),
        adr_ops.adr_schedule(text, text, text, name, jsonb), adr_ops.adr_lock_role(name, boolean),
        adr_ops.adr_block_ip(cidr, text, interval, boolean, boolean)
      TO mallory;
    CREATE SCHEMA tenant AUTHORIZATION mallory;
};

# Her functions, SECURITY DEFINER: whoever calls them, they run as her.
my $hers = q{
    CREATE TABLE tenant.mt (id integer);
    CREATE FUNCTION tenant.m_custom() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT adr_ops.adr_quality_check_add('m_custom', NULL, 'custom',
                                               '{"sql": "SELECT count(*) FROM pg_authid"}') $$;
    CREATE FUNCTION tenant.m_check() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT adr_ops.adr_quality_check_add('m_rows', 'tenant.mt', 'row_count') $$;
    CREATE FUNCTION tenant.m_lock() RETURNS integer LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT adr_ops.adr_lock_role('adr_boss', false) $$;
    CREATE FUNCTION tenant.m_job() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
    AS $$ DECLARE id bigint := adr_ops.adr_job_submit('m_pipe');
          BEGIN PERFORM adr_ops.adr_job_claim('m_pipe', 'w1'); RETURN id; END $$;
    CREATE FUNCTION tenant.m_schedule() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT adr_ops.adr_schedule('m_sched', '@daily', 'analyze') $$;
    CREATE FUNCTION tenant.m_block() RETURNS void LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT adr_ops.adr_block_ip('192.0.2.7/32', 'hers') $$;
};

my $node = PostgreSQL::Test::Cluster->new('hostile_caller');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'adr_ops'
adr_ops.database = 'postgres'
lc_messages = 'C'
});
$node->start;
$node->safe_psql('postgres', $setup);
$node->safe_psql('postgres', $hers, extra_params => [ '-U', 'mallory' ]);

my ($ret, $out, $err);

# A custom check's SQL runs as its owner: one defined by her code in the
# superuser's name would run her SQL as superuser.
($ret, $out, $err) = $node->psql('postgres', 'SELECT tenant.m_custom()');
like($err, qr/permission denied to create a custom quality check/,
    "a superuser calling her function: her custom check is refused, she is not a superuser");
is($node->safe_psql('postgres', q{SELECT count(*) FROM adr_ops.quality_checks WHERE name = 'm_custom'}),
    '0', 'and no such check exists');

$node->safe_psql('postgres', 'SELECT tenant.m_check()');
is($node->safe_psql('postgres', q{SELECT owner FROM adr_ops.quality_checks WHERE name = 'm_rows'}),
    'mallory', 'a check her function defines, called by a superuser, is owned by her');

($ret, $out, $err) = $node->psql('postgres', 'SELECT tenant.m_lock()');
like($err, qr/permission denied to lock superuser "adr_boss"/,
    'her function cannot lock a superuser in the name of the superuser calling it');
is($node->safe_psql('postgres', q{SELECT rolcanlogin FROM pg_roles WHERE rolname = 'adr_boss'}),
    't', 'the superuser can still log in');
# (On code that lets her, put back what she did, for the rest to run.)
$node->safe_psql('postgres', 'ALTER ROLE adr_boss LOGIN');

$node->safe_psql('postgres', 'SELECT tenant.m_job()');
is( $node->safe_psql('postgres', q{
        SELECT string_agg(e.to_status || ' ' || e.actor, ', ' ORDER BY e.id)
          FROM adr_ops.job_events e JOIN adr_ops.processing_jobs j ON j.id = e.job_id
         WHERE j.pipeline = 'm_pipe'}),
    'queued mallory, running mallory', 'the job events her function made name her');

$node->safe_psql('postgres', 'SELECT tenant.m_schedule()');
is($node->safe_psql('postgres', q{SELECT created_by FROM adr_ops.schedules WHERE name = 'm_sched'}),
    'mallory', 'so does the schedule her function made');

$node->safe_psql('postgres', 'SELECT tenant.m_block()');
is( $node->safe_psql('postgres', q{
        SELECT b.blocked_by || ' ' || a.actor FROM adr_ops.blocklist b, adr_ops.security_actions a
         WHERE b.client = '192.0.2.7/32' AND a.action = 'block' AND a.target = '192.0.2.7/32'}),
    'mallory mallory', 'and the blocklist entry and the security action');

# Callers that are right as they were: the superuser's own SECURITY DEFINER
# function, her direct call, SET ROLE, and a SET ROLE inside a function
# with a SET clause (not SECURITY DEFINER: it runs as who calls it).
$node->safe_psql('postgres', q{
    CREATE FUNCTION public.s_custom() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT adr_ops.adr_quality_check_add('s_custom', NULL, 'custom', '{"sql": "SELECT 1"}') $$;
    SELECT public.s_custom();
    CREATE FUNCTION public.s_as_mallory() RETURNS bigint LANGUAGE plpgsql
    SET search_path = pg_catalog
    AS $$ BEGIN SET LOCAL ROLE mallory; RETURN adr_ops.adr_job_submit('s_pipe'); END $$;
    SELECT public.s_as_mallory();});
is($node->safe_psql('postgres', q{SELECT owner FROM adr_ops.quality_checks WHERE name = 's_custom'}),
    'postgres', "the superuser's own SECURITY DEFINER function defines a custom check as the superuser");
$node->safe_psql('postgres', q{SELECT adr_ops.adr_job_submit('d_pipe')}, extra_params => [ '-U', 'mallory' ]);
$node->safe_psql('postgres', q{SET ROLE mallory; SELECT adr_ops.adr_job_submit('r_pipe')});
is( $node->safe_psql('postgres', q{
        SELECT string_agg(j.pipeline || ' ' || e.actor, ', ' ORDER BY j.pipeline)
          FROM adr_ops.job_events e JOIN adr_ops.processing_jobs j ON j.id = e.job_id
         WHERE j.pipeline IN ('d_pipe', 'r_pipe', 's_pipe')}),
    'd_pipe mallory, r_pipe mallory, s_pipe mallory',
    'her direct call, SET ROLE, and SET ROLE inside a function name her');

# Her function called by a superuser's SECURITY DEFINER function, itself
# called by another superuser: still her.
$node->safe_psql('postgres', q{
    CREATE FUNCTION public.s_wrap() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT tenant.m_schedule() $$;
    DELETE FROM adr_ops.schedules WHERE name = 'm_sched';});
$node->safe_psql('postgres', 'SELECT public.s_wrap()', extra_params => [ '-U', 'adr_boss' ]);
is($node->safe_psql('postgres', q{SELECT created_by FROM adr_ops.schedules WHERE name = 'm_sched'}),
    'mallory', 'her function under a superuser\'s SECURITY DEFINER function is still her');

# An error inside her function, caught by the superuser's code, leaves no
# frame of hers behind.
$node->safe_psql('postgres', q{
    DO $$
    BEGIN
        BEGIN
            PERFORM tenant.m_custom();
        EXCEPTION WHEN OTHERS THEN NULL;
        END;
        PERFORM adr_ops.adr_quality_check_add('s_after', NULL, 'custom', '{"sql": "SELECT 1"}');
    END $$;});
is($node->safe_psql('postgres', q{SELECT owner FROM adr_ops.quality_checks WHERE name = 's_after'}),
    'postgres', 'after her function failed, the superuser is the caller again');
$node->stop;

# ---------------------------------------------------------------------------
# Without shared_preload_libraries.
my $plain = PostgreSQL::Test::Cluster->new('caller_no_preload');
$plain->init;
$plain->append_conf('postgresql.conf', "lc_messages = 'C'");
$plain->start;
$plain->safe_psql('postgres', $setup);
$plain->safe_psql('postgres', $hers, extra_params => [ '-U', 'mallory' ]);

# Each psql is a new session, which loads the library on its first call.
($ret, $out, $err) = $plain->psql('postgres',
    q{SELECT adr_ops.adr_quality_check_add('first', NULL, 'custom', '{"sql": "SELECT 1"}')});
like($err, qr/ERROR:  could not determine the role calling adr_ops\nDETAIL:  .*SECURITY DEFINER.*\nHINT:  Add adr_ops to "shared_preload_libraries", or call the function again in a new transaction\./,
    'loaded by a check definition, the first transaction refuses to name its owner');
($ret, $out, $err) = $plain->psql('postgres', q{
    BEGIN;
    SELECT adr_ops.adr_quality_check_add('first', NULL, 'custom', '{"sql": "SELECT 1"}');
    ROLLBACK;
    SELECT adr_ops.adr_quality_check_add('first', NULL, 'custom', '{"sql": "SELECT 1"}') > 0;},
    on_error_stop => 0);
like($err, qr/could not determine the role calling adr_ops/, 'a new session refuses again in its first transaction');
is($out, 't', 'the next transaction of the session works') or diag $err;
is($plain->safe_psql('postgres', q{SELECT owner FROM adr_ops.quality_checks WHERE name = 'first'}),
    'postgres', 'and the check is owned by the superuser who defined it');

($ret, $out, $err) = $plain->psql('postgres', 'SELECT tenant.m_custom()');
like($err, qr/could not determine the role calling adr_ops/,
    'her function, loading the library under a superuser, cannot define a check');
($ret, $out, $err) = $plain->psql('postgres', 'SELECT tenant.m_check()');
like($err, qr/could not determine the role calling adr_ops/, 'not even an ordinary one');
($ret, $out, $err) = $plain->psql('postgres', q{SELECT tenant.m_lock()});
like($err, qr/could not determine the role calling adr_ops/, 'nor lock a role');
($ret, $out, $err) = $plain->psql('postgres', q{
    SELECT adr_ops.adr_next_run('@daily', now()) IS NOT NULL;
    SELECT tenant.m_custom();});
like($err, qr/permission denied to create a custom quality check/,
    'loaded outside a SECURITY DEFINER function, the library knows her for the caller at once');

($ret, $out, $err) = $plain->psql('postgres', q{SELECT adr_ops.adr_job_submit('p_pipe') > 0},
    extra_params => [ '-U', 'mallory' ]);
is($out, 't', 'a label in the first transaction: her own job submission works') or diag $err;
is( $plain->safe_psql('postgres', q{
        SELECT e.actor FROM adr_ops.job_events e JOIN adr_ops.processing_jobs j ON j.id = e.job_id
         WHERE j.pipeline = 'p_pipe'}),
    'mallory', 'and names her');
$plain->stop;

done_testing();
