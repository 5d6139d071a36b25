
-- capacity: size history, forecasts, recovery readiness and the weekly
-- review (runbook: Scaling Operations, Disaster Recovery, Weekly Review) ----

-- What the capacity_snapshot task measures, one row per series and time:
-- kind filesystem (name data, wal or tablespace:<name>; value bytes used,
-- capacity its size), database, wal (pg_wal), relation (the largest of the
-- database the task runs in) in bytes, and the counters xid (transactions
-- ever assigned), multixact (the next multixact ID at the last checkpoint)
-- and wal_lsn (bytes of WAL ever written).
CREATE TABLE adr_ops.size_history (
    taken_at timestamptz NOT NULL,
    kind text NOT NULL
        CHECK (kind OPERATOR(pg_catalog.=) ANY ('{filesystem,database,wal,relation,xid,multixact,wal_lsn}'::text[])),
    name text NOT NULL,
    value numeric NOT NULL,
    capacity numeric,
    PRIMARY KEY (kind, name, taken_at)
);
CREATE INDEX size_history_taken_at ON adr_ops.size_history (taken_at);
COMMENT ON TABLE adr_ops.size_history IS
    'sizes and counters stored by adr_capacity_snapshot() for the capacity forecasts';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.size_history', '');
GRANT SELECT ON adr_ops.size_history TO pg_monitor;

-- One pass over each source; the largest relations by one scan of
-- pg_class.  Returns the rows stored.
CREATE FUNCTION adr_ops.adr_capacity_snapshot(keep interval DEFAULT '400 days')
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH pruned AS (
        DELETE FROM adr_ops.size_history WHERE taken_at < now() - keep
    ), taken AS (
        SELECT clock_timestamp() AS at
    ), readings AS (
        SELECT 'filesystem' AS kind,
               CASE d.kind WHEN 'tablespace' THEN 'tablespace:' || d.name ELSE d.kind END AS name,
               d.used_bytes::numeric AS value, d.total_bytes::numeric AS capacity
          FROM adr_ops.adr_host_disk() d WHERE d.error IS NULL
        UNION ALL
        -- (a database or relation dropped meanwhile has no size: left out)
        SELECT 'database', d.datname, d.size, NULL
          FROM (SELECT datname, pg_database_size(oid) AS size FROM pg_database WHERE datallowconn) d
         WHERE d.size IS NOT NULL
        UNION ALL
        SELECT 'wal', 'pg_wal', coalesce(sum(size), 0), NULL FROM pg_ls_waldir()
        UNION ALL
        (SELECT 'relation', r.name, r.size, NULL
           FROM (SELECT c.oid::regclass::text AS name, pg_total_relation_size(c.oid) AS size
                   FROM pg_class c
                  WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't') r
          WHERE r.size IS NOT NULL
          ORDER BY r.size DESC LIMIT 20)
        UNION ALL
        SELECT 'xid', 'cluster', pg_current_xact_id()::text::numeric, NULL
        UNION ALL
        SELECT 'multixact', 'cluster', (pg_control_checkpoint()).next_multixact_id::text::numeric, NULL
        UNION ALL
        SELECT 'wal_lsn', 'cluster', pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0'), NULL
    ), stored AS (
        INSERT INTO adr_ops.size_history (taken_at, kind, name, value, capacity)
        SELECT taken.at, r.kind, r.name, r.value, r.capacity FROM taken, readings r
        RETURNING 1
    )
    SELECT count(*)::integer FROM stored
$$;
COMMENT ON FUNCTION adr_ops.adr_capacity_snapshot(interval) IS
    'stores the sizes of file systems, databases, pg_wal and the largest relations, and the XID, multixact and WAL counters, in size_history; drops rows older than keep';
REVOKE ALL ON FUNCTION adr_ops.adr_capacity_snapshot(interval) FROM PUBLIC;

-- The forecast of each series over the last days: growth per day from a
-- least-squares fit, its R², and the days until the warning level, the
-- critical level and full.  File systems take their levels from the disk
-- thresholds (% of their size); databases from database_size (bytes), and
-- they are full when the data directory's file system is; the XID and
-- multixact ages from xid_wraparound (% of autovacuum_freeze_max_age, or of
-- autovacuum_multixact_freeze_max_age), full at the hard stop 3 million
-- short of wraparound.  No forecast from fewer than
-- 6 readings, over less than a day, or with R² under 0.7: the reason says
-- which.
CREATE FUNCTION adr_ops.adr_capacity_forecast(days integer DEFAULT 30,
    OUT kind text, OUT name text, OUT samples integer, OUT span interval,
    OUT current numeric, OUT growth_per_day numeric, OUT r2 numeric,
    OUT days_to_warn numeric, OUT days_to_crit numeric, OUT days_to_full numeric,
    OUT note text)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH h AS (
        SELECT s.kind, s.name, s.taken_at, s.value, s.capacity
          FROM adr_ops.size_history s
         WHERE s.taken_at > now() - make_interval(days => days)
           AND s.kind IN ('filesystem', 'database', 'wal', 'relation', 'xid', 'multixact')
    ), fit AS (
        SELECT h.kind, h.name, count(*)::integer AS samples, max(h.taken_at) - min(h.taken_at) AS span,
               regr_slope(h.value, extract(epoch FROM h.taken_at) / 86400)::numeric AS slope,
               regr_r2(h.value, extract(epoch FROM h.taken_at) / 86400)::numeric AS r2,
               (array_agg(h.value ORDER BY h.taken_at DESC))[1] AS last,
               (array_agg(h.capacity ORDER BY h.taken_at DESC))[1] AS capacity
          FROM h GROUP BY h.kind, h.name
    ), xid AS (
        SELECT max(age(datfrozenxid))::numeric AS age,
               current_setting('autovacuum_freeze_max_age')::numeric AS freeze_max,
               max(mxid_age(datminmxid))::numeric AS mxid_age,
               current_setting('autovacuum_multixact_freeze_max_age')::numeric AS mxid_freeze_max
          FROM pg_database
    ), data_fs AS (
        SELECT f.capacity - f.last AS free FROM fit f WHERE f.kind = 'filesystem' AND f.name = 'data'
    ), wal_fs AS (
        SELECT f.capacity - f.last AS free FROM fit f WHERE f.kind = 'filesystem' AND f.name = 'wal'
    ), levels AS (
        SELECT f.*,
               CASE f.kind WHEN 'xid' THEN x.age WHEN 'multixact' THEN x.mxid_age ELSE f.last END AS now_at,
               CASE f.kind
                    WHEN 'filesystem' THEN f.capacity * t.warn / 100
                    WHEN 'database' THEN t.warn
                    WHEN 'xid' THEN x.freeze_max * t.warn / 100
                    WHEN 'multixact' THEN x.mxid_freeze_max * t.warn / 100 END AS warn_at,
               CASE f.kind
                    WHEN 'filesystem' THEN f.capacity * t.crit / 100
                    WHEN 'database' THEN t.crit
                    WHEN 'xid' THEN x.freeze_max * t.crit / 100
                    WHEN 'multixact' THEN x.mxid_freeze_max * t.crit / 100 END AS crit_at,
               CASE f.kind
                    WHEN 'filesystem' THEN f.capacity
                    WHEN 'database' THEN f.last + (SELECT free FROM data_fs)
                    WHEN 'wal' THEN f.last + coalesce((SELECT free FROM wal_fs), (SELECT free FROM data_fs))
                    WHEN 'xid' THEN 2147483648 - 3000000
                    WHEN 'multixact' THEN 2147483648 - 3000000 END AS full_at,
               CASE WHEN f.samples < 6 OR f.span < interval '1 day'
                    THEN format('history too short: %s over %s; a forecast needs 6 readings over a day',
                                adr_ops._count_of(f.samples, 'reading'), date_trunc('minute', f.span))
                    WHEN coalesce(f.r2, 0) < 0.7 AND f.slope <> 0
                    THEN format('too noisy to forecast: R² %s, a forecast needs 0.7', round(f.r2::numeric, 2))
                    WHEN f.slope <= 0 THEN 'not growing' END AS reason
          FROM fit f CROSS JOIN xid x
          LEFT JOIN LATERAL (
                SELECT th.warn, th.crit FROM adr_ops.health_thresholds th
                 WHERE th.check_name IN (CASE f.kind WHEN 'filesystem' THEN 'disk_' || f.name
                                                     WHEN 'database' THEN 'database_size'
                                                     WHEN 'xid' THEN 'xid_wraparound'
                                                     WHEN 'multixact' THEN 'xid_wraparound' END,
                                         CASE WHEN f.kind = 'filesystem' THEN 'disk_' || split_part(f.name, ':', 1) END)
                 ORDER BY th.check_name = 'disk_' || f.name DESC LIMIT 1) t ON true
    )
    SELECT l.kind, l.name, l.samples, l.span, l.now_at,
           CASE WHEN l.samples >= 6 AND l.span >= interval '1 day' THEN round(l.slope::numeric, 2) END,
           CASE WHEN l.samples >= 6 AND l.span >= interval '1 day' THEN round(l.r2::numeric, 3) END,
           -- (greatest() ignores NULL: a series without a level has no days to it)
           CASE WHEN l.reason IS NULL AND l.warn_at IS NOT NULL THEN greatest(round((l.warn_at - l.now_at) / l.slope, 1), 0) END,
           CASE WHEN l.reason IS NULL AND l.crit_at IS NOT NULL THEN greatest(round((l.crit_at - l.now_at) / l.slope, 1), 0) END,
           CASE WHEN l.reason IS NULL AND l.full_at IS NOT NULL THEN greatest(round((l.full_at - l.now_at) / l.slope, 1), 0) END,
           l.reason
      FROM levels l
     ORDER BY l.kind, l.name
$$;
COMMENT ON FUNCTION adr_ops.adr_capacity_forecast(integer) IS
    'growth per day, R² and days until the warning level, the critical level and full, per file system, database, pg_wal, large relation and the XID and multixact ages';
REVOKE ALL ON FUNCTION adr_ops.adr_capacity_forecast(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_capacity_forecast(integer) TO pg_monitor;

-- The capacity health check: the soonest day a forecast reaches a critical
-- level (or full, where there is none), in days: lower is worse.
CREATE FUNCTION adr_ops._check_capacity() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH f AS (
        SELECT f.*, coalesce(f.days_to_crit, f.days_to_full) AS days
          FROM adr_ops.adr_capacity_forecast() f
         WHERE f.kind <> 'relation'
    )
    SELECT 'capacity', min(f.days), 'days',
           coalesce((SELECT format('soonest: %s %s reaches its %s in %s days (growth %s per day, R² %s)',
                                   o.kind, o.name,
                                   CASE WHEN o.days_to_crit IS NOT NULL THEN 'critical level' ELSE 'limit' END,
                                   o.days, o.growth_per_day, o.r2)
                       FROM f o WHERE o.days IS NOT NULL ORDER BY o.days, o.kind, o.name LIMIT 1),
                    CASE WHEN count(*) = 0
                         THEN 'no size history: the capacity_snapshot task stores it'
                         ELSE format('no forecast reaches a limit: %s', adr_ops._count_of(count(*), 'series'))
                              || CASE WHEN count(f.note) > 0
                                      THEN format(', %s without a forecast (%s)', count(f.note),
                                                  string_agg(DISTINCT split_part(f.note, ':', 1), '; '))
                                      ELSE '' END END),
           NULL, NULL
      FROM f
$$;
REVOKE ALL ON FUNCTION adr_ops._check_capacity() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_capacity() TO pg_monitor;
INSERT INTO adr_ops.health_thresholds (check_name, warn, crit) VALUES ('capacity', 30, 7);
INSERT INTO adr_ops.health_checks (name, position) VALUES ('capacity', 160);

-- The runbook's disaster recovery: the last known good backup, how long a
-- restore of it would take today, and how much would be lost.  The restore
-- time is the one measured when it was verified, scaled by the growth of
-- its database since (size history), plus, with WAL archiving, the replay
-- of the WAL written since at adr_ops.wal_replay_rate.  The recovery point
-- is the last archived WAL segment with archiving, else the backup itself.
CREATE FUNCTION adr_ops.adr_recovery_readiness(
    OUT last_good_backup text, OUT verified_at timestamptz, OUT backup_taken_at timestamptz,
    OUT restore_time interval, OUT restore_time_derivation text,
    OUT recovery_point timestamptz, OUT data_loss interval, OUT recovery_point_derivation text,
    OUT rto_target interval, OUT rpo_target interval)
RETURNS record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH settings AS (
        SELECT coalesce(current_setting('adr_ops.recovery_time_objective', true), '4h')::interval AS rto,
               coalesce(current_setting('adr_ops.recovery_point_objective', true), '1h')::interval AS rpo,
               pg_size_bytes(coalesce(current_setting('adr_ops.wal_replay_rate', true), '32MB')) AS replay_rate,
               current_setting('archive_mode') <> 'off' AS archiving
    ), good AS (
        SELECT v.* FROM adr_ops.backup_verifications v
         WHERE v.status = 'passed' ORDER BY v.finished_at DESC LIMIT 1
    ), growth AS (
        -- the data directory's used bytes now and at the verification
        SELECT (SELECT h.value FROM adr_ops.size_history h
                 WHERE h.kind = 'filesystem' AND h.name = 'data' ORDER BY h.taken_at DESC LIMIT 1) AS now_bytes,
               (SELECT h.value FROM adr_ops.size_history h, good g
                 WHERE h.kind = 'filesystem' AND h.name = 'data' AND h.taken_at <= g.finished_at
                 ORDER BY h.taken_at DESC LIMIT 1) AS then_bytes,
               (SELECT h.value FROM adr_ops.size_history h, good g
                 WHERE h.kind = 'wal_lsn' AND h.taken_at <= coalesce(g.backup_mtime, g.started_at)
                 ORDER BY h.taken_at DESC LIMIT 1) AS lsn_then,
               pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                                    ELSE pg_current_wal_lsn() END, '0/0') AS lsn_now
    ), est AS (
        SELECT g.*, s.*, gr.*, a.last_archived_time,
               coalesce(gr.now_bytes / nullif(gr.then_bytes, 0), 1) AS scale,
               CASE WHEN s.archiving AND gr.lsn_then IS NOT NULL
                    THEN (gr.lsn_now - gr.lsn_then) / s.replay_rate END AS replay_s
          FROM good g CROSS JOIN settings s CROSS JOIN growth gr CROSS JOIN pg_stat_archiver a
    )
    SELECT e.path, e.finished_at, coalesce(e.backup_mtime, e.started_at),
           make_interval(secs => round(e.duration_ms * e.scale / 1000 + coalesce(e.replay_s, 0))),
           format('restore measured at verification %s ms%s%s',
                  e.duration_ms,
                  CASE WHEN e.scale <> 1 THEN format(', scaled by %s for the data directory''s growth since', round(e.scale, 3)) ELSE '' END,
                  CASE WHEN e.replay_s IS NOT NULL
                       THEN format(', plus %s of WAL written since the backup replayed at %s/s', pg_size_pretty(e.lsn_now - e.lsn_then), pg_size_pretty(e.replay_rate))
                       WHEN e.archiving THEN ', plus WAL replay not estimated: no size history from before the backup'
                       ELSE '' END),
           CASE WHEN e.archiving AND e.last_archived_time IS NOT NULL THEN e.last_archived_time
                ELSE coalesce(e.backup_mtime, e.started_at) END,
           now() - CASE WHEN e.archiving AND e.last_archived_time IS NOT NULL THEN e.last_archived_time
                        ELSE coalesce(e.backup_mtime, e.started_at) END,
           CASE WHEN e.archiving AND e.last_archived_time IS NOT NULL
                THEN 'the last archived WAL segment (pg_stat_archiver)'
                ELSE 'the backup itself: no WAL archive to replay beyond it' END,
           e.rto, e.rpo
      FROM est e
$$;
COMMENT ON FUNCTION adr_ops.adr_recovery_readiness() IS
    'the last known good backup, the estimated restore time and data loss, how each was derived, and the targets';
REVOKE ALL ON FUNCTION adr_ops.adr_recovery_readiness() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_recovery_readiness() TO pg_monitor;

-- The recovery health check: the estimated restore time in seconds against
-- adr_ops.recovery_time_objective; WARNING when either estimate misses its
-- target.  Without a good backup there is nothing to estimate (the
-- backup_verification check is CRITICAL then).
CREATE FUNCTION adr_ops._check_recovery() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'recovery', round(extract(epoch FROM r.restore_time)::numeric, 0), 's',
           CASE WHEN r.last_good_backup IS NULL THEN 'no verified backup: recovery time and point cannot be estimated'
                ELSE format('restore of %s: about %s (target %s); data loss: %s (target %s)',
                            r.last_good_backup, r.restore_time, r.rto_target,
                            date_trunc('second', r.data_loss), r.rpo_target) END,
           NULL,
           CASE WHEN r.restore_time > r.rto_target OR r.data_loss > r.rpo_target THEN 'WARNING' END
      FROM (SELECT 1) one LEFT JOIN adr_ops.adr_recovery_readiness() r ON true
$$;
REVOKE ALL ON FUNCTION adr_ops._check_recovery() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_recovery() TO pg_monitor;
INSERT INTO adr_ops.health_checks (name, position) VALUES ('recovery', 170);

-- The runbook's weekly review as rows: growth and forecasts, XID headroom,
-- checks that were not OK during the week and for how long, maintenance
-- runs, backups verified, the queries that got slower, and the pipelines'
-- failure rates, for the seven days before week_ending.
CREATE FUNCTION adr_ops.adr_weekly_review(week_ending timestamptz DEFAULT now(),
    OUT section text, OUT item text, OUT value numeric, OUT unit text, OUT detail text)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH w AS (
        SELECT week_ending - interval '7 days' AS w0, week_ending AS w1, week_ending - interval '14 days' AS p0
    ), forecast AS (
        SELECT * FROM adr_ops.adr_capacity_forecast(7)
    ), health AS (
        SELECT h.check_name, h.status, h.taken_at,
               lead(h.taken_at) OVER (PARTITION BY h.check_name ORDER BY h.taken_at) AS next_at
          FROM adr_ops.health_history h, w WHERE h.taken_at >= w.w0 AND h.taken_at < w.w1
    ), counters AS (
        -- each statement's cumulative counters at the three bounds
        SELECT c.queryid, c.userid, c.dbid, c.toplevel, b.bound,
               (array_agg(c.calls ORDER BY s.taken_at DESC))[1] AS calls,
               (array_agg(c.total_ms ORDER BY s.taken_at DESC))[1] AS total_ms
          FROM adr_ops.statement_counters c
          JOIN adr_ops.statement_snapshots s ON s.id = c.snapshot_id
          JOIN w ON true
          CROSS JOIN LATERAL (VALUES (0, w.p0), (1, w.w0), (2, w.w1)) AS b(bound, at)
         WHERE s.taken_at <= b.at
         GROUP BY c.queryid, c.userid, c.dbid, c.toplevel, b.bound
    ), means AS (
        -- a statement's mean time this week and the week before (a reset
        -- of pg_stat_statements in between gives no figure)
        SELECT k2.queryid, k2.dbid, k2.userid,
               (k2.total_ms - k1.total_ms) / nullif(k2.calls - k1.calls, 0) AS mean_now,
               (k1.total_ms - k0.total_ms) / nullif(k1.calls - k0.calls, 0) AS mean_before,
               k2.calls - k1.calls AS calls
          FROM counters k2
          JOIN counters k1 USING (queryid, userid, dbid, toplevel)
          JOIN counters k0 USING (queryid, userid, dbid, toplevel)
         WHERE k2.bound = 2 AND k1.bound = 1 AND k0.bound = 0
           AND k2.calls >= k1.calls AND k1.calls >= k0.calls
    )
    SELECT 'growth', f.kind || ' ' || f.name, f.growth_per_day,
           CASE f.kind WHEN 'xid' THEN 'transactions/day' ELSE 'bytes/day' END,
           coalesce(format('%s days to the critical level, %s to full', f.days_to_crit, f.days_to_full), f.note)
      FROM forecast f WHERE f.kind IN ('filesystem', 'database', 'wal')
    UNION ALL
    SELECT 'xid', CASE f.kind WHEN 'xid' THEN 'transaction ID age' ELSE 'multixact ID age' END,
           f.current, CASE f.kind WHEN 'xid' THEN 'transactions' ELSE 'multixacts' END,
           coalesce(format('%s per day; %s days to the xid_wraparound warning level, %s to the hard stop',
                           f.growth_per_day, f.days_to_warn, f.days_to_full), f.note)
      FROM forecast f WHERE f.kind IN ('xid', 'multixact')
    UNION ALL
    SELECT 'checks', h.check_name, count(*), 'snapshots not OK',
           format('%s; about %s not OK, first %s, last %s',
                  string_agg(DISTINCT h.status, '/'),
                  justify_interval(sum(coalesce(h.next_at, w.w1) - h.taken_at)),
                  date_trunc('minute', min(h.taken_at)), date_trunc('minute', max(h.taken_at)))
      FROM health h, w WHERE h.status <> 'OK'
     GROUP BY h.check_name
    UNION ALL
    SELECT 'maintenance', r.task, count(*), 'runs',
           format('%s succeeded, %s failed, %s skipped', count(*) FILTER (WHERE r.status = 'succeeded'),
                  count(*) FILTER (WHERE r.status = 'failed'), count(*) FILTER (WHERE r.status = 'skipped'))
      FROM adr_ops.task_runs r, w WHERE r.started_at >= w.w0 AND r.started_at < w.w1
     GROUP BY r.task
    UNION ALL
    SELECT 'backups', 'verifications', count(v.id), 'verifications',
           format('%s passed, %s failed; last passed: %s',
                  count(*) FILTER (WHERE v.status = 'passed'), count(*) FILTER (WHERE v.status = 'failed'),
                  coalesce((SELECT l.path || ' at ' || date_trunc('minute', l.finished_at)
                              FROM adr_ops.backup_verifications l WHERE l.status = 'passed'
                             ORDER BY l.finished_at DESC LIMIT 1), 'never'))
      FROM w LEFT JOIN adr_ops.backup_verifications v ON v.started_at >= w.w0 AND v.started_at < w.w1
    UNION ALL
    (SELECT 'queries', m.queryid::text, round((100 * (m.mean_now / m.mean_before - 1))::numeric, 1), '% slower',
            format('mean %s ms over %s calls, was %s ms: %s', round(m.mean_now::numeric, 2), m.calls,
                   round(m.mean_before::numeric, 2), left(regexp_replace(t.query, '\s+', ' ', 'g'), 100))
       FROM means m
       LEFT JOIN adr_ops.statement_texts t USING (queryid, userid, dbid)
      WHERE m.mean_before > 0 AND m.mean_now > 1.2 * m.mean_before
      ORDER BY m.mean_now / m.mean_before DESC LIMIT 10)
    UNION ALL
    SELECT 'pipelines', j.pipeline, round(100.0 * count(*) FILTER (WHERE j.status = 'failed') / count(*), 1),
           '% failed',
           format('%s submitted in the week: %s succeeded, %s failed, %s cancelled, %s queued or running',
                  count(*), count(*) FILTER (WHERE j.status = 'succeeded'), count(*) FILTER (WHERE j.status = 'failed'),
                  count(*) FILTER (WHERE j.status = 'cancelled'), count(*) FILTER (WHERE j.status IN ('queued', 'running')))
      FROM adr_ops.processing_jobs j, w
     WHERE j.created_at >= w.w0 AND j.created_at < w.w1
       -- through the status and completed_at indexes (see jobs.sql)
       AND (j.status = 'queued' OR j.status = 'running' OR j.completed_at >= w.w0)
     GROUP BY j.pipeline
$$;
COMMENT ON FUNCTION adr_ops.adr_weekly_review(timestamptz) IS
    'the runbook''s weekly review as rows: growth, XID headroom, checks not OK, maintenance, backups, slower queries, pipelines';
REVOKE ALL ON FUNCTION adr_ops.adr_weekly_review(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_weekly_review(timestamptz) TO pg_monitor;

-- Text as one Markdown table cell: on one line, its bars escaped.
CREATE FUNCTION adr_ops._markdown_cell(t text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT replace(regexp_replace(coalesce(t, ''), '\s+', ' ', 'g'), '|', '\|') $$;
COMMENT ON FUNCTION adr_ops._markdown_cell(text) IS
    'API: private. Text as one Markdown table cell';
REVOKE ALL ON FUNCTION adr_ops._markdown_cell(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._markdown_cell(text) TO pg_monitor;

-- The same review as Markdown, one table per section.
CREATE FUNCTION adr_ops.adr_weekly_review_markdown(week_ending timestamptz DEFAULT now())
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(E'# Weekly review, %s to %s\n', (week_ending - interval '7 days')::date, week_ending::date)
           || coalesce(string_agg(s.md, '' ORDER BY s.ord), E'\nNothing recorded in the week.\n')
      FROM (SELECT r.section, min(o.ord) AS ord,
                   format(E'\n## %s\n\n| item | value | unit | detail |\n|---|---|---|---|\n', initcap(r.section))
                   || string_agg(format(E'| %s | %s | %s | %s |\n',
                                        adr_ops._markdown_cell(r.item), coalesce(r.value::text, ''), r.unit,
                                        adr_ops._markdown_cell(r.detail)),
                                 '' ORDER BY r.item) AS md
              FROM adr_ops.adr_weekly_review(week_ending) r
              JOIN (VALUES ('growth', 1), ('xid', 2), ('checks', 3), ('maintenance', 4), ('backups', 5),
                           ('queries', 6), ('pipelines', 7)) AS o(section, ord) USING (section)
             GROUP BY r.section) s
$$;
COMMENT ON FUNCTION adr_ops.adr_weekly_review_markdown(timestamptz) IS
    'the weekly review as Markdown, one table per section';
REVOKE ALL ON FUNCTION adr_ops.adr_weekly_review_markdown(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_weekly_review_markdown(timestamptz) TO pg_monitor;

-- Sizes hourly, at a minute no other default schedule uses.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('capacity_snapshot', '7 * * * *', 'capacity_snapshot', pg_catalog.current_database());
