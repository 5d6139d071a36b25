/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  The settings of the maintenance scheduler, and the reservation of the
 *	  "adr_ops" prefix.
 *
 * Every other module defines its own settings in its own file and declares
 * them in its own header.  Settings are named adr_ops.<snake> and live in C
 * variables adr_ops_<snake>.  adr_guc_reserve() reserves the "adr_ops"
 * prefix and must run after every module has defined its settings: a
 * setting defined after it loses the value postgresql.conf gave it.
 *
 * IDENTIFICATION
 *	  src/guc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"

#include "adr_ops.h"
#include "compat.h"
#include "scheduler.h"

/*
 * The maintenance scheduler (maint_launcher.c, maint_schedule.c).
 * adr_ops.database exists only when adr_ops is preloaded; it stays NULL
 * otherwise.
 */
char	   *adr_ops_database = NULL;
int			adr_ops_max_workers = 2;
char	   *adr_ops_timezone = NULL;
char	   *adr_ops_maintenance_window = NULL;
int			adr_ops_task_run_retention = 30 * 24 * 3600;

void
adr_guc_init(void)
{
	/* A postmaster setting can only be defined while preloading. */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomStringVariable("adr_ops.database",
								   "Sets the database whose schedules the adr_ops launcher runs.",
								   "The launcher connects to it; adr_schedule() and adr_run_task() "
								   "work there.",
								   &adr_ops_database,
								   "postgres",
								   PGC_POSTMASTER,
								   0,
								   NULL, NULL, NULL);

	DefineCustomIntVariable("adr_ops.max_workers",
							"Sets how many maintenance tasks may run at once.",
							NULL,
							&adr_ops_max_workers,
							2,
							1,
							ADR_MAX_WORKERS,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("adr_ops.timezone",
							   "Sets the time zone schedules are evaluated in.",
							   "Empty means the server's TimeZone.",
							   &adr_ops_timezone,
							   "",
							   PGC_SIGHUP,
							   0,
							   adr_timezone_check, NULL, NULL);

	DefineCustomStringVariable("adr_ops.maintenance_window",
							   "Sets the daily window, such as 02:00-05:00, outside which heavy tasks are skipped.",
							   "Empty means always.  Evaluated in adr_ops.timezone.",
							   &adr_ops_maintenance_window,
							   "",
							   PGC_SIGHUP,
							   0,
							   adr_window_check, NULL, NULL);

	DefineCustomIntVariable("adr_ops.task_run_retention",
							"Sets how long the launcher keeps finished task runs.",
							"0 keeps them for ever.",
							&adr_ops_task_run_retention,
							30 * 24 * 3600,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}

/*
 * Reserve the adr_ops. prefix: an unknown adr_ops.* setting is then reported
 * and its placeholder removed.  _PG_init calls this after every module has
 * defined its settings, so that no module's value set in postgresql.conf is
 * discarded as unknown because its definition came later.
 */
void
adr_guc_reserve(void)
{
	MarkGUCPrefixReserved("adr_ops");
}
