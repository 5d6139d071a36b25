--
-- Incidents: targets and policies, transitions and the refused ones, the
-- append-only timeline, opening by itself from alerts, mitigation when the
-- checks are OK again, escalation past a target, the health row and who may
-- call what.  The race of concurrent alerts is specs/incident_one_per_key.spec;
-- the webhook path end to end is t/017_incidents.pl.
--
\set VERBOSITY terse
UPDATE adr_ops.schedules SET enabled = false;
DELETE FROM adr_ops.alerts;
-- (a superuser may empty the timeline: the tests before left incidents)
DELETE FROM adr_ops.incident_events;
DELETE FROM adr_ops.incidents;
SELECT setval('adr_ops.incidents_id_seq', 100) AS from_101;

-- The runbook's targets and the default policies.
SELECT * FROM adr_ops.incident_targets ORDER BY severity;
SELECT * FROM adr_ops.incident_policies ORDER BY name;
SELECT name, schedule, task FROM adr_ops.schedules WHERE task = 'incident_escalation';

-- Opened by hand: errors first.
SELECT adr_ops.adr_incident_open('P4', 'x');
SELECT adr_ops.adr_incident_open(NULL, 'x');
SELECT adr_ops.adr_incident_open('P2', NULL);

-- The checks not OK (as their last alert says) are linked; an evidence
-- snapshot is taken; a trigger notification is queued.
INSERT INTO adr_ops.alerts (source, check_name, from_status, to_status, detail) VALUES
    ('health', 'disk', NULL, 'WARNING', 'disk 85%'),
    ('health', 'connections', NULL, 'CRITICAL', 'connections 95%'),
    ('health', 'connections', 'CRITICAL', 'OK', 'connections 10%');
SELECT adr_ops.adr_incident_open('P2', 'slow disk', 'queries wait on I/O') AS inc \gset
SELECT severity, title, summary, status, checks, opened_by = current_user AS by_me, dedup_key LIKE 'manual:%' AS manual
  FROM adr_ops.incidents WHERE id = :inc;
SELECT kind, actor = current_user AS by_me, message ~ '^(P2 opened|evidence snapshot \d+|trigger queued as alert \d+)' AS msg,
       evidence_id IS NOT NULL AS evidence, alert_id IS NOT NULL AS alert
  FROM adr_ops.incident_events WHERE incident_id = :inc ORDER BY id;
SELECT e.label = 'adr_ops incident ' || :inc AS labelled FROM adr_ops.evidence e
  JOIN adr_ops.incident_events ev ON ev.evidence_id = e.id WHERE ev.incident_id = :inc;
SELECT source, check_name = 'incident:' || :inc AS named, to_status, incident_event, detail
  FROM adr_ops.alerts WHERE incident_id = :inc ORDER BY id;

-- Refused transitions say why.
\set VERBOSITY default
SELECT status FROM adr_ops.adr_incident_update(:inc, 'closed', 'too early');
SELECT status FROM adr_ops.adr_incident_reopen(:inc, 'not closed');
SELECT status FROM adr_ops.adr_incident_update(:inc, 'done', NULL);
SELECT status FROM adr_ops.adr_incident_update(-1, 'resolved', NULL);
SELECT adr_ops.adr_incident_note(-1, 'x');
SELECT status FROM adr_ops.adr_incident_severity(:inc, 'P0');
\set VERBOSITY terse

-- The path: note, severity, acknowledge, a status update, resolve, close, reopen.
SELECT adr_ops.adr_incident_note(:inc, 'looking at iostat') > 0 AS noted;
SELECT severity FROM adr_ops.adr_incident_severity(:inc, 'P1');
SELECT status, acknowledged_by = current_user AS by_me, acknowledged_at IS NOT NULL AS at
  FROM adr_ops.adr_incident_ack(:inc);
SELECT status FROM adr_ops.adr_incident_ack(:inc);
SELECT status FROM adr_ops.adr_incident_update(:inc, 'acknowledged', 'still investigating');
SELECT status, resolved_by = current_user AS by_me FROM adr_ops.adr_incident_resolve(:inc, 'disk replaced');
SELECT status FROM adr_ops.adr_incident_close(:inc, '');
SELECT status, postmortem, closed_by = current_user AS by_me FROM adr_ops.adr_incident_close(:inc, 'root cause: a failing disk');
SELECT status FROM adr_ops.adr_incident_close(:inc, 'again');
SELECT status, resolved_at, closed_at FROM adr_ops.adr_incident_reopen(:inc, 'it came back');
SELECT kind, message FROM adr_ops.incident_events
 WHERE incident_id = :inc AND kind NOT IN ('opened', 'evidence', 'notified') ORDER BY id;
SELECT incident_event, to_status FROM adr_ops.alerts WHERE incident_id = :inc ORDER BY id;
SELECT status FROM adr_ops.adr_incident_resolve(:inc, 'again');

-- The timeline is append-only for roles that are not superuser.
CREATE ROLE incident_oncall;
GRANT USAGE ON SCHEMA adr_ops TO incident_oncall;
GRANT SELECT, UPDATE, DELETE ON adr_ops.incident_events TO incident_oncall;
GRANT EXECUTE ON FUNCTION adr_ops.adr_incident_note(bigint, text),
                          adr_ops.adr_incident_ack(bigint) TO incident_oncall;
SET ROLE incident_oncall;
UPDATE adr_ops.incident_events SET message = 'rewritten' WHERE incident_id = :inc;
DELETE FROM adr_ops.incident_events WHERE incident_id = :inc;
-- a granted role records its own name; an action not granted is refused
SELECT adr_ops.adr_incident_note(:inc, 'on-call here') > 0 AS noted;
SELECT adr_ops.adr_incident_resolve(:inc, 'no');
SELECT adr_ops.adr_incident_open('P3', 'no');
RESET ROLE;
SELECT actor, message FROM adr_ops.incident_events WHERE incident_id = :inc AND kind = 'note' ORDER BY id;
REVOKE ALL ON adr_ops.incident_events FROM incident_oncall;
REVOKE ALL ON FUNCTION adr_ops.adr_incident_note(bigint, text), adr_ops.adr_incident_ack(bigint) FROM incident_oncall;
REVOKE USAGE ON SCHEMA adr_ops FROM incident_oncall;
DROP ROLE incident_oncall;

-- Opening by itself: a CRITICAL probe opens a P2, another alert of the
-- same check attaches to it; a check no policy names opens nothing.
DELETE FROM adr_ops.alerts;
INSERT INTO adr_ops.alerts (source, check_name, from_status, to_status, detail) VALUES
    ('probe', 'probe:api', NULL, 'CRITICAL', 'http://api/: HTTP 503'),
    ('health', 'load', NULL, 'CRITICAL', 'load 40');
INSERT INTO adr_ops.alerts (source, check_name, from_status, to_status, detail) VALUES
    ('probe', 'probe:api', 'OK', 'CRITICAL', 'http://api/: timeout'),
    ('probe', 'probe:api', 'OK', 'WARNING', 'not a policy status');
SELECT id AS auto FROM adr_ops.incidents WHERE dedup_key = 'probe:api' \gset
SELECT severity, title, summary, status, checks, opened_by IS NOT NULL AS by
  FROM adr_ops.incidents WHERE id = :auto;
SELECT count(*) AS incidents_of_load FROM adr_ops.incidents WHERE 'load' = ANY (checks) AND id <> :inc;
SELECT kind, message ~ '^alert \d+: probe:api (none|OK) -> CRITICAL \(policy probes\)$' AS alert_msg
  FROM adr_ops.incident_events WHERE incident_id = :auto AND kind = 'alert' ORDER BY id;

-- A policy with its own key groups checks: two backups, one P1.
INSERT INTO adr_ops.incident_policies (name, check_pattern, severity, dedup_key)
    VALUES ('replicas', 'replica:%', 'P1', 'replicas');
INSERT INTO adr_ops.alerts (source, check_name, from_status, to_status) VALUES
    ('health', 'replica:a', NULL, 'CRITICAL'), ('health', 'replica:b', NULL, 'CRITICAL');
SELECT id AS grp FROM adr_ops.incidents WHERE dedup_key = 'replicas' \gset
SELECT severity, status, checks FROM adr_ops.incidents WHERE dedup_key = 'replicas';

-- Mitigated when every linked check is OK again, never resolved nor closed.
INSERT INTO adr_ops.alerts (source, check_name, from_status, to_status) VALUES
    ('health', 'replica:a', 'CRITICAL', 'OK');
SELECT status FROM adr_ops.incidents WHERE id = :grp;
INSERT INTO adr_ops.alerts (source, check_name, from_status, to_status) VALUES
    ('health', 'replica:b', 'CRITICAL', 'OK');
SELECT status, mitigated_at IS NOT NULL AS at, resolved_at, closed_at FROM adr_ops.incidents WHERE id = :grp;
SELECT kind, actor, message FROM adr_ops.incident_events WHERE incident_id = :grp AND kind = 'mitigated';

-- A policy with a duration: the escalation pass opens it once the status lasted.
INSERT INTO adr_ops.incident_policies (name, check_pattern, severity, lasting)
    VALUES ('slow', 'vacuum_age', 'P3', '1 hour');
INSERT INTO adr_ops.alerts (at, source, check_name, from_status, to_status) VALUES
    (now() - interval '2 hours', 'health', 'vacuum_age', NULL, 'CRITICAL');
SELECT count(*) AS before FROM adr_ops.incidents WHERE dedup_key = 'vacuum_age';
UPDATE adr_ops.incident_targets SET ack_within = '1 day', resolve_within = '1 day';
SELECT adr_ops.adr_incident_escalate() AS escalated;
SELECT severity, status, checks FROM adr_ops.incidents WHERE dedup_key = 'vacuum_age';
SELECT adr_ops.adr_incident_escalate() AS escalated_again;

-- Escalation: short targets make them overdue; once per target.
SELECT check_name, status, value, detail FROM adr_ops.adr_health_check() WHERE check_name = 'incidents';
UPDATE adr_ops.incident_targets SET ack_within = '1 second', resolve_within = '1 hour';
UPDATE adr_ops.incidents SET opened_at = opened_at - interval '1 minute' WHERE status <> 'closed';
SELECT id, severity, status, overdue FROM adr_ops.incident_status WHERE status <> 'closed' ORDER BY id;
SELECT adr_ops.adr_incident_escalate() AS escalated;
SELECT adr_ops.adr_incident_escalate() AS escalated_again;
SELECT i.dedup_key, e.message ~ '^acknowledge target missed: due ' AS msg
  FROM adr_ops.incident_events e JOIN adr_ops.incidents i ON i.id = e.incident_id
 WHERE e.kind = 'escalated' ORDER BY e.id;
SELECT a.incident_event, a.to_status, i.dedup_key
  FROM adr_ops.alerts a JOIN adr_ops.incidents i ON i.id = a.incident_id
 WHERE a.incident_event = 'escalate' ORDER BY a.id;
SELECT check_name, status, value, detail ~ '^overdue: ' AS overdue FROM adr_ops.adr_health_check() WHERE check_name = 'incidents';
-- acknowledging stops the acknowledge escalation; the resolve target still holds
SELECT status FROM adr_ops.adr_incident_ack(:auto);
UPDATE adr_ops.incident_targets SET resolve_within = '2 seconds';
SELECT adr_ops.adr_incident_escalate() AS escalated;
SELECT message ~ '^resolve target missed' AS resolve FROM adr_ops.incident_events
 WHERE incident_id = :auto AND kind = 'escalated' ORDER BY id;

-- pg_monitor reads the reports, cannot act.
SET ROLE pg_monitor;
SELECT count(*) > 0 AS reads FROM adr_ops.incident_status;
SELECT count(*) > 0 AS reads FROM adr_ops.incident_events;
SELECT adr_ops.adr_incident_ack(:auto);
RESET ROLE;

-- Follow-up actions and the post-mortem draft.
SELECT adr_ops.adr_incident_action(:inc, 'alert on disk latency', 'storage team', '2030-01-31') > 0 AS added;
SELECT action, owner, state FROM adr_ops.adr_incident_action_state(
    (SELECT max(id) FROM adr_ops.incident_actions WHERE incident_id = :inc), 'done');
SELECT adr_ops.adr_incident_action_state(-1, 'done');
SELECT adr_ops.adr_incident_action_state(1, 'finished');
SELECT adr_ops.adr_incident_report(-1);
SELECT adr_ops.adr_incident_report(:inc) AS report \gset
SELECT line FROM regexp_split_to_table(:'report', E'\n') line
 WHERE line ~ '^(#|- (Severity|Status)|\| (acknowledge|resolve|disk) )' ORDER BY line;
SELECT :'report' ~ E'\\| incident \\| acknowledged by postgres \\|' AS ack_in_timeline,
       :'report' ~ E'\\| evidence \\| snapshot \\d+ "adr_ops incident 105" by postgres \\|' AS evidence_in_timeline,
       :'report' ~ E'\\| \\d+ \\| alert on disk latency \\| storage team \\| done \\| 2030-01-31 \\|' AS action_row,
       :'report' ~ E'## Post-mortem\n\nroot cause: a failing disk' AS postmortem;
SELECT source, count(*) > 0 AS some FROM adr_ops.adr_incident_timeline(:inc)
 WHERE source IN ('evidence', 'incident') GROUP BY source ORDER BY source;
SET ROLE pg_monitor;
SELECT adr_ops.adr_incident_report(:auto) AS report \gset
SELECT :'report' ~ '^# Incident \d+: probe:api is CRITICAL' AS monitor_reads_report,
       :'report' ~ E'\\| alert \\| probe:api none -> CRITICAL: http://api/: HTTP 503 \\|' AS alert_in_timeline,
       :'report' ~ E'\\| probe:api \\| probe \\| \\d{4}-' AS impact_row;
RESET ROLE;

-- Back to defaults for the tests that follow.
DELETE FROM adr_ops.incident_policies WHERE name IN ('replicas', 'slow');
UPDATE adr_ops.incident_targets t SET ack_within = d.a, resolve_within = d.r
  FROM (VALUES ('P1', interval '15 minutes', interval '4 hours'), ('P2', '1 hour', '8 hours'),
               ('P3', '1 day', '7 days')) d(s, a, r) WHERE t.severity = d.s;
