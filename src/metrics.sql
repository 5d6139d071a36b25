
-- metrics: every adr_ops reading as a metric, for Prometheus and any SQL
-- dashboard (runbook: Daily Health Checks, Weekly System Review) ---------

-- One metric sample: a Prometheus metric name (adr_ops_..., base units,
-- _total for counters), its labels, its value, gauge or counter, and the
-- help text of its family.
CREATE TYPE adr_ops._metric AS (
    name text,
    labels jsonb,
    value float8,
    type text,
    help text
);
COMMENT ON TYPE adr_ops._metric IS 'API: private. One sample of adr_metrics()';

-- The sources adr_metrics() reads, in order.  A row names the function
-- adr_ops._metrics_<name>() that returns the source's samples; each concern
-- registers its own beside its tables, so adding metrics touches no other
-- file.  Members of the extension, not configuration.
--
-- A scrape reads what the scheduled tasks stored (the latest health
-- snapshot, the latest capacity snapshot, the probes' history) and counts
-- rows through indexes: it never runs a check, a probe or a size walk
-- itself, so it stays cheap however often it is scraped.
CREATE TABLE adr_ops.metric_sources (
    name text PRIMARY KEY,
    position integer NOT NULL UNIQUE
);
COMMENT ON TABLE adr_ops.metric_sources IS
    'the sources adr_metrics() reads, in order: each names a function adr_ops._metrics_<name>()';
GRANT SELECT ON adr_ops.metric_sources TO pg_monitor;

-- The sources are PL/pgSQL, not SQL functions: the exporter keeps its
-- session, and PL/pgSQL keeps each query's plan in it from one scrape to the
-- next, where a SQL function with SET search_path is planned at each call
-- (half the time of a scrape).

-- A status as a number: what alert rules compare.
CREATE FUNCTION adr_ops._metric_status(status text) RETURNS float8
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE status WHEN 'OK' THEN 0 WHEN 'WARNING' THEN 1 WHEN 'CRITICAL' THEN 2 ELSE 3 END::float8
$$;
COMMENT ON FUNCTION adr_ops._metric_status(text) IS
    'API: private. A health status as a number: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN';

-- The health checks, from the latest snapshot in health_history (taken by
-- the health_snapshot task every 5 minutes): a scrape never runs the
-- checks, some of which read the server log or walk every relation.
CREATE FUNCTION adr_ops._metrics_health() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH latest AS (
        SELECT max(h.taken_at) AS at FROM adr_ops.health_history h
    ), rows AS (
        SELECT h.* FROM latest l JOIN adr_ops.health_history h ON h.taken_at = l.at
    )
    SELECT 'adr_ops_health_status', jsonb_build_object('check', r.check_name),
           adr_ops._metric_status(r.status), 'gauge',
           'Status of each health check in the latest snapshot: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.'
      FROM rows r
    UNION ALL
    SELECT 'adr_ops_health_value', jsonb_build_object('check', r.check_name),
           CASE r.unit WHEN '%' THEN r.value / 100 WHEN 'ms' THEN r.value / 1000
                ELSE r.value END::float8, 'gauge',
           'Reading of each health check in the latest snapshot, in base units (a percentage as a ratio 0..1, milliseconds as seconds; other units as adr_health_check() gives them).'
      FROM rows r WHERE r.value IS NOT NULL
    UNION ALL
    SELECT 'adr_ops_health_snapshot_age_seconds', '{}',
           coalesce(extract(epoch FROM now() - l.at)::float8, 'Infinity'), 'gauge',
           'Seconds since the latest health snapshot (+Inf when none was taken).'
      FROM latest l;
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_health() IS
    'API: private. The health checks'' metrics, from the latest snapshot';

-- The HTTP probes, from their latest result: the http_probe task runs them.
CREATE FUNCTION adr_ops._metrics_probes() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH last AS (
        SELECT p.name, h.ok, h.latency_ms, h.status_code, h.probed_at
          FROM adr_ops.probes p
          JOIN LATERAL (SELECT ph.ok, ph.latency_ms, ph.status_code, ph.probed_at
                          FROM adr_ops.probe_history ph
                         WHERE ph.probe = p.name ORDER BY ph.id DESC LIMIT 1) h ON true
         WHERE p.enabled
    )
    SELECT m.* FROM last l CROSS JOIN LATERAL (VALUES
        ('adr_ops_probe_up', jsonb_build_object('probe', l.name), l.ok::int::float8, 'gauge',
         'Whether the latest run of each enabled HTTP probe succeeded (1) or failed (0).'),
        ('adr_ops_probe_latency_seconds', jsonb_build_object('probe', l.name), l.latency_ms / 1000, 'gauge',
         'Latency of the latest run of each enabled HTTP probe, in seconds.'),
        ('adr_ops_probe_status_code', jsonb_build_object('probe', l.name), coalesce(l.status_code, 0)::float8, 'gauge',
         'HTTP status of the latest run of each enabled HTTP probe (0: no response).'),
        ('adr_ops_probe_age_seconds', jsonb_build_object('probe', l.name),
         extract(epoch FROM now() - l.probed_at)::float8, 'gauge',
         'Seconds since the latest run of each enabled HTTP probe.')
    ) AS m(name, labels, value, type, help);
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_probes() IS
    'API: private. The HTTP probes'' metrics, from their latest results';

-- The pipelines: queue depth and stuck jobs now, outcomes and durations of
-- the last hour.  Every count goes through a partial or range index.
CREATE FUNCTION adr_ops._metrics_pipelines() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH live AS (
        -- each status through its own partial index
        SELECT q.pipeline, count(*) AS queued, 0 AS running, 0 AS stuck,
               coalesce(extract(epoch FROM now() - min(q.run_after) FILTER (WHERE q.run_after <= now())), 0) AS waiting
          FROM adr_ops.processing_jobs q WHERE q.status = 'queued' GROUP BY q.pipeline
        UNION ALL
        SELECT r.pipeline, 0, count(*),
               count(*) FILTER (WHERE r.heartbeat_at < now() - adr_ops._job_stale_after()), 0
          FROM adr_ops.processing_jobs r WHERE r.status = 'running' GROUP BY r.pipeline
    ), live_by AS (
        SELECT l.pipeline, sum(l.queued) AS queued, sum(l.running) AS running,
               sum(l.stuck) AS stuck, max(l.waiting) AS waiting
          FROM live l GROUP BY l.pipeline
    ), done AS (
        SELECT j.pipeline,
               count(*) FILTER (WHERE j.status = 'succeeded') AS succeeded,
               count(*) FILTER (WHERE j.status = 'failed') AS failed,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM j.completed_at - j.started_at))
                   FILTER (WHERE j.status = 'succeeded') AS p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM j.completed_at - j.started_at))
                   FILTER (WHERE j.status = 'succeeded') AS p95
          FROM adr_ops.processing_jobs j
         WHERE j.completed_at >= now() - interval '1 hour'
         GROUP BY j.pipeline
    ), p AS (
        SELECT coalesce(l.pipeline, d.pipeline) AS pipeline,
               coalesce(l.queued, 0) AS queued, coalesce(l.running, 0) AS running,
               coalesce(l.stuck, 0) AS stuck, coalesce(l.waiting, 0) AS waiting,
               coalesce(d.succeeded, 0) AS succeeded, coalesce(d.failed, 0) AS failed,
               d.p50, d.p95
          FROM live_by l FULL JOIN done d ON d.pipeline = l.pipeline
    )
    SELECT m.* FROM p CROSS JOIN LATERAL (VALUES
        ('adr_ops_pipeline_queued_jobs', p.queued::float8,
         'Jobs of each pipeline waiting in the queue (queued, due or not).'),
        ('adr_ops_pipeline_running_jobs', p.running::float8,
         'Jobs of each pipeline running now.'),
        ('adr_ops_pipeline_stuck_jobs', p.stuck::float8,
         'Running jobs of each pipeline whose heartbeat is older than adr_ops.job_stale_after.'),
        ('adr_ops_pipeline_oldest_queued_age_seconds', p.waiting::float8,
         'Seconds the longest-waiting due job of each pipeline has waited (0: none waits).'),
        ('adr_ops_pipeline_succeeded_last_hour_jobs', p.succeeded::float8,
         'Jobs of each pipeline that succeeded in the last hour.'),
        ('adr_ops_pipeline_failed_last_hour_jobs', p.failed::float8,
         'Jobs of each pipeline that failed in the last hour.'),
        ('adr_ops_pipeline_failure_ratio', p.failed::float8 / nullif(p.succeeded + p.failed, 0),
         'Failed over finished (succeeded + failed) jobs of each pipeline in the last hour, 0..1.'),
        ('adr_ops_pipeline_duration_p50_seconds', p.p50,
         'Median run time of the jobs of each pipeline that succeeded in the last hour, in seconds.'),
        ('adr_ops_pipeline_duration_p95_seconds', p.p95,
         '95th percentile run time of the jobs of each pipeline that succeeded in the last hour, in seconds.')
    ) AS v(name, value, help)
    CROSS JOIN LATERAL (SELECT v.name, jsonb_build_object('pipeline', p.pipeline), v.value, 'gauge', v.help) m
     WHERE v.value IS NOT NULL;
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_pipelines() IS
    'API: private. The pipelines'' metrics: queue depth, stuck jobs, the last hour''s outcomes and durations';

-- Backups: judged as the backup_verification check judges them, and only
-- once there is something to judge (a verification, or adr_ops.backup_path).
CREATE FUNCTION adr_ops._metrics_backup() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH s AS (
        SELECT coalesce(nullif(current_setting('adr_ops.backup_max_age', true), ''), '1d')::interval AS max_age,
               coalesce(current_setting('adr_ops.backup_path', true), '') AS path,
               (SELECT max(v.finished_at) FROM adr_ops.backup_verifications v
                 WHERE v.status = 'passed') AS last_passed,
               (SELECT v FROM adr_ops.backup_verifications v
                 WHERE v.status <> 'running' ORDER BY v.id DESC LIMIT 1) AS latest
    )
    SELECT m.* FROM s CROSS JOIN LATERAL (VALUES
        ('adr_ops_backup_last_passed_age_seconds',
         coalesce(extract(epoch FROM now() - s.last_passed)::float8, 'Infinity'),
         'Seconds since the latest backup verification that passed finished (+Inf: none passed).'),
        ('adr_ops_backup_max_age_seconds', extract(epoch FROM s.max_age)::float8,
         'adr_ops.backup_max_age in seconds: how old the last passed verification may be.'),
        ('adr_ops_backup_last_verification_ok', ((s.latest).status = 'passed')::int::float8,
         'Whether the latest finished backup verification passed (1) or failed (0).'),
        ('adr_ops_backup_last_verification_duration_seconds', (s.latest).duration_ms / 1000.0::float8,
         'Run time of the latest finished backup verification, in seconds.'),
        ('adr_ops_backup_last_verification_size_bytes', (s.latest).backup_bytes::float8,
         'Size of the backup that the latest finished verification read, in bytes.')
    ) AS v(name, value, help)
    CROSS JOIN LATERAL (SELECT v.name, '{}'::jsonb, v.value, 'gauge', v.help) m
     WHERE v.value IS NOT NULL AND ((s.latest).id IS NOT NULL OR s.path <> '');
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_backup() IS
    'API: private. The backups'' metrics: age of the last passed verification, the latest result';

-- The blocklist the authentication hook enforces, and maintenance mode.
CREATE FUNCTION adr_ops._metrics_security() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT 'adr_ops_blocklist_entries', jsonb_build_object('kind', k.kind),
           (SELECT count(*) FROM adr_ops.blocked_clients b
             WHERE (b.blocked_by = 'adr_ops auto-ban') = (k.kind = 'auto'))::float8, 'gauge',
           'Ranges blocked now by the authentication hook, manual ones and auto-bans after failed logins.'
      FROM (VALUES ('manual'), ('auto')) k(kind)
    UNION ALL
    SELECT 'adr_ops_maintenance_mode', '{}',
           coalesce((SELECT m.enabled::int FROM adr_ops.maintenance_state m), 0)::float8, 'gauge',
           'Whether maintenance mode is on (1) or off (0).';
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_security() IS
    'API: private. The blocklist''s and maintenance mode''s metrics';

-- The scheduler: runs of the last day by status, and each schedule's last
-- run.  (Counted by finished_at, which is indexed, not started_at.)
CREATE FUNCTION adr_ops._metrics_maintenance() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT 'adr_ops_task_runs_last_day', jsonb_build_object('task', r.task, 'status', r.status),
           count(*)::float8, 'gauge',
           'Maintenance task runs finished in the last 24 hours by task and status (succeeded, failed, skipped), and those running now.'
      FROM (SELECT f.task, f.status FROM adr_ops.task_runs f
             WHERE f.finished_at >= now() - interval '1 day'
            UNION ALL
            SELECT n.task, n.status FROM adr_ops.task_runs n
             WHERE n.status = 'running' AND n.finished_at IS NULL) r
     GROUP BY r.task, r.status
    UNION ALL
    SELECT m.* FROM adr_ops.schedules s
      JOIN LATERAL (SELECT t.started_at, t.status FROM adr_ops.task_runs t
                     WHERE t.schedule_id = s.id ORDER BY t.scheduled_at DESC LIMIT 1) t ON true
     CROSS JOIN LATERAL (VALUES
        ('adr_ops_schedule_last_run_age_seconds', extract(epoch FROM now() - t.started_at)::float8,
         'Seconds since the last run of each enabled schedule started.'),
        ('adr_ops_schedule_last_run_failed', (t.status = 'failed')::int::float8,
         'Whether the last run of each enabled schedule failed (1) or not (0).')
     ) AS v(name, value, help)
     CROSS JOIN LATERAL (SELECT v.name, jsonb_build_object('schedule', s.name, 'task', s.task),
                                v.value, 'gauge', v.help) m
     WHERE s.enabled;
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_maintenance() IS
    'API: private. The maintenance scheduler''s metrics: runs by status, each schedule''s last run';

-- Incidents: those not closed, by severity and status; all ever opened.
CREATE FUNCTION adr_ops._metrics_incidents() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT v.* FROM (
        SELECT s.severity, s.status, count(*) AS open, count(*) FILTER (WHERE s.overdue) AS overdue
          FROM adr_ops.incident_status s WHERE s.status <> 'closed'
         GROUP BY s.severity, s.status) c
    CROSS JOIN LATERAL (VALUES
        ('adr_ops_incidents_open', jsonb_build_object('severity', c.severity, 'status', c.status),
         c.open::float8, 'gauge', 'Incidents not closed, by severity and status.'),
        ('adr_ops_incidents_overdue', jsonb_build_object('severity', c.severity, 'status', c.status),
         c.overdue::float8, 'gauge', 'Incidents past their acknowledgement or resolution target, by severity and status.')
    ) AS v(name, labels, value, type, help)
    UNION ALL
    SELECT 'adr_ops_incidents_opened_total', jsonb_build_object('severity', sev.severity),
           (SELECT count(*) FROM adr_ops.incidents i WHERE i.severity = sev.severity)::float8, 'counter',
           'Incidents opened, by severity.'
      FROM (VALUES ('P1'), ('P2'), ('P3')) sev(severity);
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_incidents() IS
    'API: private. The incidents'' metrics';

-- Sizes and counters from the latest capacity snapshot (the
-- capacity_snapshot task): a scrape never walks the relations itself.
CREATE FUNCTION adr_ops._metrics_capacity() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH latest AS (
        SELECT max(h.taken_at) AS at FROM adr_ops.size_history h
    ), rows AS (
        SELECT h.* FROM latest l JOIN adr_ops.size_history h ON h.taken_at = l.at
    )
    SELECT 'adr_ops_size_bytes', jsonb_build_object('kind', r.kind, 'name', r.name), r.value::float8, 'gauge',
           'Sizes in the latest capacity snapshot, in bytes: filesystem (used), database, wal (pg_wal), relation (the largest 20 with their indexes and TOAST).'
      FROM rows r WHERE r.kind IN ('filesystem', 'database', 'wal', 'relation')
    UNION ALL
    SELECT 'adr_ops_filesystem_size_bytes', jsonb_build_object('name', r.name), r.capacity::float8, 'gauge',
           'Size of each file system in the latest capacity snapshot, in bytes.'
      FROM rows r WHERE r.kind = 'filesystem' AND r.capacity IS NOT NULL
    UNION ALL
    SELECT 'adr_ops_wal_written_bytes_total', '{}', r.value::float8, 'counter',
           'Bytes of WAL ever written, at the latest capacity snapshot.'
      FROM rows r WHERE r.kind = 'wal_lsn'
    UNION ALL
    SELECT 'adr_ops_xid_assigned_total', '{}', r.value::float8, 'counter',
           'Transaction IDs ever assigned, at the latest capacity snapshot.'
      FROM rows r WHERE r.kind = 'xid'
    UNION ALL
    SELECT 'adr_ops_size_snapshot_age_seconds', '{}',
           coalesce(extract(epoch FROM now() - l.at)::float8, 'Infinity'), 'gauge',
           'Seconds since the latest capacity snapshot (+Inf when none was taken).'
      FROM latest l;
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_capacity() IS
    'API: private. Sizes and counters from the latest capacity snapshot';

INSERT INTO adr_ops.metric_sources (name, position) VALUES
    ('health', 10), ('probes', 20), ('pipelines', 30), ('backup', 40),
    ('security', 50), ('maintenance', 60), ('incidents', 70), ('capacity', 80);

-- The registry.  Read whole, each source runs in its own exception block:
-- one that fails is reported by adr_ops_metrics_source_up 0 and a WARNING,
-- and never takes the others down.  Read one source at a time (as the
-- exporter does), a failing source raises its error, so that the query
-- fails where the monitoring system sees it.
CREATE FUNCTION adr_ops.adr_metrics(source text DEFAULT NULL,
    OUT name text, OUT labels jsonb, OUT value float8, OUT type text, OUT help text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text;
    msg text;
    part adr_ops._metric[];
    up float8;
BEGIN
    IF source IS NOT NULL THEN
        IF NOT EXISTS (SELECT FROM adr_ops.metric_sources ms WHERE ms.name = source) THEN
            RAISE EXCEPTION 'unrecognized metric source "%"', source
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'The sources are the names in adr_ops.metric_sources.';
        END IF;
        EXECUTE format('SELECT array_agg(m) FROM adr_ops.%I() m', '_metrics_' || source) INTO part;
        RETURN QUERY SELECT m.name, m.labels, m.value, m.type, m.help FROM unnest(part) m;
        RETURN QUERY SELECT 'adr_ops_metrics_source_up', jsonb_build_object('source', source), 1::float8,
                            'gauge', 'Whether each metric source of adr_metrics() could be read (1) or failed (0).';
        RETURN;
    END IF;
    FOR s IN SELECT ms.name FROM adr_ops.metric_sources ms ORDER BY ms.position LOOP
        BEGIN
            EXECUTE format('SELECT array_agg(m) FROM adr_ops.%I() m', '_metrics_' || s) INTO part;
            up := 1;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
            RAISE WARNING 'could not read metric source "%"', s USING DETAIL = msg;
            part := NULL;
            up := 0;
        END;
        RETURN QUERY SELECT m.name, m.labels, m.value, m.type, m.help FROM unnest(part) m;
        RETURN QUERY SELECT 'adr_ops_metrics_source_up', jsonb_build_object('source', s), up, 'gauge',
                            'Whether each metric source of adr_metrics() could be read (1) or failed (0).';
    END LOOP;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_metrics(text) IS
    'every adr_ops reading as a metric (name, labels, value, gauge or counter, help), from all sources (one that fails is left out, with a WARNING) or the one named (its error is raised)';

CREATE VIEW adr_ops.metrics AS
    SELECT m.name, m.labels, m.value, m.type, m.help FROM adr_ops.adr_metrics() m;
COMMENT ON VIEW adr_ops.metrics IS
    'every adr_ops reading as a metric: adr_metrics() of all sources';
GRANT SELECT ON adr_ops.metrics TO pg_monitor;

-- The Prometheus text format, for a textfile collector or a push.
CREATE FUNCTION adr_ops.adr_metrics_text(source text DEFAULT NULL) RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH m AS (
        SELECT m.*, row_number() OVER () AS n FROM adr_ops.adr_metrics(source) m
    ), f AS (
        SELECT m.name, min(m.n) AS first, min(m.type) AS type, min(m.help) AS help,
               string_agg(m.name
                          || coalesce('{' || (SELECT string_agg(format('%s="%s"', l.key,
                                                    replace(replace(replace(l.value, '\', '\\'), '"', '\"'), E'\n', '\n')),
                                                    ',' ORDER BY l.key)
                                               FROM jsonb_each_text(m.labels) l) || '}', '')
                          || ' ' || CASE WHEN m.value = 'Infinity' THEN '+Inf'
                                         WHEN m.value = '-Infinity' THEN '-Inf'
                                         WHEN m.value = 'NaN' THEN 'NaN'
                                         ELSE m.value::text END,
                          E'\n' ORDER BY m.n) AS samples
          FROM m GROUP BY m.name
    )
    SELECT coalesce(string_agg(format(E'# HELP %s %s\n# TYPE %s %s\n%s\n', f.name,
                                      replace(replace(f.help, '\', '\\'), E'\n', '\n'),
                                      f.name, f.type, f.samples), '' ORDER BY f.first), '')
      FROM f
$$;
COMMENT ON FUNCTION adr_ops.adr_metrics_text(text) IS
    'adr_metrics() in the Prometheus text exposition format';

DO $grants$
DECLARE
    f text;
BEGIN
    -- Reports for pg_monitor, not PUBLIC.
    FOREACH f IN ARRAY ARRAY['adr_ops.adr_metrics(text)', 'adr_ops.adr_metrics_text(text)',
                             'adr_ops._metric_status(text)',
                             'adr_ops._metrics_health()', 'adr_ops._metrics_probes()',
                             'adr_ops._metrics_pipelines()', 'adr_ops._metrics_backup()',
                             'adr_ops._metrics_security()', 'adr_ops._metrics_maintenance()',
                             'adr_ops._metrics_incidents()', 'adr_ops._metrics_capacity()'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pg_monitor', f);
    END LOOP;
END
$grants$;
