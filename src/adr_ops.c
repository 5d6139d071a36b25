/*-------------------------------------------------------------------------
 *
 * adr_ops.c
 *	  Module magic and _PG_init.
 *
 * _PG_init only dispatches to each module's initialisation.  It runs both
 * when adr_ops is in shared_preload_libraries and when a backend loads the
 * library on its first call; a module that needs preloading (shared memory,
 * hooks, background workers) registers itself only while
 * process_shared_preload_libraries_in_progress, and its SQL functions say so
 * when it is missing.
 *
 * IDENTIFICATION
 *	  src/adr_ops.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "adr_ops.h"
#include "alert.h"
#include "backup.h"
#include "bloat.h"
#include "caller.h"
#include "capacity.h"
#include "health_task.h"
#include "incident.h"
#include "integrity.h"
#include "jobs.h"
#include "plans.h"
#include "probe.h"
#include "quality.h"
#include "scheduler.h"
#include "security.h"
#include "serverlog.h"
#include "statements.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	adr_guc_init();
	adr_caller_init();
	adr_serverlog_init();
	adr_maint_tables_init();
	adr_health_task_init();
	adr_statements_init();
	adr_jobs_init();
	adr_bloat_init();
	adr_http_init();
	adr_probe_task_init();
	adr_alert_init();
	adr_security_init();
	adr_backup_init();
	adr_capacity_init();
	adr_plans_init();
	adr_incident_init();
	adr_quality_init();
	adr_integrity_init();
	adr_shmem_init();
	adr_worker_register();
	adr_guc_reserve();			/* last: after every module's settings */
}
