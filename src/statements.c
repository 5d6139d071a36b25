/*-------------------------------------------------------------------------
 *
 * statements.c
 *	  The C side of the statement history: its setting and the task
 *	  statement_snapshot.
 *
 * The concern itself is SQL (statements.sql), which reads
 * adr_ops.snapshot_retention through current_setting(); the task is one
 * query of it, run by the task runtime.
 *
 * IDENTIFICATION
 *	  src/statements.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "scheduler.h"
#include "statements.h"

int			adr_ops_snapshot_retention = 30 * 24 * 3600;

/* One query of statements.sql (adr_snapshot_statements()). */
static const AdrTask st_task =
{"statement_snapshot", true, false, false, "5s", adr_task_no_options, NULL,
	"store the pg_stat_statements entries that changed since the last snapshot (adr_snapshot_statements())", NULL,
"SELECT n, format('stored %s changed statement entries', n) FROM adr_ops.adr_snapshot_statements() n"};

/* The setting and the task; called from _PG_init. */
void
adr_statements_init(void)
{
	DefineCustomIntVariable("adr_ops.snapshot_retention",
							"Sets how long adr_snapshot_statements() keeps statement history.",
							"Each entry's newest stored row is kept whatever its age.",
							&adr_ops_snapshot_retention,
							30 * 24 * 3600,
							3600,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	adr_task_register(&st_task);
}
