--
-- Slow query log and execution plans: the SQL surface.  The log itself is
-- read in t/018_plans.pl (the regress server has no logging collector).
--
\set SHOW_CONTEXT never

-- The fingerprint: node types, relations, indexes, join order; not costs,
-- row counts or filter constants.
SELECT adr_ops.adr_plan_fingerprint('{"Plan": {"Node Type": "Seq Scan", "Relation Name": "t", "Filter": "(a = 1)", "Plan Rows": 5, "Total Cost": 10}}')
     = adr_ops.adr_plan_fingerprint('{"Plan": {"Node Type": "Seq Scan", "Relation Name": "t", "Filter": "(a = 2)", "Plan Rows": 500, "Total Cost": 99}}')
       AS same_shape_same_fingerprint;
SELECT adr_ops.adr_plan_fingerprint('{"Plan": {"Node Type": "Seq Scan", "Relation Name": "t"}}')
    <> adr_ops.adr_plan_fingerprint('{"Plan": {"Node Type": "Index Scan", "Relation Name": "t", "Index Name": "t_a"}}')
       AS index_changes_it;
SELECT adr_ops._plan_shape('{"Node Type": "Hash Join", "Join Type": "Inner", "Plans": [{"Node Type": "Seq Scan", "Relation Name": "a"}, {"Node Type": "Hash", "Plans": [{"Node Type": "Seq Scan", "Relation Name": "b"}]}]}')
       AS join_order;

-- Findings with their evidence.
SELECT * FROM adr_ops.adr_plan_findings('{"Plan": {"Node Type": "Seq Scan", "Relation Name": "orders", "Schema": "public",
    "Filter": "(customer = 42)", "Plan Rows": 10, "Actual Rows": 3, "Actual Loops": 1, "Rows Removed by Filter": 99997}}');
SELECT * FROM adr_ops.adr_plan_findings('{"Plan": {"Node Type": "Index Scan", "Relation Name": "orders", "Index Name": "orders_state",
    "Plan Rows": 1, "Actual Rows": 50000, "Actual Loops": 1}}');
SELECT finding, evidence FROM adr_ops.adr_plan_findings('{"Plan": {"Node Type": "Sort", "Sort Method": "external merge", "Sort Space Used": 2048,
    "Sort Space Type": "Disk", "Plan Rows": 100, "Actual Rows": 100, "Actual Loops": 1}}');
SELECT finding, node, evidence FROM adr_ops.adr_plan_findings('{"Plan": {"Node Type": "Nested Loop", "Join Type": "Inner", "Plan Rows": 20000, "Actual Rows": 20000, "Actual Loops": 1,
    "Plans": [{"Node Type": "Seq Scan", "Relation Name": "a", "Plan Rows": 20000, "Actual Rows": 20000, "Actual Loops": 1},
              {"Node Type": "Index Scan", "Relation Name": "b", "Index Name": "b_pkey", "Plan Rows": 1, "Actual Rows": 1, "Actual Loops": 20000}]}}');
SELECT count(*) AS nothing_to_say FROM adr_ops.adr_plan_findings('{"Plan": {"Node Type": "Result", "Plan Rows": 1, "Actual Rows": 1, "Actual Loops": 1}}');

-- adr_explain(): read-only statements only, by parsing first.
CREATE TABLE plan_t (id integer PRIMARY KEY, v text);
INSERT INTO plan_t SELECT g, 'v' || g FROM generate_series(1, 1000) g;
ANALYZE plan_t;
SELECT * FROM adr_ops.adr_explain('DELETE FROM plan_t');
SELECT * FROM adr_ops.adr_explain('SELECT 1; DELETE FROM plan_t');
SELECT * FROM adr_ops.adr_explain('WITH d AS (DELETE FROM plan_t RETURNING *) SELECT * FROM d');
SELECT * FROM adr_ops.adr_explain('SELECT * FROM plan_t FOR UPDATE');
SELECT * FROM adr_ops.adr_explain('SELECT * INTO plan_copy FROM plan_t');
-- A function that writes, called by a SELECT: the read-only transaction stops it.
CREATE FUNCTION plan_writer() RETURNS integer LANGUAGE sql AS 'DELETE FROM plan_t RETURNING 1';
SELECT * FROM adr_ops.adr_explain('SELECT plan_writer()');
SELECT count(*) AS rows_kept FROM plan_t;
-- The timeout.
SELECT * FROM adr_ops.adr_explain('SELECT pg_sleep(5)', timeout => '100 ms');
SHOW transaction_read_only;

-- A real plan with parameters, stored.
SELECT id IS NOT NULL AS stored, duration_ms >= 0 AS timed,
       plan -> 'Plan' ->> 'Node Type' AS node, plan -> 'Plan' ->> 'Index Name' AS index,
       plan ? 'Execution Time' AS analyzed, plan -> 'Plan' ? 'Shared Hit Blocks' AS buffers
  FROM adr_ops.adr_explain('SELECT v FROM plan_t WHERE id = $1', '{42}');
SELECT source, database = current_database() AS db_ok, plan -> 'Plan' ->> 'Node Type' AS node
  FROM adr_ops.query_plans;
-- The caller's own rights: a role without SELECT on the table is refused.
CREATE ROLE plan_nobody;
GRANT USAGE ON SCHEMA adr_ops TO plan_nobody;
GRANT EXECUTE ON FUNCTION adr_ops.adr_explain(text, text[], interval), adr_ops._plan_store(jsonb) TO plan_nobody;
SET ROLE plan_nobody;
SELECT * FROM adr_ops.adr_explain('SELECT * FROM plan_t');
-- The log's texts are not for it either.
SELECT * FROM adr_ops.adr_slow_log();
SELECT count(*) FROM adr_ops.query_plans;
RESET ROLE;

-- Plan changes from stored plans (no snapshots: the plans' durations).
INSERT INTO adr_ops.query_plans (queryid, fingerprint, duration_ms, plan, source, logged_at)
SELECT 4242, adr_ops.adr_plan_fingerprint(p), d, p, 'auto_explain', now() - a
  FROM (VALUES ('{"Plan": {"Node Type": "Index Scan", "Relation Name": "t", "Index Name": "t_a"}}'::jsonb, 1.0, interval '3 hours'),
               ('{"Plan": {"Node Type": "Index Scan", "Relation Name": "t", "Index Name": "t_a"}}'::jsonb, 1.2, interval '2 hours'),
               ('{"Plan": {"Node Type": "Seq Scan", "Relation Name": "t"}}'::jsonb, 90.0, interval '1 hour'),
               ('{"Plan": {"Node Type": "Seq Scan", "Relation Name": "t"}}'::jsonb, 110.0, interval '10 minutes')) v(p, d, a);
SELECT count(*) AS plans, min(source) AS source FROM adr_ops.adr_query_plans(4242);
SELECT (SELECT array_agg(duration_ms) FROM adr_ops.adr_query_plans(4242)) AS newest_first;
SELECT queryid, changed_at = (SELECT max(logged_at) FROM adr_ops.query_plans WHERE duration_ms = 90) AS changed_ok,
       mean_ms_before, mean_ms_after, slower,
       old_plan -> 'Plan' ->> 'Node Type' AS old_node, new_plan -> 'Plan' ->> 'Node Type' AS new_node
  FROM adr_ops.adr_plan_changes(now() - interval '1 day');
SELECT count(*) AS before_window FROM adr_ops.adr_plan_changes(now() - interval '30 minutes');
-- Faster after the change: shown only when asked for every change.
UPDATE adr_ops.query_plans SET duration_ms = 0.5 WHERE queryid = 4242 AND plan -> 'Plan' ->> 'Node Type' = 'Seq Scan';
SELECT count(*) AS only_slower FROM adr_ops.adr_plan_changes(now() - interval '1 day');
SELECT slower FROM adr_ops.adr_plan_changes(now() - interval '1 day', only_slower => false);

DROP FUNCTION plan_writer();
DROP TABLE plan_t;
DELETE FROM adr_ops.query_plans;
REVOKE ALL ON SCHEMA adr_ops FROM plan_nobody;
REVOKE ALL ON FUNCTION adr_ops.adr_explain(text, text[], interval), adr_ops._plan_store(jsonb) FROM plan_nobody;
DROP ROLE plan_nobody;
