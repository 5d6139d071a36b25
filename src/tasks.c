/*-------------------------------------------------------------------------
 *
 * tasks.c
 *	  The built-in maintenance tasks, run inside a run worker.
 *
 * A task is an AdrTask: a name, whether the task writes (so cannot run on
 * a hot standby), whether it is heavy (so confined to
 * adr_ops.maintenance_window), the options it takes, its entry point, and
 * the version of the SQL objects it needs.  The built-in ones are the table
 * tk_tasks; a task of another concern registers itself with
 * adr_task_register() from its module's initialisation, so that adding a
 * concern touches none of this file.  A task that is one query of the
 * extension's own SQL names it in sql instead of an entry point.
 *
 * Each task picks its objects in one short transaction, then works on them
 * one by one, each in its own transaction, the way autovacuum does: VACUUM
 * and REINDEX CONCURRENTLY cannot run inside a transaction block or a
 * subtransaction, so an object's ERROR is caught, recorded, and its
 * transaction aborted, and the task goes on with the next object.
 * statement_timeout and lock_timeout come from the run's options, so no
 * statement waits long for a lock the application holds.
 *
 * Runs as the bootstrap superuser in the run's database, where the
 * extension need not be installed: the queries here name only catalogs.
 *
 * IDENTIFICATION
 *	  src/tasks.c
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

/* An object a task picked: its OID, qualified name, and why. */
typedef struct TkObject
{
	Oid			oid;
	char	   *name;
	char	   *why;
	bool		needed;
} TkObject;

static void tk_vacuum_analyze(AdrTaskRun *run);
static void tk_analyze(AdrTaskRun *run);
static void tk_reindex(AdrTaskRun *run);

static const char *const tk_common_options[] = {"lock_timeout", "statement_timeout", NULL};
static const char *const tk_vacuum_options[] = {"dead_pct", "tables", NULL};
static const char *const tk_analyze_options[] = {"mod_pct", "tables", NULL};
static const char *const tk_reindex_options[] = {"bloat_pct", "tables", NULL};
const char *const adr_task_no_options[] = {NULL};

static const AdrTask tk_tasks[] = {
	{"vacuum_analyze", true, true, false, "5s", tk_vacuum_options, tk_vacuum_analyze,
	"VACUUM (ANALYZE) tables whose dead tuples exceed dead_pct (default 10) or that were never vacuumed or analyzed"},
	{"analyze", true, false, false, "5s", tk_analyze_options, tk_analyze,
	"ANALYZE tables modified by more than mod_pct (default 10) since their last analyze, or never analyzed"},
	{"reindex", true, true, true, "10min", tk_reindex_options, tk_reindex,
	"REINDEX INDEX CONCURRENTLY btree indexes whose estimated bloat exceeds bloat_pct (default 30); drop invalid leftovers of failed ones"},
	{"health_snapshot", true, false, false, "5s", adr_task_no_options, NULL,
		"store adr_health_check() in health_history (adr_health_snapshot())", NULL,
		"SELECT n, format('stored %s health checks', n) FROM adr_ops.adr_health_snapshot() n"},
	{"statement_snapshot", true, false, false, "5s", adr_task_no_options, NULL,
		"store the pg_stat_statements entries that changed since the last snapshot (adr_snapshot_statements())", NULL,
		"SELECT n, format('stored %s changed statement entries', n) FROM adr_ops.adr_snapshot_statements() n"},
	{"job_reaper", true, false, false, "5s", adr_task_no_options, NULL,
		"fail running pipeline jobs whose heartbeat is lost; re-queue failed ones with attempts left (adr_job_reap())", NULL,
		"SELECT lost + requeued, format('%s running jobs lost their heartbeat; %s failed jobs re-queued', lost, requeued) "
		"  FROM adr_ops.adr_job_reap()"},
};

/* Tasks of other concerns, in the order their modules registered them. */
#define TK_MAX_REGISTERED 16
static const AdrTask *tk_registered[TK_MAX_REGISTERED];
static int	tk_nregistered = 0;

/*
 * Register a task of another concern.  Called from the module's
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

/* The i-th task, the built-in ones first; NULL past the last. */
static const AdrTask *
tk_nth(int i)
{
	if (i < lengthof(tk_tasks))
		return &tk_tasks[i];
	i -= lengthof(tk_tasks);
	return i < tk_nregistered ? tk_registered[i] : NULL;
}

/*
 * Tables of the run, with the option "tables" (names, qualified or not)
 * limiting the set.  $1 is the options jsonb.
 */
#define TK_TABLE_FILTER \
	"c.relkind IN ('r', 'm') AND c.relpersistence <> 't' " \
	"AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' " \
	"AND ($1 -> 'tables' IS NULL OR EXISTS (SELECT FROM jsonb_array_elements_text($1 -> 'tables') t(name) " \
	"     WHERE t.name IN (c.relname, n.nspname || '.' || c.relname, format('%I.%I', n.nspname, c.relname))))"

/* The task of that name, or NULL. */
const AdrTask *
adr_task_find(const char *name)
{
	const AdrTask *t;
	int			i;

	for (i = 0; (t = tk_nth(i)) != NULL; i++)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

/* The task of that name, or ERROR listing the tasks there are. */
const AdrTask *
adr_task_lookup(const char *name)
{
	StringInfoData known;
	const AdrTask *task = adr_task_find(name);
	const AdrTask *t;
	int			i;

	if (task != NULL)
		return task;

	initStringInfo(&known);
	for (i = 0; (t = tk_nth(i)) != NULL; i++)
		appendStringInfo(&known, "%s%s", i > 0 ? ", " : "", t->name);
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

/*
 * Arm statement_timeout for one statement of the run: postgres.c arms it
 * only for a client's statements.  Disarmed on every way out.
 */
static void
tk_timer_on(void)
{
	if (StatementTimeout > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
}

static void
tk_timer_off(void)
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
 * Run a query with the options as $1 in its own transaction and return its
 * rows (oid, name, why, needed) as TkObjects in the caller's context.
 */
static List *
tk_collect(AdrTaskRun *run, const char *query)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			argtypes[1] = {JSONBOID};
	Datum		args[1] = {JsonbPGetDatum(run->options)};
	List	   *result = NIL;
	uint64		i;

	adr_task_xact_begin(query, false);
	tk_timer_on();
	if (SPI_execute_with_args(query, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not select the objects of the task");
	tk_timer_off();

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(caller);
		TkObject   *obj = palloc(sizeof(TkObject));
		bool		isnull;

		obj->oid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		obj->name = SPI_getvalue(tup, desc, 2);
		obj->why = SPI_getvalue(tup, desc, 3);
		obj->needed = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		result = lappend(result, obj);
		MemoryContextSwitchTo(old);
	}

	adr_task_xact_end(caller);
	return result;
}

/* Could the run take lockmode on relid now?  A short transaction of its own. */
static bool
tk_lock_available(Oid relid, LOCKMODE lockmode)
{
	MemoryContext caller = CurrentMemoryContext;
	bool		ok;

	StartTransactionCommand();
	ok = ConditionalLockRelationOid(relid, lockmode);
	if (ok)
		UnlockRelationOid(relid, lockmode);
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
	return ok;
}

/*
 * Execute one utility statement as a top-level command, as if sent by a
 * client, in its own transaction(s).  Returns NULL on success or the error
 * message, after logging the error and aborting its transaction.  Also used
 * by the backup verification worker (CREATE/DROP DATABASE).
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
		tk_timer_on();
		ProcessUtility(stmt, sql, false, PROCESS_UTILITY_TOPLEVEL, NULL, NULL,
					   None_Receiver, NULL);
		tk_timer_off();
		if (ActiveSnapshotSet())
			PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		tk_timer_off();
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
 * What the detail of a run (task_runs, which pg_monitor reads) says of an
 * object's error.  The message itself goes to the server log: a message
 * can carry the object's data (an index expression failing on a row says
 * "invalid input syntax for type integer: "<value>"") or any text its
 * owner's code raised, with any SQLSTATE it chose.  So only the server's
 * own messages about the command itself are copied, compared whole: a
 * cancel or a timeout, a deadlock, a lack of shared memory.
 */
static const char *const tk_command_messages[] = {
	"canceling statement due to statement timeout",
	"canceling statement due to lock timeout",
	"canceling statement due to user request",
	"deadlock detected",
	"could not serialize access due to concurrent update",
	"out of shared memory",
	NULL
};

static char *
tk_error_detail(const char *message, int sqlerrcode)
{
	const char *const *m;

	for (m = tk_command_messages; *m; m++)
		if (strcmp(message, *m) == 0)
			return pstrdup(message);
	return psprintf("error %s (its message is in the server log)",
					unpack_sql_state(sqlerrcode));
}

/*
 * Apply one statement to each needed object, appending to the detail what
 * was done, what was skipped because it was locked, and what failed.
 * verb_fmt is the statement with one %s for the object's name.
 */
static void
tk_apply(AdrTaskRun *run, List *objects, const char *verb, const char *sql_fmt,
		 LOCKMODE lockmode, const char *none_needed)
{
	StringInfoData done,
				skipped,
				failed;
	int			not_needed = 0;
	ListCell   *lc;

	initStringInfo(&done);
	initStringInfo(&skipped);
	initStringInfo(&failed);

	foreach(lc, objects)
	{
		TkObject   *obj = lfirst(lc);
		char	   *error;
		int			code;

		CHECK_FOR_INTERRUPTS();
		if (!obj->needed)
		{
			not_needed++;
			continue;
		}
		if (lockmode != NoLock && !tk_lock_available(obj->oid, lockmode))
		{
			appendStringInfo(&skipped, "%s%s", skipped.len ? ", " : "", obj->name);
			continue;
		}
		error = adr_utility_code(psprintf(sql_fmt, obj->name), &code);
		if (error)
		{
			run->failed = true;
			appendStringInfo(&failed, "%s%s: %s", failed.len ? "; " : "", obj->name,
							 tk_error_detail(error, code));
			continue;
		}
		run->objects++;
		appendStringInfo(&done, "%s%s (%s)", done.len ? ", " : "", obj->name, obj->why);
	}

	if (run->detail.len > 0)
		appendStringInfoString(&run->detail, "; ");
	if (done.len)
		appendStringInfo(&run->detail, "%s %d: %s", verb, run->objects, done.data);
	else
		appendStringInfo(&run->detail, "%s none", verb);
	if (skipped.len)
		appendStringInfo(&run->detail, "; skipped (locked): %s", skipped.data);
	if (failed.len)
		appendStringInfo(&run->detail, "; failed: %s", failed.data);
	appendStringInfo(&run->detail, "; %d %s", not_needed, none_needed);
}

static void
tk_vacuum_analyze(AdrTaskRun *run)
{
	List	   *objects = tk_collect(run,
									 "SELECT c.oid, format('%I.%I', n.nspname, c.relname), "
									 "       CASE WHEN coalesce(s.last_vacuum, s.last_autovacuum) IS NULL THEN 'never vacuumed' "
									 "            WHEN coalesce(s.last_analyze, s.last_autoanalyze) IS NULL THEN 'never analyzed' "
									 "            ELSE format('%s dead of %s rows', s.n_dead_tup, s.n_live_tup + s.n_dead_tup) END, "
									 "       coalesce(s.last_vacuum, s.last_autovacuum) IS NULL "
									 "       OR coalesce(s.last_analyze, s.last_autoanalyze) IS NULL "
									 "       OR s.n_dead_tup > coalesce(($1 ->> 'dead_pct')::numeric, 10) / 100.0 "
									 "                         * greatest(s.n_live_tup + s.n_dead_tup, 1) "
									 "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
									 "  LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid "
									 " WHERE c.relkind = 'r' AND " TK_TABLE_FILTER
									 " ORDER BY s.n_dead_tup DESC NULLS LAST, 2");

	tk_apply(run, objects, "vacuumed", "VACUUM (ANALYZE, SKIP_LOCKED) %s",
			 ShareUpdateExclusiveLock, "tables did not need it");
}

static void
tk_analyze(AdrTaskRun *run)
{
	List	   *objects = tk_collect(run,
									 "SELECT c.oid, format('%I.%I', n.nspname, c.relname), "
									 "       CASE WHEN coalesce(s.last_analyze, s.last_autoanalyze) IS NULL THEN 'never analyzed' "
									 "            ELSE format('%s rows modified', s.n_mod_since_analyze) END, "
									 "       coalesce(s.last_analyze, s.last_autoanalyze) IS NULL "
									 "       OR s.n_mod_since_analyze > 50 + coalesce(($1 ->> 'mod_pct')::numeric, 10) / 100.0 "
									 "                                  * greatest(c.reltuples, 0) "
									 "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
									 "  LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid "
									 " WHERE " TK_TABLE_FILTER
									 " ORDER BY 2");

	tk_apply(run, objects, "analyzed", "ANALYZE (SKIP_LOCKED) %s",
			 ShareUpdateExclusiveLock, "tables did not need it");
}

/*
 * Btree bloat from statistics: the pages the index would need for its
 * tuples (key widths from pg_stats, 8-byte tuple header and 4-byte line
 * pointer, leaf fillfactor, page and btree overhead) against the pages it
 * has.  Expression indexes and tables without statistics cannot be
 * estimated and are left alone.  The task keeps this estimate of its own
 * rather than the bloat report's (bloat.sql, bloat.c): like the other
 * maintenance tasks it runs in any database it is scheduled in, which
 * need not have the extension's SQL installed; and the report's sample
 * mode would read pages of every index at every run.
 */
static void
tk_reindex(AdrTaskRun *run)
{
	List	   *leftovers;
	List	   *objects;
	ListCell   *lc;

	/* A failed REINDEX CONCURRENTLY leaves invalid _ccnew/_ccold indexes. */
	leftovers = tk_collect(run,
						   "SELECT i.indexrelid, format('%I.%I', n.nspname, ic.relname), "
						   "       'invalid leftover of a failed REINDEX CONCURRENTLY', true "
						   "  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
						   "  JOIN pg_class c ON c.oid = i.indrelid "
						   "  JOIN pg_namespace n ON n.oid = ic.relnamespace "
						   " WHERE NOT i.indisvalid AND ic.relname ~ '_cc(new|old)[0-9]*$' AND " TK_TABLE_FILTER
						   " ORDER BY 2");
	foreach(lc, leftovers)
	{
		TkObject   *obj = lfirst(lc);
		int			code;
		char	   *error = adr_utility_code(psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", obj->name),
											 &code);

		if (run->detail.len > 0)
			appendStringInfoString(&run->detail, "; ");
		if (error)
		{
			run->failed = true;
			appendStringInfo(&run->detail, "could not drop invalid index %s: %s", obj->name,
							 tk_error_detail(error, code));
		}
		else
			appendStringInfo(&run->detail, "dropped invalid index %s (%s)", obj->name, obj->why);
	}

	objects = tk_collect(run,
						 "WITH est AS ( "
						 "  SELECT i.indexrelid, format('%I.%I', n.nspname, ic.relname) AS name, "
						 "         ic.relpages, w.has_expr, w.ncols > w.nstats AS no_stats, "
						 "         ceil(greatest(ic.reltuples, 0) * (8 + ceil(w.width / 8.0) * 8 + 4) "
						 "              / ((current_setting('block_size')::int - 24 - 16) "
						 "                 * coalesce((SELECT option_value::int FROM pg_options_to_table(ic.reloptions) "
						 "                              WHERE option_name = 'fillfactor'), 90) / 100.0)) + 1 AS expected "
						 "    FROM pg_index i "
						 "    JOIN pg_class ic ON ic.oid = i.indexrelid "
						 "    JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree' "
						 "    JOIN pg_class c ON c.oid = i.indrelid "
						 "    JOIN pg_namespace n ON n.oid = c.relnamespace "
						 "    CROSS JOIN LATERAL ( "
						 "      SELECT bool_or(k.attnum = 0) AS has_expr, count(*) AS ncols, "
						 "             count(s.avg_width) AS nstats, sum(s.avg_width) AS width "
						 "        FROM unnest(i.indkey::int2[]) AS k(attnum) "
						 "        LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
						 "        LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname "
						 "                            AND s.attname = a.attname AND NOT s.inherited) w "
						 "   WHERE i.indisvalid AND i.indisready AND " TK_TABLE_FILTER
						 ") "
						 "SELECT indexrelid, name, "
						 "       CASE WHEN has_expr THEN 'expression index, not estimated' "
						 "            WHEN no_stats THEN 'no statistics' "
						 "            ELSE format('%s%% bloat, %s of %s pages', "
						 "                        round(100 * (1 - expected / greatest(relpages, 1))), "
						 "                        greatest(relpages - expected, 0), relpages) END, "
						 "       NOT has_expr AND NOT no_stats AND relpages >= 2 "
						 "       AND 100 * (1 - expected / greatest(relpages, 1)) "
						 "           >= coalesce(($1 ->> 'bloat_pct')::numeric, 30) "
						 "  FROM est ORDER BY relpages DESC, name");

	tk_apply(run, objects, "reindexed", "REINDEX INDEX CONCURRENTLY %s",
			 NoLock, "indexes below bloat_pct or not estimated");
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
	tk_timer_on();
	if (SPI_execute(sql, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not run \"%s\"", sql);
	tk_timer_off();
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
	const AdrTask *t;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; (t = tk_nth(i)) != NULL; i++)
	{
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
