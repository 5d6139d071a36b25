
-- info: what this build is made of ------------------------------------------

CREATE FUNCTION adr_ops.adr_version(OUT component text, OUT version text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'adr_version'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops.adr_version() IS
    'versions of the adr_ops library and of its SQL objects in this database, the PostgreSQL it was built for, libcurl and its TLS library';
REVOKE ALL ON FUNCTION adr_ops.adr_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_version() TO pg_monitor;

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
