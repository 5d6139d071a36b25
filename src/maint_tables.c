/*-------------------------------------------------------------------------
 *
 * maint_tables.c
 *	  The maintenance tasks on tables and indexes: vacuum_analyze, analyze
 *	  and reindex.
 *
 * Each task picks its objects in one short transaction, then works on them
 * one by one, each in its own transaction, the way autovacuum does: VACUUM
 * and REINDEX CONCURRENTLY cannot run inside a transaction block or a
 * subtransaction, so an object's ERROR is caught, recorded, and its
 * transaction aborted, and the task goes on with the next object.
 * statement_timeout and lock_timeout come from the run's options (set by
 * the task runtime, maint_task.c), so no statement waits long for a lock
 * the application holds.
 *
 * Runs as the bootstrap superuser in the run's database, where the
 * extension need not be installed: the queries here name only catalogs.
 *
 * IDENTIFICATION
 *	  src/maint_tables.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "scheduler.h"

/* An object a task picked: its OID, qualified name, and why. */
typedef struct MtObject
{
	Oid			oid;
	char	   *name;
	char	   *why;
	bool		needed;
} MtObject;

static void mt_vacuum_analyze(AdrTaskRun *run);
static void mt_analyze(AdrTaskRun *run);
static void mt_reindex(AdrTaskRun *run);

static const char *const mt_vacuum_options[] = {"dead_pct", "tables", NULL};
static const char *const mt_analyze_options[] = {"mod_pct", "tables", NULL};
static const char *const mt_reindex_options[] = {"bloat_pct", "tables", NULL};

static const AdrTask mt_tasks[] = {
	{"vacuum_analyze", true, true, false, "5s", mt_vacuum_options, mt_vacuum_analyze,
	"VACUUM (ANALYZE) tables whose dead tuples exceed dead_pct (default 10) or that were never vacuumed or analyzed"},
	{"analyze", true, false, false, "5s", mt_analyze_options, mt_analyze,
	"ANALYZE tables modified by more than mod_pct (default 10) since their last analyze, or never analyzed"},
	{"reindex", true, true, true, "10min", mt_reindex_options, mt_reindex,
	"REINDEX INDEX CONCURRENTLY btree indexes whose estimated bloat exceeds bloat_pct (default 30); drop invalid leftovers of failed ones"},
};

/* Register the tasks; called from _PG_init. */
void
adr_maint_tables_init(void)
{
	int			i;

	for (i = 0; i < lengthof(mt_tasks); i++)
		adr_task_register(&mt_tasks[i]);
}

/*
 * Tables of the run, with the option "tables" (names, qualified or not)
 * limiting the set.  $1 is the options jsonb.
 */
#define MT_TABLE_FILTER \
	"c.relkind IN ('r', 'm') AND c.relpersistence <> 't' " \
	"AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' " \
	"AND ($1 -> 'tables' IS NULL OR EXISTS (SELECT FROM jsonb_array_elements_text($1 -> 'tables') t(name) " \
	"     WHERE t.name IN (c.relname, n.nspname || '.' || c.relname, format('%I.%I', n.nspname, c.relname))))"

/*
 * Run a query with the options as $1 in its own transaction and return its
 * rows (oid, name, why, needed) as MtObjects in the caller's context.
 */
static List *
mt_collect(AdrTaskRun *run, const char *query)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			argtypes[1] = {JSONBOID};
	Datum		args[1] = {JsonbPGetDatum(run->options)};
	List	   *result = NIL;
	uint64		i;

	adr_task_xact_begin(query, false);
	adr_task_timer_on();
	if (SPI_execute_with_args(query, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not select the objects of the task");
	adr_task_timer_off();

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(caller);
		MtObject   *obj = palloc(sizeof(MtObject));
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
mt_lock_available(Oid relid, LOCKMODE lockmode)
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
 * What the detail of a run (task_runs, which pg_monitor reads) says of an
 * object's error.  The message itself goes to the server log: a message
 * can carry the object's data (an index expression failing on a row says
 * "invalid input syntax for type integer: "<value>"") or any text its
 * owner's code raised, with any SQLSTATE it chose.  So only the server's
 * own messages about the command itself are copied, compared whole: a
 * cancel or a timeout, a deadlock, a lack of shared memory.
 */
static const char *const mt_command_messages[] = {
	"canceling statement due to statement timeout",
	"canceling statement due to lock timeout",
	"canceling statement due to user request",
	"deadlock detected",
	"could not serialize access due to concurrent update",
	"out of shared memory",
	NULL
};

static char *
mt_error_detail(const char *message, int sqlerrcode)
{
	const char *const *m;

	for (m = mt_command_messages; *m; m++)
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
mt_apply(AdrTaskRun *run, List *objects, const char *verb, const char *sql_fmt,
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
		MtObject   *obj = lfirst(lc);
		char	   *error;
		int			code;

		CHECK_FOR_INTERRUPTS();
		if (!obj->needed)
		{
			not_needed++;
			continue;
		}
		if (lockmode != NoLock && !mt_lock_available(obj->oid, lockmode))
		{
			appendStringInfo(&skipped, "%s%s", skipped.len ? ", " : "", obj->name);
			continue;
		}
		error = adr_utility_code(psprintf(sql_fmt, obj->name), &code);
		if (error)
		{
			run->failed = true;
			appendStringInfo(&failed, "%s%s: %s", failed.len ? "; " : "", obj->name,
							 mt_error_detail(error, code));
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
mt_vacuum_analyze(AdrTaskRun *run)
{
	List	   *objects = mt_collect(run,
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
									 " WHERE c.relkind = 'r' AND " MT_TABLE_FILTER
									 " ORDER BY s.n_dead_tup DESC NULLS LAST, 2");

	mt_apply(run, objects, "vacuumed", "VACUUM (ANALYZE, SKIP_LOCKED) %s",
			 ShareUpdateExclusiveLock, "tables did not need it");
}

static void
mt_analyze(AdrTaskRun *run)
{
	List	   *objects = mt_collect(run,
									 "SELECT c.oid, format('%I.%I', n.nspname, c.relname), "
									 "       CASE WHEN coalesce(s.last_analyze, s.last_autoanalyze) IS NULL THEN 'never analyzed' "
									 "            ELSE format('%s rows modified', s.n_mod_since_analyze) END, "
									 "       coalesce(s.last_analyze, s.last_autoanalyze) IS NULL "
									 "       OR s.n_mod_since_analyze > 50 + coalesce(($1 ->> 'mod_pct')::numeric, 10) / 100.0 "
									 "                                  * greatest(c.reltuples, 0) "
									 "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
									 "  LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid "
									 " WHERE " MT_TABLE_FILTER
									 " ORDER BY 2");

	mt_apply(run, objects, "analyzed", "ANALYZE (SKIP_LOCKED) %s",
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
mt_reindex(AdrTaskRun *run)
{
	List	   *leftovers;
	List	   *objects;
	ListCell   *lc;

	/* A failed REINDEX CONCURRENTLY leaves invalid _ccnew/_ccold indexes. */
	leftovers = mt_collect(run,
						   "SELECT i.indexrelid, format('%I.%I', n.nspname, ic.relname), "
						   "       'invalid leftover of a failed REINDEX CONCURRENTLY', true "
						   "  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
						   "  JOIN pg_class c ON c.oid = i.indrelid "
						   "  JOIN pg_namespace n ON n.oid = ic.relnamespace "
						   " WHERE NOT i.indisvalid AND ic.relname ~ '_cc(new|old)[0-9]*$' AND " MT_TABLE_FILTER
						   " ORDER BY 2");
	foreach(lc, leftovers)
	{
		MtObject   *obj = lfirst(lc);
		int			code;
		char	   *error = adr_utility_code(psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", obj->name),
											 &code);

		if (run->detail.len > 0)
			appendStringInfoString(&run->detail, "; ");
		if (error)
		{
			run->failed = true;
			appendStringInfo(&run->detail, "could not drop invalid index %s: %s", obj->name,
							 mt_error_detail(error, code));
		}
		else
			appendStringInfo(&run->detail, "dropped invalid index %s (%s)", obj->name, obj->why);
	}

	objects = mt_collect(run,
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
						 "   WHERE i.indisvalid AND i.indisready AND " MT_TABLE_FILTER
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

	mt_apply(run, objects, "reindexed", "REINDEX INDEX CONCURRENTLY %s",
			 NoLock, "indexes below bloat_pct or not estimated");
}
