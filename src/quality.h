/*-------------------------------------------------------------------------
 *
 * quality.h
 *	  The data-quality concern's initialisation (quality.c).
 *
 * IDENTIFICATION
 *	  src/quality.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_QUALITY_H
#define ADR_OPS_QUALITY_H

extern void adr_quality_init(void);

#endif							/* ADR_OPS_QUALITY_H */
