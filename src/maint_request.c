/*-------------------------------------------------------------------------
 *
 * maint_request.c
 *	  SQL entry points of the maintenance scheduler that talk to the
 *	  launcher: adr_run_task(), the trigger that wakes the launcher when
 *	  the schedules change, and the launcher's view of each schedule.
 *
 * adr_run_task() hands its request to the launcher through shared memory
 * (scheduler.h) and waits, interruptibly, until the launcher has recorded
 * the run in adr_ops.task_runs; with wait => true it then polls that row,
 * with a fresh snapshot each time, until the run has ended.
 *
 * IDENTIFICATION
 *	  src/maint_request.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type_d.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "adr_ops.h"
#include "compat.h"
#include "scheduler.h"

PG_FUNCTION_INFO_V1(adr_run_task);
PG_FUNCTION_INFO_V1(adr_scheduler_wake);
PG_FUNCTION_INFO_V1(adr_launcher_schedules);

#define MR_POLL_MS 100

static bool mr_wake_registered = false;
static bool mr_wake_pending = false;

/* Hand a request to the launcher; returns its slot in requests[]. */
static int
mr_request(const char *task, const char *dbname, const char *options)
{
	Latch	   *launcher;
	int			r;

	LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
	if (adr_shared->launcher_pid == 0)
	{
		LWLockRelease(adr_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the adr_ops launcher is not running"),
				 errhint("The server log says why; the launcher needs database \"%s\" (\"adr_ops.database\") and restarts within 10 seconds.",
						 adr_ops_database)));
	}
	for (r = 0; r < ADR_MAX_REQUESTS; r++)
		if (adr_shared->requests[r].state == ADR_REQUEST_FREE)
			break;
	if (r == ADR_MAX_REQUESTS)
	{
		LWLockRelease(adr_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("too many adr_run_task() calls are waiting for the launcher"),
				 errdetail("At most %d calls can wait at once.", ADR_MAX_REQUESTS),
				 errhint("Try again when one of them has started.")));
	}
	memset(&adr_shared->requests[r], 0, sizeof(AdrRequest));
	adr_shared->requests[r].state = ADR_REQUEST_PENDING;
	adr_shared->requests[r].requester = MyProcPid;
	adr_shared->requests[r].requester_latch = MyLatch;
	strlcpy(adr_shared->requests[r].task, task, ADR_NAME_LEN);
	strlcpy(adr_shared->requests[r].dbname, dbname, NAMEDATALEN);
	strlcpy(adr_shared->requests[r].options, options, ADR_OPTIONS_LEN);
	launcher = adr_shared->launcher_latch;
	LWLockRelease(adr_shared->lock);

	if (launcher)
		SetLatch(launcher);
	return r;
}

/*
 * Wait until the launcher has accepted request r; returns the run id.  The
 * request slot is freed however this ends (a cancel included).
 */
static int64
mr_wait_accepted(int r)
{
	AdrRequest *req = &adr_shared->requests[r];
	volatile int64 run_id = 0;
	char		error[256] = "";

	PG_TRY();
	{
		for (;;)
		{
			AdrRequestState state;
			pid_t		launcher;

			LWLockAcquire(adr_shared->lock, LW_SHARED);
			state = req->state;
			run_id = req->run_id;
			strlcpy(error, req->error, sizeof(error));
			launcher = adr_shared->launcher_pid;
			LWLockRelease(adr_shared->lock);

			if (state == ADR_REQUEST_ACCEPTED || state == ADR_REQUEST_REFUSED)
				break;
			if (launcher == 0)
			{
				strlcpy(error, "the adr_ops launcher stopped before starting the task", sizeof(error));
				break;
			}
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		LWLockAcquire(adr_shared->lock, LW_EXCLUSIVE);
		if (req->requester == MyProcPid)
			memset(req, 0, sizeof(AdrRequest));
		LWLockRelease(adr_shared->lock);
	}
	PG_END_TRY();

	if (error[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not run the task: %s", error)));
	return run_id;
}

/*
 * adr_run_task(task text, database name, options jsonb, wait boolean)
 *		returns adr_ops.task_runs
 *
 * Runs a task now through a worker of the launcher and returns its
 * task_runs row: at once (status running) or, with wait, when it ends.
 */
Datum
adr_run_task(PG_FUNCTION_ARGS)
{
	char	   *task;
	char	   *dbname;
	Jsonb	   *options;
	char	   *options_text;
	bool		wait;
	int64		run_id;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	Datum		result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("task, database, options and wait must not be null")));
	task = text_to_cstring(PG_GETARG_TEXT_PP(0));
	dbname = NameStr(*PG_GETARG_NAME(1));
	options = PG_GETARG_JSONB_P(2);
	wait = PG_GETARG_BOOL(3);

	adr_require_preload("adr_run_task()");
	adr_require_scheduler_database("adr_run_task()");
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot run a task during recovery"),
				 errdetail("The tasks write, and a hot standby cannot record their runs."),
				 errhint("Run it on the primary.")));
	adr_task_validate(task, options);
	if (wait && adr_task_lookup(task)->concurrent && strcmp(dbname, get_database_name(MyDatabaseId)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot wait for task \"%s\" from a transaction in database \"%s\"", task, dbname),
				 errdetail("The task's CONCURRENTLY commands wait for every older transaction in their database, this one included."),
				 errhint("Call adr_run_task() with wait => false and watch adr_ops.task_runs.")));
	options_text = JsonbToCString(NULL, &options->root, VARSIZE(options));
	if (wait && IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot wait for a task in a REPEATABLE READ or SERIALIZABLE transaction"),
				 errdetail("The transaction's snapshot would never see the run end."),
				 errhint("Call adr_run_task() with wait => false, or in a READ COMMITTED transaction.")));

	run_id = mr_wait_accepted(mr_request(task, dbname, options_text));

	SPI_connect();
	values[0] = Int64GetDatum(run_id);
	for (;;)
	{
		bool		isnull;
		char	   *status;

		if (SPI_execute_with_args("SELECT status FROM adr_ops.task_runs WHERE id OPERATOR(pg_catalog.=) $1",
								  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read task run %lld", (long long) run_id);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("task run %lld has disappeared from adr_ops.task_runs", (long long) run_id)));
		status = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (!wait || strcmp(status, "running") != 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 MR_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}

	if (SPI_execute_with_args("SELECT * FROM adr_ops.task_runs WHERE id OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read task run %lld", (long long) run_id);
	result = PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc));
	SPI_finish();
	PG_RETURN_DATUM(result);
}

static void
mr_wake_at_commit(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && mr_wake_pending)
		adr_wake_launcher();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		mr_wake_pending = false;
}

/*
 * _scheduler_wake(): statement trigger on adr_ops.schedules.  Wakes the
 * launcher when the transaction commits, so a change takes effect at once
 * and not at the launcher's next timeout.
 */
Datum
adr_scheduler_wake(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "_scheduler_wake() must be called as a trigger");
	if (!mr_wake_registered)
	{
		RegisterXactCallback(mr_wake_at_commit, NULL);
		mr_wake_registered = true;
	}
	mr_wake_pending = true;
	return PointerGetDatum(NULL);
}

/*
 * _launcher_schedules() returns (schedule_id bigint, next_fire timestamptz,
 * standby_skip_at timestamptz): what the running launcher knows.  Empty
 * when adr_ops is not preloaded or the launcher has not run.
 */
Datum
adr_launcher_schedules(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AdrScheduleState *states;
	int			n = 0;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	/* Schedule ids are the launcher database's; elsewhere they mean nothing. */
	if (adr_shared == NULL || adr_ops_database == NULL ||
		strcmp(get_database_name(MyDatabaseId), adr_ops_database) != 0)
		return (Datum) 0;

	states = palloc(sizeof(AdrScheduleState) * ADR_MAX_SCHEDULE_STATES);
	LWLockAcquire(adr_shared->lock, LW_SHARED);
	if (adr_shared->launcher_pid != 0)
	{
		n = adr_shared->nschedules;
		memcpy(states, adr_shared->schedules, sizeof(AdrScheduleState) * n);
	}
	LWLockRelease(adr_shared->lock);

	for (i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, states[i].next_fire == 0, states[i].standby_skip_at == 0};

		values[0] = Int64GetDatum(states[i].schedule_id);
		values[1] = TimestampTzGetDatum(states[i].next_fire);
		values[2] = TimestampTzGetDatum(states[i].standby_skip_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
