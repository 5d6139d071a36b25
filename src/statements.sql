
-- statements: slow queries with history (runbook: Performance
-- Troubleshooting, "high response times") ----------------------------------

-- The query that reads pg_stat_statements wherever it is installed, with
-- the column names the installed version has (total_time before 13,
-- total_exec_time from 13), found from the function's OUT arguments.  The
-- function is the extension's own, bound through _extension_function():
-- its schema is often public, where others may plant overloads.  Every
-- reader below runs it; none ever resets the counters.
CREATE FUNCTION adr_ops._pgss_query(showtext boolean) RETURNS text
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn regprocedure;
    cols text[];
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension e WHERE e.extname = 'pg_stat_statements') THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = 'pg_stat_statements is not installed in this database',
            DETAIL = 'adr_ops reads query statistics from pg_stat_statements.',
            HINT = 'Add pg_stat_statements to "shared_preload_libraries" and restart the server, then run CREATE EXTENSION pg_stat_statements in this database.';
    END IF;
    fn := adr_ops._extension_function('pg_stat_statements', 'pg_stat_statements', '{boolean}');
    SELECT array_agg(a.name) INTO cols
      FROM pg_proc p, unnest(p.proargnames, p.proargmodes) a(name, mode)
     WHERE p.oid = fn AND a.mode IN ('o', 't');
    RETURN format('SELECT s.userid, s.dbid, %s AS toplevel, s.queryid, %s AS query, s.calls, '
                  '       s.%I AS total_ms, s.%I AS max_ms, s.%I AS stddev_ms, s.rows, '
                  '       s.shared_blks_hit AS blks_hit, s.shared_blks_read AS blks_read '
                  '  FROM %s s WHERE s.queryid IS NOT NULL',
                  CASE WHEN 'toplevel' = ANY (cols) THEN 's.toplevel' ELSE 'true' END,
                  CASE WHEN showtext THEN 's.query' ELSE 'NULL::text' END,
                  CASE WHEN 'total_exec_time' = ANY (cols) THEN 'total_exec_time' ELSE 'total_time' END,
                  CASE WHEN 'max_exec_time' = ANY (cols) THEN 'max_exec_time' ELSE 'max_time' END,
                  CASE WHEN 'stddev_exec_time' = ANY (cols) THEN 'stddev_exec_time' ELSE 'stddev_time' END,
                  adr_ops._extension_call(fn, ARRAY[showtext::text]));
END
$$;
COMMENT ON FUNCTION adr_ops._pgss_query(boolean) IS
    'API: private. The SELECT that reads pg_stat_statements with normalized column names';

-- When pg_stat_statements was last reset (its _info view, 14 and later).
CREATE FUNCTION adr_ops._pgss_reset_at() RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    info regclass := adr_ops._extension_relation('pg_stat_statements', 'pg_stat_statements_info');
    reset_at timestamptz;
BEGIN
    IF info IS NOT NULL THEN
        EXECUTE format('SELECT stats_reset FROM %s', info) INTO reset_at;
    END IF;
    RETURN reset_at;
END
$$;
COMMENT ON FUNCTION adr_ops._pgss_reset_at() IS
    'API: private. pg_stat_statements_info.stats_reset, or NULL before 14';

-- History.  A snapshot stores the cumulative counters of the entries that
-- changed since the previous one; statement_last holds each entry's newest
-- stored values, and the query text is kept once per entry.
CREATE TABLE adr_ops.statement_snapshots (
    id bigserial PRIMARY KEY,
    taken_at timestamptz NOT NULL,
    stats_reset timestamptz,
    entries integer NOT NULL,
    changed integer NOT NULL
);
CREATE INDEX statement_snapshots_taken_at ON adr_ops.statement_snapshots (taken_at);
COMMENT ON TABLE adr_ops.statement_snapshots IS
    'one row per adr_snapshot_statements(): when, the pg_stat_statements reset time, entries seen and stored';

CREATE TABLE adr_ops.statement_counters (
    snapshot_id bigint NOT NULL REFERENCES adr_ops.statement_snapshots (id) ON DELETE CASCADE,
    queryid bigint NOT NULL,
    userid oid NOT NULL,
    dbid oid NOT NULL,
    toplevel boolean NOT NULL,
    calls bigint NOT NULL,
    total_ms float8 NOT NULL,
    rows bigint NOT NULL,
    blks_hit bigint NOT NULL,
    blks_read bigint NOT NULL,
    PRIMARY KEY (queryid, userid, dbid, toplevel, snapshot_id)
);
CREATE INDEX statement_counters_snapshot ON adr_ops.statement_counters (snapshot_id);
COMMENT ON TABLE adr_ops.statement_counters IS
    'cumulative pg_stat_statements counters of the entries that changed at each snapshot';

CREATE TABLE adr_ops.statement_last (
    queryid bigint NOT NULL,
    userid oid NOT NULL,
    dbid oid NOT NULL,
    toplevel boolean NOT NULL,
    calls bigint NOT NULL,
    snapshot_id bigint NOT NULL,
    PRIMARY KEY (queryid, userid, dbid, toplevel)
);
COMMENT ON TABLE adr_ops.statement_last IS
    'each entry''s calls at the snapshot that last stored it: what the next snapshot compares with';

CREATE TABLE adr_ops.statement_texts (
    queryid bigint NOT NULL,
    userid oid NOT NULL,
    dbid oid NOT NULL,
    query text NOT NULL,
    PRIMARY KEY (queryid, userid, dbid)
);
COMMENT ON TABLE adr_ops.statement_texts IS 'the query text of each stored entry, once';

GRANT SELECT ON adr_ops.statement_snapshots, adr_ops.statement_counters,
                adr_ops.statement_last, adr_ops.statement_texts TO pg_monitor;

-- Retention of the history (adr_ops.snapshot_retention, default 30 days).
CREATE FUNCTION adr_ops._snapshot_retention() RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('adr_ops.snapshot_retention', true), ''), '30d')::interval
$$;
COMMENT ON FUNCTION adr_ops._snapshot_retention() IS
    'API: private. adr_ops.snapshot_retention as an interval';

CREATE FUNCTION adr_ops.adr_snapshot_statements() RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    snap bigint;
    seen integer;
    stored integer;
    cutoff timestamptz := now() - adr_ops._snapshot_retention();
    keep_from bigint;
BEGIN
    -- Counters only: reading the texts loads pg_stat_statements' whole
    -- text file, so that is done below for new entries alone.
    INSERT INTO adr_ops.statement_snapshots (taken_at, stats_reset, entries, changed)
    VALUES (clock_timestamp(), adr_ops._pgss_reset_at(), 0, 0)
    RETURNING id INTO snap;

    EXECUTE format($q$
        WITH cur AS (%s), stored AS (
            INSERT INTO adr_ops.statement_counters
                   (snapshot_id, queryid, userid, dbid, toplevel, calls, total_ms, rows, blks_hit, blks_read)
            SELECT $1, c.queryid, c.userid, c.dbid, c.toplevel, c.calls, c.total_ms, c.rows,
                   c.blks_hit, c.blks_read
              FROM cur c
              LEFT JOIN adr_ops.statement_last l
                ON (l.queryid, l.userid, l.dbid, l.toplevel) = (c.queryid, c.userid, c.dbid, c.toplevel)
             WHERE l.calls IS DISTINCT FROM c.calls
            RETURNING 1)
        SELECT (SELECT count(*) FROM cur), (SELECT count(*) FROM stored)$q$,
        adr_ops._pgss_query(false))
      INTO seen, stored USING snap;
    UPDATE adr_ops.statement_snapshots SET entries = seen, changed = stored WHERE id = snap;

    INSERT INTO adr_ops.statement_last AS l (queryid, userid, dbid, toplevel, calls, snapshot_id)
    SELECT c.queryid, c.userid, c.dbid, c.toplevel, c.calls, c.snapshot_id
      FROM adr_ops.statement_counters c WHERE c.snapshot_id = snap
    ON CONFLICT (queryid, userid, dbid, toplevel)
    DO UPDATE SET calls = EXCLUDED.calls, snapshot_id = EXCLUDED.snapshot_id;

    IF EXISTS (SELECT FROM adr_ops.statement_counters c WHERE c.snapshot_id = snap
                AND NOT EXISTS (SELECT FROM adr_ops.statement_texts t
                                 WHERE (t.queryid, t.userid, t.dbid) = (c.queryid, c.userid, c.dbid))) THEN
        EXECUTE format($q$
            INSERT INTO adr_ops.statement_texts (queryid, userid, dbid, query)
            SELECT DISTINCT ON (s.queryid, s.userid, s.dbid) s.queryid, s.userid, s.dbid, s.query
              FROM (%s) s
             WHERE s.query IS NOT NULL
               AND EXISTS (SELECT FROM adr_ops.statement_counters c WHERE c.snapshot_id = $1
                              AND (c.queryid, c.userid, c.dbid) = (s.queryid, s.userid, s.dbid))
            ON CONFLICT DO NOTHING$q$, adr_ops._pgss_query(true)) USING snap;
    END IF;

    -- Prune what is older than the retention, but keep for every entry the
    -- row in force at the oldest kept snapshot: deltas from it need that.
    SELECT min(s.id) INTO keep_from FROM adr_ops.statement_snapshots s WHERE s.taken_at >= cutoff;
    DELETE FROM adr_ops.statement_counters c
     WHERE c.snapshot_id < keep_from
       AND EXISTS (SELECT FROM adr_ops.statement_counters n
                    WHERE (n.queryid, n.userid, n.dbid, n.toplevel) = (c.queryid, c.userid, c.dbid, c.toplevel)
                      AND n.snapshot_id > c.snapshot_id AND n.snapshot_id <= keep_from);
    DELETE FROM adr_ops.statement_snapshots s
     WHERE s.taken_at < cutoff
       AND NOT EXISTS (SELECT FROM adr_ops.statement_counters c WHERE c.snapshot_id = s.id);
    DELETE FROM adr_ops.statement_texts t
     WHERE NOT EXISTS (SELECT FROM adr_ops.statement_counters c
                        WHERE (c.queryid, c.userid, c.dbid) = (t.queryid, t.userid, t.dbid));
    RETURN stored;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_snapshot_statements() IS
    'stores the pg_stat_statements entries that changed since the last snapshot; returns how many';
REVOKE ALL ON FUNCTION adr_ops.adr_snapshot_statements() FROM PUBLIC;

-- The runbook's "WHERE mean_time > 1000 ORDER BY mean_time DESC".  With
-- since, the figures are deltas from the newest snapshot taken at or before
-- now() - since; partial says a row's delta could not be taken whole (a
-- reset or an eviction inside the window, or history shorter than it), and
-- then its figures are those since the reset, never negative.
CREATE FUNCTION adr_ops.adr_slow_queries(
    min_mean_ms float8 DEFAULT 1000, max_rows integer DEFAULT 10, since interval DEFAULT NULL,
    OUT queryid bigint, OUT dbname name, OUT username name, OUT calls bigint,
    OUT total_ms float8, OUT mean_ms float8, OUT max_ms float8, OUT stddev_ms float8,
    OUT rows bigint, OUT hit_ratio float8, OUT pct_of_total float8, OUT query text,
    OUT partial boolean)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    base adr_ops.statement_snapshots;
    reset_in_window boolean;
    short_history boolean;
BEGIN
    IF adr_slow_queries.min_mean_ms IS NULL OR adr_slow_queries.max_rows IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'min_mean_ms and max_rows must not be null';
    END IF;

    IF adr_slow_queries.since IS NULL THEN
        -- One pass over the view: the total for pct_of_total and the slow
        -- entries together, so that the 5000 texts are not copied twice.
        RETURN QUERY EXECUTE format($q$
            WITH agg AS (
                SELECT sum(s.total_ms) FILTER (WHERE s.toplevel) AS grand,
                       array_agg(s) FILTER (WHERE s.calls > 0 AND s.total_ms / s.calls > $1) AS slow
                  FROM (%s) s)
            SELECT x.queryid, d.datname, r.rolname, x.calls, round(x.total_ms::numeric, 2)::float8,
                   round((x.total_ms / x.calls)::numeric, 2)::float8,
                   round(x.max_ms::numeric, 2)::float8, round(x.stddev_ms::numeric, 2)::float8, x.rows,
                   round((x.blks_hit::float8 / nullif(x.blks_hit + x.blks_read, 0))::numeric, 3)::float8,
                   round((100 * x.total_ms / nullif(agg.grand, 0))::numeric, 1)::float8,
                   x.query, false
              FROM agg
             CROSS JOIN LATERAL unnest(agg.slow)
                   AS x(userid oid, dbid oid, toplevel boolean, queryid bigint, query text,
                        calls bigint, total_ms float8, max_ms float8, stddev_ms float8,
                        rows bigint, blks_hit bigint, blks_read bigint)
              LEFT JOIN pg_database d ON d.oid = x.dbid
              LEFT JOIN pg_roles r ON r.oid = x.userid
             ORDER BY x.total_ms / x.calls DESC, x.queryid
             LIMIT $2$q$, adr_ops._pgss_query(true))
        USING adr_slow_queries.min_mean_ms, adr_slow_queries.max_rows;
        RETURN;
    END IF;

    SELECT * INTO base FROM adr_ops.statement_snapshots s
     WHERE s.taken_at <= now() - adr_slow_queries.since ORDER BY s.taken_at DESC LIMIT 1;
    short_history := NOT FOUND;
    IF short_history THEN
        SELECT * INTO base FROM adr_ops.statement_snapshots s ORDER BY s.taken_at LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
                MESSAGE = 'there is no statement snapshot to measure from',
                DETAIL = 'With since, the figures are deltas from a snapshot taken by adr_snapshot_statements().',
                HINT = 'Call adr_snapshot_statements(), or let the statement_snapshot schedule take one.';
        END IF;
    END IF;
    -- The snapshot recorded the reset time it saw; another one now means a
    -- reset since.
    reset_in_window := adr_ops._pgss_reset_at() IS DISTINCT FROM base.stats_reset;
    -- Before the retention cutoff baselines may have been pruned.
    short_history := short_history OR base.taken_at < now() - adr_ops._snapshot_retention();

    RETURN QUERY EXECUTE format($q$
        WITH cur AS (%s),
        b AS (SELECT DISTINCT ON (c.queryid, c.userid, c.dbid, c.toplevel) c.*
                FROM adr_ops.statement_counters c
               WHERE c.snapshot_id <= $1
               ORDER BY c.queryid, c.userid, c.dbid, c.toplevel, c.snapshot_id DESC),
        d AS (SELECT cur.*,
                     -- no baseline: the entry is new in the window; counters
                     -- below the baseline: it was reset or evicted
                     $3 OR coalesce(b.calls > cur.calls OR b.total_ms > cur.total_ms OR b.rows > cur.rows
                                    OR b.blks_hit > cur.blks_hit OR b.blks_read > cur.blks_read,
                                    false) AS reset,
                     b.calls AS b_calls, b.total_ms AS b_total, b.rows AS b_rows,
                     b.blks_hit AS b_hit, b.blks_read AS b_read
                FROM cur LEFT JOIN b
                  ON (b.queryid, b.userid, b.dbid, b.toplevel) = (cur.queryid, cur.userid, cur.dbid, cur.toplevel)),
        w AS (SELECT d.queryid, d.userid, d.dbid, d.toplevel, d.query,
                     CASE WHEN d.reset OR d.b_calls IS NULL THEN d.calls ELSE d.calls - d.b_calls END AS calls,
                     CASE WHEN d.reset OR d.b_calls IS NULL THEN d.total_ms ELSE d.total_ms - d.b_total END AS total_ms,
                     CASE WHEN d.reset OR d.b_calls IS NULL THEN d.rows ELSE d.rows - d.b_rows END AS rows,
                     CASE WHEN d.reset OR d.b_calls IS NULL THEN d.blks_hit ELSE d.blks_hit - d.b_hit END AS hit,
                     CASE WHEN d.reset OR d.b_calls IS NULL THEN d.blks_read ELSE d.blks_read - d.b_read END AS rd,
                     d.reset OR $4 AS partial
                FROM d)
        SELECT w.queryid, db.datname, r.rolname, w.calls, round(w.total_ms::numeric, 2)::float8,
               round((w.total_ms / w.calls)::numeric, 2)::float8,
               NULL::float8, NULL::float8, w.rows,
               round((w.hit::float8 / nullif(w.hit + w.rd, 0))::numeric, 3)::float8,
               round((100 * w.total_ms / nullif((SELECT sum(a.total_ms) FROM w a WHERE a.toplevel), 0))::numeric, 1)::float8,
               w.query, w.partial
          FROM w
          LEFT JOIN pg_database db ON db.oid = w.dbid
          LEFT JOIN pg_roles r ON r.oid = w.userid
         WHERE w.calls > 0 AND w.total_ms / w.calls > $2
         ORDER BY w.total_ms / w.calls DESC, w.queryid
         LIMIT $5$q$, adr_ops._pgss_query(true))
    USING base.id, adr_slow_queries.min_mean_ms, coalesce(reset_in_window, false), short_history,
          adr_slow_queries.max_rows;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_slow_queries(float8, integer, interval) IS
    'the statements slowest on average (pg_stat_statements), over all time or, from snapshots, over a window';

-- One row per snapshot interval of a statement, for dashboards.
CREATE FUNCTION adr_ops.adr_query_trend(queryid bigint, since interval DEFAULT '7 days',
    OUT interval_start timestamptz, OUT interval_end timestamptz,
    OUT calls bigint, OUT total_ms float8, OUT mean_ms float8)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH snaps AS (
        SELECT s.id, s.taken_at, lag(s.taken_at) OVER (ORDER BY s.taken_at) AS prev_at
          FROM adr_ops.statement_snapshots s
    ), rows AS (
        SELECT c.snapshot_id, c.calls, c.total_ms,
               lag(c.calls) OVER w AS prev_calls, lag(c.total_ms) OVER w AS prev_total
          FROM adr_ops.statement_counters c
         WHERE c.queryid = adr_query_trend.queryid
        WINDOW w AS (PARTITION BY c.userid, c.dbid, c.toplevel ORDER BY c.snapshot_id)
    ), deltas AS (
        -- a first sighting, or counters that went down (a reset), count whole
        SELECT r.snapshot_id,
               sum(CASE WHEN r.prev_calls IS NULL OR r.calls < r.prev_calls OR r.total_ms < r.prev_total
                        THEN r.calls ELSE r.calls - r.prev_calls END) AS calls,
               sum(CASE WHEN r.prev_calls IS NULL OR r.calls < r.prev_calls OR r.total_ms < r.prev_total
                        THEN r.total_ms ELSE r.total_ms - r.prev_total END) AS total_ms
          FROM rows r GROUP BY r.snapshot_id
    )
    SELECT s.prev_at, s.taken_at, coalesce(d.calls, 0)::bigint,
           round(coalesce(d.total_ms, 0)::numeric, 2)::float8,
           round((d.total_ms / nullif(d.calls, 0))::numeric, 2)::float8
      FROM snaps s LEFT JOIN deltas d ON d.snapshot_id = s.id
     WHERE s.taken_at >= now() - adr_query_trend.since AND s.prev_at IS NOT NULL
     ORDER BY s.taken_at
$$;
COMMENT ON FUNCTION adr_ops.adr_query_trend(bigint, interval) IS
    'calls, total and mean time of one statement per snapshot interval';

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['adr_ops._pgss_query(boolean)', 'adr_ops._pgss_reset_at()',
                             'adr_ops._snapshot_retention()',
                             'adr_ops.adr_slow_queries(float8, integer, interval)',
                             'adr_ops.adr_query_trend(bigint, interval)'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pg_monitor', f);
    END LOOP;
END
$grants$;

-- Snapshots every hour through the scheduler.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('statement_snapshot', '0 * * * *', 'statement_snapshot', pg_catalog.current_database());
