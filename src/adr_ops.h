/*-------------------------------------------------------------------------
 *
 * adr_ops.h
 *	  Declarations shared across adr_ops' modules: settings and the
 *	  initialisation entry points that _PG_init dispatches to.
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
extern int	adr_ops_log_scan_limit;

extern void adr_guc_init(void);

#endif							/* ADR_OPS_ADR_OPS_H */
