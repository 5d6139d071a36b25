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
