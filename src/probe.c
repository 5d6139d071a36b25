/*-------------------------------------------------------------------------
 *
 * probe.c
 *	  HTTP probes and alert delivery: the SQL entry points
 *	  (adr_http_check, adr_http_metric), the scheduler tasks http_probe and
 *	  alert_delivery, and their settings.
 *
 * The network work is http.c's; this file validates input, reads the
 * settings, and does the SPI around it.  The runbook's
 * `curl -f http://localhost:8000/health` is adr_http_check(); its
 * `curl .../metrics | grep response_time` is adr_http_metric(), which
 * parses the Prometheus text exposition format instead of grepping it.
 *
 * The tasks never hold a transaction open across network I/O: they read
 * what to do and commit, run the batch, then record the results in a new
 * transaction.  Recording a probe result fires the alert trigger of
 * http.sql (one alert per status transition, with NOTIFY adr_alerts);
 * delivery to adr_ops.alert_webhook_url happens afterwards, here, outside
 * the transaction that detected the transition.  An alert being delivered
 * is leased (its next_attempt_at moved past the delivery timeout) in a
 * committed transaction first, so two workers never post the same alert at
 * once; a delivery that fails is retried with exponential backoff.
 *
 * Secrets: adr_ops.alert_webhook_url and adr_ops.probe_bearer_token are
 * GUC_SUPERUSER_ONLY, shown masked (a show hook) even to superusers and
 * pg_read_all_settings, and never written by adr_ops to the log, to an
 * error or to a table.  The postmaster's own "parameter changed to" line
 * on reload is avoided by the *_file settings.
 *
 * Locking: the row locks of the alert lease, and a transaction advisory
 * lock on hashtext('adr_ops.http_probe') while recording probe results, so
 * that overlapping runs of http_probe do not raise the same alert twice.
 *
 * IDENTIFICATION
 *	  src/probe.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "adr_ops.h"
#include "compat.h"
#include "http.h"
#include "probe.h"
#include "prom_text.h"

PG_FUNCTION_INFO_V1(adr_http_check);
PG_FUNCTION_INFO_V1(adr_http_metric);

/* How long a webhook POST may take. */
#define PR_WEBHOOK_TIMEOUT_MS	10000
/* Alerts posted per task run. */
#define PR_WEBHOOK_BATCH		100
/* The advisory lock key that serialises recording the probe results. */
#define PR_RESULTS_LOCK "pg_catalog.hashtext('adr_ops.http_probe')"
/*
 * Alerts older than this are never posted: configuring a webhook does not
 * post the whole backlog of old transitions.
 */
#define PR_ALERT_MAX_AGE "'1 day'"
/* Longest wait between two delivery attempts, in seconds. */
#define PR_MAX_BACKOFF_S		3600

char	   *adr_ops_http_allowed_hosts = NULL;
int			adr_ops_http_max_redirects = 5;
int			adr_ops_http_max_body = 1024 * 1024;
char	   *adr_ops_alert_webhook_url = NULL;
int			adr_ops_alert_retry_base = 10;
int			adr_ops_alert_max_attempts = 10;
char	   *adr_ops_probe_bearer_token = NULL;
char	   *adr_ops_alert_webhook_url_file = NULL;
char	   *adr_ops_probe_bearer_token_file = NULL;

static bool
pr_hosts_check(char **newval, void **extra, GucSource source)
{
	char	   *bad = NULL;

	if (!adr_http_hosts_parse_ok(*newval, &bad))
	{
		GUC_check_errdetail("\"%s\" is not a host name, an address or a CIDR range.", bad);
		return false;
	}
	return true;
}

/* What a webhook URL must be; the messages say it, never the URL. */
#define PR_WEBHOOK_RULE "The webhook URL must start with http:// or https:// and hold no line break."

/* Is this non-empty webhook URL http(s) without line breaks? */
static bool
pr_webhook_url_ok(const char *v)
{
	return !adr_http_has_crlf(v) &&
		(pg_strncasecmp(v, "http://", 7) == 0 || pg_strncasecmp(v, "https://", 8) == 0);
}

/* The webhook URL setting: empty, or a valid URL.  Never echoed. */
static bool
pr_webhook_check(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;

	if (v == NULL || *v == '\0')
		return true;
	if (!pr_webhook_url_ok(v))
	{
		GUC_check_errdetail(PR_WEBHOOK_RULE);
		return false;
	}
	return true;
}

/*
 * SHOW, current_setting() and pg_settings show a secret setting as
 * "********" when it is set and "" when not, to everyone: GUC_SUPERUSER_ONLY
 * alone still lets members of pg_read_all_settings (pg_monitor) read it.
 */
static const char *
pr_secret_show(const char *value)
{
	return (value != NULL && value[0] != '\0') ? "********" : "";
}

static const char *
pr_webhook_show(void)
{
	return pr_secret_show(adr_ops_alert_webhook_url);
}

static const char *
pr_token_show(void)
{
	return pr_secret_show(adr_ops_probe_bearer_token);
}

static void pr_task_http_probe(AdrTaskRun *run);
static void pr_task_alert_delivery(AdrTaskRun *run);

/* The scheduler tasks of this concern, registered by adr_http_init(). */
static const AdrTask pr_tasks[] = {
	{"http_probe", true, false, false, "5s", adr_task_no_options, pr_task_http_probe,
	"run every enabled probe of adr_ops.probes at once, store probe_history, deliver due alerts"},
	{"alert_delivery", true, false, false, "5s", adr_task_no_options, pr_task_alert_delivery,
	"post undelivered alerts to adr_ops.alert_webhook_url, retrying with backoff"},
};

/*
 * The settings of the probes and alerts.  Called from _PG_init before
 * adr_guc_init() reserves the prefix, so that values set in
 * postgresql.conf before the library loaded are kept.
 */
void
adr_http_init(void)
{
	int			i;

	DefineCustomStringVariable("adr_ops.http_allowed_hosts",
							   "Sets the destinations HTTP probes and alert webhooks may reach.",
							   "Host names, addresses or CIDR ranges, separated by commas; checked "
							   "on the address connected to, redirects included.  Empty allows "
							   "loopback only.",
							   &adr_ops_http_allowed_hosts,
							   "",
							   PGC_SUSET,
							   0,
							   pr_hosts_check, NULL, NULL);
	DefineCustomIntVariable("adr_ops.http_max_redirects",
							"Sets how many redirects an HTTP probe follows.",
							"0 follows none.",
							&adr_ops_http_max_redirects,
							5,
							0,
							50,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("adr_ops.http_max_body",
							"Sets how much of a response body an HTTP probe reads.",
							"The transfer stops there; adr_http_metric() refuses a larger page.",
							&adr_ops_http_max_body,
							1024 * 1024,
							1024,
							256 * 1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomStringVariable("adr_ops.alert_webhook_url",
							   "Sets the URL alerts are posted to as JSON.",
							   "Empty posts nothing.  Shown as ******** to everyone.",
							   &adr_ops_alert_webhook_url,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   pr_webhook_check, NULL, pr_webhook_show);
	DefineCustomIntVariable("adr_ops.alert_retry_base",
							"Sets the wait before the first retry of a failed alert delivery.",
							"Each further retry waits twice as long, up to an hour.",
							&adr_ops_alert_retry_base,
							10,
							1,
							PR_MAX_BACKOFF_S,
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
	DefineCustomStringVariable("adr_ops.probe_bearer_token",
							   "Sets the bearer token sent by probes whose send_token is true.",
							   "Shown as ******** to everyone.",
							   &adr_ops_probe_bearer_token,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, NULL, pr_token_show);
	DefineCustomStringVariable("adr_ops.alert_webhook_url_file",
							   "Sets a file holding the URL alerts are posted to.",
							   "Used when adr_ops.alert_webhook_url is empty.  Unlike a setting's "
							   "value, the file's content never appears in the server log.",
							   &adr_ops_alert_webhook_url_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("adr_ops.probe_bearer_token_file",
							   "Sets a file holding the bearer token of probes whose send_token is true.",
							   "Used when adr_ops.probe_bearer_token is empty.",
							   &adr_ops_probe_bearer_token_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	for (i = 0; i < lengthof(pr_tasks); i++)
		adr_task_register(&pr_tasks[i]);
}

/*
 * A secret: the setting's value, or else the first line of the file the
 * *_file setting names, or NULL when neither is set.  NB: the messages name
 * the file and the setting, never the content.
 */
static char *
pr_secret(const char *value, const char *file, const char *setting)
{
	FILE	   *f;
	char		buf[8192];
	size_t		len;

	if (value != NULL && value[0] != '\0')
		return pstrdup(value);
	if (file == NULL || file[0] == '\0')
		return NULL;
	f = AllocateFile(file, "r");
	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" named by \"%s\": %m", file, setting)));
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	FreeFile(f);
	len = strlen(buf);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	if (len == 0)
		return NULL;
	return pstrdup(buf);
}

static void
pr_limits(AdrHttpLimits *limits)
{
	limits->max_redirects = adr_ops_http_max_redirects;
	limits->max_body = adr_ops_http_max_body;
	limits->allowed_hosts = adr_ops_http_allowed_hosts;
}

/*
 * adr_http_check(url text, timeout_ms int, expect_status int,
 * bearer_token text) returns (url, ok, status_code, latency_ms, bytes,
 * error).  Bad arguments are ERRORs; anything the network does is a row.
 */
Datum
adr_http_check(PG_FUNCTION_ARGS)
{
	AdrHttpRequest req = {0};
	AdrHttpResult res;
	AdrHttpLimits limits;
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {0};
	char	   *url;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("url must not be null")));
	if (PG_ARGISNULL(1) || PG_GETARG_INT32(1) < 1 || PG_GETARG_INT32(1) > 3600 * 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout_ms must be between 1 and 3600000")));
	if (PG_ARGISNULL(2) || PG_GETARG_INT32(2) < 100 || PG_GETARG_INT32(2) > 599)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expect_status must be an HTTP status code between 100 and 599")));
	url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	req.url = url;
	req.timeout_ms = PG_GETARG_INT32(1);
	req.expect_status = PG_GETARG_INT32(2);
	if (!PG_ARGISNULL(3))
	{
		req.bearer_token = text_to_cstring(PG_GETARG_TEXT_PP(3));
		if (adr_http_has_crlf(req.bearer_token))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("bearer_token must not contain CR or LF"),
					 errdetail("A line break in a header value would inject headers.")));
	}

	pr_limits(&limits);
	adr_http_perform(&req, &res, 1, &limits);

	values[0] = CStringGetTextDatum(url);
	values[1] = BoolGetDatum(res.ok);
	values[2] = Int32GetDatum(res.status_code);
	nulls[2] = res.status_code == 0;
	values[3] = Float8GetDatum(res.latency_ms);
	values[4] = Int64GetDatum(res.bytes);
	values[5] = res.error ? CStringGetTextDatum(res.error) : (Datum) 0;
	nulls[5] = res.error == NULL;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/*
 * adr_http_metric(url text, metric text, timeout_ms int) returns
 * (metric text, labels jsonb, value float8): the samples of one metric of
 * a Prometheus text page, as prom_text.c parses it (comments, HELP and
 * TYPE lines and malformed lines are skipped).  A page that cannot be
 * fetched is an ERROR, since the function has no row to carry it.
 */
Datum
adr_http_metric(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AdrHttpRequest req = {0};
	AdrHttpResult res;
	AdrHttpLimits limits;
	char	   *want = text_to_cstring(PG_GETARG_TEXT_PP(1));
	AdrPromScan scan;
	AdrPromSample sample;
	StringInfoData labels;

	if (PG_GETARG_INT32(2) < 1 || PG_GETARG_INT32(2) > 3600 * 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout_ms must be between 1 and 3600000")));
	InitMaterializedSRF(fcinfo, 0);

	req.url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	req.timeout_ms = PG_GETARG_INT32(2);
	req.expect_status = 200;
	req.keep_body = true;
	pr_limits(&limits);
	adr_http_perform(&req, &res, 1, &limits);
	if (!res.ok)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not fetch metrics from \"%s\"", req.url),
				 errdetail("%s", res.error)));
	if (res.truncated)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("metrics page \"%s\" is larger than \"adr_ops.http_max_body\"", req.url),
				 errdetail("Reading stopped at %lld bytes.", (long long) res.bytes),
				 errhint("Raise \"adr_ops.http_max_body\".")));

	initStringInfo(&labels);
	adr_prom_scan_init(&scan, res.body, want);
	while (adr_prom_scan_next(&scan, &sample))
	{
		Datum		values[3];
		bool		nulls[3] = {0};
		char	   *pair = sample.labels;
		int			i;

		resetStringInfo(&labels);
		appendStringInfoChar(&labels, '{');
		for (i = 0; i < sample.nlabels; i++)
		{
			char	   *lvalue = pair + strlen(pair) + 1;

			if (i > 0)
				appendStringInfoString(&labels, ", ");
			escape_json(&labels, pair);
			appendStringInfoString(&labels, ": ");
			escape_json(&labels, adr_http_valid_text(lvalue));
			pair = adr_prom_label_next(pair);
		}
		appendStringInfoChar(&labels, '}');

		values[0] = CStringGetTextDatum(sample.name);
		values[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum(labels.data));
		values[2] = Float8GetDatum(sample.value);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ---- the scheduler tasks ---- */

static char *
pr_getstr(int row, int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

/*
 * Post the undelivered alerts that are due, and less than a day old, to
 * adr_ops.alert_webhook_url, and record each outcome.  Appends a summary to the run's detail.
 */
static void
pr_deliver_alerts(AdrTaskRun *run)
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
	url = pr_secret(adr_ops_alert_webhook_url, adr_ops_alert_webhook_url_file,
					"adr_ops.alert_webhook_url_file");
	if (url == NULL)
	{
		appendStringInfoString(&run->detail, "alerts: no adr_ops.alert_webhook_url set");
		return;
	}
	if (!pr_webhook_url_ok(url))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid webhook URL in the file named by \"adr_ops.alert_webhook_url_file\""),
				 errdetail(PR_WEBHOOK_RULE)));

	adr_task_xact_begin("adr_ops alert_delivery: lease alerts", true);
	lease_args[0] = Int32GetDatum(PR_WEBHOOK_TIMEOUT_MS / 1000 + 60);
	lease_args[1] = Int32GetDatum(adr_ops_alert_max_attempts);
	if (SPI_execute_with_args("UPDATE adr_ops.alerts a "
							  "   SET next_attempt_at = pg_catalog.clock_timestamp() "
							  "       OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $1) "
							  "  FROM (SELECT id FROM adr_ops.alerts "
							  "         WHERE delivered_at IS NULL AND attempts OPERATOR(pg_catalog.<) $2 "
							  "           AND next_attempt_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp() "
							  "           AND at OPERATOR(pg_catalog.>) (pg_catalog.clock_timestamp() "
							  "               OPERATOR(pg_catalog.-) " PR_ALERT_MAX_AGE "::pg_catalog.interval) "
							  "         ORDER BY id LIMIT " CppAsString2(PR_WEBHOOK_BATCH)
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
		ids[i] = pg_strtoint64(pr_getstr(i, 1, caller));
		reqs[i].url = url;
		reqs[i].post_json = adr_incident_payload_finish(pr_getstr(i, 2, caller), caller);
		reqs[i].timeout_ms = PR_WEBHOOK_TIMEOUT_MS;
		reqs[i].expect_status = 0;
	}
	adr_task_xact_end(caller);
	if (n == 0)
	{
		appendStringInfoString(&run->detail, "alerts: none due");
		return;
	}

	pr_limits(&limits);
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
								  CppAsString2(PR_MAX_BACKOFF_S) "::float8)) "
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

/*
 * The task http_probe: every enabled probe of adr_ops.probes at once, in
 * one batch; the results go to adr_ops.probe_history (whose trigger
 * raises the alerts), then due alerts are delivered.
 */
static void
pr_task_http_probe(AdrTaskRun *run)
{
	MemoryContext caller = CurrentMemoryContext;
	AdrHttpRequest *reqs;
	AdrHttpResult *res;
	AdrHttpLimits limits;
	char	  **names;
	int			n;
	int			i;
	int			failed = 0;
	StringInfoData failures;
	char	   *token = NULL;

	/* A token with CR or LF fails its probes in http.c, each with a row. */
	token = pr_secret(adr_ops_probe_bearer_token, adr_ops_probe_bearer_token_file,
					  "adr_ops.probe_bearer_token_file");

	adr_task_xact_begin("adr_ops http_probe: read probes", true);
	if (SPI_execute("SELECT name, url, expect_status, timeout_ms, send_token "
					"  FROM adr_ops.probes WHERE enabled ORDER BY name", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read adr_ops.probes");
	n = (int) SPI_processed;
	names = MemoryContextAlloc(caller, sizeof(char *) * Max(n, 1));
	reqs = MemoryContextAllocZero(caller, sizeof(AdrHttpRequest) * Max(n, 1));
	res = MemoryContextAllocZero(caller, sizeof(AdrHttpResult) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		char	   *send_token = pr_getstr(i, 5, caller);

		names[i] = pr_getstr(i, 1, caller);
		reqs[i].url = pr_getstr(i, 2, caller);
		reqs[i].expect_status = pg_strtoint32(pr_getstr(i, 3, caller));
		reqs[i].timeout_ms = pg_strtoint32(pr_getstr(i, 4, caller));
		reqs[i].bearer_token = (send_token && send_token[0] == 't') ? token : NULL;
	}
	adr_task_xact_end(caller);

	if (n > 0)
	{
		pr_limits(&limits);
		adr_http_perform(reqs, res, n, &limits);

		adr_task_xact_begin("adr_ops http_probe: record results", true);

		/*
		 * Two runs that overlap (adr_run_task() and the schedule) record
		 * one after the other, so the alert trigger of the second sees the
		 * first's rows and raises no second alert for the same transition.
		 */
		if (SPI_execute("SELECT pg_catalog.pg_advisory_xact_lock(" PR_RESULTS_LOCK ")",
						false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not lock the probe results");
		for (i = 0; i < n; i++)
		{
			Oid			types[7] = {TEXTOID, TEXTOID, BOOLOID, INT4OID, FLOAT8OID, INT8OID, TEXTOID};
			Datum		args[7];
			char		argnulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

			args[0] = CStringGetTextDatum(names[i]);
			args[1] = CStringGetTextDatum(reqs[i].url);
			args[2] = BoolGetDatum(res[i].ok);
			args[3] = Int32GetDatum(res[i].status_code);
			argnulls[3] = res[i].status_code == 0 ? 'n' : ' ';
			args[4] = Float8GetDatum(res[i].latency_ms);
			args[5] = Int64GetDatum(res[i].bytes);
			args[6] = res[i].error ? CStringGetTextDatum(res[i].error) : (Datum) 0;
			argnulls[6] = res[i].error ? ' ' : 'n';
			if (SPI_execute_with_args("INSERT INTO adr_ops.probe_history "
									  "       (probe, url, ok, status_code, latency_ms, bytes, error) "
									  "VALUES ($1, $2, $3, $4, $5, $6, $7)",
									  7, types, args, argnulls, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not record a probe result");
		}
		if (SPI_execute("DELETE FROM adr_ops.probe_history "
						" WHERE probed_at OPERATOR(pg_catalog.<) (pg_catalog.now() "
						"       OPERATOR(pg_catalog.-) '30 days'::pg_catalog.interval)",
						false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not prune adr_ops.probe_history");
		adr_task_xact_end(caller);
	}

	initStringInfo(&failures);
	for (i = 0; i < n; i++)
		if (!res[i].ok)
		{
			failed++;
			appendStringInfo(&failures, "%s%s", failures.len ? ", " : "", names[i]);
		}
	run->objects = n;
	appendStringInfo(&run->detail, "probed %d: %d ok, %d failed", n, n - failed, failed);
	if (failed > 0)
		appendStringInfo(&run->detail, " (%s)", failures.data);

	pr_deliver_alerts(run);
}

/* The task alert_delivery: post the alerts that are due. */
static void
pr_task_alert_delivery(AdrTaskRun *run)
{
	pr_deliver_alerts(run);
}
