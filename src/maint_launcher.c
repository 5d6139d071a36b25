/*-------------------------------------------------------------------------
 *
 * maint_launcher.c
 *	  The maintenance scheduler's launcher and run workers: the loop, the
 *	  signals, the history they record.
 *
 * The launcher is one static background worker, connected to
 * adr_ops.database.  Each pass of its loop is one transaction:
 *   - record the runs whose workers have exited (their slots, scheduler.h);
 *   - load adr_ops.schedules, keeping each schedule's next fire time;
 *   - accept adr_run_task() requests and fire due schedules, each run a row
 *     in adr_ops.task_runs and a slot, up to adr_ops.max_workers at once;
 *   - prune the history older than adr_ops.task_run_retention;
 * and after commit it starts the run workers, so that their rows exist.
 * Between passes it sleeps on its latch until the next fire time, a change
 * of the schedule table (a trigger sets the latch at commit), a worker's
 * exit (bgw_notify_pid), or a second when runs are going: it then checks
 * whether DROP DATABASE waits for one of them, and stops that run, since
 * before 17 nothing else would.
 *
 * A launcher that was down past several fire times runs each missed
 * schedule once: the next fire is computed from the last one recorded.
 * After a crash the postmaster restarts everything; the new launcher marks
 * the runs left 'running' as failed, interrupted.  On a hot standby nothing
 * can be written, so due runs of writing tasks are skipped and the skip is
 * published in shared memory for adr_maintenance_status().
 *
 * A run worker connects to the run's database as the bootstrap superuser,
 * runs the task (maint_task.c), and writes the outcome into its slot; an ERROR
 * is copied into the slot before the worker exits with it.
 *
 * IDENTIFICATION
 *	  src/maint_launcher.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_database_d.h"
#include "catalog/pg_type_d.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "adr_ops.h"
#include "compat.h"
#include "scheduler.h"

PGDLLEXPORT void adr_launcher_main(Datum main_arg) pg_attribute_noreturn();
PGDLLEXPORT void adr_run_main(Datum main_arg) pg_attribute_noreturn();

#define LN_IDLE_MS			60000	/* longest sleep with nothing due */
#define LN_BUSY_MS			1000	/* sleep while runs are going */
#define LN_RETRY_MS			10000	/* sleep after an error, without the
										 * extension, or in recovery */
#define LN_PRUNE_EVERY_MS	(3600 * 1000)

/* One schedule as the launcher keeps it between passes. */
typedef struct LnSchedule
{
	int64		id;
	char	   *name;
	char	   *schedule;
	char	   *task;
	char	   *dbname;
	char	   *options;
	bool		enabled;
	bool		valid;
	AdrCronSchedule parsed;
	TimestampTz next_fire;
	TimestampTz standby_skip_at;
} LnSchedule;

/* A run to start once the pass has committed. */
typedef struct LnStart
{
	int			slotno;
	int64		run_id;
	int			request;		/* -1 for a scheduled run */
} LnStart;

static MemoryContext ln_loop_context;
static MemoryContext ln_sched_context;
static LnSchedule *ln_schedules;
static int	ln_nschedules;
static BackgroundWorkerHandle *ln_handles[ADR_MAX_WORKERS];
static bool ln_cleanup_done = false;
static bool ln_waiting_logged = false;
static bool ln_version_logged = false;
static TimestampTz ln_last_prune = 0;

/* The pass hooks other modules registered, in order. */
#define LN_MAX_PASS_HOOKS	8
static AdrLauncherPassHook ln_pass_hooks[LN_MAX_PASS_HOOKS];
static int	ln_npass_hooks = 0;

/* ---------- registration ---------- */

/*
 * Register a hook the launcher calls in every pass (see scheduler.h).
 * Called from a module's initialisation.
 */
void
adr_launcher_pass_register(AdrLauncherPassHook hook)
{
	if (ln_npass_hooks >= LN_MAX_PASS_HOOKS)
		elog(ERROR, "adr_ops: more than %d launcher pass hooks registered", LN_MAX_PASS_HOOKS);
	ln_pass_hooks[ln_npass_hooks++] = hook;
}

/* Call the pass hooks. */
static void
ln_call_pass_hooks(bool in_recovery, bool extension_ready)
{
	int			i;

	for (i = 0; i < ln_npass_hooks; i++)
		ln_pass_hooks[i] (in_recovery, extension_ready);
}

/* Called from _PG_init: the launcher, when preloading and not upgrading. */
void
adr_worker_register(void)
{
	BackgroundWorker worker = {0};

	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;

	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "adr_ops");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "adr_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "adr_ops launcher %s", ADR_OPS_VERSION);
	snprintf(worker.bgw_type, BGW_MAXLEN, "adr_ops launcher");
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

/*
 * Start the run worker of a slot the launcher has filled.  Returns false
 * when no background worker slot is free (max_worker_processes).
 */
bool
adr_start_run_worker(int slotno, int64 run_id)
{
	BackgroundWorker worker = {0};
	BackgroundWorkerHandle *handle;
	MemoryContext old;
	bool		ok;

	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "adr_ops");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "adr_run_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "adr_ops task run %lld", (long long) run_id);
	snprintf(worker.bgw_type, BGW_MAXLEN, "adr_ops task");
	worker.bgw_main_arg = Int32GetDatum(slotno);
	memcpy(worker.bgw_extra, &run_id, sizeof(run_id));
	worker.bgw_notify_pid = MyProcPid;

	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&worker, &handle);
	MemoryContextSwitchTo(old);
	if (ok)
	{
		if (ln_handles[slotno])
			pfree(ln_handles[slotno]);
		ln_handles[slotno] = handle;
	}
	return ok;
}

/* ---------- SQL through SPI ---------- */

/* Execute a statement with arguments; ERROR unless it returns expected. */
static void
ln_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
		int expected)
{
	if (SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0) != expected)
		elog(ERROR, "adr_ops launcher: could not execute \"%s\"", sql);
}

/* Insert a task_runs row; returns its id. */
static int64
ln_insert_run(int64 schedule_id, const char *task, const char *dbname,
			  TimestampTz scheduled_at, const char *status, const char *detail)
{
	Oid			types[6] = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID};
	Datum		values[6];
	char		nulls[7] = "      ";
	bool		isnull;

	values[0] = Int64GetDatum(schedule_id);
	values[1] = CStringGetTextDatum(task);
	values[2] = CStringGetTextDatum(dbname);
	values[3] = TimestampTzGetDatum(scheduled_at);
	values[4] = CStringGetTextDatum(status);
	values[5] = detail ? CStringGetTextDatum(detail) : (Datum) 0;
	if (schedule_id == 0)
		nulls[0] = 'n';
	if (scheduled_at == 0)
		nulls[3] = 'n';
	if (detail == NULL)
		nulls[5] = 'n';

	ln_exec("INSERT INTO adr_ops.task_runs "
			"  (schedule_id, task, database, scheduled_at, status, detail, finished_at) "
			"VALUES ($1, $2, $3, $4, $5, $6, "
			"        CASE WHEN $5 = 'running' THEN NULL ELSE pg_catalog.clock_timestamp() END) "
			"RETURNING id",
			6, types, values, nulls, SPI_OK_INSERT_RETURNING);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Is the extension there (and not being created or dropped)?  SQL objects
 * older than the library still serve: the launcher and the tasks use only
 * what every released version has, and say once that it should be updated.
 */
static bool
ln_extension_ready(void)
{
	char	   *version = adr_extension_version();

	if (version == NULL)
	{
		if (!ln_waiting_logged)
			ereport(LOG,
					(errmsg("adr_ops launcher is waiting for CREATE EXTENSION adr_ops in database \"%s\"",
							adr_ops_database)));
		ln_waiting_logged = true;
		ln_version_logged = false;
		return false;
	}
	ln_waiting_logged = false;

	if (strcmp(version, ADR_OPS_VERSION) == 0)
		ln_version_logged = false;
	else if (!ln_version_logged)
	{
		if (adr_version_cmp(version, ADR_OPS_VERSION) < 0)
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("adr_ops library version %s runs with version %s of the extension in database \"%s\"",
							ADR_OPS_VERSION, version, adr_ops_database),
					 errdetail("The maintenance scheduler goes on; features added after version %s are not available until the extension is updated.",
							   version),
					 errhint("Run ALTER EXTENSION adr_ops UPDATE in every database where adr_ops is installed.")));
		else
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("adr_ops library version %s is older than version %s of the extension in database \"%s\"",
							ADR_OPS_VERSION, version, adr_ops_database),
					 errdetail("The maintenance scheduler goes on with what the older library knows."),
					 errhint("Install the adr_ops build of version %s and restart the server.", version)));
		ln_version_logged = true;
	}
	return true;
}

/* Runs left 'running' by a crash or a restart, except those still going. */
static void
ln_mark_interrupted(void)
{
	Datum	   *ids = palloc(sizeof(Datum) * ADR_MAX_WORKERS);
	int			n = 0;
	int			i;
	Oid			types[1] = {INT8ARRAYOID};
	Datum		values[1];

	LWLockAcquire(adr_shared->lock, LW_SHARED);
	for (i = 0; i < ADR_MAX_WORKERS; i++)
		if (adr_shared->slots[i].state != ADR_SLOT_FREE)
			ids[n++] = Int64GetDatum(adr_shared->slots[i].run_id);
	LWLockRelease(adr_shared->lock);

	values[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	ln_exec("UPDATE adr_ops.task_runs "
			"   SET status = 'failed', finished_at = pg_catalog.clock_timestamp(), "
			"       detail = 'interrupted: the server or the adr_ops launcher stopped during the run' "
			" WHERE status = 'running' AND id <> ALL ($1)",
			1, types, values, NULL, SPI_OK_UPDATE);
	if (SPI_processed > 0)
		ereport(LOG,
				(errmsg("adr_ops launcher marked %llu interrupted runs as failed",
						(unsigned long long) SPI_processed)));
}

/* Record the outcome of every run whose worker has exited; free its slot. */
static void
ln_record_exits(void)
{
	int			i;

	for (i = 0; i < ADR_MAX_WORKERS; i++)
	{
		AdrRunSlot *slot = &adr_shared->slots[i];
		int64		run_id;
		bool		reported;
		char		status[16];
		int32		objects;
		char	   *detail;
		Oid			types[4] = {INT8OID, TEXTOID, INT4OID, TEXTOID};
		Datum		values[4];

		LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
		if (slot->state != ADR_SLOT_EXITED)
		{
			LWLockRelease(adr_shared->lock);
			continue;
		}
		run_id = slot->run_id;
		reported = slot->reported;
		strlcpy(status, slot->status, sizeof(status));
		objects = slot->objects;
		detail = pstrdup(slot->detail);
		memset(slot, 0, sizeof(AdrRunSlot));
		LWLockRelease(adr_shared->lock);

		if (!reported)
		{
			strlcpy(status, "failed", sizeof(status));
			detail = "the task worker exited without reporting; see the server log";
		}
		values[0] = Int64GetDatum(run_id);
		values[1] = CStringGetTextDatum(status);
		values[2] = Int32GetDatum(objects);
		values[3] = CStringGetTextDatum(detail);
		ln_exec("UPDATE adr_ops.task_runs "
				"   SET status = $2, objects = $3, detail = $4, "
				"       finished_at = pg_catalog.clock_timestamp() "
				" WHERE id = $1 AND status = 'running'",
				4, types, values, NULL, SPI_OK_UPDATE);
	}
}

/*
 * Notice the workers that died before attaching to their slot (the
 * postmaster could not fork, or the database vanished), and stop the runs
 * whose database someone is dropping: DROP DATABASE holds an
 * AccessExclusiveLock on it while it waits for the others to leave.
 * Returns true while any run is going.
 */
static bool
ln_watch_runs(void)
{
	bool		busy = false;
	int			i;

	for (i = 0; i < ADR_MAX_WORKERS; i++)
	{
		AdrRunSlot *slot = &adr_shared->slots[i];
		AdrSlotState state;
		char		dbname[NAMEDATALEN];
		pid_t		pid;
		Oid			dboid;
		LOCKTAG		tag;

		LWLockAcquire(adr_shared->lock, LW_SHARED);
		state = slot->state;
		strlcpy(dbname, slot->dbname, sizeof(dbname));
		LWLockRelease(adr_shared->lock);
		if (state != ADR_SLOT_STARTING && state != ADR_SLOT_RUNNING)
			continue;
		busy = true;

		if (ln_handles[i] != NULL &&
			GetBackgroundWorkerPid(ln_handles[i], &pid) == BGWH_STOPPED)
		{
			LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
			if (slot->state == ADR_SLOT_STARTING)
				slot->state = ADR_SLOT_EXITED;
			LWLockRelease(adr_shared->lock);
			continue;
		}

		dboid = get_database_oid(dbname, true);
		if (!OidIsValid(dboid))
			continue;
		SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, dboid, 0);
		if (LockAcquire(&tag, RowExclusiveLock, true, true) != LOCKACQUIRE_NOT_AVAIL)
		{
			LockRelease(&tag, RowExclusiveLock, true);
			continue;
		}
		ereport(LOG,
				(errmsg("adr_ops launcher is stopping the task in database \"%s\": the database is being dropped or altered",
						dbname)));
		LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
		if (!slot->reported)
		{
			slot->reported = true;
			strlcpy(slot->status, "failed", sizeof(slot->status));
			strlcpy(slot->detail, "interrupted: the database is being dropped or altered",
					sizeof(slot->detail));
		}
		LWLockRelease(adr_shared->lock);
		if (ln_handles[i] != NULL)
			TerminateBackgroundWorker(ln_handles[i]);
	}

	/* The launcher must not hold up DROP DATABASE of its own database. */
	{
		LOCKTAG		tag;

		SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, MyDatabaseId, 0);
		if (LockAcquire(&tag, RowExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		{
			ereport(LOG,
					(errmsg("adr_ops launcher is leaving database \"%s\": it is being dropped or altered",
							adr_ops_database)));
			proc_exit(1);
		}
		LockRelease(&tag, RowExclusiveLock, true);
	}
	return busy;
}

/* Load the schedules, keeping the next fire time of those unchanged. */
static void
ln_load_schedules(TimestampTz now, pg_tz *tz)
{
	MemoryContext newcxt = AllocSetContextCreate(TopMemoryContext, "adr_ops schedules",
												 ALLOCSET_SMALL_SIZES);
	LnSchedule *loaded;
	uint64		i;

	ln_exec("SELECT s.id, s.name, s.schedule, s.task, s.database::text, s.options::text, s.enabled, "
			"       (SELECT max(r.scheduled_at) FROM adr_ops.task_runs r WHERE r.schedule_id = s.id) "
			"  FROM adr_ops.schedules s ORDER BY s.id",
			0, NULL, NULL, NULL, SPI_OK_SELECT);

	loaded = MemoryContextAllocZero(newcxt, sizeof(LnSchedule) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		LnSchedule *s = &loaded[i];
		LnSchedule *prev = NULL;
		bool		isnull;
		Datum		last;
		char		err[ADR_CRON_ERRLEN];
		int			pos,
					j;
		MemoryContext old;

		old = MemoryContextSwitchTo(newcxt);
		s->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		s->name = SPI_getvalue(tup, desc, 2);
		s->schedule = SPI_getvalue(tup, desc, 3);
		s->task = SPI_getvalue(tup, desc, 4);
		s->dbname = SPI_getvalue(tup, desc, 5);
		s->options = SPI_getvalue(tup, desc, 6);
		MemoryContextSwitchTo(old);
		s->enabled = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
		last = SPI_getbinval(tup, desc, 8, &isnull);

		s->valid = adr_cron_parse(s->schedule, &s->parsed, err, sizeof(err), &pos);
		if (!s->valid)
		{
			ereport(WARNING,
					(errmsg("adr_ops launcher ignores schedule \"%s\": invalid schedule \"%s\"",
							s->name, s->schedule),
					 errdetail("At character %d: %s.", pos, err)));
			continue;
		}

		for (j = 0; j < ln_nschedules; j++)
			if (ln_schedules[j].id == s->id)
				prev = &ln_schedules[j];
		if (prev && prev->valid && strcmp(prev->schedule, s->schedule) == 0)
		{
			s->next_fire = prev->next_fire;
			s->standby_skip_at = prev->standby_skip_at;
		}
		else if (!isnull && (prev == NULL || strcmp(prev->schedule, s->schedule) == 0))
			s->next_fire = adr_schedule_next(&s->parsed, DatumGetTimestampTz(last), tz);
		else
			s->next_fire = adr_schedule_next(&s->parsed, now, tz);
	}

	if (ln_sched_context)
		MemoryContextDelete(ln_sched_context);
	ln_sched_context = newcxt;
	ln_schedules = loaded;
	ln_nschedules = (int) SPI_processed;
}

/* Claim a free slot for a run; -1 if none. */
static int
ln_claim_slot(int64 schedule_id, const char *task, const char *dbname, const char *options)
{
	int			i;

	LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < ADR_MAX_WORKERS; i++)
	{
		AdrRunSlot *slot = &adr_shared->slots[i];

		if (slot->state != ADR_SLOT_FREE)
			continue;
		memset(slot, 0, sizeof(AdrRunSlot));
		slot->state = ADR_SLOT_STARTING;
		slot->schedule_id = schedule_id;
		strlcpy(slot->task, task, sizeof(slot->task));
		strlcpy(slot->dbname, dbname, sizeof(slot->dbname));
		strlcpy(slot->options, options, sizeof(slot->options));
		LWLockRelease(adr_shared->lock);
		return i;
	}
	LWLockRelease(adr_shared->lock);
	return -1;
}

static int
ln_running(int64 schedule_id)
{
	int			n = 0;
	int			i;

	LWLockAcquire(adr_shared->lock, LW_SHARED);
	for (i = 0; i < ADR_MAX_WORKERS; i++)
		if (adr_shared->slots[i].state != ADR_SLOT_FREE &&
			(schedule_id == 0 || adr_shared->slots[i].schedule_id == schedule_id))
			n++;
	LWLockRelease(adr_shared->lock);
	return n;
}

/* Give a claimed slot its run id, and remember to start it after commit. */
static List *
ln_launch(List *to_start, int slotno, int64 run_id, int request)
{
	LnStart    *start = palloc(sizeof(LnStart));

	LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
	adr_shared->slots[slotno].run_id = run_id;
	LWLockRelease(adr_shared->lock);

	start->slotno = slotno;
	start->run_id = run_id;
	start->request = request;
	return lappend(to_start, start);
}

/* Accept the pending adr_run_task() requests that a worker is free for. */
static List *
ln_serve_requests(List *to_start)
{
	int			r;

	for (r = 0; r < ADR_MAX_REQUESTS; r++)
	{
		AdrRequest *req = &adr_shared->requests[r];
		char		task[ADR_NAME_LEN];
		char		dbname[NAMEDATALEN];
		char		options[ADR_OPTIONS_LEN];
		int			slotno;
		int64		run_id;

		LWLockAcquire(adr_shared->lock, LW_SHARED);
		if (req->state != ADR_REQUEST_PENDING)
		{
			LWLockRelease(adr_shared->lock);
			continue;
		}
		strlcpy(task, req->task, sizeof(task));
		strlcpy(dbname, req->dbname, sizeof(dbname));
		strlcpy(options, req->options, sizeof(options));
		LWLockRelease(adr_shared->lock);

		if (!OidIsValid(get_database_oid(dbname, true)))
		{
			LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
			if (req->state == ADR_REQUEST_PENDING)
			{
				snprintf(req->error, sizeof(req->error), "database \"%s\" does not exist", dbname);
				req->state = ADR_REQUEST_REFUSED;
				if (req->requester_latch)
					SetLatch(req->requester_latch);
			}
			LWLockRelease(adr_shared->lock);
			continue;
		}
		if (ln_running(0) >= adr_ops_max_workers ||
			(slotno = ln_claim_slot(0, task, dbname, options)) < 0)
			return to_start;	/* wait for a worker to finish */
		run_id = ln_insert_run(0, task, dbname, 0, "running", NULL);
		to_start = ln_launch(to_start, slotno, run_id, r);
	}
	return to_start;
}

/* Fire the due schedules. */
static List *
ln_fire(TimestampTz now, pg_tz *tz, bool in_recovery, List *to_start)
{
	int			i;

	for (i = 0; i < ln_nschedules; i++)
	{
		LnSchedule *s = &ln_schedules[i];
		const AdrTask *task = NULL;
		int			slotno;
		int64		run_id;
		TimestampTz fire = s->next_fire;

		if (!s->enabled || !s->valid || s->next_fire > now)
			continue;

		/* adr_schedule() checks the task; a hand-edited row may not */
		task = adr_task_find(s->task);

		if (in_recovery)
		{
			if (task == NULL || task->writes)
			{
				s->standby_skip_at = now;
				ereport(LOG,
						(errmsg("adr_ops launcher skipped schedule \"%s\": in recovery", s->name)));
			}
		}
		else if (task == NULL)
			ln_insert_run(s->id, s->task, s->dbname, fire, "failed",
						  psprintf("unrecognized task \"%s\"", s->task));
		else if (ln_running(s->id) > 0)
			ln_insert_run(s->id, s->task, s->dbname, fire, "skipped",
						  "skipped: the previous run is still going");
		else if (task->heavy && !adr_window_contains(now, tz))
			ln_insert_run(s->id, s->task, s->dbname, fire, "skipped",
						  psprintf("skipped: outside the maintenance window %s",
								   adr_ops_maintenance_window));
		else if (ln_running(0) >= adr_ops_max_workers ||
				 (slotno = ln_claim_slot(s->id, s->task, s->dbname, s->options)) < 0)
			continue;			/* due; fires when a worker is free */
		else
		{
			run_id = ln_insert_run(s->id, s->task, s->dbname, fire, "running", NULL);
			to_start = ln_launch(to_start, slotno, run_id, -1);
		}
		/* once, however many fire times were missed */
		s->next_fire = adr_schedule_next(&s->parsed, Max(now, fire), tz);
	}
	return to_start;
}

/* Publish each schedule's next fire time for adr_maintenance_status(). */
static void
ln_publish(void)
{
	int			i;

	LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
	adr_shared->nschedules = Min(ln_nschedules, ADR_MAX_SCHEDULE_STATES);
	for (i = 0; i < adr_shared->nschedules; i++)
	{
		adr_shared->schedules[i].schedule_id = ln_schedules[i].id;
		adr_shared->schedules[i].next_fire =
			ln_schedules[i].enabled && ln_schedules[i].valid &&
			!TIMESTAMP_IS_NOEND(ln_schedules[i].next_fire) ? ln_schedules[i].next_fire : 0;
		adr_shared->schedules[i].standby_skip_at = ln_schedules[i].standby_skip_at;
	}
	LWLockRelease(adr_shared->lock);
}

static void
ln_prune(TimestampTz now)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];

	if (adr_ops_task_run_retention == 0 ||
		!TimestampDifferenceExceeds(ln_last_prune, now, LN_PRUNE_EVERY_MS))
		return;
	values[0] = Int32GetDatum(adr_ops_task_run_retention);
	/* The last run of each schedule stays: missed fires are counted from it. */
	ln_exec("DELETE FROM adr_ops.task_runs r "
			" WHERE r.finished_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1) "
			"   AND (r.schedule_id IS NULL OR r.id <> (SELECT max(l.id) FROM adr_ops.task_runs l "
			"                                         WHERE l.schedule_id = r.schedule_id))",
			1, types, values, NULL, SPI_OK_DELETE);
	ln_last_prune = now;
}

/* Start the workers of this pass's runs, and answer their requesters. */
static void
ln_start(List *to_start)
{
	ListCell   *lc;

	foreach(lc, to_start)
	{
		LnStart    *start = lfirst(lc);

		if (!adr_start_run_worker(start->slotno, start->run_id))
		{
			AdrRunSlot *slot = &adr_shared->slots[start->slotno];

			LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
			slot->state = ADR_SLOT_EXITED;
			slot->reported = true;
			strlcpy(slot->status, "failed", sizeof(slot->status));
			strlcpy(slot->detail,
					"could not start a background worker: raise max_worker_processes",
					sizeof(slot->detail));
			LWLockRelease(adr_shared->lock);
			SetLatch(MyLatch);	/* record it in the next pass */
		}
		if (start->request >= 0)
		{
			AdrRequest *req = &adr_shared->requests[start->request];
			Latch	   *latch = NULL;

			LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
			if (req->state == ADR_REQUEST_PENDING)
			{
				req->run_id = start->run_id;
				req->state = ADR_REQUEST_ACCEPTED;
				latch = req->requester_latch;
			}
			LWLockRelease(adr_shared->lock);
			if (latch)
				SetLatch(latch);
		}
	}
}

/* One pass; returns how long to sleep. */
static long
ln_pass(void)
{
	TimestampTz now;
	bool		in_recovery;
	bool		busy;
	pg_tz	   *tz;
	List	   *to_start = NIL;
	long		sleep_ms = LN_IDLE_MS;
	int			i;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "adr_ops launcher pass");

	busy = ln_watch_runs();
	in_recovery = RecoveryInProgress();
	now = GetCurrentTimestamp();

	if (!ln_extension_ready())
	{
		sleep_ms = LN_RETRY_MS;
		ln_call_pass_hooks(in_recovery, false);
	}
	else
	{
		tz = adr_schedule_tz();
		if (!in_recovery)
		{
			if (!ln_cleanup_done)
				ln_mark_interrupted();
			ln_cleanup_done = true;
			ln_record_exits();
		}
		ln_load_schedules(now, tz);
		if (!in_recovery)
			to_start = ln_serve_requests(to_start);
		to_start = ln_fire(now, tz, in_recovery, to_start);
		if (!in_recovery)
			ln_prune(now);
		ln_publish();
		ln_call_pass_hooks(in_recovery, true);

		for (i = 0; i < ln_nschedules; i++)
		{
			LnSchedule *s = &ln_schedules[i];
			long		secs;
			int			usecs;

			if (!s->enabled || !s->valid || TIMESTAMP_IS_NOEND(s->next_fire))
				continue;
			TimestampDifference(now, s->next_fire, &secs, &usecs);
			sleep_ms = Min(sleep_ms, secs * 1000 + (usecs + 999) / 1000);
		}
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(ln_loop_context);
	pgstat_report_activity(STATE_IDLE, NULL);

	ln_start(to_start);
	if (busy || to_start != NIL)
		sleep_ms = Min(sleep_ms, LN_BUSY_MS);
	/* Replayed changes to the schedules fire no trigger on a standby. */
	if (in_recovery)
		sleep_ms = Min(sleep_ms, LN_RETRY_MS);
	return Max(sleep_ms, 10);
}

static void
ln_detach(int code, Datum arg)
{
	LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
	if (adr_shared->launcher_pid == MyProcPid)
	{
		adr_shared->launcher_pid = 0;
		adr_shared->launcher_latch = NULL;
	}
	LWLockRelease(adr_shared->lock);
}

void
adr_launcher_main(Datum main_arg)
{
	pid_t		other;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* One launcher at a time. */
	LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
	other = adr_shared->launcher_pid;
	if (other != 0 && other != MyProcPid && kill(other, 0) == 0)
	{
		LWLockRelease(adr_shared->lock);
		ereport(LOG, (errmsg("adr_ops launcher is already running with PID %d", (int) other)));
		proc_exit(0);
	}
	adr_shared->launcher_pid = MyProcPid;
	adr_shared->launcher_latch = MyLatch;
	LWLockRelease(adr_shared->lock);
	before_shmem_exit(ln_detach, (Datum) 0);

	BackgroundWorkerInitializeConnection(adr_ops_database, NULL, 0);
	pgstat_report_appname("adr_ops launcher");
	/* It runs as a superuser: resolve nothing through a writable schema. */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	ln_loop_context = AllocSetContextCreate(TopMemoryContext, "adr_ops launcher",
											ALLOCSET_DEFAULT_SIZES);
	ereport(LOG, (errmsg("adr_ops launcher started in database \"%s\"", adr_ops_database)));

	for (;;)
	{
		long		sleep_ms = LN_RETRY_MS;

		MemoryContextSwitchTo(ln_loop_context);
		MemoryContextReset(ln_loop_context);

		/*
		 * An ERROR in a pass (a table locked or dropped under us, a full
		 * disk) is logged and the pass retried later; the launcher stays.
		 */
		PG_TRY();
		{
			sleep_ms = ln_pass();
		}
		PG_CATCH();
		{
			HOLD_INTERRUPTS();
			EmitErrorReport();
			FlushErrorState();
			AbortOutOfAnyTransaction();
			RESUME_INTERRUPTS();
			MemoryContextSwitchTo(ln_loop_context);
			pgstat_report_activity(STATE_IDLE, NULL);
		}
		PG_END_TRY();

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			char	   *old_tz = pstrdup(adr_ops_timezone);

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* Fire times were computed in the old zone: recompute them. */
			if (strcmp(old_tz, adr_ops_timezone) != 0)
				ln_nschedules = 0;
			pfree(old_tz);
		}
	}
}

/* ---------- run workers ---------- */

/* Write the outcome into the slot, if it is still this run's. */
static void
rw_report(int slotno, int64 run_id, const char *status, int objects, const char *detail)
{
	AdrRunSlot *slot = &adr_shared->slots[slotno];

	LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
	if (slot->run_id == run_id && !slot->reported)
	{
		int			len = pg_mbcliplen(detail, strlen(detail), sizeof(slot->detail) - 1);

		strlcpy(slot->status, status, sizeof(slot->status));
		slot->objects = objects;
		memcpy(slot->detail, detail, len);
		slot->detail[len] = '\0';
		slot->reported = true;
	}
	LWLockRelease(adr_shared->lock);
}

/* At exit, however it happens: mark the slot and wake the launcher. */
static void
rw_detach(int code, Datum arg)
{
	AdrRunSlot *slot = &adr_shared->slots[DatumGetInt32(arg)];
	int64		run_id;
	Latch	   *latch = NULL;

	memcpy(&run_id, MyBgworkerEntry->bgw_extra, sizeof(run_id));
	LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
	if (slot->run_id == run_id)
	{
		slot->state = ADR_SLOT_EXITED;
		latch = adr_shared->launcher_latch;
	}
	LWLockRelease(adr_shared->lock);
	if (latch)
		SetLatch(latch);
}

void
adr_run_main(Datum main_arg)
{
	int			slotno = DatumGetInt32(main_arg);
	AdrRunSlot *slot = &adr_shared->slots[slotno];
	int64		run_id;
	char		dbname[NAMEDATALEN];
	char		taskname[ADR_NAME_LEN];
	char	   *options;
	MemoryContext taskcxt;
	AdrTaskRun	run = {0};

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	memcpy(&run_id, MyBgworkerEntry->bgw_extra, sizeof(run_id));

	LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
	if (slot->state != ADR_SLOT_STARTING || slot->run_id != run_id)
	{
		LWLockRelease(adr_shared->lock);
		proc_exit(0);			/* the launcher gave up on this run */
	}
	slot->state = ADR_SLOT_RUNNING;
	strlcpy(dbname, slot->dbname, sizeof(dbname));
	strlcpy(taskname, slot->task, sizeof(taskname));
	options = MemoryContextStrdup(TopMemoryContext, slot->options);
	LWLockRelease(adr_shared->lock);
	before_shmem_exit(rw_detach, Int32GetDatum(slotno));

	BackgroundWorkerInitializeConnection(dbname, NULL, 0);
	pgstat_report_appname(psprintf("adr_ops %s", taskname));
	/* It runs as a superuser: resolve nothing through a writable schema. */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);

	taskcxt = AllocSetContextCreate(TopMemoryContext, "adr_ops task run",
									ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(taskcxt);
	run.options = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(options)));
	initStringInfo(&run.detail);

	PG_TRY();
	{
		adr_task_execute(adr_task_lookup(taskname), &run);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(taskcxt);
		edata = CopyErrorData();
		rw_report(slotno, run_id, "failed", run.objects,
				  run.detail.len > 0 ? psprintf("%s; %s", run.detail.data, edata->message)
				  : edata->message);
		PG_RE_THROW();
	}
	PG_END_TRY();

	rw_report(slotno, run_id, run.failed ? "failed" : "succeeded", run.objects, run.detail.data);
	proc_exit(0);
}
