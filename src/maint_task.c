/*-------------------------------------------------------------------------
 *
 * maint_task.c
 *	  The task runtime: the registry of the tasks a schedule can name,
 *	  their options, and what a task runs with inside a run worker
 *	  (transactions, timeouts, utility statements, activity reporting).
 *
 * A task is an AdrTask: a name, whether the task writes (so cannot run on
 * a hot standby), whether it is heavy (so confined to
 * adr_ops.maintenance_window), the options it takes, its entry point, and
 * the version of the SQL objects it needs.  Every concern registers its
 * own tasks with adr_task_register() from its module's initialisation, so
 * that this file names none and adding a concern touches none of it.  A
 * task that is one query of the extension's own SQL names it in sql
 * instead of an entry point.
 *
 * A task's statements get statement_timeout and lock_timeout from the
 * run's options, so no statement waits long for a lock the application
 * holds; a task that must leave transaction blocks (VACUUM, the
 * CONCURRENTLY commands) runs each statement with adr_utility().
 *
 * Runs as the bootstrap superuser in the run's database, where the
 * extension need not be installed.
 *
 * IDENTIFICATION
 *	  src/maint_task.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "tcop/dest.h"
#include "tcop/utility.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/tuplestore.h"

#include "adr_ops.h"
#include "compat.h"
#include "scheduler.h"

PG_FUNCTION_INFO_V1(adr_tasks);

/*
 * Default statement_timeout of every task.  The default lock_timeout is the
 * task's: short where a wait would block the application, long for
 * REINDEX CONCURRENTLY, whose waits for older transactions count against
 * it but block no one.
 */
#define TK_DEFAULT_STATEMENT_TIMEOUT	"6h"

static const char *const tk_common_options[] = {"lock_timeout", "statement_timeout", NULL};
const char *const adr_task_no_options[] = {NULL};

/* The tasks, in the order their modules registered them. */
#define TK_MAX_REGISTERED 32
static const AdrTask *tk_registered[TK_MAX_REGISTERED];
static int	tk_nregistered = 0;

/*
 * Register a task.  Called from the module's
 * initialisation, in every process that loads the library; task must stay
 * valid for the life of the process (a static).
 */
void
adr_task_register(const AdrTask *task)
{
	if (tk_nregistered >= TK_MAX_REGISTERED)
		elog(ERROR, "adr_ops: more than %d tasks registered", TK_MAX_REGISTERED);
	tk_registered[tk_nregistered++] = task;
}

/* The task of that name, or NULL. */
const AdrTask *
adr_task_find(const char *name)
{
	int			i;

	for (i = 0; i < tk_nregistered; i++)
		if (strcmp(tk_registered[i]->name, name) == 0)
			return tk_registered[i];
	return NULL;
}

/* The task of that name, or ERROR listing the tasks there are. */
const AdrTask *
adr_task_lookup(const char *name)
{
	StringInfoData known;
	const AdrTask *task = adr_task_find(name);
	int			i;

	if (task != NULL)
		return task;

	initStringInfo(&known);
	for (i = 0; i < tk_nregistered; i++)
		appendStringInfo(&known, "%s%s", i > 0 ? ", " : "", tk_registered[i]->name);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unrecognized task \"%s\"", name),
			 errhint("The tasks are: %s.", known.data)));
	return NULL;				/* keep compiler quiet */
}

static bool
tk_in_list(const char *const *list, const char *key)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, key) == 0)
			return true;
	return false;
}

/* Does key end with suffix? */
static bool
tk_suffix(const char *key, const char *suffix)
{
	size_t		k = strlen(key),
				s = strlen(suffix);

	return k >= s && strcmp(key + k - s, suffix) == 0;
}

/*
 * ERROR unless options is an object whose keys the task takes, with values
 * of the right kind, told by the key's name: "tables" an array, timeouts
 * and "*_budget" durations such as "5s", "*_pct" percentages 0-100, any
 * other key true or false.
 */
void
adr_task_validate(const char *name, Jsonb *options)
{
	const AdrTask *task = adr_task_lookup(name);
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	char	   *key = NULL;

	if (!JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object")));
	{
		size_t		len = strlen(JsonbToCString(NULL, &options->root, VARSIZE(options)));

		if (len >= ADR_OPTIONS_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("options are too long"),
					 errdetail("The options take %zu bytes; at most %d fit.",
							   len, ADR_OPTIONS_LEN - 1)));
	}

	it = JsonbIteratorInit(&options->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (r == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			if (!tk_in_list(tk_common_options, key) && !tk_in_list(task->options, key))
			{
				StringInfoData valid;
				const char *const *o;

				initStringInfo(&valid);
				for (o = tk_common_options; *o; o++)
					appendStringInfo(&valid, "%s%s", valid.len ? ", " : "", *o);
				for (o = task->options; *o; o++)
					appendStringInfo(&valid, ", %s", *o);
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unrecognized option \"%s\" for task \"%s\"", key, name),
						 errhint("The options of task \"%s\" are: %s.", name, valid.data)));
			}
		}
		else if (r == WJB_VALUE)
		{
			if (strcmp(key, "tables") == 0)
			{
				if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("option \"tables\" must be an array of table names")));
			}
			else if (tk_in_list(tk_common_options, key) || tk_suffix(key, "_budget"))
			{
				int			ms;
				const char *hint = NULL;
				char	   *val = v.type == jbvString ?
					pnstrdup(v.val.string.val, v.val.string.len) : NULL;

				if (val == NULL || !parse_int(val, &ms, GUC_UNIT_MS, &hint) || ms < 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("option \"%s\" must be a duration such as \"5s\" or \"10min\"", key)));
			}
			else if (!tk_suffix(key, "_pct"))
			{
				if (v.type != jbvBool)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("option \"%s\" must be true or false", key)));
			}
			else
			{
				double		pct = -1;

				if (v.type == jbvNumeric)
					pct = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
															 NumericGetDatum(v.val.numeric)));
				if (pct < 0 || pct > 100)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("option \"%s\" must be a number from 0 to 100", key)));
			}
		}
	}
}

/*
 * Column col (from 1) of row row of the last SPI result as text, copied
 * into cxt (a task's caller context, which outlives SPI_finish), or NULL.
 */
char *
adr_spi_getstr(int row, int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

/* The text of a string option, or NULL when absent. */
const char *
adr_option_string(Jsonb *options, const char *key)
{
	JsonbValue	v;

	if (getKeyJsonValueFromContainer(&options->root, key, strlen(key), &v) == NULL ||
		v.type != jbvString)
		return NULL;
	return pnstrdup(v.val.string.val, v.val.string.len);
}

/* The value of a boolean option, false when absent. */
bool
adr_option_bool(Jsonb *options, const char *key)
{
	JsonbValue	v;

	if (getKeyJsonValueFromContainer(&options->root, key, strlen(key), &v) == NULL)
		return false;
	return v.type == jbvBool && v.val.boolean;
}

/*
 * Arm statement_timeout for one statement of the run: postgres.c arms it
 * only for a client's statements.  Disarmed on every way out.
 */
void
adr_task_timer_on(void)
{
	if (StatementTimeout > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
}

void
adr_task_timer_off(void)
{
	disable_timeout(STATEMENT_TIMEOUT, false);
}

/*
 * Begin one short transaction of a task with SPI and a snapshot, as
 * worker_spi does, reporting "what" as the activity.  With need_extension,
 * an ERROR says so when the run's database lacks the extension: the tasks
 * that call the extension's SQL run wherever they are scheduled.
 */
void
adr_task_xact_begin(const char *what, bool need_extension)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, what);

	if (need_extension && !OidIsValid(get_extension_oid("adr_ops", true)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"adr_ops\" is not installed in database \"%s\"",
						get_database_name(MyDatabaseId)),
				 errhint("Run CREATE EXTENSION adr_ops there, or schedule the task in another database.")));
}

/*
 * Commit what adr_task_xact_begin() began, back in the caller's context, and
 * send the statistics: a worker has no client loop to do it.
 */
void
adr_task_xact_end(MemoryContext caller)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
	pgstat_report_stat(true);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Execute one utility statement as a top-level command, as if sent by a
 * client, in its own transaction(s).  Returns NULL on success or the error
 * message, after logging the error and aborting its transaction.
 */
char *
adr_utility(const char *sql)
{
	return adr_utility_code(sql, NULL);
}

/*
 * adr_utility(), also setting *sqlerrcode (when not NULL) to the error's
 * SQLSTATE, or 0 on success.
 */
char *
adr_utility_code(const char *sql, int *sqlerrcode)
{
	MemoryContext caller = CurrentMemoryContext;
	char	   *error = NULL;

	if (sqlerrcode)
		*sqlerrcode = 0;

	if (PortalContext == NULL)
		PortalContext = AllocSetContextCreate(TopMemoryContext, "adr_ops utility",
											  ALLOCSET_DEFAULT_SIZES);

	PG_TRY();
	{
		RawStmt    *raw;
		PlannedStmt *stmt;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		pgstat_report_activity(STATE_RUNNING, sql);

		/*
		 * NB: VACUUM and the CONCURRENTLY commands commit and start
		 * transactions inside; what they are handed must outlive them, as
		 * MessageContext does for a client's statement.
		 */
		MemoryContextSwitchTo(PortalContext);
		raw = linitial_node(RawStmt, raw_parser(sql, RAW_PARSE_DEFAULT));
		stmt = makeNode(PlannedStmt);
		stmt->commandType = CMD_UTILITY;
		stmt->canSetTag = false;
		stmt->utilityStmt = raw->stmt;
		stmt->stmt_location = raw->stmt_location;
		stmt->stmt_len = raw->stmt_len;

		/*
		 * As PortalRunUtility() does: a snapshot for the command, which
		 * VACUUM and REINDEX CONCURRENTLY pop themselves.
		 */
		PushActiveSnapshot(GetTransactionSnapshot());
		adr_task_timer_on();
		ProcessUtility(stmt, sql, false, PROCESS_UTILITY_TOPLEVEL, NULL, NULL,
					   None_Receiver, NULL);
		adr_task_timer_off();
		if (ActiveSnapshotSet())
			PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		adr_task_timer_off();
		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		RESUME_INTERRUPTS();
		error = edata->message;
		if (sqlerrcode)
			*sqlerrcode = edata->sqlerrcode;
	}
	PG_END_TRY();

	MemoryContextSwitchTo(caller);
	MemoryContextReset(PortalContext);
	pgstat_report_activity(STATE_IDLE, NULL);
	return error;
}

/*
 * Run one query of the extension's own SQL in the run's database, which
 * must have the extension.  The query returns one row: the objects the run
 * handled, and its detail.  The body of a task that names its sql.
 */
static void
tk_sql_call(AdrTaskRun *run, const char *sql)
{
	MemoryContext caller = CurrentMemoryContext;
	bool		isnull;
	char	   *detail;

	adr_task_xact_begin(sql, true);
	adr_task_timer_on();
	if (SPI_execute(sql, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not run \"%s\"", sql);
	adr_task_timer_off();
	run->objects = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	detail = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	MemoryContextSwitchTo(caller);
	appendStringInfoString(&run->detail, detail ? detail : "");

	adr_task_xact_end(caller);
}

/*
 * A task added after the oldest released version needs the SQL objects of
 * its version: with older ones in the run's database (a new library before
 * ALTER EXTENSION UPDATE), say so instead of failing on a missing function.
 * A database without the extension is left to the task's own check.
 */
static void
tk_require_version(const AdrTask *task)
{
	MemoryContext caller = CurrentMemoryContext;
	char	   *have;
	char	   *dbname;

	StartTransactionCommand();
	have = adr_extension_version();
	dbname = get_database_name(MyDatabaseId);
	MemoryContextSwitchTo(caller);
	have = have ? pstrdup(have) : NULL;
	dbname = pstrdup(dbname);
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);

	if (have != NULL && adr_version_cmp(have, task->since) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("task \"%s\" needs version %s of extension adr_ops, but database \"%s\" has version %s",
						task->name, task->since, dbname, have),
				 errhint("Run ALTER EXTENSION adr_ops UPDATE in database \"%s\".", dbname)));
}

/*
 * Run a task: set its timeouts, then call it.  An ERROR outside the
 * per-object handling propagates to the worker, which records it.
 */
void
adr_task_execute(const AdrTask *task, AdrTaskRun *run)
{
	const char *lock_timeout = adr_option_string(run->options, "lock_timeout");
	const char *statement_timeout = adr_option_string(run->options, "statement_timeout");

	SetConfigOption("lock_timeout", lock_timeout ? lock_timeout : task->lock_timeout,
					PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("statement_timeout",
					statement_timeout ? statement_timeout : TK_DEFAULT_STATEMENT_TIMEOUT,
					PGC_SUSET, PGC_S_SESSION);

	if (task->since)
		tk_require_version(task);
	if (task->sql)
		tk_sql_call(run, task->sql);
	else
		task->run(run);
}

/*
 * adr_tasks() returns (task text, writes bool, heavy bool, options text[],
 * description text): the tasks a schedule can name.
 */
Datum
adr_tasks(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < tk_nregistered; i++)
	{
		const AdrTask *t = tk_registered[i];
		Datum		values[5];
		bool		nulls[5] = {0};
		Datum	   *opts = palloc(sizeof(Datum) * 8);
		int			n = 0;
		const char *const *o;

		for (o = tk_common_options; *o; o++)
			opts[n++] = CStringGetTextDatum(*o);
		for (o = t->options; *o && n < 8; o++)
			opts[n++] = CStringGetTextDatum(*o);
		values[0] = CStringGetTextDatum(t->name);
		values[1] = BoolGetDatum(t->writes);
		values[2] = BoolGetDatum(t->heavy);
		values[3] = PointerGetDatum(construct_array(opts, n, TEXTOID, -1, false, TYPALIGN_INT));
		values[4] = CStringGetTextDatum(t->description);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
