
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
    ('recent_errors',        10,         100),          -- entries in the last hour
    ('archiving',           600,        3600),          -- seconds the oldest WAL segment waits
    ('sequences',            75,          90),          -- % of the range used
    ('vacuum_age',       604800,     2592000),          -- seconds since a changed table's vacuum
    ('analyze_age',      604800,     2592000),          -- seconds since a changed table's analyze
    ('checkpoint',         1800,        3600),          -- seconds since the last checkpoint
    ('wal_files',           150,         300),          -- % of max_wal_size + wal_keep_size
    ('disabled_triggers',     0,          10);          -- disabled triggers

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
    ('recent_errors', 110), ('extension_version', 150),
    ('database_size', 25), ('sequences', 85), ('vacuum_age', 86), ('analyze_age', 87),
    ('archiving', 92), ('wal_files', 94), ('checkpoint', 96), ('disabled_triggers', 105);

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

-- "1 session", "2 sessions": counts in the details read as English.
CREATE FUNCTION adr_ops._count_of(n bigint, noun text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT n || ' ' || noun || CASE WHEN n = 1 THEN '' ELSE 's' END $$;
COMMENT ON FUNCTION adr_ops._count_of(bigint, text) IS
    'API: private. A count and its noun, in the plural unless the count is 1';
REVOKE ALL ON FUNCTION adr_ops._count_of(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._count_of(bigint, text) TO pg_monitor;

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
        SELECT 'pid ' || pid AS who, usename AS usr, datname AS db, state, xact_start AS since,
               format(', application %s: %s', coalesce(nullif(application_name, ''), 'unnamed'),
                      left(regexp_replace(query, '\s+', ' ', 'g'), 100)) AS what
          FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND xact_start IS NOT NULL
           AND pid <> pg_backend_pid()
        UNION ALL
        SELECT 'prepared transaction ' || quote_literal(gid), owner, database, 'prepared', prepared, ''
          FROM pg_prepared_xacts
    )
    SELECT 'long_transactions',
           coalesce(round(extract(epoch FROM now() - min(x.since))::numeric, 0), 0), 's',
           coalesce((SELECT format('oldest: %s (%s@%s, %s) open for %s%s', o.who, o.usr, o.db,
                                   o.state, date_trunc('second', now() - o.since), o.what)
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
           coalesce((SELECT format('%s idle in transaction; oldest: pid %s (%s@%s) idle for %s',
                                   adr_ops._count_of((SELECT count(*) FROM i), 'session'), o.pid, o.usename, o.datname,
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
           coalesce((SELECT format('%s waiting for a lock; longest: pid %s (%s@%s) waiting %s for a %s lock, blocked by pids %s',
                                   adr_ops._count_of((SELECT count(*) FROM w), 'session'), o.pid, o.usename, o.datname,
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
           -- a slot that reserves no WAL yet (restart_lsn NULL) retains none
           CASE WHEN count(*) = 0 THEN 'no inactive replication slots'
                WHEN count(s.retained) = 0 THEN 'no inactive replication slots retain WAL'
                ELSE format('%s %s WAL: %s', adr_ops._count_of(count(s.retained), 'inactive slot'),
                            CASE count(s.retained) WHEN 1 THEN 'retains' ELSE 'retain' END,
                            string_agg(format('%s (%s, %s)', s.slot_name, pg_size_pretty(s.retained),
                                              coalesce(s.wal_status, 'n/a')),
                                       ', ' ORDER BY s.retained DESC) FILTER (WHERE s.retained IS NOT NULL)) END
           || coalesce('; reserving no WAL: ' || string_agg(s.slot_name, ', ' ORDER BY s.slot_name)
                                                   FILTER (WHERE s.retained IS NULL), ''),
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
-- The detail gives counts only: it goes into health_history, alerts and
-- the webhook, which pg_monitor reads, while a message text can carry
-- anything a client's failing statement held; the texts stay with
-- adr_log_lines().
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
           format('%s ERROR, %s FATAL, %s PANIC in the last hour of the server log',
                  count(*) FILTER (WHERE l.severity = 'ERROR'),
                  count(*) FILTER (WHERE l.severity = 'FATAL'),
                  count(*) FILTER (WHERE l.severity = 'PANIC')),
           NULL::text,
           CASE WHEN bool_or(l.severity = 'PANIC') THEN 'CRITICAL' END
      FROM adr_ops.adr_log_lines(now() - interval '1 hour', '{ERROR,FATAL,PANIC}') l;
END
$$;

-- The checks a DBA's monitoring (check_postgres and the like) already has
-- (added 1.1).

-- WAL archiving: a failing archive_command silently ends point-in-time
-- recovery (PostgreSQL logs the failures at LOG and WARNING only).  The
-- value is how long the oldest WAL segment has waited to be archived;
-- CRITICAL while the last failure is newer than the last success.  A
-- standby archives only with archive_mode = always.
CREATE FUNCTION adr_ops._check_archiving() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH s AS (
        SELECT current_setting('archive_mode') AS mode,
               current_setting('archive_mode') = 'off'
               OR (pg_is_in_recovery() AND current_setting('archive_mode') <> 'always') AS idle
    ), r AS (
        SELECT count(*) AS files, min(modification) AS oldest
          FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'
    )
    SELECT 'archiving',
           CASE WHEN NOT s.idle THEN coalesce(round(extract(epoch FROM now() - r.oldest)::numeric, 0), 0) END,
           's',
           CASE WHEN s.mode = 'off' THEN 'archive_mode is off: no WAL is archived'
                WHEN s.idle THEN 'standby with archive_mode = on: the primary archives'
                ELSE format('%s waiting to be archived%s; last archived: %s; %s failed attempts, last: %s',
                            adr_ops._count_of(r.files, 'WAL segment'),
                            CASE WHEN r.files > 0
                                 THEN format(', the oldest for %s', date_trunc('second', now() - r.oldest)) ELSE '' END,
                            coalesce(a.last_archived_wal || ' at ' || date_trunc('second', a.last_archived_time), 'never'),
                            a.failed_count,
                            coalesce(a.last_failed_wal || ' at ' || date_trunc('second', a.last_failed_time), 'never'))
           END,
           NULL,
           CASE WHEN NOT s.idle AND a.last_failed_time > coalesce(a.last_archived_time, '-infinity')
                THEN 'CRITICAL' END
      FROM s, r, pg_stat_archiver a
$$;

-- Sequences near the end of their range, or of the range of the integer
-- column they feed (an int4 column fed by a bigint sequence fails at 2^31).
-- SECURITY DEFINER: the values need privileges on every sequence, which
-- pg_monitor lacks; it reads only numbers and names, and calls no code that
-- another role can define.  Cycling sequences never run out; temporary
-- sequences of other sessions cannot be read.
CREATE FUNCTION adr_ops._check_sequences() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '1s'
AS $$
    WITH q AS (
        SELECT c.oid, q.seqincrement > 0 AS up, q.seqmin::numeric AS lo, q.seqmax::numeric AS hi,
               coalesce(pg_sequence_last_value(c.oid), CASE WHEN q.seqincrement > 0 THEN q.seqmin ELSE q.seqmax END)::numeric AS last
          FROM pg_sequence q JOIN pg_class c ON c.oid = q.seqrelid
         WHERE NOT q.seqcycle AND c.relpersistence <> 't'
           AND NOT (c.relpersistence = 'u' AND pg_is_in_recovery())
    ), fed AS (
        -- the integer columns a sequence feeds: its owner (serial, identity)
        -- and the columns whose default names it
        SELECT d.objid AS seq, a.attrelid, a.attnum, a.atttypid
          FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
           AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
        UNION
        SELECT d.refobjid, ad.adrelid, ad.adnum, a.atttypid
          FROM pg_depend d JOIN pg_attrdef ad ON ad.oid = d.objid
          JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
         WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass
    ), limits AS (
        SELECT q.oid, q.up, q.last,
               CASE WHEN q.up THEN q.lo ELSE q.hi END AS start,
               -- the nearer end: the sequence's own, or its narrowest column's
               CASE WHEN q.up THEN least(q.hi, min(t.hi)) ELSE greatest(q.lo, max(-t.hi - 1)) END AS stop,
               (array_agg(format('%s.%I', f.attrelid::regclass, a.attname) ORDER BY t.hi)
                  FILTER (WHERE t.hi <= CASE WHEN q.up THEN q.hi ELSE -q.lo - 1 END))[1] AS column_name
          FROM q
          LEFT JOIN fed f ON f.seq = q.oid
          LEFT JOIN pg_attribute a ON a.attrelid = f.attrelid AND a.attnum = f.attnum
          LEFT JOIN (VALUES ('int2'::regtype, 32767::numeric), ('int4'::regtype, 2147483647::numeric)) AS t(typ, hi)
                 ON t.typ = f.atttypid
         GROUP BY q.oid, q.up, q.last, q.lo, q.hi
    ), pct AS (
        SELECT l.*, round(100 * abs(l.last - l.start) / nullif(abs(l.stop - l.start), 0), 1) AS used
          FROM limits l
    )
    SELECT 'sequences', coalesce(max(p.used), 0), '%',
           coalesce((SELECT format('fullest: %s at %s%% of %s (%s of %s)', o.oid::regclass, o.used,
                                   coalesce('the range of its column ' || o.column_name, 'its range'),
                                   o.last, o.stop)
                       FROM pct o ORDER BY o.used DESC NULLS LAST, o.oid LIMIT 1),
                    'no sequences'),
           NULL, NULL
      FROM pct p
$$;

-- Tables whose last vacuum (op 'vacuum') or analyze (op 'analyze') is
-- older than the thresholds while they changed more than autovacuum's base
-- threshold since: what a stuck or disabled autovacuum leaves behind.
-- Tables nobody writes are not counted.  A table never vacuumed counts from
-- the statistics' reset, or the server's start.
CREATE FUNCTION adr_ops._maintenance_age(op text) RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH t AS (
        SELECT s.relid::regclass AS rel, l.changes,
               round(extract(epoch FROM now() - coalesce(l.at, d.since))::numeric, 0) AS age,
               coalesce('last ' || op || ' ' || date_trunc('second', l.at),
                        'never ' || CASE op WHEN 'vacuum' THEN 'vacuumed' ELSE 'analyzed' END) AS last
          FROM pg_stat_user_tables s
         CROSS JOIN LATERAL (
               SELECT CASE op WHEN 'vacuum' THEN greatest(s.last_vacuum, s.last_autovacuum)
                              ELSE greatest(s.last_analyze, s.last_autoanalyze) END AS at,
                      CASE op WHEN 'vacuum' THEN s.n_dead_tup + s.n_ins_since_vacuum
                              ELSE s.n_mod_since_analyze END AS changes) l
         CROSS JOIN (SELECT coalesce(stats_reset, pg_postmaster_start_time()) AS since
                       FROM pg_stat_database WHERE datname = current_database()) d
         WHERE l.changes > current_setting('autovacuum_' || op || '_threshold')::bigint
    )
    SELECT op || '_age', coalesce(max(t.age), 0), 's',
           coalesce((SELECT format('%s changed more than autovacuum_%s_threshold rows since the last %s; longest ago: %s (%s, %s rows changed since)',
                                   adr_ops._count_of(count(*) OVER (), 'table'), op, op, o.rel, o.last, o.changes)
                       FROM t o ORDER BY o.age DESC, o.rel LIMIT 1),
                    format('no table changed more than autovacuum_%s_threshold rows since its last %s', op, op)),
           NULL, NULL
      FROM t
$$;
COMMENT ON FUNCTION adr_ops._maintenance_age(text) IS
    'API: private. The vacuum_age or analyze_age reading of adr_health_check()';
REVOKE ALL ON FUNCTION adr_ops._maintenance_age(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._maintenance_age(text) TO pg_monitor;

CREATE FUNCTION adr_ops._check_vacuum_age() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM adr_ops._maintenance_age('vacuum') $$;

CREATE FUNCTION adr_ops._check_analyze_age() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM adr_ops._maintenance_age('analyze') $$;

-- The checkpoints counted since the statistics' reset: timed and
-- requested.  PostgreSQL 17 moved them from pg_stat_bgwriter to
-- pg_stat_checkpointer.
CREATE FUNCTION adr_ops._checkpoint_counts(OUT timed bigint, OUT requested bigint,
                                           OUT stats_reset timestamptz)
RETURNS record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('server_version_num')::int >= 170000 THEN
        EXECUTE 'SELECT num_timed, num_requested, stats_reset FROM pg_catalog.pg_stat_checkpointer'
           INTO timed, requested, stats_reset;
    ELSE
        EXECUTE 'SELECT checkpoints_timed, checkpoints_req, stats_reset FROM pg_catalog.pg_stat_bgwriter'
           INTO timed, requested, stats_reset;
    END IF;
END
$$;
COMMENT ON FUNCTION adr_ops._checkpoint_counts() IS
    'API: private. Timed and requested checkpoints since the statistics'' reset, from the view of this server version';
REVOKE ALL ON FUNCTION adr_ops._checkpoint_counts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._checkpoint_counts() TO pg_monitor;

-- Time since the last checkpoint (a restartpoint on a standby) while WAL
-- was written since it: an idle server skips its checkpoints, and that is
-- no fault.  More than half of 10 or more checkpoints requested (by WAL
-- volume rather than checkpoint_timeout) is WARNING: max_wal_size is too
-- small for the load.
CREATE FUNCTION adr_ops._check_checkpoint() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH c AS (
        SELECT c.checkpoint_time,
               pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                                    ELSE pg_current_wal_insert_lsn() END, c.checkpoint_lsn) AS wal_since,
               CASE WHEN pg_is_in_recovery() THEN 'restartpoint' ELSE 'checkpoint' END AS what
          FROM pg_control_checkpoint() c
    ), b AS (
        SELECT n.requested AS req, n.timed + n.requested AS total, n.stats_reset
          FROM adr_ops._checkpoint_counts() n
    )
    SELECT 'checkpoint',
           CASE WHEN c.wal_since > 0 THEN round(extract(epoch FROM now() - c.checkpoint_time)::numeric, 0) ELSE 0 END,
           's',
           format('last %s at %s, %s of WAL since%s; %s of %s checkpoints since %s were requested%s',
                  c.what, date_trunc('second', c.checkpoint_time), pg_size_pretty(c.wal_since),
                  CASE WHEN c.wal_since > 0 THEN '' ELSE ' (idle: nothing to checkpoint)' END,
                  b.req, b.total, coalesce(date_trunc('second', b.stats_reset)::text, 'the statistics began'),
                  CASE WHEN b.total >= 10 AND 2 * b.req > b.total
                       THEN ': most checkpoints come from WAL volume, raise max_wal_size' ELSE '' END),
           NULL,
           CASE WHEN b.total >= 10 AND 2 * b.req > b.total THEN 'WARNING' END
      FROM c, b
$$;

-- WAL kept in pg_wal beyond what max_wal_size and wal_keep_size explain, as
-- a percentage of them: a replication slot, failing archiving or a long
-- backup keeps it, and it fills the disk.
CREATE FUNCTION adr_ops._check_wal_files() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH w AS (
        SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes
          FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'
    ), e AS (
        SELECT pg_size_bytes(current_setting('max_wal_size'))
               + pg_size_bytes(current_setting('wal_keep_size')) AS expected
    )
    SELECT 'wal_files', round(100.0 * w.bytes / e.expected, 1), '%',
           format('pg_wal holds %s in %s; max_wal_size + wal_keep_size explain %s',
                  pg_size_pretty(w.bytes), adr_ops._count_of(w.files, 'segment'),
                  pg_size_pretty(e.expected)),
           NULL, NULL
      FROM w, e
$$;

-- The largest database.  No default thresholds: a size means something only
-- against a plan; the disk checks and the capacity forecast watch the space.
CREATE FUNCTION adr_ops._check_database_size() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH d AS (
        SELECT datname, pg_database_size(oid) AS bytes FROM pg_database WHERE datallowconn
    )
    SELECT 'database_size', max(d.bytes), 'bytes',
           format('largest: %s; %s, %s in all',
                  (SELECT string_agg(format('%I %s', o.datname, pg_size_pretty(o.bytes)), ', ' ORDER BY o.bytes DESC)
                     FROM (SELECT * FROM d ORDER BY bytes DESC, datname LIMIT 3) o),
                  adr_ops._count_of(count(*), 'database'),
                  pg_size_pretty(sum(d.bytes))),
           NULL, NULL
      FROM d
$$;

-- Disabled triggers on user tables, a constraint's own triggers included
-- (ALTER TABLE ... DISABLE TRIGGER ALL stops enforcing foreign keys).
CREATE FUNCTION adr_ops._check_disabled_triggers() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH t AS (
        SELECT DISTINCT format('%s on %s', coalesce('constraint ' || quote_ident(k.conname), quote_ident(t.tgname)),
                               t.tgrelid::regclass) AS what
          FROM pg_trigger t
          JOIN pg_class c ON c.oid = t.tgrelid
          LEFT JOIN pg_constraint k ON k.oid = t.tgconstraint AND t.tgisinternal
         WHERE t.tgenabled = 'D'
           AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
    )
    SELECT 'disabled_triggers', count(*), 'triggers',
           CASE WHEN count(*) = 0 THEN 'no disabled triggers'
                ELSE format('%s disabled: %s%s', count(*),
                            (SELECT string_agg(o.what, ', ' ORDER BY o.what)
                               FROM (SELECT * FROM t ORDER BY what LIMIT 10) o),
                            CASE WHEN count(*) > 10 THEN ', ...' ELSE '' END) END,
           NULL, NULL
      FROM t
$$;

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
                WHEN string_to_array(l.version, '.')::int[] > string_to_array(e.extversion, '.')::int[]
                THEN format('the library is version %s but the SQL objects of database %I are version %s: run ALTER EXTENSION adr_ops UPDATE in it',
                            l.version, current_database(), e.extversion)
                ELSE format('the library is version %s, older than the SQL objects of database %I, version %s: install the build of version %s',
                            l.version, current_database(), e.extversion, e.extversion) END,
           NULL::text,
           CASE WHEN l.version <> e.extversion THEN 'WARNING' END
      FROM pg_extension e,
           (SELECT v.version FROM adr_ops.adr_version() v WHERE v.component = 'adr_ops') l
     WHERE e.extname = 'adr_ops'
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
                             '_check_cache_hit_ratio', '_check_recent_errors',
                             '_check_extension_version', '_check_archiving', '_check_sequences',
                             '_check_vacuum_age', '_check_analyze_age', '_check_checkpoint',
                             '_check_wal_files', '_check_database_size', '_check_disabled_triggers'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION adr_ops.%I() FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION adr_ops.%I() TO pg_monitor', f);
    END LOOP;
END
$grants$;
