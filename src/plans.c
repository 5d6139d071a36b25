/*-------------------------------------------------------------------------
 *
 * plans.c
 *	  EXPLAIN (ANALYZE, BUFFERS) of a statement a DBA supplies, run safely:
 *	  the runbook's "analyze query execution plans" on demand.
 *
 * The statement is run, so it must not change anything.  Three guards:
 *
 * - parsing: the text must be exactly one SELECT (or VALUES, or a set
 *	 operation of them), without INTO, FOR UPDATE/SHARE, or a WITH query
 *	 that is not itself such a SELECT (no data-modifying CTE);
 * - it runs inside a subtransaction with transaction_read_only on, which
 *	 is rolled back whatever happens, so a volatile function it calls
 *	 cannot write either (only temporary objects, gone with the rollback);
 * - a timeout: the statement_timeout timer is armed for the run (an outer
 *	 statement_timeout that ends sooner is kept) and restored after.
 *
 * It runs as the caller: the caller needs the privileges the statement
 * needs.  Parameters are given as text and typed the way PREPARE infers
 * them ($1, $2... in the statement).
 *
 * IDENTIFICATION
 *	  src/plans.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "commands/prepare.h"
#include "common/md5.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "adr_ops.h"
#include "plans.h"
#include "scheduler.h"

/* The collection of logged plans, registered by adr_plans_init(). */
static const AdrTask pl_collect_task = {
	"plan_collect", true, false, false, "5s", adr_task_no_options, NULL,
	"store the JSON plans auto_explain logged since the last run in query_plans (adr_collect_plans())",
	"1.1",
	"SELECT n, format('stored %s logged plans', n) FROM adr_ops.adr_collect_plans() n"
};

void
adr_plans_init(void)
{
	adr_task_register(&pl_collect_task);
}

PG_FUNCTION_INFO_V1(adr_explain);
PG_FUNCTION_INFO_V1(adr_plan_shape);
PG_FUNCTION_INFO_V1(adr_plan_fingerprint);

/* What a plan's shape is made of, in this order; costs and rows are not. */
static const char *const pl_shape_keys[] = {
	"Node Type", "Join Type", "Strategy", "Relation Name", "Index Name"
};

/*
 * Append the shape of one plan node: its shape keys' values separated by
 * spaces, then each child of "Plans" in parentheses, in order (the join
 * order).  Recursion is as deep as the plan.
 */
static void
pl_shape(JsonbContainer *node, StringInfo out)
{
	JsonbValue	v;
	JsonbValue *plans;
	bool		first = true;
	int			i;

	check_stack_depth();
	for (i = 0; i < lengthof(pl_shape_keys); i++)
	{
		const char *key = pl_shape_keys[i];

		if (getKeyJsonValueFromContainer(node, key, strlen(key), &v) != NULL &&
			v.type == jbvString)
		{
			if (!first)
				appendStringInfoChar(out, ' ');
			appendBinaryStringInfo(out, v.val.string.val, v.val.string.len);
			first = false;
		}
	}
	plans = getKeyJsonValueFromContainer(node, "Plans", 5, NULL);
	if (plans != NULL && plans->type == jbvBinary && JsonContainerIsArray(plans->val.binary.data))
	{
		JsonbContainer *arr = plans->val.binary.data;
		uint32		n = JsonContainerSize(arr);
		uint32		j;

		for (j = 0; j < n; j++)
		{
			JsonbValue *child = getIthJsonbValueFromContainer(arr, j);

			if (child == NULL || child->type != jbvBinary ||
				!JsonContainerIsObject(child->val.binary.data))
				continue;
			appendStringInfoString(out, " (");
			pl_shape(child->val.binary.data, out);
			appendStringInfoChar(out, ')');
		}
	}
}

/* The shape of a plan: of its "Plan" when it has one, else of itself. */
static char *
pl_plan_shape(Jsonb *plan)
{
	StringInfoData out;
	JsonbContainer *root = &plan->root;
	JsonbValue	v;

	initStringInfo(&out);
	if (!JsonContainerIsObject(root))
		return out.data;
	if (getKeyJsonValueFromContainer(root, "Plan", 4, &v) != NULL &&
		v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
		root = v.val.binary.data;
	pl_shape(root, &out);
	return out.data;
}

/* adr_ops._plan_shape(plan jsonb) returns text */
Datum
adr_plan_shape(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(pl_plan_shape(PG_GETARG_JSONB_P(0))));
}

/* adr_ops.adr_plan_fingerprint(plan jsonb) returns text: md5 of the shape */
Datum
adr_plan_fingerprint(PG_FUNCTION_ARGS)
{
	char	   *shape = pl_plan_shape(PG_GETARG_JSONB_P(0));
	char		hex[33];
	const char *errstr = NULL;

	if (!pg_md5_hash(shape, strlen(shape), hex, &errstr))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute the plan fingerprint: %s", errstr)));
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}

/* Is this parsed statement a SELECT that reads only?  Sets *why when not. */
static bool
pl_select_reads_only(Node *node, const char **why)
{
	SelectStmt *s;
	ListCell   *lc;

	if (node == NULL)
		return true;
	if (!IsA(node, SelectStmt))
	{
		*why = "only SELECT and VALUES statements can be explained by adr_explain()";
		return false;
	}
	s = (SelectStmt *) node;
	if (s->intoClause != NULL)
	{
		*why = "SELECT INTO creates a table";
		return false;
	}
	if (s->lockingClause != NIL)
	{
		*why = "FOR UPDATE and FOR SHARE lock rows";
		return false;
	}
	if (s->withClause != NULL)
	{
		foreach(lc, s->withClause->ctes)
		{
			CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

			if (!pl_select_reads_only(cte->ctequery, why))
			{
				*why = "a WITH query modifies data";
				return false;
			}
		}
	}
	return pl_select_reads_only((Node *) s->larg, why) &&
		pl_select_reads_only((Node *) s->rarg, why);
}

/*
 * EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON) of the statement, run
 * as described above; EXPLAIN's JSON text.
 */
static char *
pl_explain_json(const char *stmt, ArrayType *params, int64 timeout_ms)
{
	List	   *parsed;
	const char *why = NULL;
	MemoryContext caller = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	StringInfoData sql;
	char	   *json = NULL;
	bool		outer_timeout = get_timeout_active(STATEMENT_TIMEOUT);
	TimestampTz outer_finish = outer_timeout ? get_timeout_finish_time(STATEMENT_TIMEOUT) : 0;
	TimestampTz finish;

	/* 1: by parsing, one statement that reads only */
	parsed = raw_parser(stmt, RAW_PARSE_DEFAULT);
	if (list_length(parsed) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("adr_explain() runs exactly one statement, got %d", list_length(parsed))));
	if (!pl_select_reads_only(linitial_node(RawStmt, parsed)->stmt, &why))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("adr_explain() refuses a statement that is not read-only"),
				 errdetail("%s.", why),
				 errhint("EXPLAIN ANALYZE runs the statement: explain a write with plain EXPLAIN instead.")));

	/* 2: PREPARE types the parameters; EXECUTE them as literals */
	initStringInfo(&sql);
	appendStringInfo(&sql, "EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON) EXECUTE adr_ops_explain");
	if (params != NULL && ArrayGetNItems(ARR_NDIM(params), ARR_DIMS(params)) > 0)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n,
					i;

		deconstruct_array(params, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		appendStringInfoChar(&sql, '(');
		for (i = 0; i < n; i++)
		{
			if (i > 0)
				appendStringInfoString(&sql, ", ");
			if (nulls[i])
				appendStringInfoString(&sql, "NULL");
			else
				appendStringInfoString(&sql, quote_literal_cstr(TextDatumGetCString(elems[i])));
		}
		appendStringInfoChar(&sql, ')');
	}

	/* 3: in a read-only subtransaction, rolled back, with a timeout */
	DropPreparedStatement("adr_ops_explain", false);
	finish = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller);
	PG_TRY();
	{
		if (!outer_timeout || finish < outer_finish)
			enable_timeout_at(STATEMENT_TIMEOUT, finish);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SET LOCAL transaction_read_only = on", false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not make the subtransaction read-only");
		if (SPI_execute(psprintf("PREPARE adr_ops_explain AS %s", stmt), false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not prepare the statement");
		if (SPI_execute(sql.data, false, 0) != SPI_OK_UTILITY || SPI_processed != 1)
			elog(ERROR, "EXPLAIN returned no plan");
		json = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		json = MemoryContextStrdup(caller, json);
		(void) SPI_execute("DEALLOCATE adr_ops_explain", false, 0);
		SPI_finish();
		if (outer_timeout)
			enable_timeout_at(STATEMENT_TIMEOUT, outer_finish);
		else
			disable_timeout(STATEMENT_TIMEOUT, false);
		/* whatever the statement did, it is undone */
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		if (outer_timeout)
			enable_timeout_at(STATEMENT_TIMEOUT, outer_finish);
		else
			disable_timeout(STATEMENT_TIMEOUT, false);
		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
		/* a prepared statement outlives the subtransaction: drop it */
		DropPreparedStatement("adr_ops_explain", false);
		ReThrowError(edata);
	}
	PG_END_TRY();
	DropPreparedStatement("adr_ops_explain", false);

	return json;
}

/*
 * adr_explain(statement text, params text[], timeout interval)
 *		returns (id, queryid, duration_ms, fingerprint, plan)
 *
 * Runs the statement as above, as the caller and with the caller's
 * search_path (a C function: no SET search_path applies), and stores the
 * plan in query_plans through adr_ops._plan_store().
 */
Datum
adr_explain(PG_FUNCTION_ARGS)
{
	char	   *stmt;
	ArrayType  *params = PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1);
	Interval   *timeout;
	int64		timeout_ms;
	char	   *json;
	Datum		plan;
	Oid			argtypes[1] = {JSONBOID};
	Datum		args[1];
	HeapTupleHeader result;
	TupleDesc	tupdesc;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("statement and timeout must not be null")));
	stmt = text_to_cstring(PG_GETARG_TEXT_PP(0));
	timeout = PG_GETARG_INTERVAL_P(2);
	timeout_ms = timeout->time / 1000 +
		((int64) timeout->day + (int64) timeout->month * 30) * 86400000;
	if (timeout_ms <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the timeout of adr_explain() must be positive")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	json = pl_explain_json(stmt, params, timeout_ms);

	/* EXPLAIN's JSON is an array of one object */
	plan = DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
	args[0] = DirectFunctionCall2(jsonb_array_element, plan, Int32GetDatum(0));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT * FROM adr_ops._plan_store($1)", 1, argtypes, args,
							  NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not store the plan");
	result = SPI_returntuple(SPI_tuptable->vals[0], BlessTupleDesc(tupdesc));
	SPI_finish();
	PG_RETURN_HEAPTUPLEHEADER(result);
}
