--
-- Installation: the objects the extension owns, its version, and the guard
-- against a pre-created schema.
--
CREATE EXTENSION adr_ops;

SELECT extversion, extrelocatable, extnamespace::regnamespace
  FROM pg_extension WHERE extname = 'adr_ops';

SELECT component FROM adr_ops.adr_version() ORDER BY component;
SELECT version = (SELECT extversion FROM pg_extension WHERE extname = 'adr_ops') AS version_matches
  FROM adr_ops.adr_version() WHERE component = 'adr_ops';

-- Every member object, so that an addition or a loss shows in the diff.
SELECT pg_describe_object(classid, objid, 0) AS object
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'adr_ops')
 ORDER BY 1;

-- Configuration tables are kept by pg_dump.
SELECT unnest(extconfig)::regclass AS config_table
  FROM pg_extension WHERE extname = 'adr_ops' ORDER BY 1;

-- The settings namespace is reserved.
SET adr_ops.no_such_setting = 1;
SHOW adr_ops.log_scan_limit;

-- A schema adr_ops that someone else created, or that holds objects, is refused.
-- (DROP EXTENSION leaves the schema CREATE EXTENSION made behind.)
DROP EXTENSION adr_ops;
DROP SCHEMA adr_ops;
CREATE ROLE adr_intruder;
CREATE SCHEMA adr_ops AUTHORIZATION adr_intruder;
CREATE EXTENSION adr_ops;
DROP SCHEMA adr_ops;
CREATE SCHEMA adr_ops;
CREATE FUNCTION adr_ops.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT NULL::timestamptz';
CREATE EXTENSION adr_ops;
DROP SCHEMA adr_ops CASCADE;
-- An empty schema of the installing role is fine.
CREATE SCHEMA adr_ops;
CREATE EXTENSION adr_ops;
DROP EXTENSION adr_ops;
DROP SCHEMA adr_ops;
DROP ROLE adr_intruder;

-- The launcher works in this database: keep the default schedules from
-- firing while the tests run.
CREATE EXTENSION adr_ops;
UPDATE adr_ops.schedules SET enabled = false;
