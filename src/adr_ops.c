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
#include "backup.h"
#include "probe.h"
#include "scheduler.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	adr_guc_init();
	adr_bloat_init();
	adr_http_init();
	adr_security_init();
	adr_backup_init();
	adr_capacity_init();
	adr_plans_init();
	adr_incident_init();
	adr_shmem_init();
	adr_worker_register();
	adr_guc_reserve();			/* last: after every module's settings */
}
