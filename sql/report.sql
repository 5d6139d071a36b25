--
-- The weekly review as HTML: escaping, the page's structure, the figures it
-- holds, that it asks for nothing from the network, and who may read it.
-- Rendering in a browser is t/070_report_browser.pl.
--
\set VERBOSITY terse
UPDATE adr_ops.schedules SET enabled = false;

-- Escaping: the five characters, NULL as empty.
SELECT adr_ops._html($$<script>alert("x") & 'y'</script>$$) AS escaped,
       adr_ops._html(NULL) = '' AS null_is_empty;

-- Bad periods.
SELECT adr_ops.adr_report_html(0);
SELECT adr_ops.adr_report_html(NULL);
SELECT adr_ops.adr_report_html(367);

-- Names from tenants: a pipeline, a failing job's error, a task, a
-- backup path, an alert and an incident title, each with markup.
SELECT adr_ops.adr_job_submit('<script>alert(1)</script>', '{}', 1) AS job \gset
SELECT (adr_ops.adr_job_claim('<script>alert(1)</script>', 'w1')).id = :job AS claimed;
SELECT status FROM adr_ops.adr_job_fail(:job, '<img src=x onerror=alert(2)>');
SELECT adr_ops.adr_job_submit('<script>alert(1)</script>', '{}', 1) AS job2 \gset
SELECT (adr_ops.adr_job_claim('<script>alert(1)</script>', 'w1')).id = :job2 AS claimed;
SELECT status FROM adr_ops.adr_job_complete(:job2);
INSERT INTO adr_ops.task_runs (task, database, status, finished_at, detail)
    VALUES ('vacuum', current_database(), 'failed', now(), '<iframe src="//evil">');
INSERT INTO adr_ops.backup_verifications (path, status, finished_at, failures)
    VALUES ('/backups/<svg onload=alert(3)>.dump', 'failed', now(), '{"<b>bold</b>"}');
INSERT INTO adr_ops.alerts (source, check_name, from_status, to_status, detail)
    VALUES ('probe', 'probe:<a href="http://evil">', 'OK', 'CRITICAL', '<link rel=stylesheet href=http://evil>');
SELECT adr_ops.adr_health_snapshot() > 0 AS snapshot;

SELECT adr_ops.adr_report_html() AS page \gset
-- The page: one document, its sections in order.
SELECT left(:'page', 15) AS starts, right(:'page', 15) AS ends;
SELECT array_agg(m[1] ORDER BY o) AS sections
  FROM regexp_matches(:'page', '<section id="([a-z]+)">', 'g') WITH ORDINALITY AS r(m, o);
-- Nothing from a tenant came through as markup; all of it is there escaped.
SELECT :'page' ~* '<(script|img|iframe|link|object|embed|a |base|svg on)' AS markup_leaked,
       :'page' ~* '<[^>]*\s(src|href|action|xlink:href|on[a-z]+)\s*=' AS attribute_leaked,
       :'page' ~* '(url\(|@import)' AS reference_leaked,
       position('&lt;script&gt;alert(1)&lt;/script&gt;' IN :'page') > 0 AS pipeline_escaped,
       position('&lt;img src=x onerror=alert(2)&gt;' IN :'page') > 0 AS error_escaped,
       position('&lt;iframe src=&quot;//evil&quot;&gt;' IN :'page') > 0 AS task_detail_escaped,
       position('/backups/&lt;svg onload=alert(3)&gt;.dump' IN :'page') > 0 AS path_escaped,
       position('probe:&lt;a href=&quot;http://evil&quot;&gt;' IN :'page') > 0 AS alert_escaped;
-- No address but the tenants' escaped text.
SELECT regexp_replace(:'page', 'http://evil', '', 'g') ~ '://' AS address_outside_escaped;
-- The figures: one row per check adr_health_check() returns, the count
-- in the summary, the pipeline's failure rate (1 of 2 finished).
SELECT (SELECT count(*) FROM regexp_matches(:'page', '<tr class="check"', 'g'))
         = (SELECT count(*) FROM adr_ops.adr_health_check()) AS a_row_per_check,
       substring(:'page' from 'data-checks="([0-9]+)"')::int
         = (SELECT count(*) FROM adr_ops.adr_health_check()) AS summary_count,
       substring(:'page' from 'data-pipeline="&lt;script&gt;alert\(1\)&lt;/script&gt;" data-failure-rate="([0-9.]+)"') AS failure_rate,
       substring(:'page' from 'data-verifications="([0-9]+)"')::int
         = (SELECT count(*) FROM adr_ops.backup_verifications WHERE started_at >= now() - interval '7 days') AS verifications,
       (SELECT count(*) FROM regexp_matches(:'page', '<svg class="spark"', 'g'))
         = (SELECT count(*) FROM adr_ops.adr_health_check()) AS a_chart_per_check;
-- A chart draws the snapshot: a status band and a value line.
SELECT adr_ops._report_spark('connections', now() - interval '1 day', now() + interval '1 day')
       ~ '^<svg class="spark"[^>]*><rect [^>]*/><rect x="[0-9.]+" y="30" width="[0-9.]+" height="6" class="s-[a-z]+"/><polyline .*points="[0-9.]+,[0-9.]+".*</svg>$' AS chart,
       adr_ops._report_spark('no such check', now() - interval '1 day', now()) ~ 'no history' AS empty_chart;

-- Statements: the oldest snapshot is a baseline.  An entry stored in it
-- counts only what it did after it (10 calls, 100 ms), one first stored
-- later counts whole (4 calls); both are in this period, neither in the
-- one before.
BEGIN;
DELETE FROM adr_ops.statement_snapshots;
INSERT INTO adr_ops.statement_snapshots (id, taken_at, entries, changed)
    VALUES (-3, now() - interval '2 days', 1, 1), (-2, now() - interval '1 day', 2, 2);
INSERT INTO adr_ops.statement_counters (snapshot_id, queryid, userid, dbid, toplevel, calls, total_ms, rows, blks_hit, blks_read)
    VALUES (-3, 7001, 10, 1, true, 1000, 1000000, 0, 0, 0),
           (-2, 7001, 10, 1, true, 1010, 1000100, 0, 0, 0),
           (-2, 7002, 10, 1, true, 4, 8, 0, 0, 0);
SELECT adr_ops.adr_report_html() AS page \gset
-- calls, total ms, mean ms before
SELECT regexp_match(:'page', 'data-queryid="7001">(?:<td[^>]*>[^<]*</td>){2}<td class="n">([0-9]+)</td><td class="n">([0-9.]+)</td><td class="n">[^<]*</td><td class="n">([^<]*)</td>') AS in_baseline,
       regexp_match(:'page', 'data-queryid="7002">(?:<td[^>]*>[^<]*</td>){2}<td class="n">([0-9]+)</td><td class="n">([0-9.]+)</td><td class="n">[^<]*</td><td class="n">([^<]*)</td>') AS stored_later;
ROLLBACK;

-- pg_monitor reads it; others may not.
CREATE ROLE report_monitor IN ROLE pg_monitor;
CREATE ROLE report_nobody;
SET ROLE report_monitor;
SELECT length(adr_ops.adr_report_html(1)) > 1000 AS monitor_reads;
SET ROLE report_nobody;
SELECT adr_ops.adr_report_html(1);
RESET ROLE;
DROP ROLE report_monitor, report_nobody;
DELETE FROM adr_ops.alerts WHERE check_name LIKE 'probe:<%';
DELETE FROM adr_ops.backup_verifications WHERE path LIKE '/backups/<%';
DELETE FROM adr_ops.task_runs WHERE detail = '<iframe src="//evil">';
DELETE FROM adr_ops.processing_jobs WHERE id IN (:job, :job2);
