/*-------------------------------------------------------------------------
 *
 * capacity.h
 *	  The capacity concern's settings and initialisation (capacity.c).
 *
 * IDENTIFICATION
 *	  src/capacity.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_CAPACITY_H
#define ADR_OPS_CAPACITY_H

extern int	adr_ops_recovery_time_objective;
extern int	adr_ops_recovery_point_objective;
extern int	adr_ops_wal_replay_rate;

extern void adr_capacity_init(void);

#endif							/* ADR_OPS_CAPACITY_H */
