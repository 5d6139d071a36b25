
-- serverlog: entries of the current server log ------------------------------

CREATE FUNCTION adr_ops.adr_log_lines(
    since timestamptz DEFAULT pg_catalog.now() OPERATOR(pg_catalog.-) '1 hour'::pg_catalog.interval,
    severities text[] DEFAULT '{ERROR,FATAL,PANIC}',
    OUT log_time timestamptz, OUT severity text, OUT message text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'adr_log_lines'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops.adr_log_lines(timestamptz, text[]) IS
    'entries of the current server log since a time, of the given severities (stderr, csvlog or jsonlog)';
-- It reads a server file: C checks pg_read_server_files as well.
REVOKE ALL ON FUNCTION adr_ops.adr_log_lines(timestamptz, text[]) FROM PUBLIC;
GRANT USAGE ON SCHEMA adr_ops TO pg_read_server_files;
GRANT EXECUTE ON FUNCTION adr_ops.adr_log_lines(timestamptz, text[]) TO pg_read_server_files;
