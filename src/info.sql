
-- info: what this build is made of ------------------------------------------

CREATE FUNCTION adr_ops.adr_version(OUT component text, OUT version text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'adr_version'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops.adr_version() IS
    'versions of the adr_ops library and of its SQL objects in this database, the PostgreSQL it was built for, libcurl and its TLS library';
REVOKE ALL ON FUNCTION adr_ops.adr_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_version() TO pg_monitor;
