
-- report: the weekly review as one self-contained HTML page (runbook:
-- Weekly System Review, for a DBA without Grafana) --------------------------

-- Text as HTML character data or a double-quoted attribute value: every
-- value on the page goes through here, since names come from tenants.
CREATE FUNCTION adr_ops._html(t text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT replace(replace(replace(replace(replace(coalesce(t, ''),
           '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;
COMMENT ON FUNCTION adr_ops._html(text) IS
    'API: private. Text escaped for HTML character data and attribute values';
REVOKE ALL ON FUNCTION adr_ops._html(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._html(text) TO pg_monitor;

-- A check's history between w0 and w1 as a small inline SVG chart: a band
-- of its statuses along the bottom (each snapshot's colour until the next
-- one) and its value as a line above, scaled to its own range.
CREATE FUNCTION adr_ops._report_spark(check_name text, w0 timestamptz, w1 timestamptz)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH h AS (
        SELECT h.taken_at, h.status, h.value,
               lead(h.taken_at) OVER (ORDER BY h.taken_at) AS next_at
          FROM adr_ops.health_history h
         WHERE h.check_name = _report_spark.check_name AND h.taken_at >= w0 AND h.taken_at <= w1
    ), s AS (
        SELECT h.status, h.value, min(h.value) OVER () AS lo, max(h.value) OVER () AS hi, h.taken_at,
               round((240 * extract(epoch FROM h.taken_at - w0) / extract(epoch FROM w1 - w0))::numeric, 1) AS x0,
               round((240 * extract(epoch FROM coalesce(h.next_at, w1) - w0) / extract(epoch FROM w1 - w0))::numeric, 1) AS x1
          FROM h
    )
    SELECT '<svg class="spark" width="240" height="36" viewBox="0 0 240 36" role="img" aria-label="'
           || adr_ops._html(_report_spark.check_name) || ' over the period">'
           || '<rect x="0" y="0" width="240" height="36" fill="#fafafa"/>'
           || coalesce(string_agg(format('<rect x="%s" y="30" width="%s" height="6" class="s-%s"/>',
                                         s.x0, greatest(s.x1 - s.x0, 0.5), lower(s.status)), '' ORDER BY s.taken_at), '')
           || coalesce('<polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="'
                       || string_agg(format('%s,%s', s.x0,
                                            CASE WHEN s.hi = s.lo THEN 15
                                                 ELSE round(2 + 24 * (1 - (s.value - s.lo) / (s.hi - s.lo)), 1) END),
                                     ' ' ORDER BY s.taken_at) FILTER (WHERE s.value IS NOT NULL)
                       || '"/>', '')
           || CASE WHEN count(*) = 0 THEN '<text x="6" y="20" class="none">no history</text>' ELSE '' END
           || '</svg>'
      FROM s
$$;
COMMENT ON FUNCTION adr_ops._report_spark(text, timestamptz, timestamptz) IS
    'API: private. A check''s statuses and values between two times as an inline SVG chart';
REVOKE ALL ON FUNCTION adr_ops._report_spark(text, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._report_spark(text, timestamptz, timestamptz) TO pg_monitor;

-- The weekly review as one HTML page with nothing to fetch: inline CSS,
-- inline SVG, no scripts, and a Content-Security-Policy that forbids any
-- request.  The last days days: the checks now and over the period, the
-- slowest queries against the period before, bloat, maintenance runs,
-- backups verified, pipelines and their failure rates, open incidents and
-- checks whose last alert is not OK.  scripts/adr-report writes it to a
-- file.  Every value is escaped with _html().
CREATE FUNCTION adr_ops.adr_report_html(days integer DEFAULT 7)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w1 timestamptz := now();
    w0 timestamptz;
    p0 timestamptz;
    fmt constant text := 'YYYY-MM-DD HH24:MI';
    head text;
    checks text;
    queries text;
    bloat text;
    maint text;
    backups text;
    pipes text;
    open_items text;
BEGIN
    IF days IS NULL OR days < 1 OR days > 366 THEN
        RAISE EXCEPTION 'invalid number of days: %', coalesce(days::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'The report covers 1 to 366 days.';
    END IF;
    w0 := w1 - make_interval(days => days);
    p0 := w0 - make_interval(days => days);

    head := '<!DOCTYPE html>' || E'\n'
        || '<html lang="en"><head><meta charset="utf-8">'
        || '<meta http-equiv="Content-Security-Policy" content="default-src ''none''; style-src ''unsafe-inline''">'
        || '<meta name="viewport" content="width=device-width, initial-scale=1">'
        || '<title>adr_ops review of ' || adr_ops._html(current_database()) || '</title><style>'
        || 'body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212121;margin:24px;max-width:1200px}'
        || 'h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:2px solid #e0e0e0;padding-bottom:4px}'
        || '.meta{color:#616161;margin:0 0 12px}table{border-collapse:collapse;width:100%}'
        || 'th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:middle}'
        || 'th{background:#f5f5f5;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}'
        || '.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}'
        || '.b-ok{background:#2e7d32}.b-warning{background:#f9a825;color:#212121}.b-critical{background:#c62828}.b-unknown{background:#757575}'
        || '.s-ok{fill:#66bb6a}.s-warning{fill:#fbc02d}.s-critical{fill:#e53935}.s-unknown{fill:#9e9e9e}'
        || '.none{fill:#9e9e9e;font-size:11px}.empty{color:#757575;font-style:italic}'
        || '.up{color:#c62828}.down{color:#2e7d32}.q{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;max-width:520px;overflow-wrap:anywhere}'
        || '.summary span{margin-right:14px}.detail{color:#616161;font-size:12px}'
        || '</style></head><body>' || E'\n'
        || '<h1>Weekly review of <span id="database">' || adr_ops._html(current_database()) || '</span></h1>'
        || format('<p class="meta">From %s to %s (%s days), the period before from %s. PostgreSQL %s, adr_ops %s.</p>',
                  adr_ops._html(to_char(w0, fmt)), adr_ops._html(to_char(w1, fmt || ' TZ')), days,
                  adr_ops._html(to_char(p0, fmt)), adr_ops._html(current_setting('server_version')),
                  adr_ops._html((SELECT extversion FROM pg_extension WHERE extname = 'adr_ops')))
        || E'\n';

    -- The checks now, with their period as a chart and how often they were not OK.
    WITH now_ AS (
        SELECT h.*, row_number() OVER () AS ord FROM adr_ops.adr_health_check() h
    ), past AS (
        SELECT h.check_name, count(*) AS snaps, count(*) FILTER (WHERE h.status <> 'OK') AS not_ok
          FROM adr_ops.health_history h WHERE h.taken_at >= w0 AND h.taken_at <= w1
         GROUP BY h.check_name
    )
    SELECT format('<section id="checks"><h2>Health checks now</h2><p class="summary" data-checks="%1$s" data-ok="%2$s" data-warning="%3$s" data-critical="%4$s" data-unknown="%5$s">'
                  '<span><b>%1$s</b> checks</span><span class="badge b-ok">%2$s OK</span> <span class="badge b-warning">%3$s WARNING</span> '
                  '<span class="badge b-critical">%4$s CRITICAL</span> <span class="badge b-unknown">%5$s UNKNOWN</span></p>',
                  count(*), count(*) FILTER (WHERE n.status = 'OK'), count(*) FILTER (WHERE n.status = 'WARNING'),
                  count(*) FILTER (WHERE n.status = 'CRITICAL'), count(*) FILTER (WHERE n.status = 'UNKNOWN'))
           || '<table><thead><tr><th>check</th><th>status</th><th>value</th><th>warn / crit</th><th>last '
           || days || ' days</th><th>snapshots not OK</th><th>detail</th></tr></thead><tbody>'
           || coalesce(string_agg(format('<tr class="check" data-check="%s" data-status="%s"><td>%s</td><td><span class="badge b-%s">%s</span></td>'
                                         '<td class="n">%s</td><td class="n">%s</td><td>%s</td><td class="n">%s</td><td class="detail">%s</td></tr>',
                                         adr_ops._html(n.check_name), adr_ops._html(n.status), adr_ops._html(n.check_name),
                                         lower(n.status), adr_ops._html(n.status),
                                         adr_ops._html(trim(coalesce(n.value::text, '') || ' ' || coalesce(n.unit, ''))),
                                         adr_ops._html(coalesce(n.warn::text, '-') || ' / ' || coalesce(n.crit::text, '-')),
                                         adr_ops._report_spark(n.check_name, w0, w1),
                                         coalesce(p.not_ok || ' of ' || p.snaps, '-'),
                                         adr_ops._html(n.detail)), '' ORDER BY n.ord), '')
           || '</tbody></table></section>' || E'\n'
      INTO checks
      FROM now_ n LEFT JOIN past p USING (check_name);

    -- The slowest statements of the period by total time, and how their
    -- mean moved against the period before.  Each entry's cumulative
    -- counters at a bound are its last stored ones at or before it (a
    -- snapshot stores only the entries that changed); a reset of
    -- pg_stat_statements in a period counts from zero.  The oldest stored
    -- snapshot is a baseline, as on the Grafana panels: a bound before it
    -- takes its counters, so what ran before the history began is not
    -- counted in a period; an entry first stored after it counts whole.
    WITH counters AS (
        SELECT c.queryid, c.userid, c.dbid, c.toplevel, b.bound,
               (array_agg(c.calls ORDER BY s.taken_at DESC))[1] AS calls,
               (array_agg(c.total_ms ORDER BY s.taken_at DESC))[1] AS total_ms
          FROM adr_ops.statement_counters c
          JOIN adr_ops.statement_snapshots s ON s.id = c.snapshot_id
          CROSS JOIN LATERAL (VALUES (0, p0), (1, w0), (2, w1)) AS b(bound, at)
         WHERE s.taken_at <= greatest(b.at, (SELECT min(f.taken_at) FROM adr_ops.statement_snapshots f))
         GROUP BY c.queryid, c.userid, c.dbid, c.toplevel, b.bound
    ), periods AS (
        SELECT k2.queryid, k2.userid, k2.dbid,
               CASE WHEN k2.calls >= coalesce(k1.calls, 0) THEN k2.calls - coalesce(k1.calls, 0) ELSE k2.calls END AS calls,
               CASE WHEN k2.calls >= coalesce(k1.calls, 0) THEN k2.total_ms - coalesce(k1.total_ms, 0) ELSE k2.total_ms END AS total_ms,
               CASE WHEN k1.calls >= coalesce(k0.calls, 0) THEN k1.calls - coalesce(k0.calls, 0) ELSE k1.calls END AS calls_before,
               CASE WHEN k1.calls >= coalesce(k0.calls, 0) THEN k1.total_ms - coalesce(k0.total_ms, 0) ELSE k1.total_ms END AS total_before
          FROM counters k2
          LEFT JOIN counters k1 ON k1.bound = 1 AND (k1.queryid, k1.userid, k1.dbid, k1.toplevel) = (k2.queryid, k2.userid, k2.dbid, k2.toplevel)
          LEFT JOIN counters k0 ON k0.bound = 0 AND (k0.queryid, k0.userid, k0.dbid, k0.toplevel) = (k2.queryid, k2.userid, k2.dbid, k2.toplevel)
         WHERE k2.bound = 2
    ), top AS (
        SELECT p.queryid, p.userid, p.dbid, sum(p.calls) AS calls, sum(p.total_ms) AS total_ms,
               sum(p.total_ms) / nullif(sum(p.calls), 0) AS mean_ms,
               sum(p.total_before) / nullif(sum(p.calls_before), 0) AS mean_before
          FROM periods p
         GROUP BY p.queryid, p.userid, p.dbid
        HAVING sum(p.calls) > 0
         ORDER BY sum(p.total_ms) DESC
         LIMIT 10
    )
    SELECT '<section id="queries"><h2>Slowest queries</h2>'
           || CASE WHEN count(*) = 0
                   THEN '<p class="empty">No statement snapshots in the period (scheduler task statement_snapshot, pg_stat_statements).</p>'
                   ELSE '<table><thead><tr><th>query</th><th>database</th><th>calls</th><th>total ms</th><th>mean ms</th>'
                        || '<th>mean ms before</th><th>change</th></tr></thead><tbody>'
                        || string_agg(format('<tr class="query" data-queryid="%s"><td class="q">%s</td><td>%s</td><td class="n">%s</td><td class="n">%s</td>'
                                             '<td class="n">%s</td><td class="n">%s</td><td class="n %s">%s</td></tr>',
                                             t.queryid, adr_ops._html(left(regexp_replace(coalesce(x.query, '(text not stored)'), '\s+', ' ', 'g'), 300)),
                                             adr_ops._html(coalesce(d.datname::text, t.dbid::text)), t.calls,
                                             round(t.total_ms::numeric, 1), round(t.mean_ms::numeric, 2),
                                             coalesce(round(t.mean_before::numeric, 2)::text, '-'),
                                             CASE WHEN t.mean_before > 0 AND t.mean_ms > t.mean_before THEN 'up'
                                                  WHEN t.mean_before > 0 AND t.mean_ms < t.mean_before THEN 'down' ELSE '' END,
                                             CASE WHEN t.mean_before > 0
                                                  THEN to_char(round((100 * (t.mean_ms / t.mean_before - 1))::numeric, 1), 'FMSG999999990.0') || '%'
                                                  ELSE 'new' END),
                                      '' ORDER BY t.total_ms DESC)
                        || '</tbody></table>' END
           || '</section>' || E'\n'
      INTO queries
      FROM top t
      LEFT JOIN adr_ops.statement_texts x USING (queryid, userid, dbid)
      LEFT JOIN pg_database d ON d.oid = t.dbid;

    -- Bloat, estimated now (the report is not a scrape); a failure is said
    -- on the page rather than losing the rest of it.
    BEGIN
        SELECT '<section id="bloat"><h2>Bloat</h2>'
               || CASE WHEN count(*) = 0 THEN '<p class="empty">No table or index over 1 MB with measurable bloat.</p>'
                       ELSE '<table><thead><tr><th>relation</th><th>kind</th><th>size</th><th>bloat</th><th>bloat %</th><th>suggestion</th></tr></thead><tbody>'
                            || string_agg(format('<tr class="bloat"><td>%s</td><td>%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="detail">%s</td></tr>',
                                                 adr_ops._html(b.schemaname || '.' || b.relname), adr_ops._html(b.kind),
                                                 adr_ops._html(pg_size_pretty(b.total_bytes)), adr_ops._html(pg_size_pretty(b.bloat_bytes)),
                                                 coalesce(round(b.bloat_pct::numeric, 1)::text, '-'), adr_ops._html(b.suggestion)),
                                          '' ORDER BY b.bloat_bytes DESC NULLS LAST)
                            || '</tbody></table>' END
               || '</section>' || E'\n'
          INTO bloat
          FROM (SELECT * FROM adr_ops.adr_bloat_report() r
                 WHERE r.bloat_bytes > 0 ORDER BY r.bloat_bytes DESC NULLS LAST LIMIT 10) b;
    EXCEPTION WHEN OTHERS THEN
        bloat := '<section id="bloat"><h2>Bloat</h2><p class="empty">Could not be estimated: '
                 || adr_ops._html(SQLERRM) || '</p></section>' || E'\n';
    END;

    -- Maintenance runs of the period, by task.
    SELECT '<section id="maintenance"><h2>Maintenance runs</h2>'
           || CASE WHEN count(*) = 0 THEN '<p class="empty">No task ran in the period.</p>'
                   ELSE '<table><thead><tr><th>task</th><th>runs</th><th>succeeded</th><th>failed</th><th>skipped</th>'
                        || '<th>last run</th><th>last failure</th></tr></thead><tbody>'
                        || string_agg(format('<tr class="task" data-task="%s"><td>%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td>'
                                             '<td class="n">%s</td><td>%s</td><td class="detail">%s</td></tr>',
                                             adr_ops._html(m.task), adr_ops._html(m.task), m.runs, m.succeeded, m.failed, m.skipped,
                                             adr_ops._html(to_char(m.last_at, fmt)), adr_ops._html(m.last_failure)),
                                      '' ORDER BY m.task)
                        || '</tbody></table>' END
           || '</section>' || E'\n'
      INTO maint
      FROM (SELECT r.task, count(*) AS runs,
                   count(*) FILTER (WHERE r.status = 'succeeded') AS succeeded,
                   count(*) FILTER (WHERE r.status = 'failed') AS failed,
                   count(*) FILTER (WHERE r.status = 'skipped') AS skipped,
                   max(r.started_at) AS last_at,
                   (array_agg(r.detail ORDER BY r.started_at DESC) FILTER (WHERE r.status = 'failed'))[1] AS last_failure
              FROM adr_ops.task_runs r
             WHERE r.started_at >= w0 AND r.started_at <= w1
             GROUP BY r.task) m;

    -- Backups verified in the period: how many, and the last 20.
    SELECT '<section id="backups"><h2>Backups verified</h2>'
           || format('<p class="summary" data-verifications="%1$s" data-passed="%2$s" data-failed="%3$s"><span><b>%1$s</b> verifications</span><span>%2$s passed</span><span>%3$s failed</span><span>last passed: %4$s</span></p>',
                     coalesce(max(v.n_all), 0), coalesce(max(v.n_passed), 0), coalesce(max(v.n_failed), 0),
                     adr_ops._html(coalesce((SELECT l.path || ' at ' || to_char(l.finished_at, fmt)
                                               FROM adr_ops.backup_verifications l WHERE l.status = 'passed'
                                              ORDER BY l.finished_at DESC LIMIT 1), 'never')))
           || CASE WHEN count(*) = 0 THEN ''
                   ELSE '<table><thead><tr><th>started</th><th>path</th><th>status</th><th>tables</th><th>rows</th><th>took</th><th>failures</th></tr></thead><tbody>'
                        || string_agg(format('<tr class="backup"><td>%s</td><td>%s</td><td><span class="badge b-%s">%s</span></td><td class="n">%s</td>'
                                             '<td class="n">%s</td><td class="n">%s</td><td class="detail">%s</td></tr>',
                                             adr_ops._html(to_char(v.started_at, fmt)), adr_ops._html(v.path),
                                             CASE v.status WHEN 'passed' THEN 'ok' WHEN 'failed' THEN 'critical' ELSE 'unknown' END,
                                             adr_ops._html(v.status), coalesce(v.tables_restored::text, '-'), coalesce(v.rows_counted::text, '-'),
                                             coalesce(round(v.duration_ms / 1000.0, 1) || ' s', '-'),
                                             adr_ops._html(array_to_string(v.failures, '; '))),
                                      '' ORDER BY v.id DESC)
                        || '</tbody></table>' END
           || '</section>' || E'\n'
      INTO backups
      FROM (SELECT b.*, count(*) OVER () AS n_all,
                   count(*) FILTER (WHERE b.status = 'passed') OVER () AS n_passed,
                   count(*) FILTER (WHERE b.status = 'failed') OVER () AS n_failed
              FROM adr_ops.backup_verifications b
             WHERE b.started_at >= w0 AND b.started_at <= w1 ORDER BY b.id DESC LIMIT 20) v;

    -- Pipelines: the jobs submitted in the period, and the share of the
    -- finished ones that failed.
    SELECT '<section id="pipelines"><h2>Pipelines</h2>'
           || CASE WHEN count(*) = 0 THEN '<p class="empty">No job submitted in the period.</p>'
                   ELSE '<table><thead><tr><th>pipeline</th><th>submitted</th><th>succeeded</th><th>failed</th><th>cancelled</th>'
                        || '<th>queued or running</th><th>failure rate</th><th></th><th>last error</th></tr></thead><tbody>'
                        || string_agg(format('<tr class="pipeline" data-pipeline="%s" data-failure-rate="%s"><td>%s</td><td class="n">%s</td><td class="n">%s</td>'
                                             '<td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td>'
                                             '<td><svg width="100" height="10" viewBox="0 0 100 10" role="img" aria-label="failure rate">'
                                             '<rect width="100" height="10" fill="#c8e6c9"/><rect width="%s" height="10" fill="#e53935"/></svg></td>'
                                             '<td class="detail">%s</td></tr>',
                                             adr_ops._html(j.pipeline), coalesce(j.rate::text, ''), adr_ops._html(j.pipeline),
                                             j.submitted, j.succeeded, j.failed, j.cancelled, j.active,
                                             coalesce(j.rate || '%', '-'), coalesce(j.rate, 0), adr_ops._html(j.last_error)),
                                      '' ORDER BY j.pipeline)
                        || '</tbody></table>' END
           || '</section>' || E'\n'
      INTO pipes
      FROM (SELECT p.pipeline, count(*) AS submitted,
                   count(*) FILTER (WHERE p.status = 'succeeded') AS succeeded,
                   count(*) FILTER (WHERE p.status = 'failed') AS failed,
                   count(*) FILTER (WHERE p.status = 'cancelled') AS cancelled,
                   count(*) FILTER (WHERE p.status IN ('queued', 'running')) AS active,
                   round(100.0 * count(*) FILTER (WHERE p.status = 'failed')
                         / nullif(count(*) FILTER (WHERE p.status IN ('succeeded', 'failed')), 0), 1) AS rate,
                   (array_agg(p.last_error ORDER BY p.completed_at DESC NULLS LAST)
                      FILTER (WHERE p.status = 'failed'))[1] AS last_error
              FROM adr_ops.processing_jobs p
             WHERE p.created_at >= w0 AND p.created_at <= w1
               -- through the status and completed_at indexes (see jobs.sql)
               AND (p.status = 'queued' OR p.status = 'running' OR p.completed_at >= w0)
             GROUP BY p.pipeline) j;

    -- What is open: incidents not closed, and the checks and probes whose
    -- last alert is not OK.
    SELECT '<section id="open"><h2>Open incidents and alerts</h2>'
           || format('<p class="summary" data-incidents="%1$s" data-alerts="%2$s" data-alerts-period="%3$s"><span><b>%1$s</b> incidents not closed</span><span><b>%2$s</b> checks alerting</span><span>%3$s alerts in the period</span></p>',
                     (SELECT count(*) FROM adr_ops.incidents i WHERE i.status <> 'closed'),
                     (SELECT count(*) FROM (SELECT DISTINCT ON (a.source, a.check_name) a.to_status FROM adr_ops.alerts a
                                             ORDER BY a.source, a.check_name, a.id DESC) l WHERE l.to_status <> 'OK'),
                     (SELECT count(*) FROM adr_ops.alerts a WHERE a.at >= w0 AND a.at <= w1))
           || coalesce((SELECT '<table><thead><tr><th>incident</th><th>severity</th><th>status</th><th>title</th><th>opened</th><th>overdue</th></tr></thead><tbody>'
                               || string_agg(format('<tr class="incident"><td class="n">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
                                                    i.id, adr_ops._html(i.severity), adr_ops._html(i.status), adr_ops._html(i.title),
                                                    adr_ops._html(to_char(i.opened_at, fmt)), CASE WHEN i.overdue THEN 'yes' ELSE 'no' END),
                                             '' ORDER BY i.severity, i.id)
                               || '</tbody></table>'
                          FROM adr_ops.incident_status i WHERE i.status <> 'closed' HAVING count(*) > 0), '')
           || coalesce((SELECT '<table><thead><tr><th>alerting</th><th>source</th><th>status</th><th>since</th><th>detail</th></tr></thead><tbody>'
                               || string_agg(format('<tr class="alert"><td>%s</td><td>%s</td><td><span class="badge b-%s">%s</span></td><td>%s</td><td class="detail">%s</td></tr>',
                                                    adr_ops._html(l.check_name), adr_ops._html(l.source), lower(l.to_status),
                                                    adr_ops._html(l.to_status), adr_ops._html(to_char(l.at, fmt)), adr_ops._html(l.detail)),
                                             '' ORDER BY l.check_name)
                               || '</tbody></table>'
                          FROM (SELECT DISTINCT ON (a.source, a.check_name) a.* FROM adr_ops.alerts a
                                 ORDER BY a.source, a.check_name, a.id DESC) l
                         WHERE l.to_status <> 'OK' HAVING count(*) > 0), '')
           || '</section>' || E'\n'
      INTO open_items;

    RETURN head || checks || open_items || queries || pipes || maint || backups || bloat
        || format('<footer class="meta">Generated %s by adr_ops.adr_report_html(%s).</footer>',
                  adr_ops._html(to_char(clock_timestamp(), fmt || ':SS TZ')), days)
        || E'\n</body></html>\n';
END
$$;
COMMENT ON FUNCTION adr_ops.adr_report_html(integer) IS
    'the weekly review as one self-contained HTML page: checks now and their history as charts, slowest queries, bloat, maintenance, backups, pipelines, open incidents and alerts';
REVOKE ALL ON FUNCTION adr_ops.adr_report_html(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_report_html(integer) TO pg_monitor;
