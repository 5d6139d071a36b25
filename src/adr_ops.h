/*-------------------------------------------------------------------------
 *
 * adr_ops.h
 *	  Declarations shared across adr_ops' modules: settings and the
 *	  initialisation entry points that _PG_init dispatches to.
 *
 * IDENTIFICATION
 *	  src/adr_ops.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_ADR_OPS_H
#define ADR_OPS_ADR_OPS_H

#ifndef ADR_OPS_VERSION
#error "ADR_OPS_VERSION must be defined by the Makefile"
#endif

/* guc.c */
extern int	adr_ops_log_scan_limit;
extern char *adr_ops_database;
extern int	adr_ops_max_workers;
extern char *adr_ops_timezone;
extern char *adr_ops_maintenance_window;
extern int	adr_ops_task_run_retention;
extern int	adr_ops_job_stale_after;
extern int	adr_ops_snapshot_retention;

extern void adr_guc_init(void);
extern void adr_guc_reserve(void);

/* shmem.c: the ERROR of a feature that needs adr_ops preloaded */
extern void adr_preload_error(const char *what) pg_attribute_noreturn();

/* info.c */
extern char *adr_extension_version(void);
extern int	adr_version_cmp(const char *a, const char *b);

/* capacity.c */
extern int	adr_ops_recovery_time_objective;
extern int	adr_ops_recovery_point_objective;
extern int	adr_ops_wal_replay_rate;

extern void adr_capacity_init(void);
extern void adr_incident_init(void);
extern void adr_plans_init(void);
extern char *adr_incident_payload_finish(char *payload, MemoryContext cxt);

/* bloat.c */
extern int	adr_ops_bloat_sample_pages;
extern int	adr_ops_bloat_report_timeout;

extern void adr_bloat_init(void);

/* security.c */
extern int	adr_ops_max_blocked;
extern int	adr_ops_auth_ban_share;
extern int	adr_ops_auth_failure_limit;
extern int	adr_ops_auth_failure_window;
extern int	adr_ops_auth_ban_duration;
extern bool adr_ops_auth_ban_loopback;
extern char *adr_ops_maintenance_allow_roles;

extern void adr_security_init(void);
extern void adr_security_launcher_sync(bool in_recovery, bool extension_ready);

#endif							/* ADR_OPS_ADR_OPS_H */
