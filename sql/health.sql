--
-- The health check: its shape, the threshold rules, the history.
-- Readings vary from run to run, so only names, statuses and ranges print.
--
SELECT check_name, unit, warn, crit
  FROM adr_ops.adr_health_check()
 ORDER BY check_name;

SELECT count(*) AS bad_rows
  FROM adr_ops.adr_health_check()
 WHERE status NOT IN ('OK', 'WARNING', 'CRITICAL', 'UNKNOWN')
    OR detail IS NULL OR detail = '';

-- pg_regress' server has no logging collector: that check is UNKNOWN, with
-- the reason, and the others are unharmed.
SELECT status, detail FROM adr_ops.adr_health_check() WHERE check_name = 'recent_errors';

-- Host readings are real numbers on Linux.
SELECT kind, name, total_bytes > 0 AS has_total, used_bytes >= 0 AS has_used,
       available_bytes >= 0 AS has_available, used_pct BETWEEN 0 AND 100 AS pct_ok,
       error IS NULL AS read_ok
  FROM adr_ops.adr_host_disk() ORDER BY kind, name;
SELECT kind, total_bytes > 0 OR kind = 'swap' AS has_total,
       used_bytes + free_bytes <= total_bytes OR kind = 'mem' AS consistent,
       error IS NULL AS read_ok
  FROM adr_ops.adr_host_memory() ORDER BY kind;
SELECT load1 >= 0 AND load5 >= 0 AND load15 >= 0 AS loads_ok, cpus >= 1 AS cpus_ok, error
  FROM adr_ops.adr_host_load();

-- A tablespace gets its own disk row.
SET allow_in_place_tablespaces = on;
CREATE TABLESPACE adr_regress_ts LOCATION '';
RESET allow_in_place_tablespaces;
SELECT check_name, unit, warn, crit, status IN ('OK', 'WARNING', 'CRITICAL') AS judged
  FROM adr_ops.adr_health_check() WHERE check_name LIKE 'disk%' ORDER BY check_name;
SELECT kind, name, path LIKE '%/pg_tblspc/%' AS path_in_place
  FROM adr_ops.adr_host_disk() WHERE kind = 'tablespace';
-- A threshold row for the object wins over the row for its kind.
INSERT INTO adr_ops.health_thresholds VALUES ('disk_tablespace:adr_regress_ts', -2, -1);
SELECT check_name, warn, crit, status
  FROM adr_ops.adr_health_check() WHERE check_name LIKE 'disk%' ORDER BY check_name;
DELETE FROM adr_ops.health_thresholds WHERE check_name = 'disk_tablespace:adr_regress_ts';
DROP TABLESPACE adr_regress_ts;

-- Thresholds: a reading beyond warn is WARNING, beyond crit CRITICAL.
UPDATE adr_ops.health_thresholds SET warn = -1, crit = 1000000 WHERE check_name = 'connections';
SELECT check_name, status FROM adr_ops.adr_health_check() WHERE check_name = 'connections';
UPDATE adr_ops.health_thresholds SET warn = -2, crit = -1 WHERE check_name = 'connections';
SELECT check_name, status FROM adr_ops.adr_health_check() WHERE check_name = 'connections';
-- At the threshold is not beyond it.
UPDATE adr_ops.health_thresholds SET warn = 0, crit = 0 WHERE check_name = 'blocked_sessions';
SELECT check_name, value, status FROM adr_ops.adr_health_check() WHERE check_name = 'blocked_sessions';
-- warn > crit: lower is worse.
UPDATE adr_ops.health_thresholds SET warn = 101, crit = 100.5 WHERE check_name = 'memory';
SELECT check_name, status FROM adr_ops.adr_health_check() WHERE check_name = 'memory';
UPDATE adr_ops.health_thresholds SET warn = 101, crit = -1 WHERE check_name = 'memory';
SELECT check_name, status FROM adr_ops.adr_health_check() WHERE check_name = 'memory';
-- A check without a threshold row is not judged.
DELETE FROM adr_ops.health_thresholds WHERE check_name = 'connections';
SELECT check_name, status, warn, crit FROM adr_ops.adr_health_check() WHERE check_name = 'connections';

-- Thresholds must be numbers.
INSERT INTO adr_ops.health_thresholds VALUES ('load', NULL, 4);
-- Inserting a threshold that exists updates it (that is what lets pg_restore
-- bring back edited defaults over a fresh CREATE EXTENSION).
INSERT INTO adr_ops.health_thresholds VALUES ('load', 7, 9);
INSERT INTO adr_ops.health_thresholds VALUES ('connections', 70, 85);
SELECT * FROM adr_ops.health_thresholds WHERE check_name IN ('load', 'connections') ORDER BY 1;

-- Snapshots: one history row per check, pruned by age.
SELECT adr_ops.adr_health_snapshot() = (SELECT count(*) FROM adr_ops.adr_health_check()) AS stored_all;
SELECT count(DISTINCT taken_at) AS snapshots, bool_and(status IN ('OK', 'WARNING', 'CRITICAL', 'UNKNOWN')) AS statuses_ok
  FROM adr_ops.health_history;
UPDATE adr_ops.health_history SET taken_at = taken_at - interval '40 days';
SELECT adr_ops.adr_health_snapshot() > 0 AS stored;
SELECT count(DISTINCT taken_at) AS snapshots_after_prune FROM adr_ops.health_history;
SELECT adr_ops.adr_health_snapshot(NULL) > 0 AS stored;
SELECT count(DISTINCT taken_at) AS snapshots_kept FROM adr_ops.health_history;
INSERT INTO adr_ops.health_history (taken_at, check_name, status) VALUES ('2026-01-01 00:00:00+00', 'x', 'FINE');

-- Put the defaults back for the tests that follow.
DELETE FROM adr_ops.health_history;
DROP EXTENSION adr_ops;
DROP SCHEMA adr_ops;
CREATE EXTENSION adr_ops;
UPDATE adr_ops.schedules SET enabled = false;
