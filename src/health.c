/*-------------------------------------------------------------------------
 *
 * health.c
 *	  Host readings for the health check: disk, memory and load.
 *
 * These are the runbook's `df -h`, `free -h` and `uptime`, read from inside
 * the server so that a dashboard can see them through SQL.  Disk usage comes
 * from statvfs() on the data directory, pg_wal and every tablespace; memory
 * from /proc/meminfo; load from getloadavg().
 *
 * A reading that the platform cannot give is a row whose "error" column
 * says why and whose figures are NULL, never an ERROR: the health check
 * turns it into an UNKNOWN status.  Nothing here takes locks or writes.
 *
 * IDENTIFICATION
 *	  src/health.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "access/xlog_internal.h"
#include "commands/tablespace.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "adr_ops.h"
#include "compat.h"

PG_FUNCTION_INFO_V1(adr_host_disk);
PG_FUNCTION_INFO_V1(adr_host_memory);
PG_FUNCTION_INFO_V1(adr_host_load);

#define HOST_DISK_COLS		9
#define HOST_MEMORY_COLS	8
#define HOST_LOAD_COLS		5

#define MEMINFO_PATH "/proc/meminfo"

/* The /proc/meminfo fields that free(1) reports, in bytes; -1 if absent. */
typedef struct MemInfo
{
	int64		mem_total;
	int64		mem_free;
	int64		mem_available;
	int64		buffers;
	int64		cached;
	int64		sreclaimable;
	int64		shmem;
	int64		swap_total;
	int64		swap_free;
} MemInfo;

/*
 * Add one row of adr_host_disk(): statvfs() of path, which names the
 * location kind/name.  shown is the path to report (a tablespace's link
 * target rather than pg_tblspc/<oid>).
 */
static void
hd_add_row(ReturnSetInfo *rsinfo, const char *kind, const char *name,
		   const char *path, const char *shown)
{
	Datum		values[HOST_DISK_COLS];
	bool		nulls[HOST_DISK_COLS];
	struct statvfs st;

	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(kind);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(shown);

	if (statvfs(path, &st) != 0)
	{
		char		msg[MAXPGPATH + 128];

		snprintf(msg, sizeof(msg), "could not read file system usage of \"%s\": %s",
				 shown, strerror(errno));
		nulls[3] = nulls[4] = nulls[5] = nulls[6] = nulls[7] = true;
		values[8] = CStringGetTextDatum(msg);
	}
	else
	{
		uint64		frsize = st.f_frsize ? st.f_frsize : st.f_bsize;
		uint64		total = (uint64) st.f_blocks * frsize;
		uint64		used = (uint64) (st.f_blocks - st.f_bfree) * frsize;
		uint64		avail = (uint64) st.f_bavail * frsize;
		uint64		iused = st.f_files - st.f_ffree;
		uint64		iavail = st.f_favail;

		values[3] = Int64GetDatum((int64) total);
		values[4] = Int64GetDatum((int64) used);
		values[5] = Int64GetDatum((int64) avail);

		/*
		 * Like df(1): the share of the space an unprivileged user could have,
		 * so that the blocks reserved for root count as unavailable.
		 */
		if (used + avail > 0)
			values[6] = Float8GetDatum(100.0 * (double) used / (double) (used + avail));
		else
			nulls[6] = true;
		/* File systems without a fixed inode table report zero inodes. */
		if (st.f_files > 0 && iused + iavail > 0)
			values[7] = Float8GetDatum(100.0 * (double) iused / (double) (iused + iavail));
		else
			nulls[7] = true;
		nulls[8] = true;
	}

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * adr_host_disk() returns one row per place the cluster stores data: the
 * data directory, pg_wal (which may be a link to another file system) and
 * each tablespace, with the usage of the file system that holds it.
 */
Datum
adr_host_disk(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	DIR		   *dir;
	struct dirent *de;
	char		wal[MAXPGPATH];

	InitMaterializedSRF(fcinfo, 0);

	hd_add_row(rsinfo, "data", "data_directory", DataDir, DataDir);
	snprintf(wal, sizeof(wal), "%s/%s", DataDir, XLOGDIR);
	hd_add_row(rsinfo, "wal", "pg_wal", wal, wal);

	/*
	 * Tablespaces are the links in pg_tblspc.  Reading the directory rather
	 * than pg_tablespace gives the file system that really holds them; the
	 * catalog supplies the name.  The backend's working directory is DataDir.
	 */
	dir = AllocateDir("pg_tblspc");
	while ((de = ReadDir(dir, "pg_tblspc")) != NULL)
	{
		Oid			spcoid;
		char	   *spcname;
		char		link[MAXPGPATH];
		char		target[MAXPGPATH];
		ssize_t		len;

		if (strspn(de->d_name, "0123456789") != strlen(de->d_name))
			continue;
		spcoid = (Oid) strtoul(de->d_name, NULL, 10);
		spcname = get_tablespace_name(spcoid);
		if (spcname == NULL)
			continue;			/* being dropped */

		snprintf(link, sizeof(link), "pg_tblspc/%s", de->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len < 0 || len >= (ssize_t) sizeof(target) - 1)
			snprintf(target, sizeof(target), "%s/%s", DataDir, link);
		else
			target[len] = '\0';
		hd_add_row(rsinfo, "tablespace", spcname, link, target);
	}
	FreeDir(dir);

	return (Datum) 0;
}

/*
 * Read /proc/meminfo into *mi.  Returns NULL on success, or a palloc'd
 * reason when the file cannot be read or lacks the fields free(1) needs.
 */
static char *
hm_read_meminfo(MemInfo *mi)
{
	FILE	   *f;
	char		line[256];

	memset(mi, 0xff, sizeof(*mi));	/* every field -1 */

	f = AllocateFile(MEMINFO_PATH, "r");
	if (f == NULL)
		return psprintf("could not open \"%s\": %s", MEMINFO_PATH, strerror(errno));

	while (fgets(line, sizeof(line), f) != NULL)
	{
		char		key[64];
		long long	kb;

		if (sscanf(line, "%63[^:]: %lld", key, &kb) != 2)
			continue;
#define HM_FIELD(name, field) \
		if (strcmp(key, name) == 0) { mi->field = (int64) kb * 1024; continue; }
		HM_FIELD("MemTotal", mem_total);
		HM_FIELD("MemFree", mem_free);
		HM_FIELD("MemAvailable", mem_available);
		HM_FIELD("Buffers", buffers);
		HM_FIELD("Cached", cached);
		HM_FIELD("SReclaimable", sreclaimable);
		HM_FIELD("Shmem", shmem);
		HM_FIELD("SwapTotal", swap_total);
		HM_FIELD("SwapFree", swap_free);
#undef HM_FIELD
	}
	FreeFile(f);

	if (mi->mem_total < 0 || mi->mem_free < 0 || mi->swap_total < 0 || mi->swap_free < 0)
		return psprintf("\"%s\" lacks MemTotal, MemFree, SwapTotal or SwapFree", MEMINFO_PATH);
	/* Kernels before 3.14 have no MemAvailable: estimate it as free(1) did. */
	if (mi->mem_available < 0)
		mi->mem_available = mi->mem_free + Max(mi->buffers, 0) + Max(mi->cached, 0);
	return NULL;
}

/*
 * adr_host_memory() returns the figures free(1) shows, in bytes: a "mem"
 * row and a "swap" row.  As procps-ng 4 does, used memory is total minus
 * available.  Inside a container /proc/meminfo is the host's, not the
 * cgroup's limit.
 */
Datum
adr_host_memory(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[HOST_MEMORY_COLS];
	bool		nulls[HOST_MEMORY_COLS];
	MemInfo		mi;
	char	   *error;

	InitMaterializedSRF(fcinfo, 0);
	error = hm_read_meminfo(&mi);

	/* mem: kind, total, used, free, shared, buff_cache, available, error */
	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum("mem");
	if (error)
	{
		nulls[1] = nulls[2] = nulls[3] = nulls[4] = nulls[5] = nulls[6] = true;
		values[7] = CStringGetTextDatum(error);
	}
	else
	{
		values[1] = Int64GetDatum(mi.mem_total);
		values[2] = Int64GetDatum(mi.mem_total - mi.mem_available);
		values[3] = Int64GetDatum(mi.mem_free);
		values[4] = Int64GetDatum(Max(mi.shmem, 0));
		values[5] = Int64GetDatum(Max(mi.buffers, 0) + Max(mi.cached, 0) +
								  Max(mi.sreclaimable, 0));
		values[6] = Int64GetDatum(mi.mem_available);
		nulls[7] = true;
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);

	/* swap: shared, buff_cache and available do not apply */
	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum("swap");
	nulls[4] = nulls[5] = nulls[6] = true;
	if (error)
	{
		nulls[1] = nulls[2] = nulls[3] = true;
		values[7] = CStringGetTextDatum(error);
	}
	else
	{
		values[1] = Int64GetDatum(mi.swap_total);
		values[2] = Int64GetDatum(mi.swap_total - mi.swap_free);
		values[3] = Int64GetDatum(mi.swap_free);
		nulls[7] = true;
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);

	return (Datum) 0;
}

/*
 * adr_host_load() returns the 1, 5 and 15 minute load averages and the
 * number of online CPUs, as uptime(1) and nproc(1) show them.
 */
Datum
adr_host_load(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[HOST_LOAD_COLS];
	bool		nulls[HOST_LOAD_COLS];
	double		load[3];
	long		cpus;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	memset(nulls, 0, sizeof(nulls));
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (getloadavg(load, 3) != 3 || cpus < 1)
	{
		nulls[0] = nulls[1] = nulls[2] = nulls[3] = true;
		values[4] = CStringGetTextDatum("could not read the load average on this platform");
	}
	else
	{
		values[0] = Float8GetDatum(load[0]);
		values[1] = Float8GetDatum(load[1]);
		values[2] = Float8GetDatum(load[2]);
		values[3] = Int32GetDatum((int32) cpus);
		nulls[4] = true;
	}

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
