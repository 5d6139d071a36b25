/*-------------------------------------------------------------------------
 *
 * bloat.h
 *	  The bloat reports' settings and initialisation (bloat.c).
 *
 * IDENTIFICATION
 *	  src/bloat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_BLOAT_H
#define ADR_OPS_BLOAT_H

extern int	adr_ops_bloat_sample_pages;
extern int	adr_ops_bloat_report_timeout;

extern void adr_bloat_init(void);

#endif							/* ADR_OPS_BLOAT_H */
