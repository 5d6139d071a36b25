/*-------------------------------------------------------------------------
 *
 * plans.h
 *	  The execution plans' initialisation (plans.c).
 *
 * IDENTIFICATION
 *	  src/plans.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_PLANS_H
#define ADR_OPS_PLANS_H

extern void adr_plans_init(void);

#endif							/* ADR_OPS_PLANS_H */
