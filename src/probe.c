/*-------------------------------------------------------------------------
 *
 * probe.c
 *	  HTTP probes: their settings (destinations, limits, the bearer token)
 *	  and the SQL entry points adr_http_check and adr_http_metric.
 *
 * The network work is http.c's; this file validates input, reads the
 * settings and builds the rows.  The runbook's
 * `curl -f http://localhost:8000/health` is adr_http_check(); its
 * `curl .../metrics | grep response_time` is adr_http_metric(), which
 * parses the Prometheus text exposition format (prom_text.c) instead of
 * grepping it.  The task http_probe is probe_task.c's, alert delivery
 * alert.c's; both read the settings defined here through
 * adr_http_limits() and adr_http_secret().
 *
 * Secrets: adr_ops.probe_bearer_token (like adr_ops.alert_webhook_url) is
 * GUC_SUPERUSER_ONLY, shown masked (a show hook) even to superusers and
 * pg_read_all_settings, and never written by adr_ops to the log, to an
 * error or to a table.  The postmaster's own "parameter changed to" line
 * on reload is avoided by the *_file settings.
 *
 * IDENTIFICATION
 *	  src/probe.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"

#include "adr_ops.h"
#include "compat.h"
#include "http.h"
#include "probe.h"
#include "prom_text.h"

PG_FUNCTION_INFO_V1(adr_http_check);
PG_FUNCTION_INFO_V1(adr_http_metric);

char	   *adr_ops_http_allowed_hosts = NULL;
int			adr_ops_http_max_redirects = 5;
int			adr_ops_http_max_body = 1024 * 1024;
char	   *adr_ops_probe_bearer_token = NULL;
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

/*
 * SHOW, current_setting() and pg_settings show a secret setting as
 * "********" when it is set and "" when not, to everyone: GUC_SUPERUSER_ONLY
 * alone still lets members of pg_read_all_settings (pg_monitor) read it.
 */
const char *
adr_http_secret_show(const char *value)
{
	return (value != NULL && value[0] != '\0') ? "********" : "";
}

static const char *
pr_token_show(void)
{
	return adr_http_secret_show(adr_ops_probe_bearer_token);
}

/*
 * The settings of the probes.  Called from _PG_init before
 * adr_guc_reserve() reserves the prefix, so that values set in
 * postgresql.conf before the library loaded are kept.
 */
void
adr_http_init(void)
{
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
	DefineCustomStringVariable("adr_ops.probe_bearer_token",
							   "Sets the bearer token sent by probes whose send_token is true.",
							   "Shown as ******** to everyone.",
							   &adr_ops_probe_bearer_token,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, NULL, pr_token_show);
	DefineCustomStringVariable("adr_ops.probe_bearer_token_file",
							   "Sets a file holding the bearer token of probes whose send_token is true.",
							   "Used when adr_ops.probe_bearer_token is empty.",
							   &adr_ops_probe_bearer_token_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
}

/*
 * A secret: the setting's value, or else the first line of the file the
 * *_file setting names, or NULL when neither is set.  NB: the messages name
 * the file and the setting, never the content.
 */
char *
adr_http_secret(const char *value, const char *file, const char *setting)
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

/* The limits every request obeys, from the settings. */
void
adr_http_limits(AdrHttpLimits *limits)
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

	adr_http_limits(&limits);
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
	adr_http_limits(&limits);
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
