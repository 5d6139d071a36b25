/*-------------------------------------------------------------------------
 *
 * info.c
 *	  adr_version(): what this build of adr_ops is made of, and which
 *	  version of its SQL objects a database holds.
 *
 * Support requests start with versions: the extension's, the server's it
 * was built against, and the libcurl it runs with (the probes and alerts
 * depend on its protocol and TLS support).
 *
 * The library and the SQL objects are upgraded by separate steps: a package
 * upgrade and a restart load the new library at once, while each database
 * keeps the SQL objects of the old version until ALTER EXTENSION adr_ops
 * UPDATE runs in it.  Code of a newer library that needs newer SQL objects
 * asks adr_extension_version() first.
 *
 * IDENTIFICATION
 *	  src/info.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "adr_ops.h"
#include "compat.h"
#include "http.h"

PG_FUNCTION_INFO_V1(adr_version);

/*
 * The version of adr_ops' SQL objects installed in the current database
 * (pg_extension.extversion), palloc'd, or NULL when adr_ops is not
 * installed here.  Needs a transaction.
 */
char *
adr_extension_version(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("adr_ops"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

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
 * Compare two versions "major.minor": negative, zero or positive as a is
 * older than, the same as or newer than b.
 */
int
adr_version_cmp(const char *a, const char *b)
{
	int			amaj = 0,
				amin = 0,
				bmaj = 0,
				bmin = 0;

	(void) sscanf(a, "%d.%d", &amaj, &amin);
	(void) sscanf(b, "%d.%d", &bmaj, &bmin);
	if (amaj != bmaj)
		return amaj < bmaj ? -1 : 1;
	return amin < bmin ? -1 : (amin > bmin ? 1 : 0);
}

/*
 * adr_version() returns (component text, version text): adr_ops (the
 * library), adr_ops_sql (the SQL objects in this database), the PostgreSQL
 * it was built for, and the libcurl and TLS library loaded.
 */
Datum
adr_version(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *curl;
	const char *tls;

	adr_http_versions(&curl, &tls);

	InitMaterializedSRF(fcinfo, 0);
	iv_add(rsinfo, "adr_ops", ADR_OPS_VERSION);
	iv_add(rsinfo, "adr_ops_sql", adr_extension_version());
	iv_add(rsinfo, "postgresql", PG_VERSION);
	iv_add(rsinfo, "libcurl", curl);
	iv_add(rsinfo, "ssl", tls);
	return (Datum) 0;
}
