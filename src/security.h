/*-------------------------------------------------------------------------
 *
 * security.h
 *	  The authentication hook, the blocklist and maintenance mode
 *	  (security.c): settings and initialisation.
 *
 * IDENTIFICATION
 *	  src/security.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ADR_OPS_SECURITY_H
#define ADR_OPS_SECURITY_H

extern int	adr_ops_max_blocked;
extern int	adr_ops_auth_ban_share;
extern int	adr_ops_auth_failure_limit;
extern int	adr_ops_auth_failure_window;
extern int	adr_ops_auth_ban_duration;
extern bool adr_ops_auth_ban_loopback;
extern char *adr_ops_maintenance_allow_roles;

extern void adr_security_init(void);

#endif							/* ADR_OPS_SECURITY_H */
