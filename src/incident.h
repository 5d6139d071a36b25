/*-------------------------------------------------------------------------
 *
 * incident.h
 *	  The incidents (incident.c): their setting, initialisation, and the
 *	  payload hook of alert delivery.
 *
 * IDENTIFICATION
 *	  src/incident.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_INCIDENT_H
#define ADR_OPS_INCIDENT_H

extern int	adr_ops_alert_format;

extern void adr_incident_init(void);
extern char *adr_incident_payload_finish(char *payload, MemoryContext cxt);

#endif							/* ADR_OPS_INCIDENT_H */
