/*-------------------------------------------------------------------------
 *
 * backup.h
 *	  Backup verification: its settings, its initialisation, and what its
 *	  files share.
 *
 * The concern's files:
 *   backup.c         settings, path confinement, the SQL entry
 *                    adr_verify_backup() and the verify_backup task
 *   backup_worker.c  the dynamic background worker and its steps (SPI)
 *   backup_run.c     the program runner: fork/exec, pipes, disk-space watch
 *   dumpfilter.c     the plain-dump filter, free of PostgreSQL headers
 *                    (its own header, dumpfilter.h)
 * Only adr_backup_init() and the settings are for the rest of adr_ops;
 * the rest of this header is between those files.
 *
 * IDENTIFICATION
 *	  src/backup.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_BACKUP_H
#define ADR_OPS_BACKUP_H

#include <zlib.h>

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

#include "dumpfilter.h"

/* Settings (backup.c). */
extern char *adr_ops_backup_directories;
extern char *adr_ops_backup_path;
extern int	adr_ops_backup_max_age;
extern int	adr_ops_verify_jobs;
extern char *adr_ops_verify_conninfo;
extern char *adr_ops_verify_compare_to;
extern int	adr_ops_verify_min_free_space;

extern void adr_backup_init(void);

/* ---------- between the files of the concern ---------- */

/* The request the caller hands to the worker, in a DSM segment. */
typedef struct AdrBackupRequest
{
	Oid			dboid;
	Oid			caller;
	int64		max_age_us;		/* -1: no recency check */
	int			jobs;
	char		path[MAXPGPATH];	/* as given (glob resolved), for the row */
	char		dirs[MAXPGPATH * 4];	/* adr_ops.backup_directories of the
										 * call; empty: not confined */
	char		compare_to[NAMEDATALEN];
	/* written by the worker */
	volatile int64 id;			/* the row, once committed */
	char		error[256];
} AdrBackupRequest;

/* Path confinement and the conninfo setting's syntax (backup.c). */
extern int	adr_backup_openat_beneath(int dirfd, const char *rel, int flags);
extern int	adr_backup_open_confined(const char *dirs, const char *path, int flags,
									 bool *outside);
extern bool adr_backup_conninfo_parse(const char *s, List **keys, List **values,
									  char **error);

/* The worker's entry point (backup_worker.c), named in bgw_function_name. */
extern PGDLLEXPORT void adr_verify_main(Datum main_arg) pg_attribute_noreturn();

/* One program for adr_backup_run() (backup_run.c). */
typedef struct AdrBackupProgram
{
	const char *const *argv;	/* argv[0]: an absolute path; NULL-ended */
	int			backup_fd;		/* the program's descriptor 3; -1: none */
	const char *password;		/* its PGPASSWORD; NULL: none */
	const char *input;			/* its stdin, or NULL */
	gzFile		dump;			/* or a plain dump, filtered, after ... */
	const char *restrict_key;	/* ... "\restrict restrict_key" */
	const AdrDumpFilterRules *rules;	/* the filter's rules for dump */
	bool		watch_space;	/* stop below adr_ops.verify_min_free_space */
	StringInfo	out;			/* its stdout, when given */
	StringInfo	err;			/* the start of its stderr */
	/* set by adr_backup_run() */
	char	   *failure;		/* why it was stopped: a failure's text */
	char	   *rejected;		/* why the filter rejected the dump */
} AdrBackupProgram;

extern int	adr_backup_run(AdrBackupProgram *prog);
extern void adr_backup_kill_program(int code, Datum arg);

#endif							/* ADR_OPS_BACKUP_H */
