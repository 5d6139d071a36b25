/*-------------------------------------------------------------------------
 *
 * capacity.c
 *	  Settings and the scheduler task of the capacity and recovery-readiness
 *	  concern.
 *
 * The concern itself is SQL (capacity.sql): a size history stored by the
 * capacity_snapshot task, least-squares forecasts over it, the recovery
 * time and point estimates, and the weekly review.  Its targets are
 * settings, so that postgresql.conf holds them beside the rest of the
 * server's configuration; the SQL reads them with current_setting() and
 * falls back to the same defaults when the library is not loaded.
 *
 * IDENTIFICATION
 *	  src/capacity.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "adr_ops.h"
#include "capacity.h"
#include "scheduler.h"

int			adr_ops_recovery_time_objective = 4 * 3600;
int			adr_ops_recovery_point_objective = 3600;
int			adr_ops_wal_replay_rate = 32 * 1024;

/* The hourly size history, registered by adr_capacity_init(). */
static const AdrTask cp_snapshot_task = {
	"capacity_snapshot", true, false, false, "5s", adr_task_no_options, NULL,
	"store the sizes of file systems, databases, pg_wal, the largest relations and the XID counters in size_history (adr_capacity_snapshot())",
	"1.1",
	"SELECT n, format('stored %s sizes and counters', n) FROM adr_ops.adr_capacity_snapshot() n"
};

void
adr_capacity_init(void)
{
	DefineCustomIntVariable("adr_ops.recovery_time_objective",
							"Sets the longest acceptable time to restore service from the last good backup (RTO).",
							"The recovery health check is WARNING when the estimated restore time exceeds it.",
							&adr_ops_recovery_time_objective,
							4 * 3600,
							1,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("adr_ops.recovery_point_objective",
							"Sets the largest acceptable window of lost changes (RPO).",
							"The recovery health check is WARNING when the newest recoverable point is older.",
							&adr_ops_recovery_point_objective,
							3600,
							1,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("adr_ops.wal_replay_rate",
							"Sets how fast WAL replays during recovery, per second, for the recovery time estimate.",
							"Measure it on a standby catching up, or during a restore test.",
							&adr_ops_wal_replay_rate,
							32 * 1024,
							1,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	adr_task_register(&cp_snapshot_task);
}
