
-- incident: incidents P1-P3 with acknowledgement, escalation and a timeline
-- (runbook: Incident Response) ----------------------------------------------

-- The runbook's targets per severity: time to acknowledge, to resolve.
CREATE TABLE adr_ops.incident_targets (
    severity text PRIMARY KEY
        CHECK (severity OPERATOR(pg_catalog.=) ANY ('{P1,P2,P3}'::text[])),
    ack_within interval NOT NULL CHECK (ack_within OPERATOR(pg_catalog.>) '0'::interval),
    resolve_within interval NOT NULL CHECK (resolve_within OPERATOR(pg_catalog.>) '0'::interval)
);
COMMENT ON TABLE adr_ops.incident_targets IS
    'per severity, the time to acknowledge and to resolve an incident; past them it is escalated';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incident_targets', '');
GRANT SELECT ON adr_ops.incident_targets TO pg_monitor;
INSERT INTO adr_ops.incident_targets (severity, ack_within, resolve_within) VALUES
    ('P1', '15 minutes', '4 hours'),
    ('P2', '1 hour', '8 hours'),
    ('P3', '1 day', '7 days');
-- pg_dump keeps the rows; a restored one replaces its default (schema.sql).
CREATE TRIGGER incident_targets_upsert BEFORE INSERT ON adr_ops.incident_targets
    FOR EACH ROW EXECUTE FUNCTION adr_ops._config_upsert('severity');

-- Which alerts open an incident: a check name pattern (LIKE), a status
-- lasting at least so long, the severity, and the dedup key ({check} is
-- replaced by the check's name: one incident per check by default).
CREATE TABLE adr_ops.incident_policies (
    name text PRIMARY KEY,
    check_pattern text NOT NULL,
    status text NOT NULL DEFAULT 'CRITICAL'
        CHECK (status OPERATOR(pg_catalog.=) ANY ('{WARNING,CRITICAL,UNKNOWN}'::text[])),
    lasting interval NOT NULL DEFAULT '0'::interval
        CHECK (lasting OPERATOR(pg_catalog.>=) '0'::interval),
    severity text NOT NULL
        CHECK (severity OPERATOR(pg_catalog.=) ANY ('{P1,P2,P3}'::text[])),
    dedup_key text NOT NULL DEFAULT '{check}',
    enabled boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE adr_ops.incident_policies IS
    'alerts that open an incident: check name pattern (LIKE), status, for how long, severity, dedup key ({check} is the check name)';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incident_policies', '');
GRANT SELECT ON adr_ops.incident_policies TO pg_monitor;
INSERT INTO adr_ops.incident_policies (name, check_pattern, status, severity) VALUES
    ('backup_verification', 'backup_verification', 'CRITICAL', 'P1'),
    ('probes', 'probe:%', 'CRITICAL', 'P2');
CREATE TRIGGER incident_policies_upsert BEFORE INSERT ON adr_ops.incident_policies
    FOR EACH ROW EXECUTE FUNCTION adr_ops._config_upsert('name');

CREATE TABLE adr_ops.incidents (
    id bigserial PRIMARY KEY,
    severity text NOT NULL
        CHECK (severity OPERATOR(pg_catalog.=) ANY ('{P1,P2,P3}'::text[])),
    title text NOT NULL,
    summary text,
    status text NOT NULL DEFAULT 'open'
        CHECK (status OPERATOR(pg_catalog.=) ANY ('{open,acknowledged,mitigated,resolved,closed}'::text[])),
    dedup_key text NOT NULL,
    checks text[] NOT NULL DEFAULT '{}',
    jobs bigint[] NOT NULL DEFAULT '{}',
    opened_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    opened_by name,
    acknowledged_at timestamptz,
    acknowledged_by name,
    mitigated_at timestamptz,
    mitigated_by name,
    resolved_at timestamptz,
    resolved_by name,
    closed_at timestamptz,
    closed_by name,
    postmortem text,
    maintenance_window text
);
-- One incident per dedup key until it is closed.
CREATE UNIQUE INDEX incidents_dedup_key ON adr_ops.incidents (dedup_key)
    WHERE status OPERATOR(pg_catalog.<>) 'closed';
COMMENT ON TABLE adr_ops.incidents IS
    'incidents: severity, status open, acknowledged, mitigated, resolved, closed, who and when of each transition; change them with the adr_incident_* functions';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incidents', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incidents_id_seq', '');
GRANT SELECT ON adr_ops.incidents TO pg_monitor;

-- The timeline, append-only: every transition, note, linked alert,
-- evidence snapshot, notification and escalation.
CREATE TABLE adr_ops.incident_events (
    id bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES adr_ops.incidents (id),
    at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    actor name,
    kind text NOT NULL
        CHECK (kind OPERATOR(pg_catalog.=) ANY ('{opened,acknowledged,mitigated,resolved,closed,reopened,update,note,severity,alert,evidence,notified,escalated,action}'::text[])),
    message text,
    alert_id bigint,
    evidence_id bigint
);
CREATE INDEX incident_events_incident ON adr_ops.incident_events (incident_id, id);
COMMENT ON TABLE adr_ops.incident_events IS
    'the timeline of each incident; append-only except for superusers';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incident_events', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incident_events_id_seq', '');
GRANT SELECT ON adr_ops.incident_events TO pg_monitor;

CREATE TRIGGER incident_events_append_only BEFORE UPDATE OR DELETE ON adr_ops.incident_events
    FOR EACH ROW EXECUTE FUNCTION adr_ops._append_only('Add a note with adr_incident_note() instead.');
CREATE TRIGGER incident_events_no_truncate BEFORE TRUNCATE ON adr_ops.incident_events
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._append_only('Add a note with adr_incident_note() instead.');

-- Follow-up actions of an incident, for the post-mortem.
CREATE TABLE adr_ops.incident_actions (
    id bigserial PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES adr_ops.incidents (id),
    action text NOT NULL,
    owner text,
    state text NOT NULL DEFAULT 'open'
        CHECK (state OPERATOR(pg_catalog.=) ANY ('{open,done,dropped}'::text[])),
    due date
);
COMMENT ON TABLE adr_ops.incident_actions IS
    'follow-up actions of incidents, with owner and state, listed by adr_incident_report()';
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incident_actions', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.incident_actions_id_seq', '');
GRANT SELECT ON adr_ops.incident_actions TO pg_monitor;

-- Notifications go through the alerts table and its webhook delivery:
-- an incident's trigger, acknowledge, escalate and resolve are alert rows
-- of source 'incident' that name it.
ALTER TABLE adr_ops.alerts DROP CONSTRAINT alerts_source_check;
ALTER TABLE adr_ops.alerts ADD CONSTRAINT alerts_source_check
    CHECK (source OPERATOR(pg_catalog.=) ANY ('{health,probe,incident}'::text[]));
ALTER TABLE adr_ops.alerts ADD COLUMN incident_id bigint;
ALTER TABLE adr_ops.alerts ADD COLUMN incident_event text
    CHECK (incident_event OPERATOR(pg_catalog.=) ANY ('{trigger,acknowledge,escalate,resolve}'::text[]));

-- Queue the notification of an incident event, and record it in the timeline.
CREATE FUNCTION adr_ops._incident_notify(inc adr_ops.incidents, event text, message text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    aid bigint;
BEGIN
    INSERT INTO adr_ops.alerts (source, check_name, from_status, to_status, detail,
                                incident_id, incident_event)
    VALUES ('incident', 'incident:' || inc.id, NULL,
            CASE WHEN event = 'resolve' THEN 'OK'
                 WHEN inc.severity = 'P3' THEN 'WARNING' ELSE 'CRITICAL' END,
            format('%s %s: %s', inc.severity, inc.title, message),
            inc.id, event)
    RETURNING id INTO aid;
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message, alert_id)
    VALUES (inc.id, adr_ops._calling_role(), 'notified',
            format('%s queued as alert %s', event, aid), aid);
END
$$;
COMMENT ON FUNCTION adr_ops._incident_notify(adr_ops.incidents, text, text) IS
    'API: private. Queues a notification of an incident as an alert of source incident';
REVOKE ALL ON FUNCTION adr_ops._incident_notify(adr_ops.incidents, text, text) FROM PUBLIC;

-- The checks not OK now, as their last alert says.
CREATE FUNCTION adr_ops._incident_checks_not_ok() RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(l.check_name ORDER BY l.check_name), '{}')
      FROM (SELECT DISTINCT ON (a.check_name) a.check_name, a.to_status
              FROM adr_ops.alerts a
             WHERE a.source <> 'incident'
             ORDER BY a.check_name, a.id DESC) l
     WHERE l.to_status <> 'OK'
$$;
COMMENT ON FUNCTION adr_ops._incident_checks_not_ok() IS
    'API: private. The checks and probes whose last alert is not OK';
REVOKE ALL ON FUNCTION adr_ops._incident_checks_not_ok() FROM PUBLIC;

-- Open an incident, or return the one not closed with the same key.  The
-- unique index decides between concurrent openers: exactly one inserts.
CREATE FUNCTION adr_ops._incident_open(severity text, title text, summary text,
                                       dedup_key text, checks text[], snapshot boolean,
                                       OUT id bigint, OUT created boolean)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    inc adr_ops.incidents;
    ev bigint;
BEGIN
    IF _incident_open.severity IS NULL OR _incident_open.severity <> ALL ('{P1,P2,P3}') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid incident severity: %s', coalesce(_incident_open.severity, 'NULL')),
            HINT = 'Use P1, P2 or P3.';
    END IF;
    IF _incident_open.title IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'title must not be null';
    END IF;
    LOOP
        INSERT INTO adr_ops.incidents AS i (severity, title, summary, dedup_key, checks, opened_by)
        VALUES (_incident_open.severity, _incident_open.title, _incident_open.summary,
                _incident_open.dedup_key, coalesce(_incident_open.checks, '{}'),
                adr_ops._calling_role())
        ON CONFLICT (dedup_key) WHERE status <> 'closed' DO NOTHING
        RETURNING i.* INTO inc;
        IF inc.id IS NOT NULL THEN
            created := true;
            EXIT;
        END IF;
        SELECT i.id INTO _incident_open.id FROM adr_ops.incidents i
         WHERE i.dedup_key = _incident_open.dedup_key AND i.status <> 'closed';
        IF FOUND THEN
            created := false;
            RETURN;
        END IF;
    END LOOP;
    id := inc.id;
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
    VALUES (inc.id, adr_ops._calling_role(), 'opened',
            format('%s opened: %s', inc.severity, inc.title)
            || CASE WHEN cardinality(inc.checks) > 0
                    THEN format(' (checks not OK: %s)', array_to_string(inc.checks, ', ')) ELSE '' END);
    IF snapshot THEN
        ev := adr_ops.adr_evidence_snapshot(format('adr_ops incident %s', inc.id));
        INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message, evidence_id)
        VALUES (inc.id, adr_ops._calling_role(), 'evidence',
                format('evidence snapshot %s', ev), ev);
    END IF;
    PERFORM adr_ops._incident_notify(inc, 'trigger', 'opened');
END
$$;
COMMENT ON FUNCTION adr_ops._incident_open(text, text, text, text, text[], boolean) IS
    'API: private. Opens an incident or returns the one not closed with the same dedup key';
REVOKE ALL ON FUNCTION adr_ops._incident_open(text, text, text, text, text[], boolean) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_open(severity text, title text, summary text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    -- Opened by hand: a key of its own, never merged with another.
    SELECT * INTO r FROM adr_ops._incident_open(
        adr_incident_open.severity, adr_incident_open.title, adr_incident_open.summary,
        'manual:' || nextval('adr_ops.incidents_id_seq'),
        adr_ops._incident_checks_not_ok(), true);
    RETURN r.id;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_open(text, text, text) IS
    'opens an incident of severity P1, P2 or P3, takes an evidence snapshot, links the checks not OK; returns its id';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_open(text, text, text) FROM PUBLIC;

-- The transitions a person may make.
CREATE FUNCTION adr_ops._incident_next(status text) RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE status
        WHEN 'open' THEN '{acknowledged,mitigated,resolved}'
        WHEN 'acknowledged' THEN '{mitigated,resolved}'
        WHEN 'mitigated' THEN '{acknowledged,resolved,open}'
        WHEN 'resolved' THEN '{closed,open}'
        WHEN 'closed' THEN '{open}'
    END::text[]
$$;
COMMENT ON FUNCTION adr_ops._incident_next(text) IS
    'API: private. The statuses an incident may move to from a status';
REVOKE ALL ON FUNCTION adr_ops._incident_next(text) FROM PUBLIC;

CREATE FUNCTION adr_ops._incident_move(id bigint, status text, message text, status_update boolean)
RETURNS adr_ops.incidents
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc adr_ops.incidents;
    who name := adr_ops._calling_role();
    allowed text[];
    kind text;
BEGIN
    SELECT i.* INTO inc FROM adr_ops.incidents i WHERE i.id = _incident_move.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('incident %s does not exist', coalesce(_incident_move.id::text, 'NULL')),
            HINT = 'See adr_ops.incidents for the incidents.';
    END IF;
    IF _incident_move.status IS NULL
       OR _incident_move.status <> ALL ('{open,acknowledged,mitigated,resolved,closed}') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid incident status: %s', coalesce(_incident_move.status, 'NULL')),
            HINT = 'Use acknowledged, mitigated, resolved, closed or open.';
    END IF;
    allowed := adr_ops._incident_next(inc.status);
    IF _incident_move.status = inc.status AND NOT status_update THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('incident %s is already %s', inc.id, inc.status),
            DETAIL = format('Incident %s is %s.', inc.id, inc.status),
            HINT = format('From %s an incident may move to: %s.', inc.status, array_to_string(allowed, ', '));
    ELSIF _incident_move.status = inc.status THEN
        -- a status update without a transition: a note that says so
        INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
        VALUES (inc.id, who, 'update', coalesce(_incident_move.message, 'status unchanged: ' || inc.status));
        RETURN inc;
    END IF;
    IF _incident_move.status <> ALL (allowed) THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('cannot move incident %s from %s to %s', inc.id, inc.status, _incident_move.status),
            DETAIL = format('Incident %s is %s.', inc.id, inc.status),
            HINT = format('From %s an incident may move to: %s.', inc.status, array_to_string(allowed, ', '));
    END IF;
    IF _incident_move.status = 'closed' AND inc.postmortem IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('cannot close incident %s without a post-mortem', inc.id),
            DETAIL = format('Incident %s is %s.', inc.id, inc.status),
            HINT = 'Use adr_incident_close(id, postmortem); adr_incident_report(id) drafts it.';
    END IF;

    kind := CASE WHEN _incident_move.status = 'open' THEN 'reopened' ELSE _incident_move.status END;
    UPDATE adr_ops.incidents i SET
        status = _incident_move.status,
        acknowledged_at = CASE WHEN _incident_move.status = 'acknowledged' THEN clock_timestamp() ELSE i.acknowledged_at END,
        acknowledged_by = CASE WHEN _incident_move.status = 'acknowledged' THEN who ELSE i.acknowledged_by END,
        mitigated_at = CASE WHEN _incident_move.status = 'mitigated' THEN clock_timestamp() ELSE i.mitigated_at END,
        mitigated_by = CASE WHEN _incident_move.status = 'mitigated' THEN who ELSE i.mitigated_by END,
        resolved_at = CASE WHEN _incident_move.status = 'resolved' THEN clock_timestamp()
                           WHEN _incident_move.status = 'open' THEN NULL ELSE i.resolved_at END,
        resolved_by = CASE WHEN _incident_move.status = 'resolved' THEN who
                           WHEN _incident_move.status = 'open' THEN NULL ELSE i.resolved_by END,
        closed_at = CASE WHEN _incident_move.status = 'closed' THEN clock_timestamp()
                         WHEN _incident_move.status = 'open' THEN NULL ELSE i.closed_at END,
        closed_by = CASE WHEN _incident_move.status = 'closed' THEN who
                         WHEN _incident_move.status = 'open' THEN NULL ELSE i.closed_by END
     WHERE i.id = inc.id
    RETURNING i.* INTO inc;
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
    VALUES (inc.id, who, kind, _incident_move.message);
    IF _incident_move.status = 'acknowledged' AND inc.acknowledged_at IS NOT NULL THEN
        PERFORM adr_ops._incident_notify(inc, 'acknowledge', 'acknowledged by ' || who);
    ELSIF _incident_move.status = 'resolved' THEN
        PERFORM adr_ops._incident_notify(inc, 'resolve', coalesce(_incident_move.message, 'resolved by ' || who));
    ELSIF _incident_move.status = 'open' THEN
        PERFORM adr_ops._incident_notify(inc, 'trigger', coalesce('reopened: ' || _incident_move.message, 'reopened'));
    END IF;
    RETURN inc;
END
$$;
COMMENT ON FUNCTION adr_ops._incident_move(bigint, text, text, boolean) IS
    'API: private. Moves an incident to a status, records it and queues its notification';
REVOKE ALL ON FUNCTION adr_ops._incident_move(bigint, text, text, boolean) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_update(id bigint, status text, message text DEFAULT NULL)
RETURNS adr_ops.incidents
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT adr_ops._incident_move(id, status, message, true)
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_update(bigint, text, text) IS
    'moves an incident to a status (open, acknowledged, mitigated, resolved, closed) with a message; the same status records a status update';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_update(bigint, text, text) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_ack(id bigint)
RETURNS adr_ops.incidents
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT adr_ops._incident_move(id, 'acknowledged', NULL, false)
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_ack(bigint) IS
    'acknowledges an open incident: its escalation stops';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_ack(bigint) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_resolve(id bigint, message text)
RETURNS adr_ops.incidents
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT adr_ops._incident_move(id, 'resolved', message, false)
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_resolve(bigint, text) IS
    'resolves an incident with a message; the notification resolves the alert it triggered';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_resolve(bigint, text) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_reopen(id bigint, reason text)
RETURNS adr_ops.incidents
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT adr_ops._incident_move(id, 'open', reason, false)
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_reopen(bigint, text) IS
    'reopens a mitigated, resolved or closed incident, with the reason';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_reopen(bigint, text) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_close(id bigint, postmortem text)
RETURNS adr_ops.incidents
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc adr_ops.incidents;
BEGIN
    IF adr_incident_close.postmortem IS NULL OR btrim(adr_incident_close.postmortem) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'postmortem must not be empty',
            HINT = 'adr_incident_report(id) drafts it.';
    END IF;
    SELECT i.* INTO inc FROM adr_ops.incidents i WHERE i.id = adr_incident_close.id FOR UPDATE;
    IF FOUND AND inc.status = 'resolved' THEN
        UPDATE adr_ops.incidents i SET postmortem = adr_incident_close.postmortem WHERE i.id = inc.id;
    END IF;
    RETURN adr_ops._incident_move(adr_incident_close.id, 'closed', 'post-mortem recorded', false);
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_close(bigint, text) IS
    'closes a resolved incident with its post-mortem';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_close(bigint, text) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_note(id bigint, note text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ev bigint;
BEGIN
    IF adr_incident_note.note IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'note must not be null';
    END IF;
    PERFORM FROM adr_ops.incidents i WHERE i.id = adr_incident_note.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('incident %s does not exist', coalesce(adr_incident_note.id::text, 'NULL')),
            HINT = 'See adr_ops.incidents for the incidents.';
    END IF;
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
    VALUES (adr_incident_note.id, adr_ops._calling_role(), 'note', adr_incident_note.note)
    RETURNING incident_events.id INTO ev;
    RETURN ev;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_note(bigint, text) IS
    'adds a note to the timeline of an incident; returns the event id';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_note(bigint, text) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_severity(id bigint, severity text)
RETURNS adr_ops.incidents
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc adr_ops.incidents;
    old text;
BEGIN
    IF adr_incident_severity.severity IS NULL OR adr_incident_severity.severity <> ALL ('{P1,P2,P3}') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid incident severity: %s', coalesce(adr_incident_severity.severity, 'NULL')),
            HINT = 'Use P1, P2 or P3.';
    END IF;
    SELECT i.severity INTO old FROM adr_ops.incidents i WHERE i.id = adr_incident_severity.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('incident %s does not exist', coalesce(adr_incident_severity.id::text, 'NULL')),
            HINT = 'See adr_ops.incidents for the incidents.';
    END IF;
    UPDATE adr_ops.incidents i SET severity = adr_incident_severity.severity
     WHERE i.id = adr_incident_severity.id RETURNING i.* INTO inc;
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
    VALUES (inc.id, adr_ops._calling_role(), 'severity', format('severity %s -> %s', old, inc.severity));
    RETURN inc;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_severity(bigint, text) IS
    'changes the severity of an incident; the targets of the new one apply';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_severity(bigint, text) FROM PUBLIC;

-- Opening by itself: an alert that a policy matches opens an incident or
-- attaches to the one not closed with the same key; an OK alert marks
-- mitigated the incidents whose every linked check is OK again.
CREATE FUNCTION adr_ops._incident_from_alert(a adr_ops.alerts, p adr_ops.incident_policies)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM adr_ops._incident_open(
        p.severity, format('%s is %s', a.check_name, a.to_status), a.detail,
        replace(p.dedup_key, '{check}', a.check_name), ARRAY[a.check_name], true);
    UPDATE adr_ops.incidents i SET checks = i.checks || a.check_name
     WHERE i.id = r.id AND a.check_name <> ALL (i.checks);
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message, alert_id)
    VALUES (r.id, NULL, 'alert',
            format('alert %s: %s %s -> %s (policy %s)', a.id, a.check_name,
                   coalesce(a.from_status, 'none'), a.to_status, p.name), a.id);
    RETURN r.id;
END
$$;
COMMENT ON FUNCTION adr_ops._incident_from_alert(adr_ops.alerts, adr_ops.incident_policies) IS
    'API: private. Opens or attaches to the incident of an alert matched by a policy';
REVOKE ALL ON FUNCTION adr_ops._incident_from_alert(adr_ops.alerts, adr_ops.incident_policies) FROM PUBLIC;

CREATE FUNCTION adr_ops._incident_mitigate_if_ok(check_name text) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inc adr_ops.incidents;
    n integer := 0;
BEGIN
    FOR inc IN
        SELECT i.* FROM adr_ops.incidents i
         WHERE i.status IN ('open', 'acknowledged')
           AND _incident_mitigate_if_ok.check_name = ANY (i.checks)
           AND NOT EXISTS (SELECT FROM adr_ops.alerts a
                            WHERE a.check_name = ANY (i.checks) AND a.source <> 'incident'
                              AND a.id = (SELECT max(b.id) FROM adr_ops.alerts b
                                           WHERE b.check_name = a.check_name)
                              AND a.to_status <> 'OK')
         ORDER BY i.id
           FOR UPDATE
    LOOP
        UPDATE adr_ops.incidents i SET status = 'mitigated', mitigated_at = clock_timestamp(),
                                       mitigated_by = NULL
         WHERE i.id = inc.id;
        INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
        VALUES (inc.id, NULL, 'mitigated',
                format('every linked check is OK again: %s', array_to_string(inc.checks, ', ')));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION adr_ops._incident_mitigate_if_ok(text) IS
    'API: private. Marks mitigated the open incidents of a check whose linked checks are all OK';
REVOKE ALL ON FUNCTION adr_ops._incident_mitigate_if_ok(text) FROM PUBLIC;

CREATE FUNCTION adr_ops._incident_alert_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p adr_ops.incident_policies;
BEGIN
    IF NEW.source = 'incident' THEN
        RETURN NULL;
    END IF;
    -- A restore (pg_dump's scripts set check_function_bodies off) loads
    -- the health history, which raises alerts: history, not news.  Opening
    -- an incident then would also take ids the dump's own rows hold.
    IF current_setting('check_function_bodies') = 'off' THEN
        RETURN NULL;
    END IF;
    IF NEW.to_status = 'OK' THEN
        PERFORM adr_ops._incident_mitigate_if_ok(NEW.check_name);
        RETURN NULL;
    END IF;
    -- policies with a duration are applied by the incident_escalation task
    FOR p IN
        SELECT * FROM adr_ops.incident_policies ip
         WHERE ip.enabled AND ip.lasting = '0' AND ip.status = NEW.to_status
           AND NEW.check_name LIKE ip.check_pattern
         ORDER BY ip.severity, ip.name
         LIMIT 1
    LOOP
        PERFORM adr_ops._incident_from_alert(NEW, p);
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION adr_ops._incident_alert_trigger() IS
    'API: private. Opens or attaches to incidents for new alerts, marks them mitigated when their checks are OK';
REVOKE ALL ON FUNCTION adr_ops._incident_alert_trigger() FROM PUBLIC;
CREATE TRIGGER alerts_incidents
    AFTER INSERT ON adr_ops.alerts
    FOR EACH ROW EXECUTE FUNCTION adr_ops._incident_alert_trigger();

-- Escalation, run by the incident_escalation task every minute: an
-- incident past its target to acknowledge (still open) or to resolve
-- (open, acknowledged or mitigated) is escalated once per target since it
-- was opened or reopened, and notified again.  Policies with a duration
-- open their incidents here once the status has lasted that long.
CREATE FUNCTION adr_ops.adr_incident_escalate() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN
        SELECT (SELECT x FROM adr_ops.alerts x WHERE x.id = a.id) AS alert, p AS policy
          FROM adr_ops.incident_policies p
          JOIN LATERAL (SELECT DISTINCT ON (l.check_name) l.id, l.at, l.to_status
                          FROM adr_ops.alerts l
                         WHERE l.source <> 'incident' AND l.check_name LIKE p.check_pattern
                         ORDER BY l.check_name, l.id DESC) a ON true
         WHERE p.enabled AND p.lasting > '0' AND a.to_status = p.status
           AND a.at <= clock_timestamp() - p.lasting
           AND NOT EXISTS (SELECT FROM adr_ops.incident_events e
                            WHERE e.kind = 'alert' AND e.alert_id = a.id)
         ORDER BY a.id
    LOOP
        PERFORM adr_ops._incident_from_alert(r.alert, r.policy);
    END LOOP;

    FOR r IN
        SELECT i AS inc, t.target, t.due
          FROM adr_ops.incidents i
          JOIN adr_ops.incident_targets g ON g.severity = i.severity
          CROSS JOIN LATERAL (VALUES
                ('acknowledge', i.opened_at + g.ack_within, i.status = 'open'),
                ('resolve', i.opened_at + g.resolve_within, i.status IN ('open', 'acknowledged', 'mitigated'))
              ) t(target, due, applies)
         WHERE t.applies AND t.due <= clock_timestamp()
           AND NOT EXISTS (SELECT FROM adr_ops.incident_events e
                            WHERE e.incident_id = i.id AND e.kind = 'escalated'
                              AND e.message LIKE t.target || ' %'
                              AND e.id > (SELECT max(o.id) FROM adr_ops.incident_events o
                                           WHERE o.incident_id = i.id AND o.kind IN ('opened', 'reopened')))
         ORDER BY i.id, t.target
    LOOP
        INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
        VALUES ((r.inc).id, NULL, 'escalated',
                format('%s target missed: due %s', r.target, r.due));
        PERFORM adr_ops._incident_notify(r.inc, 'escalate',
                                         format('not %s within the %s target',
                                                CASE r.target WHEN 'acknowledge' THEN 'acknowledged' ELSE 'resolved' END,
                                                (r.inc).severity));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_escalate() IS
    'escalates and notifies again the incidents past their target to acknowledge or resolve, once per target; returns how many (the incident_escalation task)';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_escalate() FROM PUBLIC;

-- Reports for pg_monitor.
CREATE VIEW adr_ops.incident_status AS
    SELECT i.id, i.severity, i.status, i.title, i.opened_at, i.opened_by,
           i.acknowledged_at, i.acknowledged_by, i.resolved_at,
           i.acknowledged_at - i.opened_at AS time_to_acknowledge,
           i.resolved_at - i.opened_at AS time_to_resolve,
           i.opened_at OPERATOR(pg_catalog.+) t.ack_within AS ack_due,
           i.opened_at OPERATOR(pg_catalog.+) t.resolve_within AS resolve_due,
           (i.status OPERATOR(pg_catalog.=) 'open'
            AND i.opened_at OPERATOR(pg_catalog.+) t.ack_within OPERATOR(pg_catalog.<) pg_catalog.now()
            OR i.status OPERATOR(pg_catalog.=) ANY ('{open,acknowledged,mitigated}'::text[])
            AND i.opened_at OPERATOR(pg_catalog.+) t.resolve_within OPERATOR(pg_catalog.<) pg_catalog.now()) AS overdue,
           i.checks, i.dedup_key
      FROM adr_ops.incidents i
      LEFT JOIN adr_ops.incident_targets t ON t.severity OPERATOR(pg_catalog.=) i.severity;
COMMENT ON VIEW adr_ops.incident_status IS
    'incidents with their targets, times to acknowledge and resolve, and whether overdue';
GRANT SELECT ON adr_ops.incident_status TO pg_monitor;

-- The health row "incidents": how many incidents are past a target.
CREATE FUNCTION adr_ops._check_incidents() RETURNS SETOF adr_ops._health_reading
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'incidents', count(*) FILTER (WHERE s.overdue)::numeric, 'incidents',
           CASE WHEN count(*) FILTER (WHERE s.overdue) > 0
                THEN format('overdue: %s', string_agg(format('%s %s (%s)', s.severity, s.id, s.status), ', '
                                                      ORDER BY s.severity, s.id) FILTER (WHERE s.overdue))
                ELSE format('%s not closed, none overdue', count(*)) END,
           NULL, NULL
      FROM adr_ops.incident_status s
     WHERE s.status <> 'closed'
$$;
REVOKE ALL ON FUNCTION adr_ops._check_incidents() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops._check_incidents() TO pg_monitor;
INSERT INTO adr_ops.health_thresholds (check_name, warn, crit) VALUES ('incidents', 0, 0);
INSERT INTO adr_ops.health_checks (name, position) VALUES ('incidents', 175);

INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('incident_escalation', '* * * * *', 'incident_escalation', pg_catalog.current_database());

-- What the webhook carries, in the format adr_ops.alert_format names:
-- generic (the alert; an incident's adds incident_id and incident_event),
-- pagerduty (Events API v2: trigger, acknowledge and resolve of an
-- incident share one dedup_key; the routing key is added by the delivery,
-- never stored) or alertmanager (its webhook format, one alert a post).
CREATE OR REPLACE FUNCTION adr_ops._alert_payload(a adr_ops.alerts) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE coalesce(current_setting('adr_ops.alert_format', true), 'generic')
    WHEN 'pagerduty' THEN
        json_build_object(
            'event_action', CASE WHEN a.source = 'incident' AND a.incident_event IN ('acknowledge', 'resolve')
                                 THEN a.incident_event
                                 WHEN a.source <> 'incident' AND a.to_status = 'OK' THEN 'resolve'
                                 ELSE 'trigger' END,
            'dedup_key', k.key,
            'payload', json_build_object(
                'summary', left(coalesce(a.detail, a.check_name || ' is ' || a.to_status), 1024),
                'source', k.src,
                'severity', k.severity,
                'timestamp', a.at,
                'component', a.check_name,
                'class', a.source,
                'custom_details', json_build_object(
                    'alert_id', a.id, 'from_status', a.from_status, 'to_status', a.to_status,
                    'incident_id', a.incident_id, 'incident_event', a.incident_event)))::text
    WHEN 'alertmanager' THEN
        json_build_object(
            'version', '4', 'groupKey', k.key, 'truncatedAlerts', 0,
            'status', k.am_status, 'receiver', 'adr_ops',
            'groupLabels', json_build_object('alertname', k.name),
            'commonLabels', k.labels, 'commonAnnotations', k.annotations,
            'externalURL', '',
            'alerts', json_build_array(json_build_object(
                'status', k.am_status, 'labels', k.labels, 'annotations', k.annotations,
                'startsAt', coalesce(k.opened_at, a.at),
                'endsAt', CASE WHEN k.am_status = 'resolved' THEN to_json(a.at)
                               ELSE to_json('0001-01-01T00:00:00Z'::text) END,
                'generatorURL', '', 'fingerprint', md5(k.key))))::text
    WHEN 'generic' THEN
        CASE WHEN a.source = 'incident'
             THEN json_build_object('id', a.id, 'at', a.at, 'source', a.source,
                                    'check_name', a.check_name, 'from_status', a.from_status,
                                    'to_status', a.to_status, 'detail', left(a.detail, 2000),
                                    'incident_id', a.incident_id, 'incident_event', a.incident_event)::text
             ELSE json_build_object('id', a.id, 'at', a.at, 'source', a.source,
                                    'check_name', a.check_name, 'from_status', a.from_status,
                                    'to_status', a.to_status, 'detail', left(a.detail, 2000))::text END
    END
      FROM (SELECT format('adr_ops/%s/%s', current_database(),
                          CASE WHEN a.source = 'incident' THEN 'incident/' || a.incident_id
                               ELSE 'check/' || a.check_name END) AS key,
                   coalesce(nullif(current_setting('cluster_name'), ''), 'postgresql') || '/' || current_database() AS src,
                   CASE a.to_status WHEN 'CRITICAL' THEN 'critical' WHEN 'WARNING' THEN 'warning'
                                    WHEN 'UNKNOWN' THEN 'error' ELSE 'info' END AS severity,
                   CASE WHEN a.to_status = 'OK' THEN 'resolved' ELSE 'firing' END AS am_status,
                   CASE WHEN a.source = 'incident' THEN 'adr_ops_incident' ELSE 'adr_ops_check' END AS name,
                   json_build_object('alertname', CASE WHEN a.source = 'incident' THEN 'adr_ops_incident' ELSE 'adr_ops_check' END,
                                     'severity', coalesce(i.severity, lower(a.to_status)),
                                     'check', a.check_name, 'source', a.source,
                                     'incident', a.incident_id::text,
                                     'instance', coalesce(nullif(current_setting('cluster_name'), ''), 'postgresql')
                                                 || '/' || current_database()) AS labels,
                   json_build_object('summary', coalesce(i.title, a.check_name || ' is ' || a.to_status),
                                     'description', left(a.detail, 2000),
                                     'event', a.incident_event) AS annotations,
                   i.opened_at
              FROM (SELECT) dummy
              LEFT JOIN adr_ops.incidents i ON i.id = a.incident_id) k
$$;
COMMENT ON FUNCTION adr_ops._alert_payload(adr_ops.alerts) IS
    'API: private. The JSON of an alert for the webhook, in the format adr_ops.alert_format names';

-- Follow-up actions: added with an owner, their state changed until done.
CREATE FUNCTION adr_ops.adr_incident_action(id bigint, action text, owner text DEFAULT NULL,
                                            due date DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    aid bigint;
BEGIN
    IF adr_incident_action.action IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'action must not be null';
    END IF;
    PERFORM FROM adr_ops.incidents i WHERE i.id = adr_incident_action.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('incident %s does not exist', coalesce(adr_incident_action.id::text, 'NULL')),
            HINT = 'See adr_ops.incidents for the incidents.';
    END IF;
    INSERT INTO adr_ops.incident_actions (incident_id, action, owner, due)
    VALUES (adr_incident_action.id, adr_incident_action.action, adr_incident_action.owner,
            adr_incident_action.due)
    RETURNING incident_actions.id INTO aid;
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
    VALUES (adr_incident_action.id, adr_ops._calling_role(), 'action',
            format('follow-up %s: %s (owner %s)', aid, adr_incident_action.action,
                   coalesce(adr_incident_action.owner, 'none')));
    RETURN aid;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_action(bigint, text, text, date) IS
    'adds a follow-up action with an owner to an incident; returns its id';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_action(bigint, text, text, date) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_incident_action_state(action_id bigint, state text)
RETURNS adr_ops.incident_actions
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a adr_ops.incident_actions;
BEGIN
    IF adr_incident_action_state.state IS NULL OR adr_incident_action_state.state <> ALL ('{open,done,dropped}') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid action state: %s', coalesce(adr_incident_action_state.state, 'NULL')),
            HINT = 'Use open, done or dropped.';
    END IF;
    UPDATE adr_ops.incident_actions x SET state = adr_incident_action_state.state
     WHERE x.id = adr_incident_action_state.action_id RETURNING x.* INTO a;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('follow-up action %s does not exist', coalesce(adr_incident_action_state.action_id::text, 'NULL')),
            HINT = 'See adr_ops.incident_actions for the actions.';
    END IF;
    INSERT INTO adr_ops.incident_events (incident_id, actor, kind, message)
    VALUES (a.incident_id, adr_ops._calling_role(), 'action',
            format('follow-up %s is %s', a.id, a.state));
    RETURN a;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_action_state(bigint, text) IS
    'sets the state of a follow-up action: open, done or dropped';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_action_state(bigint, text) FROM PUBLIC;

-- The merged timeline of an incident: its own events, and within its
-- window (an hour before it opened until it was resolved, or now) the
-- alerts, health status changes, task runs, job failures and restarts,
-- security actions and evidence snapshots.
CREATE FUNCTION adr_ops.adr_incident_timeline(id bigint,
                                              OUT at timestamptz, OUT source text, OUT what text)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH i AS (
        SELECT x.*, x.opened_at - interval '1 hour' AS w_from,
               coalesce(x.closed_at, x.resolved_at, clock_timestamp()) AS w_to
          FROM adr_ops.incidents x WHERE x.id = adr_incident_timeline.id
    )
    SELECT t.at, t.source, t.what FROM (
        SELECT e.at, 'incident' AS source,
               e.kind || coalesce(' by ' || e.actor, '') || coalesce(': ' || e.message, '') AS what
          FROM adr_ops.incident_events e, i WHERE e.incident_id = i.id
        UNION ALL
        SELECT a.at, 'alert', format('%s %s -> %s%s', a.check_name, coalesce(a.from_status, 'none'),
                                     a.to_status, coalesce(': ' || left(a.detail, 200), ''))
          FROM adr_ops.alerts a, i
         WHERE a.at BETWEEN i.w_from AND i.w_to
           AND (a.source <> 'incident' OR a.incident_id = i.id)
        UNION ALL
        SELECT h.taken_at, 'health', format('%s %s -> %s', h.check_name, h.prev, h.status)
          FROM (SELECT hh.*, lag(hh.status) OVER (PARTITION BY hh.check_name ORDER BY hh.taken_at) AS prev
                  FROM adr_ops.health_history hh, i
                 WHERE hh.taken_at BETWEEN i.w_from - interval '1 day' AND i.w_to) h, i
         WHERE h.taken_at BETWEEN i.w_from AND i.w_to AND h.prev IS DISTINCT FROM h.status
           AND h.prev IS NOT NULL
        UNION ALL
        SELECT r.started_at, 'task', format('%s %s%s', r.task, r.status, coalesce(': ' || left(r.detail, 200), ''))
          FROM adr_ops.task_runs r, i
         WHERE r.started_at BETWEEN i.w_from AND i.w_to
           AND (r.status IN ('failed', 'skipped') OR r.task <> ALL ('{alert_delivery,incident_escalation,health_snapshot}'))
        UNION ALL
        SELECT j.at, 'job', format('job %s %s -> %s by %s%s', j.job_id, coalesce(j.from_status, 'none'),
                                   j.to_status, j.actor, coalesce(': ' || j.note, ''))
          FROM adr_ops.job_events j, i
         WHERE j.at BETWEEN i.w_from AND i.w_to
           AND (j.to_status = 'failed' OR j.from_status = 'failed' OR j.note = 'restart')
        UNION ALL
        SELECT s.at, 'security', format('%s %s by %s%s', s.action, coalesce(s.target, ''), s.actor,
                                        coalesce(': ' || s.detail, ''))
          FROM adr_ops.security_actions s, i WHERE s.at BETWEEN i.w_from AND i.w_to
        UNION ALL
        SELECT v.taken_at, 'evidence', format('snapshot %s "%s" by %s', v.id, v.label, v.taken_by)
          FROM adr_ops.evidence v, i WHERE v.taken_at BETWEEN i.w_from AND i.w_to
    ) t
    ORDER BY t.at, t.source
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_timeline(bigint) IS
    'the merged timeline of an incident: its events, and in its window the alerts, health changes, task runs, job failures and restarts, security actions and evidence';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_timeline(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_incident_timeline(bigint) TO pg_monitor;

-- A duration as the report shows it, whatever IntervalStyle: 1d 02:03:04.
CREATE FUNCTION adr_ops._incident_duration(d interval) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT to_char(justify_hours(date_trunc('second', d)), 'FMDD"d" HH24:MI:SS')
$$;
COMMENT ON FUNCTION adr_ops._incident_duration(interval) IS
    'API: private. A duration for the incident report: days, then HH:MI:SS';
REVOKE ALL ON FUNCTION adr_ops._incident_duration(interval) FROM PUBLIC;

-- The post-mortem draft, in Markdown.  Both reports are SECURITY DEFINER
-- so that pg_monitor gets them whole: they show of the evidence only its
-- id, label and taker, of the rest what the timeline needs.
CREATE FUNCTION adr_ops.adr_incident_report(id bigint) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    i adr_ops.incidents;
    t adr_ops.incident_targets;
    md text;
    tl text;
    impact text;
    acts text;
    fmt_i text := 'YYYY-MM-DD HH24:MI:SS TZ';
BEGIN
    SELECT x.* INTO i FROM adr_ops.incidents x WHERE x.id = adr_incident_report.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('incident %s does not exist', coalesce(adr_incident_report.id::text, 'NULL')),
            HINT = 'See adr_ops.incidents for the incidents.';
    END IF;
    SELECT x.* INTO t FROM adr_ops.incident_targets x WHERE x.severity = i.severity;

    -- impact: each linked check and job, from its first non-OK alert in
    -- the window to its next OK one (or still)
    SELECT string_agg(format('| %s | %s | %s | %s |', c.name, c.kind,
                             coalesce(to_char(c.since, fmt_i), '-'),
                             coalesce(adr_ops._incident_duration(c.until - c.since),
                                      CASE WHEN c.since IS NULL THEN '-' ELSE 'still not OK' END)),
                      E'\n' ORDER BY c.name)
      INTO impact
      FROM (SELECT ch AS name,
                   CASE WHEN ch LIKE 'probe:%' THEN 'probe' ELSE 'check' END AS kind,
                   s.since,
                   (SELECT min(a.at) FROM adr_ops.alerts a
                     WHERE a.check_name = ch AND a.to_status = 'OK' AND a.at > s.since) AS until
              FROM unnest(i.checks) ch
              CROSS JOIN LATERAL (
                    SELECT min(a.at) AS since FROM adr_ops.alerts a
                     WHERE a.check_name = ch AND a.to_status <> 'OK'
                       AND a.at >= i.opened_at - interval '1 day'
                       AND a.at <= coalesce(i.resolved_at, clock_timestamp())) s
            UNION ALL
            SELECT 'job ' || j, 'job',
                   (SELECT min(e.at) FROM adr_ops.job_events e WHERE e.job_id = j AND e.to_status = 'failed'),
                   (SELECT max(e.at) FROM adr_ops.job_events e WHERE e.job_id = j AND e.to_status = 'succeeded')
              FROM unnest(i.jobs) j) c;

    SELECT string_agg(format('| %s | %s | %s |', to_char(x.at, fmt_i), x.source,
                             replace(replace(x.what, '|', '\|'), E'\n', ' ')), E'\n' ORDER BY x.at, x.source)
      INTO tl FROM adr_ops.adr_incident_timeline(i.id) x;

    SELECT string_agg(format('| %s | %s | %s | %s | %s |', a.id, replace(a.action, '|', '\|'),
                             coalesce(a.owner, '-'), a.state, coalesce(to_char(a.due, 'YYYY-MM-DD'), '-')), E'\n' ORDER BY a.id)
      INTO acts FROM adr_ops.incident_actions a WHERE a.incident_id = i.id;

    md := format(E'# Incident %s: %s\n\n', i.id, i.title)
       || format(E'- Severity: %s\n- Status: %s\n- Opened: %s by %s\n', i.severity, i.status,
                 to_char(i.opened_at, fmt_i), coalesce(i.opened_by, 'adr_ops'))
       || coalesce(format(E'- Acknowledged: %s by %s\n', to_char(i.acknowledged_at, fmt_i), i.acknowledged_by), '')
       || coalesce(format(E'- Mitigated: %s by %s\n', to_char(i.mitigated_at, fmt_i), coalesce(i.mitigated_by, 'adr_ops (checks OK)')), '')
       || coalesce(format(E'- Resolved: %s by %s\n', to_char(i.resolved_at, fmt_i), i.resolved_by), '')
       || coalesce(format(E'- Closed: %s by %s\n', to_char(i.closed_at, fmt_i), i.closed_by), '')
       || coalesce(format(E'- Maintenance window of the fix: %s\n', i.maintenance_window), '')
       || E'\n## Summary\n\n' || coalesce(i.summary, '(none)') || E'\n'
       || E'\n## Time to acknowledge and resolve\n\n| | took | target | met |\n|---|---|---|---|\n'
       || format(E'| acknowledge | %s | %s | %s |\n',
                 coalesce(adr_ops._incident_duration(i.acknowledged_at - i.opened_at), 'not yet'), adr_ops._incident_duration(t.ack_within),
                 CASE WHEN i.acknowledged_at IS NULL THEN '-' WHEN i.acknowledged_at - i.opened_at <= t.ack_within THEN 'yes' ELSE 'no' END)
       || format(E'| resolve | %s | %s | %s |\n',
                 coalesce(adr_ops._incident_duration(i.resolved_at - i.opened_at), 'not yet'), adr_ops._incident_duration(t.resolve_within),
                 CASE WHEN i.resolved_at IS NULL THEN '-' WHEN i.resolved_at - i.opened_at <= t.resolve_within THEN 'yes' ELSE 'no' END)
       || E'\n## Impact\n\n'
       || CASE WHEN impact IS NULL THEN E'No check, probe or job linked.\n'
               ELSE E'| affected | kind | not OK since | for |\n|---|---|---|---|\n' || impact || E'\n' END
       || E'\n## Timeline\n\n| at | source | what |\n|---|---|---|\n' || coalesce(tl, '') || E'\n'
       || E'\n## Follow-up actions\n\n'
       || CASE WHEN acts IS NULL THEN E'None yet: add them with adr_incident_action().\n'
               ELSE E'| # | action | owner | state | due |\n|---|---|---|---|---|\n' || acts || E'\n' END
       || E'\n## Post-mortem\n\n' || coalesce(i.postmortem, E'(to be written: root cause, what went well, what to change)') || E'\n';
    RETURN md;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_incident_report(bigint) IS
    'the post-mortem draft of an incident in Markdown: summary, severity, impact, merged timeline, times to acknowledge and resolve, follow-up actions';
REVOKE ALL ON FUNCTION adr_ops.adr_incident_report(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION adr_ops.adr_incident_report(bigint) TO pg_monitor;
