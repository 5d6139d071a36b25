/*-------------------------------------------------------------------------
 *
 * backup.c
 *	  Backup verification: its settings, the confinement of paths to
 *	  adr_ops.backup_directories, the SQL entry adr_verify_backup() and the
 *	  verify_backup task.
 *
 * adr_verify_backup() runs in the caller's backend: it checks privileges
 * and that the path lies inside adr_ops.backup_directories, then hands the
 * request to a dynamic background worker (backup_worker.c) through a DSM
 * segment (CREATE DATABASE cannot run inside the caller's transaction),
 * waits until the worker has committed the verification's row, and, with
 * wait => true, until the worker has finished; then returns the row.
 *
 * Path confinement: a backup is opened beneath one of the allowed
 * directories without following a symlink or ".." out of them
 * (adr_backup_open_confined); the caller's check here is an early answer,
 * the worker opens the path itself the same way.
 *
 * The verify_backup task starts a verification of adr_ops.backup_path
 * without waiting and polls its row, so that no transaction stays open
 * during the restore.
 *
 * Locking: none here (the worker's advisory lock: backup_worker.c).
 *
 * IDENTIFICATION
 *	  src/backup.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/openat2.h>
#endif

#include "catalog/pg_authid_d.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "adr_ops.h"
#include "backup.h"
#include "compat.h"
#include "scheduler.h"

PG_FUNCTION_INFO_V1(adr_verify_backup);

/* Settings (adr_backup_init). */
char	   *adr_ops_backup_directories = NULL;
char	   *adr_ops_backup_path = NULL;
int			adr_ops_backup_max_age = 24 * 3600;
int			adr_ops_verify_jobs = 2;
char	   *adr_ops_verify_conninfo = NULL;
char	   *adr_ops_verify_compare_to = NULL;
int			adr_ops_verify_min_free_space = 1024;	/* MB */

static bool bk_check_conninfo(char **newval, void **extra, GucSource source);

static void bk_task(AdrTaskRun *run);

/* The scheduler task of this concern, registered by adr_backup_init(). */
static const AdrTask bk_verify_task = {
	"verify_backup", true, true, false, "5s", adr_task_no_options, bk_task,
	"restore adr_ops.backup_path (newest match of a glob) into a scratch database and check it (adr_verify_backup())"
};

/* ---------- settings ---------- */

void
adr_backup_init(void)
{
	DefineCustomStringVariable("adr_ops.backup_directories",
							   "Sets the directories adr_verify_backup() may read backups from.",
							   "A comma-separated list; backups are opened beneath them, never through a symlink or \"..\" out of them.  Empty means only "
							   "superusers may verify, anywhere.",
							   &adr_ops_backup_directories,
							   "",
							   PGC_SUSET,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("adr_ops.backup_path",
							   "Sets the backup that adr_verify_backup(NULL) and the verify_backup task verify.",
							   "A file or directory, or a glob pattern whose newest match wins.",
							   &adr_ops_backup_path,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("adr_ops.backup_max_age",
							"Sets how old the last passed backup verification may be before the health check is critical.",
							NULL,
							&adr_ops_backup_max_age,
							24 * 3600,
							60,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("adr_ops.verify_jobs",
							"Sets how many parallel jobs pg_restore uses when verifying a backup.",
							NULL,
							&adr_ops_verify_jobs,
							2,
							1,
							64,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("adr_ops.verify_conninfo",
							   "Sets where the restore programs connect: keyword=value pairs without dbname, user or password.",
							   "Empty means 127.0.0.1 at the server's port when it listens on TCP, "
							   "else its socket directory.  Superusers only: a connection "
							   "string may hold secrets.",
							   &adr_ops_verify_conninfo,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   bk_check_conninfo, NULL, NULL);
	DefineCustomIntVariable("adr_ops.verify_min_free_space",
							"Sets the free space below which a backup verification stops its restore.",
							"Free space of the file system of the data directory, checked every "
							"second during a restore; 0 disables the check.",
							&adr_ops_verify_min_free_space,
							1024,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MB,
							NULL, NULL, NULL);
	DefineCustomStringVariable("adr_ops.verify_compare_to",
							   "Sets a database whose tables a restored backup must all contain.",
							   "Empty means no comparison.",
							   &adr_ops_verify_compare_to,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	adr_task_register(&bk_verify_task);
}

/*
 * Parse a keyword=value connection string (values bare or single-quoted,
 * backslash escapes) into keywords and values.  false on a syntax error or
 * a URI, with *error set.
 */
bool
adr_backup_conninfo_parse(const char *s, List **keys, List **values, char **error)
{
	const char *p = s;

	*keys = *values = NIL;
	if (strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0)
	{
		*error = "a URI is not accepted: use keyword=value pairs";
		return false;
	}
	for (;;)
	{
		StringInfoData key,
					val;

		while (isspace((unsigned char) *p))
			p++;
		if (*p == '\0')
			return true;
		initStringInfo(&key);
		initStringInfo(&val);
		while (*p && *p != '=' && !isspace((unsigned char) *p))
			appendStringInfoChar(&key, *p++);
		while (isspace((unsigned char) *p))
			p++;
		if (*p != '=' || key.len == 0)
		{
			*error = "expected keyword=value";
			return false;
		}
		p++;
		while (isspace((unsigned char) *p))
			p++;
		if (*p == '\'')
		{
			p++;
			while (*p && *p != '\'')
			{
				if (*p == '\\' && p[1])
					p++;
				appendStringInfoChar(&val, *p++);
			}
			if (*p != '\'')
			{
				*error = "unterminated quoted value";
				return false;
			}
			p++;
		}
		else
		{
			while (*p && !isspace((unsigned char) *p))
			{
				if (*p == '\\' && p[1])
					p++;
				appendStringInfoChar(&val, *p++);
			}
		}
		*keys = lappend(*keys, key.data);
		*values = lappend(*values, val.data);
	}
}

/*
 * adr_ops.verify_conninfo holds no secret: the restore connects as a role
 * of its own whose password only the worker knows.
 */
static bool
bk_check_conninfo(char **newval, void **extra, GucSource source)
{
	List	   *keys,
			   *values;
	char	   *error = NULL;
	ListCell   *lc;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!adr_backup_conninfo_parse(*newval, &keys, &values, &error))
	{
		GUC_check_errdetail("%s.", error);
		return false;
	}
	foreach(lc, keys)
	{
		const char *k = lfirst(lc);

		if (strcmp(k, "password") == 0 || strcmp(k, "sslpassword") == 0 ||
			strcmp(k, "passfile") == 0)
		{
			GUC_check_errdetail("It must not name \"%s\": each verification restores as a role of its own, with a password of its own.", k);
			GUC_check_errhint("Remove \"%s\" from adr_ops.verify_conninfo.", k);
			return false;
		}
	}
	return true;
}

/* ---------- path confinement ---------- */

/*
 * Open rel beneath the directory dirfd, never resolving a path component
 * (a symlink, "..") outside it: openat2 with RESOLVE_BENEATH, or, on a
 * kernel without it, a walk of openat with O_NOFOLLOW that follows no
 * symlink at all.  -1 with errno set: EXDEV or ELOOP when the path leaves
 * the directory.
 */
int
adr_backup_openat_beneath(int dirfd, const char *rel, int flags)
{
	char	   *copy;
	char	   *comp;
	char	   *next;
	int			cur;
	int			fd;

#if defined(SYS_openat2) && defined(RESOLVE_BENEATH)
	{
		struct open_how how;

		memset(&how, 0, sizeof(how));
		how.flags = flags | O_CLOEXEC;
		how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
		fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
		if (fd >= 0 || errno != ENOSYS)
			return fd;
	}
#endif
	/* component by component; a symlink anywhere is refused */
	if (rel[0] == '/')
	{
		errno = EXDEV;
		return -1;
	}
	copy = pstrdup(rel);
	cur = dup(dirfd);
	if (cur < 0)
		return -1;
	for (comp = copy; comp != NULL; comp = next)
	{
		next = strchr(comp, '/');
		if (next)
		{
			*next++ = '\0';
			while (*next == '/')
				next++;
			if (*next == '\0')
				next = NULL;
		}
		if (strcmp(comp, "..") == 0)
		{
			close(cur);
			errno = EXDEV;
			return -1;
		}
		if (next == NULL)
			break;
		if (comp[0] == '\0' || strcmp(comp, ".") == 0)
			continue;
		fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(cur);
		if (fd < 0)
			return -1;
		cur = fd;
	}
	fd = openat(cur, (comp == NULL || comp[0] == '\0') ? "." : comp,
				flags | O_NOFOLLOW | O_CLOEXEC);
	close(cur);
	return fd;
}

/*
 * Open path (absolute) beneath one of the directories of the list dirs.
 * Returns the descriptor, or -1 with errno set; *outside is set when the
 * path lies under none of them or leaves it (a symlink, "..").
 */
int
adr_backup_open_confined(const char *dirs, const char *path, int flags, bool *outside)
{
	char	   *rawlist = pstrdup(dirs);
	List	   *list = NIL;
	ListCell   *lc;
	int			saved = ENOENT;

	*outside = true;
	if (!SplitDirectoriesString(rawlist, ',', &list))
		return -1;
	foreach(lc, list)
	{
		char	   *dir = lfirst(lc);
		char		real[PATH_MAX];
		const char *prefixes[2];
		int			i;

		prefixes[0] = dir;
		prefixes[1] = realpath(dir, real) ? real : NULL;
		for (i = 0; i < 2; i++)
		{
			const char *pre = prefixes[i];
			size_t		len;
			const char *rel;
			int			dirfd,
						fd;

			if (pre == NULL)
				continue;
			len = strlen(pre);
			while (len > 1 && pre[len - 1] == '/')
				len--;
			if (strncmp(path, pre, len) != 0 ||
				!(path[len] == '/' || path[len] == '\0' || (len == 1 && pre[0] == '/')))
				continue;
			rel = path + len;
			while (*rel == '/')
				rel++;
			dirfd = open(pre, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (dirfd < 0)
				continue;
			fd = adr_backup_openat_beneath(dirfd, *rel ? rel : ".", flags);
			saved = errno;
			close(dirfd);
			if (fd >= 0)
			{
				*outside = false;
				return fd;
			}
			if (saved != EXDEV && saved != ELOOP)
			{
				/* inside, but missing or unreadable */
				*outside = false;
				errno = saved;
				return -1;
			}
		}
	}
	errno = saved;
	return -1;
}

static bool
bk_has_glob(const char *path)
{
	return strpbrk(path, "*?[") != NULL;
}

/*
 * ERROR unless the path lies beneath adr_ops.backup_directories (or the
 * list is empty and the caller a superuser).  This is the caller's early
 * answer; the worker opens the path itself the same way, so a symlink
 * swapped in afterwards is not followed out either.
 */
static void
bk_confine(const char *path)
{
	char	   *rawlist = pstrdup(adr_ops_backup_directories);
	List	   *dirs = NIL;
	bool		outside;
	int			fd;

	if (!SplitDirectoriesString(rawlist, ',', &dirs))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in parameter \"adr_ops.backup_directories\"")));
	if (dirs == NIL)
	{
		if (!superuser())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to verify backups outside adr_ops.backup_directories"),
					 errdetail("\"adr_ops.backup_directories\" is empty, which lets only superusers verify backups."),
					 errhint("Ask a superuser to set \"adr_ops.backup_directories\".")));
		return;
	}
	if (strlen(adr_ops_backup_directories) >= sizeof(((AdrBackupRequest *) NULL)->dirs))
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("\"adr_ops.backup_directories\" is too long"),
				 errdetail("It takes %zu bytes; at most %zu fit.", strlen(adr_ops_backup_directories),
						   sizeof(((AdrBackupRequest *) NULL)->dirs) - 1)));
	fd = adr_backup_open_confined(adr_ops_backup_directories, path, O_PATH, &outside);
	if (fd >= 0)
		close(fd);
	if (outside)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("path \"%s\" is outside adr_ops.backup_directories", path),
				 errdetail("It is beneath none of \"%s\", or a symlink or \"..\" in it leads out of them.",
						   adr_ops_backup_directories),
				 errhint("Verify a backup inside those directories, or ask a superuser to add its directory.")));
}

/* The newest match of a glob pattern, or NULL. */
static char *
bk_newest_match(const char *pattern)
{
	glob_t		g;
	char	   *best = NULL;
	time_t		best_mtime = 0;
	size_t		i;

	if (glob(pattern, 0, NULL, &g) != 0)
	{
		globfree(&g);
		return NULL;
	}
	for (i = 0; i < g.gl_pathc; i++)
	{
		struct stat st;

		if (stat(g.gl_pathv[i], &st) != 0)
			continue;
		if (best == NULL || st.st_mtime > best_mtime ||
			(st.st_mtime == best_mtime && strcmp(g.gl_pathv[i], best) > 0))
		{
			best = pstrdup(g.gl_pathv[i]);
			best_mtime = st.st_mtime;
		}
	}
	globfree(&g);
	return best;
}

/* ---------- the SQL entry point ---------- */

/*
 * adr_verify_backup(path text, max_age interval, wait boolean)
 *	  returns adr_ops.backup_verifications
 */
Datum
adr_verify_backup(PG_FUNCTION_ARGS)
{
	char	   *path;
	BackgroundWorker worker = {0};
	BackgroundWorkerHandle *handle;
	dsm_segment *seg;
	AdrBackupRequest *req;
	bool		wait = PG_ARGISNULL(2) ? true : PG_GETARG_BOOL(2);
	int64		id;
	pid_t		pid;
	Oid			save_userid;
	int			save_sec;
	volatile Datum result = (Datum) 0;

	if (!superuser() &&
		!(has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES) &&
		  has_privs_of_role(GetUserId(), ROLE_PG_EXECUTE_SERVER_PROGRAM)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to verify backups"),
				 errdetail("Only superusers and roles with the privileges of both pg_read_server_files and pg_execute_server_program may verify backups."),
				 errhint("GRANT pg_read_server_files, pg_execute_server_program TO the role.")));

	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("adr_verify_backup() cannot run in a REPEATABLE READ or SERIALIZABLE transaction"),
				 errdetail("The verification is recorded by a background worker, which such a snapshot cannot see."),
				 errhint("Call it in a READ COMMITTED transaction.")));

	if (!PG_ARGISNULL(0))
		path = text_to_cstring(PG_GETARG_TEXT_PP(0));
	else if (adr_ops_backup_path != NULL && adr_ops_backup_path[0] != '\0')
		path = pstrdup(adr_ops_backup_path);
	else
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("no backup to verify"),
				 errdetail("The path is NULL and \"adr_ops.backup_path\" is not set."),
				 errhint("Pass the path of a backup, or set \"adr_ops.backup_path\".")));
	if (path[0] != '/')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("backup path \"%s\" is not absolute", path),
				 errhint("Give the full path of the backup, as the server sees it.")));
	if (bk_has_glob(path))
	{
		char	   *match = bk_newest_match(path);

		if (match != NULL)
			path = match;
	}
	/* after the glob: the worker gets the path in a fixed-size buffer */
	if (strlen(path) >= MAXPGPATH)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("backup path is too long"),
				 errdetail("The path takes %zu bytes; at most %d fit.", strlen(path), MAXPGPATH - 1)));
	bk_confine(path);

	seg = dsm_create(sizeof(AdrBackupRequest), 0);
	req = dsm_segment_address(seg);
	memset(req, 0, sizeof(AdrBackupRequest));
	req->dboid = MyDatabaseId;
	req->caller = GetUserId();
	req->jobs = adr_ops_verify_jobs;
	req->max_age_us = -1;
	if (!PG_ARGISNULL(1))
	{
		Interval   *iv = PG_GETARG_INTERVAL_P(1);

		req->max_age_us = iv->time + (int64) iv->day * USECS_PER_DAY +
			(int64) iv->month * DAYS_PER_MONTH * USECS_PER_DAY;
	}
	strlcpy(req->path, path, sizeof(req->path));
	strlcpy(req->dirs, adr_ops_backup_directories ? adr_ops_backup_directories : "",
			sizeof(req->dirs));
	strlcpy(req->compare_to, adr_ops_verify_compare_to ? adr_ops_verify_compare_to : "",
			sizeof(req->compare_to));

	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "adr_ops");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "adr_verify_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "adr_ops backup verification %s", ADR_OPS_VERSION);
	snprintf(worker.bgw_type, BGW_MAXLEN, "adr_ops backup verification");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start a backup verification worker"),
				 errdetail("No background worker slot is free."),
				 errhint("Raise \"max_worker_processes\", or wait for other workers to finish.")));

	/* Wait until the worker has committed the row, or gone. */
	for (;;)
	{
		pg_read_barrier();
		id = req->id;
		if (id != 0)
			break;
		if (GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED)
		{
			pg_read_barrier();
			if (req->id != 0)
			{
				id = req->id;
				break;
			}
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the backup verification worker exited before recording the verification"),
					 errdetail("%s", req->error[0] ? req->error : "See the server log."),
					 errhint("Check that the extension adr_ops is installed in this database.")));
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}

	if (wait)
		(void) WaitForBackgroundWorkerShutdown(handle);
	dsm_detach(seg);

	/*
	 * Read the row as the bootstrap superuser: EXECUTE is the privilege, the
	 * caller need not read the table.  A fresh snapshot sees the worker's
	 * commits (READ COMMITTED, checked above).
	 */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		Oid			types[1] = {INT8OID};
		Datum		values[1] = {Int64GetDatum(id)};

		SPI_connect();
		if (SPI_execute_with_args("SELECT v FROM adr_ops.backup_verifications v "
								  " WHERE v.id OPERATOR(pg_catalog.=) $1",
								  1, types, values, NULL, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "could not read backup verification " INT64_FORMAT, id);
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			result = SPI_datumTransfer(d, false, -1);
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();

	PG_RETURN_DATUM(result);
}

/* ---------- the scheduler task ---------- */

/*
 * The verify_backup task: verify adr_ops.backup_path with max_age
 * adr_ops.backup_max_age.  The verification is started in one short
 * transaction (wait => false) and its row polled once a second in others,
 * so that no transaction stays open during the restore.  A failed
 * verification fails the run.
 */
static void
bk_task(AdrTaskRun *run)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	int64		id;
	bool		isnull;
	char	   *status = NULL;
	char	   *summary = NULL;

	if (adr_ops_backup_path == NULL || adr_ops_backup_path[0] == '\0')
	{
		appendStringInfoString(&run->detail, "adr_ops.backup_path is not set: nothing to verify");
		return;
	}

	adr_task_xact_begin("adr_ops: starting the verify_backup task", true);
	values[0] = Int32GetDatum(adr_ops_backup_max_age);
	if (SPI_execute_with_args("SELECT id FROM adr_ops.adr_verify_backup(NULL, "
							  "pg_catalog.make_interval(secs => $1), false)",
							  1, (Oid[]) {INT4OID}, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not start the backup verification");
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	adr_task_xact_end(caller);

	values[0] = Int64GetDatum(id);
	for (;;)
	{
		adr_task_xact_begin("adr_ops: waiting for a backup verification", false);
		if (SPI_execute_with_args("SELECT status, "
								  "       CASE WHEN status = 'passed' "
								  "            THEN pg_catalog.format('verification %s of %s passed: %s', id, path, "
								  "                     coalesce(tables_restored || ' tables, ' || rows_counted || ' rows', detail)) "
								  "            ELSE pg_catalog.format('backup verification %s of %s failed: %s', id, path, "
								  "                     pg_catalog.array_to_string(failures, '; ')) END "
								  "  FROM adr_ops.backup_verifications WHERE id = $1",
								  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read backup verification " INT64_FORMAT, id);
		if (SPI_processed == 1)
		{
			MemoryContext old = MemoryContextSwitchTo(caller);

			status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			summary = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
			MemoryContextSwitchTo(old);
		}
		adr_task_xact_end(caller);
		if (status == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("backup verification " INT64_FORMAT " disappeared", id)));
		if (strcmp(status, "running") != 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}

	if (strcmp(status, "passed") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s", summary)));
	run->objects = 1;
	appendStringInfoString(&run->detail, summary);
}
