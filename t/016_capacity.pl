# Capacity forecasts, recovery readiness and the weekly review, on known
# inputs: a synthetic linear series gives the exact days, a noisy or short
# one says why there is no forecast, the recovery estimate follows from the
# measured restore time, the growth since and the WAL to replay, and the
# weekly review reports what the week recorded.
use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('capacity');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_stat_statements,adr_ops'
adr_ops.database = 'postgres'
archive_mode = on
archive_command = 'true'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION adr_ops');

# ---------- the task stores real sizes ----------

my $run = $node->safe_psql('postgres',
	q{SELECT status || ': ' || detail FROM adr_ops.adr_run_task('capacity_snapshot')});
like($run, qr/^succeeded: stored \d+ sizes and counters$/, 'the capacity_snapshot task runs');
is($node->safe_psql('postgres', q{
SELECT string_agg(DISTINCT kind, ',' ORDER BY kind) FROM adr_ops.size_history}),
	'database,filesystem,multixact,relation,wal,wal_lsn,xid', 'it stores every kind of reading');
is($node->safe_psql('postgres', q{
SELECT value > 0 AND capacity > value FROM adr_ops.size_history WHERE kind = 'filesystem' AND name = 'data'}),
	't', 'the data directory\'s file system with its size');
like($node->safe_psql('postgres', q{SELECT note FROM adr_ops.adr_capacity_forecast() WHERE kind = 'database' AND name = 'postgres'}),
	qr/^history too short: 1 reading over 00:00:00; a forecast needs 6 readings over a day$/,
	'one reading: no forecast, and why');
$node->safe_psql('postgres', 'DELETE FROM adr_ops.size_history');

# ---------- forecasts on synthetic series ----------

# A file system of 1000 bytes growing 10 bytes a day, at 700 now: the disk
# thresholds 80% and 90% are 800 and 900 bytes, 10 and 20 days away, full
# in 30.
$node->safe_psql('postgres', q{
INSERT INTO adr_ops.size_history (taken_at, kind, name, value, capacity)
SELECT now() - make_interval(days => 9 - i), 'filesystem', 'data', 610 + 10 * i, 1000
  FROM generate_series(0, 9) i;
-- a noisy database and a short one
INSERT INTO adr_ops.size_history (taken_at, kind, name, value)
SELECT now() - make_interval(days => 9 - i), 'database', 'noisy', 1000 + 400 * (i % 2) + i
  FROM generate_series(0, 9) i;
INSERT INTO adr_ops.size_history (taken_at, kind, name, value)
SELECT now() - make_interval(hours => 3 - i), 'database', 'young', 100 + i FROM generate_series(0, 2) i;
-- a database and pg_wal growing steadily, with no levels of their own
INSERT INTO adr_ops.size_history (taken_at, kind, name, value)
SELECT now() - make_interval(days => 9 - i), k, n, 100 + 10 * i
  FROM generate_series(0, 9) i, (VALUES ('database', 'growing'), ('wal', 'pg_wal')) AS s(k, n);
-- a multixact counter consuming a thousand a day
INSERT INTO adr_ops.size_history (taken_at, kind, name, value)
SELECT now() - make_interval(days => 9 - i), 'multixact', 'cluster', 1000 * i FROM generate_series(0, 9) i;
-- a transaction counter consuming a million a day
INSERT INTO adr_ops.size_history (taken_at, kind, name, value)
SELECT now() - make_interval(days => 9 - i), 'xid', 'cluster', 1000000 * i FROM generate_series(0, 9) i;
});
is($node->safe_psql('postgres', q{
SELECT concat_ws('|', samples, current, growth_per_day, r2, days_to_warn, days_to_crit, days_to_full, note)
  FROM adr_ops.adr_capacity_forecast() WHERE kind = 'filesystem' AND name = 'data'}),
	'10|700|10.00|1.000|10.0|20.0|30.0', 'a linear series gives the exact days to each level');
like($node->safe_psql('postgres', q{
SELECT concat_ws('|', days_to_crit, note) FROM adr_ops.adr_capacity_forecast() WHERE name = 'noisy'}),
	qr/^too noisy to forecast: R² 0\.\d\d, a forecast needs 0\.7$/, 'a noisy series: no days, and why');
like($node->safe_psql('postgres', q{SELECT note FROM adr_ops.adr_capacity_forecast() WHERE name = 'young'}),
	qr/^history too short: 3 readings over 02:00:00; /, 'a short series: no forecast, and why');
like($node->safe_psql('postgres', q{
SELECT concat_ws('|', growth_per_day, days_to_warn, days_to_full) FROM adr_ops.adr_capacity_forecast() WHERE kind = 'xid'}),
	qr/^1000000\.00\|200\.0\|2144\.[45]$/,
	'XIDs: a million a day leaves 200 days to autovacuum_freeze_max_age and about 2144 to the hard stop');

like($node->safe_psql('postgres', q{
SELECT concat_ws('|', growth_per_day, days_to_warn, days_to_full) FROM adr_ops.adr_capacity_forecast() WHERE kind = 'multixact'}),
	qr/^1000\.00\|400000\.0\|214448[0-9]\.\d$/,
	'multixacts: a thousand a day leaves 400000 days to autovacuum_multixact_freeze_max_age');

is($node->safe_psql('postgres', q{
SELECT string_agg(concat_ws('|', kind, coalesce(days_to_warn::text, '-'), coalesce(days_to_crit::text, '-'), days_to_full), ',' ORDER BY kind)
  FROM adr_ops.adr_capacity_forecast() WHERE name IN ('growing', 'pg_wal')}),
	'database|-|-|30.0,wal|-|-|30.0',
	'a series without levels has no days to them, only to the data file system\'s end (300 bytes free at 10 a day)');

# The capacity check: the critical level 20 days away is inside the 30-day
# warning horizon.
is($node->safe_psql('postgres', q{
SELECT concat_ws('|', status, value, detail) FROM adr_ops.adr_health_check() WHERE check_name = 'capacity'}),
	'WARNING|20.0|soonest: filesystem data reaches its critical level in 20.0 days (growth 10.00 per day, R² 1.000)',
	'capacity is WARNING when a forecast falls inside the horizon');
$node->safe_psql('postgres', q{UPDATE adr_ops.health_thresholds SET warn = 14 WHERE check_name = 'capacity'});
like($node->safe_psql('postgres', q{SELECT status FROM adr_ops.adr_health_check() WHERE check_name = 'capacity'}),
	qr/^OK$/, '.. and OK with a shorter horizon');

# ---------- recovery readiness on known inputs ----------

is($node->safe_psql('postgres', q{SELECT concat_ws('|', status, detail) FROM adr_ops.adr_health_check() WHERE check_name = 'recovery'}),
	'OK|no verified backup: recovery time and point cannot be estimated', 'no verified backup: nothing to estimate');

# A backup taken 25 hours ago, verified a day ago in 60 s; the data
# directory grew from 1000 to 1500 bytes since (the series above ends at
# 700: replace it); 320 MB of WAL were written since the backup, replayed at
# the default 32 MB/s: 60 * 1.5 + 10 = 100 s.
# Something archived: the recovery point is the last archived segment.
$node->safe_psql('postgres', 'CREATE TABLE a (); SELECT pg_switch_wal()');
$node->poll_query_until('postgres', 'SELECT last_archived_time IS NOT NULL FROM pg_stat_archiver')
  or die 'nothing archived';
$node->safe_psql('postgres', q{
DELETE FROM adr_ops.size_history WHERE kind = 'filesystem';
INSERT INTO adr_ops.size_history (taken_at, kind, name, value, capacity) VALUES
    (now() - interval '26 hours', 'filesystem', 'data', 1000, 100000),
    (now() - interval '1 hour', 'filesystem', 'data', 1500, 100000);
INSERT INTO adr_ops.size_history (taken_at, kind, name, value)
SELECT now() - interval '26 hours', 'wal_lsn', 'cluster', pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') - 320 * 1024 * 1024;
INSERT INTO adr_ops.backup_verifications (path, format, started_at, finished_at, status, backup_mtime, duration_ms)
VALUES ('/backups/nightly.dump', 'custom', now() - interval '24 hours 1 minute', now() - interval '24 hours',
        'passed', now() - interval '25 hours', 60000);
});
my $r = $node->safe_psql('postgres', q{
SELECT concat_ws('|', last_good_backup, extract(epoch FROM restore_time)::int, restore_time_derivation,
                 recovery_point_derivation, rto_target, rpo_target)
  FROM adr_ops.adr_recovery_readiness()});
is($r, '/backups/nightly.dump|100|restore measured at verification 60000 ms, scaled by 1.500 for the data directory\'s growth since, plus 320 MB of WAL written since the backup replayed at 32 MB/s|the last archived WAL segment (pg_stat_archiver)|04:00:00|01:00:00',
	'restore time: measured, scaled by the growth, plus the WAL replay, with how it was derived');

# Nothing archived yet: the point is the backup itself, 25 hours ago,
# beyond the 1-hour target.
$node->safe_psql('postgres', q{ALTER SYSTEM SET archive_mode = off});
$node->restart;
like($node->safe_psql('postgres', q{SELECT concat_ws('|', status, detail) FROM adr_ops.adr_health_check() WHERE check_name = 'recovery'}),
	qr{^WARNING\|restore of /backups/nightly\.dump: about 00:01:30 \(target 04:00:00\); data loss: 1 day 01:00:0\d \(target 01:00:00\)$},
	'without archiving the data loss is the backup\'s age: WARNING past the recovery point objective');
$node->append_conf('postgresql.conf', q{adr_ops.recovery_point_objective = '2d'});
$node->reload;
ok($node->poll_query_until('postgres',
	q{SELECT status FROM adr_ops.adr_health_check() WHERE check_name = 'recovery'}, 'OK'),
	'within both targets: OK');

# ---------- the weekly review ----------

$node->safe_psql('postgres', q{
INSERT INTO adr_ops.health_history (taken_at, check_name, status, value, unit, detail)
SELECT now() - make_interval(hours => h), 'disk_data', CASE WHEN h BETWEEN 10 AND 12 THEN 'WARNING' ELSE 'OK' END,
       50, '%', 'synthetic'
  FROM generate_series(1, 48) h;
SELECT adr_ops.adr_job_submit('ingest');
SELECT adr_ops.adr_job_submit('ingest', max_attempts => 1);
});
$node->safe_psql('postgres', q{
SELECT adr_ops.adr_job_fail((adr_ops.adr_job_claim('ingest', 'w1')).id, 'bad input');
});
# Statement counters at the three bounds: 10 ms a call the week before,
# 30 ms this week.
$node->safe_psql('postgres', q{
INSERT INTO adr_ops.statement_snapshots (id, taken_at, entries, changed) VALUES
    (901, now() - interval '14 days 1 hour', 1, 1), (902, now() - interval '7 days 1 hour', 1, 1),
    (903, now() - interval '1 hour', 1, 1);
INSERT INTO adr_ops.statement_counters (snapshot_id, queryid, userid, dbid, toplevel, calls, total_ms, rows, blks_hit, blks_read)
VALUES (901, 42, 10, 5, true, 0, 0, 0, 0, 0), (902, 42, 10, 5, true, 100, 1000, 0, 0, 0),
       (903, 42, 10, 5, true, 200, 4000, 0, 0, 0);
INSERT INTO adr_ops.statement_texts (queryid, userid, dbid, query) VALUES (42, 10, 5, 'SELECT * FROM orders WHERE note = $1');
});
my $review = $node->safe_psql('postgres', q{
SELECT string_agg(concat_ws('|', section, item, value, unit, detail), E'\n' ORDER BY section, item)
  FROM adr_ops.adr_weekly_review() WHERE section IN ('checks', 'pipelines', 'queries', 'backups')});
like($review, qr/^backups\|verifications\|1\|verifications\|1 passed, 0 failed; last passed: \/backups\/nightly\.dump at /m,
	'review: backups verified in the week');
like($review, qr/^checks\|disk_data\|3\|snapshots not OK\|WARNING; about 03:00:00 not OK, first /m,
	'review: a check not OK during the week, and for how long');
like($review, qr/^pipelines\|ingest\|50\.0\|% failed\|2 submitted in the week: 0 succeeded, 1 failed, 0 cancelled, 1 queued or running$/m,
	'review: the pipeline\'s failure rate');
like($review, qr/^queries\|42\|200\.0\|% slower\|mean 30\.00 ms over 100 calls, was 10\.00 ms: SELECT \* FROM orders WHERE note = \$1$/m,
	'review: the query that got slower, with its text');
is($node->safe_psql('postgres', q{
SELECT value FROM adr_ops.adr_weekly_review(now() - interval '30 days') WHERE section = 'backups'}),
	'0', 'review: a week without verifications counts none');
like($node->safe_psql('postgres', q{SELECT adr_ops.adr_weekly_review_markdown()}),
	qr/^# Weekly review, .*\n\n## Growth\n.*\n## Pipelines\n\n\| item \| value \| unit \| detail \|\n\|---\|---\|---\|---\|\n\| ingest \| 50\.0 \| % failed \|/s,
	'the review as Markdown, a table per section');

# ---------- pg_monitor reads it all ----------

$node->safe_psql('postgres', 'CREATE ROLE grafana LOGIN IN ROLE pg_monitor');
is($node->safe_psql('postgres', q{
SELECT (SELECT count(*) > 0 FROM adr_ops.adr_capacity_forecast())
   AND (SELECT count(*) = 1 FROM adr_ops.adr_recovery_readiness())
   AND (SELECT count(*) > 0 FROM adr_ops.adr_weekly_review())}, extra_params => [ '-U', 'grafana' ]),
	't', 'a pg_monitor member reads the forecasts, the recovery estimate and the review');
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT adr_ops.adr_capacity_snapshot()}, extra_params => [ '-U', 'grafana' ]);
like($err, qr/permission denied for function adr_capacity_snapshot/, '.. but does not store snapshots');

$node->stop;
done_testing();
