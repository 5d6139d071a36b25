/*-------------------------------------------------------------------------
 *
 * serverlog.h
 *	  The server log reader's setting and initialisation (serverlog.c).
 *
 * IDENTIFICATION
 *	  src/serverlog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_SERVERLOG_H
#define ADR_OPS_SERVERLOG_H

extern int	adr_ops_log_scan_limit;

extern void adr_serverlog_init(void);

#endif							/* ADR_OPS_SERVERLOG_H */
