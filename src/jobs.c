/*-------------------------------------------------------------------------
 *
 * jobs.c
 *	  The C side of the pipeline jobs: their setting and the task
 *	  job_reaper.
 *
 * The concern itself is SQL (jobs.sql), which reads
 * adr_ops.job_stale_after through current_setting(); the task is one query
 * of it, run by the task runtime.  Here too: the check of a job's status.
 *
 * IDENTIFICATION
 *	  src/jobs.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "jobs.h"
#include "scheduler.h"

int			adr_ops_job_stale_after = 300;

PG_FUNCTION_INFO_V1(adr_job_status_valid);

/* One query of jobs.sql (adr_job_reap()). */
static const AdrTask jb_task =
{"job_reaper", true, false, false, "5s", adr_task_no_options, NULL,
	"fail running pipeline jobs whose heartbeat is lost; re-queue failed ones with attempts left (adr_job_reap())", NULL,
	"SELECT lost + requeued, format('%s running jobs lost their heartbeat; %s failed jobs re-queued', lost, requeued) "
"  FROM adr_ops.adr_job_reap()"};

/* The setting and the task; called from _PG_init. */
void
adr_jobs_init(void)
{
	DefineCustomIntVariable("adr_ops.job_stale_after",
							"Sets how long a running pipeline job may go without a heartbeat before it counts as lost.",
							"adr_job_reap() fails such jobs; adr_job_restart(force) restarts only such running jobs.",
							&adr_ops_job_stale_after,
							300,
							1,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	adr_task_register(&jb_task);
}

/*
 * _job_status_valid(status): whether a job may have this status, for the
 * CHECK constraint of processing_jobs.status.  PostgreSQL reads a check
 * constraint back from its stored form and prepares it at every UPDATE of
 * the table, that is twice a job; this call costs a third of what the
 * list of statuses as an array constant did (docs/performance.md).
 */
Datum
adr_job_status_valid(PG_FUNCTION_ARGS)
{
	static const char *const statuses[] = {"queued", "running", "succeeded", "failed", "cancelled"};
	text	   *status = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(status);
	int			len = VARSIZE_ANY_EXHDR(status);

	for (int i = 0; i < lengthof(statuses); i++)
		if (strlen(statuses[i]) == len && memcmp(statuses[i], s, len) == 0)
			PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(false);
}
