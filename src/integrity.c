/*-------------------------------------------------------------------------
 *
 * integrity.c
 *	  Corruption detection: amcheck run by the integrity_check task, in a
 *	  rotation within a time budget, and on demand by
 *	  adr_verify_integrity().
 *
 * Tables, materialized views and TOAST tables are verified with amcheck's
 * verify_heapam() (TOAST pointers checked too), btree indexes with
 * bt_index_check() (heapallindexed as an option): the checks pg_amcheck
 * makes by default, taking only AccessShareLock.  Each relation is
 * verified inside a subtransaction, and what was found is stored in
 * adr_ops.integrity_results (integrity.sql), which the data_integrity
 * health row reads.  The task takes relations in the order of their last
 * verification, oldest first, and starts no new one once its time budget
 * is spent, so a cluster too large for one night is covered over several.
 *
 * Why C: a verification's ERROR must be told apart by where it was raised.
 * amcheck reports index corruption by raising an error, and a page whose
 * checksum fails raises one in the buffer manager; those messages are the
 * server's own (block numbers, item pointers, relation names) and are
 * stored.  But bt_index_check() with heapallindexed evaluates the index's
 * expressions and predicates, which are the table owner's code (amcheck
 * runs them as the owner, under a security-restricted operation): an error
 * raised there may carry row data or any text and SQLSTATE the owner
 * chose.  Only errors raised by amcheck's and the storage layer's own
 * source files, with a corruption SQLSTATE, count as findings and keep
 * their message; any other error is recorded by its SQLSTATE, and its
 * message goes to the server log only.  SQL's exception blocks cannot see
 * the source file.
 *
 * amcheck's functions are bound by membership in the extension
 * (adr_ops._extension_function()), never by name through a schema that
 * others may write.
 *
 * Locking: AccessShareLock on each relation (an index's table first), taken
 * by amcheck for the length of its check; the task takes them itself first,
 * without waiting, and skips a relation it would have to wait for.
 *
 * IDENTIFICATION
 *	  src/integrity.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "adr_ops.h"
#include "compat.h"
#include "integrity.h"
#include "scheduler.h"

#define IG_DEFAULT_BUDGET_MS	(30 * 60 * 1000)
#define IG_MAX_MESSAGES			3	/* findings quoted in a result's detail */
#define IG_RESULT_COLUMNS		11

static void ig_task_run(AdrTaskRun *run);

static const char *const ig_task_options[] = {"time_budget", "heapallindexed", "tables", NULL};

/* The rotation, registered by adr_integrity_init(). */
static const AdrTask ig_task = {
	"integrity_check", true, true, false, "5s", ig_task_options, ig_task_run,
	"verify tables (verify_heapam) and btree indexes (bt_index_check, heapallindexed as an option) with amcheck, oldest verification first, for at most time_budget (default 30min); record the checksum failures counted since the last run",
	"1.1",
	NULL
};

void
adr_integrity_init(void)
{
	adr_task_register(&ig_task);
}

PG_FUNCTION_INFO_V1(adr_verify_integrity);

/* A relation to verify, and what its verification found. */
typedef struct IgRelation
{
	Oid			relid;
	Oid			tableid;		/* the table of an index; relid for a table */
	char	   *relation;		/* qualified name */
	bool		is_index;
	int64		pages;
	/* the result */
	TimestampTz started;
	TimestampTz finished;
	const char *status;			/* ok, corrupt or error */
	int			findings;
	int64		blkno;			/* first block named, or -1 */
	char	   *detail;
} IgRelation;

/*
 * amcheck's functions, from adr_ops._integrity_functions(), and the
 * prepared calls of them, with the relation as parameter $1.
 */
typedef struct IgFunctions
{
	Oid			heap;
	Oid			btree;
	SPIPlanPtr	heap_plan;
	SPIPlanPtr	btree_plan;
} IgFunctions;

/*
 * The source files whose corruption errors are the server's own words:
 * amcheck's, and the storage layer's (a page whose header or checksum is
 * invalid, a block that cannot be read whole).
 */
static const char *const ig_trusted_files[] = {
	"verify_nbtree.c", "verify_heapam.c", "verify_common.c", "bufmgr.c", "md.c", NULL
};

/*
 * Where the server cancels a statement for its statement or lock timeout
 * (ProcessInterrupts).  The owner's code can raise query_canceled or
 * lock_not_available with any message too, but not from this file.
 */
static const char *const ig_interrupt_files[] = {"postgres.c", NULL};

/* Was edata raised in one of files? */
static bool
ig_raised_in(const ErrorData *edata, const char *const *files)
{
	const char *const *f;
	const char *base;

	if (edata->filename == NULL)
		return false;
	base = strrchr(edata->filename, '/');
	base = base ? base + 1 : edata->filename;
	for (f = files; *f; f++)
		if (strcmp(base, *f) == 0)
			return true;
	return false;
}

static bool
ig_trusted(const ErrorData *edata)
{
	return ig_raised_in(edata, ig_trusted_files);
}

/* The first "block N" of a message, or -1. */
static int64
ig_block_of(const char *message)
{
	const char *p = message;

	while ((p = strstr(p, "block ")) != NULL)
	{
		unsigned long n;
		char	   *end;

		p += 6;
		if (*p < '0' || *p > '9')
			continue;
		n = strtoul(p, &end, 10);
		if (end != p)
			return (int64) n;
	}
	return -1;
}

/* The text of a query's first column of its first row, in the caller's context. */
static char *
ig_query_text(const char *sql, int nargs, Oid *argtypes, Datum *args)
{
	char	   *v;

	if (SPI_execute_with_args(sql, nargs, argtypes, args, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not run \"%s\"", sql);
	v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (v == NULL)
		elog(ERROR, "\"%s\" returned null", sql);
	return v;
}

/*
 * The prepared call of fn: _extension_call() writes it (schema-qualified,
 * each argument cast to its exact type) with args, whose first is the
 * placeholder relation '0'; that literal becomes the parameter $1 (an
 * oid), so that one plan serves every relation of a run.  select_fmt puts
 * the call in a query.
 */
static SPIPlanPtr
ig_prepare_call(Oid fn, const char *args_sql, bool heapallindexed, const char *select_fmt)
{
	Oid			argtypes[2] = {REGPROCEDUREOID, BOOLOID};
	Datum		args[2] = {ObjectIdGetDatum(fn), BoolGetDatum(heapallindexed)};
	Oid			paramtypes[1] = {OIDOID};
	char	   *call;
	char	   *first;
	SPIPlanPtr	plan;

	call = ig_query_text(psprintf("SELECT adr_ops._extension_call($1, %s)", args_sql),
						 2, argtypes, args);
	first = strstr(call, "('0'::");
	if (first == NULL)
		elog(ERROR, "unexpected call of amcheck: %s", call);
	call = psprintf("%.*s($1::%s", (int) (first - call), call, first + 6);
	plan = SPI_prepare(psprintf(select_fmt, call), 1, paramtypes);
	if (plan == NULL)
		elog(ERROR, "could not prepare \"%s\": %s", call, SPI_result_code_string(SPI_result));
	return plan;
}

/*
 * amcheck's functions in this database, or the ERROR of
 * _integrity_functions(), with their calls prepared (heapallindexed is the
 * second argument of bt_index_check()).  The plans live until SPI_finish(),
 * unless the caller keeps them.
 */
static IgFunctions
ig_functions(bool heapallindexed)
{
	IgFunctions fns;
	bool		isnull;

	if (SPI_execute("SELECT heap, btree FROM adr_ops._integrity_functions()", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not bind the functions of amcheck");
	fns.heap = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	fns.btree = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	/* verify_heapam(relation, on_error_stop, check_toast, skip, startblock, endblock) */
	fns.heap_plan = ig_prepare_call(fns.heap, "ARRAY['0', 'false', 'true', 'none', NULL, NULL]", false,
									"SELECT blkno, offnum, attnum, msg FROM %s ORDER BY blkno, offnum");
	fns.btree_plan = ig_prepare_call(fns.btree, "ARRAY['0', $2::text]", heapallindexed, "SELECT %s");
	return fns;
}

/*
 * Verify one relation inside a subtransaction, setting rel's result.  The
 * caller holds a transaction and an SPI connection; everything allocated
 * survives in the caller's memory context.
 */
static void
ig_verify(IgRelation *rel, const IgFunctions *fns)
{
	MemoryContext caller = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	StringInfoData detail;

	initStringInfo(&detail);
	rel->started = GetCurrentTimestamp();
	rel->findings = 0;
	rel->blkno = -1;
	rel->status = "ok";

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller);
	PG_TRY();
	{
		Datum		args[1] = {ObjectIdGetDatum(rel->relid)};

		if (rel->is_index)
		{
			if (SPI_execute_plan(fns->btree_plan, args, NULL, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "could not run bt_index_check()");
		}
		else
		{
			uint64		i;

			if (SPI_execute_plan(fns->heap_plan, args, NULL, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "could not run verify_heapam()");
			rel->findings = (int) SPI_processed;
			for (i = 0; i < SPI_processed; i++)
			{
				HeapTuple	tup = SPI_tuptable->vals[i];
				TupleDesc	desc = SPI_tuptable->tupdesc;
				char	   *blk = SPI_getvalue(tup, desc, 1);
				char	   *off = SPI_getvalue(tup, desc, 2);
				char	   *att = SPI_getvalue(tup, desc, 3);
				char	   *msg = SPI_getvalue(tup, desc, 4);
				MemoryContext old = MemoryContextSwitchTo(caller);

				if (i == 0)
				{
					rel->status = "corrupt";
					rel->blkno = blk ? strtoll(blk, NULL, 10) : -1;
				}
				if (i < IG_MAX_MESSAGES)
				{
					appendStringInfo(&detail, "%sblock %s", i ? "; " : "", blk ? blk : "?");
					if (off)
						appendStringInfo(&detail, " offset %s", off);
					if (att)
						appendStringInfo(&detail, " attribute %s", att);
					appendStringInfo(&detail, ": %s", msg ? msg : "");
				}
				else if (i == IG_MAX_MESSAGES)
					appendStringInfo(&detail, "; and %llu more",
									 (unsigned long long) (SPI_processed - i));
				MemoryContextSwitchTo(old);
			}
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;

		resetStringInfo(&detail);
		if (ig_trusted(edata) &&
			(edata->sqlerrcode == ERRCODE_INDEX_CORRUPTED ||
			 edata->sqlerrcode == ERRCODE_DATA_CORRUPTED))
		{
			rel->status = "corrupt";
			rel->findings = 1;
			rel->blkno = ig_block_of(edata->message);
			appendStringInfoString(&detail, edata->message);
			if (edata->detail)
				appendStringInfo(&detail, " (%s)", edata->detail);
		}
		else
		{
			rel->status = "error";
			if (ig_trusted(edata) ||
				((edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
				  edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE) &&
				 ig_raised_in(edata, ig_interrupt_files)))
				appendStringInfoString(&detail, edata->message);
			else
			{
				/* the owner's code may have raised it: the log only */
				ereport(LOG,
						(errmsg("adr_ops could not verify \"%s\": %s", rel->relation, edata->message)));
				appendStringInfo(&detail, "error %s (its message is in the server log)",
								 unpack_sql_state(edata->sqlerrcode));
			}
		}
		FreeErrorData(edata);
	}
	PG_END_TRY();

	rel->finished = GetCurrentTimestamp();
	rel->detail = detail.len > 0 ? detail.data : NULL;
}

/* The result of rel as the values of a row of integrity_results. */
static void
ig_result_values(const IgRelation *rel, bool heapallindexed, Datum *values, bool *nulls)
{
	Interval   *duration = palloc0(sizeof(Interval));

	duration->time = rel->finished - rel->started;
	memset(nulls, 0, sizeof(bool) * IG_RESULT_COLUMNS);
	values[0] = TimestampTzGetDatum(rel->started);
	values[1] = ObjectIdGetDatum(rel->relid);
	values[2] = CStringGetTextDatum(rel->relation);
	values[3] = CStringGetTextDatum(rel->is_index ? "index" : "table");
	values[4] = Int64GetDatum(rel->pages);
	values[5] = BoolGetDatum(rel->is_index && heapallindexed);
	values[6] = IntervalPGetDatum(duration);
	values[7] = CStringGetTextDatum(rel->status);
	values[8] = Int32GetDatum(rel->findings);
	values[9] = Int64GetDatum(rel->blkno);
	nulls[9] = rel->blkno < 0;
	values[10] = rel->detail ? CStringGetTextDatum(rel->detail) : (Datum) 0;
	nulls[10] = rel->detail == NULL;
}

/* Store rel's result, its row from ig_result_values(), in integrity_results. */
static void
ig_store(const IgRelation *rel, Datum *values, const bool *nulls)
{
	Oid			argtypes[IG_RESULT_COLUMNS] = {TIMESTAMPTZOID, OIDOID, TEXTOID, TEXTOID, INT8OID,
	BOOLOID, INTERVALOID, TEXTOID, INT4OID, INT8OID, TEXTOID};
	char		nullflags[IG_RESULT_COLUMNS];
	int			i;

	for (i = 0; i < IG_RESULT_COLUMNS; i++)
		nullflags[i] = nulls[i] ? 'n' : ' ';
	if (SPI_execute_with_args("INSERT INTO adr_ops.integrity_results "
							  "  (verified_at, relid, relation, kind, pages, heapallindexed, duration, "
							  "   status, findings, blkno, detail) "
							  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
							  IG_RESULT_COLUMNS, argtypes, values, nullflags, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store the result of the verification of \"%s\"", rel->relation);
}

/*
 * The relations of a query on adr_ops._integrity_queue() or
 * _integrity_relations() (relid, tableid, relation, kind, pages), in the
 * caller's context.
 */
static List *
ig_relations(const char *sql, int nargs, Oid *argtypes, Datum *args, MemoryContext cxt)
{
	List	   *result = NIL;
	uint64		i;

	if (SPI_execute_with_args(sql, nargs, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the relations to verify");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		IgRelation *rel = palloc0(sizeof(IgRelation));
		char	   *kind;

		rel->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		rel->tableid = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		rel->relation = SPI_getvalue(tup, desc, 3);
		kind = SPI_getvalue(tup, desc, 4);
		rel->is_index = strcmp(kind, "index") == 0;
		rel->pages = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
		if (isnull)
			rel->pages = 0;
		result = lappend(result, rel);
		MemoryContextSwitchTo(old);
	}
	return result;
}

static void
ig_append(StringInfo buf, const char *sep, const char *fmt, const char *a, const char *b)
{
	if (buf->len > 0)
		appendStringInfoString(buf, sep);
	appendStringInfo(buf, fmt, a, b);
}

/*
 * The integrity_check task: the relations of the rotation, oldest
 * verification first, each in a transaction of its own, until the time
 * budget is spent (at least one is verified per run); then the checksum
 * failure counters.  The run fails when it found corruption or could not
 * verify a relation, so that its row draws the eye.
 */
static void
ig_task_run(AdrTaskRun *run)
{
	MemoryContext caller = CurrentMemoryContext;
	const char *budget_text = adr_option_string(run->options, "time_budget");
	bool		heapallindexed = adr_option_bool(run->options, "heapallindexed");
	int			budget_ms = IG_DEFAULT_BUDGET_MS;
	IgFunctions fns = {0};
	char	   *missing = NULL;
	List	   *queue = NIL;
	ListCell   *lc;
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz deadline;
	StringInfoData corrupt,
				errors,
				skipped;
	int			left = 0;
	int64		pages = 0;
	char	   *news;
	long		secs;
	int			usecs;
	double		elapsed;

	if (budget_text != NULL)
	{
		const char *hint = NULL;

		(void) parse_int(budget_text, &budget_ms, GUC_UNIT_MS, &hint);
	}
	deadline = TimestampTzPlusMilliseconds(start, budget_ms);

	/*
	 * One commit per relation: without waiting for its WAL flush, a run over
	 * hundreds of small catalogs is not bound by fsync.  A crash loses at
	 * most the last results, and those relations are verified again first.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_SESSION);
	initStringInfo(&corrupt);
	initStringInfo(&errors);
	initStringInfo(&skipped);

	/* amcheck's functions, and the rotation */
	adr_task_xact_begin("integrity_check: choosing the relations", true);
	{
		ResourceOwner owner = CurrentResourceOwner;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(caller);
		PG_TRY();
		{
			fns = ig_functions(heapallindexed);
			ReleaseCurrentSubTransaction();
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(caller);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			missing = edata->hint ? psprintf("%s: %s", edata->message, edata->hint)
				: pstrdup(edata->message);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
	}
	if (missing == NULL)
	{
		Oid			argtypes[1] = {JSONBOID};
		Datum		args[1] = {JsonbPGetDatum(run->options)};

		/* the plans serve every transaction of the run */
		if (SPI_keepplan(fns.heap_plan) != 0 || SPI_keepplan(fns.btree_plan) != 0)
			elog(ERROR, "could not keep the prepared calls of amcheck");

		queue = ig_relations("SELECT relid, tableid, relation, kind, pages "
							 "  FROM adr_ops._integrity_queue($1)", 1, argtypes, args, caller);
	}
	adr_task_xact_end(caller);

	foreach(lc, queue)
	{
		IgRelation *rel = lfirst(lc);
		bool		locked;
		Datum		values[IG_RESULT_COLUMNS];
		bool		nulls[IG_RESULT_COLUMNS];

		CHECK_FOR_INTERRUPTS();
		if (run->objects > 0 && GetCurrentTimestamp() >= deadline)
		{
			left = list_length(queue) - foreach_current_index(lc);
			break;
		}

		adr_task_xact_begin(rel->relation, true);
		/* as amcheck will: the table, then the index; but never wait */
		locked = ConditionalLockRelationOid(rel->tableid, AccessShareLock) &&
			(!rel->is_index || ConditionalLockRelationOid(rel->relid, AccessShareLock));
		if (!locked)
			ig_append(&skipped, ", ", "%s%s", rel->relation, "");
		else if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(rel->relid)))
		{
			/* its size now that the lock is held (the queue's is an estimate) */
			rel->pages = DatumGetInt64(DirectFunctionCall2(pg_relation_size,
														   ObjectIdGetDatum(rel->relid),
														   CStringGetTextDatum("main"))) / BLCKSZ;
			adr_task_timer_on();
			ig_verify(rel, &fns);
			adr_task_timer_off();
			ig_result_values(rel, heapallindexed, values, nulls);
			ig_store(rel, values, nulls);
			run->objects++;
			pages += rel->pages;
			if (strcmp(rel->status, "corrupt") == 0)
				ig_append(&corrupt, "; ", "%s (%s)", rel->relation, rel->detail);
			else if (strcmp(rel->status, "error") == 0)
				ig_append(&errors, "; ", "%s (%s)", rel->relation, rel->detail);
		}
		MemoryContextSwitchTo(caller);
		adr_task_xact_end(caller);
	}

	if (missing == NULL)
	{
		SPI_freeplan(fns.heap_plan);
		SPI_freeplan(fns.btree_plan);
	}

	/* the checksum failure counters, and the history's retention */
	adr_task_xact_begin("integrity_check: checksum failures", true);
	if (SPI_execute("SELECT adr_ops._integrity_after_run()", false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not record the checksum failure counters");
	news = adr_spi_getstr(0, 1, caller);
	adr_task_xact_end(caller);

	TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
	elapsed = secs + usecs / 1000000.0;
	if (missing)
		appendStringInfoString(&run->detail, missing);
	else
		appendStringInfo(&run->detail, "verified %d relation%s (%.1f MB) in %.1f s (%.1f MB/s)%s",
						 run->objects, run->objects == 1 ? "" : "s", pages * (double) BLCKSZ / (1024 * 1024), elapsed,
						 elapsed > 0 ? pages * (double) BLCKSZ / (1024 * 1024) / elapsed : 0.0,
						 heapallindexed ? ", heapallindexed" : "");
	if (corrupt.len)
		appendStringInfo(&run->detail, "; corruption found: %s", corrupt.data);
	if (errors.len)
		appendStringInfo(&run->detail, "; could not verify: %s", errors.data);
	if (skipped.len)
		appendStringInfo(&run->detail, "; skipped (locked): %s", skipped.data);
	if (left)
		appendStringInfo(&run->detail, "; time budget spent, %d relation%s left for the next runs",
						 left, left == 1 ? "" : "s");
	if (news)
		appendStringInfo(&run->detail, "; new checksum failures: %s", news);
	run->failed = missing != NULL || corrupt.len > 0 || errors.len > 0;
}

/*
 * adr_verify_integrity(relation regclass, heapallindexed boolean)
 *		returns setof integrity_results
 *
 * A table (with its TOAST table, then its btree indexes and its TOAST
 * index) or one btree index, verified now; each result is stored and
 * returned.  Waits for its locks as any statement does (lock_timeout).
 */
Datum
adr_verify_integrity(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid;
	bool		heapallindexed;
	HeapTuple	tup;
	Form_pg_class form;
	char		relkind;
	char		persistence;
	Oid			relam;
	char	   *relname;
	IgFunctions fns;
	List	   *rels;
	ListCell   *lc;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("relation and heapallindexed must not be null")));
	relid = PG_GETARG_OID(0);
	heapallindexed = PG_GETARG_BOOL(1);
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	form = (Form_pg_class) GETSTRUCT(tup);
	relkind = form->relkind;
	relam = form->relam;
	persistence = form->relpersistence;
	relname = pstrdup(NameStr(form->relname));
	ReleaseSysCache(tup);
	if (persistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot verify temporary relation \"%s\"", relname)));
	if (relkind == RELKIND_PARTITIONED_TABLE || relkind == RELKIND_PARTITIONED_INDEX)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot verify partitioned relation \"%s\"", relname),
				 errdetail("A partitioned relation has no storage of its own."),
				 errhint("Verify its partitions.")));
	if (relkind != RELKIND_RELATION && relkind != RELKIND_MATVIEW &&
		relkind != RELKIND_TOASTVALUE && relkind != RELKIND_INDEX)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table, materialized view or index", relname)));
	if (relkind == RELKIND_INDEX && relam != BTREE_AM_OID)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot verify index \"%s\"", relname),
				 errdetail("Only btree indexes can be verified.")));

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	fns = ig_functions(heapallindexed);
	args[0] = ObjectIdGetDatum(relid);
	rels = ig_relations("SELECT r.relid, r.tableid, r.relation, r.kind, "
						"       pg_catalog.pg_relation_size(r.relid) "
						"         OPERATOR(pg_catalog./) pg_catalog.current_setting('block_size')::pg_catalog.int8 "
						"  FROM adr_ops._integrity_relations() r "
						" WHERE r.relid OPERATOR(pg_catalog.=) $1 OR r.owner_table OPERATOR(pg_catalog.=) $1 "
						" ORDER BY r.kind OPERATOR(pg_catalog.=) 'index', r.relid OPERATOR(pg_catalog.<>) $1, r.relid",
						1, argtypes, args, CurrentMemoryContext);
	if (rels == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot verify relation \"%s\"", relname),
				 errdetail("An invalid index, or an unlogged relation during recovery, has nothing to verify.")));

	foreach(lc, rels)
	{
		IgRelation *rel = lfirst(lc);
		Datum		values[IG_RESULT_COLUMNS];
		bool		nulls[IG_RESULT_COLUMNS];

		CHECK_FOR_INTERRUPTS();
		ig_verify(rel, &fns);
		ig_result_values(rel, heapallindexed, values, nulls);
		ig_store(rel, values, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
