/*-------------------------------------------------------------------------
 *
 * maint_shmem.c
 *	  The scheduler's shared memory (see scheduler.h for what it holds and
 *	  its locking rule), and the launcher's wake-up.  Every other module
 *	  with shared memory chains shmem hooks of its own.
 *
 * Shared memory exists only when adr_ops is in shared_preload_libraries;
 * everything that needs the scheduler's calls adr_require_preload() first,
 * so that a plain CREATE EXTENSION gets a clear error instead of a crash.
 * adr_wake_launcher() is the scheduler's API for a module whose change the
 * launcher should act on now; it does nothing without a launcher.
 *
 * IDENTIFICATION
 *	  src/maint_shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"

#include "adr_ops.h"
#include "compat.h"
#include "scheduler.h"

AdrShared  *adr_shared = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
sm_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(MAXALIGN(sizeof(AdrShared)));
	RequestNamedLWLockTranche("adr_ops", 1);
}

static void
sm_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	adr_shared = ShmemInitStruct("adr_ops", sizeof(AdrShared), &found);
	if (!found)
	{
		memset(adr_shared, 0, sizeof(AdrShared));
		adr_shared->lock = &(GetNamedLWLockTranche("adr_ops"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init: ask for shared memory, only while preloading. */
void
adr_shmem_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = sm_request;
#else
	sm_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = sm_startup;
}

/* The ERROR of a feature that needs adr_ops preloaded; what names it. */
void
adr_preload_error(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("adr_ops must be loaded via \"shared_preload_libraries\""),
			 errdetail("%s needs the adr_ops background workers.", what),
			 errhint("Add adr_ops to \"shared_preload_libraries\" and restart the server.")));
}

/* ERROR unless the scheduler's shared memory exists (adr_ops was preloaded). */
void
adr_require_preload(const char *what)
{
	if (adr_shared == NULL)
		adr_preload_error(what);
}

/* Wake the launcher now, if there is one (shared memory, a running launcher). */
void
adr_wake_launcher(void)
{
	Latch	   *latch;

	if (adr_shared == NULL)
		return;
	LWLockAcquire(adr_shared->lock, LW_SHARED);
	latch = adr_shared->launcher_latch;
	LWLockRelease(adr_shared->lock);
	if (latch)
		SetLatch(latch);
}
