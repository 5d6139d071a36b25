--
-- Backup verification: the API's shape, its errors and its privileges.
-- Restores of real backups are tested in t/050_verify_backup.pl.
--
SET client_min_messages = warning;
UPDATE adr_ops.schedules SET enabled = false;

-- The row type adr_verify_backup() returns.
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute
 WHERE attrelid = 'adr_ops.backup_verifications'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;
SELECT pg_get_function_arguments('adr_ops.adr_verify_backup'::regproc),
       pg_get_function_result('adr_ops.adr_verify_backup'::regproc);

-- The runbook's check, kept by pg_dump.
SELECT * FROM adr_ops.backup_checks ORDER BY table_name;
SELECT 'adr_ops.backup_checks'::regclass = ANY (extconfig) AS dumped
  FROM pg_extension WHERE extname = 'adr_ops';
-- A restored row replaces the default of its table.
INSERT INTO adr_ops.backup_checks VALUES ('datasets', 10, true);
SELECT * FROM adr_ops.backup_checks ORDER BY table_name;
UPDATE adr_ops.backup_checks SET min_rows = 1, required = false;
INSERT INTO adr_ops.backup_checks VALUES ('x', -1);

-- Settings.
SHOW adr_ops.backup_max_age;
SHOW adr_ops.verify_jobs;
SHOW adr_ops.backup_directories;

-- A missing file fails with its reason; it is recorded.
SELECT status, format, failures, tables_restored, finished_at >= started_at AS finished
  FROM adr_ops.adr_verify_backup('/nonexistent/adr_ops/backup.dump');
SELECT path, status FROM adr_ops.adr_backup_status();
-- A glob that matches nothing is verified as given, and is missing.
SELECT status, failures FROM adr_ops.adr_verify_backup('/nonexistent/adr_ops/*.dump', NULL);
-- wait => false returns the running row at once.
SELECT status IN ('running', 'failed') AS started
  FROM adr_ops.adr_verify_backup('/nonexistent/adr_ops/later.dump', wait => false);

-- Errors.
SELECT adr_ops.adr_verify_backup(NULL);
SELECT adr_ops.adr_verify_backup('relative/backup.dump');
SELECT adr_ops.adr_verify_backup('/' || repeat('x', 1100));
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT adr_ops.adr_verify_backup('/nonexistent/adr_ops/backup.dump');
ROLLBACK;
SET adr_ops.backup_directories = '"unterminated';
SELECT adr_ops.adr_verify_backup('/nonexistent/adr_ops/backup.dump');
RESET adr_ops.backup_directories;
SET adr_ops.verify_jobs = 0;

-- Privileges: EXECUTE is revoked from PUBLIC; with EXECUTE, the caller
-- still needs both pg_read_server_files and pg_execute_server_program,
-- and a non-superuser is confined to adr_ops.backup_directories.
CREATE ROLE adr_backup_nobody;
CREATE ROLE adr_backup_half;
CREATE ROLE adr_backup_reader;
GRANT pg_read_server_files TO adr_backup_half;
GRANT pg_read_server_files, pg_execute_server_program TO adr_backup_reader;
GRANT USAGE ON SCHEMA adr_ops TO adr_backup_nobody, adr_backup_half, adr_backup_reader;
SET ROLE adr_backup_nobody;
SELECT adr_ops.adr_verify_backup('/nonexistent/adr_ops/backup.dump');
SELECT count(*) FROM adr_ops.adr_backup_status();
RESET ROLE;
GRANT EXECUTE ON FUNCTION adr_ops.adr_verify_backup(text, interval, boolean)
    TO adr_backup_nobody, adr_backup_half, adr_backup_reader;
SET ROLE adr_backup_nobody;
SELECT adr_ops.adr_verify_backup('/nonexistent/adr_ops/backup.dump');
SET ROLE adr_backup_half;
SELECT adr_ops.adr_verify_backup('/nonexistent/adr_ops/backup.dump');
SET ROLE adr_backup_reader;
SELECT adr_ops.adr_verify_backup('/nonexistent/adr_ops/backup.dump');
SET adr_ops.backup_directories = '/tmp';
RESET ROLE;
SET adr_ops.backup_directories = '/nonexistent/adr_ops';
SET ROLE adr_backup_reader;
SELECT adr_ops.adr_verify_backup('/tmp/backup.dump');
-- '..' out of an allowed directory that exists (the open refuses it)
RESET ROLE;
SET adr_ops.backup_directories = '/tmp';
SET ROLE adr_backup_reader;
SELECT adr_ops.adr_verify_backup('/tmp/../etc/passwd');
RESET ROLE;
RESET adr_ops.backup_directories;
SET ROLE pg_monitor;
SELECT count(*) >= 1 AS monitor_reads FROM adr_ops.adr_backup_status();
RESET ROLE;

REVOKE ALL ON FUNCTION adr_ops.adr_verify_backup(text, interval, boolean)
    FROM adr_backup_nobody, adr_backup_half, adr_backup_reader;
REVOKE USAGE ON SCHEMA adr_ops FROM adr_backup_nobody, adr_backup_half, adr_backup_reader;
DROP ROLE adr_backup_nobody, adr_backup_half, adr_backup_reader;
DELETE FROM adr_ops.backup_verifications;
