--
-- The maintenance scheduler's SQL surface: schedule parsing and
-- evaluation, the schedule API and its errors.  Runs themselves are tested
-- with real workers in t/.
--
-- Errors print their detail and hint; the PL/pgSQL context would only pin
-- line numbers.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- The tasks there are.
SELECT task, writes, heavy, options FROM adr_ops.adr_tasks() ORDER BY task;

-- Cron evaluation: lists, ranges, steps, names, month ends, leap days.
SELECT s, adr_ops.adr_next_run(s, a, 'UTC') AS next
  FROM (VALUES ('*/15 * * * *',      '2026-01-31 23:50:00+00'::timestamptz),
               ('0 0 * * *',         '2026-01-31 23:50:00+00'),
               ('0 0 31 * *',        '2026-04-01 00:00:00+00'),   -- April has 30 days
               ('0 12 29 2 *',       '2026-03-01 00:00:00+00'),   -- next leap day: 2028
               ('0 12 29 2 *',       '2028-02-29 12:00:00+00'),   -- strictly after
               ('30 4 1,15 * 5',     '2026-05-01 05:00:00+00'),   -- 1st, 15th or a Friday
               ('30 4 */2 * 5',      '2026-05-01 05:00:00+00'),   -- odd day and a Friday
               ('0 9 * JAN-MAR MON-FRI', '2026-03-31 09:00:00+00'),
               ('0 0 * * 7',         '2026-11-26 00:00:00+00'),   -- 7 is Sunday
               ('5-10/5 */6 * * *',  '2026-11-26 18:06:00+00'),
               ('@hourly',           '2026-12-31 23:59:59+00'),
               ('@daily',            '2026-12-31 23:59:59+00'),
               ('@weekly',           '2026-12-31 23:59:59+00'),
               ('@monthly',          '2026-12-31 23:59:59+00'),
               ('@yearly',           '2026-06-30 00:00:00+00'),
               ('10 seconds',        '2026-11-26 18:00:00.5+00')) AS t(s, a)
 ORDER BY s, a;

-- A day-of-week step runs to the end of the field, 7 (Sunday): from
-- Saturday 2026-11-28, 6/1 fires next on Sunday, as 6-7/1 does.
SELECT s, adr_ops.adr_next_run(s, '2026-11-28 00:00:00+00', 'UTC') AS next
  FROM (VALUES ('0 0 * * 6/1'), ('0 0 * * 6-7/1')) AS t(s)
 ORDER BY s;

-- Daylight saving in America/New_York: 2026-03-08 02:00 -> 03:00 and
-- 2026-11-01 02:00 -> 01:00.  A job in the skipped hour runs once, at the
-- jump; a job in the repeated hour runs once.
SET timezone = 'America/New_York';
SELECT s, a, adr_ops.adr_next_run(s, a, 'America/New_York') AS next
  FROM (VALUES ('30 2 * * *',   '2026-03-07 03:00:00-05'::timestamptz),
               ('30 2 * * *',   '2026-03-08 03:00:00-04'),
               ('*/30 * * * *', '2026-03-08 01:45:00-05'),
               ('*/30 * * * *', '2026-03-08 03:00:00-04'),
               ('30 1 * * *',   '2026-10-31 12:00:00-04'),
               ('30 1 * * *',   '2026-11-01 01:30:00-04'),
               ('30 1 * * *',   '2026-11-01 01:10:00-05'),
               ('0 * * * *',    '2026-11-01 00:30:00-04'),
               ('0 * * * *',    '2026-11-01 01:00:00-04')) AS t(s, a)
 ORDER BY s, a;
-- The same schedule in another zone.
SET timezone = 'UTC';
SELECT adr_ops.adr_next_run('0 9 * * *', '2026-11-26 00:00:00+00', 'Asia/Tokyo') AS tokyo,
       adr_ops.adr_next_run('0 9 * * *', '2026-11-26 00:00:00+00', 'UTC') AS utc;
RESET timezone;

-- Bad schedules are refused with where the fault is.
SELECT adr_ops.adr_next_run('61 * * * *', now(), 'UTC');
SELECT adr_ops.adr_next_run('* * * *', now(), 'UTC');
SELECT adr_ops.adr_next_run('0 0 * FOO *', now(), 'UTC');
SELECT adr_ops.adr_next_run('0 10-5 * * *', now(), 'UTC');
SELECT adr_ops.adr_next_run('*/0 * * * *', now(), 'UTC');
SELECT adr_ops.adr_next_run('60 seconds', now(), 'UTC');
SELECT adr_ops.adr_next_run('@sometimes', now(), 'UTC');
SELECT adr_ops.adr_next_run('0 0 * * *', now(), 'Mars/Olympus');
SELECT adr_ops.adr_next_run(NULL, now()) IS NULL AS null_in_null_out;

-- The defaults CREATE EXTENSION made.
SELECT name, schedule, task, database = current_database() AS here, options, enabled
  FROM adr_ops.schedules ORDER BY name;

-- Scheduling, and rescheduling by name.
SELECT adr_ops.adr_schedule('nightly', '0 1 * * *', 'vacuum_analyze',
                            options => '{"dead_pct": 20, "tables": ["public.t"], "lock_timeout": "2s"}') > 0 AS scheduled;
SELECT adr_ops.adr_schedule('nightly', '15 1 * * *', 'analyze') =
       (SELECT id FROM adr_ops.schedules WHERE name = 'nightly') AS same_id;
SELECT name, schedule, task, options, created_by = session_user AS by_me
  FROM adr_ops.schedules WHERE name = 'nightly';
SELECT name, schedule, task, enabled, next_run > now() AS next_in_future
  FROM adr_ops.adr_maintenance_status() ORDER BY name;
SELECT adr_ops.adr_unschedule('nightly');

-- Errors.
SELECT adr_ops.adr_schedule('x', '0 25 * * *', 'analyze');
SELECT adr_ops.adr_schedule('x', '0 0 30 2 *', 'analyze');
SELECT adr_ops.adr_schedule('x', '@daily', 'defragment');
SELECT adr_ops.adr_schedule('x', '@daily', 'analyze', options => '{"dead_pct": 5}');
SELECT adr_ops.adr_schedule('x', '@daily', 'analyze', options => '{"mod_pct": 500}');
SELECT adr_ops.adr_schedule('x', '@daily', 'analyze', options => '{"lock_timeout": "soon"}');
SELECT adr_ops.adr_schedule('x', '@daily', 'analyze', options => '{"tables": "t"}');
SELECT adr_ops.adr_schedule('x', '@daily', 'analyze', options => '[1]');
SELECT adr_ops.adr_schedule('x', '@daily', 'analyze', 'no_such_database');
SELECT adr_ops.adr_schedule('x', NULL, 'analyze');
SELECT adr_ops.adr_schedule('x', '@daily', 'analyze',
                            options => jsonb_build_object('tables',
                                (SELECT jsonb_agg(repeat('t', 100)) FROM generate_series(1, 50))));
-- Not even a superuser's hand can store a schedule the launcher cannot read.
INSERT INTO adr_ops.schedules (name, schedule, task, database)
VALUES ('x', '61 * * * *', 'analyze', current_database());
SELECT adr_ops.adr_unschedule('x');
SELECT count(*) AS nothing_left_behind FROM adr_ops.schedules WHERE name = 'x';

SELECT adr_ops.adr_run_task('defragment');
SELECT adr_ops.adr_run_task('analyze', options => '{"bloat_pct": 1}');
SELECT adr_ops.adr_run_task('analyze', NULL);
SELECT adr_ops.adr_run_task('reindex');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT adr_ops.adr_run_task('analyze');
ROLLBACK;

-- The scheduler's settings.
SHOW adr_ops.max_workers;
SET adr_ops.maintenance_window = '02:00-05:00';
ALTER SYSTEM SET adr_ops.maintenance_window = '2 to 5';
ALTER SYSTEM SET adr_ops.maintenance_window = '05:00-05:00';
ALTER SYSTEM SET adr_ops.timezone = 'Mars/Olympus';

-- Who may schedule: nobody but the owner and those granted it.
CREATE ROLE adr_watcher IN ROLE pg_monitor;
SET ROLE adr_watcher;
SELECT count(*) > 0 AS sees_schedules FROM adr_ops.adr_maintenance_status();
SELECT adr_ops.adr_schedule('mine', '@daily', 'analyze');
SELECT adr_ops.adr_run_task('analyze');
DELETE FROM adr_ops.schedules;
RESET ROLE;
-- EXECUTE on adr_schedule is the privilege: it works without table rights.
GRANT EXECUTE ON FUNCTION adr_ops.adr_schedule(text, text, text, name, jsonb),
                          adr_ops.adr_unschedule(text) TO adr_watcher;
SET ROLE adr_watcher;
SELECT adr_ops.adr_schedule('mine', '@daily', 'analyze') > 0 AS scheduled;
SELECT created_by FROM adr_ops.schedules WHERE name = 'mine';  -- the caller, not the definer
SELECT adr_ops.adr_unschedule('mine');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION adr_ops.adr_schedule(text, text, text, name, jsonb),
                           adr_ops.adr_unschedule(text) FROM adr_watcher;
DROP ROLE adr_watcher;
