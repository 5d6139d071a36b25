-- adr_ops install script.  Built by the Makefile from src/*.sql; edit those.
\echo Use "CREATE EXTENSION adr_ops" to load this file. \quit

-- CREATE EXTENSION creates schema adr_ops when it is missing and silently
-- reuses one that exists.  A schema that someone else owns, or that already
-- holds objects, could shadow what this script creates and calls: refuse it.
-- (The extension itself depends on its schema; that is the one dependency
-- allowed.)
DO $adr_schema_guard$
DECLARE
    owner_name name;
    objects bigint;
BEGIN
    SELECT pg_catalog.pg_get_userbyid(n.nspowner),
           (SELECT pg_catalog.count(*) FROM pg_catalog.pg_depend d
             WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
               AND d.refobjid OPERATOR(pg_catalog.=) n.oid
               AND d.classid OPERATOR(pg_catalog.<>) 'pg_catalog.pg_extension'::pg_catalog.regclass)
      INTO owner_name, objects
      FROM pg_catalog.pg_namespace n
     WHERE n.nspname OPERATOR(pg_catalog.=) 'adr_ops';

    IF owner_name OPERATOR(pg_catalog.<>) CURRENT_USER OR objects OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION USING
            ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = 'schema "adr_ops" already exists and is not empty or not owned by the installing role',
            DETAIL = pg_catalog.format('Schema "adr_ops" is owned by %I and holds %s objects.',
                                       owner_name, objects),
            HINT = 'Drop or rename the existing schema "adr_ops", then run CREATE EXTENSION adr_ops again.';
    END IF;
END
$adr_schema_guard$;

-- Reports are for pg_monitor; nothing in the schema is for PUBLIC.
GRANT USAGE ON SCHEMA adr_ops TO pg_monitor;

-- Configuration tables kept by pg_dump get their default rows from CREATE
-- EXTENSION before pg_restore's COPY brings the dumped ones.  This BEFORE
-- INSERT trigger turns a row whose key is already there into an UPDATE of
-- that row, so that a dumped row replaces its default instead of failing the
-- whole COPY on the key.  TG_ARGV[0] names the key column; any further
-- arguments name columns the update leaves as they are (a surrogate id).
CREATE FUNCTION adr_ops._config_upsert() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sets text;
    updated bigint;
BEGIN
    SELECT string_agg(format('%1$I = ($1).%1$I', a.attname), ', ' ORDER BY a.attnum)
      INTO sets
      FROM pg_attribute a
     WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname::text <> ALL (TG_ARGV);
    EXECUTE format('UPDATE %I.%I SET %s WHERE %I = ($1).%I',
                   TG_TABLE_SCHEMA, TG_TABLE_NAME, sets, TG_ARGV[0], TG_ARGV[0])
      USING NEW;
    GET DIAGNOSTICS updated = ROW_COUNT;
    IF updated > 0 THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION adr_ops._config_upsert() IS
    'API: private. Lets a restored configuration row replace the default row of the same key';
REVOKE ALL ON FUNCTION adr_ops._config_upsert() FROM PUBLIC;

-- info: what this build is made of ------------------------------------------

CREATE FUNCTION adr_ops.adr_version(OUT component text, OUT version text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'adr_version'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops.adr_version() IS
    'versions of adr_ops, the PostgreSQL it was built for, libcurl and its TLS library';
REVOKE ALL ON FUNCTION adr_ops.adr_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_version() TO pg_monitor;

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

-- health: the daily health check (runbook: System Health Monitoring) ---------

-- Host readings, in C (health.c).
CREATE FUNCTION adr_ops.adr_host_disk(
    OUT kind text, OUT name text, OUT path text,
    OUT total_bytes bigint, OUT used_bytes bigint, OUT available_bytes bigint,
    OUT used_pct float8, OUT inodes_used_pct float8, OUT error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'adr_host_disk'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops.adr_host_disk() IS
    'file system usage (statvfs) of the data directory, pg_wal and each tablespace: the runbook''s df -h';

CREATE FUNCTION adr_ops.adr_host_memory(
    OUT kind text, OUT total_bytes bigint, OUT used_bytes bigint, OUT free_bytes bigint,
    OUT shared_bytes bigint, OUT buff_cache_bytes bigint, OUT available_bytes bigint,
    OUT error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'adr_host_memory'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops.adr_host_memory() IS
    'memory and swap of the host from /proc/meminfo, as free -b shows them';

CREATE FUNCTION adr_ops.adr_host_load(
    OUT load1 float8, OUT load5 float8, OUT load15 float8, OUT cpus int, OUT error text)
RETURNS record
AS 'MODULE_PATHNAME', 'adr_host_load'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops.adr_host_load() IS
    'load averages and online CPUs of the host, as uptime and nproc show them';

REVOKE ALL ON FUNCTION adr_ops.adr_host_disk() FROM PUBLIC;
REVOKE ALL ON FUNCTION adr_ops.adr_host_memory() FROM PUBLIC;
REVOKE ALL ON FUNCTION adr_ops.adr_host_load() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_host_disk() TO pg_monitor;
GRANT EXECUTE ON FUNCTION adr_ops.adr_host_memory() TO pg_monitor;
GRANT EXECUTE ON FUNCTION adr_ops.adr_host_load() TO pg_monitor;

-- Thresholds, one row per check (a check_name "disk_tablespace:fast" uses
-- its own row if there is one, else the row "disk_tablespace").  warn > crit means lower is worse (available
-- memory, cache hit ratio); otherwise higher is worse.  A reading beyond
-- (not at) a threshold raises the status, as in Nagios.  A check without a
-- row is reported OK whatever it reads.
CREATE TABLE adr_ops.health_thresholds (
    check_name text PRIMARY KEY,
    warn numeric NOT NULL,
    crit numeric NOT NULL
);
COMMENT ON TABLE adr_ops.health_thresholds IS
    'warning and critical levels of adr_health_check(); warn > crit means lower is worse';

INSERT INTO adr_ops.health_thresholds (check_name, warn, crit) VALUES
    ('connections',          80,          90),          -- % of non-superuser slots
    ('disk_data',            80,          90),          -- % used
    ('disk_wal',             80,          90),
    ('disk_tablespace',      80,          90),
    ('memory',               10,           5),          -- % available: lower is worse
    ('swap',                 50,          80),          -- % used
    ('load',                  2,           4),          -- 1-minute load per CPU
    ('long_transactions',   300,        3600),          -- seconds
    ('idle_in_transaction', 300,        1800),          -- seconds
    ('blocked_sessions',     30,         300),          -- seconds waiting for a lock
    ('xid_wraparound',      100,         500),          -- % of autovacuum_freeze_max_age
    ('replication_lag',      60,         300),          -- seconds
    ('replication_slots', 1073741824, 10737418240),     -- bytes of WAL held by inactive slots
    ('cache_hit_ratio',      95,          90),          -- %: lower is worse
    ('recent_errors',        10,         100);          -- entries in the last hour

-- pg_dump keeps the rows; a restored one replaces its default (schema.sql).
CREATE TRIGGER health_thresholds_upsert BEFORE INSERT ON adr_ops.health_thresholds
    FOR EACH ROW EXECUTE FUNCTION adr_ops._config_upsert('check_name');

SELECT pg_catalog.pg_extension_config_dump('adr_ops.health_thresholds', '');
GRANT SELECT ON adr_ops.health_thresholds TO pg_monitor;

-- Every health check function returns readings; adr_health_check() judges
-- them against the thresholds.  unknown, when set, is why the check could
-- not be made (status UNKNOWN), never silently OK; at_least, when set, is a
-- status the reading has whatever the thresholds say (a PANIC in the log).
CREATE TYPE adr_ops._health_reading AS (
    check_name text,
    value numeric,
    unit text,
    detail text,
    unknown text,
    at_least text
);
COMMENT ON TYPE adr_ops._health_reading IS 'API: private. One reading of a health check';

-- Checks that look at other sessions need pg_read_all_stats: without it
-- pg_stat_activity hides their state and times, and the check would read 0.
CREATE FUNCTION adr_ops._health_stats_unknown() RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN NOT pg_has_role('pg_read_all_stats', 'USAGE')
                THEN 'requires the privileges of pg_read_all_stats to see other sessions' END
$$;
COMMENT ON FUNCTION adr_ops._health_stats_unknown() IS
    'API: private. Why a check of other sessions cannot be made by the caller, or NULL';

CREATE FUNCTION adr_ops._check_connections() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'connections', round(100.0 * s.used / s.slots, 1), '%',
           format('%s of %s connection slots for non-superusers in use', s.used, s.slots),
           adr_ops._health_stats_unknown(), NULL
      FROM (SELECT (SELECT count(*) FROM pg_stat_activity
                     WHERE backend_type = 'client backend') AS used,
                   current_setting('max_connections')::int
                   - current_setting('superuser_reserved_connections')::int
                   - coalesce(current_setting('reserved_connections', true)::int, 0) AS slots) s
$$;

CREATE FUNCTION adr_ops._check_disk() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE d.kind WHEN 'data' THEN 'disk_data'
                       WHEN 'wal' THEN 'disk_wal'
                       ELSE 'disk_tablespace:' || d.name END,
           round(greatest(d.used_pct, d.inodes_used_pct)::numeric, 1), '%',
           format('%s: %s used of %s, %s available; %s%% of inodes used',
                  d.path, pg_size_pretty(d.used_bytes), pg_size_pretty(d.total_bytes),
                  pg_size_pretty(d.available_bytes),
                  coalesce(round(d.inodes_used_pct::numeric, 1)::text, 'n/a')),
           d.error, NULL
      FROM adr_ops.adr_host_disk() d
$$;

CREATE FUNCTION adr_ops._check_memory() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH m AS (SELECT * FROM adr_ops.adr_host_memory())
    SELECT 'memory', round(100.0 * m.available_bytes / nullif(m.total_bytes, 0), 1), '%',
           format('%s available of %s (%s used, %s buff/cache)',
                  pg_size_pretty(m.available_bytes), pg_size_pretty(m.total_bytes),
                  pg_size_pretty(m.used_bytes), pg_size_pretty(m.buff_cache_bytes)),
           m.error, NULL
      FROM m WHERE m.kind = 'mem'
    UNION ALL
    SELECT 'swap',
           CASE WHEN m.total_bytes = 0 THEN 0
                ELSE round(100.0 * m.used_bytes / m.total_bytes, 1) END, '%',
           CASE WHEN m.total_bytes = 0 THEN 'no swap configured'
                ELSE format('%s used of %s', pg_size_pretty(m.used_bytes),
                            pg_size_pretty(m.total_bytes)) END,
           m.error, NULL
      FROM m WHERE m.kind = 'swap'
$$;

CREATE FUNCTION adr_ops._check_load() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'load', round((l.load1 / l.cpus)::numeric, 2), 'load/cpu',
           format('load average %s, %s, %s on %s CPUs', round(l.load1::numeric, 2),
                  round(l.load5::numeric, 2), round(l.load15::numeric, 2), l.cpus),
           l.error, NULL
      FROM adr_ops.adr_host_load() l
$$;

-- Open transactions of client backends and prepared transactions: both
-- hold back the xmin horizon, so both count.
CREATE FUNCTION adr_ops._check_long_transactions() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH x AS (
        SELECT 'pid ' || pid AS who, usename AS usr, datname AS db, state, xact_start AS since
          FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND xact_start IS NOT NULL
           AND pid <> pg_backend_pid()
        UNION ALL
        SELECT 'prepared transaction ' || quote_literal(gid), owner, database, 'prepared', prepared
          FROM pg_prepared_xacts
    )
    SELECT 'long_transactions',
           coalesce(round(extract(epoch FROM now() - min(x.since))::numeric, 0), 0), 's',
           coalesce((SELECT format('oldest: %s (%s@%s, %s) open for %s', o.who, o.usr, o.db,
                                   o.state, date_trunc('second', now() - o.since))
                       FROM x o ORDER BY o.since LIMIT 1),
                    'no open transactions'),
           adr_ops._health_stats_unknown(), NULL
      FROM x
$$;

CREATE FUNCTION adr_ops._check_idle_in_transaction() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH i AS (
        SELECT pid, usename, datname, state_change
          FROM pg_stat_activity
         WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')
           AND pid <> pg_backend_pid()
    )
    SELECT 'idle_in_transaction',
           coalesce(round(extract(epoch FROM now() - min(i.state_change))::numeric, 0), 0), 's',
           coalesce((SELECT format('%s sessions idle in transaction; oldest: pid %s (%s@%s) idle for %s',
                                   (SELECT count(*) FROM i), o.pid, o.usename, o.datname,
                                   date_trunc('second', now() - o.state_change))
                       FROM i o ORDER BY o.state_change LIMIT 1),
                    'no sessions idle in transaction'),
           adr_ops._health_stats_unknown(), NULL
      FROM i
$$;

-- The wait starts at pg_locks.waitstart; a wait younger than
-- deadlock_timeout may not have it yet, so fall back to state_change.
-- waitstart is read through jsonb because 13 has no such column.
CREATE FUNCTION adr_ops._check_blocked_sessions() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH w AS (
        SELECT a.pid, a.usename, a.datname, a.wait_event, pg_blocking_pids(a.pid) AS blockers,
               coalesce((SELECT min((to_jsonb(l) ->> 'waitstart')::timestamptz) FROM pg_locks l
                          WHERE l.pid = a.pid AND NOT l.granted), a.state_change) AS since
          FROM pg_stat_activity a
         WHERE a.wait_event_type = 'Lock'
    )
    SELECT 'blocked_sessions',
           coalesce(round(extract(epoch FROM now() - min(w.since))::numeric, 0), 0), 's',
           coalesce((SELECT format('%s sessions waiting for a lock; longest: pid %s (%s@%s) waiting %s for a %s lock, blocked by pids %s',
                                   (SELECT count(*) FROM w), o.pid, o.usename, o.datname,
                                   date_trunc('second', now() - o.since), o.wait_event,
                                   array_to_string(o.blockers, ', '))
                       FROM w o ORDER BY o.since LIMIT 1),
                    'no sessions waiting for a lock'),
           adr_ops._health_stats_unknown(), NULL
      FROM w
$$;

-- The larger of transaction ID and multixact age, each as a share of the
-- age at which autovacuum forces an anti-wraparound vacuum.
CREATE FUNCTION adr_ops._check_xid_wraparound() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH d AS (
        SELECT datname,
               age(datfrozenxid) AS xid_age,
               mxid_age(datminmxid) AS mxid_age,
               100.0 * age(datfrozenxid) / current_setting('autovacuum_freeze_max_age')::numeric AS xid_pct,
               100.0 * mxid_age(datminmxid)
                   / current_setting('autovacuum_multixact_freeze_max_age')::numeric AS mxid_pct
          FROM pg_database
    )
    SELECT 'xid_wraparound', round(max(greatest(d.xid_pct, d.mxid_pct)), 1), '%',
           (SELECT format('oldest: database %I, transaction ID age %s (%s%% of the way to wraparound), multixact age %s',
                          o.datname, o.xid_age, round(100.0 * o.xid_age / 2147483648, 1), o.mxid_age)
              FROM d o ORDER BY greatest(o.xid_pct, o.mxid_pct) DESC LIMIT 1),
           NULL, NULL
      FROM d
$$;

-- On a primary, the replay lag of each standby (two standbys with one
-- application_name are told apart by pid); on a standby, its own, or the
-- time since it last replayed a transaction when its WAL receiver is gone.
-- Inactive slots hold WAL back whatever the role: the largest one counts.
CREATE FUNCTION adr_ops._check_replication() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'replication_lag',
           CASE WHEN r.receiving AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                ELSE round(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::numeric, 0) END,
           's',
           format('standby, %s; last replayed transaction committed at %s',
                  CASE WHEN r.receiving THEN 'streaming' ELSE 'WAL receiver not running' END,
                  coalesce(pg_last_xact_replay_timestamp()::text, 'n/a')),
           NULL, NULL
      FROM (SELECT EXISTS (SELECT FROM pg_stat_wal_receiver) AS receiving) r
     WHERE pg_is_in_recovery()
    UNION ALL
    SELECT 'replication_lag:' || r.name
               || CASE WHEN count(*) OVER (PARTITION BY r.name) > 1 THEN ':' || r.pid ELSE '' END,
           round(extract(epoch FROM coalesce(r.replay_lag, interval '0'))::numeric, 1), 's',
           format('%s (%s), replay %s behind sent WAL', r.state, r.sync_state,
                  coalesce(pg_size_pretty(pg_wal_lsn_diff(r.sent_lsn, r.replay_lsn)), 'n/a')),
           adr_ops._health_stats_unknown(), NULL
      FROM (SELECT coalesce(nullif(application_name, ''), host(client_addr), pid::text) AS name, *
              FROM pg_stat_replication) r
     WHERE NOT pg_is_in_recovery()
    UNION ALL
    SELECT 'replication_lag', NULL, 's', 'no standbys connected', NULL, NULL
     WHERE NOT pg_is_in_recovery() AND NOT EXISTS (SELECT FROM pg_stat_replication)
    UNION ALL
    SELECT 'replication_slots', coalesce(max(s.retained), 0), 'bytes',
           CASE WHEN count(*) = 0 THEN 'no inactive replication slots'
                ELSE format('%s inactive slots retain WAL: %s', count(*),
                            string_agg(format('%s (%s, %s)', s.slot_name, pg_size_pretty(s.retained),
                                              coalesce(s.wal_status, 'n/a')),
                                       ', ' ORDER BY s.retained DESC NULLS LAST)) END,
           NULL, NULL
      FROM (SELECT slot_name, wal_status,
                   pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                                        ELSE pg_current_wal_lsn() END, restart_lsn) AS retained
              FROM pg_replication_slots WHERE NOT active) s
$$;

-- Fewer than 1000 block requests say nothing about the cache.
CREATE FUNCTION adr_ops._check_cache_hit_ratio() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'cache_hit_ratio',
           CASE WHEN blks_hit + blks_read >= 1000
                THEN round(100.0 * blks_hit / (blks_hit + blks_read), 2) END,
           '%',
           format('%s of %s block requests in database %I served from shared buffers since %s',
                  blks_hit, blks_hit + blks_read, datname,
                  coalesce(date_trunc('second', stats_reset)::text, 'the statistics began')),
           NULL, NULL
      FROM pg_stat_database WHERE datname = current_database()
$$;

-- Reading the log needs pg_read_server_files (adr_log_lines checks it
-- again); a caller without it gets the reason, not a permission error.
-- A PANIC in the last hour is CRITICAL however few entries there are.
CREATE FUNCTION adr_ops._check_recent_errors() RETURNS SETOF adr_ops._health_reading
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pg_has_role('pg_read_server_files', 'USAGE') THEN
        RETURN QUERY SELECT 'recent_errors', NULL::numeric, 'entries', NULL::text,
                            'requires the privileges of pg_read_server_files to read the server log',
                            NULL::text;
        RETURN;
    END IF;

    RETURN QUERY
    SELECT 'recent_errors', count(*)::numeric, 'entries',
           format('%s ERROR, %s FATAL, %s PANIC in the last hour of the server log%s',
                  count(*) FILTER (WHERE l.severity = 'ERROR'),
                  count(*) FILTER (WHERE l.severity = 'FATAL'),
                  count(*) FILTER (WHERE l.severity = 'PANIC'),
                  '; last: ' || left((array_agg(l.severity || ': ' || l.message
                                                ORDER BY l.log_time DESC))[1], 200)),
           NULL::text,
           CASE WHEN bool_or(l.severity = 'PANIC') THEN 'CRITICAL' END
      FROM adr_ops.adr_log_lines(now() - interval '1 hour', '{ERROR,FATAL,PANIC}') l;
END
$$;

-- The report.  Each check runs in its own exception block: a check that
-- fails (a privilege, a missing file, a platform without /proc) becomes an
-- UNKNOWN row with the reason, and never takes the other checks down.
CREATE FUNCTION adr_ops.adr_health_check(
    OUT check_name text, OUT status text, OUT value numeric, OUT unit text,
    OUT warn numeric, OUT crit numeric, OUT detail text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    checks CONSTANT text[] := ARRAY['connections', 'disk', 'memory', 'load',
                                    'long_transactions', 'idle_in_transaction',
                                    'blocked_sessions', 'xid_wraparound', 'replication',
                                    'cache_hit_ratio', 'recent_errors',
                                    'probes',             -- http.sql
                                    'maintenance_mode',   -- security.sql
                                    'backup_verification'];  -- backup.sql
    c text;
    msg text;
    msg_detail text;
    msg_hint text;
    part adr_ops._health_reading[];
    readings adr_ops._health_reading[] := '{}';
BEGIN
    FOREACH c IN ARRAY checks LOOP
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
COMMENT ON FUNCTION adr_ops.adr_health_check() IS
    'the daily health check: one row per check with status OK, WARNING, CRITICAL or UNKNOWN';

-- History, for trends on dashboards.
CREATE TABLE adr_ops.health_history (
    taken_at timestamptz NOT NULL,
    check_name text NOT NULL,
    status text NOT NULL
        CHECK (status OPERATOR(pg_catalog.=) ANY ('{OK,WARNING,CRITICAL,UNKNOWN}'::text[])),
    value numeric,
    unit text,
    warn numeric,
    crit numeric,
    detail text,
    PRIMARY KEY (check_name, taken_at)
);
CREATE INDEX health_history_taken_at ON adr_ops.health_history (taken_at);
COMMENT ON TABLE adr_ops.health_history IS
    'results of adr_health_check() stored by adr_health_snapshot(), for trends';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.health_history', '');
GRANT SELECT ON adr_ops.health_history TO pg_monitor;

CREATE FUNCTION adr_ops.adr_health_snapshot(keep interval DEFAULT '30 days')
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH pruned AS (
        DELETE FROM adr_ops.health_history WHERE taken_at < now() - keep
    ), taken AS (
        SELECT clock_timestamp() AS at
    ), stored AS (
        INSERT INTO adr_ops.health_history
               (taken_at, check_name, status, value, unit, warn, crit, detail)
        SELECT taken.at, h.check_name, h.status, h.value, h.unit, h.warn, h.crit, h.detail
          FROM taken, adr_ops.adr_health_check() h
        RETURNING 1
    )
    SELECT count(*)::integer FROM stored
$$;
COMMENT ON FUNCTION adr_ops.adr_health_snapshot(interval) IS
    'stores the current health check in health_history, dropping rows older than keep (NULL keeps all); returns the rows stored';
REVOKE ALL ON FUNCTION adr_ops.adr_health_snapshot(interval) FROM PUBLIC;

DO $grants$
DECLARE
    f text;
BEGIN
    -- The report and its private parts: for pg_monitor, not PUBLIC.
    FOREACH f IN ARRAY ARRAY['adr_health_check', '_health_stats_unknown',
                             '_check_connections', '_check_disk', '_check_memory',
                             '_check_load', '_check_long_transactions',
                             '_check_idle_in_transaction', '_check_blocked_sessions',
                             '_check_xid_wraparound', '_check_replication',
                             '_check_cache_hit_ratio', '_check_recent_errors'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION adr_ops.%I() FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION adr_ops.%I() TO pg_monitor', f);
    END LOOP;
END
$grants$;

-- maintenance: the scheduler (runbook: Database Maintenance, Planned
-- Maintenance Window, Daily Health Checks, Weekly System Review) -----------

-- Whether a schedule parses: the table holds no schedule the launcher
-- could not read, whoever writes it.
CREATE FUNCTION adr_ops._schedule_valid(schedule text) RETURNS boolean
AS 'MODULE_PATHNAME', 'adr_schedule_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops._schedule_valid(text) IS
    'API: private. Whether a schedule parses (adr_next_run() says why not)';
REVOKE ALL ON FUNCTION adr_ops._schedule_valid(text) FROM PUBLIC;

CREATE TABLE adr_ops.schedules (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    schedule text NOT NULL CHECK (adr_ops._schedule_valid(schedule)),
    task text NOT NULL,
    database name NOT NULL,
    options jsonb NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT true,
    created_by name NOT NULL DEFAULT CURRENT_USER
);
COMMENT ON TABLE adr_ops.schedules IS
    'maintenance schedules run by the adr_ops launcher; change them with adr_schedule() and adr_unschedule()';

CREATE TABLE adr_ops.task_runs (
    id bigserial PRIMARY KEY,
    schedule_id bigint REFERENCES adr_ops.schedules (id) ON DELETE SET NULL,
    task text NOT NULL,
    database name NOT NULL,
    scheduled_at timestamptz,
    started_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at timestamptz,
    status text NOT NULL
        CHECK (status OPERATOR(pg_catalog.=) ANY ('{running,succeeded,failed,skipped}'::text[])),
    objects integer,
    detail text
);
COMMENT ON TABLE adr_ops.task_runs IS
    'history of maintenance task runs, pruned after adr_ops.task_run_retention';
CREATE INDEX task_runs_schedule ON adr_ops.task_runs (schedule_id, scheduled_at);
CREATE INDEX task_runs_finished ON adr_ops.task_runs (finished_at);
CREATE INDEX task_runs_running ON adr_ops.task_runs (id)
    WHERE status OPERATOR(pg_catalog.=) 'running';

-- pg_dump keeps the rows; a restored one replaces its default (schema.sql).
CREATE TRIGGER schedules_upsert BEFORE INSERT ON adr_ops.schedules
    FOR EACH ROW EXECUTE FUNCTION adr_ops._config_upsert('name', 'id');

-- A committed change wakes the launcher.
CREATE FUNCTION adr_ops._scheduler_wake() RETURNS trigger
AS 'MODULE_PATHNAME', 'adr_scheduler_wake'
LANGUAGE C;
COMMENT ON FUNCTION adr_ops._scheduler_wake() IS
    'API: private. Wakes the adr_ops launcher when the schedules change';
REVOKE ALL ON FUNCTION adr_ops._scheduler_wake() FROM PUBLIC;
CREATE TRIGGER schedules_wake
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON adr_ops.schedules
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._scheduler_wake();

SELECT pg_catalog.pg_extension_config_dump('adr_ops.schedules', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.schedules_id_seq', '');
GRANT SELECT ON adr_ops.schedules, adr_ops.task_runs TO pg_monitor;

CREATE FUNCTION adr_ops.adr_tasks(
    OUT task text, OUT writes boolean, OUT heavy boolean, OUT options text[],
    OUT description text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'adr_tasks'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops.adr_tasks() IS
    'the maintenance tasks a schedule can run, with their options';

CREATE FUNCTION adr_ops.adr_next_run(schedule text, after timestamptz DEFAULT pg_catalog.now(),
                                     timezone text DEFAULT NULL)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'adr_next_run'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops.adr_next_run(text, timestamptz, text) IS
    'the next fire time of a schedule after a time, in a time zone (default adr_ops.timezone)';

CREATE FUNCTION adr_ops._schedule_validate(schedule text, task text, database name, options jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'adr_schedule_validate'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION adr_ops._schedule_validate(text, text, name, jsonb) IS
    'API: private. Raises an error unless a schedule, task, database and options can be scheduled';

CREATE FUNCTION adr_ops._calling_role() RETURNS name
AS 'MODULE_PATHNAME', 'adr_calling_role'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION adr_ops._calling_role() IS
    'API: private. The role that called, unchanged by SECURITY DEFINER';

CREATE FUNCTION adr_ops._launcher_schedules(
    OUT schedule_id bigint, OUT next_fire timestamptz, OUT standby_skip_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'adr_launcher_schedules'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION adr_ops._launcher_schedules() IS
    'API: private. What the running launcher knows of each schedule';

-- Only these change the schedules; EXECUTE on them is the privilege to
-- schedule maintenance, which the launcher runs as the bootstrap superuser.
CREATE FUNCTION adr_ops.adr_schedule(name text, schedule text, task text,
                                     database name DEFAULT pg_catalog.current_database(),
                                     options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    schedule_id bigint;
BEGIN
    IF adr_schedule.name IS NULL OR adr_schedule.schedule IS NULL OR adr_schedule.task IS NULL
       OR adr_schedule.database IS NULL OR adr_schedule.options IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'name, schedule, task, database and options must not be null';
    END IF;
    PERFORM adr_ops._schedule_validate(adr_schedule.schedule, adr_schedule.task,
                                       adr_schedule.database, adr_schedule.options);

    UPDATE adr_ops.schedules s
       SET schedule = adr_schedule.schedule, task = adr_schedule.task,
           database = adr_schedule.database, options = adr_schedule.options, enabled = true
     WHERE s.name = adr_schedule.name
    RETURNING s.id INTO schedule_id;
    IF NOT FOUND THEN
        INSERT INTO adr_ops.schedules (name, schedule, task, database, options, created_by)
        VALUES (adr_schedule.name, adr_schedule.schedule, adr_schedule.task,
                adr_schedule.database, adr_schedule.options, adr_ops._calling_role())
        RETURNING id INTO schedule_id;
    END IF;
    RETURN schedule_id;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_schedule(text, text, text, name, jsonb) IS
    'schedules a maintenance task (or reschedules the schedule of that name); returns its id';
REVOKE ALL ON FUNCTION adr_ops.adr_schedule(text, text, text, name, jsonb) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_unschedule(name text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM adr_ops.schedules s WHERE s.name = adr_unschedule.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('schedule "%s" does not exist', adr_unschedule.name),
            HINT = 'adr_maintenance_status() lists the schedules.';
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_unschedule(text) IS
    'removes a maintenance schedule; its run history stays';
REVOKE ALL ON FUNCTION adr_ops.adr_unschedule(text) FROM PUBLIC;

-- SECURITY DEFINER so that EXECUTE is all a grantee needs (it reads the
-- run's row in task_runs).
CREATE FUNCTION adr_ops.adr_run_task(task text, database name DEFAULT pg_catalog.current_database(),
                                     options jsonb DEFAULT '{}', wait boolean DEFAULT true)
RETURNS adr_ops.task_runs
AS 'MODULE_PATHNAME', 'adr_run_task'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION adr_ops.adr_run_task(text, name, jsonb, boolean) IS
    'runs a maintenance task now through a worker and returns its task_runs row';
REVOKE ALL ON FUNCTION adr_ops.adr_run_task(text, name, jsonb, boolean) FROM PUBLIC;

-- For dashboards: each schedule, when it fires next, and its last run.
-- next_run is the launcher's own figure when it runs; on a hot standby a
-- skip in recovery is newer than any replicated run.
CREATE FUNCTION adr_ops.adr_maintenance_status(
    OUT name text, OUT schedule text, OUT task text, OUT database name, OUT enabled boolean,
    OUT next_run timestamptz, OUT last_started_at timestamptz, OUT last_finished_at timestamptz,
    OUT last_status text, OUT last_objects integer, OUT last_detail text)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.name, s.schedule, s.task, s.database, s.enabled,
           CASE WHEN s.enabled THEN coalesce(l.next_fire, adr_ops.adr_next_run(s.schedule, now())) END,
           CASE WHEN skipped THEN l.standby_skip_at ELSE r.started_at END,
           CASE WHEN skipped THEN l.standby_skip_at ELSE r.finished_at END,
           CASE WHEN skipped THEN 'skipped' ELSE r.status END,
           CASE WHEN skipped THEN NULL ELSE r.objects END,
           CASE WHEN skipped THEN 'skipped: in recovery' ELSE r.detail END
      FROM adr_ops.schedules s
      LEFT JOIN adr_ops._launcher_schedules() l ON l.schedule_id = s.id
      LEFT JOIN LATERAL (SELECT t.started_at, t.finished_at, t.status, t.objects, t.detail
                           FROM adr_ops.task_runs t WHERE t.schedule_id = s.id
                          ORDER BY t.started_at DESC LIMIT 1) r ON true
      CROSS JOIN LATERAL (SELECT l.standby_skip_at > coalesce(r.started_at, '-infinity') AS skipped) k
     ORDER BY s.name
$$;
COMMENT ON FUNCTION adr_ops.adr_maintenance_status() IS
    'each maintenance schedule with its next fire time and its last run';

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['adr_ops.adr_tasks()', 'adr_ops.adr_next_run(text, timestamptz, text)',
                             'adr_ops._launcher_schedules()', 'adr_ops.adr_maintenance_status()'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pg_monitor', f);
    END LOOP;
    EXECUTE 'REVOKE ALL ON FUNCTION adr_ops._schedule_validate(text, text, name, jsonb) FROM PUBLIC';
    EXECUTE 'REVOKE ALL ON FUNCTION adr_ops._calling_role() FROM PUBLIC';
END
$grants$;

-- The runbook's procedures, editable.  They run where the extension was
-- created, and only when that is adr_ops.database.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('health_snapshot', '*/5 * * * *', 'health_snapshot', pg_catalog.current_database()),
    ('analyze',         '0 2 * * *',   'analyze',         pg_catalog.current_database()),
    ('vacuum_analyze',  '0 3 * * 0',   'vacuum_analyze',  pg_catalog.current_database()),
    ('reindex',         '0 4 1 * *',   'reindex',         pg_catalog.current_database());

-- jobs: pipeline jobs with checkpoints (runbook: Data Pipeline Management) --

CREATE TABLE adr_ops.processing_jobs (
    id bigserial PRIMARY KEY,
    pipeline text NOT NULL,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status OPERATOR(pg_catalog.=) ANY ('{queued,running,succeeded,failed,cancelled}'::text[])),
    payload jsonb NOT NULL DEFAULT '{}',
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts OPERATOR(pg_catalog.>=) 1),
    run_after timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    started_at timestamptz,
    completed_at timestamptz,
    heartbeat_at timestamptz,
    worker text,
    last_error text
);
COMMENT ON TABLE adr_ops.processing_jobs IS
    'pipeline jobs; change them only through the adr_job_* functions';
-- What claimers and the reaper look for.
CREATE INDEX processing_jobs_runnable ON adr_ops.processing_jobs (pipeline, run_after, id)
    WHERE status OPERATOR(pg_catalog.=) 'queued';
CREATE INDEX processing_jobs_running ON adr_ops.processing_jobs (heartbeat_at)
    WHERE status OPERATOR(pg_catalog.=) 'running';
CREATE INDEX processing_jobs_failed ON adr_ops.processing_jobs (id)
    WHERE status OPERATOR(pg_catalog.=) 'failed';
CREATE INDEX processing_jobs_created ON adr_ops.processing_jobs (created_at);
-- Partial: a claim (completed_at NULL) then inserts no entry here.
CREATE INDEX processing_jobs_completed ON adr_ops.processing_jobs (completed_at)
    WHERE completed_at IS NOT NULL;

CREATE TABLE adr_ops.job_checkpoints (
    job_id bigint NOT NULL REFERENCES adr_ops.processing_jobs (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    stage text NOT NULL,
    state jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    PRIMARY KEY (job_id, seq)
);
COMMENT ON TABLE adr_ops.job_checkpoints IS 'the stages each job completed, in order';

-- One index serves the timelines and the key: every transition writes a
-- row here, so each index costs on every claim and completion.
CREATE TABLE adr_ops.job_events (
    id bigserial,
    job_id bigint NOT NULL REFERENCES adr_ops.processing_jobs (id) ON DELETE CASCADE,
    at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    from_status text,
    to_status text NOT NULL,
    actor name NOT NULL,
    note text,
    detail jsonb,
    PRIMARY KEY (job_id, id)
);
COMMENT ON TABLE adr_ops.job_events IS
    'every status transition of every job, with the role that made it: the post-incident timeline';

-- The one place where status transitions are allowed: what each action may
-- do from each status.  Anything not here is refused.
CREATE TABLE adr_ops.job_transitions (
    action text NOT NULL,
    from_status text NOT NULL,
    to_status text NOT NULL,
    needs_force boolean NOT NULL DEFAULT false,
    PRIMARY KEY (action, from_status)
);
COMMENT ON TABLE adr_ops.job_transitions IS
    'the allowed job status transitions: action, from, to, and whether force is needed';
INSERT INTO adr_ops.job_transitions (action, from_status, to_status, needs_force) VALUES
    ('claim',      'queued',    'running',   false),
    ('heartbeat',  'running',   'running',   false),
    ('checkpoint', 'running',   'running',   false),
    ('complete',   'running',   'succeeded', false),
    ('fail',       'running',   'failed',    false),
    ('cancel',     'queued',    'cancelled', false),
    ('cancel',     'running',   'cancelled', false),
    ('cancel',     'failed',    'cancelled', false),
    ('restart',    'failed',    'queued',    false),
    ('restart',    'cancelled', 'queued',    false),
    ('restart',    'running',   'queued',    true),   -- and only with a stale heartbeat
    ('restart',    'succeeded', 'queued',    true),
    ('reap',       'running',   'failed',    false),  -- heartbeat lost
    ('retry',      'failed',    'queued',    false);  -- attempts left, with backoff

-- How long a running job may go without a heartbeat before it is lost.
CREATE FUNCTION adr_ops._job_stale_after() RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('adr_ops.job_stale_after', true), ''), '5min')::interval
$$;
COMMENT ON FUNCTION adr_ops._job_stale_after() IS
    'API: private. adr_ops.job_stale_after as an interval';

-- Move one job by an action, under its row lock: check the transition
-- against job_transitions, update the row, record the event, and NOTIFY
-- adr_jobs when the job becomes runnable.  Every adr_job_* function that
-- changes a status goes through here.
CREATE FUNCTION adr_ops._job_move(job_id bigint, action text, note text DEFAULT NULL,
                                  force boolean DEFAULT false, worker text DEFAULT NULL,
                                  error text DEFAULT NULL, run_after timestamptz DEFAULT NULL,
                                  detail jsonb DEFAULT NULL)
RETURNS adr_ops.processing_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j adr_ops.processing_jobs;
    t adr_ops.job_transitions;
BEGIN
    IF _job_move.job_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'job id must not be null';
    END IF;
    SELECT * INTO j FROM adr_ops.processing_jobs p WHERE p.id = _job_move.job_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('job %s does not exist', _job_move.job_id);
    END IF;

    SELECT * INTO t FROM adr_ops.job_transitions x
     WHERE x.action = _job_move.action AND x.from_status = j.status;
    IF NOT FOUND OR (t.needs_force AND NOT _job_move.force) THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('cannot %s job %s: its status is %s', _job_move.action, j.id, j.status),
            HINT = CASE
                WHEN t.needs_force THEN format('Pass force => true to %s a %s job.', _job_move.action, j.status)
                ELSE (SELECT format('%s applies to jobs that are %s%s.', _job_move.action,
                                    string_agg(x.from_status, ' or ' ORDER BY x.from_status)
                                        FILTER (WHERE NOT x.needs_force),
                                    ' (with force => true: '
                                        || string_agg(x.from_status, ' or ' ORDER BY x.from_status)
                                               FILTER (WHERE x.needs_force) || ')')
                        FROM adr_ops.job_transitions x WHERE x.action = _job_move.action)
            END;
    END IF;

    UPDATE adr_ops.processing_jobs p
       SET status = t.to_status,
           attempts = p.attempts + CASE WHEN _job_move.action = 'claim' THEN 1 ELSE 0 END,
           started_at = CASE WHEN _job_move.action = 'claim' THEN now() ELSE p.started_at END,
           heartbeat_at = CASE WHEN t.to_status = 'running' THEN clock_timestamp() ELSE p.heartbeat_at END,
           worker = CASE WHEN _job_move.action = 'claim' THEN _job_move.worker
                         WHEN t.to_status = 'queued' THEN NULL ELSE p.worker END,
           completed_at = CASE WHEN t.to_status IN ('succeeded', 'failed', 'cancelled') THEN now()
                               WHEN t.to_status = 'queued' THEN NULL ELSE p.completed_at END,
           run_after = CASE WHEN t.to_status = 'queued' THEN coalesce(_job_move.run_after, now())
                            ELSE p.run_after END,
           last_error = coalesce(_job_move.error, p.last_error)
     WHERE p.id = j.id
    RETURNING * INTO j;

    IF t.to_status <> t.from_status THEN
        INSERT INTO adr_ops.job_events (job_id, from_status, to_status, actor, note, detail)
        VALUES (j.id, t.from_status, t.to_status, adr_ops._calling_role(),
                coalesce(_job_move.note, _job_move.action), _job_move.detail);
    END IF;
    IF t.to_status = 'queued' THEN
        PERFORM pg_notify('adr_jobs', j.id::text);
    END IF;
    RETURN j;
END
$$;
COMMENT ON FUNCTION adr_ops._job_move(bigint, text, text, boolean, text, text, timestamptz, jsonb) IS
    'API: private. The one place a job changes status';

-- What a claim returns: the job, and where to resume.
CREATE TYPE adr_ops.job_claim AS (
    id bigint,
    pipeline text,
    payload jsonb,
    attempts integer,
    max_attempts integer,
    resume_stage text,
    resume_state jsonb
);
COMMENT ON TYPE adr_ops.job_claim IS
    'a claimed job with the stage and state of its last checkpoint (NULL: start from the beginning)';

-- The API.  SECURITY DEFINER: EXECUTE is the privilege a pipeline role
-- needs; the tables are not writable by anyone else.
CREATE FUNCTION adr_ops.adr_job_submit(pipeline text, payload jsonb DEFAULT '{}',
                                       max_attempts integer DEFAULT 3)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id bigint;
BEGIN
    IF adr_job_submit.pipeline IS NULL OR adr_job_submit.payload IS NULL
       OR adr_job_submit.max_attempts IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'pipeline, payload and max_attempts must not be null';
    END IF;
    IF adr_job_submit.max_attempts < 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('max_attempts must be at least 1, not %s', adr_job_submit.max_attempts);
    END IF;
    INSERT INTO adr_ops.processing_jobs (pipeline, payload, max_attempts)
    VALUES (adr_job_submit.pipeline, adr_job_submit.payload, adr_job_submit.max_attempts)
    RETURNING id INTO new_id;
    INSERT INTO adr_ops.job_events (job_id, from_status, to_status, actor, note)
    VALUES (new_id, NULL, 'queued', adr_ops._calling_role(), 'submit');
    PERFORM pg_notify('adr_jobs', new_id::text);
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_submit(text, jsonb, integer) IS
    'queues a job of a pipeline; returns its id';

-- Claimers skip each other's locked rows, so two never get the same job.
CREATE FUNCTION adr_ops.adr_job_claim(pipeline text, worker text)
RETURNS adr_ops.job_claim
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    picked bigint;
    j adr_ops.processing_jobs;
    c adr_ops.job_claim;
BEGIN
    SELECT p.id INTO picked
      FROM adr_ops.processing_jobs p
     WHERE p.pipeline = adr_job_claim.pipeline AND p.status = 'queued' AND p.run_after <= now()
     ORDER BY p.run_after, p.id
     LIMIT 1
       FOR UPDATE SKIP LOCKED;
    IF picked IS NULL THEN
        RETURN NULL;
    END IF;
    j := adr_ops._job_move(picked, 'claim', worker => adr_job_claim.worker);
    SELECT j.id, j.pipeline, j.payload, j.attempts, j.max_attempts, k.stage, k.state
      INTO c
      FROM (SELECT 1) one
      LEFT JOIN LATERAL (SELECT x.stage, x.state FROM adr_ops.job_checkpoints x
                          WHERE x.job_id = j.id ORDER BY x.seq DESC LIMIT 1) k ON true;
    RETURN c;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_claim(text, text) IS
    'claims the next runnable job of a pipeline, with where to resume; NULL when there is none';

CREATE FUNCTION adr_ops.adr_job_heartbeat(id bigint) RETURNS timestamptz
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (adr_ops._job_move(adr_job_heartbeat.id, 'heartbeat')).heartbeat_at
$$;
COMMENT ON FUNCTION adr_ops.adr_job_heartbeat(bigint) IS
    'tells the reaper a running job is alive; returns the heartbeat time';

CREATE FUNCTION adr_ops.adr_job_checkpoint(id bigint, stage text, state jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    next_seq integer;
BEGIN
    IF adr_job_checkpoint.stage IS NULL OR adr_job_checkpoint.state IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'stage and state must not be null';
    END IF;
    PERFORM adr_ops._job_move(adr_job_checkpoint.id, 'checkpoint');
    SELECT coalesce(max(x.seq), 0) + 1 INTO next_seq
      FROM adr_ops.job_checkpoints x WHERE x.job_id = adr_job_checkpoint.id;
    INSERT INTO adr_ops.job_checkpoints (job_id, seq, stage, state)
    VALUES (adr_job_checkpoint.id, next_seq, adr_job_checkpoint.stage, adr_job_checkpoint.state);
    RETURN next_seq;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_checkpoint(bigint, text, jsonb) IS
    'records that a running job completed a stage; returns its sequence number';

CREATE FUNCTION adr_ops.adr_job_complete(id bigint) RETURNS adr_ops.processing_jobs
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT adr_ops._job_move(adr_job_complete.id, 'complete')
$$;
COMMENT ON FUNCTION adr_ops.adr_job_complete(bigint) IS 'marks a running job succeeded';

CREATE FUNCTION adr_ops.adr_job_fail(id bigint, error text) RETURNS adr_ops.processing_jobs
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT adr_ops._job_move(adr_job_fail.id, 'fail', note => 'fail: ' || adr_job_fail.error,
                             error => adr_job_fail.error)
$$;
COMMENT ON FUNCTION adr_ops.adr_job_fail(bigint, text) IS
    'marks a running job failed with its error; the reaper retries it while attempts are left';

CREATE FUNCTION adr_ops.adr_job_cancel(id bigint) RETURNS adr_ops.processing_jobs
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT adr_ops._job_move(adr_job_cancel.id, 'cancel')
$$;
COMMENT ON FUNCTION adr_ops.adr_job_cancel(bigint) IS 'cancels a queued, running or failed job';

-- The runbook's "restart from the last successful checkpoint".
CREATE FUNCTION adr_ops.adr_job_restart(id bigint, from_checkpoint boolean DEFAULT true,
                                        force boolean DEFAULT false)
RETURNS adr_ops.processing_jobs
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j adr_ops.processing_jobs;
    archived jsonb;
BEGIN
    IF adr_job_restart.from_checkpoint IS NULL OR adr_job_restart.force IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'from_checkpoint and force must not be null';
    END IF;
    SELECT * INTO j FROM adr_ops.processing_jobs p WHERE p.id = adr_job_restart.id FOR UPDATE;
    -- A running job is restarted only when its worker is gone.
    IF FOUND AND j.status = 'running' AND adr_job_restart.force
       AND j.heartbeat_at >= now() - adr_ops._job_stale_after() THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('cannot restart job %s: its status is running and its heartbeat is %s s old',
                             j.id, round(extract(epoch FROM now() - j.heartbeat_at))),
            DETAIL = format('A running job is restarted only when its heartbeat is older than adr_ops.job_stale_after (%s s).',
                            round(extract(epoch FROM adr_ops._job_stale_after()))),
            HINT = 'Wait for the worker to finish, or cancel the job.';
    END IF;

    IF NOT adr_job_restart.from_checkpoint THEN
        SELECT jsonb_agg(jsonb_build_object('seq', x.seq, 'stage', x.stage, 'state', x.state,
                                            'created_at', x.created_at) ORDER BY x.seq)
          INTO archived
          FROM adr_ops.job_checkpoints x WHERE x.job_id = adr_job_restart.id;
    END IF;
    j := adr_ops._job_move(adr_job_restart.id, 'restart',
                           note => format('restart (%s%s)',
                                          CASE WHEN adr_job_restart.from_checkpoint
                                               THEN 'from the last checkpoint' ELSE 'from the beginning' END,
                                          CASE WHEN adr_job_restart.force THEN ', forced' ELSE '' END),
                           force => adr_job_restart.force,
                           detail => CASE WHEN archived IS NOT NULL
                                          THEN jsonb_build_object('archived_checkpoints', archived) END);
    IF NOT adr_job_restart.from_checkpoint THEN
        DELETE FROM adr_ops.job_checkpoints x WHERE x.job_id = j.id;
    END IF;
    IF adr_job_restart.force THEN
        UPDATE adr_ops.processing_jobs p SET attempts = 0 WHERE p.id = j.id RETURNING * INTO j;
    END IF;
    RETURN j;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_restart(bigint, boolean, boolean) IS
    'restarts a failed or cancelled job (running with a lost heartbeat, or succeeded, only with force) from its last checkpoint or from the beginning';

-- Lost workers and retries.  Rows another session holds are left for the
-- next pass, so the reaper never waits on a worker.
CREATE FUNCTION adr_ops.adr_job_reap(OUT lost integer, OUT requeued integer)
RETURNS record
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    lost := 0;
    requeued := 0;
    FOR r IN SELECT p.id FROM adr_ops.processing_jobs p
              WHERE p.status = 'running' AND p.heartbeat_at < now() - adr_ops._job_stale_after()
              ORDER BY p.id FOR UPDATE SKIP LOCKED LOOP
        PERFORM adr_ops._job_move(r.id, 'reap', note => 'heartbeat lost', error => 'heartbeat lost');
        lost := lost + 1;
    END LOOP;
    -- Exponential backoff: 30 s after the first attempt, doubling, at most 1 hour.
    FOR r IN SELECT p.id, p.attempts FROM adr_ops.processing_jobs p
              WHERE p.status = 'failed' AND p.attempts < p.max_attempts
              ORDER BY p.id FOR UPDATE SKIP LOCKED LOOP
        PERFORM adr_ops._job_move(r.id, 'retry',
                                  note => format('retry %s', r.attempts + 1),
                                  run_after => now() + least(interval '1 hour',
                                                             interval '30 seconds' * 2 ^ (greatest(r.attempts, 1) - 1)));
        requeued := requeued + 1;
    END LOOP;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_reap() IS
    'fails running jobs whose heartbeat is lost and re-queues failed jobs with attempts left, with backoff';

-- For dashboards and the runbook's pipeline monitoring.
CREATE FUNCTION adr_ops.adr_pipeline_status(since interval DEFAULT '24 hours',
    OUT pipeline text, OUT queued bigint, OUT running bigint, OUT succeeded bigint,
    OUT failed bigint, OUT cancelled bigint, OUT failure_rate float8,
    OUT p50_duration interval, OUT p95_duration interval,
    OUT oldest_queued timestamptz, OUT stuck_running bigint)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.pipeline,
           count(*) FILTER (WHERE p.status = 'queued'),
           count(*) FILTER (WHERE p.status = 'running'),
           count(*) FILTER (WHERE p.status = 'succeeded' AND p.completed_at >= now() - since),
           count(*) FILTER (WHERE p.status = 'failed' AND p.completed_at >= now() - since),
           count(*) FILTER (WHERE p.status = 'cancelled' AND p.completed_at >= now() - since),
           (count(*) FILTER (WHERE p.status = 'failed' AND p.completed_at >= now() - since))::float8
             / nullif(count(*) FILTER (WHERE p.status IN ('succeeded', 'failed')
                                         AND p.completed_at >= now() - since), 0),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY p.completed_at - p.started_at)
             FILTER (WHERE p.status = 'succeeded' AND p.completed_at >= now() - since),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY p.completed_at - p.started_at)
             FILTER (WHERE p.status = 'succeeded' AND p.completed_at >= now() - since),
           min(p.run_after) FILTER (WHERE p.status = 'queued' AND p.run_after <= now()),
           count(*) FILTER (WHERE p.status = 'running'
                              AND p.heartbeat_at < now() - adr_ops._job_stale_after())
      FROM adr_ops.processing_jobs p
     WHERE p.status IN ('queued', 'running') OR p.completed_at >= now() - since
     GROUP BY p.pipeline
     ORDER BY p.pipeline
$$;
COMMENT ON FUNCTION adr_ops.adr_pipeline_status(interval) IS
    'per pipeline: jobs by status, failure rate, p50/p95 duration, oldest queued, stuck running';

-- The runbook's "review recent jobs".
CREATE VIEW adr_ops.recent_jobs AS
    SELECT j.id, j.pipeline, j.status, j.attempts, j.max_attempts, j.worker,
           j.created_at, j.started_at, j.completed_at,
           j.completed_at OPERATOR(pg_catalog.-) j.started_at AS duration,
           (SELECT c.stage FROM adr_ops.job_checkpoints c
             WHERE c.job_id OPERATOR(pg_catalog.=) j.id ORDER BY c.seq DESC LIMIT 1) AS last_stage,
           j.last_error
      FROM adr_ops.processing_jobs j
     WHERE j.created_at OPERATOR(pg_catalog.>)
           (pg_catalog.now() OPERATOR(pg_catalog.-) '24 hours'::pg_catalog.interval)
     ORDER BY j.created_at DESC, j.id DESC;
COMMENT ON VIEW adr_ops.recent_jobs IS 'the jobs of the last 24 hours, newest first';

-- The job queue is the platform's data: pg_dump keeps it.
SELECT pg_catalog.pg_extension_config_dump('adr_ops.processing_jobs', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.processing_jobs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.job_checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.job_events', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.job_events_id_seq', '');

GRANT SELECT ON adr_ops.recent_jobs TO pg_monitor;
GRANT SELECT ON adr_ops.processing_jobs, adr_ops.job_checkpoints, adr_ops.job_events,
                adr_ops.job_transitions TO pg_monitor;

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'adr_ops._job_stale_after()',
        'adr_ops._job_move(bigint, text, text, boolean, text, text, timestamptz, jsonb)',
        'adr_ops.adr_job_submit(text, jsonb, integer)', 'adr_ops.adr_job_claim(text, text)',
        'adr_ops.adr_job_heartbeat(bigint)', 'adr_ops.adr_job_checkpoint(bigint, text, jsonb)',
        'adr_ops.adr_job_complete(bigint)', 'adr_ops.adr_job_fail(bigint, text)',
        'adr_ops.adr_job_cancel(bigint)', 'adr_ops.adr_job_restart(bigint, boolean, boolean)',
        'adr_ops.adr_job_reap()', 'adr_ops.adr_pipeline_status(interval)'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
    EXECUTE 'GRANT EXECUTE ON FUNCTION adr_ops.adr_pipeline_status(interval), adr_ops._job_stale_after() TO pg_monitor';
END
$grants$;

-- The reaper runs every minute through the scheduler.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('job_reaper', '* * * * *', 'job_reaper', pg_catalog.current_database());

-- statements: slow queries with history (runbook: Performance
-- Troubleshooting, "high response times") ----------------------------------

-- The query that reads pg_stat_statements wherever it is installed, with
-- the column names the installed version has (total_time before 13,
-- total_exec_time from 13), found from the view's columns.  Every reader
-- below runs it; none ever resets the counters.
CREATE FUNCTION adr_ops._pgss_query(showtext boolean) RETURNS text
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    cols text[];
BEGIN
    SELECT n.nspname INTO nsp
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_stat_statements';
    IF nsp IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = 'pg_stat_statements is not installed in this database',
            DETAIL = 'adr_ops reads query statistics from pg_stat_statements.',
            HINT = 'Add pg_stat_statements to "shared_preload_libraries" and restart the server, then run CREATE EXTENSION pg_stat_statements in this database.';
    END IF;
    SELECT array_agg(a.attname::text) INTO cols
      FROM pg_attribute a
     WHERE a.attrelid = format('%I.pg_stat_statements', nsp)::regclass
       AND a.attnum > 0 AND NOT a.attisdropped;
    RETURN format('SELECT s.userid, s.dbid, %s AS toplevel, s.queryid, %s AS query, s.calls, '
                  '       s.%I AS total_ms, s.%I AS max_ms, s.%I AS stddev_ms, s.rows, '
                  '       s.shared_blks_hit AS blks_hit, s.shared_blks_read AS blks_read '
                  '  FROM %I.pg_stat_statements(%L) s WHERE s.queryid IS NOT NULL',
                  CASE WHEN 'toplevel' = ANY (cols) THEN 's.toplevel' ELSE 'true' END,
                  CASE WHEN showtext THEN 's.query' ELSE 'NULL::text' END,
                  CASE WHEN 'total_exec_time' = ANY (cols) THEN 'total_exec_time' ELSE 'total_time' END,
                  CASE WHEN 'max_exec_time' = ANY (cols) THEN 'max_exec_time' ELSE 'max_time' END,
                  CASE WHEN 'stddev_exec_time' = ANY (cols) THEN 'stddev_exec_time' ELSE 'stddev_time' END,
                  nsp, showtext);
END
$$;
COMMENT ON FUNCTION adr_ops._pgss_query(boolean) IS
    'API: private. The SELECT that reads pg_stat_statements with normalized column names';

-- When pg_stat_statements was last reset (its _info view, 14 and later).
CREATE FUNCTION adr_ops._pgss_reset_at() RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    info regclass;
    reset_at timestamptz;
BEGIN
    SELECT format('%I.pg_stat_statements_info', n.nspname)::regclass INTO info
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
      JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'pg_stat_statements_info'
     WHERE e.extname = 'pg_stat_statements';
    IF info IS NOT NULL THEN
        EXECUTE format('SELECT stats_reset FROM %s', info) INTO reset_at;
    END IF;
    RETURN reset_at;
END
$$;
COMMENT ON FUNCTION adr_ops._pgss_reset_at() IS
    'API: private. pg_stat_statements_info.stats_reset, or NULL before 14';

-- History.  A snapshot stores the cumulative counters of the entries that
-- changed since the previous one; statement_last holds each entry's newest
-- stored values, and the query text is kept once per entry.
CREATE TABLE adr_ops.statement_snapshots (
    id bigserial PRIMARY KEY,
    taken_at timestamptz NOT NULL,
    stats_reset timestamptz,
    entries integer NOT NULL,
    changed integer NOT NULL
);
CREATE INDEX statement_snapshots_taken_at ON adr_ops.statement_snapshots (taken_at);
COMMENT ON TABLE adr_ops.statement_snapshots IS
    'one row per adr_snapshot_statements(): when, the pg_stat_statements reset time, entries seen and stored';

CREATE TABLE adr_ops.statement_counters (
    snapshot_id bigint NOT NULL REFERENCES adr_ops.statement_snapshots (id) ON DELETE CASCADE,
    queryid bigint NOT NULL,
    userid oid NOT NULL,
    dbid oid NOT NULL,
    toplevel boolean NOT NULL,
    calls bigint NOT NULL,
    total_ms float8 NOT NULL,
    rows bigint NOT NULL,
    blks_hit bigint NOT NULL,
    blks_read bigint NOT NULL,
    PRIMARY KEY (queryid, userid, dbid, toplevel, snapshot_id)
);
CREATE INDEX statement_counters_snapshot ON adr_ops.statement_counters (snapshot_id);
COMMENT ON TABLE adr_ops.statement_counters IS
    'cumulative pg_stat_statements counters of the entries that changed at each snapshot';

CREATE TABLE adr_ops.statement_last (
    queryid bigint NOT NULL,
    userid oid NOT NULL,
    dbid oid NOT NULL,
    toplevel boolean NOT NULL,
    calls bigint NOT NULL,
    snapshot_id bigint NOT NULL,
    PRIMARY KEY (queryid, userid, dbid, toplevel)
);
COMMENT ON TABLE adr_ops.statement_last IS
    'each entry''s calls at the snapshot that last stored it: what the next snapshot compares with';

CREATE TABLE adr_ops.statement_texts (
    queryid bigint NOT NULL,
    userid oid NOT NULL,
    dbid oid NOT NULL,
    query text NOT NULL,
    PRIMARY KEY (queryid, userid, dbid)
);
COMMENT ON TABLE adr_ops.statement_texts IS 'the query text of each stored entry, once';

GRANT SELECT ON adr_ops.statement_snapshots, adr_ops.statement_counters,
                adr_ops.statement_last, adr_ops.statement_texts TO pg_monitor;

-- Retention of the history (adr_ops.snapshot_retention, default 30 days).
CREATE FUNCTION adr_ops._snapshot_retention() RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('adr_ops.snapshot_retention', true), ''), '30d')::interval
$$;
COMMENT ON FUNCTION adr_ops._snapshot_retention() IS
    'API: private. adr_ops.snapshot_retention as an interval';

CREATE FUNCTION adr_ops.adr_snapshot_statements() RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    snap bigint;
    seen integer;
    stored integer;
    cutoff timestamptz := now() - adr_ops._snapshot_retention();
    keep_from bigint;
BEGIN
    -- Counters only: reading the texts loads pg_stat_statements' whole
    -- text file, so that is done below for new entries alone.
    INSERT INTO adr_ops.statement_snapshots (taken_at, stats_reset, entries, changed)
    VALUES (clock_timestamp(), adr_ops._pgss_reset_at(), 0, 0)
    RETURNING id INTO snap;

    EXECUTE format($q$
        WITH cur AS (%s), stored AS (
            INSERT INTO adr_ops.statement_counters
                   (snapshot_id, queryid, userid, dbid, toplevel, calls, total_ms, rows, blks_hit, blks_read)
            SELECT $1, c.queryid, c.userid, c.dbid, c.toplevel, c.calls, c.total_ms, c.rows,
                   c.blks_hit, c.blks_read
              FROM cur c
              LEFT JOIN adr_ops.statement_last l
                ON (l.queryid, l.userid, l.dbid, l.toplevel) = (c.queryid, c.userid, c.dbid, c.toplevel)
             WHERE l.calls IS DISTINCT FROM c.calls
            RETURNING 1)
        SELECT (SELECT count(*) FROM cur), (SELECT count(*) FROM stored)$q$,
        adr_ops._pgss_query(false))
      INTO seen, stored USING snap;
    UPDATE adr_ops.statement_snapshots SET entries = seen, changed = stored WHERE id = snap;

    INSERT INTO adr_ops.statement_last AS l (queryid, userid, dbid, toplevel, calls, snapshot_id)
    SELECT c.queryid, c.userid, c.dbid, c.toplevel, c.calls, c.snapshot_id
      FROM adr_ops.statement_counters c WHERE c.snapshot_id = snap
    ON CONFLICT (queryid, userid, dbid, toplevel)
    DO UPDATE SET calls = EXCLUDED.calls, snapshot_id = EXCLUDED.snapshot_id;

    IF EXISTS (SELECT FROM adr_ops.statement_counters c WHERE c.snapshot_id = snap
                AND NOT EXISTS (SELECT FROM adr_ops.statement_texts t
                                 WHERE (t.queryid, t.userid, t.dbid) = (c.queryid, c.userid, c.dbid))) THEN
        EXECUTE format($q$
            INSERT INTO adr_ops.statement_texts (queryid, userid, dbid, query)
            SELECT DISTINCT ON (s.queryid, s.userid, s.dbid) s.queryid, s.userid, s.dbid, s.query
              FROM (%s) s
             WHERE s.query IS NOT NULL
               AND EXISTS (SELECT FROM adr_ops.statement_counters c WHERE c.snapshot_id = $1
                              AND (c.queryid, c.userid, c.dbid) = (s.queryid, s.userid, s.dbid))
            ON CONFLICT DO NOTHING$q$, adr_ops._pgss_query(true)) USING snap;
    END IF;

    -- Prune what is older than the retention, but keep for every entry the
    -- row in force at the oldest kept snapshot: deltas from it need that.
    SELECT min(s.id) INTO keep_from FROM adr_ops.statement_snapshots s WHERE s.taken_at >= cutoff;
    DELETE FROM adr_ops.statement_counters c
     WHERE c.snapshot_id < keep_from
       AND EXISTS (SELECT FROM adr_ops.statement_counters n
                    WHERE (n.queryid, n.userid, n.dbid, n.toplevel) = (c.queryid, c.userid, c.dbid, c.toplevel)
                      AND n.snapshot_id > c.snapshot_id AND n.snapshot_id <= keep_from);
    DELETE FROM adr_ops.statement_snapshots s
     WHERE s.taken_at < cutoff
       AND NOT EXISTS (SELECT FROM adr_ops.statement_counters c WHERE c.snapshot_id = s.id);
    DELETE FROM adr_ops.statement_texts t
     WHERE NOT EXISTS (SELECT FROM adr_ops.statement_counters c
                        WHERE (c.queryid, c.userid, c.dbid) = (t.queryid, t.userid, t.dbid));
    RETURN stored;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_snapshot_statements() IS
    'stores the pg_stat_statements entries that changed since the last snapshot; returns how many';
REVOKE ALL ON FUNCTION adr_ops.adr_snapshot_statements() FROM PUBLIC;

-- The runbook's "WHERE mean_time > 1000 ORDER BY mean_time DESC".  With
-- since, the figures are deltas from the newest snapshot taken at or before
-- now() - since; partial says a row's delta could not be taken whole (a
-- reset or an eviction inside the window, or history shorter than it), and
-- then its figures are those since the reset, never negative.
CREATE FUNCTION adr_ops.adr_slow_queries(
    min_mean_ms float8 DEFAULT 1000, max_rows integer DEFAULT 10, since interval DEFAULT NULL,
    OUT queryid bigint, OUT dbname name, OUT username name, OUT calls bigint,
    OUT total_ms float8, OUT mean_ms float8, OUT max_ms float8, OUT stddev_ms float8,
    OUT rows bigint, OUT hit_ratio float8, OUT pct_of_total float8, OUT query text,
    OUT partial boolean)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    base adr_ops.statement_snapshots;
    reset_in_window boolean;
    short_history boolean;
BEGIN
    IF adr_slow_queries.min_mean_ms IS NULL OR adr_slow_queries.max_rows IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'min_mean_ms and max_rows must not be null';
    END IF;

    IF adr_slow_queries.since IS NULL THEN
        -- One pass over the view: the total for pct_of_total and the slow
        -- entries together, so that the 5000 texts are not copied twice.
        RETURN QUERY EXECUTE format($q$
            WITH agg AS (
                SELECT sum(s.total_ms) FILTER (WHERE s.toplevel) AS grand,
                       array_agg(s) FILTER (WHERE s.calls > 0 AND s.total_ms / s.calls > $1) AS slow
                  FROM (%s) s)
            SELECT x.queryid, d.datname, r.rolname, x.calls, x.total_ms, x.total_ms / x.calls,
                   x.max_ms, x.stddev_ms, x.rows,
                   x.blks_hit::float8 / nullif(x.blks_hit + x.blks_read, 0),
                   100 * x.total_ms / nullif(agg.grand, 0),
                   x.query, false
              FROM agg
             CROSS JOIN LATERAL unnest(agg.slow)
                   AS x(userid oid, dbid oid, toplevel boolean, queryid bigint, query text,
                        calls bigint, total_ms float8, max_ms float8, stddev_ms float8,
                        rows bigint, blks_hit bigint, blks_read bigint)
              LEFT JOIN pg_database d ON d.oid = x.dbid
              LEFT JOIN pg_roles r ON r.oid = x.userid
             ORDER BY x.total_ms / x.calls DESC, x.queryid
             LIMIT $2$q$, adr_ops._pgss_query(true))
        USING adr_slow_queries.min_mean_ms, adr_slow_queries.max_rows;
        RETURN;
    END IF;

    SELECT * INTO base FROM adr_ops.statement_snapshots s
     WHERE s.taken_at <= now() - adr_slow_queries.since ORDER BY s.taken_at DESC LIMIT 1;
    short_history := NOT FOUND;
    IF short_history THEN
        SELECT * INTO base FROM adr_ops.statement_snapshots s ORDER BY s.taken_at LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
                MESSAGE = 'there is no statement snapshot to measure from',
                DETAIL = 'With since, the figures are deltas from a snapshot taken by adr_snapshot_statements().',
                HINT = 'Call adr_snapshot_statements(), or let the statement_snapshot schedule take one.';
        END IF;
    END IF;
    -- The snapshot recorded the reset time it saw; another one now means a
    -- reset since.
    reset_in_window := adr_ops._pgss_reset_at() IS DISTINCT FROM base.stats_reset;
    -- Before the retention cutoff baselines may have been pruned.
    short_history := short_history OR base.taken_at < now() - adr_ops._snapshot_retention();

    RETURN QUERY EXECUTE format($q$
        WITH cur AS (%s),
        b AS (SELECT DISTINCT ON (c.queryid, c.userid, c.dbid, c.toplevel) c.*
                FROM adr_ops.statement_counters c
               WHERE c.snapshot_id <= $1
               ORDER BY c.queryid, c.userid, c.dbid, c.toplevel, c.snapshot_id DESC),
        d AS (SELECT cur.*,
                     -- no baseline: the entry is new in the window; counters
                     -- below the baseline: it was reset or evicted
                     $3 OR coalesce(b.calls > cur.calls OR b.total_ms > cur.total_ms OR b.rows > cur.rows
                                    OR b.blks_hit > cur.blks_hit OR b.blks_read > cur.blks_read,
                                    false) AS reset,
                     b.calls AS b_calls, b.total_ms AS b_total, b.rows AS b_rows,
                     b.blks_hit AS b_hit, b.blks_read AS b_read
                FROM cur LEFT JOIN b
                  ON (b.queryid, b.userid, b.dbid, b.toplevel) = (cur.queryid, cur.userid, cur.dbid, cur.toplevel)),
        w AS (SELECT d.queryid, d.userid, d.dbid, d.toplevel, d.query,
                     CASE WHEN d.reset OR d.b_calls IS NULL THEN d.calls ELSE d.calls - d.b_calls END AS calls,
                     CASE WHEN d.reset OR d.b_calls IS NULL THEN d.total_ms ELSE d.total_ms - d.b_total END AS total_ms,
                     CASE WHEN d.reset OR d.b_calls IS NULL THEN d.rows ELSE d.rows - d.b_rows END AS rows,
                     CASE WHEN d.reset OR d.b_calls IS NULL THEN d.blks_hit ELSE d.blks_hit - d.b_hit END AS hit,
                     CASE WHEN d.reset OR d.b_calls IS NULL THEN d.blks_read ELSE d.blks_read - d.b_read END AS rd,
                     d.reset OR $4 AS partial
                FROM d)
        SELECT w.queryid, db.datname, r.rolname, w.calls, w.total_ms, w.total_ms / w.calls,
               NULL::float8, NULL::float8, w.rows,
               w.hit::float8 / nullif(w.hit + w.rd, 0),
               100 * w.total_ms / nullif((SELECT sum(a.total_ms) FROM w a WHERE a.toplevel), 0),
               w.query, w.partial
          FROM w
          LEFT JOIN pg_database db ON db.oid = w.dbid
          LEFT JOIN pg_roles r ON r.oid = w.userid
         WHERE w.calls > 0 AND w.total_ms / w.calls > $2
         ORDER BY w.total_ms / w.calls DESC, w.queryid
         LIMIT $5$q$, adr_ops._pgss_query(true))
    USING base.id, adr_slow_queries.min_mean_ms, coalesce(reset_in_window, false), short_history,
          adr_slow_queries.max_rows;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_slow_queries(float8, integer, interval) IS
    'the statements slowest on average (pg_stat_statements), over all time or, from snapshots, over a window';

-- One row per snapshot interval of a statement, for dashboards.
CREATE FUNCTION adr_ops.adr_query_trend(queryid bigint, since interval DEFAULT '7 days',
    OUT interval_start timestamptz, OUT interval_end timestamptz,
    OUT calls bigint, OUT total_ms float8, OUT mean_ms float8)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH snaps AS (
        SELECT s.id, s.taken_at, lag(s.taken_at) OVER (ORDER BY s.taken_at) AS prev_at
          FROM adr_ops.statement_snapshots s
    ), rows AS (
        SELECT c.snapshot_id, c.calls, c.total_ms,
               lag(c.calls) OVER w AS prev_calls, lag(c.total_ms) OVER w AS prev_total
          FROM adr_ops.statement_counters c
         WHERE c.queryid = adr_query_trend.queryid
        WINDOW w AS (PARTITION BY c.userid, c.dbid, c.toplevel ORDER BY c.snapshot_id)
    ), deltas AS (
        -- a first sighting, or counters that went down (a reset), count whole
        SELECT r.snapshot_id,
               sum(CASE WHEN r.prev_calls IS NULL OR r.calls < r.prev_calls OR r.total_ms < r.prev_total
                        THEN r.calls ELSE r.calls - r.prev_calls END) AS calls,
               sum(CASE WHEN r.prev_calls IS NULL OR r.calls < r.prev_calls OR r.total_ms < r.prev_total
                        THEN r.total_ms ELSE r.total_ms - r.prev_total END) AS total_ms
          FROM rows r GROUP BY r.snapshot_id
    )
    SELECT s.prev_at, s.taken_at, coalesce(d.calls, 0)::bigint, coalesce(d.total_ms, 0),
           d.total_ms / nullif(d.calls, 0)
      FROM snaps s LEFT JOIN deltas d ON d.snapshot_id = s.id
     WHERE s.taken_at >= now() - adr_query_trend.since AND s.prev_at IS NOT NULL
     ORDER BY s.taken_at
$$;
COMMENT ON FUNCTION adr_ops.adr_query_trend(bigint, interval) IS
    'calls, total and mean time of one statement per snapshot interval';

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['adr_ops._pgss_query(boolean)', 'adr_ops._pgss_reset_at()',
                             'adr_ops._snapshot_retention()',
                             'adr_ops.adr_slow_queries(float8, integer, interval)',
                             'adr_ops.adr_query_trend(bigint, interval)'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pg_monitor', f);
    END LOOP;
END
$grants$;

-- Snapshots every hour through the scheduler.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('statement_snapshot', '0 * * * *', 'statement_snapshot', pg_catalog.current_database());

-- perf: the other investigations of performance troubleshooting (runbook:
-- Performance Troubleshooting: lock contention, connection pool, indexes,
-- cache hit rates, memory-consuming processes) ------------------------------

-- Lock waits.  One row per session waiting for a heavyweight lock: a backend
-- waits for one lock at a time, so it has one ungranted row in pg_locks.
-- The wait starts at pg_locks.waitstart; a wait younger than
-- deadlock_timeout may not have it yet, so fall back to state_change.
-- waitstart is read through jsonb because 13 has no such column.  A
-- relation in another database has no name here: relation is NULL then.
CREATE FUNCTION adr_ops.adr_lock_waits(
    OUT waiting_pid int, OUT blocking_pids int[], OUT wait_duration interval,
    OUT locktype text, OUT mode text, OUT relation regclass,
    OUT waiting_query text, OUT blocking_query text,
    OUT waiting_user name, OUT blocking_user name, OUT database name)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH w AS (
        SELECT DISTINCT ON (l.pid)
               l.pid, l.locktype, l.mode,
               -- an OID of another database would name the wrong relation here
               CASE WHEN l.database = 0
                         OR l.database = (SELECT d.oid FROM pg_database d
                                           WHERE d.datname = current_database())
                    THEN l.relation END AS relation,
               (to_jsonb(l) ->> 'waitstart')::timestamptz AS waitstart
          FROM pg_locks l
         WHERE NOT l.granted AND l.pid IS NOT NULL
         ORDER BY l.pid, (to_jsonb(l) ->> 'waitstart')::timestamptz NULLS LAST
    ), b AS (
        SELECT w.*, pg_blocking_pids(w.pid) AS blockers FROM w
    )
    SELECT b.pid, b.blockers,
           now() - coalesce(b.waitstart, a.state_change),
           b.locktype, b.mode, b.relation::regclass,
           a.query, h.query, a.usename, h.usename, a.datname
      FROM b
      JOIN pg_stat_activity a ON a.pid = b.pid
      LEFT JOIN pg_stat_activity h ON h.pid = b.blockers[1]
     ORDER BY 3 DESC NULLS LAST, 1
$$;
COMMENT ON FUNCTION adr_ops.adr_lock_waits() IS
    'sessions waiting for a lock, longest wait first: who blocks them (pg_blocking_pids; 0 is a prepared transaction), for how long, the lock type, mode and relation (NULL unless the lock is on a relation of this database or a page or tuple of one), both queries (the first blocker''s), users and database: the runbook''s "monitor lock contention"';
REVOKE ALL ON FUNCTION adr_ops.adr_lock_waits() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_lock_waits() TO pg_monitor;

-- Connection pool status.  Client backends only: they are what uses
-- max_connections (walsenders and background workers have their own
-- limits).  The slots are max_connections less those reserved for
-- superusers (and, from 16, for pg_use_reserved_connections), as in
-- adr_health_check().  pg_stat_activity shows the backend type and state
-- of other users' sessions only to members of pg_read_all_stats (which
-- pg_monitor is): anyone else sees only its own sessions counted here.
CREATE FUNCTION adr_ops.adr_connection_summary(
    OUT database name, OUT username name, OUT application_name text, OUT state text,
    OUT sessions bigint, OUT oldest_idle_in_transaction interval,
    OUT pct_of_slots float8, OUT all_clients_pct float8)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH c AS (
        SELECT a.datname, a.usename, a.application_name, a.state, a.state_change
          FROM pg_stat_activity a
         WHERE a.backend_type = 'client backend'
    ), s AS (
        SELECT (SELECT count(*) FROM c) AS used,
               nullif(current_setting('max_connections')::int
                      - current_setting('superuser_reserved_connections')::int
                      - coalesce(current_setting('reserved_connections', true)::int, 0), 0) AS slots
    )
    SELECT c.datname, c.usename, c.application_name, c.state, count(*),
           now() - min(c.state_change) FILTER (WHERE c.state IN ('idle in transaction',
                                                                  'idle in transaction (aborted)')),
           round(100.0 * count(*) / s.slots, 1)::float8,
           round(100.0 * s.used / s.slots, 1)::float8
      FROM c CROSS JOIN s
     GROUP BY c.datname, c.usename, c.application_name, c.state, s.used, s.slots
     ORDER BY 1, 2, 3, 4
$$;
COMMENT ON FUNCTION adr_ops.adr_connection_summary() IS
    'client sessions grouped by database, username, application_name and state: sessions in the group, the age of its oldest session idle in transaction (NULL if none), the group''s and all client sessions'' % of the connection slots (max_connections less superuser_reserved_connections and reserved_connections); without pg_read_all_stats only the caller''s own sessions count: the runbook''s "check connection pool status"';
REVOKE ALL ON FUNCTION adr_ops.adr_connection_summary() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_connection_summary() TO pg_monitor;

-- Index advice.  Findings, at most one per index, in this order of
-- precedence: invalid, duplicate, redundant, unused.  The rules:
--
-- * invalid: NOT indisvalid, unless a CREATE INDEX or REINDEX is building it
--   right now.  Leftovers of a failed REINDEX CONCURRENTLY (_ccnew, _ccold)
--   are dropped, as the REINDEX documentation says; others are rebuilt.  A
--   partitioned index is invalid until every partition has one attached:
--   no statement, the evidence says so.
-- * duplicate: same table, key and INCLUDE columns, expressions, predicate,
--   operator classes, collations and sort options (and, for 15's unique
--   NULLS NOT DISTINCT, that too).  One of the set is kept: the one a
--   foreign key depends on, else the one that backs a constraint, else a
--   unique one, else the replica identity, else the most scanned (the one
--   the planner picks: its scans still count once its twins are gone), else
--   the oldest; the others are reported.  An index that a foreign key
--   depends on is never reported (it cannot be dropped alone).
-- * redundant: a btree index without predicate, expressions or INCLUDE
--   columns whose keys lead another valid btree index without predicate,
--   with the same operator classes, collations and options, that stays:
--   kept from its duplicates, and scanned or protected (below).  A
--   protected index is never redundant, except for covering a foreign key,
--   which the longer index does as well.
-- * unused: no scans since the statistics were reset (a kept duplicate
--   counts its twins' scans, which will come to it; NB: an index created
--   since the reset has had less time), and not protected.  Protected are
--   unique, constraint and replica identity indexes, indexes a foreign key
--   depends on, and indexes that cover a foreign key of their table (they
--   serve the check when a referenced row is deleted, which may be rare).
-- * sequential scans: a table scanned sequentially more than 100 times,
--   reading more than 10000 rows a scan on average, more often than through
--   its indexes.  pg_stats may suggest a column (more than 100 distinct
--   values, |correlation| < 0.1, not the first column of an index); the
--   statement is only given for such a column, and never on pg_stats alone.
-- * foreign key without index: no valid btree index without predicate has
--   the foreign key's columns, in any order, as its leading keys.
--
-- Nothing here takes a lock on the tables, so that the advice never waits
-- behind an ACCESS EXCLUSIVE lock: sizes come from pg_class.relpages (as of
-- the last VACUUM, ANALYZE or CREATE INDEX) rather than pg_relation_size(),
-- and expressions are compared as node trees rather than through
-- pg_get_expr(); both would lock.  An index attached to a partitioned index
-- goes with its parent, whose scans and size are those of its partitions'.
-- Statements on partitioned tables go without CONCURRENTLY, which they do
-- not support.  Extension members, system schemas, temporary schemas and
-- adr_ops are left out.
CREATE FUNCTION adr_ops.adr_index_advice(
    OUT finding text, OUT object text, OUT table_name text, OUT evidence text,
    OUT statement text)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE
    since AS (
        SELECT 'since ' || coalesce('the statistics were reset at '
                                    || date_trunc('second', d.stats_reset)::text,
                                    'the statistics began') AS txt
          FROM pg_stat_database d WHERE d.datname = current_database()
    ),
    -- the leaves under each partitioned table and index
    ptree (root, relid) AS (
        SELECT c.oid, c.oid FROM pg_class c WHERE c.relkind IN ('p', 'I')
        UNION ALL
        SELECT p.root, i.inhrelid FROM ptree p JOIN pg_inherits i ON i.inhparent = p.relid
    ),
    pleaf AS (
        SELECT p.root, sum(pg_stat_get_numscans(c.oid)) AS scans,
               sum(c.relpages::bigint * current_setting('block_size')::bigint) AS bytes,
               CASE WHEN max(c.reltuples) < 0 THEN -1
                    ELSE sum(greatest(c.reltuples, 0)) END AS tuples
          FROM ptree p JOIN pg_class c ON c.oid = p.relid AND c.relkind IN ('r', 'm', 'i')
         GROUP BY p.root
    ),
    tbl AS (
        SELECT c.oid, c.relkind, c.relname, n.nspname,
               format('%I.%I', n.nspname, c.relname) AS qname,
               CASE WHEN c.relkind = 'p' THEN coalesce(pl.tuples, -1)
                    ELSE c.reltuples END AS tuples,
               CASE WHEN coalesce(pl.tuples, c.reltuples) < 0 THEN 'not analyzed yet'
                    ELSE format('size %s, about %s rows',
                                pg_size_pretty(coalesce(pl.bytes,
                                                        c.relpages::bigint
                                                        * current_setting('block_size')::bigint)),
                                coalesce(pl.tuples, c.reltuples)::bigint) END AS facts,
               CASE WHEN c.relkind = 'p' THEN '' ELSE 'CONCURRENTLY ' END AS conc,
               CASE WHEN c.relkind = 'p'
                    THEN '; a partitioned table does not support CONCURRENTLY, so the statement locks it'
                    ELSE '' END AS note
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pleaf pl ON pl.root = c.oid
         WHERE c.relkind IN ('r', 'm', 'p')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'adr_ops')
           AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
           AND NOT EXISTS (SELECT FROM pg_depend d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                              AND d.deptype = 'e')
    ),
    fkey AS (
        SELECT k.conname, k.conrelid, k.confrelid, k.conkey
          FROM pg_constraint k
         WHERE k.contype = 'f' AND k.conparentid = 0
    ),
    -- valid btree indexes without predicate that lead with a foreign key's columns
    fk_covers AS (
        SELECT x.indexrelid, f.conname, f.conrelid
          FROM pg_index x
          JOIN pg_class ic ON ic.oid = x.indexrelid
          JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
          JOIN fkey f ON f.conrelid = x.indrelid
         WHERE x.indisvalid AND x.indpred IS NULL
           AND cardinality(f.conkey) <= x.indnkeyatts
           AND (x.indkey::int2[])[0:cardinality(f.conkey) - 1] @> f.conkey
           AND (x.indkey::int2[])[0:cardinality(f.conkey) - 1] <@ f.conkey
    ),
    idx AS (
        SELECT x.indexrelid AS oid, x.indrelid, t.qname AS table_qname, t.conc, t.note,
               format('%I.%I', t.nspname, ic.relname) AS qname, ic.relname, ic.relkind,
               am.amname, x.indisunique, x.indisprimary, x.indisvalid, x.indisreplident,
               x.indnatts, x.indnkeyatts,
               (x.indkey::int2[])[0:x.indnkeyatts - 1] AS keys,
               x.indkey::int2[] AS allcols,
               (x.indclass::oid[])[0:x.indnkeyatts - 1] AS opclasses,
               (x.indcollation::oid[])[0:x.indnkeyatts - 1] AS collations,
               (x.indoption::int2[])[0:x.indnkeyatts - 1] AS options,
               regexp_replace(x.indexprs::text, ' :location -?[0-9]+', '', 'g') AS exprs,
               regexp_replace(x.indpred::text, ' :location -?[0-9]+', '', 'g') AS pred,
               x.indisunique AND coalesce((to_jsonb(x) ->> 'indnullsnotdistinct')::boolean, false)
                   AS nulls_not_distinct,
               k.conname AS constraint_name,
               -- (uncorrelated IN: hashed, where EXISTS would rescan per index)
               x.indexrelid IN (SELECT f.conindid FROM pg_constraint f
                                 WHERE f.contype = 'f') AS fk_depends,
               x.indexrelid IN (SELECT c.indexrelid FROM fk_covers c) AS fk_cover,
               CASE WHEN ic.relkind = 'I' THEN coalesce(pl.scans, 0)
                    ELSE pg_stat_get_numscans(x.indexrelid) END AS scans,
               CASE WHEN ic.relkind = 'I' THEN coalesce(pl.bytes, 0)
                    ELSE ic.relpages::bigint * current_setting('block_size')::bigint END AS bytes
          FROM pg_index x
          JOIN tbl t ON t.oid = x.indrelid
          JOIN pg_class ic ON ic.oid = x.indexrelid
          JOIN pg_am am ON am.oid = ic.relam
          LEFT JOIN pg_constraint k
                 ON k.conindid = x.indexrelid AND k.conrelid = x.indrelid
                AND k.contype IN ('p', 'u', 'x')
          LEFT JOIN pleaf pl ON pl.root = x.indexrelid
         WHERE x.indislive AND NOT ic.relispartition
    ),
    -- valid indexes, each with the one of its duplicate set that is kept
    sets AS (
        SELECT i.*,
               i.indisunique OR i.constraint_name IS NOT NULL OR i.indisreplident
               OR i.fk_depends OR i.fk_cover AS protected,
               first_value(i.oid) OVER w AS keep_oid,
               first_value(i.qname) OVER w AS keep_qname,
               sum(i.scans) OVER (PARTITION BY i.indrelid, i.allcols, i.indnkeyatts, i.opclasses,
                                               i.collations, i.options, i.exprs, i.pred,
                                               i.nulls_not_distinct) AS set_scans
          FROM idx i
         WHERE i.indisvalid
        WINDOW w AS (PARTITION BY i.indrelid, i.allcols, i.indnkeyatts, i.opclasses,
                                  i.collations, i.options, i.exprs, i.pred, i.nulls_not_distinct
                     ORDER BY i.fk_depends DESC, i.indisprimary DESC,
                              i.constraint_name IS NOT NULL DESC,
                              i.indisunique DESC, i.indisreplident DESC, i.scans DESC, i.oid)
    ),
    -- The rules as flags: the joins below then filter on one column each,
    -- which the planner estimates well enough to hash 10,000 indexes.
    valid AS (
        SELECT v.*,
               v.oid <> v.keep_oid AND NOT v.fk_depends AS is_dup,
               -- what the advice keeps for certain: kept, and scanned or protected
               v.oid = v.keep_oid AND (v.set_scans > 0 OR v.protected) AS stays,
               -- what may be redundant to a longer btree index that stays
               v.amname = 'btree' AND v.pred IS NULL
               AND (v.oid = v.keep_oid OR v.fk_depends)
               AND NOT (v.indisunique OR v.constraint_name IS NOT NULL OR v.indisreplident
                        OR v.fk_depends)
               AND v.exprs IS NULL AND v.indnatts = v.indnkeyatts AS may_be_redundant
          FROM sets v
    ),
    dup AS (
        SELECT v.* FROM valid v WHERE v.is_dup
    ),
    red AS (
        SELECT DISTINCT ON (a.oid) a.*, s.qname AS covered_by, s.set_scans AS covered_by_scans
          FROM valid a
          JOIN valid s ON s.indrelid = a.indrelid
         WHERE a.may_be_redundant AND s.stays
           AND s.amname = 'btree' AND s.pred IS NULL
           AND cardinality(s.keys) > cardinality(a.keys)
           AND s.keys[1:cardinality(a.keys)] = a.keys
           AND s.opclasses[1:cardinality(a.keys)] = a.opclasses
           AND s.collations[1:cardinality(a.keys)] = a.collations
           AND s.options[1:cardinality(a.keys)] = a.options
         ORDER BY a.oid, cardinality(s.keys) DESC, s.oid
    ),
    findings AS (
        SELECT 1 AS rank, 'invalid index' AS finding, i.qname AS object, i.table_qname,
               format('not valid, so never used by queries yet updated by every write: %s; size %s',
                      CASE WHEN i.relkind = 'I'
                           THEN 'some partitions have no index attached to it; create theirs and ALTER INDEX ... ATTACH PARTITION them'
                           WHEN i.relname ~ '_cc(new|old)[0-9]*$'
                           THEN 'left over by a REINDEX CONCURRENTLY that failed'
                           WHEN i.indisunique
                           THEN 'a CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY failed (a unique index fails again while duplicate keys remain)'
                           ELSE 'a CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY failed'
                      END,
                      pg_size_pretty(i.bytes)) AS evidence,
               CASE WHEN i.relkind = 'I' THEN NULL
                    WHEN i.relname ~ '_cc(new|old)[0-9]*$'
                    THEN format('DROP INDEX CONCURRENTLY %s;', i.qname)
                    ELSE format('REINDEX INDEX CONCURRENTLY %s;', i.qname) END AS statement
          FROM idx i
         WHERE NOT i.indisvalid
           AND NOT EXISTS (SELECT FROM pg_stat_progress_create_index p
                            WHERE p.index_relid = i.oid)
        UNION ALL
        SELECT 2, 'duplicate index', d.qname, d.table_qname,
               format('same definition as %s, which is kept; index scans %s: %s on this one, %s on all of them; size %s%s',
                      d.keep_qname, (SELECT txt FROM since), d.scans, d.set_scans,
                      pg_size_pretty(d.bytes), d.note),
               CASE WHEN d.constraint_name IS NOT NULL
                    THEN format('ALTER TABLE %s DROP CONSTRAINT %I;', d.table_qname, d.constraint_name)
                    ELSE format('DROP INDEX %s%s;', d.conc, d.qname) END
          FROM dup d
        UNION ALL
        SELECT 3, 'redundant index', r.qname, r.table_qname,
               format('its columns are the leading columns of %s, which serves the same lookups; index scans %s: %s on this one, %s on %s; size %s%s',
                      r.covered_by, (SELECT txt FROM since), r.scans, r.covered_by_scans,
                      r.covered_by, pg_size_pretty(r.bytes), r.note),
               format('DROP INDEX %s%s;', r.conc, r.qname)
          FROM red r
        UNION ALL
        SELECT 4, 'unused index', v.qname, v.table_qname,
               format('no index scans %s; size %s%s', (SELECT txt FROM since),
                      pg_size_pretty(v.bytes), v.note),
               format('DROP INDEX %s%s;', v.conc, v.qname)
          FROM valid v
         WHERE v.oid = v.keep_oid AND v.set_scans = 0 AND NOT v.protected
           AND v.oid NOT IN (SELECT r.oid FROM red r)
        UNION ALL
        SELECT 5, 'sequential scans', t.qname, t.qname,
               format('%s sequential scans read %s rows each on average (%s in all), against %s index scans, %s; table %s; %s',
                      s.seq_scan, s.seq_tup_read / nullif(s.seq_scan, 0), s.seq_tup_read,
                      coalesce(s.idx_scan, 0), (SELECT txt FROM since), t.facts,
                      CASE WHEN cand.cols IS NOT NULL
                           THEN 'pg_stats suggests ' || cand.cols
                                || '; check that the slow queries filter on it before creating the index'
                           WHEN NOT has_any_column_privilege(t.oid, 'SELECT')
                           THEN 'its column statistics (pg_stats) are not visible to this role'
                           ELSE 'no column stands out in pg_stats: look for the filter in the slow queries'
                      END),
               CASE WHEN cand.best IS NOT NULL
                    THEN format('CREATE INDEX %sIF NOT EXISTS %I ON %s (%I);', t.conc,
                                left(t.relname || '_' || cand.best, 59) || '_idx', t.qname, cand.best)
               END
          FROM tbl t
          JOIN pg_stat_all_tables s ON s.relid = t.oid
          LEFT JOIN LATERAL (
                SELECT string_agg(format('%I (about %s distinct values, correlation %s)',
                                         c.attname, c.distinct_values,
                                         round(c.correlation::numeric, 2)),
                                  ', ' ORDER BY c.distinct_values DESC, c.attname) AS cols,
                       (array_agg(c.attname ORDER BY c.distinct_values DESC, c.attname))[1] AS best
                  FROM (SELECT st.attname, st.correlation,
                               round(CASE WHEN st.n_distinct >= 0 THEN st.n_distinct
                                          ELSE -st.n_distinct * greatest(t.tuples, 0) END)::bigint
                                   AS distinct_values
                          FROM pg_stats st
                          JOIN pg_attribute att ON att.attrelid = t.oid AND att.attname = st.attname
                         WHERE st.schemaname = t.nspname AND st.tablename = t.relname
                           AND NOT st.inherited
                           AND abs(st.correlation) < 0.1
                           AND NOT EXISTS (SELECT FROM pg_index x
                                            WHERE x.indrelid = t.oid
                                              AND x.indkey[0] = att.attnum)) c
                 WHERE c.distinct_values > 100) cand ON true
         WHERE s.seq_scan > 100
           AND s.seq_tup_read / nullif(s.seq_scan, 0) > 10000
           AND s.seq_scan > coalesce(s.idx_scan, 0)
        UNION ALL
        SELECT 6, 'foreign key without index', format('%I.%I', t.nspname, f.conname), t.qname,
               format('deleting or updating a key of %s scans %s (%s) for the rows that reference it%s',
                      f.confrelid::regclass, t.qname, t.facts, t.note),
               format('CREATE INDEX %sIF NOT EXISTS %I ON %s (%s);', t.conc,
                      left(t.relname || '_' || f.names, 59) || '_idx', t.qname, f.collist)
          FROM (SELECT fk.*,
                       string_agg(a.attname, '_' ORDER BY k.n) AS names,
                       string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) AS collist
                  FROM fkey fk
                  CROSS JOIN LATERAL unnest(fk.conkey) WITH ORDINALITY k(attnum, n)
                  JOIN pg_attribute a ON a.attrelid = fk.conrelid AND a.attnum = k.attnum
                 GROUP BY fk.conname, fk.conrelid, fk.confrelid, fk.conkey) f
          JOIN tbl t ON t.oid = f.conrelid
         WHERE NOT EXISTS (SELECT FROM fk_covers c
                            WHERE c.conrelid = f.conrelid AND c.conname = f.conname)
    )
    SELECT f.finding, f.object, f.table_qname, f.evidence, f.statement
      FROM findings f
     ORDER BY f.rank, f.table_qname, f.object
$$;
COMMENT ON FUNCTION adr_ops.adr_index_advice() IS
    'index findings, one row each: invalid, duplicate, redundant and unused indexes (no scans since the statistics reset; not backing a constraint or covering a foreign key), tables read by large sequential scans, foreign keys without an index; with the evidence (sizes from relpages, scan counts) and the statement to run: the runbook''s "check missing indexes" and "review index usage". Scans on a standby are counted only on that standby';
REVOKE ALL ON FUNCTION adr_ops.adr_index_advice() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_index_advice() TO pg_monitor;

-- Cache hit ratios.  A table's blocks are its heap's and its TOAST table's
-- (with the TOAST index); its indexes have rows of their own.  A read is a
-- block not found in shared buffers: the kernel's page cache may still
-- have served it.
CREATE FUNCTION adr_ops.adr_cache_stats(
    OUT schemaname name, OUT relname name, OUT kind text,
    OUT hits bigint, OUT reads bigint, OUT hit_ratio float8)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT b.schemaname, b.relname, b.kind, b.hits, b.reads,
           b.hits::float8 / nullif(b.hits + b.reads, 0)
      FROM (SELECT t.schemaname, t.relname, 'table' AS kind,
                   coalesce(t.heap_blks_hit, 0) + coalesce(t.toast_blks_hit, 0)
                   + coalesce(t.tidx_blks_hit, 0) AS hits,
                   coalesce(t.heap_blks_read, 0) + coalesce(t.toast_blks_read, 0)
                   + coalesce(t.tidx_blks_read, 0) AS reads
              FROM pg_statio_user_tables t
            UNION ALL
            SELECT i.schemaname, i.indexrelname, 'index',
                   coalesce(i.idx_blks_hit, 0), coalesce(i.idx_blks_read, 0)
              FROM pg_statio_user_indexes i) b
     ORDER BY b.reads DESC, b.schemaname, b.relname, b.kind
$$;
COMMENT ON FUNCTION adr_ops.adr_cache_stats() IS
    'shared buffer hits and reads of each user table (heap and TOAST) and index, with hit_ratio = hits / (hits + reads) (NULL before the first access), most reads first: the runbook''s "examine cache hit rates"';
REVOKE ALL ON FUNCTION adr_ops.adr_cache_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_cache_stats() TO pg_monitor;

-- Backend memory, read in C (perf.c) from /proc/<pid>/status.
CREATE FUNCTION adr_ops._proc_memory(
    pid int, OUT rss_bytes bigint, OUT anon_bytes bigint, OUT error text)
RETURNS record
AS 'MODULE_PATHNAME', 'adr_proc_memory'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops._proc_memory(int) IS
    'API: private. Resident (VmRSS) and private (RssAnon) memory of a server process, or why not';
REVOKE ALL ON FUNCTION adr_ops._proc_memory(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._proc_memory(int) TO pg_monitor;

-- Most private memory first: rss_bytes also counts the shared buffers a
-- backend has touched, so it overstates what the backend itself uses.
CREATE FUNCTION adr_ops.adr_backend_memory(
    OUT pid int, OUT backend_type text, OUT username name, OUT database name,
    OUT state text, OUT rss_bytes bigint, OUT anon_bytes bigint, OUT query text,
    OUT error text)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.pid, a.backend_type, a.usename, a.datname, a.state,
           m.rss_bytes, m.anon_bytes, a.query, m.error
      FROM pg_stat_activity a
      CROSS JOIN LATERAL adr_ops._proc_memory(a.pid) m
     ORDER BY m.anon_bytes DESC NULLS LAST, m.rss_bytes DESC NULLS LAST, a.pid
$$;
COMMENT ON FUNCTION adr_ops.adr_backend_memory() IS
    'resident memory of each server process from /proc/<pid>/status, in bytes: rss_bytes (VmRSS, which includes the shared buffers it touched) and anon_bytes (RssAnon, its private memory), with its state and query; error says why the figures are NULL: the runbook''s "identify memory-consuming processes"';
REVOKE ALL ON FUNCTION adr_ops.adr_backend_memory() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_backend_memory() TO pg_monitor;

-- bloat: the runbook's "check for bloat" (Database Maintenance), which only
-- listed sizes, as real bloat in three modes ------------------------------
--
-- estimate: from pg_class, pg_stats, pg_attribute and pg_stat_all_tables,
--     no page read; NULL figures with the reason in method wherever the
--     statistics cannot give a right figure.
-- sample:   a random sample of pages read by bloat.c, extrapolated, with a
--     95% error bound (error_pct).
-- exact:    every page read by bloat.c.
-- Bloat is dead tuples plus free space less what fillfactor reserves on
-- purpose; for estimate, the pages the relation has beyond those its rows
-- need at its fillfactor.  See docs/bloat.md.

-- API: private.  Page reads (bloat.c).
CREATE FUNCTION adr_ops._bloat_scan(rel oid, exact bool, min_bytes bigint,
    OUT total_bytes bigint, OUT bloat_bytes bigint, OUT bloat_pct float8,
    OUT dead_pct float8, OUT free_pct float8, OUT method text,
    OUT error_pct float8, OUT vacuum_pct float8)
RETURNS record
AS 'MODULE_PATHNAME', 'adr_bloat_scan'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION adr_ops._bloat_scan(oid, bool, bigint) IS
    'API: private. One relation''s bloat from its pages (exact: all of them; else a sample of adr_ops.bloat_sample_pages); needs superuser or pg_stat_scan_tables';
REVOKE ALL ON FUNCTION adr_ops._bloat_scan(oid, bool, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._bloat_scan(oid, bool, bigint) TO pg_monitor;

-- API: private.  The size of a relation's main fork without waiting for a
-- lock (pg_relation_size() would): NULL when locked or gone.
CREATE FUNCTION adr_ops._bloat_size(rel oid)
RETURNS bigint
AS 'MODULE_PATHNAME', 'adr_bloat_size'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION adr_ops._bloat_size(oid) IS
    'API: private. Size of the main fork in bytes, NULL if the relation is locked or gone (never waits)';
REVOKE ALL ON FUNCTION adr_ops._bloat_size(oid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._bloat_size(oid) TO pg_monitor;

-- API: private.  Mode estimate for one table, materialized view, TOAST
-- table or btree index; same columns as _bloat_scan.  Runs as the caller:
-- pg_stats shows a column's statistics only to roles that may read the
-- column, and a role that cannot gets "no access to pg_stats".
--
-- The pages are the file's (without waiting for a lock; relpages if the
-- relation is locked).  A heap: tuple width from pg_stats (avg_width is the width as stored:
-- a toasted value counts its 18-byte pointer, a compressed one its
-- compressed size), each column aligned to its typalign (a short varlena
-- has a 1-byte header and no alignment), weighted by 1 - null_frac; the
-- 23-byte header and a null bitmap when a column has nulls, MAXALIGNed;
-- a 4-byte line pointer.  Bloat is counted like the page reads count it:
-- the file's pages less their headers and fillfactor reserve, less the
-- n_live_tup rows, less the line pointers (a page keeps those of the rows
-- it held when it was filled: (block_size - 28 - reserve) / width of
-- them, at most MaxHeapTuplesPerPage).
-- A btree: an 8-byte index tuple header (a 4-byte null bitmap when a key
-- column has nulls), the key and INCLUDE columns, MAXALIGNed, a line
-- pointer; leaves filled to fillfactor (default 90) of block_size - 24 -
-- 16; internal pages at 70%; the meta page.
-- NULL figures, with the reason, when the figure would be wrong:
-- never analyzed (no statistics), more than half the table modified since
-- ANALYZE (stale statistics: the widths may have changed),
-- a column the caller cannot read (no access to pg_stats), expressions and
-- predicates (their entries are not in pg_stats' columns), a non-unique
-- btree with duplicate keys (deduplication packs them, by an amount the
-- statistics do not tell), TOAST tables (never analyzed).
CREATE FUNCTION adr_ops._bloat_estimate(rel oid,
    OUT total_bytes bigint, OUT bloat_bytes bigint, OUT bloat_pct float8,
    OUT dead_pct float8, OUT free_pct float8, OUT method text,
    OUT error_pct float8, OUT vacuum_pct float8)
RETURNS record
LANGUAGE plpgsql STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bs int := current_setting('block_size')::int;
    c record;
    t record;
    a record;
    idx_keys int2[] := '{}';
    idx_unique bool := false;
    idx_include bool := false;
    ff int;
    hdr numeric;
    off numeric := 0;
    nulls bool := false;
    width numeric;
    per_page numeric;
    pages numeric;
    leaves numeric;
    ncols int := 0;
    nstats int := 0;
    table_oid oid := rel;
    distinct_key bool := false;
    live numeric;
    actual numeric;
BEGIN
    SELECT cl.oid, cl.relname, cl.relkind, cl.relpages, cl.reltuples, cl.reloptions,
           cl.relpersistence, am.amname
      INTO c
      FROM pg_class cl LEFT JOIN pg_am am ON am.oid = cl.relam
     WHERE cl.oid = rel;
    IF NOT FOUND THEN
        method := 'relation no longer exists';
        RETURN;
    END IF;
    -- On a hot standby an unlogged relation has no main fork, no pages.
    IF c.relpersistence = 'u' AND pg_is_in_recovery() THEN
        method := 'unlogged relation during recovery';
        RETURN;
    END IF;
    total_bytes := coalesce(adr_ops._bloat_size(rel), c.relpages::bigint * bs);

    IF c.relkind = 't' THEN
        method := 'no statistics (TOAST tables are not analyzed)';
        RETURN;
    ELSIF c.relkind = 'i' AND c.amname IS DISTINCT FROM 'btree' THEN
        method := format('unsupported: %s index', c.amname);
        RETURN;
    ELSIF c.relkind IN ('r', 'm') AND c.amname IS DISTINCT FROM 'heap' THEN
        method := format('unsupported: table access method %s', c.amname);
        RETURN;
    END IF;

    -- The table whose statistics count: itself, or the index's table.
    IF c.relkind = 'i' THEN
        SELECT i.indrelid, i.indisunique, i.indisvalid, i.indexprs IS NOT NULL AS has_expr,
               i.indpred IS NOT NULL AS has_pred, i.indkey::int2[] AS keys,
               i.indnkeyatts < i.indnatts AS has_include
          INTO a FROM pg_index i WHERE i.indexrelid = rel;
        IF NOT FOUND THEN
            method := 'relation no longer exists';
            RETURN;
        ELSIF a.has_expr THEN
            method := 'expression index';
            RETURN;
        ELSIF a.has_pred THEN
            method := 'partial index';
            RETURN;
        ELSIF NOT a.indisvalid THEN
            method := 'invalid index';
            RETURN;
        END IF;
        table_oid := a.indrelid;
        idx_keys := a.keys;
        idx_unique := a.indisunique;
        idx_include := a.has_include;
    END IF;
    SELECT cl.oid, cl.relname, cl.reltuples, n.nspname,
           st.n_live_tup, st.n_dead_tup, st.n_mod_since_analyze
      INTO t
      FROM pg_class cl
      JOIN pg_namespace n ON n.oid = cl.relnamespace
      LEFT JOIN pg_stat_all_tables st ON st.relid = cl.oid
     WHERE cl.oid = table_oid;
    IF NOT FOUND THEN
        method := 'relation no longer exists';
        RETURN;
    END IF;

    IF EXISTS (SELECT FROM pg_attribute at
                WHERE at.attrelid = t.oid AND NOT at.attisdropped AND at.attnum > 0
                  AND (c.relkind <> 'i' OR at.attnum = ANY (idx_keys))
                  AND NOT has_column_privilege(t.oid, at.attnum, 'SELECT')) THEN
        method := 'no access to pg_stats';
        RETURN;
    END IF;
    -- Never vacuumed nor analyzed.  (A table analyzed once has pg_stats
    -- rows even after the statistics counters were reset, which clears
    -- last_analyze: the column loop below decides.)
    IF c.reltuples < 0 THEN
        method := 'no statistics';
        RETURN;
    END IF;
    live := CASE WHEN coalesce(t.n_live_tup, 0) + coalesce(t.n_dead_tup, 0) > 0
                 THEN t.n_live_tup ELSE greatest(t.reltuples, 0) END;
    actual := ceil(total_bytes::numeric / bs);

    -- The columns stored: every live column of a table, the key and
    -- INCLUDE columns of an index.
    FOR a IN
        SELECT at.attname, at.attlen, at.attalign,
               ps.avg_width, ps.null_frac, ps.n_distinct
          FROM pg_attribute at
          LEFT JOIN pg_stats ps ON ps.schemaname OPERATOR(pg_catalog.=) t.nspname
                               AND ps.tablename OPERATOR(pg_catalog.=) t.relname
                               AND ps.attname OPERATOR(pg_catalog.=) at.attname
                               AND NOT ps.inherited
         WHERE at.attrelid = t.oid AND NOT at.attisdropped AND at.attnum > 0
           AND (c.relkind <> 'i' OR at.attnum = ANY (idx_keys))
         ORDER BY CASE WHEN c.relkind = 'i' THEN array_position(idx_keys, at.attnum) ELSE at.attnum END
    LOOP
        ncols := ncols + 1;
        CONTINUE WHEN a.avg_width IS NULL;
        nstats := nstats + 1;
        IF a.null_frac > 0 THEN
            nulls := true;
        END IF;
        -- Alignment: a varlena shorter than 127 bytes has a 1-byte header
        -- and is not aligned.
        IF NOT (a.attlen = -1 AND a.avg_width < 127) THEN
            off := ceil(off / CASE a.attalign WHEN 'd' THEN 8 WHEN 'i' THEN 4
                                              WHEN 's' THEN 2 ELSE 1 END)
                   * CASE a.attalign WHEN 'd' THEN 8 WHEN 'i' THEN 4 WHEN 's' THEN 2 ELSE 1 END;
        END IF;
        off := off + a.avg_width * (1 - a.null_frac);
        -- A column whose values are (nearly) all distinct makes every key
        -- distinct: nothing for deduplication to pack.
        IF a.n_distinct < -0.95 OR a.n_distinct > 0.95 * greatest(t.reltuples, 1) THEN
            distinct_key := true;
        END IF;
    END LOOP;
    IF nstats < ncols THEN
        method := 'no statistics';
        RETURN;
    END IF;
    -- The widths are ANALYZE's; the row count need not be: the statistics
    -- collector's n_live_tup follows every insert and delete (after a
    -- reset of the counters it is 0: then reltuples).  Widths older than
    -- modifications of half the table are stale.  (Checked after the
    -- columns: a table VACUUM has seen but ANALYZE never has has no
    -- statistics, which says more than stale ones.)
    IF t.n_mod_since_analyze > 0.5 * greatest(t.reltuples, 1000) THEN
        method := 'stale statistics';
        RETURN;
    END IF;
    -- A non-unique btree (13 and later) with duplicate keys: deduplication
    -- packs them into posting lists, by an amount pg_stats cannot tell.
    IF c.relkind = 'i' AND NOT idx_unique AND NOT idx_include AND NOT distinct_key
       AND coalesce((SELECT o.option_value FROM pg_options_to_table(c.reloptions) o
                      WHERE o.option_name = 'deduplicate_items'), 'on') NOT IN ('off', 'false', '0')
       AND current_setting('server_version_num')::int >= 130000 THEN
        method := 'deduplicated btree';
        RETURN;
    END IF;

    IF c.relkind = 'i' THEN
        ff := coalesce((SELECT o.option_value::int FROM pg_options_to_table(c.reloptions) o
                         WHERE o.option_name = 'fillfactor'), 90);
        hdr := 8 + CASE WHEN nulls THEN 4 ELSE 0 END;
        width := ceil((hdr + off) / 8) * 8 + 4;
        -- Entries: the index's count at its last VACUUM or ANALYZE (dead
        -- rows keep theirs until VACUUM), or more if rows came since.  A
        -- page takes at least one entry, whatever the fillfactor (at
        -- fillfactor 10 a key wider than about 800 bytes is more than the
        -- fill).
        leaves := ceil(greatest(c.reltuples, live, 0)
                       / greatest(floor((bs - 24 - 16) * ff / 100.0 / width), 1));
        pages := 1 + leaves + CASE WHEN leaves > 1
                                   THEN ceil(leaves / greatest(floor((bs - 24 - 16) * 0.7 / width), 1))
                                   ELSE 0 END;
    ELSE
        ff := coalesce((SELECT o.option_value::int FROM pg_options_to_table(c.reloptions) o
                         WHERE o.option_name = 'fillfactor'), 100);
        hdr := ceil((23 + CASE WHEN nulls THEN ceil(ncols / 8.0) ELSE 0 END) / 8) * 8;
        width := ceil((hdr + off) / 8) * 8 + 4;
        -- Counted the way the page reads count: what a page has beyond
        -- its header, the line pointers, the live rows and the reserve.
        -- A page kept the line pointers of the rows it held when filled
        -- (VACUUM marks them unused; they stay in the array): per_page of
        -- them, or as many as the live rows if more.
        per_page := least(floor((bs - 24 - 4 - bs * (100 - ff) / 100.0) / width),
                          floor((bs - 24) / 28.0));
        bloat_pct := CASE WHEN actual > 0
                          THEN greatest(actual * (bs - 24 - 4 - bs * (100 - ff) / 100.0)
                                        - live * (width - 4)
                                        - greatest(actual * per_page, live) * 4, 0)
                               * 100.0 / (actual * bs)
                          ELSE 0 END;
        dead_pct := round(100.0 * coalesce(t.n_dead_tup, 0) * width / greatest(total_bytes, bs), 2);
        vacuum_pct := 100.0 * coalesce(t.n_dead_tup, 0)
                      / greatest(coalesce(t.n_live_tup, 0) + coalesce(t.n_dead_tup, 0), 1);
    END IF;

    IF c.relkind = 'i' THEN
        bloat_pct := CASE WHEN actual > 0
                          THEN greatest(100.0 * (actual - pages) / actual, 0) ELSE 0 END;
    END IF;
    bloat_bytes := round(bloat_pct / 100 * total_bytes);
    method := 'estimate';
END
$$;
COMMENT ON FUNCTION adr_ops._bloat_estimate(oid) IS
    'API: private. One relation''s bloat estimated from statistics, NULL with the reason in method where they cannot give it';
REVOKE ALL ON FUNCTION adr_ops._bloat_estimate(oid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._bloat_estimate(oid) TO pg_monitor;

-- API: private.  One row of the report: names, the figures of the mode,
-- and the suggestion:
-- * a table (or TOAST table) whose dead tuples and dead line pointers are
--   10% or more of its line pointers (or dead tuples 10% of its bytes):
--   VACUUM;
-- * else one whose bloat is 50% or more: free space VACUUM cannot give
--   back and that inserts will not fill soon: VACUUM FULL or pg_repack;
-- * a btree index with 30% bloat or more (the reindex task's default):
--   REINDEX INDEX CONCURRENTLY;
-- * else nothing; NULL when the bloat is unknown.
-- A relation that does not exist is an error, unless missing_ok: then a
-- row with NULL names and method "relation no longer exists" (the report
-- passes true: a relation dropped after it listed the candidates must not
-- abort it).
CREATE FUNCTION adr_ops._bloat_row(rel oid, mode text, min_bytes bigint,
    missing_ok bool DEFAULT false,
    OUT schemaname name, OUT relname name, OUT kind text, OUT table_name name,
    OUT total_bytes bigint, OUT bloat_bytes bigint, OUT bloat_pct float8,
    OUT dead_pct float8, OUT free_pct float8, OUT method text,
    OUT error_pct float8, OUT suggestion text)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
    r record;
BEGIN
    IF mode IS NULL OR mode NOT IN ('estimate', 'sample', 'exact') THEN
        RAISE EXCEPTION 'unrecognized bloat mode "%"', mode
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'The modes are "estimate", "sample" and "exact".';
    END IF;
    SELECT n.nspname, cl.relname, cl.relkind,
           coalesce(it.relname, ot.relname) AS owner
      INTO c
      FROM pg_class cl
      JOIN pg_namespace n ON n.oid = cl.relnamespace
      LEFT JOIN pg_index i ON i.indexrelid = cl.oid
      LEFT JOIN pg_class it ON it.oid = i.indrelid
      LEFT JOIN pg_class ot ON cl.relkind = 't' AND ot.reltoastrelid = cl.oid
     WHERE cl.oid = rel;
    IF NOT FOUND THEN
        IF missing_ok THEN
            method := 'relation no longer exists';
            RETURN;
        END IF;
        RAISE EXCEPTION 'relation with OID % does not exist', rel
              USING ERRCODE = 'undefined_table';
    END IF;
    IF c.relkind NOT IN ('r', 'm', 't', 'i', 'p', 'I') THEN
        RAISE EXCEPTION '"%" is not a table, materialized view, index or TOAST table', c.relname
              USING ERRCODE = 'wrong_object_type',
                    DETAIL = 'Only those have pages whose bloat can be measured.';
    END IF;

    schemaname := c.nspname;
    relname := c.relname;
    kind := CASE c.relkind WHEN 't' THEN 'toast' WHEN 'i' THEN 'index' WHEN 'I' THEN 'index'
                           ELSE 'table' END;
    table_name := c.owner;

    IF c.relkind IN ('p', 'I') THEN
        method := CASE c.relkind WHEN 'p' THEN 'partitioned table: see its partitions'
                                 ELSE 'partitioned index: see its partitions' END;
        RETURN;
    ELSIF mode = 'estimate' THEN
        r := adr_ops._bloat_estimate(rel);
    ELSE
        r := adr_ops._bloat_scan(rel, mode = 'exact', min_bytes);
    END IF;

    total_bytes := r.total_bytes;
    bloat_bytes := r.bloat_bytes;
    bloat_pct := round(r.bloat_pct::numeric, 2);
    dead_pct := round(r.dead_pct::numeric, 2);
    free_pct := round(r.free_pct::numeric, 2);
    method := r.method;
    error_pct := round(r.error_pct::numeric, 2);
    suggestion := CASE
        WHEN kind = 'index' AND r.bloat_pct >= 30
            THEN format('REINDEX INDEX CONCURRENTLY %I.%I', c.nspname, c.relname)
        WHEN kind <> 'index' AND (r.vacuum_pct >= 10 OR r.dead_pct >= 10)
            THEN 'VACUUM'
        WHEN kind <> 'index' AND r.bloat_pct >= 50
            THEN 'VACUUM FULL or pg_repack'
        WHEN r.bloat_pct IS NOT NULL
            THEN 'nothing'
        END;
END
$$;
COMMENT ON FUNCTION adr_ops._bloat_row(oid, text, bigint, bool) IS
    'API: private. One row of the bloat report';
REVOKE ALL ON FUNCTION adr_ops._bloat_row(oid, text, bigint, bool) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._bloat_row(oid, text, bigint, bool) TO pg_monitor;

CREATE FUNCTION adr_ops.adr_bloat(rel regclass, mode text DEFAULT 'sample',
    OUT schemaname name, OUT relname name, OUT kind text, OUT table_name name,
    OUT total_bytes bigint, OUT bloat_bytes bigint, OUT bloat_pct float8,
    OUT dead_pct float8, OUT free_pct float8, OUT method text,
    OUT error_pct float8, OUT suggestion text)
RETURNS record
LANGUAGE sql STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM adr_ops._bloat_row(rel, mode, 0, false)
$$;
COMMENT ON FUNCTION adr_ops.adr_bloat(regclass, text) IS
    'bloat of one table, materialized view, TOAST table or btree index: total_bytes, bloat_bytes and bloat_pct (dead tuples + free space beyond the fillfactor reserve), dead_pct, free_pct, method (estimate / sample / exact, or why the figures are NULL), error_pct (sample''s 95% bound) and suggestion; mode estimate (statistics), sample (default: adr_ops.bloat_sample_pages pages read) or exact (every page); sample and exact need superuser or pg_stat_scan_tables: the runbook''s "check for bloat"';
REVOKE ALL ON FUNCTION adr_ops.adr_bloat(regclass, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_bloat(regclass, text) TO pg_monitor;

-- The report: every table, materialized view, btree or other index of a
-- table, and TOAST table outside pg_catalog and information_schema (TOAST
-- tables and indexes go with their table's schema), whose main fork is at
-- least min_bytes (a relation whose size cannot be read without waiting
-- for a lock is listed, with "lock not available").  Partitioned tables
-- have no pages: their partitions are listed.  schema_filter is a LIKE
-- pattern on the schema name.  A relation dropped while the report runs
-- (after the candidates were listed) is left out, not an error.  Largest
-- bloat first.
CREATE FUNCTION adr_ops.adr_bloat_report(min_bytes bigint DEFAULT 1048576,
    mode text DEFAULT 'estimate', schema_filter text DEFAULT NULL)
RETURNS TABLE (schemaname name, relname name, kind text, table_name name,
    total_bytes bigint, bloat_bytes bigint, bloat_pct float8,
    dead_pct float8, free_pct float8, method text,
    error_pct float8, suggestion text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF mode IS NULL OR mode NOT IN ('estimate', 'sample', 'exact') THEN
        RAISE EXCEPTION 'unrecognized bloat mode "%"', mode
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'The modes are "estimate", "sample" and "exact".';
    END IF;
    RETURN QUERY
    SELECT r.*
      FROM (SELECT cl.oid, adr_ops._bloat_size(cl.oid) AS size
              FROM pg_class cl
              LEFT JOIN pg_index i ON i.indexrelid = cl.oid
              LEFT JOIN pg_class it ON it.oid = i.indrelid
              LEFT JOIN pg_class ot ON cl.relkind = 't' AND ot.reltoastrelid = cl.oid
              JOIN pg_namespace owner ON owner.oid = coalesce(ot.relnamespace, cl.relnamespace)
             WHERE cl.relkind IN ('r', 'm', 't', 'i')
               AND (cl.relkind <> 't' OR ot.oid IS NOT NULL)
               AND (cl.relkind <> 'i' OR it.relkind IN ('r', 'm'))
               AND owner.nspname NOT IN ('pg_catalog', 'information_schema')
               AND owner.nspname !~ '^pg_toast'
               AND (schema_filter IS NULL OR owner.nspname LIKE schema_filter)
            OFFSET 0) cand
      CROSS JOIN LATERAL adr_ops._bloat_row(cand.oid, mode, coalesce(min_bytes, 0), true) r
     WHERE (cand.size IS NULL OR cand.size >= coalesce(min_bytes, 0))
       AND r.method IS DISTINCT FROM 'below min_bytes'
       AND r.method IS DISTINCT FROM 'relation no longer exists'
     ORDER BY r.bloat_bytes DESC NULLS LAST, r.schemaname, r.relname;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_bloat_report(bigint, text, text) IS
    'bloat of every table, materialized view, index and TOAST table of at least min_bytes (schema_filter: a LIKE pattern on the schema), largest bloat first, one adr_bloat() row each in the given mode (estimate by default; sample and exact need superuser or pg_stat_scan_tables): the runbook''s "check for bloat"';
REVOKE ALL ON FUNCTION adr_ops.adr_bloat_report(bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_bloat_report(bigint, text, text) TO pg_monitor;

-- http: HTTP probes and alerts (runbook: Daily Health Checks `curl -f
-- .../health`, Performance Troubleshooting `curl .../metrics | grep`,
-- Incident Response "notify on-call team") ---------------------------------

-- Probes reach the network from the server: EXECUTE is not for PUBLIC, and
-- the destinations are limited by adr_ops.http_allowed_hosts.
-- url is INOUT: the row names the URL it is about.
CREATE FUNCTION adr_ops.adr_http_check(
    INOUT url text, timeout_ms integer DEFAULT 5000, expect_status integer DEFAULT 200,
    bearer_token text DEFAULT NULL,
    OUT ok boolean, OUT status_code integer, OUT latency_ms float8,
    OUT bytes bigint, OUT error text)
RETURNS record
AS 'MODULE_PATHNAME', 'adr_http_check'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION adr_ops.adr_http_check(text, integer, integer, text) IS
    'probes a URL over http or https: the runbook''s curl -f; a failure is a row with ok = false and the reason';
REVOKE ALL ON FUNCTION adr_ops.adr_http_check(text, integer, integer, text) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_http_metric(
    url text, metric text, timeout_ms integer DEFAULT 5000,
    OUT metric text, OUT labels jsonb, OUT value float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'adr_http_metric'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION adr_ops.adr_http_metric(text, text, integer) IS
    'the samples of one metric of a Prometheus text page: the runbook''s curl .../metrics | grep';
REVOKE ALL ON FUNCTION adr_ops.adr_http_metric(text, text, integer) FROM PUBLIC;

-- The probes the http_probe task runs.  A token, when needed, comes from
-- the superuser-only setting adr_ops.probe_bearer_token, never from here.
CREATE TABLE adr_ops.probes (
    name text PRIMARY KEY,
    url text NOT NULL,
    expect_status integer NOT NULL DEFAULT 200
        CHECK (expect_status OPERATOR(pg_catalog.>=) 100 AND expect_status OPERATOR(pg_catalog.<=) 599),
    -- All probes run as one batch whose results are recorded together:
    -- one slow probe delays every other's by up to its timeout, so a
    -- minute at most (the task runs every minute).
    timeout_ms integer NOT NULL DEFAULT 5000
        CHECK (timeout_ms OPERATOR(pg_catalog.>=) 1 AND timeout_ms OPERATOR(pg_catalog.<=) 60000),
    send_token boolean NOT NULL DEFAULT false,
    enabled boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE adr_ops.probes IS
    'HTTP probes run by the http_probe task; each appears in adr_health_check() as probe:<name>';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.probes', '');
GRANT SELECT ON adr_ops.probes TO pg_monitor;

CREATE TABLE adr_ops.probe_history (
    id bigserial PRIMARY KEY,
    probe text NOT NULL,
    url text NOT NULL,
    probed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    ok boolean NOT NULL,
    status_code integer,
    latency_ms float8,
    bytes bigint,
    error text
);
CREATE INDEX probe_history_probe ON adr_ops.probe_history (probe, id);
CREATE INDEX probe_history_probed_at ON adr_ops.probe_history (probed_at);
COMMENT ON TABLE adr_ops.probe_history IS
    'results of the http_probe task, kept 30 days';
GRANT SELECT ON adr_ops.probe_history TO pg_monitor;

-- Alerts: one row per status transition of a health check or a probe.
CREATE TABLE adr_ops.alerts (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    source text NOT NULL
        CHECK (source OPERATOR(pg_catalog.=) ANY ('{health,probe}'::text[])),
    check_name text NOT NULL,
    from_status text,
    to_status text NOT NULL
        CHECK (to_status OPERATOR(pg_catalog.=) ANY ('{OK,WARNING,CRITICAL,UNKNOWN}'::text[])),
    detail text,
    delivered_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    last_error text
);
CREATE INDEX alerts_undelivered ON adr_ops.alerts (next_attempt_at)
    WHERE delivered_at IS NULL;
COMMENT ON TABLE adr_ops.alerts IS
    'status transitions of health checks and probes, with their webhook delivery';
GRANT SELECT ON adr_ops.alerts TO pg_monitor;

-- What the webhook carries: the whole alert.
CREATE FUNCTION adr_ops._alert_payload(a adr_ops.alerts) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object('id', a.id, 'at', a.at, 'source', a.source,
                             'check_name', a.check_name, 'from_status', a.from_status,
                             'to_status', a.to_status, 'detail', left(a.detail, 2000))::text
$$;
COMMENT ON FUNCTION adr_ops._alert_payload(adr_ops.alerts) IS
    'API: private. The JSON of an alert, for the webhook';
REVOKE ALL ON FUNCTION adr_ops._alert_payload(adr_ops.alerts) FROM PUBLIC;

-- What NOTIFY adr_alerts carries: small, and nothing secret.  A NOTIFY
-- payload over 8000 bytes is an ERROR that would abort the INSERT of the
-- probe results or the health snapshot, and any role may LISTEN, so the
-- detail stays in adr_ops.alerts (pg_monitor) and check_name is cut to 200
-- characters (at most 800 bytes in any server encoding).
CREATE FUNCTION adr_ops._alert_notice(a adr_ops.alerts) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object('id', a.id, 'source', a.source,
                             'check_name', left(a.check_name, 200), 'from_status', a.from_status,
                             'to_status', a.to_status)::text
$$;
COMMENT ON FUNCTION adr_ops._alert_notice(adr_ops.alerts) IS
    'API: private. The short JSON of an alert for NOTIFY adr_alerts: no detail';
REVOKE ALL ON FUNCTION adr_ops._alert_notice(adr_ops.alerts) FROM PUBLIC;

-- Every alert is announced, as it is inserted, by the alerts table's own
-- trigger: whoever raises an alert only inserts it.  A row trigger costs
-- nothing for the statements that raise no alert.
CREATE FUNCTION adr_ops._alert_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('adr_alerts', adr_ops._alert_notice(NEW));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION adr_ops._alert_notify() IS
    'API: private. Sends NOTIFY adr_alerts for each new alert';
REVOKE ALL ON FUNCTION adr_ops._alert_notify() FROM PUBLIC;
CREATE TRIGGER alerts_notify
    AFTER INSERT ON adr_ops.alerts
    FOR EACH ROW EXECUTE FUNCTION adr_ops._alert_notify();

-- Transitions: a row whose status differs from the previous row of the
-- same check; a first row only when it is not OK.  Probe checks in the
-- health history are skipped: the probe history alerts for them.  The
-- alerts are delivered later by a worker, never from this transaction.
CREATE FUNCTION adr_ops._alert_health_transitions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO adr_ops.alerts (source, check_name, from_status, to_status, detail)
    SELECT 'health', r.check_name, p.status, r.status, r.detail
      FROM new_rows r
      LEFT JOIN LATERAL (
            SELECT h.status FROM adr_ops.health_history h
             WHERE h.check_name = r.check_name AND h.taken_at < r.taken_at
             ORDER BY h.taken_at DESC LIMIT 1) p ON true
     WHERE r.check_name NOT LIKE 'probe:%'
       -- a restored dump's old rows are history, not news
       AND r.taken_at > now() - interval '10 minutes'
       AND p.status IS DISTINCT FROM r.status
       AND (p.status IS NOT NULL OR r.status <> 'OK')
     ORDER BY r.check_name;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION adr_ops._alert_health_transitions() IS
    'API: private. Raises an alert for each health check whose status changed';
REVOKE ALL ON FUNCTION adr_ops._alert_health_transitions() FROM PUBLIC;
CREATE TRIGGER health_history_alerts
    AFTER INSERT ON adr_ops.health_history
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._alert_health_transitions();

CREATE FUNCTION adr_ops._alert_probe_transitions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO adr_ops.alerts (source, check_name, from_status, to_status, detail)
    SELECT 'probe', 'probe:' || r.probe,
           CASE p.ok WHEN true THEN 'OK' WHEN false THEN 'CRITICAL' END,
           CASE WHEN r.ok THEN 'OK' ELSE 'CRITICAL' END,
           format('%s: %s', r.url, coalesce(r.error, 'HTTP ' || r.status_code))
      FROM new_rows r
      LEFT JOIN LATERAL (
            SELECT h.ok FROM adr_ops.probe_history h
             WHERE h.probe = r.probe AND h.id < r.id
             ORDER BY h.id DESC LIMIT 1) p ON true
     WHERE p.ok IS DISTINCT FROM r.ok
       AND (p.ok IS NOT NULL OR NOT r.ok)
     ORDER BY r.probe;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION adr_ops._alert_probe_transitions() IS
    'API: private. Raises an alert for each probe whose result changed between OK and CRITICAL';
REVOKE ALL ON FUNCTION adr_ops._alert_probe_transitions() FROM PUBLIC;
CREATE TRIGGER probe_history_alerts
    AFTER INSERT ON adr_ops.probe_history
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._alert_probe_transitions();

-- One health row per enabled probe: CRITICAL when its last probe failed,
-- UNKNOWN before its first.  adr_health_check() calls it as the check
-- "probes".
CREATE FUNCTION adr_ops._check_probes() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'probe:' || p.name, round(h.latency_ms::numeric, 1), 'ms',
           CASE WHEN h.ok THEN format('%s: HTTP %s in %s ms at %s', p.url, h.status_code,
                                      round(h.latency_ms::numeric, 1), h.probed_at)
                ELSE format('%s: %s at %s', p.url, h.error, h.probed_at) END,
           CASE WHEN h.id IS NULL THEN format('%s: not probed yet (the http_probe task runs the probes)', p.url) END,
           CASE WHEN NOT h.ok THEN 'CRITICAL' END
      FROM adr_ops.probes p
      LEFT JOIN LATERAL (
            SELECT * FROM adr_ops.probe_history ph
             WHERE ph.probe = p.name ORDER BY ph.id DESC LIMIT 1) h ON true
     WHERE p.enabled
     ORDER BY p.name
$$;
COMMENT ON FUNCTION adr_ops._check_probes() IS
    'API: private. The probes'' rows of adr_health_check()';
REVOKE ALL ON FUNCTION adr_ops._check_probes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_probes() TO pg_monitor;

-- The probes run every minute and deliver their alerts at once; the
-- alerts of health snapshots, and retries, go out every minute too.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('http_probe', '* * * * *', 'http_probe', pg_catalog.current_database()),
    ('alert_delivery', '* * * * *', 'alert_delivery', pg_catalog.current_database());

-- security: blocklist, auto-ban, maintenance mode, access review, audit,
-- evidence (runbook: Security Incident Response; Planned Maintenance) ------

-- The source of truth of the blocklist; the authentication hook reads the
-- copy in shared memory (security.c), refreshed at the commit of each change.
CREATE TABLE adr_ops.blocklist (
    client cidr PRIMARY KEY,
    reason text,
    blocked_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at timestamptz,
    blocked_by name NOT NULL
);
COMMENT ON TABLE adr_ops.blocklist IS
    'addresses and ranges refused by the adr_ops authentication hook; change it with adr_block_ip() and adr_unblock_ip()';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.blocklist', '');

-- Maintenance mode: at most one row (none: off), kept across restarts.
-- CREATE EXTENSION inserts no row, so a restored dump's row lands without
-- a collision.
CREATE TABLE adr_ops.maintenance_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    enabled boolean NOT NULL DEFAULT false,
    message text,
    changed_at timestamptz,
    changed_by name
);
COMMENT ON TABLE adr_ops.maintenance_state IS
    'whether maintenance mode is on; change it with adr_maintenance_mode()';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.maintenance_state', '');

-- What the security functions did, and who did it.
CREATE TABLE adr_ops.security_actions (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    actor name NOT NULL,
    action text NOT NULL,
    target text,
    detail text
);
COMMENT ON TABLE adr_ops.security_actions IS
    'who blocked, unblocked, locked a role or switched maintenance mode, and when';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.security_actions', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.security_actions_id_seq', '');

CREATE FUNCTION adr_ops._security_stage() RETURNS void
AS 'MODULE_PATHNAME', 'adr_security_stage'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION adr_ops._security_stage() IS
    'API: private. Writes pending auto-bans and reads the blocklist and maintenance state for shared memory, applied at commit';
REVOKE ALL ON FUNCTION adr_ops._security_stage() FROM PUBLIC;

-- Direct changes (DML, pg_restore) reach the hook's copy at commit too.
CREATE FUNCTION adr_ops._security_stage_trigger() RETURNS trigger
AS 'MODULE_PATHNAME', 'adr_security_stage_trigger'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION adr_ops._security_stage_trigger() IS
    'API: private. Stages the blocklist and maintenance state after a statement changed them (nothing without preloading)';
REVOKE ALL ON FUNCTION adr_ops._security_stage_trigger() FROM PUBLIC;
CREATE TRIGGER blocklist_stage AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON adr_ops.blocklist
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._security_stage_trigger();
CREATE TRIGGER maintenance_state_stage AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON adr_ops.maintenance_state
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._security_stage_trigger();

-- Who maintenance mode admits: the hook's own check (security.c), so that
-- adr_maintenance_mode(terminate) spares exactly the roles the hook admits.
CREATE FUNCTION adr_ops._maintenance_admits(role name) RETURNS boolean
AS 'MODULE_PATHNAME', 'adr_maintenance_admits'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION adr_ops._maintenance_admits(name) IS
    'API: private. Whether maintenance mode admits the role (superuser, or member of a role in adr_ops.maintenance_allow_roles)';
REVOKE ALL ON FUNCTION adr_ops._maintenance_admits(name) FROM PUBLIC;

CREATE FUNCTION adr_ops._security_state(
    OUT loaded boolean, OUT generation bigint, OUT active_entries integer,
    OUT pending_bans integer, OUT capacity integer, OUT maintenance boolean, OUT message text)
RETURNS record
AS 'MODULE_PATHNAME', 'adr_security_state'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION adr_ops._security_state() IS
    'API: private. What the authentication hook sees now in shared memory';
REVOKE ALL ON FUNCTION adr_ops._security_state() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._security_state() TO pg_monitor;

CREATE FUNCTION adr_ops._security_blocked(client inet) RETURNS cidr
AS 'MODULE_PATHNAME', 'adr_security_blocked'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION adr_ops._security_blocked(inet) IS
    'API: private. The range that the authentication hook would refuse the address for now, or NULL';
REVOKE ALL ON FUNCTION adr_ops._security_blocked(inet) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._security_blocked(inet) TO pg_monitor;

CREATE FUNCTION adr_ops.adr_auth_failures(
    OUT client inet, OUT user_names text[], OUT failures bigint, OUT window_failures integer,
    OUT first_seen timestamptz, OUT last_seen timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'adr_auth_failures'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION adr_ops.adr_auth_failures() IS
    'failed authentications counted per client address since start-up (window_failures: within adr_ops.auth_failure_window)';
REVOKE ALL ON FUNCTION adr_ops.adr_auth_failures() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_auth_failures() TO pg_monitor;

CREATE VIEW adr_ops.blocked_clients AS
    SELECT b.client, b.reason, b.blocked_at, b.expires_at, b.blocked_by,
           b.expires_at OPERATOR(pg_catalog.-) pg_catalog.now() AS remaining
      FROM adr_ops.blocklist b
     WHERE b.expires_at IS NULL OR b.expires_at OPERATOR(pg_catalog.>) pg_catalog.now();
COMMENT ON VIEW adr_ops.blocked_clients IS
    'ranges blocked now (expired rows of adr_ops.blocklist are left out)';
GRANT SELECT ON adr_ops.blocked_clients TO pg_monitor;

-- Sessions from a range, except the caller's own.
CREATE FUNCTION adr_ops._terminate_from(client cidr) RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    -- NB: the victims are chosen first, in a materialized CTE: in one
    -- WHERE, the planner may call pg_terminate_backend() before the other
    -- conditions.
    WITH victims AS MATERIALIZED (
        SELECT a.pid FROM pg_stat_activity a
         WHERE a.client_addr <<= _terminate_from.client
           AND a.pid <> pg_backend_pid()
           AND a.backend_type = 'client backend')
    SELECT count(*)::integer FROM victims v WHERE pg_terminate_backend(v.pid)
$$;
COMMENT ON FUNCTION adr_ops._terminate_from(cidr) IS
    'API: private. Terminates the client sessions from a range; returns how many';
REVOKE ALL ON FUNCTION adr_ops._terminate_from(cidr) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_block_ip(client cidr, reason text DEFAULT NULL,
                                     duration interval DEFAULT NULL,
                                     terminate boolean DEFAULT true,
                                     force boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    own inet := inet_client_addr();
    expires timestamptz;
    terminated integer := 0;
    cap integer;
    would integer;
BEGIN
    IF adr_block_ip.client IS NULL OR adr_block_ip.terminate IS NULL OR adr_block_ip.force IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'client, terminate and force must not be null';
    END IF;
    IF adr_block_ip.duration IS NOT NULL AND adr_block_ip.duration <= interval '0' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid duration "%s"', adr_block_ip.duration),
            HINT = 'Give a positive interval, or NULL to block until adr_unblock_ip().';
    END IF;
    IF own IS NOT NULL AND adr_block_ip.client >>= own AND NOT adr_block_ip.force THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('cannot block range "%s": it contains your own address "%s"',
                             adr_block_ip.client, host(own)),
            DETAIL = 'Your session and every new connection from that address would be refused.',
            HINT = 'Pass force => true to block it anyway; connections over the Unix socket are never blocked.';
    END IF;
    -- Serializes the changers: see security.c.
    LOCK TABLE adr_ops.blocklist IN SHARE ROW EXCLUSIVE MODE;

    -- Only adding a range is refused at the capacity; the other functions
    -- and the launcher load what fits (security.c).
    SELECT s.capacity INTO cap FROM adr_ops._security_state() s;
    SELECT count(*) + 1 INTO would FROM adr_ops.blocked_clients b WHERE b.client <> adr_block_ip.client;
    IF would > cap THEN
        RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
            MESSAGE = 'too many blocked addresses',
            DETAIL = format('%s ranges would be blocked; "adr_ops.max_blocked" is %s.', would, cap),
            HINT = 'Unblock ranges with adr_unblock_ip(), block wider ranges, or raise "adr_ops.max_blocked" and restart the server.';
    END IF;

    expires := now() + adr_block_ip.duration;
    INSERT INTO adr_ops.blocklist AS b (client, reason, expires_at, blocked_by)
    VALUES (adr_block_ip.client, adr_block_ip.reason, expires, adr_ops._calling_role())
    ON CONFLICT ON CONSTRAINT blocklist_pkey DO UPDATE
       SET reason = excluded.reason, expires_at = excluded.expires_at,
           blocked_at = excluded.blocked_at, blocked_by = excluded.blocked_by;
    PERFORM adr_ops._security_stage();

    IF adr_block_ip.terminate THEN
        terminated := adr_ops._terminate_from(adr_block_ip.client);
    END IF;
    INSERT INTO adr_ops.security_actions (actor, action, target, detail)
    VALUES (adr_ops._calling_role(), 'block', adr_block_ip.client::text,
            concat_ws('; ', adr_block_ip.reason,
                      'until ' || expires, terminated || ' sessions terminated'));
    RETURN terminated;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_block_ip(cidr, text, interval, boolean, boolean) IS
    'blocks an address or range in the authentication hook (for a duration, or until unblocked); returns the sessions terminated';
REVOKE ALL ON FUNCTION adr_ops.adr_block_ip(cidr, text, interval, boolean, boolean) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_unblock_ip(client cidr)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF adr_unblock_ip.client IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'client must not be null';
    END IF;
    LOCK TABLE adr_ops.blocklist IN SHARE ROW EXCLUSIVE MODE;
    -- A pending auto-ban of this address becomes a row first, so it goes too.
    PERFORM adr_ops._security_stage();
    DELETE FROM adr_ops.blocklist b WHERE b.client = adr_unblock_ip.client;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('range "%s" is not blocked', adr_unblock_ip.client),
            HINT = 'adr_ops.blocked_clients lists the blocked ranges; unblock a range as it was blocked.';
    END IF;
    PERFORM adr_ops._security_stage();
    INSERT INTO adr_ops.security_actions (actor, action, target)
    VALUES (adr_ops._calling_role(), 'unblock', adr_unblock_ip.client::text);
    RETURN true;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_unblock_ip(cidr) IS
    'removes a range from the blocklist';
REVOKE ALL ON FUNCTION adr_ops.adr_unblock_ip(cidr) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_maintenance_mode(enable boolean, message text DEFAULT NULL,
                                             terminate boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    terminated integer := 0;
BEGIN
    IF adr_maintenance_mode.enable IS NULL OR adr_maintenance_mode.terminate IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'enable and terminate must not be null';
    END IF;
    IF octet_length(adr_maintenance_mode.message) > 511 THEN
        RAISE EXCEPTION USING ERRCODE = 'string_data_right_truncation',
            MESSAGE = 'maintenance message too long',
            DETAIL = format('The message has %s bytes; at most 511 fit in shared memory.',
                            octet_length(adr_maintenance_mode.message)),
            HINT = 'Shorten the message.';
    END IF;
    LOCK TABLE adr_ops.blocklist IN SHARE ROW EXCLUSIVE MODE;
    INSERT INTO adr_ops.maintenance_state AS m (singleton, enabled, message, changed_at, changed_by)
    VALUES (true, adr_maintenance_mode.enable,
            CASE WHEN adr_maintenance_mode.enable THEN adr_maintenance_mode.message END,
            now(), adr_ops._calling_role())
    ON CONFLICT ON CONSTRAINT maintenance_state_pkey DO UPDATE
       SET enabled = excluded.enabled, message = excluded.message,
           changed_at = excluded.changed_at, changed_by = excluded.changed_by;
    PERFORM adr_ops._security_stage();

    IF adr_maintenance_mode.enable AND adr_maintenance_mode.terminate THEN
        WITH victims AS MATERIALIZED (
            SELECT a.pid
              FROM pg_stat_activity a
              JOIN pg_roles r ON r.oid = a.usesysid
             WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
               AND NOT adr_ops._maintenance_admits(r.rolname))
        SELECT count(*) INTO terminated FROM victims v WHERE pg_terminate_backend(v.pid);
    END IF;
    INSERT INTO adr_ops.security_actions (actor, action, target, detail)
    VALUES (adr_ops._calling_role(),
            CASE WHEN adr_maintenance_mode.enable THEN 'maintenance on' ELSE 'maintenance off' END,
            NULL, concat_ws('; ', adr_maintenance_mode.message,
                            CASE WHEN terminated > 0 THEN terminated || ' sessions terminated' END));
    RETURN terminated;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_maintenance_mode(boolean, text, boolean) IS
    'switches maintenance mode: new connections of roles that are not superuser nor in adr_ops.maintenance_allow_roles are refused; returns the sessions terminated';
REVOKE ALL ON FUNCTION adr_ops.adr_maintenance_mode(boolean, text, boolean) FROM PUBLIC;

-- The health check row (health.sql lists it).  SECURITY DEFINER: whoever
-- may run the health check may know whether maintenance mode is on.
CREATE FUNCTION adr_ops._check_maintenance_mode() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'maintenance_mode', CASE WHEN m.enabled THEN 1 ELSE 0 END::numeric, 'on',
           CASE WHEN m.enabled
                THEN format('maintenance mode is on since %s (by %s)%s', m.changed_at, m.changed_by,
                            ': ' || m.message)
                ELSE 'maintenance mode is off' END,
           NULL::text,
           CASE WHEN m.enabled THEN 'WARNING' END
      FROM (VALUES (true)) AS one(singleton)
      LEFT JOIN adr_ops.maintenance_state m USING (singleton)
$$;
COMMENT ON FUNCTION adr_ops._check_maintenance_mode() IS
    'API: private. The maintenance_mode row of adr_health_check()';
REVOKE ALL ON FUNCTION adr_ops._check_maintenance_mode() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_maintenance_mode() TO pg_monitor;
GRANT SELECT ON adr_ops.maintenance_state TO pg_monitor;

-- The runbook's "reset compromised credentials": the role can no longer log
-- in, its sessions end, and who did it is recorded.
CREATE FUNCTION adr_ops.adr_lock_role(role name, terminate boolean DEFAULT true)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r pg_roles;
    actor name := adr_ops._calling_role();
    terminated integer := 0;
BEGIN
    IF adr_lock_role.role IS NULL OR adr_lock_role.terminate IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'role and terminate must not be null';
    END IF;
    SELECT * INTO r FROM pg_roles WHERE rolname = adr_lock_role.role;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('role "%s" does not exist', adr_lock_role.role);
    END IF;
    IF r.oid = 10 OR r.rolname = actor THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('cannot lock role "%s"', r.rolname),
            DETAIL = CASE WHEN r.oid = 10 THEN 'It is the bootstrap superuser.'
                          ELSE 'It is your own role.' END;
    END IF;
    IF r.rolname ~ '^pg_' THEN
        RAISE EXCEPTION USING ERRCODE = 'reserved_name',
            MESSAGE = format('cannot lock predefined role "%s"', r.rolname);
    END IF;
    IF r.rolsuper AND NOT (SELECT s.rolsuper FROM pg_roles s WHERE s.rolname = actor) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('permission denied to lock superuser "%s"', r.rolname),
            HINT = 'Only a superuser may lock a superuser.';
    END IF;

    EXECUTE format('ALTER ROLE %I NOLOGIN', r.rolname);
    IF adr_lock_role.terminate THEN
        WITH victims AS MATERIALIZED (
            SELECT a.pid FROM pg_stat_activity a
             WHERE a.usesysid = r.oid AND a.pid <> pg_backend_pid())
        SELECT count(*) INTO terminated FROM victims v WHERE pg_terminate_backend(v.pid);
    END IF;
    INSERT INTO adr_ops.security_actions (actor, action, target, detail)
    VALUES (actor, 'lock role', r.rolname, terminated || ' sessions terminated');
    RETURN terminated;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_lock_role(name, boolean) IS
    'makes a role NOLOGIN, terminates its sessions and records who did it; returns the sessions terminated';
REVOKE ALL ON FUNCTION adr_ops.adr_lock_role(name, boolean) FROM PUBLIC;

-- Access review: the runbook's grep of the access log and pg_stat_activity
-- for one address (or all, when client is NULL).
CREATE FUNCTION adr_ops.adr_access_review(client inet DEFAULT NULL, since interval DEFAULT '24 hours',
    OUT source text, OUT at timestamptz, OUT address inet, OUT user_name text, OUT detail text)
RETURNS SETOF record
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    msg text;
BEGIN
    RETURN QUERY
    SELECT 'session', a.backend_start, a.client_addr, a.usename::text,
           format('pid %s, database %s, application %s, state %s', a.pid, a.datname,
                  coalesce(nullif(a.application_name, ''), '-'), coalesce(a.state, '-'))
      FROM pg_stat_activity a
     WHERE a.client_addr IS NOT NULL
       AND (adr_access_review.client IS NULL OR a.client_addr <<= adr_access_review.client)
     ORDER BY a.backend_start;

    BEGIN
        RETURN QUERY
        SELECT 'auth_failures', f.last_seen, f.client, array_to_string(f.user_names, ','),
               format('%s failed authentications since %s (%s within adr_ops.auth_failure_window)',
                      f.failures, f.first_seen, f.window_failures)
          FROM adr_ops.adr_auth_failures() f
         WHERE adr_access_review.client IS NULL OR f.client <<= adr_access_review.client
         ORDER BY f.last_seen;
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        RETURN QUERY SELECT 'auth_failures', NULL::timestamptz, NULL::inet, NULL::text,
                            'not counted: adr_ops is not in shared_preload_libraries';
    END;

    -- What the hook does now (pending auto-bans included, expiry applied).
    IF adr_access_review.client IS NOT NULL THEN
        BEGIN
            RETURN QUERY
            SELECT 'hook', clock_timestamp(), adr_access_review.client, NULL::text,
                   coalesce('refused now by the blocked range ' ||
                            adr_ops._security_blocked(adr_access_review.client),
                            'not blocked now');
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
            RETURN QUERY SELECT 'hook', clock_timestamp(), adr_access_review.client, NULL::text,
                                'not blocked: adr_ops is not in shared_preload_libraries';
        END;
    END IF;

    RETURN QUERY
    SELECT 'blocklist', b.blocked_at, b.client::inet, b.blocked_by::text,
           format('blocked%s: %s', ' until ' || b.expires_at, coalesce(b.reason, 'no reason given'))
      FROM adr_ops.blocked_clients b
     WHERE adr_access_review.client IS NULL OR b.client >>= adr_access_review.client
        OR b.client <<= adr_access_review.client
     ORDER BY b.blocked_at;

    BEGIN
        RETURN QUERY
        -- Anchored to the messages' known beginnings: a user name is free
        -- text ('x host "bad"') and must not be taken for the address.
        -- (The address is one that the server wrote; a host name, with
        -- log_hostname, has no address shape and stays NULL.)
        SELECT 'log', l.log_time, m.addr, m.usr, l.message
          FROM adr_ops.adr_log_lines(now() - adr_access_review.since, '{LOG,FATAL}') l,
               LATERAL (SELECT h.h, CASE WHEN h.h ~ '^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9a-fA-F.]*:[0-9a-fA-F:.]*)$'
                                         THEN h.h::inet END
                          FROM (SELECT substring(l.message from
                                 '^(?:adr_ops counted a failed authentication from host|adr_ops blocked host|adr_ops refused a connection from host|no pg_hba\.conf entry for host) "([^"]*)"')) h(h)) hh(h, addr),
               LATERAL (SELECT hh.addr,
                               coalesce(substring(l.message from '^adr_ops counted a failed authentication from host "[^"]*" for user "(.*)"$'),
                                        substring(l.message from '^adr_ops refused a connection from host "[^"]*" for user "(.*)": blocked range "[^"]*"$'),
                                        substring(l.message from '^no pg_hba\.conf entry for host "[^"]*", user "(.*)", database "'),
                                        substring(l.message from '^[A-Za-z]+ authentication failed for user "(.*)"$'))
                       ) m(addr, usr)
         WHERE l.message ~ '^(adr_ops (counted a failed authentication from|blocked|refused a connection from) host "|no pg_hba\.conf entry for host "|[A-Za-z]+ authentication failed for user "|connection refused by adr_ops blocklist$)'
           AND (adr_access_review.client IS NULL OR m.addr <<= adr_access_review.client)
         ORDER BY l.log_time;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        RETURN QUERY SELECT 'log', NULL::timestamptz, NULL::inet, NULL::text,
                            'server log not read: ' || msg;
    END;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_access_review(inet, interval) IS
    'sessions, counted authentication failures, blocklist entries and failed-login log lines of an address (all addresses when NULL)';
REVOKE ALL ON FUNCTION adr_ops.adr_access_review(inet, interval) FROM PUBLIC;

-- The audit: one row per finding.
-- Host names that look hexadecimal ('db1', 'cafe') are names, not
-- addresses: only an IPv4 or IPv6 shape is cast, and a cast that fails
-- anyway means "not local".
CREATE FUNCTION adr_ops._is_local_address(address text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a inet;
BEGIN
    IF address IS NULL THEN
        RETURN false;
    ELSIF address = 'localhost' THEN
        RETURN true;
    ELSIF address !~ '^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9a-fA-F.]*:[0-9a-fA-F:.]*)(/[0-9]{1,3})?$' THEN
        RETURN false;
    END IF;
    BEGIN
        a := address::inet;
    EXCEPTION WHEN invalid_text_representation THEN
        RETURN false;
    END;
    IF family(a) = 4 THEN
        RETURN a <<= '127.0.0.0/8'::inet;
    END IF;
    RETURN a <<= '::1/128'::inet;
END
$$;
COMMENT ON FUNCTION adr_ops._is_local_address(text) IS
    'API: private. Whether an address, range or listen_addresses item is loopback only';
REVOKE ALL ON FUNCTION adr_ops._is_local_address(text) FROM PUBLIC;

-- A pg_hba address (with its netmask) that admits loopback clients only;
-- samehost is the server's own addresses.
CREATE FUNCTION adr_ops._hba_local(address text, netmask text) RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN address IS NULL THEN false
                WHEN address = 'samehost' THEN true
                WHEN netmask IS NOT NULL AND address ~ '^[0-9a-fA-F:.]+$'
                     THEN adr_ops._is_local_address(host(address::inet & netmask::inet))
                          AND adr_ops._is_local_address(host(address::inet | ~ netmask::inet))
                ELSE adr_ops._is_local_address(address) END
$$;
COMMENT ON FUNCTION adr_ops._hba_local(text, text) IS
    'API: private. Whether a pg_hba.conf address and netmask admit loopback clients only';
REVOKE ALL ON FUNCTION adr_ops._hba_local(text, text) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_security_audit(
    OUT severity text, OUT finding text, OUT object text, OUT detail text, OUT remedy text)
RETURNS SETOF record
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT f.* FROM (
    -- pg_hba: trust or cleartext password for connections that may come
    -- from another host (loopback-only and local lines are not findings)
    SELECT CASE WHEN h.auth_method = 'trust' THEN 'high' ELSE 'medium' END,
           'hba_' || h.auth_method,
           format('pg_hba.conf line %s', h.line_number),
           format('%s %s %s %s %s', h.type, array_to_string(h.database, ','),
                  array_to_string(h.user_name, ','),
                  coalesce(h.address, ''), coalesce(h.netmask, '')),
           CASE WHEN h.auth_method = 'trust'
                THEN 'Require scram-sha-256 for connections from other hosts, or restrict the address to loopback.'
                ELSE 'Use scram-sha-256: "password" sends the password in clear text.' END
      FROM pg_hba_file_rules h
     WHERE h.error IS NULL AND h.type <> 'local'
       AND h.auth_method IN ('trust', 'password')
       AND NOT adr_ops._hba_local(h.address, h.netmask)
    UNION ALL
    SELECT 'medium', 'md5_password', r.rolname::text,
           'the password is stored as an MD5 hash',
           'Set password_encryption = scram-sha-256 and have the role set its password again (\password).'
      FROM pg_authid r
     WHERE r.rolpassword LIKE 'md5%'
    UNION ALL
    SELECT 'medium', 'password_encryption', 'password_encryption',
           format('password_encryption is %s', current_setting('password_encryption')),
           'Set password_encryption = scram-sha-256.'
     WHERE current_setting('password_encryption') <> 'scram-sha-256'
    UNION ALL
    SELECT 'high', 'extra_superuser', r.rolname::text,
           'a superuser besides the bootstrap superuser' ||
               CASE WHEN r.rolcanlogin THEN ', able to log in' ELSE '' END,
           'Grant the predefined roles it needs instead and ALTER ROLE ... NOSUPERUSER.'
      FROM pg_authid r
     WHERE r.rolsuper AND r.oid <> 10
    UNION ALL
    SELECT 'medium', CASE WHEN r.rolcreaterole THEN 'createrole' ELSE 'bypassrls' END,
           r.rolname::text,
           concat_ws(', ', CASE WHEN r.rolcreaterole THEN 'can create roles' END,
                     CASE WHEN r.rolbypassrls THEN 'bypasses row-level security' END),
           'ALTER ROLE ... NOCREATEROLE NOBYPASSRLS unless it is an administration role.'
      FROM pg_authid r
     WHERE NOT r.rolsuper AND (r.rolcreaterole OR r.rolbypassrls)
    UNION ALL
    SELECT 'high', 'security_definer_search_path', p.oid::regprocedure::text,
           format('SECURITY DEFINER function owned by %s without a pinned search_path',
                  pg_get_userbyid(p.proowner)),
           'ALTER FUNCTION ... SET search_path = pg_catalog, pg_temp (and qualify the names it uses).'
      FROM pg_proc p
     WHERE p.prosecdef
       AND p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
       AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')
    UNION ALL
    SELECT 'high', 'public_schema_create', n.nspname::text,
           'PUBLIC may create objects in the schema',
           format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC.', n.nspname)
      FROM pg_namespace n, aclexplode(n.nspacl) a
     WHERE a.grantee = 0 AND a.privilege_type = 'CREATE'
    UNION ALL
    SELECT 'high', 'ssl_off', 'ssl',
           format('ssl is off while listen_addresses is "%s"', current_setting('listen_addresses')),
           'Configure ssl_cert_file and ssl_key_file and set ssl = on, or listen on loopback only.'
     WHERE current_setting('ssl') = 'off'
       AND EXISTS (SELECT FROM regexp_split_to_table(current_setting('listen_addresses'), '\s*,\s*') l(a)
                    WHERE btrim(l.a) <> '' AND NOT adr_ops._is_local_address(btrim(l.a)))
    UNION ALL
    SELECT 'low', 'log_connections', 'log_connections',
           'connections are not logged: the access review has no record of who logged in',
           'Set log_connections = on (and log_disconnections = on).'
     WHERE current_setting('log_connections') = 'off'
  ) f(severity, finding, object, detail, remedy)
  ORDER BY array_position('{high,medium,low}'::text[], f.severity), f.finding, f.object
$$;
COMMENT ON FUNCTION adr_ops.adr_security_audit() IS
    'privilege and configuration audit: one row per finding, with the remedy';
REVOKE ALL ON FUNCTION adr_ops.adr_security_audit() FROM PUBLIC;

-- Evidence for the post-incident review, append-only.
CREATE TABLE adr_ops.evidence (
    id bigserial PRIMARY KEY,
    taken_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    taken_by name NOT NULL,
    label text NOT NULL,
    activity jsonb,
    locks jsonb,
    settings jsonb,
    statements jsonb,
    auth_failures jsonb,
    blocklist jsonb
);
COMMENT ON TABLE adr_ops.evidence IS
    'snapshots taken by adr_evidence_snapshot(); append-only except for superusers';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.evidence', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.evidence_id_seq', '');

CREATE FUNCTION adr_ops._evidence_append_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('adr_ops.evidence is append-only: cannot %s', lower(TG_OP)),
            HINT = 'Only a superuser may change or remove evidence.';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION adr_ops._evidence_append_only() IS
    'API: private. Refuses UPDATE, DELETE and TRUNCATE of evidence by non-superusers';
REVOKE ALL ON FUNCTION adr_ops._evidence_append_only() FROM PUBLIC;
CREATE TRIGGER evidence_append_only BEFORE UPDATE OR DELETE ON adr_ops.evidence
    FOR EACH ROW EXECUTE FUNCTION adr_ops._evidence_append_only();
CREATE TRIGGER evidence_no_truncate BEFORE TRUNCATE ON adr_ops.evidence
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._evidence_append_only();

CREATE FUNCTION adr_ops.adr_evidence_snapshot(label text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id bigint;
    stmts jsonb;
    fails jsonb;
    msg text;
BEGIN
    IF adr_evidence_snapshot.label IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'label must not be null';
    END IF;
    BEGIN
        SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]') INTO stmts
          FROM adr_ops.adr_slow_queries(0, 20) s;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        stmts := jsonb_build_object('error', msg);
    END;
    BEGIN
        SELECT coalesce(jsonb_agg(to_jsonb(f)), '[]') INTO fails FROM adr_ops.adr_auth_failures() f;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        fails := jsonb_build_object('error', msg);
    END;

    INSERT INTO adr_ops.evidence (taken_by, label, activity, locks, settings, statements,
                                  auth_failures, blocklist)
    VALUES (adr_ops._calling_role(), adr_evidence_snapshot.label,
            (SELECT coalesce(jsonb_agg(to_jsonb(a) || jsonb_build_object(
                        'blocked_by', pg_blocking_pids(a.pid)) ORDER BY a.pid), '[]')
               FROM pg_stat_activity a),
            (SELECT coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.pid), '[]') FROM pg_locks l),
            (SELECT coalesce(jsonb_object_agg(s.name, jsonb_build_object(
                        'setting', s.setting, 'unit', s.unit, 'source', s.source)), '{}')
               FROM pg_settings s WHERE s.source NOT IN ('default', 'override')),
            stmts, fails,
            (SELECT coalesce(jsonb_agg(to_jsonb(b) ORDER BY b.client), '[]') FROM adr_ops.blocklist b))
    RETURNING evidence.id INTO new_id;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_evidence_snapshot(text) IS
    'preserves sessions, locks with blocking pids, non-default settings, top statements, auth failures and the blocklist in adr_ops.evidence; returns its id';
REVOKE ALL ON FUNCTION adr_ops.adr_evidence_snapshot(text) FROM PUBLIC;

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

-- The verify_backup task (backup.c, adr_backup_task) runs daily.

INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('verify_backup', '30 4 * * *', 'verify_backup', pg_catalog.current_database());
