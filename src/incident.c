/*-------------------------------------------------------------------------
 *
 * incident.c
 *	  Settings of the incident concern: the webhook payload format and the
 *	  PagerDuty routing key.
 *
 * The concern itself is SQL (incident.sql).  Its notifications are alert
 * rows delivered by alert_delivery (alert.c); adr_ops._alert_payload()
 * writes them in the format adr_ops.alert_format names.  The PagerDuty
 * routing key is a secret: SQL cannot read it (SHOW gives ********), so it
 * is added here, to the payload being posted, never stored in a table.
 *
 * IDENTIFICATION
 *	  src/incident.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/guc.h"
#include "utils/json.h"

#include "adr_ops.h"
#include "incident.h"
#include "probe.h"
#include "scheduler.h"

typedef enum
{
	ADR_ALERT_FORMAT_GENERIC,
	ADR_ALERT_FORMAT_PAGERDUTY,
	ADR_ALERT_FORMAT_ALERTMANAGER
}			AdrAlertFormat;

static const struct config_enum_entry in_format_options[] = {
	{"generic", ADR_ALERT_FORMAT_GENERIC, false},
	{"pagerduty", ADR_ALERT_FORMAT_PAGERDUTY, false},
	{"alertmanager", ADR_ALERT_FORMAT_ALERTMANAGER, false},
	{NULL, 0, false}
};

int			adr_ops_alert_format = ADR_ALERT_FORMAT_GENERIC;
char	   *adr_ops_pagerduty_routing_key = NULL;

/* Shown as ******** when set, to everyone, like the webhook URL. */
static const char *
in_routing_key_show(void)
{
	return adr_http_secret_show(adr_ops_pagerduty_routing_key);
}

/* The escalation pass, registered by adr_incident_init(). */
static const AdrTask in_escalation_task = {
	"incident_escalation", true, false, false, "5s", adr_task_no_options, NULL,
	"escalate and notify again the incidents past their target to acknowledge or resolve (adr_incident_escalate())",
	"1.1",
	"SELECT n, format('escalated %s incidents', n) FROM adr_ops.adr_incident_escalate() n"
};

void
adr_incident_init(void)
{
	DefineCustomEnumVariable("adr_ops.alert_format",
							 "Sets the format of the JSON posted to adr_ops.alert_webhook_url.",
							 "generic: the alert as adr_ops stores it; pagerduty: PagerDuty Events API v2; "
							 "alertmanager: the Alertmanager webhook format.",
							 &adr_ops_alert_format,
							 ADR_ALERT_FORMAT_GENERIC,
							 in_format_options,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("adr_ops.pagerduty_routing_key",
							   "Sets the routing key of PagerDuty events (adr_ops.alert_format = pagerduty).",
							   "Shown as ******** to everyone.",
							   &adr_ops_pagerduty_routing_key,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, NULL, in_routing_key_show);

	adr_task_register(&in_escalation_task);
}

/*
 * The body to post for a payload of adr_ops._alert_payload(): a PagerDuty
 * event (an object whose first key is event_action) gets the routing key
 * as its first key.  Any other payload is posted as it is.
 */
char *
adr_incident_payload_finish(char *payload, MemoryContext cxt)
{
	static const char pd_start[] = "{\"event_action\"";
	StringInfoData buf;
	MemoryContext old;

	if (adr_ops_alert_format != ADR_ALERT_FORMAT_PAGERDUTY ||
		strncmp(payload, pd_start, sizeof(pd_start) - 1) != 0)
		return payload;

	old = MemoryContextSwitchTo(cxt);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"routing_key\" : ");
	escape_json(&buf, adr_ops_pagerduty_routing_key ? adr_ops_pagerduty_routing_key : "");
	appendStringInfoString(&buf, ", ");
	appendStringInfoString(&buf, payload + 1);
	MemoryContextSwitchTo(old);
	return buf.data;
}
