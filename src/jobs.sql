
-- jobs: pipeline jobs with checkpoints (runbook: Data Pipeline Management) --

-- Whether a job may have this status: queued, running, succeeded, failed or
-- cancelled.  In C because a check constraint is read back and prepared at
-- every UPDATE, twice a job, and the list as an array constant cost 5% of
-- a job's work.
CREATE FUNCTION adr_ops._job_status_valid(status text) RETURNS boolean
AS 'MODULE_PATHNAME', 'adr_job_status_valid'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION adr_ops._job_status_valid(text) IS
    'API: private. Whether a job may have this status (the check of processing_jobs.status)';
REVOKE ALL ON FUNCTION adr_ops._job_status_valid(text) FROM PUBLIC;

CREATE TABLE adr_ops.processing_jobs (
    id bigserial PRIMARY KEY,
    pipeline text NOT NULL,
    status text NOT NULL DEFAULT 'queued' CHECK (adr_ops._job_status_valid(status)),
    payload jsonb NOT NULL DEFAULT '{}',
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts OPERATOR(pg_catalog.>=) 1),
    run_after timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    started_at timestamptz,
    completed_at timestamptz,
    heartbeat_at timestamptz,
    worker text,
    last_error text
);
COMMENT ON TABLE adr_ops.processing_jobs IS
    'pipeline jobs; change them only through the adr_job_* functions';
-- What claimers and the reaper look for.
CREATE INDEX processing_jobs_runnable ON adr_ops.processing_jobs (pipeline, run_after, id)
    WHERE status OPERATOR(pg_catalog.=) 'queued';
CREATE INDEX processing_jobs_running ON adr_ops.processing_jobs (heartbeat_at)
    WHERE status OPERATOR(pg_catalog.=) 'running';
CREATE INDEX processing_jobs_failed ON adr_ops.processing_jobs (id)
    WHERE status OPERATOR(pg_catalog.=) 'failed';
-- Partial: a claim (completed_at NULL) then inserts no entry here.  It also
-- finds the jobs created since a time: those not queued or running
-- completed since, as completed_at is never before created_at.  (Every
-- update of a job writes an entry in each index it is in: an index on
-- created_at cost 5% of a job's work.)
CREATE INDEX processing_jobs_completed ON adr_ops.processing_jobs (completed_at)
    WHERE completed_at IS NOT NULL;

CREATE TABLE adr_ops.job_checkpoints (
    job_id bigint NOT NULL REFERENCES adr_ops.processing_jobs (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    stage text NOT NULL,
    state jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    PRIMARY KEY (job_id, seq)
);
COMMENT ON TABLE adr_ops.job_checkpoints IS 'the stages each job completed, in order';

-- One index serves the timelines and the key: every transition writes a
-- row here, so each index costs on every claim and completion.  No foreign
-- key: an event is written only by the functions below, in the transaction
-- that moves its job and under the job's row lock, so the job exists; a key
-- check on each of a job's two events cost 7% of a job's work
-- (docs/performance.md).  Deleting or truncating jobs deletes their events,
-- as ON DELETE CASCADE did (_job_events_cascade below).
CREATE TABLE adr_ops.job_events (
    id bigserial,
    job_id bigint NOT NULL,
    at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    from_status text,
    to_status text NOT NULL,
    actor name NOT NULL,
    note text,
    detail jsonb,
    PRIMARY KEY (job_id, id)
);
COMMENT ON TABLE adr_ops.job_events IS
    'every status transition of every job, with the role that made it: the post-incident timeline';

-- The cascade of a job's deletion to its events.  SECURITY DEFINER, as a
-- foreign key's cascade runs as the table's owner: whoever may delete jobs
-- deletes their events too.  A trigger function cannot be called otherwise.
CREATE FUNCTION adr_ops._job_events_cascade() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE adr_ops.job_events;
    ELSE
        DELETE FROM adr_ops.job_events e USING deleted_jobs d WHERE e.job_id = d.id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION adr_ops._job_events_cascade() IS
    'API: private. Deletes the events of deleted or truncated jobs';
REVOKE ALL ON FUNCTION adr_ops._job_events_cascade() FROM PUBLIC;
CREATE TRIGGER job_events_cascade AFTER DELETE ON adr_ops.processing_jobs
    REFERENCING OLD TABLE AS deleted_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._job_events_cascade();
CREATE TRIGGER job_events_truncate AFTER TRUNCATE ON adr_ops.processing_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION adr_ops._job_events_cascade();

-- The one place where status transitions are allowed: what each action may
-- do from each status.  Anything not here is refused.
CREATE TABLE adr_ops.job_transitions (
    action text NOT NULL,
    from_status text NOT NULL,
    to_status text NOT NULL,
    needs_force boolean NOT NULL DEFAULT false,
    PRIMARY KEY (action, from_status)
);
COMMENT ON TABLE adr_ops.job_transitions IS
    'the allowed job status transitions: action, from, to, and whether force is needed';
INSERT INTO adr_ops.job_transitions (action, from_status, to_status, needs_force) VALUES
    ('claim',      'queued',    'running',   false),
    ('heartbeat',  'running',   'running',   false),
    ('checkpoint', 'running',   'running',   false),
    ('complete',   'running',   'succeeded', false),
    ('fail',       'running',   'failed',    false),
    ('cancel',     'queued',    'cancelled', false),
    ('cancel',     'running',   'cancelled', false),
    ('cancel',     'failed',    'cancelled', false),
    ('restart',    'failed',    'queued',    false),
    ('restart',    'cancelled', 'queued',    false),
    ('restart',    'running',   'queued',    true),   -- and only with a stale heartbeat
    ('restart',    'succeeded', 'queued',    true),
    ('reap',       'running',   'failed',    false),  -- heartbeat lost
    ('retry',      'failed',    'queued',    false);  -- attempts left, with backoff

-- How long a running job may go without a heartbeat before it is lost.
CREATE FUNCTION adr_ops._job_stale_after() RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('adr_ops.job_stale_after', true), ''), '5min')::interval
$$;
COMMENT ON FUNCTION adr_ops._job_stale_after() IS
    'API: private. adr_ops.job_stale_after as an interval';

-- Move one job by an action, under its row lock: check the transition
-- against job_transitions, update the row, record the event, and NOTIFY
-- adr_jobs when the job becomes runnable.  Every status change goes through
-- here but the two a pipeline makes for every job, each one UPDATE that
-- makes its one row of job_transitions (sql/jobs.sql checks every action
-- from every status against the table): the claim (adr_job_claim) and a
-- completion without a quality gate (adr_job_complete).  An allowed move
-- is one UPDATE joined to job_transitions (it locks the row, and under a
-- concurrent change rechecks the join against the new status); only when
-- it matches no row is the row locked and read to say why, or, if its
-- status changed in between to one the action allows, moved by the same
-- UPDATE again.
CREATE FUNCTION adr_ops._job_move(job_id bigint, action text, note text DEFAULT NULL,
                                  force boolean DEFAULT false, error text DEFAULT NULL,
                                  run_after timestamptz DEFAULT NULL, detail jsonb DEFAULT NULL)
RETURNS adr_ops.processing_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j adr_ops.processing_jobs;
    t adr_ops.job_transitions;
    moved record;
BEGIN
    IF _job_move.job_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'job id must not be null';
    END IF;
    FOR pass IN 1..2 LOOP
        UPDATE adr_ops.processing_jobs p
           SET status = x.to_status,
               heartbeat_at = CASE WHEN x.to_status = 'running' THEN clock_timestamp() ELSE p.heartbeat_at END,
               worker = CASE WHEN x.to_status = 'queued' THEN NULL ELSE p.worker END,
               completed_at = CASE WHEN x.to_status IN ('succeeded', 'failed', 'cancelled')
                                   THEN greatest(now(), p.created_at)
                                   WHEN x.to_status = 'queued' THEN NULL ELSE p.completed_at END,
               run_after = CASE WHEN x.to_status = 'queued' THEN coalesce(_job_move.run_after, now())
                                ELSE p.run_after END,
               last_error = coalesce(_job_move.error, p.last_error)
          FROM adr_ops.job_transitions x
         WHERE p.id = _job_move.job_id AND x.action = _job_move.action AND x.from_status = p.status
           AND (x.needs_force AND NOT _job_move.force) IS NOT TRUE
        RETURNING p AS job, x.from_status, x.to_status INTO moved;
        IF FOUND THEN
            j := moved.job;
            t.from_status := moved.from_status;
            t.to_status := moved.to_status;
            EXIT;
        END IF;

        SELECT * INTO j FROM adr_ops.processing_jobs p WHERE p.id = _job_move.job_id FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'no_data_found',
                MESSAGE = format('job %s does not exist', _job_move.job_id);
        END IF;
        SELECT * INTO t FROM adr_ops.job_transitions x
         WHERE x.action = _job_move.action AND x.from_status = j.status;
        -- The second pass holds the row lock: its UPDATE cannot miss.
        IF NOT FOUND OR (t.needs_force AND NOT _job_move.force) OR pass = 2 THEN
            RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
                MESSAGE = format('cannot %s job %s: its status is %s', _job_move.action, j.id, j.status),
                HINT = CASE
                    WHEN t.needs_force THEN format('Pass force => true to %s a %s job.', _job_move.action, j.status)
                    ELSE (SELECT format('%s applies to jobs that are %s%s.', _job_move.action,
                                        string_agg(x.from_status, ' or ' ORDER BY x.from_status)
                                            FILTER (WHERE NOT x.needs_force),
                                        ' (with force => true: '
                                            || string_agg(x.from_status, ' or ' ORDER BY x.from_status)
                                                   FILTER (WHERE x.needs_force) || ')')
                            FROM adr_ops.job_transitions x WHERE x.action = _job_move.action)
                END;
        END IF;
    END LOOP;

    IF t.to_status <> t.from_status THEN
        INSERT INTO adr_ops.job_events (job_id, from_status, to_status, actor, note, detail)
        VALUES (j.id, t.from_status, t.to_status, adr_ops._calling_role(),
                coalesce(_job_move.note, _job_move.action), _job_move.detail);
    END IF;
    IF t.to_status = 'queued' THEN
        PERFORM pg_notify('adr_jobs', j.id::text);
    END IF;
    RETURN j;
END
$$;
COMMENT ON FUNCTION adr_ops._job_move(bigint, text, text, boolean, text, timestamptz, jsonb) IS
    'API: private. Moves a job by an action as job_transitions allows (a claim and a gate-less completion have their own UPDATE)';

-- What a claim returns: the job, and where to resume.
CREATE TYPE adr_ops.job_claim AS (
    id bigint,
    pipeline text,
    payload jsonb,
    attempts integer,
    max_attempts integer,
    resume_stage text,
    resume_state jsonb
);
COMMENT ON TYPE adr_ops.job_claim IS
    'a claimed job with the stage and state of its last checkpoint (NULL: start from the beginning)';

-- The API.  SECURITY DEFINER: EXECUTE is the privilege a pipeline role
-- needs; the tables are not writable by anyone else.
CREATE FUNCTION adr_ops.adr_job_submit(pipeline text, payload jsonb DEFAULT '{}',
                                       max_attempts integer DEFAULT 3)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id bigint;
BEGIN
    IF adr_job_submit.pipeline IS NULL OR adr_job_submit.payload IS NULL
       OR adr_job_submit.max_attempts IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'pipeline, payload and max_attempts must not be null';
    END IF;
    IF adr_job_submit.max_attempts < 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('max_attempts must be at least 1, not %s', adr_job_submit.max_attempts);
    END IF;
    INSERT INTO adr_ops.processing_jobs (pipeline, payload, max_attempts)
    VALUES (adr_job_submit.pipeline, adr_job_submit.payload, adr_job_submit.max_attempts)
    RETURNING id INTO new_id;
    INSERT INTO adr_ops.job_events (job_id, from_status, to_status, actor, note)
    VALUES (new_id, NULL, 'queued', adr_ops._calling_role(), 'submit');
    PERFORM pg_notify('adr_jobs', new_id::text);
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_submit(text, jsonb, integer) IS
    'queues a job of a pipeline; returns its id';

-- Claimers skip each other's locked rows, so two never get the same job.
-- The claim row of job_transitions, queued to running, made here in one
-- UPDATE: attempts + 1, started now by this worker.  Only a job claimed
-- before can have checkpoints (they are made while it runs, and started_at
-- is never cleared), so only then is its last one looked up.
CREATE FUNCTION adr_ops.adr_job_claim(pipeline text, worker text)
RETURNS adr_ops.job_claim
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c adr_ops.job_claim;
    claimed_before boolean;
BEGIN
    UPDATE adr_ops.processing_jobs p
       SET status = 'running', attempts = p.attempts + 1, started_at = now(),
           heartbeat_at = clock_timestamp(), worker = adr_job_claim.worker
      FROM (SELECT q.id, q.started_at IS NOT NULL AS claimed_before
              FROM adr_ops.processing_jobs q
             WHERE q.pipeline = adr_job_claim.pipeline AND q.status = 'queued'
               AND q.run_after <= now()
             ORDER BY q.run_after, q.id
             LIMIT 1
               FOR UPDATE SKIP LOCKED) pick
     WHERE p.id = pick.id AND p.status = 'queued'
    RETURNING p.id, p.pipeline, p.payload, p.attempts, p.max_attempts, pick.claimed_before
         INTO c.id, c.pipeline, c.payload, c.attempts, c.max_attempts, claimed_before;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO adr_ops.job_events (job_id, from_status, to_status, actor, note)
    VALUES (c.id, 'queued', 'running', adr_ops._calling_role(), 'claim');
    IF claimed_before THEN
        SELECT x.stage, x.state INTO c.resume_stage, c.resume_state
          FROM adr_ops.job_checkpoints x WHERE x.job_id = c.id ORDER BY x.seq DESC LIMIT 1;
    END IF;
    RETURN c;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_claim(text, text) IS
    'claims the next runnable job of a pipeline, with where to resume; NULL when there is none';

CREATE FUNCTION adr_ops.adr_job_heartbeat(id bigint) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (adr_ops._job_move(adr_job_heartbeat.id, 'heartbeat')).heartbeat_at;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_heartbeat(bigint) IS
    'tells the reaper a running job is alive; returns the heartbeat time';

CREATE FUNCTION adr_ops.adr_job_checkpoint(id bigint, stage text, state jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    next_seq integer;
BEGIN
    IF adr_job_checkpoint.stage IS NULL OR adr_job_checkpoint.state IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'stage and state must not be null';
    END IF;
    PERFORM adr_ops._job_move(adr_job_checkpoint.id, 'checkpoint');
    SELECT coalesce(max(x.seq), 0) + 1 INTO next_seq
      FROM adr_ops.job_checkpoints x WHERE x.job_id = adr_job_checkpoint.id;
    INSERT INTO adr_ops.job_checkpoints (job_id, seq, stage, state)
    VALUES (adr_job_checkpoint.id, next_seq, adr_job_checkpoint.stage, adr_job_checkpoint.state);
    RETURN next_seq;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_checkpoint(bigint, text, jsonb) IS
    'records that a running job completed a stage; returns its sequence number';

-- The pipeline's blocking quality checks are its gate (quality.sql).  A
-- running job of a pipeline without one is completed here (the complete
-- row of job_transitions, running to succeeded, as _job_move makes it);
-- anything else, a gate or a refusal, goes to _job_quality_gate.
CREATE FUNCTION adr_ops.adr_job_complete(id bigint) RETURNS adr_ops.processing_jobs
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j adr_ops.processing_jobs;
BEGIN
    UPDATE adr_ops.processing_jobs p
       SET status = 'succeeded', completed_at = greatest(now(), p.created_at)
     WHERE p.id = adr_job_complete.id AND p.status = 'running'
       AND NOT EXISTS (SELECT FROM adr_ops.quality_checks q
                        WHERE q.dataset = p.pipeline AND q.blocking AND q.enabled)
    RETURNING * INTO j;
    IF NOT FOUND THEN
        RETURN adr_ops._job_quality_gate(adr_job_complete.id);
    END IF;
    INSERT INTO adr_ops.job_events (job_id, from_status, to_status, actor, note)
    VALUES (j.id, 'running', 'succeeded', adr_ops._calling_role(), 'complete');
    RETURN j;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_complete(bigint) IS
    'marks a running job succeeded, or failed when a blocking quality check of its pipeline fails';

CREATE FUNCTION adr_ops.adr_job_fail(id bigint, error text) RETURNS adr_ops.processing_jobs
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN adr_ops._job_move(adr_job_fail.id, 'fail', note => 'fail: ' || adr_job_fail.error,
                             error => adr_job_fail.error);
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_fail(bigint, text) IS
    'marks a running job failed with its error; the reaper retries it while attempts are left';

CREATE FUNCTION adr_ops.adr_job_cancel(id bigint) RETURNS adr_ops.processing_jobs
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN adr_ops._job_move(adr_job_cancel.id, 'cancel');
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_cancel(bigint) IS 'cancels a queued, running or failed job';

-- The runbook's "restart from the last successful checkpoint".
CREATE FUNCTION adr_ops.adr_job_restart(id bigint, from_checkpoint boolean DEFAULT true,
                                        force boolean DEFAULT false)
RETURNS adr_ops.processing_jobs
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j adr_ops.processing_jobs;
    archived jsonb;
BEGIN
    IF adr_job_restart.from_checkpoint IS NULL OR adr_job_restart.force IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'from_checkpoint and force must not be null';
    END IF;
    SELECT * INTO j FROM adr_ops.processing_jobs p WHERE p.id = adr_job_restart.id FOR UPDATE;
    -- A running job is restarted only when its worker is gone.
    IF FOUND AND j.status = 'running' AND adr_job_restart.force
       AND j.heartbeat_at >= now() - adr_ops._job_stale_after() THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('cannot restart job %s: its status is running and its heartbeat is %s s old',
                             j.id, round(extract(epoch FROM now() - j.heartbeat_at))),
            DETAIL = format('A running job is restarted only when its heartbeat is older than adr_ops.job_stale_after (%s s).',
                            round(extract(epoch FROM adr_ops._job_stale_after()))),
            HINT = 'Wait for the worker to finish, or cancel the job.';
    END IF;

    IF NOT adr_job_restart.from_checkpoint THEN
        SELECT jsonb_agg(jsonb_build_object('seq', x.seq, 'stage', x.stage, 'state', x.state,
                                            'created_at', x.created_at) ORDER BY x.seq)
          INTO archived
          FROM adr_ops.job_checkpoints x WHERE x.job_id = adr_job_restart.id;
    END IF;
    j := adr_ops._job_move(adr_job_restart.id, 'restart',
                           note => format('restart (%s%s)',
                                          CASE WHEN adr_job_restart.from_checkpoint
                                               THEN 'from the last checkpoint' ELSE 'from the beginning' END,
                                          CASE WHEN adr_job_restart.force THEN ', forced' ELSE '' END),
                           force => adr_job_restart.force,
                           detail => CASE WHEN archived IS NOT NULL
                                          THEN jsonb_build_object('archived_checkpoints', archived) END);
    IF NOT adr_job_restart.from_checkpoint THEN
        DELETE FROM adr_ops.job_checkpoints x WHERE x.job_id = j.id;
    END IF;
    IF adr_job_restart.force THEN
        UPDATE adr_ops.processing_jobs p SET attempts = 0 WHERE p.id = j.id RETURNING * INTO j;
    END IF;
    RETURN j;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_restart(bigint, boolean, boolean) IS
    'restarts a failed or cancelled job (running with a lost heartbeat, or succeeded, only with force) from its last checkpoint or from the beginning';

-- Lost workers and retries.  Rows another session holds are left for the
-- next pass, so the reaper never waits on a worker.
CREATE FUNCTION adr_ops.adr_job_reap(OUT lost integer, OUT requeued integer)
RETURNS record
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    lost := 0;
    requeued := 0;
    FOR r IN SELECT p.id FROM adr_ops.processing_jobs p
              WHERE p.status = 'running' AND p.heartbeat_at < now() - adr_ops._job_stale_after()
              ORDER BY p.id FOR UPDATE SKIP LOCKED LOOP
        PERFORM adr_ops._job_move(r.id, 'reap', note => 'heartbeat lost', error => 'heartbeat lost');
        lost := lost + 1;
    END LOOP;
    -- Exponential backoff: 30 s after the first attempt, doubling, at most 1 hour.
    FOR r IN SELECT p.id, p.attempts FROM adr_ops.processing_jobs p
              WHERE p.status = 'failed' AND p.attempts < p.max_attempts
              ORDER BY p.id FOR UPDATE SKIP LOCKED LOOP
        PERFORM adr_ops._job_move(r.id, 'retry',
                                  note => format('retry %s', r.attempts + 1),
                                  run_after => now() + least(interval '1 hour',
                                                             interval '30 seconds' * 2 ^ (greatest(r.attempts, 1) - 1)));
        requeued := requeued + 1;
    END LOOP;
END
$$;
COMMENT ON FUNCTION adr_ops.adr_job_reap() IS
    'fails running jobs whose heartbeat is lost and re-queues failed jobs with attempts left, with backoff';

-- For dashboards and the runbook's pipeline monitoring.
CREATE FUNCTION adr_ops.adr_pipeline_status(since interval DEFAULT '24 hours',
    OUT pipeline text, OUT queued bigint, OUT running bigint, OUT succeeded bigint,
    OUT failed bigint, OUT cancelled bigint, OUT failure_rate float8,
    OUT p50_duration interval, OUT p95_duration interval,
    OUT oldest_queued timestamptz, OUT stuck_running bigint)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.pipeline,
           count(*) FILTER (WHERE p.status = 'queued'),
           count(*) FILTER (WHERE p.status = 'running'),
           count(*) FILTER (WHERE p.status = 'succeeded' AND p.completed_at >= now() - since),
           count(*) FILTER (WHERE p.status = 'failed' AND p.completed_at >= now() - since),
           count(*) FILTER (WHERE p.status = 'cancelled' AND p.completed_at >= now() - since),
           round(((count(*) FILTER (WHERE p.status = 'failed' AND p.completed_at >= now() - since))::float8
                  / nullif(count(*) FILTER (WHERE p.status IN ('succeeded', 'failed')
                                              AND p.completed_at >= now() - since), 0))::numeric, 3)::float8,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY p.completed_at - p.started_at)
             FILTER (WHERE p.status = 'succeeded' AND p.completed_at >= now() - since),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY p.completed_at - p.started_at)
             FILTER (WHERE p.status = 'succeeded' AND p.completed_at >= now() - since),
           min(p.run_after) FILTER (WHERE p.status = 'queued' AND p.run_after <= now()),
           count(*) FILTER (WHERE p.status = 'running'
                              AND p.heartbeat_at < now() - adr_ops._job_stale_after())
      FROM adr_ops.processing_jobs p
     WHERE p.status IN ('queued', 'running') OR p.completed_at >= now() - since
     GROUP BY p.pipeline
     ORDER BY p.pipeline
$$;
COMMENT ON FUNCTION adr_ops.adr_pipeline_status(interval) IS
    'per pipeline: jobs by status, failure rate, p50/p95 duration, oldest queued, stuck running';

-- The runbook's "review recent jobs".
CREATE VIEW adr_ops.recent_jobs AS
    SELECT j.id, j.pipeline, j.status, j.attempts, j.max_attempts, j.worker,
           j.created_at, j.started_at, j.completed_at,
           j.completed_at OPERATOR(pg_catalog.-) j.started_at AS duration,
           (SELECT c.stage FROM adr_ops.job_checkpoints c
             WHERE c.job_id OPERATOR(pg_catalog.=) j.id ORDER BY c.seq DESC LIMIT 1) AS last_stage,
           j.last_error
      FROM adr_ops.processing_jobs j
     WHERE j.created_at OPERATOR(pg_catalog.>)
           (pg_catalog.now() OPERATOR(pg_catalog.-) '24 hours'::pg_catalog.interval)
       -- found through the status and completed_at indexes
       AND (j.status OPERATOR(pg_catalog.=) 'queued' OR j.status OPERATOR(pg_catalog.=) 'running'
            OR j.completed_at OPERATOR(pg_catalog.>)
               (pg_catalog.now() OPERATOR(pg_catalog.-) '24 hours'::pg_catalog.interval))
     ORDER BY j.created_at DESC, j.id DESC;
COMMENT ON VIEW adr_ops.recent_jobs IS 'the jobs of the last 24 hours, newest first';

-- The job queue is the platform's data: pg_dump keeps it.
SELECT pg_catalog.pg_extension_config_dump('adr_ops.processing_jobs', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.processing_jobs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.job_checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.job_events', '');
SELECT pg_catalog.pg_extension_config_dump('adr_ops.job_events_id_seq', '');

GRANT SELECT ON adr_ops.recent_jobs TO pg_monitor;
GRANT SELECT ON adr_ops.processing_jobs, adr_ops.job_checkpoints, adr_ops.job_events,
                adr_ops.job_transitions TO pg_monitor;

DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'adr_ops._job_stale_after()',
        'adr_ops._job_move(bigint, text, text, boolean, text, timestamptz, jsonb)',
        'adr_ops.adr_job_submit(text, jsonb, integer)', 'adr_ops.adr_job_claim(text, text)',
        'adr_ops.adr_job_heartbeat(bigint)', 'adr_ops.adr_job_checkpoint(bigint, text, jsonb)',
        'adr_ops.adr_job_complete(bigint)', 'adr_ops.adr_job_fail(bigint, text)',
        'adr_ops.adr_job_cancel(bigint)', 'adr_ops.adr_job_restart(bigint, boolean, boolean)',
        'adr_ops.adr_job_reap()', 'adr_ops.adr_pipeline_status(interval)'] LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
    EXECUTE 'GRANT EXECUTE ON FUNCTION adr_ops.adr_pipeline_status(interval), adr_ops._job_stale_after() TO pg_monitor';
END
$grants$;

-- The reaper runs every minute through the scheduler.
INSERT INTO adr_ops.schedules (name, schedule, task, database) VALUES
    ('job_reaper', '* * * * *', 'job_reaper', pg_catalog.current_database());
