/*-------------------------------------------------------------------------
 *
 * alert.c
 *	  Alert delivery: the task alert_delivery, which posts the alerts of
 *	  adr_ops.alerts to adr_ops.alert_webhook_url, and its settings.
 *
 * Alerts are raised in SQL: recording a probe result fires the alert
 * trigger of http.sql (one alert per status transition, with NOTIFY
 * adr_alerts), and the incidents raise theirs (incident.sql).  Delivery
 * happens afterwards, here, outside the transaction that raised the alert.
 * An alert being delivered is leased (its next_attempt_at moved past the
 * delivery timeout) in a committed transaction first, so two workers never
 * post the same alert at once, and no transaction stays open across the
 * POST; a delivery that fails is retried with exponential backoff.
 * incident.c finishes each payload (the PagerDuty routing key).
 *
 * Secrets: adr_ops.alert_webhook_url is GUC_SUPERUSER_ONLY, shown masked
 * (a show hook) even to superusers and pg_read_all_settings, and never
 * written by adr_ops to the log, to an error or to a table.  The
 * postmaster's own "parameter changed to" line on reload is avoided by
 * adr_ops.alert_webhook_url_file.
 *
 * Locking: the row locks of the alert lease.
 *
 * IDENTIFICATION
 *	  src/alert.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "adr_ops.h"
#include "alert.h"
#include "http.h"
#include "incident.h"
#include "probe.h"
#include "scheduler.h"

/* How long a webhook POST may take. */
#define AL_WEBHOOK_TIMEOUT_MS	10000
/* Alerts posted per task run. */
#define AL_WEBHOOK_BATCH		100
/*
 * Alerts older than this are never posted: configuring a webhook does not
 * post the whole backlog of old transitions.
 */
#define AL_ALERT_MAX_AGE "'1 day'"
/* Longest wait between two delivery attempts, in seconds. */
#define AL_MAX_BACKOFF_S		3600

char	   *adr_ops_alert_webhook_url = NULL;
int			adr_ops_alert_retry_base = 10;
int			adr_ops_alert_max_attempts = 10;
char	   *adr_ops_alert_webhook_url_file = NULL;

/* What a webhook URL must be; the messages say it, never the URL. */
#define AL_WEBHOOK_RULE "The webhook URL must start with http:// or https:// and hold no line break."

/* Is this non-empty webhook URL http(s) without line breaks? */
static bool
al_webhook_url_ok(const char *v)
{
	return !adr_http_has_crlf(v) &&
		(pg_strncasecmp(v, "http://", 7) == 0 || pg_strncasecmp(v, "https://", 8) == 0);
}

/* The webhook URL setting: empty, or a valid URL.  Never echoed. */
static bool
al_webhook_check(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;

	if (v == NULL || *v == '\0')
		return true;
	if (!al_webhook_url_ok(v))
	{
		GUC_check_errdetail(AL_WEBHOOK_RULE);
		return false;
	}
	return true;
}

static const char *
al_webhook_show(void)
{
	return adr_http_secret_show(adr_ops_alert_webhook_url);
}

/* The scheduler task of alert delivery, registered by adr_alert_init(). */
static const AdrTask al_task =
{"alert_delivery", true, false, false, "5s", adr_task_no_options, adr_alert_deliver,
"post undelivered alerts to adr_ops.alert_webhook_url, retrying with backoff"};

/*
 * The settings of alert delivery, and its task.  Called from _PG_init
 * before adr_guc_reserve() reserves the prefix, so that values set in
 * postgresql.conf before the library loaded are kept.
 */
void
adr_alert_init(void)
{
	DefineCustomStringVariable("adr_ops.alert_webhook_url",
							   "Sets the URL alerts are posted to as JSON.",
							   "Empty posts nothing.  Shown as ******** to everyone.",
							   &adr_ops_alert_webhook_url,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   al_webhook_check, NULL, al_webhook_show);
	DefineCustomIntVariable("adr_ops.alert_retry_base",
							"Sets the wait before the first retry of a failed alert delivery.",
							"Each further retry waits twice as long, up to an hour.",
							&adr_ops_alert_retry_base,
							10,
							1,
							AL_MAX_BACKOFF_S,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("adr_ops.alert_max_attempts",
							"Sets how many times an alert delivery is tried.",
							NULL,
							&adr_ops_alert_max_attempts,
							10,
							1,
							1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("adr_ops.alert_webhook_url_file",
							   "Sets a file holding the URL alerts are posted to.",
							   "Used when adr_ops.alert_webhook_url is empty.  Unlike a setting's "
							   "value, the file's content never appears in the server log.",
							   &adr_ops_alert_webhook_url_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	adr_task_register(&al_task);
}

/*
 * Post the undelivered alerts that are due, and less than a day old, to
 * adr_ops.alert_webhook_url, and record each outcome.  Appends a summary to the run's detail.
 */
void
adr_alert_deliver(AdrTaskRun *run)
{
	MemoryContext caller = CurrentMemoryContext;
	AdrHttpRequest *reqs;
	AdrHttpResult *res;
	AdrHttpLimits limits;
	int64	   *ids;
	int			n;
	int			i;
	int			delivered = 0;
	Oid			lease_types[2] = {INT4OID, INT4OID};
	Datum		lease_args[2];
	char	   *url;

	if (run->detail.len > 0)
		appendStringInfoString(&run->detail, "; ");
	url = adr_http_secret(adr_ops_alert_webhook_url, adr_ops_alert_webhook_url_file,
					"adr_ops.alert_webhook_url_file");
	if (url == NULL)
	{
		appendStringInfoString(&run->detail, "alerts: no adr_ops.alert_webhook_url set");
		return;
	}
	if (!al_webhook_url_ok(url))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid webhook URL in the file named by \"adr_ops.alert_webhook_url_file\""),
				 errdetail(AL_WEBHOOK_RULE)));

	adr_task_xact_begin("adr_ops alert_delivery: lease alerts", true);
	lease_args[0] = Int32GetDatum(AL_WEBHOOK_TIMEOUT_MS / 1000 + 60);
	lease_args[1] = Int32GetDatum(adr_ops_alert_max_attempts);
	if (SPI_execute_with_args("UPDATE adr_ops.alerts a "
							  "   SET next_attempt_at = pg_catalog.clock_timestamp() "
							  "       OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $1) "
							  "  FROM (SELECT id FROM adr_ops.alerts "
							  "         WHERE delivered_at IS NULL AND attempts OPERATOR(pg_catalog.<) $2 "
							  "           AND next_attempt_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp() "
							  "           AND at OPERATOR(pg_catalog.>) (pg_catalog.clock_timestamp() "
							  "               OPERATOR(pg_catalog.-) " AL_ALERT_MAX_AGE "::pg_catalog.interval) "
							  "         ORDER BY id LIMIT " CppAsString2(AL_WEBHOOK_BATCH)
							  "         FOR UPDATE SKIP LOCKED) c "
							  " WHERE a.id OPERATOR(pg_catalog.=) c.id "
							  "RETURNING a.id, adr_ops._alert_payload(a)",
							  2, lease_types, lease_args, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not lease alerts");
	n = (int) SPI_processed;
	ids = MemoryContextAlloc(caller, sizeof(int64) * Max(n, 1));
	reqs = MemoryContextAllocZero(caller, sizeof(AdrHttpRequest) * Max(n, 1));
	res = MemoryContextAllocZero(caller, sizeof(AdrHttpResult) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		ids[i] = pg_strtoint64(adr_spi_getstr(i, 1, caller));
		reqs[i].url = url;
		reqs[i].post_json = adr_incident_payload_finish(adr_spi_getstr(i, 2, caller), caller);
		reqs[i].timeout_ms = AL_WEBHOOK_TIMEOUT_MS;
		reqs[i].expect_status = 0;
	}
	adr_task_xact_end(caller);
	if (n == 0)
	{
		appendStringInfoString(&run->detail, "alerts: none due");
		return;
	}

	adr_http_limits(&limits);
	adr_http_perform(reqs, res, n, &limits);

	adr_task_xact_begin("adr_ops alert_delivery: record deliveries", true);
	for (i = 0; i < n; i++)
	{
		Oid			types[3] = {INT8OID, TEXTOID, INT4OID};
		Datum		args[3];
		char		argnulls[3] = {' ', ' ', ' '};

		args[0] = Int64GetDatum(ids[i]);
		args[1] = res[i].ok ? (Datum) 0 : CStringGetTextDatum(res[i].error);
		argnulls[1] = res[i].ok ? 'n' : ' ';
		args[2] = Int32GetDatum(adr_ops_alert_retry_base);
		if (res[i].ok)
			delivered++;
		if (SPI_execute_with_args("UPDATE adr_ops.alerts "
								  "   SET attempts = attempts OPERATOR(pg_catalog.+) 1, last_error = $2, "
								  "       delivered_at = CASE WHEN $2 IS NULL THEN pg_catalog.clock_timestamp() END, "
								  "       next_attempt_at = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) "
								  "           pg_catalog.make_interval(secs => LEAST($3::float8 "
								  "               OPERATOR(pg_catalog.*) (2::float8 OPERATOR(pg_catalog.^) attempts), "
								  CppAsString2(AL_MAX_BACKOFF_S) "::float8)) "
								  " WHERE id OPERATOR(pg_catalog.=) $1",
								  3, types, args, argnulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not record an alert delivery");
	}
	adr_task_xact_end(caller);

	appendStringInfo(&run->detail, "alerts: delivered %d", delivered);
	if (delivered < n)
		appendStringInfo(&run->detail, ", %d failed and will be retried (see adr_ops.alerts.last_error)",
						 n - delivered);
}
