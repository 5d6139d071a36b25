/*-------------------------------------------------------------------------
 *
 * health_task.c
 *	  The task health_snapshot: adr_health_check() stored in health_history.
 *
 * The health check itself is SQL (health.sql), its host readings C
 * (health.c); the task is one query, run by the task runtime.
 *
 * IDENTIFICATION
 *	  src/health_task.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "health_task.h"
#include "scheduler.h"

/* One query of health.sql (adr_health_snapshot()). */
static const AdrTask hs_task =
{"health_snapshot", true, false, false, "5s", adr_task_no_options, NULL,
	"store adr_health_check() in health_history (adr_health_snapshot())", NULL,
	"SELECT n, format('stored %s health checks', n) FROM adr_ops.adr_health_snapshot() n"};

/* Register the task; called from _PG_init. */
void
adr_health_task_init(void)
{
	adr_task_register(&hs_task);
}
