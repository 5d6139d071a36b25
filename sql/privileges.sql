--
-- Privileges: reports for pg_monitor, nothing for PUBLIC, and checks that
-- a caller cannot make are UNKNOWN, never a silent OK.
--

-- No function of the extension is executable by PUBLIC.
SELECT p.oid::regprocedure AS executable_by_public
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'adr_ops'
 WHERE has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY 1;

-- Every function pins search_path, with pg_temp last; SECURITY DEFINER
-- ones above all.
SELECT p.oid::regprocedure AS unpinned, p.prosecdef
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'adr_ops'
 WHERE (p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c') OR p.prosecdef)
   AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c
                    WHERE c ~ '^search_path=.*pg_temp$')
 ORDER BY 1;

-- Who may do what.
SELECT p.oid::regprocedure AS function,
       has_function_privilege('pg_monitor', p.oid, 'EXECUTE') AS pg_monitor,
       has_function_privilege('pg_read_server_files', p.oid, 'EXECUTE') AS pg_read_server_files
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'adr_ops'
 WHERE p.proname NOT LIKE '\_%'
 ORDER BY 1;
SELECT c.oid::regclass AS table_name,
       has_table_privilege('pg_monitor', c.oid, 'SELECT') AS monitor_reads,
       has_table_privilege('pg_monitor', c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE') AS monitor_writes,
       has_table_privilege('public', c.oid, 'SELECT') AS public_reads
  FROM pg_class c
 WHERE c.relnamespace = 'adr_ops'::regnamespace AND c.relkind = 'r'
 ORDER BY 1;

-- A pg_monitor member gets the report.  It cannot read the server log, so
-- recent_errors is UNKNOWN and says why.
CREATE ROLE adr_monitor LOGIN IN ROLE pg_monitor;
SET ROLE adr_monitor;
SELECT check_name, status, detail
  FROM adr_ops.adr_health_check()
 WHERE status = 'UNKNOWN'
 ORDER BY check_name;
SELECT count(*) >= 0 AS reads_history FROM adr_ops.health_history;
-- but may neither store snapshots nor change thresholds.
SELECT adr_ops.adr_health_snapshot();
UPDATE adr_ops.health_thresholds SET warn = 1;
RESET ROLE;

-- A role that may call the report but lacks pg_read_all_stats: the checks
-- of other sessions are UNKNOWN instead of reading 0.
CREATE ROLE adr_partial;
GRANT USAGE ON SCHEMA adr_ops TO adr_partial;
GRANT SELECT ON adr_ops.health_thresholds, adr_ops.health_checks TO adr_partial;
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_proc p
              WHERE p.pronamespace = 'adr_ops'::regnamespace
                AND (p.proname LIKE '\_check\_%' OR p.proname IN ('adr_health_check', '_health_stats_unknown', 'adr_host_disk', 'adr_host_memory', 'adr_host_load', 'adr_version', '_count_of', '_maintenance_age', '_checkpoint_counts'))
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO adr_partial', f);
    END LOOP;
END $$;
SET ROLE adr_partial;
SELECT check_name, status, value, detail
  FROM adr_ops.adr_health_check()
 WHERE status = 'UNKNOWN'
 ORDER BY check_name;
RESET ROLE;

-- Anyone else gets nothing.
CREATE ROLE adr_stranger;
SET ROLE adr_stranger;
SELECT * FROM adr_ops.adr_health_check();
SELECT * FROM adr_ops.adr_host_disk();
SELECT * FROM adr_ops.health_thresholds;
RESET ROLE;

DROP OWNED BY adr_partial;
DROP ROLE adr_partial;
DROP ROLE adr_stranger;
DROP ROLE adr_monitor;
