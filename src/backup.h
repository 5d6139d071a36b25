/*-------------------------------------------------------------------------
 *
 * backup.h
 *	  Backup verification: its settings, its initialisation, and what its
 *	  files share.
 *
 * The concern's files:
 *   backup_worker.c  settings, path confinement, the SQL entry
 *                    adr_verify_backup(), the verify_backup task, and the
 *                    dynamic background worker and its steps (SPI)
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
