/*-------------------------------------------------------------------------
 *
 * scheduler.h
 *	  Shared state of the maintenance scheduler: the launcher, its run
 *	  workers, and the backends that ask it to run a task now.
 *
 * One launcher (maint_launcher.c) reads adr_ops.schedules in
 * adr_ops.database and starts one dynamic background worker per run, in
 * the run's database.
 * Run workers cannot write to the launcher's database, so each one gets a
 * slot in shared memory: the launcher fills in what to run, the worker
 * writes back what happened, and the launcher records it in
 * adr_ops.task_runs.  adr_run_task() hands its request to the launcher
 * through the same shared memory, so that one process enforces
 * adr_ops.max_workers and writes the history.
 *
 * Locking: AdrShared.lock (an LWLock of tranche "adr_ops") protects every
 * field of AdrShared.  Hold it only to copy fields in or out; never across
 * a transaction, a latch wait or a system call.
 *
 * IDENTIFICATION
 *	  src/scheduler.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_SCHEDULER_H
#define ADR_OPS_SCHEDULER_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "pgtime.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "cron.h"

#define ADR_MAX_WORKERS			32	/* upper limit of adr_ops.max_workers */
#define ADR_MAX_REQUESTS		8	/* adr_run_task() calls waiting at once */
#define ADR_MAX_SCHEDULE_STATES 256 /* schedules whose state is published */
#define ADR_NAME_LEN			64
#define ADR_OPTIONS_LEN			4096
#define ADR_DETAIL_LEN			4096

typedef enum AdrSlotState
{
	ADR_SLOT_FREE = 0,
	ADR_SLOT_STARTING,			/* assigned by the launcher, worker not up */
	ADR_SLOT_RUNNING,			/* the worker has attached */
	ADR_SLOT_EXITED				/* the worker is gone; result to record */
} AdrSlotState;

/* One run: what to do, and what happened. */
typedef struct AdrRunSlot
{
	AdrSlotState state;
	int64		run_id;
	int64		schedule_id;	/* 0 for adr_run_task() */
	char		task[ADR_NAME_LEN];
	char		dbname[NAMEDATALEN];
	char		options[ADR_OPTIONS_LEN];	/* jsonb as text */
	bool		reported;		/* the worker wrote the fields below */
	char		status[16];		/* succeeded | failed | skipped */
	int32		objects;
	char		detail[ADR_DETAIL_LEN];
} AdrRunSlot;

typedef enum AdrRequestState
{
	ADR_REQUEST_FREE = 0,
	ADR_REQUEST_PENDING,		/* waiting for the launcher */
	ADR_REQUEST_ACCEPTED,		/* run_id holds the task_runs row */
	ADR_REQUEST_REFUSED			/* error says why */
} AdrRequestState;

/* A backend's adr_run_task() call, handed to the launcher. */
typedef struct AdrRequest
{
	AdrRequestState state;
	pid_t		requester;
	Latch	   *requester_latch;
	char		task[ADR_NAME_LEN];
	char		dbname[NAMEDATALEN];
	char		options[ADR_OPTIONS_LEN];
	int64		run_id;
	char		error[256];
} AdrRequest;

/* What the launcher knows of one schedule, for adr_maintenance_status(). */
typedef struct AdrScheduleState
{
	int64		schedule_id;
	TimestampTz next_fire;
	TimestampTz standby_skip_at;	/* last fire skipped in recovery, or 0 */
} AdrScheduleState;

typedef struct AdrShared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	AdrRunSlot	slots[ADR_MAX_WORKERS];
	AdrRequest	requests[ADR_MAX_REQUESTS];
	int			nschedules;
	AdrScheduleState schedules[ADR_MAX_SCHEDULE_STATES];
} AdrShared;

/* A task: each concern registers its own with adr_task_register(). */
typedef struct AdrTaskRun
{
	Jsonb	   *options;
	int			objects;
	bool		failed;
	StringInfoData detail;
} AdrTaskRun;

typedef struct AdrTask
{
	const char *name;
	bool		writes;			/* cannot run on a hot standby */
	bool		heavy;			/* confined to adr_ops.maintenance_window */
	bool		concurrent;		/* waits for every older transaction of its
								 * database (CREATE/REINDEX CONCURRENTLY) */
	const char *lock_timeout;	/* default of the lock_timeout option */
	const char *const *options; /* option keys besides the common ones */
	void		(*run) (AdrTaskRun *run);
	const char *description;
	const char *since;			/* the version of the SQL objects it needs;
								 * NULL: every released version */
	const char *sql;			/* or, instead of run, one query of the
								 * extension's SQL returning (objects int,
								 * detail text) */
} AdrTask;

/* guc.c: the scheduler's settings */
extern char *adr_ops_database;
extern int	adr_ops_max_workers;
extern char *adr_ops_timezone;
extern char *adr_ops_maintenance_window;
extern int	adr_ops_task_run_retention;

/* maint_shmem.c */
extern AdrShared *adr_shared;
extern void adr_shmem_init(void);
extern void adr_require_preload(const char *what);
extern void adr_wake_launcher(void);

/* maint_schedule.c */
extern void adr_schedule_parse(const char *text, AdrCronSchedule *out);
extern TimestampTz adr_schedule_next(const AdrCronSchedule *s, TimestampTz after,
									 pg_tz *tz);
extern pg_tz *adr_schedule_tz(void);
extern bool adr_window_contains(TimestampTz t, pg_tz *tz);
extern void adr_require_scheduler_database(const char *what);
extern bool adr_window_check(char **newval, void **extra, GucSource source);
extern bool adr_timezone_check(char **newval, void **extra, GucSource source);

/* maint_task.c */
extern const char *const adr_task_no_options[];
extern void adr_task_register(const AdrTask *task);
extern const AdrTask *adr_task_find(const char *name);
extern const AdrTask *adr_task_lookup(const char *name);
extern void adr_task_validate(const char *task, Jsonb *options);
extern void adr_task_execute(const AdrTask *task, AdrTaskRun *run);
extern void adr_task_xact_begin(const char *what, bool need_extension);
extern void adr_task_xact_end(MemoryContext caller);
extern void adr_task_timer_on(void);
extern void adr_task_timer_off(void);
extern const char *adr_option_string(Jsonb *options, const char *key);
extern bool adr_option_bool(Jsonb *options, const char *key);
extern char *adr_spi_getstr(int row, int col, MemoryContext cxt);
extern char *adr_utility(const char *sql);
extern char *adr_utility_code(const char *sql, int *sqlerrcode);

/* maint_tables.c */
extern void adr_maint_tables_init(void);

/*
 * maint_launcher.c.  A module that keeps state in step with its tables
 * from the launcher registers a pass hook: the launcher calls it in every
 * pass, inside the pass's transaction with SPI connected, telling whether
 * the server is in recovery and whether adr_ops is installed in
 * adr_ops.database.  A hook must not fail the pass: it catches its own
 * errors.
 */
typedef void (*AdrLauncherPassHook) (bool in_recovery, bool extension_ready);

extern void adr_launcher_pass_register(AdrLauncherPassHook hook);
extern void adr_worker_register(void);
extern bool adr_start_run_worker(int slotno, int64 run_id);

#endif							/* ADR_OPS_SCHEDULER_H */
