/*-------------------------------------------------------------------------
 *
 * probe_task.c
 *	  The scheduler task http_probe: every enabled probe of adr_ops.probes
 *	  at once, the results recorded in adr_ops.probe_history.
 *
 * The task never holds a transaction open across network I/O: it reads
 * what to do and commits, runs the batch (http.c), then records the
 * results in a new transaction.  Recording a result fires the alert
 * trigger of http.sql; the alerts due are then delivered (alert.c).
 *
 * Locking: a transaction advisory lock on hashtext('adr_ops.http_probe')
 * while recording probe results, so that overlapping runs of http_probe do
 * not raise the same alert twice.
 *
 * IDENTIFICATION
 *	  src/probe_task.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "alert.h"
#include "http.h"
#include "probe.h"
#include "scheduler.h"

/* The advisory lock key that serialises recording the probe results. */
#define PRT_RESULTS_LOCK "pg_catalog.hashtext('adr_ops.http_probe')"

static void prt_task_http_probe(AdrTaskRun *run);

/* The scheduler task of the probes, registered by adr_probe_task_init(). */
static const AdrTask prt_task =
{"http_probe", true, false, false, "5s", adr_task_no_options, prt_task_http_probe,
"run every enabled probe of adr_ops.probes at once, store probe_history, deliver due alerts"};

/* Register the task; called from _PG_init. */
void
adr_probe_task_init(void)
{
	adr_task_register(&prt_task);
}

/*
 * The task http_probe: every enabled probe of adr_ops.probes at once, in
 * one batch; the results go to adr_ops.probe_history (whose trigger
 * raises the alerts), then due alerts are delivered.
 */
static void
prt_task_http_probe(AdrTaskRun *run)
{
	MemoryContext caller = CurrentMemoryContext;
	AdrHttpRequest *reqs;
	AdrHttpResult *res;
	AdrHttpLimits limits;
	char	  **names;
	int			n;
	int			i;
	int			failed = 0;
	StringInfoData failures;
	char	   *token = NULL;

	/* A token with CR or LF fails its probes in http.c, each with a row. */
	token = adr_http_secret(adr_ops_probe_bearer_token, adr_ops_probe_bearer_token_file,
					  "adr_ops.probe_bearer_token_file");

	adr_task_xact_begin("adr_ops http_probe: read probes", true);
	if (SPI_execute("SELECT name, url, expect_status, timeout_ms, send_token "
					"  FROM adr_ops.probes WHERE enabled ORDER BY name", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read adr_ops.probes");
	n = (int) SPI_processed;
	names = MemoryContextAlloc(caller, sizeof(char *) * Max(n, 1));
	reqs = MemoryContextAllocZero(caller, sizeof(AdrHttpRequest) * Max(n, 1));
	res = MemoryContextAllocZero(caller, sizeof(AdrHttpResult) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		char	   *send_token = adr_spi_getstr(i, 5, caller);

		names[i] = adr_spi_getstr(i, 1, caller);
		reqs[i].url = adr_spi_getstr(i, 2, caller);
		reqs[i].expect_status = pg_strtoint32(adr_spi_getstr(i, 3, caller));
		reqs[i].timeout_ms = pg_strtoint32(adr_spi_getstr(i, 4, caller));
		reqs[i].bearer_token = (send_token && send_token[0] == 't') ? token : NULL;
	}
	adr_task_xact_end(caller);

	if (n > 0)
	{
		adr_http_limits(&limits);
		adr_http_perform(reqs, res, n, &limits);

		adr_task_xact_begin("adr_ops http_probe: record results", true);

		/*
		 * Two runs that overlap (adr_run_task() and the schedule) record
		 * one after the other, so the alert trigger of the second sees the
		 * first's rows and raises no second alert for the same transition.
		 */
		if (SPI_execute("SELECT pg_catalog.pg_advisory_xact_lock(" PRT_RESULTS_LOCK ")",
						false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not lock the probe results");
		for (i = 0; i < n; i++)
		{
			Oid			types[7] = {TEXTOID, TEXTOID, BOOLOID, INT4OID, FLOAT8OID, INT8OID, TEXTOID};
			Datum		args[7];
			char		argnulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

			args[0] = CStringGetTextDatum(names[i]);
			args[1] = CStringGetTextDatum(reqs[i].url);
			args[2] = BoolGetDatum(res[i].ok);
			args[3] = Int32GetDatum(res[i].status_code);
			argnulls[3] = res[i].status_code == 0 ? 'n' : ' ';
			args[4] = Float8GetDatum(res[i].latency_ms);
			args[5] = Int64GetDatum(res[i].bytes);
			args[6] = res[i].error ? CStringGetTextDatum(res[i].error) : (Datum) 0;
			argnulls[6] = res[i].error ? ' ' : 'n';
			if (SPI_execute_with_args("INSERT INTO adr_ops.probe_history "
									  "       (probe, url, ok, status_code, latency_ms, bytes, error) "
									  "VALUES ($1, $2, $3, $4, $5, $6, $7)",
									  7, types, args, argnulls, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not record a probe result");
		}
		if (SPI_execute("DELETE FROM adr_ops.probe_history "
						" WHERE probed_at OPERATOR(pg_catalog.<) (pg_catalog.now() "
						"       OPERATOR(pg_catalog.-) '30 days'::pg_catalog.interval)",
						false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not prune adr_ops.probe_history");
		adr_task_xact_end(caller);
	}

	initStringInfo(&failures);
	for (i = 0; i < n; i++)
		if (!res[i].ok)
		{
			failed++;
			appendStringInfo(&failures, "%s%s", failures.len ? ", " : "", names[i]);
		}
	run->objects = n;
	appendStringInfo(&run->detail, "probed %d: %d ok, %d failed", n, n - failed, failed);
	if (failed > 0)
		appendStringInfo(&run->detail, " (%s)", failures.data);

	adr_alert_deliver(run);
}
