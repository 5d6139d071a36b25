/*-------------------------------------------------------------------------
 *
 * jobs.c
 *	  The C side of the pipeline jobs: their setting and the task
 *	  job_reaper.
 *
 * The concern itself is SQL (jobs.sql), which reads
 * adr_ops.job_stale_after through current_setting(); the task is one query
 * of it, run by the task runtime.
 *
 * IDENTIFICATION
 *	  src/jobs.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "jobs.h"
#include "scheduler.h"

int			adr_ops_job_stale_after = 300;

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
