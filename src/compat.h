/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The only place where adr_ops bends to the server version.
 *
 * adr_ops is built and tested against PostgreSQL 15; the shims below keep
 * 14 to 17 possible (13 lacks the predefined-role constants that
 * serverlog.c, bloat.c and backup.c use, and the common/cryptohash.h of
 * backup_worker.c).  Code elsewhere calls the newest API by its newest name.
 *
 * IDENTIFICATION
 *	  src/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_COMPAT_H
#define ADR_OPS_COMPAT_H

#include "funcapi.h"
#include "utils/datetime.h"

/* MarkGUCPrefixReserved() replaced EmitWarningsOnPlaceholders() in 15. */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/*
 * InitMaterializedSRF() arrived in 15.  Before that, set up the tuplestore
 * the way contrib modules of those releases did by hand.
 */
#if PG_VERSION_NUM < 150000
#include "miscadmin.h"
#include "utils/tuplestore.h"

#define MAT_SRF_USE_EXPECTED_DESC 0x01

static inline void
InitMaterializedSRF(FunctionCallInfo fcinfo, bits32 flags)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext oldcontext;
	TupleDesc	tupdesc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));

	oldcontext = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->setDesc = CreateTupleDescCopy(tupdesc);
	MemoryContextSwitchTo(oldcontext);
}
#endif

/* DecodeDateTime() gained a DateTimeErrorExtra argument in 16. */
#if PG_VERSION_NUM >= 160000
#define adr_decode_datetime(field, ftype, nf, dtype, tm, fsec, tzp) \
	DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tzp, NULL)
#else
#define adr_decode_datetime(field, ftype, nf, dtype, tm, fsec, tzp) \
	DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tzp)
#endif

/*
 * A random seed for utils/sampling.h (bloat.c): 15 has pg_prng, seeded per
 * backend; before it, random() (which the postmaster seeds per backend).
 */
#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#define adr_random_seed() pg_prng_uint32(&pg_global_prng_state)
#else
#define adr_random_seed() ((uint32) random())
#endif

#endif							/* ADR_OPS_COMPAT_H */
