/*-------------------------------------------------------------------------
 *
 * probe.h
 *	  HTTP probes (probe.c, probe_task.c): settings, initialisation, and
 *	  what alert delivery shares with them (the limits and the secrets).
 *
 * IDENTIFICATION
 *	  src/probe.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_PROBE_H
#define ADR_OPS_PROBE_H

#include "http.h"

/* probe.c */
extern char *adr_ops_http_allowed_hosts;
extern int	adr_ops_http_max_redirects;
extern int	adr_ops_http_max_body;
extern char *adr_ops_probe_bearer_token;
extern char *adr_ops_probe_bearer_token_file;

extern void adr_http_init(void);
extern void adr_http_limits(AdrHttpLimits *limits);
extern char *adr_http_secret(const char *value, const char *file, const char *setting);
extern const char *adr_http_secret_show(const char *value);

/* probe_task.c */
extern void adr_probe_task_init(void);

#endif							/* ADR_OPS_PROBE_H */
