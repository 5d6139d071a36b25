/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  The adr_ops.* settings.
 *
 * Every setting of the extension is defined here, so that the namespace can
 * be reserved once all of them exist.  Settings are named adr_ops.<snake>
 * and live in C variables adr_ops_<snake>.
 *
 * IDENTIFICATION
 *	  src/guc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "adr_ops.h"
#include "compat.h"

/* How much of the end of the server log adr_log_lines() reads, in kB. */
int			adr_ops_log_scan_limit = 64 * 1024;

void
adr_guc_init(void)
{
	DefineCustomIntVariable("adr_ops.log_scan_limit",
							"Sets how much of the end of the current server log adr_ops reads.",
							"adr_log_lines() and the recent_errors health check read at most "
							"this much of the newest log file.",
							&adr_ops_log_scan_limit,
							64 * 1024,
							1024,
							1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("adr_ops");
}
