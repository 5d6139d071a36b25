--
-- Anomalies: the modified z-score of the newest point of a series against
-- its history (median and MAD), a minimum history, direction, day-of-week
-- and hour-of-day seasonality; then every stored series at once.
--
\set VERBOSITY default
\set SHOW_CONTEXT never
SET timezone = 'UTC';
UPDATE adr_ops.schedules SET enabled = false;

-- A steady daily series around 100 (100..104), then a spike: an anomaly,
-- and the expected value is the history's median.
WITH s AS (
    SELECT timestamptz '2026-01-01' + i * interval '1 day' AS t,
           CASE WHEN i = 40 THEN 180 ELSE 100 + (i * 7) % 5 END::float8 AS v
      FROM generate_series(0, 40) i)
SELECT r.verdict, round(r.score::numeric, 2) AS score, r.expected, r.mad, r.history, r.detail
  FROM (SELECT array_agg(t ORDER BY t) AS t, array_agg(v ORDER BY t) AS v FROM s) a,
       adr_ops.adr_anomaly_score(a.t, a.v) r;
-- The same series without the spike is normal; so is its last point.
WITH s AS (
    SELECT timestamptz '2026-01-01' + i * interval '1 day' AS t, (100 + (i * 7) % 5)::float8 AS v
      FROM generate_series(0, 40) i)
SELECT r.verdict, round(r.score::numeric, 2) AS score, r.expected, r.history, r.detail
  FROM (SELECT array_agg(t ORDER BY t) AS t, array_agg(v ORDER BY t) AS v FROM s) a,
       adr_ops.adr_anomaly_score(a.t, a.v) r;
-- A threshold higher than the spike's score lets it pass.
WITH s AS (
    SELECT timestamptz '2026-01-01' + i * interval '1 day' AS t,
           CASE WHEN i = 40 THEN 180 ELSE 100 + (i * 7) % 5 END::float8 AS v
      FROM generate_series(0, 40) i)
SELECT r.verdict
  FROM (SELECT array_agg(t ORDER BY t) AS t, array_agg(v ORDER BY t) AS v FROM s) a,
       adr_ops.adr_anomaly_score(a.t, a.v, threshold => 60) r;

-- Direction: a rise is only an anomaly when rises count, a fall when falls do.
WITH s AS (
    SELECT timestamptz '2026-01-01' + i * interval '1 day' AS t,
           CASE WHEN i = 40 THEN 180 ELSE 100 + (i * 7) % 5 END::float8 AS v
      FROM generate_series(0, 40) i),
a AS (SELECT array_agg(t ORDER BY t) AS t, array_agg(v ORDER BY t) AS v FROM s)
SELECT d.direction, r.verdict, r.detail
  FROM a, unnest('{up,down,both}'::text[]) d(direction),
       adr_ops.adr_anomaly_score(a.t, a.v, d.direction) r
 ORDER BY d.direction;
WITH s AS (
    SELECT timestamptz '2026-01-01' + i * interval '1 day' AS t,
           CASE WHEN i = 40 THEN 20 ELSE 100 + (i * 7) % 5 END::float8 AS v
      FROM generate_series(0, 40) i),
a AS (SELECT array_agg(t ORDER BY t) AS t, array_agg(v ORDER BY t) AS v FROM s)
SELECT d.direction, r.verdict, round(r.score::numeric, 2) AS score, r.detail
  FROM a, unnest('{up,down,both}'::text[]) d(direction),
       adr_ops.adr_anomaly_score(a.t, a.v, d.direction) r
 ORDER BY d.direction;

-- Too short a history says so instead of guessing, and guesses nothing.
SELECT r.*
  FROM adr_ops.adr_anomaly_score(
        ARRAY(SELECT timestamptz '2026-01-01' + i * interval '1 day' FROM generate_series(0, 4) i),
        '{10,11,10,12,500}') r;
SELECT r.verdict, r.history
  FROM adr_ops.adr_anomaly_score(
        ARRAY(SELECT timestamptz '2026-01-01' + i * interval '1 day' FROM generate_series(0, 4) i),
        '{10,11,10,12,500}', min_history => 4) r;
SELECT r.verdict, r.history, r.detail
  FROM adr_ops.adr_anomaly_score(ARRAY[timestamptz '2026-01-01'], '{1}') r;

-- A weekly rhythm: daily values around 100, and a dip to about 20 every
-- Monday, for 15 weeks (2026-01-05 is a Monday).  This Monday's dip is an
-- anomaly against every day, and normal against the earlier Mondays.
WITH s AS (
    SELECT timestamptz '2026-01-05 12:00' + i * interval '1 day' AS t,
           CASE WHEN i % 7 = 0 THEN 20 + i % 3 ELSE 100 + (i * 7) % 5 END::float8 AS v
      FROM generate_series(0, 105) i),
a AS (SELECT array_agg(t ORDER BY t) AS t, array_agg(v ORDER BY t) AS v,
             to_char(max(t), 'FMDay') AS last_day FROM s)
SELECT a.last_day, z.seasonality, r.verdict, round(r.score::numeric, 2) AS score, r.expected, r.history, r.detail
  FROM a, unnest('{none,dow}'::text[]) z(seasonality),
       adr_ops.adr_anomaly_score(a.t, a.v, seasonality => z.seasonality) r
 ORDER BY z.seasonality DESC;
-- A Monday without its dip is the anomaly then.
WITH s AS (
    SELECT timestamptz '2026-01-05 12:00' + i * interval '1 day' AS t,
           CASE WHEN i = 105 THEN 100 WHEN i % 7 = 0 THEN 20 + i % 3 ELSE 100 + (i * 7) % 5 END::float8 AS v
      FROM generate_series(0, 105) i),
a AS (SELECT array_agg(t ORDER BY t) AS t, array_agg(v ORDER BY t) AS v FROM s)
SELECT r.verdict, round(r.score::numeric, 2) AS score, r.detail
  FROM a, adr_ops.adr_anomaly_score(a.t, a.v, seasonality => 'dow') r;
-- A Tuesday is compared with Tuesdays only: the Mondays do not count.
WITH s AS (
    SELECT timestamptz '2026-01-05 12:00' + i * interval '1 day' AS t,
           CASE WHEN i % 7 = 0 THEN 20 + i % 3 ELSE 100 + (i * 7) % 5 END::float8 AS v
      FROM generate_series(0, 106) i),
a AS (SELECT array_agg(t ORDER BY t) AS t, array_agg(v ORDER BY t) AS v FROM s)
SELECT r.verdict, r.expected, r.history, r.detail
  FROM a, adr_ops.adr_anomaly_score(a.t, a.v, seasonality => 'dow') r;

-- Hour of day: hourly readings, low at night (00:00-05:59), for 20 days;
-- the last point is at 03:00.
WITH s AS (
    SELECT timestamptz '2026-01-05' + i * interval '1 hour' AS t,
           CASE WHEN extract(hour FROM timestamptz '2026-01-05' + i * interval '1 hour') < 6
                THEN 10 + (i / 24) % 3 ELSE 100 + i % 4 END::float8 AS v
      FROM generate_series(0, 20 * 24 + 3) i),
a AS (SELECT array_agg(t ORDER BY t) AS t, array_agg(v ORDER BY t) AS v FROM s)
SELECT z.seasonality, r.verdict, r.expected, r.history, r.detail
  FROM a, unnest('{none,hour,dow_hour}'::text[]) z(seasonality),
       adr_ops.adr_anomaly_score(a.t, a.v, seasonality => z.seasonality, min_history => 3) r
 ORDER BY z.seasonality;
-- The hours are read in the session's time zone when adr_ops.timezone is
-- empty: in Tokyo (UTC+9) 03:00 UTC is hour 12.
SET timezone = 'Asia/Tokyo';
WITH s AS (
    SELECT timestamptz '2026-01-05 00:00 UTC' + i * interval '1 hour' AS t,
           CASE WHEN extract(hour FROM (timestamptz '2026-01-05 00:00 UTC' + i * interval '1 hour') AT TIME ZONE 'UTC') < 6
                THEN 10 + (i / 24) % 3 ELSE 100 + i % 4 END::float8 AS v
      FROM generate_series(0, 20 * 24 + 3) i),
a AS (SELECT array_agg(t ORDER BY t) AS t, array_agg(v ORDER BY t) AS v FROM s)
SELECT r.verdict, r.expected, r.detail
  FROM a, adr_ops.adr_anomaly_score(a.t, a.v, seasonality => 'hour') r;
SET timezone = 'UTC';

-- MAD 0: more than half the history is one value; the spread comes from
-- the mean absolute deviation.
SELECT r.verdict, round(r.score::numeric, 2) AS score, r.expected, r.mad, r.detail
  FROM adr_ops.adr_anomaly_score(
        ARRAY(SELECT timestamptz '2026-01-01' + i * interval '1 day' FROM generate_series(0, 9) i),
        '{5,5,5,5,5,5,6,7,4,9}', min_history => 3) r;
SELECT r.verdict, round(r.score::numeric, 2) AS score
  FROM adr_ops.adr_anomaly_score(
        ARRAY(SELECT timestamptz '2026-01-01' + i * interval '1 day' FROM generate_series(0, 9) i),
        '{5,5,5,5,5,5,6,7,4,5.5}', min_history => 3) r;
-- A constant history: the same value is normal, any other infinitely far.
SELECT v.last, r.verdict, r.score, r.expected, r.mad, r.detail
  FROM unnest('{0,1,-1}'::float8[]) v(last),
       adr_ops.adr_anomaly_score(
        ARRAY(SELECT timestamptz '2026-01-01' + i * interval '1 day' FROM generate_series(0, 5) i),
        ARRAY[0, 0, 0, 0, 0, v.last]::float8[], min_history => 3) r
 ORDER BY v.last;
SELECT r.verdict
  FROM adr_ops.adr_anomaly_score(
        ARRAY(SELECT timestamptz '2026-01-01' + i * interval '1 day' FROM generate_series(0, 5) i),
        '{0,0,0,0,0,1}', 'down', min_history => 3) r;

-- Bad arguments.
SELECT * FROM adr_ops.adr_anomaly_score(NULL, '{1}');
SELECT * FROM adr_ops.adr_anomaly_score('{2026-01-01}', NULL);
SELECT * FROM adr_ops.adr_anomaly_score('{2026-01-01}', '{1}', NULL);
SELECT * FROM adr_ops.adr_anomaly_score('{2026-01-01}', '{1}', min_history => NULL);
SELECT * FROM adr_ops.adr_anomaly_score('{2026-01-01,2026-01-02}', '{1}');
SELECT * FROM adr_ops.adr_anomaly_score('{}', '{}');
SELECT * FROM adr_ops.adr_anomaly_score('{{2026-01-01},{2026-01-02}}', '{{1},{2}}');
SELECT * FROM adr_ops.adr_anomaly_score('{2026-01-01,NULL}', '{1,2}');
SELECT * FROM adr_ops.adr_anomaly_score('{2026-01-01,2026-01-02}', '{1,NULL}');
SELECT * FROM adr_ops.adr_anomaly_score('{2026-01-01,2026-01-02}', '{1,NaN}');
SELECT * FROM adr_ops.adr_anomaly_score('{2026-01-01,2026-01-02}', '{Infinity,1}');
SELECT * FROM adr_ops.adr_anomaly_score('{2026-01-02,2026-01-01}', '{1,2}');
SELECT * FROM adr_ops.adr_anomaly_score('{2026-01-01}', '{1}', 'sideways');
SELECT * FROM adr_ops.adr_anomaly_score('{2026-01-01}', '{1}', seasonality => 'month');
SELECT * FROM adr_ops.adr_anomaly_score('{2026-01-01}', '{1}', min_history => 2);
SELECT * FROM adr_ops.adr_anomaly_score('{2026-01-01}', '{1}', threshold => 0);
SELECT * FROM adr_ops.adr_anomaly_score('{2026-01-01}', '{1}', threshold => 'NaN');
SELECT * FROM adr_ops.adr_anomalies(0);
SELECT * FROM adr_ops.adr_anomalies(NULL);
SELECT * FROM adr_ops.adr_anomalies(direction => 'UP');

-- Every stored series: health readings, sizes and statements, inserted
-- here by hand.  (Replica mode keeps the alert trigger of health_history
-- quiet.)
\set VERBOSITY terse
DELETE FROM adr_ops.health_history;
DELETE FROM adr_ops.size_history;
DELETE FROM adr_ops.statement_last;
DELETE FROM adr_ops.statement_counters;
DELETE FROM adr_ops.statement_snapshots;
SET session_replication_role = replica;
INSERT INTO adr_ops.health_history (taken_at, check_name, status, value)
SELECT now() - (47 - i) * interval '1 hour', 'connections', 'OK',
       CASE WHEN i = 47 THEN 95 ELSE 40 + (i * 7) % 5 END
  FROM generate_series(0, 47) i
UNION ALL
SELECT now() - (47 - i) * interval '1 hour', 'disk', 'OK', 70 + (i * 3) % 4
  FROM generate_series(0, 47) i
UNION ALL
SELECT now() - (47 - i) * interval '1 hour', 'cache_hit_ratio', 'OK',
       CASE WHEN i = 47 THEN 80 ELSE 99 - i % 2 END
  FROM generate_series(0, 47) i
UNION ALL
SELECT now() - i * interval '1 hour', 'short', 'OK', i FROM generate_series(0, 4) i
UNION ALL
-- no reading: no series
SELECT now() - i * interval '1 hour', 'replication', 'UNKNOWN', NULL FROM generate_series(0, 30) i
UNION ALL
-- older than the window
SELECT now() - interval '10 days' - i * interval '1 hour', 'stale', 'OK', 1 FROM generate_series(0, 30) i;
RESET session_replication_role;

INSERT INTO adr_ops.size_history (taken_at, kind, name, value)
SELECT now() - (47 - i) * interval '1 hour', 'database', 'app', 1000000 + i * 5000
  FROM generate_series(0, 47) i
UNION ALL
SELECT now() - (47 - i) * interval '1 hour', 'relation', 'public.events',
       CASE WHEN i = 47 THEN 9000000 ELSE 2000000 + (i % 3) * 1000 END
  FROM generate_series(0, 47) i
UNION ALL
-- a counter: about 1000 a hour, then 20000 in the last hour
SELECT now() - (47 - i) * interval '1 hour', 'wal_lsn', 'cluster',
       CASE WHEN i = 47 THEN 1000 * 46 + (46 * 3) % 100 + 20000 ELSE 1000 * i + (i * 3) % 100 END
  FROM generate_series(0, 47) i;

-- Statements: a snapshot an hour; statement 1 takes about 5 ms a call,
-- 50 ms in the last hour; statement 2 is steady, and its counters were
-- reset at one snapshot (they count whole there, not as a negative delta).
CREATE ROLE adr_anomaly_app;
INSERT INTO adr_ops.statement_snapshots (id, taken_at, entries, changed)
SELECT 1000 + i, now() - (47 - i) * interval '1 hour', 2, 2 FROM generate_series(0, 47) i;
INSERT INTO adr_ops.statement_counters
       (snapshot_id, queryid, userid, dbid, toplevel, calls, total_ms, rows, blks_hit, blks_read)
SELECT 1000 + i, 1, 'adr_anomaly_app'::regrole, d.oid, true, 10 * i,
       CASE WHEN i = 47 THEN 5 * 10 * 46 + (46 % 3) * 10 + 50 * 10 ELSE 5 * 10 * i + (i % 3) * 10 END, 0, 0, 0
  FROM generate_series(0, 47) i, pg_database d WHERE d.datname = current_database()
UNION ALL
SELECT 1000 + i, 2, 'adr_anomaly_app'::regrole, d.oid, true,
       CASE WHEN i < 20 THEN 100 * i ELSE 100 * (i - 20) + 50 END,
       CASE WHEN i < 20 THEN 200 * i ELSE 200 * (i - 20) + 100 END, 0, 0, 0
  FROM generate_series(0, 47) i, pg_database d WHERE d.datname = current_database();

SELECT source, series, value, verdict, round(score::numeric, 2) AS score, expected, mad, history, detail
  FROM adr_ops.adr_anomalies()
 ORDER BY source, series;
-- Anomalies come first, the strongest first.
SELECT source, series, verdict FROM adr_ops.adr_anomalies() LIMIT 4;
-- Only rises: the cache hit ratio's fall is normal.
SELECT series, verdict FROM adr_ops.adr_anomalies(direction => 'up')
 WHERE source = 'health' ORDER BY series;
-- A longer window reaches the stale check.
SELECT series, verdict, history FROM adr_ops.adr_anomalies(days => 30)
 WHERE source = 'health' AND series = 'stale';
-- Seasonality over the stored series: a daily reading that dips every
-- Monday, for nine weeks up to this week's Monday.  Against every day the
-- dip is an anomaly; against the earlier Mondays it is normal.
SET session_replication_role = replica;
INSERT INTO adr_ops.health_history (taken_at, check_name, status, value)
SELECT date_trunc('week', now()) + interval '12 hours' - k * interval '1 day', 'weekly', 'OK',
       CASE WHEN k % 7 = 0 THEN 20 + k % 3 ELSE 100 + k % 4 END
  FROM generate_series(0, 62) k;
RESET session_replication_role;
SELECT z.seasonality, x.verdict, x.expected, x.history
  FROM unnest('{none,dow}'::text[]) z(seasonality),
       adr_ops.adr_anomalies(days => 70, seasonality => z.seasonality, min_history => 8) x
 WHERE x.source = 'health' AND x.series = 'weekly'
 ORDER BY z.seasonality DESC;
-- The same verdict, score and expected value as adr_anomaly_score on each
-- series, with seasonality too.
SELECT z.seasonality, count(*) AS series,
       count(*) FILTER (WHERE (r.verdict, r.score, r.expected, r.mad, r.history, r.detail)
                              IS NOT DISTINCT FROM (x.verdict, x.score, x.expected, x.mad, x.history, x.detail)) AS same
  FROM unnest('{none,hour}'::text[]) z(seasonality)
 CROSS JOIN LATERAL adr_ops.adr_anomalies(seasonality => z.seasonality, min_history => 3) x
 CROSS JOIN LATERAL (SELECT array_agg(h.taken_at ORDER BY h.taken_at) AS t, array_agg(h.value::float8 ORDER BY h.taken_at) AS v
                       FROM adr_ops.health_history h
                      WHERE h.check_name = x.series AND h.value IS NOT NULL
                        AND h.taken_at > now() - interval '7 days') a
 CROSS JOIN LATERAL adr_ops.adr_anomaly_score(a.t, a.v, seasonality => z.seasonality, min_history => 3) r
 WHERE x.source = 'health'
 GROUP BY z.seasonality ORDER BY z.seasonality;

-- Who may call them: pg_monitor (the history is its to read), not PUBLIC.
CREATE ROLE adr_anomaly_monitor IN ROLE pg_monitor;
CREATE ROLE adr_anomaly_nobody;
GRANT USAGE ON SCHEMA adr_ops TO adr_anomaly_nobody;
SET ROLE adr_anomaly_monitor;
SELECT count(*) AS series, count(*) FILTER (WHERE verdict = 'anomaly') AS anomalies FROM adr_ops.adr_anomalies();
SELECT verdict FROM adr_ops.adr_anomaly_score('{2026-01-01,2026-01-02,2026-01-03,2026-01-04}', '{1,2,1,2}', min_history => 3);
SET ROLE adr_anomaly_nobody;
SELECT * FROM adr_ops.adr_anomalies();
SELECT * FROM adr_ops.adr_anomaly_score('{2026-01-01}', '{1}');
RESET ROLE;

DELETE FROM adr_ops.statement_counters;
DELETE FROM adr_ops.statement_snapshots;
DELETE FROM adr_ops.size_history;
DELETE FROM adr_ops.health_history;
REVOKE USAGE ON SCHEMA adr_ops FROM adr_anomaly_nobody;
DROP ROLE adr_anomaly_monitor, adr_anomaly_nobody, adr_anomaly_app;
RESET timezone;
