# The install script and the functions it creates resolve nothing through
# the caller's search_path (CVE-2022-2625, CVE-2023-39417 were about this),
# pg_dump keeps the configuration, and the library works without preloading.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('safety');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'adr_ops'");
$node->start;

my $script = $node->config_data('--sharedir') . '/extension/adr_ops--1.0.sql';
ok(-f $script, 'the install script is installed');

# Plant, in public, a twin of every pg_catalog function the script names and
# of the common operators, and in pg_temp a view in front of every catalog
# view it reads.  Each twin raises a WARNING when it runs.  An attacker can
# also own a type and give it implicit casts from the built-in types.
my $plant = q{
CREATE FUNCTION public.adr_shadow_hit(what text) RETURNS boolean
LANGUAGE plpgsql AS $$BEGIN RAISE WARNING 'adr_shadow_hit %', what; RETURN true; END$$;

SELECT format('CREATE FUNCTION public.%I(%s) RETURNS %s LANGUAGE plpgsql AS '
              '$f$BEGIN PERFORM public.adr_shadow_hit(%L); RETURN NULL; END$f$',
              p.proname, pg_get_function_identity_arguments(p.oid),
              format_type(p.prorettype, NULL), p.proname)
  FROM pg_proc p
 WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f' AND NOT p.proretset
   AND pg_read_file(:'script') ~ ('\m' || p.proname || '\s*\(')
   AND NOT EXISTS (SELECT FROM pg_type t
                    WHERE t.oid = ANY (p.proargtypes::oid[] || p.prorettype)
                      AND t.typtype = 'p')
   AND p.proname NOT IN ('adr_shadow_hit')
\gexec

SELECT format('CREATE FUNCTION public.adr_shadow_op_%s(%s, %s) RETURNS %s LANGUAGE plpgsql AS '
              '$f$BEGIN PERFORM public.adr_shadow_hit(%L); RETURN NULL; END$f$;'
              'CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = public.adr_shadow_op_%s)',
              o.oid, format_type(o.oprleft, NULL), format_type(o.oprright, NULL),
              format_type(o.oprresult, NULL), 'operator ' || o.oprname,
              o.oprname, format_type(o.oprleft, NULL), format_type(o.oprright, NULL), o.oid)
  FROM pg_operator o
 WHERE o.oprnamespace = 'pg_catalog'::regnamespace
   AND o.oprname IN ('=', '<>', '<', '>', '<=', '>=', '+', '-', '*', '/', '||', '~')
   AND o.oprleft IN ('int4'::regtype, 'int8'::regtype, 'numeric'::regtype, 'float8'::regtype,
                     'text'::regtype, 'name'::regtype, 'oid'::regtype, 'bool'::regtype,
                     'timestamptz'::regtype, 'interval'::regtype, 'pg_lsn'::regtype)
   AND o.oprright = o.oprleft
\gexec

CREATE TYPE public.adr_evil AS (v text);
CREATE FUNCTION public.adr_evil_from_text(text) RETURNS public.adr_evil LANGUAGE plpgsql
    AS $$BEGIN PERFORM public.adr_shadow_hit('cast text'); RETURN NULL; END$$;
CREATE FUNCTION public.adr_evil_from_numeric(numeric) RETURNS public.adr_evil LANGUAGE plpgsql
    AS $$BEGIN PERFORM public.adr_shadow_hit('cast numeric'); RETURN NULL; END$$;
CREATE CAST (text AS public.adr_evil) WITH FUNCTION public.adr_evil_from_text(text) AS IMPLICIT;
CREATE CAST (numeric AS public.adr_evil) WITH FUNCTION public.adr_evil_from_numeric(numeric) AS IMPLICIT;
CREATE FUNCTION public.format(public.adr_evil, text) RETURNS text LANGUAGE plpgsql
    AS $$BEGIN PERFORM public.adr_shadow_hit('format(adr_evil)'); RETURN NULL; END$$;
CREATE FUNCTION public.round(public.adr_evil, int) RETURNS numeric LANGUAGE plpgsql
    AS $$BEGIN PERFORM public.adr_shadow_hit('round(adr_evil)'); RETURN NULL; END$$;
};

# What the extension's functions read, shadowed by temporary views.
my @views = qw(pg_stat_activity pg_stat_database pg_stat_replication pg_replication_slots
  pg_prepared_xacts pg_database pg_locks pg_settings pg_roles pg_namespace pg_depend
  pg_tablespace);
my $temp_views = join '',
  map { "CREATE TEMP VIEW $_ AS SELECT * FROM pg_catalog.$_ WHERE public.adr_shadow_hit('view $_');\n" } @views;

# Everything the extension offers, called with the hostile search_path (the
# calls themselves qualify their operators: they are the caller's SQL).
my $calls = q{
SELECT count(*) FROM adr_ops.adr_health_check();
SELECT adr_ops.adr_health_snapshot();
SELECT count(*) FROM adr_ops.adr_host_disk();
SELECT count(*) FROM adr_ops.adr_host_memory();
SELECT count(*) FROM adr_ops.adr_host_load();
SELECT count(*) FROM adr_ops.adr_version();
UPDATE adr_ops.health_thresholds SET warn = 2 WHERE check_name OPERATOR(pg_catalog.=) 'load';
INSERT INTO adr_ops.health_thresholds VALUES ('load', 2, 4);
SELECT count(*) FROM adr_ops.adr_tasks();
SELECT adr_ops.adr_next_run('@daily', '2026-01-01 00:00:00+00', 'UTC');
SELECT adr_ops.adr_schedule('shadowed', '@daily', 'analyze');
SELECT count(*) FROM adr_ops.adr_maintenance_status();
SELECT adr_ops.adr_unschedule('shadowed');
SELECT status FROM adr_ops.adr_run_task('analyze');
SELECT adr_ops.adr_job_submit('shadowed', '{"a": 1}');
SELECT (adr_ops.adr_job_claim('shadowed', 'w')).id IS NOT NULL;
SELECT adr_ops.adr_job_checkpoint(max(id), 'one') FROM adr_ops.processing_jobs;
SELECT adr_ops.adr_job_heartbeat(max(id)) IS NOT NULL FROM adr_ops.processing_jobs;
SELECT (adr_ops.adr_job_fail(max(id), 'x')).status FROM adr_ops.processing_jobs;
SELECT (adr_ops.adr_job_restart(max(id), false, true)).status FROM adr_ops.processing_jobs;
SELECT (adr_ops.adr_job_cancel(max(id))).status FROM adr_ops.processing_jobs;
SELECT * FROM adr_ops.adr_job_reap();
SELECT count(*) FROM adr_ops.adr_pipeline_status();
SELECT count(*) FROM adr_ops.recent_jobs;
SELECT count(*) FROM adr_ops.adr_bloat_report(0, 'estimate');
SELECT count(*) FROM adr_ops.adr_bloat_report(0, 'exact');
SELECT count(*) FROM adr_ops.adr_bloat('adr_ops.schedules', 'sample');
SELECT ok FROM adr_ops.adr_http_check('http://127.0.0.1:1/', 1000);
DO $$BEGIN PERFORM adr_ops.adr_http_metric('http://127.0.0.1:1/', 'up'); EXCEPTION WHEN connection_failure THEN NULL; END$$;
INSERT INTO adr_ops.probes (name, url) VALUES ('shadowed', 'http://127.0.0.1:1/');
SELECT status FROM adr_ops.adr_run_task('http_probe');
INSERT INTO adr_ops.probe_history (probe, url, ok) VALUES ('shadowed', 'http://127.0.0.1:1/', true);
SELECT status FROM adr_ops.adr_run_task('alert_delivery');
SELECT count(*) FROM adr_ops.alerts;
SELECT adr_ops.adr_block_ip('192.0.2.0/24', 'shadowed', interval '1 hour');
SELECT count(*) FROM adr_ops.blocked_clients;
SELECT adr_ops.adr_unblock_ip('192.0.2.0/24');
SELECT count(*) FROM adr_ops.adr_auth_failures();
SELECT adr_ops.adr_maintenance_mode(true, 'shadowed', true);
SELECT adr_ops.adr_maintenance_mode(false);
SELECT adr_ops._maintenance_admits(current_user);
INSERT INTO adr_ops.blocklist (client, reason, blocked_by) VALUES ('198.51.100.0/24', 'shadowed', 'direct');
DELETE FROM adr_ops.blocklist WHERE blocked_by OPERATOR(pg_catalog.=) 'direct';
SELECT count(*) FROM adr_ops.adr_access_review();
SELECT count(*) FROM adr_ops.adr_security_audit();
CREATE ROLE adr_shadow_victim LOGIN;
SELECT adr_ops.adr_lock_role('adr_shadow_victim');
SELECT adr_ops.adr_evidence_snapshot('shadowed');
SELECT status FROM adr_ops.adr_verify_backup('/nonexistent/adr_ops/shadowed.dump');
SELECT count(*) FROM adr_ops.adr_backup_status();
INSERT INTO adr_ops.backup_checks VALUES ('shadowed', 1);
SELECT count(*) FROM adr_ops._check_backup_verification();
SELECT adr_ops.adr_incident_open('P3', 'shadowed', 'summary') IS NOT NULL;
SELECT (adr_ops.adr_incident_ack(max(id))).status FROM adr_ops.incidents;
SELECT adr_ops.adr_incident_note(max(id), 'shadowed') IS NOT NULL FROM adr_ops.incidents;
SELECT adr_ops.adr_incident_action(max(id), 'shadowed', 'me') IS NOT NULL FROM adr_ops.incidents;
SELECT (adr_ops.adr_incident_resolve(max(id), 'shadowed')).status FROM adr_ops.incidents;
SELECT adr_ops.adr_incident_report(max(id)) IS NOT NULL FROM adr_ops.incidents;
SELECT adr_ops.adr_incident_escalate();
SELECT count(*) FROM adr_ops.incident_status;
};

my ($ret, $out, $err) = $node->psql('postgres',
    "SET search_path = public, pg_catalog;\n"
      . $plant
      . $temp_views
      # The harness detects a shadow that runs ...
      . "SELECT now();\nSELECT count(*) FROM pg_stat_activity;\n",
    extra_params => [ '-v', "script=$script", '-v', 'ON_ERROR_STOP=1' ]);
is($ret, 0, 'the shadows were planted') or diag $err;
like($err, qr/adr_shadow_hit now/, 'a planted function runs for an unqualified call');
like($err, qr/adr_shadow_hit view pg_stat_activity/, 'a planted view is read for an unqualified name');
my $planted = $node->safe_psql('postgres',
    q{SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace});
cmp_ok($planted, '>', 50, "many shadow functions are planted ($planted)");

# ... and none runs during CREATE EXTENSION or any call of the extension.
($ret, $out, $err) = $node->psql('postgres',
    "SET search_path = public, pg_catalog;\n"
      . $temp_views
      . "CREATE EXTENSION adr_ops;\n"
      . $calls,
    extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
is($ret, 0, 'CREATE EXTENSION and every call succeed with the hostile search_path') or diag $err;
unlike($err, qr/adr_shadow_hit/, 'no planted object ran');

# pg_dump keeps edited thresholds and the history; the restore lands on the
# defaults that CREATE EXTENSION inserts without colliding.
$node->safe_psql('postgres', q{
    UPDATE adr_ops.health_thresholds SET warn = 55, crit = 66 WHERE check_name = 'connections';
    INSERT INTO adr_ops.health_thresholds VALUES ('disk_tablespace', 70, 75);
    SELECT adr_ops.adr_health_snapshot();
    SELECT adr_ops.adr_schedule('vacuum_analyze', '30 1 * * 6', 'vacuum_analyze');
    SELECT adr_ops.adr_schedule('mine', '@hourly', 'analyze', options => '{"mod_pct": 5}');
    SELECT adr_ops.adr_incident_open('P2', 'before the dump');
    UPDATE adr_ops.incident_targets SET ack_within = '5 minutes' WHERE severity = 'P1';
    INSERT INTO adr_ops.incident_policies (name, check_pattern, severity) VALUES ('mine', 'disk%', 'P3');});
my $dump = $node->basedir . '/dump.sql';
$node->command_ok([ 'pg_dump', '-d', $node->connstr('postgres'), '-f', $dump ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(
    [ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-q', '-d', $node->connstr('restored'), '-f', $dump ],
    'the dump restores without errors');
is( $node->safe_psql('restored', q{
        SELECT string_agg(format('%s %s %s', check_name, warn, crit), ', ' ORDER BY check_name)
          FROM adr_ops.health_thresholds
         WHERE check_name IN ('connections', 'disk_tablespace', 'load')}),
    'connections 55 66, disk_tablespace 70 75, load 2 4',
    'edited thresholds survive the dump, the others keep their defaults');
is( $node->safe_psql('restored', q{
        SELECT string_agg(format('%s %s %s %s', name, schedule, task, options), ', ' ORDER BY name)
          FROM adr_ops.schedules}),
    $node->safe_psql('postgres', q{
        SELECT string_agg(format('%s %s %s %s', name, schedule, task, options), ', ' ORDER BY name)
          FROM adr_ops.schedules}),
    'schedules survive the dump, edited defaults and added ones alike');
like( $node->safe_psql('restored', q{SELECT schedule FROM adr_ops.schedules WHERE name = 'vacuum_analyze'}),
    qr/^30 1 \* \* 6$/, 'the edited default is the edited one');
is( $node->safe_psql('restored', 'SELECT count(*) FROM adr_ops.health_history'),
    $node->safe_psql('postgres', 'SELECT count(*) FROM adr_ops.health_history'),
    'the history survives the dump');
is( $node->safe_psql('restored', q{
        SELECT string_agg(format('%s %s %s', id, title, status), ', ' ORDER BY id) FROM adr_ops.incidents}),
    $node->safe_psql('postgres', q{
        SELECT string_agg(format('%s %s %s', id, title, status), ', ' ORDER BY id) FROM adr_ops.incidents}),
    'the incidents survive the dump, and the restored history opens none');
is( $node->safe_psql('restored', 'SELECT count(*) FROM adr_ops.incident_events'),
    $node->safe_psql('postgres', 'SELECT count(*) FROM adr_ops.incident_events'),
    'so do their timelines');
is( $node->safe_psql('restored', q{
        SELECT string_agg(format('%s %s %s', severity, ack_within, resolve_within), ', ' ORDER BY severity)
          FROM adr_ops.incident_targets}),
    'P1 00:05:00 04:00:00, P2 01:00:00 08:00:00, P3 1 day 7 days', 'an edited incident target survives the dump');
is( $node->safe_psql('restored', q{SELECT string_agg(name, ', ' ORDER BY name) FROM adr_ops.incident_policies}),
    'backup_verification, mine, probes', 'and so do the policies, defaults and added');
$node->stop;

# Without shared_preload_libraries the library loads on first use and the
# health check works.
my $plain = PostgreSQL::Test::Cluster->new('no_preload');
$plain->init;
$plain->start;
is( $plain->safe_psql('postgres', q{
        CREATE EXTENSION adr_ops;
        SELECT count(*) > 10 FROM adr_ops.adr_health_check() WHERE status <> 'UNKNOWN';
        SHOW adr_ops.log_scan_limit;}),
    "t\n64MB", 'CREATE EXTENSION and the health check work without preloading');
my ($ret2, $out2, $err2) = $plain->psql('postgres', q{SELECT adr_ops.adr_run_task('analyze')});
like($err2, qr/adr_ops must be loaded via "shared_preload_libraries"/,
    'running a task without preloading says what is missing');
($ret2, $out2, $err2) = $plain->psql('postgres',
    q{SELECT adr_ops.adr_schedule('later', '@daily', 'analyze') > 0});
is($out2, 't', 'a schedule can be kept without preloading');
like($err2, qr/WARNING:  schedules run only when adr_ops is in "shared_preload_libraries"/,
    'with a warning that it will not run');
$plain->stop;

done_testing();
