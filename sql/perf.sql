--
-- Performance investigations: lock waits, connection summary, index advice,
-- cache hit ratios, backend memory.  Other processes come and go, so only
-- this session, the server's own auxiliary processes and the tables made
-- here print; sizes and times only as comparisons.
--

-- The reports and what they return.
SELECT p.oid::regprocedure AS function, pg_get_function_result(p.oid) AS returns,
       p.provolatile, p.proisstrict
  FROM pg_proc p
 WHERE p.pronamespace = 'adr_ops'::regnamespace
   AND p.proname IN ('adr_lock_waits', 'adr_connection_summary', 'adr_index_advice',
                     'adr_cache_stats', 'adr_backend_memory', '_proc_memory')
 ORDER BY p.proname;

--
-- Lock waits: none while this is the only session at work (a real wait is
-- in t/011_perf.pl).
--
SELECT * FROM adr_ops.adr_lock_waits();

--
-- Connection summary: this session is one active client backend; its share
-- of the slots leaves out those reserved for superusers.
--
SELECT database = current_database() AS this_db, username = current_user AS this_user,
       application_name, state, sessions, oldest_idle_in_transaction,
       pct_of_slots = round(100.0 / (current_setting('max_connections')::int
                                     - current_setting('superuser_reserved_connections')::int), 1)
           AS pct_ok,
       all_clients_pct >= pct_of_slots AS total_ok
  FROM adr_ops.adr_connection_summary()
 WHERE application_name = 'pg_regress/perf';
-- Every client backend is in one group, and only client backends.
SELECT sum(sessions) = (SELECT count(*) FROM pg_stat_activity
                         WHERE backend_type = 'client backend') AS all_counted
  FROM adr_ops.adr_connection_summary();

--
-- Index advice on tables made for it.  Scan counters start at 0 in this
-- database, and only the queries below add to them.
--
CREATE SCHEMA perf_advice;
CREATE TABLE perf_advice.customers (id int PRIMARY KEY, email text UNIQUE);
CREATE TABLE perf_advice.orders (
    id int PRIMARY KEY,
    customer_id int REFERENCES perf_advice.customers,   -- no index: advised
    placed date,
    status text);
CREATE INDEX orders_status ON perf_advice.orders (status);              -- never scanned
CREATE INDEX orders_placed ON perf_advice.orders (placed, status);
CREATE INDEX orders_placed_dup ON perf_advice.orders (placed, status);  -- duplicate
CREATE INDEX orders_placed_prefix ON perf_advice.orders (placed);       -- redundant
CREATE INDEX customers_email ON perf_advice.customers (email);          -- duplicates the constraint's
CREATE INDEX customers_lower ON perf_advice.customers (lower(email));
CREATE INDEX customers_lower_dup ON perf_advice.customers (lower(email)); -- duplicate expression
CREATE INDEX customers_lower_part ON perf_advice.customers (lower(email))
    WHERE email IS NOT NULL;                                             -- not the same: a predicate
-- An index that covers a foreign key is never "unused", even unscanned.
CREATE TABLE perf_advice.items (order_id int REFERENCES perf_advice.orders, sku text);
CREATE INDEX items_order_sku ON perf_advice.items (order_id, sku);
-- A partitioned table: no CONCURRENTLY.
CREATE TABLE perf_advice.parted (id int, k int) PARTITION BY RANGE (id);
CREATE TABLE perf_advice.parted_1 PARTITION OF perf_advice.parted FOR VALUES FROM (0) TO (100);
CREATE INDEX parted_k ON perf_advice.parted (k);
CREATE INDEX parted_k_dup ON perf_advice.parted (k);
-- A failed CREATE UNIQUE INDEX CONCURRENTLY leaves an invalid index.
CREATE TABLE perf_advice.tags (name text);
INSERT INTO perf_advice.tags VALUES ('a'), ('a');
CREATE UNIQUE INDEX CONCURRENTLY tags_name ON perf_advice.tags (name);
-- A table read by large sequential scans; "account" has many scattered
-- values (pg_stats suggests it), "kind" few, "id" follows the row order.
CREATE TABLE perf_advice.events AS
    SELECT i AS id, (i * 7919) % 5000 AS account, i % 3 AS kind
      FROM generate_series(1, 20000) i;
ANALYZE perf_advice.events;
DO $$
BEGIN
    FOR i IN 1..101 LOOP
        PERFORM count(*) FROM perf_advice.events;
    END LOOP;
END
$$;

-- One lookup through one of the (placed, status) twins, whichever the
-- planner takes: that one is kept, the other is the duplicate.
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF)
SELECT * FROM perf_advice.orders WHERE placed = '2024-01-01' AND status = 'new';
SELECT * FROM perf_advice.orders WHERE placed = '2024-01-01' AND status = 'new';
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT pg_stat_force_next_flush();

-- The findings.  Evidence with the sizes masked.
SELECT finding, object, table_name, statement
  FROM adr_ops.adr_index_advice()
 WHERE table_name LIKE 'perf\_advice.%'
 ORDER BY finding, object;
SELECT finding, object,
       regexp_replace(evidence, '[0-9]+ (bytes|kB|MB)', 'SIZE', 'g') AS evidence
  FROM adr_ops.adr_index_advice()
 WHERE table_name LIKE 'perf\_advice.%'
 ORDER BY finding, object;

-- The statements run as they are (CONCURRENTLY outside a transaction);
-- afterwards only what they do not settle remains.
SELECT statement FROM adr_ops.adr_index_advice()
 WHERE table_name LIKE 'perf\_advice.%'
   AND finding NOT IN ('invalid index', 'sequential scans')
 ORDER BY finding, object \gexec
SELECT finding, object, statement
  FROM adr_ops.adr_index_advice()
 WHERE table_name LIKE 'perf\_advice.%'
 ORDER BY finding, object;

--
-- Cache hit ratios: reading a table makes hits; a table never read has
-- neither hits nor reads, and no ratio.
--
CREATE TABLE perf_advice.cached (id int PRIMARY KEY);
INSERT INTO perf_advice.cached SELECT generate_series(1, 1000);
SELECT count(*) FROM perf_advice.cached WHERE id = 5;
CREATE TABLE perf_advice.untouched (id int);
SELECT pg_stat_force_next_flush();
SELECT relname, kind, hits > 0 AS hit, reads >= 0 AS reads_ok,
       hit_ratio BETWEEN 0 AND 1 AS ratio_ok, hit_ratio IS NULL AS no_ratio
  FROM adr_ops.adr_cache_stats()
 WHERE schemaname = 'perf_advice' AND relname IN ('cached', 'cached_pkey', 'untouched')
 ORDER BY relname;
-- Most reads first.
SELECT bool_and(s.reads <= s.prev) AS ordered
  FROM (SELECT c.reads, lag(c.reads) OVER (ORDER BY c.n) AS prev
          FROM adr_ops.adr_cache_stats() WITH ORDINALITY c(schemaname, relname, kind, hits,
                                                           reads, hit_ratio, n)) s
 WHERE s.prev IS NOT NULL;

--
-- Backend memory, from /proc/<pid>/status.
--
SELECT backend_type, username = current_user AS this_user,
       database = current_database() AS this_db, state,
       rss_bytes > 0 AS has_rss, anon_bytes > 0 AS has_anon, anon_bytes <= rss_bytes AS anon_in_rss,
       query LIKE '%adr_backend_memory%' AS this_query, error
  FROM adr_ops.adr_backend_memory()
 WHERE pid = pg_backend_pid();
-- The auxiliary processes are read too.
SELECT backend_type, rss_bytes > 0 AS has_rss, error
  FROM adr_ops.adr_backend_memory()
 WHERE backend_type IN ('checkpointer', 'background writer', 'walwriter')
 ORDER BY backend_type;
-- Only this cluster's processes: another pid gets a reason, not figures.
SELECT * FROM adr_ops._proc_memory(1);
SELECT * FROM adr_ops._proc_memory(0);
SELECT * FROM adr_ops._proc_memory(-1);
-- STRICT: NULL in, NULL out.
SELECT * FROM adr_ops._proc_memory(NULL);

--
-- Privileges.
--
-- A pg_monitor member that is not superuser gets every report.  It may not
-- read the column statistics of tables it does not own, so the sequential
-- scan finding says so and suggests no statement.
CREATE ROLE adr_perf_monitor IN ROLE pg_monitor;
SET ROLE adr_perf_monitor;
SELECT count(*) AS lock_waits FROM adr_ops.adr_lock_waits();
SELECT sessions FROM adr_ops.adr_connection_summary() WHERE application_name = 'pg_regress/perf';
SELECT finding, object, statement,
       CASE WHEN finding = 'sequential scans'
            THEN regexp_replace(evidence, '^.*; ', '') END AS evidence_end
  FROM adr_ops.adr_index_advice()
 WHERE table_name LIKE 'perf\_advice.%'
 ORDER BY finding, object;
SELECT relname, kind, hits > 0 AS hit
  FROM adr_ops.adr_cache_stats()
 WHERE schemaname = 'perf_advice' AND relname = 'cached';
SELECT backend_type, rss_bytes > 0 AS has_rss, query <> '<insufficient privilege>' AS sees_query
  FROM adr_ops.adr_backend_memory()
 WHERE backend_type = 'checkpointer' OR pid = pg_backend_pid()
 ORDER BY backend_type;
RESET ROLE;

-- A role allowed to call the reports but without pg_read_all_stats sees
-- the state, type and query of other users' processes hidden, as
-- pg_stat_activity hides them, and their memory all the same.  (This
-- session belongs to the superuser that runs the test, so after SET ROLE
-- it is another user's too.)
SELECT pid AS checkpointer_pid FROM pg_stat_activity WHERE backend_type = 'checkpointer' \gset
CREATE ROLE adr_perf_partial;
GRANT USAGE ON SCHEMA adr_ops TO adr_perf_partial;
GRANT EXECUTE ON FUNCTION adr_ops.adr_backend_memory(), adr_ops._proc_memory(int),
      adr_ops.adr_connection_summary(), adr_ops.adr_lock_waits() TO adr_perf_partial;
SET ROLE adr_perf_partial;
SELECT pid = pg_backend_pid() AS this_session, backend_type, state, query,
       rss_bytes > 0 AS has_rss, anon_bytes > 0 AS has_anon, error
  FROM adr_ops.adr_backend_memory()
 WHERE pid IN (:checkpointer_pid, pg_backend_pid())
 ORDER BY pid = pg_backend_pid();
-- Only its own sessions count as connections: none.
SELECT count(*) AS groups FROM adr_ops.adr_connection_summary();
SELECT count(*) AS lock_waits FROM adr_ops.adr_lock_waits();
RESET ROLE;

-- Anyone else gets nothing: neither the schema
CREATE ROLE adr_perf_stranger;
SET ROLE adr_perf_stranger;
SELECT * FROM adr_ops.adr_index_advice();
RESET ROLE;
-- nor, given the schema, any of the functions.
GRANT USAGE ON SCHEMA adr_ops TO adr_perf_stranger;
SET ROLE adr_perf_stranger;
SELECT * FROM adr_ops.adr_lock_waits();
SELECT * FROM adr_ops.adr_connection_summary();
SELECT * FROM adr_ops.adr_index_advice();
SELECT * FROM adr_ops.adr_cache_stats();
SELECT * FROM adr_ops.adr_backend_memory();
SELECT * FROM adr_ops._proc_memory(pg_backend_pid());
RESET ROLE;

DROP OWNED BY adr_perf_partial, adr_perf_stranger;
DROP ROLE adr_perf_partial;
DROP ROLE adr_perf_stranger;
DROP ROLE adr_perf_monitor;
SET client_min_messages = warning;
DROP SCHEMA perf_advice CASCADE;
RESET client_min_messages;
