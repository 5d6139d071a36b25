/*-------------------------------------------------------------------------
 *
 * caller.c
 *	  Which role called an adr_ops function: the role whose code made the
 *	  call, taken at the SECURITY DEFINER boundary by an fmgr hook.
 *
 * adr_ops's functions that act "for the caller" (a quality check is owned by
 * whoever defines it, a job event or an incident event names who made it,
 * adr_lock_role() refuses to lock a superuser unless the caller is one) are
 * SECURITY DEFINER: inside them the current user is the extension's owner.
 * The role that SET ROLE left (the outer user) is not the caller either.
 * When a superuser calls an ordinary role's SECURITY DEFINER function, that
 * function's code runs as its owner, but the outer user is still the
 * superuser: taking the outer user for the caller would let the owner's code
 * define a quality check in the superuser's name (a custom check, which runs
 * SQL as its owner, so the next adr_quality_run() would run the owner's SQL
 * as superuser), lock a superuser, or be recorded as the superuser.
 *
 * The caller is the user of the code that called: the current user just
 * before adr_ops's SECURITY DEFINER frame switched to the owner.  PostgreSQL
 * does not keep that, so this module keeps it: an observing fmgr_hook, which
 * fmgr.c calls for every function that is SECURITY DEFINER or has SET
 * clauses (needs_fmgr_hook is left alone: it would send every other function
 * through fmgr_security_definer too), pushes (function, user inside it,
 * outer user) when such a frame starts and pops it when the frame ends or is
 * left by an error.  The caller of an adr_ops function is the user of the
 * nearest frame below it that is not adr_ops's own (functions of schema
 * adr_ops call each other), or the outer user when there is none: code that
 * is not in such a frame runs as the outer user.  A SET ROLE inside a frame
 * with SET clauses (not possible inside a SECURITY DEFINER one) changes the
 * outer user, and then the outer user is the caller again.
 *
 * The stack is complete only if the hook saw every frame: when adr_ops is
 * loaded lazily (not in shared_preload_libraries) inside a SECURITY DEFINER
 * frame, the frames below it are unknown until the transaction ends (none
 * survives it: such functions cannot COMMIT).  Meanwhile _calling_role(),
 * which labels (actor columns), falls back to the outer user, and
 * _calling_role_strict(), which is used where the role grants power (a
 * quality check's owner, adr_lock_role()), refuses.
 *
 * Inside a security-restricted operation (ANALYZE, VACUUM, an index build,
 * REFRESH MATERIALIZED VIEW, a quality check's query: a table owner's code
 * run as that owner) both refuse: the code calling is the owner's, whatever
 * the frames say.
 *
 * The hook runs for every such call in the backend, so it is an append to a
 * preallocated array.  It keeps nothing in the hook's Datum argument: that
 * is one per call site (fmgr_security_definer's cache), not one per frame,
 * and every hook of the chain (sepgsql's) gets the same one.  An end is
 * matched with the top frame by function OID.  An end with no frame pushed
 * is that of a frame started before the library was loaded, and is
 * ignored; one that does not match the top (a later hook that failed after
 * ours had pushed) marks the stack incomplete, and so does aborting a
 * subtransaction whose frames are still pushed (it drops them).  The end of
 * the transaction empties the stack and makes it complete again.
 *
 * IDENTIFICATION
 *	  src/caller.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "caller.h"

PG_FUNCTION_INFO_V1(adr_calling_role);
PG_FUNCTION_INFO_V1(adr_calling_role_strict);

typedef struct AdrCallerFrame
{
	Oid			fn_oid;			/* the function of the frame */
	Oid			userid;			/* the current user inside it */
	Oid			outer;			/* the outer user when it started */
	int			nest_level;		/* transaction nesting level at its start */
	int			kind;			/* CF_KIND_*: whether it is adr_ops's */
} AdrCallerFrame;

#define CF_KIND_UNKNOWN 0
#define CF_KIND_ADR 1
#define CF_KIND_OTHER 2

static AdrCallerFrame *cf_frames = NULL;
static int	cf_depth = 0;
static int	cf_size = 0;

/* false while frames may exist that the hook did not see */
static bool cf_complete = true;

static fmgr_hook_type cf_prev_fmgr_hook = NULL;

/* Room for one more frame; may raise an ERROR, before anything is pushed. */
static void
cf_reserve(void)
{
	if (cf_depth < cf_size)
		return;
	if (cf_frames == NULL)
	{
		cf_frames = MemoryContextAlloc(TopMemoryContext, 16 * sizeof(AdrCallerFrame));
		cf_size = 16;
	}
	else
	{
		cf_frames = repalloc(cf_frames, 2 * cf_size * sizeof(AdrCallerFrame));
		cf_size *= 2;
	}
}

static void
cf_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg)
{
	if (event == FHET_START)
	{
		AdrCallerFrame *f;

		cf_reserve();
		if (cf_prev_fmgr_hook)
			(*cf_prev_fmgr_hook) (event, flinfo, arg);
		f = &cf_frames[cf_depth++];
		f->fn_oid = flinfo->fn_oid;
		f->userid = GetUserId();
		f->outer = GetOuterUserId();
		f->nest_level = GetCurrentTransactionNestLevel();
		f->kind = CF_KIND_UNKNOWN;
		return;
	}

	/* FHET_END, FHET_ABORT */
	if (cf_depth > 0 && cf_frames[cf_depth - 1].fn_oid == flinfo->fn_oid)
		cf_depth--;
	else
	{
		/*
		 * A frame that started before the library was loaded (the stack is
		 * already incomplete then, or the frame was not one whose user could
		 * differ), or the frames are out of step: trust none until the
		 * transaction ends.
		 */
		if (cf_depth > 0)
			cf_complete = false;
		cf_depth = 0;
	}
	if (cf_prev_fmgr_hook)
		(*cf_prev_fmgr_hook) (event, flinfo, arg);
}

static void
cf_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			cf_depth = 0;
			cf_complete = true;
			break;
		default:
			break;
	}
}

/*
 * A frame ends before the subtransaction it started in is aborted (its
 * FHET_ABORT comes first), so what remains of that subtransaction's frames
 * was pushed by a START whose END never came.
 */
static void
cf_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	int			level;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	level = GetCurrentTransactionNestLevel();
	while (cf_depth > 0 && cf_frames[cf_depth - 1].nest_level >= level)
	{
		cf_depth--;
		cf_complete = false;
	}
}

/*
 * Installs the hook.  Loaded lazily while a SECURITY DEFINER frame (or a
 * security-restricted operation) is running, the frames below are unknown.
 */
void
adr_caller_init(void)
{
	cf_prev_fmgr_hook = fmgr_hook;
	fmgr_hook = cf_fmgr_hook;
	RegisterXactCallback(cf_xact_callback, NULL);
	RegisterSubXactCallback(cf_subxact_callback, NULL);

	if (!process_shared_preload_libraries_in_progress)
	{
		Oid			userid;
		int			sec_context;

		/* GetUserIdAndSecContext: no user yet before a connection is made */
		GetUserIdAndSecContext(&userid, &sec_context);
		if (OidIsValid(userid) &&
			((sec_context & (SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION)) != 0 ||
			 userid != GetOuterUserId()))
			cf_complete = false;
	}
}

/*
 * The caller of the adr_ops function running, which is in schema adr_nsp.
 * Returns InvalidOid when the frames below are not all known.
 */
static Oid
cf_caller(Oid adr_nsp)
{
	int			i;

	if (InSecurityRestrictedOperation())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot call an adr_ops function that acts for its caller within a security-restricted operation"),
				 errdetail("The code running is a table owner's, not the role that started the operation.")));
	if (!cf_complete || IsParallelWorker())
		return InvalidOid;

	for (i = cf_depth - 1; i >= 0; i--)
	{
		AdrCallerFrame *f = &cf_frames[i];

		if (f->kind == CF_KIND_UNKNOWN)
			f->kind = get_func_namespace(f->fn_oid) == adr_nsp ? CF_KIND_ADR : CF_KIND_OTHER;
		if (f->kind == CF_KIND_ADR)
			continue;
		/* a SET ROLE inside it (a frame with SET clauses only) */
		if (f->outer != GetOuterUserId())
			return GetOuterUserId();
		return f->userid;
	}
	return GetOuterUserId();
}

static Datum
cf_role_name(Oid roleid)
{
	return DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(roleid, false)));
}

/*
 * _calling_role() returns the role whose code called the adr_ops function
 * running (see the file's comment), for labels: actor columns, created_by.
 * While the frames below are not all known it returns the outer user, the
 * current user as SET ROLE left it.
 */
Datum
adr_calling_role(PG_FUNCTION_ARGS)
{
	Oid			caller = cf_caller(get_func_namespace(fcinfo->flinfo->fn_oid));

	if (!OidIsValid(caller))
		caller = GetOuterUserId();
	PG_RETURN_DATUM(cf_role_name(caller));
}

/*
 * _calling_role_strict() is _calling_role() for where the role grants
 * power: while the frames below are not all known it refuses.
 */
Datum
adr_calling_role_strict(PG_FUNCTION_ARGS)
{
	Oid			caller = cf_caller(get_func_namespace(fcinfo->flinfo->fn_oid));

	if (!OidIsValid(caller))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("could not determine the role calling adr_ops"),
				 errdetail("The adr_ops library was loaded in this transaction inside a SECURITY DEFINER function, so the functions that called it are not known."),
				 errhint("Add adr_ops to \"shared_preload_libraries\", or call the function again in a new transaction.")));
	PG_RETURN_DATUM(cf_role_name(caller));
}
