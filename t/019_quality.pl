# The quality_check task through the launcher: a run worker (the bootstrap
# superuser) runs each check as its owner, stores the results, raises an
# alert on each status change and feeds the health rows; the default
# schedule fires it.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('quality');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'adr_ops'
adr_ops.database = 'postgres'
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION adr_ops;
UPDATE adr_ops.schedules SET enabled = false;
CREATE ROLE tenant;
CREATE SCHEMA t AUTHORIZATION tenant;
GRANT USAGE ON SCHEMA adr_ops TO tenant;
GRANT EXECUTE ON FUNCTION adr_ops.adr_quality_check_add(text, regclass, text, jsonb, double precision,
                                                        double precision, text, boolean, boolean) TO tenant;
SET ROLE tenant;
CREATE TABLE t.events (id integer, kind text);
INSERT INTO t.events SELECT i, CASE WHEN i % 10 = 0 THEN NULL ELSE 'click' END FROM generate_series(1, 1000) i;
-- who runs the scan: a view of hers records it
CREATE TABLE t.seen (who text);
CREATE FUNCTION t.who() RETURNS text LANGUAGE plpgsql AS
    $$BEGIN RETURN current_user; END$$;
CREATE VIEW t.whoami AS SELECT t.who() AS u;
SELECT adr_ops.adr_quality_check_add('events_rows', 't.events', 'row_count', '{"min": 1}');
SELECT adr_ops.adr_quality_check_add('events_kind', 't.events', 'null_fraction', '{"column": "kind"}', crit => 0.2);
SELECT adr_ops.adr_quality_check_add('run_as', 't.whoami', 'accepted_values', '{"column": "u", "values": ["tenant"]}');
SELECT adr_ops.adr_quality_check_add('whoami_rows', 't.whoami', 'row_count', '{"max": 0}');
RESET ROLE;});

my $run = $node->safe_psql('postgres',
	q{SELECT status || ': ' || detail FROM adr_ops.adr_run_task('quality_check')});
is($run, 'succeeded: 4 checks: 1 failing', 'the quality_check task runs every check');
is($node->safe_psql('postgres', q{
SELECT string_agg(check_name || '=' || status || ':' || round(metric::numeric, 2), ' ' ORDER BY check_name)
  FROM adr_ops.quality_results}),
	'events_kind=OK:0.10 events_rows=OK:1000.00 run_as=OK:0.00 whoami_rows=CRITICAL:1.00',
	'results stored: the run worker read the view as its owner, not as the superuser');
is($node->safe_psql('postgres', q{
SELECT string_agg(check_name || ' ' || coalesce(from_status, '-') || '>' || to_status, ', ')
  FROM adr_ops.alerts WHERE check_name LIKE 'quality:%'}),
	'quality:whoami_rows ->CRITICAL', 'an alert for the failing check');

# A change of status: the nulls grow past the level.
$node->safe_psql('postgres', q{UPDATE t.events SET kind = NULL WHERE id <= 300});
$run = $node->safe_psql('postgres',
	q{SELECT status || ': ' || detail FROM adr_ops.adr_run_task('quality_check')});
is($run, 'succeeded: 4 checks: 2 failing', 'the second run');
is($node->safe_psql('postgres', q{
SELECT string_agg(check_name || ' ' || coalesce(from_status, '-') || '>' || to_status, ', ' ORDER BY id)
  FROM adr_ops.alerts WHERE check_name LIKE 'quality:%'}),
	'quality:whoami_rows ->CRITICAL, quality:events_kind OK>CRITICAL', 'an alert on the status change only');
is($node->safe_psql('postgres', q{
SELECT string_agg(check_name || ' ' || status, ', ' ORDER BY check_name)
  FROM adr_ops.adr_health_check() WHERE check_name LIKE 'quality%'}),
	'quality OK, quality:events_kind CRITICAL, quality:whoami_rows CRITICAL',
	'a health row per failing check');
# The health history does not announce them a second time.
$node->safe_psql('postgres', 'SELECT adr_ops.adr_health_snapshot()');
is($node->safe_psql('postgres', q{SELECT count(*) FROM adr_ops.alerts WHERE check_name LIKE 'quality:%'}),
	'2', 'the health snapshot raises no second alert');

# The default schedule fires the task.
is($node->safe_psql('postgres', q{SELECT schedule FROM adr_ops.schedules WHERE name = 'quality_check'}),
	'*/15 * * * *', 'the default schedule');
$node->safe_psql('postgres', q{SELECT adr_ops.adr_schedule('quality_fast', '1 seconds', 'quality_check')});
ok( $node->poll_query_until('postgres', q{
SELECT count(*) > 0 FROM adr_ops.task_runs r JOIN adr_ops.schedules s ON s.id = r.schedule_id
 WHERE s.name = 'quality_fast' AND r.status = 'succeeded'}),
	'a schedule of the quality_check task ran');
$node->safe_psql('postgres', q{SELECT adr_ops.adr_unschedule('quality_fast')});

done_testing();
