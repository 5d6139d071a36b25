/*-------------------------------------------------------------------------
 *
 * quality.c
 *	  The data-quality checks' executor: one query run as the check's owner,
 *	  with a time budget, and the quality_check scheduler task.
 *
 * The concern is SQL (quality.sql): it builds, from the checks of one
 * relation, one query that computes every metric in a single scan, with
 * identifiers quoted and parameters as literals.  SQL cannot change the
 * current user to an arbitrary role the way a security-restricted operation
 * does (SET ROLE can be undone by the code it runs), so the query runs here:
 * as the role that created the checks, under
 * SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION (the code the
 * query reaches -- views, functions of the owner's -- cannot SET ROLE back),
 * with search_path pg_catalog, pg_temp, in a read-only SPI call, and under
 * the statement timeout the caller gives.  Nobody reads through a check what
 * its owner could not read directly.
 *
 * An ERROR (permission denied, the timeout) propagates; the caller's
 * subtransaction restores the user, the settings and the timeout.
 *
 * IDENTIFICATION
 *	  src/quality.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "adr_ops.h"
#include "quality.h"
#include "scheduler.h"

PG_FUNCTION_INFO_V1(adr_quality_exec);

/* The scheduled run of every enabled check, registered by adr_quality_init(). */
static const AdrTask qu_check_task = {
	"quality_check", true, false, false, "5s", adr_task_no_options, NULL,
	"run every enabled data-quality check and store the results in quality_results (adr_quality_run())",
	"1.1",
	"SELECT count(*)::integer, format('%s checks: %s failing', count(*), count(*) FILTER (WHERE r.status <> 'OK')) FROM adr_ops.adr_quality_run() r"
};

void
adr_quality_init(void)
{
	adr_task_register(&qu_check_task);
}

/*
 * _quality_exec(owner oid, query text, timeout_ms integer) returns text:
 * the first column of the first row of query, run as owner.
 *
 * EXECUTE is revoked from PUBLIC and the caller must be a superuser: the
 * query is built by the extension's own SECURITY DEFINER functions.
 */
Datum
adr_quality_exec(PG_FUNCTION_ARGS)
{
	Oid			owner = PG_GETARG_OID(0);
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int32		timeout_ms = PG_GETARG_INT32(2);
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;
	bool		outer_timeout;
	TimestampTz outer_fin = 0;
	TimestampTz our_fin;
	text	   *result = NULL;
	int			ret;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to run a quality check query"),
				 errdetail("Only the extension's own functions run check queries.")));
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the owner of the check, role with OID %u, does not exist", owner),
				 errhint("Drop the check and create it again as an existing role.")));

	GetUserIdAndSecContext(&save_userid, &save_sec);
	save_nestlevel = NewGUCNestLevel();
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);

	/*
	 * The budget: a statement timeout armed for this query only, unless the
	 * caller's own statement timeout ends sooner.  The FINALLY block puts the
	 * caller's timeout back as it was.
	 */
	outer_timeout = get_timeout_active(STATEMENT_TIMEOUT);
	if (outer_timeout)
		outer_fin = get_timeout_finish_time(STATEMENT_TIMEOUT);
	our_fin = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	if (timeout_ms > 0 && (!outer_timeout || our_fin < outer_fin))
		enable_timeout_at(STATEMENT_TIMEOUT, our_fin);

	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		ret = SPI_execute(query, true, 1);
		if (ret != SPI_OK_SELECT)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("a quality check query must be one SELECT")));
		if (SPI_processed == 1 && SPI_tuptable->tupdesc->natts >= 1)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			if (v != NULL)
			{
				/* in the caller's context: SPI_finish frees SPI's */
				result = (text *) SPI_palloc(VARHDRSZ + strlen(v));
				SET_VARSIZE(result, VARHDRSZ + strlen(v));
				memcpy(VARDATA(result), v, strlen(v));
			}
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		if (outer_timeout)
			enable_timeout_at(STATEMENT_TIMEOUT, outer_fin);
		else
			disable_timeout(STATEMENT_TIMEOUT, false);
	}
	PG_END_TRY();

	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec);

	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(result);
}
