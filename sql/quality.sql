--
-- Data-quality checks: every kind passing and failing, the samples, the
-- errors, the owner's privileges, the time budget, the sample's error
-- bound, the trend, the health rows and alerts, dataset validation and the
-- job gate.
--
\set SHOW_CONTEXT never
CREATE SCHEMA qt;
CREATE TABLE qt.orders (
    id integer,
    customer text,
    amount numeric,
    status text,
    email text,
    code text,
    created_at timestamptz
);
INSERT INTO qt.orders
SELECT i, 'c' || (i % 5), i * 10,
       CASE WHEN i = 7 THEN 'lost' ELSE 'paid' END,
       CASE WHEN i IN (3, 4) THEN NULL WHEN i = 9 THEN 'not-an-email' ELSE 'u' || i || '@x.org' END,
       CASE WHEN i = 2 THEN 'TOOLONGCODE' ELSE 'AB' || i END,
       now() - interval '1 minute'
  FROM generate_series(1, 20) i;
INSERT INTO qt.orders VALUES (20, 'c9', -5, 'paid', 'dup@x.org', 'AB20', now());   -- id 20 twice, amount < 0
CREATE TABLE qt.customers (name text);
INSERT INTO qt.customers SELECT 'c' || i FROM generate_series(0, 4) i;
CREATE TABLE qt.old_customers AS SELECT * FROM qt.customers;
INSERT INTO qt.customers VALUES ('c9');
-- A table whose name and column need quoting.
CREATE TABLE qt."we;ird""tab" ("co""l; DROP TABLE qt.orders; --" integer);
INSERT INTO qt."we;ird""tab" VALUES (1), (NULL);

-- One check of each kind that passes, and one that fails.
SELECT adr_ops.adr_quality_check_add('rows_ok', 'qt.orders', 'row_count', '{"min": 10, "max": 100}');
SELECT adr_ops.adr_quality_check_add('rows_bad', 'qt.orders', 'row_count', '{"min": 1000}');
SELECT adr_ops.adr_quality_check_add('fresh_ok', 'qt.orders', 'freshness', '{"column": "created_at", "max_age": "1 hour"}');
SELECT adr_ops.adr_quality_check_add('fresh_bad', 'qt.orders', 'freshness', '{"column": "created_at", "max_age": "-1 hour"}');
SELECT adr_ops.adr_quality_check_add('fresh_writes', 'qt.orders', 'freshness', '{"max_age": "1 day"}');
SELECT adr_ops.adr_quality_check_add('nulls_ok', 'qt.orders', 'null_fraction', '{"column": "id"}');
SELECT adr_ops.adr_quality_check_add('nulls_bad', 'qt.orders', 'null_fraction', '{"column": "email"}', warn => 0.05, crit => 0.5);
SELECT adr_ops.adr_quality_check_add('distinct_ok', 'qt.orders', 'distinct_count', '{"column": "customer", "min": 5}');
SELECT adr_ops.adr_quality_check_add('distinct_bad', 'qt.orders', 'distinct_count', '{"columns": ["customer", "status"], "max": 3}');
SELECT adr_ops.adr_quality_check_add('dup_ok', 'qt.orders', 'duplicate_count', '{"columns": ["id", "created_at"]}');
SELECT adr_ops.adr_quality_check_add('dup_bad', 'qt.orders', 'duplicate_count', '{"column": "id"}');
SELECT adr_ops.adr_quality_check_add('values_ok', 'qt.orders', 'accepted_values', '{"column": "customer", "values": ["c0","c1","c2","c3","c4","c9"]}');
SELECT adr_ops.adr_quality_check_add('values_bad', 'qt.orders', 'accepted_values', '{"column": "status", "values": ["paid", "refunded"]}');
SELECT adr_ops.adr_quality_check_add('range_ok', 'qt.orders', 'range', '{"column": "id", "min": 1, "max": 20}');
SELECT adr_ops.adr_quality_check_add('range_bad', 'qt.orders', 'range', '{"column": "amount", "min": 0}');
SELECT adr_ops.adr_quality_check_add('range_dates', 'qt.orders', 'range', '{"column": "created_at", "min": "2000-01-01", "max": "2999-01-01"}');
SELECT adr_ops.adr_quality_check_add('length_ok', 'qt.orders', 'length', '{"column": "customer", "max": 3}');
SELECT adr_ops.adr_quality_check_add('length_bad', 'qt.orders', 'length', '{"column": "code", "min": 3, "max": 5}');
SELECT adr_ops.adr_quality_check_add('regex_ok', 'qt.orders', 'regex', '{"column": "code", "pattern": "^[A-Z0-9]+$"}');
SELECT adr_ops.adr_quality_check_add('regex_bad', 'qt.orders', 'regex', '{"column": "email", "pattern": "^[^@]+@[^@]+$"}');
SELECT adr_ops.adr_quality_check_add('orphans_ok', 'qt.orders', 'referential', '{"column": "customer", "references": "qt.customers", "referenced_columns": ["name"]}');
SELECT adr_ops.adr_quality_check_add('schema_drift', 'qt.orders', 'schema');
SELECT adr_ops.adr_quality_check_add('custom_ok', NULL, 'custom', '{"sql": "SELECT count(*) FROM qt.orders WHERE amount > 0", "min": 1}');
SELECT adr_ops.adr_quality_check_add('custom_bad', NULL, 'custom', '{"sql": "SELECT 42", "max": 10}');
SELECT adr_ops.adr_quality_check_add('weird', 'qt."we;ird""tab"', 'null_fraction', '{"column": "co\"l; DROP TABLE qt.orders; --"}', crit => 0.9);
SELECT adr_ops.adr_quality_check_add('orphans_bad', 'qt.orders', 'referential', '{"columns": ["customer"], "references": "qt.old_customers", "referenced_columns": ["name"]}');
ALTER TABLE qt.orders ADD COLUMN extra integer;   -- schema drift

SELECT check_name, status, round(metric::numeric, 4) AS metric, detail
  FROM adr_ops.adr_quality_run()
 WHERE check_name NOT LIKE 'fresh%'
 ORDER BY check_name;
SELECT check_name, status FROM adr_ops.quality_results
 WHERE check_name LIKE 'fresh%' ORDER BY check_name;

-- Samples of failing rows: the check's columns only, at most 5 rows.
SELECT check_name, sample FROM adr_ops.quality_results
 WHERE sample IS NOT NULL ORDER BY check_name;
-- The table survived its name.
SELECT count(*) FROM qt.orders;
-- One scan per relation and owner: the row kinds on qt.orders share a duration.
SELECT count(DISTINCT duration_ms) AS scans FROM adr_ops.quality_results r
  JOIN adr_ops.quality_checks c ON c.id = r.check_id
 WHERE c.relation = 'qt.orders'::regclass
   AND c.kind IN ('row_count', 'null_fraction', 'range', 'length', 'regex', 'accepted_values', 'distinct_count', 'duplicate_count');

-- Errors.
SELECT adr_ops.adr_quality_check_add('x', 'qt.orders', 'mystery');
SELECT adr_ops.adr_quality_check_add(NULL, 'qt.orders', 'row_count');
SELECT adr_ops.adr_quality_check_add('rows_ok', 'qt.orders', 'row_count');
SELECT adr_ops.adr_quality_check_add('x', NULL, 'row_count');
SELECT adr_ops.adr_quality_check_add('x', 'qt.orders', 'null_fraction');
SELECT adr_ops.adr_quality_check_add('x', 'qt.orders', 'null_fraction', '{"column": "nope"}');
SELECT adr_ops.adr_quality_check_add('x', 'qt.orders', 'accepted_values', '{"column": "status"}');
SELECT adr_ops.adr_quality_check_add('x', 'qt.orders', 'range', '{"column": "amount"}');
SELECT adr_ops.adr_quality_check_add('x', 'qt.orders', 'range', '{"column": "amount", "min": "ten"}');
SELECT adr_ops.adr_quality_check_add('x', 'qt.orders', 'regex', '{"column": "code", "pattern": "("}');
SELECT adr_ops.adr_quality_check_add('x', 'qt.orders', 'freshness', '{}');
SELECT adr_ops.adr_quality_check_add('x', 'qt.orders', 'freshness', '{"column": "email", "max_age": "1 day"}');
SELECT adr_ops.adr_quality_check_add('x', 'qt.orders', 'referential', '{"column": "customer", "references": "qt.nope"}');
SELECT adr_ops.adr_quality_check_add('x', 'qt.orders', 'row_count', '{"sample_percent": 0}');
SELECT adr_ops.adr_quality_check_add('x', NULL, 'custom', '{}');
SELECT adr_ops.adr_quality_check_add('x', 'qt.orders', 'row_count', '[]');
SELECT adr_ops.adr_quality_check_add('x', 'pg_class_oid_index', 'row_count');

-- The sample's error bound: a 100% block sample reads every row and says
-- what it would mean.
SELECT adr_ops.adr_quality_check_add('sampled', 'qt.orders', 'null_fraction', '{"column": "email", "sample_percent": 100}', crit => 0.5);
SELECT check_name, status FROM adr_ops.adr_quality_run(checks => '{sampled}');
SELECT check_name, status, round(metric::numeric, 4) AS metric, rows_scanned, sample_percent,
       round(error_bound::numeric, 4) AS error_bound, detail
  FROM adr_ops.quality_results WHERE check_name = 'sampled';

-- A query failing on the data is recorded by its SQLSTATE: a message could
-- quote a value.
SELECT adr_ops.adr_quality_check_add('div0', NULL, 'custom', '{"sql": "SELECT 1 / (SELECT count(*) FROM qt.orders WHERE email = ''secret'')"}');
SELECT check_name, status, detail FROM adr_ops.adr_quality_run(checks => '{div0}');
SELECT adr_ops.adr_quality_check_drop('div0');

-- The time budget of one relation's scan.
CREATE VIEW qt.slow AS SELECT pg_sleep(0.5)::text AS s FROM generate_series(1, 3);
SELECT adr_ops.adr_quality_check_add('slow', 'qt.slow', 'row_count');
SELECT check_name, status, detail FROM adr_ops.adr_quality_run(checks => '{slow}', timeout => '100ms');
SELECT adr_ops.adr_quality_check_drop('slow');

-- A renamed relation is followed; a dropped one says so.
CREATE TABLE qt.temp_t (a integer);
SELECT adr_ops.adr_quality_check_add('renamed', 'qt.temp_t', 'row_count', '{"max": 0}');
ALTER TABLE qt.temp_t RENAME TO temp_u;
SELECT check_name, status, detail FROM adr_ops.adr_quality_run(checks => '{renamed}');
DROP TABLE qt.temp_u;
SELECT check_name, status, detail FROM adr_ops.adr_quality_run(checks => '{renamed}');
SELECT adr_ops.adr_quality_check_drop('renamed'), adr_ops.adr_quality_check_drop('renamed');

-- A renamed or dropped column makes its check UNKNOWN, and the run goes on
-- with the other checks (its owner may rename the columns of her table).
CREATE TABLE qt.col_t (a integer, b integer);
SELECT adr_ops.adr_quality_check_add('col_gone', 'qt.col_t', 'null_fraction', '{"column": "a"}');
SELECT adr_ops.adr_quality_check_add('col_kept', 'qt.col_t', 'null_fraction', '{"column": "b"}');
ALTER TABLE qt.col_t RENAME COLUMN a TO c;
SELECT check_name, status, detail FROM adr_ops.adr_quality_run(checks => '{col_gone,col_kept}') ORDER BY 1;
ALTER TABLE qt.col_t DROP COLUMN c;
SELECT check_name, status, detail FROM adr_ops.adr_quality_run(checks => '{col_gone}');
SELECT adr_ops.adr_quality_check_drop('col_gone'), adr_ops.adr_quality_check_drop('col_kept');
DROP TABLE qt.col_t;

-- min and max of the kinds judged against them must be numbers: a word
-- there would stop every later run at the judging of this check.
SELECT adr_ops.adr_quality_check_add('bad_min', 'qt.orders', 'row_count', '{"min": "many"}');
SELECT adr_ops.adr_quality_check_add('bad_max', 'qt.orders', 'distinct_count', '{"column": "id", "max": "lots"}');
SELECT count(*) FROM adr_ops.quality_checks WHERE name IN ('bad_min', 'bad_max');

-- A freshness check without a column keeps its write counter in detail; an
-- anomaly found on it appends to that detail, which the next run still reads.
SELECT adr_ops.adr_quality_check_add('fresh_an', 'qt.orders', 'freshness', '{"max_age": "1 day", "anomaly": "up"}') > 0 AS added;
INSERT INTO adr_ops.quality_results (check_id, check_name, status, metric, detail)
SELECT id, name, 'OK', 0, '{"writes": 0}; anomaly: 0, expected about 0 (score 9)'
  FROM adr_ops.quality_checks WHERE name = 'fresh_an';
SELECT check_name, status FROM adr_ops.adr_quality_run(checks => '{fresh_an}');
SELECT adr_ops.adr_quality_check_drop('fresh_an');

-- Privileges: a check runs as the role that created it.
CREATE ROLE qt_alice;
CREATE ROLE qt_bob;
GRANT USAGE ON SCHEMA qt, adr_ops TO qt_alice, qt_bob;
GRANT SELECT (id, customer) ON qt.orders TO qt_bob;
CREATE VIEW qt.whoami AS SELECT current_user::text AS u;
GRANT SELECT ON qt.whoami TO qt_bob;
GRANT EXECUTE ON FUNCTION adr_ops.adr_quality_check_add(text, regclass, text, jsonb, double precision, double precision, text, boolean, boolean),
                          adr_ops.adr_quality_check_drop(text),
                          adr_ops.adr_dataset_validate(text, interval) TO qt_alice, qt_bob;
SET ROLE qt_alice;
SELECT adr_ops.adr_quality_check_add('alice_orders', 'qt.orders', 'row_count');
SELECT adr_ops.adr_quality_check_add('alice_custom', NULL, 'custom', '{"sql": "SELECT 1"}');
SELECT adr_ops.adr_quality_check_drop('rows_ok');
SELECT * FROM adr_ops.quality_results LIMIT 1;
SET ROLE qt_bob;
SELECT adr_ops.adr_quality_check_add('bob_email', 'qt.orders', 'null_fraction', '{"column": "email"}');
SELECT adr_ops.adr_quality_check_add('bob_ids', 'qt.orders', 'duplicate_count', '{"column": "id"}', dataset => 'bob') > 0 AS added;
SELECT adr_ops.adr_quality_check_add('bob_whoami', 'qt.whoami', 'accepted_values', '{"column": "u", "values": ["qt_bob"]}', dataset => 'bob') > 0 AS added;
-- bob sees his samples; the verdict lists his failing check
SELECT verdict, checks, failing, failures FROM adr_ops.adr_dataset_validate('bob');
RESET ROLE;
SELECT name, owner FROM adr_ops.quality_checks WHERE name LIKE 'bob%' ORDER BY name;
-- bob loses his privilege: his check says so, and runs as nobody else
REVOKE SELECT (id, customer) ON qt.orders FROM qt_bob;
SELECT check_name, status, detail FROM adr_ops.adr_quality_run(dataset => 'bob');
-- a superuser sees bob's samples through validation only if she may act as bob
GRANT SELECT (id, customer) ON qt.orders TO qt_bob;
SELECT verdict, failures -> 0 -> 'sample' AS sample FROM adr_ops.adr_dataset_validate('bob');
SET ROLE qt_alice;
SELECT verdict, failures -> 0 -> 'sample' AS sample FROM adr_ops.adr_dataset_validate('bob');
RESET ROLE;
-- custom check whose owner is no longer a superuser
CREATE ROLE qt_admin SUPERUSER;
SET ROLE qt_admin;
SELECT adr_ops.adr_quality_check_add('admin_custom', NULL, 'custom', '{"sql": "SELECT 1"}') > 0 AS added;
RESET ROLE;
ALTER ROLE qt_admin NOSUPERUSER;
SELECT check_name, status, detail FROM adr_ops.adr_quality_run(checks => '{admin_custom}');
SELECT adr_ops.adr_quality_check_drop('admin_custom');

-- Trend: per check and day, with the direction against the day before.
INSERT INTO adr_ops.quality_results (check_id, check_name, ran_at, status, metric, source)
SELECT c.id, 'trend_demo', now() - make_interval(days => d) , s, m, 'test'
  FROM adr_ops.quality_checks c,
       (VALUES (2, 'OK', 10.0), (2, 'OK', 20.0), (1, 'CRITICAL', 50.0), (1, 'WARNING', 40.0), (0, 'OK', 5.0)) v(d, s, m)
 WHERE c.name = 'rows_ok';
SELECT current_date - day AS days_ago, runs, passes, warnings, failures, metric_min, metric_avg, metric_max, direction
  FROM adr_ops.adr_quality_trend(days => 7) WHERE check_name = 'trend_demo' ORDER BY day;
SELECT count(*) FROM adr_ops.adr_quality_trend(days => 1) WHERE check_name = 'trend_demo';
DELETE FROM adr_ops.quality_results WHERE check_name = 'trend_demo';

-- Anomaly detection on a check's own history: a metric far from its usual
-- values is a WARNING even within its levels; too short a history says
-- nothing.
SELECT adr_ops.adr_quality_check_add('x', 'qt.orders', 'row_count', '{"anomaly": "sideways"}');
SELECT adr_ops.adr_quality_check_add('spiky', 'qt.orders', 'row_count', '{"anomaly": "both", "min": 1}') > 0 AS added;
SELECT check_name, status, detail FROM adr_ops.adr_quality_run(checks => '{spiky}');
INSERT INTO adr_ops.quality_results (check_id, check_name, ran_at, status, metric, source)
SELECT c.id, c.name, now() - make_interval(hours => 30 - i), 'OK', 200 + (i % 3), 'test'
  FROM adr_ops.quality_checks c, generate_series(1, 20) i WHERE c.name = 'spiky';
SELECT check_name, status, detail LIKE '%anomaly: 21, expected about 201%' AS anomaly
  FROM adr_ops.adr_quality_run(checks => '{spiky}');
SELECT adr_ops.adr_quality_check_drop('spiky');

-- Health rows for the failing checks, and an alert per status change.
SELECT check_name, status FROM adr_ops.adr_health_check()
 WHERE check_name LIKE 'quality%' AND check_name NOT LIKE 'quality:fresh%' ORDER BY check_name;
SELECT check_name, from_status, to_status FROM adr_ops.alerts
 WHERE check_name IN ('quality:rows_bad', 'quality:nulls_ok', 'quality:renamed')
 ORDER BY id;

-- The gate: completing a job runs its pipeline's blocking checks.
DELETE FROM adr_ops.quality_checks WHERE name NOT LIKE 'bob%';
CREATE TABLE qt.loaded (id integer, v text);
INSERT INTO qt.loaded VALUES (1, 'a'), (2, NULL);
SELECT adr_ops.adr_quality_check_add('loaded_v', 'qt.loaded', 'null_fraction', '{"column": "v"}',
                                     dataset => 'etl', blocking => true) > 0 AS added;
SELECT adr_ops.adr_quality_check_add('loaded_rows', 'qt.loaded', 'row_count', '{"min": 1}',
                                     dataset => 'etl', blocking => true) > 0 AS added;
SELECT adr_ops.adr_quality_check_add('loaded_ids', 'qt.loaded', 'duplicate_count', '{"column": "id"}',
                                     dataset => 'etl', warn => 0, crit => 10) > 0 AS added;
SELECT adr_ops.adr_job_submit('etl') AS job \gset
SELECT id = :job AS claimed FROM adr_ops.adr_job_claim('etl', 'w1');
SELECT adr_ops.adr_job_checkpoint(:job, 'load', '{"rows": 2}');
SELECT status, last_error FROM adr_ops.adr_job_complete(:job);
SELECT to_status, note, detail FROM adr_ops.job_events WHERE job_id = :job ORDER BY id;
SELECT verdict, checks, failing, jsonb_path_query_array(failures, '$[*].check') FROM adr_ops.adr_dataset_validate('etl');
-- fixed: restart from the checkpoint, and the gate lets it through
UPDATE qt.loaded SET v = 'b' WHERE id = 2;
SELECT status FROM adr_ops.adr_job_restart(:job);
SELECT resume_stage FROM adr_ops.adr_job_claim('etl', 'w1');
SELECT status, last_error FROM adr_ops.adr_job_complete(:job);
SELECT to_status, note, detail -> 'quality_gate' AS gate FROM adr_ops.job_events WHERE job_id = :job ORDER BY id;
SELECT verdict, checks, failing FROM adr_ops.adr_dataset_validate('etl');
SELECT verdict, checks, failing FROM adr_ops.adr_dataset_validate('nothing');
-- a pipeline without blocking checks completes as before
SELECT adr_ops.adr_job_submit('plain') AS job2 \gset
SELECT id = :job2 AS claimed FROM adr_ops.adr_job_claim('plain', 'w1');
SELECT status FROM adr_ops.adr_job_complete(:job2);
SELECT source, job_id = :job AS this_job, count(*) FROM adr_ops.quality_results
 WHERE source = 'gate' GROUP BY 1, 2;

-- The scheduler task.
SELECT task, writes, heavy, options FROM adr_ops.adr_tasks() WHERE task = 'quality_check';
SELECT name, schedule, task FROM adr_ops.schedules WHERE name = 'quality_check';

-- A length check counts characters, not bytes, whatever the encoding: its
-- byte-count shortcut (octet_length before length) fails the same rows as
-- length() alone, on text and varchar, with multibyte characters.
CREATE TABLE qt.lens (s text, v varchar(10));
INSERT INTO qt.lens
SELECT x, x
  FROM unnest(ARRAY['', 'a', 'ab', 'abcd', 'abcdefgh', 'xyzzyx', NULL]) x
 UNION ALL
SELECT x, x  -- e with an acute accent: 2 bytes in UTF8
  FROM (SELECT repeat(convert_from('\xc3a9', 'UTF8'), n) FROM generate_series(1, 4) n
         UNION ALL SELECT 'a' || convert_from('\xc3a9', 'UTF8')) e(x);
SELECT count(adr_ops.adr_quality_check_add(n, 'qt.lens', 'length', jsonb_build_object('column', col, 'min', 2, 'max', 3)))
  FROM (VALUES ('len_text', 's'), ('len_varchar', 'v')) x(n, col);
SELECT r.check_name, r.metric = (SELECT count(*) FILTER (WHERE length(s) < 2 OR length(s) > 3)::float8 / count(*)
                                   FROM qt.lens) AS same_as_length,
       r.metric > 0 AS fails
  FROM adr_ops.adr_quality_run(checks => '{len_text,len_varchar}') r ORDER BY 1;
-- Both fail on fewer than 20 rows: their samples come from one more scan
-- for the two, at most 5 failing rows each.
SELECT check_name, jsonb_array_length(sample) AS sampled,
       (SELECT bool_and(length(coalesce(e ->> 's', e ->> 'v')) NOT BETWEEN 2 AND 3)
          FROM jsonb_array_elements(sample) e) AS all_failing
  FROM adr_ops.quality_results WHERE check_name LIKE 'len\_%' ORDER BY 1;

DELETE FROM adr_ops.quality_checks;
DELETE FROM adr_ops.processing_jobs WHERE pipeline IN ('etl', 'plain');
DELETE FROM adr_ops.alerts WHERE check_name LIKE 'quality%';
DROP SCHEMA qt CASCADE;
REVOKE ALL ON FUNCTION adr_ops.adr_quality_check_add(text, regclass, text, jsonb, double precision, double precision, text, boolean, boolean),
                       adr_ops.adr_quality_check_drop(text),
                       adr_ops.adr_dataset_validate(text, interval) FROM qt_alice, qt_bob;
REVOKE USAGE ON SCHEMA adr_ops FROM qt_alice, qt_bob;
DROP ROLE qt_alice, qt_bob, qt_admin;

-- adr_anomalies() reads the quality source: a row_count check's metric is its table's row count;
-- a load that brought a tenth of the usual rows is flagged.
CREATE TABLE anomaly_rows (id integer);
SELECT adr_ops.adr_quality_check_add('anomaly_rows_count', 'anomaly_rows', 'row_count', '{"min": 0}') > 0 AS added;
SET session_replication_role = replica;
INSERT INTO adr_ops.quality_results (check_id, check_name, ran_at, status, metric, source)
SELECT c.id, c.name, now() - make_interval(hours => 30 - i), 'OK',
       CASE WHEN i = 30 THEN 100 ELSE 1000 + i % 7 END, 'run'
  FROM adr_ops.quality_checks c, generate_series(1, 30) i
 WHERE c.name = 'anomaly_rows_count';
RESET session_replication_role;
SELECT source, series, value, verdict, round(score::numeric, 1) AS score, expected, history
  FROM adr_ops.adr_anomalies(days => 2, direction => 'down')
 WHERE source = 'quality';
SELECT adr_ops.adr_quality_check_drop('anomaly_rows_count');
DROP TABLE anomaly_rows;

-- Code of an ordinary role that a superuser's ANALYZE runs (an index
-- expression, run as its owner) is not the superuser calling: it cannot
-- define a check, least of all a custom one owned by the superuser.
CREATE ROLE qt_trap;
CREATE SCHEMA qt_trap AUTHORIZATION qt_trap;
GRANT USAGE ON SCHEMA adr_ops TO qt_trap;
GRANT EXECUTE ON FUNCTION adr_ops.adr_quality_check_add(text, regclass, text, jsonb, double precision,
                                                        double precision, text, boolean, boolean) TO qt_trap;
SET ROLE qt_trap;
CREATE FUNCTION qt_trap.f(integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
    PERFORM adr_ops.adr_quality_check_add('trojan', NULL, 'custom', '{"sql": "SELECT 1"}');
    RETURN $1;
EXCEPTION WHEN OTHERS THEN
    RETURN $1;
END
$f$;
CREATE TABLE qt_trap.t (a integer);
INSERT INTO qt_trap.t VALUES (1), (2);
CREATE INDEX ON qt_trap.t (qt_trap.f(a));
RESET ROLE;
ANALYZE qt_trap.t;
SELECT name, owner FROM adr_ops.quality_checks WHERE name = 'trojan';
DELETE FROM adr_ops.quality_checks WHERE name = 'trojan';
DROP SCHEMA qt_trap CASCADE;
REVOKE ALL ON FUNCTION adr_ops.adr_quality_check_add(text, regclass, text, jsonb, double precision,
                                                     double precision, text, boolean, boolean) FROM qt_trap;
REVOKE USAGE ON SCHEMA adr_ops FROM qt_trap;
DROP ROLE qt_trap;
