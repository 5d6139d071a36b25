/*-------------------------------------------------------------------------
 *
 * integrity.h
 *	  Corruption detection (integrity.c): its initialisation, which
 *	  registers the integrity_check task.
 *
 * IDENTIFICATION
 *	  src/integrity.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_INTEGRITY_H
#define ADR_OPS_INTEGRITY_H

extern void adr_integrity_init(void);

#endif							/* ADR_OPS_INTEGRITY_H */
