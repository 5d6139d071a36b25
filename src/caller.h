/*-------------------------------------------------------------------------
 *
 * caller.h
 *	  Which role called an adr_ops function (caller.c): the fmgr hook that
 *	  keeps the SECURITY DEFINER frames, and its initialisation.
 *
 * IDENTIFICATION
 *	  src/caller.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_CALLER_H
#define ADR_OPS_CALLER_H

extern void adr_caller_init(void);

#endif							/* ADR_OPS_CALLER_H */
