--
-- Pipeline jobs: every transition, allowed and refused, with the error text.
--
-- Errors print their detail and hint; the PL/pgSQL context would only pin
-- line numbers.
\set SHOW_CONTEXT never
-- Each case makes a job, puts it in a status by hand, tries one action and
-- prints the status it ended in or the error (job ids replaced by N).
CREATE FUNCTION try_action(from_status text, action text, force boolean DEFAULT false,
                           stale boolean DEFAULT true)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    jid bigint;
    result text;
BEGIN
    DELETE FROM adr_ops.processing_jobs WHERE pipeline = 'cases';
    jid := adr_ops.adr_job_submit('cases');
    UPDATE adr_ops.processing_jobs
       SET status = from_status,
           heartbeat_at = CASE WHEN stale THEN now() - interval '1 hour' ELSE now() END
     WHERE id = jid;
    BEGIN
        CASE action
            WHEN 'claim' THEN
                IF adr_ops.adr_job_claim('cases', 'w') IS NULL THEN
                    RETURN 'nothing to claim';
                END IF;
            WHEN 'heartbeat' THEN PERFORM adr_ops.adr_job_heartbeat(jid);
            WHEN 'checkpoint' THEN PERFORM adr_ops.adr_job_checkpoint(jid, 'stage');
            WHEN 'complete' THEN PERFORM adr_ops.adr_job_complete(jid);
            WHEN 'fail' THEN PERFORM adr_ops.adr_job_fail(jid, 'boom');
            WHEN 'cancel' THEN PERFORM adr_ops.adr_job_cancel(jid);
            WHEN 'restart' THEN PERFORM adr_ops.adr_job_restart(jid, force => force);
        END CASE;
        SELECT '-> ' || status INTO result FROM adr_ops.processing_jobs WHERE id = jid;
    EXCEPTION WHEN OTHERS THEN
        result := regexp_replace(SQLERRM, 'job \d+', 'job N');
    END;
    RETURN result;
END $$;

SELECT a.action, s.status AS from_status, try_action(s.status, a.action) AS outcome
  FROM unnest('{queued,running,succeeded,failed,cancelled}'::text[]) WITH ORDINALITY s(status, so)
 CROSS JOIN unnest('{claim,heartbeat,checkpoint,complete,fail,cancel,restart}'::text[]) WITH ORDINALITY a(action, ao)
 ORDER BY a.ao, s.so;

-- force: a succeeded job, and a running one only once its heartbeat is lost.
SELECT s.status AS from_status, st AS stale_heartbeat, try_action(s.status, 'restart', true, st) AS outcome
  FROM unnest('{queued,running,succeeded,failed,cancelled}'::text[]) WITH ORDINALITY s(status, so)
 CROSS JOIN unnest('{true,false}'::boolean[]) st
 WHERE st OR s.status = 'running'
 ORDER BY s.so, st DESC;

-- The same refusals as a DBA sees them, with their hints.
SELECT adr_ops.adr_job_submit('etl', '{"file": "a.csv"}') AS id \gset
SELECT id = :id AS claimed, attempts, resume_stage FROM adr_ops.adr_job_claim('etl', 'worker-1');
SELECT adr_ops.adr_job_restart(:id);
SELECT adr_ops.adr_job_restart(:id, force => true);
SELECT adr_ops.adr_job_checkpoint(:id, 'extract', '{"rows": 100}') AS seq;
SELECT adr_ops.adr_job_checkpoint(:id, 'transform', '{"rows": 90}') AS seq;
SELECT status, last_error FROM adr_ops.adr_job_fail(:id, 'load: disk full');
SELECT adr_ops.adr_job_complete(:id);
SELECT adr_ops.adr_job_heartbeat(:id);
SELECT adr_ops.adr_job_cancel(12345);

-- Restart from the last checkpoint: the next claim resumes after it.
SELECT status, attempts FROM adr_ops.adr_job_restart(:id);
SELECT attempts, resume_stage, resume_state FROM adr_ops.adr_job_claim('etl', 'worker-2');
SELECT status FROM adr_ops.adr_job_fail(:id, 'again');
-- From the beginning, forced: checkpoints archived in the event, attempts reset.
SELECT status, attempts FROM adr_ops.adr_job_restart(:id, from_checkpoint => false, force => true);
SELECT count(*) AS checkpoints_left FROM adr_ops.job_checkpoints WHERE job_id = :id;
SELECT note, jsonb_array_length(detail -> 'archived_checkpoints') AS archived,
       detail #>> '{archived_checkpoints,1,stage}' AS last_archived
  FROM adr_ops.job_events WHERE job_id = :id ORDER BY id DESC LIMIT 1;
SELECT attempts, resume_stage FROM adr_ops.adr_job_claim('etl', 'worker-3');
SELECT status FROM adr_ops.adr_job_complete(:id);
SELECT adr_ops.adr_job_claim('etl', 'worker-4') IS NULL AS nothing_to_claim;

-- The timeline of that job, as the post-incident review reads it.
SELECT from_status, to_status, actor = current_user AS by_me, note
  FROM adr_ops.job_events WHERE job_id = :id ORDER BY id;

-- The reaper: lost heartbeats fail, failed jobs with attempts left come back
-- later with backoff, exhausted ones stay failed.
DELETE FROM adr_ops.processing_jobs;
SELECT count(adr_ops.adr_job_submit('etl')) AS submitted FROM generate_series(1, 3);
SELECT count(*) FROM (SELECT adr_ops.adr_job_claim('etl', 'w') FROM generate_series(1, 3)) c;
UPDATE adr_ops.processing_jobs SET heartbeat_at = now() - interval '1 hour'
 WHERE id = (SELECT min(id) FROM adr_ops.processing_jobs);
SELECT adr_ops.adr_job_fail(max(id), 'boom') IS NOT NULL AS failed FROM adr_ops.processing_jobs;
UPDATE adr_ops.processing_jobs SET attempts = max_attempts, status = 'failed', completed_at = now()
 WHERE id = (SELECT max(id) - 1 FROM adr_ops.processing_jobs);
SELECT * FROM adr_ops.adr_job_reap();
SELECT id - (SELECT min(id) FROM adr_ops.processing_jobs) AS n, status, attempts, last_error,
       run_after > now() + interval '20 seconds' AS backed_off
  FROM adr_ops.processing_jobs ORDER BY id;
SELECT * FROM adr_ops.adr_job_reap();
SELECT adr_ops.adr_job_claim('etl', 'w') IS NULL AS not_yet_runnable;

-- completed_at is never before created_at, even when the completing
-- transaction began before the job was submitted (here: a job submitted
-- "an hour from now"), so recent_jobs and the weekly review find the jobs
-- created since a time through the status and completed_at indexes.
SELECT adr_ops.adr_job_submit('late') AS late \gset
SELECT adr_ops.adr_job_submit('late') AS late2 \gset
UPDATE adr_ops.processing_jobs SET created_at = now() + interval '1 hour' WHERE pipeline = 'late';
SELECT count(*) AS claimed FROM (SELECT adr_ops.adr_job_claim('late', 'w') FROM generate_series(1, 2)) c;
SELECT completed_at = created_at AS completed_when_created FROM adr_ops.adr_job_complete(:late);
SELECT completed_at = created_at AS failed_when_created FROM adr_ops.adr_job_fail(:late2, 'boom');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM adr_ops.recent_jobs;
RESET enable_seqscan;
DELETE FROM adr_ops.processing_jobs WHERE pipeline = 'late';

-- Status for dashboards.
SELECT pipeline, queued, running, succeeded, failed, cancelled, stuck_running
  FROM adr_ops.adr_pipeline_status();
SELECT count(*) AS recent FROM adr_ops.recent_jobs;

-- Bad input.
SELECT adr_ops.adr_job_submit(NULL);
SELECT adr_ops.adr_job_submit('etl', max_attempts => 0);
SELECT adr_ops.adr_job_checkpoint(1, NULL);
SELECT adr_ops.adr_job_restart(1, NULL);
SHOW adr_ops.job_stale_after;

-- The job functions are for the roles they are granted to.
CREATE ROLE adr_dashboard IN ROLE pg_monitor;
SET ROLE adr_dashboard;
SELECT count(*) >= 0 AS sees_status FROM adr_ops.adr_pipeline_status();
SELECT count(*) >= 0 AS sees_recent FROM adr_ops.recent_jobs;
SELECT adr_ops.adr_job_submit('etl');
RESET ROLE;
CREATE ROLE adr_pipeline;
GRANT USAGE ON SCHEMA adr_ops TO adr_pipeline;
GRANT EXECUTE ON FUNCTION adr_ops.adr_job_submit(text, jsonb, integer),
                          adr_ops.adr_job_claim(text, text),
                          adr_ops.adr_job_complete(bigint) TO adr_pipeline;
SET ROLE adr_pipeline;
SELECT adr_ops.adr_job_submit('granted') > 0 AS submitted;
SELECT pipeline FROM adr_ops.adr_job_claim('granted', 'w');
UPDATE adr_ops.processing_jobs SET status = 'succeeded';
RESET ROLE;
SELECT actor, to_status FROM adr_ops.job_events
 WHERE job_id = (SELECT id FROM adr_ops.processing_jobs WHERE pipeline = 'granted') ORDER BY id;
DROP OWNED BY adr_pipeline;
DROP ROLE adr_pipeline;
DROP ROLE adr_dashboard;
DROP FUNCTION try_action(text, text, boolean, boolean);

-- A job's events go with it, deleted or truncated (a trigger: job_events
-- has no foreign key).
SELECT count(*) > 0 AS has_events FROM adr_ops.job_events;
DELETE FROM adr_ops.processing_jobs WHERE pipeline = 'granted';
SELECT count(*) AS orphan_events FROM adr_ops.job_events e
 WHERE NOT EXISTS (SELECT FROM adr_ops.processing_jobs p WHERE p.id = e.job_id);
SELECT count(*) > 0 AS has_events FROM adr_ops.job_events;
DELETE FROM adr_ops.processing_jobs;
SELECT count(*) AS events FROM adr_ops.job_events;
SELECT adr_ops.adr_job_submit('truncated') > 0 AS submitted;
-- A status outside the five is refused, even written by hand.
SELECT s AS status, adr_ops._job_status_valid(s) AS valid
  FROM unnest('{queued,running,succeeded,failed,cancelled,Queued,queue,queuedd,"",done}'::text[]) s;
\set VERBOSITY terse
UPDATE adr_ops.processing_jobs SET status = 'done' WHERE pipeline = 'truncated';
\set VERBOSITY default
TRUNCATE adr_ops.processing_jobs CASCADE;
SELECT count(*) AS events FROM adr_ops.job_events;
