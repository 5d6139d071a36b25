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
