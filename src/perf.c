/*-------------------------------------------------------------------------
 *
 * perf.c
 *	  Memory of server processes, for adr_backend_memory().
 *
 * The runbook's "identify memory-consuming processes" is `ps aux --sort
 * -rss` over the postgres processes.  adr_backend_memory(), in SQL, joins
 * pg_stat_activity with _proc_memory(pid), which reads two figures of one
 * process from /proc/<pid>/status: VmRSS, the resident set, and RssAnon,
 * its anonymous (private) part.  VmRSS also counts the pages of shared
 * buffers that the process has touched, so on a busy server every backend
 * looks as big as shared_buffers; RssAnon (Linux 4.5 and later) is what
 * the process itself allocated: work_mem, caches, a runaway query.
 *
 * Only PostgreSQL's own processes are read: a pid that is not one of this
 * cluster's gets a reason, not another program's figures, so that the
 * function is no window on the rest of the host.  A figure that cannot be
 * read (no /proc on this platform, the process has exited, permission) is
 * NULL with the reason in "error", never an ERROR, so that one departed
 * backend cannot fail the whole report.
 *
 * Nothing here writes.  BackendPidGetProc() takes ProcArrayLock in shared
 * mode for a moment; no lock is held while the file is read.
 *
 * IDENTIFICATION
 *	  src/perf.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <sys/stat.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/builtins.h"

#include "adr_ops.h"

PG_FUNCTION_INFO_V1(adr_proc_memory);

#define PROC_MEMORY_COLS	3

/*
 * Whether pid is a process of this cluster: the postmaster, a backend or
 * background worker (in the proc array) or an auxiliary process.
 */
static bool
pm_is_server_process(int pid)
{
	return pid == PostmasterPid ||
		BackendPidGetProc(pid) != NULL ||
		AuxiliaryPidGetProc(pid) != NULL;
}

/*
 * Read VmRSS and RssAnon, in bytes, from /proc/<pid>/status into *rss and
 * *anon (-1 when the field is absent), when pid is a process of this
 * cluster.  Returns NULL on success, or a palloc'd reason.
 *
 * The file is opened before pid is checked and read after: an open /proc
 * file stays bound to the process that had the pid when it was opened, and
 * reading it fails with ESRCH once that process is gone.  So a pid that
 * exits and is reused between the check and the read gives "has exited",
 * never another process's reading.
 */
static char *
pm_read_status(int pid, int64 *rss, int64 *anon)
{
	char		path[64];
	char		line[256];
	FILE	   *f;
	int			open_errno;
	bool		failed;

	*rss = *anon = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);

	f = AllocateFile(path, "r");
	open_errno = errno;
	if (!pm_is_server_process(pid))
	{
		if (f)
			FreeFile(f);
		return psprintf("PID %d is not a PostgreSQL server process", pid);
	}
	if (f == NULL)
	{
		struct stat st;

		if (open_errno == ENOENT && stat("/proc/self/status", &st) != 0)
			return pstrdup("/proc is not available on this platform");
		if (open_errno == ENOENT || open_errno == ESRCH)
			return psprintf("process %d has exited", pid);
		return psprintf("could not open \"%s\": %s", path, strerror(open_errno));
	}

	while (fgets(line, sizeof(line), f) != NULL)
	{
		long long	kb;

		if (sscanf(line, "VmRSS: %lld", &kb) == 1)
			*rss = (int64) kb * 1024;
		else if (sscanf(line, "RssAnon: %lld", &kb) == 1)
			*anon = (int64) kb * 1024;
	}
	failed = ferror(f);
	FreeFile(f);
	if (failed)
	{
		*rss = *anon = -1;
		return psprintf("process %d has exited", pid);
	}

	return NULL;
}

/*
 * _proc_memory(pid int, OUT rss_bytes bigint, OUT anon_bytes bigint,
 * OUT error text): the resident and the private memory of one process of
 * this cluster.  STRICT: a NULL pid gives a NULL row.
 */
Datum
adr_proc_memory(PG_FUNCTION_ARGS)
{
	int32		pid = PG_GETARG_INT32(0);
	TupleDesc	tupdesc;
	Datum		values[PROC_MEMORY_COLS];
	bool		nulls[PROC_MEMORY_COLS];
	int64		rss;
	int64		anon;
	char	   *error;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (pid <= 0)
	{
		rss = anon = -1;
		error = psprintf("PID %d is not a PostgreSQL server process", pid);
	}
	else
	{
		error = pm_read_status(pid, &rss, &anon);
		/* A kernel thread has no VmRSS; RssAnon arrived in Linux 4.5. */
		if (error == NULL && rss < 0)
			error = psprintf("/proc/%d/status has no VmRSS", pid);
		else if (error == NULL && anon < 0)
			error = psprintf("/proc/%d/status has no RssAnon (Linux before 4.5)", pid);
	}

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int64GetDatum(rss);
	nulls[0] = rss < 0;
	values[1] = Int64GetDatum(anon);
	nulls[1] = anon < 0;
	if (error)
		values[2] = CStringGetTextDatum(error);
	else
		nulls[2] = true;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
