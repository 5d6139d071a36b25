/*-------------------------------------------------------------------------
 *
 * jobs.h
 *	  The pipeline jobs' setting and initialisation (jobs.c).
 *
 * IDENTIFICATION
 *	  src/jobs.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_JOBS_H
#define ADR_OPS_JOBS_H

extern int	adr_ops_job_stale_after;

extern void adr_jobs_init(void);

#endif							/* ADR_OPS_JOBS_H */
