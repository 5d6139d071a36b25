/*-------------------------------------------------------------------------
 *
 * health_task.h
 *	  The task health_snapshot (health_task.c).
 *
 * IDENTIFICATION
 *	  src/health_task.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_HEALTH_TASK_H
#define ADR_OPS_HEALTH_TASK_H

extern void adr_health_task_init(void);

#endif							/* ADR_OPS_HEALTH_TASK_H */
