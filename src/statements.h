/*-------------------------------------------------------------------------
 *
 * statements.h
 *	  The statement history's setting and initialisation (statements.c).
 *
 * IDENTIFICATION
 *	  src/statements.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_STATEMENTS_H
#define ADR_OPS_STATEMENTS_H

extern int	adr_ops_snapshot_retention;

extern void adr_statements_init(void);

#endif							/* ADR_OPS_STATEMENTS_H */
