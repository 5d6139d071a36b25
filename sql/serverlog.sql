--
-- adr_log_lines(): the server log through SQL.  pg_regress' server writes
-- its log without the logging collector, so the file cannot be found.
--
SELECT * FROM adr_ops.adr_log_lines();
SELECT * FROM adr_ops.adr_log_lines(NULL, NULL);

-- Reading the server log is for pg_read_server_files only.
CREATE ROLE adr_log_reader;
CREATE ROLE adr_nobody;
GRANT USAGE ON SCHEMA adr_ops TO adr_nobody;
GRANT pg_read_server_files TO adr_log_reader;
SET ROLE adr_nobody;
SELECT * FROM adr_ops.adr_log_lines();
RESET ROLE;
-- Even with EXECUTE granted, C checks the role.
GRANT EXECUTE ON FUNCTION adr_ops.adr_log_lines(timestamptz, text[]) TO adr_nobody;
SET ROLE adr_nobody;
SELECT * FROM adr_ops.adr_log_lines();
RESET ROLE;
SET ROLE adr_log_reader;
SELECT * FROM adr_ops.adr_log_lines();
RESET ROLE;

-- The setting that bounds the read is superuser-only.
SET ROLE adr_nobody;
SET adr_ops.log_scan_limit = '1MB';
RESET ROLE;
SET adr_ops.log_scan_limit = '100kB';
SET adr_ops.log_scan_limit = '1MB';
RESET adr_ops.log_scan_limit;

REVOKE EXECUTE ON FUNCTION adr_ops.adr_log_lines(timestamptz, text[]) FROM adr_nobody;
REVOKE USAGE ON SCHEMA adr_ops FROM adr_nobody;
DROP ROLE adr_log_reader;
DROP ROLE adr_nobody;
