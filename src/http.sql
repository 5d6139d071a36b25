
-- http: HTTP probes and alerts (runbook: Daily Health Checks `curl -f
-- .../health`, Performance Troubleshooting `curl .../metrics | grep`,
-- Incident Response "notify on-call team") ---------------------------------

-- Probes reach the network from the server: EXECUTE is not for PUBLIC, and
-- the destinations are limited by adr_ops.http_allowed_hosts.
-- url is INOUT: the row names the URL it is about.
CREATE FUNCTION adr_ops.adr_http_check(
    INOUT url text, timeout_ms integer DEFAULT 5000, expect_status integer DEFAULT 200,
    bearer_token text DEFAULT NULL,
    OUT ok boolean, OUT status_code integer, OUT latency_ms float8,
    OUT bytes bigint, OUT error text)
RETURNS record
AS 'MODULE_PATHNAME', 'adr_http_check'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION adr_ops.adr_http_check(text, integer, integer, text) IS
    'probes a URL over http or https: the runbook''s curl -f; a failure is a row with ok = false and the reason';
REVOKE ALL ON FUNCTION adr_ops.adr_http_check(text, integer, integer, text) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_http_metric(
    url text, metric text, timeout_ms integer DEFAULT 5000,
    OUT metric text, OUT labels jsonb, OUT value float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'adr_http_metric'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION adr_ops.adr_http_metric(text, text, integer) IS
    'the samples of one metric of a Prometheus text page: the runbook''s curl .../metrics | grep';
REVOKE ALL ON FUNCTION adr_ops.adr_http_metric(text, text, integer) FROM PUBLIC;

-- The probes the http_probe task runs.  A token, when needed, comes from
-- the superuser-only setting adr_ops.probe_bearer_token, never from here.
CREATE TABLE adr_ops.probes (
    name text PRIMARY KEY,
    url text NOT NULL,
    expect_status integer NOT NULL DEFAULT 200
        CHECK (expect_status OPERATOR(pg_catalog.>=) 100 AND expect_status OPERATOR(pg_catalog.<=) 599),
    -- All probes run as one batch whose results are recorded together:
    -- one slow probe delays every other's by up to its timeout, so a
    -- minute at most (the task runs every minute).
    timeout_ms integer NOT NULL DEFAULT 5000
        CHECK (timeout_ms OPERATOR(pg_catalog.>=) 1 AND timeout_ms OPERATOR(pg_catalog.<=) 60000),
    send_token boolean NOT NULL DEFAULT false,
    enabled boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE adr_ops.probes IS
    'HTTP probes run by the http_probe task; each appears in adr_health_check() as probe:<name>';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.probes', '');
GRANT SELECT ON adr_ops.probes TO pg_monitor;

CREATE TABLE adr_ops.probe_history (
    id bigserial PRIMARY KEY,
    probe text NOT NULL,
    url text NOT NULL,
    probed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    ok boolean NOT NULL,
    status_code integer,
    latency_ms float8,
    bytes bigint,
    error text
);
CREATE INDEX probe_history_probe ON adr_ops.probe_history (probe, id);
CREATE INDEX probe_history_probed_at ON adr_ops.probe_history (probed_at);
COMMENT ON TABLE adr_ops.probe_history IS
    'results of the http_probe task, kept 30 days';
GRANT SELECT ON adr_ops.probe_history TO pg_monitor;

-- Alerts: one row per status transition of a health check or a probe.
CREATE TABLE adr_ops.alerts (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    source text NOT NULL
        CHECK (source OPERATOR(pg_catalog.=) ANY ('{health,probe}'::text[])),
    check_name text NOT NULL,
    from_status text,
    to_status text NOT NULL
        CHECK (to_status OPERATOR(pg_catalog.=) ANY ('{OK,WARNING,CRITICAL,UNKNOWN}'::text[])),
    detail text,
    delivered_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    last_error text
);
CREATE INDEX alerts_undelivered ON adr_ops.alerts (next_attempt_at)
    WHERE delivered_at IS NULL;
COMMENT ON TABLE adr_ops.alerts IS
    'status transitions of health checks and probes, with their webhook delivery';
GRANT SELECT ON adr_ops.alerts TO pg_monitor;

-- What the webhook carries: the whole alert.
CREATE FUNCTION adr_ops._alert_payload(a adr_ops.alerts) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object('id', a.id, 'at', a.at, 'source', a.source,
                             'check_name', a.check_name, 'from_status', a.from_status,
                             'to_status', a.to_status, 'detail', left(a.detail, 2000))::text
$$;
COMMENT ON FUNCTION adr_ops._alert_payload(adr_ops.alerts) IS
    'API: private. The JSON of an alert, for the webhook';
REVOKE ALL ON FUNCTION adr_ops._alert_payload(adr_ops.alerts) FROM PUBLIC;

-- What NOTIFY adr_alerts carries: small, and nothing secret.  A NOTIFY
-- payload over 8000 bytes is an ERROR that would abort the INSERT of the
-- probe results or the health snapshot, and any role may LISTEN, so the
-- detail stays in adr_ops.alerts (pg_monitor) and check_name is cut to 200
-- characters (at most 800 bytes in any server encoding).
CREATE FUNCTION adr_ops._alert_notice(a adr_ops.alerts) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT json_build_object('id', a.id, 'source', a.source,
                             'check_name', left(a.check_name, 200), 'from_status', a.from_status,
                             'to_status', a.to_status)::text
$$;
COMMENT ON FUNCTION adr_ops._alert_notice(adr_ops.alerts) IS
    'API: private. The short JSON of an alert for NOTIFY adr_alerts: no detail';
REVOKE ALL ON FUNCTION adr_ops._alert_notice(adr_ops.alerts) FROM PUBLIC;

-- Every alert is announced, as it is inserted, by the alerts table's own
-- trigger: whoever raises an alert only inserts it.  A row trigger costs
-- nothing for the statements that raise no alert.
CREATE FUNCTION adr_ops._alert_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('adr_alerts', adr_ops._alert_notice(NEW));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION adr_ops._alert_notify() IS
    'API: private. Sends NOTIFY adr_alerts for each new alert';
REVOKE ALL ON FUNCTION adr_ops._alert_notify() FROM PUBLIC;
CREATE TRIGGER alerts_notify
    AFTER INSERT ON adr_ops.alerts
    FOR EACH ROW EXECUTE FUNCTION adr_ops._alert_notify();

-- Transitions: a row whose status differs from the previous row of the
-- same check; a first row only when it is not OK.  Probe checks in the
-- health history are skipped: the probe history alerts for them.  The
-- alerts are delivered later by a worker, never from this transaction.
CREATE FUNCTION adr_ops._alert_health_transitions() RETURNS trigger
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
COMMENT ON FUNCTION adr_ops._alert_health_transitions() IS
    'API: private. Raises an alert for each health check whose status changed';
REVOKE ALL ON FUNCTION adr_ops._alert_health_transitions() FROM PUBLIC;
CREATE TRIGGER health_history_alerts
    AFTER INSERT ON adr_ops.health_history
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._alert_health_transitions();

CREATE FUNCTION adr_ops._alert_probe_transitions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO adr_ops.alerts (source, check_name, from_status, to_status, detail)
    SELECT 'probe', 'probe:' || r.probe,
           CASE p.ok WHEN true THEN 'OK' WHEN false THEN 'CRITICAL' END,
           CASE WHEN r.ok THEN 'OK' ELSE 'CRITICAL' END,
           format('%s: %s', r.url, coalesce(r.error, 'HTTP ' || r.status_code))
      FROM new_rows r
      LEFT JOIN LATERAL (
            SELECT h.ok FROM adr_ops.probe_history h
             WHERE h.probe = r.probe AND h.id < r.id
             ORDER BY h.id DESC LIMIT 1) p ON true
     WHERE p.ok IS DISTINCT FROM r.ok
       AND (p.ok IS NOT NULL OR NOT r.ok)
     ORDER BY r.probe;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION adr_ops._alert_probe_transitions() IS
    'API: private. Raises an alert for each probe whose result changed between OK and CRITICAL';
REVOKE ALL ON FUNCTION adr_ops._alert_probe_transitions() FROM PUBLIC;
CREATE TRIGGER probe_history_alerts
    AFTER INSERT ON adr_ops.probe_history
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._alert_probe_transitions();

-- One health row per enabled probe: CRITICAL when its last probe failed,
-- UNKNOWN before its first.  adr_health_check() calls it as the check
-- "probes".
CREATE FUNCTION adr_ops._check_probes() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'probe:' || p.name, round(h.latency_ms::numeric, 1), 'ms',
           CASE WHEN h.ok THEN format('%s: HTTP %s in %s ms at %s', p.url, h.status_code,
                                      round(h.latency_ms::numeric, 1), h.probed_at)
                ELSE format('%s: %s at %s', p.url, h.error, h.probed_at) END,
           CASE WHEN h.id IS NULL THEN format('%s: not probed yet (the http_probe task runs the probes)', p.url) END,
           CASE WHEN NOT h.ok THEN 'CRITICAL' END
      FROM adr_ops.probes p
      LEFT JOIN LATERAL (
            SELECT * FROM adr_ops.probe_history ph
             WHERE ph.probe = p.name ORDER BY ph.id DESC LIMIT 1) h ON true
     WHERE p.enabled
     ORDER BY p.name
$$;
COMMENT ON FUNCTION adr_ops._check_probes() IS
    'API: private. The probes'' rows of adr_health_check()';
REVOKE ALL ON FUNCTION adr_ops._check_probes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_probes() TO pg_monitor;
INSERT INTO adr_ops.health_checks (name, position) VALUES ('probes', 120);

-- The probes run every minute and deliver their alerts at once; the
-- alerts of health snapshots, and retries, go out every minute too.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('http_probe', '* * * * *', 'http_probe', pg_catalog.current_database()),
    ('alert_delivery', '* * * * *', 'alert_delivery', pg_catalog.current_database());
