
-- backup: backup verification (runbook: Database Backup Verification) ------

-- One row per verification.  The background worker inserts it (status
-- running) and records the outcome; adr_verify_backup() returns it.
CREATE TABLE adr_ops.backup_verifications (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path text NOT NULL,
    format text,
    started_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at timestamptz,
    status text NOT NULL DEFAULT 'running'
        CHECK (status OPERATOR(pg_catalog.=) ANY (ARRAY['running', 'passed', 'failed'])),
    backup_mtime timestamptz,
    backup_bytes bigint,
    tables_restored int,
    rows_counted bigint,
    failures text[] NOT NULL DEFAULT '{}',
    detail text,
    duration_ms bigint,
    requested_by name
);
CREATE INDEX ON adr_ops.backup_verifications (path, id);
COMMENT ON TABLE adr_ops.backup_verifications IS
    'backup verifications: what adr_verify_backup() found, one row each';
GRANT SELECT ON adr_ops.backup_verifications TO pg_monitor;

-- The checks a restored backup must pass.  required = false: checked only
-- when the table is in the backup (the runbook's default, datasets, exists
-- only on the data platform's own databases).
CREATE TABLE adr_ops.backup_checks (
    table_name text PRIMARY KEY,
    min_rows bigint NOT NULL DEFAULT 1 CHECK (min_rows OPERATOR(pg_catalog.>=) 0),
    required boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE adr_ops.backup_checks IS
    'row-count checks of backup verification: table (name or schema.name) and its minimum rows';
INSERT INTO adr_ops.backup_checks (table_name, min_rows, required) VALUES ('datasets', 1, false);
GRANT SELECT ON adr_ops.backup_checks TO pg_monitor;

-- pg_dump keeps the rows; a restored one replaces its default (schema.sql).
CREATE TRIGGER backup_checks_upsert BEFORE INSERT ON adr_ops.backup_checks
    FOR EACH ROW EXECUTE FUNCTION adr_ops._config_upsert('table_name');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.backup_checks', '');

CREATE FUNCTION adr_ops.adr_verify_backup(path text DEFAULT NULL,
                                          max_age interval DEFAULT '1 day',
                                          wait boolean DEFAULT true)
RETURNS adr_ops.backup_verifications
AS 'MODULE_PATHNAME', 'adr_verify_backup'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION adr_ops.adr_verify_backup(text, interval, boolean) IS
    'verifies a backup: recency, format, restore into a scratch database, row counts, checks; NULL path means adr_ops.backup_path';
REVOKE ALL ON FUNCTION adr_ops.adr_verify_backup(text, interval, boolean) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_backup_status()
RETURNS SETOF adr_ops.backup_verifications
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT ON (v.path) v.*
      FROM adr_ops.backup_verifications v
     ORDER BY v.path, v.id DESC
$$;
COMMENT ON FUNCTION adr_ops.adr_backup_status() IS
    'the latest verification of each backup path';
REVOKE ALL ON FUNCTION adr_ops.adr_backup_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_backup_status() TO pg_monitor;

-- The health check's reading: age of the last passed verification;
-- CRITICAL when the latest finished one failed or none passed within
-- adr_ops.backup_max_age.  With no verification at all and no
-- adr_ops.backup_path, there is nothing to judge: OK, and the detail says so.
CREATE FUNCTION adr_ops._check_backup_verification() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH s AS (
        SELECT coalesce(nullif(current_setting('adr_ops.backup_max_age', true), ''), '1d')::interval AS max_age,
               coalesce(current_setting('adr_ops.backup_path', true), '') AS path,
               (SELECT max(v.finished_at) FROM adr_ops.backup_verifications v
                 WHERE v.status = 'passed') AS last_passed,
               (SELECT v FROM adr_ops.backup_verifications v
                 WHERE v.status <> 'running' ORDER BY v.id DESC LIMIT 1) AS latest
    )
    SELECT 'backup_verification',
           round(extract(epoch FROM now() - s.last_passed)::numeric, 0), 's',
           CASE WHEN s.latest IS NULL AND s.path = ''
                THEN 'no backup verification has run and adr_ops.backup_path is not set'
                WHEN s.latest IS NULL
                THEN 'no backup verification has run yet'
                ELSE format('latest: %s %s (%s)%s; last passed %s',
                            (s.latest).path, (s.latest).status,
                            date_trunc('second', (s.latest).finished_at),
                            CASE WHEN (s.latest).status = 'failed'
                                 THEN ': ' || array_to_string((s.latest).failures, '; ') ELSE '' END,
                            coalesce(date_trunc('second', now() - s.last_passed)::text || ' ago', 'never'))
           END,
           NULL,
           CASE WHEN s.latest IS NULL AND s.path = '' THEN NULL
                WHEN (s.latest).status = 'failed' THEN 'CRITICAL'
                WHEN s.last_passed IS NULL OR now() - s.last_passed > s.max_age THEN 'CRITICAL'
           END
      FROM s
$$;
COMMENT ON FUNCTION adr_ops._check_backup_verification() IS
    'API: private. The backup_verification reading of adr_health_check()';
REVOKE ALL ON FUNCTION adr_ops._check_backup_verification() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_backup_verification() TO pg_monitor;
INSERT INTO adr_ops.health_checks (name, position) VALUES ('backup_verification', 140);

-- The verify_backup task (registered by backup.c) runs daily.

INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('verify_backup', '30 4 * * *', 'verify_backup', pg_catalog.current_database());
