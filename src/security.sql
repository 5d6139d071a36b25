
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
    OUT pending_bans integer, OUT capacity integer, OUT maintenance boolean, OUT message text,
    OUT auto_bans integer, OUT auto_ban_capacity integer)
RETURNS record
AS 'MODULE_PATHNAME', 'adr_security_state_1_1'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION adr_ops._security_state() IS
    'API: private. What the authentication hook sees now in shared memory (auto_ban_capacity: the share of capacity that auto-bans may hold)';
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

-- An IPv4-mapped IPv6 range (inside ::ffff:0:0/96) as the IPv4 range it
-- stands for, with the prefix length converted: the authentication hook
-- matches such clients as IPv4, so the mapped form would never match.
-- Other ranges are returned as they are.
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
         WHERE adr_ops._ipv4_unmapped(a.client_addr::cidr) <<= _terminate_from.client
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
COMMENT ON FUNCTION adr_ops.adr_block_ip(cidr, text, interval, boolean, boolean) IS
    'blocks an address or range in the authentication hook (for a duration, or until unblocked); returns the sessions terminated';
REVOKE ALL ON FUNCTION adr_ops.adr_block_ip(cidr, text, interval, boolean, boolean) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_unblock_ip(client cidr)
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
INSERT INTO adr_ops.health_checks (name, position) VALUES ('maintenance_mode', 130);
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

-- What a pinned search_path searches before pg_catalog that another role
-- could fill with a function, operator or table of the same name: pg_temp
-- (searched first when it is not listed), "$user", a schema that does not
-- exist (whoever may create schemas can create it) and a schema in which
-- a role other than the function's owner and the superusers may create
-- objects.  NULL when there is none.  Names are split on commas and
-- folded as the server folds them.
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

CREATE TRIGGER evidence_append_only BEFORE UPDATE OR DELETE ON adr_ops.evidence
    FOR EACH ROW EXECUTE FUNCTION adr_ops._append_only('Only a superuser may change or remove evidence.');
CREATE TRIGGER evidence_no_truncate BEFORE TRUNCATE ON adr_ops.evidence
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._append_only('Only a superuser may change or remove evidence.');

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
