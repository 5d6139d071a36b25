--
-- Metrics: the registry of every adr_ops reading as a Prometheus metric.
--
-- The scheduler's tasks would add rows while the test runs: stop them.
UPDATE adr_ops.schedules SET enabled = false;
-- (but one, whose last run the test writes: it fires at 02:00 only)
UPDATE adr_ops.schedules SET enabled = true WHERE name = 'analyze';

SELECT name, position FROM adr_ops.metric_sources ORDER BY position;

-- Provoke a reading of each source, with names of this test's own.
INSERT INTO adr_ops.health_history (taken_at, check_name, status, value, unit, detail) VALUES
    (now() - interval '1 hour', 'metrics_disk', 'OK', 10, '%', 'older snapshot'),
    (now(), 'metrics_disk', 'CRITICAL', 97.5, '%', 'latest snapshot'),
    (now(), 'metrics_probe_check', 'WARNING', 250, 'ms', NULL),
    (now(), 'metrics_unknown', 'UNKNOWN', NULL, NULL, 'could not');
INSERT INTO adr_ops.probes (name, url) VALUES ('metrics_probe', 'http://127.0.0.1:1/');
INSERT INTO adr_ops.probe_history (probe, url, ok, status_code, latency_ms) VALUES
    ('metrics_probe', 'http://127.0.0.1:1/', true, 200, 12);
INSERT INTO adr_ops.probe_history (probe, url, ok, error, latency_ms) VALUES
    ('metrics_probe', 'http://127.0.0.1:1/', false, 'could not connect', 1.5);
SELECT count(adr_ops.adr_job_submit('metrics_pipe')) AS submitted FROM generate_series(1, 3);
SELECT (adr_ops.adr_job_complete((adr_ops.adr_job_claim('metrics_pipe', 'w1')).id)).status;
SELECT (adr_ops.adr_job_claim('metrics_pipe', 'w1')).id IS NOT NULL AS claimed;
-- a heartbeat lost long ago: the job is stuck
UPDATE adr_ops.processing_jobs SET heartbeat_at = now() - interval '1 hour'
 WHERE pipeline = 'metrics_pipe' AND status = 'running';
INSERT INTO adr_ops.size_history (taken_at, kind, name, value, capacity) VALUES
    (now(), 'filesystem', 'data', 1000, 4000),
    (now(), 'database', 'metrics_db', 2048, NULL),
    (now(), 'wal_lsn', 'cluster', 123456, NULL),
    (now(), 'xid', 'cluster', 789, NULL);
INSERT INTO adr_ops.task_runs (schedule_id, task, database, scheduled_at, status, finished_at)
SELECT s.id, s.task, s.database, now() - interval '10 minutes', 'failed', now()
  FROM adr_ops.schedules s WHERE s.name = 'analyze';
INSERT INTO adr_ops.task_runs (task, database, status, finished_at)
VALUES ('metrics_task', current_database(), 'failed', now()),
       ('metrics_task', current_database(), 'failed', now()),
       ('metrics_task', current_database(), 'succeeded', now());

-- The provoked values: the latest health snapshot only, in base units.
SELECT name, labels, value FROM adr_ops.adr_metrics('health')
 WHERE labels->>'check' LIKE 'metrics\_%' ORDER BY name, labels->>'check';
SELECT value < 60 AS fresh FROM adr_ops.adr_metrics('health')
 WHERE name = 'adr_ops_health_snapshot_age_seconds';
SELECT name, value FROM adr_ops.adr_metrics('probes')
 WHERE labels = '{"probe": "metrics_probe"}' AND name <> 'adr_ops_probe_age_seconds' ORDER BY name;
SELECT name, CASE WHEN name LIKE '%seconds' THEN value >= 0 AND value < 60 END AS plausible,
       CASE WHEN name NOT LIKE '%seconds' THEN value END AS value
  FROM adr_ops.adr_metrics('pipelines')
 WHERE labels = '{"pipeline": "metrics_pipe"}' ORDER BY name;
SELECT name, labels, value FROM adr_ops.adr_metrics('maintenance')
 WHERE labels->>'task' IN ('metrics_task', 'analyze') AND name NOT LIKE '%age_seconds'
 ORDER BY name, labels->>'status', labels->>'task';
SELECT value >= 0 AND value < 60 AS recent FROM adr_ops.adr_metrics('maintenance')
 WHERE name = 'adr_ops_schedule_last_run_age_seconds' AND labels->>'schedule' = 'analyze';
SELECT name, labels, value FROM adr_ops.adr_metrics('capacity')
 WHERE name <> 'adr_ops_size_snapshot_age_seconds' AND labels->>'name' IS DISTINCT FROM 'pg_wal'
 ORDER BY name, labels->>'kind';

-- Incidents: one more P3 open, counted by severity and status.
CREATE TEMP TABLE before AS SELECT name, labels, value FROM adr_ops.adr_metrics('incidents');
SELECT adr_ops.adr_incident_open('P3', 'metrics test') IS NOT NULL AS opened;
SELECT a.name, a.labels, a.value - coalesce(b.value, 0) AS delta
  FROM adr_ops.adr_metrics('incidents') a
  LEFT JOIN before b USING (name, labels)
 WHERE a.value - coalesce(b.value, 0) <> 0 OR a.labels = '{"severity": "P3", "status": "open"}'
 ORDER BY 1, 2::text;

SELECT name, labels, value FROM adr_ops.adr_metrics('security') ORDER BY name, labels::text;

-- Backups: nothing to judge without a verification or a backup path; a
-- failed one says so, and a backup never passed is infinitely old.  (In a
-- transaction rolled back: earlier tests' verifications are left alone.)
BEGIN;
DELETE FROM adr_ops.backup_verifications;
SELECT count(*) AS backup_metrics FROM adr_ops.adr_metrics('backup') WHERE name <> 'adr_ops_metrics_source_up';
INSERT INTO adr_ops.backup_verifications (path, status, finished_at, failures, duration_ms, backup_bytes)
VALUES ('/nowhere/metrics.dump', 'failed', now(), '{"could not open"}', 1500, 4096);
SELECT name, value FROM adr_ops.adr_metrics('backup') ORDER BY name;

-- Names follow Prometheus' conventions; every family has one type, a help
-- text and one label shape.
SELECT m.name, min(m.type) AS type, count(DISTINCT m.type) AS types,
       bool_and(m.help <> '') AS helped, count(DISTINCT m.help) AS helps,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(min(m.labels::text)::jsonb) k) AS labels,
       count(DISTINCT (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(m.labels) k)) AS shapes
  FROM adr_ops.metrics m
 GROUP BY m.name ORDER BY m.name;
SELECT name FROM adr_ops.metrics
 WHERE name !~ '^adr_ops_[a-z0-9_]+$'
    OR (type = 'counter') <> (name ~ '_total$')
    OR type NOT IN ('gauge', 'counter');

ROLLBACK;

-- The text format, as a Prometheus scrape reads it.
SELECT adr_ops.adr_metrics_text('security');
SELECT adr_ops.adr_metrics_text('nothing');

-- A concern adds its metrics with one function and one row; a source that
-- fails is reported and takes no other source down.
CREATE FUNCTION adr_ops._metrics_metrics_test() RETURNS SETOF adr_ops._metric
LANGUAGE sql AS $$ SELECT 'adr_ops_test_value', '{"a": "x\"y"}'::jsonb, 1.5::float8, 'gauge', 'A test.' $$;
CREATE FUNCTION adr_ops._metrics_metrics_broken() RETURNS SETOF adr_ops._metric
LANGUAGE sql AS $$ SELECT 'adr_ops_never', '{}'::jsonb, (1 / 0)::float8, 'gauge', 'Never.' $$;
INSERT INTO adr_ops.metric_sources (name, position) VALUES ('metrics_test', 1000), ('metrics_broken', 1001);
SELECT adr_ops.adr_metrics_text('metrics_test');
SELECT name, labels, value FROM adr_ops.adr_metrics() WHERE labels->>'source' LIKE 'metrics\_%' OR name LIKE 'adr_ops_test%'
 ORDER BY name, labels::text;
-- Read alone, a failing source raises its error.
SELECT * FROM adr_ops.adr_metrics('metrics_broken');
DELETE FROM adr_ops.metric_sources WHERE name IN ('metrics_test', 'metrics_broken');
DROP FUNCTION adr_ops._metrics_metrics_test(), adr_ops._metrics_metrics_broken();

-- Errors.
SELECT * FROM adr_ops.adr_metrics('no_such_source');

-- pg_monitor reads every source; PUBLIC reads none.
CREATE ROLE adr_metrics_monitor IN ROLE pg_monitor;
CREATE ROLE adr_metrics_nobody;
SET ROLE adr_metrics_monitor;
SELECT labels->>'source' AS source, value AS up FROM adr_ops.metrics
 WHERE name = 'adr_ops_metrics_source_up' ORDER BY 1;
SELECT count(*) > 0 AS reads_text FROM adr_ops.adr_metrics_text() t WHERE t LIKE '%# TYPE adr_ops_health_status gauge%';
RESET ROLE;
SET ROLE adr_metrics_nobody;
SELECT count(*) FROM adr_ops.metrics;
SELECT * FROM adr_ops.adr_metrics();
RESET ROLE;
DROP ROLE adr_metrics_monitor, adr_metrics_nobody;

-- Leave the database as found.
DELETE FROM adr_ops.health_history WHERE check_name LIKE 'metrics\_%';
DELETE FROM adr_ops.size_history WHERE name IN ('data', 'metrics_db', 'cluster');
DELETE FROM adr_ops.task_runs WHERE task = 'metrics_task' OR status = 'failed' AND task = 'analyze';
UPDATE adr_ops.schedules SET enabled = true;
