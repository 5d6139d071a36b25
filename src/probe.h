/*-------------------------------------------------------------------------
 *
 * probe.h
 *	  HTTP probes and alert delivery (probe.c): settings, initialisation
 *	  and the scheduler tasks.
 *
 * IDENTIFICATION
 *	  src/probe.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_PROBE_H
#define ADR_OPS_PROBE_H

#include "scheduler.h"

extern char *adr_ops_http_allowed_hosts;
extern int	adr_ops_http_max_redirects;
extern int	adr_ops_http_max_body;
extern char *adr_ops_alert_webhook_url;
extern int	adr_ops_alert_retry_base;
extern int	adr_ops_alert_max_attempts;
extern char *adr_ops_probe_bearer_token;
extern char *adr_ops_alert_webhook_url_file;
extern char *adr_ops_probe_bearer_token_file;

extern void adr_http_init(void);

#endif							/* ADR_OPS_PROBE_H */
