/*-------------------------------------------------------------------------
 *
 * alert.h
 *	  Alert delivery (alert.c): settings, initialisation, and the delivery
 *	  pass that the task http_probe runs after recording its results.
 *
 * IDENTIFICATION
 *	  src/alert.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_ALERT_H
#define ADR_OPS_ALERT_H

#include "scheduler.h"

extern char *adr_ops_alert_webhook_url;
extern int	adr_ops_alert_retry_base;
extern int	adr_ops_alert_max_attempts;
extern char *adr_ops_alert_webhook_url_file;

extern void adr_alert_init(void);
extern void adr_alert_deliver(AdrTaskRun *run);

#endif							/* ADR_OPS_ALERT_H */
