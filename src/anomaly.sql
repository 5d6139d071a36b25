
-- anomaly: a robust score for any stored series, with no thresholds to set
-- (runbook: Data Pipeline Management, "check data quality trends") ---------

-- The newest point of a series is judged against the earlier ones by its
-- modified z-score, 0.6745 * (x - median) / MAD: median and MAD (median
-- absolute deviation) are not dragged by the outliers they are meant to
-- find, as a mean and a standard deviation are.  When the MAD is 0 (more
-- than half the history is one value) the spread is taken from the mean
-- absolute deviation, (x - median) / (1.2533 * meanAD); when that is 0 too
-- every earlier point was equal and any other value is infinitely far.
-- Seasonality compares only with earlier points of the same day of week,
-- hour of day or both, in adr_ops.timezone (else the session's TimeZone),
-- so a dip that comes every Monday is Monday's normal.

-- The arguments both entry points share; raises on a bad one.
CREATE FUNCTION adr_ops._anomaly_check_args(direction text, seasonality text,
                                            min_history integer, threshold float8)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF direction IS NULL OR seasonality IS NULL OR min_history IS NULL OR threshold IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'direction, seasonality, min_history and threshold must not be null',
            HINT = 'Leave an argument out to get its default.';
    END IF;
    IF direction NOT IN ('up', 'down', 'both') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('unrecognized direction: "%s"', direction),
            HINT = 'Use up (only rises are anomalies), down (only falls) or both.';
    END IF;
    IF seasonality NOT IN ('none', 'dow', 'hour', 'dow_hour') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('unrecognized seasonality: "%s"', seasonality),
            HINT = 'Use none, dow (same day of week), hour (same hour of day) or dow_hour (both).';
    END IF;
    IF min_history < 3 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('min_history must be at least 3, not %s', min_history),
            DETAIL = 'A median and a spread of fewer than 3 points say nothing.';
    END IF;
    IF NOT (threshold > 0 AND threshold < 'Infinity') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('threshold must be a positive number, not %s', threshold),
            HINT = 'The usual threshold of the modified z-score is 3.5.';
    END IF;
END
$$;
COMMENT ON FUNCTION adr_ops._anomaly_check_args(text, text, integer, float8) IS
    'API: private. Raises on a bad direction, seasonality, min_history or threshold';

-- The zone seasonality is read in.
CREATE FUNCTION adr_ops._anomaly_zone() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('adr_ops.timezone', true), ''), current_setting('TimeZone'))
$$;
COMMENT ON FUNCTION adr_ops._anomaly_zone() IS
    'API: private. adr_ops.timezone, else the session''s TimeZone: where day of week and hour of day are read';

-- The verdict, score and detail of x against the median, MAD and mean
-- absolute deviation of n comparable earlier points.  point_at (read in
-- zone tz) only names the season in the detail.
CREATE FUNCTION adr_ops._anomaly_judge(x float8, med float8, mad float8, meanad float8, n integer,
    point_at timestamptz, tz text, direction text, seasonality text, min_history integer, threshold float8,
    OUT verdict text, OUT score float8, OUT detail text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    local_at timestamp := point_at AT TIME ZONE tz;
    season text := CASE seasonality
                   WHEN 'dow' THEN ' on a ' || to_char(local_at, 'FMDay')
                   WHEN 'hour' THEN ' at hour ' || to_char(local_at, 'FMHH24')
                   WHEN 'dow_hour' THEN ' on a ' || to_char(local_at, 'FMDay') || ' at hour ' || to_char(local_at, 'FMHH24')
                   ELSE '' END;
    spread text;
    flagged boolean;
BEGIN
    IF n < min_history THEN
        verdict := 'insufficient_history';
        detail := format('%s earlier point%s%s; %s are needed before judging',
                         n, CASE WHEN n = 1 THEN '' ELSE 's' END, season, min_history);
        RETURN;
    END IF;
    IF mad > 0 THEN
        score := 0.6745 * (x - med) / mad;
        spread := format('MAD %s', round(mad::numeric, 2)::float8);
    ELSIF meanad > 0 THEN
        score := (x - med) / (1.2533 * meanad);
        spread := format('MAD 0, spread from the mean absolute deviation %s', round(meanad::numeric, 2)::float8);
    ELSE
        score := CASE WHEN x > med THEN 'Infinity'::float8 WHEN x < med THEN '-Infinity'::float8 ELSE 0 END;
        spread := 'all of them equal';
    END IF;
    flagged := CASE direction WHEN 'up' THEN score > threshold
                              WHEN 'down' THEN score < -threshold
                              ELSE abs(score) > threshold END;
    verdict := CASE WHEN flagged THEN 'anomaly' ELSE 'normal' END;
    detail := format('%s is %s the median %s of %s earlier points%s (%s)',
                     round(x::numeric, 2)::float8,
                     CASE WHEN score = 0 THEN 'at'
                          WHEN abs(score) = 'Infinity' THEN CASE WHEN score > 0 THEN 'above' ELSE 'below' END
                          ELSE format('%s robust deviations %s', round(abs(score)::numeric, 1),
                                      CASE WHEN score > 0 THEN 'above' ELSE 'below' END) END,
                     round(med::numeric, 2)::float8, n, season, spread)
           || CASE WHEN flagged THEN format('; beyond the threshold %s', threshold)
                   WHEN abs(score) > threshold THEN format('; only %s are anomalies (direction %s)',
                                                          CASE direction WHEN 'up' THEN 'rises' ELSE 'falls' END, direction)
                   ELSE format('; within the threshold %s', threshold) END;
END
$$;
COMMENT ON FUNCTION adr_ops._anomaly_judge(float8, float8, float8, float8, integer, timestamptz, text, text, text, integer, float8) IS
    'API: private. Verdict, modified z-score and detail of a point against its history''s median and spread';

-- The judgement of one series, the last element against the comparable
-- earlier ones: what both entry points run, on arguments already checked
-- (one-dimensional arrays of one length, oldest first, no nulls, finite).
-- SQL, not PL/pgSQL: adr_anomalies() runs it once per series.
CREATE FUNCTION adr_ops._anomaly_series(t timestamptz[], v float8[], direction text, seasonality text,
    min_history integer, threshold float8, tz text,
    OUT verdict text, OUT score float8, OUT expected float8, OUT mad float8,
    OUT history integer, OUT detail text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH p AS (
        SELECT u.t, u.v, u.i,
               CASE _anomaly_series.seasonality
               WHEN 'dow' THEN extract(dow FROM u.t AT TIME ZONE _anomaly_series.tz)::integer
               WHEN 'hour' THEN extract(hour FROM u.t AT TIME ZONE _anomaly_series.tz)::integer
               WHEN 'dow_hour' THEN (extract(dow FROM u.t AT TIME ZONE _anomaly_series.tz) * 24
                                     + extract(hour FROM u.t AT TIME ZONE _anomaly_series.tz))::integer
               ELSE 0 END AS season
          FROM unnest(_anomaly_series.t, _anomaly_series.v) WITH ORDINALITY u(t, v, i)
    ), last AS (
        SELECT p.t, p.v, p.season FROM p WHERE p.i = cardinality(_anomaly_series.v)
    ), hist AS (
        SELECT p.v FROM p, last WHERE p.i < cardinality(_anomaly_series.v) AND p.season = last.season
    ), med AS (
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY hist.v) AS median, count(*)::integer AS n FROM hist
    ), dev AS (
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(hist.v - med.median)) AS mad,
               avg(abs(hist.v - med.median)) AS meanad
          FROM med LEFT JOIN hist ON true
    )
    SELECT j.verdict, j.score,
           CASE WHEN j.verdict <> 'insufficient_history' THEN med.median END,
           CASE WHEN j.verdict <> 'insufficient_history' THEN dev.mad END,
           med.n, j.detail
      FROM last, med, dev,
           adr_ops._anomaly_judge(last.v, med.median, dev.mad, dev.meanad, med.n, last.t, _anomaly_series.tz,
                                  _anomaly_series.direction, _anomaly_series.seasonality,
                                  _anomaly_series.min_history, _anomaly_series.threshold) j
$$;
COMMENT ON FUNCTION adr_ops._anomaly_series(timestamptz[], float8[], text, text, integer, float8, text) IS
    'API: private. The judgement of the last point of a checked series against the comparable earlier ones';

-- One series given as two arrays, oldest first: the last element is judged
-- against the earlier ones.
CREATE FUNCTION adr_ops.adr_anomaly_score(at timestamptz[], val double precision[],
    direction text DEFAULT 'both', seasonality text DEFAULT 'none',
    min_history integer DEFAULT 14, threshold double precision DEFAULT 3.5,
    OUT verdict text, OUT score double precision, OUT expected double precision,
    OUT mad double precision, OUT history integer, OUT detail text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    npoints integer;
    null_at bigint;
    null_val bigint;
    not_finite bigint;
    unordered bigint;
BEGIN
    IF adr_anomaly_score.at IS NULL OR adr_anomaly_score.val IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'at and val must not be null',
            HINT = 'Pass the series as two arrays, oldest point first.';
    END IF;
    PERFORM adr_ops._anomaly_check_args(adr_anomaly_score.direction, adr_anomaly_score.seasonality,
                                        adr_anomaly_score.min_history, adr_anomaly_score.threshold);
    IF array_ndims(adr_anomaly_score.at) > 1 OR array_ndims(adr_anomaly_score.val) > 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'at and val must be one-dimensional arrays';
    END IF;
    npoints := cardinality(adr_anomaly_score.at);
    IF npoints <> cardinality(adr_anomaly_score.val) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'at and val must have the same length',
            DETAIL = format('at has %s elements, val has %s.', npoints, cardinality(adr_anomaly_score.val)),
            HINT = 'Element i of val is the reading taken at element i of at.';
    END IF;
    IF npoints = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'the series is empty',
            DETAIL = 'The last element of the series is the point judged.';
    END IF;

    SELECT min(u.i) FILTER (WHERE u.t IS NULL), min(u.i) FILTER (WHERE u.v IS NULL),
           min(u.i) FILTER (WHERE u.v IN ('NaN', 'Infinity', '-Infinity')),
           min(u.i) FILTER (WHERE u.t < u.prev)
      INTO null_at, null_val, not_finite, unordered
      FROM (SELECT s.t, s.v, s.i, lag(s.t) OVER (ORDER BY s.i) AS prev
              FROM unnest(adr_anomaly_score.at, adr_anomaly_score.val) WITH ORDINALITY s(t, v, i)) u;
    IF null_at IS NOT NULL OR null_val IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'at and val must not contain nulls',
            DETAIL = format('Element %s of %s is null.', least(null_at, null_val),
                            CASE WHEN null_at <= null_val OR null_val IS NULL THEN 'at' ELSE 'val' END),
            HINT = 'Leave out the points that have no reading.';
    END IF;
    IF not_finite IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'val must hold finite numbers',
            DETAIL = format('Element %s of val is %s.', not_finite,
                            (SELECT s.v FROM unnest(adr_anomaly_score.val) WITH ORDINALITY s(v, i) WHERE s.i = not_finite));
    END IF;
    IF unordered IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'at must be in ascending order',
            DETAIL = format('Element %s is earlier than element %s.', unordered, unordered - 1),
            HINT = 'Build the arrays with array_agg(... ORDER BY the time).';
    END IF;

    SELECT r.verdict, r.score, r.expected, r.mad, r.history, r.detail
      INTO verdict, score, expected, mad, history, detail
      FROM adr_ops._anomaly_series(adr_anomaly_score.at, adr_anomaly_score.val,
                                   adr_anomaly_score.direction, adr_anomaly_score.seasonality,
                                   adr_anomaly_score.min_history, adr_anomaly_score.threshold,
                                   adr_ops._anomaly_zone()) r;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_anomaly_score(timestamptz[], double precision[], text, text, integer, double precision) IS
    'judges the last point of a series against the earlier ones by a modified z-score (median and MAD), optionally per day of week and hour of day';

-- Every stored series at once: one pass over each source gathers each
-- series into arrays, oldest first, and _anomaly_series() judges it, the
-- same way adr_anomaly_score() does.  days is the history read; every
-- series with a point in it has a row (normal ones too, for dashboards),
-- anomalies first.  A source is one more branch of series: (source, name,
-- times, values), values finite.
CREATE FUNCTION adr_ops.adr_anomalies(days integer DEFAULT 7, direction text DEFAULT 'both',
    seasonality text DEFAULT 'none', min_history integer DEFAULT 14,
    threshold double precision DEFAULT 3.5,
    OUT source text, OUT series text, OUT at timestamptz, OUT value double precision,
    OUT verdict text, OUT score double precision, OUT expected double precision,
    OUT mad double precision, OUT history integer, OUT detail text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := adr_ops._anomaly_zone();
    since timestamptz;
BEGIN
    IF adr_anomalies.days IS NULL OR adr_anomalies.days < 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('days must be at least 1, not %s', coalesce(adr_anomalies.days::text, 'null')),
            DETAIL = 'days is how far back the history of each series is read.';
    END IF;
    PERFORM adr_ops._anomaly_check_args(adr_anomalies.direction, adr_anomalies.seasonality,
                                        adr_anomalies.min_history, adr_anomalies.threshold);
    since := now() - make_interval(days => adr_anomalies.days);

    RETURN QUERY
    WITH series AS (
        -- health: each check's numeric reading
        SELECT 'health' AS src, h.check_name AS name,
               array_agg(h.taken_at ORDER BY h.taken_at) AS t, array_agg(h.value::float8 ORDER BY h.taken_at) AS v
          FROM adr_ops.health_history h
         WHERE h.taken_at > since AND h.value IS NOT NULL
           AND h.value::float8 NOT IN ('NaN', 'Infinity', '-Infinity')
         GROUP BY h.check_name
        UNION ALL
        -- size: sizes as stored; the counters (xid, multixact, wal_lsn) as
        -- their growth per hour between readings, which is what changes
        SELECT 'size', z.kind || ':' || z.name || CASE WHEN z.counter THEN ' per hour' ELSE '' END,
               array_agg(z.t ORDER BY z.t), array_agg(z.v ORDER BY z.t)
          FROM (SELECT s.kind, s.name, c.counter, s.taken_at AS t,
                       CASE WHEN NOT c.counter THEN s.value::float8
                            ELSE ((s.value - lag(s.value) OVER w)
                                  / nullif(extract(epoch FROM s.taken_at - lag(s.taken_at) OVER w), 0)
                                  * 3600)::float8 END AS v
                  FROM adr_ops.size_history s
                 CROSS JOIN LATERAL (SELECT s.kind IN ('xid', 'multixact', 'wal_lsn') AS counter) c
                 WHERE s.taken_at > since
                WINDOW w AS (PARTITION BY s.kind, s.name ORDER BY s.taken_at)) z
         WHERE z.v >= 0
         GROUP BY z.kind, z.name, z.counter
        UNION ALL
        -- statements: the mean time per call of each entry over each
        -- interval between its stored snapshots; counters that went down
        -- (a reset) count whole
        SELECT 'statements',
               format('queryid %s db %s user %s%s', q.queryid, coalesce(d.datname::text, q.dbid::text),
                      coalesce(r.rolname::text, q.userid::text), CASE WHEN q.toplevel THEN '' ELSE ' (nested)' END),
               q.t, q.v
          FROM (SELECT i.queryid, i.userid, i.dbid, i.toplevel,
                       array_agg(i.t ORDER BY i.t) AS t, array_agg(i.dt / i.dc ORDER BY i.t) AS v
                  FROM (SELECT c.queryid, c.userid, c.dbid, c.toplevel, s.taken_at AS t,
                               CASE WHEN c.calls < lag(c.calls) OVER w OR c.total_ms < lag(c.total_ms) OVER w
                                    THEN c.calls ELSE c.calls - lag(c.calls) OVER w END AS dc,
                               CASE WHEN c.calls < lag(c.calls) OVER w OR c.total_ms < lag(c.total_ms) OVER w
                                    THEN c.total_ms ELSE c.total_ms - lag(c.total_ms) OVER w END AS dt
                          FROM adr_ops.statement_counters c
                          JOIN adr_ops.statement_snapshots s ON s.id = c.snapshot_id
                         WHERE s.taken_at > since
                        WINDOW w AS (PARTITION BY c.queryid, c.userid, c.dbid, c.toplevel ORDER BY c.snapshot_id)) i
                 WHERE i.dc > 0
                 GROUP BY i.queryid, i.userid, i.dbid, i.toplevel) q
          LEFT JOIN pg_database d ON d.oid = q.dbid
          LEFT JOIN pg_roles r ON r.oid = q.userid
        UNION ALL
        -- quality: each check's metric as its runs stored it (a row_count
        -- check's metric is its table's row count)
        SELECT 'quality', r.check_name,
               array_agg(r.ran_at ORDER BY r.ran_at), array_agg(r.metric ORDER BY r.ran_at)
          FROM adr_ops.quality_results r
         WHERE r.ran_at > since AND r.metric IS NOT NULL
           AND r.metric NOT IN ('NaN', 'Infinity', '-Infinity')
         GROUP BY r.check_name
    )
    SELECT s.src, s.name, s.t[cardinality(s.t)], s.v[cardinality(s.v)],
           j.verdict, j.score, j.expected, j.mad, j.history, j.detail
      FROM series s
     CROSS JOIN LATERAL adr_ops._anomaly_series(s.t, s.v, adr_anomalies.direction, adr_anomalies.seasonality,
                                                adr_anomalies.min_history, adr_anomalies.threshold, tz) j
     ORDER BY CASE j.verdict WHEN 'anomaly' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END,
              abs(j.score) DESC NULLS LAST, s.src, s.name;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_anomalies(integer, text, text, integer, double precision) IS
    'the newest point of every stored series (health readings, sizes, statement mean times, quality metrics) judged by adr_anomaly_score''s modified z-score';

-- Reports for pg_monitor, like the history they read.  adr_anomaly_score
-- reads nothing, but no function of the extension is PUBLIC's: a role
-- that scores its own series is granted EXECUTE (and USAGE on the schema).
DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['adr_ops._anomaly_check_args(text, text, integer, float8)',
                             'adr_ops._anomaly_zone()',
                             'adr_ops._anomaly_judge(float8, float8, float8, float8, integer, timestamptz, text, text, text, integer, float8)',
                             'adr_ops._anomaly_series(timestamptz[], float8[], text, text, integer, float8, text)',
                             'adr_ops.adr_anomaly_score(timestamptz[], double precision[], text, text, integer, double precision)',
                             'adr_ops.adr_anomalies(integer, text, text, integer, double precision)'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pg_monitor', f);
    END LOOP;
END
$grants$;
