-- adr_ops 1.0 -> 1.1.  Every SQL change made since 1.0 is here as well as in
-- src/*.sql (which build the full 1.1 script); t/013_upgrade.pl proves that
-- an installation updated through this script equals a fresh one.
\echo Use "ALTER EXTENSION adr_ops UPDATE TO '1.1'" to load this file. \quit

-- Health checks are registered in a table instead of a list inside
-- adr_health_check(), and a new check reports the library's version
-- against the SQL objects' (src/health.sql).
-- The checks adr_health_check() runs, in report order.  A row names the
-- function adr_ops._check_<name>() that returns the check's readings; each
-- concern registers its own checks beside their functions, so adding one
-- touches no other file.  Members of the extension, not configuration.
CREATE TABLE adr_ops.health_checks (
    name text PRIMARY KEY,
    position integer NOT NULL UNIQUE
);
COMMENT ON TABLE adr_ops.health_checks IS
    'the checks adr_health_check() runs, in report order: each names a function adr_ops._check_<name>()';
GRANT SELECT ON adr_ops.health_checks TO pg_monitor;
INSERT INTO adr_ops.health_checks (name, position) VALUES
    ('connections', 10), ('disk', 20), ('memory', 30), ('load', 40),
    ('long_transactions', 50), ('idle_in_transaction', 60), ('blocked_sessions', 70),
    ('xid_wraparound', 80), ('replication', 90), ('cache_hit_ratio', 100),
    ('recent_errors', 110), ('probes', 120), ('maintenance_mode', 130),
    ('backup_verification', 140), ('extension_version', 150);

-- The library a server runs and the SQL objects of this database come from
-- separate steps of an upgrade (a package upgrade and a restart, then ALTER
-- EXTENSION adr_ops UPDATE in each database): WARNING while they differ.
CREATE FUNCTION adr_ops._check_extension_version() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'extension_version', NULL::numeric, NULL::text,
           CASE WHEN l.version = e.extversion
                THEN format('library and SQL objects are version %s', l.version)
                ELSE format('the library is version %s but the SQL objects of database %I are version %s: run ALTER EXTENSION adr_ops UPDATE in it',
                            l.version, current_database(), e.extversion) END,
           NULL::text,
           CASE WHEN l.version <> e.extversion THEN 'WARNING' END
      FROM pg_extension e,
           (SELECT v.version FROM adr_ops.adr_version() v WHERE v.component = 'adr_ops') l
     WHERE e.extname = 'adr_ops'
$$;

REVOKE ALL ON FUNCTION adr_ops._check_extension_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_extension_version() TO pg_monitor;

CREATE OR REPLACE FUNCTION adr_ops.adr_health_check(
    OUT check_name text, OUT status text, OUT value numeric, OUT unit text,
    OUT warn numeric, OUT crit numeric, OUT detail text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c text;
    msg text;
    msg_detail text;
    msg_hint text;
    part adr_ops._health_reading[];
    readings adr_ops._health_reading[] := '{}';
BEGIN
    FOR c IN SELECT hc.name FROM adr_ops.health_checks hc ORDER BY hc.position LOOP
        BEGIN
            EXECUTE format('SELECT array_agg(r) FROM adr_ops.%I() r', '_check_' || c) INTO part;
            readings := readings || coalesce(part, '{}');
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, msg_detail = PG_EXCEPTION_DETAIL,
                                    msg_hint = PG_EXCEPTION_HINT;
            readings := readings || ROW(c, NULL, NULL, NULL,
                                        concat_ws(' ', msg || '.', nullif(msg_detail, ''),
                                                  nullif(msg_hint, '')), NULL)::adr_ops._health_reading;
        END;
    END LOOP;

    RETURN QUERY
    WITH judged AS (
        SELECT r.*, t.warn, t.crit,
               CASE WHEN r.unknown IS NOT NULL THEN 'UNKNOWN'
                    WHEN r.value IS NULL OR t.warn IS NULL THEN 'OK'
                    WHEN t.warn > t.crit THEN
                         CASE WHEN r.value < t.crit THEN 'CRITICAL'
                              WHEN r.value < t.warn THEN 'WARNING' ELSE 'OK' END
                    ELSE CASE WHEN r.value > t.crit THEN 'CRITICAL'
                              WHEN r.value > t.warn THEN 'WARNING' ELSE 'OK' END
               END AS judged
          FROM unnest(readings) WITH ORDINALITY AS r
          -- a row for the object ("disk_tablespace:fast") wins over the
          -- row for its kind ("disk_tablespace")
          LEFT JOIN LATERAL (
                SELECT h.warn, h.crit FROM adr_ops.health_thresholds h
                 WHERE h.check_name IN (r.check_name, split_part(r.check_name, ':', 1))
                 ORDER BY h.check_name = r.check_name DESC LIMIT 1) t ON true
    )
    SELECT j.check_name,
           CASE WHEN j.at_least = 'CRITICAL' OR j.judged = 'CRITICAL' THEN 'CRITICAL'
                WHEN j.at_least = 'WARNING' AND j.judged = 'OK' THEN 'WARNING'
                ELSE j.judged END,
           CASE WHEN j.unknown IS NULL THEN j.value END,
           j.unit, j.warn, j.crit,
           coalesce(j.unknown, j.detail)
      FROM judged j
     ORDER BY j.ordinality;
END
$$;

-- adr_version() also reports the version of the SQL objects (src/info.sql).
COMMENT ON FUNCTION adr_ops.adr_version() IS
    'versions of the adr_ops library and of its SQL objects in this database, the PostgreSQL it was built for, libcurl and its TLS library';
