
-- plans: the slow query log and execution plans (runbook: Database
-- Performance Issues, steps 1 and 2; added 1.1) ------------------------------

-- The "duration: N ms" entries of the server log (log_min_duration_statement,
-- log_duration, auto_explain).  The texts are other sessions' statements:
-- C checks pg_read_server_files as for adr_log_lines().
CREATE FUNCTION adr_ops.adr_slow_log(
    since timestamptz DEFAULT pg_catalog.now() OPERATOR(pg_catalog.-) '1 hour'::pg_catalog.interval,
    OUT log_time timestamptz, OUT duration_ms float8, OUT pid integer, OUT database text,
    OUT user_name text, OUT application text, OUT statement text, OUT parameters text,
    OUT queryid bigint, OUT plan text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'adr_slow_log'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops.adr_slow_log(timestamptz) IS
    'the duration entries of the server log since a time: statement, parameters, query id, auto_explain plan';
REVOKE ALL ON FUNCTION adr_ops.adr_slow_log(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_slow_log(timestamptz) TO pg_read_server_files;

-- What pg_monitor may see of it: counts and times per hour and database,
-- no texts.  SECURITY DEFINER: the texts are read by the owner and only
-- aggregates leave.
CREATE FUNCTION adr_ops.adr_slow_log_counts(
    since timestamptz DEFAULT pg_catalog.now() OPERATOR(pg_catalog.-) '1 day'::pg_catalog.interval,
    OUT hour timestamptz, OUT database text, OUT entries bigint, OUT plans bigint,
    OUT total_ms float8, OUT max_ms float8)
RETURNS SETOF record
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT date_trunc('hour', l.log_time), l.database, count(*), count(l.plan),
           sum(l.duration_ms), max(l.duration_ms)
      FROM adr_ops.adr_slow_log(adr_slow_log_counts.since) l
     GROUP BY 1, 2
     ORDER BY 1, 2
$$;
COMMENT ON FUNCTION adr_ops.adr_slow_log_counts(timestamptz) IS
    'slow log entries and logged plans per hour and database, without texts';
REVOKE ALL ON FUNCTION adr_ops.adr_slow_log_counts(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_slow_log_counts(timestamptz) TO pg_monitor;

-- The shape of a plan: node types, join types, aggregate strategies,
-- relations and indexes, children in order (the join order).  Costs, row
-- counts, times, filters' constants and output columns are left out, so
-- the same plan run with other values has the same shape.  In C: the
-- collector computes it for every plan it stores.
CREATE FUNCTION adr_ops._plan_shape(plan jsonb) RETURNS text
AS 'MODULE_PATHNAME', 'adr_plan_shape'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops._plan_shape(jsonb) IS
    'API: private. The node types, relations, indexes and join order of a plan, as text';

CREATE FUNCTION adr_ops.adr_plan_fingerprint(plan jsonb) RETURNS text
AS 'MODULE_PATHNAME', 'adr_plan_fingerprint'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops.adr_plan_fingerprint(jsonb) IS
    'md5 of a JSON plan''s shape (node types, relations, indexes, join order; not costs or row counts)';

-- One row per plan: collected from auto_explain's log entries by the
-- plan_collect task, or run by adr_explain().
CREATE TABLE adr_ops.query_plans (
    id bigserial PRIMARY KEY,
    queryid bigint,
    fingerprint text NOT NULL,
    duration_ms float8,
    plan jsonb NOT NULL,
    source text NOT NULL CHECK (source IN ('auto_explain', 'adr_explain')),
    database text,
    user_name text,
    pid integer,
    logged_at timestamptz,
    collected_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX query_plans_queryid ON adr_ops.query_plans (queryid, logged_at);
CREATE INDEX query_plans_logged_at ON adr_ops.query_plans (logged_at);
COMMENT ON TABLE adr_ops.query_plans IS
    'execution plans: logged by auto_explain (collected by adr_collect_plans()) or run by adr_explain()';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.query_plans', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.query_plans_id_seq', '');
-- Plans hold query texts and the constants of their filters, as the log does.
GRANT SELECT ON adr_ops.query_plans TO pg_read_server_files;

-- Store the plans auto_explain logged since the newest one stored (the
-- read position: an entry at that very time is stored once, by its time,
-- pid and duration), within adr_ops.snapshot_retention; prune older ones.
-- Only JSON plans are stored (auto_explain.log_format = json).
CREATE FUNCTION adr_ops.adr_collect_plans() RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz := now() - adr_ops._snapshot_retention();
    pos timestamptz;
    stored integer;
BEGIN
    SELECT max(p.logged_at) INTO pos FROM adr_ops.query_plans p WHERE p.source = 'auto_explain';
    pos := greatest(pos, cutoff);
    INSERT INTO adr_ops.query_plans
           (queryid, fingerprint, duration_ms, plan, source, database, user_name, pid, logged_at)
    SELECT l.queryid, adr_ops.adr_plan_fingerprint(l.j), l.duration_ms, l.j,
           'auto_explain', l.database, l.user_name, l.pid, l.log_time
      FROM (SELECT s.*, s.plan::jsonb AS j FROM adr_ops.adr_slow_log(pos) s
             WHERE s.plan LIKE '{%' AND s.log_time IS NOT NULL OFFSET 0) l
     WHERE NOT EXISTS (SELECT FROM adr_ops.query_plans p
                        WHERE p.logged_at = l.log_time AND p.source = 'auto_explain'
                          AND p.pid IS NOT DISTINCT FROM l.pid AND p.duration_ms = l.duration_ms);
    GET DIAGNOSTICS stored = ROW_COUNT;
    DELETE FROM adr_ops.query_plans p WHERE coalesce(p.logged_at, p.collected_at) < cutoff;
    RETURN stored;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_collect_plans() IS
    'stores the JSON plans auto_explain logged since the last collection in query_plans; returns how many';
REVOKE ALL ON FUNCTION adr_ops.adr_collect_plans() FROM PUBLIC;

-- The plans known for a query, newest first.
CREATE FUNCTION adr_ops.adr_query_plans(queryid bigint,
    OUT id bigint, OUT logged_at timestamptz, OUT source text, OUT duration_ms float8,
    OUT fingerprint text, OUT database text, OUT user_name text, OUT plan jsonb)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.id, coalesce(p.logged_at, p.collected_at), p.source, p.duration_ms, p.fingerprint,
           p.database, p.user_name, p.plan
      FROM adr_ops.query_plans p
     WHERE p.queryid = adr_query_plans.queryid
     ORDER BY coalesce(p.logged_at, p.collected_at) DESC, p.id DESC
$$;
COMMENT ON FUNCTION adr_ops.adr_query_plans(bigint) IS
    'the stored plans of a pg_stat_statements query id, newest first';

-- "It was fast yesterday": a query whose newest plan has another shape
-- than the one before it, the change inside the window.  The mean times
-- come from the statement snapshots (adr_query_trend()): before = the
-- snapshot intervals ending between the old plan's last sighting and the
-- change, after = those ending after the change (the interval holding the
-- change counts after); without snapshots, the plans' logged durations.
-- By default only the changes after which the mean rose.
CREATE FUNCTION adr_ops.adr_plan_changes(
    since timestamptz DEFAULT pg_catalog.now() OPERATOR(pg_catalog.-) '7 days'::pg_catalog.interval,
    only_slower boolean DEFAULT true,
    OUT queryid bigint, OUT changed_at timestamptz,
    OUT mean_ms_before float8, OUT mean_ms_after float8, OUT slower boolean,
    OUT old_fingerprint text, OUT new_fingerprint text,
    OUT old_plan jsonb, OUT new_plan jsonb)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH newest AS (
        SELECT DISTINCT ON (p.queryid) p.*, coalesce(p.logged_at, p.collected_at) AS at
          FROM adr_ops.query_plans p
         WHERE p.queryid IS NOT NULL
         ORDER BY p.queryid, coalesce(p.logged_at, p.collected_at) DESC, p.id DESC
    ), pairs AS (
        SELECT n.queryid, n.fingerprint AS new_fp, n.plan AS new_plan, n.duration_ms AS new_ms,
               o.fingerprint AS old_fp, o.plan AS old_plan, o.at AS old_at,
               -- the first sighting of the new shape after the old one
               (SELECT min(coalesce(c.logged_at, c.collected_at)) FROM adr_ops.query_plans c
                 WHERE c.queryid = n.queryid AND c.fingerprint = n.fingerprint
                   AND coalesce(c.logged_at, c.collected_at) > o.at) AS changed_at
          FROM newest n
          CROSS JOIN LATERAL (
                SELECT p.*, coalesce(p.logged_at, p.collected_at) AS at
                  FROM adr_ops.query_plans p
                 WHERE p.queryid = n.queryid AND p.fingerprint <> n.fingerprint
                   AND coalesce(p.logged_at, p.collected_at) < n.at
                 ORDER BY coalesce(p.logged_at, p.collected_at) DESC, p.id DESC
                 LIMIT 1) o
    ), means AS (
        SELECT x.*,
               (SELECT sum(t.total_ms) / nullif(sum(t.calls), 0)
                  FROM adr_ops.adr_query_trend(x.queryid, now() - x.old_at + interval '1 day') t
                 WHERE t.interval_end >= x.old_at AND t.interval_end <= x.changed_at) AS snap_before,
               (SELECT sum(t.total_ms) / nullif(sum(t.calls), 0)
                  FROM adr_ops.adr_query_trend(x.queryid, now() - x.old_at + interval '1 day') t
                 WHERE t.interval_end > x.changed_at) AS snap_after,
               (SELECT avg(c.duration_ms) FROM adr_ops.query_plans c
                 WHERE c.queryid = x.queryid AND c.fingerprint = x.old_fp
                   AND coalesce(c.logged_at, c.collected_at) <= x.old_at) AS plan_before,
               (SELECT avg(c.duration_ms) FROM adr_ops.query_plans c
                 WHERE c.queryid = x.queryid AND c.fingerprint = x.new_fp
                   AND coalesce(c.logged_at, c.collected_at) >= x.changed_at) AS plan_after
          FROM pairs x
         WHERE x.changed_at >= adr_plan_changes.since
    ), r AS (
        SELECT m.*,
               CASE WHEN m.snap_before IS NOT NULL AND m.snap_after IS NOT NULL
                    THEN m.snap_before ELSE m.plan_before END AS before_ms,
               CASE WHEN m.snap_before IS NOT NULL AND m.snap_after IS NOT NULL
                    THEN m.snap_after ELSE m.plan_after END AS after_ms
          FROM means m
    )
    SELECT r.queryid, r.changed_at, r.before_ms, r.after_ms, r.after_ms > r.before_ms,
           r.old_fp, r.new_fp, r.old_plan, r.new_plan
      FROM r
     WHERE NOT adr_plan_changes.only_slower OR r.after_ms > r.before_ms
     ORDER BY r.changed_at DESC, r.queryid
$$;
COMMENT ON FUNCTION adr_ops.adr_plan_changes(timestamptz, boolean) IS
    'queries whose plan shape changed since a time (by default only when the mean time rose), with both plans';

-- Findings from one plan, each with its evidence: sequential scans of
-- large relations under a filter, row estimates off by more than a factor
-- (stale statistics: the ANALYZE to run), sorts and hashes spilled to
-- disk (work_mem), nested loops over many rows.  Actual figures need a
-- plan with ANALYZE (auto_explain.log_analyze, adr_explain()); without
-- them the estimates are used where that makes sense.
CREATE FUNCTION adr_ops.adr_plan_findings(plan jsonb, factor float8 DEFAULT 10,
    large_rows bigint DEFAULT 10000,
    OUT finding text, OUT node text, OUT evidence text, OUT remedy text)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE walk(n, path) AS (
        SELECT coalesce(plan -> 'Plan', plan), '1'
        UNION ALL
        SELECT c.value, w.path || '.' || c.ordinality
          FROM walk w, jsonb_array_elements(coalesce(w.n -> 'Plans', '[]')) WITH ORDINALITY c
    ), nodes AS (
        SELECT w.path, w.n,
               concat_ws(' ', w.n ->> 'Node Type',
                         'on ' || nullif(concat_ws('.', w.n ->> 'Schema', w.n ->> 'Relation Name'), ''),
                         'using ' || (w.n ->> 'Index Name')) AS label,
               CASE WHEN w.n ? 'Relation Name'
                    THEN coalesce(quote_ident(w.n ->> 'Schema') || '.', '') || quote_ident(w.n ->> 'Relation Name')
               END AS rel,
               (w.n ->> 'Plan Rows')::float8 AS est,
               (w.n ->> 'Actual Rows')::float8 AS act,
               coalesce((w.n ->> 'Actual Loops')::float8, 1) AS loops,
               (w.n ->> 'Rows Removed by Filter')::float8 AS removed
          FROM walk w
    )
    SELECT f.finding, f.node, f.evidence, f.remedy FROM (
        SELECT 1 AS o, n.path, 'seq_scan_large' AS finding, n.label AS node,
               format('filter %s over %s rows, %s kept', n.n ->> 'Filter',
                      round(coalesce((n.act + n.removed) * n.loops, c.reltuples::float8, n.est)),
                      coalesce(round(n.act * n.loops)::text, 'about ' || round(n.est))) AS evidence,
               format('an index on the filtered columns of %s (see adr_index_advice())', n.rel) AS remedy
          FROM nodes n
          LEFT JOIN pg_class c ON c.oid = to_regclass(n.rel)
         WHERE n.n ->> 'Node Type' = 'Seq Scan' AND n.n ? 'Filter'
           AND coalesce((n.act + n.removed) * n.loops, c.reltuples::float8, n.est) >= large_rows
        UNION ALL
        SELECT 2, n.path, 'row_estimate', n.label,
               format('estimated %s rows, got %s (a factor of %s)', round(n.est), round(n.act),
                      round((greatest(n.est, n.act) / greatest(least(n.est, n.act), 1))::numeric, 1)),
               CASE WHEN n.rel IS NOT NULL THEN format('ANALYZE %s;', n.rel)
                    ELSE 'ANALYZE the tables below this node' END
          FROM nodes n
         WHERE n.act IS NOT NULL AND greatest(n.est, n.act) >= 100
           AND greatest(n.est, n.act) / greatest(least(n.est, n.act), 1) >= factor
        UNION ALL
        SELECT 3, n.path, 'spill_to_disk', n.label,
               concat_ws(', ',
                         CASE WHEN n.n ->> 'Sort Space Type' = 'Disk'
                              THEN format('sort method %s used %s kB of disk', n.n ->> 'Sort Method', n.n ->> 'Sort Space Used') END,
                         CASE WHEN (n.n ->> 'Hash Batches')::int > 1
                              THEN format('hash in %s batches (%s planned)', n.n ->> 'Hash Batches', n.n ->> 'Original Hash Batches') END,
                         CASE WHEN (n.n ->> 'Disk Usage')::bigint > 0
                              THEN format('hash aggregate used %s kB of disk', n.n ->> 'Disk Usage') END),
               format('raise work_mem (now %s) for this query, e.g. SET LOCAL work_mem in its transaction',
                      current_setting('work_mem'))
          FROM nodes n
         WHERE n.n ->> 'Sort Space Type' = 'Disk' OR (n.n ->> 'Hash Batches')::int > 1
            OR (n.n ->> 'Disk Usage')::bigint > 0
        UNION ALL
        SELECT 4, n.path, 'nested_loop_many', n.label,
               format('the inner side ran %s times', round(coalesce(o.act * o.loops, o.est))),
               'check the join''s estimates (ANALYZE) and an index on the inner side''s join key'
          FROM nodes n
          JOIN nodes o ON o.path = n.path || '.1'
         WHERE n.n ->> 'Node Type' = 'Nested Loop'
           AND coalesce(o.act * o.loops, o.est) >= large_rows
    ) f
    ORDER BY f.o, f.path
$$;
COMMENT ON FUNCTION adr_ops.adr_plan_findings(jsonb, float8, bigint) IS
    'findings from a JSON plan with evidence: large filtered seq scans, row estimate errors, spills to disk, nested loops over many rows';

-- Storing a plan adr_explain() ran: the caller runs the statement with
-- its own rights and needs no privilege on query_plans.
CREATE FUNCTION adr_ops._plan_store(plan jsonb,
    OUT id bigint, OUT queryid bigint, OUT duration_ms float8, OUT fingerprint text,
    OUT plan jsonb)
RETURNS record
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO adr_ops.query_plans (queryid, fingerprint, duration_ms, plan, source, database,
                                     user_name, pid, logged_at)
    VALUES ((_plan_store.plan ->> 'Query Identifier')::bigint, adr_ops.adr_plan_fingerprint(_plan_store.plan),
            (_plan_store.plan ->> 'Execution Time')::float8, _plan_store.plan, 'adr_explain',
            current_database(), session_user, pg_backend_pid(), now())
    RETURNING id, queryid, duration_ms, fingerprint, plan
$$;
COMMENT ON FUNCTION adr_ops._plan_store(jsonb) IS
    'API: private. Stores a plan adr_explain() ran';
REVOKE ALL ON FUNCTION adr_ops._plan_store(jsonb) FROM PUBLIC;

-- EXPLAIN (ANALYZE, BUFFERS, VERBOSE) on demand, guarded as src/plans.c
-- says: parsed as read-only, run in a read-only subtransaction that is
-- rolled back, under a timeout.  Not SECURITY DEFINER: the statement runs
-- as the caller, with the caller's search_path.  Grant EXECUTE on it and
-- on _plan_store() together.
CREATE FUNCTION adr_ops.adr_explain(statement text, params text[] DEFAULT NULL,
    timeout interval DEFAULT '1 min',
    OUT id bigint, OUT queryid bigint, OUT duration_ms float8, OUT fingerprint text,
    OUT plan jsonb)
RETURNS record
AS 'MODULE_PATHNAME', 'adr_explain'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION adr_ops.adr_explain(text, text[], interval) IS
    'EXPLAIN (ANALYZE, BUFFERS) of a read-only statement with its parameters, rolled back, with a timeout; stored in query_plans';
REVOKE ALL ON FUNCTION adr_ops.adr_explain(text, text[], interval) FROM PUBLIC;

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['adr_ops._plan_shape(jsonb)', 'adr_ops.adr_plan_fingerprint(jsonb)',
                             'adr_ops.adr_plan_findings(jsonb, float8, bigint)'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pg_monitor, pg_read_server_files', f);
    END LOOP;
    FOREACH f IN ARRAY ARRAY['adr_ops.adr_query_plans(bigint)',
                             'adr_ops.adr_plan_changes(timestamptz, boolean)'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pg_read_server_files', f);
    END LOOP;
END
$grants$;

-- Plans collected every 5 minutes through the scheduler.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('plan_collect', '*/5 * * * *', 'plan_collect', pg_catalog.current_database());
