--
-- Bloat report: the API, the three modes on a table with real bloat, the
-- cases that give NULL figures with a reason, privileges and errors.
-- Sizes and figures depend on the build, so ranges print.  The comparison
-- with pgstattuple, a locked relation and other sessions' temporary
-- tables are in t/040_bloat.pl.
--
\set SHOW_CONTEXT never

-- The functions and what they return.
SELECT p.oid::regprocedure AS function, pg_get_function_result(p.oid) AS returns,
       p.provolatile, p.proisstrict
  FROM pg_proc p
 WHERE p.pronamespace = 'adr_ops'::regnamespace AND p.proname LIKE '%bloat%'
 ORDER BY p.proname;
SHOW adr_ops.bloat_sample_pages;

-- 20,000 rows of about 140 bytes, a btree of each kind the estimate cannot
-- read, a hash index; vacuumed and analyzed: no bloat anywhere.
CREATE TABLE bloat_t (id int PRIMARY KEY, grp int, v text) WITH (autovacuum_enabled = off);
INSERT INTO bloat_t SELECT g, g % 7, repeat('x', 100) FROM generate_series(1, 20000) g;
CREATE INDEX bloat_t_grp ON bloat_t (grp);
CREATE INDEX bloat_t_expr ON bloat_t (lower(v));
CREATE INDEX bloat_t_part ON bloat_t (id) WHERE id > 100;
CREATE INDEX bloat_t_hash ON bloat_t USING hash (id);
CREATE INDEX bloat_t_ff ON bloat_t (id, grp) WITH (fillfactor = 70);
-- (the insert's counts must reach the statistics before ANALYZE resets them)
SELECT pg_stat_force_next_flush();
VACUUM ANALYZE bloat_t;

SELECT CASE kind WHEN 'toast' THEN 'TOAST of ' || table_name ELSE relname END AS rel,
       kind, table_name, total_bytes > 0 AS has_size, method,
       bloat_pct < 3 AS no_bloat, dead_pct, free_pct IS NULL AS free_unknown,
       error_pct, suggestion
  FROM adr_ops.adr_bloat_report(0, 'estimate', 'public')
 ORDER BY rel;
SELECT CASE kind WHEN 'toast' THEN 'TOAST of ' || table_name ELSE relname END AS rel,
       kind, method, bloat_pct < 3 AS no_bloat, dead_pct,
       free_pct < 5 AS little_free, error_pct, suggestion
  FROM adr_ops.adr_bloat_report(0, 'exact', 'public')
 ORDER BY relname;
-- The sample covers every page of relations this small: no error.
SELECT CASE kind WHEN 'toast' THEN 'TOAST of ' || table_name ELSE relname END AS rel,
       method, bloat_pct < 3 AS no_bloat, error_pct, suggestion
  FROM adr_ops.adr_bloat_report(0, 'sample', 'p%')
 ORDER BY rel;
-- The size is read from the file without the relation's cache entry:
-- the same as pg_relation_size() for tables, indexes, TOAST, mapped and
-- shared catalogs; NULL for what has no file.
SELECT s.rel, s.same
  FROM (SELECT CASE WHEN c.relkind = 't' THEN 'TOAST of bloat_t' ELSE c.relname::text END AS rel,
               adr_ops._bloat_size(c.oid) = pg_relation_size(c.oid) AS same
          FROM pg_class c
         WHERE c.oid IN ('bloat_t'::regclass, 'bloat_t_pkey'::regclass, 'pg_class'::regclass,
                         'pg_authid'::regclass, 'pg_database'::regclass, 'pg_class_oid_index'::regclass,
                         (SELECT reltoastrelid FROM pg_class WHERE relname = 'bloat_t'))) s
 ORDER BY s.rel COLLATE "C";
SELECT adr_ops._bloat_size('pg_stats'::regclass) AS view_size;
-- min_bytes leaves out the small ones; an unknown schema gives nothing.
SELECT count(*) FROM adr_ops.adr_bloat_report(10 * 1024 * 1024, 'exact', 'public');
SELECT count(*) FROM adr_ops.adr_bloat_report(0, 'estimate', 'no_such_schema');

-- Delete 30% of the rows: dead tuples, VACUUM is due.
DELETE FROM bloat_t WHERE id % 10 < 3;
SELECT pg_stat_force_next_flush();
SELECT method, bloat_pct BETWEEN 27 AND 34 AS bloat_30, dead_pct BETWEEN 27 AND 34 AS dead_30,
       free_pct < 5 AS little_free, error_pct, suggestion
  FROM adr_ops.adr_bloat('bloat_t', 'exact');
-- A sample of 100 pages of the 300: an error bound, and the truth inside it.
SET adr_ops.bloat_sample_pages = 100;
SELECT method, bloat_pct BETWEEN 27 - error_pct AND 34 + error_pct AS bloat_30,
       error_pct > 0 AND error_pct < 5 AS bounded, suggestion
  FROM adr_ops.adr_bloat('bloat_t');
RESET adr_ops.bloat_sample_pages;
-- The estimate counts the live rows from the statistics collector (which
-- saw the delete), their widths from ANALYZE.
SELECT method, bloat_pct BETWEEN 25 AND 35 AS bloat_30, dead_pct > 20 AS dead, suggestion
  FROM adr_ops.adr_bloat('bloat_t', 'estimate');

-- VACUUM turns the dead tuples into free space that inserts will reuse.
VACUUM bloat_t;
SELECT method, bloat_pct BETWEEN 27 AND 34 AS bloat_30, dead_pct, free_pct BETWEEN 27 AND 34 AS free_30,
       suggestion
  FROM adr_ops.adr_bloat('bloat_t', 'exact');
-- Every page is all-visible now: the sample reads none, the free space map
-- tells, within its rounding.
SELECT method, bloat_pct BETWEEN 27 - error_pct AND 34 + error_pct AS bloat_30,
       error_pct > 0 AND error_pct < 1 AS fsm_rounding, suggestion
  FROM adr_ops.adr_bloat('bloat_t', 'sample');
-- Deleting 80% leaves a table mostly empty: a rewrite.
DELETE FROM bloat_t WHERE id % 10 < 8;
SELECT pg_stat_force_next_flush();
VACUUM ANALYZE bloat_t;
SELECT method, bloat_pct > 70 AS mostly_free, suggestion FROM adr_ops.adr_bloat('bloat_t', 'exact');
-- ... and an index with most of its leaves empty: REINDEX.
SELECT relname, method, bloat_pct > 50 AS bloated, suggestion
  FROM adr_ops.adr_bloat_report(0, 'exact', 'public')
 WHERE kind = 'index' ORDER BY relname;

-- Page reads stop at adr_ops.bloat_report_timeout, largest relation first:
-- the relations not reached are listed, with no figures.
SHOW adr_ops.bloat_report_timeout;
SET adr_ops.bloat_report_timeout = '1ms';
SELECT count(*) FILTER (WHERE method = 'skipped: adr_ops.bloat_report_timeout reached') > 0 AS some_skipped,
       bool_and(bloat_pct IS NULL AND bloat_bytes IS NULL AND total_bytes IS NOT NULL)
           FILTER (WHERE method LIKE 'skipped%') AS skipped_without_figures,
       count(*) = (SELECT count(*) FROM adr_ops.adr_bloat_report(0, 'estimate', 'public')) AS all_listed
  FROM adr_ops.adr_bloat_report(0, 'exact', 'public');
RESET adr_ops.bloat_report_timeout;
SELECT count(*) FILTER (WHERE method LIKE 'skipped%') AS skipped
  FROM adr_ops.adr_bloat_report(0, 'exact', 'public');

-- Every row rewritten since ANALYZE: the widths it measured may no longer
-- hold.
CREATE TABLE bloat_stale (id int, v text) WITH (autovacuum_enabled = off);
INSERT INTO bloat_stale SELECT g, 'x' FROM generate_series(1, 5000) g;
SELECT pg_stat_force_next_flush();
ANALYZE bloat_stale;
UPDATE bloat_stale SET v = repeat('y', 500);
SELECT pg_stat_force_next_flush();
SELECT method, bloat_pct, suggestion FROM adr_ops.adr_bloat('bloat_stale', 'estimate');
-- Vacuumed but never analyzed: no statistics, the better reason than
-- stale ones (every row counts as modified since an ANALYZE that never was).
CREATE TABLE bloat_unanalyzed (id int, v text) WITH (autovacuum_enabled = off);
INSERT INTO bloat_unanalyzed SELECT g, 'x' FROM generate_series(1, 5000) g;
SELECT pg_stat_force_next_flush();
VACUUM bloat_unanalyzed;
SELECT method, bloat_pct FROM adr_ops.adr_bloat('bloat_unanalyzed', 'estimate');

-- Other kinds: empty, TOAST, materialized view, partitioned, temporary.
CREATE TABLE bloat_empty (a int);
SELECT relname, total_bytes, bloat_bytes, method, suggestion FROM adr_ops.adr_bloat('bloat_empty', 'exact');
SELECT relname, method FROM adr_ops.adr_bloat('bloat_empty', 'estimate');
-- Vacuumed (reltuples known) but never analyzed: no widths.
INSERT INTO bloat_empty SELECT generate_series(1, 1000);
VACUUM bloat_empty;
SELECT relname, method, bloat_pct FROM adr_ops.adr_bloat('bloat_empty', 'estimate');
CREATE TABLE bloat_wide (id int, doc text);
INSERT INTO bloat_wide SELECT g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 200) i)
  FROM generate_series(1, 200) g;
SELECT kind, table_name, method, bloat_pct IS NOT NULL AS measured
  FROM adr_ops.adr_bloat((SELECT reltoastrelid::regclass FROM pg_class WHERE relname = 'bloat_wide'), 'exact');
SELECT kind, method, bloat_pct
  FROM adr_ops.adr_bloat((SELECT reltoastrelid::regclass FROM pg_class WHERE relname = 'bloat_wide'), 'estimate');
CREATE MATERIALIZED VIEW bloat_mv AS SELECT * FROM generate_series(1, 1000) g;
SELECT kind, method, bloat_pct IS NOT NULL AS measured FROM adr_ops.adr_bloat('bloat_mv', 'exact');
CREATE TABLE bloat_parted (id int) PARTITION BY RANGE (id);
CREATE TABLE bloat_part1 PARTITION OF bloat_parted FOR VALUES FROM (0) TO (1000);
INSERT INTO bloat_parted SELECT generate_series(0, 999);
SELECT relname, kind, total_bytes, bloat_pct, method, suggestion FROM adr_ops.adr_bloat('bloat_parted');
CREATE INDEX ON bloat_parted (id);
SELECT relname, kind, method FROM adr_ops.adr_bloat('bloat_parted_id_idx');
SELECT relname, kind, method FROM adr_ops.adr_bloat_report(0, 'exact', 'public')
 WHERE relname LIKE 'bloat_part%' ORDER BY relname;
CREATE TEMP TABLE bloat_tmp AS SELECT generate_series(1, 1000) AS g;
SELECT kind, method, bloat_pct IS NOT NULL AS measured FROM adr_ops.adr_bloat('bloat_tmp', 'exact');
-- An index left invalid by a failed CREATE INDEX CONCURRENTLY: its build
-- writes outside shared buffers, so no mode reads it.  (t/040_bloat.pl has
-- one still being built.)
CREATE TABLE bloat_dup (a int);
INSERT INTO bloat_dup SELECT g % 500 FROM generate_series(1, 5000) g;
CREATE UNIQUE INDEX CONCURRENTLY bloat_dup_a ON bloat_dup (a);
SELECT indisready, indisvalid FROM pg_index WHERE indexrelid = 'bloat_dup_a'::regclass;
SELECT mode, b.method, b.bloat_pct, b.suggestion
  FROM unnest(ARRAY['estimate', 'sample', 'exact']) mode,
       LATERAL adr_ops.adr_bloat('bloat_dup_a', mode) b;

-- Keys wider than a tenth of a page in a btree at fillfactor 10: less
-- than one entry fits the fill, a leaf takes one; estimated, no division
-- by zero.
CREATE TABLE bloat_widekey (k text);
INSERT INTO bloat_widekey
SELECT string_agg(md5(g::text || '/' || i::text), '') FROM generate_series(1, 200) g, generate_series(1, 30) i GROUP BY g;
CREATE UNIQUE INDEX bloat_widekey_k ON bloat_widekey (k) WITH (fillfactor = 10);
SELECT pg_stat_force_next_flush();
ANALYZE bloat_widekey;
SELECT avg_width > 900 AS wide FROM pg_stats WHERE tablename = 'bloat_widekey';
SELECT method, bloat_pct < 5 AS no_bloat, suggestion FROM adr_ops.adr_bloat('bloat_widekey_k', 'estimate');

-- Errors: a bad mode, a NULL mode, a missing relation, what has no pages.
SELECT * FROM adr_ops.adr_bloat('bloat_t', 'fast');
SELECT * FROM adr_ops.adr_bloat('bloat_t', NULL);
SELECT * FROM adr_ops.adr_bloat_report(0, 'EXACT');
SELECT * FROM adr_ops.adr_bloat('no_such_table');
SELECT * FROM adr_ops.adr_bloat(4294967295::oid::regclass);
SELECT * FROM adr_ops.adr_bloat(NULL);
-- The row of a relation that is gone: the error, unless missing_ok (what
-- the report passes, for relations dropped while it runs: t/040_bloat.pl).
SELECT * FROM adr_ops._bloat_row(4294967295::oid, 'estimate', 0);
SELECT relname, method, suggestion FROM adr_ops._bloat_row(4294967295::oid, 'sample', 0, true);
SELECT count(*) FROM adr_ops.adr_bloat_report(NULL, 'exact', 'no_such_schema');
CREATE VIEW bloat_view AS SELECT 1 AS one;
SELECT * FROM adr_ops.adr_bloat('bloat_view');
CREATE SEQUENCE bloat_seq;
SELECT * FROM adr_ops.adr_bloat('bloat_seq', 'estimate');
-- The page reader checks the kind again (the SQL above checked first).
SELECT * FROM adr_ops._bloat_scan('bloat_seq'::regclass, true, 0);

-- The estimate's cost does not grow with the number of other relations:
-- the catalog rows it reads (tuples returned by scans of the catalogs
-- and their indexes, from this transaction's statistics counters) for
-- one table and one index are the same with 10 and with 300 tables
-- beside them; the report's grow by a bounded number per relation.
CREATE FUNCTION pg_temp.catalog_rows_read(sql text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    cats oid[] := ARRAY(SELECT c.oid FROM pg_class c
                         WHERE c.relnamespace = 'pg_catalog'::regnamespace
                           AND c.relkind IN ('r', 'i'));
    before bigint;
BEGIN
    EXECUTE sql;   -- warm the caches first
    SELECT sum(pg_stat_get_xact_tuples_returned(o) + pg_stat_get_xact_tuples_fetched(o))
      INTO before FROM unnest(cats) o;
    EXECUTE sql;
    RETURN (SELECT sum(pg_stat_get_xact_tuples_returned(o) + pg_stat_get_xact_tuples_fetched(o))
              FROM unnest(cats) o) - before;
END $$;
CREATE SCHEMA bloat_many;
CREATE FUNCTION pg_temp.make_tables(n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN (SELECT count(*) + 1 FROM pg_class WHERE relnamespace = 'bloat_many'::regnamespace AND relkind = 'r') .. n LOOP
        EXECUTE format('CREATE TABLE bloat_many.m_%s (id int PRIMARY KEY, v text, n int)', i);
        EXECUTE format('CREATE INDEX ON bloat_many.m_%s (n)', i);
        EXECUTE format('INSERT INTO bloat_many.m_%s SELECT g, md5(g::text), g %% 7 FROM generate_series(1, 50) g', i);
        EXECUTE format('ANALYZE bloat_many.m_%s', i);
    END LOOP;
END $$;
SELECT pg_temp.make_tables(10);
CREATE TEMP TABLE bloat_reads AS
SELECT 10 AS tables,
       pg_temp.catalog_rows_read($$SELECT adr_ops.adr_bloat('bloat_many.m_1', 'estimate')$$) AS one_table,
       pg_temp.catalog_rows_read($$SELECT adr_ops.adr_bloat('bloat_many.m_1_pkey', 'estimate')$$) AS one_index,
       pg_temp.catalog_rows_read($$SELECT count(*) FROM adr_ops.adr_bloat_report(0, 'estimate', 'bloat_many')$$) AS report,
       (SELECT count(*) FROM adr_ops.adr_bloat_report(0, 'estimate', 'bloat_many')) AS report_rows;
SELECT pg_temp.make_tables(300);
INSERT INTO bloat_reads
SELECT 300,
       pg_temp.catalog_rows_read($$SELECT adr_ops.adr_bloat('bloat_many.m_1', 'estimate')$$),
       pg_temp.catalog_rows_read($$SELECT adr_ops.adr_bloat('bloat_many.m_1_pkey', 'estimate')$$),
       pg_temp.catalog_rows_read($$SELECT count(*) FROM adr_ops.adr_bloat_report(0, 'estimate', 'bloat_many')$$),
       (SELECT count(*) FROM adr_ops.adr_bloat_report(0, 'estimate', 'bloat_many'));
-- Without the 10 first warm-up calls' noise: at most 20 rows more.
SELECT a.one_table < 500 AS few, b.one_table <= a.one_table + 20 AS table_bounded,
       b.one_index <= a.one_index + 20 AS index_bounded,
       (b.report - a.report) / (b.report_rows - a.report_rows) < 500 AS report_linear,
       a.report_rows, b.report_rows
  FROM bloat_reads a, bloat_reads b WHERE a.tables = 10 AND b.tables = 300;
SET client_min_messages = warning;
DROP SCHEMA bloat_many CASCADE;
RESET client_min_messages;

-- Privileges.  PUBLIC may not call the report.
CREATE ROLE bloat_nobody;
SET ROLE bloat_nobody;
SELECT * FROM adr_ops.adr_bloat_report();
RESET ROLE;
-- A pg_monitor member has pg_stat_scan_tables: every mode, but the
-- estimate only for columns it may read.
CREATE ROLE bloat_monitor IN ROLE pg_monitor;
SET ROLE bloat_monitor;
SELECT method, bloat_pct > 70 AS mostly_free FROM adr_ops.adr_bloat('bloat_t', 'sample');
SELECT method, bloat_pct FROM adr_ops.adr_bloat('bloat_t', 'estimate');
RESET ROLE;
-- Someone given EXECUTE but not pg_stat_scan_tables: the estimate only.
CREATE ROLE bloat_reader;
GRANT USAGE ON SCHEMA adr_ops TO bloat_reader;
GRANT EXECUTE ON FUNCTION adr_ops.adr_bloat(regclass, text), adr_ops._bloat_row(oid, text, bigint, bool),
      adr_ops._bloat_scan(oid, bool, bigint), adr_ops._bloat_estimate(oid),
      adr_ops._bloat_estimates(oid[], bigint[]), adr_ops._bloat_estimate_calc(bool, "char", name, "char", int4,
          float4, text[], bigint, bool, bool, bool, bool, bool, bool, bool, float4, bigint, bigint,
          bigint, bool, int, int2[], "char"[], int4[], float4[], float4[]),
      adr_ops._bloat_size(oid) TO bloat_reader;
GRANT SELECT ON bloat_t TO bloat_reader;
SET ROLE bloat_reader;
SELECT method, bloat_pct > 70 AS mostly_free FROM adr_ops.adr_bloat('bloat_t', 'estimate');
SELECT * FROM adr_ops.adr_bloat('bloat_t', 'exact');
RESET ROLE;
REVOKE ALL ON FUNCTION adr_ops.adr_bloat(regclass, text), adr_ops._bloat_row(oid, text, bigint, bool),
      adr_ops._bloat_scan(oid, bool, bigint), adr_ops._bloat_estimate(oid),
      adr_ops._bloat_estimates(oid[], bigint[]), adr_ops._bloat_estimate_calc(bool, "char", name, "char", int4,
          float4, text[], bigint, bool, bool, bool, bool, bool, bool, bool, float4, bigint, bigint,
          bigint, bool, int, int2[], "char"[], int4[], float4[], float4[]),
      adr_ops._bloat_size(oid) FROM bloat_reader;
REVOKE ALL ON SCHEMA adr_ops FROM bloat_reader;
REVOKE ALL ON bloat_t FROM bloat_reader;
DROP ROLE bloat_nobody, bloat_monitor, bloat_reader;

DROP TABLE bloat_t, bloat_stale, bloat_unanalyzed, bloat_empty, bloat_wide, bloat_parted, bloat_tmp, bloat_dup, bloat_widekey;
DROP MATERIALIZED VIEW bloat_mv;
DROP VIEW bloat_view;
DROP SEQUENCE bloat_seq;
