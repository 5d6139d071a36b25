/*-------------------------------------------------------------------------
 *
 * backup_worker.c
 *	  Backup verification's dynamic background worker: recency, format, a
 *	  restore into a scratch database, row counts, checks, cleanup.
 *
 * adr_verify_backup() (backup.c) hands the request over in a DSM segment
 * and starts this worker (CREATE DATABASE cannot run inside the caller's
 * transaction).  The worker connects to the caller's database as the
 * bootstrap superuser, inserts and commits the row of
 * adr_ops.backup_verifications (so that the caller can return it at once
 * with wait => false), and does the work; its SQL goes through SPI, its
 * programs run through adr_backup_run() (backup_run.c):
 *   - it opens the backup once, beneath the allowed directories without
 *     following a symlink out of them (adr_backup_open_confined), and from
 *     then on works on that descriptor: the programs read it as
 *     /proc/self/fd/3, never the name again;
 *   - the file or directory is readable and recent; its format, by
 *     content: plain SQL, gzip plain SQL, pg_dump custom, tar or directory,
 *     or a pg_basebackup directory (pg_verifybackup);
 *   - <file>.sha256 beside it, when present (opened the same way; its
 *     content is never echoed);
 *   - the dump is untrusted code, so it never runs as a superuser: the
 *     worker makes a role adr_verify_<database OID>_<id> (LOGIN, no
 *     superuser, CREATEDB, CREATEROLE, replication or membership, a random
 *     password that only the children's environment carries) and the
 *     scratch database of the same name, owned by it, from template0; the
 *     extensions the dump lists (and only those the server has) are
 *     created first as the bootstrap superuser, while the database is
 *     still empty; then pg_restore or psql from the server's bindir
 *     (argument vector, never a shell) restores as that role, which counts
 *     every table; adr_ops.backup_checks and adr_ops.verify_compare_to are
 *     compared; DROP DATABASE, DROP ROLE; the outcome is recorded.
 * A plain dump is untrusted input to psql: psql runs it under a
 * "\restrict KEY" of the worker's own, so psql refuses every backslash
 * command in it (see dumpfilter.c for the lines of pg_dump it removes).
 *
 * Which scratch databases and roles adr_ops made: each gets a comment
 * naming the verification and its database; a scratch database is owned
 * by its role (a role that cannot create databases).
 * While a worker lives it holds a session advisory lock (database 0,
 * ADR_VERIFY_LOCK_FIELD4) on (database OID, verification id), so a worker
 * starting up drops only the scratch databases and roles, and fails only
 * the 'running' rows, whose worker is gone (a crash, a fast shutdown).
 *
 * Locking: the advisory lock above; nothing in shared memory.
 *
 * IDENTIFICATION
 *	  src/backup_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "access/xact.h"
#include "catalog/pg_authid_d.h"
#include "catalog/pg_type_d.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "libpq/scram.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "postmaster/postmaster.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "adr_ops.h"
#include "backup.h"
#include "compat.h"
#include "dumpfilter.h"
#include "scheduler.h"

#define ADR_VERIFY_LOCK_FIELD4	0xAD05	/* advisory lock of a live worker */
#define ADR_VERIFY_COMMENT		"adr_ops scratch database of backup verification"
#define ADR_VERIFY_ROLE_COMMENT	"adr_ops restore role of backup verification"
#define BV_CHUNK				65536
#define BV_SCAN_LINE_MAX		256 /* read of a line scanned for extensions */

/* What a verification found, kept in the worker. */
typedef struct BvState
{
	int64		id;
	char	   *path;
	const char *format;
	TimestampTz mtime;
	int64		bytes;
	int			tables;
	int64		rows;
	bool		counted;		/* tables and rows were counted */
	List	   *failures;		/* of char * */
	StringInfoData detail;
	const char *dirs;			/* the allowed directories; "" = any */
	int			fd;				/* the backup, opened once; -1 */
	char	   *scratch;		/* the scratch database, once created */
	char	   *role;			/* its restore role, once created */
	char	   *password;		/* the role's password (children's env) */
	char	   *conninfo;		/* the restore role's, without dbname */
	char	   *super_conninfo; /* the bootstrap superuser's, socket */
	char	   *conn_user;		/* the bootstrap superuser, for hints */
	List	   *ext_names;		/* extensions the dump creates */
	List	   *ext_schemas;	/* ... and their schemas */
	List	   *own_schemas;	/* schemas made for them (not public) */
	List	   *skip_schemas;	/* and those the extensions made */
	char	   *toc;			/* an archive's pg_restore -l */
	List	   *ext_rels;		/* the extensions' (schema, name, relkind) */
	bool		use_password;	/* the next program gets PGPASSWORD */
	char		bindir[MAXPGPATH];
} BvState;

/* ---------- helpers ---------- */

/* value quoted for a libpq connection string */
static void
bv_conn_append(StringInfo buf, const char *key, const char *value)
{
	const char *p;

	appendStringInfo(buf, "%s%s='", buf->len > 0 ? " " : "", key);
	for (p = value; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '\'');
}

/* A random alphanumeric string of len characters. */
static char *
bv_random_alnum(int len, const char *what)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	uint8	   *bytes = palloc(len);
	char	   *key = palloc(len + 1);
	int			i;

	if (!pg_strong_random(bytes, len))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random %s", what)));
	for (i = 0; i < len; i++)
		key[i] = chars[bytes[i] % (sizeof(chars) - 1)];
	key[len] = '\0';
	return key;
}

/* ---------- the worker: SQL through SPI ---------- */

static void
bv_lock_tag(LOCKTAG *tag, Oid dboid, int64 id)
{
	SET_LOCKTAG_ADVISORY(*tag, InvalidOid, (uint32) dboid, (uint32) id, ADR_VERIFY_LOCK_FIELD4);
}

/* Is the worker of that verification gone?  (Its lock is free.) */
static bool
bv_worker_gone(Oid dboid, int64 id)
{
	LOCKTAG		tag;

	bv_lock_tag(&tag, dboid, id);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return false;
	LockRelease(&tag, ExclusiveLock, true);
	return true;
}

/*
 * Fail the 'running' rows of this database whose worker is gone, and drop
 * the scratch databases adr_ops made whose worker is gone.
 */
static void
bv_cleanup_leftovers(int64 my_id)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *drop = NIL;
	List	   *roles = NIL;
	List	   *stale = NIL;
	ListCell   *lc;
	uint64		i;

	adr_task_xact_begin("adr_ops: looking for interrupted backup verifications", false);
	if (SPI_execute("SELECT id FROM adr_ops.backup_verifications WHERE status = 'running'",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read backup verifications");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 1, &isnull));

		if (id != my_id && bv_worker_gone(MyDatabaseId, id))
		{
			MemoryContext old = MemoryContextSwitchTo(caller);

			stale = lappend(stale, psprintf(INT64_FORMAT, id));
			MemoryContextSwitchTo(old);
		}
	}
	foreach(lc, stale)
	{
		Oid			types[1] = {INT8OID};
		Datum		values[1];

		values[0] = DirectFunctionCall1(int8in, CStringGetDatum((char *) lfirst(lc)));
		if (SPI_execute_with_args("UPDATE adr_ops.backup_verifications "
								  "   SET status = 'failed', finished_at = clock_timestamp(), "
								  "       failures = failures || 'interrupted: the server or the verification worker stopped during the verification'::text, "
								  "       duration_ms = (extract(epoch FROM clock_timestamp() - started_at) * 1000)::bigint "
								  " WHERE id = $1 AND status = 'running'",
								  1, types, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not mark an interrupted backup verification");
		ereport(LOG,
				(errmsg("adr_ops marked backup verification %s as failed: interrupted",
						(char *) lfirst(lc))));
	}

	/*
	 * Owned by the bootstrap superuser, or by a role that can create no
	 * database, so a superuser made it; marked by its comment, or (the
	 * database's owner can change that comment) owned by the restore role
	 * of the same name, whose comment only a superuser can set.
	 */
	if (SPI_execute("SELECT d.datname::text, shobj_description(d.oid, 'pg_database'), "
					"       CASE WHEN r.rolname OPERATOR(pg_catalog.=) d.datname "
					"            THEN shobj_description(r.oid, 'pg_authid') END "
					"  FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
					" WHERE d.datname LIKE 'adr\\_verify\\_%' "
					"   AND (d.datdba = 10 OR NOT (r.rolsuper OR r.rolcreatedb))",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list scratch databases");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		char	   *comment = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		char	   *rcomment = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);
		long long	id;
		unsigned int dboid;

		if (!(comment != NULL &&
			  sscanf(comment, ADR_VERIFY_COMMENT " %lld of database %u", &id, &dboid) == 2 &&
			  strcmp(name, psprintf("adr_verify_%u_%lld", dboid, id)) == 0) &&
			!(rcomment != NULL &&
			  sscanf(rcomment, ADR_VERIFY_ROLE_COMMENT " %lld of database %u", &id, &dboid) == 2 &&
			  strcmp(name, psprintf("adr_verify_%u_%lld", dboid, id)) == 0))
			continue;
		if (bv_worker_gone((Oid) dboid, (int64) id))
		{
			MemoryContext old = MemoryContextSwitchTo(caller);

			drop = lappend(drop, pstrdup(name));
			MemoryContextSwitchTo(old);
		}
	}

	/* the restore roles, made by a superuser: no role can comment on itself */
	if (SPI_execute("SELECT r.rolname::text, shobj_description(r.oid, 'pg_authid') "
					"  FROM pg_roles r "
					" WHERE r.rolname LIKE 'adr\\_verify\\_%' "
					"   AND NOT (r.rolsuper OR r.rolcreatedb OR r.rolcreaterole) "
					"   AND shobj_description(r.oid, 'pg_authid') LIKE '" ADR_VERIFY_ROLE_COMMENT " %'",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list restore roles");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		char	   *comment = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		long long	id;
		unsigned int dboid;

		if (comment == NULL ||
			sscanf(comment, ADR_VERIFY_ROLE_COMMENT " %lld of database %u", &id, &dboid) != 2 ||
			strcmp(name, psprintf("adr_verify_%u_%lld", dboid, id)) != 0)
			continue;
		if (bv_worker_gone((Oid) dboid, (int64) id))
		{
			MemoryContext old = MemoryContextSwitchTo(caller);

			roles = lappend(roles, pstrdup(name));
			MemoryContextSwitchTo(old);
		}
	}
	adr_task_xact_end(caller);

	foreach(lc, drop)
	{
		char	   *name = lfirst(lc);
		char	   *error = adr_utility(psprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", quote_identifier(name)));

		if (error)
			ereport(WARNING,
					(errmsg("could not drop leftover scratch database \"%s\": %s", name, error)));
		else
			ereport(LOG,
					(errmsg("adr_ops dropped leftover scratch database \"%s\"", name)));
	}
	foreach(lc, roles)
	{
		char	   *name = lfirst(lc);
		char	   *error = adr_utility(psprintf("DROP ROLE IF EXISTS %s", quote_identifier(name)));

		if (error)
			ereport(WARNING,
					(errmsg("could not drop leftover restore role \"%s\": %s", name, error)));
		else
			ereport(LOG,
					(errmsg("adr_ops dropped leftover restore role \"%s\"", name)));
	}
}

/* ---------- the worker: programs (run by backup_run.c) ---------- */

static void
bv_fail(BvState *st, const char *fmt,...) pg_attribute_printf(2, 3);

static void
bv_fail(BvState *st, const char *fmt,...)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	st->failures = lappend(st->failures, buf.data);
}

/* A random alphanumeric key for psql's \restrict. */
static char *
bv_restrict_key(void)
{
	return bv_random_alnum(32, "key for psql's \\restrict");
}

/* The dump filter's rules: the lines of this verification's extensions. */
static void
bv_filter_rules(BvState *st, AdrDumpFilterRules *rules)
{
	const char **drop_lines = palloc0(sizeof(char *) * (list_length(st->skip_schemas) + 1));
	const char **drop_prefixes = palloc0(sizeof(char *) * (list_length(st->ext_rels) + 1));
	const char **skip_copies = palloc0(sizeof(char *) * (list_length(st->ext_rels) + 1));
	ListCell   *lc;

	foreach(lc, st->skip_schemas)
		drop_lines[rules->ndrop_lines++] = psprintf("CREATE SCHEMA %s;", quote_identifier(lfirst(lc)));
	foreach(lc, st->ext_rels)
	{
		List	   *r = lfirst(lc);
		char	   *qname = psprintf("%s.%s", quote_identifier(linitial(r)),
									 quote_identifier(lsecond(r)));

		skip_copies[rules->nskip_copies++] = psprintf("COPY %s ", qname);
		drop_prefixes[rules->ndrop_prefixes++] =
			psprintf("SELECT pg_catalog.setval(%s, ", quote_literal_cstr(qname));
	}
	rules->drop_lines = drop_lines;
	rules->drop_prefixes = drop_prefixes;
	rules->skip_copies = skip_copies;
}

/*
 * Run a program from the server's bindir (adr_backup_run): with the
 * backup as its descriptor 3, and the restore role's password when
 * st->use_password says so (for this run only).  With gz, the plain dump
 * goes to its stdin after "\\restrict restrict_key", through the dump
 * filter with the lines of this verification's extensions; else input,
 * when given.  A run stopped for a reason (corrupt or truncated input,
 * low disk space) adds a failure; *rejected is set when the filter
 * rejected the dump.  Returns the exit status (-1: killed, or could not
 * run).
 */
static int
bv_run(BvState *st, const char *const *argv, gzFile gz, const char *restrict_key,
	   const char *input, StringInfo out, StringInfo err, char **rejected, bool watch_space)
{
	AdrBackupProgram prog = {0};
	AdrDumpFilterRules rules = {0};
	int			rc;

	/* only a dump piped through the filter reads its rules */
	if (gz)
		bv_filter_rules(st, &rules);
	prog.argv = argv;
	prog.backup_fd = st->fd;
	prog.password = st->use_password ? st->password : NULL;
	prog.input = input;
	prog.dump = gz;
	prog.restrict_key = restrict_key;
	prog.rules = gz ? &rules : NULL;
	prog.watch_space = watch_space;
	prog.out = out;
	prog.err = err;
	st->use_password = false;
	if (rejected)
		*rejected = NULL;
	rc = adr_backup_run(&prog);
	if (prog.failure)
		bv_fail(st, "%s", prog.failure);
	if (rejected)
		*rejected = prog.rejected;
	return rc;
}

static char *
bv_bin(BvState *st, const char *prog)
{
	return psprintf("%s/%s", st->bindir, prog);
}

static char *
bv_conn(BvState *st, const char *dbname)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, st->conninfo);
	bv_conn_append(&buf, "dbname", dbname);
	bv_conn_append(&buf, "application_name", psprintf("adr_ops verification " INT64_FORMAT, st->id));
	return buf.data;
}

static char *
bv_super_conn(BvState *st, const char *dbname)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, st->super_conninfo);
	bv_conn_append(&buf, "dbname", dbname);
	bv_conn_append(&buf, "application_name", psprintf("adr_ops verification " INT64_FORMAT, st->id));
	return buf.data;
}

/*
 * A program's failure.  Its messages can carry what the dump holds (a
 * failing row is in the DETAIL of a constraint's error), and failures is
 * readable by pg_monitor: failures gets the program, its exit status and
 * the SQLSTATE when psql printed one; the messages go to the server log.
 */
static void
bv_program_failed(BvState *st, const char *what, int rc, const char *err)
{
	const char *e = err && *err ? err : "(no message)";
	const char *p;
	char		sqlstate[6] = "";

	for (p = strstr(e, "ERROR:  "); p != NULL; p = strstr(p + 1, "ERROR:  "))
	{
		const char *c = p + 8;
		int			i;

		for (i = 0; i < 5; i++)
			if (!(isdigit((unsigned char) c[i]) || (c[i] >= 'A' && c[i] <= 'Z')))
				break;
		if (i == 5 && c[5] == ':')
		{
			memcpy(sqlstate, c, 5);
			break;
		}
	}
	ereport(LOG,
			(errmsg("adr_ops backup verification " INT64_FORMAT ": %s failed (exit status %d)",
					st->id, what, rc),
			 errdetail_internal("%s", e)));
	bv_fail(st, "%s failed (exit status %d%s%s); its messages are in the server log",
			what, rc, sqlstate[0] ? ", SQLSTATE " : "", sqlstate);
}

/*
 * A connection that could not be made (before any of the dump ran: libpq's
 * and the server's messages are no dump content).
 */
static void
bv_connect_failed(BvState *st, const char *who, const char *err)
{
	char	   *e = pstrdup(err && *err ? err : "(no message)");
	size_t		len = strlen(e);

	while (len > 0 && (e[len - 1] == '\n' || e[len - 1] == ' '))
		e[--len] = '\0';
	bv_fail(st, "could not connect to the scratch database %s: %s", who, e);
}

/* ---------- the worker: the steps ---------- */

/* The bytes of the regular files beneath a directory, symlinks not followed. */
static int64
bv_dir_bytes(int dfd, int depth)
{
	int			fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR		   *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int64		total = 0;

	if (d == NULL || depth > 32)
	{
		if (d)
			closedir(d);
		else if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL)
	{
		struct stat sb;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(sb.st_mode))
		{
			int			sub = openat(dirfd(d), de->d_name,
									 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub >= 0)
			{
				total += bv_dir_bytes(sub, depth + 1);
				close(sub);
			}
		}
		else if (S_ISREG(sb.st_mode))
			total += sb.st_size;
	}
	closedir(d);
	return total;
}

/*
 * The hex SHA-256 of the open file, or NULL with *error set.  NB: the hash
 * context belongs to a resource owner, so this runs inside a transaction.
 */
static char *bv_sha256_inner(int fd, char **error);

static char *
bv_sha256(int fd, char **error)
{
	MemoryContext caller = CurrentMemoryContext;
	char	   *hex;

	StartTransactionCommand();
	MemoryContextSwitchTo(caller);
	hex = bv_sha256_inner(fd, error);
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
	return hex;
}

static char *
bv_sha256_inner(int fd, char **error)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char	   *hex = palloc(PG_SHA256_DIGEST_LENGTH * 2 + 1);
	char	   *buf = palloc(BV_CHUNK);
	off_t		off = 0;
	ssize_t		r;
	int			i;

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
	{
		*error = psprintf("could not start a SHA-256 digest: %s", strerror(errno));
		pg_cryptohash_free(ctx);
		return NULL;
	}
	while ((r = pread(fd, buf, BV_CHUNK, off)) > 0)
	{
		pg_cryptohash_update(ctx, (uint8 *) buf, r);
		off += r;
		CHECK_FOR_INTERRUPTS();
	}
	if (r < 0 || pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
	{
		*error = psprintf("could not read the backup: %s", strerror(errno));
		pg_cryptohash_free(ctx);
		return NULL;
	}
	pg_cryptohash_free(ctx);
	for (i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		sprintf(hex + 2 * i, "%02x", digest[i]);
	return hex;
}

/* The open backup from its start, through zlib (plain or gzip). */
static gzFile
bv_gzopen(BvState *st)
{
	int			fd = dup(st->fd);
	gzFile		gz;

	if (fd < 0)
		return NULL;
	if (lseek(fd, 0, SEEK_SET) != 0 || (gz = gzdopen(fd, "rb")) == NULL)
	{
		close(fd);
		return NULL;
	}
	return gz;
}

/*
 * Open a path of the request: beneath the allowed directories when there
 * are any, else as given (superusers only).  O_NONBLOCK: a FIFO does not
 * block the open.
 */
static int
bv_open(BvState *st, const char *path, bool *outside)
{
	*outside = false;
	if (st->dirs[0] != '\0')
		return adr_backup_open_confined(st->dirs, path, O_RDONLY | O_NONBLOCK, outside);
	return open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
}

/* <file>.sha256, when present: opened like the backup, never echoed. */
static void
bv_check_sidecar(BvState *st)
{
	char	   *sumfile = psprintf("%s.sha256", st->path);
	bool		outside;
	int			fd = bv_open(st, sumfile, &outside);
	char		head[80];
	ssize_t		n;
	struct stat sb;
	char	   *error = NULL;
	char	   *have;
	int			i;

	if (fd < 0)
	{
		if (outside)
			bv_fail(st, "checksum: \"%s\" leads out of adr_ops.backup_directories (a symlink or \"..\"); it was not read",
					sumfile);
		else if (errno != ENOENT)
			bv_fail(st, "checksum: could not open \"%s\": %s", sumfile, strerror(errno));
		return;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
	{
		close(fd);
		bv_fail(st, "checksum: \"%s\" is not a regular file", sumfile);
		return;
	}
	n = read(fd, head, sizeof(head));
	close(fd);
	for (i = 0; i < 64 && i < n; i++)
		if (!isxdigit((unsigned char) head[i]))
			break;
	if (i < 64 || (n > 64 && !isspace((unsigned char) head[64])))
	{
		bv_fail(st, "checksum: \"%s\" does not start with a SHA-256 digest (64 hexadecimal digits)", sumfile);
		return;
	}
	head[64] = '\0';
	if ((have = bv_sha256(st->fd, &error)) == NULL)
		bv_fail(st, "checksum: %s", error);
	else if (pg_strcasecmp(have, head) != 0)
		bv_fail(st, "checksum mismatch: \"%s\" has SHA-256 %s, which \"%s\" does not hold",
				st->path, have, sumfile);
	else
		appendStringInfo(&st->detail, "SHA-256 matches %s; ", sumfile);
}

/*
 * Step 1 and 2: opened once (st->fd), readable, recent; format by
 * content.
 */
static bool
bv_inspect(BvState *st, int64 max_age_us)
{
	struct stat sb;
	const char *stamp_file = st->path;
	bool		outside;

	st->fd = bv_open(st, st->path, &outside);
	if (st->fd < 0)
	{
		if (outside)
			bv_fail(st, "outside: \"%s\" leads out of adr_ops.backup_directories (a symlink or \"..\"); it was not opened",
					st->path);
		else if (errno == ENOENT || errno == ENOTDIR)
			bv_fail(st, "missing: \"%s\" does not exist", st->path);
		else
			bv_fail(st, "unreadable: could not open \"%s\": %s", st->path, strerror(errno));
		return false;
	}
	if (fstat(st->fd, &sb) != 0)
	{
		bv_fail(st, "unreadable: could not stat \"%s\": %s", st->path, strerror(errno));
		return false;
	}

	if (S_ISDIR(sb.st_mode))
	{
		/* the names inside, beneath the directory opened above */
		int			stamp = adr_backup_openat_beneath(st->fd, "toc.dat", O_RDONLY | O_NONBLOCK);

		if (stamp >= 0)
		{
			st->format = "directory";
			stamp_file = psprintf("%s/toc.dat", st->path);
		}
		else if ((stamp = adr_backup_openat_beneath(st->fd, "backup_manifest", O_RDONLY | O_NONBLOCK)) >= 0)
		{
			st->format = "basebackup";
			stamp_file = psprintf("%s/backup_manifest", st->path);
		}
		else
		{
			bv_fail(st, "not a backup: directory \"%s\" has neither toc.dat (pg_dump -Fd) nor backup_manifest (pg_basebackup)",
					st->path);
			return false;
		}
		if (fstat(stamp, &sb) != 0 || !S_ISREG(sb.st_mode))
		{
			close(stamp);
			bv_fail(st, "unreadable: \"%s\" is not a readable file", stamp_file);
			return false;
		}
		close(stamp);
		st->bytes = bv_dir_bytes(st->fd, 0);
	}
	else if (S_ISREG(sb.st_mode))
	{
		unsigned char head[1024];
		ssize_t		n;

		st->bytes = sb.st_size;
		n = pread(st->fd, head, sizeof(head), 0);
		if (n < 0)
		{
			bv_fail(st, "unreadable: could not read \"%s\": %s", st->path, strerror(errno));
			return false;
		}
		if (n == 0)
		{
			bv_fail(st, "empty: \"%s\" has no content", st->path);
			st->mtime = time_t_to_timestamptz(sb.st_mtime);
			return false;
		}
		if (n >= 5 && memcmp(head, "PGDMP", 5) == 0)
			st->format = "custom";
		else if (n >= 262 && memcmp(head + 257, "ustar", 5) == 0)
			st->format = "tar";
		else if (n >= 2 && head[0] == 0x1f && head[1] == 0x8b)
		{
			gzFile		gz = bv_gzopen(st);
			char		plain[4096];
			int			got = gz ? gzread(gz, plain, sizeof(plain) - 1) : -1;

			if (gz)
				gzclose(gz);
			if (got <= 0)
			{
				bv_fail(st, "corrupt: \"%s\" starts like gzip but does not decompress", st->path);
				return false;
			}
			plain[got] = '\0';
			if (strstr(plain, "PostgreSQL database dump") == NULL)
			{
				bv_fail(st, "not a dump: the decompressed \"%s\" does not start like a pg_dump plain-text dump",
						st->path);
				return false;
			}
			st->format = "plain.gz";
		}
		else
		{
			char		text[1025];

			memcpy(text, head, n);
			text[n] = '\0';
			if (memchr(head, '\0', n) != NULL || strstr(text, "PostgreSQL database dump") == NULL)
			{
				bv_fail(st, "not a dump: \"%s\" is neither a pg_dump archive nor a pg_dump plain-text dump",
						st->path);
				return false;
			}
			st->format = "plain";
		}
	}
	else
	{
		bv_fail(st, "not a backup: \"%s\" is neither a file nor a directory", st->path);
		return false;
	}

	st->mtime = time_t_to_timestamptz(sb.st_mtime);
	if (max_age_us >= 0 &&
		GetCurrentTimestamp() - st->mtime > max_age_us)
	{
		bv_fail(st, "stale: \"%s\" was last modified at %s, longer ago than the allowed age",
				stamp_file, timestamptz_to_str(st->mtime));
		return false;
	}

	if (strcmp(st->format, "directory") != 0 && strcmp(st->format, "basebackup") != 0)
		bv_check_sidecar(st);
	return st->failures == NIL;
}

/*
 * Split psql's output with -A -t -z -0 (fields and records ended by NUL)
 * into records of three fields: a List of list_make3() of pointers into out.
 * A short record at the end is dropped.
 */
static List *
bv_records3(StringInfo out)
{
	List	   *result = NIL;
	char	   *p = out->data;
	char	   *end = out->data + out->len;

	while (p < end)
	{
		char	   *f[3];
		int			k;

		for (k = 0; k < 3 && p < end; k++)
		{
			f[k] = p;
			p += strlen(p) + 1;
		}
		if (k < 3)
			break;
		result = lappend(result, list_make3(f[0], f[1], f[2]));
	}
	return result;
}

/* Count every table of the scratch database; returns (name, count) pairs. */
static List *
bv_count(BvState *st, const char *dbname, bool counts)
{
	StringInfoData out,
				err;

	/*
	 * The same list on both sides of compare_to: tables and partitioned
	 * tables, not partitions (a partitioned table counts the rows of all
	 * its partitions; any other table only its own, not its inheritors'),
	 * and not the tables of extensions (the worker created those; the
	 * restore role may not read them).
	 */
	const char *query = counts ?
		"SELECT n.nspname, c.relname, pg_temp.adr_count(c.oid, c.relkind) "
		"  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
		" WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
		"   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' "
		"   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
		"                      AND d.objid = c.oid AND d.deptype = 'e') "
		" ORDER BY 1, 2" :
		"SELECT n.nspname, c.relname, NULL "
		"  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
		" WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
		"   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' "
		"   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
		"                      AND d.objid = c.oid AND d.deptype = 'e') "
		" ORDER BY 1, 2";
	const char *argv[] = {bv_bin(st, "psql"), "-X", "-q", "-A", "-t", "-z", "-0",
		"-v", "ON_ERROR_STOP=1", "-d", bv_conn(st, dbname),
		"-c", "SET search_path = pg_catalog, pg_temp",
		"-c", counts ?
		"CREATE FUNCTION pg_temp.adr_count(oid, \"char\") RETURNS bigint LANGUAGE plpgsql AS "
		"$f$DECLARE n bigint; BEGIN EXECUTE format('SELECT count(*) FROM %s%s', "
		"CASE WHEN $2 = 'p' THEN '' ELSE 'ONLY ' END, $1::regclass) INTO n; RETURN n; END$f$"
		: "SET default_transaction_read_only = on",
		"-c", query, NULL};
	int			rc;

	initStringInfo(&out);
	initStringInfo(&err);
	st->use_password = true;
	rc = bv_run(st, argv, NULL, NULL, NULL, &out, &err, NULL, false);
	if (rc != 0)
	{
		bv_program_failed(st, psprintf("psql (listing the tables of \"%s\")", dbname), rc, err.data);
		return NIL;
	}
	return bv_records3(&out);
}

static bool
bv_name_matches(const char *want, const char *nsp, const char *rel)
{
	if (strcmp(want, rel) == 0)
		return true;
	if (strcmp(want, psprintf("%s.%s", nsp, rel)) == 0)
		return true;
	if (strcmp(want, psprintf("%s.%s", quote_identifier(nsp), quote_identifier(rel))) == 0)
		return true;
	return false;
}

/* Step 4: counts, adr_ops.backup_checks, compare_to. */
static void
bv_checks(BvState *st, const char *compare_to)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *tables = bv_count(st, st->scratch, true);
	ListCell   *lc;
	uint64		i;

	if (st->failures != NIL)
		return;
	st->counted = true;
	foreach(lc, tables)
	{
		List	   *t = lfirst(lc);

		st->tables++;
		st->rows += strtoll(lthird(t), NULL, 10);
	}
	appendStringInfo(&st->detail, "restored %d tables with " INT64_FORMAT " rows; ",
					 st->tables, st->rows);

	adr_task_xact_begin("adr_ops: reading backup checks", false);
	if (SPI_execute("SELECT table_name, min_rows, required FROM adr_ops.backup_checks ORDER BY table_name",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read adr_ops.backup_checks");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *name;
		int64		min_rows;
		bool		required;
		bool		found = false;
		MemoryContext old = MemoryContextSwitchTo(caller);

		name = SPI_getvalue(tup, desc, 1);
		min_rows = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		required = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		foreach(lc, tables)
		{
			List	   *t = lfirst(lc);
			int64		n = strtoll(lthird(t), NULL, 10);

			if (!bv_name_matches(name, linitial(t), lsecond(t)))
				continue;
			found = true;
			if (n < min_rows)
				bv_fail(st, "check failed: table \"%s\" has " INT64_FORMAT " rows, fewer than " INT64_FORMAT,
						name, n, min_rows);
			else
				appendStringInfo(&st->detail, "check %s >= " INT64_FORMAT " rows: " INT64_FORMAT "; ",
								 name, min_rows, n);
		}
		if (!found && required)
			bv_fail(st, "check failed: table \"%s\" is not in the backup", name);
		else if (!found)
			appendStringInfo(&st->detail, "check %s skipped: not in the backup; ", name);
		MemoryContextSwitchTo(old);
	}
	adr_task_xact_end(caller);

	if (compare_to[0] != '\0')
	{
		List	   *live = bv_count(st, compare_to, false);
		int			missing = 0;

		foreach(lc, live)
		{
			List	   *l = lfirst(lc);
			ListCell   *lc2;
			bool		found = false;

			foreach(lc2, tables)
			{
				List	   *t = lfirst(lc2);

				if (strcmp(linitial(t), linitial(l)) == 0 && strcmp(lsecond(t), lsecond(l)) == 0)
					found = true;
			}
			if (!found && missing++ < 20)
				bv_fail(st, "missing table: %s.%s is in database \"%s\" but not in the backup",
						quote_identifier(linitial(l)), quote_identifier(lsecond(l)), compare_to);
		}
		if (missing > 20)
			bv_fail(st, "missing tables: %d more are in database \"%s\" but not in the backup",
					missing - 20, compare_to);
		if (st->failures == NIL)
			appendStringInfo(&st->detail, "every table of database \"%s\" is in the backup; ",
							 compare_to);
	}
}

/*
 * Does the bindir's psql know \restrict (15.14, and the releases of August
 * 2025 of the other branches)?  NULL, or why not.
 */
static char *
bv_psql_restrict_missing(BvState *st)
{
	StringInfoData out,
				err;
	const char *argv[] = {bv_bin(st, "psql"), "--version", NULL};
	int			major = 0,
				minor = 0;
	const char *v;
	char	   *nl;

	initStringInfo(&out);
	initStringInfo(&err);
	if (bv_run(st, argv, NULL, NULL, NULL, &out, &err, NULL, false) != 0 ||
		(v = strstr(out.data, "(PostgreSQL) ")) == NULL ||
		sscanf(v + 13, "%d.%d", &major, &minor) < 1)
		return psprintf("could not tell the version of %s: %s%s", argv[0], out.data, err.data);
	if (major >= 18 || (major == 17 && minor >= 6) || (major == 16 && minor >= 10) ||
		(major == 15 && minor >= 14) || (major == 14 && minor >= 19) ||
		(major == 13 && minor >= 22))
		return NULL;
	if ((nl = strchr(out.data, '\n')) != NULL)
		*nl = '\0';
	return psprintf("%s is \"%s\", which lacks \\restrict (15.14 or later is needed): "
					"a plain dump cannot be restored without the risk that it runs shell commands; "
					"update the server's packages, or verify a custom-format dump",
					argv[0], out.data);
}

/* One quoted or bare identifier of pg_dump's output at *p; NULL if none. */
static char *
bv_parse_ident(const char **p)
{
	StringInfoData buf;
	const char *q = *p;

	initStringInfo(&buf);
	if (*q == '"')
	{
		for (q++; *q; q++)
		{
			if (*q == '"')
			{
				if (q[1] != '"')
					break;
				q++;
			}
			appendStringInfoChar(&buf, *q);
		}
		if (*q != '"' || buf.len == 0)
			return NULL;
		q++;
	}
	else
	{
		while (isalnum((unsigned char) *q) || *q == '_' || *q == '$' || IS_HIGHBIT_SET(*q))
			appendStringInfoChar(&buf, *q++);
		if (buf.len == 0)
			return NULL;
	}
	*p = q;
	return buf.data;
}

/*
 * pg_dump's "CREATE EXTENSION IF NOT EXISTS name WITH SCHEMA schema;":
 * adds the extension to the list of st.
 */
static void
bv_note_extension(BvState *st, const char *line)
{
	const char *p = line;
	char	   *name;
	char	   *schema;
	ListCell   *lc;

	if (strncmp(p, "CREATE EXTENSION IF NOT EXISTS ", 31) != 0)
		return;
	p += 31;
	if ((name = bv_parse_ident(&p)) == NULL || strncmp(p, " WITH SCHEMA ", 13) != 0)
		return;
	p += 13;
	if ((schema = bv_parse_ident(&p)) == NULL || *p != ';')
		return;
	foreach(lc, st->ext_names)
		if (strcmp(lfirst(lc), name) == 0)
			return;
	st->ext_names = lappend(st->ext_names, name);
	st->ext_schemas = lappend(st->ext_schemas, schema);
}

/*
 * The extensions a plain dump creates: pg_dump writes them before any
 * type, function or table, so the scan stops at the first COPY or
 * CREATE TABLE / FUNCTION / TYPE line.  (A dump that hides one further
 * down gets it created as the restore role, which may create only
 * trusted extensions.)
 */
static void
bv_plain_extensions(BvState *st)
{
	gzFile		gz = bv_gzopen(st);
	char	   *line = palloc(BV_SCAN_LINE_MAX + 1);
	bool		at_bol = true;

	if (gz == NULL)
		return;
	while (gzgets(gz, line, BV_SCAN_LINE_MAX + 1) != NULL)
	{
		size_t		len = strlen(line);
		bool		bol = at_bol;

		at_bol = len > 0 && line[len - 1] == '\n';
		if (!bol)
			continue;
		if (strncmp(line, "COPY ", 5) == 0 || strncmp(line, "CREATE TABLE ", 13) == 0 ||
			strncmp(line, "CREATE FUNCTION ", 16) == 0 || strncmp(line, "CREATE TYPE ", 12) == 0)
			break;
		if (at_bol)
			line[--len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		bv_note_extension(st, line);
		CHECK_FOR_INTERRUPTS();
	}
	gzclose(gz);
}

/*
 * The table of contents of an archive (pg_restore -l, kept in st->toc) and
 * the extensions it creates (their entries, printed as SQL by
 * pg_restore -L).  false when pg_restore failed.
 */
static bool
bv_archive_toc(BvState *st)
{
	StringInfoData out,
				err,
				ext;
	const char *argv[] = {bv_bin(st, "pg_restore"), "-l", "/proc/self/fd/3", NULL};
	const char *argv2[] = {bv_bin(st, "pg_restore"), "-L", "/dev/stdin", "-f", "-",
	"/proc/self/fd/3", NULL};
	char	   *line;
	char	   *next;
	int			rc;

	initStringInfo(&out);
	initStringInfo(&err);
	rc = bv_run(st, argv, NULL, NULL, NULL, &out, &err, NULL, false);
	if (rc != 0)
	{
		bv_program_failed(st, "pg_restore -l (reading the table of contents)", rc, err.data);
		return false;
	}
	initStringInfo(&ext);
	for (line = out.data; line && *line; line = next)
	{
		char	   *one;

		next = strchr(line, '\n');
		if (next)
			next++;
		one = pnstrdup(line, next ? next - line : strlen(line));
		if (one[0] != ';' && strstr(one, " EXTENSION - ") != NULL &&
			strstr(one, " COMMENT - EXTENSION ") == NULL)
			appendStringInfoString(&ext, one);
		pfree(one);
	}
	if (ext.len > 0)
	{
		StringInfoData sql;

		initStringInfo(&sql);
		resetStringInfo(&err);
		rc = bv_run(st, argv2, NULL, NULL, ext.data, &sql, &err, NULL, false);
		if (rc != 0)
		{
			bv_program_failed(st, "pg_restore -L (reading the extensions)", rc, err.data);
			return false;
		}
		for (line = sql.data; line && *line; line = next)
		{
			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			bv_note_extension(st, line);
		}
	}

	st->toc = out.data;
	return true;
}

/*
 * The list for the restore: the table of contents with the entries
 * commented out that only a superuser could restore (the extensions, which
 * the worker created, and their comments; the schemas made for them; event
 * triggers).
 */
static char *
bv_restore_list(BvState *st)
{
	StringInfoData list;
	char	   *line;
	char	   *next;
	int			skipped = 0;

	initStringInfo(&list);
	for (line = st->toc; line && *line; line = next)
	{
		bool		drop = false;
		ListCell   *lc;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (line[0] != ';')
		{
			if (strstr(line, " EXTENSION - ") != NULL || strstr(line, " COMMENT - EXTENSION ") != NULL)
				drop = true;
			if (strstr(line, " EVENT TRIGGER - ") != NULL)
			{
				drop = true;
				skipped++;
			}
			foreach(lc, st->skip_schemas)
				if (strstr(line, psprintf(" SCHEMA - %s ", (char *) lfirst(lc))) != NULL)
					drop = true;
			foreach(lc, st->ext_rels)
			{
				List	   *r = lfirst(lc);

				if (strstr(line, psprintf(" TABLE DATA %s %s ", (char *) linitial(r), (char *) lsecond(r))) ||
					strstr(line, psprintf(" SEQUENCE SET %s %s ", (char *) linitial(r), (char *) lsecond(r))))
					drop = true;
			}
		}
		appendStringInfo(&list, "%s%s\n", drop ? ";" : "", line);
	}
	if (skipped)
		appendStringInfo(&st->detail, "skipped %d event triggers (only a superuser creates them); ", skipped);
	return list.data;
}

/*
 * The extensions the dump creates, checked against pg_available_extensions.
 * Those in a schema other than public and pg_catalog that their control
 * file does not fix (such an extension creates its schema) get that
 * schema, owned by the restore role (the dump's CREATE SCHEMA is then
 * skipped).
 */
static void
bv_extensions(BvState *st)
{
	MemoryContext caller = CurrentMemoryContext;
	ListCell   *lc,
			   *lc2;
	List	   *missing = NIL;

	if (strcmp(st->format, "plain") == 0 || strcmp(st->format, "plain.gz") == 0)
		bv_plain_extensions(st);
	else if (!bv_archive_toc(st))
		return;
	if (st->ext_names == NIL)
		return;
	adr_task_xact_begin("adr_ops: checking the extensions of a backup", false);
	forboth(lc, st->ext_names, lc2, st->ext_schemas)
	{
		Datum		values[1] = {CStringGetTextDatum((char *) lfirst(lc))};

		/* and the schema its control file fixes, which it creates itself */
		if (SPI_execute_with_args("SELECT v.schema::text FROM pg_catalog.pg_available_extensions e "
								  "  JOIN pg_catalog.pg_available_extension_versions v "
								  "    ON v.name OPERATOR(pg_catalog.=) e.name "
								  "   AND v.version OPERATOR(pg_catalog.=) e.default_version "
								  " WHERE e.name OPERATOR(pg_catalog.=) $1",
								  1, (Oid[]) {TEXTOID}, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read pg_available_extensions");
		if (SPI_processed == 0)
		{
			MemoryContext old = MemoryContextSwitchTo(caller);

			missing = lappend(missing, pstrdup(quote_identifier(lfirst(lc))));
			MemoryContextSwitchTo(old);
		}
		else if (SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(caller);

			/* CREATE EXTENSION makes that schema only when none is named */
			st->skip_schemas = lappend(st->skip_schemas,
									   pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)));
			lfirst(lc2) = NULL;
			MemoryContextSwitchTo(old);
		}
	}
	adr_task_xact_end(caller);
	if (missing != NIL)
	{
		StringInfoData names;

		initStringInfo(&names);
		foreach(lc, missing)
			appendStringInfo(&names, "%s%s", names.len ? ", " : "", (char *) lfirst(lc));
		bv_fail(st, "unsupported: the dump needs the extensions %s, which this server does not have "
				"(pg_available_extensions); it was not restored", names.data);
		return;
	}
	forboth(lc, st->ext_names, lc2, st->ext_schemas)
	{
		char	   *schema = lfirst(lc2);
		ListCell   *lc3;
		bool		known = false;

		if (schema == NULL || strcmp(schema, "public") == 0 || strcmp(schema, "pg_catalog") == 0)
			continue;
		foreach(lc3, st->own_schemas)
			if (strcmp(lfirst(lc3), schema) == 0)
				known = true;
		if (!known)
		{
			st->own_schemas = lappend(st->own_schemas, schema);
			st->skip_schemas = lappend(st->skip_schemas, schema);
		}
	}
}

/*
 * Create the extensions of the dump in the scratch database, as the
 * bootstrap superuser over the server's socket, while the database is
 * still empty: nothing of the dump has run there yet.
 */
static void
bv_create_extensions(BvState *st)
{
	StringInfoData sql,
				out,
				err,
				names;
	ListCell   *lc,
			   *lc2;
	int			rc;
	const char *argv[] = {bv_bin(st, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
		"-d", NULL, "-f", "-", NULL};

	if (st->ext_names == NIL)
		return;
	initStringInfo(&sql);
	initStringInfo(&names);
	appendStringInfoString(&sql, "SET search_path = pg_catalog, pg_temp;\n");
	foreach(lc, st->own_schemas)
		appendStringInfo(&sql, "CREATE SCHEMA %s AUTHORIZATION %s;\n",
						 quote_identifier(lfirst(lc)), quote_identifier(st->role));
	forboth(lc, st->ext_names, lc2, st->ext_schemas)
	{
		if (lfirst(lc2) == NULL)
			appendStringInfo(&sql, "CREATE EXTENSION IF NOT EXISTS %s CASCADE;\n",
							 quote_identifier(lfirst(lc)));
		else
			appendStringInfo(&sql, "CREATE EXTENSION IF NOT EXISTS %s WITH SCHEMA %s CASCADE;\n",
							 quote_identifier(lfirst(lc)), quote_identifier(lfirst(lc2)));
		appendStringInfo(&names, "%s%s", names.len ? ", " : "", quote_identifier(lfirst(lc)));
	}

	/*
	 * The dump holds the rows of the extensions' configuration tables
	 * (pg_extension_config_dump) and the values of their sequences, which
	 * only a superuser could write: they are not restored (bv_restore_list,
	 * the dump filter).  The extensions' tables and sequences, as name triples.
	 */
	appendStringInfoString(&sql,
						   "\\pset format unaligned\n\\pset tuples_only on\n"
						   "\\pset fieldsep_zero on\n\\pset recordsep_zero on\n"
						   "SELECT n.nspname, c.relname, c.relkind\n"
						   "  FROM pg_extension e\n"
						   "  JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass\n"
						   "                  AND d.refobjid = e.oid AND d.deptype = 'e'\n"
						   "                  AND d.classid = 'pg_class'::regclass\n"
						   "  JOIN pg_class c ON c.oid = d.objid AND c.relkind IN ('r', 'p', 'S')\n"
						   "  JOIN pg_namespace n ON n.oid = c.relnamespace;\n");
	argv[6] = bv_super_conn(st, st->scratch);
	initStringInfo(&out);
	initStringInfo(&err);
	rc = bv_run(st, argv, NULL, NULL, sql.data, &out, &err, NULL, false);
	if (rc != 0)
	{
		if (strstr(err.data, "connection to server") != NULL)
			bv_connect_failed(st, psprintf("as \"%s\" to create the extensions of the dump "
										   "(the server's pg_hba.conf needs a line such as "
										   "\"local all %s peer\" near its top)",
										   st->conn_user, st->conn_user), err.data);
		else
			bv_program_failed(st, "psql (creating the extensions of the dump)", rc, err.data);
		return;
	}
	appendStringInfo(&st->detail, "created extensions %s; ", names.data);
	st->ext_rels = list_concat(st->ext_rels, bv_records3(&out));
}

/*
 * Find where the restore role can connect, and check that its session is
 * what it must be: that role, with no superuser, CREATEDB, CREATEROLE,
 * replication or BYPASSRLS, and a member of no role.  Tries each
 * candidate connection in turn (bv_make_conninfo).
 */
static void
bv_probe(BvState *st, List *candidates)
{
	const char *query =
		"SELECT session_user, current_user, "
		"       r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls "
		"       OR EXISTS (SELECT FROM pg_catalog.pg_auth_members m "
		"                   WHERE m.member OPERATOR(pg_catalog.=) r.oid) "
		"  FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) session_user";
	StringInfoData errors;
	ListCell   *lc;

	initStringInfo(&errors);
	foreach(lc, candidates)
	{
		StringInfoData out,
					err;
		const char *argv[] = {bv_bin(st, "psql"), "-X", "-q", "-A", "-t", "-z", "-0",
			"-v", "ON_ERROR_STOP=1", "-d", NULL, "-c", query, NULL};
		int			rc;
		List	   *rec;

		st->conninfo = lfirst(lc);
		argv[10] = bv_conn(st, st->scratch);
		initStringInfo(&out);
		initStringInfo(&err);
		st->use_password = true;
		rc = bv_run(st, argv, NULL, NULL, NULL, &out, &err, NULL, false);
		if (rc != 0)
		{
			while (err.len > 0 && isspace((unsigned char) err.data[err.len - 1]))
				err.data[--err.len] = '\0';
			appendStringInfo(&errors, "%s%s", errors.len ? "; " : "", err.data);
			continue;
		}
		rec = bv_records3(&out);
		if (rec == NIL || strcmp(linitial(linitial(rec)), st->role) != 0 ||
			strcmp(lsecond(linitial(rec)), st->role) != 0 ||
			strcmp(lthird(linitial(rec)), "f") != 0)
		{
			bv_fail(st, "refused: the restore's session is not the role \"%s\" with no privileges beyond its database; it was not restored",
					st->role);
			return;
		}
		appendStringInfo(&st->detail, "restored as role %s; ", st->role);
		return;
	}
	bv_connect_failed(st, psprintf("as its restore role \"%s\" (with a password; pg_hba.conf must accept "
								   "scram-sha-256 or md5 from 127.0.0.1, or the socket; or set "
								   "adr_ops.verify_conninfo)", st->role), errors.data);
}

/* Step 3: restore into the scratch database, as the restore role. */
static void
bv_restore(BvState *st, int jobs)
{
	StringInfoData err;
	volatile int rc;
	char	   *rejected = NULL;
	const char *f = st->format;

	initStringInfo(&err);
	if (strcmp(f, "plain") == 0 || strcmp(f, "plain.gz") == 0)
	{
		const char *argv[] = {bv_bin(st, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
			"-v", "VERBOSITY=verbose", "-d", bv_conn(st, st->scratch), "-f", "-", NULL};
		gzFile		gz;
		char	   *missing = bv_psql_restrict_missing(st);

		if (missing)
		{
			bv_fail(st, "unsupported: %s", missing);
			return;
		}
		gz = bv_gzopen(st);
		if (gz == NULL)
		{
			bv_fail(st, "unreadable: could not read \"%s\": %s", st->path, strerror(errno));
			return;
		}
		gzbuffer(gz, BV_CHUNK);
		PG_TRY();
		{
			st->use_password = true;
			rc = bv_run(st, argv, gz, bv_restrict_key(), NULL, NULL, &err, &rejected, true);
		}
		PG_FINALLY();
		{
			gzclose(gz);
		}
		PG_END_TRY();
		if (rejected)
			bv_fail(st, "rejected: %s; the dump was not run further", rejected);
		else if (rc != 0 && strstr(err.data, "backslash commands are restricted") != NULL)
		{
			const char *p = strstr(err.data, "psql:<stdin>:");
			long		line = p ? strtol(p + 13, NULL, 10) - 1 : 0;

			bv_fail(st, "rejected: the dump contains a psql meta-command (line %ld), which psql refused "
					"(the restore runs under \\restrict)", line);
		}
	}
	else
	{
		const char *argv[20];
		int			n = 0;
		char	   *list = bv_restore_list(st);

		argv[n++] = bv_bin(st, "pg_restore");
		argv[n++] = "--exit-on-error";
		argv[n++] = "--no-owner";
		argv[n++] = "--no-privileges";
		argv[n++] = "--no-tablespaces";
		argv[n++] = "--no-publications";
		argv[n++] = "--no-subscriptions";
		argv[n++] = "-L";
		argv[n++] = "/dev/stdin";
		if (strcmp(f, "tar") != 0 && jobs > 1)
			argv[n++] = psprintf("--jobs=%d", jobs);
		argv[n++] = "-d";
		argv[n++] = bv_conn(st, st->scratch);
		argv[n++] = "/proc/self/fd/3";
		argv[n++] = NULL;
		st->use_password = true;
		rc = bv_run(st, argv, NULL, NULL, list, NULL, &err, NULL, true);
	}
	if (st->failures != NIL)
		return;
	if (rc != 0)
		bv_program_failed(st, strcmp(f, "plain") == 0 || strcmp(f, "plain.gz") == 0 ?
						  "the restore with psql" : "the restore with pg_restore", rc, err.data);
}

static void
bv_verifybackup(BvState *st)
{
	StringInfoData out,
				err;
	const char *argv[] = {bv_bin(st, "pg_verifybackup"), "--quiet", "/proc/self/fd/3", NULL};
	int			rc;

	initStringInfo(&out);
	initStringInfo(&err);
	rc = bv_run(st, argv, NULL, NULL, NULL, &out, &err, NULL, false);
	if (rc != 0)
		bv_program_failed(st, "pg_verifybackup", rc, err.len ? err.data : out.data);
	else
		appendStringInfoString(&st->detail, "pg_verifybackup: the files match backup_manifest and the WAL is complete; ");
}

/* Record the outcome in the row. */
static void
bv_record(BvState *st)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			types[9] = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, INT8OID, INT4OID,
	INT8OID, TEXTARRAYOID, TEXTOID};
	Datum		values[9];
	char		nulls[9] = "         ";
	Datum	   *fails = palloc(sizeof(Datum) * (list_length(st->failures) + 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, st->failures)
		fails[n++] = CStringGetTextDatum((char *) lfirst(lc));
	values[0] = Int64GetDatum(st->id);
	values[1] = CStringGetTextDatum(st->failures == NIL ? "passed" : "failed");
	values[2] = st->format ? CStringGetTextDatum(st->format) : (Datum) 0;
	nulls[2] = st->format ? ' ' : 'n';
	values[3] = TimestampTzGetDatum(st->mtime);
	nulls[3] = st->mtime ? ' ' : 'n';
	values[4] = Int64GetDatum(st->bytes);
	values[5] = Int32GetDatum(st->tables);
	values[6] = Int64GetDatum(st->rows);
	nulls[5] = nulls[6] = st->counted ? ' ' : 'n';
	nulls[4] = st->format || st->bytes ? ' ' : 'n';
	values[7] = PointerGetDatum(construct_array(fails, n, TEXTOID, -1, false, TYPALIGN_INT));
	while (st->detail.len > 0 && (st->detail.data[st->detail.len - 1] == ' ' ||
								  st->detail.data[st->detail.len - 1] == ';'))
		st->detail.data[--st->detail.len] = '\0';
	values[8] = CStringGetTextDatum(st->detail.data);

	adr_task_xact_begin("adr_ops: recording a backup verification", false);
	if (SPI_execute_with_args("UPDATE adr_ops.backup_verifications "
							  "   SET status = $2, format = $3, backup_mtime = $4, backup_bytes = $5, "
							  "       tables_restored = $6, rows_counted = $7, failures = $8, "
							  "       detail = nullif($9, ''), finished_at = clock_timestamp(), "
							  "       duration_ms = (extract(epoch FROM clock_timestamp() - started_at) * 1000)::bigint "
							  " WHERE id = $1",
							  9, types, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record backup verification " INT64_FORMAT, st->id);
	adr_task_xact_end(caller);
}

/*
 * The connections the restore role may use, each without dbname: the one
 * adr_ops.verify_conninfo describes, or loopback TCP at the server's port
 * when it listens on TCP (Debian's pg_hba.conf accepts a password there)
 * and then the server's socket.  Also the bootstrap superuser's, over the
 * socket (it creates the extensions).
 */
static List *
bv_make_conninfo(BvState *st)
{
	StringInfoData buf;
	char	   *dirs = pstrdup(Unix_socket_directories ? Unix_socket_directories : "");
	List	   *list = NIL;
	char	   *socket = NULL;
	List	   *candidates = NIL;
	char	   *port = psprintf("%d", PostPortNumber);

	if (SplitDirectoriesString(dirs, ',', &list) && list != NIL)
		socket = linitial(list);
	initStringInfo(&buf);
	bv_conn_append(&buf, "host", socket ? socket : "localhost");
	bv_conn_append(&buf, "port", port);
	bv_conn_append(&buf, "user", st->conn_user);
	st->super_conninfo = buf.data;

	if (adr_ops_verify_conninfo && adr_ops_verify_conninfo[0] != '\0')
	{
		List	   *keys,
				   *values;
		ListCell   *lk,
				   *lv;
		char	   *error = NULL;

		if (!adr_backup_conninfo_parse(adr_ops_verify_conninfo, &keys, &values, &error))
		{
			bv_fail(st, "invalid adr_ops.verify_conninfo: %s", error);
			return NIL;
		}
		initStringInfo(&buf);
		forboth(lk, keys, lv, values)
		{
			const char *k = lfirst(lk);

			if (strcmp(k, "user") == 0 || strcmp(k, "dbname") == 0 ||
				strcmp(k, "password") == 0 || strcmp(k, "sslpassword") == 0 ||
				strcmp(k, "passfile") == 0)
			{
				appendStringInfo(&st->detail, "adr_ops.verify_conninfo's %s is ignored; ", k);
				continue;
			}
			bv_conn_append(&buf, k, lfirst(lv));
		}
		bv_conn_append(&buf, "user", st->role);
		return list_make1(buf.data);
	}
	{
		const char *listen = GetConfigOption("listen_addresses", false, false);

		if (listen && listen[0] != '\0')
		{
			bool		v4 = strstr(listen, "127.0.0.1") || strstr(listen, "localhost") ||
				strchr(listen, '*') || strstr(listen, "0.0.0.0") || !strstr(listen, "::1");

			initStringInfo(&buf);
			bv_conn_append(&buf, "host", v4 ? "127.0.0.1" : "::1");
			bv_conn_append(&buf, "port", port);
			bv_conn_append(&buf, "user", st->role);
			candidates = lappend(candidates, buf.data);
		}
	}
	if (socket)
	{
		initStringInfo(&buf);
		bv_conn_append(&buf, "host", socket);
		bv_conn_append(&buf, "port", port);
		bv_conn_append(&buf, "user", st->role);
		candidates = lappend(candidates, buf.data);
	}
	return candidates;
}

/*
 * The restore role and the scratch database it owns, both named
 * adr_verify_<database OID>_<id>, each with a comment that says adr_ops
 * made it.  The role's password is random and set as a SCRAM secret, so
 * the password itself is in no statement; only the children's environment
 * carries it.  INHERIT: the role is a member of no role; owning the
 * database makes it pg_database_owner there, which owns schema public.
 */
static bool
bv_create_scratch(BvState *st)
{
	MemoryContext caller = CurrentMemoryContext;
	char	   *name = psprintf("adr_verify_%u_" INT64_FORMAT, MyDatabaseId, st->id);
	char	   *secret;
	char	   *error;

	st->password = bv_random_alnum(32, "password for the restore role");
	adr_task_xact_begin("adr_ops: creating the restore role of a backup verification", false);
	/* NB: the HMAC context belongs to the transaction's resource owner */
	secret = pg_be_scram_build_secret(st->password);
	if (SPI_execute(psprintf("CREATE ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT "
							 "NOREPLICATION NOBYPASSRLS PASSWORD %s",
							 quote_identifier(name), quote_literal_cstr(secret)),
					false, 0) != SPI_OK_UTILITY ||
		SPI_execute(psprintf("COMMENT ON ROLE %s IS %s", quote_identifier(name),
							 quote_literal_cstr(psprintf(ADR_VERIFY_ROLE_COMMENT " " INT64_FORMAT " of database %u",
														 st->id, MyDatabaseId))),
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create the restore role \"%s\"", name);
	adr_task_xact_end(caller);
	st->role = name;

	error = adr_utility(psprintf("CREATE DATABASE %s OWNER %s TEMPLATE template0",
								quote_identifier(name), quote_identifier(name)));
	if (error)
	{
		bv_fail(st, "could not create the scratch database \"%s\": %s", name, error);
		return false;
	}
	st->scratch = name;
	error = adr_utility(psprintf("COMMENT ON DATABASE %s IS %s",
								quote_identifier(name),
								quote_literal_cstr(psprintf(ADR_VERIFY_COMMENT " " INT64_FORMAT " of database %u",
															st->id, MyDatabaseId))));
	if (error)
	{
		bv_fail(st, "could not mark the scratch database: %s", error);
		return false;
	}
	return true;
}

/* Drop the scratch database and then its role. */
static void
bv_drop_scratch(BvState *st)
{
	char	   *error;

	if (st->scratch)
	{
		error = adr_utility(psprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)",
									quote_identifier(st->scratch)));
		if (error)
			bv_fail(st, "could not drop the scratch database \"%s\": %s", st->scratch, error);
		st->scratch = NULL;
	}
	if (st->role)
	{
		error = adr_utility(psprintf("DROP ROLE IF EXISTS %s", quote_identifier(st->role)));
		if (error)
			bv_fail(st, "could not drop the restore role \"%s\": %s", st->role, error);
		st->role = NULL;
	}
}

void
adr_verify_main(Datum main_arg)
{
	dsm_segment *seg;
	AdrBackupRequest req;
	AdrBackupRequest *shared;
	BvState		st = {0};
	MemoryContext cxt;
	LOCKTAG		tag;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
		proc_exit(0);			/* the caller gave up */
	shared = dsm_segment_address(seg);
	memcpy(&req, shared, sizeof(AdrBackupRequest));
	on_shmem_exit(adr_backup_kill_program, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(req.dboid, InvalidOid, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("adr_ops backup verification");

	cxt = AllocSetContextCreate(TopMemoryContext, "adr_ops backup verification",
								ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);
	st.path = pstrdup(req.path);
	st.dirs = pstrdup(req.dirs);
	st.fd = -1;
	initStringInfo(&st.detail);
	strlcpy(st.bindir, my_exec_path, sizeof(st.bindir));
	get_parent_directory(st.bindir);

	/* The row, committed, and the lock that says this worker lives. */
	PG_TRY();
	{
		Oid			types[2] = {TEXTOID, TEXTOID};
		char	   *caller_name;
		Datum		values[2];
		bool		isnull;

		adr_task_xact_begin("adr_ops: starting a backup verification", true);
		values[0] = CStringGetTextDatum(req.path);
		caller_name = GetUserNameFromId(req.caller, true);
		values[1] = CStringGetTextDatum(caller_name ? caller_name : "?");
		st.conn_user = MemoryContextStrdup(cxt, GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false));
		if (SPI_execute_with_args("INSERT INTO adr_ops.backup_verifications (path, requested_by) "
								  "VALUES ($1, $2) RETURNING id",
								  2, types, values, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not insert a backup verification");
		st.id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		bv_lock_tag(&tag, MyDatabaseId, st.id);
		(void) LockAcquire(&tag, ExclusiveLock, true, false);
		adr_task_xact_end(cxt);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		strlcpy(shared->error, edata->message, sizeof(shared->error));
		PG_RE_THROW();
	}
	PG_END_TRY();
	pg_write_barrier();
	shared->id = st.id;
	dsm_detach(seg);
	pgstat_report_activity(STATE_RUNNING, psprintf("verifying backup %s", st.path));

	PG_TRY();
	{
		bv_cleanup_leftovers(st.id);

		if (bv_inspect(&st, req.max_age_us))
		{
			if (strcmp(st.format, "basebackup") == 0)
				bv_verifybackup(&st);
			else if (bv_create_scratch(&st))
			{
				List	   *candidates = bv_make_conninfo(&st);

				if (st.failures == NIL)
					bv_extensions(&st);
				if (st.failures == NIL)
					bv_create_extensions(&st);
				if (st.failures == NIL)
					bv_probe(&st, candidates);
				if (st.failures == NIL)
					bv_restore(&st, req.jobs);
				if (st.failures == NIL)
					bv_checks(&st, req.compare_to);
			}
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		RESUME_INTERRUPTS();
		bv_fail(&st, "error: %s", edata->message);
	}
	PG_END_TRY();

	if (st.fd >= 0)
		close(st.fd);
	bv_drop_scratch(&st);
	bv_record(&st);
	LockRelease(&tag, ExclusiveLock, true);
	proc_exit(0);
}
