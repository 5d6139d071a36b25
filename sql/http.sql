--
-- HTTP probes and alerts: the API, the errors, bad URLs as rows, the
-- privileges, and the alert trigger.  Transfers against a live server are
-- in t/080_http.pl; nothing here leaves the machine.
--
SELECT p.oid::regprocedure AS function, pg_get_function_result(p.oid) AS returns,
       p.proisstrict AS strict, p.prosecdef AS security_definer
  FROM pg_proc p
 WHERE p.pronamespace = 'adr_ops'::regnamespace AND p.proname LIKE 'adr_http%'
 ORDER BY 1::text;

-- Bad URLs and destinations are rows with ok = false, never errors.
SELECT c.url, c.ok, c.status_code, c.bytes, split_part(c.error, ':', 1) AS error_kind, c.error
  FROM unnest(ARRAY['file:///etc/passwd', 'ftp://127.0.0.1/', 'gopher://127.0.0.1/',
                    'not a url', '', 'http://', 'http://10.1.2.3/', 'http://[::2]/',
                    'https://192.0.2.1:8443/x']) AS u(url),
       LATERAL adr_ops.adr_http_check(u.url, 1000) c
 ORDER BY 1;
-- Nothing listens on port 1 of loopback.
SELECT ok, status_code, split_part(error, ':', 1) AS error_kind
  FROM adr_ops.adr_http_check('http://127.0.0.1:1/', timeout_ms => 2000);

-- Arguments are checked.
SELECT * FROM adr_ops.adr_http_check(NULL);
SELECT * FROM adr_ops.adr_http_check('http://127.0.0.1:1/', 0);
SELECT * FROM adr_ops.adr_http_check('http://127.0.0.1:1/', 3600001);
SELECT * FROM adr_ops.adr_http_check('http://127.0.0.1:1/', NULL);
SELECT * FROM adr_ops.adr_http_check('http://127.0.0.1:1/', 1000, 99);
SELECT * FROM adr_ops.adr_http_check('http://127.0.0.1:1/', 1000, 600);
SELECT * FROM adr_ops.adr_http_check('http://127.0.0.1:1/', 1000, 200, E'token\r\nX-Injected: 1');
SELECT * FROM adr_ops.adr_http_metric('http://127.0.0.1:1/metrics', 'up', 0);
SELECT * FROM adr_ops.adr_http_metric('http://10.1.2.3/metrics', 'up');
SELECT * FROM adr_ops.adr_http_metric('file:///etc/passwd', 'up');
SELECT count(*) AS strict_null FROM adr_ops.adr_http_metric(NULL, 'up');

-- The settings.
SET adr_ops.http_allowed_hosts = 'bad host!';
SET adr_ops.http_allowed_hosts = '10.0.0.0/33';
SET adr_ops.http_allowed_hosts = '::1/129';
-- A list without loopback refuses loopback.
SET adr_ops.http_allowed_hosts = 'probe-target.invalid, 10.0.0.0/8 192.168.1.1,::1,fd00::/8';
SELECT ok, error FROM adr_ops.adr_http_check('http://127.0.0.1:1/', 1000);
RESET adr_ops.http_allowed_hosts;
-- An IPv4-mapped IPv6 entry, or range, allows the IPv4 addresses it maps
-- (nothing listens on port 1: refused, but allowed).
SET adr_ops.http_allowed_hosts = '::ffff:127.0.0.1';
SELECT ok, split_part(error, ':', 1) AS error_kind
  FROM adr_ops.adr_http_check('http://127.0.0.1:1/', 2000);
SELECT ok, error FROM adr_ops.adr_http_check('http://127.0.0.2:1/', 2000);
SET adr_ops.http_allowed_hosts = '::ffff:127.0.0.0/104';
SELECT ok, split_part(error, ':', 1) AS error_kind
  FROM adr_ops.adr_http_check('http://127.0.0.1:1/', 2000);
SELECT ok, split_part(error, ':', 1) AS error_kind
  FROM adr_ops.adr_http_check('http://127.1.0.1:1/', 2000);
RESET adr_ops.http_allowed_hosts;
SET adr_ops.http_max_redirects = 51;
SET adr_ops.http_max_body = 100;
SET adr_ops.alert_webhook_url = 'http://127.0.0.1/hook';
SELECT name, setting, unit, context FROM pg_settings
 WHERE name LIKE 'adr_ops.http%' OR name LIKE 'adr_ops.alert%' OR name LIKE 'adr_ops.probe%'
 ORDER BY name;

-- The configuration tables, and the default schedules.
INSERT INTO adr_ops.probes (name, url, expect_status) VALUES ('bad', 'http://x/', 99);
INSERT INTO adr_ops.probes (name, url, timeout_ms) VALUES ('bad', 'http://x/', 0);
-- A probe's timeout is at most a minute: it holds up the whole batch.
INSERT INTO adr_ops.probes (name, url, timeout_ms) VALUES ('bad', 'http://x/', 60001);
INSERT INTO adr_ops.probes (name, url, timeout_ms) VALUES ('slowest', 'http://x/', 60000);
DELETE FROM adr_ops.probes WHERE name = 'slowest';
SELECT name, schedule, task FROM adr_ops.schedules
 WHERE task IN ('http_probe', 'alert_delivery') ORDER BY name;
SELECT task, writes, heavy, options FROM adr_ops.adr_tasks()
 WHERE task IN ('http_probe', 'alert_delivery') ORDER BY task;

-- Probe rows of the health check, and one alert per transition.
INSERT INTO adr_ops.probes (name, url) VALUES ('web', 'http://127.0.0.1:1/health');
INSERT INTO adr_ops.probes (name, url, enabled) VALUES ('off', 'http://127.0.0.1:1/', false);
SELECT check_name, status, detail FROM adr_ops.adr_health_check()
 WHERE check_name LIKE 'probe:%';
INSERT INTO adr_ops.probe_history (probe, url, ok, status_code, latency_ms, bytes)
VALUES ('web', 'http://127.0.0.1:1/health', true, 200, 1.5, 2);
SELECT count(*) AS alerts_for_a_first_ok FROM adr_ops.alerts;
INSERT INTO adr_ops.probe_history (probe, url, ok, error)
VALUES ('web', 'http://127.0.0.1:1/health', false, 'connection refused: no');
INSERT INTO adr_ops.probe_history (probe, url, ok, error)
VALUES ('web', 'http://127.0.0.1:1/health', false, 'connection refused: still no');
SELECT check_name, status, value, unit FROM adr_ops.adr_health_check()
 WHERE check_name LIKE 'probe:%';
INSERT INTO adr_ops.probe_history (probe, url, ok, status_code, latency_ms, bytes)
VALUES ('web', 'http://127.0.0.1:1/health', true, 200, 2.5, 2);
SELECT source, check_name, from_status, to_status, detail, attempts, delivered_at IS NULL AS pending
  FROM adr_ops.alerts ORDER BY id;
SELECT adr_ops._alert_payload(a)::jsonb - 'at' - 'id' AS payload
  FROM adr_ops.alerts a ORDER BY id LIMIT 1;
-- NOTIFY adr_alerts carries no detail, and a short check_name: a probe
-- named and failing in 5000 multibyte characters still records its result
-- (a NOTIFY payload over 8000 bytes would abort the INSERT).
SELECT adr_ops._alert_notice(a)::jsonb - 'id' AS notice
  FROM adr_ops.alerts a ORDER BY id LIMIT 1;
INSERT INTO adr_ops.probe_history (probe, url, ok, error)
VALUES (repeat('é', 5000), 'http://127.0.0.1:1/', false, repeat('€', 5000));
SELECT octet_length(adr_ops._alert_notice(a)) < 1000 AS short_notice,
       char_length(a.check_name) AS name_chars, char_length(a.detail) AS detail_chars
  FROM adr_ops.alerts a WHERE a.check_name LIKE 'probe:éé%';
DELETE FROM adr_ops.alerts WHERE check_name LIKE 'probe:éé%';
DELETE FROM adr_ops.probe_history WHERE probe LIKE 'éé%';

-- Health snapshots alert on their own transitions, skipping probe rows.
INSERT INTO adr_ops.health_history (taken_at, check_name, status, detail) VALUES
    (now() - interval '2 minutes', 'disk_data', 'OK', 'fine'),
    (now() - interval '2 minutes', 'probe:web', 'OK', 'fine');
INSERT INTO adr_ops.health_history (taken_at, check_name, status, detail) VALUES
    (now() - interval '1 minute', 'disk_data', 'WARNING', 'filling'),
    (now() - interval '1 minute', 'probe:web', 'CRITICAL', 'down');
INSERT INTO adr_ops.health_history (taken_at, check_name, status, detail) VALUES
    (now(), 'disk_data', 'WARNING', 'still filling');
-- Rows older than 10 minutes (a restored dump) raise nothing.
INSERT INTO adr_ops.health_history (taken_at, check_name, status, detail) VALUES
    (now() - interval '1 day', 'memory', 'CRITICAL', 'long ago');
SELECT source, check_name, from_status, to_status, detail
  FROM adr_ops.alerts WHERE source = 'health' ORDER BY id;

-- Privileges: probing is not for PUBLIC, nor for pg_monitor; the history
-- and the alerts are for pg_monitor.
CREATE ROLE adr_http_nobody;
CREATE ROLE adr_http_watcher IN ROLE pg_monitor;
SET ROLE adr_http_nobody;
SELECT * FROM adr_ops.adr_http_check('http://127.0.0.1:1/');
SELECT * FROM adr_ops.adr_http_metric('http://127.0.0.1:1/', 'up');
SELECT count(*) FROM adr_ops.alerts;
SELECT count(*) FROM adr_ops.probe_history;
SHOW adr_ops.alert_webhook_url;
SHOW adr_ops.probe_bearer_token;
SET adr_ops.http_allowed_hosts = '0.0.0.0/0';
RESET ROLE;
SET ROLE adr_http_watcher;
SELECT * FROM adr_ops.adr_http_check('http://127.0.0.1:1/');
SELECT count(*) > 0 AS sees_alerts FROM adr_ops.alerts;
SELECT count(*) > 0 AS sees_history FROM adr_ops.probe_history;
SELECT count(*) AS sees_probes FROM adr_ops.probes;
SELECT check_name, status FROM adr_ops.adr_health_check() WHERE check_name LIKE 'probe:%';
INSERT INTO adr_ops.alerts (source, check_name, to_status) VALUES ('health', 'x', 'OK');
RESET ROLE;
SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants
 WHERE table_schema = 'adr_ops' AND table_name IN ('alerts', 'probe_history', 'probes')
   AND grantee IN ('PUBLIC', 'pg_monitor')
 ORDER BY 1, 2, 3;
DROP ROLE adr_http_nobody;
DROP ROLE adr_http_watcher;

DELETE FROM adr_ops.alerts;
DELETE FROM adr_ops.probe_history;
DELETE FROM adr_ops.probes;
DELETE FROM adr_ops.health_history;
