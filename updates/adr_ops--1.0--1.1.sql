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
