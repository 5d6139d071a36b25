/*-------------------------------------------------------------------------
 *
 * adr_ops.h
 *	  Project-wide declarations: what _PG_init calls around the modules'
 *	  initialisation, the version of the SQL objects a database holds, and
 *	  the error of a feature that needs adr_ops preloaded.
 *
 * Each module declares its own API and settings in its own header
 * (scheduler.h for the scheduler and the task runtime, probe.h, alert.h,
 * security.h, ...).  The task API stays reachable from here: this header
 * includes scheduler.h.
 *
 * IDENTIFICATION
 *	  src/adr_ops.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_ADR_OPS_H
#define ADR_OPS_ADR_OPS_H

#ifndef ADR_OPS_VERSION
#error "ADR_OPS_VERSION must be defined by the Makefile"
#endif

/* guc.c */
extern void adr_guc_init(void);
extern void adr_guc_reserve(void);

/* maint_shmem.c: the ERROR of a feature that needs adr_ops preloaded */
extern void adr_preload_error(const char *what) pg_attribute_noreturn();

/* info.c */
extern char *adr_extension_version(void);
extern int	adr_version_cmp(const char *a, const char *b);

#include "scheduler.h"

#endif							/* ADR_OPS_ADR_OPS_H */
