/*-------------------------------------------------------------------------
 *
 * info.c
 *	  adr_version(): what this build of adr_ops is made of.
 *
 * Support requests start with versions: the extension's, the server's it
 * was built against, and the libcurl it runs with (the probes and alerts
 * depend on its protocol and TLS support).
 *
 * IDENTIFICATION
 *	  src/info.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "adr_ops.h"
#include "compat.h"

PG_FUNCTION_INFO_V1(adr_version);

static void
iv_add(ReturnSetInfo *rsinfo, const char *component, const char *version)
{
	Datum		values[2];
	bool		nulls[2] = {false, version == NULL};

	values[0] = CStringGetTextDatum(component);
	values[1] = version ? CStringGetTextDatum(version) : (Datum) 0;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * adr_version() returns (component text, version text): adr_ops, the
 * PostgreSQL it was built for, and the libcurl and TLS library loaded.
 */
Datum
adr_version(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);

	InitMaterializedSRF(fcinfo, 0);
	iv_add(rsinfo, "adr_ops", ADR_OPS_VERSION);
	iv_add(rsinfo, "postgresql", PG_VERSION);
	iv_add(rsinfo, "libcurl", curl->version);
	iv_add(rsinfo, "ssl", curl->ssl_version);
	return (Datum) 0;
}
