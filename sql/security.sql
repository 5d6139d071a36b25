--
-- Security: the blocklist and maintenance mode as SQL sees them, the audit,
-- lock_role, evidence, and who may call what.  Connections refused by the
-- authentication hook are tested in t/090_security.pl (pg_regress connects
-- over the Unix socket, which is never blocked).
--
\set VERBOSITY terse

-- The blocklist: errors first.
SELECT adr_ops.adr_block_ip(NULL);
SELECT adr_ops.adr_block_ip('192.0.2.0/24', 'x', interval '-1 hour');
SELECT adr_ops.adr_block_ip('192.0.2.0/24', 'x', interval '0');
SELECT adr_ops.adr_block_ip('192.0.2.1/24');
SELECT adr_ops.adr_unblock_ip(NULL);
SELECT adr_ops.adr_unblock_ip('203.0.113.0/24');

-- A block reaches the table and, once committed, the hook's copy.
SELECT active_entries AS before FROM adr_ops._security_state() \gset
SELECT adr_ops.adr_block_ip('192.0.2.0/24', 'scanner', interval '1 hour', terminate => false);
SELECT adr_ops.adr_block_ip('2001:db8::/32', 'v6 range');
SELECT client, reason, expires_at IS NOT NULL AS expires, remaining > interval '59 minutes' AS about_an_hour,
       blocked_by
  FROM adr_ops.blocked_clients ORDER BY client;
SELECT active_entries - :before AS added, capacity, auto_ban_capacity, auto_bans
  FROM adr_ops._security_state();
SELECT a, adr_ops._security_blocked(a::inet)
  FROM (VALUES ('192.0.2.77'), ('192.0.3.1'), ('2001:db8:1::1'), ('2001:db9::1')) v(a);

-- Blocking again replaces reason and expiry.
SELECT adr_ops.adr_block_ip('192.0.2.0/24', 'scanner, for ever', terminate => false);
SELECT client, reason, expires_at FROM adr_ops.blocked_clients WHERE client = '192.0.2.0/24';

-- A rolled-back block never reaches the hook.
BEGIN;
SELECT adr_ops.adr_block_ip('198.51.100.7', 'rolled back');
SELECT active_entries - :before AS staged_not_applied FROM adr_ops._security_state();
ROLLBACK;
SELECT active_entries - :before AS after_rollback FROM adr_ops._security_state();
SELECT count(*) FROM adr_ops.blocklist WHERE client = '198.51.100.7';

-- A block in a rolled-back savepoint never reaches the hook either; one in
-- a released savepoint does, at commit.
BEGIN;
SAVEPOINT s;
SELECT adr_ops.adr_block_ip('198.51.100.7', 'rolled back to a savepoint');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT active_entries - :before AS after_savepoint_rollback FROM adr_ops._security_state();
BEGIN;
SAVEPOINT s;
SELECT adr_ops.adr_block_ip('198.51.100.7', 'released savepoint');
RELEASE SAVEPOINT s;
COMMIT;
SELECT active_entries - :before AS after_release FROM adr_ops._security_state();
SELECT adr_ops.adr_unblock_ip('198.51.100.7');

-- An expired entry stays in the table but leaves the view and the hook.
INSERT INTO adr_ops.blocklist (client, reason, expires_at, blocked_by)
VALUES ('198.51.100.0/24', 'expired', now() - interval '1 minute', 'test');
SELECT adr_ops.adr_block_ip('198.51.100.9', 'stage again', terminate => false);
SELECT count(*) FILTER (WHERE client = '198.51.100.0/24') AS expired_in_view
  FROM adr_ops.blocked_clients;
SELECT active_entries - :before AS active FROM adr_ops._security_state();

SELECT adr_ops.adr_unblock_ip('192.0.2.0/24');
SELECT adr_ops.adr_unblock_ip('2001:db8::/32');
SELECT adr_ops.adr_unblock_ip('198.51.100.9');
SELECT adr_ops.adr_unblock_ip('198.51.100.0/24');
SELECT active_entries - :before AS after_unblock FROM adr_ops._security_state();
SELECT actor, action, target FROM adr_ops.security_actions ORDER BY id;

-- A transaction that changed the blocklist cannot be prepared.
BEGIN;
SELECT adr_ops.adr_block_ip('198.51.100.8', terminate => false);
PREPARE TRANSACTION 'sec';
SELECT count(*) FROM adr_ops.blocklist WHERE client = '198.51.100.8';
-- Nor one whose staged copy a ROLLBACK TO dropped (its own change before
-- the savepoint remains).
BEGIN;
SELECT adr_ops.adr_block_ip('198.51.100.8', terminate => false);
SAVEPOINT s;
SELECT adr_ops.adr_block_ip('198.51.100.10', terminate => false);
ROLLBACK TO SAVEPOINT s;
PREPARE TRANSACTION 'sec';
SELECT count(*) FROM adr_ops.blocklist WHERE client = '198.51.100.8';

-- Direct changes of the tables (DML, pg_restore) reach the hook at commit.
INSERT INTO adr_ops.blocklist (client, reason, blocked_by) VALUES ('203.0.113.0/24', 'direct', 'test');
SELECT adr_ops._security_blocked('203.0.113.9') AS after_insert;
UPDATE adr_ops.blocklist SET client = '203.0.113.128/25' WHERE client = '203.0.113.0/24';
SELECT adr_ops._security_blocked('203.0.113.9') AS low_half, adr_ops._security_blocked('203.0.113.200') AS high_half;
DELETE FROM adr_ops.blocklist WHERE reason = 'direct';
SELECT adr_ops._security_blocked('203.0.113.200') AS after_delete;
INSERT INTO adr_ops.maintenance_state (enabled, message) VALUES (true, 'by hand');
SELECT maintenance, message FROM adr_ops._security_state();
TRUNCATE adr_ops.maintenance_state;
SELECT maintenance, message FROM adr_ops._security_state();

-- IPv4-mapped ranges are blocked as the IPv4 ranges they stand for, with
-- the prefix length converted: the hook matches such clients as IPv4, so
-- the mapped form would never match.
SELECT r, adr_ops._ipv4_unmapped(r::cidr)
  FROM (VALUES ('::ffff:127.0.0.2/128'), ('::ffff:7f00:2'), ('::ffff:10.0.0.0/104'),
               ('::ffff:0:0/96'), ('::/0'), ('::/64'), ('2001:db8::/32'), ('192.0.2.0/24')) v(r);
SELECT adr_ops.adr_block_ip('::ffff:192.0.2.7/128', 'mapped', terminate => false);
SELECT client, reason FROM adr_ops.blocked_clients WHERE reason = 'mapped';
SELECT adr_ops._security_blocked('192.0.2.7') AS ipv4_client,
       adr_ops._security_blocked('::ffff:192.0.2.7') AS mapped_client;
SELECT adr_ops.adr_unblock_ip('::ffff:192.0.2.7/128');
SELECT count(*) FROM adr_ops.blocklist WHERE reason = 'mapped';
-- A mapped row written directly (or kept from 1.0) is enforced as IPv4
-- too, and unblocked in either form.
INSERT INTO adr_ops.blocklist (client, reason, blocked_by) VALUES ('::ffff:192.0.2.0/120', 'direct mapped', 'test');
SELECT adr_ops._security_blocked('192.0.2.9') AS direct_mapped;
SELECT adr_ops.adr_unblock_ip('::ffff:192.0.2.0/120');
SELECT adr_ops._security_blocked('192.0.2.9') AS after_unblock;
SELECT action, target FROM adr_ops.security_actions ORDER BY id DESC LIMIT 3;

-- Failed authentications (none over the socket).
SELECT count(*) AS counted_over_the_socket FROM adr_ops.adr_auth_failures();

-- Maintenance mode.
SELECT adr_ops.adr_maintenance_mode(NULL);
SELECT adr_ops.adr_maintenance_mode(true, repeat('x', 512));
SELECT adr_ops.adr_maintenance_mode(true, 'upgrade to 15.9');
SELECT maintenance, message FROM adr_ops._security_state();
SELECT check_name, status, value, detail LIKE '%upgrade to 15.9' AS says_why
  FROM adr_ops.adr_health_check() WHERE check_name = 'maintenance_mode';
SELECT adr_ops.adr_maintenance_mode(false);
SELECT maintenance, message FROM adr_ops._security_state();
SELECT check_name, status, value, detail
  FROM adr_ops.adr_health_check() WHERE check_name = 'maintenance_mode';

-- lock_role.
CREATE ROLE sec_victim LOGIN;
CREATE ROLE sec_super SUPERUSER;
SELECT adr_ops.adr_lock_role(NULL);
SELECT adr_ops.adr_lock_role('no_such_role');
SELECT adr_ops.adr_lock_role((SELECT rolname FROM pg_roles WHERE oid = 10));
SELECT adr_ops.adr_lock_role('pg_monitor');
SELECT adr_ops.adr_lock_role('sec_victim');
SELECT rolcanlogin FROM pg_roles WHERE rolname = 'sec_victim';
SELECT action, target, detail FROM adr_ops.security_actions WHERE action = 'lock role';

-- The audit: provoke what a regress server can show (the pg_hba, ssl,
-- superuser and log_connections findings are in t/090_security.pl).
SELECT finding FROM adr_ops.adr_security_audit()
 WHERE finding NOT IN ('log_connections', 'extra_superuser') ORDER BY 1;
SET password_encryption = 'md5';
CREATE ROLE sec_md5 LOGIN PASSWORD 'secret' CREATEROLE;
CREATE ROLE sec_rls BYPASSRLS;
CREATE SCHEMA sec_open;
GRANT CREATE ON SCHEMA sec_open TO PUBLIC;
CREATE FUNCTION public.sec_definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
SELECT severity, finding, object, detail FROM adr_ops.adr_security_audit()
 WHERE finding NOT IN ('log_connections', 'extra_superuser') ORDER BY 1, 2, 3;
SELECT severity, finding, object FROM adr_ops.adr_security_audit()
 WHERE finding = 'extra_superuser' AND object = 'sec_super';
RESET password_encryption;
DROP FUNCTION public.sec_definer();
DROP SCHEMA sec_open;
DROP ROLE sec_md5, sec_rls;
SELECT finding FROM adr_ops.adr_security_audit()
 WHERE finding NOT IN ('log_connections', 'extra_superuser') ORDER BY 1;

-- A pinned search_path that searches, before pg_catalog, a schema others
-- may create in (public belongs to pg_database_owner), pg_temp (listed, or
-- searched first because it is not) or "$user" is a finding; one that
-- lists such schemas after pg_catalog, or only the owner's schemas, is not.
CREATE SCHEMA sec_own;
CREATE SCHEMA sec_shared;
GRANT CREATE ON SCHEMA sec_shared TO pg_monitor;
CREATE FUNCTION public.sec_path_public() RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = public, pg_catalog AS 'SELECT 1';
CREATE FUNCTION public.sec_path_temp() RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_temp, pg_catalog AS 'SELECT 1';
CREATE FUNCTION public.sec_path_no_temp() RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog AS 'SELECT 1';
CREATE FUNCTION public.sec_path_user() RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = "$user", pg_catalog, pg_temp AS 'SELECT 1';
CREATE FUNCTION public.sec_path_missing() RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = "No Such", pg_catalog, pg_temp AS 'SELECT 1';
CREATE FUNCTION public.sec_path_shared() RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = sec_own, SEC_SHARED, pg_catalog, pg_temp AS 'SELECT 1';
CREATE FUNCTION public.sec_path_implicit() RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = public, pg_temp AS 'SELECT 1';
CREATE FUNCTION public.sec_path_after() RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp AS 'SELECT 1';
CREATE FUNCTION public.sec_path_own() RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = sec_own, pg_catalog, pg_temp AS 'SELECT 1';
SELECT object, detail FROM adr_ops.adr_security_audit()
 WHERE finding = 'security_definer_search_path' ORDER BY object;
DROP FUNCTION public.sec_path_public(), public.sec_path_temp(), public.sec_path_no_temp(),
    public.sec_path_user(), public.sec_path_missing(), public.sec_path_shared(),
    public.sec_path_implicit(), public.sec_path_after(), public.sec_path_own();
DROP SCHEMA sec_own, sec_shared;

-- Host names that look hexadecimal are names, not addresses.
SELECT a, adr_ops._is_local_address(a)
  FROM (VALUES ('db1'), ('cafe'), ('fe01'), ('dead:beef:zz'), ('1:2'), ('999.0.0.1'),
               ('::1'), ('127.0.0.1'), ('10.0.0.1'), ('localhost'), ('*')) v(a);

-- Loopback-only pg_hba addresses are not findings.
SELECT a, m, adr_ops._hba_local(a, m)
  FROM (VALUES ('127.0.0.1', '255.255.255.255'), ('127.0.0.0', '255.0.0.0'),
               ('127.0.0.0', '254.0.0.0'), ('::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'),
               ('10.0.0.0', '255.0.0.0'), ('all', NULL), ('samehost', NULL),
               ('samenet', NULL), ('localhost', NULL), ('127.0.0.1/8', NULL)) v(a, m);

-- Evidence: append-only for non-superusers.
SELECT adr_ops.adr_evidence_snapshot(NULL);
SELECT adr_ops.adr_evidence_snapshot('incident 1') > 0 AS taken;
SELECT taken_by, label, jsonb_typeof(activity) AS activity, jsonb_typeof(locks) AS locks,
       jsonb_typeof(settings) AS settings, statements IS NOT NULL AS statements,
       jsonb_typeof(auth_failures) AS auth_failures, jsonb_typeof(blocklist) AS blocklist,
       jsonb_array_length(locks) > 0 AS has_locks
  FROM adr_ops.evidence;
CREATE ROLE sec_clerk;
GRANT USAGE ON SCHEMA adr_ops TO sec_clerk;
GRANT ALL ON adr_ops.evidence TO sec_clerk;
SET ROLE sec_clerk;
UPDATE adr_ops.evidence SET label = 'tampered';
DELETE FROM adr_ops.evidence;
TRUNCATE adr_ops.evidence;
RESET ROLE;
SELECT label FROM adr_ops.evidence;

-- Access review over the socket: no sessions with an address, no failures.
SELECT source, address, detail FROM adr_ops.adr_access_review('192.0.2.1')
 WHERE source <> 'log' ORDER BY 1;

-- Nobody but a superuser, or whom one grants, may act.
CREATE ROLE sec_nobody;
GRANT USAGE ON SCHEMA adr_ops TO sec_nobody;
SET ROLE sec_nobody;
SELECT adr_ops.adr_block_ip('192.0.2.0/24');
SELECT adr_ops.adr_unblock_ip('192.0.2.0/24');
SELECT adr_ops.adr_maintenance_mode(true);
SELECT adr_ops.adr_lock_role('sec_victim');
SELECT adr_ops.adr_evidence_snapshot('x');
SELECT * FROM adr_ops.adr_security_audit();
SELECT * FROM adr_ops.adr_access_review();
SELECT * FROM adr_ops.adr_auth_failures();
SELECT * FROM adr_ops.blocked_clients;
SELECT adr_ops._security_stage();
INSERT INTO adr_ops.evidence (taken_by, label) VALUES ('me', 'forged');
RESET ROLE;

-- pg_monitor reads the harmless reports.
GRANT pg_monitor TO sec_nobody;
SET ROLE sec_nobody;
SELECT count(*) >= 0 AS ok FROM adr_ops.adr_auth_failures();
SELECT count(*) AS blocked FROM adr_ops.blocked_clients;
SELECT maintenance FROM adr_ops._security_state();
SELECT adr_ops.adr_lock_role('sec_victim');
RESET ROLE;

-- A granted non-superuser cannot lock a superuser.
GRANT EXECUTE ON FUNCTION adr_ops.adr_lock_role(name, boolean) TO sec_nobody;
SET ROLE sec_nobody;
SELECT adr_ops.adr_lock_role('sec_super');
RESET ROLE;

DROP OWNED BY sec_clerk, sec_nobody;
DROP ROLE sec_victim, sec_super, sec_clerk, sec_nobody;

-- The tables that the hook mirrors live in adr_ops.database only.
CREATE DATABASE sec_other;
\c sec_other
SET client_min_messages = warning;
CREATE EXTENSION adr_ops;
RESET client_min_messages;
SELECT adr_ops.adr_block_ip('192.0.2.0/24');
SELECT adr_ops.adr_maintenance_mode(true);
-- the reports that need no table of it work there
SELECT count(*) >= 0 AS audit_runs FROM adr_ops.adr_security_audit();
\c contrib_regression
DROP DATABASE sec_other;
