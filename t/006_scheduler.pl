# The maintenance scheduler with real workers: seconds schedules run and are
# recorded, failures are recorded and do not stop the next run, overlapping
# runs are skipped, the maintenance window follows a reload, vacuum_analyze
# touches only dirty tables, reindex rebuilds a bloated index and drops the
# leftovers of a failed REINDEX CONCURRENTLY, a missed schedule runs once,
# and a dropped extension makes the launcher wait, not crash.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('scheduler');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'adr_ops'
adr_ops.timezone = 'UTC'
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION adr_ops;
    UPDATE adr_ops.schedules SET enabled = false;});

ok( $node->poll_query_until('postgres',
        q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'adr_ops launcher'}),
    'one launcher runs');
my $launcher_pid = $node->safe_psql('postgres',
    q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'adr_ops launcher'});

sub runs
{
    my ($schedule, $where) = @_;
    return $node->safe_psql('postgres', qq{
        SELECT count(*) FROM adr_ops.task_runs r JOIN adr_ops.schedules s ON s.id = r.schedule_id
         WHERE s.name = '$schedule' AND ($where)});
}

sub wait_runs
{
    my ($schedule, $where, $n) = @_;
    return $node->poll_query_until('postgres', qq{
        SELECT count(*) >= $n FROM adr_ops.task_runs r JOIN adr_ops.schedules s ON s.id = r.schedule_id
         WHERE s.name = '$schedule' AND ($where)});
}

# A seconds schedule runs and is recorded.
$node->safe_psql('postgres', q{SELECT adr_ops.adr_schedule('tick', '1 seconds', 'health_snapshot')});
ok(wait_runs('tick', q{status = 'succeeded'}, 3), 'a 1-second schedule runs again and again');
is(runs('tick', q{status = 'succeeded' AND objects > 0 AND detail LIKE 'stored % health checks'
                  AND finished_at >= started_at}),
   runs('tick', q{status = 'succeeded'}), 'each run records what it did');
is(runs('tick', q{status = 'succeeded' AND started_at - scheduled_at > interval '1 second'}), '0',
    'runs start within a second of their fire time');
cmp_ok($node->safe_psql('postgres', 'SELECT count(DISTINCT taken_at) FROM adr_ops.health_history'),
    '>=', 3, 'the task did its work: health snapshots were stored');

# A task that fails is recorded failed, and the next run still happens.
$node->safe_psql('postgres', q{
    CREATE DATABASE noext;
    SELECT adr_ops.adr_schedule('broken', '1 seconds', 'health_snapshot', 'noext');});
ok(wait_runs('broken', q{status = 'failed'
        AND detail = 'extension "adr_ops" is not installed in database "noext"'}, 2),
    'a failing task is recorded failed with its error, and runs again');
my $ticks = runs('tick', 'true');
ok(wait_runs('tick', q{status = 'succeeded'}, $ticks + 2), 'other schedules go on');
is($node->safe_psql('postgres',
        q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'adr_ops launcher'}),
    $launcher_pid, 'the launcher was not restarted by the failures');
$node->safe_psql('postgres', q{
    SELECT adr_ops.adr_unschedule('broken');
    SELECT adr_ops.adr_unschedule('tick');});

# vacuum_analyze touches only the dirty tables.
$node->safe_psql('postgres', q{
    CREATE TABLE clean1 AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 5000) g;
    CREATE TABLE clean2 AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 5000) g;
    CREATE TABLE dirty AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 5000) g;
    VACUUM ANALYZE clean1, clean2, dirty;
    DELETE FROM dirty WHERE id % 2 = 0;});
$node->poll_query_until('postgres',
    q{SELECT n_dead_tup > 0 FROM pg_stat_user_tables WHERE relname = 'dirty'})
  or die 'dead tuples not counted';
my $before = $node->safe_psql('postgres',
    q{SELECT string_agg(relname || '=' || vacuum_count, ',' ORDER BY relname) FROM pg_stat_user_tables
       WHERE relname IN ('clean1', 'clean2', 'dirty')});
is($before, 'clean1=1,clean2=1,dirty=1', 'each table was vacuumed once by hand');
like( $node->safe_psql('postgres', q{
        SELECT status || '|' || objects || '|' || detail
          FROM adr_ops.adr_run_task('vacuum_analyze', options => '{"tables": ["clean1", "clean2", "dirty"]}')}),
    qr/^succeeded\|1\|vacuumed 1: public\.dirty \(\d+ dead of \d+ rows\); 2 tables did not need it$/,
    'vacuum_analyze picks the dirty table only, and says so');
$node->poll_query_until('postgres', q{
    SELECT string_agg(relname || '=' || vacuum_count, ',' ORDER BY relname) = 'clean1=1,clean2=1,dirty=2'
      FROM pg_stat_user_tables WHERE relname IN ('clean1', 'clean2', 'dirty')})
  or diag 'vacuum counts did not change as expected';
is( $node->safe_psql('postgres', q{
        SELECT string_agg(relname || '=' || vacuum_count || '/' || n_dead_tup, ',' ORDER BY relname)
          FROM pg_stat_user_tables WHERE relname IN ('clean1', 'clean2', 'dirty')}),
    'clean1=1/0,clean2=1/0,dirty=2/0', 'only the dirty table was vacuumed, and it is clean');

# The maintenance window follows a reload: a heavy task outside it is skipped.
my $outside = $node->safe_psql('postgres', q{
    SELECT to_char(now() AT TIME ZONE 'UTC' + interval '2 hours', 'HH24:00') || '-' ||
           to_char(now() AT TIME ZONE 'UTC' + interval '3 hours', 'HH24:00')});
my $inside = $node->safe_psql('postgres', q{
    SELECT to_char(now() AT TIME ZONE 'UTC' - interval '1 hour', 'HH24:00') || '-' ||
           to_char(now() AT TIME ZONE 'UTC' + interval '2 hours', 'HH24:00')});
$node->safe_psql('postgres', qq{
    ALTER SYSTEM SET adr_ops.maintenance_window = '$outside';
    SELECT pg_reload_conf();});
$node->poll_query_until('postgres', "SELECT current_setting('adr_ops.maintenance_window') = '$outside'")
  or die 'window not reloaded';
$node->safe_psql('postgres', q{
    SELECT adr_ops.adr_schedule('heavy', '1 seconds', 'vacuum_analyze', options => '{"tables": ["dirty"]}')});
ok( wait_runs('heavy', qq{status = 'skipped' AND detail = 'skipped: outside the maintenance window $outside'}, 2),
    'outside the window the heavy task is skipped, with the reason');
$node->safe_psql('postgres', qq{
    ALTER SYSTEM SET adr_ops.maintenance_window = '$inside';
    SELECT pg_reload_conf();});
ok(wait_runs('heavy', q{status = 'succeeded'}, 1), 'after SIGHUP moves the window over now, it runs');
$node->safe_psql('postgres', q{
    SELECT adr_ops.adr_unschedule('heavy');
    ALTER SYSTEM RESET adr_ops.maintenance_window;
    SELECT pg_reload_conf();});

# A run still going is not started twice.  Cost-based delay makes VACUUM
# slow in database slowdb, as a throttled vacuum of a big table would be.
$node->safe_psql('postgres', q{
    CREATE DATABASE slowdb;
    ALTER DATABASE slowdb SET vacuum_cost_delay = '100ms';
    ALTER DATABASE slowdb SET vacuum_cost_limit = 1;});
$node->safe_psql('slowdb', q{
    CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 20000) g;});
$node->safe_psql('postgres', q{
    SELECT adr_ops.adr_schedule('overlap', '1 seconds', 'vacuum_analyze', 'slowdb')});
ok( wait_runs('overlap', q{status = 'skipped' AND detail = 'skipped: the previous run is still going'}, 2),
    'fires during a run are recorded as skipped');
is(runs('overlap', q{status = 'running'}), '1', 'only one run of the schedule at a time');
$node->safe_psql('postgres', q{UPDATE adr_ops.schedules SET enabled = false WHERE name = 'overlap'});
# Stop the slow run: terminating its worker records the run failed.
$node->safe_psql('postgres', q{
    SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'adr_ops task'});
ok(wait_runs('overlap', q{status = 'failed'}, 1), 'a terminated run is recorded failed');
is(runs('overlap', q{status = 'running'}), '0', 'nothing is left running');

# reindex: drop what a failed REINDEX CONCURRENTLY left, rebuild a bloated
# index, leave a healthy one.
$node->safe_psql('postgres', q{
    CREATE TABLE bloated AS SELECT g AS id FROM generate_series(1, 100000) g;
    CREATE INDEX bloated_idx ON bloated (id);
    CREATE TABLE healthy AS SELECT g AS id FROM generate_series(1, 100000) g;
    CREATE INDEX healthy_idx ON healthy (id);
    DELETE FROM bloated WHERE id % 10 <> 0;
    VACUUM ANALYZE bloated;
    ANALYZE healthy;});
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$holder->query_safe('SELECT count(*) FROM healthy');
my ($ret, $out, $err) = $node->psql('postgres',
    'SET statement_timeout = 1000; REINDEX INDEX CONCURRENTLY healthy_idx');
like($err, qr/canceling statement due to statement timeout/, 'a REINDEX CONCURRENTLY failed half way');
$holder->query_safe('COMMIT');
$holder->quit;
is( $node->safe_psql('postgres',
        q{SELECT string_agg(indexrelid::regclass::text, ',') FROM pg_index WHERE NOT indisvalid}),
    'healthy_idx_ccnew', 'and left an invalid healthy_idx_ccnew behind');
my $bloated_pages = $node->safe_psql('postgres', q{SELECT relpages FROM pg_class WHERE relname = 'bloated_idx'});
my $run_id = $node->safe_psql('postgres', q{
    SELECT id FROM adr_ops.adr_run_task('reindex', options => '{"tables": ["bloated", "healthy"]}', wait => false)});
$node->poll_query_until('postgres', "SELECT status <> 'running' FROM adr_ops.task_runs WHERE id = $run_id")
  or die 'reindex run did not end';
like( $node->safe_psql('postgres', "SELECT status || '|' || detail FROM adr_ops.task_runs WHERE id = $run_id"),
    qr/^succeeded\|dropped invalid index public\.healthy_idx_ccnew \(invalid leftover of a failed REINDEX CONCURRENTLY\); reindexed 1: public\.bloated_idx \(\d+% bloat, \d+ of \d+ pages\); 1 indexes below bloat_pct or not estimated$/,
    'reindex drops the leftover and rebuilds only the bloated index');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE NOT indisvalid}), '0',
    'no invalid index is left');
cmp_ok($node->safe_psql('postgres', q{SELECT relpages FROM pg_class WHERE relname = 'bloated_idx'}),
    '<', $bloated_pages / 3, 'the rebuilt index is much smaller');

# The job reaper task: a running job whose heartbeat is lost fails, and
# with attempts left is re-queued with backoff.
my $job = $node->safe_psql('postgres', q{
    SELECT adr_ops.adr_job_submit('etl');
    SELECT (adr_ops.adr_job_claim('etl', 'w')).id;});
($job) = $job =~ /(\d+)\s*$/;
$node->safe_psql('postgres',
    "UPDATE adr_ops.processing_jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = $job");
is( $node->safe_psql('postgres',
        q{SELECT status || '|' || detail FROM adr_ops.adr_run_task('job_reaper')}),
    'succeeded|1 running jobs lost their heartbeat; 1 failed jobs re-queued',
    'the job_reaper task reaps and re-queues');
is( $node->safe_psql('postgres',
        "SELECT status || '|' || last_error || '|' || (run_after > now()) FROM adr_ops.processing_jobs WHERE id = $job"),
    'queued|heartbeat lost|true', 'the lost job waits out its backoff');

# A launcher that was down past several fire times runs the schedule once.
$node->safe_psql('postgres', q{
    SELECT adr_ops.adr_schedule('missed', '* * * * *', 'health_snapshot');
    INSERT INTO adr_ops.task_runs (schedule_id, task, database, scheduled_at, started_at, finished_at, status)
    SELECT id, 'health_snapshot', 'postgres', date_trunc('minute', now()) - interval '10 minutes',
           date_trunc('minute', now()) - interval '10 minutes', date_trunc('minute', now()) - interval '10 minutes',
           'succeeded'
      FROM adr_ops.schedules WHERE name = 'missed';
    INSERT INTO adr_ops.task_runs (task, database, started_at, finished_at, status, detail)
    VALUES ('analyze', 'postgres', now() - interval '40 days', now() - interval '40 days',
            'succeeded', 'ancient');
    SELECT adr_ops.adr_schedule('yearly', '@yearly', 'analyze');
    INSERT INTO adr_ops.task_runs (schedule_id, task, database, scheduled_at, started_at, finished_at, status, detail)
    SELECT id, 'analyze', 'postgres', now() - interval '40 days', now() - interval '40 days',
           now() - interval '40 days', 'succeeded', 'last of its schedule'
      FROM adr_ops.schedules WHERE name = 'yearly';});
# The fake last fire F; missed fires are F + 1 .. F + 10 minutes, and the
# first regular fire after the restart is F + 11 minutes or later.
my $fake = $node->safe_psql('postgres', q{
    SELECT max(scheduled_at) FROM adr_ops.task_runs r JOIN adr_ops.schedules s ON s.id = r.schedule_id
     WHERE s.name = 'missed'});
$node->restart;
ok(wait_runs('missed', qq{scheduled_at > '$fake' AND status <> 'running'}, 1),
    'after the restart the missed schedule runs');
# Wake the launcher a few times; the missed minutes must not each run.
$node->safe_psql('postgres', q{UPDATE adr_ops.schedules SET enabled = enabled}) for 1 .. 3;
$node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM adr_ops.task_runs WHERE status = 'running'});
is( runs('missed', qq{scheduled_at > '$fake' AND scheduled_at <= timestamptz '$fake' + interval '10 minutes'}),
    '1', 'once, not once per missed fire time');
$node->safe_psql('postgres', q{SELECT adr_ops.adr_unschedule('missed')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM adr_ops.task_runs WHERE detail = 'ancient'}),
    '0', 'runs older than adr_ops.task_run_retention (30 days) are pruned');
is($node->safe_psql('postgres',
        q{SELECT count(*) FROM adr_ops.task_runs WHERE detail = 'last of its schedule'}),
    '1', 'but not the last run of a schedule, which missed fires are counted from');

# Another database with the extension: the launcher's view is not mixed in.
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION adr_ops');
is( $node->safe_psql('other', q{
        SELECT count(*) FROM adr_ops.adr_maintenance_status()
         WHERE next_run IS DISTINCT FROM adr_ops.adr_next_run(schedule, now())}),
    '0', 'outside adr_ops.database the status computes next runs itself');
my ($oret, $oout, $oerr) = $node->psql('other', q{SELECT adr_ops.adr_schedule('x', '@daily', 'analyze')});
like($oerr, qr/adr_schedule\(\) must be called in database "postgres"/,
    'and schedules are refused there, with where to go');
$node->safe_psql('postgres', q{SELECT adr_ops.adr_unschedule('yearly')});

# The extension dropped from the launcher's database: the launcher waits.
$launcher_pid = $node->safe_psql('postgres',
    q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'adr_ops launcher'});
my $log_offset = -s $node->logfile;
# (DROP EXTENSION fires no trigger; a reload wakes the launcher sooner.)
$node->safe_psql('postgres', 'DROP EXTENSION adr_ops; SELECT pg_reload_conf();');
$node->wait_for_log(qr/adr_ops launcher is waiting for CREATE EXTENSION adr_ops in database "postgres"/,
    $log_offset);
$node->safe_psql('postgres', q{CREATE EXTENSION adr_ops; UPDATE adr_ops.schedules SET enabled = false;
    SELECT adr_ops.adr_schedule('back', '1 seconds', 'health_snapshot');});
ok(wait_runs('back', q{status = 'succeeded'}, 1), 'after CREATE EXTENSION the schedules run again');
is($node->safe_psql('postgres',
        q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'adr_ops launcher'}),
    $launcher_pid, 'the same launcher waited; it did not crash or restart');
unlike(slurp_file($node->logfile, $log_offset), qr/launcher.*(FATAL|PANIC)|terminated by signal/,
    'no launcher crash in the log');

$node->stop;
done_testing();
