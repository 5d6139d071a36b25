--
-- Slow queries and statement history: the SQL surface.  Timings vary, so
-- only ranges and flags print.
--
-- Errors print their detail and hint; the PL/pgSQL context would only pin
-- line numbers.
\set SHOW_CONTEXT never

-- Without pg_stat_statements: an error that says both steps, not an empty
-- result that looks like "no slow queries".
SELECT * FROM adr_ops.adr_slow_queries();
SELECT adr_ops.adr_snapshot_statements();

CREATE EXTENSION pg_stat_statements;
SELECT count(*) AS nothing_that_slow FROM adr_ops.adr_slow_queries(1e9);

SELECT pg_sleep(0.05);
SELECT pg_sleep(0.05);
SELECT calls, mean_ms BETWEEN 45 AND 1000 AS mean_ok, max_ms >= mean_ms AS max_ok,
       total_ms BETWEEN 90 AND 2000 AS total_ok, pct_of_total > 0 AS pct_ok,
       dbname = current_database() AS db_ok, username = current_user AS user_ok,
       query, partial
  FROM adr_ops.adr_slow_queries(40, 1000) WHERE query LIKE '%pg_sleep%';

-- With since, deltas need a snapshot.
SELECT * FROM adr_ops.adr_slow_queries(since => '1 hour');
SELECT adr_ops.adr_snapshot_statements() > 0 AS stored;
SELECT count(*) AS snapshots, bool_and(entries >= changed) AS counts_ok FROM adr_ops.statement_snapshots;
-- Nothing ran slowly since: no rows; history shorter than the window shows
-- as partial when something did.
SELECT count(*) AS slow_since FROM adr_ops.adr_slow_queries(40, since => '1 hour')
 WHERE query NOT LIKE '%adr_snapshot_statements%';  -- the snapshot itself may be slow on a busy host
SELECT pg_sleep(0.05);
SELECT calls, partial FROM adr_ops.adr_slow_queries(40, since => '1 hour') WHERE query LIKE '%pg_sleep%';
-- Only what changed is stored again.
SELECT adr_ops.adr_snapshot_statements() < (SELECT entries FROM adr_ops.statement_snapshots ORDER BY id LIMIT 1)
       AS stores_less;
SELECT count(*) = count(DISTINCT (queryid, userid, dbid)) AS one_text_each FROM adr_ops.statement_texts;

SELECT count(*) > 0 AS trend_rows,
       bool_and(calls >= 0 AND total_ms >= 0) AS never_negative
  FROM adr_ops.adr_query_trend((SELECT queryid FROM adr_ops.adr_slow_queries(40, 1000) WHERE query LIKE '%pg_sleep%'),
                               '1 day');

-- Bad input.
SELECT * FROM adr_ops.adr_slow_queries(NULL);
SHOW adr_ops.snapshot_retention;

-- Reports for pg_monitor; snapshots act, so they are not.
CREATE ROLE adr_perf_viewer IN ROLE pg_monitor;
SET ROLE adr_perf_viewer;
SELECT count(*) >= 1 AS sees_slow FROM adr_ops.adr_slow_queries(40);
SELECT adr_ops.adr_snapshot_statements();
RESET ROLE;
DROP ROLE adr_perf_viewer;
DROP EXTENSION pg_stat_statements;
