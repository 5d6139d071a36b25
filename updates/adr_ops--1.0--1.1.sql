-- adr_ops 1.0 -> 1.1.  Every SQL change made since 1.0 is here as well as in
-- src/*.sql (which build the full 1.1 script); t/013_upgrade.pl proves that
-- an installation updated through this script equals a fresh one.
\echo Use "ALTER EXTENSION adr_ops UPDATE TO '1.1'" to load this file. \quit

-- One append-only trigger function for every append-only table: evidence's
-- own goes (src/schema.sql, src/security.sql); the incidents' timeline uses
-- it too.
-- An append-only table (evidence, an incident's timeline): these triggers
-- refuse UPDATE, DELETE and TRUNCATE to every role but superusers.
-- TG_ARGV[0] is the hint: what to do instead.
CREATE FUNCTION adr_ops._append_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('%s.%s is append-only: cannot %s', TG_TABLE_SCHEMA, TG_TABLE_NAME, lower(TG_OP)),
            HINT = TG_ARGV[0];
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION adr_ops._append_only() IS
    'API: private. Refuses UPDATE, DELETE and TRUNCATE of an append-only table by non-superusers';
REVOKE ALL ON FUNCTION adr_ops._append_only() FROM PUBLIC;
DROP TRIGGER evidence_append_only ON adr_ops.evidence;
DROP TRIGGER evidence_no_truncate ON adr_ops.evidence;
DROP FUNCTION adr_ops._evidence_append_only();
CREATE TRIGGER evidence_append_only BEFORE UPDATE OR DELETE ON adr_ops.evidence
    FOR EACH ROW EXECUTE FUNCTION adr_ops._append_only('Only a superuser may change or remove evidence.');
CREATE TRIGGER evidence_no_truncate BEFORE TRUNCATE ON adr_ops.evidence
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._append_only('Only a superuser may change or remove evidence.');

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

-- The checks a DBA's monitoring already has: archiving, sequences,
-- vacuum_age, analyze_age, checkpoint, wal_files, database_size,
-- disabled_triggers; long transactions name their application and query;
-- counts read as English; a slot reserving no WAL retains none (src/health.sql).
-- (a row a DBA already made under one of these names wins)
INSERT INTO adr_ops.health_thresholds (check_name, warn, crit)
SELECT v.check_name, v.warn, v.crit FROM (VALUES
    ('archiving',           600,        3600),          -- seconds the oldest WAL segment waits
    ('sequences',            75,          90),          -- % of the range used
    ('vacuum_age',       604800,     2592000),          -- seconds since a changed table's vacuum
    ('analyze_age',      604800,     2592000),          -- seconds since a changed table's analyze
    ('checkpoint',         1800,        3600),          -- seconds since the last checkpoint
    ('wal_files',           150,         300),          -- % of max_wal_size + wal_keep_size
    ('disabled_triggers',     0,          10)           -- disabled triggers
    ) AS v(check_name, warn, crit)
 WHERE NOT EXISTS (SELECT FROM adr_ops.health_thresholds h
                    WHERE h.check_name OPERATOR(pg_catalog.=) v.check_name);
INSERT INTO adr_ops.health_checks (name, position) VALUES
    ('database_size', 25), ('sequences', 85), ('vacuum_age', 86), ('analyze_age', 87),
    ('archiving', 92), ('wal_files', 94), ('checkpoint', 96), ('disabled_triggers', 105);

-- "1 session", "2 sessions": counts in the details read as English.
CREATE FUNCTION adr_ops._count_of(n bigint, noun text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT n || ' ' || noun || CASE WHEN n = 1 THEN '' ELSE 's' END $$;
COMMENT ON FUNCTION adr_ops._count_of(bigint, text) IS
    'API: private. A count and its noun, in the plural unless the count is 1';
REVOKE ALL ON FUNCTION adr_ops._count_of(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._count_of(bigint, text) TO pg_monitor;

CREATE OR REPLACE FUNCTION adr_ops._check_long_transactions() RETURNS SETOF adr_ops._health_reading
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

CREATE OR REPLACE FUNCTION adr_ops._check_idle_in_transaction() RETURNS SETOF adr_ops._health_reading
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

CREATE OR REPLACE FUNCTION adr_ops._check_blocked_sessions() RETURNS SETOF adr_ops._health_reading
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

CREATE OR REPLACE FUNCTION adr_ops._check_replication() RETURNS SETOF adr_ops._health_reading
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

REVOKE ALL ON FUNCTION adr_ops._check_archiving() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_archiving() TO pg_monitor;
REVOKE ALL ON FUNCTION adr_ops._check_sequences() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_sequences() TO pg_monitor;
REVOKE ALL ON FUNCTION adr_ops._check_vacuum_age() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_vacuum_age() TO pg_monitor;
REVOKE ALL ON FUNCTION adr_ops._check_analyze_age() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_analyze_age() TO pg_monitor;
REVOKE ALL ON FUNCTION adr_ops._check_checkpoint() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_checkpoint() TO pg_monitor;
REVOKE ALL ON FUNCTION adr_ops._check_wal_files() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_wal_files() TO pg_monitor;
REVOKE ALL ON FUNCTION adr_ops._check_database_size() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_database_size() TO pg_monitor;
REVOKE ALL ON FUNCTION adr_ops._check_disabled_triggers() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_disabled_triggers() TO pg_monitor;

-- Capacity: size history and forecasts, recovery readiness and the weekly
-- review (src/capacity.sql, new in 1.1).

-- What the capacity_snapshot task measures, one row per series and time:
-- kind filesystem (name data, wal or tablespace:<name>; value bytes used,
-- capacity its size), database, wal (pg_wal), relation (the largest of the
-- database the task runs in) in bytes, and the counters xid (transactions
-- ever assigned), multixact (the next multixact ID at the last checkpoint)
-- and wal_lsn (bytes of WAL ever written).
CREATE TABLE adr_ops.size_history (
    taken_at timestamptz NOT NULL,
    kind text NOT NULL
        CHECK (kind OPERATOR(pg_catalog.=) ANY ('{filesystem,database,wal,relation,xid,multixact,wal_lsn}'::text[])),
    name text NOT NULL,
    value numeric NOT NULL,
    capacity numeric,
    PRIMARY KEY (kind, name, taken_at)
);
CREATE INDEX size_history_taken_at ON adr_ops.size_history (taken_at);
COMMENT ON TABLE adr_ops.size_history IS
    'sizes and counters stored by adr_capacity_snapshot() for the capacity forecasts';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.size_history', '');
GRANT SELECT ON adr_ops.size_history TO pg_monitor;

-- One pass over each source; the largest relations by one scan of
-- pg_class.  Returns the rows stored.
CREATE FUNCTION adr_ops.adr_capacity_snapshot(keep interval DEFAULT '400 days')
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH pruned AS (
        DELETE FROM adr_ops.size_history WHERE taken_at < now() - keep
    ), taken AS (
        SELECT clock_timestamp() AS at
    ), readings AS (
        SELECT 'filesystem' AS kind,
               CASE d.kind WHEN 'tablespace' THEN 'tablespace:' || d.name ELSE d.kind END AS name,
               d.used_bytes::numeric AS value, d.total_bytes::numeric AS capacity
          FROM adr_ops.adr_host_disk() d WHERE d.error IS NULL
        UNION ALL
        -- (a database or relation dropped meanwhile has no size: left out)
        SELECT 'database', d.datname, d.size, NULL
          FROM (SELECT datname, pg_database_size(oid) AS size FROM pg_database WHERE datallowconn) d
         WHERE d.size IS NOT NULL
        UNION ALL
        SELECT 'wal', 'pg_wal', coalesce(sum(size), 0), NULL FROM pg_ls_waldir()
        UNION ALL
        (SELECT 'relation', r.name, r.size, NULL
           FROM (SELECT c.oid::regclass::text AS name, pg_total_relation_size(c.oid) AS size
                   FROM pg_class c
                  WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't') r
          WHERE r.size IS NOT NULL
          ORDER BY r.size DESC LIMIT 20)
        UNION ALL
        SELECT 'xid', 'cluster', pg_current_xact_id()::text::numeric, NULL
        UNION ALL
        SELECT 'multixact', 'cluster', (pg_control_checkpoint()).next_multixact_id::text::numeric, NULL
        UNION ALL
        SELECT 'wal_lsn', 'cluster', pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0'), NULL
    ), stored AS (
        INSERT INTO adr_ops.size_history (taken_at, kind, name, value, capacity)
        SELECT taken.at, r.kind, r.name, r.value, r.capacity FROM taken, readings r
        RETURNING 1
    )
    SELECT count(*)::integer FROM stored
$$;
COMMENT ON FUNCTION adr_ops.adr_capacity_snapshot(interval) IS
    'stores the sizes of file systems, databases, pg_wal and the largest relations, and the XID, multixact and WAL counters, in size_history; drops rows older than keep';
REVOKE ALL ON FUNCTION adr_ops.adr_capacity_snapshot(interval) FROM PUBLIC;

-- The forecast of each series over the last days: growth per day from a
-- least-squares fit, its R², and the days until the warning level, the
-- critical level and full.  File systems take their levels from the disk
-- thresholds (% of their size); databases from database_size (bytes), and
-- they are full when the data directory's file system is; the XID and
-- multixact ages from xid_wraparound (% of autovacuum_freeze_max_age, or of
-- autovacuum_multixact_freeze_max_age), full at the hard stop 3 million
-- short of wraparound.  No forecast from fewer than
-- 6 readings, over less than a day, or with R² under 0.7: the reason says
-- which.
CREATE FUNCTION adr_ops.adr_capacity_forecast(days integer DEFAULT 30,
    OUT kind text, OUT name text, OUT samples integer, OUT span interval,
    OUT current numeric, OUT growth_per_day numeric, OUT r2 numeric,
    OUT days_to_warn numeric, OUT days_to_crit numeric, OUT days_to_full numeric,
    OUT note text)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH h AS (
        SELECT s.kind, s.name, s.taken_at, s.value, s.capacity
          FROM adr_ops.size_history s
         WHERE s.taken_at > now() - make_interval(days => days)
           AND s.kind IN ('filesystem', 'database', 'wal', 'relation', 'xid', 'multixact')
    ), fit AS (
        SELECT h.kind, h.name, count(*)::integer AS samples, max(h.taken_at) - min(h.taken_at) AS span,
               regr_slope(h.value, extract(epoch FROM h.taken_at) / 86400)::numeric AS slope,
               regr_r2(h.value, extract(epoch FROM h.taken_at) / 86400)::numeric AS r2,
               (array_agg(h.value ORDER BY h.taken_at DESC))[1] AS last,
               (array_agg(h.capacity ORDER BY h.taken_at DESC))[1] AS capacity
          FROM h GROUP BY h.kind, h.name
    ), xid AS (
        SELECT max(age(datfrozenxid))::numeric AS age,
               current_setting('autovacuum_freeze_max_age')::numeric AS freeze_max,
               max(mxid_age(datminmxid))::numeric AS mxid_age,
               current_setting('autovacuum_multixact_freeze_max_age')::numeric AS mxid_freeze_max
          FROM pg_database
    ), data_fs AS (
        SELECT f.capacity - f.last AS free FROM fit f WHERE f.kind = 'filesystem' AND f.name = 'data'
    ), wal_fs AS (
        SELECT f.capacity - f.last AS free FROM fit f WHERE f.kind = 'filesystem' AND f.name = 'wal'
    ), levels AS (
        SELECT f.*,
               CASE f.kind WHEN 'xid' THEN x.age WHEN 'multixact' THEN x.mxid_age ELSE f.last END AS now_at,
               CASE f.kind
                    WHEN 'filesystem' THEN f.capacity * t.warn / 100
                    WHEN 'database' THEN t.warn
                    WHEN 'xid' THEN x.freeze_max * t.warn / 100
                    WHEN 'multixact' THEN x.mxid_freeze_max * t.warn / 100 END AS warn_at,
               CASE f.kind
                    WHEN 'filesystem' THEN f.capacity * t.crit / 100
                    WHEN 'database' THEN t.crit
                    WHEN 'xid' THEN x.freeze_max * t.crit / 100
                    WHEN 'multixact' THEN x.mxid_freeze_max * t.crit / 100 END AS crit_at,
               CASE f.kind
                    WHEN 'filesystem' THEN f.capacity
                    WHEN 'database' THEN f.last + (SELECT free FROM data_fs)
                    WHEN 'wal' THEN f.last + coalesce((SELECT free FROM wal_fs), (SELECT free FROM data_fs))
                    WHEN 'xid' THEN 2147483648 - 3000000
                    WHEN 'multixact' THEN 2147483648 - 3000000 END AS full_at,
               CASE WHEN f.samples < 6 OR f.span < interval '1 day'
                    THEN format('history too short: %s over %s; a forecast needs 6 readings over a day',
                                adr_ops._count_of(f.samples, 'reading'), date_trunc('minute', f.span))
                    WHEN coalesce(f.r2, 0) < 0.7 AND f.slope <> 0
                    THEN format('too noisy to forecast: R² %s, a forecast needs 0.7', round(f.r2::numeric, 2))
                    WHEN f.slope <= 0 THEN 'not growing' END AS reason
          FROM fit f CROSS JOIN xid x
          LEFT JOIN LATERAL (
                SELECT th.warn, th.crit FROM adr_ops.health_thresholds th
                 WHERE th.check_name IN (CASE f.kind WHEN 'filesystem' THEN 'disk_' || f.name
                                                     WHEN 'database' THEN 'database_size'
                                                     WHEN 'xid' THEN 'xid_wraparound'
                                                     WHEN 'multixact' THEN 'xid_wraparound' END,
                                         CASE WHEN f.kind = 'filesystem' THEN 'disk_' || split_part(f.name, ':', 1) END)
                 ORDER BY th.check_name = 'disk_' || f.name DESC LIMIT 1) t ON true
    )
    SELECT l.kind, l.name, l.samples, l.span, l.now_at,
           CASE WHEN l.samples >= 6 AND l.span >= interval '1 day' THEN round(l.slope::numeric, 2) END,
           CASE WHEN l.samples >= 6 AND l.span >= interval '1 day' THEN round(l.r2::numeric, 3) END,
           -- (greatest() ignores NULL: a series without a level has no days to it)
           CASE WHEN l.reason IS NULL AND l.warn_at IS NOT NULL THEN greatest(round((l.warn_at - l.now_at) / l.slope, 1), 0) END,
           CASE WHEN l.reason IS NULL AND l.crit_at IS NOT NULL THEN greatest(round((l.crit_at - l.now_at) / l.slope, 1), 0) END,
           CASE WHEN l.reason IS NULL AND l.full_at IS NOT NULL THEN greatest(round((l.full_at - l.now_at) / l.slope, 1), 0) END,
           l.reason
      FROM levels l
     ORDER BY l.kind, l.name
$$;
COMMENT ON FUNCTION adr_ops.adr_capacity_forecast(integer) IS
    'growth per day, R² and days until the warning level, the critical level and full, per file system, database, pg_wal, large relation and the XID and multixact ages';
REVOKE ALL ON FUNCTION adr_ops.adr_capacity_forecast(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_capacity_forecast(integer) TO pg_monitor;

-- The capacity health check: the soonest day a forecast reaches a critical
-- level (or full, where there is none), in days: lower is worse.
CREATE FUNCTION adr_ops._check_capacity() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH f AS (
        SELECT f.*, coalesce(f.days_to_crit, f.days_to_full) AS days
          FROM adr_ops.adr_capacity_forecast() f
         WHERE f.kind <> 'relation'
    )
    SELECT 'capacity', min(f.days), 'days',
           coalesce((SELECT format('soonest: %s %s reaches its %s in %s days (growth %s per day, R² %s)',
                                   o.kind, o.name,
                                   CASE WHEN o.days_to_crit IS NOT NULL THEN 'critical level' ELSE 'limit' END,
                                   o.days, o.growth_per_day, o.r2)
                       FROM f o WHERE o.days IS NOT NULL ORDER BY o.days, o.kind, o.name LIMIT 1),
                    CASE WHEN count(*) = 0
                         THEN 'no size history: the capacity_snapshot task stores it'
                         ELSE format('no forecast reaches a limit: %s', adr_ops._count_of(count(*), 'series'))
                              || CASE WHEN count(f.note) > 0
                                      THEN format(', %s without a forecast (%s)', count(f.note),
                                                  string_agg(DISTINCT split_part(f.note, ':', 1), '; '))
                                      ELSE '' END END),
           NULL, NULL
      FROM f
$$;
REVOKE ALL ON FUNCTION adr_ops._check_capacity() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_capacity() TO pg_monitor;
INSERT INTO adr_ops.health_thresholds (check_name, warn, crit)
SELECT 'capacity', 30, 7
 WHERE NOT EXISTS (SELECT FROM adr_ops.health_thresholds h WHERE h.check_name OPERATOR(pg_catalog.=) 'capacity');
INSERT INTO adr_ops.health_checks (name, position) VALUES ('capacity', 160);

-- The runbook's disaster recovery: the last known good backup, how long a
-- restore of it would take today, and how much would be lost.  The restore
-- time is the one measured when it was verified, scaled by the growth of
-- its database since (size history), plus, with WAL archiving, the replay
-- of the WAL written since at adr_ops.wal_replay_rate.  The recovery point
-- is the last archived WAL segment with archiving, else the backup itself.
CREATE FUNCTION adr_ops.adr_recovery_readiness(
    OUT last_good_backup text, OUT verified_at timestamptz, OUT backup_taken_at timestamptz,
    OUT restore_time interval, OUT restore_time_derivation text,
    OUT recovery_point timestamptz, OUT data_loss interval, OUT recovery_point_derivation text,
    OUT rto_target interval, OUT rpo_target interval)
RETURNS record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH settings AS (
        SELECT coalesce(current_setting('adr_ops.recovery_time_objective', true), '4h')::interval AS rto,
               coalesce(current_setting('adr_ops.recovery_point_objective', true), '1h')::interval AS rpo,
               pg_size_bytes(coalesce(current_setting('adr_ops.wal_replay_rate', true), '32MB')) AS replay_rate,
               current_setting('archive_mode') <> 'off' AS archiving
    ), good AS (
        SELECT v.* FROM adr_ops.backup_verifications v
         WHERE v.status = 'passed' ORDER BY v.finished_at DESC LIMIT 1
    ), growth AS (
        -- the data directory's used bytes now and at the verification
        SELECT (SELECT h.value FROM adr_ops.size_history h
                 WHERE h.kind = 'filesystem' AND h.name = 'data' ORDER BY h.taken_at DESC LIMIT 1) AS now_bytes,
               (SELECT h.value FROM adr_ops.size_history h, good g
                 WHERE h.kind = 'filesystem' AND h.name = 'data' AND h.taken_at <= g.finished_at
                 ORDER BY h.taken_at DESC LIMIT 1) AS then_bytes,
               (SELECT h.value FROM adr_ops.size_history h, good g
                 WHERE h.kind = 'wal_lsn' AND h.taken_at <= coalesce(g.backup_mtime, g.started_at)
                 ORDER BY h.taken_at DESC LIMIT 1) AS lsn_then,
               pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                                    ELSE pg_current_wal_lsn() END, '0/0') AS lsn_now
    ), est AS (
        SELECT g.*, s.*, gr.*, a.last_archived_time,
               coalesce(gr.now_bytes / nullif(gr.then_bytes, 0), 1) AS scale,
               CASE WHEN s.archiving AND gr.lsn_then IS NOT NULL
                    THEN (gr.lsn_now - gr.lsn_then) / s.replay_rate END AS replay_s
          FROM good g CROSS JOIN settings s CROSS JOIN growth gr CROSS JOIN pg_stat_archiver a
    )
    SELECT e.path, e.finished_at, coalesce(e.backup_mtime, e.started_at),
           make_interval(secs => round(e.duration_ms * e.scale / 1000 + coalesce(e.replay_s, 0))),
           format('restore measured at verification %s ms%s%s',
                  e.duration_ms,
                  CASE WHEN e.scale <> 1 THEN format(', scaled by %s for the data directory''s growth since', round(e.scale, 3)) ELSE '' END,
                  CASE WHEN e.replay_s IS NOT NULL
                       THEN format(', plus %s of WAL written since the backup replayed at %s/s', pg_size_pretty(e.lsn_now - e.lsn_then), pg_size_pretty(e.replay_rate))
                       WHEN e.archiving THEN ', plus WAL replay not estimated: no size history from before the backup'
                       ELSE '' END),
           CASE WHEN e.archiving AND e.last_archived_time IS NOT NULL THEN e.last_archived_time
                ELSE coalesce(e.backup_mtime, e.started_at) END,
           now() - CASE WHEN e.archiving AND e.last_archived_time IS NOT NULL THEN e.last_archived_time
                        ELSE coalesce(e.backup_mtime, e.started_at) END,
           CASE WHEN e.archiving AND e.last_archived_time IS NOT NULL
                THEN 'the last archived WAL segment (pg_stat_archiver)'
                ELSE 'the backup itself: no WAL archive to replay beyond it' END,
           e.rto, e.rpo
      FROM est e
$$;
COMMENT ON FUNCTION adr_ops.adr_recovery_readiness() IS
    'the last known good backup, the estimated restore time and data loss, how each was derived, and the targets';
REVOKE ALL ON FUNCTION adr_ops.adr_recovery_readiness() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_recovery_readiness() TO pg_monitor;

-- The recovery health check: the estimated restore time in seconds against
-- adr_ops.recovery_time_objective; WARNING when either estimate misses its
-- target.  Without a good backup there is nothing to estimate (the
-- backup_verification check is CRITICAL then).
CREATE FUNCTION adr_ops._check_recovery() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'recovery', round(extract(epoch FROM r.restore_time)::numeric, 0), 's',
           CASE WHEN r.last_good_backup IS NULL THEN 'no verified backup: recovery time and point cannot be estimated'
                ELSE format('restore of %s: about %s (target %s); data loss: %s (target %s)',
                            r.last_good_backup, r.restore_time, r.rto_target,
                            date_trunc('second', r.data_loss), r.rpo_target) END,
           NULL,
           CASE WHEN r.restore_time > r.rto_target OR r.data_loss > r.rpo_target THEN 'WARNING' END
      FROM (SELECT 1) one LEFT JOIN adr_ops.adr_recovery_readiness() r ON true
$$;
REVOKE ALL ON FUNCTION adr_ops._check_recovery() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_recovery() TO pg_monitor;
INSERT INTO adr_ops.health_checks (name, position) VALUES ('recovery', 170);

-- The runbook's weekly review as rows: growth and forecasts, XID headroom,
-- checks that were not OK during the week and for how long, maintenance
-- runs, backups verified, the queries that got slower, and the pipelines'
-- failure rates, for the seven days before week_ending.
CREATE FUNCTION adr_ops.adr_weekly_review(week_ending timestamptz DEFAULT now(),
    OUT section text, OUT item text, OUT value numeric, OUT unit text, OUT detail text)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH w AS (
        SELECT week_ending - interval '7 days' AS w0, week_ending AS w1, week_ending - interval '14 days' AS p0
    ), forecast AS (
        SELECT * FROM adr_ops.adr_capacity_forecast(7)
    ), health AS (
        SELECT h.check_name, h.status, h.taken_at,
               lead(h.taken_at) OVER (PARTITION BY h.check_name ORDER BY h.taken_at) AS next_at
          FROM adr_ops.health_history h, w WHERE h.taken_at >= w.w0 AND h.taken_at < w.w1
    ), counters AS (
        -- each statement's cumulative counters at the three bounds
        SELECT c.queryid, c.userid, c.dbid, c.toplevel, b.bound,
               (array_agg(c.calls ORDER BY s.taken_at DESC))[1] AS calls,
               (array_agg(c.total_ms ORDER BY s.taken_at DESC))[1] AS total_ms
          FROM adr_ops.statement_counters c
          JOIN adr_ops.statement_snapshots s ON s.id = c.snapshot_id
          JOIN w ON true
          CROSS JOIN LATERAL (VALUES (0, w.p0), (1, w.w0), (2, w.w1)) AS b(bound, at)
         WHERE s.taken_at <= b.at
         GROUP BY c.queryid, c.userid, c.dbid, c.toplevel, b.bound
    ), means AS (
        -- a statement's mean time this week and the week before (a reset
        -- of pg_stat_statements in between gives no figure)
        SELECT k2.queryid, k2.dbid, k2.userid,
               (k2.total_ms - k1.total_ms) / nullif(k2.calls - k1.calls, 0) AS mean_now,
               (k1.total_ms - k0.total_ms) / nullif(k1.calls - k0.calls, 0) AS mean_before,
               k2.calls - k1.calls AS calls
          FROM counters k2
          JOIN counters k1 USING (queryid, userid, dbid, toplevel)
          JOIN counters k0 USING (queryid, userid, dbid, toplevel)
         WHERE k2.bound = 2 AND k1.bound = 1 AND k0.bound = 0
           AND k2.calls >= k1.calls AND k1.calls >= k0.calls
    )
    SELECT 'growth', f.kind || ' ' || f.name, f.growth_per_day,
           CASE f.kind WHEN 'xid' THEN 'transactions/day' ELSE 'bytes/day' END,
           coalesce(format('%s days to the critical level, %s to full', f.days_to_crit, f.days_to_full), f.note)
      FROM forecast f WHERE f.kind IN ('filesystem', 'database', 'wal')
    UNION ALL
    SELECT 'xid', CASE f.kind WHEN 'xid' THEN 'transaction ID age' ELSE 'multixact ID age' END,
           f.current, CASE f.kind WHEN 'xid' THEN 'transactions' ELSE 'multixacts' END,
           coalesce(format('%s per day; %s days to the xid_wraparound warning level, %s to the hard stop',
                           f.growth_per_day, f.days_to_warn, f.days_to_full), f.note)
      FROM forecast f WHERE f.kind IN ('xid', 'multixact')
    UNION ALL
    SELECT 'checks', h.check_name, count(*), 'snapshots not OK',
           format('%s; about %s not OK, first %s, last %s',
                  string_agg(DISTINCT h.status, '/'),
                  justify_interval(sum(coalesce(h.next_at, w.w1) - h.taken_at)),
                  date_trunc('minute', min(h.taken_at)), date_trunc('minute', max(h.taken_at)))
      FROM health h, w WHERE h.status <> 'OK'
     GROUP BY h.check_name
    UNION ALL
    SELECT 'maintenance', r.task, count(*), 'runs',
           format('%s succeeded, %s failed, %s skipped', count(*) FILTER (WHERE r.status = 'succeeded'),
                  count(*) FILTER (WHERE r.status = 'failed'), count(*) FILTER (WHERE r.status = 'skipped'))
      FROM adr_ops.task_runs r, w WHERE r.started_at >= w.w0 AND r.started_at < w.w1
     GROUP BY r.task
    UNION ALL
    SELECT 'backups', 'verifications', count(v.id), 'verifications',
           format('%s passed, %s failed; last passed: %s',
                  count(*) FILTER (WHERE v.status = 'passed'), count(*) FILTER (WHERE v.status = 'failed'),
                  coalesce((SELECT l.path || ' at ' || date_trunc('minute', l.finished_at)
                              FROM adr_ops.backup_verifications l WHERE l.status = 'passed'
                             ORDER BY l.finished_at DESC LIMIT 1), 'never'))
      FROM w LEFT JOIN adr_ops.backup_verifications v ON v.started_at >= w.w0 AND v.started_at < w.w1
    UNION ALL
    (SELECT 'queries', m.queryid::text, round((100 * (m.mean_now / m.mean_before - 1))::numeric, 1), '% slower',
            format('mean %s ms over %s calls, was %s ms: %s', round(m.mean_now::numeric, 2), m.calls,
                   round(m.mean_before::numeric, 2), left(regexp_replace(t.query, '\s+', ' ', 'g'), 100))
       FROM means m
       LEFT JOIN adr_ops.statement_texts t USING (queryid, userid, dbid)
      WHERE m.mean_before > 0 AND m.mean_now > 1.2 * m.mean_before
      ORDER BY m.mean_now / m.mean_before DESC LIMIT 10)
    UNION ALL
    SELECT 'pipelines', j.pipeline, round(100.0 * count(*) FILTER (WHERE j.status = 'failed') / count(*), 1),
           '% failed',
           format('%s submitted in the week: %s succeeded, %s failed, %s cancelled, %s queued or running',
                  count(*), count(*) FILTER (WHERE j.status = 'succeeded'), count(*) FILTER (WHERE j.status = 'failed'),
                  count(*) FILTER (WHERE j.status = 'cancelled'), count(*) FILTER (WHERE j.status IN ('queued', 'running')))
      FROM adr_ops.processing_jobs j, w WHERE j.created_at >= w.w0 AND j.created_at < w.w1
     GROUP BY j.pipeline
$$;
COMMENT ON FUNCTION adr_ops.adr_weekly_review(timestamptz) IS
    'the runbook''s weekly review as rows: growth, XID headroom, checks not OK, maintenance, backups, slower queries, pipelines';
REVOKE ALL ON FUNCTION adr_ops.adr_weekly_review(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_weekly_review(timestamptz) TO pg_monitor;

-- Text as one Markdown table cell: on one line, its bars escaped.
CREATE FUNCTION adr_ops._markdown_cell(t text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT replace(regexp_replace(coalesce(t, ''), '\s+', ' ', 'g'), '|', '\|') $$;
COMMENT ON FUNCTION adr_ops._markdown_cell(text) IS
    'API: private. Text as one Markdown table cell';
REVOKE ALL ON FUNCTION adr_ops._markdown_cell(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._markdown_cell(text) TO pg_monitor;

-- The same review as Markdown, one table per section.
CREATE FUNCTION adr_ops.adr_weekly_review_markdown(week_ending timestamptz DEFAULT now())
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(E'# Weekly review, %s to %s\n', (week_ending - interval '7 days')::date, week_ending::date)
           || coalesce(string_agg(s.md, '' ORDER BY s.ord), E'\nNothing recorded in the week.\n')
      FROM (SELECT r.section, min(o.ord) AS ord,
                   format(E'\n## %s\n\n| item | value | unit | detail |\n|---|---|---|---|\n', initcap(r.section))
                   || string_agg(format(E'| %s | %s | %s | %s |\n',
                                        adr_ops._markdown_cell(r.item), coalesce(r.value::text, ''), r.unit,
                                        adr_ops._markdown_cell(r.detail)),
                                 '' ORDER BY r.item) AS md
              FROM adr_ops.adr_weekly_review(week_ending) r
              JOIN (VALUES ('growth', 1), ('xid', 2), ('checks', 3), ('maintenance', 4), ('backups', 5),
                           ('queries', 6), ('pipelines', 7)) AS o(section, ord) USING (section)
             GROUP BY r.section) s
$$;
COMMENT ON FUNCTION adr_ops.adr_weekly_review_markdown(timestamptz) IS
    'the weekly review as Markdown, one table per section';
REVOKE ALL ON FUNCTION adr_ops.adr_weekly_review_markdown(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_weekly_review_markdown(timestamptz) TO pg_monitor;

-- Sizes hourly, at a minute no other default schedule uses.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('capacity_snapshot', '7 * * * *', 'capacity_snapshot', pg_catalog.current_database());
-- The blocklist's share for auto-bans, IPv4-mapped ranges (src/security.sql):
-- _security_state() reports the auto-ban share (two more columns, a new C
-- symbol); adr_block_ip() refuses a manual range only beyond the part of
-- adr_ops.max_blocked that auto-bans may not hold, and stores an IPv4-mapped
-- range as the IPv4 range it stands for, as adr_unblock_ip() and
-- _terminate_from() match it.
DROP FUNCTION adr_ops._security_state();
CREATE FUNCTION adr_ops._security_state(
    OUT loaded boolean, OUT generation bigint, OUT active_entries integer,
    OUT pending_bans integer, OUT capacity integer, OUT maintenance boolean, OUT message text,
    OUT auto_bans integer, OUT auto_ban_capacity integer)
RETURNS record
AS 'MODULE_PATHNAME', 'adr_security_state_1_1'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION adr_ops._security_state() IS
    'API: private. What the authentication hook sees now in shared memory (auto_ban_capacity: the share of capacity that auto-bans may hold)';
REVOKE ALL ON FUNCTION adr_ops._security_state() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._security_state() TO pg_monitor;

CREATE FUNCTION adr_ops._ipv4_unmapped(client cidr) RETURNS cidr
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN _ipv4_unmapped.client <<= '::ffff:0:0/96'::cidr
                THEN set_masklen('0.0.0.0'::inet + (_ipv4_unmapped.client - '::ffff:0.0.0.0'::inet),
                                 masklen(_ipv4_unmapped.client) - 96)::cidr
                ELSE _ipv4_unmapped.client END
$$;
COMMENT ON FUNCTION adr_ops._ipv4_unmapped(cidr) IS
    'API: private. An IPv4-mapped IPv6 range as the IPv4 range it stands for; other ranges unchanged';
REVOKE ALL ON FUNCTION adr_ops._ipv4_unmapped(cidr) FROM PUBLIC;

CREATE OR REPLACE FUNCTION adr_ops._terminate_from(client cidr) RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    -- NB: the victims are chosen first, in a materialized CTE: in one
    -- WHERE, the planner may call pg_terminate_backend() before the other
    -- conditions.
    WITH victims AS MATERIALIZED (
        SELECT a.pid FROM pg_stat_activity a
         WHERE adr_ops._ipv4_unmapped(a.client_addr::cidr) <<= _terminate_from.client
           AND a.pid <> pg_backend_pid()
           AND a.backend_type = 'client backend')
    SELECT count(*)::integer FROM victims v WHERE pg_terminate_backend(v.pid)
$$;
CREATE OR REPLACE FUNCTION adr_ops.adr_block_ip(client cidr, reason text DEFAULT NULL,
                                     duration interval DEFAULT NULL,
                                     terminate boolean DEFAULT true,
                                     force boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- IPv4-mapped forms as the IPv4 ranges the hook matches
    target cidr := adr_ops._ipv4_unmapped(adr_block_ip.client);
    own cidr := adr_ops._ipv4_unmapped(inet_client_addr()::cidr);
    expires timestamptz;
    terminated integer := 0;
    cap integer;
    manual_cap integer;
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
    IF target <> adr_block_ip.client THEN
        RAISE NOTICE 'blocking "%", the IPv4 range that the IPv4-mapped "%" stands for',
            target, adr_block_ip.client;
    END IF;
    IF own IS NOT NULL AND target >>= own AND NOT adr_block_ip.force THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('cannot block range "%s": it contains your own address "%s"',
                             target, host(own)),
            DETAIL = 'Your session and every new connection from that address would be refused.',
            HINT = 'Pass force => true to block it anyway; connections over the Unix socket are never blocked.';
    END IF;
    -- Serializes the changers: see security.c.
    LOCK TABLE adr_ops.blocklist IN SHARE ROW EXCLUSIVE MODE;

    -- Only adding a manual range is refused, at the part of the capacity
    -- that auto-bans may not hold: auto-bans never crowd out manual ranges
    -- (they replace their own oldest; security.c).  The other functions
    -- and the launcher load what fits.
    SELECT s.capacity, s.capacity - s.auto_ban_capacity INTO cap, manual_cap
      FROM adr_ops._security_state() s;
    SELECT count(*) + 1 INTO would FROM adr_ops.blocked_clients b
     WHERE b.client <> target AND b.blocked_by <> 'adr_ops auto-ban';
    IF would > manual_cap THEN
        RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
            MESSAGE = 'too many blocked addresses',
            DETAIL = format('%s manual ranges would be blocked; %s of the %s entries of "adr_ops.max_blocked" are for them (the rest, "adr_ops.auth_ban_share", for auto-bans).',
                            would, manual_cap, cap),
            HINT = 'Unblock ranges with adr_unblock_ip(), block wider ranges, or raise "adr_ops.max_blocked" and restart the server.';
    END IF;

    expires := now() + adr_block_ip.duration;
    INSERT INTO adr_ops.blocklist AS b (client, reason, expires_at, blocked_by)
    VALUES (target, adr_block_ip.reason, expires, adr_ops._calling_role())
    ON CONFLICT ON CONSTRAINT blocklist_pkey DO UPDATE
       SET reason = excluded.reason, expires_at = excluded.expires_at,
           blocked_at = excluded.blocked_at, blocked_by = excluded.blocked_by;
    PERFORM adr_ops._security_stage();

    IF adr_block_ip.terminate THEN
        terminated := adr_ops._terminate_from(target);
    END IF;
    INSERT INTO adr_ops.security_actions (actor, action, target, detail)
    VALUES (adr_ops._calling_role(), 'block', target::text,
            concat_ws('; ', adr_block_ip.reason,
                      'until ' || expires, terminated || ' sessions terminated'));
    RETURN terminated;
END
$$;
CREATE OR REPLACE FUNCTION adr_ops.adr_unblock_ip(client cidr)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- adr_block_ip() stored an IPv4-mapped range as IPv4; a row written
    -- otherwise may still have the mapped form
    target cidr := adr_ops._ipv4_unmapped(adr_unblock_ip.client);
BEGIN
    IF adr_unblock_ip.client IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'client must not be null';
    END IF;
    LOCK TABLE adr_ops.blocklist IN SHARE ROW EXCLUSIVE MODE;
    -- A pending auto-ban of this address becomes a row first, so it goes too.
    PERFORM adr_ops._security_stage();
    DELETE FROM adr_ops.blocklist b WHERE b.client IN (adr_unblock_ip.client, target);
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('range "%s" is not blocked', adr_unblock_ip.client),
            HINT = 'adr_ops.blocked_clients lists the blocked ranges; unblock a range as it was blocked.';
    END IF;
    PERFORM adr_ops._security_stage();
    INSERT INTO adr_ops.security_actions (actor, action, target)
    VALUES (adr_ops._calling_role(), 'unblock', target::text);
    RETURN true;
END
$$;

-- adr_access_review(): the counted failures of an IPv6 client are those of
-- its /64 (src/security.sql).
CREATE OR REPLACE FUNCTION adr_ops.adr_access_review(client inet DEFAULT NULL, since interval DEFAULT '24 hours',
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
         -- f.client is an IPv6 client's /64: it contains the address asked for
         WHERE adr_access_review.client IS NULL OR f.client && adr_access_review.client
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
-- Trust: functions of other extensions are bound by membership (pg_stat_statements),
-- recent_errors stores counts instead of message texts, the audit flags a pinned
-- search_path that lets others shadow pg_catalog.
-- Objects of other extensions (pg_stat_statements; amcheck and others
-- later).  Their schema is often public, where others may create objects,
-- so adr_ops never finds them by name alone: _extension_function() takes
-- the function that pg_depend records as a member of the extension, owned
-- by a superuser, and refuses when a function outside the extension shares
-- its name in its schema; _extension_call() then writes the call with the
-- schema-qualified name and every argument cast to its exact type.  With
-- no other candidate of that name in that schema, PostgreSQL's resolution
-- can only find the member (a function created there later, with defaults
-- or variadic, makes the call ambiguous or loses to the exact match: an
-- error at worst, never someone else's code).
CREATE FUNCTION adr_ops._extension_function(extname name, proname name, argtypes regtype[])
RETURNS regprocedure
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ext oid;
    fn oid;
    nsp oid;
    other text;
BEGIN
    SELECT e.oid INTO ext FROM pg_extension e WHERE e.extname = _extension_function.extname;
    SELECT p.oid, p.pronamespace INTO fn, nsp
      FROM pg_depend d
      JOIN pg_proc p ON p.oid = d.objid
      JOIN pg_roles o ON o.oid = p.proowner
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext
       AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
       AND p.proname = _extension_function.proname
       AND p.proargtypes::text = array_to_string(_extension_function.argtypes::oid[], ' ')
       AND o.rolsuper;
    IF fn IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('extension %s has no function %s(%s) owned by a superuser',
                             _extension_function.extname, _extension_function.proname,
                             array_to_string(_extension_function.argtypes, ', ')),
            HINT = format('Run CREATE EXTENSION %s, or ALTER EXTENSION %s UPDATE.',
                          _extension_function.extname, _extension_function.extname);
    END IF;
    SELECT format('%s, owned by %s', p.oid::regprocedure, pg_get_userbyid(p.proowner)) INTO other
      FROM pg_proc p
     WHERE p.pronamespace = nsp AND p.proname = _extension_function.proname
       AND NOT EXISTS (SELECT FROM pg_depend d
                        WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                          AND d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext
                          AND d.deptype = 'e')
     ORDER BY p.oid LIMIT 1;
    IF other IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'ambiguous_function',
            MESSAGE = format('function %s of extension %s shares its name with a function that is not part of the extension',
                             fn::regprocedure, _extension_function.extname),
            DETAIL = format('The other function is %s; adr_ops calls only the extension''s own function.', other),
            HINT = 'Drop or rename the other function, or move the extension to a schema where only trusted roles may create objects.';
    END IF;
    RETURN fn;
END
$$;
COMMENT ON FUNCTION adr_ops._extension_function(name, name, regtype[]) IS
    'API: private. The function of an extension, by membership: its name is shared with no function outside the extension';

CREATE FUNCTION adr_ops._extension_call(fn regprocedure, args text[]) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('%I.%I(%s)', n.nspname, p.proname,
                  (SELECT string_agg(format('%L::%I.%I', a.arg, tn.nspname, t.typname), ', ' ORDER BY a.i)
                     FROM unnest(_extension_call.args) WITH ORDINALITY a(arg, i)
                     JOIN pg_type t ON t.oid = p.proargtypes[a.i - 1]
                     JOIN pg_namespace tn ON tn.oid = t.typnamespace))
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE p.oid = _extension_call.fn
       AND p.pronargs = coalesce(cardinality(_extension_call.args), 0)
$$;
COMMENT ON FUNCTION adr_ops._extension_call(regprocedure, text[]) IS
    'API: private. The call of a function from _extension_function(): schema-qualified, every argument cast to its exact type';

CREATE FUNCTION adr_ops._extension_relation(extname name, relname name) RETURNS regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.oid::regclass
      FROM pg_extension e
      JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
                      AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
      JOIN pg_class c ON c.oid = d.objid
      JOIN pg_roles o ON o.oid = c.relowner
     WHERE e.extname = _extension_relation.extname
       AND c.relname = _extension_relation.relname
       AND o.rolsuper
$$;
COMMENT ON FUNCTION adr_ops._extension_relation(name, name) IS
    'API: private. The table or view of an extension, by membership, or NULL';

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['adr_ops._extension_function(name, name, regtype[])',
                             'adr_ops._extension_call(regprocedure, text[])',
                             'adr_ops._extension_relation(name, name)'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pg_monitor', f);
    END LOOP;
END
$grants$;

CREATE OR REPLACE FUNCTION adr_ops._pgss_query(showtext boolean) RETURNS text
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fn regprocedure;
    cols text[];
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension e WHERE e.extname = 'pg_stat_statements') THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = 'pg_stat_statements is not installed in this database',
            DETAIL = 'adr_ops reads query statistics from pg_stat_statements.',
            HINT = 'Add pg_stat_statements to "shared_preload_libraries" and restart the server, then run CREATE EXTENSION pg_stat_statements in this database.';
    END IF;
    fn := adr_ops._extension_function('pg_stat_statements', 'pg_stat_statements', '{boolean}');
    SELECT array_agg(a.name) INTO cols
      FROM pg_proc p, unnest(p.proargnames, p.proargmodes) a(name, mode)
     WHERE p.oid = fn AND a.mode IN ('o', 't');
    RETURN format('SELECT s.userid, s.dbid, %s AS toplevel, s.queryid, %s AS query, s.calls, '
                  '       s.%I AS total_ms, s.%I AS max_ms, s.%I AS stddev_ms, s.rows, '
                  '       s.shared_blks_hit AS blks_hit, s.shared_blks_read AS blks_read '
                  '  FROM %s s WHERE s.queryid IS NOT NULL',
                  CASE WHEN 'toplevel' = ANY (cols) THEN 's.toplevel' ELSE 'true' END,
                  CASE WHEN showtext THEN 's.query' ELSE 'NULL::text' END,
                  CASE WHEN 'total_exec_time' = ANY (cols) THEN 'total_exec_time' ELSE 'total_time' END,
                  CASE WHEN 'max_exec_time' = ANY (cols) THEN 'max_exec_time' ELSE 'max_time' END,
                  CASE WHEN 'stddev_exec_time' = ANY (cols) THEN 'stddev_exec_time' ELSE 'stddev_time' END,
                  adr_ops._extension_call(fn, ARRAY[showtext::text]));
END
$$;

CREATE OR REPLACE FUNCTION adr_ops._pgss_reset_at() RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    info regclass := adr_ops._extension_relation('pg_stat_statements', 'pg_stat_statements_info');
    reset_at timestamptz;
BEGIN
    IF info IS NOT NULL THEN
        EXECUTE format('SELECT stats_reset FROM %s', info) INTO reset_at;
    END IF;
    RETURN reset_at;
END
$$;

CREATE OR REPLACE FUNCTION adr_ops._check_recent_errors() RETURNS SETOF adr_ops._health_reading
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

CREATE FUNCTION adr_ops._search_path_unsafe(path text, owner oid) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH items AS (
        SELECT t.i, CASE WHEN t.item ~ '^".*"$'
                         THEN replace(substr(t.item, 2, length(t.item) - 2), '""', '"')
                         ELSE lower(t.item) END AS name
          FROM regexp_split_to_table(btrim(_search_path_unsafe.path), '\s*,\s*') WITH ORDINALITY t(item, i)
         WHERE t.item <> ''
    ), catalog_at AS (
        SELECT coalesce(min(it.i) FILTER (WHERE it.name = 'pg_catalog'), 0) AS i FROM items it
    )
    SELECT string_agg(u.name, ', ' ORDER BY u.i)
      FROM (SELECT 0::bigint AS i, 'pg_temp (searched first when not listed)' AS name
             WHERE NOT EXISTS (SELECT FROM items it WHERE it.name = 'pg_temp')
            UNION ALL
            SELECT it.i, CASE WHEN it.name IN ('pg_temp', '$user') THEN it.name
                              ELSE quote_ident(it.name) END
              FROM items it, catalog_at c
             WHERE it.i < c.i
               AND (it.name IN ('pg_temp', '$user')
                    OR NOT EXISTS (
                        SELECT FROM pg_namespace n JOIN pg_roles so ON so.oid = n.nspowner
                         WHERE n.nspname = it.name
                           AND (n.nspowner = _search_path_unsafe.owner OR so.rolsuper)
                           AND NOT EXISTS (
                               SELECT FROM aclexplode(n.nspacl) a
                                 LEFT JOIN pg_roles g ON g.oid = a.grantee
                                WHERE a.privilege_type = 'CREATE'
                                  AND a.grantee <> _search_path_unsafe.owner
                                  AND NOT coalesce(g.rolsuper, false))))) u
$$;
COMMENT ON FUNCTION adr_ops._search_path_unsafe(text, oid) IS
    'API: private. What a pinned search_path lets others shadow before pg_catalog, or NULL';
REVOKE ALL ON FUNCTION adr_ops._search_path_unsafe(text, oid) FROM PUBLIC;

CREATE OR REPLACE FUNCTION adr_ops.adr_security_audit(
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
    SELECT 'high', 'security_definer_search_path', p.oid::regprocedure::text,
           format('SECURITY DEFINER function owned by %s whose search_path puts %s before pg_catalog',
                  pg_get_userbyid(p.proowner), u.unsafe),
           'ALTER FUNCTION ... SET search_path = pg_catalog, pg_temp (and qualify the names it uses).'
      FROM pg_proc p,
           LATERAL (SELECT adr_ops._search_path_unsafe(substr(c, 13), p.proowner) AS unsafe
                      FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%' LIMIT 1) u
     WHERE p.prosecdef
       AND p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
       AND u.unsafe IS NOT NULL
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

-- recent_errors details stored by 1.0 carried the last message text.
UPDATE adr_ops.health_history
   SET detail = pg_catalog.regexp_replace(detail, '; last: .*$', '')
 WHERE check_name OPERATOR(pg_catalog.=) 'recent_errors';
UPDATE adr_ops.alerts
   SET detail = pg_catalog.regexp_replace(detail, '; last: .*$', '')
 WHERE source OPERATOR(pg_catalog.=) 'health'
   AND check_name OPERATOR(pg_catalog.=) 'recent_errors';

-- Issue 20: the bloat estimate in one set-based pass (src/bloat.sql).
CREATE FUNCTION adr_ops._bloat_estimate_calc(
    c_found bool, relkind "char", amname name, relpersistence "char",
    relpages int4, reltuples float4, reloptions text[], size bigint,
    i_found bool, indisunique bool, indisvalid bool, has_expr bool,
    has_pred bool, has_include bool,
    t_found bool, t_reltuples float4, n_live_tup bigint, n_dead_tup bigint,
    n_mod_since_analyze bigint, no_access bool, ncols int,
    attlens int2[], attaligns "char"[], avg_widths int4[], null_fracs float4[],
    n_distincts float4[],
    OUT total_bytes bigint, OUT bloat_bytes bigint, OUT bloat_pct float8,
    OUT dead_pct float8, OUT free_pct float8, OUT method text,
    OUT error_pct float8, OUT vacuum_pct float8)
RETURNS record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bs int := current_setting('block_size')::int;
    ff int;
    hdr numeric;
    off numeric := 0;
    nulls bool := false;
    width numeric;
    per_page numeric;
    pages numeric;
    leaves numeric;
    nstats int := 0;
    distinct_key bool := false;
    live numeric;
    actual numeric;
    attlen int2;
    attalign "char";
    avg_width int4;
    null_frac float4;
    n_distinct float4;
BEGIN
    IF NOT c_found THEN
        method := 'relation no longer exists';
        RETURN;
    END IF;
    -- On a hot standby an unlogged relation has no main fork, no pages.
    IF relpersistence = 'u' AND pg_is_in_recovery() THEN
        method := 'unlogged relation during recovery';
        RETURN;
    END IF;
    total_bytes := coalesce(size, relpages::bigint * bs);

    IF relkind = 't' THEN
        method := 'no statistics (TOAST tables are not analyzed)';
        RETURN;
    ELSIF relkind = 'i' AND amname IS DISTINCT FROM 'btree' THEN
        method := format('unsupported: %s index', amname);
        RETURN;
    ELSIF relkind IN ('r', 'm') AND amname IS DISTINCT FROM 'heap' THEN
        method := format('unsupported: table access method %s', amname);
        RETURN;
    END IF;

    IF relkind = 'i' THEN
        IF NOT i_found THEN
            method := 'relation no longer exists';
            RETURN;
        ELSIF has_expr THEN
            method := 'expression index';
            RETURN;
        ELSIF has_pred THEN
            method := 'partial index';
            RETURN;
        ELSIF NOT indisvalid THEN
            method := 'invalid index';
            RETURN;
        END IF;
    END IF;
    IF NOT t_found THEN
        method := 'relation no longer exists';
        RETURN;
    END IF;

    IF no_access THEN
        method := 'no access to pg_stats';
        RETURN;
    END IF;
    -- Never vacuumed nor analyzed.  (A table analyzed once has pg_stats
    -- rows even after the statistics counters were reset, which clears
    -- last_analyze: the columns below decide.)
    IF reltuples < 0 THEN
        method := 'no statistics';
        RETURN;
    END IF;
    live := CASE WHEN coalesce(n_live_tup, 0) + coalesce(n_dead_tup, 0) > 0
                 THEN n_live_tup ELSE greatest(t_reltuples, 0) END;
    actual := ceil(total_bytes::numeric / bs);

    FOR k IN 1 .. coalesce(ncols, 0) LOOP
        CONTINUE WHEN avg_widths[k] IS NULL;
        attlen := attlens[k];
        attalign := attaligns[k];
        avg_width := avg_widths[k];
        null_frac := null_fracs[k];
        n_distinct := n_distincts[k];
        nstats := nstats + 1;
        IF null_frac > 0 THEN
            nulls := true;
        END IF;
        -- Alignment: a varlena shorter than 127 bytes has a 1-byte header
        -- and is not aligned.
        IF NOT (attlen = -1 AND avg_width < 127) THEN
            off := ceil(off / CASE attalign WHEN 'd' THEN 8 WHEN 'i' THEN 4
                                            WHEN 's' THEN 2 ELSE 1 END)
                   * CASE attalign WHEN 'd' THEN 8 WHEN 'i' THEN 4 WHEN 's' THEN 2 ELSE 1 END;
        END IF;
        off := off + avg_width * (1 - null_frac);
        -- A column whose values are (nearly) all distinct makes every key
        -- distinct: nothing for deduplication to pack.
        IF n_distinct < -0.95 OR n_distinct > 0.95 * greatest(t_reltuples, 1) THEN
            distinct_key := true;
        END IF;
    END LOOP;
    IF nstats < coalesce(ncols, 0) THEN
        method := 'no statistics';
        RETURN;
    END IF;
    -- The widths are ANALYZE's; the row count need not be: the statistics
    -- collector's n_live_tup follows every insert and delete (after a
    -- reset of the counters it is 0: then reltuples).  Widths older than
    -- modifications of half the table are stale.  (Checked after the
    -- columns: a table VACUUM has seen but ANALYZE never has has no
    -- statistics, which says more than stale ones.)
    IF n_mod_since_analyze > 0.5 * greatest(t_reltuples, 1000) THEN
        method := 'stale statistics';
        RETURN;
    END IF;
    -- A non-unique btree (13 and later) with duplicate keys: deduplication
    -- packs them into posting lists, by an amount pg_stats cannot tell.
    IF relkind = 'i' AND NOT indisunique AND NOT has_include AND NOT distinct_key
       AND coalesce((SELECT o.option_value FROM pg_options_to_table(reloptions) o
                      WHERE o.option_name = 'deduplicate_items'), 'on') NOT IN ('off', 'false', '0')
       AND current_setting('server_version_num')::int >= 130000 THEN
        method := 'deduplicated btree';
        RETURN;
    END IF;

    IF relkind = 'i' THEN
        ff := coalesce((SELECT o.option_value::int FROM pg_options_to_table(reloptions) o
                         WHERE o.option_name = 'fillfactor'), 90);
        hdr := 8 + CASE WHEN nulls THEN 4 ELSE 0 END;
        width := ceil((hdr + off) / 8) * 8 + 4;
        -- Entries: the index's count at its last VACUUM or ANALYZE (dead
        -- rows keep theirs until VACUUM), or more if rows came since.  A
        -- page takes at least one entry, whatever the fillfactor (at
        -- fillfactor 10 a key wider than about 800 bytes is more than the
        -- fill).
        leaves := ceil(greatest(reltuples, live, 0)
                       / greatest(floor((bs - 24 - 16) * ff / 100.0 / width), 1));
        pages := 1 + leaves + CASE WHEN leaves > 1
                                   THEN ceil(leaves / greatest(floor((bs - 24 - 16) * 0.7 / width), 1))
                                   ELSE 0 END;
        bloat_pct := CASE WHEN actual > 0
                          THEN greatest(100.0 * (actual - pages) / actual, 0) ELSE 0 END;
    ELSE
        ff := coalesce((SELECT o.option_value::int FROM pg_options_to_table(reloptions) o
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
        dead_pct := round(100.0 * coalesce(n_dead_tup, 0) * width / greatest(total_bytes, bs), 2);
        vacuum_pct := 100.0 * coalesce(n_dead_tup, 0)
                      / greatest(coalesce(n_live_tup, 0) + coalesce(n_dead_tup, 0), 1);
    END IF;
    bloat_bytes := round(bloat_pct / 100 * total_bytes);
    method := 'estimate';
END
$$;
COMMENT ON FUNCTION adr_ops._bloat_estimate_calc(bool, "char", name, "char", int4, float4, text[], bigint, bool, bool, bool, bool, bool, bool, bool, float4, bigint, bigint, bigint, bool, int, int2[], "char"[], int4[], float4[], float4[]) IS
    'API: private. The arithmetic of the bloat estimate for one relation, from what _bloat_estimates read';
REVOKE ALL ON FUNCTION adr_ops._bloat_estimate_calc(bool, "char", name, "char", int4, float4, text[], bigint, bool, bool, bool, bool, bool, bool, bool, float4, bigint, bigint, bigint, bool, int, int2[], "char"[], int4[], float4[], float4[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._bloat_estimate_calc(bool, "char", name, "char", int4, float4, text[], bigint, bool, bool, bool, bool, bool, bool, bool, float4, bigint, bigint, bigint, bool, int, int2[], "char"[], int4[], float4[], float4[]) TO pg_monitor;

CREATE FUNCTION adr_ops._bloat_estimates(rels oid[], sizes bigint[] DEFAULT NULL)
RETURNS TABLE (rel oid, total_bytes bigint, bloat_bytes bigint, bloat_pct float8,
    dead_pct float8, free_pct float8, method text, error_pct float8, vacuum_pct float8)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
    WITH r AS (
        SELECT x.rel, cl.oid IS NOT NULL AS c_found, cl.relkind, am.amname,
               cl.relpersistence, cl.relpages, cl.reltuples, cl.reloptions,
               CASE WHEN $2 IS NOT NULL THEN x.size
                    WHEN cl.relpersistence = 'u' AND pg_is_in_recovery() THEN NULL
                    ELSE adr_ops._bloat_size(cl.oid) END AS size,
               i.indexrelid IS NOT NULL AS i_found, i.indisunique, i.indisvalid,
               i.indexprs IS NOT NULL AS has_expr, i.indpred IS NOT NULL AS has_pred,
               i.indnkeyatts < i.indnatts AS has_include, i.indkey::int2[] AS keys,
               t.oid AS toid, t.relname AS tname, tn.nspname AS tnsp, t.reltuples AS t_reltuples
          FROM unnest($1, $2) AS x(rel, size)
          LEFT JOIN pg_class cl ON cl.oid = x.rel
          LEFT JOIN pg_am am ON am.oid = cl.relam
          LEFT JOIN pg_index i ON cl.relkind = 'i' AND i.indexrelid = cl.oid
          LEFT JOIN pg_class t ON t.oid = CASE WHEN cl.relkind = 'i' THEN i.indrelid ELSE cl.oid END
          LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
    ), cols AS (
        SELECT r.rel, count(*)::int AS ncols,
               bool_or(NOT has_column_privilege(r.toid, at.attnum, 'SELECT')) AS no_access,
               array_agg(at.attlen ORDER BY pos) AS attlens,
               array_agg(at.attalign ORDER BY pos) AS attaligns,
               array_agg(ps.avg_width ORDER BY pos) AS avg_widths,
               array_agg(ps.null_frac ORDER BY pos) AS null_fracs,
               array_agg(ps.n_distinct ORDER BY pos) AS n_distincts
          FROM r
          JOIN pg_attribute at ON at.attrelid = r.toid AND NOT at.attisdropped AND at.attnum > 0
                              AND (r.relkind <> 'i' OR at.attnum = ANY (r.keys))
          LEFT JOIN %s
          CROSS JOIN LATERAL (SELECT CASE WHEN r.relkind = 'i' THEN array_position(r.keys, at.attnum)
                                          ELSE at.attnum END AS pos) p
         WHERE r.relkind <> 't'
         GROUP BY r.rel
    )
    SELECT r.rel, e.*
      FROM r
      LEFT JOIN cols ON cols.rel = r.rel
      CROSS JOIN LATERAL adr_ops._bloat_estimate_calc(
          r.c_found, r.relkind, r.amname, r.relpersistence, r.relpages, r.reltuples,
          r.reloptions, r.size, r.i_found, r.indisunique, r.indisvalid, r.has_expr,
          r.has_pred, r.has_include, r.toid IS NOT NULL, r.t_reltuples,
          pg_stat_get_live_tuples(r.toid), pg_stat_get_dead_tuples(r.toid),
          pg_stat_get_mod_since_analyze(r.toid), coalesce(cols.no_access, false),
          coalesce(cols.ncols, 0), cols.attlens, cols.attaligns, cols.avg_widths,
          cols.null_fracs, cols.n_distincts) e
    $q$,
    -- A few relations: each one's pg_stats rows through the indexes of
    -- pg_class, pg_attribute and pg_statistic (a subquery the planner
    -- keeps, OFFSET 0: joined on the names it would read all of pg_stats
    -- even for one relation); more: pg_stats read once, hash-joined.
    CASE WHEN cardinality(rels) <= 100
         THEN $s$LATERAL (SELECT s.avg_width, s.null_frac, s.n_distinct FROM pg_stats s
                         WHERE s.schemaname OPERATOR(pg_catalog.=) r.tnsp
                           AND s.tablename OPERATOR(pg_catalog.=) r.tname
                           AND s.attname OPERATOR(pg_catalog.=) at.attname
                           AND NOT s.inherited
                        OFFSET 0) ps ON true$s$
         ELSE $s$(SELECT s.schemaname, s.tablename, s.attname, s.avg_width, s.null_frac,
                        s.n_distinct FROM pg_stats s WHERE NOT s.inherited) ps
                 ON ps.schemaname OPERATOR(pg_catalog.=) r.tnsp
                AND ps.tablename OPERATOR(pg_catalog.=) r.tname
                AND ps.attname OPERATOR(pg_catalog.=) at.attname$s$
         END) USING rels, sizes;
END
$$;
COMMENT ON FUNCTION adr_ops._bloat_estimates(oid[], bigint[]) IS
    'API: private. Bloat estimated from statistics for a set of relations, in one pass over the catalogs and statistics';
REVOKE ALL ON FUNCTION adr_ops._bloat_estimates(oid[], bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._bloat_estimates(oid[], bigint[]) TO pg_monitor;

CREATE OR REPLACE FUNCTION adr_ops._bloat_estimate(rel oid,
    OUT total_bytes bigint, OUT bloat_bytes bigint, OUT bloat_pct float8,
    OUT dead_pct float8, OUT free_pct float8, OUT method text,
    OUT error_pct float8, OUT vacuum_pct float8)
RETURNS record
LANGUAGE sql STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.total_bytes, e.bloat_bytes, e.bloat_pct, e.dead_pct, e.free_pct, e.method,
           e.error_pct, e.vacuum_pct
      FROM adr_ops._bloat_estimates(ARRAY[rel]) e
$$;

CREATE OR REPLACE FUNCTION adr_ops._bloat_row(rel oid, mode text, min_bytes bigint,
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
    -- A TOAST table's table through its dependency on it (pg_depend is
    -- indexed by the dependent object, reltoastrelid by nothing).
    SELECT n.nspname, cl.relname, cl.relkind,
           coalesce(it.relname,
                    (SELECT ot.relname FROM pg_depend d
                       JOIN pg_class ot ON ot.oid = d.refobjid AND ot.reltoastrelid = cl.oid
                      WHERE cl.relkind = 't' AND d.classid = 'pg_class'::regclass
                        AND d.objid = cl.oid AND d.objsubid = 0
                      LIMIT 1)) AS owner
      INTO c
      FROM pg_class cl
      JOIN pg_namespace n ON n.oid = cl.relnamespace
      LEFT JOIN pg_index i ON i.indexrelid = cl.oid
      LEFT JOIN pg_class it ON it.oid = i.indrelid
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

-- The relations the report covers, from one scan of pg_class: tables,
-- materialized views, TOAST tables and btree or other indexes of tables,
-- outside pg_catalog, information_schema and the TOAST schemas (a TOAST
-- table or an index goes with its table's schema, which schema_filter, a
-- LIKE pattern, matches); owner is the index's or TOAST table's table.
CREATE FUNCTION adr_ops._bloat_candidates(schema_filter text)
RETURNS TABLE (oid oid, nspname name, relname name, relkind "char", owner name)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT cl.oid, n.nspname, cl.relname, cl.relkind, coalesce(it.relname, ot.relname)
      FROM pg_class cl
      JOIN pg_namespace n ON n.oid = cl.relnamespace
      LEFT JOIN pg_index i ON i.indexrelid = cl.oid
      LEFT JOIN pg_class it ON it.oid = i.indrelid
      LEFT JOIN pg_class ot ON cl.relkind = 't' AND ot.reltoastrelid = cl.oid
      JOIN pg_namespace owner ON owner.oid = coalesce(ot.relnamespace, cl.relnamespace)
     WHERE cl.relkind IN ('r', 'm', 't', 'i')
       AND (cl.relkind <> 't' OR ot.oid IS NOT NULL)
       AND (cl.relkind <> 'i' OR it.relkind IN ('r', 'm'))
       AND owner.nspname NOT IN ('pg_catalog', 'information_schema')
       AND owner.nspname !~ '^pg_toast'
       AND (_bloat_candidates.schema_filter IS NULL OR owner.nspname LIKE _bloat_candidates.schema_filter)
$$;
COMMENT ON FUNCTION adr_ops._bloat_candidates(text) IS
    'API: private. The relations adr_bloat_report() covers, with their schema and owning table';
REVOKE ALL ON FUNCTION adr_ops._bloat_candidates(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._bloat_candidates(text) TO pg_monitor;

CREATE OR REPLACE FUNCTION adr_ops.adr_bloat_report(min_bytes bigint DEFAULT 1048576,
    mode text DEFAULT 'estimate', schema_filter text DEFAULT NULL)
RETURNS TABLE (schemaname name, relname name, kind text, table_name name,
    total_bytes bigint, bloat_bytes bigint, bloat_pct float8,
    dead_pct float8, free_pct float8, method text,
    error_pct float8, suggestion text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deadline timestamptz;
BEGIN
    IF mode IS NULL OR mode NOT IN ('estimate', 'sample', 'exact') THEN
        RAISE EXCEPTION 'unrecognized bloat mode "%"', mode
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'The modes are "estimate", "sample" and "exact".';
    END IF;
    IF mode = 'estimate' THEN
        -- One pass: the candidates, then _bloat_estimates() of all of
        -- them at once, the names and suggestions as _bloat_row() gives
        -- them.
        RETURN QUERY
        WITH cand AS MATERIALIZED (
            SELECT * FROM adr_ops._bloat_candidates(schema_filter)
        ), sized AS MATERIALIZED (
            SELECT cand.*, adr_ops._bloat_size(cand.oid) AS size FROM cand
        ), listed AS MATERIALIZED (
            SELECT sized.oid, sized.size FROM sized
             WHERE sized.size IS NULL OR sized.size >= coalesce(min_bytes, 0)
        ), e AS (
            SELECT * FROM adr_ops._bloat_estimates(ARRAY(SELECT listed.oid FROM listed ORDER BY listed.oid),
                                                   ARRAY(SELECT listed.size FROM listed ORDER BY listed.oid))
        ), k AS (
            SELECT sized.nspname, sized.relname,
                   CASE sized.relkind WHEN 't' THEN 'toast' WHEN 'i' THEN 'index' ELSE 'table' END AS kind,
                   sized.owner, e.*
              FROM sized JOIN e ON e.rel = sized.oid
             WHERE e.method IS DISTINCT FROM 'relation no longer exists'
        )
        SELECT k.nspname, k.relname, k.kind, k.owner, k.total_bytes, k.bloat_bytes,
               round(k.bloat_pct::numeric, 2)::float8, round(k.dead_pct::numeric, 2)::float8,
               round(k.free_pct::numeric, 2)::float8, k.method, round(k.error_pct::numeric, 2)::float8,
               CASE
                   WHEN k.kind = 'index' AND k.bloat_pct >= 30
                       THEN format('REINDEX INDEX CONCURRENTLY %I.%I', k.nspname, k.relname)
                   WHEN k.kind <> 'index' AND (k.vacuum_pct >= 10 OR k.dead_pct >= 10)
                       THEN 'VACUUM'
                   WHEN k.kind <> 'index' AND k.bloat_pct >= 50
                       THEN 'VACUUM FULL or pg_repack'
                   WHEN k.bloat_pct IS NOT NULL
                       THEN 'nothing'
                   END
          FROM k
         ORDER BY k.bloat_bytes DESC NULLS LAST, k.nspname, k.relname;
        RETURN;
    END IF;
    -- Pages are read largest relation first, until adr_ops.bloat_report_timeout
    -- (0: no limit); the relations not reached are listed with no figures.
    deadline := clock_timestamp()
                + nullif(coalesce(current_setting('adr_ops.bloat_report_timeout', true), '1min')::interval,
                         interval '0');
    RETURN QUERY
    SELECT r.*
      FROM (SELECT c.*, adr_ops._bloat_size(c.oid) AS size
              FROM adr_ops._bloat_candidates(schema_filter) c
             ORDER BY 6 DESC NULLS LAST, 1
            OFFSET 0) cand
      -- clock_timestamp() once per relation, before its pages are read (the
      -- reference to cand makes the subquery run again for each)
      CROSS JOIN LATERAL (SELECT cand.oid IS NOT NULL AND (deadline IS NULL OR clock_timestamp() < deadline)
                                 AS in_time OFFSET 0) t
      CROSS JOIN LATERAL (
            SELECT b.* FROM adr_ops._bloat_row(cand.oid, mode, coalesce(min_bytes, 0), true) b
             WHERE t.in_time
            UNION ALL
            SELECT cand.nspname, cand.relname,
                   CASE cand.relkind WHEN 't' THEN 'toast' WHEN 'i' THEN 'index' ELSE 'table' END,
                   cand.owner, cand.size, NULL::bigint, NULL::float8, NULL::float8, NULL::float8,
                   'skipped: adr_ops.bloat_report_timeout reached', NULL::float8, NULL::text
             WHERE NOT t.in_time) r
     WHERE (cand.size IS NULL OR cand.size >= coalesce(min_bytes, 0))
       AND r.method IS DISTINCT FROM 'below min_bytes'
       AND r.method IS DISTINCT FROM 'relation no longer exists'
     ORDER BY r.bloat_bytes DESC NULLS LAST, r.schemaname, r.relname;
END
$$;

-- Issue 20: report figures rounded to what they mean (src/statements.sql, src/perf.sql, src/jobs.sql).
CREATE OR REPLACE FUNCTION adr_ops.adr_slow_queries(
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
            SELECT x.queryid, d.datname, r.rolname, x.calls, round(x.total_ms::numeric, 2)::float8,
                   round((x.total_ms / x.calls)::numeric, 2)::float8,
                   round(x.max_ms::numeric, 2)::float8, round(x.stddev_ms::numeric, 2)::float8, x.rows,
                   round((x.blks_hit::float8 / nullif(x.blks_hit + x.blks_read, 0))::numeric, 3)::float8,
                   round((100 * x.total_ms / nullif(agg.grand, 0))::numeric, 1)::float8,
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
        SELECT w.queryid, db.datname, r.rolname, w.calls, round(w.total_ms::numeric, 2)::float8,
               round((w.total_ms / w.calls)::numeric, 2)::float8,
               NULL::float8, NULL::float8, w.rows,
               round((w.hit::float8 / nullif(w.hit + w.rd, 0))::numeric, 3)::float8,
               round((100 * w.total_ms / nullif((SELECT sum(a.total_ms) FROM w a WHERE a.toplevel), 0))::numeric, 1)::float8,
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

CREATE OR REPLACE FUNCTION adr_ops.adr_query_trend(queryid bigint, since interval DEFAULT '7 days',
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
    SELECT s.prev_at, s.taken_at, coalesce(d.calls, 0)::bigint,
           round(coalesce(d.total_ms, 0)::numeric, 2)::float8,
           round((d.total_ms / nullif(d.calls, 0))::numeric, 2)::float8
      FROM snaps s LEFT JOIN deltas d ON d.snapshot_id = s.id
     WHERE s.taken_at >= now() - adr_query_trend.since AND s.prev_at IS NOT NULL
     ORDER BY s.taken_at
$$;
CREATE OR REPLACE FUNCTION adr_ops.adr_cache_stats(
    OUT schemaname name, OUT relname name, OUT kind text,
    OUT hits bigint, OUT reads bigint, OUT hit_ratio float8)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT b.schemaname, b.relname, b.kind, b.hits, b.reads,
           round((b.hits::float8 / nullif(b.hits + b.reads, 0))::numeric, 3)::float8
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

-- Issue 20: adr_index_advice() without JIT (src/perf.sql).
CREATE OR REPLACE FUNCTION adr_ops.adr_index_advice(
    OUT finding text, OUT object text, OUT table_name text, OUT evidence text,
    OUT statement text)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
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
CREATE OR REPLACE FUNCTION adr_ops.adr_pipeline_status(since interval DEFAULT '24 hours',
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
           round(((count(*) FILTER (WHERE p.status = 'failed' AND p.completed_at >= now() - since))::float8
                  / nullif(count(*) FILTER (WHERE p.status IN ('succeeded', 'failed')
                                              AND p.completed_at >= now() - since), 0))::numeric, 3)::float8,
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

-- Slow query log and execution plans (issue 21): new objects of src/plans.sql, verbatim.

-- plans: the slow query log and execution plans (runbook: Database
-- Performance Issues, steps 1 and 2; added 1.1) ------------------------------

-- The "duration: N ms" entries of the server log (log_min_duration_statement,
-- log_duration, auto_explain).  The texts are other sessions' statements:
-- C checks pg_read_server_files as for adr_log_lines().
CREATE FUNCTION adr_ops.adr_slow_log(
    since timestamptz DEFAULT pg_catalog.now() OPERATOR(pg_catalog.-) '1 hour'::pg_catalog.interval,
    OUT log_time timestamptz, OUT duration_ms float8, OUT pid integer, OUT database text,
    OUT user_name text, OUT application text, OUT statement text, OUT parameters text,
    OUT queryid bigint, OUT plan text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'adr_slow_log'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops.adr_slow_log(timestamptz) IS
    'the duration entries of the server log since a time: statement, parameters, query id, auto_explain plan';
REVOKE ALL ON FUNCTION adr_ops.adr_slow_log(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_slow_log(timestamptz) TO pg_read_server_files;

-- What pg_monitor may see of it: counts and times per hour and database,
-- no texts.  SECURITY DEFINER: the texts are read by the owner and only
-- aggregates leave.
CREATE FUNCTION adr_ops.adr_slow_log_counts(
    since timestamptz DEFAULT pg_catalog.now() OPERATOR(pg_catalog.-) '1 day'::pg_catalog.interval,
    OUT hour timestamptz, OUT database text, OUT entries bigint, OUT plans bigint,
    OUT total_ms float8, OUT max_ms float8)
RETURNS SETOF record
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT date_trunc('hour', l.log_time), l.database, count(*), count(l.plan),
           sum(l.duration_ms), max(l.duration_ms)
      FROM adr_ops.adr_slow_log(adr_slow_log_counts.since) l
     GROUP BY 1, 2
     ORDER BY 1, 2
$$;
COMMENT ON FUNCTION adr_ops.adr_slow_log_counts(timestamptz) IS
    'slow log entries and logged plans per hour and database, without texts';
REVOKE ALL ON FUNCTION adr_ops.adr_slow_log_counts(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_slow_log_counts(timestamptz) TO pg_monitor;

-- The shape of a plan: node types, join types, aggregate strategies,
-- relations and indexes, children in order (the join order).  Costs, row
-- counts, times, filters' constants and output columns are left out, so
-- the same plan run with other values has the same shape.  In C: the
-- collector computes it for every plan it stores.
CREATE FUNCTION adr_ops._plan_shape(plan jsonb) RETURNS text
AS 'MODULE_PATHNAME', 'adr_plan_shape'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops._plan_shape(jsonb) IS
    'API: private. The node types, relations, indexes and join order of a plan, as text';

CREATE FUNCTION adr_ops.adr_plan_fingerprint(plan jsonb) RETURNS text
AS 'MODULE_PATHNAME', 'adr_plan_fingerprint'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops.adr_plan_fingerprint(jsonb) IS
    'md5 of a JSON plan''s shape (node types, relations, indexes, join order; not costs or row counts)';

-- One row per plan: collected from auto_explain's log entries by the
-- plan_collect task, or run by adr_explain().
CREATE TABLE adr_ops.query_plans (
    id bigserial PRIMARY KEY,
    queryid bigint,
    fingerprint text NOT NULL,
    duration_ms float8,
    plan jsonb NOT NULL,
    source text NOT NULL CHECK (source IN ('auto_explain', 'adr_explain')),
    database text,
    user_name text,
    pid integer,
    logged_at timestamptz,
    collected_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX query_plans_queryid ON adr_ops.query_plans (queryid, logged_at);
CREATE INDEX query_plans_logged_at ON adr_ops.query_plans (logged_at);
COMMENT ON TABLE adr_ops.query_plans IS
    'execution plans: logged by auto_explain (collected by adr_collect_plans()) or run by adr_explain()';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.query_plans', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.query_plans_id_seq', '');
-- Plans hold query texts and the constants of their filters, as the log does.
GRANT SELECT ON adr_ops.query_plans TO pg_read_server_files;

-- Store the plans auto_explain logged since the newest one stored (the
-- read position: an entry at that very time is stored once, by its time,
-- pid and duration), within adr_ops.snapshot_retention; prune older ones.
-- Only JSON plans are stored (auto_explain.log_format = json).
CREATE FUNCTION adr_ops.adr_collect_plans() RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz := now() - adr_ops._snapshot_retention();
    pos timestamptz;
    stored integer;
BEGIN
    SELECT max(p.logged_at) INTO pos FROM adr_ops.query_plans p WHERE p.source = 'auto_explain';
    pos := greatest(pos, cutoff);
    INSERT INTO adr_ops.query_plans
           (queryid, fingerprint, duration_ms, plan, source, database, user_name, pid, logged_at)
    SELECT l.queryid, adr_ops.adr_plan_fingerprint(l.j), l.duration_ms, l.j,
           'auto_explain', l.database, l.user_name, l.pid, l.log_time
      FROM (SELECT s.*, s.plan::jsonb AS j FROM adr_ops.adr_slow_log(pos) s
             WHERE s.plan LIKE '{%' AND s.log_time IS NOT NULL OFFSET 0) l
     WHERE NOT EXISTS (SELECT FROM adr_ops.query_plans p
                        WHERE p.logged_at = l.log_time AND p.source = 'auto_explain'
                          AND p.pid IS NOT DISTINCT FROM l.pid AND p.duration_ms = l.duration_ms);
    GET DIAGNOSTICS stored = ROW_COUNT;
    DELETE FROM adr_ops.query_plans p WHERE coalesce(p.logged_at, p.collected_at) < cutoff;
    RETURN stored;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_collect_plans() IS
    'stores the JSON plans auto_explain logged since the last collection in query_plans; returns how many';
REVOKE ALL ON FUNCTION adr_ops.adr_collect_plans() FROM PUBLIC;

-- The plans known for a query, newest first.
CREATE FUNCTION adr_ops.adr_query_plans(queryid bigint,
    OUT id bigint, OUT logged_at timestamptz, OUT source text, OUT duration_ms float8,
    OUT fingerprint text, OUT database text, OUT user_name text, OUT plan jsonb)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.id, coalesce(p.logged_at, p.collected_at), p.source, p.duration_ms, p.fingerprint,
           p.database, p.user_name, p.plan
      FROM adr_ops.query_plans p
     WHERE p.queryid = adr_query_plans.queryid
     ORDER BY coalesce(p.logged_at, p.collected_at) DESC, p.id DESC
$$;
COMMENT ON FUNCTION adr_ops.adr_query_plans(bigint) IS
    'the stored plans of a pg_stat_statements query id, newest first';

-- "It was fast yesterday": a query whose newest plan has another shape
-- than the one before it, the change inside the window.  The mean times
-- come from the statement snapshots (adr_query_trend()): before = the
-- snapshot intervals ending between the old plan's last sighting and the
-- change, after = those ending after the change (the interval holding the
-- change counts after); without snapshots, the plans' logged durations.
-- By default only the changes after which the mean rose.
CREATE FUNCTION adr_ops.adr_plan_changes(
    since timestamptz DEFAULT pg_catalog.now() OPERATOR(pg_catalog.-) '7 days'::pg_catalog.interval,
    only_slower boolean DEFAULT true,
    OUT queryid bigint, OUT changed_at timestamptz,
    OUT mean_ms_before float8, OUT mean_ms_after float8, OUT slower boolean,
    OUT old_fingerprint text, OUT new_fingerprint text,
    OUT old_plan jsonb, OUT new_plan jsonb)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH newest AS (
        SELECT DISTINCT ON (p.queryid) p.*, coalesce(p.logged_at, p.collected_at) AS at
          FROM adr_ops.query_plans p
         WHERE p.queryid IS NOT NULL
         ORDER BY p.queryid, coalesce(p.logged_at, p.collected_at) DESC, p.id DESC
    ), pairs AS (
        SELECT n.queryid, n.fingerprint AS new_fp, n.plan AS new_plan, n.duration_ms AS new_ms,
               o.fingerprint AS old_fp, o.plan AS old_plan, o.at AS old_at,
               -- the first sighting of the new shape after the old one
               (SELECT min(coalesce(c.logged_at, c.collected_at)) FROM adr_ops.query_plans c
                 WHERE c.queryid = n.queryid AND c.fingerprint = n.fingerprint
                   AND coalesce(c.logged_at, c.collected_at) > o.at) AS changed_at
          FROM newest n
          CROSS JOIN LATERAL (
                SELECT p.*, coalesce(p.logged_at, p.collected_at) AS at
                  FROM adr_ops.query_plans p
                 WHERE p.queryid = n.queryid AND p.fingerprint <> n.fingerprint
                   AND coalesce(p.logged_at, p.collected_at) < n.at
                 ORDER BY coalesce(p.logged_at, p.collected_at) DESC, p.id DESC
                 LIMIT 1) o
    ), means AS (
        SELECT x.*,
               (SELECT sum(t.total_ms) / nullif(sum(t.calls), 0)
                  FROM adr_ops.adr_query_trend(x.queryid, now() - x.old_at + interval '1 day') t
                 WHERE t.interval_end >= x.old_at AND t.interval_end <= x.changed_at) AS snap_before,
               (SELECT sum(t.total_ms) / nullif(sum(t.calls), 0)
                  FROM adr_ops.adr_query_trend(x.queryid, now() - x.old_at + interval '1 day') t
                 WHERE t.interval_end > x.changed_at) AS snap_after,
               (SELECT avg(c.duration_ms) FROM adr_ops.query_plans c
                 WHERE c.queryid = x.queryid AND c.fingerprint = x.old_fp
                   AND coalesce(c.logged_at, c.collected_at) <= x.old_at) AS plan_before,
               (SELECT avg(c.duration_ms) FROM adr_ops.query_plans c
                 WHERE c.queryid = x.queryid AND c.fingerprint = x.new_fp
                   AND coalesce(c.logged_at, c.collected_at) >= x.changed_at) AS plan_after
          FROM pairs x
         WHERE x.changed_at >= adr_plan_changes.since
    ), r AS (
        SELECT m.*,
               CASE WHEN m.snap_before IS NOT NULL AND m.snap_after IS NOT NULL
                    THEN m.snap_before ELSE m.plan_before END AS before_ms,
               CASE WHEN m.snap_before IS NOT NULL AND m.snap_after IS NOT NULL
                    THEN m.snap_after ELSE m.plan_after END AS after_ms
          FROM means m
    )
    SELECT r.queryid, r.changed_at, r.before_ms, r.after_ms, r.after_ms > r.before_ms,
           r.old_fp, r.new_fp, r.old_plan, r.new_plan
      FROM r
     WHERE NOT adr_plan_changes.only_slower OR r.after_ms > r.before_ms
     ORDER BY r.changed_at DESC, r.queryid
$$;
COMMENT ON FUNCTION adr_ops.adr_plan_changes(timestamptz, boolean) IS
    'queries whose plan shape changed since a time (by default only when the mean time rose), with both plans';

-- Findings from one plan, each with its evidence: sequential scans of
-- large relations under a filter, row estimates off by more than a factor
-- (stale statistics: the ANALYZE to run), sorts and hashes spilled to
-- disk (work_mem), nested loops over many rows.  Actual figures need a
-- plan with ANALYZE (auto_explain.log_analyze, adr_explain()); without
-- them the estimates are used where that makes sense.
CREATE FUNCTION adr_ops.adr_plan_findings(plan jsonb, factor float8 DEFAULT 10,
    large_rows bigint DEFAULT 10000,
    OUT finding text, OUT node text, OUT evidence text, OUT remedy text)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE walk(n, path) AS (
        SELECT coalesce(plan -> 'Plan', plan), '1'
        UNION ALL
        SELECT c.value, w.path || '.' || c.ordinality
          FROM walk w, jsonb_array_elements(coalesce(w.n -> 'Plans', '[]')) WITH ORDINALITY c
    ), nodes AS (
        SELECT w.path, w.n,
               concat_ws(' ', w.n ->> 'Node Type',
                         'on ' || nullif(concat_ws('.', w.n ->> 'Schema', w.n ->> 'Relation Name'), ''),
                         'using ' || (w.n ->> 'Index Name')) AS label,
               CASE WHEN w.n ? 'Relation Name'
                    THEN coalesce(quote_ident(w.n ->> 'Schema') || '.', '') || quote_ident(w.n ->> 'Relation Name')
               END AS rel,
               (w.n ->> 'Plan Rows')::float8 AS est,
               (w.n ->> 'Actual Rows')::float8 AS act,
               coalesce((w.n ->> 'Actual Loops')::float8, 1) AS loops,
               (w.n ->> 'Rows Removed by Filter')::float8 AS removed
          FROM walk w
    )
    SELECT f.finding, f.node, f.evidence, f.remedy FROM (
        SELECT 1 AS o, n.path, 'seq_scan_large' AS finding, n.label AS node,
               format('filter %s over %s rows, %s kept', n.n ->> 'Filter',
                      round(coalesce((n.act + n.removed) * n.loops, c.reltuples::float8, n.est)),
                      coalesce(round(n.act * n.loops)::text, 'about ' || round(n.est))) AS evidence,
               format('an index on the filtered columns of %s (see adr_index_advice())', n.rel) AS remedy
          FROM nodes n
          LEFT JOIN pg_class c ON c.oid = to_regclass(n.rel)
         WHERE n.n ->> 'Node Type' = 'Seq Scan' AND n.n ? 'Filter'
           AND coalesce((n.act + n.removed) * n.loops, c.reltuples::float8, n.est) >= large_rows
        UNION ALL
        SELECT 2, n.path, 'row_estimate', n.label,
               format('estimated %s rows, got %s (a factor of %s)', round(n.est), round(n.act),
                      round((greatest(n.est, n.act) / greatest(least(n.est, n.act), 1))::numeric, 1)),
               CASE WHEN n.rel IS NOT NULL THEN format('ANALYZE %s;', n.rel)
                    ELSE 'ANALYZE the tables below this node' END
          FROM nodes n
         WHERE n.act IS NOT NULL AND greatest(n.est, n.act) >= 100
           AND greatest(n.est, n.act) / greatest(least(n.est, n.act), 1) >= factor
        UNION ALL
        SELECT 3, n.path, 'spill_to_disk', n.label,
               concat_ws(', ',
                         CASE WHEN n.n ->> 'Sort Space Type' = 'Disk'
                              THEN format('sort method %s used %s kB of disk', n.n ->> 'Sort Method', n.n ->> 'Sort Space Used') END,
                         CASE WHEN (n.n ->> 'Hash Batches')::int > 1
                              THEN format('hash in %s batches (%s planned)', n.n ->> 'Hash Batches', n.n ->> 'Original Hash Batches') END,
                         CASE WHEN (n.n ->> 'Disk Usage')::bigint > 0
                              THEN format('hash aggregate used %s kB of disk', n.n ->> 'Disk Usage') END),
               format('raise work_mem (now %s) for this query, e.g. SET LOCAL work_mem in its transaction',
                      current_setting('work_mem'))
          FROM nodes n
         WHERE n.n ->> 'Sort Space Type' = 'Disk' OR (n.n ->> 'Hash Batches')::int > 1
            OR (n.n ->> 'Disk Usage')::bigint > 0
        UNION ALL
        SELECT 4, n.path, 'nested_loop_many', n.label,
               format('the inner side ran %s times', round(coalesce(o.act * o.loops, o.est))),
               'check the join''s estimates (ANALYZE) and an index on the inner side''s join key'
          FROM nodes n
          JOIN nodes o ON o.path = n.path || '.1'
         WHERE n.n ->> 'Node Type' = 'Nested Loop'
           AND coalesce(o.act * o.loops, o.est) >= large_rows
    ) f
    ORDER BY f.o, f.path
$$;
COMMENT ON FUNCTION adr_ops.adr_plan_findings(jsonb, float8, bigint) IS
    'findings from a JSON plan with evidence: large filtered seq scans, row estimate errors, spills to disk, nested loops over many rows';

-- Storing a plan adr_explain() ran: the caller runs the statement with
-- its own rights and needs no privilege on query_plans.
CREATE FUNCTION adr_ops._plan_store(plan jsonb,
    OUT id bigint, OUT queryid bigint, OUT duration_ms float8, OUT fingerprint text,
    OUT plan jsonb)
RETURNS record
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO adr_ops.query_plans (queryid, fingerprint, duration_ms, plan, source, database,
                                     user_name, pid, logged_at)
    VALUES ((_plan_store.plan ->> 'Query Identifier')::bigint, adr_ops.adr_plan_fingerprint(_plan_store.plan),
            (_plan_store.plan ->> 'Execution Time')::float8, _plan_store.plan, 'adr_explain',
            current_database(), session_user, pg_backend_pid(), now())
    RETURNING id, queryid, duration_ms, fingerprint, plan
$$;
COMMENT ON FUNCTION adr_ops._plan_store(jsonb) IS
    'API: private. Stores a plan adr_explain() ran';
REVOKE ALL ON FUNCTION adr_ops._plan_store(jsonb) FROM PUBLIC;

-- EXPLAIN (ANALYZE, BUFFERS, VERBOSE) on demand, guarded as src/plans.c
-- says: parsed as read-only, run in a read-only subtransaction that is
-- rolled back, under a timeout.  Not SECURITY DEFINER: the statement runs
-- as the caller, with the caller's search_path.  Grant EXECUTE on it and
-- on _plan_store() together.
CREATE FUNCTION adr_ops.adr_explain(statement text, params text[] DEFAULT NULL,
    timeout interval DEFAULT '1 min',
    OUT id bigint, OUT queryid bigint, OUT duration_ms float8, OUT fingerprint text,
    OUT plan jsonb)
RETURNS record
AS 'MODULE_PATHNAME', 'adr_explain'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION adr_ops.adr_explain(text, text[], interval) IS
    'EXPLAIN (ANALYZE, BUFFERS) of a read-only statement with its parameters, rolled back, with a timeout; stored in query_plans';
REVOKE ALL ON FUNCTION adr_ops.adr_explain(text, text[], interval) FROM PUBLIC;

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['adr_ops._plan_shape(jsonb)', 'adr_ops.adr_plan_fingerprint(jsonb)',
                             'adr_ops.adr_plan_findings(jsonb, float8, bigint)'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pg_monitor, pg_read_server_files', f);
    END LOOP;
    FOREACH f IN ARRAY ARRAY['adr_ops.adr_query_plans(bigint)',
                             'adr_ops.adr_plan_changes(timestamptz, boolean)'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pg_read_server_files', f);
    END LOOP;
END
$grants$;

-- Plans collected every 5 minutes through the scheduler.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('plan_collect', '*/5 * * * *', 'plan_collect', pg_catalog.current_database());
-- issue 16: incidents (src/incident.sql, whole file: new in 1.1)

-- incident: incidents P1-P3 with acknowledgement, escalation and a timeline
-- (runbook: Incident Response) ----------------------------------------------

-- The runbook's targets per severity: time to acknowledge, to resolve.
CREATE TABLE adr_ops.incident_targets (
    severity text PRIMARY KEY
        CHECK (severity OPERATOR(pg_catalog.=) ANY ('{P1,P2,P3}'::text[])),
    ack_within interval NOT NULL CHECK (ack_within OPERATOR(pg_catalog.>) '0'::interval),
    resolve_within interval NOT NULL CHECK (resolve_within OPERATOR(pg_catalog.>) '0'::interval)
);
COMMENT ON TABLE adr_ops.incident_targets IS
    'per severity, the time to acknowledge and to resolve an incident; past them it is escalated';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incident_targets', '');
GRANT SELECT ON adr_ops.incident_targets TO pg_monitor;
INSERT INTO adr_ops.incident_targets (severity, ack_within, resolve_within) VALUES
    ('P1', '15 minutes', '4 hours'),
    ('P2', '1 hour', '8 hours'),
    ('P3', '1 day', '7 days');
-- pg_dump keeps the rows; a restored one replaces its default (schema.sql).
CREATE TRIGGER incident_targets_upsert BEFORE INSERT ON adr_ops.incident_targets
    FOR EACH ROW EXECUTE FUNCTION adr_ops._config_upsert('severity');

-- Which alerts open an incident: a check name pattern (LIKE), a status
-- lasting at least so long, the severity, and the dedup key ({check} is
-- replaced by the check's name: one incident per check by default).
CREATE TABLE adr_ops.incident_policies (
    name text PRIMARY KEY,
    check_pattern text NOT NULL,
    status text NOT NULL DEFAULT 'CRITICAL'
        CHECK (status OPERATOR(pg_catalog.=) ANY ('{WARNING,CRITICAL,UNKNOWN}'::text[])),
    lasting interval NOT NULL DEFAULT '0'::interval
        CHECK (lasting OPERATOR(pg_catalog.>=) '0'::interval),
    severity text NOT NULL
        CHECK (severity OPERATOR(pg_catalog.=) ANY ('{P1,P2,P3}'::text[])),
    dedup_key text NOT NULL DEFAULT '{check}',
    enabled boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE adr_ops.incident_policies IS
    'alerts that open an incident: check name pattern (LIKE), status, for how long, severity, dedup key ({check} is the check name)';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incident_policies', '');
GRANT SELECT ON adr_ops.incident_policies TO pg_monitor;
INSERT INTO adr_ops.incident_policies (name, check_pattern, status, severity) VALUES
    ('backup_verification', 'backup_verification', 'CRITICAL', 'P1'),
    ('probes', 'probe:%', 'CRITICAL', 'P2');
CREATE TRIGGER incident_policies_upsert BEFORE INSERT ON adr_ops.incident_policies
    FOR EACH ROW EXECUTE FUNCTION adr_ops._config_upsert('name');

CREATE TABLE adr_ops.incidents (
    id bigserial PRIMARY KEY,
    severity text NOT NULL
        CHECK (severity OPERATOR(pg_catalog.=) ANY ('{P1,P2,P3}'::text[])),
    title text NOT NULL,
    summary text,
    status text NOT NULL DEFAULT 'open'
        CHECK (status OPERATOR(pg_catalog.=) ANY ('{open,acknowledged,mitigated,resolved,closed}'::text[])),
    dedup_key text NOT NULL,
    checks text[] NOT NULL DEFAULT '{}',
    jobs bigint[] NOT NULL DEFAULT '{}',
    opened_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    opened_by name,
    acknowledged_at timestamptz,
    acknowledged_by name,
    mitigated_at timestamptz,
    mitigated_by name,
    resolved_at timestamptz,
    resolved_by name,
    closed_at timestamptz,
    closed_by name,
    postmortem text,
    maintenance_window text
);
-- One incident per dedup key until it is closed.
CREATE UNIQUE INDEX incidents_dedup_key ON adr_ops.incidents (dedup_key)
    WHERE status OPERATOR(pg_catalog.<>) 'closed';
COMMENT ON TABLE adr_ops.incidents IS
    'incidents: severity, status open, acknowledged, mitigated, resolved, closed, who and when of each transition; change them with the adr_incident_* functions';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incidents', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incidents_id_seq', '');
GRANT SELECT ON adr_ops.incidents TO pg_monitor;

-- The timeline, append-only: every transition, note, linked alert,
-- evidence snapshot, notification and escalation.
CREATE TABLE adr_ops.incident_events (
    id bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES adr_ops.incidents (id),
    at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    actor name,
    kind text NOT NULL
        CHECK (kind OPERATOR(pg_catalog.=) ANY ('{opened,acknowledged,mitigated,resolved,closed,reopened,update,note,severity,alert,evidence,notified,escalated,action}'::text[])),
    message text,
    alert_id bigint,
    evidence_id bigint
);
CREATE INDEX incident_events_incident ON adr_ops.incident_events (incident_id, id);
COMMENT ON TABLE adr_ops.incident_events IS
    'the timeline of each incident; append-only except for superusers';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incident_events', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incident_events_id_seq', '');
GRANT SELECT ON adr_ops.incident_events TO pg_monitor;

CREATE TRIGGER incident_events_append_only BEFORE UPDATE OR DELETE ON adr_ops.incident_events
    FOR EACH ROW EXECUTE FUNCTION adr_ops._append_only('Add a note with adr_incident_note() instead.');
CREATE TRIGGER incident_events_no_truncate BEFORE TRUNCATE ON adr_ops.incident_events
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._append_only('Add a note with adr_incident_note() instead.');

-- Follow-up actions of an incident, for the post-mortem.
CREATE TABLE adr_ops.incident_actions (
    id bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES adr_ops.incidents (id),
    action text NOT NULL,
    owner text,
    state text NOT NULL DEFAULT 'open'
        CHECK (state OPERATOR(pg_catalog.=) ANY ('{open,done,dropped}'::text[])),
    due date
);
COMMENT ON TABLE adr_ops.incident_actions IS
    'follow-up actions of incidents, with owner and state, listed by adr_incident_report()';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incident_actions', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incident_actions_id_seq', '');
GRANT SELECT ON adr_ops.incident_actions TO pg_monitor;

-- Notifications go through the alerts table and its webhook delivery:
-- an incident's trigger, acknowledge, escalate and resolve are alert rows
-- of source 'incident' that name it.
ALTER TABLE adr_ops.alerts DROP CONSTRAINT alerts_source_check;
ALTER TABLE adr_ops.alerts ADD CONSTRAINT alerts_source_check
    CHECK (source OPERATOR(pg_catalog.=) ANY ('{health,probe,incident}'::text[]));
ALTER TABLE adr_ops.alerts ADD COLUMN incident_id bigint;
ALTER TABLE adr_ops.alerts ADD COLUMN incident_event text
    CHECK (incident_event OPERATOR(pg_catalog.=) ANY ('{trigger,acknowledge,escalate,resolve}'::text[]));

-- Queue the notification of an incident event, and record it in the timeline.
CREATE FUNCTION adr_ops._incident_notify(inc adr_ops.incidents, event text, message text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    aid bigint;
BEGIN
    INSERT INTO adr_ops.alerts (source, check_name, from_status, to_status, detail,
                                incident_id, incident_event)
    VALUES ('incident', 'incident:' || inc.id, NULL,
            CASE WHEN event = 'resolve' THEN 'OK'
                 WHEN inc.severity = 'P3' THEN 'WARNING' ELSE 'CRITICAL' END,
            format('%s %s: %s', inc.severity, inc.title, message),
            inc.id, event)
    RETURNING id INTO aid;
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message, alert_id)
    VALUES (inc.id, adr_ops._calling_role(), 'notified',
            format('%s queued as alert %s', event, aid), aid);
END
$$;
COMMENT ON FUNCTION adr_ops._incident_notify(adr_ops.incidents, text, text) IS
    'API: private. Queues a notification of an incident as an alert of source incident';
REVOKE ALL ON FUNCTION adr_ops._incident_notify(adr_ops.incidents, text, text) FROM PUBLIC;

-- The checks not OK now, as their last alert says.
CREATE FUNCTION adr_ops._incident_checks_not_ok() RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(l.check_name ORDER BY l.check_name), '{}')
      FROM (SELECT DISTINCT ON (a.check_name) a.check_name, a.to_status
              FROM adr_ops.alerts a
             WHERE a.source <> 'incident'
             ORDER BY a.check_name, a.id DESC) l
     WHERE l.to_status <> 'OK'
$$;
COMMENT ON FUNCTION adr_ops._incident_checks_not_ok() IS
    'API: private. The checks and probes whose last alert is not OK';
REVOKE ALL ON FUNCTION adr_ops._incident_checks_not_ok() FROM PUBLIC;

-- Open an incident, or return the one not closed with the same key.  The
-- unique index decides between concurrent openers: exactly one inserts.
CREATE FUNCTION adr_ops._incident_open(severity text, title text, summary text,
                                       dedup_key text, checks text[], snapshot boolean,
                                       OUT id bigint, OUT created boolean)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    inc adr_ops.incidents;
    ev bigint;
BEGIN
    IF _incident_open.severity IS NULL OR _incident_open.severity <> ALL ('{P1,P2,P3}') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid incident severity: %s', coalesce(_incident_open.severity, 'NULL')),
            HINT = 'Use P1, P2 or P3.';
    END IF;
    IF _incident_open.title IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'title must not be null';
    END IF;
    LOOP
        INSERT INTO adr_ops.incidents AS i (severity, title, summary, dedup_key, checks, opened_by)
        VALUES (_incident_open.severity, _incident_open.title, _incident_open.summary,
                _incident_open.dedup_key, coalesce(_incident_open.checks, '{}'),
                adr_ops._calling_role())
        ON CONFLICT (dedup_key) WHERE status <> 'closed' DO NOTHING
        RETURNING i.* INTO inc;
        IF inc.id IS NOT NULL THEN
            created := true;
            EXIT;
        END IF;
        SELECT i.id INTO _incident_open.id FROM adr_ops.incidents i
         WHERE i.dedup_key = _incident_open.dedup_key AND i.status <> 'closed';
        IF FOUND THEN
            created := false;
            RETURN;
        END IF;
    END LOOP;
    id := inc.id;
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
    VALUES (inc.id, adr_ops._calling_role(), 'opened',
            format('%s opened: %s', inc.severity, inc.title)
            || CASE WHEN cardinality(inc.checks) > 0
                    THEN format(' (checks not OK: %s)', array_to_string(inc.checks, ', ')) ELSE '' END);
    IF snapshot THEN
        ev := adr_ops.adr_evidence_snapshot(format('adr_ops incident %s', inc.id));
        INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message, evidence_id)
        VALUES (inc.id, adr_ops._calling_role(), 'evidence',
                format('evidence snapshot %s', ev), ev);
    END IF;
    PERFORM adr_ops._incident_notify(inc, 'trigger', 'opened');
END
$$;
COMMENT ON FUNCTION adr_ops._incident_open(text, text, text, text, text[], boolean) IS
    'API: private. Opens an incident or returns the one not closed with the same dedup key';
REVOKE ALL ON FUNCTION adr_ops._incident_open(text, text, text, text, text[], boolean) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_open(severity text, title text, summary text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    -- Opened by hand: a key of its own, never merged with another.
    SELECT * INTO r FROM adr_ops._incident_open(
        adr_incident_open.severity, adr_incident_open.title, adr_incident_open.summary,
        'manual:' || nextval('adr_ops.incidents_id_seq'),
        adr_ops._incident_checks_not_ok(), true);
    RETURN r.id;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_open(text, text, text) IS
    'opens an incident of severity P1, P2 or P3, takes an evidence snapshot, links the checks not OK; returns its id';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_open(text, text, text) FROM PUBLIC;

-- The transitions a person may make.
CREATE FUNCTION adr_ops._incident_next(status text) RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE status
        WHEN 'open' THEN '{acknowledged,mitigated,resolved}'
        WHEN 'acknowledged' THEN '{mitigated,resolved}'
        WHEN 'mitigated' THEN '{acknowledged,resolved,open}'
        WHEN 'resolved' THEN '{closed,open}'
        WHEN 'closed' THEN '{open}'
    END::text[]
$$;
COMMENT ON FUNCTION adr_ops._incident_next(text) IS
    'API: private. The statuses an incident may move to from a status';
REVOKE ALL ON FUNCTION adr_ops._incident_next(text) FROM PUBLIC;

CREATE FUNCTION adr_ops._incident_move(id bigint, status text, message text, status_update boolean)
RETURNS adr_ops.incidents
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc adr_ops.incidents;
    who name := adr_ops._calling_role();
    allowed text[];
    kind text;
BEGIN
    SELECT i.* INTO inc FROM adr_ops.incidents i WHERE i.id = _incident_move.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('incident %s does not exist', coalesce(_incident_move.id::text, 'NULL')),
            HINT = 'See adr_ops.incidents for the incidents.';
    END IF;
    IF _incident_move.status IS NULL
       OR _incident_move.status <> ALL ('{open,acknowledged,mitigated,resolved,closed}') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid incident status: %s', coalesce(_incident_move.status, 'NULL')),
            HINT = 'Use acknowledged, mitigated, resolved, closed or open.';
    END IF;
    allowed := adr_ops._incident_next(inc.status);
    IF _incident_move.status = inc.status AND NOT status_update THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('incident %s is already %s', inc.id, inc.status),
            DETAIL = format('Incident %s is %s.', inc.id, inc.status),
            HINT = format('From %s an incident may move to: %s.', inc.status, array_to_string(allowed, ', '));
    ELSIF _incident_move.status = inc.status THEN
        -- a status update without a transition: a note that says so
        INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
        VALUES (inc.id, who, 'update', coalesce(_incident_move.message, 'status unchanged: ' || inc.status));
        RETURN inc;
    END IF;
    IF _incident_move.status <> ALL (allowed) THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('cannot move incident %s from %s to %s', inc.id, inc.status, _incident_move.status),
            DETAIL = format('Incident %s is %s.', inc.id, inc.status),
            HINT = format('From %s an incident may move to: %s.', inc.status, array_to_string(allowed, ', '));
    END IF;
    IF _incident_move.status = 'closed' AND inc.postmortem IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('cannot close incident %s without a post-mortem', inc.id),
            DETAIL = format('Incident %s is %s.', inc.id, inc.status),
            HINT = 'Use adr_incident_close(id, postmortem); adr_incident_report(id) drafts it.';
    END IF;

    kind := CASE WHEN _incident_move.status = 'open' THEN 'reopened' ELSE _incident_move.status END;
    UPDATE adr_ops.incidents i SET
        status = _incident_move.status,
        acknowledged_at = CASE WHEN _incident_move.status = 'acknowledged' THEN clock_timestamp() ELSE i.acknowledged_at END,
        acknowledged_by = CASE WHEN _incident_move.status = 'acknowledged' THEN who ELSE i.acknowledged_by END,
        mitigated_at = CASE WHEN _incident_move.status = 'mitigated' THEN clock_timestamp() ELSE i.mitigated_at END,
        mitigated_by = CASE WHEN _incident_move.status = 'mitigated' THEN who ELSE i.mitigated_by END,
        resolved_at = CASE WHEN _incident_move.status = 'resolved' THEN clock_timestamp()
                           WHEN _incident_move.status = 'open' THEN NULL ELSE i.resolved_at END,
        resolved_by = CASE WHEN _incident_move.status = 'resolved' THEN who
                           WHEN _incident_move.status = 'open' THEN NULL ELSE i.resolved_by END,
        closed_at = CASE WHEN _incident_move.status = 'closed' THEN clock_timestamp()
                         WHEN _incident_move.status = 'open' THEN NULL ELSE i.closed_at END,
        closed_by = CASE WHEN _incident_move.status = 'closed' THEN who
                         WHEN _incident_move.status = 'open' THEN NULL ELSE i.closed_by END
     WHERE i.id = inc.id
    RETURNING i.* INTO inc;
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
    VALUES (inc.id, who, kind, _incident_move.message);
    IF _incident_move.status = 'acknowledged' AND inc.acknowledged_at IS NOT NULL THEN
        PERFORM adr_ops._incident_notify(inc, 'acknowledge', 'acknowledged by ' || who);
    ELSIF _incident_move.status = 'resolved' THEN
        PERFORM adr_ops._incident_notify(inc, 'resolve', coalesce(_incident_move.message, 'resolved by ' || who));
    ELSIF _incident_move.status = 'open' THEN
        PERFORM adr_ops._incident_notify(inc, 'trigger', coalesce('reopened: ' || _incident_move.message, 'reopened'));
    END IF;
    RETURN inc;
END
$$;
COMMENT ON FUNCTION adr_ops._incident_move(bigint, text, text, boolean) IS
    'API: private. Moves an incident to a status, records it and queues its notification';
REVOKE ALL ON FUNCTION adr_ops._incident_move(bigint, text, text, boolean) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_update(id bigint, status text, message text DEFAULT NULL)
RETURNS adr_ops.incidents
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT adr_ops._incident_move(id, status, message, true)
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_update(bigint, text, text) IS
    'moves an incident to a status (open, acknowledged, mitigated, resolved, closed) with a message; the same status records a status update';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_update(bigint, text, text) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_ack(id bigint)
RETURNS adr_ops.incidents
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT adr_ops._incident_move(id, 'acknowledged', NULL, false)
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_ack(bigint) IS
    'acknowledges an open incident: its escalation stops';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_ack(bigint) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_resolve(id bigint, message text)
RETURNS adr_ops.incidents
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT adr_ops._incident_move(id, 'resolved', message, false)
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_resolve(bigint, text) IS
    'resolves an incident with a message; the notification resolves the alert it triggered';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_resolve(bigint, text) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_reopen(id bigint, reason text)
RETURNS adr_ops.incidents
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT adr_ops._incident_move(id, 'open', reason, false)
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_reopen(bigint, text) IS
    'reopens a mitigated, resolved or closed incident, with the reason';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_reopen(bigint, text) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_close(id bigint, postmortem text)
RETURNS adr_ops.incidents
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc adr_ops.incidents;
BEGIN
    IF adr_incident_close.postmortem IS NULL OR btrim(adr_incident_close.postmortem) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'postmortem must not be empty',
            HINT = 'adr_incident_report(id) drafts it.';
    END IF;
    SELECT i.* INTO inc FROM adr_ops.incidents i WHERE i.id = adr_incident_close.id FOR UPDATE;
    IF FOUND AND inc.status = 'resolved' THEN
        UPDATE adr_ops.incidents i SET postmortem = adr_incident_close.postmortem WHERE i.id = inc.id;
    END IF;
    RETURN adr_ops._incident_move(adr_incident_close.id, 'closed', 'post-mortem recorded', false);
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_close(bigint, text) IS
    'closes a resolved incident with its post-mortem';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_close(bigint, text) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_note(id bigint, note text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ev bigint;
BEGIN
    IF adr_incident_note.note IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'note must not be null';
    END IF;
    PERFORM FROM adr_ops.incidents i WHERE i.id = adr_incident_note.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('incident %s does not exist', coalesce(adr_incident_note.id::text, 'NULL')),
            HINT = 'See adr_ops.incidents for the incidents.';
    END IF;
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
    VALUES (adr_incident_note.id, adr_ops._calling_role(), 'note', adr_incident_note.note)
    RETURNING incident_events.id INTO ev;
    RETURN ev;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_note(bigint, text) IS
    'adds a note to the timeline of an incident; returns the event id';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_note(bigint, text) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_severity(id bigint, severity text)
RETURNS adr_ops.incidents
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc adr_ops.incidents;
    old text;
BEGIN
    IF adr_incident_severity.severity IS NULL OR adr_incident_severity.severity <> ALL ('{P1,P2,P3}') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid incident severity: %s', coalesce(adr_incident_severity.severity, 'NULL')),
            HINT = 'Use P1, P2 or P3.';
    END IF;
    SELECT i.severity INTO old FROM adr_ops.incidents i WHERE i.id = adr_incident_severity.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('incident %s does not exist', coalesce(adr_incident_severity.id::text, 'NULL')),
            HINT = 'See adr_ops.incidents for the incidents.';
    END IF;
    UPDATE adr_ops.incidents i SET severity = adr_incident_severity.severity
     WHERE i.id = adr_incident_severity.id RETURNING i.* INTO inc;
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
    VALUES (inc.id, adr_ops._calling_role(), 'severity', format('severity %s -> %s', old, inc.severity));
    RETURN inc;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_severity(bigint, text) IS
    'changes the severity of an incident; the targets of the new one apply';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_severity(bigint, text) FROM PUBLIC;

-- Opening by itself: an alert that a policy matches opens an incident or
-- attaches to the one not closed with the same key; an OK alert marks
-- mitigated the incidents whose every linked check is OK again.
CREATE FUNCTION adr_ops._incident_from_alert(a adr_ops.alerts, p adr_ops.incident_policies)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM adr_ops._incident_open(
        p.severity, format('%s is %s', a.check_name, a.to_status), a.detail,
        replace(p.dedup_key, '{check}', a.check_name), ARRAY[a.check_name], true);
    UPDATE adr_ops.incidents i SET checks = i.checks || a.check_name
     WHERE i.id = r.id AND a.check_name <> ALL (i.checks);
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message, alert_id)
    VALUES (r.id, NULL, 'alert',
            format('alert %s: %s %s -> %s (policy %s)', a.id, a.check_name,
                   coalesce(a.from_status, 'none'), a.to_status, p.name), a.id);
    RETURN r.id;
END
$$;
COMMENT ON FUNCTION adr_ops._incident_from_alert(adr_ops.alerts, adr_ops.incident_policies) IS
    'API: private. Opens or attaches to the incident of an alert matched by a policy';
REVOKE ALL ON FUNCTION adr_ops._incident_from_alert(adr_ops.alerts, adr_ops.incident_policies) FROM PUBLIC;

CREATE FUNCTION adr_ops._incident_mitigate_if_ok(check_name text) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc adr_ops.incidents;
    n integer := 0;
BEGIN
    FOR inc IN
        SELECT i.* FROM adr_ops.incidents i
         WHERE i.status IN ('open', 'acknowledged')
           AND _incident_mitigate_if_ok.check_name = ANY (i.checks)
           AND NOT EXISTS (SELECT FROM adr_ops.alerts a
                            WHERE a.check_name = ANY (i.checks) AND a.source <> 'incident'
                              AND a.id = (SELECT max(b.id) FROM adr_ops.alerts b
                                           WHERE b.check_name = a.check_name)
                              AND a.to_status <> 'OK')
         ORDER BY i.id
           FOR UPDATE
    LOOP
        UPDATE adr_ops.incidents i SET status = 'mitigated', mitigated_at = clock_timestamp(),
                                       mitigated_by = NULL
         WHERE i.id = inc.id;
        INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
        VALUES (inc.id, NULL, 'mitigated',
                format('every linked check is OK again: %s', array_to_string(inc.checks, ', ')));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION adr_ops._incident_mitigate_if_ok(text) IS
    'API: private. Marks mitigated the open incidents of a check whose linked checks are all OK';
REVOKE ALL ON FUNCTION adr_ops._incident_mitigate_if_ok(text) FROM PUBLIC;

CREATE FUNCTION adr_ops._incident_alert_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p adr_ops.incident_policies;
BEGIN
    IF NEW.source = 'incident' THEN
        RETURN NULL;
    END IF;
    -- A restore (pg_dump's scripts set check_function_bodies off) loads
    -- the health history, which raises alerts: history, not news.  Opening
    -- an incident then would also take ids the dump's own rows hold.
    IF current_setting('check_function_bodies') = 'off' THEN
        RETURN NULL;
    END IF;
    IF NEW.to_status = 'OK' THEN
        PERFORM adr_ops._incident_mitigate_if_ok(NEW.check_name);
        RETURN NULL;
    END IF;
    -- policies with a duration are applied by the incident_escalation task
    FOR p IN
        SELECT * FROM adr_ops.incident_policies ip
         WHERE ip.enabled AND ip.lasting = '0' AND ip.status = NEW.to_status
           AND NEW.check_name LIKE ip.check_pattern
         ORDER BY ip.severity, ip.name
         LIMIT 1
    LOOP
        PERFORM adr_ops._incident_from_alert(NEW, p);
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION adr_ops._incident_alert_trigger() IS
    'API: private. Opens or attaches to incidents for new alerts, marks them mitigated when their checks are OK';
REVOKE ALL ON FUNCTION adr_ops._incident_alert_trigger() FROM PUBLIC;
CREATE TRIGGER alerts_incidents
    AFTER INSERT ON adr_ops.alerts
    FOR EACH ROW EXECUTE FUNCTION adr_ops._incident_alert_trigger();

-- Escalation, run by the incident_escalation task every minute: an
-- incident past its target to acknowledge (still open) or to resolve
-- (open, acknowledged or mitigated) is escalated once per target since it
-- was opened or reopened, and notified again.  Policies with a duration
-- open their incidents here once the status has lasted that long.
CREATE FUNCTION adr_ops.adr_incident_escalate() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN
        SELECT (SELECT x FROM adr_ops.alerts x WHERE x.id = a.id) AS alert, p AS policy
          FROM adr_ops.incident_policies p
          JOIN LATERAL (SELECT DISTINCT ON (l.check_name) l.id, l.at, l.to_status
                          FROM adr_ops.alerts l
                         WHERE l.source <> 'incident' AND l.check_name LIKE p.check_pattern
                         ORDER BY l.check_name, l.id DESC) a ON true
         WHERE p.enabled AND p.lasting > '0' AND a.to_status = p.status
           AND a.at <= clock_timestamp() - p.lasting
           AND NOT EXISTS (SELECT FROM adr_ops.incident_events e
                            WHERE e.kind = 'alert' AND e.alert_id = a.id)
         ORDER BY a.id
    LOOP
        PERFORM adr_ops._incident_from_alert(r.alert, r.policy);
    END LOOP;

    FOR r IN
        SELECT i AS inc, t.target, t.due
          FROM adr_ops.incidents i
          JOIN adr_ops.incident_targets g ON g.severity = i.severity
          CROSS JOIN LATERAL (VALUES
                ('acknowledge', i.opened_at + g.ack_within, i.status = 'open'),
                ('resolve', i.opened_at + g.resolve_within, i.status IN ('open', 'acknowledged', 'mitigated'))
              ) t(target, due, applies)
         WHERE t.applies AND t.due <= clock_timestamp()
           AND NOT EXISTS (SELECT FROM adr_ops.incident_events e
                            WHERE e.incident_id = i.id AND e.kind = 'escalated'
                              AND e.message LIKE t.target || ' %'
                              AND e.id > (SELECT max(o.id) FROM adr_ops.incident_events o
                                           WHERE o.incident_id = i.id AND o.kind IN ('opened', 'reopened')))
         ORDER BY i.id, t.target
    LOOP
        INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
        VALUES ((r.inc).id, NULL, 'escalated',
                format('%s target missed: due %s', r.target, r.due));
        PERFORM adr_ops._incident_notify(r.inc, 'escalate',
                                         format('not %s within the %s target',
                                                CASE r.target WHEN 'acknowledge' THEN 'acknowledged' ELSE 'resolved' END,
                                                (r.inc).severity));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_escalate() IS
    'escalates and notifies again the incidents past their target to acknowledge or resolve, once per target; returns how many (the incident_escalation task)';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_escalate() FROM PUBLIC;

-- Reports for pg_monitor.
CREATE VIEW adr_ops.incident_status AS
    SELECT i.id, i.severity, i.status, i.title, i.opened_at, i.opened_by,
           i.acknowledged_at, i.acknowledged_by, i.resolved_at,
           i.acknowledged_at - i.opened_at AS time_to_acknowledge,
           i.resolved_at - i.opened_at AS time_to_resolve,
           i.opened_at OPERATOR(pg_catalog.+) t.ack_within AS ack_due,
           i.opened_at OPERATOR(pg_catalog.+) t.resolve_within AS resolve_due,
           (i.status OPERATOR(pg_catalog.=) 'open'
            AND i.opened_at OPERATOR(pg_catalog.+) t.ack_within OPERATOR(pg_catalog.<) pg_catalog.now()
            OR i.status OPERATOR(pg_catalog.=) ANY ('{open,acknowledged,mitigated}'::text[])
            AND i.opened_at OPERATOR(pg_catalog.+) t.resolve_within OPERATOR(pg_catalog.<) pg_catalog.now()) AS overdue,
           i.checks, i.dedup_key
      FROM adr_ops.incidents i
      LEFT JOIN adr_ops.incident_targets t ON t.severity OPERATOR(pg_catalog.=) i.severity;
COMMENT ON VIEW adr_ops.incident_status IS
    'incidents with their targets, times to acknowledge and resolve, and whether overdue';
GRANT SELECT ON adr_ops.incident_status TO pg_monitor;

-- The health row "incidents": how many incidents are past a target.
CREATE FUNCTION adr_ops._check_incidents() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'incidents', count(*) FILTER (WHERE s.overdue)::numeric, 'incidents',
           CASE WHEN count(*) FILTER (WHERE s.overdue) > 0
                THEN format('overdue: %s', string_agg(format('%s %s (%s)', s.severity, s.id, s.status), ', '
                                                      ORDER BY s.severity, s.id) FILTER (WHERE s.overdue))
                ELSE format('%s not closed, none overdue', count(*)) END,
           NULL, NULL
      FROM adr_ops.incident_status s
     WHERE s.status <> 'closed'
$$;
REVOKE ALL ON FUNCTION adr_ops._check_incidents() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_incidents() TO pg_monitor;
INSERT INTO adr_ops.health_thresholds (check_name, warn, crit) VALUES ('incidents', 0, 0);
INSERT INTO adr_ops.health_checks (name, position) VALUES ('incidents', 175);

INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('incident_escalation', '* * * * *', 'incident_escalation', pg_catalog.current_database());

-- What the webhook carries, in the format adr_ops.alert_format names:
-- generic (the alert; an incident's adds incident_id and incident_event),
-- pagerduty (Events API v2: trigger, acknowledge and resolve of an
-- incident share one dedup_key; the routing key is added by the delivery,
-- never stored) or alertmanager (its webhook format, one alert a post).
CREATE OR REPLACE FUNCTION adr_ops._alert_payload(a adr_ops.alerts) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE coalesce(current_setting('adr_ops.alert_format', true), 'generic')
    WHEN 'pagerduty' THEN
        json_build_object(
            'event_action', CASE WHEN a.source = 'incident' AND a.incident_event IN ('acknowledge', 'resolve')
                                 THEN a.incident_event
                                 WHEN a.source <> 'incident' AND a.to_status = 'OK' THEN 'resolve'
                                 ELSE 'trigger' END,
            'dedup_key', k.key,
            'payload', json_build_object(
                'summary', left(coalesce(a.detail, a.check_name || ' is ' || a.to_status), 1024),
                'source', k.src,
                'severity', k.severity,
                'timestamp', a.at,
                'component', a.check_name,
                'class', a.source,
                'custom_details', json_build_object(
                    'alert_id', a.id, 'from_status', a.from_status, 'to_status', a.to_status,
                    'incident_id', a.incident_id, 'incident_event', a.incident_event)))::text
    WHEN 'alertmanager' THEN
        json_build_object(
            'version', '4', 'groupKey', k.key, 'truncatedAlerts', 0,
            'status', k.am_status, 'receiver', 'adr_ops',
            'groupLabels', json_build_object('alertname', k.name),
            'commonLabels', k.labels, 'commonAnnotations', k.annotations,
            'externalURL', '',
            'alerts', json_build_array(json_build_object(
                'status', k.am_status, 'labels', k.labels, 'annotations', k.annotations,
                'startsAt', coalesce(k.opened_at, a.at),
                'endsAt', CASE WHEN k.am_status = 'resolved' THEN to_json(a.at)
                               ELSE to_json('0001-01-01T00:00:00Z'::text) END,
                'generatorURL', '', 'fingerprint', md5(k.key))))::text
    WHEN 'generic' THEN
        CASE WHEN a.source = 'incident'
             THEN json_build_object('id', a.id, 'at', a.at, 'source', a.source,
                                    'check_name', a.check_name, 'from_status', a.from_status,
                                    'to_status', a.to_status, 'detail', left(a.detail, 2000),
                                    'incident_id', a.incident_id, 'incident_event', a.incident_event)::text
             ELSE json_build_object('id', a.id, 'at', a.at, 'source', a.source,
                                    'check_name', a.check_name, 'from_status', a.from_status,
                                    'to_status', a.to_status, 'detail', left(a.detail, 2000))::text END
    END
      FROM (SELECT format('adr_ops/%s/%s', current_database(),
                          CASE WHEN a.source = 'incident' THEN 'incident/' || a.incident_id
                               ELSE 'check/' || a.check_name END) AS key,
                   coalesce(nullif(current_setting('cluster_name'), ''), 'postgresql') || '/' || current_database() AS src,
                   CASE a.to_status WHEN 'CRITICAL' THEN 'critical' WHEN 'WARNING' THEN 'warning'
                                    WHEN 'UNKNOWN' THEN 'error' ELSE 'info' END AS severity,
                   CASE WHEN a.to_status = 'OK' THEN 'resolved' ELSE 'firing' END AS am_status,
                   CASE WHEN a.source = 'incident' THEN 'adr_ops_incident' ELSE 'adr_ops_check' END AS name,
                   json_build_object('alertname', CASE WHEN a.source = 'incident' THEN 'adr_ops_incident' ELSE 'adr_ops_check' END,
                                     'severity', coalesce(i.severity, lower(a.to_status)),
                                     'check', a.check_name, 'source', a.source,
                                     'incident', a.incident_id::text,
                                     'instance', coalesce(nullif(current_setting('cluster_name'), ''), 'postgresql')
                                                 || '/' || current_database()) AS labels,
                   json_build_object('summary', coalesce(i.title, a.check_name || ' is ' || a.to_status),
                                     'description', left(a.detail, 2000),
                                     'event', a.incident_event) AS annotations,
                   i.opened_at
              FROM (SELECT) dummy
              LEFT JOIN adr_ops.incidents i ON i.id = a.incident_id) k
$$;
COMMENT ON FUNCTION adr_ops._alert_payload(adr_ops.alerts) IS
    'API: private. The JSON of an alert for the webhook, in the format adr_ops.alert_format names';

-- Follow-up actions: added with an owner, their state changed until done.
CREATE FUNCTION adr_ops.adr_incident_action(id bigint, action text, owner text DEFAULT NULL,
                                            due date DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    aid bigint;
BEGIN
    IF adr_incident_action.action IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'action must not be null';
    END IF;
    PERFORM FROM adr_ops.incidents i WHERE i.id = adr_incident_action.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('incident %s does not exist', coalesce(adr_incident_action.id::text, 'NULL')),
            HINT = 'See adr_ops.incidents for the incidents.';
    END IF;
    INSERT INTO adr_ops.incident_actions (incident_id, action, owner, due)
    VALUES (adr_incident_action.id, adr_incident_action.action, adr_incident_action.owner,
            adr_incident_action.due)
    RETURNING incident_actions.id INTO aid;
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
    VALUES (adr_incident_action.id, adr_ops._calling_role(), 'action',
            format('follow-up %s: %s (owner %s)', aid, adr_incident_action.action,
                   coalesce(adr_incident_action.owner, 'none')));
    RETURN aid;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_action(bigint, text, text, date) IS
    'adds a follow-up action with an owner to an incident; returns its id';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_action(bigint, text, text, date) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_action_state(action_id bigint, state text)
RETURNS adr_ops.incident_actions
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a adr_ops.incident_actions;
BEGIN
    IF adr_incident_action_state.state IS NULL OR adr_incident_action_state.state <> ALL ('{open,done,dropped}') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid action state: %s', coalesce(adr_incident_action_state.state, 'NULL')),
            HINT = 'Use open, done or dropped.';
    END IF;
    UPDATE adr_ops.incident_actions x SET state = adr_incident_action_state.state
     WHERE x.id = adr_incident_action_state.action_id RETURNING x.* INTO a;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('follow-up action %s does not exist', coalesce(adr_incident_action_state.action_id::text, 'NULL')),
            HINT = 'See adr_ops.incident_actions for the actions.';
    END IF;
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
    VALUES (a.incident_id, adr_ops._calling_role(), 'action',
            format('follow-up %s is %s', a.id, a.state));
    RETURN a;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_action_state(bigint, text) IS
    'sets the state of a follow-up action: open, done or dropped';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_action_state(bigint, text) FROM PUBLIC;

-- The merged timeline of an incident: its own events, and within its
-- window (an hour before it opened until it was resolved, or now) the
-- alerts, health status changes, task runs, job failures and restarts,
-- security actions and evidence snapshots.
CREATE FUNCTION adr_ops.adr_incident_timeline(id bigint,
                                              OUT at timestamptz, OUT source text, OUT what text)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH i AS (
        SELECT x.*, x.opened_at - interval '1 hour' AS w_from,
               coalesce(x.closed_at, x.resolved_at, clock_timestamp()) AS w_to
          FROM adr_ops.incidents x WHERE x.id = adr_incident_timeline.id
    )
    SELECT t.at, t.source, t.what FROM (
        SELECT e.at, 'incident' AS source,
               e.kind || coalesce(' by ' || e.actor, '') || coalesce(': ' || e.message, '') AS what
          FROM adr_ops.incident_events e, i WHERE e.incident_id = i.id
        UNION ALL
        SELECT a.at, 'alert', format('%s %s -> %s%s', a.check_name, coalesce(a.from_status, 'none'),
                                     a.to_status, coalesce(': ' || left(a.detail, 200), ''))
          FROM adr_ops.alerts a, i
         WHERE a.at BETWEEN i.w_from AND i.w_to
           AND (a.source <> 'incident' OR a.incident_id = i.id)
        UNION ALL
        SELECT h.taken_at, 'health', format('%s %s -> %s', h.check_name, h.prev, h.status)
          FROM (SELECT hh.*, lag(hh.status) OVER (PARTITION BY hh.check_name ORDER BY hh.taken_at) AS prev
                  FROM adr_ops.health_history hh, i
                 WHERE hh.taken_at BETWEEN i.w_from - interval '1 day' AND i.w_to) h, i
         WHERE h.taken_at BETWEEN i.w_from AND i.w_to AND h.prev IS DISTINCT FROM h.status
           AND h.prev IS NOT NULL
        UNION ALL
        SELECT r.started_at, 'task', format('%s %s%s', r.task, r.status, coalesce(': ' || left(r.detail, 200), ''))
          FROM adr_ops.task_runs r, i
         WHERE r.started_at BETWEEN i.w_from AND i.w_to
           AND (r.status IN ('failed', 'skipped') OR r.task <> ALL ('{alert_delivery,incident_escalation,health_snapshot}'))
        UNION ALL
        SELECT j.at, 'job', format('job %s %s -> %s by %s%s', j.job_id, coalesce(j.from_status, 'none'),
                                   j.to_status, j.actor, coalesce(': ' || j.note, ''))
          FROM adr_ops.job_events j, i
         WHERE j.at BETWEEN i.w_from AND i.w_to
           AND (j.to_status = 'failed' OR j.from_status = 'failed' OR j.note = 'restart')
        UNION ALL
        SELECT s.at, 'security', format('%s %s by %s%s', s.action, coalesce(s.target, ''), s.actor,
                                        coalesce(': ' || s.detail, ''))
          FROM adr_ops.security_actions s, i WHERE s.at BETWEEN i.w_from AND i.w_to
        UNION ALL
        SELECT v.taken_at, 'evidence', format('snapshot %s "%s" by %s', v.id, v.label, v.taken_by)
          FROM adr_ops.evidence v, i WHERE v.taken_at BETWEEN i.w_from AND i.w_to
    ) t
    ORDER BY t.at, t.source
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_timeline(bigint) IS
    'the merged timeline of an incident: its events, and in its window the alerts, health changes, task runs, job failures and restarts, security actions and evidence';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_timeline(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_incident_timeline(bigint) TO pg_monitor;

-- A duration as the report shows it, whatever IntervalStyle: 1d 02:03:04.
CREATE FUNCTION adr_ops._incident_duration(d interval) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT to_char(justify_hours(date_trunc('second', d)), 'FMDD"d" HH24:MI:SS')
$$;
COMMENT ON FUNCTION adr_ops._incident_duration(interval) IS
    'API: private. A duration for the incident report: days, then HH:MI:SS';
REVOKE ALL ON FUNCTION adr_ops._incident_duration(interval) FROM PUBLIC;

-- The post-mortem draft, in Markdown.  Both reports are SECURITY DEFINER
-- so that pg_monitor gets them whole: they show of the evidence only its
-- id, label and taker, of the rest what the timeline needs.
CREATE FUNCTION adr_ops.adr_incident_report(id bigint) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    i adr_ops.incidents;
    t adr_ops.incident_targets;
    md text;
    tl text;
    impact text;
    acts text;
    fmt_i text := 'YYYY-MM-DD HH24:MI:SS TZ';
BEGIN
    SELECT x.* INTO i FROM adr_ops.incidents x WHERE x.id = adr_incident_report.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('incident %s does not exist', coalesce(adr_incident_report.id::text, 'NULL')),
            HINT = 'See adr_ops.incidents for the incidents.';
    END IF;
    SELECT x.* INTO t FROM adr_ops.incident_targets x WHERE x.severity = i.severity;

    -- impact: each linked check and job, from its first non-OK alert in
    -- the window to its next OK one (or still)
    SELECT string_agg(format('| %s | %s | %s | %s |', c.name, c.kind,
                             coalesce(to_char(c.since, fmt_i), '-'),
                             coalesce(adr_ops._incident_duration(c.until - c.since),
                                      CASE WHEN c.since IS NULL THEN '-' ELSE 'still not OK' END)),
                      E'\n' ORDER BY c.name)
      INTO impact
      FROM (SELECT ch AS name,
                   CASE WHEN ch LIKE 'probe:%' THEN 'probe' ELSE 'check' END AS kind,
                   s.since,
                   (SELECT min(a.at) FROM adr_ops.alerts a
                     WHERE a.check_name = ch AND a.to_status = 'OK' AND a.at > s.since) AS until
              FROM unnest(i.checks) ch
              CROSS JOIN LATERAL (
                    SELECT min(a.at) AS since FROM adr_ops.alerts a
                     WHERE a.check_name = ch AND a.to_status <> 'OK'
                       AND a.at >= i.opened_at - interval '1 day'
                       AND a.at <= coalesce(i.resolved_at, clock_timestamp())) s
            UNION ALL
            SELECT 'job ' || j, 'job',
                   (SELECT min(e.at) FROM adr_ops.job_events e WHERE e.job_id = j AND e.to_status = 'failed'),
                   (SELECT max(e.at) FROM adr_ops.job_events e WHERE e.job_id = j AND e.to_status = 'succeeded')
              FROM unnest(i.jobs) j) c;

    SELECT string_agg(format('| %s | %s | %s |', to_char(x.at, fmt_i), x.source,
                             replace(replace(x.what, '|', '\|'), E'\n', ' ')), E'\n' ORDER BY x.at, x.source)
      INTO tl FROM adr_ops.adr_incident_timeline(i.id) x;

    SELECT string_agg(format('| %s | %s | %s | %s | %s |', a.id, replace(a.action, '|', '\|'),
                             coalesce(a.owner, '-'), a.state, coalesce(to_char(a.due, 'YYYY-MM-DD'), '-')), E'\n' ORDER BY a.id)
      INTO acts FROM adr_ops.incident_actions a WHERE a.incident_id = i.id;

    md := format(E'# Incident %s: %s\n\n', i.id, i.title)
       || format(E'- Severity: %s\n- Status: %s\n- Opened: %s by %s\n', i.severity, i.status,
                 to_char(i.opened_at, fmt_i), coalesce(i.opened_by, 'adr_ops'))
       || coalesce(format(E'- Acknowledged: %s by %s\n', to_char(i.acknowledged_at, fmt_i), i.acknowledged_by), '')
       || coalesce(format(E'- Mitigated: %s by %s\n', to_char(i.mitigated_at, fmt_i), coalesce(i.mitigated_by, 'adr_ops (checks OK)')), '')
       || coalesce(format(E'- Resolved: %s by %s\n', to_char(i.resolved_at, fmt_i), i.resolved_by), '')
       || coalesce(format(E'- Closed: %s by %s\n', to_char(i.closed_at, fmt_i), i.closed_by), '')
       || coalesce(format(E'- Maintenance window of the fix: %s\n', i.maintenance_window), '')
       || E'\n## Summary\n\n' || coalesce(i.summary, '(none)') || E'\n'
       || E'\n## Time to acknowledge and resolve\n\n| | took | target | met |\n|---|---|---|---|\n'
       || format(E'| acknowledge | %s | %s | %s |\n',
                 coalesce(adr_ops._incident_duration(i.acknowledged_at - i.opened_at), 'not yet'), adr_ops._incident_duration(t.ack_within),
                 CASE WHEN i.acknowledged_at IS NULL THEN '-' WHEN i.acknowledged_at - i.opened_at <= t.ack_within THEN 'yes' ELSE 'no' END)
       || format(E'| resolve | %s | %s | %s |\n',
                 coalesce(adr_ops._incident_duration(i.resolved_at - i.opened_at), 'not yet'), adr_ops._incident_duration(t.resolve_within),
                 CASE WHEN i.resolved_at IS NULL THEN '-' WHEN i.resolved_at - i.opened_at <= t.resolve_within THEN 'yes' ELSE 'no' END)
       || E'\n## Impact\n\n'
       || CASE WHEN impact IS NULL THEN E'No check, probe or job linked.\n'
               ELSE E'| affected | kind | not OK since | for |\n|---|---|---|---|\n' || impact || E'\n' END
       || E'\n## Timeline\n\n| at | source | what |\n|---|---|---|\n' || coalesce(tl, '') || E'\n'
       || E'\n## Follow-up actions\n\n'
       || CASE WHEN acts IS NULL THEN E'None yet: add them with adr_incident_action().\n'
               ELSE E'| # | action | owner | state | due |\n|---|---|---|---|---|\n' || acts || E'\n' END
       || E'\n## Post-mortem\n\n' || coalesce(i.postmortem, E'(to be written: root cause, what went well, what to change)') || E'\n';
    RETURN md;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_report(bigint) IS
    'the post-mortem draft of an incident in Markdown: summary, severity, impact, merged timeline, times to acknowledge and resolve, follow-up actions';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_report(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_incident_report(bigint) TO pg_monitor;

-- Anomaly detection (src/anomaly.sql): adr_anomaly_score() judges the last
-- point of a series by a modified z-score, adr_anomalies() every stored series.

-- The newest point of a series is judged against the earlier ones by its
-- modified z-score, 0.6745 * (x - median) / MAD: median and MAD (median
-- absolute deviation) are not dragged by the outliers they are meant to
-- find, as a mean and a standard deviation are.  When the MAD is 0 (more
-- than half the history is one value) the spread is taken from the mean
-- absolute deviation, (x - median) / (1.2533 * meanAD); when that is 0 too
-- every earlier point was equal and any other value is infinitely far.
-- Seasonality compares only with earlier points of the same day of week,
-- hour of day or both, in adr_ops.timezone (else the session's TimeZone),
-- so a dip that comes every Monday is Monday's normal.

-- The arguments both entry points share; raises on a bad one.
CREATE FUNCTION adr_ops._anomaly_check_args(direction text, seasonality text,
                                            min_history integer, threshold float8)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF direction IS NULL OR seasonality IS NULL OR min_history IS NULL OR threshold IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'direction, seasonality, min_history and threshold must not be null',
            HINT = 'Leave an argument out to get its default.';
    END IF;
    IF direction NOT IN ('up', 'down', 'both') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('unrecognized direction: "%s"', direction),
            HINT = 'Use up (only rises are anomalies), down (only falls) or both.';
    END IF;
    IF seasonality NOT IN ('none', 'dow', 'hour', 'dow_hour') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('unrecognized seasonality: "%s"', seasonality),
            HINT = 'Use none, dow (same day of week), hour (same hour of day) or dow_hour (both).';
    END IF;
    IF min_history < 3 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('min_history must be at least 3, not %s', min_history),
            DETAIL = 'A median and a spread of fewer than 3 points say nothing.';
    END IF;
    IF NOT (threshold > 0 AND threshold < 'Infinity') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('threshold must be a positive number, not %s', threshold),
            HINT = 'The usual threshold of the modified z-score is 3.5.';
    END IF;
END
$$;
COMMENT ON FUNCTION adr_ops._anomaly_check_args(text, text, integer, float8) IS
    'API: private. Raises on a bad direction, seasonality, min_history or threshold';

-- The zone seasonality is read in.
CREATE FUNCTION adr_ops._anomaly_zone() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('adr_ops.timezone', true), ''), current_setting('TimeZone'))
$$;
COMMENT ON FUNCTION adr_ops._anomaly_zone() IS
    'API: private. adr_ops.timezone, else the session''s TimeZone: where day of week and hour of day are read';

-- The verdict, score and detail of x against the median, MAD and mean
-- absolute deviation of n comparable earlier points.  point_at (read in
-- zone tz) only names the season in the detail.
CREATE FUNCTION adr_ops._anomaly_judge(x float8, med float8, mad float8, meanad float8, n integer,
    point_at timestamptz, tz text, direction text, seasonality text, min_history integer, threshold float8,
    OUT verdict text, OUT score float8, OUT detail text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    local_at timestamp := point_at AT TIME ZONE tz;
    season text := CASE seasonality
                   WHEN 'dow' THEN ' on a ' || to_char(local_at, 'FMDay')
                   WHEN 'hour' THEN ' at hour ' || to_char(local_at, 'FMHH24')
                   WHEN 'dow_hour' THEN ' on a ' || to_char(local_at, 'FMDay') || ' at hour ' || to_char(local_at, 'FMHH24')
                   ELSE '' END;
    spread text;
    flagged boolean;
BEGIN
    IF n < min_history THEN
        verdict := 'insufficient_history';
        detail := format('%s earlier point%s%s; %s are needed before judging',
                         n, CASE WHEN n = 1 THEN '' ELSE 's' END, season, min_history);
        RETURN;
    END IF;
    IF mad > 0 THEN
        score := 0.6745 * (x - med) / mad;
        spread := format('MAD %s', round(mad::numeric, 2)::float8);
    ELSIF meanad > 0 THEN
        score := (x - med) / (1.2533 * meanad);
        spread := format('MAD 0, spread from the mean absolute deviation %s', round(meanad::numeric, 2)::float8);
    ELSE
        score := CASE WHEN x > med THEN 'Infinity'::float8 WHEN x < med THEN '-Infinity'::float8 ELSE 0 END;
        spread := 'all of them equal';
    END IF;
    flagged := CASE direction WHEN 'up' THEN score > threshold
                              WHEN 'down' THEN score < -threshold
                              ELSE abs(score) > threshold END;
    verdict := CASE WHEN flagged THEN 'anomaly' ELSE 'normal' END;
    detail := format('%s is %s the median %s of %s earlier points%s (%s)',
                     round(x::numeric, 2)::float8,
                     CASE WHEN score = 0 THEN 'at'
                          WHEN abs(score) = 'Infinity' THEN CASE WHEN score > 0 THEN 'above' ELSE 'below' END
                          ELSE format('%s robust deviations %s', round(abs(score)::numeric, 1),
                                      CASE WHEN score > 0 THEN 'above' ELSE 'below' END) END,
                     round(med::numeric, 2)::float8, n, season, spread)
           || CASE WHEN flagged THEN format('; beyond the threshold %s', threshold)
                   WHEN abs(score) > threshold THEN format('; only %s are anomalies (direction %s)',
                                                          CASE direction WHEN 'up' THEN 'rises' ELSE 'falls' END, direction)
                   ELSE format('; within the threshold %s', threshold) END;
END
$$;
COMMENT ON FUNCTION adr_ops._anomaly_judge(float8, float8, float8, float8, integer, timestamptz, text, text, text, integer, float8) IS
    'API: private. Verdict, modified z-score and detail of a point against its history''s median and spread';

-- The judgement of one series, the last element against the comparable
-- earlier ones: what both entry points run, on arguments already checked
-- (one-dimensional arrays of one length, oldest first, no nulls, finite).
-- SQL, not PL/pgSQL: adr_anomalies() runs it once per series.
CREATE FUNCTION adr_ops._anomaly_series(t timestamptz[], v float8[], direction text, seasonality text,
    min_history integer, threshold float8, tz text,
    OUT verdict text, OUT score float8, OUT expected float8, OUT mad float8,
    OUT history integer, OUT detail text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH p AS (
        SELECT u.t, u.v, u.i,
               CASE _anomaly_series.seasonality
               WHEN 'dow' THEN extract(dow FROM u.t AT TIME ZONE _anomaly_series.tz)::integer
               WHEN 'hour' THEN extract(hour FROM u.t AT TIME ZONE _anomaly_series.tz)::integer
               WHEN 'dow_hour' THEN (extract(dow FROM u.t AT TIME ZONE _anomaly_series.tz) * 24
                                     + extract(hour FROM u.t AT TIME ZONE _anomaly_series.tz))::integer
               ELSE 0 END AS season
          FROM unnest(_anomaly_series.t, _anomaly_series.v) WITH ORDINALITY u(t, v, i)
    ), last AS (
        SELECT p.t, p.v, p.season FROM p WHERE p.i = cardinality(_anomaly_series.v)
    ), hist AS (
        SELECT p.v FROM p, last WHERE p.i < cardinality(_anomaly_series.v) AND p.season = last.season
    ), med AS (
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY hist.v) AS median, count(*)::integer AS n FROM hist
    ), dev AS (
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(hist.v - med.median)) AS mad,
               avg(abs(hist.v - med.median)) AS meanad
          FROM med LEFT JOIN hist ON true
    )
    SELECT j.verdict, j.score,
           CASE WHEN j.verdict <> 'insufficient_history' THEN med.median END,
           CASE WHEN j.verdict <> 'insufficient_history' THEN dev.mad END,
           med.n, j.detail
      FROM last, med, dev,
           adr_ops._anomaly_judge(last.v, med.median, dev.mad, dev.meanad, med.n, last.t, _anomaly_series.tz,
                                  _anomaly_series.direction, _anomaly_series.seasonality,
                                  _anomaly_series.min_history, _anomaly_series.threshold) j
$$;
COMMENT ON FUNCTION adr_ops._anomaly_series(timestamptz[], float8[], text, text, integer, float8, text) IS
    'API: private. The judgement of the last point of a checked series against the comparable earlier ones';

-- One series given as two arrays, oldest first: the last element is judged
-- against the earlier ones.
CREATE FUNCTION adr_ops.adr_anomaly_score(at timestamptz[], val double precision[],
    direction text DEFAULT 'both', seasonality text DEFAULT 'none',
    min_history integer DEFAULT 14, threshold double precision DEFAULT 3.5,
    OUT verdict text, OUT score double precision, OUT expected double precision,
    OUT mad double precision, OUT history integer, OUT detail text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    npoints integer;
    null_at bigint;
    null_val bigint;
    not_finite bigint;
    unordered bigint;
BEGIN
    IF adr_anomaly_score.at IS NULL OR adr_anomaly_score.val IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'at and val must not be null',
            HINT = 'Pass the series as two arrays, oldest point first.';
    END IF;
    PERFORM adr_ops._anomaly_check_args(adr_anomaly_score.direction, adr_anomaly_score.seasonality,
                                        adr_anomaly_score.min_history, adr_anomaly_score.threshold);
    IF array_ndims(adr_anomaly_score.at) > 1 OR array_ndims(adr_anomaly_score.val) > 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'at and val must be one-dimensional arrays';
    END IF;
    npoints := cardinality(adr_anomaly_score.at);
    IF npoints <> cardinality(adr_anomaly_score.val) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'at and val must have the same length',
            DETAIL = format('at has %s elements, val has %s.', npoints, cardinality(adr_anomaly_score.val)),
            HINT = 'Element i of val is the reading taken at element i of at.';
    END IF;
    IF npoints = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'the series is empty',
            DETAIL = 'The last element of the series is the point judged.';
    END IF;

    SELECT min(u.i) FILTER (WHERE u.t IS NULL), min(u.i) FILTER (WHERE u.v IS NULL),
           min(u.i) FILTER (WHERE u.v IN ('NaN', 'Infinity', '-Infinity')),
           min(u.i) FILTER (WHERE u.t < u.prev)
      INTO null_at, null_val, not_finite, unordered
      FROM (SELECT s.t, s.v, s.i, lag(s.t) OVER (ORDER BY s.i) AS prev
              FROM unnest(adr_anomaly_score.at, adr_anomaly_score.val) WITH ORDINALITY s(t, v, i)) u;
    IF null_at IS NOT NULL OR null_val IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'at and val must not contain nulls',
            DETAIL = format('Element %s of %s is null.', least(null_at, null_val),
                            CASE WHEN null_at <= null_val OR null_val IS NULL THEN 'at' ELSE 'val' END),
            HINT = 'Leave out the points that have no reading.';
    END IF;
    IF not_finite IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'val must hold finite numbers',
            DETAIL = format('Element %s of val is %s.', not_finite,
                            (SELECT s.v FROM unnest(adr_anomaly_score.val) WITH ORDINALITY s(v, i) WHERE s.i = not_finite));
    END IF;
    IF unordered IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'at must be in ascending order',
            DETAIL = format('Element %s is earlier than element %s.', unordered, unordered - 1),
            HINT = 'Build the arrays with array_agg(... ORDER BY the time).';
    END IF;

    SELECT r.verdict, r.score, r.expected, r.mad, r.history, r.detail
      INTO verdict, score, expected, mad, history, detail
      FROM adr_ops._anomaly_series(adr_anomaly_score.at, adr_anomaly_score.val,
                                   adr_anomaly_score.direction, adr_anomaly_score.seasonality,
                                   adr_anomaly_score.min_history, adr_anomaly_score.threshold,
                                   adr_ops._anomaly_zone()) r;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_anomaly_score(timestamptz[], double precision[], text, text, integer, double precision) IS
    'judges the last point of a series against the earlier ones by a modified z-score (median and MAD), optionally per day of week and hour of day';

-- Every stored series at once: one pass over each source gathers each
-- series into arrays, oldest first, and _anomaly_series() judges it, the
-- same way adr_anomaly_score() does.  days is the history read; every
-- series with a point in it has a row (normal ones too, for dashboards),
-- anomalies first.  A source is one more branch of series: (source, name,
-- times, values), values finite.
CREATE FUNCTION adr_ops.adr_anomalies(days integer DEFAULT 7, direction text DEFAULT 'both',
    seasonality text DEFAULT 'none', min_history integer DEFAULT 14,
    threshold double precision DEFAULT 3.5,
    OUT source text, OUT series text, OUT at timestamptz, OUT value double precision,
    OUT verdict text, OUT score double precision, OUT expected double precision,
    OUT mad double precision, OUT history integer, OUT detail text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := adr_ops._anomaly_zone();
    since timestamptz;
BEGIN
    IF adr_anomalies.days IS NULL OR adr_anomalies.days < 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('days must be at least 1, not %s', coalesce(adr_anomalies.days::text, 'null')),
            DETAIL = 'days is how far back the history of each series is read.';
    END IF;
    PERFORM adr_ops._anomaly_check_args(adr_anomalies.direction, adr_anomalies.seasonality,
                                        adr_anomalies.min_history, adr_anomalies.threshold);
    since := now() - make_interval(days => adr_anomalies.days);

    RETURN QUERY
    WITH series AS (
        -- health: each check's numeric reading
        SELECT 'health' AS src, h.check_name AS name,
               array_agg(h.taken_at ORDER BY h.taken_at) AS t, array_agg(h.value::float8 ORDER BY h.taken_at) AS v
          FROM adr_ops.health_history h
         WHERE h.taken_at > since AND h.value IS NOT NULL
           AND h.value::float8 NOT IN ('NaN', 'Infinity', '-Infinity')
         GROUP BY h.check_name
        UNION ALL
        -- size: sizes as stored; the counters (xid, multixact, wal_lsn) as
        -- their growth per hour between readings, which is what changes
        SELECT 'size', z.kind || ':' || z.name || CASE WHEN z.counter THEN ' per hour' ELSE '' END,
               array_agg(z.t ORDER BY z.t), array_agg(z.v ORDER BY z.t)
          FROM (SELECT s.kind, s.name, c.counter, s.taken_at AS t,
                       CASE WHEN NOT c.counter THEN s.value::float8
                            ELSE ((s.value - lag(s.value) OVER w)
                                  / nullif(extract(epoch FROM s.taken_at - lag(s.taken_at) OVER w), 0)
                                  * 3600)::float8 END AS v
                  FROM adr_ops.size_history s
                 CROSS JOIN LATERAL (SELECT s.kind IN ('xid', 'multixact', 'wal_lsn') AS counter) c
                 WHERE s.taken_at > since
                WINDOW w AS (PARTITION BY s.kind, s.name ORDER BY s.taken_at)) z
         WHERE z.v >= 0
         GROUP BY z.kind, z.name, z.counter
        UNION ALL
        -- statements: the mean time per call of each entry over each
        -- interval between its stored snapshots; counters that went down
        -- (a reset) count whole
        SELECT 'statements',
               format('queryid %s db %s user %s%s', q.queryid, coalesce(d.datname::text, q.dbid::text),
                      coalesce(r.rolname::text, q.userid::text), CASE WHEN q.toplevel THEN '' ELSE ' (nested)' END),
               q.t, q.v
          FROM (SELECT i.queryid, i.userid, i.dbid, i.toplevel,
                       array_agg(i.t ORDER BY i.t) AS t, array_agg(i.dt / i.dc ORDER BY i.t) AS v
                  FROM (SELECT c.queryid, c.userid, c.dbid, c.toplevel, s.taken_at AS t,
                               CASE WHEN c.calls < lag(c.calls) OVER w OR c.total_ms < lag(c.total_ms) OVER w
                                    THEN c.calls ELSE c.calls - lag(c.calls) OVER w END AS dc,
                               CASE WHEN c.calls < lag(c.calls) OVER w OR c.total_ms < lag(c.total_ms) OVER w
                                    THEN c.total_ms ELSE c.total_ms - lag(c.total_ms) OVER w END AS dt
                          FROM adr_ops.statement_counters c
                          JOIN adr_ops.statement_snapshots s ON s.id = c.snapshot_id
                         WHERE s.taken_at > since
                        WINDOW w AS (PARTITION BY c.queryid, c.userid, c.dbid, c.toplevel ORDER BY c.snapshot_id)) i
                 WHERE i.dc > 0
                 GROUP BY i.queryid, i.userid, i.dbid, i.toplevel) q
          LEFT JOIN pg_database d ON d.oid = q.dbid
          LEFT JOIN pg_roles r ON r.oid = q.userid
        UNION ALL
        -- quality: each check's metric as its runs stored it (a row_count
        -- check's metric is its table's row count)
        SELECT 'quality', r.check_name,
               array_agg(r.ran_at ORDER BY r.ran_at), array_agg(r.metric ORDER BY r.ran_at)
          FROM adr_ops.quality_results r
         WHERE r.ran_at > since AND r.metric IS NOT NULL
           AND r.metric NOT IN ('NaN', 'Infinity', '-Infinity')
         GROUP BY r.check_name
    )
    SELECT s.src, s.name, s.t[cardinality(s.t)], s.v[cardinality(s.v)],
           j.verdict, j.score, j.expected, j.mad, j.history, j.detail
      FROM series s
     CROSS JOIN LATERAL adr_ops._anomaly_series(s.t, s.v, adr_anomalies.direction, adr_anomalies.seasonality,
                                                adr_anomalies.min_history, adr_anomalies.threshold, tz) j
     ORDER BY CASE j.verdict WHEN 'anomaly' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END,
              abs(j.score) DESC NULLS LAST, s.src, s.name;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_anomalies(integer, text, text, integer, double precision) IS
    'the newest point of every stored series (health readings, sizes, statement mean times, quality metrics) judged by adr_anomaly_score''s modified z-score';

-- Reports for pg_monitor, like the history they read.  adr_anomaly_score
-- reads nothing, but no function of the extension is PUBLIC's: a role
-- that scores its own series is granted EXECUTE (and USAGE on the schema).
DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['adr_ops._anomaly_check_args(text, text, integer, float8)',
                             'adr_ops._anomaly_zone()',
                             'adr_ops._anomaly_judge(float8, float8, float8, float8, integer, timestamptz, text, text, text, integer, float8)',
                             'adr_ops._anomaly_series(timestamptz[], float8[], text, text, integer, float8, text)',
                             'adr_ops.adr_anomaly_score(timestamptz[], double precision[], text, text, integer, double precision)',
                             'adr_ops.adr_anomalies(integer, text, text, integer, double precision)'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pg_monitor', f);
    END LOOP;
END
$grants$;

-- report: the weekly review as one self-contained HTML page (adr_report_html)

-- Text as HTML character data or a double-quoted attribute value: every
-- value on the page goes through here, since names come from tenants.
CREATE FUNCTION adr_ops._html(t text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT replace(replace(replace(replace(replace(coalesce(t, ''),
           '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;
COMMENT ON FUNCTION adr_ops._html(text) IS
    'API: private. Text escaped for HTML character data and attribute values';
REVOKE ALL ON FUNCTION adr_ops._html(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._html(text) TO pg_monitor;

-- A check's history between w0 and w1 as a small inline SVG chart: a band
-- of its statuses along the bottom (each snapshot's colour until the next
-- one) and its value as a line above, scaled to its own range.
CREATE FUNCTION adr_ops._report_spark(check_name text, w0 timestamptz, w1 timestamptz)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH h AS (
        SELECT h.taken_at, h.status, h.value,
               lead(h.taken_at) OVER (ORDER BY h.taken_at) AS next_at
          FROM adr_ops.health_history h
         WHERE h.check_name = _report_spark.check_name AND h.taken_at >= w0 AND h.taken_at <= w1
    ), s AS (
        SELECT h.status, h.value, min(h.value) OVER () AS lo, max(h.value) OVER () AS hi, h.taken_at,
               round((240 * extract(epoch FROM h.taken_at - w0) / extract(epoch FROM w1 - w0))::numeric, 1) AS x0,
               round((240 * extract(epoch FROM coalesce(h.next_at, w1) - w0) / extract(epoch FROM w1 - w0))::numeric, 1) AS x1
          FROM h
    )
    SELECT '<svg class="spark" width="240" height="36" viewBox="0 0 240 36" role="img" aria-label="'
           || adr_ops._html(_report_spark.check_name) || ' over the period">'
           || '<rect x="0" y="0" width="240" height="36" fill="#fafafa"/>'
           || coalesce(string_agg(format('<rect x="%s" y="30" width="%s" height="6" class="s-%s"/>',
                                         s.x0, greatest(s.x1 - s.x0, 0.5), lower(s.status)), '' ORDER BY s.taken_at), '')
           || coalesce('<polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="'
                       || string_agg(format('%s,%s', s.x0,
                                            CASE WHEN s.hi = s.lo THEN 15
                                                 ELSE round(2 + 24 * (1 - (s.value - s.lo) / (s.hi - s.lo)), 1) END),
                                     ' ' ORDER BY s.taken_at) FILTER (WHERE s.value IS NOT NULL)
                       || '"/>', '')
           || CASE WHEN count(*) = 0 THEN '<text x="6" y="20" class="none">no history</text>' ELSE '' END
           || '</svg>'
      FROM s
$$;
COMMENT ON FUNCTION adr_ops._report_spark(text, timestamptz, timestamptz) IS
    'API: private. A check''s statuses and values between two times as an inline SVG chart';
REVOKE ALL ON FUNCTION adr_ops._report_spark(text, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._report_spark(text, timestamptz, timestamptz) TO pg_monitor;

-- The weekly review as one HTML page with nothing to fetch: inline CSS,
-- inline SVG, no scripts, and a Content-Security-Policy that forbids any
-- request.  The last days days: the checks now and over the period, the
-- slowest queries against the period before, bloat, maintenance runs,
-- backups verified, pipelines and their failure rates, open incidents and
-- checks whose last alert is not OK.  scripts/adr-report writes it to a
-- file.  Every value is escaped with _html().
CREATE FUNCTION adr_ops.adr_report_html(days integer DEFAULT 7)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w1 timestamptz := now();
    w0 timestamptz;
    p0 timestamptz;
    fmt constant text := 'YYYY-MM-DD HH24:MI';
    head text;
    checks text;
    queries text;
    bloat text;
    maint text;
    backups text;
    pipes text;
    open_items text;
BEGIN
    IF days IS NULL OR days < 1 OR days > 366 THEN
        RAISE EXCEPTION 'invalid number of days: %', coalesce(days::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'The report covers 1 to 366 days.';
    END IF;
    w0 := w1 - make_interval(days => days);
    p0 := w0 - make_interval(days => days);

    head := '<!DOCTYPE html>' || E'\n'
        || '<html lang="en"><head><meta charset="utf-8">'
        || '<meta http-equiv="Content-Security-Policy" content="default-src ''none''; style-src ''unsafe-inline''">'
        || '<meta name="viewport" content="width=device-width, initial-scale=1">'
        || '<title>adr_ops review of ' || adr_ops._html(current_database()) || '</title><style>'
        || 'body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212121;margin:24px;max-width:1200px}'
        || 'h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:2px solid #e0e0e0;padding-bottom:4px}'
        || '.meta{color:#616161;margin:0 0 12px}table{border-collapse:collapse;width:100%}'
        || 'th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:middle}'
        || 'th{background:#f5f5f5;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}'
        || '.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}'
        || '.b-ok{background:#2e7d32}.b-warning{background:#f9a825;color:#212121}.b-critical{background:#c62828}.b-unknown{background:#757575}'
        || '.s-ok{fill:#66bb6a}.s-warning{fill:#fbc02d}.s-critical{fill:#e53935}.s-unknown{fill:#9e9e9e}'
        || '.none{fill:#9e9e9e;font-size:11px}.empty{color:#757575;font-style:italic}'
        || '.up{color:#c62828}.down{color:#2e7d32}.q{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;max-width:520px;overflow-wrap:anywhere}'
        || '.summary span{margin-right:14px}.detail{color:#616161;font-size:12px}'
        || '</style></head><body>' || E'\n'
        || '<h1>Weekly review of <span id="database">' || adr_ops._html(current_database()) || '</span></h1>'
        || format('<p class="meta">From %s to %s (%s days), the period before from %s. PostgreSQL %s, adr_ops %s.</p>',
                  adr_ops._html(to_char(w0, fmt)), adr_ops._html(to_char(w1, fmt || ' TZ')), days,
                  adr_ops._html(to_char(p0, fmt)), adr_ops._html(current_setting('server_version')),
                  adr_ops._html((SELECT extversion FROM pg_extension WHERE extname = 'adr_ops')))
        || E'\n';

    -- The checks now, with their period as a chart and how often they were not OK.
    WITH now_ AS (
        SELECT h.*, row_number() OVER () AS ord FROM adr_ops.adr_health_check() h
    ), past AS (
        SELECT h.check_name, count(*) AS snaps, count(*) FILTER (WHERE h.status <> 'OK') AS not_ok
          FROM adr_ops.health_history h WHERE h.taken_at >= w0 AND h.taken_at <= w1
         GROUP BY h.check_name
    )
    SELECT format('<section id="checks"><h2>Health checks now</h2><p class="summary" data-checks="%1$s" data-ok="%2$s" data-warning="%3$s" data-critical="%4$s" data-unknown="%5$s">'
                  '<span><b>%1$s</b> checks</span><span class="badge b-ok">%2$s OK</span> <span class="badge b-warning">%3$s WARNING</span> '
                  '<span class="badge b-critical">%4$s CRITICAL</span> <span class="badge b-unknown">%5$s UNKNOWN</span></p>',
                  count(*), count(*) FILTER (WHERE n.status = 'OK'), count(*) FILTER (WHERE n.status = 'WARNING'),
                  count(*) FILTER (WHERE n.status = 'CRITICAL'), count(*) FILTER (WHERE n.status = 'UNKNOWN'))
           || '<table><thead><tr><th>check</th><th>status</th><th>value</th><th>warn / crit</th><th>last '
           || days || ' days</th><th>snapshots not OK</th><th>detail</th></tr></thead><tbody>'
           || coalesce(string_agg(format('<tr class="check" data-check="%s" data-status="%s"><td>%s</td><td><span class="badge b-%s">%s</span></td>'
                                         '<td class="n">%s</td><td class="n">%s</td><td>%s</td><td class="n">%s</td><td class="detail">%s</td></tr>',
                                         adr_ops._html(n.check_name), adr_ops._html(n.status), adr_ops._html(n.check_name),
                                         lower(n.status), adr_ops._html(n.status),
                                         adr_ops._html(trim(coalesce(n.value::text, '') || ' ' || coalesce(n.unit, ''))),
                                         adr_ops._html(coalesce(n.warn::text, '-') || ' / ' || coalesce(n.crit::text, '-')),
                                         adr_ops._report_spark(n.check_name, w0, w1),
                                         coalesce(p.not_ok || ' of ' || p.snaps, '-'),
                                         adr_ops._html(n.detail)), '' ORDER BY n.ord), '')
           || '</tbody></table></section>' || E'\n'
      INTO checks
      FROM now_ n LEFT JOIN past p USING (check_name);

    -- The slowest statements of the period by total time, and how their
    -- mean moved against the period before.  Each entry's cumulative
    -- counters at a bound are its last stored ones at or before it (a
    -- snapshot stores only the entries that changed); a reset of
    -- pg_stat_statements in a period counts from zero.  The oldest stored
    -- snapshot is a baseline, as on the Grafana panels: a bound before it
    -- takes its counters, so what ran before the history began is not
    -- counted in a period; an entry first stored after it counts whole.
    WITH counters AS (
        SELECT c.queryid, c.userid, c.dbid, c.toplevel, b.bound,
               (array_agg(c.calls ORDER BY s.taken_at DESC))[1] AS calls,
               (array_agg(c.total_ms ORDER BY s.taken_at DESC))[1] AS total_ms
          FROM adr_ops.statement_counters c
          JOIN adr_ops.statement_snapshots s ON s.id = c.snapshot_id
          CROSS JOIN LATERAL (VALUES (0, p0), (1, w0), (2, w1)) AS b(bound, at)
         WHERE s.taken_at <= greatest(b.at, (SELECT min(f.taken_at) FROM adr_ops.statement_snapshots f))
         GROUP BY c.queryid, c.userid, c.dbid, c.toplevel, b.bound
    ), periods AS (
        SELECT k2.queryid, k2.userid, k2.dbid,
               CASE WHEN k2.calls >= coalesce(k1.calls, 0) THEN k2.calls - coalesce(k1.calls, 0) ELSE k2.calls END AS calls,
               CASE WHEN k2.calls >= coalesce(k1.calls, 0) THEN k2.total_ms - coalesce(k1.total_ms, 0) ELSE k2.total_ms END AS total_ms,
               CASE WHEN k1.calls >= coalesce(k0.calls, 0) THEN k1.calls - coalesce(k0.calls, 0) ELSE k1.calls END AS calls_before,
               CASE WHEN k1.calls >= coalesce(k0.calls, 0) THEN k1.total_ms - coalesce(k0.total_ms, 0) ELSE k1.total_ms END AS total_before
          FROM counters k2
          LEFT JOIN counters k1 ON k1.bound = 1 AND (k1.queryid, k1.userid, k1.dbid, k1.toplevel) = (k2.queryid, k2.userid, k2.dbid, k2.toplevel)
          LEFT JOIN counters k0 ON k0.bound = 0 AND (k0.queryid, k0.userid, k0.dbid, k0.toplevel) = (k2.queryid, k2.userid, k2.dbid, k2.toplevel)
         WHERE k2.bound = 2
    ), top AS (
        SELECT p.queryid, p.userid, p.dbid, sum(p.calls) AS calls, sum(p.total_ms) AS total_ms,
               sum(p.total_ms) / nullif(sum(p.calls), 0) AS mean_ms,
               sum(p.total_before) / nullif(sum(p.calls_before), 0) AS mean_before
          FROM periods p
         GROUP BY p.queryid, p.userid, p.dbid
        HAVING sum(p.calls) > 0
         ORDER BY sum(p.total_ms) DESC
         LIMIT 10
    )
    SELECT '<section id="queries"><h2>Slowest queries</h2>'
           || CASE WHEN count(*) = 0
                   THEN '<p class="empty">No statement snapshots in the period (scheduler task statement_snapshot, pg_stat_statements).</p>'
                   ELSE '<table><thead><tr><th>query</th><th>database</th><th>calls</th><th>total ms</th><th>mean ms</th>'
                        || '<th>mean ms before</th><th>change</th></tr></thead><tbody>'
                        || string_agg(format('<tr class="query" data-queryid="%s"><td class="q">%s</td><td>%s</td><td class="n">%s</td><td class="n">%s</td>'
                                             '<td class="n">%s</td><td class="n">%s</td><td class="n %s">%s</td></tr>',
                                             t.queryid, adr_ops._html(left(regexp_replace(coalesce(x.query, '(text not stored)'), '\s+', ' ', 'g'), 300)),
                                             adr_ops._html(coalesce(d.datname::text, t.dbid::text)), t.calls,
                                             round(t.total_ms::numeric, 1), round(t.mean_ms::numeric, 2),
                                             coalesce(round(t.mean_before::numeric, 2)::text, '-'),
                                             CASE WHEN t.mean_before > 0 AND t.mean_ms > t.mean_before THEN 'up'
                                                  WHEN t.mean_before > 0 AND t.mean_ms < t.mean_before THEN 'down' ELSE '' END,
                                             CASE WHEN t.mean_before > 0
                                                  THEN to_char(round((100 * (t.mean_ms / t.mean_before - 1))::numeric, 1), 'FMSG999999990.0') || '%'
                                                  ELSE 'new' END),
                                      '' ORDER BY t.total_ms DESC)
                        || '</tbody></table>' END
           || '</section>' || E'\n'
      INTO queries
      FROM top t
      LEFT JOIN adr_ops.statement_texts x USING (queryid, userid, dbid)
      LEFT JOIN pg_database d ON d.oid = t.dbid;

    -- Bloat, estimated now (the report is not a scrape); a failure is said
    -- on the page rather than losing the rest of it.
    BEGIN
        SELECT '<section id="bloat"><h2>Bloat</h2>'
               || CASE WHEN count(*) = 0 THEN '<p class="empty">No table or index over 1 MB with measurable bloat.</p>'
                       ELSE '<table><thead><tr><th>relation</th><th>kind</th><th>size</th><th>bloat</th><th>bloat %</th><th>suggestion</th></tr></thead><tbody>'
                            || string_agg(format('<tr class="bloat"><td>%s</td><td>%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="detail">%s</td></tr>',
                                                 adr_ops._html(b.schemaname || '.' || b.relname), adr_ops._html(b.kind),
                                                 adr_ops._html(pg_size_pretty(b.total_bytes)), adr_ops._html(pg_size_pretty(b.bloat_bytes)),
                                                 coalesce(round(b.bloat_pct::numeric, 1)::text, '-'), adr_ops._html(b.suggestion)),
                                          '' ORDER BY b.bloat_bytes DESC NULLS LAST)
                            || '</tbody></table>' END
               || '</section>' || E'\n'
          INTO bloat
          FROM (SELECT * FROM adr_ops.adr_bloat_report() r
                 WHERE r.bloat_bytes > 0 ORDER BY r.bloat_bytes DESC NULLS LAST LIMIT 10) b;
    EXCEPTION WHEN OTHERS THEN
        bloat := '<section id="bloat"><h2>Bloat</h2><p class="empty">Could not be estimated: '
                 || adr_ops._html(SQLERRM) || '</p></section>' || E'\n';
    END;

    -- Maintenance runs of the period, by task.
    SELECT '<section id="maintenance"><h2>Maintenance runs</h2>'
           || CASE WHEN count(*) = 0 THEN '<p class="empty">No task ran in the period.</p>'
                   ELSE '<table><thead><tr><th>task</th><th>runs</th><th>succeeded</th><th>failed</th><th>skipped</th>'
                        || '<th>last run</th><th>last failure</th></tr></thead><tbody>'
                        || string_agg(format('<tr class="task" data-task="%s"><td>%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td>'
                                             '<td class="n">%s</td><td>%s</td><td class="detail">%s</td></tr>',
                                             adr_ops._html(m.task), adr_ops._html(m.task), m.runs, m.succeeded, m.failed, m.skipped,
                                             adr_ops._html(to_char(m.last_at, fmt)), adr_ops._html(m.last_failure)),
                                      '' ORDER BY m.task)
                        || '</tbody></table>' END
           || '</section>' || E'\n'
      INTO maint
      FROM (SELECT r.task, count(*) AS runs,
                   count(*) FILTER (WHERE r.status = 'succeeded') AS succeeded,
                   count(*) FILTER (WHERE r.status = 'failed') AS failed,
                   count(*) FILTER (WHERE r.status = 'skipped') AS skipped,
                   max(r.started_at) AS last_at,
                   (array_agg(r.detail ORDER BY r.started_at DESC) FILTER (WHERE r.status = 'failed'))[1] AS last_failure
              FROM adr_ops.task_runs r
             WHERE r.started_at >= w0 AND r.started_at <= w1
             GROUP BY r.task) m;

    -- Backups verified in the period: how many, and the last 20.
    SELECT '<section id="backups"><h2>Backups verified</h2>'
           || format('<p class="summary" data-verifications="%1$s" data-passed="%2$s" data-failed="%3$s"><span><b>%1$s</b> verifications</span><span>%2$s passed</span><span>%3$s failed</span><span>last passed: %4$s</span></p>',
                     coalesce(max(v.n_all), 0), coalesce(max(v.n_passed), 0), coalesce(max(v.n_failed), 0),
                     adr_ops._html(coalesce((SELECT l.path || ' at ' || to_char(l.finished_at, fmt)
                                               FROM adr_ops.backup_verifications l WHERE l.status = 'passed'
                                              ORDER BY l.finished_at DESC LIMIT 1), 'never')))
           || CASE WHEN count(*) = 0 THEN ''
                   ELSE '<table><thead><tr><th>started</th><th>path</th><th>status</th><th>tables</th><th>rows</th><th>took</th><th>failures</th></tr></thead><tbody>'
                        || string_agg(format('<tr class="backup"><td>%s</td><td>%s</td><td><span class="badge b-%s">%s</span></td><td class="n">%s</td>'
                                             '<td class="n">%s</td><td class="n">%s</td><td class="detail">%s</td></tr>',
                                             adr_ops._html(to_char(v.started_at, fmt)), adr_ops._html(v.path),
                                             CASE v.status WHEN 'passed' THEN 'ok' WHEN 'failed' THEN 'critical' ELSE 'unknown' END,
                                             adr_ops._html(v.status), coalesce(v.tables_restored::text, '-'), coalesce(v.rows_counted::text, '-'),
                                             coalesce(round(v.duration_ms / 1000.0, 1) || ' s', '-'),
                                             adr_ops._html(array_to_string(v.failures, '; '))),
                                      '' ORDER BY v.id DESC)
                        || '</tbody></table>' END
           || '</section>' || E'\n'
      INTO backups
      FROM (SELECT b.*, count(*) OVER () AS n_all,
                   count(*) FILTER (WHERE b.status = 'passed') OVER () AS n_passed,
                   count(*) FILTER (WHERE b.status = 'failed') OVER () AS n_failed
              FROM adr_ops.backup_verifications b
             WHERE b.started_at >= w0 AND b.started_at <= w1 ORDER BY b.id DESC LIMIT 20) v;

    -- Pipelines: the jobs submitted in the period, and the share of the
    -- finished ones that failed.
    SELECT '<section id="pipelines"><h2>Pipelines</h2>'
           || CASE WHEN count(*) = 0 THEN '<p class="empty">No job submitted in the period.</p>'
                   ELSE '<table><thead><tr><th>pipeline</th><th>submitted</th><th>succeeded</th><th>failed</th><th>cancelled</th>'
                        || '<th>queued or running</th><th>failure rate</th><th></th><th>last error</th></tr></thead><tbody>'
                        || string_agg(format('<tr class="pipeline" data-pipeline="%s" data-failure-rate="%s"><td>%s</td><td class="n">%s</td><td class="n">%s</td>'
                                             '<td class="n">%s</td><td class="n">%s</td><td class="n">%s</td><td class="n">%s</td>'
                                             '<td><svg width="100" height="10" viewBox="0 0 100 10" role="img" aria-label="failure rate">'
                                             '<rect width="100" height="10" fill="#c8e6c9"/><rect width="%s" height="10" fill="#e53935"/></svg></td>'
                                             '<td class="detail">%s</td></tr>',
                                             adr_ops._html(j.pipeline), coalesce(j.rate::text, ''), adr_ops._html(j.pipeline),
                                             j.submitted, j.succeeded, j.failed, j.cancelled, j.active,
                                             coalesce(j.rate || '%', '-'), coalesce(j.rate, 0), adr_ops._html(j.last_error)),
                                      '' ORDER BY j.pipeline)
                        || '</tbody></table>' END
           || '</section>' || E'\n'
      INTO pipes
      FROM (SELECT p.pipeline, count(*) AS submitted,
                   count(*) FILTER (WHERE p.status = 'succeeded') AS succeeded,
                   count(*) FILTER (WHERE p.status = 'failed') AS failed,
                   count(*) FILTER (WHERE p.status = 'cancelled') AS cancelled,
                   count(*) FILTER (WHERE p.status IN ('queued', 'running')) AS active,
                   round(100.0 * count(*) FILTER (WHERE p.status = 'failed')
                         / nullif(count(*) FILTER (WHERE p.status IN ('succeeded', 'failed')), 0), 1) AS rate,
                   (array_agg(p.last_error ORDER BY p.completed_at DESC NULLS LAST)
                      FILTER (WHERE p.status = 'failed'))[1] AS last_error
              FROM adr_ops.processing_jobs p
             WHERE p.created_at >= w0 AND p.created_at <= w1
               -- through the status and completed_at indexes (see jobs.sql)
               AND (p.status = 'queued' OR p.status = 'running' OR p.completed_at >= w0)
             GROUP BY p.pipeline) j;

    -- What is open: incidents not closed, and the checks and probes whose
    -- last alert is not OK.
    SELECT '<section id="open"><h2>Open incidents and alerts</h2>'
           || format('<p class="summary" data-incidents="%1$s" data-alerts="%2$s" data-alerts-period="%3$s"><span><b>%1$s</b> incidents not closed</span><span><b>%2$s</b> checks alerting</span><span>%3$s alerts in the period</span></p>',
                     (SELECT count(*) FROM adr_ops.incidents i WHERE i.status <> 'closed'),
                     (SELECT count(*) FROM (SELECT DISTINCT ON (a.source, a.check_name) a.to_status FROM adr_ops.alerts a
                                             ORDER BY a.source, a.check_name, a.id DESC) l WHERE l.to_status <> 'OK'),
                     (SELECT count(*) FROM adr_ops.alerts a WHERE a.at >= w0 AND a.at <= w1))
           || coalesce((SELECT '<table><thead><tr><th>incident</th><th>severity</th><th>status</th><th>title</th><th>opened</th><th>overdue</th></tr></thead><tbody>'
                               || string_agg(format('<tr class="incident"><td class="n">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
                                                    i.id, adr_ops._html(i.severity), adr_ops._html(i.status), adr_ops._html(i.title),
                                                    adr_ops._html(to_char(i.opened_at, fmt)), CASE WHEN i.overdue THEN 'yes' ELSE 'no' END),
                                             '' ORDER BY i.severity, i.id)
                               || '</tbody></table>'
                          FROM adr_ops.incident_status i WHERE i.status <> 'closed' HAVING count(*) > 0), '')
           || coalesce((SELECT '<table><thead><tr><th>alerting</th><th>source</th><th>status</th><th>since</th><th>detail</th></tr></thead><tbody>'
                               || string_agg(format('<tr class="alert"><td>%s</td><td>%s</td><td><span class="badge b-%s">%s</span></td><td>%s</td><td class="detail">%s</td></tr>',
                                                    adr_ops._html(l.check_name), adr_ops._html(l.source), lower(l.to_status),
                                                    adr_ops._html(l.to_status), adr_ops._html(to_char(l.at, fmt)), adr_ops._html(l.detail)),
                                             '' ORDER BY l.check_name)
                               || '</tbody></table>'
                          FROM (SELECT DISTINCT ON (a.source, a.check_name) a.* FROM adr_ops.alerts a
                                 ORDER BY a.source, a.check_name, a.id DESC) l
                         WHERE l.to_status <> 'OK' HAVING count(*) > 0), '')
           || '</section>' || E'\n'
      INTO open_items;

    RETURN head || checks || open_items || queries || pipes || maint || backups || bloat
        || format('<footer class="meta">Generated %s by adr_ops.adr_report_html(%s).</footer>',
                  adr_ops._html(to_char(clock_timestamp(), fmt || ':SS TZ')), days)
        || E'\n</body></html>\n';
END
$$;
COMMENT ON FUNCTION adr_ops.adr_report_html(integer) IS
    'the weekly review as one self-contained HTML page: checks now and their history as charts, slowest queries, bloat, maintenance, backups, pipelines, open incidents and alerts';
REVOKE ALL ON FUNCTION adr_ops.adr_report_html(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_report_html(integer) TO pg_monitor;

-- issue 15, corruption detection: amcheck rotation and on demand, the
-- data_integrity health row (src/integrity.sql, whole file: new in 1.1).

-- integrity: corruption detection with amcheck and data checksums (runbook:
-- Pipeline Failure Recovery "determine if data corruption occurred",
-- Disaster Recovery "verify data integrity") --------------------------------

-- One row per verification of a relation by the integrity_check task or
-- adr_verify_integrity(): when, what was found.  status ok (nothing
-- found), corrupt (amcheck or a page check reported corruption: blkno is
-- the first block named, findings how many problems) or error (the check
-- could not be made: detail says why; a message that is not amcheck's own
-- stays in the server log, since the relation's owner may have raised it).
-- Not kept by pg_dump: a restore writes every page anew, so what was found
-- in the old files, and when they were last read, says nothing of the new
-- ones.
CREATE TABLE adr_ops.integrity_results (
    verified_at timestamptz NOT NULL,
    relid oid NOT NULL,
    relation text NOT NULL,
    kind text NOT NULL CHECK (kind OPERATOR(pg_catalog.=) ANY ('{table,index}'::text[])),
    pages bigint NOT NULL,
    heapallindexed boolean NOT NULL,
    duration interval NOT NULL,
    status text NOT NULL CHECK (status OPERATOR(pg_catalog.=) ANY ('{ok,corrupt,error}'::text[])),
    findings integer NOT NULL,
    blkno bigint,
    detail text,
    PRIMARY KEY (relid, verified_at)
);
CREATE INDEX integrity_results_verified_at ON adr_ops.integrity_results (verified_at);
COMMENT ON TABLE adr_ops.integrity_results IS
    'verifications of relations by amcheck (integrity_check task, adr_verify_integrity()): when, and what was found';
GRANT SELECT ON adr_ops.integrity_results TO pg_monitor;

-- The checksum failure counters of pg_stat_database as the integrity_check
-- task last saw them: the data_integrity check reports the failures counted
-- since as new.
CREATE TABLE adr_ops.checksum_counters (
    datid oid PRIMARY KEY,
    datname name,
    failures bigint NOT NULL,
    last_failure timestamptz,
    seen_at timestamptz NOT NULL
);
COMMENT ON TABLE adr_ops.checksum_counters IS
    'checksum failures per database as the integrity_check task last saw them in pg_stat_database';
GRANT SELECT ON adr_ops.checksum_counters TO pg_monitor;

-- The relations amcheck can verify in this database: tables, materialized
-- views and TOAST tables (verify_heapam) and their valid btree indexes
-- (bt_index_check), system catalogs included; not other sessions'
-- temporary relations, nor unlogged ones during recovery (no files).
-- tableid is the table of an index (itself for a table), owner_table the
-- user table a TOAST table or index belongs to, for the "tables" option.
CREATE FUNCTION adr_ops._integrity_relations(
    OUT relid oid, OUT tableid oid, OUT relation text, OUT kind text, OUT owner_table oid)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH t AS (
        SELECT c.oid, c.relname, c.relnamespace,
               coalesce((SELECT o.oid FROM pg_class o WHERE o.reltoastrelid = c.oid AND c.relkind = 't'),
                        c.oid) AS owner_table
          FROM pg_class c
         WHERE c.relkind IN ('r', 'm', 't') AND c.relpersistence <> 't'
           AND (c.relpersistence <> 'u' OR NOT pg_is_in_recovery())
    )
    SELECT t.oid, t.oid, format('%I.%I', n.nspname, t.relname), 'table', t.owner_table
      FROM t JOIN pg_namespace n ON n.oid = t.relnamespace
    UNION ALL
    SELECT i.indexrelid, t.oid, format('%I.%I', n.nspname, ic.relname), 'index', t.owner_table
      FROM t
      JOIN pg_index i ON i.indrelid = t.oid AND i.indisvalid AND i.indisready
      JOIN pg_class ic ON ic.oid = i.indexrelid
      JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
      JOIN pg_namespace n ON n.oid = ic.relnamespace
$$;
COMMENT ON FUNCTION adr_ops._integrity_relations() IS
    'API: private. The relations amcheck can verify in this database';

-- The rotation: the relations to verify, the one whose last verification
-- (or attempt) is oldest first, never verified ones before all, with
-- their size in pages.  options: "tables" limits them to these tables
-- (names, qualified or not) with their indexes and TOAST.
CREATE FUNCTION adr_ops._integrity_queue(options jsonb,
    OUT relid oid, OUT tableid oid, OUT relation text, OUT kind text, OUT pages bigint,
    OUT last_verified timestamptz)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.relid, r.tableid, r.relation, r.kind,
           (SELECT greatest(c.relpages, 0)::bigint FROM pg_class c WHERE c.oid = r.relid),
           l.at
      FROM adr_ops._integrity_relations() r
      LEFT JOIN LATERAL (SELECT max(x.verified_at) AS at FROM adr_ops.integrity_results x
                          WHERE x.relid = r.relid) l ON true
     WHERE options -> 'tables' IS NULL
        OR EXISTS (SELECT FROM jsonb_array_elements_text(options -> 'tables') t(name)
                     JOIN pg_class c ON c.oid = r.owner_table
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE t.name IN (c.relname, n.nspname || '.' || c.relname,
                                     format('%I.%I', n.nspname, c.relname)))
     ORDER BY l.at NULLS FIRST, r.relid
$$;
COMMENT ON FUNCTION adr_ops._integrity_queue(jsonb) IS
    'API: private. The relations to verify, oldest verification first';

-- amcheck's functions, bound by membership (_extension_function): its
-- schema is often public, where others may plant look-alikes.
CREATE FUNCTION adr_ops._integrity_functions(OUT heap regprocedure, OUT btree regprocedure)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension e WHERE e.extname = 'amcheck') THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('extension "amcheck" is not installed in database "%s"', current_database()),
            DETAIL = 'adr_ops verifies tables and indexes with amcheck''s verify_heapam() and bt_index_check().',
            HINT = 'Run CREATE EXTENSION amcheck in this database.';
    END IF;
    heap := adr_ops._extension_function('amcheck', 'verify_heapam',
                                        '{regclass,boolean,boolean,text,bigint,bigint}');
    btree := adr_ops._extension_function('amcheck', 'bt_index_check', '{regclass,boolean}');
END
$$;
COMMENT ON FUNCTION adr_ops._integrity_functions() IS
    'API: private. amcheck''s verify_heapam() and bt_index_check(), bound by membership, or an error saying what is missing';

-- After a run: the checksum failure counters seen, and the history pruned
-- (rows older than keep, but never a relation's newest).  Returns the
-- failures counted since the previous run, per database, as text.
CREATE FUNCTION adr_ops._integrity_after_run(keep interval DEFAULT '90 days') RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    news text;
BEGIN
    DELETE FROM adr_ops.integrity_results r
     WHERE r.verified_at < now() - keep
       AND EXISTS (SELECT FROM adr_ops.integrity_results n
                    WHERE n.relid = r.relid AND n.verified_at > r.verified_at);
    SELECT string_agg(format('%s in %s', adr_ops._count_of(d.failures - coalesce(c.failures, 0), 'checksum failure'),
                             coalesce(format('database %I', d.datname), 'the shared catalogs')),
                      ', ' ORDER BY d.datname)
      INTO news
      FROM (SELECT s.datid, s.datname, s.checksum_failures AS failures FROM pg_stat_database s) d
      LEFT JOIN adr_ops.checksum_counters c ON c.datid = d.datid
     WHERE d.failures > coalesce(c.failures, 0);
    INSERT INTO adr_ops.checksum_counters AS c (datid, datname, failures, last_failure, seen_at)
    SELECT s.datid, s.datname, s.checksum_failures, s.checksum_last_failure, now()
      FROM pg_stat_database s
     WHERE s.checksum_failures IS NOT NULL
    ON CONFLICT (datid) DO UPDATE
       SET datname = excluded.datname, failures = excluded.failures,
           last_failure = excluded.last_failure, seen_at = excluded.seen_at;
    DELETE FROM adr_ops.checksum_counters c
     WHERE NOT EXISTS (SELECT FROM pg_stat_database s WHERE s.datid = c.datid);
    RETURN news;
END
$$;
COMMENT ON FUNCTION adr_ops._integrity_after_run(interval) IS
    'API: private. Records the checksum failure counters seen and prunes integrity_results; returns the new failures';

-- Verifies a relation now: a table with verify_heapam() (TOAST included)
-- and then its btree indexes, or one btree index, with bt_index_check();
-- heapallindexed also checks that every table row is in the index.  Only
-- AccessShareLock is taken.  The results are stored in integrity_results
-- (they count for the task's rotation) and returned.  SECURITY DEFINER:
-- EXECUTE on it is all a grantee needs; amcheck runs an index's
-- expressions as the table's owner.
CREATE FUNCTION adr_ops.adr_verify_integrity(relation regclass, heapallindexed boolean DEFAULT false)
RETURNS SETOF adr_ops.integrity_results
AS 'MODULE_PATHNAME', 'adr_verify_integrity'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION adr_ops.adr_verify_integrity(regclass, boolean) IS
    'verifies a table (and its btree indexes) or a btree index with amcheck now, stores and returns what was found';
REVOKE ALL ON FUNCTION adr_ops.adr_verify_integrity(regclass, boolean) FROM PUBLIC;

-- The health row data_integrity.  value: the problems found, i.e.
-- checksum failures counted since the integrity_check task last looked,
-- plus relations whose latest verification found corruption (CRITICAL
-- beyond 0 by default).  WARNING for failures counted before (until the
-- statistics are reset) and for relations that could not be verified.
-- The first 10 relations of each kind are named (by name), then how many
-- more.
-- The detail also says whether data checksums are on and how far the
-- rotation has got.
CREATE FUNCTION adr_ops._check_data_integrity() RETURNS SETOF adr_ops._health_reading
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts text[] := '{}';
    new_n bigint;
    new_text text;
    old_n bigint;
    old_text text;
    corrupt_n bigint;
    corrupt_text text;
    error_n bigint;
    error_text text;
    verified bigint;
    total bigint;
    oldest timestamptz;
BEGIN
    IF current_setting('data_checksums') = 'on' THEN
        parts := parts || 'data checksums are on'::text;
    ELSE
        parts := parts || 'data checksums are off (pages are checked by amcheck only)'::text;
    END IF;

    -- Checksum failures, per database: new since the task last saw the
    -- counters (all of them after a statistics reset), and older ones.
    WITH d AS (
        SELECT s.datname, s.checksum_failures AS failures, s.checksum_last_failure AS last_failure,
               CASE WHEN c.failures IS NULL OR s.checksum_failures < c.failures THEN s.checksum_failures
                    ELSE s.checksum_failures - c.failures END AS news,
               c.seen_at
          FROM pg_stat_database s
          LEFT JOIN adr_ops.checksum_counters c ON c.datid = s.datid
         WHERE s.checksum_failures > 0)
    SELECT coalesce(sum(d.news), 0), coalesce(sum(d.failures - d.news), 0),
           string_agg(format('%s in %s, the last at %s', adr_ops._count_of(d.news, 'new checksum failure'),
                             coalesce(format('database %I', d.datname), 'the shared catalogs'),
                             d.last_failure::timestamptz(0)), '; ' ORDER BY d.datname) FILTER (WHERE d.news > 0),
           string_agg(format('%s in %s seen by the integrity_check task at %s',
                             adr_ops._count_of(d.failures - d.news, 'checksum failure'),
                             coalesce(format('database %I', d.datname), 'the shared catalogs'),
                             d.seen_at::timestamptz(0)), '; ' ORDER BY d.datname) FILTER (WHERE d.failures > d.news)
      INTO new_n, old_n, new_text, old_text
      FROM d;
    IF new_n > 0 THEN
        parts := parts || new_text;
    END IF;
    IF old_n > 0 THEN
        parts := parts || (old_text || ' (pg_stat_reset() in that database clears them once repaired)');
    END IF;

    -- The latest verification of each relation that still exists.
    WITH latest AS (
        SELECT DISTINCT ON (x.relid) x.*
          FROM adr_ops.integrity_results x
         WHERE EXISTS (SELECT FROM pg_class c WHERE c.oid = x.relid)
         ORDER BY x.relid, x.verified_at DESC)
    SELECT count(*) FILTER (WHERE l.status = 'corrupt'),
           array_to_string((array_agg(format('%s%s: %s', l.relation, ' block ' || l.blkno, left(l.detail, 200))
                                      ORDER BY l.relation) FILTER (WHERE l.status = 'corrupt'))[1:10], '; '),
           count(*) FILTER (WHERE l.status = 'error'),
           array_to_string((array_agg(format('%s (%s)', l.relation, left(l.detail, 200))
                                      ORDER BY l.relation) FILTER (WHERE l.status = 'error'))[1:10], '; '),
           count(*) FILTER (WHERE l.status <> 'error'),
           min(l.verified_at)
      INTO corrupt_n, corrupt_text, error_n, error_text, verified, oldest
      FROM latest l;
    IF corrupt_n > 0 THEN
        parts := parts || ('corruption found in ' || adr_ops._count_of(corrupt_n, 'relation') || ': ' || corrupt_text
                           || CASE WHEN corrupt_n > 10 THEN format('; and %s more', corrupt_n - 10) ELSE '' END);
    END IF;
    IF error_n > 0 THEN
        parts := parts || ('could not verify ' || error_text
                           || CASE WHEN error_n > 10 THEN format('; and %s more', error_n - 10) ELSE '' END);
    END IF;

    IF NOT EXISTS (SELECT FROM pg_extension e WHERE e.extname = 'amcheck') THEN
        parts := parts || 'extension amcheck is not installed in this database: tables and indexes are not verified (run CREATE EXTENSION amcheck)'::text;
    ELSE
        SELECT count(*) INTO total FROM adr_ops._integrity_relations();
        parts := parts || CASE WHEN verified = 0 THEN format('none of %s relations verified yet', total)
                               ELSE format('%s of %s relations verified, the oldest at %s',
                                           verified, total, oldest::timestamptz(0)) END;
    END IF;

    RETURN QUERY SELECT 'data_integrity'::text, (new_n + corrupt_n)::numeric, 'problems'::text,
                        array_to_string(parts, '; '), NULL::text,
                        CASE WHEN old_n > 0 OR error_n > 0 THEN 'WARNING' END;
END
$$;
COMMENT ON FUNCTION adr_ops._check_data_integrity() IS
    'API: private. The data_integrity health row: checksum failures, data checksums, amcheck findings';

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['adr_ops._check_data_integrity()', 'adr_ops._integrity_relations()'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pg_monitor', f);
    END LOOP;
    FOREACH f IN ARRAY ARRAY['adr_ops._integrity_queue(jsonb)', 'adr_ops._integrity_functions()',
                             'adr_ops._integrity_after_run(interval)'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$grants$;
INSERT INTO adr_ops.health_thresholds (check_name, warn, crit) VALUES ('data_integrity', 0, 0);
INSERT INTO adr_ops.health_checks (name, position) VALUES ('data_integrity', 180);

-- Nightly, at a minute no other default schedule uses; a heavy task, so
-- confined to adr_ops.maintenance_window when one is set.  Each run
-- verifies for at most time_budget (default 30min), oldest first.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('integrity_check', '30 3 * * *', 'integrity_check', pg_catalog.current_database());

-- quality: data-quality checks, their history, trends and health rows, and
-- the validation gate of adr_job_complete() (docs/quality.md).
-- The gate: adr_job_complete() runs the pipeline's blocking checks.
CREATE OR REPLACE FUNCTION adr_ops.adr_job_complete(id bigint) RETURNS adr_ops.processing_jobs
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j adr_ops.processing_jobs;
BEGIN
    UPDATE adr_ops.processing_jobs p
       SET status = 'succeeded', completed_at = greatest(now(), p.created_at)
     WHERE p.id = adr_job_complete.id AND p.status = 'running'
       AND NOT EXISTS (SELECT FROM adr_ops.quality_checks q
                        WHERE q.dataset = p.pipeline AND q.blocking AND q.enabled)
    RETURNING * INTO j;
    IF NOT FOUND THEN
        RETURN adr_ops._job_quality_gate(adr_job_complete.id);
    END IF;
    INSERT INTO adr_ops.job_events (job_id, from_status, to_status, actor, note)
    VALUES (j.id, 'running', 'succeeded', adr_ops._calling_role(), 'complete');
    RETURN j;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_complete(bigint) IS
    'marks a running job succeeded, or failed when a blocking quality check of its pipeline fails';

-- The health history leaves quality:<name> rows to quality_results' alerts.
CREATE OR REPLACE FUNCTION adr_ops._alert_health_transitions() RETURNS trigger
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
       AND r.check_name NOT LIKE 'quality:%'   -- quality_results alerts for them
       -- a restored dump's old rows are history, not news
       AND r.taken_at > now() - interval '10 minutes'
       AND p.status IS DISTINCT FROM r.status
       AND (p.status IS NOT NULL OR r.status <> 'OK')
     ORDER BY r.check_name;
    RETURN NULL;
END
$$;

-- quality: declarative data-quality checks, run as their owner in one scan
-- per relation, with history, trends, a health row per failing check and
-- the validation gate of pipeline jobs (runbook: Pipeline Monitoring,
-- Pipeline Failure Recovery) --

-- The checks.  owner is the role that created the check: its queries run
-- with that role's privileges, never the launcher's.  relation follows a
-- rename (regclass); relation_name keeps the name it had, for the message
-- when the relation is dropped.  Change them only through
-- adr_quality_check_add() and adr_quality_check_drop().
CREATE TABLE adr_ops.quality_checks (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE
        CHECK (pg_catalog.length(name) OPERATOR(pg_catalog.>) 0
               AND pg_catalog.length(name) OPERATOR(pg_catalog.<=) 200),
    relation regclass,
    relation_name text,
    kind text NOT NULL
        CHECK (kind OPERATOR(pg_catalog.=) ANY ('{row_count,freshness,null_fraction,distinct_count,duplicate_count,accepted_values,range,length,regex,referential,schema,custom}'::text[])),
    params jsonb NOT NULL DEFAULT '{}',
    warn_level double precision,
    crit_level double precision,
    dataset text,
    blocking boolean NOT NULL DEFAULT false,
    enabled boolean NOT NULL DEFAULT true,
    owner regrole NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX quality_checks_dataset ON adr_ops.quality_checks (dataset);
COMMENT ON TABLE adr_ops.quality_checks IS
    'data-quality checks, each run with the privileges of its owner; change them through adr_quality_check_add() and adr_quality_check_drop()';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.quality_checks', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.quality_checks_id_seq', '');
GRANT SELECT ON adr_ops.quality_checks TO pg_monitor;

-- One row per check per run.  sample holds a few failing rows (only the
-- check's columns, read as its owner): row data, so pg_monitor reads every
-- column but that one.
CREATE TABLE adr_ops.quality_results (
    id bigserial PRIMARY KEY,
    check_id bigint NOT NULL REFERENCES adr_ops.quality_checks (id) ON DELETE CASCADE,
    check_name text NOT NULL,
    ran_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    status text NOT NULL
        CHECK (status OPERATOR(pg_catalog.=) ANY ('{OK,WARNING,CRITICAL,UNKNOWN}'::text[])),
    metric double precision,
    duration_ms double precision,
    rows_scanned bigint,
    sample_percent double precision,
    error_bound double precision,
    detail text,
    sample jsonb,
    source text NOT NULL DEFAULT 'manual',
    job_id bigint
);
CREATE INDEX quality_results_check ON adr_ops.quality_results (check_id, ran_at);
CREATE INDEX quality_results_ran_at ON adr_ops.quality_results (ran_at);
COMMENT ON TABLE adr_ops.quality_results IS
    'results of the data-quality checks: metric, status, duration, and a bounded sample of failing rows';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.quality_results', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.quality_results_id_seq', '');
GRANT SELECT (id, check_id, check_name, ran_at, status, metric, duration_ms, rows_scanned,
              sample_percent, error_bound, detail, source, job_id)
    ON adr_ops.quality_results TO pg_monitor;

-- The executor (quality.c): the first column of the first row of a query,
-- run as owner under a security-restricted operation with a time budget.
CREATE FUNCTION adr_ops._quality_exec(owner oid, query text, timeout_ms integer) RETURNS text
AS 'MODULE_PATHNAME', 'adr_quality_exec'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION adr_ops._quality_exec(oid, text, integer) IS
    'API: private. Runs one query of a quality check as its owner, read-only, within timeout_ms';
REVOKE ALL ON FUNCTION adr_ops._quality_exec(oid, text, integer) FROM PUBLIC;

-- The columns a check reads: params column (text) or columns (array).
CREATE FUNCTION adr_ops._quality_columns(params jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN jsonb_typeof(params -> 'columns') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(params -> 'columns'))
                WHEN params ? 'column' THEN ARRAY[params ->> 'column']
                ELSE '{}'::text[] END
$$;
COMMENT ON FUNCTION adr_ops._quality_columns(jsonb) IS
    'API: private. The column names a quality check reads';
REVOKE ALL ON FUNCTION adr_ops._quality_columns(jsonb) FROM PUBLIC;

-- The fingerprint of a relation's columns: name and type, in order.
CREATE FUNCTION adr_ops._quality_schema(rel regclass) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                              ORDER BY a.attnum), '[]')
      FROM pg_attribute a
     WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION adr_ops._quality_schema(regclass) IS
    'API: private. The columns and types of a relation, for the schema check';
REVOKE ALL ON FUNCTION adr_ops._quality_schema(regclass) FROM PUBLIC;

-- The SQL of a check's failing rows, for the kinds that judge rows one by
-- one: identifiers through %I, parameters through %L, types as the catalog
-- writes them.  NULL for the other kinds.
CREATE FUNCTION adr_ops._quality_predicate(c adr_ops.quality_checks) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col text := format('%I', c.params ->> 'column');
    typ text;
    p text[] := '{}';
BEGIN
    IF c.kind NOT IN ('null_fraction', 'accepted_values', 'range', 'length', 'regex') THEN
        RETURN NULL;
    END IF;
    IF c.kind IN ('range', 'length') THEN
        SELECT format_type(a.atttypid, a.atttypmod) INTO typ
          FROM pg_attribute a
         WHERE a.attrelid = c.relation AND a.attname = c.params ->> 'column' AND NOT a.attisdropped;
    END IF;
    IF c.kind = 'null_fraction' THEN
        RETURN format('%s IS NULL', col);
    ELSIF c.kind = 'accepted_values' THEN
        RETURN format('%s IS NOT NULL AND (%s)::text <> ALL (%L::text[])', col, col,
                      ARRAY(SELECT jsonb_array_elements_text(c.params -> 'values')));
    ELSIF c.kind = 'regex' THEN
        RETURN format('%s IS NOT NULL AND (%s)::text !~ %L', col, col, c.params ->> 'pattern');
    ELSIF c.kind = 'range' THEN
        IF c.params ? 'min' THEN p := p || format('%s < (%L)::%s', col, c.params ->> 'min', typ); END IF;
        IF c.params ? 'max' THEN p := p || format('%s > (%L)::%s', col, c.params ->> 'max', typ); END IF;
    ELSIF c.kind = 'length' AND (typ IN ('text', 'character varying') OR typ LIKE 'character varying(%') THEN
        -- octet_length() reads the value's header only, length() walks its
        -- characters (and detoasts it): a string of n bytes has at most n
        -- and at least n / (the encoding's longest character) characters,
        -- so the byte count settles most rows and length() runs only on
        -- the others.  Same rows as length() alone.
        IF c.params ? 'min' THEN
            p := p || format('(octet_length((%s)::text) < %L::bigint * %s AND length((%s)::text) < %L::integer)',
                             col, c.params ->> 'min',
                             pg_encoding_max_length(pg_char_to_encoding(getdatabaseencoding())),
                             col, c.params ->> 'min');
        END IF;
        IF c.params ? 'max' THEN
            p := p || format('(octet_length((%s)::text) > %L::integer AND length((%s)::text) > %L::integer)',
                             col, c.params ->> 'max', col, c.params ->> 'max');
        END IF;
    ELSIF c.kind = 'length' THEN
        IF c.params ? 'min' THEN
            p := p || format('length((%s)::text) < %L::integer', col, c.params ->> 'min');
        END IF;
        IF c.params ? 'max' THEN
            p := p || format('length((%s)::text) > %L::integer', col, c.params ->> 'max');
        END IF;
    END IF;
    RETURN '(' || array_to_string(p, ' OR ') || ')';
END
$$;
COMMENT ON FUNCTION adr_ops._quality_predicate(adr_ops.quality_checks) IS
    'API: private. The WHERE clause of the rows a quality check fails on';
REVOKE ALL ON FUNCTION adr_ops._quality_predicate(adr_ops.quality_checks) FROM PUBLIC;

-- The aggregate of a check in its relation's one scan, as double precision.
CREATE FUNCTION adr_ops._quality_aggregate(c adr_ops.quality_checks) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols text[] := adr_ops._quality_columns(c.params);
    q text;
    nonnull text;
BEGIN
    SELECT string_agg(format('%I', x), ', '), string_agg(format('%I IS NOT NULL', x), ' AND ')
      INTO q, nonnull FROM unnest(cols) x;
    RETURN CASE c.kind
        WHEN 'row_count' THEN 'count(*)::float8'
        WHEN 'freshness' THEN
            format('extract(epoch FROM now() - max(%I)::timestamptz)::float8', c.params ->> 'column')
        WHEN 'distinct_count' THEN
            CASE WHEN cardinality(cols) = 1 THEN format('count(DISTINCT %s)::float8', q)
                 ELSE format('count(DISTINCT ROW(%s)) FILTER (WHERE %s)::float8', q, nonnull) END
        WHEN 'duplicate_count' THEN
            CASE WHEN cardinality(cols) = 1 THEN format('(count(%s) - count(DISTINCT %s))::float8', q, q)
                 ELSE format('(count(*) FILTER (WHERE %s) - count(DISTINCT ROW(%s)) FILTER (WHERE %s))::float8',
                             nonnull, q, nonnull) END
        ELSE format('count(*) FILTER (WHERE %s)::float8', adr_ops._quality_predicate(c))
    END;
END
$$;
COMMENT ON FUNCTION adr_ops._quality_aggregate(adr_ops.quality_checks) IS
    'API: private. The aggregate that measures a quality check in its relation''s one scan';
REVOKE ALL ON FUNCTION adr_ops._quality_aggregate(adr_ops.quality_checks) FROM PUBLIC;

-- The status of a metric.  min and max (params) are hard bounds: outside,
-- CRITICAL.  warn and crit levels follow health_thresholds: warn > crit
-- means lower is worse, else higher is worse.  The kinds that count failing
-- rows are CRITICAL at the first one unless levels say otherwise; freshness
-- is CRITICAL beyond max_age.
CREATE FUNCTION adr_ops._quality_judge(c adr_ops.quality_checks, metric double precision)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w double precision := c.warn_level;
    k double precision := c.crit_level;
BEGIN
    IF metric IS NULL THEN
        RETURN 'CRITICAL';
    END IF;
    IF c.kind IN ('row_count', 'distinct_count', 'custom')
       AND ((c.params ? 'min' AND metric < (c.params ->> 'min')::float8)
            OR (c.params ? 'max' AND metric > (c.params ->> 'max')::float8)) THEN
        RETURN 'CRITICAL';
    END IF;
    IF k IS NULL AND w IS NULL THEN
        IF c.kind IN ('null_fraction', 'duplicate_count', 'accepted_values', 'range', 'length',
                      'regex', 'referential', 'schema') THEN
            k := 0;
        ELSIF c.kind = 'freshness' THEN
            k := extract(epoch FROM (c.params ->> 'max_age')::interval);
        END IF;
    END IF;
    IF w IS NOT NULL AND k IS NOT NULL AND w > k THEN
        RETURN CASE WHEN metric < k THEN 'CRITICAL' WHEN metric < w THEN 'WARNING' ELSE 'OK' END;
    END IF;
    RETURN CASE WHEN metric > k THEN 'CRITICAL' WHEN metric > w THEN 'WARNING' ELSE 'OK' END;
END
$$;
COMMENT ON FUNCTION adr_ops._quality_judge(adr_ops.quality_checks, double precision) IS
    'API: private. OK, WARNING or CRITICAL for a metric of a quality check';
REVOKE ALL ON FUNCTION adr_ops._quality_judge(adr_ops.quality_checks, double precision) FROM PUBLIC;

-- Whether a role may read what a check reads: the named columns, or any
-- column when it names none.
CREATE FUNCTION adr_ops._quality_readable(role oid, rel regclass, cols text[]) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN cardinality(cols) = 0 THEN has_any_column_privilege(role, rel, 'SELECT')
                ELSE (SELECT bool_and(has_column_privilege(role, rel, x, 'SELECT')) FROM unnest(cols) x) END
$$;
COMMENT ON FUNCTION adr_ops._quality_readable(oid, regclass, text[]) IS
    'API: private. Whether a role may read the columns a quality check reads';
REVOKE ALL ON FUNCTION adr_ops._quality_readable(oid, regclass, text[]) FROM PUBLIC;

-- Define a check, owned by the calling role.
CREATE FUNCTION adr_ops.adr_quality_check_add(
    name text, relation regclass, kind text, params jsonb DEFAULT '{}',
    warn double precision DEFAULT NULL, crit double precision DEFAULT NULL,
    dataset text DEFAULT NULL, blocking boolean DEFAULT false, enabled boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller name := adr_ops._calling_role_strict();
    caller_oid oid;
    cols text[];
    x text;
    ref regclass;
    refcols text[];
    p jsonb := coalesce(adr_quality_check_add.params, '{}');
    new_id bigint;
BEGIN
    SELECT r.oid INTO caller_oid FROM pg_roles r WHERE r.rolname = caller;
    IF adr_quality_check_add.name IS NULL OR adr_quality_check_add.kind IS NULL
       OR adr_quality_check_add.blocking IS NULL OR adr_quality_check_add.enabled IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'name, kind, blocking and enabled must not be null';
    END IF;
    IF jsonb_typeof(p) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'params must be a JSON object';
    END IF;
    IF adr_quality_check_add.kind NOT IN ('row_count', 'freshness', 'null_fraction', 'distinct_count',
            'duplicate_count', 'accepted_values', 'range', 'length', 'regex', 'referential',
            'schema', 'custom') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('unrecognized quality check kind "%s"', adr_quality_check_add.kind),
            HINT = 'Use row_count, freshness, null_fraction, distinct_count, duplicate_count, accepted_values, range, length, regex, referential, schema or custom.';
    END IF;

    IF adr_quality_check_add.kind = 'custom' THEN
        IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = caller_oid) THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = 'permission denied to create a custom quality check',
                DETAIL = 'A custom check runs SQL of its own; only superusers may define one.';
        END IF;
        IF coalesce(p ->> 'sql', '') = '' THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = 'a custom check needs params sql: a query returning one number';
        END IF;
    ELSE
        IF adr_quality_check_add.relation IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
                MESSAGE = format('a %s check needs a relation', adr_quality_check_add.kind);
        END IF;
        IF NOT EXISTS (SELECT FROM pg_class k WHERE k.oid = adr_quality_check_add.relation
                                                AND k.relkind IN ('r', 'p', 'v', 'm', 'f')) THEN
            RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
                MESSAGE = format('"%s" is not a table, view, materialized view or foreign table',
                                 adr_quality_check_add.relation);
        END IF;
        cols := adr_ops._quality_columns(p);
        IF adr_quality_check_add.kind IN ('null_fraction', 'accepted_values', 'range', 'length', 'regex')
           AND NOT p ? 'column' THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('a %s check needs params column', adr_quality_check_add.kind);
        END IF;
        IF adr_quality_check_add.kind IN ('distinct_count', 'duplicate_count', 'referential')
           AND cardinality(cols) = 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('a %s check needs params column or columns', adr_quality_check_add.kind);
        END IF;
        FOREACH x IN ARRAY cols LOOP
            IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = adr_quality_check_add.relation
                              AND a.attname = x AND a.attnum > 0 AND NOT a.attisdropped) THEN
                RAISE EXCEPTION USING ERRCODE = 'undefined_column',
                    MESSAGE = format('column "%s" of relation "%s" does not exist', x,
                                     adr_quality_check_add.relation);
            END IF;
        END LOOP;
        -- Refused at creation what the owner could not read directly.
        IF NOT adr_ops._quality_readable(caller_oid, adr_quality_check_add.relation, cols) THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = format('permission denied for relation %s', adr_quality_check_add.relation),
                DETAIL = format('A check runs with the privileges of its owner, role "%s", who cannot read %s of it.',
                                caller, CASE WHEN cardinality(cols) = 0 THEN 'any column'
                                             ELSE 'the columns ' || array_to_string(cols, ', ') END);
        END IF;
        IF adr_quality_check_add.kind = 'accepted_values' AND jsonb_typeof(p -> 'values') IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = 'an accepted_values check needs params values: an array';
        ELSIF adr_quality_check_add.kind IN ('range', 'length') AND NOT (p ? 'min' OR p ? 'max') THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('a %s check needs params min or max', adr_quality_check_add.kind);
        ELSIF adr_quality_check_add.kind = 'regex' THEN
            IF coalesce(p ->> 'pattern', '') = '' THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                    MESSAGE = 'a regex check needs params pattern';
            END IF;
            PERFORM '' ~ (p ->> 'pattern');      -- an invalid pattern fails here
        ELSIF adr_quality_check_add.kind = 'freshness' THEN
            IF (p ->> 'max_age') IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                    MESSAGE = 'a freshness check needs params max_age, an interval';
            END IF;
            PERFORM (p ->> 'max_age')::interval;
            IF p ? 'column' AND NOT EXISTS (
                    SELECT FROM pg_attribute a
                     WHERE a.attrelid = adr_quality_check_add.relation AND a.attname = p ->> 'column'
                       AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)) THEN
                RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
                    MESSAGE = format('column "%s" of a freshness check must be a timestamp or a date', p ->> 'column');
            END IF;
        ELSIF adr_quality_check_add.kind = 'range' THEN
            -- the bounds must read as the column's type, cast as the owner
            -- (a domain's constraint is the owner's code, not ours)
            PERFORM adr_ops._quality_exec(caller_oid,
                        format('SELECT %s', string_agg(format('(%L)::%s', p ->> b, format_type(a.atttypid, a.atttypmod)), ', ')),
                        10000)
               FROM pg_attribute a, unnest(ARRAY['min', 'max']) b
              WHERE a.attrelid = adr_quality_check_add.relation AND a.attname = p ->> 'column' AND p ? b;
        ELSIF adr_quality_check_add.kind = 'referential' THEN
            ref := to_regclass(p ->> 'references');
            IF ref IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'undefined_table',
                    MESSAGE = format('referenced relation "%s" does not exist', p ->> 'references'),
                    HINT = 'Set params references to the relation the columns point to.';
            END IF;
            refcols := CASE WHEN jsonb_typeof(p -> 'referenced_columns') = 'array'
                            THEN ARRAY(SELECT jsonb_array_elements_text(p -> 'referenced_columns'))
                            ELSE cols END;
            IF cardinality(refcols) <> cardinality(cols) THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                    MESSAGE = 'params columns and referenced_columns must be as many';
            END IF;
            IF NOT adr_ops._quality_readable(caller_oid, ref, refcols) THEN
                RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                    MESSAGE = format('permission denied for relation %s', ref),
                    DETAIL = format('A check runs with the privileges of its owner, role "%s".', caller);
            END IF;
            p := p || jsonb_build_object('references', format('%I.%I', n.nspname, k.relname),
                                         'referenced_columns', to_jsonb(refcols))
              FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace WHERE k.oid = ref;
        ELSIF adr_quality_check_add.kind = 'schema' AND NOT p ? 'columns_expected' THEN
            p := p || jsonb_build_object('columns_expected', adr_ops._quality_schema(adr_quality_check_add.relation));
        END IF;
    END IF;
    IF adr_quality_check_add.kind IN ('row_count', 'distinct_count', 'custom') THEN
        PERFORM (p ->> 'min')::float8, (p ->> 'max')::float8;   -- _quality_judge() reads them so
    END IF;
    IF p ? 'anomaly' AND (p ->> 'anomaly') NOT IN ('up', 'down', 'both') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('params anomaly must be up, down or both, not "%s"', p ->> 'anomaly');
    END IF;
    IF p ? 'sample_percent' AND NOT ((p ->> 'sample_percent')::float8 > 0 AND (p ->> 'sample_percent')::float8 <= 100) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'params sample_percent must be above 0 and at most 100';
    END IF;

    INSERT INTO adr_ops.quality_checks (name, relation, relation_name, kind, params, warn_level,
                                        crit_level, dataset, blocking, enabled, owner)
    SELECT adr_quality_check_add.name, adr_quality_check_add.relation,
           (SELECT format('%I.%I', n.nspname, k.relname) FROM pg_class k
              JOIN pg_namespace n ON n.oid = k.relnamespace WHERE k.oid = adr_quality_check_add.relation),
           adr_quality_check_add.kind, p, adr_quality_check_add.warn, adr_quality_check_add.crit,
           adr_quality_check_add.dataset, adr_quality_check_add.blocking,
           adr_quality_check_add.enabled, caller_oid::regrole
    RETURNING id INTO new_id;
    RETURN new_id;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
        MESSAGE = format('quality check "%s" already exists', adr_quality_check_add.name);
END
$$;
COMMENT ON FUNCTION adr_ops.adr_quality_check_add(text, regclass, text, jsonb, double precision, double precision, text, boolean, boolean) IS
    'defines a data-quality check owned by the calling role; returns its id';
REVOKE ALL ON FUNCTION adr_ops.adr_quality_check_add(text, regclass, text, jsonb, double precision, double precision, text, boolean, boolean) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_quality_check_drop(name text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c adr_ops.quality_checks;
    caller name := adr_ops._calling_role_strict();
BEGIN
    SELECT * INTO c FROM adr_ops.quality_checks q WHERE q.name = adr_quality_check_drop.name FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF NOT pg_has_role(caller, c.owner, 'USAGE') THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('must be a member of role "%s" to drop quality check "%s"', c.owner, c.name);
    END IF;
    DELETE FROM adr_ops.quality_checks q WHERE q.id = c.id;
    RETURN true;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_quality_check_drop(text) IS
    'drops a data-quality check and its results; its owner (or a superuser) only';
REVOKE ALL ON FUNCTION adr_ops.adr_quality_check_drop(text) FROM PUBLIC;

-- Why a check cannot run now, or NULL: its relation or owner is gone, or
-- its owner lost what it reads.
CREATE FUNCTION adr_ops._quality_unrunnable(c adr_ops.quality_checks) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = c.owner)
            THEN format('the owner of the check (role OID %s) no longer exists', c.owner::oid)
        WHEN c.kind = 'custom' THEN
            CASE WHEN NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = c.owner)
                 THEN format('role "%s" owns this custom check and is no longer a superuser', c.owner) END
        WHEN NOT EXISTS (SELECT FROM pg_class k WHERE k.oid = c.relation)
            THEN format('relation %s no longer exists', c.relation_name)
        WHEN c.kind = 'referential' AND to_regclass(c.params ->> 'references') IS NULL
            THEN format('referenced relation %s no longer exists', c.params ->> 'references')
        -- has_column_privilege() raises an error for a column name that
        -- is gone, which would stop the whole run
        WHEN m.gone IS NOT NULL
            THEN format('column %s of relation %s no longer exists', m.gone, c.relation)
        WHEN NOT adr_ops._quality_readable(c.owner, c.relation, adr_ops._quality_columns(c.params))
            THEN format('permission denied for relation %s: the check''s owner, role "%s", can no longer read %s',
                        c.relation, c.owner,
                        CASE WHEN c.params ? 'column' OR c.params ? 'columns'
                             THEN 'the columns ' || array_to_string(adr_ops._quality_columns(c.params), ', ')
                             ELSE 'it' END)
    END
      FROM (SELECT string_agg(quote_ident(x), ', ') AS gone
              FROM unnest(adr_ops._quality_columns(c.params)) x
             WHERE NOT EXISTS (SELECT FROM pg_attribute a
                                WHERE a.attrelid = c.relation AND a.attname = x
                                  AND a.attnum > 0 AND NOT a.attisdropped)) m
$$;
COMMENT ON FUNCTION adr_ops._quality_unrunnable(adr_ops.quality_checks) IS
    'API: private. Why a quality check cannot run now, or NULL';
REVOKE ALL ON FUNCTION adr_ops._quality_unrunnable(adr_ops.quality_checks) FROM PUBLIC;

-- A few failing rows of a failing check, read as its owner: only the
-- check's own columns, at most 5 rows.  NULL when the kind has none.
CREATE FUNCTION adr_ops._quality_sample(c adr_ops.quality_checks, timeout_ms integer) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel text;
    cols text;
    q text;
    pred text := adr_ops._quality_predicate(c);
BEGIN
    SELECT format('%I.%I', n.nspname, k.relname) INTO rel
      FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace WHERE k.oid = c.relation;
    SELECT string_agg(format('%I', x), ', ') INTO cols FROM unnest(adr_ops._quality_columns(c.params)) x;
    IF pred IS NOT NULL THEN
        q := format('SELECT jsonb_agg(to_jsonb(s)) FROM (SELECT %s FROM %s WHERE %s LIMIT 5) s', cols, rel, pred);
    ELSIF c.kind = 'duplicate_count' THEN
        q := format('SELECT jsonb_agg(to_jsonb(s)) FROM (SELECT %s, count(*) AS rows FROM %s GROUP BY %s HAVING count(*) > 1 LIMIT 5) s',
                    cols, rel, cols);
    ELSIF c.kind = 'referential' THEN
        q := format('SELECT jsonb_agg(to_jsonb(s)) FROM (SELECT %s FROM %s r WHERE %s LIMIT 5) s',
                    (SELECT string_agg(format('r.%I', x), ', ') FROM unnest(adr_ops._quality_columns(c.params)) x),
                    rel, adr_ops._quality_orphan_predicate(c));
    ELSE
        RETURN NULL;
    END IF;
    RETURN adr_ops._quality_exec(c.owner, q, timeout_ms)::jsonb;
END
$$;
COMMENT ON FUNCTION adr_ops._quality_sample(adr_ops.quality_checks, integer) IS
    'API: private. At most 5 failing rows of a quality check, its columns only, read as its owner';
REVOKE ALL ON FUNCTION adr_ops._quality_sample(adr_ops.quality_checks, integer) FROM PUBLIC;

-- The orphans of a referential check: rows of r whose key is set and has
-- no match in the referenced relation (a dropped one makes the query
-- fail: the check is UNKNOWN).
CREATE FUNCTION adr_ops._quality_orphan_predicate(c adr_ops.quality_checks) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('%s AND NOT EXISTS (SELECT FROM %s t WHERE %s)',
                  string_agg(format('r.%I IS NOT NULL', k.c), ' AND '),
                  -- the name as the catalog spells it now, never the text
                  coalesce((SELECT format('%I.%I', n.nspname, x.relname)
                              FROM pg_class x JOIN pg_namespace n ON n.oid = x.relnamespace
                             WHERE x.oid = to_regclass(c.params ->> 'references')),
                           format('%I', c.params ->> 'references')),
                  string_agg(format('t.%I = r.%I', k.t, k.c), ' AND '))
      FROM unnest(adr_ops._quality_columns(c.params),
                  ARRAY(SELECT jsonb_array_elements_text(c.params -> 'referenced_columns'))) AS k(c, t)
$$;
COMMENT ON FUNCTION adr_ops._quality_orphan_predicate(adr_ops.quality_checks) IS
    'API: private. The WHERE clause of the orphan rows of a referential check';
REVOKE ALL ON FUNCTION adr_ops._quality_orphan_predicate(adr_ops.quality_checks) FROM PUBLIC;

-- Run checks and store their results: the checks of one relation and owner
-- that scan rows share one query (one scan, optionally a TABLESAMPLE SYSTEM
-- block sample), the others run one query each.  Each group runs in its own
-- subtransaction: an error (a revoked privilege, the timeout) makes its
-- checks UNKNOWN with the reason and the rest go on.
CREATE FUNCTION adr_ops._quality_run(dataset text, names text[], blocking_only boolean,
                                     source text, job_id bigint, timeout interval, keep interval)
RETURNS SETOF adr_ops.quality_results
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g record;
    c adr_ops.quality_checks;
    r adr_ops.quality_results;
    tmo integer := greatest(0, (extract(epoch FROM coalesce(timeout, '0')) * 1000)::integer);
    rel text;
    qry text;
    vals double precision[];
    n double precision;
    t0 timestamptz;
    dur double precision;
    m double precision;
    why text;
    msg text;
    runnable adr_ops.quality_checks[];
    state text;
    i integer;
    prev adr_ops.quality_results;
    writes double precision;
    an record;
    sampled integer[];
    samples jsonb;
    hist_at timestamptz[];
    hist_v double precision[];
BEGIN
    IF keep IS NOT NULL THEN
        DELETE FROM adr_ops.quality_results x WHERE x.ran_at < now() - keep;
    END IF;
    FOR g IN
        SELECT array_agg(k.qc ORDER BY (k.qc).id) AS checks, k.scan
          FROM (SELECT qc,
                       qc.kind IN ('row_count', 'null_fraction', 'distinct_count', 'duplicate_count',
                                   'accepted_values', 'range', 'length', 'regex')
                         OR (qc.kind = 'freshness' AND qc.params ? 'column') AS scan
                  FROM adr_ops.quality_checks qc
                 WHERE qc.enabled
                   AND (_quality_run.dataset IS NULL OR qc.dataset = _quality_run.dataset)
                   AND (_quality_run.names IS NULL OR qc.name = ANY (_quality_run.names))
                   AND (NOT _quality_run.blocking_only OR qc.blocking)) k
         GROUP BY k.scan,
               CASE WHEN k.scan
                    THEN ARRAY[(k.qc).relation::oid::text, (k.qc).owner::oid::text,
                               coalesce((k.qc).params ->> 'sample_percent', '100')]
                    ELSE ARRAY[(k.qc).id::text] END
         ORDER BY min((k.qc).id)
    LOOP
        -- A check that cannot run is UNKNOWN with the reason; the rest of
        -- its group runs.
        runnable := '{}';
        FOREACH c IN ARRAY g.checks LOOP
            why := adr_ops._quality_unrunnable(c);
            IF why IS NULL THEN
                runnable := runnable || c;
            ELSE
                INSERT INTO adr_ops.quality_results (check_id, check_name, status, detail, source, job_id)
                VALUES (c.id, c.name, 'UNKNOWN', why, _quality_run.source, _quality_run.job_id)
                RETURNING * INTO r;
                RETURN NEXT r;
            END IF;
        END LOOP;
        CONTINUE WHEN cardinality(runnable) = 0;

        t0 := clock_timestamp();
        vals := NULL;
        msg := NULL;
        c := runnable[1];
        BEGIN
            SELECT format('%I.%I', ns.nspname, k.relname) INTO rel
              FROM pg_class k JOIN pg_namespace ns ON ns.oid = k.relnamespace WHERE k.oid = c.relation;
            IF g.scan THEN
                SELECT format('SELECT ARRAY[count(*)::float8, %s]::text FROM %s%s',
                              string_agg(adr_ops._quality_aggregate(runnable[k]), ', ' ORDER BY k), rel,
                              CASE WHEN c.params ? 'sample_percent'
                                   THEN format(' TABLESAMPLE SYSTEM (%s)', (c.params ->> 'sample_percent')::float8)
                                   ELSE '' END)
                  INTO qry FROM generate_subscripts(runnable, 1) AS s(k);
            ELSIF c.kind = 'custom' THEN
                qry := c.params ->> 'sql';
            ELSIF c.kind = 'referential' THEN
                qry := format('SELECT ARRAY[NULL, count(*)::float8]::text FROM %s r WHERE %s',
                            rel, adr_ops._quality_orphan_predicate(c));
            ELSIF c.kind = 'schema' THEN
                qry := format('SELECT ARRAY[NULL, (%L::jsonb IS DISTINCT FROM %L::jsonb)::integer::float8]::text',
                            c.params -> 'columns_expected', adr_ops._quality_schema(c.relation));
            ELSIF c.kind = 'freshness' THEN
                -- the table's last write, as the runs saw its write counter change
                qry := format('SELECT ARRAY[NULL, (n_tup_ins + n_tup_upd + n_tup_del)::float8]::text '
                            'FROM pg_stat_all_tables WHERE relid = %s', c.relation::oid);
            END IF;
            IF c.kind = 'custom' THEN
                vals := ARRAY[NULL, adr_ops._quality_exec(c.owner, qry, tmo)::float8];
            ELSE
                vals := adr_ops._quality_exec(c.owner, qry, tmo)::float8[];
            END IF;
        EXCEPTION
            WHEN query_canceled THEN
                GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
                IF msg NOT LIKE '%statement timeout%' THEN
                    RAISE;
                END IF;
                msg := format('the check did not finish within its time budget (%s ms)', tmo);
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
                -- a data exception's message may quote a value: row data
                -- stays out of results and alerts, which pg_monitor reads
                IF state LIKE '22%' THEN
                    msg := format('the check''s query failed on the data (SQLSTATE %s)', state);
                END IF;
        END;
        dur := extract(epoch FROM clock_timestamp() - t0) * 1000;
        n := vals[1];

        -- The failing rows of the failing checks that fail on fewer than 20
        -- rows, when there are two or more: one more scan for all of them.
        -- A query of its own per check, which stops at its fifth failing
        -- row, reads about 5 / (failing + 1) of the table: most of it when
        -- such rows are rare, little when they are common, so the others
        -- keep it.  Not for a block sample, whose count does not bound the
        -- table's.
        sampled := '{}';
        samples := NULL;
        IF msg IS NULL AND g.scan AND NOT c.params ? 'sample_percent' THEN
            SELECT coalesce(array_agg(s.k ORDER BY s.k), '{}') INTO sampled
              FROM generate_subscripts(runnable, 1) AS s(k)
             WHERE (runnable[s.k]).kind IN ('accepted_values', 'range', 'length', 'regex')
               AND vals[s.k + 1] BETWEEN 1 AND 19
               AND adr_ops._quality_judge(runnable[s.k], vals[s.k + 1] / n) <> 'OK';
            IF cardinality(sampled) < 2 THEN
                sampled := '{}';
            END IF;
        END IF;
        IF cardinality(sampled) > 0 THEN
            BEGIN
                SELECT format('SELECT jsonb_build_array(%s)::text FROM %s',
                              string_agg(format('to_jsonb((array_agg(jsonb_build_object(%s)) FILTER (WHERE %s))[1:5])',
                                                (SELECT string_agg(format('%L, %I', x, x), ', ')
                                                   FROM unnest(adr_ops._quality_columns((runnable[s.k]).params)) x),
                                                adr_ops._quality_predicate(runnable[s.k])), ', ' ORDER BY s.k),
                              rel)
                  INTO qry FROM unnest(sampled) AS s(k);
                samples := adr_ops._quality_exec(c.owner, qry, tmo)::jsonb;
            EXCEPTION
                WHEN query_canceled THEN
                    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
                    IF msg NOT LIKE '%statement timeout%' THEN
                        RAISE;
                    END IF;
                    msg := NULL;
                WHEN OTHERS THEN
                    samples := NULL;
            END;
        END IF;

        i := 0;
        FOREACH c IN ARRAY runnable LOOP
            i := i + 1;
            r := NULL;
            r.check_id := c.id;
            r.check_name := c.name;
            r.ran_at := clock_timestamp();
            r.duration_ms := dur;
            r.source := coalesce(_quality_run.source, 'manual');
            r.job_id := _quality_run.job_id;
            IF msg IS NOT NULL THEN
                r.status := 'UNKNOWN';
                r.detail := msg;
            ELSE
                m := vals[i + 1];
                r.rows_scanned := n;
                IF g.scan AND c.params ? 'sample_percent' THEN
                    r.sample_percent := (c.params ->> 'sample_percent')::float8;
                END IF;
                IF c.kind IN ('null_fraction', 'accepted_values', 'range', 'length', 'regex') THEN
                    m := CASE WHEN n > 0 THEN m / n ELSE 0 END;
                    IF r.sample_percent IS NOT NULL THEN
                        -- normal approximation, or the rule of three when none failed
                        r.error_bound := CASE WHEN n = 0 THEN 1
                                              WHEN m = 0 THEN least(1, 3 / n)
                                              ELSE 1.96 * sqrt(m * (1 - m) / n) END;
                    END IF;
                ELSIF c.kind = 'row_count' AND r.sample_percent IS NOT NULL THEN
                    m := m * 100 / r.sample_percent;
                    r.error_bound := 1.96 * sqrt(greatest(n, 1)) * 100 / r.sample_percent;
                ELSIF c.kind = 'freshness' AND NOT c.params ? 'column' THEN
                    writes := m;
                    SELECT * INTO prev FROM adr_ops.quality_results x
                     WHERE x.check_id = c.id AND x.status <> 'UNKNOWN' ORDER BY x.ran_at DESC, x.id DESC LIMIT 1;
                    -- detail is the counter's JSON, then perhaps '; anomaly: ...'
                    IF prev.id IS NULL OR (split_part(prev.detail, ';', 1)::jsonb ->> 'writes')::float8
                                          IS DISTINCT FROM writes THEN
                        m := 0;
                    ELSE
                        m := extract(epoch FROM clock_timestamp() - prev.ran_at) + prev.metric;
                    END IF;
                END IF;
                r.metric := m;
                r.status := adr_ops._quality_judge(c, m);
                r.detail := CASE
                    WHEN c.kind = 'freshness' AND NOT c.params ? 'column'
                        THEN jsonb_build_object('writes', writes)::text
                    WHEN c.kind = 'freshness' AND m IS NULL THEN 'no rows'
                    WHEN c.kind = 'schema' AND m > 0 THEN
                        format('columns changed: expected %s, found %s', c.params -> 'columns_expected',
                               adr_ops._quality_schema(c.relation))
                    WHEN r.sample_percent IS NOT NULL THEN
                        format('estimated from a %s%% block sample (%s rows): ±%s at 95%% confidence',
                               r.sample_percent, n, round(r.error_bound::numeric, 6))
                END;
                IF r.status <> 'OK' AND c.kind NOT IN ('custom', 'schema', 'freshness', 'row_count',
                                                       'distinct_count', 'null_fraction') THEN
                    IF i = ANY (sampled) THEN
                        r.sample := nullif(samples -> (array_position(sampled, i) - 1), 'null');
                    ELSE
                        BEGIN
                            r.sample := adr_ops._quality_sample(c, tmo);
                        EXCEPTION WHEN OTHERS THEN
                            r.sample := NULL;
                        END;
                    END IF;
                END IF;
                -- A metric out of its own history is a WARNING, when asked.
                IF c.params ->> 'anomaly' IN ('up', 'down', 'both') AND r.status = 'OK' THEN
                    BEGIN
                        SELECT array_agg(x.ran_at ORDER BY x.ran_at) || r.ran_at,
                               array_agg(x.metric ORDER BY x.ran_at) || m
                          INTO hist_at, hist_v
                          FROM adr_ops.quality_results x WHERE x.check_id = c.id AND x.metric IS NOT NULL;
                        SELECT * INTO an FROM adr_ops.adr_anomaly_score(hist_at, hist_v, c.params ->> 'anomaly',
                                                                         coalesce(c.params ->> 'seasonality', 'none'));
                        IF an.verdict = 'anomaly' THEN
                            r.status := 'WARNING';
                            r.detail := concat_ws('; ', r.detail,
                                                  format('anomaly: %s, expected about %s (score %s)', m,
                                                         round(an.expected::numeric, 3), round(an.score::numeric, 2)));
                        END IF;
                    EXCEPTION WHEN OTHERS THEN
                        NULL;
                    END;
                END IF;
            END IF;
            INSERT INTO adr_ops.quality_results (check_id, check_name, ran_at, status, metric, duration_ms,
                                                 rows_scanned, sample_percent, error_bound, detail, sample,
                                                 source, job_id)
            VALUES (r.check_id, r.check_name, r.ran_at, r.status, r.metric, r.duration_ms, r.rows_scanned,
                    r.sample_percent, r.error_bound, r.detail, r.sample, r.source, r.job_id)
            RETURNING * INTO r;
            RETURN NEXT r;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION adr_ops._quality_run(text, text[], boolean, text, bigint, interval, interval) IS
    'API: private. Runs quality checks, one scan per relation and owner, and stores their results';
REVOKE ALL ON FUNCTION adr_ops._quality_run(text, text[], boolean, text, bigint, interval, interval) FROM PUBLIC;

-- Run the enabled checks now (all, a dataset's, or the named ones).
CREATE FUNCTION adr_ops.adr_quality_run(dataset text DEFAULT NULL, checks text[] DEFAULT NULL,
                                        timeout interval DEFAULT '60s', keep interval DEFAULT '90 days')
RETURNS TABLE (check_name text, status text, metric double precision, detail text)
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.check_name, r.status, r.metric, r.detail
      FROM adr_ops._quality_run(adr_quality_run.dataset, adr_quality_run.checks, false,
                                'run',
                                NULL, adr_quality_run.timeout, adr_quality_run.keep) r
     ORDER BY r.id
$$;
COMMENT ON FUNCTION adr_ops.adr_quality_run(text, text[], interval, interval) IS
    'runs the enabled data-quality checks (of a dataset, or the named ones) now, stores and returns their results; results older than keep are dropped';
REVOKE ALL ON FUNCTION adr_ops.adr_quality_run(text, text[], interval, interval) FROM PUBLIC;

-- The runbook's /datasets/$ID/validate.  The failing rows' sample is shown
-- only to a caller who may act as the check's owner.
CREATE FUNCTION adr_ops.adr_dataset_validate(dataset text, timeout interval DEFAULT '60s')
RETURNS TABLE (verdict text, checks integer, failing integer, failures jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller name := adr_ops._calling_role_strict();
BEGIN
    IF adr_dataset_validate.dataset IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'dataset must not be null';
    END IF;
    RETURN QUERY
    WITH res AS (
        SELECT r.*, c.relation_name, c.kind, c.owner, c.blocking
          FROM adr_ops._quality_run(adr_dataset_validate.dataset, NULL, false, 'validate', NULL,
                                    adr_dataset_validate.timeout, NULL) r
          JOIN adr_ops.quality_checks c ON c.id = r.check_id
    )
    SELECT CASE WHEN count(*) = 0 THEN 'no checks'
                WHEN count(*) FILTER (WHERE res.status IN ('CRITICAL', 'UNKNOWN')) > 0 THEN 'fail'
                ELSE 'pass' END,
           count(*)::integer,
           count(*) FILTER (WHERE res.status <> 'OK')::integer,
           coalesce(jsonb_agg(jsonb_build_object(
                'check', res.check_name, 'relation', res.relation_name, 'kind', res.kind,
                'status', res.status, 'metric', res.metric, 'detail', res.detail,
                'blocking', res.blocking,
                'sample', CASE WHEN pg_has_role(caller, res.owner, 'USAGE') THEN res.sample END)
                ORDER BY res.check_name) FILTER (WHERE res.status <> 'OK'), '[]')
      FROM res;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_dataset_validate(text, interval) IS
    'runs the checks of a dataset now: verdict pass, fail (a CRITICAL or UNKNOWN check) or no checks, with the failing checks';
REVOKE ALL ON FUNCTION adr_ops.adr_dataset_validate(text, interval) FROM PUBLIC;

-- The validation gate of adr_job_complete(): the blocking checks of the
-- job's pipeline run first; a CRITICAL or UNKNOWN one fails the job instead
-- of completing it, with the checks in the event, so that
-- adr_job_restart() from the last checkpoint is the next step.
CREATE FUNCTION adr_ops._job_quality_gate(job_id bigint) RETURNS adr_ops.processing_jobs
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j adr_ops.processing_jobs;
    res jsonb;
    bad integer;
BEGIN
    SELECT * INTO j FROM adr_ops.processing_jobs p WHERE p.id = _job_quality_gate.job_id FOR UPDATE;
    IF NOT FOUND OR j.status <> 'running'
       OR NOT EXISTS (SELECT FROM adr_ops.quality_checks q
                       WHERE q.dataset = j.pipeline AND q.blocking AND q.enabled) THEN
        RETURN adr_ops._job_move(_job_quality_gate.job_id, 'complete');
    END IF;
    SELECT jsonb_agg(jsonb_build_object('check', r.check_name, 'status', r.status,
                                        'metric', r.metric, 'detail', r.detail) ORDER BY r.check_name),
           count(*) FILTER (WHERE r.status IN ('CRITICAL', 'UNKNOWN'))
      INTO res, bad
      FROM adr_ops._quality_run(j.pipeline, NULL, true, 'gate', j.id, '60s', NULL) r;
    IF bad > 0 THEN
        RETURN adr_ops._job_move(j.id, 'fail',
                                 note => format('quality gate: %s of %s blocking checks failed', bad, jsonb_array_length(res)),
                                 error => format('quality gate failed: %s',
                                                 (SELECT string_agg(x ->> 'check', ', ') FROM jsonb_array_elements(res) x
                                                   WHERE x ->> 'status' IN ('CRITICAL', 'UNKNOWN'))),
                                 detail => jsonb_build_object('quality_gate', 'fail', 'checks', res));
    END IF;
    RETURN adr_ops._job_move(j.id, 'complete', note => 'complete (quality gate passed)',
                             detail => jsonb_build_object('quality_gate', 'pass', 'checks', res));
END
$$;
COMMENT ON FUNCTION adr_ops._job_quality_gate(bigint) IS
    'API: private. Completes a job, or fails it when a blocking quality check of its pipeline fails';
REVOKE ALL ON FUNCTION adr_ops._job_quality_gate(bigint) FROM PUBLIC;

-- The runbook's /quality/trends?days=7.
CREATE FUNCTION adr_ops.adr_quality_trend(days integer DEFAULT 7)
RETURNS TABLE (check_name text, day date, runs bigint, passes bigint, warnings bigint, failures bigint,
               metric_min double precision, metric_avg double precision, metric_max double precision,
               direction text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH daily AS (
        SELECT r.check_name, r.ran_at::date AS day, count(*) AS runs,
               count(*) FILTER (WHERE r.status = 'OK') AS passes,
               count(*) FILTER (WHERE r.status = 'WARNING') AS warnings,
               count(*) FILTER (WHERE r.status IN ('CRITICAL', 'UNKNOWN')) AS failures,
               min(r.metric) AS mn, avg(r.metric) AS av, max(r.metric) AS mx
          FROM adr_ops.quality_results r
         WHERE r.ran_at >= (now() - make_interval(days => greatest(adr_quality_trend.days, 1) - 1))::date
         GROUP BY 1, 2
    )
    SELECT d.check_name, d.day, d.runs, d.passes, d.warnings, d.failures, d.mn, d.av, d.mx,
           CASE WHEN lag(d.av) OVER w IS NULL OR d.av IS NULL THEN NULL
                WHEN d.av > lag(d.av) OVER w THEN 'up'
                WHEN d.av < lag(d.av) OVER w THEN 'down'
                ELSE 'steady' END
      FROM daily d
    WINDOW w AS (PARTITION BY d.check_name ORDER BY d.day)
     ORDER BY d.check_name, d.day
$$;
COMMENT ON FUNCTION adr_ops.adr_quality_trend(integer) IS
    'per quality check and day over the last days: runs, passes, warnings, failures, the metric''s min, avg and max, and its direction against the day before';
REVOKE ALL ON FUNCTION adr_ops.adr_quality_trend(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_quality_trend(integer) TO pg_monitor;

-- The health rows: quality (how many checks fail) and quality:<name> for
-- each enabled check whose latest result is not OK.
CREATE FUNCTION adr_ops._check_quality() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH latest AS (
        SELECT c.name, r.status, r.metric, r.detail
          FROM adr_ops.quality_checks c
          JOIN LATERAL (SELECT x.status, x.metric, x.detail FROM adr_ops.quality_results x
                         WHERE x.check_id = c.id ORDER BY x.ran_at DESC, x.id DESC LIMIT 1) r ON true
         WHERE c.enabled
    )
    SELECT 'quality', count(*) FILTER (WHERE l.status <> 'OK')::numeric, 'checks',
           format('%s of %s checks failing', count(*) FILTER (WHERE l.status <> 'OK'), count(*)),
           NULL, NULL
      FROM latest l
    HAVING count(*) > 0
    UNION ALL
    SELECT 'quality:' || l.name,
           l.metric::numeric, NULL,
           l.detail,
           CASE WHEN l.status = 'UNKNOWN' THEN coalesce(l.detail, 'the check could not run') END,
           CASE WHEN l.status IN ('WARNING', 'CRITICAL') THEN l.status END
      FROM latest l
     WHERE l.status <> 'OK'
$$;
COMMENT ON FUNCTION adr_ops._check_quality() IS
    'API: private. The quality and quality:<name> readings of adr_health_check()';
REVOKE ALL ON FUNCTION adr_ops._check_quality() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_quality() TO pg_monitor;
INSERT INTO adr_ops.health_checks (name, position) VALUES ('quality', 185);

-- Every status change of a check is an alert (check quality:<name>), as
-- the result is stored; the health history skips quality:% rows so that a
-- change is announced once.
CREATE FUNCTION adr_ops._alert_quality_transitions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO adr_ops.alerts (source, check_name, from_status, to_status, detail)
    SELECT 'health', 'quality:' || r.check_name, p.status, r.status, left(r.detail, 2000)
      FROM new_rows r
      LEFT JOIN LATERAL (
            SELECT h.status FROM adr_ops.quality_results h
             WHERE h.check_id = r.check_id AND h.id < r.id
             ORDER BY h.id DESC LIMIT 1) p ON true
     WHERE p.status IS DISTINCT FROM r.status
       AND (p.status IS NOT NULL OR r.status <> 'OK')
       AND r.ran_at > now() - interval '10 minutes'
     ORDER BY r.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION adr_ops._alert_quality_transitions() IS
    'API: private. Raises an alert for each quality check whose status changed';
REVOKE ALL ON FUNCTION adr_ops._alert_quality_transitions() FROM PUBLIC;
CREATE TRIGGER quality_results_alerts
    AFTER INSERT ON adr_ops.quality_results
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._alert_quality_transitions();

-- Every 15 minutes through the scheduler.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('quality_check', '*/15 * * * *', 'quality_check', pg_catalog.current_database());

-- Pipeline jobs, faster claim and completion (src/jobs.sql): _job_move
-- moves a job in one UPDATE joined to job_transitions, and the one-call
-- wrappers are PL/pgSQL, whose statement is planned once a session; a claim
-- is one statement of adr_job_claim (so _job_move loses its worker), as is
-- a completion without a quality gate (adr_job_complete, above).

DROP FUNCTION adr_ops._job_move(bigint, text, text, boolean, text, text, timestamptz, jsonb);
CREATE FUNCTION adr_ops._job_move(job_id bigint, action text, note text DEFAULT NULL,
                                  force boolean DEFAULT false, error text DEFAULT NULL,
                                  run_after timestamptz DEFAULT NULL, detail jsonb DEFAULT NULL)
RETURNS adr_ops.processing_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j adr_ops.processing_jobs;
    t adr_ops.job_transitions;
    moved record;
BEGIN
    IF _job_move.job_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'job id must not be null';
    END IF;
    FOR pass IN 1..2 LOOP
        UPDATE adr_ops.processing_jobs p
           SET status = x.to_status,
               heartbeat_at = CASE WHEN x.to_status = 'running' THEN clock_timestamp() ELSE p.heartbeat_at END,
               worker = CASE WHEN x.to_status = 'queued' THEN NULL ELSE p.worker END,
               completed_at = CASE WHEN x.to_status IN ('succeeded', 'failed', 'cancelled')
                                   THEN greatest(now(), p.created_at)
                                   WHEN x.to_status = 'queued' THEN NULL ELSE p.completed_at END,
               run_after = CASE WHEN x.to_status = 'queued' THEN coalesce(_job_move.run_after, now())
                                ELSE p.run_after END,
               last_error = coalesce(_job_move.error, p.last_error)
          FROM adr_ops.job_transitions x
         WHERE p.id = _job_move.job_id AND x.action = _job_move.action AND x.from_status = p.status
           AND (x.needs_force AND NOT _job_move.force) IS NOT TRUE
        RETURNING p AS job, x.from_status, x.to_status INTO moved;
        IF FOUND THEN
            j := moved.job;
            t.from_status := moved.from_status;
            t.to_status := moved.to_status;
            EXIT;
        END IF;

        SELECT * INTO j FROM adr_ops.processing_jobs p WHERE p.id = _job_move.job_id FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'no_data_found',
                MESSAGE = format('job %s does not exist', _job_move.job_id);
        END IF;
        SELECT * INTO t FROM adr_ops.job_transitions x
         WHERE x.action = _job_move.action AND x.from_status = j.status;
        -- The second pass holds the row lock: its UPDATE cannot miss.
        IF NOT FOUND OR (t.needs_force AND NOT _job_move.force) OR pass = 2 THEN
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
    END LOOP;

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
COMMENT ON FUNCTION adr_ops._job_move(bigint, text, text, boolean, text, timestamptz, jsonb) IS
    'API: private. Moves a job by an action as job_transitions allows (a claim and a gate-less completion have their own UPDATE)';
REVOKE ALL ON FUNCTION adr_ops._job_move(bigint, text, text, boolean, text, timestamptz, jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION adr_ops.adr_job_claim(pipeline text, worker text)
RETURNS adr_ops.job_claim
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c adr_ops.job_claim;
    claimed_before boolean;
BEGIN
    UPDATE adr_ops.processing_jobs p
       SET status = 'running', attempts = p.attempts + 1, started_at = now(),
           heartbeat_at = clock_timestamp(), worker = adr_job_claim.worker
      FROM (SELECT q.id, q.started_at IS NOT NULL AS claimed_before
              FROM adr_ops.processing_jobs q
             WHERE q.pipeline = adr_job_claim.pipeline AND q.status = 'queued'
               AND q.run_after <= now()
             ORDER BY q.run_after, q.id
             LIMIT 1
               FOR UPDATE SKIP LOCKED) pick
     WHERE p.id = pick.id AND p.status = 'queued'
    RETURNING p.id, p.pipeline, p.payload, p.attempts, p.max_attempts, pick.claimed_before
         INTO c.id, c.pipeline, c.payload, c.attempts, c.max_attempts, claimed_before;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO adr_ops.job_events (job_id, from_status, to_status, actor, note)
    VALUES (c.id, 'queued', 'running', adr_ops._calling_role(), 'claim');
    IF claimed_before THEN
        SELECT x.stage, x.state INTO c.resume_stage, c.resume_state
          FROM adr_ops.job_checkpoints x WHERE x.job_id = c.id ORDER BY x.seq DESC LIMIT 1;
    END IF;
    RETURN c;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_claim(text, text) IS
    'claims the next runnable job of a pipeline, with where to resume; NULL when there is none';

-- job_events loses its foreign key (a check at each of a job's two events);
-- a trigger deletes the events of deleted or truncated jobs instead.
ALTER TABLE adr_ops.job_events DROP CONSTRAINT job_events_job_id_fkey;
CREATE FUNCTION adr_ops._job_events_cascade() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE adr_ops.job_events;
    ELSE
        DELETE FROM adr_ops.job_events e USING deleted_jobs d WHERE e.job_id = d.id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION adr_ops._job_events_cascade() IS
    'API: private. Deletes the events of deleted or truncated jobs';
REVOKE ALL ON FUNCTION adr_ops._job_events_cascade() FROM PUBLIC;
CREATE TRIGGER job_events_cascade AFTER DELETE ON adr_ops.processing_jobs
    REFERENCING OLD TABLE AS deleted_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._job_events_cascade();
CREATE TRIGGER job_events_truncate AFTER TRUNCATE ON adr_ops.processing_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._job_events_cascade();

-- processing_jobs loses its created_at index (an entry at every update of
-- a job); recent_jobs and adr_weekly_review find the jobs created since a
-- time through the status and completed_at indexes, and completed_at is
-- never before created_at.
DROP INDEX adr_ops.processing_jobs_created;

-- The check of processing_jobs.status calls a C function instead of
-- comparing with an array constant (a third of the cost, at every UPDATE).
CREATE FUNCTION adr_ops._job_status_valid(status text) RETURNS boolean
AS 'MODULE_PATHNAME', 'adr_job_status_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops._job_status_valid(text) IS
    'API: private. Whether a job may have this status (the check of processing_jobs.status)';
REVOKE ALL ON FUNCTION adr_ops._job_status_valid(text) FROM PUBLIC;
ALTER TABLE adr_ops.processing_jobs DROP CONSTRAINT processing_jobs_status_check;
ALTER TABLE adr_ops.processing_jobs ADD CONSTRAINT processing_jobs_status_check
    CHECK (adr_ops._job_status_valid(status));
CREATE OR REPLACE VIEW adr_ops.recent_jobs AS
    SELECT j.id, j.pipeline, j.status, j.attempts, j.max_attempts, j.worker,
           j.created_at, j.started_at, j.completed_at,
           j.completed_at OPERATOR(pg_catalog.-) j.started_at AS duration,
           (SELECT c.stage FROM adr_ops.job_checkpoints c
             WHERE c.job_id OPERATOR(pg_catalog.=) j.id ORDER BY c.seq DESC LIMIT 1) AS last_stage,
           j.last_error
      FROM adr_ops.processing_jobs j
     WHERE j.created_at OPERATOR(pg_catalog.>)
           (pg_catalog.now() OPERATOR(pg_catalog.-) '24 hours'::pg_catalog.interval)
       -- found through the status and completed_at indexes
       AND (j.status OPERATOR(pg_catalog.=) 'queued' OR j.status OPERATOR(pg_catalog.=) 'running'
            OR j.completed_at OPERATOR(pg_catalog.>)
               (pg_catalog.now() OPERATOR(pg_catalog.-) '24 hours'::pg_catalog.interval))
     ORDER BY j.created_at DESC, j.id DESC;

CREATE OR REPLACE FUNCTION adr_ops.adr_weekly_review(week_ending timestamptz DEFAULT now(),
    OUT section text, OUT item text, OUT value numeric, OUT unit text, OUT detail text)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH w AS (
        SELECT week_ending - interval '7 days' AS w0, week_ending AS w1, week_ending - interval '14 days' AS p0
    ), forecast AS (
        SELECT * FROM adr_ops.adr_capacity_forecast(7)
    ), health AS (
        SELECT h.check_name, h.status, h.taken_at,
               lead(h.taken_at) OVER (PARTITION BY h.check_name ORDER BY h.taken_at) AS next_at
          FROM adr_ops.health_history h, w WHERE h.taken_at >= w.w0 AND h.taken_at < w.w1
    ), counters AS (
        -- each statement's cumulative counters at the three bounds
        SELECT c.queryid, c.userid, c.dbid, c.toplevel, b.bound,
               (array_agg(c.calls ORDER BY s.taken_at DESC))[1] AS calls,
               (array_agg(c.total_ms ORDER BY s.taken_at DESC))[1] AS total_ms
          FROM adr_ops.statement_counters c
          JOIN adr_ops.statement_snapshots s ON s.id = c.snapshot_id
          JOIN w ON true
          CROSS JOIN LATERAL (VALUES (0, w.p0), (1, w.w0), (2, w.w1)) AS b(bound, at)
         WHERE s.taken_at <= b.at
         GROUP BY c.queryid, c.userid, c.dbid, c.toplevel, b.bound
    ), means AS (
        -- a statement's mean time this week and the week before (a reset
        -- of pg_stat_statements in between gives no figure)
        SELECT k2.queryid, k2.dbid, k2.userid,
               (k2.total_ms - k1.total_ms) / nullif(k2.calls - k1.calls, 0) AS mean_now,
               (k1.total_ms - k0.total_ms) / nullif(k1.calls - k0.calls, 0) AS mean_before,
               k2.calls - k1.calls AS calls
          FROM counters k2
          JOIN counters k1 USING (queryid, userid, dbid, toplevel)
          JOIN counters k0 USING (queryid, userid, dbid, toplevel)
         WHERE k2.bound = 2 AND k1.bound = 1 AND k0.bound = 0
           AND k2.calls >= k1.calls AND k1.calls >= k0.calls
    )
    SELECT 'growth', f.kind || ' ' || f.name, f.growth_per_day,
           CASE f.kind WHEN 'xid' THEN 'transactions/day' ELSE 'bytes/day' END,
           coalesce(format('%s days to the critical level, %s to full', f.days_to_crit, f.days_to_full), f.note)
      FROM forecast f WHERE f.kind IN ('filesystem', 'database', 'wal')
    UNION ALL
    SELECT 'xid', CASE f.kind WHEN 'xid' THEN 'transaction ID age' ELSE 'multixact ID age' END,
           f.current, CASE f.kind WHEN 'xid' THEN 'transactions' ELSE 'multixacts' END,
           coalesce(format('%s per day; %s days to the xid_wraparound warning level, %s to the hard stop',
                           f.growth_per_day, f.days_to_warn, f.days_to_full), f.note)
      FROM forecast f WHERE f.kind IN ('xid', 'multixact')
    UNION ALL
    SELECT 'checks', h.check_name, count(*), 'snapshots not OK',
           format('%s; about %s not OK, first %s, last %s',
                  string_agg(DISTINCT h.status, '/'),
                  justify_interval(sum(coalesce(h.next_at, w.w1) - h.taken_at)),
                  date_trunc('minute', min(h.taken_at)), date_trunc('minute', max(h.taken_at)))
      FROM health h, w WHERE h.status <> 'OK'
     GROUP BY h.check_name
    UNION ALL
    SELECT 'maintenance', r.task, count(*), 'runs',
           format('%s succeeded, %s failed, %s skipped', count(*) FILTER (WHERE r.status = 'succeeded'),
                  count(*) FILTER (WHERE r.status = 'failed'), count(*) FILTER (WHERE r.status = 'skipped'))
      FROM adr_ops.task_runs r, w WHERE r.started_at >= w.w0 AND r.started_at < w.w1
     GROUP BY r.task
    UNION ALL
    SELECT 'backups', 'verifications', count(v.id), 'verifications',
           format('%s passed, %s failed; last passed: %s',
                  count(*) FILTER (WHERE v.status = 'passed'), count(*) FILTER (WHERE v.status = 'failed'),
                  coalesce((SELECT l.path || ' at ' || date_trunc('minute', l.finished_at)
                              FROM adr_ops.backup_verifications l WHERE l.status = 'passed'
                             ORDER BY l.finished_at DESC LIMIT 1), 'never'))
      FROM w LEFT JOIN adr_ops.backup_verifications v ON v.started_at >= w.w0 AND v.started_at < w.w1
    UNION ALL
    (SELECT 'queries', m.queryid::text, round((100 * (m.mean_now / m.mean_before - 1))::numeric, 1), '% slower',
            format('mean %s ms over %s calls, was %s ms: %s', round(m.mean_now::numeric, 2), m.calls,
                   round(m.mean_before::numeric, 2), left(regexp_replace(t.query, '\s+', ' ', 'g'), 100))
       FROM means m
       LEFT JOIN adr_ops.statement_texts t USING (queryid, userid, dbid)
      WHERE m.mean_before > 0 AND m.mean_now > 1.2 * m.mean_before
      ORDER BY m.mean_now / m.mean_before DESC LIMIT 10)
    UNION ALL
    SELECT 'pipelines', j.pipeline, round(100.0 * count(*) FILTER (WHERE j.status = 'failed') / count(*), 1),
           '% failed',
           format('%s submitted in the week: %s succeeded, %s failed, %s cancelled, %s queued or running',
                  count(*), count(*) FILTER (WHERE j.status = 'succeeded'), count(*) FILTER (WHERE j.status = 'failed'),
                  count(*) FILTER (WHERE j.status = 'cancelled'), count(*) FILTER (WHERE j.status IN ('queued', 'running')))
      FROM adr_ops.processing_jobs j, w
     WHERE j.created_at >= w.w0 AND j.created_at < w.w1
       -- through the status and completed_at indexes (see jobs.sql)
       AND (j.status = 'queued' OR j.status = 'running' OR j.completed_at >= w.w0)
     GROUP BY j.pipeline
$$;

CREATE OR REPLACE FUNCTION adr_ops.adr_job_heartbeat(id bigint) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (adr_ops._job_move(adr_job_heartbeat.id, 'heartbeat')).heartbeat_at;
END
$$;

CREATE OR REPLACE FUNCTION adr_ops.adr_job_fail(id bigint, error text) RETURNS adr_ops.processing_jobs
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN adr_ops._job_move(adr_job_fail.id, 'fail', note => 'fail: ' || adr_job_fail.error,
                             error => adr_job_fail.error);
END
$$;

CREATE OR REPLACE FUNCTION adr_ops.adr_job_cancel(id bigint) RETURNS adr_ops.processing_jobs
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN adr_ops._job_move(adr_job_cancel.id, 'cancel');
END
$$;

-- The metric registry: adr_metrics(), its sources and the view metrics
-- (src/metrics.sql, whole file: new in 1.1).

-- metrics: every adr_ops reading as a metric, for Prometheus and any SQL
-- dashboard (runbook: Daily Health Checks, Weekly System Review) ---------

-- One metric sample: a Prometheus metric name (adr_ops_..., base units,
-- _total for counters), its labels, its value, gauge or counter, and the
-- help text of its family.
CREATE TYPE adr_ops._metric AS (
    name text,
    labels jsonb,
    value float8,
    type text,
    help text
);
COMMENT ON TYPE adr_ops._metric IS 'API: private. One sample of adr_metrics()';

-- The sources adr_metrics() reads, in order.  A row names the function
-- adr_ops._metrics_<name>() that returns the source's samples; each concern
-- registers its own beside its tables, so adding metrics touches no other
-- file.  Members of the extension, not configuration.
--
-- A scrape reads what the scheduled tasks stored (the latest health
-- snapshot, the latest capacity snapshot, the probes' history) and counts
-- rows through indexes: it never runs a check, a probe or a size walk
-- itself, so it stays cheap however often it is scraped.
CREATE TABLE adr_ops.metric_sources (
    name text PRIMARY KEY,
    position integer NOT NULL UNIQUE
);
COMMENT ON TABLE adr_ops.metric_sources IS
    'the sources adr_metrics() reads, in order: each names a function adr_ops._metrics_<name>()';
GRANT SELECT ON adr_ops.metric_sources TO pg_monitor;

-- The sources are PL/pgSQL, not SQL functions: the exporter keeps its
-- session, and PL/pgSQL keeps each query's plan in it from one scrape to the
-- next, where a SQL function with SET search_path is planned at each call
-- (half the time of a scrape).

-- A status as a number: what alert rules compare.
CREATE FUNCTION adr_ops._metric_status(status text) RETURNS float8
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE status WHEN 'OK' THEN 0 WHEN 'WARNING' THEN 1 WHEN 'CRITICAL' THEN 2 ELSE 3 END::float8
$$;
COMMENT ON FUNCTION adr_ops._metric_status(text) IS
    'API: private. A health status as a number: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN';

-- The health checks, from the latest snapshot in health_history (taken by
-- the health_snapshot task every 5 minutes): a scrape never runs the
-- checks, some of which read the server log or walk every relation.
CREATE FUNCTION adr_ops._metrics_health() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH latest AS (
        SELECT max(h.taken_at) AS at FROM adr_ops.health_history h
    ), rows AS (
        SELECT h.* FROM latest l JOIN adr_ops.health_history h ON h.taken_at = l.at
    )
    SELECT 'adr_ops_health_status', jsonb_build_object('check', r.check_name),
           adr_ops._metric_status(r.status), 'gauge',
           'Status of each health check in the latest snapshot: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.'
      FROM rows r
    UNION ALL
    SELECT 'adr_ops_health_value', jsonb_build_object('check', r.check_name),
           CASE r.unit WHEN '%' THEN r.value / 100 WHEN 'ms' THEN r.value / 1000
                ELSE r.value END::float8, 'gauge',
           'Reading of each health check in the latest snapshot, in base units (a percentage as a ratio 0..1, milliseconds as seconds; other units as adr_health_check() gives them).'
      FROM rows r WHERE r.value IS NOT NULL
    UNION ALL
    SELECT 'adr_ops_health_snapshot_age_seconds', '{}',
           coalesce(extract(epoch FROM now() - l.at)::float8, 'Infinity'), 'gauge',
           'Seconds since the latest health snapshot (+Inf when none was taken).'
      FROM latest l;
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_health() IS
    'API: private. The health checks'' metrics, from the latest snapshot';

-- The HTTP probes, from their latest result: the http_probe task runs them.
CREATE FUNCTION adr_ops._metrics_probes() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH last AS (
        SELECT p.name, h.ok, h.latency_ms, h.status_code, h.probed_at
          FROM adr_ops.probes p
          JOIN LATERAL (SELECT ph.ok, ph.latency_ms, ph.status_code, ph.probed_at
                          FROM adr_ops.probe_history ph
                         WHERE ph.probe = p.name ORDER BY ph.id DESC LIMIT 1) h ON true
         WHERE p.enabled
    )
    SELECT m.* FROM last l CROSS JOIN LATERAL (VALUES
        ('adr_ops_probe_up', jsonb_build_object('probe', l.name), l.ok::int::float8, 'gauge',
         'Whether the latest run of each enabled HTTP probe succeeded (1) or failed (0).'),
        ('adr_ops_probe_latency_seconds', jsonb_build_object('probe', l.name), l.latency_ms / 1000, 'gauge',
         'Latency of the latest run of each enabled HTTP probe, in seconds.'),
        ('adr_ops_probe_status_code', jsonb_build_object('probe', l.name), coalesce(l.status_code, 0)::float8, 'gauge',
         'HTTP status of the latest run of each enabled HTTP probe (0: no response).'),
        ('adr_ops_probe_age_seconds', jsonb_build_object('probe', l.name),
         extract(epoch FROM now() - l.probed_at)::float8, 'gauge',
         'Seconds since the latest run of each enabled HTTP probe.')
    ) AS m(name, labels, value, type, help);
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_probes() IS
    'API: private. The HTTP probes'' metrics, from their latest results';

-- The pipelines: queue depth and stuck jobs now, outcomes and durations of
-- the last hour.  Every count goes through a partial or range index.
CREATE FUNCTION adr_ops._metrics_pipelines() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH live AS (
        -- each status through its own partial index
        SELECT q.pipeline, count(*) AS queued, 0 AS running, 0 AS stuck,
               coalesce(extract(epoch FROM now() - min(q.run_after) FILTER (WHERE q.run_after <= now())), 0) AS waiting
          FROM adr_ops.processing_jobs q WHERE q.status = 'queued' GROUP BY q.pipeline
        UNION ALL
        SELECT r.pipeline, 0, count(*),
               count(*) FILTER (WHERE r.heartbeat_at < now() - adr_ops._job_stale_after()), 0
          FROM adr_ops.processing_jobs r WHERE r.status = 'running' GROUP BY r.pipeline
    ), live_by AS (
        SELECT l.pipeline, sum(l.queued) AS queued, sum(l.running) AS running,
               sum(l.stuck) AS stuck, max(l.waiting) AS waiting
          FROM live l GROUP BY l.pipeline
    ), done AS (
        SELECT j.pipeline,
               count(*) FILTER (WHERE j.status = 'succeeded') AS succeeded,
               count(*) FILTER (WHERE j.status = 'failed') AS failed,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM j.completed_at - j.started_at))
                   FILTER (WHERE j.status = 'succeeded') AS p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM j.completed_at - j.started_at))
                   FILTER (WHERE j.status = 'succeeded') AS p95
          FROM adr_ops.processing_jobs j
         WHERE j.completed_at >= now() - interval '1 hour'
         GROUP BY j.pipeline
    ), p AS (
        SELECT coalesce(l.pipeline, d.pipeline) AS pipeline,
               coalesce(l.queued, 0) AS queued, coalesce(l.running, 0) AS running,
               coalesce(l.stuck, 0) AS stuck, coalesce(l.waiting, 0) AS waiting,
               coalesce(d.succeeded, 0) AS succeeded, coalesce(d.failed, 0) AS failed,
               d.p50, d.p95
          FROM live_by l FULL JOIN done d ON d.pipeline = l.pipeline
    )
    SELECT m.* FROM p CROSS JOIN LATERAL (VALUES
        ('adr_ops_pipeline_queued_jobs', p.queued::float8,
         'Jobs of each pipeline waiting in the queue (queued, due or not).'),
        ('adr_ops_pipeline_running_jobs', p.running::float8,
         'Jobs of each pipeline running now.'),
        ('adr_ops_pipeline_stuck_jobs', p.stuck::float8,
         'Running jobs of each pipeline whose heartbeat is older than adr_ops.job_stale_after.'),
        ('adr_ops_pipeline_oldest_queued_age_seconds', p.waiting::float8,
         'Seconds the longest-waiting due job of each pipeline has waited (0: none waits).'),
        ('adr_ops_pipeline_succeeded_last_hour_jobs', p.succeeded::float8,
         'Jobs of each pipeline that succeeded in the last hour.'),
        ('adr_ops_pipeline_failed_last_hour_jobs', p.failed::float8,
         'Jobs of each pipeline that failed in the last hour.'),
        ('adr_ops_pipeline_failure_ratio', p.failed::float8 / nullif(p.succeeded + p.failed, 0),
         'Failed over finished (succeeded + failed) jobs of each pipeline in the last hour, 0..1.'),
        ('adr_ops_pipeline_duration_p50_seconds', p.p50,
         'Median run time of the jobs of each pipeline that succeeded in the last hour, in seconds.'),
        ('adr_ops_pipeline_duration_p95_seconds', p.p95,
         '95th percentile run time of the jobs of each pipeline that succeeded in the last hour, in seconds.')
    ) AS v(name, value, help)
    CROSS JOIN LATERAL (SELECT v.name, jsonb_build_object('pipeline', p.pipeline), v.value, 'gauge', v.help) m
     WHERE v.value IS NOT NULL;
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_pipelines() IS
    'API: private. The pipelines'' metrics: queue depth, stuck jobs, the last hour''s outcomes and durations';

-- Backups: judged as the backup_verification check judges them, and only
-- once there is something to judge (a verification, or adr_ops.backup_path).
CREATE FUNCTION adr_ops._metrics_backup() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH s AS (
        SELECT coalesce(nullif(current_setting('adr_ops.backup_max_age', true), ''), '1d')::interval AS max_age,
               coalesce(current_setting('adr_ops.backup_path', true), '') AS path,
               (SELECT max(v.finished_at) FROM adr_ops.backup_verifications v
                 WHERE v.status = 'passed') AS last_passed,
               (SELECT v FROM adr_ops.backup_verifications v
                 WHERE v.status <> 'running' ORDER BY v.id DESC LIMIT 1) AS latest
    )
    SELECT m.* FROM s CROSS JOIN LATERAL (VALUES
        ('adr_ops_backup_last_passed_age_seconds',
         coalesce(extract(epoch FROM now() - s.last_passed)::float8, 'Infinity'),
         'Seconds since the latest backup verification that passed finished (+Inf: none passed).'),
        ('adr_ops_backup_max_age_seconds', extract(epoch FROM s.max_age)::float8,
         'adr_ops.backup_max_age in seconds: how old the last passed verification may be.'),
        ('adr_ops_backup_last_verification_ok', ((s.latest).status = 'passed')::int::float8,
         'Whether the latest finished backup verification passed (1) or failed (0).'),
        ('adr_ops_backup_last_verification_duration_seconds', (s.latest).duration_ms / 1000.0::float8,
         'Run time of the latest finished backup verification, in seconds.'),
        ('adr_ops_backup_last_verification_size_bytes', (s.latest).backup_bytes::float8,
         'Size of the backup that the latest finished verification read, in bytes.')
    ) AS v(name, value, help)
    CROSS JOIN LATERAL (SELECT v.name, '{}'::jsonb, v.value, 'gauge', v.help) m
     WHERE v.value IS NOT NULL AND ((s.latest).id IS NOT NULL OR s.path <> '');
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_backup() IS
    'API: private. The backups'' metrics: age of the last passed verification, the latest result';

-- The blocklist the authentication hook enforces, and maintenance mode.
CREATE FUNCTION adr_ops._metrics_security() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT 'adr_ops_blocklist_entries', jsonb_build_object('kind', k.kind),
           (SELECT count(*) FROM adr_ops.blocked_clients b
             WHERE (b.blocked_by = 'adr_ops auto-ban') = (k.kind = 'auto'))::float8, 'gauge',
           'Ranges blocked now by the authentication hook, manual ones and auto-bans after failed logins.'
      FROM (VALUES ('manual'), ('auto')) k(kind)
    UNION ALL
    SELECT 'adr_ops_maintenance_mode', '{}',
           coalesce((SELECT m.enabled::int FROM adr_ops.maintenance_state m), 0)::float8, 'gauge',
           'Whether maintenance mode is on (1) or off (0).';
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_security() IS
    'API: private. The blocklist''s and maintenance mode''s metrics';

-- The scheduler: runs of the last day by status, and each schedule's last
-- run.  (Counted by finished_at, which is indexed, not started_at.)
CREATE FUNCTION adr_ops._metrics_maintenance() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT 'adr_ops_task_runs_last_day', jsonb_build_object('task', r.task, 'status', r.status),
           count(*)::float8, 'gauge',
           'Maintenance task runs finished in the last 24 hours by task and status (succeeded, failed, skipped), and those running now.'
      FROM (SELECT f.task, f.status FROM adr_ops.task_runs f
             WHERE f.finished_at >= now() - interval '1 day'
            UNION ALL
            SELECT n.task, n.status FROM adr_ops.task_runs n
             WHERE n.status = 'running' AND n.finished_at IS NULL) r
     GROUP BY r.task, r.status
    UNION ALL
    SELECT m.* FROM adr_ops.schedules s
      JOIN LATERAL (SELECT t.started_at, t.status FROM adr_ops.task_runs t
                     WHERE t.schedule_id = s.id ORDER BY t.scheduled_at DESC LIMIT 1) t ON true
     CROSS JOIN LATERAL (VALUES
        ('adr_ops_schedule_last_run_age_seconds', extract(epoch FROM now() - t.started_at)::float8,
         'Seconds since the last run of each enabled schedule started.'),
        ('adr_ops_schedule_last_run_failed', (t.status = 'failed')::int::float8,
         'Whether the last run of each enabled schedule failed (1) or not (0).')
     ) AS v(name, value, help)
     CROSS JOIN LATERAL (SELECT v.name, jsonb_build_object('schedule', s.name, 'task', s.task),
                                v.value, 'gauge', v.help) m
     WHERE s.enabled;
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_maintenance() IS
    'API: private. The maintenance scheduler''s metrics: runs by status, each schedule''s last run';

-- Incidents: those not closed, by severity and status; all ever opened.
CREATE FUNCTION adr_ops._metrics_incidents() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT v.* FROM (
        SELECT s.severity, s.status, count(*) AS open, count(*) FILTER (WHERE s.overdue) AS overdue
          FROM adr_ops.incident_status s WHERE s.status <> 'closed'
         GROUP BY s.severity, s.status) c
    CROSS JOIN LATERAL (VALUES
        ('adr_ops_incidents_open', jsonb_build_object('severity', c.severity, 'status', c.status),
         c.open::float8, 'gauge', 'Incidents not closed, by severity and status.'),
        ('adr_ops_incidents_overdue', jsonb_build_object('severity', c.severity, 'status', c.status),
         c.overdue::float8, 'gauge', 'Incidents past their acknowledgement or resolution target, by severity and status.')
    ) AS v(name, labels, value, type, help)
    UNION ALL
    SELECT 'adr_ops_incidents_opened_total', jsonb_build_object('severity', sev.severity),
           (SELECT count(*) FROM adr_ops.incidents i WHERE i.severity = sev.severity)::float8, 'counter',
           'Incidents opened, by severity.'
      FROM (VALUES ('P1'), ('P2'), ('P3')) sev(severity);
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_incidents() IS
    'API: private. The incidents'' metrics';

-- Sizes and counters from the latest capacity snapshot (the
-- capacity_snapshot task): a scrape never walks the relations itself.
CREATE FUNCTION adr_ops._metrics_capacity() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH latest AS (
        SELECT max(h.taken_at) AS at FROM adr_ops.size_history h
    ), rows AS (
        SELECT h.* FROM latest l JOIN adr_ops.size_history h ON h.taken_at = l.at
    )
    SELECT 'adr_ops_size_bytes', jsonb_build_object('kind', r.kind, 'name', r.name), r.value::float8, 'gauge',
           'Sizes in the latest capacity snapshot, in bytes: filesystem (used), database, wal (pg_wal), relation (the largest 20 with their indexes and TOAST).'
      FROM rows r WHERE r.kind IN ('filesystem', 'database', 'wal', 'relation')
    UNION ALL
    SELECT 'adr_ops_filesystem_size_bytes', jsonb_build_object('name', r.name), r.capacity::float8, 'gauge',
           'Size of each file system in the latest capacity snapshot, in bytes.'
      FROM rows r WHERE r.kind = 'filesystem' AND r.capacity IS NOT NULL
    UNION ALL
    SELECT 'adr_ops_wal_written_bytes_total', '{}', r.value::float8, 'counter',
           'Bytes of WAL ever written, at the latest capacity snapshot.'
      FROM rows r WHERE r.kind = 'wal_lsn'
    UNION ALL
    SELECT 'adr_ops_xid_assigned_total', '{}', r.value::float8, 'counter',
           'Transaction IDs ever assigned, at the latest capacity snapshot.'
      FROM rows r WHERE r.kind = 'xid'
    UNION ALL
    SELECT 'adr_ops_size_snapshot_age_seconds', '{}',
           coalesce(extract(epoch FROM now() - l.at)::float8, 'Infinity'), 'gauge',
           'Seconds since the latest capacity snapshot (+Inf when none was taken).'
      FROM latest l;
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_capacity() IS
    'API: private. Sizes and counters from the latest capacity snapshot';

INSERT INTO adr_ops.metric_sources (name, position) VALUES
    ('health', 10), ('probes', 20), ('pipelines', 30), ('backup', 40),
    ('security', 50), ('maintenance', 60), ('incidents', 70), ('capacity', 80);

-- The registry.  Read whole, each source runs in its own exception block:
-- one that fails is reported by adr_ops_metrics_source_up 0 and a WARNING,
-- and never takes the others down.  Read one source at a time (as the
-- exporter does), a failing source raises its error, so that the query
-- fails where the monitoring system sees it.
CREATE FUNCTION adr_ops.adr_metrics(source text DEFAULT NULL,
    OUT name text, OUT labels jsonb, OUT value float8, OUT type text, OUT help text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text;
    msg text;
    part adr_ops._metric[];
    up float8;
BEGIN
    IF source IS NOT NULL THEN
        IF NOT EXISTS (SELECT FROM adr_ops.metric_sources ms WHERE ms.name = source) THEN
            RAISE EXCEPTION 'unrecognized metric source "%"', source
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'The sources are the names in adr_ops.metric_sources.';
        END IF;
        EXECUTE format('SELECT array_agg(m) FROM adr_ops.%I() m', '_metrics_' || source) INTO part;
        RETURN QUERY SELECT m.name, m.labels, m.value, m.type, m.help FROM unnest(part) m;
        RETURN QUERY SELECT 'adr_ops_metrics_source_up', jsonb_build_object('source', source), 1::float8,
                            'gauge', 'Whether each metric source of adr_metrics() could be read (1) or failed (0).';
        RETURN;
    END IF;
    FOR s IN SELECT ms.name FROM adr_ops.metric_sources ms ORDER BY ms.position LOOP
        BEGIN
            EXECUTE format('SELECT array_agg(m) FROM adr_ops.%I() m', '_metrics_' || s) INTO part;
            up := 1;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
            RAISE WARNING 'could not read metric source "%"', s USING DETAIL = msg;
            part := NULL;
            up := 0;
        END;
        RETURN QUERY SELECT m.name, m.labels, m.value, m.type, m.help FROM unnest(part) m;
        RETURN QUERY SELECT 'adr_ops_metrics_source_up', jsonb_build_object('source', s), up, 'gauge',
                            'Whether each metric source of adr_metrics() could be read (1) or failed (0).';
    END LOOP;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_metrics(text) IS
    'every adr_ops reading as a metric (name, labels, value, gauge or counter, help), from all sources (one that fails is left out, with a WARNING) or the one named (its error is raised)';

CREATE VIEW adr_ops.metrics AS
    SELECT m.name, m.labels, m.value, m.type, m.help FROM adr_ops.adr_metrics() m;
COMMENT ON VIEW adr_ops.metrics IS
    'every adr_ops reading as a metric: adr_metrics() of all sources';
GRANT SELECT ON adr_ops.metrics TO pg_monitor;

-- The Prometheus text format, for a textfile collector or a push.
CREATE FUNCTION adr_ops.adr_metrics_text(source text DEFAULT NULL) RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH m AS (
        SELECT m.*, row_number() OVER () AS n FROM adr_ops.adr_metrics(source) m
    ), f AS (
        SELECT m.name, min(m.n) AS first, min(m.type) AS type, min(m.help) AS help,
               string_agg(m.name
                          || coalesce('{' || (SELECT string_agg(format('%s="%s"', l.key,
                                                    replace(replace(replace(l.value, '\', '\\'), '"', '\"'), E'\n', '\n')),
                                                    ',' ORDER BY l.key)
                                               FROM jsonb_each_text(m.labels) l) || '}', '')
                          || ' ' || CASE WHEN m.value = 'Infinity' THEN '+Inf'
                                         WHEN m.value = '-Infinity' THEN '-Inf'
                                         WHEN m.value = 'NaN' THEN 'NaN'
                                         ELSE m.value::text END,
                          E'\n' ORDER BY m.n) AS samples
          FROM m GROUP BY m.name
    )
    SELECT coalesce(string_agg(format(E'# HELP %s %s\n# TYPE %s %s\n%s\n', f.name,
                                      replace(replace(f.help, '\', '\\'), E'\n', '\n'),
                                      f.name, f.type, f.samples), '' ORDER BY f.first), '')
      FROM f
$$;
COMMENT ON FUNCTION adr_ops.adr_metrics_text(text) IS
    'adr_metrics() in the Prometheus text exposition format';

DO $grants$
DECLARE
    f text;
BEGIN
    -- Reports for pg_monitor, not PUBLIC.
    FOREACH f IN ARRAY ARRAY['adr_ops.adr_metrics(text)', 'adr_ops.adr_metrics_text(text)',
                             'adr_ops._metric_status(text)',
                             'adr_ops._metrics_health()', 'adr_ops._metrics_probes()',
                             'adr_ops._metrics_pipelines()', 'adr_ops._metrics_backup()',
                             'adr_ops._metrics_security()', 'adr_ops._metrics_maintenance()',
                             'adr_ops._metrics_incidents()', 'adr_ops._metrics_capacity()'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pg_monitor', f);
    END LOOP;
END
$grants$;

-- bloat snapshot: the bloat_snapshot task stores adr_bloat_report() estimates in
-- bloat_history; the registry's bloat source reads the latest
-- The bloat snapshot: what adr_bloat_report() estimates, stored by the
-- bloat_snapshot task so that dashboards and adr_metrics() read bloat
-- without computing it at scrape time.  Only the top relations by bloat
-- bytes of each run are kept (a bounded table whatever the database's size).
CREATE TABLE adr_ops.bloat_history (
    taken_at timestamptz NOT NULL,
    schemaname name NOT NULL,
    relname name NOT NULL,
    kind text NOT NULL
        CHECK (kind OPERATOR(pg_catalog.=) ANY ('{table,index,toast}'::text[])),
    table_name name,
    total_bytes bigint NOT NULL,
    bloat_bytes bigint,
    bloat_pct double precision,
    method text,
    PRIMARY KEY (taken_at, schemaname, relname)
);
COMMENT ON TABLE adr_ops.bloat_history IS
    'bloat estimates stored by adr_bloat_snapshot() (the bloat_snapshot task): the top relations by bloat bytes of each run';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.bloat_history', '');
GRANT SELECT ON adr_ops.bloat_history TO pg_monitor;

-- One adr_bloat_report() in estimate mode (statistics only: no page is
-- read), its top relations by bloat bytes stored under one timestamp.
-- Returns the rows stored.
CREATE FUNCTION adr_ops.adr_bloat_snapshot(keep interval DEFAULT '30 days', top integer DEFAULT 50,
    min_bytes bigint DEFAULT 0)
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH pruned AS (
        DELETE FROM adr_ops.bloat_history WHERE taken_at < now() - keep
    ), taken AS (
        SELECT clock_timestamp() AS at
    ), stored AS (
        INSERT INTO adr_ops.bloat_history (taken_at, schemaname, relname, kind, table_name,
                                           total_bytes, bloat_bytes, bloat_pct, method)
        SELECT taken.at, r.schemaname, r.relname, r.kind, r.table_name,
               r.total_bytes, r.bloat_bytes, r.bloat_pct, r.method
          FROM taken,
               (SELECT b.* FROM adr_ops.adr_bloat_report(min_bytes, 'estimate') b
                 WHERE b.total_bytes IS NOT NULL
                 ORDER BY b.bloat_bytes DESC NULLS LAST, b.schemaname, b.relname
                 LIMIT greatest(top, 0)) r
        RETURNING 1
    )
    SELECT count(*)::integer FROM stored
$$;
COMMENT ON FUNCTION adr_ops.adr_bloat_snapshot(interval, integer, bigint) IS
    'stores the top relations by estimated bloat bytes (adr_bloat_report() in estimate mode, relations of at least min_bytes) in bloat_history; drops rows older than keep';
REVOKE ALL ON FUNCTION adr_ops.adr_bloat_snapshot(interval, integer, bigint) FROM PUBLIC;

-- Bloat from the latest snapshot (the bloat_snapshot task): a scrape never
-- estimates bloat itself.
CREATE FUNCTION adr_ops._metrics_bloat() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH latest AS (
        SELECT max(h.taken_at) AS at FROM adr_ops.bloat_history h
    ), rows AS (
        SELECT h.*, jsonb_build_object('relation', format('%s.%s', h.schemaname, h.relname), 'kind', h.kind) AS l
          FROM latest JOIN adr_ops.bloat_history h ON h.taken_at = latest.at
         WHERE h.bloat_bytes IS NOT NULL
    )
    SELECT 'adr_ops_relation_bloat_bytes', r.l, r.bloat_bytes::float8, 'gauge',
           'Estimated bloat of the most bloated relations (table, index, toast) in the latest bloat snapshot, in bytes.'
      FROM rows r
    UNION ALL
    SELECT 'adr_ops_relation_bloat_ratio', r.l, (r.bloat_pct / 100)::float8, 'gauge',
           'Estimated bloat over the size of the most bloated relations in the latest bloat snapshot, 0..1.'
      FROM rows r WHERE r.bloat_pct IS NOT NULL
    UNION ALL
    SELECT 'adr_ops_bloat_snapshot_age_seconds', '{}',
           coalesce(extract(epoch FROM now() - l.at)::float8, 'Infinity'), 'gauge',
           'Seconds since the latest bloat snapshot (+Inf when none was taken).'
      FROM latest l;
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_bloat() IS
    'API: private. Bloat from the latest bloat snapshot';
REVOKE ALL ON FUNCTION adr_ops._metrics_bloat() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._metrics_bloat() TO pg_monitor;
INSERT INTO adr_ops.metric_sources (name, position) VALUES ('bloat', 90);

-- Bloat hourly, at a minute no other default schedule uses.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('bloat_snapshot', '23 * * * *', 'bloat_snapshot', pg_catalog.current_database());

-- metrics of the quality checks and of the integrity verifications: two
-- more sources of the registry
-- The quality checks' metrics, from the latest result of each enabled
-- check (the quality_check task runs them): a scrape never runs a check.
CREATE FUNCTION adr_ops._metrics_quality() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH last AS (
        SELECT jsonb_build_object('check', c.name, 'dataset', coalesce(c.dataset, '')) AS l,
               r.status, r.metric, r.ran_at
          FROM adr_ops.quality_checks c
          JOIN LATERAL (SELECT q.status, q.metric, q.ran_at FROM adr_ops.quality_results q
                         WHERE q.check_id = c.id ORDER BY q.ran_at DESC LIMIT 1) r ON true
         WHERE c.enabled
    )
    SELECT m.* FROM last CROSS JOIN LATERAL (VALUES
        ('adr_ops_quality_check_status', last.l, adr_ops._metric_status(last.status), 'gauge',
         'Status of the latest run of each enabled data-quality check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.'),
        ('adr_ops_quality_check_metric', last.l, last.metric::float8, 'gauge',
         'Metric of the latest run of each enabled data-quality check (its kind says what it measures).'),
        ('adr_ops_quality_check_age_seconds', last.l, extract(epoch FROM now() - last.ran_at)::float8, 'gauge',
         'Seconds since the latest run of each enabled data-quality check.')
    ) AS m(name, labels, value, type, help)
     WHERE m.value IS NOT NULL;
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_quality() IS
    'API: private. The data-quality checks'' metrics, from their latest results';
REVOKE ALL ON FUNCTION adr_ops._metrics_quality() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._metrics_quality() TO pg_monitor;
INSERT INTO adr_ops.metric_sources (name, position) VALUES ('quality', 100);

-- The integrity verifications' metrics, from the latest verification of
-- each relation that still exists (the integrity_check task runs amcheck),
-- and the checksum failures pg_stat_database counts.
CREATE FUNCTION adr_ops._metrics_integrity() RETURNS SETOF adr_ops._metric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH RECURSIVE latest AS (
        -- the latest verification of each relation, one probe of the
        -- primary key (relid, verified_at) per relation, not a scan of
        -- every verification kept
        (SELECT x.relid, x.status, x.verified_at FROM adr_ops.integrity_results x
          ORDER BY x.relid DESC, x.verified_at DESC LIMIT 1)
        UNION ALL
        SELECT n.relid, n.status, n.verified_at
          FROM latest l
          CROSS JOIN LATERAL (SELECT x.relid, x.status, x.verified_at FROM adr_ops.integrity_results x
                               WHERE x.relid < l.relid
                               ORDER BY x.relid DESC, x.verified_at DESC LIMIT 1) n
    ), s AS (
        SELECT count(*) AS verified,
               count(*) FILTER (WHERE l.status = 'corrupt') AS corrupt,
               count(*) FILTER (WHERE l.status = 'error') AS errors,
               min(l.verified_at) AS oldest
          FROM latest l JOIN pg_class c ON c.oid = l.relid
    )
    SELECT m.* FROM s CROSS JOIN LATERAL (VALUES
        ('adr_ops_integrity_relations_verified', s.verified::float8, 'gauge',
         'Relations that still exist and that amcheck verified at least once (integrity_check task).'),
        ('adr_ops_integrity_corrupt_relations', s.corrupt::float8, 'gauge',
         'Relations whose latest verification by amcheck found corruption.'),
        ('adr_ops_integrity_error_relations', s.errors::float8, 'gauge',
         'Relations whose latest verification by amcheck failed with an error.'),
        ('adr_ops_integrity_oldest_verification_age_seconds',
         coalesce(extract(epoch FROM now() - s.oldest)::float8, 'Infinity'), 'gauge',
         'Seconds since the oldest of the latest verifications of the relations (+Inf when none was verified).'),
        ('adr_ops_checksum_failures_total',
         (SELECT coalesce(sum(d.checksum_failures), 0) FROM pg_stat_database d)::float8, 'counter',
         'Data checksum failures counted by pg_stat_database in every database and the shared catalogs.')
    ) AS v(name, value, type, help)
    CROSS JOIN LATERAL (SELECT v.name, '{}'::jsonb, v.value, v.type, v.help) m;
END
$$;
COMMENT ON FUNCTION adr_ops._metrics_integrity() IS
    'API: private. The integrity verifications'' and checksum failures'' metrics';
REVOKE ALL ON FUNCTION adr_ops._metrics_integrity() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._metrics_integrity() TO pg_monitor;
INSERT INTO adr_ops.metric_sources (name, position) VALUES ('integrity', 110);


-- The caller, taken at the SECURITY DEFINER boundary (src/caller.c): where
-- the calling role grants power (a quality check's owner, adr_lock_role()'s
-- checks) it is refused while the functions that called are unknown.
CREATE FUNCTION adr_ops._calling_role_strict() RETURNS name
AS 'MODULE_PATHNAME', 'adr_calling_role_strict'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION adr_ops._calling_role_strict() IS
    'API: private. The role that called, for where it grants power: refuses while the calling functions are unknown';
REVOKE ALL ON FUNCTION adr_ops._calling_role_strict() FROM PUBLIC;

CREATE OR REPLACE FUNCTION adr_ops.adr_lock_role(role name, terminate boolean DEFAULT true)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r pg_roles;
    actor name := adr_ops._calling_role_strict();
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
