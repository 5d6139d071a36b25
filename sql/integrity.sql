--
-- Integrity: adr_verify_integrity() without and with amcheck, its argument
-- errors and who may call it, amcheck bound by membership only, the task's
-- options and default schedule, and the data_integrity health row on a
-- clean database.  Corruption on disk, checksum failures and the rotation
-- are t/019_integrity.pl.
--
\set VERBOSITY terse
UPDATE adr_ops.schedules SET enabled = false;
SELECT name, schedule, task FROM adr_ops.schedules WHERE task = 'integrity_check';
SELECT task, writes, heavy, options FROM adr_ops.adr_tasks() WHERE task = 'integrity_check';

CREATE TABLE adr_integrity_t (id integer PRIMARY KEY, v text);
INSERT INTO adr_integrity_t SELECT i, repeat('x', i % 50) FROM generate_series(1, 500) i;
CREATE INDEX adr_integrity_t_v ON adr_integrity_t (v);

-- Without amcheck: said so, with the fix; the health row says so too.
SELECT * FROM adr_ops.adr_verify_integrity('adr_integrity_t');
\set VERBOSITY default
SELECT * FROM adr_ops.adr_verify_integrity('adr_integrity_t');
\set VERBOSITY terse
SELECT status, value, detail ~ 'amcheck is not installed' AS says_so,
       detail ~ '^data checksums are (on|off)' AS checksums
  FROM adr_ops.adr_health_check() WHERE check_name = 'data_integrity';

CREATE EXTENSION amcheck;

-- Argument errors.
SELECT * FROM adr_ops.adr_verify_integrity(NULL);
SELECT * FROM adr_ops.adr_verify_integrity('adr_integrity_t', NULL);
CREATE VIEW adr_integrity_view AS SELECT 1 AS x;
SELECT * FROM adr_ops.adr_verify_integrity('adr_integrity_view');
CREATE TABLE adr_integrity_parted (k integer) PARTITION BY RANGE (k);
SELECT * FROM adr_ops.adr_verify_integrity('adr_integrity_parted');
CREATE INDEX adr_integrity_hash ON adr_integrity_t USING hash (id);
SELECT * FROM adr_ops.adr_verify_integrity('adr_integrity_hash');
CREATE TEMP TABLE adr_integrity_temp (x integer);
SELECT * FROM adr_ops.adr_verify_integrity('adr_integrity_temp');
SELECT * FROM adr_ops.adr_verify_integrity(0);

-- A clean table: the table, its TOAST table, its btree indexes and its
-- TOAST index, all OK, stored.
SELECT regexp_replace(relation, '[0-9]+', 'N') AS relation, kind, status, findings, blkno, heapallindexed, detail, pages >= 0 AS sized
  FROM adr_ops.adr_verify_integrity('adr_integrity_t', true)
 ORDER BY kind DESC, relation ~ 'pg_toast', relation;
SELECT relation, kind, status FROM adr_ops.adr_verify_integrity('adr_integrity_t_pkey');
SELECT count(*) AS stored FROM adr_ops.integrity_results WHERE relation ~ 'adr_integrity_t';
SELECT status, value, detail ~ '[0-9]+ of [0-9]+ relations verified' AS coverage
  FROM adr_ops.adr_health_check() WHERE check_name = 'data_integrity';

-- Many corrupt relations: the row names the first 10, then how many more.
INSERT INTO adr_ops.integrity_results
       (verified_at, relid, relation, kind, pages, heapallindexed, duration, status, findings, blkno, detail)
SELECT now() + interval '1 hour', c.oid, 'x.r' || lpad((row_number() OVER (ORDER BY c.oid))::text, 2, '0'),
       'table', 1, false, '0', 'corrupt', 1, 0, 'fake'
  FROM pg_class c WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r'
 ORDER BY c.oid LIMIT 12;
SELECT status, value,
       detail ~ 'corruption found in 12 relations: x\.r01 block 0: fake; (x\.r[0-9]+ block 0: fake; ){8}x\.r10 block 0: fake; and 2 more' AS first_ten,
       detail !~ 'x\.r1[12]' AS not_the_rest
  FROM adr_ops.adr_health_check() WHERE check_name = 'data_integrity';
DELETE FROM adr_ops.integrity_results WHERE detail = 'fake';

-- A function outside amcheck that shares a name with one of its functions,
-- in its schema: adr_ops calls neither.
CREATE FUNCTION public.bt_index_check(text) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT * FROM adr_ops.adr_verify_integrity('adr_integrity_t_pkey');
DROP FUNCTION public.bt_index_check(text);

-- Who may call it: nobody but superusers, unless granted.
CREATE ROLE adr_integrity_nobody;
GRANT pg_monitor TO adr_integrity_nobody;
SET ROLE adr_integrity_nobody;
SELECT * FROM adr_ops.adr_verify_integrity('adr_integrity_t');
SELECT check_name, status FROM adr_ops.adr_health_check() WHERE check_name = 'data_integrity';
SELECT count(*) > 0 AS reads_results FROM adr_ops.integrity_results;
RESET ROLE;

-- The task's options.
SELECT adr_ops.adr_schedule('integrity x', '@daily', 'integrity_check', options => '{"heapallindexed": 1}');
SELECT adr_ops.adr_schedule('integrity x', '@daily', 'integrity_check', options => '{"time_budget": "soon"}');
SELECT adr_ops.adr_schedule('integrity x', '@daily', 'integrity_check', options => '{"budget": "1h"}');
SELECT adr_ops.adr_schedule('integrity x', '@daily', 'integrity_check',
                            options => '{"time_budget": "1h", "heapallindexed": true, "tables": ["adr_integrity_t"]}') > 0 AS scheduled;
SELECT adr_ops.adr_unschedule('integrity x');

DROP ROLE adr_integrity_nobody;
DROP TABLE adr_integrity_t, adr_integrity_parted;
DROP VIEW adr_integrity_view;
DROP EXTENSION amcheck;
