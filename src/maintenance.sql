
-- maintenance: the scheduler (runbook: Database Maintenance, Planned
-- Maintenance Window, Daily Health Checks, Weekly System Review) -----------

-- Whether a schedule parses: the table holds no schedule the launcher
-- could not read, whoever writes it.
CREATE FUNCTION adr_ops._schedule_valid(schedule text) RETURNS boolean
AS 'MODULE_PATHNAME', 'adr_schedule_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops._schedule_valid(text) IS
    'API: private. Whether a schedule parses (adr_next_run() says why not)';
REVOKE ALL ON FUNCTION adr_ops._schedule_valid(text) FROM PUBLIC;

CREATE TABLE adr_ops.schedules (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    schedule text NOT NULL CHECK (adr_ops._schedule_valid(schedule)),
    task text NOT NULL,
    database name NOT NULL,
    options jsonb NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT true,
    created_by name NOT NULL DEFAULT CURRENT_USER
);
COMMENT ON TABLE adr_ops.schedules IS
    'maintenance schedules run by the adr_ops launcher; change them with adr_schedule() and adr_unschedule()';

CREATE TABLE adr_ops.task_runs (
    id bigserial PRIMARY KEY,
    schedule_id bigint REFERENCES adr_ops.schedules (id) ON DELETE SET NULL,
    task text NOT NULL,
    database name NOT NULL,
    scheduled_at timestamptz,
    started_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at timestamptz,
    status text NOT NULL
        CHECK (status OPERATOR(pg_catalog.=) ANY ('{running,succeeded,failed,skipped}'::text[])),
    objects integer,
    detail text
);
COMMENT ON TABLE adr_ops.task_runs IS
    'history of maintenance task runs, pruned after adr_ops.task_run_retention';
CREATE INDEX task_runs_schedule ON adr_ops.task_runs (schedule_id, scheduled_at);
CREATE INDEX task_runs_finished ON adr_ops.task_runs (finished_at);
CREATE INDEX task_runs_running ON adr_ops.task_runs (id)
    WHERE status OPERATOR(pg_catalog.=) 'running';

-- pg_dump keeps the rows; a restored one replaces its default (schema.sql).
CREATE TRIGGER schedules_upsert BEFORE INSERT ON adr_ops.schedules
    FOR EACH ROW EXECUTE FUNCTION adr_ops._config_upsert('name', 'id');

-- A committed change wakes the launcher.
CREATE FUNCTION adr_ops._scheduler_wake() RETURNS trigger
AS 'MODULE_PATHNAME', 'adr_scheduler_wake'
LANGUAGE C;
COMMENT ON FUNCTION adr_ops._scheduler_wake() IS
    'API: private. Wakes the adr_ops launcher when the schedules change';
REVOKE ALL ON FUNCTION adr_ops._scheduler_wake() FROM PUBLIC;
CREATE TRIGGER schedules_wake
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON adr_ops.schedules
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._scheduler_wake();

SELECT pg_catalog.pg_extension_config_dump('adr_ops.schedules', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.schedules_id_seq', '');
GRANT SELECT ON adr_ops.schedules, adr_ops.task_runs TO pg_monitor;

CREATE FUNCTION adr_ops.adr_tasks(
    OUT task text, OUT writes boolean, OUT heavy boolean, OUT options text[],
    OUT description text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'adr_tasks'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops.adr_tasks() IS
    'the maintenance tasks a schedule can run, with their options';

CREATE FUNCTION adr_ops.adr_next_run(schedule text, after timestamptz DEFAULT pg_catalog.now(),
                                     timezone text DEFAULT NULL)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'adr_next_run'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops.adr_next_run(text, timestamptz, text) IS
    'the next fire time of a schedule after a time, in a time zone (default adr_ops.timezone)';

CREATE FUNCTION adr_ops._schedule_validate(schedule text, task text, database name, options jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'adr_schedule_validate'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION adr_ops._schedule_validate(text, text, name, jsonb) IS
    'API: private. Raises an error unless a schedule, task, database and options can be scheduled';

CREATE FUNCTION adr_ops._calling_role() RETURNS name
AS 'MODULE_PATHNAME', 'adr_calling_role'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION adr_ops._calling_role() IS
    'API: private. The role that called, unchanged by SECURITY DEFINER';

CREATE FUNCTION adr_ops._calling_role_strict() RETURNS name
AS 'MODULE_PATHNAME', 'adr_calling_role_strict'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION adr_ops._calling_role_strict() IS
    'API: private. The role that called, for where it grants power: refuses while the calling functions are unknown';
REVOKE ALL ON FUNCTION adr_ops._calling_role_strict() FROM PUBLIC;

CREATE FUNCTION adr_ops._launcher_schedules(
    OUT schedule_id bigint, OUT next_fire timestamptz, OUT standby_skip_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'adr_launcher_schedules'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION adr_ops._launcher_schedules() IS
    'API: private. What the running launcher knows of each schedule';

-- Only these change the schedules; EXECUTE on them is the privilege to
-- schedule maintenance, which the launcher runs as the bootstrap superuser.
CREATE FUNCTION adr_ops.adr_schedule(name text, schedule text, task text,
                                     database name DEFAULT pg_catalog.current_database(),
                                     options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    schedule_id bigint;
BEGIN
    IF adr_schedule.name IS NULL OR adr_schedule.schedule IS NULL OR adr_schedule.task IS NULL
       OR adr_schedule.database IS NULL OR adr_schedule.options IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'name, schedule, task, database and options must not be null';
    END IF;
    PERFORM adr_ops._schedule_validate(adr_schedule.schedule, adr_schedule.task,
                                       adr_schedule.database, adr_schedule.options);

    UPDATE adr_ops.schedules s
       SET schedule = adr_schedule.schedule, task = adr_schedule.task,
           database = adr_schedule.database, options = adr_schedule.options, enabled = true
     WHERE s.name = adr_schedule.name
    RETURNING s.id INTO schedule_id;
    IF NOT FOUND THEN
        INSERT INTO adr_ops.schedules (name, schedule, task, database, options, created_by)
        VALUES (adr_schedule.name, adr_schedule.schedule, adr_schedule.task,
                adr_schedule.database, adr_schedule.options, adr_ops._calling_role())
        RETURNING id INTO schedule_id;
    END IF;
    RETURN schedule_id;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_schedule(text, text, text, name, jsonb) IS
    'schedules a maintenance task (or reschedules the schedule of that name); returns its id';
REVOKE ALL ON FUNCTION adr_ops.adr_schedule(text, text, text, name, jsonb) FROM PUBLIC;

CREATE FUNCTION adr_ops.adr_unschedule(name text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM adr_ops.schedules s WHERE s.name = adr_unschedule.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('schedule "%s" does not exist', adr_unschedule.name),
            HINT = 'adr_maintenance_status() lists the schedules.';
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_unschedule(text) IS
    'removes a maintenance schedule; its run history stays';
REVOKE ALL ON FUNCTION adr_ops.adr_unschedule(text) FROM PUBLIC;

-- SECURITY DEFINER so that EXECUTE is all a grantee needs (it reads the
-- run's row in task_runs).
CREATE FUNCTION adr_ops.adr_run_task(task text, database name DEFAULT pg_catalog.current_database(),
                                     options jsonb DEFAULT '{}', wait boolean DEFAULT true)
RETURNS adr_ops.task_runs
AS 'MODULE_PATHNAME', 'adr_run_task'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION adr_ops.adr_run_task(text, name, jsonb, boolean) IS
    'runs a maintenance task now through a worker and returns its task_runs row';
REVOKE ALL ON FUNCTION adr_ops.adr_run_task(text, name, jsonb, boolean) FROM PUBLIC;

-- For dashboards: each schedule, when it fires next, and its last run.
-- next_run is the launcher's own figure when it runs; on a hot standby a
-- skip in recovery is newer than any replicated run.
CREATE FUNCTION adr_ops.adr_maintenance_status(
    OUT name text, OUT schedule text, OUT task text, OUT database name, OUT enabled boolean,
    OUT next_run timestamptz, OUT last_started_at timestamptz, OUT last_finished_at timestamptz,
    OUT last_status text, OUT last_objects integer, OUT last_detail text)
RETURNS SETOF record
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.name, s.schedule, s.task, s.database, s.enabled,
           CASE WHEN s.enabled THEN coalesce(l.next_fire, adr_ops.adr_next_run(s.schedule, now())) END,
           CASE WHEN skipped THEN l.standby_skip_at ELSE r.started_at END,
           CASE WHEN skipped THEN l.standby_skip_at ELSE r.finished_at END,
           CASE WHEN skipped THEN 'skipped' ELSE r.status END,
           CASE WHEN skipped THEN NULL ELSE r.objects END,
           CASE WHEN skipped THEN 'skipped: in recovery' ELSE r.detail END
      FROM adr_ops.schedules s
      LEFT JOIN adr_ops._launcher_schedules() l ON l.schedule_id = s.id
      LEFT JOIN LATERAL (SELECT t.started_at, t.finished_at, t.status, t.objects, t.detail
                           FROM adr_ops.task_runs t WHERE t.schedule_id = s.id
                          ORDER BY t.started_at DESC LIMIT 1) r ON true
      CROSS JOIN LATERAL (SELECT l.standby_skip_at > coalesce(r.started_at, '-infinity') AS skipped) k
     ORDER BY s.name
$$;
COMMENT ON FUNCTION adr_ops.adr_maintenance_status() IS
    'each maintenance schedule with its next fire time and its last run';

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['adr_ops.adr_tasks()', 'adr_ops.adr_next_run(text, timestamptz, text)',
                             'adr_ops._launcher_schedules()', 'adr_ops.adr_maintenance_status()'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pg_monitor', f);
    END LOOP;
    EXECUTE 'REVOKE ALL ON FUNCTION adr_ops._schedule_validate(text, text, name, jsonb) FROM PUBLIC';
    EXECUTE 'REVOKE ALL ON FUNCTION adr_ops._calling_role() FROM PUBLIC';
END
$grants$;

-- The runbook's procedures, editable.  They run where the extension was
-- created, and only when that is adr_ops.database.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('health_snapshot', '*/5 * * * *', 'health_snapshot', pg_catalog.current_database()),
    ('analyze',         '0 2 * * *',   'analyze',         pg_catalog.current_database()),
    ('vacuum_analyze',  '0 3 * * 0',   'vacuum_analyze',  pg_catalog.current_database()),
    ('reindex',         '0 4 1 * *',   'reindex',         pg_catalog.current_database());
